//! Round trips through the vault and the stream layer at every size that
//! matters, range reads at every segment boundary, and proptest round trips.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::disallowed_methods, clippy::cast_possible_truncation)]

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use carevox_vault::{
    DataKey, Decryptor, Encryptor, KeyProvider, MemoryBackend, Metadata, PassphraseProvider, Vault,
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
    let (keys, _) = PassphraseProvider::create(b"pw", 10_000, 1, &rng()).unwrap();
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

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
