//! The SDES audio offer/answer (RFC 3264, RFC 4568) joined to SRTP keying:
//! the offer carries only suites carevox-srtp keys, the answer chooses only
//! a line that keys a carevox-srtp context with the caller's
//! [`SdesOptions`], and both sides come out with their two contexts. What
//! is negotiated is what is keyed: the answerer's choice is made by the
//! same [`srtp_keying`] that then keys the contexts.
//!
//! ```
//! use carevox::media::{answer_audio, offer_cryptos, offerer_srtp};
//! use carevox::sdes::{SdesOptions, keyable_suites};
//! use carevox::sip::sdp::SessionDescription;
//! use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
//! # #[allow(clippy::disallowed_methods)]
//! let rng = ring::rand::SystemRandom::new();
//! let options = SdesOptions::new();
//!
//! // The offerer: one a=crypto line per suite it offers.
//! let lines = offer_cryptos(&keyable_suites(), &rng)?;
//! let mut offer = String::from(
//!     "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
//!      m=audio 4000 RTP/SAVP 0\r\n",
//! );
//! for l in &lines {
//!     offer.push_str(&format!("a=crypto:{l}\r\n"));
//! }
//! let offer = SessionDescription::parse(&offer)?;
//!
//! // The answerer: its answer, and its SRTP contexts.
//! let caps = AudioCapabilities::new(vec![Codec::pcmu()]);
//! let local = LocalMedia::new("198.51.100.7", 30000, "42");
//! let answered = answer_audio(&offer, &caps, &local, &rng, &options)?;
//! let mut callee = answered.srtp.expect("SDES keys");
//! assert_eq!(callee.suite.sdes_name(), "AEAD_AES_256_GCM");
//!
//! // The offerer reads the answer and keys its own contexts.
//! let mut caller = offerer_srtp(&lines, &answered.answer.sdp, &options)?;
//! caller.outbound.add_outbound_stream(7)?;
//! let rtp = [0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7, 0xd5, 0xd5];
//! let (mut wire, mut back) = (Vec::new(), Vec::new());
//! caller.outbound.protect_rtp_vec(&rtp, &mut wire)?;
//! callee.inbound.unprotect_rtp_vec(&wire, &mut back)?;
//! assert_eq!(back, rtp);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use carevox_sip::sdp::SessionDescription;
use carevox_sip::sdp::crypto::{Crypto, CryptoError, CryptoSuite};
use carevox_sip::sdp::offer_answer::{
    Answer, AudioCapabilities, LocalMedia, OfferAnswerError, answer_audio_with,
};
use carevox_srtp::{Context, Suite};
use ring::rand::SecureRandom;

use crate::sdes::{SdesError, SdesOptions, srtp_context, srtp_keying, srtp_suite};

/// Why an offer, an answer or its keying failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// A line cannot key carevox-srtp (a suite it does not have, a
    /// parameter it cannot honour).
    #[error("SDES keying: {0}")]
    Sdes(#[from] SdesError),
    /// The offer/answer exchange failed.
    #[error("offer/answer: {0}")]
    OfferAnswer(#[from] OfferAnswerError),
    /// Generating a key failed.
    #[error("SDES key generation: {0}")]
    Crypto(#[from] CryptoError),
    /// The answer accepts no SDES audio stream.
    #[error("the answer accepts no SDES (RTP/SAVP) audio stream")]
    NoSdesAudio,
    /// The accepted stream of the answer does not carry exactly one
    /// `a=crypto` line (RFC 4568 5.1.2).
    #[error("the answer's audio stream carries {count} a=crypto lines; exactly one is needed")]
    AnswerCryptoCount {
        /// How many it carries.
        count: usize,
    },
    /// The answer's line names a tag that was not offered.
    #[error("the answer's a=crypto tag {tag} names no offered line")]
    UnknownTag {
        /// The tag.
        tag: u32,
    },
    /// The answer's line has another suite than the offered line of its tag.
    #[error("the answer's a=crypto tag {tag} has another suite than the offered line")]
    SuiteMismatch {
        /// The tag.
        tag: u32,
    },
}

/// The two contexts of one endpoint of an SDES call: `outbound` is keyed
/// with this endpoint's line and protects what it sends (add the SSRCs it
/// sends with [`Context::add_outbound_stream`]); `inbound` is keyed with
/// the peer's line and unprotects what the peer sends.
#[derive(Debug)]
pub struct SrtpSession {
    /// The negotiated suite.
    pub suite: Suite,
    /// Protects what this endpoint sends.
    pub outbound: Context,
    /// Unprotects what the peer sends.
    pub inbound: Context,
}

impl SrtpSession {
    /// The session keyed with `local` (this endpoint's line) and `remote`
    /// (the peer's), which must have the same suite.
    pub fn new(
        local: &Crypto,
        remote: &Crypto,
        options: &SdesOptions,
    ) -> Result<SrtpSession, MediaError> {
        if local.suite != remote.suite {
            return Err(MediaError::SuiteMismatch { tag: remote.tag });
        }
        Ok(SrtpSession {
            suite: srtp_suite(&local.suite)?,
            outbound: srtp_context(local, options)?,
            inbound: srtp_context(remote, options)?,
        })
    }
}

/// A fresh `a=crypto` line for `suite` with tag `tag`, refused before any
/// key is drawn if carevox-srtp cannot key the suite.
pub fn offer_crypto(
    tag: u32,
    suite: CryptoSuite,
    rng: &dyn SecureRandom,
) -> Result<Crypto, MediaError> {
    srtp_suite(&suite)?;
    let line = Crypto::generate(tag, suite, rng)?;
    // A generated line has no parameters; checking it keys anyway keeps the
    // offer and the keying from ever disagreeing.
    srtp_keying(&line, &SdesOptions::new())?;
    Ok(line)
}

/// One fresh line per suite, tags 1, 2, ... in the order given (most
/// preferred first). Any suite carevox-srtp cannot key is refused.
pub fn offer_cryptos(
    suites: &[CryptoSuite],
    rng: &dyn SecureRandom,
) -> Result<Vec<Crypto>, MediaError> {
    suites
        .iter()
        .zip(1u32..)
        .map(|(suite, tag)| offer_crypto(tag, suite.clone(), rng))
        .collect()
}

/// An answer and, for an accepted SDES stream, the answerer's contexts.
#[derive(Debug)]
pub struct AudioAnswer {
    /// The answer (SDP and what it agreed to).
    pub answer: Answer,
    /// The answerer's SRTP contexts, when SDES was accepted.
    pub srtp: Option<SrtpSession>,
}

/// Answers `offer` (see [`carevox_sip::sdp::offer_answer`]) choosing only
/// among the suites of `caps` that carevox-srtp keys and only an
/// `a=crypto` line that keys a context with `options`, then keys the
/// answerer's two contexts. An offer of nothing keyable is answered with
/// the audio stream rejected (port 0), as RFC 3264 asks.
pub fn answer_audio(
    offer: &SessionDescription,
    caps: &AudioCapabilities,
    local: &LocalMedia,
    rng: &dyn SecureRandom,
    options: &SdesOptions,
) -> Result<AudioAnswer, MediaError> {
    let mut caps = caps.clone();
    caps.crypto_suites.retain(|s| srtp_suite(s).is_ok());
    let accept = |c: &Crypto| srtp_keying(c, options).is_ok();
    let answer = answer_audio_with(offer, &caps, local, rng, &accept)?;
    let srtp = match answer.audio.as_ref().and_then(|a| a.srtp.as_ref()) {
        Some(keys) => Some(SrtpSession::new(&keys.local, &keys.remote, options)?),
        None => None,
    };
    Ok(AudioAnswer { answer, srtp })
}

/// The offerer's contexts from the answer: the accepted SDES audio stream
/// of `answer` must carry one `a=crypto` line whose tag and suite are those
/// of one of the `offered` lines.
pub fn offerer_srtp(
    offered: &[Crypto],
    answer: &SessionDescription,
    options: &SdesOptions,
) -> Result<SrtpSession, MediaError> {
    let media = answer
        .media
        .iter()
        .find(|m| m.kind == "audio" && !m.is_rejected() && m.is_sdes_srtp())
        .ok_or(MediaError::NoSdesAudio)?;
    let lines: Vec<&Crypto> = media.cryptos().collect();
    let [answered] = lines.as_slice() else {
        return Err(MediaError::AnswerCryptoCount { count: lines.len() });
    };
    let ours = offered
        .iter()
        .find(|c| c.tag == answered.tag)
        .ok_or(MediaError::UnknownTag { tag: answered.tag })?;
    if ours.suite != answered.suite {
        return Err(MediaError::SuiteMismatch { tag: answered.tag });
    }
    SrtpSession::new(ours, answered, options)
}
