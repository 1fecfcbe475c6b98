//! Small helpers shared by the authentication modules: constant-time
//! comparison, random bytes from the caller's generator, and a zeroizing
//! byte buffer whose `Debug` never shows its contents.

use carevox_redact::Secret;
use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Errors of the secret helpers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RandomError {
    /// The caller's random generator failed to produce bytes while drawing
    /// fresh randomness (a salt, a secret, a session token, a recovery code)
    /// from the `&dyn SecureRandom` the caller passed in.
    #[error("the random generator failed while drawing {what}")]
    Failed {
        /// What was being drawn, e.g. `"a password salt"`.
        what: &'static str,
    },
}

/// Fills `out` from `rng`, naming `what` in the error.
pub(crate) fn fill(
    rng: &dyn SecureRandom,
    out: &mut [u8],
    what: &'static str,
) -> Result<(), RandomError> {
    rng.fill(out).map_err(|_| RandomError::Failed { what })
}

/// Compares two byte strings in time that depends only on their lengths.
///
/// Lengths are not secret in any of this crate's uses (digests, codes of a
/// configured length), so a length mismatch returns `false` at once.
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A heap buffer of secret bytes: zeroized on drop, redacted in `Debug`
/// (it holds a [`Secret`]), compared in constant time.
#[derive(Debug, Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Secret<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are wiped when this value is dropped.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Secret::new(bytes))
    }

    /// Copies `bytes` into a new secret buffer.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }

    /// The secret bytes. Handle with care: do not log or copy them around.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// Number of secret bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.expose().len()
    }

    /// Whether the buffer is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.expose().is_empty()
    }
}

impl PartialEq for SecretBytes {
    /// Constant-time in the contents (lengths are not secret).
    fn eq(&self, other: &Self) -> bool {
        ct_eq(self.expose(), other.expose())
    }
}

impl Eq for SecretBytes {}

/// The system generator, for unit tests only.
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests draw real randomness; outcomes do not depend on it
pub(crate) fn test_rng() -> ring::rand::SystemRandom {
    ring::rand::SystemRandom::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_contents_and_lengths() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn secret_bytes_debug_is_redacted() {
        let s = SecretBytes::from_slice(b"hunter2");
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("<redacted>"));
        assert_eq!(s.expose(), b"hunter2");
    }
}
