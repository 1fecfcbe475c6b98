//! The SDES offer/answer joined to SRTP keying: over every suite name
//! carevox-sip knows, and unknown ones, either the chosen suite keys
//! contexts that carry packets both ways, or the line is refused or skipped
//! with a typed reason. Negotiation and keying never disagree.

#![cfg(all(feature = "sip", feature = "srtp"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use carevox::media::{MediaError, SrtpSession, answer_audio, offer_crypto, offerer_srtp};
use carevox::sdes::{SdesError, SdesOptions, keyable_suites, srtp_keying, srtp_suite};
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::crypto::{Crypto, CryptoSuite, KeySalt};
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use ring::rand::{SecureRandom, SystemRandom};

/// Every suite carevox-sip names, and names it does not know.
fn every_suite() -> Vec<CryptoSuite> {
    let mut all = CryptoSuite::KNOWN.to_vec();
    for other in [
        "F8_128_HMAC_SHA1_80",
        "NULL_HMAC_SHA1_80",
        "AEAD_AES_192_GCM",
        "aes_cm_128_hmac_sha1_80",
        "AES_CM_128_NULL_AUTH",
        "SEED_CTR_128_HMAC_SHA1_80",
    ] {
        let s = CryptoSuite::from_name(other);
        assert!(matches!(s, CryptoSuite::Other(_)), "{other}");
        all.push(s);
    }
    all
}

/// A line of `suite` with a random key of its length (30 bytes for an
/// unknown suite) and `params` appended.
fn line_text(tag: u32, suite: &CryptoSuite, params: &str, rng: &dyn SecureRandom) -> String {
    let mut key = vec![0u8; suite.key_salt_len().unwrap_or(30)];
    rng.fill(&mut key).unwrap();
    let line = match Crypto::new(tag, suite.clone(), KeySalt::new(key.clone())) {
        Ok(l) => l.to_string(),
        Err(_) => {
            use std::fmt::Write;
            let mut t = format!("{tag} {} inline:", suite.name());
            // An unknown suite: write the key by hand through a known one.
            let known =
                Crypto::new(1, CryptoSuite::AesCm128HmacSha1_80, KeySalt::new(key)).unwrap();
            let shown = known.to_string();
            let inline = shown.split("inline:").nth(1).unwrap();
            write!(t, "{inline}").unwrap();
            t
        }
    };
    if params.is_empty() {
        line
    } else {
        format!("{line} {params}")
    }
}

fn offer(lines: &[String]) -> SessionDescription {
    let mut text = String::from(
        "v=0\r\no=- 7 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n",
    );
    for l in lines {
        text.push_str(&format!("a=crypto:{l}\r\n"));
    }
    SessionDescription::parse(&text).unwrap()
}

fn answer(sdp: &SessionDescription, options: &SdesOptions) -> carevox::media::AudioAnswer {
    let rng = SystemRandom::new();
    answer_audio(
        sdp,
        &AudioCapabilities::new(vec![Codec::pcmu()]),
        &LocalMedia::new("198.51.100.7", 30000, "1"),
        &rng,
        options,
    )
    .unwrap()
}

/// RTP and RTCP both ways between the two endpoints.
fn carries_packets_both_ways(caller: &mut SrtpSession, callee: &mut SrtpSession) {
    caller.outbound.add_outbound_stream(0xaaaa).unwrap();
    callee.outbound.add_outbound_stream(0xbbbb).unwrap();
    let (mut wire, mut back) = (Vec::new(), Vec::new());
    for (from, to, ssrc) in [
        (&mut caller.outbound, &mut callee.inbound, 0xaaaa_u32),
        (&mut callee.outbound, &mut caller.inbound, 0xbbbb),
    ] {
        let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 160];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xd5; 160]);
        from.protect_rtp_vec(&p, &mut wire).unwrap();
        assert_ne!(wire[12..172], p[12..]);
        to.unprotect_rtp_vec(&wire, &mut back).unwrap();
        assert_eq!(back, p);
        let mut c = vec![0x81, 201, 0, 7];
        c.extend_from_slice(&ssrc.to_be_bytes());
        c.extend_from_slice(&[9; 24]);
        from.protect_rtcp_vec(&c, &mut wire).unwrap();
        to.unprotect_rtcp_vec(&wire, &mut back).unwrap();
        assert_eq!(back, c);
    }
}

#[test]
fn every_suite_name_keys_or_is_refused() {
    let rng = SystemRandom::new();
    let options = SdesOptions::new();
    let mut keyed = 0;
    for suite in every_suite() {
        let text = line_text(1, &suite, "", &rng);
        let sdp = offer(std::slice::from_ref(&text));
        let answered = answer(&sdp, &options);
        match srtp_suite(&suite) {
            Ok(srtp) => {
                let mut callee = answered.srtp.expect("a keyable suite is answered");
                assert_eq!(callee.suite, srtp);
                assert_eq!(srtp.sdes_name(), suite.name());
                let offered = [Crypto::parse(&text).unwrap()];
                let mut caller = offerer_srtp(&offered, &answered.answer.sdp, &options).unwrap();
                assert_eq!(caller.suite, srtp);
                carries_packets_both_ways(&mut caller, &mut callee);
                // The offerer's side of the same suite is keyable too.
                offer_crypto(5, suite.clone(), &rng).unwrap();
                keyed += 1;
            }
            Err(SdesError::UnsupportedSuite { suite: name }) => {
                assert_eq!(name, suite.name());
                assert!(answered.srtp.is_none(), "{suite}");
                assert!(answered.answer.audio.is_none(), "{suite}");
                assert_eq!(answered.answer.sdp.media[0].port, 0, "{suite}: rejected");
                assert!(matches!(
                    offer_crypto(1, suite.clone(), &rng),
                    Err(MediaError::Sdes(SdesError::UnsupportedSuite { .. }))
                ));
                assert!(matches!(
                    srtp_keying(&Crypto::parse(&text).unwrap(), &options),
                    Err(SdesError::UnsupportedSuite { .. })
                ));
            }
            Err(e) => panic!("{suite}: {e}"),
        }
    }
    assert_eq!(keyed, CryptoSuite::KNOWN.len());
    assert_eq!(keyable_suites(), CryptoSuite::KNOWN.to_vec());
}

/// A line asking for what carevox-srtp cannot honour is never chosen, in
/// every suite; a weaker line that keys is chosen instead, and the answer's
/// contexts work.
#[test]
fn unkeyable_lines_are_skipped_in_every_suite() {
    let rng = SystemRandom::new();
    let options = SdesOptions::new();
    let fallback = CryptoSuite::AesCm128HmacSha1_32;
    for suite in CryptoSuite::KNOWN {
        for (params, reason) in [
            ("KDR=0", SdesError::KeyDerivationRate { exponent: 0 }),
            ("KDR=16", SdesError::KeyDerivationRate { exponent: 16 }),
            ("FEC_ORDER=FEC_SRTP", SdesError::Fec { param: "FEC_ORDER" }),
            (
                "UNENCRYPTED_SRTP",
                SdesError::Insecure {
                    param: "UNENCRYPTED_SRTP",
                },
            ),
            (
                "UNENCRYPTED_SRTCP",
                SdesError::Insecure {
                    param: "UNENCRYPTED_SRTCP",
                },
            ),
            ("WSH=4096", SdesError::ReplayWindow { size: 4096 }),
        ] {
            let bad = line_text(1, &suite, params, &rng);
            assert_eq!(
                srtp_keying(&Crypto::parse(&bad).unwrap(), &options).unwrap_err(),
                reason,
                "{suite} {params}"
            );
            let good = line_text(2, &fallback, "", &rng);
            let lines = [bad.clone(), good.clone()];
            let answered = answer(&offer(&lines), &options);
            let audio = answered
                .answer
                .audio
                .as_ref()
                .expect("the good line is answered");
            let chosen = audio.srtp.as_ref().unwrap();
            assert_eq!(
                (chosen.remote.tag, &chosen.suite),
                (2, &fallback),
                "{suite} {params}"
            );
            let offered: Vec<Crypto> = lines.iter().map(|l| Crypto::parse(l).unwrap()).collect();
            let mut caller = offerer_srtp(&offered, &answered.answer.sdp, &options).unwrap();
            let mut callee = answered.srtp.unwrap();
            carries_packets_both_ways(&mut caller, &mut callee);

            // Alone, the line leaves the stream rejected.
            let alone = answer(&offer(std::slice::from_ref(&bad)), &options);
            assert!(
                alone.srtp.is_none() && alone.answer.audio.is_none(),
                "{suite} {params}"
            );
        }
    }
}

/// The strongest keyable line wins, whatever the order of the offer.
#[test]
fn the_strongest_keyable_suite_is_chosen() {
    let rng = SystemRandom::new();
    let suites = keyable_suites();
    let mut lines: Vec<String> = suites
        .iter()
        .rev()
        .zip(1u32..)
        .map(|(s, tag)| line_text(tag, s, "", &rng))
        .collect();
    let answered = answer(&offer(&lines), &SdesOptions::new());
    assert_eq!(answered.srtp.unwrap().suite.sdes_name(), suites[0].name());
    // With the strongest line asking for KDR, the next one is chosen.
    let strongest = lines.pop().unwrap();
    lines.push(format!("{strongest} KDR=1"));
    let answered = answer(&offer(&lines), &SdesOptions::new());
    assert_eq!(answered.srtp.unwrap().suite.sdes_name(), suites[1].name());
}

#[test]
fn the_offerer_checks_the_answer_against_its_offer() {
    let rng = SystemRandom::new();
    let options = SdesOptions::new();
    let ours = vec![
        offer_crypto(1, CryptoSuite::AeadAes128Gcm, &rng).unwrap(),
        offer_crypto(2, CryptoSuite::AesCm128HmacSha1_80, &rng).unwrap(),
    ];
    let answer_with = |cryptos: &[String], port: u16| {
        let mut text = format!(
            "v=0\r\no=- 9 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio {port} RTP/SAVP 0\r\n"
        );
        for c in cryptos {
            text.push_str(&format!("a=crypto:{c}\r\n"));
        }
        SessionDescription::parse(&text).unwrap()
    };
    let theirs = |tag, suite: CryptoSuite| offer_crypto(tag, suite, &rng).unwrap().to_string();
    let good = answer_with(&[theirs(2, CryptoSuite::AesCm128HmacSha1_80)], 5000);
    assert_eq!(
        offerer_srtp(&ours, &good, &options)
            .unwrap()
            .suite
            .sdes_name(),
        "AES_CM_128_HMAC_SHA1_80"
    );
    assert_eq!(
        offerer_srtp(
            &ours,
            &answer_with(&[theirs(3, CryptoSuite::AeadAes128Gcm)], 5000),
            &options
        )
        .unwrap_err(),
        MediaError::UnknownTag { tag: 3 }
    );
    assert_eq!(
        offerer_srtp(
            &ours,
            &answer_with(&[theirs(1, CryptoSuite::AeadAes256Gcm)], 5000),
            &options
        )
        .unwrap_err(),
        MediaError::SuiteMismatch { tag: 1 }
    );
    assert_eq!(
        offerer_srtp(&ours, &answer_with(&[], 5000), &options).unwrap_err(),
        MediaError::AnswerCryptoCount { count: 0 }
    );
    let two = [
        theirs(1, CryptoSuite::AeadAes128Gcm),
        theirs(2, CryptoSuite::AesCm128HmacSha1_80),
    ];
    assert_eq!(
        offerer_srtp(&ours, &answer_with(&two, 5000), &options).unwrap_err(),
        MediaError::AnswerCryptoCount { count: 2 }
    );
    assert_eq!(
        offerer_srtp(
            &ours,
            &answer_with(&[theirs(1, CryptoSuite::AeadAes128Gcm)], 0),
            &options
        )
        .unwrap_err(),
        MediaError::NoSdesAudio
    );
    // An answer whose line asks for KDR is refused with the reason.
    let kdr = answer_with(
        &[format!(
            "{} KDR=3",
            theirs(2, CryptoSuite::AesCm128HmacSha1_80)
        )],
        5000,
    );
    assert_eq!(
        offerer_srtp(&ours, &kdr, &options).unwrap_err(),
        MediaError::Sdes(SdesError::KeyDerivationRate { exponent: 3 })
    );
}
