//! The offline verifier: given a log directory and the public key, checks
//! framing, the hash chain, sequence numbers, Merkle roots against every
//! signed checkpoint, and the signatures; names the first bad record and the
//! kind of damage.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, VerifyingKey};
use crate::error::Result;
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::record::Record;
use crate::segment::{Entry, SegmentHeader, find_valid_frame_after, read_frame};
use crate::store::{CHECKPOINT_FILE, list_segments, scan_checkpoints};

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
}

impl fmt::Debug for VerifyOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("archive_dirs", &self.archive_dirs)
            .field("trusted", &self.trusted)
            .field("progress", &self.progress.is_some())
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
        if due {
            if let Some((d, _)) = self.pending_root.take() {
                if self.report.damage.is_none() {
                    self.report.damage = Some(d);
                }
            }
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
        if let Some(t) = &self.trusted {
            if t.tree_size == size && self.trusted_ok {
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
}

/// Verifies the log in `dir` with the public key `key`.
///
/// Returns `Err` only when the directory cannot be read; damage is reported
/// in [`VerifyReport::damage`], naming the first bad record or checkpoint.
pub fn verify_log(
    dir: impl AsRef<Path>,
    key: &VerifyingKey,
    mut opts: VerifyOptions<'_>,
) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    let cp_path = dir.join(CHECKPOINT_FILE);
    let cp_scan = scan_checkpoints(&cp_path)?;
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
    if let Some((off, detail)) = cp_scan.damage {
        if cp_damage.is_none() && !cp_scan.damage_is_tail {
            cp_damage = Some(Damage {
                kind: DamageKind::CheckpointFileDamaged,
                seq: None,
                checkpoint: Some(cp_scan.checkpoints.len()),
                path: cp_path.clone(),
                offset: off,
                detail,
            });
        }
    }
    report.last_checkpoint = cps.last().map(|(_, c)| c.clone());

    let trusted = opts.trusted.take();
    let trusted_ok = trusted.as_ref().is_some_and(|t| t.verify(key).is_ok());

    let segs = list_segments(dir, &opts.archive_dirs)?;
    let total_bytes = segs
        .iter()
        .map(|s| fs::metadata(&s.path).map(|m| m.len()).unwrap_or(0))
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
    };
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
    for (i, seg) in segs.iter().enumerate() {
        if scan.report.damage.is_some() {
            break;
        }
        let bytes = fs::read(&seg.path).map_err(|e| crate::Error::io(&seg.path, e))?;
        scan.report.segments += 1;
        let full_header = crate::segment::header_len(seg.first_seq);
        if i + 1 == count && seg.live && i > 0 && bytes.len() < full_header {
            // A crash while the newest segment was being created.
            scan.report.torn_tail = Some((seg.path.clone(), 0));
            break;
        }
        let Ok((header, hlen)) = SegmentHeader::decode(&bytes) else {
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
        let is_last = i + 1 == count;
        verify_segment(&mut scan, &seg.path, &bytes, hlen, is_last && seg.live);
        scan.bytes_done += bytes.len() as u64;
        let p = Progress {
            records: scan.frontier.size() - scan.report.first_seq,
            bytes: scan.bytes_done,
            total_bytes: scan.total_bytes,
        };
        if let Some(cb) = scan.progress.as_mut() {
            cb(p);
        }
    }

    scan.settle(true);
    let size = scan.frontier.size();
    scan.report.records = size - scan.report.first_seq;
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
    if let Some(t) = scan.trusted.clone() {
        if scan.trusted_ok && t.tree_size > size {
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
    }
    if scan.report.damage.is_none() {
        scan.report.damage = cp_damage;
    }
    Ok(scan.report)
}

fn verify_segment(
    scan: &mut Scan<'_, '_>,
    path: &Path,
    bytes: &[u8],
    start: usize,
    live_tail: bool,
) {
    // Frame the whole segment first: classification looks ahead.
    let mut frames: Vec<(usize, usize, usize)> = Vec::new(); // offset, body start, body end
    let mut off = start;
    let mut frame_err = None;
    while off < bytes.len() {
        match bytes.get(off..).map(read_frame) {
            Some(Ok((body, n))) => {
                frames.push((off, off + 4, off + 4 + body.len()));
                off += n;
            }
            Some(Err(e)) => {
                frame_err = Some((off, e));
                break;
            }
            None => break,
        }
    }
    let body_at = |j: usize| -> Option<&[u8]> {
        let (_, s, e) = *frames.get(j)?;
        bytes.get(s..e)
    };
    let seq_at =
        |j: usize| -> Option<u64> { body_at(j).and_then(|b| Entry::parse(b).ok()).map(|e| e.seq) };

    // Leaf hashes and record checks are independent per frame: spread them
    // over the available cores; the chain and the tree are then checked in
    // order from these results.
    let checked = hash_frames(bytes, &frames);

    for j in 0..frames.len() {
        let (off, _, _) = frames.get(j).copied().unwrap_or_default();
        let off64 = off as u64;
        let Some(body) = body_at(j) else { break };
        let Ok(e) = Entry::parse(body) else {
            scan.damage(
                DamageKind::Modified,
                Some(scan.expected),
                path,
                off64,
                "entry too short",
            );
            return;
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
                            count: e.seq - expected,
                        },
                        Some(expected),
                        path,
                        off64,
                        "sequence numbers jump",
                    );
                }
            } else if e.seq + 1 == expected && e.prev == scan.last_prev {
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
            return;
        }
        let Some(&(h, record_ok)) = checked.get(j) else {
            break;
        };
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
            return;
        }
        if !record_ok {
            scan.damage(
                DamageKind::Modified,
                Some(expected),
                path,
                off64,
                "the record does not decode",
            );
            return;
        }
        scan.last_prev = e.prev;
        scan.last_hash = h;
        scan.frontier.push(h);
        scan.expected += 1;
        scan.check_roots(path, off64);
        if scan.report.damage.is_some() {
            return;
        }
        if scan.expected % 65_536 == 0 {
            let p = Progress {
                records: scan.frontier.size() - scan.report.first_seq,
                bytes: scan.bytes_done + off64,
                total_bytes: scan.total_bytes,
            };
            if let Some(cb) = scan.progress.as_mut() {
                cb(p);
            }
        }
    }
    if let Some((off, fe)) = frame_err {
        let torn = live_tail && find_valid_frame_after(bytes, off, scan.expected).is_none();
        if torn {
            scan.report.torn_tail = Some((path.to_path_buf(), off as u64));
        } else {
            scan.damage(
                DamageKind::Modified,
                Some(scan.expected),
                path,
                off as u64,
                fe.as_str(),
            );
        }
    }
}

/// The leaf hash of each frame's body and whether its record is well formed.
fn hash_frames(bytes: &[u8], frames: &[(usize, usize, usize)]) -> Vec<(Hash, bool)> {
    let one = |&(_, s, e): &(usize, usize, usize)| -> (Hash, bool) {
        let body = bytes.get(s..e).unwrap_or_default();
        let ok = Entry::parse(body).is_ok_and(|entry| Record::validate(entry.record).is_ok());
        (leaf_hash(body), ok)
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads < 2 || frames.len() < 4096 {
        return frames.iter().map(one).collect();
    }
    let chunk = frames.len().div_ceil(threads);
    let mut out = Vec::with_capacity(frames.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = frames
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(one).collect::<Vec<_>>()))
            .collect();
        for h in handles {
            // A worker cannot panic (no indexing, no unwrap); if one did,
            // its part is missing and is recomputed below.
            if let Ok(v) = h.join() {
                out.extend(v);
            }
        }
    });
    if out.len() != frames.len() {
        return frames.iter().map(one).collect();
    }
    out
}
