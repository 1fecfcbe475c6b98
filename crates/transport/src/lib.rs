#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod agent;
mod config;
mod driver;
mod endpoint;
mod error;
mod queue;
mod tls;
mod transport;
mod types;

pub use agent::{Agent, AgentEvent, AgentEvents};
pub use config::TransportConfig;
pub use endpoint::{
    Endpoint, EndpointConfig, EndpointError, EndpointEvent, EndpointEvents, Origin, ShutdownReport,
};
pub use error::{Error, TlsFailure};
pub use tls::{
    ClientAuth, DangerousClientConfig, TlsClientBuilder, TlsClientConfig, TlsServerConfig,
};
pub use transport::{Incoming, Sent, Transport, TransportBuilder};
pub use types::{CloseReason, ConnectionId, Destination, Event, Received, TransportKind};

/// Certificate and key types, re-exported from `rustls-pki-types`
/// (`CertificateDer::pem_file_iter`, `PrivateKeyDer::from_pem_file` and
/// friends read PEM files).
pub use rustls_pki_types as pki_types;

/// Locks a mutex, going on with the data if another thread panicked while
/// holding it (every critical section here leaves the data consistent).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
