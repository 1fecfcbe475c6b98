//! Behaviour through the public API: answering, forwarding and framing, as
//! a user agent server, a proxy and a stream transport use the crate.

mod common;

use std::fs;

use bytes::Bytes;
use carevox_sip::{
    Frame, HeaderName, Limits, Message, MessageBuilder, StreamFramer, ValidationPolicy, validate,
};

#[allow(clippy::unwrap_used)]
fn read(path: &str) -> Bytes {
    Bytes::from(
        fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(path),
        )
        .unwrap(),
    )
}

#[test]
fn a_uas_answers_420_with_the_unsupported_extensions() {
    let raw = read("torture/invalid/require-unknown-extension.sip");
    let request = Message::parse(raw).unwrap();
    let why = validate(&request, &ValidationPolicy::uas(&["timer"])).unwrap_err();
    assert_eq!(why.status_code(), 420);
    let response = why.response_to(&request, "t420").unwrap().build().unwrap();
    assert_eq!(response.status(), Some(420));
    assert_eq!(response.reason(), Some("Bad Extension"));
    assert_eq!(
        response.unsupported().collect::<Vec<_>>(),
        ["nonexistent-extension"]
    );
    assert_eq!(response.to().unwrap().tag(), Some("t420"));
    assert_eq!(response.call_id().unwrap(), request.call_id().unwrap());
    assert_eq!(response.cseq().unwrap(), request.cseq().unwrap());
    let vias = |m: &Message| {
        m.header_values(HeaderName::Via)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(vias(&response), vias(&request));
}

#[test]
fn a_proxy_forwards_with_its_via_and_one_hop_less() {
    let request = Message::parse(read("real/sipp-uac-01.sip")).unwrap();
    assert_eq!(
        validate(&request, &ValidationPolicy::proxy(&[])).unwrap(),
        carevox_sip::Verdict::Accept
    );
    let hops = request.max_forwards().unwrap().unwrap();
    let forwarded = MessageBuilder::from_message(&request)
        .header_first("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKproxy1")
        .unwrap()
        .set("Max-Forwards", &(hops - 1).to_string())
        .unwrap()
        .build()
        .unwrap();
    let vias: Vec<_> = forwarded.vias().map(Result::unwrap).collect();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0].branch(), Some("z9hG4bKproxy1"));
    assert_eq!(vias[1].branch(), request.top_via().unwrap().branch());
    assert_eq!(forwarded.max_forwards().unwrap(), Some(hops - 1));
    assert_eq!(forwarded.body(), request.body());
    assert_eq!(forwarded.header_values(HeaderName::MaxForwards).count(), 1);
    assert_eq!(
        validate(&forwarded, &ValidationPolicy::proxy(&[])).unwrap(),
        carevox_sip::Verdict::Accept
    );
}

#[test]
fn a_message_forwarded_unchanged_is_byte_identical() {
    for path in common::sip_files("real") {
        let raw = Bytes::from(fs::read(&path).unwrap());
        let msg = Message::parse(raw.clone()).unwrap();
        let mut out = Vec::new();
        msg.write_to(&mut out);
        assert_eq!(out, raw.as_ref(), "{}", path.display());
        let copy = msg.clone();
        assert_eq!(
            copy.as_bytes().as_ptr(),
            msg.as_bytes().as_ptr(),
            "a clone shares the bytes"
        );
    }
}

#[test]
fn a_stream_carries_messages_and_keepalives_in_any_segmentation() {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    // Over a stream every message carries Content-Length (RFC 3261 section
    // 18.3); datagrams captured without one are left out.
    let framed = common::sip_files("real").into_iter().filter_map(|path| {
        let raw = fs::read(&path).unwrap();
        let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        (head.contains("\r\ncontent-length:") || head.contains("\r\nl:")).then_some(raw)
    });
    for (i, raw) in framed.enumerate() {
        if i % 3 == 0 {
            stream.extend_from_slice(b"\r\n\r\n");
            expected.push(None);
        }
        stream.extend_from_slice(&raw);
        expected.push(Some(raw));
    }
    for chunk in [1, 2, 3, 50, 1000, stream.len()] {
        let mut framer = StreamFramer::server(Limits::default());
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            framer.push(piece).unwrap();
            while let Some(frame) = framer.next_frame().unwrap() {
                got.push(match frame {
                    Frame::Message(m) => Some(m.as_bytes().to_vec()),
                    Frame::Ping => None,
                    Frame::Pong => panic!("a server sees no pong"),
                });
            }
        }
        assert_eq!(got, expected, "chunks of {chunk}");
        assert_eq!(framer.buffered(), 0);
    }
}

#[test]
fn a_stream_message_without_content_length_is_refused() {
    let mut framer = StreamFramer::server(Limits::default());
    framer
        .push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n")
        .unwrap();
    assert!(framer.next_frame().is_err());
}
