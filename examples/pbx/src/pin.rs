//! Voicemail PINs: the digits a user types (DTMF) after calling the
//! voicemail number from their own, digest-authenticated phone.
//!
//! A PIN is [`MIN_PIN_DIGITS`] to [`MAX_PIN_DIGITS`] ASCII digits. It is
//! stored only as a PHC string of carevox-authz's [`PasswordHasher`]
//! (Argon2id by default; PBKDF2-SHA256 hashes verify too), in the user's
//! `voicemail_pin` of `users.toml` ([`crate::store`]). The string carries its
//! own parameters and salt, so a hash made with any accepted parameters
//! verifies; a stored string that is not such a hash is refused when the
//! file is loaded ([`VoicemailPin::from_phc`]).
//!
//! A PIN has few possible values: its hash slows an offline guess but
//! cannot stop one, so `users.toml` stays a password file, and the caller
//! of [`VoicemailPin::verify`] must limit online guesses (carevox-authz's
//! lockout). A verification costs what the hash was made with (for the
//! default, 19 MiB and tens of milliseconds): call it off the async runtime.
//!
//! For a user without a PIN (or an unknown one), [`verify_or_dummy`] does
//! the same work as a wrong PIN, so that the time of a refusal does not say
//! which it was.
//!
//! ```
//! use carevox::authz::password::{Argon2Params, HashAlgorithm, PasswordHasher};
//! use carevox_pbx::pin::{PinError, VoicemailPin, verify_or_dummy};
//! use ring::rand::SystemRandom;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rng = SystemRandom::new();
//! // `PasswordHasher::default()` in production; the example keeps the cost tiny.
//! let small = Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
//! let hasher = PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(small))?;
//! let pin = VoicemailPin::hash("2468", &hasher, &rng)?;
//! assert!(pin.verify("2468"));
//! assert!(!pin.verify("2469"));
//! assert!(!verify_or_dummy(None, "2468"));
//! assert_eq!(VoicemailPin::hash("12a4", &hasher, &rng).err(), Some(PinError::Invalid));
//! # Ok(())
//! # }
//! ```

use carevox::authz::password::{Password, PasswordError, PasswordHasher};
use carevox::redact::Secret;
use ring::rand::SecureRandom;

/// The fewest digits a PIN has.
pub const MIN_PIN_DIGITS: usize = 4;

/// The most digits a PIN has.
pub const MAX_PIN_DIGITS: usize = 12;

/// Why a PIN or a stored PIN hash was refused. No variant carries the PIN
/// or the hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// The PIN is not [`MIN_PIN_DIGITS`] to [`MAX_PIN_DIGITS`] ASCII digits.
    #[error("a voicemail PIN is 4 to 12 digits, 0 to 9")]
    Invalid,
    /// A stored value is not a PHC string of an algorithm carevox-authz
    /// verifies, or its parameters are out of range.
    #[error("not a PIN hash that can be verified: {0}")]
    Stored(#[source] PasswordError),
    /// The PIN could not be hashed (the random source failed, or the
    /// hasher refused its parameters).
    #[error("the PIN could not be hashed: {0}")]
    Hash(#[source] PasswordError),
}

/// Whether `pin` has the form of a PIN: 4 to 12 ASCII digits.
pub fn is_valid_pin(pin: &str) -> bool {
    (MIN_PIN_DIGITS..=MAX_PIN_DIGITS).contains(&pin.len())
        && pin.bytes().all(|b| b.is_ascii_digit())
}

/// A user's voicemail PIN, as the PHC string of its hash. `Debug` prints
/// `<redacted>` for it: the hash of so short a secret is almost the secret.
/// Zeroized on drop.
#[derive(Debug, Clone)]
pub struct VoicemailPin {
    phc: Secret<String>,
}

impl VoicemailPin {
    /// Hashes `pin` with `hasher` and a fresh salt from `rng`.
    ///
    /// # Errors
    /// [`PinError::Invalid`] when `pin` is not 4 to 12 ASCII digits,
    /// [`PinError::Hash`] when hashing fails.
    pub fn hash(
        pin: &str,
        hasher: &PasswordHasher,
        rng: &dyn SecureRandom,
    ) -> Result<VoicemailPin, PinError> {
        if !is_valid_pin(pin) {
            return Err(PinError::Invalid);
        }
        let pin = Password::new(pin).map_err(|_| PinError::Invalid)?;
        let phc = hasher.hash(&pin, rng).map_err(PinError::Hash)?;
        Ok(VoicemailPin {
            phc: Secret::new(phc),
        })
    }

    /// A stored hash (the `voicemail_pin` of `users.toml`), checked to be a
    /// PHC string that [`PasswordHasher`] verifies, with parameters within
    /// its default limits. No hashing is done.
    ///
    /// # Errors
    /// [`PinError::Stored`] otherwise (the string is zeroized).
    pub fn from_phc(phc: String) -> Result<VoicemailPin, PinError> {
        let phc = Secret::new(phc);
        PasswordHasher::default()
            .needs_rehash(phc.expose())
            .map_err(PinError::Stored)?;
        Ok(VoicemailPin { phc })
    }

    /// Whether `typed` is the PIN. Input that is not 4 to 12 digits is
    /// refused at once, without hashing (that says nothing about the stored
    /// PIN); otherwise the hash is computed with the stored parameters and
    /// compared in constant time.
    pub fn verify(&self, typed: &str) -> bool {
        if !is_valid_pin(typed) {
            return false;
        }
        let Ok(typed) = Password::new(typed) else {
            return false;
        };
        PasswordHasher::default()
            .verify(&typed, self.phc.expose())
            .is_ok()
    }

    /// The PHC string, for writing `users.toml`.
    pub(crate) fn phc(&self) -> &str {
        self.phc.expose()
    }
}

/// Whether `typed` is the PIN `pin`; for a user without a PIN (`None`:
/// none set, or no such user) it does the work of one verification with
/// the default [`PasswordHasher`] and returns `false`, so that a refusal
/// takes as long as for a wrong PIN hashed with the default parameters.
/// Input that is not 4 to 12 digits is refused at once either way.
pub fn verify_or_dummy(pin: Option<&VoicemailPin>, typed: &str) -> bool {
    if let Some(pin) = pin {
        return pin.verify(typed);
    }
    if is_valid_pin(typed)
        && let Ok(typed) = Password::new(typed)
    {
        // Only the time matters: the result is always a mismatch.
        let _ = PasswordHasher::default().dummy_verify(&typed);
    }
    false
}

#[cfg(test)]
mod tests {
    use carevox::authz::password::{Argon2Params, HashAlgorithm};
    use carevox::redact::debug_leak;

    use super::*;

    fn small() -> PasswordHasher {
        PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn rng() -> ring::rand::SystemRandom {
        #[allow(clippy::disallowed_methods)] // the test draws real randomness
        ring::rand::SystemRandom::new()
    }

    #[test]
    fn a_hashed_pin_verifies_and_a_wrong_one_does_not() {
        let pin = VoicemailPin::hash("2468", &small(), &rng()).unwrap_or_else(|e| panic!("{e}"));
        assert!(pin.phc().starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(pin.verify("2468"));
        assert!(!pin.verify("2469"));
        assert!(!pin.verify("24680"));
        assert!(!pin.verify(""));
        assert!(!pin.verify("2468\n"));
        assert!(verify_or_dummy(Some(&pin), "2468"));
        assert!(!verify_or_dummy(Some(&pin), "8642"));
        assert!(!verify_or_dummy(None, "2468"));
        assert!(!verify_or_dummy(None, "x"));
        // A stored string reads back as the same PIN.
        let again = VoicemailPin::from_phc(pin.phc().to_owned()).unwrap_or_else(|e| panic!("{e}"));
        assert!(again.verify("2468"));
        // The longest and shortest PINs are accepted.
        let long =
            VoicemailPin::hash("012345678901", &small(), &rng()).unwrap_or_else(|e| panic!("{e}"));
        assert!(long.verify("012345678901"));
        assert!(!long.verify("012345678902"));
    }

    #[test]
    fn a_pin_that_is_not_4_to_12_digits_is_refused() {
        for bad in [
            "",
            "123",
            "1234567890123",
            "12a4",
            "12 34",
            " 1234",
            "1234\n",
            "١٢٣٤",
            "*123",
            "123#",
        ] {
            assert_eq!(
                VoicemailPin::hash(bad, &small(), &rng()).err(),
                Some(PinError::Invalid),
                "{bad:?}"
            );
        }
        assert!(is_valid_pin("0000"));
        assert!(is_valid_pin("000000000000"));
    }

    #[test]
    fn a_stored_value_that_is_no_verifiable_hash_is_refused() {
        for bad in [
            "",
            "2468",
            "$argon2i$v=19$m=64,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=4194304,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "$argon2id$v=19$m=64,t=1,p=1$!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(
                matches!(
                    VoicemailPin::from_phc(bad.to_owned()),
                    Err(PinError::Stored(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_shows_neither_the_hash_nor_the_pin() {
        let pin = VoicemailPin::hash("97531", &small(), &rng()).unwrap_or_else(|e| panic!("{e}"));
        let phc = pin.phc().to_owned();
        let hash = phc.rsplit('$').next().unwrap_or_else(|| panic!("{phc}"));
        assert_eq!(debug_leak(&pin, &[&phc, hash, "97531"]), None);
        assert_eq!(debug_leak(&PinError::Invalid, &["97531"]), None);
    }
}
