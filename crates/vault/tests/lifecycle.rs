//! Rotation, KEK retirement, shredding, retention purge, events, and the
//! filesystem backend with its key file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use carevox_vault::{
    Error, Event, EventHook, FsBackend, KeyError, KeyProvider, LocalKeyFile, MIN_PBKDF2_ITERATIONS,
    Metadata, Operation, Outcome, PassphraseProvider, Progress, Vault,
};
use ring::rand::SystemRandom;

fn rng() -> SystemRandom {
    SystemRandom::new()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "carevox-vault-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fs_vault(dir: &TempDir) -> (Arc<LocalKeyFile>, Vault) {
    let path = dir.0.join("kek");
    let keys = Arc::new(if path.exists() {
        LocalKeyFile::open(&path).unwrap()
    } else {
        LocalKeyFile::create(&path, &rng()).unwrap()
    });
    let provider: Arc<dyn KeyProvider> = keys.clone();
    let backend = Arc::new(FsBackend::open(dir.0.join("vault")).unwrap());
    let vault = Vault::new(backend, provider)
        .with_segment_size(1024)
        .unwrap();
    (keys, vault)
}

fn body(id: &str) -> Vec<u8> {
    id.bytes().cycle().take(3000 + id.len() * 100).collect()
}

#[cfg(unix)]
#[test]
fn key_file_is_owner_only_and_reopens() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("perm");
    let (keys, vault) = fs_vault(&dir);
    let mode = std::fs::metadata(dir.0.join("kek"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    vault
        .put(&rng(), Metadata::new("x", "t", 0, 0), b"hello")
        .unwrap();
    let v2 = keys.add_version(&rng()).unwrap();
    assert_eq!(v2, 2);
    let reopened = LocalKeyFile::open(dir.0.join("kek")).unwrap();
    assert_eq!(reopened.versions(), vec![(1, false), (2, false)]);
    assert_eq!(reopened.current_version().unwrap(), 2);
    let mode = std::fs::metadata(dir.0.join("kek"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let key_record = dir.0.join("vault/keys/x.key");
    let mode = std::fs::metadata(key_record).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    for sub in ["vault", "vault/objects", "vault/keys"] {
        let mode = std::fs::metadata(dir.0.join(sub))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{sub} is not owner-only");
    }
    let payload = dir.0.join("vault/objects/x.cvx");
    let mode = std::fs::metadata(payload).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!format!("{keys:?}").contains("[")); // no key bytes in Debug
}

#[test]
fn rotation_rewraps_without_touching_payloads_then_retires() {
    let dir = TempDir::new("rotate");
    let (keys, vault) = fs_vault(&dir);
    let ids: Vec<String> = (0..5).map(|i| format!("rec-{i}")).collect();
    for id in &ids {
        vault
            .put(&rng(), Metadata::new(id, "audio/wav", 0, 0), &body(id))
            .unwrap();
    }
    let payloads: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| std::fs::read(dir.0.join(format!("vault/objects/{id}.cvx"))).unwrap())
        .collect();
    let old_record = std::fs::read(dir.0.join("vault/keys/rec-0.key")).unwrap();

    assert_eq!(keys.add_version(&rng()).unwrap(), 2);
    assert!(matches!(
        vault.retire_kek(1).unwrap_err(),
        Error::KekInUse {
            version: 1,
            objects: 5
        }
    ));
    assert!(matches!(
        vault.retire_kek(2).unwrap_err(),
        Error::KekIsCurrent { version: 2 }
    ));

    let mut seen = Vec::new();
    let report = vault
        .rotate(&rng(), &mut |p: Progress| seen.push(p))
        .unwrap();
    assert_eq!(report.to_version, 2);
    assert_eq!(report.rewrapped, 5);
    assert!(report.failed.is_empty());
    assert_eq!(
        seen,
        (1..=5)
            .map(|done| Progress { done, total: 5 })
            .collect::<Vec<_>>()
    );
    assert!(vault.list().unwrap().iter().all(|o| o.kek_version == 2));
    for (id, before) in ids.iter().zip(&payloads) {
        let after = std::fs::read(dir.0.join(format!("vault/objects/{id}.cvx"))).unwrap();
        assert_eq!(&after, before, "payload of {id} changed");
        assert_eq!(vault.get(id).unwrap().1, body(id));
    }
    // A second rotation has nothing to do.
    let again = vault.rotate(&rng(), &mut |_| {}).unwrap();
    assert_eq!((again.rewrapped, again.already_current), (0, 5));

    vault.retire_kek(1).unwrap();
    assert_eq!(keys.versions(), vec![(1, true), (2, false)]);
    // An old key record (say, from a backup) no longer opens anything.
    std::fs::write(dir.0.join("vault/keys/rec-0.key"), old_record).unwrap();
    assert!(matches!(
        vault.get("rec-0").unwrap_err(),
        Error::KeyRecord {
            source: KeyError::Retired { version: 1 },
            ..
        }
    ));
    // Retirement persisted.
    let reopened = LocalKeyFile::open(dir.0.join("kek")).unwrap();
    assert_eq!(reopened.versions(), vec![(1, true), (2, false)]);
}

#[test]
fn shredding_makes_a_payload_copy_useless() {
    let dir = TempDir::new("shred");
    let (_keys, vault) = fs_vault(&dir);
    vault
        .put(
            &rng(),
            Metadata::new("vm-1", "audio/wav", 0, 0),
            &body("vm-1"),
        )
        .unwrap();
    vault
        .put(
            &rng(),
            Metadata::new("vm-2", "audio/wav", 0, 0),
            &body("vm-2"),
        )
        .unwrap();
    let payload = dir.0.join("vault/objects/vm-1.cvx");
    let copy = std::fs::read(&payload).unwrap();
    vault.shred("vm-1").unwrap();
    assert!(matches!(vault.get("vm-1").unwrap_err(), Error::NotFound));
    assert!(matches!(vault.shred("vm-1").unwrap_err(), Error::NotFound));
    assert_eq!(vault.list().unwrap().len(), 1);
    // Put the copy back: still nothing opens it.
    std::fs::write(&payload, &copy).unwrap();
    assert!(matches!(vault.get("vm-1").unwrap_err(), Error::NotFound));
    // Not even with another object's key record next to it.
    std::fs::copy(
        dir.0.join("vault/keys/vm-2.key"),
        dir.0.join("vault/keys/vm-1.key"),
    )
    .unwrap();
    assert!(matches!(
        vault.get("vm-1").unwrap_err(),
        Error::KeyRecord {
            source: KeyError::Unwrap { .. },
            ..
        }
    ));
    assert_eq!(vault.get("vm-2").unwrap().1, body("vm-2"));
    // Delete removes both records.
    vault.delete("vm-2").unwrap();
    assert!(!dir.0.join("vault/objects/vm-2.cvx").exists());
    assert!(!dir.0.join("vault/keys/vm-2.key").exists());
}

#[test]
fn retention_purge_removes_only_what_is_due() {
    let dir = TempDir::new("purge");
    let (_keys, vault) = fs_vault(&dir);
    for (id, until) in [("a", 100u64), ("b", 200), ("c", 300)] {
        vault
            .put(&rng(), Metadata::new(id, "audio/wav", 50, until), b"x")
            .unwrap();
    }
    let report = vault.purge_expired(200).unwrap();
    assert_eq!(report.purged, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(report.kept, 1);
    assert!(report.failed.is_empty());
    let left: Vec<String> = vault.list().unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(left, vec!["c".to_owned()]);
    // A damaged object is reported, not purged.
    let p = dir.0.join("vault/objects/c.cvx");
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[24] ^= 1; // retention-until
    std::fs::write(&p, &bytes).unwrap();
    let report = vault.purge_expired(10_000).unwrap();
    assert!(report.purged.is_empty());
    assert_eq!(report.failed.len(), 1);
    assert!(matches!(report.failed[0].1, Error::HeaderAuth));
    assert_eq!(vault.list().unwrap().len(), 1);
}

type Seen = (String, Operation, bool, Option<Vec<(String, String)>>);

#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl EventHook for Recorder {
    fn on_event(&self, e: &Event<'_>) {
        self.0.lock().unwrap().push((
            e.object_id.to_owned(),
            e.operation,
            matches!(e.outcome, Outcome::Success),
            e.labels.map(|l| l.expose().to_vec()),
        ));
    }
}

#[test]
fn every_operation_is_reported_without_labels_unless_asked() {
    let rec = Arc::new(Recorder::default());
    let (keys, _) = PassphraseProvider::create(b"pw", MIN_PBKDF2_ITERATIONS, 1, &rng()).unwrap();
    let keys: Arc<dyn KeyProvider> = Arc::new(keys);
    let mem = Arc::new(carevox_vault::MemoryBackend::new());
    let vault = Vault::new(mem.clone(), keys.clone()).with_hook(rec.clone());
    let meta = Metadata::new("o", "audio/wav", 0, 0).label("patient", "MRN-77");
    vault.put(&rng(), meta.clone(), b"abc").unwrap();
    vault.get("o").unwrap();
    vault.get_range("o", 1, 1).unwrap();
    vault.rewrap(&rng(), "o", 1).unwrap();
    assert!(vault.get("missing").is_err());
    vault.shred("o").unwrap();
    vault
        .put(&rng(), meta.clone().label("x", "y"), b"abc")
        .unwrap();
    vault.delete("o").unwrap();
    let events = rec.0.lock().unwrap().clone();
    let ops: Vec<(Operation, bool)> = events.iter().map(|e| (e.1, e.2)).collect();
    use Operation::*;
    assert_eq!(
        ops,
        vec![
            (Write, true),
            (Open, true),
            (Read, true),
            (Open, true),
            (Read, true),
            (Rewrap, true),
            (Open, false),
            (Shred, true),
            (Write, true),
            (Delete, true),
        ]
    );
    assert!(events.iter().all(|e| e.3.is_none()));
    assert!(!format!("{events:?}").contains("MRN-77"));

    // Labels only when the caller asks.
    let rec2 = Arc::new(Recorder::default());
    let vault = Vault::new(mem, keys)
        .with_hook(rec2.clone())
        .with_labels_in_events(true);
    vault.put(&rng(), meta, b"abc").unwrap();
    let events = rec2.0.lock().unwrap().clone();
    assert_eq!(
        events[0].3.as_deref(),
        Some(&[("patient".to_owned(), "MRN-77".to_owned())][..])
    );
}

#[test]
fn ids_and_duplicates_are_refused() {
    let dir = TempDir::new("ids");
    let (_keys, vault) = fs_vault(&dir);
    vault
        .put(&rng(), Metadata::new("dup", "t", 0, 0), b"1")
        .unwrap();
    assert!(matches!(
        vault
            .put(&rng(), Metadata::new("dup", "t", 0, 0), b"2")
            .unwrap_err(),
        Error::AlreadyExists
    ));
    assert_eq!(vault.get("dup").unwrap().1, b"1");
    for bad in ["", "../etc", ".hidden", "a/b"] {
        assert!(matches!(
            vault
                .put(&rng(), Metadata::new(bad, "t", 0, 0), b"1")
                .unwrap_err(),
            Error::InvalidObjectId { .. }
        ));
    }
    // A writer dropped before finish leaves nothing behind.
    let mut w = vault
        .writer(&rng(), Metadata::new("gone", "t", 0, 0))
        .unwrap();
    w.update(&[0u8; 5000]).unwrap();
    drop(w);
    assert!(matches!(vault.get("gone").unwrap_err(), Error::NotFound));
    let leftovers: Vec<_> = std::fs::read_dir(dir.0.join("vault/objects"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn passphrase_rotation_between_versions() {
    let (v1, params1) =
        PassphraseProvider::create(b"old", MIN_PBKDF2_ITERATIONS, 1, &rng()).unwrap();
    let mem = Arc::new(carevox_vault::MemoryBackend::new());
    let vault = Vault::new(mem.clone(), Arc::new(v1));
    vault
        .put(&rng(), Metadata::new("p", "t", 0, 0), b"payload")
        .unwrap();
    let (v2, _params2) =
        PassphraseProvider::create(b"new", MIN_PBKDF2_ITERATIONS, 2, &rng()).unwrap();
    let both = PassphraseProvider::open(b"old", &params1).unwrap().with(v2);
    let vault = Vault::new(mem, Arc::new(both));
    let report = vault.rotate(&rng(), &mut |_| {}).unwrap();
    assert_eq!((report.to_version, report.rewrapped), (2, 1));
    vault.retire_kek(1).unwrap();
    assert_eq!(vault.get("p").unwrap().1, b"payload");
}

#[test]
fn one_vault_shared_across_threads() {
    let dir = TempDir::new("threads");
    let (_keys, vault) = fs_vault(&dir);
    let vault = Arc::new(vault);
    std::thread::scope(|s| {
        for t in 0..4 {
            let vault = Arc::clone(&vault);
            s.spawn(move || {
                for i in 0..5 {
                    let id = format!("t{t}-{i}");
                    vault
                        .put(&rng(), Metadata::new(&id, "t", 0, 0), &body(&id))
                        .unwrap();
                    assert_eq!(vault.get(&id).unwrap().1, body(&id));
                    if i % 2 == 0 {
                        vault.rewrap(&rng(), &id, 1).unwrap();
                    }
                }
            });
        }
    });
    assert_eq!(vault.list().unwrap().len(), 20);
}

#[test]
fn a_version_used_by_a_writer_in_progress_is_not_retired() {
    let dir = TempDir::new("inflight");
    let (keys, vault) = fs_vault(&dir);
    let mut w = vault
        .writer(&rng(), Metadata::new("slow", "t", 0, 0))
        .unwrap();
    w.update(b"first half").unwrap();
    keys.add_version(&rng()).unwrap();
    vault.rotate(&rng(), &mut |_| {}).unwrap();
    assert!(matches!(
        vault.retire_kek(1).unwrap_err(),
        Error::KekInUse {
            version: 1,
            objects: 1
        }
    ));
    w.update(b", second half").unwrap();
    assert_eq!(w.finish().unwrap().kek_version, 1);
    assert_eq!(vault.get("slow").unwrap().1, b"first half, second half");
    vault.rotate(&rng(), &mut |_| {}).unwrap();
    vault.retire_kek(1).unwrap();
    assert_eq!(vault.get("slow").unwrap().1, b"first half, second half");
}

#[test]
fn garbage_collection_removes_only_keyless_payloads() {
    let dir = TempDir::new("gc");
    let (_keys, vault) = fs_vault(&dir);
    for id in ["keep", "shredded"] {
        vault
            .put(&rng(), Metadata::new(id, "t", 0, 0), &body(id))
            .unwrap();
    }
    vault.shred("shredded").unwrap();
    assert!(dir.0.join("vault/objects/shredded.cvx").exists());
    // A writer in progress whose payload is not yet keyed is left alone.
    let mut w = vault
        .writer(&rng(), Metadata::new("busy", "t", 0, 0))
        .unwrap();
    w.update(b"partial").unwrap();
    assert_eq!(
        vault.collect_garbage().unwrap(),
        vec!["shredded".to_owned()]
    );
    assert!(!dir.0.join("vault/objects/shredded.cvx").exists());
    w.finish().unwrap();
    assert_eq!(vault.get("busy").unwrap().1, b"partial");
    assert_eq!(vault.get("keep").unwrap().1, body("keep"));
    assert!(vault.collect_garbage().unwrap().is_empty());
}
