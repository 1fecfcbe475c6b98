//! What the vault does, and does not, detect when older copies of its files
//! are put back (the README's "Rollback" section states the same).
//!
//! Detected: mixing records of different writes of an object (an older
//! payload with the current key record, or the reverse), and any key record
//! under a retired key-encryption key version. Not detected: an older
//! payload put back together with its own older key record while the KEK
//! version that wrapped it is still active. These tests pin both halves, so
//! that a change to either is a deliberate one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::sync::Arc;

use carevox_vault::{Error, FsBackend, KeyError, KeyProvider, LocalKeyFile, Metadata, Vault};
use data_encoding::HEXLOWER;
use ring::rand::{SecureRandom, SystemRandom};

struct Fixture {
    dir: PathBuf,
    keys: Arc<LocalKeyFile>,
    vault: Vault,
    rng: SystemRandom,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fixture(tag: &str) -> Fixture {
    let rng = SystemRandom::new();
    let mut r = [0u8; 8];
    rng.fill(&mut r).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "carevox-vault-rollback-{tag}-{}",
        HEXLOWER.encode(&r)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = Arc::new(LocalKeyFile::create(dir.join("kek"), &rng).unwrap());
    let provider: Arc<dyn KeyProvider> = keys.clone();
    let vault = Vault::new(
        Arc::new(FsBackend::open(dir.join("vault")).unwrap()),
        provider,
    );
    Fixture {
        dir,
        keys,
        vault,
        rng,
    }
}

impl Fixture {
    fn files(&self, id: &str) -> (Vec<u8>, Vec<u8>) {
        (
            std::fs::read(self.payload(id)).unwrap(),
            std::fs::read(self.record(id)).unwrap(),
        )
    }
    fn payload(&self, id: &str) -> PathBuf {
        self.dir.join(format!("vault/objects/{id}.cvx"))
    }
    fn record(&self, id: &str) -> PathBuf {
        self.dir.join(format!("vault/keys/{id}.key"))
    }
    fn put(&self, id: &str, body: &[u8]) {
        self.vault
            .put(&self.rng, Metadata::new(id, "audio/wav", 1, 2), body)
            .unwrap();
    }
}

#[test]
fn mixing_records_of_two_writes_is_detected() {
    let f = fixture("mix");
    f.put("vm-1", b"first recording");
    let (old_payload, old_record) = f.files("vm-1");
    f.vault.delete("vm-1").unwrap();
    f.put("vm-1", b"second recording");
    let (new_payload, new_record) = f.files("vm-1");

    // The older payload under the current key record.
    std::fs::write(f.payload("vm-1"), &old_payload).unwrap();
    let e = f.vault.get("vm-1").unwrap_err();
    assert!(matches!(e, Error::KeyCommitment), "{e:?}");
    assert!(e.is_integrity_failure());
    // The older key record over the current payload.
    std::fs::write(f.payload("vm-1"), &new_payload).unwrap();
    std::fs::write(f.record("vm-1"), &old_record).unwrap();
    let e = f.vault.get("vm-1").unwrap_err();
    assert!(matches!(e, Error::KeyCommitment), "{e:?}");
    std::fs::write(f.record("vm-1"), &new_record).unwrap();
    assert_eq!(f.vault.get("vm-1").unwrap().1, b"second recording");
}

#[test]
fn a_record_under_a_retired_kek_never_opens() {
    let f = fixture("retired");
    f.put("vm-1", b"recording");
    f.put("vm-2", b"to be shredded");
    let (_, old_record) = f.files("vm-1");
    let (_, shredded_record) = f.files("vm-2");
    f.vault.shred("vm-2").unwrap();
    f.keys.add_version(&f.rng).unwrap();
    let report = f.vault.rotate(&f.rng, &mut |_| {}).unwrap();
    assert_eq!(report.rewrapped, 1);
    f.vault.retire_kek(1).unwrap();

    // A key record from before the rotation, and a shredded object's key
    // record, both put back: they name the retired version 1.
    std::fs::write(f.record("vm-1"), &old_record).unwrap();
    std::fs::write(f.record("vm-2"), &shredded_record).unwrap();
    for id in ["vm-1", "vm-2"] {
        let e = f.vault.get(id).unwrap_err();
        assert!(
            matches!(
                e,
                Error::KeyRecord {
                    kek_version: 1,
                    source: KeyError::Retired { version: 1 }
                }
            ),
            "{id}: {e:?}"
        );
        assert!(e.is_integrity_failure());
    }
}

/// The documented limit: an object's older payload and older key record,
/// put back together while their KEK version is still active, read as the
/// older object. Retiring the KEK version (after a rotation) is what ends
/// this, as `a_record_under_a_retired_kek_never_opens` shows; the whole
/// directory rolled back, key file included, undoes even that.
#[test]
fn a_consistent_older_pair_under_an_active_kek_is_not_detected() {
    let f = fixture("limit");
    f.put("vm-1", b"first recording");
    let (old_payload, old_record) = f.files("vm-1");
    f.vault.delete("vm-1").unwrap();
    f.put("vm-1", b"second recording");
    std::fs::write(f.payload("vm-1"), &old_payload).unwrap();
    std::fs::write(f.record("vm-1"), &old_record).unwrap();
    assert_eq!(f.vault.get("vm-1").unwrap().1, b"first recording");

    // So is a shredded object whose key record comes back before its KEK
    // version is retired.
    f.put("vm-2", b"shred me");
    let (_, record) = f.files("vm-2");
    f.vault.shred("vm-2").unwrap();
    assert!(matches!(f.vault.get("vm-2"), Err(Error::NotFound)));
    std::fs::write(f.record("vm-2"), &record).unwrap();
    assert_eq!(f.vault.get("vm-2").unwrap().1, b"shred me");
}
