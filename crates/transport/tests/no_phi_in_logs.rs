//! Every log line the transport writes, at every level, during a run that
//! carries PHI-looking messages over UDP, TCP and TLS (good ones, garbage,
//! oversized ones, refused handshakes) is captured and searched: peer
//! socket addresses and connection ids may appear, the content never.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // helpers outside #[test] functions

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use carevox_sip::dialog::{Outgoing, UaConfig, UaEvent, UserAgent};
use carevox_sip::transaction::TransportKind as SipKind;
use carevox_sip::transaction::{Config, Timers};
use carevox_sip::{Limits, MessageBuilder};
use carevox_transport::{
    Agent, AgentEvent, AgentEvents, Destination, Endpoint, EndpointConfig, EndpointEvent,
    TransportConfig, TransportKind,
};
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const PHI: &[&str] = &[
    "Jane Quincy Patient",
    "jane.patient",
    "+15551234567",
    "5551234567",
    "MRN-0042-7731",
    "clinic-phi.example",
    "diagnosis",
    "sip:",
];

fn phi_request(transport: &str, n: u32) -> carevox_sip::Message {
    phi_request_method("MESSAGE", transport, n)
}

fn phi_request_method(method: &str, transport: &str, n: u32) -> carevox_sip::Message {
    MessageBuilder::request(method, "sip:jane.patient@clinic-phi.example")
        .unwrap()
        .header(
            "Via",
            &format!("SIP/2.0/{transport} clinic-phi.example;branch=z9hG4bKphi{n};alias"),
        )
        .unwrap()
        .header("Max-Forwards", "70")
        .unwrap()
        .header(
            "From",
            "\"Jane Quincy Patient\" <sip:+15551234567@clinic-phi.example>;tag=9",
        )
        .unwrap()
        .header("To", "<sip:jane.patient@clinic-phi.example>")
        .unwrap()
        .header("Call-ID", &format!("MRN-0042-7731-{n}"))
        .unwrap()
        .header("CSeq", &format!("1 {method}"))
        .unwrap()
        .body(
            "text/plain",
            Bytes::from_static(b"diagnosis for MRN-0042-7731, call +15551234567"),
        )
        .unwrap()
        .build()
        .unwrap()
}

async fn driver_run(ca: &Ca, id: &Identity) {
    let config = EndpointConfig::default().with_transactions(
        Config::default().with_timers(Timers::default().with_t1(Duration::from_millis(10))),
    );
    let ((st, si), (ct, ci)) = server_and_client(ca, id).await;
    let (server, mut server_events) = Endpoint::start(st, si, config.clone());
    let (client, mut client_events) = Endpoint::start(ct, ci, config);
    let addr = |kind| server.transport().local_addr(kind).unwrap();
    let dests = [
        Destination::udp(addr(TransportKind::Udp)),
        Destination::tcp(addr(TransportKind::Tcp)),
        Destination::tls(addr(TransportKind::Tls), "sip.carevox.test"),
    ];
    for (n, dest) in dests.iter().enumerate() {
        let req = phi_request(dest.kind.via_name(), 100 + u32::try_from(n).unwrap());
        client.send_request(req, dest.clone()).await.unwrap();
        let (txn, request) = loop {
            let e = tokio::time::timeout(WAIT, server_events.recv())
                .await
                .unwrap()
                .unwrap();
            if let EndpointEvent::Request {
                transaction,
                request,
                ..
            } = e
            {
                break (transaction, request);
            }
        };
        server
            .send_response(txn, response(&request, 200))
            .await
            .unwrap();
        loop {
            let e = tokio::time::timeout(WAIT, client_events.recv())
                .await
                .unwrap()
                .unwrap();
            if matches!(e, EndpointEvent::Response { .. }) {
                break;
            }
        }
    }
    // Unanswered over UDP: Timer F after 64·T1.
    client
        .send_request(phi_request("UDP", 110), dests[0].clone())
        .await
        .unwrap();
    // Refused over TCP.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    client
        .send_request(phi_request("TCP", 111), Destination::tcp(closed))
        .await
        .unwrap();
    let mut seen = (false, false);
    while seen != (true, true) {
        match tokio::time::timeout(WAIT, client_events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            EndpointEvent::TimedOut { .. } => seen.0 = true,
            EndpointEvent::TransportFailed { .. } => seen.1 = true,
            _ => {}
        }
    }
    // A live INVITE at shutdown, and a request refused during it.
    client
        .send_request(phi_request_method("INVITE", "TCP", 112), dests[1].clone())
        .await
        .unwrap();
    loop {
        let e = tokio::time::timeout(WAIT, server_events.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(e, EndpointEvent::Request { .. }) {
            break;
        }
    }
    let shutting = tokio::spawn({
        let server = server.clone();
        async move { server.shutdown(Duration::from_millis(800)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    client
        .send_request(phi_request("TCP", 113), dests[1].clone())
        .await
        .unwrap();
    let report = shutting.await.unwrap().unwrap();
    // The INVITE at least (the unanswered MESSAGE too, if still alive).
    assert!(report.abandoned >= 1, "{report:?}");
    client.shutdown(Duration::from_millis(200)).await.unwrap();
}

/// The next core event of an agent matching `pred`.
async fn agent_event(events: &mut AgentEvents, pred: impl Fn(&UaEvent) -> bool) -> UaEvent {
    loop {
        let e = tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap();
        if let AgentEvent::Ua { event, .. } = e
            && pred(&event)
        {
            return event;
        }
    }
}

/// A call between two agents over TLS whose URIs, names and numbers look
/// like PHI: INVITE, 200, ACK, BYE, then a request left to time out.
#[allow(clippy::disallowed_methods)] // the agents draw their tags from a real random source
async fn agent_run(ca: &Ca, id: &Identity) {
    let ((st, si), (ct, ci)) = server_and_client(ca, id).await;
    let timers = Timers::default().with_t1(Duration::from_millis(10));
    let rng = Arc::new(ring::rand::SystemRandom::new());
    let ua = |contact: &str| {
        UserAgent::new(
            UaConfig::new("clinic-phi.example", contact)
                .with_transaction(Config::default().with_timers(timers)),
            rng.clone(),
        )
    };
    let tls = Destination::tls(
        st.local_addr(TransportKind::Tls).unwrap(),
        "sip.carevox.test",
    );
    let udp = Destination::udp(st.local_addr(TransportKind::Udp).unwrap());
    let (callee, mut callee_events) = Agent::start(
        st,
        si,
        ua("\"Jane Quincy Patient\" <sip:+15551234567@clinic-phi.example;transport=tls>"),
        EndpointConfig::default(),
    );
    let (caller, mut caller_events) = Agent::start(
        ct,
        ci,
        ua("<sip:jane.patient@clinic-phi.example>"),
        EndpointConfig::default(),
    );
    let outgoing = |method: &str, dest: &Destination, kind| {
        Outgoing::new(
            method,
            "sips:+15551234567@clinic-phi.example",
            "\"Jane Quincy Patient\" <sip:jane.patient@clinic-phi.example>",
            "<sip:MRN-0042-7731@clinic-phi.example>",
            dest.addr,
            kind,
        )
    };
    caller
        .send_request(outgoing("INVITE", &tls, SipKind::Tls), tls.clone())
        .await
        .unwrap();
    let UaEvent::Request { id: invite, .. } =
        agent_event(&mut callee_events, |e| matches!(e, UaEvent::Request { .. })).await
    else {
        unreachable!()
    };
    callee
        .respond(
            invite,
            200,
            "OK",
            &[],
            Some(("text/plain", Bytes::from_static(b"diagnosis MRN-0042-7731"))),
        )
        .await
        .unwrap();
    agent_event(&mut callee_events, |e| matches!(e, UaEvent::Ack { .. })).await;
    let UaEvent::DialogConfirmed { dialog } = agent_event(&mut caller_events, |e| {
        matches!(e, UaEvent::DialogConfirmed { .. })
    })
    .await
    else {
        unreachable!()
    };
    caller
        .send_in_dialog(dialog, "BYE", &[], None)
        .await
        .unwrap();
    agent_event(&mut callee_events, |e| {
        matches!(e, UaEvent::DialogTerminated { .. })
    })
    .await;
    // A MESSAGE nobody answers: Timer F.
    caller
        .send_request(outgoing("MESSAGE", &udp, SipKind::Udp), udp.clone())
        .await
        .unwrap();
    agent_event(&mut caller_events, |e| matches!(e, UaEvent::Timeout { .. })).await;
    callee.shutdown(Duration::from_millis(500)).await.unwrap();
    caller.shutdown(Duration::from_millis(200)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_message_content() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let ca = Ca::new("test CA");
    let id = ca.issue(&["sip.carevox.test"]);
    let config = TransportConfig::default()
        .with_limits(Limits::default().with_max_message_size(4000))
        .with_idle_timeout(Some(Duration::from_millis(1000)));
    let (server, mut server_in) =
        start(config.clone(), true, true, Some(id.server_config()), None).await;
    let (client, mut client_in) = start(
        config.clone(),
        true,
        false,
        None,
        Some(client_trusting(&ca)),
    )
    .await;
    let tls = Destination::tls(
        server.local_addr(TransportKind::Tls).unwrap(),
        "sip.carevox.test",
    );
    let tcp = Destination::tcp(server.local_addr(TransportKind::Tcp).unwrap());
    let udp = Destination::udp(server.local_addr(TransportKind::Udp).unwrap());

    // Good messages each way.
    for (n, dest) in [&udp, &tcp, &tls].into_iter().enumerate() {
        let req = phi_request(dest.kind.via_name(), u32::try_from(n).unwrap());
        client.send_message(dest, &req).await.unwrap();
        let got = next_message(&mut server_in).await;
        let resp = response(&got.message, 200);
        server
            .send_message(&Destination::reply_to(&got), &resp)
            .await
            .unwrap();
        next_message(&mut client_in).await;
    }
    // Garbage and oversized input carrying PHI.
    let garbage = b"Jane Quincy Patient +15551234567 MRN-0042-7731\r\n\r\n";
    let mut peer = TcpStream::connect(tcp.addr).await.unwrap();
    peer.write_all(garbage).await.unwrap();
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(garbage, udp.addr).await.unwrap();
    let mut big = phi_request("TCP", 9).as_bytes().to_vec();
    big.extend(std::iter::repeat_n(b'x', 5000));
    let mut peer2 = TcpStream::connect(tcp.addr).await.unwrap();
    let _ = peer2.write_all(&big).await;
    sock.send_to(&big, udp.addr).await.unwrap();
    // A refused handshake (wrong name) and a sender refused for size.
    let wrong = Destination::tls(tls.addr, "clinic-phi.example");
    assert!(
        client
            .send_message(&wrong, &phi_request("TLS", 10))
            .await
            .is_err()
    );
    assert!(client.send(&tcp, Bytes::from(big.clone())).await.is_err());
    // Idle timeouts and shutdown.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    client.close(Duration::from_secs(2)).await;
    server.close(Duration::from_secs(2)).await;

    // The same through the transaction driver: requests answered over each
    // transport, one left to time out, one whose connection is refused, a
    // shutdown that refuses a new request and cuts a live one.
    driver_run(&ca, &id).await;
    // And through the user agent driver: a call with PHI-looking names and
    // numbers over TLS, hung up, and a request left to time out.
    agent_run(&ca, &id).await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The run was logged, with connection ids and addresses...
    assert!(logs.contains("conn="), "{logs}");
    assert!(logs.contains("127.0.0.1:"), "{logs}");
    assert!(logs.contains("TLS handshake failed"), "{logs}");
    assert!(logs.contains("bad stream input"), "{logs}");
    // The driver's lines carry transaction and connection ids, never an
    // address.
    let driver: Vec<&str> = logs
        .lines()
        .filter(|l| {
            ["endpoint", "driver", "agent"]
                .iter()
                .any(|m| l.contains(&format!("carevox_transport::{m}")))
        })
        .collect();
    assert!(
        driver
            .iter()
            .any(|l| l.contains("carevox_transport::agent") && l.contains("dialog=")),
        "{logs}"
    );
    assert!(driver.iter().any(|l| l.contains("txn=")), "{logs}");
    assert!(driver.iter().any(|l| l.contains("conn=")), "{logs}");
    assert!(
        driver.iter().any(|l| l.contains("transaction timed out")),
        "{logs}"
    );
    assert!(
        driver.iter().any(|l| l.contains("failed in the transport")),
        "{logs}"
    );
    assert!(
        driver
            .iter()
            .any(|l| l.contains("new request refused") && l.contains("shutting down")),
        "{logs}"
    );
    for line in &driver {
        assert!(
            !line.contains("127.0.0.1"),
            "driver log line with an address: {line}"
        );
    }
    // ...and nothing of the messages.
    for secret in PHI {
        assert!(
            !logs.contains(secret),
            "log output contains {secret:?}:\n{logs}"
        );
    }
}
