#![allow(clippy::disallowed_methods)] // a real clock and random source, as a registrar has
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] functions
//! baresip (Debian `baresip-core`) registers over TLS, on 127.0.0.1, with a
//! small registrar made of this transport (a TLS listener with a test
//! certificate made by rcgen) and carevox-sip's digest server: a 401
//! challenge, then a 200 OK for credentials that verify, every message over
//! the connection baresip opened.
//!
//! baresip 1.0 answers `MD5` digest challenges only, so the registrar offers
//! MD5 alone. It is given the test CA (`sip_cafile`), but baresip 1.0 does
//! not refuse a server certificate that does not chain to it (tried: it
//! registers all the same), so this test shows interoperation over TLS, not
//! baresip's verification; certificate refusals are tested in `tls.rs`. baresip is killed and reaped on every path by [`Baresip`]'s
//! `Drop`; its own `-t` limit ends it even if this process dies first. When
//! baresip is missing the test fails, naming `.ci/install-deps`.

mod common;

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use carevox_sip::auth::{
    Algorithm, Credentials, DigestServer, NonceTracker, Password, Request, ServerConfig, UserSecret,
};
use carevox_sip::{Message, MessageBuilder, Method, ValidationPolicy, Verdict, validate};
use carevox_transport::{Destination, Event, Received, TransportConfig, TransportKind};
use common::*;
use ring::rand::SystemRandom;
use tempfile::TempDir;

const MODULE_DIR: &str = "/usr/lib/baresip/modules";
const USER: &str = "alice";
const PASSWORD: &str = "live-test-only";
const REALM: &str = "carevox.test";
const CASE_TIMEOUT: Duration = Duration::from_secs(20);
const BARESIP_LIFETIME_SECS: u64 = 60;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn baresip_binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("baresip"))
            .find(|p| p.is_file())
    });
    match found {
        Some(bin) if Path::new(MODULE_DIR).join("account.so").is_file() => bin,
        _ => panic!(
            "baresip is not installed: run `.ci/install-deps` from the workspace root, which \
             installs the Debian package baresip-core listed in .ci/apt-packages"
        ),
    }
}

fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A running baresip in a fresh HOME; killed and reaped on drop.
struct Baresip {
    child: Child,
    home: TempDir,
}

impl Baresip {
    fn start(registrar: SocketAddr, ca_pem: &str) -> Baresip {
        let home = tempfile::tempdir().expect("temporary HOME");
        let conf = home.path().join(".baresip");
        fs::create_dir(&conf).expect("create .baresip");
        let ca_file = home.path().join("ca.pem");
        fs::write(&ca_file, ca_pem).expect("write CA");
        let listen = free_loopback_port();
        fs::write(
            conf.join("config"),
            format!(
                "sip_listen 127.0.0.1:{listen}\n\
                 sip_cafile {}\n\
                 net_interface 127.0.0.1\n\
                 module_path {MODULE_DIR}\n\
                 module_app account.so\n",
                ca_file.display()
            ),
        )
        .expect("write config");
        fs::write(
            conf.join("accounts"),
            format!(
                "<sip:{USER}@127.0.0.1:{};transport=tls>;auth_pass={PASSWORD};regint=60\n",
                registrar.port()
            ),
        )
        .expect("write accounts");
        let log = File::create(home.path().join("baresip.log")).expect("create log");
        let child = Command::new(baresip_binary())
            .arg("-f")
            .arg(&conf)
            .arg("-t")
            .arg(BARESIP_LIFETIME_SECS.to_string())
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start baresip");
        Baresip { child, home }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.home.path().join("baresip.log")).unwrap_or_default()
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn reply(received: &Received, response: &Message) -> (Destination, Message) {
    (Destination::reply_to(received), response.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_over_tls_with_digest() {
    let ca = Ca::new("carevox test CA");
    let id = ca.issue(&["127.0.0.1"]);
    let (registrar, mut incoming) = start(
        TransportConfig::default(),
        false,
        false,
        Some(id.server_config()),
        None,
    )
    .await;
    let addr = registrar.local_addr(TransportKind::Tls).unwrap();

    let rng = SystemRandom::new();
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&rng, &mut secret).unwrap();
    let config = ServerConfig {
        algorithms: vec![Algorithm::Md5],
        ..ServerConfig::new(REALM)
    };
    let server = DigestServer::new(&secret, config).unwrap();
    let mut tracker = NonceTracker::new(64);

    let baresip = Baresip::start(addr, &ca.pem);
    let mut challenges = 0;
    let mut connections = Vec::new();
    let deadline = tokio::time::Instant::now() + CASE_TIMEOUT;
    let ok = loop {
        let event = match tokio::time::timeout_at(deadline, incoming.recv()).await {
            Ok(Some(ev)) => ev,
            _ => panic!(
                "no registration over TLS within {CASE_TIMEOUT:?}; baresip printed:\n{}",
                baresip.log()
            ),
        };
        let received = match event {
            Event::Message(r) => r,
            _ => continue,
        };
        assert_eq!(received.kind, TransportKind::Tls);
        assert!(received.source.ip().is_loopback());
        connections.push(received.connection.expect("a TLS connection"));
        let msg = &received.message;
        assert_eq!(
            validate(msg, &ValidationPolicy::default()).expect("baresip's REGISTER validates"),
            Verdict::Accept
        );
        assert_eq!(msg.method(), Some(Method::Register));
        assert!(
            msg.top_via()
                .unwrap()
                .transport()
                .eq_ignore_ascii_case("TLS"),
            "Via names TLS"
        );
        let binding = received.source.to_string();
        let Some(header) = msg.authorization().next() else {
            let challenge = server
                .challenge(unix_now(), binding.as_bytes(), Algorithm::Md5, false, &rng)
                .unwrap();
            let resp = MessageBuilder::response_to(msg, 401, "Unauthorized")
                .and_then(|b| b.to_tag("carevox"))
                .and_then(|b| b.header("WWW-Authenticate", &challenge.to_string()))
                .and_then(|b| b.build())
                .unwrap();
            let (to, resp) = reply(&received, &resp);
            let sent = registrar.send_message(&to, &resp).await.unwrap();
            // Back over the connection the REGISTER came on.
            assert_eq!(sent.connection, received.connection);
            challenges += 1;
            continue;
        };
        let creds = Credentials::from_header(&header.unwrap()).unwrap();
        let verified = server
            .verify(
                &creds,
                &Request::new("REGISTER", msg.request_uri_str().unwrap()),
                USER,
                &UserSecret::from(Password::new(PASSWORD)),
                binding.as_bytes(),
                unix_now(),
                &mut tracker,
            )
            .unwrap_or_else(|e| panic!("baresip's credentials did not verify: {e}"));
        assert_eq!(verified.algorithm, Algorithm::Md5);
        let contact = msg.contacts().next().expect("Contact").unwrap();
        let resp = MessageBuilder::response_to(msg, 200, "OK")
            .and_then(|b| b.to_tag("carevox"))
            .and_then(|b| {
                b.header(
                    "Contact",
                    &format!("<{}>;expires=60", contact.addr().unwrap().uri()),
                )
            })
            .and_then(|b| b.header("Expires", "60"))
            .and_then(|b| b.build())
            .unwrap();
        let (to, resp) = reply(&received, &resp);
        registrar.send_message(&to, &resp).await.unwrap();
        break resp;
    };
    assert!(challenges >= 1, "baresip was never challenged");
    assert_eq!(ok.status(), Some(200));
    // Every REGISTER of the exchange came over one TLS connection.
    assert!(connections.iter().all(|c| *c == connections[0]));

    // baresip reports the registration as done.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !baresip.log().contains("200 OK") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        baresip.log().contains("200 OK"),
        "baresip did not see the 200 OK:\n{}",
        baresip.log()
    );
    drop(baresip);
    registrar.close(Duration::from_secs(2)).await;
}
