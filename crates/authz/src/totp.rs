//! Time-based one-time passwords (RFC 6238) on `ring`'s HMAC.
//!
//! A [`Totp`] holds the parameters (hash, digits, step, window); a
//! [`TotpSecret`] holds the shared key, zeroized on drop and redacted in
//! `Debug`. [`Totp::verify`] accepts a code from the current step or one
//! step either side (clock drift), compares in constant time, and refuses any
//! step at or before the last one accepted for this secret, so a code that
//! was seen once (shoulder-surfed, phished, replayed) never logs in again.
//! The caller persists that step: `verify` takes it in and hands back the new
//! one.
//!
//! Time is an argument: seconds since the Unix epoch.
//!
//! # Example
//!
//! ```
//! use carevox_authz::totp::{Totp, TotpAlgorithm, TotpSecret, TotpError};
//! use ring::rand::SystemRandom;
//!
//! # fn main() -> Result<(), TotpError> {
//! let totp = Totp::default(); // SHA-1, 6 digits, 30 s: what authenticator apps expect
//! let secret = TotpSecret::generate(&SystemRandom::new(), TotpAlgorithm::Sha1)?;
//! let uri = totp.provisioning_uri(&secret, "Mercy General", "dr.grey")?;
//! assert!(uri.starts_with("otpauth://totp/Mercy%20General:dr.grey?secret="));
//!
//! let now = 1_700_000_000;
//! let code = totp.generate(&secret, now)?;
//! let step = totp.verify(&secret, &code, now + 20, None)?; // store `step`
//! // The same code again is refused, even inside the window.
//! assert_eq!(totp.verify(&secret, &code, now + 25, Some(step)), Err(TotpError::Replayed));
//! # Ok(())
//! # }
//! ```

use ring::hmac;
use ring::rand::SecureRandom;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::secret::{RandomError, SecretBytes, ct_eq, fill};

/// Errors of TOTP handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// The code does not match any step in the window.
    #[error("the one-time code is not valid")]
    Invalid,
    /// The code matches a step at or before the last accepted one.
    #[error("the one-time code was already used")]
    Replayed,
    /// The code is not exactly the configured number of ASCII digits.
    #[error("the one-time code must be {digits} decimal digits")]
    Malformed {
        /// The configured number of digits.
        digits: u8,
    },
    /// A configuration value is out of range.
    #[error("TOTP parameter `{name}` is out of range")]
    BadParameter {
        /// Which parameter.
        name: &'static str,
    },
    /// The secret is shorter than 128 bits (RFC 4226 section 4, R6) or
    /// longer than 64 bytes.
    #[error("the TOTP secret is {len} bytes; 16 to 64 bytes are accepted")]
    BadSecretLength {
        /// The length given.
        len: usize,
    },
    /// The base32 text of a secret is not RFC 4648 base32.
    #[error("the TOTP secret is not base32 (at character {offset})")]
    BadBase32 {
        /// Offset of the first offending character.
        offset: usize,
    },
    /// The time is before the configured epoch or too far in the future.
    #[error("the time is outside the range TOTP can represent")]
    TimeOutOfRange,
    /// The caller's random generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The HMAC hash of a TOTP secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TotpAlgorithm {
    /// HMAC-SHA-1: RFC 6238's default and what most authenticator apps use.
    /// (HMAC-SHA-1 remains sound as a MAC; SHA-1's collision attacks do not
    /// apply.)
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl TotpAlgorithm {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }

    /// The name used in `otpauth://` URIs.
    #[must_use]
    pub fn uri_name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// The recommended secret length: the hash output length.
    #[must_use]
    pub fn secret_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

/// A TOTP shared secret: 16 to 64 bytes, zeroized on drop, redacted in
/// `Debug`, compared in constant time.
#[derive(Debug, Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret(SecretBytes);

impl TotpSecret {
    /// Wraps raw secret bytes.
    ///
    /// # Errors
    /// [`TotpError::BadSecretLength`] outside 16..=64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        if !(16..=64).contains(&bytes.len()) {
            return Err(TotpError::BadSecretLength { len: bytes.len() });
        }
        Ok(Self(SecretBytes::from_slice(bytes)))
    }

    /// Draws a new secret of the hash's output length from `rng`.
    ///
    /// # Errors
    /// [`TotpError::Random`] when `rng` fails.
    pub fn generate(rng: &dyn SecureRandom, algorithm: TotpAlgorithm) -> Result<Self, TotpError> {
        let mut bytes = Zeroizing::new(vec![0u8; algorithm.secret_len()]);
        fill(rng, &mut bytes, "a TOTP secret")?;
        Self::from_bytes(&bytes)
    }

    /// Parses RFC 4648 base32 (case-insensitive, optional `=` padding,
    /// spaces ignored), as users type it from an authenticator app.
    ///
    /// # Errors
    /// [`TotpError::BadBase32`] or [`TotpError::BadSecretLength`].
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let bytes = base32_decode(text)?;
        Self::from_bytes(&bytes)
    }

    /// The secret as unpadded RFC 4648 base32, for provisioning.
    #[must_use]
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32_encode(self.0.expose()))
    }

    /// The raw secret bytes, for the caller to store encrypted.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

/// TOTP parameters. The default is SHA-1, 6 digits, a 30-second step from
/// the Unix epoch and a window of one step either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Totp {
    algorithm: TotpAlgorithm,
    digits: u8,
    step_secs: u64,
    t0: u64,
    window: u8,
}

impl Default for Totp {
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            step_secs: 30,
            t0: 0,
            window: 1,
        }
    }
}

impl Totp {
    /// TOTP with `algorithm` and `digits` (6 to 8), a 30-second step from the
    /// Unix epoch and a window of one step either side.
    ///
    /// # Errors
    /// [`TotpError::BadParameter`] for digits outside 6..=8.
    pub fn new(algorithm: TotpAlgorithm, digits: u8) -> Result<Self, TotpError> {
        if !(6..=8).contains(&digits) {
            return Err(TotpError::BadParameter { name: "digits" });
        }
        Ok(Self {
            algorithm,
            digits,
            ..Self::default()
        })
    }

    /// Sets the time step in seconds (1 to 300; RFC 6238 recommends 30).
    ///
    /// # Errors
    /// [`TotpError::BadParameter`] outside that range.
    pub fn with_step(mut self, step_secs: u64) -> Result<Self, TotpError> {
        if !(1..=300).contains(&step_secs) {
            return Err(TotpError::BadParameter { name: "step" });
        }
        self.step_secs = step_secs;
        Ok(self)
    }

    /// Sets how many steps either side of the current one are accepted
    /// (0 to 2; RFC 6238 section 5.2 recommends at most one).
    ///
    /// # Errors
    /// [`TotpError::BadParameter`] above 2.
    pub fn with_window(mut self, window: u8) -> Result<Self, TotpError> {
        if window > 2 {
            return Err(TotpError::BadParameter { name: "window" });
        }
        self.window = window;
        Ok(self)
    }

    /// The hash algorithm.
    #[must_use]
    pub fn algorithm(&self) -> TotpAlgorithm {
        self.algorithm
    }

    /// The number of digits.
    #[must_use]
    pub fn digits(&self) -> u8 {
        self.digits
    }

    /// The time step counter `T` for `unix_time` (RFC 6238 section 4.2).
    ///
    /// # Errors
    /// [`TotpError::TimeOutOfRange`] before `T0`.
    pub fn step_at(&self, unix_time: u64) -> Result<u64, TotpError> {
        let since = unix_time
            .checked_sub(self.t0)
            .ok_or(TotpError::TimeOutOfRange)?;
        Ok(since / self.step_secs)
    }

    /// The code for time step `step` (RFC 4226 dynamic truncation), as a
    /// zero-padded decimal string.
    #[must_use]
    pub fn code_at_step(&self, secret: &TotpSecret, step: u64) -> Zeroizing<String> {
        let value = self.value_at_step(secret, step);
        Zeroizing::new(format!("{value:0width$}", width = usize::from(self.digits)))
    }

    /// The code for `unix_time`.
    ///
    /// # Errors
    /// [`TotpError::TimeOutOfRange`] before `T0`.
    pub fn generate(
        &self,
        secret: &TotpSecret,
        unix_time: u64,
    ) -> Result<Zeroizing<String>, TotpError> {
        Ok(self.code_at_step(secret, self.step_at(unix_time)?))
    }

    /// Verifies `code` at `unix_time`, accepting the current step and
    /// `window` steps either side, refusing steps at or before
    /// `last_used_step`.
    ///
    /// On success returns the matched step: the caller must persist it and
    /// pass it as `last_used_step` next time. Every step in the window is
    /// computed and compared in constant time, whichever matches.
    ///
    /// # Errors
    /// [`TotpError::Malformed`] if `code` is not exactly `digits` ASCII
    /// digits; [`TotpError::Replayed`] if it matches only an already used
    /// step; [`TotpError::Invalid`] otherwise.
    pub fn verify(
        &self,
        secret: &TotpSecret,
        code: &str,
        unix_time: u64,
        last_used_step: Option<u64>,
    ) -> Result<u64, TotpError> {
        if code.len() != usize::from(self.digits) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TotpError::Malformed {
                digits: self.digits,
            });
        }
        let current = self.step_at(unix_time)?;
        let window = u64::from(self.window);
        let mut accepted: Option<u64> = None;
        let mut replayed = false;
        for step in current.saturating_sub(window)..=current.saturating_add(window) {
            let candidate = self.code_at_step(secret, step);
            if ct_eq(candidate.as_bytes(), code.as_bytes()) {
                if last_used_step.is_some_and(|last| step <= last) {
                    replayed = true;
                } else if accepted.is_none() {
                    accepted = Some(step);
                }
            }
        }
        match accepted {
            Some(step) => Ok(step),
            None if replayed => Err(TotpError::Replayed),
            None => Err(TotpError::Invalid),
        }
    }

    /// An `otpauth://totp/` URI (the Key Uri Format read by authenticator
    /// apps, usually shown as a QR code) carrying the base32 secret, issuer,
    /// algorithm, digits and period. It contains the secret: it is zeroized
    /// on drop and must not be logged.
    ///
    /// # Errors
    /// [`TotpError::BadParameter`] if `issuer` contains `:` or either label
    /// part is empty.
    pub fn provisioning_uri(
        &self,
        secret: &TotpSecret,
        issuer: &str,
        account: &str,
    ) -> Result<Zeroizing<String>, TotpError> {
        if issuer.is_empty() || issuer.contains(':') {
            return Err(TotpError::BadParameter { name: "issuer" });
        }
        if account.is_empty() {
            return Err(TotpError::BadParameter { name: "account" });
        }
        let issuer = percent_encode(issuer);
        let secret = secret.to_base32();
        Ok(Zeroizing::new(format!(
            "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm={}&digits={}&period={}",
            percent_encode(account),
            secret.as_str(),
            self.algorithm.uri_name(),
            self.digits,
            self.step_secs
        )))
    }

    fn value_at_step(&self, secret: &TotpSecret, step: u64) -> u32 {
        let key = hmac::Key::new(self.algorithm.hmac(), secret.expose());
        let tag = hmac::sign(&key, &step.to_be_bytes());
        let mac = tag.as_ref();
        // Dynamic truncation (RFC 4226 section 5.3): the low nibble of the
        // last byte picks four bytes. Every HMAC here is at least 20 bytes,
        // so offset + 4 <= 19 is in range; `get` keeps clippy's proof.
        let offset = usize::from(mac.last().map_or(0, |b| b & 0x0f));
        let word = mac
            .get(offset..offset + 4)
            .and_then(|w| <[u8; 4]>::try_from(w).ok())
            .map_or(0, u32::from_be_bytes);
        let modulus = 10u32.pow(u32::from(self.digits));
        (word & 0x7fff_ffff) % modulus
    }
}

/// RFC 4648 base32 as authenticator apps show it: the standard alphabet,
/// lower case read as upper case, spaces ignored, no padding (padding is
/// stripped before decoding, see [`base32_decode`]).
fn base32_spec() -> Result<data_encoding::Encoding, TotpError> {
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    spec.translate.from.push_str("abcdefghijklmnopqrstuvwxyz");
    spec.translate.to.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    spec.ignore.push(' ');
    // The specification above is constant and valid; the error cannot
    // happen, but is reported rather than unwrapped.
    spec.encoding()
        .map_err(|_| TotpError::BadParameter { name: "base32" })
}

fn base32_encode(bytes: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(bytes)
}

/// Decodes RFC 4648 base32: case-insensitive, spaces ignored, optional `=`
/// padding at the end only. Errors give the byte offset in `text`.
fn base32_decode(text: &str) -> Result<Zeroizing<Vec<u8>>, TotpError> {
    // Padding may only be followed by more padding (or spaces).
    let body_end = text.find('=').unwrap_or(text.len());
    if let Some(tail) = text.get(body_end..)
        && let Some((i, _)) = tail.char_indices().find(|&(_, c)| c != '=' && c != ' ')
    {
        return Err(TotpError::BadBase32 {
            offset: body_end + i,
        });
    }
    let body = text.get(..body_end).unwrap_or(text).as_bytes();
    let encoding = base32_spec()?;
    let max = encoding
        .decode_len(body.len())
        .map_err(|e| TotpError::BadBase32 { offset: e.position })?;
    let mut out = Zeroizing::new(vec![0u8; max]);
    let len = encoding
        .decode_mut(body, &mut out)
        .map_err(|e| TotpError::BadBase32 {
            offset: e.error.position,
        })?;
    out.truncate(len);
    Ok(out)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890").unwrap()
    }

    #[test]
    fn rfc4226_appendix_d_hotp_values() {
        // RFC 4226 Appendix D: HOTP values for counters 0..9 with the
        // 20-byte ASCII secret, 6 digits. TOTP at step C is HOTP(C).
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        let totp = Totp::default();
        for (step, want) in expected.iter().enumerate() {
            assert_eq!(
                totp.code_at_step(&rfc_secret(), step as u64).as_str(),
                *want
            );
        }
    }

    #[test]
    fn base32_rfc4648_vectors() {
        // RFC 4648 section 10 (without padding).
        let cases = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (raw, enc) in cases {
            assert_eq!(base32_encode(raw.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap().as_slice(), raw.as_bytes());
        }
        // RFC 4648 section 10 with padding, in lower case and with spaces.
        for (raw, enc) in [
            ("f", "MY======"),
            ("fo", "MZXQ===="),
            ("foo", "MZXW6==="),
            ("foob", "MZXW6YQ="),
        ] {
            assert_eq!(base32_decode(enc).unwrap().as_slice(), raw.as_bytes());
            let lower = enc.to_ascii_lowercase();
            assert_eq!(base32_decode(&lower).unwrap().as_slice(), raw.as_bytes());
        }
        assert_eq!(
            base32_decode("mzxw 6ytb oi======").unwrap().as_slice(),
            b"foobar"
        );
        assert_eq!(
            base32_decode("MZ1"),
            Err(TotpError::BadBase32 { offset: 2 })
        );
        assert_eq!(
            base32_decode("MY==MY"),
            Err(TotpError::BadBase32 { offset: 4 })
        );
        // A length no byte string encodes to, and non-zero trailing bits.
        assert!(matches!(
            base32_decode("MZX"),
            Err(TotpError::BadBase32 { .. })
        ));
        assert!(matches!(
            base32_decode("MZ"),
            Err(TotpError::BadBase32 { .. })
        ));
    }

    #[test]
    fn secret_bounds_and_redaction() {
        assert!(TotpSecret::from_bytes(&[0; 15]).is_err());
        assert!(TotpSecret::from_bytes(&[0; 65]).is_err());
        let s = rfc_secret();
        assert!(!format!("{s:?}").contains("1234"));
        let round = TotpSecret::from_base32(&s.to_base32()).unwrap();
        assert_eq!(round, s);
    }

    #[test]
    fn parameters_are_bounded() {
        assert!(Totp::new(TotpAlgorithm::Sha1, 5).is_err());
        assert!(Totp::new(TotpAlgorithm::Sha1, 9).is_err());
        assert!(Totp::default().with_step(0).is_err());
        assert!(Totp::default().with_window(3).is_err());
    }

    #[test]
    fn malformed_codes_are_refused() {
        let totp = Totp::default();
        for code in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", " 12345"] {
            assert_eq!(
                totp.verify(&rfc_secret(), code, 59, None),
                Err(TotpError::Malformed { digits: 6 }),
                "{code:?}"
            );
        }
    }

    #[test]
    fn window_and_replay() {
        let totp = Totp::default();
        let s = rfc_secret();
        let now = 1_000_000_020; // step 33333334
        let step = totp.step_at(now).unwrap();
        for delta in [-1i64, 0, 1] {
            let at = step.checked_add_signed(delta).unwrap();
            let code = totp.code_at_step(&s, at);
            assert_eq!(totp.verify(&s, &code, now, None), Ok(at));
            assert_eq!(
                totp.verify(&s, &code, now, Some(at)),
                Err(TotpError::Replayed)
            );
            assert_eq!(
                totp.verify(&s, &code, now, Some(at + 1)),
                Err(TotpError::Replayed)
            );
            assert_eq!(totp.verify(&s, &code, now, Some(at - 1)), Ok(at));
        }
        for delta in [-3i64, -2, 2, 3] {
            let code = totp.code_at_step(&s, step.checked_add_signed(delta).unwrap());
            assert_eq!(totp.verify(&s, &code, now, None), Err(TotpError::Invalid));
        }
    }

    #[test]
    fn provisioning_uri_format() {
        let totp = Totp::new(TotpAlgorithm::Sha256, 8).unwrap();
        let s = rfc_secret();
        let uri = totp
            .provisioning_uri(&s, "Mercy General", "nurse@ward 3")
            .unwrap();
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/Mercy%20General:nurse%40ward%203?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Mercy%20General&algorithm=SHA256&digits=8&period=30"
        );
        assert!(totp.provisioning_uri(&s, "a:b", "x").is_err());
        assert!(totp.provisioning_uri(&s, "a", "").is_err());
    }
}
