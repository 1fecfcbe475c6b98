//! Behaviour of the durable log through its public API, on the file
//! system and in memory.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::print_stderr
)]

use std::path::PathBuf;
use std::sync::Arc;

use carevox_audit::merkle::{verify_consistency, verify_inclusion};
use carevox_audit::{
    Action, AuditLog, EventType, FsStorage, LogConfig, MemoryStorage, OpenReport, Outcome, Record,
    Signer, Storage, Timestamp, VerifyOptions, VerifyReport, verify_log_in,
};

fn signer() -> Signer {
    Signer::from_seed(&[42; 32]).unwrap()
}

/// A log directory in one storage.
struct Place {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Place {
    fn open(&self, cfg: LogConfig) -> carevox_audit::Result<(AuditLog, OpenReport)> {
        AuditLog::open_in(Arc::clone(&self.storage), &self.dir, signer(), cfg)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        self.storage.read(&self.path(name)).unwrap()
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        self.storage.create_dir(&self.dir).unwrap();
        self.storage.replace(&self.path(name), bytes).unwrap();
    }

    fn exists(&self, name: &str) -> bool {
        self.storage.file_len(&self.path(name)).is_ok()
    }

    /// The segment files, oldest first.
    fn segments(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .storage
            .list(&self.dir)
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".cva"))
            .collect();
        names.sort();
        names
    }

    fn verify(&self) -> VerifyReport {
        let key = signer().verifying_key();
        verify_log_in(&*self.storage, &self.dir, &key, VerifyOptions::default()).unwrap()
    }
}

/// Runs `test` on a log in a temporary directory, then on one in memory.
fn on_each_storage(test: impl Fn(&Place)) {
    let tmp = tempfile::tempdir().unwrap();
    eprintln!("on the file system");
    test(&Place {
        storage: Arc::new(FsStorage),
        dir: tmp.path().join("log"),
        _tmp: Some(tmp),
    });
    eprintln!("in memory");
    test(&Place {
        storage: Arc::new(MemoryStorage::new()),
        dir: PathBuf::from("/var/audit/log"),
        _tmp: None,
    });
}

fn rec(i: u64) -> Record {
    let mut r = Record::new(
        EventType::RecordingAccess,
        Action::Read,
        Outcome::Success,
        Timestamp(1_700_000_000_000 + i),
        format!("user{}", i % 7),
        "pbx-1",
    );
    r.entity.patient = Some(format!("MRN{}", i % 13));
    r.with_detail("i", i.to_string())
}

/// Audit records carry PHI: the log's directories and files are readable by
/// their owner only, whatever the process umask.
#[cfg(unix)]
#[test]
fn log_directories_and_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("nested/audit");
    let archive = dir.path().join("archive");
    let cfg = LogConfig {
        checkpoint_every_records: 5,
        segment_max_bytes: 2000,
        ..LogConfig::default()
    };
    let (log, _) = AuditLog::open(&log_dir, signer(), cfg).unwrap();
    for i in 0..30 {
        log.append(&rec(i)).unwrap();
    }
    log.checkpoint(Timestamp::from_millis(1_800_000_000_000))
        .unwrap();
    assert!(!log.archive_sealed(&archive).unwrap().is_empty());
    for d in [dir.path().join("nested"), log_dir.clone(), archive.clone()] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{} is not owner-only", d.display());
    }
    let mut files = 0;
    for d in [&log_dir, &archive] {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{} is not owner-only", path.display());
            files += 1;
        }
    }
    assert!(
        files >= 3,
        "expected segments and checkpoints, found {files} files"
    );
}

#[test]
fn append_reopen_and_continue() {
    on_each_storage(|place| {
        let cfg = LogConfig {
            checkpoint_every_records: 10,
            segment_max_bytes: 2000,
            ..LogConfig::default()
        };
        let (log, report) = place.open(cfg.clone()).unwrap();
        assert_eq!(report.records, 0);
        for i in 0..55 {
            assert_eq!(log.append(&rec(i)).unwrap(), i);
        }
        let root = log.root().unwrap();
        let cp = log.last_checkpoint().unwrap();
        assert_eq!(cp.tree_size, 50);
        cp.verify(&log.verifying_key()).unwrap();
        assert_eq!(log.root_at(50).unwrap(), cp.root);
        drop(log);
        let (log, report) = place.open(cfg).unwrap();
        assert_eq!(report.records, 55);
        assert!(report.segments > 1, "segments roll over");
        assert!(report.torn.is_empty());
        assert_eq!(log.root().unwrap(), root);
        assert_eq!(log.append(&rec(55)).unwrap(), 55);
        let cp2 = log.checkpoint(Timestamp(1_800_000_000_000)).unwrap();
        assert_eq!(cp2.tree_size, 56);
        let proof = log.consistency_proof(cp.tree_size, cp2.tree_size).unwrap();
        cp.verify_extended_by(&cp2, &proof).unwrap();
        verify_consistency(50, 56, &cp.root, &cp2.root, &proof).unwrap();
        let p = log.inclusion_proof(7, 56).unwrap();
        verify_inclusion(7, 56, &log.leaf_hash(7).unwrap(), &p, &cp2.root).unwrap();
    });
}

#[test]
fn concurrent_appends_get_distinct_sequence_numbers() {
    on_each_storage(|place| {
        let (log, _) = place.open(LogConfig::default()).unwrap();
        let log = Arc::new(log);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    (0..50)
                        .map(|i| {
                            let mut r = rec(i);
                            r.recorded = Timestamp(0);
                            r.occurred = Timestamp(0);
                            r = r.with_detail("t", t.to_string());
                            log.append(&r).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..400).collect::<Vec<_>>());
        assert_eq!(log.durable_size(), 400);
    });
}

#[test]
fn checkpoints_written_while_records_flush_stay_in_order() {
    on_each_storage(|place| {
        let cfg = LogConfig {
            checkpoint_every_records: 7,
            checkpoint_every_millis: 0,
            ..LogConfig::default()
        };
        let (log, _) = place.open(cfg).unwrap();
        let log = Arc::new(log);
        let writers: Vec<_> = (0..6u64)
            .map(|t| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for i in 0..20u64 {
                        let mut batch: Vec<Record> =
                            (0..5).map(|k| rec(t * 1000 + i * 10 + k)).collect();
                        for r in &mut batch {
                            r.recorded = Timestamp(0);
                        }
                        let range = log.append_batch(&batch).unwrap();
                        assert_eq!(range.end - range.start, 5);
                        assert!(log.durable_size() >= range.end);
                    }
                })
            })
            .collect();
        // On-demand checkpoints race with the writers' rounds.
        let mut last = 0;
        for k in 0..15u64 {
            let cp = log.checkpoint(Timestamp(k + 1)).unwrap();
            assert!(cp.tree_size >= last);
            last = cp.tree_size;
        }
        for w in writers {
            w.join().unwrap();
        }
        let cp = log.checkpoint(Timestamp(100)).unwrap();
        assert_eq!(cp.tree_size, 600);
        drop(log);
        let report = place.verify();
        assert!(report.is_ok(), "{:?}", report.damage);
        assert_eq!(report.records, 600);
        assert!(report.checkpoints > 15);
        assert_eq!(report.checkpoints_matched, report.checkpoints);
    });
}

#[test]
fn batch_and_submit() {
    on_each_storage(|place| {
        let (log, _) = place.open(LogConfig::default()).unwrap();
        let recs: Vec<_> = (0..10).map(rec).collect();
        assert_eq!(log.append_batch(&recs).unwrap(), 0..10);
        let s = log.submit(&rec(10)).unwrap();
        log.wait_durable(s).unwrap();
        assert_eq!(log.durable_size(), 11);
        // Time going backwards is refused and nothing is appended.
        assert!(log.append(&rec(0)).is_err());
        assert_eq!(log.size(), 11);
    });
}

const SEG0: &str = "seg-00000000000000000000.cva";

#[test]
fn torn_tail_is_cut_and_log_stays_appendable() {
    on_each_storage(|place| {
        let (log, _) = place.open(LogConfig::default()).unwrap();
        for i in 0..5 {
            log.append(&rec(i)).unwrap();
        }
        drop(log);
        // Half a frame: a crash during a write.
        let mut bytes = place.read(SEG0);
        let len = bytes.len() as u64;
        let tail: Vec<u8> = bytes[bytes.len() - 60..].to_vec();
        bytes.extend_from_slice(&tail[..30]);
        place.write(SEG0, &bytes);
        let (log, report) = place.open(LogConfig::default()).unwrap();
        assert_eq!(report.records, 5);
        assert_eq!(report.torn.len(), 1);
        assert_eq!(report.torn[0].path, place.path(SEG0));
        assert_eq!(report.torn[0].offset, len);
        assert_eq!(report.torn[0].bytes_cut, 30);
        assert_eq!(place.read(SEG0).len() as u64, len, "cut back to the frame");
        assert_eq!(log.append(&rec(5)).unwrap(), 5);
    });
}

#[test]
fn damage_in_the_middle_is_refused_not_cut() {
    on_each_storage(|place| {
        let (log, _) = place.open(LogConfig::default()).unwrap();
        for i in 0..5 {
            log.append(&rec(i)).unwrap();
        }
        drop(log);
        let mut bytes = place.read(SEG0);
        let n = bytes.len();
        bytes[n / 2] ^= 0x10;
        place.write(SEG0, &bytes);
        let err = place.open(LogConfig::default()).unwrap_err();
        assert!(matches!(err, carevox_audit::Error::Corrupt { .. }), "{err}");
        assert_eq!(place.read(SEG0), bytes, "nothing cut");
        assert!(!place.verify().is_ok());
    });
}

#[test]
fn a_half_written_segment_header_is_removed_but_a_damaged_one_is_not() {
    on_each_storage(|place| {
        let cfg = LogConfig {
            segment_max_bytes: 600,
            ..LogConfig::default()
        };
        let (log, _) = place.open(cfg.clone()).unwrap();
        for i in 0..6 {
            log.append(&rec(i)).unwrap();
        }
        drop(log);
        let segs = place.segments();
        assert!(segs.len() >= 2);
        let newest = segs.last().unwrap().clone();
        let original = place.read(&newest);

        // Damage inside a complete header: refused, nothing removed.
        let mut bad = original.clone();
        bad[20] ^= 1;
        place.write(&newest, &bad);
        assert!(place.open(cfg.clone()).is_err());
        assert!(place.exists(&newest));

        // A crash while creating the next segment: a header cut short.
        place.write(&newest, &original);
        let (log, _) = place.open(cfg.clone()).unwrap();
        let size = log.size();
        drop(log);
        let next = format!("seg-{size:020}.cva");
        place.write(&next, &original[..30]);
        let v = place.verify();
        assert!(v.is_ok(), "{:?}", v.damage);
        assert_eq!(v.torn_tail.as_ref().map(|t| t.1), Some(0));
        let (log, report) = place.open(cfg).unwrap();
        assert_eq!(report.torn.len(), 1);
        assert!(!place.exists(&next));
        assert_eq!(log.append(&rec(100)).unwrap(), size);
    });
}

#[test]
fn a_crash_while_creating_the_first_segment_recovers() {
    on_each_storage(|place| {
        place.write(SEG0, b"CVXAUSEG\x00");
        let (log, report) = place.open(LogConfig::default()).unwrap();
        assert_eq!(report.torn.len(), 1);
        assert_eq!(log.append(&rec(0)).unwrap(), 0);
    });
}
