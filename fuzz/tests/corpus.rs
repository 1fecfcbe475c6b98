//! Replays the committed fuzz corpus through the fuzz entry points on a stable
//! toolchain: every file under `corpus/<target>/` goes through the function
//! `carevox_fuzz` lists for `<target>`.

use std::fs;
use std::path::{Path, PathBuf};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// The directories under `corpus/`, by name.
fn corpus_dirs() -> Vec<(String, PathBuf)> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(corpus_root()).expect("fuzz/corpus exists") {
        let entry = entry.expect("readable corpus entry");
        if entry.file_type().expect("file type").is_dir() {
            let name = entry.file_name().into_string().expect("UTF-8 target name");
            dirs.push((name, entry.path()));
        }
    }
    dirs.sort();
    dirs
}

#[test]
fn every_corpus_directory_belongs_to_a_target() {
    for (name, _) in corpus_dirs() {
        assert!(
            carevox_fuzz::target(&name).is_some(),
            "fuzz/corpus/{name} has no entry in carevox_fuzz::TARGETS"
        );
    }
}

#[test]
fn every_target_has_a_seed_corpus() {
    for (name, _) in carevox_fuzz::TARGETS {
        let dir = corpus_root().join(name);
        let seeds = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("fuzz/corpus/{name}: {e}"))
            .count();
        assert!(seeds > 0, "fuzz/corpus/{name} holds no seed input");
    }
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("fuzz/Cargo.toml");
    for (name, _) in carevox_fuzz::TARGETS {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz_targets")
            .join(format!("{name}.rs"));
        assert!(source.is_file(), "fuzz_targets/{name}.rs is missing");
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] named {name}"
        );
    }
}

#[test]
fn replay_corpus() {
    let mut replayed = 0usize;
    for (name, dir) in corpus_dirs() {
        let Some(entry) = carevox_fuzz::target(&name) else {
            continue; // reported by every_corpus_directory_belongs_to_a_target
        };
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .expect("readable corpus directory")
            .map(|e| e.expect("readable corpus entry").path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let input = fs::read(&file).expect("readable corpus file");
            let outcome = std::panic::catch_unwind(|| entry(&input));
            assert!(outcome.is_ok(), "{name}: input {} panicked", file.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} corpus inputs");
}
