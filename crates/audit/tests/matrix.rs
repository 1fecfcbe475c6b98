//! The tamper matrix: every byte class of a record frame (length,
//! sequence number, chain hash, record body, checksum) at the start, the
//! middle and the newest end of the log, with and without a covering
//! checkpoint, with and without the checksum recomputed, plus sealing. Each
//! case is either detected and located at the record, or one of the
//! limits the README names, checked to be exactly that limit.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::Path;
use std::sync::Arc;

use carevox_audit::internal::{SegmentHeader, read_frame};
use carevox_audit::{
    Action, AuditLog, DamageKind, EventType, LogConfig, MemoryStorage, Outcome, Record, SealSeed,
    Signer, Timestamp, VerifyOptions, VerifyReport, verify_log_in,
};

const DIR: &str = "/log";
const SEG0: &str = "/log/seg-00000000000000000000.cva";
const N: u64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Length,
    Sequence,
    ChainHash,
    Body,
    Checksum,
}

const CLASSES: [Class; 5] = [
    Class::Length,
    Class::Sequence,
    Class::ChainHash,
    Class::Body,
    Class::Checksum,
];

fn signer() -> Signer {
    Signer::from_seed(&[2; 32]).unwrap()
}

fn seed() -> SealSeed {
    SealSeed::from_bytes([0x44; 32])
}

fn build(checkpoint: bool, sealed: bool) -> MemoryStorage {
    let m = MemoryStorage::new();
    let cfg = LogConfig {
        checkpoint_every_records: 0,
        checkpoint_every_millis: 0,
        seal_seed: sealed.then(seed),
        ..LogConfig::default()
    };
    let (log, _) = AuditLog::open_in(Arc::new(m.clone()), DIR, signer(), cfg).unwrap();
    for i in 0..N {
        let r = Record::new(
            EventType::PatientRecordAccess,
            Action::Read,
            Outcome::Success,
            Timestamp(1_000 + i),
            format!("user-{i}"),
            "matrix",
        )
        .with_detail("n", i.to_string());
        log.append(&r).unwrap();
    }
    if checkpoint {
        log.checkpoint(Timestamp(9_999)).unwrap();
    }
    m
}

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

fn verify(m: &MemoryStorage, sealed: bool) -> VerifyReport {
    let opts = VerifyOptions {
        seal_seed: sealed.then(seed),
        ..VerifyOptions::default()
    };
    verify_log_in(m, DIR, &signer().verifying_key(), opts).unwrap()
}

/// The byte of `class` inside the frame `(start, end)`.
fn byte_of(class: Class, (start, end): (usize, usize)) -> usize {
    match class {
        Class::Length => start + 3,
        Class::Sequence => start + 4 + 7,
        Class::ChainHash => start + 12 + 5,
        Class::Body => start + 44 + (end - start - 48) / 2,
        Class::Checksum => end - 2,
    }
}

#[test]
fn every_byte_class_everywhere() {
    for checkpoint in [true, false] {
        for sealed in [false, true] {
            let m = build(checkpoint, sealed);
            let good = m.file_bytes(SEG0).unwrap();
            let fr = frames(&good);
            for k in [0usize, N as usize / 2, N as usize - 1] {
                for class in CLASSES {
                    for fix_crc in [false, true] {
                        if fix_crc && matches!(class, Class::Length | Class::Checksum) {
                            continue; // not a separate case: the frame no longer parses
                        }
                        let case = format!(
                            "record {k} {class:?} checkpoint={checkpoint} sealed={sealed} fix_crc={fix_crc}"
                        );
                        let mut bytes = good.clone();
                        let at = byte_of(class, fr[k]);
                        bytes[at] ^= 0x01;
                        if fix_crc {
                            let (s, e) = fr[k];
                            let crc = crc32fast::hash(&bytes[s..e - 4]);
                            bytes[e - 4..e].copy_from_slice(&crc.to_be_bytes());
                        }
                        let t = m.snapshot();
                        t.set_file_bytes(SEG0, bytes.clone());
                        let v = verify(&t, sealed);
                        let opened = AuditLog::open_in(
                            Arc::new(t.snapshot()),
                            DIR,
                            signer(),
                            LogConfig::default(),
                        );
                        // Opening does not hold the seed: it agrees with
                        // the verifier's checks other than the seals.
                        let plain = verify(&t, false);
                        assert_eq!(
                            plain.is_ok(),
                            opened.is_ok(),
                            "{case}: open and verify agree"
                        );
                        let newest = k == N as usize - 1;
                        match &v.damage {
                            Some(d) => {
                                // Located at the record, or (a changed chain
                                // hash with its checksum fixed) at the one
                                // before, whose hash no longer matches.
                                // A signed root that no longer matches names
                                // the range since the last matching
                                // checkpoint: it starts at or before the record.
                                let seq = d.seq.unwrap_or(u64::MAX);
                                let root_range =
                                    d.kind == DamageKind::RootMismatch && seq <= k as u64;
                                assert!(
                                    seq == k as u64
                                        || root_range
                                        || (class == Class::ChainHash && seq + 1 == k as u64)
                                        || (newest && seq == N),
                                    "{case}: located at {d}"
                                );
                            }
                            None => {
                                // The documented limits, and only those.
                                let torn_length = newest
                                    && class == Class::Length
                                    && !checkpoint
                                    && !sealed
                                    && v.torn_tail.is_some();
                                let unprotected_newest =
                                    newest && fix_crc && !checkpoint && !sealed;
                                assert!(torn_length || unprotected_newest, "{case}: undetected");
                                if torn_length {
                                    // Cut, and the cut is recorded.
                                    let (log, report) = opened.unwrap();
                                    assert_eq!(report.torn.len(), 1, "{case}");
                                    assert_eq!(log.size(), N, "{case}");
                                }
                            }
                        }
                        assert_eq!(
                            t.file_bytes(SEG0).unwrap(),
                            bytes,
                            "{case}: verify cut nothing"
                        );
                    }
                }
            }
            // Segment header bytes: every one.
            let (_, hlen) = SegmentHeader::decode(&good).unwrap();
            for at in [0, 9, 17, 30, 50, hlen - 1] {
                let mut bytes = good.clone();
                bytes[at] ^= 0x20;
                let t = m.snapshot();
                t.set_file_bytes(SEG0, bytes);
                assert!(!verify(&t, sealed).is_ok(), "header byte {at}");
            }
            // Checkpoint bytes, newest one.
            if checkpoint {
                let cp = Path::new(DIR).join("checkpoints.cvc");
                let cbytes = m.file_bytes(&cp).unwrap();
                for back in [3, 40, 100, 150] {
                    let mut b = cbytes.clone();
                    let n = b.len();
                    b[n - back] ^= 0x02;
                    let t = m.snapshot();
                    t.set_file_bytes(&cp, b);
                    assert!(!verify(&t, sealed).is_ok(), "checkpoint byte -{back}");
                }
            }
        }
    }
}
