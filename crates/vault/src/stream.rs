//! Streaming authenticated encryption of one object: the segment format,
//! key derivation and key commitment. This layer knows nothing about
//! storage or key wrapping; [`crate::Vault`] builds on it.

use std::io::{self, Read, Seek, SeekFrom, Write};

// The segment cipher is AWS-LC's AES-256-GCM: unlike ring's, it encrypts
// and decrypts out of place, so a segment goes from the caller's plaintext
// (or the stored ciphertext) to its destination in one pass instead of a
// copy followed by an in-place pass. Key derivation and commitment stay on
// ring, like the rest of the workspace.
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use carevox_redact::Secret;
use ring::rand::SecureRandom;
use ring::{hkdf, hmac};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::format::{
    HEADER_LEN, HEADER_TAG_OFFSET, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, Metadata, NONCE_PREFIX_LEN,
    ObjectHeader, SALT_LEN, TAG_LEN,
};

/// A 256-bit data key: one per object, never stored unwrapped.
///
/// Held in a [`Secret`]: zeroized on drop, `Debug` prints
/// `DataKey(<redacted>)`.
#[derive(Clone, Debug, Zeroize)]
pub struct DataKey(Secret<[u8; 32]>);

/// The key is wiped when dropped ([`Secret`] does it).
impl ZeroizeOnDrop for DataKey {}

impl DataKey {
    /// A fresh random key from `rng`.
    pub fn generate(rng: &dyn SecureRandom) -> Result<DataKey> {
        let mut k = DataKey(Secret::new([0; 32]));
        rng.fill(k.0.expose_mut()).map_err(|_| Error::Rng)?;
        Ok(k)
    }

    /// A key from raw bytes (for example, unwrapped by a KMS).
    pub fn from_bytes(bytes: [u8; 32]) -> DataKey {
        DataKey(Secret::new(bytes))
    }

    /// The raw key bytes, for a [`crate::KeyProvider`] to wrap. Do not store
    /// or log them.
    pub fn expose_secret(&self) -> &[u8; 32] {
        self.0.expose()
    }
}

const KDF_INFO: &[u8] = b"carevox-vault v1 object keys";
const COMMIT_MSG: &[u8] = b"carevox-vault v1 key commitment";
const FLAG_SEGMENT: u8 = 0;
const FLAG_LAST: u8 = 1;
const FLAG_METADATA: u8 = 2;
const FLAG_HEADER: u8 = 3;

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The per-object keys derived from a data key and the object's salt.
struct ObjectKeys {
    aead: LessSafeKey,
    commit: hmac::Key,
}

fn derive(data_key: &DataKey, salt: &[u8; SALT_LEN]) -> Result<ObjectKeys> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(data_key.0.expose());
    let mut okm = Zeroizing::new([0u8; 64]);
    prk.expand(&[KDF_INFO], Len(64))
        .and_then(|o| o.fill(&mut okm[..]))
        .map_err(|_| Error::InvalidArgument("key derivation"))?;
    let (enc, com) = okm.split_at(32);
    let aead = UnboundKey::new(&AES_256_GCM, enc)
        .map(LessSafeKey::new)
        .map_err(|_| Error::InvalidArgument("key derivation"))?;
    Ok(ObjectKeys {
        aead,
        commit: hmac::Key::new(hmac::HMAC_SHA256, com),
    })
}

fn nonce(prefix: &[u8; NONCE_PREFIX_LEN], index: u32, flag: u8) -> Nonce {
    let mut n = [0u8; 12];
    let (p, rest) = n.split_at_mut(NONCE_PREFIX_LEN);
    p.copy_from_slice(prefix);
    let (i, f) = rest.split_at_mut(4);
    i.copy_from_slice(&index.to_be_bytes());
    f.copy_from_slice(&[flag]);
    Nonce::assume_unique_for_key(n)
}

fn check_segment_size(segment_size: u32) -> Result<()> {
    if (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(
            "segment size outside 256 bytes ..= 8 MiB",
        ))
    }
}

/// Encrypts one object as a stream: write the plaintext in pieces of any
/// size, then call [`Encryptor::finish`]. Memory use is one segment.
///
/// Whole segments of a long enough piece are encrypted straight from the
/// caller's slice into the segment buffer; only a segment assembled from
/// several smaller pieces is copied first.
///
/// The header and the encrypted metadata are written to the sink when the
/// encryptor is created; each segment is written as soon as it is full.
/// Dropping an encryptor without `finish` leaves an object without its final
/// segment, which [`Decryptor::open`] rejects as truncated.
pub struct Encryptor<W: Write> {
    sink: W,
    key: LessSafeKey,
    prefix: [u8; NONCE_PREFIX_LEN],
    header_tag: [u8; TAG_LEN],
    segment_size: usize,
    buf: Zeroizing<Vec<u8>>,
    /// Plaintext bytes gathered in `buf` for the next segment.
    filled: usize,
    /// When set, `buf` holds this many bytes of a full segment sealed as
    /// not the last one, kept back until more plaintext shows that it is
    /// not (see [`Encryptor::finish`]).
    sealed: Option<usize>,
    index: u32,
    plaintext_len: u64,
}

// Written by hand: the sink need not be `Debug`, and ring's `LessSafeKey` is
// not `Zeroize`, so it cannot sit in a `Secret`; this prints sizes and
// counts, never the key, the nonce prefix or the buffered plaintext.
impl<W: Write> std::fmt::Debug for Encryptor<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("segment_size", &self.segment_size)
            .field("segments_written", &self.index)
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Encryptor<W> {
    /// Starts an object encrypted under `data_key`, with a fresh salt and
    /// nonce prefix from `rng`, segments of `segment_size` plaintext bytes
    /// (256 bytes ..= 8 MiB; [`crate::format::DEFAULT_SEGMENT_SIZE`] is a
    /// good choice), and `metadata` stored encrypted in the header.
    pub fn new(
        data_key: &DataKey,
        rng: &dyn SecureRandom,
        segment_size: u32,
        metadata: &Metadata,
        sink: W,
    ) -> Result<Encryptor<W>> {
        let mut salt = [0u8; SALT_LEN];
        let mut prefix = [0u8; NONCE_PREFIX_LEN];
        rng.fill(&mut salt).map_err(|_| Error::Rng)?;
        rng.fill(&mut prefix).map_err(|_| Error::Rng)?;
        Self::dangerous_with_fixed_randomness(data_key, salt, prefix, segment_size, metadata, sink)
    }

    /// Like [`Encryptor::new`] but with the salt and nonce prefix given.
    ///
    /// Only for reproducible test vectors (the golden files that pin the
    /// format): reusing a data key with the same salt for two different
    /// plaintexts breaks confidentiality.
    pub fn dangerous_with_fixed_randomness(
        data_key: &DataKey,
        salt: [u8; SALT_LEN],
        prefix: [u8; NONCE_PREFIX_LEN],
        segment_size: u32,
        metadata: &Metadata,
        mut sink: W,
    ) -> Result<Encryptor<W>> {
        check_segment_size(segment_size)?;
        let keys = derive(data_key, &salt)?;
        let private = Zeroizing::new(metadata.encode_private()?);
        let metadata_len = u32::try_from(private.len() + TAG_LEN)
            .map_err(|_| Error::InvalidArgument("metadata too large"))?;
        let commitment_tag = hmac::sign(&keys.commit, COMMIT_MSG);
        let mut commitment = [0u8; 32];
        commitment.copy_from_slice(commitment_tag.as_ref());
        let mut header = ObjectHeader {
            segment_size,
            created_at: metadata.created_at,
            retention_until: metadata.retention_until,
            salt: Secret::new(salt),
            nonce_prefix: Secret::new(prefix),
            metadata_len,
            commitment: Secret::new(commitment),
            tag: Secret::new([0; TAG_LEN]),
        };
        let unsigned = header.encode();
        let authenticated = unsigned
            .get(..HEADER_TAG_OFFSET)
            .ok_or(Error::InvalidArgument("header"))?;
        let tag = keys
            .aead
            .seal_in_place_separate_tag(
                nonce(&prefix, u32::MAX, FLAG_HEADER),
                Aad::from(authenticated),
                &mut [],
            )
            .map_err(|_| Error::InvalidArgument("header seal"))?;
        header.tag.expose_mut().copy_from_slice(tag.as_ref());
        let header_bytes = header.encode();
        let mut meta = Zeroizing::new(Vec::with_capacity(private.len() + TAG_LEN));
        meta.extend_from_slice(&private);
        keys.aead
            .seal_in_place_append_tag(
                nonce(&prefix, u32::MAX, FLAG_METADATA),
                Aad::from(&header_bytes[..]),
                &mut *meta,
            )
            .map_err(|_| Error::InvalidArgument("metadata seal"))?;
        sink.write_all(&header_bytes)
            .and_then(|()| sink.write_all(&meta))
            .map_err(Error::io("write"))?;
        let segment_size = segment_size as usize;
        Ok(Encryptor {
            sink,
            key: keys.aead,
            prefix,
            header_tag: *header.tag.expose(),
            segment_size,
            buf: Zeroizing::new(vec![0; segment_size + TAG_LEN]),
            filled: 0,
            sealed: None,
            index: 0,
            plaintext_len: 0,
        })
    }

    fn nonce(&self, last: bool) -> Nonce {
        let flag = if last { FLAG_LAST } else { FLAG_SEGMENT };
        nonce(&self.prefix, self.index, flag)
    }

    /// Seals the gathered plaintext in place, as the last segment or not.
    fn seal_gathered(&mut self, last: bool) -> Result<()> {
        let nonce = self.nonce(last);
        let (data, rest) = self
            .buf
            .split_at_mut_checked(self.filled)
            .ok_or(Error::InvalidArgument("segment buffer"))?;
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(&self.header_tag), data)
            .map_err(|_| Error::TooLarge)?;
        rest.get_mut(..TAG_LEN)
            .ok_or(Error::InvalidArgument("segment buffer"))?
            .copy_from_slice(tag.as_ref());
        self.sealed = Some(self.filled + TAG_LEN);
        self.filled = 0;
        Ok(())
    }

    /// Seals one full segment of the caller's plaintext straight into the
    /// segment buffer, as not the last segment.
    fn seal_from(&mut self, plaintext: &[u8]) -> Result<()> {
        let nonce = self.nonce(false);
        let (out, rest) = self
            .buf
            .split_at_mut_checked(plaintext.len())
            .ok_or(Error::InvalidArgument("segment buffer"))?;
        let tag = rest
            .get_mut(..TAG_LEN)
            .ok_or(Error::InvalidArgument("segment buffer"))?;
        self.key
            .seal_out_of_place_scatter(nonce, Aad::from(&self.header_tag), plaintext, out, &[], tag)
            .map_err(|_| Error::TooLarge)?;
        self.sealed = Some(plaintext.len() + TAG_LEN);
        Ok(())
    }

    /// Writes the sealed segment in the buffer to the sink.
    fn write_sealed(&mut self, last: bool) -> Result<()> {
        let Some(len) = self.sealed.take() else {
            return Ok(());
        };
        let out = self
            .buf
            .get(..len)
            .ok_or(Error::InvalidArgument("segment buffer"))?;
        self.sink.write_all(out).map_err(Error::io("write"))?;
        if !last {
            self.index = self.index.checked_add(1).ok_or(Error::TooLarge)?;
        }
        Ok(())
    }

    /// Encrypts more plaintext (the `Write` impl calls this).
    pub fn update(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            // More plaintext follows, so a full segment held back is not the
            // last one.
            if self.filled == self.segment_size {
                self.seal_gathered(false)?;
            }
            self.write_sealed(false)?;
            if self.filled == 0 && data.len() >= self.segment_size {
                let (segment, later) = data.split_at(self.segment_size);
                self.seal_from(segment)?;
                self.plaintext_len += segment.len() as u64;
                data = later;
                continue;
            }
            let room = self.segment_size - self.filled;
            let (now, later) = data.split_at(room.min(data.len()));
            let dst = self
                .buf
                .get_mut(self.filled..self.filled + now.len())
                .ok_or(Error::InvalidArgument("segment buffer"))?;
            copy_chunked(dst, now);
            self.filled += now.len();
            self.plaintext_len += now.len() as u64;
            data = later;
        }
        Ok(())
    }

    /// Seals the final segment, flushes the sink and returns it with the
    /// plaintext length.
    ///
    /// A final segment that was encrypted straight from the caller's slice
    /// was sealed as not the last one; it is decrypted in the buffer and
    /// sealed again with the last-segment flag, so the output is the same
    /// whichever way the plaintext arrived.
    pub fn finish(mut self) -> Result<(W, u64)> {
        if let Some(len) = self.sealed.take() {
            let nonce = self.nonce(false);
            let segment = self
                .buf
                .get_mut(..len)
                .ok_or(Error::InvalidArgument("segment buffer"))?;
            let plain = self
                .key
                .open_in_place(nonce, Aad::from(&self.header_tag), segment)
                .map_err(|_| Error::InvalidArgument("segment buffer"))?;
            self.filled = plain.len();
        }
        self.seal_gathered(true)?;
        self.write_sealed(true)?;
        self.sink.flush().map_err(Error::io("flush"))?;
        Ok((self.sink, self.plaintext_len))
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.update(data).map_err(into_io)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn into_io(e: Error) -> io::Error {
    match e {
        Error::Io { source, .. } => source,
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

/// Random-access reading of stored bytes: what [`Decryptor`] reads from.
pub trait ReadAt {
    /// Total length in bytes.
    fn size(&mut self) -> io::Result<u64>;
    /// Fills `buf` from `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// The `len` stored bytes at `offset`, borrowed, for sources that hold
    /// them in memory already (a slice, a memory map). The decryptor then
    /// decrypts a segment straight from them instead of copying it into its
    /// own buffer first. `None` (the default) means "use
    /// [`ReadAt::read_exact_at`]"; so does a range past the end.
    fn slice_at(&mut self, offset: u64, len: usize) -> Option<&[u8]> {
        let _ = (offset, len);
        None
    }
}

fn slice_range(src: &[u8], offset: u64, len: usize) -> Option<&[u8]> {
    src.get(usize::try_from(offset).ok()?..)?.get(..len)
}

fn slice_read_at(src: &[u8], offset: u64, buf: &mut [u8]) -> io::Result<()> {
    let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
    let part = src
        .get(start..)
        .and_then(|s| s.get(..buf.len()))
        .ok_or(io::ErrorKind::UnexpectedEof)?;
    copy_chunked(buf, part);
    Ok(())
}

/// Copies `src` into `dst`; both callers pass slices of equal length.
///
/// A segment is copied in page-sized pieces: for 64 KiB segments read from
/// main memory this measured a few percent faster than one `copy_from_slice`
/// of the whole segment (the system `memcpy` uses a different strategy for
/// large copies than for page-sized ones).
fn copy_chunked(dst: &mut [u8], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    for (d, s) in dst.chunks_mut(COPY_CHUNK).zip(src.chunks(COPY_CHUNK)) {
        d.copy_from_slice(s);
    }
}

/// The piece size of [`copy_chunked`].
const COPY_CHUNK: usize = 4096;

impl ReadAt for &[u8] {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        slice_read_at(self, offset, buf)
    }
    fn slice_at(&mut self, offset: u64, len: usize) -> Option<&[u8]> {
        slice_range(self, offset, len)
    }
}

impl ReadAt for Vec<u8> {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        slice_read_at(self, offset, buf)
    }
    fn slice_at(&mut self, offset: u64, len: usize) -> Option<&[u8]> {
        slice_range(self, offset, len)
    }
}

impl ReadAt for std::sync::Arc<Vec<u8>> {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        slice_read_at(self, offset, buf)
    }
    fn slice_at(&mut self, offset: u64, len: usize) -> Option<&[u8]> {
        slice_range(self, offset, len)
    }
}

impl ReadAt for std::fs::File {
    fn size(&mut self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.seek(SeekFrom::Start(offset))?;
        self.read_exact(buf)
    }
}

impl<R: ReadAt + ?Sized> ReadAt for Box<R> {
    fn size(&mut self) -> io::Result<u64> {
        (**self).size()
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        (**self).read_exact_at(offset, buf)
    }
    fn slice_at(&mut self, offset: u64, len: usize) -> Option<&[u8]> {
        (**self).slice_at(offset, len)
    }
}

/// Decrypts one object with random access, one segment in memory at a time.
///
/// [`Decryptor::open`] authenticates the header (key commitment, header tag),
/// the metadata, and the final segment, so the plaintext length is known and
/// truncation or extension is reported before any data. Each read then
/// decrypts only the segments that cover it, and returns bytes only from
/// segments that authenticated; the first failure is returned as an error.
pub struct Decryptor<R: ReadAt> {
    src: R,
    key: LessSafeKey,
    header: ObjectHeader,
    metadata: Metadata,
    segments: u64,
    plaintext_len: u64,
    buf: Zeroizing<Vec<u8>>,
    cached: Option<(u64, usize)>,
    pos: u64,
}

// Written by hand for the same reasons as `Encryptor`'s; the metadata prints
// through its own `Debug`, which redacts the labels.
impl<R: ReadAt> std::fmt::Debug for Decryptor<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("segment_size", &self.header.segment_size)
            .field("segments", &self.segments)
            .field("plaintext_len", &self.plaintext_len)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

/// What the header and metadata checks produce.
struct Opened {
    keys: ObjectKeys,
    header: ObjectHeader,
    metadata: Metadata,
    total: u64,
}

fn open_head<R: ReadAt>(data_key: &DataKey, src: &mut R) -> Result<Opened> {
    let total = src.size().map_err(Error::io("read"))?;
    if total < HEADER_LEN as u64 {
        return Err(Error::malformed("object header (too short)", total));
    }
    let mut hb = [0u8; HEADER_LEN];
    src.read_exact_at(0, &mut hb).map_err(Error::io("read"))?;
    let header = ObjectHeader::parse(&hb)?;
    let keys = derive(data_key, header.salt.expose())?;
    hmac::verify(&keys.commit, COMMIT_MSG, header.commitment.expose())
        .map_err(|_| Error::KeyCommitment)?;
    let (authenticated, tag) = hb.split_at(HEADER_TAG_OFFSET);
    let mut tag_copy = [0u8; TAG_LEN];
    tag_copy.copy_from_slice(tag);
    let mut empty = [0u8; TAG_LEN];
    empty.copy_from_slice(&tag_copy);
    keys.aead
        .open_in_place(
            nonce(header.nonce_prefix.expose(), u32::MAX, FLAG_HEADER),
            Aad::from(authenticated),
            &mut empty,
        )
        .map_err(|_| Error::HeaderAuth)?;
    if total < header.payload_offset() {
        return Err(Error::malformed(
            "object metadata (too short)",
            HEADER_LEN as u64,
        ));
    }
    let mut meta = Zeroizing::new(vec![0u8; header.metadata_len as usize]);
    src.read_exact_at(HEADER_LEN as u64, &mut meta)
        .map_err(Error::io("read"))?;
    let plain = keys
        .aead
        .open_in_place(
            nonce(header.nonce_prefix.expose(), u32::MAX, FLAG_METADATA),
            Aad::from(&hb[..]),
            &mut meta,
        )
        .map_err(|_| Error::MetadataAuth)?;
    let metadata = Metadata::decode_private(plain, &header)?;
    Ok(Opened {
        keys,
        header,
        metadata,
        total,
    })
}

/// Authenticates only the header and metadata of an object (key commitment,
/// header tag, metadata tag), without touching the payload segments.
pub fn open_metadata<R: ReadAt>(data_key: &DataKey, mut src: R) -> Result<Metadata> {
    open_head(data_key, &mut src).map(|o| o.metadata)
}

impl<R: ReadAt> Decryptor<R> {
    /// Opens an object: checks header, key commitment, metadata and the
    /// final segment.
    pub fn open(data_key: &DataKey, mut src: R) -> Result<Decryptor<R>> {
        let Opened {
            keys,
            header,
            metadata,
            total,
        } = open_head(data_key, &mut src)?;
        let payload = total - header.payload_offset();
        let seg_ct = u64::from(header.segment_size) + TAG_LEN as u64;
        if payload == 0 {
            return Err(Error::Truncated { segments: 0 });
        }
        let segments = payload.div_ceil(seg_ct);
        if segments > 1u64 << 32 {
            return Err(Error::TooLarge);
        }
        let mut d = Decryptor {
            src,
            key: keys.aead,
            buf: Zeroizing::new(vec![0; header.segment_size as usize + TAG_LEN]),
            header,
            metadata,
            segments,
            plaintext_len: 0,
            cached: None,
            pos: 0,
        };
        let last = segments - 1;
        let last_ct = payload - last * seg_ct;
        match d.decrypt(last, true) {
            Ok(len) => {
                d.plaintext_len = last * u64::from(d.header.segment_size) + len as u64;
                Ok(d)
            }
            Err(Error::SegmentAuth { .. }) => {
                if last_ct == seg_ct && d.decrypt(last, false).is_ok() {
                    return Err(Error::Truncated { segments });
                }
                if last >= 1 && d.decrypt(last - 1, true).is_ok() {
                    return Err(Error::Extended { last: last - 1 });
                }
                Err(Error::SegmentAuth { index: last })
            }
            Err(e) => Err(e),
        }
    }

    /// Decrypts segment `index` into the buffer; returns its plaintext length.
    fn decrypt(&mut self, index: u64, last: bool) -> Result<usize> {
        self.cached = None;
        let seg_ct = u64::from(self.header.segment_size) + TAG_LEN as u64;
        let offset = self.header.payload_offset() + index * seg_ct;
        let total_payload_end = self.header.payload_offset()
            + if self.segments == 0 {
                0
            } else {
                (self.segments - 1) * seg_ct
            };
        let len = if index + 1 == self.segments {
            // The final segment may be short; its length is whatever remains.
            let total = self.src.size().map_err(Error::io("read"))?;
            total.saturating_sub(total_payload_end)
        } else {
            seg_ct
        };
        let len = usize::try_from(len).map_err(|_| Error::TooLarge)?;
        if len < TAG_LEN {
            return Err(Error::SegmentAuth { index });
        }
        let idx32 = u32::try_from(index).map_err(|_| Error::TooLarge)?;
        let flag = if last { FLAG_LAST } else { FLAG_SEGMENT };
        let nonce = nonce(self.header.nonce_prefix.expose(), idx32, flag);
        let aad = Aad::from(self.header.tag.expose());
        let plen = len - TAG_LEN;
        if let Some(stored) = self.src.slice_at(offset, len) {
            let (ciphertext, tag) = stored
                .split_at_checked(plen)
                .ok_or(Error::SegmentAuth { index })?;
            let out = self
                .buf
                .get_mut(..plen)
                .ok_or(Error::SegmentAuth { index })?;
            self.key
                .open_separate_gather(nonce, aad, ciphertext, tag, out)
                .map_err(|_| Error::SegmentAuth { index })?;
        } else {
            let buf = self
                .buf
                .get_mut(..len)
                .ok_or(Error::SegmentAuth { index })?;
            self.src
                .read_exact_at(offset, buf)
                .map_err(Error::io("read"))?;
            self.key
                .open_in_place(nonce, aad, buf)
                .map_err(|_| Error::SegmentAuth { index })?;
        }
        if !last && plen != self.header.segment_size as usize {
            return Err(Error::SegmentAuth { index });
        }
        self.cached = Some((index, plen));
        Ok(plen)
    }

    /// The authenticated plaintext of segment `index`.
    pub fn segment(&mut self, index: u64) -> Result<&[u8]> {
        if index >= self.segments {
            return Err(Error::InvalidArgument("segment index past the end"));
        }
        let len = match self.cached {
            Some((i, len)) if i == index => len,
            _ => self.decrypt(index, index + 1 == self.segments)?,
        };
        self.buf.get(..len).ok_or(Error::SegmentAuth { index })
    }

    /// Reads plaintext from `offset` into `out`; returns how many bytes were
    /// read (less than `out.len()` only at the end of the object). Decrypts
    /// only the segments the range covers.
    pub fn read_at(&mut self, offset: u64, out: &mut [u8]) -> Result<usize> {
        let s = u64::from(self.header.segment_size);
        let mut done = 0usize;
        while done < out.len() {
            let at = offset + done as u64;
            if at >= self.plaintext_len {
                break;
            }
            let seg = at / s;
            let within = usize::try_from(at - seg * s).map_err(|_| Error::TooLarge)?;
            let plain = self.segment(seg)?;
            // Both exist: `at` is below the authenticated length, so it lies
            // inside this segment's plaintext, and `done < out.len()`. An
            // inconsistency is an error, never a silently short read.
            let avail = plain
                .get(within..)
                .ok_or(Error::InvalidArgument("read offset past the segment"))?;
            let dst = out
                .get_mut(done..)
                .ok_or(Error::InvalidArgument("read range"))?;
            let n = avail.len().min(dst.len());
            if n == 0 {
                break;
            }
            dst.get_mut(..n)
                .zip(avail.get(..n))
                .map(|(d, a)| d.copy_from_slice(a))
                .ok_or(Error::InvalidArgument("read range"))?;
            done += n;
        }
        Ok(done)
    }

    /// The authenticated metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The parsed (and authenticated) header.
    pub fn header(&self) -> &ObjectHeader {
        &self.header
    }

    /// Plaintext length in bytes.
    pub fn len(&self) -> u64 {
        self.plaintext_len
    }

    /// True for an empty object.
    pub fn is_empty(&self) -> bool {
        self.plaintext_len == 0
    }

    /// Number of segments.
    pub fn segment_count(&self) -> u64 {
        self.segments
    }
}

impl<R: ReadAt> Read for Decryptor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(self.pos, buf).map_err(into_io)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: ReadAt> Seek for Decryptor<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.plaintext_len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let new = new
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = new;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(key: &DataKey, seg: u32, data: &[u8]) -> Vec<u8> {
        let m = Metadata::new("t", "x", 1, 2);
        let mut e =
            Encryptor::dangerous_with_fixed_randomness(key, [1; 32], [2; 7], seg, &m, Vec::new())
                .unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap().0
    }

    #[test]
    fn round_trip_small() {
        let k = DataKey::from_bytes([9; 32]);
        for len in [0usize, 1, 255, 256, 257, 1000] {
            let data: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
            let ct = seal(&k, 256, &data);
            let mut d = Decryptor::open(&k, ct).unwrap();
            assert_eq!(d.len(), len as u64);
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn debug_redacts_key() {
        assert_eq!(
            format!("{:?}", DataKey::from_bytes([7; 32])),
            "DataKey(<redacted>)"
        );
    }
}
