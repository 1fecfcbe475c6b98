//! The control socket's server side: runs inside `serve`, which owns the
//! audit log and the vault, and answers the admin console.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use carevox::access::{Access, Subject, Target, access_record};
use carevox::audit::monitor::{Alert, LoginSubject as Counted, Monitor, MonitorConfig};
use carevox::audit::{
    Action, AuditLog, AuthMethod as AuditAuth, EventType, ObjectKind, ObjectRef, Outcome, Record,
    Timestamp, VerifyOptions, for_each_record, verify_log,
};
use carevox::audit_sink::{AuditSink, alert_kind, alert_seq};
use carevox::authz::lockout::{LockoutError, LockoutPolicy, LockoutTable};
use carevox::authz::login::{AuthMethod, SessionError, SessionPolicy, SessionStore, SessionToken};
use carevox::authz::password::{Password as LoginPassword, PasswordHasher};
use carevox::authz::totp::{Totp, TotpAlgorithm, TotpSecret};
use carevox::authz::{
    Assignments, Attributes, HOSPITAL_POLICY, PatientId, Policy, Request as AuthzRequest, Resource,
    Session, TeamId, UserId,
};
use carevox::login::{LoginEvent, LoginSubject, LogoffReason, login_record};
use carevox::redact::Pii;
use carevox::vault::{Metadata, Vault};
use carevox::vault_audit::{VaultActor, VaultAuditHook};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use super::accounts::{Account, Accounts, AccountsError, valid_name};
use super::proto::{
    AlertItem, CallRecordQuery, DATA_CHUNK, DEFAULT_CALL_RECORDS, ErrorKind, Frame, FrameError,
    MAX_CALL_RECORDS, MAX_FIELD, MAX_MAILBOXES, RecordingItem, Request, Response, SecretText,
    VoicemailItem, parse, read_frame, write_data, write_json,
};
use crate::cdr;
use crate::recording::{self, RECORDING_PREFIX};

/// What the PBX adds to carevox-authz's sample hospital policy: an
/// `account` resource that administrators manage with a second factor, and
/// the `phone_user` role of a user who called the voicemail number from
/// their own phone (digest) and entered their voicemail PIN, who may hear
/// and delete their own voicemail.
pub const ACCOUNT_POLICY: &str = r#"
[[roles]]
name = "phone_user"
description = "A PBX user at their own phone, digest-authenticated, past their voicemail PIN"

[[rules]]
id = "phone-own-voicemail"
effect = "permit"
description = "A user hears and deletes their own voicemail from their own phone, after their PIN"
roles = ["phone_user"]
resources = ["voicemail"]
actions = ["list", "listen", "delete"]
relation = "self"
mfa = true

[[resources]]
name = "account"
actions = ["add", "disable", "reset_totp"]

[[rules]]
id = "admin-accounts"
effect = "permit"
description = "Administrators add and disable console accounts and reset their TOTP, with a second factor"
roles = ["administrator"]
resources = ["account"]
actions = ["add", "disable", "reset_totp"]
mfa = true
"#;

/// The admin console's policy text ([`HOSPITAL_POLICY`] and
/// [`ACCOUNT_POLICY`]).
pub fn policy_text() -> String {
    format!("{HOSPITAL_POLICY}\n{ACCOUNT_POLICY}")
}

/// The care team standing for "the account serves this voicemail's
/// mailbox": the PBX resolves the membership from the account's mailboxes,
/// the policy decides with it (`relation = "care-team"`).
const MAILBOX_TEAM: TeamId = TeamId(1);
/// The policy's "patient" of a voicemail: its mailbox, as a number made
/// from the SHA-256 of the mailbox's name (the PBX knows no patient ids).
pub(crate) fn mailbox_owner(mailbox: &str) -> PatientId {
    PatientId::new(mailbox_number(mailbox))
}

/// The number standing for a mailbox (its SHA-256's first eight bytes):
/// the policy's patient of its voicemail, and the user id of its owner at
/// their phone.
pub(crate) fn mailbox_number(mailbox: &str) -> u64 {
    let d = ring::digest::digest(&ring::digest::SHA256, mailbox.as_bytes());
    let mut n = [0u8; 8];
    n.copy_from_slice(d.as_ref().get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(n)
}

/// Stored audio that the console lists, exports and deletes: voicemail
/// and call recordings, each a resource of its own in the policy, with an
/// audit event and object kind of its own.
struct Audio {
    /// The policy's resource.
    resource: &'static str,
    /// The policy's action of an export to a file.
    export: &'static str,
    /// The event of each decision's access record.
    event: EventType,
    /// The kind of object the access records name.
    object: ObjectKind,
    /// Whether a vault object may be one, from its id alone (before it is
    /// opened).
    may_be: fn(&str) -> bool,
    /// Whether a vault object, with its metadata, is one.
    is: fn(&str, &Metadata) -> bool,
    /// Whether it belongs to the caller's mailbox too, not only to the
    /// callee's.
    caller_too: bool,
    /// The answer to an id that names none.
    not_found: &'static str,
}

/// Voicemail: it belongs to the callee's mailbox; an export is the
/// policy's `listen` (the hospital policy has no `export` for voicemail).
static VOICEMAIL: Audio = Audio {
    resource: "voicemail",
    export: "listen",
    event: EventType::VoicemailAccess,
    object: ObjectKind::Voicemail,
    may_be: may_be_voicemail,
    is: is_voicemail,
    caller_too: false,
    not_found: "no such voicemail",
};

/// Call recordings: a recording belongs to both parties' mailboxes; an
/// export is the policy's `export` (a distinct action: the hospital
/// policy allows it during day hours only).
static RECORDING: Audio = Audio {
    resource: "recording",
    export: "export",
    event: EventType::RecordingAccess,
    object: ObjectKind::Recording,
    may_be: may_be_recording,
    is: recording::is_recording,
    caller_too: true,
    not_found: "no such recording",
};

impl Audio {
    /// The access record's reference to object `id`.
    fn object(&self, id: &str) -> ObjectRef {
        ObjectRef {
            kind: self.object.clone(),
            id: Pii::new(id.to_owned()),
        }
    }

    /// The mailbox an object with `meta` is decided on, and whether the
    /// session serves it ([`Shared::party_of`] of its parties).
    fn party(&self, l: &Login, meta: &Metadata) -> (String, bool) {
        let callee = meta.get_label("callee").unwrap_or("");
        let caller = if self.caller_too {
            meta.get_label("caller").unwrap_or("")
        } else {
            ""
        };
        Shared::party_of(l, callee, caller)
    }
}

/// Whether the vault object `id` may be a voicemail, before it is opened
/// (batches of call detail records, held text messages and call
/// recordings are not).
fn may_be_voicemail(id: &str) -> bool {
    !id.starts_with(cdr::CDR_ID_PREFIX)
        && !id.starts_with(crate::server::TEXT_PREFIX)
        && !id.starts_with(RECORDING_PREFIX)
}

/// Whether the object is a voicemail: not named as another kind, and no
/// kind label, or `voicemail`.
fn is_voicemail(id: &str, meta: &Metadata) -> bool {
    may_be_voicemail(id)
        && meta
            .get_label(cdr::KIND_LABEL)
            .is_none_or(|k| k == "voicemail")
}

/// Whether the vault object `id` may be a call recording, before it is
/// opened.
fn may_be_recording(id: &str) -> bool {
    id.starts_with(RECORDING_PREFIX)
}

/// An object of a listing that the policy let the session list.
struct Listed {
    /// The vault object id.
    id: String,
    /// Its metadata.
    meta: Metadata,
    /// Its length in bytes: one a sample, 8000 samples a second.
    len: u64,
}

impl Listed {
    /// Its length in milliseconds.
    fn duration_ms(&self) -> u64 {
        self.len.saturating_mul(1000) / 8000
    }

    /// The label `name` (a party), empty when missing.
    fn label(&self, name: &str) -> Pii<String> {
        Pii::new(self.meta.get_label(name).unwrap_or("").to_owned())
    }
}

/// How long a connection may stay without logging in.
const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// How long the accept loop naps when nobody connects.
const ACCEPT_NAP: Duration = Duration::from_millis(50);
/// The issuer in the TOTP provisioning URIs.
const ISSUER: &str = "carevox-pbx";

/// The clock of the control server: seconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The control server's settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ControlSettings {
    /// The socket's path.
    pub socket: PathBuf,
    /// The accounts file.
    pub accounts: PathBuf,
    /// Automatic logoff after this long idle (`[admin] idle_logoff_secs`).
    pub idle_logoff: Duration,
    /// The longest session (`[admin] session_lifetime_secs`).
    pub session_lifetime: Duration,
    /// Lockout after failed logins (the `[lockout]` policy).
    pub lockout: LockoutPolicy,
    /// The password hasher of new and changed passwords.
    pub hasher: PasswordHasher,
    /// The most connections served at once.
    pub max_connections: usize,
    /// The audit records' source id.
    pub source: String,
    /// The monitoring rules `audit alerts` runs over the log (the
    /// server's own, from `[audit]`).
    pub monitor: MonitorConfig,
}

impl ControlSettings {
    /// The settings of `config`: `<data_dir>/admin.sock`,
    /// `<data_dir>/admin/accounts.toml`, Argon2id with OWASP's parameters.
    pub fn from_config(config: &crate::config::Config) -> ControlSettings {
        let root = &config.server.data_dir;
        ControlSettings {
            socket: socket_path(config),
            accounts: root.join("admin").join("accounts.toml"),
            idle_logoff: Duration::from_secs(config.admin.idle_logoff_secs),
            session_lifetime: Duration::from_secs(config.admin.session_lifetime_secs),
            lockout: config.lockout.policy(),
            hasher: PasswordHasher::default(),
            max_connections: 8,
            source: "carevox-pbx".to_owned(),
            monitor: config.audit.monitor_config(),
        }
    }
}

/// The control socket of `config`: `<data_dir>/admin.sock`.
pub fn socket_path(config: &crate::config::Config) -> PathBuf {
    config.server.data_dir.join("admin.sock")
}

/// What the control server acts on.
pub struct ControlParts {
    /// The audit log (owned by this process).
    pub audit: Arc<AuditLog>,
    /// The voicemail vault whose hook names the admin acting.
    pub vault: Arc<Vault>,
    /// That vault's audit hook.
    pub vault_hook: Arc<VaultAuditHook<dyn AuditSink>>,
    /// Where the console's own records go (the monitored sink).
    pub sink: Arc<dyn AuditSink>,
    /// Where the accounts' TOTP secrets are kept.
    pub secrets: Arc<Vault>,
    /// The random source.
    pub rng: Arc<dyn SecureRandom + Send + Sync>,
    /// The clock (injected by tests).
    pub clock: Clock,
}

impl std::fmt::Debug for ControlParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlParts").finish_non_exhaustive()
    }
}

impl ControlParts {
    /// The parts of an opened data directory, with the system clock.
    pub fn from_store(
        store: &crate::store::Store,
        rng: Arc<dyn SecureRandom + Send + Sync>,
    ) -> ControlParts {
        ControlParts {
            audit: store.audit.clone(),
            vault: store.admin_vault.clone(),
            vault_hook: store.admin_vault_hook.clone(),
            sink: store.sink.clone(),
            secrets: store.admin_secrets.clone(),
            rng,
            clock: Arc::new(|| {
                #[allow(clippy::disallowed_methods)] // the server's clock
                let now = std::time::SystemTime::now();
                now.duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            }),
        }
    }
}

/// Why the control server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Another server answers on the socket.
    #[error("{0} is in use by a running server")]
    InUse(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket: refusing to replace it")]
    NotASocket(PathBuf),
    /// A file could not be read or written.
    #[error("{what} ({path}): {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The accounts file is not valid.
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    /// The policy did not load.
    #[error("policy: {0}")]
    Policy(String),
    /// The data directory could not be made private.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// The running control server. Dropping it without
/// [`ControlServer::shutdown`] stops it but leaves the socket file; the
/// next start removes it as stale.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Binds the socket (mode 0600, in a directory of mode 0700) and serves
    /// it on a thread of its own, a thread per connection.
    pub fn start(
        settings: ControlSettings,
        parts: ControlParts,
    ) -> Result<ControlServer, ControlError> {
        let path = settings.socket.clone();
        let io_err = |what: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| ControlError::Io { what, path, source }
        };
        if let Some(parent) = path.parent() {
            crate::store::private_dir(parent)?;
        }
        if let Some(parent) = settings.accounts.parent() {
            crate::store::private_dir(parent)?;
        }
        let policy =
            Policy::from_toml(&policy_text()).map_err(|e| ControlError::Policy(e.to_string()))?;
        let accounts = Accounts::load(&settings.accounts)?;
        clear_stale(&path)?;
        let listener = UnixListener::bind(&path).map_err(io_err("bind control socket", &path))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("control socket", &path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(io_err("narrow control socket", &path))?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            sessions: SessionStore::new(SessionPolicy {
                idle_timeout: settings.idle_logoff,
                absolute_lifetime: settings.session_lifetime,
                ..SessionPolicy::default()
            }),
            lockout: Mutex::new(LockoutTable::new(settings.lockout, 10_000)),
            accounts: Mutex::new(accounts),
            vault_lock: Mutex::new(()),
            active: AtomicUsize::new(0),
            policy,
            totp: Totp::default(),
            settings,
            parts,
        });
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("admin-control".into())
            .spawn(move || accept_loop(&listener, &shared, &flag))
            .map_err(io_err("start control thread", &path))?;
        Ok(ControlServer {
            path,
            stop,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, and removes the socket file. Connections being
    /// served end at their next read.
    pub fn shutdown(mut self) {
        self.stop_accepting();
        let _ = fs::remove_file(&self.path);
    }

    fn stop_accepting(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = t.join();
        }
    }
}

impl Drop for ControlServer {
    /// Stops accepting; the socket file stays, as after a crash, and the
    /// next start removes it as stale.
    fn drop(&mut self) {
        self.stop_accepting();
    }
}

/// Removes a socket nobody answers on; refuses a live one and anything
/// that is not a socket.
fn clear_stale(path: &Path) -> Result<(), ControlError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ControlError::Io {
            what: "inspect control socket",
            path: path.to_owned(),
            source,
        }),
        Ok(m) if !m.file_type().is_socket() => Err(ControlError::NotASocket(path.to_owned())),
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => Err(ControlError::InUse(path.to_owned())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => fs::remove_file(path)
                .map_err(|source| ControlError::Io {
                    what: "remove stale control socket",
                    path: path.to_owned(),
                    source,
                }),
            Err(source) => Err(ControlError::Io {
                what: "probe control socket",
                path: path.to_owned(),
                source,
            }),
        },
    }
}

struct Shared {
    settings: ControlSettings,
    parts: ControlParts,
    policy: Policy,
    totp: Totp,
    sessions: SessionStore,
    lockout: Mutex<LockoutTable<String>>,
    accounts: Mutex<Accounts>,
    /// Held from setting the admin vault hook's actor to the end of the
    /// vault call, so that each record names who acted.
    vault_lock: Mutex<()>,
    active: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>, stop: &AtomicBool) {
    // Non-blocking with a short nap: a stop is seen within the nap, even
    // when the socket file has gone and nobody can connect to wake it.
    while !stop.load(Ordering::SeqCst) {
        let mut stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_NAP);
                continue;
            }
            Err(_) => {
                std::thread::sleep(ACCEPT_NAP);
                continue;
            }
        };
        if stream.set_nonblocking(false).is_err() {
            continue;
        }
        if shared.active.load(Ordering::SeqCst) >= shared.settings.max_connections {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = write_json(
                &mut stream,
                &error(ErrorKind::Busy, "too many admin connections"),
            );
            continue;
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        let conn_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("admin-conn".into())
            .spawn(move || {
                serve_connection(&conn_shared, stream);
                conn_shared.active.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("admin console: could not start a connection thread");
        }
    }
}

fn error(kind: ErrorKind, message: &str) -> Response {
    Response::Error {
        kind,
        message: message.to_owned(),
    }
}

/// A logged-in connection.
struct Login {
    token: SessionToken,
    session_id: String,
    name: String,
    role: String,
    session: Session,
    mailboxes: Vec<String>,
}

enum Next {
    Continue,
    Close,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn serve_connection(shared: &Shared, mut stream: UnixStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    let mut login: Option<Login> = None;
    loop {
        let wait = if login.is_some() {
            shared.settings.idle_logoff
        } else {
            LOGIN_WINDOW
        };
        let _ = stream.set_read_timeout(Some(wait));
        let frame = match read_frame(&mut stream) {
            Ok(f) => f,
            Err(FrameError::Closed) => break,
            Err(FrameError::Io(e)) if is_timeout(&e) => {
                if let Some(l) = login.take() {
                    shared.end(&l, LogoffReason::IdleTimeout);
                    let _ = write_json(
                        &mut stream,
                        &error(ErrorKind::LoggedOff, "logged off after the idle time"),
                    );
                }
                break;
            }
            Err(e) => {
                let _ = write_json(&mut stream, &error(ErrorKind::BadFrame, &e.to_string()));
                break;
            }
        };
        let Frame::Json(body) = frame else {
            let _ = write_json(
                &mut stream,
                &error(ErrorKind::BadRequest, "a data frame from a client"),
            );
            break;
        };
        let request: Request = match parse(body) {
            Ok(r) => r,
            Err(m) => {
                let _ = write_json(&mut stream, &error(ErrorKind::BadRequest, &m));
                break;
            }
        };
        match shared.handle(&mut login, request, &mut stream) {
            Ok(Next::Continue) => {}
            Ok(Next::Close) | Err(_) => break,
        }
    }
    if let Some(l) = login.take() {
        // The client went away without logging off.
        shared.end(&l, LogoffReason::Requested);
    }
}

fn check_field(value: &str, what: &str) -> Result<(), Response> {
    if value.is_empty() || value.len() > MAX_FIELD || value.chars().any(char::is_control) {
        return Err(error(
            ErrorKind::Invalid,
            &format!("{what} is empty, too long or holds a control character"),
        ));
    }
    Ok(())
}

impl Shared {
    fn now(&self) -> u64 {
        (self.parts.clock)()
    }

    fn append(&self, record: &Record) -> Result<(), Response> {
        self.parts.sink.append(record).map(|_| ()).map_err(|e| {
            tracing::warn!("admin console: audit append failed: {e}");
            error(ErrorKind::Internal, "the audit log could not be written")
        })
    }

    fn login_audit(
        &self,
        event: &LoginEvent<'_>,
        name: &str,
        role: Option<&str>,
    ) -> Result<(), Response> {
        let subject = LoginSubject {
            user_id: name,
            role,
            network_address: Some("local"),
        };
        self.append(&login_record(
            event,
            &subject,
            self.now(),
            &self.settings.source,
        ))
    }

    fn end(&self, l: &Login, reason: LogoffReason) {
        self.sessions.logoff(&l.token);
        let _ = self.login_audit(
            &LoginEvent::LoggedOff {
                session_id: &l.session_id,
                reason,
            },
            &l.name,
            Some(&l.role),
        );
    }

    fn handle(
        &self,
        login: &mut Option<Login>,
        request: Request,
        out: &mut UnixStream,
    ) -> io::Result<Next> {
        let Some(l) = login.as_ref() else {
            return match request {
                Request::Login {
                    name,
                    password,
                    totp,
                } => match self.login(&name, &password, &totp) {
                    Ok(new) => {
                        write_json(
                            out,
                            &Response::LoggedIn {
                                role: new.role.clone(),
                                idle_logoff_secs: self.settings.idle_logoff.as_secs(),
                            },
                        )?;
                        *login = Some(new);
                        Ok(Next::Continue)
                    }
                    Err(r) => {
                        write_json(out, &r)?;
                        Ok(Next::Close)
                    }
                },
                Request::EnrolFirst {
                    name,
                    role,
                    password,
                    mailboxes,
                } => {
                    let r = self
                        .enrol_first(&name, &role, &password, mailboxes)
                        .unwrap_or_else(|e| e);
                    write_json(out, &r)?;
                    Ok(Next::Close)
                }
                _ => {
                    write_json(out, &error(ErrorKind::NotLoggedIn, "log in first"))?;
                    Ok(Next::Close)
                }
            };
        };
        // Every command first keeps the session alive, or finds it ended.
        let now = self.now();
        if let Err(e) = self.sessions.touch(&l.token, now) {
            let reason = match e {
                SessionError::IdleTimeout => Some(LogoffReason::IdleTimeout),
                SessionError::LifetimeExceeded => Some(LogoffReason::LifetimeExceeded),
                _ => None,
            };
            if let (Some(reason), Some(l)) = (reason, login.take()) {
                let _ = self.login_audit(
                    &LoginEvent::LoggedOff {
                        session_id: &l.session_id,
                        reason,
                    },
                    &l.name,
                    Some(&l.role),
                );
            }
            *login = None;
            write_json(
                out,
                &error(ErrorKind::LoggedOff, &format!("the session ended: {e}")),
            )?;
            return Ok(Next::Close);
        }
        let r = match request {
            Request::Login { .. } | Request::EnrolFirst { .. } => {
                Err(error(ErrorKind::BadRequest, "already logged in"))
            }
            Request::Logoff => {
                if let Some(l) = login.take() {
                    self.end(&l, LogoffReason::Requested);
                }
                write_json(out, &Response::LoggedOff)?;
                return Ok(Next::Close);
            }
            Request::VoicemailList => self.voicemail_list(l),
            Request::VoicemailExport { id } => {
                let r = self.audio_export(l, &VOICEMAIL, &id, out);
                return Self::streamed(out, r);
            }
            Request::VoicemailDelete { id } => self.audio_delete(l, &VOICEMAIL, &id),
            Request::RecordingList => self.recording_list(l),
            Request::RecordingExport { id } => {
                let r = self.audio_export(l, &RECORDING, &id, out);
                return Self::streamed(out, r);
            }
            Request::RecordingDelete { id } => self.audio_delete(l, &RECORDING, &id),
            Request::CallRecords(query) => self.call_records(l, &query),
            Request::AuditVerify => self.audit_verify(l),
            Request::AuditAlerts { since } => self.audit_alerts(l, since),
            Request::AuditExport => {
                let r = self.audit_export(l, out);
                return Self::streamed(out, r);
            }
            Request::UserAdd {
                name,
                role,
                password,
                mailboxes,
            } => self.user_add(l, &name, &role, &password, mailboxes),
            Request::UserDisable { name } => self.user_disable(l, &name),
            Request::TotpReset { name } => self.totp_reset(l, &name),
        };
        write_json(out, &r.unwrap_or_else(|e| e))?;
        Ok(Next::Continue)
    }

    /// The end of a streamed export: the next request once it is sent,
    /// its refusal written when it was refused before a byte went out.
    fn streamed(out: &mut UnixStream, r: io::Result<Result<(), Response>>) -> io::Result<Next> {
        if let Err(refused) = r? {
            write_json(out, &refused)?;
        }
        Ok(Next::Continue)
    }

    // ---- login -----------------------------------------------------------

    fn login(
        &self,
        name: &str,
        password: &SecretText,
        code: &SecretText,
    ) -> Result<Login, Response> {
        let refused = || error(ErrorKind::LoginRefused, "login refused");
        check_field(name, "the name")?;
        let now = self.now();
        let key = name.to_ascii_lowercase();
        let audit_name = if valid_name(name) {
            name
        } else {
            "<invalid name>"
        };
        if let Err(LockoutError::Locked { retry_after_secs }) = lock(&self.lockout).check(&key, now)
        {
            self.login_audit(
                &LoginEvent::LockedOut { retry_after_secs },
                audit_name,
                None,
            )?;
            return Err(error(
                ErrorKind::LockedOut,
                &format!("too many failed logins; try again in {retry_after_secs} s"),
            ));
        }
        let account = lock(&self.accounts).get(name).cloned();
        let fail = |event: fn(Option<u64>) -> LoginEvent<'static>, role: Option<&str>| {
            let until = lock(&self.lockout).record_failure(&key, now);
            self.login_audit(&event(until), audit_name, role)?;
            Err::<Login, Response>(refused())
        };
        let pw = LoginPassword::new(password.expose()).map_err(|_| refused());
        let pw = match pw {
            Ok(p) => p,
            Err(r) => {
                let _ = fail(|u| LoginEvent::PasswordRefused { locked_until: u }, None);
                return Err(r);
            }
        };
        let Some(account) = account else {
            let _ = self.settings.hasher.dummy_verify(&pw);
            return fail(|u| LoginEvent::PasswordRefused { locked_until: u }, None);
        };
        let role = Some(account.role.as_str());
        let password_ok = self
            .settings
            .hasher
            .verify(&pw, &account.password_hash)
            .is_ok();
        if password_ok && account.disabled {
            let until = lock(&self.lockout).record_failure(&key, now);
            let mut r = login_record(
                &LoginEvent::PasswordRefused {
                    locked_until: until,
                },
                &LoginSubject {
                    user_id: audit_name,
                    role,
                    network_address: Some("local"),
                },
                now,
                &self.settings.source,
            );
            r.details.push(carevox::audit::Detail {
                key: "account".into(),
                value: Pii::new("disabled".to_owned()),
            });
            self.append(&r)?;
            return Err(refused());
        }
        if !password_ok {
            return fail(|u| LoginEvent::PasswordRefused { locked_until: u }, role);
        }
        let secret = self.totp_secret(&account)?;
        let step = match self
            .totp
            .verify(&secret, code.expose(), now, account.totp_last_step)
        {
            Ok(step) => step,
            Err(_) => {
                return fail(
                    |u| LoginEvent::SecondFactorRefused {
                        method: AuthMethod::Totp,
                        locked_until: u,
                    },
                    role,
                );
            }
        };
        lock(&self.lockout).record_success(&key);
        lock(&self.accounts)
            .update(&account.name, |a| a.totp_last_step = Some(step))
            .map_err(|e| internal("accounts", &e))?;
        let (token, info) = self
            .sessions
            .create(
                &*self.parts.rng,
                &account.name,
                &[AuthMethod::Password, AuthMethod::Totp],
                now,
            )
            .map_err(|e| internal("session", &e))?;
        let role_id = self.policy.role(&account.role).ok_or_else(|| {
            error(
                ErrorKind::Internal,
                "the account's role is not in the policy",
            )
        })?;
        let mut assignments = Assignments::new();
        let user = UserId(account.id);
        assignments
            .assign(&self.policy, user, role_id)
            .map_err(|e| internal("roles", &e))?;
        let mut session = Session::new(user, info.is_mfa(), None);
        session
            .activate(&self.policy, &assignments, role_id)
            .map_err(|e| internal("roles", &e))?;
        self.login_audit(
            &LoginEvent::LoggedIn { session: &info },
            &account.name,
            role,
        )?;
        Ok(Login {
            token,
            session_id: info.id.to_string(),
            name: account.name.clone(),
            role: account.role.clone(),
            session,
            mailboxes: account.mailboxes.clone(),
        })
    }

    fn totp_secret(&self, account: &Account) -> Result<TotpSecret, Response> {
        let (_, bytes) = self
            .parts
            .secrets
            .get(&account.totp_object)
            .map_err(|e| internal("TOTP secret", &e))?;
        let bytes = Zeroizing::new(bytes);
        TotpSecret::from_bytes(&bytes).map_err(|e| internal("TOTP secret", &e))
    }

    /// A fresh TOTP secret, stored; returns its object id and URI.
    fn new_totp(&self, name: &str) -> Result<(String, SecretText), Response> {
        let secret = TotpSecret::generate(&*self.parts.rng, TotpAlgorithm::Sha1)
            .map_err(|e| internal("TOTP secret", &e))?;
        let mut token = [0u8; 12];
        self.parts
            .rng
            .fill(&mut token)
            .map_err(|_| error(ErrorKind::Internal, "the random source failed"))?;
        let id = format!("totp-{}", data_encoding::HEXLOWER.encode(&token));
        let now = self.now();
        self.parts
            .secrets
            .put(
                &*self.parts.rng,
                Metadata::new(id.clone(), "application/octet-stream", now, u64::MAX),
                secret.expose(),
            )
            .map_err(|e| internal("TOTP secret", &e))?;
        let uri = self
            .totp
            .provisioning_uri(&secret, ISSUER, name)
            .map_err(|e| internal("TOTP URI", &e))?;
        Ok((id, SecretText::new(uri.to_string())))
    }

    fn new_account(
        &self,
        name: &str,
        role: &str,
        password: &SecretText,
        mailboxes: Vec<String>,
    ) -> Result<(Account, SecretText), Response> {
        if !valid_name(name) {
            return Err(error(
                ErrorKind::Invalid,
                "a name is 1 to 64 of A-Z a-z 0-9 . _ -",
            ));
        }
        if self.policy.role(role).is_none() {
            return Err(error(ErrorKind::Invalid, "no such role in the policy"));
        }
        if mailboxes.len() > MAX_MAILBOXES || mailboxes.iter().any(|m| !valid_name(m)) {
            return Err(error(ErrorKind::Invalid, "a mailbox name is not valid"));
        }
        let pw = LoginPassword::new(password.expose())
            .map_err(|e| error(ErrorKind::Invalid, &e.to_string()))?;
        if password.expose().chars().count() < 12 {
            return Err(error(
                ErrorKind::Invalid,
                "a password has at least 12 characters",
            ));
        }
        let hash = self
            .settings
            .hasher
            .hash(&pw, &*self.parts.rng)
            .map_err(|e| internal("password hash", &e))?;
        let (totp_object, uri) = self.new_totp(name)?;
        let id = lock(&self.accounts).next_id();
        Ok((
            Account {
                name: name.to_owned(),
                id,
                role: role.to_owned(),
                mailboxes,
                password_hash: hash.to_string(),
                totp_object,
                totp_last_step: None,
                disabled: false,
                created_at: self.now(),
            },
            uri,
        ))
    }

    fn enrol_first(
        &self,
        name: &str,
        role: &str,
        password: &SecretText,
        mailboxes: Vec<String>,
    ) -> Result<Response, Response> {
        let record = |outcome: Outcome, why: &str| {
            let mut r = Record::new(
                EventType::PermissionChange,
                Action::Create,
                outcome,
                Timestamp(self.now().saturating_mul(1000)),
                "local-enrolment",
                self.settings.source.as_str(),
            );
            r.entity.object = Some(ObjectRef {
                kind: ObjectKind::Account,
                id: Pii::new(
                    if valid_name(name) {
                        name
                    } else {
                        "<invalid name>"
                    }
                    .to_owned(),
                ),
            });
            r.details.push(carevox::audit::Detail {
                key: "result".into(),
                value: Pii::new(why.to_owned()),
            });
            r
        };
        if !lock(&self.accounts).is_empty() {
            self.append(&record(
                Outcome::MinorFailure,
                "enrolment closed: an account exists",
            ))?;
            return Err(error(
                ErrorKind::Conflict,
                "enrolment is closed: an account exists; ask an administrator",
            ));
        }
        let (account, uri) = self.new_account(name, role, password, mailboxes)?;
        let mut accounts = lock(&self.accounts);
        if !accounts.is_empty() {
            drop(accounts);
            let _ = self.parts.secrets.shred(&account.totp_object);
            self.append(&record(
                Outcome::MinorFailure,
                "enrolment closed: an account exists",
            ))?;
            return Err(error(ErrorKind::Conflict, "enrolment is closed"));
        }
        accounts
            .add(account)
            .map_err(|e| internal("accounts", &e))?;
        drop(accounts);
        self.append(&record(
            Outcome::Success,
            &format!("first account, role {role}"),
        ))?;
        Ok(Response::Enrolled { otpauth_uri: uri })
    }

    // ---- decisions ---------------------------------------------------------

    /// Decides `action` on a `resource` for the session, audits the
    /// decision, and returns it.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        l: &Login,
        resource: &str,
        action: &str,
        mailbox: Option<&str>,
        in_mailbox: bool,
        ephi: bool,
        event: EventType,
        audit_action: Action,
        object: Option<ObjectRef>,
    ) -> Result<Access, Response> {
        let (Some(kind), Some(act)) = (
            self.policy.resource_type(resource),
            self.policy.action(action),
        ) else {
            return Err(error(
                ErrorKind::Internal,
                "the policy lacks the resource or action",
            ));
        };
        let mine = [MAILBOX_TEAM];
        let teams: &[TeamId] = if in_mailbox { &mine } else { &[] };
        let owner = mailbox.map(mailbox_owner);
        let request = AuthzRequest {
            principal: l.session.principal(teams),
            action: act,
            resource: Resource {
                kind,
                owner,
                care_teams: &[MAILBOX_TEAM],
                ephi,
                attributes: Attributes::NONE,
            },
            attributes: Attributes::NONE,
            now: self.now(),
            break_glass: None,
        };
        let decision = self.policy.decide(&request);
        let record = access_record(
            &request,
            &decision,
            &Subject {
                user_id: &l.name,
                role: Some(&l.role),
                network_address: Some("local"),
                auth: AuditAuth::PasswordMfa,
            },
            &Target {
                event,
                action: audit_action,
                patient: None,
                object,
                correlation_id: Some(&l.session_id),
            },
            &self.settings.source,
        );
        self.append(&record)?;
        Ok(Access::from_decision(&decision))
    }

    fn denied(access: &Access) -> Response {
        error(ErrorKind::Denied, &access.to_string())
    }

    /// Runs `f` on the admin vault with its hook naming the session.
    fn as_admin<T>(&self, l: &Login, f: impl FnOnce(&Vault) -> T) -> T {
        let _g = lock(&self.vault_lock);
        let mut actor = VaultActor::new(
            &l.name,
            AuditAuth::PasswordMfa,
            Timestamp(self.now().saturating_mul(1000)),
        );
        actor.role = Some(l.role.clone());
        self.parts.vault_hook.set_actor(actor);
        f(&self.parts.vault)
    }

    // ---- voicemail and call recordings -------------------------------------

    /// The objects of `audio` the policy lets the session list, oldest
    /// first, and how many it withheld: one decision (and one access
    /// record) per object.
    fn audio_list(&self, l: &Login, audio: &Audio) -> Result<(Vec<Listed>, u64), Response> {
        let objects = self.parts.vault.list().map_err(|e| internal("vault", &e))?;
        let mut items = Vec::new();
        let mut withheld = 0u64;
        for o in objects {
            if !(audio.may_be)(&o.id) {
                continue;
            }
            let opened = self.as_admin(l, |v| v.open(&o.id));
            let Ok(reader) = opened else {
                // Shredded, or damaged: the hook audited the failure.
                continue;
            };
            let meta = reader.metadata().clone();
            if !(audio.is)(&o.id, &meta) {
                continue;
            }
            let (party, mine) = audio.party(l, &meta);
            let access = self.decide(
                l,
                audio.resource,
                "list",
                Some(party.as_str()),
                mine,
                true,
                audio.event.clone(),
                Action::Read,
                Some(audio.object(&o.id)),
            )?;
            if access.is_allowed() {
                items.push(Listed {
                    len: reader.len(),
                    id: o.id,
                    meta,
                });
            } else {
                withheld += 1;
            }
        }
        items.sort_by(|a, b| (a.meta.created_at, &a.id).cmp(&(b.meta.created_at, &b.id)));
        Ok((items, withheld))
    }

    fn voicemail_list(&self, l: &Login) -> Result<Response, Response> {
        let (listed, withheld) = self.audio_list(l, &VOICEMAIL)?;
        let items = listed
            .into_iter()
            .map(|v| VoicemailItem {
                owner: v.label("callee"),
                created_at: v.meta.created_at,
                duration_ms: v.duration_ms(),
                id: v.id,
            })
            .collect();
        Ok(Response::Voicemails { items, withheld })
    }

    fn recording_list(&self, l: &Login) -> Result<Response, Response> {
        let (listed, withheld) = self.audio_list(l, &RECORDING)?;
        let items = listed
            .into_iter()
            .map(|r| RecordingItem {
                caller: r.label("caller"),
                callee: r.label("callee"),
                started_at: r.meta.created_at,
                duration_ms: r.duration_ms(),
                id: r.id,
            })
            .collect();
        Ok(Response::Recordings { items, withheld })
    }

    /// Streams the samples of `audio` object `id` to the client, if the
    /// policy allows its export action.
    fn audio_export(
        &self,
        l: &Login,
        audio: &Audio,
        id: &str,
        out: &mut UnixStream,
    ) -> io::Result<Result<(), Response>> {
        if let Err(r) = check_field(id, "the id") {
            return Ok(Err(r));
        }
        if !(audio.may_be)(id) {
            return Ok(Err(error(ErrorKind::NotFound, audio.not_found)));
        }
        let opened = self.as_admin(l, |v| v.open(id));
        let mut reader = match opened {
            Ok(r) if (audio.is)(id, r.metadata()) => r,
            Ok(_) | Err(carevox::vault::Error::NotFound) => {
                return Ok(Err(error(ErrorKind::NotFound, audio.not_found)));
            }
            Err(e) => return Ok(Err(internal("vault", &e))),
        };
        let (party, mine) = audio.party(l, reader.metadata());
        let access = match self.decide(
            l,
            audio.resource,
            audio.export,
            Some(party.as_str()),
            mine,
            true,
            audio.event.clone(),
            Action::Read,
            Some(audio.object(id)),
        ) {
            Ok(a) => a,
            Err(r) => return Ok(Err(r)),
        };
        if !access.is_allowed() {
            return Ok(Err(Self::denied(&access)));
        }
        write_json(
            out,
            &Response::ExportStart {
                content_type: reader.metadata().content_type.clone(),
                len: Some(reader.len()),
            },
        )?;
        let mut buf = Zeroizing::new(vec![0u8; DATA_CHUNK]);
        let mut sent = 0u64;
        loop {
            let n = match io::Read::read(&mut reader, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!("admin console: {} export failed: {e}", audio.resource);
                    // The client sees the stream cut short.
                    return Err(e);
                }
            };
            write_data(out, buf.get(..n).unwrap_or_default())?;
            sent = sent.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        }
        write_json(out, &Response::StreamEnd { bytes: sent })?;
        Ok(Ok(()))
    }

    /// Crypto-shreds `audio` object `id`, then removes its ciphertext, if
    /// the policy allows.
    fn audio_delete(&self, l: &Login, audio: &Audio, id: &str) -> Result<Response, Response> {
        check_field(id, "the id")?;
        if !(audio.may_be)(id) {
            return Err(error(ErrorKind::NotFound, audio.not_found));
        }
        let meta = match self.as_admin(l, |v| v.metadata(id)) {
            Ok(m) if (audio.is)(id, &m) => m,
            Ok(_) | Err(carevox::vault::Error::NotFound) => {
                return Err(error(ErrorKind::NotFound, audio.not_found));
            }
            Err(e) => return Err(internal("vault", &e)),
        };
        let (party, mine) = audio.party(l, &meta);
        let access = self.decide(
            l,
            audio.resource,
            "delete",
            Some(party.as_str()),
            mine,
            true,
            audio.event.clone(),
            Action::Delete,
            Some(audio.object(id)),
        )?;
        if !access.is_allowed() {
            return Err(Self::denied(&access));
        }
        // The key first: from here no copy of the ciphertext can be read.
        self.as_admin(l, |v| v.shred(id))
            .map_err(|e| internal("vault", &e))?;
        self.as_admin(l, |v| match v.delete(id) {
            Ok(()) | Err(carevox::vault::Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        })
        .map_err(|e| internal("vault", &e))?;
        Ok(Response::Deleted { id: id.to_owned() })
    }

    // ---- call detail records ----------------------------------------------

    /// The mailbox a call's record or recording is decided on, and
    /// whether the session serves it: the callee's or the caller's the
    /// session serves, else the callee's (the caller's when the call
    /// reached nobody). A party given as empty is not one: a voicemail is
    /// decided on its callee alone.
    fn party_of(l: &Login, callee: &str, caller: &str) -> (String, bool) {
        for p in [callee, caller] {
            if !p.is_empty() && l.mailboxes.iter().any(|m| m == p) {
                return (p.to_owned(), true);
            }
        }
        let p = if callee.is_empty() { caller } else { callee };
        (p.to_owned(), false)
    }

    fn call_records(&self, l: &Login, q: &CallRecordQuery) -> Result<Response, Response> {
        if let Some(u) = &q.user {
            check_field(u, "the user")?;
        }
        let limit = q.limit.unwrap_or(DEFAULT_CALL_RECORDS);
        if limit == 0 || limit > MAX_CALL_RECORDS {
            return Err(error(
                ErrorKind::Invalid,
                &format!("the limit must lie between 1 and {MAX_CALL_RECORDS}"),
            ));
        }
        let objects = self.parts.vault.list().map_err(|e| internal("vault", &e))?;
        // One decision (and one audit record) per mailbox a request reads.
        let mut decided: std::collections::HashMap<(String, bool), bool> =
            std::collections::HashMap::new();
        let mut items = Vec::new();
        let mut withheld = 0u64;
        let mut unreadable = 0u64;
        for o in objects {
            if !o.id.starts_with(cdr::CDR_ID_PREFIX) {
                continue;
            }
            // Sealed before `since`: every call in it ended earlier.
            if let (Some(since), Some(sealed)) = (q.since, cdr::sealed_at(&o.id))
                && sealed < since
            {
                continue;
            }
            let read = self.as_admin(l, |v| v.get(&o.id));
            let (meta, bytes) = match read {
                Ok((meta, bytes)) => (meta, Zeroizing::new(bytes)),
                // Shredded meanwhile: gone, not damaged.
                Err(carevox::vault::Error::NotFound) => continue,
                // Damaged: the vault's hook audited the failure.
                Err(_) => {
                    unreadable += 1;
                    continue;
                }
            };
            if !cdr::is_batch(&o.id, &meta) {
                continue;
            }
            let Ok(records) = cdr::decode_batch(&bytes) else {
                unreadable += 1;
                continue;
            };
            for r in records {
                if q.since.is_some_and(|s| r.ended_at < s)
                    || q.until.is_some_and(|u| r.started_at >= u)
                    || q.user.as_deref().is_some_and(|u| !r.involves(u))
                {
                    continue;
                }
                let key = Self::party_of(l, r.callee.expose(), r.caller.expose());
                let allowed = match decided.get(&key) {
                    Some(a) => *a,
                    None => {
                        let access = self.decide(
                            l,
                            "call_log",
                            "read",
                            Some(key.0.as_str()),
                            key.1,
                            true,
                            EventType::Other("call_log_access".into()),
                            Action::Read,
                            Some(ObjectRef {
                                kind: ObjectKind::Other("call_log".into()),
                                id: Pii::new(key.0.clone()),
                            }),
                        )?;
                        decided.insert(key, access.is_allowed());
                        access.is_allowed()
                    }
                };
                if allowed {
                    items.push(r);
                } else {
                    withheld += 1;
                }
            }
        }
        items.sort_by(|a, b| {
            (a.started_at, a.ended_at, a.call_id.expose()).cmp(&(
                b.started_at,
                b.ended_at,
                b.call_id.expose(),
            ))
        });
        let keep = usize::try_from(limit).unwrap_or(usize::MAX);
        let omitted = items.len().saturating_sub(keep);
        items.drain(..omitted);
        Ok(Response::CallRecords {
            items,
            withheld,
            omitted: omitted as u64,
            unreadable,
        })
    }

    // ---- audit log ---------------------------------------------------------

    /// Decides (and audits as `event`) a read of the audit log.
    fn audit_log_read(&self, l: &Login, event: &str) -> Result<(), Response> {
        let access = self.decide(
            l,
            "audit_log",
            "read",
            None,
            false,
            true,
            EventType::Other(event.into()),
            Action::Read,
            None,
        )?;
        if access.is_allowed() {
            Ok(())
        } else {
            Err(Self::denied(&access))
        }
    }

    fn audit_verify(&self, l: &Login) -> Result<Response, Response> {
        self.audit_log_read(l, "audit_log_verify")?;
        let audit = &self.parts.audit;
        // A signed checkpoint over every record so far, then the check with
        // the public key alone.
        audit
            .checkpoint(Timestamp(self.now().saturating_mul(1000)))
            .map_err(|e| internal("audit checkpoint", &e))?;
        let key = audit.verifying_key();
        let report = verify_log(audit.dir(), &key, VerifyOptions::default())
            .map_err(|e| internal("audit verify", &e))?;
        Ok(Response::AuditVerified {
            records: report.records,
            checkpoints: u64::try_from(report.checkpoints).unwrap_or(u64::MAX),
            root: data_encoding::HEXLOWER.encode(&report.root),
            public_key: key.to_hex(),
            damage: report.damage.as_ref().map(ToString::to_string),
        })
    }

    /// The monitoring rules' alerts over the whole log, replayed from its
    /// records: the log is where they are kept. Those raised at or after
    /// `since` (Unix seconds) are returned, oldest first.
    fn audit_alerts(&self, l: &Login, since: Option<u64>) -> Result<Response, Response> {
        self.audit_log_read(l, "audit_log_alerts")?;
        let audit = &self.parts.audit;
        audit.sync().map_err(|e| internal("audit sync", &e))?;
        let mut monitor = Monitor::new(self.settings.monitor.clone());
        let mut alerts = Vec::new();
        for_each_record(audit.dir(), &[], |seq, r, _| {
            monitor.observe(seq, r, &mut alerts);
            Ok(())
        })
        .map_err(|e| internal("audit read", &e))?;
        let since_ms = since.map_or(0, |s| s.saturating_mul(1000));
        let items = alerts
            .iter()
            .map(alert_item)
            .filter(|a| a.at_ms >= since_ms)
            .collect();
        Ok(Response::Alerts { items })
    }

    fn audit_export(&self, l: &Login, out: &mut UnixStream) -> io::Result<Result<(), Response>> {
        let access = match self.decide(
            l,
            "audit_log",
            "export",
            None,
            false,
            true,
            EventType::Export,
            Action::Read,
            None,
        ) {
            Ok(a) => a,
            Err(r) => return Ok(Err(r)),
        };
        if !access.is_allowed() {
            return Ok(Err(Self::denied(&access)));
        }
        let audit = &self.parts.audit;
        if let Err(e) = audit.sync() {
            return Ok(Err(internal("audit sync", &e)));
        }
        write_json(
            out,
            &Response::ExportStart {
                content_type: "application/x-ndjson".into(),
                len: None,
            },
        )?;
        let mut chunks = Chunks {
            out: &mut *out,
            buf: Vec::with_capacity(DATA_CHUNK),
            sent: 0,
        };
        #[derive(serde::Serialize)]
        struct Line<'a> {
            seq: u64,
            #[serde(flatten)]
            record: &'a Record,
        }
        let result = for_each_record(audit.dir(), &[], |seq, record, _| {
            serde_json::to_writer(&mut chunks, &Line { seq, record })
                .map_err(io::Error::from)
                .and_then(|()| chunks.write_all(b"\n"))
                .map_err(|source| carevox::audit::Error::Io {
                    path: "admin.sock".into(),
                    source,
                })
        });
        if let Err(e) = result {
            tracing::warn!("admin console: audit export failed: {e}");
            return Err(io::Error::other("audit export failed"));
        }
        chunks.flush()?;
        let sent = chunks.sent;
        write_json(out, &Response::StreamEnd { bytes: sent })?;
        Ok(Ok(()))
    }

    // ---- accounts ----------------------------------------------------------

    fn account_decision(
        &self,
        l: &Login,
        action: &str,
        name: &str,
        audit_action: Action,
    ) -> Result<(), Response> {
        let access = self.decide(
            l,
            "account",
            action,
            None,
            false,
            false,
            EventType::PermissionChange,
            audit_action,
            Some(ObjectRef {
                kind: ObjectKind::Account,
                id: Pii::new(
                    if valid_name(name) {
                        name
                    } else {
                        "<invalid name>"
                    }
                    .to_owned(),
                ),
            }),
        )?;
        if access.is_allowed() {
            Ok(())
        } else {
            Err(Self::denied(&access))
        }
    }

    fn user_add(
        &self,
        l: &Login,
        name: &str,
        role: &str,
        password: &SecretText,
        mailboxes: Vec<String>,
    ) -> Result<Response, Response> {
        self.account_decision(l, "add", name, Action::Create)?;
        if lock(&self.accounts).get(name).is_some() {
            return Err(error(ErrorKind::Conflict, "the account exists"));
        }
        let (account, uri) = self.new_account(name, role, password, mailboxes)?;
        let object = account.totp_object.clone();
        let added = lock(&self.accounts)
            .add(account)
            .map_err(|e| internal("accounts", &e))?;
        if !added {
            let _ = self.parts.secrets.shred(&object);
            return Err(error(ErrorKind::Conflict, "the account exists"));
        }
        Ok(Response::Provisioned { otpauth_uri: uri })
    }

    fn user_disable(&self, l: &Login, name: &str) -> Result<Response, Response> {
        self.account_decision(l, "disable", name, Action::Update)?;
        if name == l.name {
            // The last administrator would lock everyone out for good:
            // enrolment is closed once an account exists.
            return Err(error(
                ErrorKind::Invalid,
                "an account cannot disable itself; ask another administrator",
            ));
        }
        let found = lock(&self.accounts)
            .update(name, |a| a.disabled = true)
            .map_err(|e| internal("accounts", &e))?;
        if !found {
            return Err(error(ErrorKind::NotFound, "no such account"));
        }
        self.sessions.logoff_user(name);
        Ok(Response::Done)
    }

    fn totp_reset(&self, l: &Login, name: &str) -> Result<Response, Response> {
        self.account_decision(l, "reset_totp", name, Action::Update)?;
        let Some(old) = lock(&self.accounts)
            .get(name)
            .map(|a| a.totp_object.clone())
        else {
            return Err(error(ErrorKind::NotFound, "no such account"));
        };
        let (object, uri) = self.new_totp(name)?;
        let found = lock(&self.accounts)
            .update(name, |a| {
                a.totp_object = object.clone();
                a.totp_last_step = None;
            })
            .map_err(|e| internal("accounts", &e))?;
        if !found {
            let _ = self.parts.secrets.shred(&object);
            return Err(error(ErrorKind::NotFound, "no such account"));
        }
        // The old secret can no longer be read, from any copy.
        let _ = self.parts.secrets.shred(&old);
        let _ = self.parts.secrets.delete(&old);
        if name != l.name {
            self.sessions.logoff_user(name);
        }
        Ok(Response::Provisioned { otpauth_uri: uri })
    }
}

/// An alert as the console shows it.
fn alert_item(a: &Alert) -> AlertItem {
    let (who, detail, at) = match a {
        Alert::RepeatedFailedLogins {
            subject, count, at, ..
        } => {
            let who = match subject {
                Counted::User(u) => u.clone(),
                Counted::Address(a) => a.clone(),
                _ => Pii::new(String::new()),
            };
            (who, format!("{count} failures"), *at)
        }
        Alert::NewNetwork {
            user, network, at, ..
        } => (user.clone(), network.expose().clone(), *at),
        Alert::BreakTheGlass { user, at, .. } => (user.clone(), String::new(), *at),
        Alert::OutsideWorkingHours { user, at, .. } => (user.clone(), String::new(), *at),
        Alert::ManyPatients {
            user, distinct, at, ..
        } => (user.clone(), format!("{distinct} patients"), *at),
        Alert::BulkReads {
            user, reads, at, ..
        } => (user.clone(), format!("{reads} reads"), *at),
        _ => (Pii::new(String::new()), String::new(), Timestamp(0)),
    };
    AlertItem {
        kind: alert_kind(a).to_owned(),
        seq: alert_seq(a).unwrap_or(0),
        at_ms: at.0,
        who,
        detail: Pii::new(detail),
    }
}

fn internal(what: &str, e: &dyn std::fmt::Display) -> Response {
    tracing::warn!("admin console: {what}: {e}");
    error(ErrorKind::Internal, &format!("{what} failed"))
}

/// Writes an export's bytes as data frames of [`DATA_CHUNK`] bytes.
struct Chunks<'a> {
    out: &'a mut UnixStream,
    buf: Vec<u8>,
    sent: u64,
}

impl Write for Chunks<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = DATA_CHUNK.saturating_sub(self.buf.len());
        let n = room.min(data.len());
        self.buf
            .extend_from_slice(data.get(..n).unwrap_or_default());
        if self.buf.len() >= DATA_CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            write_data(self.out, &self.buf)?;
            self.sent = self
                .sent
                .saturating_add(u64::try_from(self.buf.len()).unwrap_or(u64::MAX));
            self.buf.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voicemail(id: &str) -> Metadata {
        Metadata::new(id, "audio/PCMU", 1, 2)
            .label("caller", "alice")
            .label("callee", "bob")
            .label("call_id", "c-1")
    }

    #[test]
    fn voicemail_and_recordings_are_told_apart_by_id_and_kind() {
        let rec = recording::metadata("rec-1", "alice", "bob", "c-1", 1, 2);
        assert!((RECORDING.is)("rec-1", &rec));
        assert!(!(VOICEMAIL.is)("rec-1", &rec));
        // A `rec-` object is never a voicemail, whatever its labels, and
        // is not opened to find out.
        assert!(!(VOICEMAIL.may_be)("rec-1"));
        assert!(!(VOICEMAIL.is)("rec-1", &voicemail("rec-1")));
        assert!(!(VOICEMAIL.is)(
            "rec-1",
            &voicemail("rec-1").label(cdr::KIND_LABEL, "voicemail")
        ));
        // A voicemail is not a recording, nor is a recording's label alone.
        assert!((VOICEMAIL.is)("vm-1", &voicemail("vm-1")));
        assert!((VOICEMAIL.is)(
            "vm-1",
            &voicemail("vm-1").label(cdr::KIND_LABEL, "voicemail")
        ));
        assert!(!(RECORDING.may_be)("vm-1"));
        assert!(!(RECORDING.is)("vm-1", &voicemail("vm-1")));
        assert!(!(RECORDING.is)(
            "vm-1",
            &voicemail("vm-1").label(cdr::KIND_LABEL, recording::KIND)
        ));
        assert!(!(RECORDING.is)("rec-2", &voicemail("rec-2")));
        // Batches of call detail records and held messages are neither.
        for id in ["cdr-1", "msg-1"] {
            assert!(!(VOICEMAIL.may_be)(id) && !(RECORDING.may_be)(id), "{id}");
        }
        // Each names its own resource, event and object kind.
        assert_eq!(
            (RECORDING.resource, RECORDING.export, &RECORDING.event),
            ("recording", "export", &EventType::RecordingAccess)
        );
        assert_eq!(RECORDING.object("rec-1").kind, ObjectKind::Recording);
        assert_eq!(
            (VOICEMAIL.resource, VOICEMAIL.export, &VOICEMAIL.event),
            ("voicemail", "listen", &EventType::VoicemailAccess)
        );
        assert_eq!(VOICEMAIL.object("vm-1").kind, ObjectKind::Voicemail);
    }
}
