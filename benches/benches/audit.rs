//! carevox-audit benchmarks.
//!
//! - `audit/durable_append`: records of 256 encoded bytes made durable per
//!   second with 1, 8 and 64 writer threads: `AuditLog::append` (group
//!   commit, one record per call), `AuditLog::append_batch` (64 records per
//!   call) and the baseline of one `fdatasync` per record.
//! - `audit/verify`: records per second through `verify_log` (checksums,
//!   chain, Merkle tree, checkpoint signatures).
//! - `audit/inclusion_*`, `audit/consistency_*`: proof generation and
//!   verification in a tree of 2^20 leaves, beside `ct-merkle` and
//!   `rs_merkle` (which has no consistency proofs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss
)]

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use carevox_audit::merkle::{Hash, MerkleTree, leaf_hash, verify_consistency, verify_inclusion};
use carevox_audit::{
    Action, AuditLog, EventType, LogConfig, Outcome, Record, Signer, Timestamp, VerifyOptions,
    verify_log,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sha2::Sha256;

const TREE: u64 = 1 << 20;

fn record() -> Record {
    let mut r = Record::new(
        EventType::RecordingAccess,
        Action::Read,
        Outcome::Success,
        Timestamp(1_772_352_000_000),
        "dr.lee",
        "pbx-1",
    );
    r.entity.patient = Some("Patient/123456".into());
    r.actor.network_address = Some("10.20.30.40".into());
    let base = r.to_bytes().unwrap().len();
    // One detail ("p" = padding) brings the encoding to exactly 256 bytes.
    let pad = 256 - base - 2 - 1 - 2;
    let r = r.with_detail("p", "x".repeat(pad));
    assert_eq!(r.to_bytes().unwrap().len(), 256);
    r
}

fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn signer() -> Signer {
    Signer::from_seed(&[1; 32]).unwrap()
}

/// Runs `per_thread` on `writers` threads, each doing its share of `total`
/// items; returns the elapsed time scaled to exactly `total` items.
fn timed(writers: usize, total: u64, per_thread: impl Fn(u64) + Sync) -> Duration {
    let share = total.div_ceil(writers as u64).max(1);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..writers {
            s.spawn(|| per_thread(share));
        }
    });
    let elapsed = start.elapsed();
    elapsed.mul_f64(total as f64 / (share * writers as u64) as f64)
}

fn durable_append(c: &mut Criterion) {
    let rec = record();
    let batch: Vec<Record> = (0..64).map(|_| rec.clone()).collect();
    let mut g = c.benchmark_group("audit/durable_append");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    for writers in [1usize, 8, 64] {
        let dir = tempfile::tempdir_in(scratch()).unwrap();
        let (log, _) = AuditLog::open(dir.path(), signer(), LogConfig::default()).unwrap();
        let log = Arc::new(log);
        g.bench_function(BenchmarkId::new("carevox_append", writers), |b| {
            b.iter_custom(|iters| {
                timed(writers, iters, |n| {
                    for _ in 0..n {
                        log.append(&rec).unwrap();
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("carevox_append_batch64", writers), |b| {
            b.iter_custom(|iters| {
                let calls = iters.div_ceil(64);
                timed(writers, calls, |n| {
                    for _ in 0..n {
                        log.append_batch(&batch).unwrap();
                    }
                })
                .mul_f64(iters as f64 / (calls * 64) as f64)
            })
        });
        drop(log);

        let frame = vec![0x5au8; 256 + 48];
        let path = dir.path().join("baseline.log");
        let file: Mutex<File> = Mutex::new(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap(),
        );
        g.bench_function(BenchmarkId::new("fdatasync_per_record", writers), |b| {
            b.iter_custom(|iters| {
                timed(writers, iters, |n| {
                    for _ in 0..n {
                        let mut f = file.lock().unwrap();
                        f.write_all(&frame).unwrap();
                        f.sync_data().unwrap();
                    }
                })
            })
        });
    }
    g.finish();
}

fn verification(c: &mut Criterion) {
    const RECORDS: u64 = 200_000;
    let dir = tempfile::tempdir_in(scratch()).unwrap();
    let signer = signer();
    let key = signer.verifying_key();
    let (log, _) = AuditLog::open(dir.path(), signer, LogConfig::default()).unwrap();
    let batch: Vec<Record> = (0..1000).map(|_| record()).collect();
    for _ in 0..RECORDS / 1000 {
        log.append_batch(&batch).unwrap();
    }
    log.checkpoint(Timestamp(1_772_352_000_001)).unwrap();
    drop(log);
    let mut g = c.benchmark_group("audit/verify");
    g.throughput(Throughput::Elements(RECORDS));
    g.sample_size(10);
    g.bench_function("carevox_verify_log", |b| {
        b.iter(|| {
            let r = verify_log(dir.path(), &key, VerifyOptions::default()).unwrap();
            assert!(r.is_ok());
            black_box(r.records)
        })
    });
    g.finish();
}

struct Trees {
    data: Vec<[u8; 8]>,
    leaves: Vec<Hash>,
    ours: MerkleTree,
    ct: ct_merkle::CtMerkleTree<Sha256, [u8; 8]>,
    rs: rs_merkle::MerkleTree<rs_merkle::algorithms::Sha256>,
}

fn trees() -> Trees {
    let data: Vec<[u8; 8]> = (0..TREE).map(u64::to_be_bytes).collect();
    let leaves: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
    let mut ours = MerkleTree::new();
    for l in &leaves {
        ours.push(*l);
    }
    let mut ct = ct_merkle::CtMerkleTree::new();
    for d in &data {
        ct.push(*d);
    }
    assert_eq!(&ours.root()[..], ct.root().as_bytes().as_slice());
    let rs = rs_merkle::MerkleTree::<rs_merkle::algorithms::Sha256>::from_leaves(&leaves);
    Trees {
        data,
        leaves,
        ours,
        ct,
        rs,
    }
}

/// A spread of indices so that runs do not reuse one path.
fn index(i: &mut u64) -> u64 {
    *i = i.wrapping_add(0x9e37_79b9);
    (*i).wrapping_mul(2_654_435_761) % TREE
}

fn proofs(c: &mut Criterion) {
    let t = trees();
    let n = TREE;
    let root = t.ours.root();
    let ct_root = t.ct.root();
    let rs_root = t.rs.root().unwrap();

    let mut g = c.benchmark_group("audit/inclusion_prove_1M");
    let mut buf = Vec::with_capacity(64);
    let mut i = 0u64;
    g.bench_function("carevox", |b| {
        b.iter(|| {
            let idx = index(&mut i);
            t.ours.inclusion_proof_into(idx, n, &mut buf).unwrap();
            black_box(buf.len())
        })
    });
    g.bench_function("ct-merkle", |b| {
        b.iter(|| black_box(t.ct.prove_inclusion(index(&mut i) as usize)))
    });
    g.bench_function("rs_merkle", |b| {
        b.iter(|| black_box(t.rs.proof(&[index(&mut i) as usize])))
    });
    g.finish();

    let picks: Vec<u64> = (0..512).map(|_| index(&mut i)).collect();
    let ours_p: Vec<Vec<Hash>> = picks
        .iter()
        .map(|&k| t.ours.inclusion_proof(k, n).unwrap())
        .collect();
    let ct_p: Vec<_> = picks
        .iter()
        .map(|&k| t.ct.prove_inclusion(k as usize))
        .collect();
    let rs_p: Vec<_> = picks.iter().map(|&k| t.rs.proof(&[k as usize])).collect();
    let mut g = c.benchmark_group("audit/inclusion_verify_1M");
    let mut j = 0usize;
    g.bench_function("carevox", |b| {
        b.iter(|| {
            j = (j + 1) % picks.len();
            let k = picks[j];
            verify_inclusion(k, n, &t.leaves[k as usize], &ours_p[j], &root).unwrap();
        })
    });
    g.bench_function("ct-merkle", |b| {
        b.iter(|| {
            j = (j + 1) % picks.len();
            let k = picks[j] as usize;
            ct_root.verify_inclusion(&t.data[k], k, &ct_p[j]).unwrap();
        })
    });
    g.bench_function("rs_merkle", |b| {
        b.iter(|| {
            j = (j + 1) % picks.len();
            let k = picks[j] as usize;
            assert!(rs_p[j].verify(rs_root, &[k], &[t.leaves[k]], n as usize));
        })
    });
    g.finish();

    let mut g = c.benchmark_group("audit/consistency_prove_1M");
    g.bench_function("carevox", |b| {
        b.iter(|| {
            let old = 1 + index(&mut i) % (n - 1);
            t.ours.consistency_proof_into(old, n, &mut buf).unwrap();
            black_box(buf.len())
        })
    });
    g.bench_function("ct-merkle", |b| {
        b.iter(|| {
            let old = 1 + index(&mut i) % (n - 1);
            black_box(t.ct.prove_consistency(old as usize))
        })
    });
    g.finish();

    let olds: Vec<u64> = (0..256).map(|_| 1 + index(&mut i) % (n - 1)).collect();
    let ours_c: Vec<(Hash, Vec<Hash>)> = olds
        .iter()
        .map(|&o| {
            (
                t.ours.root_at(o).unwrap(),
                t.ours.consistency_proof(o, n).unwrap(),
            )
        })
        .collect();
    let ct_c: Vec<_> = ours_c
        .iter()
        .zip(&olds)
        .map(|((r, _), &o)| {
            let digest = sha2::digest::Output::<Sha256>::clone_from_slice(r);
            (
                ct_merkle::RootHash::<Sha256>::new(digest, o as usize),
                t.ct.prove_consistency(o as usize),
            )
        })
        .collect();
    let mut g = c.benchmark_group("audit/consistency_verify_1M");
    g.bench_function("carevox", |b| {
        b.iter(|| {
            j = (j + 1) % olds.len();
            let (old_root, proof) = &ours_c[j];
            verify_consistency(olds[j], n, old_root, &root, proof).unwrap();
        })
    });
    g.bench_function("ct-merkle", |b| {
        b.iter(|| {
            j = (j + 1) % olds.len();
            let (old_root, proof) = &ct_c[j];
            ct_root.verify_consistency(old_root, proof).unwrap();
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = carevox_benches::config();
    targets = proofs, verification, durable_append
}
criterion_main!(benches);
