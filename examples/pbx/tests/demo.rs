//! `carevox-pbx demo` from the command line, in a directory of the test's:
//! every step prints, the checks pass, and what it leaves behind is there
//! (the message played, the exported voicemail, the audit public key).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn the_demo_runs_every_step_and_leaves_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = Command::new(env!("CARGO_BIN_EXE_carevox-pbx"))
        .args(["demo", "--dir"])
        .arg(&run)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for step in [
        "[1 pbx]",
        "[2 register]",
        "[3 voicemail]",
        "[4 playback]",
        "[5 refused]",
        "[6 audit]",
    ] {
        assert!(stdout.contains(step), "{step} missing:\n{stdout}");
    }
    assert!(stdout.contains("damage: none"), "{stdout}");
    assert!(stdout.contains("  … "), "progress lines:\n{stdout}");
    assert!(run.join("message.wav").is_file());
    assert!(run.join("audit.pub").is_file());
    let exported = std::fs::read_dir(&run)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("vm-"));
    assert!(exported, "no exported voicemail");
    // A second run refuses the directory it already filled.
    let again = Command::new(env!("CARGO_BIN_EXE_carevox-pbx"))
        .args(["demo", "--dir"])
        .arg(&run)
        .output()
        .unwrap();
    assert!(!again.status.success());
}
