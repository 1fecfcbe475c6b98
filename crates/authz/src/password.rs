//! Password hashing and verification.
//!
//! # Choice of function
//!
//! New hashes use **Argon2id** (RFC 9106) through the RustCrypto `argon2`
//! crate. Argon2id is memory-hard: each guess costs an attacker the
//! configured memory as well as time, which blunts GPU and ASIC cracking of a
//! stolen hash table far better than an iterated HMAC, where a guess costs
//! only compute. The default parameters are the OWASP Password Storage Cheat
//! Sheet's first choice (19 MiB, 2 passes, 1 lane); [`Argon2Params::RFC9106_LOW_MEMORY`]
//! is RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes).
//!
//! **PBKDF2-HMAC-SHA256** from `ring` is supported too, for deployments that
//! must use FIPS 140-approved primitives only (Argon2 is not approved) and for
//! migrating hashes made elsewhere; its default is OWASP's 600,000 iterations.
//! Both kinds always verify, whichever one the [`PasswordHasher`] is set to
//! produce, so a deployment can move between them: after a successful
//! verification, [`Verified::needs_rehash`] says when the stored hash no
//! longer matches the configured algorithm or parameters, and the caller
//! stores a fresh hash of the password it already holds.
//!
//! # Storage format
//!
//! Hashes are PHC strings, which carry their own parameters and salt:
//!
//! ```text
//! $argon2id$v=19$m=19456,t=2,p=1$<salt, B64>$<hash, B64>
//! $pbkdf2-sha256$i=600000,l=32$<salt, B64>$<hash, B64>
//! ```
//!
//! `B64` is standard base64 without padding. Salts are 16 bytes from the
//! caller's [`SecureRandom`]; hashes are 32 bytes.
//!
//! # Defences
//!
//! - The computed hash is compared with the stored one in constant time.
//! - A password longer than [`MAX_PASSWORD_BYTES`] is refused before any work,
//!   and a stored string whose parameters exceed [`VerifyLimits`] is refused
//!   before hashing, so neither a huge input nor a tampered row can make a
//!   login request expensive.
//! - [`Password`] zeroizes its buffer on drop and prints `<redacted>`.
//! - For an account that does not exist, call [`PasswordHasher::dummy_verify`]
//!   so that the reply takes as long as a real verification.
//! - No normalisation is applied: the caller passes the exact string the user
//!   typed (apply NFKC first if the product wants it, and always the same way).
//!
//! # Example
//!
//! ```
//! use carevox_authz::password::{Argon2Params, HashAlgorithm, Password, PasswordHasher};
//! use ring::rand::SystemRandom;
//!
//! # fn main() -> Result<(), carevox_authz::password::PasswordError> {
//! let rng = SystemRandom::new();
//! // `PasswordHasher::default()` is the secure choice; the doctest keeps the cost tiny.
//! let small = Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };
//! let hasher = PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(small))?;
//! let stored = hasher.hash(&Password::new("correct horse battery staple")?, &rng)?;
//! assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
//!
//! let verified = hasher.verify(&Password::new("correct horse battery staple")?, &stored)?;
//! assert!(!verified.needs_rehash);
//! assert!(hasher.verify(&Password::new("wrong")?, &stored).is_err());
//! # Ok(())
//! # }
//! ```

use core::num::NonZeroU32;

use base64ct::{Base64Unpadded, Encoding};
use carevox_redact::Secret;
use ring::rand::SecureRandom;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::secret::{RandomError, ct_eq, fill};

/// The longest password accepted, in bytes of UTF-8.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Length of the salts this module draws.
pub const SALT_LEN: usize = 16;

/// Length of the hashes this module writes.
pub const HASH_LEN: usize = 32;

const ARGON2ID_ID: &str = "argon2id";
const PBKDF2_SHA256_ID: &str = "pbkdf2-sha256";
const ARGON2_VERSION: u32 = 0x13;

/// Errors of password handling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The password is empty.
    #[error("the password is empty")]
    Empty,
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password is {len} bytes long; at most {max} bytes are accepted")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The password does not match the stored hash.
    #[error("the password does not match")]
    Mismatch,
    /// The stored hash is not a well-formed PHC string.
    #[error("the stored password hash is malformed: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The stored hash names an algorithm this module does not verify.
    #[error("the stored password hash uses an unsupported algorithm")]
    UnsupportedAlgorithm,
    /// A parameter (of a stored hash or of a configuration) is out of range.
    #[error("password hash parameter `{name}` is {value}, outside {min}..={max}")]
    ParameterOutOfRange {
        /// The parameter's PHC name (`m`, `t`, `p`, `i`, `l`, `salt`).
        name: &'static str,
        /// Its value.
        value: u64,
        /// The smallest accepted value.
        min: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// The configured parameters are below the secure minimum.
    #[error(
        "the configured password hash cost is below the secure minimum ({what}); use `dangerous_low_cost` only in tests"
    )]
    CostTooLow {
        /// Which minimum was not met.
        what: &'static str,
    },
    /// The Argon2 implementation refused the parameters.
    #[error("the Argon2 implementation refused the parameters")]
    Argon2,
    /// The caller's random generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A password as typed by a user: zeroized on drop, redacted in `Debug`,
/// non-empty and at most [`MAX_PASSWORD_BYTES`] long.
#[derive(Debug, Clone, Zeroize, ZeroizeOnDrop)]
pub struct Password(Secret<String>);

impl Password {
    /// Wraps a password, refusing an empty or over-long one.
    ///
    /// # Errors
    /// [`PasswordError::Empty`] or [`PasswordError::TooLong`] (the rejected
    /// string is zeroized before returning).
    pub fn new(password: impl Into<String>) -> Result<Self, PasswordError> {
        let mut password: String = password.into();
        let len = password.len();
        if len == 0 {
            return Err(PasswordError::Empty);
        }
        if len > MAX_PASSWORD_BYTES {
            password.zeroize();
            return Err(PasswordError::TooLong {
                len,
                max: MAX_PASSWORD_BYTES,
            });
        }
        Ok(Self(Secret::new(password)))
    }

    /// The password text.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Argon2Params {
    /// Memory per hash, in KiB (`m`).
    pub memory_kib: u32,
    /// Number of passes over the memory (`t`).
    pub iterations: u32,
    /// Number of lanes (`p`).
    pub parallelism: u32,
}

impl Argon2Params {
    /// OWASP's first recommendation: 19 MiB, 2 passes, 1 lane. The default.
    pub const OWASP: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// RFC 9106 section 4, second recommended option: 64 MiB, 3 passes, 4
    /// lanes (for servers that can afford the memory).
    pub const RFC9106_LOW_MEMORY: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 4,
    };
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP
    }
}

/// OWASP's PBKDF2-HMAC-SHA256 iteration count, the default and the minimum.
pub const PBKDF2_SHA256_MIN_ITERATIONS: u32 = 600_000;

/// The algorithm and parameters new hashes are made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// Argon2id, version 0x13 (the default).
    Argon2id(Argon2Params),
    /// PBKDF2 with HMAC-SHA256 (FIPS-approved; not memory-hard).
    Pbkdf2Sha256 {
        /// Number of iterations.
        iterations: NonZeroU32,
    },
}

impl Default for HashAlgorithm {
    fn default() -> Self {
        Self::Argon2id(Argon2Params::OWASP)
    }
}

/// Upper bounds on the parameters of a stored hash, checked before any
/// hashing work so that a tampered or hostile row cannot exhaust the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyLimits {
    /// Largest Argon2 memory cost, KiB.
    pub max_memory_kib: u32,
    /// Largest Argon2 pass count.
    pub max_iterations: u32,
    /// Largest Argon2 lane count.
    pub max_parallelism: u32,
    /// Largest PBKDF2 iteration count.
    pub max_pbkdf2_iterations: u32,
}

impl Default for VerifyLimits {
    fn default() -> Self {
        Self {
            max_memory_kib: 1024 * 1024,
            max_iterations: 32,
            max_parallelism: 16,
            max_pbkdf2_iterations: 10_000_000,
        }
    }
}

/// The outcome of a successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "when `needs_rehash` is true, store a fresh hash of the password"]
pub struct Verified {
    /// The stored hash uses another algorithm or other parameters than the
    /// hasher is configured with: hash the password again and store it.
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords. Cheap to clone; `Send + Sync`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHasher {
    algorithm: HashAlgorithm,
    limits: VerifyLimits,
}

impl Default for PasswordHasher {
    /// Argon2id with [`Argon2Params::OWASP`].
    fn default() -> Self {
        Self {
            algorithm: HashAlgorithm::default(),
            limits: VerifyLimits::default(),
        }
    }
}

impl PasswordHasher {
    /// A hasher producing `algorithm`, which must meet the secure minimum:
    /// for Argon2id at least 7 MiB and at least OWASP's memory-time product
    /// (35 MiB-passes, e.g. 19 MiB x 2); for PBKDF2 at least
    /// [`PBKDF2_SHA256_MIN_ITERATIONS`].
    ///
    /// # Errors
    /// [`PasswordError::CostTooLow`] below the minimum, or
    /// [`PasswordError::ParameterOutOfRange`] above [`VerifyLimits`].
    pub fn new(algorithm: HashAlgorithm) -> Result<Self, PasswordError> {
        match algorithm {
            HashAlgorithm::Argon2id(p) => {
                if p.memory_kib < 7 * 1024 {
                    return Err(PasswordError::CostTooLow {
                        what: "Argon2id memory of 7 MiB",
                    });
                }
                if u64::from(p.memory_kib) * u64::from(p.iterations) < 35 * 1024 {
                    return Err(PasswordError::CostTooLow {
                        what: "Argon2id memory x passes of 35 MiB",
                    });
                }
            }
            HashAlgorithm::Pbkdf2Sha256 { iterations } => {
                if iterations.get() < PBKDF2_SHA256_MIN_ITERATIONS {
                    return Err(PasswordError::CostTooLow {
                        what: "600000 PBKDF2 iterations",
                    });
                }
            }
        }
        Self::dangerous_low_cost(algorithm)
    }

    /// A hasher producing `algorithm` without the secure minimum: for tests
    /// and doctests that must run fast. Never use it in production.
    ///
    /// # Errors
    /// [`PasswordError::ParameterOutOfRange`] when a parameter is outside
    /// what Argon2 accepts or above [`VerifyLimits`].
    pub fn dangerous_low_cost(algorithm: HashAlgorithm) -> Result<Self, PasswordError> {
        let limits = VerifyLimits::default();
        match algorithm {
            HashAlgorithm::Argon2id(p) => check_argon2_params(&p, &limits)?,
            HashAlgorithm::Pbkdf2Sha256 { iterations } => {
                check_range("i", iterations.get(), 1, limits.max_pbkdf2_iterations)?;
            }
        }
        Ok(Self { algorithm, limits })
    }

    /// Replaces the bounds applied to stored hashes before verifying them.
    #[must_use]
    pub fn with_verify_limits(mut self, limits: VerifyLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The algorithm new hashes are made with.
    #[must_use]
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// Hashes `password` with a fresh 16-byte salt from `rng`, returning a
    /// PHC string to store.
    ///
    /// # Errors
    /// [`PasswordError::Random`] when `rng` fails, [`PasswordError::Argon2`]
    /// if the Argon2 implementation refuses the parameters.
    pub fn hash(
        &self,
        password: &Password,
        rng: &dyn SecureRandom,
    ) -> Result<String, PasswordError> {
        let mut salt = [0u8; SALT_LEN];
        fill(rng, &mut salt, "a password salt")?;
        let mut out = Zeroizing::new([0u8; HASH_LEN]);
        let phc = match self.algorithm {
            HashAlgorithm::Argon2id(p) => {
                argon2id(&p, password, &salt, out.as_mut())?;
                format!(
                    "${ARGON2ID_ID}$v=19$m={},t={},p={}${}${}",
                    p.memory_kib,
                    p.iterations,
                    p.parallelism,
                    Base64Unpadded::encode_string(&salt),
                    Base64Unpadded::encode_string(out.as_ref())
                )
            }
            HashAlgorithm::Pbkdf2Sha256 { iterations } => {
                pbkdf2_sha256(iterations, password, &salt, out.as_mut());
                format!(
                    "${PBKDF2_SHA256_ID}$i={},l={HASH_LEN}${}${}",
                    iterations.get(),
                    Base64Unpadded::encode_string(&salt),
                    Base64Unpadded::encode_string(out.as_ref())
                )
            }
        };
        Ok(phc)
    }

    /// Verifies `password` against a stored PHC string, in constant time
    /// with respect to the hash contents.
    ///
    /// # Errors
    /// [`PasswordError::Mismatch`] for a wrong password; a parsing or
    /// parameter error for a stored string that is not one of ours or that
    /// exceeds [`VerifyLimits`] (no hashing is done then).
    pub fn verify(&self, password: &Password, stored: &str) -> Result<Verified, PasswordError> {
        let parsed = parse_phc(stored, &self.limits)?;
        let mut computed = Zeroizing::new(vec![0u8; parsed.hash.len()]);
        match parsed.algorithm {
            HashAlgorithm::Argon2id(p) => argon2id(&p, password, &parsed.salt, &mut computed)?,
            HashAlgorithm::Pbkdf2Sha256 { iterations } => {
                pbkdf2_sha256(iterations, password, &parsed.salt, &mut computed);
            }
        }
        if !ct_eq(&computed, &parsed.hash) {
            return Err(PasswordError::Mismatch);
        }
        Ok(Verified {
            needs_rehash: self.differs(&parsed),
        })
    }

    /// Whether a stored hash was made with other parameters than this
    /// hasher's (algorithm, costs, salt or hash length).
    ///
    /// # Errors
    /// The parsing errors of [`verify`](Self::verify).
    pub fn needs_rehash(&self, stored: &str) -> Result<bool, PasswordError> {
        Ok(self.differs(&parse_phc(stored, &self.limits)?))
    }

    /// Does the work of one verification against a fixed hash and returns
    /// [`PasswordError::Mismatch`]: call it when the account does not exist,
    /// so that the reply time does not reveal that.
    pub fn dummy_verify(&self, password: &Password) -> PasswordError {
        let salt = [0x5a_u8; SALT_LEN];
        let mut out = Zeroizing::new([0u8; HASH_LEN]);
        let result = match self.algorithm {
            HashAlgorithm::Argon2id(p) => argon2id(&p, password, &salt, out.as_mut()),
            HashAlgorithm::Pbkdf2Sha256 { iterations } => {
                pbkdf2_sha256(iterations, password, &salt, out.as_mut());
                Ok(())
            }
        };
        // The hash itself is thrown away: only the work matters.
        result.err().unwrap_or(PasswordError::Mismatch)
    }

    fn differs(&self, parsed: &ParsedPhc) -> bool {
        parsed.algorithm != self.algorithm
            || parsed.salt.len() != SALT_LEN
            || parsed.hash.len() != HASH_LEN
    }
}

struct ParsedPhc {
    algorithm: HashAlgorithm,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

fn check_range(name: &'static str, value: u32, min: u32, max: u32) -> Result<(), PasswordError> {
    if value < min || value > max {
        return Err(PasswordError::ParameterOutOfRange {
            name,
            value: value.into(),
            min: min.into(),
            max: max.into(),
        });
    }
    Ok(())
}

fn check_argon2_params(p: &Argon2Params, limits: &VerifyLimits) -> Result<(), PasswordError> {
    check_range("p", p.parallelism, 1, limits.max_parallelism)?;
    check_range("t", p.iterations, 1, limits.max_iterations)?;
    // Argon2 needs at least 8 blocks of 1 KiB per lane.
    let min_memory = p.parallelism.saturating_mul(8);
    check_range("m", p.memory_kib, min_memory, limits.max_memory_kib)
}

fn argon2id(
    p: &Argon2Params,
    password: &Password,
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), PasswordError> {
    let params = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(out.len()))
        .map_err(|_| PasswordError::Argon2)?;
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(password.expose().as_bytes(), salt, out)
        .map_err(|_| PasswordError::Argon2)
}

fn pbkdf2_sha256(iterations: NonZeroU32, password: &Password, salt: &[u8], out: &mut [u8]) {
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password.expose().as_bytes(),
        out,
    );
}

/// Parses `k=v,k=v` with the keys in `keys`, each exactly once.
fn parse_params<const N: usize>(
    text: &str,
    keys: [&'static str; N],
) -> Result<[u32; N], PasswordError> {
    let mut values: [Option<u32>; N] = [None; N];
    for pair in text.split(',') {
        let (key, value) = pair.split_once('=').ok_or(PasswordError::Malformed {
            reason: "a parameter lacks `=`",
        })?;
        let slot = keys
            .iter()
            .position(|k| *k == key)
            .and_then(|i| values.get_mut(i))
            .ok_or(PasswordError::Malformed {
                reason: "unknown parameter",
            })?;
        if slot.is_some() {
            return Err(PasswordError::Malformed {
                reason: "a parameter appears twice",
            });
        }
        *slot = Some(parse_decimal(value)?);
    }
    let mut out = [0u32; N];
    for (o, v) in out.iter_mut().zip(values) {
        *o = v.ok_or(PasswordError::Malformed {
            reason: "a required parameter is missing",
        })?;
    }
    Ok(out)
}

fn parse_decimal(text: &str) -> Result<u32, PasswordError> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PasswordError::Malformed {
            reason: "a parameter is not a decimal number",
        });
    }
    text.parse().map_err(|_| PasswordError::Malformed {
        reason: "a parameter does not fit in 32 bits",
    })
}

fn decode_b64(
    text: &str,
    name: &'static str,
    min: usize,
    max: usize,
) -> Result<Vec<u8>, PasswordError> {
    // Bound the work before decoding: 4 characters per 3 bytes.
    if text.len() > max.saturating_mul(4).div_ceil(3) {
        return Err(PasswordError::ParameterOutOfRange {
            name,
            value: u64::try_from(text.len()).unwrap_or(u64::MAX),
            min: min as u64,
            max: max as u64,
        });
    }
    let bytes = Base64Unpadded::decode_vec(text).map_err(|_| PasswordError::Malformed {
        reason: "salt or hash is not unpadded base64",
    })?;
    if bytes.len() < min || bytes.len() > max {
        return Err(PasswordError::ParameterOutOfRange {
            name,
            value: bytes.len() as u64,
            min: min as u64,
            max: max as u64,
        });
    }
    Ok(bytes)
}

fn parse_phc(stored: &str, limits: &VerifyLimits) -> Result<ParsedPhc, PasswordError> {
    if stored.len() > 512 {
        return Err(PasswordError::Malformed {
            reason: "longer than 512 bytes",
        });
    }
    let mut fields = stored.split('$');
    if fields.next() != Some("") {
        return Err(PasswordError::Malformed {
            reason: "does not start with `$`",
        });
    }
    let id = fields.next().ok_or(PasswordError::Malformed {
        reason: "no algorithm",
    })?;
    let (algorithm, declared_len) = match id {
        ARGON2ID_ID => {
            let version = fields.next().ok_or(PasswordError::Malformed {
                reason: "no version",
            })?;
            let [v] = parse_params(version, ["v"])?;
            if v != ARGON2_VERSION {
                return Err(PasswordError::UnsupportedAlgorithm);
            }
            let params = fields.next().ok_or(PasswordError::Malformed {
                reason: "no parameters",
            })?;
            let [m, t, p] = parse_params(params, ["m", "t", "p"])?;
            let params = Argon2Params {
                memory_kib: m,
                iterations: t,
                parallelism: p,
            };
            check_argon2_params(&params, limits)?;
            (HashAlgorithm::Argon2id(params), None)
        }
        PBKDF2_SHA256_ID => {
            let params = fields.next().ok_or(PasswordError::Malformed {
                reason: "no parameters",
            })?;
            let [i, l] = parse_params(params, ["i", "l"])?;
            check_range("i", i, 1, limits.max_pbkdf2_iterations)?;
            check_range("l", l, 16, 64)?;
            let iterations = NonZeroU32::new(i).ok_or(PasswordError::Malformed {
                reason: "zero iterations",
            })?;
            (HashAlgorithm::Pbkdf2Sha256 { iterations }, Some(l))
        }
        _ => return Err(PasswordError::UnsupportedAlgorithm),
    };
    let salt = fields
        .next()
        .ok_or(PasswordError::Malformed { reason: "no salt" })?;
    let hash = fields
        .next()
        .ok_or(PasswordError::Malformed { reason: "no hash" })?;
    if fields.next().is_some() {
        return Err(PasswordError::Malformed {
            reason: "trailing fields",
        });
    }
    let salt = decode_b64(salt, "salt", 8, 64)?;
    let hash = decode_b64(hash, "hash", 16, 64)?;
    if let Some(l) = declared_len
        && usize::try_from(l).ok() != Some(hash.len())
    {
        return Err(PasswordError::Malformed {
            reason: "`l` differs from the stored hash length",
        });
    }
    Ok(ParsedPhc {
        algorithm,
        salt,
        hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::test_rng;

    fn small() -> PasswordHasher {
        PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(Argon2Params {
            memory_kib: 32,
            iterations: 1,
            parallelism: 1,
        }))
        .unwrap()
    }

    fn small_pbkdf2() -> PasswordHasher {
        PasswordHasher::dangerous_low_cost(HashAlgorithm::Pbkdf2Sha256 {
            iterations: NonZeroU32::new(10).unwrap(),
        })
        .unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::new(s).unwrap()
    }

    #[test]
    fn default_is_argon2id_owasp() {
        assert_eq!(
            PasswordHasher::default().algorithm(),
            HashAlgorithm::Argon2id(Argon2Params::OWASP)
        );
        assert!(PasswordHasher::new(HashAlgorithm::Argon2id(Argon2Params::OWASP)).is_ok());
        assert!(
            PasswordHasher::new(HashAlgorithm::Argon2id(Argon2Params::RFC9106_LOW_MEMORY)).is_ok()
        );
    }

    #[test]
    fn secure_constructor_refuses_low_cost() {
        let weak = HashAlgorithm::Argon2id(Argon2Params {
            memory_kib: 4096,
            iterations: 10,
            parallelism: 1,
        });
        assert!(matches!(
            PasswordHasher::new(weak),
            Err(PasswordError::CostTooLow { .. })
        ));
        let weak = HashAlgorithm::Argon2id(Argon2Params {
            memory_kib: 8192,
            iterations: 1,
            parallelism: 1,
        });
        assert!(matches!(
            PasswordHasher::new(weak),
            Err(PasswordError::CostTooLow { .. })
        ));
        let weak = HashAlgorithm::Pbkdf2Sha256 {
            iterations: NonZeroU32::new(100_000).unwrap(),
        };
        assert!(matches!(
            PasswordHasher::new(weak),
            Err(PasswordError::CostTooLow { .. })
        ));
    }

    #[test]
    fn password_bounds_and_redaction() {
        assert_eq!(Password::new("").unwrap_err(), PasswordError::Empty);
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(
            Password::new(long),
            Err(PasswordError::TooLong { len: 1025, .. })
        ));
        assert!(Password::new("x".repeat(MAX_PASSWORD_BYTES)).is_ok());
        let shown = format!("{:?}", pw("s3cret-value"));
        assert!(!shown.contains("s3cret"));
    }

    #[test]
    fn argon2id_round_trip_and_mismatch() {
        let rng = test_rng();
        let h = small();
        let stored = h.hash(&pw("hunter2"), &rng).unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=32,t=1,p=1$"));
        assert!(!h.verify(&pw("hunter2"), &stored).unwrap().needs_rehash);
        assert_eq!(
            h.verify(&pw("hunter3"), &stored).unwrap_err(),
            PasswordError::Mismatch
        );
        // Same password, new salt, different string.
        assert_ne!(stored, h.hash(&pw("hunter2"), &rng).unwrap());
    }

    #[test]
    fn pbkdf2_round_trip_and_cross_verification() {
        let rng = test_rng();
        let p = small_pbkdf2();
        let stored = p.hash(&pw("hunter2"), &rng).unwrap();
        assert!(stored.starts_with("$pbkdf2-sha256$i=10,l=32$"));
        assert!(!p.verify(&pw("hunter2"), &stored).unwrap().needs_rehash);
        // An Argon2id hasher still verifies it, and asks for a rehash.
        assert!(
            small()
                .verify(&pw("hunter2"), &stored)
                .unwrap()
                .needs_rehash
        );
        assert_eq!(
            small().verify(&pw("x"), &stored).unwrap_err(),
            PasswordError::Mismatch
        );
    }

    #[test]
    fn parameter_change_needs_rehash() {
        let rng = test_rng();
        let stored = small().hash(&pw("pw"), &rng).unwrap();
        let bigger = PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }))
        .unwrap();
        assert!(bigger.needs_rehash(&stored).unwrap());
        assert!(!small().needs_rehash(&stored).unwrap());
        assert!(bigger.verify(&pw("pw"), &stored).unwrap().needs_rehash);
    }

    #[test]
    fn known_pbkdf2_hash_verifies() {
        // PBKDF2-HMAC-SHA256 with P = "passwordPASSWORDpassword",
        // S = "saltSALTsaltSALTsaltSALTsaltSALTsalt", c = 4096, dkLen = 40:
        // the widely published companion of the RFC 6070 vectors.
        let hash =
            hex("348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9");
        let stored = format!(
            "$pbkdf2-sha256$i=4096,l=40${}${}",
            Base64Unpadded::encode_string(b"saltSALTsaltSALTsaltSALTsaltSALTsalt"),
            Base64Unpadded::encode_string(&hash)
        );
        let verified = small_pbkdf2()
            .verify(&pw("passwordPASSWORDpassword"), &stored)
            .unwrap();
        assert!(verified.needs_rehash, "other iterations and lengths");
        assert_eq!(
            small_pbkdf2().verify(&pw("passwordPASSWORDpasswore"), &stored),
            Err(PasswordError::Mismatch)
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .unwrap()
    }

    #[test]
    fn hostile_stored_strings_are_refused_before_hashing() {
        let h = small();
        let p = pw("pw");
        let salt = Base64Unpadded::encode_string(&[1u8; 16]);
        let hash = Base64Unpadded::encode_string(&[2u8; 32]);
        let cases = [
            (String::new(), "empty"),
            ("argon2id$v=19".to_owned(), "no leading $"),
            (
                format!("$argon2i$v=19$m=32,t=1,p=1${salt}${hash}"),
                "argon2i",
            ),
            (
                format!("$argon2id$v=16$m=32,t=1,p=1${salt}${hash}"),
                "old version",
            ),
            (
                format!("$argon2id$v=19$m=4194304,t=1,p=1${salt}${hash}"),
                "4 GiB",
            ),
            (format!("$argon2id$v=19$m=32,t=1000,p=1${salt}${hash}"), "t"),
            (
                format!("$argon2id$v=19$m=32,t=1,p=1,p=1${salt}${hash}"),
                "dup",
            ),
            (
                format!("$argon2id$v=19$m=32,t=1${salt}${hash}"),
                "missing p",
            ),
            (format!("$argon2id$v=19$m=32,t=1,p=1$!!${hash}"), "bad b64"),
            (
                format!("$argon2id$v=19$m=32,t=1,p=1${salt}${hash}$x"),
                "trailing",
            ),
            (
                format!("$argon2id$v=19$m=32,t=1,p=1$AAAA${hash}"),
                "short salt",
            ),
            (
                format!("$pbkdf2-sha256$i=99999999,l=32${salt}${hash}"),
                "pbkdf2 i",
            ),
            (
                format!("$pbkdf2-sha256$i=1,l=16${salt}${hash}"),
                "l mismatch",
            ),
            (format!("$argon2id$v=19$m=-1,t=1,p=1${salt}${hash}"), "sign"),
            (
                format!("$argon2id$v=19$m=99999999999,t=1,p=1${salt}${hash}"),
                "overflow",
            ),
        ];
        for (stored, why) in cases {
            let err = h.verify(&p, &stored).unwrap_err();
            assert_ne!(err, PasswordError::Mismatch, "{why}");
        }
    }

    #[test]
    fn dummy_verify_reports_mismatch() {
        assert_eq!(small().dummy_verify(&pw("x")), PasswordError::Mismatch);
        assert_eq!(
            small_pbkdf2().dummy_verify(&pw("x")),
            PasswordError::Mismatch
        );
    }

    #[test]
    fn errors_never_echo_the_password() {
        let err = Password::new("y".repeat(2000)).unwrap_err();
        assert!(!err.to_string().contains("yyyy"));
    }
}
