//! The vocabulary shared by senders and receivers: transport kinds,
//! connection ids, destinations and received messages.

use std::fmt;
use std::net::SocketAddr;

use carevox_sip::Message;

/// The transport a message is carried over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// UDP datagrams (RFC 3261 section 18.1.1).
    Udp,
    /// A TCP byte stream, framed by Content-Length (RFC 3261 section 18.3).
    Tcp,
    /// TLS 1.2 or 1.3 over TCP (RFC 3261 section 26.2.1, RFC 5630).
    Tls,
}

impl TransportKind {
    /// Whether messages on this transport travel over a connection.
    pub fn is_stream(self) -> bool {
        !matches!(self, TransportKind::Udp)
    }

    /// The name in a Via header (`UDP`, `TCP`, `TLS`).
    pub fn via_name(self) -> &'static str {
        match self {
            TransportKind::Udp => "UDP",
            TransportKind::Tcp => "TCP",
            TransportKind::Tls => "TLS",
        }
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_name())
    }
}

/// Identifies one TCP or TLS connection for the life of a
/// [`Transport`](crate::Transport). Ids are never reused; they are safe to
/// log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub(crate) u64);

impl ConnectionId {
    /// The number behind the id.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

/// Where to send a message.
///
/// For a response, name the connection the request came on
/// ([`Destination::over`]): RFC 3261 section 18.2.2 sends responses back over
/// that connection, and if it has closed in the meantime the message goes
/// to the address instead (over a connection already open to it, or a new
/// one).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Destination {
    /// The transport.
    pub kind: TransportKind,
    /// The peer's address.
    pub addr: SocketAddr,
    /// For TLS: the name the server's certificate must be valid for (a DNS
    /// name or an IP address in text). Without one, the IP address of
    /// `addr` is checked against the certificate.
    pub server_name: Option<String>,
    /// A connection to use first, if it is still open.
    pub connection: Option<ConnectionId>,
}

impl Destination {
    /// A UDP destination.
    pub fn udp(addr: SocketAddr) -> Self {
        Self::new(TransportKind::Udp, addr)
    }

    /// A TCP destination.
    pub fn tcp(addr: SocketAddr) -> Self {
        Self::new(TransportKind::Tcp, addr)
    }

    /// A TLS destination whose certificate must be valid for `server_name`.
    pub fn tls(addr: SocketAddr, server_name: &str) -> Self {
        Self {
            server_name: Some(server_name.to_owned()),
            ..Self::new(TransportKind::Tls, addr)
        }
    }

    /// A destination of any kind, without a server name or connection.
    pub fn new(kind: TransportKind, addr: SocketAddr) -> Self {
        Self {
            kind,
            addr,
            server_name: None,
            connection: None,
        }
    }

    /// The destination for a response to `received`: over the connection
    /// it came on, falling back to its source address.
    pub fn reply_to(received: &Received) -> Self {
        Self {
            connection: received.connection,
            ..Self::new(received.kind, received.source)
        }
    }

    /// Prefers `connection` while it is open.
    pub fn over(mut self, connection: ConnectionId) -> Self {
        self.connection = Some(connection);
        self
    }
}

/// A message received from the network.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Received {
    /// The parsed message (its `Debug` shows only its shape).
    pub message: Message,
    /// The peer's address (for a stream, the connection's remote address).
    pub source: SocketAddr,
    /// Our address it arrived on.
    pub local: SocketAddr,
    /// The transport it came over.
    pub kind: TransportKind,
    /// The connection it came on (TCP and TLS).
    pub connection: Option<ConnectionId>,
    /// Whether the peer proved its identity in the TLS handshake: a server
    /// certificate we verified (on connections we opened) or a client
    /// certificate our [`ClientAuth`](crate::ClientAuth) roots verified.
    /// False for UDP and TCP.
    pub peer_authenticated: bool,
}

/// Why a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer closed it.
    PeerClosed,
    /// No bytes either way for
    /// [`TransportConfig::idle_timeout`](crate::TransportConfig::idle_timeout).
    Idle,
    /// A keep-alive ping got no pong within
    /// [`TransportConfig::pong_timeout`](crate::TransportConfig::pong_timeout)
    /// (RFC 5626 section 4.4.1).
    KeepaliveFailed,
    /// The peer sent bytes that are not a SIP message.
    BadInput,
    /// The peer sent a message larger than the configured limit.
    MessageTooLarge,
    /// The peer did not take our bytes for
    /// [`TransportConfig::write_timeout`](crate::TransportConfig::write_timeout).
    WriteStalled,
    /// A read or write failed.
    Io,
    /// [`Transport::close_connection`](crate::Transport::close_connection) or
    /// [`Transport::close`](crate::Transport::close) closed it.
    Local,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::PeerClosed => "closed by the peer",
            CloseReason::Idle => "idle timeout",
            CloseReason::KeepaliveFailed => "no keep-alive pong",
            CloseReason::BadInput => "bad input",
            CloseReason::MessageTooLarge => "message too large",
            CloseReason::WriteStalled => "peer not reading",
            CloseReason::Io => "I/O error",
            CloseReason::Local => "closed locally",
        })
    }
}

/// What a [`Transport`](crate::Transport) reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A message arrived.
    Message(Received),
    /// A TCP or TLS connection was opened (accepted, or connected by a
    /// send).
    Connected {
        /// The connection.
        connection: ConnectionId,
        /// Its transport.
        kind: TransportKind,
        /// The peer's address.
        remote: SocketAddr,
        /// Whether we opened it.
        outbound: bool,
    },
    /// A TCP or TLS connection closed. Transactions whose messages were to
    /// go over it should fall back to the address (RFC 3261 section 18.2.2)
    /// or fail (section 17.1.4).
    Closed {
        /// The connection.
        connection: ConnectionId,
        /// Its transport.
        kind: TransportKind,
        /// The peer's address.
        remote: SocketAddr,
        /// Why.
        reason: CloseReason,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        let addr: SocketAddr = "127.0.0.1:5061".parse().unwrap();
        let d = Destination::tls(addr, "sip.example.org");
        assert_eq!(d.kind, TransportKind::Tls);
        assert_eq!(d.server_name.as_deref(), Some("sip.example.org"));
        assert_eq!(d.connection, None);
        let d = Destination::tcp(addr).over(ConnectionId(9));
        assert_eq!(d.connection, Some(ConnectionId(9)));
        assert_eq!(Destination::udp(addr).kind, TransportKind::Udp);
        assert!(TransportKind::Tls.is_stream() && TransportKind::Tcp.is_stream());
        assert!(!TransportKind::Udp.is_stream());
        assert_eq!(TransportKind::Tls.to_string(), "TLS");
        assert_eq!(ConnectionId(4).to_string(), "conn-4");
    }
}
