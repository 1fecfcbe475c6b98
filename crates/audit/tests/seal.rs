//! Forward-secure sealing: records after the newest checkpoint cannot be
//! rewritten unnoticed by someone who can write the files, as long as the
//! verifier holds the seed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::Path;
use std::sync::Arc;

use carevox_audit::{
    Action, AuditLog, DamageKind, EventType, LogConfig, MemoryStorage, Outcome, Record, SealSeed,
    Signer, Timestamp, VerifyOptions, VerifyReport, verify_log_in,
};

const DIR: &str = "/log";
const SEG0: &str = "/log/seg-00000000000000000000.cva";

fn signer() -> Signer {
    Signer::from_seed(&[6; 32]).unwrap()
}

fn seed() -> SealSeed {
    SealSeed::from_bytes([0x5e; 32])
}

fn config(seed: Option<SealSeed>) -> LogConfig {
    LogConfig {
        // No checkpoint covers the records: only the seals protect them.
        checkpoint_every_records: 0,
        checkpoint_every_millis: 0,
        seal_seed: seed,
        ..LogConfig::default()
    }
}

fn rec(i: u64) -> Record {
    Record::new(
        EventType::PatientRecordAccess,
        Action::Read,
        Outcome::Success,
        Timestamp(10_000 + i),
        format!("user-{i:04}"),
        "seal-test",
    )
}

fn verify(m: &MemoryStorage, seed: Option<SealSeed>) -> VerifyReport {
    let key = signer().verifying_key();
    let opts = VerifyOptions {
        seal_seed: seed,
        ..VerifyOptions::default()
    };
    verify_log_in(m, DIR, &key, opts).unwrap()
}

fn sealed_log(n: u64) -> MemoryStorage {
    let m = MemoryStorage::new();
    let (log, _) =
        AuditLog::open_in(Arc::new(m.clone()), DIR, signer(), config(Some(seed()))).unwrap();
    for i in 0..n {
        log.append(&rec(i)).unwrap();
    }
    m
}

/// Rewrites `user-0007` to `user-0009` in the last record and fixes the
/// frame's checksum: a consistent forgery of the newest record.
fn forge_newest(m: &MemoryStorage) {
    let mut bytes = m.file_bytes(SEG0).unwrap();
    let needle = b"user-0007";
    let at = bytes
        .windows(needle.len())
        .rposition(|w| w == needle)
        .unwrap();
    bytes[at + 8] = b'9';
    // The newest frame: find its start by walking the lengths from the end
    // of the header (header length depends on nothing but the first seq 0).
    let mut off = 8 + 2 + 8 + 32 + 1 + 4;
    let mut last = off;
    while off < bytes.len() {
        last = off;
        let len = u32::from_be_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        off += len + 8;
    }
    let end = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[last..end]);
    bytes[end..].copy_from_slice(&crc.to_be_bytes());
    m.set_file_bytes(SEG0, bytes);
}

#[test]
fn a_sealed_log_verifies_with_its_seed_and_not_with_another() {
    let m = sealed_log(8);
    let v = verify(&m, Some(seed()));
    assert!(v.is_ok(), "{:?}", v.damage);
    assert_eq!(v.sealed, 8);
    let v = verify(&m, Some(SealSeed::from_bytes([1; 32])));
    assert_eq!(v.damage.unwrap().kind, DamageKind::BadSeal);
}

#[test]
fn a_forged_newest_record_passes_the_chain_but_not_the_seal() {
    let m = sealed_log(8);
    forge_newest(&m);
    // The chain alone cannot tell: the newest record has no successor and
    // no checkpoint covers it.
    assert!(verify(&m, None).is_ok());
    let d = verify(&m, Some(seed()))
        .damage
        .expect("the seal catches it");
    assert_eq!((d.kind, d.seq), (DamageKind::Modified, Some(7)));
}

#[test]
fn the_key_moves_on_with_every_group_commit_and_reopening() {
    let m = MemoryStorage::new();
    let key_path = Path::new(DIR).join("seal.key");
    let (log, _) =
        AuditLog::open_in(Arc::new(m.clone()), DIR, signer(), config(Some(seed()))).unwrap();
    let mut seen = vec![m.file_bytes(&key_path).unwrap()];
    for i in 0..5 {
        log.append(&rec(i)).unwrap();
        let now = m.file_bytes(&key_path).unwrap();
        assert!(!seen.contains(&now), "a key was used twice");
        seen.push(now);
    }
    drop(log);
    // Reopening without the seed seals on with the key file.
    let (log, _) = AuditLog::open_in(Arc::new(m.clone()), DIR, signer(), config(None)).unwrap();
    log.append(&rec(5)).unwrap();
    assert!(!seen.contains(&m.file_bytes(&key_path).unwrap()));
    drop(log);
    let v = verify(&m, Some(seed()));
    assert!(v.is_ok(), "{:?}", v.damage);
    assert_eq!(v.sealed, 6);
}

#[test]
fn deleted_or_damaged_seals_are_named() {
    let m = sealed_log(4);
    let path = Path::new(DIR).join("seals.cvs");
    let good = m.file_bytes(&path).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 10] ^= 1;
    m.set_file_bytes(&path, bad);
    assert_eq!(
        verify(&m, Some(seed())).damage.unwrap().kind,
        DamageKind::BadSeal
    );
    m.set_file_bytes(&path, Vec::new());
    assert_eq!(
        verify(&m, Some(seed())).damage.unwrap().kind,
        DamageKind::BadSeal
    );
}

#[test]
fn a_log_cut_below_its_newest_seal_is_refused_without_the_seed_too() {
    let m = sealed_log(6);
    let before = m.file_bytes(SEG0).unwrap();
    // Cut the newest record off at its frame boundary.
    let mut off = 8 + 2 + 8 + 32 + 1 + 4;
    let mut last = off;
    while off < before.len() {
        last = off;
        let len = u32::from_be_bytes(before[off..off + 4].try_into().unwrap()) as usize;
        off += len + 8;
    }
    m.set_file_bytes(SEG0, before[..last].to_vec());
    let d = verify(&m, None)
        .damage
        .expect("a seal covers the cut record");
    assert!(
        matches!(d.kind, DamageKind::Truncated { checkpoint_size: 6 }),
        "{d}"
    );
    assert!(!verify(&m, Some(seed())).is_ok());
    assert!(AuditLog::open_in(Arc::new(m.clone()), DIR, signer(), config(None)).is_err());
}
