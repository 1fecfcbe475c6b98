//! Interoperability: hashes made by the Argon2 reference implementation and
//! by OpenSSL's PBKDF2 verify here, and hashing with a fixed salt gives the
//! very same PHC strings (`tests/vectors/phc-reference-hashes.txt`).

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::num::NonZeroU32;

use carevox_authz::password::{
    Argon2Params, HashAlgorithm, Password, PasswordError, PasswordHasher,
};

const VECTORS: &str = include_str!("vectors/phc-reference-hashes.txt");

fn vectors() -> Vec<(String, String)> {
    VECTORS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (password, phc) = l.split_once('|').unwrap();
            (password.to_owned(), phc.to_owned())
        })
        .collect()
}

#[test]
fn reference_hashes_verify() {
    let v = vectors();
    assert_eq!(v.len(), 8);
    let hasher = PasswordHasher::default();
    for (password, phc) in &v {
        let verified = hasher
            .verify(&Password::new(password.as_str()).unwrap(), phc)
            .unwrap_or_else(|e| panic!("{phc}: {e}"));
        // Their parameters are not the secure default: upgrade on login.
        assert!(verified.needs_rehash, "{phc}");
        let mut wrong = password.clone();
        wrong.push('!');
        assert_eq!(
            hasher.verify(&Password::new(wrong).unwrap(), phc),
            Err(PasswordError::Mismatch),
            "{phc}"
        );
    }
}

#[test]
#[allow(deprecated)] // ring's only fixed generator lives in its test module
fn fixed_salt_gives_the_reference_strings() {
    let rng = ring::test::rand::FixedByteRandom { byte: b'A' };
    let password = Password::new("correct horse battery staple").unwrap();
    let v = vectors();
    let argon2 = PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }))
    .unwrap();
    assert_eq!(argon2.hash(&password, &rng).unwrap(), v[6].1);
    let pbkdf2 = PasswordHasher::dangerous_low_cost(HashAlgorithm::Pbkdf2Sha256 {
        iterations: NonZeroU32::new(1000).unwrap(),
    })
    .unwrap();
    assert_eq!(pbkdf2.hash(&password, &rng).unwrap(), v[7].1);
}
