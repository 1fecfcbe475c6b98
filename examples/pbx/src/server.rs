//! The PBX on sockets: the registrar and a B2BUA between registered users
//! over SIP on TLS, with every call's media through the SRTP relay and
//! voicemail when nobody answers.
//!
//! One tokio task owns the SIP user agent ([`Agent`]), the [`Registrar`]
//! and every call; media runs in tasks of its own ([`crate::media`]), and
//! each voicemail is written into the vault by a blocking task through the
//! facade's [`Recorder`].
//!
//! A call:
//!
//! 1. An INVITE is authenticated ([`Registrar::authorize_call`]: `407`,
//!    then digest under the registrar's nonces and lockout). Its offer must
//!    be SDES-SRTP audio (`RTP/SAVP` with `a=crypto`): plain RTP gets
//!    `488`. The relay answers it with keys of its own (leg A); with no
//!    media port pair free it gets `503` with `Retry-After`.
//! 2. The callee's live bindings are looked up and every one (up to ten)
//!    is called at once (forking), each over the connection it registered
//!    on, with a fresh offer and fresh keys from the relay (leg B). A
//!    callee with no binding goes to voicemail; an unknown one gets `404`.
//! 3. Provisional responses go back to the caller; the first `200` starts
//!    the relay and answers the caller, and the other phones are
//!    cancelled (a `200` crossing the CANCEL is hung up). Once every phone
//!    has refused, a `486`, `480`, `408`, `603` or `600` among the
//!    refusals, or a phone that could not be reached, sends the call to
//!    voicemail; otherwise the caller gets the lowest refusal.
//!    [`ServerSettings::no_answer`] without answer cancels them all and
//!    sends the call to voicemail.
//! 4. A BYE on either side ends the other; a CANCEL from the caller cancels
//!    every phone still ringing.
//!
//! Voicemail answers the caller itself: a prompt tone, then the caller's
//! audio is recorded into the vault (labels: caller, callee, Call-ID) up to
//! the longest message, after which the PBX hangs up.
//!
//! Every registration, call start, answer, voicemail and end is an audit
//! record; the voicemail's write is audited by the vault's hook. Logs carry
//! call numbers, transaction and dialog ids only.
//!
//! Audited before answered, with one `fdatasync` for many requests (group
//! commit): the task handles every event waiting for it (up to
//! [`BATCH`]), staging their audit records ([`AuditSink::submit`]) and
//! holding their responses; then it makes the records durable with one
//! [`AuditSink::sync`] on a blocking thread (the agent and the media keep
//! running meanwhile, and the next batch gathers) and only then sends the
//! responses. No response to a request leaves before the records of that
//! request are durable; requests the PBX sends on (the INVITE to the
//! callee, a BYE to the other side) are not held.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use carevox::audio::G711;
use carevox::audit_sink::AuditSink;
use carevox::authz::Policy;
use carevox::authz::lockout::{LockoutPolicy, LockoutTable};
use carevox::call_audit::{CallEvent, CallSubject, EndedBy, VoicemailReason, call_record};
use carevox::media::{SrtpSession, answer_audio, offer_cryptos, offerer_srtp};
use carevox::message_audit::{MessageEvent, MessageSubject, message_record};
use carevox::recording::{CallRecorder, CallRecorderConfig, Recorder, RecorderConfig};
use carevox::redact::Pii;
use carevox::relay::{MediaPeer, MediaRelay, RelayConfig};
use carevox::sdes::SdesOptions;
use carevox::sip::dialog::{DialogId, Outgoing, UaConfig, UaEvent, UserAgent};
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::crypto::{Crypto, CryptoSuite};
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use carevox::sip::transaction::{
    Config as TransactionConfig, TransactionId, TransportKind as SipKind, random_token,
};
use carevox::sip::{HeaderName, Message, Method};
use carevox::vault::{Metadata, Vault};
use carevox_transport::{
    Agent, AgentEvent, AgentEvents, Destination, EndpointConfig, Origin, TlsServerConfig,
    Transport, TransportConfig, TransportKind,
};
use ring::rand::SecureRandom;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use crate::cdr::{CallRecord, CdrSettings, CdrWriter, Disposition, Ender};
use crate::location::Transport as BindingTransport;
use crate::mailbox::{MailboxCall, MailboxEvent};
use crate::media::{
    EndpointMedia, MediaError, MediaTask, Playout, PortPair, PortPool, RecordedRelay, Source,
    Tapped, spawn_endpoint, spawn_relay,
};
use crate::mwi::{self, MailboxIndex, Subscription};
use crate::recording::{AnnouncementError, RECORDING_PREFIX, RecordingSettings};
use crate::registrar::{CallAuthorization, Registrar, Source as RequestSource, UserDirectory};

/// What the server needs besides its configuration's numbers.
pub struct ServerParts {
    /// The registrar (its settings and nonce secret made by the caller).
    pub registrar: Registrar,
    /// The users.
    pub users: Arc<dyn UserDirectory + Send + Sync>,
    /// Where voicemail goes (with its audit hook).
    pub vault: Arc<Vault>,
    /// Where audit records go.
    pub audit: Arc<dyn AuditSink>,
    /// The random source (tags, keys, nonces, SSRCs).
    pub rng: Arc<dyn SecureRandom + Send + Sync>,
    /// The TLS certificate and key the PBX presents.
    pub tls: TlsServerConfig,
}

impl std::fmt::Debug for ServerParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerParts")
            .field("registrar", &self.registrar)
            .finish_non_exhaustive()
    }
}

/// The server's numbers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerSettings {
    /// Where SIP over TLS listens.
    pub listen: SocketAddr,
    /// Where SIP over UDP listens (only from `[dangerous] udp_listen`).
    pub udp_listen: Vec<SocketAddr>,
    /// Where SIP over TCP listens (only from `[dangerous] tcp_listen`).
    pub tcp_listen: Vec<SocketAddr>,
    /// The domain in the PBX's own URIs (From of the calls it places).
    pub domain: String,
    /// The address media binds and the SDP names.
    pub media_ip: IpAddr,
    /// The media port range (pairs from the even port up).
    pub media_ports: (u16, u16),
    /// The SRTP suites offered to callees, most preferred first.
    pub suites: Vec<CryptoSuite>,
    /// How long a callee rings before voicemail.
    pub no_answer: Duration,
    /// The longest voicemail message.
    pub max_message: Duration,
    /// How long voicemail is kept.
    pub voicemail_retention: Duration,
    /// The audit records' source id.
    pub audit_source: String,
    /// How call detail records are sealed in the vault.
    pub call_records: CdrSettings,
    /// How many SIP transactions may be live at once; past it a new
    /// request is not served. A transaction outlives its answer: over UDP a
    /// non-INVITE one stays 64·T1 (32 s) to absorb retransmissions (RFC
    /// 3261 Timer J), an answered INVITE as long (RFC 6026): a call with
    /// digest holds three for 32 s (the answered INVITE, the callee's
    /// leg, the BYE it took) and two for 5 s (the challenged INVITE, the
    /// BYE it sent); a registration two for 32 s. Default
    /// [`DEFAULT_MAX_TRANSACTIONS`].
    pub max_transactions: usize,
    /// Which calls are recorded, and the announcement.
    pub recording: RecordingSettings,
    /// The voicemail number (`[voicemail] number`).
    pub voicemail_number: String,
    /// The lockout after wrong voicemail PINs (the `[lockout]` policy).
    pub pin_lockout: LockoutPolicy,
}

/// The default of [`ServerSettings::max_transactions`]: room for about
/// 1 800 calls or 3 000 registrations per second over UDP, at 2 to 3 KiB
/// of memory per transaction (about 600 MiB when full). The transaction
/// layer's own default, 10 000, held the PBX to about 100 calls or 150
/// registrations per second, then dropped new requests unanswered.
pub const DEFAULT_MAX_TRANSACTIONS: usize = 200_000;

impl ServerSettings {
    /// The settings of `config`, listening on its first TLS address (the
    /// recording announcement file, when one is set, is read here).
    pub fn from_config(config: &crate::config::Config) -> Result<ServerSettings, SettingsError> {
        let listen = *config.tls.listen.first().ok_or(SettingsError::NoListen)?;
        Ok(ServerSettings {
            listen,
            udp_listen: config.dangerous.udp_listen.clone(),
            tcp_listen: config.dangerous.tcp_listen.clone(),
            domain: config
                .server
                .domains
                .first()
                .ok_or(SettingsError::NoDomain)?
                .clone(),
            media_ip: listen.ip(),
            media_ports: (config.media.rtp_port_min, config.media.rtp_port_max),
            suites: config
                .media
                .srtp_suites
                .iter()
                .map(|s| CryptoSuite::from_name(s.0.sdes_name()))
                .collect(),
            no_answer: Duration::from_secs(u64::from(config.voicemail.no_answer_timeout_secs)),
            max_message: Duration::from_secs(u64::from(config.voicemail.max_message_secs)),
            voicemail_retention: Duration::from_secs(
                u64::from(config.retention.voicemail_days) * 86_400,
            ),
            audit_source: "carevox-pbx".to_owned(),
            call_records: CdrSettings::new(Duration::from_secs(
                u64::from(config.retention.call_records_days) * 86_400,
            )),
            max_transactions: DEFAULT_MAX_TRANSACTIONS,
            recording: RecordingSettings::from_config(config)?,
            voicemail_number: config.voicemail.number.clone(),
            pin_lockout: config.lockout.policy(),
        })
    }
}

/// Why a configuration gave no server settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// `[tls] listen` is empty.
    #[error("no [tls] listen address")]
    NoListen,
    /// `[server] domains` is empty.
    #[error("no [server] domain")]
    NoDomain,
    /// The recording announcement could not be used.
    #[error("recording.announcement: {0}")]
    Announcement(#[from] AnnouncementError),
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The transport could not listen.
    #[error("transport: {0}")]
    Transport(#[from] carevox_transport::Error),
    /// The random source failed.
    #[error("the random source failed")]
    Random,
    /// The vault could not be listed (to index the mailboxes).
    #[error("vault: {0}")]
    Vault(#[from] carevox::vault::Error),
    /// A task of the start did not finish.
    #[error("{0} did not finish")]
    Task(&'static str),
    /// The access policy does not load.
    #[error("access policy: {0}")]
    Policy(String),
}

/// A running PBX.
#[derive(Debug)]
pub struct Server {
    agent: Agent,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

impl Server {
    /// Starts listening and serving. Must be called inside a tokio runtime.
    pub async fn start(
        settings: ServerSettings,
        parts: ServerParts,
    ) -> Result<Server, ServerError> {
        let mut builder =
            Transport::builder(TransportConfig::default()).tls(settings.listen, parts.tls.clone());
        for addr in &settings.udp_listen {
            builder = builder.udp(*addr);
        }
        for addr in &settings.tcp_listen {
            builder = builder.tcp(*addr);
        }
        let (transport, incoming) = builder.start().await?;
        let addr = transport
            .local_addr(TransportKind::Tls)
            .unwrap_or(settings.listen);
        let ua = UserAgent::new(
            UaConfig::new(
                &addr.to_string(),
                &format!("<sip:pbx@{addr};transport=tls>"),
            )
            .with_transaction(
                TransactionConfig::default().with_max_transactions(settings.max_transactions),
            ),
            parts.rng.clone(),
        );
        let (agent, events) = Agent::start(transport, incoming, ua, EndpointConfig::default());
        let (stop, stop_rx) = oneshot::channel();
        let vault = parts.vault.clone();
        let (mailboxes, held_texts) = tokio::task::spawn_blocking(move || {
            let voicemail = MailboxIndex::scan(&vault, mwi::VOICEMAIL_PREFIX, "callee")?;
            let held = MailboxIndex::scan(&vault, TEXT_PREFIX, "recipient")?;
            Ok::<_, carevox::vault::Error>((voicemail, held))
        })
        .await
        .map_err(|_| ServerError::Task("indexing the mailboxes"))??;
        let (vm_done, vm_done_rx) = mpsc::channel(64);
        let (mailbox_events, mailbox_rx) = mpsc::channel(64);
        let policy = Arc::new(
            Policy::from_toml(&crate::admin::control::policy_text())
                .map_err(|e| ServerError::Policy(e.to_string()))?,
        );
        let settings_lockout = settings.pin_lockout;
        let cdrs = CdrWriter::start(
            parts.vault.clone(),
            parts.rng.clone(),
            settings.call_records,
            Arc::new(unix_now),
        );
        let core = Core {
            cdrs: Some(cdrs),
            agent: agent.clone(),
            held: Vec::new(),
            unsynced: std::cell::Cell::new(false),
            pool: PortPool::new(
                settings.media_ip,
                settings.media_ports.0,
                settings.media_ports.1,
            ),
            settings,
            registrar: parts.registrar,
            users: parts.users,
            vault: parts.vault,
            audit: parts.audit,
            rng: parts.rng,
            calls: HashMap::new(),
            by_txn: HashMap::new(),
            by_dialog: HashMap::new(),
            timers: BinaryHeap::new(),
            next_call: 0,
            vm_done,
            writing: 0,
            policy,
            pin_lockout: Arc::new(std::sync::Mutex::new(LockoutTable::new(
                settings_lockout,
                10_000,
            ))),
            mailbox_events,
            subs: HashMap::new(),
            mailboxes,
            held_texts,
            relays: HashMap::new(),
            deliveries: HashMap::new(),
        };
        tokio::spawn(core.run(events, stop_rx, vm_done_rx, mailbox_rx));
        Ok(Server {
            agent,
            addr,
            stop: Some(stop),
        })
    }

    /// The TLS address SIP listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops: live calls are ended, then the SIP stack shuts down.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let (done, wait) = oneshot::channel();
            if stop.send(done).is_ok() {
                let _ = wait.await;
            }
        }
        let _ = self.agent.shutdown(Duration::from_secs(2)).await;
    }
}

/// Which side of a call a transaction or dialog is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Caller,
    Callee,
}

#[derive(Debug)]
enum Phase {
    /// The callee's phone is being called.
    Ringing,
    /// Both sides talk through the relay.
    Talking { relay: MediaTask, since: Instant },
    /// The caller talks to voicemail.
    Voicemail { media: MediaTask, since: Instant },
    /// The caller listens to their own mailbox.
    Mailbox { media: MediaTask, since: Instant },
    /// Over; waiting for nothing.
    Ended,
}

#[derive(Debug)]
struct CalleeLeg {
    invite: TransactionId,
    lines: Vec<Crypto>,
    ports: Option<PortPair>,
    dialog: Option<DialogId>,
}

struct Call {
    number: u64,
    caller: Pii<String>,
    callee: Pii<String>,
    call_id: Pii<String>,
    caller_ip: Pii<Option<String>>,
    invite: TransactionId,
    caller_dialog: Option<DialogId>,
    /// Leg A's keys, until the relay or voicemail takes them.
    caller_srtp: Option<SrtpSession>,
    caller_answer: String,
    /// The telephone-event payload type agreed with the caller.
    caller_dtmf: Option<u8>,
    caller_peer: MediaPeer,
    caller_ports: Option<PortPair>,
    /// The answered callee leg.
    callee_leg: Option<CalleeLeg>,
    /// The callee's phones being called at once (forking), until one
    /// answers or all refuse.
    forks: Vec<CalleeLeg>,
    /// The final statuses of the forks that refused (0: no answer at the
    /// transport or transaction level).
    refusals: Vec<u16>,
    phase: Phase,
    /// When the PBX took the call (Unix seconds).
    started_at: u64,
    /// When the callee or voicemail answered.
    answered_at: Option<u64>,
    /// How it ended up, once known.
    disposition: Option<Disposition>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("number", &self.number)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    NoAnswer,
    MessageFull,
    MailboxLimit,
    Expiry,
    Mwi,
}

/// The methods the PBX serves.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, MESSAGE";

/// The most events handled before their audit records are made durable
/// and their responses sent.
pub const BATCH: usize = 256;

/// A response held until the audit records staged before it are durable.
struct Held {
    id: TransactionId,
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    /// An SDP body.
    body: Option<Bytes>,
    then: Then,
}

/// What follows a held response once it is sent.
#[derive(Debug, Clone)]
enum Then {
    Nothing,
    /// The 2xx answering call `number`'s caller: its dialog is the caller
    /// side's; without one the caller is gone.
    CallerDialog {
        number: u64,
    },
    /// The 2xx to a REGISTER of `user` from `source`: messages held for
    /// them go to that phone now.
    Registered {
        user: Pii<String>,
        source: SocketAddr,
    },
    /// The 2xx accepting (or refreshing, in `dialog`) a message-summary
    /// subscription to `mailbox` for `expires` seconds (0: ending it): its
    /// dialog carries the NOTIFYs.
    Subscribed {
        mailbox: Pii<String>,
        account: Pii<String>,
        expires: u32,
        dialog: Option<DialogId>,
    },
}

struct Core {
    agent: Agent,
    /// Where finished calls' records go (taken at shutdown).
    cdrs: Option<CdrWriter>,
    held: Vec<Held>,
    /// Audit records were staged since the last sync.
    unsynced: std::cell::Cell<bool>,
    settings: ServerSettings,
    registrar: Registrar,
    users: Arc<dyn UserDirectory + Send + Sync>,
    vault: Arc<Vault>,
    audit: Arc<dyn AuditSink>,
    rng: Arc<dyn SecureRandom + Send + Sync>,
    pool: PortPool,
    calls: HashMap<u64, Call>,
    by_txn: HashMap<TransactionId, (u64, Side)>,
    by_dialog: HashMap<DialogId, (u64, Side)>,
    timers: BinaryHeap<Reverse<(Instant, TimerKind, u64)>>,
    next_call: u64,
    vm_done: mpsc::Sender<Stored>,
    /// Voicemail and call recordings being written.
    writing: usize,
    /// The access policy (a user's own mailbox by phone).
    policy: Arc<Policy>,
    /// Wrong voicemail PINs, per user.
    pin_lockout: Arc<std::sync::Mutex<LockoutTable<String>>>,
    /// Where mailbox calls report.
    mailbox_events: mpsc::Sender<MailboxEvent>,
    /// Message-summary subscriptions, by their dialog.
    subs: HashMap<DialogId, Subscription>,
    /// Which voicemail belongs to which mailbox.
    mailboxes: MailboxIndex,
    /// Text messages held in the vault for offline users.
    held_texts: MailboxIndex,
    /// Messages passed on to the recipient's phone, by the forwarded
    /// MESSAGE's transaction.
    relays: HashMap<TransactionId, Relay>,
    /// Held messages being delivered, by the MESSAGE's transaction, with
    /// their vault object.
    deliveries: HashMap<TransactionId, (String, Text)>,
}

/// The id prefix of held text messages in the vault.
pub const TEXT_PREFIX: &str = "msg-";
/// The longest text message body accepted, in bytes; longer gets `413`.
pub const MAX_TEXT: usize = 16 * 1024;

/// A text message on its way. The parties, the Call-ID, the address and
/// the text are PHI.
#[derive(Clone)]
struct Text {
    sender: Pii<String>,
    recipient: Pii<String>,
    call_id: Pii<String>,
    address: Pii<Option<String>>,
    content_type: String,
    body: Bytes,
}

/// A message passed on, waiting for the recipient's phone's answer.
struct Relay {
    /// The sender's MESSAGE, answered once the phone answers.
    incoming: TransactionId,
    text: Text,
}

/// A voicemail or call recording that finished: the call, the object, the
/// voicemail's mailbox (none for a call recording), and its length or why
/// it failed.
struct Stored {
    call: u64,
    id: String,
    mailbox: Option<String>,
    result: Result<u64, String>,
}

/// The longest call to the voicemail number.
const MAILBOX_LIMIT: Duration = Duration::from_secs(30 * 60);

/// The most phones of one callee called at once.
const MAX_FORKS: usize = 10;

/// How long a shutdown waits for voicemail and recordings to be sealed.
const SEAL_WAIT: Duration = Duration::from_secs(10);

pub(crate) fn unix_now() -> u64 {
    #[allow(clippy::disallowed_methods)] // the server's clock
    let now = SystemTime::now();
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn system_now() -> SystemTime {
    #[allow(clippy::disallowed_methods)] // the server's clock
    SystemTime::now()
}

/// The header fields of a response built elsewhere (the registrar's) that
/// the user agent core does not write itself.
fn extra_headers(response: &Message) -> Vec<(String, String)> {
    response
        .headers()
        .filter(|h| {
            !matches!(
                h.name,
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
                    | HeaderName::ContentLength
                    | HeaderName::Contact
            ) || (h.name == HeaderName::Contact
                && response.cseq().is_ok_and(|c| c.method == Method::Register))
        })
        .map(|h| (h.name_str.to_owned(), h.value_str().to_owned()))
        .collect()
}

fn borrowed(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// The user part of a URI, decoded.
fn user_of(uri: &carevox::sip::Uri<'_>) -> Option<String> {
    let sip = uri.as_sip()?;
    String::from_utf8(sip.user_decoded()?.into_owned()).ok()
}

/// Whether a SUBSCRIBE is for the `message-summary` event package.
fn is_message_summary(request: &Message) -> bool {
    request
        .header_values_by_name("Event")
        .next()
        .and_then(|v| v.split(';').next())
        .is_some_and(|e| e.trim().eq_ignore_ascii_case(mwi::EVENT))
}

/// The SIP core's and the transport's names for a binding's transport.
fn kinds_of(transport: BindingTransport) -> (SipKind, TransportKind) {
    match transport {
        BindingTransport::Tls => (SipKind::Tls, TransportKind::Tls),
        BindingTransport::Tcp => (SipKind::Tcp, TransportKind::Tcp),
        _ => (SipKind::Udp, TransportKind::Udp),
    }
}

fn binding_transport(kind: TransportKind) -> BindingTransport {
    match kind {
        TransportKind::Udp => BindingTransport::Udp,
        TransportKind::Tcp => BindingTransport::Tcp,
        _ => BindingTransport::Tls,
    }
}

impl Core {
    async fn run(
        mut self,
        mut events: AgentEvents,
        mut stop: oneshot::Receiver<oneshot::Sender<()>>,
        mut vm_done: mpsc::Receiver<Stored>,
        mut mailbox_rx: mpsc::Receiver<MailboxEvent>,
    ) {
        info!("PBX serving");
        self.timers.push(Reverse((
            Instant::now() + Duration::from_secs(1),
            TimerKind::Expiry,
            0,
        )));
        self.timers.push(Reverse((
            Instant::now() + mwi::CHECK_EVERY,
            TimerKind::Mwi,
            0,
        )));
        loop {
            let next = self.timers.peek().map(|Reverse((at, _, _))| *at);
            tokio::select! {
                done = &mut stop => {
                    self.end_all().await;
                    self.wait_for_writers(&mut vm_done).await;
                    self.commit().await;
                    self.close_cdrs().await;
                    if let Ok(done) = done {
                        let _ = done.send(());
                    }
                    break;
                }
                e = events.recv() => {
                    let Some(first) = e else {
                        self.commit().await;
                        self.close_cdrs().await;
                        break;
                    };
                    // Every event already waiting joins this batch.
                    let mut next = Some(first);
                    let mut handled = 0;
                    while let Some(e) = next {
                        if let AgentEvent::Ua { event, origin } = e {
                            self.on_event(event, origin).await;
                        }
                        handled += 1;
                        next = if handled < BATCH { events.try_recv() } else { None };
                    }
                }
                Some(stored) = vm_done.recv() => self.voicemail_stored(stored).await,
                Some(event) = mailbox_rx.recv() => self.on_mailbox(event).await,
                () = sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                    self.fire_timers().await;
                }
            }
            self.commit().await;
        }
        info!("PBX stopped");
    }

    /// Stages `records`; they are durable once the batch is committed
    /// ([`Core::commit`]), before any response held meanwhile is sent.
    fn append(&self, records: &[carevox::audit::Record]) {
        for r in records {
            match self.audit.submit(r) {
                Ok(_) => self.unsynced.set(true),
                // The record is not lost silently: the failure is logged
                // by kind (never by content) and the operation goes on.
                Err(e) => warn!(error = %e, "audit record not appended"),
            }
        }
    }

    /// Makes the staged audit records durable (one sync, on a blocking
    /// thread), then sends the held responses; again while sending them
    /// staged more (a caller gone before its answer ends the call).
    async fn commit(&mut self) {
        while self.unsynced.get() || !self.held.is_empty() {
            if self.unsynced.take() {
                let audit = self.audit.clone();
                match tokio::task::spawn_blocking(move || audit.sync()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!(error = %e, "audit records not made durable"),
                    Err(e) => warn!(error = %e, "audit sync did not complete"),
                }
            }
            for h in std::mem::take(&mut self.held) {
                let body = h.body.map(|b| ("application/sdp", b));
                let sent = self
                    .agent
                    .respond(h.id, h.status, &h.reason, &borrowed(&h.headers), body)
                    .await;
                match (h.then, sent) {
                    (Then::Nothing, Ok(_)) => {}
                    (Then::Nothing, Err(e)) => {
                        debug!(txn = %h.id, error = %e, "response not sent");
                    }
                    (Then::CallerDialog { number }, Ok(Some(d))) => {
                        if let Some(call) = self.calls.get_mut(&number) {
                            self.by_dialog.insert(d, (number, Side::Caller));
                            call.caller_dialog = Some(d);
                            debug!(call = number, "answered");
                        } else {
                            // The call ended while its answer was held:
                            // the caller's new dialog is hung up at once.
                            debug!(call = number, "answered after its end");
                            let _ = self.agent.send_in_dialog(d, "BYE", &[], None).await;
                        }
                    }
                    (Then::CallerDialog { number }, _) => {
                        debug!(call = number, "caller gone before the answer");
                        self.end_call(number, EndedBy::Caller).await;
                    }
                    (
                        Then::Subscribed {
                            mailbox,
                            account,
                            expires,
                            dialog,
                        },
                        Ok(created),
                    ) => {
                        if let Some(d) = dialog.or(created) {
                            self.subscribed(d, mailbox, account, expires).await;
                        }
                    }
                    (Then::Subscribed { .. }, Err(e)) => {
                        debug!(txn = %h.id, error = %e, "subscription not accepted");
                    }
                    (Then::Registered { user, source }, Ok(_)) => {
                        self.deliver_held(&user, source).await;
                    }
                    (Then::Registered { .. }, Err(e)) => {
                        debug!(txn = %h.id, error = %e, "response not sent");
                    }
                }
            }
        }
    }

    /// Holds a response until the batch's audit records are durable.
    fn hold(
        &mut self,
        id: TransactionId,
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
        then: Then,
    ) {
        self.held.push(Held {
            id,
            status,
            reason: reason.to_owned(),
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            body,
            then,
        });
    }

    /// A call refused before it was routed: audited, and its record
    /// written.
    fn refuse_new(&self, call: &Call, status: u16) {
        self.audit_call(call, CallEvent::Refused { status });
        let now = unix_now();
        let record = CallRecord {
            call_id: call.call_id.clone(),
            caller: call.caller.clone(),
            callee: call.callee.clone(),
            caller_address: call.caller_ip.clone(),
            started_at: call.started_at,
            answered_at: None,
            ended_at: now,
            talk_secs: 0,
            disposition: Disposition::Refused { status },
            ended_by: Ender::Pbx,
        };
        self.write_cdr(record);
    }

    fn cdr_of(
        call: Call,
        ended_at: u64,
        talk_secs: u64,
        disposition: Disposition,
        by: EndedBy,
    ) -> CallRecord {
        CallRecord {
            call_id: call.call_id,
            caller: call.caller,
            callee: call.callee,
            caller_address: call.caller_ip,
            started_at: call.started_at,
            answered_at: call.answered_at,
            ended_at,
            talk_secs,
            disposition,
            ended_by: by.into(),
        }
    }

    /// Seals the call detail records still waiting and stops the writer.
    async fn close_cdrs(&mut self) {
        if let Some(cdrs) = self.cdrs.take() {
            cdrs.close().await;
        }
    }

    fn write_cdr(&self, record: CallRecord) {
        match &self.cdrs {
            Some(w) => w.record(record),
            None => warn!("call detail record lost: the writer stopped"),
        }
    }

    fn audit_call(&self, call: &Call, event: CallEvent) {
        self.audit_call_with(call, event, None);
    }

    /// As [`Core::audit_call`], with one more detail on the record.
    fn audit_call_with(&self, call: &Call, event: CallEvent, detail: Option<(&str, &str)>) {
        let subject = CallSubject {
            caller: Pii::new(call.caller.expose().as_str()),
            callee: Pii::new(call.callee.expose().as_str()),
            call_id: Pii::new(call.call_id.expose().as_str()),
            network_address: Pii::new(call.caller_ip.expose().as_deref()),
        };
        let mut record = call_record(&event, &subject, unix_now(), &self.settings.audit_source);
        if let Some((key, value)) = detail {
            record = record.with_detail(key, value);
        }
        self.append(&[record]);
    }

    async fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, kind, call))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match kind {
                TimerKind::Expiry => {
                    match self.registrar.expire(system_now()) {
                        Ok(records) => self.append(&records),
                        Err(e) => warn!(error = %e, "registration expiry failed"),
                    }
                    self.timers.push(Reverse((
                        now + Duration::from_secs(1),
                        TimerKind::Expiry,
                        0,
                    )));
                }
                TimerKind::NoAnswer => {
                    if let Some(c) = self.calls.get(&call)
                        && matches!(c.phase, Phase::Ringing)
                    {
                        debug!(call, "no answer");
                        self.send_to_voicemail(call, VoicemailReason::NoAnswer)
                            .await;
                    }
                }
                TimerKind::Mwi => {
                    self.check_subscriptions().await;
                    self.timers
                        .push(Reverse((now + mwi::CHECK_EVERY, TimerKind::Mwi, 0)));
                }
                TimerKind::MailboxLimit => {
                    if let Some(c) = self.calls.get(&call)
                        && matches!(c.phase, Phase::Mailbox { .. })
                    {
                        debug!(call, "mailbox call too long");
                        self.on_mailbox(MailboxEvent::Done(call)).await;
                    }
                }
                TimerKind::MessageFull => {
                    if let Some(c) = self.calls.get(&call)
                        && matches!(c.phase, Phase::Voicemail { .. })
                    {
                        debug!(call, "longest message reached");
                        if let Some(d) = c.caller_dialog {
                            let _ = self.agent.send_in_dialog(d, "BYE", &[], None).await;
                        }
                        self.end_call(call, EndedBy::Pbx).await;
                    }
                }
            }
        }
    }

    async fn on_event(&mut self, event: UaEvent, origin: Option<Origin>) {
        match event {
            UaEvent::Request {
                id,
                request,
                dialog,
            } => self.on_request(id, request, dialog, origin).await,
            UaEvent::Response {
                id,
                response,
                dialog,
            } => self.on_response(id, response, dialog).await,
            UaEvent::Cancelled { invite } => {
                if let Some(&(call, Side::Caller)) = self.by_txn.get(&invite) {
                    debug!(call, "caller cancelled");
                    self.cancel_forks(call).await;
                    self.end_call(call, EndedBy::Caller).await;
                }
            }
            UaEvent::DialogTerminated { dialog, .. } => {
                if let Some((call, side)) = self.by_dialog.remove(&dialog) {
                    self.hang_up_other(call, side).await;
                }
                if self.subs.remove(&dialog).is_some() {
                    debug!("message-summary subscription ended");
                }
            }
            UaEvent::Timeout { id } | UaEvent::TransportError { id } => {
                if let Some(relay) = self.relays.remove(&id) {
                    self.relayed(relay, None).await;
                } else if let Some((object, _)) = self.deliveries.remove(&id) {
                    debug!(object = %object, "held message not delivered; kept");
                }
                if let Some(&(call, Side::Callee)) = self.by_txn.get(&id) {
                    self.fork_refused(call, id, 0, "Request Timeout").await;
                }
            }
            _ => {}
        }
    }

    /// Answers `id` once the batch's audit records are durable.
    fn respond(&mut self, id: TransactionId, status: u16, reason: &str) {
        self.hold(id, status, reason, &[], None, Then::Nothing);
    }

    async fn on_request(
        &mut self,
        id: TransactionId,
        request: Message,
        dialog: Option<DialogId>,
        origin: Option<Origin>,
    ) {
        let Some(origin) = origin else { return };
        let method = request.method();
        if let Some(d) = dialog {
            // In a dialog: BYE is the core's; re-INVITE and UPDATE are not
            // served (the keys of a leg do not change mid-call).
            match method {
                Some(Method::Subscribe) if self.subs.contains_key(&d) => {
                    self.on_resubscribe(id, &request, d).await;
                }
                Some(Method::Subscribe) => {
                    let allow = [("Allow-Events", mwi::EVENT)];
                    self.hold(id, 489, "Bad Event", &allow, None, Then::Nothing);
                }
                Some(Method::Invite | Method::Update) => {
                    self.respond(id, 488, "Not Acceptable Here");
                }
                Some(Method::Ack) => {}
                _ => self.respond(id, 200, "OK"),
            }
            return;
        }
        match method {
            Some(Method::Register) => self.on_register(id, &request, origin).await,
            Some(Method::Invite) => self.on_invite(id, request, origin).await,
            Some(Method::Subscribe) => self.on_subscribe(id, &request, origin).await,
            Some(Method::Message) => self.on_message(id, &request, origin).await,
            Some(Method::Options) => {
                let allow = [("Allow", ALLOW), ("Allow-Events", mwi::EVENT)];
                self.hold(id, 200, "OK", &allow, None, Then::Nothing);
            }
            Some(Method::Ack) => {}
            _ => {
                let allow = [("Allow", ALLOW)];
                self.hold(id, 405, "Method Not Allowed", &allow, None, Then::Nothing);
            }
        }
    }

    async fn on_register(&mut self, id: TransactionId, request: &Message, origin: Origin) {
        let source = RequestSource::new(origin.source, binding_transport(origin.kind));
        match self
            .registrar
            .handle(request, source, system_now(), &*self.users, &*self.rng)
        {
            Ok(handled) => {
                self.append(&handled.records);
                let headers = extra_headers(&handled.response);
                let reason = handled.response.reason().unwrap_or("OK").to_owned();
                let headers = borrowed(&headers);
                // After a 2xx, a user with messages waiting gets them.
                let then = match request.to().ok().as_ref().and_then(|t| {
                    t.uri()
                        .as_sip()
                        .and_then(|u| u.user_decoded())
                        .and_then(|u| String::from_utf8(u.into_owned()).ok())
                }) {
                    Some(user)
                        if (200..300).contains(&handled.status)
                            && !self.held_texts.of(&user).is_empty() =>
                    {
                        Then::Registered {
                            user: Pii::new(user),
                            source: origin.source,
                        }
                    }
                    _ => Then::Nothing,
                };
                self.hold(id, handled.status, &reason, &headers, None, then);
            }
            Err(e) => {
                warn!(error = %e, "registrar failed");
                self.respond(id, 500, "Server Internal Error");
            }
        }
    }

    /// The user who sent `request` (a call, a subscription), by digest;
    /// `None` once the request is answered (a challenge, a refusal).
    fn authorize(
        &mut self,
        id: TransactionId,
        request: &Message,
        origin: Origin,
    ) -> Option<Pii<String>> {
        let source = RequestSource::new(origin.source, binding_transport(origin.kind));
        match self
            .registrar
            .authorize_call(request, source, system_now(), &*self.users, &*self.rng)
        {
            Ok(CallAuthorization::Authenticated { user, records }) => {
                self.append(&records);
                Some(user)
            }
            Ok(CallAuthorization::Refused(handled)) => {
                self.append(&handled.records);
                let headers = extra_headers(&handled.response);
                let reason = handled.response.reason().unwrap_or("Forbidden").to_owned();
                let headers = borrowed(&headers);
                self.hold(id, handled.status, &reason, &headers, None, Then::Nothing);
                None
            }
            Err(e) => {
                warn!(error = %e, "request authentication failed");
                self.respond(id, 500, "Server Internal Error");
                None
            }
        }
    }

    async fn on_invite(&mut self, id: TransactionId, request: Message, origin: Origin) {
        let Some(caller) = self.authorize(id, &request, origin) else {
            return;
        };
        self.next_call += 1;
        let number = self.next_call;
        let dialled = request
            .request_uri()
            .and_then(Result::ok)
            .as_ref()
            .and_then(user_of);
        // The voicemail number reaches the caller's own mailbox.
        let to_mailbox = dialled.as_deref() == Some(self.settings.voicemail_number.as_str());
        let callee = if to_mailbox {
            Some(caller.expose().clone())
        } else {
            dialled.filter(|c| self.users.user(c).is_some())
        };
        let Ok(call_id) = request.call_id().map(str::to_owned) else {
            self.respond(id, 400, "Bad Request");
            return;
        };
        let Some(callee) = callee else {
            let call = CallSubject {
                caller: Pii::new(caller.expose().as_str()),
                callee: Pii::new(""),
                call_id: Pii::new(call_id.as_str()),
                network_address: Pii::new(None),
            };
            let now = unix_now();
            self.append(&[call_record(
                &CallEvent::Refused { status: 404 },
                &call,
                now,
                &self.settings.audit_source,
            )]);
            self.write_cdr(CallRecord {
                call_id: Pii::new(call_id),
                caller: caller.clone(),
                callee: Pii::new(String::new()),
                caller_address: Pii::new(Some(origin.source.ip().to_string())),
                started_at: now,
                answered_at: None,
                ended_at: now,
                talk_secs: 0,
                disposition: Disposition::Refused { status: 404 },
                ended_by: Ender::Pbx,
            });
            self.respond(id, 404, "Not Found");
            return;
        };
        let mut call = Call {
            number,
            caller,
            callee: Pii::new(callee.clone()),
            call_id: Pii::new(call_id),
            caller_ip: Pii::new(Some(origin.source.ip().to_string())),
            invite: id,
            caller_dialog: None,
            caller_srtp: None,
            caller_answer: String::new(),
            caller_dtmf: None,
            caller_peer: MediaPeer::new(origin.source),
            caller_ports: None,
            callee_leg: None,
            forks: Vec::new(),
            refusals: Vec::new(),
            phase: Phase::Ringing,
            started_at: unix_now(),
            answered_at: None,
            disposition: None,
        };
        // The caller's offer: SDES-SRTP audio only.
        let offer = match SessionDescription::parse_bytes(request.body()) {
            Ok(o) => o,
            Err(_) => {
                self.refuse_new(&call, 488);
                self.respond(id, 488, "Not Acceptable Here");
                return;
            }
        };
        let Ok(peer) = MediaPeer::audio_of(&offer) else {
            self.refuse_new(&call, 488);
            self.respond(id, 488, "Not Acceptable Here");
            return;
        };
        // No media port pair left (every one held by a live call) is the
        // PBX's overload, not a fault of the offer: 503, try again later
        // (RFC 3261 section 21.5.4).
        let ports = match self.pool.bind().await {
            Ok(ports) => ports,
            Err(e) => {
                debug!(call = number, error = %e, "no media ports");
                self.refuse_new(&call, 503);
                let retry = [("Retry-After", "5")];
                self.hold(id, 503, "Service Unavailable", &retry, None, Then::Nothing);
                return;
            }
        };
        let local = LocalMedia::new(
            &self.settings.media_ip.to_string(),
            ports.port(),
            &number.to_string(),
        );
        let answered = answer_audio(
            &offer,
            &AudioCapabilities::new(vec![Codec::pcmu()]),
            &local,
            &*self.rng,
            &SdesOptions::new(),
        );
        let Ok(answered) = answered else {
            self.refuse_new(&call, 488);
            self.respond(id, 488, "Not Acceptable Here");
            return;
        };
        let Some(srtp) = answered.srtp else {
            self.refuse_new(&call, 488);
            self.respond(id, 488, "Not Acceptable Here");
            return;
        };
        call.caller_srtp = Some(srtp);
        call.caller_answer = answered.answer.sdp.to_string();
        call.caller_dtmf = answered
            .answer
            .audio
            .as_ref()
            .and_then(|a| a.telephone_event);
        call.caller_peer = peer;
        call.caller_ports = Some(ports);
        self.audit_call(&call, CallEvent::Started);
        self.by_txn.insert(id, (number, Side::Caller));
        self.calls.insert(number, call);
        debug!(call = number, txn = %id, "call started");
        if to_mailbox {
            self.open_mailbox(number).await;
            return;
        }

        // Every live phone of the callee rings at once (forking, RFC 3261
        // section 16.7); the first to answer takes the call.
        let bindings: Vec<_> = self
            .registrar
            .location()
            .lookup(&callee, unix_now())
            .iter()
            .take(MAX_FORKS)
            .map(|b| (b.contact.expose().clone(), *b.source.expose(), b.transport))
            .collect();
        for (contact, source, transport) in bindings {
            if let Err(e) = self
                .call_callee(number, &callee, &contact, source, transport)
                .await
            {
                debug!(call = number, error = %e, "callee leg not started");
            }
        }
        if self.calls.get(&number).is_none_or(|c| c.forks.is_empty()) {
            self.send_to_voicemail(number, VoicemailReason::Unreachable)
                .await;
            return;
        }
        self.timers.push(Reverse((
            Instant::now() + self.settings.no_answer,
            TimerKind::NoAnswer,
            number,
        )));
    }

    async fn call_callee(
        &mut self,
        number: u64,
        callee: &str,
        contact: &str,
        source: SocketAddr,
        transport: BindingTransport,
    ) -> Result<(), CalleeError> {
        let ports = self.pool.bind().await?;
        let lines =
            offer_cryptos(&self.settings.suites, &*self.rng).map_err(|_| CalleeError::Offer)?;
        let ip = self.settings.media_ip;
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let mut sdp = format!(
            "v=0\r\no=- {number} 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
             m=audio {} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
            ports.port()
        );
        for l in &lines {
            sdp.push_str(&format!("a=crypto:{l}\r\n"));
        }
        let Some(call) = self.calls.get(&number) else {
            return Err(CalleeError::Gone);
        };
        let domain = &self.settings.domain;
        let kind = kinds_of(transport);
        let mut out = Outgoing::new(
            "INVITE",
            contact,
            &format!("<sips:{}@{domain}>", call.caller.expose()),
            &format!("<sips:{callee}@{domain}>"),
            source,
            kind.0,
        );
        out.body = Some(("application/sdp".to_owned(), Bytes::from(sdp)));
        // Over the connection the phone registered on (the transport's
        // route for its address).
        let invite = self
            .agent
            .send_request(out, Destination::new(kind.1, source))
            .await
            .map_err(|_| CalleeError::Send)?;
        self.by_txn.insert(invite, (number, Side::Callee));
        if let Some(call) = self.calls.get_mut(&number) {
            call.forks.push(CalleeLeg {
                invite,
                lines,
                ports: Some(ports),
                dialog: None,
            });
        }
        Ok(())
    }

    /// Cancels every fork still ringing (their transactions stay mapped:
    /// a `200` crossing the CANCEL is hung up when it arrives).
    async fn cancel_forks(&mut self, number: u64) {
        let forks = match self.calls.get_mut(&number) {
            Some(call) => std::mem::take(&mut call.forks),
            None => return,
        };
        for leg in forks {
            let _ = self.agent.cancel(leg.invite).await;
        }
    }

    /// Fork `invite` of call `number` refused (`status`; 0 when it got no
    /// answer at all). Once every fork has, the call goes to voicemail if
    /// any phone was busy, unavailable or unreachable, and otherwise the
    /// caller gets the lowest refusal (RFC 3261 section 16.7, step 6).
    async fn fork_refused(
        &mut self,
        number: u64,
        invite: TransactionId,
        status: u16,
        reason: &str,
    ) {
        let Some(call) = self.calls.get_mut(&number) else {
            return;
        };
        if !matches!(call.phase, Phase::Ringing) {
            return;
        }
        let Some(at) = call.forks.iter().position(|l| l.invite == invite) else {
            return;
        };
        call.forks.remove(at);
        call.refusals.push(status);
        if !call.forks.is_empty() {
            return;
        }
        let refusals = std::mem::take(&mut call.refusals);
        if refusals
            .iter()
            .any(|s| matches!(s, 486 | 480 | 408 | 603 | 600))
        {
            self.send_to_voicemail(number, VoicemailReason::Busy).await;
            return;
        }
        if refusals.contains(&0) {
            self.send_to_voicemail(number, VoicemailReason::Unreachable)
                .await;
            return;
        }
        let status = refusals.iter().copied().min().unwrap_or(500);
        let invite = call.invite;
        call.disposition = Some(Disposition::Refused { status });
        if let Some(call) = self.calls.get(&number) {
            self.audit_call(call, CallEvent::Refused { status });
        }
        self.hold(invite, status, reason, &[], None, Then::Nothing);
        self.end_call(number, EndedBy::Callee).await;
    }

    async fn on_response(
        &mut self,
        id: TransactionId,
        response: Message,
        dialog: Option<DialogId>,
    ) {
        let status = response.status().unwrap_or(0);
        if status >= 200 {
            if let Some(relay) = self.relays.remove(&id) {
                self.relayed(relay, Some(status)).await;
                return;
            }
            if let Some((object, text)) = self.deliveries.remove(&id) {
                self.delivered(object, text, status).await;
                return;
            }
        }
        // The ringing fork this answers.
        let ringing = match self.by_txn.get(&id) {
            Some(&(number, Side::Callee)) => self
                .calls
                .get(&number)
                .filter(|c| matches!(c.phase, Phase::Ringing))
                .filter(|c| c.forks.iter().any(|l| l.invite == id)),
            _ => None,
        };
        let Some(call) = ringing else {
            // A phone answering after its call moved on (another phone
            // answered, voicemail took it, it was cancelled or ended): the
            // core ACKed the 200; hang up that dialog. (A 2xx to a NOTIFY
            // arrives in its subscription's dialog: not this case.)
            if (200..300).contains(&status)
                && response.cseq().is_ok_and(|c| c.method == Method::Invite)
                && let Some(d) = dialog
            {
                let _ = self.agent.send_in_dialog(d, "BYE", &[], None).await;
            }
            return;
        };
        let number = call.number;
        match status {
            180 | 183 => {
                let invite = call.invite;
                self.respond(invite, 180, "Ringing");
            }
            200..=299 => self.answered(number, id, response, dialog).await,
            300.. => {
                let reason = response.reason().unwrap_or("Call Failed").to_owned();
                self.fork_refused(number, id, status, &reason).await;
            }
            _ => {}
        }
    }

    async fn answered(
        &mut self,
        number: u64,
        invite: TransactionId,
        response: Message,
        callee_dialog: Option<DialogId>,
    ) {
        // The fork that answered takes the call; the others are cancelled.
        let Some(call) = self.calls.get_mut(&number) else {
            return;
        };
        let Some(at) = call.forks.iter().position(|l| l.invite == invite) else {
            return;
        };
        call.callee_leg = Some(call.forks.remove(at));
        self.cancel_forks(number).await;
        let Some(call) = self.calls.get_mut(&number) else {
            return;
        };
        let Some(leg) = call.callee_leg.as_mut() else {
            return;
        };
        let answer = SessionDescription::parse_bytes(response.body());
        let keyed = answer.as_ref().ok().and_then(|a| {
            let srtp = offerer_srtp(&leg.lines, a, &SdesOptions::new()).ok()?;
            let peer = MediaPeer::audio_of(a).ok()?;
            Some((srtp, peer))
        });
        let (Some((callee_srtp, callee_peer)), Some(caller_srtp), Some(a_ports), Some(b_ports)) = (
            keyed,
            call.caller_srtp.take(),
            call.caller_ports.take(),
            leg.ports.take(),
        ) else {
            // The callee answered with something unusable: end its leg and
            // refuse the caller.
            debug!(call = number, "callee's answer unusable");
            let invite = call.invite;
            call.disposition = Some(Disposition::Refused { status: 488 });
            if let Some(call) = self.calls.get(&number) {
                self.audit_call(call, CallEvent::Refused { status: 488 });
            }
            self.respond(invite, 488, "Not Acceptable Here");
            self.end_call(number, EndedBy::Pbx).await;
            return;
        };
        let relay = MediaRelay::new(
            caller_srtp,
            call.caller_peer,
            callee_srtp,
            callee_peer,
            RelayConfig::default(),
        );
        let recording = if self
            .settings
            .recording
            .records(call.caller.expose(), call.callee.expose())
        {
            let labels = [
                call.caller.expose().clone(),
                call.callee.expose().clone(),
                call.call_id.expose().clone(),
            ];
            self.start_recording(number, &labels)
        } else {
            None
        };
        let recorded = recording.as_ref().map(|(id, _)| id.clone());
        let relay = spawn_relay(relay, a_ports, b_ports, recording.map(|(_, r)| r));
        let Some(call) = self.calls.get_mut(&number) else {
            return;
        };
        call.phase = Phase::Talking {
            relay,
            since: Instant::now(),
        };
        call.answered_at = Some(unix_now());
        call.disposition = Some(Disposition::Answered);
        let invite = call.invite;
        let sdp = call.caller_answer.clone();
        if let Some(d) = callee_dialog
            && let Some(call) = self.calls.get_mut(&number)
            && let Some(leg) = call.callee_leg.as_mut()
        {
            leg.dialog = Some(d);
            self.by_dialog.insert(d, (number, Side::Callee));
        }
        // The answer is audited before the caller hears of it, with the
        // recording's id when the call is recorded.
        if let Some(call) = self.calls.get(&number) {
            let detail = recorded.as_deref().map(|id| ("recording", id));
            self.audit_call_with(call, CallEvent::Answered, detail);
        }
        let then = Then::CallerDialog { number };
        self.hold(invite, 200, "OK", &[], Some(Bytes::from(sdp)), then);
    }

    /// Starts recording call `number` (`labels`: caller, callee, Call-ID)
    /// into a new vault object, written by a blocking task; returns the
    /// object's id and what the relay needs.
    fn start_recording(
        &mut self,
        number: u64,
        labels: &[String; 3],
    ) -> Option<(String, RecordedRelay)> {
        let mut ssrc = [0u8; 4];
        if self.rng.fill(&mut ssrc).is_err() {
            warn!(call = number, "call not recorded: the random source failed");
            return None;
        }
        let Ok(token) = random_token(&*self.rng, 12) else {
            warn!(call = number, "call not recorded: the random source failed");
            return None;
        };
        let id = format!("{RECORDING_PREFIX}{token}");
        let now = unix_now();
        let [caller, callee, call_id] = labels;
        let metadata = crate::recording::metadata(
            &id,
            caller,
            callee,
            call_id,
            now,
            now.saturating_add(self.settings.recording.retention.as_secs()),
        );
        let config = CallRecorderConfig::new(G711::Pcmu)
            .with_max_duration(self.settings.recording.max_duration);
        let (sink, tapped) = mpsc::channel(4096);
        let vault = self.vault.clone();
        let rng = self.rng.clone();
        let done = self.vm_done.clone();
        let object = id.clone();
        self.writing += 1;
        tokio::task::spawn_blocking(move || {
            let result = record_call(&vault, &*rng, metadata, config, tapped);
            let _ = done.blocking_send(Stored {
                call: number,
                id: object,
                mailbox: None,
                result,
            });
        });
        let relay = RecordedRelay {
            sink,
            announcement: self.settings.recording.announcement.clone(),
            ssrc: u32::from_be_bytes(ssrc),
        };
        Some((id, relay))
    }

    /// A media endpoint of the PBX's own on call `number`'s leg A (with
    /// the caller's keys), sending `source`; what the caller sends comes
    /// out of the receiver. When it cannot start, the caller gets `500` and
    /// the call ends.
    async fn own_endpoint(
        &mut self,
        number: u64,
        source: Source,
    ) -> Option<(MediaTask, mpsc::Receiver<Vec<u8>>)> {
        let call = self.calls.get_mut(&number)?;
        let (Some(srtp), Some(ports)) = (call.caller_srtp.take(), call.caller_ports.take()) else {
            return None;
        };
        let mut ssrc = [0u8; 4];
        let _ = self.rng.fill(&mut ssrc);
        let (sink, heard) = mpsc::channel(4096);
        let media = spawn_endpoint(
            srtp,
            ports,
            EndpointMedia {
                law: G711::Pcmu,
                ssrc: u32::from_be_bytes(ssrc),
                source,
                peer: call.caller_peer.rtp,
                dtmf: None,
            },
            Some(sink),
        );
        match media {
            Ok(media) => Some((media, heard)),
            Err(e) => {
                debug!(call = number, error = %e, "media endpoint not started");
                let invite = call.invite;
                self.respond(invite, 500, "Server Internal Error");
                self.end_call(number, EndedBy::Pbx).await;
                None
            }
        }
    }

    /// Answers call `number` (to the voicemail number) with the caller's
    /// own mailbox: a media endpoint playing what the menu queues, and a
    /// task running the menu over the digits the phone sends.
    async fn open_mailbox(&mut self, number: u64) {
        let playout = Playout::new();
        let source = Source::Playout(playout.clone());
        let Some((media, heard)) = self.own_endpoint(number, source).await else {
            return;
        };
        let Some(call) = self.calls.get_mut(&number) else {
            return;
        };
        call.phase = Phase::Mailbox {
            media,
            since: Instant::now(),
        };
        call.answered_at = Some(unix_now());
        call.disposition = Some(Disposition::Mailbox);
        let invite = call.invite;
        let sdp = call.caller_answer.clone();
        let user = call.caller.clone();
        let session = MailboxCall {
            number,
            messages: self.mailboxes.of(user.expose()),
            pin: self.users.user(user.expose()).and_then(|u| u.voicemail_pin),
            user,
            address: call.caller_ip.clone(),
            vault: self.vault.clone(),
            audit: self.audit.clone(),
            policy: self.policy.clone(),
            lockout: self.pin_lockout.clone(),
            source: self.settings.audit_source.clone(),
            dtmf: call.caller_dtmf,
            playout,
            heard,
            events: self.mailbox_events.clone(),
        };
        tokio::spawn(session.run());
        self.timers.push(Reverse((
            Instant::now() + MAILBOX_LIMIT,
            TimerKind::MailboxLimit,
            number,
        )));
        if let Some(call) = self.calls.get(&number) {
            self.audit_call(call, CallEvent::Answered);
        }
        let then = Then::CallerDialog { number };
        self.hold(invite, 200, "OK", &[], Some(Bytes::from(sdp)), then);
    }

    async fn on_mailbox(&mut self, event: MailboxEvent) {
        match event {
            MailboxEvent::Deleted(id) => {
                self.mailboxes.remove(&id);
                self.notify_changed().await;
            }
            MailboxEvent::Done(number) => {
                let Some(call) = self.calls.get(&number) else {
                    return;
                };
                if let Some(d) = call.caller_dialog {
                    self.by_dialog.remove(&d);
                    let _ = self.agent.send_in_dialog(d, "BYE", &[], None).await;
                }
                self.end_call(number, EndedBy::Pbx).await;
            }
        }
    }

    async fn send_to_voicemail(&mut self, number: u64, reason: VoicemailReason) {
        let Some(call) = self.calls.get_mut(&number) else {
            return;
        };
        if !matches!(call.phase, Phase::Ringing) {
            return;
        }
        // The callee's phones stop ringing (a 200 crossing the CANCEL is
        // hung up when it arrives).
        self.cancel_forks(number).await;
        let source = Source::Samples(Arc::new(prompt()));
        let Some((media, heard)) = self.own_endpoint(number, source).await else {
            return;
        };
        let Some(call) = self.calls.get_mut(&number) else {
            return;
        };
        call.phase = Phase::Voicemail {
            media,
            since: Instant::now(),
        };
        call.answered_at = Some(unix_now());
        call.disposition = Some(Disposition::Voicemail {
            reason: reason.into(),
        });
        let invite = call.invite;
        let sdp = call.caller_answer.clone();
        // The message goes into the vault as it arrives.
        let id = format!(
            "{}{}",
            mwi::VOICEMAIL_PREFIX,
            random_token(&*self.rng, 12).unwrap_or_else(|_| number.to_string())
        );
        let object = id.clone();
        let mailbox = call.callee.expose().clone();
        let now = unix_now();
        let metadata = Metadata::new(
            id,
            G711::Pcmu.media_type(),
            now,
            now.saturating_add(self.settings.voicemail_retention.as_secs()),
        )
        .label("caller", call.caller.expose().as_str())
        .label("callee", call.callee.expose().as_str())
        .label("call_id", call.call_id.expose().as_str());
        let config = RecorderConfig::new(G711::Pcmu).with_max_duration(self.settings.max_message);
        let vault = self.vault.clone();
        let rng = self.rng.clone();
        let done = self.vm_done.clone();
        self.writing += 1;
        tokio::task::spawn_blocking(move || {
            let result = record(&vault, &*rng, metadata, config, heard);
            let _ = done.blocking_send(Stored {
                call: number,
                id: object,
                mailbox: Some(mailbox),
                result,
            });
        });
        self.timers.push(Reverse((
            Instant::now() + self.settings.max_message + Duration::from_secs(1),
            TimerKind::MessageFull,
            number,
        )));
        if let Some(call) = self.calls.get(&number) {
            self.audit_call(call, CallEvent::ToVoicemail { reason });
        }
        let then = Then::CallerDialog { number };
        self.hold(invite, 200, "OK", &[], Some(Bytes::from(sdp)), then);
    }

    // ---- text messages (RFC 3428) -------------------------------------

    fn audit_text(&self, event: &MessageEvent<'_>, text: &Text) {
        let subject = MessageSubject {
            sender: Pii::new(text.sender.expose().as_str()),
            recipient: Pii::new(text.recipient.expose().as_str()),
            call_id: Pii::new(text.call_id.expose().as_str()),
            network_address: Pii::new(text.address.expose().as_deref()),
        };
        self.append(&[message_record(
            event,
            &subject,
            unix_now(),
            &self.settings.audit_source,
        )]);
    }

    async fn on_message(&mut self, id: TransactionId, request: &Message, origin: Origin) {
        let Some(sender) = self.authorize(id, request, origin) else {
            return;
        };
        let Ok(call_id) = request.call_id().map(str::to_owned) else {
            self.respond(id, 400, "Bad Request");
            return;
        };
        let recipient = request
            .request_uri()
            .and_then(Result::ok)
            .as_ref()
            .and_then(user_of)
            .filter(|c| self.users.user(c).is_some());
        let mut text = Text {
            sender,
            recipient: Pii::new(recipient.clone().unwrap_or_default()),
            call_id: Pii::new(call_id),
            address: Pii::new(Some(origin.source.ip().to_string())),
            content_type: String::new(),
            body: Bytes::new(),
        };
        let refused = match (
            recipient.as_ref(),
            request.header(HeaderName::ContentType),
            request.body().len(),
        ) {
            (None, _, _) => Some((404, "Not Found")),
            (_, None, _) | (_, _, 0) => Some((400, "Empty Message")),
            (_, _, n) if n > MAX_TEXT => Some((413, "Request Entity Too Large")),
            (Some(_), Some(ct), _) => {
                text.content_type = ct.to_owned();
                None
            }
        };
        if let Some((status, reason)) = refused {
            self.audit_text(&MessageEvent::Refused { status }, &text);
            self.respond(id, status, reason);
            return;
        }
        text.body = Bytes::copy_from_slice(request.body());
        match self.send_text(&text, None).await {
            Some(out) => {
                self.relays.insert(out, Relay { incoming: id, text });
            }
            // No phone of the recipient: held for them.
            None => self.hold_text(id, text).await,
        }
    }

    /// Sends `text` to the recipient's phone over the connection it
    /// registered on: the live binding registered from `from` if given and
    /// found, else the first; `None` without one.
    async fn send_text(&mut self, text: &Text, from: Option<SocketAddr>) -> Option<TransactionId> {
        let recipient = text.recipient.expose();
        let bindings = self.registrar.location().lookup(recipient, unix_now());
        let (contact, source, transport) = from
            .and_then(|f| bindings.iter().find(|b| *b.source.expose() == f))
            .or_else(|| bindings.first())
            .map(|b| (b.contact.expose().clone(), *b.source.expose(), b.transport))?;
        let kind = kinds_of(transport);
        let domain = &self.settings.domain;
        let mut out = Outgoing::new(
            "MESSAGE",
            &contact,
            &format!("<sips:{}@{domain}>", text.sender.expose()),
            &format!("<sips:{recipient}@{domain}>"),
            source,
            kind.0,
        );
        out.body = Some((text.content_type.clone(), text.body.clone()));
        match self
            .agent
            .send_request(out, Destination::new(kind.1, source))
            .await
        {
            Ok(id) => Some(id),
            Err(e) => {
                debug!(error = %e, "message not passed on");
                None
            }
        }
    }

    /// The recipient's phone answered `status` (`None`: it did not answer):
    /// 2xx tells the sender 200; an absent or unreachable phone has the
    /// message held; other refusals go back to the sender.
    async fn relayed(&mut self, relay: Relay, status: Option<u16>) {
        match status {
            Some(s) if (200..300).contains(&s) => {
                self.audit_text(&MessageEvent::Relayed, &relay.text);
                self.respond(relay.incoming, 200, "OK");
            }
            None | Some(408 | 480 | 503) => self.hold_text(relay.incoming, relay.text).await,
            Some(s) => {
                self.audit_text(&MessageEvent::Refused { status: s }, &relay.text);
                self.respond(relay.incoming, s, "Not Delivered");
            }
        }
    }

    /// Seals `text` in the vault for its offline recipient and answers the
    /// sender 202 (RFC 3428 section 7); 500 if the vault refuses it.
    async fn hold_text(&mut self, incoming: TransactionId, text: Text) {
        let object = format!(
            "{TEXT_PREFIX}{}",
            random_token(&*self.rng, 12).unwrap_or_else(|_| unix_now().to_string())
        );
        let now = unix_now();
        let metadata = Metadata::new(
            object.clone(),
            text.content_type.clone(),
            now,
            now.saturating_add(self.settings.voicemail_retention.as_secs()),
        )
        .label("kind", "message")
        .label("sender", text.sender.expose().as_str())
        .label("recipient", text.recipient.expose().as_str())
        .label("call_id", text.call_id.expose().as_str());
        let vault = self.vault.clone();
        let rng = self.rng.clone();
        let body = text.body.clone();
        let put =
            tokio::task::spawn_blocking(move || vault.put(&*rng, metadata, &body).map(|_| ()))
                .await;
        match put {
            Ok(Ok(())) => {
                self.audit_text(&MessageEvent::Held { object: &object }, &text);
                self.held_texts
                    .insert(object, text.recipient.expose().clone());
                self.respond(incoming, 202, "Accepted");
            }
            Ok(Err(e)) => {
                warn!(error = %e, "message not held");
                self.audit_text(&MessageEvent::Refused { status: 500 }, &text);
                self.respond(incoming, 500, "Server Internal Error");
            }
            Err(e) => {
                warn!(error = %e, "message not held");
                self.audit_text(&MessageEvent::Refused { status: 500 }, &text);
                self.respond(incoming, 500, "Server Internal Error");
            }
        }
    }

    /// Sends `user`'s held messages to the phone that registered from
    /// `source`; each is removed from the vault once the phone answers 2xx.
    async fn deliver_held(&mut self, user: &Pii<String>, source: SocketAddr) {
        let pending: HashSet<String> = self.deliveries.values().map(|(o, _)| o.clone()).collect();
        for object in self.held_texts.of(user.expose()) {
            if pending.contains(&object) {
                continue;
            }
            let vault = self.vault.clone();
            let id = object.clone();
            let read = tokio::task::spawn_blocking(move || vault.get(&id)).await;
            let (meta, body) = match read {
                Ok(Ok(got)) => got,
                Ok(Err(carevox::vault::Error::NotFound)) => {
                    // Purged past its retention, or deleted.
                    self.held_texts.remove(&object);
                    continue;
                }
                Ok(Err(e)) => {
                    warn!(object = %object, error = %e, "held message not readable; kept");
                    continue;
                }
                Err(e) => {
                    warn!(object = %object, error = %e, "held message not read; kept");
                    continue;
                }
            };
            let (Some(sender), Some(call_id)) =
                (meta.get_label("sender"), meta.get_label("call_id"))
            else {
                warn!(object = %object, "held message without its sender; kept");
                continue;
            };
            let text = Text {
                sender: Pii::new(sender.to_owned()),
                recipient: user.clone(),
                call_id: Pii::new(call_id.to_owned()),
                address: Pii::new(None),
                content_type: meta.content_type.clone(),
                body: Bytes::from(body),
            };
            match self.send_text(&text, Some(source)).await {
                Some(out) => {
                    self.deliveries.insert(out, (object, text));
                }
                None => break,
            }
        }
    }

    /// The phone answered a held message: on 2xx it is audited as read and
    /// removed from the vault (its key first); otherwise kept.
    async fn delivered(&mut self, object: String, text: Text, status: u16) {
        if !(200..300).contains(&status) {
            debug!(object = %object, status, "held message refused by the phone; kept");
            return;
        }
        self.audit_text(&MessageEvent::Delivered { object: &object }, &text);
        self.held_texts.remove(&object);
        let vault = self.vault.clone();
        let id = object.clone();
        let removed = tokio::task::spawn_blocking(move || {
            vault.shred(&id)?;
            match vault.delete(&id) {
                Ok(()) | Err(carevox::vault::Error::NotFound) => Ok(()),
                Err(e) => Err(e),
            }
        })
        .await;
        match removed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(object = %object, error = %e, "delivered message not removed"),
            Err(e) => warn!(object = %object, error = %e, "delivered message not removed"),
        }
    }

    // ---- message waiting (RFC 3842) ------------------------------------

    async fn on_subscribe(&mut self, id: TransactionId, request: &Message, origin: Origin) {
        if !is_message_summary(request) {
            let allow = [("Allow-Events", mwi::EVENT)];
            self.hold(id, 489, "Bad Event", &allow, None, Then::Nothing);
            return;
        }
        let Some(user) = self.authorize(id, request, origin) else {
            return;
        };
        // A phone watches its own mailbox only.
        let target = request
            .request_uri()
            .and_then(Result::ok)
            .as_ref()
            .and_then(user_of);
        if target.as_deref() != Some(user.expose().as_str()) {
            self.respond(id, 403, "Forbidden");
            return;
        }
        if request.contacts().next().is_none() {
            self.respond(id, 400, "Missing Contact");
            return;
        }
        let Some(expires) = self.granted(id, request) else {
            return;
        };
        let Ok(to) = request.to() else {
            self.respond(id, 400, "Bad To");
            return;
        };
        let account = to.uri().as_str().to_owned();
        let value = expires.to_string();
        let then = Then::Subscribed {
            mailbox: user,
            account: Pii::new(account),
            expires,
            dialog: None,
        };
        self.hold(id, 200, "OK", &[("Expires", &value)], None, then);
    }

    /// A refresh (or, with `Expires: 0`, the end) of subscription `d`.
    async fn on_resubscribe(&mut self, id: TransactionId, request: &Message, d: DialogId) {
        let Some(expires) = self.granted(id, request) else {
            return;
        };
        let Some(sub) = self.subs.get(&d) else {
            return;
        };
        let then = Then::Subscribed {
            mailbox: sub.mailbox.clone(),
            account: sub.account.clone(),
            expires,
            dialog: Some(d),
        };
        let value = expires.to_string();
        self.hold(id, 200, "OK", &[("Expires", &value)], None, then);
    }

    /// The subscription length granted to `request`, or `None` once it is
    /// answered with an error (a bad `Expires`, or one too brief).
    fn granted(&mut self, id: TransactionId, request: &Message) -> Option<u32> {
        let asked = request.header_values_by_name("Expires").next();
        match mwi::requested_expires(asked) {
            Err(mwi::BadExpires) => {
                self.respond(id, 400, "Bad Expires");
                None
            }
            Ok(0) => Some(0),
            Ok(n) if n < mwi::MIN_EXPIRES => {
                let min = mwi::MIN_EXPIRES.to_string();
                let headers = [("Min-Expires", min.as_str())];
                self.hold(id, 423, "Interval Too Brief", &headers, None, Then::Nothing);
                None
            }
            Ok(n) => Some(n.min(mwi::DEFAULT_EXPIRES)),
        }
    }

    /// The 200 to a SUBSCRIBE left: the subscription starts, is refreshed
    /// or ends, and the phone gets the mailbox's state at once (RFC 6665
    /// section 4.2.1.2).
    async fn subscribed(
        &mut self,
        d: DialogId,
        mailbox: Pii<String>,
        account: Pii<String>,
        expires: u32,
    ) {
        let count = self
            .counts()
            .await
            .and_then(|c| c.get(mailbox.expose()).copied())
            .unwrap_or(0);
        if expires == 0 {
            self.subs.remove(&d);
            self.send_summary(d, &account, count, "terminated;reason=timeout")
                .await;
            let _ = self.agent.forget_dialog(d).await;
            return;
        }
        let sub = Subscription {
            mailbox,
            account: account.clone(),
            expires_at: Instant::now() + Duration::from_secs(u64::from(expires)),
            last_sent: Some(count),
        };
        self.subs.insert(d, sub);
        self.send_summary(d, &account, count, &format!("active;expires={expires}"))
            .await;
    }

    /// Voicemail counts by mailbox: the index, less what left the vault.
    /// `None` (logged) when the vault cannot be listed.
    async fn counts(&mut self) -> Option<HashMap<String, u32>> {
        let vault = self.vault.clone();
        match tokio::task::spawn_blocking(move || vault.list()).await {
            Ok(Ok(list)) => {
                let live = list.into_iter().map(|o| o.id).collect();
                Some(self.mailboxes.counts(&live))
            }
            Ok(Err(e)) => {
                warn!(error = %e, "vault not listed for message waiting");
                None
            }
            Err(e) => {
                warn!(error = %e, "vault not listed for message waiting");
                None
            }
        }
    }

    async fn send_summary(&mut self, d: DialogId, account: &Pii<String>, count: u32, state: &str) {
        let body = mwi::summary(account.expose(), count);
        let headers = [("Event", mwi::EVENT), ("Subscription-State", state)];
        let sent = self
            .agent
            .send_in_dialog(
                d,
                "NOTIFY",
                &headers,
                Some((mwi::CONTENT_TYPE, Bytes::from(body))),
            )
            .await;
        if let Err(e) = sent {
            debug!(error = %e, "NOTIFY not sent");
        }
    }

    /// NOTIFYs every subscription whose mailbox's count changed.
    async fn notify_changed(&mut self) {
        if self.subs.is_empty() {
            return;
        }
        let Some(counts) = self.counts().await else {
            return;
        };
        let now = Instant::now();
        let mut changed = Vec::new();
        for (d, sub) in &mut self.subs {
            let count = counts.get(sub.mailbox.expose()).copied().unwrap_or(0);
            if sub.last_sent != Some(count) {
                sub.last_sent = Some(count);
                let left = sub.expires_at.saturating_duration_since(now).as_secs();
                changed.push((*d, sub.account.clone(), count, left));
            }
        }
        for (d, account, count, left) in changed {
            self.send_summary(d, &account, count, &format!("active;expires={left}"))
                .await;
        }
    }

    /// Ends the subscriptions past their time, then tells the others of
    /// changed counts (a deletion or a purge).
    async fn check_subscriptions(&mut self) {
        let now = Instant::now();
        let expired: Vec<DialogId> = self
            .subs
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(d, _)| *d)
            .collect();
        for d in expired {
            if let Some(sub) = self.subs.remove(&d) {
                let count = sub.last_sent.unwrap_or(0);
                self.send_summary(d, &sub.account, count, "terminated;reason=timeout")
                    .await;
                let _ = self.agent.forget_dialog(d).await;
            }
        }
        self.notify_changed().await;
    }

    /// At shutdown: each subscriber is told to subscribe again later.
    async fn end_subscriptions(&mut self) {
        for (d, sub) in std::mem::take(&mut self.subs) {
            let count = sub.last_sent.unwrap_or(0);
            self.send_summary(d, &sub.account, count, "terminated;reason=deactivated")
                .await;
            let _ = self.agent.forget_dialog(d).await;
        }
    }

    async fn voicemail_stored(&mut self, stored: Stored) {
        self.writing = self.writing.saturating_sub(1);
        let number = stored.call;
        match (stored.result, stored.mailbox) {
            (Ok(len), Some(mailbox)) => {
                info!(call = number, bytes = len, "voicemail stored");
                self.mailboxes.insert(stored.id, mailbox);
                self.notify_changed().await;
            }
            (Ok(len), None) => info!(call = number, bytes = len, "call recording stored"),
            (Err(e), Some(_)) => warn!(call = number, error = %e, "voicemail not stored"),
            (Err(e), None) => warn!(call = number, error = %e, "call recording not stored"),
        }
    }

    /// Waits (at most [`SEAL_WAIT`]) for the voicemail and recordings being
    /// written to be sealed, so that a shutdown keeps them.
    async fn wait_for_writers(&mut self, done: &mut mpsc::Receiver<Stored>) {
        let deadline = Instant::now() + SEAL_WAIT;
        while self.writing > 0 {
            match tokio::time::timeout_at(deadline, done.recv()).await {
                Ok(Some(stored)) => self.voicemail_stored(stored).await,
                Ok(None) => break,
                Err(_) => {
                    warn!(
                        unsealed = self.writing,
                        "shutdown: recordings still being written"
                    );
                    break;
                }
            }
        }
    }

    /// One side ended: end the other.
    async fn hang_up_other(&mut self, number: u64, side: Side) {
        let Some(call) = self.calls.get(&number) else {
            return;
        };
        let other = match side {
            Side::Caller => call.callee_leg.as_ref().and_then(|l| l.dialog),
            Side::Callee => call.caller_dialog,
        };
        if let Some(d) = other {
            self.by_dialog.remove(&d);
            let _ = self.agent.send_in_dialog(d, "BYE", &[], None).await;
        }
        let by = match side {
            Side::Caller => EndedBy::Caller,
            Side::Callee => EndedBy::Callee,
        };
        self.end_call(number, by).await;
    }

    /// Forgets a call: media stopped (the voicemail's sink closes, which
    /// seals the message), ports released, audited.
    async fn end_call(&mut self, number: u64, by: EndedBy) {
        let Some(mut call) = self.calls.remove(&number) else {
            return;
        };
        let phase = std::mem::replace(&mut call.phase, Phase::Ended);
        let duration = match phase {
            Phase::Talking { relay, since } => {
                let stats = relay.stop().await;
                debug!(
                    call = number,
                    a_received = stats.a.received,
                    b_received = stats.b.received,
                    "relay stopped"
                );
                since.elapsed().as_secs()
            }
            Phase::Voicemail { media, since } | Phase::Mailbox { media, since } => {
                media.stop().await;
                since.elapsed().as_secs()
            }
            Phase::Ringing | Phase::Ended => 0,
        };
        self.by_txn.retain(|_, (n, _)| *n != number);
        self.by_dialog.retain(|_, (n, _)| *n != number);
        self.audit_call(
            &call,
            CallEvent::Ended {
                duration_secs: duration,
                by,
            },
        );
        let disposition = call.disposition.unwrap_or(Disposition::Unanswered);
        self.write_cdr(Self::cdr_of(call, unix_now(), duration, disposition, by));
        debug!(call = number, "call ended");
    }

    async fn end_all(&mut self) {
        self.end_subscriptions().await;
        let numbers: Vec<u64> = self.calls.keys().copied().collect();
        for n in numbers {
            self.cancel_forks(n).await;
            if let Some(call) = self.calls.get(&n) {
                for d in [
                    call.caller_dialog,
                    call.callee_leg.as_ref().and_then(|l| l.dialog),
                ]
                .into_iter()
                .flatten()
                {
                    let _ = self.agent.send_in_dialog(d, "BYE", &[], None).await;
                }
            }
            self.end_call(n, EndedBy::Pbx).await;
        }
    }
}

/// Why the callee's leg could not start.
#[derive(Debug, thiserror::Error)]
enum CalleeError {
    #[error("media: {0}")]
    Media(#[from] MediaError),
    #[error("no offer could be made")]
    Offer,
    #[error("the call is gone")]
    Gone,
    #[error("the INVITE could not be sent")]
    Send,
}

/// The voicemail prompt: half a second of a 1 kHz beep, μ-law.
fn prompt() -> Vec<u8> {
    crate::media::beep(1000.0, 500, 6000.0)
}

/// Writes a call's recording as its packets arrive; returns its length
/// once sealed.
fn record_call(
    vault: &Vault,
    rng: &dyn SecureRandom,
    metadata: Metadata,
    config: CallRecorderConfig,
    mut tapped: mpsc::Receiver<Tapped>,
) -> Result<u64, String> {
    let mut recorder =
        CallRecorder::start(vault, rng, metadata, config).map_err(|e| e.to_string())?;
    let mut last = Duration::ZERO;
    while let Some(t) = tapped.blocking_recv() {
        last = last.max(t.at);
        // A packet that is not RTP is skipped; the recording goes on.
        let _ = recorder.push(t.speaker, t.at, &t.packet);
    }
    recorder
        .finish(last)
        .map(|i| i.len)
        .map_err(|e| e.to_string())
}

/// Writes the message as it arrives; returns its length once sealed.
fn record(
    vault: &Vault,
    rng: &dyn SecureRandom,
    metadata: Metadata,
    config: RecorderConfig,
    mut heard: mpsc::Receiver<Vec<u8>>,
) -> Result<u64, String> {
    let mut recorder = Recorder::start(vault, rng, metadata, config).map_err(|e| e.to_string())?;
    while let Some(packet) = heard.blocking_recv() {
        // A packet that is not RTP is skipped; the recording goes on.
        let _ = recorder.push(&packet);
    }
    recorder.finish().map(|i| i.len).map_err(|e| e.to_string())
}
