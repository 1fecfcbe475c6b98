//! Media on 127.0.0.1: two endpoints sending different tones through the
//! SRTP relay, each hearing the other's tone (found by frequency); what
//! travels between the relay and the callee is SRTP with an 80-bit tag from
//! which no tone can be recovered; the relay's tap hears the caller; forged
//! packets sent at the relay change nothing; the port pool hands out and
//! takes back even/odd pairs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods,
    clippy::cast_precision_loss
)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use carevox::audio::G711;
use carevox::media::{SrtpSession, answer_audio, offer_crypto, offerer_srtp};
use carevox::recording::Speaker;
use carevox::relay::{MediaPeer, MediaRelay, RelayConfig};
use carevox::sdes::SdesOptions;
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::crypto::{Crypto, CryptoSuite};
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use carevox_pbx::media::{
    EndpointMedia, PortPair, PortPool, RecordedRelay, Source, Tapped, spawn_endpoint, spawn_relay,
};
use ring::rand::SystemRandom;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

mod common;

use common::frames_with_tone;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn offer_of(line: &Crypto, port: u16) -> SessionDescription {
    SessionDescription::parse(&format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0\r\na=crypto:{line}\r\n"
    ))
    .unwrap()
}

/// The caller's session, the relay's two, the callee's: each leg keyed by
/// its own offer/answer.
fn keys() -> (SrtpSession, SrtpSession, SrtpSession, SrtpSession) {
    let rng = SystemRandom::new();
    let options = SdesOptions::new();
    let caps = AudioCapabilities::new(vec![Codec::pcmu()]);
    let suite = CryptoSuite::AesCm128HmacSha1_80;
    let caller_line = offer_crypto(1, suite.clone(), &rng).unwrap();
    let to_relay = answer_audio(
        &offer_of(&caller_line, 4000),
        &caps,
        &LocalMedia::new("127.0.0.1", 30000, "1"),
        &rng,
        &options,
    )
    .unwrap();
    let caller = offerer_srtp(&[caller_line], &to_relay.answer.sdp, &options).unwrap();
    let relay_line = offer_crypto(1, suite, &rng).unwrap();
    let answered = answer_audio(
        &offer_of(&relay_line, 30002),
        &caps,
        &LocalMedia::new("127.0.0.1", 5000, "2"),
        &rng,
        &options,
    )
    .unwrap();
    let toward_callee = offerer_srtp(&[relay_line], &answered.answer.sdp, &options).unwrap();
    (
        caller,
        to_relay.srtp.unwrap(),
        toward_callee,
        answered.srtp.unwrap(),
    )
}

fn samples(packets: &[Vec<u8>]) -> Vec<i16> {
    packets
        .iter()
        .flat_map(|p| p[12..].iter().map(|&b| G711::Pcmu.decode(b)))
        .collect()
}

async fn drain(rx: &mut mpsc::Receiver<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    while let Ok(p) = rx.try_recv() {
        all.push(p);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_endpoints_hear_each_other_through_the_relay_and_the_wire_is_srtp() {
    let (caller_keys, relay_a, relay_b, callee_keys) = keys();
    let pool = PortPool::new(LOCALHOST, 42000, 42099);
    let relay_to_caller = pool.bind().await.unwrap();
    let relay_to_callee = pool.bind().await.unwrap();
    let caller_ports = PortPair::ephemeral(LOCALHOST).await.unwrap();
    let callee_ports = PortPair::ephemeral(LOCALHOST).await.unwrap();
    // An eavesdropper between the relay and the callee: it keeps a copy of
    // what the relay sends the callee and passes each datagram on in its
    // direction (the callee's own packets go on to the relay).
    let wire = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let wire_addr = wire.local_addr().unwrap();
    let callee_addr = callee_ports.rtp_addr().unwrap();
    let relay_b_addr = relay_to_callee.rtp_addr().unwrap();
    let (wire_tx, mut wire_rx) = mpsc::channel::<Vec<u8>>(1000);
    let eavesdropper = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let (n, from) = wire.recv_from(&mut buf).await.unwrap();
            let to = if from == callee_addr {
                relay_b_addr
            } else {
                let _ = wire_tx.try_send(buf[..n].to_vec());
                callee_addr
            };
            wire.send_to(&buf[..n], to).await.unwrap();
        }
    });

    let relay = MediaRelay::new(
        relay_a,
        MediaPeer::new(caller_ports.rtp_addr().unwrap()),
        relay_b,
        MediaPeer::new(wire_addr),
        // The callee answers from its own port, not the eavesdropper's:
        // keep sending where the SDP said.
        RelayConfig::default().with_follow_source(false),
    );
    let relay_a_addr = relay_to_caller.rtp_addr().unwrap();
    let (tap_tx, mut tap_rx) = mpsc::channel(1000);
    // Recorded: both legs first hear 300 ms of a 1400 Hz announcement.
    let announcement = carevox_pbx::recording::default_announcement()[..2400].to_vec();
    let relay_task = spawn_relay(
        relay,
        relay_to_caller,
        relay_to_callee,
        Some(RecordedRelay {
            sink: tap_tx,
            announcement: Arc::new(announcement),
            ssrc: 0x3333,
        }),
    );

    let (caller_sink, mut caller_heard) = mpsc::channel(1000);
    let (callee_sink, mut callee_heard) = mpsc::channel(1000);
    let caller = spawn_endpoint(
        caller_keys,
        caller_ports,
        EndpointMedia {
            law: G711::Pcmu,
            ssrc: 0x1111,
            source: Source::Tone(440.0),
            peer: relay_a_addr,
            dtmf: None,
        },
        Some(caller_sink),
    )
    .unwrap();
    let callee = spawn_endpoint(
        callee_keys,
        callee_ports,
        EndpointMedia {
            law: G711::Pcmu,
            ssrc: 0x2222,
            source: Source::Tone(1000.0),
            peer: relay_b_addr,
            dtmf: None,
        },
        Some(callee_sink),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let caller_stats = caller.stop().await;
    let callee_stats = callee.stop().await;
    let relay_stats = relay_task.stop().await;
    eavesdropper.abort();

    let heard_by_callee = samples(&drain(&mut callee_heard).await);
    let heard_by_caller = samples(&drain(&mut caller_heard).await);
    assert!(
        heard_by_callee.len() >= 8000 / 2,
        "{}",
        heard_by_callee.len()
    );
    assert!(frames_with_tone(&heard_by_callee[2400..], 8000, 440.0) > 0.9);
    assert!(frames_with_tone(&heard_by_callee, 8000, 1000.0) < 0.05);
    assert!(frames_with_tone(&heard_by_caller[2400..], 8000, 1000.0) > 0.9);
    assert!(frames_with_tone(&heard_by_caller, 8000, 440.0) < 0.05);
    // Each party first heard the announcement, then the other party.
    assert!(frames_with_tone(&heard_by_callee[..2400], 8000, 1400.0) > 0.9);
    assert!(frames_with_tone(&heard_by_caller[..2400], 8000, 1400.0) > 0.9);
    assert!(frames_with_tone(&heard_by_callee[2400..], 8000, 1400.0) < 0.05);
    // The tap had every party's packets, each by its speaker, in the
    // order they arrived.
    let mut tapped: Vec<Tapped> = Vec::new();
    while let Ok(t) = tap_rx.try_recv() {
        tapped.push(t);
    }
    let of = |who: Speaker| -> Vec<i16> {
        let packets: Vec<Vec<u8>> = tapped
            .iter()
            .filter(|t| t.speaker == who)
            .map(|t| t.packet.clone())
            .collect();
        samples(&packets)
    };
    assert_eq!(of(Speaker::Own).len(), 2400);
    assert!(frames_with_tone(&of(Speaker::Own), 8000, 1400.0) > 0.9);
    assert!(frames_with_tone(&of(Speaker::A), 8000, 440.0) > 0.9);
    assert!(frames_with_tone(&of(Speaker::B), 8000, 1000.0) > 0.9);
    assert!(tapped.windows(2).all(|w| w[0].at <= w[1].at));
    let first_party = tapped.iter().position(|t| t.speaker != Speaker::Own);
    let last_own = tapped.iter().rposition(|t| t.speaker == Speaker::Own);
    assert!(
        first_party > last_own,
        "nobody is relayed during the announcement"
    );
    // On the wire: SRTP, 12-byte header + 160 bytes + 10-byte tag, from
    // which no tone comes back.
    let captured = drain(&mut wire_rx).await;
    assert!(captured.len() >= 20);
    assert!(captured.iter().all(|p| p.len() == 12 + 160 + 10));
    let in_clear: Vec<i16> = captured
        .iter()
        .flat_map(|p| p[12..172].iter().map(|&b| G711::Pcmu.decode(b)))
        .collect();
    assert!(frames_with_tone(&in_clear, 8000, 440.0) < 0.05);
    assert_eq!(relay_stats.a.auth_failures, 0);
    assert!(caller_stats.a.sent >= 40 && callee_stats.a.received >= 40);
    assert_eq!(pool.in_use(), 0, "the relay's ports went back to the pool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_packets_at_the_relay_change_nothing() {
    let (mut caller_keys, relay_a, relay_b, _) = keys();
    let a = PortPair::ephemeral(LOCALHOST).await.unwrap();
    let b = PortPair::ephemeral(LOCALHOST).await.unwrap();
    let a_addr = a.rtp_addr().unwrap();
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let caller = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let relay = MediaRelay::new(
        relay_a,
        MediaPeer::new(caller.local_addr().unwrap()),
        relay_b,
        MediaPeer::new(callee.local_addr().unwrap()),
        RelayConfig::default(),
    );
    let task = spawn_relay(relay, a, b, None);
    // Garbage, a forged packet with the right shape, from a stranger.
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut forged = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x11, 0x11];
    forged.extend_from_slice(&[0xff; 170]);
    for p in [&forged[..], &[0u8; 3][..], &[0x80; 40][..]] {
        stranger.send_to(p, a_addr).await.unwrap();
    }
    // Then one genuine packet from the caller.
    caller_keys.outbound.add_outbound_stream(0x1111).unwrap();
    let mut buf = vec![0u8; 300];
    buf[..12].copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x11, 0x11]);
    let n = caller_keys
        .outbound
        .protect_rtp_in_place(&mut buf, 172)
        .unwrap();
    caller.send_to(&buf[..n], a_addr).await.unwrap();
    let mut got = [0u8; 1500];
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), callee.recv_from(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(len, n, "only the genuine packet was forwarded");
    // Nothing else arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), callee.recv_from(&mut got))
            .await
            .is_err()
    );
    let stats = task.stop().await;
    assert_eq!(stats.a.received, 1);
    assert_eq!(stats.a.auth_failures + stats.a.refused, 3);
    assert_eq!(stats.a.moves, 0);
}

#[tokio::test]
async fn the_pool_hands_out_even_pairs_and_takes_them_back() {
    let pool = PortPool::new(LOCALHOST, 43001, 43010);
    let mut pairs = Vec::new();
    while let Ok(p) = pool.bind().await {
        assert_eq!(p.port() % 2, 0);
        assert!((43002..=43009).contains(&p.port()));
        pairs.push(p);
        assert!(pairs.len() <= 4);
    }
    assert_eq!(pairs.len(), 4);
    assert_eq!(pool.in_use(), 4);
    drop(pairs.pop());
    assert_eq!(pool.in_use(), 3);
    let again = pool.bind().await.unwrap();
    assert_eq!(pool.in_use(), 4);
    drop(again);
    drop(pairs);
    assert_eq!(pool.in_use(), 0);
}
