//! The encrypted vault: objects streamed through foreign readers and
//! writers, keys from a foreign key provider (Keychain, Keystore, KMS).

use std::collections::HashMap;
use std::sync::Arc;

use carevox_vault::{
    DataKey, Error as RustVaultError, FsBackend, KeyError, KeyProvider, Metadata,
    Vault as RustVault,
};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

use crate::error::{CallbackError, VaultError};
use crate::system_rng;

impl From<RustVaultError> for VaultError {
    fn from(e: RustVaultError) -> Self {
        let text = e.to_string();
        match e {
            RustVaultError::NotFound => VaultError::NotFound(text),
            RustVaultError::AlreadyExists => VaultError::AlreadyExists(text),
            RustVaultError::InvalidObjectId { .. } => VaultError::InvalidId(text),
            RustVaultError::InvalidArgument(_) | RustVaultError::TooLarge => {
                VaultError::InvalidArgument(text)
            }
            RustVaultError::Key(_) | RustVaultError::KeyRecord { .. } => VaultError::Key(text),
            RustVaultError::Io { .. } => VaultError::Io(text),
            RustVaultError::Malformed { .. }
            | RustVaultError::UnsupportedVersion { .. }
            | RustVaultError::KeyCommitment
            | RustVaultError::HeaderAuth
            | RustVaultError::MetadataAuth
            | RustVaultError::SegmentAuth { .. }
            | RustVaultError::Truncated { .. }
            | RustVaultError::Extended { .. }
            | RustVaultError::ObjectIdMismatch => VaultError::Corrupt(text),
            _ => VaultError::Other(text),
        }
    }
}

/// Wraps and unwraps the vault's data keys with a key the foreign side
/// holds (iOS Keychain / Secure Enclave, Android Keystore, a KMS).
///
/// Implementations must use an AEAD (AES-256-GCM) and bind `context` (the
/// object id) as associated data, so that a wrapped key cannot be moved to
/// another object. `data_key` is 32 secret bytes: wipe the array after use
/// (`Arrays.fill(key, 0)` in Kotlin, `bytearray` overwritten in Python,
/// `memset_s`/`resetBytes` in Swift).
#[uniffi::export(with_foreign)]
pub trait VaultKeyProvider: Send + Sync {
    /// The key version that new objects are wrapped under.
    fn current_version(&self) -> Result<u32, CallbackError>;
    /// Wraps the 32-byte `data_key` under key `version`, bound to `context`.
    fn wrap(
        &self,
        version: u32,
        data_key: Vec<u8>,
        context: Vec<u8>,
    ) -> Result<Vec<u8>, CallbackError>;
    /// Unwraps what [`VaultKeyProvider::wrap`] returned, for the same
    /// version and context; fails if either differs or `wrapped` was altered.
    fn unwrap(
        &self,
        version: u32,
        wrapped: Vec<u8>,
        context: Vec<u8>,
    ) -> Result<Vec<u8>, CallbackError>;
}

/// Supplies an object's bytes to [`Vault::put_stream`], a chunk at a time.
#[uniffi::export(with_foreign)]
pub trait ByteSource: Send + Sync {
    /// Up to `max_len` next bytes; an empty result is the end.
    fn read(&self, max_len: u32) -> Result<Vec<u8>, CallbackError>;
}

/// Receives an object's bytes from [`Vault::get_stream`], a chunk at a time.
#[uniffi::export(with_foreign)]
pub trait ByteSink: Send + Sync {
    /// The next decrypted chunk (PHI: keep it out of logs).
    fn write(&self, data: Vec<u8>) -> Result<(), CallbackError>;
}

/// The adapter from the foreign key provider to the vault's trait.
struct ForeignKeys(Arc<dyn VaultKeyProvider>);

impl std::fmt::Debug for ForeignKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForeignKeys")
    }
}

fn backend(e: CallbackError) -> KeyError {
    KeyError::Backend(Box::new(e))
}

impl KeyProvider for ForeignKeys {
    fn current_version(&self) -> Result<u32, KeyError> {
        self.0.current_version().map_err(backend)
    }

    fn wrap(
        &self,
        version: u32,
        key: &DataKey,
        context: &[u8],
        _rng: &dyn SecureRandom,
    ) -> Result<Vec<u8>, KeyError> {
        self.0
            .wrap(version, key.expose_secret().to_vec(), context.to_vec())
            .map_err(backend)
    }

    fn unwrap(&self, version: u32, wrapped: &[u8], context: &[u8]) -> Result<DataKey, KeyError> {
        let key = Zeroizing::new(
            self.0
                .unwrap(version, wrapped.to_vec(), context.to_vec())
                .map_err(|_| KeyError::Unwrap { version })?,
        );
        let bytes: [u8; 32] = key
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Unwrap { version })?;
        let mut bytes = Zeroizing::new(bytes);
        let out = DataKey::from_bytes(*bytes);
        zeroize::Zeroize::zeroize(&mut *bytes);
        Ok(out)
    }
}

/// A stored object's metadata.
#[derive(Debug, Clone, uniffi::Record)]
pub struct VaultObjectInfo {
    /// Object id.
    pub id: String,
    /// Media type.
    pub content_type: String,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
    /// Retention deadline, seconds since the Unix epoch.
    pub retention_until: u64,
    /// Labels (PHI: the patient reference may be among them).
    pub labels: HashMap<String, String>,
    /// Plaintext length in bytes.
    pub len: u64,
}

/// An object in the listing.
#[derive(Debug, Clone, uniffi::Record)]
pub struct VaultListEntry {
    /// Object id.
    pub id: String,
    /// Version of the key its data key is wrapped under.
    pub key_version: u32,
}

/// How much is read from a [`ByteSource`] per call, and written to a
/// [`ByteSink`] per call.
const CHUNK: u32 = 64 * 1024;

fn info(meta: &Metadata, len: u64) -> VaultObjectInfo {
    VaultObjectInfo {
        id: meta.id.clone(),
        content_type: meta.content_type.clone(),
        created_at: meta.created_at,
        retention_until: meta.retention_until,
        labels: meta.labels.expose().iter().cloned().collect(),
        len,
    }
}

/// An encrypted object store in a directory. Thread-safe.
#[derive(Debug, uniffi::Object)]
pub struct Vault {
    inner: RustVault,
}

#[uniffi::export]
impl Vault {
    /// Opens (creating if needed) the vault in directory `dir`, with data
    /// keys wrapped by `keys`.
    #[uniffi::constructor]
    pub fn open(dir: String, keys: Arc<dyn VaultKeyProvider>) -> Result<Arc<Self>, VaultError> {
        let backend = FsBackend::open(&dir)
            .map_err(|e| VaultError::Io(format!("opening the vault directory failed: {e}")))?;
        Ok(Arc::new(Vault {
            inner: RustVault::new(Arc::new(backend), Arc::new(ForeignKeys(keys))),
        }))
    }

    /// Stores `data` as object `id`. Times are seconds since the Unix epoch.
    pub fn put(
        &self,
        id: String,
        content_type: String,
        created_at: u64,
        retention_until: u64,
        labels: HashMap<String, String>,
        data: Vec<u8>,
    ) -> Result<VaultObjectInfo, VaultError> {
        let meta = metadata(&id, &content_type, created_at, retention_until, labels);
        let stored = self.inner.put(&system_rng(), meta.clone(), &data)?;
        Ok(info(&meta, stored.len))
    }

    /// Stores object `id`, reading its bytes from `source` in chunks until it
    /// returns an empty one: the whole object is never in memory. Nothing is
    /// stored if the source fails.
    pub fn put_stream(
        &self,
        id: String,
        content_type: String,
        created_at: u64,
        retention_until: u64,
        labels: HashMap<String, String>,
        source: Arc<dyn ByteSource>,
    ) -> Result<VaultObjectInfo, VaultError> {
        let meta = metadata(&id, &content_type, created_at, retention_until, labels);
        let mut writer = self.inner.writer(&system_rng(), meta.clone())?;
        loop {
            let chunk = source
                .read(CHUNK)
                .map_err(|e| VaultError::Stream(format!("reading the source failed: {e}")))?;
            if chunk.is_empty() {
                break;
            }
            if chunk.len() > CHUNK as usize {
                return Err(VaultError::Stream(format!(
                    "the source returned {} bytes where at most {CHUNK} were asked for",
                    chunk.len()
                )));
            }
            writer.update(&chunk)?;
        }
        let stored = writer.finish()?;
        Ok(info(&meta, stored.len))
    }

    /// Reads object `id` whole.
    pub fn get(&self, id: String) -> Result<Vec<u8>, VaultError> {
        Ok(self.inner.get(&id)?.1)
    }

    /// Streams object `id` into `sink`, a chunk at a time, each chunk
    /// authenticated before it is handed over.
    pub fn get_stream(
        &self,
        id: String,
        sink: Arc<dyn ByteSink>,
    ) -> Result<VaultObjectInfo, VaultError> {
        let mut reader = self.inner.open(&id)?;
        let len = reader.len();
        let meta = reader.metadata().clone();
        let mut buf = Zeroizing::new(vec![0u8; CHUNK as usize]);
        let mut offset = 0u64;
        while offset < len {
            let n = reader.read_at(offset, &mut buf)?;
            if n == 0 {
                return Err(VaultError::Corrupt(format!(
                    "object ended at byte {offset} of {len}"
                )));
            }
            let chunk = buf.get(..n).map(<[u8]>::to_vec).ok_or_else(|| {
                VaultError::Other("the reader reported more bytes than it was given".into())
            })?;
            sink.write(chunk)
                .map_err(|e| VaultError::Stream(format!("writing to the sink failed: {e}")))?;
            offset += n as u64;
        }
        Ok(info(&meta, len))
    }

    /// Reads `len` bytes of object `id` from `offset`; fewer at its end.
    /// Only the segments that hold the range are decrypted.
    pub fn get_range(&self, id: String, offset: u64, len: u32) -> Result<Vec<u8>, VaultError> {
        Ok(self.inner.get_range(&id, offset, len as usize)?)
    }

    /// Object `id`'s metadata and length.
    pub fn info(&self, id: String) -> Result<VaultObjectInfo, VaultError> {
        let reader = self.inner.open(&id)?;
        Ok(info(reader.metadata(), reader.len()))
    }

    /// Every object's id and key version.
    pub fn list(&self) -> Result<Vec<VaultListEntry>, VaultError> {
        Ok(self
            .inner
            .list()?
            .into_iter()
            .map(|s| VaultListEntry {
                id: s.id,
                key_version: s.kek_version,
            })
            .collect())
    }

    /// Crypto-shreds object `id`: its wrapped data key is destroyed first, so
    /// no copy of the ciphertext can be decrypted again.
    pub fn shred(&self, id: String) -> Result<(), VaultError> {
        Ok(self.inner.shred(&id)?)
    }
}

fn metadata(
    id: &str,
    content_type: &str,
    created_at: u64,
    retention_until: u64,
    labels: HashMap<String, String>,
) -> Metadata {
    let mut labels: Vec<(String, String)> = labels.into_iter().collect();
    labels.sort();
    labels.into_iter().fold(
        Metadata::new(id, content_type, created_at, retention_until),
        |m, (k, v)| m.label(k, v),
    )
}
