//! The registrar answers any authenticated REGISTER, whatever its Contact,
//! Expires and Require values, with a response from its list, and keeps the
//! caps; it never panics.
#![allow(
    clippy::disallowed_methods, // the tests draw real randomness
    clippy::unwrap_used,
    clippy::indexing_slicing
)]

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use carevox::sip::Message;
use carevox::sip::auth::{Challenge, DigestClient, Password, Request, UserSecret};
use carevox_pbx::config::Config;
use carevox_pbx::location::Transport;
use carevox_pbx::registrar::{
    DirectoryUser, Md5Use, Registrar, RegistrarSettings, Source, UserDirectory,
};
use proptest::prelude::*;
use ring::rand::SystemRandom;

struct One;
impl UserDirectory for One {
    fn user(&self, username: &str) -> Option<DirectoryUser> {
        (username == "alice").then(|| DirectoryUser {
            secrets: vec![UserSecret::Password(Password::new("pw"))],
            md5: Md5Use::Refused,
            voicemail_pin: None,
        })
    }
}

fn request(cseq: u32, headers: &[String]) -> Option<Message> {
    let mut text = format!(
        "REGISTER sip:pbx.example SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.7;branch=z9hG4bK{cseq}\r\n\
         From: <sip:alice@pbx.example>;tag=1\r\nTo: <sip:alice@pbx.example>\r\n\
         Call-ID: prop\r\nCSeq: {cseq} REGISTER\r\n"
    );
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    Message::parse(Bytes::from(text)).ok()
}

fn header() -> impl Strategy<Value = String> {
    let contact = prop_oneof![
        Just("*".to_owned()),
        "<sip:alice@192\\.0\\.2\\.[0-9]{1,2}(;transport=tls)?>(;expires=[0-9]{0,6})?(;q=[0-9.]{1,4})?",
        "<sip:alice@192\\.0\\.2\\.7>;\\+sip\\.instance=\"<urn:uuid:[0-9a-f]{1,4}>\"(;reg-id=[0-9]{1,2})?",
        "[ -~]{0,30}",
    ];
    prop_oneof![
        contact.prop_map(|c| format!("Contact: {c}")),
        "[0-9a-z]{0,8}".prop_map(|e| format!("Expires: {e}")),
        prop_oneof![Just("gruu"), Just("outbound"), Just("path")]
            .prop_map(|r| format!("Require: {r}")),
        Just("Supported: gruu".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn any_authenticated_register_gets_a_listed_answer(
        requests in prop::collection::vec(prop::collection::vec(header(), 0..4), 1..8),
    ) {
        let config = Config::from_toml(
            "[server]\ndomains = [\"pbx.example\"]\n[registrar]\nmax_contacts_per_user = 3\n",
        ).unwrap();
        let mut reg = Registrar::new(RegistrarSettings::from_config(&config, "p"), &[1u8; 32]).unwrap();
        let rng = SystemRandom::new();
        let source = Source::new("192.0.2.7:4000".parse().unwrap(), Transport::Tls);
        let t0 = 1_800_000_000u64;
        let first = reg
            .handle(&request(1, &[]).unwrap(), source, UNIX_EPOCH + Duration::from_secs(t0), &One, &rng)
            .unwrap();
        prop_assert_eq!(first.status, 401);
        let challenge = Challenge::from_header(&first.response.www_authenticate().next().unwrap().unwrap()).unwrap();
        let mut client = DigestClient::new("alice", Password::new("pw"));
        for (i, headers) in requests.iter().enumerate() {
            let cseq = u32::try_from(i).unwrap() + 2;
            let now = t0 + u64::try_from(i).unwrap() * 7;
            let creds = client.authorize(&challenge, &Request::new("REGISTER", "sip:pbx.example"), &rng).unwrap();
            let mut headers = headers.clone();
            headers.push(format!("Authorization: {creds}"));
            let Some(req) = request(cseq, &headers) else { continue };
            let out = reg.handle(&req, source, UNIX_EPOCH + Duration::from_secs(now), &One, &rng).unwrap();
            prop_assert!(
                [200, 400, 403, 420, 423, 500, 503].contains(&out.status),
                "status {}", out.status
            );
            prop_assert!(reg.location().lookup("alice", now).len() <= 3);
            if out.status == 200 {
                prop_assert_eq!(out.response.contacts().count(), reg.location().lookup("alice", now).len());
            }
        }
    }
}
