//! The offline verifier: given a log directory and the public key, checks
//! framing, the hash chain, sequence numbers, Merkle roots against every
//! signed checkpoint, and the signatures; names the first bad record and the
//! kind of damage.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, VerifyingKey};
use crate::error::Result;
use crate::merkle::MerkleTree;
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::record::Record;
use crate::segment::{
    Entry, FrameError, MAX_HEADER_LEN, SegmentHeader, frame_checksum_ok, frame_span, read_frame,
};
use crate::storage::{FsStorage, Storage};
use crate::store::{CHECKPOINT_FILE, list_segments_in, scan_checkpoints_in};

/// How far verification has got, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Records checked so far.
    pub records: u64,
    /// Segment bytes read so far.
    pub bytes: u64,
    /// Total segment bytes to read.
    pub total_bytes: u64,
}

/// Options of [`verify_log`].
#[derive(Default)]
pub struct VerifyOptions<'a> {
    /// Directories holding archived segments.
    pub archive_dirs: Vec<PathBuf>,
    /// A checkpoint kept outside the log (by an auditor, a witness, another
    /// site): the log must still contain exactly that tree, which detects a
    /// rollback or a rewrite that the log's own checkpoints cannot.
    pub trusted: Option<Checkpoint>,
    /// Called now and then with the progress.
    pub progress: Option<&'a mut dyn FnMut(Progress)>,
    /// The seed of the log's sealing keys: every seal is checked, and
    /// every record a seal covers must be the one sealed. Without it the
    /// seals are not read.
    pub seal_seed: Option<crate::seal::SealSeed>,
}

// Written by hand because the progress callback has no `Debug`; the seed
// prints through `SealSeed`'s own (derived, redacting) `Debug`.
impl fmt::Debug for VerifyOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("archive_dirs", &self.archive_dirs)
            .field("trusted", &self.trusted)
            .field("progress", &self.progress.is_some())
            .field("seal_seed", &self.seal_seed)
            .finish()
    }
}

/// The kind of damage found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DamageKind {
    /// A record's bytes were changed: its frame checksum or length is wrong,
    /// it does not decode, or its hash no longer matches the chain hash its
    /// successor holds.
    Modified,
    /// Records are missing from the sequence.
    Deleted {
        /// How many sequence numbers are missing.
        count: u64,
    },
    /// A record that does not belong was inserted.
    Inserted,
    /// Records appear out of order.
    Reordered,
    /// The log ends before the size a signed checkpoint covers.
    Truncated {
        /// The size the checkpoint covers.
        checkpoint_size: u64,
    },
    /// A segment file's header is damaged or does not continue the chain.
    BadSegment,
    /// A checkpoint's signature does not verify with the key (forged, or
    /// replaced by one from another key).
    ForgedCheckpoint,
    /// A validly signed checkpoint is out of order (replaced by or
    /// duplicated from another one).
    ReplacedCheckpoint,
    /// The checkpoint file's framing is damaged.
    CheckpointFileDamaged,
    /// The records do not hash to the root a valid checkpoint signed: they
    /// were rewritten with a consistent chain.
    RootMismatch,
    /// The log holds fewer records than an external trusted checkpoint.
    Rollback {
        /// The trusted checkpoint's size.
        trusted_size: u64,
    },
    /// The log's tree at the size of an external trusted checkpoint is not
    /// the tree that checkpoint signed.
    Fork,
    /// The external trusted checkpoint itself does not verify.
    UntrustedCheckpoint,
    /// A seal of a group commit is missing, damaged or forged (its tag
    /// does not verify with that epoch's key), or out of order.
    BadSeal,
    /// A sequence number or tree size read from the files would grow past
    /// the largest one the format holds (`2^64 - 1`).
    SequenceOverflow,
}

impl fmt::Display for DamageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DamageKind::Modified => write!(f, "modified record"),
            DamageKind::Deleted { count } => write!(f, "{count} deleted record(s)"),
            DamageKind::Inserted => write!(f, "inserted record"),
            DamageKind::Reordered => write!(f, "reordered records"),
            DamageKind::Truncated { checkpoint_size } => {
                write!(
                    f,
                    "truncated below a checkpoint of {checkpoint_size} records"
                )
            }
            DamageKind::BadSegment => write!(f, "bad segment header"),
            DamageKind::ForgedCheckpoint => write!(f, "forged checkpoint"),
            DamageKind::ReplacedCheckpoint => write!(f, "replaced checkpoint"),
            DamageKind::CheckpointFileDamaged => write!(f, "damaged checkpoint file"),
            DamageKind::RootMismatch => write!(f, "records do not match a signed root"),
            DamageKind::Rollback { trusted_size } => {
                write!(
                    f,
                    "rollback below a trusted checkpoint of {trusted_size} records"
                )
            }
            DamageKind::Fork => write!(f, "log differs from a trusted checkpoint"),
            DamageKind::UntrustedCheckpoint => write!(f, "trusted checkpoint does not verify"),
            DamageKind::SequenceOverflow => write!(f, "sequence number out of range"),
            DamageKind::BadSeal => write!(f, "missing, damaged or forged seal"),
        }
    }
}

/// Where and what the first damage is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// What kind.
    pub kind: DamageKind,
    /// The sequence number of the first bad (or missing) record, if the
    /// damage is in the records.
    pub seq: Option<u64>,
    /// The index of the bad checkpoint in the checkpoint file, if any.
    pub checkpoint: Option<usize>,
    /// The file that holds it.
    pub path: PathBuf,
    /// Byte offset in that file.
    pub offset: u64,
    /// A short description of the evidence.
    pub detail: &'static str,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(seq) = self.seq {
            write!(f, " at record {seq}")?;
        }
        if let Some(cp) = self.checkpoint {
            write!(f, " (checkpoint #{cp})")?;
        }
        write!(
            f,
            " in {} at byte {}: {}",
            self.path.display(),
            self.offset,
            self.detail
        )
    }
}

/// What verification found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// First sequence number present (above zero if early segments are
    /// archived and were not given).
    pub first_seq: u64,
    /// Records checked.
    pub records: u64,
    /// Segment files read.
    pub segments: usize,
    /// Checkpoints in the checkpoint file.
    pub checkpoints: usize,
    /// Checkpoints whose root was recomputed from the records and matched.
    pub checkpoints_matched: usize,
    /// Checkpoints that only had their signature checked, because they
    /// cover archived records that were not given.
    pub checkpoints_signature_only: usize,
    /// The root hash over all records checked.
    pub root: Hash,
    /// The last valid checkpoint.
    pub last_checkpoint: Option<Checkpoint>,
    /// An incomplete write at the end of the newest segment (a crash before
    /// the append was acknowledged); opening the log cuts it.
    pub torn_tail: Option<(PathBuf, u64)>,
    /// The number of records (from sequence 0) covered by the newest
    /// seal that matched, when a seal seed was given.
    pub sealed: u64,
    /// The first damage, if any.
    pub damage: Option<Damage>,
}

impl VerifyReport {
    /// True if no damage was found.
    pub fn is_ok(&self) -> bool {
        self.damage.is_none()
    }
}

struct Scan<'a, 'p> {
    report: VerifyReport,
    frontier: Frontier,
    expected: u64,
    last_hash: Hash,
    last_prev: Hash,
    cps: Vec<(usize, Checkpoint)>,
    next_cp: usize,
    last_matched: u64,
    trusted: Option<Checkpoint>,
    trusted_ok: bool,
    /// A root mismatch at a checkpoint of this size, held back until the
    /// next record: chain evidence, if it follows, locates the damage better.
    pending_root: Option<(Damage, u64)>,
    progress: Option<&'a mut (dyn FnMut(Progress) + 'p)>,
    bytes_done: u64,
    total_bytes: u64,
    /// Every leaf hash, kept when the log is being opened and wants proofs.
    tree: Option<MerkleTree>,
    /// The `recorded` time of the last good record.
    last_recorded: u64,
    /// Each segment read: path, length of its valid part, records in it.
    segments: Vec<(PathBuf, u64, u64)>,
    /// The checked seals, by size, and the next one to match.
    seals: Vec<crate::seal::Seal>,
    next_seal: usize,
    /// Without the seed: the size the newest seal covers.
    unkeyed_seal: Option<u64>,
}

impl Scan<'_, '_> {
    fn damage(
        &mut self,
        kind: DamageKind,
        seq: Option<u64>,
        path: &Path,
        offset: u64,
        detail: &'static str,
    ) {
        if self.report.damage.is_none() {
            self.report.damage = Some(Damage {
                kind,
                seq,
                checkpoint: None,
                path: path.to_path_buf(),
                offset,
                detail,
            });
        }
    }

    /// After the tree reached a new size: compare with checkpoints of that size.
    /// Settles a held-back root mismatch once a record past it checked out.
    fn settle(&mut self, force: bool) {
        let due = self
            .pending_root
            .as_ref()
            .is_some_and(|(_, size)| force || self.frontier.size() > *size);
        if due
            && let Some((d, _)) = self.pending_root.take()
            && self.report.damage.is_none()
        {
            self.report.damage = Some(d);
        }
    }

    fn check_roots(&mut self, path: &Path, offset: u64) {
        self.settle(false);
        let size = self.frontier.size();
        let mut root = None;
        while let Some((idx, cp)) = self.cps.get(self.next_cp) {
            if cp.tree_size > size {
                break;
            }
            let (idx, cp_size, cp_root) = (*idx, cp.tree_size, cp.root);
            self.next_cp += 1;
            if cp_size < size {
                // Covers archived records that were not given.
                self.report.checkpoints_signature_only += 1;
                continue;
            }
            let r = *root.get_or_insert_with(|| self.frontier.root());
            if r == cp_root {
                self.report.checkpoints_matched += 1;
                self.last_matched = size;
            } else if self.report.damage.is_none() && self.pending_root.is_none() {
                let d = Damage {
                    kind: DamageKind::RootMismatch,
                    seq: Some(self.last_matched),
                    checkpoint: Some(idx),
                    path: path.to_path_buf(),
                    offset,
                    detail: "records after the last matching checkpoint differ from the signed tree",
                };
                self.pending_root = Some((d, size));
            }
        }
        if let Some(t) = &self.trusted
            && t.tree_size == size
            && self.trusted_ok
        {
            let r = root.unwrap_or_else(|| self.frontier.root());
            if r != t.root {
                self.damage(
                    DamageKind::Fork,
                    Some(size.saturating_sub(1)),
                    path,
                    offset,
                    "the tree at the trusted size has a different root",
                );
            }
        }
    }
}

/// Verifies the log in `dir` with the public key `key`.
///
/// Returns `Err` only when the directory cannot be read; damage is reported
/// in [`VerifyReport::damage`], naming the first bad record or checkpoint.
pub fn verify_log(
    dir: impl AsRef<Path>,
    key: &VerifyingKey,
    opts: VerifyOptions<'_>,
) -> Result<VerifyReport> {
    verify_log_in(&FsStorage, dir, key, opts)
}

/// Verifies the log in `dir` of `storage`: [`verify_log`] with another
/// storage than the file system. The verifier only reads.
pub fn verify_log_in(
    storage: &dyn Storage,
    dir: impl AsRef<Path>,
    key: &VerifyingKey,
    opts: VerifyOptions<'_>,
) -> Result<VerifyReport> {
    scan_log(storage, dir.as_ref(), key, opts, false).map(|s| s.report)
}

/// What a full check of a log found, with the state that opening it for
/// appends continues from. Opening and verifying share this one path, so
/// that `open` accepts exactly what `verify` accepts.
pub(crate) struct Scanned {
    pub(crate) report: VerifyReport,
    pub(crate) frontier: Frontier,
    pub(crate) last_hash: Hash,
    pub(crate) tree: Option<MerkleTree>,
    pub(crate) last_recorded: u64,
    /// Each segment read: path, length of its valid part, records in it.
    pub(crate) segments: Vec<(PathBuf, u64, u64)>,
    /// A torn tail of the checkpoint file: its valid length, and why.
    pub(crate) checkpoint_tail: Option<(u64, &'static str)>,
}

/// Checks the whole log (the verifier); with `keep_tree`, keeps every
/// leaf hash for proofs.
pub(crate) fn scan_log(
    storage: &dyn Storage,
    dir: &Path,
    key: &VerifyingKey,
    mut opts: VerifyOptions<'_>,
    keep_tree: bool,
) -> Result<Scanned> {
    let cp_path = dir.join(CHECKPOINT_FILE);
    let cp_scan = scan_checkpoints_in(storage, &cp_path)?;
    let mut report = VerifyReport {
        checkpoints: cp_scan.checkpoints.len(),
        ..VerifyReport::default()
    };

    // Checkpoints: signatures and order first; only good ones are compared.
    let mut cp_damage: Option<Damage> = None;
    let mut cps = Vec::new();
    let mut prev: Option<&Checkpoint> = None;
    for (i, (cp, off)) in cp_scan.checkpoints.iter().enumerate() {
        let problem = if cp.verify(key).is_err() {
            Some((
                DamageKind::ForgedCheckpoint,
                "signature does not verify with the key",
            ))
        } else if prev.is_some_and(|p| cp.tree_size < p.tree_size || cp.time < p.time) {
            Some((
                DamageKind::ReplacedCheckpoint,
                "size or time goes backwards",
            ))
        } else if prev.is_some_and(|p| cp.tree_size == p.tree_size && cp.root != p.root) {
            Some((DamageKind::ReplacedCheckpoint, "two roots for one size"))
        } else if prev.is_some_and(|p| cp.tree_size == p.tree_size && cp.time == p.time) {
            Some((DamageKind::ReplacedCheckpoint, "the same checkpoint twice"))
        } else {
            None
        };
        match problem {
            Some((kind, detail)) => {
                if cp_damage.is_none() {
                    cp_damage = Some(Damage {
                        kind,
                        seq: None,
                        checkpoint: Some(i),
                        path: cp_path.clone(),
                        offset: *off,
                        detail,
                    });
                }
            }
            None => {
                cps.push((i, cp.clone()));
                prev = Some(cp);
            }
        }
    }
    if let Some((off, detail)) = cp_scan.damage
        && cp_damage.is_none()
        && !cp_scan.damage_is_tail
    {
        cp_damage = Some(Damage {
            kind: DamageKind::CheckpointFileDamaged,
            seq: None,
            checkpoint: Some(cp_scan.checkpoints.len()),
            path: cp_path.clone(),
            offset: off,
            detail,
        });
    }
    report.last_checkpoint = cps.last().map(|(_, c)| c.clone());

    let trusted = opts.trusted.take();
    let trusted_ok = trusted.as_ref().is_some_and(|t| t.verify(key).is_ok());

    let segs = list_segments_in(storage, dir, &opts.archive_dirs)?;
    let total_bytes = segs
        .iter()
        .map(|s| storage.file_len(&s.path).unwrap_or(0))
        .sum();
    let mut scan = Scan {
        report,
        frontier: Frontier::new(),
        expected: 0,
        last_hash: [0; 32],
        last_prev: [0; 32],
        cps,
        next_cp: 0,
        last_matched: 0,
        trusted,
        trusted_ok,
        pending_root: None,
        progress: opts.progress.take(),
        bytes_done: 0,
        total_bytes,
        tree: keep_tree.then(MerkleTree::new),
        last_recorded: 0,
        segments: Vec::new(),
        seals: Vec::new(),
        next_seal: 0,
        unkeyed_seal: None,
    };
    match opts.seal_seed.take() {
        Some(seed) => check_seals(storage, dir, &seed, &mut scan)?,
        // Without the seed, the checks opening makes: the seals file parses
        // and no seal covers records that are not there.
        None => seal_structure(storage, dir, &mut scan)?,
    }
    if let Some(t) = &scan.trusted {
        if !scan.trusted_ok {
            scan.damage(
                DamageKind::UntrustedCheckpoint,
                None,
                dir,
                0,
                "the trusted checkpoint's signature does not verify",
            );
        } else if t.tree_size == 0 {
            scan.check_roots(dir, 0);
        }
    }

    let count = segs.len();
    // One buffer of at most `WINDOW` bytes serves every segment: memory
    // stays bounded whatever the size of the files.
    let mut buf = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        if scan.report.damage.is_some() {
            break;
        }
        let len = storage
            .file_len(&seg.path)
            .map_err(|e| crate::Error::io(&seg.path, e))?;
        let head = read_window(storage, &seg.path, 0, len, MAX_HEADER_LEN, &mut buf)?;
        scan.report.segments += 1;
        let is_last = i + 1 == count;
        // Segments are created whole (see `Storage::create_append`): a
        // header cut short is damage, never a crash.
        let Ok((header, hlen)) = SegmentHeader::decode(head) else {
            scan.damage(
                DamageKind::BadSegment,
                Some(scan.expected),
                &seg.path,
                0,
                "header does not decode",
            );
            break;
        };
        if header.first_seq != seg.first_seq {
            scan.damage(
                DamageKind::BadSegment,
                Some(seg.first_seq),
                &seg.path,
                0,
                "header does not match file name",
            );
            break;
        }
        if i == 0 {
            scan.expected = header.first_seq;
            scan.last_hash = header.prev_hash;
            scan.frontier = header.frontier.clone();
            scan.report.first_seq = header.first_seq;
            scan.last_matched = header.first_seq;
            if header.first_seq != 0 {
                scan.tree = None;
            }
            scan.check_roots(&seg.path, 0);
        } else if header.first_seq > scan.expected {
            let count = header.first_seq - scan.expected;
            scan.damage(
                DamageKind::Deleted { count },
                Some(scan.expected),
                &seg.path,
                0,
                "a segment is missing before this one",
            );
            break;
        } else if header.first_seq < scan.expected {
            scan.damage(
                DamageKind::Inserted,
                Some(header.first_seq),
                &seg.path,
                0,
                "segment overlaps the previous one",
            );
            break;
        } else if header.prev_hash != scan.last_hash || header.frontier != scan.frontier {
            scan.damage(
                DamageKind::BadSegment,
                Some(header.first_seq),
                &seg.path,
                0,
                "header does not continue the chain",
            );
            break;
        }
        let live_tail = is_last && seg.live;
        let seg_first = scan.expected;
        let mut off = hlen as u64;
        let mut valid_end = off;
        while off < len {
            let window = read_window(storage, &seg.path, off, len, WINDOW, &mut buf)?;
            let at_eof = off.saturating_add(window.len() as u64) >= len;
            let file = SegmentFile {
                storage,
                path: &seg.path,
                len,
                live_tail,
            };
            match verify_window(&mut scan, &file, window, off, at_eof)? {
                WindowEnd::More(consumed) if consumed > 0 => {
                    off = off.saturating_add(consumed as u64);
                    valid_end = off;
                }
                WindowEnd::More(_) => break,
                WindowEnd::Stop(end) => {
                    valid_end = end;
                    break;
                }
            }
        }
        scan.segments.push((
            seg.path.clone(),
            valid_end,
            scan.expected.saturating_sub(seg_first),
        ));
        scan.bytes_done = scan.bytes_done.saturating_add(len);
        let p = Progress {
            records: scan.frontier.size().saturating_sub(scan.report.first_seq),
            bytes: scan.bytes_done,
            total_bytes: scan.total_bytes,
        };
        if let Some(cb) = scan.progress.as_mut() {
            cb(p);
        }
    }

    scan.settle(true);
    let size = scan.frontier.size();
    scan.report.records = size.saturating_sub(scan.report.first_seq);
    scan.report.root = scan.frontier.root();
    if scan.report.damage.is_none() {
        // Checkpoints beyond the end: truncation below a checkpoint.
        if let Some((idx, cp)) = scan.cps.get(scan.next_cp).cloned() {
            let last = segs
                .last()
                .map(|s| s.path.clone())
                .unwrap_or_else(|| dir.to_path_buf());
            scan.report.damage = Some(Damage {
                kind: DamageKind::Truncated {
                    checkpoint_size: cp.tree_size,
                },
                seq: Some(size),
                checkpoint: Some(idx),
                path: last,
                offset: 0,
                detail: "a signed checkpoint covers records that are not there",
            });
        }
    }
    let beyond = scan
        .seals
        .get(scan.next_seal)
        .map(|s| s.size)
        .or(scan.unkeyed_seal.filter(|s| *s > size));
    if let Some(seal_size) = beyond {
        let last = segs
            .last()
            .map(|s| s.path.clone())
            .unwrap_or_else(|| dir.to_path_buf());
        scan.damage(
            DamageKind::Truncated {
                checkpoint_size: seal_size,
            },
            Some(size),
            &last,
            0,
            "a seal covers records that are not there",
        );
    }
    if let Some(t) = scan.trusted.clone()
        && scan.trusted_ok
        && t.tree_size > size
    {
        scan.damage(
            DamageKind::Rollback {
                trusted_size: t.tree_size,
            },
            Some(size),
            dir,
            0,
            "the log is shorter than a checkpoint kept outside it",
        );
    }
    if scan.report.damage.is_none() {
        scan.report.damage = cp_damage;
    }
    let checkpoint_tail = match cp_scan.damage {
        Some((_, reason)) if cp_scan.damage_is_tail => Some((cp_scan.valid_len, reason)),
        _ => None,
    };
    Ok(Scanned {
        report: scan.report,
        frontier: scan.frontier,
        last_hash: scan.last_hash,
        tree: scan.tree,
        last_recorded: scan.last_recorded,
        segments: scan.segments,
        checkpoint_tail,
    })
}

/// The segment file a window belongs to.
pub(crate) struct SegmentFile<'s> {
    pub(crate) storage: &'s dyn Storage,
    pub(crate) path: &'s Path,
    pub(crate) len: u64,
    /// The newest live segment: damage at its very end may be a torn tail.
    pub(crate) live_tail: bool,
}

/// How a window ended.
enum WindowEnd {
    /// Every whole frame checked out: this many bytes were consumed; the
    /// next window starts after them.
    More(usize),
    /// Checking stopped (damage, or a torn tail) at this file offset.
    Stop(u64),
}

/// Reads up to `max` bytes of `path` at `off` (not past `len`) into
/// `buf`; returns how many were read. `buf` only ever grows to `max`.
fn read_window<'b>(
    storage: &dyn Storage,
    path: &Path,
    off: u64,
    len: u64,
    max: usize,
    buf: &'b mut Vec<u8>,
) -> Result<&'b [u8]> {
    let want = usize::try_from(len.saturating_sub(off)).map_or(max, |n| n.min(max));
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let short = || crate::Error::io(path, std::io::ErrorKind::UnexpectedEof.into());
    let (window, _) = buf.split_at_mut_checked(want).ok_or_else(short)?;
    let got = storage
        .read_at(path, off, window)
        .map_err(|e| crate::Error::io(path, e))?;
    let (read, _) = window.split_at_checked(got).ok_or_else(short)?;
    Ok(read)
}

/// Checks the frames of one window of a segment: `bytes` starts at file
/// offset `base`; `at_eof` says whether it reaches the end of the file.
fn verify_window(
    scan: &mut Scan<'_, '_>,
    file: &SegmentFile<'_>,
    bytes: &[u8],
    base: u64,
    at_eof: bool,
) -> Result<WindowEnd> {
    let path = file.path;
    // Frame the window first (lengths and checksums, stopping at the first
    // bad frame): classification looks ahead.
    let mut frames: Vec<(usize, usize, usize)> = Vec::new(); // offset, body start, body end
    let mut off = 0usize;
    let mut frame_err = None;
    while off < bytes.len() {
        match bytes.get(off..).map(frame_span) {
            Some(Ok(n)) => {
                if !bytes.get(off..off + n).is_some_and(frame_checksum_ok) {
                    frame_err = Some((off, FrameError::Checksum));
                    break;
                }
                frames.push((off, off + 4, off + n - 4));
                off += n;
            }
            // A frame that goes on in the next window.
            Some(Err(FrameError::Truncated)) if !at_eof => break,
            Some(Err(e)) => {
                frame_err = Some((off, e));
                break;
            }
            None => break,
        }
    }
    let consumed = off;

    // Checksums, leaf hashes, record checks and the roots of aligned
    // blocks of leaves are independent of each other: spread them over the
    // available cores; the chain and the tree are then checked in order
    // from these results.
    let first = scan.expected;
    let checked = hash_frames(bytes, &frames, first);
    // The first frame whose checksum fails ends the segment's good frames,
    // exactly as if framing had stopped there.
    if let Some(bad) = checked.leaves.iter().position(|l| !l.crc_ok) {
        if let Some(&(off, _, _)) = frames.get(bad) {
            frame_err = Some((off, FrameError::Checksum));
        }
        frames.truncate(bad);
    }

    let body_at = |j: usize| -> Option<&[u8]> {
        let (_, s, e) = *frames.get(j)?;
        bytes.get(s..e)
    };
    let seq_at =
        |j: usize| -> Option<u64> { body_at(j).and_then(|b| Entry::parse(b).ok()).map(|e| e.seq) };

    // While `block` is set, records `block.0..block.1` form an aligned
    // perfect subtree whose root was computed above: the tree takes it in
    // one step after its last record; no checkpoint falls inside it.
    let mut block: Option<(usize, usize, Hash)> = None;
    let mut stopped = false;
    for j in 0..frames.len() {
        if block.is_none() {
            block = checked
                .block_at(j)
                .filter(|_| scan.can_take_block(BLOCK as u64));
        }
        if scan.report.damage.is_some() {
            stopped = true;
            break;
        }
        let Some(&(off, _, _)) = frames.get(j) else {
            break;
        };
        let off64 = base.saturating_add(off as u64);
        let Some(leaf) = checked.leaves.get(j) else {
            break;
        };
        let Some(e) = leaf.entry else {
            scan.damage(
                DamageKind::Modified,
                Some(scan.expected),
                path,
                off64,
                "entry too short",
            );
            stopped = true;
            break;
        };
        let expected = scan.expected;
        if e.seq != expected {
            if e.seq > expected {
                let later = (j + 1..frames.len().min(j + 257)).any(|k| seq_at(k) == Some(expected));
                if later {
                    scan.damage(
                        DamageKind::Reordered,
                        Some(expected),
                        path,
                        off64,
                        "a later record appears before it",
                    );
                } else {
                    scan.damage(
                        DamageKind::Deleted {
                            count: e.seq.saturating_sub(expected),
                        },
                        Some(expected),
                        path,
                        off64,
                        "sequence numbers jump",
                    );
                }
            } else if e.seq.checked_add(1) == Some(expected) && e.prev == scan.last_prev {
                scan.damage(
                    DamageKind::Inserted,
                    Some(e.seq),
                    path,
                    off64,
                    "two records claim the same place in the chain",
                );
            } else if seq_at(j + 1) == Some(expected) {
                scan.damage(
                    DamageKind::Inserted,
                    Some(expected),
                    path,
                    off64,
                    "an extra copy of an earlier record",
                );
            } else {
                scan.damage(
                    DamageKind::Reordered,
                    Some(expected),
                    path,
                    off64,
                    "an earlier record appears again",
                );
            }
            stopped = true;
            break;
        }
        let (h, record_ok) = (leaf.hash, leaf.record_ok);
        if e.prev != scan.last_hash {
            // Either the previous record changed (its hash no longer matches
            // what this one holds) or this record's link changed.
            // Without a successor the two cannot be told apart: name the
            // earlier record, the first that may be bad.
            let next_links_here = body_at(j + 1)
                .and_then(|b| Entry::parse(b).ok())
                .is_none_or(|n| n.prev == h);
            if next_links_here && expected > scan.report.first_seq {
                scan.damage(
                    DamageKind::Modified,
                    Some(expected - 1),
                    path,
                    off64,
                    "the record's hash does not match the chain hash its successor holds",
                );
            } else {
                scan.damage(
                    DamageKind::Modified,
                    Some(expected),
                    path,
                    off64,
                    "the chain link does not match",
                );
            }
            stopped = true;
            break;
        }
        if !record_ok {
            scan.damage(
                DamageKind::Modified,
                Some(expected),
                path,
                off64,
                "the record does not decode",
            );
            stopped = true;
            break;
        }
        let Some(next) = scan.expected.checked_add(1) else {
            scan.damage(
                DamageKind::SequenceOverflow,
                Some(expected),
                path,
                off64,
                "the sequence number cannot grow past 2^64 - 1",
            );
            stopped = true;
            break;
        };
        scan.last_prev = e.prev;
        scan.last_hash = h;
        scan.expected = next;
        scan.match_seals(path, off64);
        if let Some(t) = scan.tree.as_mut() {
            t.push(h);
        }
        if let Some(t) = body_at(j).and_then(|b| Entry::parse(b).ok())
            && let Some(r) = Record::peek_recorded(t.record.expose())
        {
            scan.last_recorded = r.0;
        }
        match block {
            None => {
                if scan.frontier.push(h).is_err() {
                    scan.damage(
                        DamageKind::SequenceOverflow,
                        Some(expected),
                        path,
                        off64,
                        "the tree size cannot grow past 2^64 - 1",
                    );
                    stopped = true;
                    break;
                }
                scan.check_roots(path, off64);
            }
            Some((_, end, root)) if j + 1 == end => {
                block = None;
                if !scan.frontier.push_subtree(root, BLOCK_HEIGHT) {
                    // Unreachable: blocks start on their boundary.
                    for l in checked.leaves.get(end - BLOCK..end).into_iter().flatten() {
                        // Cannot overflow: the block fits below 2^64.
                        let _ = scan.frontier.push(l.hash);
                    }
                }
                scan.check_roots(path, off64);
            }
            Some(_) => {}
        }
        if scan.expected.is_multiple_of(65_536) {
            let p = Progress {
                records: scan.expected - scan.report.first_seq,
                bytes: scan.bytes_done + off64,
                total_bytes: scan.total_bytes,
            };
            if let Some(cb) = scan.progress.as_mut() {
                cb(p);
            }
        }
    }
    if let Some((start, _, _)) = block {
        // Stopped inside a block: the records before the stop checked out.
        let done = usize::try_from(scan.expected - first).unwrap_or(start);
        for l in checked
            .leaves
            .get(start..done.max(start))
            .into_iter()
            .flatten()
        {
            // Cannot overflow: these leaves were checked in order above.
            let _ = scan.frontier.push(l.hash);
        }
    }
    if stopped || scan.report.damage.is_some() {
        return Ok(WindowEnd::Stop(base));
    }
    if let Some((off, fe)) = frame_err {
        let at = base.saturating_add(off as u64);
        let span = bytes.get(off..).and_then(|b| frame_span(b).ok());
        let torn = looks_torn(file, at, fe, span, scan.expected)?;
        if torn {
            scan.report.torn_tail = Some((path.to_path_buf(), at));
        } else {
            scan.damage(
                DamageKind::Modified,
                Some(scan.expected),
                path,
                at,
                fe.as_str(),
            );
        }
        return Ok(WindowEnd::Stop(at));
    }
    Ok(WindowEnd::More(consumed))
}

impl Scan<'_, '_> {
    /// After record `expected - 1`: every seal of this size must hold its
    /// chain hash.
    fn match_seals(&mut self, path: &Path, offset: u64) {
        while let Some(seal) = self.seals.get(self.next_seal).copied() {
            if seal.size > self.expected {
                break;
            }
            self.next_seal += 1;
            if seal.size < self.expected {
                // Covers archived records that were not given.
                continue;
            }
            if seal.head == self.last_hash {
                self.report.sealed = seal.size;
            } else {
                self.damage(
                    DamageKind::Modified,
                    Some(seal.size.saturating_sub(1)),
                    path,
                    offset,
                    "the records differ from the ones a seal authenticated",
                );
            }
        }
    }
}

/// Without the seed: the seals file, if any, must parse; its newest seal
/// is kept so that a log cut below it is reported.
fn seal_structure(storage: &dyn Storage, dir: &Path, scan: &mut Scan<'_, '_>) -> Result<()> {
    let path = dir.join(crate::seal::SEALS_FILE);
    let bytes = match storage.read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(crate::Error::io(&path, e)),
    };
    match crate::seal::parse_seals(&bytes) {
        Ok(seals) => {
            if let Some((last, _)) = seals.last() {
                // Matched by size only: without the key its tag means nothing.
                scan.unkeyed_seal = Some(last.size);
            }
        }
        Err((off, why)) => scan.damage(DamageKind::BadSeal, None, &path, off, why),
    }
    Ok(())
}

/// Reads the seals and checks each tag with its epoch's key, derived from
/// the seed; epochs must grow and sizes must not shrink.
fn check_seals(
    storage: &dyn Storage,
    dir: &Path,
    seed: &crate::seal::SealSeed,
    scan: &mut Scan<'_, '_>,
) -> Result<()> {
    let path = dir.join(crate::seal::SEALS_FILE);
    let bytes = match storage.read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            scan.damage(
                DamageKind::BadSeal,
                None,
                &path,
                0,
                "the seals file is missing",
            );
            return Ok(());
        }
        Err(e) => return Err(crate::Error::io(&path, e)),
    };
    let seals = match crate::seal::parse_seals(&bytes) {
        Ok(s) => s,
        Err((off, why)) => {
            scan.damage(DamageKind::BadSeal, None, &path, off, why);
            return Ok(());
        }
    };
    let mut key = seed.key();
    let mut prev: Option<crate::seal::Seal> = None;
    for (seal, off) in seals {
        let ordered = prev.is_none_or(|p| seal.epoch > p.epoch && seal.size >= p.size);
        if !ordered {
            scan.damage(DamageKind::BadSeal, None, &path, off, "seals out of order");
            return Ok(());
        }
        key = key.forward_to(seal.epoch)?;
        if !key.check(&seal) {
            scan.damage(
                DamageKind::BadSeal,
                Some(seal.size.saturating_sub(1)),
                &path,
                off,
                "the seal's tag does not verify with its epoch's key",
            );
            return Ok(());
        }
        scan.seals.push(seal);
        prev = Some(seal);
    }
    Ok(())
}

/// Sectors are written whole or not at all; a write cut short by a crash
/// leaves the part of it not yet on disk as zeros (or no bytes at all).
const SECTOR: u64 = 512;

/// A page of zeros, to compare runs of zeros a page at a time.
const ZERO_PAGE: [u8; 4096] = [0; 4096];

/// True if damage at `at` in the newest live segment is what a crash in
/// the middle of an unacknowledged write leaves: nothing valid follows,
/// and either the file ends inside the frame, or the file holds only
/// zeros from a sector boundary inside the frame to its end. Anything
/// else (a whole frame with changed bits, a frame with a wrong length) is
/// damage to a record that may have been acknowledged, never cut.
pub(crate) fn looks_torn(
    file: &SegmentFile<'_>,
    at: u64,
    fe: FrameError,
    span: Option<usize>,
    min_seq: u64,
) -> Result<bool> {
    if !file.live_tail || valid_frame_after(file, at, min_seq)? {
        return Ok(false);
    }
    if fe == FrameError::Truncated {
        return Ok(true);
    }
    let end = at.saturating_add(span.map_or(4, |n| n as u64));
    let sector = end.saturating_sub(1) / SECTOR * SECTOR;
    zeros_to_eof(file, at.max(sector))
}

/// True if every byte of the file from `from` to its end is zero.
fn zeros_to_eof(file: &SegmentFile<'_>, from: u64) -> Result<bool> {
    let mut buf = Vec::new();
    let mut off = from;
    while off < file.len {
        let window = read_window(file.storage, file.path, off, file.len, WINDOW, &mut buf)?;
        if window.is_empty() {
            break;
        }
        if !window
            .chunks(ZERO_PAGE.len())
            .all(|c| ZERO_PAGE.starts_with(c))
        {
            return Ok(false);
        }
        off = off.saturating_add(window.len() as u64);
    }
    Ok(true)
}

/// True if a well-formed entry frame (checksum valid, sequence number
/// `>= min_seq`) starts anywhere after `from` in the file: then damage at
/// `from` is not a torn tail. Reads the rest of the file one window at a
/// time, so memory stays bounded; runs of zeros are skipped a page at a time.
pub(crate) fn valid_frame_after(file: &SegmentFile<'_>, from: u64, min_seq: u64) -> Result<bool> {
    const OVERLAP: usize = crate::segment::MAX_BODY + crate::segment::FRAME_OVERHEAD;
    let mut buf = Vec::new();
    let mut off = from.saturating_add(1);
    while off < file.len {
        let buf = read_window(file.storage, file.path, off, file.len, WINDOW, &mut buf)?;
        if buf.is_empty() {
            break;
        }
        let at_eof = off.saturating_add(buf.len() as u64) >= file.len;
        // Offsets whose longest possible frame lies inside this window.
        let limit = if at_eof {
            buf.len()
        } else {
            buf.len().saturating_sub(OVERLAP).max(1)
        };
        let mut o = 0usize;
        while o < limit {
            // A frame that a valid entry could start needs a non-zero length
            // byte: skip whole zero pages.
            if buf.get(o..o + ZERO_PAGE.len()) == Some(&ZERO_PAGE[..]) {
                o += ZERO_PAGE.len() - 3;
                continue;
            }
            if let Some(Ok((body, _))) = buf.get(o..).map(read_frame)
                && Entry::parse(body).is_ok_and(|e| e.seq >= min_seq)
            {
                return Ok(true);
            }
            o += 1;
        }
        off = off.saturating_add(o as u64);
    }
    Ok(false)
}

/// Bytes of a segment read at once: at least one whole frame of the
/// largest size, and a constant that bounds the verifier's memory.
const WINDOW: usize = 4 << 20;

/// Records per aligned block whose subtree root is computed in parallel.
const BLOCK: usize = 256;
/// `log2(BLOCK)`.
const BLOCK_HEIGHT: u32 = 8;

/// What the parallel pass found about one frame.
#[derive(Clone, Copy, Default)]
struct Leaf {
    /// The leaf hash (also the chain hash) of the frame's body.
    hash: Hash,
    /// The entry's sequence number and chain hash, if it splits.
    entry: Option<Link>,
    /// The frame's checksum matches.
    crc_ok: bool,
    /// The entry splits and its record is a canonical encoding.
    record_ok: bool,
}

/// An entry's place in the chain.
#[derive(Clone, Copy)]
struct Link {
    seq: u64,
    prev: Hash,
}

/// The parallel pass over one segment's frames.
struct Checked {
    leaves: Vec<Leaf>,
    /// Index of the first frame whose sequence number is a multiple of `BLOCK`.
    first_aligned: usize,
    /// Roots of the complete blocks from `first_aligned` on, in order.
    blocks: Vec<Hash>,
}

impl Checked {
    /// The block that starts at frame `j`: `(j, end, root)`.
    fn block_at(&self, j: usize) -> Option<(usize, usize, Hash)> {
        let k = j.checked_sub(self.first_aligned)?;
        if k % BLOCK != 0 {
            return None;
        }
        let root = *self.blocks.get(k / BLOCK)?;
        Some((j, j + BLOCK, root))
    }
}

impl Scan<'_, '_> {
    /// True if the next `n` records may enter the tree in one step: no
    /// checkpoint (signed or trusted) has a size strictly inside them and no
    /// root mismatch waits to be settled.
    fn can_take_block(&self, n: u64) -> bool {
        let size = self.frontier.size();
        let inside = |s: u64| s > size && size.checked_add(n).is_none_or(|end| s < end);
        self.pending_root.is_none()
            && self.report.damage.is_none()
            && self.size_matches_expected()
            && self
                .cps
                .get(self.next_cp)
                .is_none_or(|(_, cp)| !inside(cp.tree_size) && cp.tree_size > size)
            && self.trusted.as_ref().is_none_or(|t| !inside(t.tree_size))
    }

    fn size_matches_expected(&self) -> bool {
        self.frontier.size() == self.expected
    }
}

/// Checks each frame's checksum, hashes its body and checks its record;
/// computes the subtree roots of the complete aligned blocks. The frame at
/// index `j` is taken to hold record `first + j` (the chain check in order
/// rejects any frame that does not, before a block root is used).
fn hash_frames(bytes: &[u8], frames: &[(usize, usize, usize)], first: u64) -> Checked {
    let one = |&(off, s, e): &(usize, usize, usize)| -> Leaf {
        let crc_ok = bytes.get(off..e + 4).is_some_and(frame_checksum_ok);
        if !crc_ok {
            return Leaf::default();
        }
        let Some(body) = bytes.get(s..e) else {
            return Leaf::default();
        };
        let entry = Entry::parse(body).ok();
        let record_ok = entry.is_some_and(|entry| Record::validate(entry.record.expose()).is_ok());
        Leaf {
            hash: leaf_hash(body),
            entry: entry.map(|e| Link {
                seq: e.seq,
                prev: e.prev,
            }),
            crc_ok,
            record_ok,
        }
    };
    let n = frames.len();
    let rem = usize::try_from(first % BLOCK as u64).unwrap_or(0);
    let first_aligned = if rem == 0 { 0 } else { BLOCK - rem };
    // One part per worker; parts after the first start on a block boundary,
    // so every complete block lies inside one part.
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get().min(8));
    let threads = if n < 4096 { 1 } else { threads };
    let blocks_total = n.saturating_sub(first_aligned) / BLOCK;
    let per = blocks_total.div_ceil(threads).max(1);
    let mut bounds = vec![0usize];
    for t in 1..threads {
        let b = first_aligned + t * per * BLOCK;
        if b < n {
            bounds.push(b);
        }
    }
    bounds.push(n);
    let part = |lo: usize, hi: usize| -> (Vec<Leaf>, Vec<Hash>) {
        let leaves: Vec<Leaf> = frames
            .get(lo..hi)
            .unwrap_or_default()
            .iter()
            .map(one)
            .collect();
        let mut roots = Vec::new();
        let mut b = if lo <= first_aligned {
            first_aligned
        } else {
            lo
        };
        while b + BLOCK <= hi {
            let mut f = Frontier::new();
            for l in leaves.get(b - lo..b - lo + BLOCK).unwrap_or_default() {
                // Cannot fail: a block holds 256 leaves.
                let _ = f.push(l.hash);
            }
            roots.push(f.root());
            b += BLOCK;
        }
        (leaves, roots)
    };
    let mut leaves = Vec::with_capacity(n);
    let mut blocks = Vec::with_capacity(blocks_total);
    let ranges: Vec<(usize, usize)> = bounds
        .windows(2)
        .filter_map(|w| Some((*w.first()?, *w.get(1)?)))
        .collect();
    if ranges.len() < 2 {
        let (l, b) = part(0, n);
        leaves = l;
        blocks = b;
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = ranges
                .iter()
                .map(|&(lo, hi)| s.spawn(move || part(lo, hi)))
                .collect();
            for h in handles {
                // A worker cannot panic (no indexing, no unwrap); if one
                // did, its part is missing and all is recomputed below.
                if let Ok((l, b)) = h.join() {
                    leaves.extend(l);
                    blocks.extend(b);
                }
            }
        });
        if leaves.len() != n || blocks.len() != blocks_total {
            let (l, b) = part(0, n);
            leaves = l;
            blocks = b;
        }
    }
    Checked {
        leaves,
        first_aligned,
        blocks,
    }
}
