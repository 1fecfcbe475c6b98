//! Key-encryption keys: the [`KeyProvider`] trait and two local providers.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use carevox_redact::Secret;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::SecureRandom;
use ring::{hmac, pbkdf2};
use zeroize::Zeroizing;

use crate::stream::DataKey;

/// Errors of key providers. A KMS, HSM or keychain provider maps its own
/// failures to [`KeyError::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The provider has no key-encryption key of this version.
    #[error("unknown key-encryption key version {version}")]
    UnknownVersion {
        /// The version asked for.
        version: u32,
    },
    /// This key-encryption key version was retired; its key is destroyed.
    #[error("key-encryption key version {version} is retired")]
    Retired {
        /// The retired version.
        version: u32,
    },
    /// Unwrapping failed: wrong key, or the wrapped key or its context was
    /// altered.
    #[error("unwrapping the data key under key-encryption key version {version} failed")]
    Unwrap {
        /// The version used.
        version: u32,
    },
    /// The passphrase does not match the stored check value.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The provider does not support this operation.
    #[error("operation not supported by this key provider: {0}")]
    Unsupported(&'static str),
    /// A key file or parameter block is malformed.
    #[error("malformed {what} at byte offset {offset}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// Byte offset of the problem.
        offset: usize,
    },
    /// A key file or parameter block has a format version this build does
    /// not read.
    #[error("unsupported {what} format version {version}")]
    UnsupportedVersion {
        /// Which structure carries the version.
        what: &'static str,
        /// The version found.
        version: u16,
    },
    /// A cost parameter (an iteration count, a length, an entry count), read
    /// from a stored key file or parameter block or given to a constructor,
    /// is outside the documented bounds. Nothing expensive was attempted.
    #[error("{what} {value} outside the accepted range {min}..={max}")]
    OutOfBounds {
        /// Which parameter.
        what: &'static str,
        /// The value found.
        value: u64,
        /// The smallest accepted value.
        min: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// Reading or writing a key file failed.
    #[error("key file {op} failed: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The random number generator failed.
    #[error("random number generator failed")]
    Rng,
    /// A failure inside an external key service (KMS, HSM, keychain).
    #[error("key service failed: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl KeyError {
    /// True when the error means that stored key material or parameters (a
    /// key record's wrapped key, a key file, a passphrase parameter block)
    /// failed authentication, are malformed, carry an unknown format
    /// version, name a key-encryption key version that does not exist or was
    /// retired, or hold a cost parameter outside the documented bounds: the
    /// stored bytes are not what this software wrote. False for a wrong
    /// passphrase, an unsupported operation, and failures of the
    /// environment (I/O, random number generator, an external key service).
    ///
    /// [`crate::Error::is_integrity_failure`] applies this rule to the key
    /// errors met while reading an object.
    pub fn is_integrity_failure(&self) -> bool {
        match self {
            KeyError::UnknownVersion { .. }
            | KeyError::Retired { .. }
            | KeyError::Unwrap { .. }
            | KeyError::Malformed { .. }
            | KeyError::UnsupportedVersion { .. }
            | KeyError::OutOfBounds { .. } => true,
            KeyError::WrongPassphrase
            | KeyError::Unsupported(_)
            | KeyError::Io { .. }
            | KeyError::Rng
            | KeyError::Backend(_) => false,
        }
    }
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> KeyError {
    move |source| KeyError::Io { op, source }
}

/// Wraps and unwraps data keys under versioned key-encryption keys (KEKs).
///
/// Small and object-safe, so that a cloud KMS (`Encrypt`/`Decrypt` with an
/// encryption context), an HSM (AES key wrap) or a mobile keychain can back
/// it. `context` is the object id: implementations must bind it (as AEAD
/// associated data or KMS encryption context) so that a wrapped key cannot be
/// moved to another object.
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// The version that new objects and rotation wrap under.
    fn current_version(&self) -> Result<u32, KeyError>;
    /// Wraps `key` under KEK `version`, bound to `context`.
    fn wrap(
        &self,
        version: u32,
        key: &DataKey,
        context: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, KeyError>;
    /// Unwraps a key wrapped by [`KeyProvider::wrap`] with the same version
    /// and context.
    fn unwrap(&self, version: u32, wrapped: &[u8], context: &[u8]) -> Result<DataKey, KeyError>;
    /// Destroys KEK `version`. [`crate::Vault::retire_kek`] calls this only
    /// once no object uses the version. The default refuses.
    fn retire(&self, version: u32) -> Result<(), KeyError> {
        let _ = version;
        Err(KeyError::Unsupported("retire"))
    }
}

const WRAP_AAD: &[u8] = b"carevox-vault kek wrap v1";
const WRAPPED_LEN: usize = 12 + 32 + 16;

fn aad_for(version: u32, context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_AAD.len() + 4 + context.len());
    aad.extend_from_slice(WRAP_AAD);
    aad.extend_from_slice(&version.to_be_bytes());
    aad.extend_from_slice(context);
    aad
}

fn gcm(kek: &[u8; 32]) -> Result<LessSafeKey, KeyError> {
    UnboundKey::new(&AES_256_GCM, kek)
        .map(LessSafeKey::new)
        .map_err(|_| KeyError::Malformed {
            what: "key-encryption key",
            offset: 0,
        })
}

/// AES-256-GCM wrap: `nonce (12) || ciphertext (32) || tag (16)`, associated
/// data `"carevox-vault kek wrap v1" || version (u32 BE) || context`.
fn wrap_with(
    kek: &[u8; 32],
    version: u32,
    key: &DataKey,
    context: &[u8],
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, KeyError> {
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce).map_err(|_| KeyError::Rng)?;
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(key.expose_secret());
    let mut body = out.split_off(12);
    gcm(kek)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad_for(version, context)),
            &mut body,
        )
        .map_err(|_| KeyError::Unwrap { version })?;
    out.extend_from_slice(&body);
    Ok(out)
}

fn unwrap_with(
    kek: &[u8; 32],
    version: u32,
    wrapped: &[u8],
    context: &[u8],
) -> Result<DataKey, KeyError> {
    let bad = || KeyError::Unwrap { version };
    if wrapped.len() != WRAPPED_LEN {
        return Err(bad());
    }
    let (nonce, body) = wrapped.split_at_checked(12).ok_or_else(bad)?;
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| bad())?;
    let mut body = Zeroizing::new(body.to_vec());
    let plain = gcm(kek)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad_for(version, context)),
            &mut body,
        )
        .map_err(|_| bad())?;
    let key: [u8; 32] = (&*plain).try_into().map_err(|_| bad())?;
    Ok(DataKey::from_bytes(key))
}

/// One KEK slot: its key, or `None` once retired (the key is then wiped).
type Slot = Option<Secret<[u8; 32]>>;

/// The key-encryption keys of a provider. `Debug` shows the versions and
/// whether each is retired, never a key.
#[derive(Debug, Default)]
struct KekSet {
    current: u32,
    keys: BTreeMap<u32, Slot>,
}

impl KekSet {
    fn get(&self, version: u32) -> Result<&[u8; 32], KeyError> {
        match self.keys.get(&version) {
            None => Err(KeyError::UnknownVersion { version }),
            Some(None) => Err(KeyError::Retired { version }),
            Some(Some(k)) => Ok(k.expose()),
        }
    }
}

fn random_kek(rng: &dyn SecureRandom) -> Result<Secret<[u8; 32]>, KeyError> {
    let mut key = Secret::new([0u8; 32]);
    rng.fill(key.expose_mut()).map_err(|_| KeyError::Rng)?;
    Ok(key)
}

const KEY_FILE_MAGIC: [u8; 8] = *b"CVXVKEKF";
const KEY_FILE_VERSION: u16 = 1;
const KEY_FILE_HEADER: usize = 18;
const KEY_FILE_ENTRY: usize = 4 + 1 + 32;
/// The most key-encryption key versions (active and retired) a key file may
/// hold. A key file that says it holds more is refused with
/// [`KeyError::OutOfBounds`] before anything else is read.
pub const MAX_KEY_FILE_VERSIONS: u32 = 65_536;
/// The largest key file [`LocalKeyFile::open`] reads, in bytes: the header
/// and [`MAX_KEY_FILE_VERSIONS`] entries. A longer file is refused with
/// [`KeyError::OutOfBounds`] without being read.
pub const MAX_KEY_FILE_LEN: u64 =
    KEY_FILE_HEADER as u64 + MAX_KEY_FILE_VERSIONS as u64 * KEY_FILE_ENTRY as u64;

/// A local key file holding several KEK versions, for single-host
/// deployments and development.
///
/// The file is created with owner-only permissions (0600) and replaced
/// atomically on every change, through a temporary file
/// `.tmp-<file name>-<pid>-<n>` beside it. A crash can leave such a
/// temporary file behind, holding key versions that a later retirement
/// destroys in the key file itself: [`LocalKeyFile::open`],
/// [`LocalKeyFile::create`] and every change remove them, so that no copy
/// of a retired key outlives the next open or change.
///
/// Format (big-endian): magic `CVXVKEKF`, format version `u16` = 1, current
/// KEK version `u32`, entry count `u32` (at most [`MAX_KEY_FILE_VERSIONS`]),
/// then per entry: KEK version `u32`, state `u8` (1 active, 2 retired), 32
/// key bytes (zero once retired). Anyone who can read the file can unwrap
/// every data key: keep it off the payload volume and out of backups of the
/// payloads, or use a KMS or HSM provider in production.
#[derive(Debug)]
pub struct LocalKeyFile {
    path: PathBuf,
    set: RwLock<KekSet>,
}

impl LocalKeyFile {
    /// Creates a new key file at `path` (which must not exist) with KEK
    /// version 1 from `rng`.
    pub fn create(path: impl AsRef<Path>, rng: &dyn SecureRandom) -> Result<Self, KeyError> {
        let path = path.as_ref().to_path_buf();
        if path.exists() {
            return Err(KeyError::Io {
                op: "create",
                source: io::ErrorKind::AlreadyExists.into(),
            });
        }
        crate::backend::remove_stale_temps(&path).map_err(io_err("remove temporary files"))?;
        let mut set = KekSet {
            current: 1,
            ..KekSet::default()
        };
        set.keys.insert(1, Some(random_kek(rng)?));
        let file = LocalKeyFile {
            path,
            set: RwLock::new(set),
        };
        file.persist(&file.read())?;
        Ok(file)
    }

    /// Opens an existing key file, first removing the temporary copies of
    /// it that a crash may have left beside it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref().to_path_buf();
        crate::backend::remove_stale_temps(&path).map_err(io_err("remove temporary files"))?;
        let mut file = std::fs::File::open(&path).map_err(io_err("read"))?;
        let len = file.metadata().map_err(io_err("read"))?.len();
        if len > MAX_KEY_FILE_LEN {
            return Err(KeyError::OutOfBounds {
                what: "key file length",
                value: len,
                min: KEY_FILE_HEADER as u64,
                max: MAX_KEY_FILE_LEN,
            });
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(usize::try_from(len).unwrap_or(0)));
        io::Read::read_to_end(
            &mut io::Read::take(&mut file, MAX_KEY_FILE_LEN + 1),
            &mut bytes,
        )
        .map_err(io_err("read"))?;
        let set = Self::decode(&bytes)?;
        Ok(LocalKeyFile {
            path,
            set: RwLock::new(set),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KekSet> {
        self.set.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, KekSet> {
        self.set.write().unwrap_or_else(|e| e.into_inner())
    }

    fn decode(b: &[u8]) -> Result<KekSet, KeyError> {
        let bad = |what, offset| KeyError::Malformed { what, offset };
        if b.len() as u64 > MAX_KEY_FILE_LEN {
            return Err(KeyError::OutOfBounds {
                what: "key file length",
                value: b.len() as u64,
                min: KEY_FILE_HEADER as u64,
                max: MAX_KEY_FILE_LEN,
            });
        }
        if b.get(..8) != Some(&KEY_FILE_MAGIC[..]) {
            return Err(bad("key file magic", 0));
        }
        let rd4 = |at: usize| -> Option<u32> {
            Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
        };
        let version = b
            .get(8..10)
            .and_then(|v| v.try_into().ok())
            .map(u16::from_be_bytes)
            .ok_or(bad("key file version", 8))?;
        if version != KEY_FILE_VERSION {
            return Err(KeyError::UnsupportedVersion {
                what: "key file",
                version,
            });
        }
        let current = rd4(10).ok_or(bad("key file current version", 10))?;
        let count = rd4(14).ok_or(bad("key file entry count", 14))?;
        if count > MAX_KEY_FILE_VERSIONS {
            return Err(KeyError::OutOfBounds {
                what: "key file entry count",
                value: u64::from(count),
                min: 1,
                max: u64::from(MAX_KEY_FILE_VERSIONS),
            });
        }
        // The header is complete (the count was read), so the body exists,
        // possibly empty; its length must match the count exactly.
        let body = b
            .get(KEY_FILE_HEADER..)
            .ok_or(bad("key file length", b.len()))?;
        if body.len() != count as usize * KEY_FILE_ENTRY {
            return Err(bad("key file length", b.len()));
        }
        let mut set = KekSet {
            current,
            ..KekSet::default()
        };
        for (i, e) in body.chunks_exact(KEY_FILE_ENTRY).enumerate() {
            let at = KEY_FILE_HEADER + i * KEY_FILE_ENTRY;
            let (v, rest) = e.split_at_checked(4).ok_or(bad("key file entry", at))?;
            let v = u32::from_be_bytes(v.try_into().map_err(|_| bad("key file entry", at))?);
            let (state, key) = rest.split_first().ok_or(bad("key file entry", at + 4))?;
            let slot = match state {
                1 => {
                    let mut k = Secret::new([0u8; 32]);
                    k.expose_mut().copy_from_slice(key);
                    Some(k)
                }
                2 if key.iter().all(|b| *b == 0) => None,
                2 => return Err(bad("key file retired entry with key bytes", at + 5)),
                _ => return Err(bad("key file entry state", at + 4)),
            };
            if set.keys.insert(v, slot).is_some() {
                return Err(bad("key file duplicate version", at));
            }
        }
        if !matches!(set.keys.get(&current), Some(Some(_))) {
            return Err(bad("key file current version", 10));
        }
        Ok(set)
    }

    fn persist(&self, set: &KekSet) -> Result<(), KeyError> {
        let count = u32::try_from(set.keys.len())
            .ok()
            .filter(|c| *c <= MAX_KEY_FILE_VERSIONS)
            .ok_or(KeyError::OutOfBounds {
                what: "key file entry count",
                value: set.keys.len() as u64,
                min: 1,
                max: u64::from(MAX_KEY_FILE_VERSIONS),
            })?;
        let mut out = Zeroizing::new(Vec::with_capacity(
            KEY_FILE_HEADER + set.keys.len() * KEY_FILE_ENTRY,
        ));
        out.extend_from_slice(&KEY_FILE_MAGIC);
        out.extend_from_slice(&KEY_FILE_VERSION.to_be_bytes());
        out.extend_from_slice(&set.current.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        for (v, slot) in &set.keys {
            out.extend_from_slice(&v.to_be_bytes());
            match slot {
                Some(k) => {
                    out.push(1);
                    out.extend_from_slice(k.expose());
                }
                None => {
                    out.push(2);
                    out.extend_from_slice(&[0u8; 32]);
                }
            }
        }
        crate::backend::atomic_write(&self.path, &out).map_err(io_err("write"))?;
        // Temporary copies left by an earlier crash may still hold what
        // this change removed.
        crate::backend::remove_stale_temps(&self.path).map_err(io_err("remove temporary files"))?;
        Ok(())
    }

    /// Adds a new KEK version from `rng` and makes it current. Returns it.
    pub fn add_version(&self, rng: &dyn SecureRandom) -> Result<u32, KeyError> {
        let mut set = self.write();
        let next = set
            .keys
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or(KeyError::Unsupported("more than u32::MAX versions"))?;
        if set.keys.len() >= MAX_KEY_FILE_VERSIONS as usize {
            return Err(KeyError::OutOfBounds {
                what: "key file entry count",
                value: set.keys.len() as u64 + 1,
                min: 1,
                max: u64::from(MAX_KEY_FILE_VERSIONS),
            });
        }
        let key = random_kek(rng)?;
        let old_current = set.current;
        set.keys.insert(next, Some(key));
        set.current = next;
        if let Err(e) = self.persist(&set) {
            set.keys.remove(&next);
            set.current = old_current;
            return Err(e);
        }
        Ok(next)
    }

    /// Every version with `true` when it is retired, in ascending order.
    pub fn versions(&self) -> Vec<(u32, bool)> {
        self.read()
            .keys
            .iter()
            .map(|(v, k)| (*v, k.is_none()))
            .collect()
    }
}

impl KeyProvider for LocalKeyFile {
    fn current_version(&self) -> Result<u32, KeyError> {
        Ok(self.read().current)
    }

    fn wrap(
        &self,
        version: u32,
        key: &DataKey,
        context: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, KeyError> {
        wrap_with(self.read().get(version)?, version, key, context, rng)
    }

    fn unwrap(&self, version: u32, wrapped: &[u8], context: &[u8]) -> Result<DataKey, KeyError> {
        unwrap_with(self.read().get(version)?, version, wrapped, context)
    }

    fn retire(&self, version: u32) -> Result<(), KeyError> {
        let mut set = self.write();
        if set.current == version {
            return Err(KeyError::Unsupported("retiring the current version"));
        }
        let old = match set.keys.get_mut(&version) {
            None => return Err(KeyError::UnknownVersion { version }),
            Some(slot) => slot.take(),
        };
        if let Err(e) = self.persist(&set) {
            set.keys.insert(version, old);
            return Err(e);
        }
        Ok(())
    }
}

const PASS_MAGIC: [u8; 8] = *b"CVXVPASS";
const PASS_VERSION: u16 = 1;
const PASS_ALG_PBKDF2_SHA256: u8 = 1;
const PASS_LEN: usize = 8 + 2 + 4 + 1 + 4 + 32 + 32;
const PASS_CHECK: &[u8] = b"carevox-vault passphrase check v1";
/// Default PBKDF2-HMAC-SHA256 iteration count (OWASP's 2023 figure).
pub const DEFAULT_PBKDF2_ITERATIONS: u32 = 600_000;
/// Smallest iteration count the passphrase provider accepts.
pub const MIN_PBKDF2_ITERATIONS: u32 = 10_000;
/// Largest iteration count the passphrase provider accepts, in a parameter
/// block or from [`PassphraseProvider::create`]: about 17 times the
/// default, some seconds of work on a current server core. A parameter
/// block asking for more is refused with [`KeyError::OutOfBounds`] before
/// any derivation, so an edited block cannot make opening hang.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// A KEK derived from a passphrase with PBKDF2-HMAC-SHA256, for a device
/// or a small install without a key service.
///
/// PBKDF2-HMAC-SHA256 (from ring) was chosen over Argon2id so that all
/// cryptography stays in ring, which is FIPS-validated in its BoringSSL
/// origin and audited: Argon2id is memory-hard and resists GPUs better, so
/// the iteration count is high (600,000 by default) and stored with the
/// salt, so it can be raised later by deriving a new KEK version and
/// rotating. The parameter block (returned by [`PassphraseProvider::create`],
/// not secret, store it beside the vault) is: magic `CVXVPASS`, format
/// version `u16` = 1, KEK version `u32`, algorithm `u8` (1 = PBKDF2-HMAC-
/// SHA256), iterations `u32` ([`MIN_PBKDF2_ITERATIONS`] ..=
/// [`MAX_PBKDF2_ITERATIONS`], checked before any derivation), salt (32),
/// check value (32, an HMAC under the derived key so a wrong passphrase is
/// reported as such). The block is not authenticated beyond the check
/// value: keep it where only the vault's owner can write.
///
/// One provider can hold several versions ([`PassphraseProvider::with`]),
/// the highest being current, so data keys can be rotated to a new
/// passphrase.
#[derive(Debug)]
pub struct PassphraseProvider {
    set: RwLock<KekSet>,
}

/// Checks `iterations` against [`MIN_PBKDF2_ITERATIONS`] ..=
/// [`MAX_PBKDF2_ITERATIONS`].
fn check_iterations(iterations: u32) -> Result<NonZeroU32, KeyError> {
    NonZeroU32::new(iterations)
        .filter(|n| (MIN_PBKDF2_ITERATIONS..=MAX_PBKDF2_ITERATIONS).contains(&n.get()))
        .ok_or(KeyError::OutOfBounds {
            what: "PBKDF2 iterations",
            value: u64::from(iterations),
            min: u64::from(MIN_PBKDF2_ITERATIONS),
            max: u64::from(MAX_PBKDF2_ITERATIONS),
        })
}

fn derive_pass(
    passphrase: &[u8],
    iterations: u32,
    salt: &[u8],
) -> Result<Secret<[u8; 32]>, KeyError> {
    let iters = check_iterations(iterations)?;
    let mut k = Secret::new([0u8; 32]);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        salt,
        passphrase,
        k.expose_mut(),
    );
    Ok(k)
}

impl PassphraseProvider {
    /// Derives KEK `kek_version` from `passphrase` with a fresh salt.
    /// Returns the provider and the parameter block to store.
    pub fn create(
        passphrase: &[u8],
        iterations: u32,
        kek_version: u32,
        rng: &dyn SecureRandom,
    ) -> Result<(Self, Vec<u8>), KeyError> {
        let mut salt = [0u8; 32];
        rng.fill(&mut salt).map_err(|_| KeyError::Rng)?;
        let kek = derive_pass(passphrase, iterations, &salt)?;
        let check = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, kek.expose()), PASS_CHECK);
        let mut params = Vec::with_capacity(PASS_LEN);
        params.extend_from_slice(&PASS_MAGIC);
        params.extend_from_slice(&PASS_VERSION.to_be_bytes());
        params.extend_from_slice(&kek_version.to_be_bytes());
        params.push(PASS_ALG_PBKDF2_SHA256);
        params.extend_from_slice(&iterations.to_be_bytes());
        params.extend_from_slice(&salt);
        params.extend_from_slice(check.as_ref());
        let mut set = KekSet {
            current: kek_version,
            ..KekSet::default()
        };
        set.keys.insert(kek_version, Some(kek));
        Ok((
            PassphraseProvider {
                set: RwLock::new(set),
            },
            params,
        ))
    }

    /// Re-derives the KEK from `passphrase` and a stored parameter block.
    pub fn open(passphrase: &[u8], params: &[u8]) -> Result<Self, KeyError> {
        let bad = |what, offset| KeyError::Malformed { what, offset };
        if params.len() != PASS_LEN {
            return Err(bad("passphrase parameters length", params.len()));
        }
        if params.get(..8) != Some(&PASS_MAGIC[..]) {
            return Err(bad("passphrase parameters magic", 0));
        }
        let u16at = |at: usize| {
            params
                .get(at..at + 2)
                .and_then(|b| b.try_into().ok())
                .map(u16::from_be_bytes)
        };
        let u32at = |at: usize| {
            params
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
        };
        let format = u16at(8).ok_or(bad("passphrase parameters version", 8))?;
        if format != PASS_VERSION {
            return Err(KeyError::UnsupportedVersion {
                what: "passphrase parameters",
                version: format,
            });
        }
        let version = u32at(10).ok_or(bad("passphrase parameters", 10))?;
        if params.get(14) != Some(&PASS_ALG_PBKDF2_SHA256) {
            return Err(bad("passphrase parameters algorithm", 14));
        }
        let iterations = u32at(15).ok_or(bad("passphrase parameters", 15))?;
        let salt = params.get(19..51).ok_or(bad("passphrase parameters", 19))?;
        let check = params.get(51..83).ok_or(bad("passphrase parameters", 51))?;
        // Bounded before any work: an edited block must not make this hang.
        check_iterations(iterations)?;
        let kek = derive_pass(passphrase, iterations, salt)?;
        hmac::verify(
            &hmac::Key::new(hmac::HMAC_SHA256, kek.expose()),
            PASS_CHECK,
            check,
        )
        .map_err(|_| KeyError::WrongPassphrase)?;
        let mut set = KekSet {
            current: version,
            ..KekSet::default()
        };
        set.keys.insert(version, Some(kek));
        Ok(PassphraseProvider {
            set: RwLock::new(set),
        })
    }

    /// Merges the versions of `other` into this provider; the highest
    /// version becomes current.
    pub fn with(self, other: PassphraseProvider) -> Self {
        let mut set = self.set.into_inner().unwrap_or_else(|e| e.into_inner());
        let other = other.set.into_inner().unwrap_or_else(|e| e.into_inner());
        set.keys.extend(other.keys);
        set.current = set.keys.keys().next_back().copied().unwrap_or(set.current);
        PassphraseProvider {
            set: RwLock::new(set),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KekSet> {
        self.set.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl KeyProvider for PassphraseProvider {
    fn current_version(&self) -> Result<u32, KeyError> {
        Ok(self.read().current)
    }

    fn wrap(
        &self,
        version: u32,
        key: &DataKey,
        context: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, KeyError> {
        wrap_with(self.read().get(version)?, version, key, context, rng)
    }

    fn unwrap(&self, version: u32, wrapped: &[u8], context: &[u8]) -> Result<DataKey, KeyError> {
        unwrap_with(self.read().get(version)?, version, wrapped, context)
    }

    fn retire(&self, version: u32) -> Result<(), KeyError> {
        let mut set = self.set.write().unwrap_or_else(|e| e.into_inner());
        if set.current == version {
            return Err(KeyError::Unsupported("retiring the current version"));
        }
        match set.keys.get_mut(&version) {
            None => Err(KeyError::UnknownVersion { version }),
            Some(slot) => {
                *slot = None;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn passphrase_round_trip_and_wrong_passphrase() {
        #[allow(clippy::disallowed_methods)]
        let rng = SystemRandom::new();
        let (p, params) =
            PassphraseProvider::create(b"correct horse", MIN_PBKDF2_ITERATIONS, 3, &rng).unwrap();
        let k = DataKey::from_bytes([5; 32]);
        let w = p.wrap(3, &k, b"obj", &rng).unwrap();
        let p2 = PassphraseProvider::open(b"correct horse", &params).unwrap();
        assert_eq!(p2.unwrap(3, &w, b"obj").unwrap().expose_secret(), &[5; 32]);
        assert!(matches!(
            p2.unwrap(3, &w, b"other"),
            Err(KeyError::Unwrap { version: 3 })
        ));
        assert!(matches!(
            PassphraseProvider::open(b"wrong", &params),
            Err(KeyError::WrongPassphrase)
        ));
        assert!(!format!("{p2:?}").contains('5'));
    }
}
