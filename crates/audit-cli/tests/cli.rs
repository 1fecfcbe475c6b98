//! The `carevox-audit` command-line tool, run as a real process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::Path;
use std::process::{Command, Output};

use carevox_audit::internal::{SegmentHeader, read_frame};
use carevox_audit::{Action, AuditLog, EventType, LogConfig, Outcome, Record, Signer, Timestamp};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carevox-audit"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// 30 records: users u0..u2, patients P0..P4, one minute apart.
fn build(dir: &Path) -> String {
    let signer = Signer::from_seed(&[3; 32]).unwrap();
    let key = signer.verifying_key().to_hex();
    let cfg = LogConfig {
        checkpoint_every_records: 8,
        ..LogConfig::default()
    };
    let (log, _) = AuditLog::open(dir, signer, cfg).unwrap();
    for i in 0..30u64 {
        let event = if i % 2 == 0 {
            EventType::RecordingAccess
        } else {
            EventType::Login
        };
        let mut r = Record::new(
            event,
            Action::Read,
            Outcome::Success,
            Timestamp(1_772_352_000_000 + i * 60_000), // 2026-03-01T08:00Z + i min
            format!("u{}", i % 3),
            "pbx",
        );
        r.entity.patient = Some(format!("P{}", i % 5).into());
        log.append(&r).unwrap();
    }
    log.checkpoint(Timestamp(1_772_400_000_000)).unwrap();
    key
}

#[test]
fn verify_reports_ok_and_names_damage() {
    let dir = tempfile::tempdir().unwrap();
    let key = build(dir.path());
    let d = dir.path().to_str().unwrap();
    let out = cli(&["verify", d, "--key", &key]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("ok: 30 records"),
        "{}",
        text(&out.stdout)
    );

    // The key as a file of raw bytes works too.
    let key_file = dir.path().join("key.bin");
    std::fs::write(
        &key_file,
        data_encoding::HEXLOWER.decode(key.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(
        cli(&["verify", d, "--key", key_file.to_str().unwrap()])
            .status
            .success()
    );

    // Flip a byte inside record 11.
    let seg = dir.path().join("seg-00000000000000000000.cva");
    let mut bytes = std::fs::read(&seg).unwrap();
    let (_, mut off) = SegmentHeader::decode(&bytes).unwrap();
    for _ in 0..11 {
        off += read_frame(&bytes[off..]).unwrap().1;
    }
    bytes[off + 60] ^= 0x20;
    std::fs::write(&seg, &bytes).unwrap();
    let out = cli(&["verify", d, "--key", &key]);
    assert_eq!(out.status.code(), Some(1));
    let s = text(&out.stdout);
    assert!(s.contains("first bad record: 11"), "{s}");
    assert!(s.contains("modified record"), "{s}");
}

#[test]
fn rollback_against_an_external_head() {
    let dir = tempfile::tempdir().unwrap();
    let key = build(dir.path());
    let d = dir.path().to_str().unwrap();
    let head = cli(&["head", d]);
    assert!(head.status.success());
    let trusted = dir.path().join("trusted.json");
    std::fs::write(&trusted, &head.stdout).unwrap();
    // Replace the log by a shorter one signed with the same key.
    let other = tempfile::tempdir().unwrap();
    let signer = Signer::from_seed(&[3; 32]).unwrap();
    let (log, _) = AuditLog::open(other.path(), signer, LogConfig::default()).unwrap();
    log.append(&Record::new(
        EventType::Login,
        Action::Execute,
        Outcome::Success,
        Timestamp(1),
        "x",
        "y",
    ))
    .unwrap();
    drop(log);
    let o = other.path().to_str().unwrap();
    assert!(cli(&["verify", o, "--key", &key]).status.success());
    let out = cli(&[
        "verify",
        o,
        "--key",
        &key,
        "--trusted",
        trusted.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("rollback"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn export_jsonl_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let out = cli(&["export", dir.path().to_str().unwrap(), "--format", "jsonl"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 30);
    let v: serde_json::Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!(v["seq"], 3);
    assert_eq!(v["actor"]["user_id"], "u0");
    assert_eq!(v["occurred"], "2026-03-01T08:03:00.000Z");
    let r: Record = serde_json::from_value(v).unwrap();
    assert_eq!(
        r.entity.patient.as_ref().map(|p| p.expose().as_str()),
        Some("P3")
    );
}

fn seqs(out: &Output) -> Vec<u64> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn query_through_a_rebuildable_index() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    let first = cli(&["query", d, "--patient", "P2"]);
    assert!(text(&first.stderr).contains("index rebuilt"));
    assert_eq!(seqs(&first), vec![2, 7, 12, 17, 22, 27]);
    let again = cli(&["query", d, "--patient", "P2", "--actor", "u1"]);
    assert!(
        !text(&again.stderr).contains("rebuilt"),
        "the index is current"
    );
    assert_eq!(seqs(&again), vec![7, 22]);
    let ranged = cli(&[
        "query",
        d,
        "--event",
        "recording_access",
        "--from",
        "2026-03-01T08:10:00Z",
        "--to",
        "2026-03-01T08:14:00Z",
    ]);
    assert_eq!(seqs(&ranged), vec![10, 12, 14]);

    // The index is derived data: destroy it, rebuild it, same answers.
    std::fs::write(dir.path().join("index.cvi"), b"garbage").unwrap();
    assert_eq!(
        seqs(&cli(&["query", d, "--actor", "u2"])),
        (0..30).filter(|i| i % 3 == 2).collect::<Vec<_>>()
    );
    let re = cli(&["reindex", d]);
    assert!(text(&re.stdout).contains("indexed 30 records"));

    // New records make the index stale; the query notices and rebuilds.
    let (log, _) = AuditLog::open(
        dir.path(),
        Signer::from_seed(&[3; 32]).unwrap(),
        LogConfig::default(),
    )
    .unwrap();
    let mut r = Record::new(
        EventType::Login,
        Action::Execute,
        Outcome::Success,
        Timestamp(1_772_500_000_000),
        "u9",
        "pbx",
    );
    r.entity.patient = Some("P2".into());
    log.append(&r).unwrap();
    drop(log);
    let after = cli(&["query", d, "--patient", "P2"]);
    assert!(text(&after.stderr).contains("rebuilt"));
    assert_eq!(seqs(&after), vec![2, 7, 12, 17, 22, 27, 30]);
}

#[test]
fn usage_errors_exit_with_two() {
    assert_eq!(cli(&[]).status.code(), Some(2));
    assert_eq!(cli(&["verify", "/nonexistent"]).status.code(), Some(2));
    assert_eq!(
        cli(&["export", "/tmp", "--format", "xml"]).status.code(),
        Some(2)
    );
    assert_eq!(cli(&["frobnicate", "/tmp"]).status.code(), Some(2));
}

#[test]
fn monitor_prints_typed_alerts() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let d = dir.path().to_str().unwrap();
    // 30 records of 3 users over 5 patients, 08:00-08:29 UTC.
    let out = cli(&[
        "monitor",
        d,
        "--many-patients",
        "5",
        "--hours",
        "08:10-17:00",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let alerts: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let outside = alerts
        .iter()
        .filter(|a| a["alert"] == "outside_working_hours")
        .count();
    assert_eq!(outside, 10, "records 0..10 are before 08:10");
    assert!(alerts.iter().any(|a| a["alert"] == "many_patients"));
}

#[test]
fn help_and_version_exit_zero() {
    let help = cli(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("verify"));
    let version = cli(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(text(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(cli(&["verify", "--help"]).status.code(), Some(0));
}

#[test]
fn piped_runs_show_no_progress() {
    let dir = tempfile::tempdir().unwrap();
    let key = build(dir.path());
    let d = dir.path().to_str().unwrap();
    let out = cli(&["verify", d, "--key", &key]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let out = cli(&["export", d, "--format", "jsonl"]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}
