//! Crash safety: a child process appends from several threads and is killed
//! with SIGKILL at random moments, many times over. Every record the child
//! saw acknowledged must be in the log afterwards, the log must reopen,
//! verify, and take new appends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::print_stdout,
    clippy::disallowed_methods
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carevox_audit::for_each_record;
use carevox_audit::{
    Action, AuditLog, EventType, LogConfig, Outcome, Record, SealSeed, Signer, Timestamp,
    VerifyOptions, verify_log,
};

const DIR_ENV: &str = "CAREVOX_AUDIT_CRASH_DIR";
const TIME_ENV: &str = "CAREVOX_AUDIT_CRASH_TIME";
const THREADS: u64 = 4;
const SEAL_SEED: [u8; 32] = [0x33; 32];

fn signer() -> Signer {
    Signer::from_seed(&[11; 32]).unwrap()
}

fn config() -> LogConfig {
    LogConfig {
        checkpoint_every_records: 50,
        checkpoint_every_millis: 0,
        segment_max_bytes: 32 << 10,
        seal_seed: Some(SealSeed::from_bytes(SEAL_SEED)),
        ..LogConfig::default()
    }
}

fn record(time: u64, thread: u64, i: u64) -> Record {
    let mut r = Record::new(
        EventType::VoicemailAccess,
        Action::Read,
        Outcome::Success,
        Timestamp(time),
        format!("writer{thread}"),
        "crash-test",
    );
    r.entity.patient = Some(format!("Patient/{}", i % 17).into());
    r.with_detail("thread", thread.to_string())
        .with_detail("i", i.to_string())
        .with_detail("pad", "x".repeat(100))
}

/// The child half of the crash test: appends until killed, printing
/// `ack SEQ THREAD I` for each acknowledged record.
///
/// `kill_9_during_concurrent_appends` (the parent half) re-executes this
/// test binary with `--exact crash_child --ignored` and the log directory in
/// the environment, then kills the process with SIGKILL. A test binary is
/// the one executable an integration test can count on, hence this shape;
/// the test is ignored so that an ordinary run never starts it on its own
/// (without the environment it would fail at once).
#[test]
#[ignore = "child process of kill_9_during_concurrent_appends"]
fn crash_child() {
    let dir = std::env::var(DIR_ENV).expect("run by the crash test");
    let time: u64 = std::env::var(TIME_ENV).unwrap().parse().unwrap();
    let (log, _) = AuditLog::open(&dir, signer(), config()).unwrap();
    let log = Arc::new(log);
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            let out = Arc::clone(&out);
            std::thread::spawn(move || {
                for i in 0.. {
                    if t == 0 && i % 5 == 4 {
                        // The batched API too.
                        let batch: Vec<_> = (0..3).map(|k| record(time, t, i * 10 + k)).collect();
                        let seqs = log.append_batch(&batch).unwrap();
                        let mut o = out.lock().unwrap();
                        for (k, seq) in seqs.enumerate() {
                            writeln!(o, "ack {seq} {t} {}", i * 10 + k as u64).unwrap();
                        }
                        o.flush().unwrap();
                    } else {
                        let seq = log.append(&record(time, t, i * 10)).unwrap();
                        let mut o = out.lock().unwrap();
                        writeln!(o, "ack {seq} {t} {}", i * 10).unwrap();
                        o.flush().unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// The writers' records by sequence number, and how many records say what
/// recovery cut.
fn records_on_disk(dir: &Path) -> (BTreeMap<u64, (String, String)>, usize) {
    let mut m = BTreeMap::new();
    let mut recoveries = 0;
    for_each_record(dir, &[], |seq, r, _| {
        if r.event == EventType::LogRecovery {
            recoveries += 1;
            return Ok(());
        }
        let get = |k: &str| {
            let d = r.details.iter().find(|d| d.key.expose() == k).unwrap();
            d.value.expose().clone()
        };
        m.insert(seq, (get("thread"), get("i")));
        Ok(())
    })
    .unwrap();
    (m, recoveries)
}

#[test]
fn kill_9_during_concurrent_appends() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let key = signer().verifying_key();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut total_acked = 0usize;
    let mut torn_seen = 0usize;
    for round in 0..24u64 {
        let time = 1_000 + round * 10;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, dir.path())
            .env(TIME_ENV, time.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let acks = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let acks = Arc::clone(&acks);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let mut parts = line.split_whitespace();
                    if parts.next() == Some("ack") {
                        let seq: u64 = parts.next().unwrap().parse().unwrap();
                        let t = parts.next().unwrap().to_owned();
                        let i = parts.next().unwrap().to_owned();
                        acks.lock().unwrap().push((seq, t, i));
                    }
                }
            })
        };
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(40 + rng % 260));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        if round % 4 == 3 {
            // Also simulate a power cut in the middle of a write: half a
            // frame at the end of the newest segment.
            let mut segs: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "cva"))
                .collect();
            segs.sort();
            let newest = segs.last().unwrap();
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(newest)
                .unwrap();
            f.write_all(&[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 7, 1, 2, 3])
                .unwrap();
        }

        let (log, report) = AuditLog::open(dir.path(), signer(), config())
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        torn_seen += report.torn.len();
        let (on_disk, recoveries) = records_on_disk(dir.path());
        // Every cut is itself in the log.
        assert_eq!(recoveries, torn_seen, "round {round}: a silent cut");
        let acks = acks.lock().unwrap();
        for (seq, t, i) in acks.iter() {
            let got = on_disk
                .get(seq)
                .unwrap_or_else(|| panic!("round {round}: acknowledged record {seq} lost"));
            assert_eq!(
                got,
                &(t.clone(), i.clone()),
                "round {round}: record {seq} differs"
            );
        }
        total_acked += acks.len();
        // Still appendable, still verifiable.
        log.append(&record(time + 5, 99, round)).unwrap();
        drop(log);
        let opts = VerifyOptions {
            seal_seed: Some(SealSeed::from_bytes(SEAL_SEED)),
            ..VerifyOptions::default()
        };
        let v = verify_log(dir.path(), &key, opts).unwrap();
        assert_eq!(v.sealed, v.records, "round {round}: every record is sealed");
        assert!(v.is_ok(), "round {round}: {:?}", v.damage);
    }
    assert!(total_acked > 0, "the child acknowledged nothing");
    assert!(torn_seen >= 6, "the simulated torn writes were cut");
    println!("{total_acked} acknowledged records survived 24 kills; {torn_seen} torn tails cut");
}
