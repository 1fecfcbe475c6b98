//! Property tests: SDP, `a=crypto` and digest header round trips, and
//! "never panics" on arbitrary input for each of their parsers.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // strategies outside #[test] functions
#![allow(clippy::disallowed_methods)] // tests draw real randomness

use carevox_sip::AuthHeader;
use carevox_sip::auth::{Algorithm, Challenge, Credentials, Qop};
use carevox_sip::sdp::crypto::{Crypto, CryptoSuite, KeyParam, KeySalt, Lifetime, Mki};
use carevox_sip::sdp::offer_answer::{
    AudioCapabilities, Codec, LocalMedia, OfferAnswerError, answer_audio,
};
use carevox_sip::sdp::{
    Attribute, Bandwidth, Connection, Direction, Fingerprint, Fmtp, LineEnding, Media, Origin,
    Rtcp, Rtpmap, SessionDescription, Setup, Timing,
};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.+_~-]{0,11}"
}

fn digits() -> impl Strategy<Value = String> {
    "(0|[1-9][0-9]{0,15})"
}

fn text() -> impl Strategy<Value = String> {
    "[ -~\u{e0}-\u{ff}]{1,24}"
}

fn address() -> impl Strategy<Value = String> {
    prop_oneof![
        "(0|[1-9][0-9]{0,2})\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "2001:db8::[0-9a-f]{1,4}",
        "[a-z]{1,8}\\.example",
    ]
}

fn connection() -> impl Strategy<Value = Connection> {
    address().prop_map(|a| Connection::internet(&a))
}

fn suite() -> impl Strategy<Value = CryptoSuite> {
    prop_oneof![
        proptest::sample::select(CryptoSuite::KNOWN.to_vec()),
        "[A-Z][A-Z0-9_]{3,20}".prop_map(|s| CryptoSuite::from_name(&s)),
    ]
}

fn crypto() -> impl Strategy<Value = Crypto> {
    (
        0u32..1_000_000_000,
        suite(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 48),
        proptest::option::of(prop_oneof![
            (0u8..=48).prop_map(Lifetime::PowerOfTwo),
            (1u64..=(1 << 40)).prop_map(Lifetime::Packets),
        ]),
        proptest::option::of((1u8..=4).prop_flat_map(|len| {
            (0u64..(1u64 << (8 * u32::from(len)))).prop_map(move |value| Mki { value, length: len })
        })),
        proptest::collection::vec(
            prop_oneof![
                Just("UNENCRYPTED_SRTCP".to_owned()),
                (0u8..=24).prop_map(|n| format!("KDR={n}")),
                (64u32..100_000).prop_map(|n| format!("WSH={n}")),
                Just("FEC_ORDER=FEC_SRTP".to_owned()),
            ],
            0..3,
        ),
    )
        .prop_map(|(tag, suite, padded_hint, bytes, lifetime, mki, params)| {
            let len = suite
                .key_salt_len()
                .unwrap_or(if padded_hint { 31 } else { 30 });
            let mut c = Crypto::new(
                0,
                CryptoSuite::AesCm128HmacSha1_80,
                KeySalt::new(vec![0; 30]),
            )
            .unwrap();
            c.tag = tag;
            c.suite = suite;
            c.keys = vec![KeyParam {
                key_salt: KeySalt::new(bytes[..len].to_vec()),
                lifetime,
                mki,
            }];
            let line = format!(
                "{c}{}",
                params.iter().map(|p| format!(" {p}")).collect::<String>()
            );
            Crypto::parse(&line).unwrap()
        })
}

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        (
            0u8..=127,
            token(),
            1u32..200_000,
            proptest::option::of(1u32..9)
        )
            .prop_map(
                |(payload_type, encoding, clock_rate, channels)| Attribute::Rtpmap(Rtpmap {
                    payload_type,
                    encoding: encoding.replace('/', ""),
                    clock_rate,
                    channels,
                })
            ),
        (0u8..=127, "[!-~][ -~]{0,20}").prop_map(|(pt, params)| Attribute::Fmtp(Fmtp {
            format: pt.to_string(),
            params,
        })),
        (0u32..1000).prop_map(Attribute::Ptime),
        (0u32..1000).prop_map(Attribute::MaxPtime),
        proptest::sample::select(vec![
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive
        ])
        .prop_map(Attribute::Direction),
        (any::<u16>(), proptest::option::of(connection()))
            .prop_map(|(port, connection)| Attribute::Rtcp(Rtcp { port, connection })),
        Just(Attribute::RtcpMux),
        crypto().prop_map(Attribute::Crypto),
        (
            prop_oneof![Just("sha-256"), Just("SHA-1"), Just("sha-512")],
            proptest::collection::vec(any::<u8>(), 1..40),
            any::<bool>()
        )
            .prop_map(|(h, bytes, uppercase)| {
                let mut f = Fingerprint::new(h, bytes);
                f.uppercase = uppercase;
                // All-digit hex reads back as upper case.
                if f.to_string()
                    .split(' ')
                    .nth(1)
                    .unwrap()
                    .bytes()
                    .all(|b| !b.is_ascii_alphabetic())
                {
                    f.uppercase = true;
                }
                Attribute::Fingerprint(f)
            }),
        proptest::sample::select(vec![
            Setup::Active,
            Setup::Passive,
            Setup::ActPass,
            Setup::HoldConn
        ])
        .prop_map(Attribute::Setup),
        token().prop_map(Attribute::Mid),
        (
            "x-[a-z0-9-]{1,10}",
            proptest::option::of("[!-~][ -~]{0,20}")
        )
            .prop_map(|(name, value)| Attribute::Other {
                name,
                value: carevox_redact::Pii::new(value),
            }),
    ]
}

fn media() -> impl Strategy<Value = Media> {
    (
        prop_oneof![Just("audio"), Just("video"), Just("application")],
        any::<u16>(),
        proptest::option::of(1u16..8),
        prop_oneof![
            Just("RTP/AVP"),
            Just("RTP/SAVP"),
            Just("RTP/SAVPF"),
            Just("UDP/TLS/RTP/SAVPF")
        ],
        proptest::collection::vec((0u8..=127).prop_map(|p| p.to_string()), 1..6),
        proptest::option::of(text()),
        proptest::collection::vec(connection(), 0..2),
        proptest::collection::vec(
            (token(), 0u64..1_000_000)
                .prop_map(|(bw_type, bandwidth)| Bandwidth { bw_type, bandwidth }),
            0..2,
        ),
        proptest::collection::vec(attribute(), 0..8),
    )
        .prop_map(
            |(kind, port, num_ports, proto, formats, info, conns, bws, attrs)| {
                let mut m = Media::new(kind, port, proto, formats);
                m.num_ports = num_ports;
                m.information = carevox_redact::Pii::new(info);
                m.connections = conns;
                m.bandwidths = bws;
                m.attributes = attrs;
                m
            },
        )
}

fn session() -> impl Strategy<Value = SessionDescription> {
    (
        ("[a-z-]{1,8}", digits(), digits(), address()),
        text(),
        proptest::option::of(text()),
        proptest::collection::vec(text(), 0..2),
        proptest::option::of(connection()),
        proptest::collection::vec((0u64..u64::MAX, 0u64..u64::MAX), 1..3),
        proptest::option::of(Just("2882844526 -1h 2898848070 0".to_owned())),
        proptest::collection::vec(attribute(), 0..5),
        proptest::collection::vec(media(), 0..4),
        any::<bool>(),
    )
        .prop_map(
            |(o, name, info, emails, conn, times, zones, attrs, media, lf)| {
                let c = Connection::internet(&o.3);
                let mut s = SessionDescription::new(Origin {
                    username: o.0.into(),
                    session_id: o.1.into(),
                    session_version: o.2,
                    net_type: c.net_type,
                    addr_type: c.addr_type,
                    address: o.3.into(),
                });
                s.session_name = carevox_redact::Pii::new(name);
                s.information = carevox_redact::Pii::new(info);
                s.emails = carevox_redact::Pii::new(emails);
                s.connection = conn;
                s.timings = times
                    .into_iter()
                    .map(|(start, stop)| Timing {
                        start,
                        stop,
                        repeats: Vec::new(),
                    })
                    .collect();
                s.time_zones = zones;
                s.attributes = attrs;
                s.media = media;
                s.line_ending = if lf { LineEnding::Lf } else { LineEnding::CrLf };
                s
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sdp_round_trips_text_identically(sdp in session()) {
        let text = sdp.to_string();
        let parsed = SessionDescription::parse(&text).unwrap();
        prop_assert_eq!(&parsed, &sdp);
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn sdp_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SessionDescription::parse_bytes(&bytes);
    }

    #[test]
    fn sdp_lines_parse_or_fail_cleanly_and_reparse_to_the_same(
        lines in proptest::collection::vec("[vosiuepcbtrzkam]=[ -~]{0,30}", 0..16),
        crlf in any::<bool>(),
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = String::from("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n");
        for l in &lines {
            text.push_str(l);
            text.push_str(nl);
        }
        if let Ok(sdp) = SessionDescription::parse(&text) {
            prop_assert_eq!(SessionDescription::parse(&sdp.to_string()).unwrap(), sdp);
        }
    }

    #[test]
    fn sdp_mutations_never_panic(
        index in 0usize..4096,
        byte in any::<u8>(),
        cut in 0usize..4096,
    ) {
        let base = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sdp/linphone_savp_offer.sdp")).unwrap();
        let mut m = base.clone();
        let i = index % m.len();
        m[i] = byte;
        if let Ok(sdp) = SessionDescription::parse_bytes(&m) {
            prop_assert_eq!(&SessionDescription::parse(&sdp.to_string()).unwrap(), &sdp);
            // Any offer that parses gets an answer that is valid SDP.
            let caps = AudioCapabilities::new(vec![Codec::opus(), Codec::pcmu()]);
            let local = LocalMedia::new("192.0.2.80", 20000, "42");
            let rng = ring::rand::SystemRandom::new();
            match answer_audio(&sdp, &caps, &local, &rng) {
                Ok(answer) => prop_assert_eq!(answer.sdp.check(), Ok(())),
                Err(e) => prop_assert_eq!(e, OfferAnswerError::NoMedia),
            }
        }
        let _ = SessionDescription::parse_bytes(&base[..cut % base.len()]);
    }

    #[test]
    fn crypto_round_trips(c in crypto()) {
        let text = c.to_string();
        prop_assert_eq!(Crypto::parse(&text).unwrap(), c);
    }

    #[test]
    fn crypto_parse_never_panics(s in "[ -~]{0,120}") {
        if let Ok(c) = Crypto::parse(&s) {
            prop_assert_eq!(Crypto::parse(&c.to_string()).unwrap(), c);
        }
    }

    #[test]
    fn crypto_shaped_input_never_panics(
        tag in "[0-9]{0,10}",
        suite in "[A-Z0-9_]{0,24}",
        key in "[A-Za-z0-9+/=]{0,70}",
        rest in "[|:^0-9 ;A-Z_=a-z]{0,30}",
    ) {
        let s = format!("{tag} {suite} inline:{key}{rest}");
        if let Ok(c) = Crypto::parse(&s) {
            prop_assert_eq!(Crypto::parse(&c.to_string()).unwrap(), c);
        }
    }

    #[test]
    fn auth_params_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = AuthHeader::parse_bytes(&bytes);
        let _ = Challenge::parse_bytes(&bytes);
        let _ = Credentials::parse_bytes(&bytes);
    }

    #[test]
    fn auth_param_shaped_input_never_panics(s in "Digest [a-z=\", \\\\\t*'%A-F0-9-]{0,120}") {
        if let Ok(c) = Challenge::parse(&s) {
            prop_assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c);
        }
        if let Ok(c) = Credentials::parse(&s) {
            prop_assert_eq!(Credentials::parse(&c.to_string()).unwrap(), c);
        }
    }

    #[test]
    fn challenge_round_trips(
        realm in "[ -~\u{e9}]{1,30}",
        nonce in "[!-~]{1,40}",
        opaque in proptest::option::of("[ -~]{0,20}"),
        domain in proptest::option::of("[ -~]{0,20}"),
        stale in any::<bool>(),
        alg in proptest::option::of(proptest::sample::select(vec![
            Algorithm::Md5, Algorithm::Md5Sess, Algorithm::Sha256, Algorithm::Sha256Sess,
            Algorithm::Sha512_256, Algorithm::Sha512_256Sess,
        ])),
        qop in proptest::collection::vec(proptest::sample::select(vec![Qop::Auth, Qop::AuthInt]), 0..3),
        charset_utf8 in any::<bool>(),
        userhash in any::<bool>(),
    ) {
        let c = Challenge { realm, domain, nonce: nonce.into(), opaque: opaque.into(), stale, algorithm: alg, qop, charset_utf8, userhash };
        prop_assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c);
    }

    #[test]
    fn credentials_round_trip(
        username in "[ -~\u{e4}\u{f8}]{1,20}",
        extended in any::<bool>(),
        realm in "[ -~]{1,20}",
        nonce in "[!-~]{1,40}",
        uri in "sip:[a-z@.]{1,20}",
        response in "[0-9a-f]{32}",
        cnonce in proptest::option::of("[!-~]{1,20}"),
        nc in proptest::option::of(1u32..),
        qop in proptest::option::of(proptest::sample::select(vec![Qop::Auth, Qop::AuthInt])),
        userhash in any::<bool>(),
    ) {
        let extended = (extended || !username.is_ascii()) && !userhash;
        let c = Credentials {
            username: username.into(), extended_username: extended, realm: realm.into(),
            nonce: nonce.into(), uri: uri.into(), response: response.into(),
            algorithm: Some(Algorithm::Sha256), cnonce: cnonce.into(), opaque: None.into(), qop, nc, userhash,
        };
        prop_assert_eq!(Credentials::parse(&c.to_string()).unwrap(), c);
    }
}
