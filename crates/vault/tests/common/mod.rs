//! What the crash tests share: a temporary directory, a random number, and
//! running one ignored test of this binary as a child process that is
//! killed with SIGKILL.

use std::ffi::OsStr;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use data_encoding::HEXLOWER;
use ring::rand::{SecureRandom, SystemRandom};

/// A fresh directory under the system's temporary directory, removed when
/// dropped (also when a test fails).
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    /// A new empty directory whose name holds `tag`, the process id and a
    /// random part.
    pub(crate) fn new(tag: &str) -> TempDir {
        let r = random_u64(&SystemRandom::new());
        let p = std::env::temp_dir().join(format!(
            "carevox-vault-{tag}-{}-{}",
            std::process::id(),
            HEXLOWER.encode(&r.to_be_bytes())
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A random `u64` from `rng`.
pub(crate) fn random_u64(rng: &SystemRandom) -> u64 {
    let mut b = [0u8; 8];
    rng.fill(&mut b).unwrap();
    u64::from_be_bytes(b)
}

/// Runs the ignored test `name` of this test binary with `env` set, kills
/// it (SIGKILL on Unix) after `delay`, and returns what it printed.
pub(crate) fn run_and_kill(name: &str, env: &[(&str, &OsStr)], delay: Duration) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    stdout
}
