//! Fuzz target `sip_uri`: hands each input to `carevox_fuzz::sip::sip_uri`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| carevox_fuzz::sip::sip_uri(data));
