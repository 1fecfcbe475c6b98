//! Compiles the C shim against Sofia-SIP's headers (Debian
//! `libsofia-sip-ua-dev`) and links the library, both found through
//! pkg-config (`sofia-sip-ua.pc`).

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    let library = match pkg_config::Config::new()
        .atleast_version("1.12")
        .probe("sofia-sip-ua")
    {
        Ok(library) => library,
        Err(e) => {
            println!(
                "cargo::error=Sofia-SIP was not found by pkg-config ({e}); \
                 install it (Debian: libsofia-sip-ua-dev) or leave this peer out of the build"
            );
            return;
        }
    };
    let mut build = cc::Build::new();
    build.file("csrc/shim.c").opt_level(2).warnings(true);
    for dir in &library.include_paths {
        build.include(dir);
    }
    build.compile("carevox_sofia_shim");
}
