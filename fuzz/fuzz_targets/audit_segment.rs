//! Fuzzes audit segment files: header, frames, entries, records.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| carevox_fuzz::audit::audit_segment(data));
