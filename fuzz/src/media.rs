//! Fuzz entry points of the carevox facade's media parsers: RFC 4733
//! telephone-events and the call recorder, both fed plaintext RTP a phone
//! chose (after SRTP authenticated it, but a phone is still untrusted).
//!
//! The input is a sequence of packets, each a length byte followed by that
//! many bytes; for the call recorder, a first byte per packet also picks the
//! speaker (low two bits) and how far time moved since the last packet
//! (the rest, in 10 ms steps).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use carevox::audio::G711;
use carevox::dtmf::DtmfReceiver;
use carevox::recording::{CallRecorder, CallRecorderConfig, Speaker};
use carevox_vault::{LocalKeyFile, MemoryBackend, Metadata, Vault};

/// The packets of `data`: a length byte, then that many bytes, repeated.
fn packets(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let n = usize::from(len).min(rest.len());
        let (packet, next) = rest.split_at(n);
        out.push(packet);
        data = next;
    }
    out
}

/// Feeds the packets to a telephone-event receiver (payload type 101).
/// Panics only if one packet reports more events than its payload holds.
pub fn dtmf_events(data: &[u8]) {
    let mut rx = DtmfReceiver::new(101);
    for packet in packets(data) {
        if let Ok(events) = rx.push(packet) {
            assert!(
                events.len() <= packet.len() / 4,
                "more events than reports in the packet"
            );
        }
    }
}

/// One key file for every input (made once, in the temporary directory).
fn keys() -> Option<Arc<LocalKeyFile>> {
    static KEYS: OnceLock<Option<Arc<LocalKeyFile>>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("carevox-fuzz-{}.kek", std::process::id()));
        #[allow(
            clippy::disallowed_methods,
            reason = "the harness's key only protects fuzz inputs"
        )]
        let rng = ring::rand::SystemRandom::new();
        let keys = if path.exists() {
            LocalKeyFile::open(&path)
        } else {
            LocalKeyFile::create(&path, &rng)
        };
        keys.ok().map(Arc::new)
    })
    .clone()
}

/// Records the packets as a call; panics if the recording runs past the
/// last arrival plus the look-ahead and the longest packet.
pub fn call_recorder(data: &[u8]) {
    let Some(keys) = keys() else {
        return;
    };
    let vault = Vault::new(Arc::new(MemoryBackend::new()), keys);
    #[allow(
        clippy::disallowed_methods,
        reason = "the harness's data keys only protect fuzz inputs"
    )]
    let rng = ring::rand::SystemRandom::new();
    let metadata = Metadata::new("rec-fuzz", G711::Pcmu.media_type(), 1, 2);
    let config = CallRecorderConfig::new(G711::Pcmu).with_max_duration(Duration::from_secs(60));
    let Ok(mut recorder) = CallRecorder::start(&vault, &rng, metadata, config) else {
        return;
    };
    let mut at = Duration::ZERO;
    for packet in packets(data) {
        let Some((&selector, packet)) = packet.split_first() else {
            continue;
        };
        let speaker = [Speaker::A, Speaker::B, Speaker::Own, Speaker::A][usize::from(selector & 3)];
        at += Duration::from_millis(u64::from(selector >> 2) * 10);
        let _ = recorder.push(speaker, at, packet);
    }
    if let Ok(info) = recorder.finish(at) {
        let bound = u64::try_from(at.as_millis()).unwrap_or(u64::MAX) * 8 + 8000 + 255;
        assert!(info.len <= bound, "the recording outran its arrivals");
    }
}
