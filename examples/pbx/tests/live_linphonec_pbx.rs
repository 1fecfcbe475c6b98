//! linphonec (Debian `linphone-cli`) with the PBX, over TLS on 127.0.0.1:
//!
//! - linphonec registers, reaching the PBX as `localhost`, trusting only a
//!   test CA made at run time and checking the certificate and its name;
//!   the PBX challenges with SHA-256 then SHA-512-256 (no MD5) and audits
//!   the registration as answered with SHA-256.
//! - baresip calls linphonec through the PBX with mandatory SDES-SRTP
//!   (baresip 1.0 answers only MD5, so Alice is a legacy phone under
//!   `[dangerous] allow_md5_for_legacy_users`; linphonec's Bob is not);
//!   linphonec answers on its own (`-a`) and, with no sound card
//!   (`soundcard use files`), records what it decodes (`record FILE`);
//!   the recording carries baresip's 440 Hz tone, found by frequency; what
//!   the relay sends and receives on the wire, captured with tshark, is
//!   SRTP with an 80-bit tag on both legs from which no tone can be
//!   recovered.
//!
//! - linphonec calls baresip through the PBX: its INVITE answers the PBX's
//!   407 with SHA-256 digest, baresip answers on its own, and what baresip
//!   decodes (dumped by its `sndfile` module) carries the 440 Hz tone
//!   linphonec plays from a WAV file (`soundcard use files`, `play FILE`).
//!
//! - linphonec calls the voicemail number (`*97`), types its PIN (each
//!   digit a line on its console, sent as an RFC 4733 telephone-event over
//!   SRTP), and hears the message waiting in its mailbox (a 440 Hz tone,
//!   found by frequency in what it recorded) before the PBX hangs up; the
//!   PIN check and the listening are in the audit records.
//!
//! linphonec needs a HOME holding its data directory; it verifies the
//! server's certificate by DNS name, which is why it addresses the PBX as
//! `localhost` (IPv6 off, so 127.0.0.1). A missing linphonec, baresip or
//! tshark fails the test, naming `.ci/install-deps`.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use carevox::audio::G711;
use carevox::audit::{Action, AuthMethod, EventType, Outcome};
use carevox::vault::{LocalKeyFile, MemoryBackend, Metadata, Vault};
use carevox_pbx::config::Config;
use carevox_pbx::registrar::{Md5Use, Registrar, RegistrarSettings};
use carevox_pbx::server::{Server, ServerParts, ServerSettings};
use carevox_testkit::peer::{LinphonecAccount, Peer, start_baresip, start_linphonec};
use carevox_testkit::pki::Ca;
use carevox_transport::TlsServerConfig;
use ring::rand::SystemRandom;

mod common;

use common::live::{
    appears, capture, decoded_dump, detail, pcmu_packets, registered, stop_capture, wav_samples,
};
use common::{Capture, Users, frames_with_tone};

const REALM: &str = "carevox.test";

/// The PBX on a free loopback port with the relay on `media_ports`, its
/// certificate naming `localhost` (for linphonec) and `127.0.0.1`; Alice
/// is a legacy MD5 phone (baresip), Bob (linphonec) is not. Bob's
/// voicemail PIN is 2468 and a message waits in his mailbox.
async fn pbx(ca: &Ca, media_ports: (u16, u16)) -> (Server, Arc<Capture>, tempfile::TempDir) {
    let id = ca.issue(&["localhost", "127.0.0.1"]);
    let config = Config::from_toml(&format!(
        "[server]\nrealm = \"{REALM}\"\ndomains = [\"127.0.0.1\"]\n\
         [dangerous]\nallow_md5_for_legacy_users = true\n"
    ))
    .unwrap();
    let rng = Arc::new(SystemRandom::new());
    let registrar = Registrar::new(
        RegistrarSettings::from_config(&config, "pbx-test"),
        &[5u8; 32],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = LocalKeyFile::create(dir.path().join("kek"), &*rng).unwrap();
    let vault = Arc::new(Vault::new(Arc::new(MemoryBackend::new()), Arc::new(keys)));
    // Bob has a message waiting: two seconds of a 440 Hz tone from Alice.
    let message: Vec<u8> = (0..16_000u32)
        .map(|n| {
            let t = f64::from(n) / 8000.0;
            G711::Pcmu.encode((8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16)
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    vault
        .put(
            &*rng,
            Metadata::new("vm-waiting", G711::Pcmu.media_type(), now, now + 86_400)
                .label("caller", "alice")
                .label("callee", "bob"),
            &message,
        )
        .unwrap();
    let mut settings = ServerSettings::from_config(&config).unwrap();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.media_ports = media_ports;
    settings.media_ip = "127.0.0.1".parse().unwrap();
    let mut users = Users::with_passwords(&["alice"], Md5Use::Only);
    users
        .0
        .extend(Users::with_passwords(&["bob"], Md5Use::Refused).0);
    let users = users.with_pins(&[("bob", "2468")]);
    let audit = Arc::new(Capture::default());
    let server = Server::start(
        settings,
        ServerParts {
            registrar,
            users: Arc::new(users),
            vault,
            audit: audit.clone(),
            rng,
            tls: TlsServerConfig::new(id.chain.clone(), id.key.clone_key()).unwrap(),
        },
    )
    .await
    .unwrap();
    (server, audit, dir)
}

/// linphonec as Bob of the PBX at `pbx`, with `sip_extra` in its `[sip]`
/// section and `args` on its command line.
fn linphonec(ca_pem: &str, pbx: SocketAddr, sip_extra: &str, args: &[&str]) -> Peer {
    start_linphonec(
        ca_pem,
        &LinphonecAccount {
            port: pbx.port(),
            user: "bob",
            domain: "127.0.0.1",
            password: "bob-secret",
            realm: REALM,
        },
        sip_extra,
        args,
    )
}

/// Switches linphonec to files instead of a sound card and gives it
/// `command` (`record FILE` or `play FILE`). linphonec runs its commands in
/// order: once it answers the last (`soundcard show`), the file is set up
/// before any call.
async fn use_files(bob: &mut Peer, command: &str) {
    bob.send("soundcard use files").unwrap();
    bob.send(command).unwrap();
    bob.send("soundcard show").unwrap();
    assert!(
        appears(|| bob.log(), "using files.", Duration::from_secs(20)).await,
        "linphonec did not switch to files:\n{}",
        bob.log()
    );
}

/// Waits for the PBX to audit Bob's registration and checks how it was
/// made: a SIP digest with SHA-256 over TLS.
async fn bob_registered(audit: &Capture, bob: &Peer) {
    let record = registered(audit, "bob", Duration::from_secs(40))
        .await
        .unwrap_or_else(|| {
            panic!(
                "linphonec did not register; its output:\n{}\nits log:\n{}",
                bob.log(),
                bob.read("linphonec.log")
            )
        });
    assert_eq!(
        (record.event.clone(), record.action.clone(), record.outcome),
        (EventType::Login, Action::Create, Outcome::Success)
    );
    assert_eq!(record.actor.auth, AuthMethod::SipDigest);
    assert_eq!(detail(&record, "digest-algorithm"), Some("SHA-256"));
    assert_eq!(detail(&record, "transport"), Some("tls"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphonec_registers_to_the_pbx_over_tls_with_sha_256() {
    let ca = Ca::new("carevox test CA");
    let (server, audit, _dir) = pbx(&ca, (47200, 47209)).await;
    let bob = linphonec(&ca.pem, server.addr(), "", &[]);
    bob_registered(&audit, &bob).await;
    // linphonec took the 200 as a registration (its debug log says so).
    assert!(
        appears(
            || bob.read("linphonec.log"),
            "to [LinphoneRegistrationOk]",
            Duration::from_secs(20)
        )
        .await,
        "linphonec never reported its registration:\n{}",
        bob.read("linphonec.log")
    );
    // The challenge it answered offered SHA-256, then SHA-512-256, and no
    // MD5 (linphonec's debug log holds the messages it received).
    let log = bob.read("linphonec.log");
    let challenge = &log[log.find("SIP/2.0 401").expect("a 401 in linphonec's log")..];
    let challenge = &challenge[..challenge.find("\r\n\r\n").unwrap_or(challenge.len())];
    let algorithms: Vec<&str> = challenge
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
        .filter_map(|l| l.split("algorithm=").nth(1))
        .map(|a| a.split(',').next().unwrap().trim())
        .collect();
    assert_eq!(algorithms, ["SHA-256", "SHA-512-256"], "{challenge}");
    drop(bob);
    server.shutdown().await;
}

/// The relay's ports in the call test, captured by tshark.
const CALL_MEDIA_PORTS: (u16, u16) = (47100, 47199);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_linphonec_through_the_pbx_over_tls_and_srtp() {
    let ca = Ca::new("carevox test CA");
    let (server, audit, _dir) = pbx(&ca, CALL_MEDIA_PORTS).await;
    let addr = server.addr();
    let tshark = capture(CALL_MEDIA_PORTS);
    // Give tshark time to open the interface.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut bob = linphonec(
        &ca.pem,
        addr,
        "media_encryption=srtp\nmedia_encryption_mandatory=1\n",
        &["-a"],
    );
    bob_registered(&audit, &bob).await;
    // No sound card: linphonec plays silence and records what it decodes.
    let recording = bob.home().path().join("bob.wav");
    use_files(&mut bob, &format!("record {}", recording.display())).await;
    let alice = start_baresip(
        &ca.pem,
        &format!(
            "<sip:alice@127.0.0.1:{};transport=tls>;auth_pass=alice-secret;regint=60;\
             mediaenc=srtp-mand;audio_codecs=PCMU",
            addr.port()
        ),
        Some(&format!("/dial sip:bob@127.0.0.1:{}", addr.port())),
        "",
    );
    assert!(
        appears(|| alice.log(), "call established", Duration::from_secs(30)).await,
        "baresip's call was not established:\n{}\nlinphonec:\n{}",
        alice.log(),
        bob.read("linphonec.log")
    );
    assert!(
        appears(
            || bob.read("linphonec.log"),
            "to LinphoneCallStreamsRunning",
            Duration::from_secs(10)
        )
        .await,
        "linphonec's streams never ran:\n{}",
        bob.read("linphonec.log")
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The PBX ends the call (a BYE to each side) as it stops.
    server.shutdown().await;
    assert!(
        appears(
            || bob.read("linphonec.log"),
            "to LinphoneCallEnd",
            Duration::from_secs(15)
        )
        .await,
        "linphonec's call never ended:\n{}",
        bob.read("linphonec.log")
    );
    drop(alice);
    // linphonec closed the file as the call ended; its HOME goes with it.
    let (samples, rate, _) = wav_samples(&recording);
    let log = bob.read("linphonec.log");
    drop(bob);
    let payloads = stop_capture(tshark);

    assert!(
        rate > 0 && samples.len() as u32 >= rate,
        "{} samples at {rate} Hz recorded",
        samples.len()
    );
    let share = frames_with_tone(&samples, rate, 440.0);
    assert!(
        share > 0.6,
        "linphonec hears baresip's tone in {share} of the frames:\n{log}"
    );

    // RTP-shaped packets of 20 ms of PCMU with an 80-bit tag on both legs
    // (baresip offers AES_CM_128_HMAC_SHA1_80; linphonec takes
    // AES_256_CM_HMAC_SHA1_80 from the relay's offer, having no AES-GCM),
    // none of them with the tone in clear; never plain RTP.
    let media = pcmu_packets(&payloads);
    assert!(media.len() >= 50, "{} media packets captured", media.len());
    let lengths: std::collections::BTreeSet<usize> = media.iter().map(|p| p.len()).collect();
    assert_eq!(
        lengths,
        [12 + 160 + 10].into_iter().collect(),
        "packet lengths on the wire"
    );
    let in_clear: Vec<i16> = media
        .iter()
        .flat_map(|p| p[12..172].iter().map(|&b| G711::Pcmu.decode(b)))
        .collect();
    assert!(
        frames_with_tone(&in_clear, 8000, 440.0) < 0.05,
        "the tone is readable on the wire"
    );
}

const OUT_MEDIA_PORTS: (u16, u16) = (47300, 47399);

/// The relay ports of the voicemail number test.
const MAILBOX_MEDIA_PORTS: (u16, u16) = (47400, 47499);

/// Six seconds of a 440 Hz sine, 8 kHz 16-bit mono PCM, as a WAV file.
fn tone_wav(path: &std::path::Path) {
    let samples: Vec<i16> = (0..48_000u32)
        .map(|n| {
            let t = f64::from(n) / 8000.0;
            (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()).round() as i16
        })
        .collect();
    let data_len = u32::try_from(samples.len() * 2).unwrap();
    let mut wav = Vec::with_capacity(44 + samples.len() * 2);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        wav.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, wav).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphonec_calls_baresip_through_the_pbx_over_tls_and_srtp() {
    let ca = Ca::new("carevox test CA");
    let (server, audit, _dir) = pbx(&ca, OUT_MEDIA_PORTS).await;
    let addr = server.addr();
    // Alice (baresip) answers on her own and dumps what she decodes.
    let alice = start_baresip(
        &ca.pem,
        &format!(
            "<sip:alice@127.0.0.1:{};transport=tls>;auth_pass=alice-secret;regint=60;\
             mediaenc=srtp-mand;audio_codecs=PCMU;answermode=auto",
            addr.port()
        ),
        None,
        "module sndfile.so\nsnd_path {home}\n",
    );
    assert!(
        appears(
            || alice.log().to_lowercase(),
            "200 ok",
            Duration::from_secs(15)
        )
        .await,
        "baresip did not register:\n{}",
        alice.log()
    );
    let mut bob = linphonec(
        &ca.pem,
        addr,
        "media_encryption=srtp\nmedia_encryption_mandatory=1\n",
        &[],
    );
    bob_registered(&audit, &bob).await;
    let tone = bob.home().path().join("tone.wav");
    tone_wav(&tone);
    use_files(&mut bob, &format!("play {}", tone.display())).await;
    // Addressed to the PBX by name (linphonec checks the certificate's).
    bob.send(&format!(
        "call sip:alice@localhost:{};transport=tls",
        addr.port()
    ))
    .unwrap();
    assert!(
        appears(
            || alice.log().to_lowercase(),
            "call established",
            Duration::from_secs(30)
        )
        .await,
        "the call was not established:\n{}\nlinphonec:\n{}",
        alice.log(),
        bob.read("linphonec.log")
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.shutdown().await;
    assert!(
        appears(
            || alice.log().to_lowercase(),
            "session closed",
            Duration::from_secs(15)
        )
        .await,
        "baresip's call never ended:\n{}",
        alice.log()
    );
    // The caller's INVITE was authenticated with SHA-256 (no MD5 for Bob).
    let log = bob.read("linphonec.log");
    assert!(
        log.contains("SIP/2.0 407"),
        "no challenge in linphonec's log"
    );
    let answer = log
        .lines()
        .find(|l| l.starts_with("Proxy-Authorization:"))
        .expect("linphonec answered the challenge");
    assert!(answer.contains("algorithm=SHA-256"), "{answer}");
    let started = audit
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.event == EventType::CallStart && r.actor.user_id.expose() == "bob")
        .count();
    assert!(
        started >= 2,
        "the call's start and answer are audited as Bob's"
    );
    drop(bob);
    let (samples, rate) = decoded_dump(&alice);
    let share = frames_with_tone(&samples, rate, 440.0);
    assert!(
        share > 0.5,
        "Alice hears linphonec's tone in {share} of the frames"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphonec_hears_its_voicemail_after_typing_its_pin() {
    let ca = Ca::new("carevox test CA");
    let (server, audit, _dir) = pbx(&ca, MAILBOX_MEDIA_PORTS).await;
    let addr = server.addr();
    let mut bob = linphonec(
        &ca.pem,
        addr,
        "media_encryption=srtp\nmedia_encryption_mandatory=1\n",
        &[],
    );
    bob_registered(&audit, &bob).await;
    // No sound card: linphonec records what it decodes.
    let heard = bob.home().path().join("mailbox.wav");
    use_files(&mut bob, &format!("record {}", heard.display())).await;
    bob.send(&format!(
        "call sip:*97@localhost:{};transport=tls",
        addr.port()
    ))
    .unwrap();
    assert!(
        appears(
            || bob.read("linphonec.log"),
            "to LinphoneCallStreamsRunning",
            Duration::from_secs(20)
        )
        .await,
        "the voicemail number did not answer:\n{}",
        bob.read("linphonec.log")
    );
    // The PIN, one key at a time (linphonec sends each typed digit as an
    // RFC 4733 telephone-event).
    tokio::time::sleep(Duration::from_millis(800)).await;
    for key in ["2", "4", "6", "8", "#"] {
        bob.send(key).unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // The message plays, then the goodbye tone, then the PBX hangs up.
    assert!(
        appears(
            || bob.read("linphonec.log"),
            "to LinphoneCallEnd",
            Duration::from_secs(20)
        )
        .await,
        "the PBX never hung up:\n{}",
        bob.read("linphonec.log")
    );
    let records = audit.0.lock().unwrap().clone();
    let accepted = records.iter().any(|r| {
        r.actor.user_id.expose() == "bob"
            && r.event == EventType::Login
            && detail(r, "result") == Some("pin accepted")
    });
    assert!(
        accepted,
        "the PBX did not accept linphonec's PIN:\n{}",
        bob.read("linphonec.log")
    );
    assert!(records.iter().any(|r| {
        r.actor.user_id.expose() == "bob"
            && r.event == EventType::VoicemailAccess
            && r.action == Action::Read
            && r.outcome == Outcome::Success
    }));
    server.shutdown().await;
    bob.send("quit").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (samples, rate, _) = wav_samples(&heard);
    let share = frames_with_tone(&samples, rate, 440.0);
    assert!(
        share > 0.2,
        "linphonec heard the message in {share} of the frames"
    );
}
