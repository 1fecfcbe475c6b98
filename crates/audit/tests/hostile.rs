//! Hostile files: segments and checkpoint files built by hand, the way an
//! attacker or a broken disk would leave them. Opening and verifying must
//! agree on every one of them, and neither may panic or overflow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::Path;
use std::sync::Arc;

use carevox_audit::for_each_record_in;
use carevox_audit::{
    Action, AuditLog, DamageKind, EventType, LogConfig, MemoryStorage, Outcome, Record, Signer,
    Storage, Timestamp, VerifyOptions, VerifyReport, verify_log_in,
};
use sha2::{Digest, Sha256};

const DIR: &str = "/log";

fn signer() -> Signer {
    Signer::from_seed(&[9; 32]).unwrap()
}

fn rec(i: u64) -> Record {
    Record::new(
        EventType::Login,
        Action::Execute,
        Outcome::Success,
        Timestamp(1_000 + i),
        format!("user{i}"),
        "hostile-test",
    )
}

fn leaf(body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(body);
    h.finalize().into()
}

/// A segment header for `first_seq` with the given frontier nodes.
fn header(first_seq: u64, prev: [u8; 32], nodes: &[[u8; 32]]) -> Vec<u8> {
    let mut out = b"CVXAUSEG".to_vec();
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&first_seq.to_be_bytes());
    out.extend_from_slice(&prev);
    out.push(nodes.len() as u8);
    for n in nodes {
        out.extend_from_slice(n);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// A frame around `body` with a correct checksum.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn entry(seq: u64, prev: [u8; 32], record: &[u8]) -> Vec<u8> {
    let mut body = seq.to_be_bytes().to_vec();
    body.extend_from_slice(&prev);
    body.extend_from_slice(record);
    body
}

fn verify(storage: &MemoryStorage) -> VerifyReport {
    let key = signer().verifying_key();
    verify_log_in(storage, DIR, &key, VerifyOptions::default()).unwrap()
}

fn open(storage: &MemoryStorage) -> carevox_audit::Result<AuditLog> {
    AuditLog::open_in(
        Arc::new(storage.clone()),
        DIR,
        signer(),
        LogConfig::default(),
    )
    .map(|l| l.0)
}

/// Opening refuses exactly when verifying finds damage.
fn assert_agree(storage: &MemoryStorage) -> VerifyReport {
    let report = verify(storage);
    let opened = open(&storage.snapshot());
    assert_eq!(
        report.is_ok(),
        opened.is_ok(),
        "verify says {:?}, open says {:?}",
        report.damage,
        opened.err()
    );
    report
}

fn a_log(n: u64) -> MemoryStorage {
    let storage = MemoryStorage::new();
    let (log, _) = AuditLog::open_in(
        Arc::new(storage.clone()),
        DIR,
        signer(),
        LogConfig::default(),
    )
    .unwrap();
    for i in 0..n {
        log.append(&rec(i)).unwrap();
    }
    log.checkpoint(Timestamp(5_000)).unwrap();
    storage
}

#[test]
fn a_duplicated_checkpoint_is_refused_by_both() {
    let storage = a_log(3);
    let path = Path::new(DIR).join("checkpoints.cvc");
    let mut bytes = storage.file_bytes(&path).unwrap();
    let last = bytes[bytes.len() - 8 - 145..].to_vec();
    bytes.extend_from_slice(&last);
    storage.set_file_bytes(&path, bytes);
    let report = assert_agree(&storage);
    assert_eq!(report.damage.unwrap().kind, DamageKind::ReplacedCheckpoint);
}

#[test]
fn a_record_that_does_not_decode_is_refused_by_both() {
    let storage = a_log(2);
    let seg = Path::new(DIR).join("seg-00000000000000000000.cva");
    let mut bytes = storage.file_bytes(&seg).unwrap();
    // Append a frame that continues the chain and has a valid checksum,
    // but whose record is not a canonical record encoding.
    let mut prev = [0u8; 32];
    let mut seq = 0;
    for_each_record_in(&storage, Path::new(DIR), &[], |s, _, _| {
        seq = s + 1;
        Ok(())
    })
    .unwrap();
    let (_, head) = for_each_record_in(&storage, Path::new(DIR), &[], |_, _, _| Ok(())).unwrap();
    prev.copy_from_slice(&head);
    bytes.extend_from_slice(&frame(&entry(seq, prev, b"\xffnot a record")));
    storage.set_file_bytes(&seg, bytes);
    let report = assert_agree(&storage);
    let d = report.damage.unwrap();
    assert_eq!((d.kind, d.seq), (DamageKind::Modified, Some(2)));
}

/// A header whose frontier has one node per set bit of `first_seq`.
fn header_at(first_seq: u64) -> Vec<u8> {
    let nodes = vec![[7u8; 32]; first_seq.count_ones() as usize];
    header(first_seq, [1; 32], &nodes)
}

#[test]
fn a_segment_at_the_last_sequence_number_is_a_typed_error_not_a_panic() {
    for first in [u64::MAX, u64::MAX - 1] {
        let storage = MemoryStorage::new();
        storage.create_dir(Path::new(DIR)).unwrap();
        let mut bytes = header_at(first);
        let mut prev = [1u8; 32];
        for k in 0..3u64 {
            let body = entry(first.wrapping_add(k), prev, &rec(k).to_bytes().unwrap());
            prev = leaf(&body);
            bytes.extend_from_slice(&frame(&body));
        }
        let name = format!("seg-{first:020}.cva");
        storage.set_file_bytes(Path::new(DIR).join(name), bytes);
        let report = assert_agree(&storage);
        let d = report.damage.expect("overflow is damage");
        assert_eq!(d.kind, DamageKind::SequenceOverflow, "{d}");
        assert_eq!(d.seq, Some(u64::MAX));
        let r = for_each_record_in(&storage, Path::new(DIR), &[], |_, _, _| Ok(()));
        assert!(r.is_err());
    }
}

#[test]
fn a_header_only_segment_at_the_last_sequence_number_refuses_appends() {
    let storage = MemoryStorage::new();
    storage.create_dir(Path::new(DIR)).unwrap();
    let name = format!("seg-{:020}.cva", u64::MAX);
    storage.set_file_bytes(Path::new(DIR).join(name), header_at(u64::MAX));
    let report = assert_agree(&storage);
    assert_eq!(report.records, 0);
    let log = open(&storage).unwrap();
    assert!(matches!(
        log.append(&rec(0)),
        Err(carevox_audit::Error::SequenceOverflow)
    ));
}

#[test]
fn frontier_push_past_the_last_size_is_an_error() {
    let f = carevox_audit::Frontier::from_parts(u64::MAX, vec![[0; 32]; 64]).unwrap();
    let mut g = f.clone();
    assert!(g.push([1; 32]).is_err());
    assert_eq!(g, f);
}

#[test]
fn a_flipped_bit_in_the_newest_checkpoint_is_damage_not_a_torn_tail() {
    let storage = a_log(3);
    let path = Path::new(DIR).join("checkpoints.cvc");
    let good = storage.file_bytes(&path).unwrap();
    for back in [1, 20, 80, 150] {
        let s = storage.snapshot();
        let mut bytes = good.clone();
        let at = bytes.len() - back;
        bytes[at] ^= 0x04;
        s.set_file_bytes(&path, bytes.clone());
        let report = assert_agree(&s);
        assert!(!report.is_ok(), "flip {back} bytes from the end");
        assert_eq!(s.file_bytes(&path).unwrap(), bytes, "nothing cut");
    }
}

#[test]
fn a_long_checkpoint_file_is_read_in_windows() {
    // More checkpoints than one read window holds, then a torn one.
    let storage = MemoryStorage::new();
    let cfg = LogConfig {
        checkpoint_every_records: 1,
        checkpoint_every_millis: 0,
        ..LogConfig::default()
    };
    let (log, _) =
        AuditLog::open_in(Arc::new(storage.clone()), DIR, signer(), cfg.clone()).unwrap();
    for i in 0..8_000 {
        log.append(&rec(i)).unwrap();
    }
    drop(log);
    let path = Path::new(DIR).join("checkpoints.cvc");
    let good = storage.file_bytes(&path).unwrap();
    assert!(good.len() > 1 << 20);
    let report = verify(&storage);
    assert!(report.is_ok(), "{:?}", report.damage);
    assert_eq!(report.checkpoints, 8_000);
    let mut torn = good.clone();
    torn.extend_from_slice(&good[good.len() - 153..good.len() - 100]);
    storage.set_file_bytes(&path, torn);
    let report = assert_agree(&storage);
    assert!(report.is_ok());
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 60] ^= 1;
    storage.set_file_bytes(&path, bad);
    assert!(!assert_agree(&storage).is_ok());
}
