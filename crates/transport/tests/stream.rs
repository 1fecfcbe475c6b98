//! Connection behaviour against raw peers on 127.0.0.1: CRLF keep-alives,
//! idle timeouts, message-size limits, garbage, backpressure, connection
//! limits and graceful shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // helpers outside #[test] functions

mod common;

use std::time::Duration;

use bytes::Bytes;
use carevox_sip::Limits;
use carevox_transport::{
    CloseReason, Destination, Error, Event, Transport, TransportConfig, TransportKind,
};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// Reads until EOF or error, failing after [`WAIT`]; returns what was read.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match timeout(WAIT, stream.read(&mut buf))
            .await
            .expect("closed in time")
        {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

async fn next_closed(incoming: &mut carevox_transport::Incoming) -> CloseReason {
    loop {
        if let Event::Closed { reason, .. } = next_event(incoming).await {
            return reason;
        }
    }
}

#[tokio::test]
async fn double_crlf_is_answered_with_a_single_crlf() {
    let (server, _server_in) = start(TransportConfig::default(), false, true, None, None).await;
    let mut peer = TcpStream::connect(server.local_addr(TransportKind::Tcp).unwrap())
        .await
        .unwrap();
    for _ in 0..2 {
        peer.write_all(b"\r\n\r\n").await.unwrap();
        let mut pong = [0u8; 2];
        timeout(WAIT, peer.read_exact(&mut pong))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&pong, b"\r\n");
    }
    // Nothing more than one CRLF per ping.
    let mut extra = [0u8; 1];
    assert!(
        timeout(Duration::from_millis(200), peer.read(&mut extra))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn client_connections_send_pings_and_close_without_pongs() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = TransportConfig::default()
        .with_keepalive_interval(Some(Duration::from_millis(100)))
        .with_pong_timeout(Duration::from_millis(1500));
    let (client, mut client_in) = start(config, false, false, None, None).await;
    client
        .send_message(&Destination::tcp(addr), &request("OPTIONS", "TCP", "ka1"))
        .await
        .unwrap();
    let (mut peer, _) = listener.accept().await.unwrap();
    let len = request("OPTIONS", "TCP", "ka1").as_bytes().len();
    let mut msg = vec![0u8; len];
    peer.read_exact(&mut msg).await.unwrap();
    // A ping arrives; answer it.
    let mut ping = [0u8; 4];
    timeout(WAIT, peer.read_exact(&mut ping))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&ping, b"\r\n\r\n");
    peer.write_all(b"\r\n").await.unwrap();
    // And another one after the interval.
    timeout(WAIT, peer.read_exact(&mut ping))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&ping, b"\r\n\r\n");
    // This one gets no pong: the flow has failed and the connection closes.
    assert_eq!(
        next_closed(&mut client_in).await,
        CloseReason::KeepaliveFailed
    );
    assert_eq!(client.connection_count(), 0);
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let config = TransportConfig::default().with_idle_timeout(Some(Duration::from_millis(800)));
    let (server, mut server_in) = start(config, false, true, None, None).await;
    let mut peer = TcpStream::connect(server.local_addr(TransportKind::Tcp).unwrap())
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    // Activity keeps it open.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        peer.write_all(b"\r\n\r\n").await.unwrap();
    }
    assert_eq!(server.connection_count(), 1);
    let rest = read_to_close(&mut peer).await;
    assert!(rest.iter().all(|b| *b == b'\r' || *b == b'\n'));
    assert!(started.elapsed() >= Duration::from_millis(450 + 800));
    assert_eq!(next_closed(&mut server_in).await, CloseReason::Idle);
    assert_eq!(server.connection_count(), 0);
}

#[tokio::test]
async fn an_oversized_message_closes_the_connection() {
    let config =
        TransportConfig::default().with_limits(Limits::default().with_max_message_size(2000));
    let (server, mut server_in) = start(config, false, true, None, None).await;
    let mut peer = TcpStream::connect(server.local_addr(TransportKind::Tcp).unwrap())
        .await
        .unwrap();
    // A small message passes...
    let ok = request("OPTIONS", "TCP", "small");
    peer.write_all(ok.as_bytes()).await.unwrap();
    assert_eq!(
        next_message(&mut server_in).await.message.as_bytes(),
        ok.as_bytes()
    );
    // ...one announcing a 5000-byte body does not, nor does a head that
    // never ends.
    let big = format!(
        "OPTIONS sip:a.example SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\n\
         Content-Length: 5000\r\n\r\n{}",
        "x".repeat(5000)
    );
    let _ = peer.write_all(big.as_bytes()).await;
    read_to_close(&mut peer).await;
    assert_eq!(
        next_closed(&mut server_in).await,
        CloseReason::MessageTooLarge
    );

    let mut peer = TcpStream::connect(server.local_addr(TransportKind::Tcp).unwrap())
        .await
        .unwrap();
    let endless = format!("OPTIONS sip:a.example SIP/2.0\r\nX: {}", "y".repeat(4000));
    let _ = peer.write_all(endless.as_bytes()).await;
    read_to_close(&mut peer).await;
    assert_eq!(
        next_closed(&mut server_in).await,
        CloseReason::MessageTooLarge
    );
    assert_eq!(server.connection_count(), 0);

    // Sending one is refused before it is queued.
    let big_msg = Bytes::from(big);
    let err = server
        .send(&Destination::tcp("127.0.0.1:9".parse().unwrap()), big_msg)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::MessageTooLarge { limit: 2000, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn garbage_closes_the_connection_and_nothing_is_delivered() {
    let (server, mut server_in) = start(TransportConfig::default(), false, true, None, None).await;
    for garbage in [
        &b"\x16\x03\x01\x00\x05hello\r\n\r\n"[..],
        b"NOT SIP AT ALL\r\n\r\n",
        b"INVITE sip:a SIP/2.0\r\nno colon here\r\n\r\n",
        b"INVITE sip:a SIP/2.0\r\nContent-Length: -5\r\n\r\n",
        b"\xff\xfe\xfd\r\n\r\n",
    ] {
        let mut peer = TcpStream::connect(server.local_addr(TransportKind::Tcp).unwrap())
            .await
            .unwrap();
        peer.write_all(garbage).await.unwrap();
        read_to_close(&mut peer).await;
        loop {
            match next_event(&mut server_in).await {
                Event::Message(_) => panic!("garbage was delivered as a message"),
                Event::Closed { reason, .. } => {
                    assert_eq!(reason, CloseReason::BadInput);
                    break;
                }
                _ => {}
            }
        }
    }
    assert_eq!(server.connection_count(), 0);
}

#[tokio::test]
async fn garbage_datagrams_are_dropped_and_the_socket_keeps_working() {
    let (server, mut server_in) = start(TransportConfig::default(), true, false, None, None).await;
    let addr = server.local_addr(TransportKind::Udp).unwrap();
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    peer.send_to(b"garbage\r\n\r\n", addr).await.unwrap();
    peer.send_to(&[0u8; 3000], addr).await.unwrap();
    // A double CRLF gets a single CRLF back.
    peer.send_to(b"\r\n\r\n", addr).await.unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"\r\n");
    let ok = request("OPTIONS", "UDP", "after");
    peer.send_to(ok.as_bytes(), addr).await.unwrap();
    let got = next_message(&mut server_in).await;
    assert_eq!(got.message.as_bytes(), ok.as_bytes());
}

#[tokio::test]
async fn a_peer_that_never_reads_gets_a_bounded_queue_and_a_typed_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limit = 64 * 1024;
    let config = TransportConfig::default()
        .with_max_queued_bytes(limit)
        .with_write_timeout(Duration::from_secs(60));
    let (client, _client_in) = start(config, false, false, None, None).await;
    let msg = big_request("MESSAGE", "TCP", b'p', 8000);
    let dest = Destination::tcp(addr);
    let first = client.send_message(&dest, &msg).await.unwrap();
    let conn = first.connection.unwrap();
    // The peer accepts and then never reads.
    let (_peer, _) = listener.accept().await.unwrap();
    let mut refused = None;
    for _ in 0..10_000 {
        match client.send_message(&dest, &msg).await {
            Ok(sent) => assert_eq!(sent.connection, Some(conn)),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
        let queued = client.queued_bytes(conn).unwrap();
        assert!(queued <= limit, "{queued} bytes queued, limit {limit}");
        tokio::task::yield_now().await;
    }
    match refused.expect("the queue filled up") {
        Error::QueueFull {
            connection,
            queued,
            len,
            limit: l,
        } => {
            assert_eq!(connection, conn);
            assert_eq!(l, limit);
            assert_eq!(len, msg.as_bytes().len());
            assert!(queued + len > limit && queued <= limit);
        }
        other => panic!("expected QueueFull, got {other}"),
    }
    assert!(client.queued_bytes(conn).unwrap() <= limit);
}

#[tokio::test]
async fn a_peer_that_never_reads_is_cut_after_the_write_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = TransportConfig::default()
        .with_max_queued_bytes(64 * 1024 * 1024)
        .with_write_timeout(Duration::from_millis(500));
    let (client, mut client_in) = start(config, false, false, None, None).await;
    let msg = big_request("MESSAGE", "TCP", b'q', 30_000);
    let dest = Destination::tcp(addr);
    client.send_message(&dest, &msg).await.unwrap();
    let (_peer, _) = listener.accept().await.unwrap();
    // Far more than the socket buffers hold.
    for _ in 0..1500 {
        if client.send_message(&dest, &msg).await.is_err() {
            break;
        }
    }
    assert_eq!(next_closed(&mut client_in).await, CloseReason::WriteStalled);
    assert_eq!(client.connection_count(), 0);
}

#[tokio::test]
async fn the_connection_limit_holds() {
    let config = TransportConfig::default().with_max_connections(2);
    let (server, mut server_in) = start(config.clone(), false, true, None, None).await;
    let addr = server.local_addr(TransportKind::Tcp).unwrap();
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    for peer in [&mut a, &mut b] {
        peer.write_all(b"\r\n\r\n").await.unwrap();
        let mut pong = [0u8; 2];
        timeout(WAIT, peer.read_exact(&mut pong))
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(server.connection_count(), 2);
    // The third is closed at once.
    let mut c = TcpStream::connect(addr).await.unwrap();
    let _ = c.write_all(b"\r\n\r\n").await;
    assert!(read_to_close(&mut c).await.is_empty());
    assert_eq!(server.connection_count(), 2);
    // Once one closes, a new one is accepted.
    drop(a);
    assert_eq!(next_closed(&mut server_in).await, CloseReason::PeerClosed);
    let mut d = TcpStream::connect(addr).await.unwrap();
    d.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    timeout(WAIT, d.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();

    // Outbound connections count too.
    let (client, _client_in) = start(config, false, false, None, None).await;
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l3 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let msg = request("OPTIONS", "TCP", "lim");
    for l in [&l1, &l2] {
        client
            .send_message(&Destination::tcp(l.local_addr().unwrap()), &msg)
            .await
            .unwrap();
    }
    let err = client
        .send_message(&Destination::tcp(l3.local_addr().unwrap()), &msg)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TooManyConnections { limit: 2 }),
        "{err}"
    );
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting_flushes_and_closes() {
    let (server, mut server_in) = start(TransportConfig::default(), true, true, None, None).await;
    let (client, mut client_in) = start(TransportConfig::default(), false, false, None, None).await;
    let tcp_addr = server.local_addr(TransportKind::Tcp).unwrap();
    let dest = Destination::tcp(tcp_addr);
    client
        .send_message(&dest, &request("INVITE", "TCP", "live"))
        .await
        .unwrap();
    let live = next_message(&mut server_in).await;

    server.stop_accepting();
    // No new connection is accepted...
    let refused = TcpStream::connect(tcp_addr).await;
    if let Ok(mut s) = refused {
        let _ = s.write_all(b"\r\n\r\n").await;
        assert!(read_to_close(&mut s).await.is_empty());
    }
    // ...but the live transaction finishes over its connection.
    let mut resp = Vec::new();
    for status in [180, 200] {
        let r = response(&live.message, status);
        server
            .send_message(&Destination::reply_to(&live), &r)
            .await
            .unwrap();
        resp.push(r);
    }
    // A large final message, queued right before close, is flushed.
    let last = big_request("BYE", "TCP", b'z', 20_000);
    server
        .send_message(&Destination::reply_to(&live), &last)
        .await
        .unwrap();
    server.close(Duration::from_secs(5)).await;
    for r in &resp {
        assert_eq!(
            next_message(&mut client_in).await.message.as_bytes(),
            r.as_bytes()
        );
    }
    assert_eq!(
        next_message(&mut client_in).await.message.as_bytes(),
        last.as_bytes()
    );
    assert_eq!(next_closed(&mut client_in).await, CloseReason::PeerClosed);
    // The server's event stream ends, after reporting the close.
    let mut closed = 0;
    while let Some(ev) = timeout(WAIT, server_in.recv()).await.unwrap() {
        if matches!(ev, Event::Closed { .. }) {
            closed += 1;
        }
    }
    assert_eq!(closed, 1);
    assert_eq!(server.connection_count(), 0);
    let err = server
        .send_message(&dest, &request("OPTIONS", "TCP", "after"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Closed));
}

#[tokio::test]
async fn a_dropped_incoming_does_not_panic_the_transport() {
    let (server, server_in) = start(TransportConfig::default(), true, true, None, None).await;
    drop(server_in);
    let (client, _c) = start(TransportConfig::default(), true, false, None, None).await;
    let msg = request("OPTIONS", "TCP", "noreader");
    let _ = client
        .send_message(
            &Destination::tcp(server.local_addr(TransportKind::Tcp).unwrap()),
            &msg,
        )
        .await;
    let _ = client
        .send_message(
            &Destination::udp(server.local_addr(TransportKind::Udp).unwrap()),
            &msg,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    Transport::close(&server, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn dropping_the_last_handle_shuts_the_transport_down() {
    let (server, mut server_in) = start(TransportConfig::default(), true, true, None, None).await;
    let addr = server.local_addr(TransportKind::Tcp).unwrap();
    let mut peer = TcpStream::connect(addr).await.unwrap();
    let mut pong = [0u8; 2];
    peer.write_all(b"\r\n\r\n").await.unwrap();
    timeout(WAIT, peer.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    // A clone keeps it running.
    let clone = server.clone();
    drop(server);
    peer.write_all(b"\r\n\r\n").await.unwrap();
    timeout(WAIT, peer.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    drop(clone);
    // The last one shuts it down: connections close, events end, the
    // listener goes.
    read_to_close(&mut peer).await;
    while timeout(WAIT, server_in.recv()).await.unwrap().is_some() {}
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the listener still accepts");
}
