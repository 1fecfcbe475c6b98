#![allow(clippy::disallowed_methods)] // a real clock and random source, as a registrar has
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] functions
//! Live digest authentication against baresip (Debian `baresip-core`), on
//! loopback.
//!
//! A small registrar built only from the public API (datagram parsing,
//! validation, `MessageBuilder::response_to`, `DigestServer`,
//! `NonceTracker`) answers a real baresip: `401` with a digest challenge,
//! then `200 OK` for a REGISTER whose `Authorization` verifies, `403` for
//! one that does not, and a fresh `stale=true` challenge for a replayed
//! nonce count or an expired nonce. Both ends bind 127.0.0.1 only. Every
//! case is bounded in time, and baresip is killed and reaped on every path
//! (also when an assertion fails) by the testkit's `Peer`; its own `-t`
//! limit ends it even if this process dies first.
//!
//! baresip 1.0 answers `MD5` challenges only (not `MD5-sess`): a `SHA-256`
//! challenge, alone or next to an `MD5` one, makes it give up the
//! registration ("Function not implemented"), so the registrar offers `MD5`
//! alone.
//!
//! When baresip is missing the tests fail, naming `.ci/install-deps`.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use carevox_sip::auth::{
    Algorithm, Credentials, DigestError, DigestServer, NonceTracker, Password, Qop, Request,
    ServerConfig, UserSecret, Verified,
};
use carevox_sip::{
    Frame, Limits, Message, MessageBuilder, Method, ValidationPolicy, parse_datagram, validate,
};
use carevox_testkit::peer::{BARESIP_MODULES, Peer, PeerHome, baresip_binary};
use carevox_testkit::{free_udp_port, unix_now};
use ring::rand::SystemRandom;

const USER: &str = "alice";
const PASSWORD: &str = "live-test-only";
const REALM: &str = "carevox.test";
/// The longest a case may take before it is declared failed; a case
/// normally ends within a few seconds.
const CASE_TIMEOUT: Duration = Duration::from_secs(20);
/// baresip's own exit timer (`-t`), a backstop should this process die
/// before the guard kills it.
const BARESIP_LIFETIME_SECS: u64 = 60;

/// baresip's exit status when its SIP port is taken (EADDRINUSE).
const EXIT_ADDRESS_IN_USE: i32 = 98;
/// How often baresip is started again when the free port it was given was
/// taken in the meantime.
const MAX_PORT_RETRIES: u32 = 3;

/// A running baresip in a fresh HOME; killed and reaped on drop.
struct Baresip {
    peer: Peer,
    registrar: SocketAddr,
    password: String,
    port_retries: u32,
}

impl Baresip {
    /// Starts baresip with one account registering at `registrar` with
    /// `password`.
    fn start(registrar: SocketAddr, password: &str) -> Baresip {
        let home = PeerHome::new();
        let command = Baresip::command(&home, registrar, password);
        Baresip {
            peer: Peer::spawn(command, home, "baresip.log", false),
            registrar,
            password: password.to_owned(),
            port_retries: 0,
        }
    }

    /// Writes the configuration, listening on a free loopback port, and
    /// returns the command that starts baresip with it.
    fn command(home: &PeerHome, registrar: SocketAddr, password: &str) -> Command {
        let bin = baresip_binary();
        let listen = free_udp_port();
        home.write(
            ".baresip/config",
            &format!(
                "sip_listen 127.0.0.1:{listen}\n\
                 net_interface 127.0.0.1\n\
                 module_path {BARESIP_MODULES}\n\
                 module_app account.so\n"
            ),
        );
        home.write(
            ".baresip/accounts",
            &format!(
                "<sip:{USER}@127.0.0.1:{};transport=udp>;auth_pass={password};regint=60\n",
                registrar.port()
            ),
        );
        let mut cmd = Command::new(bin);
        cmd.arg("-f")
            .arg(home.path().join(".baresip"))
            .arg("-t")
            .arg(BARESIP_LIFETIME_SECS.to_string());
        cmd
    }

    /// What baresip printed so far, for failure messages.
    fn log(&self) -> String {
        self.peer.log()
    }

    /// Fails the test, with baresip's output, unless it is still running.
    /// When the port it was given was taken before it could bind it,
    /// starts it again on another.
    fn assert_running(&mut self) {
        let Some(status) = self.peer.exited() else {
            return;
        };
        if status.code() == Some(EXIT_ADDRESS_IN_USE) && self.port_retries < MAX_PORT_RETRIES {
            self.port_retries += 1;
            let command = Baresip::command(self.peer.home(), self.registrar, &self.password);
            self.peer.respawn(command, false);
            return;
        }
        panic!("baresip exited early ({status}):\n{}", self.log());
    }
}

/// How the registrar treats credentials that verify.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answer 200 OK.
    Register,
    /// Leave the first verified REGISTER unanswered, so that baresip
    /// retransmits it; answer later ones with 200 OK.
    DropFirstVerified,
    /// Move the registrar's clock past the nonce lifetime when the first
    /// credentials arrive, as if they had been delayed that long.
    ExpireFirstNonce,
}

/// How far [`Mode::ExpireFirstNonce`] moves the clock: one second past the
/// default nonce lifetime.
const CLOCK_JUMP: u64 = 301;

/// What happened in one case.
#[derive(Default)]
struct Transcript {
    /// REGISTER requests received (each parsed and validated).
    registers: usize,
    /// 401 responses sent.
    challenges: usize,
    /// Credentials that verified.
    verified: Vec<Accepted>,
    /// Verification failures, in order.
    failures: Vec<DigestError>,
    /// 200 OK responses sent.
    ok: Vec<Message>,
    /// 403 responses sent.
    forbidden: usize,
}

/// Credentials that verified, with the REGISTER that carried them and the
/// nonce binding (baresip's address).
struct Accepted {
    verified: Verified,
    creds: Credentials,
    register: Message,
    binding: String,
}

/// A registrar on 127.0.0.1 made of carevox-sip parts.
struct Registrar {
    socket: UdpSocket,
    server: DigestServer,
    tracker: NonceTracker,
    rng: SystemRandom,
    mode: Mode,
    /// Seconds added to the real clock (time is an argument of the digest
    /// server).
    clock_offset: u64,
    transcript: Transcript,
}

impl Registrar {
    fn new(mode: Mode) -> Registrar {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind registrar");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let rng = SystemRandom::new();
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&rng, &mut secret).expect("random secret");
        // baresip 1.0 answers MD5 only, and MD5 is never a default: enable
        // it explicitly, alone (a SHA-256 challenge beside it makes baresip
        // abandon the registration).
        let config = ServerConfig::legacy_md5_only(REALM);
        Registrar {
            socket,
            server: DigestServer::new(&secret, config).expect("digest server"),
            tracker: NonceTracker::new(64),
            rng,
            mode,
            clock_offset: 0,
            transcript: Transcript::default(),
        }
    }

    /// The registrar's clock, in unix seconds.
    fn now(&self) -> u64 {
        unix_now() + self.clock_offset
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("registrar address")
    }

    /// Serves baresip until `done` holds for the transcript (checked after
    /// every datagram and timeout), failing after [`CASE_TIMEOUT`].
    fn serve(&mut self, baresip: &mut Baresip, done: impl Fn(&Transcript, Instant) -> bool) {
        let started = Instant::now();
        let mut buf = vec![0u8; 65_535];
        loop {
            if done(&self.transcript, Instant::now()) {
                return;
            }
            baresip.assert_running();
            assert!(
                started.elapsed() < CASE_TIMEOUT,
                "no result from baresip within {CASE_TIMEOUT:?}; it printed:\n{}",
                baresip.log()
            );
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    assert!(from.ip().is_loopback(), "datagram from {from}");
                    let data = Bytes::copy_from_slice(buf.get(..n).expect("datagram length"));
                    self.handle(data, from);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("registrar receive: {e}"),
            }
        }
    }

    fn handle(&mut self, data: Bytes, from: SocketAddr) {
        let text = String::from_utf8_lossy(&data).into_owned();
        let frame = parse_datagram(data, &Limits::default())
            .unwrap_or_else(|e| panic!("baresip sent a message that does not parse: {e}\n{text}"));
        let msg = match frame {
            Frame::Message(msg) => msg,
            Frame::Ping | Frame::Pong => return,
        };
        if let Err(why) = validate(&msg, &ValidationPolicy::default()) {
            panic!(
                "baresip sent a message that does not validate ({} {}): {why}\n{text}",
                why.status_code(),
                why.reason_phrase()
            );
        }
        assert_eq!(msg.method(), Some(Method::Register), "unexpected:\n{text}");
        self.transcript.registers += 1;
        // The nonce is bound to the client's transport address.
        let binding = from.to_string();
        let mut headers = msg.authorization();
        let Some(header) = headers.next() else {
            self.challenge(&msg, from, binding.as_bytes(), false);
            return;
        };
        assert!(
            headers.next().is_none(),
            "two Authorization fields:\n{text}"
        );
        let header = header.unwrap_or_else(|e| panic!("Authorization: {e}\n{text}"));
        let creds = Credentials::from_header(&header)
            .unwrap_or_else(|e| panic!("Authorization is not digest credentials: {e}\n{text}"));
        let uri = msg.request_uri_str().expect("request URI");
        let secret = UserSecret::from(Password::new(PASSWORD));
        if self.mode == Mode::ExpireFirstNonce && self.clock_offset == 0 {
            self.clock_offset = CLOCK_JUMP;
        }
        let result = self.server.verify(
            &creds,
            &Request::new("REGISTER", uri),
            USER,
            &secret,
            binding.as_bytes(),
            self.now(),
            &mut self.tracker,
        );
        match result {
            Ok(verified) => {
                let first = self.transcript.verified.is_empty();
                self.transcript.verified.push(Accepted {
                    verified,
                    creds,
                    register: msg.clone(),
                    binding,
                });
                if self.mode == Mode::DropFirstVerified && first {
                    return;
                }
                self.accept(&msg, from);
            }
            Err(e @ (DigestError::StaleNonce | DigestError::Replay)) => {
                // A fresh nonce for an honest client; a replayed count never
                // passes.
                self.transcript.failures.push(e);
                self.challenge(&msg, from, binding.as_bytes(), true);
            }
            Err(e) => {
                self.transcript.failures.push(e);
                let forbidden = MessageBuilder::response_to(&msg, 403, "Forbidden")
                    .and_then(|b| b.to_tag("carevox"))
                    .and_then(|b| b.build())
                    .expect("403");
                self.send(&forbidden, from);
                self.transcript.forbidden += 1;
            }
        }
    }

    fn challenge(&mut self, msg: &Message, to: SocketAddr, binding: &[u8], stale: bool) {
        let challenge = self
            .server
            .challenge(self.now(), binding, Algorithm::Md5, stale, &self.rng)
            .expect("challenge");
        let response = MessageBuilder::response_to(msg, 401, "Unauthorized")
            .and_then(|b| b.to_tag("carevox"))
            .and_then(|b| b.header("WWW-Authenticate", &challenge.to_string()))
            .and_then(|b| b.build())
            .expect("401");
        self.send(&response, to);
        self.transcript.challenges += 1;
    }

    /// 200 OK with the bindings: each Contact with the granted expiry.
    fn accept(&mut self, msg: &Message, to: SocketAddr) {
        let default_expires = msg.expires().expect("Expires").unwrap_or(3600);
        let mut builder = MessageBuilder::response_to(msg, 200, "OK")
            .and_then(|b| b.to_tag("carevox"))
            .expect("200");
        let mut granted = default_expires;
        for contact in msg.contacts() {
            let contact = contact.expect("Contact");
            let addr = contact.addr().expect("a Contact address, not *");
            let expires = match addr.params().get("expires") {
                Some(Some(v)) => v.parse().expect("Contact expires"),
                _ => default_expires,
            };
            granted = expires;
            if expires > 0 {
                builder = builder
                    .header("Contact", &format!("<{}>;expires={expires}", addr.uri()))
                    .expect("Contact");
            }
        }
        let response = builder
            .header("Expires", &granted.to_string())
            .and_then(|b| b.build())
            .expect("200");
        self.send(&response, to);
        self.transcript.ok.push(response);
    }

    fn send(&self, msg: &Message, to: SocketAddr) {
        self.socket.send_to(msg.as_bytes(), to).expect("send");
    }
}

/// Checks credentials that verified: MD5, qop=auth, our user and realm, a
/// nonce issued during this test (from `test_start` until `now`, on the
/// registrar's clock).
fn assert_fresh_md5(verified: &Verified, creds: &Credentials, test_start: u64, now: u64) {
    assert_eq!(verified.algorithm, Algorithm::Md5);
    assert_eq!(verified.qop, Qop::Auth);
    assert!(verified.nc >= 1);
    assert_eq!(creds.username.expose(), USER);
    assert_eq!(creds.realm.expose(), REALM);
    assert!(
        (test_start..=now).contains(&verified.nonce_issued_at),
        "nonce issued at {} is not from this test (started {test_start})",
        verified.nonce_issued_at
    );
}

#[test]
fn baresip_registers_with_md5_digest() {
    let test_start = unix_now();
    let mut registrar = Registrar::new(Mode::Register);
    let mut baresip = Baresip::start(registrar.addr(), PASSWORD);
    registrar.serve(&mut baresip, |t, _| !t.ok.is_empty());
    drop(baresip);

    let t = &registrar.transcript;
    assert!(t.challenges >= 1, "baresip was never challenged");
    assert!(t.failures.is_empty(), "failures: {:?}", t.failures);
    assert_eq!(t.forbidden, 0);
    let accepted = t.verified.last().expect("verified credentials");
    assert_fresh_md5(
        &accepted.verified,
        &accepted.creds,
        test_start,
        registrar.now(),
    );
    let register = &accepted.register;

    // The 200 OK echoes the binding baresip asked for.
    let ok = t.ok.first().expect("200 OK");
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.call_id().unwrap(), register.call_id().unwrap());
    assert_eq!(ok.cseq().unwrap(), register.cseq().unwrap());
    let asked = register.contacts().next().expect("Contact").unwrap();
    let bound = ok.contacts().next().expect("bound Contact").unwrap();
    assert_eq!(
        bound.addr().unwrap().uri().to_string(),
        asked.addr().unwrap().uri().to_string()
    );
    assert_eq!(ok.expires().unwrap(), Some(60));

    // The same Authorization again, from the same address: a replay.
    let header = register.authorization().next().unwrap().unwrap();
    let creds = Credentials::from_header(&header).unwrap();
    let replay = registrar.server.verify(
        &creds,
        &Request::new("REGISTER", register.request_uri_str().unwrap()),
        USER,
        &UserSecret::from(Password::new(PASSWORD)),
        accepted.binding.as_bytes(),
        unix_now(),
        &mut registrar.tracker,
    );
    assert_eq!(replay, Err(DigestError::Replay));
}

#[test]
fn baresip_with_a_wrong_password_is_refused() {
    let mut registrar = Registrar::new(Mode::Register);
    let mut baresip = Baresip::start(registrar.addr(), "not-the-password");
    // After the first 403, keep listening a little for any further attempt.
    let refused_at = std::cell::Cell::new(None::<Instant>);
    registrar.serve(&mut baresip, |t, now| {
        if t.forbidden == 0 {
            return false;
        }
        let at = *refused_at.get().get_or_insert(now);
        refused_at.set(Some(at));
        now.duration_since(at) > Duration::from_millis(1500)
    });
    drop(baresip);

    let t = &registrar.transcript;
    assert!(t.challenges >= 1, "baresip was never challenged");
    assert!(t.ok.is_empty(), "a 200 OK was sent for a wrong password");
    assert!(t.verified.is_empty(), "a wrong password verified");
    assert!(!t.failures.is_empty());
    assert!(
        t.failures
            .iter()
            .all(|e| *e == DigestError::ResponseMismatch),
        "failures: {:?}",
        t.failures
    );
    assert_eq!(t.forbidden, t.failures.len());
}

#[test]
fn baresip_retransmission_of_used_credentials_is_a_replay() {
    let test_start = unix_now();
    let mut registrar = Registrar::new(Mode::DropFirstVerified);
    let mut baresip = Baresip::start(registrar.addr(), PASSWORD);
    registrar.serve(&mut baresip, |t, _| !t.ok.is_empty());
    drop(baresip);

    let t = &registrar.transcript;
    // The unanswered REGISTER came again, byte for byte, and its nonce
    // count was refused; the fresh (stale=true) challenge then succeeded.
    assert!(
        t.failures.contains(&DigestError::Replay),
        "failures: {:?}",
        t.failures
    );
    assert!(
        t.failures.iter().all(|e| *e == DigestError::Replay),
        "failures: {:?}",
        t.failures
    );
    assert_eq!(t.verified.len(), 2, "exactly two verifications");
    let first = t.verified.first().unwrap();
    let last = t.verified.last().unwrap();
    assert_fresh_md5(&first.verified, &first.creds, test_start, registrar.now());
    assert_fresh_md5(&last.verified, &last.creds, test_start, registrar.now());
    assert_ne!(first.creds.nonce, last.creds.nonce, "a fresh nonce");
    assert_eq!(t.ok.len(), 1);
    assert_eq!(t.forbidden, 0);
}

#[test]
fn baresip_answers_a_stale_challenge_after_its_nonce_expires() {
    let test_start = unix_now();
    let mut registrar = Registrar::new(Mode::ExpireFirstNonce);
    let mut baresip = Baresip::start(registrar.addr(), PASSWORD);
    registrar.serve(&mut baresip, |t, _| !t.ok.is_empty());
    drop(baresip);

    let t = &registrar.transcript;
    // The right response on an expired nonce is stale, not a failure; the
    // stale=true challenge brings credentials for a new nonce.
    assert!(
        t.failures.contains(&DigestError::StaleNonce),
        "failures: {:?}",
        t.failures
    );
    assert!(
        t.failures.iter().all(|e| *e == DigestError::StaleNonce),
        "failures: {:?}",
        t.failures
    );
    assert_eq!(t.verified.len(), 1, "one verification");
    let accepted = t.verified.first().unwrap();
    assert_fresh_md5(
        &accepted.verified,
        &accepted.creds,
        test_start + CLOCK_JUMP,
        registrar.now(),
    );
    assert_eq!(t.ok.len(), 1);
    assert_eq!(t.forbidden, 0);
}
