//! Property tests: canonical encodings round-trip, decoders never panic on
//! arbitrary bytes, Merkle proofs verify and reject tampering, and the
//! verifier reports (never panics on) randomly damaged logs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use carevox_audit::internal::scan_checkpoint_bytes;
use carevox_audit::internal::{Entry, SegmentHeader, read_frame};
use carevox_audit::merkle::{MerkleTree, leaf_hash, verify_consistency, verify_inclusion};
use carevox_audit::{
    Action, Actor, AuthMethod, Checkpoint, Detail, Entity, EventType, LogConfig, ObjectKind,
    ObjectRef, Outcome, PurposeOfUse, Record, Signer, Timestamp, VerifyOptions, verify_log,
};
use carevox_redact::Pii;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 /._:-]{0,12}"
}

fn record() -> impl Strategy<Value = Record> {
    (
        (0u8..14, text()),
        0u8..6,
        0u8..4,
        (any::<u64>(), any::<u64>()),
        (
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
            0u8..7,
        ),
        (0u8..5, text()),
        (
            proptest::option::of(text()),
            proptest::option::of((0u8..7, text())),
        ),
        (text(), proptest::option::of(text())),
        proptest::collection::vec((text(), text()), 0..4),
    )
        .prop_map(
            |(ev, act, out, (occ, rec), actor, purpose, entity, (src, corr), details)| {
                let event = match ev.0 {
                    0 => EventType::Login,
                    1 => EventType::Logout,
                    2 => EventType::PatientRecordAccess,
                    3 => EventType::RecordingAccess,
                    4 => EventType::VoicemailAccess,
                    5 => EventType::CallStart,
                    6 => EventType::CallEnd,
                    7 => EventType::Disclosure,
                    8 => EventType::Export,
                    9 => EventType::PermissionChange,
                    10 => EventType::ConfigurationChange,
                    11 => EventType::KeyManagement,
                    _ => EventType::Other(ev.1),
                };
                let action = [
                    Action::Create,
                    Action::Read,
                    Action::Update,
                    Action::Delete,
                    Action::Execute,
                ]
                .get(usize::from(act))
                .cloned()
                .unwrap_or(Action::Other("approve".into()));
                let outcome = [
                    Outcome::Success,
                    Outcome::MinorFailure,
                    Outcome::SeriousFailure,
                    Outcome::MajorFailure,
                ][usize::from(out)];
                let auth = [
                    AuthMethod::None,
                    AuthMethod::Password,
                    AuthMethod::PasswordMfa,
                    AuthMethod::Certificate,
                    AuthMethod::SipDigest,
                    AuthMethod::Token,
                ]
                .get(usize::from(actor.3))
                .cloned()
                .unwrap_or(AuthMethod::Other("badge".into()));
                let purpose = match purpose.0 {
                    0 => PurposeOfUse::Treatment,
                    1 => PurposeOfUse::Payment,
                    2 => PurposeOfUse::Operations,
                    3 => PurposeOfUse::Emergency {
                        justification: purpose.1.into(),
                    },
                    _ => PurposeOfUse::Other(purpose.1),
                };
                let object = entity.1.map(|(k, id)| ObjectRef {
                    kind: [
                        ObjectKind::Patient,
                        ObjectKind::Recording,
                        ObjectKind::Voicemail,
                        ObjectKind::Call,
                        ObjectKind::Account,
                        ObjectKind::Document,
                    ]
                    .get(usize::from(k))
                    .cloned()
                    .unwrap_or(ObjectKind::Other("fax".into())),
                    id: id.into(),
                });
                Record {
                    event,
                    action,
                    outcome,
                    occurred: Timestamp(occ),
                    recorded: Timestamp(rec),
                    actor: Actor {
                        user_id: actor.0.into(),
                        role: actor.1,
                        network_address: actor.2.map(Pii::new),
                        auth,
                    },
                    purpose,
                    entity: Entity {
                        patient: entity.0.map(Pii::new),
                        object,
                    },
                    source_id: src,
                    correlation_id: corr.map(Pii::new),
                    details: details
                        .into_iter()
                        .map(|(key, value)| Detail {
                            key: key.into(),
                            value: value.into(),
                        })
                        .collect(),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn records_round_trip(r in record()) {
        let bytes = r.to_bytes().unwrap();
        Record::validate(&bytes).unwrap();
        let back = Record::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &r);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
        let json = serde_json::to_string(&r).unwrap();
        let from_json: Record = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(from_json, r);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        prop_assert_eq!(Record::validate(&bytes).is_ok(), Record::decode(&bytes).is_ok());
        if let Ok(r) = Record::decode(&bytes) {
            // Canonical: a decoded record re-encodes to the same bytes.
            prop_assert_eq!(r.to_bytes().unwrap(), bytes.clone());
        }
        if let Ok(c) = Checkpoint::decode(&bytes) {
            prop_assert_eq!(c.to_bytes(), bytes.clone());
        }
        let _ = SegmentHeader::decode(&bytes);
        if let Ok((body, _)) = read_frame(&bytes) {
            let _ = Entry::parse(body);
        }
        let _ = scan_checkpoint_bytes(&bytes);
    }

    #[test]
    fn proofs_verify_and_reject_tampering(n in 1u64..300, i in any::<u64>(), m in any::<u64>(), flip in 0usize..32) {
        let mut t = MerkleTree::new();
        for k in 0..n {
            t.push(leaf_hash(&k.to_le_bytes()));
        }
        let i = i % n;
        let root = t.root();
        let mut p = t.inclusion_proof(i, n).unwrap();
        let leaf = t.leaf(i).unwrap();
        prop_assert!(verify_inclusion(i, n, &leaf, &p, &root).is_ok());
        if let Some(h) = p.first_mut() {
            h[flip] ^= 1;
            prop_assert!(verify_inclusion(i, n, &leaf, &p, &root).is_err());
        }
        let old = 1 + m % n;
        let old_root = t.root_at(old).unwrap();
        let mut c = t.consistency_proof(old, n).unwrap();
        prop_assert!(verify_consistency(old, n, &old_root, &root, &c).is_ok());
        if let Some(h) = c.last_mut() {
            h[flip] ^= 1;
            prop_assert!(verify_consistency(old, n, &old_root, &root, &c).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn verifier_reports_random_damage(edits in proptest::collection::vec((any::<u32>(), any::<u8>()), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::from_seed(&[1; 32]).unwrap();
        let key = signer.verifying_key();
        let cfg = LogConfig { checkpoint_every_records: 4, ..LogConfig::default() };
        let (log, _) = carevox_audit::AuditLog::open(dir.path(), signer, cfg).unwrap();
        for i in 0..12u64 {
            let r = Record::new(EventType::Login, Action::Execute, Outcome::Success, Timestamp(i), "u", "s");
            log.append(&r).unwrap();
        }
        log.checkpoint(Timestamp(100)).unwrap();
        drop(log);
        let seg = dir.path().join("seg-00000000000000000000.cva");
        let original = std::fs::read(&seg).unwrap();
        let mut bytes = original.clone();
        for (pos, x) in edits {
            let pos = pos as usize % bytes.len();
            bytes[pos] ^= x | 1;
        }
        std::fs::write(&seg, &bytes).unwrap();
        let report = verify_log(dir.path(), &key, VerifyOptions::default()).unwrap();
        prop_assert!(report.damage.is_some(), "undetected edit");
    }
}
