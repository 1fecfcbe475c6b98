//! Byte layouts of the vault: object header, encrypted metadata, key record.
//! The crate documentation describes them; this module parses and writes them.

use carevox_redact::{Pii, Secret};

use crate::error::{Error, Result};

/// Magic at the start of every vault object.
pub const OBJECT_MAGIC: [u8; 8] = *b"CVXVAULT";
/// The object format version this build writes (and the only one it reads).
pub const OBJECT_VERSION: u16 = 1;
/// Suite 1: HKDF-SHA256 key derivation, AES-256-GCM segments, HMAC-SHA256
/// key commitment.
pub const SUITE_AES256GCM_HKDF_SHA256: u8 = 1;
/// Length of the fixed object header, tag included.
pub const HEADER_LEN: usize = 124;
/// Offset of the header tag; the bytes before it are what it authenticates.
pub const HEADER_TAG_OFFSET: usize = 108;
/// Length of an AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// Length of the per-object salt.
pub const SALT_LEN: usize = 32;
/// Length of the per-object nonce prefix.
pub const NONCE_PREFIX_LEN: usize = 7;
/// Length of the key commitment.
pub const COMMITMENT_LEN: usize = 32;
/// Smallest segment size (plaintext bytes per segment).
pub const MIN_SEGMENT_SIZE: u32 = 256;
/// Largest segment size (plaintext bytes per segment).
pub const MAX_SEGMENT_SIZE: u32 = 8 * 1024 * 1024;
/// Default segment size: 64 KiB of plaintext per segment.
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
/// Largest encrypted metadata block, tag included.
pub const MAX_METADATA_LEN: u32 = 64 * 1024;

/// Magic at the start of every key record.
pub const KEY_RECORD_MAGIC: [u8; 8] = *b"CVXVKREC";
/// The key record format version.
pub const KEY_RECORD_VERSION: u16 = 1;
const KEY_RECORD_FIXED: usize = 16;
/// Longest wrapped data key a key record may hold.
pub const MAX_WRAPPED_LEN: usize = 4096;
/// Longest key record, in bytes: the fixed part and [`MAX_WRAPPED_LEN`].
/// The filesystem backend reads no more than one byte past it.
pub const MAX_KEY_RECORD_LEN: usize = KEY_RECORD_FIXED + MAX_WRAPPED_LEN;

/// The public, authenticated part of an object header.
///
/// Parsing it does not authenticate it: [`crate::stream::Decryptor::open`]
/// does, with the data key. Times are seconds since the Unix epoch, as given
/// by the caller when the object was written. `Debug` shows the sizes and
/// times; the salt, nonce prefix, commitment and tag print redacted.
#[derive(Debug, Clone)]
pub struct ObjectHeader {
    /// Plaintext bytes per segment (the last segment may be shorter).
    pub segment_size: u32,
    /// When the object was created.
    pub created_at: u64,
    /// Until when the object must be retained; purge removes it after.
    pub retention_until: u64,
    pub(crate) salt: Secret<[u8; SALT_LEN]>,
    pub(crate) nonce_prefix: Secret<[u8; NONCE_PREFIX_LEN]>,
    /// Length of the encrypted metadata block that follows the header.
    pub metadata_len: u32,
    pub(crate) commitment: Secret<[u8; COMMITMENT_LEN]>,
    pub(crate) tag: Secret<[u8; TAG_LEN]>,
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at + N)?.try_into().ok()
}

impl ObjectHeader {
    /// Parses the fixed header at the start of `bytes` (at least
    /// [`HEADER_LEN`] bytes). Checks magic, version, suite and bounds.
    pub fn parse(bytes: &[u8]) -> Result<ObjectHeader> {
        let short = || Error::malformed("object header (too short)", bytes.len() as u64);
        let b = bytes.get(..HEADER_LEN).ok_or_else(short)?;
        if b.get(..8) != Some(&OBJECT_MAGIC[..]) {
            return Err(Error::malformed("object magic", 0));
        }
        let version = be_u16(b, 8).ok_or_else(short)?;
        if version != OBJECT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "object",
                version,
            });
        }
        if b.get(10) != Some(&SUITE_AES256GCM_HKDF_SHA256) {
            return Err(Error::malformed("object suite", 10));
        }
        if b.get(11) != Some(&0) {
            return Err(Error::malformed("object flags", 11));
        }
        let segment_size = be_u32(b, 12).ok_or_else(short)?;
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
            return Err(Error::malformed("object segment size", 12));
        }
        if b.get(71) != Some(&0) {
            return Err(Error::malformed("object reserved byte", 71));
        }
        let metadata_len = be_u32(b, 72).ok_or_else(short)?;
        if !(16..=MAX_METADATA_LEN).contains(&metadata_len) {
            return Err(Error::malformed("object metadata length", 72));
        }
        Ok(ObjectHeader {
            segment_size,
            created_at: be_u64(b, 16).ok_or_else(short)?,
            retention_until: be_u64(b, 24).ok_or_else(short)?,
            salt: Secret::new(array(b, 32).ok_or_else(short)?),
            nonce_prefix: Secret::new(array(b, 64).ok_or_else(short)?),
            metadata_len,
            commitment: Secret::new(array(b, 76).ok_or_else(short)?),
            tag: Secret::new(array(b, HEADER_TAG_OFFSET).ok_or_else(short)?),
        })
    }

    /// Writes the header, tag included, into a fixed array.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let fields: [(usize, &[u8]); 11] = [
            (0, &OBJECT_MAGIC),
            (8, &OBJECT_VERSION.to_be_bytes()),
            (10, &[SUITE_AES256GCM_HKDF_SHA256, 0]),
            (12, &self.segment_size.to_be_bytes()),
            (16, &self.created_at.to_be_bytes()),
            (24, &self.retention_until.to_be_bytes()),
            (32, self.salt.expose()),
            (64, self.nonce_prefix.expose()),
            (72, &self.metadata_len.to_be_bytes()),
            (76, self.commitment.expose()),
            (HEADER_TAG_OFFSET, self.tag.expose()),
        ];
        for (at, field) in fields {
            if let Some(dst) = out.get_mut(at..at + field.len()) {
                dst.copy_from_slice(field);
            }
        }
        out
    }

    /// Offset of the first payload segment.
    pub fn payload_offset(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.metadata_len)
    }
}

/// Descriptive metadata of an object. The id and the times are not PHI; the
/// content type and the labels are stored encrypted. The labels are held in
/// [`Pii`], so `Debug` never shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The object id (see [`validate_object_id`]).
    pub id: String,
    /// MIME type of the payload, e.g. `audio/wav`.
    pub content_type: String,
    /// Creation time, seconds since the Unix epoch (supplied by the caller).
    pub created_at: u64,
    /// Retention deadline, seconds since the Unix epoch: purge removes the
    /// object once `now >= retention_until`.
    pub retention_until: u64,
    /// Caller labels, such as a patient reference or a SIP Call-ID. These are
    /// PHI: stored encrypted, bound to this object, printed redacted.
    pub labels: Pii<Vec<(String, String)>>,
}

impl Metadata {
    /// Metadata with the given id and content type, created at `created_at`
    /// and retained until `retention_until`, with no labels.
    pub fn new(
        id: impl Into<String>,
        content_type: impl Into<String>,
        created_at: u64,
        retention_until: u64,
    ) -> Metadata {
        Metadata {
            id: id.into(),
            content_type: content_type.into(),
            created_at,
            retention_until,
            labels: Pii::new(Vec::new()),
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Metadata {
        self.labels.expose_mut().push((key.into(), value.into()));
        self
    }

    /// The value of the first label called `key`.
    pub fn get_label(&self, key: &str) -> Option<&str> {
        self.labels
            .expose()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Encodes the encrypted part: id, content type, labels.
    pub(crate) fn encode_private(&self) -> Result<Vec<u8>> {
        fn put(out: &mut Vec<u8>, s: &str, what: &'static str) -> Result<()> {
            let len = u16::try_from(s.len()).map_err(|_| Error::InvalidArgument(what))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(s.as_bytes());
            Ok(())
        }
        let mut out = Vec::new();
        put(&mut out, &self.id, "object id too long")?;
        put(&mut out, &self.content_type, "content type too long")?;
        let count = u16::try_from(self.labels.expose().len())
            .map_err(|_| Error::InvalidArgument("too many labels"))?;
        out.extend_from_slice(&count.to_be_bytes());
        for (k, v) in self.labels.expose() {
            put(&mut out, k, "label key too long")?;
            put(&mut out, v, "label value too long")?;
        }
        if out.len() + TAG_LEN > MAX_METADATA_LEN as usize {
            return Err(Error::InvalidArgument("metadata larger than 64 KiB"));
        }
        Ok(out)
    }

    /// Decodes the encrypted part (after decryption) and adds the times
    /// from the authenticated header.
    pub(crate) fn decode_private(b: &[u8], header: &ObjectHeader) -> Result<Metadata> {
        let base = (HEADER_LEN) as u64;
        let mut at = 0usize;
        let id = read_string(b, &mut at, base, "metadata id")?;
        let content_type = read_string(b, &mut at, base, "metadata content type")?;
        let count = {
            let pos = at;
            let c = be_u16(b, pos).ok_or(Error::malformed("metadata label count", base))?;
            at = pos + 2;
            c
        };
        let mut labels = Vec::with_capacity(usize::from(count.min(256)));
        for _ in 0..count {
            let k = read_string(b, &mut at, base, "metadata label key")?;
            let v = read_string(b, &mut at, base, "metadata label value")?;
            labels.push((k, v));
        }
        if at != b.len() {
            return Err(Error::malformed(
                "metadata trailing bytes",
                base + at as u64,
            ));
        }
        Ok(Metadata {
            id,
            content_type,
            created_at: header.created_at,
            retention_until: header.retention_until,
            labels: Pii::new(labels),
        })
    }
}

/// Checks that `id` is a valid object id: 1 to 128 bytes of ASCII letters,
/// digits, `.`, `_` and `-`, not starting with `.`. Ids name files, so they
/// must not carry PHI: use an opaque identifier and put PHI in labels.
pub fn validate_object_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidObjectId { reason: "empty" });
    }
    if id.len() > 128 {
        return Err(Error::InvalidObjectId {
            reason: "longer than 128 bytes",
        });
    }
    if id.starts_with('.') {
        return Err(Error::InvalidObjectId {
            reason: "starts with a dot",
        });
    }
    if !id
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
    {
        return Err(Error::InvalidObjectId {
            reason: "characters outside A-Z a-z 0-9 . _ -",
        });
    }
    Ok(())
}

/// A key record: the object's data key wrapped under one key-encryption key
/// version. It is stored apart from the payload; destroying it shreds the
/// object, so the wrapped key is held as a [`Secret`]: a copy in a log
/// would outlive the shred.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// The key-encryption key version that wrapped the data key.
    pub kek_version: u32,
    /// The wrapped data key, as the key provider returned it.
    pub wrapped: Secret<Vec<u8>>,
}

impl PartialEq for KeyRecord {
    /// Compares the wrapped keys in constant time.
    fn eq(&self, other: &KeyRecord) -> bool {
        let (a, b) = (self.wrapped.expose(), other.wrapped.expose());
        self.kek_version == other.kek_version
            && a.len() == b.len()
            && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Eq for KeyRecord {}

impl KeyRecord {
    /// Encodes the record.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let wrapped = self.wrapped.expose();
        let len = u16::try_from(wrapped.len())
            .ok()
            .filter(|l| usize::from(*l) <= MAX_WRAPPED_LEN)
            .ok_or(Error::InvalidArgument("wrapped key longer than 4096 bytes"))?;
        let mut out = Vec::with_capacity(KEY_RECORD_FIXED + wrapped.len());
        out.extend_from_slice(&KEY_RECORD_MAGIC);
        out.extend_from_slice(&KEY_RECORD_VERSION.to_be_bytes());
        out.extend_from_slice(&self.kek_version.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(wrapped);
        Ok(out)
    }

    /// Parses a record.
    pub fn parse(b: &[u8]) -> Result<KeyRecord> {
        if b.get(..8) != Some(&KEY_RECORD_MAGIC[..]) {
            return Err(Error::malformed("key record magic", 0));
        }
        let version = be_u16(b, 8).ok_or(Error::malformed("key record", 8))?;
        if version != KEY_RECORD_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "key record",
                version,
            });
        }
        let kek_version = be_u32(b, 10).ok_or(Error::malformed("key record", 10))?;
        let len = be_u16(b, 14).ok_or(Error::malformed("key record", 14))?;
        let wrapped = b
            .get(KEY_RECORD_FIXED..)
            .filter(|w| w.len() == usize::from(len) && w.len() <= MAX_WRAPPED_LEN)
            .ok_or(Error::malformed("key record wrapped key length", 14))?;
        Ok(KeyRecord {
            kek_version,
            wrapped: Secret::new(wrapped.to_vec()),
        })
    }
}

/// Reads a string stored as a big-endian `u16` length and UTF-8 bytes at
/// `*at` in `b`, advancing `*at` past it. Errors name `what` and the offset
/// of the field, counted from `base`.
fn read_string(b: &[u8], at: &mut usize, base: u64, what: &'static str) -> Result<String> {
    let len = be_u16(b, *at).ok_or(Error::malformed(what, base + *at as u64))?;
    let start = *at + 2;
    let bytes = b
        .get(start..start + usize::from(len))
        .ok_or(Error::malformed(what, base + *at as u64))?;
    let s = std::str::from_utf8(bytes)
        .map_err(|_| Error::malformed(what, base + start as u64))?
        .to_owned();
    *at = start + usize::from(len);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_object_id("vm-2026.01_a").is_ok());
        assert!(validate_object_id("").is_err());
        assert!(validate_object_id(".hidden").is_err());
        assert!(validate_object_id("a/b").is_err());
        assert!(validate_object_id(&"a".repeat(129)).is_err());
    }

    #[test]
    fn key_record_round_trip() {
        let r = KeyRecord {
            kek_version: 7,
            wrapped: Secret::new(vec![1, 2, 3]),
        };
        let b = r.encode().unwrap();
        assert_eq!(KeyRecord::parse(&b).unwrap(), r);
        assert!(KeyRecord::parse(&b[..b.len() - 1]).is_err());
        assert!(!format!("{r:?}").contains("1, 2, 3"));
    }

    #[test]
    fn metadata_round_trip_and_redaction() {
        let m = Metadata::new("x", "audio/wav", 1, 2).label("patient", "MRN-123");
        let enc = m.encode_private().unwrap();
        let h = ObjectHeader {
            segment_size: 1024,
            created_at: 1,
            retention_until: 2,
            salt: Secret::new([0; 32]),
            nonce_prefix: Secret::new([0; 7]),
            metadata_len: 16,
            commitment: Secret::new([0; 32]),
            tag: Secret::new([0; 16]),
        };
        assert_eq!(Metadata::decode_private(&enc, &h).unwrap(), m);
        assert!(!format!("{m:?}").contains("MRN-123"));
        assert!(Metadata::decode_private(&enc[..enc.len() - 1], &h).is_err());
    }
}
