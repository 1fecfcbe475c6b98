//! SDES to SRTP through the public API: every parameter of an `a=crypto`
//! line is honoured in the keyed context, or refused with a typed reason.

#![cfg(all(feature = "sip", feature = "srtp"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use carevox::sdes::{SdesError, SdesOptions, srtp_context, srtp_keying};
use carevox::sip::sdp::crypto::Crypto;
use carevox::srtp::{Context, Error, Event, Suite};

const K30: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
const K30B: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC";

fn line(text: &str) -> Crypto {
    Crypto::parse(text).unwrap()
}

fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 160]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xd5; 40]);
    p
}

fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[7; 24]);
    p
}

fn pair(text: &str, options: &SdesOptions) -> (Context, Context) {
    let mut tx = srtp_context(&line(text), options).unwrap();
    tx.add_outbound_stream(1).unwrap();
    (tx, srtp_context(&line(text), options).unwrap())
}

#[test]
fn suite_and_key_are_honoured() {
    let k = srtp_keying(
        &line(&format!("1 AES_CM_128_HMAC_SHA1_32 inline:{K30}")),
        &SdesOptions::new(),
    )
    .unwrap();
    assert_eq!(k.suite(), Suite::AesCm128HmacSha1_32);
    assert_eq!(k.keys().len(), 1);
    assert!(k.keys()[0].mki().is_empty());
    assert_eq!(k.keys()[0].lifetime(), None);
    // The same key||salt keyed directly with carevox-srtp gives the same
    // packets.
    let raw = carevox::srtp::MasterKey::from_sdes_name(
        "AES_CM_128_HMAC_SHA1_32",
        line(&format!("1 AES_CM_128_HMAC_SHA1_32 inline:{K30}")).keys[0]
            .key_salt
            .expose(),
    )
    .unwrap();
    let mut direct = Context::new(raw, carevox::srtp::Config::new()).unwrap();
    direct.add_outbound_stream(1).unwrap();
    let mut facade = k.into_context().unwrap();
    facade.add_outbound_stream(1).unwrap();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    direct.protect_rtp_vec(&rtp(1, 5), &mut a).unwrap();
    facade.protect_rtp_vec(&rtp(1, 5), &mut b).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), rtp(1, 5).len() + 4);
}

#[test]
fn lifetime_limits_the_key() {
    for (lifetime, packets) in [("2^4", 16u16), ("10", 10)] {
        let (mut tx, mut rx) = pair(
            &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30}|{lifetime}"),
            &SdesOptions::new(),
        );
        let (mut wire, mut back) = (Vec::new(), Vec::new());
        for seq in 0..packets {
            tx.protect_rtp_vec(&rtp(1, seq), &mut wire).unwrap();
            rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
        }
        assert!(
            matches!(tx.poll_event(), Some(Event::KeyLimitNear { limit, .. }) if limit == u64::from(packets))
        );
        assert!(matches!(
            tx.protect_rtp_vec(&rtp(1, packets), &mut wire),
            Err(Error::KeyExpired { .. })
        ));
        // SRTCP under the same lifetime.
        for _ in 0..packets {
            tx.protect_rtcp_vec(&rtcp(1), &mut wire).unwrap();
        }
        assert!(matches!(
            tx.protect_rtcp_vec(&rtcp(1), &mut wire),
            Err(Error::KeyExpired { .. })
        ));
    }
}

#[test]
fn mki_value_and_length_are_on_the_wire() {
    for (mki, bytes) in [
        ("1:4", vec![0, 0, 0, 1]),
        ("258:2", vec![1, 2]),
        ("7:1", vec![7]),
        ("5:10", vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 5]),
    ] {
        let (mut tx, mut rx) = pair(
            &format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30}|2^20|{mki}"),
            &SdesOptions::new(),
        );
        let (mut wire, mut back) = (Vec::new(), Vec::new());
        let p = rtp(1, 9);
        tx.protect_rtp_vec(&p, &mut wire).unwrap();
        assert_eq!(wire.len(), p.len() + bytes.len() + 10, "{mki}");
        assert_eq!(wire[p.len()..p.len() + bytes.len()], bytes[..], "{mki}");
        rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
        assert_eq!(back, p);
    }
}

#[test]
fn several_keys_become_several_mkis() {
    let text = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30}|2^20|1:2;inline:{K30B}|2^20|2:2");
    let keying = srtp_keying(&line(&text), &SdesOptions::new()).unwrap();
    assert_eq!(keying.keys().len(), 2);
    assert_eq!(keying.keys()[1].mki(), &[0, 2]);
    let (mut tx, mut rx) = pair(&text, &SdesOptions::new());
    let (mut wire, mut back) = (Vec::new(), Vec::new());
    tx.protect_rtp_vec(&rtp(1, 1), &mut wire).unwrap();
    assert_eq!(wire[52..54], [0, 1]);
    rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
    tx.set_active_key(&[0, 2]).unwrap();
    tx.protect_rtp_vec(&rtp(1, 2), &mut wire).unwrap();
    assert_eq!(wire[52..54], [0, 2]);
    rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
    assert_eq!(back, rtp(1, 2));
    assert_eq!(rx.key_usage(1), Some((1, 0)));
}

#[test]
fn mkis_that_cannot_tell_keys_apart_are_refused() {
    for (text, index) in [
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30}|1:2;inline:{K30B}|2:3"),
            1,
        ),
        (
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30}|1:2;inline:{K30B}|1:2"),
            1,
        ),
    ] {
        assert!(
            matches!(
                srtp_keying(&line(&text), &SdesOptions::new()),
                Err(SdesError::Mki { index: i, .. }) if i == index
            ),
            "{text}"
        );
    }
}

#[test]
fn kdr_is_refused_at_every_rate() {
    for n in 0..=24u8 {
        let text = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30} KDR={n}");
        assert_eq!(
            srtp_keying(&line(&text), &SdesOptions::new()).unwrap_err(),
            SdesError::KeyDerivationRate { exponent: n }
        );
    }
}

#[test]
fn parameters_that_switch_protection_off_are_refused() {
    for param in [
        "UNENCRYPTED_SRTP",
        "UNAUTHENTICATED_SRTP",
        "UNENCRYPTED_SRTCP",
    ] {
        let text = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30} {param}");
        assert_eq!(
            srtp_keying(&line(&text), &SdesOptions::new()).unwrap_err(),
            SdesError::Insecure { param }
        );
    }
    // Even with the SRTCP door open, SRTP itself is never sent in the clear.
    let open = SdesOptions::new().dangerous_allow_unencrypted_srtcp();
    for param in ["UNENCRYPTED_SRTP", "UNAUTHENTICATED_SRTP"] {
        let text = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30} {param}");
        assert!(matches!(
            srtp_keying(&line(&text), &open),
            Err(SdesError::Insecure { .. })
        ));
    }
}

#[test]
fn unencrypted_srtcp_is_honoured_behind_its_door() {
    let text = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30} UNENCRYPTED_SRTCP");
    let open = SdesOptions::new().dangerous_allow_unencrypted_srtcp();
    let (mut tx, mut rx) = pair(&text, &open);
    let (mut wire, mut back) = (Vec::new(), Vec::new());
    let c = rtcp(1);
    tx.protect_rtcp_vec(&c, &mut wire).unwrap();
    // E flag clear, payload in the clear.
    assert_eq!(wire[c.len()] & 0x80, 0);
    assert_eq!(wire[..c.len()], c[..]);
    rx.unprotect_rtcp_vec(&wire, &mut back).unwrap();
    assert_eq!(back, c);
    let twice = format!("{text} UNENCRYPTED_SRTCP");
    assert_eq!(
        srtp_keying(&line(&twice), &open).unwrap_err(),
        SdesError::Repeated {
            param: "UNENCRYPTED_SRTCP"
        }
    );
}

#[test]
fn fec_and_unknown_parameters_are_refused() {
    for (param, want) in [
        ("FEC_ORDER=FEC_SRTP", SdesError::Fec { param: "FEC_ORDER" }),
        ("FEC_ORDER=SRTP_FEC", SdesError::Fec { param: "FEC_ORDER" }),
        (
            "FEC_KEY=inline:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
            SdesError::Fec { param: "FEC_KEY" },
        ),
        (
            "X_SECRET=c2VjcmV0",
            SdesError::UnknownSessionParam { index: 1 },
        ),
    ] {
        let text = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30} WSH=64 {param}");
        let err = srtp_keying(&line(&text), &SdesOptions::new()).unwrap_err();
        assert_eq!(err, want, "{param}");
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("QUFB") && !shown.contains("c2Vj") && !shown.contains("PS1u"),
            "{shown}"
        );
    }
}

#[test]
fn the_window_size_hint_sets_the_replay_window() {
    let send = |text: &str| {
        let (mut tx, mut rx) = pair(text, &SdesOptions::new());
        let (mut wire, mut back) = (Vec::new(), Vec::new());
        tx.protect_rtp_vec(&rtp(1, 0), &mut wire).unwrap();
        let late = wire.clone();
        for seq in 1..=200 {
            tx.protect_rtp_vec(&rtp(1, seq), &mut wire).unwrap();
            rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
        }
        rx.unprotect_rtp_vec(&late, &mut back)
    };
    // 200 packets late: outside a 64-packet window, inside a 1024 one.
    assert!(matches!(
        send(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30} WSH=64")),
        Err(Error::TooOld { .. })
    ));
    assert!(send(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30} WSH=1024")).is_ok());
    assert_eq!(
        srtp_keying(
            &line(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30} WSH=1025")),
            &SdesOptions::new()
        )
        .unwrap_err(),
        SdesError::ReplayWindow { size: 1025 }
    );
    assert_eq!(
        srtp_keying(
            &line(&format!(
                "1 AES_CM_128_HMAC_SHA1_80 inline:{K30} WSH=64 WSH=128"
            )),
            &SdesOptions::new()
        )
        .unwrap_err(),
        SdesError::Repeated { param: "WSH" }
    );
}

#[test]
fn unknown_suites_and_wrong_keys_are_refused() {
    let other = line("1 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm");
    assert!(matches!(
        srtp_keying(&other, &SdesOptions::new()),
        Err(SdesError::UnsupportedSuite { suite }) if suite == "F8_128_HMAC_SHA1_80"
    ));
    // A line built in code with a key of the wrong length for its suite.
    let mut wrong = line(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30}"));
    wrong.suite = carevox::sip::sdp::crypto::CryptoSuite::AesCm256HmacSha1_80;
    assert!(matches!(
        srtp_keying(&wrong, &SdesOptions::new()),
        Err(SdesError::KeyLength {
            index: 0,
            expected: 46,
            actual: 30,
            ..
        })
    ));
    wrong.keys.clear();
    assert_eq!(
        srtp_keying(&wrong, &SdesOptions::new()).unwrap_err(),
        SdesError::NoKey
    );
}
