//! Compiles the C shim over <srtp2/srtp.h> and links the system libsrtp2,
//! both found through pkg-config (`libsrtp2.pc`).

fn main() {
    println!("cargo:rerun-if-changed=src/shim.c");
    let library = match pkg_config::Config::new()
        .atleast_version("2.0")
        .probe("libsrtp2")
    {
        Ok(library) => library,
        Err(e) => {
            println!(
                "cargo::error=libsrtp2 was not found by pkg-config ({e}); \
                 install it (Debian: libsrtp2-dev) or leave this peer out of the build"
            );
            return;
        }
    };
    let mut build = cc::Build::new();
    build.file("src/shim.c").warnings(true);
    for dir in &library.include_paths {
        build.include(dir);
    }
    build.compile("carevox_libsrtp_shim");
}
