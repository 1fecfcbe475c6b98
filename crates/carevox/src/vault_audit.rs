//! Vault operations reported to the audit log: every open, read, write,
//! delete, rewrap, shred and purge that carevox-vault reports through its
//! event hook becomes an audit record naming who acted (set by the
//! application before it calls the vault), what was done to which object,
//! and how it ended.
//!
//! ```
//! use std::sync::Arc;
//! use carevox::audit::{AuditLog, AuthMethod, LogConfig, Signer, Timestamp};
//! use carevox::vault::{MemoryBackend, Metadata, PassphraseProvider, Vault};
//! use carevox::vault_audit::{VaultActor, VaultAuditConfig, VaultAuditHook};
//! # #[allow(clippy::disallowed_methods)]
//! let rng = ring::rand::SystemRandom::new();
//! let dir = tempfile::tempdir()?;
//! let (log, _) = AuditLog::open(dir.path(), Signer::from_seed(&[7; 32])?, LogConfig::default())?;
//! let hook = Arc::new(VaultAuditHook::new(
//!     Arc::new(log),
//!     VaultAuditConfig::voicemail("carevox-vault"),
//!     VaultActor::new("voicemail-service", AuthMethod::None, Timestamp(1_000)),
//! ));
//! # let keys = carevox::vault::LocalKeyFile::create(dir.path().join("k"), &rng)?;
//! let vault = Vault::new(Arc::new(MemoryBackend::new()), Arc::new(keys)).with_hook(hook.clone());
//! vault.put(&rng, Metadata::new("vm-1", "audio/wav", 1, 2), b"RIFF")?;
//! assert_eq!(hook.outcomes().len(), 1);
//! assert!(hook.outcomes()[0].is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::{Arc, Mutex, PoisonError};

use carevox_audit::{
    Action, AuthMethod, Detail, EventType, ObjectKind, ObjectRef, Outcome, Record, Timestamp,
};
use carevox_redact::Pii;
use carevox_vault::{Event, EventHook, Operation};

use crate::audit_sink::AuditSink;

/// Who is acting on the vault, and for what: set before each vault call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultActor {
    /// The user's (or service's) audit identifier; it names a person, so
    /// `Debug` shows `<redacted>`.
    pub user_id: Pii<String>,
    /// The role they act in.
    pub role: Option<String>,
    /// How they were authenticated.
    pub auth: AuthMethod,
    /// The time of the operations (the caller's clock).
    pub at: Timestamp,
    /// The patient the objects are about (a reference such as
    /// `Patient/42`), if any; PHI, so `Debug` shows `<redacted>`.
    pub patient: Option<Pii<String>>,
    /// For emergency access: a pointer to the access record that allowed
    /// it, e.g. `break-glass decision record #12` (the emergency itself is
    /// on that record, so that it raises one alert).
    pub emergency: Option<String>,
}

impl VaultActor {
    /// An actor with no role, patient or emergency.
    pub fn new(user_id: &str, auth: AuthMethod, at: Timestamp) -> VaultActor {
        VaultActor {
            user_id: Pii::new(user_id.to_owned()),
            role: None,
            auth,
            at,
            patient: None,
            emergency: None,
        }
    }
}

/// What the vault holds, as the audit records name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultAuditConfig {
    /// The event type of every record (e.g. voicemail access).
    pub event: EventType,
    /// The kind of the objects.
    pub object_kind: ObjectKind,
    /// The source id of the records.
    pub source: String,
    /// Objects whose id starts with one of these prefixes are of another
    /// kind, with their own event type (a vault holding voicemail and call
    /// recordings): the first prefix that matches wins.
    pub by_prefix: Vec<(String, EventType, ObjectKind)>,
}

impl VaultAuditConfig {
    /// Records of voicemail access to voicemail objects.
    pub fn voicemail(source: &str) -> VaultAuditConfig {
        VaultAuditConfig {
            event: EventType::VoicemailAccess,
            object_kind: ObjectKind::Voicemail,
            source: source.to_owned(),
            by_prefix: Vec::new(),
        }
    }

    /// Records of recording access to call recordings.
    pub fn recording(source: &str) -> VaultAuditConfig {
        VaultAuditConfig {
            event: EventType::RecordingAccess,
            object_kind: ObjectKind::Recording,
            source: source.to_owned(),
            by_prefix: Vec::new(),
        }
    }

    /// Names objects whose id starts with `prefix` as `kind`, their
    /// records as `event`.
    pub fn with_prefix(mut self, prefix: &str, event: EventType, kind: ObjectKind) -> Self {
        self.by_prefix.push((prefix.to_owned(), event, kind));
        self
    }

    /// The event type and object kind of the object `id`.
    pub fn kind_of(&self, id: &str) -> (&EventType, &ObjectKind) {
        self.by_prefix
            .iter()
            .find(|(p, _, _)| id.starts_with(p.as_str()))
            .map_or((&self.event, &self.object_kind), |(_, e, k)| (e, k))
    }
}

/// The audit action of a vault operation: a write creates, an open or read
/// reads, a delete, shred or purge deletes, a rewrap updates.
pub fn vault_action(operation: Operation) -> Action {
    match operation {
        Operation::Write => Action::Create,
        Operation::Open | Operation::Read => Action::Read,
        Operation::Delete | Operation::Shred | Operation::Purge => Action::Delete,
        _ => Action::Update,
    }
}

fn operation_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Open => "open",
        Operation::Read => "read",
        Operation::Write => "write",
        Operation::Delete => "delete",
        Operation::Rewrap => "rewrap",
        Operation::Shred => "shred",
        Operation::Purge => "purge",
        _ => "other",
    }
}

/// The audit record of one vault event: a success, or a serious failure
/// with the vault's error message (which carries no PHI) as the `error`
/// detail; details `vault-operation`, `kek-version` when known, and
/// `emergency-access` when the actor has one.
pub fn vault_record(event: &Event<'_>, actor: &VaultActor, config: &VaultAuditConfig) -> Record {
    let (outcome, error) = match event.outcome {
        carevox_vault::Outcome::Success => (Outcome::Success, None),
        carevox_vault::Outcome::Failure(e) => (Outcome::SeriousFailure, Some(e.to_string())),
    };
    let (event_type, kind) = config.kind_of(event.object_id);
    let mut r = Record::new(
        event_type.clone(),
        vault_action(event.operation),
        outcome,
        actor.at,
        actor.user_id.expose().clone(),
        config.source.clone(),
    );
    r.actor.role.clone_from(&actor.role);
    r.actor.auth = actor.auth.clone();
    r.entity.patient.clone_from(&actor.patient);
    r.entity.object = Some(ObjectRef {
        kind: kind.clone(),
        id: event.object_id.into(),
    });
    if let Some(decision) = &actor.emergency {
        r.details.push(Detail {
            key: "emergency-access".into(),
            value: decision.as_str().into(),
        });
    }
    r.details.push(Detail {
        key: "vault-operation".into(),
        value: operation_name(event.operation).into(),
    });
    if let Some(v) = event.kek_version {
        r.details.push(Detail {
            key: "kek-version".into(),
            value: v.to_string().into(),
        });
    }
    if let Some(e) = error {
        r.details.push(Detail {
            key: "error".into(),
            value: e.into(),
        });
    }
    r
}

/// The most recent append outcomes a [`VaultAuditHook`] keeps.
pub const OUTCOMES_KEPT: usize = 1024;

/// Where a [`VaultAuditHook`] reads the time of each record.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// A vault [`EventHook`] that appends [`vault_record`]s to an
/// [`AuditSink`], and keeps each append's sequence number or failure for
/// the application to check ([`VaultAuditHook::outcomes`], the last
/// [`OUTCOMES_KEPT`]; [`VaultAuditHook::failures`] counts them all): the
/// hook cannot fail the vault call, so a failed append must be looked at.
///
/// A hook that lives as long as a server takes a clock
/// ([`VaultAuditHook::with_clock`]): each record then carries the time of
/// its operation, not the actor's. Without one, an actor set once at start
/// would stamp later operations with the start time, which an audit log
/// refuses once later records are in it.
pub struct VaultAuditHook<S: ?Sized> {
    config: VaultAuditConfig,
    actor: Mutex<VaultActor>,
    outcomes: Mutex<std::collections::VecDeque<Result<u64, String>>>,
    failures: std::sync::atomic::AtomicU64,
    clock: Option<Clock>,
    sink: Arc<S>,
}

impl<S: ?Sized> std::fmt::Debug for VaultAuditHook<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultAuditHook")
            .field("config", &self.config)
            .field("clock", &self.clock.is_some())
            .field(
                "failures",
                &self.failures.load(std::sync::atomic::Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}

impl<S: AuditSink + ?Sized> VaultAuditHook<S> {
    /// A hook appending to `sink`, acting as `actor` until told otherwise.
    pub fn new(sink: Arc<S>, config: VaultAuditConfig, actor: VaultActor) -> VaultAuditHook<S> {
        VaultAuditHook {
            config,
            actor: Mutex::new(actor),
            outcomes: Mutex::new(std::collections::VecDeque::new()),
            failures: std::sync::atomic::AtomicU64::new(0),
            clock: None,
            sink,
        }
    }

    /// Stamps each record with `clock`'s time at the operation instead of
    /// the actor's [`VaultActor::at`].
    pub fn with_clock(mut self, clock: Clock) -> VaultAuditHook<S> {
        self.clock = Some(clock);
        self
    }

    /// Who acts from now on (call before each vault operation).
    pub fn set_actor(&self, actor: VaultActor) {
        *self.actor.lock().unwrap_or_else(PoisonError::into_inner) = actor;
    }

    /// The last appends (at most [`OUTCOMES_KEPT`]), oldest first: the
    /// record's sequence number, or the audit log's error message.
    pub fn outcomes(&self) -> Vec<Result<u64, String>> {
        self.outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// How many appends have failed since the hook was made.
    pub fn failures(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl<S: AuditSink + ?Sized> EventHook for VaultAuditHook<S> {
    fn on_event(&self, event: &Event<'_>) {
        let mut actor = self
            .actor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(clock) = &self.clock {
            actor.at = clock();
        }
        let record = vault_record(event, &actor, &self.config);
        let result = self.sink.append(&record).map_err(|e| e.to_string());
        if result.is_err() {
            self.failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        if outcomes.len() == OUTCOMES_KEPT {
            outcomes.pop_front();
        }
        outcomes.push_back(result);
    }
}
