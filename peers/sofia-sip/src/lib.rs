//! Sofia-SIP's SIP message parser, through a small C shim, for benchmarks
//! beside carevox-sip. Each call parses one complete message with
//! `msg_make` (Sofia parses every header field while it parses the message)
//! and frees it.

use std::os::raw::{c_char, c_int, c_ulong};

unsafe extern "C" {
    fn carevox_sofia_parse(data: *const c_char, len: usize) -> c_int;
    fn carevox_sofia_parse_decode(data: *const c_char, len: usize) -> c_ulong;
}

/// Parses `msg`; true when Sofia-SIP accepted it.
pub fn parse(msg: &[u8]) -> bool {
    // SAFETY: the pointer and length describe the live slice `msg`; the shim
    // only reads `len` bytes from it (msg_make copies them) and keeps no
    // pointer after returning.
    unsafe { carevox_sofia_parse(msg.as_ptr().cast(), msg.len()) == 0 }
}

/// Parses `msg` and reads Via, From, To, Call-ID, CSeq, Contact,
/// Max-Forwards and Content-Length; returns a checksum of what was read, or
/// `None` if Sofia-SIP refused the message.
pub fn parse_and_decode(msg: &[u8]) -> Option<u64> {
    // SAFETY: as in `parse`: a valid pointer and length, read only.
    let sum = unsafe { carevox_sofia_parse_decode(msg.as_ptr().cast(), msg.len()) };
    #[allow(clippy::useless_conversion)] // c_ulong is 32 bits wide on some targets
    (sum != 0).then_some(u64::from(sum))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_a_request() {
        let msg = b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        assert!(super::parse(msg));
        assert!(super::parse_and_decode(msg).is_some());
        assert!(!super::parse(b"garbage"));
    }
}
