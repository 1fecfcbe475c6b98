//! The transport: sockets, listeners, connections and the handle that
//! sends over them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use carevox_sip::{Frame, Message, ParseError, StreamFramer, parse_datagram};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info, warn};

use crate::config::TransportConfig;
use crate::error::{Error, TlsFailure};
use crate::lock;
use crate::queue::SendQueue;
use crate::tls::{TlsClientConfig, TlsServerConfig};
use crate::types::{CloseReason, ConnectionId, Destination, Event, Received, TransportKind};

/// The RFC 5626 keep-alive ping (a double CRLF) and pong (a single CRLF).
const PING: &[u8] = b"\r\n\r\n";
const PONG: &[u8] = b"\r\n";
/// Largest UDP payload read.
const DATAGRAM_BUFFER: usize = 65_536;
/// Largest read from a stream at once.
const STREAM_READ: usize = 16 * 1024;
/// Default port of SIP over TLS (RFC 3261 section 19.1.2), for a Via
/// sent-by without a port.
const SIPS_PORT: u16 = 5061;

/// Sets up a [`Transport`]: the sockets to bind and the TLS configurations.
#[derive(Debug)]
pub struct TransportBuilder {
    config: TransportConfig,
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    tls: Vec<(SocketAddr, TlsServerConfig)>,
    tls_client: Option<TlsClientConfig>,
}

impl TransportBuilder {
    /// A transport with `config` and no sockets yet.
    pub fn new(config: TransportConfig) -> Self {
        Self {
            config,
            udp: Vec::new(),
            tcp: Vec::new(),
            tls: Vec::new(),
            tls_client: None,
        }
    }

    /// Binds a UDP socket on `addr` (port 0 picks a free port). UDP
    /// destinations are sent from the first socket of their address family.
    pub fn udp(mut self, addr: SocketAddr) -> Self {
        self.udp.push(addr);
        self
    }

    /// Listens for TCP connections on `addr`.
    pub fn tcp(mut self, addr: SocketAddr) -> Self {
        self.tcp.push(addr);
        self
    }

    /// Listens for TLS connections on `addr`, presenting `config`.
    pub fn tls(mut self, addr: SocketAddr, config: TlsServerConfig) -> Self {
        self.tls.push((addr, config));
        self
    }

    /// Allows outgoing TLS connections, verified as `config` says. Without
    /// it, sending to a TLS destination fails with [`Error::NoTlsClient`].
    pub fn tls_client(mut self, config: TlsClientConfig) -> Self {
        self.tls_client = Some(config);
        self
    }

    /// Binds every socket and starts receiving. Must be called inside a
    /// tokio runtime.
    pub async fn start(self) -> Result<(Transport, Incoming), Error> {
        let (events, rx) = mpsc::channel(self.config.event_capacity.max(1));
        let (shutdown, _) = watch::channel(false);
        let mut udp = Vec::new();
        let mut local = Vec::new();
        for addr in &self.udp {
            let socket = UdpSocket::bind(addr).await.map_err(Error::io("bind UDP"))?;
            let bound = socket.local_addr().map_err(Error::io("bind UDP"))?;
            local.push((TransportKind::Udp, bound));
            udp.push((bound, Arc::new(socket)));
        }
        let mut listeners = Vec::new();
        for addr in &self.tcp {
            let l = TcpListener::bind(addr)
                .await
                .map_err(Error::io("listen TCP"))?;
            let bound = l.local_addr().map_err(Error::io("listen TCP"))?;
            local.push((TransportKind::Tcp, bound));
            listeners.push((l, None));
        }
        for (addr, config) in &self.tls {
            let l = TcpListener::bind(addr)
                .await
                .map_err(Error::io("listen TLS"))?;
            let bound = l.local_addr().map_err(Error::io("listen TLS"))?;
            local.push((TransportKind::Tls, bound));
            listeners.push((l, Some(TlsAcceptor::from(config.inner.clone()))));
        }
        let shared = Arc::new(Shared {
            config: self.config,
            state: Mutex::new(State::default()),
            events: Mutex::new(Some(events.clone())),
            next_id: AtomicU64::new(1),
            udp: udp.clone(),
            local,
            tls_client: self.tls_client,
            tasks: Mutex::new(Vec::new()),
            shutdown,
            connecting: Mutex::new(HashMap::new()),
        });
        let mut tasks = Vec::new();
        for (bound, socket) in udp {
            tasks.push(tokio::spawn(udp_loop(
                shared.clone(),
                socket,
                bound,
                events.clone(),
            )));
        }
        for (listener, acceptor) in listeners {
            tasks.push(tokio::spawn(accept_loop(
                shared.clone(),
                listener,
                acceptor,
            )));
        }
        *lock(&shared.tasks) = tasks;
        for (kind, addr) in &shared.local {
            info!(%kind, local = %addr, "listening");
        }
        let owner = Arc::new(Owner {
            shared: shared.clone(),
        });
        Ok((
            Transport {
                shared,
                _owner: owner,
            },
            Incoming { rx },
        ))
    }
}

/// Receives what a [`Transport`] reports: messages, opened and closed
/// connections. Ends (`None`) after [`Transport::close`].
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<Event>,
}

impl Incoming {
    /// The next event; `None` once the transport is closed.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

/// What [`Transport::send`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sent {
    /// The transport it went over.
    pub kind: TransportKind,
    /// The connection it was queued on (TCP and TLS).
    pub connection: Option<ConnectionId>,
    /// The peer's address.
    pub remote: SocketAddr,
}

/// A handle to the sockets and connections of one transport; cheap to
/// clone. Sends go out through it, received messages come in through the
/// [`Incoming`] returned beside it.
#[derive(Debug, Clone)]
pub struct Transport {
    shared: Arc<Shared>,
    /// Held only by handles: when the last one is dropped, the transport
    /// shuts down as [`Transport::close`] would, without waiting.
    _owner: Arc<Owner>,
}

/// Shuts the transport down when the last [`Transport`] handle goes.
#[derive(Debug)]
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        let _ = self.shared.shutdown.send_replace(true);
        for task in lock(&self.shared.tasks).drain(..) {
            task.abort();
        }
        lock(&self.shared.events).take();
    }
}

type RouteKey = (TransportKind, SocketAddr);

#[derive(Debug)]
struct Shared {
    config: TransportConfig,
    state: Mutex<State>,
    /// Taken on close, so that [`Incoming`] ends once every task is gone.
    events: Mutex<Option<mpsc::Sender<Event>>>,
    next_id: AtomicU64,
    udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    local: Vec<(TransportKind, SocketAddr)>,
    tls_client: Option<TlsClientConfig>,
    /// UDP receive loops and listeners.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    shutdown: watch::Sender<bool>,
    /// One lock per destination being connected to, so that concurrent
    /// sends open one connection, not several.
    connecting: Mutex<HashMap<RouteKey, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug, Default)]
struct State {
    conns: HashMap<ConnectionId, Conn>,
    routes: HashMap<RouteKey, ConnectionId>,
    /// Connections open or in their handshake.
    slots: usize,
    accepting_stopped: bool,
    closed: bool,
}

#[derive(Debug)]
struct Conn {
    kind: TransportKind,
    /// For a TLS connection we opened: the server name its certificate
    /// was verified for. Only destinations naming the same server reuse it.
    verified_name: Option<String>,
    queue: Arc<SendQueue>,
    routes: Vec<RouteKey>,
    stop: Arc<tokio::sync::Notify>,
    task: Option<AbortHandle>,
}

/// Holds one connection slot; gives it back on drop.
#[derive(Debug)]
struct Slot {
    shared: Arc<Shared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.slots = state.slots.saturating_sub(1);
    }
}

/// What a connection task needs to know about its connection.
#[derive(Debug, Clone)]
struct ConnInfo {
    id: ConnectionId,
    kind: TransportKind,
    remote: SocketAddr,
    local: SocketAddr,
    outbound: bool,
    /// A TLS peer that presented a certificate our verifier accepted: its
    /// RFC 5923 aliases are honoured.
    authenticated_peer: bool,
    queue: Arc<SendQueue>,
    stop: Arc<tokio::sync::Notify>,
}

/// The name a TLS destination's certificate is checked against: the
/// server name, or the IP address in text.
fn tls_name(dest: &Destination) -> Option<String> {
    (dest.kind == TransportKind::Tls).then(|| {
        dest.server_name
            .clone()
            .unwrap_or_else(|| dest.addr.ip().to_string())
    })
}

fn family(addr: &SocketAddr) -> &'static str {
    if addr.is_ipv4() { "IPv4" } else { "IPv6" }
}

impl Shared {
    fn reserve_slot(self: &Arc<Self>) -> Result<Slot, Error> {
        let mut state = lock(&self.state);
        if state.closed {
            return Err(Error::Closed);
        }
        if state.slots >= self.config.max_connections {
            return Err(Error::TooManyConnections {
                limit: self.config.max_connections,
            });
        }
        state.slots += 1;
        Ok(Slot {
            shared: self.clone(),
        })
    }

    /// Records an established connection, reachable by its remote address.
    fn register(
        &self,
        kind: TransportKind,
        remote: SocketAddr,
        local: SocketAddr,
        outbound: bool,
        authenticated_peer: bool,
        verified_name: Option<String>,
    ) -> ConnInfo {
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let queue = Arc::new(SendQueue::new(id, self.config.max_queued_bytes));
        let stop = Arc::new(tokio::sync::Notify::new());
        let key = (kind, remote);
        let mut state = lock(&self.state);
        let mut routes = Vec::new();
        // An outbound connection takes over the route; an inbound one only
        // fills an empty one.
        if outbound || !state.routes.contains_key(&key) {
            state.routes.insert(key, id);
            routes.push(key);
        }
        state.conns.insert(
            id,
            Conn {
                kind,
                verified_name,
                queue: queue.clone(),
                routes,
                stop: stop.clone(),
                task: None,
            },
        );
        ConnInfo {
            id,
            kind,
            remote,
            local,
            outbound,
            authenticated_peer,
            queue,
            stop,
        }
    }

    fn set_task(&self, id: ConnectionId, task: AbortHandle) {
        if let Some(conn) = lock(&self.state).conns.get_mut(&id) {
            conn.task = Some(task);
        }
    }

    fn deregister(&self, id: ConnectionId) {
        let mut state = lock(&self.state);
        if let Some(conn) = state.conns.remove(&id) {
            for key in conn.routes {
                if state.routes.get(&key) == Some(&id) {
                    state.routes.remove(&key);
                }
            }
            conn.queue.close();
        }
    }

    /// Makes `addr` a route to connection `id` (RFC 5923 alias).
    fn add_route(&self, id: ConnectionId, key: RouteKey) -> bool {
        let mut state = lock(&self.state);
        if !state.conns.contains_key(&id) {
            return false;
        }
        if let Some(old) = state.routes.insert(key, id)
            && old != id
            && let Some(conn) = state.conns.get_mut(&old)
        {
            conn.routes.retain(|k| *k != key);
        }
        if let Some(conn) = state.conns.get_mut(&id)
            && !conn.routes.contains(&key)
        {
            conn.routes.push(key);
        }
        true
    }

    /// The open connection to `key`; for TLS with `name`, only one whose
    /// certificate was verified for that name, or one the peer opened.
    fn route(&self, key: RouteKey, name: Option<&str>) -> Option<(ConnectionId, Arc<SendQueue>)> {
        let state = lock(&self.state);
        let id = *state.routes.get(&key)?;
        let conn = state.conns.get(&id)?;
        match (&conn.verified_name, name) {
            (Some(verified), Some(name)) if !verified.eq_ignore_ascii_case(name) => None,
            _ => Some((id, conn.queue.clone())),
        }
    }

    fn queue_of(&self, id: ConnectionId, kind: TransportKind) -> Option<Arc<SendQueue>> {
        let state = lock(&self.state);
        state
            .conns
            .get(&id)
            .filter(|c| c.kind == kind)
            .map(|c| c.queue.clone())
    }

    fn events(&self) -> Option<mpsc::Sender<Event>> {
        lock(&self.events).clone()
    }

    fn spawn_connection<S>(self: &Arc<Self>, info: ConnInfo, stream: S, slot: Slot)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let Some(events) = self.events() else {
            self.deregister(info.id);
            return;
        };
        let id = info.id;
        let task = tokio::spawn(run_connection(self.clone(), info, stream, slot, events));
        self.set_task(id, task.abort_handle());
    }

    /// Opens a connection to `dest`, or returns the one another send opened
    /// meanwhile.
    async fn connect(
        self: &Arc<Self>,
        dest: &Destination,
    ) -> Result<(ConnectionId, Arc<SendQueue>), Error> {
        let key = (dest.kind, dest.addr);
        let gate = lock(&self.connecting).entry(key).or_default().clone();
        let result = {
            let _guard = gate.lock().await;
            match self.route(key, tls_name(dest).as_deref()) {
                Some(found) => Ok(found),
                None => self.open(dest).await,
            }
        };
        let mut connecting = lock(&self.connecting);
        // Dropped once no other send waits on it (the map and `gate` hold it).
        if Arc::strong_count(&gate) <= 2 {
            connecting.remove(&key);
        }
        result
    }

    async fn open(
        self: &Arc<Self>,
        dest: &Destination,
    ) -> Result<(ConnectionId, Arc<SendQueue>), Error> {
        let server_name = match dest.kind {
            TransportKind::Tls => {
                let client = self.tls_client.as_ref().ok_or(Error::NoTlsClient)?;
                let connector = TlsConnector::from(client.inner.clone());
                let name = match &dest.server_name {
                    Some(name) => {
                        ServerName::try_from(name.clone()).map_err(|_| Error::InvalidServerName)?
                    }
                    None => ServerName::IpAddress(dest.addr.ip().into()),
                };
                Some((connector, name, client.verifies))
            }
            TransportKind::Tcp => None,
            TransportKind::Udp => return Err(Error::Closed),
        };
        let slot = self.reserve_slot()?;
        let tcp = match timeout(self.config.connect_timeout, TcpStream::connect(dest.addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                debug!(kind = %dest.kind, peer = %dest.addr, error = %e, "connect failed");
                return Err(Error::Io {
                    op: "connect",
                    source: e,
                });
            }
            Err(_) => {
                debug!(kind = %dest.kind, peer = %dest.addr, "connect timed out");
                return Err(Error::Timeout { kind: dest.kind });
            }
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(Error::io("connect"))?;
        match server_name {
            None => {
                let info = self.register(TransportKind::Tcp, dest.addr, local, true, false, None);
                let out = (info.id, info.queue.clone());
                self.spawn_connection(info, tcp, slot);
                Ok(out)
            }
            Some((connector, name, verifies)) => {
                let handshake = connector.connect(name, tcp);
                let tls = match timeout(self.config.handshake_timeout, handshake).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        let failure = TlsFailure::from_io(&e);
                        debug!(kind = %dest.kind, peer = %dest.addr, %failure, "TLS handshake failed");
                        return Err(Error::Tls { failure });
                    }
                    Err(_) => {
                        debug!(kind = %dest.kind, peer = %dest.addr, "TLS handshake timed out");
                        return Err(Error::Tls {
                            failure: TlsFailure::Timeout,
                        });
                    }
                };
                let info = self.register(
                    TransportKind::Tls,
                    dest.addr,
                    local,
                    true,
                    verifies,
                    tls_name(dest),
                );
                let out = (info.id, info.queue.clone());
                self.spawn_connection(info, tls, slot);
                Ok(out)
            }
        }
    }
}

impl Transport {
    /// Starts building a transport with `config`.
    pub fn builder(config: TransportConfig) -> TransportBuilder {
        TransportBuilder::new(config)
    }

    /// The first bound address of `kind` (the port chosen when 0 was asked
    /// for).
    pub fn local_addr(&self, kind: TransportKind) -> Option<SocketAddr> {
        self.shared
            .local
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
    }

    /// Every bound socket and listener.
    pub fn local_addrs(&self) -> &[(TransportKind, SocketAddr)] {
        &self.shared.local
    }

    /// The configuration.
    pub fn config(&self) -> &TransportConfig {
        &self.shared.config
    }

    /// Sends `message` to `dest`.
    ///
    /// UDP: one datagram from the first UDP socket of the destination's
    /// address family. TCP and TLS: over `dest.connection` if it is still
    /// open, else over an open connection to `dest.addr` (one we opened,
    /// one the peer opened from that address, or one aliased to it), else
    /// over a new connection. Returning `Ok` means queued, not delivered: a
    /// connection that fails later is reported as [`Event::Closed`].
    pub async fn send(&self, dest: &Destination, message: Bytes) -> Result<Sent, Error> {
        let shared = &self.shared;
        if lock(&shared.state).closed {
            return Err(Error::Closed);
        }
        let limit = shared.config.limits.max_message_size;
        if message.len() > limit {
            return Err(Error::MessageTooLarge {
                size: message.len(),
                limit,
            });
        }
        if dest.kind == TransportKind::Udp {
            let socket = shared
                .udp
                .iter()
                .find(|(a, _)| a.is_ipv4() == dest.addr.is_ipv4())
                .map(|(_, s)| s.clone())
                .ok_or(Error::NoSocket {
                    kind: TransportKind::Udp,
                    family: family(&dest.addr),
                })?;
            socket
                .send_to(&message, dest.addr)
                .await
                .map_err(Error::io("send UDP"))?;
            return Ok(Sent {
                kind: TransportKind::Udp,
                connection: None,
                remote: dest.addr,
            });
        }
        let sent = |connection| Sent {
            kind: dest.kind,
            connection: Some(connection),
            remote: dest.addr,
        };
        if let Some(id) = dest.connection
            && let Some(queue) = shared.queue_of(id, dest.kind)
        {
            match queue.push(message.clone()) {
                Ok(()) => return Ok(sent(id)),
                // Closing: fall back to the address (RFC 3261 18.2.2).
                Err(Error::ConnectionClosed { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // A connection may close between lookup and push; try a fresh one
        // once more before giving up.
        for _ in 0..2 {
            let (id, queue) = match shared.route((dest.kind, dest.addr), tls_name(dest).as_deref())
            {
                Some(found) => found,
                None => shared.connect(dest).await?,
            };
            match queue.push(message.clone()) {
                Ok(()) => return Ok(sent(id)),
                Err(Error::ConnectionClosed { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::Closed)
    }

    /// Sends a parsed or built message; see [`Transport::send`].
    pub async fn send_message(&self, dest: &Destination, message: &Message) -> Result<Sent, Error> {
        self.send(dest, message.as_bytes().clone()).await
    }

    /// Makes `addr` reachable over connection `id` (RFC 5923): later
    /// sends to `addr` of the connection's kind go over it. Returns false
    /// when the connection is closed.
    ///
    /// Aliases from a Via `alias` parameter are added automatically only
    /// for TLS peers that presented a verified client certificate; call this
    /// after your own checks for any other.
    pub fn alias(&self, id: ConnectionId, addr: SocketAddr) -> bool {
        let kind = lock(&self.shared.state).conns.get(&id).map(|c| c.kind);
        match kind {
            Some(kind) => self.shared.add_route(id, (kind, addr)),
            None => false,
        }
    }

    /// The open connection a send to `addr` over `kind` would use.
    pub fn connection_to(&self, kind: TransportKind, addr: SocketAddr) -> Option<ConnectionId> {
        self.shared.route((kind, addr), None).map(|(id, _)| id)
    }

    /// Connections open or in their TLS handshake.
    pub fn connection_count(&self) -> usize {
        lock(&self.shared.state).slots
    }

    /// Bytes queued on connection `id` and not yet written (`None` when it
    /// is closed).
    pub fn queued_bytes(&self, id: ConnectionId) -> Option<usize> {
        lock(&self.shared.state)
            .conns
            .get(&id)
            .map(|c| c.queue.queued())
    }

    /// Closes connection `id` after writing what is queued on it.
    pub fn close_connection(&self, id: ConnectionId) {
        if let Some(conn) = lock(&self.shared.state).conns.get(&id) {
            conn.stop.notify_one();
        }
    }

    /// First step of a graceful shutdown: closes the TCP and TLS listeners
    /// so that no new connection is accepted. Open connections and UDP
    /// sockets keep working, so that live transactions can finish; then
    /// call [`Transport::close`].
    pub fn stop_accepting(&self) {
        let mut state = lock(&self.shared.state);
        if state.accepting_stopped {
            return;
        }
        state.accepting_stopped = true;
        drop(state);
        self.shared.stop_listeners();
        info!("stopped accepting connections");
    }

    /// Closes the transport: stops accepting, refuses new sends, writes
    /// what is queued on every connection (TLS connections end with a
    /// close_notify), and waits up to `grace` for connections to finish
    /// before cutting the rest. [`Incoming::recv`] then returns `None`.
    pub async fn close(&self, grace: Duration) {
        self.stop_accepting();
        lock(&self.shared.state).closed = true;
        let _ = self.shared.shutdown.send_replace(true);
        let deadline = Instant::now() + grace;
        loop {
            if lock(&self.shared.state).conns.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let remaining: Vec<AbortHandle> = lock(&self.shared.state)
            .conns
            .values()
            .filter_map(|c| c.task.clone())
            .collect();
        if !remaining.is_empty() {
            warn!(
                connections = remaining.len(),
                "connections still open after the grace period; cut"
            );
        }
        for task in remaining {
            task.abort();
        }
        for task in lock(&self.shared.tasks).drain(..) {
            task.abort();
        }
        lock(&self.shared.events).take();
        info!("transport closed");
    }
}

impl Shared {
    /// Aborts the accept loops (the UDP loops are kept).
    fn stop_listeners(&self) {
        let tasks = lock(&self.tasks);
        let udp = self.udp.len();
        for task in tasks.iter().skip(udp) {
            task.abort();
        }
    }
}

async fn udp_loop(
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    events: mpsc::Sender<Event>,
) {
    let mut buf = vec![0u8; DATAGRAM_BUFFER];
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = closing(&mut shutdown) => return,
        };
        let (n, from) = match received {
            Ok(x) => x,
            Err(e) => {
                // An ICMP error for an earlier datagram surfaces here on
                // some systems: not fatal for the socket.
                debug!(kind = "UDP", local = %local, error = %e, "receive error");
                continue;
            }
        };
        let Some(data) = buf.get(..n) else {
            continue;
        };
        let data = Bytes::copy_from_slice(data);
        match parse_datagram(data, &shared.config.limits) {
            Ok(Frame::Message(message)) => {
                let ev = Event::Message(Received {
                    message,
                    source: from,
                    local,
                    kind: TransportKind::Udp,
                    connection: None,
                    peer_authenticated: false,
                });
                if events.send(ev).await.is_err() {
                    return;
                }
            }
            Ok(Frame::Ping) => {
                let _ = socket.send_to(PONG, from).await;
            }
            Ok(Frame::Pong) => {}
            Err(e) => {
                debug!(kind = "UDP", peer = %from, len = n, error = %e, "datagram dropped");
            }
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, acceptor: Option<TlsAcceptor>) {
    let kind = if acceptor.is_some() {
        TransportKind::Tls
    } else {
        TransportKind::Tcp
    };
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait a little
                // rather than spin.
                warn!(%kind, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match shared.reserve_slot() {
            Ok(slot) => slot,
            Err(e) => {
                debug!(%kind, peer = %remote, reason = %e, "connection refused");
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Ok(local) = tcp.local_addr() else {
            continue;
        };
        match &acceptor {
            None => {
                let info = shared.register(kind, remote, local, false, false, None);
                shared.spawn_connection(info, tcp, slot);
            }
            Some(acceptor) => {
                let accept = acceptor.accept(tcp);
                let shared = shared.clone();
                let limit = shared.config.handshake_timeout;
                let mut shutdown = shared.shutdown.subscribe();
                tokio::spawn(async move {
                    let result = tokio::select! {
                        r = timeout(limit, accept) => r,
                        _ = closing(&mut shutdown) => return,
                    };
                    match result {
                        Ok(Ok(tls)) => {
                            let authenticated = tls.get_ref().1.peer_certificates().is_some();
                            let info =
                                shared.register(kind, remote, local, false, authenticated, None);
                            shared.spawn_connection(info, tls, slot);
                        }
                        Ok(Err(e)) => {
                            let failure = TlsFailure::from_io(&e);
                            debug!(%kind, peer = %remote, %failure, "TLS handshake failed");
                        }
                        Err(_) => {
                            debug!(%kind, peer = %remote, "TLS handshake timed out");
                        }
                    }
                });
            }
        }
    }
}

/// When the connection last carried bytes, in milliseconds since it opened.
#[derive(Debug)]
struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Resolves once the transport is closing.
async fn closing(rx: &mut watch::Receiver<bool>) {
    // The guard returned by `wait_for` is dropped here, never held across
    // an await of the caller.
    let _ = rx.wait_for(|closing| *closing).await;
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn run_connection<S>(
    shared: Arc<Shared>,
    info: ConnInfo,
    stream: S,
    slot: Slot,
    events: mpsc::Sender<Event>,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let ConnInfo {
        id,
        kind,
        remote,
        outbound,
        ..
    } = info;
    let conn = id.get();
    debug!(conn, %kind, peer = %remote, outbound, "connection open");
    let opened = Event::Connected {
        connection: id,
        kind,
        remote,
        outbound,
    };
    let config = &shared.config;
    let (mut rd, wr) = tokio::io::split(stream);
    let activity = Arc::new(Activity::new());
    let mut writer = tokio::spawn(write_loop(
        info.queue.clone(),
        wr,
        activity.clone(),
        config.write_timeout,
    ));
    let mut framer = if outbound {
        StreamFramer::client(config.limits)
    } else {
        StreamFramer::server(config.limits)
    };
    let mut buf = vec![0u8; STREAM_READ.min(config.limits.max_message_size.max(1))];
    let mut shutdown = shared.shutdown.subscribe();
    let keepalive = if outbound {
        config.keepalive_interval.filter(|i| !i.is_zero())
    } else {
        None
    };
    let mut next_ping = keepalive.map(|i| Instant::now() + i);
    let mut pong_deadline: Option<Instant> = None;
    let mut writer_done = false;
    let reason = if events.send(opened).await.is_err() {
        CloseReason::Local
    } else {
        loop {
            let idle_deadline = config.idle_timeout.map(|t| activity.last() + t);
            tokio::select! {
                r = rd.read(&mut buf) => match r {
                    Ok(0) => break CloseReason::PeerClosed,
                    Ok(n) => {
                        activity.touch();
                        let Some(data) = buf.get(..n) else {
                            break CloseReason::Io;
                        };
                        match read_frames(&shared, &info, &mut framer, data, &events, &mut pong_deadline).await {
                            Ok(()) => {}
                            Err(reason) => break reason,
                        }
                    }
                    Err(e) => {
                        debug!(conn, error = %e, "read failed");
                        break CloseReason::Io;
                    }
                },
                _ = sleep_until_opt(idle_deadline) => {
                    if idle_deadline.is_some_and(|d| d <= Instant::now())
                        && config.idle_timeout.is_some_and(|t| activity.last() + t <= Instant::now())
                    {
                        break CloseReason::Idle;
                    }
                }
                _ = sleep_until_opt(next_ping) => {
                    if pong_deadline.is_none() && info.queue.push_keepalive(PING) {
                        pong_deadline = Some(Instant::now() + config.pong_timeout);
                    }
                    next_ping = keepalive.map(|i| Instant::now() + i);
                }
                _ = sleep_until_opt(pong_deadline) => break CloseReason::KeepaliveFailed,
                r = &mut writer => {
                    writer_done = true;
                    break match r {
                        Ok(Err(reason)) => reason,
                        _ => CloseReason::Io,
                    };
                }
                _ = closing(&mut shutdown) => break CloseReason::Local,
                _ = info.stop.notified() => break CloseReason::Local,
            }
        }
    };
    // No new sends from here on; the writer drains what is queued.
    shared.deregister(id);
    if !writer_done {
        let flush = matches!(reason, CloseReason::Local | CloseReason::PeerClosed);
        if flush {
            if timeout(config.write_timeout, &mut writer).await.is_err() {
                writer.abort();
            }
        } else {
            writer.abort();
        }
    }
    drop(slot);
    debug!(conn, %kind, peer = %remote, %reason, "connection closed");
    let _ = events
        .send(Event::Closed {
            connection: id,
            kind,
            remote,
            reason,
        })
        .await;
}

/// Feeds bytes to the framer and acts on every whole frame.
async fn read_frames(
    shared: &Shared,
    info: &ConnInfo,
    framer: &mut StreamFramer,
    data: &[u8],
    events: &mpsc::Sender<Event>,
    pong_deadline: &mut Option<Instant>,
) -> Result<(), CloseReason> {
    let conn = info.id.get();
    let fail = |e: ParseError| {
        debug!(conn, peer = %info.remote, error = %e, "bad stream input; closing");
        match e {
            ParseError::MessageTooLarge { .. } | ParseError::BodyTooLarge { .. } => {
                CloseReason::MessageTooLarge
            }
            _ => CloseReason::BadInput,
        }
    };
    framer.push(data).map_err(fail)?;
    loop {
        match framer.next_frame().map_err(fail)? {
            None => return Ok(()),
            Some(Frame::Ping) => {
                // RFC 5626 section 4.4.1: answer a double CRLF with one CRLF.
                info.queue.push_keepalive(PONG);
            }
            Some(Frame::Pong) => *pong_deadline = None,
            Some(Frame::Message(message)) => {
                if info.kind == TransportKind::Tls && info.authenticated_peer && !info.outbound {
                    alias_from_via(shared, info, &message);
                }
                let ev = Event::Message(Received {
                    message,
                    source: info.remote,
                    local: info.local,
                    kind: info.kind,
                    connection: Some(info.id),
                    peer_authenticated: info.authenticated_peer,
                });
                if events.send(ev).await.is_err() {
                    return Err(CloseReason::Local);
                }
            }
        }
    }
}

/// RFC 5923: a request whose top Via carries `alias` makes the connection
/// reusable for requests toward the Via's port at the peer's address. Only
/// the peer's own IP address is ever aliased, so that a peer cannot draw
/// traffic meant for another host.
fn alias_from_via(shared: &Shared, info: &ConnInfo, message: &Message) {
    if !message.is_request() {
        return;
    }
    let Ok(via) = message.top_via() else {
        return;
    };
    if !via.params().contains("alias") || !via.transport().eq_ignore_ascii_case("TLS") {
        return;
    }
    let port = via.port().unwrap_or(SIPS_PORT);
    let ip: IpAddr = info.remote.ip();
    let addr = SocketAddr::new(ip, port);
    if shared.add_route(info.id, (info.kind, addr)) {
        debug!(conn = info.id.get(), alias = %addr, "connection aliased");
    }
}

async fn write_loop<W>(
    queue: Arc<SendQueue>,
    mut wr: W,
    activity: Arc<Activity>,
    write_timeout: Duration,
) -> Result<(), CloseReason>
where
    W: AsyncWrite + Unpin,
{
    while let Some(chunk) = queue.next().await {
        let write = async {
            wr.write_all(&chunk).await?;
            wr.flush().await
        };
        match timeout(write_timeout, write).await {
            Ok(Ok(())) => {
                queue.written(chunk.len());
                activity.touch();
            }
            Ok(Err(_)) => return Err(CloseReason::Io),
            Err(_) => return Err(CloseReason::WriteStalled),
        }
    }
    // Closed and drained: end the stream (a TLS close_notify, then FIN).
    let _ = timeout(write_timeout, wr.shutdown()).await;
    Ok(())
}
