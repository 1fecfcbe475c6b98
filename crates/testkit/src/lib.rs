//! Test support shared by carevox's live-peer tests. See the README.
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// Test support: a failed setup ends the test with a message, and a real
// clock is what a live peer runs against.
#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::disallowed_methods
)]

pub mod peer;
pub mod pki;
pub mod sipp;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// The program `name` on the PATH; fails the test, naming the Debian
/// `package` and `.ci/install-deps`, when it is not installed.
pub fn find_binary(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: run `bash .ci/install-deps` from the workspace root, \
                 which installs the Debian package {package} listed in .ci/apt-packages"
            )
        })
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Seconds since the Unix epoch, by the wall clock.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
