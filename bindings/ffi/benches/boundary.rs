//! The Rust side of the boundary-cost benchmark: SRTP protect of one packet
//! (12-byte header, 160-byte payload) straight through carevox-srtp, the same
//! through the bindings' `SrtpSession` without crossing a foreign boundary,
//! and the batch call of 50 packets (one second of 20 ms audio).
//! bindings/bench.sh runs it beside the Kotlin and Python loops and reads
//! its `--output-format bencher` lines, by these ids:
//! `srtp/protect_rtp`, `ffi/protect_rtp`, `ffi/protect_rtp_batch_x50`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use carevox_ffi::SrtpSession;
use carevox_srtp::{Config, Context, MasterKey};
use criterion::{Criterion, criterion_group, criterion_main};

const SSRC: u32 = 0x1122_3344;

fn packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[0x55; 160]);
    p
}

fn boundary(c: &mut Criterion) {
    let key = [1u8; 30];
    let mut ctx = Context::new(
        MasterKey::from_sdes_name("AES_CM_128_HMAC_SHA1_80", &key).unwrap(),
        Config::new(),
    )
    .unwrap();
    ctx.add_outbound_stream(SSRC).unwrap();
    let one = packet(0);
    let mut out = vec![0u8; 256];
    c.bench_function("srtp/protect_rtp", |b| {
        b.iter(|| black_box(ctx.protect_rtp(black_box(&one), &mut out).unwrap()))
    });

    let session =
        SrtpSession::from_keys("AES_CM_128_HMAC_SHA1_80".into(), key.to_vec(), key.to_vec())
            .unwrap();
    session.add_outbound_stream(SSRC).unwrap();
    c.bench_function("ffi/protect_rtp", |b| {
        b.iter(|| black_box(session.protect_rtp(black_box(one.clone())).unwrap()))
    });
    let packets: Vec<Vec<u8>> = (0..50).map(packet).collect();
    let batch: Vec<u8> = packets.concat();
    let lengths: Vec<u32> = packets.iter().map(|p| p.len() as u32).collect();
    let check = session.protect_rtp_batch(&batch, lengths.clone()).unwrap();
    assert!(check.failures.is_empty(), "the batch must go through whole");
    c.bench_function("ffi/protect_rtp_batch_x50", |b| {
        b.iter(|| {
            black_box(
                session
                    .protect_rtp_batch(black_box(&batch), lengths.clone())
                    .unwrap(),
            )
        })
    });
}

criterion_group!(benches, boundary);
criterion_main!(benches);
