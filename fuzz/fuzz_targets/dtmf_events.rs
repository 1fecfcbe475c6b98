//! Fuzzes the RFC 4733 telephone-event receiver with arbitrary packets.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| carevox_fuzz::media::dtmf_events(data));
