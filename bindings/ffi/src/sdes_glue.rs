//! SDES a=crypto line -> SRTP master key.
//!
//! GLUE THAT BELONGS TO THE FACADE. The facade crate `carevox`
//! (crates/carevox) owns the glue between the library crates, including this
//! conversion (and the rule that negotiation never offers what SRTP cannot
//! key). Until it lands this module holds the minimal conversion, and only
//! this module: when the facade exists, replace the body of
//! [`master_key_from_crypto_line`] with a call to it and delete the rest.

use carevox_sip::sdp::crypto::Crypto;
use carevox_srtp::MasterKey;
use zeroize::Zeroizing;

use crate::error::SrtpError;

/// The SRTP master key (suite, key and salt) of one SDES a=crypto value
/// (`1 AES_CM_128_HMAC_SHA1_80 inline:...`, with or without `a=crypto:`).
pub(crate) fn master_key_from_crypto_line(line: &str) -> Result<MasterKey, SrtpError> {
    let value = line.trim();
    let value = value.strip_prefix("a=crypto:").unwrap_or(value);
    let crypto = Crypto::parse(value).map_err(|e| SrtpError::InvalidKey(e.to_string()))?;
    let keying = crypto
        .srtp_keying()
        .map_err(|e| SrtpError::InvalidKey(e.to_string()))?;
    let mut material = Zeroizing::new(Vec::with_capacity(
        keying.master_key.expose().len() + keying.master_salt.expose().len(),
    ));
    material.extend_from_slice(keying.master_key.expose());
    material.extend_from_slice(keying.master_salt.expose());
    MasterKey::from_sdes_name(keying.suite, &material)
        .map_err(|e| SrtpError::InvalidKey(e.to_string()))
}
