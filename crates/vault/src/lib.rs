#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod backend;
mod error;
pub mod format;
mod keys;
pub mod stream;
mod vault;

/// The redaction wrappers of the vault's public types, re-exported.
pub use carevox_redact::{Pii, Secret};

pub use backend::{Backend, FsBackend, MemoryBackend, PayloadSink};
pub use error::{Error, Result};
pub use format::{KeyRecord, Metadata, ObjectHeader};
pub use keys::{
    DEFAULT_PBKDF2_ITERATIONS, KeyError, KeyProvider, LocalKeyFile, MAX_KEY_FILE_LEN,
    MAX_KEY_FILE_VERSIONS, MAX_PBKDF2_ITERATIONS, MIN_PBKDF2_ITERATIONS, PassphraseProvider,
};
pub use stream::{DataKey, Decryptor, Encryptor, ReadAt};
pub use vault::{
    Event, EventHook, ObjectInfo, ObjectReader, ObjectSummary, ObjectWriter, Operation, Outcome,
    Progress, PurgeReport, RotationReport, Vault,
};

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<crate::Vault>();
        assert_send_sync::<crate::LocalKeyFile>();
        assert_send_sync::<crate::PassphraseProvider>();
        assert_send_sync::<crate::FsBackend>();
        assert_send_sync::<crate::MemoryBackend>();
    }
}
