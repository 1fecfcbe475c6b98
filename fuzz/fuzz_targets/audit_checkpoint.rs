//! Fuzzes audit checkpoint files and single checkpoints.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| carevox_fuzz::audit::audit_checkpoint(data));
