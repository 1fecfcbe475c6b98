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
    /// An object's key record did not give its data key: the wrapped key
    /// failed to unwrap (altered, or moved from another object), or it names
    /// a key-encryption key version that the provider does not have or has
    /// retired, or the key provider failed while unwrapping it
    /// ([`KeyError::is_integrity_failure`] tells these apart).
    #[error("key record under key-encryption key version {kek_version}: {source}")]
    KeyRecord {
        /// The KEK version the record names.
        kek_version: u32,
        /// What the key provider reported.
        #[source]
        source: KeyError,
    },
    /// The key provider failed outside reading a key record (wrapping a new
    /// data key, naming its current version, retiring a version).
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

    /// True when the error means that bytes the vault stored are not what
    /// it wrote (tampering, corruption, or a restored older copy), so the
    /// object must not be trusted; false when the stored bytes are not to
    /// blame or were not examined.
    ///
    /// The rule, for every variant:
    ///
    /// - **integrity failures**: [`Error::Malformed`] (a structure of the
    ///   wrong shape, or a length, count or size outside its documented
    ///   bounds); [`Error::UnsupportedVersion`] (a format version this
    ///   build does not read: bytes it cannot verify are not trusted, be it
    ///   damage or a newer writer); [`Error::KeyCommitment`],
    ///   [`Error::HeaderAuth`], [`Error::MetadataAuth`],
    ///   [`Error::SegmentAuth`], [`Error::Truncated`], [`Error::Extended`]
    ///   and [`Error::ObjectIdMismatch`] (authentication failures); and
    ///   [`Error::KeyRecord`] when its [`KeyError::is_integrity_failure`]
    ///   holds: the wrapped key does not unwrap, or the record names a key
    ///   version that does not exist or was retired (retiring needs that no
    ///   object uses the version, so such a record is an older copy).
    /// - **not integrity failures**: [`Error::NotFound`],
    ///   [`Error::AlreadyExists`], [`Error::InvalidObjectId`],
    ///   [`Error::InvalidArgument`], [`Error::TooLarge`],
    ///   [`Error::KekInUse`], [`Error::KekIsCurrent`] (the caller's request);
    ///   [`Error::Key`] (the provider failing outside a key record),
    ///   [`Error::KeyRecord`] when the provider itself failed (I/O, a key
    ///   service, the random number generator), [`Error::Rng`] and
    ///   [`Error::Io`] (the environment).
    pub fn is_integrity_failure(&self) -> bool {
        match self {
            Error::Malformed { .. }
            | Error::UnsupportedVersion { .. }
            | Error::KeyCommitment
            | Error::HeaderAuth
            | Error::MetadataAuth
            | Error::SegmentAuth { .. }
            | Error::Truncated { .. }
            | Error::Extended { .. }
            | Error::ObjectIdMismatch => true,
            Error::KeyRecord { source, .. } => source.is_integrity_failure(),
            Error::NotFound
            | Error::AlreadyExists
            | Error::InvalidObjectId { .. }
            | Error::InvalidArgument(_)
            | Error::TooLarge
            | Error::KekInUse { .. }
            | Error::KekIsCurrent { .. }
            | Error::Key(_)
            | Error::Rng
            | Error::Io { .. } => false,
        }
    }
}

/// Result alias of the vault.
pub type Result<T, E = Error> = std::result::Result<T, E>;
