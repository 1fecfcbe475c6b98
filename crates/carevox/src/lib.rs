#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// The PHI and secret wrappers every crate uses (`Pii`, `Secret`).
pub use carevox_redact as redact;

#[cfg(feature = "audit")]
pub use carevox_audit as audit;
#[cfg(feature = "authz")]
pub use carevox_authz as authz;
#[cfg(feature = "sip")]
pub use carevox_sip as sip;
#[cfg(feature = "srtp")]
pub use carevox_srtp as srtp;
#[cfg(feature = "vault")]
pub use carevox_vault as vault;

pub mod audio;
pub mod dtmf;
#[cfg(all(feature = "sip", feature = "srtp"))]
pub mod media;
#[cfg(feature = "vault")]
pub mod recording;
#[cfg(all(feature = "sip", feature = "srtp"))]
pub mod relay;
mod rtp;
#[cfg(all(feature = "sip", feature = "srtp"))]
pub mod sdes;

#[cfg(all(feature = "authz", feature = "audit"))]
pub mod access;
#[cfg(feature = "audit")]
pub mod audit_sink;
#[cfg(feature = "audit")]
pub mod call_audit;
#[cfg(all(feature = "authz", feature = "audit"))]
pub mod login;
#[cfg(feature = "audit")]
pub mod message_audit;
#[cfg(feature = "audit")]
pub mod registration;
#[cfg(all(feature = "vault", feature = "audit"))]
pub mod vault_audit;
