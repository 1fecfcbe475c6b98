//! SIP dialogs and the user agent core (RFC 3261 sections 12, 13 and 15,
//! RFC 3311 for UPDATE), sans-IO, on top of the [transaction
//! layer](crate::transaction).
//!
//! A [`UserAgent`] owns a [`TransactionLayer`] and the dialogs of one user
//! agent. It keeps the rules of the UA core that need state and time:
//!
//! - dialogs created from a 2xx and from a 1xx with a To tag (early
//!   dialogs), several for one INVITE when it forks (13.2.2.4), each with
//!   its route set (from Record-Route, reversed at the UAC), remote target
//!   and local and remote CSeq;
//! - the ACK for every 2xx to an INVITE, sent by the UAC core to the next hop
//!   of the dialog and sent again for each retransmitted 2xx (13.2.2.4);
//! - the 2xx retransmitted by the UAS core from T1, doubling to T2, until
//!   the ACK arrives; after 64·T1 without one the dialog is ended with a BYE
//!   (13.3.1.4);
//! - dialogs created by a 2xx to SUBSCRIBE (RFC 6665 section 4.2.1.1), in
//!   which the notifier sends NOTIFY and receives refreshing SUBSCRIBEs,
//!   ended by the application ([`UserAgent::forget_dialog`]) once the
//!   subscription is over;
//! - target refresh by re-INVITE, UPDATE and SUBSCRIBE (12.2, RFC 3311,
//!   RFC 6665), 481 for
//!   requests outside any dialog, 500 for a CSeq lower than the remote one,
//!   491 for a re-INVITE that crosses one of ours (14.2), 200 for BYE and
//!   CANCEL, 487 for the INVITE a CANCEL ended (9.2, 15.1.2), and the end of
//!   a dialog on 481 or 408 (12.2.1.2).
//!
//! It runs the same loop as the transaction layer: [`UserAgent::handle_input`]
//! then [`UserAgent::poll_output`] until it gives a timeout; API calls
//! (sending requests and responses) take `now` and queue their output too.
//!
//! In-dialog requests go to the first Route URI, or to the remote target
//! when the route set is empty, when that URI holds an IP address; else to
//! the address the dialog's messages came from (the layer resolves no
//! names).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use carevox_sip::dialog::{Outgoing, UaConfig, UaEvent, UaOutput, UserAgent};
//! use carevox_sip::transaction::{Input, Received, TransportKind};
//!
//! let rng = Arc::new(ring::rand::SystemRandom::new());
//! let alice_addr = "127.0.0.1:5070".parse()?;
//! let bob_addr = "127.0.0.1:5080".parse()?;
//! let mut alice = UserAgent::new(UaConfig::new("127.0.0.1:5070", "<sip:alice@127.0.0.1:5070>"), rng.clone());
//! let mut bob = UserAgent::new(UaConfig::new("127.0.0.1:5080", "<sip:bob@127.0.0.1:5080>"), rng);
//! let now = Instant::now();
//!
//! // Alice calls Bob.
//! let invite = Outgoing::new("INVITE", "sip:bob@127.0.0.1:5080", "<sip:alice@example.org>",
//!     "<sip:bob@example.org>", bob_addr, TransportKind::Udp);
//! alice.send_request(now, &invite)?;
//!
//! // A tiny network: deliver whatever one side sends to the other.
//! fn pump(now: Instant, from: &mut UserAgent, from_addr: std::net::SocketAddr,
//!         to: &mut UserAgent, events: &mut Vec<UaEvent>) -> Result<(), Box<dyn std::error::Error>> {
//!     while let Some(out) = from.poll_output() {
//!         match out {
//!             UaOutput::Transmit(t) => to.handle_input(now, Input::Receive(Received {
//!                 source: from_addr, transport: t.transport,
//!                 message: carevox_sip::Message::parse(t.bytes)?,
//!             }))?,
//!             UaOutput::Event(e) => events.push(e),
//!             _ => break,
//!         }
//!     }
//!     Ok(())
//! }
//! let (mut a_events, mut b_events) = (Vec::new(), Vec::new());
//! pump(now, &mut alice, alice_addr, &mut bob, &mut a_events)?;
//! // Bob answers 200: a dialog on each side, and Alice's core sends the ACK.
//! let Some(UaEvent::Request { id, .. }) = bob.poll_output().and_then(|o| match o {
//!     UaOutput::Event(e) => Some(e), _ => None }) else { panic!() };
//! let bob_dialog = bob.respond(now, id, 200, "OK", &[], None)?;
//! pump(now, &mut bob, bob_addr, &mut alice, &mut b_events)?;
//! pump(now, &mut alice, alice_addr, &mut bob, &mut a_events)?;
//! assert!(a_events.iter().any(|e| matches!(e, UaEvent::DialogConfirmed { .. })));
//! assert!(bob.dialog(bob_dialog.unwrap()).is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use carevox_redact::Pii;
use ring::rand::SecureRandom;

use crate::builder::{MessageBuilder, unfold};
use crate::error::ParseError;
use crate::header::Method;
use crate::message::Message;
use crate::name::HeaderName;
use crate::transaction::{
    self, Config, Event, Input, Kind, Output, RandomError, TransactionError, TransactionId,
    TransactionLayer, Transmit, TransportKind,
};
use crate::uri::Uri;

/// Identifies one dialog of a [`UserAgent`]. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DialogId(u64);

impl fmt::Display for DialogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dlg{}", self.0)
    }
}

/// The state of a dialog (section 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// Which side of the dialog-creating INVITE this user agent was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogRole {
    /// It sent the INVITE.
    Uac,
    /// It received the INVITE.
    Uas,
}

/// Why a dialog ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TerminationReason {
    /// This user agent sent BYE.
    LocalBye,
    /// The peer sent BYE.
    RemoteBye,
    /// The INVITE got a non-2xx final response, or timed out, while the
    /// dialog was early.
    EarlyFailure,
    /// A request in the dialog got 481 or 408, or timed out (12.2.1.2).
    RequestFailed,
    /// The ACK for a 2xx never came within 64·T1: a BYE was sent (13.3.1.4).
    AckTimeout,
    /// The INVITE server transaction was answered with a non-2xx final
    /// response (the early dialog ends).
    Rejected,
    /// The application ended it without a request
    /// ([`UserAgent::forget_dialog`]): a subscription that ended (RFC 6665
    /// section 4.4.1).
    Forgotten,
}

/// The state of one dialog. URIs and header values are PHI, held in
/// [`Pii`]: `Debug` shows none of them.
#[derive(Debug, Clone)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    role: DialogRole,
    call_id: Pii<String>,
    local_tag: String,
    remote_tag: String,
    /// The From (UAC) or To (UAS) value, with the local tag.
    local: Pii<String>,
    /// The To (UAC) or From (UAS) value, with the remote tag.
    remote: Pii<String>,
    remote_target: Pii<String>,
    route_set: Pii<Vec<String>>,
    local_seq: Option<u32>,
    remote_seq: Option<u32>,
    secure: bool,
    peer: SocketAddr,
    transport: TransportKind,
    /// The INVITE client transaction that created it (early dialogs).
    invite: Option<TransactionId>,
    /// UAC: an INVITE of ours in progress in this dialog.
    pending_invite: Option<TransactionId>,
    /// UAS: the 2xx retransmitted until its ACK.
    pending_2xx: Option<Pending2xx>,
    /// The INVITE server transactions that name this dialog (its creating
    /// INVITE, re-INVITEs), so that ending it touches only them.
    server_invites: Vec<TransactionId>,
}

#[derive(Debug, Clone)]
struct Pending2xx {
    server: TransactionId,
    cseq: u32,
    response: Message,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

impl Dialog {
    /// The id.
    pub fn id(&self) -> DialogId {
        self.id
    }
    /// Early or confirmed.
    pub fn state(&self) -> DialogState {
        self.state
    }
    /// UAC or UAS.
    pub fn role(&self) -> DialogRole {
        self.role
    }
    /// The Call-ID.
    pub fn call_id(&self) -> &Pii<String> {
        &self.call_id
    }
    /// The local tag.
    pub fn local_tag(&self) -> &str {
        &self.local_tag
    }
    /// The remote tag.
    pub fn remote_tag(&self) -> &str {
        &self.remote_tag
    }
    /// The local URI as written in From or To, with the local tag.
    pub fn local(&self) -> &Pii<String> {
        &self.local
    }
    /// The remote URI as written in From or To, with the remote tag.
    pub fn remote(&self) -> &Pii<String> {
        &self.remote
    }
    /// The remote target: where requests in the dialog are addressed.
    pub fn remote_target(&self) -> &Pii<String> {
        &self.remote_target
    }
    /// The route set, in the order requests carry it.
    pub fn route_set(&self) -> &Pii<Vec<String>> {
        &self.route_set
    }
    /// The last CSeq number this side sent in the dialog.
    pub fn local_seq(&self) -> Option<u32> {
        self.local_seq
    }
    /// The last CSeq number the peer sent in the dialog.
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }
    /// True when the dialog was set up with a `sips` Request-URI.
    pub fn is_secure(&self) -> bool {
        self.secure
    }
}

/// Configuration of a [`UserAgent`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UaConfig {
    /// The transaction layer's configuration.
    pub transaction: Config,
    /// The most dialogs alive at once.
    pub max_dialogs: usize,
    /// The sent-by of the Via of every request (`host:port`).
    pub sent_by: String,
    /// The Contact value put in INVITE, UPDATE and their 1xx/2xx responses
    /// (a name-addr, e.g. `<sip:alice@192.0.2.1:5060>`).
    pub contact: Pii<String>,
}

impl UaConfig {
    /// A configuration with default timers and caps.
    pub fn new(sent_by: &str, contact: &str) -> Self {
        Self {
            transaction: Config::default(),
            max_dialogs: 10_000,
            sent_by: sent_by.to_owned(),
            contact: Pii::new(contact.to_owned()),
        }
    }
    /// Sets the transaction layer's configuration.
    pub fn with_transaction(mut self, config: Config) -> Self {
        self.transaction = config;
        self
    }
    /// Sets the cap on live dialogs.
    pub fn with_max_dialogs(mut self, n: usize) -> Self {
        self.max_dialogs = n;
        self
    }
}

/// A request outside any dialog, for [`UserAgent::send_request`].
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The method (`INVITE`, `REGISTER`, `OPTIONS`, ...).
    pub method: String,
    /// The Request-URI.
    pub request_uri: Pii<String>,
    /// The From value, without a tag (one is added).
    pub from: Pii<String>,
    /// The To value.
    pub to: Pii<String>,
    /// Where to send it.
    pub destination: SocketAddr,
    /// Over which transport.
    pub transport: TransportKind,
    /// The Call-ID and From tag to reuse (a REGISTER refresh, a request
    /// resent with credentials); fresh random ones when `None`.
    pub call: Option<(String, String)>,
    /// The CSeq number; 1 when `None`.
    pub cseq: Option<u32>,
    /// Extra header fields (Route, Authorization, Expires, ...).
    pub headers: Vec<(String, String)>,
    /// A body and its Content-Type.
    pub body: Option<(String, Bytes)>,
}

impl Outgoing {
    /// A request with no extra header field and no body.
    pub fn new(
        method: &str,
        request_uri: &str,
        from: &str,
        to: &str,
        destination: SocketAddr,
        transport: TransportKind,
    ) -> Self {
        Self {
            method: method.to_owned(),
            request_uri: Pii::new(request_uri.to_owned()),
            from: Pii::new(from.to_owned()),
            to: Pii::new(to.to_owned()),
            destination,
            transport,
            call: None,
            cseq: None,
            headers: Vec::new(),
            body: None,
        }
    }
}

/// What the application must know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UaEvent {
    /// A request to answer with [`UserAgent::respond`]: a new INVITE, or a
    /// request in a dialog (re-INVITE, UPDATE, INFO, ...), or outside one.
    Request {
        /// Its server transaction.
        id: TransactionId,
        /// The request.
        request: Message,
        /// The dialog it belongs to.
        dialog: Option<DialogId>,
    },
    /// A response to one of our requests.
    Response {
        /// Its client transaction.
        id: TransactionId,
        /// The response.
        response: Message,
        /// The dialog it created or belongs to.
        dialog: Option<DialogId>,
    },
    /// A dialog was created early by a provisional response.
    DialogEarly {
        /// The dialog.
        dialog: DialogId,
    },
    /// A dialog was created or confirmed by a 2xx.
    DialogConfirmed {
        /// The dialog.
        dialog: DialogId,
    },
    /// A dialog ended and was removed.
    DialogTerminated {
        /// The dialog.
        dialog: DialogId,
        /// Why.
        reason: TerminationReason,
    },
    /// The ACK for our 2xx arrived.
    Ack {
        /// The dialog.
        dialog: DialogId,
        /// The ACK (it may carry an SDP answer).
        request: Message,
    },
    /// The peer cancelled an INVITE; the UA answered it with 487.
    Cancelled {
        /// The INVITE server transaction.
        invite: TransactionId,
    },
    /// A request of ours got no final response in time.
    Timeout {
        /// Its client transaction, or the server transaction whose ACK
        /// never came.
        id: TransactionId,
    },
    /// The transport failed for a transaction.
    TransportError {
        /// The transaction.
        id: TransactionId,
    },
}

/// What the caller must do next: drained with [`UserAgent::poll_output`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UaOutput {
    /// Send these bytes.
    Transmit(Transmit),
    /// Tell the application.
    Event(UaEvent),
    /// Nothing more to do until this instant: then feed [`Input::Timeout`].
    Timeout(Instant),
}

/// Why a user agent operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// The cap on live dialogs is reached.
    #[error("too many live dialogs (limit {limit})")]
    TooManyDialogs {
        /// The configured limit.
        limit: usize,
    },
    /// No live dialog has this id.
    #[error("no live dialog {id}")]
    UnknownDialog {
        /// The id.
        id: DialogId,
    },
    /// The method cannot be sent this way.
    #[error("{method} cannot be sent with this call")]
    Method {
        /// The method.
        method: &'static str,
    },
    /// A dialog in this state cannot do that.
    #[error("dialog {id} is early: only a confirmed dialog can send this request")]
    NotConfirmed {
        /// The dialog.
        id: DialogId,
    },
    /// An INVITE of ours is already in progress in this dialog (14.1).
    #[error("an INVITE is already in progress in dialog {id}")]
    InviteInProgress {
        /// The dialog.
        id: DialogId,
    },
    /// The local CSeq would pass 2^31 - 1.
    #[error("the local CSeq of dialog {id} is exhausted")]
    CSeqExhausted {
        /// The dialog.
        id: DialogId,
    },
    /// The transaction layer refused.
    #[error(transparent)]
    Transaction(#[from] TransactionError),
    /// A message could not be built or read.
    #[error("message: {0}")]
    Message(#[from] ParseError),
    /// The random number generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DialogKey {
    call_id: String,
    local_tag: String,
    remote_tag: String,
}

/// What the UA remembers of a client transaction.
#[derive(Debug, Clone, Copy)]
struct ClientInfo {
    /// The dialog it was sent in, if any.
    dialog: Option<DialogId>,
    invite: bool,
}

/// What the UA remembers of an INVITE server transaction.
#[derive(Debug, Clone)]
struct ServerInvite {
    /// The To tag of our responses.
    tag: String,
    /// The dialog it was received in (re-INVITE) or created.
    dialog: Option<DialogId>,
}

/// A user agent core with its dialogs and its transaction layer, as one
/// sans-IO state machine. See the [module documentation](self).
pub struct UserAgent {
    config: UaConfig,
    rng: Arc<dyn SecureRandom + Send + Sync>,
    layer: TransactionLayer,
    next_id: u64,
    dialogs: HashMap<DialogId, Dialog>,
    keys: HashMap<DialogKey, DialogId>,
    clients: HashMap<TransactionId, ClientInfo>,
    servers: HashMap<TransactionId, ServerInvite>,
    /// The ACK sent for each 2xx (by To tag) to an INVITE client
    /// transaction, resent for its retransmissions while it lives.
    acks: HashMap<TransactionId, Vec<(String, Transmit)>>,
    timers: BinaryHeap<Reverse<(Instant, DialogId)>>,
    out: VecDeque<UaOutput>,
}

impl fmt::Debug for UserAgent {
    // The random number generator has no Debug; everything else does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserAgent")
            .field("config", &self.config)
            .field("layer", &self.layer)
            .field("dialogs", &self.dialogs)
            .finish_non_exhaustive()
    }
}

fn header<'m>(
    msg: &'m Message,
    name: HeaderName,
    canonical: &'static str,
) -> Result<&'m str, ParseError> {
    msg.header(name)
        .ok_or(ParseError::MissingHeader { header: canonical })
}

fn unfolded(v: &str) -> String {
    unfold(v).into_owned()
}

/// The URI inside a name-addr value (`<...>` or a bare URI).
fn uri_of(name_addr: &str) -> Result<String, ParseError> {
    Ok(crate::header::NameAddr::parse(name_addr)?
        .uri()
        .as_str()
        .to_owned())
}

/// The address of a URI whose host is an IP address.
fn addr_of(uri: &str) -> Option<SocketAddr> {
    let u = Uri::parse(uri).ok()?;
    let sip = u.as_sip()?;
    let ip = sip.host().ip()?;
    let port = sip
        .port()
        .unwrap_or(if sip.is_secure() { 5061 } else { 5060 });
    Some(SocketAddr::new(ip, port))
}

impl UserAgent {
    /// A user agent with no dialog. `rng` draws every Call-ID, tag and
    /// branch.
    pub fn new(config: UaConfig, rng: Arc<dyn SecureRandom + Send + Sync>) -> Self {
        Self {
            layer: TransactionLayer::new(config.transaction.clone()),
            config,
            rng,
            next_id: 0,
            dialogs: HashMap::new(),
            keys: HashMap::new(),
            clients: HashMap::new(),
            servers: HashMap::new(),
            acks: HashMap::new(),
            timers: BinaryHeap::new(),
            out: VecDeque::new(),
        }
    }

    /// The transaction layer underneath (read-only).
    pub fn transactions(&self) -> &TransactionLayer {
        &self.layer
    }

    /// A live dialog.
    pub fn dialog(&self, id: DialogId) -> Option<&Dialog> {
        self.dialogs.get(&id)
    }

    /// Every live dialog.
    pub fn dialogs(&self) -> impl Iterator<Item = &Dialog> + '_ {
        self.dialogs.values()
    }

    /// The earliest instant at which [`Input::Timeout`] has work to do: a
    /// timer of the transaction layer or a 2xx retransmission of the UA
    /// core.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        let own = self.next_own_deadline();
        let inner = self.layer.next_deadline();
        match (own, inner) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Reports that a message of transaction `id` could not be sent
    /// (sections 17.1.4 and 17.2.4): the transaction ends, the dialog it was
    /// sent in (or the early dialogs of an INVITE) ends with it, and the
    /// application gets [`UaEvent::TransportError`].
    pub fn transport_error(&mut self, now: Instant, id: TransactionId) -> Result<(), DialogError> {
        let r = self.layer.transport_error(now, id);
        self.pump(now);
        r.map_err(Into::into)
    }

    /// The next thing to do, or `None` when nothing is queued and no timer
    /// runs.
    pub fn poll_output(&mut self) -> Option<UaOutput> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        self.next_deadline().map(UaOutput::Timeout)
    }

    fn next_own_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if self.own_timer_live(at, id) {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    fn own_timer_live(&self, at: Instant, id: DialogId) -> bool {
        self.dialogs
            .get(&id)
            .and_then(|d| d.pending_2xx.as_ref())
            .is_some_and(|p| p.next.min(p.give_up) == at)
    }

    /// Feeds a received message or a timer expiry.
    pub fn handle_input(&mut self, now: Instant, input: Input) -> Result<(), DialogError> {
        let r = self.layer.handle_input(now, input);
        self.pump(now);
        self.fire_own(now);
        self.pump(now);
        r.map_err(Into::into)
    }

    fn alloc(&mut self) -> DialogId {
        self.next_id += 1;
        DialogId(self.next_id)
    }

    fn token(&self, bytes: usize) -> Result<String, RandomError> {
        transaction::random_token(&*self.rng, bytes)
    }

    fn branch(&self) -> Result<String, RandomError> {
        transaction::new_branch(&*self.rng)
    }

    fn via(&self, transport: TransportKind) -> Result<String, RandomError> {
        Ok(format!(
            "SIP/2.0/{} {};branch={};rport",
            transport.via_name(),
            self.config.sent_by,
            self.branch()?
        ))
    }

    /// Sends a request outside any dialog: an INVITE (dialogs follow from
    /// its responses), REGISTER, OPTIONS, MESSAGE...
    pub fn send_request(
        &mut self,
        now: Instant,
        req: &Outgoing,
    ) -> Result<TransactionId, DialogError> {
        let method = req.method.as_str();
        match Method::from_token(method) {
            Method::Ack => return Err(DialogError::Method { method: "ACK" }),
            Method::Cancel => return Err(DialogError::Method { method: "CANCEL" }),
            _ => {}
        }
        let (call_id, tag) = match &req.call {
            Some((c, t)) => (c.clone(), t.clone()),
            None => (self.token(16)?, self.token(8)?),
        };
        let invite = Method::from_token(method) == Method::Invite;
        let mut b = MessageBuilder::request(method, req.request_uri.expose())?
            .header("Via", &self.via(req.transport)?)?
            .header("Max-Forwards", "70")?
            .header("From", &format!("{};tag={tag}", req.from.expose()))?
            .header("To", req.to.expose())?
            .header("Call-ID", &call_id)?
            .header("CSeq", &format!("{} {method}", req.cseq.unwrap_or(1)))?;
        if invite || method == "REGISTER" || method == "SUBSCRIBE" {
            b = b.header("Contact", self.config.contact.expose())?;
        }
        for (n, v) in &req.headers {
            b = b.header(n, v)?;
        }
        if let Some((ct, body)) = &req.body {
            b = b.body(ct, body.clone())?;
        }
        let msg = b.build()?;
        let id = self
            .layer
            .send_request(now, msg, req.destination, req.transport)?;
        self.clients.insert(
            id,
            ClientInfo {
                dialog: None,
                invite,
            },
        );
        self.pump(now);
        Ok(id)
    }

    /// Sends a request in a confirmed dialog (BYE, re-INVITE, UPDATE, INFO,
    /// ...) built by 12.2.1.1: Request-URI, Route, To, From, Call-ID and the
    /// next local CSeq from the dialog. UPDATE may be sent in an early
    /// dialog too (RFC 3311). BYE ends the dialog at once (15.1.1).
    pub fn send_in_dialog(
        &mut self,
        now: Instant,
        dialog: DialogId,
        method: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Bytes)>,
    ) -> Result<TransactionId, DialogError> {
        let m = Method::from_token(method);
        match m {
            Method::Ack => return Err(DialogError::Method { method: "ACK" }),
            Method::Cancel => return Err(DialogError::Method { method: "CANCEL" }),
            _ => {}
        }
        let d = self
            .dialogs
            .get(&dialog)
            .ok_or(DialogError::UnknownDialog { id: dialog })?;
        let early_ok = matches!(m, Method::Update | Method::Prack | Method::Info);
        if d.state == DialogState::Early && !early_ok {
            return Err(DialogError::NotConfirmed { id: dialog });
        }
        if m == Method::Invite && d.pending_invite.is_some() {
            return Err(DialogError::InviteInProgress { id: dialog });
        }
        let seq = match d.local_seq {
            Some(s) if s >= (1 << 31) - 1 => return Err(DialogError::CSeqExhausted { id: dialog }),
            Some(s) => s + 1,
            None => 1,
        };
        let refresh = matches!(m, Method::Invite | Method::Update);
        let (msg, dest, transport) =
            self.build_in_dialog(d, method, seq, refresh, headers, body)?;
        let id = self.layer.send_request(now, msg, dest, transport)?;
        if let Some(d) = self.dialogs.get_mut(&dialog) {
            d.local_seq = Some(seq);
            if m == Method::Invite {
                d.pending_invite = Some(id);
            }
        }
        self.clients.insert(
            id,
            ClientInfo {
                dialog: Some(dialog),
                invite: m == Method::Invite,
            },
        );
        if m == Method::Bye {
            self.end_dialog(dialog, TerminationReason::LocalBye);
        }
        self.pump(now);
        Ok(id)
    }

    /// Request-URI, Route set and next hop of a request in `d` (12.2.1.1).
    fn target(d: &Dialog) -> Result<(String, Vec<String>, SocketAddr), ParseError> {
        let routes = d.route_set.expose();
        let target = d.remote_target.expose().clone();
        let Some(first) = routes.first() else {
            let hop = addr_of(&target).unwrap_or(d.peer);
            return Ok((target, Vec::new(), hop));
        };
        let first_uri = uri_of(first)?;
        let hop = addr_of(&first_uri).unwrap_or(d.peer);
        let loose = Uri::parse(&first_uri)?.as_sip().is_some_and(|s| s.lr());
        if loose {
            Ok((target, routes.clone(), hop))
        } else {
            // A strict router: its URI becomes the Request-URI, the remote
            // target goes last in Route.
            let mut rest: Vec<String> = routes.iter().skip(1).cloned().collect();
            rest.push(format!("<{target}>"));
            Ok((first_uri, rest, hop))
        }
    }

    fn build_in_dialog(
        &self,
        d: &Dialog,
        method: &str,
        seq: u32,
        contact: bool,
        headers: &[(&str, &str)],
        body: Option<(&str, Bytes)>,
    ) -> Result<(Message, SocketAddr, TransportKind), DialogError> {
        let (uri, routes, hop) = Self::target(d)?;
        let mut b = MessageBuilder::request(method, &uri)?
            .header("Via", &self.via(d.transport)?)?
            .header("Max-Forwards", "70")?
            .header("From", d.local.expose())?
            .header("To", d.remote.expose())?
            .header("Call-ID", d.call_id.expose())?
            .header("CSeq", &format!("{seq} {method}"))?;
        for r in &routes {
            b = b.header("Route", r)?;
        }
        if contact {
            b = b.header("Contact", self.config.contact.expose())?;
        }
        for (n, v) in headers {
            b = b.header(n, v)?;
        }
        if let Some((ct, body)) = body {
            b = b.body(ct, body)?;
        }
        Ok((b.build()?, hop, d.transport))
    }

    /// Cancels an INVITE of ours (section 9.1). The CANCEL waits for a
    /// provisional response if none has arrived yet.
    pub fn cancel(
        &mut self,
        now: Instant,
        invite: TransactionId,
    ) -> Result<TransactionId, DialogError> {
        let id = self.layer.send_cancel(now, invite)?;
        self.clients.insert(
            id,
            ClientInfo {
                dialog: None,
                invite: false,
            },
        );
        self.pump(now);
        Ok(id)
    }

    /// Answers a request received as [`UaEvent::Request`]. The UA adds the
    /// To tag (one per INVITE, the same in every response to it), and for
    /// 101-299 to INVITE and 2xx to UPDATE, the Contact; it copies the
    /// Record-Route into dialog-creating responses (12.1.1). A 101-199 with
    /// the tag creates an early dialog, a 2xx a confirmed one whose 2xx is
    /// retransmitted until the ACK. Returns the dialog, if any.
    pub fn respond(
        &mut self,
        now: Instant,
        id: TransactionId,
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Bytes)>,
    ) -> Result<Option<DialogId>, DialogError> {
        let request = self
            .layer
            .request(id)
            .cloned()
            .ok_or(TransactionError::UnknownTransaction { id })?;
        let kind = self.layer.kind(id);
        let invite = kind == Some(Kind::InviteServer);
        let is_update = request.method() == Some(Method::Update);
        let is_subscribe = request.method() == Some(Method::Subscribe);
        let existing_tag = request.to()?.tag().map(str::to_owned);
        let tag = match (&existing_tag, self.servers.get(&id)) {
            (Some(t), _) => t.clone(),
            (None, Some(s)) => s.tag.clone(),
            (None, None) => self.token(8)?,
        };
        let mut b = MessageBuilder::response_to(&request, status, reason)?;
        if status != 100 {
            b = b.to_tag(&tag)?;
        }
        // A 101-299 to an INVITE, or a 2xx to a SUBSCRIBE (RFC 6665 section
        // 4.2.1.1), outside a dialog creates one.
        let creates = existing_tag.is_none()
            && ((invite && (101..300).contains(&status))
                || (is_subscribe && (200..300).contains(&status)));
        if creates {
            for rr in request.header_values(HeaderName::RecordRoute) {
                b = b.header("Record-Route", &unfolded(rr))?;
            }
        }
        if (invite && (101..300).contains(&status))
            || ((is_update || is_subscribe) && status / 100 == 2)
        {
            b = b.header("Contact", self.config.contact.expose())?;
        }
        for (n, v) in headers {
            b = b.header(n, v)?;
        }
        if let Some((ct, body)) = body {
            b = b.body(ct, body)?;
        }
        let response = b.build()?;
        // The dialog: found by the request's tags, or created by this response.
        let mut dialog = self.servers.get(&id).and_then(|s| s.dialog);
        if dialog.is_none() && existing_tag.is_some() {
            dialog = self.find(&request, true);
        }
        if creates && dialog.is_none() {
            self.check_dialog_cap()?;
        }
        // Read before the response goes: a final response ends a
        // non-INVITE server transaction at once over a reliable transport.
        let peer = self.layer.peer(id);
        self.layer.send_response(now, id, response.clone())?;
        if invite {
            self.servers.entry(id).or_insert_with(|| ServerInvite {
                tag: tag.clone(),
                dialog: None,
            });
        }
        if creates && dialog.is_none() {
            let (source, transport) = peer.ok_or(TransactionError::UnknownTransaction { id })?;
            let d = self.new_uas_dialog(&request, &response, &tag, source, transport)?;
            if let Some(s) = self.servers.get_mut(&id) {
                s.dialog = Some(d);
            }
            self.link_server(d, id);
            dialog = Some(d);
            if status < 200 {
                self.out
                    .push_back(UaOutput::Event(UaEvent::DialogEarly { dialog: d }));
            } else if is_subscribe {
                // No ACK to wait for: the subscription's dialog is confirmed.
                if let Some(dl) = self.dialogs.get_mut(&d) {
                    dl.state = DialogState::Confirmed;
                }
                self.out
                    .push_back(UaOutput::Event(UaEvent::DialogConfirmed { dialog: d }));
            }
        }
        let class = status / 100;
        if let Some(d) = dialog {
            if invite && class == 2 {
                let t = self.config.transaction.timers;
                let cseq = request.cseq()?.seq;
                let mut confirmed = false;
                if let Some(dl) = self.dialogs.get_mut(&d) {
                    if dl.state == DialogState::Early {
                        dl.state = DialogState::Confirmed;
                        confirmed = true;
                    }
                    let next = now + t.t1;
                    dl.pending_2xx = Some(Pending2xx {
                        server: id,
                        cseq,
                        response,
                        next,
                        interval: t.t1,
                        give_up: now + t.t1x64(),
                    });
                    self.timers.push(Reverse((next, d)));
                }
                if confirmed {
                    self.out
                        .push_back(UaOutput::Event(UaEvent::DialogConfirmed { dialog: d }));
                }
            } else if invite && class >= 3 && existing_tag.is_none() {
                self.end_dialog(d, TerminationReason::Rejected);
                dialog = None;
            }
        }
        self.pump(now);
        Ok(dialog)
    }

    /// Ends a dialog without sending anything: for a subscription's dialog
    /// once its last NOTIFY (`Subscription-State: terminated`) is sent
    /// (RFC 6665 section 4.4.1), which no BYE ends. Requests in it are then
    /// answered 481. Emits [`UaEvent::DialogTerminated`] with
    /// [`TerminationReason::Forgotten`]; an unknown dialog is an error.
    pub fn forget_dialog(&mut self, dialog: DialogId) -> Result<(), DialogError> {
        if !self.dialogs.contains_key(&dialog) {
            return Err(DialogError::UnknownDialog { id: dialog });
        }
        self.end_dialog(dialog, TerminationReason::Forgotten);
        Ok(())
    }

    fn check_dialog_cap(&self) -> Result<(), DialogError> {
        if self.dialogs.len() >= self.config.max_dialogs {
            return Err(DialogError::TooManyDialogs {
                limit: self.config.max_dialogs,
            });
        }
        Ok(())
    }

    fn new_uas_dialog(
        &mut self,
        request: &Message,
        response: &Message,
        tag: &str,
        peer: SocketAddr,
        transport: TransportKind,
    ) -> Result<DialogId, DialogError> {
        let from = request.from()?;
        // A peer without From tag (RFC 2543) has a null remote tag (12.1.1).
        let remote_tag = from.tag().map_or_else(String::new, str::to_owned);
        let call_id = request.call_id()?.to_owned();
        let remote_target = match request.contacts().next() {
            Some(c) => c?.addr().map(|a| a.uri().as_str().to_owned()),
            None => None,
        }
        .ok_or(ParseError::MissingHeader { header: "Contact" })?;
        let route_set: Vec<String> = request
            .list(HeaderName::RecordRoute)
            .map(unfolded)
            .collect();
        let id = self.alloc();
        let d = Dialog {
            id,
            state: DialogState::Early,
            role: DialogRole::Uas,
            call_id: Pii::new(call_id.clone()),
            local_tag: tag.to_owned(),
            remote_tag: remote_tag.clone(),
            local: Pii::new(unfolded(header(response, HeaderName::To, "To")?)),
            remote: Pii::new(unfolded(header(request, HeaderName::From, "From")?)),
            remote_target: Pii::new(remote_target),
            route_set: Pii::new(route_set),
            local_seq: None,
            remote_seq: Some(request.cseq()?.seq),
            secure: request
                .request_uri()
                .and_then(Result::ok)
                .is_some_and(|u| u.scheme().eq_ignore_ascii_case("sips")),
            peer,
            transport,
            invite: None,
            pending_invite: None,
            server_invites: Vec::new(),
            pending_2xx: None,
        };
        self.keys.insert(
            DialogKey {
                call_id,
                local_tag: tag.to_owned(),
                remote_tag,
            },
            id,
        );
        self.dialogs.insert(id, d);
        Ok(id)
    }

    /// The dialog a message belongs to. `incoming_request`: the local tag is
    /// in To; else (a response to our request) in From.
    fn find(&self, msg: &Message, incoming_request: bool) -> Option<DialogId> {
        let (local, remote) = if incoming_request {
            (msg.to().ok()?.tag()?, msg.from().ok()?.tag()?)
        } else {
            (msg.from().ok()?.tag()?, msg.to().ok()?.tag()?)
        };
        self.keys
            .get(&DialogKey {
                call_id: msg.call_id().ok()?.to_owned(),
                local_tag: local.to_owned(),
                remote_tag: remote.to_owned(),
            })
            .copied()
    }

    /// Notes that the INVITE server transaction `t` names dialog `d`;
    /// transactions that ended meanwhile are dropped from its list.
    fn link_server(&mut self, d: DialogId, t: TransactionId) {
        let servers = &self.servers;
        if let Some(dl) = self.dialogs.get_mut(&d) {
            dl.server_invites.retain(|x| servers.contains_key(x));
            dl.server_invites.push(t);
        }
    }

    fn end_dialog(&mut self, id: DialogId, reason: TerminationReason) {
        let Some(d) = self.dialogs.remove(&id) else {
            return;
        };
        self.keys.remove(&DialogKey {
            call_id: d.call_id.into_inner(),
            local_tag: d.local_tag,
            remote_tag: d.remote_tag,
        });
        for t in &d.server_invites {
            if let Some(s) = self.servers.get_mut(t)
                && s.dialog == Some(id)
            {
                s.dialog = None;
            }
        }
        self.out
            .push_back(UaOutput::Event(UaEvent::DialogTerminated {
                dialog: id,
                reason,
            }));
    }

    /// Moves the transaction layer's output into ours, acting on its events.
    fn pump(&mut self, now: Instant) {
        loop {
            match self.layer.poll_output() {
                Some(Output::Transmit(t)) => self.out.push_back(UaOutput::Transmit(t)),
                Some(Output::Event(e)) => self.on_event(now, e),
                _ => break,
            }
        }
    }

    fn emit(&mut self, e: UaEvent) {
        self.out.push_back(UaOutput::Event(e));
    }

    /// Answers a request on the UA's own behalf; failures (the transaction
    /// ended meanwhile) leave nothing to do.
    fn auto_respond(
        &mut self,
        now: Instant,
        id: TransactionId,
        request: &Message,
        status: u16,
        reason: &str,
    ) {
        let built = MessageBuilder::response_to(request, status, reason).and_then(|b| {
            let b = if request.to().ok().and_then(|t| t.tag()).is_none() {
                match self.servers.get(&id) {
                    Some(s) => b.to_tag(&s.tag)?,
                    None => b,
                }
            } else {
                b
            };
            b.build()
        });
        if let Ok(resp) = built {
            let _ = self.layer.send_response(now, id, resp);
        }
    }

    fn on_event(&mut self, now: Instant, e: Event) {
        match e {
            Event::Request {
                id,
                request,
                cancels,
                ..
            } => self.on_request(now, id, request, cancels),
            Event::Ack { request, .. } => self.on_ack(request),
            Event::Response { id, response } => self.on_response(now, id, response),
            Event::Timeout { id } => {
                self.on_failure(id);
                self.emit(UaEvent::Timeout { id });
            }
            Event::TransportError { id } => {
                self.on_failure(id);
                self.emit(UaEvent::TransportError { id });
            }
            Event::Terminated { id } => {
                self.acks.remove(&id);
                if let Some(info) = self.clients.remove(&id)
                    && info.invite
                {
                    // 13.2.2.4: once the INVITE transaction is over (64*T1
                    // after the first 2xx), early dialogs that no 2xx
                    // confirmed end.
                    let mut early = Vec::new();
                    for d in self.dialogs.values_mut() {
                        if d.pending_invite == Some(id) {
                            d.pending_invite = None;
                        }
                        if d.invite == Some(id) {
                            d.invite = None;
                            if d.state == DialogState::Early {
                                early.push(d.id);
                            }
                        }
                    }
                    early.sort_unstable();
                    for d in early {
                        self.end_dialog(d, TerminationReason::EarlyFailure);
                    }
                }
                self.servers.remove(&id);
            }
            Event::MergedRequest { .. } | Event::UnmatchedResponse { .. } => {}
        }
    }

    fn on_failure(&mut self, id: TransactionId) {
        let Some(info) = self.clients.get(&id).copied() else {
            return;
        };
        match info.dialog {
            Some(d) => self.end_dialog(d, TerminationReason::RequestFailed),
            None if info.invite => {
                let early: Vec<DialogId> = self
                    .dialogs
                    .values()
                    .filter(|d| d.invite == Some(id) && d.state == DialogState::Early)
                    .map(|d| d.id)
                    .collect();
                for d in early {
                    self.end_dialog(d, TerminationReason::EarlyFailure);
                }
            }
            None => {}
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        id: TransactionId,
        request: Message,
        cancels: Option<TransactionId>,
    ) {
        let method = request.method();
        if method == Some(Method::Cancel) {
            match cancels {
                Some(invite) => {
                    self.auto_respond(now, id, &request, 200, "OK");
                    if self.layer.state(invite) == Some(transaction::State::Proceeding) {
                        // The INVITE may have ended meanwhile: then nothing to answer.
                        let _ = self.respond(now, invite, 487, "Request Terminated", &[], None);
                        self.emit(UaEvent::Cancelled { invite });
                    }
                }
                None => {
                    self.auto_respond(now, id, &request, 481, "Call/Transaction Does Not Exist")
                }
            }
            return;
        }
        let has_to_tag = request.to().ok().and_then(|t| t.tag()).is_some();
        if !has_to_tag {
            self.emit(UaEvent::Request {
                id,
                request,
                dialog: None,
            });
            return;
        }
        let Some(did) = self.find(&request, true) else {
            self.auto_respond(now, id, &request, 481, "Call/Transaction Does Not Exist");
            return;
        };
        let Ok(cseq) = request.cseq().map(|c| c.seq) else {
            return;
        };
        let Some(d) = self.dialogs.get_mut(&did) else {
            return;
        };
        if d.remote_seq.is_some_and(|r| cseq < r) {
            self.auto_respond(now, id, &request, 500, "Server Internal Error");
            return;
        }
        let is_invite = method == Some(Method::Invite);
        if is_invite && d.pending_invite.is_some() {
            d.remote_seq = Some(cseq);
            self.auto_respond(now, id, &request, 491, "Request Pending");
            return;
        }
        d.remote_seq = Some(cseq);
        if (is_invite || matches!(method, Some(Method::Update | Method::Subscribe)))
            && let Some(Ok(c)) = request.contacts().next()
            && let Some(a) = c.addr()
        {
            d.remote_target = Pii::new(a.uri().as_str().to_owned());
        }
        if is_invite {
            let tag = d.local_tag.clone();
            self.servers.insert(
                id,
                ServerInvite {
                    tag,
                    dialog: Some(did),
                },
            );
            self.link_server(did, id);
        }
        if method == Some(Method::Bye) {
            self.auto_respond(now, id, &request, 200, "OK");
            self.end_dialog(did, TerminationReason::RemoteBye);
            return;
        }
        self.emit(UaEvent::Request {
            id,
            request,
            dialog: Some(did),
        });
    }

    fn on_ack(&mut self, request: Message) {
        let Some(did) = self.find(&request, true) else {
            return;
        };
        let Ok(seq) = request.cseq().map(|c| c.seq) else {
            return;
        };
        let Some(d) = self.dialogs.get_mut(&did) else {
            return;
        };
        if d.pending_2xx.as_ref().is_some_and(|p| p.cseq == seq) {
            d.pending_2xx = None;
            self.emit(UaEvent::Ack {
                dialog: did,
                request,
            });
        }
    }

    fn on_response(&mut self, now: Instant, id: TransactionId, response: Message) {
        let info = self.clients.get(&id).copied();
        let status = response.status().unwrap_or(0);
        let class = status / 100;
        let mut dialog = info.and_then(|i| i.dialog);
        if class == 2
            && info.is_some_and(|i| i.invite)
            && let Some(tag) = response.to().ok().and_then(|t| t.tag())
            && let Some((_, ack)) = self
                .acks
                .get(&id)
                .and_then(|acks| acks.iter().find(|(t, _)| t == tag))
        {
            // A retransmitted 2xx (13.2.2.4): the same ACK again, even when
            // the dialog has ended since; the application already knows.
            let ack = ack.clone();
            self.out.push_back(UaOutput::Transmit(ack));
            return;
        }
        if let Some(info) = info
            && info.invite
        {
            if dialog.is_none() {
                dialog = self.find(&response, false);
                if dialog.is_none()
                    && ((101..200).contains(&status) || class == 2)
                    && response.to().ok().and_then(|t| t.tag()).is_some()
                    && let Ok(d) = self.new_uac_dialog(id, &response)
                {
                    dialog = Some(d);
                    if class == 1 {
                        self.emit(UaEvent::DialogEarly { dialog: d });
                    }
                }
            }
            if class == 2
                && let Some(d) = dialog
            {
                self.confirm_uac(now, id, d, &response);
            }
            if class >= 3 {
                match info.dialog {
                    Some(d) => {
                        if let Some(dl) = self.dialogs.get_mut(&d) {
                            dl.pending_invite = None;
                        }
                    }
                    None => {
                        let early: Vec<DialogId> = self
                            .dialogs
                            .values()
                            .filter(|d| d.invite == Some(id) && d.state == DialogState::Early)
                            .map(|d| d.id)
                            .collect();
                        for d in early {
                            self.end_dialog(d, TerminationReason::EarlyFailure);
                        }
                        dialog = None;
                    }
                }
            }
        } else if class == 2
            && response.cseq().is_ok_and(|c| c.method == Method::Update)
            && let Some(d) = dialog
            && let Some(dl) = self.dialogs.get_mut(&d)
            && let Some(Ok(c)) = response.contacts().next()
            && let Some(a) = c.addr()
        {
            dl.remote_target = Pii::new(a.uri().as_str().to_owned());
        }
        if info.and_then(|i| i.dialog).is_some()
            && (status == 481 || status == 408)
            && let Some(d) = dialog
        {
            self.end_dialog(d, TerminationReason::RequestFailed);
        }
        self.emit(UaEvent::Response {
            id,
            response,
            dialog,
        });
    }

    fn new_uac_dialog(
        &mut self,
        invite_tx: TransactionId,
        response: &Message,
    ) -> Result<DialogId, DialogError> {
        self.check_dialog_cap()?;
        let invite = self
            .layer
            .request(invite_tx)
            .cloned()
            .ok_or(TransactionError::UnknownTransaction { id: invite_tx })?;
        let (peer, transport) = self
            .layer
            .peer(invite_tx)
            .ok_or(TransactionError::UnknownTransaction { id: invite_tx })?;
        let local_tag = invite
            .from()?
            .tag()
            .ok_or(ParseError::header("From", "no tag"))?
            .to_owned();
        let remote_tag = response
            .to()?
            .tag()
            .ok_or(ParseError::header("To", "no tag"))?
            .to_owned();
        let call_id = invite.call_id()?.to_owned();
        let remote_target = match response.contacts().next() {
            Some(c) => c?.addr().map(|a| a.uri().as_str().to_owned()),
            None => None,
        }
        .ok_or(ParseError::MissingHeader { header: "Contact" })?;
        let mut route_set: Vec<String> = response
            .list(HeaderName::RecordRoute)
            .map(unfolded)
            .collect();
        route_set.reverse();
        let id = self.alloc();
        let d = Dialog {
            id,
            state: DialogState::Early,
            role: DialogRole::Uac,
            call_id: Pii::new(call_id.clone()),
            local_tag: local_tag.clone(),
            remote_tag: remote_tag.clone(),
            local: Pii::new(unfolded(header(&invite, HeaderName::From, "From")?)),
            remote: Pii::new(unfolded(header(response, HeaderName::To, "To")?)),
            remote_target: Pii::new(remote_target),
            route_set: Pii::new(route_set),
            local_seq: Some(invite.cseq()?.seq),
            remote_seq: None,
            secure: invite
                .request_uri()
                .and_then(Result::ok)
                .is_some_and(|u| u.scheme().eq_ignore_ascii_case("sips")),
            peer,
            transport,
            invite: Some(invite_tx),
            pending_invite: None,
            server_invites: Vec::new(),
            pending_2xx: None,
        };
        self.keys.insert(
            DialogKey {
                call_id,
                local_tag,
                remote_tag,
            },
            id,
        );
        self.dialogs.insert(id, d);
        Ok(id)
    }

    /// A 2xx to an INVITE of ours: confirm the dialog (route set and remote
    /// target from the 2xx, 12.1.2 and 12.2.1.2) and ACK it, or ACK it
    /// again when it is a retransmission.
    fn confirm_uac(&mut self, now: Instant, id: TransactionId, did: DialogId, response: &Message) {
        let Ok(seq) = response.cseq().map(|c| c.seq) else {
            return;
        };
        let Some(d) = self.dialogs.get_mut(&did) else {
            return;
        };
        let mut confirmed = false;
        if d.state == DialogState::Early {
            d.state = DialogState::Confirmed;
            confirmed = true;
            let mut rs: Vec<String> = response
                .list(HeaderName::RecordRoute)
                .map(unfolded)
                .collect();
            rs.reverse();
            d.route_set = Pii::new(rs);
        }
        if let Some(Ok(c)) = response.contacts().next()
            && let Some(a) = c.addr()
        {
            d.remote_target = Pii::new(a.uri().as_str().to_owned());
        }
        d.pending_invite = None;
        let d = d.clone();
        if let Ok((ack, dest, transport)) = self.build_in_dialog(&d, "ACK", seq, false, &[], None) {
            let t = Transmit {
                destination: dest,
                transport,
                bytes: ack.as_bytes().clone(),
            };
            let tag = d.remote_tag.clone();
            self.acks.entry(id).or_default().push((tag, t.clone()));
            self.out.push_back(UaOutput::Transmit(t));
        }
        if confirmed {
            self.emit(UaEvent::DialogConfirmed { dialog: did });
        }
        let _ = now;
    }

    /// The UAS core's 2xx retransmission timers (13.3.1.4).
    fn fire_own(&mut self, now: Instant) {
        let t = self.config.transaction.timers;
        while let Some(Reverse((at, did))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if !self.own_timer_live(at, did) {
                continue;
            }
            let Some(d) = self.dialogs.get_mut(&did) else {
                continue;
            };
            let Some(p) = d.pending_2xx.as_mut() else {
                continue;
            };
            if at >= p.give_up {
                d.pending_2xx = None;
                let _ = self.send_in_dialog(now, did, "BYE", &[], None);
                if self.dialogs.contains_key(&did) {
                    self.end_dialog(did, TerminationReason::AckTimeout);
                } else {
                    // send_in_dialog ended it as a local BYE; say why.
                    for o in self.out.iter_mut().rev() {
                        if let UaOutput::Event(UaEvent::DialogTerminated { dialog, reason }) = o
                            && *dialog == did
                        {
                            *reason = TerminationReason::AckTimeout;
                            break;
                        }
                    }
                }
                continue;
            }
            let (server, response) = (p.server, p.response.clone());
            p.interval = p.interval.saturating_mul(2).min(t.t2);
            p.next = at + p.interval;
            let next = p.next.min(p.give_up);
            self.timers.push(Reverse((next, did)));
            let _ = self.layer.send_response(now, server, response);
        }
    }
}
