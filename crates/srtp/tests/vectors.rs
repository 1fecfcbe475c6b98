//! Every vector file under `tests/vectors/`: the RFC 3711 B.2/B.3, RFC 6188
//! 7.2 and RFC 7714 files are checked by the unit tests of the modules they
//! exercise (they need session keys, which the public API never takes); the
//! whole-pipeline files (libsrtp's `srtp_driver` vectors) run here through the
//! public API, from master key to packet, both ways.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use carevox_srtp::{Config, Context, Error, MasterKey, Suite};
use common::{field, hex, vector};

fn files() -> Vec<String> {
    let dir = format!("{}/tests/vectors", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Each file names the RFC section or source it comes from and has a type
/// that one of the tests handles.
#[test]
fn every_vector_file_is_known() {
    let known = [
        "aes_cm_keystream",
        "kdf_aes_cm_128",
        "kdf_aes_cm_192",
        "kdf_aes_cm_256",
        "aead_srtp",
        "aead_srtcp",
        "pipeline",
    ];
    let files = files();
    assert_eq!(files.len(), 11);
    for f in files {
        let v = vector(&f);
        let ty = field(&v, "type").unwrap_or_else(|| panic!("{f}: no type"));
        assert!(known.contains(&ty), "{f}: unknown type {ty}");
        assert!(
            f.starts_with("rfc") || f.starts_with("libsrtp_driver"),
            "{f}"
        );
    }
}

#[test]
fn pipeline_vectors_protect_and_unprotect_bit_exactly() {
    let mut ran = 0;
    for f in files() {
        let v = vector(&f);
        if field(&v, "type") != Some("pipeline") {
            continue;
        }
        let suite = Suite::from_sdes_name(field(&v, "profile").unwrap()).unwrap();
        let key = hex(field(&v, "master_key").unwrap());
        let salt = hex(field(&v, "master_salt").unwrap());
        let master = || MasterKey::new(suite, &key, &salt).unwrap();

        let plain = hex(field(&v, "rtp_plaintext").unwrap());
        let protected = hex(field(&v, "srtp_protected").unwrap());
        let ssrc = u32::from_be_bytes(plain[8..12].try_into().unwrap());
        let mut tx = Context::new(master(), Config::new()).unwrap();
        tx.add_outbound_stream(ssrc).unwrap();
        let mut out = Vec::new();
        tx.protect_rtp_vec(&plain, &mut out).unwrap();
        assert_eq!(hex_of(&out), hex_of(&protected), "{f}: SRTP");
        let mut rx = Context::new(master(), Config::new()).unwrap();
        rx.unprotect_rtp_vec(&protected, &mut out).unwrap();
        assert_eq!(out, plain, "{f}: SRTP unprotect");
        assert!(matches!(
            rx.unprotect_rtp_vec(&protected, &mut out),
            Err(Error::Replay { .. })
        ));

        if let (Some(p), Some(c)) = (field(&v, "rtcp_plaintext"), field(&v, "srtcp_protected")) {
            let (plain, protected) = (hex(p), hex(c));
            tx.protect_rtcp_vec(&plain, &mut out).unwrap();
            assert_eq!(hex_of(&out), hex_of(&protected), "{f}: SRTCP");
            rx.unprotect_rtcp_vec(&protected, &mut out).unwrap();
            assert_eq!(out, plain, "{f}: SRTCP unprotect");
            assert!(matches!(
                rx.unprotect_rtcp_vec(&protected, &mut out),
                Err(Error::Replay { .. })
            ));
        }
        ran += 1;
    }
    assert_eq!(ran, 3);
}

fn hex_of(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}
