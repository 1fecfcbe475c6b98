#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// SIP messages, URIs, validation and framing.
pub mod builder;
pub mod error;
pub mod framing;
pub mod header;
pub mod limits;
pub mod message;
pub mod name;
pub mod parse;
pub mod salvage;
pub mod uri;
pub mod validate;
pub use builder::MessageBuilder;
pub use error::ParseError;
pub use framing::{Frame, StreamFramer, parse_datagram};
pub use header::{
    AuthHeader, AuthParam, AuthParamError, AuthParamIter, AuthParams, CSeq, Contact, MediaType,
    Method, NameAddr, Reason, RetryAfter, Via,
};
pub use limits::Limits;
pub use message::{HeaderField, Message, Transport};
pub use name::HeaderName;
pub use parse::{Param, Params};
pub use salvage::PartialRequest;
pub use uri::{Host, OpaqueUri, SipUri, TelUri, Uri};
pub use validate::{Invalid, Role, ValidationPolicy, Verdict, validate};

// Transactions and dialogs (RFC 3261 sections 17 and 12), sans-IO.
pub mod dialog;
pub mod transaction;

// SDP with SDES keys, and digest authentication.
pub mod auth;
pub mod sdp;
