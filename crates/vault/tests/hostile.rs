//! Hostile files and crashes around key material: what a crash leaves
//! behind must not keep a retired key alive, and cost parameters read from
//! disk are bounded before any work is done.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
#![allow(
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::cast_possible_truncation
)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use carevox_vault::{
    Error, FsBackend, KeyError, KeyProvider, LocalKeyFile, MAX_KEY_FILE_LEN, MAX_KEY_FILE_VERSIONS,
    MAX_PBKDF2_ITERATIONS, MIN_PBKDF2_ITERATIONS, Metadata, PassphraseProvider, Vault,
};
use data_encoding::HEXLOWER;
use ring::rand::SystemRandom;

mod common;
use common::{TempDir, random_u64, run_and_kill};

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The files under `dir` whose bytes contain `needle`.
fn holders(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| {
            let b = std::fs::read(p).unwrap();
            b.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

/// The active keys of a key file, read from its documented format: an
/// 18-byte header, then 37-byte entries (version, state, key).
fn active_keys(path: &Path) -> BTreeMap<u32, [u8; 32]> {
    let b = std::fs::read(path).unwrap();
    b[18..]
        .chunks_exact(37)
        .filter(|e| e[4] == 1)
        .map(|e| {
            (
                u32::from_be_bytes(e[..4].try_into().unwrap()),
                e[5..].try_into().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_leftover_key_file_copy_does_not_outlive_retirement() {
    let dir = TempDir::new("leftover");
    let rng = SystemRandom::new();
    let kek = dir.0.join("kek");
    let keys = LocalKeyFile::create(&kek, &rng).unwrap();
    let v1 = active_keys(&kek)[&1];
    // A crash between writing the temporary copy and renaming it over the
    // key file (here: while adding version 2) leaves the copy behind, with
    // version 1 in it.
    let before = std::fs::read(&kek).unwrap();
    keys.add_version(&rng).unwrap();
    drop(keys);
    std::fs::write(
        dir.0.join(format!(".tmp-kek-{}-99", std::process::id())),
        &before,
    )
    .unwrap();
    // A copy of another key file whose name starts the same is not ours.
    std::fs::write(dir.0.join(".tmp-kek-2-1-1"), b"not a copy of kek").unwrap();

    let keys = Arc::new(LocalKeyFile::open(&kek).unwrap());
    let provider: Arc<dyn KeyProvider> = keys.clone();
    let vault = Vault::new(
        Arc::new(FsBackend::open(dir.0.join("vault")).unwrap()),
        provider,
    );
    vault.retire_kek(1).unwrap();
    assert_eq!(keys.versions(), vec![(1, true), (2, false)]);
    assert_eq!(holders(&dir.0, &v1), Vec::<PathBuf>::new());
    assert!(dir.0.join(".tmp-kek-2-1-1").exists());
}

#[test]
fn a_leftover_copy_is_removed_by_open_and_by_every_change() {
    let dir = TempDir::new("sweep");
    let rng = SystemRandom::new();
    let kek = dir.0.join("kek");
    let keys = LocalKeyFile::create(&kek, &rng).unwrap();
    let stale = dir.0.join(".tmp-kek-1-2");
    std::fs::write(&stale, std::fs::read(&kek).unwrap()).unwrap();
    drop(keys);
    let keys = LocalKeyFile::open(&kek).unwrap();
    assert!(!stale.exists(), "open leaves a temporary copy");
    // A copy appearing while the file is open goes with the next change.
    std::fs::write(&stale, std::fs::read(&kek).unwrap()).unwrap();
    keys.add_version(&rng).unwrap();
    assert!(!stale.exists(), "a change leaves a temporary copy");
}

#[test]
fn a_leftover_key_record_copy_does_not_outlive_a_shred() {
    let dir = TempDir::new("shred");
    let rng = SystemRandom::new();
    let keys: Arc<dyn KeyProvider> =
        Arc::new(LocalKeyFile::create(dir.0.join("kek"), &rng).unwrap());
    let vault = Vault::new(
        Arc::new(FsBackend::open(dir.0.join("vault")).unwrap()),
        Arc::clone(&keys),
    );
    vault
        .put(&rng, Metadata::new("vm-1", "audio/wav", 1, 2), b"hello")
        .unwrap();
    let record = std::fs::read(dir.0.join("vault/keys/vm-1.key")).unwrap();
    let wrapped = &record[16..];
    // A rewrap interrupted before its rename.
    std::fs::write(dir.0.join("vault/keys/.tmp-vm-1.key-7-7"), &record).unwrap();
    vault.shred("vm-1").unwrap();
    drop(vault);
    let vault = Vault::new(
        Arc::new(FsBackend::open(dir.0.join("vault")).unwrap()),
        keys,
    );
    assert!(matches!(vault.get("vm-1"), Err(Error::NotFound)));
    assert_eq!(holders(&dir.0, wrapped), Vec::<PathBuf>::new());
}

const DIR_VAR: &str = "CAREVOX_VAULT_KEK_CRASH_DIR";

/// The child of `retired_keys_survive_no_crash`: adds a key version, prints
/// it, retires every older one, forever.
#[test]
#[ignore = "run as a child process by retired_keys_survive_no_crash"]
fn kek_crash_child() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let kek = PathBuf::from(dir).join("kek");
    let keys = LocalKeyFile::open(&kek).unwrap();
    let rng = SystemRandom::new();
    let mut out = std::io::stdout().lock();
    loop {
        let v = keys.add_version(&rng).unwrap();
        let key = active_keys(&kek)[&v];
        writeln!(out, "key {v} {}", HEXLOWER.encode(&key)).unwrap();
        out.flush().unwrap();
        for (old, retired) in keys.versions() {
            if !retired && old != v {
                keys.retire(old).unwrap();
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn retired_keys_survive_no_crash() {
    let dir = TempDir::new("kek-crash");
    let rng = SystemRandom::new();
    let kek = dir.0.join("kek");
    drop(LocalKeyFile::create(&kek, &rng).unwrap());
    let mut known: BTreeMap<u32, [u8; 32]> = active_keys(&kek);
    let mut checked = 0usize;
    for _run in 0..40 {
        let delay = Duration::from_millis(10 + random_u64(&rng) % 120);
        let stdout = run_and_kill("kek_crash_child", &[(DIR_VAR, dir.0.as_os_str())], delay);
        for line in stdout.lines() {
            let mut parts = line.split(' ');
            if let (Some("key"), Some(v), Some(hex)) = (parts.next(), parts.next(), parts.next()) {
                let key = HEXLOWER.decode(hex.as_bytes()).unwrap();
                known.insert(v.parse().unwrap(), key.try_into().unwrap());
            }
        }
        // Opening is what cleans up after the crash.
        let keys = LocalKeyFile::open(&kek).unwrap();
        for (v, retired) in keys.versions() {
            if let (true, Some(key)) = (retired, known.get(&v)) {
                let found = holders(&dir.0, key);
                assert!(
                    found.is_empty(),
                    "retired key version {v} still in {found:?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "no retired version was checked");
}

#[test]
fn pbkdf2_iterations_from_disk_are_bounded() {
    let rng = SystemRandom::new();
    let (_, params) = PassphraseProvider::create(b"pw", MIN_PBKDF2_ITERATIONS, 1, &rng).unwrap();
    for bad in [
        0,
        1,
        MIN_PBKDF2_ITERATIONS - 1,
        MAX_PBKDF2_ITERATIONS + 1,
        u32::MAX,
    ] {
        let mut edited = params.clone();
        edited[15..19].copy_from_slice(&bad.to_be_bytes());
        let e = PassphraseProvider::open(b"pw", &edited).unwrap_err();
        assert!(
            matches!(
                e,
                KeyError::OutOfBounds { what: "PBKDF2 iterations", value, min, max }
                    if value == u64::from(bad)
                        && min == u64::from(MIN_PBKDF2_ITERATIONS)
                        && max == u64::from(MAX_PBKDF2_ITERATIONS)
            ),
            "{bad}: {e:?}"
        );
        assert!(e.is_integrity_failure());
        assert!(e.to_string().contains("PBKDF2 iterations"), "{e}");
        // Creating with such a count is refused the same way.
        assert!(matches!(
            PassphraseProvider::create(b"pw", bad, 1, &rng),
            Err(KeyError::OutOfBounds { .. })
        ));
    }
    // Another format version is its own error.
    let mut edited = params.clone();
    edited[9] = 2;
    assert!(matches!(
        PassphraseProvider::open(b"pw", &edited),
        Err(KeyError::UnsupportedVersion {
            what: "passphrase parameters",
            version: 2
        })
    ));
}

#[test]
fn key_file_counts_and_lengths_are_bounded() {
    let dir = TempDir::new("keyfile");
    let rng = SystemRandom::new();
    let kek = dir.0.join("kek");
    drop(LocalKeyFile::create(&kek, &rng).unwrap());
    let good = std::fs::read(&kek).unwrap();

    // An entry count far beyond the limit.
    let mut b = good.clone();
    b[14..18].copy_from_slice(&u32::MAX.to_be_bytes());
    std::fs::write(&kek, &b).unwrap();
    assert!(matches!(
        LocalKeyFile::open(&kek),
        Err(KeyError::OutOfBounds { what: "key file entry count", value, max, .. })
            if value == u64::from(u32::MAX) && max == u64::from(MAX_KEY_FILE_VERSIONS)
    ));
    // A key file longer than any valid one is refused without being read
    // (a sparse file: no disk is used).
    std::fs::write(&kek, &good).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&kek)
        .unwrap()
        .set_len(MAX_KEY_FILE_LEN + 1)
        .unwrap();
    assert!(matches!(
        LocalKeyFile::open(&kek),
        Err(KeyError::OutOfBounds {
            what: "key file length",
            ..
        })
    ));
    // A truncated header, an unknown format version, a retired entry that
    // still holds key bytes.
    std::fs::write(&kek, &good[..12]).unwrap();
    assert!(matches!(
        LocalKeyFile::open(&kek),
        Err(KeyError::Malformed { .. })
    ));
    let mut b = good.clone();
    b[9] = 7;
    std::fs::write(&kek, &b).unwrap();
    assert!(matches!(
        LocalKeyFile::open(&kek),
        Err(KeyError::UnsupportedVersion {
            what: "key file",
            version: 7
        })
    ));
    let mut b = good.clone();
    b.extend_from_slice(&2u32.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[9; 32]);
    b[17] = 2;
    std::fs::write(&kek, &b).unwrap();
    assert!(matches!(
        LocalKeyFile::open(&kek),
        Err(KeyError::Malformed {
            what: "key file retired entry with key bytes",
            ..
        })
    ));
    std::fs::write(&kek, &good).unwrap();
    assert_eq!(
        LocalKeyFile::open(&kek).unwrap().versions(),
        vec![(1, false)]
    );
}

#[test]
fn a_huge_key_record_is_refused_without_being_read() {
    let dir = TempDir::new("record");
    let rng = SystemRandom::new();
    let keys: Arc<dyn KeyProvider> =
        Arc::new(LocalKeyFile::create(dir.0.join("kek"), &rng).unwrap());
    let vault = Vault::new(
        Arc::new(FsBackend::open(dir.0.join("vault")).unwrap()),
        keys,
    );
    vault
        .put(&rng, Metadata::new("vm-1", "audio/wav", 1, 2), b"hello")
        .unwrap();
    // A sparse 16 GiB key record.
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.0.join("vault/keys/vm-1.key"))
        .unwrap()
        .set_len(1 << 34)
        .unwrap();
    let e = vault.get("vm-1").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                what: "key record wrapped key length",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_integrity_failure());
}
