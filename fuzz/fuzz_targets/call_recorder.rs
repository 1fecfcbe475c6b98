//! Fuzzes the call recorder with arbitrary packets, speakers and arrival times.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| carevox_fuzz::media::call_recorder(data));
