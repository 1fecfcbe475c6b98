//! SDES to SRTP: an `a=crypto` line (RFC 4568) turned into carevox-srtp
//! master keys and a context configuration, every parameter honoured or
//! refused with a typed reason.
//!
//! | parameter | becomes |
//! |---|---|
//! | suite | [`Suite`] (every suite carevox-srtp keys; others: [`SdesError::UnsupportedSuite`]) |
//! | `inline:` key\|\|salt | [`MasterKey`] |
//! | lifetime | the key's packet limit ([`MasterKey::with_lifetime`]), SRTP and SRTCP |
//! | MKI value and length | the key's MKI bytes, big-endian, of that length |
//! | several keys | several master keys in one context, told apart by MKI; the first is active |
//! | `KDR=n` | refused ([`SdesError::KeyDerivationRate`]): carevox-srtp derives once (RFC 3711 KDR 0) |
//! | `UNENCRYPTED_SRTP`, `UNAUTHENTICATED_SRTP` | refused ([`SdesError::Insecure`]): there is no NULL cipher or authentication |
//! | `UNENCRYPTED_SRTCP` | refused, unless [`SdesOptions::dangerous_allow_unencrypted_srtcp`]: then SRTCP is sent with E=0 |
//! | `FEC_ORDER`, `FEC_KEY` | refused ([`SdesError::Fec`]): carevox does no forward error correction |
//! | `WSH=n` | the replay window, 64 to 1024 packets; larger: [`SdesError::ReplayWindow`] |
//! | any other session parameter | refused ([`SdesError::UnknownSessionParam`]) |
//!
//! With SDES each side sends with the key of its own line: key the context
//! that protects what you send with your line, and the one that unprotects
//! what the peer sends with the peer's line.
//!
//! ```
//! use carevox::sdes::{SdesOptions, srtp_context};
//! use carevox::sip::sdp::crypto::Crypto;
//!
//! // RFC 4568's example: a lifetime of 2^20 packets and MKI 1 of 4 bytes.
//! let line = Crypto::parse(
//!     "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
//! )?;
//! let mut sender = srtp_context(&line, &SdesOptions::new())?;
//! sender.add_outbound_stream(0x1234_5678)?;
//! let rtp = [0x80, 0, 0, 1, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78, 0xd5, 0xd5];
//! let mut wire = Vec::new();
//! sender.protect_rtp_vec(&rtp, &mut wire)?;
//! // Tag, then the 4-byte MKI (RFC 3711: MKI before the tag).
//! assert_eq!(wire.len(), rtp.len() + 4 + 10);
//! assert_eq!(wire[rtp.len()..rtp.len() + 4], [0, 0, 0, 1]);
//!
//! let kdr = Crypto::parse("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR KDR=10")?;
//! assert!(srtp_context(&kdr, &SdesOptions::new()).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use carevox_sip::sdp::crypto::{Crypto, CryptoSuite, SessionParam};
use carevox_srtp::{Config, Context, MAX_MKI_LEN, MAX_REPLAY_WINDOW, MasterKey, Suite};

/// Why an `a=crypto` line cannot key carevox-srtp. No variant carries key
/// material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdesError {
    /// carevox-srtp has no such suite.
    #[error("crypto suite {suite} is not one carevox-srtp can key")]
    UnsupportedSuite {
        /// The suite name as offered.
        suite: String,
    },
    /// The line has no key parameter.
    #[error("the a=crypto line has no key parameter")]
    NoKey,
    /// A key||salt of the wrong length for the suite.
    #[error("key parameter {index}: {actual} bytes of key and salt, {suite} needs {expected}")]
    KeyLength {
        /// 0-based index of the key parameter.
        index: usize,
        /// The suite.
        suite: &'static str,
        /// Bytes the suite needs.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A lifetime outside 1 to 2^48 packets.
    #[error("key parameter {index}: a lifetime of {packets} packets is outside 1 to 2^48")]
    Lifetime {
        /// 0-based index of the key parameter.
        index: usize,
        /// The lifetime asked for.
        packets: u64,
    },
    /// The MKIs cannot tell the keys apart on the wire.
    #[error("key parameter {index}: {reason}")]
    Mki {
        /// 0-based index of the key parameter.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// `KDR=n`: re-deriving session keys every 2^n packets, which
    /// carevox-srtp does not do.
    #[error(
        "KDR={exponent}: carevox-srtp derives session keys once (RFC 3711 key derivation rate 0), not every 2^{exponent} packets"
    )]
    KeyDerivationRate {
        /// The exponent n of `KDR=n`.
        exponent: u8,
    },
    /// A session parameter that switches protection off.
    #[error("session parameter {param} switches protection off and is refused")]
    Insecure {
        /// `UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP` or `UNAUTHENTICATED_SRTP`.
        param: &'static str,
    },
    /// A forward error correction parameter.
    #[error("session parameter {param}: carevox does no forward error correction")]
    Fec {
        /// `FEC_ORDER` or `FEC_KEY`.
        param: &'static str,
    },
    /// A session parameter carevox does not know (its text is not echoed:
    /// an extension may carry key material).
    #[error("session parameter {index} is not one carevox knows")]
    UnknownSessionParam {
        /// 0-based index among the session parameters.
        index: usize,
    },
    /// The same session parameter twice.
    #[error("session parameter {param} is given more than once")]
    Repeated {
        /// `WSH` or `UNENCRYPTED_SRTCP`.
        param: &'static str,
    },
    /// `WSH=n` beyond the replay window carevox-srtp keeps.
    #[error("WSH={size}: carevox-srtp keeps a replay window of 64 to 1024 packets")]
    ReplayWindow {
        /// The window asked for.
        size: u32,
    },
    /// carevox-srtp refused the keys or configuration.
    #[error("carevox-srtp refused the keys: {0}")]
    Srtp(#[from] carevox_srtp::Error),
}

/// How to treat what a line may ask for; the defaults are the safe ones.
#[derive(Debug, Clone, Default)]
pub struct SdesOptions {
    config: Config,
    allow_unencrypted_srtcp: bool,
}

impl SdesOptions {
    /// The defaults: carevox-srtp's default [`Config`], and
    /// `UNENCRYPTED_SRTCP` refused.
    pub fn new() -> SdesOptions {
        SdesOptions::default()
    }

    /// Starts from `config` (replay window, SSRC policy, key limits); the
    /// line's `WSH` replaces its replay window.
    pub fn with_config(mut self, config: Config) -> SdesOptions {
        self.config = config;
        self
    }

    /// Honours `UNENCRYPTED_SRTCP` (SRTCP authenticated but sent in the
    /// clear) instead of refusing the line. RTCP may identify people: open
    /// this door only on purpose.
    pub fn dangerous_allow_unencrypted_srtcp(mut self) -> SdesOptions {
        self.allow_unencrypted_srtcp = true;
        self
    }
}

/// What an `a=crypto` line keys: the suite, the master keys (the first is
/// the active one) and the context configuration.
#[derive(Debug, Clone)]
pub struct SrtpKeying {
    suite: Suite,
    keys: Vec<MasterKey>,
    config: Config,
}

impl SrtpKeying {
    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The master keys in the line's order, each with its MKI and lifetime.
    pub fn keys(&self) -> &[MasterKey] {
        &self.keys
    }

    /// The context configuration (replay window, SRTCP encryption).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A context holding every key, the first one active. Switch keys with
    /// [`Context::set_active_key`] when [`carevox_srtp::Event::KeyLimitNear`]
    /// says the active key's lifetime runs out.
    pub fn into_context(self) -> Result<Context, SdesError> {
        let mut keys = self.keys.into_iter();
        let first = keys.next().ok_or(SdesError::NoKey)?;
        let mut ctx = Context::new(first, self.config)?;
        for k in keys {
            ctx.add_key(k)?;
        }
        Ok(ctx)
    }
}

/// The carevox-srtp suite of an SDES suite, if carevox-srtp keys it.
pub fn srtp_suite(suite: &CryptoSuite) -> Result<Suite, SdesError> {
    Suite::from_sdes_name(suite.name()).map_err(|_| SdesError::UnsupportedSuite {
        suite: suite.name().to_owned(),
    })
}

/// Every SDES suite carevox-sip knows that carevox-srtp keys, strongest
/// first (the order of [`CryptoSuite::KNOWN`]).
pub fn keyable_suites() -> Vec<CryptoSuite> {
    CryptoSuite::KNOWN
        .into_iter()
        .filter(|s| srtp_suite(s).is_ok())
        .collect()
}

/// The master keys and configuration an `a=crypto` line asks for, or why
/// they cannot be had. See the [module documentation](self).
pub fn srtp_keying(crypto: &Crypto, options: &SdesOptions) -> Result<SrtpKeying, SdesError> {
    let suite = srtp_suite(&crypto.suite)?;
    let config = session_config(crypto, options)?;
    if crypto.keys.is_empty() {
        return Err(SdesError::NoKey);
    }
    let several = crypto.keys.len() > 1;
    let mut keys: Vec<MasterKey> = Vec::with_capacity(crypto.keys.len());
    for (index, param) in crypto.keys.iter().enumerate() {
        let material = param.key_salt.expose();
        let mut key = MasterKey::from_sdes(suite, material).map_err(|_| SdesError::KeyLength {
            index,
            suite: suite.sdes_name(),
            expected: suite.key_len() + suite.salt_len(),
            actual: material.len(),
        })?;
        match param.mki {
            Some(mki) => {
                if usize::from(mki.length) > MAX_MKI_LEN || mki.length == 0 {
                    return Err(SdesError::Mki {
                        index,
                        reason: "an MKI is 1 to 128 bytes long",
                    });
                }
                let bytes = mki.to_bytes();
                if keys.first().is_some_and(|k| k.mki().len() != bytes.len()) {
                    return Err(SdesError::Mki {
                        index,
                        reason: "every key of a line needs an MKI of the same length",
                    });
                }
                if keys.iter().any(|k| k.mki() == bytes.as_slice()) {
                    return Err(SdesError::Mki {
                        index,
                        reason: "the MKI is that of an earlier key",
                    });
                }
                key = key.with_mki(&bytes)?;
            }
            None if several => {
                return Err(SdesError::Mki {
                    index,
                    reason: "several keys need an MKI each",
                });
            }
            None => {}
        }
        if let Some(lifetime) = param.lifetime {
            let packets = lifetime.packets();
            key = key
                .with_lifetime(packets)
                .map_err(|_| SdesError::Lifetime { index, packets })?;
        }
        keys.push(key);
    }
    Ok(SrtpKeying {
        suite,
        keys,
        config,
    })
}

/// The context an `a=crypto` line keys: [`srtp_keying`] then
/// [`SrtpKeying::into_context`].
pub fn srtp_context(crypto: &Crypto, options: &SdesOptions) -> Result<Context, SdesError> {
    srtp_keying(crypto, options)?.into_context()
}

/// The configuration the session parameters ask for.
fn session_config(crypto: &Crypto, options: &SdesOptions) -> Result<Config, SdesError> {
    let mut config = options.config.clone();
    let (mut window, mut clear_rtcp) = (false, false);
    for (index, param) in crypto.session_params.iter().enumerate() {
        match param {
            SessionParam::Kdr(exponent) => {
                return Err(SdesError::KeyDerivationRate {
                    exponent: *exponent,
                });
            }
            SessionParam::UnencryptedSrtp => {
                return Err(SdesError::Insecure {
                    param: "UNENCRYPTED_SRTP",
                });
            }
            SessionParam::UnauthenticatedSrtp => {
                return Err(SdesError::Insecure {
                    param: "UNAUTHENTICATED_SRTP",
                });
            }
            SessionParam::UnencryptedSrtcp => {
                if !options.allow_unencrypted_srtcp {
                    return Err(SdesError::Insecure {
                        param: "UNENCRYPTED_SRTCP",
                    });
                }
                if clear_rtcp {
                    return Err(SdesError::Repeated {
                        param: "UNENCRYPTED_SRTCP",
                    });
                }
                clear_rtcp = true;
                config = config.dangerous_unencrypted_srtcp();
            }
            SessionParam::Wsh(size) => {
                if window {
                    return Err(SdesError::Repeated { param: "WSH" });
                }
                window = true;
                let packets = u16::try_from(*size)
                    .ok()
                    .filter(|p| *p <= MAX_REPLAY_WINDOW)
                    .ok_or(SdesError::ReplayWindow { size: *size })?;
                config = config
                    .with_replay_window(packets)
                    .map_err(|_| SdesError::ReplayWindow { size: *size })?;
            }
            SessionParam::Other(text) => {
                let text: &str = text.expose();
                return Err(if text.starts_with("FEC_ORDER=") {
                    SdesError::Fec { param: "FEC_ORDER" }
                } else if text.starts_with("FEC_KEY=") {
                    SdesError::Fec { param: "FEC_KEY" }
                } else {
                    SdesError::UnknownSessionParam { index }
                });
            }
            _ => return Err(SdesError::UnknownSessionParam { index }),
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_suite_but_none_other_is_keyable() {
        assert_eq!(keyable_suites().len(), CryptoSuite::KNOWN.len());
        assert!(matches!(
            srtp_suite(&CryptoSuite::Other("F8_128_HMAC_SHA1_80".into())),
            Err(SdesError::UnsupportedSuite { .. })
        ));
    }
}
