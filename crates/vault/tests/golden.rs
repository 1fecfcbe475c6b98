//! Golden files pin the on-disk format: objects written by format version 1
//! must stay readable, and the writer must keep producing the same bytes
//! from the same key, salt and nonce prefix.
//!
//! The files in `tests/data/` come from fixed keys and fixed randomness (see
//! `CASES`). To regenerate them after a deliberate format change (which also
//! needs a new format version and a reader for the old one):
//!
//! ```sh
//! CAREVOX_VAULT_REGENERATE_GOLDEN=1 cargo test -p carevox-vault --test golden
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Read, Write};
use std::path::PathBuf;

use carevox_vault::{DataKey, Decryptor, Encryptor, KeyRecord, Metadata};

const KEY: [u8; 32] = [0x42; 32];
const SALT: [u8; 32] = [0x53; 32];
const PREFIX: [u8; 7] = [0x50; 7];
const SEG: u32 = 256;

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect()
}

fn cases() -> Vec<(&'static str, Metadata, Vec<u8>)> {
    vec![
        (
            "object-v1-empty.cvx",
            Metadata::new(
                "golden-empty",
                "application/octet-stream",
                1_767_225_600,
                1_956_528_000,
            ),
            Vec::new(),
        ),
        (
            "object-v1-three-segments.cvx",
            Metadata::new("golden-vm", "audio/wav", 1_767_225_600, 1_956_528_000)
                .label("call-id", "a84b4c76e66710@pc33.example.com")
                .label("patient", "MRN-0000-TEST"),
            plaintext(600),
        ),
    ]
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn encrypt(meta: &Metadata, plain: &[u8]) -> Vec<u8> {
    let key = DataKey::from_bytes(KEY);
    let mut e =
        Encryptor::dangerous_with_fixed_randomness(&key, SALT, PREFIX, SEG, meta, Vec::new())
            .unwrap();
    e.write_all(plain).unwrap();
    e.finish().unwrap().0
}

fn regenerate() -> bool {
    std::env::var_os("CAREVOX_VAULT_REGENERATE_GOLDEN").is_some()
}

#[test]
fn golden_objects_read_and_reproduce() {
    for (name, meta, plain) in cases() {
        let path = data_dir().join(name);
        let fresh = encrypt(&meta, &plain);
        if regenerate() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let stored = std::fs::read(&path).unwrap();
        // Readable...
        let mut d = Decryptor::open(&DataKey::from_bytes(KEY), stored.clone()).unwrap();
        assert_eq!(d.metadata(), &meta, "{name}");
        let mut back = Vec::new();
        d.read_to_end(&mut back).unwrap();
        assert_eq!(back, plain, "{name}");
        // ...and what the writer still produces.
        assert_eq!(
            stored, fresh,
            "{name}: the writer no longer produces format v1 bytes"
        );
        assert_eq!(&stored[..8], b"CVXVAULT");
        assert_eq!(&stored[8..10], &[0, 1]);
    }
}

#[test]
fn golden_key_record() {
    let path = data_dir().join("key-record-v1.bin");
    let record = KeyRecord {
        kek_version: 3,
        wrapped: carevox_vault::Secret::new((0u8..60).collect()),
    };
    let fresh = record.encode().unwrap();
    if regenerate() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let stored = std::fs::read(&path).unwrap();
    assert_eq!(KeyRecord::parse(&stored).unwrap(), record);
    assert_eq!(stored, fresh);
}
