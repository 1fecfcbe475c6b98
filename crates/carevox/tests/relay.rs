//! The SRTP relay between two legs keyed by the facade's offer/answer:
//! RTP and RTCP both ways over every pair of suites carevox-srtp keys, each
//! leg with its own keys (a packet of one leg never opens with the other's),
//! tampered, replayed, garbage and forged packets refused without moving
//! anything, the media following an authenticated source only, the cap on
//! streams, and media made by the relay itself.

#![cfg(all(feature = "sip", feature = "srtp"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use std::net::SocketAddr;

use carevox::media::{SrtpSession, answer_audio, offer_crypto, offerer_srtp};
use carevox::relay::{Channel, Leg, MediaPeer, MediaRelay, PeerError, RelayConfig, RelayError};
use carevox::sdes::{SdesOptions, keyable_suites};
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::crypto::{Crypto, CryptoSuite};
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use carevox::srtp::Error as SrtpError;
use proptest::prelude::*;
use ring::rand::SystemRandom;

const CALLER: &str = "127.0.0.1:4000";
const CALLEE: &str = "127.0.0.1:5000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn offer_of(line: &Crypto, port: u16) -> SessionDescription {
    SessionDescription::parse(&format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP 0\r\na=crypto:{line}\r\n"
    ))
    .unwrap()
}

/// The caller's and callee's sessions and the relay between them, leg A
/// keyed with `a`, leg B with `b`.
fn call(
    a: CryptoSuite,
    b: CryptoSuite,
    config: RelayConfig,
) -> (SrtpSession, MediaRelay, SrtpSession) {
    let rng = SystemRandom::new();
    let options = SdesOptions::new();
    let caps = AudioCapabilities::new(vec![Codec::pcmu()]);
    // Leg A: the caller offers, the relay answers with its own key.
    let caller_line = offer_crypto(1, a, &rng).unwrap();
    let to_relay = answer_audio(
        &offer_of(&caller_line, 4000),
        &caps,
        &LocalMedia::new("127.0.0.1", 30000, "1"),
        &rng,
        &options,
    )
    .unwrap();
    let caller = offerer_srtp(&[caller_line], &to_relay.answer.sdp, &options).unwrap();
    // Leg B: the relay offers a key of its own, the callee answers.
    let relay_line = offer_crypto(1, b, &rng).unwrap();
    let answered = answer_audio(
        &offer_of(&relay_line, 30002),
        &caps,
        &LocalMedia::new("127.0.0.1", 5000, "2"),
        &rng,
        &options,
    )
    .unwrap();
    let callee = answered.srtp.unwrap();
    let toward_callee = offerer_srtp(&[relay_line], &answered.answer.sdp, &options).unwrap();
    let relay = MediaRelay::new(
        to_relay.srtp.unwrap(),
        MediaPeer::new(addr(CALLER)),
        toward_callee,
        MediaPeer::new(addr(CALLEE)),
        config,
    );
    (caller, relay, callee)
}

fn default_call() -> (SrtpSession, MediaRelay, SrtpSession) {
    call(
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_80,
        RelayConfig::default(),
    )
}

fn rtp(ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A receiver report of `ssrc` (RFC 3550 section 6.4.2), no blocks.
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

fn sealed(ctx: &mut carevox::srtp::Context, channel: Channel, plain: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; plain.len() + 64];
    buf[..plain.len()].copy_from_slice(plain);
    let n = match channel {
        Channel::Rtp => ctx.protect_rtp_in_place(&mut buf, plain.len()),
        Channel::Rtcp => ctx.protect_rtcp_in_place(&mut buf, plain.len()),
    }
    .unwrap();
    buf.truncate(n);
    buf
}

fn opened(
    ctx: &mut carevox::srtp::Context,
    channel: Channel,
    wire: &[u8],
) -> Result<Vec<u8>, SrtpError> {
    let mut buf = wire.to_vec();
    let n = match channel {
        Channel::Rtp => ctx.unprotect_rtp_in_place(&mut buf, wire.len()),
        Channel::Rtcp => ctx.unprotect_rtcp_in_place(&mut buf, wire.len()),
    }?;
    buf.truncate(n);
    Ok(buf)
}

/// Through the relay from `from`'s peer at `source`: the plaintext the
/// relay saw, and the sealed packet with its destination.
fn through(
    relay: &mut MediaRelay,
    from: Leg,
    channel: Channel,
    source: &str,
    wire: &[u8],
) -> Result<(Vec<u8>, Vec<u8>, SocketAddr), RelayError> {
    let mut buf = vec![0u8; 1500];
    buf[..wire.len()].copy_from_slice(wire);
    let plain = relay.receive(from, channel, addr(source), &mut buf, wire.len())?;
    let seen = buf[..plain].to_vec();
    let out = relay.forward(from, channel, &mut buf, plain)?;
    Ok((seen, buf[..out.len].to_vec(), out.to))
}

#[test]
fn rtp_and_rtcp_go_both_ways_over_every_pair_of_suites() {
    for a in keyable_suites() {
        for b in keyable_suites() {
            let (mut caller, mut relay, mut callee) =
                call(a.clone(), b.clone(), RelayConfig::default());
            caller.outbound.add_outbound_stream(0x1111).unwrap();
            callee.outbound.add_outbound_stream(0x2222).unwrap();
            for seq in 1..=3u16 {
                // Caller to callee.
                let plain = rtp(0x1111, seq, &[0xd5; 160]);
                let wire = sealed(&mut caller.outbound, Channel::Rtp, &plain);
                let (seen, out, to) =
                    through(&mut relay, Leg::A, Channel::Rtp, CALLER, &wire).unwrap();
                assert_eq!(seen, plain, "the relay sees the plaintext ({a:?} -> {b:?})");
                assert_eq!(to, addr(CALLEE));
                assert_eq!(
                    opened(&mut callee.inbound, Channel::Rtp, &out).unwrap(),
                    plain
                );
                // Callee to caller.
                let plain = rtp(0x2222, seq, &[0x55; 160]);
                let wire = sealed(&mut callee.outbound, Channel::Rtp, &plain);
                let (_, out, to) =
                    through(&mut relay, Leg::B, Channel::Rtp, CALLEE, &wire).unwrap();
                assert_eq!(to, addr(CALLER));
                assert_eq!(
                    opened(&mut caller.inbound, Channel::Rtp, &out).unwrap(),
                    plain
                );
            }
            // RTCP both ways, to the next port up.
            let report = rtcp(0x1111);
            let wire = sealed(&mut caller.outbound, Channel::Rtcp, &report);
            let (_, out, to) =
                through(&mut relay, Leg::A, Channel::Rtcp, "127.0.0.1:4001", &wire).unwrap();
            assert_eq!(to, addr("127.0.0.1:5001"));
            assert_eq!(
                opened(&mut callee.inbound, Channel::Rtcp, &out).unwrap(),
                report
            );
            let report = rtcp(0x2222);
            let wire = sealed(&mut callee.outbound, Channel::Rtcp, &report);
            let (_, out, to) =
                through(&mut relay, Leg::B, Channel::Rtcp, "127.0.0.1:5001", &wire).unwrap();
            assert_eq!(to, addr("127.0.0.1:4001"));
            assert_eq!(
                opened(&mut caller.inbound, Channel::Rtcp, &out).unwrap(),
                report
            );
            assert_eq!(relay.stats(Leg::A).received, 4);
            assert_eq!(relay.stats(Leg::B).sent, 4);
        }
    }
}

#[test]
fn each_leg_has_its_own_keys() {
    let (mut caller, mut relay, mut callee) = default_call();
    caller.outbound.add_outbound_stream(7).unwrap();
    let plain = rtp(7, 1, &[0xd5; 160]);
    let wire = sealed(&mut caller.outbound, Channel::Rtp, &plain);
    // The caller's packet as it left the caller does not open with the
    // callee's key: the callee never learns the caller's key.
    assert!(matches!(
        opened(&mut callee.inbound, Channel::Rtp, &wire),
        Err(SrtpError::AuthenticationFailed { .. })
    ));
    let (_, out, _) = through(&mut relay, Leg::A, Channel::Rtp, CALLER, &wire).unwrap();
    assert_ne!(out, wire, "re-encrypted, not passed through");
    // And what the relay sends the callee does not open with the caller's
    // keys either.
    assert!(opened(&mut caller.inbound, Channel::Rtp, &out).is_err());
    assert_eq!(
        opened(&mut callee.inbound, Channel::Rtp, &out).unwrap(),
        plain
    );
}

#[test]
fn tampered_replayed_and_garbage_packets_are_refused_and_move_nothing() {
    let (mut caller, mut relay, mut callee) = default_call();
    caller.outbound.add_outbound_stream(7).unwrap();
    let first = sealed(&mut caller.outbound, Channel::Rtp, &rtp(7, 1, &[1; 160]));
    let second = sealed(&mut caller.outbound, Channel::Rtp, &rtp(7, 2, &[2; 160]));

    // One flipped bit, from another address: refused, the leg stays put.
    let mut tampered = second.clone();
    tampered[20] ^= 0x01;
    let e = through(
        &mut relay,
        Leg::A,
        Channel::Rtp,
        "127.0.0.1:6666",
        &tampered,
    )
    .unwrap_err();
    assert!(matches!(
        e,
        RelayError::Srtp {
            leg: Leg::A,
            source: SrtpError::AuthenticationFailed { .. }
        }
    ));
    assert_eq!(relay.peer(Leg::A).rtp, addr(CALLER));
    assert_eq!(relay.stats(Leg::A).auth_failures, 1);

    // The genuine packets go through, once each.
    through(&mut relay, Leg::A, Channel::Rtp, CALLER, &first).unwrap();
    let (_, out, _) = through(&mut relay, Leg::A, Channel::Rtp, CALLER, &second).unwrap();
    let e = through(&mut relay, Leg::A, Channel::Rtp, "127.0.0.1:6666", &second).unwrap_err();
    assert!(matches!(
        e,
        RelayError::Srtp {
            source: SrtpError::Replay { .. },
            ..
        }
    ));
    assert_eq!(relay.stats(Leg::A).replays, 1);
    assert_eq!(
        relay.peer(Leg::A).rtp,
        addr(CALLER),
        "a replay moves nothing"
    );

    // Garbage of every short length: typed refusals, never a panic.
    for len in 0..40 {
        let junk = vec![0x80u8; len];
        assert!(through(&mut relay, Leg::B, Channel::Rtp, CALLEE, &junk).is_err());
        assert!(through(&mut relay, Leg::B, Channel::Rtcp, CALLEE, &junk).is_err());
    }
    assert_eq!(relay.stats(Leg::B).received, 0);
    // The callee still gets the stream in order.
    let _ = opened(&mut callee.inbound, Channel::Rtp, &out).unwrap();
}

#[test]
fn the_media_follows_an_authenticated_source_only() {
    let (mut caller, mut relay, _) = default_call();
    caller.outbound.add_outbound_stream(7).unwrap();
    // A forged packet (right shape, wrong key) from a new address.
    let (mut stranger, _, _) = default_call();
    stranger.outbound.add_outbound_stream(7).unwrap();
    let forged = sealed(&mut stranger.outbound, Channel::Rtp, &rtp(7, 1, &[0; 160]));
    assert!(through(&mut relay, Leg::A, Channel::Rtp, "127.0.0.1:6666", &forged).is_err());
    assert_eq!(relay.peer(Leg::A).rtp, addr(CALLER));
    // The caller's own packet from behind a NAT: the leg follows it.
    let moved = sealed(&mut caller.outbound, Channel::Rtp, &rtp(7, 1, &[0; 160]));
    through(&mut relay, Leg::A, Channel::Rtp, "127.0.0.1:7777", &moved).unwrap();
    assert_eq!(relay.peer(Leg::A).rtp, addr("127.0.0.1:7777"));
    assert_eq!(
        relay.peer(Leg::A).rtcp,
        addr("127.0.0.1:4001"),
        "RTCP moves on its own"
    );
    assert_eq!(relay.stats(Leg::A).moves, 1);

    // With following off, the SDP's address stays.
    let (mut caller, mut relay, _) = call(
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_80,
        RelayConfig::default().with_follow_source(false),
    );
    caller.outbound.add_outbound_stream(7).unwrap();
    let p = sealed(&mut caller.outbound, Channel::Rtp, &rtp(7, 1, &[0; 160]));
    through(&mut relay, Leg::A, Channel::Rtp, "127.0.0.1:7777", &p).unwrap();
    assert_eq!(relay.peer(Leg::A).rtp, addr(CALLER));
}

#[test]
fn a_leg_cannot_open_more_streams_than_the_cap() {
    let (mut caller, mut relay, _) = call(
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_80,
        RelayConfig::default().with_max_streams(2),
    );
    for ssrc in 1..=3u32 {
        caller.outbound.add_outbound_stream(ssrc).unwrap();
        let p = sealed(&mut caller.outbound, Channel::Rtp, &rtp(ssrc, 1, &[0; 20]));
        let r = through(&mut relay, Leg::A, Channel::Rtp, CALLER, &p);
        if ssrc <= 2 {
            r.unwrap();
        } else {
            assert_eq!(
                r.unwrap_err(),
                RelayError::TooManyStreams {
                    leg: Leg::A,
                    limit: 2
                }
            );
        }
    }
}

#[test]
fn media_made_by_the_relay_is_sealed_for_one_leg() {
    let (mut caller, mut relay, mut callee) = default_call();
    // A prompt toward the caller, with the relay's own SSRC.
    let prompt = rtp(0xabcd, 1, &[0x7f; 160]);
    let mut buf = vec![0u8; 1500];
    buf[..prompt.len()].copy_from_slice(&prompt);
    let out = relay
        .seal(Leg::A, Channel::Rtp, &mut buf, prompt.len())
        .unwrap();
    assert_eq!(out.to, addr(CALLER));
    assert_eq!(
        opened(&mut caller.inbound, Channel::Rtp, &buf[..out.len]).unwrap(),
        prompt
    );
    // An SSRC the callee already sends through the relay toward the caller
    // cannot be reused for the relay's own media.
    callee.outbound.add_outbound_stream(0x2222).unwrap();
    let wire = sealed(
        &mut callee.outbound,
        Channel::Rtp,
        &rtp(0x2222, 1, &[0; 20]),
    );
    through(&mut relay, Leg::B, Channel::Rtp, CALLEE, &wire).unwrap();
    let clash = rtp(0x2222, 9, &[0; 20]);
    buf[..clash.len()].copy_from_slice(&clash);
    assert!(matches!(
        relay.seal(Leg::A, Channel::Rtp, &mut buf, clash.len()),
        Err(RelayError::Srtp {
            source: SrtpError::DuplicateSsrc { ssrc: 0x2222 },
            ..
        })
    ));
    // Too short to carry an SSRC.
    assert!(matches!(
        relay.seal(Leg::A, Channel::Rtp, &mut buf, 8),
        Err(RelayError::Malformed { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever arrives, from wherever: a typed refusal or a packet that
    /// authenticated; a refused one never moves a leg.
    #[test]
    fn arbitrary_input_is_refused_without_moving_anything(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        rtcp_channel in any::<bool>(),
        port in 1024u16..65535,
    ) {
        let (_, mut relay, _) = default_call();
        let channel = if rtcp_channel { Channel::Rtcp } else { Channel::Rtp };
        let source = format!("127.0.0.1:{port}");
        let before = relay.peer(Leg::A);
        prop_assert!(through(&mut relay, Leg::A, channel, &source, &bytes).is_err());
        prop_assert_eq!(relay.peer(Leg::A), before);
        prop_assert_eq!(relay.stats(Leg::A).received, 0);
    }
}

#[test]
fn the_media_address_comes_from_the_accepted_sdes_audio_stream() {
    // `body` is the session's c= line (if any), then its streams: t=
    // goes between them.
    let sdp = |body: &str| {
        let (session, media) = match body.find("m=") {
            Some(at) => body.split_at(at),
            None => (body, ""),
        };
        SessionDescription::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n{session}t=0 0\r\n{media}"
        ))
        .unwrap()
    };
    let key =
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
    // The session's address, RTCP on the next port.
    let p = MediaPeer::audio_of(&sdp(&format!(
        "c=IN IP4 127.0.0.9\r\nm=audio 4000 RTP/SAVP 0\r\n{key}"
    )))
    .unwrap();
    assert_eq!(
        (p.rtp, p.rtcp),
        (addr("127.0.0.9:4000"), addr("127.0.0.9:4001"))
    );
    // The stream's own address wins; rtcp-mux keeps RTCP on the RTP port;
    // a rejected and a plain stream before it are passed over.
    let p = MediaPeer::audio_of(&sdp(&format!(
        "c=IN IP4 127.0.0.9\r\nm=audio 0 RTP/SAVP 0\r\nm=audio 3000 RTP/AVP 0\r\n\
         m=audio 4000 RTP/SAVP 0\r\nc=IN IP6 ::1\r\na=rtcp-mux\r\n{key}"
    )))
    .unwrap();
    assert_eq!((p.rtp, p.rtcp), (addr("[::1]:4000"), addr("[::1]:4000")));
    // Refusals.
    for (body, e) in [
        (
            "c=IN IP4 127.0.0.9\r\nm=audio 4000 RTP/AVP 0\r\n".to_owned(),
            PeerError::NoSdesAudio,
        ),
        (
            format!("m=audio 4000 RTP/SAVP 0\r\n{key}"),
            PeerError::NoConnection,
        ),
        (
            format!("c=IN IP4 pbx.example\r\nm=audio 4000 RTP/SAVP 0\r\n{key}"),
            PeerError::NotAnAddress,
        ),
        (
            format!("c=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/SAVP 0\r\n{key}"),
            PeerError::NotAnAddress,
        ),
    ] {
        assert_eq!(MediaPeer::audio_of(&sdp(&body)).unwrap_err(), e, "{body}");
    }
}
