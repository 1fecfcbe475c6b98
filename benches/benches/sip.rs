//! SIP message parsing: carevox-sip beside Sofia-SIP (C, through a shim),
//! rsip and ezk-sip-types, on three messages (a ~1 KB INVITE with SDP, a
//! REGISTER with Authorization, a 200 OK) in two modes:
//!
//! - `parse`: the message is parsed into each library's message type (for
//!   Sofia-SIP, which decodes every header while parsing, this already
//!   includes the decoding);
//! - `parse_decode`: parsed, then Via, From, To, Call-ID, CSeq, Contact,
//!   Max-Forwards and Content-Length are decoded into typed values.
//!
//! Every library gets the same input bytes; each iteration starts from a
//! `Bytes` handle (a reference-count increment) or a byte slice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: \"Bob\" <sip:bob@biloxi.example.com>\r\n\
From: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO\r\n\
Supported: replaces, timer, 100rel\r\n\
User-Agent: carevox-bench/0.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 488\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=Session SDP\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/SAVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
a=rtcp-mux\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32\r\n";

const REGISTER: &str = "REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Bob <sip:bob@biloxi.example.com>;tag=456248\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:bob@192.0.2.4:5060>;expires=3600\r\n\
Authorization: Digest username=\"bob\", realm=\"biloxi.example.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:registrar.biloxi.example.com\", response=\"245f23415f11432b3434341c022\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001, opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"\r\n\
User-Agent: carevox-bench/0.1\r\n\
Content-Length: 0\r\n\
\r\n";

const OK_200: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3\r\n\
Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.2\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.4>\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\
\r\n";

fn carevox_parse(b: &Bytes) -> carevox_sip::Message {
    carevox_sip::Message::parse(b.clone()).unwrap()
}

fn carevox_decode(b: &Bytes) -> usize {
    let m = carevox_sip::Message::parse(b.clone()).unwrap();
    let via = m.top_via().unwrap();
    let from = m.from().unwrap();
    let to = m.to().unwrap();
    let call_id = m.call_id().unwrap();
    let cseq = m.cseq().unwrap();
    let contact = m.contacts().next().unwrap().unwrap();
    let mf = m.max_forwards().unwrap().unwrap_or(0);
    let cl = m.content_length().unwrap_or(0);
    black_box((&via, &from, &to, call_id, &cseq, &contact));
    via.branch().map_or(0, str::len)
        + from.tag().map_or(0, str::len)
        + to.tag().map_or(0, str::len)
        + call_id.len()
        + cseq.seq as usize
        + usize::from(contact.addr().is_some())
        + mf as usize
        + cl as usize
}

fn rsip_parse(b: &[u8]) -> rsip::SipMessage {
    rsip::SipMessage::try_from(b).unwrap()
}

fn rsip_decode(b: &[u8]) -> usize {
    use rsip::prelude::*;
    let m = rsip::SipMessage::try_from(b).unwrap();
    let via = m.via_header().unwrap().typed().unwrap();
    let from = m.from_header().unwrap().typed().unwrap();
    let to = m.to_header().unwrap().typed().unwrap();
    let call_id = m.call_id_header().unwrap().value().to_owned();
    let cseq = m.cseq_header().unwrap().typed().unwrap();
    let contact = m.contact_header().unwrap().typed().unwrap();
    let mf = m.max_forwards_header().unwrap().num().unwrap();
    let cl = m
        .headers()
        .iter()
        .find_map(|h| match h {
            rsip::Header::ContentLength(c) => Some(c.length().unwrap()),
            _ => None,
        })
        .unwrap_or(0);
    black_box((&via, &from, &to, &call_id, &cseq, &contact));
    call_id.len() + cseq.seq as usize + mf as usize + cl as usize
}

struct EzkMessage {
    line: ezk_sip_types::msg::MessageLine,
    headers: ezk_sip_types::Headers,
    body: Bytes,
}

/// Parses the way ezk's transport layer does: line by line with its
/// `PullParser`, the start line with `MessageLine`, each header field with
/// `Line::parse` into the `Headers` map, the body cut by Content-Length.
fn ezk_parse(b: &Bytes) -> EzkMessage {
    use ezk_sip_types::header::typed::ContentLength;
    use ezk_sip_types::msg::{Line, MessageLine, PullParser};
    use ezk_sip_types::parse::Parse;
    let mut parser = PullParser::new(b, 0);
    let first = parser.next().unwrap().unwrap();
    let first = std::str::from_utf8(first).unwrap();
    let (_, line) = MessageLine::parse(b)(first).unwrap();
    let mut headers = ezk_sip_types::Headers::with_capacity(16);
    for l in &mut parser {
        let l = std::str::from_utf8(l.unwrap()).unwrap();
        let (_, field) = Line::parse(b, l).unwrap();
        headers.insert(field.name, field.value);
    }
    let head_end = parser.head_end();
    let len = headers.get_named::<ContentLength>().map_or(0, |c| c.0);
    let body = b.slice(head_end..head_end + len);
    EzkMessage {
        line,
        headers,
        body,
    }
}

fn ezk_decode(b: &Bytes) -> usize {
    use ezk_sip_types::Name;
    use ezk_sip_types::header::typed::{CSeq, CallID, Contact, FromTo, MaxForwards, Via};
    let m = ezk_parse(b);
    let h = &m.headers;
    let via: Via = h.get_named().unwrap();
    let from: FromTo = h.get(Name::FROM).unwrap();
    let to: FromTo = h.get(Name::TO).unwrap();
    let call_id: CallID = h.get_named().unwrap();
    let cseq: CSeq = h.get_named().unwrap();
    let contact: Contact = h.get_named().unwrap();
    let mf: MaxForwards = h.get_named().unwrap();
    black_box((&via, &from, &to, &call_id, &cseq, &contact, &m.line));
    call_id.0.len() + cseq.cseq as usize + usize::from(mf.0) + m.body.len()
}

fn bench(c: &mut Criterion) {
    let messages = [
        ("invite", INVITE),
        ("register", REGISTER),
        ("ok200", OK_200),
    ];
    for (name, text) in messages {
        let bytes = Bytes::from_static(text.as_bytes());
        let raw = text.as_bytes();
        // Every library must accept the message and agree on its shape.
        assert!(carevox_sip::validate(&carevox_parse(&bytes), &Default::default()).is_ok());
        assert!(
            carevox_peer_sofia_sip::parse(raw),
            "{name}: Sofia-SIP refused it"
        );
        assert!(carevox_peer_sofia_sip::parse_and_decode(raw).is_some());
        let _ = rsip_decode(raw);
        let _ = ezk_decode(&bytes);
        assert!(carevox_decode(&bytes) > 0);

        let mut g = c.benchmark_group(format!("sip/parse/{name}"));
        g.bench_function("carevox", |b| b.iter(|| carevox_parse(black_box(&bytes))));
        g.bench_function("sofia-sip", |b| {
            b.iter(|| carevox_peer_sofia_sip::parse(black_box(raw)))
        });
        g.bench_function("rsip", |b| b.iter(|| rsip_parse(black_box(raw))));
        g.bench_function("ezk-sip-types", |b| b.iter(|| ezk_parse(black_box(&bytes))));
        g.finish();

        let mut g = c.benchmark_group(format!("sip/parse_decode/{name}"));
        g.bench_function("carevox", |b| b.iter(|| carevox_decode(black_box(&bytes))));
        g.bench_function("sofia-sip", |b| {
            b.iter(|| carevox_peer_sofia_sip::parse_and_decode(black_box(raw)))
        });
        g.bench_function("rsip", |b| b.iter(|| rsip_decode(black_box(raw))));
        g.bench_function("ezk-sip-types", |b| {
            b.iter(|| ezk_decode(black_box(&bytes)))
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = carevox_benches::config();
    targets = bench
}
criterion_main!(benches);
