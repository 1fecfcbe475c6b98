//! Entry points of the carevox fuzz targets.
//!
//! Each target is a function here that takes arbitrary bytes and drives one
//! parser of untrusted input (SIP messages, SDP, SRTP packets, vault objects,
//! audit segments). Two things call these functions:
//!
//! - the cargo-fuzz binaries in `fuzz_targets/`, one per entry point, through
//!   `cargo fuzz run <target>` on a nightly toolchain;
//! - the stable test `tests/corpus.rs`, which replays every file under
//!   `corpus/<target>/` through the same function, so that CI exercises the
//!   whole corpus without nightly.
//!
//! A target must never panic, whatever its input: a panic is the bug the
//! fuzzer looks for. Each function may also check invariants (a round trip
//! through the matching encoder, say) and panic when one breaks.
//!
//! To add a target: write its function here, list it in [`TARGETS`], add
//! `fuzz_targets/<target>.rs` with a `[[bin]]` entry in `Cargo.toml`, and commit
//! seed inputs under `corpus/<target>/`.

/// A fuzz entry point: consumes one input, panics only on a bug.
pub type Entry = fn(&[u8]);

pub mod audit;
pub mod media;
pub mod sip;
pub mod srtp;
pub mod vault;

/// Every fuzz target, by the name of its binary and of its corpus directory.
pub const TARGETS: &[(&str, Entry)] = &[
    // carevox-sip
    ("sip_sdp", sip::sip_sdp),
    ("sip_auth_params", sip::sip_auth_params),
    ("sip_message", sip::sip_message),
    ("sip_uri", sip::sip_uri),
    // carevox-srtp
    ("srtp_unprotect_rtp", srtp::srtp_unprotect_rtp),
    ("srtp_unprotect_rtcp", srtp::srtp_unprotect_rtcp),
    // carevox-vault
    ("vault_object", vault::vault_object),
    // carevox-audit
    ("audit_segment", audit::audit_segment),
    ("audit_checkpoint", audit::audit_checkpoint),
    // carevox (the facade's media parsers)
    ("dtmf_events", media::dtmf_events),
    ("call_recorder", media::call_recorder),
];

/// The entry point of the target called `name`, if there is one.
pub fn target(name: &str) -> Option<Entry> {
    TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .map(|(_, entry)| *entry)
}
