//! libFuzzer target: vault object header, key record and segment parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| carevox_fuzz::vault::vault_object(data));
