//! No PHI or secret of a record (and each of its parts), a query, an alert,
//! a segment entry, a sealing seed, a signer, the log or an error appears in
//! `{:?}` or `{:#?}`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use carevox_audit::internal::{Entry, put_entry_frame, read_frame};
use carevox_audit::monitor::{Alert, LoginSubject, Monitor, MonitorConfig};
use carevox_audit::{
    Action, AuditLog, Detail, EventType, LogConfig, MemoryStorage, ObjectKind, ObjectRef, Outcome,
    PurposeOfUse, Query, Record, SealSeed, Signer, Timestamp, VerifyOptions,
};
use carevox_redact::{REDACTED, debug_leak};

/// A phone number, names, a patient reference, an address and free text:
/// each field below is built from one of them.
const PHI: &[&str] = &[
    "dr.jane.doe",
    "198.51.100.23",
    "Patient/98765",
    "rec-5551234",
    "corr-77aa",
    "unconscious on arrival",
    "+15551234567",
    "caller-number",
    "198.51.100.0/24",
];

/// The bytes of the sealing seed and of the signing seed, in hex and as
/// `Debug` prints a byte array.
const SECRETS: &[&str] = &["abababab", "171, 171", "5a5a5a5a", "90, 90"];

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
    r.with_detail("caller-number", "+15551234567")
}

/// Fails, naming the type, if `value` prints any needle; also checks that
/// the redaction marker is there, so the value really held something.
fn assert_redacted<T: std::fmt::Debug>(what: &str, value: &T, needles: &[&str]) {
    let leak = debug_leak(value, needles);
    assert!(leak.is_none(), "{what} leaked (needle, output): {leak:?}");
    let out = format!("{value:?}");
    assert!(out.contains(REDACTED), "{what} redacts nothing: {out}");
}

#[test]
fn a_record_and_each_of_its_parts_print_no_phi() {
    let r = record();
    assert_redacted("Record", &r, PHI);
    assert_redacted("Actor", &r.actor, PHI);
    assert_redacted("Entity", &r.entity, PHI);
    assert_redacted("ObjectRef", r.entity.object.as_ref().unwrap(), PHI);
    assert_redacted("PurposeOfUse", &r.purpose, PHI);
    assert_redacted("Detail", &r.details[0], PHI);
    let detail = Detail {
        key: "caller-number".into(),
        value: "+15551234567".into(),
    };
    assert_redacted("Detail", &detail, PHI);
    // What is safe to log still shows.
    let out = format!("{r:?}");
    for safe in ["RecordingAccess", "Read", "Success", "pbx-1", "Recording"] {
        assert!(out.contains(safe), "{safe} missing from {out}");
    }
    // The decoded record is the same type, with the same redaction.
    let decoded = Record::decode(&r.to_bytes().unwrap()).unwrap();
    assert_redacted("decoded Record", &decoded, PHI);
}

#[test]
fn a_query_prints_no_phi() {
    let q = Query {
        actor: Some("dr.jane.doe".into()),
        patient: Some("Patient/98765".into()),
        event: Some("recording_access".into()),
        ..Query::default()
    };
    assert_redacted("Query", &q, PHI);
    assert!(format!("{q:?}").contains("recording_access"));
}

#[test]
fn every_alert_prints_no_phi() {
    let at = Timestamp(1_000);
    let alerts = [
        Alert::RepeatedFailedLogins {
            subject: LoginSubject::User("dr.jane.doe".into()),
            count: 5,
            seq: 1,
            at,
        },
        Alert::RepeatedFailedLogins {
            subject: LoginSubject::Address("198.51.100.23".into()),
            count: 5,
            seq: 1,
            at,
        },
        Alert::NewNetwork {
            user: "dr.jane.doe".into(),
            network: "198.51.100.0/24".into(),
            seq: 2,
            at,
        },
        Alert::BreakTheGlass {
            user: "dr.jane.doe".into(),
            patient: Some("Patient/98765".into()),
            justification: "unconscious on arrival".into(),
            seq: 3,
            at,
        },
        Alert::OutsideWorkingHours {
            user: "dr.jane.doe".into(),
            seq: 4,
            at,
        },
        Alert::ManyPatients {
            user: "dr.jane.doe".into(),
            distinct: 30,
            seq: 5,
            at,
        },
    ];
    for a in &alerts {
        assert_redacted("Alert", a, PHI);
    }
    assert_redacted(
        "LoginSubject",
        &LoginSubject::User("dr.jane.doe".into()),
        PHI,
    );
    assert_redacted(
        "LoginSubject",
        &LoginSubject::Address("198.51.100.23".into()),
        PHI,
    );
    // An alert raised by the monitor, and the monitor that has seen PHI.
    let mut m = Monitor::new(MonitorConfig::default());
    let mut raised = Vec::new();
    m.observe(0, &record(), &mut raised);
    assert!(!raised.is_empty(), "break-the-glass raises an alert");
    assert_redacted("raised alerts", &raised, PHI);
    assert_eq!(debug_leak(&m, PHI), None);
}

#[test]
fn a_segment_entry_prints_no_record_bytes() {
    let bytes = record().to_bytes().unwrap();
    let mut frame = Vec::new();
    put_entry_frame(&mut frame, 7, &[0; 32], &bytes).unwrap();
    let (body, _) = read_frame(&frame).unwrap();
    let entry = Entry::parse(body).unwrap();
    assert_eq!(*entry.record.expose(), &bytes[..]);
    // The record's text in the clear, and its bytes as `Debug` prints a slice.
    let raw = format!("{:?}", &bytes[..16]);
    let raw = raw.trim_start_matches('[').trim_end_matches(']');
    let mut needles = PHI.to_vec();
    needles.push(raw);
    assert_redacted("Entry", &entry, &needles);
}

#[test]
fn seeds_signers_options_and_the_log_print_no_secret() {
    let seed = SealSeed::from_bytes([0xab; 32]);
    assert_redacted("SealSeed", &seed, SECRETS);
    let opts = VerifyOptions {
        seal_seed: Some(seed.clone()),
        ..VerifyOptions::default()
    };
    assert_redacted("VerifyOptions", &opts, SECRETS);
    let config = LogConfig {
        seal_seed: Some(seed.clone()),
        ..LogConfig::default()
    };
    assert_redacted("LogConfig", &config, SECRETS);
    let signer = Signer::from_seed(&[0x5a; 32]).unwrap();
    assert_redacted("Signer", &signer, SECRETS);
    let storage = MemoryStorage::new();
    let (log, _) = AuditLog::open_in(
        Arc::new(storage.clone()),
        "/log",
        signer,
        LogConfig::default(),
    )
    .unwrap();
    log.append(&record()).unwrap();
    let mut needles = PHI.to_vec();
    needles.extend_from_slice(SECRETS);
    assert_eq!(debug_leak(&log, &needles), None);
    assert_eq!(debug_leak(&storage, &needles), None);
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
    long.entity.patient = Some("Patient/98765".repeat(10_000).into());
    let err = log.append(&long).unwrap_err();
    assert_eq!(debug_leak(&err, PHI), None);
    assert!(!PHI.iter().any(|p| err.to_string().contains(p)));
}
