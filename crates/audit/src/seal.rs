//! Forward-secure sealing of group commits.
//!
//! Records after the newest signed checkpoint are protected by the chain
//! hash only, which anyone who can write the files can recompute. Sealing
//! closes that window: every group commit is authenticated, before any of
//! its writers is told its record is durable, by an HMAC-SHA-256 tag under
//! a key that evolves after each use (epoch `e + 1`'s key is HKDF-SHA-256
//! of epoch `e`'s), the old key being zeroized in memory and its file
//! replaced durably. A tamperer who takes the machine at time `t` finds
//! only the key of the current epoch and cannot derive earlier ones, so
//! cannot forge or alter any sealed group written before `t`. The verifier
//! holds the initial seed and derives each epoch's key itself. This is the
//! scheme of systemd journal's Forward Secure Sealing, with a hash chain
//! of keys in place of its seekable sequential key generator.
//!
//! Files: `seal.key` holds the current epoch and key (magic `CVXAUKEY`,
//! version, epoch, key, CRC-32); `seals.cvs` holds one frame per sealed
//! group (magic `CVXAUSLS`, version, then frames of epoch, tree size,
//! chain hash after the group, tag).

use carevox_redact::Secret;
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

use crate::codec::Reader;
use crate::error::{Error, Result};
use crate::merkle::Hash;

/// File name of the current sealing key.
pub(crate) const KEY_FILE: &str = "seal.key";
/// File name of the seals.
pub(crate) const SEALS_FILE: &str = "seals.cvs";
const KEY_MAGIC: &[u8; 8] = b"CVXAUKEY";
const SEALS_MAGIC: &[u8; 8] = b"CVXAUSLS";
const VERSION: u16 = 1;
/// Length of the seals file header.
pub(crate) const SEALS_HEADER_LEN: usize = 10;
/// Length of an encoded seal.
pub(crate) const SEAL_LEN: usize = 8 + 8 + 32 + 32;
const TAG_CONTEXT: &[u8] = b"carevox-audit seal\0";
const RATCHET_SALT: &[u8] = b"carevox-audit seal ratchet";

/// The secret seed of a log's sealing keys: epoch 0's key. Give it to the
/// log once, when the log is created, and keep it away from the machine
/// that writes the log: the verifier needs it, the writer must not keep
/// it. It is held in a [`Secret`]: `Debug` prints `SealSeed(<redacted>)`
/// and the bytes are zeroized on drop.
#[derive(Clone, Debug)]
pub struct SealSeed(Secret<[u8; 32]>);

impl SealSeed {
    /// From 32 secret bytes (from the caller's random source).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SealSeed(Secret::new(bytes))
    }

    pub(crate) fn key(&self) -> SealKey {
        SealKey {
            epoch: 0,
            key: self.0.clone(),
        }
    }
}

/// The key of one epoch: `Debug` prints the epoch and `<redacted>`.
#[derive(Debug)]
pub(crate) struct SealKey {
    pub(crate) epoch: u64,
    key: Secret<[u8; 32]>,
}

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl SealKey {
    /// The next epoch's key; this one should then be dropped (zeroized).
    pub(crate) fn next(&self) -> Result<SealKey> {
        let epoch = self.epoch.checked_add(1).ok_or(Error::SequenceOverflow)?;
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, RATCHET_SALT);
        let prk = salt.extract(self.key.expose());
        let info = epoch.to_be_bytes();
        let info = [&info[..]];
        let okm = prk
            .expand(&info, Len32)
            .map_err(|_| Error::Key("sealing key derivation failed"))?;
        let mut key = Secret::new([0u8; 32]);
        okm.fill(key.expose_mut())
            .map_err(|_| Error::Key("sealing key derivation failed"))?;
        Ok(SealKey { epoch, key })
    }

    /// The key of `epoch` (>= this one's), derived forward.
    pub(crate) fn forward_to(&self, epoch: u64) -> Result<SealKey> {
        let mut k = SealKey {
            epoch: self.epoch,
            key: self.key.clone(),
        };
        while k.epoch < epoch {
            k = k.next()?;
        }
        Ok(k)
    }

    fn message(epoch: u64, size: u64, head: &Hash) -> Vec<u8> {
        let mut m = Vec::with_capacity(TAG_CONTEXT.len() + 48);
        m.extend_from_slice(TAG_CONTEXT);
        m.extend_from_slice(&epoch.to_be_bytes());
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(head);
        m
    }

    /// Seals the log at `size` records whose last chain hash is `head`.
    pub(crate) fn seal(&self, size: u64, head: Hash) -> Seal {
        let k = hmac::Key::new(hmac::HMAC_SHA256, self.key.expose());
        let tag = hmac::sign(&k, &Self::message(self.epoch, size, &head));
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Seal {
            epoch: self.epoch,
            size,
            head,
            tag: out,
        }
    }

    /// Checks a seal made in this key's epoch (constant-time comparison).
    pub(crate) fn check(&self, seal: &Seal) -> bool {
        let k = hmac::Key::new(hmac::HMAC_SHA256, self.key.expose());
        seal.epoch == self.epoch
            && hmac::verify(
                &k,
                &Self::message(seal.epoch, seal.size, &seal.head),
                &seal.tag,
            )
            .is_ok()
    }

    /// The key file's bytes.
    pub(crate) fn to_file(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(54));
        out.extend_from_slice(KEY_MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(self.key.expose());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// From the key file's bytes.
    pub(crate) fn from_file(bytes: &[u8]) -> Result<SealKey> {
        let mut r = Reader::new(bytes, "sealing key file");
        if &r.array::<8>()? != KEY_MAGIC || r.u16()? != VERSION {
            return Err(Error::malformed(
                "sealing key file",
                0,
                "bad magic or version",
            ));
        }
        let epoch = r.u64()?;
        let key = Secret::new(r.array::<32>()?);
        let covered = r.pos();
        let crc = r.u32()?;
        r.finish()?;
        if bytes.get(..covered).map(crc32fast::hash) != Some(crc) {
            return Err(Error::malformed(
                "sealing key file",
                covered,
                "checksum mismatch",
            ));
        }
        Ok(SealKey { epoch, key })
    }
}

/// One sealed group commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seal {
    pub(crate) epoch: u64,
    pub(crate) size: u64,
    pub(crate) head: Hash,
    pub(crate) tag: [u8; 32],
}

impl Seal {
    pub(crate) fn to_bytes(self) -> [u8; SEAL_LEN] {
        let mut out = [0u8; SEAL_LEN];
        let parts: [&[u8]; 4] = [
            &self.epoch.to_be_bytes(),
            &self.size.to_be_bytes(),
            &self.head,
            &self.tag,
        ];
        let mut at = 0;
        for p in parts {
            if let Some(dst) = out.get_mut(at..at + p.len()) {
                dst.copy_from_slice(p);
            }
            at += p.len();
        }
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Seal> {
        let mut r = Reader::new(bytes, "seal");
        let seal = Seal {
            epoch: r.u64()?,
            size: r.u64()?,
            head: r.array()?,
            tag: r.array()?,
        };
        r.finish()?;
        Ok(seal)
    }
}

/// The seals file header.
pub(crate) fn seals_header() -> [u8; SEALS_HEADER_LEN] {
    let mut h = [0u8; SEALS_HEADER_LEN];
    let (m, v) = h.split_at_mut(8);
    m.copy_from_slice(SEALS_MAGIC);
    v.copy_from_slice(&VERSION.to_be_bytes());
    h
}

/// The seals of a seals file, with their offsets; an error names the
/// first damaged byte.
pub(crate) fn parse_seals(bytes: &[u8]) -> Result<Vec<(Seal, u64)>, (u64, &'static str)> {
    match bytes.split_first_chunk::<SEALS_HEADER_LEN>() {
        Some((h, _)) if *h == seals_header() => {}
        _ => return Err((0, "bad seals file header")),
    }
    let mut off = SEALS_HEADER_LEN;
    let mut out = Vec::new();
    while off < bytes.len() {
        let rest = bytes.get(off..).unwrap_or_default();
        let (body, n) = crate::segment::read_frame(rest).map_err(|e| (off as u64, e.as_str()))?;
        let seal = Seal::decode(body).map_err(|_| (off as u64, "seal does not decode"))?;
        out.push((seal, off as u64));
        off += n;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_ratchet_forward_and_seals_check_only_in_their_epoch() {
        let seed = SealSeed::from_bytes([4; 32]);
        let k0 = seed.key();
        let k1 = k0.next().unwrap();
        let k5 = k0.forward_to(5).unwrap();
        assert_eq!(k1.forward_to(5).unwrap().to_file(), k5.to_file());
        let s = k5.seal(10, [1; 32]);
        assert!(k5.check(&s));
        assert!(!k1.check(&s));
        let mut bad = s;
        bad.size = 11;
        assert!(!k5.check(&bad));
        assert_eq!(Seal::decode(&s.to_bytes()).unwrap(), s);
        let f = k5.to_file();
        assert_eq!(SealKey::from_file(&f).unwrap().to_file(), f);
        assert!(format!("{seed:?}").contains("redacted"));
        // The ratcheted keys print their epoch only, never their bytes.
        for key in [&k0, &k5] {
            let file = key.to_file();
            // magic (8), version (2), epoch (8), then the key.
            let key_bytes = &file[18..50];
            for text in [format!("{key:?}"), format!("{key:#?}")] {
                assert!(text.contains("<redacted>"), "{text}");
                let hex = data_encoding::HEXLOWER.encode(&key_bytes[..8]);
                assert!(!text.to_lowercase().contains(&hex), "{text}");
                let dec = key_bytes[..4].iter().map(u8::to_string).collect::<Vec<_>>();
                assert!(!text.contains(&dec.join(", ")), "{text}");
            }
        }
    }
}
