//! The carevox tour: one patient call walked through every safeguard of the
//! five library crates, in one process and without a network.
//!
//! [`run`] performs six stages and returns a [`Report`] of what happened:
//!
//! 1. **Login**: the sample hospital policy is loaded; a nurse mistypes her
//!    password (refused and audited), then logs in with password and TOTP;
//!    the physician, receptionist, on-call physician and administrator log in
//!    the same way. Password hashes use deliberately low-cost Argon2id
//!    parameters so that the tour runs in a blink; production uses the
//!    default (OWASP) parameters.
//! 2. **Signalling**: the nurse's phone sends an INVITE whose SDP offer
//!    carries an SDES `a=crypto` line; the voicemail service answers with its
//!    own. Each side parses and validates the other's message, and keys its
//!    SRTP contexts from the SDES material.
//! 3. **Media**: ten seconds of 20 ms G.711 frames of a generated tone are
//!    protected and unprotected frame by frame; a tampered and a replayed
//!    packet are refused.
//! 4. **Voicemail**: the decoded audio becomes an 8 kHz 16-bit WAV file,
//!    stored encrypted in the vault with the patient reference and Call-ID as
//!    labels; every vault operation reaches the audit log through the vault's
//!    event hook.
//! 5. **Access**: a receptionist is refused, the patient's physician (on the
//!    care team) plays the message, the administrator's break-the-glass
//!    attempt is forbidden by the policy, and the on-call physician breaks
//!    the glass with a reason; the monitor flags both emergency requests.
//!    The nurse's session idles out, and her next login from a new network
//!    raises an alert.
//! 6. **Proof**: the audit log is checkpointed and verified with the public
//!    key alone, and the physician's access record is proven included.
//!
//! The glue between the crates (SDES keys to SRTP contexts, the offer and
//! answer, access decisions, logins and vault operations to audit records)
//! is the facade's (`carevox::media`, `carevox::sdes`, `carevox::access`,
//! `carevox::login`, `carevox::vault_audit`); the tour only calls it.
//!
//! Time: policy decisions, sessions, vault objects and audit records use a
//! simulated clock that starts at [`Options::start`] (seconds since the Unix
//! epoch) and is advanced explicitly by the tour (a few seconds per step,
//! sixteen minutes for the idle logoff). Stage timings are wall-clock
//! [`Instant`] measurements and are only reported, never checked.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
pub use carevox::access::Access;
use carevox::access::{Subject, Target, access_record};
use carevox::audit::monitor::{Alert, Monitor, MonitorConfig};
use carevox::audit::{
    Action, AuditLog, AuthMethod as AuditAuth, EventType, LogConfig, ObjectKind, ObjectRef, Record,
    Signer, Timestamp, VerifyOptions, verify_log,
};
use carevox::audit_sink::AuditSink;
pub use carevox::audit_sink::alert_kind;
use carevox::authz::lockout::{LockoutPolicy, LockoutState};
use carevox::authz::login::{AuthMethod, SessionError, SessionPolicy, SessionStore, SessionToken};
use carevox::authz::password::{Argon2Params, HashAlgorithm, Password, PasswordHasher};
use carevox::authz::totp::{Totp, TotpAlgorithm, TotpSecret};
use carevox::authz::{
    Assignments, Attributes, BreakGlass, HOSPITAL_POLICY, PatientId, Policy, Request, Resource,
    Session, TeamId, UserId,
};
use carevox::login::{LoginEvent, LoginSubject, LogoffReason, login_record};
use carevox::media::{answer_audio, offer_crypto, offerer_srtp};
use carevox::redact::Pii;
use carevox::sdes::SdesOptions;
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::crypto::CryptoSuite;
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use carevox::sip::{Message, MessageBuilder, ValidationPolicy, Verdict, validate};
use carevox::vault::{FsBackend, LocalKeyFile, Metadata, Vault};
use carevox::vault_audit::{VaultActor, VaultAuditConfig, VaultAuditHook};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Frames of 20 ms in the ten seconds of audio.
pub const FRAMES: usize = 500;
/// G.711 bytes per 20 ms frame at 8 kHz.
pub const FRAME_BYTES: usize = 160;
const SSRC_CALLER: u32 = 0x4e55_5253;
const SSRC_CALLEE: u32 = 0x564d_4149;
const PATIENT: u64 = 42;
const PATIENT_REF: &str = "Patient/42";
const CARE_TEAM: TeamId = TeamId(3);
const SOURCE: &str = "carevox-tour";
/// The office network of the staff's first logins.
const OFFICE_ADDRESS: &str = "10.20.30.40";
/// The network of the nurse's later login.
const NEW_ADDRESS: &str = "203.0.113.9";

/// What the tour failed at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TourError {
    /// A library call failed.
    #[error("{stage}: {source}")]
    Step {
        /// Where.
        stage: &'static str,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A safeguard did not behave as the tour expects.
    #[error("unexpected outcome: {0}")]
    Unexpected(String),
}

trait At<T> {
    fn at(self, stage: &'static str) -> Result<T, TourError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> At<T> for Result<T, E> {
    fn at(self, stage: &'static str) -> Result<T, TourError> {
        self.map_err(|e| TourError::Step {
            stage,
            source: Box::new(e),
        })
    }
}

fn unexpected<T>(what: impl Into<String>) -> Result<T, TourError> {
    Err(TourError::Unexpected(what.into()))
}

/// How to run the tour.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the vault, its key file and the audit log go. `None`: a fresh
    /// directory under the system's temporary directory.
    pub data_dir: Option<PathBuf>,
    /// The simulated clock's start, seconds since the Unix epoch.
    pub start: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            data_dir: None,
            // 2026-11-23 10:00 UTC: within day hours of the sample policy.
            start: 1_795_428_000,
        }
    }
}

/// One stage's name, wall-clock duration and what it did.
#[derive(Debug, Clone)]
pub struct Stage {
    /// The stage's name.
    pub name: &'static str,
    /// How long it took (wall clock).
    pub elapsed: Duration,
    /// What happened, one line each.
    pub lines: Vec<String>,
}

/// What the tour did and observed.
#[derive(Debug)]
pub struct Report {
    /// Where the data went.
    pub data_dir: PathBuf,
    /// The stages in order.
    pub stages: Vec<Stage>,
    /// The nurse's password and TOTP login succeeded with MFA.
    pub login_ok: bool,
    /// Audit sequence number of the refused login attempt.
    pub failed_login_seq: Option<u64>,
    /// The Call-ID both sides agreed on.
    pub call_id: String,
    /// The SRTP suite negotiated.
    pub srtp_suite: String,
    /// Frames protected by the caller.
    pub frames_protected: usize,
    /// Frames that authenticated and decrypted at the callee.
    pub frames_unprotected: usize,
    /// Frames of the callee's greeting that reached the caller.
    pub reverse_frames: usize,
    /// A tampered packet failed authentication.
    pub tampered_refused: bool,
    /// A replayed packet was refused.
    pub replay_refused: bool,
    /// The voicemail's vault id.
    pub voicemail_id: String,
    /// Size of the stored WAV file.
    pub voicemail_bytes: usize,
    /// The stored voicemail read back identical, with its labels.
    pub voicemail_readable: bool,
    /// Vault operations reported to the audit log through the hook.
    pub vault_events_audited: usize,
    /// The receptionist's request.
    pub receptionist: Access,
    /// The physician's request.
    pub physician: Access,
    /// The administrator's emergency request.
    pub administrator_break_glass: Access,
    /// The on-call physician's emergency request.
    pub on_call_break_glass: Access,
    /// The policy asked for a review of the emergency access.
    pub break_glass_review: bool,
    /// The nurse's idle session was logged off.
    pub idle_logoff: bool,
    /// Alerts raised by the monitor.
    pub alerts: Vec<Alert>,
    /// Records in the audit log.
    pub audit_records: u64,
    /// The audit log's Ed25519 public key, hex (also in `audit.pub`).
    pub audit_public_key: String,
    /// `verify_log` found no damage.
    pub audit_verified: bool,
    /// The physician's access record's inclusion proof verified.
    pub inclusion_verified: bool,
    /// Its sequence number.
    pub access_record_seq: u64,
    /// Hashes in its inclusion proof.
    pub inclusion_proof_len: usize,
}

/// The audit log and its monitor, shared by the tour and the vault's hook.
#[derive(Debug)]
struct Audit {
    log: AuditLog,
    monitor: Mutex<(Monitor, Vec<Alert>)>,
}

impl Audit {
    fn add(&self, record: &Record) -> Result<u64, TourError> {
        AuditSink::append(self, record).at("audit append")
    }
}

/// The log, with the monitor watching every record appended: the vault's
/// hook appends through this too.
impl AuditSink for Audit {
    fn append(&self, record: &Record) -> Result<u64, carevox::audit::Error> {
        let seq = self.log.append(record)?;
        let mut guard = self
            .monitor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (monitor, alerts) = &mut *guard;
        monitor.observe(seq, record, alerts);
        Ok(seq)
    }
}

/// Who acts on the vault: a member of staff or the voicemail service, at
/// `now` (seconds), about the tour's patient.
fn vault_actor(user: &str, role: &str, now: u64, emergency: Option<String>) -> VaultActor {
    let mut actor = VaultActor::new(
        user,
        AuditAuth::PasswordMfa,
        Timestamp(now.saturating_mul(1000)),
    );
    actor.role = Some(role.into());
    actor.patient = Some(Pii::new(PATIENT_REF.into()));
    actor.emergency = emergency;
    actor
}

/// A member of staff with enrolled credentials.
struct Staff {
    name: &'static str,
    role: &'static str,
    id: UserId,
    password: &'static str,
    hash: String,
    totp: TotpSecret,
    last_step: Option<u64>,
    lockout: LockoutState,
}

/// A successful login.
struct Login {
    token: SessionToken,
    mfa: bool,
    /// The session's public id, for audit records.
    session_id: String,
}

/// The authentication side shared by every login.
struct Auth {
    hasher: PasswordHasher,
    totp: Totp,
    lockout: LockoutPolicy,
    sessions: SessionStore,
}

impl Auth {
    /// Password, then TOTP; audited either way. Returns the token and
    /// whether MFA was used, or `None` after an audited refusal.
    fn login(
        &self,
        audit: &Audit,
        staff: &mut Staff,
        typed: &str,
        address: &str,
        now: u64,
        rng: &dyn SecureRandom,
    ) -> Result<(Option<Login>, u64), TourError> {
        let subject = LoginSubject {
            user_id: staff.name,
            role: Some(staff.role),
            network_address: Some(address),
        };
        if let Err(carevox::authz::lockout::LockoutError::Locked { retry_after_secs }) =
            self.lockout.check(&staff.lockout, now)
        {
            let event = LoginEvent::LockedOut { retry_after_secs };
            let seq = audit.add(&login_record(&event, &subject, now, SOURCE))?;
            return Ok((None, seq));
        }
        let password = Password::new(typed).at("password")?;
        if self.hasher.verify(&password, &staff.hash).is_err() {
            let locked_until = self.lockout.record_failure(&mut staff.lockout, now);
            let event = LoginEvent::PasswordRefused { locked_until };
            let seq = audit.add(&login_record(&event, &subject, now, SOURCE))?;
            return Ok((None, seq));
        }
        let code = self.totp.generate(&staff.totp, now).at("totp")?;
        staff.last_step = Some(
            self.totp
                .verify(&staff.totp, &code, now, staff.last_step)
                .at("totp")?,
        );
        self.lockout.record_success(&mut staff.lockout);
        let (token, info) = self
            .sessions
            .create(
                rng,
                staff.name,
                &[AuthMethod::Password, AuthMethod::Totp],
                now,
            )
            .at("session")?;
        let session_id = info.id.to_string();
        let event = LoginEvent::LoggedIn { session: &info };
        let seq = audit.add(&login_record(&event, &subject, now, SOURCE))?;
        Ok((
            Some(Login {
                token,
                mfa: info.is_mfa(),
                session_id,
            }),
            seq,
        ))
    }
}

/// The simulated clock (seconds since the Unix epoch).
#[derive(Debug, Clone, Copy)]
struct Clock(u64);

impl Clock {
    fn advance(&mut self, secs: u64) -> u64 {
        self.0 = self.0.saturating_add(secs);
        self.0
    }
}

/// Creates the data directory with mode 0700 (a fresh random one under the
/// system's temporary directory by default). A directory that exists must
/// be empty: the tour never changes the mode of, or writes into, a
/// directory that holds anything else.
pub fn prepare_data_dir(dir: Option<&Path>, rng: &dyn SecureRandom) -> Result<PathBuf, TourError> {
    let path = match dir {
        Some(d) => {
            if d.exists() && fs::read_dir(d).at("data directory")?.next().is_some() {
                return unexpected(format!(
                    "{} exists and is not empty: give a new or empty directory",
                    d.display()
                ));
            }
            d.to_path_buf()
        }
        None => {
            let mut name = [0u8; 8];
            rng.fill(&mut name)
                .map_err(|_| TourError::Unexpected("no randomness".into()))?;
            let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
            std::env::temp_dir().join(format!("carevox-tour-{hex}"))
        }
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder.create(&path).at("data directory")?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).at("data directory")?;
    Ok(path)
}

/// Creates `path` with mode 0700 (inside the private data directory).
fn private_dir(path: &Path) -> Result<PathBuf, TourError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder.create(path).at("data directory")?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).at("data directory")?;
    Ok(path.to_path_buf())
}

/// Takes group and other permissions off everything below `dir`. The
/// libraries create their files with the process's umask; the 0700 data
/// directory already keeps others out, and this keeps the files private
/// even if the directory is later copied or its mode widened.
fn restrict_tree(dir: &Path) -> Result<(), TourError> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).at("data directory")? {
            let entry = entry.at("data directory")?;
            let meta = entry.metadata().at("data directory")?;
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            if mode & 0o077 != 0 {
                fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode & 0o700))
                    .at("data directory")?;
            }
        }
    }
    Ok(())
}

/// Runs the whole tour.
pub fn run(options: &Options) -> Result<Report, TourError> {
    let rng = SystemRandom::new();
    let data_dir = prepare_data_dir(options.data_dir.as_deref(), &rng)?;
    let mut clock = Clock(options.start);
    let mut stages = Vec::new();

    // ---- Stage 1: policy, audit log, logins ------------------------------------
    let t = Instant::now();
    let mut lines = Vec::new();
    let policy = Policy::from_toml(HOSPITAL_POLICY).at("policy")?;
    lines.push("loaded the sample hospital policy (carevox-authz HOSPITAL_POLICY)".to_string());

    let mut seed = Zeroizing::new([0u8; 32]);
    rng.fill(&mut seed[..])
        .map_err(|_| TourError::Unexpected("no randomness".into()))?;
    let signer = Signer::from_seed(&seed).at("audit signer")?;
    let public = signer.verifying_key();
    let audit_dir = private_dir(&data_dir.join("audit"))?;
    let (log, _) = AuditLog::open(&audit_dir, signer, LogConfig::default()).at("audit open")?;
    let audit = Arc::new(Audit {
        log,
        monitor: Mutex::new((Monitor::new(MonitorConfig::default()), Vec::new())),
    });

    let params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let auth = Auth {
        hasher: PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(params)).at("hasher")?,
        totp: Totp::default(),
        lockout: LockoutPolicy::default(),
        sessions: SessionStore::new(SessionPolicy::default()),
    };
    lines.push(
        "password hashes use low-cost Argon2id (64 KiB, 1 pass) for speed: production uses the default parameters"
            .to_string(),
    );
    let enrol = |name, role, id, password: &'static str| -> Result<Staff, TourError> {
        let hash = auth
            .hasher
            .hash(&Password::new(password).at("password")?, &rng)
            .at("hash")?;
        Ok(Staff {
            name,
            role,
            id: UserId(id),
            password,
            hash,
            totp: TotpSecret::generate(&rng, TotpAlgorithm::Sha1).at("totp")?,
            last_step: None,
            lockout: LockoutState::default(),
        })
    };
    let mut nurse = enrol("nurse.ana", "nurse", 1, "ward-7 evening tea")?;
    let mut physician = enrol("dr.lee", "physician", 2, "stethoscope on the desk")?;
    let mut receptionist = enrol("front.desk", "receptionist", 3, "front door bell")?;
    let mut on_call = enrol("dr.oncall", "on_call_physician", 4, "pager at midnight")?;
    let mut admin = enrol("admin.sam", "administrator", 5, "racks and cables")?;

    let (refused, failed_seq) = auth.login(
        &audit,
        &mut nurse,
        "ward-7 evening coffee",
        OFFICE_ADDRESS,
        clock.0,
        &rng,
    )?;
    if refused.is_some() {
        return unexpected("a wrong password was accepted");
    }
    lines.push(format!(
        "nurse.ana mistypes her password: refused, audited as record #{failed_seq}"
    ));
    let pw = nurse.password;
    let (nurse_login, nurse_seq) = auth.login(
        &audit,
        &mut nurse,
        pw,
        OFFICE_ADDRESS,
        clock.advance(5),
        &rng,
    )?;
    let Some(Login {
        token: nurse_token,
        mfa: nurse_mfa,
        session_id: nurse_session,
    }) = nurse_login
    else {
        return unexpected("the nurse's login failed");
    };
    lines.push(format!(
        "nurse.ana logs in with password + TOTP from {OFFICE_ADDRESS}: session opened (MFA: {nurse_mfa}), record #{nurse_seq}"
    ));
    let mut assignments = Assignments::new();
    let mut sessions = Vec::new();
    for staff in [&mut physician, &mut receptionist, &mut on_call, &mut admin] {
        let pw = staff.password;
        let (login, seq) = auth.login(&audit, staff, pw, OFFICE_ADDRESS, clock.advance(2), &rng)?;
        let Some(Login { mfa, .. }) = login else {
            return unexpected(format!("{} could not log in", staff.name));
        };
        let role = policy
            .role(staff.role)
            .ok_or_else(|| TourError::Unexpected(format!("role {} missing", staff.role)))?;
        assignments.assign(&policy, staff.id, role).at("rbac")?;
        let mut session = Session::new(staff.id, mfa, None);
        session.activate(&policy, &assignments, role).at("rbac")?;
        sessions.push(session);
        lines.push(format!(
            "{} ({}) logs in with password + TOTP, record #{seq}",
            staff.name, staff.role
        ));
    }
    let [physician_s, receptionist_s, on_call_s, admin_s]: [Session; 4] = sessions
        .try_into()
        .map_err(|_| TourError::Unexpected("four sessions".into()))?;
    stages.push(Stage {
        name: "1 login",
        elapsed: t.elapsed(),
        lines,
    });

    // ---- Stage 2: SIP and SDES ------------------------------------------------
    let t = Instant::now();
    let mut lines = Vec::new();
    // The caller offers one suite, checked by the facade to be one that
    // carevox-srtp keys before the key is drawn.
    let sdes_options = SdesOptions::new();
    let offer_crypto = offer_crypto(1, CryptoSuite::AesCm128HmacSha1_80, &rng).at("sdes offer")?;
    let offer_text = format!(
        "v=0\r\no=- 4711 1 IN IP4 {OFFICE_ADDRESS}\r\ns=-\r\nc=IN IP4 {OFFICE_ADDRESS}\r\nt=0 0\r\n\
         m=audio 40000 RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\na=crypto:{offer_crypto}\r\n"
    );
    // The offer must be valid SDP before it goes out.
    SessionDescription::parse(&offer_text).at("sdp offer")?;
    let call_id = format!("{:016x}@carevox-tour.invalid", {
        let mut b = [0u8; 8];
        rng.fill(&mut b)
            .map_err(|_| TourError::Unexpected("no randomness".into()))?;
        u64::from_be_bytes(b)
    });
    let invite = MessageBuilder::request("INVITE", "sip:ward7-desk@hospital.example")
        .at("invite")?
        .header("Via", "SIP/2.0/TLS 10.20.30.40:5061;branch=z9hG4bKtour1")
        .at("invite")?
        .header("Max-Forwards", "70")
        .at("invite")?
        .header(
            "From",
            "\"Nurse Ana\" <sip:nurse.ana@hospital.example>;tag=na1",
        )
        .at("invite")?
        .header("To", "<sip:ward7-desk@hospital.example>")
        .at("invite")?
        .header("Call-ID", &call_id)
        .at("invite")?
        .header("CSeq", "1 INVITE")
        .at("invite")?
        .header("Contact", "<sip:nurse.ana@10.20.30.40:5061;transport=tls>")
        .at("invite")?
        .body("application/sdp", Bytes::from(offer_text.into_bytes()))
        .at("invite")?
        .build()
        .at("invite")?;
    let invite_wire = invite.as_bytes().clone();
    lines.push(format!(
        "the nurse's phone sends an INVITE ({} bytes) with an SDP offer and an SDES a=crypto line",
        invite_wire.len()
    ));

    // The callee's side (the voicemail service, since nobody picks up).
    let received = Message::parse(invite_wire).at("callee parse")?;
    if validate(&received, &ValidationPolicy::default()).at("callee validate")? != Verdict::Accept {
        return unexpected("the INVITE is not for a user agent to process");
    }
    let offer = SessionDescription::parse_bytes(received.body()).at("callee sdp")?;
    // The facade answers and keys the callee's two SRTP contexts from the
    // same a=crypto lines it chose.
    let answered = answer_audio(
        &offer,
        &AudioCapabilities::new(vec![Codec::pcmu()]),
        &LocalMedia::new("10.20.99.5", 50000, "815"),
        &rng,
        &sdes_options,
    )
    .at("answer")?;
    let answer = answered.answer;
    let audio = answer
        .audio
        .ok_or_else(|| TourError::Unexpected("audio refused".into()))?;
    let sdes = audio
        .srtp
        .ok_or_else(|| TourError::Unexpected("no SDES in the answer".into()))?;
    let callee_srtp = answered
        .srtp
        .ok_or_else(|| TourError::Unexpected("no SRTP keys for the callee".into()))?;
    let ok = MessageBuilder::response_to(&received, 200, "OK")
        .at("200 OK")?
        .to_tag("vm815")
        .at("200 OK")?
        .header("Contact", "<sip:voicemail@10.20.99.5:5061;transport=tls>")
        .at("200 OK")?
        .body(
            "application/sdp",
            Bytes::from(answer.sdp.to_string().into_bytes()),
        )
        .at("200 OK")?
        .build()
        .at("200 OK")?;
    let callee_call_id = received.call_id().at("callee call-id")?.to_string();
    lines.push(format!(
        "the callee parses and validates it; nobody answers, so the voicemail service sends 200 OK with its own a=crypto ({})",
        sdes.suite
    ));

    // Back at the caller.
    let reply = Message::parse(ok.as_bytes().clone()).at("caller parse")?;
    if validate(&reply, &ValidationPolicy::default()).at("caller validate")? != Verdict::Accept {
        return unexpected("the answer is not for a user agent to process");
    }
    if reply.call_id().at("caller call-id")? != call_id || callee_call_id != call_id {
        return unexpected("Call-ID mismatch");
    }
    let answer_sdp = SessionDescription::parse_bytes(reply.body()).at("caller sdp")?;

    // Caller: the facade checks the answer's a=crypto against the offer and
    // keys both directions (sends with its own key, receives with the
    // answer's); the callee's contexts came with its answer (receives with
    // the offer's key as it parsed it, sends with its own).
    let caller_srtp = offerer_srtp(
        std::slice::from_ref(&offer_crypto),
        &answer_sdp,
        &sdes_options,
    )
    .at("caller srtp")?;
    if caller_srtp.suite != callee_srtp.suite {
        return unexpected("the two sides keyed different suites");
    }
    let suite = caller_srtp.suite.sdes_name().to_string();
    let (mut caller_out, mut caller_in) = (caller_srtp.outbound, caller_srtp.inbound);
    caller_out.add_outbound_stream(SSRC_CALLER).at("srtp")?;
    let (mut callee_out, mut callee_in) = (callee_srtp.outbound, callee_srtp.inbound);
    callee_out.add_outbound_stream(SSRC_CALLEE).at("srtp")?;
    lines.push(format!(
        "the caller parses and validates the 200 OK; both sides key SRTP ({suite}) in each direction from the SDES material"
    ));
    stages.push(Stage {
        name: "2 signalling",
        elapsed: t.elapsed(),
        lines,
    });

    // ---- Stage 3: SRTP media ---------------------------------------------------
    let t = Instant::now();
    let mut lines = Vec::new();
    let mut wire = Vec::with_capacity(256);
    let mut plain = Vec::with_capacity(256);
    let mut pcm: Vec<i16> = Vec::with_capacity(FRAMES * FRAME_BYTES);
    let (mut protected, mut unprotected) = (0usize, 0usize);
    let mut tampered_refused = false;
    let mut replay_refused = false;
    let mut previous: Vec<u8> = Vec::new();
    for i in 0..FRAMES {
        let packet = rtp_packet(i, SSRC_CALLER, |n| tone_sample(i * FRAME_BYTES + n));
        caller_out
            .protect_rtp_vec(&packet, &mut wire)
            .at("protect")?;
        protected += 1;
        if i == FRAMES / 2 {
            let mut tampered = wire.clone();
            if let Some(b) = tampered.get_mut(20) {
                *b ^= 0x01;
            }
            match callee_in.unprotect_rtp_vec(&tampered, &mut plain) {
                Err(carevox::srtp::Error::AuthenticationFailed { .. }) => tampered_refused = true,
                other => return unexpected(format!("tampered packet: {other:?}")),
            }
        }
        if i == FRAMES / 2 + 1 {
            match callee_in.unprotect_rtp_vec(&previous, &mut plain) {
                Err(carevox::srtp::Error::Replay { .. }) => replay_refused = true,
                other => return unexpected(format!("replayed packet: {other:?}")),
            }
        }
        callee_in
            .unprotect_rtp_vec(&wire, &mut plain)
            .at("unprotect")?;
        if plain != packet {
            return unexpected(format!("frame {i} decrypted to other bytes"));
        }
        unprotected += 1;
        pcm.extend(plain.iter().skip(12).map(|&b| ulaw_decode(b)));
        previous.clone_from(&wire);
    }
    lines.push(format!(
        "{protected} frames of 20 ms ({FRAME_BYTES}-byte PCMU payloads, 10 s of a 440 Hz tone) protected; {unprotected} authenticated and decrypted"
    ));
    lines.push(format!(
        "a packet with one flipped bit: refused (authentication failed: {tampered_refused})"
    ));
    lines.push(format!(
        "a packet sent again: refused (replay: {replay_refused})"
    ));
    // The voicemail service's greeting, the other way.
    let mut reverse = 0usize;
    for i in 0..10 {
        let packet = rtp_packet(i, SSRC_CALLEE, |n| tone_sample(n * 2));
        callee_out
            .protect_rtp_vec(&packet, &mut wire)
            .at("protect")?;
        caller_in
            .unprotect_rtp_vec(&wire, &mut plain)
            .at("unprotect")?;
        if plain == packet {
            reverse += 1;
        }
    }
    lines.push(format!(
        "the greeting back to the caller: {reverse} frames through the other direction's keys"
    ));
    stages.push(Stage {
        name: "3 media",
        elapsed: t.elapsed(),
        lines,
    });

    // ---- Stage 4: voicemail into the vault ------------------------------------
    let t = Instant::now();
    let mut lines = Vec::new();
    let key_path = data_dir.join("vault.key");
    let keys = LocalKeyFile::create(&key_path, &rng).at("vault key")?;
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).at("vault key")?;
    // Every vault operation reaches the audit log through the facade's hook.
    let hook = Arc::new(VaultAuditHook::new(
        Arc::clone(&audit),
        VaultAuditConfig::voicemail("carevox-vault"),
        vault_actor("voicemail-service", "system", clock.0, None),
    ));
    let backend = FsBackend::open(private_dir(&data_dir.join("vault"))?).at("vault")?;
    let vault = Vault::new(Arc::new(backend), Arc::new(keys)).with_hook(hook.clone());
    let wav = wav_file(&pcm);
    let voicemail_id = format!("vm-{}", call_id.split('@').next().unwrap_or("call"));
    let now = clock.advance(15);
    hook.set_actor(vault_actor("voicemail-service", "system", now, None));
    let meta = Metadata::new(&voicemail_id, "audio/wav", now, now + 6 * 365 * 86_400)
        .label("patient", PATIENT_REF)
        .label("call-id", &call_id);
    vault.put(&rng, meta, &wav).at("vault put")?;
    lines.push(format!(
        "the decoded audio becomes a {}-byte WAV (8 kHz, 16-bit mono), stored encrypted as {voicemail_id} with labels patient and call-id",
        wav.len()
    ));
    let (meta_back, wav_back) = vault.get(&voicemail_id).at("vault get")?;
    let voicemail_readable = wav_back == wav
        && meta_back.get_label("patient") == Some(PATIENT_REF)
        && meta_back.get_label("call-id") == Some(call_id.as_str());
    lines.push(format!(
        "read back for a check: identical with its labels: {voicemail_readable}"
    ));
    stages.push(Stage {
        name: "4 voicemail",
        elapsed: t.elapsed(),
        lines,
    });

    // ---- Stage 5: who may listen -------------------------------------------------
    let t = Instant::now();
    let mut lines = Vec::new();
    let listen = policy
        .action("listen")
        .ok_or_else(|| TourError::Unexpected("no listen action".into()))?;
    let voicemail_type = policy
        .resource_type("voicemail")
        .ok_or_else(|| TourError::Unexpected("no voicemail type".into()))?;
    let care_teams = [CARE_TEAM];
    let resource = Resource {
        kind: voicemail_type,
        owner: Some(PatientId::new(PATIENT)),
        care_teams: &care_teams,
        ephi: true,
        attributes: Attributes::NONE,
    };
    let no_teams: [TeamId; 0] = [];
    // One record per decision (the facade's access glue); the vault's hook
    // adds one per vault operation.
    let object = ObjectRef {
        kind: ObjectKind::Voicemail,
        id: voicemail_id.as_str().into(),
    };
    let decide = |staff: &Staff,
                  session: &Session,
                  teams: &[TeamId],
                  now: u64,
                  break_glass: Option<BreakGlass<'_>>|
     -> Result<(Access, bool, u64), TourError> {
        let request = Request {
            principal: session.principal(teams),
            action: listen,
            resource,
            attributes: Attributes::NONE,
            now,
            break_glass,
        };
        let d = policy.decide(&request);
        let record = access_record(
            &request,
            &d,
            &Subject {
                user_id: staff.name,
                role: Some(staff.role),
                network_address: Some(OFFICE_ADDRESS),
                auth: AuditAuth::PasswordMfa,
            },
            &Target {
                event: EventType::VoicemailAccess,
                action: Action::Read,
                patient: Some(Pii::new(PATIENT_REF)),
                object: Some(object.clone()),
                correlation_id: Some(&call_id),
            },
            SOURCE,
        );
        let seq = audit.add(&record)?;
        Ok((Access::from_decision(&d), d.review, seq))
    };

    let now = clock.advance(600);
    let (receptionist_access, _, seq) =
        decide(&receptionist, &receptionist_s, &no_teams, now, None)?;
    lines.push(format!(
        "front.desk (receptionist) asks to play it: {receptionist_access}; record #{seq}"
    ));

    let now = clock.advance(60);
    let (physician_access, _, access_record_seq) =
        decide(&physician, &physician_s, &care_teams, now, None)?;
    if !matches!(physician_access, Access::Permitted(_)) {
        return unexpected(format!("physician: {physician_access}"));
    }
    hook.set_actor(vault_actor(physician.name, physician.role, now, None));
    let (_, played) = vault.get(&voicemail_id).at("vault get")?;
    lines.push(format!(
        "dr.lee (physician, care team {}) plays it: {physician_access}; record #{access_record_seq}; {} bytes decrypted",
        CARE_TEAM.0,
        played.len()
    ));

    let now = clock.advance(1800);
    let reason =
        "patient unresponsive in the emergency department, message may hold medication history";
    let grant = BreakGlass {
        reason: Pii::new(reason),
        issued_at: now,
        expires_at: now + 30 * 60,
    };
    let (admin_access, _, seq) = decide(&admin, &admin_s, &no_teams, now, Some(grant))?;
    lines.push(format!(
        "admin.sam (administrator) tries to break the glass: {admin_access}; record #{seq} (the policy never lets administrators read ePHI)"
    ));
    let now = clock.advance(30);
    let grant = BreakGlass {
        reason: Pii::new(reason),
        issued_at: now,
        expires_at: now + 30 * 60,
    };
    let (on_call_access, review, seq) = decide(&on_call, &on_call_s, &no_teams, now, Some(grant))?;
    if matches!(on_call_access, Access::Permitted(_)) {
        hook.set_actor(vault_actor(
            on_call.name,
            on_call.role,
            now,
            Some(format!("break-glass decision record #{seq}")),
        ));
        vault
            .get_range(&voicemail_id, 0, 44)
            .at("vault get_range")?;
    }
    lines.push(format!(
        "dr.oncall (on-call physician, not on the care team) breaks the glass with a reason: {on_call_access}, review required: {review}; record #{seq}"
    ));

    // The nurse's session idles out.
    let now = clock.advance(16 * 60);
    let idle_logoff = matches!(
        auth.sessions.touch(&nurse_token, now),
        Err(SessionError::IdleTimeout)
    );
    let logoff = LoginEvent::LoggedOff {
        session_id: &nurse_session,
        reason: LogoffReason::IdleTimeout,
    };
    let nurse_subject = LoginSubject {
        user_id: nurse.name,
        role: Some(nurse.role),
        network_address: None,
    };
    let seq = audit.add(&login_record(&logoff, &nurse_subject, now, SOURCE))?;
    lines.push(format!(
        "nurse.ana's session, idle for 16 minutes, is logged off automatically: {idle_logoff}; record #{seq}"
    ));
    let (relogin, seq) =
        auth.login(&audit, &mut nurse, pw, NEW_ADDRESS, clock.advance(60), &rng)?;
    if relogin.is_none() {
        return unexpected("the nurse's second login failed");
    }
    lines.push(format!(
        "nurse.ana logs in again from {NEW_ADDRESS}, a network not seen for her; record #{seq}"
    ));
    stages.push(Stage {
        name: "5 access",
        elapsed: t.elapsed(),
        lines,
    });

    // ---- Stage 6: checkpoint, verification, inclusion proof --------------------
    let t = Instant::now();
    let mut lines = Vec::new();
    let written = hook.outcomes();
    if let Some(Err(e)) = written.iter().find(|w| w.is_err()) {
        return unexpected(format!("a vault event was not audited: {e}"));
    }
    let vault_events_audited = written.len();
    let checkpoint = audit
        .log
        .checkpoint(Timestamp(clock.advance(5) * 1000))
        .at("checkpoint")?;
    lines.push(format!(
        "signed checkpoint: {} records, root {}…",
        checkpoint.tree_size,
        carevox::audit::hex_encode(checkpoint.root.get(..8).unwrap_or_default())
    ));
    let verified = verify_log(&audit_dir, &public, VerifyOptions::default()).at("verify")?;
    let audit_verified = verified.damage.is_none() && verified.records == checkpoint.tree_size;
    lines.push(format!(
        "verify_log with the public key only: {} records, damage: {}",
        verified.records,
        if verified.damage.is_none() {
            "none"
        } else {
            "FOUND"
        }
    ));
    let public_hex = public.to_hex();
    fs::write(data_dir.join("audit.pub"), &public_hex).at("public key")?;
    lines.push(format!(
        "public key in audit.pub; offline check: carevox-audit verify {} --key {public_hex}",
        audit_dir.display()
    ));
    let proof = audit
        .log
        .inclusion_proof(access_record_seq, checkpoint.tree_size)
        .at("inclusion proof")?;
    let leaf = audit.log.leaf_hash(access_record_seq).at("leaf")?;
    let inclusion_verified = carevox::audit::merkle::verify_inclusion(
        access_record_seq,
        checkpoint.tree_size,
        &leaf,
        &proof,
        &checkpoint.root,
    )
    .is_ok();
    lines.push(format!(
        "dr.lee's access record #{access_record_seq} proven in the checkpointed tree with {} hashes: {inclusion_verified}",
        proof.len()
    ));
    let alerts = audit
        .monitor
        .lock()
        .map(|m| m.1.clone())
        .map_err(|_| TourError::Unexpected("monitor lock poisoned".into()))?;
    stages.push(Stage {
        name: "6 proof",
        elapsed: t.elapsed(),
        lines,
    });

    drop(vault);
    restrict_tree(&data_dir)?;

    Ok(Report {
        data_dir,
        stages,
        login_ok: nurse_mfa,
        failed_login_seq: Some(failed_seq),
        call_id,
        srtp_suite: suite,
        frames_protected: protected,
        frames_unprotected: unprotected,
        reverse_frames: reverse,
        tampered_refused,
        replay_refused,
        voicemail_id,
        voicemail_bytes: wav.len(),
        voicemail_readable,
        vault_events_audited,
        receptionist: receptionist_access,
        physician: physician_access,
        administrator_break_glass: admin_access,
        on_call_break_glass: on_call_access,
        break_glass_review: review,
        idle_logoff,
        alerts,
        audit_records: verified.records,
        audit_public_key: public_hex,
        audit_verified,
        inclusion_verified,
        access_record_seq,
        inclusion_proof_len: proof.len(),
    })
}

/// An RTP packet (PCMU, payload type 0) for frame `i`, its payload from
/// `sample(n)` for n in 0..160.
fn rtp_packet(i: usize, ssrc: u32, sample: impl Fn(usize) -> i16) -> Vec<u8> {
    let seq = u16::try_from(i % 65_536).unwrap_or(0);
    let ts = u32::try_from(i * FRAME_BYTES).unwrap_or(0);
    let mut p = Vec::with_capacity(12 + FRAME_BYTES);
    p.extend_from_slice(&[0x80, 0x00]);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..FRAME_BYTES).map(|n| ulaw_encode(sample(n))));
    p
}

/// A 440 Hz tone at 8 kHz, sample `n`.
fn tone_sample(n: usize) -> i16 {
    let phase = (n % 8000) as f64 * 440.0 * std::f64::consts::TAU / 8000.0;
    // |sin| <= 1, so the product stays within i16.
    #[allow(clippy::cast_possible_truncation)]
    let s = (phase.sin() * 8000.0) as i16;
    s
}

/// G.711 mu-law encoding (ITU-T G.711).
fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let s = i32::from(sample);
    let sign = if s < 0 { 0x80u8 } else { 0 };
    let magnitude = s.abs().min(CLIP) + BIAS;
    let exponent = (0..8u32)
        .rev()
        .find(|e| magnitude & (0x80 << e) != 0)
        .unwrap_or(0);
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    let code = u8::try_from((exponent << 4) | u32::try_from(mantissa).unwrap_or(0)).unwrap_or(0);
    !(sign | code)
}

/// G.711 mu-law decoding.
fn ulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let exponent = u32::from((b >> 4) & 0x07);
    let mantissa = i32::from(b & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let s = if b & 0x80 != 0 { -magnitude } else { magnitude };
    i16::try_from(s).unwrap_or(0)
}

/// A RIFF/WAVE file: PCM, mono, 8 kHz, 16 bits per sample.
pub fn wav_file(samples: &[i16]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).unwrap_or(u32::MAX);
    let mut w = Vec::with_capacity(44 + samples.len() * 2);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36u32.saturating_add(data_len)).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
    w.extend_from_slice(&16_000u32.to_le_bytes()); // byte rate
    w.extend_from_slice(&2u16.to_le_bytes()); // block align
    w.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        w.extend_from_slice(&s.to_le_bytes());
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_round_trip_is_close() {
        for s in [-32_000i16, -8000, -100, 0, 100, 8000, 32_000] {
            let back = ulaw_decode(ulaw_encode(s));
            assert!((i32::from(back) - i32::from(s)).abs() <= i32::from(s).abs() / 16 + 8);
        }
    }

    #[test]
    fn wav_header_is_44_bytes() {
        let w = wav_file(&[0, 1, -1]);
        assert_eq!(w.len(), 44 + 6);
        assert_eq!(w.get(..4), Some(&b"RIFF"[..]));
        assert_eq!(w.get(40..44), Some(&6u32.to_le_bytes()[..]));
    }
}
