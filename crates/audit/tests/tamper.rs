//! The tamper matrix: every kind of damage is detected and located.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::fs;
use std::path::{Path, PathBuf};

use carevox_audit::internal::{Entry, SegmentHeader, put_entry_frame, put_frame, read_frame};
use carevox_audit::merkle::leaf_hash;
use carevox_audit::{
    Action, AuditLog, DamageKind, EventType, LogConfig, Outcome, PurposeOfUse, Record, Signer,
    Timestamp, VerifyOptions, VerifyReport, VerifyingKey, verify_log,
};

const N: u64 = 40;

fn signer() -> Signer {
    Signer::from_seed(&[5; 32]).unwrap()
}

fn rec(i: u64) -> Record {
    let mut r = Record::new(
        EventType::PatientRecordAccess,
        Action::Read,
        if i.is_multiple_of(5) {
            Outcome::MinorFailure
        } else {
            Outcome::Success
        },
        Timestamp(1_700_000_000_000 + i * 1000),
        format!("user{}", i % 3),
        "ehr-gw",
    );
    r.actor.network_address = Some(format!("10.0.0.{}", i % 9).into());
    r.actor.role = Some("nurse".into());
    r.entity.patient = Some(format!("Patient/{}", i % 11).into());
    r.correlation_id = Some(format!("sess-{i}").into());
    if i.is_multiple_of(7) {
        r.purpose = PurposeOfUse::Emergency {
            justification: "code blue".into(),
        };
    }
    r.with_detail("n", i.to_string())
}

/// A log of `N` records, checkpoints every 10 and one at the end.
fn build(dir: &Path, seg_max: u64) -> VerifyingKey {
    let cfg = LogConfig {
        checkpoint_every_records: 10,
        checkpoint_every_millis: 0,
        segment_max_bytes: seg_max,
        ..LogConfig::default()
    };
    let (log, _) = AuditLog::open(dir, signer(), cfg).unwrap();
    for i in 0..N {
        log.append(&rec(i)).unwrap();
    }
    log.checkpoint(Timestamp(1_800_000_000_000)).unwrap();
    log.verifying_key()
}

fn seg0(dir: &Path) -> PathBuf {
    dir.join("seg-00000000000000000000.cva")
}

/// Frame offsets (start, end) of a segment's entries.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let (_, mut off) = SegmentHeader::decode(bytes).unwrap();
    let mut out = Vec::new();
    while off < bytes.len() {
        let (_, n) = read_frame(&bytes[off..]).unwrap();
        out.push((off, off + n));
        off += n;
    }
    out
}

fn verify(dir: &Path, key: &VerifyingKey) -> VerifyReport {
    verify_log(dir, key, VerifyOptions::default()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn intact_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = build(dir.path(), 1 << 20);
    let mut calls = 0;
    let mut cb = |_p: carevox_audit::Progress| calls += 1;
    let r = verify_log(
        dir.path(),
        &key,
        VerifyOptions {
            progress: Some(&mut cb),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(r.is_ok(), "{:?}", r.damage);
    assert_eq!(r.records, N);
    assert_eq!(r.checkpoints, 5);
    assert_eq!(r.checkpoints_matched, 5);
    assert!(calls >= 1);
    let other = Signer::from_seed(&[6; 32]).unwrap().verifying_key();
    let r = verify(dir.path(), &other);
    assert_eq!(r.damage.unwrap().kind, DamageKind::ForgedCheckpoint);
}

#[test]
fn a_flipped_byte_anywhere_in_a_sampled_record_is_located() {
    let base = tempfile::tempdir().unwrap();
    let key = build(base.path(), 1 << 20);
    let bytes = fs::read(seg0(base.path())).unwrap();
    let fr = frames(&bytes);
    for k in [0u64, 1, 17, 38, 39] {
        let (start, end) = fr[k as usize];
        // Every byte of the frame: length, sequence number, chain hash,
        // every record field, checksum.
        for pos in start..end {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(base.path(), dir.path());
            let mut b = bytes.clone();
            b[pos] ^= 0x01;
            fs::write(seg0(dir.path()), &b).unwrap();
            let r = verify(dir.path(), &key);
            let d = r
                .damage
                .unwrap_or_else(|| panic!("flip at byte {} of record {k} undetected", pos - start));
            assert_eq!(
                d.seq,
                Some(k),
                "flip at byte {} of record {k}: {d}",
                pos - start
            );
            if k < N - 1 {
                assert_eq!(
                    d.kind,
                    DamageKind::Modified,
                    "record {k} byte {}",
                    pos - start
                );
            } else {
                // The newest record: a bad frame at the very end could be a
                // crash, but the last checkpoint covers it.
                assert!(
                    matches!(
                        d.kind,
                        DamageKind::Modified
                            | DamageKind::Truncated {
                                checkpoint_size: 40
                            }
                    ),
                    "{d}"
                );
            }
        }
    }
}

/// Rewrites record `k` with `f` and recomputes its checksum (an attacker
/// who knows the format).
fn rewrite(bytes: &[u8], k: usize, f: impl FnOnce(&mut Record)) -> Vec<u8> {
    let fr = frames(bytes);
    let (s, e) = fr[k];
    let (body, _) = read_frame(&bytes[s..e]).unwrap();
    let entry = Entry::parse(body).unwrap();
    let mut r = Record::decode(entry.record.expose()).unwrap();
    f(&mut r);
    let mut frame = Vec::new();
    put_entry_frame(&mut frame, entry.seq, &entry.prev, &r.to_bytes().unwrap()).unwrap();
    [&bytes[..s], &frame[..], &bytes[e..]].concat()
}

#[test]
fn modification_with_a_recomputed_checksum_is_located() {
    let base = tempfile::tempdir().unwrap();
    let key = build(base.path(), 1 << 20);
    let bytes = fs::read(seg0(base.path())).unwrap();
    for k in [0usize, 12, 38] {
        let b = rewrite(&bytes, k, |r| r.actor.user_id = "someone-else".into());
        fs::write(seg0(base.path()), &b).unwrap();
        let d = verify(base.path(), &key).damage.unwrap();
        assert_eq!(
            (d.kind.clone(), d.seq),
            (DamageKind::Modified, Some(k as u64)),
            "{d}"
        );
    }
    fs::write(seg0(base.path()), &bytes).unwrap();
    assert!(verify(base.path(), &key).is_ok());
}

#[test]
fn deletion_insertion_reordering_truncation() {
    let base = tempfile::tempdir().unwrap();
    let key = build(base.path(), 1 << 20);
    let bytes = fs::read(seg0(base.path())).unwrap();
    let fr = frames(&bytes);
    let cases: Vec<(&str, Vec<u8>, DamageKind, u64)> = vec![
        (
            "delete 13",
            [&bytes[..fr[13].0], &bytes[fr[13].1..]].concat(),
            DamageKind::Deleted { count: 1 },
            13,
        ),
        (
            "delete 20..23",
            [&bytes[..fr[20].0], &bytes[fr[22].1..]].concat(),
            DamageKind::Deleted { count: 3 },
            20,
        ),
        (
            "copy of 3 inserted after 21",
            [
                &bytes[..fr[22].0],
                &bytes[fr[3].0..fr[3].1],
                &bytes[fr[22].0..],
            ]
            .concat(),
            DamageKind::Inserted,
            22,
        ),
        (
            "swap 30 and 31",
            [
                &bytes[..fr[30].0],
                &bytes[fr[31].0..fr[31].1],
                &bytes[fr[30].0..fr[30].1],
                &bytes[fr[31].1..],
            ]
            .concat(),
            DamageKind::Reordered,
            30,
        ),
        (
            "truncate after 25",
            bytes[..fr[25].0].to_vec(),
            DamageKind::Truncated {
                checkpoint_size: 30,
            },
            25,
        ),
    ];
    for (name, b, kind, seq) in cases {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        fs::write(seg0(dir.path()), &b).unwrap();
        let d = verify(dir.path(), &key)
            .damage
            .unwrap_or_else(|| panic!("{name}: undetected"));
        assert_eq!((d.kind.clone(), d.seq), (kind, Some(seq)), "{name}: {d}");
    }

    // A forged record inserted with a valid sequence number, link and checksum.
    let (s, e) = fr[9];
    let (body, _) = read_frame(&bytes[s..e]).unwrap();
    let prev9 = Entry::parse(body).unwrap().prev;
    let mut forged = Vec::new();
    put_entry_frame(&mut forged, 9, &prev9, &rec(999).to_bytes().unwrap()).unwrap();
    let b = [&bytes[..s], &forged[..], &bytes[s..]].concat();
    fs::write(seg0(base.path()), &b).unwrap();
    let d = verify(base.path(), &key).damage.unwrap();
    assert_eq!(
        (d.kind.clone(), d.seq),
        (DamageKind::Inserted, Some(9)),
        "{d}"
    );
}

#[test]
fn a_rewritten_chain_fails_the_signed_roots() {
    let base = tempfile::tempdir().unwrap();
    let key = build(base.path(), 1 << 20);
    let bytes = fs::read(seg0(base.path())).unwrap();
    let fr = frames(&bytes);
    // Change record 15 and recompute every later link and checksum.
    let mut out = bytes[..fr[0].0].to_vec();
    let mut prev = [0u8; 32];
    for (i, &(s, e)) in fr.iter().enumerate() {
        let (body, _) = read_frame(&bytes[s..e]).unwrap();
        let entry = Entry::parse(body).unwrap();
        let mut r = Record::decode(entry.record.expose()).unwrap();
        if i == 15 {
            r.outcome = Outcome::Success;
            r.entity.patient = None;
        }
        let start = out.len();
        put_entry_frame(&mut out, entry.seq, &prev, &r.to_bytes().unwrap()).unwrap();
        prev = leaf_hash(&out[start + 4..out.len() - 4]);
    }
    fs::write(seg0(base.path()), &out).unwrap();
    let d = verify(base.path(), &key).damage.unwrap();
    assert_eq!(d.kind, DamageKind::RootMismatch, "{d}");
    assert_eq!(
        d.seq,
        Some(10),
        "first record after the last matching checkpoint"
    );
    assert_eq!(d.checkpoint, Some(1));
}

fn checkpoint_frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut off = 10;
    let mut out = Vec::new();
    while off < bytes.len() {
        let (_, n) = read_frame(&bytes[off..]).unwrap();
        out.push((off, off + n));
        off += n;
    }
    out
}

#[test]
fn replaced_and_forged_checkpoints() {
    let base = tempfile::tempdir().unwrap();
    let key = build(base.path(), 1 << 20);
    let cp_path = base.path().join("checkpoints.cvc");
    let bytes = fs::read(&cp_path).unwrap();
    let fr = checkpoint_frames(&bytes);
    assert_eq!(fr.len(), 5);
    let cp = |i: usize| {
        let (body, _) = read_frame(&bytes[fr[i].0..]).unwrap();
        carevox_audit::Checkpoint::decode(body).unwrap()
    };
    let framed = |c: &carevox_audit::Checkpoint| {
        let mut v = Vec::new();
        put_frame(&mut v, &c.to_bytes()).unwrap();
        v
    };
    let with = |i: usize, frame: &[u8]| [&bytes[..fr[i].0], frame, &bytes[fr[i].1..]].concat();

    // Replaced by an older valid checkpoint.
    let older = framed(&cp(0));
    // Signed by another key (log id of that key).
    let other = Signer::from_seed(&[9; 32])
        .unwrap()
        .sign(20, cp(1).root, cp(1).time);
    // The right key's log id, a made-up root, a copied signature.
    let mut fake = cp(2);
    fake.root[0] ^= 1;
    // Flipped byte in the stored signature without fixing the frame.
    let mut raw = bytes.clone();
    raw[fr[3].0 + 4 + 120] ^= 1;

    let cases = vec![
        (
            "replaced by an older one",
            with(1, &older),
            DamageKind::ReplacedCheckpoint,
            1,
        ),
        (
            "signed by another key",
            with(1, &framed(&other)),
            DamageKind::ForgedCheckpoint,
            1,
        ),
        (
            "forged root",
            with(2, &framed(&fake)),
            DamageKind::ForgedCheckpoint,
            2,
        ),
        ("flipped byte", raw, DamageKind::CheckpointFileDamaged, 3),
    ];
    for (name, b, kind, idx) in cases {
        fs::write(&cp_path, &b).unwrap();
        let d = verify(base.path(), &key)
            .damage
            .unwrap_or_else(|| panic!("{name}: undetected"));
        assert_eq!(
            (d.kind.clone(), d.checkpoint),
            (kind, Some(idx)),
            "{name}: {d}"
        );
    }
}

#[test]
fn rollback_is_caught_with_an_external_checkpoint() {
    let base = tempfile::tempdir().unwrap();
    let key = build(base.path(), 1 << 20);
    let (log, _) = AuditLog::open(base.path(), signer(), LogConfig::default()).unwrap();
    let trusted = log.last_checkpoint().unwrap();
    drop(log);
    // The attacker cuts records and checkpoints consistently back to 20.
    let bytes = fs::read(seg0(base.path())).unwrap();
    let fr = frames(&bytes);
    fs::write(seg0(base.path()), &bytes[..fr[20].0]).unwrap();
    let cp_path = base.path().join("checkpoints.cvc");
    let cps = fs::read(&cp_path).unwrap();
    let cfr = checkpoint_frames(&cps);
    fs::write(&cp_path, &cps[..cfr[2].0]).unwrap();
    assert!(
        verify(base.path(), &key).is_ok(),
        "undetectable from inside the log"
    );
    let r = verify_log(
        base.path(),
        &key,
        VerifyOptions {
            trusted: Some(trusted.clone()),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    let d = r.damage.unwrap();
    assert_eq!(
        (d.kind.clone(), d.seq),
        (DamageKind::Rollback { trusted_size: N }, Some(20)),
        "{d}"
    );

    // A trusted checkpoint for a tree the log never had: a fork.
    let fork = signer().sign(15, [7; 32], Timestamp(1));
    let r = verify_log(
        base.path(),
        &key,
        VerifyOptions {
            trusted: Some(fork),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.damage.unwrap().kind, DamageKind::Fork);
}

#[test]
fn archived_segments_still_verify_and_missing_ones_are_named() {
    let base = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let key = build(base.path(), 1500);
    let (log, _) = AuditLog::open(base.path(), signer(), LogConfig::default()).unwrap();
    let moved = log.archive_sealed(archive.path()).unwrap();
    assert!(moved.len() >= 3, "{moved:?}");
    log.append(&rec(N)).unwrap();
    let cp = log.checkpoint(Timestamp(1_900_000_000_000)).unwrap();
    let proof = log.consistency_proof(10, cp.tree_size);
    assert!(proof.is_ok(), "proofs keep working after archiving");
    drop(log);

    let full = verify_log(
        base.path(),
        &key,
        VerifyOptions {
            archive_dirs: vec![archive.path().to_path_buf()],
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(full.is_ok(), "{:?}", full.damage);
    assert_eq!((full.first_seq, full.records), (0, N + 1));
    assert_eq!(full.checkpoints_matched, 6);

    let live_only = verify(base.path(), &key);
    assert!(live_only.is_ok(), "{:?}", live_only.damage);
    assert!(live_only.first_seq > 0);
    assert!(live_only.checkpoints_signature_only > 0);
    assert!(live_only.checkpoints_matched >= 1);

    // Reopening with and without the archive.
    let (log, rep) = AuditLog::open(
        base.path(),
        signer(),
        LogConfig {
            archive_dirs: vec![archive.path().to_path_buf()],
            ..LogConfig::default()
        },
    )
    .unwrap();
    assert_eq!(rep.first_seq, 0);
    assert!(log.inclusion_proof(0, N).is_ok());
    drop(log);
    let (log, rep) = AuditLog::open(base.path(), signer(), LogConfig::default()).unwrap();
    assert!(rep.first_seq > 0);
    assert!(matches!(
        log.inclusion_proof(0, N),
        Err(carevox_audit::Error::HistoryUnavailable)
    ));
    assert_eq!(log.append(&rec(N + 1)).unwrap(), N + 1);
    drop(log);

    // An archived segment lost from the middle.
    let mut names: Vec<_> = fs::read_dir(archive.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    fs::remove_file(&names[1]).unwrap();
    let r = verify_log(
        base.path(),
        &key,
        VerifyOptions {
            archive_dirs: vec![archive.path().to_path_buf()],
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    let d = r.damage.unwrap();
    assert!(matches!(d.kind, DamageKind::Deleted { .. }), "{d}");
}

#[test]
fn large_segments_are_checked_in_parallel_and_still_located() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    let key = signer.verifying_key();
    let (log, _) = AuditLog::open(dir.path(), signer, LogConfig::default()).unwrap();
    for round in 0..6 {
        let batch: Vec<Record> = (0..1000).map(|i| rec(round * 1000 + i)).collect();
        log.append_batch(&batch).unwrap();
    }
    log.checkpoint(Timestamp(1_800_000_000_000)).unwrap();
    drop(log);
    let r = verify(dir.path(), &key);
    assert!(r.is_ok(), "{:?}", r.damage);
    assert_eq!(r.records, 6000);
    let bytes = fs::read(seg0(dir.path())).unwrap();
    let fr = frames(&bytes);
    for k in [1234usize, 4321, 5998] {
        let b = rewrite(&bytes, k, |r| r.outcome = Outcome::MajorFailure);
        fs::write(seg0(dir.path()), &b).unwrap();
        let d = verify(dir.path(), &key).damage.unwrap();
        assert_eq!(
            (d.kind.clone(), d.seq),
            (DamageKind::Modified, Some(k as u64)),
            "{d}"
        );
        let mut b = bytes.clone();
        b[fr[k].0 + 50] ^= 4;
        fs::write(seg0(dir.path()), &b).unwrap();
        let d = verify(dir.path(), &key).damage.unwrap();
        assert_eq!(
            (d.kind.clone(), d.seq),
            (DamageKind::Modified, Some(k as u64)),
            "{d}"
        );
    }
}

/// A log long enough for the verifier to take aligned blocks of records
/// into the tree in one step and to spread hashing over threads; its
/// checkpoints fall inside blocks.
fn build_long(dir: &Path, n: u64) -> (VerifyingKey, carevox_audit::merkle::Hash) {
    let cfg = LogConfig {
        checkpoint_every_records: 1000,
        checkpoint_every_millis: 0,
        ..LogConfig::default()
    };
    let (log, _) = AuditLog::open(dir, signer(), cfg).unwrap();
    let batch: Vec<Record> = (0..n).map(rec).collect();
    for part in batch.chunks(700) {
        log.append_batch(part).unwrap();
    }
    log.checkpoint(Timestamp(1_800_000_000_000)).unwrap();
    (log.verifying_key(), log.root().unwrap())
}

#[test]
fn long_logs_verify_and_damage_inside_a_block_is_located() {
    const LONG: u64 = 4500;
    let base = tempfile::tempdir().unwrap();
    let (key, root) = build_long(base.path(), LONG);
    let r = verify(base.path(), &key);
    assert!(r.is_ok(), "{:?}", r.damage);
    assert_eq!(r.records, LONG);
    assert_eq!(r.root, root);
    assert_eq!(r.checkpoints_matched, r.checkpoints);
    assert_eq!(r.checkpoints, 5);

    let bytes = fs::read(seg0(base.path())).unwrap();
    let fr = frames(&bytes);
    // First, inside and last record of a block of 256, and across threads.
    for k in [256usize, 300, 511, 999, 1000, 1001, 2300, 4095, 4499] {
        // A flipped byte in the record: its successor's chain hash no
        // longer matches (or, for the last record, the signed root).
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let mut b = bytes.clone();
        let (start, end) = fr[k];
        let pos = end - 5; // the last digit of the detail value
        b[pos] ^= 0x01;
        // Keep the frame checksum right so the chain must catch it.
        let (body, _) = {
            let len = u32::from_be_bytes(b[start..start + 4].try_into().unwrap()) as usize;
            (b[start + 4..start + 4 + len].to_vec(), len)
        };
        let mut fixed = Vec::new();
        put_frame(&mut fixed, &body).unwrap();
        b[start..end].copy_from_slice(&fixed);
        fs::write(seg0(dir.path()), &b).unwrap();
        let d = verify(dir.path(), &key).damage.expect("undetected");
        if k as u64 + 1 == LONG {
            assert_eq!(d.kind, DamageKind::RootMismatch, "record {k}");
        } else {
            assert_eq!(d.kind, DamageKind::Modified, "record {k}");
            assert_eq!(d.seq, Some(k as u64), "record {k}");
        }

        if k as u64 + 1 == LONG {
            // A bad last frame of the live segment reads as a torn tail.
            continue;
        }
        // A bad checksum is located at the frame.
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let mut b = bytes.clone();
        b[end - 1] ^= 0x80;
        fs::write(seg0(dir.path()), &b).unwrap();
        let r = verify(dir.path(), &key);
        let d = r.damage.expect("undetected");
        assert_eq!(d.seq, Some(k as u64), "record {k}");
        assert_eq!(d.offset, start as u64, "record {k}");
        assert_eq!(r.records, k as u64, "record {k}");

        // A deleted record.
        let dir = tempfile::tempdir().unwrap();
        copy_dir(base.path(), dir.path());
        let mut b = bytes[..start].to_vec();
        b.extend_from_slice(&bytes[end..]);
        fs::write(seg0(dir.path()), &b).unwrap();
        let r = verify(dir.path(), &key);
        let d = r.damage.expect("undetected");
        assert_eq!(d.kind, DamageKind::Deleted { count: 1 }, "record {k}");
        assert_eq!(d.seq, Some(k as u64), "record {k}");
        assert_eq!(r.records, k as u64, "record {k}");
    }
}
