//! Limits and timers of a transport, with safe defaults.

use std::time::Duration;

use carevox_sip::Limits;

/// Limits and timers, shared by every socket of a
/// [`Transport`](crate::Transport).
///
/// The defaults suit a signalling server facing phones on the internet:
/// every limit is finite, every timer is on except client keep-alives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportConfig {
    /// Message limits for parsing and framing; a received stream message
    /// over [`Limits::max_message_size`] closes its connection, and a send
    /// over it is refused.
    pub limits: Limits,
    /// Most TCP and TLS connections open at once, inbound and outbound,
    /// those still in their handshake included (default 1 024). An inbound
    /// connection past it is closed at once.
    pub max_connections: usize,
    /// Most bytes queued for sending on one connection (default 256 KiB).
    /// A send past it fails with [`Error::QueueFull`](crate::Error::QueueFull).
    pub max_queued_bytes: usize,
    /// A connection with no bytes in either direction for this long is
    /// closed (default 10 minutes; `None` keeps idle connections).
    pub idle_timeout: Option<Duration>,
    /// Longest time for a TLS handshake, inbound or outbound (default 10 s).
    pub handshake_timeout: Duration,
    /// Longest time for a TCP connect (default 10 s).
    pub connect_timeout: Duration,
    /// A connection whose peer takes none of our bytes for this long while
    /// some are queued is closed (default 30 s).
    pub write_timeout: Duration,
    /// Interval of the RFC 5626 double-CRLF ping on connections we opened
    /// (default `None`: no pings).
    pub keepalive_interval: Option<Duration>,
    /// How long to wait for the pong to a ping before the connection is
    /// declared failed and closed (default 10 s, RFC 5626 section 4.4.1).
    pub pong_timeout: Duration,
    /// Capacity of the event queue read through
    /// [`Incoming`](crate::Incoming) (default 1 024 events). When it is
    /// full, connections stop reading until it drains.
    pub event_capacity: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            max_connections: 1024,
            max_queued_bytes: 256 * 1024,
            idle_timeout: Some(Duration::from_secs(600)),
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            keepalive_interval: None,
            pong_timeout: Duration::from_secs(10),
            event_capacity: 1024,
        }
    }
}

impl TransportConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`TransportConfig::limits`].
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets [`TransportConfig::max_connections`].
    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Sets [`TransportConfig::max_queued_bytes`].
    pub fn with_max_queued_bytes(mut self, n: usize) -> Self {
        self.max_queued_bytes = n;
        self
    }

    /// Sets [`TransportConfig::idle_timeout`].
    pub fn with_idle_timeout(mut self, t: Option<Duration>) -> Self {
        self.idle_timeout = t;
        self
    }

    /// Sets [`TransportConfig::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, t: Duration) -> Self {
        self.handshake_timeout = t;
        self
    }

    /// Sets [`TransportConfig::connect_timeout`].
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets [`TransportConfig::write_timeout`].
    pub fn with_write_timeout(mut self, t: Duration) -> Self {
        self.write_timeout = t;
        self
    }

    /// Sets [`TransportConfig::keepalive_interval`].
    pub fn with_keepalive_interval(mut self, t: Option<Duration>) -> Self {
        self.keepalive_interval = t;
        self
    }

    /// Sets [`TransportConfig::pong_timeout`].
    pub fn with_pong_timeout(mut self, t: Duration) -> Self {
        self.pong_timeout = t;
        self
    }

    /// Sets [`TransportConfig::event_capacity`] (at least 1).
    pub fn with_event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n.max(1);
        self
    }
}
