//! The integrity rule of `Error::is_integrity_failure` and
//! `KeyError::is_integrity_failure`, variant by variant, and on the errors
//! that real damage produces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;

use carevox_vault::{
    Error, KeyError, KeyProvider, MIN_PBKDF2_ITERATIONS, MemoryBackend, Metadata,
    PassphraseProvider, Vault,
};
use ring::rand::SystemRandom;

fn io() -> std::io::Error {
    std::io::ErrorKind::Other.into()
}

/// Every key error, with whether it is an integrity failure.
fn key_errors() -> Vec<(KeyError, bool)> {
    vec![
        (KeyError::UnknownVersion { version: 1 }, true),
        (KeyError::Retired { version: 1 }, true),
        (KeyError::Unwrap { version: 1 }, true),
        (
            KeyError::Malformed {
                what: "key file",
                offset: 0,
            },
            true,
        ),
        (
            KeyError::UnsupportedVersion {
                what: "key file",
                version: 9,
            },
            true,
        ),
        (
            KeyError::OutOfBounds {
                what: "PBKDF2 iterations",
                value: 0,
                min: 1,
                max: 2,
            },
            true,
        ),
        (KeyError::WrongPassphrase, false),
        (KeyError::Unsupported("retire"), false),
        (
            KeyError::Io {
                op: "read",
                source: io(),
            },
            false,
        ),
        (KeyError::Rng, false),
        (KeyError::Backend("kms unreachable".into()), false),
    ]
}

#[test]
fn every_key_error_is_classed() {
    for (e, integrity) in key_errors() {
        assert_eq!(e.is_integrity_failure(), integrity, "{e:?}");
    }
}

#[test]
fn every_vault_error_is_classed() {
    let mut cases: Vec<(Error, bool)> = vec![
        (
            Error::Malformed {
                what: "object magic",
                offset: 0,
            },
            true,
        ),
        (
            Error::UnsupportedVersion {
                what: "object",
                version: 2,
            },
            true,
        ),
        (Error::KeyCommitment, true),
        (Error::HeaderAuth, true),
        (Error::MetadataAuth, true),
        (Error::SegmentAuth { index: 3 }, true),
        (Error::Truncated { segments: 2 }, true),
        (Error::Extended { last: 1 }, true),
        (Error::ObjectIdMismatch, true),
        (Error::NotFound, false),
        (Error::AlreadyExists, false),
        (Error::InvalidObjectId { reason: "empty" }, false),
        (Error::InvalidArgument("segment size"), false),
        (Error::TooLarge, false),
        (
            Error::KekInUse {
                version: 1,
                objects: 2,
            },
            false,
        ),
        (Error::KekIsCurrent { version: 1 }, false),
        (Error::Rng, false),
        (
            Error::Io {
                op: "read",
                source: io(),
            },
            false,
        ),
    ];
    // A key record that does not give its key follows the key error's
    // class; a provider failure outside a key record never is one.
    for (source, integrity) in key_errors() {
        cases.push((
            Error::KeyRecord {
                kek_version: 1,
                source,
            },
            integrity,
        ));
    }
    for (source, _) in key_errors() {
        cases.push((Error::Key(source), false));
    }
    for (e, integrity) in cases {
        assert_eq!(e.is_integrity_failure(), integrity, "{e:?}");
    }
}

fn vault() -> (MemoryBackend, Vault, SystemRandom) {
    let rng = SystemRandom::new();
    let mem = MemoryBackend::new();
    let (keys, _) = PassphraseProvider::create(b"pw", MIN_PBKDF2_ITERATIONS, 1, &rng).unwrap();
    let keys: Arc<dyn KeyProvider> = Arc::new(keys);
    let vault = Vault::new(Arc::new(mem.clone()), keys);
    for id in ["a", "b"] {
        vault
            .put(&rng, Metadata::new(id, "audio/wav", 1, 2), b"payload")
            .unwrap();
    }
    (mem, vault, rng)
}

#[test]
fn damaged_key_records_and_versions_are_integrity_failures() {
    let (mem, vault, _) = vault();
    let rec = mem.key_record_bytes("a").unwrap();
    let payload = mem.payload_bytes("a").unwrap();
    let mut damaged: Vec<(&str, Vec<u8>, Vec<u8>)> = Vec::new();
    // Key record: format version, KEK version, length, wrapped key, moved.
    for (what, at, value) in [
        ("record format version", 9, 2u8),
        ("record KEK version", 13, 9),
        ("record length", 15, 1),
        ("record wrapped key", 20, 0xFF),
    ] {
        let mut r = rec.clone();
        r[at] = value;
        damaged.push((what, r, payload.clone()));
    }
    damaged.push((
        "record moved from another object",
        mem.key_record_bytes("b").unwrap(),
        payload.clone(),
    ));
    // Payload: format version.
    let mut p = payload.clone();
    p[9] = 2;
    damaged.push(("payload format version", rec.clone(), p));
    for (what, r, p) in damaged {
        mem.set_key_record_bytes("a", r);
        mem.set_payload_bytes("a", p);
        let e = vault.get("a").unwrap_err();
        assert!(e.is_integrity_failure(), "{what}: {e:?}");
    }
    mem.set_key_record_bytes("a", rec);
    mem.set_payload_bytes("a", payload);
    assert_eq!(vault.get("a").unwrap().1, b"payload");
    // What is not the stored bytes' fault is not.
    assert!(!vault.get("missing").unwrap_err().is_integrity_failure());
    assert!(!vault.get("../x").unwrap_err().is_integrity_failure());
}
