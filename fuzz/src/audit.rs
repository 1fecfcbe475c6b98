//! Fuzz entry points of carevox-audit: segment files and checkpoint files,
//! the bytes a verifier reads from a directory it does not trust.

use carevox_audit::internal::scan_checkpoint_bytes;
use carevox_audit::internal::{Entry, SegmentHeader, read_frame};
use carevox_audit::{Checkpoint, Record, VerifyingKey};

/// A whole segment file: header, then frames, entries and records, as the
/// verifier and the recovery on open read them. Invariant: whatever decodes
/// re-encodes to the same bytes.
pub fn audit_segment(data: &[u8]) {
    let mut off = match SegmentHeader::decode(data) {
        Ok((header, len)) => {
            let mut again = Vec::new();
            header.encode(&mut again);
            assert_eq!(
                Some(again.as_slice()),
                data.get(..len),
                "segment header re-encodes"
            );
            len
        }
        // Headerless input still exercises the frame parser.
        Err(_) => 0,
    };
    while let Some(Ok((body, n))) = data.get(off..).map(read_frame) {
        if let Ok(entry) = Entry::parse(body)
            && let Ok(record) = Record::decode(entry.record.expose())
        {
            let again = record.to_bytes().expect("a decoded record encodes");
            assert_eq!(again, *entry.record.expose(), "records are canonical");
        }
        off += n;
    }
    let _ = carevox_audit::internal::find_valid_frame_after(data, 0, 0);
}

/// A checkpoint file, and the bytes as a single checkpoint. Invariant: a
/// decoded checkpoint re-encodes to the same bytes; a signature check on
/// arbitrary input returns an answer.
pub fn audit_checkpoint(data: &[u8]) {
    let key = VerifyingKey::from_bytes([
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07,
        0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07,
        0x51, 0x1a,
    ]);
    let scan = scan_checkpoint_bytes(data);
    for (cp, _) in &scan.checkpoints {
        let _ = cp.verify(&key);
    }
    if let Ok(cp) = Checkpoint::decode(data) {
        assert_eq!(cp.to_bytes(), data, "checkpoints are canonical");
        let _ = cp.verify(&key);
    }
}
