//! Property tests: round trips, tamper detection, the replay window against a
//! simple model, and unprotect on arbitrary bytes.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::collections::BTreeSet;

use carevox_srtp::{Config, Context, Error, MasterKey, Suite};
use proptest::prelude::*;

fn suite() -> impl Strategy<Value = Suite> {
    prop::sample::select(Suite::ALL.to_vec())
}

fn key(suite: Suite, mki: bool) -> MasterKey {
    let k = MasterKey::new(
        suite,
        &vec![0x11; suite.key_len()],
        &vec![0x22; suite.salt_len()],
    )
    .unwrap();
    if mki {
        k.with_mki(&[0xab, 0xcd]).unwrap()
    } else {
        k
    }
}

fn rtp(ssrc: u32, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x60];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[1, 2, 3, 4]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn rtcp(ssrc: u32, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 0];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(body);
    p
}

/// A header error is the right answer for a flip in a structural bit of the
/// first byte (version, padding, extension, CSRC count).
fn is_header_error(e: &Error) -> bool {
    matches!(
        e,
        Error::BadVersion { .. }
            | Error::CsrcOverrun { .. }
            | Error::ExtensionOverrun { .. }
            | Error::PaddingOverrun { .. }
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn round_trip(suite in suite(), mki: bool, ssrc: u32, seq: u16,
                  payload in prop::collection::vec(any::<u8>(), 0..400),
                  body in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut tx = Context::new(key(suite, mki), Config::new()).unwrap();
        tx.add_outbound_stream(ssrc).unwrap();
        let mut rx = Context::new(key(suite, mki), Config::new()).unwrap();
        let (mut wire, mut back) = (Vec::new(), Vec::new());
        let p = rtp(ssrc, seq, &payload);
        tx.protect_rtp_vec(&p, &mut wire).unwrap();
        rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
        prop_assert_eq!(&back, &p);
        let c = rtcp(ssrc, &body);
        tx.protect_rtcp_vec(&c, &mut wire).unwrap();
        rx.unprotect_rtcp_vec(&wire, &mut back).unwrap();
        prop_assert_eq!(&back, &c);
    }

    #[test]
    fn any_flipped_bit_is_refused(suite in suite(), mki: bool, seq: u16,
                                  payload in prop::collection::vec(any::<u8>(), 1..200),
                                  bit in any::<prop::sample::Index>(), rtcp_too: bool) {
        let mut tx = Context::new(key(suite, mki), Config::new()).unwrap();
        tx.add_outbound_stream(42).unwrap();
        let mut rx = Context::new(key(suite, mki), Config::new()).unwrap();
        let mut wire = Vec::new();
        if rtcp_too {
            tx.protect_rtcp_vec(&rtcp(42, &payload), &mut wire).unwrap();
        } else {
            tx.protect_rtp_vec(&rtp(42, seq, &payload), &mut wire).unwrap();
        }
        let bit = bit.index(wire.len() * 8);
        wire[bit / 8] ^= 1 << (bit % 8);
        let mut back = Vec::new();
        let r = if rtcp_too {
            rx.unprotect_rtcp_vec(&wire, &mut back)
        } else {
            rx.unprotect_rtp_vec(&wire, &mut back)
        };
        let err = r.unwrap_err();
        let in_mki = mki && !matches!(err, Error::AuthenticationFailed { .. });
        prop_assert!(
            matches!(err, Error::AuthenticationFailed { .. })
                || (bit < 8 && is_header_error(&err))
                || (in_mki && matches!(err, Error::UnknownMki { .. })),
            "bit {} gave {:?}", bit, err
        );
        // The receiver is untouched: the genuine packet still goes through.
        wire[bit / 8] ^= 1 << (bit % 8);
        let r = if rtcp_too {
            rx.unprotect_rtcp_vec(&wire, &mut back)
        } else {
            rx.unprotect_rtp_vec(&wire, &mut back)
        };
        prop_assert!(r.is_ok());
    }

    #[test]
    fn replay_window_matches_a_model(
        window in prop::sample::select(vec![64u16, 128, 1024]),
        order in prop::collection::vec(0usize..2500, 1..300),
    ) {
        let suite = Suite::AeadAes128Gcm;
        let config = Config::new().with_replay_window(window).unwrap();
        let mut tx = Context::new(key(suite, false), config.clone()).unwrap();
        tx.add_outbound_stream(1).unwrap();
        let mut rx = Context::new(key(suite, false), config).unwrap();
        let max = order.iter().copied().max().unwrap();
        let mut wires = Vec::new();
        for seq in 0..=max {
            let mut w = Vec::new();
            tx.protect_rtp_vec(&rtp(1, seq as u16, &[7; 8]), &mut w).unwrap();
            wires.push(w);
        }
        let mut seen = BTreeSet::new();
        let mut back = Vec::new();
        for i in order {
            let top = seen.iter().next_back().copied();
            let expect = match top {
                None => Ok(()),
                Some(t) if i > t => Ok(()),
                Some(t) if t - i >= usize::from(window) => Err("old"),
                Some(_) if seen.contains(&i) => Err("replay"),
                Some(_) => Ok(()),
            };
            let got = rx.unprotect_rtp_vec(&wires[i], &mut back);
            match (expect, got) {
                (Ok(()), Ok(())) => { seen.insert(i); }
                (Err("old"), Err(Error::TooOld { index, .. })) => prop_assert_eq!(index, i as u64),
                (Err("replay"), Err(Error::Replay { index, .. })) => prop_assert_eq!(index, i as u64),
                (e, g) => prop_assert!(false, "index {}: model {:?}, context {:?}", i, e, g),
            }
        }
    }

    #[test]
    fn unprotect_never_panics(suite in suite(), mki: bool, known: bool,
                              bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut rx = Context::new(key(suite, mki), Config::new()).unwrap();
        if known {
            rx.set_inbound_roc(u32::from_be_bytes([bytes.get(8).copied().unwrap_or(0), 0, 0, 0]), 3).unwrap();
        }
        let mut out = Vec::new();
        let mut slice = [0u8; 64];
        prop_assert!(rx.unprotect_rtp_vec(&bytes, &mut out).is_err());
        prop_assert!(rx.unprotect_rtcp_vec(&bytes, &mut out).is_err());
        let _ = rx.unprotect_rtp(&bytes, &mut slice);
        let mut buf = bytes.clone();
        let len = buf.len();
        let _ = rx.unprotect_rtcp_in_place(&mut buf, len);
        let _ = rx.unprotect_rtp_in_place(&mut buf, len + 1);
    }
}
