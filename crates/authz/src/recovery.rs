//! Single-use recovery codes, for a user who has lost their second factor.
//!
//! [`RecoveryCodeSet::generate`] draws `n` codes from the caller's random
//! generator and returns them once, for the user to write down, together with
//! the set to store, which holds only keyed digests of the codes.
//!
//! A code is 16 characters of Crockford's base32 alphabet (digits and
//! capitals without `I`, `L`, `O`, `U`), shown in groups of four, such as
//! `7K2M-QX9D-HT4B-WN8C`: 80 bits from the generator. Input is forgiving:
//! case, spaces and dashes are ignored and `O`, `I`, `L` read as `0`, `1`, `1`.
//!
//! # Why a fast keyed hash is enough
//!
//! Passwords need a slow, memory-hard hash because people choose them from a
//! small space. These codes are not chosen: each is uniform over 2^80 values,
//! so even with the stored digests and their key in hand, finding one code
//! takes about 2^79 HMAC computations, out of reach. The digests are
//! HMAC-SHA256 under a random 256-bit key per set, so equal codes in two sets
//! (or two users) never give equal digests and no table computed in advance
//! helps. A fast hash also keeps the check of all codes of a set cheap.
//!
//! # Use
//!
//! [`RecoveryCodeSet::consume`] compares the digest of the offered code with
//! every unused digest in constant time (it does not stop at a match) and
//! marks the match as used. The caller must store the updated set (e.g. with
//! a compare-and-swap on the row) before granting access, so that a code
//! works exactly once even under concurrent logins.
//!
//! ```
//! use carevox_authz::recovery::{RecoveryCodeSet, RecoveryError};
//! use ring::rand::SystemRandom;
//!
//! # fn main() -> Result<(), RecoveryError> {
//! let (codes, mut set) = RecoveryCodeSet::generate(&SystemRandom::new(), 10)?;
//! let stored = set.to_stored(); // persist this; show `codes` to the user once
//! assert_eq!(codes.len(), 10);
//!
//! let typed = codes[3].expose().to_lowercase().replace('-', " ");
//! let mut set = RecoveryCodeSet::from_stored(&stored)?;
//! assert_eq!(set.consume(&typed)?, 9); // nine codes left
//! assert_eq!(set.consume(&typed), Err(RecoveryError::Invalid));
//! # Ok(())
//! # }
//! ```

use core::fmt;

use base64ct::{Base64Unpadded, Encoding};
use carevox_redact::Secret;
use ring::hmac;
use ring::rand::SecureRandom;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::secret::{RandomError, SecretBytes, fill};

/// Characters of a recovery code, without its dashes.
pub const CODE_CHARS: usize = 16;

/// The most codes one set may hold.
pub const MAX_CODES: usize = 64;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const KEY_LEN: usize = 32;
const DIGEST_LEN: usize = 32;
const STORED_PREFIX: &str = "rc1";

/// Errors of recovery codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The code matches no unused code of the set.
    #[error("the recovery code is not valid")]
    Invalid,
    /// The code is not 16 characters of the recovery alphabet.
    #[error("a recovery code is {CODE_CHARS} letters and digits")]
    Malformed,
    /// A set of this many codes cannot be made.
    #[error("a recovery code set holds 1 to {MAX_CODES} codes, not {count}")]
    BadCount {
        /// The count asked for.
        count: usize,
    },
    /// A stored set is not well formed.
    #[error("the stored recovery code set is malformed at field {field}")]
    BadStored {
        /// Index of the offending `$`- or `,`-separated field.
        field: usize,
    },
    /// The caller's random generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// One recovery code, as shown to the user: zeroized on drop, redacted in
/// `Debug`.
#[derive(Debug, Clone, Zeroize, ZeroizeOnDrop)]
pub struct RecoveryCode(Secret<String>);

impl RecoveryCode {
    /// The code in groups of four, e.g. `7K2M-QX9D-HT4B-WN8C`.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl PartialEq for RecoveryCode {
    fn eq(&self, other: &Self) -> bool {
        crate::secret::ct_eq(self.0.expose().as_bytes(), other.0.expose().as_bytes())
    }
}

impl Eq for RecoveryCode {}

/// The stored side of a user's recovery codes: a key and one digest per
/// code, each digest cleared once its code is used.
#[derive(Clone, PartialEq, Eq)]
pub struct RecoveryCodeSet {
    key: SecretBytes,
    digests: Vec<Option<[u8; DIGEST_LEN]>>,
}

// Written by hand: prints how many codes there are and how many remain,
// which a wrapper would hide; the key and the digests are never printed.
// (`Secret` has no equality, and this set compares its digests.)
impl fmt::Debug for RecoveryCodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryCodeSet")
            .field("total", &self.digests.len())
            .field("remaining", &self.remaining())
            .finish_non_exhaustive()
    }
}

impl RecoveryCodeSet {
    /// Draws `count` (1 to [`MAX_CODES`]) codes and a digest key from `rng`.
    /// Returns the codes to show once and the set to store.
    ///
    /// # Errors
    /// [`RecoveryError::BadCount`] or [`RecoveryError::Random`].
    pub fn generate(
        rng: &dyn SecureRandom,
        count: usize,
    ) -> Result<(Vec<RecoveryCode>, Self), RecoveryError> {
        if !(1..=MAX_CODES).contains(&count) {
            return Err(RecoveryError::BadCount { count });
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill(rng, key.as_mut(), "a recovery code key")?;
        let set_key = SecretBytes::from_slice(key.as_ref());
        let mac_key = hmac::Key::new(hmac::HMAC_SHA256, key.as_ref());
        let mut codes = Vec::with_capacity(count);
        let mut digests = Vec::with_capacity(count);
        let mut raw = Zeroizing::new([0u8; CODE_CHARS]);
        for _ in 0..count {
            fill(rng, raw.as_mut(), "a recovery code")?;
            // 256 is a multiple of 32: masking to five bits is unbiased.
            let mut plain = Zeroizing::new([0u8; CODE_CHARS]);
            for (p, r) in plain.iter_mut().zip(raw.iter()) {
                *p = ALPHABET.get(usize::from(r & 0x1f)).copied().unwrap_or(b'0');
            }
            digests.push(Some(digest(&mac_key, plain.as_ref())));
            let mut shown = String::with_capacity(CODE_CHARS + 3);
            for (i, &c) in plain.iter().enumerate() {
                if i > 0 && i % 4 == 0 {
                    shown.push('-');
                }
                shown.push(char::from(c));
            }
            codes.push(RecoveryCode(Secret::new(shown)));
        }
        Ok((
            codes,
            Self {
                key: set_key,
                digests,
            },
        ))
    }

    /// How many codes are still unused.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.digests.iter().filter(|d| d.is_some()).count()
    }

    /// Checks `code` against every unused code in constant time and, on a
    /// match, marks it used. Returns how many codes remain.
    ///
    /// # Errors
    /// [`RecoveryError::Malformed`] if `code` does not normalise to 16
    /// alphabet characters; [`RecoveryError::Invalid`] if it matches no
    /// unused code.
    pub fn consume(&mut self, code: &str) -> Result<usize, RecoveryError> {
        let normalised = normalise(code)?;
        let mac_key = hmac::Key::new(hmac::HMAC_SHA256, self.key.expose());
        let offered = digest(&mac_key, normalised.as_ref());
        // Scan every slot, selecting the match without branching on secrets.
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, slot) in self.digests.iter().enumerate() {
            let Some(d) = slot else { continue };
            let hit = d.ct_eq(&offered) & !found;
            index.conditional_assign(&u32::try_from(i).unwrap_or(u32::MAX), hit);
            found |= hit;
        }
        if !bool::from(found) {
            return Err(RecoveryError::Invalid);
        }
        let slot = usize::try_from(index)
            .ok()
            .and_then(|i| self.digests.get_mut(i))
            .ok_or(RecoveryError::Invalid)?;
        *slot = None;
        Ok(self.remaining())
    }

    /// The set as a string to store: `rc1$<key>$<digest>,<digest>,-,...`
    /// (unpadded base64; `-` for a used code). It holds no code, but it does
    /// hold the digest key: store it with the account, not in logs.
    #[must_use]
    pub fn to_stored(&self) -> String {
        let digests: Vec<String> = self
            .digests
            .iter()
            .map(|d| d.map_or_else(|| "-".to_owned(), |d| Base64Unpadded::encode_string(&d)))
            .collect();
        format!(
            "{STORED_PREFIX}${}${}",
            Base64Unpadded::encode_string(self.key.expose()),
            digests.join(",")
        )
    }

    /// Parses a string made by [`to_stored`](Self::to_stored).
    ///
    /// # Errors
    /// [`RecoveryError::BadStored`] naming the first bad field.
    pub fn from_stored(stored: &str) -> Result<Self, RecoveryError> {
        let mut fields = stored.split('$');
        if fields.next() != Some(STORED_PREFIX) {
            return Err(RecoveryError::BadStored { field: 0 });
        }
        let key = fields
            .next()
            .and_then(|k| Base64Unpadded::decode_vec(k).ok())
            .filter(|k| k.len() == KEY_LEN)
            .ok_or(RecoveryError::BadStored { field: 1 })?;
        let list = fields.next().ok_or(RecoveryError::BadStored { field: 2 })?;
        if fields.next().is_some() {
            return Err(RecoveryError::BadStored { field: 3 });
        }
        let mut digests = Vec::new();
        for (i, item) in list.split(',').enumerate() {
            let field = 2 + i;
            if i >= MAX_CODES {
                return Err(RecoveryError::BadStored { field });
            }
            if item == "-" {
                digests.push(None);
                continue;
            }
            let mut d = [0u8; DIGEST_LEN];
            let decoded = Base64Unpadded::decode(item, &mut d)
                .map_err(|_| RecoveryError::BadStored { field })?;
            if decoded.len() != DIGEST_LEN {
                return Err(RecoveryError::BadStored { field });
            }
            digests.push(Some(d));
        }
        Ok(Self {
            key: SecretBytes::new(key),
            digests,
        })
    }
}

fn digest(key: &hmac::Key, normalised: &[u8]) -> [u8; DIGEST_LEN] {
    let tag = hmac::sign(key, normalised);
    let mut out = [0u8; DIGEST_LEN];
    for (o, t) in out.iter_mut().zip(tag.as_ref()) {
        *o = *t;
    }
    out
}

/// Upper-cases, drops spaces and dashes, maps look-alikes, and checks the
/// alphabet and length.
fn normalise(code: &str) -> Result<Zeroizing<[u8; CODE_CHARS]>, RecoveryError> {
    let mut out = Zeroizing::new([0u8; CODE_CHARS]);
    let mut n = 0usize;
    if code.len() > 4 * CODE_CHARS {
        return Err(RecoveryError::Malformed);
    }
    for c in code.bytes() {
        let c = match c.to_ascii_uppercase() {
            b' ' | b'-' => continue,
            b'O' => b'0',
            b'I' | b'L' => b'1',
            other => other,
        };
        if !ALPHABET.contains(&c) {
            return Err(RecoveryError::Malformed);
        }
        let slot = out.get_mut(n).ok_or(RecoveryError::Malformed)?;
        *slot = c;
        n += 1;
    }
    if n != CODE_CHARS {
        return Err(RecoveryError::Malformed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::test_rng;

    #[test]
    fn codes_have_the_documented_shape() {
        let (codes, set) = RecoveryCodeSet::generate(&test_rng(), 12).unwrap();
        assert_eq!(set.remaining(), 12);
        for code in &codes {
            let s = code.expose();
            assert_eq!(s.len(), 19);
            assert_eq!(s.split('-').count(), 4);
            assert!(s.bytes().all(|b| b == b'-' || ALPHABET.contains(&b)));
        }
        let mut unique: Vec<&str> = codes.iter().map(RecoveryCode::expose).collect();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 12);
    }

    #[test]
    fn each_code_works_once_in_any_order() {
        let (codes, mut set) = RecoveryCodeSet::generate(&test_rng(), 5).unwrap();
        for (i, code) in codes.iter().enumerate().rev() {
            assert_eq!(set.consume(code.expose()).unwrap(), i);
            assert_eq!(set.consume(code.expose()), Err(RecoveryError::Invalid));
        }
        assert_eq!(set.remaining(), 0);
    }

    #[test]
    #[allow(deprecated)] // ring's only fixed generator lives in its test module
    fn lookalikes_and_formatting_are_forgiven() {
        use ring::test::rand::FixedByteRandom;
        // A fixed generator makes every code "0000-0000-0000-0000"; the
        // letter O then reads as zero.
        let (_, mut set) = RecoveryCodeSet::generate(&FixedByteRandom { byte: 0 }, 1).unwrap();
        assert_eq!(set.consume(" oooo oooo-OOOO 0000 "), Ok(0));
    }

    #[test]
    fn malformed_input_is_refused() {
        let (_, mut set) = RecoveryCodeSet::generate(&test_rng(), 1).unwrap();
        for bad in [
            "",
            "ABCD",
            "ABCD-EFGH-JKMN-PQRS-T",
            "ABCD-EFGH-JKMN-PQRU",
            "ÄBCD-EFGH-JKMN-PQRS",
        ] {
            assert_eq!(set.consume(bad), Err(RecoveryError::Malformed), "{bad}");
        }
        assert_eq!(set.remaining(), 1);
    }

    #[test]
    fn stored_round_trip_keeps_used_marks() {
        let (codes, mut set) = RecoveryCodeSet::generate(&test_rng(), 3).unwrap();
        set.consume(codes[1].expose()).unwrap();
        let stored = set.to_stored();
        assert!(!stored.contains(codes[0].expose()));
        let mut back = RecoveryCodeSet::from_stored(&stored).unwrap();
        assert_eq!(back, set);
        assert_eq!(back.consume(codes[1].expose()), Err(RecoveryError::Invalid));
        assert_eq!(back.consume(codes[2].expose()), Ok(1));
        for bad in ["", "rc2$", "rc1$AAAA$", "rc1$x$y$z"] {
            assert!(matches!(
                RecoveryCodeSet::from_stored(bad),
                Err(RecoveryError::BadStored { .. })
            ));
        }
    }

    #[test]
    fn count_is_bounded_and_debug_is_safe() {
        let rng = test_rng();
        assert_eq!(
            RecoveryCodeSet::generate(&rng, 0).unwrap_err(),
            RecoveryError::BadCount { count: 0 }
        );
        assert!(RecoveryCodeSet::generate(&rng, MAX_CODES + 1).is_err());
        let (codes, set) = RecoveryCodeSet::generate(&rng, 2).unwrap();
        assert!(!format!("{codes:?}{set:?}").contains(&codes[0].expose()[..4]));
    }
}
