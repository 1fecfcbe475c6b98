//! No key, salt or patient reference appears in the `Debug` output
//! (`{:?}` and `{:#?}`) of the facade's public types: keyings, sessions,
//! answers, errors, and the audit glue's inputs.

#![cfg(all(
    feature = "sip",
    feature = "srtp",
    feature = "vault",
    feature = "audit",
    feature = "authz"
))]
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;

use carevox::access::Target;
use carevox::audit::{Action, AuditLog, AuthMethod, EventType, LogConfig, Signer, Timestamp};
use carevox::media::{SrtpSession, answer_audio, offer_cryptos};
use carevox::redact::Pii;
use carevox::relay::{MediaPeer, MediaRelay, RelayConfig};
use carevox::sdes::{SdesOptions, keyable_suites, srtp_keying};
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::crypto::{Crypto, CryptoSuite, KeySalt};
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use carevox::vault_audit::{VaultActor, VaultAuditConfig, VaultAuditHook};
use ring::rand::SystemRandom;

const PATIENT: &str = "Patient/8675309";

fn both(value: &impl core::fmt::Debug) -> [String; 2] {
    [format!("{value:?}"), format!("{value:#?}")]
}

/// The key bytes as `Debug` would print a slice, and their first hex digits.
fn leaks(text: &str, secret: &[u8]) -> bool {
    let dec: Vec<String> = secret.iter().map(u8::to_string).collect();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    text.contains(&dec[..4].join(", ")) || text.contains(&hex[..8])
}

#[test]
fn keys_never_print() {
    let rng = SystemRandom::new();
    for suite in keyable_suites() {
        let material: Vec<u8> = (0..suite.key_salt_len().unwrap())
            .map(|i| 0x80 | (i as u8 & 0x3f))
            .collect();
        let mut line = Crypto::new(1, suite.clone(), KeySalt::new(material.clone())).unwrap();
        line.keys[0].mki = Some(carevox::sip::sdp::crypto::Mki {
            value: 3,
            length: 2,
        });
        let keying = srtp_keying(&line, &SdesOptions::new()).unwrap();
        let session = SrtpSession::new(&line, &line, &SdesOptions::new()).unwrap();
        let mut printed = Vec::new();
        printed.extend(both(&keying));
        printed.extend(both(&session));
        // A media relay holds a session per leg.
        let relay = MediaRelay::new(
            SrtpSession::new(&line, &line, &SdesOptions::new()).unwrap(),
            MediaPeer::new("127.0.0.1:4000".parse().unwrap()),
            SrtpSession::new(&line, &line, &SdesOptions::new()).unwrap(),
            MediaPeer::new("127.0.0.1:5000".parse().unwrap()),
            RelayConfig::default(),
        );
        printed.extend(both(&relay));
        let mut wrong = line.clone();
        wrong.suite = CryptoSuite::Other("X".into());
        printed.extend(both(&srtp_keying(&wrong, &SdesOptions::new()).unwrap_err()));
        for text in &printed {
            assert!(!leaks(text, &material), "{suite}: {text}");
        }
    }
    // An answer and its sessions.
    let lines = offer_cryptos(&keyable_suites(), &rng).unwrap();
    let mut sdp = String::from(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n",
    );
    for l in &lines {
        sdp.push_str(&format!("a=crypto:{l}\r\n"));
    }
    let answered = answer_audio(
        &SessionDescription::parse(&sdp).unwrap(),
        &AudioCapabilities::new(vec![Codec::pcmu()]),
        &LocalMedia::new("198.51.100.7", 30000, "1"),
        &rng,
        &SdesOptions::new(),
    )
    .unwrap();
    let chosen = answered
        .answer
        .audio
        .as_ref()
        .unwrap()
        .srtp
        .as_ref()
        .unwrap();
    for text in both(&answered) {
        for key in [
            chosen.remote.keys[0].key_salt.expose(),
            chosen.local.keys[0].key_salt.expose(),
        ] {
            assert!(!leaks(&text, key), "{text}");
        }
    }
}

#[test]
fn patient_references_never_print() {
    let target = Target {
        event: EventType::VoicemailAccess,
        action: Action::Read,
        patient: Some(Pii::new(PATIENT)),
        object: None,
        correlation_id: None,
    };
    let mut actor = VaultActor::new("dr.lee", AuthMethod::PasswordMfa, Timestamp(1));
    actor.patient = Some(Pii::new(PATIENT.to_owned()));
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = AuditLog::open(
        dir.path(),
        Signer::from_seed(&[1; 32]).unwrap(),
        LogConfig::default(),
    )
    .unwrap();
    let hook = VaultAuditHook::new(
        Arc::new(log),
        VaultAuditConfig::voicemail("v"),
        actor.clone(),
    );
    let mut printed = Vec::new();
    printed.extend(both(&target));
    printed.extend(both(&actor));
    printed.extend(both(&hook));
    for text in printed {
        assert!(!text.contains("8675309"), "{text}");
        assert!(!text.contains("dr.lee"), "{text}");
    }
}
