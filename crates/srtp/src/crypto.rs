//! Per-key cipher state: expanded AES keys, the precomputed HMAC key and the
//! session salt, kept for the life of the master key so that no packet pays
//! for a key schedule.

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher, StreamCipherCoreWrapper};
use hmac::{Hmac, Mac};
use ring::aead;
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::key::{MasterKey, SessionKeys};
use crate::{Error, PacketKind, Suite};

// Kept inline: one per master key and packet kind, and the hot path reads it
// without an indirection.
#[allow(clippy::large_enum_variant)]
enum Cipher {
    Cm128(aes::Aes128Enc),
    Cm192(aes::Aes192Enc),
    Cm256(aes::Aes256Enc),
    Gcm(aead::LessSafeKey),
}

/// A tag or AEAD check failed; the caller turns it into a typed error.
#[derive(Debug)]
pub(crate) struct Unauthentic;

/// The session keys of one packet kind under one master key, ready to use.
pub(crate) struct Crypto {
    cipher: Cipher,
    /// HMAC-SHA1 keyed once, with its inner and outer pad blocks already
    /// hashed: each packet clones this state.
    mac: Option<Hmac<Sha1>>,
    /// The session salt as a big-endian number, already shifted into IV
    /// position: `salt << 16` for AES-CM, the 96-bit salt for GCM.
    salt: u128,
    /// Length of the authentication tag of this packet kind (HMAC suites:
    /// the truncated HMAC-SHA1 tag; GCM: 16).
    tag_len: usize,
}

impl Drop for Crypto {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

fn salt_number(salt: &[u8]) -> u128 {
    salt.iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
}

impl Crypto {
    /// Derives the session keys of `kind` from `master` and expands them.
    pub(crate) fn new(master: &MasterKey, kind: PacketKind) -> Result<Crypto, Error> {
        let keys = SessionKeys::derive(master, kind)?;
        let suite = master.suite();
        let bad = Error::InvalidKeyLength {
            what: "session key",
            len: suite.key_len(),
            expected: suite.key_len(),
        };
        Crypto::from_session_keys(
            suite,
            kind,
            keys.enc.get(..suite.key_len()).ok_or(bad.clone())?,
            &keys.auth[..],
            keys.salt.get(..suite.salt_len()).ok_or(bad.clone())?,
        )
        .ok_or(bad)
    }

    /// Expands session keys given directly (the RFC 7714 examples start here).
    pub(crate) fn from_session_keys(
        suite: Suite,
        kind: PacketKind,
        enc: &[u8],
        auth: &[u8],
        salt: &[u8],
    ) -> Option<Crypto> {
        let cipher = match suite {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => {
                Cipher::Cm128(aes::Aes128Enc::new_from_slice(enc).ok()?)
            }
            Suite::AesCm192HmacSha1_80 | Suite::AesCm192HmacSha1_32 => {
                Cipher::Cm192(aes::Aes192Enc::new_from_slice(enc).ok()?)
            }
            Suite::AesCm256HmacSha1_80 | Suite::AesCm256HmacSha1_32 => {
                Cipher::Cm256(aes::Aes256Enc::new_from_slice(enc).ok()?)
            }
            Suite::AeadAes128Gcm => Cipher::Gcm(aead::LessSafeKey::new(
                aead::UnboundKey::new(&aead::AES_128_GCM, enc).ok()?,
            )),
            Suite::AeadAes256Gcm => Cipher::Gcm(aead::LessSafeKey::new(
                aead::UnboundKey::new(&aead::AES_256_GCM, enc).ok()?,
            )),
        };
        let mac = if suite.is_aead() {
            None
        } else {
            Some(<Hmac<Sha1> as Mac>::new_from_slice(auth).ok()?)
        };
        let salt = if suite.is_aead() {
            salt_number(salt)
        } else {
            salt_number(salt) << 16
        };
        let tag_len = match kind {
            PacketKind::Rtp => suite.rtp_tag_len(),
            PacketKind::Rtcp => suite.rtcp_tag_len(),
        };
        Some(Crypto {
            cipher,
            mac,
            salt,
            tag_len,
        })
    }

    /// Encrypts or decrypts `data` in AES counter mode with the IV of
    /// RFC 3711 4.1.1 (salt * 2^16 XOR SSRC * 2^64 XOR index * 2^16).
    #[inline]
    pub(crate) fn apply_ctr(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let iv = (self.salt ^ (u128::from(ssrc) << 64) ^ (u128::from(index) << 16)).to_be_bytes();
        match &self.cipher {
            Cipher::Cm128(aes) => {
                let core = ctr::CtrCore::<&aes::Aes128Enc, ctr::flavors::Ctr128BE>::inner_iv_init(
                    aes,
                    &iv.into(),
                );
                StreamCipherCoreWrapper::from_core(core).apply_keystream(data);
            }
            Cipher::Cm192(aes) => {
                let core = ctr::CtrCore::<&aes::Aes192Enc, ctr::flavors::Ctr128BE>::inner_iv_init(
                    aes,
                    &iv.into(),
                );
                StreamCipherCoreWrapper::from_core(core).apply_keystream(data);
            }
            Cipher::Cm256(aes) => {
                let core = ctr::CtrCore::<&aes::Aes256Enc, ctr::flavors::Ctr128BE>::inner_iv_init(
                    aes,
                    &iv.into(),
                );
                StreamCipherCoreWrapper::from_core(core).apply_keystream(data);
            }
            Cipher::Gcm(_) => {}
        }
    }

    /// HMAC-SHA1 over `a || b`, the full 20-byte tag.
    #[inline]
    pub(crate) fn mac(&self, a: &[u8], b: &[u8]) -> Option<[u8; 20]> {
        let mut mac = self.mac.as_ref()?.clone();
        mac.update(a);
        mac.update(b);
        Some(mac.finalize().into_bytes().into())
    }

    /// Checks the truncated HMAC-SHA1 `tag` of `a || b` in constant time.
    /// A tag of any length other than this packet kind's tag length (an
    /// empty one included) is refused before any comparison.
    #[inline]
    pub(crate) fn verify_mac(&self, a: &[u8], b: &[u8], tag: &[u8]) -> Result<(), Unauthentic> {
        if tag.len() != self.tag_len || tag.is_empty() {
            return Err(Unauthentic);
        }
        let full = self.mac(a, b).ok_or(Unauthentic)?;
        let computed = full.get(..self.tag_len).ok_or(Unauthentic)?;
        if bool::from(computed.ct_eq(tag)) {
            Ok(())
        } else {
            Err(Unauthentic)
        }
    }

    /// The RFC 7714 8.1 / 9.1 nonce: `00 00 || SSRC || index(48)` XOR salt,
    /// where the SRTP index is ROC || SEQ and the SRTCP index is 31 bits.
    #[inline]
    fn gcm_nonce(&self, ssrc: u32, index: u64) -> aead::Nonce {
        let n = (self.salt ^ (u128::from(ssrc) << 48) ^ u128::from(index)).to_be_bytes();
        let mut nonce = [0u8; 12];
        // `n` is 16 bytes; its last 12 are the 96-bit nonce.
        for (d, s) in nonce.iter_mut().zip(n.iter().skip(4)) {
            *d = *s;
        }
        aead::Nonce::assume_unique_for_key(nonce)
    }

    /// AES-GCM seal of `data` in place; returns the 16-byte tag.
    #[inline]
    pub(crate) fn seal(
        &self,
        ssrc: u32,
        index: u64,
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<aead::Tag, Unauthentic> {
        match &self.cipher {
            Cipher::Gcm(key) => key
                .seal_in_place_separate_tag(self.gcm_nonce(ssrc, index), aead::Aad::from(aad), data)
                .map_err(|_| Unauthentic),
            _ => Err(Unauthentic),
        }
    }

    /// AES-GCM open in place of `data` (ciphertext then 16-byte tag); the
    /// plaintext is the first `data.len() - 16` bytes afterwards.
    #[inline]
    pub(crate) fn open(
        &self,
        ssrc: u32,
        index: u64,
        aad: &[u8],
        data: &mut [u8],
    ) -> Result<(), Unauthentic> {
        match &self.cipher {
            Cipher::Gcm(key) => key
                .open_in_place(self.gcm_nonce(ssrc, index), aead::Aad::from(aad), data)
                .map(|_| ())
                .map_err(|_| Unauthentic),
            _ => Err(Unauthentic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(name: &str) -> Vec<(String, String)> {
        let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(':'))
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect()
    }

    fn hex(s: &str) -> Vec<u8> {
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .unwrap()
    }

    fn get(v: &[(String, String)], k: &str) -> Vec<u8> {
        hex(&v
            .iter()
            .find(|(n, _)| n == k)
            .unwrap_or_else(|| panic!("no {k}"))
            .1)
    }

    /// RFC 3711 B.2: the AES-CM keystream for session key and salt, SSRC 0,
    /// index 0, at block counters 0..2 and 0xfeff..0xff01.
    #[test]
    fn rfc3711_b2_keystream() {
        let v = vector("rfc3711_b2_aes_cm_keystream.txt");
        let crypto = Crypto {
            cipher: Cipher::Cm128(aes::Aes128Enc::new_from_slice(&get(&v, "session_key")).unwrap()),
            mac: None,
            salt: salt_number(&get(&v, "session_salt")) << 16,
            tag_len: 10,
        };
        assert_eq!(
            crypto.salt.to_be_bytes().to_vec(),
            get(&v, "iv"),
            "IV of SSRC 0, index 0"
        );
        let mut stream = vec![0u8; 0xff02 * 16];
        crypto.apply_ctr(0, 0, &mut stream);
        let mut checked = 0;
        for (k, want) in &v {
            if let Some(block) = k.strip_prefix("keystream_") {
                let b = usize::from_str_radix(block, 16).unwrap();
                assert_eq!(stream[b * 16..b * 16 + 16], hex(want)[..], "block {block}");
                checked += 1;
            }
        }
        assert_eq!(checked, 6);
    }

    /// RFC 3711 B.3 and RFC 6188 7: the key derivation (AES-128, AES-192,
    /// AES-256).
    #[test]
    fn rfc3711_b3_and_rfc6188_7_key_derivation() {
        for (file, suite) in [
            ("rfc3711_b3_key_derivation.txt", Suite::AesCm128HmacSha1_80),
            (
                "rfc6188_7_aes192_key_derivation.txt",
                Suite::AesCm192HmacSha1_80,
            ),
            (
                "rfc6188_7_2_aes256_key_derivation.txt",
                Suite::AesCm256HmacSha1_80,
            ),
        ] {
            let v = vector(file);
            let master =
                MasterKey::new(suite, &get(&v, "master_key"), &get(&v, "master_salt")).unwrap();
            let keys = SessionKeys::derive(&master, PacketKind::Rtp).unwrap();
            assert_eq!(
                keys.enc[..suite.key_len()],
                get(&v, "cipher_key")[..],
                "{file}"
            );
            assert_eq!(keys.salt[..], get(&v, "cipher_salt")[..], "{file}");
            assert_eq!(keys.auth[..], get(&v, "auth_key")[..], "{file}");
            if v.iter().any(|(k, _)| k == "auth_keystream") {
                let want = get(&v, "auth_keystream");
                let mut out = vec![0u8; want.len()];
                crate::key::derive(&master, crate::Label::RtpAuthentication, &mut out).unwrap();
                assert_eq!(out, want);
            }
        }
    }

    /// RFC 7714 16.1/16.2 nonce for the documented example.
    #[test]
    fn rfc7714_nonce() {
        let v = vector("rfc7714_16_1_srtp_aead_aes_128_gcm.txt");
        let crypto = Crypto {
            cipher: Cipher::Cm128(aes::Aes128Enc::new(&Default::default())),
            mac: None,
            salt: salt_number(&get(&v, "session_salt")),
            tag_len: 16,
        };
        let nonce = crypto.gcm_nonce(0x5501a0b2, 0xf17b);
        assert_eq!(nonce.as_ref().to_vec(), get(&v, "iv"));
        let v = vector("rfc7714_17_1_srtcp_aead_aes_128_gcm.txt");
        let nonce = crypto.gcm_nonce(0x4d617273, 0x5d4);
        assert_eq!(nonce.as_ref().to_vec(), get(&v, "iv"));
    }

    /// The tag check refuses a tag of the wrong length itself, the empty
    /// tag included, whatever its caller checked before.
    #[test]
    fn verify_mac_refuses_wrong_tag_lengths() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm192HmacSha1_32] {
            let master = MasterKey::new(suite, &vec![3; suite.key_len()], &[4; 14]).unwrap();
            for kind in [PacketKind::Rtp, PacketKind::Rtcp] {
                let crypto = Crypto::new(&master, kind).unwrap();
                let full = crypto.mac(b"packet", b"roc!").unwrap();
                let tag_len = crypto.tag_len;
                assert!(
                    crypto
                        .verify_mac(b"packet", b"roc!", &full[..tag_len])
                        .is_ok()
                );
                for len in (0..=20).filter(|l| *l != tag_len) {
                    assert!(
                        crypto.verify_mac(b"packet", b"roc!", &full[..len]).is_err(),
                        "{suite:?} {kind:?}: a {len}-byte tag was accepted"
                    );
                }
            }
        }
    }
}
