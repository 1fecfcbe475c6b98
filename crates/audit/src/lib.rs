#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod checkpoint;
mod codec;
mod error;
pub mod index;
mod log;
pub mod merkle;
pub mod monitor;
mod record;
pub mod segment;
pub mod storage;
pub mod store;
mod verify;

pub use checkpoint::{
    CHECKPOINT_LEN, CHECKPOINT_VERSION, Checkpoint, Signer, VerifyingKey, hex_decode, hex_encode,
};
pub use error::{Error, Result};
pub use log::{AuditLog, LogConfig, OpenReport, TornTail};
pub use merkle::{Frontier, Hash, MerkleTree};
pub use record::{
    Action, Actor, AuthMethod, Detail, Entity, EventType, ObjectKind, ObjectRef, Outcome,
    PurposeOfUse, RECORD_VERSION, Record, Timestamp,
};
pub use storage::{AppendFile, FsStorage, MemoryStorage, Storage};
pub use verify::{
    Damage, DamageKind, Progress, VerifyOptions, VerifyReport, verify_log, verify_log_in,
};
