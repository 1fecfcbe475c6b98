//! SDP parsing: carevox-sip beside Mozilla's `webrtc-sdp` (the parser in
//! Firefox), on a SIP phone offer with SDES keys and on a browser offer.
//!
//! Both parse the same text in the same run. carevox types every line and
//! attribute it knows, decoding and length-checking each `a=crypto` key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use carevox_sip::sdp::SessionDescription;
use criterion::{Criterion, criterion_group, criterion_main};

const PHONE_OFFER: &str = include_str!("../../crates/sip/tests/data/sdp/linphone_savp_offer.sdp");
const BROWSER_OFFER: &str =
    include_str!("../../crates/sip/tests/data/sdp/webrtc_browser_offer.sdp");

fn sdp_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("sip_sdp_parse");
    for (name, text) in [
        ("phone_savp_offer", PHONE_OFFER),
        ("browser_offer", BROWSER_OFFER),
    ] {
        assert!(SessionDescription::parse(text).is_ok());
        assert!(
            webrtc_sdp::parse_sdp(text, false).is_ok(),
            "webrtc-sdp refuses {name}"
        );
        group.bench_function(format!("carevox/{name}"), |b| {
            b.iter(|| SessionDescription::parse(black_box(text)).unwrap())
        });
        group.bench_function(format!("webrtc-sdp/{name}"), |b| {
            b.iter(|| webrtc_sdp::parse_sdp(black_box(text), false).unwrap())
        });
    }
    group.finish();
}

fn sdp_write(c: &mut Criterion) {
    let mut group = c.benchmark_group("sip_sdp_write");
    let ours = SessionDescription::parse(BROWSER_OFFER).unwrap();
    let theirs = webrtc_sdp::parse_sdp(BROWSER_OFFER, false).unwrap();
    group.bench_function("carevox/browser_offer", |b| {
        b.iter(|| black_box(&ours).to_string())
    });
    group.bench_function("webrtc-sdp/browser_offer", |b| {
        b.iter(|| black_box(&theirs).to_string())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = carevox_benches::config();
    targets = sdp_parse, sdp_write
}
criterion_main!(benches);
