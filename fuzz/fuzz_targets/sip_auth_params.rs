//! Fuzzes the digest auth-param, challenge and credentials parsers of carevox-sip.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| carevox_fuzz::sip::sip_auth_params(data));
