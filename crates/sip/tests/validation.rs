//! Validation decisions a server must act on: Request-URI headers, the
//! addr-spec form, 415 for bodies and codings it cannot read, and a
//! proxy's Max-Forwards decision.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use carevox_sip::{
    Contact, HeaderName, Invalid, Message, NameAddr, ParseError, ValidationPolicy, Verdict,
    validate,
};

fn request(method: &str, uri: &str, extra: &str, body: &str) -> Message {
    Message::parse(Bytes::from(format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKv1\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@atlanta.example>;tag=1\r\n\
         To: <sip:bob@biloxi.example>\r\n\
         Call-ID: v1@192.0.2.7\r\n\
         CSeq: 1 {method}\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )))
    .unwrap()
}

#[test]
fn headers_in_the_request_uri_are_refused() {
    for uri in [
        "sip:bob@biloxi.example?Route=%3Csip:evil.example%3E",
        "sips:bob@biloxi.example;transport=tcp?Subject=x",
        "sip:biloxi.example?",
    ] {
        let m = request("INVITE", uri, "", "");
        let why = validate(&m, &ValidationPolicy::default()).unwrap_err();
        assert_eq!(why, Invalid::HeadersInRequestUri, "{uri}");
        assert_eq!(why.status_code(), 400);
        assert_eq!(
            m.request_uri().unwrap().unwrap_err(),
            ParseError::HeadersInRequestUri
        );
        let proxy = validate(&m, &ValidationPolicy::proxy(&[])).unwrap_err();
        assert_eq!(proxy, Invalid::HeadersInRequestUri, "{uri}");
    }
    // The builder refuses to write one.
    assert_eq!(
        carevox_sip::MessageBuilder::request("INVITE", "sip:bob@biloxi.example?Route=x")
            .unwrap_err(),
        ParseError::HeadersInRequestUri
    );
    // A `?` in the user part is not a header.
    let m = request("OPTIONS", "sip:a?b@biloxi.example", "", "");
    assert_eq!(
        validate(&m, &ValidationPolicy::default()),
        Ok(Verdict::Accept)
    );
    // Headers stay legal in a Contact written as a name-addr.
    let c = Contact::parse("<sip:bob@biloxi.example?Subject=hi>;expires=60").unwrap();
    assert_eq!(
        c.addr().unwrap().uri().as_sip().unwrap().headers(),
        Some("Subject=hi")
    );
}

#[test]
fn an_addr_spec_with_question_mark_comma_or_uri_params_needs_brackets() {
    for bad in [
        "sip:bob@biloxi.example?Subject=hi",
        "sip:bob,carol@biloxi.example",
        "sip:user;par=u%40example.net@biloxi.example",
        "sip:bob@biloxi.example;tag=1?x=y",
    ] {
        assert_eq!(
            NameAddr::parse(bad),
            Err(ParseError::AddrSpecNeedsBrackets),
            "{bad}"
        );
    }
    // Parameters after an unbracketed URI belong to the header.
    let n = NameAddr::parse("sip:bob@biloxi.example;transport=tcp;tag=7").unwrap();
    assert_eq!(n.uri().as_str(), "sip:bob@biloxi.example");
    assert!(n.uri().as_sip().unwrap().params().is_empty());
    assert_eq!(n.params().value("transport"), Some("tcp"));
    assert_eq!(n.tag(), Some("7"));
    // The same URIs in <...> are fine.
    for good in [
        "<sip:bob@biloxi.example?Subject=hi>",
        "<sip:bob,carol@biloxi.example>",
        "<sip:user;par=u%40example.net@biloxi.example>;tag=1",
    ] {
        NameAddr::parse(good).unwrap();
    }
    // In a message: From and a list header (Contact) alike.
    let m = request(
        "INVITE",
        "sip:bob@biloxi.example",
        "Contact: sip:alice@192.0.2.7?Route=x\r\n",
        "",
    );
    let why = validate(&m, &ValidationPolicy::default()).unwrap_err();
    assert_eq!(why, Invalid::Malformed(ParseError::AddrSpecNeedsBrackets));
    assert_eq!(why.status_code(), 400);
}

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n";

#[test]
fn a_body_the_uas_cannot_read_draws_415_with_accept() {
    let policy = ValidationPolicy::default();
    let ok = request(
        "INVITE",
        "sip:bob@biloxi.example",
        "Content-Type: application/SDP\r\n",
        SDP,
    );
    assert_eq!(validate(&ok, &policy), Ok(Verdict::Accept));
    let m = request(
        "INVITE",
        "sip:bob@biloxi.example",
        "Content-Type: application/vnd.example+xml\r\n",
        "<x/>",
    );
    let why = validate(&m, &policy).unwrap_err();
    assert_eq!(why.status_code(), 415);
    assert_eq!(why.reason_phrase(), "Unsupported Media Type");
    let response = why.response_to(&m, "t415").unwrap().build().unwrap();
    assert_eq!(response.status(), Some(415));
    assert_eq!(response.header(HeaderName::Accept), Some("application/sdp"));
    // A MESSAGE with text is fine once the policy lists it.
    let text = request(
        "MESSAGE",
        "sip:bob@biloxi.example",
        "c: text/plain\r\n",
        "hi",
    );
    assert_eq!(validate(&text, &policy).unwrap_err().status_code(), 415);
    let wide = ValidationPolicy::default().with_body_types(&["application/sdp", "text/*"]);
    assert_eq!(validate(&text, &wide), Ok(Verdict::Accept));
    let why = validate(&m, &wide).unwrap_err();
    assert_eq!(
        why,
        Invalid::UnsupportedMediaType {
            accept: "application/sdp, text/*".to_owned()
        }
    );
    // A body without Content-Type is a 400 (RFC 3261 section 20.15).
    let bare = request("INVITE", "sip:bob@biloxi.example", "", SDP);
    assert_eq!(validate(&bare, &policy).unwrap_err().status_code(), 400);
    // A body marked optional may be ignored rather than refused.
    let optional = request(
        "INVITE",
        "sip:bob@biloxi.example",
        "Content-Type: application/vnd.example+xml\r\nContent-Disposition: render;handling=optional\r\n",
        "<x/>",
    );
    assert_eq!(validate(&optional, &policy), Ok(Verdict::Accept));
    let required = request(
        "INVITE",
        "sip:bob@biloxi.example",
        "Content-Type: application/vnd.example+xml\r\nContent-Disposition: render;handling=required\r\n",
        "<x/>",
    );
    assert_eq!(validate(&required, &policy).unwrap_err().status_code(), 415);
    // A proxy does not read bodies.
    assert!(validate(&m, &ValidationPolicy::proxy(&[])).is_ok());
    // An empty body needs nothing.
    let empty = request(
        "INVITE",
        "sip:bob@biloxi.example",
        "Content-Type: application/x-unknown\r\n",
        "",
    );
    assert_eq!(validate(&empty, &policy), Ok(Verdict::Accept));
}

#[test]
fn a_coding_the_uas_cannot_read_draws_415_with_accept_encoding() {
    let m = request(
        "INVITE",
        "sip:bob@biloxi.example",
        "Content-Type: application/sdp\r\nContent-Encoding: gzip\r\n",
        SDP,
    );
    let why = validate(&m, &ValidationPolicy::default()).unwrap_err();
    assert_eq!(why.status_code(), 415);
    let response = why.response_to(&m, "t415").unwrap().build().unwrap();
    assert_eq!(
        response.header(HeaderName::AcceptEncoding),
        Some("identity")
    );
    assert_eq!(response.header(HeaderName::Accept), None);
    let gzip = ValidationPolicy::default().with_encodings(&["gzip"]);
    assert_eq!(validate(&m, &gzip), Ok(Verdict::Accept));
    let compact = request(
        "INVITE",
        "sip:bob@biloxi.example",
        "c: application/sdp\r\ne: identity, deflate\r\n",
        SDP,
    );
    let why = validate(&compact, &gzip).unwrap_err();
    assert_eq!(
        why,
        Invalid::UnsupportedEncoding {
            accept_encoding: "identity, gzip".to_owned()
        }
    );
}

#[test]
fn a_proxy_never_forwards_at_max_forwards_zero() {
    let proxy = ValidationPolicy::proxy(&[]);
    let zero = |method: &str| {
        let m = request(method, "sip:bob@biloxi.example", "", "");
        let raw = String::from_utf8(m.as_bytes().to_vec())
            .unwrap()
            .replace("Max-Forwards: 70", "Max-Forwards: 0");
        Message::parse(Bytes::from(raw)).unwrap()
    };
    assert_eq!(
        validate(&zero("OPTIONS"), &proxy),
        Ok(Verdict::AnswerLocally)
    );
    for method in ["INVITE", "REGISTER", "BYE", "MESSAGE"] {
        let why = validate(&zero(method), &proxy).unwrap_err();
        assert_eq!(why, Invalid::TooManyHops, "{method}");
        assert_eq!(why.status_code(), 483);
    }
    // With hops left, or at a user agent server, the request goes on.
    let m = request("OPTIONS", "sip:bob@biloxi.example", "", "");
    assert_eq!(validate(&m, &proxy), Ok(Verdict::Accept));
    assert_eq!(
        validate(&zero("OPTIONS"), &ValidationPolicy::default()),
        Ok(Verdict::Accept)
    );
}
