//! The one auth-param parser, seen from the message layer and from the
//! digest layer: both read the same `AuthHeader`, so they cannot disagree.
//! Regression cases for inputs on which the two former parsers did, a
//! property that what the message layer decodes is what the digest layer
//! reads, and every authentication header of the torture suite and the
//! real captures read both ways.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // strategies outside #[test] functions

mod common;

use bytes::Bytes;
use carevox_sip::auth::{Challenge, Credentials, DigestError};
use carevox_sip::{AuthHeader, AuthParamError, Message, ParseError};
use proptest::prelude::*;

/// A REGISTER carrying `header: value`.
fn register_with(header: &str, value: &str) -> Message {
    Message::parse(Bytes::from(format!(
        "REGISTER sip:clinic.example SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1\r\n\
         From: <sip:nurse-42@clinic.example>;tag=1\r\n\
         To: <sip:nurse-42@clinic.example>\r\n\
         Call-ID: 1@192.0.2.7\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n\
         {header}: {value}\r\nContent-Length: 0\r\n\r\n"
    )))
    .unwrap()
}

const CREDS: &str = "Digest username=\"nurse-42\", realm=\"clinic.example\", nonce=\"n\", \
                     uri=\"sip:clinic.example\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\"";

/// Values the message layer used to accept while the digest layer refused
/// them (or read differently): now both refuse them, with the same error.
#[test]
fn former_disagreements_are_refused_by_both_layers() {
    let cases: &[(&str, AuthParamError)] = &[
        // Duplicates: the message layer returned the first `realm`.
        (
            "Digest realm=\"a\", nonce=\"n\", REALM=\"b\"",
            AuthParamError::DuplicateParam { offset: 38 },
        ),
        // Junk after a quoted string: the message layer returned `"a"x`.
        ("Digest realm=\"a\"x, nonce=\"n\"", syntax(16)),
        // Space inside a token: the message layer returned `MD5 sess`.
        ("Digest realm=r, nonce=n, algorithm=MD5 sess", syntax(39)),
        // Angle brackets: the message layer read `a<b, nonce=c>` as one value.
        ("Digest realm=a<b, nonce=c>", syntax(14)),
        // A parameter without a value: the message layer returned a flag.
        ("Digest stale, realm=r, nonce=n", syntax(12)),
        // An unclosed quoted string: the message layer returned it raw.
        ("Digest realm=r, nonce=\"n", syntax(24)),
        // An escaped non-ASCII character.
        ("Digest realm=\"\\\u{e9}\", nonce=n", syntax(14)),
    ];
    for (value, want) in cases {
        let m = register_with("WWW-Authenticate", value);
        let got = m.www_authenticate().next().unwrap().unwrap_err();
        let ParseError::AuthParams { header, error } = got else {
            panic!("{value:?}: {got}");
        };
        assert_eq!(header, "WWW-Authenticate");
        same_error(error, *want, value);
        match Challenge::parse(value).unwrap_err() {
            DigestError::Params(error) => same_error(error, *want, value),
            other => panic!("{value:?}: {other}"),
        }
    }
}

/// Values the digest layer used to refuse while the message layer accepted
/// them: now both read them the same way.
#[test]
fn former_disagreements_are_read_alike_by_both_layers() {
    for value in [
        // Empty list items (RFC 7230 section 7).
        "Digest , realm=\"r\",, nonce=\"n\", ",
        // A folded line inside a quoted string (RFC 3261 section 7.3.1).
        "Digest realm=\"clinic\r\n example\", nonce=\"n\"",
    ] {
        let m = register_with("WWW-Authenticate", value);
        let header = m.www_authenticate().next().unwrap().unwrap();
        let from_message = Challenge::from_header(&header).unwrap();
        assert_eq!(Challenge::parse(value).unwrap(), from_message);
        assert_eq!(
            header.params().get("realm").unwrap().value(),
            from_message.realm
        );
    }
}

#[test]
fn authentication_info_is_checked() {
    let m = register_with(
        "Authentication-Info",
        "qop=auth, rspauth=\"ab\", nc=00000001",
    );
    let info = m.authentication_info().unwrap().unwrap();
    assert_eq!(info.get("rspauth").unwrap().value(), "ab");
    let m = register_with("Authentication-Info", "qop=auth, QOP=auth-int");
    assert!(matches!(
        m.authentication_info(),
        Err(ParseError::AuthParams {
            header: "Authentication-Info",
            error: AuthParamError::DuplicateParam { .. }
        })
    ));
}

#[test]
fn username_star_and_duplicates_in_credentials() {
    let ext = "Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, realm=\"r\", nonce=\"n\", \
               uri=\"sip:r\", response=\"00\"";
    let m = register_with("Authorization", ext);
    let c = Credentials::from_header(&m.authorization().next().unwrap().unwrap()).unwrap();
    assert_eq!(c.username.expose(), "J\u{e4}s\u{f8}n Doe");
    assert!(c.extended_username);
    // `username` and `username*` together, or `username*` twice.
    let both = format!("{CREDS}, username*=UTF-8''x");
    assert_eq!(
        Credentials::parse(&both),
        Err(DigestError::InvalidParam("username*"))
    );
    let twice = format!("{ext}, USERNAME*=UTF-8''x");
    assert!(matches!(
        Credentials::parse(&twice),
        Err(DigestError::Params(AuthParamError::DuplicateParam { .. }))
    ));
    assert!(Credentials::parse(CREDS).is_ok());
}

#[test]
fn debug_hides_values() {
    let h = AuthHeader::parse(CREDS).unwrap();
    let c = Credentials::from_header(&h).unwrap();
    for shown in [format!("{h:?}"), format!("{c:?}")] {
        for secret in ["nurse-42", "00", "\"n\"", "\"c\"", "sip:clinic"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
    assert!(format!("{c:?}").contains("nc: Some(1)"));
}

/// Every authentication header of the torture suite and the real captures:
/// the digest forms read from the message layer equal those parsed from
/// the raw header value.
#[test]
fn committed_messages_read_alike() {
    let mut seen = 0;
    for dir in ["torture/valid", "real"] {
        for path in common::sip_files(dir) {
            let m = Message::parse(Bytes::from(std::fs::read(&path).unwrap())).unwrap();
            let challenges = m.www_authenticate().chain(m.proxy_authenticate());
            let credentials = m.authorization().chain(m.proxy_authorization());
            for f in m.headers() {
                let name = f.name.canonical().unwrap_or_default();
                if name.ends_with("enticate") {
                    let raw = Challenge::parse(f.value_str());
                    assert!(raw.is_ok(), "{}: {name}", path.display());
                    seen += 1;
                } else if name.ends_with("orization") {
                    let raw = Credentials::parse(f.value_str());
                    assert!(raw.is_ok(), "{}: {name}", path.display());
                    seen += 1;
                }
            }
            for (h, f) in challenges.zip(
                m.headers()
                    .filter(|f| f.name.canonical().is_some_and(|n| n.ends_with("enticate"))),
            ) {
                assert_eq!(
                    Challenge::from_header(&h.unwrap()),
                    Challenge::parse(f.value_str())
                );
            }
            for (h, f) in credentials.zip(
                m.headers()
                    .filter(|f| f.name.canonical().is_some_and(|n| n.ends_with("orization"))),
            ) {
                assert_eq!(
                    Credentials::from_header(&h.unwrap()),
                    Credentials::parse(f.value_str())
                );
            }
        }
    }
    assert!(seen >= 5, "{seen} authentication headers");
}

fn syntax(offset: usize) -> AuthParamError {
    AuthParamError::Syntax { offset, what: "" }
}

fn same_error(got: AuthParamError, want: AuthParamError, value: &str) {
    match (got, want) {
        (AuthParamError::Syntax { offset, .. }, AuthParamError::Syntax { offset: o, .. }) => {
            assert_eq!(offset, o, "{value:?}: {got}");
        }
        _ => assert_eq!(got, want, "{value:?}"),
    }
}

/// One generated parameter: a name, a value, and how to write it.
fn param() -> impl Strategy<Value = (String, String, bool)> {
    (
        "[a-zA-Z][a-zA-Z0-9*-]{0,8}",
        prop_oneof![
            "[a-zA-Z0-9#$&^|~._-]{1,12}".prop_map(|v| (v, false)),
            "[ -~\u{e9}\u{4e2d}]{0,16}".prop_map(|v| (v, true)),
        ],
    )
        .prop_map(|(n, (v, q))| (n, v, q))
}

fn quote(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A list written with any legal white space, folds and empty items
    /// decodes to what was written, through the message layer, and the
    /// digest layer reads the same header as the raw value.
    #[test]
    fn message_and_digest_layers_agree(
        params in proptest::collection::vec(param(), 0..10),
        seps in proptest::collection::vec(
            proptest::sample::select(vec![",", ", ", " ,", ",\r\n ", " , , ", ",\t"]), 10),
        around_eq in proptest::sample::select(vec!["=", " = ", "\t=", "=\r\n\t"]),
    ) {
        let mut seen = std::collections::HashSet::new();
        let params: Vec<_> = params
            .into_iter()
            .filter(|(n, _, _)| seen.insert(n.to_ascii_lowercase()))
            .collect();
        let mut value = String::from("Digest ");
        for (i, (n, v, q)) in params.iter().enumerate() {
            if i > 0 {
                value.push_str(seps[i]);
            }
            value.push_str(n);
            value.push_str(around_eq);
            value.push_str(&if *q { quote(v) } else { v.clone() });
        }
        let m = register_with("Authorization", &value);
        let h = m.authorization().next().unwrap().unwrap();
        let decoded: Vec<_> = h
            .params()
            .iter()
            .map(|p| (p.name().to_owned(), p.value().into_owned(), p.is_quoted()))
            .collect();
        if params.is_empty() {
            prop_assert!(decoded.is_empty());
        } else {
            prop_assert_eq!(&decoded, &params);
        }
        prop_assert_eq!(Credentials::from_header(&h), Credentials::parse(&value));
        prop_assert_eq!(Challenge::from_header(&h), Challenge::parse(&value));
    }

    /// On arbitrary auth-shaped text, the digest forms parsed from the raw
    /// value are exactly those read from the parsed header.
    #[test]
    fn raw_and_header_paths_agree(s in "Digest[ ,a-z=\"\\\\\t\r\n<>#*'%é-]{0,60}") {
        match AuthHeader::parse(&s) {
            Ok(h) => {
                prop_assert_eq!(Credentials::from_header(&h), Credentials::parse(&s));
                prop_assert_eq!(Challenge::from_header(&h), Challenge::parse(&s));
                prop_assert_eq!(h.params().iter().count(), h.params().len());
            }
            Err(e) => {
                prop_assert_eq!(Credentials::parse(&s), Err(DigestError::from(e)));
            }
        }
    }
}
