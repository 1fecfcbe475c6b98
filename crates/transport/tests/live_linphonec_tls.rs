#![allow(clippy::disallowed_methods)] // a real clock and random source, as a registrar has
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] functions
//! linphonec (Debian `linphone-cli`) registers over TLS, on 127.0.0.1, to a
//! registrar written on the transaction driver ([`Endpoint`]) with
//! carevox-sip's digest server: 401 with SHA-256 and MD5 challenges, then
//! 200, each in the REGISTER's server transaction.
//! linphonec trusts only the test CA made at run time by rcgen and verifies
//! the server's certificate and name: the same run against a certificate
//! from another CA, or for another name, never registers.
//!
//! linphonec reaches the registrar as `localhost` with IPv6 off (so
//! 127.0.0.1): the TLS library it uses matches server names against DNS
//! names in the certificate, not IP addresses.
//!
//! linphonec is killed and reaped on every path by the testkit's `Peer`.
//! Its SIP transport runs in client-only mode (it binds no listening
//! port). When it is missing the test fails, naming `.ci/install-deps`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use carevox_sip::auth::{
    Algorithm, Credentials, DigestServer, NonceTracker, Password, Request, ServerConfig, UserSecret,
};
use carevox_sip::{MessageBuilder, Method, ValidationPolicy, Verdict, validate};
use carevox_testkit::peer::{LinphonecAccount, Peer, start_linphonec};
use carevox_testkit::unix_now;
use carevox_transport::{Endpoint, EndpointConfig, EndpointEvent, TransportConfig, TransportKind};
use common::*;
use ring::rand::SystemRandom;

const USER: &str = "alice";
const PASSWORD: &str = "live-test-only";
const REALM: &str = "carevox.test";

/// Starts linphonec registering at `registrar` (as `localhost`), trusting
/// only `ca_pem` and verifying the server's certificate and name.
fn linphonec(registrar: SocketAddr, ca_pem: &str) -> Peer {
    start_linphonec(
        ca_pem,
        &LinphonecAccount {
            port: registrar.port(),
            user: USER,
            domain: &registrar.ip().to_string(),
            password: PASSWORD,
            realm: REALM,
        },
        "",
        &[],
    )
}

/// Serves linphonec for up to `limit` with a registrar written on the
/// transaction driver; returns whether a REGISTER with verified
/// credentials was answered 200 OK, how many requests came, and
/// linphonec's log.
async fn serve(server_cert: &Identity, trusted: &Ca, limit: Duration) -> (bool, usize, String) {
    let (transport, incoming) = start(
        TransportConfig::default(),
        false,
        false,
        Some(server_cert.server_config()),
        None,
    )
    .await;
    let addr = transport.local_addr(TransportKind::Tls).unwrap();
    let (registrar, mut events) = Endpoint::start(transport, incoming, EndpointConfig::default());
    let rng = SystemRandom::new();
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&rng, &mut secret).unwrap();
    let server = DigestServer::new(&secret, ServerConfig::new(REALM)).unwrap();
    let mut tracker = NonceTracker::new(64);
    let linphonec = linphonec(addr, &trusted.pem);
    let deadline = tokio::time::Instant::now() + limit;
    let mut messages = 0;
    let registered = loop {
        let event = match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ev)) => ev,
            _ => break false,
        };
        let EndpointEvent::Request {
            transaction,
            request,
            origin,
            ..
        } = event
        else {
            continue;
        };
        messages += 1;
        assert_eq!(origin.kind, TransportKind::Tls);
        let msg = &request;
        assert_eq!(
            validate(msg, &ValidationPolicy::default()).expect("linphonec's message validates"),
            Verdict::Accept
        );
        if msg.method() != Some(Method::Register) {
            continue;
        }
        let binding = origin.source.to_string();
        let Some(header) = msg.authorization().next() else {
            let mut b = MessageBuilder::response_to(msg, 401, "Unauthorized")
                .and_then(|b| b.to_tag("carevox"))
                .unwrap();
            for challenge in server
                .challenges(unix_now(), binding.as_bytes(), false, &rng)
                .unwrap()
            {
                b = b
                    .header("WWW-Authenticate", &challenge.to_string())
                    .unwrap();
            }
            registrar
                .send_response(transaction, b.build().unwrap())
                .await
                .unwrap();
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
            .unwrap_or_else(|e| panic!("linphonec's credentials did not verify: {e}"));
        // Offered SHA-256 first and MD5 second, linphone takes SHA-256.
        assert_eq!(verified.algorithm, Algorithm::Sha256);
        let mut b = MessageBuilder::response_to(msg, 200, "OK")
            .and_then(|b| b.to_tag("carevox"))
            .unwrap();
        for contact in msg.contacts() {
            let contact = contact.unwrap();
            if let Some(a) = contact.addr() {
                b = b
                    .header("Contact", &format!("<{}>;expires=60", a.uri()))
                    .unwrap();
            }
        }
        let ok = b.header("Expires", "60").and_then(|b| b.build()).unwrap();
        registrar.send_response(transaction, ok).await.unwrap();
        break true;
    };
    let log = linphonec.read("linphonec.log");
    drop(linphonec);
    registrar.shutdown(Duration::from_secs(2)).await.unwrap();
    (registered, messages, log)
}

/// linphonec reached the server and broke off in the TLS handshake (not,
/// say, before connecting at all).
fn assert_refused_in_handshake(log: &str) {
    assert!(log.contains("Connected at TCP level"), "{log}");
    assert!(log.contains("SSL handshake failed"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphonec_registers_over_tls_trusting_the_test_ca() {
    let ca = Ca::new("carevox test CA");
    let cert = ca.issue(&["localhost"]);
    let (registered, _, log) = serve(&cert, &ca, Duration::from_secs(30)).await;
    assert!(registered, "linphonec did not register; its log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphonec_refuses_a_server_from_an_untrusted_ca() {
    let ca = Ca::new("carevox test CA");
    let other = Ca::new("someone else's CA");
    let cert = other.issue(&["localhost"]);
    let (registered, messages, log) = serve(&cert, &ca, Duration::from_secs(8)).await;
    assert!(!registered, "linphonec registered to an untrusted server");
    assert_eq!(
        messages, 0,
        "linphonec sent SIP to an untrusted server:\n{log}"
    );
    assert_refused_in_handshake(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linphonec_refuses_a_certificate_for_another_name() {
    let ca = Ca::new("carevox test CA");
    let cert = ca.issue(&["other.carevox.test"]);
    let (registered, messages, log) = serve(&cert, &ca, Duration::from_secs(8)).await;
    assert!(!registered, "linphonec registered despite a wrong name");
    assert_eq!(
        messages, 0,
        "linphonec sent SIP over a misnamed connection:\n{log}"
    );
    assert_refused_in_handshake(&log);
}
