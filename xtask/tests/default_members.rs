//! A plain `cargo build` or `cargo test` at the root of the workspace must not
//! need a C library installed: the thin bindings to C peers and the
//! benchmarks that use them build only when asked for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

/// Every package that `cargo tree` at the root reaches through any kind of
/// edge (normal, build and dev dependencies), as `name vX.Y.Z` lines.
fn packages_reached_from_the_root() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(env!("CARGO"))
        .current_dir(root)
        .args([
            "tree",
            "--locked",
            "--offline",
            "--edges",
            "normal,build,dev",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_default_build_reaches_no_c_peer() {
    let packages = packages_reached_from_the_root();
    assert!(
        packages.iter().any(|p| p.starts_with("carevox-sip ")),
        "the default members include the library crates: {packages:?}"
    );
    let offending: Vec<_> = packages
        .iter()
        .filter(|p| p.starts_with("carevox-peer-") || p.starts_with("carevox-benches "))
        .collect();
    assert!(
        offending.is_empty(),
        "the default build reaches crates that link C libraries from the system: {offending:?}"
    );
}
