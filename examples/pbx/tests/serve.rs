//! `carevox-pbx serve` as a process on 127.0.0.1: a fresh data directory
//! is made owner-only with its keys, a user written by `user-entry`
//! registers from an SDK phone over TLS, a wrong password is refused, the
//! configuration load is the audit log's first record, the admin console's
//! socket is owner-only and `carevox-pbx admin` enrols, logs in and lists
//! voicemail through it from another process, SIGTERM stops it cleanly
//! and removes the socket; an invalid configuration is refused with its location;
//! `user-entry --voicemail-pin` writes a PIN hash that verifies only that PIN.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use carevox::sip::auth::Password;
use carevox::sip::sdp::crypto::CryptoSuite;
use carevox_pbx::media::Source;
use carevox_pbx::phone::{Phone, PhoneConfig, PhoneError};
use carevox_pbx::registrar::UserDirectory;
use carevox_pbx::store::UsersFile;
use carevox_testkit::free_tcp_port;
use carevox_testkit::pki::Ca;
use carevox_transport::TlsClientConfig;
use ring::rand::SystemRandom;

const BIN: &str = env!("CARGO_BIN_EXE_carevox-pbx");
const NAME: &str = "pbx.clinic.test";

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn phone_config(ca: &Ca, addr: SocketAddr, user: &str, password: &str) -> PhoneConfig {
    PhoneConfig {
        user: user.to_owned().into(),
        domain: "clinic.test".to_owned(),
        password: Password::new(password),
        pbx: addr,
        server_name: NAME.to_owned(),
        tls: TlsClientConfig::builder(vec![ca.cert.clone()])
            .build()
            .unwrap(),
        media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        source: Source::Silent,
        suites: vec![CryptoSuite::AesCm128HmacSha1_80],
        allow_md5: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_registers_a_user_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ca = Ca::new("clinic test CA");
    let id = ca.issue(&[NAME]);
    std::fs::write(root.join("cert.pem"), &id.cert_pem).unwrap();
    std::fs::write(root.join("key.pem"), &id.key_pem).unwrap();
    let port = free_tcp_port();
    let data = root.join("data");
    let config = format!(
        "[server]\nrealm = \"clinic.test\"\ndomains = [\"clinic.test\"]\n\
         data_dir = \"{}\"\nmaster_key_file = \"{}\"\n\
         [tls]\nlisten = [\"127.0.0.1:{port}\"]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n\
         [media]\nrtp_port_min = 44000\nrtp_port_max = 44099\n",
        data.display(),
        root.join("keys/vault.key").display(),
        root.join("cert.pem").display(),
        root.join("key.pem").display(),
    );
    let config_path = root.join("pbx.toml");
    std::fs::write(&config_path, config).unwrap();

    // The user's entry, from a password on standard input.
    let mut entry = Command::new(BIN)
        .args(["user-entry", "alice", "--realm", "clinic.test"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    entry
        .stdin
        .take()
        .unwrap()
        .write_all(b"alice-secret\n")
        .unwrap();
    let out = entry.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("ha1_sha256") && !text.contains("alice-secret"),
        "{text}"
    );
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("users.toml"), text).unwrap();

    let mut server = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("serving SIP over TLS"), "{first}");
    assert!(first.contains("1 users"), "{first}");

    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let rng = Arc::new(SystemRandom::new());
    let mut alice = Phone::start(
        phone_config(&ca, addr, "alice", "alice-secret"),
        rng.clone(),
    )
    .await
    .unwrap();
    alice.register(120).await.unwrap();
    let mut mallory = Phone::start(phone_config(&ca, addr, "alice", "guess"), rng)
        .await
        .unwrap();
    assert!(matches!(
        mallory.register(120).await,
        Err(PhoneError::Refused { status: 401 })
    ));

    // The data directory: owner-only, with its keys.
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("nonce.key")), 0o600);
    assert_eq!(mode(&data.join("users.toml")), 0o600);
    assert_eq!(mode(&data.join("audit/signing.key")), 0o600);
    assert!(root.join("keys/vault.key").exists());
    assert!(data.join("vault").is_dir());
    // The admin console's control socket: owner-only, gone after the stop.
    let second = lines.next().unwrap().unwrap();
    assert!(second.contains("admin console on"), "{second}");
    assert_eq!(mode(&data.join("admin.sock")), 0o600);
    // A second process reaches the audit log and the vault only through
    // the server: the first account enrols, logs in and lists voicemail.
    let admin = |args: &[&str], input: &str| {
        let mut child = Command::new(BIN)
            .args(["admin", "--config"])
            .arg(&config_path)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let enrolled = admin(
        &["enrol-first", "root", "--role", "administrator"],
        "correct horse battery\n",
    );
    let uri = enrolled
        .lines()
        .find(|l| l.starts_with("otpauth://"))
        .unwrap();
    let start = uri.find("secret=").unwrap() + "secret=".len();
    let end = uri[start..].find('&').map_or(uri.len(), |e| start + e);
    let totp = carevox::authz::totp::TotpSecret::from_base32(&uri[start..end]).unwrap();
    let code = carevox::authz::totp::Totp::default()
        .generate(&totp, carevox_testkit::unix_now())
        .unwrap();
    let listed = admin(
        &["voicemail", "list"],
        &format!("root\ncorrect horse battery\n{}\n", code.as_str()),
    );
    assert!(listed.contains("0 listed, 0 withheld"), "{listed}");

    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopping")), "{rest:?}");
    // The audit log was written.
    let audit_files = std::fs::read_dir(data.join("audit")).unwrap().count();
    assert!(audit_files >= 2, "{audit_files}");
    assert!(!data.join("admin.sock").exists());
}

#[test]
fn an_invalid_configuration_is_refused_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pbx.toml");
    std::fs::write(
        &path,
        "[server]\nrealm = \"x\"\n[media]\nrtp_port_min = 80\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("media.rtp_port_min"), "{err}");
    assert!(err.contains("line 4"), "{err}");
}

/// Runs `user-entry bob --realm clinic.test` with `args` and `stdin`.
fn user_entry(args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut entry = Command::new(BIN)
        .args(["user-entry", "bob", "--realm", "clinic.test"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    entry.stdin.take().unwrap().write_all(stdin).unwrap();
    entry.wait_with_output().unwrap()
}

#[test]
fn user_entry_with_a_voicemail_pin_writes_a_hash_of_that_pin() {
    let out = user_entry(&["--voicemail-pin"], b"bob-secret\n2468\n");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("voicemail_pin = \"$argon2id$v=19$m=19456,t=2,p=1$"),
        "{text}"
    );
    assert!(
        !text.contains("bob-secret") && !text.contains("2468"),
        "{text}"
    );
    let users = UsersFile::parse(&text).unwrap();
    let pin = users.user("bob").unwrap().voicemail_pin.unwrap();
    assert!(pin.verify("2468"));
    assert!(!pin.verify("2469"));

    // Without the flag a second line is not read and no PIN is written.
    let out = user_entry(&[], b"bob-secret\n2468\n");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("voicemail_pin"), "{text}");

    // A PIN that is not 4 to 12 digits, or none at all, is a usage error
    // that prints no entry and does not echo what was typed.
    for stdin in [
        &b"bob-secret\n24a8\n"[..],
        b"bob-secret\n123\n",
        b"bob-secret\n1234567890123\n",
        b"bob-secret\n",
        b"bob-secret\n\n",
    ] {
        let out = user_entry(&["--voicemail-pin"], stdin);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("voicemail PIN"), "{err}");
        assert!(
            !err.contains("24a8") && !err.contains("bob-secret"),
            "{err}"
        );
    }
}
