//! Fuzz entry points for carevox-sip.

use carevox_sip::auth::{AuthParams, Challenge, Credentials};
use carevox_sip::sdp::SessionDescription;
use carevox_sip::sdp::crypto::Crypto;

/// SDP: any input parses or fails with a typed error; whatever parses
/// re-serializes into text that parses back to the same description, and
/// every `a=crypto` value survives its own round trip.
pub fn sip_sdp(data: &[u8]) {
    let Ok(sdp) = SessionDescription::parse_bytes(data) else {
        return;
    };
    let text = sdp.to_string();
    let again = SessionDescription::parse(&text);
    assert_eq!(
        again.as_ref(),
        Ok(&sdp),
        "SDP round trip changed the description"
    );
    for media in &sdp.media {
        for c in media.cryptos() {
            assert_eq!(Crypto::parse(&c.to_string()).as_ref(), Ok(c));
            let _ = c.srtp_keying();
        }
    }
}

/// Digest header values: the auth-param list, challenges and credentials
/// parse or fail with a typed error; what parses round-trips.
pub fn sip_auth_params(data: &[u8]) {
    let _ = AuthParams::parse_bytes(data);
    if let Ok(c) = Challenge::parse_bytes(data) {
        assert_eq!(Challenge::parse(&c.to_string()), Ok(c));
    }
    if let Ok(c) = Credentials::parse_bytes(data) {
        assert_eq!(Credentials::parse(&c.to_string()), Ok(c));
    }
}
