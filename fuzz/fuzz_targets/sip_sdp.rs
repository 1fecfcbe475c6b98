//! Fuzzes the SDP parser and writer of carevox-sip.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| carevox_fuzz::sip::sip_sdp(data));
