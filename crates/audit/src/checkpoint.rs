//! Signed checkpoints: a tree size, its root hash and a time, signed with
//! Ed25519 by the log's key. Anyone holding the public key can check them.

use std::fmt;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::codec::Reader;
use crate::error::{Error, Result};
use crate::merkle::Hash;
use crate::record::Timestamp;

/// Version byte of the checkpoint encoding.
pub const CHECKPOINT_VERSION: u8 = 1;
/// Length of an encoded checkpoint.
pub const CHECKPOINT_LEN: usize = 1 + 32 + 8 + 32 + 8 + 64;
const SIGNING_CONTEXT: &[u8] = b"carevox-audit checkpoint\0";

/// The public half of a log's signing key: all a verifier needs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey([u8; 32]);

// Public key: printed in full, as hex, which is how it is published.
impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", self.to_hex())
    }
}

impl VerifyingKey {
    /// From the 32 raw bytes of an Ed25519 public key.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        VerifyingKey(bytes)
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<Self> {
        let s = s.trim();
        let bytes = hex_decode(s).ok_or(Error::Key("expected 64 hex digits"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Key("expected 32 bytes"))?;
        Ok(VerifyingKey(arr))
    }

    /// As 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex_encode(&self.0)
    }

    /// The log id: SHA-256 of the public key (as in RFC 9162).
    pub fn log_id(&self) -> Hash {
        let mut out = [0u8; 32];
        out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &self.0).as_ref());
        out
    }
}

/// Lower-case hex of bytes (RFC 4648 base16).
pub fn hex_encode(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// Bytes from hex (either case), or `None` if it is not an even number of
/// hex digits.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    data_encoding::HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok()
}

/// The log's Ed25519 signing key.
pub struct Signer {
    pair: Ed25519KeyPair,
}

// Written by hand: ring's key pair is not `Zeroize` (ring wipes it itself),
// so it cannot sit in a `Secret`; this prints the public half only.
impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("public", &self.verifying_key())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Signer {
    /// Generates a new key; returns its PKCS#8 document (store it safely:
    /// it is the secret) from the caller's random source.
    pub fn generate_pkcs8(rng: &dyn ring::rand::SecureRandom) -> Result<Zeroizing<Vec<u8>>> {
        let doc =
            Ed25519KeyPair::generate_pkcs8(rng).map_err(|_| Error::Key("key generation failed"))?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// From a PKCS#8 v2 document as produced by [`Signer::generate_pkcs8`].
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|_| Error::Key("not an Ed25519 PKCS#8 key"))?;
        Ok(Signer { pair })
    }

    /// From a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| Error::Key("bad Ed25519 seed"))?;
        Ok(Signer { pair })
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        VerifyingKey(out)
    }

    /// Signs a checkpoint for `tree_size` leaves with root `root` at `time`.
    pub fn sign(&self, tree_size: u64, root: Hash, time: Timestamp) -> Checkpoint {
        let log_id = self.verifying_key().log_id();
        let msg = signed_message(&log_id, tree_size, &root, time);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(self.pair.sign(&msg).as_ref());
        Checkpoint {
            log_id,
            tree_size,
            root,
            time,
            signature,
        }
    }
}

fn signed_message(log_id: &Hash, size: u64, root: &Hash, time: Timestamp) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + 81);
    m.extend_from_slice(SIGNING_CONTEXT);
    m.push(CHECKPOINT_VERSION);
    m.extend_from_slice(log_id);
    m.extend_from_slice(&size.to_be_bytes());
    m.extend_from_slice(root);
    m.extend_from_slice(&time.0.to_be_bytes());
    m
}

/// A signed tree head: "the log had `tree_size` records with this root at
/// this time".
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// SHA-256 of the signing public key.
    #[serde(with = "hex32")]
    pub log_id: Hash,
    /// The number of records covered.
    pub tree_size: u64,
    /// The RFC 9162 root hash over those records.
    #[serde(with = "hex32")]
    pub root: Hash,
    /// When it was made (the caller's clock).
    pub time: Timestamp,
    /// Ed25519 signature over the fields above.
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// Checks the signature (and that the log id names this key).
    pub fn verify(&self, key: &VerifyingKey) -> Result<()> {
        if self.log_id != key.log_id() {
            return Err(Error::BadSignature);
        }
        let msg = signed_message(&self.log_id, self.tree_size, &self.root, self.time);
        UnparsedPublicKey::new(&ED25519, key.as_bytes())
            .verify(&msg, &self.signature)
            .map_err(|_| Error::BadSignature)
    }

    /// Appends the fixed-size encoding (version, log id, size, root, time, signature).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(CHECKPOINT_VERSION);
        out.extend_from_slice(&self.log_id);
        out.extend_from_slice(&self.tree_size.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.time.0.to_be_bytes());
        out.extend_from_slice(&self.signature);
    }

    /// The encoding as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(CHECKPOINT_LEN);
        self.encode(&mut v);
        v
    }

    /// Decodes the fixed-size encoding (untrusted input: typed errors).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "checkpoint");
        if r.u8()? != CHECKPOINT_VERSION {
            return Err(Error::malformed(
                "checkpoint",
                0,
                "unknown checkpoint version",
            ));
        }
        let log_id = r.array()?;
        let tree_size = r.u64()?;
        let root = r.array()?;
        let time = Timestamp(r.u64()?);
        let signature = r.array()?;
        r.finish()?;
        Ok(Checkpoint {
            log_id,
            tree_size,
            root,
            time,
            signature,
        })
    }

    /// Checks that `newer` extends this checkpoint, given a consistency
    /// proof between their sizes (RFC 9162 2.1.4.2). Signatures are not
    /// checked here: call [`Checkpoint::verify`] on both.
    pub fn verify_extended_by(&self, newer: &Checkpoint, proof: &[Hash]) -> Result<()> {
        crate::merkle::verify_consistency(
            self.tree_size,
            newer.tree_size,
            &self.root,
            &newer.root,
            proof,
        )
    }
}

macro_rules! hex_serde {
    ($name:ident, $n:literal) => {
        mod $name {
            use serde::{Deserialize, Deserializer, Serializer};

            pub(super) fn serialize<S: Serializer>(v: &[u8; $n], s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&super::hex_encode(v))
            }

            pub(super) fn deserialize<'de, D: Deserializer<'de>>(
                d: D,
            ) -> Result<[u8; $n], D::Error> {
                let s = String::deserialize(d)?;
                super::hex_decode(&s)
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| serde::de::Error::custom(concat!("expected ", $n, " hex bytes")))
            }
        }
    };
}
hex_serde!(hex32, 32);
hex_serde!(hex64, 64);

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_encode_decode() {
        let signer = Signer::from_seed(&[7; 32]).unwrap();
        let key = signer.verifying_key();
        let cp = signer.sign(42, [9; 32], Timestamp(1000));
        cp.verify(&key).unwrap();
        let bytes = cp.to_bytes();
        assert_eq!(bytes.len(), CHECKPOINT_LEN);
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), cp);
        let mut bad = cp.clone();
        bad.tree_size = 43;
        assert!(bad.verify(&key).is_err());
        let other = Signer::from_seed(&[8; 32]).unwrap().verifying_key();
        assert!(cp.verify(&other).is_err());
        assert_eq!(VerifyingKey::from_hex(&key.to_hex()).unwrap(), key);
        assert!(Checkpoint::decode(&bytes[..100]).is_err());
        let json = serde_json::to_string(&cp).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), cp);
        assert!(format!("{signer:?}").contains("<redacted>"));
    }
}
