//! The retention purge: a voicemail past its retention date is deleted
//! (data key first) and the deletion audited as a purge; one within it is
//! kept; `spawn_purge` runs a pass as soon as it starts.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use carevox::audit::{AuthMethod, Timestamp};
use carevox::vault::{LocalKeyFile, MemoryBackend, Metadata, Vault};
use carevox::vault_audit::{VaultActor, VaultAuditConfig, VaultAuditHook};
use carevox_pbx::retention::{purge_once, spawn_purge};
use ring::rand::SystemRandom;

mod common;

use common::Capture;

const NOW: u64 = 1_795_428_000;

fn vault(dir: &std::path::Path) -> (Vault, Arc<Capture>) {
    let rng = SystemRandom::new();
    let keys = LocalKeyFile::create(dir.join("kek"), &rng).unwrap();
    let audit = Arc::new(Capture::default());
    let hook = Arc::new(VaultAuditHook::new(
        audit.clone(),
        VaultAuditConfig::voicemail("carevox-pbx"),
        VaultActor::new("voicemail-service", AuthMethod::None, Timestamp(NOW * 1000)),
    ));
    let vault = Vault::new(Arc::new(MemoryBackend::new()), Arc::new(keys)).with_hook(hook);
    (vault, audit)
}

fn operations(audit: &Capture) -> Vec<String> {
    audit
        .0
        .lock()
        .unwrap()
        .iter()
        .flat_map(|r| r.details.clone())
        .filter(|d| d.key.expose() == "vault-operation")
        .map(|d| d.value.expose().clone())
        .collect()
}

#[test]
fn a_pass_deletes_what_has_expired_and_audits_it() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, audit) = vault(dir.path());
    let rng = SystemRandom::new();
    vault
        .put(
            &rng,
            Metadata::new("vm-old", "audio/PCMU", NOW - 100, NOW - 1),
            b"old",
        )
        .unwrap();
    vault
        .put(
            &rng,
            Metadata::new("vm-new", "audio/PCMU", NOW - 100, NOW + 100),
            b"new",
        )
        .unwrap();
    let report = purge_once(&vault, NOW).unwrap();
    assert_eq!(report.purged, ["vm-old"]);
    assert_eq!(report.kept, 1);
    assert!(report.failed.is_empty());
    assert_eq!(operations(&audit), ["write", "write", "purge"]);
    assert!(vault.get("vm-old").is_err());
    assert_eq!(vault.get("vm-new").unwrap().1, b"new");
    // Nothing more to do at the same time.
    assert!(purge_once(&vault, NOW).unwrap().purged.is_empty());
}

#[tokio::test]
async fn the_scheduled_purge_runs_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, audit) = vault(dir.path());
    let rng = SystemRandom::new();
    // Retained until a time long past: the real clock has passed it.
    vault
        .put(&rng, Metadata::new("vm-past", "audio/PCMU", 1, 2), b"past")
        .unwrap();
    let vault = Arc::new(vault);
    let task = spawn_purge(vault.clone(), Duration::from_secs(3600));
    let mut gone = false;
    for _ in 0..100 {
        if vault.get("vm-past").is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    assert!(gone, "the first pass did not run");
    assert!(operations(&audit).contains(&"purge".to_owned()));
}
