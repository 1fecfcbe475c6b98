//! The durable, append-only log with group commit.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::checkpoint::{Checkpoint, Signer, VerifyingKey};
use crate::error::{Error, Result};
use crate::merkle::{Frontier, Hash, MerkleTree, leaf_hash};
use crate::record::{Record, Timestamp};
use crate::segment::{
    FRAME_OVERHEAD, SegmentHeader, checkpoint_header, put_entry_frame, put_frame,
};
use crate::storage::{AppendFile, FsStorage, Storage};
use crate::store::{CHECKPOINT_FILE, list_segments_in, segment_name};

/// How a log is run. The defaults suit a PBX: a checkpoint every 10 000
/// records or every minute of record time, 64 MiB segments.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Write a signed checkpoint after this many new records (0: never by count).
    pub checkpoint_every_records: u64,
    /// Write a signed checkpoint when a record's `recorded` time is this many
    /// milliseconds after the last checkpoint (0: never by time).
    pub checkpoint_every_millis: u64,
    /// Start a new segment file once the current one reaches this size.
    pub segment_max_bytes: u64,
    /// Keep every leaf hash in memory (32 bytes per record, plus as much
    /// again for subtree roots) so that proofs can be made.
    pub keep_proof_tree: bool,
    /// Directories (in the log's storage) holding archived segments, read
    /// on open so that proofs cover them.
    pub archive_dirs: Vec<PathBuf>,
    /// Seal every group commit with a forward-secure key (see
    /// [`SealSeed`](crate::SealSeed)). Given when the log has no sealing
    /// key yet, it starts sealing from epoch 0; a log that has a key file
    /// seals on with it and ignores this. Keep the seed for the verifier,
    /// not on the machine that writes the log.
    pub seal_seed: Option<crate::seal::SealSeed>,
    /// How far (milliseconds) a record's `recorded` time may lie behind the
    /// previous record's and still be appended, at the previous record's
    /// time (its `occurred` time is kept as given). Writers on several
    /// threads read their clock before they reach the log, so two of them
    /// can arrive out of order by the moment between; with 0 (the default)
    /// the later-arriving one is refused with
    /// [`Error::TimeWentBackwards`](crate::Error::TimeWentBackwards), as is
    /// any record further behind than the window (a clock stepped back).
    pub reorder_window_millis: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            checkpoint_every_records: 10_000,
            checkpoint_every_millis: 60_000,
            segment_max_bytes: 64 << 20,
            keep_proof_tree: true,
            archive_dirs: Vec::new(),
            seal_seed: None,
            reorder_window_millis: 0,
        }
    }
}

/// A tail cut on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file that was cut.
    pub path: PathBuf,
    /// The offset it was cut at (its new length).
    pub offset: u64,
    /// How many bytes were removed.
    pub bytes_cut: u64,
    /// What was found at the offset.
    pub reason: &'static str,
}

/// What opening a log found.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Records in the log.
    pub records: u64,
    /// First sequence number still present (greater than zero when early
    /// segments were archived and not given on open).
    pub first_seq: u64,
    /// Segment files read.
    pub segments: usize,
    /// Checkpoints found.
    pub checkpoints: usize,
    /// Torn tails that were cut (unacknowledged writes of a crash).
    pub torn: Vec<TornTail>,
}

struct Roll {
    at: usize,
    header: Vec<u8>,
    first_seq: u64,
}

struct CpRequest {
    size: u64,
    root: Hash,
    time: Timestamp,
}

struct State {
    next_seq: u64,
    last_hash: Hash,
    frontier: Frontier,
    tree: Option<MerkleTree>,
    last_recorded: u64,
    buf: Vec<u8>,
    spare: Vec<u8>,
    rolls: Vec<Roll>,
    seg_bytes: u64,
    seg_records: u64,
    durable: u64,
    flushing: bool,
    poisoned: bool,
    cp_size: u64,
    cp_time: u64,
    cp_request: Option<CpRequest>,
    last_checkpoint: Option<Checkpoint>,
    scratch: Vec<u8>,
}

struct Io {
    dir: PathBuf,
    seg_file: Box<dyn AppendFile>,
    seg_path: PathBuf,
    sealed: Vec<PathBuf>,
}

/// The sealing key and the seals file.
struct SealIo {
    key: crate::seal::SealKey,
    file: Box<dyn AppendFile>,
    path: PathBuf,
    key_path: PathBuf,
    sealed: u64,
}

/// The checkpoint file, locked apart from the segments so that the next
/// round's records can be written and synced while a checkpoint is.
struct CpIo {
    file: Box<dyn AppendFile>,
    path: PathBuf,
    /// The newest checkpoint in the file. Every write is checked against it
    /// under this lock, the one place checkpoints are written: a request for
    /// the same size and time (an on-demand checkpoint racing an automatic
    /// one) returns it instead of writing it twice, and nothing that would
    /// go backwards is ever written.
    last: Option<Checkpoint>,
}

/// A tamper-evident audit log in a directory. `Send + Sync`: share it
/// between threads with an `Arc`.
///
/// [`AuditLog::append`] returns once the record is on disk; concurrent
/// appends share one `fdatasync` (group commit). The files are kept by a
/// [`Storage`]: the file system for [`AuditLog::open`], any other for
/// [`AuditLog::open_in`].
pub struct AuditLog {
    seal: Mutex<Option<SealIo>>,
    state: Mutex<State>,
    cond: Condvar,
    io: Mutex<Io>,
    cp_io: Mutex<CpIo>,
    signer: Signer,
    config: LogConfig,
    dir: PathBuf,
    storage: Arc<dyn Storage>,
}

// Written by hand: the state sits behind mutexes, and what identifies a log
// is its directory, its storage and its public key (the signer's secret half
// is never printed).
impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .field("storage", &self.storage)
            .field("key", &self.signer.verifying_key())
            .finish_non_exhaustive()
    }
}

fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

impl AuditLog {
    /// Opens (or creates) the log in `dir`, signing checkpoints with
    /// `signer`. A torn tail left by a crash is cut and reported; damage
    /// anywhere else is an error, so that no acknowledged record is lost.
    pub fn open(
        dir: impl AsRef<Path>,
        signer: Signer,
        config: LogConfig,
    ) -> Result<(Self, OpenReport)> {
        Self::open_in(Arc::new(FsStorage), dir, signer, config)
    }

    /// Opens (or creates) the log in `dir` of `storage`: [`AuditLog::open`]
    /// with another storage than the file system, such as
    /// [`MemoryStorage`](crate::MemoryStorage) in tests.
    pub fn open_in(
        storage: Arc<dyn Storage>,
        dir: impl AsRef<Path>,
        signer: Signer,
        config: LogConfig,
    ) -> Result<(Self, OpenReport)> {
        let dir = dir.as_ref().to_path_buf();
        let st = &*storage;
        st.create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut report = OpenReport::default();
        let key = signer.verifying_key();
        let cp_path = dir.join(CHECKPOINT_FILE);

        // The verifier's checks, exactly: opening accepts what `verify`
        // accepts and refuses what it refuses.
        let opts = crate::verify::VerifyOptions {
            archive_dirs: config.archive_dirs.clone(),
            ..crate::verify::VerifyOptions::default()
        };
        let scanned = crate::verify::scan_log(st, &dir, &key, opts, config.keep_proof_tree)?;
        if let Some(d) = scanned.report.damage {
            return Err(Error::Corrupt {
                reason: d.to_string(),
                path: d.path,
                offset: d.offset,
            });
        }
        let segs = scanned.segments;
        if let Some((path, offset)) = &scanned.report.torn_tail {
            let len = st.file_len(path).map_err(|e| Error::io(path, e))?;
            st.truncate(path, *offset).map_err(|e| Error::io(path, e))?;
            report.torn.push(TornTail {
                path: path.clone(),
                offset: *offset,
                bytes_cut: len.saturating_sub(*offset),
                reason: "unacknowledged write at the end of the newest segment",
            });
        }
        if let Some((valid_len, reason)) = scanned.checkpoint_tail {
            let len = st.file_len(&cp_path).map_err(|e| Error::io(&cp_path, e))?;
            if valid_len == 0 {
                st.remove(&cp_path).map_err(|e| Error::io(&cp_path, e))?;
            } else {
                st.truncate(&cp_path, valid_len)
                    .map_err(|e| Error::io(&cp_path, e))?;
            }
            report.torn.push(TornTail {
                path: cp_path.clone(),
                offset: valid_len,
                bytes_cut: len.saturating_sub(valid_len),
                reason,
            });
        }
        let live = list_segments_in(st, &dir, &[])?;
        let next_seq = scanned.frontier.size();
        let last_hash = scanned.last_hash;
        let frontier = scanned.frontier;
        let tree = scanned.tree;
        let last_recorded = scanned.last_recorded;
        report.first_seq = scanned.report.first_seq;
        report.segments = segs.len();
        report.records = scanned.report.records;
        report.checkpoints = scanned.report.checkpoints;
        let last_checkpoint = scanned.report.last_checkpoint;
        let newest_is_archived = segs
            .last()
            .is_some_and(|(p, _, _)| !live.iter().any(|l| &l.path == p));
        let current = segs.last().cloned();

        // The file and its directory entry are durable when it returns.
        let cp_file = match st.open_append(&cp_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => st
                .create_append(&cp_path, &checkpoint_header())
                .map_err(|e| Error::io(&cp_path, e))?,
            Err(e) => return Err(Error::io(&cp_path, e)),
        };

        let (seg_path, seg_bytes, seg_records, created) = match current {
            Some((path, bytes, records)) => (path, bytes, records, None),
            None => {
                let path = dir.join(segment_name(0));
                let mut header = Vec::new();
                SegmentHeader {
                    first_seq: 0,
                    prev_hash: [0; 32],
                    frontier: Frontier::new(),
                }
                .encode(&mut header);
                let file = create_segment(st, &path, &header)?;
                (path, header.len() as u64, 0, Some(file))
            }
        };
        if newest_is_archived {
            return Err(corrupt(
                &seg_path,
                0,
                "the newest segment is in an archive directory",
            ));
        }
        let seg_file = match created {
            Some(f) => f,
            None => st
                .open_append(&seg_path)
                .map_err(|e| Error::io(&seg_path, e))?,
        };
        let sealed = live
            .iter()
            .filter(|s| s.path != seg_path && segs.iter().any(|(p, _, _)| p == &s.path))
            .map(|s| s.path.clone())
            .collect();

        let recovery: Vec<Record> = report
            .torn
            .iter()
            .map(|t| recovery_record(t, last_recorded))
            .collect();
        let (cp_size, cp_time) = last_checkpoint
            .as_ref()
            .map_or((0, 0), |c| (c.tree_size, c.time.0));
        let state = State {
            next_seq,
            last_hash,
            frontier,
            tree,
            last_recorded,
            buf: Vec::with_capacity(1 << 16),
            spare: Vec::with_capacity(1 << 16),
            rolls: Vec::new(),
            seg_bytes,
            seg_records,
            durable: next_seq,
            flushing: false,
            poisoned: false,
            cp_size,
            cp_time,
            cp_request: None,
            last_checkpoint: last_checkpoint.clone(),
            scratch: Vec::with_capacity(512),
        };
        let io = Io {
            dir: dir.clone(),
            seg_file,
            seg_path,
            sealed,
        };
        let cp_io = CpIo {
            file: cp_file,
            path: cp_path,
            last: last_checkpoint,
        };
        let seal = open_sealing(st, &dir, config.seal_seed.as_ref(), next_seq)?;
        let log = AuditLog {
            seal: Mutex::new(seal),
            state: Mutex::new(state),
            cond: Condvar::new(),
            io: Mutex::new(io),
            cp_io: Mutex::new(cp_io),
            signer,
            config,
            dir,
            storage,
        };
        // No cut is silent: each is recorded in the log itself, durably,
        // before the log is handed out.
        if !recovery.is_empty() {
            log.append_batch(&recovery)?;
        }
        // Records written but never sealed (a crash before their seal):
        // never acknowledged, kept, and sealed now.
        log.seal_round(&log.storage, next_seq, last_hash)?;
        Ok((log, report))
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| Error::Poisoned)
    }

    /// Frames one record into the pending buffer; returns its sequence number.
    fn stage(&self, st: &mut State, record: &Record) -> Result<u64> {
        let at = self.admit(st, record.recorded.0)?;
        let raised;
        let record = if at == record.recorded.0 {
            record
        } else {
            raised = Self::recorded_at(record, at);
            &raised
        };
        let mut scratch = std::mem::take(&mut st.scratch);
        scratch.clear();
        let encoded = record.encode(&mut scratch);
        let result = encoded.and_then(|()| self.stage_encoded(st, &scratch, at));
        st.scratch = scratch;
        result
    }

    /// The `recorded` time a record is appended with: its own, or the
    /// previous record's when it lies behind it within the reorder window.
    /// Refuses a record on a poisoned log or one whose time goes further
    /// backwards.
    fn admit(&self, st: &State, recorded: u64) -> Result<u64> {
        if st.poisoned {
            return Err(Error::Poisoned);
        }
        if recorded >= st.last_recorded {
            return Ok(recorded);
        }
        if st.last_recorded - recorded <= self.config.reorder_window_millis {
            return Ok(st.last_recorded);
        }
        Err(Error::TimeWentBackwards {
            recorded,
            previous: st.last_recorded,
        })
    }

    /// `record` with its `recorded` time raised to `at`.
    fn recorded_at(record: &Record, at: u64) -> Record {
        let mut r = record.clone();
        r.recorded = Timestamp(at);
        r
    }

    fn stage_encoded(&self, st: &mut State, rec: &[u8], recorded: u64) -> Result<u64> {
        let seq = st.next_seq;
        let next = seq.checked_add(1).ok_or(Error::SequenceOverflow)?;
        let frame_len = (rec.len() + crate::segment::ENTRY_PREFIX + FRAME_OVERHEAD) as u64;
        if st.seg_records > 0 && st.seg_bytes + frame_len > self.config.segment_max_bytes {
            let mut header = Vec::new();
            SegmentHeader {
                first_seq: seq,
                prev_hash: st.last_hash,
                frontier: st.frontier.clone(),
            }
            .encode(&mut header);
            st.seg_bytes = header.len() as u64;
            st.seg_records = 0;
            let at = st.buf.len();
            st.rolls.push(Roll {
                at,
                header,
                first_seq: seq,
            });
        }
        let start = st.buf.len();
        let prev = st.last_hash;
        put_entry_frame(&mut st.buf, seq, &prev, rec)?;
        let end = st.buf.len();
        let body = st
            .buf
            .get(start + 4..end - 4)
            .ok_or_else(|| Error::malformed("staged frame", start, "out of range"))?;
        let h = leaf_hash(body);
        st.last_hash = h;
        // Cannot fail: the size is `seq`, checked above.
        st.frontier.push(h)?;
        if let Some(t) = st.tree.as_mut() {
            t.push(h);
        }
        st.next_seq = next;
        st.last_recorded = recorded;
        st.seg_bytes += frame_len;
        st.seg_records += 1;

        if st.cp_size == 0 && st.cp_time == 0 {
            // No checkpoint yet: the time interval starts with the first record.
            st.cp_time = recorded;
        }
        let by_count = self.config.checkpoint_every_records > 0
            && st.next_seq - st.cp_size >= self.config.checkpoint_every_records;
        let by_time = self.config.checkpoint_every_millis > 0
            && recorded.saturating_sub(st.cp_time) >= self.config.checkpoint_every_millis;
        if by_count || by_time {
            // An on-demand checkpoint may carry a later time than this
            // record: checkpoint times never go backwards.
            let time = recorded.max(st.cp_time);
            st.cp_size = st.next_seq;
            st.cp_time = time;
            st.cp_request = Some(CpRequest {
                size: st.next_seq,
                root: st.frontier.root(),
                time: Timestamp(time),
            });
        }
        Ok(seq)
    }

    /// Runs one flush round as leader: writes everything staged with one
    /// write and one `fdatasync` per segment file, wakes the writers whose
    /// records that made durable, then signs and writes a requested
    /// checkpoint. The checkpoint file has its own lock, taken before the
    /// segment lock is released: checkpoints stay in order, and the next
    /// round's records are written and synced while this checkpoint is.
    fn lead<'a>(&'a self, mut st: MutexGuard<'a, State>) -> Result<MutexGuard<'a, State>> {
        st.flushing = true;
        let fresh = std::mem::take(&mut st.spare);
        let mut buf = std::mem::replace(&mut st.buf, fresh);
        let rolls = std::mem::take(&mut st.rolls);
        let cp = st.cp_request.take();
        let end = st.next_seq;
        let head = st.last_hash;
        drop(st);

        let (written, cp_io) = match self.io.lock() {
            Ok(mut io) => {
                let written = self
                    .write_records(&mut io, &buf, &rolls)
                    .and_then(|()| self.seal_round(&self.storage, end, head));
                let cp_io = match (&cp, &written) {
                    (Some(_), Ok(())) => self.cp_io.lock().ok(),
                    _ => None,
                };
                (written, cp_io)
            }
            Err(_) => (Err(Error::Poisoned), None),
        };

        let mut st = self.lock()?;
        buf.clear();
        st.spare = buf;
        st.flushing = false;
        match written {
            Ok(()) => st.durable = st.durable.max(end),
            Err(_) => st.poisoned = true,
        }
        self.cond.notify_all();
        let Some(req) = cp else {
            return Ok(st);
        };
        drop(st);

        let Some(mut cp_io) = cp_io else {
            // The records were not written (the log is poisoned) or the
            // checkpoint file's lock is poisoned: no checkpoint.
            let mut st = self.lock()?;
            st.poisoned = true;
            return Ok(st);
        };
        let signed = self.write_checkpoint(&mut cp_io, req);
        // Published before the checkpoint file is released, so that a later
        // checkpoint cannot be overtaken by this one.
        let mut st = self.lock()?;
        match signed {
            Ok(cp) => st.last_checkpoint = Some(cp),
            Err(_) => st.poisoned = true,
        }
        drop(cp_io);
        self.cond.notify_all();
        Ok(st)
    }

    fn write_records(&self, io: &mut Io, buf: &[u8], rolls: &[Roll]) -> Result<()> {
        let mut pos = 0usize;
        for roll in rolls {
            let chunk = buf
                .get(pos..roll.at)
                .ok_or_else(|| Error::malformed("staged frames", pos, "out of range"))?;
            write_sync(&mut *io.seg_file, &io.seg_path, chunk)?;
            let path = io.dir.join(segment_name(roll.first_seq));
            let file = create_segment(&*self.storage, &path, &roll.header)?;
            let old = std::mem::replace(&mut io.seg_path, path);
            io.sealed.push(old);
            io.seg_file = file;
            pos = roll.at;
        }
        let chunk = buf
            .get(pos..)
            .ok_or_else(|| Error::malformed("staged frames", pos, "out of range"))?;
        if !chunk.is_empty() {
            write_sync(&mut *io.seg_file, &io.seg_path, chunk)?;
        }
        Ok(())
    }

    /// Seals the log at `size` records (chain hash `head`) with the
    /// current epoch's key, makes the seal durable, then moves to the next
    /// epoch: the new key replaces the old one in its file durably and the
    /// old one is zeroized. Runs before any writer of the round is woken.
    fn seal_round(&self, storage: &Arc<dyn Storage>, size: u64, head: Hash) -> Result<()> {
        let mut guard = self.seal.lock().map_err(|_| Error::Poisoned)?;
        let Some(seal) = guard.as_mut() else {
            return Ok(());
        };
        if size <= seal.sealed {
            return Ok(());
        }
        let s = seal.key.seal(size, head);
        let mut framed = Vec::with_capacity(96);
        put_frame(&mut framed, &s.to_bytes())?;
        write_sync(&mut *seal.file, &seal.path, &framed)?;
        let next = seal.key.next()?;
        storage
            .replace(&seal.key_path, &next.to_file())
            .map_err(|e| Error::io(&seal.key_path, e))?;
        // The old key is zeroized as it is dropped here.
        seal.key = next;
        seal.sealed = size;
        Ok(())
    }

    fn write_checkpoint(&self, cp_io: &mut CpIo, req: CpRequest) -> Result<Checkpoint> {
        if let Some(last) = &cp_io.last
            && req.size <= last.tree_size
            && req.time <= last.time
        {
            // The same checkpoint (or one it supersedes) is already
            // written: the file never holds one twice or out of order.
            return Ok(last.clone());
        }
        let cp = self.signer.sign(req.size, req.root, req.time);
        let mut framed = Vec::with_capacity(160);
        put_frame(&mut framed, &cp.to_bytes())?;
        write_sync(&mut *cp_io.file, &cp_io.path, &framed)?;
        cp_io.last = Some(cp.clone());
        Ok(cp)
    }

    fn wait<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        target: u64,
    ) -> Result<MutexGuard<'a, State>> {
        loop {
            if st.durable >= target {
                return Ok(st);
            }
            if st.poisoned {
                return Err(Error::Poisoned);
            }
            if st.flushing {
                st = self.cond.wait(st).map_err(|_| Error::Poisoned)?;
            } else {
                st = self.lead(st)?;
            }
        }
    }

    /// Appends a record and returns its sequence number once it is durable.
    ///
    /// The record's `recorded` time must not be before the previous
    /// record's. Appends from many threads share one `fdatasync`.
    pub fn append(&self, record: &Record) -> Result<u64> {
        let mut st = self.lock()?;
        let seq = self.stage(&mut st, record)?;
        drop(self.wait(st, seq.saturating_add(1))?);
        Ok(seq)
    }

    /// Appends records in order and returns their sequence numbers once
    /// all are durable. On an error in the middle, the records before it
    /// are appended.
    pub fn append_batch(&self, records: &[Record]) -> Result<Range<u64>> {
        // Encoding needs no lock: it is done first, so that the lock is held
        // only to chain, hash and frame the records.
        let mut encoded = Vec::with_capacity(records.len().saturating_mul(256));
        let mut ends = Vec::with_capacity(records.len());
        let mut staged = Ok(());
        for r in records {
            match r.encode(&mut encoded) {
                Ok(()) => ends.push(encoded.len()),
                Err(e) => {
                    staged = Err(e);
                    break;
                }
            }
        }
        let mut st = self.lock()?;
        let first = st.next_seq;
        let mut start = 0;
        for (r, &end) in records.iter().zip(&ends) {
            let Some(bytes) = encoded.get(start..end) else {
                staged = Err(Error::malformed("encoded records", start, "out of range"));
                break;
            };
            start = end;
            let staged_one = self.admit(&st, r.recorded.0).and_then(|at| {
                if at == r.recorded.0 {
                    self.stage_encoded(&mut st, bytes, at)
                } else {
                    // Behind within the window: encoded again at its new time.
                    let mut raised = Vec::new();
                    Self::recorded_at(r, at).encode(&mut raised)?;
                    self.stage_encoded(&mut st, &raised, at)
                }
            });
            if let Err(e) = staged_one {
                staged = Err(e);
                break;
            }
        }
        let end = st.next_seq;
        drop(self.wait(st, end)?);
        staged.map(|()| first..end)
    }

    /// Stages a record without waiting: returns its sequence number at
    /// once. It is durable after [`AuditLog::wait_durable`] for that number
    /// (or any later append) returns.
    pub fn submit(&self, record: &Record) -> Result<u64> {
        let mut st = self.lock()?;
        self.stage(&mut st, record)
    }

    /// Waits until the record `seq` (and all before it) is durable.
    pub fn wait_durable(&self, seq: u64) -> Result<()> {
        let st = self.lock()?;
        drop(self.wait(st, seq.saturating_add(1))?);
        Ok(())
    }

    /// Makes every staged record durable; returns the durable size.
    pub fn sync(&self) -> Result<u64> {
        let st = self.lock()?;
        let target = st.next_seq;
        let st = self.wait(st, target)?;
        Ok(st.durable)
    }

    /// Writes a signed checkpoint of everything appended so far, now.
    pub fn checkpoint(&self, now: Timestamp) -> Result<Checkpoint> {
        let mut st = self.lock()?;
        if now.0 < st.cp_time {
            return Err(Error::TimeWentBackwards {
                recorded: now.0,
                previous: st.cp_time,
            });
        }
        while st.flushing {
            st = self.cond.wait(st).map_err(|_| Error::Poisoned)?;
        }
        if st.poisoned {
            return Err(Error::Poisoned);
        }
        let size = st.next_seq;
        if let Some(cp) = &st.last_checkpoint
            && cp.tree_size == size
            && cp.time == now
        {
            // Already signed: writing it again would duplicate it.
            return Ok(cp.clone());
        }
        st.cp_size = size;
        st.cp_time = now.0;
        st.cp_request = Some(CpRequest {
            size,
            root: st.frontier.root(),
            time: now,
        });
        let st = self.lead(st)?;
        if st.poisoned {
            return Err(Error::Poisoned);
        }
        match &st.last_checkpoint {
            Some(cp) if cp.tree_size == size && cp.time == now => Ok(cp.clone()),
            _ => Err(Error::Poisoned),
        }
    }

    /// Writes a checkpoint if records were added and the configured
    /// interval has passed since the last one; call it from a timer.
    pub fn tick(&self, now: Timestamp) -> Result<Option<Checkpoint>> {
        let due = {
            let st = self.lock()?;
            self.config.checkpoint_every_millis > 0
                && st.next_seq > st.cp_size
                && now.0.saturating_sub(st.cp_time) >= self.config.checkpoint_every_millis
        };
        if due {
            self.checkpoint(now).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The number of records appended (durable or staged).
    pub fn size(&self) -> u64 {
        self.lock().map_or(0, |s| s.next_seq)
    }

    /// The number of records known durable.
    pub fn durable_size(&self) -> u64 {
        self.lock().map_or(0, |s| s.durable)
    }

    /// The current root hash.
    pub fn root(&self) -> Result<Hash> {
        Ok(self.lock()?.frontier.root())
    }

    /// The most recent checkpoint.
    pub fn last_checkpoint(&self) -> Option<Checkpoint> {
        self.lock().ok().and_then(|s| s.last_checkpoint.clone())
    }

    /// The public key that verifies this log's checkpoints.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signer.verifying_key()
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The storage that keeps the log's files.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    fn with_tree<T>(&self, f: impl FnOnce(&MerkleTree) -> Result<T>) -> Result<T> {
        let st = self.lock()?;
        match &st.tree {
            Some(t) => f(t),
            None => Err(Error::HistoryUnavailable),
        }
    }

    /// The root hash at an earlier size.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.with_tree(|t| t.root_at(size))
    }

    /// The leaf hash (and chain hash) of record `seq`.
    pub fn leaf_hash(&self, seq: u64) -> Result<Hash> {
        self.with_tree(|t| {
            t.leaf(seq).ok_or(Error::ProofRange {
                index: seq,
                size: t.size(),
            })
        })
    }

    /// The inclusion proof of record `seq` in the tree of `size` records.
    pub fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>> {
        self.with_tree(|t| t.inclusion_proof(seq, size))
    }

    /// The consistency proof between tree sizes `old` and `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.with_tree(|t| t.consistency_proof(old, new))
    }

    /// Moves every sealed segment (all but the one being written) into
    /// `dest`, which is created if needed. The chain and the checkpoints
    /// still verify when the verifier is given `dest` as an archive.
    pub fn archive_sealed(&self, dest: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        let dest = dest.as_ref();
        let st = &*self.storage;
        st.create_dir(dest).map_err(|e| Error::io(dest, e))?;
        let mut io = self.io.lock().map_err(|_| Error::Poisoned)?;
        let mut moved = Vec::new();
        for path in std::mem::take(&mut io.sealed) {
            let Some(name) = path.file_name() else {
                continue;
            };
            let target = dest.join(name);
            st.move_file(&path, &target)
                .map_err(|e| Error::io(&target, e))?;
            moved.push(target);
        }
        st.sync_dir(dest).map_err(|e| Error::io(dest, e))?;
        st.sync_dir(&io.dir).map_err(|e| Error::io(&io.dir, e))?;
        Ok(moved)
    }
}

/// Loads (or, given a seed, creates) the sealing key and the seals file.
/// The key file must be ahead of every seal: if a crash came between a
/// seal and the key's replacement, the key moves on first, so that no key
/// ever seals twice.
fn open_sealing(
    st: &dyn Storage,
    dir: &Path,
    seed: Option<&crate::seal::SealSeed>,
    size: u64,
) -> Result<Option<SealIo>> {
    use crate::seal::{KEY_FILE, SEALS_FILE, SealKey, parse_seals, seals_header};
    let key_path = dir.join(KEY_FILE);
    let path = dir.join(SEALS_FILE);
    let key = match st.read(&key_path) {
        Ok(bytes) => {
            SealKey::from_file(&bytes).map_err(|e| corrupt(&key_path, 0, e.to_string()))?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => match seed {
            None => return Ok(None),
            Some(seed) => {
                let key = seed.key();
                st.replace(&key_path, &key.to_file())
                    .map_err(|e| Error::io(&key_path, e))?;
                key
            }
        },
        Err(e) => return Err(Error::io(&key_path, e)),
    };
    let (file, seals) = match st.read(&path) {
        Ok(bytes) => {
            let seals = parse_seals(&bytes).map_err(|(off, why)| corrupt(&path, off, why))?;
            let file = st.open_append(&path).map_err(|e| Error::io(&path, e))?;
            (file, seals)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let file = st
                .create_append(&path, &seals_header())
                .map_err(|e| Error::io(&path, e))?;
            (file, Vec::new())
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    let (last_epoch, sealed) = seals
        .last()
        .map_or((None, 0), |(s, _)| (Some(s.epoch), s.size));
    if sealed > size {
        return Err(corrupt(
            &path,
            0,
            "a seal covers records that are not there",
        ));
    }
    let key = match last_epoch {
        Some(e) if e >= key.epoch => {
            let next = key.forward_to(e.checked_add(1).ok_or(Error::SequenceOverflow)?)?;
            st.replace(&key_path, &next.to_file())
                .map_err(|e| Error::io(&key_path, e))?;
            next
        }
        _ => key,
    };
    Ok(Some(SealIo {
        key,
        file,
        path,
        key_path,
        sealed,
    }))
}

/// The record that says what recovery cut. Its time is the last record's
/// (opening reads no clock); the details name the file, the offset, the
/// bytes cut and why.
fn recovery_record(t: &TornTail, last_recorded: u64) -> Record {
    let file = t
        .path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Record::new(
        crate::record::EventType::LogRecovery,
        crate::record::Action::Delete,
        crate::record::Outcome::Success,
        Timestamp(last_recorded),
        "carevox-audit",
        "carevox-audit recovery",
    )
    .with_detail("file", file)
    .with_detail("offset", t.offset.to_string())
    .with_detail("bytes_cut", t.bytes_cut.to_string())
    .with_detail("reason", t.reason)
}

/// Appends `bytes` and returns once they are durable (`fdatasync`).
fn write_sync(file: &mut dyn AppendFile, path: &Path, bytes: &[u8]) -> Result<()> {
    file.append(bytes).map_err(|e| Error::io(path, e))?;
    file.sync().map_err(|e| Error::io(path, e))
}

/// Creates a segment holding `header`; the file and its directory entry
/// are durable when it returns.
fn create_segment(
    storage: &dyn Storage,
    path: &Path,
    header: &[u8],
) -> Result<Box<dyn AppendFile>> {
    storage
        .create_append(path, header)
        .map_err(|e| Error::io(path, e))
}
