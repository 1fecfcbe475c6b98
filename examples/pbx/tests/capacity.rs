//! The PBX keeps answering past ten thousand requests within one
//! transaction lifetime. Over UDP every answered transaction stays live for
//! 64·T1 (32 s) to absorb retransmissions; with the transaction layer's
//! default cap of 10 000 the PBX silently dropped every new request once
//! that many were live (about 100 calls per second under load, found by
//! `examples/pbx/load/run`). Its own cap, `ServerSettings::max_transactions`,
//! leaves room for the rates the load script measures.
#![allow(
    clippy::disallowed_methods, // a real clock and randomness, as a phone has
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use carevox::vault::{LocalKeyFile, MemoryBackend, Vault};
use carevox_pbx::config::Config;
use carevox_pbx::registrar::{Md5Use, Registrar, RegistrarSettings};
use carevox_pbx::server::{DEFAULT_MAX_TRANSACTIONS, Server, ServerParts, ServerSettings};
use carevox_testkit::free_udp_port;
use carevox_testkit::pki::Ca;
use carevox_transport::TlsServerConfig;
use ring::rand::SystemRandom;
use tokio::net::UdpSocket;

mod common;

use common::{Capture, Users};

/// More requests than the transaction layer's default cap.
const REQUESTS: usize = 10_500;
const _: () = assert!(DEFAULT_MAX_TRANSACTIONS > REQUESTS);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_past_ten_thousand_live_transactions() {
    let ca = Ca::new("capacity test CA");
    let id = ca.issue(&["pbx.clinic.test"]);
    let udp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let config = Config::from_toml(&format!(
        "[server]\nrealm = \"clinic.test\"\ndomains = [\"clinic.test\"]\n\
         [dangerous]\nudp_listen = [\"{udp}\"]\n"
    ))
    .unwrap();
    let rng = Arc::new(SystemRandom::new());
    let registrar = Registrar::new(
        RegistrarSettings::from_config(&config, "pbx-test"),
        &[7u8; 32],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = LocalKeyFile::create(dir.path().join("kek"), &*rng).unwrap();
    let vault = Arc::new(Vault::new(Arc::new(MemoryBackend::new()), Arc::new(keys)));
    let mut settings = ServerSettings::from_config(&config).unwrap();
    assert_eq!(settings.max_transactions, DEFAULT_MAX_TRANSACTIONS);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    let server = Server::start(
        settings,
        ServerParts {
            registrar,
            users: Arc::new(Users::with_passwords(&["alice"], Md5Use::Refused)),
            vault,
            audit: Arc::new(Capture::default()),
            rng,
            tls: TlsServerConfig::new(id.chain.clone(), id.key.clone_key()).unwrap(),
        },
    )
    .await
    .unwrap();

    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = phone.local_addr().unwrap();
    let mut buf = vec![0u8; 65_536];
    // One after the other, each a new transaction; a lost datagram is sent
    // again (as a phone's Timer E would), and a request nobody answers
    // after three sends fails the test.
    for n in 0..REQUESTS {
        let branch = format!("z9hG4bK-capacity-{n}");
        let request = format!(
            "OPTIONS sip:clinic.test SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@clinic.test>;tag=cap{n}\r\n\
             To: <sip:clinic.test>\r\n\
             Call-ID: capacity-{n}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let mut answered = false;
        for _ in 0..3 {
            phone.send_to(request.as_bytes(), udp).await.unwrap();
            let until = tokio::time::Instant::now() + Duration::from_secs(2);
            while let Ok(Ok((len, _))) =
                tokio::time::timeout_at(until, phone.recv_from(&mut buf)).await
            {
                let text = String::from_utf8_lossy(buf.get(..len).unwrap_or_default());
                if text.starts_with("SIP/2.0 200 ") && text.contains(&format!("branch={branch};")) {
                    answered = true;
                    break;
                }
            }
            if answered {
                break;
            }
        }
        assert!(answered, "request {n} of {REQUESTS} got no answer");
    }
    server.shutdown().await;
}
