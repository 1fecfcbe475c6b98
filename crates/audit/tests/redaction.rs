//! No PHI of a record, a query, an alert or an error appears in `{:?}` or
//! `{:#?}`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use carevox_audit::monitor::{Monitor, MonitorConfig};
use carevox_audit::{
    Action, AuditLog, EventType, LogConfig, MemoryStorage, ObjectKind, ObjectRef, Outcome,
    PurposeOfUse, Query, Record, SealSeed, Signer, Timestamp, VerifyOptions,
};
use carevox_redact::debug_leak;

const PHI: &[&str] = &[
    "dr.jane.doe",
    "198.51.100.23",
    "Patient/98765",
    "rec-5551234",
    "corr-77aa",
    "unconscious on arrival",
    "+15551234567",
];

fn record() -> Record {
    let mut r = Record::new(
        EventType::RecordingAccess,
        Action::Read,
        Outcome::Success,
        Timestamp(1_000),
        "dr.jane.doe",
        "pbx-1",
    );
    r.actor.network_address = Some("198.51.100.23".into());
    r.entity.patient = Some("Patient/98765".into());
    r.entity.object = Some(ObjectRef {
        kind: ObjectKind::Recording,
        id: "rec-5551234".into(),
    });
    r.correlation_id = Some("corr-77aa".into());
    r.purpose = PurposeOfUse::Emergency {
        justification: "unconscious on arrival".into(),
    };
    r.with_detail("caller", "+15551234567")
}

#[test]
fn records_queries_alerts_and_options_do_not_print_phi() {
    assert_eq!(debug_leak(&record(), PHI), None);
    let q = Query {
        actor: Some("dr.jane.doe".into()),
        patient: Some("Patient/98765".into()),
        ..Query::default()
    };
    assert_eq!(debug_leak(&q, PHI), None);
    let mut m = Monitor::new(MonitorConfig::default());
    let mut alerts = Vec::new();
    m.observe(0, &record(), &mut alerts);
    assert!(!alerts.is_empty(), "break-the-glass raises an alert");
    assert_eq!(debug_leak(&alerts, PHI), None);
    let seed = SealSeed::from_bytes([0xab; 32]);
    let opts = VerifyOptions {
        seal_seed: Some(seed.clone()),
        ..VerifyOptions::default()
    };
    assert_eq!(debug_leak(&opts, &["abababab", "171, 171"]), None);
    assert_eq!(debug_leak(&seed, &["abababab", "171, 171"]), None);
}

#[test]
fn errors_do_not_print_phi() {
    let storage = MemoryStorage::new();
    let signer = Signer::from_seed(&[1; 32]).unwrap();
    let (log, _) =
        AuditLog::open_in(Arc::new(storage), "/log", signer, LogConfig::default()).unwrap();
    log.append(&record()).unwrap();
    let mut early = record();
    early.recorded = Timestamp(10);
    let err = log.append(&early).unwrap_err();
    assert_eq!(debug_leak(&err, PHI), None);
    assert!(!PHI.iter().any(|p| err.to_string().contains(p)));
    let mut long = record();
    long.entity.patient = Some("Patient/98765".repeat(10_000));
    let err = log.append(&long).unwrap_err();
    assert_eq!(debug_leak(&err, PHI), None);
    assert!(!PHI.iter().any(|p| err.to_string().contains(p)));
}
