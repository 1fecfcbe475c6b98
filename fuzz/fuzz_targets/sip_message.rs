//! Fuzz target `sip_message`: hands each input to `carevox_fuzz::sip::sip_message`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| carevox_fuzz::sip::sip_message(data));
