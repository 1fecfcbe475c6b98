//! Call recordings in the vault: how a recording is named and labelled.
//!
//! A recorded call is one vault object: the two parties' audio mixed into
//! one channel of G.711 μ-law at 8 kHz (`audio/PCMU`), the announcement
//! that the call is recorded at its start, written as the call goes
//! (carevox's `CallRecorder`). Its id starts with [`RECORDING_PREFIX`];
//! its encrypted labels name it a recording ([`KIND`] under
//! [`crate::cdr::KIND_LABEL`]) and carry the caller, the callee and the
//! Call-ID. Its retention date is `[retention] recordings_days` after the
//! call was answered.

use carevox::audio::G711;
use carevox::vault::Metadata;

/// The id prefix of call recordings in the vault.
pub const RECORDING_PREFIX: &str = "rec-";
/// The kind label of a call recording.
pub const KIND: &str = "recording";

/// The metadata of a recording of the call `call_id` from `caller` to
/// `callee`, started at `now` (Unix seconds) and kept until
/// `retain_until`. `id` must start with [`RECORDING_PREFIX`].
pub fn metadata(
    id: &str,
    caller: &str,
    callee: &str,
    call_id: &str,
    now: u64,
    retain_until: u64,
) -> Metadata {
    Metadata::new(id, G711::Pcmu.media_type(), now, retain_until)
        .label(crate::cdr::KIND_LABEL, KIND)
        .label("caller", caller)
        .label("callee", callee)
        .label("call_id", call_id)
}

/// Whether the vault object `id`, with `metadata`, is a call recording.
pub fn is_recording(id: &str, metadata: &Metadata) -> bool {
    id.starts_with(RECORDING_PREFIX) && metadata.get_label(crate::cdr::KIND_LABEL) == Some(KIND)
}
