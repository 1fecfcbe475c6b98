#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod cdr;
pub mod check;
pub mod config;
pub mod demo;
pub mod location;
pub mod mailbox;
pub mod media;
pub mod mwi;
pub mod phone;
pub mod pin;
pub mod recording;
pub mod registrar;
pub mod retention;
pub mod server;
pub mod store;
