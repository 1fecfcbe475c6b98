//! SDES: the `a=crypto` attribute of RFC 4568, which carries SRTP master
//! keys in the signalling.
//!
//! [`Crypto::parse`] reads the attribute value (what follows `a=crypto:`):
//! the tag, the suite, one or more `inline:` key parameters with optional
//! lifetime and MKI, and the session parameters. Key lengths are checked
//! against the suite. Key material lives in [`KeySalt`], which is zeroized
//! on drop, never printed by `Debug`, and compared in constant time; no error
//! carries any of it.
//!
//! [`Crypto::generate`] makes a fresh attribute from the caller's random
//! source, and [`Crypto::srtp_keying`] hands the suite name and the raw
//! key||salt bytes to whatever keys the SRTP context, after refusing the
//! session parameters that switch protection off (`UNENCRYPTED_SRTP`,
//! `UNENCRYPTED_SRTCP`, `UNAUTHENTICATED_SRTP`).
//!
//! ```
//! use carevox_sip::sdp::crypto::{Crypto, CryptoSuite};
//!
//! let line = "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4";
//! let crypto = Crypto::parse(line)?;
//! assert_eq!(crypto.tag, 1);
//! assert_eq!(crypto.suite, CryptoSuite::AesCm128HmacSha1_80);
//! let keying = crypto.srtp_keying()?;
//! assert_eq!(keying.suite, "AES_CM_128_HMAC_SHA1_80");
//! assert_eq!(keying.master_key.expose().len() + keying.master_salt.expose().len(), 30);
//! assert!(!format!("{crypto:?}").contains("WVNf"));
//! assert_eq!(crypto.to_string(), line);
//! # Ok::<(), carevox_sip::sdp::crypto::CryptoError>(())
//! ```

use std::fmt;

use carevox_redact::Secret;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::parse::digits_u64;

/// What is wrong with an `a=crypto` attribute. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The attribute does not have the `tag suite key-params [params]` shape.
    #[error("malformed attribute: {0}")]
    Syntax(&'static str),
    /// The tag is not 1 to 9 decimal digits.
    #[error("invalid tag")]
    Tag,
    /// The suite name is not a token.
    #[error("invalid crypto suite name")]
    Suite,
    /// A key method other than `inline`.
    #[error("key parameter {index}: unsupported key method")]
    KeyMethod {
        /// 0-based index of the key parameter.
        index: usize,
    },
    /// The key is not valid base64.
    #[error("key parameter {index}: key is not valid base64")]
    Base64 {
        /// 0-based index of the key parameter.
        index: usize,
    },
    /// The key||salt length does not match the suite.
    #[error("key parameter {index}: {actual} bytes of key and salt, {suite} needs {expected}")]
    KeyLength {
        /// 0-based index of the key parameter.
        index: usize,
        /// The suite name.
        suite: &'static str,
        /// Bytes the suite needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The lifetime is malformed or above the suite's maximum (2^48).
    #[error("key parameter {index}: invalid lifetime")]
    Lifetime {
        /// 0-based index of the key parameter.
        index: usize,
    },
    /// The MKI is malformed, its length not 1 to 128, or its value too large
    /// for its length.
    #[error("key parameter {index}: invalid MKI")]
    Mki {
        /// 0-based index of the key parameter.
        index: usize,
    },
    /// More key parameters than [`MAX_KEY_PARAMS`], or several without MKIs.
    #[error("too many key parameters")]
    TooManyKeys,
    /// A session parameter that does not follow its grammar.
    #[error("invalid session parameter {index}")]
    SessionParam {
        /// 0-based index of the session parameter.
        index: usize,
    },
    /// A session parameter that switches protection off, refused by the
    /// secure-default checks.
    #[error("session parameter {0} disables SRTP protection")]
    Insecure(&'static str),
    /// A suite carevox does not know, refused where keys must be used.
    #[error("unsupported crypto suite")]
    UnsupportedSuite,
    /// The random source failed.
    #[error("random source failed")]
    Random,
}

/// Most key parameters accepted in one attribute.
pub const MAX_KEY_PARAMS: usize = 16;

/// An SRTP crypto suite name (RFC 4568, RFC 6188, RFC 7714).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptoSuite {
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 4568).
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (RFC 4568).
    AesCm128HmacSha1_32,
    /// `AES_192_CM_HMAC_SHA1_80` (RFC 6188).
    AesCm192HmacSha1_80,
    /// `AES_192_CM_HMAC_SHA1_32` (RFC 6188).
    AesCm192HmacSha1_32,
    /// `AES_256_CM_HMAC_SHA1_80` (RFC 6188).
    AesCm256HmacSha1_80,
    /// `AES_256_CM_HMAC_SHA1_32` (RFC 6188).
    AesCm256HmacSha1_32,
    /// `AEAD_AES_128_GCM` (RFC 7714).
    AeadAes128Gcm,
    /// `AEAD_AES_256_GCM` (RFC 7714).
    AeadAes256Gcm,
    /// Any other suite, kept by name; its keys are not length-checked and
    /// cannot be used for keying.
    Other(String),
}

impl CryptoSuite {
    /// Every suite carevox knows, strongest first (the order
    /// [`CryptoSuite::strength`] gives).
    pub const KNOWN: [CryptoSuite; 8] = [
        CryptoSuite::AeadAes256Gcm,
        CryptoSuite::AesCm256HmacSha1_80,
        CryptoSuite::AeadAes128Gcm,
        CryptoSuite::AesCm192HmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_80,
        CryptoSuite::AesCm256HmacSha1_32,
        CryptoSuite::AesCm192HmacSha1_32,
        CryptoSuite::AesCm128HmacSha1_32,
    ];

    /// The suite name as written in SDP.
    pub fn name(&self) -> &str {
        match self {
            CryptoSuite::Other(name) => name,
            // Every other variant has a registered name.
            known => known.known_name().unwrap_or_default(),
        }
    }

    /// The suite called `name` (case-sensitive, as RFC 4568 registers them).
    pub fn from_name(name: &str) -> CryptoSuite {
        CryptoSuite::KNOWN
            .into_iter()
            .find(|s| s.name() == name)
            .unwrap_or_else(|| CryptoSuite::Other(name.to_owned()))
    }

    fn known_name(&self) -> Option<&'static str> {
        Some(match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            CryptoSuite::AesCm192HmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            CryptoSuite::AesCm192HmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            CryptoSuite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            CryptoSuite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            CryptoSuite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            CryptoSuite::AeadAes256Gcm => "AEAD_AES_256_GCM",
            CryptoSuite::Other(_) => return None,
        })
    }

    /// Master key length in bytes, for a known suite.
    pub fn key_len(&self) -> Option<usize> {
        Some(match self {
            CryptoSuite::AesCm128HmacSha1_80
            | CryptoSuite::AesCm128HmacSha1_32
            | CryptoSuite::AeadAes128Gcm => 16,
            CryptoSuite::AesCm192HmacSha1_80 | CryptoSuite::AesCm192HmacSha1_32 => 24,
            CryptoSuite::AesCm256HmacSha1_80
            | CryptoSuite::AesCm256HmacSha1_32
            | CryptoSuite::AeadAes256Gcm => 32,
            CryptoSuite::Other(_) => return None,
        })
    }

    /// Master salt length in bytes, for a known suite: 14 for the AES-CM
    /// suites, 12 for AEAD.
    pub fn salt_len(&self) -> Option<usize> {
        Some(match self {
            CryptoSuite::AeadAes128Gcm | CryptoSuite::AeadAes256Gcm => 12,
            CryptoSuite::Other(_) => return None,
            _ => 14,
        })
    }

    /// Length of the `inline:` key||salt, for a known suite.
    pub fn key_salt_len(&self) -> Option<usize> {
        Some(self.key_len()? + self.salt_len()?)
    }

    /// Relative strength used to pick among offered suites: higher is
    /// stronger; `None` for unknown suites. AES-256 before AES-192 before
    /// AES-128, AEAD before HMAC-SHA1 at the same key size, and 80-bit tags
    /// before all 32-bit ones.
    pub fn strength(&self) -> Option<u8> {
        let pos = CryptoSuite::KNOWN.iter().position(|s| s == self)?;
        u8::try_from(CryptoSuite::KNOWN.len() - pos).ok()
    }
}

impl fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The master key followed by the master salt: the decoded `inline:` value.
///
/// Zeroized on drop, redacted in `Debug`, compared in constant time.
#[derive(Debug, Clone)]
pub struct KeySalt {
    bytes: Secret<Vec<u8>>,
    /// Whether the base64 text was written with `=` padding.
    padded: bool,
}

impl KeySalt {
    /// Wraps key||salt bytes supplied by the caller.
    pub fn new(bytes: Vec<u8>) -> KeySalt {
        KeySalt {
            bytes: Secret::new(bytes),
            padded: true,
        }
    }

    /// The raw key||salt bytes, for keying an SRTP context.
    pub fn expose(&self) -> &[u8] {
        self.bytes.expose()
    }

    fn encode(&self) -> Zeroizing<String> {
        let engine = if self.padded {
            &base64::engine::general_purpose::STANDARD
        } else {
            &base64::engine::general_purpose::STANDARD_NO_PAD
        };
        Zeroizing::new(engine.encode(self.bytes.expose().as_slice()))
    }
}

impl PartialEq for KeySalt {
    fn eq(&self, other: &Self) -> bool {
        self.padded == other.padded
            && bool::from(self.bytes.expose().as_slice().ct_eq(other.bytes.expose()))
    }
}

impl Eq for KeySalt {}

/// A key lifetime: how many packets the key may protect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifetime {
    /// Written as `2^n`.
    PowerOfTwo(u8),
    /// Written as a decimal number.
    Packets(u64),
}

impl Lifetime {
    /// The number of packets.
    pub fn packets(self) -> u64 {
        match self {
            Lifetime::PowerOfTwo(n) => 1u64.checked_shl(u32::from(n)).unwrap_or(u64::MAX),
            Lifetime::Packets(p) => p,
        }
    }
}

/// A master key identifier: its value and its length in bytes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mki {
    /// The MKI value.
    pub value: u64,
    /// Its length in bytes in each SRTP packet, 1 to 128.
    pub length: u8,
}

impl Mki {
    /// The MKI as the big-endian bytes carried in SRTP packets.
    pub fn to_bytes(self) -> Vec<u8> {
        let be = self.value.to_be_bytes();
        let len = usize::from(self.length);
        let mut out = vec![0u8; len.saturating_sub(8)];
        let skip = 8usize.saturating_sub(len);
        out.extend(be.iter().skip(skip));
        out
    }
}

/// One `inline:` key parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParam {
    /// The key||salt.
    pub key_salt: KeySalt,
    /// Optional lifetime.
    pub lifetime: Option<Lifetime>,
    /// Optional MKI.
    pub mki: Option<Mki>,
}

/// An SDES session parameter (RFC 4568 section 6.3).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SessionParam {
    /// `KDR=n`: key derivation rate 2^n.
    Kdr(u8),
    /// `UNENCRYPTED_SRTP`: RTP payloads sent in the clear.
    UnencryptedSrtp,
    /// `UNENCRYPTED_SRTCP`: RTCP sent in the clear.
    UnencryptedSrtcp,
    /// `UNAUTHENTICATED_SRTP`: no authentication tag on RTP.
    UnauthenticatedSrtp,
    /// `WSH=n`: replay window size.
    Wsh(u32),
    /// Any other parameter (`FEC_ORDER=`, `FEC_KEY=`, extensions), as
    /// written. Redacted in `Debug`, since `FEC_KEY` carries key material.
    Other(Secret<String>),
}

/// `Other` values are compared in constant time (for equal lengths).
impl PartialEq for SessionParam {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SessionParam::Kdr(a), SessionParam::Kdr(b)) => a == b,
            (SessionParam::Wsh(a), SessionParam::Wsh(b)) => a == b,
            (SessionParam::UnencryptedSrtp, SessionParam::UnencryptedSrtp)
            | (SessionParam::UnencryptedSrtcp, SessionParam::UnencryptedSrtcp)
            | (SessionParam::UnauthenticatedSrtp, SessionParam::UnauthenticatedSrtp) => true,
            (SessionParam::Other(a), SessionParam::Other(b)) => {
                bool::from(a.expose().as_bytes().ct_eq(b.expose().as_bytes()))
            }
            _ => false,
        }
    }
}

impl Eq for SessionParam {}

impl fmt::Display for SessionParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionParam::Kdr(n) => write!(f, "KDR={n}"),
            SessionParam::UnencryptedSrtp => f.write_str("UNENCRYPTED_SRTP"),
            SessionParam::UnencryptedSrtcp => f.write_str("UNENCRYPTED_SRTCP"),
            SessionParam::UnauthenticatedSrtp => f.write_str("UNAUTHENTICATED_SRTP"),
            SessionParam::Wsh(n) => write!(f, "WSH={n}"),
            SessionParam::Other(s) => f.write_str(s.expose()),
        }
    }
}

/// An `a=crypto` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    /// The tag, echoed by the answer to say which offered line it accepts.
    pub tag: u32,
    /// The crypto suite.
    pub suite: CryptoSuite,
    /// One or more key parameters.
    pub keys: Vec<KeyParam>,
    /// Session parameters, in order.
    pub session_params: Vec<SessionParam>,
}

/// What an SRTP context needs from an accepted `a=crypto` line. The key
/// and salt are copies, zeroized on drop and redacted in `Debug`.
#[derive(Debug, Clone)]
pub struct SrtpKeying {
    /// The suite name, as registered (`AES_CM_128_HMAC_SHA1_80`, ...).
    pub suite: &'static str,
    /// The master key.
    pub master_key: Secret<Vec<u8>>,
    /// The master salt.
    pub master_salt: Secret<Vec<u8>>,
    /// The MKI of the first key, when the line carries one.
    pub mki: Option<Mki>,
    /// The key derivation rate exponent (`KDR=n`), 0 when absent.
    pub kdr: u8,
    /// The replay window size (`WSH=n`), when given.
    pub window_size: Option<u32>,
}

/// Standard base64 that accepts keys with or without `=` padding (the
/// padding style is remembered for writing the key back).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn parse_lifetime(s: &str, max_log2: u32) -> Option<Lifetime> {
    let lifetime = match s.strip_prefix("2^") {
        Some(n) => {
            let n = u8::try_from(digits_u64(n)?).ok()?;
            (u32::from(n) <= max_log2).then_some(Lifetime::PowerOfTwo(n))?
        }
        None => {
            let p = digits_u64(s)?;
            (p > 0 && p <= 1u64.checked_shl(max_log2).unwrap_or(u64::MAX))
                .then_some(Lifetime::Packets(p))?
        }
    };
    Some(lifetime)
}

fn parse_mki(s: &str) -> Option<Mki> {
    let (value, length) = s.split_once(':')?;
    let value = digits_u64(value)?;
    let length = u8::try_from(digits_u64(length)?).ok()?;
    if !(1..=128).contains(&length) {
        return None;
    }
    if length < 8 && value >> (u32::from(length) * 8) != 0 {
        return None;
    }
    Some(Mki { value, length })
}

fn parse_key_param(index: usize, text: &str, suite: &CryptoSuite) -> Result<KeyParam, CryptoError> {
    let info = text
        .strip_prefix("inline:")
        .ok_or(CryptoError::KeyMethod { index })?;
    let mut parts = info.split('|');
    // `split` yields at least one item; an empty one is refused just below.
    let key_text = parts.next().unwrap_or_default();
    if key_text.is_empty() {
        return Err(CryptoError::Base64 { index });
    }
    let bytes = Zeroizing::new(
        B64.decode(key_text)
            .map_err(|_| CryptoError::Base64 { index })?,
    );
    if let (Some(expected), Some(name)) = (suite.key_salt_len(), suite.known_name())
        && bytes.len() != expected
    {
        return Err(CryptoError::KeyLength {
            index,
            suite: name,
            expected,
            actual: bytes.len(),
        });
    }
    let max_log2 = if matches!(suite, CryptoSuite::Other(_)) {
        63
    } else {
        48
    };
    let mut lifetime = None;
    let mut mki = None;
    for part in parts {
        if mki.is_some() {
            return Err(CryptoError::Syntax("data after the MKI"));
        }
        if part.contains(':') {
            mki = Some(parse_mki(part).ok_or(CryptoError::Mki { index })?);
        } else if lifetime.is_none() {
            lifetime = Some(parse_lifetime(part, max_log2).ok_or(CryptoError::Lifetime { index })?);
        } else {
            return Err(CryptoError::Lifetime { index });
        }
    }
    Ok(KeyParam {
        key_salt: KeySalt {
            padded: key_text.ends_with('=') || key_text.len() % 4 == 0,
            bytes: Secret::new(bytes.to_vec()),
        },
        lifetime,
        mki,
    })
}

fn parse_session_param(index: usize, text: &str) -> Result<SessionParam, CryptoError> {
    let bad = CryptoError::SessionParam { index };
    Ok(match text {
        "UNENCRYPTED_SRTP" => SessionParam::UnencryptedSrtp,
        "UNENCRYPTED_SRTCP" => SessionParam::UnencryptedSrtcp,
        "UNAUTHENTICATED_SRTP" => SessionParam::UnauthenticatedSrtp,
        _ => {
            if let Some(n) = text.strip_prefix("KDR=") {
                let n = digits_u64(n)
                    .and_then(|n| u8::try_from(n).ok())
                    .filter(|&n| n <= 24)
                    .ok_or(bad)?;
                SessionParam::Kdr(n)
            } else if let Some(n) = text.strip_prefix("WSH=") {
                let n = digits_u64(n)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|&n| n >= 64)
                    .ok_or(bad)?;
                SessionParam::Wsh(n)
            } else if text.bytes().all(|b| b.is_ascii_graphic()) {
                SessionParam::Other(Secret::new(text.to_owned()))
            } else {
                return Err(bad);
            }
        }
    })
}

impl Crypto {
    /// Parses the value of an `a=crypto` attribute (the text after
    /// `a=crypto:`).
    pub fn parse(value: &str) -> Result<Crypto, CryptoError> {
        let mut fields = value
            .split([' ', '\t'])
            .filter(|f| !f.is_empty())
            .enumerate();
        if value.starts_with([' ', '\t']) {
            return Err(CryptoError::Syntax("leading whitespace"));
        }
        // No field at all is an empty tag, refused just below.
        let tag_text = fields.next().map(|(_, f)| f).unwrap_or_default();
        if tag_text.is_empty() || tag_text.len() > 9 {
            return Err(CryptoError::Tag);
        }
        let tag = digits_u64(tag_text)
            .and_then(|t| u32::try_from(t).ok())
            .ok_or(CryptoError::Tag)?;
        let suite_text = fields
            .next()
            .map(|(_, f)| f)
            .ok_or(CryptoError::Syntax("missing suite"))?;
        if !super::is_token(suite_text) {
            return Err(CryptoError::Suite);
        }
        let suite = CryptoSuite::from_name(suite_text);
        let key_text = fields
            .next()
            .map(|(_, f)| f)
            .ok_or(CryptoError::Syntax("missing key parameters"))?;
        let mut keys = Vec::new();
        for (index, kp) in key_text.split(';').enumerate() {
            if index >= MAX_KEY_PARAMS {
                return Err(CryptoError::TooManyKeys);
            }
            keys.push(parse_key_param(index, kp, &suite)?);
        }
        if keys.len() > 1 && keys.iter().any(|k| k.mki.is_none()) {
            return Err(CryptoError::TooManyKeys);
        }
        let mut session_params = Vec::new();
        for (i, (_, p)) in fields.enumerate() {
            if i >= MAX_KEY_PARAMS {
                return Err(CryptoError::SessionParam { index: i });
            }
            session_params.push(parse_session_param(i, p)?);
        }
        Ok(Crypto {
            tag,
            suite,
            keys,
            session_params,
        })
    }

    /// A line for a known `suite` with the caller's key||salt, which must
    /// have the suite's length.
    pub fn new(tag: u32, suite: CryptoSuite, key_salt: KeySalt) -> Result<Crypto, CryptoError> {
        let (expected, name) = match (suite.key_salt_len(), suite.known_name()) {
            (Some(e), Some(n)) => (e, n),
            _ => return Err(CryptoError::UnsupportedSuite),
        };
        if key_salt.expose().len() != expected {
            return Err(CryptoError::KeyLength {
                index: 0,
                suite: name,
                expected,
                actual: key_salt.expose().len(),
            });
        }
        if tag > 999_999_999 {
            return Err(CryptoError::Tag);
        }
        Ok(Crypto {
            tag,
            suite,
            keys: vec![KeyParam {
                key_salt,
                lifetime: None,
                mki: None,
            }],
            session_params: Vec::new(),
        })
    }

    /// A line for a known `suite` with a fresh key||salt drawn from `rng`.
    pub fn generate(
        tag: u32,
        suite: CryptoSuite,
        rng: &dyn SecureRandom,
    ) -> Result<Crypto, CryptoError> {
        let len = suite.key_salt_len().ok_or(CryptoError::UnsupportedSuite)?;
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes).map_err(|_| CryptoError::Random)?;
        Crypto::new(tag, suite, KeySalt::new(bytes))
    }

    /// Checks that no session parameter switches protection off: the
    /// secure default refuses `UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP` and
    /// `UNAUTHENTICATED_SRTP`.
    pub fn ensure_secure(&self) -> Result<(), CryptoError> {
        for p in &self.session_params {
            let name = match p {
                SessionParam::UnencryptedSrtp => "UNENCRYPTED_SRTP",
                SessionParam::UnencryptedSrtcp => "UNENCRYPTED_SRTCP",
                SessionParam::UnauthenticatedSrtp => "UNAUTHENTICATED_SRTP",
                _ => continue,
            };
            return Err(CryptoError::Insecure(name));
        }
        Ok(())
    }

    /// Whether [`Crypto::ensure_secure`] passes and the suite is known.
    pub fn is_secure(&self) -> bool {
        self.ensure_secure().is_ok() && self.suite.known_name().is_some()
    }

    /// The suite and the first key of a line that passes
    /// [`Crypto::ensure_secure`], split into master key and master salt, for
    /// keying an SRTP context.
    pub fn srtp_keying(&self) -> Result<SrtpKeying, CryptoError> {
        self.ensure_secure()?;
        let name = self
            .suite
            .known_name()
            .ok_or(CryptoError::UnsupportedSuite)?;
        let key_len = self.suite.key_len().ok_or(CryptoError::UnsupportedSuite)?;
        let first = self
            .keys
            .first()
            .ok_or(CryptoError::Syntax("no key parameter"))?;
        let (master_key, master_salt) =
            first
                .key_salt
                .expose()
                .split_at_checked(key_len)
                .ok_or(CryptoError::KeyLength {
                    index: 0,
                    suite: name,
                    expected: self.suite.key_salt_len().unwrap_or(key_len),
                    actual: first.key_salt.expose().len(),
                })?;
        let kdr = self
            .session_params
            .iter()
            .find_map(|p| match p {
                SessionParam::Kdr(n) => Some(*n),
                _ => None,
            })
            .unwrap_or(0);
        let window_size = self.session_params.iter().find_map(|p| match p {
            SessionParam::Wsh(n) => Some(*n),
            _ => None,
        });
        Ok(SrtpKeying {
            suite: name,
            master_key: Secret::new(master_key.to_vec()),
            master_salt: Secret::new(master_salt.to_vec()),
            mki: first.mki,
            kdr,
            window_size,
        })
    }
}

/// Writes the attribute value (what follows `a=crypto:`).
impl fmt::Display for Crypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.tag, self.suite)?;
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            let encoded = k.key_salt.encode();
            write!(f, "inline:{}", encoded.as_str())?;
            match k.lifetime {
                Some(Lifetime::PowerOfTwo(n)) => write!(f, "|2^{n}")?,
                Some(Lifetime::Packets(p)) => write!(f, "|{p}")?,
                None => {}
            }
            if let Some(m) = k.mki {
                write!(f, "|{}:{}", m.value, m.length)?;
            }
        }
        for p in &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4568_example_parses_and_round_trips() {
        // RFC 4568 section 4 example.
        let v =
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";
        let c = Crypto::parse(v).unwrap();
        assert_eq!(c.keys[0].lifetime, Some(Lifetime::PowerOfTwo(20)));
        assert_eq!(
            c.keys[0].mki,
            Some(Mki {
                value: 1,
                length: 4
            })
        );
        assert_eq!(c.keys[0].mki.unwrap().to_bytes(), vec![0, 0, 0, 1]);
        assert_eq!(c.to_string(), v);
    }

    #[test]
    fn key_length_is_checked_per_suite() {
        let v = "1 AES_256_CM_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        assert!(matches!(
            Crypto::parse(v),
            Err(CryptoError::KeyLength {
                expected: 46,
                actual: 30,
                ..
            })
        ));
    }

    #[test]
    fn insecure_params_are_refused_for_keying() {
        let v = "2 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR UNENCRYPTED_SRTP";
        let c = Crypto::parse(v).unwrap();
        assert_eq!(
            c.srtp_keying().unwrap_err(),
            CryptoError::Insecure("UNENCRYPTED_SRTP")
        );
        assert!(!c.is_secure());
        assert_eq!(c.to_string(), v);
    }

    #[test]
    fn unknown_suite_is_kept_but_not_usable() {
        let v = "3 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4 FEC_ORDER=FEC_SRTP";
        let c = Crypto::parse(v).unwrap();
        assert_eq!(c.suite, CryptoSuite::Other("F8_128_HMAC_SHA1_80".into()));
        assert_eq!(c.srtp_keying().unwrap_err(), CryptoError::UnsupportedSuite);
        assert_eq!(c.to_string(), v);
    }

    #[test]
    fn errors_and_debug_never_show_keys() {
        let v = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^99";
        let e = Crypto::parse(v).unwrap_err();
        assert!(!e.to_string().contains("PS1u"));
        let ok = Crypto::parse(
            "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
        )
        .unwrap();
        assert!(!format!("{ok:?}").contains("PS1u"));
    }

    #[test]
    fn multiple_keys_need_mkis() {
        let k = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        assert_eq!(
            Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k};inline:{k}")),
            Err(CryptoError::TooManyKeys)
        );
        let two = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|1:1;inline:{k}|2^10|2:1");
        assert_eq!(Crypto::parse(&two).unwrap().to_string(), two);
    }

    #[test]
    fn mki_value_must_fit_its_length() {
        let k = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        assert_eq!(
            Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}|256:1")),
            Err(CryptoError::Mki { index: 0 })
        );
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // tests draw real randomness
    fn generate_uses_the_callers_rng_and_length() {
        let rng = ring::rand::SystemRandom::new();
        let c = Crypto::generate(7, CryptoSuite::AeadAes256Gcm, &rng).unwrap();
        let k = c.srtp_keying().unwrap();
        assert_eq!(
            (k.master_key.expose().len(), k.master_salt.expose().len()),
            (32, 12)
        );
        let back = Crypto::parse(&c.to_string()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn strength_orders_known_suites() {
        assert!(
            CryptoSuite::AeadAes256Gcm.strength() > CryptoSuite::AesCm128HmacSha1_80.strength()
        );
        assert!(
            CryptoSuite::AesCm128HmacSha1_80.strength()
                > CryptoSuite::AesCm256HmacSha1_32.strength()
        );
        assert_eq!(CryptoSuite::Other("X".into()).strength(), None);
    }
}
