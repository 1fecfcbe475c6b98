//! Fuzz entry points of carevox-sip: the message parser (datagram and
//! stream framing, every typed accessor, validation and rebuilding), the
//! URI parser, SDP and the digest authentication parameters.

use bytes::Bytes;
use carevox_sip::auth::{Challenge, Credentials};
use carevox_sip::sdp::SessionDescription;
use carevox_sip::sdp::crypto::Crypto;
use carevox_sip::{
    AuthHeader, Frame, Limits, Message, MessageBuilder, StreamFramer, Uri, ValidationPolicy,
    validate,
};

fn exercise(m: &Message) {
    let _ = (
        m.method(),
        m.request_uri(),
        m.status(),
        m.reason(),
        m.version(),
    );
    for v in m.vias().flatten() {
        let _ = (v.branch(), v.received(), v.rport(), v.maddr(), v.ttl());
    }
    let _ = m.from().map(|f| (f.tag(), f.display_name()));
    let _ = m.to().map(|f| (f.tag(), f.display_name()));
    let _ = (
        m.call_id(),
        m.cseq(),
        m.max_forwards(),
        m.expires(),
        m.min_expires(),
    );
    for c in m.contacts().flatten() {
        let _ = (c.expires(), c.q(), c.sip_instance(), c.gr());
    }
    let _ = m.routes().chain(m.record_routes()).chain(m.paths()).count();
    let _ = (m.content_type(), m.retry_after(), m.reasons().count());
    for a in m.www_authenticate().chain(m.proxy_authenticate()).flatten() {
        for p in a.params() {
            let _ = p.value();
        }
        let _ = Challenge::from_header(&a);
    }
    for a in m.authorization().chain(m.proxy_authorization()).flatten() {
        for p in a.params() {
            let _ = p.value();
        }
        let _ = Credentials::from_header(&a);
    }
    let _ = m.authentication_info().map(|i| i.map(|p| p.len()));
    let valid = validate(m, &ValidationPolicy::default()).is_ok();
    match MessageBuilder::from_message(m).build() {
        Ok(rebuilt) => {
            assert_eq!(rebuilt.body(), m.body(), "rebuilding changed the body");
            assert_eq!(
                rebuilt.start_line(),
                m.start_line(),
                "rebuilding changed the start line"
            );
        }
        Err(e) => assert!(!valid, "a valid message failed to rebuild: {e}"),
    }
}

/// Parses `data` as a datagram and as a stream cut in small pieces.
pub fn sip_message(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(m) = Message::parse(bytes.clone()) {
        // The message is a slice of the input, byte for byte.
        let raw = m.as_bytes();
        assert!(
            data.windows(raw.len().max(1)).any(|w| w == raw.as_ref()) || raw.is_empty(),
            "message bytes are not the input's"
        );
        exercise(&m);
    }
    let mut framer = StreamFramer::server(Limits::default().with_max_message_size(4096));
    'outer: for piece in data.chunks(13) {
        if framer.push(piece).is_err() {
            break;
        }
        loop {
            match framer.next_frame() {
                Ok(Some(Frame::Message(m))) => exercise(&m),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'outer,
            }
        }
        assert!(
            framer.buffered() <= 8192,
            "framer buffer grew past its bound"
        );
    }
}

/// Parses `data` as a URI and compares it with itself.
pub fn sip_uri(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = Uri::parse(s) {
        // Equivalence is reflexive for every scheme, and so is the RFC 3261
        // matching rule for SIP URIs.
        assert!(u.equivalent(&u), "a URI differs from itself");
        if let Some(sip) = u.as_sip() {
            assert!(sip.matches_rfc3261(sip), "a SIP URI does not match itself");
        }
        if let Some(sip) = u.as_sip() {
            let _ = (
                sip.user_decoded(),
                sip.host().ip(),
                sip.params().iter().count(),
            );
        }
    }
}

/// SDP: any input parses or fails with a typed error; whatever parses
/// re-serializes into text that parses back to the same description, and
/// every `a=crypto` value survives its own round trip.
pub fn sip_sdp(data: &[u8]) {
    let Ok(sdp) = SessionDescription::parse_bytes(data) else {
        return;
    };
    let text = sdp.to_string();
    let again = SessionDescription::parse(&text);
    assert_eq!(
        again.as_ref(),
        Ok(&sdp),
        "SDP round trip changed the description"
    );
    for media in &sdp.media {
        for c in media.cryptos() {
            assert_eq!(Crypto::parse(&c.to_string()).as_ref(), Ok(c));
            let _ = c.srtp_keying();
        }
    }
}

/// Authentication header values: the one auth-param parser accepts or
/// refuses with a typed error; what it accepts iterates consistently (the
/// count it checked, unique names found again by `get`), the digest forms
/// read from it equal those parsed from the raw value, and they round-trip.
pub fn sip_auth_params(data: &[u8]) {
    let header = AuthHeader::parse_bytes(data);
    if let Ok(h) = &header {
        let params = h.params();
        assert_eq!(params.iter().count(), params.len());
        for p in params {
            assert_eq!(params.get(p.name()), Some(p), "names are unique");
            let _ = p.value();
        }
        assert_eq!(Challenge::from_header(h), Challenge::parse_bytes(data));
        assert_eq!(Credentials::from_header(h), Credentials::parse_bytes(data));
    }
    if let Ok(c) = Challenge::parse_bytes(data) {
        assert!(header.is_ok());
        assert_eq!(Challenge::parse(&c.to_string()), Ok(c));
    }
    if let Ok(c) = Credentials::parse_bytes(data) {
        assert!(header.is_ok());
        assert_eq!(Credentials::parse(&c.to_string()), Ok(c));
    }
}
