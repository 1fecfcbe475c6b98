//! linphonec (Debian `linphone-cli`) with the PBX, over TLS on 127.0.0.1:
//!
//! - linphonec registers, reaching the PBX as `localhost`, trusting only a
//!   test CA made at run time and checking the certificate and its name;
//!   the PBX challenges with SHA-256 then SHA-512-256 (no MD5) and audits
//!   the registration as answered with SHA-256.
//!
//! linphonec needs a HOME holding its data directory; it verifies the
//! server's certificate by DNS name, which is why it addresses the PBX as
//! `localhost` (IPv6 off, so 127.0.0.1). A missing linphonec fails the
//! test, naming `.ci/install-deps`.
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

use carevox::audit::{Action, AuthMethod, EventType, Outcome};
use carevox::vault::{LocalKeyFile, MemoryBackend, Vault};
use carevox_pbx::config::Config;
use carevox_pbx::registrar::{Md5Use, Registrar, RegistrarSettings};
use carevox_pbx::server::{Server, ServerParts, ServerSettings};
use carevox_testkit::peer::{LinphonecAccount, Peer, start_linphonec};
use carevox_testkit::pki::Ca;
use carevox_transport::TlsServerConfig;
use ring::rand::SystemRandom;

mod common;

use common::live::{appears, detail, registered};
use common::{Capture, Users};

const REALM: &str = "carevox.test";

/// The PBX on a free loopback port with the relay on `media_ports`, its
/// certificate naming `localhost` (for linphonec) and `127.0.0.1`; Alice
/// is a legacy MD5 phone (baresip), Bob (linphonec) is not.
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
    let mut settings = ServerSettings::from_config(&config).unwrap();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.media_ports = media_ports;
    settings.media_ip = "127.0.0.1".parse().unwrap();
    let mut users = Users::with_passwords(&["alice"], Md5Use::Only);
    users
        .0
        .extend(Users::with_passwords(&["bob"], Md5Use::Refused).0);
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
        "",
        args,
    )
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
