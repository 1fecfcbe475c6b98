#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod checkpoint;
mod codec;
mod error;
mod index;
mod log;
pub mod merkle;
pub mod monitor;
mod record;
mod seal;
mod segment;
pub mod storage;
mod store;
mod verify;

pub use carevox_redact::{Pii, Secret};
pub use checkpoint::{
    CHECKPOINT_LEN, CHECKPOINT_VERSION, Checkpoint, Signer, VerifyingKey, hex_decode, hex_encode,
};
pub use error::{Error, Result};
pub use index::{INDEX_FILE, Index, Query};
pub use log::{AuditLog, LogConfig, OpenReport, TornTail};
pub use merkle::{Frontier, Hash, MerkleTree};
pub use record::{
    Action, Actor, AuthMethod, Detail, Entity, EventType, ObjectKind, ObjectRef, Outcome,
    PurposeOfUse, RECORD_VERSION, Record, Timestamp,
};
pub use seal::SealSeed;
pub use storage::{AppendFile, FsStorage, MemoryStorage, Storage};
pub use store::{
    CHECKPOINT_FILE, CheckpointScan, Location, for_each_record, for_each_record_in, read_record_at,
    read_record_at_in, scan_checkpoints, scan_checkpoints_in,
};
pub use verify::{
    Damage, DamageKind, Progress, VerifyOptions, VerifyReport, verify_log, verify_log_in,
};

/// Not public API: the on-disk codec, reachable only for the fuzz targets
/// and the format tests, which must build and break files byte by byte.
/// It may change in any release.
#[doc(hidden)]
pub mod internal {
    pub use crate::segment::{
        CHECKPOINT_HEADER_LEN, ENTRY_PREFIX, Entry, FORMAT_VERSION, FRAME_OVERHEAD, FrameError,
        MAX_BODY, SegmentHeader, checkpoint_header, find_valid_frame_after, header_len,
        put_entry_frame, put_frame, read_frame,
    };
    pub use crate::store::scan_checkpoint_bytes;
}
