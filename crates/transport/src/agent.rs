//! The user agent driver: carevox-sip's sans-IO user agent core
//! ([`UserAgent`]: dialogs on top of the transaction layer) run on a
//! [`Transport`]'s sockets by one tokio task.
//!
//! An [`Agent`] is a handle to that task; [`AgentEvents`] is the stream of
//! what the application must know. The task is the same loop as an
//! [`Endpoint`](crate::Endpoint)'s (received messages fed with their real
//! transport and source, transmits sent over the right transport, timers,
//! failed sends reported, bounded queues, graceful shutdown); on top of it
//! the core keeps the rules of sections 12 and 13 that need state and time:
//! dialogs and their CSeq, route sets and targets, the ACK for every 2xx,
//! the 2xx retransmitted until its ACK, 481, 487 and 491.
//!
//! Over TCP and TLS, a dialog's requests (BYE, re-INVITE, UPDATE...) go
//! over the connection its peer's messages came on when the dialog's
//! next hop has no connection of its own: a phone behind a NAT or without a
//! TLS server of its own stays reachable for the life of the call (the
//! connection reuse of RFC 5923 and the flows of RFC 5626, kept per dialog
//! so that one peer's Contact never redirects another's traffic).
//!
//! Logs (`tracing`) carry transaction, dialog and connection ids only.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use carevox_sip::dialog::{Dialog, DialogError, DialogId, Outgoing, UaEvent, UaOutput, UserAgent};
use carevox_sip::transaction::{Input, TransactionId};
use carevox_sip::{Message, Method};
use tokio::sync::mpsc;
use tracing::{debug, info};

use crate::driver::{self, Core, Cx, Handle, Polled, Refusal, Reply, has_to_tag, to_sip};
use crate::endpoint::{EndpointConfig, EndpointError, Origin, ShutdownReport};
use crate::transport::{Incoming, Transport};
use crate::types::{CloseReason, ConnectionId, Destination, TransportKind};

/// What the application of an [`Agent`] must know.
#[derive(Debug, Clone)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "almost every event is a core event, matched through its fields"
)]
pub enum AgentEvent {
    /// An event of the user agent core, with where the message that caused
    /// it came from (`None` for what a timer or an API call caused: a
    /// timeout, a dialog created by our own 2xx).
    Ua {
        /// The event.
        event: UaEvent,
        /// Where the message that caused it came from.
        origin: Option<Origin>,
    },
    /// A TCP or TLS connection closed.
    ConnectionClosed {
        /// The connection.
        connection: ConnectionId,
        /// Its transport.
        kind: TransportKind,
        /// Why.
        reason: CloseReason,
    },
}

/// The stream of [`AgentEvent`]s. Ends (`None`) once the agent has shut
/// down and every event was read.
#[derive(Debug)]
pub struct AgentEvents {
    rx: mpsc::Receiver<AgentEvent>,
}

impl AgentEvents {
    /// The next event; `None` once the agent has shut down.
    pub async fn recv(&mut self) -> Option<AgentEvent> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<AgentEvent> {
        self.rx.try_recv().ok()
    }
}

type Headers = Vec<(String, String)>;
type Body = Option<(String, Bytes)>;

fn borrowed(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

fn body_ref(body: &Body) -> Option<(&str, Bytes)> {
    body.as_ref().map(|(t, b)| (t.as_str(), b.clone()))
}

enum AgentCommand {
    Request {
        request: Box<Outgoing>,
        dest: Destination,
        reply: Reply<TransactionId>,
    },
    InDialog {
        dialog: DialogId,
        method: String,
        headers: Headers,
        body: Body,
        reply: Reply<TransactionId>,
    },
    Respond {
        transaction: TransactionId,
        status: u16,
        reason: String,
        headers: Headers,
        body: Body,
        reply: Reply<Option<DialogId>>,
    },
    Cancel {
        invite: TransactionId,
        reply: Reply<TransactionId>,
    },
    Dialog {
        dialog: DialogId,
        reply: Reply<Option<Dialog>>,
    },
    Forget {
        dialog: DialogId,
        reply: Reply<()>,
    },
}

impl std::fmt::Debug for AgentCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AgentCommand::Request { .. } => "Request",
            AgentCommand::InDialog { .. } => "InDialog",
            AgentCommand::Respond { .. } => "Respond",
            AgentCommand::Cancel { .. } => "Cancel",
            AgentCommand::Dialog { .. } => "Dialog",
            AgentCommand::Forget { .. } => "Forget",
        })
    }
}

/// A handle to a running user agent driver; cheap to clone.
///
/// # Example
///
/// Two agents on 127.0.0.1: one calls, the other answers, the caller hangs
/// up. The ACK for the 2xx, the 2xx retransmissions and the dialogs' CSeq
/// are the cores' business.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use carevox_sip::dialog::{Outgoing, UaConfig, UaEvent, UserAgent};
/// use carevox_sip::transaction::TransportKind as SipKind;
/// use carevox_transport::{
///     Agent, AgentEvent, Destination, EndpointConfig, TransportBuilder, TransportConfig,
/// };
///
/// let rng = Arc::new(ring::rand::SystemRandom::new());
/// let mut agents = Vec::new();
/// for user in ["alice", "bob"] {
///     let (transport, incoming) = TransportBuilder::new(TransportConfig::default())
///         .udp("127.0.0.1:0".parse()?)
///         .start()
///         .await?;
///     let addr = transport.local_addrs()[0].1;
///     let ua = UserAgent::new(
///         UaConfig::new(&addr.to_string(), &format!("<sip:{user}@{addr}>")),
///         rng.clone(),
///     );
///     let (agent, events) = Agent::start(transport, incoming, ua, EndpointConfig::default());
///     agents.push((agent, events, addr));
/// }
/// let (bob, mut bob_events, bob_addr) = agents.pop().unwrap();
/// let (alice, mut alice_events, _) = agents.pop().unwrap();
///
/// let invite = Outgoing::new(
///     "INVITE", &format!("sip:bob@{bob_addr}"), "<sip:alice@example.org>",
///     "<sip:bob@example.org>", bob_addr, SipKind::Udp,
/// );
/// alice.send_request(invite, Destination::udp(bob_addr)).await?;
/// // Bob answers 200 to the INVITE.
/// loop {
///     if let Some(AgentEvent::Ua { event: UaEvent::Request { id, .. }, .. }) =
///         bob_events.recv().await
///     {
///         bob.respond(id, 200, "OK", &[], None).await?;
///         break;
///     }
/// }
/// // Alice's dialog is confirmed (her core sent the ACK); she hangs up.
/// let dialog = loop {
///     if let Some(AgentEvent::Ua { event: UaEvent::DialogConfirmed { dialog }, .. }) =
///         alice_events.recv().await
///     {
///         break dialog;
///     }
/// };
/// alice.send_in_dialog(dialog, "BYE", &[], None).await?;
/// // Bob's core answers the BYE and ends his dialog.
/// loop {
///     if let Some(AgentEvent::Ua { event: UaEvent::DialogTerminated { .. }, .. }) =
///         bob_events.recv().await
///     {
///         break;
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Agent {
    handle: Handle<AgentCommand>,
    transport: Transport,
}

impl Agent {
    /// Starts the driver task of `ua` on `transport` and its `incoming`
    /// stream (both from
    /// [`TransportBuilder::start`](crate::TransportBuilder::start)). The
    /// agent's transaction timers and caps are those `ua` was made with;
    /// `config` gives the queues and the drop grace
    /// ([`EndpointConfig::transactions`] is not used). `ua`'s sent-by and
    /// Contact should name the transport's address. Must be called inside a
    /// tokio runtime.
    pub fn start(
        transport: Transport,
        incoming: Incoming,
        ua: UserAgent,
        config: EndpointConfig,
    ) -> (Agent, AgentEvents) {
        let core = UaCore {
            ua,
            flows: HashMap::new(),
            sent_on: HashMap::new(),
        };
        let (handle, rx) = driver::spawn(core, transport.clone(), incoming, &config);
        (Agent { handle, transport }, AgentEvents { rx })
    }

    /// The transport underneath (its local addresses, connection counts).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Sends a request outside any dialog (an INVITE, whose responses make
    /// dialogs; REGISTER, OPTIONS, MESSAGE...) toward `dest`, which
    /// replaces `request`'s own destination and transport. For TLS the
    /// destination's server name is checked against the certificate; a
    /// destination's connection (a registered phone's flow) is used while
    /// it is open.
    pub async fn send_request(
        &self,
        request: Outgoing,
        dest: Destination,
    ) -> Result<TransactionId, EndpointError> {
        self.handle
            .call(|reply| AgentCommand::Request {
                request: Box::new(request),
                dest,
                reply,
            })
            .await
    }

    /// Sends a request in a dialog (BYE, re-INVITE, UPDATE, INFO...), built
    /// from the dialog's state ([`UserAgent::send_in_dialog`]). Allowed
    /// during a shutdown, so that calls can be ended.
    pub async fn send_in_dialog(
        &self,
        dialog: DialogId,
        method: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Bytes)>,
    ) -> Result<TransactionId, EndpointError> {
        let method = method.to_owned();
        let headers = owned(headers);
        let body = body.map(|(t, b)| (t.to_owned(), b));
        self.handle
            .call(|reply| AgentCommand::InDialog {
                dialog,
                method,
                headers,
                body,
                reply,
            })
            .await
    }

    /// Answers a request received as [`UaEvent::Request`]
    /// ([`UserAgent::respond`]): the core adds the To tag and Contact,
    /// makes the dialog of a 1xx or 2xx to an INVITE and retransmits its
    /// 2xx until the ACK. Returns the dialog, if any.
    pub async fn respond(
        &self,
        transaction: TransactionId,
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Bytes)>,
    ) -> Result<Option<DialogId>, EndpointError> {
        let reason = reason.to_owned();
        let headers = owned(headers);
        let body = body.map(|(t, b)| (t.to_owned(), b));
        self.handle
            .call(|reply| AgentCommand::Respond {
                transaction,
                status,
                reason,
                headers,
                body,
                reply,
            })
            .await
    }

    /// Cancels an INVITE of ours (section 9.1). Returns the CANCEL's client
    /// transaction.
    pub async fn cancel(&self, invite: TransactionId) -> Result<TransactionId, EndpointError> {
        self.handle
            .call(|reply| AgentCommand::Cancel { invite, reply })
            .await
    }

    /// A copy of a live dialog's state.
    pub async fn dialog(&self, dialog: DialogId) -> Result<Option<Dialog>, EndpointError> {
        self.handle
            .call(|reply| AgentCommand::Dialog { dialog, reply })
            .await
    }

    /// Ends a dialog without sending anything: a subscription's, once its
    /// last NOTIFY is sent (see
    /// [`UserAgent::forget_dialog`](carevox_sip::dialog::UserAgent::forget_dialog)).
    pub async fn forget_dialog(&self, dialog: DialogId) -> Result<(), EndpointError> {
        self.handle
            .call(|reply| AgentCommand::Forget { dialog, reply })
            .await
    }

    /// Number of live transactions.
    pub async fn live_transactions(&self) -> Result<usize, EndpointError> {
        self.handle.live().await
    }

    /// Graceful shutdown, as [`Endpoint::shutdown`](crate::Endpoint::shutdown):
    /// no new request outside a dialog is sent, new requests outside a
    /// dialog are answered 503, while requests in dialogs (a BYE) still
    /// reach the application and may still be sent; live transactions
    /// finish until `grace` has passed. Dialogs are not ended by the
    /// shutdown: send their BYEs first.
    pub async fn shutdown(&self, grace: Duration) -> Result<ShutdownReport, EndpointError> {
        self.handle.shutdown(grace).await
    }
}

fn owned(headers: &[(&str, &str)]) -> Headers {
    headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// A category of a user agent error that is safe to log.
fn dialog_category(e: &DialogError) -> &'static str {
    match e {
        DialogError::TooManyDialogs { .. } => "too many dialogs",
        DialogError::UnknownDialog { .. } => "unknown dialog",
        DialogError::Method { .. } => "method not allowed here",
        DialogError::NotConfirmed { .. } => "dialog not confirmed",
        DialogError::InviteInProgress { .. } => "INVITE in progress",
        DialogError::CSeqExhausted { .. } => "CSeq exhausted",
        DialogError::Transaction(e) => driver::layer_category(e),
        DialogError::Message(_) => "unusable message",
        DialogError::Random(_) => "random number generator",
        _ => "other",
    }
}

/// The user agent core as the machine of a driver.
struct UaCore {
    ua: UserAgent,
    /// The connection each stream dialog's peer last sent on.
    flows: HashMap<DialogId, ConnectionId>,
    /// The flow of each in-dialog request of ours, taken when it is sent
    /// (a BYE ends its dialog at once, before its transmit goes out).
    sent_on: HashMap<TransactionId, ConnectionId>,
}

impl UaCore {
    fn learn_flow(&mut self, dialog: Option<DialogId>, origin: Option<&Origin>) {
        if let (Some(d), Some(c)) = (dialog, origin.and_then(|o| o.connection))
            && self.ua.dialog(d).is_some()
        {
            self.flows.insert(d, c);
        }
    }

    /// Answers a new request outside any dialog 503, during shutdown or
    /// overload.
    fn refuse(&mut self, now: std::time::Instant, id: TransactionId, why: Refusal) {
        match self.ua.respond(
            now,
            id,
            503,
            "Service Unavailable",
            &[("Retry-After", why.retry_after())],
            None,
        ) {
            Ok(_) => debug!(txn = %id, why = why.as_str(), "new request refused"),
            Err(e) => debug!(txn = %id, error = dialog_category(&e), "503 refused"),
        }
    }
}

impl Core for UaCore {
    type Command = AgentCommand;
    type Raw = UaEvent;
    type Event = AgentEvent;

    fn feed(&mut self, now: std::time::Instant, input: Input) -> Result<(), &'static str> {
        self.ua
            .handle_input(now, input)
            .map_err(|e| dialog_category(&e))
    }

    fn poll(&mut self) -> Option<Polled<UaEvent>> {
        match self.ua.poll_output()? {
            UaOutput::Transmit(t) => Some(Polled::Transmit(t)),
            UaOutput::Event(e) => Some(Polled::Event(e)),
            _ => None,
        }
    }

    fn next_deadline(&mut self) -> Option<std::time::Instant> {
        self.ua.next_deadline()
    }

    fn transport_error(&mut self, now: std::time::Instant, id: TransactionId) -> bool {
        self.ua.transport_error(now, id).is_ok()
    }

    fn knows(&self, id: TransactionId) -> bool {
        self.ua.transactions().kind(id).is_some()
    }

    fn live(&self) -> usize {
        self.ua.transactions().len()
    }

    fn full(&self) -> bool {
        let layer = self.ua.transactions();
        layer.len() >= layer.config().max_transactions
    }

    fn command(
        &mut self,
        now: std::time::Instant,
        command: AgentCommand,
        cx: &mut Cx<'_>,
    ) -> Option<TransactionId> {
        match command {
            AgentCommand::Request {
                mut request,
                dest,
                reply,
            } => {
                if cx.shutting_down {
                    let _ = reply.send(Err(EndpointError::ShuttingDown));
                    return None;
                }
                cx.peers.remember(&dest);
                request.destination = dest.addr;
                request.transport = to_sip(dest.kind);
                let result = self.ua.send_request(now, &request);
                match &result {
                    Ok(id) => {
                        cx.peers.live.insert(*id, (dest.kind, dest.addr));
                        debug!(txn = %id, kind = %dest.kind, "request sent");
                    }
                    Err(e) => debug!(error = dialog_category(e), "request refused"),
                }
                let id = result.as_ref().ok().copied();
                let _ = reply.send(result.map_err(Into::into));
                id
            }
            AgentCommand::InDialog {
                dialog,
                method,
                headers,
                body,
                reply,
            } => {
                let result = self.ua.send_in_dialog(
                    now,
                    dialog,
                    &method,
                    &borrowed(&headers),
                    body_ref(&body),
                );
                match &result {
                    Ok(id) => {
                        if let Some(&c) = self.flows.get(&dialog) {
                            let ua = &self.ua;
                            if self.sent_on.len() > 2 * ua.transactions().len() + 64 {
                                self.sent_on
                                    .retain(|t, _| ua.transactions().kind(*t).is_some());
                            }
                            self.sent_on.insert(*id, c);
                        }
                        debug!(txn = %id, dialog = %dialog, "request sent in dialog");
                    }
                    Err(e) => {
                        debug!(dialog = %dialog, error = dialog_category(e), "request refused")
                    }
                }
                let id = result.as_ref().ok().copied();
                let _ = reply.send(result.map_err(Into::into));
                id
            }
            AgentCommand::Respond {
                transaction,
                status,
                reason,
                headers,
                body,
                reply,
            } => {
                let result = self.ua.respond(
                    now,
                    transaction,
                    status,
                    &reason,
                    &borrowed(&headers),
                    body_ref(&body),
                );
                match &result {
                    Ok(dialog) => {
                        // A dialog our response made keeps the connection
                        // its INVITE came on.
                        if let Some(d) = dialog
                            && !self.flows.contains_key(d)
                            && let Some(peer) = cx.peers.live.get(&transaction)
                            && let Some(&c) = cx.peers.conns.get(peer)
                        {
                            self.flows.insert(*d, c);
                        }
                        debug!(txn = %transaction, status, "response sent");
                    }
                    Err(e) => {
                        debug!(txn = %transaction, error = dialog_category(e), "response refused")
                    }
                }
                let _ = reply.send(result.map_err(Into::into));
                Some(transaction)
            }
            AgentCommand::Cancel { invite, reply } => {
                let result = self.ua.cancel(now, invite);
                match &result {
                    Ok(id) => {
                        if let Some(&peer) = cx.peers.live.get(&invite) {
                            cx.peers.live.insert(*id, peer);
                        }
                        debug!(txn = %id, invite = %invite, "CANCEL started");
                    }
                    Err(e) => debug!(txn = %invite, error = dialog_category(e), "CANCEL refused"),
                }
                let id = result.as_ref().ok().copied();
                let _ = reply.send(result.map_err(Into::into));
                id
            }
            AgentCommand::Dialog { dialog, reply } => {
                let _ = reply.send(Ok(self.ua.dialog(dialog).cloned()));
                None
            }
            AgentCommand::Forget { dialog, reply } => {
                let result = self.ua.forget_dialog(dialog).map_err(Into::into);
                let _ = reply.send(result);
                None
            }
        }
    }

    fn event(
        &mut self,
        now: std::time::Instant,
        event: UaEvent,
        cx: &mut Cx<'_>,
    ) -> Option<AgentEvent> {
        let origin = cx.origin;
        match &event {
            UaEvent::Request {
                id,
                request,
                dialog,
            } => {
                if let Some(o) = &origin {
                    cx.peers.live.insert(*id, (o.kind, o.source));
                }
                self.learn_flow(*dialog, origin.as_ref());
                debug!(txn = %id, dialog = ?dialog, "request received");
                if cx.shutting_down && dialog.is_none() && !is_ack(request) {
                    self.refuse(now, *id, Refusal::ShuttingDown);
                    return None;
                }
                if cx.overloaded
                    && dialog.is_none()
                    && !has_to_tag(request)
                    && !matches!(request.method(), Some(Method::Ack | Method::Cancel))
                {
                    self.refuse(now, *id, Refusal::Overloaded);
                    return None;
                }
            }
            UaEvent::Response { id, dialog, .. } => {
                self.learn_flow(*dialog, origin.as_ref());
                debug!(txn = %id, dialog = ?dialog, "response received");
            }
            UaEvent::DialogEarly { dialog } | UaEvent::DialogConfirmed { dialog } => {
                self.learn_flow(Some(*dialog), origin.as_ref());
                debug!(dialog = %dialog, "dialog established");
            }
            UaEvent::Ack { dialog, .. } => {
                self.learn_flow(Some(*dialog), origin.as_ref());
                debug!(dialog = %dialog, "ACK received");
            }
            UaEvent::DialogTerminated { dialog, reason } => {
                self.flows.remove(dialog);
                debug!(dialog = %dialog, reason = ?reason, "dialog ended");
            }
            UaEvent::Timeout { id } => info!(txn = %id, "transaction timed out"),
            UaEvent::TransportError { id } => {
                info!(txn = %id, "transaction failed in the transport");
            }
            UaEvent::Cancelled { invite } => debug!(txn = %invite, "INVITE cancelled by the peer"),
            _ => debug!("user agent event"),
        }
        Some(AgentEvent::Ua { event, origin })
    }

    fn connection_closed(
        connection: ConnectionId,
        kind: TransportKind,
        reason: CloseReason,
    ) -> AgentEvent {
        AgentEvent::ConnectionClosed {
            connection,
            kind,
            reason,
        }
    }

    fn flow(&self, owner: Option<TransactionId>) -> Option<ConnectionId> {
        owner.and_then(|t| self.sent_on.get(&t).copied())
    }
}

fn is_ack(request: &Message) -> bool {
    request.method() == Some(Method::Ack)
}
