//! The registrar through its public API: REGISTER flows with challenges
//! answered by carevox-sip's `DigestClient`, refresh, removal, wildcard,
//! 423, lockout, MD5, stale nonces, expiry, caps, GRUU, and the audit
//! records each produces.
#![allow(
    clippy::disallowed_methods, // the tests draw real randomness
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use carevox::audit::{Action, AuthMethod, EventType, Outcome, Record};
use carevox::redact::debug_leak;
use carevox::sip::Message;
use carevox::sip::auth::{Algorithm, Challenge, DigestClient, Password, Request, UserSecret};
use carevox_pbx::config::Config;
use carevox_pbx::location::Transport;
use carevox_pbx::registrar::{
    DirectoryUser, Md5Use, Registrar, RegistrarSettings, Source, UserDirectory,
};
use ring::rand::SystemRandom;

const T0: u64 = 1_800_000_000;
const PASSWORD: &str = "correct horse battery";

struct Users(HashMap<String, DirectoryUser>);

impl UserDirectory for Users {
    fn user(&self, username: &str) -> Option<DirectoryUser> {
        self.0.get(username).cloned()
    }
}

fn users() -> Users {
    let mut m = HashMap::new();
    for (name, md5) in [
        ("alice", Md5Use::Refused),
        ("bob", Md5Use::Refused),
        ("legacy", Md5Use::Offered),
        ("baresip1", Md5Use::Only),
    ] {
        m.insert(
            name.to_owned(),
            DirectoryUser {
                secrets: vec![UserSecret::Password(Password::new(PASSWORD))],
                md5,
                voicemail_pin: None,
            },
        );
    }
    Users(m)
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn source() -> Source {
    Source::new(
        "192.0.2.7:40000".parse::<SocketAddr>().unwrap(),
        Transport::Tls,
    )
}

fn registrar(toml: &str) -> Registrar {
    let config = Config::from_toml(&format!(
        "[server]\nrealm = \"clinic.example\"\ndomains = [\"pbx.example\"]\n{toml}"
    ))
    .unwrap();
    Registrar::new(
        RegistrarSettings::from_config(&config, "pbx-test"),
        &[9u8; 32],
    )
    .unwrap()
}

/// A REGISTER for `user` with extra header lines.
fn register(user: &str, call_id: &str, cseq: u32, headers: &[String]) -> Message {
    let mut text = format!(
        "REGISTER sip:pbx.example SIP/2.0\r\n\
         Via: SIP/2.0/TLS 192.0.2.7:40000;branch=z9hG4bK{cseq}{call_id}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@pbx.example>;tag=f{cseq}\r\n\
         To: <sip:{user}@pbx.example>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n"
    );
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(Bytes::from(text)).unwrap()
}

/// A phone: one user, one Call-ID, a CSeq that counts up, and a digest
/// client that answers the last challenge seen.
struct Phone {
    user: String,
    call_id: String,
    cseq: u32,
    client: DigestClient,
    challenge: Option<Challenge>,
    prefer: Algorithm,
}

impl Phone {
    fn new(user: &str, password: &str) -> Phone {
        Phone {
            user: user.to_owned(),
            call_id: format!("{user}-call-1"),
            cseq: 0,
            client: DigestClient::new(user, Password::new(password)),
            challenge: None,
            prefer: Algorithm::Sha256,
        }
    }

    /// Sends `headers` (with credentials when a challenge was seen).
    fn send(
        &mut self,
        reg: &mut Registrar,
        now: u64,
        headers: &[String],
    ) -> carevox_pbx::registrar::Handled {
        self.cseq += 1;
        let mut headers = headers.to_vec();
        if let Some(c) = &self.challenge {
            let rng = SystemRandom::new();
            let creds = self
                .client
                .authorize(c, &Request::new("REGISTER", "sip:pbx.example"), &rng)
                .unwrap();
            headers.push(format!("Authorization: {creds}"));
        }
        let req = register(&self.user, &self.call_id, self.cseq, &headers);
        let out = reg
            .handle(&req, source(), at(now), &users(), &SystemRandom::new())
            .unwrap();
        if out.status == 401 {
            let challenges = challenges(&out.response);
            self.challenge = challenges
                .iter()
                .find(|c| c.algorithm == Some(self.prefer))
                .or(challenges.first())
                .cloned();
        }
        out
    }

    /// Sends until the answer is not a 401 (at most twice).
    fn register(
        &mut self,
        reg: &mut Registrar,
        now: u64,
        headers: &[String],
    ) -> carevox_pbx::registrar::Handled {
        let first = self.send(reg, now, headers);
        if first.status != 401 {
            return first;
        }
        self.send(reg, now, headers)
    }
}

fn challenges(m: &Message) -> Vec<Challenge> {
    m.www_authenticate()
        .map(|h| Challenge::from_header(&h.unwrap()).unwrap())
        .collect()
}

fn contact(uri: &str) -> String {
    format!("Contact: <{uri}>")
}

/// (expires) of every Contact of a response, with its URI.
fn contacts(m: &Message) -> Vec<(String, u32)> {
    m.contacts()
        .map(|c| {
            let c = c.unwrap();
            let a = c.addr().unwrap();
            (a.uri().as_str().to_owned(), c.expires().unwrap())
        })
        .collect()
}

fn kinds(records: &[Record]) -> Vec<(EventType, Action, Outcome)> {
    records
        .iter()
        .map(|r| (r.event.clone(), r.action.clone(), r.outcome))
        .collect()
}

fn detail<'r>(r: &'r Record, key: &str) -> Option<&'r str> {
    r.details
        .iter()
        .find(|d| d.key.expose() == key)
        .map(|d| d.value.expose().as_str())
}

#[test]
fn challenge_then_credentials_registers_and_audits() {
    let mut reg = registrar("");
    let mut phone = Phone::new("alice", PASSWORD);
    let first = phone.send(
        &mut reg,
        T0,
        &[contact("sip:alice@192.0.2.7:40000;transport=tls")],
    );
    assert_eq!(first.status, 401);
    let offered: Vec<_> = challenges(&first.response)
        .iter()
        .map(|c| c.algorithm)
        .collect();
    assert_eq!(
        offered,
        [Some(Algorithm::Sha256), Some(Algorithm::Sha512_256)],
        "SHA-256 first, then SHA-512-256, no MD5"
    );
    assert!(first.records.is_empty(), "a challenge is not an attempt");
    assert!(first.response.to().unwrap().tag().is_some());

    let ok = phone.send(
        &mut reg,
        T0 + 1,
        &[contact("sip:alice@192.0.2.7:40000;transport=tls")],
    );
    assert_eq!(ok.status, 200);
    assert_eq!(
        contacts(&ok.response),
        [("sip:alice@192.0.2.7:40000;transport=tls".to_owned(), 600)]
    );
    assert_eq!(
        kinds(&ok.records),
        [(EventType::Login, Action::Create, Outcome::Success)]
    );
    let r = &ok.records[0];
    assert_eq!(r.actor.auth, AuthMethod::SipDigest);
    assert_eq!(r.actor.user_id.expose(), "alice");
    assert_eq!(r.source_id, "pbx-test");
    assert_eq!(detail(r, "digest-algorithm"), Some("SHA-256"));
    assert_eq!(detail(r, "transport"), Some("tls"));
    assert_eq!(detail(r, "expires-secs"), Some("600"));
    assert_eq!(
        r.actor
            .network_address
            .as_ref()
            .map(|a| a.expose().as_str()),
        Some("192.0.2.7")
    );
    // No PHI in Debug of the records, the response or the registrar.
    for debug in [
        format!("{ok:?}"),
        format!("{reg:?}"),
        format!("{:?}", reg.location().lookup("alice", T0 + 1)),
        format!("{:?}", source()),
    ] {
        assert_eq!(
            debug_leak(&debug, &["alice", "192.0.2.7", "alice-call-1", PASSWORD]),
            None
        );
    }

    // The location service routes to it.
    let live = reg.location().lookup("alice", T0 + 2);
    assert_eq!(live.len(), 1);
    assert_eq!(
        live[0].contact.expose(),
        "sip:alice@192.0.2.7:40000;transport=tls"
    );
}

#[test]
fn sha_512_256_answers_are_accepted() {
    let mut reg = registrar("");
    let mut phone = Phone::new("alice", PASSWORD);
    phone.prefer = Algorithm::Sha512_256;
    let ok = phone.register(&mut reg, T0, &[contact("sip:alice@192.0.2.7")]);
    assert_eq!(ok.status, 200);
    assert_eq!(
        detail(&ok.records[0], "digest-algorithm"),
        Some("SHA-512-256")
    );
}

#[test]
fn refresh_unregister_and_several_contacts() {
    let mut reg = registrar("");
    let mut phone = Phone::new("alice", PASSWORD);
    let desk = contact("sip:alice@192.0.2.7:5061");
    let ok = phone.register(&mut reg, T0, &[desk.clone(), "Expires: 1200".to_owned()]);
    assert_eq!(
        contacts(&ok.response),
        [("sip:alice@192.0.2.7:5061".to_owned(), 1200)]
    );

    // A second contact beside the first; the first keeps its time.
    let ok = phone.send(
        &mut reg,
        T0 + 100,
        &[contact("sip:alice@198.51.100.2:5061") + ";expires=3600"],
    );
    assert_eq!(ok.status, 200);
    let mut got = contacts(&ok.response);
    got.sort();
    assert_eq!(
        got,
        [
            ("sip:alice@192.0.2.7:5061".to_owned(), 1100),
            ("sip:alice@198.51.100.2:5061".to_owned(), 3600)
        ]
    );
    assert_eq!(detail(&ok.records[0], "contacts"), Some("2"));

    // Refresh of a known contact (equivalent URI written differently).
    let ok = phone.send(
        &mut reg,
        T0 + 200,
        &["Contact: <sip:alice@192.0.2.7:5061>;expires=3600".to_owned()],
    );
    assert_eq!(
        kinds(&ok.records),
        [(EventType::Login, Action::Update, Outcome::Success)]
    );
    assert_eq!(detail(&ok.records[0], "registration"), Some("refreshed"));

    // A query (no Contact) lists the bindings and changes nothing.
    let ok = phone.send(&mut reg, T0 + 300, &[]);
    assert_eq!(ok.status, 200);
    assert_eq!(contacts(&ok.response).len(), 2);
    assert!(ok.records.is_empty());

    // Expires 0 on one contact removes that one.
    // (The nonce of T0 has expired by now: the phone answers the stale
    // challenge.)
    let ok = phone.register(&mut reg, T0 + 400, &[desk + ";expires=0"]);
    assert_eq!(ok.status, 200);
    assert_eq!(
        contacts(&ok.response),
        [("sip:alice@198.51.100.2:5061".to_owned(), 3300)]
    );
    assert_eq!(
        kinds(&ok.records),
        [(EventType::Logout, Action::Delete, Outcome::Success)]
    );
    assert_eq!(detail(&ok.records[0], "removed"), Some("1"));
}

#[test]
fn expires_is_shortened_to_the_maximum_and_423_below_the_minimum() {
    let mut reg = registrar("");
    let mut phone = Phone::new("alice", PASSWORD);
    let brief = phone.register(
        &mut reg,
        T0,
        &[contact("sip:alice@192.0.2.7"), "Expires: 30".to_owned()],
    );
    assert_eq!(brief.status, 423);
    assert_eq!(brief.response.min_expires().unwrap(), Some(60));
    assert!(reg.location().lookup("alice", T0).is_empty());
    // A contact's own expires overrides the header.
    let long = phone.send(
        &mut reg,
        T0,
        &[
            contact("sip:alice@192.0.2.7") + ";expires=999999",
            "Expires: 30".to_owned(),
        ],
    );
    assert_eq!(long.status, 200);
    assert_eq!(contacts(&long.response)[0].1, 3600);
    // A delta-seconds past 2^32 - 1 is read as 2^32 - 1, then shortened.
    let huge = phone.send(
        &mut reg,
        T0 + 1,
        &[contact("sip:alice@192.0.2.7") + ";expires=99999999999999999999"],
    );
    assert_eq!(huge.status, 200);
    assert_eq!(contacts(&huge.response)[0].1, 3600);
    assert_eq!(
        huge.response.header(carevox::sip::HeaderName::Date),
        Some("Fri, 15 Jan 2027 08:00:01 GMT")
    );
}

#[test]
fn bad_contacts_and_expires_get_400() {
    let mut reg = registrar("");
    let mut phone = Phone::new("alice", PASSWORD);
    assert_eq!(phone.register(&mut reg, T0, &[]).status, 200);
    for bad in [
        vec![contact("sip:alice@192.0.2.7"), "Expires: soon".to_owned()],
        vec![contact("sip:alice@192.0.2.7") + ";expires=never"],
        vec![contact("sip:alice@192.0.2.7") + ";expires"],
        vec![contact("sip:alice@192.0.2.7") + ";q=2"],
        vec!["Contact: <sip:alice@192.0.2.7".to_owned()],
        vec!["Contact: *".to_owned()],
        vec!["Contact: *".to_owned(), "Expires: 60".to_owned()],
        vec![
            "Contact: *, <sip:alice@192.0.2.7>".to_owned(),
            "Expires: 0".to_owned(),
        ],
        vec![contact("mailto:alice@example.com")],
        vec![contact("sip:alice@192.0.2.7") + ";reg-id=1"],
    ] {
        let out = phone.send(&mut reg, T0 + 1, &bad);
        assert_eq!(out.status, 400, "{bad:?}");
    }
}

#[test]
fn wildcard_with_expires_zero_removes_every_contact() {
    let mut reg = registrar("");
    let mut phone = Phone::new("alice", PASSWORD);
    phone.register(
        &mut reg,
        T0,
        &[
            contact("sip:alice@192.0.2.7"),
            contact("sip:alice@192.0.2.8"),
        ],
    );
    assert_eq!(reg.location().lookup("alice", T0).len(), 2);
    let out = phone.send(
        &mut reg,
        T0 + 5,
        &["Contact: *".to_owned(), "Expires: 0".to_owned()],
    );
    assert_eq!(out.status, 200);
    assert!(contacts(&out.response).is_empty());
    assert!(reg.location().lookup("alice", T0 + 5).is_empty());
    assert_eq!(detail(&out.records[0], "removed"), Some("2"));
    assert_eq!(reg.location().user_count(), 0);
}

#[test]
fn call_id_and_cseq_ordering_of_step_7() {
    let mut reg = registrar("");
    let mut phone = Phone::new("alice", PASSWORD);
    phone.register(&mut reg, T0, &[contact("sip:alice@192.0.2.7")]);
    let written_cseq = phone.cseq;
    // The same Call-ID with a CSeq not above the binding's: refused, no change.
    phone.cseq = written_cseq - 1;
    let old = phone.send(
        &mut reg,
        T0 + 1,
        &[contact("sip:alice@192.0.2.7") + ";expires=0"],
    );
    assert_eq!(old.status, 500);
    assert_eq!(reg.location().lookup("alice", T0 + 1).len(), 1);
    // Another Call-ID (another phone, or a rebooted one) may replace it
    // whatever its CSeq.
    phone.call_id = "alice-call-2".to_owned();
    phone.cseq = 0;
    let other = phone.send(
        &mut reg,
        T0 + 2,
        &[contact("sip:alice@192.0.2.7") + ";expires=120"],
    );
    assert_eq!(other.status, 200);
    assert_eq!(
        contacts(&other.response),
        [("sip:alice@192.0.2.7".to_owned(), 120)]
    );
    let b = reg.location().lookup("alice", T0 + 2)[0].clone();
    assert_eq!(b.call_id.expose(), "alice-call-2");
}

#[test]
fn lockout_after_failures_answers_403_unseen_and_success_resets() {
    let mut reg = registrar("[lockout]\nfree_failures = 3\nbase_delay_secs = 60\n");
    let mut thief = Phone::new("alice", "wrong password");
    thief.send(&mut reg, T0, &[contact("sip:x@203.0.113.5")]);
    let mut statuses = Vec::new();
    let mut records = Vec::new();
    for i in 0..3 {
        let out = thief.send(&mut reg, T0 + 1 + i, &[contact("sip:x@203.0.113.5")]);
        statuses.push(out.status);
        records.extend(out.records);
    }
    assert_eq!(statuses, [401, 401, 401]);
    assert_eq!(records.len(), 3);
    assert!(
        records.iter().all(|r| r.outcome == Outcome::MinorFailure
            && detail(r, "result") == Some("bad credentials"))
    );
    assert_eq!(detail(&records[0], "locked-until"), None);
    assert_eq!(
        detail(&records[2], "locked-until"),
        Some(&*(T0 + 3 + 60).to_string())
    );

    // Locked: even the right password gets 403 without being checked.
    let mut owner = Phone::new("alice", PASSWORD);
    owner.send(&mut reg, T0 + 10, &[contact("sip:alice@192.0.2.7")]);
    let locked = owner.send(&mut reg, T0 + 10, &[contact("sip:alice@192.0.2.7")]);
    assert_eq!(locked.status, 403);
    assert_eq!(
        locked.response.header(carevox::sip::HeaderName::RetryAfter),
        Some("53")
    );
    assert_eq!(
        detail(&locked.records[0], "registration"),
        Some("locked out")
    );
    assert_eq!(locked.records[0].actor.auth, AuthMethod::None);
    assert!(reg.location().lookup("alice", T0 + 10).is_empty());

    // After the wait the right password registers, and the count restarts.
    let ok = owner.register(&mut reg, T0 + 64, &[contact("sip:alice@192.0.2.7")]);
    assert_eq!(ok.status, 200);
    let again = thief.send(&mut reg, T0 + 65, &[contact("sip:x@203.0.113.5")]);
    assert_eq!(again.status, 401);
    assert_eq!(detail(&again.records[0], "locked-until"), None);
}

#[test]
fn unknown_users_are_refused_and_lock_out_like_real_ones() {
    let mut reg = registrar("[lockout]\nfree_failures = 1\n");
    let mut ghost = Phone::new("nobody", PASSWORD);
    ghost.send(&mut reg, T0, &[contact("sip:nobody@192.0.2.7")]);
    let out = ghost.send(&mut reg, T0 + 1, &[contact("sip:nobody@192.0.2.7")]);
    assert_eq!(out.status, 401);
    assert_eq!(detail(&out.records[0], "result"), Some("unknown user"));
    let out = ghost.send(&mut reg, T0 + 2, &[contact("sip:nobody@192.0.2.7")]);
    assert_eq!(out.status, 403);
}

#[test]
fn a_user_may_not_register_another_users_address() {
    let mut reg = registrar("");
    let mut phone = Phone::new("bob", PASSWORD);
    phone.user = "bob".to_owned();
    // Bob authenticates as bob but the To names alice.
    phone.send(&mut reg, T0, &[]);
    let c = phone.challenge.clone().unwrap();
    let creds = phone
        .client
        .authorize(
            &c,
            &Request::new("REGISTER", "sip:pbx.example"),
            &SystemRandom::new(),
        )
        .unwrap();
    let req = register(
        "alice",
        "x-1",
        1,
        &[
            contact("sip:bob@192.0.2.9"),
            format!("Authorization: {creds}"),
        ],
    );
    let out = reg
        .handle(&req, source(), at(T0 + 1), &users(), &SystemRandom::new())
        .unwrap();
    assert_eq!(out.status, 403);
    assert_eq!(
        detail(&out.records[0], "result"),
        Some("another user's address of record")
    );
    assert!(reg.location().lookup("alice", T0 + 1).is_empty());
}

#[test]
fn md5_only_for_a_legacy_user_and_only_with_the_global_switch() {
    // Switch off: even the legacy users are offered no MD5, and an MD5
    // answer is refused.
    let mut reg = registrar("");
    let mut old = Phone::new("baresip1", PASSWORD);
    let first = old.send(&mut reg, T0, &[]);
    let offered: Vec<_> = challenges(&first.response)
        .iter()
        .map(|c| c.algorithm)
        .collect();
    assert_eq!(
        offered,
        [Some(Algorithm::Sha256), Some(Algorithm::Sha512_256)]
    );
    let mut legacy = Phone::new("legacy", PASSWORD);
    let first = legacy.send(&mut reg, T0, &[contact("sip:legacy@192.0.2.7")]);
    assert!(
        challenges(&first.response)
            .iter()
            .all(|c| c.algorithm != Some(Algorithm::Md5))
    );
    let mut md5 = challenges(&first.response)[0].clone();
    md5.algorithm = Some(Algorithm::Md5);
    legacy.challenge = Some(md5.clone());
    let out = legacy.send(&mut reg, T0 + 1, &[contact("sip:legacy@192.0.2.7")]);
    assert_eq!(out.status, 401);
    assert_eq!(
        detail(&out.records[0], "result"),
        Some("digest algorithm not allowed")
    );

    // Switch on: the legacy user is offered MD5 (last) and may use it...
    let mut reg = registrar("[dangerous]\nallow_md5_for_legacy_users = true\n");
    let mut legacy = Phone::new("legacy", PASSWORD);
    legacy.prefer = Algorithm::Md5;
    let first = legacy.send(&mut reg, T0, &[contact("sip:legacy@192.0.2.7")]);
    let offered: Vec<_> = challenges(&first.response)
        .iter()
        .map(|c| c.algorithm)
        .collect();
    assert_eq!(
        offered,
        [
            Some(Algorithm::Sha256),
            Some(Algorithm::Sha512_256),
            Some(Algorithm::Md5)
        ]
    );
    let ok = legacy.send(&mut reg, T0 + 1, &[contact("sip:legacy@192.0.2.7")]);
    assert_eq!(ok.status, 200);
    assert_eq!(detail(&ok.records[0], "digest-algorithm"), Some("MD5"));

    // A phone that gives up on a 401 with SHA-256 beside MD5 is offered
    // MD5 alone.
    let mut old = Phone::new("baresip1", PASSWORD);
    old.prefer = Algorithm::Md5;
    let first = old.send(&mut reg, T0, &[contact("sip:baresip1@192.0.2.7")]);
    let offered: Vec<_> = challenges(&first.response)
        .iter()
        .map(|c| c.algorithm)
        .collect();
    assert_eq!(offered, [Some(Algorithm::Md5)]);
    let ok = old.send(&mut reg, T0 + 1, &[contact("sip:baresip1@192.0.2.7")]);
    assert_eq!(ok.status, 200);

    // ...but a user not marked legacy is neither offered nor allowed MD5.
    let mut alice = Phone::new("alice", PASSWORD);
    let first = alice.send(&mut reg, T0, &[contact("sip:alice@192.0.2.7")]);
    assert!(
        challenges(&first.response)
            .iter()
            .all(|c| c.algorithm != Some(Algorithm::Md5))
    );
    let mut md5 = challenges(&first.response)[0].clone();
    md5.algorithm = Some(Algorithm::Md5);
    alice.challenge = Some(md5);
    let out = alice.send(&mut reg, T0 + 1, &[contact("sip:alice@192.0.2.7")]);
    assert_eq!(out.status, 401);
    assert!(reg.location().lookup("alice", T0 + 1).is_empty());
}

#[test]
fn an_expired_nonce_with_right_credentials_is_answered_stale() {
    let mut reg = registrar("[digest]\nnonce_lifetime_secs = 60\n");
    let mut phone = Phone::new("alice", PASSWORD);
    phone.send(&mut reg, T0, &[contact("sip:alice@192.0.2.7")]);
    let late = phone.send(&mut reg, T0 + 61, &[contact("sip:alice@192.0.2.7")]);
    assert_eq!(late.status, 401);
    assert!(challenges(&late.response).iter().all(|c| c.stale));
    assert!(late.records.is_empty(), "a stale nonce is no failure");
    let ok = phone.send(&mut reg, T0 + 62, &[contact("sip:alice@192.0.2.7")]);
    assert_eq!(ok.status, 200);
    // Wrong credentials on an expired nonce are not stale.
    let mut thief = Phone::new("alice", "guess");
    thief.send(&mut reg, T0, &[]);
    let out = thief.send(&mut reg, T0 + 61, &[]);
    assert_eq!(out.status, 401);
    assert!(challenges(&out.response).iter().all(|c| !c.stale));
    assert_eq!(out.records.len(), 1);
}

#[test]
fn expired_bindings_are_not_returned_and_are_audited_when_removed() {
    let mut reg = registrar("");
    let mut phone = Phone::new("alice", PASSWORD);
    phone.register(
        &mut reg,
        T0,
        &[contact("sip:alice@192.0.2.7") + ";expires=60"],
    );
    assert_eq!(reg.location().lookup("alice", T0 + 59).len(), 1);
    assert!(
        reg.location().lookup("alice", T0 + 60).is_empty(),
        "expired at T0 + 60"
    );
    assert_eq!(reg.location().next_expiry(), Some(T0 + 60));
    let records = reg.expire(at(T0 + 61)).unwrap();
    assert_eq!(
        kinds(&records),
        [(EventType::Logout, Action::Delete, Outcome::Success)]
    );
    assert_eq!(detail(&records[0], "registration"), Some("expired"));
    assert_eq!(records[0].actor.auth, AuthMethod::None);
    assert_eq!(reg.location().user_count(), 0);
    assert!(reg.expire(at(T0 + 62)).unwrap().is_empty());
}

#[test]
fn caps_on_users_and_contacts_answer_503() {
    let mut reg = registrar("[registrar]\nmax_users = 1\nmax_contacts_per_user = 2\n");
    let mut alice = Phone::new("alice", PASSWORD);
    alice.register(
        &mut reg,
        T0,
        &[
            contact("sip:alice@192.0.2.7"),
            contact("sip:alice@192.0.2.8"),
        ],
    );
    let third = alice.send(&mut reg, T0 + 1, &[contact("sip:alice@192.0.2.9")]);
    assert_eq!(third.status, 503);
    assert_eq!(
        kinds(&third.records),
        [(EventType::Login, Action::Create, Outcome::SeriousFailure)]
    );
    assert_eq!(
        reg.location().lookup("alice", T0 + 1).len(),
        2,
        "nothing changed"
    );
    // Replacing one while removing another fits.
    let swap = alice.send(
        &mut reg,
        T0 + 2,
        &[
            contact("sip:alice@192.0.2.8") + ";expires=0",
            contact("sip:alice@192.0.2.9"),
        ],
    );
    assert_eq!(swap.status, 200);
    let mut bob = Phone::new("bob", PASSWORD);
    let out = bob.register(&mut reg, T0 + 3, &[contact("sip:bob@192.0.2.20")]);
    assert_eq!(out.status, 503);
    assert_eq!(reg.location().user_count(), 1);
}

#[test]
fn instance_bindings_move_with_the_phone_and_get_gruus() {
    let mut reg = registrar("");
    let mut phone = Phone::new("alice", PASSWORD);
    let instance = "+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\"";
    let first = phone.register(
        &mut reg,
        T0,
        &[
            format!("Contact: <sip:alice@192.0.2.7:40000>;{instance};reg-id=1"),
            "Supported: gruu, outbound".to_owned(),
        ],
    );
    assert_eq!(first.status, 200);
    let c = first.response.contacts().next().unwrap().unwrap();
    let params = c.addr().unwrap().params();
    let pub_gruu = params.get("pub-gruu").unwrap().unwrap();
    assert_eq!(
        pub_gruu,
        "\"sip:alice@pbx.example;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6\""
    );
    let temp1 = params
        .get("temp-gruu")
        .unwrap()
        .unwrap()
        .trim_matches('"')
        .to_owned();
    assert!(
        temp1.starts_with("sip:tgruu.") && temp1.ends_with("@pbx.example;gr"),
        "{temp1}"
    );
    assert_eq!(c.reg_id(), Some(1));

    // The phone moved (new address, same instance): the binding is
    // replaced, not added; a new temp-gruu is issued and the old one still
    // resolves.
    let moved = phone.send(
        &mut reg,
        T0 + 10,
        &[
            format!("Contact: <sip:alice@198.51.100.3:40001>;{instance};reg-id=1"),
            "Supported: gruu".to_owned(),
        ],
    );
    assert_eq!(
        contacts(&moved.response),
        [("sip:alice@198.51.100.3:40001".to_owned(), 600)]
    );
    assert_eq!(detail(&moved.records[0], "registration"), Some("refreshed"));
    let c = moved.response.contacts().next().unwrap().unwrap();
    let temp2 = c
        .addr()
        .unwrap()
        .params()
        .get("temp-gruu")
        .unwrap()
        .unwrap()
        .trim_matches('"')
        .to_owned();
    assert_ne!(temp1, temp2);
    let loc = reg.location();
    for t in [&temp1, &temp2] {
        let (user, b) = loc.resolve_gruu(None, None, t, T0 + 11).unwrap();
        assert_eq!(user, "alice");
        assert_eq!(b.contact.expose(), "sip:alice@198.51.100.3:40001");
    }
    let (_, b) = loc
        .resolve_gruu(
            Some("alice"),
            Some("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"),
            "",
            T0 + 11,
        )
        .unwrap();
    assert_eq!(b.contact.expose(), "sip:alice@198.51.100.3:40001");

    // Without Supported: gruu, no GRUU is given (the binding still keys on
    // the instance).
    let plain = phone.send(
        &mut reg,
        T0 + 20,
        &[format!(
            "Contact: <sip:alice@198.51.100.3:40001>;{instance};reg-id=1"
        )],
    );
    let c = plain.response.contacts().next().unwrap().unwrap();
    assert!(c.addr().unwrap().params().get("pub-gruu").is_none());

    // A GRUU may not be registered as a contact (RFC 5627 section 5.1).
    let gr = phone.send(&mut reg, T0 + 30, &[contact(&temp1)]);
    assert_eq!(gr.status, 403);
}

#[test]
fn the_registrar_answers_only_its_domains_and_extensions() {
    let mut reg = registrar("");
    let mut phone = Phone::new("alice", PASSWORD);
    let req = Message::parse(Bytes::from(
        "REGISTER sip:other.example SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.7;branch=z9hG4bKa\r\n\
         From: <sip:alice@other.example>;tag=1\r\nTo: <sip:alice@other.example>\r\n\
         Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
    ))
    .unwrap();
    let out = reg
        .handle(&req, source(), at(T0), &users(), &SystemRandom::new())
        .unwrap();
    assert_eq!(out.status, 404);
    let out = phone.send(&mut reg, T0, &["Require: pref".to_owned()]);
    assert_eq!(out.status, 420);
    assert_eq!(out.response.unsupported().collect::<Vec<_>>(), ["pref"]);
    let mut reg = registrar("[registrar]\ngruu = false\n");
    let out = phone.send(&mut reg, T0, &["Require: gruu".to_owned()]);
    assert_eq!(out.status, 420);
}

#[test]
fn plain_transports_are_refused_unless_dangerous_enables_them() {
    let udp = Source::new(
        "192.0.2.7:5060".parse::<SocketAddr>().unwrap(),
        Transport::Udp,
    );
    let req = register("alice", "u-1", 1, &[contact("sip:alice@192.0.2.7")]);
    let mut reg = registrar("");
    let out = reg
        .handle(&req, udp, at(T0), &users(), &SystemRandom::new())
        .unwrap();
    assert_eq!(out.status, 403);
    let mut reg = registrar("[dangerous]\nudp_listen = [\"127.0.0.1:5060\"]\n");
    let out = reg
        .handle(&req, udp, at(T0), &users(), &SystemRandom::new())
        .unwrap();
    assert_eq!(out.status, 401);
    let tcp = Source::new(
        "192.0.2.7:5060".parse::<SocketAddr>().unwrap(),
        Transport::Tcp,
    );
    let out = reg
        .handle(&req, tcp, at(T0), &users(), &SystemRandom::new())
        .unwrap();
    assert_eq!(out.status, 403, "UDP on does not open TCP");
}

#[test]
fn other_methods_get_405_with_allow() {
    let mut reg = registrar("");
    let req = Message::parse(Bytes::from(
        "OPTIONS sip:pbx.example SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.7;branch=z9hG4bKo\r\n\
         From: <sip:alice@pbx.example>;tag=1\r\nTo: <sip:pbx.example>\r\n\
         Call-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    ))
    .unwrap();
    let out = reg
        .handle(&req, source(), at(T0), &users(), &SystemRandom::new())
        .unwrap();
    assert_eq!(out.status, 405);
    assert_eq!(out.response.allow().collect::<Vec<_>>(), ["REGISTER"]);
    assert!(out.records.is_empty());
}
