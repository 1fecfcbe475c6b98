#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod lockout;
pub mod login;
pub mod password;
pub mod recovery;
pub mod secret;
pub mod totp;
