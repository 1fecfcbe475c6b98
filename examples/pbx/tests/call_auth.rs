//! Callers authenticated by the registrar's digest step: a first INVITE
//! gets 407 with a challenge per algorithm, credentials for the From's
//! user pass, another user's credentials get 403, wrong passwords count
//! toward the same lockout as registrations, and calls over a transport
//! the configuration does not serve are refused.
#![allow(
    clippy::disallowed_methods, // the tests draw real randomness
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use carevox::sip::Message;
use carevox::sip::auth::{Algorithm, Challenge, DigestClient, Password, Request, UserSecret};
use carevox_pbx::config::Config;
use carevox_pbx::location::Transport;
use carevox_pbx::registrar::{
    CallAuthorization, DirectoryUser, Md5Use, Registrar, RegistrarSettings, Source, UserDirectory,
};
use ring::rand::SystemRandom;

const T0: u64 = 1_800_000_000;

struct Users(HashMap<String, DirectoryUser>);

impl UserDirectory for Users {
    fn user(&self, username: &str) -> Option<DirectoryUser> {
        self.0.get(username).cloned()
    }
}

fn users() -> Users {
    let mut m = HashMap::new();
    for name in ["alice", "bob"] {
        m.insert(
            name.to_owned(),
            DirectoryUser {
                secrets: vec![UserSecret::Password(Password::new(&format!("{name}-pw")))],
                md5: Md5Use::Refused,
                voicemail_pin: None,
            },
        );
    }
    Users(m)
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn source(transport: Transport) -> Source {
    Source::new("192.0.2.7:40000".parse::<SocketAddr>().unwrap(), transport)
}

fn registrar() -> Registrar {
    let config = Config::from_toml(
        "[server]\nrealm = \"clinic.example\"\ndomains = [\"pbx.example\"]\n\
         [lockout]\nfree_failures = 2\n",
    )
    .unwrap();
    Registrar::new(
        RegistrarSettings::from_config(&config, "pbx-test"),
        &[9u8; 32],
    )
    .unwrap()
}

fn invite(from: &str, cseq: u32, auth: Option<String>) -> Message {
    let mut text = format!(
        "INVITE sips:bob@pbx.example SIP/2.0\r\n\
         Via: SIP/2.0/TLS 192.0.2.7:40000;branch=z9hG4bKc{cseq}\r\n\
         Max-Forwards: 70\r\n\
         From: <sips:{from}@pbx.example>;tag=a\r\n\
         To: <sips:bob@pbx.example>\r\n\
         Call-ID: call-1\r\n\
         CSeq: {cseq} INVITE\r\n\
         Contact: <sips:{from}@x.invalid;transport=tls;ob>\r\n"
    );
    if let Some(a) = auth {
        text.push_str(&format!("Proxy-Authorization: {a}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(Bytes::from(text)).unwrap()
}

fn challenge_of(response: &Message) -> Challenge {
    let challenges: Vec<Challenge> = response
        .proxy_authenticate()
        .map(|h| Challenge::from_header(&h.unwrap()).unwrap())
        .collect();
    let algorithms: Vec<Algorithm> = challenges
        .iter()
        .map(Challenge::effective_algorithm)
        .collect();
    assert_eq!(algorithms, vec![Algorithm::Sha256, Algorithm::Sha512_256]);
    assert_eq!(response.www_authenticate().count(), 0);
    challenges.into_iter().next().unwrap()
}

fn credentials(user: &str, password: &str, challenge: &Challenge) -> String {
    DigestClient::new(user, Password::new(password))
        .authorize(
            challenge,
            &Request::new("INVITE", "sips:bob@pbx.example"),
            &SystemRandom::new(),
        )
        .unwrap()
        .to_string()
}

fn refused(a: CallAuthorization) -> (u16, Message) {
    match a {
        CallAuthorization::Refused(h) => (h.status, h.response),
        CallAuthorization::Authenticated { .. } => panic!("authenticated"),
        _ => panic!("unknown outcome"),
    }
}

#[test]
fn a_caller_is_challenged_then_authenticated() {
    let mut reg = registrar();
    let rng = SystemRandom::new();
    let users = users();
    let src = source(Transport::Tls);
    let (status, response) = refused(
        reg.authorize_call(&invite("alice", 1, None), src, at(T0), &users, &rng)
            .unwrap(),
    );
    assert_eq!(status, 407);
    let challenge = challenge_of(&response);
    let creds = credentials("alice", "alice-pw", &challenge);
    match reg
        .authorize_call(
            &invite("alice", 2, Some(creds)),
            src,
            at(T0 + 1),
            &users,
            &rng,
        )
        .unwrap()
    {
        CallAuthorization::Authenticated { user, .. } => assert_eq!(user.expose(), "alice"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn another_users_credentials_get_403() {
    let mut reg = registrar();
    let rng = SystemRandom::new();
    let users = users();
    let src = source(Transport::Tls);
    let (_, response) = refused(
        reg.authorize_call(&invite("alice", 1, None), src, at(T0), &users, &rng)
            .unwrap(),
    );
    // Bob's valid credentials on a call that says it is from Alice.
    let creds = credentials("bob", "bob-pw", &challenge_of(&response));
    let (status, _) = refused(
        reg.authorize_call(&invite("alice", 2, Some(creds)), src, at(T0), &users, &rng)
            .unwrap(),
    );
    assert_eq!(status, 403);
}

#[test]
fn wrong_passwords_lock_the_caller_out() {
    let mut reg = registrar();
    let rng = SystemRandom::new();
    let users = users();
    let src = source(Transport::Tls);
    let mut statuses = Vec::new();
    let mut challenge = {
        let (_, r) = refused(
            reg.authorize_call(&invite("alice", 1, None), src, at(T0), &users, &rng)
                .unwrap(),
        );
        challenge_of(&r)
    };
    for n in 0..4u32 {
        let creds = credentials("alice", "guess", &challenge);
        let (status, r) = refused(
            reg.authorize_call(
                &invite("alice", n + 2, Some(creds)),
                src,
                at(T0),
                &users,
                &rng,
            )
            .unwrap(),
        );
        statuses.push(status);
        if status == 407 {
            challenge = challenge_of(&r);
        }
    }
    assert_eq!(statuses[..2], [407, 407]);
    assert!(statuses[2..].contains(&403), "{statuses:?}");
    // Locked out: even the right password is refused without a look.
    let creds = credentials("alice", "alice-pw", &challenge);
    let (status, _) = refused(
        reg.authorize_call(
            &invite("alice", 9, Some(creds)),
            src,
            at(T0 + 1),
            &users,
            &rng,
        )
        .unwrap(),
    );
    assert_eq!(status, 403);
}

#[test]
fn a_call_over_a_transport_not_served_is_refused() {
    let mut reg = registrar();
    let rng = SystemRandom::new();
    let (status, _) = refused(
        reg.authorize_call(
            &invite("alice", 1, None),
            source(Transport::Udp),
            at(T0),
            &users(),
            &rng,
        )
        .unwrap(),
    );
    assert_eq!(status, 403);
}
