//! The query index is checked against the log before any answer: entries
//! deleted or changed in the index file never make a query silently
//! incomplete.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::path::Path;
use std::sync::Arc;

use carevox_audit::{
    Action, AuditLog, EventType, INDEX_FILE, Index, LogConfig, MemoryStorage, Outcome, Query,
    Record, Signer, Timestamp,
};

const DIR: &str = "/log";
const ENTRY_LEN: usize = 56;
const HEADER_LEN: usize = 50;

fn log_with_patients() -> MemoryStorage {
    let m = MemoryStorage::new();
    let signer = Signer::from_seed(&[8; 32]).unwrap();
    let (log, _) =
        AuditLog::open_in(Arc::new(m.clone()), DIR, signer, LogConfig::default()).unwrap();
    for i in 0..12u64 {
        let mut r = Record::new(
            EventType::PatientRecordAccess,
            Action::Read,
            Outcome::Success,
            Timestamp(1_000 + i),
            "dr.x",
            "index-test",
        );
        r.entity.patient = Some(format!("Patient/{}", i % 3).into());
        log.append(&r).unwrap();
    }
    m
}

fn patient_x(m: &MemoryStorage) -> (Vec<u64>, bool) {
    let (idx, rebuilt) = Index::open_current_in(m, Path::new(DIR), &[]).unwrap();
    let q = Query {
        patient: Some("Patient/1".into()),
        ..Query::default()
    };
    let hits = idx.query_in(m, Path::new(DIR), &[], &q).unwrap();
    (hits.into_iter().map(|(s, _)| s).collect(), rebuilt)
}

#[test]
fn deleted_or_changed_index_entries_are_caught_and_rebuilt() {
    let m = log_with_patients();
    let (all, rebuilt) = patient_x(&m);
    assert!(rebuilt);
    assert_eq!(all, vec![1, 4, 7, 10]);
    assert_eq!(patient_x(&m), (all.clone(), false));
    let path = Path::new(DIR).join(INDEX_FILE);
    let good = m.file_bytes(&path).unwrap();

    // Drop the entries of one patient, keep the header's size and head.
    let mut kept = good[..HEADER_LEN].to_vec();
    for (i, e) in good[HEADER_LEN..].chunks(ENTRY_LEN).enumerate() {
        if i % 3 != 1 {
            kept.extend_from_slice(e);
        }
    }
    m.set_file_bytes(&path, kept);
    assert_eq!(patient_x(&m), (all.clone(), true));

    // Change one entry's patient key.
    let mut changed = good.clone();
    changed[HEADER_LEN + ENTRY_LEN + 24] ^= 1;
    m.set_file_bytes(&path, changed);
    assert_eq!(patient_x(&m), (all, true));
}
