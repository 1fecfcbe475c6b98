//! Checkpoints under concurrency: an on-demand checkpoint racing an
//! automatic one of the same size and time must not write it twice, and
//! the log must verify and reopen whatever the interleaving.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Barrier};

use carevox_audit::scan_checkpoints_in;
use carevox_audit::{
    Action, AuditLog, EventType, LogConfig, MemoryStorage, Outcome, Record, Signer, Storage,
    Timestamp, VerifyOptions, verify_log, verify_log_in,
};

fn signer() -> Signer {
    Signer::from_seed(&[5; 32]).unwrap()
}

fn rec(t: u64) -> Record {
    Record::new(
        EventType::Login,
        Action::Execute,
        Outcome::Success,
        Timestamp(t),
        "user",
        "race-test",
    )
}

fn every_record() -> LogConfig {
    LogConfig {
        checkpoint_every_records: 1,
        checkpoint_every_millis: 0,
        ..LogConfig::default()
    }
}

/// Checkpoints in the file never repeat and never go backwards.
fn assert_ordered(storage: &dyn Storage, dir: &std::path::Path) -> usize {
    let scan = scan_checkpoints_in(storage, &dir.join("checkpoints.cvc")).unwrap();
    assert!(scan.damage.is_none());
    for w in scan.checkpoints.windows(2) {
        let (a, b) = (&w[0].0, &w[1].0);
        assert!(
            (b.tree_size, b.time) > (a.tree_size, a.time)
                && b.tree_size >= a.tree_size
                && b.time >= a.time,
            "checkpoint {a:?} then {b:?}"
        );
    }
    scan.checkpoints.len()
}

#[test]
fn on_demand_checkpoint_racing_an_automatic_one_at_the_same_time() {
    for round in 0..300u64 {
        let storage = Arc::new(MemoryStorage::new());
        let (log, _) =
            AuditLog::open_in(storage.clone(), "/log", signer(), every_record()).unwrap();
        let log = Arc::new(log);
        let t = 1_000 + round;
        let barrier = Arc::new(Barrier::new(2));
        let appender = {
            let (log, barrier) = (Arc::clone(&log), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                log.append(&rec(t)).unwrap()
            })
        };
        barrier.wait();
        let cp = log.checkpoint(Timestamp(t)).unwrap();
        appender.join().unwrap();
        assert!(cp.tree_size <= 1);
        drop(log);
        assert_ordered(&*storage, "/log".as_ref());
        let key = signer().verifying_key();
        let report = verify_log_in(&*storage, "/log", &key, VerifyOptions::default()).unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.damage);
        AuditLog::open_in(storage, "/log", signer(), every_record()).unwrap();
    }
}

#[test]
fn many_appenders_and_checkpointers_on_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (log, _) = AuditLog::open(&dir, signer(), every_record()).unwrap();
    let log = Arc::new(log);
    let t = 5_000;
    let threads: Vec<_> = (0..6)
        .map(|k| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for _ in 0..60 {
                    if k % 2 == 0 {
                        log.append(&rec(t)).unwrap();
                    } else {
                        let cp = log.checkpoint(Timestamp(t)).unwrap();
                        assert_eq!(cp.time, Timestamp(t));
                    }
                }
            })
        })
        .collect();
    for h in threads {
        h.join().unwrap();
    }
    drop(log);
    let n = assert_ordered(&carevox_audit::FsStorage, &dir);
    assert!(n > 0);
    let key = signer().verifying_key();
    let report = verify_log(&dir, &key, VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.damage);
    assert_eq!(report.records, 180);
    AuditLog::open(&dir, signer(), every_record()).unwrap();
}
