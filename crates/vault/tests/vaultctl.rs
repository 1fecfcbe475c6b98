//! The `vaultctl` example as a user runs it: exit codes, and a `get` that
//! never leaves a partial output file behind.
//!
//! `cargo test -p carevox-vault` builds the crate's examples beside the test
//! binaries, and these tests run the built `vaultctl` from there. Running
//! this file alone (`--test vaultctl`) does not rebuild the example: build
//! it first with `cargo build -p carevox-vault --example vaultctl`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::disallowed_methods, clippy::cast_possible_truncation)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use data_encoding::HEXLOWER;
use ring::rand::{SecureRandom, SystemRandom};

fn vaultctl() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/vaultctl
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let bin = dir.join(format!("vaultctl{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} missing: run through `cargo test`, which builds the examples",
        bin.display()
    );
    bin
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let mut r = [0u8; 8];
        SystemRandom::new().fill(&mut r).unwrap();
        let p =
            std::env::temp_dir().join(format!("carevox-vaultctl-{tag}-{}", HEXLOWER.encode(&r)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(vaultctl()).args(args).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

#[test]
fn exit_codes_follow_shell_conventions() {
    let help = run(&[os("--help")]);
    assert_eq!(code(&help), 0);
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage"));
    let version = run(&[os("--version")]);
    assert_eq!(code(&version), 0);
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(code(&run(&[])), 2);
    assert_eq!(code(&run(&[os("/tmp/x"), os("frobnicate")])), 2);
    assert_eq!(code(&run(&[os("/tmp/x"), os("get")])), 2);
    assert_eq!(
        code(&run(&[
            os("/tmp/x"),
            os("put"),
            os("id"),
            os("f"),
            os("--label"),
            os("novalue")
        ])),
        2
    );
    let dir = TempDir::new("codes");
    let missing = run(&[dir.0.as_os_str(), os("get"), os("nope")]);
    assert_eq!(code(&missing), 1);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
}

fn segment_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn get_leaves_no_partial_output_after_an_integrity_failure() {
    let dir = TempDir::new("partial");
    let vault = dir.0.join("v");
    let out_dir = dir.0.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let input = dir.0.join("in.bin");
    // Five 64 KiB segments and a short one.
    let content = segment_of(5 * 65_536 + 100);
    std::fs::write(&input, &content).unwrap();
    let put = run(&[
        vault.as_os_str(),
        os("put"),
        os("vm-1"),
        input.as_os_str(),
        os("--label"),
        os("patient=MRN-1"),
    ]);
    assert_eq!(code(&put), 0, "{}", String::from_utf8_lossy(&put.stderr));

    // Intact: the output is the content, and nothing else is left.
    let out = out_dir.join("vm-1.bin");
    let got = run(&[vault.as_os_str(), os("get"), os("vm-1"), out.as_os_str()]);
    assert_eq!(code(&got), 0, "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), content);
    assert_eq!(files_in(&out_dir), vec!["vm-1.bin"]);

    // Segment 3 damaged: opening succeeds (the final segment is intact),
    // reading fails at segment 3.
    let payload = vault.join("vault/objects/vm-1.cvx");
    let mut bytes = std::fs::read(&payload).unwrap();
    let at = bytes.len() - 100 - 16 - 2 * (65_536 + 16) + 10;
    bytes[at] ^= 1;
    std::fs::write(&payload, &bytes).unwrap();
    let fresh = out_dir.join("fresh.bin");
    let bad = run(&[vault.as_os_str(), os("get"), os("vm-1"), fresh.as_os_str()]);
    assert_eq!(code(&bad), 1);
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("segment 3"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // No partial file, no temporary file; an earlier output is untouched.
    assert_eq!(files_in(&out_dir), vec!["vm-1.bin"]);
    let again = run(&[vault.as_os_str(), os("get"), os("vm-1"), out.as_os_str()]);
    assert_eq!(code(&again), 1);
    assert_eq!(std::fs::read(&out).unwrap(), content);
    assert_eq!(files_in(&out_dir), vec!["vm-1.bin"]);

    // A range before the damage still reads.
    let part = out_dir.join("part.bin");
    let range = run(&[
        vault.as_os_str(),
        os("get"),
        os("vm-1"),
        part.as_os_str(),
        os("--range"),
        os("10"),
        os("1000"),
    ]);
    assert_eq!(code(&range), 0);
    assert_eq!(std::fs::read(&part).unwrap(), content[10..1010]);
}
