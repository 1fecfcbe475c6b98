//! The vault handle: envelope encryption over a storage backend, with
//! rotation, shredding, retention purge and an event hook.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use carevox_redact::{Pii, Secret};
use ring::rand::SecureRandom;

use crate::backend::{Backend, PayloadSink};
use crate::error::{Error, Result};
use crate::format::{DEFAULT_SEGMENT_SIZE, KeyRecord, Metadata, validate_object_id};
use crate::keys::KeyProvider;
use crate::stream::{DataKey, Decryptor, Encryptor, ReadAt, open_metadata};

/// What the vault did, for an [`EventHook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// An object was opened (its key unwrapped and header authenticated).
    Open,
    /// An object's content was read through [`Vault::get`] or
    /// [`Vault::get_range`].
    Read,
    /// An object was written.
    Write,
    /// An object was deleted (key record and payload).
    Delete,
    /// An object's data key was rewrapped under another KEK version.
    Rewrap,
    /// An object's data key was destroyed.
    Shred,
    /// An object was deleted by a retention purge.
    Purge,
}

/// How an operation ended.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// It succeeded.
    Success,
    /// It failed with this error (whose message carries no PHI).
    Failure(&'a Error),
}

/// One report to the [`EventHook`]: safe to log. Labels (PHI) are present
/// only when the vault was built with [`Vault::with_labels_in_events`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Event<'a> {
    /// The object id.
    pub object_id: &'a str,
    /// What was done.
    pub operation: Operation,
    /// How it ended.
    pub outcome: Outcome<'a>,
    /// The KEK version involved, when known (for a rewrap: the new one).
    pub kek_version: Option<u32>,
    /// The object's labels, only when asked for and known. PHI: `Debug`
    /// prints them redacted; [`Pii::expose`] reads them.
    pub labels: Option<Pii<&'a [(String, String)]>>,
}

/// Receives an [`Event`] for every open, read, write, delete, rewrap, shred
/// and purge, successful or not. The composing layer turns these into audit
/// records. Called synchronously: keep it quick.
pub trait EventHook: Send + Sync {
    /// Called once per operation.
    fn on_event(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Send + Sync> EventHook for F {
    fn on_event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// Progress of a rotation, reported after each object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Objects handled so far.
    pub done: usize,
    /// Objects in total.
    pub total: usize,
}

/// The result of [`Vault::rotate`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RotationReport {
    /// The KEK version everything was rewrapped to.
    pub to_version: u32,
    /// Objects rewrapped.
    pub rewrapped: usize,
    /// Objects already under `to_version`.
    pub already_current: usize,
    /// Objects that could not be rewrapped, with why. They keep their old
    /// key record.
    pub failed: Vec<(String, Error)>,
}

/// The result of [`Vault::purge_expired`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Objects deleted because their retention had passed.
    pub purged: Vec<String>,
    /// Objects still within retention.
    pub kept: usize,
    /// Objects whose retention could not be established (key or header
    /// failure). They are not deleted.
    pub failed: Vec<(String, Error)>,
}

/// One entry of [`Vault::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    /// The object id.
    pub id: String,
    /// The KEK version its data key is wrapped under.
    pub kek_version: u32,
}

/// What [`Vault::put`] and [`ObjectWriter::finish`] return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object id.
    pub id: String,
    /// Plaintext length.
    pub len: u64,
    /// The KEK version its data key is wrapped under.
    pub kek_version: u32,
}

/// An encrypted object store. `Send + Sync`: share one (e.g. in an `Arc`)
/// across threads and tasks.
///
/// One process owns a vault directory at a time; within it, writes,
/// rewraps, shreds and deletes are serialised per key record so that a
/// rewrap can never resurrect a shredded key.
pub struct Vault {
    backend: Arc<dyn Backend>,
    keys: Arc<dyn KeyProvider>,
    hook: Option<Arc<dyn EventHook>>,
    segment_size: u32,
    labels_in_events: bool,
    key_lock: Mutex<()>,
    /// Objects being written, with the KEK version their key is wrapped
    /// under once known (so that version is not retired meanwhile).
    writing: Mutex<HashMap<String, Option<u32>>>,
}

// Written by hand: the event hook has no `Debug` and the locks hold only
// bookkeeping; the backend and key provider print through their own `Debug`.
impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("backend", &self.backend)
            .field("keys", &self.keys)
            .field("segment_size", &self.segment_size)
            .field("hook", &self.hook.is_some())
            .field("labels_in_events", &self.labels_in_events)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Vault {
    /// A vault over `backend`, wrapping data keys with `keys`, with 64 KiB
    /// segments, no hook, and no labels in events.
    pub fn new(backend: Arc<dyn Backend>, keys: Arc<dyn KeyProvider>) -> Vault {
        Vault {
            backend,
            keys,
            hook: None,
            segment_size: DEFAULT_SEGMENT_SIZE,
            labels_in_events: false,
            key_lock: Mutex::new(()),
            writing: Mutex::new(HashMap::new()),
        }
    }

    /// Reports every operation to `hook`.
    pub fn with_hook(mut self, hook: Arc<dyn EventHook>) -> Vault {
        self.hook = Some(hook);
        self
    }

    /// Plaintext bytes per segment for new objects (256 bytes ..= 8 MiB).
    pub fn with_segment_size(mut self, segment_size: u32) -> Result<Vault> {
        if !(crate::format::MIN_SEGMENT_SIZE..=crate::format::MAX_SEGMENT_SIZE)
            .contains(&segment_size)
        {
            return Err(Error::InvalidArgument(
                "segment size outside 256 bytes ..= 8 MiB",
            ));
        }
        self.segment_size = segment_size;
        Ok(self)
    }

    /// Includes object labels (PHI) in events when `yes`. Off by default.
    pub fn with_labels_in_events(mut self, yes: bool) -> Vault {
        self.labels_in_events = yes;
        self
    }

    fn report<T>(
        &self,
        id: &str,
        operation: Operation,
        result: &Result<T>,
        kek_version: Option<u32>,
        labels: Option<&[(String, String)]>,
    ) {
        if let Some(hook) = &self.hook {
            let outcome = match result {
                Ok(_) => Outcome::Success,
                Err(e) => Outcome::Failure(e),
            };
            hook.on_event(&Event {
                object_id: id,
                operation,
                outcome,
                kek_version,
                labels: if self.labels_in_events {
                    labels.map(Pii::new)
                } else {
                    None
                },
            });
        }
    }

    fn record(&self, id: &str) -> Result<KeyRecord> {
        validate_object_id(id)?;
        let bytes = self
            .backend
            .get_key_record(id)
            .map_err(Error::io("read key record"))?
            .ok_or(Error::NotFound)?;
        KeyRecord::parse(&bytes)
    }

    fn data_key(&self, id: &str, record: &KeyRecord) -> Result<DataKey> {
        self.keys
            .unwrap(record.kek_version, record.wrapped.expose(), id.as_bytes())
            .map_err(|source| Error::KeyRecord {
                kek_version: record.kek_version,
                source,
            })
    }

    /// Starts writing a new object described by `metadata`. Write the
    /// plaintext, then call [`ObjectWriter::finish`]: the object exists
    /// (durably) only once `finish` returns. Dropping the writer discards it.
    pub fn writer(&self, rng: &dyn SecureRandom, metadata: Metadata) -> Result<ObjectWriter<'_>> {
        let result = self.start_writer(rng, &metadata);
        if result.is_err() {
            self.report(
                &metadata.id,
                Operation::Write,
                &result,
                None,
                Some(metadata.labels.expose()),
            );
        }
        result
    }

    fn start_writer(
        &self,
        rng: &dyn SecureRandom,
        metadata: &Metadata,
    ) -> Result<ObjectWriter<'_>> {
        let id = metadata.id.as_str();
        validate_object_id(id)?;
        if self
            .backend
            .get_key_record(id)
            .map_err(Error::io("read key record"))?
            .is_some()
        {
            return Err(Error::AlreadyExists);
        }
        {
            let mut writing = lock(&self.writing);
            if writing.contains_key(id) {
                return Err(Error::AlreadyExists);
            }
            writing.insert(id.to_owned(), None);
        }
        let guard = WritingGuard {
            vault: self,
            id: id.to_owned(),
        };
        let key = DataKey::generate(rng)?;
        let kek_version = {
            // Under the key lock, so that retire_kek sees this writer.
            let _g = lock(&self.key_lock);
            let v = self.keys.current_version()?;
            lock(&self.writing).insert(id.to_owned(), Some(v));
            v
        };
        let wrapped = self.keys.wrap(kek_version, &key, id.as_bytes(), rng)?;
        let record = KeyRecord {
            kek_version,
            wrapped: Secret::new(wrapped),
        }
        .encode()?;
        let sink = self
            .backend
            .create_payload(id)
            .map_err(Error::io("create payload"))?;
        let enc = Encryptor::new(&key, rng, self.segment_size, metadata, sink)?;
        Ok(ObjectWriter {
            guard,
            enc: Some(enc),
            record,
            kek_version,
            labels: metadata.labels.clone(),
        })
    }

    /// Writes a whole object in one call.
    pub fn put(
        &self,
        rng: &dyn SecureRandom,
        metadata: Metadata,
        data: &[u8],
    ) -> Result<ObjectInfo> {
        let mut w = self.writer(rng, metadata)?;
        match w.update(data) {
            Ok(()) => w.finish(),
            Err(e) => {
                let r = Err(e);
                self.report(
                    &w.guard.id,
                    Operation::Write,
                    &r,
                    Some(w.kek_version),
                    Some(w.labels.expose()),
                );
                r
            }
        }
    }

    fn open_inner(&self, id: &str) -> Result<ObjectReader> {
        let record = self.record(id)?;
        let key = self.data_key(id, &record)?;
        let src = self
            .backend
            .open_payload(id)
            .map_err(Error::io("open payload"))?;
        let dec = Decryptor::open(&key, src)?;
        if dec.metadata().id != id {
            return Err(Error::ObjectIdMismatch);
        }
        Ok(ObjectReader {
            dec,
            kek_version: record.kek_version,
        })
    }

    /// Opens an object for streaming or random-access reading. Authenticates
    /// the header, metadata and final segment before returning.
    pub fn open(&self, id: &str) -> Result<ObjectReader> {
        let r = self.open_inner(id);
        let (kek, labels) = match &r {
            Ok(o) => (
                Some(o.kek_version),
                Some(o.metadata().labels.expose().as_slice()),
            ),
            Err(_) => (None, None),
        };
        self.report(id, Operation::Open, &r, kek, labels);
        r
    }

    /// Reads a whole object into memory, with its metadata.
    pub fn get(&self, id: &str) -> Result<(Metadata, Vec<u8>)> {
        let mut reader = self.open(id)?;
        let mut out = Vec::with_capacity(usize::try_from(reader.len()).unwrap_or(0));
        let r = reader.read_to_end(&mut out).map_err(unwrap_io).map(|_| ());
        self.report(
            id,
            Operation::Read,
            &r,
            Some(reader.kek_version),
            Some(reader.metadata().labels.expose().as_slice()),
        );
        r.map(|()| (reader.metadata().clone(), out))
    }

    /// Reads `len` bytes from `offset` (fewer at the end of the object),
    /// decrypting only the segments that cover them.
    pub fn get_range(&self, id: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut reader = self.open(id)?;
        let avail = reader.len().saturating_sub(offset);
        let n = usize::try_from(avail).map_or(len, |a| a.min(len));
        let mut out = vec![0u8; n];
        let r = reader.read_at(offset, &mut out);
        self.report(
            id,
            Operation::Read,
            &r,
            Some(reader.kek_version),
            Some(reader.metadata().labels.expose().as_slice()),
        );
        let got = r?;
        out.truncate(got);
        Ok(out)
    }

    /// Every object (every id with a key record), sorted by id.
    pub fn list(&self) -> Result<Vec<ObjectSummary>> {
        let ids = self.backend.list_key_records().map_err(Error::io("list"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let record = match self.record(&id) {
                Ok(r) => r,
                // Deleted between listing and reading.
                Err(Error::NotFound) => continue,
                Err(e) => return Err(e),
            };
            out.push(ObjectSummary {
                id,
                kek_version: record.kek_version,
            });
        }
        Ok(out)
    }

    /// How many objects use each KEK version.
    pub fn kek_usage(&self) -> Result<BTreeMap<u32, usize>> {
        let mut usage = BTreeMap::new();
        for o in self.list()? {
            *usage.entry(o.kek_version).or_insert(0) += 1;
        }
        Ok(usage)
    }

    fn delete_inner(&self, id: &str) -> Result<()> {
        validate_object_id(id)?;
        let _g = lock(&self.key_lock);
        // Key record first: a crash in between leaves an unreadable payload,
        // never a key without its payload.
        let had_key = self
            .backend
            .delete_key_record(id)
            .map_err(Error::io("delete key record"))?;
        let had_payload = self
            .backend
            .delete_payload(id)
            .map_err(Error::io("delete payload"))?;
        if had_key || had_payload {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Deletes an object: its key record, then its payload.
    pub fn delete(&self, id: &str) -> Result<()> {
        let r = self.delete_inner(id);
        self.report(id, Operation::Delete, &r, None, None);
        r
    }

    /// Crypto-shreds an object: destroys its wrapped data key, durably. The
    /// payload is left in place as ciphertext that nothing can decrypt,
    /// including any copy of it made earlier (backups, replicas); reclaim its
    /// space later with [`Vault::collect_garbage`] or [`Vault::delete`].
    ///
    /// This relies on the key record not being kept elsewhere: keep key
    /// records out of payload backups (they are in their own directory for
    /// that reason), or retire the KEK version that wrapped them.
    pub fn shred(&self, id: &str) -> Result<()> {
        let r = (|| {
            validate_object_id(id)?;
            let _g = lock(&self.key_lock);
            if self
                .backend
                .delete_key_record(id)
                .map_err(Error::io("delete key record"))?
            {
                Ok(())
            } else {
                Err(Error::NotFound)
            }
        })();
        self.report(id, Operation::Shred, &r, None, None);
        r
    }

    fn rewrap_inner(&self, rng: &dyn SecureRandom, id: &str, to: u32) -> Result<bool> {
        let _g = lock(&self.key_lock);
        let record = self.record(id)?;
        if record.kek_version == to {
            return Ok(false);
        }
        let key = self.data_key(id, &record)?;
        let wrapped = self.keys.wrap(to, &key, id.as_bytes(), rng)?;
        let bytes = KeyRecord {
            kek_version: to,
            wrapped: Secret::new(wrapped),
        }
        .encode()?;
        self.backend
            .put_key_record(id, &bytes)
            .map_err(Error::io("write key record"))?;
        Ok(true)
    }

    /// Rewraps one object's data key under KEK version `to`, replacing only
    /// its small key record (atomically); the payload is not touched.
    /// Returns `false` when it was already under `to`.
    pub fn rewrap(&self, rng: &dyn SecureRandom, id: &str, to: u32) -> Result<bool> {
        let r = self.rewrap_inner(rng, id, to);
        self.report(id, Operation::Rewrap, &r, Some(to), None);
        r
    }

    /// Rewraps every object not yet under the provider's current KEK version,
    /// calling `progress` after each object. Failures are collected, not
    /// fatal: the objects concerned keep their previous key record.
    pub fn rotate(
        &self,
        rng: &dyn SecureRandom,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<RotationReport> {
        let to = self.keys.current_version()?;
        let objects = self.list()?;
        let total = objects.len();
        let mut report = RotationReport {
            to_version: to,
            ..RotationReport::default()
        };
        for (i, o) in objects.iter().enumerate() {
            if o.kek_version == to {
                report.already_current += 1;
            } else {
                match self.rewrap(rng, &o.id, to) {
                    Ok(true) => report.rewrapped += 1,
                    Ok(false) => report.already_current += 1,
                    Err(e) => report.failed.push((o.id.clone(), e)),
                }
            }
            progress(Progress { done: i + 1, total });
        }
        Ok(report)
    }

    /// Retires (destroys) KEK `version` at the provider, only when no object
    /// uses it (stored, or being written) and it is not the current version.
    pub fn retire_kek(&self, version: u32) -> Result<()> {
        let current = self.keys.current_version()?;
        if version == current {
            return Err(Error::KekIsCurrent { version });
        }
        let _g = lock(&self.key_lock);
        let in_flight = lock(&self.writing)
            .values()
            .filter(|v| **v == Some(version))
            .count();
        let objects = self.kek_usage()?.get(&version).copied().unwrap_or(0) + in_flight;
        if objects > 0 {
            return Err(Error::KekInUse { version, objects });
        }
        Ok(self.keys.retire(version)?)
    }

    /// Deletes payloads that have no key record: left by [`Vault::shred`],
    /// or by a crash between a payload's commit and its key record's write.
    /// Such payloads are undecryptable; this only reclaims their space.
    /// Objects being written are left alone. Returns the ids removed.
    pub fn collect_garbage(&self) -> Result<Vec<String>> {
        let _g = lock(&self.key_lock);
        let keyed: std::collections::HashSet<String> = self
            .backend
            .list_key_records()
            .map_err(Error::io("list"))?
            .into_iter()
            .collect();
        let mut removed = Vec::new();
        for id in self.backend.list_payloads().map_err(Error::io("list"))? {
            if keyed.contains(&id) || lock(&self.writing).contains_key(&id) {
                continue;
            }
            let r = self
                .backend
                .delete_payload(&id)
                .map(|_| ())
                .map_err(Error::io("delete payload"));
            self.report(&id, Operation::Delete, &r, None, None);
            r?;
            removed.push(id);
        }
        Ok(removed)
    }

    /// The authenticated metadata of an object, without reading its payload
    /// segments.
    pub fn metadata(&self, id: &str) -> Result<Metadata> {
        let r = self.metadata_inner(id);
        let labels = r.as_ref().ok().map(|(m, _)| m.labels.expose().as_slice());
        let kek = r.as_ref().ok().map(|(_, v)| *v);
        self.report(id, Operation::Open, &r, kek, labels);
        r.map(|(m, _)| m)
    }

    fn metadata_inner(&self, id: &str) -> Result<(Metadata, u32)> {
        let record = self.record(id)?;
        let key = self.data_key(id, &record)?;
        let src = self
            .backend
            .open_payload(id)
            .map_err(Error::io("open payload"))?;
        let m = open_metadata(&key, src)?;
        if m.id != id {
            return Err(Error::ObjectIdMismatch);
        }
        Ok((m, record.kek_version))
    }

    /// Deletes every object whose retention has passed (`now >=
    /// retention_until`, seconds since the Unix epoch, supplied by the
    /// caller). The retention date is read from the authenticated header, so
    /// a damaged or forged object is reported in `failed`, never deleted.
    pub fn purge_expired(&self, now: u64) -> Result<PurgeReport> {
        let mut report = PurgeReport::default();
        for o in self.list()? {
            let meta = match self.metadata_inner(&o.id) {
                Ok((m, _)) => m,
                Err(e) => {
                    report.failed.push((o.id, e));
                    continue;
                }
            };
            if now < meta.retention_until {
                report.kept += 1;
                continue;
            }
            let r = self.delete_inner(&o.id);
            self.report(
                &o.id,
                Operation::Purge,
                &r,
                Some(o.kek_version),
                Some(meta.labels.expose().as_slice()),
            );
            match r {
                Ok(()) => report.purged.push(o.id),
                Err(e) => report.failed.push((o.id, e)),
            }
        }
        Ok(report)
    }
}

fn unwrap_io(e: io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        match e.into_inner().map(|b| b.downcast::<Error>()) {
            Some(Ok(inner)) => *inner,
            _ => Error::InvalidArgument("read"),
        }
    } else {
        Error::Io {
            op: "read",
            source: e,
        }
    }
}

struct WritingGuard<'v> {
    vault: &'v Vault,
    id: String,
}

impl Drop for WritingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.vault.writing).remove(&self.id);
    }
}

/// Writes one object as a stream, in constant memory. See [`Vault::writer`].
pub struct ObjectWriter<'v> {
    guard: WritingGuard<'v>,
    enc: Option<Encryptor<Box<dyn PayloadSink>>>,
    record: Vec<u8>,
    kek_version: u32,
    labels: Pii<Vec<(String, String)>>,
}

// Written by hand: the encryptor writes into a `dyn PayloadSink`, which has
// no `Debug`; the key record and the labels are never printed.
impl fmt::Debug for ObjectWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("id", &self.guard.id)
            .field("kek_version", &self.kek_version)
            .finish_non_exhaustive()
    }
}

impl ObjectWriter<'_> {
    /// Encrypts and writes more plaintext.
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.enc
            .as_mut()
            .ok_or(Error::InvalidArgument("writer already finished"))?
            .update(data)
    }

    /// Seals the final segment, makes the payload durable, then writes the
    /// key record. The object exists once this returns `Ok`.
    pub fn finish(mut self) -> Result<ObjectInfo> {
        let r = self.finish_inner();
        let vault = self.guard.vault;
        vault.report(
            &self.guard.id,
            Operation::Write,
            &r,
            Some(self.kek_version),
            Some(self.labels.expose().as_slice()),
        );
        r
    }

    fn finish_inner(&mut self) -> Result<ObjectInfo> {
        let enc = self
            .enc
            .take()
            .ok_or(Error::InvalidArgument("writer already finished"))?;
        let (sink, len) = enc.finish()?;
        sink.commit().map_err(Error::io("commit payload"))?;
        let vault = self.guard.vault;
        let id = self.guard.id.as_str();
        let _g = lock(&vault.key_lock);
        vault
            .backend
            .put_key_record(id, &self.record)
            .map_err(Error::io("write key record"))?;
        Ok(ObjectInfo {
            id: id.to_owned(),
            len,
            kek_version: self.kek_version,
        })
    }
}

impl Write for ObjectWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.update(data).map_err(|e| match e {
            Error::Io { source, .. } => source,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        })?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads one object: `Read` and `Seek` for streaming (a player seeking
/// inside a recording), [`ObjectReader::read_at`] for random access. Only
/// authenticated bytes are returned; the first failure is an error.
#[derive(Debug)]
pub struct ObjectReader {
    dec: Decryptor<Box<dyn ReadAt + Send>>,
    kek_version: u32,
}

impl ObjectReader {
    /// The authenticated metadata.
    pub fn metadata(&self) -> &Metadata {
        self.dec.metadata()
    }

    /// Plaintext length.
    pub fn len(&self) -> u64 {
        self.dec.len()
    }

    /// True for an empty object.
    pub fn is_empty(&self) -> bool {
        self.dec.is_empty()
    }

    /// The KEK version the data key is wrapped under.
    pub fn kek_version(&self) -> u32 {
        self.kek_version
    }

    /// Reads from `offset` into `out`; returns the count (short only at the
    /// end). Decrypts only the covering segments.
    pub fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<usize> {
        self.dec.read_at(offset, out)
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.dec.read(buf)
    }
}

impl Seek for ObjectReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.dec.seek(pos)
    }
}
