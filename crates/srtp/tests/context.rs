//! Behaviour of a context through the public API: every suite both ways,
//! MKI rekeying, SSRC policy, replay, ROC, key limits and bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use carevox_srtp::{Config, Context, Error, Event, MasterKey, PacketKind, SsrcPolicy, Suite};
use common::{rtcp, rtp};

fn key(suite: Suite, seed: u8) -> MasterKey {
    let k: Vec<u8> = (0..suite.key_len())
        .map(|i| seed.wrapping_add(i as u8))
        .collect();
    let s: Vec<u8> = (0..suite.salt_len())
        .map(|i| seed ^ (i as u8 * 7))
        .collect();
    MasterKey::new(suite, &k, &s).unwrap()
}

fn pair(suite: Suite, config: Config) -> (Context, Context) {
    let mut tx = Context::new(key(suite, 1), config.clone()).unwrap();
    tx.add_outbound_stream(0x1234).unwrap();
    (tx, Context::new(key(suite, 1), config).unwrap())
}

#[test]
fn every_suite_round_trips_rtp_and_rtcp() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite, Config::new());
        let mut wire = Vec::new();
        let mut back = Vec::new();
        for seq in 0..50u16 {
            let p = rtp(0x1234, seq, 160);
            tx.protect_rtp_vec(&p, &mut wire).unwrap();
            assert_eq!(wire.len(), p.len() + suite.rtp_tag_len());
            assert_ne!(wire[12..172], p[12..], "{suite}: payload is encrypted");
            rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
            assert_eq!(back, p, "{suite}");
            let c = rtcp(0x1234, 40);
            tx.protect_rtcp_vec(&c, &mut wire).unwrap();
            assert_eq!(wire.len(), c.len() + suite.rtcp_tag_len() + 4);
            rx.unprotect_rtcp_vec(&wire, &mut back).unwrap();
            assert_eq!(back, c, "{suite}");
        }
        assert_eq!(rx.key_usage(0), Some((50, 50)));
        assert_eq!(tx.key_usage(0), Some((50, 50)));
    }
}

#[test]
fn slice_and_in_place_variants_agree_and_check_capacity() {
    let suite = Suite::AesCm128HmacSha1_80;
    let (mut tx, mut rx) = pair(suite, Config::new());
    let p = rtp(0x1234, 7, 100);
    let mut out = [0u8; 200];
    assert_eq!(
        tx.protect_rtp(&p, &mut out[..p.len() + 9]),
        Err(Error::BufferTooSmall {
            needed: 122,
            available: 121
        })
    );
    let n = tx.protect_rtp(&p, &mut out).unwrap();
    assert_eq!(n, 122);
    let mut buf = [0u8; 122];
    assert_eq!(
        rx.unprotect_rtp(&out[..n], &mut buf[..121]),
        Err(Error::BufferTooSmall {
            needed: 122,
            available: 121
        })
    );
    buf.copy_from_slice(&out[..n]);
    assert_eq!(rx.unprotect_rtp_in_place(&mut buf, n), Ok(p.len()));
    assert_eq!(&buf[..p.len()], &p[..]);
    // In place with too little tail room.
    let mut small = p.clone();
    assert!(matches!(
        tx.protect_rtp_in_place(&mut small, p.len()),
        Err(Error::BufferTooSmall { .. })
    ));
    assert_eq!(small, p, "a refused packet is left as it was");
}

#[test]
fn mki_selects_among_several_master_keys() {
    for suite in [Suite::AesCm128HmacSha1_32, Suite::AeadAes256Gcm] {
        let k1 = || key(suite, 1).with_mki(&[0, 1]).unwrap();
        let k2 = || key(suite, 2).with_mki(&[0, 2]).unwrap();
        let mut tx = Context::new(k1(), Config::new()).unwrap();
        tx.add_key(k2()).unwrap();
        tx.add_outbound_stream(9).unwrap();
        let mut rx = Context::new(k1(), Config::new()).unwrap();
        rx.add_key(k2()).unwrap();
        let (mut wire, mut back) = (Vec::new(), Vec::new());
        for seq in 0..10u16 {
            if seq == 5 {
                tx.set_active_key(&[0, 2]).unwrap();
            }
            let p = rtp(9, seq, 60);
            tx.protect_rtp_vec(&p, &mut wire).unwrap();
            assert_eq!(wire.len(), p.len() + suite.rtp_tag_len() + 2);
            rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
            assert_eq!(back, p);
            let c = rtcp(9, 20);
            tx.protect_rtcp_vec(&c, &mut wire).unwrap();
            rx.unprotect_rtcp_vec(&wire, &mut back).unwrap();
            assert_eq!(back, c);
        }
        assert_eq!(rx.key_usage(0), Some((5, 5)));
        assert_eq!(rx.key_usage(1), Some((5, 5)));
        // A key the receiver does not have.
        let mut only_one = Context::new(k1(), Config::new()).unwrap();
        tx.protect_rtp_vec(&rtp(9, 10, 60), &mut wire).unwrap();
        assert_eq!(
            only_one.unprotect_rtp_vec(&wire, &mut back),
            Err(Error::UnknownMki {
                kind: PacketKind::Rtp
            })
        );
        assert!(tx.set_active_key(&[9, 9]).is_err());
        assert!(matches!(
            tx.add_key(key(suite, 3)),
            Err(Error::KeyMismatch { .. })
        ));
        assert!(matches!(tx.add_key(k2()), Err(Error::KeyMismatch { .. })));
    }
}

#[test]
fn ssrc_policy_and_stream_limit() {
    let suite = Suite::AeadAes128Gcm;
    let mut tx = Context::new(key(suite, 1), Config::new()).unwrap();
    for ssrc in 1..=3 {
        tx.add_outbound_stream(ssrc).unwrap();
    }
    assert_eq!(
        tx.add_outbound_stream(1),
        Err(Error::DuplicateSsrc { ssrc: 1 })
    );
    let (mut w1, mut w2, mut w3, mut back) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    tx.protect_rtp_vec(&rtp(1, 1, 10), &mut w1).unwrap();
    tx.protect_rtp_vec(&rtp(2, 1, 10), &mut w2).unwrap();
    tx.protect_rtp_vec(&rtp(3, 1, 10), &mut w3).unwrap();
    assert_eq!(
        tx.protect_rtp_vec(&rtp(4, 1, 10), &mut back),
        Err(Error::UnknownSsrc {
            kind: PacketKind::Rtp,
            ssrc: 4
        })
    );

    let known = Config::new().with_ssrc_policy(SsrcPolicy::KnownOnly);
    let mut rx = Context::new(key(suite, 1), known).unwrap();
    rx.add_inbound_stream(1).unwrap();
    rx.unprotect_rtp_vec(&w1, &mut back).unwrap();
    assert_eq!(
        rx.unprotect_rtp_vec(&w2, &mut back),
        Err(Error::UnknownSsrc {
            kind: PacketKind::Rtp,
            ssrc: 2
        })
    );

    let limited = Config::new().with_max_inbound_streams(2).unwrap();
    let mut rx = Context::new(key(suite, 1), limited).unwrap();
    rx.unprotect_rtp_vec(&w1, &mut back).unwrap();
    rx.unprotect_rtp_vec(&w2, &mut back).unwrap();
    assert_eq!(
        rx.unprotect_rtp_vec(&w3, &mut back),
        Err(Error::TooManyStreams { limit: 2, ssrc: 3 })
    );
    assert!(rx.remove_inbound_stream(2));
    rx.unprotect_rtp_vec(&w3, &mut back).unwrap();
}

#[test]
fn a_forged_packet_changes_no_state() {
    let suite = Suite::AesCm128HmacSha1_80;
    let (mut tx, mut rx) = pair(suite, Config::new().with_max_inbound_streams(1).unwrap());
    let (mut wire, mut back) = (Vec::new(), Vec::new());
    // Forged first packet from an unknown SSRC: no stream is created.
    let mut forged = rtp(0x9999, 40000, 50);
    forged.extend_from_slice(&[0; 10]);
    assert!(matches!(
        rx.unprotect_rtp_vec(&forged, &mut back),
        Err(Error::AuthenticationFailed { .. })
    ));
    assert_eq!(rx.inbound_roc(0x9999), None);
    tx.protect_rtp_vec(&rtp(0x1234, 100, 50), &mut wire)
        .unwrap();
    rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
    // A forged packet far ahead does not move the window.
    let mut ahead = rtp(0x1234, 30000, 50);
    ahead.extend_from_slice(&[0; 10]);
    assert!(rx.unprotect_rtp_vec(&ahead, &mut back).is_err());
    tx.protect_rtp_vec(&rtp(0x1234, 101, 50), &mut wire)
        .unwrap();
    rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
    assert_eq!(rx.key_usage(0), Some((2, 0)));
    // Every flipped bit of a real packet is refused, and the packet still
    // goes through afterwards.
    tx.protect_rtp_vec(&rtp(0x1234, 102, 50), &mut wire)
        .unwrap();
    for bit in 0..wire.len() * 8 {
        let mut bad = wire.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(rx.unprotect_rtp_vec(&bad, &mut back).is_err(), "bit {bit}");
    }
    rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
}

#[test]
fn replay_and_too_old_are_typed_and_leave_state_untouched() {
    for suite in [Suite::AesCm256HmacSha1_80, Suite::AeadAes128Gcm] {
        let config = Config::new().with_replay_window(128).unwrap();
        let (mut tx, mut rx) = pair(suite, config);
        let mut packets = Vec::new();
        for seq in 0..300u16 {
            let mut w = Vec::new();
            tx.protect_rtp_vec(&rtp(0x1234, seq, 20), &mut w).unwrap();
            packets.push(w);
        }
        let mut back = Vec::new();
        rx.unprotect_rtp_vec(&packets[10], &mut back).unwrap();
        rx.unprotect_rtp_vec(&packets[200], &mut back).unwrap();
        assert_eq!(
            rx.unprotect_rtp_vec(&packets[200], &mut back),
            Err(Error::Replay {
                kind: PacketKind::Rtp,
                ssrc: 0x1234,
                index: 200
            })
        );
        assert_eq!(
            rx.unprotect_rtp_vec(&packets[72], &mut back),
            Err(Error::TooOld {
                kind: PacketKind::Rtp,
                ssrc: 0x1234,
                index: 72
            })
        );
        // Inside the window, out of order, once.
        rx.unprotect_rtp_vec(&packets[73], &mut back).unwrap();
        rx.unprotect_rtp_vec(&packets[150], &mut back).unwrap();
        assert!(matches!(
            rx.unprotect_rtp_vec(&packets[150], &mut back),
            Err(Error::Replay { .. })
        ));
        rx.unprotect_rtp_vec(&packets[201], &mut back).unwrap();
        assert_eq!(rx.key_usage(0), Some((5, 0)));

        // The sender refuses to reuse an index (which would reuse keystream).
        let mut w = Vec::new();
        assert!(matches!(
            tx.protect_rtp_vec(&rtp(0x1234, 299, 20), &mut w),
            Err(Error::Replay { .. })
        ));
        // SRTCP too.
        let mut c = Vec::new();
        tx.protect_rtcp_vec(&rtcp(0x1234, 16), &mut c).unwrap();
        rx.unprotect_rtcp_vec(&c, &mut back).unwrap();
        assert!(matches!(
            rx.unprotect_rtcp_vec(&c, &mut back),
            Err(Error::Replay {
                kind: PacketKind::Rtcp,
                index: 1,
                ..
            })
        ));
    }
}

#[test]
fn sequence_wrap_loss_and_reordering_track_the_roc() {
    let suite = Suite::AesCm128HmacSha1_80;
    let (mut tx, mut rx) = pair(suite, Config::new());
    let (mut wire, mut back) = (Vec::new(), Vec::new());
    let mut held = Vec::new();
    // 3 wraps, losing every 7th packet and delaying every 5th by one.
    let mut seq: u16 = 65000;
    for n in 0..140_000u32 {
        let p = rtp(0x1234, seq, 8);
        tx.protect_rtp_vec(&p, &mut wire).unwrap();
        if n % 7 == 3 {
            // lost
        } else if n % 5 == 0 {
            held = wire.clone();
        } else {
            rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
            assert_eq!(back, p);
            if !held.is_empty() {
                rx.unprotect_rtp_vec(&held, &mut back).unwrap();
                held.clear();
            }
        }
        seq = seq.wrapping_add(1);
    }
    assert_eq!(tx.outbound_roc(0x1234), Some(3));
    assert_eq!(rx.inbound_roc(0x1234), Some(3));
}

#[test]
fn roc_can_be_set_to_join_mid_stream() {
    let suite = Suite::AeadAes128Gcm;
    let mut tx = Context::new(key(suite, 4), Config::new()).unwrap();
    tx.add_outbound_stream_with_roc(5, 7).unwrap();
    let (mut wire, mut back) = (Vec::new(), Vec::new());
    tx.protect_rtp_vec(&rtp(5, 1000, 30), &mut wire).unwrap();
    // Without the ROC the receiver guesses 0 and the tag fails.
    let mut rx = Context::new(key(suite, 4), Config::new()).unwrap();
    assert!(matches!(
        rx.unprotect_rtp_vec(&wire, &mut back),
        Err(Error::AuthenticationFailed { .. })
    ));
    rx.set_inbound_roc(5, 7).unwrap();
    rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
    assert_eq!(back, rtp(5, 1000, 30));
    assert_eq!(rx.inbound_roc(5), Some(7));
}

#[test]
fn key_limits_warn_then_expire_and_never_wrap() {
    let suite = Suite::AesCm128HmacSha1_80;
    let config = Config::new().with_key_limits(32, 16).unwrap();
    let (mut tx, mut rx) = pair(suite, config);
    let (mut wire, mut back) = (Vec::new(), Vec::new());
    for seq in 0..32u16 {
        tx.protect_rtp_vec(&rtp(0x1234, seq, 8), &mut wire).unwrap();
        rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
        if seq == 28 {
            assert_eq!(tx.poll_event(), None, "no warning before 15/16");
        }
        if seq == 29 {
            assert_eq!(
                tx.poll_event(),
                Some(Event::KeyLimitNear {
                    key: 0,
                    kind: PacketKind::Rtp,
                    used: 30,
                    limit: 32
                })
            );
            assert!(matches!(rx.poll_event(), Some(Event::KeyLimitNear { .. })));
            assert_eq!(tx.poll_event(), None, "reported once");
        }
    }
    assert_eq!(
        tx.protect_rtp_vec(&rtp(0x1234, 32, 8), &mut wire),
        Err(Error::KeyExpired {
            kind: PacketKind::Rtp,
            key: 0
        })
    );
    for _ in 0..16 {
        tx.protect_rtcp_vec(&rtcp(0x1234, 8), &mut wire).unwrap();
    }
    assert_eq!(
        tx.protect_rtcp_vec(&rtcp(0x1234, 8), &mut wire),
        Err(Error::KeyExpired {
            kind: PacketKind::Rtcp,
            key: 0
        })
    );
    assert!(Config::new().with_key_limits(1 << 49, 16).is_err());
    assert!(Config::new().with_key_limits(16, (1 << 31) + 1).is_err());
}

#[test]
fn malformed_packets_get_typed_errors() {
    let suite = Suite::AesCm128HmacSha1_80;
    let (mut tx, mut rx) = pair(suite, Config::new());
    let mut back = Vec::new();
    assert!(matches!(
        rx.unprotect_rtp_vec(&[0x80; 21], &mut back),
        Err(Error::HeaderTooShort {
            len: 21,
            needed: 22,
            ..
        })
    ));
    let mut p = rtp(0x1234, 1, 0);
    p[0] = 0x40;
    assert!(matches!(
        tx.protect_rtp_vec(&p, &mut back),
        Err(Error::BadVersion { version: 1, .. })
    ));
    p[0] = 0x8f;
    assert!(matches!(
        tx.protect_rtp_vec(&p, &mut back),
        Err(Error::CsrcOverrun { count: 15, .. })
    ));
    p[0] = 0x90;
    assert!(matches!(
        tx.protect_rtp_vec(&p, &mut back),
        Err(Error::ExtensionOverrun { .. })
    ));
    let mut padded = rtp(0x1234, 1, 4);
    padded[0] = 0xa0;
    padded[15] = 9;
    assert!(matches!(
        tx.protect_rtp_vec(&padded, &mut back),
        Err(Error::PaddingOverrun {
            padding: 9,
            payload: 4
        })
    ));
    assert!(matches!(
        rx.unprotect_rtcp_vec(&[0x80; 21], &mut back),
        Err(Error::HeaderTooShort {
            kind: PacketKind::Rtcp,
            ..
        })
    ));
    // Headers with CSRCs and an extension are authenticated, not encrypted.
    let mut rich = vec![0x92, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0x12, 0x34];
    rich.extend_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2, 0xbe, 0xde, 0, 1, 9, 9, 9, 9]);
    rich.extend_from_slice(b"payload!");
    let mut wire = Vec::new();
    tx.protect_rtp_vec(&rich, &mut wire).unwrap();
    assert_eq!(wire[..28], rich[..28]);
    rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
    assert_eq!(back, rich);
}

#[test]
fn sdes_and_dtls_keying() {
    let material: Vec<u8> = (0..30).collect();
    let a = MasterKey::from_sdes_name("AES_CM_128_HMAC_SHA1_80", &material).unwrap();
    assert_eq!(a.suite(), Suite::AesCm128HmacSha1_80);
    assert!(matches!(
        MasterKey::from_sdes_name("F8_128_HMAC_SHA1_80", &material),
        Err(Error::UnknownSuite)
    ));
    let exporter: Vec<u8> = (0..56).collect();
    let suite = Suite::from_dtls_profile(0x0007).unwrap();
    let (c_local, c_remote) =
        MasterKey::pair_from_dtls_exporter(suite, &exporter, carevox_srtp::DtlsRole::Client)
            .unwrap();
    let (s_local, s_remote) =
        MasterKey::pair_from_dtls_exporter(suite, &exporter, carevox_srtp::DtlsRole::Server)
            .unwrap();
    let mut client_tx = Context::new(c_local, Config::new()).unwrap();
    let mut server_rx = Context::new(s_remote, Config::new()).unwrap();
    let mut server_tx = Context::new(s_local, Config::new()).unwrap();
    let mut client_rx = Context::new(c_remote, Config::new()).unwrap();
    client_tx.add_outbound_stream(1).unwrap();
    server_tx.add_outbound_stream(2).unwrap();
    let (mut wire, mut back) = (Vec::new(), Vec::new());
    client_tx
        .protect_rtp_vec(&rtp(1, 1, 10), &mut wire)
        .unwrap();
    server_rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
    assert!(client_rx.unprotect_rtp_vec(&wire, &mut back).is_err());
    server_tx
        .protect_rtp_vec(&rtp(2, 1, 10), &mut wire)
        .unwrap();
    client_rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
}

/// A resumed outbound stream: its ROC can move forward, never back or in
/// place once a packet went out, and the receiver follows it.
#[test]
fn outbound_roc_can_be_set_without_reusing_an_index() {
    let suite = Suite::AesCm128HmacSha1_80;
    let (mut tx, mut rx) = pair(suite, Config::new());
    let mut wire = Vec::new();
    let mut back = Vec::new();
    // Nothing sent yet: any ROC.
    tx.set_outbound_roc(0x1234, 7).unwrap();
    assert_eq!(tx.outbound_roc(0x1234), Some(7));
    tx.protect_rtp_vec(&rtp(0x1234, 10, 20), &mut wire).unwrap();
    rx.set_inbound_roc(0x1234, 7).unwrap();
    rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
    assert_eq!(rx.inbound_roc(0x1234), Some(7));
    // Sent at ROC 7: 7 and below would reuse indices.
    for roc in [0, 6, 7] {
        assert!(
            matches!(
                tx.set_outbound_roc(0x1234, roc),
                Err(Error::IndexReuse {
                    kind: PacketKind::Rtp,
                    ssrc: 0x1234,
                    lowest: 8,
                    ..
                })
            ),
            "ROC {roc}"
        );
    }
    tx.set_outbound_roc(0x1234, 9).unwrap();
    tx.protect_rtp_vec(&rtp(0x1234, 3, 20), &mut wire).unwrap();
    assert_eq!(tx.outbound_roc(0x1234), Some(9));
    rx.set_inbound_roc(0x1234, 9).unwrap();
    rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
    assert_eq!(back, rtp(0x1234, 3, 20));
    assert!(matches!(
        tx.set_outbound_roc(0x9999, 1),
        Err(Error::UnknownSsrc { ssrc: 0x9999, .. })
    ));
}

/// After the ROC moved up, a sequence number that the index estimate puts
/// under the old ROC is refused if that index was sent before.
#[test]
fn an_index_sent_before_a_roc_change_is_never_sent_again() {
    let suite = Suite::AesCm128HmacSha1_80;
    let (mut tx, _) = pair(suite, Config::new());
    let mut wire = Vec::new();
    tx.protect_rtp_vec(&rtp(0x1234, 65_100, 20), &mut wire)
        .unwrap();
    tx.set_outbound_roc(0x1234, 1).unwrap();
    tx.protect_rtp_vec(&rtp(0x1234, 10, 20), &mut wire).unwrap();
    // seq 65 050 right after 1:10 is estimated at ROC 0: index 65 050 was
    // within reach of the first packet's index and must not go out.
    assert!(matches!(
        tx.protect_rtp_vec(&rtp(0x1234, 65_050, 20), &mut wire),
        Err(Error::Replay { .. } | Error::TooOld { .. })
    ));
}

/// The SRTCP index of an outbound stream can be set for a resumed session;
/// once SRTCP was sent, an index below the next one is refused.
#[test]
fn outbound_srtcp_index_can_be_set_without_reuse() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite, Config::new());
        let mut wire = Vec::new();
        let mut back = Vec::new();
        assert_eq!(tx.outbound_srtcp_index(0x1234), Some(1));
        tx.set_outbound_srtcp_index(0x1234, 5000).unwrap();
        let c = rtcp(0x1234, 40);
        tx.protect_rtcp_vec(&c, &mut wire).unwrap();
        let trailer_index = if suite.is_aead() {
            &wire[wire.len() - 4..]
        } else {
            &wire[wire.len() - suite.rtcp_tag_len() - 4..wire.len() - suite.rtcp_tag_len()]
        };
        assert_eq!(
            u32::from_be_bytes(trailer_index.try_into().unwrap()),
            0x8000_0000 | 5000,
            "{suite}"
        );
        rx.unprotect_rtcp_vec(&wire, &mut back).unwrap();
        assert_eq!(back, c);
        assert_eq!(tx.outbound_srtcp_index(0x1234), Some(5001));
        for index in [0, 4999, 5000] {
            assert!(
                matches!(
                    tx.set_outbound_srtcp_index(0x1234, index),
                    Err(Error::IndexReuse {
                        kind: PacketKind::Rtcp,
                        lowest: 5001,
                        ..
                    })
                ),
                "{suite}: index {index}"
            );
        }
        assert!(matches!(
            tx.set_outbound_srtcp_index(0x1234, 1 << 31),
            Err(Error::InvalidConfig { .. })
        ));
        tx.set_outbound_srtcp_index(0x1234, 6000).unwrap();
        tx.protect_rtcp_vec(&c, &mut wire).unwrap();
        rx.unprotect_rtcp_vec(&wire, &mut back).unwrap();
        assert_eq!(back, c);
    }
}

/// A key's lifetime (SDES) limits it below the context's limits.
#[test]
fn a_key_lifetime_is_enforced() {
    let suite = Suite::AesCm192HmacSha1_80;
    let k = key(suite, 9).with_lifetime(32).unwrap();
    let mut tx = Context::new(k.clone(), Config::new()).unwrap();
    tx.add_outbound_stream(0x1234).unwrap();
    let mut rx = Context::new(k, Config::new()).unwrap();
    let mut wire = Vec::new();
    let mut back = Vec::new();
    for seq in 0..32u16 {
        tx.protect_rtp_vec(&rtp(0x1234, seq, 20), &mut wire)
            .unwrap();
        rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
    }
    assert!(matches!(
        tx.poll_event(),
        Some(Event::KeyLimitNear { limit: 32, .. })
    ));
    assert!(matches!(
        tx.protect_rtp_vec(&rtp(0x1234, 32, 20), &mut wire),
        Err(Error::KeyExpired { key: 0, .. })
    ));
}

/// A truncated SRTP or SRTCP packet (its tag cut short, or nothing but a
/// header) is refused with a typed error, never authenticated with a short
/// or empty tag.
#[test]
fn truncated_packets_are_refused() {
    for suite in Suite::ALL {
        let (mut tx, mut rx) = pair(suite, Config::new());
        let mut wire = Vec::new();
        let mut back = Vec::new();
        tx.protect_rtp_vec(&rtp(0x1234, 1, 0), &mut wire).unwrap();
        for cut in 1..=suite.rtp_tag_len() {
            let short = &wire[..wire.len() - cut];
            assert!(
                matches!(
                    rx.unprotect_rtp_vec(short, &mut back),
                    Err(Error::HeaderTooShort { .. } | Error::AuthenticationFailed { .. })
                ),
                "{suite}: cut {cut}"
            );
        }
        tx.protect_rtcp_vec(&rtcp(0x1234, 0), &mut wire).unwrap();
        for cut in 1..=suite.rtcp_tag_len() {
            let short = &wire[..wire.len() - cut];
            assert!(
                matches!(
                    rx.unprotect_rtcp_vec(short, &mut back),
                    Err(Error::HeaderTooShort { .. } | Error::AuthenticationFailed { .. })
                ),
                "{suite}: cut {cut}"
            );
        }
    }
}
