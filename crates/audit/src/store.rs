//! Reading the files of a log directory: listing segments across the live
//! and archive directories, and reading checkpoint files.

use std::fs;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::segment::{CHECKPOINT_HEADER_LEN, check_checkpoint_header, read_frame};

/// File name of the checkpoint file in a log directory.
pub const CHECKPOINT_FILE: &str = "checkpoints.cvc";
/// File name extension of segment files.
pub const SEGMENT_EXT: &str = "cva";

/// The file name of the segment whose first record is `first_seq`.
pub fn segment_name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}.{SEGMENT_EXT}")
}

/// A segment file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
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

/// Every segment under `live` and `archives`, by first sequence number.
/// A sequence number found twice is reported as damage by the caller.
pub fn list_segments(live: &Path, archives: &[PathBuf]) -> Result<Vec<SegmentFile>> {
    let mut out = Vec::new();
    let dirs = archives
        .iter()
        .map(|d| (d.as_path(), false))
        .chain([(live, true)]);
    for (dir, is_live) in dirs {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !is_live => continue,
            Err(e) => return Err(Error::io(dir, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name();
            if let Some(first_seq) = name.to_str().and_then(parse_name) {
                out.push(SegmentFile {
                    first_seq,
                    path: entry.path(),
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
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CheckpointScan::default()),
        Err(e) => return Err(Error::io(path, e)),
    };
    Ok(scan_checkpoint_bytes(&bytes))
}

/// Parses the bytes of a checkpoint file.
pub fn scan_checkpoint_bytes(bytes: &[u8]) -> CheckpointScan {
    let mut scan = CheckpointScan::default();
    if bytes.len() < CHECKPOINT_HEADER_LEN {
        scan.damage = Some((0, "header cut short"));
        scan.damage_is_tail = true;
        return scan;
    }
    if check_checkpoint_header(bytes).is_err() {
        scan.damage = Some((0, "bad magic or version"));
        return scan;
    }
    let mut off = CHECKPOINT_HEADER_LEN;
    scan.valid_len = off as u64;
    while off < bytes.len() {
        let rest = bytes.get(off..).unwrap_or_default();
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
                // A tail is torn if no well-formed checkpoint frame follows.
                let mut later = off + 1;
                let mut found = false;
                while later + 8 <= bytes.len() {
                    if let Some(Ok((body, _))) = bytes.get(later..).map(read_frame) {
                        if Checkpoint::decode(body).is_ok() {
                            found = true;
                            break;
                        }
                    }
                    later += 1;
                }
                scan.damage_is_tail = !found;
                return scan;
            }
        }
    }
    scan
}
