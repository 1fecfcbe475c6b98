//! baresip (Debian `baresip-core`) leaves a voicemail through the PBX and
//! the admin console reads it back: over TLS on 127.0.0.1 with mandatory
//! SDES-SRTP, Alice's baresip (a legacy MD5 phone, under `[dangerous]
//! allow_md5_for_legacy_users`) calls Bob, whose baresip rings and nobody
//! answers; voicemail answers and records Alice's 440 Hz sine until the
//! longest message ends the call. Bob's baresip (its `mwi` module)
//! subscribes to its mailbox's message summary (RFC 3842) and is told
//! first that nothing waits, then that one message does. Then `carevox-pbx admin` (the binary, its
//! credentials on standard input) enrols a physician on Bob's mailbox and
//! exports the message through the running server's control socket: the
//! WAV file is owner-only, holds exactly the vault's samples, and carries
//! the tone, found by frequency.
//!
//! A missing baresip fails the test, naming `.ci/install-deps`.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use carevox::authz::totp::{Totp, TotpSecret};
use carevox_pbx::admin::control::{ControlParts, ControlServer, ControlSettings};
use carevox_pbx::config::Config;
use carevox_pbx::registrar::{Md5Use, Registrar, RegistrarSettings};
use carevox_pbx::server::{Server, ServerParts, ServerSettings};
use carevox_pbx::store::Store;
use carevox_testkit::peer::{Peer, start_baresip};
use carevox_testkit::pki::Ca;
use carevox_testkit::unix_now;
use carevox_transport::TlsServerConfig;
use ring::rand::SystemRandom;

mod common;

use common::{Users, frames_with_tone, pcmu};

const BIN: &str = env!("CARGO_BIN_EXE_carevox-pbx");
const PASSWORD: &str = "stethoscope on the desk";

async fn wait_for(peer: &Peer, text: &str, within: Duration) {
    let until = Instant::now() + within;
    while !peer.log().to_lowercase().contains(text) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        peer.log().to_lowercase().contains(text),
        "baresip never printed {text:?}:\n{}",
        peer.log()
    );
}

fn admin(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(["admin", "--config"])
        .arg(config)
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
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "carevox-pbx admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_left_by_baresip_exports_as_its_tone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let toml = format!(
        "[server]\nrealm = \"carevox.test\"\ndomains = [\"127.0.0.1\"]\n\
         data_dir = \"{}\"\nmaster_key_file = \"{}\"\n\
         [dangerous]\nallow_md5_for_legacy_users = true\n",
        root.join("data").display(),
        root.join("keys/vault.key").display(),
    );
    let config_path = root.join("pbx.toml");
    std::fs::write(&config_path, &toml).unwrap();
    let config = Config::from_toml(&toml).unwrap();
    let rng = Arc::new(SystemRandom::new());
    let store = Store::open(&config, &*rng, unix_now()).unwrap();

    let ca = Ca::new("carevox test CA");
    let id = ca.issue(&["127.0.0.1"]);
    let registrar = Registrar::new(
        RegistrarSettings::from_config(&config, "pbx-test"),
        store.nonce_secret.expose(),
    )
    .unwrap();
    let mut settings = ServerSettings::from_config(&config).unwrap();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.media_ports = (47200, 47299);
    settings.media_ip = "127.0.0.1".parse().unwrap();
    settings.max_message = Duration::from_secs(4);
    settings.no_answer = Duration::from_secs(3);
    let server = Server::start(
        settings,
        ServerParts {
            registrar,
            users: Arc::new(Users::with_passwords(&["alice", "bob"], Md5Use::Only)),
            vault: store.vault.clone(),
            audit: store.sink.clone(),
            rng: rng.clone(),
            tls: TlsServerConfig::new(id.chain.clone(), id.key.clone_key()).unwrap(),
        },
    )
    .await
    .unwrap();
    let control = ControlServer::start(
        ControlSettings::from_config(&config),
        ControlParts::from_store(&store, rng.clone()),
    )
    .unwrap();
    let port = server.addr().port();

    // Bob's phone registers and subscribes to its message summary.
    let bob = start_baresip(
        &ca.pem,
        &format!(
            "<sip:bob@127.0.0.1:{port};transport=tls>;auth_pass=bob-secret;regint=60;\
             mediaenc=srtp-mand;audio_codecs=PCMU;\
             outbound=\"sip:127.0.0.1:{port};transport=tls\""
        ),
        None,
        "module_app mwi.so\n",
    );
    wait_for(&bob, "messages-waiting: no", Duration::from_secs(20)).await;

    // Alice calls Bob, who does not answer: voicemail answers, records her
    // sine, and hangs up after the longest message.
    let alice = start_baresip(
        &ca.pem,
        &format!(
            "<sip:alice@127.0.0.1:{port};transport=tls>;auth_pass=alice-secret;regint=60;\
             mediaenc=srtp-mand;audio_codecs=PCMU"
        ),
        Some(&format!("/dial sip:bob@127.0.0.1:{port}")),
        "",
    );
    wait_for(&alice, "call established", Duration::from_secs(20)).await;
    wait_for(&alice, "session closed", Duration::from_secs(15)).await;
    let mut stored = None;
    for _ in 0..50 {
        let list = store.vault.list().unwrap();
        if let Some(o) = list.iter().find(|o| o.id.starts_with("vm-")) {
            stored = Some(o.id.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let vm = stored.expect("a voicemail in the vault");
    drop(alice);
    // Bob's phone hears of it.
    wait_for(&bob, "messages-waiting: yes", Duration::from_secs(10)).await;
    assert!(
        bob.log().contains("Voice-Message: 1/0 (0/0)"),
        "{}",
        bob.log()
    );

    // The console, through the binary: the first account on Bob's
    // mailbox, then the export.
    let config_for = config_path.clone();
    let wav = root.join("bob.wav");
    let wav_for = wav.clone();
    let vm_for = vm.clone();
    let out = tokio::task::spawn_blocking(move || {
        let out = admin(
            &config_for,
            &[
                "enrol-first",
                "dr.lee",
                "--role",
                "physician",
                "--mailbox",
                "bob",
            ],
            &format!("{PASSWORD}\n"),
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let uri = text.lines().find(|l| l.starts_with("otpauth://")).unwrap();
        let start = uri.find("secret=").unwrap() + "secret=".len();
        let end = uri[start..].find('&').map_or(uri.len(), |e| start + e);
        let totp = TotpSecret::from_base32(&uri[start..end]).unwrap();
        let code = Totp::default().generate(&totp, unix_now()).unwrap();
        admin(
            &config_for,
            &["voicemail", "export", &vm_for, wav_for.to_str().unwrap()],
            &format!("dr.lee\n{PASSWORD}\n{}\n", code.as_str()),
        )
    })
    .await
    .unwrap();
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.contains("bytes of audio written"), "{said}");

    assert_eq!(
        std::fs::metadata(&wav).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    let (meta, samples) = store.vault.get(&vm).unwrap();
    assert_eq!(meta.content_type, "audio/PCMU");
    assert_eq!(&bytes[46..], &samples[..]);
    assert!(samples.len() >= 8000, "{} samples", samples.len());
    let share = frames_with_tone(&pcmu(&bytes[46..]), 8000, 440.0);
    assert!(
        share > 0.6,
        "the exported message carries the tone in {share} of its frames"
    );

    // The voicemail service's vault operations (the deposit, after the
    // call's own records) are all in the audit log.
    assert!(store.vault_hook.outcomes().len() >= 2);
    assert_eq!(
        store.vault_hook.failures(),
        0,
        "{:?}",
        store.vault_hook.outcomes()
    );

    control.shutdown();
    server.shutdown().await;
    drop(bob);
}
