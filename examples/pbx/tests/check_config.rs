//! `check-config`: each safeguard flips to weakened on the setting that
//! weakens it, with a reason naming the setting; and the binary's exit
//! codes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::Command;

use carevox_pbx::check::{Safeguard, Status, check_config};
use carevox_pbx::config::Config;

/// The weaknesses of `safeguard` under `toml`, after checking that every
/// other safeguard stayed met.
fn weaknesses(toml: &str, safeguard: Safeguard) -> Vec<String> {
    let config = Config::from_toml(toml).expect("valid configuration");
    let report = check_config(&config);
    let finding = report.finding(safeguard).expect("checked");
    assert_eq!(finding.status(), Status::Weakened, "{report}");
    finding.weaknesses().map(|r| r.text.clone()).collect()
}

fn only_weakened(toml: &str) -> Vec<Safeguard> {
    let report = check_config(&Config::from_toml(toml).expect("valid configuration"));
    report
        .findings
        .iter()
        .filter(|f| f.status() == Status::Weakened)
        .map(|f| f.safeguard)
        .collect()
}

#[test]
fn udp_weakens_transmission_security_and_integrity() {
    let toml = "[dangerous]\nudp_listen = [\"127.0.0.1:5060\"]\n";
    let e1 = weaknesses(toml, Safeguard::TransmissionSecurity);
    assert_eq!(
        e1,
        ["SIP over UDP is enabled: signalling and SDES keys travel in clear"]
    );
    assert_eq!(
        only_weakened(toml),
        [Safeguard::Integrity, Safeguard::TransmissionSecurity]
    );
}

#[test]
fn tcp_without_tls_weakens_transmission_security() {
    let toml = "[dangerous]\ntcp_listen = [\"127.0.0.1:5060\"]\n";
    let e1 = weaknesses(toml, Safeguard::TransmissionSecurity);
    assert!(e1[0].contains("TCP without TLS"), "{e1:?}");
}

#[test]
fn a_long_idle_logoff_weakens_access_control() {
    let toml = "[admin]\nidle_logoff_secs = 3600\n";
    let a1 = weaknesses(toml, Safeguard::AccessControl);
    assert!(a1[0].contains("idle_logoff_secs = 3600"), "{a1:?}");
    assert_eq!(only_weakened(toml), [Safeguard::AccessControl]);
    // 900 s is the limit and still met.
    assert!(only_weakened("[admin]\nidle_logoff_secs = 900\n").is_empty());
}

#[test]
fn no_emergency_access_or_a_long_grant_weakens_access_control() {
    let a1 = weaknesses(
        "[admin]\nemergency_access = false\n",
        Safeguard::AccessControl,
    );
    assert!(a1[0].contains("no break-the-glass"), "{a1:?}");
    let a1 = weaknesses(
        "[admin]\nemergency_access_max_minutes = 600\n",
        Safeguard::AccessControl,
    );
    assert!(a1[0].contains("600"), "{a1:?}");
}

#[test]
fn the_vault_key_inside_the_data_directory_weakens_encryption_at_rest() {
    let toml = "[server]\ndata_dir = \"/srv/pbx\"\nmaster_key_file = \"/srv/pbx/keys/vault.key\"\n";
    let a2iv = weaknesses(toml, Safeguard::EncryptionAtRest);
    assert!(a2iv[0].contains("inside server.data_dir"), "{a2iv:?}");
    assert_eq!(only_weakened(toml), [Safeguard::EncryptionAtRest]);
    // A sibling directory whose name merely starts the same is outside.
    assert!(
        only_weakened(
            "[server]\ndata_dir = \"/srv/pbx\"\nmaster_key_file = \"/srv/pbx-keys/vault.key\"\n"
        )
        .is_empty()
    );
}

#[test]
fn recorded_calls_are_reported_under_encryption_at_rest() {
    let met = |toml: &str| -> String {
        let report = check_config(&Config::from_toml(toml).expect("valid configuration"));
        assert!(report.all_met(), "{report}");
        report.to_string()
    };
    assert!(!met("").contains("recorded"));
    let users = met("[recording]\nusers = [\"bob\", \"carol\"]\n");
    assert!(
        users.contains("the calls of 2 users are recorded into the vault after an announcement"),
        "{users}"
    );
    assert!(!users.contains("bob"), "no user named in the report");
    assert!(met("[recording]\nall_calls = true\n").contains("every answered call is recorded"));
}

#[test]
fn audit_settings_weaken_audit_controls() {
    let b = weaknesses("[audit]\nmonitor = false\n", Safeguard::AuditControls);
    assert!(b[0].contains("audit.monitor = false"), "{b:?}");
    let b = weaknesses("[retention]\naudit_days = 365\n", Safeguard::AuditControls);
    assert!(b[0].contains("six years"), "{b:?}");
    let b = weaknesses(
        "[audit]\ncheckpoint_interval_records = 50000\n",
        Safeguard::AuditControls,
    );
    assert!(b[0].contains("50000"), "{b:?}");
}

#[test]
fn a_32_bit_srtp_tag_weakens_integrity() {
    let toml =
        "[media]\nsrtp_suites = [\"AES_CM_128_HMAC_SHA1_80\", \"AES_CM_128_HMAC_SHA1_32\"]\n";
    let c1 = weaknesses(toml, Safeguard::Integrity);
    assert!(c1[0].contains("AES_CM_128_HMAC_SHA1_32"), "{c1:?}");
    assert!(!c1[0].contains("SHA1_80"), "{c1:?}");
    assert_eq!(only_weakened(toml), [Safeguard::Integrity]);
}

#[test]
fn md5_or_lax_lockout_weakens_authentication_and_admins_keep_mfa() {
    let toml = "[dangerous]\nallow_md5_for_legacy_users = true\n";
    let d = weaknesses(toml, Safeguard::Authentication);
    assert!(d[0].contains("MD5"), "{d:?}");
    assert_eq!(only_weakened(toml), [Safeguard::Authentication]);
    let report = check_config(&Config::from_toml(toml).unwrap());
    assert_eq!(report.dangerous.len(), 1);
    let d = weaknesses("[lockout]\nfree_failures = 50\n", Safeguard::Authentication);
    assert!(d[0].contains("free_failures = 50"), "{d:?}");
    // Administrators without a second factor cannot be configured at all.
    let err = Config::from_toml("[admin]\nrequire_mfa = false\n").unwrap_err();
    assert!(err.to_string().contains("admin.require_mfa"), "{err}");
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_carevox-pbx"))
        .args(args)
        .output()
        .expect("run carevox-pbx");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_are_0_met_1_weakened_2_invalid_or_usage() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/pbx.example.toml");
    let (code, out, _) = run(&["check-config", example]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("164.312(e)(1) transmission security: met"),
        "{out}"
    );

    let weak = dir.path().join("weak.toml");
    std::fs::write(&weak, "[dangerous]\nudp_listen = [\"127.0.0.1:5060\"]\n").unwrap();
    let (code, out, _) = run(&["check-config", weak.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("164.312(e)(1) transmission security: weakened"),
        "{out}"
    );
    assert!(out.contains("dangerous.udp_listen"), "{out}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[registrar]\n\nmax_expires_secs = 1\n").unwrap();
    let (code, out, err) = run(&["check-config", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("line 3, column 20, at `registrar.max_expires_secs`"),
        "{err}"
    );

    let (code, _, err) = run(&[
        "check-config",
        dir.path().join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(&["check-config"]);
    assert_eq!(code, 2);
    let (code, _, _) = run(&["serve"]);
    assert_eq!(code, 2, "no serve subcommand yet");
    let (code, out, _) = run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("carevox-pbx "), "{out}");
    let (code, out, _) = run(&["check-config", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("164.312"), "{out}");
}
