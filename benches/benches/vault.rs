//! carevox-vault beside its peers: streaming encryption and decryption of a
//! 256 MiB object, and random 4 KiB range reads from it.
//!
//! Peers in the same run: the `age` crate (X25519 recipient; ChaCha20-
//! Poly1305 STREAM with 64 KiB chunks) and raw ring AES-256-GCM
//! `seal_in_place` / `open_in_place` over 64 KiB chunks of a buffer already
//! in memory, the ceiling for an in-place AES-GCM streaming format. carevox
//! seals and opens segments out of place with AWS-LC's AES-256-GCM, so the
//! same raw operations in `aws-lc-rs` (no header, no key derivation) are
//! measured beside them as the ceiling of that design.
//!
//! `cargo bench -p carevox-benches --bench vault`

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::disallowed_methods, clippy::indexing_slicing)]
#![allow(clippy::cast_possible_truncation)]

use std::hint::black_box;
use std::io::{self, Read, Seek, SeekFrom, Write};

use aws_lc_rs::aead as awslc;
use carevox_vault::{DataKey, Decryptor, Encryptor, Metadata};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::SystemRandom;

const OBJECT: usize = 256 << 20;
const CHUNK: usize = 64 << 10;
const RANGE: usize = 4096;

fn plaintext() -> Vec<u8> {
    let mut v = vec![0u8; OBJECT];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
    }
    v
}

fn meta() -> Metadata {
    Metadata::new("bench", "audio/wav", 0, 0).label("call-id", "bench@example.com")
}

fn carevox_encrypt<W: Write>(key: &DataKey, rng: &SystemRandom, data: &[u8], sink: W) -> W {
    let mut e = Encryptor::new(key, rng, CHUNK as u32, &meta(), sink).unwrap();
    for piece in data.chunks(CHUNK) {
        e.update(piece).unwrap();
    }
    e.finish().unwrap().0
}

fn ring_key() -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap())
}

fn ring_nonce(i: usize) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&(i as u64).to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn awslc_key() -> awslc::LessSafeKey {
    awslc::LessSafeKey::new(awslc::UnboundKey::new(&awslc::AES_256_GCM, &[7u8; 32]).unwrap())
}

fn awslc_nonce(i: usize) -> awslc::Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&(i as u64).to_be_bytes());
    awslc::Nonce::assume_unique_for_key(n)
}

fn age_encrypt<W: Write>(recipient: &age::x25519::Recipient, data: &[u8], sink: W) -> W {
    let enc =
        age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient)).unwrap();
    let mut w = enc.wrap_output(sink).unwrap();
    for piece in data.chunks(CHUNK) {
        w.write_all(piece).unwrap();
    }
    w.finish().unwrap()
}

/// A cheap, seeded sequence of range offsets.
fn offsets(n: usize) -> Vec<u64> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % (OBJECT - RANGE) as u64
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let data = plaintext();
    let key = DataKey::generate(&rng).unwrap();
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();

    let mut g = c.benchmark_group("vault_stream_256MiB");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(OBJECT as u64));

    g.bench_function("carevox_encrypt", |b| {
        b.iter(|| carevox_encrypt(&key, &rng, black_box(&data), io::sink()))
    });
    g.bench_function("age_encrypt", |b| {
        b.iter(|| age_encrypt(&recipient, black_box(&data), io::sink()))
    });
    let mut buf = data.clone();
    let rk = ring_key();
    g.bench_function("ring_seal_in_place_64KiB", |b| {
        b.iter(|| {
            for (i, chunk) in buf.chunks_mut(CHUNK).enumerate() {
                let tag = rk
                    .seal_in_place_separate_tag(ring_nonce(i), Aad::empty(), chunk)
                    .unwrap();
                black_box(tag.as_ref());
            }
        })
    });

    let ak = awslc_key();
    let mut work = vec![0u8; CHUNK + 16];
    g.bench_function("awslc_seal_out_of_place_64KiB", |b| {
        b.iter(|| {
            for (i, chunk) in data.chunks(CHUNK).enumerate() {
                let (out, tag) = work.split_at_mut(chunk.len());
                ak.seal_out_of_place_scatter(
                    awslc_nonce(i),
                    awslc::Aad::empty(),
                    chunk,
                    out,
                    &[],
                    tag,
                )
                .unwrap();
                black_box(&mut work);
            }
        })
    });

    let sealed = carevox_encrypt(
        &key,
        &rng,
        &data,
        Vec::with_capacity(OBJECT + (OBJECT >> 10)),
    );
    g.bench_function("carevox_decrypt", |b| {
        b.iter(|| {
            let mut d = Decryptor::open(&key, sealed.as_slice()).unwrap();
            for i in 0..d.segment_count() {
                black_box(d.segment(i).unwrap());
            }
        })
    });
    let aged = age_encrypt(
        &recipient,
        &data,
        Vec::with_capacity(OBJECT + (OBJECT >> 10)),
    );
    g.bench_function("age_decrypt", |b| {
        b.iter(|| {
            let d = age::Decryptor::new(aged.as_slice()).unwrap();
            let mut r = d
                .decrypt(std::iter::once(&identity as &dyn age::Identity))
                .unwrap();
            io::copy(&mut r, &mut io::sink()).unwrap()
        })
    });
    // Ciphertext chunks with tags, opened in place: the decryption ceiling.
    let chunks: Vec<Vec<u8>> = data
        .chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| {
            let mut v = c.to_vec();
            rk.seal_in_place_append_tag(ring_nonce(i), Aad::empty(), &mut v)
                .unwrap();
            v
        })
        .collect();
    g.bench_function("ring_open_in_place_64KiB", |b| {
        b.iter(|| {
            for (i, c) in chunks.iter().enumerate() {
                let w = &mut work[..c.len()];
                w.copy_from_slice(c);
                black_box(rk.open_in_place(ring_nonce(i), Aad::empty(), w).unwrap());
            }
        })
    });
    g.bench_function("awslc_open_out_of_place_64KiB", |b| {
        b.iter(|| {
            for (i, c) in chunks.iter().enumerate() {
                let (ct, tag) = c.split_at(c.len() - 16);
                let out = &mut work[..ct.len()];
                ak.open_separate_gather(awslc_nonce(i), awslc::Aad::empty(), ct, tag, out)
                    .unwrap();
                black_box(out);
            }
        })
    });
    g.finish();
    drop(buf);

    let mut g = c.benchmark_group("vault_range_4KiB");
    g.throughput(Throughput::Bytes(RANGE as u64));
    let offs = offsets(4096);
    let mut out = vec![0u8; RANGE];
    let mut d = Decryptor::open(&key, sealed.as_slice()).unwrap();
    let mut k = 0usize;
    g.bench_function("carevox_read_at", |b| {
        b.iter(|| {
            k = (k + 1) % offs.len();
            black_box(d.read_at(offs[k], &mut out).unwrap())
        })
    });
    let mut ar = age::Decryptor::new(io::Cursor::new(aged.as_slice()))
        .unwrap()
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap();
    g.bench_function("age_seek_read", |b| {
        b.iter(|| {
            k = (k + 1) % offs.len();
            ar.seek(SeekFrom::Start(offs[k])).unwrap();
            ar.read_exact(&mut out).unwrap();
            black_box(&out);
        })
    });
    g.bench_function("ring_open_one_64KiB_chunk", |b| {
        b.iter(|| {
            k = (k + 1) % offs.len();
            let i = offs[k] as usize / CHUNK;
            let c = &chunks[i];
            let w = &mut work[..c.len()];
            w.copy_from_slice(c);
            let p = rk.open_in_place(ring_nonce(i), Aad::empty(), w).unwrap();
            let at = offs[k] as usize % CHUNK;
            let n = RANGE.min(p.len() - at);
            out[..n].copy_from_slice(&p[at..at + n]);
            black_box(&out);
        })
    });
    g.bench_function("awslc_open_one_64KiB_chunk", |b| {
        b.iter(|| {
            k = (k + 1) % offs.len();
            let i = offs[k] as usize / CHUNK;
            let (ct, tag) = chunks[i].split_at(chunks[i].len() - 16);
            let w = &mut work[..ct.len()];
            ak.open_separate_gather(awslc_nonce(i), awslc::Aad::empty(), ct, tag, w)
                .unwrap();
            let at = offs[k] as usize % CHUNK;
            let n = RANGE.min(w.len() - at);
            out[..n].copy_from_slice(&w[at..at + n]);
            black_box(&out);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = carevox_benches::config();
    targets = bench
}
criterion_main!(benches);
