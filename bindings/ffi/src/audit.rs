//! The tamper-evident audit log: append, checkpoint, verify with the public
//! key alone, inclusion and consistency proofs.

use std::sync::Arc;

use carevox_audit::{
    Action, AuditLog as RustAuditLog, Detail, Error as RustAuditError, EventType, Hash, LogConfig,
    ObjectKind, ObjectRef, Outcome, Pii, Record, Signer, Timestamp, VerifyOptions, VerifyingKey,
    merkle, verify_log,
};
use zeroize::Zeroizing;

use crate::error::AuditError;

impl From<RustAuditError> for AuditError {
    fn from(e: RustAuditError) -> Self {
        let text = e.to_string();
        match e {
            RustAuditError::Io { .. } => AuditError::Io(text),
            RustAuditError::ProofInvalid(_) | RustAuditError::ProofRange { .. } => {
                AuditError::ProofInvalid(text)
            }
            RustAuditError::FieldTooLong { .. }
            | RustAuditError::RecordTooLarge { .. }
            | RustAuditError::TimeWentBackwards { .. }
            | RustAuditError::Key(_) => AuditError::InvalidArgument(text),
            RustAuditError::Malformed { .. }
            | RustAuditError::Corrupt { .. }
            | RustAuditError::BadSignature => AuditError::Corrupt(text),
            _ => AuditError::Other(text),
        }
    }
}

/// The outcome of the audited event (RFC 3881 / FHIR AuditEvent.outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AuditOutcome {
    /// Success.
    Success,
    /// Minor failure (e.g. a wrong password).
    MinorFailure,
    /// Serious failure.
    SeriousFailure,
    /// Major failure.
    MajorFailure,
}

/// One audit record, as the foreign side writes it.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AuditRecord {
    /// Event type name: `login`, `logout`, `patient_record_access`,
    /// `recording_access`, `voicemail_access`, `call_start`, `call_end`,
    /// `disclosure`, `export`, `permission_change`, `configuration_change`,
    /// `key_management`.
    pub event: String,
    /// Action name: `create`, `read`, `update`, `delete`, `execute`.
    pub action: String,
    /// The outcome.
    pub outcome: AuditOutcome,
    /// When it happened, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Who acted (user id).
    pub user_id: String,
    /// The acting role, if any.
    pub role: Option<String>,
    /// Which system reports it.
    pub source_id: String,
    /// The patient reference, if the event concerns one.
    pub patient: Option<String>,
    /// The object kind (`patient`, `recording`, `voicemail`, `call`,
    /// `account`, `document`) and id, if the event concerns one.
    pub object_kind: Option<String>,
    /// The object id.
    pub object_id: Option<String>,
    /// Free key/value details.
    pub details: Vec<AuditDetail>,
}

/// A key/value detail of a record.
#[derive(Clone, uniffi::Record)]
pub struct AuditDetail {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

// Written by hand: UniFFI records cannot hold the redacting wrappers.
impl std::fmt::Debug for AuditDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditDetail")
            .field("key", &carevox::redact::Pii::new(()))
            .field("value", &carevox::redact::Pii::new(()))
            .finish()
    }
}

/// A signed checkpoint: the tree size and root the log committed to.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AuditCheckpoint {
    /// Records covered.
    pub tree_size: u64,
    /// Merkle root (32 bytes).
    pub root: Vec<u8>,
    /// When, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// What verifying a log found.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AuditVerifyReport {
    /// Records checked.
    pub records: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// The first damage found, described; `None` when the log is intact.
    pub damage: Option<String>,
    /// The sequence number of the first bad record, if the damage is there.
    pub damage_seq: Option<u64>,
}

fn name_to<T: serde::de::DeserializeOwned>(what: &str, name: &str) -> Result<T, AuditError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| AuditError::InvalidArgument(format!("unknown {what} name {name:?}")))
}

fn hash(what: &str, bytes: &[u8]) -> Result<Hash, AuditError> {
    bytes.try_into().map_err(|_| {
        AuditError::InvalidArgument(format!("{what} is {} bytes, not 32", bytes.len()))
    })
}

fn hashes(what: &str, list: &[Vec<u8>]) -> Result<Vec<Hash>, AuditError> {
    list.iter().map(|h| hash(what, h)).collect()
}

fn record(r: AuditRecord) -> Result<Record, AuditError> {
    let outcome = match r.outcome {
        AuditOutcome::Success => Outcome::Success,
        AuditOutcome::MinorFailure => Outcome::MinorFailure,
        AuditOutcome::SeriousFailure => Outcome::SeriousFailure,
        AuditOutcome::MajorFailure => Outcome::MajorFailure,
    };
    let mut out = Record::new(
        name_to::<EventType>("event type", &r.event)?,
        name_to::<Action>("action", &r.action)?,
        outcome,
        Timestamp(r.time_ms),
        r.user_id,
        r.source_id,
    );
    out.actor.role = r.role;
    out.entity.patient = r.patient.map(Pii::new);
    out.entity.object = match (r.object_kind, r.object_id) {
        (Some(kind), Some(id)) => Some(ObjectRef {
            kind: name_to::<ObjectKind>("object kind", &kind)?,
            id: id.into(),
        }),
        (None, None) => None,
        _ => {
            return Err(AuditError::InvalidArgument(
                "object_kind and object_id go together".into(),
            ));
        }
    };
    out.details = r
        .details
        .into_iter()
        .map(|d| Detail {
            key: d.key.into(),
            value: d.value.into(),
        })
        .collect();
    Ok(out)
}

/// An append-only audit log in a directory, with checkpoints signed by an
/// Ed25519 key. Thread-safe.
#[derive(Debug, uniffi::Object)]
pub struct AuditLog {
    inner: RustAuditLog,
}

#[uniffi::export]
impl AuditLog {
    /// Opens (or creates) the log in `dir`. `signing_seed` is the 32-byte
    /// Ed25519 seed that signs checkpoints (secret: zeroized on the Rust
    /// side). A torn tail left by a crash is cut; damage elsewhere is an
    /// error.
    #[uniffi::constructor]
    pub fn open(dir: String, signing_seed: Vec<u8>) -> Result<Arc<Self>, AuditError> {
        let seed = Zeroizing::new(signing_seed);
        let seed: Zeroizing<[u8; 32]> =
            Zeroizing::new(seed.as_slice().try_into().map_err(|_| {
                AuditError::InvalidArgument(format!(
                    "the signing seed is {} bytes, not 32",
                    seed.len()
                ))
            })?);
        let signer = Signer::from_seed(&seed)?;
        let (inner, _) = RustAuditLog::open(&dir, signer, LogConfig::default())?;
        Ok(Arc::new(AuditLog { inner }))
    }

    /// Appends a record durably; returns its sequence number.
    pub fn append(&self, record: AuditRecord) -> Result<u64, AuditError> {
        Ok(self.inner.append(&self::record(record)?)?)
    }

    /// Records in the log.
    pub fn size(&self) -> u64 {
        self.inner.size()
    }

    /// Signs a checkpoint of everything appended so far.
    pub fn checkpoint(&self, now_ms: u64) -> Result<AuditCheckpoint, AuditError> {
        let c = self.inner.checkpoint(Timestamp(now_ms))?;
        Ok(AuditCheckpoint {
            tree_size: c.tree_size,
            root: c.root.to_vec(),
            time_ms: c.time.0,
        })
    }

    /// The Ed25519 public key that verifies the checkpoints, as hex.
    pub fn public_key_hex(&self) -> String {
        self.inner.verifying_key().to_hex()
    }

    /// The Merkle root over the first `size` records.
    pub fn root_at(&self, size: u64) -> Result<Vec<u8>, AuditError> {
        Ok(self.inner.root_at(size)?.to_vec())
    }

    /// The Merkle leaf hash of record `seq`.
    pub fn leaf_hash(&self, seq: u64) -> Result<Vec<u8>, AuditError> {
        Ok(self.inner.leaf_hash(seq)?.to_vec())
    }

    /// The proof that record `seq` is in the tree of the first `size`
    /// records (RFC 9162 section 2.1.3).
    pub fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Vec<u8>>, AuditError> {
        Ok(self
            .inner
            .inclusion_proof(seq, size)?
            .iter()
            .map(|h| h.to_vec())
            .collect())
    }

    /// The proof that the tree of `old` records is a prefix of the tree of
    /// `new` records (RFC 9162 section 2.1.4).
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Vec<u8>>, AuditError> {
        Ok(self
            .inner
            .consistency_proof(old, new)?
            .iter()
            .map(|h| h.to_vec())
            .collect())
    }
}

/// Verifies the log in `dir` with the public key alone (hex): every record's
/// hash chain, every segment, every checkpoint's signature and root. Damage
/// is reported, not thrown; an unreadable directory or a bad key is thrown.
#[uniffi::export]
pub fn audit_verify_log(
    dir: String,
    public_key_hex: String,
) -> Result<AuditVerifyReport, AuditError> {
    let key = VerifyingKey::from_hex(&public_key_hex)?;
    let report = verify_log(&dir, &key, VerifyOptions::default())?;
    Ok(AuditVerifyReport {
        records: report.records,
        checkpoints: report.checkpoints as u64,
        damage_seq: report.damage.as_ref().and_then(|d| d.seq),
        damage: report.damage.map(|d| d.to_string()),
    })
}

/// Checks an inclusion proof of leaf `leaf_hash` at index `seq` in the tree
/// of `size` records with root `root`. Throws `ProofInvalid` if it fails.
#[uniffi::export]
pub fn audit_verify_inclusion(
    seq: u64,
    size: u64,
    leaf_hash: Vec<u8>,
    proof: Vec<Vec<u8>>,
    root: Vec<u8>,
) -> Result<(), AuditError> {
    Ok(merkle::verify_inclusion(
        seq,
        size,
        &hash("leaf hash", &leaf_hash)?,
        &hashes("proof hash", &proof)?,
        &hash("root", &root)?,
    )?)
}

/// Checks a consistency proof between the tree of `old_size` records (root
/// `old_root`) and of `new_size` records (root `new_root`). Throws
/// `ProofInvalid` if it fails.
#[uniffi::export]
pub fn audit_verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: Vec<u8>,
    new_root: Vec<u8>,
    proof: Vec<Vec<u8>>,
) -> Result<(), AuditError> {
    Ok(merkle::verify_consistency(
        old_size,
        new_size,
        &hash("old root", &old_root)?,
        &hash("new root", &new_root)?,
        &hashes("proof hash", &proof)?,
    )?)
}
