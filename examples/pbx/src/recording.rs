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

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use carevox::audio::G711;
use carevox::redact::Pii;
use carevox::vault::Metadata;

use crate::config::Config;

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

/// The longest announcement accepted.
pub const MAX_ANNOUNCEMENT: Duration = Duration::from_secs(60);

/// Which calls the PBX records, and what the parties hear first.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordingSettings {
    /// Every answered call is recorded.
    pub all_calls: bool,
    /// The calls these SIP users make or receive are recorded.
    pub users: Pii<BTreeSet<String>>,
    /// What both parties hear before a recorded call joins them (G.711
    /// μ-law samples at 8 kHz).
    pub announcement: Arc<Vec<u8>>,
    /// The longest recording of one call; the call goes on unrecorded past
    /// it.
    pub max_duration: Duration,
    /// How long a recording is kept.
    pub retention: Duration,
}

impl RecordingSettings {
    /// No call recorded.
    pub fn off() -> RecordingSettings {
        RecordingSettings {
            all_calls: false,
            users: Pii::new(BTreeSet::new()),
            announcement: Arc::new(default_announcement()),
            max_duration: Duration::from_secs(4 * 3600),
            retention: Duration::from_secs(2190 * 86_400),
        }
    }

    /// The settings of `config`'s `[recording]` and `[retention]`; the
    /// announcement file, when one is set, is read and checked here.
    pub fn from_config(config: &Config) -> Result<RecordingSettings, AnnouncementError> {
        let r = &config.recording;
        let announcement = match &r.announcement {
            Some(path) => read_announcement(path)?,
            None => default_announcement(),
        };
        Ok(RecordingSettings {
            all_calls: r.all_calls,
            users: Pii::new(r.users.iter().cloned().collect()),
            announcement: Arc::new(announcement),
            max_duration: Duration::from_secs(u64::from(r.max_recording_secs)),
            retention: Duration::from_secs(u64::from(config.retention.recordings_days) * 86_400),
        })
    }

    /// Whether a call from `caller` to `callee` is recorded.
    pub fn records(&self, caller: &str, callee: &str) -> bool {
        self.all_calls
            || self.users.expose().contains(caller)
            || self.users.expose().contains(callee)
    }
}

/// The announcement when none is configured: two half-second beeps at
/// 1400 Hz, a quarter of a second apart (the recorder warning tone's
/// frequency), μ-law.
pub fn default_announcement() -> Vec<u8> {
    let beep = || crate::media::beep(1400.0, 500, 6000.0);
    [beep(), crate::media::pause(250), beep()].concat()
}

/// Why an announcement file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AnnouncementError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a WAV file this PBX plays.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Reads an announcement: a WAV file of 8 kHz mono audio, G.711 μ-law or
/// A-law or 16-bit PCM, from 0.1 s to [`MAX_ANNOUNCEMENT`] long; returns
/// its samples in μ-law.
pub fn read_announcement(path: &Path) -> Result<Vec<u8>, AnnouncementError> {
    let limit = MAX_ANNOUNCEMENT.as_secs() * 16_000 + 4096;
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| {
        std::io::Read::read_to_end(&mut std::io::Read::take(f, limit + 1), &mut bytes)
    });
    if let Err(source) = read {
        return Err(AnnouncementError::Read {
            path: path.to_owned(),
            source,
        });
    }
    let format = |reason| AnnouncementError::Format {
        path: path.to_owned(),
        reason,
    };
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(format("longer than the longest announcement (60 s)"));
    }
    let samples = wav_to_mulaw(&bytes).map_err(format)?;
    if samples.len() < 800 {
        return Err(format("shorter than 0.1 s"));
    }
    if samples.len() > usize::try_from(MAX_ANNOUNCEMENT.as_secs() * 8000).unwrap_or(usize::MAX) {
        return Err(format("longer than the longest announcement (60 s)"));
    }
    Ok(samples)
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The samples of a WAV file of 8 kHz mono G.711 or 16-bit PCM, in μ-law.
fn wav_to_mulaw(b: &[u8]) -> Result<Vec<u8>, &'static str> {
    if b.get(..4) != Some(b"RIFF") || b.get(8..12) != Some(b"WAVE") {
        return Err("not a WAV file (no RIFF/WAVE header)");
    }
    let mut at = 12usize;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while let (Some(id), Some(size)) = (b.get(at..at + 4), le32(b, at + 4)) {
        let size = usize::try_from(size).map_err(|_| "a chunk too large")?;
        let body = at + 8;
        let end = body.checked_add(size).ok_or("a chunk too large")?;
        match id {
            b"fmt " => {
                let chunk = b.get(body..end).ok_or("the fmt chunk runs past the end")?;
                let mut tag = le16(chunk, 0).ok_or("the fmt chunk is too short")?;
                if tag == 0xfffe {
                    // WAVE_FORMAT_EXTENSIBLE: the format is the sub-format
                    // GUID's first two bytes.
                    tag = le16(chunk, 24).ok_or("the fmt chunk is too short")?;
                }
                let channels = le16(chunk, 2).ok_or("the fmt chunk is too short")?;
                let rate = le32(chunk, 4).ok_or("the fmt chunk is too short")?;
                let bits = le16(chunk, 14).ok_or("the fmt chunk is too short")?;
                fmt = Some((tag, channels, rate, bits));
            }
            b"data" => {
                let (tag, channels, rate, bits) = fmt.ok_or("the data chunk comes before fmt")?;
                if channels != 1 {
                    return Err("not mono");
                }
                if rate != 8000 {
                    return Err("not sampled at 8000 Hz");
                }
                // A data chunk cut short (a file still being written) is
                // refused, not played in part.
                let data = b.get(body..end).ok_or("the data chunk runs past the end")?;
                return match (tag, bits) {
                    (7, 8) => Ok(data.to_vec()),
                    (6, 8) => Ok(data
                        .iter()
                        .map(|&s| G711::Pcmu.encode(G711::Pcma.decode(s)))
                        .collect()),
                    (1, 16) => Ok(data
                        .chunks_exact(2)
                        .map_while(|s| {
                            Some(G711::Pcmu.encode(i16::from_le_bytes(s.try_into().ok()?)))
                        })
                        .collect()),
                    _ => Err("not G.711 (μ-law or A-law) or 16-bit PCM"),
                };
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = end.checked_add(size % 2).ok_or("a chunk too large")?;
    }
    Err("no data chunk")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use carevox::audio::wav_header;

    fn wav(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WAVE".to_vec();
        b.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        b.extend_from_slice(b"fmt \x10\0\0\0");
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(bits / 8)).to_le_bytes());
        b.extend_from_slice(&(bits / 8).to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn wav_files_of_each_accepted_format_become_mulaw() {
        let mu = [0x12u8; 1600];
        assert_eq!(wav_to_mulaw(&wav(7, 1, 8000, 8, &mu)).unwrap(), mu);
        // What the PBX's own exports are: read back as written.
        let mut own = wav_header(G711::Pcmu, 1600).to_vec();
        own.extend_from_slice(&mu);
        assert_eq!(wav_to_mulaw(&own).unwrap(), mu);
        let a: Vec<u8> = (0..1600).map(|i| G711::Pcma.encode(i * 10)).collect();
        let from_a = wav_to_mulaw(&wav(6, 1, 8000, 8, &a)).unwrap();
        assert_eq!(from_a.len(), 1600);
        let near = |x: u8, i: i16| (G711::Pcmu.decode(x) - i * 10).abs() < 400;
        assert!(from_a.iter().zip(0..).all(|(&x, i)| near(x, i)));
        let pcm: Vec<u8> = (0..1600i16).flat_map(|i| (i * 10).to_le_bytes()).collect();
        let from_pcm = wav_to_mulaw(&wav(1, 1, 8000, 16, &pcm)).unwrap();
        assert!(from_pcm.iter().zip(0..).all(|(&x, i)| near(x, i)));
    }

    #[test]
    fn other_wav_files_are_refused_with_the_reason() {
        let data = [0u8; 3200];
        for (bytes, reason) in [
            (wav(7, 2, 8000, 8, &data), "not mono"),
            (wav(7, 1, 16_000, 8, &data), "not sampled at 8000 Hz"),
            (
                wav(3, 1, 8000, 32, &data),
                "not G.711 (μ-law or A-law) or 16-bit PCM",
            ),
            (
                b"RIFX\0\0\0\0WAVE".to_vec(),
                "not a WAV file (no RIFF/WAVE header)",
            ),
            (b"RIFF\0\0\0\0WAVE".to_vec(), "no data chunk"),
        ] {
            assert_eq!(wav_to_mulaw(&bytes), Err(reason));
        }
        let mut cut = wav(7, 1, 8000, 8, &data);
        cut.truncate(cut.len() - 10);
        assert_eq!(wav_to_mulaw(&cut), Err("the data chunk runs past the end"));
        let mut huge = wav(7, 1, 8000, 8, &data);
        let at = huge.len() - data.len() - 4;
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(wav_to_mulaw(&huge).is_err());
    }

    #[test]
    fn announcement_files_are_checked_for_length_and_read_errors() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short.wav");
        std::fs::write(&short, wav(7, 1, 8000, 8, &[0; 100])).unwrap();
        assert!(matches!(
            read_announcement(&short),
            Err(AnnouncementError::Format {
                reason: "shorter than 0.1 s",
                ..
            })
        ));
        let long = dir.path().join("long.wav");
        std::fs::write(&long, wav(7, 1, 8000, 8, &vec![0; 61 * 8000])).unwrap();
        assert!(matches!(
            read_announcement(&long),
            Err(AnnouncementError::Format { .. })
        ));
        assert!(matches!(
            read_announcement(&dir.path().join("missing.wav")),
            Err(AnnouncementError::Read { .. })
        ));
        let good = dir.path().join("good.wav");
        std::fs::write(&good, wav(7, 1, 8000, 8, &[0x33; 8000])).unwrap();
        assert_eq!(read_announcement(&good).unwrap(), vec![0x33; 8000]);
    }

    #[test]
    fn calls_of_listed_users_or_all_calls_are_recorded() {
        let mut s = RecordingSettings::off();
        assert!(!s.records("alice", "bob"));
        s.users = Pii::new(["bob".to_owned()].into());
        assert!(s.records("alice", "bob") && s.records("bob", "carol"));
        assert!(!s.records("alice", "carol"));
        s.all_calls = true;
        assert!(s.records("alice", "carol"));
        assert!(!format!("{s:?}").contains("bob"), "user names are redacted");
        let tone = default_announcement();
        assert_eq!(tone.len(), 10_000);
        let pcm: Vec<i16> = tone[..4000].iter().map(|&b| G711::Pcmu.decode(b)).collect();
        assert!(carevox::audio::tone_power(&pcm, 8000, 1400.0) > 0.4);
    }
}
