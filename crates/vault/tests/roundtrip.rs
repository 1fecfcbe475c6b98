//! Round trips through the vault and the stream layer at every size that
//! matters, range reads at every segment boundary, and proptest round trips.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::disallowed_methods, clippy::cast_possible_truncation)]

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use carevox_vault::{
    DataKey, Decryptor, Encryptor, KeyProvider, MIN_PBKDF2_ITERATIONS, MemoryBackend, Metadata,
    PassphraseProvider, ReadAt, Vault,
};
use proptest::prelude::*;
use ring::rand::SystemRandom;

const SEG: u32 = 256;

#[allow(clippy::disallowed_methods)]
fn rng() -> SystemRandom {
    SystemRandom::new()
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 31 + usize::from(seed)) % 251).unwrap())
        .collect()
}

fn vault() -> Vault {
    let (keys, _) = PassphraseProvider::create(b"pw", MIN_PBKDF2_ITERATIONS, 1, &rng()).unwrap();
    let keys: Arc<dyn KeyProvider> = Arc::new(keys);
    Vault::new(Arc::new(MemoryBackend::new()), keys)
        .with_segment_size(SEG)
        .unwrap()
}

const SIZES: [usize; 7] = [0, 1, 255, 256, 257, 512, 256 * 9 + 77];

#[test]
fn vault_round_trip_at_every_size() {
    let v = vault();
    let rng = rng();
    for (i, &len) in SIZES.iter().enumerate() {
        let id = format!("obj-{i}");
        let d = data(len, 7);
        let meta = Metadata::new(&id, "audio/wav", 10, 20).label("patient", "P-1");
        let info = v.put(&rng, meta.clone(), &d).unwrap();
        assert_eq!(info.len, len as u64);
        let (m, back) = v.get(&id).unwrap();
        assert_eq!(back, d, "size {len}");
        assert_eq!(m, meta);
    }
}

#[test]
fn streaming_writer_in_odd_pieces() {
    let v = vault();
    let rng = rng();
    let d = data(256 * 5 + 3, 1);
    let mut w = v
        .writer(&rng, Metadata::new("s", "audio/wav", 0, 0))
        .unwrap();
    for chunk in d.chunks(97) {
        w.write_all(chunk).unwrap();
    }
    w.finish().unwrap();
    let mut r = v.open("s").unwrap();
    assert_eq!(r.len(), d.len() as u64);
    let mut back = Vec::new();
    let mut buf = [0u8; 61];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
    }
    assert_eq!(back, d);
    r.seek(SeekFrom::Start(300)).unwrap();
    let mut two = [0u8; 2];
    r.read_exact(&mut two).unwrap();
    assert_eq!(two, d[300..302]);
}

#[test]
fn range_reads_at_every_boundary() {
    let v = vault();
    let rng = rng();
    let len = 256 * 4 + 100;
    let d = data(len, 3);
    v.put(&rng, Metadata::new("r", "x", 0, 0), &d).unwrap();
    let mut r = v.open("r").unwrap();
    let s = SEG as usize;
    let mut points = vec![0usize, len - 1, len, len + 1];
    for k in 1..=4 {
        points.extend([k * s - 1, k * s, k * s + 1]);
    }
    for &start in &points {
        for &n in &[0usize, 1, 2, s - 1, s, s + 1, 2 * s + 5, len] {
            let mut out = vec![0u8; n];
            let got = r.read_at(start as u64, &mut out).unwrap();
            let want_end = (start + n).min(len);
            let want = if start >= len {
                &[][..]
            } else {
                &d[start..want_end]
            };
            assert_eq!(&out[..got], want, "start {start} len {n}");
        }
    }
    assert_eq!(v.get_range("r", 255, 2).unwrap(), d[255..257]);
    assert_eq!(v.get_range("r", len as u64 - 1, 10).unwrap(), d[len - 1..]);
    assert!(v.get_range("r", len as u64 + 5, 10).unwrap().is_empty());
}

fn seal(seg: u32, d: &[u8]) -> (DataKey, Vec<u8>) {
    let key = DataKey::generate(&rng()).unwrap();
    let mut e = Encryptor::new(
        &key,
        &rng(),
        seg,
        &Metadata::new("p", "x", 1, 2),
        Vec::new(),
    )
    .unwrap();
    e.write_all(d).unwrap();
    (key, e.finish().unwrap().0)
}

/// Stored bytes that can only be copied out, like a file: the decryptor
/// reads each segment into its buffer and opens it there, instead of
/// decrypting straight from borrowed bytes.
struct CopyOnly(Vec<u8>);

impl ReadAt for CopyOnly {
    fn size(&mut self) -> std::io::Result<u64> {
        Ok(self.0.len() as u64)
    }
    fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let mut slice = self.0.as_slice();
        slice.read_exact_at(offset, buf)
    }
}

fn seal_fixed(seg: u32, pieces: &[&[u8]]) -> Vec<u8> {
    let key = DataKey::from_bytes([3; 32]);
    let meta = Metadata::new("p", "x", 1, 2);
    let mut e =
        Encryptor::dangerous_with_fixed_randomness(&key, [4; 32], [5; 7], seg, &meta, Vec::new())
            .unwrap();
    for p in pieces {
        e.update(p).unwrap();
    }
    e.finish().unwrap().0
}

/// Splits `d` at the given cut points (any order, clamped to its length).
fn pieces<'a>(d: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (d.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut at = 0;
    for c in cuts.into_iter().chain([d.len()]) {
        out.push(&d[at..c]);
        at = c;
    }
    out
}

/// Opens an object and reads all of it, or the first error.
fn open_and_read<R: ReadAt>(key: &DataKey, src: R) -> carevox_vault::Result<Vec<u8>> {
    let mut dec = Decryptor::open(key, src)?;
    let mut out = vec![0u8; usize::try_from(dec.len()).unwrap()];
    let n = dec.read_at(0, &mut out)?;
    out.truncate(n);
    Ok(out)
}

#[test]
fn whole_segment_writes_give_the_same_bytes_as_one_write() {
    // Pieces of exactly one segment are sealed straight from the caller's
    // slice; the last one is sealed again as the final segment.
    for segments in 0..4usize {
        let d = data(SEG as usize * segments, 7);
        let whole = seal_fixed(SEG, &[&d]);
        let by_segment: Vec<&[u8]> = d.chunks(SEG as usize).collect();
        assert_eq!(seal_fixed(SEG, &by_segment), whole, "{segments} segments");
        let by_byte: Vec<&[u8]> = d.chunks(1).collect();
        assert_eq!(seal_fixed(SEG, &by_byte), whole, "{segments} segments");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn same_bytes_however_the_plaintext_is_split(
        d in proptest::collection::vec(any::<u8>(), 0..3000),
        seg in 256u32..700,
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = seal_fixed(seg, &[&d]);
        prop_assert_eq!(seal_fixed(seg, &pieces(&d, &cuts)), whole);
    }

    #[test]
    fn borrowed_and_copied_sources_agree(
        d in proptest::collection::vec(any::<u8>(), 0..3000),
        seg in 256u32..700,
        flip in proptest::option::of((any::<usize>(), 0u8..8)),
    ) {
        let mut ct = seal_fixed(seg, &[&d]);
        if let Some((at, bit)) = flip {
            let at = at % ct.len();
            ct[at] ^= 1 << bit;
        }
        let key = DataKey::from_bytes([3; 32]);
        let borrowed = open_and_read(&key, ct.clone());
        let copied = open_and_read(&key, CopyOnly(ct));
        prop_assert_eq!(format!("{borrowed:?}"), format!("{copied:?}"));
        if flip.is_none() {
            prop_assert_eq!(borrowed.unwrap(), d);
        }
    }

    #[test]
    fn stream_round_trip(
        d in proptest::collection::vec(any::<u8>(), 0..3000),
        seg in 256u32..700,
        start in 0usize..3100,
        n in 0usize..800,
    ) {
        let (key, ct) = seal(seg, &d);
        let mut dec = Decryptor::open(&key, ct).unwrap();
        prop_assert_eq!(dec.len(), d.len() as u64);
        let mut out = vec![0u8; n];
        let got = dec.read_at(start as u64, &mut out).unwrap();
        let want = if start >= d.len() { &[][..] } else { &d[start..(start + n).min(d.len())] };
        prop_assert_eq!(&out[..got], want);
        let mut all = Vec::new();
        dec.seek(SeekFrom::Start(0)).unwrap();
        dec.read_to_end(&mut all).unwrap();
        prop_assert_eq!(all, d);
    }

    #[test]
    fn opening_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let key = DataKey::from_bytes([1; 32]);
        prop_assert!(Decryptor::open(&key, bytes).is_err());
    }
}
