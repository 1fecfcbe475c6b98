//! Memory stays bounded by a constant, not by the size of the files: a
//! log followed by a 1 GiB sparse tail, and one followed by 64 MiB of
//! zeros, are verified, read and opened while the allocator counts every
//! byte requested. One test per binary: the count is process-wide.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::alloc::System;
use std::fs::OpenOptions;
use std::io::Write;

use carevox_audit::for_each_record;
use carevox_audit::{
    Action, AuditLog, EventType, LogConfig, Outcome, Record, Signer, Timestamp, VerifyOptions,
    verify_log,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Every byte requested while reading, whatever the size of the garbage.
const BOUND: usize = 48 << 20;

fn signer() -> Signer {
    Signer::from_seed(&[3; 32]).unwrap()
}

fn rec(i: u64) -> Record {
    Record::new(
        EventType::Login,
        Action::Execute,
        Outcome::Success,
        Timestamp(1_000 + i),
        format!("user{i}"),
        "memory-test",
    )
}

fn config() -> LogConfig {
    LogConfig {
        segment_max_bytes: 8 << 10,
        ..LogConfig::default()
    }
}

fn measured<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let region = Region::new(GLOBAL);
    let out = f();
    let bytes = region.change().bytes_allocated;
    assert!(bytes < BOUND, "{what} allocated {bytes} bytes");
    out
}

#[test]
fn garbage_tails_do_not_grow_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (log, _) = AuditLog::open(&dir, signer(), config()).unwrap();
    for i in 0..300 {
        log.append(&rec(i)).unwrap();
    }
    let size = log.size();
    drop(log);
    let key = signer().verifying_key();
    let mut segs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cva"))
        .collect();
    segs.sort();
    assert!(segs.len() > 2);
    let newest = segs.last().unwrap().clone();
    let sealed = segs[0].clone();

    // A 1 GiB sparse tail on the newest segment: zeros, a torn tail.
    let f = OpenOptions::new().write(true).open(&newest).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len + (1 << 30)).unwrap();
    drop(f);
    let report = measured("verify", || {
        verify_log(&dir, &key, VerifyOptions::default()).unwrap()
    });
    assert!(report.is_ok(), "{:?}", report.damage);
    assert_eq!(report.records, size);
    assert_eq!(report.torn_tail.as_ref().map(|t| t.1), Some(len));
    let n = measured("read", || {
        let mut n = 0;
        for_each_record(&dir, &[], |_, _, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
        n
    });
    assert_eq!(n, size);
    measured("open", || {
        let cfg = LogConfig {
            keep_proof_tree: false,
            ..config()
        };
        let (log, report) = AuditLog::open(&dir, signer(), cfg).unwrap();
        assert_eq!(report.records, size);
        assert_eq!(report.torn.len(), 1);
        assert_eq!(report.torn[0].bytes_cut, 1 << 30);
        drop(log);
    });

    // A 1 GiB sparse tail on the checkpoint file: damage (no crash leaves
    // that much), found in bounded memory; then the file is put back.
    let cp = dir.join("checkpoints.cvc");
    let f = OpenOptions::new().write(true).open(&cp).unwrap();
    let cp_len = f.metadata().unwrap().len();
    f.set_len(cp_len + (1 << 30)).unwrap();
    let report = measured("verify with a checkpoint tail", || {
        verify_log(&dir, &key, VerifyOptions::default()).unwrap()
    });
    let d = report.damage.expect("a 1 GiB checkpoint tail is damage");
    assert_eq!((d.path.as_path(), d.offset), (cp.as_path(), cp_len));
    f.set_len(cp_len).unwrap();
    drop(f);
    assert!(
        verify_log(&dir, &key, VerifyOptions::default())
            .unwrap()
            .is_ok()
    );

    // 64 MiB of zeros written after a sealed segment: damage, located.
    let mut f = OpenOptions::new().append(true).open(&sealed).unwrap();
    let at = f.metadata().unwrap().len();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        f.write_all(&zeros).unwrap();
    }
    drop(f);
    drop(zeros);
    let report = measured("verify with damage", || {
        verify_log(&dir, &key, VerifyOptions::default()).unwrap()
    });
    let d = report.damage.expect("zeros in a sealed segment are damage");
    assert_eq!((d.path.as_path(), d.offset), (sealed.as_path(), at));
    measured("open with damage", || {
        assert!(AuditLog::open(&dir, signer(), config()).is_err());
    });
}
