//! A call's audio written into the vault as it arrives: a voicemail or a
//! recording is never on disk in clear and never whole in memory.
//!
//! A [`Recorder`] takes the plaintext RTP packets of one direction of a
//! call (those a [`MediaRelay`](crate::relay::MediaRelay) opened, or a
//! voicemail service's own SRTP context) and streams their G.711 samples
//! into a vault object: the samples of the first stream it is given, placed
//! by their RTP timestamps, so that a lost packet becomes silence of its
//! length (up to [`RecorderConfig::max_gap`]) and the recording keeps the
//! call's timing. Repeated and late packets, other streams, other payload
//! types (DTMF events, comfort noise) are skipped and counted, never
//! written twice or out of order. The object ends at
//! [`RecorderConfig::max_duration`] (a voicemail's longest message).
//!
//! The object's media type is that of its raw samples (`audio/PCMU` or
//! `audio/PCMA`, RFC 4856); [`wav_header`](crate::audio::wav_header) turns
//! it into a WAV file when it is exported. Who recorded what, and when, is
//! in the object's encrypted labels and, through a
//! [`VaultAuditHook`](crate::vault_audit::VaultAuditHook), in the audit log.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use carevox::audio::G711;
//! use carevox::recording::{Recorder, RecorderConfig, Pushed};
//! use carevox::vault::{MemoryBackend, Metadata, Vault};
//! # #[allow(clippy::disallowed_methods)]
//! let rng = ring::rand::SystemRandom::new();
//! # let dir = tempfile::tempdir()?;
//! # let keys = carevox::vault::LocalKeyFile::create(dir.path().join("k"), &rng)?;
//! let vault = Vault::new(Arc::new(MemoryBackend::new()), Arc::new(keys));
//! let metadata = Metadata::new("vm-1", G711::Pcmu.media_type(), 1_700_000_000, 1_800_000_000)
//!     .label("caller", "sip:+15551234567@clinic.example");
//! let mut recorder = Recorder::start(&vault, &rng, metadata, RecorderConfig::new(G711::Pcmu))?;
//!
//! // Two 20 ms packets, the second one lost, then the third.
//! let packet = |seq: u16| {
//!     let mut p = vec![0x80, 0];
//!     p.extend_from_slice(&seq.to_be_bytes());
//!     p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
//!     p.extend_from_slice(&7u32.to_be_bytes());
//!     p.extend_from_slice(&[0x12; 160]);
//!     p
//! };
//! assert_eq!(recorder.push(&packet(1))?, Pushed::Written { samples: 160 });
//! // The lost packet's 20 ms are written as silence before the third.
//! assert_eq!(recorder.push(&packet(3))?, Pushed::Written { samples: 320 });
//! let info = recorder.finish()?;
//! assert_eq!(info.len, 480);
//! let (_, samples) = vault.get("vm-1")?;
//! assert_eq!(&samples[160..320], &[0xff; 160][..]); // μ-law silence
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use carevox_vault::{Error as VaultError, Metadata, ObjectInfo, ObjectWriter, Vault};
use ring::rand::SecureRandom;

use crate::audio::G711;

/// Settings of a [`Recorder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecorderConfig {
    /// The law of the samples recorded (packets of the other payload type
    /// are skipped).
    pub law: G711,
    /// The longest recording (default 3 minutes); past it,
    /// [`Recorder::push`] answers [`Pushed::Full`].
    pub max_duration: Duration,
    /// The longest silence written for lost packets at once (default 1 s):
    /// a jump of the RTP timestamp past it is written as this much
    /// silence, so that a peer cannot make the recording grow by lying
    /// about time.
    pub max_gap: Duration,
}

impl RecorderConfig {
    /// The defaults for `law`.
    pub fn new(law: G711) -> RecorderConfig {
        RecorderConfig {
            law,
            max_duration: Duration::from_secs(180),
            max_gap: Duration::from_secs(1),
        }
    }

    /// Sets [`RecorderConfig::max_duration`].
    pub fn with_max_duration(mut self, d: Duration) -> RecorderConfig {
        self.max_duration = d;
        self
    }

    /// Sets [`RecorderConfig::max_gap`].
    pub fn with_max_gap(mut self, d: Duration) -> RecorderConfig {
        self.max_gap = d;
        self
    }
}

/// What became of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pushed {
    /// Samples were written: the packet's, and silence for any packets lost
    /// before it.
    Written {
        /// Samples written (silence included), at 8000 per second.
        samples: u64,
    },
    /// The packet was skipped.
    Skipped(Skip),
    /// The recording has reached its longest duration; nothing more is
    /// written.
    Full,
}

/// Why a packet was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skip {
    /// Its samples are already written (a repeat) or come before what is
    /// (a late packet).
    Late,
    /// Another stream (SSRC) than the one recorded.
    OtherStream,
    /// Another payload type (a DTMF event, comfort noise, another codec).
    OtherPayload,
    /// No samples in it.
    Empty,
}

/// Counters of a recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecorderStats {
    /// Samples written, silence included.
    pub samples: u64,
    /// Samples of silence written for lost packets.
    pub concealed: u64,
    /// Packets skipped as repeated or late.
    pub late: u64,
    /// Packets of other streams skipped.
    pub other_streams: u64,
    /// Packets of other payload types skipped.
    pub other_payloads: u64,
}

/// Why recording failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    /// The packet is not RTP (too short, wrong version, a header that runs
    /// past its end).
    #[error("not an RTP packet: {reason}")]
    NotRtp {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The vault refused (the object exists, a key or disk failure).
    #[error("vault: {0}")]
    Vault(#[from] VaultError),
}

/// The payload of an RTP packet and the fields a recording needs.
struct Rtp<'a> {
    payload_type: u8,
    timestamp: u32,
    ssrc: u32,
    payload: &'a [u8],
}

fn parse_rtp(p: &[u8]) -> Result<Rtp<'_>, RecordingError> {
    let not = |reason| RecordingError::NotRtp { reason };
    let header: [u8; 12] = p
        .get(..12)
        .and_then(|h| h.try_into().ok())
        .ok_or(not("shorter than an RTP header"))?;
    if header[0] >> 6 != 2 {
        return Err(not("version is not 2"));
    }
    let csrcs = usize::from(header[0] & 0x0f);
    let mut start = 12 + 4 * csrcs;
    if header[0] & 0x10 != 0 {
        let ext: [u8; 4] = p
            .get(start..start + 4)
            .and_then(|h| h.try_into().ok())
            .ok_or(not("header extension past the end"))?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = p.len();
    if header[0] & 0x20 != 0 {
        let pad = usize::from(*p.last().ok_or(not("empty"))?);
        end = end.checked_sub(pad).ok_or(not("padding past the start"))?;
    }
    let payload = p.get(start..end).ok_or(not("header past the end"))?;
    Ok(Rtp {
        payload_type: header[1] & 0x7f,
        timestamp: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
        ssrc: u32::from_be_bytes([header[8], header[9], header[10], header[11]]),
        payload,
    })
}

/// Samples at 8 kHz in `d`.
fn samples_in(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .saturating_mul(8)
}

/// A recording being written. See the [module documentation](self).
#[derive(Debug)]
pub struct Recorder<'v> {
    writer: ObjectWriter<'v>,
    config: RecorderConfig,
    /// The stream recorded and the RTP timestamp of its next sample.
    stream: Option<(u32, u32)>,
    limit: u64,
    stats: RecorderStats,
}

impl<'v> Recorder<'v> {
    /// Starts the object described by `metadata` (its content type should
    /// be [`G711::media_type`]) in `vault`.
    pub fn start(
        vault: &'v Vault,
        rng: &dyn SecureRandom,
        metadata: Metadata,
        config: RecorderConfig,
    ) -> Result<Recorder<'v>, RecordingError> {
        let writer = vault.writer(rng, metadata)?;
        Ok(Recorder {
            writer,
            limit: samples_in(config.max_duration),
            config,
            stream: None,
            stats: RecorderStats::default(),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> RecorderStats {
        self.stats
    }

    /// The length recorded so far.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.stats.samples / 8)
    }

    /// Writes the samples of one plaintext RTP packet.
    pub fn push(&mut self, packet: &[u8]) -> Result<Pushed, RecordingError> {
        let rtp = parse_rtp(packet)?;
        if self.stats.samples >= self.limit {
            return Ok(Pushed::Full);
        }
        if rtp.payload_type != self.config.law.payload_type() {
            self.stats.other_payloads += 1;
            return Ok(Pushed::Skipped(Skip::OtherPayload));
        }
        if rtp.payload.is_empty() {
            return Ok(Pushed::Skipped(Skip::Empty));
        }
        let next = match self.stream {
            None => rtp.timestamp,
            Some((ssrc, _)) if ssrc != rtp.ssrc => {
                self.stats.other_streams += 1;
                return Ok(Pushed::Skipped(Skip::OtherStream));
            }
            Some((_, next)) => next,
        };
        // How far ahead of the next expected sample this packet starts, in
        // the wrapping arithmetic of RTP timestamps: over half the range
        // behind means late.
        let ahead = rtp.timestamp.wrapping_sub(next);
        if ahead >= 1 << 31 {
            self.stats.late += 1;
            return Ok(Pushed::Skipped(Skip::Late));
        }
        let room = self.limit - self.stats.samples;
        let gap = u64::from(ahead)
            .min(samples_in(self.config.max_gap))
            .min(room);
        let mut written = 0u64;
        if gap > 0 {
            let silence = [self.config.law.silence(); 160];
            let mut left = gap;
            while left > 0 {
                let n = usize::try_from(left.min(160)).unwrap_or(160);
                self.writer.update(silence.get(..n).unwrap_or(&silence))?;
                left -= u64::try_from(n).unwrap_or(left);
            }
            written += gap;
            self.stats.concealed += gap;
        }
        let room = room - gap;
        let take = rtp
            .payload
            .get(
                ..usize::try_from(room)
                    .unwrap_or(usize::MAX)
                    .min(rtp.payload.len()),
            )
            .unwrap_or(rtp.payload);
        self.writer.update(take)?;
        let take_len = u64::try_from(take.len()).unwrap_or(u64::MAX);
        written += take_len;
        self.stats.samples += written;
        // The next sample follows this packet's last one.
        let advance = u32::try_from(take.len()).unwrap_or(u32::MAX);
        self.stream = Some((rtp.ssrc, rtp.timestamp.wrapping_add(advance)));
        Ok(Pushed::Written { samples: written })
    }

    /// Seals the object: it exists in the vault once this returns.
    pub fn finish(self) -> Result<ObjectInfo, RecordingError> {
        Ok(self.writer.finish()?)
    }
}
