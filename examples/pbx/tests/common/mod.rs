//! Helpers shared by the PBX's behaviour tests: a user directory in
//! memory, an audit sink that keeps what it is given, and tone detection
//! frame by frame.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::cast_precision_loss)] // test helpers outside #[test] functions

use std::collections::HashMap;
use std::sync::Mutex;

use carevox::audio::{G711, tone_power};
use carevox::audit::Record;
use carevox::audit_sink::AuditSink;
use carevox::sip::auth::{Password, UserSecret};
use carevox_pbx::registrar::{DirectoryUser, Md5Use, UserDirectory};

pub mod live;

/// Users in memory.
pub struct Users(pub HashMap<String, DirectoryUser>);

impl Users {
    /// `names`, each with the password `<name>-secret` and `md5`.
    pub fn with_passwords(names: &[&str], md5: Md5Use) -> Users {
        Users(
            names
                .iter()
                .map(|name| {
                    (
                        (*name).to_owned(),
                        DirectoryUser {
                            secrets: vec![UserSecret::Password(Password::new(&format!(
                                "{name}-secret"
                            )))],
                            md5,
                        },
                    )
                })
                .collect(),
        )
    }
}

impl UserDirectory for Users {
    fn user(&self, username: &str) -> Option<DirectoryUser> {
        self.0.get(username).cloned()
    }
}

/// An audit sink that keeps every record.
#[derive(Default)]
pub struct Capture(pub Mutex<Vec<Record>>);

impl AuditSink for Capture {
    fn append(&self, record: &Record) -> Result<u64, carevox::audit::Error> {
        let mut v = self.0.lock().unwrap();
        v.push(record.clone());
        Ok(v.len() as u64)
    }
}

/// μ-law samples to 16-bit linear.
pub fn pcmu(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| G711::Pcmu.decode(b)).collect()
}

/// The share of whole 20 ms frames of `samples` (at `rate` Hz) in which
/// `frequency` dominates: robust to a lost packet, which breaks the phase
/// of a longer window.
pub fn frames_with_tone(samples: &[i16], rate: u32, frequency: f64) -> f64 {
    let frame = usize::try_from(rate / 50).unwrap_or(160).max(1);
    let frames: Vec<&[i16]> = samples.chunks_exact(frame).collect();
    if frames.is_empty() {
        return 0.0;
    }
    let with = frames
        .iter()
        .filter(|f| tone_power(f, rate, frequency) > 0.5)
        .count();
    with as f64 / frames.len() as f64
}
