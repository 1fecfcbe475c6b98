//! SDP behaviour through the public API: round trips of real-world style
//! descriptions, typed access, strict grammar errors with line numbers,
//! limits, and the offer/answer helper.

#![allow(clippy::disallowed_methods)] // tests draw real randomness
#![allow(clippy::unwrap_used)] // helpers outside #[test] functions

use std::fs;
use std::path::{Path, PathBuf};

use carevox_sip::sdp::crypto::{Crypto, CryptoSuite};
use carevox_sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia, answer_audio};
use carevox_sip::sdp::{
    Attribute, Direction, LineEnding, SdpError, SdpLimits, SessionDescription, Setup,
};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sdp")
}

fn sample(name: &str) -> String {
    fs::read_to_string(data_dir().join(name)).unwrap()
}

#[test]
fn every_sample_round_trips_byte_identically() {
    let mut n = 0;
    for entry in fs::read_dir(data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let sdp =
            SessionDescription::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(sdp.to_string(), text, "{}", path.display());
        n += 1;
    }
    assert!(n >= 7);
}

#[test]
fn linphone_offer_typed_access() {
    let sdp = SessionDescription::parse(&sample("linphone_savp_offer.sdp")).unwrap();
    let audio = &sdp.media[0];
    assert!(audio.is_sdes_srtp());
    assert_eq!(audio.formats.len(), 9);
    let opus = audio.rtpmap(96).unwrap();
    assert_eq!(
        (
            opus.encoding.as_str(),
            opus.clock_rate,
            opus.channel_count()
        ),
        ("opus", 48000, 2)
    );
    assert_eq!(audio.fmtp("18").unwrap().params, "annexb=yes");
    let suites: Vec<_> = audio.cryptos().map(|c| c.suite.clone()).collect();
    assert_eq!(suites[2], CryptoSuite::AesCm256HmacSha1_80);
    for c in audio.cryptos() {
        let k = c.srtp_keying().unwrap();
        assert_eq!(
            k.master_key.expose().len() + k.master_salt.expose().len(),
            c.suite.key_salt_len().unwrap()
        );
    }
    // Unknown attributes are kept in order.
    assert!(matches!(&sdp.attributes[0], Attribute::Other { name, .. } if name == "rtcp-xr"));
    assert_eq!(sdp.line_ending, LineEnding::CrLf);
}

#[test]
fn webrtc_offer_dtls_attributes() {
    let sdp = SessionDescription::parse(&sample("webrtc_browser_offer.sdp")).unwrap();
    assert_eq!(sdp.media.len(), 3);
    let audio = &sdp.media[0];
    assert!(audio.is_dtls_srtp());
    assert!(audio.rtcp_mux());
    let fp = audio
        .attributes
        .iter()
        .find_map(|a| match a {
            Attribute::Fingerprint(f) => Some(f),
            _ => None,
        })
        .unwrap();
    assert_eq!(fp.hash_function, "sha-256");
    assert_eq!(fp.bytes.len(), 32);
    assert!(audio.attributes.contains(&Attribute::Setup(Setup::ActPass)));
    assert!(audio.attributes.contains(&Attribute::Mid("0".into())));
    assert_eq!(sdp.media_direction(1), Some(Direction::RecvOnly));
    assert!(sdp.media[2].is_rejected());
    assert_eq!(sdp.media_connection(0).unwrap().address.expose(), "0.0.0.0");
}

#[test]
fn session_level_direction_applies_to_media() {
    let sdp = SessionDescription::parse(&sample("polycom_hold_savp.sdp")).unwrap();
    assert_eq!(sdp.line_ending, LineEnding::Lf);
    assert_eq!(sdp.media_direction(0), Some(Direction::SendOnly));
    assert_eq!(sdp.media[0].direction(), Direction::SendRecv);
}

#[test]
fn timing_repeat_zone_and_key_lines() {
    let sdp = SessionDescription::parse(&sample("rfc8866_timing.sdp")).unwrap();
    assert_eq!(sdp.timings.len(), 2);
    assert_eq!(sdp.timings[0].repeats.len(), 2);
    assert_eq!(
        sdp.time_zones.as_deref(),
        Some("2882844526 -1h 2898848070 0")
    );
    assert_eq!(sdp.media[0].num_ports, Some(2));
    assert!(!format!("{sdp:?}").contains("prompt"));
}

fn err(text: &str) -> SdpError {
    SessionDescription::parse(text).unwrap_err()
}

const HEAD: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n";

#[test]
fn grammar_errors_name_the_line() {
    assert_eq!(err(""), SdpError::Empty);
    assert_eq!(err("v=1\r\n"), SdpError::UnsupportedVersion { line: 1 });
    assert_eq!(
        err("o=- 1 1 IN IP4 x\r\n"),
        SdpError::UnexpectedLine { line: 1, kind: 'o' }
    );
    assert_eq!(
        err(&format!("{HEAD}x=1\r\n")),
        SdpError::UnknownLineType { line: 5, kind: 'x' }
    );
    assert_eq!(
        err(&format!("{HEAD}garbage\r\n")),
        SdpError::MalformedLine { line: 5 }
    );
    assert_eq!(
        err(&format!("{HEAD}c=IN IP4 192.0.2.1\r\n")),
        SdpError::UnexpectedLine { line: 5, kind: 'c' }
    );
    assert_eq!(
        err("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"),
        SdpError::MissingLine { kind: 't' }
    );
    assert!(matches!(
        err(&format!("{HEAD}m=audio 70000 RTP/AVP 0\r\n")),
        SdpError::InvalidField {
            line: 5,
            kind: 'm',
            field: "port"
        }
    ));
    assert!(matches!(
        err(&format!(
            "{HEAD}m=audio 4000 RTP/AVP 0\r\na=rtpmap:200 X/8000\r\n"
        )),
        SdpError::InvalidAttribute {
            line: 6,
            attribute: "rtpmap",
            ..
        }
    ));
    assert!(matches!(
        err(&format!("{HEAD}m=audio 4000 RTP/AVP 0\r\na=sendonly:x\r\n")),
        SdpError::InvalidAttribute {
            line: 6,
            attribute: "sendonly",
            ..
        }
    ));
    assert!(matches!(
        err(&format!(
            "{HEAD}m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD\r\n"
        )),
        SdpError::Crypto { line: 6, .. }
    ));
    assert!(matches!(
        err(&format!("{HEAD}m=audio 4000  RTP/AVP 0\r\n")),
        SdpError::InvalidField {
            line: 5,
            kind: 'm',
            ..
        }
    ));
    assert_eq!(
        err(&format!("{HEAD}m=audio 4000 RTP/AVP 0\r\nt=0 0\r\n")),
        SdpError::UnexpectedLine { line: 6, kind: 't' }
    );
    assert_eq!(
        err(&format!("{HEAD}a=x\r\nb=AS:1\r\n")),
        SdpError::UnexpectedLine { line: 6, kind: 'b' }
    );
    assert_eq!(
        err(&format!("{HEAD}a=x\0\r\n")),
        SdpError::ForbiddenCharacter { line: 5 }
    );
}

#[test]
fn errors_do_not_echo_content() {
    let e = err("v=0\r\no=secret-user 1 1 IN IP4 192.0.2.1 extra\r\ns=-\r\nt=0 0\r\n");
    assert!(matches!(
        e,
        SdpError::InvalidField {
            line: 2,
            kind: 'o',
            ..
        }
    ));
    assert!(!e.to_string().contains("secret-user"));
}

#[test]
fn limits_are_enforced() {
    let limits = SdpLimits {
        max_media: 1,
        ..SdpLimits::default()
    };
    let two = format!("{HEAD}m=audio 1 RTP/AVP 0\r\nm=audio 2 RTP/AVP 0\r\n");
    assert_eq!(
        SessionDescription::parse_with_limits(two.as_bytes(), &limits).unwrap_err(),
        SdpError::TooManyMedia { max: 1 }
    );
    let limits = SdpLimits {
        max_size: 10,
        ..SdpLimits::default()
    };
    assert!(matches!(
        SessionDescription::parse_with_limits(HEAD.as_bytes(), &limits),
        Err(SdpError::TooLarge { .. })
    ));
    let limits = SdpLimits {
        max_lines: 3,
        ..SdpLimits::default()
    };
    assert_eq!(
        SessionDescription::parse_with_limits(HEAD.as_bytes(), &limits).unwrap_err(),
        SdpError::TooManyLines { max: 3 }
    );
    let many = format!("{HEAD}{}", "a=x\r\n".repeat(3));
    let limits = SdpLimits {
        max_attributes: 2,
        ..SdpLimits::default()
    };
    assert_eq!(
        SessionDescription::parse_with_limits(many.as_bytes(), &limits).unwrap_err(),
        SdpError::TooManyAttributes { line: 7, max: 2 }
    );
}

fn caps() -> AudioCapabilities {
    AudioCapabilities::new(vec![Codec::opus(), Codec::pcmu(), Codec::pcma()])
}

#[test]
fn answer_to_baresip_picks_strongest_suite_and_echoes_tag() {
    let rng = ring::rand::SystemRandom::new();
    let offer = SessionDescription::parse(&sample("baresip_savp_offer.sdp")).unwrap();
    let local = LocalMedia::new("192.0.2.80", 20000, "42");
    let answer = answer_audio(&offer, &caps(), &local, &rng).unwrap();
    let audio = answer.audio.unwrap();
    let srtp = audio.srtp.unwrap();
    assert_eq!(srtp.suite, CryptoSuite::AeadAes256Gcm);
    assert_eq!(srtp.local.tag, 3);
    assert_eq!(srtp.remote.tag, 3);
    assert_ne!(srtp.local.keys[0].key_salt, srtp.remote.keys[0].key_salt);
    let names: Vec<_> = audio
        .codecs
        .iter()
        .map(|c| (c.payload_type, c.name.as_str()))
        .collect();
    assert_eq!(names, vec![(96, "opus"), (0, "PCMU"), (8, "PCMA")]);
    assert_eq!(audio.telephone_event, Some(101));
    assert_eq!(audio.direction, Direction::SendRecv);
    assert!(!audio.rtcp_mux);
    assert_eq!(
        audio.remote_address.as_ref().map(|a| a.expose().as_str()),
        Some("127.0.0.1")
    );
    assert_eq!(audio.remote_port, 10106);
    // The answer is valid SDP that parses back to itself.
    let text = answer.sdp.to_string();
    assert_eq!(SessionDescription::parse(&text).unwrap(), answer.sdp);
    assert!(text.contains("m=audio 20000 RTP/SAVP 96 0 8 101\r\n"));
    assert!(text.contains("a=rtpmap:96 opus/48000/2\r\n"));
    assert!(text.contains("a=fmtp:101 0-15\r\n"));
    assert!(text.contains("a=crypto:3 AEAD_AES_256_GCM inline:"));
}

#[test]
fn answer_respects_local_suites_and_hold() {
    let rng = ring::rand::SystemRandom::new();
    let offer = SessionDescription::parse(&sample("polycom_hold_savp.sdp")).unwrap();
    let mut caps = AudioCapabilities::new(vec![Codec::g722(), Codec::pcmu()]);
    caps.crypto_suites = vec![CryptoSuite::AesCm128HmacSha1_32];
    let answer = answer_audio(
        &offer,
        &caps,
        &LocalMedia::new("2001:db8::5", 4000, "7"),
        &rng,
    )
    .unwrap();
    let audio = answer.audio.unwrap();
    assert_eq!(audio.srtp.as_ref().unwrap().local.tag, 2);
    assert_eq!(
        audio.direction,
        Direction::RecvOnly,
        "offer is sendonly at session level"
    );
    assert_eq!(audio.codecs[0].payload_type, 9);
    assert_eq!(audio.telephone_event, Some(127));
    assert_eq!(answer.sdp.connection.as_ref().unwrap().addr_type, "IP6");
}

#[test]
fn answer_rejects_what_it_cannot_serve() {
    let rng = ring::rand::SystemRandom::new();
    let local = LocalMedia::new("192.0.2.80", 20000, "42");
    // Plain RTP is refused by default, accepted through the explicit door.
    let offer = SessionDescription::parse(&sample("rfc8866_example.sdp")).unwrap();
    let answer = answer_audio(&offer, &caps(), &local, &rng).unwrap();
    assert!(answer.audio.is_none());
    assert!(answer.sdp.media.iter().all(|m| m.port == 0));
    assert_eq!(answer.sdp.media.len(), 3);
    assert_eq!(answer.sdp.media[2].formats, vec!["99".to_string()]);
    let mut open = caps();
    open.allow_plain_rtp = true;
    let answer = answer_audio(&offer, &open, &local, &rng).unwrap();
    let audio = answer.audio.unwrap();
    assert_eq!(audio.media_index, 0);
    assert!(audio.srtp.is_none());
    let ports: Vec<u16> = answer.sdp.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, vec![20000, 0, 0]);
    // DTLS-SRTP is not negotiated here.
    let offer = SessionDescription::parse(&sample("webrtc_browser_offer.sdp")).unwrap();
    let answer = answer_audio(&offer, &caps(), &local, &rng).unwrap();
    assert!(answer.audio.is_none());
    assert_eq!(
        answer.sdp.media[0].attributes,
        vec![Attribute::Mid("0".into())]
    );
}

#[test]
fn answer_skips_insecure_crypto_lines() {
    let rng = ring::rand::SystemRandom::new();
    let local = LocalMedia::new("192.0.2.80", 20000, "42");
    let key = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    let offer = format!(
        "{HEAD}m=audio 4000 RTP/SAVP 0\r\na=rtcp-mux\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key} UNENCRYPTED_SRTP\r\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{key}\r\n"
    );
    let offer = SessionDescription::parse(&offer).unwrap();
    let answer = answer_audio(&offer, &caps(), &local, &rng).unwrap();
    let audio = answer.audio.unwrap();
    assert_eq!(audio.srtp.unwrap().local.tag, 2);
    assert!(audio.rtcp_mux);
    let only_insecure = format!(
        "{HEAD}m=audio 4000 RTP/SAVP 0\r\n\
         a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key} UNAUTHENTICATED_SRTP\r\n"
    );
    let offer = SessionDescription::parse(&only_insecure).unwrap();
    let answer = answer_audio(&offer, &caps(), &local, &rng).unwrap();
    assert!(answer.audio.is_none());
    assert_eq!(answer.sdp.media[0].port, 0);
}

#[test]
fn no_common_codec_rejects_the_stream() {
    let rng = ring::rand::SystemRandom::new();
    let local = LocalMedia::new("192.0.2.80", 20000, "42");
    let offer = SessionDescription::parse(&sample("asterisk_savp_answer.sdp")).unwrap();
    let caps = AudioCapabilities::new(vec![Codec::opus()]);
    assert!(
        answer_audio(&offer, &caps, &local, &rng)
            .unwrap()
            .audio
            .is_none()
    );
}

#[test]
fn generated_crypto_line_parses_back() {
    let rng = ring::rand::SystemRandom::new();
    for suite in CryptoSuite::KNOWN {
        let c = Crypto::generate(1, suite.clone(), &rng).unwrap();
        let line = format!("{HEAD}m=audio 1 RTP/SAVP 0\r\na=crypto:{c}\r\n");
        let sdp = SessionDescription::parse(&line).unwrap();
        assert_eq!(sdp.media[0].cryptos().next().unwrap(), &c);
    }
}

#[test]
fn check_catches_hand_built_line_injection() {
    let mut sdp = SessionDescription::parse(&sample("asterisk_savp_answer.sdp")).unwrap();
    assert_eq!(sdp.check(), Ok(()));
    sdp.session_name = carevox_redact::Pii::new("x\r\na=injected".to_owned());
    assert!(sdp.check().is_err());
    let rng = ring::rand::SystemRandom::new();
    let offer = SessionDescription::parse(&sample("baresip_savp_offer.sdp")).unwrap();
    let bad = LocalMedia::new("192.0.2.1\r\na=x", 1, "1");
    assert_eq!(
        answer_audio(&offer, &caps(), &bad, &rng).unwrap_err(),
        carevox_sip::sdp::offer_answer::OfferAnswerError::InvalidLocalMedia
    );
}

#[test]
fn telephone_event_follows_the_preferred_codec_clock() {
    let rng = ring::rand::SystemRandom::new();
    let offer = SessionDescription::parse(&sample("linphone_savp_offer.sdp")).unwrap();
    let local = LocalMedia::new("192.0.2.80", 20000, "42");
    let pcmu_first = AudioCapabilities::new(vec![Codec::pcmu(), Codec::opus()]);
    let audio = answer_audio(&offer, &pcmu_first, &local, &rng)
        .unwrap()
        .audio
        .unwrap();
    assert_eq!(audio.telephone_event, Some(100));
    let opus_first = AudioCapabilities::new(vec![Codec::opus(), Codec::pcmu()]);
    let audio = answer_audio(&offer, &opus_first, &local, &rng)
        .unwrap()
        .audio
        .unwrap();
    assert_eq!(audio.telephone_event, Some(101));
    assert_eq!(audio.srtp.unwrap().suite, CryptoSuite::AesCm256HmacSha1_80);
}
