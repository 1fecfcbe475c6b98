//! Helpers shared by the PBX's behaviour tests: a user directory in
//! memory, an audit sink that keeps what it is given, and tone detection
//! frame by frame.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::panic, clippy::cast_precision_loss)] // test helpers outside #[test] functions

use std::collections::HashMap;
use std::sync::Mutex;

use carevox::audio::{G711, tone_power};
use carevox::audit::Record;
use carevox::audit_sink::AuditSink;
use carevox::authz::password::{Argon2Params, HashAlgorithm, PasswordHasher};
use carevox::sip::auth::{Password, UserSecret};
use carevox_pbx::pin::VoicemailPin;
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
                            voicemail_pin: None,
                        },
                    )
                })
                .collect(),
        )
    }

    /// Gives each named user (already here) its voicemail PIN, hashed at a
    /// low cost so that tests stay fast (the stored parameters verify with
    /// the default hasher too): `Users::with_passwords(..).with_pins(&[("bob", "2468")])`.
    pub fn with_pins(mut self, pins: &[(&str, &str)]) -> Users {
        let hasher = PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }))
        .unwrap();
        #[allow(clippy::disallowed_methods)] // tests draw real randomness
        let rng = ring::rand::SystemRandom::new();
        for (name, pin) in pins {
            let user = self
                .0
                .get_mut(*name)
                .unwrap_or_else(|| panic!("with_pins: no user {name}"));
            user.voicemail_pin = Some(VoicemailPin::hash(pin, &hasher, &rng).unwrap());
        }
        self
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

/// An audit sink that stages what is submitted and makes it durable (in
/// `durable`) only on `sync`, which takes `delay`: a response sent before
/// the records of its request are durable shows as a record missing from
/// `durable` when the response arrives.
pub struct Staged {
    pending: Mutex<Vec<Record>>,
    /// What is durable.
    pub durable: std::sync::Arc<Capture>,
    delay: std::time::Duration,
    syncs: std::sync::atomic::AtomicUsize,
}

impl Staged {
    /// Each `sync` takes `delay`.
    pub fn new(delay: std::time::Duration) -> Staged {
        Staged {
            pending: Mutex::new(Vec::new()),
            durable: std::sync::Arc::new(Capture::default()),
            delay,
            syncs: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How many syncs made records durable.
    pub fn syncs(&self) -> usize {
        self.syncs.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many records wait for a sync.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap().len()
    }
}

impl AuditSink for Staged {
    fn append(&self, record: &Record) -> Result<u64, carevox::audit::Error> {
        self.submit(record)?;
        self.sync()?;
        Ok(self.durable.0.lock().unwrap().len() as u64)
    }

    fn submit(&self, record: &Record) -> Result<u64, carevox::audit::Error> {
        let mut p = self.pending.lock().unwrap();
        p.push(record.clone());
        Ok(p.len() as u64)
    }

    fn sync(&self) -> Result<(), carevox::audit::Error> {
        let staged = std::mem::take(&mut *self.pending.lock().unwrap());
        if staged.is_empty() {
            return Ok(());
        }
        std::thread::sleep(self.delay);
        self.durable.0.lock().unwrap().extend(staged);
        self.syncs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
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
