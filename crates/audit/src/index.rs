//! A query index over the log, rebuilt from the log whenever it is missing
//! or out of date: for accounting of disclosures and investigations by
//! actor, patient, event type and time range.
//!
//! The index is a file of fixed-size entries, one per record, holding the
//! record's times, 64-bit keyed digests of its actor, patient and event
//! type, and where its frame is. A query filters the entries, reads only
//! the matching records, and compares their fields exactly (so digest
//! collisions cannot produce wrong answers). The index holds no PHI in
//! clear and is never a source of truth: `reindex` rebuilds it.
//!
//! Each method that reads or writes files comes in two forms: `f(...)` on
//! the file system and `f_in(storage, ...)` on any [`Storage`].

use std::io;
use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256};

use crate::error::{Error, Result};
use crate::merkle::Hash;
use carevox_redact::Pii;

use crate::record::{Record, Timestamp};
use crate::storage::{FsStorage, Storage};
use crate::store::{Location, for_each_record_in, read_record_at_in};

/// File name of the index in a log directory.
pub const INDEX_FILE: &str = "index.cvi";
const MAGIC: &[u8; 8] = b"CVXAUIDX";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 8 + 32;
const ENTRY_LEN: usize = 7 * 8;

/// What to look for. Every field given must match.
///
/// The actor and the patient are [`Pii`]: `Debug` prints `<redacted>` for
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// The actor's user id.
    pub actor: Option<Pii<String>>,
    /// The patient reference.
    pub patient: Option<Pii<String>>,
    /// The event type's name (as in JSON, e.g. `recording_access`).
    pub event: Option<String>,
    /// Occurred at or after.
    pub from: Option<Timestamp>,
    /// Occurred at or before.
    pub to: Option<Timestamp>,
}

impl Query {
    /// True if `r` matches every field given.
    pub fn matches(&self, r: &Record) -> bool {
        self.actor.as_ref().is_none_or(|a| r.actor.user_id == *a)
            && self
                .patient
                .as_ref()
                .is_none_or(|p| r.entity.patient.as_ref() == Some(p))
            && self.event.as_deref().is_none_or(|e| r.event.name() == e)
            && self.from.is_none_or(|f| r.occurred >= f)
            && self.to.is_none_or(|t| r.occurred <= t)
    }
}

// Not a redaction: the entries hold only digests, but there is one per
// record, so `Debug` summarises them by count.
impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("count", &self.count)
            .field("head", &self.head)
            .field("entries", &self.entries.len())
            .finish()
    }
}

fn key(kind: u8, s: &str) -> u64 {
    let mut c = Context::new(&SHA256);
    c.update(b"carevox-audit index\0");
    c.update(&[kind]);
    c.update(s.as_bytes());
    let d = c.finish();
    let mut k = [0u8; 8];
    k.copy_from_slice(d.as_ref().get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(k).max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    seq: u64,
    occurred: u64,
    actor: u64,
    patient: u64,
    event: u64,
    loc: Location,
}

/// The query index of one log.
///
/// `Debug` prints its size and head, not its entries.
#[derive(Clone)]
pub struct Index {
    count: u64,
    head: Hash,
    entries: Vec<Entry>,
}

impl Index {
    /// Builds the index by reading every record of the log.
    pub fn build(dir: &Path, archives: &[PathBuf]) -> Result<Self> {
        Self::build_in(&FsStorage, dir, archives)
    }

    /// [`Index::build`] in `storage`.
    pub fn build_in(storage: &dyn Storage, dir: &Path, archives: &[PathBuf]) -> Result<Self> {
        let mut entries = Vec::new();
        let (count, head) = for_each_record_in(storage, dir, archives, |seq, r, loc| {
            entries.push(entry_of(seq, r, loc));
            Ok(())
        })?;
        Ok(Index {
            count,
            head,
            entries,
        })
    }

    /// Records indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no record is indexed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the index into `dir` (atomically: a temporary file renamed).
    pub fn write(&self, dir: &Path) -> Result<()> {
        self.write_in(&FsStorage, dir)
    }

    /// [`Index::write`] in `storage`, through [`Storage::replace`].
    pub fn write_in(&self, storage: &dyn Storage, dir: &Path) -> Result<()> {
        let mut buf = Vec::with_capacity(HEADER_LEN + self.entries.len() * ENTRY_LEN);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&VERSION.to_be_bytes());
        buf.extend_from_slice(&self.count.to_be_bytes());
        buf.extend_from_slice(&self.head);
        for e in &self.entries {
            for v in [
                e.seq,
                e.occurred,
                e.actor,
                e.patient,
                e.event,
                e.loc.segment,
                e.loc.offset,
            ] {
                buf.extend_from_slice(&v.to_be_bytes());
            }
        }
        let path = dir.join(INDEX_FILE);
        storage
            .replace(&path, &buf)
            .map_err(|e| Error::io(&path, e))
    }

    /// Loads the index of `dir`; `Ok(None)` if there is none.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        Self::load_in(&FsStorage, dir)
    }

    /// [`Index::load`] in `storage`.
    pub fn load_in(storage: &dyn Storage, dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(INDEX_FILE);
        let bytes = match storage.read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut r = crate::codec::Reader::new(&bytes, "index");
        if &r.array::<8>()? != MAGIC || r.u16()? != VERSION {
            return Err(Error::Index("has a bad magic or version"));
        }
        let count = r.u64()?;
        let head = r.array()?;
        if !r.remaining().is_multiple_of(ENTRY_LEN) {
            return Err(Error::Index("has a partial entry"));
        }
        let mut entries = Vec::with_capacity(r.remaining() / ENTRY_LEN);
        while r.remaining() > 0 {
            entries.push(Entry {
                seq: r.u64()?,
                occurred: r.u64()?,
                actor: r.u64()?,
                patient: r.u64()?,
                event: r.u64()?,
                loc: Location {
                    segment: r.u64()?,
                    offset: r.u64()?,
                },
            });
        }
        Ok(Some(Index {
            count,
            head,
            entries,
        }))
    }

    /// The index of `dir`, checked entry by entry against the log, and
    /// rebuilt (and rewritten) if missing, damaged, behind the log or
    /// different from it in any entry: a query never answers from an index
    /// that lost or gained an entry. Returns it and whether it was rebuilt.
    pub fn open_current(dir: &Path, archives: &[PathBuf]) -> Result<(Self, bool)> {
        Self::open_current_in(&FsStorage, dir, archives)
    }

    /// [`Index::open_current`] in `storage`.
    pub fn open_current_in(
        storage: &dyn Storage,
        dir: &Path,
        archives: &[PathBuf],
    ) -> Result<(Self, bool)> {
        if let Ok(Some(idx)) = Self::load_in(storage, dir)
            && idx.matches_log(storage, dir, archives)?
        {
            return Ok((idx, false));
        }
        let idx = Self::build_in(storage, dir, archives)?;
        idx.write_in(storage, dir)?;
        Ok((idx, true))
    }

    /// Answers a query: matching records in sequence order.
    pub fn query(&self, dir: &Path, archives: &[PathBuf], q: &Query) -> Result<Vec<(u64, Record)>> {
        self.query_in(&FsStorage, dir, archives, q)
    }

    /// [`Index::query`] in `storage`.
    pub fn query_in(
        &self,
        storage: &dyn Storage,
        dir: &Path,
        archives: &[PathBuf],
        q: &Query,
    ) -> Result<Vec<(u64, Record)>> {
        let actor = q.actor.as_ref().map(|a| key(1, a.expose()));
        let patient = q.patient.as_ref().map(|p| key(2, p.expose()));
        let event = q.event.as_deref().map(|e| key(3, e));
        let mut out = Vec::new();
        for e in &self.entries {
            let hit = actor.is_none_or(|k| e.actor == k)
                && patient.is_none_or(|k| e.patient == k)
                && event.is_none_or(|k| e.event == k)
                && q.from.is_none_or(|f| e.occurred >= f.0)
                && q.to.is_none_or(|t| e.occurred <= t.0);
            if hit {
                let (seq, r) = read_record_at_in(storage, dir, archives, e.loc)?;
                if seq == e.seq && q.matches(&r) {
                    out.push((seq, r));
                }
            }
        }
        Ok(out)
    }
}

fn entry_of(seq: u64, r: &Record, loc: Location) -> Entry {
    Entry {
        seq,
        occurred: r.occurred.0,
        actor: key(1, r.actor.user_id.expose()),
        patient: r.entity.patient.as_ref().map_or(0, |p| key(2, p.expose())),
        event: key(3, r.event.name()),
        loc,
    }
}

impl Index {
    /// True if this index is exactly the one the log yields now: every
    /// entry, in order, and the log's size and head. The index file is not
    /// authenticated (anyone who can write it can drop entries), so it is
    /// checked against the log, one record at a time in bounded memory,
    /// before any answer is given from it.
    fn matches_log(&self, storage: &dyn Storage, dir: &Path, archives: &[PathBuf]) -> Result<bool> {
        let mut i = 0usize;
        let mut same = true;
        let (count, head) = for_each_record_in(storage, dir, archives, |seq, r, loc| {
            same = same && self.entries.get(i) == Some(&entry_of(seq, r, loc));
            i += 1;
            Ok(())
        })?;
        Ok(same && i == self.entries.len() && count == self.count && head == self.head)
    }
}
