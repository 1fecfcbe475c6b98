//! The offer/answer model (RFC 3264) for audio: given a remote offer and the
//! local capabilities, build the answer.
//!
//! [`answer_audio`] accepts the first audio stream it can serve and rejects
//! every other media section with port 0, as RFC 3264 section 6 requires. For
//! the accepted stream it:
//!
//! - picks the codecs both sides support (by encoding name, case-insensitive,
//!   clock rate and channel count), in the local preference order, keeping
//!   the offer's payload type numbers, dynamic ones included;
//! - adds `telephone-event` at the offer's payload type when both sides want
//!   it at the clock rate of a chosen codec;
//! - answers the direction: the local side sends only if it may and the
//!   offerer receives, and receives only if it may and the offerer sends;
//! - answers `a=rtcp-mux` when offered and enabled locally;
//! - for `RTP/SAVP` and `RTP/SAVPF` (SDES), chooses among the offered
//!   `a=crypto` lines that pass the secure-default checks the strongest suite
//!   both sides support, echoes its tag, and draws a fresh local key from the
//!   caller's random source. A line is skipped when it asks for what carevox
//!   does not key: a key derivation rate (`KDR=`, carevox-srtp derives once,
//!   as RFC 3711 KDR 0), forward error correction (`FEC_ORDER=`, `FEC_KEY=`)
//!   or a session parameter it does not know. [`answer_audio_with`] takes a
//!   further check from the caller (the `carevox` facade passes one that
//!   keys carevox-srtp with the line), so that nothing is chosen that the
//!   SRTP layer then refuses.
//!
//! Plain `RTP/AVP` is rejected unless [`AudioCapabilities::allow_plain_rtp`]
//! is set; DTLS-SRTP (`UDP/TLS/RTP/SAVP[F]`) is not negotiated by this helper
//! and is rejected.
//!
//! ```
//! use carevox_sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia, answer_audio};
//! use carevox_sip::sdp::SessionDescription;
//! # #[allow(clippy::disallowed_methods)]
//! let rng = ring::rand::SystemRandom::new();
//! let offer = SessionDescription::parse(
//!     "v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
//!      m=audio 4000 RTP/SAVP 9 0 101\r\n\
//!      a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
//!      a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
//! )?;
//! let caps = AudioCapabilities::new(vec![Codec::pcmu(), Codec::pcma()]);
//! let local = LocalMedia::new("198.51.100.7", 30000, "2890844527");
//! let answer = answer_audio(&offer, &caps, &local, &rng)?;
//! let audio = answer.audio.as_ref().expect("audio accepted");
//! assert_eq!(audio.codecs[0].payload_type, 0);
//! assert_eq!(audio.telephone_event, Some(101));
//! let srtp = audio.srtp.as_ref().expect("SDES keys");
//! assert_eq!(srtp.remote.srtp_keying()?.suite, "AES_CM_128_HMAC_SHA1_80");
//! assert!(answer.sdp.to_string().contains("m=audio 30000 RTP/SAVP 0 101\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use carevox_redact::Pii;
use ring::rand::SecureRandom;

use super::crypto::{Crypto, CryptoError, CryptoSuite, SessionParam};
use super::{Attribute, Connection, Direction, Fmtp, Media, Origin, Rtpmap, SessionDescription};

/// Why an answer could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OfferAnswerError {
    /// The offer has no media section at all.
    #[error("the offer has no media section")]
    NoMedia,
    /// The local origin, address or codec settings do not make valid SDP
    /// (a field with a space or a line break, say).
    #[error("local media settings do not make valid SDP")]
    InvalidLocalMedia,
    /// Generating the local SDES key failed.
    #[error("generating the local SDES key failed: {0}")]
    Crypto(#[from] CryptoError),
}

/// An audio codec the local side supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Encoding name, compared case-insensitively (`PCMU`, `opus`).
    pub name: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count.
    pub channels: u32,
    /// The static payload type of RFC 3551, for codecs that have one; an
    /// offer may list such a codec without an `a=rtpmap`.
    pub static_payload_type: Option<u8>,
    /// Format parameters to put in the answer, if any.
    pub fmtp: Option<String>,
}

impl Codec {
    /// A codec with a dynamic payload type.
    pub fn dynamic(name: &str, clock_rate: u32, channels: u32) -> Codec {
        Codec {
            name: name.to_owned(),
            clock_rate,
            channels,
            static_payload_type: None,
            fmtp: None,
        }
    }

    /// G.711 mu-law, static payload type 0.
    pub fn pcmu() -> Codec {
        Codec {
            static_payload_type: Some(0),
            ..Codec::dynamic("PCMU", 8000, 1)
        }
    }

    /// G.711 A-law, static payload type 8.
    pub fn pcma() -> Codec {
        Codec {
            static_payload_type: Some(8),
            ..Codec::dynamic("PCMA", 8000, 1)
        }
    }

    /// G.722, static payload type 9 (its RTP clock is 8000 by RFC 3551).
    pub fn g722() -> Codec {
        Codec {
            static_payload_type: Some(9),
            ..Codec::dynamic("G722", 8000, 1)
        }
    }

    /// Opus (RFC 7587): 48000 Hz, two channels in `a=rtpmap`.
    pub fn opus() -> Codec {
        Codec::dynamic("opus", 48000, 2)
    }

    fn matches(&self, name: &str, clock_rate: u32, channels: u32) -> bool {
        self.name.eq_ignore_ascii_case(name)
            && self.clock_rate == clock_rate
            && self.channels == channels
    }
}

/// What the local side can do with audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioCapabilities {
    /// Supported codecs, most preferred first.
    pub codecs: Vec<Codec>,
    /// Whether to accept RFC 4733 `telephone-event` (DTMF). Default true.
    pub telephone_event: bool,
    /// What the local side may do: the answer never exceeds it. Default
    /// `sendrecv`.
    pub direction: Direction,
    /// Whether to accept `a=rtcp-mux`. Default true.
    pub rtcp_mux: bool,
    /// SRTP suites accepted for SDES. Default: every known suite. The choice
    /// among those offered is by [`CryptoSuite::strength`].
    pub crypto_suites: Vec<CryptoSuite>,
    /// `a=ptime` to put in the answer, if any.
    pub ptime: Option<u32>,
    /// Accept unprotected `RTP/AVP` media. Default false: audio carrying PHI
    /// must be protected, so this is a door to open on purpose.
    pub allow_plain_rtp: bool,
}

impl AudioCapabilities {
    /// Capabilities with `codecs` and the secure defaults.
    pub fn new(codecs: Vec<Codec>) -> AudioCapabilities {
        AudioCapabilities {
            codecs,
            telephone_event: true,
            direction: Direction::SendRecv,
            rtcp_mux: true,
            crypto_suites: CryptoSuite::KNOWN.to_vec(),
            ptime: None,
            allow_plain_rtp: false,
        }
    }
}

/// Where the local side receives media, and its `o=` identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The `o=` line of the answer.
    pub origin: Origin,
    /// The `c=` address media is received at.
    pub address: Pii<String>,
    /// The RTP port of the accepted audio stream.
    pub port: u16,
}

impl LocalMedia {
    /// Local media at `address` and `port`, with the origin
    /// `- {session_id} 1 IN IP4|IP6 {address}`.
    pub fn new(address: &str, port: u16, session_id: &str) -> LocalMedia {
        let c = Connection::internet(address);
        LocalMedia {
            origin: Origin {
                username: "-".into(),
                session_id: session_id.into(),
                session_version: "1".to_owned(),
                net_type: c.net_type,
                addr_type: c.addr_type,
                address: address.into(),
            },
            address: address.into(),
            port,
        }
    }
}

/// A codec chosen for the accepted stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// The payload type both sides use (the offer's number).
    pub payload_type: u8,
    /// Encoding name as the local side names it.
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count.
    pub channels: u32,
}

/// The SDES keys of the accepted stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesKeys {
    /// The chosen suite.
    pub suite: CryptoSuite,
    /// The offerer's accepted line: its key protects what the offerer sends.
    pub remote: Crypto,
    /// The answer's line with the fresh local key: it protects what the
    /// local side sends.
    pub local: Crypto,
}

/// The accepted audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedAudio {
    /// Index of the stream among the media sections (same in offer and
    /// answer).
    pub media_index: usize,
    /// Chosen codecs, most preferred first.
    pub codecs: Vec<NegotiatedCodec>,
    /// The `telephone-event` payload type, if accepted.
    pub telephone_event: Option<u8>,
    /// The answered direction, from the local side's point of view.
    pub direction: Direction,
    /// Whether RTP and RTCP share the port.
    pub rtcp_mux: bool,
    /// Where the offerer receives RTP: its connection address, if any.
    pub remote_address: Option<Pii<String>>,
    /// The offerer's RTP port.
    pub remote_port: u16,
    /// SDES keys, for SRTP streams.
    pub srtp: Option<SdesKeys>,
}

/// An answer and what it agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer to send.
    pub sdp: SessionDescription,
    /// The accepted audio stream, if one was accepted.
    pub audio: Option<NegotiatedAudio>,
}

/// Builds the answer to `offer`. See the [module documentation](self).
pub fn answer_audio(
    offer: &SessionDescription,
    caps: &AudioCapabilities,
    local: &LocalMedia,
    rng: &dyn SecureRandom,
) -> Result<Answer, OfferAnswerError> {
    answer_audio_with(offer, caps, local, rng, &|_| true)
}

/// Builds the answer to `offer` like [`answer_audio`], choosing only among
/// the offered `a=crypto` lines that `accept` also accepts (besides the
/// checks [`answer_audio`] makes). The SRTP layer passes a check that keys a
/// context with the line, so that the answer never chooses a line it cannot
/// key.
pub fn answer_audio_with(
    offer: &SessionDescription,
    caps: &AudioCapabilities,
    local: &LocalMedia,
    rng: &dyn SecureRandom,
    accept: &dyn Fn(&Crypto) -> bool,
) -> Result<Answer, OfferAnswerError> {
    if offer.media.is_empty() {
        return Err(OfferAnswerError::NoMedia);
    }
    let mut sdp = SessionDescription::new(local.origin.clone());
    sdp.connection = Some(Connection::internet(local.address.expose()));
    let mut audio = None;
    for (index, m) in offer.media.iter().enumerate() {
        let accepted = if audio.is_none() {
            try_accept(offer, index, m, caps, local, rng, accept)?
        } else {
            None
        };
        match accepted {
            Some((media, negotiated)) => {
                sdp.media.push(media);
                audio = Some(negotiated);
            }
            None => sdp.media.push(rejected(m)),
        }
    }
    sdp.check()
        .map_err(|_| OfferAnswerError::InvalidLocalMedia)?;
    Ok(Answer { sdp, audio })
}

/// A rejected stream: port 0, the offer's protocol and formats.
fn rejected(m: &Media) -> Media {
    let mut r = Media::new(&m.kind, 0, &m.protocol, m.formats.clone());
    if let Some(mid) = m.attributes.iter().find(|a| matches!(a, Attribute::Mid(_))) {
        r.attributes.push(mid.clone());
    }
    r
}

/// The rtpmap of an offered format: its own `a=rtpmap`, or the RFC 3551
/// static assignment.
fn offered_rtpmap(m: &Media, format: &str) -> Option<Rtpmap> {
    let pt = u8::try_from(super::parse::digits_u64(format)?).ok()?;
    if let Some(map) = m.rtpmap(pt) {
        return Some(map.clone());
    }
    let (name, clock) = match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        18 => ("G729", 8000),
        _ => return None,
    };
    Some(Rtpmap {
        payload_type: pt,
        encoding: name.to_owned(),
        clock_rate: clock,
        channels: None,
    })
}

fn try_accept(
    offer: &SessionDescription,
    index: usize,
    m: &Media,
    caps: &AudioCapabilities,
    local: &LocalMedia,
    rng: &dyn SecureRandom,
    accept: &dyn Fn(&Crypto) -> bool,
) -> Result<Option<(Media, NegotiatedAudio)>, OfferAnswerError> {
    if m.kind != "audio" || m.is_rejected() {
        return Ok(None);
    }
    let sdes = m.is_sdes_srtp();
    if !(sdes || (m.is_plain_rtp() && caps.allow_plain_rtp)) {
        return Ok(None);
    }
    let offered: Vec<Rtpmap> = m
        .formats
        .iter()
        .filter_map(|f| offered_rtpmap(m, f))
        .collect();
    let mut codecs = Vec::new();
    for codec in &caps.codecs {
        let found = offered
            .iter()
            .find(|o| codec.matches(&o.encoding, o.clock_rate, o.channel_count()));
        if let Some(o) = found {
            codecs.push((codec, o.payload_type));
        }
    }
    if codecs.is_empty() {
        return Ok(None);
    }
    // telephone-event at the clock rate of the most preferred codec that
    // has one offered.
    let telephone_event = if caps.telephone_event {
        codecs.iter().find_map(|(c, _)| {
            offered
                .iter()
                .find(|o| {
                    o.encoding.eq_ignore_ascii_case("telephone-event")
                        && o.clock_rate == c.clock_rate
                })
                .map(|o| o.payload_type)
        })
    } else {
        None
    };
    let srtp = if sdes {
        match choose_crypto(m, caps, accept) {
            Some(remote) => {
                let local_line = Crypto::generate(remote.tag, remote.suite.clone(), rng)?;
                Some(SdesKeys {
                    suite: remote.suite.clone(),
                    remote: remote.clone(),
                    local: local_line,
                })
            }
            None => return Ok(None),
        }
    } else {
        None
    };
    let offered_dir = offer.media_direction(index).unwrap_or(Direction::SendRecv);
    let direction = Direction::from_flags(
        caps.direction.sends() && offered_dir.receives(),
        caps.direction.receives() && offered_dir.sends(),
    );
    let rtcp_mux = caps.rtcp_mux && m.rtcp_mux();

    let mut formats: Vec<String> = codecs.iter().map(|(_, pt)| pt.to_string()).collect();
    if let Some(pt) = telephone_event {
        formats.push(pt.to_string());
    }
    let mut media = Media::new("audio", local.port, &m.protocol, formats);
    if let Some(mid) = m.attributes.iter().find(|a| matches!(a, Attribute::Mid(_))) {
        media.attributes.push(mid.clone());
    }
    for (codec, pt) in &codecs {
        media.attributes.push(Attribute::Rtpmap(Rtpmap {
            payload_type: *pt,
            encoding: codec.name.clone(),
            clock_rate: codec.clock_rate,
            channels: (codec.channels != 1).then_some(codec.channels),
        }));
        if let Some(params) = &codec.fmtp {
            media.attributes.push(Attribute::Fmtp(Fmtp {
                format: pt.to_string(),
                params: params.clone(),
            }));
        }
    }
    if let Some(pt) = telephone_event {
        let map = offered
            .iter()
            .find(|o| o.payload_type == pt)
            .cloned()
            .unwrap_or(Rtpmap {
                payload_type: pt,
                encoding: "telephone-event".to_owned(),
                clock_rate: 8000,
                channels: None,
            });
        media.attributes.push(Attribute::Rtpmap(map));
        if let Some(f) = m.fmtp(&pt.to_string()) {
            media.attributes.push(Attribute::Fmtp(f.clone()));
        }
    }
    if let Some(p) = caps.ptime {
        media.attributes.push(Attribute::Ptime(p));
    }
    media.attributes.push(Attribute::Direction(direction));
    if rtcp_mux {
        media.attributes.push(Attribute::RtcpMux);
    }
    if let Some(keys) = &srtp {
        media.attributes.push(Attribute::Crypto(keys.local.clone()));
    }
    let negotiated = NegotiatedAudio {
        media_index: index,
        codecs: codecs
            .iter()
            .map(|(c, pt)| NegotiatedCodec {
                payload_type: *pt,
                name: c.name.clone(),
                clock_rate: c.clock_rate,
                channels: c.channels,
            })
            .collect(),
        telephone_event,
        direction,
        rtcp_mux,
        remote_address: offer.media_connection(index).map(|c| c.address.clone()),
        remote_port: m.port,
        srtp,
    };
    Ok(Some((media, negotiated)))
}

/// Whether the line asks only for what carevox keys: no key derivation
/// rate, no FEC, no session parameter carevox does not know (`WSH=` is
/// known; the insecure ones are refused by [`Crypto::is_secure`]).
fn keyable_params(c: &Crypto) -> bool {
    c.session_params.iter().all(|p| {
        matches!(
            p,
            SessionParam::Wsh(_)
                | SessionParam::UnencryptedSrtp
                | SessionParam::UnencryptedSrtcp
                | SessionParam::UnauthenticatedSrtp
        )
    })
}

/// The strongest offered `a=crypto` line that passes the secure-default
/// checks, asks for nothing carevox does not key, is accepted by `accept`
/// and whose suite is locally enabled; the first such line wins a tie.
fn choose_crypto<'a>(
    m: &'a Media,
    caps: &AudioCapabilities,
    accept: &dyn Fn(&Crypto) -> bool,
) -> Option<&'a Crypto> {
    let mut best: Option<(&Crypto, u8)> = None;
    for c in m.cryptos() {
        if !c.is_secure()
            || !caps.crypto_suites.contains(&c.suite)
            || c.srtp_keying().is_err()
            || !keyable_params(c)
            || !accept(c)
        {
            continue;
        }
        let Some(strength) = c.suite.strength() else {
            continue;
        };
        if best.is_none_or(|(_, s)| strength > s) {
            best = Some((c, strength));
        }
    }
    best.map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(lines: &[&str]) -> SessionDescription {
        let mut text = String::from(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/SAVP 0\r\n",
        );
        for l in lines {
            text.push_str(&format!("a=crypto:{l}\r\n"));
        }
        SessionDescription::parse(&text).unwrap()
    }

    fn chosen_tag(sdp: &SessionDescription, accept: &dyn Fn(&Crypto) -> bool) -> Option<u32> {
        let caps = AudioCapabilities::new(vec![Codec::pcmu()]);
        let local = LocalMedia::new("198.51.100.7", 30000, "1");
        #[allow(clippy::disallowed_methods)] // tests draw real randomness
        let rng = ring::rand::SystemRandom::new();
        let answer = answer_audio_with(sdp, &caps, &local, &rng, accept).unwrap();
        answer.audio.and_then(|a| a.srtp).map(|k| k.remote.tag)
    }

    const K30: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    const K46: &str = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ==";

    #[test]
    fn lines_asking_for_kdr_fec_or_unknown_params_are_skipped() {
        for param in [
            "KDR=0",
            "KDR=1",
            "KDR=24",
            "FEC_ORDER=FEC_SRTP",
            "FEC_KEY=inline:QUFB",
            "X_NEW=1",
        ] {
            let sdp = offer(&[
                &format!("1 AES_256_CM_HMAC_SHA1_80 inline:{K46} {param}"),
                &format!("2 AES_CM_128_HMAC_SHA1_32 inline:{K30}"),
            ]);
            assert_eq!(chosen_tag(&sdp, &|_| true), Some(2), "{param}");
            let only = offer(&[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30} {param}")]);
            assert_eq!(chosen_tag(&only, &|_| true), None, "{param}");
        }
        let wsh = offer(&[&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{K30} WSH=128")]);
        assert_eq!(chosen_tag(&wsh, &|_| true), Some(1));
    }

    #[test]
    fn the_callers_check_decides_among_the_offered_lines() {
        let sdp = offer(&[
            &format!("1 AES_256_CM_HMAC_SHA1_80 inline:{K46}"),
            &format!("2 AES_CM_128_HMAC_SHA1_80 inline:{K30}"),
        ]);
        assert_eq!(chosen_tag(&sdp, &|_| true), Some(1));
        assert_eq!(chosen_tag(&sdp, &|c| c.tag != 1), Some(2));
        assert_eq!(chosen_tag(&sdp, &|_| false), None);
    }
}
