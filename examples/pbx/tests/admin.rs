//! The admin console through its control socket, with the server's own
//! data directory (vault, audit log) opened in this process as `serve`
//! does: enrolment of the first account, logins with password and TOTP
//! (wrong ones refused and audited, lockout), the access policy's
//! decisions with their explanation, automatic logoff on a clock the test
//! moves, garbage on the socket, accounts that persist across a restart,
//! the audit log verified and exported, call recordings decided on either
//! party and kept apart from voicemail, and a voicemail left through the
//! PBX exported as a WAV file holding the caller's tone.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use carevox::audio::{G711, wav_header};
use carevox::audit::{Action, EventType, ObjectKind, Outcome, Record, Timestamp, for_each_record};
use carevox::authz::password::{Argon2Params, HashAlgorithm, PasswordHasher};
use carevox::authz::totp::{Totp, TotpSecret};
use carevox::redact::Pii;
use carevox::sip::auth::Password;
use carevox::sip::sdp::crypto::CryptoSuite;
use carevox::vault::Metadata;
use carevox_pbx::admin::client::{Client, ClientError};
use carevox_pbx::admin::control::{ControlError, ControlParts, ControlServer, ControlSettings};
use carevox_pbx::admin::proto::{CallRecordQuery, ErrorKind, SecretText};
use carevox_pbx::cdr::{CallRecord, Disposition, Ender, VoicemailCause, seal_batch};
use carevox_pbx::config::Config;
use carevox_pbx::media::Source;
use carevox_pbx::phone::{CallOutcome, Phone, PhoneConfig};
use carevox_pbx::recording;
use carevox_pbx::registrar::{Md5Use, Registrar, RegistrarSettings};
use carevox_pbx::server::{Server, ServerParts, ServerSettings};
use carevox_pbx::store::Store;
use carevox_testkit::pki::Ca;
use carevox_transport::{TlsClientConfig, TlsServerConfig};
use ring::rand::SystemRandom;

mod common;

use carevox_pbx::cdr;
use common::{Users, frames_with_tone, pcmu};

const DOMAIN: &str = "clinic.test";
const NAME: &str = "pbx.clinic.test";
const T0: u64 = 1_800_000_000;
const ROOT_PW: &str = "correct horse battery";

// Fields drop in order: the server before the directory it serves.
struct Console {
    control: Option<ControlServer>,
    store: Store,
    dir: tempfile::TempDir,
    config: Config,
    clock: Arc<AtomicU64>,
    socket: PathBuf,
}

fn config(root: &Path, idle: u64) -> Config {
    Config::from_toml(&format!(
        "[server]\nrealm = \"{DOMAIN}\"\ndomains = [\"{DOMAIN}\"]\n\
         data_dir = \"{}\"\nmaster_key_file = \"{}\"\n\
         [admin]\nidle_logoff_secs = {idle}\n\
         [voicemail]\nno_answer_timeout_secs = 5\n",
        root.join("data").display(),
        root.join("keys/vault.key").display(),
    ))
    .unwrap()
}

fn start_control(store: &Store, config: &Config, clock: &Arc<AtomicU64>) -> ControlServer {
    let mut settings = ControlSettings::from_config(config);
    // Cheap hashes keep the test quick; serve uses OWASP's parameters.
    settings.hasher = PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }))
    .unwrap();
    let mut parts = ControlParts::from_store(store, Arc::new(SystemRandom::new()));
    let c = clock.clone();
    parts.clock = Arc::new(move || c.load(Ordering::SeqCst));
    ControlServer::start(settings, parts).unwrap()
}

fn console(idle: u64) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), idle);
    let clock = Arc::new(AtomicU64::new(T0));
    let c = clock.clone();
    let store = Store::open_with(
        &config,
        &SystemRandom::new(),
        T0,
        Arc::new(move || Timestamp(c.load(Ordering::SeqCst) * 1000)),
        Box::new(carevox_pbx::store::log_alert),
    )
    .unwrap();
    let control = start_control(&store, &config, &clock);
    let socket = control.path().to_owned();
    Console {
        dir,
        config,
        store,
        clock,
        control: Some(control),
        socket,
    }
}

fn secret(text: &str) -> SecretText {
    SecretText::new(text.to_owned())
}

/// The TOTP secret in an `otpauth://` URI.
fn totp_of(uri: &SecretText) -> TotpSecret {
    let s = uri.expose();
    let start = s.find("secret=").unwrap() + "secret=".len();
    let end = s[start..].find('&').map_or(s.len(), |e| start + e);
    TotpSecret::from_base32(&s[start..end]).unwrap()
}

impl Console {
    fn now(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Moves the clock past the TOTP step just used.
    fn next_step(&self) {
        self.clock.fetch_add(30, Ordering::SeqCst);
    }

    fn code(&self, totp: &TotpSecret) -> SecretText {
        SecretText::new(
            Totp::default()
                .generate(totp, self.now())
                .unwrap()
                .to_string(),
        )
    }

    fn enrol_root(&self) -> TotpSecret {
        let uri = Client::connect(&self.socket)
            .unwrap()
            .enrol_first("root", "administrator", secret(ROOT_PW), vec![])
            .unwrap();
        assert!(uri.expose().starts_with("otpauth://totp/carevox-pbx:root?"));
        totp_of(&uri)
    }

    fn login(&self, name: &str, password: &str, totp: &TotpSecret) -> Client {
        self.next_step();
        let mut c = Client::connect(&self.socket).unwrap();
        c.login(name, secret(password), self.code(totp)).unwrap();
        c
    }

    fn login_err(&self, name: &str, password: &str, code: SecretText) -> ClientError {
        let mut c = Client::connect(&self.socket).unwrap();
        c.login(name, secret(password), code).unwrap_err()
    }

    /// Adds an account as root; returns its TOTP secret.
    fn add(&self, root: &TotpSecret, name: &str, role: &str, mailboxes: &[&str]) -> TotpSecret {
        let mut c = self.login("root", ROOT_PW, root);
        let uri = c
            .user_add(
                name,
                role,
                secret(&format!("{name} long password")),
                mailboxes.iter().map(|m| (*m).to_owned()).collect(),
            )
            .unwrap();
        c.logoff().unwrap();
        totp_of(&uri)
    }

    fn records(&self) -> Vec<Record> {
        self.store.audit.sync().unwrap();
        let mut out = Vec::new();
        for_each_record(self.store.audit.dir(), &[], |_, r, _| {
            out.push(r.clone());
            Ok(())
        })
        .unwrap();
        out
    }

    /// A voicemail for `mailbox` holding `tone`, put straight into the
    /// server's vault as the voicemail service would.
    fn deposit(&self, mailbox: &str, tone: f64) -> (String, Vec<u8>) {
        let samples = two_seconds_of(tone);
        let id = format!("vm-{}-{mailbox}", self.now());
        self.store
            .vault
            .put(
                &SystemRandom::new(),
                Metadata::new(id.clone(), "audio/PCMU", self.now(), self.now() + 86_400)
                    .label("caller", "alice")
                    .label("callee", mailbox)
                    .label("call_id", "c-1"),
                &samples,
            )
            .unwrap();
        (id, samples)
    }

    /// A recording of a call from `caller` to `callee` holding `tone`, put
    /// straight into the server's vault, named and labelled as
    /// `carevox_pbx::recording` says.
    fn record(&self, caller: &str, callee: &str, tone: f64) -> (String, Vec<u8>) {
        let samples = two_seconds_of(tone);
        let id = format!(
            "{}{}-{caller}-{callee}",
            recording::RECORDING_PREFIX,
            self.now()
        );
        let meta = recording::metadata(
            &id,
            caller,
            callee,
            &format!("call-{caller}-{callee}"),
            self.now(),
            self.now() + 86_400,
        );
        self.store
            .vault
            .put(&SystemRandom::new(), meta, &samples)
            .unwrap();
        (id, samples)
    }
}

/// Two seconds of `tone` in G.711 μ-law at 8 kHz.
fn two_seconds_of(tone: f64) -> Vec<u8> {
    (0..16_000u32)
        .map(|n| {
            let t = f64::from(n) / 8000.0;
            let s = (8000.0 * (2.0 * std::f64::consts::PI * tone * t).sin()).round();
            #[allow(clippy::cast_possible_truncation)]
            G711::Pcmu.encode(s as i16)
        })
        .collect()
}

fn cdr(
    caller: &str,
    callee: &str,
    started_at: u64,
    ended_at: u64,
    disposition: Disposition,
) -> CallRecord {
    CallRecord {
        call_id: Pii::new(format!("{caller}-{callee}-{started_at}")),
        caller: Pii::new(caller.to_owned()),
        callee: Pii::new(callee.to_owned()),
        caller_address: Pii::new(Some("127.0.0.1".to_owned())),
        started_at,
        answered_at: Some(started_at + 3),
        ended_at,
        talk_secs: ended_at - started_at - 3,
        disposition,
        ended_by: Ender::Caller,
    }
}

fn query(user: Option<&str>, since: Option<u64>, limit: Option<u32>) -> CallRecordQuery {
    CallRecordQuery {
        user: user.map(str::to_owned),
        since,
        until: None,
        limit,
    }
}

#[test]
fn call_records_are_sealed_and_read_by_the_care_team_only() {
    let c = console(900);
    let root = c.enrol_root();
    let desk = c.add(&root, "desk", "receptionist", &[]);
    let lee = c.add(&root, "dr.lee", "physician", &["bob"]);
    let (vm, _) = c.deposit("bob", 440.0);
    let rng = SystemRandom::new();
    let t = c.now();
    let early = vec![
        cdr("alice", "bob", t - 600, t - 540, Disposition::Answered),
        cdr(
            "alice",
            "carol",
            t - 500,
            t - 480,
            Disposition::Voicemail {
                reason: VoicemailCause::NoAnswer,
            },
        ),
    ];
    let late = vec![cdr(
        "carol",
        "bob",
        t - 100,
        t - 90,
        Disposition::Refused { status: 486 },
    )];
    let first = seal_batch(&c.store.vault, &rng, &early, t - 400, 86_400).unwrap();
    let second = seal_batch(&c.store.vault, &rng, &late, t - 50, 86_400).unwrap();
    // Sealed: neither a party nor a Call-ID in the ciphertext.
    for id in [&first, &second] {
        let path = c.dir.path().join(format!("data/vault/objects/{id}.cvx"));
        let raw = std::fs::read(path).unwrap();
        assert!(raw.len() > 100);
        assert!(!raw.windows(5).any(|w| w == b"alice" || w == b"carol"));
    }

    // The physician on bob's care team reads bob's calls only.
    let mut client = c.login("dr.lee", "dr.lee long password", &lee);
    let list = client.call_records(CallRecordQuery::default()).unwrap();
    assert_eq!(list.items, vec![early[0].clone(), late[0].clone()]);
    assert_eq!((list.withheld, list.omitted, list.unreadable), (1, 0, 0));
    // By user: carol's calls, one of them with bob.
    let list = client
        .call_records(query(Some("carol"), None, None))
        .unwrap();
    assert_eq!(list.items, late);
    assert_eq!(list.withheld, 1);
    // Since a time: the first batch is skipped unread.
    let list = client
        .call_records(query(None, Some(t - 200), None))
        .unwrap();
    assert_eq!(list.items, late);
    assert_eq!(list.withheld, 0);
    // The newest first past the limit.
    let list = client.call_records(query(None, None, Some(1))).unwrap();
    assert_eq!(list.items, late);
    assert_eq!(list.omitted, 1);
    let e = client.call_records(query(None, None, Some(0))).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Invalid));
    // A batch is not a voicemail: neither listed nor exported as one.
    let (items, _) = client.voicemail_list().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].id, vm);
    let out = c.dir.path().join("batch.wav");
    let e = client.voicemail_export(&first, &out).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    assert!(!out.exists());
    client.logoff().unwrap();

    // The front desk and the administrator read none: CDRs are ePHI.
    let mut client = c.login("desk", "desk long password", &desk);
    let list = client.call_records(CallRecordQuery::default()).unwrap();
    assert!(list.items.is_empty());
    assert_eq!(list.withheld, 3);
    client.logoff().unwrap();
    let mut client = c.login("root", ROOT_PW, &root);
    let list = client.call_records(CallRecordQuery::default()).unwrap();
    assert!(list.items.is_empty());
    assert_eq!(list.withheld, 3);
    // Nor does a voicemail command reach a batch.
    let e = client.voicemail_delete(&second).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    assert_eq!(client.voicemail_list().unwrap().0.len(), 1);
    client.logoff().unwrap();
    assert_eq!(
        cdr::decode_batch(&c.store.vault.get(&second).unwrap().1).unwrap(),
        late
    );

    // Each decision is audited once per mailbox and request, with its rule.
    let records = c.records();
    let reads = |user: &str, outcome: Outcome| {
        records
            .iter()
            .filter(|r| {
                r.event == EventType::Other("call_log_access".into())
                    && r.actor.user_id.expose() == user
                    && r.outcome == outcome
            })
            .collect::<Vec<_>>()
    };
    let lee_reads = reads("dr.lee", Outcome::Success);
    assert!(
        lee_reads
            .iter()
            .all(|r| detail(r, "decision").is_some_and(|d| d.contains("care-team-call-log")))
    );
    // One permit for bob's mailbox per listing (four of them), whatever the
    // number of his records.
    assert_eq!(lee_reads.len(), 4);
    assert_eq!(reads("dr.lee", Outcome::MinorFailure).len(), 3);
    assert!(!reads("desk", Outcome::MinorFailure).is_empty());
    assert!(
        reads("root", Outcome::MinorFailure)
            .iter()
            .any(|r| detail(r, "decision").is_some_and(|d| d.contains("forbid-admin-ephi")))
    );
}

fn detail<'a>(r: &'a Record, key: &str) -> Option<&'a str> {
    r.details
        .iter()
        .find(|d| d.key.expose() == key)
        .map(|d| d.value.expose().as_str())
}

fn logins(records: &[Record], outcome: &Outcome, result: &str) -> usize {
    records
        .iter()
        .filter(|r| {
            r.event == EventType::Login
                && r.outcome == *outcome
                && detail(r, "result") == Some(result)
        })
        .count()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_first_account_enrols_once_and_logs_in_with_password_and_totp() {
    let c = console(900);
    assert_eq!(mode(&c.socket), 0o600);
    assert_eq!(mode(c.socket.parent().unwrap()), 0o700);
    let root = c.enrol_root();
    // Enrolment is closed now, and the attempt is audited.
    let again = Client::connect(&c.socket)
        .unwrap()
        .enrol_first("mallory", "administrator", secret(ROOT_PW), vec![])
        .unwrap_err();
    assert_eq!(again.kind(), Some(ErrorKind::Conflict));

    let mut client = c.login("root", ROOT_PW, &root);
    let (items, withheld) = client.voicemail_list().unwrap();
    assert!(items.is_empty() && withheld == 0);
    client.logoff().unwrap();

    let records = c.records();
    let enrolments: Vec<&Record> = records
        .iter()
        .filter(|r| {
            r.event == EventType::PermissionChange && r.actor.user_id.expose() == "local-enrolment"
        })
        .collect();
    assert_eq!(enrolments.len(), 2);
    assert_eq!(enrolments[0].outcome, Outcome::Success);
    assert_eq!(enrolments[1].outcome, Outcome::MinorFailure);
    let login = records
        .iter()
        .find(|r| r.event == EventType::Login && r.outcome == Outcome::Success)
        .unwrap();
    assert_eq!(login.actor.user_id.expose(), "root");
    assert_eq!(detail(login, "methods"), Some("password+totp"));
    assert!(
        records
            .iter()
            .any(|r| r.event == EventType::Logout && detail(r, "reason") == Some("logoff"))
    );

    // The accounts file holds a hash, never the password or the TOTP secret.
    let accounts = std::fs::read_to_string(c.dir.path().join("data/admin/accounts.toml")).unwrap();
    assert!(accounts.contains("$argon2id$"));
    assert!(!accounts.contains(ROOT_PW));
    assert!(!accounts.contains(root.to_base32().as_str()));
    assert_eq!(mode(&c.dir.path().join("data/admin/accounts.toml")), 0o600);
}

#[test]
fn a_wrong_password_or_totp_code_is_refused_audited_and_locks_out() {
    let c = console(900);
    let root = c.enrol_root();
    c.next_step();
    let e = c.login_err("root", "not the password", c.code(&root));
    assert_eq!(e.kind(), Some(ErrorKind::LoginRefused));
    c.next_step();
    let e = c.login_err("root", ROOT_PW, secret("000000"));
    assert_eq!(e.kind(), Some(ErrorKind::LoginRefused));
    // An unknown name gets the same answer.
    let e = c.login_err("nobody", ROOT_PW, secret("000000"));
    assert_eq!(e.kind(), Some(ErrorKind::LoginRefused));
    let records = c.records();
    assert_eq!(
        logins(&records, &Outcome::MinorFailure, "password refused"),
        2
    );
    assert_eq!(logins(&records, &Outcome::MinorFailure, "totp refused"), 1);

    // [lockout] defaults: the fifth failure in a row locks for 30 s, and
    // then even the right password and code are refused unseen.
    for _ in 0..3 {
        let e = c.login_err("root", "guess", secret("123456"));
        assert_eq!(e.kind(), Some(ErrorKind::LoginRefused));
    }
    let e = c.login_err("root", ROOT_PW, c.code(&root));
    assert_eq!(e.kind(), Some(ErrorKind::LockedOut), "{e}");
    let records = c.records();
    assert_eq!(logins(&records, &Outcome::MinorFailure, "locked out"), 1);
    // After the wait, the right credentials work again.
    c.clock.fetch_add(31, Ordering::SeqCst);
    let mut ok = Client::connect(&c.socket).unwrap();
    ok.login("root", secret(ROOT_PW), c.code(&root)).unwrap();
    // A code is accepted once.
    let e = c.login_err("root", ROOT_PW, c.code(&root));
    assert_eq!(e.kind(), Some(ErrorKind::LoginRefused));
}

#[test]
fn the_policy_decides_each_export_and_says_why() {
    let c = console(900);
    let root = c.enrol_root();
    let desk = c.add(&root, "desk", "receptionist", &[]);
    let lee = c.add(&root, "dr.lee", "physician", &["bob"]);
    let (bob_vm, samples) = c.deposit("bob", 440.0);
    let (_carol_vm, _) = c.deposit("carol", 1000.0);
    let out = c.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();

    // The receptionist: refused, with the policy's explanation.
    let mut client = c.login("desk", "desk long password", &desk);
    let e = client
        .voicemail_export(&bob_vm, &out.join("desk.wav"))
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Denied));
    assert!(e.to_string().contains("no rule permits it"), "{e}");
    assert!(!out.join("desk.wav").exists());
    let (items, withheld) = client.voicemail_list().unwrap();
    assert!(items.is_empty());
    assert_eq!(withheld, 2);
    client.logoff().unwrap();

    // The administrator lists every mailbox for retention, never listens.
    let mut client = c.login("root", ROOT_PW, &root);
    assert_eq!(client.voicemail_list().unwrap().0.len(), 2);
    let e = client
        .voicemail_export(&bob_vm, &out.join("root.wav"))
        .unwrap_err();
    assert!(e.to_string().contains("forbid-admin-ephi"), "{e}");
    client.logoff().unwrap();

    // The physician on bob's care team: lists and exports bob's message only.
    let mut client = c.login("dr.lee", "dr.lee long password", &lee);
    let (items, withheld) = client.voicemail_list().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(withheld, 1);
    assert_eq!(items[0].id, bob_vm);
    assert_eq!(items[0].owner.expose(), "bob");
    assert_eq!(items[0].duration_ms, 2000);
    let wav = out.join("bob.wav");
    let n = client.voicemail_export(&bob_vm, &wav).unwrap();
    assert_eq!(n, 16_000);
    assert_eq!(mode(&wav), 0o600);
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[46..], &samples[..]);
    assert!(frames_with_tone(&pcmu(&bytes[46..]), 8000, 440.0) > 0.95);
    // Never over an existing file.
    let e = client.voicemail_export(&bob_vm, &wav).unwrap_err();
    assert!(matches!(e, ClientError::Io { .. }), "{e}");
    let e = client
        .voicemail_export("no-such-id", &out.join("x.wav"))
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    client.logoff().unwrap();

    let records = c.records();
    let denied: Vec<&Record> = records
        .iter()
        .filter(|r| {
            r.event == EventType::VoicemailAccess
                && r.outcome == Outcome::MinorFailure
                && r.actor.user_id.expose() == "desk"
        })
        .collect();
    assert!(!denied.is_empty());
    assert!(
        detail(denied[0], "decision")
            .unwrap()
            .contains("no rule permits it")
    );
    assert!(records.iter().any(|r| {
        r.event == EventType::VoicemailAccess
            && r.outcome == Outcome::Success
            && r.actor.user_id.expose() == "dr.lee"
            && detail(r, "decision").is_some_and(|d| d.contains("care-team-voicemail"))
    }));
    // The vault's own records of the reads name the physician too.
    assert!(records.iter().any(|r| {
        r.actor.user_id.expose() == "dr.lee" && detail(r, "vault-operation") == Some("open")
    }));
}

#[test]
fn a_physician_deletes_by_crypto_shredding() {
    let c = console(900);
    let root = c.enrol_root();
    let lee = c.add(&root, "dr.lee", "physician", &["bob"]);
    let (vm, _) = c.deposit("bob", 440.0);
    let mut client = c.login("dr.lee", "dr.lee long password", &lee);
    client.voicemail_delete(&vm).unwrap();
    assert!(client.voicemail_list().unwrap().0.is_empty());
    let e = client.voicemail_delete(&vm).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    assert!(c.store.vault.get(&vm).is_err());
    let records = c.records();
    assert!(records.iter().any(|r| {
        r.actor.user_id.expose() == "dr.lee" && detail(r, "vault-operation") == Some("shred")
    }));
}

/// The console's access decisions on recordings by `user` with `outcome`.
fn recording_decisions<'a>(
    records: &'a [Record],
    user: &str,
    outcome: &Outcome,
) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|r| {
            r.event == EventType::RecordingAccess
                && detail(r, "decision").is_some()
                && r.actor.user_id.expose() == user
                && r.outcome == *outcome
        })
        .collect()
}

#[test]
fn recordings_are_decided_on_either_party_and_kept_apart_from_voicemail() {
    let c = console(900);
    let root = c.enrol_root();
    let desk = c.add(&root, "desk", "receptionist", &[]);
    let kim = c.add(&root, "nurse.kim", "nurse", &["bob"]);
    // On the callee's care team, the caller's, and neither.
    let lee = c.add(&root, "dr.lee", "physician", &["bob"]);
    let ray = c.add(&root, "dr.ray", "physician", &["alice"]);
    let sam = c.add(&root, "dr.sam", "physician", &["erin"]);
    let (rec, samples) = c.record("alice", "bob", 440.0);
    let (other, _) = c.record("carol", "dave", 1000.0);
    let (vm, _) = c.deposit("bob", 700.0);
    let started = c.now();
    let out = c.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let opened_recordings = |user: &str| {
        c.records()
            .iter()
            .filter(|r| {
                r.actor.user_id.expose() == user
                    && detail(r, "vault-operation") == Some("open")
                    && r.entity
                        .object
                        .as_ref()
                        .is_some_and(|o| o.id.expose().starts_with(recording::RECORDING_PREFIX))
            })
            .count()
    };

    // A nurse on bob's care team: his voicemail, no recording; the
    // voicemail listing does not even open one.
    let mut client = c.login("nurse.kim", "nurse.kim long password", &kim);
    let (items, withheld) = client.voicemail_list().unwrap();
    assert_eq!((items.len(), withheld), (1, 0));
    assert_eq!(items[0].id, vm);
    assert_eq!(opened_recordings("nurse.kim"), 0);
    let (items, withheld) = client.recording_list().unwrap();
    assert!(items.is_empty());
    assert_eq!(withheld, 2);
    client.logoff().unwrap();

    // The physician serving the callee: lists and exports that call only.
    let mut client = c.login("dr.lee", "dr.lee long password", &lee);
    let (items, withheld) = client.recording_list().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(withheld, 1);
    assert_eq!(items[0].id, rec);
    assert_eq!(items[0].caller.expose(), "alice");
    assert_eq!(items[0].callee.expose(), "bob");
    assert_eq!(items[0].started_at, started);
    assert_eq!(items[0].duration_ms, 2000);
    let wav = out.join("lee.wav");
    assert_eq!(client.recording_export(&rec, &wav).unwrap(), 16_000);
    assert_eq!(mode(&wav), 0o600);
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!(bytes.len(), 46 + 16_000);
    assert_eq!(&bytes[..46], &wav_header(G711::Pcmu, 16_000)[..]);
    assert_eq!(&bytes[46..], &samples[..]);
    assert!(frames_with_tone(&pcmu(&bytes[46..]), 8000, 440.0) > 0.95);
    // Never over an existing file.
    let e = client.recording_export(&rec, &wav).unwrap_err();
    assert!(matches!(e, ClientError::Io { .. }), "{e}");
    let e = client
        .recording_export(&other, &out.join("other.wav"))
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Denied));
    assert!(!out.join("other.wav").exists());
    // Only administrators delete recordings.
    let e = client.recording_delete(&rec).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Denied));
    // Voicemail commands never reach a recording, nor the other way round.
    let (items, withheld) = client.voicemail_list().unwrap();
    assert_eq!((items.len(), withheld), (1, 0));
    assert_eq!(items[0].id, vm);
    let e = client
        .voicemail_export(&rec, &out.join("rec-as-vm.wav"))
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    assert!(!out.join("rec-as-vm.wav").exists());
    let e = client
        .recording_export(&vm, &out.join("vm-as-rec.wav"))
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    assert!(!out.join("vm-as-rec.wav").exists());
    client.logoff().unwrap();

    // The physician serving the caller: the same call.
    let mut client = c.login("dr.ray", "dr.ray long password", &ray);
    let (items, withheld) = client.recording_list().unwrap();
    assert_eq!((items.len(), withheld), (1, 1));
    assert_eq!(items[0].id, rec);
    let wav = out.join("ray.wav");
    assert_eq!(client.recording_export(&rec, &wav).unwrap(), 16_000);
    assert_eq!(&std::fs::read(&wav).unwrap()[46..], &samples[..]);
    client.logoff().unwrap();

    // A physician serving neither party: nothing.
    let mut client = c.login("dr.sam", "dr.sam long password", &sam);
    let (items, withheld) = client.recording_list().unwrap();
    assert!(items.is_empty());
    assert_eq!(withheld, 2);
    let e = client
        .recording_export(&rec, &out.join("sam.wav"))
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Denied));
    client.logoff().unwrap();

    // The front desk: refused, with the policy's explanation.
    let mut client = c.login("desk", "desk long password", &desk);
    let (items, withheld) = client.recording_list().unwrap();
    assert!(items.is_empty());
    assert_eq!(withheld, 2);
    let e = client
        .recording_export(&rec, &out.join("desk.wav"))
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Denied));
    assert!(e.to_string().contains("no rule permits it"), "{e}");
    assert!(!out.join("desk.wav").exists());
    client.logoff().unwrap();

    // The administrator lists every recording for retention and deletes,
    // never exports; a voicemail command does not delete a recording, nor
    // a recording command a voicemail.
    let mut client = c.login("root", ROOT_PW, &root);
    let (items, withheld) = client.recording_list().unwrap();
    assert_eq!((items.len(), withheld), (2, 0));
    let e = client
        .recording_export(&rec, &out.join("root.wav"))
        .unwrap_err();
    assert!(e.to_string().contains("forbid-admin-ephi"), "{e}");
    let e = client.voicemail_delete(&rec).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    let e = client.recording_delete(&vm).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    assert!(c.store.vault.get(&rec).is_ok() && c.store.vault.get(&vm).is_ok());
    client.recording_delete(&other).unwrap();
    assert!(c.store.vault.get(&other).is_err());
    client.logoff().unwrap();

    // At 20:00 UTC the physician still lists, but exports only by day.
    c.clock.fetch_add(12 * 3600, Ordering::SeqCst);
    let mut client = c.login("dr.lee", "dr.lee long password", &lee);
    let (items, withheld) = client.recording_list().unwrap();
    assert_eq!((items.len(), withheld), (1, 0));
    let e = client
        .recording_export(&rec, &out.join("night.wav"))
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Denied));
    assert!(e.to_string().contains("physician-export-day"), "{e}");
    client.logoff().unwrap();
    // Shredded: gone for everyone, the voicemail untouched.
    let mut client = c.login("root", ROOT_PW, &root);
    client.recording_delete(&rec).unwrap();
    let e = client.recording_delete(&rec).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    assert_eq!(client.recording_list().unwrap(), (vec![], 0));
    assert_eq!(client.voicemail_list().unwrap().0.len(), 1);
    client.logoff().unwrap();
    assert!(c.store.vault.get(&rec).is_err());
    let mut client = c.login("dr.lee", "dr.lee long password", &lee);
    let e = client
        .recording_export(&rec, &out.join("late.wav"))
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    client.logoff().unwrap();

    // Each decision is an access record of its own: recording access to a
    // recording object, with the rule that decided it.
    let records = c.records();
    let counts = |user: &str| {
        (
            recording_decisions(&records, user, &Outcome::Success).len(),
            recording_decisions(&records, user, &Outcome::MinorFailure).len(),
        )
    };
    assert_eq!(counts("nurse.kim"), (0, 2));
    assert_eq!(counts("dr.lee"), (3, 4));
    assert_eq!(counts("dr.ray"), (2, 1));
    assert_eq!(counts("dr.sam"), (0, 3));
    assert_eq!(counts("desk"), (0, 3));
    assert_eq!(counts("root"), (4, 1));
    let decisions: Vec<&Record> = records
        .iter()
        .filter(|r| r.event == EventType::RecordingAccess && detail(r, "decision").is_some())
        .collect();
    assert!(decisions.iter().all(|r| {
        r.entity.object.as_ref().is_some_and(|o| {
            o.kind == ObjectKind::Recording && (o.id.expose() == &rec || o.id.expose() == &other)
        })
    }));
    for (user, rule) in [
        ("dr.lee", "physician-recordings"),
        ("dr.lee", "physician-export-day"),
        ("dr.ray", "physician-export-day"),
        ("root", "admin-retention"),
    ] {
        assert!(
            recording_decisions(&records, user, &Outcome::Success)
                .iter()
                .any(|r| detail(r, "decision").is_some_and(|d| d.contains(rule))),
            "{user} {rule}"
        );
    }
    let deleted: Vec<&Record> = recording_decisions(&records, "root", &Outcome::Success)
        .into_iter()
        .filter(|r| r.action == Action::Delete)
        .collect();
    assert_eq!(deleted.len(), 2);
    // No voicemail decision names a recording.
    assert!(
        records
            .iter()
            .filter(|r| r.event == EventType::VoicemailAccess && detail(r, "decision").is_some())
            .all(|r| r
                .entity
                .object
                .as_ref()
                .is_some_and(|o| o.kind == ObjectKind::Voicemail && o.id.expose() == &vm))
    );
}

#[test]
fn an_idle_session_is_logged_off_and_audited() {
    let c = console(60);
    let root = c.enrol_root();
    let mut client = c.login("root", ROOT_PW, &root);
    c.clock.fetch_add(59, Ordering::SeqCst);
    client.voicemail_list().unwrap();
    c.clock.fetch_add(61, Ordering::SeqCst);
    let e = client.voicemail_list().unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::LoggedOff), "{e}");
    let records = c.records();
    assert!(records.iter().any(|r| {
        r.event == EventType::Logout
            && r.actor.user_id.expose() == "root"
            && detail(r, "reason") == Some("idle timeout")
    }));
}

fn raw_exchange(socket: &Path, bytes: &[u8]) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn garbage_on_the_socket_gets_a_typed_error_and_the_server_goes_on() {
    let c = console(900);
    let root = c.enrol_root();
    let reply = raw_exchange(&c.socket, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    assert!(reply.contains("\"kind\":\"bad_frame\""), "{reply}");
    let reply = raw_exchange(&c.socket, &[0, 0, 0, 3, b'Z', 0, 0]);
    assert!(reply.contains("\"kind\":\"bad_frame\""), "{reply}");
    let mut json = vec![0, 0, 0, 17, b'J'];
    json.extend_from_slice(b"{\"request\":\"rm\"}");
    let reply = raw_exchange(&c.socket, &json);
    assert!(reply.contains("\"kind\":\"bad_request\""), "{reply}");
    let mut data = vec![0, 0, 0, 4, b'D'];
    data.extend_from_slice(b"abc");
    let reply = raw_exchange(&c.socket, &data);
    assert!(reply.contains("\"kind\":\"bad_request\""), "{reply}");
    // A command before a login.
    let mut list = vec![0, 0, 0, 29, b'J'];
    list.extend_from_slice(b"{\"request\":\"voicemail_list\"}");
    let reply = raw_exchange(&c.socket, &list);
    assert!(reply.contains("\"kind\":\"not_logged_in\""), "{reply}");
    // Cut short, then random bytes.
    let _ = raw_exchange(&c.socket, &[0, 0, 1]);
    let mut noise = vec![0u8; 4096];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut noise).unwrap();
    let _ = raw_exchange(&c.socket, &noise);
    // Still serving.
    c.login("root", ROOT_PW, &root).logoff().unwrap();
}

#[test]
fn accounts_persist_across_a_restart_and_the_socket_is_guarded() {
    let mut c = console(900);
    let root = c.enrol_root();
    let lee = c.add(&root, "dr.lee", "physician", &["bob"]);
    // A second server on the same directory is refused while one runs.
    let clock = c.clock.clone();
    let mut settings = ControlSettings::from_config(&c.config);
    settings.hasher = PasswordHasher::default();
    let mut parts = ControlParts::from_store(&c.store, Arc::new(SystemRandom::new()));
    parts.clock = Arc::new(move || clock.load(Ordering::SeqCst));
    assert!(matches!(
        ControlServer::start(settings, parts),
        Err(ControlError::InUse(_))
    ));
    // Dropped without shutdown (a crash): the socket is left, stale.
    drop(c.control.take());
    std::thread::sleep(Duration::from_millis(50));
    let control = start_control(&c.store, &c.config, &c.clock);
    c.login("dr.lee", "dr.lee long password", &lee)
        .logoff()
        .unwrap();
    control.shutdown();
    assert!(!c.socket.exists());
    // Something that is not a socket at the path stops the start.
    std::fs::write(&c.socket, b"not a socket").unwrap();
    let mut parts = ControlParts::from_store(&c.store, Arc::new(SystemRandom::new()));
    parts.clock = Arc::new(|| T0);
    assert!(matches!(
        ControlServer::start(ControlSettings::from_config(&c.config), parts),
        Err(ControlError::NotASocket(_))
    ));
}

#[test]
fn accounts_are_added_disabled_and_their_totp_reset_by_an_administrator() {
    let c = console(900);
    let root = c.enrol_root();
    let lee = c.add(&root, "dr.lee", "physician", &["bob"]);
    // A physician may not manage accounts.
    let mut client = c.login("dr.lee", "dr.lee long password", &lee);
    let e = client
        .user_add("eve", "administrator", secret("eve long password"), vec![])
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Denied));
    let e = client.user_disable("root").unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Denied));
    client.logoff().unwrap();

    // TOTP reset: the old secret no longer works, the new one does.
    let mut client = c.login("root", ROOT_PW, &root);
    let uri = client.totp_reset("dr.lee").unwrap();
    client.logoff().unwrap();
    let new = totp_of(&uri);
    c.next_step();
    let e = c.login_err("dr.lee", "dr.lee long password", c.code(&lee));
    assert_eq!(e.kind(), Some(ErrorKind::LoginRefused));
    c.login("dr.lee", "dr.lee long password", &new)
        .logoff()
        .unwrap();

    // Disabled: refused, its open session ended.
    let mut lee_session = c.login("dr.lee", "dr.lee long password", &new);
    let mut client = c.login("root", ROOT_PW, &root);
    client.user_disable("dr.lee").unwrap();
    client.logoff().unwrap();
    let e = lee_session.voicemail_list().unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::LoggedOff));
    c.next_step();
    let e = c.login_err("dr.lee", "dr.lee long password", c.code(&new));
    assert_eq!(e.kind(), Some(ErrorKind::LoginRefused));
    assert!(c.records().iter().any(|r| {
        r.event == EventType::Login
            && r.actor.user_id.expose() == "dr.lee"
            && detail(r, "account") == Some("disabled")
    }));
    // An administrator cannot disable itself (enrolment is closed for good).
    let mut client = c.login("root", ROOT_PW, &root);
    let e = client.user_disable("root").unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Invalid));
    client.logoff().unwrap();
    // Short passwords and unknown roles are refused.
    let mut client = c.login("root", ROOT_PW, &root);
    let e = client
        .user_add("x", "physician", secret("short"), vec![])
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Invalid));
    let e = client
        .user_add("x", "wizard", secret("long enough password"), vec![])
        .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Invalid));
    client.logoff().unwrap();
    let records = c.records();
    assert!(records.iter().any(|r| {
        r.event == EventType::PermissionChange
            && r.outcome == Outcome::MinorFailure
            && r.actor.user_id.expose() == "dr.lee"
    }));
}

#[test]
fn an_auditor_verifies_and_exports_the_audit_log() {
    let c = console(900);
    let root = c.enrol_root();
    let auditor = c.add(&root, "privacy", "auditor", &[]);
    // The administrator may not read the audit log (separation of duty).
    let mut client = c.login("root", ROOT_PW, &root);
    let e = client.audit_verify().unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Denied));
    client.logoff().unwrap();

    let mut client = c.login("privacy", "privacy long password", &auditor);
    let v = client.audit_verify().unwrap();
    assert_eq!(v.damage, None);
    assert!(v.records > 5, "{v:?}");
    assert!(v.checkpoints >= 1);
    assert_eq!(v.public_key, c.store.audit.verifying_key().to_hex());
    let file = c.dir.path().join("audit.ndjson");
    let bytes = client.audit_export(&file).unwrap();
    client.logoff().unwrap();
    assert_eq!(mode(&file), 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(u64::try_from(text.len()).unwrap(), bytes);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(u64::try_from(lines.len()).unwrap() >= v.records);
    assert_eq!(lines[0]["seq"], 0);
    assert!(text.contains("\"event\":\"login\""));
    // Both decisions on the audit log are in it: the refusal and the grant.
    let verify = EventType::Other("audit_log_verify".into());
    let records = c.records();
    let decided: Vec<(&str, &Outcome)> = records
        .iter()
        .filter(|r| r.event == verify)
        .map(|r| (r.actor.user_id.expose().as_str(), &r.outcome))
        .collect();
    assert_eq!(
        decided,
        [
            ("root", &Outcome::MinorFailure),
            ("privacy", &Outcome::Success)
        ]
    );
    assert!(records.iter().any(|r| r.event == EventType::Export
        && r.outcome == Outcome::Success
        && r.actor.user_id.expose() == "privacy"));
}

#[test]
fn an_auditor_reads_the_alerts_replayed_from_the_audit_log() {
    let c = console(900);
    let root = c.enrol_root();
    let auditor = c.add(&root, "privacy", "auditor", &[]);
    // Someone tries five passwords for an account that does not exist.
    for _ in 0..5 {
        c.login_err("mallory", "guess", secret("000000"));
    }
    let mut client = c.login("root", ROOT_PW, &root);
    let e = client.audit_alerts(None).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Denied));
    client.logoff().unwrap();

    let mut client = c.login("privacy", "privacy long password", &auditor);
    let alerts = client.audit_alerts(None).unwrap();
    let failed: Vec<&str> = alerts
        .iter()
        .filter(|a| a.kind == "repeated-failed-logins")
        .map(|a| a.who.expose().as_str())
        .collect();
    assert!(failed.contains(&"mallory"), "{alerts:?}");
    assert!(alerts.iter().all(|a| a.at_ms >= T0 * 1000));
    assert!(!format!("{alerts:?}").contains("mallory"));
    // Nothing after a time still to come.
    assert!(
        client
            .audit_alerts(Some(c.now() + 3600))
            .unwrap()
            .is_empty()
    );
    client.logoff().unwrap();
    let records = c.records();
    let alerts_read = EventType::Other("audit_log_alerts".into());
    let decided: Vec<(&str, &Outcome)> = records
        .iter()
        .filter(|r| r.event == alerts_read)
        .map(|r| (r.actor.user_id.expose().as_str(), &r.outcome))
        .collect();
    assert_eq!(
        decided,
        [
            ("root", &Outcome::MinorFailure),
            ("privacy", &Outcome::Success),
            ("privacy", &Outcome::Success)
        ]
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_carevox-pbx");

fn admin_command(config: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = std::process::Command::new(BIN)
        .args(["admin", "--config"])
        .arg(config)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs an admin command as root with TOTP `code`; it must succeed.
fn admin_ok(config: &Path, args: &[&str], code: &str) -> String {
    let out = admin_command(config, args, &format!("root\n{ROOT_PW}\n{code}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A control server on the system clock (the binary's codes are real
/// ones) for a data directory in `dir`, its configuration file, and its
/// first account `root`, a physician serving bob's mailbox, enrolled
/// through the command line: the file's path, the store, the server and
/// root's TOTP secret.
fn command_line_server(dir: &Path) -> (PathBuf, Store, ControlServer, TotpSecret) {
    let config = config(dir, 900);
    let path = dir.join("pbx.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nrealm = \"{DOMAIN}\"\ndomains = [\"{DOMAIN}\"]\n\
             data_dir = \"{}\"\nmaster_key_file = \"{}\"\n",
            dir.join("data").display(),
            dir.join("keys/vault.key").display(),
        ),
    )
    .unwrap();
    let store = Store::open(&config, &SystemRandom::new(), carevox_testkit::unix_now()).unwrap();
    // The system clock: the binary's codes are real ones.
    let control = ControlServer::start(
        ControlSettings::from_config(&config),
        ControlParts::from_store(&store, Arc::new(SystemRandom::new())),
    )
    .unwrap();
    let out = admin_command(
        &path,
        &[
            "enrol-first",
            "root",
            "--role",
            "physician",
            "--mailbox",
            "bob",
        ],
        &format!("{ROOT_PW}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let uri = text.lines().find(|l| l.starts_with("otpauth://")).unwrap();
    let totp = totp_of(&secret(uri));
    assert!(!text.contains(ROOT_PW));
    (path, store, control, totp)
}

#[test]
fn the_command_line_reads_credentials_from_stdin_and_never_prints_them() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _store, control, totp) = command_line_server(dir.path());
    let code = Totp::default()
        .generate(&totp, carevox_testkit::unix_now())
        .unwrap();
    let text = admin_ok(&path, &["voicemail", "list"], code.as_str());
    assert!(text.contains("0 listed, 0 withheld"), "{text}");
    assert!(!text.contains(ROOT_PW) && !text.contains(code.as_str()));
    // The same code again: refused (replay), exit 1.
    let out = admin_command(
        &path,
        &["voicemail", "list"],
        &format!("root\n{ROOT_PW}\n{}\n", code.as_str()),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("login refused"));
    // The next step's code (inside the window): call detail records.
    let code = Totp::default()
        .generate(&totp, carevox_testkit::unix_now() + 30)
        .unwrap();
    let args = ["cdr", "list", "--user", "bob", "--since", "2026-01-01"];
    let text = admin_ok(&path, &args, code.as_str());
    assert!(text.starts_with("started (UTC)"), "{text}");
    assert!(
        text.contains("0 listed, 0 older left out past the limit, 0 withheld"),
        "{text}"
    );
    let out = admin_command(&path, &["cdr", "list", "--since", "yesterday"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
    // Missing lines: a usage error.
    let out = admin_command(&path, &["voicemail", "list"], "root\n");
    assert_eq!(out.status.code(), Some(2));
    control.shutdown();
}

#[test]
fn the_command_line_lists_recordings_and_says_why_a_delete_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store, control, totp) = command_line_server(dir.path());
    let now = carevox_testkit::unix_now();
    let id = format!("{}{now}-cli", recording::RECORDING_PREFIX);
    store
        .vault
        .put(
            &SystemRandom::new(),
            recording::metadata(&id, "alice", "bob", "call-cli", now, now + 86_400),
            &two_seconds_of(440.0),
        )
        .unwrap();
    let code = Totp::default().generate(&totp, now).unwrap();
    let text = admin_ok(&path, &["recording", "list"], code.as_str());
    assert!(text.starts_with("id"), "{text}");
    let line = text.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        line.contains(" alice ") && line.contains(" bob ") && line.ends_with(" 2.0"),
        "{line}"
    );
    assert!(text.contains("1 listed, 0 withheld"), "{text}");
    // A physician may not delete a recording: exit 1 with the reason.
    let code = Totp::default().generate(&totp, now + 30).unwrap();
    let out = admin_command(
        &path,
        &["recording", "delete", &id],
        &format!("root\n{ROOT_PW}\n{}\n", code.as_str()),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("denied: no rule permits it"), "{err}");
    assert!(store.vault.get(&id).is_ok());
    control.shutdown();
}

fn phone_config(ca: &Ca, pbx: &Server, user: &str, source: Source) -> PhoneConfig {
    PhoneConfig {
        user: user.to_owned().into(),
        domain: DOMAIN.to_owned(),
        password: Password::new(&format!("{user}-secret")),
        pbx: pbx.addr(),
        server_name: NAME.to_owned(),
        tls: TlsClientConfig::builder(vec![ca.cert.clone()])
            .build()
            .unwrap(),
        media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        source,
        suites: vec![CryptoSuite::AesCm128HmacSha1_80],
        allow_md5: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voicemail_left_through_the_pbx_exports_as_the_callers_tone() {
    let c = console(900);
    let ca = Ca::new("clinic test CA");
    let id = ca.issue(&[NAME]);
    let rng = Arc::new(SystemRandom::new());
    let registrar = Registrar::new(
        RegistrarSettings::from_config(&c.config, "pbx-test"),
        c.store.nonce_secret.expose(),
    )
    .unwrap();
    let mut settings = ServerSettings::from_config(&c.config).unwrap();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    settings.media_ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    settings.media_ports = (43000, 43199);
    settings.max_message = Duration::from_secs(20);
    let server = Server::start(
        settings,
        ServerParts {
            registrar,
            users: Arc::new(Users::with_passwords(&["alice", "bob"], Md5Use::Refused)),
            vault: c.store.vault.clone(),
            audit: c.store.sink.clone(),
            rng: rng.clone(),
            tls: TlsServerConfig::new(id.chain.clone(), id.key.clone_key()).unwrap(),
        },
    )
    .await
    .unwrap();
    let mut alice = Phone::start(
        phone_config(&ca, &server, "alice", Source::Tone(440.0)),
        rng.clone(),
    )
    .await
    .unwrap();
    alice.register(300).await.unwrap();
    // Bob has no phone registered: voicemail answers at once.
    let CallOutcome::Answered(call) = alice.call("bob").await.unwrap() else {
        panic!("voicemail did not answer");
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    alice.hang_up(call).await.unwrap();
    let mut stored = None;
    for _ in 0..50 {
        if let Some(o) = c.store.vault.list().unwrap().first() {
            stored = Some(o.id.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let vm = stored.expect("a voicemail in the vault");

    let wav = c.dir.path().join("bob.wav");
    let (items, exported) = {
        let root = c.enrol_root();
        let lee = c.add(&root, "dr.lee", "physician", &["bob"]);
        let mut client = c.login("dr.lee", "dr.lee long password", &lee);
        let wav = wav.clone();
        let vm = vm.clone();
        tokio::task::spawn_blocking(move || {
            let items = client.voicemail_list().unwrap().0;
            let n = client.voicemail_export(&vm, &wav).unwrap();
            client.logoff().unwrap();
            (items, n)
        })
        .await
        .unwrap()
    };
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].owner.expose(), "bob");
    assert!(items[0].duration_ms >= 1000, "{:?}", items[0]);
    let bytes = std::fs::read(&wav).unwrap();
    assert_eq!(u64::try_from(bytes.len() - 46).unwrap(), exported);
    let (_, stored) = c.store.vault.get(&vm).unwrap();
    assert_eq!(&bytes[46..], &stored[..]);
    let share = frames_with_tone(&pcmu(&bytes[46..]), 8000, 440.0);
    assert!(share > 0.8, "{share}");
    alice.stop().await.unwrap();
    server.shutdown().await;
}
