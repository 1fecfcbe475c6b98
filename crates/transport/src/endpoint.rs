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

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use carevox_sip::transaction::{
    Config as LayerConfig, Event as LayerEvent, Input, Output, Received as LayerReceived,
    TransactionError, TransactionId, TransactionLayer, TransportKind as SipKind,
};
use carevox_sip::{Message, MessageBuilder, Method};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{debug, info, warn};

use crate::error::Error;
use crate::transport::{Incoming, Transport};
use crate::types::{CloseReason, ConnectionId, Destination, Event, TransportKind};

/// How long the last events wait for room in the application's queue once
/// the endpoint has stopped.
const FINAL_EVENTS_WAIT: Duration = Duration::from_secs(1);

/// How long a send lane toward one peer lives without traffic.
const LANE_IDLE: Duration = Duration::from_secs(30);

/// Settings of an [`Endpoint`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// The transaction layer's timers and limits.
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
    rx: mpsc::Receiver<EndpointEvent>,
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

type Reply<T> = oneshot::Sender<Result<T, EndpointError>>;

enum Command {
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
    Live {
        reply: Reply<usize>,
    },
    Shutdown {
        grace: Duration,
        reply: oneshot::Sender<ShutdownReport>,
    },
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Command::Request { .. } => "Request",
            Command::Response { .. } => "Response",
            Command::Cancel { .. } => "Cancel",
            Command::Stateless { .. } => "Stateless",
            Command::Live { .. } => "Live",
            Command::Shutdown { .. } => "Shutdown",
        })
    }
}

/// A handle to a running transaction driver; cheap to clone. See the
/// [crate documentation](crate) for an example.
#[derive(Debug, Clone)]
pub struct Endpoint {
    commands: mpsc::Sender<Command>,
    capacity: usize,
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
        let (commands, command_rx) = mpsc::channel(config.command_capacity.max(1));
        let (events_tx, events_rx) = mpsc::channel(config.event_capacity.max(1));
        let (failures_tx, failures_rx) = mpsc::channel(64);
        let driver = Driver {
            layer: TransactionLayer::new(config.transactions.clone()),
            transport: transport.clone(),
            incoming,
            commands: command_rx,
            events: events_tx,
            failures_tx,
            failures: failures_rx,
            pending: VecDeque::new(),
            conns: HashMap::new(),
            names: HashMap::new(),
            live: HashMap::new(),
            lanes: HashMap::new(),
            shutdown: None,
            waiters: Vec::new(),
            config: config.clone(),
        };
        tokio::spawn(driver.run());
        let endpoint = Endpoint {
            commands,
            capacity: config.command_capacity.max(1),
            transport,
        };
        (endpoint, EndpointEvents { rx: events_rx })
    }

    /// The transport underneath (its local addresses, connection counts).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    fn submit(&self, command: Command) -> Result<(), EndpointError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EndpointError::Busy {
                capacity: self.capacity,
            },
            mpsc::error::TrySendError::Closed(_) => EndpointError::Closed,
        })
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, EndpointError> {
        let (reply, answer) = oneshot::channel();
        self.submit(make(reply))?;
        answer.await.map_err(|_| EndpointError::Closed)?
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
        self.call(|reply| Command::Request {
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
        self.call(|reply| Command::Response {
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
        self.call(|reply| Command::Cancel { invite, reply }).await
    }

    /// Sends a message outside any transaction: the ACK for a 2xx
    /// (section 13.2.2.4), or a response forwarded statelessly. Returns once
    /// it is handed to the transport; a failure is logged.
    pub async fn send_stateless(
        &self,
        message: Message,
        dest: Destination,
    ) -> Result<(), EndpointError> {
        self.call(|reply| Command::Stateless {
            message,
            dest,
            reply,
        })
        .await
    }

    /// Number of live transactions.
    pub async fn live_transactions(&self) -> Result<usize, EndpointError> {
        self.call(|reply| Command::Live { reply }).await
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
        let (reply, answer) = oneshot::channel();
        self.submit(Command::Shutdown { grace, reply })?;
        answer.await.map_err(|_| EndpointError::Closed)
    }
}

fn to_sip(kind: TransportKind) -> SipKind {
    match kind {
        TransportKind::Udp => SipKind::Udp,
        TransportKind::Tcp => SipKind::Tcp,
        TransportKind::Tls => SipKind::Tls,
    }
}

fn from_sip(kind: SipKind) -> Option<TransportKind> {
    match kind {
        SipKind::Udp => Some(TransportKind::Udp),
        SipKind::Tcp => Some(TransportKind::Tcp),
        SipKind::Tls => Some(TransportKind::Tls),
        _ => None,
    }
}

/// A category of a transport error that is safe to log.
fn category(e: &Error) -> &'static str {
    match e {
        Error::Io { op, .. } => op,
        Error::Tls { .. } => "TLS handshake failed",
        Error::TlsConfig { .. } => "TLS configuration",
        Error::QueueFull { .. } => "send queue full",
        Error::MessageTooLarge { .. } => "message too large",
        Error::TooManyConnections { .. } => "connection limit",
        Error::Timeout { .. } => "connect timeout",
        Error::ConnectionClosed { .. } => "connection closed",
        Error::NoSocket { .. } => "no socket",
        Error::NoTlsClient => "no TLS client configuration",
        Error::InvalidServerName => "invalid server name",
        Error::Closed => "transport closed",
    }
}

/// A category of a transaction layer error that is safe to log.
fn layer_category(e: &TransactionError) -> &'static str {
    match e {
        TransactionError::TooManyTransactions { .. } => "too many transactions",
        TransactionError::UnknownTransaction { .. } => "unknown transaction",
        TransactionError::InvalidState { .. } => "invalid state",
        TransactionError::WrongMessageKind { .. } => "wrong message kind",
        TransactionError::AckNotTransactional => "ACK outside a transaction",
        TransactionError::MissingBranch => "missing branch",
        TransactionError::DuplicateBranch => "duplicate branch",
        TransactionError::ResponseMismatch { .. } => "response mismatch",
        TransactionError::Message(_) => "unusable message",
        _ => "other",
    }
}

type PeerKey = (TransportKind, SocketAddr);

/// One message for a send lane.
struct LaneItem {
    dest: Destination,
    bytes: Bytes,
    transaction: Option<TransactionId>,
}

/// A send that failed after it left the driver's loop.
struct Failure {
    transaction: Option<TransactionId>,
    peer: PeerKey,
}

/// What woke the driver's loop.
enum Step {
    Idle,
    EventsClosed,
    Timer,
    Command(Option<Command>),
    Failure(Failure),
    Incoming(Option<Event>),
}

struct Shutdown {
    deadline: Instant,
}

struct Driver {
    layer: TransactionLayer,
    transport: Transport,
    incoming: Incoming,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<EndpointEvent>,
    failures_tx: mpsc::Sender<Failure>,
    failures: mpsc::Receiver<Failure>,
    /// Events not yet taken by the application's channel.
    pending: VecDeque<EndpointEvent>,
    /// The connection each stream peer's messages last came on.
    conns: HashMap<PeerKey, ConnectionId>,
    /// The TLS server name given for a peer by the application.
    names: HashMap<PeerKey, String>,
    /// Live transactions and their peers, for failures not tied to one.
    live: HashMap<TransactionId, PeerKey>,
    /// Ordered senders toward TCP and TLS peers.
    lanes: HashMap<PeerKey, mpsc::Sender<LaneItem>>,
    shutdown: Option<Shutdown>,
    waiters: Vec<oneshot::Sender<ShutdownReport>>,
    config: EndpointConfig,
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl Driver {
    async fn run(mut self) {
        info!("endpoint started");
        let mut commands_open = true;
        let mut incoming_open = true;
        let mut events_open = true;
        loop {
            if let Some(s) = &self.shutdown
                && (self.layer.is_empty() || Instant::now() >= s.deadline)
            {
                break;
            }
            let wake = self.layer.next_deadline().map(Instant::from_std);
            let shutdown_at = self.shutdown.as_ref().map(|s| s.deadline);
            let can_read = incoming_open && self.pending.len() < self.config.event_capacity;
            let step = tokio::select! {
                biased;
                permit = self.events.reserve(), if events_open && !self.pending.is_empty() => {
                    match permit {
                        Ok(permit) => {
                            if let Some(e) = self.pending.pop_front() {
                                permit.send(e);
                            }
                            Step::Idle
                        }
                        Err(_) => Step::EventsClosed,
                    }
                }
                () = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => Step::Timer,
                () = sleep_until(shutdown_at.unwrap_or_else(Instant::now)), if shutdown_at.is_some() => Step::Idle,
                command = self.commands.recv(), if commands_open => Step::Command(command),
                Some(failure) = self.failures.recv() => Step::Failure(failure),
                event = self.incoming.recv(), if can_read => Step::Incoming(event),
            };
            match step {
                Step::Idle => {}
                Step::EventsClosed => {
                    events_open = false;
                    warn!(
                        dropped = self.pending.len(),
                        "event stream dropped by the application"
                    );
                }
                Step::Timer => self.fire().await,
                Step::Command(Some(c)) => self.command(c).await,
                Step::Command(None) => {
                    commands_open = false;
                    if self.shutdown.is_none() {
                        info!("every endpoint handle dropped: shutting down");
                        self.begin_shutdown(self.config.drop_grace);
                    }
                }
                Step::Failure(f) => self.failure(f).await,
                Step::Incoming(Some(e)) => self.transport_event(e).await,
                Step::Incoming(None) => {
                    incoming_open = false;
                    info!("transport closed");
                    if self.shutdown.is_none() {
                        self.begin_shutdown(Duration::ZERO);
                    }
                }
            }
            if !events_open {
                self.pending.clear();
            }
        }
        self.finish().await;
    }

    async fn finish(mut self) {
        let abandoned = self.layer.len();
        if abandoned > 0 {
            warn!(
                abandoned,
                "shutdown deadline passed with live transactions; cut"
            );
        }
        let grace = self
            .shutdown
            .as_ref()
            .map(|s| s.deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
            .max(Duration::from_millis(100));
        // Let the send lanes hand over what they hold before closing.
        self.lanes.clear();
        tokio::task::yield_now().await;
        self.transport.close(grace).await;
        // What is left goes to the application, waiting for room a little
        // while (the stream ends once these are read).
        let mut undelivered = 0usize;
        for e in self.pending.drain(..) {
            let sent = timeout(FINAL_EVENTS_WAIT, self.events.send(e)).await;
            if !matches!(sent, Ok(Ok(()))) {
                undelivered += 1;
            }
        }
        if undelivered > 0 {
            warn!(undelivered, "events not delivered at shutdown");
        }
        let report = ShutdownReport { abandoned };
        for w in self.waiters.drain(..) {
            let _ = w.send(report);
        }
        info!(abandoned, "endpoint stopped");
    }

    /// Keeps what a destination given by the application says beyond its
    /// address: the TLS server name, the connection to prefer.
    fn remember(&mut self, dest: &Destination) {
        let key = (dest.kind, dest.addr);
        if let Some(name) = &dest.server_name {
            self.names.insert(key, name.clone());
        }
        if let Some(c) = dest.connection {
            self.conns.insert(key, c);
        }
    }

    fn begin_shutdown(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        match &mut self.shutdown {
            Some(s) => s.deadline = s.deadline.min(deadline),
            None => {
                info!(
                    live = self.layer.len(),
                    grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                    "shutting down"
                );
                self.transport.stop_accepting();
                self.shutdown = Some(Shutdown { deadline });
            }
        }
    }

    async fn fire(&mut self) {
        if let Err(e) = self.layer.handle_input(now(), Input::Timeout) {
            debug!(error = layer_category(&e), "timer input refused");
        }
        self.drain(None, None).await;
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Request {
                request,
                dest,
                reply,
            } => {
                if self.shutdown.is_some() {
                    let _ = reply.send(Err(EndpointError::ShuttingDown));
                    return;
                }
                self.fire().await;
                let key = (dest.kind, dest.addr);
                self.remember(&dest);
                let result = self
                    .layer
                    .send_request(now(), request, dest.addr, to_sip(dest.kind));
                match &result {
                    Ok(id) => {
                        self.live.insert(*id, key);
                        debug!(txn = %id, kind = %dest.kind, "client transaction started");
                    }
                    Err(e) => debug!(error = layer_category(e), "request refused"),
                }
                let id = result.as_ref().ok().copied();
                let _ = reply.send(result.map_err(Into::into));
                self.drain(None, id).await;
            }
            Command::Response {
                transaction,
                response,
                reply,
            } => {
                // Timers due now fire first, so that what follows the call
                // belongs to this transaction.
                self.fire().await;
                let status = response.status();
                let result = self.layer.send_response(now(), transaction, response);
                match &result {
                    Ok(()) => debug!(txn = %transaction, status, "response sent"),
                    Err(e) => {
                        debug!(txn = %transaction, error = layer_category(e), "response refused")
                    }
                }
                let _ = reply.send(result.map_err(Into::into));
                self.drain(None, Some(transaction)).await;
            }
            Command::Cancel { invite, reply } => {
                self.fire().await;
                let result = self.layer.send_cancel(now(), invite);
                match &result {
                    Ok(id) => {
                        if let Some(&peer) = self.live.get(&invite) {
                            self.live.insert(*id, peer);
                        }
                        debug!(txn = %id, invite = %invite, "CANCEL started");
                    }
                    Err(e) => debug!(txn = %invite, error = layer_category(e), "CANCEL refused"),
                }
                let id = result.as_ref().ok().copied();
                let _ = reply.send(result.map_err(Into::into));
                self.drain(None, id).await;
            }
            Command::Stateless {
                message,
                dest,
                reply,
            } => {
                self.remember(&dest);
                self.layer
                    .send_stateless(dest.addr, to_sip(dest.kind), &message);
                let _ = reply.send(Ok(()));
                self.drain(None, None).await;
            }
            Command::Live { reply } => {
                let _ = reply.send(Ok(self.layer.len()));
            }
            Command::Shutdown { grace, reply } => {
                self.waiters.push(reply);
                self.begin_shutdown(grace);
            }
        }
    }

    async fn transport_event(&mut self, event: Event) {
        match event {
            Event::Message(r) => {
                let origin = Origin {
                    source: r.source,
                    local: r.local,
                    kind: r.kind,
                    connection: r.connection,
                    peer_authenticated: r.peer_authenticated,
                };
                if let Some(c) = r.connection {
                    self.conns.insert((r.kind, r.source), c);
                }
                let input = Input::Receive(LayerReceived {
                    source: r.source,
                    transport: to_sip(r.kind),
                    message: r.message,
                });
                if let Err(e) = self.layer.handle_input(now(), input) {
                    debug!(
                        conn = ?r.connection,
                        kind = %r.kind,
                        error = layer_category(&e),
                        "message dropped by the transaction layer"
                    );
                }
                self.drain(Some(origin), None).await;
            }
            Event::Closed {
                connection,
                kind,
                remote,
                reason,
            } => {
                if self.conns.get(&(kind, remote)) == Some(&connection) {
                    self.conns.remove(&(kind, remote));
                }
                debug!(conn = %connection, kind = %kind, reason = %reason, "connection closed");
                self.pending.push_back(EndpointEvent::ConnectionClosed {
                    connection,
                    kind,
                    reason,
                });
            }
            Event::Connected {
                connection, kind, ..
            } => {
                debug!(conn = %connection, kind = %kind, "connection opened");
            }
        }
    }

    /// Drains the layer: transmits go out, events queue for the
    /// application. `origin` is the received message being handled, if
    /// any; `owner` the transaction an API call just acted on.
    async fn drain(&mut self, origin: Option<Origin>, owner: Option<TransactionId>) {
        while let Some(output) = self.layer.poll_output() {
            match output {
                Output::Transmit(t) => {
                    let Some(kind) = from_sip(t.transport) else {
                        warn!("transmit over a transport this crate does not carry; dropped");
                        continue;
                    };
                    self.transmit(kind, t.destination, t.bytes, owner).await;
                }
                Output::Event(e) => self.layer_event(e, origin),
                Output::Timeout(_) => break,
                _ => {}
            }
        }
    }

    fn layer_event(&mut self, event: LayerEvent, origin: Option<Origin>) {
        let conn = origin.and_then(|o| o.connection);
        match event {
            LayerEvent::Request {
                id,
                request,
                source,
                transport,
                cancels,
            } => {
                let Some(origin) = origin else {
                    warn!(txn = %id, "request event without a received message; dropped");
                    return;
                };
                let _ = (source, transport);
                self.live.insert(id, (origin.kind, origin.source));
                debug!(txn = %id, conn = ?conn, kind = %origin.kind, "request received");
                if self.shutdown.is_some() && cancels.is_none() {
                    self.refuse(id, &request);
                    return;
                }
                self.pending.push_back(EndpointEvent::Request {
                    transaction: id,
                    request,
                    origin,
                    cancels,
                });
            }
            LayerEvent::Ack {
                transaction,
                request,
                source,
                transport,
            } => {
                let Some(origin) = origin else {
                    warn!(txn = ?transaction, "ACK event without a received message; dropped");
                    return;
                };
                let _ = (source, transport);
                debug!(txn = ?transaction, conn = ?conn, "ACK for a 2xx received");
                self.pending.push_back(EndpointEvent::Ack {
                    transaction,
                    request,
                    origin,
                });
            }
            LayerEvent::Response { id, response } => {
                let Some(origin) = origin else {
                    warn!(txn = %id, "response event without a received message; dropped");
                    return;
                };
                debug!(txn = %id, conn = ?conn, status = response.status(), "response received");
                self.pending.push_back(EndpointEvent::Response {
                    transaction: id,
                    response,
                    origin,
                });
            }
            LayerEvent::UnmatchedResponse { response, source } => {
                let Some(origin) = origin else {
                    warn!("stray response event without a received message; dropped");
                    return;
                };
                let _ = source;
                debug!(conn = ?conn, status = response.status(), "response matching no transaction");
                self.pending
                    .push_back(EndpointEvent::StrayResponse { response, origin });
            }
            LayerEvent::MergedRequest { id } => {
                let Some(origin) = origin else {
                    warn!(txn = %id, "merged request event without a received message; dropped");
                    return;
                };
                self.live.insert(id, (origin.kind, origin.source));
                debug!(txn = %id, conn = ?conn, "merged request answered 482");
                self.pending.push_back(EndpointEvent::MergedRequest {
                    transaction: id,
                    origin,
                });
            }
            LayerEvent::Timeout { id } => {
                info!(txn = %id, "transaction timed out");
                self.pending
                    .push_back(EndpointEvent::TimedOut { transaction: id });
            }
            LayerEvent::TransportError { id } => {
                info!(txn = %id, "transaction failed in the transport");
                self.pending
                    .push_back(EndpointEvent::TransportFailed { transaction: id });
            }
            LayerEvent::Terminated { id } => {
                self.live.remove(&id);
                debug!(txn = %id, "transaction terminated");
                self.pending
                    .push_back(EndpointEvent::Terminated { transaction: id });
            }
            _ => debug!("transaction layer event not handled by this driver"),
        }
    }

    /// Answers a new request 503 during shutdown.
    fn refuse(&mut self, id: TransactionId, request: &Message) {
        if request.method() == Some(Method::Ack) {
            return;
        }
        let response = MessageBuilder::response_to(request, 503, "Service Unavailable")
            .and_then(|b| b.header("Retry-After", "30"))
            .and_then(|b| b.build());
        match response {
            Ok(r) => {
                if let Err(e) = self.layer.send_response(now(), id, r) {
                    debug!(txn = %id, error = layer_category(&e), "503 refused");
                } else {
                    debug!(txn = %id, "new request refused during shutdown");
                }
            }
            Err(_) => debug!(txn = %id, "503 could not be built"),
        }
    }

    async fn transmit(
        &mut self,
        kind: TransportKind,
        addr: SocketAddr,
        bytes: Bytes,
        owner: Option<TransactionId>,
    ) {
        let key = (kind, addr);
        let mut dest = Destination::new(kind, addr);
        dest.server_name = self.names.get(&key).cloned();
        dest.connection = self.conns.get(&key).copied();
        if kind == TransportKind::Udp {
            if let Err(e) = self.transport.send(&dest, bytes).await {
                debug!(txn = ?owner, kind = %kind, error = category(&e), "send failed");
                self.failed(owner, key);
            }
            return;
        }
        let mut item = LaneItem {
            dest,
            bytes,
            transaction: owner,
        };
        for _ in 0..2 {
            let lane = match self.lanes.get(&key) {
                Some(l) => l.clone(),
                None => self.open_lane(key),
            };
            match lane.try_send(item) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    debug!(txn = ?owner, kind = %kind, conn = ?self.conns.get(&key), "send lane full");
                    self.failed(owner, key);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(back)) => {
                    // The lane ended idle: open a new one.
                    self.lanes.remove(&key);
                    item = back;
                }
            }
        }
        self.failed(owner, key);
    }

    fn open_lane(&mut self, key: PeerKey) -> mpsc::Sender<LaneItem> {
        let (tx, rx) = mpsc::channel(self.config.lane_capacity.max(1));
        tokio::spawn(lane(self.transport.clone(), rx, self.failures_tx.clone()));
        self.lanes.insert(key, tx.clone());
        tx
    }

    async fn failure(&mut self, failure: Failure) {
        self.failed(failure.transaction, failure.peer);
        self.drain(None, None).await;
    }

    /// Reports a failed send to the layer: to the transaction it belonged
    /// to, or, when it came from a timer, to every live transaction toward
    /// that peer over that transport (they share the failed path).
    fn failed(&mut self, owner: Option<TransactionId>, peer: PeerKey) {
        let ids: Vec<TransactionId> = match owner {
            Some(id) => vec![id],
            None => self
                .live
                .iter()
                .filter(|(_, p)| **p == peer)
                .map(|(id, _)| *id)
                .collect(),
        };
        for id in ids {
            if self.layer.transport_error(now(), id).is_ok() {
                self.live.remove(&id);
            }
        }
    }
}

/// Sends, in order, what the driver queued toward one TCP or TLS peer;
/// ends after [`LANE_IDLE`] without traffic, once its queue is empty.
async fn lane(
    transport: Transport,
    mut rx: mpsc::Receiver<LaneItem>,
    failures: mpsc::Sender<Failure>,
) {
    loop {
        let item = match timeout(LANE_IDLE, rx.recv()).await {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(_) => {
                rx.close();
                match rx.recv().await {
                    Some(item) => item,
                    None => break,
                }
            }
        };
        let peer = (item.dest.kind, item.dest.addr);
        match transport.send(&item.dest, item.bytes).await {
            Ok(sent) => {
                debug!(txn = ?item.transaction, conn = ?sent.connection, kind = %sent.kind, "sent");
            }
            Err(e) => {
                debug!(txn = ?item.transaction, kind = %peer.0, error = category(&e), "send failed");
                let failure = Failure {
                    transaction: item.transaction,
                    peer,
                };
                if failures.send(failure).await.is_err() {
                    break;
                }
            }
        }
    }
    // Whatever was queued before the driver dropped the lane still goes.
    while let Some(item) = rx.recv().await {
        let _ = transport.send(&item.dest, item.bytes).await;
    }
}
