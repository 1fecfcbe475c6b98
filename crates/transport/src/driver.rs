//! The loop shared by the drivers: one tokio task that runs a sans-IO SIP
//! state machine (the transaction layer for an [`Endpoint`], the user agent
//! core for an [`Agent`]) on a [`Transport`]'s sockets.
//!
//! The task feeds every received message to the machine with its real
//! transport kind and source, sends what the machine transmits (UDP at
//! once, TCP and TLS through one ordered send lane per peer so that a slow
//! connect or handshake never stalls the loop), sleeps until the machine's
//! next deadline, reports failed sends back to it, and hands its events to
//! the application through a bounded queue. What differs between the two
//! machines (their commands and events) lives behind [`Core`].
//!
//! [`Endpoint`]: crate::Endpoint
//! [`Agent`]: crate::Agent

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use carevox_sip::transaction::{
    Input, Received as LayerReceived, TransactionError, TransactionId, Transmit,
    TransportKind as SipKind,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{debug, info, warn};

use crate::endpoint::{EndpointConfig, EndpointError, Origin, ShutdownReport};
use crate::error::Error;
use crate::transport::{Incoming, Transport};
use crate::types::{CloseReason, ConnectionId, Destination, Event, TransportKind};

/// How long the last events wait for room in the application's queue once
/// the driver has stopped.
const FINAL_EVENTS_WAIT: Duration = Duration::from_secs(1);

/// How long a send lane toward one peer lives without traffic.
const LANE_IDLE: Duration = Duration::from_secs(30);

/// The clock the sans-IO machines are fed.
pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

pub(crate) fn to_sip(kind: TransportKind) -> SipKind {
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
/// The category of [`TransactionError::TooManyTransactions`].
pub(crate) const TOO_MANY_TRANSACTIONS: &str = "too many transactions";

pub(crate) fn layer_category(e: &TransactionError) -> &'static str {
    match e {
        TransactionError::TooManyTransactions { .. } => TOO_MANY_TRANSACTIONS,
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

pub(crate) type PeerKey = (TransportKind, SocketAddr);

/// What the driver knows of its peers, shared with the machine's handlers.
#[derive(Default)]
pub(crate) struct Peers {
    /// The connection each stream peer's messages last came on.
    pub(crate) conns: HashMap<PeerKey, ConnectionId>,
    /// The TLS server name given for a peer by the application.
    pub(crate) names: HashMap<PeerKey, String>,
    /// Live transactions and their peers, for failures not tied to one.
    pub(crate) live: HashMap<TransactionId, PeerKey>,
}

impl Peers {
    /// Keeps what a destination given by the application says beyond its
    /// address: the TLS server name, the connection to prefer.
    pub(crate) fn remember(&mut self, dest: &Destination) {
        let key = (dest.kind, dest.addr);
        if let Some(name) = &dest.server_name {
            self.names.insert(key, name.clone());
        }
        if let Some(c) = dest.connection {
            self.conns.insert(key, c);
        }
    }
}

/// What a handler of the machine sees of the driver.
pub(crate) struct Cx<'a> {
    /// The received message being handled, if any.
    pub(crate) origin: Option<Origin>,
    /// Whether a shutdown has begun.
    pub(crate) shutting_down: bool,
    /// Whether more events wait for the application than
    /// [`EndpointConfig::overload_backlog`]: new requests are refused.
    pub(crate) overloaded: bool,
    pub(crate) peers: &'a mut Peers,
}

/// Why the task answered a new request `503` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A shutdown has begun: come back much later.
    ShuttingDown,
    /// The application is behind ([`EndpointConfig::overload_backlog`]):
    /// come back soon.
    Overloaded,
}

impl Refusal {
    /// The `Retry-After` value, in seconds.
    pub(crate) fn retry_after(self) -> &'static str {
        match self {
            Refusal::ShuttingDown => "30",
            Refusal::Overloaded => "5",
        }
    }

    /// A name safe to log.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Refusal::ShuttingDown => "shutting down",
            Refusal::Overloaded => "overloaded",
        }
    }
}

/// The To tag of a stateless response to `request`: the same for every
/// retransmission of it (a keyed hash of its Call-ID, From, CSeq and top
/// Via under `keys`, random per driver), another for another request.
fn stateless_tag(
    keys: &std::collections::hash_map::RandomState,
    request: &carevox_sip::Message,
) -> String {
    use carevox_sip::HeaderName;
    let parts = [
        request.header(HeaderName::CallId),
        request.header(HeaderName::From),
        request.header(HeaderName::CSeq),
        request.header(HeaderName::Via),
    ];
    format!("s{:016x}", std::hash::BuildHasher::hash_one(keys, parts))
}

/// Whether a request carries a To tag: it belongs to a dialog (RFC 3261
/// section 12.2), which overload control never refuses.
pub(crate) fn has_to_tag(request: &carevox_sip::Message) -> bool {
    request.to().is_ok_and(|t| t.tag().is_some())
}

/// One output of a machine.
pub(crate) enum Polled<R> {
    Transmit(Transmit),
    Event(R),
}

/// The sans-IO machine a driver runs, and how its commands and events meet
/// the application.
pub(crate) trait Core: Send + 'static {
    /// What the application's handle asks of the machine.
    type Command: Send + 'static;
    /// The machine's own events.
    type Raw: Send;
    /// The events the application reads.
    type Event: Send + 'static;

    /// Feeds a received message or a timer expiry; on refusal, a category
    /// safe to log.
    fn feed(&mut self, now: std::time::Instant, input: Input) -> Result<(), &'static str>;
    /// The next output; `None` once only a deadline is left.
    fn poll(&mut self) -> Option<Polled<Self::Raw>>;
    /// When the machine next needs [`Input::Timeout`].
    fn next_deadline(&mut self) -> Option<std::time::Instant>;
    /// Reports a failed send of transaction `id`; false when the machine no
    /// longer knows it.
    fn transport_error(&mut self, now: std::time::Instant, id: TransactionId) -> bool;
    /// Whether transaction `id` is alive.
    fn knows(&self, id: TransactionId) -> bool;
    /// Live transactions.
    fn live(&self) -> usize;
    /// Whether the transaction layer is at its cap: a new transaction
    /// would be refused.
    fn full(&self) -> bool;
    /// Runs a command; returns the transaction it acted on, to which the
    /// transmits that follow belong.
    fn command(
        &mut self,
        now: std::time::Instant,
        command: Self::Command,
        cx: &mut Cx<'_>,
    ) -> Option<TransactionId>;
    /// Turns one of the machine's events into the application's, if it is
    /// one the application must see.
    fn event(
        &mut self,
        now: std::time::Instant,
        raw: Self::Raw,
        cx: &mut Cx<'_>,
    ) -> Option<Self::Event>;
    /// The application's event for a closed connection.
    fn connection_closed(
        connection: ConnectionId,
        kind: TransportKind,
        reason: CloseReason,
    ) -> Self::Event;
    /// A connection to send a transmit of `owner` over when no connection
    /// to its destination is known (the flow of the dialog it belongs to).
    fn flow(&self, owner: Option<TransactionId>) -> Option<ConnectionId> {
        let _ = owner;
        None
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, EndpointError>>;

/// What a handle sends to its driver.
pub(crate) enum Command<C> {
    Core(C),
    Live {
        reply: Reply<usize>,
    },
    Shutdown {
        grace: Duration,
        reply: oneshot::Sender<ShutdownReport>,
    },
}

/// The sending half shared by the handles.
#[derive(Debug)]
pub(crate) struct Handle<C> {
    commands: mpsc::Sender<Command<C>>,
    capacity: usize,
}

impl<C> Clone for Handle<C> {
    fn clone(&self) -> Self {
        Self {
            commands: self.commands.clone(),
            capacity: self.capacity,
        }
    }
}

impl<C: Send + 'static> Handle<C> {
    fn submit(&self, command: Command<C>) -> Result<(), EndpointError> {
        self.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EndpointError::Busy {
                capacity: self.capacity,
            },
            mpsc::error::TrySendError::Closed(_) => EndpointError::Closed,
        })
    }

    /// Sends a command built around its reply channel and waits for the
    /// answer.
    pub(crate) async fn call<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> C,
    ) -> Result<T, EndpointError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Command::Core(make(reply)))?;
        answer.await.map_err(|_| EndpointError::Closed)?
    }

    pub(crate) async fn live(&self) -> Result<usize, EndpointError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Command::Live { reply })?;
        answer.await.map_err(|_| EndpointError::Closed)?
    }

    pub(crate) async fn shutdown(&self, grace: Duration) -> Result<ShutdownReport, EndpointError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Command::Shutdown { grace, reply })?;
        answer.await.map_err(|_| EndpointError::Closed)
    }
}

/// Spawns the driver task of `core`; returns the handle and the events.
pub(crate) fn spawn<C: Core>(
    core: C,
    transport: Transport,
    incoming: Incoming,
    config: &EndpointConfig,
) -> (Handle<C::Command>, mpsc::Receiver<C::Event>) {
    let capacity = config.command_capacity.max(1);
    let (commands, command_rx) = mpsc::channel(capacity);
    let (events_tx, events_rx) = mpsc::channel(config.event_capacity.max(1));
    let (failures_tx, failures_rx) = mpsc::channel(64);
    let driver = Driver {
        core,
        transport,
        incoming,
        commands: command_rx,
        events: events_tx,
        failures_tx,
        failures: failures_rx,
        pending: VecDeque::new(),
        peers: Peers::default(),
        lanes: HashMap::new(),
        shutdown: None,
        waiters: Vec::new(),
        event_capacity: config.event_capacity.max(1),
        lane_capacity: config.lane_capacity.max(1),
        overload_backlog: config.overload_backlog,
        tag_keys: std::collections::hash_map::RandomState::new(),
        drop_grace: config.drop_grace,
    };
    tokio::spawn(driver.run());
    (Handle { commands, capacity }, events_rx)
}

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
enum Step<C> {
    Idle,
    EventsClosed,
    Timer,
    Command(Option<Command<C>>),
    Failure(Failure),
    Incoming(Option<Event>),
}

struct Shutdown {
    deadline: Instant,
}

struct Driver<C: Core> {
    core: C,
    transport: Transport,
    incoming: Incoming,
    commands: mpsc::Receiver<Command<C::Command>>,
    events: mpsc::Sender<C::Event>,
    failures_tx: mpsc::Sender<Failure>,
    failures: mpsc::Receiver<Failure>,
    /// Events not yet taken by the application's channel.
    pending: VecDeque<C::Event>,
    peers: Peers,
    /// Ordered senders toward TCP and TLS peers.
    lanes: HashMap<PeerKey, mpsc::Sender<LaneItem>>,
    shutdown: Option<Shutdown>,
    waiters: Vec<oneshot::Sender<ShutdownReport>>,
    event_capacity: usize,
    lane_capacity: usize,
    overload_backlog: usize,
    /// The keys of [`stateless_tag`].
    tag_keys: std::collections::hash_map::RandomState,
    drop_grace: Duration,
}

impl<C: Core> Driver<C> {
    /// Events waiting for the application: in its channel, and queued
    /// here behind it.
    fn backlog(&self) -> usize {
        let queued = self.events.max_capacity() - self.events.capacity();
        queued.saturating_add(self.pending.len())
    }

    async fn run(mut self) {
        info!("endpoint started");
        let mut commands_open = true;
        let mut incoming_open = true;
        let mut events_open = true;
        loop {
            if let Some(s) = &self.shutdown
                && (self.core.live() == 0 || Instant::now() >= s.deadline)
            {
                break;
            }
            let wake = self.core.next_deadline().map(Instant::from_std);
            let shutdown_at = self.shutdown.as_ref().map(|s| s.deadline);
            let can_read = incoming_open && self.pending.len() < self.event_capacity;
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
                        self.begin_shutdown(self.drop_grace);
                    }
                }
                Step::Failure(f) => {
                    self.failed(f.transaction, f.peer);
                    self.drain(None, None).await;
                }
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
        let abandoned = self.core.live();
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

    fn begin_shutdown(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        match &mut self.shutdown {
            Some(s) => s.deadline = s.deadline.min(deadline),
            None => {
                info!(
                    live = self.core.live(),
                    grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                    "shutting down"
                );
                self.transport.stop_accepting();
                self.shutdown = Some(Shutdown { deadline });
            }
        }
    }

    async fn fire(&mut self) {
        if let Err(e) = self.core.feed(now(), Input::Timeout) {
            debug!(error = e, "timer input refused");
        }
        self.drain(None, None).await;
    }

    async fn command(&mut self, command: Command<C::Command>) {
        match command {
            Command::Core(c) => {
                // Timers due now fire first, so that what follows the call
                // belongs to it.
                self.fire().await;
                let mut cx = Cx {
                    origin: None,
                    shutting_down: self.shutdown.is_some(),
                    overloaded: false,
                    peers: &mut self.peers,
                };
                let owner = self.core.command(now(), c, &mut cx);
                self.drain(None, owner).await;
            }
            Command::Live { reply } => {
                let _ = reply.send(Ok(self.core.live()));
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
                    self.peers.conns.insert((r.kind, r.source), c);
                }
                // At the cap, a new request gets a stateless 503 instead
                // of no answer at all: keep it until the layer has said.
                let spare = (self.core.full()
                    && r.message.is_request()
                    && r.message.method() != Some(carevox_sip::Method::Ack))
                .then(|| r.message.clone());
                let input = Input::Receive(LayerReceived {
                    source: r.source,
                    transport: to_sip(r.kind),
                    message: r.message,
                });
                if let Err(e) = self.core.feed(now(), input) {
                    debug!(
                        conn = ?r.connection,
                        kind = %r.kind,
                        error = e,
                        "message dropped by the transaction layer"
                    );
                    if let Some(request) = spare
                        && e == TOO_MANY_TRANSACTIONS
                    {
                        self.refuse_stateless(&request, r.kind, r.source, r.connection)
                            .await;
                    }
                }
                self.drain(Some(origin), None).await;
            }
            Event::Closed {
                connection,
                kind,
                remote,
                reason,
            } => {
                if self.peers.conns.get(&(kind, remote)) == Some(&connection) {
                    self.peers.conns.remove(&(kind, remote));
                }
                debug!(conn = %connection, kind = %kind, reason = %reason, "connection closed");
                self.pending
                    .push_back(C::connection_closed(connection, kind, reason));
            }
            Event::Connected {
                connection, kind, ..
            } => {
                debug!(conn = %connection, kind = %kind, "connection opened");
            }
        }
    }

    /// Drains the machine: transmits go out, events queue for the
    /// application. `origin` is the received message being handled, if
    /// any; `owner` the transaction an API call just acted on.
    async fn drain(&mut self, origin: Option<Origin>, owner: Option<TransactionId>) {
        while let Some(output) = self.core.poll() {
            match output {
                Polled::Transmit(t) => {
                    let Some(kind) = from_sip(t.transport) else {
                        warn!("transmit over a transport this crate does not carry; dropped");
                        continue;
                    };
                    let key = (kind, t.destination);
                    if let Some(id) = owner {
                        self.peers.live.entry(id).or_insert(key);
                    }
                    let flow = self.core.flow(owner);
                    self.transmit(key, t.bytes, owner, flow).await;
                }
                Polled::Event(e) => {
                    let overloaded = self.backlog() > self.overload_backlog;
                    let mut cx = Cx {
                        origin,
                        shutting_down: self.shutdown.is_some(),
                        overloaded,
                        peers: &mut self.peers,
                    };
                    if let Some(e) = self.core.event(now(), e, &mut cx) {
                        self.pending.push_back(e);
                    }
                }
            }
        }
        self.prune();
    }

    /// Forgets transactions the machine no longer knows, so that the map
    /// stays bounded by the live ones.
    fn prune(&mut self) {
        if self.peers.live.len() > 2 * self.core.live() + 64 {
            let core = &self.core;
            self.peers.live.retain(|id, _| core.knows(*id));
        }
    }

    /// Answers `request` `503` with `Retry-After` outside any transaction
    /// (the layer is at its cap), over the way it came. Its To tag is
    /// derived from the request, so that a retransmission gets the same
    /// answer (RFC 3261 section 8.2.6.2).
    async fn refuse_stateless(
        &mut self,
        request: &carevox_sip::Message,
        kind: TransportKind,
        source: SocketAddr,
        connection: Option<ConnectionId>,
    ) {
        let tag = stateless_tag(&self.tag_keys, request);
        let response =
            carevox_sip::MessageBuilder::response_to(request, 503, "Service Unavailable")
                .and_then(|b| b.to_tag(&tag))
                .and_then(|b| b.header("Retry-After", Refusal::Overloaded.retry_after()))
                .and_then(|b| b.build());
        match response {
            Ok(r) => {
                debug!(conn = ?connection, kind = %kind, "new request refused statelessly: too many transactions");
                self.transmit((kind, source), r.as_bytes().clone(), None, connection)
                    .await;
            }
            Err(_) => debug!(conn = ?connection, kind = %kind, "stateless 503 could not be built"),
        }
    }

    async fn transmit(
        &mut self,
        key: PeerKey,
        bytes: Bytes,
        owner: Option<TransactionId>,
        flow: Option<ConnectionId>,
    ) {
        let (kind, addr) = key;
        let mut dest = Destination::new(kind, addr);
        dest.server_name = self.peers.names.get(&key).cloned();
        dest.connection = self.peers.conns.get(&key).copied().or(flow);
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
                    debug!(txn = ?owner, kind = %kind, conn = ?self.peers.conns.get(&key), "send lane full");
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
        let (tx, rx) = mpsc::channel(self.lane_capacity);
        tokio::spawn(lane(self.transport.clone(), rx, self.failures_tx.clone()));
        self.lanes.insert(key, tx.clone());
        tx
    }

    /// Reports a failed send to the machine: to the transaction it belonged
    /// to, or, when it came from a timer, to every live transaction toward
    /// that peer over that transport (they share the failed path).
    fn failed(&mut self, owner: Option<TransactionId>, peer: PeerKey) {
        let ids: Vec<TransactionId> = match owner {
            Some(id) => vec![id],
            None => self
                .peers
                .live
                .iter()
                .filter(|(_, p)| **p == peer)
                .map(|(id, _)| *id)
                .collect(),
        };
        for id in ids {
            self.peers.live.remove(&id);
            self.core.transport_error(now(), id);
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
