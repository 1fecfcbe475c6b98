//! Fuzzes SRTP (SRTCP) unprotect with arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| carevox_fuzz::srtp::srtp_unprotect_rtcp(data));
