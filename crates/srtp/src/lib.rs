#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod context;
mod crypto;
mod error;
mod key;
mod packet;
mod replay;
mod suite;

pub use context::{
    Config, Context, DEFAULT_MAX_INBOUND_STREAMS, Event, SRTCP_KEY_LIMIT, SRTP_KEY_LIMIT,
    SsrcPolicy,
};
pub use error::{Error, PacketKind};
pub use key::{DtlsRole, Label, MAX_MKI_LEN, MasterKey, derive};
pub use replay::{DEFAULT_REPLAY_WINDOW, MAX_REPLAY_WINDOW};
pub use suite::Suite;
