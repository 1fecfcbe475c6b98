//! The driver: carevox-sip's sans-IO transaction layer run on a
//! [`Transport`]'s sockets by one tokio task.
//!
//! An [`Endpoint`] is a handle to that task; [`EndpointEvents`] is the
//! stream of what the transaction user must know. The application sends
//! requests and responses and reads events; it never sees a socket, a timer
//! or a retransmission:
//!
//! - every received message is fed to the layer with its real transport
//!   kind and source, and the connection it came on is remembered so that
//!   responses go back over it (RFC 3261 section 18.2.2);
//! - every transmit of the layer goes out over the right transport (UDP at
//!   once; TCP and TLS through one ordered send lane per peer, so that a
//!   slow connect or TLS handshake never stalls the loop);
//! - the task sleeps until the layer's next deadline, then fires its
//!   timers;
//! - a send that fails is reported to the layer
//!   ([`TransactionLayer::transport_error`], sections 17.1.4 and 17.2.4),
//!   which ends the transaction and tells the application;
//! - [`Endpoint::shutdown`] stops new work and lets live transactions
//!   finish, up to a deadline.
//!
//! Logs (`tracing`) carry transaction ids, connection ids, transport kinds
//! and status codes only: never an address, a URI, a number, a name or a
//! message's content.

use std::net::SocketAddr;
use std::time::Duration;

use carevox_sip::dialog::DialogError;
use carevox_sip::transaction::{
    Config as LayerConfig, Event as LayerEvent, Input, Output, TransactionError, TransactionId,
    TransactionLayer,
};
use carevox_sip::{Message, MessageBuilder, Method};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::driver::{
    self, Core, Cx, Handle, Polled, Refusal, Reply, has_to_tag, layer_category, to_sip,
};
use crate::transport::{Incoming, Transport};
use crate::types::{CloseReason, ConnectionId, Destination, TransportKind};

/// Settings of an [`Endpoint`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// The transaction layer's timers and limits. An
    /// [`Agent`](crate::Agent) takes them from its
    /// [`UserAgent`](carevox_sip::dialog::UserAgent) instead.
    pub transactions: LayerConfig,
    /// Commands (sends, cancels) waiting for the task at once (default
    /// 256). Past it a call fails with [`EndpointError::Busy`].
    pub command_capacity: usize,
    /// Events waiting for the application at once (default 1 024). While
    /// they are not read, the task stops reading the transport (timers and
    /// commands are still served), so a slow application slows its peers
    /// instead of growing memory.
    pub event_capacity: usize,
    /// Messages waiting to be sent toward one TCP or TLS peer (default
    /// 256). Past it a send fails as a transport error of its transaction.
    pub lane_capacity: usize,
    /// Overload control (default 1 536): while more events than this wait
    /// for the application (in its channel, up to `event_capacity`, and
    /// queued behind it, up to `event_capacity` more: so it acts only
    /// below twice `event_capacity`), a new request (outside a dialog: no To tag;
    /// not ACK or CANCEL) is answered `503 Service Unavailable` with
    /// `Retry-After` by the task itself and never reaches the application.
    /// An overloaded server so keeps serving the calls it has (their ACKs,
    /// BYEs and responses still come through) and answers the rest at
    /// once, instead of falling behind on all of them while its peers
    /// retransmit. `usize::MAX` turns it off.
    pub overload_backlog: usize,
    /// How long live transactions get to finish when every [`Endpoint`]
    /// handle is dropped without [`Endpoint::shutdown`] (default 32 s,
    /// 64·T1).
    pub drop_grace: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            transactions: LayerConfig::default(),
            command_capacity: 256,
            event_capacity: 1024,
            lane_capacity: 256,
            overload_backlog: 1536,
            drop_grace: Duration::from_secs(32),
        }
    }
}

impl EndpointConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`EndpointConfig::transactions`].
    pub fn with_transactions(mut self, config: LayerConfig) -> Self {
        self.transactions = config;
        self
    }

    /// Sets [`EndpointConfig::command_capacity`] (at least 1).
    pub fn with_command_capacity(mut self, n: usize) -> Self {
        self.command_capacity = n.max(1);
        self
    }

    /// Sets [`EndpointConfig::event_capacity`] (at least 1).
    pub fn with_event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n.max(1);
        self
    }

    /// Sets [`EndpointConfig::lane_capacity`] (at least 1).
    pub fn with_lane_capacity(mut self, n: usize) -> Self {
        self.lane_capacity = n.max(1);
        self
    }

    /// Sets [`EndpointConfig::overload_backlog`].
    pub fn with_overload_backlog(mut self, n: usize) -> Self {
        self.overload_backlog = n;
        self
    }

    /// Sets [`EndpointConfig::drop_grace`].
    pub fn with_drop_grace(mut self, grace: Duration) -> Self {
        self.drop_grace = grace;
        self
    }
}

/// Why an [`Endpoint`] call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The endpoint's task has ended (shut down, or its transport closed).
    #[error("the endpoint is closed")]
    Closed,
    /// The command queue is full: the task is behind.
    #[error("the endpoint's command queue is full ({capacity} commands waiting)")]
    Busy {
        /// [`EndpointConfig::command_capacity`].
        capacity: usize,
    },
    /// The endpoint is shutting down: live transactions may still be
    /// answered and cancelled, but no new one is started.
    #[error("the endpoint is shutting down: no new client transaction is started")]
    ShuttingDown,
    /// The transaction layer refused the call.
    #[error("transaction layer: {0}")]
    Transaction(#[from] TransactionError),
    /// The user agent core of an [`Agent`](crate::Agent) refused the call.
    #[error("user agent: {0}")]
    Dialog(#[from] DialogError),
}

/// Where a received message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Origin {
    /// The peer's address.
    pub source: SocketAddr,
    /// Our address it arrived on.
    pub local: SocketAddr,
    /// The transport it came over.
    pub kind: TransportKind,
    /// The TCP or TLS connection it came on.
    pub connection: Option<ConnectionId>,
    /// Whether the TLS peer proved its identity with a verified certificate
    /// (see [`Received::peer_authenticated`](crate::Received::peer_authenticated)).
    pub peer_authenticated: bool,
}

/// What the application (the transaction user) must know.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EndpointEvent {
    /// A request created a server transaction: answer it with
    /// [`Endpoint::send_response`]. Its retransmissions are absorbed.
    Request {
        /// The server transaction.
        transaction: TransactionId,
        /// The request.
        request: Message,
        /// Where it came from.
        origin: Origin,
        /// For a CANCEL, the INVITE server transaction it cancels, if it is
        /// alive (RFC 3261 section 9.2); answer 481 when there is none.
        cancels: Option<TransactionId>,
    },
    /// A response to one of our client transactions: each provisional,
    /// the final one, and for INVITE every 2xx retransmission while the
    /// transaction is Accepted (RFC 6026), which the application answers
    /// with the same ACK ([`Endpoint::send_stateless`]).
    Response {
        /// The client transaction.
        transaction: TransactionId,
        /// The response.
        response: Message,
        /// Where it came from.
        origin: Origin,
    },
    /// An ACK outside an INVITE server transaction's non-2xx exchange: the
    /// ACK for a 2xx (RFC 3261 section 13.3.1.4), or a stray one.
    Ack {
        /// The INVITE server transaction it matched, while Accepted.
        transaction: Option<TransactionId>,
        /// The ACK.
        request: Message,
        /// Where it came from.
        origin: Origin,
    },
    /// A response that matched no client transaction (a 2xx after the
    /// INVITE transaction ended, a stray): a user agent ignores it (18.1.2).
    StrayResponse {
        /// The response.
        response: Message,
        /// Where it came from.
        origin: Origin,
    },
    /// A request merged with one already served (8.2.2.2): the layer
    /// answered it with 482 itself.
    MergedRequest {
        /// The server transaction that answered it.
        transaction: TransactionId,
        /// Where it came from.
        origin: Origin,
    },
    /// No final response in time (Timer B or F), or no ACK for a non-2xx
    /// final response (Timer H).
    TimedOut {
        /// The transaction.
        transaction: TransactionId,
    },
    /// A message of the transaction could not be sent (refused connection,
    /// failed TLS handshake, full queue): the transaction ended.
    TransportFailed {
        /// The transaction.
        transaction: TransactionId,
    },
    /// The transaction ended; its id is no longer known.
    Terminated {
        /// The transaction.
        transaction: TransactionId,
    },
    /// A TCP or TLS connection closed. Responses of server transactions
    /// whose requests came on it go to the request's source address
    /// instead (18.2.2).
    ConnectionClosed {
        /// The connection.
        connection: ConnectionId,
        /// Its transport.
        kind: TransportKind,
        /// Why.
        reason: CloseReason,
    },
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Transactions still alive at the deadline, cut without finishing
    /// (zero when every live transaction finished in time).
    pub abandoned: usize,
}

/// The stream of [`EndpointEvent`]s. Ends (`None`) once the endpoint has
/// shut down and every event was read.
#[derive(Debug)]
pub struct EndpointEvents {
    pub(crate) rx: mpsc::Receiver<EndpointEvent>,
}

impl EndpointEvents {
    /// The next event; `None` once the endpoint has shut down.
    pub async fn recv(&mut self) -> Option<EndpointEvent> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<EndpointEvent> {
        self.rx.try_recv().ok()
    }
}

enum LayerCommand {
    Request {
        request: Message,
        dest: Destination,
        reply: Reply<TransactionId>,
    },
    Response {
        transaction: TransactionId,
        response: Message,
        reply: Reply<()>,
    },
    Cancel {
        invite: TransactionId,
        reply: Reply<TransactionId>,
    },
    Stateless {
        message: Message,
        dest: Destination,
        reply: Reply<()>,
    },
}

impl std::fmt::Debug for LayerCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayerCommand::Request { .. } => "Request",
            LayerCommand::Response { .. } => "Response",
            LayerCommand::Cancel { .. } => "Cancel",
            LayerCommand::Stateless { .. } => "Stateless",
        })
    }
}

/// A handle to a running transaction driver; cheap to clone. See the
/// [crate documentation](crate) for an example.
#[derive(Debug, Clone)]
pub struct Endpoint {
    handle: Handle<LayerCommand>,
    transport: Transport,
}

impl Endpoint {
    /// Starts the driver task on `transport` and its `incoming` stream
    /// (both from [`TransportBuilder::start`](crate::TransportBuilder::start)).
    /// Must be called inside a tokio runtime.
    pub fn start(
        transport: Transport,
        incoming: Incoming,
        config: EndpointConfig,
    ) -> (Endpoint, EndpointEvents) {
        let core = LayerCore(TransactionLayer::new(config.transactions.clone()));
        let (handle, rx) = driver::spawn(core, transport.clone(), incoming, &config);
        (Endpoint { handle, transport }, EndpointEvents { rx })
    }

    /// The transport underneath (its local addresses, connection counts).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Starts a client transaction for `request` (any method but ACK) toward
    /// `dest`. The request's top Via must carry a branch starting with
    /// `z9hG4bK` that is unique to it
    /// ([`new_branch`](carevox_sip::transaction::new_branch)). For TLS, the
    /// destination's server name is checked against the certificate and is
    /// used again for the transaction's retransmissions and CANCEL.
    pub async fn send_request(
        &self,
        request: Message,
        dest: Destination,
    ) -> Result<TransactionId, EndpointError> {
        self.handle
            .call(|reply| LayerCommand::Request {
                request,
                dest,
                reply,
            })
            .await
    }

    /// Sends `response` in server transaction `transaction`, back over the
    /// connection the request came on while it is open (18.2.2).
    pub async fn send_response(
        &self,
        transaction: TransactionId,
        response: Message,
    ) -> Result<(), EndpointError> {
        self.handle
            .call(|reply| LayerCommand::Response {
                transaction,
                response,
                reply,
            })
            .await
    }

    /// Cancels the INVITE of client transaction `invite` (section 9.1): the
    /// CANCEL is built from the INVITE and waits for a provisional response
    /// if none has arrived. Returns the CANCEL's client transaction.
    pub async fn cancel(&self, invite: TransactionId) -> Result<TransactionId, EndpointError> {
        self.handle
            .call(|reply| LayerCommand::Cancel { invite, reply })
            .await
    }

    /// Sends a message outside any transaction: the ACK for a 2xx
    /// (section 13.2.2.4), or a response forwarded statelessly. Returns once
    /// it is handed to the transport; a failure is logged.
    pub async fn send_stateless(
        &self,
        message: Message,
        dest: Destination,
    ) -> Result<(), EndpointError> {
        self.handle
            .call(|reply| LayerCommand::Stateless {
                message,
                dest,
                reply,
            })
            .await
    }

    /// Number of live transactions.
    pub async fn live_transactions(&self) -> Result<usize, EndpointError> {
        self.handle.live().await
    }

    /// Graceful shutdown: the listeners close, no new client transaction is
    /// started, and new requests are answered `503 Service Unavailable`
    /// (a CANCEL of a live INVITE still reaches the application); live
    /// transactions go on, answered and retransmitted as usual, until all
    /// have ended or `grace` has passed. Then the transport closes (queues
    /// flushed, TLS close_notify) and the event stream ends.
    ///
    /// Several calls share one shutdown; the earliest deadline wins.
    pub async fn shutdown(&self, grace: Duration) -> Result<ShutdownReport, EndpointError> {
        self.handle.shutdown(grace).await
    }
}

/// The transaction layer as the machine of a driver.
struct LayerCore(TransactionLayer);

impl LayerCore {
    /// Answers a new request 503 during shutdown.
    fn refuse(
        &mut self,
        now: std::time::Instant,
        id: TransactionId,
        request: &Message,
        why: Refusal,
    ) {
        if request.method() == Some(Method::Ack) {
            return;
        }
        let response = MessageBuilder::response_to(request, 503, "Service Unavailable")
            .and_then(|b| b.header("Retry-After", why.retry_after()))
            .and_then(|b| b.build());
        match response {
            Ok(r) => {
                if let Err(e) = self.0.send_response(now, id, r) {
                    debug!(txn = %id, error = layer_category(&e), "503 refused");
                } else {
                    debug!(txn = %id, why = why.as_str(), "new request refused");
                }
            }
            Err(_) => debug!(txn = %id, "503 could not be built"),
        }
    }
}

impl Core for LayerCore {
    type Command = LayerCommand;
    type Raw = LayerEvent;
    type Event = EndpointEvent;

    fn feed(&mut self, now: std::time::Instant, input: Input) -> Result<(), &'static str> {
        self.0
            .handle_input(now, input)
            .map_err(|e| layer_category(&e))
    }

    fn poll(&mut self) -> Option<Polled<LayerEvent>> {
        match self.0.poll_output()? {
            Output::Transmit(t) => Some(Polled::Transmit(t)),
            Output::Event(e) => Some(Polled::Event(e)),
            _ => None,
        }
    }

    fn next_deadline(&mut self) -> Option<std::time::Instant> {
        self.0.next_deadline()
    }

    fn transport_error(&mut self, now: std::time::Instant, id: TransactionId) -> bool {
        self.0.transport_error(now, id).is_ok()
    }

    fn knows(&self, id: TransactionId) -> bool {
        self.0.kind(id).is_some()
    }

    fn live(&self) -> usize {
        self.0.len()
    }

    fn full(&self) -> bool {
        self.0.len() >= self.0.config().max_transactions
    }

    fn command(
        &mut self,
        now: std::time::Instant,
        command: LayerCommand,
        cx: &mut Cx<'_>,
    ) -> Option<TransactionId> {
        match command {
            LayerCommand::Request {
                request,
                dest,
                reply,
            } => {
                if cx.shutting_down {
                    let _ = reply.send(Err(EndpointError::ShuttingDown));
                    return None;
                }
                cx.peers.remember(&dest);
                let result = self
                    .0
                    .send_request(now, request, dest.addr, to_sip(dest.kind));
                match &result {
                    Ok(id) => {
                        cx.peers.live.insert(*id, (dest.kind, dest.addr));
                        debug!(txn = %id, kind = %dest.kind, "client transaction started");
                    }
                    Err(e) => debug!(error = layer_category(e), "request refused"),
                }
                let id = result.as_ref().ok().copied();
                let _ = reply.send(result.map_err(Into::into));
                id
            }
            LayerCommand::Response {
                transaction,
                response,
                reply,
            } => {
                let status = response.status();
                let result = self.0.send_response(now, transaction, response);
                match &result {
                    Ok(()) => debug!(txn = %transaction, status, "response sent"),
                    Err(e) => {
                        debug!(txn = %transaction, error = layer_category(e), "response refused")
                    }
                }
                let _ = reply.send(result.map_err(Into::into));
                Some(transaction)
            }
            LayerCommand::Cancel { invite, reply } => {
                let result = self.0.send_cancel(now, invite);
                match &result {
                    Ok(id) => {
                        if let Some(&peer) = cx.peers.live.get(&invite) {
                            cx.peers.live.insert(*id, peer);
                        }
                        debug!(txn = %id, invite = %invite, "CANCEL started");
                    }
                    Err(e) => debug!(txn = %invite, error = layer_category(e), "CANCEL refused"),
                }
                let id = result.as_ref().ok().copied();
                let _ = reply.send(result.map_err(Into::into));
                id
            }
            LayerCommand::Stateless {
                message,
                dest,
                reply,
            } => {
                cx.peers.remember(&dest);
                self.0
                    .send_stateless(dest.addr, to_sip(dest.kind), &message);
                let _ = reply.send(Ok(()));
                None
            }
        }
    }

    fn event(
        &mut self,
        now: std::time::Instant,
        event: LayerEvent,
        cx: &mut Cx<'_>,
    ) -> Option<EndpointEvent> {
        let origin = cx.origin;
        let conn = origin.and_then(|o| o.connection);
        match event {
            LayerEvent::Request {
                id,
                request,
                cancels,
                ..
            } => {
                let Some(origin) = origin else {
                    warn!(txn = %id, "request event without a received message; dropped");
                    return None;
                };
                cx.peers.live.insert(id, (origin.kind, origin.source));
                debug!(txn = %id, conn = ?conn, kind = %origin.kind, "request received");
                if cx.shutting_down && cancels.is_none() {
                    self.refuse(now, id, &request, Refusal::ShuttingDown);
                    return None;
                }
                if cx.overloaded
                    && cancels.is_none()
                    && request.method() != Some(Method::Cancel)
                    && !has_to_tag(&request)
                {
                    self.refuse(now, id, &request, Refusal::Overloaded);
                    return None;
                }
                Some(EndpointEvent::Request {
                    transaction: id,
                    request,
                    origin,
                    cancels,
                })
            }
            LayerEvent::Ack {
                transaction,
                request,
                ..
            } => {
                let Some(origin) = origin else {
                    warn!(txn = ?transaction, "ACK event without a received message; dropped");
                    return None;
                };
                debug!(txn = ?transaction, conn = ?conn, "ACK for a 2xx received");
                Some(EndpointEvent::Ack {
                    transaction,
                    request,
                    origin,
                })
            }
            LayerEvent::Response { id, response } => {
                let Some(origin) = origin else {
                    warn!(txn = %id, "response event without a received message; dropped");
                    return None;
                };
                debug!(txn = %id, conn = ?conn, status = response.status(), "response received");
                Some(EndpointEvent::Response {
                    transaction: id,
                    response,
                    origin,
                })
            }
            LayerEvent::UnmatchedResponse { response, .. } => {
                let Some(origin) = origin else {
                    warn!("stray response event without a received message; dropped");
                    return None;
                };
                debug!(conn = ?conn, status = response.status(), "response matching no transaction");
                Some(EndpointEvent::StrayResponse { response, origin })
            }
            LayerEvent::MergedRequest { id } => {
                let Some(origin) = origin else {
                    warn!(txn = %id, "merged request event without a received message; dropped");
                    return None;
                };
                cx.peers.live.insert(id, (origin.kind, origin.source));
                debug!(txn = %id, conn = ?conn, "merged request answered 482");
                Some(EndpointEvent::MergedRequest {
                    transaction: id,
                    origin,
                })
            }
            LayerEvent::Timeout { id } => {
                info!(txn = %id, "transaction timed out");
                Some(EndpointEvent::TimedOut { transaction: id })
            }
            LayerEvent::TransportError { id } => {
                info!(txn = %id, "transaction failed in the transport");
                Some(EndpointEvent::TransportFailed { transaction: id })
            }
            LayerEvent::Terminated { id } => {
                cx.peers.live.remove(&id);
                debug!(txn = %id, "transaction terminated");
                Some(EndpointEvent::Terminated { transaction: id })
            }
            _ => {
                debug!("transaction layer event not handled by this driver");
                None
            }
        }
    }

    fn connection_closed(
        connection: ConnectionId,
        kind: TransportKind,
        reason: CloseReason,
    ) -> EndpointEvent {
        EndpointEvent::ConnectionClosed {
            connection,
            kind,
            reason,
        }
    }
}
