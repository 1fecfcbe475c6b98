//! Property tests: no input makes the parsers panic, memory stays bounded,
//! and built messages and URIs round-trip through the parser.

mod common;

use bytes::Bytes;
use carevox_sip::{
    Frame, HeaderName, Limits, Message, MessageBuilder, StreamFramer, Uri, ValidationPolicy,
    validate,
};
use proptest::prelude::*;

/// Calls every accessor; none may panic whatever the message holds.
fn exercise(m: &Message) {
    let _ = m.method();
    let _ = m.request_uri();
    let _ = (
        m.status(),
        m.reason(),
        m.version(),
        m.start_line(),
        m.head(),
    );
    for f in m.headers() {
        let _ = (f.name, f.name_str, f.value);
    }
    for v in m.vias().flatten() {
        let _ = (
            v.branch(),
            v.received(),
            v.rport(),
            v.maddr(),
            v.ttl(),
            v.host(),
            v.port(),
        );
    }
    let _ = m.from().map(|f| (f.tag(), f.display_name(), *f.uri()));
    let _ = m.to().map(|f| (f.tag(), f.display_name()));
    let _ = (
        m.call_id(),
        m.cseq(),
        m.max_forwards(),
        m.expires(),
        m.min_expires(),
    );
    for c in m.contacts().flatten() {
        let _ = (c.expires(), c.q(), c.sip_instance(), c.gr(), c.reg_id());
    }
    let _ = m.routes().chain(m.record_routes()).chain(m.paths()).count();
    let _ = (m.content_type(), m.content_length(), m.retry_after());
    let _ = m
        .allow()
        .chain(m.supported())
        .chain(m.require())
        .chain(m.proxy_require())
        .count();
    let _ = m.unsupported().count();
    for a in m.www_authenticate().chain(m.authorization()).flatten() {
        for p in a.params().iter() {
            let _ = p.value();
        }
    }
    let _ = m.authentication_info().map(|p| p.map(|p| p.iter().count()));
    for r in m.reasons().flatten() {
        let _ = (r.cause(), r.text());
    }
    let _ = (m.user_agent(), m.server(), m.date(), m.body());
    let _ = validate(m, &ValidationPolicy::default());
    let _ = validate(m, &ValidationPolicy::proxy(&["timer"]));
    if let Ok(rebuilt) = MessageBuilder::from_message(m).build() {
        assert_eq!(rebuilt.body(), m.body());
    }
}

#[allow(clippy::unwrap_used)]
fn seeds() -> Vec<Vec<u8>> {
    common::sip_files("torture/valid")
        .into_iter()
        .chain(common::sip_files("real"))
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(m) = Message::parse(Bytes::from(data)) {
            exercise(&m);
        }
    }

    #[test]
    fn sip_like_text_never_panics(s in "(INVITE|SIP/2.0|[A-Z]{1,6}) [ -~]{0,40}\r\n([A-Za-z-]{1,12}[ \t]*:[ -~\t]{0,60}\r\n( [ -~]{0,20}\r\n)?){0,8}\r\n[ -~]{0,20}") {
        if let Ok(m) = Message::parse(Bytes::from(s)) {
            exercise(&m);
        }
    }

    #[test]
    fn mutated_real_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let seeds = seeds();
        let mut data = pick.get(&seeds).clone();
        for (at, byte, op) in edits {
            let i = at.index(data.len() + 1);
            match op {
                0 if i < data.len() => data[i] = byte,
                1 => data.insert(i, byte),
                _ if i < data.len() => { data.remove(i); }
                _ => {}
            }
        }
        if let Ok(m) = Message::parse(Bytes::from(data)) {
            exercise(&m);
        }
    }

    #[test]
    fn uri_parser_never_panics(s in "\\PC{0,80}") {
        if let Ok(u) = Uri::parse(&s) {
            let _ = u.equivalent(&u);
            if let Some(sip) = u.as_sip() {
                let _ = (sip.user_decoded(), sip.transport(), sip.params().iter().count());
            }
        }
    }

    #[test]
    fn stream_framer_is_bounded_and_never_panics(
        data in proptest::collection::vec(any::<u8>(), 0..800),
        chunk in 1usize..64,
    ) {
        let limits = Limits::default().with_max_message_size(256);
        let mut f = StreamFramer::server(limits);
        'outer: for piece in data.chunks(chunk) {
            if f.push(piece).is_err() {
                break;
            }
            loop {
                match f.next_frame() {
                    Ok(Some(Frame::Message(m))) => exercise(&m),
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
            prop_assert!(f.buffered() <= 512);
        }
    }

    #[test]
    fn built_messages_round_trip(
        method in "[A-Z]{3,10}",
        user in "[a-z0-9]{1,12}",
        host in "[a-z]{1,10}(\\.[a-z]{2,5}){0,2}",
        headers in proptest::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[!-~]([ -~]{0,40}[!-~])?"), 0..10),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        seq in 0u32..(1 << 31),
    ) {
        let uri = format!("sip:{user}@{host}");
        let mut b = MessageBuilder::request(&method, &uri).unwrap()
            .header("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKprop").unwrap()
            .header("From", &format!("<{uri}>;tag=t1")).unwrap()
            .header("To", &format!("<{uri}>")).unwrap()
            .header("Call-ID", "prop@192.0.2.1").unwrap()
            .header("CSeq", &format!("{seq} {method}")).unwrap()
            .header("Max-Forwards", "70").unwrap();
        for (n, v) in &headers {
            b = b.header(n, v).unwrap();
        }
        let b = b.body("application/octet-stream", Bytes::from(body.clone())).unwrap();
        let m = b.build().unwrap();
        prop_assert_eq!(m.method().unwrap().as_str(), method.as_str());
        prop_assert_eq!(m.request_uri_str(), Some(uri.as_str()));
        prop_assert_eq!(m.cseq().unwrap().seq, seq);
        prop_assert_eq!(m.body(), &body[..]);
        let extension: Vec<(&str, &str)> = m.headers()
            .filter(|f| f.name == HeaderName::Other)
            .map(|f| (f.name_str, f.value_str()))
            .collect();
        let expected: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        prop_assert_eq!(extension, expected);
        let policy = ValidationPolicy::default().with_body_types(&["application/octet-stream"]);
        prop_assert!(validate(&m, &policy).is_ok());
        // Re-parsing the serialized form gives back the same bytes.
        let again = Message::parse(m.as_bytes().clone()).unwrap();
        prop_assert_eq!(again.as_bytes(), m.as_bytes());
        let response = MessageBuilder::response_to(&m, 200, "OK").unwrap().to_tag("x1").unwrap().build().unwrap();
        prop_assert_eq!(response.call_id().unwrap(), "prop@192.0.2.1");
        prop_assert_eq!(response.to().unwrap().tag(), Some("x1"));
        prop_assert_eq!(response.cseq().unwrap(), m.cseq().unwrap());
    }

    #[test]
    fn sip_uris_round_trip(
        secure in any::<bool>(),
        user in proptest::option::of("[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,10}"),
        host in prop_oneof![
            "[a-z][a-z0-9-]{0,8}[a-z0-9](\\.[a-z]{2,6}){0,2}",
            any::<[u8; 4]>().prop_map(|a| std::net::Ipv4Addr::from(a).to_string()),
            any::<[u16; 8]>().prop_map(|a| format!("[{}]", std::net::Ipv6Addr::from(a))),
        ],
        port in proptest::option::of(any::<u16>()),
        params in proptest::collection::btree_map("[a-z]{1,6}", proptest::option::of("[a-z0-9]{1,6}"), 0..4),
    ) {
        let mut s = String::from(if secure { "sips:" } else { "sip:" });
        if let Some(u) = &user { s.push_str(u); s.push('@'); }
        s.push_str(&host);
        if let Some(p) = port { s.push_str(&format!(":{p}")); }
        for (n, v) in &params {
            s.push(';');
            s.push_str(n);
            if let Some(v) = v { s.push('='); s.push_str(v); }
        }
        let uri = Uri::parse(&s).unwrap();
        let sip = uri.as_sip().unwrap();
        prop_assert_eq!(sip.is_secure(), secure);
        prop_assert_eq!(sip.user(), user.as_deref());
        prop_assert_eq!(sip.host().to_string().to_ascii_lowercase(), host.to_ascii_lowercase());
        prop_assert_eq!(sip.port(), port);
        prop_assert_eq!(sip.params().iter().count(), params.len());
        prop_assert!(uri.equivalent(&uri));
    }
}
