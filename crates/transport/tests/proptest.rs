//! Arbitrary bytes from a stream or datagram peer never panic a task of the
//! transport, never leak a connection slot, and never stop it serving.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // helpers outside #[test] functions

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use carevox_sip::Limits;
use carevox_transport::{Destination, Event, TransportConfig, TransportKind};
use common::*;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn arbitrary_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..3000),
        // Mostly SIP-looking text: start lines, header lines, CRLFs.
        proptest::collection::vec(
            prop_oneof![
                Just(b"INVITE sip:a@b SIP/2.0\r\n".to_vec()),
                Just(b"SIP/2.0 200 OK\r\n".to_vec()),
                Just(b"Content-Length: 10\r\n".to_vec()),
                Just(b"Content-Length: 99999999999\r\n".to_vec()),
                Just(b"Via: SIP/2.0/TCP h;branch=z9hG4bK1;alias\r\n".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"\r\n\r\n".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..40),
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

#[test]
fn arbitrary_bytes_never_break_the_transport() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        hook(info);
    }));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = TransportConfig::default()
        .with_limits(Limits::default().with_max_message_size(2048))
        .with_idle_timeout(Some(Duration::from_secs(2)));
    let (server, mut server_in) = rt.block_on(start(config, true, true, None, None));
    let tcp = server.local_addr(TransportKind::Tcp).unwrap();
    let udp = server.local_addr(TransportKind::Udp).unwrap();
    let delivered = Arc::new(AtomicUsize::new(0));
    let counter = delivered.clone();
    rt.spawn(async move {
        while let Some(ev) = server_in.recv().await {
            if matches!(ev, Event::Message(_)) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let peer = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();

    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(48));
    runner
        .run(&arbitrary_input(), |input| {
            rt.block_on(async {
                let mut s = TcpStream::connect(tcp).await.unwrap();
                let _ = s.write_all(&input).await;
                let _ = s.shutdown().await;
                let mut sink = Vec::new();
                let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut sink)).await;
                let _ = peer.send_to(&input, udp).await;
            });
            Ok(())
        })
        .unwrap();

    rt.block_on(async {
        // Every connection was closed and its slot given back.
        for _ in 0..200 {
            if server.connection_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(server.connection_count(), 0);
        // And it still serves.
        let (client, _c) = start(TransportConfig::default(), false, false, None, None).await;
        let before = delivered.load(Ordering::SeqCst);
        client
            .send_message(&Destination::tcp(tcp), &request("OPTIONS", "TCP", "after"))
            .await
            .unwrap();
        for _ in 0..500 {
            if delivered.load(Ordering::SeqCst) > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(delivered.load(Ordering::SeqCst) > before);
    });
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a task panicked");
}
