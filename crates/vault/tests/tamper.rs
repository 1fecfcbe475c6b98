//! The tamper matrix: every way of damaging an object gives its own typed
//! error, and no other object is affected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::disallowed_methods, clippy::cast_possible_truncation)]

use std::sync::Arc;

use carevox_vault::{
    DataKey, Decryptor, Error, KeyError, KeyProvider, MIN_PBKDF2_ITERATIONS, MemoryBackend,
    Metadata, PassphraseProvider, Vault,
};
use ring::rand::SystemRandom;

const SEG: usize = 256;
const CT_SEG: usize = SEG + 16;
const HEADER: usize = 124;

#[allow(clippy::disallowed_methods)]
fn rng() -> SystemRandom {
    SystemRandom::new()
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 7 + usize::from(seed)) % 253).unwrap())
        .collect()
}

struct Fixture {
    mem: MemoryBackend,
    vault: Vault,
    /// Original payload bytes by id.
    a: Vec<u8>,
    b: Vec<u8>,
    full: Vec<u8>,
}

/// "a": 4 segments (last short); "b": same shape; "full": 4 full segments;
/// "c": a bystander that must stay readable.
fn fixture() -> Fixture {
    let mem = MemoryBackend::new();
    let (keys, _) = PassphraseProvider::create(b"pw", MIN_PBKDF2_ITERATIONS, 1, &rng()).unwrap();
    let keys: Arc<dyn KeyProvider> = Arc::new(keys);
    let vault = Vault::new(Arc::new(mem.clone()), keys)
        .with_segment_size(SEG as u32)
        .unwrap();
    let rng = rng();
    for (id, len, seed) in [
        ("a", 1000, 1),
        ("b", 1000, 2),
        ("full", 1024, 3),
        ("c", 700, 4),
    ] {
        let meta = Metadata::new(id, "audio/wav", 5, 6).label("patient", "P-42");
        vault.put(&rng, meta, &data(len, seed)).unwrap();
    }
    Fixture {
        a: mem.payload_bytes("a").unwrap(),
        b: mem.payload_bytes("b").unwrap(),
        full: mem.payload_bytes("full").unwrap(),
        mem,
        vault,
    }
}

impl Fixture {
    fn meta_len(&self) -> usize {
        u32::from_be_bytes(self.a[72..76].try_into().unwrap()) as usize
    }
    fn seg_start(&self, i: usize) -> usize {
        HEADER + self.meta_len() + i * CT_SEG
    }
    fn bystander_ok(&self) {
        assert_eq!(self.vault.get("c").unwrap().1, data(700, 4));
        assert_eq!(self.vault.get("b").unwrap().1, data(1000, 2));
    }
    fn with_a(&self, bytes: Vec<u8>) -> Error {
        self.mem.set_payload_bytes("a", bytes);
        let e = self.vault.get("a").unwrap_err();
        self.bystander_ok();
        self.mem.set_payload_bytes("a", self.a.clone());
        assert_eq!(self.vault.get("a").unwrap().1, data(1000, 1));
        e
    }
}

fn flip(mut v: Vec<u8>, at: usize) -> Vec<u8> {
    v[at] ^= 0x01;
    v
}

#[test]
fn tampered_header_fields() {
    let f = fixture();
    for at in [16, 24, 12, 64, 72 + 3] {
        let e = f.with_a(flip(f.a.clone(), at));
        assert!(
            matches!(e, Error::HeaderAuth | Error::Malformed { .. }),
            "offset {at}: {e:?}"
        );
    }
    // A change to the retention date (a valid value) is an authentication failure.
    assert!(matches!(f.with_a(flip(f.a.clone(), 31)), Error::HeaderAuth));
    assert!(matches!(
        f.with_a(flip(f.a.clone(), 110)),
        Error::HeaderAuth
    ));
    assert!(matches!(
        f.with_a(flip(f.a.clone(), 0)),
        Error::Malformed {
            what: "object magic",
            offset: 0
        }
    ));
    assert!(matches!(
        f.with_a(flip(f.a.clone(), 9)),
        Error::UnsupportedVersion { version: 0, .. }
    ));
}

#[test]
fn tampered_salt_or_commitment_is_a_commitment_failure() {
    let f = fixture();
    assert!(matches!(
        f.with_a(flip(f.a.clone(), 40)),
        Error::KeyCommitment
    ));
    assert!(matches!(
        f.with_a(flip(f.a.clone(), 90)),
        Error::KeyCommitment
    ));
}

#[test]
fn tampered_metadata_and_labels() {
    let f = fixture();
    let m = f.meta_len();
    for at in [HEADER, HEADER + 3, HEADER + m - 20, HEADER + m - 1] {
        assert!(
            matches!(f.with_a(flip(f.a.clone(), at)), Error::MetadataAuth),
            "at {at}"
        );
    }
}

#[test]
fn labels_cannot_be_moved_between_objects() {
    let f = fixture();
    let m = f.meta_len();
    assert_eq!(
        m,
        u32::from_be_bytes(f.b[72..76].try_into().unwrap()) as usize
    );
    let mut bad = f.a.clone();
    bad[HEADER..HEADER + m].copy_from_slice(&f.b[HEADER..HEADER + m]);
    assert!(matches!(f.with_a(bad), Error::MetadataAuth));
}

#[test]
fn tampered_segment_n() {
    let f = fixture();
    for n in 0..3 {
        let bad = flip(f.a.clone(), f.seg_start(n) + 5);
        f.mem.set_payload_bytes("a", bad);
        // Opening checks only the header, metadata and final segment...
        let mut r = f.vault.open("a").unwrap();
        // ...segments before N still read...
        if n > 0 {
            let mut buf = vec![0u8; SEG];
            assert_eq!(r.read_at(0, &mut buf).unwrap(), SEG);
            assert_eq!(buf, data(1000, 1)[..SEG]);
        }
        // ...and segment N is refused with its index.
        let mut buf = [0u8; 4];
        let e = r.read_at((n * SEG) as u64, &mut buf).unwrap_err();
        assert!(
            matches!(e, Error::SegmentAuth { index } if index == n as u64),
            "{e:?}"
        );
        let e = f.vault.get("a").unwrap_err();
        assert!(
            matches!(e, Error::SegmentAuth { index } if index == n as u64),
            "{e:?}"
        );
        f.bystander_ok();
    }
    // The final segment is checked on open.
    let e = f.with_a(flip(f.a.clone(), f.a.len() - 1));
    assert!(matches!(e, Error::SegmentAuth { index: 3 }), "{e:?}");
}

#[test]
fn wrong_key() {
    let f = fixture();
    // Another key provider (same version number, different KEK).
    let (other, _) =
        PassphraseProvider::create(b"other", MIN_PBKDF2_ITERATIONS, 1, &rng()).unwrap();
    let other: Arc<dyn KeyProvider> = Arc::new(other);
    let v2 = Vault::new(Arc::new(f.mem.clone()), other);
    assert!(matches!(
        v2.get("a").unwrap_err(),
        Error::KeyRecord {
            source: KeyError::Unwrap { version: 1 },
            ..
        }
    ));
    // A wrong data key at the stream layer: the commitment catches it
    // before any decryption.
    let e = Decryptor::open(&DataKey::from_bytes([0; 32]), f.a.clone()).unwrap_err();
    assert!(matches!(e, Error::KeyCommitment));
    // A key record moved from another object does not unwrap: the object id
    // is bound to the wrapped key.
    f.mem
        .set_key_record_bytes("a", f.mem.key_record_bytes("b").unwrap());
    assert!(matches!(
        f.vault.get("a").unwrap_err(),
        Error::KeyRecord {
            source: KeyError::Unwrap { version: 1 },
            ..
        }
    ));
    f.bystander_ok();
}

#[test]
fn payload_swapped_between_objects() {
    let f = fixture();
    // b's payload under a's key: the commitment does not match a's data key.
    assert!(matches!(f.with_a(f.b.clone()), Error::KeyCommitment));
}

#[test]
fn truncated() {
    let f = fixture();
    // Cut at a segment boundary: the last present segment is not final.
    let e = f.with_a(f.a[..f.seg_start(3)].to_vec());
    assert!(matches!(e, Error::Truncated { segments: 3 }), "{e:?}");
    let e = f.with_a(f.a[..f.seg_start(1)].to_vec());
    assert!(matches!(e, Error::Truncated { segments: 1 }), "{e:?}");
    // Cut inside the final segment.
    let e = f.with_a(f.a[..f.a.len() - 5].to_vec());
    assert!(matches!(e, Error::SegmentAuth { index: 3 }), "{e:?}");
    // Every segment gone.
    let e = f.with_a(f.a[..f.seg_start(0)].to_vec());
    assert!(matches!(e, Error::Truncated { segments: 0 }), "{e:?}");
    // Cut inside the metadata or the header.
    assert!(matches!(
        f.with_a(f.a[..HEADER + 3].to_vec()),
        Error::Malformed { .. }
    ));
    assert!(matches!(
        f.with_a(f.a[..50].to_vec()),
        Error::Malformed { .. }
    ));
}

#[test]
fn reordered_segments() {
    let f = fixture();
    let mut bad = f.a.clone();
    let (s0, s1) = (f.seg_start(0), f.seg_start(1));
    let first = bad[s0..s1].to_vec();
    let second = bad[s1..s1 + CT_SEG].to_vec();
    bad[s0..s1].copy_from_slice(&second);
    bad[s1..s1 + CT_SEG].copy_from_slice(&first);
    assert!(matches!(f.with_a(bad), Error::SegmentAuth { index: 0 }));
}

#[test]
fn segment_swapped_from_another_object() {
    let f = fixture();
    let mut bad = f.a.clone();
    let s = f.seg_start(1);
    bad[s..s + CT_SEG].copy_from_slice(&f.b[s..s + CT_SEG]);
    assert!(matches!(f.with_a(bad), Error::SegmentAuth { index: 1 }));
}

#[test]
fn extended() {
    let f = fixture();
    let meta_len = u32::from_be_bytes(f.full[72..76].try_into().unwrap()) as usize;
    let seg0 = f.full[HEADER + meta_len..HEADER + meta_len + CT_SEG].to_vec();
    let read_full = |bytes: Vec<u8>| {
        f.mem.set_payload_bytes("full", bytes);
        let e = f.vault.get("full").unwrap_err();
        f.mem.set_payload_bytes("full", f.full.clone());
        f.bystander_ok();
        e
    };
    // A whole segment appended after the final one.
    let mut bad = f.full.clone();
    bad.extend_from_slice(&seg0);
    assert!(matches!(read_full(bad), Error::Extended { last: 3 }));
    // A few bytes appended.
    let mut bad = f.full.clone();
    bad.extend_from_slice(b"junk");
    assert!(matches!(read_full(bad), Error::Extended { last: 3 }));
    assert_eq!(f.vault.get("full").unwrap().1, data(1024, 3));
}

#[test]
fn payload_under_another_id_is_refused() {
    // With both records copied to a new id, the wrapped key does not unwrap
    // (the id is its context), so nothing is readable under the new name.
    let f = fixture();
    f.mem.set_payload_bytes("z", f.a.clone());
    f.mem
        .set_key_record_bytes("z", f.mem.key_record_bytes("a").unwrap());
    assert!(matches!(
        f.vault.get("z").unwrap_err(),
        Error::KeyRecord {
            source: KeyError::Unwrap { .. },
            ..
        }
    ));
}

#[test]
fn tampered_key_record() {
    let f = fixture();
    let rec = f.mem.key_record_bytes("a").unwrap();
    f.mem
        .set_key_record_bytes("a", flip(rec.clone(), rec.len() - 1));
    assert!(matches!(
        f.vault.get("a").unwrap_err(),
        Error::KeyRecord {
            source: KeyError::Unwrap { version: 1 },
            ..
        }
    ));
    f.mem.set_key_record_bytes("a", flip(rec.clone(), 0));
    assert!(matches!(
        f.vault.get("a").unwrap_err(),
        Error::Malformed {
            what: "key record magic",
            ..
        }
    ));
    // A record naming a version the provider does not have.
    let mut other = rec.clone();
    other[13] = 9;
    f.mem.set_key_record_bytes("a", other);
    assert!(matches!(
        f.vault.get("a").unwrap_err(),
        Error::KeyRecord {
            source: KeyError::UnknownVersion { version: 9 },
            ..
        }
    ));
    f.bystander_ok();
}

mod any_flip {
    use std::io::{Read, Write};

    use carevox_vault::{DataKey, Decryptor, Encryptor, Metadata};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any single bit flipped anywhere in an object is detected, as an
        /// integrity failure, before or during reading.
        #[test]
        fn any_bit_flip_is_detected(len in 0usize..1500, pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let key = DataKey::from_bytes([3; 32]);
            let meta = Metadata::new("f", "audio/wav", 1, 2).label("patient", "P");
            let mut e = Encryptor::dangerous_with_fixed_randomness(&key, [4; 32], [5; 7], 256, &meta, Vec::new()).unwrap();
            e.write_all(&vec![0xA5; len]).unwrap();
            let mut ct = e.finish().unwrap().0;
            let at = pos.index(ct.len());
            ct[at] ^= 1 << bit;
            match Decryptor::open(&key, ct) {
                // A flipped version field reads as a format this build does
                // not know, which is an integrity failure too.
                Err(err) => prop_assert!(err.is_integrity_failure(), "{err:?}"),
                Ok(mut d) => {
                    let mut out = Vec::new();
                    let err = d.read_to_end(&mut out).unwrap_err();
                    let inner = err.into_inner().unwrap().downcast::<carevox_vault::Error>().unwrap();
                    prop_assert!(inner.is_integrity_failure(), "{inner:?}");
                }
            }
        }
    }
}
