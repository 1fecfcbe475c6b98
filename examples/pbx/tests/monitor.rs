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
    let toml = format!(
        "[server]\nrealm = \"carevox.test\"\ndomains = [\"carevox.test\"]\n\
         data_dir = \"{}\"\nmaster_key_file = \"{}\"\n[audit]\nmonitor = {monitor}\n",
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

fn fail_five_times(store: &Store) {
    let who = LoginSubject {
        user_id: "alice",
        role: None,
        network_address: Some("192.0.2.7"),
    };
    let now = carevox_testkit::unix_now();
    for _ in 0..5 {
        let r = login_record(
            &LoginEvent::PasswordRefused { locked_until: None },
            &who,
            now,
            "carevox-pbx",
        );
        store.sink.append(&r).unwrap();
    }
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
