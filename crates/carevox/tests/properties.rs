//! Properties of the SDES glue over generated `a=crypto` lines: keying
//! never panics; a line that keys gives contexts that carry a packet (with
//! every one of its keys); and the answerer chooses a line exactly when the
//! keying accepts it, so negotiation and keying never disagree.

#![cfg(all(feature = "sip", feature = "srtp"))]
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation
)]

use carevox::media::answer_audio;
use carevox::sdes::{SdesOptions, srtp_keying};
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::crypto::{Crypto, CryptoSuite, KeySalt};
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use proptest::prelude::*;

const SUITES: [&str; 11] = [
    "AES_CM_128_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32",
    "AES_192_CM_HMAC_SHA1_80",
    "AES_192_CM_HMAC_SHA1_32",
    "AES_256_CM_HMAC_SHA1_80",
    "AES_256_CM_HMAC_SHA1_32",
    "AEAD_AES_128_GCM",
    "AEAD_AES_256_GCM",
    "F8_128_HMAC_SHA1_80",
    "NULL_HMAC_SHA1_32",
    "AEAD_AES_192_GCM",
];

const PARAMS: [&str; 12] = [
    "KDR=0",
    "KDR=7",
    "UNENCRYPTED_SRTP",
    "UNENCRYPTED_SRTCP",
    "UNAUTHENTICATED_SRTP",
    "WSH=64",
    "WSH=512",
    "WSH=1024",
    "WSH=5000",
    "FEC_ORDER=FEC_SRTP",
    "FEC_KEY=inline:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
    "X_EXT=1",
];

/// The inline text of `len` bytes of `fill`.
fn inline(len: usize, fill: u8) -> String {
    let line = Crypto::new(
        1,
        CryptoSuite::AesCm128HmacSha1_80,
        KeySalt::new(vec![fill; 30]),
    )
    .unwrap()
    .to_string();
    if len == 30 {
        return line.split("inline:").nth(1).unwrap().to_owned();
    }
    // Another length: through a suite of that length.
    let suite = match len {
        28 => CryptoSuite::AeadAes128Gcm,
        38 => CryptoSuite::AesCm192HmacSha1_80,
        44 => CryptoSuite::AeadAes256Gcm,
        _ => CryptoSuite::AesCm256HmacSha1_80,
    };
    let line = Crypto::new(1, suite, KeySalt::new(vec![fill; len]))
        .unwrap()
        .to_string();
    line.split("inline:").nth(1).unwrap().to_owned()
}

fn key_len(suite: &str) -> usize {
    CryptoSuite::from_name(suite).key_salt_len().unwrap_or(30)
}

prop_compose! {
    fn key_param(suite: &'static str)(
        fill in any::<u8>(),
        lifetime in prop::option::of(prop_oneof![(1u8..=48).prop_map(|n| format!("2^{n}")), (1u64..1_000_000).prop_map(|n| n.to_string())]),
        mki in prop::option::weighted(0.8, (0u64..300, 1u8..=5)),
    ) -> String {
        let mut t = format!("inline:{}", inline(key_len(suite), fill));
        if let Some(l) = lifetime { t.push('|'); t.push_str(&l); }
        if let Some((v, len)) = mki { t.push_str(&format!("|{v}:{len}")); }
        t
    }
}

fn line() -> impl Strategy<Value = String> {
    prop::sample::select(SUITES.to_vec()).prop_flat_map(|suite| {
        (
            prop::collection::vec(key_param(suite), 1..=3),
            prop::collection::vec(prop::sample::select(PARAMS.to_vec()), 0..=2),
        )
            .prop_map(move |(keys, params)| {
                let mut t = format!("1 {suite} {}", keys.join(";"));
                for p in params {
                    t.push(' ');
                    t.push_str(p);
                }
                t
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn keying_and_answering_agree(text in line()) {
        let Ok(crypto) = Crypto::parse(&text) else {
            // The SDP parser refused it (a bad MKI, keys without MKIs): not
            // a line the glue ever sees.
            return Ok(());
        };
        let options = SdesOptions::new();
        let keyed = srtp_keying(&crypto, &options);
        if let Ok(k) = &keyed {
            let mki_lens: Vec<usize> = k.keys().iter().map(|k| k.mki().len()).collect();
            prop_assert_eq!(k.keys().len(), crypto.keys.len());
            let mut tx = k.clone().into_context().unwrap();
            let mut rx = k.clone().into_context().unwrap();
            tx.add_outbound_stream(5).unwrap();
            let (mut wire, mut back) = (Vec::new(), Vec::new());
            for (i, key) in k.keys().iter().enumerate() {
                if !key.mki().is_empty() {
                    tx.set_active_key(key.mki()).unwrap();
                }
                let mut p = vec![0x80, 0, 0, i as u8, 0, 0, 0, 0, 0, 0, 0, 5];
                p.extend_from_slice(&[0xd5; 20]);
                tx.protect_rtp_vec(&p, &mut wire).unwrap();
                prop_assert_eq!(wire.len(), p.len() + k.suite().rtp_tag_len() + mki_lens[i]);
                rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
                prop_assert_eq!(&back, &p);
            }
        }
        // The answerer chooses this line exactly when it keys (and passes
        // carevox-sip's own secure-default checks).
        let sdp = SessionDescription::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:{text}\r\n"
        ))
        .unwrap();
        let rng = ring::rand::SystemRandom::new();
        let answered = answer_audio(
            &sdp,
            &AudioCapabilities::new(vec![Codec::pcmu()]),
            &LocalMedia::new("198.51.100.7", 30000, "1"),
            &rng,
            &options,
        )
        .unwrap();
        prop_assert_eq!(answered.srtp.is_some(), keyed.is_ok() && crypto.is_secure(), "{}", text);
        prop_assert_eq!(answered.answer.audio.is_some(), answered.srtp.is_some());
    }
}
