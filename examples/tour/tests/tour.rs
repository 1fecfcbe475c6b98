//! Runs the whole tour and checks the outcome of every step (never timings).
#![allow(clippy::disallowed_methods)]

use std::os::unix::fs::PermissionsExt;

use carevox_tour::{Access, FRAMES, Options, alert_kind, run};

fn fresh_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "carevox-tour-test-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    assert!(!dir.exists());
    dir
}

#[test]
fn every_safeguard_does_its_part() {
    let dir = fresh_dir("run");
    let report = run(&Options {
        data_dir: Some(dir.clone()),
        ..Options::default()
    })
    .unwrap();
    assert_eq!(report.data_dir, dir);

    // 1. Login.
    assert!(report.login_ok);
    assert!(report.failed_login_seq.is_some());

    // 2-3. Signalling and media.
    assert_eq!(report.srtp_suite, "AES_CM_128_HMAC_SHA1_80");
    assert_eq!(report.frames_protected, FRAMES);
    assert_eq!(report.frames_unprotected, FRAMES);
    assert_eq!(report.reverse_frames, 10);
    assert!(report.tampered_refused);
    assert!(report.replay_refused);

    // 4. Voicemail.
    assert_eq!(report.voicemail_bytes, 44 + FRAMES * 160 * 2);
    assert!(report.voicemail_readable);
    // The write and at least one open and read for each of the three plays.
    assert!(report.vault_events_audited >= 4);

    // 5. Access: the sample policy has no permit for receptionists on
    // voicemail, forbids administrators any ePHI, and lets only on-call
    // physicians break the glass.
    assert!(
        matches!(report.receptionist, Access::NotPermitted { .. }),
        "{}",
        report.receptionist
    );
    assert_eq!(
        report.physician,
        Access::Permitted("care-team-voicemail".into())
    );
    assert_eq!(
        report.administrator_break_glass,
        Access::Forbidden("forbid-admin-ephi".into())
    );
    assert_eq!(
        report.on_call_break_glass,
        Access::Permitted("on-call-break-glass".into())
    );
    assert!(report.break_glass_review);
    assert!(report.idle_logoff);
    let kinds: Vec<&str> = report.alerts.iter().map(alert_kind).collect();
    assert_eq!(
        kinds,
        ["break-the-glass", "break-the-glass", "new-network"],
        "alerts"
    );

    // 6. Proof.
    assert!(report.audit_verified);
    assert!(report.audit_records > report.access_record_seq);
    assert!(report.inclusion_verified);
    assert!(report.inclusion_proof_len > 0);

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn data_is_never_world_readable() {
    let dir = fresh_dir("perms");
    let report = run(&Options {
        data_dir: Some(dir.clone()),
        ..Options::default()
    })
    .unwrap();
    let mode = std::fs::metadata(&report.data_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "data dir mode {mode:o}");
    let key = std::fs::metadata(report.data_dir.join("vault.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key & 0o077, 0, "key file mode {key:o}");
    // Nothing below the data directory is readable by others.
    let mut stack = vec![report.data_dir.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            assert_eq!(
                meta.permissions().mode() & 0o077,
                0,
                "{} is open to others",
                entry.path().display()
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn default_data_dir_is_fresh_and_private() {
    let report = run(&Options::default()).unwrap();
    assert!(report.data_dir.starts_with(std::env::temp_dir()));
    let mode = std::fs::metadata(&report.data_dir)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    std::fs::remove_dir_all(&report.data_dir).unwrap();
}

#[test]
fn a_non_empty_directory_is_refused_and_left_alone() {
    let dir = fresh_dir("busy");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("notes.txt"), b"someone else's").unwrap();
    let err = run(&Options {
        data_dir: Some(dir.clone()),
        ..Options::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
