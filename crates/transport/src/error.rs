//! Errors of the transport: what failed and where (connection id, transport
//! kind, limit), never a message's content, a SIP URI or key material.

use std::fmt;
use std::io;

use crate::types::{ConnectionId, TransportKind};

/// Why a send, a connect or the set-up of a transport failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket operation failed.
    #[error("{op} failed: {source}")]
    Io {
        /// What was being done (`"bind"`, `"connect"`, `"send"`, ...).
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {failure}")]
    Tls {
        /// Why, in categories that are safe to log.
        failure: TlsFailure,
    },
    /// A TLS configuration could not be built (bad certificate or key, no
    /// usable roots).
    #[error("TLS configuration: {what}")]
    TlsConfig {
        /// What was wrong.
        what: &'static str,
    },
    /// The connection's send queue would exceed
    /// [`TransportConfig::max_queued_bytes`](crate::TransportConfig::max_queued_bytes):
    /// the peer does not read fast enough. The message was not queued.
    #[error(
        "{connection}: send queue full ({queued} bytes queued, {len} more would exceed the limit of {limit})"
    )]
    QueueFull {
        /// The connection.
        connection: ConnectionId,
        /// Bytes already queued.
        queued: usize,
        /// Size of the refused message.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A message is larger than
    /// [`Limits::max_message_size`](carevox_sip::Limits::max_message_size).
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Size of the message.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Opening another connection would exceed
    /// [`TransportConfig::max_connections`](crate::TransportConfig::max_connections).
    #[error("connection limit of {limit} reached")]
    TooManyConnections {
        /// The configured limit.
        limit: usize,
    },
    /// Opening the connection took longer than
    /// [`TransportConfig::connect_timeout`](crate::TransportConfig::connect_timeout)
    /// (TCP) or
    /// [`TransportConfig::handshake_timeout`](crate::TransportConfig::handshake_timeout)
    /// (TLS).
    #[error("{kind} connection not established in time")]
    Timeout {
        /// The transport.
        kind: TransportKind,
    },
    /// The connection named in the destination is closed and the
    /// destination has no address to fall back on.
    #[error("{connection} is closed")]
    ConnectionClosed {
        /// The connection.
        connection: ConnectionId,
    },
    /// No socket of this kind and address family is bound.
    #[error("no {kind} socket for the {family} address family")]
    NoSocket {
        /// The transport.
        kind: TransportKind,
        /// `"IPv4"` or `"IPv6"`.
        family: &'static str,
    },
    /// No TLS client configuration was given: outgoing TLS connections
    /// cannot be opened.
    #[error("no TLS client configuration: outgoing TLS connections are off")]
    NoTlsClient,
    /// The server name of a TLS destination is not a valid DNS name or IP
    /// address.
    #[error("invalid TLS server name")]
    InvalidServerName,
    /// The transport is closing or closed.
    #[error("the transport is closed")]
    Closed,
}

impl Error {
    pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { op, source }
    }
}

/// Why a TLS handshake failed, in categories that name no certificate
/// content (subject names, serial numbers) and no peer identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The peer's certificate does not chain to a trusted root.
    UntrustedCertificate,
    /// The peer's certificate is expired (or not yet valid).
    ExpiredCertificate,
    /// The server's certificate is not valid for the name asked for.
    WrongServerName,
    /// The peer's certificate was refused for another reason (revoked,
    /// bad signature, wrong usage, malformed).
    BadCertificate,
    /// The server requires a client certificate and none was sent.
    NoClientCertificate,
    /// No protocol version in common: the peer offered only versions
    /// before TLS 1.2.
    ProtocolVersion,
    /// The peer broke off the handshake with an alert.
    PeerAlert,
    /// The handshake did not finish within
    /// [`TransportConfig::handshake_timeout`](crate::TransportConfig::handshake_timeout).
    Timeout,
    /// The connection failed or was closed during the handshake.
    Io,
    /// Any other handshake failure (bad messages, no cipher suite in common).
    Protocol,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsFailure::UntrustedCertificate => "certificate not issued by a trusted authority",
            TlsFailure::ExpiredCertificate => "certificate expired or not yet valid",
            TlsFailure::WrongServerName => "certificate not valid for the server name",
            TlsFailure::BadCertificate => "certificate refused",
            TlsFailure::NoClientCertificate => "client certificate required and not sent",
            TlsFailure::ProtocolVersion => "no TLS version in common (TLS 1.2 or 1.3 required)",
            TlsFailure::PeerAlert => "the peer sent an alert",
            TlsFailure::Timeout => "timed out",
            TlsFailure::Io => "connection failed",
            TlsFailure::Protocol => "protocol error",
        })
    }
}

impl TlsFailure {
    /// Classifies an error from a tokio-rustls handshake.
    pub(crate) fn from_io(e: &io::Error) -> TlsFailure {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => TlsFailure::from_rustls(tls),
            None => TlsFailure::Io,
        }
    }

    fn from_rustls(e: &rustls::Error) -> TlsFailure {
        use rustls::{AlertDescription as A, CertificateError as C, Error as E};
        match e {
            E::InvalidCertificate(c) => match c {
                C::UnknownIssuer => TlsFailure::UntrustedCertificate,
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. } => TlsFailure::ExpiredCertificate,
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    TlsFailure::WrongServerName
                }
                _ => TlsFailure::BadCertificate,
            },
            E::NoCertificatesPresented => TlsFailure::NoClientCertificate,
            E::AlertReceived(A::ProtocolVersion) => TlsFailure::ProtocolVersion,
            E::AlertReceived(A::CertificateRequired) => TlsFailure::NoClientCertificate,
            E::AlertReceived(_) => TlsFailure::PeerAlert,
            E::PeerIncompatible(p) => {
                use rustls::PeerIncompatible as P;
                match p {
                    P::Tls12NotOffered
                    | P::Tls12NotOfferedOrEnabled
                    | P::ServerDoesNotSupportTls12Or13
                    // Only clients older than TLS 1.2 omit it.
                    | P::SignatureAlgorithmsExtensionRequired
                    | P::Tls13RequiredForQuic
                    | P::SupportedVersionsExtensionRequired
                    | P::ServerTlsVersionIsDisabledByOurConfig => TlsFailure::ProtocolVersion,
                    _ => TlsFailure::Protocol,
                }
            }
            _ => TlsFailure::Protocol,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{AlertDescription, CertificateError, PeerIncompatible};

    fn wrapped(e: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn handshake_errors_are_classified() {
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                TlsFailure::UntrustedCertificate,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                TlsFailure::ExpiredCertificate,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                TlsFailure::WrongServerName,
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Revoked),
                TlsFailure::BadCertificate,
            ),
            (
                rustls::Error::NoCertificatesPresented,
                TlsFailure::NoClientCertificate,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                TlsFailure::NoClientCertificate,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::ProtocolVersion),
                TlsFailure::ProtocolVersion,
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::BadCertificate),
                TlsFailure::PeerAlert,
            ),
            (
                rustls::Error::PeerIncompatible(PeerIncompatible::Tls12NotOffered),
                TlsFailure::ProtocolVersion,
            ),
            (
                rustls::Error::PeerIncompatible(
                    PeerIncompatible::SignatureAlgorithmsExtensionRequired,
                ),
                TlsFailure::ProtocolVersion,
            ),
            (
                rustls::Error::PeerIncompatible(PeerIncompatible::NoCipherSuitesInCommon),
                TlsFailure::Protocol,
            ),
            (
                rustls::Error::General("anything".into()),
                TlsFailure::Protocol,
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(TlsFailure::from_io(&wrapped(error)), expected);
        }
        let plain = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(TlsFailure::from_io(&plain), TlsFailure::Io);
    }

    #[test]
    fn messages_name_limits_not_content() {
        let e = Error::QueueFull {
            connection: ConnectionId(3),
            queued: 10,
            len: 5,
            limit: 12,
        };
        assert_eq!(
            e.to_string(),
            "conn-3: send queue full (10 bytes queued, 5 more would exceed the limit of 12)"
        );
        let e = Error::Tls {
            failure: TlsFailure::WrongServerName,
        };
        assert_eq!(
            e.to_string(),
            "TLS handshake failed: certificate not valid for the server name"
        );
    }
}
