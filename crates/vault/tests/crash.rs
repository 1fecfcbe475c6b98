//! Crash safety with a real child process: the child (this test binary run
//! again, see `crash_child`) writes objects and rewraps keys in a loop and
//! prints `ack <id>` on stdout after each write returns; the parent kills it
//! with SIGKILL at random moments, many times, then checks that every object
//! is intact or absent and that every acknowledged object is intact.

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

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use carevox_vault::{FsBackend, KeyProvider, LocalKeyFile, Metadata, Vault};
use ring::rand::SystemRandom;

mod common;
use common::{TempDir, random_u64, run_and_kill};

const DIR_VAR: &str = "CAREVOX_VAULT_CRASH_DIR";
const RUN_VAR: &str = "CAREVOX_VAULT_CRASH_RUN";
const KILLS: u32 = 60;

/// The content an object must have, from its id alone.
fn expected(id: &str) -> Vec<u8> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let len = (h % 100_000) as usize;
    let mut x = h;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn open_vault(dir: &Path) -> Vault {
    let keys: Arc<dyn KeyProvider> = Arc::new(LocalKeyFile::open(dir.join("kek")).unwrap());
    let backend = Arc::new(FsBackend::open(dir.join("vault")).unwrap());
    Vault::new(backend, keys).with_segment_size(4096).unwrap()
}

/// The child's work loop. Runs only when the parent starts this binary with
/// the environment variables set; `cargo test` alone skips it.
#[test]
#[ignore = "run as a child process by crash_safety_under_sigkill"]
fn crash_child() {
    let (Some(dir), Some(run)) = (std::env::var_os(DIR_VAR), std::env::var_os(RUN_VAR)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let run = run.to_string_lossy().into_owned();
    let vault = open_vault(&dir);
    let rng = SystemRandom::new();
    let mut out = std::io::stdout().lock();
    for j in 0..100_000u32 {
        let id = format!("r{run}-o{j}");
        vault
            .put(&rng, Metadata::new(&id, "audio/wav", 1, 2), &expected(&id))
            .unwrap();
        writeln!(out, "ack {id}").unwrap();
        out.flush().unwrap();
        // Rewrap some existing object back and forth between versions 1 and 2.
        let objects = vault.list().unwrap();
        if let Some(o) = objects.get(j as usize * 7 % objects.len().max(1)) {
            let to = if o.kek_version == 1 { 2 } else { 1 };
            vault.rewrap(&rng, &o.id, to).unwrap();
            writeln!(out, "rewrapped {}", o.id).unwrap();
            out.flush().unwrap();
        }
    }
}

fn check_intact(vault: &Vault, id: &str, run: u32) {
    let (meta, data) = vault
        .get(id)
        .unwrap_or_else(|e| panic!("run {run}: object {id} is damaged: {e}"));
    assert_eq!(meta.id, id);
    assert!(
        data == expected(id),
        "run {run}: object {id} has wrong content"
    );
}

#[cfg(unix)]
#[test]
fn crash_safety_under_sigkill() {
    let tmp = TempDir::new("crash");
    let dir = &tmp.0;
    let rng = SystemRandom::new();
    let keys = LocalKeyFile::create(dir.join("kek"), &rng).unwrap();
    keys.add_version(&rng).unwrap();
    drop(keys);
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut rewraps = 0usize;
    for run in 0..KILLS {
        let run_text = run.to_string();
        let env = [(DIR_VAR, dir.as_os_str()), (RUN_VAR, OsStr::new(&run_text))];
        let delay = Duration::from_millis(5 + random_u64(&rng) % 200);
        let stdout = run_and_kill("crash_child", &env, delay);
        for line in stdout.lines() {
            if let Some(id) = line.strip_prefix("ack ") {
                acked.insert(id.to_owned());
            } else if line.starts_with("rewrapped ") {
                rewraps += 1;
            }
        }

        // Every object present is intact; every acknowledged object is present.
        // Payloads are written once, so objects of earlier runs can only have
        // been touched through their key record (a rewrap): unwrapping their
        // key and authenticating their header covers that; objects of this
        // run are read in full. Everything is read in full at the end.
        let vault = open_vault(dir);
        let listed: BTreeSet<String> = vault.list().unwrap().into_iter().map(|o| o.id).collect();
        let this_run = format!("r{run}-");
        for id in &listed {
            if id.starts_with(&this_run) {
                check_intact(&vault, id, run);
            } else {
                let meta = vault
                    .metadata(id)
                    .unwrap_or_else(|e| panic!("run {run}: object {id} is damaged: {e}"));
                assert_eq!(meta.id, *id);
            }
        }
        let lost: Vec<&String> = acked.difference(&listed).collect();
        assert!(
            lost.is_empty(),
            "run {run}: acknowledged objects lost: {lost:?}"
        );
        // No temporary files survive reopening.
        for sub in ["vault/objects", "vault/keys"] {
            for e in std::fs::read_dir(dir.join(sub)).unwrap() {
                let name = e.unwrap().file_name();
                assert!(!name.to_string_lossy().starts_with(".tmp-"), "{name:?}");
            }
        }
    }
    assert!(
        acked.len() >= KILLS as usize / 2,
        "children made too little progress"
    );
    assert!(rewraps > 0, "no rewrap happened before a kill");
}
