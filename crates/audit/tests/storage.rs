//! The storage seam: recovery, archives, the index and I/O failures with
//! the log kept in a `MemoryStorage`, and the same bytes whichever storage
//! keeps them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use carevox_audit::CHECKPOINT_FILE;
use carevox_audit::{
    Action, AuditLog, DamageKind, Error, EventType, FsStorage, LogConfig, MemoryStorage,
    OpenReport, Outcome, Record, Signer, Storage, Timestamp, VerifyOptions, VerifyReport,
    verify_log_in,
};
use carevox_audit::{Index, Query};

const DIR: &str = "/srv/audit";
const SEG0: &str = "/srv/audit/seg-00000000000000000000.cva";

fn signer() -> Signer {
    Signer::from_seed(&[9; 32]).unwrap()
}

fn rec(i: u64) -> Record {
    let mut r = Record::new(
        EventType::VoicemailAccess,
        Action::Read,
        Outcome::Success,
        Timestamp(1_750_000_000_000 + i * 1000),
        format!("nurse{}", i % 3),
        "pbx-2",
    );
    r.entity.patient = Some(format!("Patient/{}", i % 4).into());
    r
}

fn open(m: &MemoryStorage, cfg: LogConfig) -> carevox_audit::Result<(AuditLog, OpenReport)> {
    AuditLog::open_in(Arc::new(m.clone()), DIR, signer(), cfg)
}

fn verify(m: &MemoryStorage, archives: Vec<PathBuf>) -> VerifyReport {
    let opts = VerifyOptions {
        archive_dirs: archives,
        ..VerifyOptions::default()
    };
    verify_log_in(m, DIR, &signer().verifying_key(), opts).unwrap()
}

/// Byte offsets where each frame of a single-segment log ends.
fn frame_ends(m: &MemoryStorage, records: u64) -> Vec<usize> {
    let full = m.file_bytes(SEG0).unwrap();
    let mut ends = Vec::new();
    let mut off = carevox_audit::internal::header_len(0);
    for _ in 0..records {
        let len = u32::from_be_bytes(full[off..off + 4].try_into().unwrap()) as usize;
        off += len + 8;
        ends.push(off);
    }
    assert_eq!(off, full.len());
    ends
}

/// A log in `m` with the default configuration and records `0..n`.
fn log_with(m: &MemoryStorage, n: u64) -> AuditLog {
    let (log, _) = open(m, LogConfig::default()).unwrap();
    for i in 0..n {
        log.append(&rec(i)).unwrap();
    }
    log
}

/// Replaces the file `path` with `bytes`, then checks that opening the log
/// fails, that verifying it finds damage, and that neither cut anything.
/// Returns the error of the open.
fn assert_refused(m: &MemoryStorage, path: &Path, bytes: &[u8]) -> (Error, VerifyReport) {
    m.set_file_bytes(path, bytes.to_vec());
    let err = open(m, LogConfig::default()).unwrap_err();
    let report = verify(m, Vec::new());
    assert!(!report.is_ok(), "verify accepted a damaged {path:?}");
    assert_eq!(m.file_bytes(path).unwrap(), bytes, "{path:?} was cut");
    (err, report)
}

/// A crash at any instant of a write, modelled by every prefix of the
/// segment: reopening keeps each whole record, cuts the rest, and reports a
/// cut exactly when one was made.
#[test]
fn every_prefix_of_a_segment_reopens_to_its_whole_records() {
    let m = MemoryStorage::new();
    let log = log_with(&m, 4);
    let ends = frame_ends(&m, 4);
    drop(log);
    let full = m.file_bytes(SEG0).unwrap();
    let header = carevox_audit::internal::header_len(0);
    for cut in header..=full.len() {
        let crashed = m.snapshot();
        crashed.set_file_bytes(SEG0, full[..cut].to_vec());
        let whole = ends.iter().filter(|&&e| e <= cut).count() as u64;
        let boundary = ends.iter().rev().find(|&&e| e <= cut).copied();
        let boundary = boundary.unwrap_or(header);
        let (log, report) = open(&crashed, LogConfig::default()).unwrap();
        assert_eq!(report.records, whole, "cut at {cut}");
        assert_eq!(
            report.torn.len(),
            usize::from(cut != boundary),
            "cut at {cut}"
        );
        let cut_made = cut != boundary;
        if !cut_made {
            assert_eq!(crashed.file_bytes(SEG0).unwrap().len(), boundary);
        }
        // A cut is recorded in the log, as the next record.
        assert_eq!(log.size(), whole + u64::from(cut_made), "cut at {cut}");
        assert_eq!(
            log.append(&rec(10)).unwrap(),
            whole + u64::from(cut_made),
            "cut at {cut}"
        );
        drop(log);
        assert!(verify(&crashed, Vec::new()).is_ok(), "cut at {cut}");
    }
}

#[test]
fn an_acknowledged_record_survives_dropping_the_log() {
    let m = MemoryStorage::new();
    let (log, _) = open(&m, LogConfig::default()).unwrap();
    let seq = log.append(&rec(0)).unwrap();
    let staged = log.submit(&rec(1)).unwrap();
    // A crash now: the acknowledged record is there, whatever the other.
    let crashed = m.snapshot();
    log.wait_durable(staged).unwrap();
    drop(log);
    let (log, report) = open(&crashed, LogConfig::default()).unwrap();
    assert!(report.records > seq);
    assert!(report.torn.is_empty());
    drop(log);
    let (_, report) = open(&m, LogConfig::default()).unwrap();
    assert_eq!(report.records, 2);
}

#[test]
fn damage_in_the_middle_is_named_and_nothing_is_cut() {
    let m = MemoryStorage::new();
    let log = log_with(&m, 5);
    let ends = frame_ends(&m, 5);
    drop(log);
    let mut bytes = m.file_bytes(SEG0).unwrap();
    // A byte inside record 2's frame.
    bytes[ends[1] + 20] ^= 0x01;
    let (err, report) = assert_refused(&m, Path::new(SEG0), &bytes);
    match err {
        Error::Corrupt { path, offset, .. } => {
            assert_eq!(path, Path::new(SEG0));
            assert_eq!(offset, ends[1] as u64);
        }
        e => panic!("expected Corrupt, got {e}"),
    }
    let damage = report.damage.unwrap();
    assert_eq!(damage.kind, DamageKind::Modified);
    assert_eq!(damage.seq, Some(2));
}

#[test]
fn a_torn_checkpoint_is_cut_and_checkpoints_continue() {
    let cp_path = Path::new(DIR).join(CHECKPOINT_FILE);
    let m = MemoryStorage::new();
    let log = log_with(&m, 3);
    let cp = log.checkpoint(Timestamp(1_760_000_000_000)).unwrap();
    drop(log);
    let good = m.file_bytes(&cp_path).unwrap();
    // Half of the next checkpoint's frame: a crash while it was written.
    let mut torn = good.clone();
    let frame_len = 8 + carevox_audit::CHECKPOINT_LEN;
    let last_frame = good[good.len() - frame_len..].to_vec();
    torn.extend_from_slice(&last_frame[..40]);
    m.set_file_bytes(&cp_path, torn);
    let v = verify(&m, Vec::new());
    assert!(
        v.is_ok(),
        "a torn checkpoint tail is not damage: {:?}",
        v.damage
    );

    let (log, report) = open(&m, LogConfig::default()).unwrap();
    assert_eq!(report.torn.len(), 1);
    assert_eq!(report.torn[0].path, cp_path);
    assert_eq!(report.torn[0].offset, good.len() as u64);
    assert_eq!(report.torn[0].bytes_cut, 40);
    assert_eq!(m.file_bytes(&cp_path).unwrap(), good);
    assert_eq!(log.last_checkpoint(), Some(cp));
    // Record 3 says what was cut.
    assert_eq!(log.append(&rec(3)).unwrap(), 4);
    let cp2 = log.checkpoint(Timestamp(1_760_000_001_000)).unwrap();
    assert_eq!(cp2.tree_size, 5);
    drop(log);
    let v = verify(&m, Vec::new());
    assert!(v.is_ok(), "{:?}", v.damage);
    assert_eq!(v.checkpoints, 2);
    assert_eq!(v.checkpoints_matched, 2);
}

#[test]
fn a_checkpoint_file_cut_inside_its_header_is_refused() {
    let cp_path = Path::new(DIR).join(CHECKPOINT_FILE);
    let m = MemoryStorage::new();
    let log = log_with(&m, 1);
    drop(log);
    let header = m.file_bytes(&cp_path).unwrap();
    // The file is created whole: a short or empty one was emptied by
    // someone, and the checkpoints it held are not silently forgotten.
    for len in [0, 3] {
        assert_refused(&m, &cp_path, &header[..len]);
    }
}

#[test]
fn damage_inside_the_checkpoint_file_is_refused() {
    let cp_path = Path::new(DIR).join(CHECKPOINT_FILE);
    let m = MemoryStorage::new();
    let log = log_with(&m, 1);
    log.checkpoint(Timestamp(1_760_000_000_000)).unwrap();
    log.append(&rec(1)).unwrap();
    log.checkpoint(Timestamp(1_760_000_001_000)).unwrap();
    drop(log);
    let mut bytes = m.file_bytes(&cp_path).unwrap();
    let first = carevox_audit::internal::checkpoint_header().len();
    bytes[first + 10] ^= 0x40;
    let (err, _) = assert_refused(&m, &cp_path, &bytes);
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

#[test]
fn a_failed_write_poisons_the_log_and_loses_nothing_acknowledged() {
    let m = MemoryStorage::new();
    let log = log_with(&m, 3);
    m.set_fail_writes(true);
    assert!(matches!(log.append(&rec(3)), Err(Error::Poisoned)));
    m.set_fail_writes(false);
    assert!(
        matches!(log.append(&rec(4)), Err(Error::Poisoned)),
        "a poisoned log stays poisoned"
    );
    assert_eq!(log.durable_size(), 3);
    drop(log);
    let (log, report) = open(&m, LogConfig::default()).unwrap();
    assert_eq!(report.records, 3);
    assert_eq!(log.append(&rec(3)).unwrap(), 3);
}

#[test]
fn archives_indexes_and_queries_in_memory() {
    let archive = PathBuf::from("/srv/archive/2026");
    let m = MemoryStorage::new();
    let cfg = LogConfig {
        segment_max_bytes: 800,
        checkpoint_every_records: 5,
        ..LogConfig::default()
    };
    let (log, _) = open(&m, cfg.clone()).unwrap();
    for i in 0..24 {
        log.append(&rec(i)).unwrap();
    }
    let moved = log.archive_sealed(&archive).unwrap();
    assert!(moved.len() >= 2);
    let live: Vec<_> = m
        .files()
        .into_iter()
        .filter(|p| p.starts_with(DIR))
        .collect();
    assert_eq!(
        live.iter()
            .filter(|p| p.extension().is_some_and(|e| e == "cva"))
            .count(),
        1,
        "only the segment being written stays live"
    );
    for p in &moved {
        assert!(p.starts_with(&archive) && m.file_bytes(p).is_some());
    }
    drop(log);

    let v = verify(&m, vec![archive.clone()]);
    assert!(v.is_ok(), "{:?}", v.damage);
    assert_eq!(v.records, 24);
    let v = verify(&m, Vec::new());
    assert!(v.is_ok(), "{:?}", v.damage);
    assert!(v.first_seq > 0, "verified from the live segment's frontier");

    let archives = vec![archive.clone()];
    let (idx, rebuilt) = Index::open_current_in(&m, Path::new(DIR), &archives).unwrap();
    assert!(rebuilt);
    assert_eq!(idx.len(), 24);
    assert!(m.file_bytes(Path::new(DIR).join("index.cvi")).is_some());
    let q = Query {
        actor: Some("nurse1".into()),
        patient: Some("Patient/1".into()),
        ..Query::default()
    };
    let hits = idx.query_in(&m, Path::new(DIR), &archives, &q).unwrap();
    let seqs: Vec<u64> = hits.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [1, 13]);
    let (_, rebuilt) = Index::open_current_in(&m, Path::new(DIR), &archives).unwrap();
    assert!(!rebuilt, "an index that is current is kept");

    let reopen = LogConfig {
        archive_dirs: archives,
        ..cfg
    };
    let (log, report) = open(&m, reopen).unwrap();
    assert_eq!(report.first_seq, 0);
    assert_eq!(report.records, 24);
    log.inclusion_proof(2, 24).unwrap();
}

/// The format does not depend on the storage: the same records written
/// to files and to memory are the same bytes.
#[test]
fn files_and_memory_hold_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let fs_dir = tmp.path().join("log");
    let m = MemoryStorage::new();
    let cfg = LogConfig {
        segment_max_bytes: 1000,
        checkpoint_every_records: 4,
        ..LogConfig::default()
    };
    let (a, _) = AuditLog::open(&fs_dir, signer(), cfg.clone()).unwrap();
    let (b, _) = open(&m, cfg).unwrap();
    for i in 0..15 {
        a.append(&rec(i)).unwrap();
        b.append(&rec(i)).unwrap();
    }
    let now = Timestamp(1_760_000_000_000);
    assert_eq!(a.checkpoint(now).unwrap(), b.checkpoint(now).unwrap());
    drop((a, b));
    let mut on_disk = FsStorage.list(&fs_dir).unwrap();
    on_disk.sort();
    let mut in_memory = m.list(Path::new(DIR)).unwrap();
    in_memory.sort();
    assert_eq!(on_disk, in_memory);
    assert!(on_disk.len() >= 3);
    for name in &on_disk {
        assert_eq!(
            std::fs::read(fs_dir.join(name)).unwrap(),
            m.file_bytes(Path::new(DIR).join(name)).unwrap(),
            "{name}"
        );
    }
}

/// Group commit acknowledges only what is stored: a crash at any instant
/// while writers append, roll segments and sign checkpoints leaves a log
/// that opens cleanly and holds every record acknowledged before it.
#[test]
fn snapshots_taken_while_writers_append_hold_every_acknowledged_record() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let m = MemoryStorage::new();
    let cfg = LogConfig {
        segment_max_bytes: 2000,
        checkpoint_every_records: 16,
        checkpoint_every_millis: 0,
        ..LogConfig::default()
    };
    let (log, _) = open(&m, cfg.clone()).unwrap();
    let log = Arc::new(log);
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let (log, acked) = (Arc::clone(&log), Arc::clone(&acked));
            std::thread::spawn(move || {
                for i in 0..100u64 {
                    let mut r = rec(t * 1000 + i);
                    r.recorded = Timestamp(0);
                    let seq = log.append(&r).unwrap();
                    acked.fetch_max(seq + 1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let snapper = {
        let (m, acked, done) = (m.clone(), Arc::clone(&acked), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut shots = Vec::new();
            // At least one snapshot, however fast the writers were.
            loop {
                let finished = done.load(Ordering::SeqCst);
                let before = acked.load(Ordering::SeqCst);
                shots.push((before, m.snapshot()));
                if finished {
                    break;
                }
                std::thread::yield_now();
            }
            shots
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let shots = snapper.join().unwrap();
    assert!(!shots.is_empty());
    // Every snapshot is checked when there are few; a spread of them when
    // the machine took many.
    let step = shots.len().div_ceil(40);
    for (before, shot) in shots.iter().step_by(step) {
        let (log, report) = open(shot, cfg.clone()).unwrap();
        assert!(
            report.records >= *before,
            "{} records after {before} acknowledged",
            report.records
        );
        drop(log);
        let v = verify(shot, Vec::new());
        assert!(v.is_ok(), "{:?}", v.damage);
    }
    assert_eq!(log.durable_size(), 400);
}
