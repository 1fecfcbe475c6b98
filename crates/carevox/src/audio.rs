//! Telephone audio in the form carevox stores and plays it: G.711 μ-law
//! (PCMU) and A-law (PCMA) samples (ITU-T G.711), a WAV header for
//! exporting a recording to a file any player opens, and a single-frequency
//! detector (the Goertzel algorithm) for checking that a recording carries
//! a test tone.
//!
//! ```
//! use carevox::audio::{G711, tone_power};
//!
//! // One second of a 440 Hz tone at 8 kHz, encoded and decoded.
//! let samples: Vec<i16> = (0..8000)
//!     .map(|n| (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * n as f64 / 8000.0).sin()) as i16)
//!     .collect();
//! let encoded: Vec<u8> = samples.iter().map(|&s| G711::Pcmu.encode(s)).collect();
//! let decoded: Vec<i16> = encoded.iter().map(|&b| G711::Pcmu.decode(b)).collect();
//! // The tone is there, and a frequency that was not sent is not.
//! assert!(tone_power(&decoded, 8000, 440.0) > 0.2);
//! assert!(tone_power(&decoded, 8000, 1000.0) < 0.01);
//! ```

/// The two G.711 companding laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711 {
    /// μ-law, RTP payload type 0.
    Pcmu,
    /// A-law, RTP payload type 8.
    Pcma,
}

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32635;

impl G711 {
    /// The static RTP payload type (RFC 3551).
    pub fn payload_type(self) -> u8 {
        match self {
            G711::Pcmu => 0,
            G711::Pcma => 8,
        }
    }

    /// The law of a static payload type, if it is one.
    pub fn from_payload_type(pt: u8) -> Option<G711> {
        match pt {
            0 => Some(G711::Pcmu),
            8 => Some(G711::Pcma),
            _ => None,
        }
    }

    /// The media type of the raw samples (RFC 4856).
    pub fn media_type(self) -> &'static str {
        match self {
            G711::Pcmu => "audio/PCMU",
            G711::Pcma => "audio/PCMA",
        }
    }

    /// The byte of silence.
    pub fn silence(self) -> u8 {
        match self {
            G711::Pcmu => 0xff,
            G711::Pcma => 0xd5,
        }
    }

    /// The WAV format tag (7 for μ-law, 6 for A-law).
    fn wav_format(self) -> u16 {
        match self {
            G711::Pcmu => 7,
            G711::Pcma => 6,
        }
    }

    /// Compands a 16-bit linear sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            G711::Pcmu => ulaw_encode(sample),
            G711::Pcma => alaw_encode(sample),
        }
    }

    /// Expands a companded sample to 16-bit linear.
    pub fn decode(self, byte: u8) -> i16 {
        match self {
            G711::Pcmu => ulaw_decode(byte),
            G711::Pcma => alaw_decode(byte),
        }
    }
}

/// The segment (exponent) of a biased magnitude: the position of its
/// highest set bit above bit 7, 0 to 7.
fn segment(magnitude: i32) -> i32 {
    let mut seg = 0;
    let mut v = magnitude >> 8;
    while v > 0 && seg < 7 {
        v >>= 1;
        seg += 1;
    }
    seg
}

fn ulaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    let magnitude = s.abs().min(ULAW_CLIP) + ULAW_BIAS;
    let exponent = segment(magnitude);
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    // Fits in a byte: sign (1 bit), exponent (3), mantissa (4).
    let byte = sign | (exponent << 4) | mantissa;
    !u8::try_from(byte).unwrap_or(u8::MAX)
}

fn ulaw_decode(byte: u8) -> i16 {
    let b = i32::from(!byte);
    let exponent = (b >> 4) & 0x07;
    let mantissa = b & 0x0f;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    // At most 32124: fits.
    let m = i16::try_from(magnitude).unwrap_or(i16::MAX);
    if b & 0x80 != 0 { -m } else { m }
}

fn alaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample) >> 3; // 13-bit
    let (sign, magnitude) = if s >= 0 { (0x80, s) } else { (0, -s - 1) };
    let magnitude = magnitude.min(0x0fff);
    let byte = if magnitude < 32 {
        (magnitude >> 1) & 0x0f
    } else {
        let mut exponent = 1;
        let mut v = magnitude >> 5;
        while v > 1 {
            v >>= 1;
            exponent += 1;
        }
        (exponent << 4) | ((magnitude >> exponent) & 0x0f)
    };
    // Fits in a byte: sign, exponent (3 bits), mantissa (4 bits).
    u8::try_from(sign | byte).unwrap_or(u8::MAX) ^ 0x55
}

fn alaw_decode(byte: u8) -> i16 {
    let b = i32::from(byte ^ 0x55);
    let exponent = (b >> 4) & 0x07;
    let mantissa = b & 0x0f;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    // At most 32256: fits.
    let m = i16::try_from(magnitude).unwrap_or(i16::MAX);
    if b & 0x80 != 0 { m } else { -m }
}

/// The 46-byte header of a WAV file holding `data_len` bytes of 8 kHz mono
/// G.711 samples, for exporting a recording.
pub fn wav_header(law: G711, data_len: u32) -> [u8; 46] {
    // A non-PCM format has an 18-byte fmt chunk (with cbSize), so 46 bytes.
    let mut h = [0u8; 46];
    let mut at = 0usize;
    let mut put = |bytes: &[u8]| {
        for (i, b) in bytes.iter().enumerate() {
            if let Some(slot) = h.get_mut(at + i) {
                *slot = *b;
            }
        }
        at += bytes.len();
    };
    put(b"RIFF");
    put(&(38u32.saturating_add(data_len)).to_le_bytes());
    put(b"WAVE");
    put(b"fmt ");
    put(&18u32.to_le_bytes());
    put(&law.wav_format().to_le_bytes());
    put(&1u16.to_le_bytes()); // mono
    put(&8000u32.to_le_bytes()); // sample rate
    put(&8000u32.to_le_bytes()); // bytes per second
    put(&1u16.to_le_bytes()); // block align
    put(&8u16.to_le_bytes()); // bits per sample
    put(&0u16.to_le_bytes()); // no extra format bytes
    put(b"data");
    put(&data_len.to_le_bytes());
    h
}

/// The share of `samples`' energy at `frequency` (0.0 to about 1.0), by
/// the Goertzel algorithm: near 0.5 or above for a pure tone at that
/// frequency, near 0 when it is absent. Empty input gives 0.
pub fn tone_power(samples: &[i16], sample_rate: u32, frequency: f64) -> f64 {
    if samples.is_empty() || sample_rate == 0 {
        return 0.0;
    }
    let n = samples.len() as f64;
    let w = 2.0 * std::f64::consts::PI * frequency / f64::from(sample_rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0f64;
    for &x in samples {
        let x = f64::from(x);
        energy += x * x;
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy == 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A pure tone of amplitude A over N samples: power = (A·N/2)², energy
    // = A²·N/2; the ratio 2·power/(N·energy) is then 1.
    (2.0 * power / (n * energy)).min(1.0)
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::indexing_slicing,
    reason = "test signals made from floats and a linear congruential generator"
)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_matches_the_reference_points() {
        // ITU-T G.711 table points: zero, the clip, both signs.
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_encode(-1), 0x7f);
        assert_eq!(ulaw_encode(32767), 0x80);
        assert_eq!(ulaw_encode(-32768), 0x00);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        // Every code decodes and encodes back to itself, except the
        // negative zero (0x7f), which encodes as positive zero.
        for b in 0..=255u8 {
            if b != 0x7f {
                assert_eq!(ulaw_encode(ulaw_decode(b)), b, "{b:#x}");
            }
        }
    }

    #[test]
    fn alaw_matches_the_reference_points() {
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xaa), 32256);
        assert_eq!(alaw_decode(0x2a), -32256);
        for b in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(b)), b, "{b:#x}");
        }
    }

    #[test]
    fn companding_error_stays_within_the_segment_step() {
        for law in [G711::Pcmu, G711::Pcma] {
            for s in (i16::MIN..=i16::MAX).step_by(7) {
                let back = i32::from(law.decode(law.encode(s)));
                let err = (back - i32::from(s)).abs();
                // The coarsest step is 1024 (μ-law) or 1024 (A-law); half
                // of it, with the clip at the top.
                assert!(err <= 1100, "{law:?} {s} -> {back}");
            }
        }
    }

    #[test]
    fn the_wav_header_describes_the_samples() {
        let h = wav_header(G711::Pcmu, 16000);
        assert_eq!(&h[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([h[4], h[5], h[6], h[7]]), 16038);
        assert_eq!(&h[8..16], b"WAVEfmt ");
        assert_eq!(u16::from_le_bytes([h[20], h[21]]), 7);
        assert_eq!(u32::from_le_bytes([h[24], h[25], h[26], h[27]]), 8000);
        assert_eq!(&h[38..42], b"data");
        assert_eq!(u32::from_le_bytes([h[42], h[43], h[44], h[45]]), 16000);
        assert_eq!(wav_header(G711::Pcma, 0)[20], 6);
    }

    #[test]
    fn the_detector_tells_a_tone_from_silence_and_noise() {
        let tone = |f: f64| -> Vec<i16> {
            (0..1600)
                .map(|n| {
                    let t = f64::from(n) / 8000.0;
                    (10000.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i16
                })
                .collect()
        };
        assert!(tone_power(&tone(440.0), 8000, 440.0) > 0.9);
        assert!(tone_power(&tone(440.0), 8000, 880.0) < 0.01);
        assert!(tone_power(&tone(1000.0), 8000, 440.0) < 0.01);
        assert_eq!(tone_power(&[0; 800], 8000, 440.0), 0.0);
        assert_eq!(tone_power(&[], 8000, 440.0), 0.0);
        // Pseudo-random noise has no strong single frequency.
        let mut x = 12345u32;
        let noise: Vec<i16> = (0..1600)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((x >> 16) as i16) / 4
            })
            .collect();
        assert!(tone_power(&noise, 8000, 440.0) < 0.05);
    }
}
