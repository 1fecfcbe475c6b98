//! `carevox-pbx demo`: the whole PBX in one process on 127.0.0.1, with
//! what a clinic does in a day.
//!
//! 1. A fresh data directory (owner-only), a test CA made on the spot and
//!    the PBX's certificate; the PBX starts with two users.
//! 2. Two softphones made of the SDK register over TLS with SHA-256
//!    digest: the front desk's and Dr. Lee's.
//! 3. The front desk calls Dr. Lee; his phone rings, nobody answers, the
//!    voicemail answers and records the message, played from an audio file
//!    as the front desk phone's microphone, into the vault.
//! 4. Dr. Lee logs in with password and TOTP; the access policy lets him
//!    play the message; it is read from the vault, its tone checked by
//!    frequency, and exported as a WAV file. Every step is audited.
//! 5. The front desk logs in too and asks to play it: refused, audited.
//! 6. The audit log is verified with the public key alone.
//!
//! Every step prints what happened; anything taking more than a second
//! prints a progress line first.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use carevox::access::{Access, Subject, Target, access_record};
use carevox::audio::{G711, tone_power, wav_header};
use carevox::audit::{
    Action, AuthMethod as AuditAuth, EventType, ObjectKind, ObjectRef, Timestamp, VerifyOptions,
    verify_log,
};
use carevox::audit_sink::AuditSink;
use carevox::authz::login::{AuthMethod, SessionPolicy, SessionStore};
use carevox::authz::password::{
    Argon2Params, HashAlgorithm, Password as LoginPassword, PasswordHasher,
};
use carevox::authz::totp::{Totp, TotpAlgorithm, TotpSecret};
use carevox::authz::{
    Assignments, Attributes, HOSPITAL_POLICY, PatientId, Policy, Request, Resource, Session,
    TeamId, UserId,
};
use carevox::login::{LoginEvent, LoginSubject, login_record};
use carevox::redact::Pii;
use carevox::sip::auth::Password;
use carevox::sip::sdp::crypto::CryptoSuite;
use carevox::vault_audit::VaultActor;
use carevox_transport::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use carevox_transport::{TlsClientConfig, TlsServerConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use ring::rand::SecureRandom;

use crate::config::Config;
use crate::media::Source;
use crate::phone::{CallOutcome, Phone, PhoneConfig};
use crate::registrar::{Md5Use, Registrar, RegistrarSettings};
use crate::server::{Server, ServerParts, ServerSettings};
use crate::store::{Store, UsersFile};

/// The demo's domain and the name on the PBX's certificate.
const DOMAIN: &str = "clinic.demo";
const SERVER_NAME: &str = "pbx.clinic.demo";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Dr. Lee's care team, which the message is filed under.
const CARE_TEAM: TeamId = TeamId(7);
/// The patient the front desk's message is about.
const PATIENT: u64 = 42;
const PATIENT_REF: &str = "Patient/42";
/// The frequency of the demo message's tone.
const MESSAGE_TONE: f64 = 440.0;

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {message}")]
pub struct DemoError {
    step: &'static str,
    message: String,
}

trait At<T> {
    fn at(self, step: &'static str) -> Result<T, DemoError>;
}

impl<T, E: std::fmt::Display> At<T> for Result<T, E> {
    fn at(self, step: &'static str) -> Result<T, DemoError> {
        self.map_err(|e| DemoError {
            step,
            message: e.to_string(),
        })
    }
}

fn fail<T>(step: &'static str, message: &str) -> Result<T, DemoError> {
    Err(DemoError {
        step,
        message: message.to_owned(),
    })
}

/// What the demo found, for its tests.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct DemoReport {
    /// Both phones registered.
    pub registered: bool,
    /// The voicemail's length in seconds.
    pub voicemail_secs: f64,
    /// The share of the message's frames that carry the caller's tone.
    pub tone_share: f64,
    /// The physician's access decision.
    pub physician: Option<Access>,
    /// The receptionist's access decision.
    pub receptionist: Option<Access>,
    /// Records in the audit log, verified with the public key alone.
    pub audit_records: u64,
    /// Whether the verifier found the log intact.
    pub audit_intact: bool,
    /// Where the data directory is.
    pub data_dir: PathBuf,
}

fn say(line: &str) {
    #[allow(clippy::print_stdout)] // the demo's own output
    {
        println!("{line}");
    }
}

/// A step that may take more than a second: says so first.
fn progress(what: &str) {
    say(&format!("  … {what}"));
}

fn now_unix() -> u64 {
    #[allow(clippy::disallowed_methods)] // the demo's clock
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A CA and the PBX's certificate, made for this run only.
struct DemoPki {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn pki() -> Result<DemoPki, DemoError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).at("test CA")?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "carevox demo CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().at("test CA")?;
    let ca = ca_params.self_signed(&ca_key).at("test CA")?;
    let mut leaf = CertificateParams::new(vec![SERVER_NAME.to_owned()]).at("certificate")?;
    leaf.distinguished_name
        .push(DnType::CommonName, SERVER_NAME);
    let leaf_key = KeyPair::generate().at("certificate")?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let cert = leaf.signed_by(&leaf_key, &issuer).at("certificate")?;
    Ok(DemoPki {
        ca: ca.der().clone(),
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    })
}

/// The message played by the front desk's phone: two seconds of a tone,
/// written to a WAV file (μ-law, 8 kHz) in the data directory and read
/// back from it as the phone's microphone.
fn message_file(dir: &Path) -> Result<(PathBuf, Vec<u8>), DemoError> {
    let samples: Vec<u8> = (0..16_000u32)
        .map(|n| {
            let t = f64::from(n) / 8000.0;
            let s = (9000.0 * (2.0 * std::f64::consts::PI * MESSAGE_TONE * t).sin()).round();
            #[allow(clippy::cast_possible_truncation, reason = "within ±9000")]
            G711::Pcmu.encode(s as i16)
        })
        .collect();
    let len = u32::try_from(samples.len()).at("message")?;
    let mut wav = wav_header(G711::Pcmu, len).to_vec();
    wav.extend_from_slice(&samples);
    let path = dir.join("message.wav");
    fs::write(&path, &wav).at("message")?;
    // The microphone reads the file: the samples after its header.
    let read = fs::read(&path).at("message")?;
    let body = read.get(46..).unwrap_or_default().to_vec();
    if body.len() != samples.len() {
        return fail("message", "the WAV file did not read back whole");
    }
    Ok((path, body))
}

/// Runs the demo in `dir` (a fresh temporary directory when `None`).
pub async fn run(
    dir: Option<&Path>,
    rng: Arc<dyn SecureRandom + Send + Sync>,
) -> Result<DemoReport, DemoError> {
    let mut report = DemoReport::default();
    let started = Instant::now();

    // ---- 1: the PBX --------------------------------------------------------
    say("[1 pbx] a fresh data directory, a test CA, the PBX on 127.0.0.1");
    let root = match dir {
        Some(d) => {
            fs::create_dir_all(d).at("data directory")?;
            if fs::read_dir(d).at("data directory")?.next().is_some() {
                return fail("data directory", "the directory is not empty");
            }
            d.to_owned()
        }
        None => {
            let mut token = [0u8; 8];
            rng.fill(&mut token).map_err(|_| DemoError {
                step: "data directory",
                message: "no randomness".into(),
            })?;
            std::env::temp_dir().join(format!(
                "carevox-pbx-demo-{}",
                data_encoding::HEXLOWER.encode(&token)
            ))
        }
    };
    report.data_dir = root.clone();
    let config = Config::from_toml(&format!(
        "[server]\nrealm = \"{DOMAIN}\"\ndomains = [\"{DOMAIN}\"]\n\
         data_dir = \"{}\"\nmaster_key_file = \"{}\"\n\
         [voicemail]\nno_answer_timeout_secs = 5\nmax_message_secs = 30\n",
        root.join("data").display(),
        root.join("keys").join("vault.key").display(),
    ))
    .at("configuration")?;
    let store = Store::open(&config, &*rng, now_unix()).at("data directory")?;
    let users_path = root.join("data").join("users.toml");
    let mut users_text = String::new();
    for (name, password) in [
        ("frontdesk", "front door bell"),
        ("dr.lee", "stethoscope on the desk"),
    ] {
        users_text.push_str(
            &UsersFile::entry(name, DOMAIN, &Password::new(password), Md5Use::Refused)
                .at("users")?,
        );
    }
    fs::write(&users_path, users_text).at("users")?;
    let users = UsersFile::load(&users_path).at("users")?;
    let pki = pki()?;
    let registrar = Registrar::new(
        RegistrarSettings::from_config(&config, "carevox-pbx"),
        store.nonce_secret.expose(),
    )
    .at("registrar")?;
    let mut settings = ServerSettings::from_config(&config).at("settings")?;
    settings.listen = "127.0.0.1:0".parse().at("settings")?;
    settings.media_ip = LOCALHOST;
    settings.media_ports = (46000, 46999);
    let server = Server::start(
        settings,
        ServerParts {
            registrar,
            users: Arc::new(users),
            vault: store.vault.clone(),
            audit: store.sink.clone(),
            rng: rng.clone(),
            tls: TlsServerConfig::new(pki.chain.clone(), pki.key.clone_key()).at("TLS")?,
        },
    )
    .await
    .at("server")?;
    say(&format!(
        "  - data in {} (owner-only); the vault's master key apart in {}",
        root.join("data").display(),
        root.join("keys").display()
    ));
    say(&format!(
        "  - SIP over TLS on {} with a certificate for {SERVER_NAME} from a CA made for this run",
        server.addr()
    ));

    // ---- 2: phones register --------------------------------------------------
    say("[2 register] two softphones made of the SDK register over TLS (SHA-256 digest)");
    let (message_path, message) = message_file(&root)?;
    let phone = |user: &str, password: &str, source: Source| PhoneConfig {
        user: user.to_owned().into(),
        domain: DOMAIN.to_owned(),
        password: Password::new(password),
        pbx: server.addr(),
        server_name: SERVER_NAME.to_owned(),
        tls: TlsClientConfig::builder(vec![pki.ca.clone()])
            .build()
            .unwrap_or_else(|_| unreachable!("one CA certificate always builds")),
        media_ip: LOCALHOST,
        source,
        suites: vec![CryptoSuite::AeadAes256Gcm, CryptoSuite::AesCm128HmacSha1_80],
        allow_md5: false,
    };
    let mut front = Phone::start(
        phone(
            "frontdesk",
            "front door bell",
            Source::Samples(Arc::new(message)),
        ),
        rng.clone(),
    )
    .await
    .at("front desk phone")?;
    let mut lee = Phone::start(
        phone("dr.lee", "stethoscope on the desk", Source::Silent),
        rng.clone(),
    )
    .await
    .at("Dr. Lee's phone")?;
    front.register(600).await.at("front desk register")?;
    lee.register(600).await.at("Dr. Lee register")?;
    report.registered = true;
    say("  - frontdesk registered; dr.lee registered (each over its own TLS connection)");

    // ---- 3: a call nobody answers -------------------------------------------
    say("[3 voicemail] frontdesk calls dr.lee; nobody answers");
    progress("dr.lee's phone rings (5 s, then voicemail)");
    let caller = tokio::spawn(async move {
        let outcome = front.call("dr.lee").await;
        (front, outcome)
    });
    let incoming = lee.incoming().await.at("ringing")?;
    lee.ring(&incoming).await.at("ringing")?;
    let (mut front, outcome) = caller.await.at("call")?;
    let CallOutcome::Answered(call) = outcome.at("call")? else {
        return fail("call", "the voicemail did not answer");
    };
    say(&format!(
        "  - voicemail answered over SRTP; the front desk phone plays {} as its microphone",
        message_path.display()
    ));
    progress("leaving a 2-second message");
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let (_, stats) = front.hang_up(call).await.at("hang up")?;
    say(&format!(
        "  - hung up after {} SRTP packets sent, {} received",
        stats.a.sent, stats.a.received
    ));
    progress("the message is sealed into the vault");
    let mut stored = None;
    for _ in 0..100 {
        if let Some(o) = store.vault.list().at("vault")?.into_iter().next() {
            stored = Some(o.id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(voicemail_id) = stored else {
        return fail("voicemail", "no message in the vault");
    };
    say(&format!(
        "  - stored encrypted in the vault as {voicemail_id} (labels: caller, callee, Call-ID)"
    ));

    // ---- 4: the physician plays it -------------------------------------------
    say("[4 playback] dr.lee logs in with password + TOTP and plays the message");
    let policy = Policy::from_toml(HOSPITAL_POLICY).at("policy")?;
    let hasher = PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }))
    .at("password hasher")?;
    let totp = Totp::default();
    let sessions = SessionStore::new(SessionPolicy::default());
    let mut assignments = Assignments::new();
    let audit: Arc<dyn AuditSink> = store.sink.clone();
    let mut login =
        |name: &str, role: &str, id: u64, password: &str| -> Result<Session, DemoError> {
            let pw = LoginPassword::new(password).at("password")?;
            let hash = hasher.hash(&pw, &*rng).at("password")?;
            let secret = TotpSecret::generate(&*rng, TotpAlgorithm::Sha1).at("TOTP")?;
            let now = now_unix();
            let _verified = hasher.verify(&pw, &hash).at("password")?;
            let code = totp.generate(&secret, now).at("TOTP")?;
            totp.verify(&secret, &code, now, None).at("TOTP")?;
            let (_, info) = sessions
                .create(&*rng, name, &[AuthMethod::Password, AuthMethod::Totp], now)
                .at("session")?;
            let subject = LoginSubject {
                user_id: name,
                role: Some(role),
                network_address: Some("127.0.0.1"),
            };
            audit
                .append(&login_record(
                    &LoginEvent::LoggedIn { session: &info },
                    &subject,
                    now,
                    "carevox-pbx",
                ))
                .at("audit")?;
            let role_id = policy.role(role).ok_or_else(|| DemoError {
                step: "policy",
                message: format!("no role {role}"),
            })?;
            assignments
                .assign(&policy, UserId(id), role_id)
                .at("roles")?;
            let mut session = Session::new(UserId(id), info.is_mfa(), None);
            session
                .activate(&policy, &assignments, role_id)
                .at("roles")?;
            Ok(session)
        };
    let lee_session = login("dr.lee", "physician", 2, "stethoscope on the desk")?;
    say("  - dr.lee (physician): password and TOTP accepted, session with MFA; audited");
    let listen = policy.action("listen").ok_or_else(|| DemoError {
        step: "policy",
        message: "no listen action".into(),
    })?;
    let voicemail_type = policy.resource_type("voicemail").ok_or_else(|| DemoError {
        step: "policy",
        message: "no voicemail resource".into(),
    })?;
    let teams = [CARE_TEAM];
    let decide = |session: &Session,
                  name: &str,
                  role: &str,
                  teams: &[TeamId]|
     -> Result<Access, DemoError> {
        let request = Request {
            principal: session.principal(teams),
            action: listen,
            resource: Resource {
                kind: voicemail_type,
                owner: Some(PatientId::new(PATIENT)),
                care_teams: &[CARE_TEAM],
                ephi: true,
                attributes: Attributes::NONE,
            },
            attributes: Attributes::NONE,
            now: now_unix(),
            break_glass: None,
        };
        let decision = policy.decide(&request);
        let record = access_record(
            &request,
            &decision,
            &Subject {
                user_id: name,
                role: Some(role),
                network_address: Some("127.0.0.1"),
                auth: AuditAuth::PasswordMfa,
            },
            &Target {
                event: EventType::VoicemailAccess,
                action: Action::Read,
                patient: Some(Pii::new(PATIENT_REF)),
                object: Some(ObjectRef {
                    kind: ObjectKind::Voicemail,
                    id: Pii::new(voicemail_id.clone()),
                }),
                correlation_id: None,
            },
            "carevox-pbx",
        );
        audit.append(&record).at("audit")?;
        Ok(Access::from_decision(&decision))
    };
    let lee_access = decide(&lee_session, "dr.lee", "physician", &teams)?;
    say(&format!("  - the policy decides: {lee_access}"));
    if !lee_access.is_allowed() {
        return fail("playback", "the physician was refused");
    }
    store.vault_hook.set_actor(VaultActor::new(
        "dr.lee",
        AuditAuth::PasswordMfa,
        Timestamp(now_unix().saturating_mul(1000)),
    ));
    let (meta, samples) = store.vault.get(&voicemail_id).at("vault read")?;
    let decoded: Vec<Vec<i16>> = samples
        .chunks_exact(160)
        .map(|f| f.iter().map(|&b| G711::Pcmu.decode(b)).collect())
        .collect();
    let with_tone = decoded
        .iter()
        .filter(|f| tone_power(f, 8000, MESSAGE_TONE) > 0.5)
        .count();
    #[allow(clippy::cast_precision_loss, reason = "counts of frames")]
    {
        report.tone_share = with_tone as f64 / decoded.len().max(1) as f64;
        report.voicemail_secs = samples.len() as f64 / 8000.0;
    }
    let export = root.join(format!("{voicemail_id}.wav"));
    let mut wav = wav_header(G711::Pcmu, u32::try_from(samples.len()).at("export")?).to_vec();
    wav.extend_from_slice(&samples);
    fs::write(&export, wav).at("export")?;
    say(&format!(
        "  - {:.1} s of {} read from the vault; {:.0} % of its 20 ms frames carry the {MESSAGE_TONE} Hz tone",
        report.voicemail_secs,
        meta.content_type,
        report.tone_share * 100.0
    ));
    say(&format!("  - exported for playback: {}", export.display()));
    report.physician = Some(lee_access);

    // ---- 5: the receptionist is refused ----------------------------------------
    say("[5 refused] frontdesk logs in and asks to play the same message");
    let desk_session = login("frontdesk", "receptionist", 3, "front door bell")?;
    let desk_access = decide(&desk_session, "frontdesk", "receptionist", &[])?;
    say(&format!("  - the policy decides: {desk_access}"));
    if desk_access.is_allowed() {
        return fail("refusal", "the receptionist was allowed");
    }
    report.receptionist = Some(desk_access);

    // ---- 6: the audit log ----------------------------------------------------
    say("[6 audit] the audit log, verified with the public key alone");
    lee.stop().await.at("phones")?;
    front.stop().await.at("phones")?;
    server.shutdown().await;
    store.audit.sync().at("audit")?;
    let checkpoint = store
        .audit
        .checkpoint(Timestamp(now_unix().saturating_mul(1000)))
        .at("checkpoint")?;
    let public = store.audit.verifying_key();
    let verified = verify_log(
        root.join("data").join("audit"),
        &public,
        VerifyOptions::default(),
    )
    .at("verify")?;
    report.audit_records = verified.records;
    report.audit_intact = verified.damage.is_none() && verified.records == checkpoint.tree_size;
    say(&format!(
        "  - {} records (registrations, call start and end, voicemail write and read, logins, decisions), damage: {}",
        verified.records,
        if report.audit_intact { "none" } else { "FOUND" }
    ));
    fs::write(root.join("audit.pub"), public.to_hex()).at("public key")?;
    say(&format!(
        "  - public key in {}; check again with: carevox-audit verify {} --key {}",
        root.join("audit.pub").display(),
        root.join("data").join("audit").display(),
        public.to_hex()
    ));
    say(&format!(
        "done in {:.1} s; everything is in {}",
        started.elapsed().as_secs_f64(),
        root.display()
    ));
    Ok(report)
}
