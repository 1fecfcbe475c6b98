//! baresip to baresip through the PBX (Debian `baresip-core`), over TLS on
//! 127.0.0.1 with mandatory SDES-SRTP: both register (baresip 1.0 answers
//! only MD5, so both users are legacy phones under `[dangerous]
//! allow_md5_for_legacy_users`), Alice's baresip calls Bob's, which
//! answers on its own; Bob's decoded audio (baresip's `sndfile` dump)
//! carries Alice's 440 Hz tone, found by frequency; what the relay sends
//! and receives on the wire, captured with tshark, is SRTP with the tag
//! length of each leg's suite (80 bits on Alice's AES-CM leg, 128 on Bob's
//! AES-GCM leg) from which no tone can be recovered.
//!
//! A call to a user whose calls are recorded: Bob's baresip hears the
//! announcement's 1400 Hz beeps, then Alice's tone (it follows the change
//! of stream); the recording sealed in the vault holds the beeps, then the
//! tone (both baresips play 440 Hz: that each party is in the mix is shown
//! by the SDK softphones' test in `tests/calls.rs`).
//!
//! Text messages (RFC 3428) reach baresip through the PBX: one sent by the
//! SDK's softphone while Bob's baresip is registered is passed on at once
//! (baresip answers 200 only once its message listener has it); one sent
//! while that baresip is gone is held in the vault (202) and delivered
//! when a new baresip registers as Bob.
//!
//! A missing baresip or tshark fails the test, naming `.ci/install-deps`.
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
use std::time::{Duration, Instant};

use carevox::audio::G711;
use carevox::vault::{LocalKeyFile, MemoryBackend, Vault};
use carevox_pbx::config::Config;
use carevox_pbx::registrar::{Md5Use, Registrar, RegistrarSettings};
use carevox_pbx::server::{Server, ServerParts, ServerSettings};
use carevox_testkit::peer::{Peer, start_baresip};
use carevox_testkit::pki::Ca;
use carevox_transport::TlsServerConfig;
use ring::rand::SystemRandom;

mod common;

use common::live::{capture, decoded_dump, pcmu_packets, stop_capture};
use common::{Capture, Users, frames_with_tone};

const MEDIA_PORTS: (u16, u16) = (47000, 47099);

struct Pbx {
    server: Server,
    audit: Arc<Capture>,
    vault: Arc<Vault>,
    _dir: tempfile::TempDir,
}

/// The PBX, with `more` configuration lines.
async fn pbx(ca: &Ca, more: &str) -> Pbx {
    let id = ca.issue(&["127.0.0.1"]);
    let config = Config::from_toml(&format!(
        "[server]\nrealm = \"carevox.test\"\ndomains = [\"127.0.0.1\"]\n\
         [dangerous]\nallow_md5_for_legacy_users = true\n{more}"
    ))
    .unwrap();
    let rng = Arc::new(SystemRandom::new());
    let audit = Arc::new(Capture::default());
    let registrar = Registrar::new(
        RegistrarSettings::from_config(&config, "pbx-test"),
        &[5u8; 32],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = LocalKeyFile::create(dir.path().join("kek"), &*rng).unwrap();
    let vault = Arc::new(Vault::new(Arc::new(MemoryBackend::new()), Arc::new(keys)));
    let mut settings = ServerSettings::from_config(&config).unwrap();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.media_ports = MEDIA_PORTS;
    settings.media_ip = "127.0.0.1".parse().unwrap();
    let server = Server::start(
        settings,
        ServerParts {
            registrar,
            users: Arc::new(Users::with_passwords(&["alice", "bob"], Md5Use::Only)),
            vault: vault.clone(),
            audit: audit.clone(),
            rng,
            tls: TlsServerConfig::new(id.chain.clone(), id.key.clone_key()).unwrap(),
        },
    )
    .await
    .unwrap();
    Pbx {
        server,
        audit,
        vault,
        _dir: dir,
    }
}

/// baresip as `user` of the PBX at `pbx` (see carevox-testkit's
/// `start_baresip`: loopback only, a 440 Hz sine as microphone), SRTP
/// mandatory, PCMU, its decoded audio dumped by `sndfile` into its HOME.
fn baresip(ca_pem: &str, pbx: SocketAddr, user: &str, extra: &str, command: Option<&str>) -> Peer {
    start_baresip(
        ca_pem,
        &format!(
            "<sip:{user}@127.0.0.1:{};transport=tls>;auth_pass={user}-secret;regint=60;\
             mediaenc=srtp-mand;audio_codecs=PCMU{extra}",
            pbx.port()
        ),
        command,
        "module sndfile.so\nsnd_path {home}\n",
    )
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_baresip_through_the_pbx_over_tls_and_srtp() {
    let ca = Ca::new("carevox test CA");
    let Pbx { server, _dir, .. } = pbx(&ca, "").await;
    let addr = server.addr();
    let tshark = capture(MEDIA_PORTS);
    // Give tshark time to open the interface.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let (alice, bob) = alice_calls_bob(&ca, addr).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The PBX ends the call (a BYE to each side) as it stops.
    server.shutdown().await;
    wait_for(&bob, "session closed", Duration::from_secs(10)).await;
    drop(alice);
    drop(bob_keep(bob));
    let payloads = stop_capture(tshark);
    // RTP-shaped packets of 20 ms of PCMU: header, payload and a tag, none
    // of them with the tone in clear. Leg A negotiated
    // AES_CM_128_HMAC_SHA1_80 (baresip's offer: an 80-bit tag), leg B
    // AEAD_AES_256_GCM (the relay's offer: a 128-bit tag); never plain RTP.
    let media = pcmu_packets(&payloads);
    assert!(media.len() >= 50, "{} media packets captured", media.len());
    let lengths: std::collections::BTreeSet<usize> = media.iter().map(|p| p.len()).collect();
    assert_eq!(
        lengths,
        [12 + 160 + 10, 12 + 160 + 16].into_iter().collect(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_baresip_call_is_announced_and_sealed_in_the_vault() {
    let ca = Ca::new("carevox test CA");
    let pbx = pbx(&ca, "[recording]\nusers = [\"bob\"]\n").await;
    let addr = pbx.server.addr();
    let (alice, bob) = alice_calls_bob(&ca, addr).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    pbx.server.shutdown().await;
    wait_for(&bob, "session closed", Duration::from_secs(10)).await;
    drop(alice);
    // Bob heard the announcement's beeps, then Alice (baresip follows the
    // change of stream).
    let (heard, rate) = decoded_dump(&bob);
    let second = usize::try_from(rate).unwrap();
    assert!(
        frames_with_tone(&heard[..second], rate, 1400.0) > 0.3,
        "Bob hears the announcement"
    );
    assert!(
        frames_with_tone(&heard[2 * second..], rate, 440.0) > 0.6,
        "then Alice"
    );
    drop(bob);
    // The shutdown sealed the recording: the beeps, then Alice's tone.
    let list = pbx.vault.list().unwrap();
    let id = &list
        .iter()
        .find(|o| o.id.starts_with("rec-"))
        .expect("a recording in the vault")
        .id;
    let (meta, samples) = pbx.vault.get(id).unwrap();
    assert_eq!(meta.get_label("callee"), Some("bob"));
    assert!(samples.len() >= 3 * 8000, "{} samples", samples.len());
    let pcm: Vec<i16> = samples.iter().map(|&b| G711::Pcmu.decode(b)).collect();
    assert!(frames_with_tone(&pcm[..8000], 8000, 1400.0) > 0.5);
    assert!(frames_with_tone(&pcm[12_000..], 8000, 440.0) > 0.6);
}

/// Bob's baresip registers and answers on its own; Alice's dials him; both
/// say the call is established.
async fn alice_calls_bob(ca: &Ca, addr: SocketAddr) -> (Peer, Peer) {
    let bob = baresip(&ca.pem, addr, "bob", ";answermode=auto", None);
    wait_for(&bob, "200 ok", Duration::from_secs(15)).await;
    let alice = baresip(
        &ca.pem,
        addr,
        "alice",
        "",
        Some(&format!("/dial sip:bob@127.0.0.1:{}", addr.port())),
    );
    wait_for(&alice, "call established", Duration::from_secs(20)).await;
    wait_for(&bob, "call established", Duration::from_secs(5)).await;
    (alice, bob)
}

/// Bob's decoded audio, checked after the call.
fn bob_keep(bob: Peer) -> Peer {
    let (samples, rate) = decoded_dump(&bob);
    let share = frames_with_tone(&samples, rate, 440.0);
    assert!(
        share > 0.6,
        "Bob hears Alice's tone in {share} of the frames"
    );
    bob
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_messages_reach_baresip_at_once_or_when_it_registers() {
    use carevox::sip::auth::Password;
    use carevox::sip::sdp::crypto::CryptoSuite;
    use carevox_pbx::media::Source;
    use carevox_pbx::phone::{Phone, PhoneConfig};
    use carevox_transport::TlsClientConfig;

    let ca = Ca::new("carevox test CA");
    let Pbx {
        server,
        audit,
        _dir,
        ..
    } = pbx(&ca, "").await;
    let addr = server.addr();
    let mut alice = Phone::start(
        PhoneConfig {
            user: "alice".to_owned().into(),
            domain: "127.0.0.1".to_owned(),
            password: Password::new("alice-secret"),
            pbx: addr,
            server_name: "127.0.0.1".to_owned(),
            tls: TlsClientConfig::builder(vec![ca.cert.clone()])
                .build()
                .unwrap(),
            media_ip: "127.0.0.1".parse().unwrap(),
            source: Source::Silent,
            suites: vec![CryptoSuite::AesCm128HmacSha1_80],
            allow_md5: true,
        },
        Arc::new(SystemRandom::new()),
    )
    .await
    .unwrap();
    alice.register(300).await.unwrap();

    let bob = baresip(&ca.pem, addr, "bob", "", None);
    wait_for(&bob, "200 ok", Duration::from_secs(15)).await;
    let status = alice
        .message("bob", "text/plain", b"Lab results are ready")
        .await
        .unwrap();
    assert_eq!(status, 200);
    // baresip answers 200 only to a text/plain MESSAGE it handed to its
    // message listener.
    assert_eq!(deliveries(&audit), ["relayed"]);
    drop(bob);

    // Bob's phone is gone (its binding is not yet expired): the PBX cannot
    // reach it and holds the message.
    let status = alice
        .message("bob", "text/plain", b"Please call the clinic")
        .await
        .unwrap();
    assert_eq!(status, 202);
    let bob = baresip(&ca.pem, addr, "bob", "", None);
    wait_for(&bob, "200 ok", Duration::from_secs(15)).await;
    let until = Instant::now() + Duration::from_secs(10);
    while deliveries(&audit).len() < 3 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(deliveries(&audit), ["relayed", "held", "delivered"]);
    drop(bob);
    server.shutdown().await;
}

/// How each text message went, in the PBX's audit records.
fn deliveries(audit: &Capture) -> Vec<String> {
    audit
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.event == carevox::audit::EventType::Other("message".into()))
        .filter_map(|r| {
            r.details
                .iter()
                .find(|d| d.key.expose() == "delivery")
                .map(|d| d.value.expose().clone())
        })
        .collect()
}
