//! Master keys, the RFC 3711 key derivation, and keying from SDES and
//! DTLS-SRTP.

use aes::cipher::{KeyIvInit, StreamCipher};
use carevox_redact::Secret;
use zeroize::{Zeroize, Zeroizing};

use crate::{Error, Suite};

/// Longest MKI a master key may carry, in bytes.
pub const MAX_MKI_LEN: usize = 128;

/// A master key and master salt for one suite, with an optional MKI (master
/// key identifier) that selects it on the wire and an optional lifetime.
///
/// The key and salt are held in [`Secret`]s: zeroized on drop and printed
/// as `<redacted>` by the derived `Debug`, which shows the suite, the MKI
/// (sent in the clear in every packet) and the lifetime.
#[derive(Debug, Clone)]
pub struct MasterKey {
    suite: Suite,
    key: Secret<Vec<u8>>,
    salt: Secret<Vec<u8>>,
    mki: Vec<u8>,
    lifetime: Option<u64>,
}

fn check_len(what: &'static str, got: &[u8], expected: usize) -> Result<(), Error> {
    if got.len() == expected {
        Ok(())
    } else {
        Err(Error::InvalidKeyLength {
            what,
            len: got.len(),
            expected,
        })
    }
}

impl MasterKey {
    /// A master key from its key and salt, whose lengths must be
    /// [`Suite::key_len`] and [`Suite::salt_len`].
    pub fn new(suite: Suite, key: &[u8], salt: &[u8]) -> Result<MasterKey, Error> {
        check_len("master key", key, suite.key_len())?;
        check_len("master salt", salt, suite.salt_len())?;
        Ok(MasterKey {
            suite,
            key: Secret::new(key.to_vec()),
            salt: Secret::new(salt.to_vec()),
            mki: Vec::new(),
            lifetime: None,
        })
    }

    /// A master key from SDES (RFC 4568) keying material: the base64-decoded
    /// `inline:` value, the key followed by the salt.
    pub fn from_sdes(suite: Suite, key_and_salt: &[u8]) -> Result<MasterKey, Error> {
        let bad = Error::InvalidKeyLength {
            what: "SDES key||salt",
            len: key_and_salt.len(),
            expected: suite.key_len() + suite.salt_len(),
        };
        if key_and_salt.len() != suite.key_len() + suite.salt_len() {
            return Err(bad);
        }
        let (key, salt) = key_and_salt.split_at_checked(suite.key_len()).ok_or(bad)?;
        MasterKey::new(suite, key, salt)
    }

    /// A master key from the SDES suite name and key||salt bytes, e.g. from
    /// `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:...`.
    pub fn from_sdes_name(suite_name: &str, key_and_salt: &[u8]) -> Result<MasterKey, Error> {
        MasterKey::from_sdes(Suite::from_sdes_name(suite_name)?, key_and_salt)
    }

    /// The two master keys from DTLS-SRTP exporter output (RFC 5764 4.2:
    /// label `EXTRACTOR-dtls_srtp`, `2 * (key_len + salt_len)` bytes laid out
    /// as client key, server key, client salt, server salt).
    ///
    /// Returns `(local, remote)`: the key this endpoint protects with and the
    /// key it unprotects with, according to its DTLS role.
    pub fn pair_from_dtls_exporter(
        suite: Suite,
        exporter_output: &[u8],
        role: DtlsRole,
    ) -> Result<(MasterKey, MasterKey), Error> {
        let (kl, sl) = (suite.key_len(), suite.salt_len());
        check_len("DTLS-SRTP exporter output", exporter_output, 2 * (kl + sl))?;
        let bad = Error::InvalidKeyLength {
            what: "DTLS-SRTP exporter output",
            len: exporter_output.len(),
            expected: 2 * (kl + sl),
        };
        let (client_key, rest) = exporter_output.split_at_checked(kl).ok_or(bad.clone())?;
        let (server_key, rest) = rest.split_at_checked(kl).ok_or(bad.clone())?;
        let (client_salt, server_salt) = rest.split_at_checked(sl).ok_or(bad)?;
        let client = MasterKey::new(suite, client_key, client_salt)?;
        let server = MasterKey::new(suite, server_key, server_salt)?;
        Ok(match role {
            DtlsRole::Client => (client, server),
            DtlsRole::Server => (server, client),
        })
    }

    /// The same key, identified on the wire by `mki` (1 to [`MAX_MKI_LEN`]
    /// bytes). All keys of one context carry MKIs of the same length, or none.
    pub fn with_mki(mut self, mki: &[u8]) -> Result<MasterKey, Error> {
        if mki.is_empty() || mki.len() > MAX_MKI_LEN {
            return Err(Error::InvalidKeyLength {
                what: "MKI",
                len: mki.len(),
                expected: MAX_MKI_LEN,
            });
        }
        self.mki = mki.to_vec();
        Ok(self)
    }

    /// The same key, to be used for at most `packets` SRTP packets and at
    /// most `packets` SRTCP packets (the SDES key lifetime of RFC 4568
    /// 6.1), or the context's limits where those are lower. `packets` must
    /// be 1 to 2^48; the key is refused with [`Error::KeyExpired`] once the
    /// lifetime is used up, and [`crate::Event::KeyLimitNear`] warns at 15/16.
    pub fn with_lifetime(mut self, packets: u64) -> Result<MasterKey, Error> {
        if packets == 0 || packets > crate::SRTP_KEY_LIMIT {
            return Err(Error::InvalidConfig {
                reason: "a key lifetime must be 1 to 2^48 packets",
            });
        }
        self.lifetime = Some(packets);
        Ok(self)
    }

    /// The suite this key is for.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The MKI, empty when the key has none.
    pub fn mki(&self) -> &[u8] {
        &self.mki
    }

    /// The lifetime set with [`MasterKey::with_lifetime`], if any.
    pub fn lifetime(&self) -> Option<u64> {
        self.lifetime
    }

    pub(crate) fn key(&self) -> &[u8] {
        self.key.expose()
    }

    pub(crate) fn salt(&self) -> &[u8] {
        self.salt.expose()
    }
}

/// The DTLS role of this endpoint, which decides which half of the exporter
/// output it sends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsRole {
    /// The DTLS client: sends with the client write key.
    Client,
    /// The DTLS server: sends with the server write key.
    Server,
}

/// A key derivation label of RFC 3711 4.3.1 (and RFC 7714 for GCM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Label {
    /// SRTP encryption key (0x00).
    RtpEncryption,
    /// SRTP authentication key (0x01).
    RtpAuthentication,
    /// SRTP salt (0x02).
    RtpSalt,
    /// SRTCP encryption key (0x03).
    RtcpEncryption,
    /// SRTCP authentication key (0x04).
    RtcpAuthentication,
    /// SRTCP salt (0x05).
    RtcpSalt,
}

impl Label {
    fn byte(self) -> u8 {
        match self {
            Label::RtpEncryption => 0,
            Label::RtpAuthentication => 1,
            Label::RtpSalt => 2,
            Label::RtcpEncryption => 3,
            Label::RtcpAuthentication => 4,
            Label::RtcpSalt => 5,
        }
    }
}

/// The RFC 3711 4.3 key derivation with a key derivation rate of 0: fills
/// `out` with the AES-CM PRF keystream for `label` under the master key
/// (AES-128, AES-192 or AES-256 by the suite, RFC 6188; the same PRF for
/// GCM suites, RFC 7714 11).
///
/// Fails only if the key cannot key its cipher, which a [`MasterKey`]
/// built through its constructors never does; `out` is then left zeroed.
pub fn derive(master: &MasterKey, label: Label, out: &mut [u8]) -> Result<(), Error> {
    let mut iv = Zeroizing::new([0u8; 16]);
    for (d, s) in iv.iter_mut().zip(master.salt()) {
        *d = *s;
    }
    if let Some(b) = iv.get_mut(7) {
        *b ^= label.byte();
    }
    out.zeroize();
    let key = master.key();
    let bad = Error::InvalidKeyLength {
        what: "master key",
        len: key.len(),
        expected: master.suite().key_len(),
    };
    match key.len() {
        16 => ctr::Ctr128BE::<aes::Aes128>::new_from_slices(key, &*iv)
            .map_err(|_| bad)?
            .apply_keystream(out),
        24 => ctr::Ctr128BE::<aes::Aes192>::new_from_slices(key, &*iv)
            .map_err(|_| bad)?
            .apply_keystream(out),
        32 => ctr::Ctr128BE::<aes::Aes256>::new_from_slices(key, &*iv)
            .map_err(|_| bad)?
            .apply_keystream(out),
        _ => return Err(bad),
    }
    Ok(())
}

/// Session keys derived for one direction of one packet kind.
pub(crate) struct SessionKeys {
    pub(crate) enc: Zeroizing<[u8; 32]>,
    pub(crate) auth: Zeroizing<[u8; 20]>,
    pub(crate) salt: Zeroizing<[u8; 14]>,
}

impl SessionKeys {
    pub(crate) fn derive(
        master: &MasterKey,
        kind: crate::PacketKind,
    ) -> Result<SessionKeys, Error> {
        let (le, la, ls) = match kind {
            crate::PacketKind::Rtp => (
                Label::RtpEncryption,
                Label::RtpAuthentication,
                Label::RtpSalt,
            ),
            crate::PacketKind::Rtcp => (
                Label::RtcpEncryption,
                Label::RtcpAuthentication,
                Label::RtcpSalt,
            ),
        };
        let suite = master.suite();
        let mut keys = SessionKeys {
            enc: Zeroizing::new([0; 32]),
            auth: Zeroizing::new([0; 20]),
            salt: Zeroizing::new([0; 14]),
        };
        let too_long = |what, expected| Error::InvalidKeyLength {
            what,
            len: expected,
            expected,
        };
        let enc = keys
            .enc
            .get_mut(..suite.key_len())
            .ok_or(too_long("session key", suite.key_len()))?;
        derive(master, le, enc)?;
        if !suite.is_aead() {
            derive(master, la, &mut keys.auth[..])?;
        }
        let salt = keys
            .salt
            .get_mut(..suite.salt_len())
            .ok_or(too_long("session salt", suite.salt_len()))?;
        derive(master, ls, salt)?;
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let k = MasterKey::new(Suite::AesCm128HmacSha1_80, &[0x41; 16], &[0x42; 14]).unwrap();
        for s in [format!("{k:?}"), format!("{k:#?}")] {
            assert!(s.contains("<redacted>"));
            assert!(
                !s.contains("65") && !s.contains("66") && !s.contains("41"),
                "{s}"
            );
        }
    }

    #[test]
    fn lifetime_is_range_checked() {
        let k = || MasterKey::new(Suite::AesCm128HmacSha1_80, &[1; 16], &[2; 14]).unwrap();
        assert!(matches!(
            k().with_lifetime(0),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(k().with_lifetime((1 << 48) + 1).is_err());
        assert_eq!(
            k().with_lifetime(1 << 48).unwrap().lifetime(),
            Some(1 << 48)
        );
        assert_eq!(k().lifetime(), None);
    }

    #[test]
    fn aes192_keys_have_24_bytes() {
        assert!(MasterKey::from_sdes(Suite::AesCm192HmacSha1_80, &[0; 38]).is_ok());
        assert!(MasterKey::from_sdes(Suite::AesCm192HmacSha1_32, &[0; 30]).is_err());
        assert!(MasterKey::from_sdes(Suite::AesCm192HmacSha1_32, &[0; 46]).is_err());
    }

    #[test]
    fn lengths_are_checked() {
        assert!(matches!(
            MasterKey::new(Suite::AeadAes128Gcm, &[0; 16], &[0; 14]),
            Err(Error::InvalidKeyLength {
                what: "master salt",
                len: 14,
                expected: 12
            })
        ));
        assert!(MasterKey::from_sdes(Suite::AesCm256HmacSha1_80, &[0; 46]).is_ok());
        assert!(MasterKey::from_sdes(Suite::AesCm256HmacSha1_80, &[0; 45]).is_err());
        assert!(
            MasterKey::new(Suite::AeadAes128Gcm, &[0; 16], &[0; 12])
                .unwrap()
                .with_mki(&[])
                .is_err()
        );
    }

    #[test]
    fn dtls_layout_and_roles() {
        let suite = Suite::AesCm128HmacSha1_80;
        let mut m = Vec::new();
        m.extend_from_slice(&[1; 16]); // client key
        m.extend_from_slice(&[2; 16]); // server key
        m.extend_from_slice(&[3; 14]); // client salt
        m.extend_from_slice(&[4; 14]); // server salt
        let (local, remote) =
            MasterKey::pair_from_dtls_exporter(suite, &m, DtlsRole::Client).unwrap();
        assert_eq!(local.key(), &[1; 16]);
        assert_eq!(local.salt(), &[3; 14]);
        assert_eq!(remote.key(), &[2; 16]);
        assert_eq!(remote.salt(), &[4; 14]);
        let (local, _) = MasterKey::pair_from_dtls_exporter(suite, &m, DtlsRole::Server).unwrap();
        assert_eq!(local.key(), &[2; 16]);
        assert!(MasterKey::pair_from_dtls_exporter(suite, &m[1..], DtlsRole::Server).is_err());
    }
}
