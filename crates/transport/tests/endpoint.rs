//! The transaction driver on 127.0.0.1, both sides carevox endpoints:
//! requests and responses over UDP, TCP and TLS (the response on the
//! request's connection), INVITE with the TU's ACK for the 2xx, timeouts,
//! refused connections reported as transport failures, and graceful
//! shutdown (live transactions finish, new requests get 503, a deadline
//! cuts what is left).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] functions

mod common;

use std::time::Duration;

use bytes::Bytes;
use carevox_sip::transaction::{Config, Timers, TransactionId};
use carevox_sip::{HeaderName, Message, MessageBuilder};
use carevox_transport::{
    Destination, Endpoint, EndpointConfig, EndpointError, EndpointEvent, EndpointEvents,
    TransportKind,
};
use common::*;

fn config(t1_ms: u64) -> EndpointConfig {
    EndpointConfig::default().with_transactions(
        Config::default().with_timers(Timers::default().with_t1(Duration::from_millis(t1_ms))),
    )
}

/// The next event, failing after `within`.
async fn next(events: &mut EndpointEvents, within: Duration) -> EndpointEvent {
    tokio::time::timeout(within, events.recv())
        .await
        .expect("an endpoint event in time")
        .expect("the endpoint is running")
}

/// Events until one matches `pred`; returns it and those skipped.
async fn until(
    events: &mut EndpointEvents,
    within: Duration,
    pred: impl Fn(&EndpointEvent) -> bool,
) -> (EndpointEvent, Vec<EndpointEvent>) {
    let deadline = tokio::time::Instant::now() + within;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let e = next(events, left).await;
        if pred(&e) {
            return (e, skipped);
        }
        skipped.push(e);
    }
}

fn is_request(e: &EndpointEvent) -> bool {
    matches!(e, EndpointEvent::Request { .. })
}

fn is_final_response(e: &EndpointEvent) -> bool {
    matches!(e, EndpointEvent::Response { response, .. } if response.status().unwrap() >= 200)
}

/// The final response of client transaction `id`.
async fn response_of(events: &mut EndpointEvents, id: TransactionId) -> Message {
    let (e, _) = until(
        events,
        WAIT,
        |e| matches!(e, EndpointEvent::Response { transaction, .. } if *transaction == id),
    )
    .await;
    let EndpointEvent::Response { response, .. } = e else {
        unreachable!()
    };
    response
}

/// Two endpoints on 127.0.0.1: a server listening on every transport and a
/// client trusting its certificate.
async fn pair(
    server_config: EndpointConfig,
    client_config: EndpointConfig,
) -> (Endpoint, EndpointEvents, Endpoint, EndpointEvents) {
    let ca = Ca::new("endpoint test CA");
    let id = ca.issue(&["sip.carevox.test"]);
    let ((st, si), (ct, ci)) = server_and_client(&ca, &id).await;
    let (server, server_events) = Endpoint::start(st, si, server_config);
    let (client, client_events) = Endpoint::start(ct, ci, client_config);
    (server, server_events, client, client_events)
}

fn destination(server: &Endpoint, kind: TransportKind) -> Destination {
    let addr = server.transport().local_addr(kind).unwrap();
    match kind {
        TransportKind::Tls => Destination::tls(addr, "sip.carevox.test"),
        _ => Destination::new(kind, addr),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_and_its_response_over_each_transport() {
    let (server, mut server_events, client, mut client_events) = pair(config(50), config(50)).await;
    let mut last = None;
    for (n, kind) in [TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls]
        .into_iter()
        .enumerate()
    {
        let req = request("MESSAGE", kind.via_name(), &format!("msg{n}"));
        let sent = client
            .send_request(req, destination(&server, kind))
            .await
            .unwrap();
        let (e, _) = until(&mut server_events, WAIT, is_request).await;
        let EndpointEvent::Request {
            transaction,
            request,
            origin,
            cancels,
        } = e
        else {
            unreachable!()
        };
        assert_eq!(origin.kind, kind);
        assert_eq!(origin.connection.is_some(), kind.is_stream());
        assert!(origin.source.ip().is_loopback());
        assert_eq!(cancels, None);
        assert!(!origin.peer_authenticated);
        server
            .send_response(transaction, response(&request, 200))
            .await
            .unwrap();
        last = Some((transaction, request));
        let (e, _) = until(&mut client_events, WAIT, is_final_response).await;
        let EndpointEvent::Response {
            transaction: got,
            response,
            origin: from,
        } = e
        else {
            unreachable!()
        };
        assert_eq!(got, sent);
        assert_eq!(response.status(), Some(200));
        assert_eq!(from.kind, kind);
        if kind.is_stream() {
            // The response came back over the connection the client opened
            // (RFC 3261 18.2.2): one connection each way, not two.
            assert!(from.connection.is_some());
            assert_eq!(
                from.connection,
                client.transport().connection_to(kind, from.source)
            );
        }
    }
    // One TCP and one TLS connection in all: no response opened its own.
    assert_eq!(server.transport().connection_count(), 2);
    assert_eq!(client.transport().connection_count(), 2);
    // The TLS server transaction ended with its final response (reliable
    // transport): answering it again is a typed error.
    let (ended, request) = last.unwrap();
    let err = server
        .send_response(ended, response(&request, 200))
        .await
        .unwrap_err();
    assert!(matches!(err, EndpointError::Transaction(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_2xx_and_the_tus_ack_over_udp_and_tcp() {
    let (server, mut server_events, client, mut client_events) = pair(config(50), config(50)).await;
    for kind in [TransportKind::Udp, TransportKind::Tcp] {
        let marker = format!("inv-{kind}");
        let invite = request("INVITE", kind.via_name(), &marker);
        let dest = destination(&server, kind);
        let id = client
            .send_request(invite.clone(), dest.clone())
            .await
            .unwrap();
        let (e, _) = until(&mut server_events, WAIT, is_request).await;
        let EndpointEvent::Request {
            transaction,
            request,
            ..
        } = e
        else {
            unreachable!()
        };
        server
            .send_response(transaction, response(&request, 180))
            .await
            .unwrap();
        let ok = response(&request, 200);
        server.send_response(transaction, ok.clone()).await.unwrap();
        let (e, skipped) = until(&mut client_events, WAIT, is_final_response).await;
        assert!(
            skipped.iter().any(|e| matches!(e,
                EndpointEvent::Response { transaction, response, .. }
                    if *transaction == id && response.status() == Some(180))),
            "{skipped:?}"
        );
        let EndpointEvent::Response { response, .. } = e else {
            unreachable!()
        };
        assert_eq!(response.status(), Some(200));
        // The 2xx is the TU's to acknowledge, outside the transaction.
        let ack = ack_for_2xx(&invite, &response, kind, &marker);
        client.send_stateless(ack, dest).await.unwrap();
        let (e, _) = until(&mut server_events, WAIT, |e| {
            matches!(e, EndpointEvent::Ack { .. })
        })
        .await;
        let EndpointEvent::Ack {
            transaction: acked,
            origin,
            request: got,
        } = e
        else {
            unreachable!()
        };
        // A new branch (17.1.1.3): it matches no server transaction and is
        // the TU's to pair with its 2xx.
        assert_eq!(acked, None);
        assert_eq!(got.call_id().unwrap(), request.call_id().unwrap());
        assert_eq!(origin.kind, kind);
    }
}

fn ack_for_2xx(invite: &Message, ok: &Message, kind: TransportKind, marker: &str) -> Message {
    MessageBuilder::request("ACK", "sip:registrar.example")
        .unwrap()
        .header(
            "Via",
            &format!(
                "SIP/2.0/{} client.example;branch=z9hG4bKack{marker}",
                kind.via_name()
            ),
        )
        .unwrap()
        .header("Max-Forwards", "70")
        .unwrap()
        .header("From", invite.header(HeaderName::From).unwrap())
        .unwrap()
        .header("To", ok.header(HeaderName::To).unwrap())
        .unwrap()
        .header("Call-ID", invite.header(HeaderName::CallId).unwrap())
        .unwrap()
        .header("CSeq", "1 ACK")
        .unwrap()
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_request_times_out_and_its_retransmissions_are_absorbed() {
    let (_server, mut server_events, client, mut client_events) =
        pair(config(20), config(20)).await;
    let started = tokio::time::Instant::now();
    let id = client
        .send_request(
            request("OPTIONS", "UDP", "silent"),
            destination(&_server, TransportKind::Udp),
        )
        .await
        .unwrap();
    let (e, _) = until(&mut client_events, WAIT, |e| {
        matches!(e, EndpointEvent::TimedOut { .. })
    })
    .await;
    assert!(matches!(e, EndpointEvent::TimedOut { transaction } if transaction == id));
    // Timer F: 64·T1.
    assert!(started.elapsed() >= Duration::from_millis(64 * 20));
    let (e, _) = until(&mut client_events, WAIT, |e| {
        matches!(e, EndpointEvent::Terminated { .. })
    })
    .await;
    assert!(matches!(e, EndpointEvent::Terminated { transaction } if transaction == id));
    // The server saw the request once, however often it was retransmitted.
    let mut requests = 0;
    while let Some(e) = server_events.try_recv() {
        requests += usize::from(is_request(&e));
    }
    assert_eq!(requests, 1);
    assert_eq!(client.live_transactions().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_fails_the_transaction() {
    let (_server, _server_events, client, mut client_events) = pair(config(50), config(50)).await;
    // A port with nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let id = client
        .send_request(
            request("OPTIONS", "TCP", "refused"),
            Destination::tcp(closed),
        )
        .await
        .unwrap();
    let (e, _) = until(&mut client_events, WAIT, |e| {
        matches!(e, EndpointEvent::TransportFailed { .. })
    })
    .await;
    assert!(matches!(e, EndpointEvent::TransportFailed { transaction } if transaction == id));
    assert_eq!(client.live_transactions().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_live_transactions_finish_and_refuses_new_ones() {
    let (server, mut server_events, client, mut client_events) = pair(config(50), config(50)).await;
    let dest = destination(&server, TransportKind::Tcp);
    let invite = client
        .send_request(request("INVITE", "TCP", "live"), dest.clone())
        .await
        .unwrap();
    let (e, _) = until(&mut server_events, WAIT, is_request).await;
    let EndpointEvent::Request {
        transaction,
        request: live,
        ..
    } = e
    else {
        unreachable!()
    };
    let shutting = tokio::spawn({
        let server = server.clone();
        async move { server.shutdown(Duration::from_secs(10)).await }
    });
    // The server stops starting transactions...
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        server
            .send_request(request("OPTIONS", "TCP", "new-out"), dest.clone())
            .await,
        Err(EndpointError::ShuttingDown)
    );
    // ...and answers new requests 503 without showing them (the client's
    // connection is already open, so it still reaches the server).
    let refused = client
        .send_request(request("OPTIONS", "TCP", "new-in"), dest.clone())
        .await
        .unwrap();
    let response = response_of(&mut client_events, refused).await;
    assert_eq!(response.status(), Some(503));
    assert!(
        !shutting.is_finished(),
        "the live INVITE must hold the shutdown"
    );
    // The live INVITE is answered and ends; the shutdown then completes.
    server
        .send_response(transaction, response_with(&live, 486))
        .await
        .unwrap();
    let (e, _) = until(&mut client_events, WAIT, is_final_response).await;
    assert!(
        matches!(e, EndpointEvent::Response { transaction, ref response, .. }
        if transaction == invite && response.status() == Some(486))
    );
    let report = tokio::time::timeout(WAIT, shutting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.abandoned, 0);
    // Afterwards the endpoint is closed and its event stream ends.
    let mut ended = false;
    for _ in 0..100 {
        match tokio::time::timeout(WAIT, server_events.recv())
            .await
            .unwrap()
        {
            Some(e) => assert!(!is_request(&e), "{e:?}"),
            None => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended);
    assert_eq!(server.live_transactions().await, Err(EndpointError::Closed));
}

fn response_with(request: &Message, status: u16) -> Message {
    MessageBuilder::response_to(request, status, "Busy Here")
        .unwrap()
        .to_tag("srv")
        .unwrap()
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_deadline_cuts_what_is_left() {
    let (server, mut server_events, client, _client_events) = pair(config(50), config(50)).await;
    client
        .send_request(
            request("INVITE", "UDP", "never-answered"),
            destination(&server, TransportKind::Udp),
        )
        .await
        .unwrap();
    until(&mut server_events, WAIT, is_request).await;
    let started = tokio::time::Instant::now();
    let report = server.shutdown(Duration::from_millis(300)).await.unwrap();
    assert_eq!(report.abandoned, 1);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < WAIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_shuts_the_endpoint_down() {
    let (server, mut server_events, client, mut client_events) = pair(config(50), config(50)).await;
    let addr = server.transport().local_addr(TransportKind::Tcp).unwrap();
    let transport = server.transport().clone();
    drop(server);
    // Nothing was live: the event stream ends at once and the listeners
    // are closed.
    let end = tokio::time::timeout(WAIT, async {
        while server_events.recv().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the event stream did not end");
    drop(transport);
    assert!(std::net::TcpStream::connect(addr).is_err());
    // A request toward it now fails in the transport.
    let id = client
        .send_request(
            request("OPTIONS", "TCP", "after-drop"),
            Destination::tcp(addr),
        )
        .await
        .unwrap();
    let (e, _) = until(&mut client_events, WAIT, |e| {
        matches!(e, EndpointEvent::TransportFailed { .. })
    })
    .await;
    assert!(matches!(e, EndpointEvent::TransportFailed { transaction } if transaction == id));
}

/// A server whose application falls behind: past the overload backlog, new
/// requests are answered 503 with Retry-After and never shown, while a
/// request in a dialog (To tag) still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_endpoint_refuses_new_requests_but_not_in_dialog_ones() {
    let (server, mut server_events, client, mut client_events) =
        pair(config(50).with_overload_backlog(1), config(50)).await;
    let dest = destination(&server, TransportKind::Udp);
    // Nothing reads the server's events: two wait (backlog 0, then 1),
    // the next two are refused.
    let mut sent = Vec::new();
    for marker in ["ov-a", "ov-b", "ov-c", "ov-d"] {
        let id = client
            .send_request(request("OPTIONS", "UDP", marker), dest.clone())
            .await
            .unwrap();
        sent.push(id);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut refused = Vec::new();
    while refused.len() < 2 {
        let (e, _) = until(&mut client_events, WAIT, is_final_response).await;
        let EndpointEvent::Response {
            transaction,
            response,
            ..
        } = e
        else {
            unreachable!()
        };
        assert_eq!(response.status(), Some(503));
        assert_eq!(response.header(HeaderName::RetryAfter), Some("5"));
        refused.push(transaction);
    }
    assert_eq!(refused, sent[2..].to_vec());
    // A request in a dialog is not refused, backlog or not.
    let bye = MessageBuilder::from_message(&request("BYE", "UDP", "ov-bye"))
        .to_tag("dialog")
        .unwrap()
        .build()
        .unwrap();
    client.send_request(bye, dest.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut shown = Vec::new();
    while let Ok(Some(e)) =
        tokio::time::timeout(Duration::from_millis(200), server_events.recv()).await
    {
        if let EndpointEvent::Request { request, .. } = e {
            shown.push(request.call_id().unwrap().to_owned());
        }
    }
    assert_eq!(shown, ["call-ov-a", "call-ov-b", "call-ov-bye"]);
}

/// At the transaction layer's cap, a new request is answered 503 without a
/// transaction (a To tag of its own, Retry-After) instead of being
/// dropped; a retransmission of it gets the same answer, and the
/// application never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_transaction_cap_a_new_request_gets_a_stateless_503() {
    let mut server_config = config(50);
    server_config.transactions = server_config.transactions.with_max_transactions(1);
    let (server, mut server_events, client, mut client_events) =
        pair(server_config, config(50)).await;
    let dest = destination(&server, TransportKind::Udp);
    // The first request holds the only transaction: nobody answers it.
    client
        .send_request(request("OPTIONS", "UDP", "cap-a"), dest.clone())
        .await
        .unwrap();
    until(&mut server_events, WAIT, is_request).await;

    let refused = client
        .send_request(request("OPTIONS", "UDP", "cap-b"), dest.clone())
        .await
        .unwrap();
    let response = response_of(&mut client_events, refused).await;
    assert_eq!(response.status(), Some(503));
    assert_eq!(response.header(HeaderName::RetryAfter), Some("5"));
    assert!(response.to().unwrap().tag().is_some());

    // The same request twice, from a bare socket: the same answer twice.
    let raw = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let bytes = request("OPTIONS", "UDP", "cap-raw").as_bytes().clone();
    let mut tags = Vec::new();
    for _ in 0..2 {
        raw.send_to(&bytes, dest.addr).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(WAIT, raw.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        buf.truncate(n);
        let answer = Message::parse(Bytes::from(buf)).unwrap();
        assert_eq!(answer.status(), Some(503));
        tags.push(answer.to().unwrap().tag().unwrap().to_owned());
    }
    assert_eq!(tags[0], tags[1]);
    assert_ne!(
        Some(tags[0].as_str()),
        response.to().unwrap().tag(),
        "another request, another tag"
    );
    // Neither refused request reached the application.
    while let Ok(Some(e)) =
        tokio::time::timeout(Duration::from_millis(200), server_events.recv()).await
    {
        assert!(!is_request(&e), "{e:?}");
    }
}
