//! Compiles the C shim against Sofia-SIP's headers (Debian
//! `libsofia-sip-ua-dev`) and links the library.

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    cc::Build::new()
        .file("csrc/shim.c")
        .include("/usr/include/sofia-sip-1.12")
        .opt_level(2)
        .warnings(true)
        .compile("carevox_sofia_shim");
    println!("cargo:rustc-link-lib=sofia-sip-ua");
}
