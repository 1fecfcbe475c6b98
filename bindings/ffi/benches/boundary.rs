//! The Rust side of the boundary-cost benchmark: SRTP protect of one packet
//! (12-byte header, 160-byte payload) straight through carevox-srtp, the same
//! through the bindings' `SrtpSession` without crossing a foreign boundary,
//! and the batch call of 50 packets (one second of 20 ms audio).
//! bindings/bench.sh runs it beside the Kotlin and Python loops and reads
//! its `--output-format bencher` lines, by these ids:
//! `srtp/protect_rtp`, `ffi/protect_rtp`, `ffi/protect_rtp_batch_x50`.
#![allow(missing_docs, clippy::unwrap_used, clippy::indexing_slicing)]

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

/// Writes the next sequence number into the RTP packet at `at` of `buf`:
/// SRTP never protects the same packet index twice (the keystream would
/// repeat), so every iteration protects a new one.
fn next_seq(buf: &mut [u8], at: usize, seq: &mut u16) {
    *seq = seq.wrapping_add(1);
    buf[at + 2..at + 4].copy_from_slice(&seq.to_be_bytes());
}

fn boundary(c: &mut Criterion) {
    let key = [1u8; 30];
    let mut ctx = Context::new(
        MasterKey::from_sdes_name("AES_CM_128_HMAC_SHA1_80", &key).unwrap(),
        Config::new(),
    )
    .unwrap();
    ctx.add_outbound_stream(SSRC).unwrap();
    let mut one = packet(0);
    let mut out = vec![0u8; 256];
    let mut seq = 0u16;
    c.bench_function("srtp/protect_rtp", |b| {
        b.iter(|| {
            next_seq(&mut one, 0, &mut seq);
            black_box(ctx.protect_rtp(black_box(&one), &mut out).unwrap())
        })
    });

    let session =
        SrtpSession::from_keys("AES_CM_128_HMAC_SHA1_80".into(), key.to_vec(), key.to_vec())
            .unwrap();
    session.add_outbound_stream(SSRC).unwrap();
    let mut seq = 0u16;
    c.bench_function("ffi/protect_rtp", |b| {
        b.iter(|| {
            next_seq(&mut one, 0, &mut seq);
            black_box(session.protect_rtp(black_box(one.clone())).unwrap())
        })
    });
    let mut batch: Vec<u8> = (0..50).flat_map(packet).collect();
    let lengths = vec![172u32; 50];
    c.bench_function("ffi/protect_rtp_batch_x50", |b| {
        b.iter(|| {
            for i in 0..50 {
                next_seq(&mut batch, i * 172, &mut seq);
            }
            let out = session
                .protect_rtp_batch(black_box(&batch), lengths.clone())
                .unwrap();
            assert!(out.failures.is_empty(), "the batch must go through whole");
            black_box(out)
        })
    });
}

criterion_group!(benches, boundary);
criterion_main!(benches);
