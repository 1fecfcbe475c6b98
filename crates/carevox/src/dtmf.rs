//! DTMF digits as RFC 4733 telephone events: the keys a caller presses
//! during a call (a voicemail PIN, a menu choice), read from the plaintext
//! RTP of the call exactly once each, and the packets that send them.
//!
//! A phone sends a key press not as tones in the audio but as *named
//! events* of their own RTP payload type, the one negotiated in SDP as
//! `telephone-event/8000` (carevox-sip's offer/answer reports it in
//! `NegotiatedAudio::telephone_event`, typically 101). The event packets
//! share the audio stream's SSRC, sequence numbers and timestamp clock.
//! Each carries a 4-byte report (RFC 4733 section 2.3): the event code
//! (0-9, `*` = 10, `#` = 11, `A`-`D` = 12-15; 16 is a hook flash), the E
//! (end) bit, the volume in -dBm0, and the duration so far in timestamp
//! units. Every packet of one event has the same RTP timestamp, the moment
//! it began: the first has the marker bit, updates follow with a growing
//! duration, and the last, with the E bit and the final duration, is sent
//! three times. An event longer than the 16-bit duration holds (about 8 s
//! at 8 kHz) goes on in segments, each stamped where the previous one
//! ended (section 2.5.1.3).
//!
//! # When a digit is reported
//!
//! [`DtmfReceiver::push`] reports an event at the **first of its packets
//! that arrives**, whichever that is (the marker packet, an update, or one
//! of the end packets when all the others were lost), and never again. An
//! event is known by its stream (SSRC) and RTP timestamp: the updates, the
//! three end packets and any duplicate carry the timestamp of an event
//! already reported and report nothing; so does a packet that arrives
//! after a later event's (reordering), and the next segment of a long
//! event. Nothing waits for the end of an event, so no digit is lost when
//! the end packets are, and there is no timer to run: the receiver needs
//! no clock and no `flush`. The duration of a key press is not judged (a
//! press of 20 ms is a digit too; phones vary).
//!
//! Timestamps are compared in the wrapping arithmetic of RTP. A packet is
//! taken as late when it lies behind the stream's current event by at most
//! [`LATE_WINDOW`] timestamp units; further behind, the sender's clock has
//! restarted (a re-INVITE that kept the SSRC) and it begins a new event.
//! Within that window a stream never reports one timestamp twice.
//!
//! Each SSRC is followed on its own, up to four at once, so that a phone
//! that changes its SSRC (after a re-INVITE) is heard at once while the
//! late packets of its old stream are still known; a fifth stream takes
//! the place of the one heard least recently.
//!
//! Packets of other payload types (the audio) are counted and skipped.
//! A packet that is not RTP, or whose payload is not a whole number of
//! event reports, is refused with a [`DtmfError`] and changes nothing.
//! Several events packed into one packet (section 2.5.1.5) are read one
//! by one, the later ones stamped after the durations of those before.
//!
//! The digits a caller enters can be a PIN or PHI (a date of birth, a
//! member number): the receiver's `Debug` shows its counters only, and a
//! caller that assembles digits keeps them in a
//! [`Secret`](crate::redact::Secret) or [`Pii`](crate::redact::Pii).
//!
//! ```
//! use std::time::Duration;
//! use carevox::dtmf::{Digit, DtmfReceiver, DtmfSender, Event, EventReport};
//!
//! // A hand-made report: digit 5, ended, -10 dBm0, 100 ms at 8 kHz.
//! let report = EventReport::parse(&[5, 0x8a, 0x03, 0x20])?;
//! assert_eq!(report.digit()?, Digit::Five);
//! assert!(report.end());
//! assert_eq!((report.volume(), report.duration()), (10, 800));
//!
//! // "42#" sent as a phone sends it, each key 120 ms, 250 ms apart.
//! let sender = DtmfSender::new(101, 0x1234_5678);
//! let mut receiver = DtmfReceiver::new(101);
//! let (mut sequence, mut timestamp) = (1u16, 8000u32);
//! let mut heard = String::new();
//! for key in "42#".chars() {
//!     let packets = sender.packets(Digit::try_from(key)?, Duration::from_millis(120), sequence, timestamp)?;
//!     for p in &packets {
//!         for event in receiver.push(&p.packet)? {
//!             if let Event::Digit(digit) = event {
//!                 heard.push(digit.to_char());
//!             }
//!         }
//!     }
//!     sequence = sequence.wrapping_add(u16::try_from(packets.len())?);
//!     timestamp = timestamp.wrapping_add(2000);
//! }
//! // Each key once, although every end packet came three times.
//! assert_eq!(heard, "42#");
//! assert_eq!(receiver.stats().events, 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

use crate::rtp;

/// How far behind a stream's current event (in timestamp units) a packet
/// is taken as late, and skipped; further behind, the sender's clock is
/// taken as restarted. 2<sup>17</sup> units: 16 s at 8 kHz, 2.7 s at
/// 48 kHz, twice the longest segment of a long event.
pub const LATE_WINDOW: u32 = 1 << 17;

/// Streams (SSRCs) followed at once by a [`DtmfReceiver`].
const STREAMS: usize = 4;

/// The shortest segment after which an event with a new timestamp, the
/// same code, no marker bit and no end seen is taken as the next segment
/// of the same long event (section 2.5.1.3) rather than a new press: half
/// the range of the duration field. A key press is far shorter, and the
/// segments of a long event reach the full range.
const SEGMENT_MIN: u16 = 0x8000;

/// Why a DTMF packet, event or setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtmfError {
    /// The packet is not RTP (too short, wrong version, a header that
    /// runs past its end).
    #[error("not an RTP packet: {reason}")]
    NotRtp {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A telephone-event payload is one or more 4-byte event reports.
    #[error("a telephone-event payload is made of 4-byte event reports; this one has {len} bytes")]
    PayloadLength {
        /// The length of the payload.
        len: usize,
    },
    /// Of several events packed into one packet, all but the last must
    /// have ended (RFC 4733 section 2.5.1.5).
    #[error("event report {index} of a packet is followed by another but has not ended")]
    PackedUnended {
        /// The report's position in the payload, from 0.
        index: usize,
    },
    /// The event code is not a DTMF digit (16 and up: a hook flash, a
    /// tone).
    #[error("event {event} is not a DTMF digit (0 to 15)")]
    NotADigit {
        /// The event code.
        event: u8,
    },
    /// The character is not one of `0`-`9`, `*`, `#`, `A`-`D`.
    #[error("not a DTMF digit character (0-9, *, #, A-D)")]
    NotADigitChar,
    /// The volume is outside 0 to 63 (-dBm0).
    #[error("volume {volume} is outside 0 to 63")]
    Volume {
        /// The volume given.
        volume: u8,
    },
    /// A [`DtmfSender`] setting or a duration it was given is out of
    /// range.
    #[error("DTMF sender: {reason}")]
    Sender {
        /// What is out of range.
        reason: &'static str,
    },
}

/// A DTMF digit: a key of a telephone keypad (RFC 4733 section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Digit {
    /// `0`, event 0.
    Zero = 0,
    /// `1`, event 1.
    One = 1,
    /// `2`, event 2.
    Two = 2,
    /// `3`, event 3.
    Three = 3,
    /// `4`, event 4.
    Four = 4,
    /// `5`, event 5.
    Five = 5,
    /// `6`, event 6.
    Six = 6,
    /// `7`, event 7.
    Seven = 7,
    /// `8`, event 8.
    Eight = 8,
    /// `9`, event 9.
    Nine = 9,
    /// `*`, event 10.
    Star = 10,
    /// `#`, event 11.
    Pound = 11,
    /// `A`, event 12.
    A = 12,
    /// `B`, event 13.
    B = 13,
    /// `C`, event 14.
    C = 14,
    /// `D`, event 15.
    D = 15,
}

impl Digit {
    /// The sixteen digits, in the order of their event codes.
    pub const ALL: [Digit; 16] = [
        Digit::Zero,
        Digit::One,
        Digit::Two,
        Digit::Three,
        Digit::Four,
        Digit::Five,
        Digit::Six,
        Digit::Seven,
        Digit::Eight,
        Digit::Nine,
        Digit::Star,
        Digit::Pound,
        Digit::A,
        Digit::B,
        Digit::C,
        Digit::D,
    ];

    /// The RFC 4733 event code, 0 to 15.
    pub fn event(self) -> u8 {
        self as u8
    }

    /// The digit of an event code; codes 16 and up are other events
    /// ([`DtmfError::NotADigit`]).
    pub fn from_event(event: u8) -> Result<Digit, DtmfError> {
        Digit::ALL
            .get(usize::from(event))
            .copied()
            .ok_or(DtmfError::NotADigit { event })
    }

    /// The character on the key: `0`-`9`, `*`, `#`, `A`-`D`.
    pub fn to_char(self) -> char {
        match self {
            Digit::Zero => '0',
            Digit::One => '1',
            Digit::Two => '2',
            Digit::Three => '3',
            Digit::Four => '4',
            Digit::Five => '5',
            Digit::Six => '6',
            Digit::Seven => '7',
            Digit::Eight => '8',
            Digit::Nine => '9',
            Digit::Star => '*',
            Digit::Pound => '#',
            Digit::A => 'A',
            Digit::B => 'B',
            Digit::C => 'C',
            Digit::D => 'D',
        }
    }

    /// The digit of a character: `0`-`9`, `*`, `#`, and `A`-`D` in either
    /// case.
    pub fn from_char(c: char) -> Result<Digit, DtmfError> {
        Ok(match c {
            '0' => Digit::Zero,
            '1' => Digit::One,
            '2' => Digit::Two,
            '3' => Digit::Three,
            '4' => Digit::Four,
            '5' => Digit::Five,
            '6' => Digit::Six,
            '7' => Digit::Seven,
            '8' => Digit::Eight,
            '9' => Digit::Nine,
            '*' => Digit::Star,
            '#' => Digit::Pound,
            'A' | 'a' => Digit::A,
            'B' | 'b' => Digit::B,
            'C' | 'c' => Digit::C,
            'D' | 'd' => Digit::D,
            _ => return Err(DtmfError::NotADigitChar),
        })
    }
}

impl TryFrom<u8> for Digit {
    type Error = DtmfError;

    fn try_from(event: u8) -> Result<Digit, DtmfError> {
        Digit::from_event(event)
    }
}

impl TryFrom<char> for Digit {
    type Error = DtmfError;

    fn try_from(c: char) -> Result<Digit, DtmfError> {
        Digit::from_char(c)
    }
}

impl From<Digit> for u8 {
    fn from(digit: Digit) -> u8 {
        digit.event()
    }
}

impl From<Digit> for char {
    fn from(digit: Digit) -> char {
        digit.to_char()
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_char())
    }
}

/// A named event, as a [`DtmfReceiver`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A DTMF digit (events 0 to 15).
    Digit(Digit),
    /// An event that is not a DTMF digit (16, the hook flash, and up:
    /// tones and signals), by its code.
    Other(u8),
}

impl Event {
    /// The event of a code: a digit for 0 to 15, [`Event::Other`] above.
    pub fn from_code(event: u8) -> Event {
        Digit::from_event(event).map_or(Event::Other(event), Event::Digit)
    }

    /// The event code.
    pub fn code(self) -> u8 {
        match self {
            Event::Digit(d) => d.event(),
            Event::Other(code) => code,
        }
    }

    /// The digit, if it is one.
    pub fn digit(self) -> Option<Digit> {
        match self {
            Event::Digit(d) => Some(d),
            Event::Other(_) => None,
        }
    }
}

/// One event report, the 4 bytes of a telephone-event payload (RFC 4733
/// section 2.3): the event code, the E (end) bit, the R bit (reserved:
/// written 0, ignored when read), the volume (6 bits, 0 to 63, in -dBm0)
/// and the duration (16 bits, in timestamp units since the event or its
/// segment began).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventReport {
    event: u8,
    end: bool,
    volume: u8,
    duration: u16,
}

impl EventReport {
    /// A report; the volume must be 0 to 63.
    pub fn new(event: u8, end: bool, volume: u8, duration: u16) -> Result<EventReport, DtmfError> {
        if volume > 63 {
            return Err(DtmfError::Volume { volume });
        }
        Ok(EventReport {
            event,
            end,
            volume,
            duration,
        })
    }

    /// Reads a report from exactly 4 bytes.
    pub fn parse(bytes: &[u8]) -> Result<EventReport, DtmfError> {
        let b: [u8; 4] = bytes
            .try_into()
            .map_err(|_| DtmfError::PayloadLength { len: bytes.len() })?;
        Ok(EventReport {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The 4 bytes of the report.
    pub fn to_bytes(self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d0,
            d1,
        ]
    }

    /// The event code.
    pub fn event(self) -> u8 {
        self.event
    }

    /// The digit, if the event is one.
    pub fn digit(self) -> Result<Digit, DtmfError> {
        Digit::from_event(self.event)
    }

    /// Whether this report ends the event (the E bit).
    pub fn end(self) -> bool {
        self.end
    }

    /// The volume: the power level in -dBm0 (0 the loudest, 63 the
    /// quietest).
    pub fn volume(self) -> u8 {
        self.volume
    }

    /// The duration so far, in timestamp units.
    pub fn duration(self) -> u16 {
        self.duration
    }
}

/// The reports of a telephone-event payload, checked as a whole before any
/// is used: one or more 4-byte reports, all but the last ended.
fn reports(payload: &[u8]) -> Result<impl Iterator<Item = EventReport> + '_, DtmfError> {
    if payload.is_empty() || !payload.len().is_multiple_of(4) {
        return Err(DtmfError::PayloadLength { len: payload.len() });
    }
    let chunks = payload.chunks_exact(4);
    let last = chunks.len() - 1;
    for (index, chunk) in chunks.clone().enumerate() {
        if index < last && chunk.get(1).is_some_and(|b| b & 0x80 == 0) {
            return Err(DtmfError::PackedUnended { index });
        }
    }
    Ok(chunks.filter_map(|c| EventReport::parse(c).ok()))
}

/// Counters of a [`DtmfReceiver`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiverStats {
    /// Events reported (digits and other events).
    pub events: u64,
    /// Reports of events already reported: updates, end packets and
    /// their copies, duplicates, the next segments of long events.
    pub repeats: u64,
    /// Reports that arrived after a later event's, skipped.
    pub late: u64,
    /// Packets of other payload types (the audio), skipped.
    pub other_payloads: u64,
}

/// The event a stream is in (or was in last).
#[derive(Clone, Copy)]
struct Current {
    /// The RTP timestamp of the event (of its segment, for a long one).
    timestamp: u32,
    event: u8,
    ended: bool,
    /// The longest duration reported for it.
    duration: u16,
}

/// What a report did to its stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Heard {
    /// A new event: reported.
    New,
    /// The event already reported, or the next segment of it.
    Repeat,
    /// An event before the current one.
    Late,
}

/// The next state of a stream that was in `current` on a `report` stamped
/// `timestamp`.
fn judge(
    current: Option<Current>,
    timestamp: u32,
    marker: bool,
    report: EventReport,
) -> (Current, Heard) {
    let fresh = Current {
        timestamp,
        event: report.event,
        ended: report.end,
        duration: report.duration,
    };
    let Some(cur) = current else {
        return (fresh, Heard::New);
    };
    let ahead = timestamp.wrapping_sub(cur.timestamp);
    if ahead == 0 {
        let same = Current {
            ended: cur.ended || report.end,
            duration: cur.duration.max(report.duration),
            ..cur
        };
        return (same, Heard::Repeat);
    }
    if ahead >= 1 << 31 {
        // Behind the current event: a late packet, or a restarted clock.
        if ahead.wrapping_neg() <= LATE_WINDOW {
            return (cur, Heard::Late);
        }
        return (fresh, Heard::New);
    }
    let next_segment = !marker
        && !cur.ended
        && report.event == cur.event
        && cur.duration >= SEGMENT_MIN
        && ahead <= u32::from(u16::MAX);
    if next_segment {
        return (fresh, Heard::Repeat);
    }
    (fresh, Heard::New)
}

/// One stream followed by a receiver.
#[derive(Clone, Copy)]
struct Stream {
    ssrc: u32,
    current: Option<Current>,
    /// When it was last heard, in packets taken by the receiver.
    heard: u64,
}

/// Reads DTMF digits from the plaintext RTP of one direction of a call,
/// each once. See the [module documentation](self) for when a digit is
/// reported.
pub struct DtmfReceiver {
    payload_type: u8,
    streams: [Option<Stream>; STREAMS],
    /// Event packets taken (the clock of `Stream::heard`).
    packets: u64,
    stats: ReceiverStats,
    out: Vec<Event>,
}

impl fmt::Debug for DtmfReceiver {
    /// The payload type and the counters: never an event, which may be a
    /// digit of a PIN.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtmfReceiver")
            .field("payload_type", &self.payload_type)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl DtmfReceiver {
    /// A receiver of the telephone events of `payload_type`, the one
    /// negotiated for `telephone-event` (0 to 127: a larger one matches no
    /// packet).
    pub fn new(payload_type: u8) -> DtmfReceiver {
        DtmfReceiver {
            payload_type,
            streams: [None; STREAMS],
            packets: 0,
            stats: ReceiverStats::default(),
            out: Vec::new(),
        }
    }

    /// The payload type of the events read.
    pub fn payload_type(&self) -> u8 {
        self.payload_type
    }

    /// The counters so far.
    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    /// Takes one plaintext RTP packet of the call and returns the events
    /// it begins: none for a packet of another payload type or of an
    /// event already reported, one for the first packet heard of an event,
    /// more only when events were packed into the packet. A packet that
    /// is refused changes nothing.
    pub fn push(&mut self, packet: &[u8]) -> Result<&[Event], DtmfError> {
        self.out.clear();
        let rtp = rtp::parse(packet).map_err(|reason| DtmfError::NotRtp { reason })?;
        if rtp.payload_type != self.payload_type {
            self.stats.other_payloads += 1;
            return Ok(&self.out);
        }
        let reports = reports(rtp.payload)?;
        self.packets += 1;
        let slot = self.slot(rtp.ssrc);
        let mut timestamp = rtp.timestamp;
        for (index, report) in reports.enumerate() {
            let Some(Some(stream)) = self.streams.get_mut(slot) else {
                break;
            };
            let marker = rtp.marker && index == 0;
            let (current, heard) = judge(stream.current, timestamp, marker, report);
            stream.current = Some(current);
            stream.heard = self.packets;
            match heard {
                Heard::New => {
                    self.stats.events += 1;
                    self.out.push(Event::from_code(report.event));
                }
                Heard::Repeat => self.stats.repeats += 1,
                Heard::Late => self.stats.late += 1,
            }
            // A packed event begins where the one before it ended.
            timestamp = timestamp.wrapping_add(u32::from(report.duration));
        }
        Ok(&self.out)
    }

    /// The slot of the stream `ssrc`: its own, a free one, or the one
    /// heard least recently, started afresh.
    fn slot(&mut self, ssrc: u32) -> usize {
        let found = self
            .streams
            .iter()
            .position(|s| s.is_some_and(|s| s.ssrc == ssrc));
        if let Some(slot) = found {
            return slot;
        }
        let slot = self
            .streams
            .iter()
            .position(Option::is_none)
            .or_else(|| {
                self.streams
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| s.map_or(0, |s| s.heard))
                    .map(|(i, _)| i)
            })
            .unwrap_or(0);
        if let Some(s) = self.streams.get_mut(slot) {
            *s = Some(Stream {
                ssrc,
                current: None,
                heard: self.packets,
            });
        }
        slot
    }
}

/// One packet of an event made by a [`DtmfSender`], and when to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventPacket {
    /// When to send it, counted from the moment the event began (the
    /// moment of its RTP timestamp).
    pub at: Duration,
    /// The plaintext RTP packet (to be sealed with the stream's SRTP
    /// context, like the audio).
    pub packet: Vec<u8>,
}

/// Makes the packets of telephone events as a phone sends them (RFC 4733
/// section 2.5.1), for the SDK's own side of a call (a prompt that dials,
/// a test peer).
///
/// For an event of duration `d` that begins at RTP timestamp `t`: updates
/// every [`interval`](DtmfSender::interval) with the duration so far, the
/// first with the marker bit, then the final report with the E bit and
/// the duration `d`, three times, an interval apart. All share the
/// timestamp `t`; an event longer than the duration field holds is sent
/// in segments, each stamped where the one before ended, each segment's
/// final report (full length, no E bit) sent three times too. The packets
/// take consecutive sequence numbers from the one given: the stream's
/// next packet takes `sequence + packets.len()` (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DtmfSender {
    /// The payload type negotiated for `telephone-event`.
    pub payload_type: u8,
    /// The SSRC of the stream (the audio's).
    pub ssrc: u32,
    /// The timestamp clock of the payload type (default 8000 Hz).
    pub clock_rate: u32,
    /// The time between updates (default 50 ms; 10 ms to 1 s).
    pub interval: Duration,
    /// The volume in -dBm0 (default 10; 0 to 63).
    pub volume: u8,
}

/// Copies of the final report of an event or segment (section 2.5.1.4).
const FINAL_COPIES: u32 = 3;

/// The longest event a [`DtmfSender`] makes.
const LONGEST_EVENT: Duration = Duration::from_secs(60);

impl DtmfSender {
    /// A sender of the events of `payload_type` in the stream `ssrc`, with
    /// the defaults.
    pub fn new(payload_type: u8, ssrc: u32) -> DtmfSender {
        DtmfSender {
            payload_type,
            ssrc,
            clock_rate: 8000,
            interval: Duration::from_millis(50),
            volume: 10,
        }
    }

    /// Sets [`DtmfSender::clock_rate`].
    pub fn with_clock_rate(mut self, hz: u32) -> DtmfSender {
        self.clock_rate = hz;
        self
    }

    /// Sets [`DtmfSender::interval`].
    pub fn with_interval(mut self, interval: Duration) -> DtmfSender {
        self.interval = interval;
        self
    }

    /// Sets [`DtmfSender::volume`].
    pub fn with_volume(mut self, volume: u8) -> DtmfSender {
        self.volume = volume;
        self
    }

    /// The packets of `digit` pressed for `duration` (1 timestamp unit to
    /// a minute), beginning at RTP timestamp `timestamp`, numbered from
    /// `sequence`.
    pub fn packets(
        &self,
        digit: Digit,
        duration: Duration,
        sequence: u16,
        timestamp: u32,
    ) -> Result<Vec<EventPacket>, DtmfError> {
        self.event_packets(digit.event(), duration, sequence, timestamp)
    }

    /// The packets of any event code (a hook flash is 16), as
    /// [`DtmfSender::packets`].
    pub fn event_packets(
        &self,
        event: u8,
        duration: Duration,
        sequence: u16,
        timestamp: u32,
    ) -> Result<Vec<EventPacket>, DtmfError> {
        let bad = |reason| DtmfError::Sender { reason };
        if self.payload_type > 127 {
            return Err(bad("payload type above 127"));
        }
        if self.volume > 63 {
            return Err(DtmfError::Volume {
                volume: self.volume,
            });
        }
        if self.clock_rate == 0 {
            return Err(bad("clock rate of zero"));
        }
        if self.interval < Duration::from_millis(10) || self.interval > Duration::from_secs(1) {
            return Err(bad("interval outside 10 ms to 1 s"));
        }
        if duration > LONGEST_EVENT {
            return Err(bad("event longer than a minute"));
        }
        let step = self.units(self.interval);
        if step == 0 || step > u64::from(u16::MAX) {
            return Err(bad("interval outside 1 to 65535 timestamp units"));
        }
        let total = self.units(duration);
        if total == 0 {
            return Err(bad("event shorter than one timestamp unit"));
        }
        let segment = u64::from(u16::MAX);
        // (when, segment start in units since the event began, report)
        let mut planned: Vec<(Duration, u64, EventReport)> = Vec::new();
        let report = |end: bool, len: u64| EventReport {
            event,
            end,
            volume: self.volume,
            duration: u16::try_from(len).unwrap_or(u16::MAX),
        };
        let finals = |at: Duration| {
            (0..FINAL_COPIES).map(move |n| at.saturating_add(self.interval.saturating_mul(n)))
        };
        let mut start = 0u64;
        let mut elapsed = step;
        while elapsed < total {
            while elapsed - start > segment {
                for at in finals(self.time_of(start + segment)) {
                    planned.push((at, start, report(false, segment)));
                }
                start += segment;
            }
            planned.push((self.time_of(elapsed), start, report(false, elapsed - start)));
            elapsed += step;
        }
        while total - start > segment {
            for at in finals(self.time_of(start + segment)) {
                planned.push((at, start, report(false, segment)));
            }
            start += segment;
        }
        for at in finals(duration) {
            planned.push((at, start, report(true, total - start)));
        }
        // In the order they are sent (a segment's final copies fall among
        // the next segment's updates); the first carries the marker.
        planned.sort_by_key(|(at, _, _)| *at);
        let mut seq = sequence;
        let packets = planned
            .into_iter()
            .enumerate()
            .map(|(n, (at, start, report))| {
                let mut packet = Vec::with_capacity(16);
                // Fits: `start` is at most a minute of units, far below
                // the wrap; the timestamp wraps as RTP's does.
                let offset = u32::try_from(start).unwrap_or(u32::MAX);
                rtp::write_header(
                    &mut packet,
                    n == 0,
                    self.payload_type,
                    seq,
                    timestamp.wrapping_add(offset),
                    self.ssrc,
                );
                packet.extend_from_slice(&report.to_bytes());
                seq = seq.wrapping_add(1);
                EventPacket { at, packet }
            })
            .collect();
        Ok(packets)
    }

    /// Timestamp units in `d` (rounded down).
    fn units(&self, d: Duration) -> u64 {
        let units = d.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        u64::try_from(units).unwrap_or(u64::MAX)
    }

    /// The time of `units` timestamp units (rounded down).
    fn time_of(&self, units: u64) -> Duration {
        let nanos = u128::from(units) * 1_000_000_000 / u128::from(self.clock_rate.max(1));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(event: u8, end: bool, duration: u16) -> EventReport {
        EventReport::new(event, end, 10, duration).unwrap()
    }

    #[test]
    fn digits_convert_both_ways() {
        for (code, digit) in Digit::ALL.iter().enumerate() {
            let code = u8::try_from(code).unwrap();
            assert_eq!(digit.event(), code);
            assert_eq!(Digit::try_from(code), Ok(*digit));
            assert_eq!(Digit::try_from(digit.to_char()), Ok(*digit));
            assert_eq!(char::from(*digit).to_string(), digit.to_string());
        }
        assert_eq!(
            "0123456789*#ABCD",
            Digit::ALL.map(Digit::to_char).iter().collect::<String>()
        );
        assert_eq!(Digit::from_char('d'), Ok(Digit::D));
        for event in 16..=255 {
            assert_eq!(
                Digit::from_event(event),
                Err(DtmfError::NotADigit { event })
            );
            assert_eq!(Event::from_code(event), Event::Other(event));
        }
        for c in ['E', 'e', ' ', 'x', '+', '٣'] {
            assert_eq!(Digit::from_char(c), Err(DtmfError::NotADigitChar));
        }
    }

    #[test]
    fn a_report_reads_and_writes_the_rfc_layout() {
        // Event 11 (#), E bit, R bit set (ignored), volume 63, duration 0xabcd.
        let r = EventReport::parse(&[11, 0xff, 0xab, 0xcd]).unwrap();
        assert_eq!(r.digit(), Ok(Digit::Pound));
        assert!(r.end());
        assert_eq!((r.volume(), r.duration()), (63, 0xabcd));
        // The R bit is written 0.
        assert_eq!(r.to_bytes(), [11, 0xbf, 0xab, 0xcd]);
        assert_eq!(report(1, false, 160).to_bytes(), [1, 10, 0, 160]);
        assert_eq!(
            EventReport::new(1, false, 64, 0),
            Err(DtmfError::Volume { volume: 64 })
        );
        assert_eq!(
            EventReport::parse(&[1, 2, 3]),
            Err(DtmfError::PayloadLength { len: 3 })
        );
    }

    #[test]
    fn packed_reports_are_checked_whole() {
        let ended = report(1, true, 800).to_bytes();
        let going = report(2, false, 160).to_bytes();
        assert_eq!(reports(&[ended, going].concat()).unwrap().count(), 2);
        assert_eq!(
            reports(&[going, ended].concat()).err(),
            Some(DtmfError::PackedUnended { index: 0 })
        );
        assert_eq!(
            reports(&[]).err(),
            Some(DtmfError::PayloadLength { len: 0 })
        );
        assert_eq!(
            reports(&[1, 2, 3, 4, 5]).err(),
            Some(DtmfError::PayloadLength { len: 5 })
        );
    }

    #[test]
    fn the_judge_knows_repeats_late_packets_and_segments() {
        let first = judge(None, 1000, true, report(5, false, 160));
        assert!(first.1 == Heard::New);
        let cur = Some(first.0);
        assert!(judge(cur, 1000, false, report(5, true, 800)).1 == Heard::Repeat);
        assert!(judge(cur, 900, false, report(4, true, 800)).1 == Heard::Late);
        assert!(judge(cur, 2000, true, report(5, false, 160)).1 == Heard::New);
        // Far behind: a restarted clock.
        assert!(
            judge(
                cur,
                1000u32.wrapping_sub(LATE_WINDOW + 1),
                true,
                report(5, false, 1)
            )
            .1 == Heard::New
        );
        // Ahead across the wrap.
        let near_end = judge(None, u32::MAX - 100, true, report(5, true, 800)).0;
        assert!(judge(Some(near_end), 700, true, report(6, false, 160)).1 == Heard::New);
        assert!(
            judge(Some(near_end), u32::MAX - 900, true, report(6, false, 160)).1 == Heard::Late
        );
        // A long event's next segment is no new press; a new press of the
        // same key after a short one is.
        let long = judge(cur, 1000, false, report(5, false, u16::MAX)).0;
        assert!(judge(Some(long), 1000 + 0xffff, false, report(5, false, 160)).1 == Heard::Repeat);
        assert!(judge(Some(long), 1000 + 0xffff, true, report(5, false, 160)).1 == Heard::New);
        assert!(judge(cur, 1800, false, report(5, false, 160)).1 == Heard::New);
    }

    #[test]
    fn the_sender_refuses_settings_out_of_range() {
        let ok = DtmfSender::new(101, 1);
        let d = Duration::from_millis(100);
        assert!(ok.packets(Digit::One, d, 0, 0).is_ok());
        let refused = [
            ok.with_volume(64),
            ok.with_clock_rate(0),
            ok.with_interval(Duration::from_millis(5)),
            ok.with_interval(Duration::from_secs(2)),
            ok.with_clock_rate(2_000_000),
            DtmfSender::new(128, 1),
        ];
        for s in refused {
            assert!(s.packets(Digit::One, d, 0, 0).is_err(), "{s:?}");
        }
        assert!(ok.packets(Digit::One, Duration::ZERO, 0, 0).is_err());
        assert!(
            ok.packets(Digit::One, Duration::from_secs(61), 0, 0)
                .is_err()
        );
    }

    #[test]
    fn the_receiver_debug_shows_no_event() {
        let mut rx = DtmfReceiver::new(101);
        for p in DtmfSender::new(101, 1)
            .packets(Digit::Seven, Duration::from_millis(60), 0, 0)
            .unwrap()
        {
            rx.push(&p.packet).unwrap();
        }
        let printed = format!("{rx:?} {rx:#?}");
        assert!(printed.contains("events: 1"), "{printed}");
        assert!(!printed.contains('7'), "{printed}");
        assert!(!printed.contains("Seven"), "{printed}");
    }
}
