//! The error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in `carevox-audit`.
///
/// Messages say what was wrong and where (file, byte offset, record sequence
/// number) and never echo record contents, which may hold PHI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A record or checkpoint could not be decoded.
    #[error("malformed {what} at byte {offset}: {reason}")]
    Malformed {
        /// What was being decoded (`record`, `checkpoint`, `segment header`...).
        what: &'static str,
        /// Byte offset inside the encoded item.
        offset: usize,
        /// What was wrong, without the data itself.
        reason: &'static str,
    },
    /// A field is too long for the canonical encoding.
    #[error("record field `{field}` is longer than {max} bytes")]
    FieldTooLong {
        /// The field's name.
        field: &'static str,
        /// The largest length allowed.
        max: usize,
    },
    /// The encoded record is longer than a frame may be.
    #[error("record of {len} bytes exceeds the frame limit of {max} bytes")]
    RecordTooLarge {
        /// The encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The record's `recorded` time goes backwards relative to its predecessor.
    #[error("record time {recorded} ms is before the previous record's {previous} ms")]
    TimeWentBackwards {
        /// The time of the new record.
        recorded: u64,
        /// The time of the previous record.
        previous: u64,
    },
    /// An I/O operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The log on disk is damaged in a way that opening must not repair
    /// (repair could drop an acknowledged record).
    #[error("log damaged in {path} at byte {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What was found.
        reason: String,
    },
    /// The log was poisoned by an earlier I/O failure and refuses appends.
    #[error("the log refused the append: an earlier write or flush failed")]
    Poisoned,
    /// A key could not be parsed or used.
    #[error("bad key: {0}")]
    Key(&'static str),
    /// A signature did not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A Merkle proof was asked for sizes or an index that the tree does not have.
    #[error("no proof for index {index} in a tree of size {size}")]
    ProofRange {
        /// The index or old size asked for.
        index: u64,
        /// The tree size asked for.
        size: u64,
    },
    /// A Merkle proof failed to verify.
    #[error("{0} proof does not verify")]
    ProofInvalid(&'static str),
    /// The in-memory tree lacks the leaves of archived segments.
    #[error(
        "proofs need the leaves of archived segments: open the log with its archive directories"
    )]
    HistoryUnavailable,
    /// A sequence number or tree size would grow past `2^64 - 1`: the
    /// files claim a position no log can reach.
    #[error("sequence number out of range: it would grow past 2^64 - 1")]
    SequenceOverflow,
    /// The index file is missing, damaged or out of date.
    #[error("index {0}")]
    Index(&'static str),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(what: &'static str, offset: usize, reason: &'static str) -> Self {
        Error::Malformed {
            what,
            offset,
            reason,
        }
    }
}

/// The result type of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
