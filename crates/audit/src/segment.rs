//! On-disk formats: segment files of framed records and the checkpoint file.
//!
//! A segment file opens with a header:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `CVXAUSEG` |
//! | 2 | format version (1), big-endian |
//! | 8 | sequence number of the first record |
//! | 32 | chain hash of the record before it (zeros for the first) |
//! | 1 | number `k` of Merkle frontier nodes at that size |
//! | 32·k | the frontier: roots of the perfect subtrees, largest first |
//! | 4 | CRC-32 of everything above |
//!
//! and goes on with frames. A frame is `len: u32` (big-endian) of the body,
//! the body, and the CRC-32 of length and body. The body is the entry that
//! the Merkle tree hashes as a leaf: `seq: u64`, the chain hash of the
//! previous entry (32 bytes) and the canonical record encoding. The chain
//! hash of an entry is its leaf hash, `SHA-256(0x00 || body)`.
//!
//! The checkpoint file opens with magic `CVXAUCKP` and version, then frames
//! whose bodies are encoded [`Checkpoint`](crate::Checkpoint)s.

use carevox_redact::Pii;

use crate::codec::Reader;
use crate::error::{Error, Result};
use crate::merkle::{Frontier, Hash};

/// Magic of a segment file.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"CVXAUSEG";
/// Magic of the checkpoint file.
pub(crate) const CHECKPOINT_MAGIC: &[u8; 8] = b"CVXAUCKP";
/// Format version of both files.
pub const FORMAT_VERSION: u16 = 1;
/// Largest frame body accepted.
pub const MAX_BODY: usize = 1 << 20;
/// Bytes of a frame around its body: length and checksum.
pub const FRAME_OVERHEAD: usize = 8;
/// Bytes of an entry body before the record: sequence number and chain hash.
pub const ENTRY_PREFIX: usize = 40;
/// Length of the checkpoint file header.
pub const CHECKPOINT_HEADER_LEN: usize = 10;

/// The length of the longest segment header (a first sequence number with
/// all 64 bits set).
pub(crate) const MAX_HEADER_LEN: usize = 8 + 2 + 8 + 32 + 1 + 32 * 64 + 4;

/// The length of the header of a segment whose first record is `first_seq`
/// (its frontier has one node per set bit of `first_seq`).
pub fn header_len(first_seq: u64) -> usize {
    8 + 2 + 8 + 32 + 1 + 32 * first_seq.count_ones() as usize + 4
}

/// The header of a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Sequence number of the segment's first record.
    pub first_seq: u64,
    /// Chain hash of the record before the first one.
    pub prev_hash: Hash,
    /// Merkle frontier of the tree of all records before the first one.
    pub frontier: Frontier,
}

impl SegmentHeader {
    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(SEGMENT_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&self.first_seq.to_be_bytes());
        out.extend_from_slice(&self.prev_hash);
        // At most 64 nodes: one per bit of a u64 size.
        out.push(u8::try_from(self.frontier.nodes().len()).unwrap_or(u8::MAX));
        for n in self.frontier.nodes() {
            out.extend_from_slice(n);
        }
        let (_, header) = out.split_at(start);
        let crc = crc32fast::hash(header);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    /// Decodes a header from the start of `bytes`; returns it and its length.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize)> {
        let mut r = Reader::new(bytes, "segment header");
        if &r.array::<8>()? != SEGMENT_MAGIC {
            return Err(Error::malformed("segment header", 0, "bad magic"));
        }
        if r.u16()? != FORMAT_VERSION {
            return Err(Error::malformed("segment header", 8, "unsupported version"));
        }
        let first_seq = r.u64()?;
        let prev_hash = r.array()?;
        let k = r.u8()?;
        if k > 64 {
            return Err(r.err("too many frontier nodes"));
        }
        let mut nodes = Vec::with_capacity(usize::from(k));
        for _ in 0..k {
            nodes.push(r.array()?);
        }
        let covered = r.pos();
        let crc = r.u32()?;
        let (header, _) = bytes
            .split_at_checked(covered)
            .ok_or_else(|| Error::malformed("segment header", 0, "truncated"))?;
        if crc32fast::hash(header) != crc {
            return Err(Error::malformed(
                "segment header",
                covered,
                "checksum mismatch",
            ));
        }
        let frontier = Frontier::from_parts(first_seq, nodes).ok_or_else(|| {
            Error::malformed("segment header", 50, "frontier does not match size")
        })?;
        Ok((
            SegmentHeader {
                first_seq,
                prev_hash,
                frontier,
            },
            r.pos(),
        ))
    }
}

/// Appends a framed body: length, body, checksum.
pub fn put_frame(out: &mut Vec<u8>, body: &[u8]) -> Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l as usize <= MAX_BODY)
        .ok_or(Error::RecordTooLarge {
            len: body.len(),
            max: MAX_BODY,
        })?;
    let lb = len.to_be_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&lb);
    h.update(body);
    out.extend_from_slice(&lb);
    out.extend_from_slice(body);
    out.extend_from_slice(&h.finalize().to_be_bytes());
    Ok(())
}

/// Why a frame could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The file ends inside the frame.
    Truncated,
    /// The length field is larger than any frame may be.
    BadLength,
    /// The checksum does not match.
    Checksum,
}

impl FrameError {
    /// A short description.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameError::Truncated => "frame cut short",
            FrameError::BadLength => "frame length out of range",
            FrameError::Checksum => "frame checksum mismatch",
        }
    }
}

/// Reads the frame at the start of `bytes`: its body and total length.
pub fn read_frame(bytes: &[u8]) -> Result<(&[u8], usize), FrameError> {
    let total = frame_span(bytes)?;
    let frame = bytes.get(..total).ok_or(FrameError::Truncated)?;
    if !frame_checksum_ok(frame) {
        return Err(FrameError::Checksum);
    }
    let body = frame.get(4..total - 4).ok_or(FrameError::Truncated)?;
    Ok((body, total))
}

/// The total length of the frame at the start of `bytes`, from its length
/// field, without checking its checksum (see [`frame_checksum_ok`]).
pub(crate) fn frame_span(bytes: &[u8]) -> Result<usize, FrameError> {
    let (lb, _) = bytes
        .split_first_chunk::<4>()
        .ok_or(FrameError::Truncated)?;
    let len = usize::try_from(u32::from_be_bytes(*lb)).map_err(|_| FrameError::BadLength)?;
    if len > MAX_BODY {
        return Err(FrameError::BadLength);
    }
    let total = len + FRAME_OVERHEAD;
    if bytes.len() < total {
        return Err(FrameError::Truncated);
    }
    Ok(total)
}

/// True if `frame` (exactly one whole frame: length, body, checksum) holds
/// the right CRC-32 of its length and body.
pub(crate) fn frame_checksum_ok(frame: &[u8]) -> bool {
    match frame.split_last_chunk::<4>() {
        Some((covered, cb)) if covered.len() >= 4 => {
            crc32fast::hash(covered) == u32::from_be_bytes(*cb)
        }
        _ => false,
    }
}

/// An entry body split into its parts.
///
/// The record bytes may hold PHI and are a [`Pii`]: `Debug` prints the
/// sequence number, the chain hash and `<redacted>` for them.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Chain hash of the previous entry.
    pub prev: Hash,
    /// The canonical record bytes.
    pub record: Pii<&'a [u8]>,
}

impl<'a> Entry<'a> {
    /// Splits an entry body.
    pub fn parse(body: &'a [u8]) -> Result<Self> {
        let (seq, rest) = body
            .split_first_chunk::<8>()
            .ok_or_else(|| Error::malformed("entry", 0, "too short"))?;
        let (prev, record) = rest
            .split_first_chunk::<32>()
            .ok_or_else(|| Error::malformed("entry", 8, "too short"))?;
        Ok(Entry {
            seq: u64::from_be_bytes(*seq),
            prev: *prev,
            record: Pii::new(record),
        })
    }
}

/// Appends a whole entry frame for `record` bytes.
pub fn put_entry_frame(out: &mut Vec<u8>, seq: u64, prev: &Hash, record: &[u8]) -> Result<()> {
    let body_len = ENTRY_PREFIX + record.len();
    let len = u32::try_from(body_len)
        .ok()
        .filter(|l| *l as usize <= MAX_BODY)
        .ok_or(Error::RecordTooLarge {
            len: body_len,
            max: MAX_BODY,
        })?;
    let start = out.len();
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(prev);
    out.extend_from_slice(record);
    let (_, frame) = out.split_at(start);
    let crc = crc32fast::hash(frame);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// The checkpoint file header.
pub fn checkpoint_header() -> [u8; CHECKPOINT_HEADER_LEN] {
    let mut h = [0u8; CHECKPOINT_HEADER_LEN];
    let (m, v) = h.split_at_mut(8);
    m.copy_from_slice(CHECKPOINT_MAGIC);
    v.copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    h
}

/// Checks the checkpoint file header.
pub(crate) fn check_checkpoint_header(bytes: &[u8]) -> Result<()> {
    let (h, _) = bytes
        .split_first_chunk::<CHECKPOINT_HEADER_LEN>()
        .ok_or_else(|| Error::malformed("checkpoint file", 0, "header cut short"))?;
    if *h != checkpoint_header() {
        return Err(Error::malformed(
            "checkpoint file",
            0,
            "bad magic or version",
        ));
    }
    Ok(())
}

/// The first offset after `from` at which a well-formed entry frame starts
/// (checksum valid, sequence number `>= min_seq`), if any. Used to tell a
/// torn tail (nothing valid after the damage) from damage in the middle.
pub fn find_valid_frame_after(bytes: &[u8], from: usize, min_seq: u64) -> Option<usize> {
    let mut off = from.checked_add(1)?;
    while off + FRAME_OVERHEAD + ENTRY_PREFIX <= bytes.len() {
        if let Some(rest) = bytes.get(off..)
            && let Ok((body, _)) = read_frame(rest)
            && let Ok(e) = Entry::parse(body)
            && e.seq >= min_seq
        {
            return Some(off);
        }
        off += 1;
    }
    None
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        let mut f = Frontier::new();
        for i in 0..5u8 {
            f.push([i; 32]).unwrap();
        }
        let h = SegmentHeader {
            first_seq: 5,
            prev_hash: [3; 32],
            frontier: f,
        };
        let mut b = Vec::new();
        h.encode(&mut b);
        let (d, n) = SegmentHeader::decode(&b).unwrap();
        assert_eq!((d, n), (h, b.len()));
        assert_eq!(header_len(5), b.len());
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 1;
            assert!(SegmentHeader::decode(&c).is_err(), "flip at {i}");
        }
        assert!(SegmentHeader::decode(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn frames() {
        let mut b = Vec::new();
        put_entry_frame(&mut b, 9, &[1; 32], b"rec").unwrap();
        let (body, n) = read_frame(&b).unwrap();
        assert_eq!(n, b.len());
        let e = Entry::parse(body).unwrap();
        assert_eq!(
            (e.seq, e.prev, *e.record.expose()),
            (9, [1; 32], &b"rec"[..])
        );
        assert_eq!(read_frame(&b[..n - 1]), Err(FrameError::Truncated));
        b[10] ^= 0x40;
        assert_eq!(read_frame(&b), Err(FrameError::Checksum));
        assert_eq!(read_frame(&[0xff; 12]), Err(FrameError::BadLength));
    }
}
