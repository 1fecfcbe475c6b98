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
    r.entity.patient = Some(format!("MRN{}", i % 13).into());
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

/// Writers stamp a record before they reach the log: within the reorder
/// window, one arriving behind the last is appended at the last one's time
/// (its own `occurred` time kept), through `append`, `submit` and
/// `append_batch`; further behind, it is refused as before.
#[test]
fn records_arriving_out_of_order_within_the_window_are_kept() {
    on_each_storage(|place| {
        let cfg = LogConfig {
            reorder_window_millis: 1000,
            ..LogConfig::default()
        };
        let (log, _) = place.open(cfg).unwrap();
        let t = 1_700_000_000_000;
        log.append(&rec(2000)).unwrap();
        // 500 ms behind: kept.
        log.append(&rec(1500)).unwrap();
        let s = log.submit(&rec(1000)).unwrap();
        log.wait_durable(s).unwrap();
        assert_eq!(log.append_batch(&[rec(2500), rec(1600)]).unwrap(), 3..5);
        // 1 001 ms behind the last (2 500): refused, nothing appended.
        let e = log.append(&rec(1499)).unwrap_err();
        assert!(
            matches!(e, carevox_audit::Error::TimeWentBackwards { .. }),
            "{e}"
        );
        assert_eq!(log.size(), 5);
        drop(log);

        let mut seen = Vec::new();
        carevox_audit::for_each_record_in(&*place.storage, &place.dir, &[], |_, r, _| {
            seen.push((r.occurred.0 - t, r.recorded.0 - t));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (2000, 2000),
                (1500, 2000),
                (1000, 2000),
                (2500, 2500),
                (1600, 2500)
            ]
        );
        assert_eq!(place.verify().records, 5);
    });
    // Without a window (the default) the first record behind is refused.
    on_each_storage(|place| {
        let (log, _) = place.open(LogConfig::default()).unwrap();
        log.append(&rec(2000)).unwrap();
        assert!(log.append(&rec(1999)).is_err());
        assert!(log.append_batch(&[rec(2001), rec(2000)]).is_err());
        assert_eq!(log.size(), 2);
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
        let len = place.read(SEG0).len() as u64;
        // Half a frame: a crash in the middle of the next write.
        let (log, _) = place.open(LogConfig::default()).unwrap();
        log.append(&rec(5)).unwrap();
        drop(log);
        let bytes = place.read(SEG0);
        place.write(SEG0, &bytes[..len as usize + 30]);
        let (log, report) = place.open(LogConfig::default()).unwrap();
        assert_eq!(report.records, 5);
        assert_eq!(report.torn.len(), 1);
        assert_eq!(report.torn[0].path, place.path(SEG0));
        assert_eq!(report.torn[0].offset, len);
        assert_eq!(report.torn[0].bytes_cut, 30);
        // The cut is itself recorded, as record 5.
        assert!(place.read(SEG0).len() as u64 > len);
        assert_eq!(log.size(), 6);
        assert_eq!(log.append(&rec(6)).unwrap(), 6);
        drop(log);
        let mut cuts = Vec::new();
        carevox_audit::for_each_record_in(&*place.storage, &place.dir, &[], |seq, r, _| {
            if r.event == EventType::LogRecovery {
                let d: Vec<_> = r
                    .details
                    .iter()
                    .map(|d| (d.key.expose().as_str(), d.value.expose().as_str()))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                cuts.push((seq, d));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(cuts.len(), 1);
        assert_eq!(cuts[0].0, 5);
        assert!(
            cuts[0]
                .1
                .contains(&("bytes_cut".to_owned(), "30".to_owned()))
        );
        assert!(cuts[0].1.contains(&("offset".to_owned(), len.to_string())));
        assert!(place.verify().is_ok());
    });
}

#[test]
fn a_flipped_bit_in_the_newest_record_is_damage_not_a_torn_tail() {
    on_each_storage(|place| {
        let (log, _) = place.open(LogConfig::default()).unwrap();
        for i in 0..5 {
            log.append(&rec(i)).unwrap();
        }
        drop(log);
        let good = place.read(SEG0);
        for at in [good.len() - 1, good.len() - 5, good.len() - 30] {
            let mut bytes = good.clone();
            bytes[at] ^= 0x01;
            place.write(SEG0, &bytes);
            let v = place.verify();
            let d = v.damage.as_ref().expect("a flipped bit is damage");
            assert_eq!(d.seq, Some(4), "{d}");
            assert!(v.torn_tail.is_none());
            assert!(place.open(LogConfig::default()).is_err());
            assert_eq!(place.read(SEG0), bytes, "nothing cut");
        }
        // Zeros from a sector boundary inside the newest frame to the end:
        // what a crash leaves of an unacknowledged write. Cut, and recorded.
        let mut bytes = good.clone();
        let from = (good.len() - 1) / 512 * 512;
        bytes[from..].fill(0);
        bytes.resize(bytes.len() + 4096, 0);
        place.write(SEG0, &bytes);
        assert!(place.verify().is_ok());
        let (log, report) = place.open(LogConfig::default()).unwrap();
        assert_eq!(report.torn.len(), 1);
        assert_eq!(log.size(), 5, "four records and the record of the cut");
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
fn a_segment_header_cut_short_is_damage_not_a_crash() {
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

        // Segments are created whole, so a header cut short is not a
        // crash: it would drop every record of the segment. Refused.
        place.write(&newest, &original[..30]);
        assert!(!place.verify().is_ok());
        assert!(place.open(cfg.clone()).is_err());
        assert_eq!(place.read(&newest), &original[..30]);
        place.write(SEG0, b"CVXAUSEG\x00");
        assert!(place.open(cfg).is_err());
    });
}
