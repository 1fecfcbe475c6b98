//! The protection profiles (crypto suites).

use crate::Error;

/// An SRTP protection profile (SDES crypto suite or DTLS-SRTP profile).
///
/// Only suites that both encrypt and authenticate exist here: there is no
/// NULL cipher and no NULL authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// AES-128 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 3711).
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, HMAC-SHA1 with a 32-bit SRTP tag (RFC 3711,
    /// RFC 4568); SRTCP keeps the 80-bit tag.
    AesCm128HmacSha1_32,
    /// AES-256 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 6188).
    AesCm256HmacSha1_80,
    /// AES-256 counter mode, HMAC-SHA1 with a 32-bit SRTP tag (RFC 6188);
    /// SRTCP keeps the 80-bit tag.
    AesCm256HmacSha1_32,
    /// AES-128 GCM with a 128-bit tag (RFC 7714).
    AeadAes128Gcm,
    /// AES-256 GCM with a 128-bit tag (RFC 7714).
    AeadAes256Gcm,
    /// AES-192 counter mode, HMAC-SHA1 with an 80-bit tag (RFC 6188).
    AesCm192HmacSha1_80,
    /// AES-192 counter mode, HMAC-SHA1 with a 32-bit SRTP tag (RFC 6188);
    /// SRTCP keeps the 80-bit tag.
    AesCm192HmacSha1_32,
}

impl Suite {
    /// Every suite, in the order of the enum (the AES-192 suites, added
    /// last, come last so that existing positions keep their meaning).
    pub const ALL: [Suite; 8] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AesCm256HmacSha1_80,
        Suite::AesCm256HmacSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
        Suite::AesCm192HmacSha1_80,
        Suite::AesCm192HmacSha1_32,
    ];

    /// The suite from its SDES name (RFC 4568, RFC 6188, RFC 7714), e.g.
    /// `"AES_CM_128_HMAC_SHA1_80"`.
    pub fn from_sdes_name(name: &str) -> Result<Suite, Error> {
        Ok(match name {
            "AES_CM_128_HMAC_SHA1_80" => Suite::AesCm128HmacSha1_80,
            "AES_CM_128_HMAC_SHA1_32" => Suite::AesCm128HmacSha1_32,
            "AES_192_CM_HMAC_SHA1_80" => Suite::AesCm192HmacSha1_80,
            "AES_192_CM_HMAC_SHA1_32" => Suite::AesCm192HmacSha1_32,
            "AES_256_CM_HMAC_SHA1_80" => Suite::AesCm256HmacSha1_80,
            "AES_256_CM_HMAC_SHA1_32" => Suite::AesCm256HmacSha1_32,
            "AEAD_AES_128_GCM" => Suite::AeadAes128Gcm,
            "AEAD_AES_256_GCM" => Suite::AeadAes256Gcm,
            _ => return Err(Error::UnknownSuite),
        })
    }

    /// The SDES name of the suite.
    pub fn sdes_name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AesCm192HmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            Suite::AesCm192HmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            Suite::AesCm256HmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::AesCm256HmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The suite from its DTLS-SRTP protection profile number (RFC 5764,
    /// RFC 7714). AES-192 and AES-256 counter mode have no registered
    /// profile.
    pub fn from_dtls_profile(id: u16) -> Result<Suite, Error> {
        Ok(match id {
            0x0001 => Suite::AesCm128HmacSha1_80,
            0x0002 => Suite::AesCm128HmacSha1_32,
            0x0007 => Suite::AeadAes128Gcm,
            0x0008 => Suite::AeadAes256Gcm,
            _ => return Err(Error::UnknownSuite),
        })
    }

    /// Length of the master key in bytes (16, 24 or 32).
    pub fn key_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 | Suite::AeadAes128Gcm => 16,
            Suite::AesCm192HmacSha1_80 | Suite::AesCm192HmacSha1_32 => 24,
            Suite::AesCm256HmacSha1_80 | Suite::AesCm256HmacSha1_32 | Suite::AeadAes256Gcm => 32,
        }
    }

    /// Length of the master salt in bytes (14 for counter mode, 12 for GCM).
    pub fn salt_len(self) -> usize {
        if self.is_aead() { 12 } else { 14 }
    }

    /// Whether the suite is an AEAD (GCM) suite.
    pub fn is_aead(self) -> bool {
        matches!(self, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
    }

    /// Length of the SRTP authentication tag in bytes.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80
            | Suite::AesCm192HmacSha1_80
            | Suite::AesCm256HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32
            | Suite::AesCm192HmacSha1_32
            | Suite::AesCm256HmacSha1_32 => 4,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 16,
        }
    }

    /// Length of the SRTCP authentication tag in bytes (the `_32` suites use
    /// an 80-bit tag for SRTCP).
    pub fn rtcp_tag_len(self) -> usize {
        if self.is_aead() { 16 } else { 10 }
    }
}

impl core::fmt::Display for Suite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.sdes_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for suite in Suite::ALL {
            assert_eq!(Suite::from_sdes_name(suite.sdes_name()), Ok(suite));
        }
        assert_eq!(
            Suite::from_sdes_name("NULL_HMAC_SHA1_80"),
            Err(Error::UnknownSuite)
        );
        assert_eq!(Suite::from_dtls_profile(7), Ok(Suite::AeadAes128Gcm));
        assert_eq!(Suite::from_dtls_profile(5), Err(Error::UnknownSuite));
    }
}
