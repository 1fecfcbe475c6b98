//! The audit monitor in the data directory's sink: with `[audit] monitor`
//! on (the default), records appended by the server, the admin console or
//! the vault's hooks pass the monitoring rules, and five failed logins of
//! one user raise an alert with the record's number; with it off, none.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};

use carevox::audit_sink::{alert_kind, alert_seq};
use carevox::login::{LoginEvent, LoginSubject, login_record};
use carevox_pbx::config::Config;
use carevox_pbx::store::{Store, server_clock};
use ring::rand::SystemRandom;

type Seen = Arc<Mutex<Vec<(&'static str, Option<u64>)>>>;

fn store(dir: &std::path::Path, monitor: bool) -> (Store, Seen) {
    store_with(dir, &format!("monitor = {monitor}\n"))
}

/// A store whose `[audit]` section is `audit`.
fn store_with(dir: &std::path::Path, audit: &str) -> (Store, Seen) {
    let toml = format!(
        "[server]\nrealm = \"carevox.test\"\ndomains = [\"carevox.test\"]\n\
         data_dir = \"{}\"\nmaster_key_file = \"{}\"\n[audit]\n{audit}",
        dir.join("data").display(),
        dir.join("keys/vault.key").display(),
    );
    let config = Config::from_toml(&toml).unwrap();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let store = Store::open_with(
        &config,
        &SystemRandom::new(),
        carevox_testkit::unix_now(),
        server_clock(),
        Box::new(move |a| s.lock().unwrap().push((alert_kind(a), alert_seq(a)))),
    )
    .unwrap();
    (store, seen)
}

fn refused_login(now: u64) -> carevox::audit::Record {
    let who = LoginSubject {
        user_id: "alice",
        role: None,
        network_address: Some("192.0.2.7"),
    };
    login_record(
        &LoginEvent::PasswordRefused { locked_until: None },
        &who,
        now,
        "carevox-pbx",
    )
}

fn fail_five_times(store: &Store) {
    let now = carevox_testkit::unix_now();
    for _ in 0..5 {
        store.sink.append(&refused_login(now)).unwrap();
    }
}

/// A console user's read of a voicemail: what the admin console appends.
fn console_read(user: &str, now: u64) -> carevox::audit::Record {
    use carevox::audit::{Action, AuthMethod, EventType, ObjectKind, ObjectRef, Outcome, Record};
    let mut r = Record::new(
        EventType::VoicemailAccess,
        Action::Read,
        Outcome::Success,
        carevox::audit::Timestamp(now * 1000),
        user,
        "carevox-pbx",
    );
    r.actor.auth = AuthMethod::PasswordMfa;
    r.entity.object = Some(ObjectRef {
        kind: ObjectKind::Voicemail,
        id: carevox::redact::Pii::new("vm-1".to_owned()),
    });
    r
}

#[test]
fn console_reads_after_hours_and_in_bulk_raise_alerts_and_phones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let now = carevox_testkit::unix_now();
    // Working hours that end an hour before now (UTC) and start two hours
    // after it: now is after hours.
    let hour = (now / 3600) % 24;
    let hours = format!(
        "working_hours = \"{:02}:00-{:02}:00\"\nbulk_reads = 3\n",
        (hour + 2) % 24,
        (hour + 23) % 24
    );
    let (store, seen) = store_with(dir.path(), &hours);
    // A phone's call: not a console user's, no alert.
    let call = carevox::call_audit::call_record(
        &carevox::call_audit::CallEvent::Started,
        &carevox::call_audit::CallSubject {
            caller: carevox::redact::Pii::new("alice"),
            callee: carevox::redact::Pii::new("bob"),
            call_id: carevox::redact::Pii::new("c-1"),
            network_address: carevox::redact::Pii::new(Some("192.0.2.7")),
        },
        now,
        "carevox-pbx",
    );
    store.sink.append(&call).unwrap();
    assert!(seen.lock().unwrap().is_empty());
    for _ in 0..3 {
        store.sink.append(&console_read("dr.lee", now)).unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("outside-working-hours", Some(1)),
            ("outside-working-hours", Some(2)),
            ("outside-working-hours", Some(3)),
            ("bulk-reads", Some(3)),
        ]
    );
}

#[test]
fn the_log_checkpoints_at_the_configured_interval_and_takes_records_a_moment_late() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with(dir.path(), "checkpoint_interval_records = 3\n");
    let now = carevox_testkit::unix_now();
    for _ in 0..7 {
        store.sink.append(&refused_login(now)).unwrap();
    }
    let cp = store
        .audit
        .last_checkpoint()
        .expect("a checkpoint every 3 records");
    assert_eq!(cp.tree_size, 6);
    // A record stamped a second earlier by another writer, arriving after
    // a later one: kept, at the later time.
    store.sink.append(&refused_login(now + 1)).unwrap();
    store.sink.append(&refused_login(now)).unwrap();
    // A clock stepped back further than the window: refused.
    let late = now - 1 - carevox_pbx::store::REORDER_WINDOW_MILLIS / 1000;
    assert!(store.sink.append(&refused_login(late)).is_err());
    assert_eq!(store.audit.size(), 9);
}

#[test]
fn five_failed_logins_raise_an_alert() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen) = store(dir.path(), true);
    fail_five_times(&store);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("repeated-failed-logins", Some(4)),
            ("repeated-failed-logins", Some(4))
        ]
    );
    assert_eq!(store.audit.size(), 5);
}

#[test]
fn with_the_monitor_off_nothing_is_raised() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen) = store(dir.path(), false);
    fail_five_times(&store);
    assert!(seen.lock().unwrap().is_empty());
    assert_eq!(store.audit.size(), 5);
}
