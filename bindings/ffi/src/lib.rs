//! UniFFI bindings of carevox for Kotlin, Python and Swift.
//!
//! This crate is the only one in the workspace that knows UniFFI. It holds
//! conversions and error mapping only: every protocol and storage rule lives
//! in the library crates. The surface is shaped for a mobile or Python
//! caller: objects are thread-safe handles (`Arc`, with a `Mutex` where the
//! Rust type needs `&mut`), errors are typed enums whose messages carry no
//! secret and no PHI, and secrets passed in are zeroized on the Rust side
//! once used. What the caller must do on its own side is in
//! `bindings/README.md`.
//!
//! Time is always an argument (seconds or milliseconds since the Unix
//! epoch, as each call says); randomness comes from the operating system
//! through `ring`, here at the application boundary.
// UniFFI's scaffolding is `extern "C"` code: this crate cannot forbid unsafe
// code the way the library crates do. Its only hand-written unsafe code is in
// `direct` (the JVM's direct-buffer SRTP batch path), each block with a
// SAFETY comment.
#![deny(missing_docs)]

uniffi::setup_scaffolding!("carevox");

mod audit;
mod authz;
pub mod direct;
mod error;
mod sip;
mod srtp;
mod vault;

pub use audit::*;
pub use authz::*;
pub use error::*;
pub use sip::*;
pub use srtp::*;
pub use vault::*;

/// The operating system's random number generator.
///
/// The bindings are an application boundary: the library crates take
/// randomness as an argument, and this is where it comes from.
#[allow(clippy::disallowed_methods)]
pub(crate) fn system_rng() -> ring::rand::SystemRandom {
    ring::rand::SystemRandom::new()
}

/// Does nothing: the cost of one crossing of the foreign boundary, for the
/// boundary-cost benchmark.
#[uniffi::export]
pub fn boundary_noop() {}

/// The version of the carevox bindings.
#[uniffi::export]
pub fn bindings_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

#[cfg(test)]
mod redaction_tests {
    use carevox::redact::debug_leak;

    #[test]
    fn records_holding_secrets_or_phi_print_none_of_them() {
        let enrolment = crate::authz::TotpEnrolment {
            secret_base32: "JBSWY3DPEHPK3PXP".into(),
            provisioning_uri: "otpauth://totp/clinic:nurse.jo?secret=JBSWY3DPEHPK3PXP".into(),
        };
        assert_eq!(debug_leak(&enrolment, &["JBSWY3DP", "nurse.jo"]), None);
        let detail = crate::audit::AuditDetail {
            key: "patient-name".into(),
            value: "Jane Q. Patient".into(),
        };
        assert_eq!(debug_leak(&detail, &["patient-name", "Jane"]), None);
    }
}
