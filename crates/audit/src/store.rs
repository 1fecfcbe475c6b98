//! Reading the files of a log directory: listing segments across the live
//! and archive directories, and reading checkpoint files.
//!
//! Each reader comes in two forms: `f(...)` reads the file system, and
//! `f_in(storage, ...)` reads any [`Storage`].

use std::io;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::segment::{
    CHECKPOINT_HEADER_LEN, FrameError, MAX_HEADER_LEN, check_checkpoint_header, read_frame,
};
use crate::storage::{FsStorage, Storage};

/// File name of the checkpoint file in a log directory.
pub const CHECKPOINT_FILE: &str = "checkpoints.cvc";
/// File name extension of segment files.
pub(crate) const SEGMENT_EXT: &str = "cva";

/// The file name of the segment whose first record is `first_seq`.
pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}.{SEGMENT_EXT}")
}

/// A segment file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentFile {
    /// First sequence number, from the file name.
    pub first_seq: u64,
    /// Where it is.
    pub path: PathBuf,
    /// True if it is in the live directory (not an archive).
    pub live: bool,
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".cva")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Every segment under `live` and `archives` in `storage`, by first
/// sequence number. A sequence number found twice is reported as damage by
/// the caller.
pub(crate) fn list_segments_in(
    storage: &dyn Storage,
    live: &Path,
    archives: &[PathBuf],
) -> Result<Vec<SegmentFile>> {
    let mut out = Vec::new();
    let dirs = archives
        .iter()
        .map(|d| (d.as_path(), false))
        .chain([(live, true)]);
    for (dir, is_live) in dirs {
        let names = match storage.list(dir) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !is_live => continue,
            Err(e) => return Err(Error::io(dir, e)),
        };
        for name in names {
            if let Some(first_seq) = parse_name(&name) {
                out.push(SegmentFile {
                    first_seq,
                    path: dir.join(name),
                    live: is_live,
                });
            }
        }
    }
    out.sort_by(|a, b| a.first_seq.cmp(&b.first_seq).then(a.live.cmp(&b.live)));
    Ok(out)
}

/// The checkpoints of a checkpoint file, with their byte offsets.
#[derive(Debug, Default)]
pub struct CheckpointScan {
    /// Each decoded checkpoint and the offset of its frame.
    pub checkpoints: Vec<(Checkpoint, u64)>,
    /// Length of the valid prefix of the file.
    pub valid_len: u64,
    /// The first damage: offset and what, if the file did not end cleanly.
    pub damage: Option<(u64, &'static str)>,
    /// True if damage sits at the very end with nothing valid after it
    /// (a torn tail).
    pub damage_is_tail: bool,
}

/// Reads a checkpoint file; a missing file is an empty scan.
pub fn scan_checkpoints(path: &Path) -> Result<CheckpointScan> {
    scan_checkpoints_in(&FsStorage, path)
}

/// [`scan_checkpoints`] in `storage`.
///
/// The file is read one window at a time: memory grows with the number
/// of checkpoints, not with the size of anything else in the file.
pub fn scan_checkpoints_in(storage: &dyn Storage, path: &Path) -> Result<CheckpointScan> {
    let len = match storage.file_len(path) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(CheckpointScan::default()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let frame = crate::checkpoint::CHECKPOINT_LEN + crate::segment::FRAME_OVERHEAD;
    let mut buf = Vec::new();
    let mut scan = CheckpointScan::default();
    // The header and whole frames, a window at a time.
    let mut off = 0u64;
    let mut first = true;
    loop {
        let window = read_window(storage, path, off, len, CP_WINDOW, &mut buf)?;
        let at_eof = off.saturating_add(window.len() as u64) >= len;
        // Whole frames only, unless this is the end of the file.
        let head = if first { CHECKPOINT_HEADER_LEN } else { 0 };
        let keep = if at_eof || window.len() < head {
            window.len()
        } else {
            head + (window.len() - head) / frame * frame
        };
        let mut part = scan_checkpoint_part(window.get(..keep).unwrap_or(window), first);
        for (_, at) in &mut part.checkpoints {
            *at = at.saturating_add(off);
        }
        scan.checkpoints.append(&mut part.checkpoints);
        scan.valid_len = off.saturating_add(part.valid_len);
        if let Some((at, why)) = part.damage {
            let at = off.saturating_add(at);
            scan.damage = Some((at, why));
            if part.damage_is_tail && !at_eof {
                // Judged on a window: decide on the whole rest of the file.
                scan.damage_is_tail = false;
                let rest_len = len.saturating_sub(at);
                if rest_len <= CP_WINDOW as u64 {
                    let rest = read_window(storage, path, at, len, CP_WINDOW, &mut buf)?;
                    let tail = scan_checkpoint_part(rest, false);
                    scan.damage_is_tail = tail.damage_is_tail && tail.damage == Some((0, why));
                }
            } else {
                scan.damage_is_tail = part.damage_is_tail;
            }
            return Ok(scan);
        }
        if at_eof || keep == 0 {
            return Ok(scan);
        }
        off = off.saturating_add(keep as u64);
        first = false;
    }
}

/// Bytes of the checkpoint file read at once.
const CP_WINDOW: usize = 1 << 20;

/// Parses the bytes of a checkpoint file.
pub fn scan_checkpoint_bytes(bytes: &[u8]) -> CheckpointScan {
    scan_checkpoint_part(bytes, true)
}

/// Parses whole checkpoint frames, after the file header if `header`.
fn scan_checkpoint_part(bytes: &[u8], header: bool) -> CheckpointScan {
    let mut scan = CheckpointScan::default();
    if !header {
        return scan_checkpoint_frames(bytes, 0, scan);
    }
    if bytes.len() < CHECKPOINT_HEADER_LEN {
        // The file is created whole (header written and synced before it
        // gets its name): a short header is damage, not a crash.
        scan.damage = Some((0, "header cut short"));
        return scan;
    }
    if check_checkpoint_header(bytes).is_err() {
        scan.damage = Some((0, "bad magic or version"));
        return scan;
    }
    scan_checkpoint_frames(bytes, CHECKPOINT_HEADER_LEN, scan)
}

fn scan_checkpoint_frames(bytes: &[u8], start: usize, mut scan: CheckpointScan) -> CheckpointScan {
    let mut off = start;
    scan.valid_len = off as u64;
    while let Some(rest) = bytes.get(off..).filter(|r| !r.is_empty()) {
        match read_frame(rest) {
            Ok((body, n)) => match Checkpoint::decode(body) {
                Ok(cp) => {
                    scan.checkpoints.push((cp, off as u64));
                    off += n;
                    scan.valid_len = off as u64;
                }
                Err(_) => {
                    scan.damage = Some((off as u64, "checkpoint does not decode"));
                    return scan;
                }
            },
            Err(e) => {
                scan.damage = Some((off as u64, e.as_str()));
                // A torn write of the newest checkpoint: nothing valid after
                // it, and the file ends inside it or holds only zeros from a
                // sector boundary inside it on. A whole frame with changed
                // bits is damage.
                let mut later = off + 1;
                let mut found = false;
                while later + 8 <= bytes.len() {
                    if let Some(Ok((body, _))) = bytes.get(later..).map(read_frame)
                        && Checkpoint::decode(body).is_ok()
                    {
                        found = true;
                        break;
                    }
                    later += 1;
                }
                let end = match crate::segment::frame_span(rest) {
                    Ok(n) => off.saturating_add(n),
                    Err(_) => off.saturating_add(4),
                };
                let sector = end.saturating_sub(1) / 512 * 512;
                let zeros = bytes
                    .get(off.max(sector)..)
                    .is_some_and(|t| t.iter().all(|b| *b == 0));
                // Every checkpoint frame has the same length: a torn one
                // starts with (a prefix of) it.
                let len_field = u32::try_from(crate::checkpoint::CHECKPOINT_LEN)
                    .map(u32::to_be_bytes)
                    .unwrap_or_default();
                let cut_short =
                    e == FrameError::Truncated && rest.iter().zip(len_field).all(|(a, b)| *a == b);
                scan.damage_is_tail = !found && (cut_short || zeros);
                return scan;
            }
        }
    }
    scan
}

/// Where a record sits on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// First sequence number of its segment (names the file).
    pub segment: u64,
    /// Byte offset of its frame in that file.
    pub offset: u64,
}

/// Calls `f` with every record of the log in order, checking frame
/// checksums and sequence numbers (not the chain: use the verifier for
/// that). A torn tail at the end of the newest segment is skipped.
pub fn for_each_record(
    live: &Path,
    archives: &[PathBuf],
    f: impl FnMut(u64, &crate::record::Record, Location) -> Result<()>,
) -> Result<(u64, crate::merkle::Hash)> {
    for_each_record_in(&FsStorage, live, archives, f)
}

/// [`for_each_record`] in `storage`.
pub fn for_each_record_in(
    storage: &dyn Storage,
    live: &Path,
    archives: &[PathBuf],
    mut f: impl FnMut(u64, &crate::record::Record, Location) -> Result<()>,
) -> Result<(u64, crate::merkle::Hash)> {
    let segs = list_segments_in(storage, live, archives)?;
    let count = segs.len();
    let mut next: Option<u64> = None;
    let mut head = [0u8; 32];
    // One window of bounded size at a time: memory does not grow with
    // the files.
    let mut buf = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        let len = storage
            .file_len(&seg.path)
            .map_err(|e| Error::io(&seg.path, e))?;
        let start = read_window(storage, &seg.path, 0, len, MAX_HEADER_LEN, &mut buf)?;
        let (header, hlen) = crate::segment::SegmentHeader::decode(start)
            .map_err(|e| corrupt(&seg.path, 0, e.to_string()))?;
        if next.is_some_and(|n| n != header.first_seq) {
            return Err(corrupt(
                &seg.path,
                0,
                "segment does not follow the previous one".into(),
            ));
        }
        let mut expected = header.first_seq;
        if next.is_none() {
            head = header.prev_hash;
        }
        let mut off = hlen as u64;
        'segment: while off < len {
            let bytes = read_window(storage, &seg.path, off, len, WINDOW, &mut buf)?;
            let at_eof = off.saturating_add(bytes.len() as u64) >= len;
            let mut pos = 0usize;
            while pos < bytes.len() {
                let at = off.saturating_add(pos as u64);
                match bytes.get(pos..).map(read_frame) {
                    Some(Ok((body, n))) => {
                        let e = crate::segment::Entry::parse(body)
                            .map_err(|e| corrupt(&seg.path, at, e.to_string()))?;
                        if e.seq != expected {
                            return Err(corrupt(
                                &seg.path,
                                at,
                                format!("record {expected} expected"),
                            ));
                        }
                        let rec = crate::record::Record::decode(e.record.expose())
                            .map_err(|e| corrupt(&seg.path, at, e.to_string()))?;
                        f(
                            e.seq,
                            &rec,
                            Location {
                                segment: header.first_seq,
                                offset: at,
                            },
                        )?;
                        head = crate::merkle::leaf_hash(body);
                        expected = expected.checked_add(1).ok_or(Error::SequenceOverflow)?;
                        pos += n;
                    }
                    Some(Err(FrameError::Truncated)) if !at_eof && pos > 0 => break,
                    Some(Err(fe)) => {
                        let file = crate::verify::SegmentFile {
                            storage,
                            path: &seg.path,
                            len,
                            live_tail: i + 1 == count && seg.live,
                        };
                        let span = bytes
                            .get(pos..)
                            .and_then(|b| crate::segment::frame_span(b).ok());
                        let torn = crate::verify::looks_torn(&file, at, fe, span, expected)?;
                        if torn {
                            break 'segment;
                        }
                        return Err(corrupt(&seg.path, at, fe.as_str().into()));
                    }
                    None => break 'segment,
                }
            }
            if pos == 0 {
                break;
            }
            off = off.saturating_add(pos as u64);
        }
        next = Some(expected);
    }
    Ok((next.unwrap_or(0), head))
}

/// Bytes of a segment read at once (at least one frame of the largest size).
const WINDOW: usize = 4 << 20;

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
    let short = || Error::io(path, io::ErrorKind::UnexpectedEof.into());
    let (window, _) = buf.split_at_mut_checked(want).ok_or_else(short)?;
    let got = storage
        .read_at(path, off, window)
        .map_err(|e| Error::io(path, e))?;
    let (read, _) = window.split_at_checked(got).ok_or_else(short)?;
    Ok(read)
}

/// Reads the record whose frame is at `loc`.
pub fn read_record_at(
    live: &Path,
    archives: &[PathBuf],
    loc: Location,
) -> Result<(u64, crate::record::Record)> {
    read_record_at_in(&FsStorage, live, archives, loc)
}

/// Bytes read at once for a record: most frames fit, so one read does.
const RECORD_READ: usize = 1024;

/// [`read_record_at`] in `storage`.
pub fn read_record_at_in(
    storage: &dyn Storage,
    live: &Path,
    archives: &[PathBuf],
    loc: Location,
) -> Result<(u64, crate::record::Record)> {
    let name = segment_name(loc.segment);
    let mut frame = vec![0u8; RECORD_READ];
    let mut found = None;
    for dir in std::iter::once(live).chain(archives.iter().map(PathBuf::as_path)) {
        let path = dir.join(&name);
        match storage.read_at(&path, loc.offset, &mut frame) {
            Ok(n) => {
                found = Some((path, n));
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    let (path, mut n) =
        found.ok_or_else(|| corrupt(&live.join(&name), 0, "segment not found".into()))?;
    let len = frame
        .get(..n)
        .and_then(<[u8]>::first_chunk::<4>)
        .map(|b| u32::from_be_bytes(*b))
        .ok_or_else(|| corrupt(&path, loc.offset, "frame cut short".into()))?;
    let body_len = usize::try_from(len).unwrap_or(usize::MAX);
    if body_len > crate::segment::MAX_BODY {
        return Err(corrupt(
            &path,
            loc.offset,
            "frame length out of range".into(),
        ));
    }
    let frame_len = body_len + crate::segment::FRAME_OVERHEAD;
    if frame_len > n {
        frame.resize(frame_len, 0);
        let rest = frame
            .get_mut(n..)
            .ok_or_else(|| corrupt(&path, loc.offset, "frame cut short".into()))?;
        let at = loc
            .offset
            .checked_add(n as u64)
            .ok_or(Error::SequenceOverflow)?;
        n += storage
            .read_at(&path, at, rest)
            .map_err(|e| Error::io(&path, e))?;
    }
    let frame = frame
        .get(..n.min(frame_len))
        .ok_or_else(|| corrupt(&path, loc.offset, "frame cut short".into()))?;
    let (body, _) = read_frame(frame).map_err(|e| corrupt(&path, loc.offset, e.as_str().into()))?;
    let e = crate::segment::Entry::parse(body)?;
    Ok((e.seq, crate::record::Record::decode(e.record.expose())?))
}

fn corrupt(path: &Path, offset: u64, reason: String) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    }
}
