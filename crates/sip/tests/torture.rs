//! The torture suite: messages written from the RFC 3261 grammar, stored as
//! data files. Every file in `torture/valid/` must parse, validate,
//! re-serialize byte for byte and rebuild to the same meaning; every file in
//! `torture/invalid/` must be refused with the status code in its
//! `.expect` sidecar (`<code>` or `<code> proxy` for a proxy's check).

mod common;

use std::fs;

use bytes::Bytes;
use carevox_sip::{Message, ValidationPolicy, validate};

const EXTENSIONS: &[&str] = &["timer", "100rel", "path", "outbound", "gruu", "sec-agree"];
/// The body types of the valid messages, as a server reading them all would list them.
const BODY_TYPES: &[&str] = &[
    "application/sdp",
    "text/plain",
    "application/dialog-info+xml",
];

#[test]
fn valid_messages_are_accepted() {
    for path in common::sip_files("torture/valid") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let raw = Bytes::from(fs::read(&path).unwrap());
        let msg = Message::parse(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let proxy = ValidationPolicy::proxy(EXTENSIONS);
        let verdict = validate(
            &msg,
            &ValidationPolicy::uas(EXTENSIONS).with_body_types(BODY_TYPES),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verdict, carevox_sip::Verdict::Accept, "{name}");
        let _verdict = validate(&msg, &proxy).unwrap_or_else(|e| panic!("{name} (proxy): {e}"));
        assert_eq!(
            msg.as_bytes().as_ref(),
            common::without_leading_crlf(&raw),
            "{name}"
        );
        common::assert_rebuild_same(&msg, &name);
    }
}

#[test]
fn invalid_messages_are_refused_with_the_right_status() {
    let mut checked = 0;
    for path in common::sip_files("torture/invalid") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expect = fs::read_to_string(path.with_extension("expect"))
            .unwrap_or_else(|e| panic!("{name}: no .expect sidecar: {e}"));
        let mut words = expect.split_whitespace();
        let status: u16 = words.next().unwrap().parse().unwrap();
        let policy = match words.next() {
            Some("proxy") => ValidationPolicy::proxy(EXTENSIONS),
            _ => ValidationPolicy::uas(EXTENSIONS),
        };
        let raw = Bytes::from(fs::read(&path).unwrap());
        let got = match Message::parse(raw) {
            Err(e) => e.status_code(),
            Ok(msg) => match validate(&msg, &policy) {
                Ok(v) => panic!("{name}: accepted ({v:?}), expected {status}"),
                Err(e) => e.status_code(),
            },
        };
        assert_eq!(got, status, "{name}");
        checked += 1;
    }
    assert!(checked >= 30);
}

#[test]
fn decoded_details_of_selected_messages() {
    let read = |name: &str| {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/torture/valid")
            .join(name);
        Message::parse(Bytes::from(fs::read(p).unwrap())).unwrap()
    };
    let m = read("odd-whitespace-and-folding.sip");
    let vias: Vec<_> = m.vias().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].port(), Some(5060));
    assert_eq!(vias[0].branch(), Some("z9hG4bKwsp1"));
    assert_eq!(vias[2].rport(), Some(Some(6000)));
    assert_eq!(
        m.to().unwrap().display_name().unwrap(),
        r#"Bob the "Builder""#
    );
    assert_eq!(m.from().unwrap().tag(), Some("first"));
    assert_eq!(m.cseq().unwrap().seq, 8);
    let contacts: Vec<_> = m.contacts().map(Result::unwrap).collect();
    assert_eq!(contacts[0].expires(), Some(3600));
    assert_eq!(contacts[1].q(), Some(500));
    assert_eq!(m.header(carevox_sip::HeaderName::Subject), Some(""));

    let m = read("register-outbound-gruu.sip");
    let c = m.contacts().next().unwrap().unwrap();
    assert_eq!(
        c.sip_instance().unwrap(),
        "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"
    );
    assert_eq!(c.reg_id(), Some(1));
    assert_eq!(m.paths().count(), 2);
    let auth = m.authorization().next().unwrap().unwrap();
    assert!(auth.scheme().eq_ignore_ascii_case("digest"));
    assert_eq!(
        auth.params().get("algorithm").unwrap().raw_value(),
        "SHA-256"
    );
    assert_eq!(
        auth.params().get("uri").unwrap().value(),
        "sips:registrar.example.com"
    );

    let m = read("register-star-and-instance.sip");
    assert_eq!(
        m.contacts().next().unwrap().unwrap(),
        carevox_sip::Contact::Star
    );
    assert_eq!(m.expires().unwrap(), Some(0));
    assert_eq!(
        m.supported().collect::<Vec<_>>(),
        ["path", "outbound", "gruu"]
    );

    let m = read("response-401-challenges.sip");
    let ch: Vec<_> = m.www_authenticate().map(Result::unwrap).collect();
    assert_eq!(ch.len(), 2);
    assert_eq!(ch[0].params().get("qop").unwrap().value(), "auth,auth-int");
    let pa = m.proxy_authenticate().next().unwrap().unwrap();
    assert_eq!(pa.params().get("nonce").unwrap().value(), r#"a,b"c"#);
    assert_eq!(m.date(), Some("Sat, 13 Nov 2010 23:29:00 GMT"));
    assert!(m.server().unwrap().starts_with("carevox-test/0.1"));

    let m = read("response-empty-reason.sip");
    assert_eq!(m.reason(), Some(""));
    assert_eq!(m.content_length(), Some(0));
    assert_eq!(m.allow().count(), 5);
    let info = m.authentication_info().unwrap().unwrap();
    assert_eq!(info.get("qop").unwrap().value(), "auth");

    let m = read("response-503-retry-reason.sip");
    let ra = m.retry_after().unwrap().unwrap();
    assert_eq!((ra.seconds, ra.duration()), (18000, Some(3600)));
    let reasons: Vec<_> = m.reasons().map(Result::unwrap).collect();
    assert_eq!(reasons[0].cause(), Some(16));
    assert_eq!(reasons[1].text().unwrap(), "overload");
    assert_eq!(m.unsupported().collect::<Vec<_>>(), ["foo", "bar"]);
    assert_eq!(m.min_expires().unwrap(), Some(60));

    let m = read("ipv6-everywhere.sip");
    let uri = m.request_uri().unwrap().unwrap();
    let sip = uri.as_sip().unwrap();
    assert_eq!(sip.host().to_string(), "[2001:db8::10]");
    assert_eq!(sip.port(), Some(5070));

    let m = read("tel-request-uri.sip");
    assert!(matches!(
        m.request_uri().unwrap().unwrap(),
        carevox_sip::Uri::Tel(_)
    ));

    let m = read("unknown-schemes-in-headers.sip");
    assert!(matches!(m.to().unwrap().uri(), carevox_sip::Uri::Other(o) if o.scheme() == "urn"));

    let m = read("unknown-headers-kept.sip");
    let x: Vec<_> = m.header_values_by_name("X-CUSTOM-1").collect();
    assert_eq!(x, ["first", "second, with comma"]);
    assert_eq!(m.header_values_by_name("x-empty").next(), Some(""));

    let m = read("addr-spec-forms.sip");
    assert_eq!(m.from().unwrap().tag(), Some("as1"));
    assert!(!m.from().unwrap().is_bracketed());
    assert_eq!(m.expires().unwrap(), Some(u32::MAX));

    let m = read("odd-method-token.sip");
    assert_eq!(
        m.method().unwrap().as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );
    assert_eq!(m.cseq().unwrap().method, m.method().unwrap());
    assert_eq!(
        m.header_values_by_name("extensionHeader-!.%*+_`'~").next(),
        Some("大停電")
    );
}

/// A malformed URI is a syntax error (400) wherever it is; 416 is only for
/// a Request-URI scheme the server does not support (RFC 3261 8.2.2.1).
#[test]
fn uri_errors_are_bad_requests_not_416() {
    use carevox_sip::{NameAddr, Uri};
    for bad in [
        "Bob@Home <sip:bob@biloxi.example>",
        "<sip:bob@biloxi.example|x>",
        "\"unterminated <sip:bob@biloxi.example>",
        "<sip:bob@-biloxi.example>",
    ] {
        let e = NameAddr::parse(bad).unwrap_err();
        assert_eq!(e.status_code(), 400, "{bad}: {e}");
    }
    for bad in ["sip:a b", "sip:host:99999", "tel:abc", "nope"] {
        assert_eq!(Uri::parse(bad).unwrap_err().status_code(), 400, "{bad}");
    }
    let raw = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/torture/invalid/to-bad-display-name.sip");
    let msg = Message::parse(Bytes::from(fs::read(raw).unwrap())).unwrap();
    assert_eq!(msg.to().unwrap_err().status_code(), 400);
    // The unsupported scheme itself still draws 416.
    let raw = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/torture/invalid/unknown-scheme-request-uri.sip");
    let msg = Message::parse(Bytes::from(fs::read(raw).unwrap())).unwrap();
    let e = validate(&msg, &ValidationPolicy::default()).unwrap_err();
    assert_eq!(e.status_code(), 416);
}
