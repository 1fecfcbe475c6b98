//! Standard vectors (files under `tests/vectors/`, named after their RFC
//! section) and golden files pinning the on-disk format (`tests/data/`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::{Path, PathBuf};

use carevox_audit::for_each_record;
use carevox_audit::merkle::{
    Frontier, MerkleTree, leaf_hash, verify_consistency, verify_inclusion,
};
use carevox_audit::{
    Action, AuditLog, AuthMethod, EventType, LogConfig, ObjectKind, ObjectRef, Outcome,
    PurposeOfUse, Record, Signer, Timestamp, VerifyOptions, hex_decode, verify_log,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

#[test]
fn rfc9162_merkle_tree_hash_vectors() {
    let text = std::fs::read_to_string(data("vectors/rfc9162_2_1_1_merkle_tree_hash.txt")).unwrap();
    let mut leaves = Vec::new();
    let mut roots = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts[0] {
            "leaf" => leaves.push(hex_decode(parts.get(2).copied().unwrap_or("")).unwrap()),
            "root" => roots.push((
                parts[1].parse::<u64>().unwrap(),
                hex_decode(parts[2]).unwrap(),
            )),
            other => panic!("unknown line kind {other}"),
        }
    }
    assert_eq!((leaves.len(), roots.len()), (8, 9));
    let mut tree = MerkleTree::new();
    let mut frontier = Frontier::new();
    for l in &leaves {
        tree.push(leaf_hash(l));
        frontier.push(leaf_hash(l)).unwrap();
    }
    assert_eq!(frontier.root().to_vec(), roots[8].1);
    for (size, root) in &roots {
        assert_eq!(
            tree.root_at(*size).unwrap().to_vec(),
            *root,
            "root of size {size}"
        );
    }
    // Every proof in the vector tree checks against the vector roots.
    let root8: [u8; 32] = roots[8].1.clone().try_into().unwrap();
    for m in 0..8u64 {
        let p = tree.inclusion_proof(m, 8).unwrap();
        verify_inclusion(m, 8, &leaf_hash(&leaves[m as usize]), &p, &root8).unwrap();
        let old: [u8; 32] = roots[m as usize + 1].1.clone().try_into().unwrap();
        let c = tree.consistency_proof(m + 1, 8).unwrap();
        verify_consistency(m + 1, 8, &old, &root8, &c).unwrap();
    }
}

/// The records of the golden log.
fn golden_records() -> Vec<Record> {
    (0..7u64)
        .map(|i| {
            let mut r = Record::new(
                if i % 2 == 0 {
                    EventType::RecordingAccess
                } else {
                    EventType::Login
                },
                if i % 2 == 0 {
                    Action::Read
                } else {
                    Action::Execute
                },
                if i == 3 {
                    Outcome::MinorFailure
                } else {
                    Outcome::Success
                },
                Timestamp(1_772_352_000_000 + i * 1_000),
                format!("user{}", i % 2),
                "pbx-1",
            );
            r.actor.role = Some("physician".into());
            r.actor.network_address = Some("192.0.2.10".into());
            r.actor.auth = AuthMethod::PasswordMfa;
            if i % 2 == 0 {
                r.entity.patient = Some(format!("Patient/{}", 100 + i).into());
                r.entity.object = Some(ObjectRef {
                    kind: ObjectKind::Recording,
                    id: format!("rec-{i}").into(),
                });
            }
            if i == 4 {
                r.purpose = PurposeOfUse::Emergency {
                    justification: "patient unresponsive".into(),
                };
            }
            r.correlation_id = Some(format!("session-{}", i / 2).into());
            r.with_detail("call-id", format!("{i}@pbx.example"))
        })
        .collect()
}

fn write_golden(dir: &Path) {
    let cfg = LogConfig {
        checkpoint_every_records: 3,
        checkpoint_every_millis: 0,
        segment_max_bytes: 900,
        ..LogConfig::default()
    };
    let (log, _) = AuditLog::open(dir, Signer::from_seed(&[7; 32]).unwrap(), cfg).unwrap();
    for r in golden_records() {
        log.append(&r).unwrap();
    }
    log.checkpoint(Timestamp(1_772_352_100_000)).unwrap();
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn golden_log_v1_still_reads_and_verifies() {
    let golden = data("data/golden-v1");
    let key = Signer::from_seed(&[7; 32]).unwrap().verifying_key();
    let report = verify_log(&golden, &key, VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.damage);
    assert_eq!(report.records, 7);
    assert!(report.segments >= 2);
    assert_eq!(report.checkpoints_matched, report.checkpoints);
    let mut read = Vec::new();
    for_each_record(&golden, &[], |_, r, _| {
        read.push(r.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(read, golden_records());
}

#[test]
fn the_format_is_byte_for_byte_the_golden_one() {
    let dir = tempfile::tempdir().unwrap();
    write_golden(dir.path());
    let fresh = files(dir.path());
    let golden = files(&data("data/golden-v1"));
    assert_eq!(
        fresh.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        golden.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()
    );
    for ((name, a), (_, b)) in fresh.iter().zip(&golden) {
        assert!(
            a == b,
            "{name} differs from the golden file: the on-disk format changed"
        );
    }
}

#[test]
#[ignore = "regenerates tests/data/golden-v1; run only for a new format version"]
fn regenerate_golden() {
    let dir = data("data/golden-v1");
    let _ = std::fs::remove_dir_all(&dir);
    write_golden(&dir);
}
