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
use crate::rtp::{self, Rtp};

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

/// Reads the RTP header of `packet`.
fn parse_rtp(packet: &[u8]) -> Result<Rtp<'_>, RecordingError> {
    rtp::parse(packet).map_err(|reason| RecordingError::NotRtp { reason })
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

/// Who is heard in a [`CallRecorder`]: one of the call's two parties (for
/// a [`MediaRelay`](crate::relay::MediaRelay), its legs A and B), or the
/// recording side itself (an announcement that the call is recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Speaker {
    /// The first party (a relay's leg A, the caller).
    A,
    /// The second party (a relay's leg B, the callee).
    B,
    /// Media the recording side plays itself.
    Own,
}

impl Speaker {
    fn index(self) -> usize {
        match self {
            Speaker::A => 0,
            Speaker::B => 1,
            Speaker::Own => 2,
        }
    }
}

/// Settings of a [`CallRecorder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallRecorderConfig {
    /// The law of the samples recorded and written.
    pub law: G711,
    /// The longest recording (default 4 hours); past it,
    /// [`CallRecorder::push`] answers [`Pushed::Full`].
    pub max_duration: Duration,
    /// How long a moment of the recording stays open for packets that
    /// arrive late (default 200 ms): what lies further back than this
    /// behind the latest arrival is mixed, encoded and written.
    pub delay: Duration,
    /// How far ahead of its arrival a packet's timestamp may place it
    /// (default 1 s). A stream whose timestamps run further ahead (a jump
    /// after hold, a lying peer), or fall behind what is already written
    /// (a slow clock), is placed again at its arrival.
    pub max_ahead: Duration,
}

impl CallRecorderConfig {
    /// The defaults for `law`.
    pub fn new(law: G711) -> CallRecorderConfig {
        CallRecorderConfig {
            law,
            max_duration: Duration::from_secs(4 * 3600),
            delay: Duration::from_millis(200),
            max_ahead: Duration::from_secs(1),
        }
    }

    /// Sets [`CallRecorderConfig::max_duration`].
    pub fn with_max_duration(mut self, d: Duration) -> CallRecorderConfig {
        self.max_duration = d;
        self
    }

    /// Sets [`CallRecorderConfig::delay`].
    pub fn with_delay(mut self, d: Duration) -> CallRecorderConfig {
        self.delay = d;
        self
    }
}

/// Counters of a call recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallRecorderStats {
    /// Samples written (mixed, silence included).
    pub samples: u64,
    /// Packets placed into the mix.
    pub placed: u64,
    /// Packets skipped as repeated, reordered or later than what was
    /// already written.
    pub late: u64,
    /// Times a stream was placed again at its arrival.
    pub realigned: u64,
    /// Packets of another stream than a speaker's current one, skipped.
    pub other_streams: u64,
    /// Packets of other payload types skipped.
    pub other_payloads: u64,
}

/// Where one speaker's stream is placed in the recording.
#[derive(Debug, Clone, Copy)]
struct Placement {
    ssrc: u32,
    /// The RTP timestamp of the sample after the last one placed.
    next_ts: u32,
    /// The recording position (in samples) of that sample.
    next_pos: u64,
    /// When its last packet arrived (in samples since the start).
    last_arrival: u64,
}

/// Both sides of a call, mixed into one channel and written into a vault
/// object as the call goes.
///
/// A [`Recorder`] keeps one stream's own timing; two parties' streams have
/// unrelated RTP timestamps and clocks, so a call recorder places each by
/// its arrival: a speaker's first packet lands where it arrived (the time
/// since the recording started, given by the caller with each packet), and
/// its next packets follow by their RTP timestamps, so that jitter does not
/// bend the speech and a lost packet leaves silence of its length. Every
/// speaker's samples are added into one mix; a moment of the mix is encoded
/// and written once it lies [`CallRecorderConfig::delay`] behind the latest
/// arrival, so memory stays bounded (about `delay + max_ahead` of samples)
/// however long the call. Moments nobody spoke in are silence.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use carevox::audio::G711;
/// use carevox::recording::{CallRecorder, CallRecorderConfig, Speaker};
/// use carevox::vault::{MemoryBackend, Metadata, Vault};
/// # #[allow(clippy::disallowed_methods)]
/// let rng = ring::rand::SystemRandom::new();
/// # let dir = tempfile::tempdir()?;
/// # let keys = carevox::vault::LocalKeyFile::create(dir.path().join("k"), &rng)?;
/// let vault = Vault::new(Arc::new(MemoryBackend::new()), Arc::new(keys));
/// let metadata = Metadata::new("rec-1", G711::Pcmu.media_type(), 1_700_000_000, 1_800_000_000);
/// let mut recorder =
///     CallRecorder::start(&vault, &rng, metadata, CallRecorderConfig::new(G711::Pcmu))?;
/// let packet = |ssrc: u32, seq: u16, sample: i16| {
///     let mut p = vec![0x80, 0];
///     p.extend_from_slice(&seq.to_be_bytes());
///     p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
///     p.extend_from_slice(&ssrc.to_be_bytes());
///     p.extend_from_slice(&[G711::Pcmu.encode(sample); 160]);
///     p
/// };
/// // Both parties speak in the same 20 ms: their samples add up.
/// recorder.push(Speaker::A, Duration::ZERO, &packet(1, 7, 1000))?;
/// recorder.push(Speaker::B, Duration::ZERO, &packet(2, 900, 2000))?;
/// let info = recorder.finish(Duration::from_millis(20))?;
/// assert_eq!(info.len, 160);
/// let (_, mixed) = vault.get("rec-1")?;
/// let sample = G711::Pcmu.decode(mixed[0]);
/// assert!((2900..=3100).contains(&sample));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CallRecorder<'v> {
    writer: ObjectWriter<'v>,
    config: CallRecorderConfig,
    placements: [Option<Placement>; 3],
    /// The mix from position `written` on.
    mix: std::collections::VecDeque<i32>,
    /// Samples written so far (the position where `mix` starts).
    written: u64,
    /// The end of the furthest samples placed.
    high: u64,
    /// The latest arrival seen (in samples since the start).
    latest: u64,
    limit: u64,
    delay: u64,
    max_ahead: u64,
    stats: CallRecorderStats,
    out: Vec<u8>,
}

impl<'v> CallRecorder<'v> {
    /// Starts the object described by `metadata` (its content type should
    /// be [`G711::media_type`]) in `vault`.
    pub fn start(
        vault: &'v Vault,
        rng: &dyn SecureRandom,
        metadata: Metadata,
        config: CallRecorderConfig,
    ) -> Result<CallRecorder<'v>, RecordingError> {
        let writer = vault.writer(rng, metadata)?;
        Ok(CallRecorder {
            writer,
            placements: [None; 3],
            mix: std::collections::VecDeque::new(),
            written: 0,
            high: 0,
            latest: 0,
            limit: samples_in(config.max_duration),
            delay: samples_in(config.delay),
            max_ahead: samples_in(config.max_ahead),
            config,
            stats: CallRecorderStats::default(),
            out: Vec::with_capacity(1024),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> CallRecorderStats {
        self.stats
    }

    /// Places the samples of one plaintext RTP packet that `speaker` sent
    /// and that arrived `at` after the recording started, and writes what
    /// no late packet can change any more.
    pub fn push(
        &mut self,
        speaker: Speaker,
        at: Duration,
        packet: &[u8],
    ) -> Result<Pushed, RecordingError> {
        let rtp = parse_rtp(packet)?;
        let arrival = samples_in(at).max(self.latest);
        self.latest = arrival;
        if self.written >= self.limit {
            return Ok(Pushed::Full);
        }
        // What no packet arriving now may change is written first, so that
        // the mix held never spans more than `delay + max_ahead`.
        self.flush(arrival.saturating_sub(self.delay))?;
        Ok(self.place(speaker, arrival, &rtp))
    }

    /// Where `rtp` goes, and puts its samples into the mix.
    fn place(&mut self, speaker: Speaker, arrival: u64, rtp: &Rtp<'_>) -> Pushed {
        if rtp.payload_type != self.config.law.payload_type() {
            self.stats.other_payloads += 1;
            return Pushed::Skipped(Skip::OtherPayload);
        }
        if rtp.payload.is_empty() {
            return Pushed::Skipped(Skip::Empty);
        }
        let slot = speaker.index();
        let current = self.placements.get(slot).copied().flatten();
        let from_ts = match current {
            None => None,
            Some(p) if p.ssrc != rtp.ssrc => {
                // A new stream replaces one that went quiet (a phone that
                // restarted its stream); beside a live one it is skipped.
                if arrival.saturating_sub(p.last_arrival) <= self.delay {
                    self.stats.other_streams += 1;
                    return Pushed::Skipped(Skip::OtherStream);
                }
                None
            }
            Some(p) => {
                let ahead = rtp.timestamp.wrapping_sub(p.next_ts);
                if ahead >= 1 << 31 {
                    self.stats.late += 1;
                    return Pushed::Skipped(Skip::Late);
                }
                Some((p, p.next_pos.saturating_add(u64::from(ahead))))
            }
        };
        let pos = match from_ts {
            Some((_, pos)) if pos >= self.written && pos <= arrival + self.max_ahead => pos,
            Some((p, _)) => {
                self.stats.realigned += 1;
                arrival.max(p.next_pos).max(self.written)
            }
            None => arrival.max(self.written),
        };
        let len = u64::try_from(rtp.payload.len()).unwrap_or(u64::MAX);
        let end = pos.saturating_add(len).min(self.limit);
        let start = usize::try_from(pos - self.written).unwrap_or(usize::MAX);
        let count = usize::try_from(end.saturating_sub(pos)).unwrap_or(0);
        if self.mix.len() < start.saturating_add(count) {
            self.mix.resize(start.saturating_add(count), 0);
        }
        for (i, byte) in rtp.payload.iter().take(count).enumerate() {
            if let Some(s) = self.mix.get_mut(start + i) {
                *s += i32::from(self.config.law.decode(*byte));
            }
        }
        if let Some(p) = self.placements.get_mut(slot) {
            *p = Some(Placement {
                ssrc: rtp.ssrc,
                next_ts: rtp
                    .timestamp
                    .wrapping_add(u32::try_from(len).unwrap_or(u32::MAX)),
                next_pos: pos.saturating_add(len),
                last_arrival: arrival,
            });
        }
        self.high = self.high.max(end);
        self.stats.placed += 1;
        Pushed::Written {
            samples: u64::try_from(count).unwrap_or(u64::MAX),
        }
    }

    /// Encodes and writes the mix up to position `upto` (silence where
    /// nobody spoke).
    fn flush(&mut self, upto: u64) -> Result<(), RecordingError> {
        let upto = upto.min(self.limit);
        while self.written < upto {
            let n = usize::try_from((upto - self.written).min(1024)).unwrap_or(1024);
            self.out.clear();
            for _ in 0..n {
                let s = self.mix.pop_front().unwrap_or(0);
                // A loud moment of both parties saturates.
                let clipped = i16::try_from(s).unwrap_or(if s < 0 { i16::MIN } else { i16::MAX });
                self.out.push(self.config.law.encode(clipped));
            }
            self.writer.update(&self.out)?;
            self.written += u64::try_from(n).unwrap_or(u64::MAX);
            self.stats.samples = self.written;
        }
        Ok(())
    }

    /// Writes the rest of the mix, up to `at` after the start or the last
    /// sample placed, whichever is later, and seals the object: it exists
    /// in the vault once this returns.
    pub fn finish(mut self, at: Duration) -> Result<ObjectInfo, RecordingError> {
        let end = samples_in(at).max(self.high);
        self.flush(end)?;
        Ok(self.writer.finish()?)
    }
}
