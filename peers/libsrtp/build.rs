//! Compiles the C shim over <srtp2/srtp.h> and links the system libsrtp2.

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    cc::Build::new()
        .file("src/shim.c")
        .warnings(true)
        .compile("carevox_libsrtp_shim");
    println!("cargo:rustc-link-lib=srtp2");
}
