//! The UniFFI generator, built from this workspace so that its version always
//! matches the `uniffi` that `carevox-ffi` is compiled with.

fn main() {
    uniffi::uniffi_bindgen_main()
}
