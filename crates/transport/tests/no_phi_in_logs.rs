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
use carevox_sip::{Limits, MessageBuilder};
use carevox_transport::{Destination, TransportConfig, TransportKind};
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
    MessageBuilder::request("MESSAGE", "sip:jane.patient@clinic-phi.example")
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
        .header("CSeq", "1 MESSAGE")
        .unwrap()
        .body(
            "text/plain",
            Bytes::from_static(b"diagnosis for MRN-0042-7731, call +15551234567"),
        )
        .unwrap()
        .build()
        .unwrap()
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

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The run was logged, with connection ids and addresses...
    assert!(logs.contains("conn="), "{logs}");
    assert!(logs.contains("127.0.0.1:"), "{logs}");
    assert!(logs.contains("TLS handshake failed"), "{logs}");
    assert!(logs.contains("bad stream input"), "{logs}");
    // ...and nothing of the messages.
    for secret in PHI {
        assert!(
            !logs.contains(secret),
            "log output contains {secret:?}:\n{logs}"
        );
    }
}
