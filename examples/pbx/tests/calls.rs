//! The PBX on 127.0.0.1 with two softphones made of the SDK, over TLS with
//! a test CA made at test time: both register with SHA-256 digest; Alice
//! calls Bob, Bob answers, each hears the other's tone through the relay
//! (found by frequency), Alice hangs up and Bob's phone learns it; Alice
//! calls again, nobody answers, voicemail records her tone into the vault;
//! a call to an unknown user gets 404, to a user without a phone goes to
//! voicemail; a call finding every media port pair in use gets 503 (not
//! 488: its offer was fine) and is audited as refused; every step is in
//! the audit records, none of which prints a name or a number. No answer
//! leaves the PBX before the audit records of its request are durable, and
//! requests arriving together share one sync (group commit).
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use carevox::audit::{Action, EventType};
use carevox::audit_sink::AuditSink;
use carevox::redact::debug_leak;
use carevox::sip::auth::Password;
use carevox::sip::sdp::crypto::CryptoSuite;
use carevox::vault::{LocalKeyFile, MemoryBackend, Vault};
use carevox_pbx::cdr::{Disposition, Ender, VoicemailCause};
use carevox_pbx::config::Config;
use carevox_pbx::media::Source;
use carevox_pbx::phone::{ActiveCall, CallOutcome, Phone, PhoneConfig};
use carevox_pbx::registrar::{Md5Use, Registrar, RegistrarSettings};
use carevox_pbx::server::{Server, ServerParts, ServerSettings};
use carevox_testkit::pki::Ca;
use carevox_transport::{TlsClientConfig, TlsServerConfig};
use ring::rand::SystemRandom;

mod common;

use carevox::audio::tone_power;
use common::{Capture, Staged, Users, frames_with_tone, pcmu};

fn pcm_of(samples: &[u8]) -> Vec<i16> {
    pcmu(samples)
}

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const DOMAIN: &str = "clinic.test";
const NAME: &str = "pbx.clinic.test";

struct Pbx {
    server: Server,
    ca: Ca,
    vault: Arc<Vault>,
    backend: Arc<MemoryBackend>,
    audit: Arc<Capture>,
    _dir: tempfile::TempDir,
}

async fn pbx(no_answer: Duration) -> Pbx {
    pbx_with_ports(no_answer, (41000, 41999)).await
}

async fn pbx_with_ports(no_answer: Duration, media_ports: (u16, u16)) -> Pbx {
    let audit = Arc::new(Capture::default());
    pbx_with_audit(no_answer, media_ports, audit.clone(), audit, &[]).await
}

/// The PBX appending to `sink`; `durable` is what the tests read of it.
/// The calls of the users in `recorded` are recorded.
async fn pbx_with_audit(
    no_answer: Duration,
    media_ports: (u16, u16),
    sink: Arc<dyn AuditSink>,
    durable: Arc<Capture>,
    recorded: &[&str],
) -> Pbx {
    let ca = Ca::new("clinic test CA");
    let id = ca.issue(&[NAME]);
    let config = Config::from_toml(&format!(
        "[server]\nrealm = \"{DOMAIN}\"\ndomains = [\"{DOMAIN}\"]\n\
         [recording]\nusers = {recorded:?}\n"
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
    let backend = Arc::new(MemoryBackend::new());
    let vault = Arc::new(Vault::new(backend.clone(), Arc::new(keys)));
    let mut settings = ServerSettings::from_config(&config).unwrap();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.media_ip = LOCALHOST;
    settings.media_ports = media_ports;
    settings.no_answer = no_answer;
    settings.max_message = Duration::from_secs(20);
    let server = Server::start(
        settings,
        ServerParts {
            registrar,
            users: Arc::new(
                Users::with_passwords(&["alice", "bob", "carol"], Md5Use::Refused)
                    .with_pins(&[("bob", "2468")]),
            ),
            vault: vault.clone(),
            audit: sink,
            rng,
            tls: TlsServerConfig::new(id.chain.clone(), id.key.clone_key()).unwrap(),
        },
    )
    .await
    .unwrap();
    Pbx {
        server,
        ca,
        vault,
        backend,
        audit: durable,
        _dir: dir,
    }
}

async fn phone(pbx: &Pbx, user: &str, tone: f64) -> Phone {
    let config = PhoneConfig {
        user: user.to_owned().into(),
        domain: DOMAIN.to_owned(),
        password: Password::new(&format!("{user}-secret")),
        pbx: pbx.server.addr(),
        server_name: NAME.to_owned(),
        tls: TlsClientConfig::builder(vec![pbx.ca.cert.clone()])
            .build()
            .unwrap(),
        media_ip: LOCALHOST,
        source: Source::Tone(tone),
        suites: vec![CryptoSuite::AesCm128HmacSha1_80],
        allow_md5: false,
    };
    Phone::start(config, Arc::new(SystemRandom::new()))
        .await
        .unwrap()
}

/// `alice` calls `user` in a task of its own (so that the callee's phone
/// can be driven meanwhile); the task gives the phone back with the
/// outcome.
fn calling(mut alice: Phone, user: &str) -> tokio::task::JoinHandle<(Phone, CallOutcome)> {
    let user = user.to_owned();
    tokio::spawn(async move {
        let outcome = alice.call(&user).await.unwrap();
        (alice, outcome)
    })
}

/// The share of 20 ms frames of μ-law `samples` carrying `frequency`.
fn pcmu_frames_with_tone(samples: &[u8], frequency: f64) -> f64 {
    frames_with_tone(&pcmu(samples), 8000, frequency)
}

fn events(audit: &Capture) -> Vec<EventType> {
    audit
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.event.clone())
        .collect()
}

/// Alice (a 440 Hz tone) and Bob (1 kHz) registered; Alice calls Bob,
/// whose phone rings, then answers.
async fn talking(pbx: &Pbx) -> (Phone, ActiveCall, Phone, ActiveCall) {
    let mut alice = phone(pbx, "alice", 440.0).await;
    let mut bob = phone(pbx, "bob", 1000.0).await;
    alice.register(300).await.unwrap();
    bob.register(300).await.unwrap();
    let caller = calling(alice, "bob");
    let incoming = bob.incoming().await.unwrap();
    bob.ring(&incoming).await.unwrap();
    let bob_call = bob.answer(incoming).await.unwrap();
    let (alice, outcome) = caller.await.unwrap();
    let CallOutcome::Answered(alice_call) = outcome else {
        panic!("not answered: {outcome:?}");
    };
    (alice, alice_call, bob, bob_call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_phones_register_talk_through_the_relay_and_hang_up() {
    let pbx = pbx(Duration::from_secs(20)).await;
    let (mut alice, alice_call, mut bob, bob_call) = talking(&pbx).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (alice_heard, alice_stats) = alice.hang_up(alice_call).await.unwrap();
    let (bob_heard, _) = bob.hung_up(bob_call).await.unwrap();

    assert!(alice_heard.len() >= 8000 / 2, "{}", alice_heard.len());
    assert!(pcmu_frames_with_tone(&alice_heard, 1000.0) > 0.8);
    assert!(pcmu_frames_with_tone(&alice_heard, 440.0) < 0.05);
    assert!(pcmu_frames_with_tone(&bob_heard, 440.0) > 0.8);
    assert!(pcmu_frames_with_tone(&bob_heard, 1000.0) < 0.05);
    assert_eq!(alice_stats.a.auth_failures, 0);

    let seen = events(&pbx.audit);
    assert_eq!(seen.iter().filter(|e| **e == EventType::Login).count(), 2);
    assert!(seen.contains(&EventType::CallStart));
    assert!(seen.contains(&EventType::CallEnd));
    let records = pbx.audit.0.lock().unwrap().clone();
    assert_eq!(
        debug_leak(&records, &["alice", "bob", "127.0.0.1", DOMAIN]),
        None
    );
    pbx.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_call_leaves_a_voicemail_in_the_vault() {
    let pbx = pbx(Duration::from_secs(2)).await;
    let mut alice = phone(&pbx, "alice", 440.0).await;
    let mut bob = phone(&pbx, "bob", 1000.0).await;
    alice.register(300).await.unwrap();
    bob.register(300).await.unwrap();

    let caller = calling(alice, "bob");
    // Bob's phone rings and nobody picks up.
    let incoming = bob.incoming().await.unwrap();
    bob.ring(&incoming).await.unwrap();
    let (mut alice, outcome) = caller.await.unwrap();
    let CallOutcome::Answered(call) = outcome else {
        panic!("voicemail did not answer: {outcome:?}");
    };
    // Alice leaves two seconds of her tone after the beep.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (heard, _) = alice.hang_up(call).await.unwrap();
    assert!(
        pcmu_frames_with_tone(&heard, 1000.0) > 0.1,
        "the prompt's beep"
    );

    // The message is sealed in the vault once the call is over.
    let id = sealed(&pbx.vault, "vm-").await;
    let (meta, samples) = pbx.vault.get(&id).unwrap();
    assert_eq!(meta.content_type, "audio/PCMU");
    assert_eq!(meta.get_label("callee"), Some("bob"));
    assert_eq!(meta.get_label("caller"), Some("alice"));
    assert!(samples.len() >= 8000, "{} samples", samples.len());
    assert!(pcmu_frames_with_tone(&samples, 440.0) > 0.8);
    // Encrypted at rest: neither the labels nor the audio in the clear.
    let raw = pbx.backend.payload_bytes(&id).unwrap();
    assert!(!raw.windows(5).any(|w| w == b"alice"));
    assert!(!raw.windows(64).any(|w| w == &samples[..64]));

    let seen = events(&pbx.audit);
    assert!(seen.contains(&EventType::CallStart));
    assert!(seen.contains(&EventType::CallEnd));
    pbx.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_call_is_announced_and_both_parties_are_in_the_vault() {
    // Bob's calls are recorded; Alice's to Carol are not.
    let audit = Arc::new(Capture::default());
    let pbx = pbx_with_audit(
        Duration::from_secs(20),
        (41000, 41999),
        audit.clone(),
        audit,
        &["bob"],
    )
    .await;
    let (mut alice, alice_call, mut bob, bob_call) = talking(&pbx).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (alice_heard, _) = alice.hang_up(alice_call).await.unwrap();
    let (bob_heard, _) = bob.hung_up(bob_call).await.unwrap();
    // Both heard the announcement (two 1400 Hz beeps, 1.25 s) first, then
    // each other.
    for (heard, other) in [(&alice_heard, 1000.0), (&bob_heard, 440.0)] {
        assert!(pcmu_frames_with_tone(&heard[..8000], 1400.0) > 0.5);
        assert!(pcmu_frames_with_tone(&heard[12_000..], other) > 0.8);
        assert!(pcmu_frames_with_tone(&heard[12_000..], 1400.0) < 0.05);
    }

    // The recording is sealed once the call is over.
    let id = sealed(&pbx.vault, "rec-").await;
    let (meta, samples) = pbx.vault.get(&id).unwrap();
    assert!(carevox_pbx::recording::is_recording(&id, &meta));
    assert_eq!(meta.content_type, "audio/PCMU");
    assert_eq!(meta.get_label("caller"), Some("alice"));
    assert_eq!(meta.get_label("callee"), Some("bob"));
    // The call's length (the announcement, then 2.5 s less its 1.25 s).
    assert!(
        (16_000..=32_000).contains(&samples.len()),
        "{} samples",
        samples.len()
    );
    let announced = pcm_of(&samples[..8000]);
    assert!(tone_power(&announced, 8000, 1400.0) > 0.3);
    let talk = pcm_of(&samples[12_000..samples.len() - 1600]);
    assert!(tone_power(&talk, 8000, 440.0) > 0.2, "Alice is recorded");
    assert!(tone_power(&talk, 8000, 1000.0) > 0.2, "Bob is recorded");
    // Encrypted at rest.
    let raw = pbx.backend.payload_bytes(&id).unwrap();
    assert!(!raw.windows(64).any(|w| w == &samples[8000..8064]));
    // The answer's audit record names the recording.
    let records = pbx.audit.0.lock().unwrap().clone();
    let answered = records
        .iter()
        .find(|r| r.event == EventType::CallStart && r.action == Action::Update)
        .expect("the answer audited");
    assert!(
        answered
            .details
            .iter()
            .any(|d| d.key.expose() == "recording" && d.value.expose() == &id)
    );

    // A call between users nobody records leaves no recording.
    let mut carol = phone(&pbx, "carol", 600.0).await;
    carol.register(300).await.unwrap();
    let caller = calling(alice, "carol");
    let incoming = carol.incoming().await.unwrap();
    let carol_call = carol.answer(incoming).await.unwrap();
    let (mut alice, outcome) = caller.await.unwrap();
    let CallOutcome::Answered(alice_call) = outcome else {
        panic!("not answered: {outcome:?}");
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (heard, _) = alice.hang_up(alice_call).await.unwrap();
    let _ = carol.hung_up(carol_call).await.unwrap();
    assert!(
        pcmu_frames_with_tone(&heard, 1400.0) < 0.05,
        "no announcement"
    );
    pbx.server.shutdown().await;
    let recordings = pbx
        .vault
        .list()
        .unwrap()
        .into_iter()
        .filter(|o| o.id.starts_with("rec-"))
        .count();
    assert_eq!(recordings, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phone_of_the_callee_rings_and_the_first_to_answer_takes_the_call() {
    let pbx = pbx(Duration::from_secs(20)).await;
    let mut alice = phone(&pbx, "alice", 440.0).await;
    // Bob has a desk phone (700 Hz) and a softphone (1 kHz).
    let mut desk = phone(&pbx, "bob", 700.0).await;
    let mut soft = phone(&pbx, "bob", 1000.0).await;
    alice.register(300).await.unwrap();
    desk.register(300).await.unwrap();
    soft.register(300).await.unwrap();

    // Both ring; the softphone answers; the desk phone is cancelled.
    let caller = calling(alice, "bob");
    let at_desk = desk.incoming().await.unwrap();
    let at_soft = soft.incoming().await.unwrap();
    desk.ring(&at_desk).await.unwrap();
    let soft_call = soft.answer(at_soft).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), desk.cancelled(&at_desk))
        .await
        .expect("the desk phone stops ringing")
        .unwrap();
    let (mut alice, outcome) = caller.await.unwrap();
    let CallOutcome::Answered(alice_call) = outcome else {
        panic!("not answered: {outcome:?}");
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (heard, _) = alice.hang_up(alice_call).await.unwrap();
    let _ = soft.hung_up(soft_call).await.unwrap();
    assert!(pcmu_frames_with_tone(&heard, 1000.0) > 0.8, "the softphone");
    assert!(pcmu_frames_with_tone(&heard, 700.0) < 0.05);

    // The desk phone is busy: the softphone still rings and answers.
    let caller = calling(alice, "bob");
    let at_desk = desk.incoming().await.unwrap();
    let at_soft = soft.incoming().await.unwrap();
    desk.reject(at_desk, 486).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let soft_call = soft.answer(at_soft).await.unwrap();
    let (mut alice, outcome) = caller.await.unwrap();
    let CallOutcome::Answered(alice_call) = outcome else {
        panic!("not answered: {outcome:?}");
    };
    let _ = alice.hang_up(alice_call).await.unwrap();
    let _ = soft.hung_up(soft_call).await.unwrap();

    // Both refuse with something other than busy: the caller gets the
    // lowest refusal, and no voicemail is left.
    let caller = calling(alice, "bob");
    let at_desk = desk.incoming().await.unwrap();
    let at_soft = soft.incoming().await.unwrap();
    desk.reject(at_desk, 488).await.unwrap();
    soft.reject(at_soft, 606).await.unwrap();
    let (alice, outcome) = caller.await.unwrap();
    assert!(matches!(outcome, CallOutcome::Refused(488)), "{outcome:?}");

    // Both busy: voicemail answers.
    let caller = calling(alice, "bob");
    let at_desk = desk.incoming().await.unwrap();
    let at_soft = soft.incoming().await.unwrap();
    desk.reject(at_desk, 486).await.unwrap();
    soft.reject(at_soft, 486).await.unwrap();
    let (mut alice, outcome) = caller.await.unwrap();
    let CallOutcome::Answered(alice_call) = outcome else {
        panic!("voicemail did not answer: {outcome:?}");
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = alice.hang_up(alice_call).await.unwrap();
    pbx.server.shutdown().await;
    // The call detail records say how each attempt ended.
    let batches = cdr_batches(&pbx.vault);
    let (_, bytes) = pbx.vault.get(&batches[0]).unwrap();
    let outcomes: Vec<Disposition> = carevox_pbx::cdr::decode_batch(&bytes)
        .unwrap()
        .into_iter()
        .map(|r| r.disposition)
        .collect();
    assert_eq!(
        outcomes,
        [
            Disposition::Answered,
            Disposition::Answered,
            Disposition::Refused { status: 488 },
            Disposition::Voicemail {
                reason: VoicemailCause::Busy
            },
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_voicemail_number_plays_and_deletes_messages_after_the_pin() {
    let pbx = pbx(Duration::from_secs(20)).await;
    // Bob has no phone registered: Alice's call goes to voicemail, where
    // she leaves two seconds of her tone.
    let mut alice = phone(&pbx, "alice", 440.0).await;
    alice.register(300).await.unwrap();
    let CallOutcome::Answered(call) = alice.call("bob").await.unwrap() else {
        panic!("voicemail did not answer");
    };
    tokio::time::sleep(Duration::from_millis(2600)).await;
    alice.hang_up(call).await.unwrap();
    let left = sealed(&pbx.vault, "vm-").await;

    // Bob calls the voicemail number from his phone (silent, so that only
    // what the PBX plays is heard), types a wrong PIN, then his own.
    let mut bob = phone(&pbx, "bob", 0.0).await;
    bob.register(300).await.unwrap();
    let CallOutcome::Answered(mut call) = bob.call("*97").await.unwrap() else {
        panic!("the voicemail number did not answer");
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(call.press("1111#"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = call.take_heard();
    assert!(
        pcmu_frames_with_tone(&before, 400.0) > 0.05,
        "the wrong PIN's tone"
    );
    assert!(
        pcmu_frames_with_tone(&before, 440.0) < 0.3,
        "no message yet"
    );
    assert!(call.press("2468#"));
    // The beep, then Alice's message.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let heard = call.take_heard();
    assert!(
        pcmu_frames_with_tone(&heard, 440.0) > 0.4,
        "Alice's message is played"
    );
    // 7 deletes it; it was the only one: goodbye, and the PBX hangs up.
    assert!(call.press("7"));
    let (_, _) = tokio::time::timeout(Duration::from_secs(10), bob.hung_up(call))
        .await
        .expect("the PBX hangs up after the last message")
        .unwrap();
    assert!(pbx.vault.get(&left).is_err(), "the message is deleted");

    // Every step is audited: the wrong PIN, the right one, the listening
    // and the deletion, each decided for Bob as a phone user.
    let records = pbx.audit.0.lock().unwrap().clone();
    let pin_results: Vec<String> = records
        .iter()
        .filter(|r| r.event == EventType::Login && r.actor.user_id.expose() == "bob")
        .filter_map(|r| {
            r.details
                .iter()
                .find(|d| d.key.expose() == "result")
                .map(|d| d.value.expose().clone())
        })
        .filter(|v| v.starts_with("pin"))
        .collect();
    assert_eq!(pin_results, ["pin refused", "pin accepted"]);
    let decided: Vec<(Action, bool)> = records
        .iter()
        .filter(|r| {
            r.event == EventType::VoicemailAccess
                && r.actor.user_id.expose() == "bob"
                && r.actor.role.as_deref() == Some("phone_user")
        })
        .map(|r| {
            (
                r.action.clone(),
                r.outcome == carevox::audit::Outcome::Success,
            )
        })
        .collect();
    assert_eq!(decided, [(Action::Read, true), (Action::Delete, true)]);

    // Carol has no PIN: whatever she types is refused, and the PBX hangs
    // up.
    let mut carol = phone(&pbx, "carol", 0.0).await;
    carol.register(300).await.unwrap();
    let CallOutcome::Answered(call) = carol.call("*97").await.unwrap() else {
        panic!("the voicemail number did not answer");
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(call.press("2468#"));
    let (heard, _) = tokio::time::timeout(Duration::from_secs(10), carol.hung_up(call))
        .await
        .expect("the PBX hangs up")
        .unwrap();
    assert!(
        pcmu_frames_with_tone(&heard, 400.0) > 0.2,
        "the refusal tone"
    );
    let records = pbx.audit.0.lock().unwrap().clone();
    assert!(records.iter().any(|r| {
        r.actor.user_id.expose() == "carol"
            && r.details
                .iter()
                .any(|d| d.value.expose() == "no voicemail pin set")
    }));
    pbx.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_leaves_a_sealed_call_detail_record() {
    let pbx = pbx(Duration::from_secs(20)).await;
    // Answered by bob, who hangs up.
    let (mut alice, alice_call, mut bob, bob_call) = talking(&pbx).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    bob.hang_up(bob_call).await.unwrap();
    alice.hung_up(alice_call).await.unwrap();
    // Refused: nobody called dave exists.
    assert!(matches!(
        alice.call("dave").await.unwrap(),
        CallOutcome::Refused(404)
    ));
    // Carol exists but has no phone registered: voicemail answers.
    let CallOutcome::Answered(call) = alice.call("carol").await.unwrap() else {
        panic!("voicemail did not answer");
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    alice.hang_up(call).await.unwrap();
    // Nothing sealed yet (the writer waits to batch); stopping seals it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(cdr_batches(&pbx.vault).is_empty());
    pbx.server.shutdown().await;

    let batches = cdr_batches(&pbx.vault);
    assert_eq!(batches.len(), 1);
    let (meta, bytes) = pbx.vault.get(&batches[0]).unwrap();
    assert_eq!(meta.content_type, "application/x-ndjson");
    assert!(meta.retention_until >= meta.created_at + 2190 * 86_400);
    let records = carevox_pbx::cdr::decode_batch(&bytes).unwrap();
    assert_eq!(records.len(), 3, "{records:?}");
    let answered = &records[0];
    assert_eq!(answered.caller.expose(), "alice");
    assert_eq!(answered.callee.expose(), "bob");
    assert_eq!(answered.disposition, Disposition::Answered);
    assert_eq!(answered.ended_by, Ender::Callee);
    assert!(answered.answered_at.is_some());
    assert!(answered.talk_secs <= 2);
    assert_eq!(
        answered.caller_address.expose().as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(records[1].disposition, Disposition::Refused { status: 404 });
    assert_eq!(records[1].callee.expose(), "");
    assert_eq!(
        records[2].disposition,
        Disposition::Voicemail {
            reason: VoicemailCause::Unreachable
        }
    );
    assert_eq!(records[2].callee.expose(), "carol");
    assert_eq!(records[2].ended_by, Ender::Caller);
    for r in &records {
        assert!(r.started_at <= r.ended_at);
    }
    // Encrypted at rest.
    let raw = pbx.backend.payload_bytes(&batches[0]).unwrap();
    assert!(!raw.windows(5).any(|w| w == b"alice"));
}

/// The message-summary subscription's rules, by the PBX's answers: another
/// event package gets 489, another user's mailbox 403, a subscription
/// shorter than a minute 423 with Min-Expires, a longer one than an hour
/// is granted an hour, and `Expires: 0` (a one-off fetch) 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_summary_subscriptions_follow_rfc_6665() {
    let pbx = pbx(Duration::from_secs(20)).await;
    let mut alice = phone(&pbx, "alice", 440.0).await;
    alice.register(300).await.unwrap();
    let summary = [
        ("Event", "message-summary"),
        ("Contact", "<sips:alice@127.0.0.1>"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut h = summary.to_vec();
        h.extend_from_slice(extra);
        h
    };
    let r = alice
        .request(
            "SUBSCRIBE",
            "alice",
            &[("Event", "presence"), ("Contact", "<sips:alice@127.0.0.1>")],
        )
        .await
        .unwrap();
    assert_eq!(r.status(), Some(489));
    assert_eq!(
        r.header_values_by_name("Allow-Events").next(),
        Some("message-summary")
    );
    let r = alice.request("SUBSCRIBE", "bob", &summary).await.unwrap();
    assert_eq!(r.status(), Some(403));
    let r = alice
        .request("SUBSCRIBE", "alice", &with(&[("Expires", "10")]))
        .await
        .unwrap();
    assert_eq!(r.status(), Some(423));
    assert_eq!(r.header_values_by_name("Min-Expires").next(), Some("60"));
    let r = alice
        .request("SUBSCRIBE", "alice", &with(&[("Expires", "soon")]))
        .await
        .unwrap();
    assert_eq!(r.status(), Some(400));
    let r = alice
        .request("SUBSCRIBE", "alice", &with(&[("Expires", "86400")]))
        .await
        .unwrap();
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.header_values_by_name("Expires").next(), Some("3600"));
    assert!(r.to().unwrap().tag().is_some());
    let r = alice
        .request("SUBSCRIBE", "alice", &with(&[("Expires", "0")]))
        .await
        .unwrap();
    assert_eq!(r.status(), Some(200));
    // OPTIONS names SUBSCRIBE among the methods served.
    let r = alice.request("OPTIONS", "alice", &[]).await.unwrap();
    assert_eq!(r.status(), Some(200));
    assert!(
        r.header_values_by_name("Allow")
            .next()
            .is_some_and(|a| a.contains("SUBSCRIBE"))
    );
    pbx.server.shutdown().await;
}

/// Text messages (RFC 3428) between users: delivered at once to a
/// registered phone (200), held encrypted in the vault for one that is
/// offline (202) and delivered when it registers, then removed; refused
/// for an unknown user (404), an empty or oversized body; each deposit
/// and read audited without the text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_messages_are_relayed_or_held_in_the_vault_until_registration() {
    let pbx = pbx(Duration::from_secs(20)).await;
    let mut alice = phone(&pbx, "alice", 440.0).await;
    let mut bob = phone(&pbx, "bob", 1000.0).await;
    alice.register(300).await.unwrap();
    bob.register(300).await.unwrap();
    let text = b"Your lab results are ready: call the clinic";

    // Bob is online: straight to his phone.
    let sending = tokio::spawn(async move {
        let status = alice.message("bob", "text/plain", text).await.unwrap();
        (alice, status)
    });
    let got = bob.next_message().await.unwrap();
    let (mut alice, status) = sending.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(got.from.expose(), "alice");
    assert_eq!(got.content_type, "text/plain");
    assert_eq!(got.text.expose().as_slice(), text);
    assert!(!format!("{got:?}").contains("lab results"));

    // Carol is offline: held, sealed in the vault.
    assert_eq!(
        alice
            .message("carol", "text/plain", b"Dr Lee asks you to call back")
            .await
            .unwrap(),
        202
    );
    let held: Vec<String> = pbx
        .vault
        .list()
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .filter(|id| id.starts_with("msg-"))
        .collect();
    assert_eq!(held.len(), 1);
    let raw = pbx.backend.payload_bytes(&held[0]).unwrap();
    assert!(!raw.windows(6).any(|w| w == b"Dr Lee"));
    assert!(!raw.windows(5).any(|w| w == b"carol"));

    // Refusals.
    assert_eq!(
        alice.message("dave", "text/plain", b"hello").await.unwrap(),
        404
    );
    assert_eq!(alice.message("bob", "text/plain", b"").await.unwrap(), 400);
    let big = vec![b'x'; carevox_pbx::server::MAX_TEXT + 1];
    assert_eq!(alice.message("bob", "text/plain", &big).await.unwrap(), 413);

    // Carol's phone registers: the message arrives, and leaves the vault.
    let mut carol = phone(&pbx, "carol", 660.0).await;
    carol.register(300).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), carol.next_message())
        .await
        .expect("the held message")
        .unwrap();
    assert_eq!(got.from.expose(), "alice");
    assert_eq!(
        got.text.expose().as_slice(),
        b"Dr Lee asks you to call back"
    );
    let mut gone = false;
    for _ in 0..50 {
        if pbx.vault.get(&held[0]).is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the delivered message is still in the vault");

    let records = pbx.audit.0.lock().unwrap().clone();
    let messages: Vec<(String, String)> = records
        .iter()
        .filter(|r| r.event == EventType::Other("message".into()))
        .map(|r| {
            let delivery = r
                .details
                .iter()
                .find(|d| d.key.expose() == "delivery" || d.key.expose() == "status")
                .map(|d| d.value.expose().clone())
                .unwrap();
            (r.actor.user_id.expose().clone(), delivery)
        })
        .collect();
    let expect = |who: &str, what: &str| (who.to_owned(), what.to_owned());
    assert_eq!(
        messages,
        vec![
            expect("alice", "relayed"),
            expect("alice", "held"),
            expect("alice", "404"),
            expect("alice", "400"),
            expect("alice", "413"),
            expect("carol", "delivered"),
        ]
    );
    assert_eq!(debug_leak(&records, &["lab results", "Dr Lee"]), None);
    let exported = serde_json::to_string(&records).unwrap();
    assert!(!exported.contains("lab results") && !exported.contains("Dr Lee"));
    pbx.server.shutdown().await;
}

/// The id of the first object whose id starts with `prefix`, once one is
/// sealed in `vault` (within five seconds).
async fn sealed(vault: &Vault, prefix: &str) -> String {
    for _ in 0..50 {
        let list = vault.list().unwrap();
        if let Some(o) = list.into_iter().find(|o| o.id.starts_with(prefix)) {
            return o.id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing starting {prefix} sealed in the vault");
}

fn cdr_batches(vault: &Vault) -> Vec<String> {
    vault
        .list()
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .filter(|id| id.starts_with(carevox_pbx::cdr::CDR_ID_PREFIX))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_finding_no_media_port_free_gets_503() {
    // One port pair: the first call's leg takes it (voicemail answers,
    // carol has no phone), and the next call finds none free.
    let pbx = pbx_with_ports(Duration::from_secs(20), (41990, 41991)).await;
    let mut alice = phone(&pbx, "alice", 440.0).await;
    let mut bob = phone(&pbx, "bob", 660.0).await;
    alice.register(300).await.unwrap();
    bob.register(300).await.unwrap();
    let CallOutcome::Answered(call) = alice.call("carol").await.unwrap() else {
        panic!("voicemail did not answer");
    };
    assert!(matches!(
        bob.call("carol").await.unwrap(),
        CallOutcome::Refused(503)
    ));
    let refused = pbx
        .audit
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|r| {
            r.event == EventType::CallStart
                && r.details
                    .iter()
                    .any(|d| d.key.expose() == "status" && d.value.expose() == "503")
        })
        .count();
    assert_eq!(refused, 1);
    // The pair comes back when the first call ends (once the PBX has
    // taken the BYE: a call placed before then still finds none).
    alice.hang_up(call).await.unwrap();
    let mut again = None;
    for _ in 0..20 {
        match bob.call("carol").await.unwrap() {
            CallOutcome::Answered(call) => {
                again = Some(call);
                break;
            }
            CallOutcome::Refused(503) => tokio::time::sleep(Duration::from_millis(250)).await,
            CallOutcome::Refused(status) => panic!("refused with {status}"),
        }
    }
    let call = again.expect("the port pair did not come back");
    bob.hang_up(call).await.unwrap();
    pbx.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_wait_for_their_audit_records_and_share_one_sync() {
    // Each sync takes 300 ms: an answer sent before it would reach the
    // phone while its record is still missing from what is durable.
    let staged = Arc::new(Staged::new(Duration::from_millis(300)));
    let pbx = pbx_with_audit(
        Duration::from_secs(20),
        (41000, 41999),
        staged.clone(),
        staged.durable.clone(),
        &[],
    )
    .await;
    let mut alice = phone(&pbx, "alice", 440.0).await;
    alice.register(300).await.unwrap();
    let logins = |a: &Capture| events(a).iter().filter(|e| **e == EventType::Login).count();
    assert_eq!(logins(&pbx.audit), 1);
    assert!(matches!(
        alice.call("dave").await.unwrap(),
        CallOutcome::Refused(404)
    ));
    assert!(events(&pbx.audit).contains(&EventType::CallStart));

    // Ten phones registering at once: their records share syncs.
    let mut phones = Vec::new();
    for _ in 0..10 {
        phones.push(phone(&pbx, "bob", 660.0).await);
    }
    let before = staged.syncs();
    let registered = phones.into_iter().map(|mut p| {
        tokio::spawn(async move {
            p.register(300).await.unwrap();
            p
        })
    });
    let mut done = Vec::new();
    for r in registered.collect::<Vec<_>>() {
        done.push(r.await.unwrap());
    }
    assert_eq!(logins(&pbx.audit), 11);
    let syncs = staged.syncs() - before;
    assert!(syncs < 10, "{syncs} syncs for 10 registrations");
    assert_eq!(staged.pending(), 0);
    pbx.server.shutdown().await;
}
