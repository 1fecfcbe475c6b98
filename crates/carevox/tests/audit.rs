//! Access decisions, authentication events and vault operations become
//! audit records, appended to a real audit log and seen by its monitor.

#![cfg(all(feature = "authz", feature = "audit", feature = "vault"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use std::sync::{Arc, Mutex};

use carevox::access::{Access, Subject, Target, access_record};
use carevox::audit::monitor::{Alert, Monitor, MonitorConfig};
use carevox::audit::{
    Action, AuditLog, AuthMethod, EventType, LogConfig, ObjectKind, ObjectRef, Outcome,
    PurposeOfUse, Record, Signer, Timestamp,
};
use carevox::audit_sink::AuditSink;
use carevox::authz::login::{AuthMethod as Method, SessionPolicy, SessionStore};
use carevox::authz::{
    Assignments, Attributes, BreakGlass, HOSPITAL_POLICY, PatientId, Policy, Request, Resource,
    Session, TeamId, UserId,
};
use carevox::login::{LoginEvent, LoginSubject, LogoffReason, login_record};
use carevox::redact::{Pii, debug_leak};
use carevox::vault::{MemoryBackend, Metadata, Operation, Vault};
use carevox::vault_audit::{VaultActor, VaultAuditConfig, VaultAuditHook, vault_action};
use ring::rand::SystemRandom;

const NOW: u64 = 1_795_428_000;

fn detail<'a>(r: &'a Record, key: &str) -> Option<&'a str> {
    r.details
        .iter()
        .find(|d| d.key.expose() == key)
        .map(|d| d.value.expose().as_str())
}

/// The text of an optional PHI field of a record.
fn text(p: &Option<Pii<String>>) -> Option<&str> {
    p.as_ref().map(|p| p.expose().as_str())
}

/// The audit log, keeping a copy of each record appended through it.
struct Kept {
    log: AuditLog,
    records: Mutex<Vec<(u64, Record)>>,
}

impl AuditSink for Kept {
    fn append(&self, record: &Record) -> Result<u64, carevox::audit::Error> {
        let seq = self.log.append(record)?;
        self.records.lock().unwrap().push((seq, record.clone()));
        Ok(seq)
    }
}

fn log(dir: &std::path::Path) -> AuditLog {
    AuditLog::open(
        dir,
        Signer::from_seed(&[9; 32]).unwrap(),
        LogConfig::default(),
    )
    .unwrap()
    .0
}

/// The decision, its record, for `role` asking to listen to a voicemail of
/// care team 3, with the given teams and grant.
fn decide(
    policy: &Policy,
    role: &str,
    teams: &[TeamId],
    grant: Option<BreakGlass<'_>>,
) -> (Access, Record) {
    let role_id = policy.role(role).unwrap();
    let mut assignments = Assignments::new();
    assignments.assign(policy, UserId(1), role_id).unwrap();
    let mut session = Session::new(UserId(1), true, None);
    session.activate(policy, &assignments, role_id).unwrap();
    let request = Request {
        principal: session.principal(teams),
        action: policy.action("listen").unwrap(),
        resource: Resource {
            kind: policy.resource_type("voicemail").unwrap(),
            owner: Some(PatientId::new(42)),
            care_teams: &[TeamId(3)],
            ephi: true,
            attributes: Attributes::NONE,
        },
        attributes: Attributes::NONE,
        now: NOW,
        break_glass: grant,
    };
    let decision = policy.decide(&request);
    let record = access_record(
        &request,
        &decision,
        &Subject {
            user_id: "user-1",
            role: Some(role),
            network_address: Some("10.20.30.40"),
            auth: AuthMethod::PasswordMfa,
        },
        &Target {
            event: EventType::VoicemailAccess,
            action: Action::Read,
            patient: Some(Pii::new("Patient/42")),
            object: Some(ObjectRef {
                kind: ObjectKind::Voicemail,
                id: "vm-1".into(),
            }),
            correlation_id: Some("call-1"),
        },
        "test",
    );
    (Access::from_decision(&decision), record)
}

#[test]
fn access_decisions_become_records() {
    let policy = Policy::from_toml(HOSPITAL_POLICY).unwrap();
    let (access, r) = decide(&policy, "physician", &[TeamId(3)], None);
    assert_eq!(access, Access::Permitted("care-team-voicemail".into()));
    assert_eq!(r.outcome, Outcome::Success);
    assert_eq!(r.event, EventType::VoicemailAccess);
    assert_eq!(r.occurred, Timestamp(NOW * 1000));
    assert_eq!(r.actor.role.as_deref(), Some("physician"));
    assert_eq!(text(&r.entity.patient), Some("Patient/42"));
    assert_eq!(text(&r.correlation_id), Some("call-1"));
    assert_eq!(
        detail(&r, "decision"),
        Some("allowed by rule care-team-voicemail")
    );
    assert_eq!(detail(&r, "break-glass"), None);
    assert!(!r.purpose.is_emergency());

    let (access, r) = decide(&policy, "receptionist", &[], None);
    assert!(matches!(access, Access::NotPermitted { .. }), "{access}");
    assert_eq!(r.outcome, Outcome::MinorFailure);
    assert!(
        detail(&r, "decision").is_some_and(|d| d.starts_with("denied: no rule permits it")),
        "{:?}",
        detail(&r, "decision")
    );

    let reason = "patient unresponsive, message may hold medication history";
    let grant = BreakGlass {
        reason: Pii::new(reason),
        issued_at: NOW,
        expires_at: NOW + 1800,
    };
    let (access, admin) = decide(&policy, "administrator", &[], Some(grant));
    assert_eq!(access, Access::Forbidden("forbid-admin-ephi".into()));
    assert_eq!(admin.outcome, Outcome::MinorFailure);
    assert_eq!(
        admin.purpose,
        PurposeOfUse::Emergency {
            justification: reason.into()
        }
    );
    let (access, on_call) = decide(&policy, "on_call_physician", &[], Some(grant));
    assert_eq!(access, Access::Permitted("on-call-break-glass".into()));
    assert_eq!(detail(&on_call, "break-glass"), Some("used"));
    assert_eq!(detail(&on_call, "review"), Some("required"));

    // In a real log, the monitor flags both emergency requests.
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path());
    let mut monitor = Monitor::new(MonitorConfig::default());
    let mut alerts = Vec::new();
    for r in [&admin, &on_call] {
        let seq = log.append(r).unwrap();
        monitor.observe(seq, r, &mut alerts);
    }
    assert_eq!(alerts.len(), 2);
    assert!(
        alerts
            .iter()
            .all(|a| matches!(a, Alert::BreakTheGlass { .. }))
    );
}

#[test]
fn authentication_events_become_records() {
    let who = LoginSubject {
        user_id: "nurse.ana",
        role: Some("nurse"),
        network_address: Some("10.20.30.40"),
    };
    let refused = login_record(
        &LoginEvent::PasswordRefused {
            locked_until: Some(NOW + 60),
        },
        &who,
        NOW,
        "t",
    );
    assert_eq!(
        (refused.event.clone(), refused.outcome),
        (EventType::Login, Outcome::MinorFailure)
    );
    assert_eq!(refused.actor.auth, AuthMethod::Password);
    assert_eq!(
        detail(&refused, "locked-until"),
        Some((NOW + 60).to_string().as_str())
    );
    assert_eq!(text(&refused.actor.network_address), Some("10.20.30.40"));

    let second = login_record(
        &LoginEvent::SecondFactorRefused {
            method: Method::Totp,
            locked_until: None,
        },
        &who,
        NOW,
        "t",
    );
    assert_eq!(second.outcome, Outcome::MinorFailure);
    assert_eq!(detail(&second, "result"), Some("totp refused"));

    let locked = login_record(
        &LoginEvent::LockedOut {
            retry_after_secs: 30,
        },
        &who,
        NOW,
        "t",
    );
    assert_eq!(locked.outcome, Outcome::MinorFailure);
    assert_eq!(detail(&locked, "retry-after-secs"), Some("30"));

    let store = SessionStore::new(SessionPolicy::default());
    let rng = SystemRandom::new();
    let (_, mfa) = store
        .create(&rng, "nurse.ana", &[Method::Password, Method::Totp], NOW)
        .unwrap();
    let ok = login_record(&LoginEvent::LoggedIn { session: &mfa }, &who, NOW, "t");
    assert_eq!(
        (ok.outcome, ok.actor.auth.clone()),
        (Outcome::Success, AuthMethod::PasswordMfa)
    );
    assert_eq!(ok.correlation_id, Some(mfa.id.to_string().into()));
    assert_eq!(detail(&ok, "methods"), Some("password+totp"));
    let (_, single) = store
        .create(&rng, "nurse.ana", &[Method::Password], NOW)
        .unwrap();
    let ok = login_record(&LoginEvent::LoggedIn { session: &single }, &who, NOW, "t");
    assert_eq!(ok.actor.auth, AuthMethod::Password);

    let id = mfa.id.to_string();
    let off = login_record(
        &LoginEvent::LoggedOff {
            session_id: &id,
            reason: LogoffReason::IdleTimeout,
        },
        &who,
        NOW + 960,
        "t",
    );
    assert_eq!(
        (off.event.clone(), off.outcome),
        (EventType::Logout, Outcome::Success)
    );
    assert_eq!(detail(&off, "reason"), Some("idle timeout"));
    assert_eq!(off.correlation_id, Some(id.into()));

    // Five refused passwords in a row raise the monitor's alerts (one for
    // the user, one for the address).
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path());
    let mut monitor = Monitor::new(MonitorConfig::default());
    let mut alerts = Vec::new();
    for i in 0..5 {
        let r = login_record(
            &LoginEvent::PasswordRefused { locked_until: None },
            &who,
            NOW + i,
            "t",
        );
        let seq = log.append(&r).unwrap();
        monitor.observe(seq, &r, &mut alerts);
    }
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert!(alerts.iter().all(|a| matches!(
        a,
        Alert::RepeatedFailedLogins {
            count: 5,
            seq: 4,
            ..
        }
    )));
}

#[test]
fn vault_operations_become_records() {
    let rng = SystemRandom::new();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Kept {
        log: log(dir.path()),
        records: Mutex::new(Vec::new()),
    });
    let mut actor = VaultActor::new("voicemail-service", AuthMethod::None, Timestamp(NOW * 1000));
    actor.patient = Some(Pii::new("Patient/42".into()));
    let hook = Arc::new(VaultAuditHook::new(
        Arc::clone(&log),
        VaultAuditConfig::voicemail("carevox-vault"),
        actor.clone(),
    ));
    let keys = carevox::vault::LocalKeyFile::create(dir.path().join("vault.key"), &rng).unwrap();
    let vault = Vault::new(Arc::new(MemoryBackend::new()), Arc::new(keys)).with_hook(hook.clone());
    vault
        .put(
            &rng,
            Metadata::new("vm-1", "audio/wav", NOW, NOW + 10),
            b"RIFF....",
        )
        .unwrap();
    let mut reader = actor.clone();
    reader.user_id = "dr.oncall".into();
    reader.role = Some("on_call_physician".into());
    reader.emergency = Some("break-glass decision record #12".into());
    hook.set_actor(reader);
    vault.get("vm-1").unwrap();
    assert!(vault.get("vm-missing").is_err());
    vault.delete("vm-1").unwrap();

    let outcomes = hook.outcomes();
    assert!(outcomes.len() >= 4, "{outcomes:?}");
    let seqs: Vec<u64> = outcomes.into_iter().map(Result::unwrap).collect();
    let kept = log.records.lock().unwrap().clone();
    assert_eq!(kept.iter().map(|(s, _)| *s).collect::<Vec<_>>(), seqs);
    assert_eq!(log.log.size(), seqs.len() as u64);
    let records: Vec<Record> = kept.into_iter().map(|(_, r)| r).collect();
    let write = &records[0];
    assert_eq!(
        (write.action.clone(), write.outcome),
        (Action::Create, Outcome::Success)
    );
    assert_eq!(write.actor.user_id.expose(), "voicemail-service");
    assert_eq!(detail(write, "vault-operation"), Some("write"));
    assert_eq!(text(&write.entity.patient), Some("Patient/42"));
    assert_eq!(
        write.entity.object,
        Some(ObjectRef {
            kind: ObjectKind::Voicemail,
            id: "vm-1".into()
        })
    );
    let reads: Vec<&Record> = records
        .iter()
        .filter(|r| r.actor.user_id.expose() == "dr.oncall")
        .collect();
    assert!(
        reads
            .iter()
            .all(|r| detail(r, "emergency-access") == Some("break-glass decision record #12"))
    );
    let failed = reads
        .iter()
        .find(|r| r.outcome == Outcome::SeriousFailure)
        .expect("the missing object's failure is audited");
    assert!(detail(failed, "error").is_some());
    let deleted = records.last().unwrap();
    assert_eq!(
        (deleted.action.clone(), detail(deleted, "vault-operation")),
        (Action::Delete, Some("delete"))
    );

    for (op, action) in [
        (Operation::Write, Action::Create),
        (Operation::Open, Action::Read),
        (Operation::Read, Action::Read),
        (Operation::Delete, Action::Delete),
        (Operation::Shred, Action::Delete),
        (Operation::Purge, Action::Delete),
        (Operation::Rewrap, Action::Update),
    ] {
        assert_eq!(vault_action(op), action);
    }
}

#[test]
fn a_vault_of_two_kinds_names_each_object_by_its_prefix() {
    let rng = SystemRandom::new();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Kept {
        log: log(dir.path()),
        records: Mutex::new(Vec::new()),
    });
    let config = VaultAuditConfig::voicemail("pbx").with_prefix(
        "rec-",
        EventType::RecordingAccess,
        ObjectKind::Recording,
    );
    let hook = Arc::new(VaultAuditHook::new(
        Arc::clone(&log),
        config,
        VaultActor::new("pbx", AuthMethod::None, Timestamp(NOW * 1000)),
    ));
    let keys = carevox::vault::LocalKeyFile::create(dir.path().join("vault.key"), &rng).unwrap();
    let vault = Vault::new(Arc::new(MemoryBackend::new()), Arc::new(keys)).with_hook(hook);
    for id in ["vm-1", "rec-1", "xrec-1"] {
        vault
            .put(&rng, Metadata::new(id, "audio/PCMU", NOW, NOW + 10), b"..")
            .unwrap();
    }
    let kept = log.records.lock().unwrap().clone();
    let named: Vec<(EventType, ObjectKind)> = kept
        .into_iter()
        .map(|(_, r)| (r.event, r.entity.object.unwrap().kind))
        .collect();
    assert_eq!(
        named,
        [
            (EventType::VoicemailAccess, ObjectKind::Voicemail),
            (EventType::RecordingAccess, ObjectKind::Recording),
            (EventType::VoicemailAccess, ObjectKind::Voicemail),
        ]
    );
}

#[test]
fn a_sink_stages_records_and_one_sync_makes_them_durable() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(log(dir.path()));
    let sink: Arc<dyn AuditSink> = log.clone();
    let who = LoginSubject {
        user_id: "nurse.ana",
        role: Some("nurse"),
        network_address: Some("10.20.30.40"),
    };
    let record = |i: u64| {
        login_record(
            &LoginEvent::PasswordRefused { locked_until: None },
            &who,
            NOW + i,
            "pbx",
        )
    };
    for i in 0..3 {
        assert_eq!(sink.submit(&record(i)).unwrap(), i);
    }
    // Staged, numbered, not yet durable.
    assert_eq!(log.size(), 3);
    assert_eq!(log.durable_size(), 0);
    sink.sync().unwrap();
    assert_eq!(log.durable_size(), 3);
    // A plain append is durable when it returns.
    assert_eq!(sink.append(&record(3)).unwrap(), 3);
    assert_eq!(log.durable_size(), 4);
    // Nothing staged: a sync has nothing to do.
    sink.sync().unwrap();
    assert_eq!(log.durable_size(), 4);

    // A sink without staging makes each submitted record durable at once.
    let kept = Kept {
        log: AuditLog::open(
            dir.path().join("kept"),
            Signer::from_seed(&[9; 32]).unwrap(),
            LogConfig::default(),
        )
        .unwrap()
        .0,
        records: Mutex::new(Vec::new()),
    };
    kept.submit(&record(0)).unwrap();
    assert_eq!(kept.log.durable_size(), 1);
    assert_eq!(kept.records.lock().unwrap().len(), 1);
}

/// A hook set up once with a service actor, as a server does: without a
/// clock its later records carry the start time and the audit log refuses
/// them once later records are in; with a clock they carry the time of the
/// operation and are appended. The failure is counted, not lost.
#[test]
fn a_long_lived_vault_hook_stamps_records_with_its_clock() {
    let rng = SystemRandom::new();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(log(dir.path()));
    let started = VaultActor::new("voicemail-service", AuthMethod::None, Timestamp(NOW * 1000));
    let fixed = Arc::new(VaultAuditHook::new(
        Arc::clone(&log),
        VaultAuditConfig::voicemail("pbx"),
        started.clone(),
    ));
    let clocked = Arc::new(
        VaultAuditHook::new(
            Arc::clone(&log),
            VaultAuditConfig::voicemail("pbx"),
            started,
        )
        .with_clock(Arc::new(|| Timestamp((NOW + 120) * 1000))),
    );
    // A minute after the start, another record (a call) is appended.
    let who = LoginSubject {
        user_id: "nurse.ana",
        role: None,
        network_address: None,
    };
    log.append(&login_record(
        &LoginEvent::PasswordRefused { locked_until: None },
        &who,
        NOW + 60,
        "pbx",
    ))
    .unwrap();
    let keys =
        Arc::new(carevox::vault::LocalKeyFile::create(dir.path().join("vault.key"), &rng).unwrap());
    let backend = Arc::new(MemoryBackend::new());
    let without = Vault::new(backend.clone(), keys.clone()).with_hook(fixed.clone());
    let with = Vault::new(backend, keys).with_hook(clocked.clone());

    without
        .put(
            &rng,
            Metadata::new("vm-1", "audio/wav", NOW, NOW + 10),
            b"RIFF",
        )
        .unwrap();
    assert_eq!(fixed.failures(), 1);
    assert!(
        fixed.outcomes()[0]
            .as_ref()
            .is_err_and(|e| e.contains("before")),
        "{:?}",
        fixed.outcomes()
    );

    with.put(
        &rng,
        Metadata::new("vm-2", "audio/wav", NOW, NOW + 10),
        b"RIFF",
    )
    .unwrap();
    assert_eq!(clocked.failures(), 0);
    assert_eq!(clocked.outcomes(), vec![Ok(1)]);
    assert_eq!(log.size(), 2);
}

/// A monitored sink runs the rules over what passes through it, appended
/// or submitted, and hands each alert over with the record's number; its
/// `Debug` names nobody.
#[test]
fn a_monitored_sink_raises_alerts_on_what_it_appends() {
    use carevox::audit_sink::{Monitored, alert_kind, alert_seq};
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(log(dir.path()));
    type Seen = Mutex<Vec<(&'static str, Option<u64>)>>;
    let seen: Arc<Seen> = Arc::default();
    let s = seen.clone();
    let sink = Monitored::new(
        log.clone(),
        MonitorConfig::default(),
        Box::new(move |a: &Alert| s.lock().unwrap().push((alert_kind(a), alert_seq(a)))),
    );
    let who = LoginSubject {
        user_id: "nurse.ana",
        role: Some("nurse"),
        network_address: Some("10.20.30.40"),
    };
    let refused = |i: u64| {
        login_record(
            &LoginEvent::PasswordRefused { locked_until: None },
            &who,
            NOW + i,
            "pbx",
        )
    };
    // Five failures in the window (the default threshold): one alert per
    // user and one per address, on the fifth record.
    for i in 0..4 {
        sink.append(&refused(i)).unwrap();
    }
    assert!(seen.lock().unwrap().is_empty());
    sink.submit(&refused(4)).unwrap();
    sink.sync().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("repeated-failed-logins", Some(4)),
            ("repeated-failed-logins", Some(4))
        ]
    );
    assert_eq!(log.durable_size(), 5);
    assert_eq!(debug_leak(&sink, &["nurse.ana", "10.20.30.40"]), None);
}
