//! The errors of the vault.

use std::io;

use crate::keys::KeyError;

/// Everything that can go wrong in the vault.
///
/// Messages say what failed and where (header, metadata, segment index, byte
/// offset) and never carry key material, labels or payload bytes. Object ids
/// are not echoed either: the caller knows which object it asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a vault object or key record of a known shape.
    #[error("malformed {what} at byte offset {offset}")]
    Malformed {
        /// Which structure was malformed.
        what: &'static str,
        /// Byte offset of the problem inside the object or record.
        offset: u64,
    },
    /// The format version is not one this build reads.
    #[error("unsupported {what} format version {version}")]
    UnsupportedVersion {
        /// Which structure carries the version.
        what: &'static str,
        /// The version found.
        version: u16,
    },
    /// The data key does not match the key commitment in the header: wrong
    /// key, or the commitment was altered.
    #[error("key commitment mismatch: the data key does not open this object")]
    KeyCommitment,
    /// The object header failed authentication (it was altered).
    #[error("object header failed authentication")]
    HeaderAuth,
    /// The encrypted metadata (content type, labels) failed authentication.
    #[error("object metadata failed authentication")]
    MetadataAuth,
    /// A payload segment failed authentication: altered, reordered, or taken
    /// from another object.
    #[error("segment {index} failed authentication")]
    SegmentAuth {
        /// Zero-based index of the segment.
        index: u64,
    },
    /// The payload ends early: its final segment is missing, the object was
    /// cut at a segment boundary.
    #[error("object truncated: {segments} segments present, final segment missing")]
    Truncated {
        /// Number of segments that are present.
        segments: u64,
    },
    /// Data follows the final segment.
    #[error("data after the final segment {last}")]
    Extended {
        /// Index of the real final segment.
        last: u64,
    },
    /// The object stored under the requested id says it is another object.
    #[error("object id mismatch: the stored object belongs to another id")]
    ObjectIdMismatch,
    /// No object with this id exists (or it was shredded).
    #[error("object not found")]
    NotFound,
    /// An object with this id already exists.
    #[error("object already exists")]
    AlreadyExists,
    /// The object id is not 1 to 128 bytes of `A-Z a-z 0-9 . _ -` not
    /// starting with a dot.
    #[error("invalid object id: {reason}")]
    InvalidObjectId {
        /// Why the id was rejected.
        reason: &'static str,
    },
    /// An argument is out of its documented bounds.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The object would exceed the largest size the format can hold
    /// (2^32 segments).
    #[error("object too large for the format")]
    TooLarge,
    /// A key-encryption key version is still used by objects and cannot be
    /// retired.
    #[error("key-encryption key version {version} is still used by {objects} objects")]
    KekInUse {
        /// The version that was to be retired.
        version: u32,
        /// How many objects still use it.
        objects: usize,
    },
    /// The current key-encryption key version cannot be retired.
    #[error("key-encryption key version {version} is the current version")]
    KekIsCurrent {
        /// The current version.
        version: u32,
    },
    /// The key provider failed.
    #[error("key provider: {0}")]
    Key(#[from] KeyError),
    /// The random number generator failed.
    #[error("random number generator failed")]
    Rng,
    /// The storage backend failed.
    #[error("storage {op} failed: {source}")]
    Io {
        /// What the vault was doing.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { op, source }
    }

    pub(crate) fn malformed(what: &'static str, offset: u64) -> Error {
        Error::Malformed { what, offset }
    }

    /// True when the error means the stored bytes failed authentication or
    /// are malformed (tampering or corruption), as opposed to a missing
    /// object, a key provider failure or an I/O failure.
    pub fn is_integrity_failure(&self) -> bool {
        matches!(
            self,
            Error::Malformed { .. }
                | Error::KeyCommitment
                | Error::HeaderAuth
                | Error::MetadataAuth
                | Error::SegmentAuth { .. }
                | Error::Truncated { .. }
                | Error::Extended { .. }
                | Error::ObjectIdMismatch
        )
    }
}

/// Result alias of the vault.
pub type Result<T, E = Error> = std::result::Result<T, E>;
