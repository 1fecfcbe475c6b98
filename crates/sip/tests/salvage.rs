//! A request that fails to parse still gets its 400 (or 413, 414, 513)
//! when its start line and transaction header fields can be read: the
//! broken messages of the torture suite, answered through the public API.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::fs;

use bytes::Bytes;
use carevox_sip::{HeaderName, Limits, Message, PartialRequest};

/// The unparsable requests of `tests/torture/invalid` whose Via, From, To,
/// Call-ID and CSeq are intact: each must be answerable.
const ANSWERABLE: &[&str] = &[
    "body-too-large.sip",
    "content-length-beyond-body.sip",
    "content-length-conflicting.sip",
    "content-length-negative.sip",
    "content-length-not-a-number.sip",
    "header-without-colon.sip",
    "too-many-headers.sip",
    "uri-too-long.sip",
];

/// Unparsable messages that cannot be answered: no readable start line, a
/// response, a To that is not UTF-8, a Via folded into the start line.
const UNANSWERABLE: &[&str] = &[
    "double-space-in-request-line.sip",
    "not-utf8.sip",
    "space-before-header-name.sip",
    "request-line-lowercase-version-missing.sip",
    "status-code-700.sip",
    "status-code-99.sip",
    "version-garbage.sip",
];

/// The value of the first line starting with `name:` in `raw`, unfolded.
fn raw_value(raw: &str, name: &str) -> String {
    let line = raw
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        })
        .unwrap_or_else(|| panic!("no {name}"));
    line.split_once(':').unwrap().1.trim().to_owned()
}

#[test]
fn broken_requests_of_the_torture_suite_get_their_response() {
    let mut answered = Vec::new();
    for path in common::sip_files("torture/invalid") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let raw = fs::read(&path).unwrap();
        let Err(err) = Message::parse(Bytes::from(raw.clone())) else {
            continue; // refused by validation, answered with Invalid::response_to
        };
        let Some(partial) = PartialRequest::salvage(&raw, &Limits::default()) else {
            assert!(
                !ANSWERABLE.contains(&name.as_str()),
                "{name}: not salvaged ({err})"
            );
            continue;
        };
        assert!(!UNANSWERABLE.contains(&name.as_str()), "{name}: salvaged");
        let response = err
            .response_to(&partial, "srv1")
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .build()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(response.status(), Some(err.status_code()), "{name}");
        assert!(
            response.reason().unwrap().contains(&err.to_string()),
            "{name}: {:?}",
            response.reason()
        );
        let text = String::from_utf8_lossy(&raw);
        assert_eq!(
            response.call_id().unwrap(),
            raw_value(&text, "Call-ID"),
            "{name}"
        );
        assert_eq!(
            response.header(HeaderName::CSeq).unwrap(),
            raw_value(&text, "CSeq"),
            "{name}"
        );
        assert_eq!(
            response.top_via().unwrap().branch(),
            Message::parse(Bytes::from(format!(
                "OPTIONS sip:x SIP/2.0\r\nVia: {}\r\n\r\n",
                raw_value(&text, "Via")
            )))
            .unwrap()
            .top_via()
            .unwrap()
            .branch(),
            "{name}"
        );
        assert_eq!(
            response.from().unwrap().tag(),
            carevox_sip::NameAddr::parse(&raw_value(&text, "From"))
                .unwrap()
                .tag(),
            "{name}"
        );
        assert_eq!(response.to().unwrap().tag(), Some("srv1"), "{name}");
        answered.push(name);
    }
    for name in ANSWERABLE {
        assert!(
            answered.iter().any(|a| a == name),
            "{name} was not answered"
        );
    }
}

#[test]
fn every_via_is_copied_and_nothing_is_echoed() {
    let raw = b"MESSAGE sip:+15550142@clinic.example SIP/2.0\r\n\
v: SIP/2.0/UDP proxy.example;branch=z9hG4bKp1, SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKu1\r\n\
Via: SIP/2.0/TCP 198.51.100.2;branch=z9hG4bKu0\r\n\
f: \"Johanna Doe\" <sip:+15550142@clinic.example>;tag=a\r\n\
t: <sip:nurse@clinic.example>\r\n\
i: m1@192.0.2.7\r\n\
CSeq: 7\r\n MESSAGE\r\n\
Content-Type: text/plain\r\n\
Content-Length: 4\r\n\
Content-Length: 5\r\n\r\nabcde";
    let err = Message::parse(Bytes::from_static(raw)).unwrap_err();
    let partial = PartialRequest::salvage(raw, &Limits::default()).unwrap();
    assert_eq!(partial.vias().count(), 2);
    assert_eq!(partial.cseq(), "7 MESSAGE");
    assert!(!format!("{partial:?}").contains("Johanna"));
    let response = err.response_to(&partial, "x").unwrap().build().unwrap();
    let vias: Vec<_> = response
        .vias()
        .map(|v| v.unwrap().branch().unwrap())
        .collect();
    assert_eq!(vias, ["z9hG4bKp1", "z9hG4bKu1", "z9hG4bKu0"]);
    assert_eq!(response.status(), Some(400));
    let reason = response.reason().unwrap();
    assert!(reason.starts_with("Bad Request ("), "{reason}");
    for secret in ["Johanna", "15550142", "clinic", "abcde"] {
        assert!(!reason.contains(secret), "{reason}");
    }
}

#[test]
fn what_cannot_be_answered_is_not() {
    let base = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nl: x\r\n\r\n";
    let limits = Limits::default();
    assert!(PartialRequest::salvage(base.as_bytes(), &limits).is_some());
    for (what, text) in [
        (
            "an ACK",
            base.replace("INVITE sip", "ACK sip")
                .replace("1 INVITE", "1 ACK"),
        ),
        (
            "no Via",
            base.replace("Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n", ""),
        ),
        ("a bad Via", base.replace("SIP/2.0/UDP h", "SIP/2.0/UDP")),
        ("no Call-ID", base.replace("Call-ID: c\r\n", "")),
        (
            "two To",
            base.replace("To: <sip:b@h>\r\n", "To: <sip:b@h>\r\nTo: <sip:c@h>\r\n"),
        ),
        (
            "a bad From",
            base.replace("From: <sip:a@h>", "From: <sip:a@h"),
        ),
        (
            "a bad CSeq",
            base.replace("CSeq: 1 INVITE", "CSeq: one INVITE"),
        ),
        (
            "a response",
            base.replace("INVITE sip:b@h SIP/2.0", "SIP/2.0 200 OK"),
        ),
        ("no version", base.replace(" SIP/2.0\r\nVia", "\r\nVia")),
    ] {
        assert_eq!(
            PartialRequest::salvage(text.as_bytes(), &limits),
            None,
            "{what}"
        );
    }
}
