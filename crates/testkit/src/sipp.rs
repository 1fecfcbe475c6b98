//! SIPp (Debian `sip-tester`) bound to 127.0.0.1.

use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::{NamedTempFile, TempDir};

/// SIPp's transport mode for `-t`: UDP with one socket, or TCP with one
/// connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SippTransport {
    /// `-t u1`.
    Udp,
    /// `-t t1`.
    Tcp,
}

impl SippTransport {
    /// The `-t` argument.
    pub fn arg(self) -> &'static str {
        match self {
            SippTransport::Udp => "u1",
            SippTransport::Tcp => "t1",
        }
    }
}

/// A running SIPp, killed and reaped however the test ends.
#[derive(Debug)]
pub struct Sipp {
    child: Child,
    log_dir: TempDir,
}

impl Sipp {
    /// Starts `sipp` with `args`, bound to 127.0.0.1 only (signalling and
    /// media), without standard input, giving up on its own after 60 s,
    /// and writing every message it sends and receives to its message log
    /// ([`Sipp::messages`]). Fails the test when SIPp is not installed.
    pub fn start(args: &[&str]) -> Sipp {
        let log_dir = tempfile::tempdir().expect("temporary directory");
        let log = log_dir.path().join("messages.log");
        let mut cmd = Command::new("sipp");
        cmd.args([
            "-i",
            "127.0.0.1",
            "-bind_local",
            "-mi",
            "127.0.0.1",
            "-nostdin",
            "-timeout",
            "60s",
            "-timeout_error",
            "-trace_msg",
            "-trace_err",
            "-message_file",
        ])
        .arg(&log)
        .arg("-error_file")
        .arg(log_dir.path().join("errors.log"))
        .args(args)
        .current_dir(log_dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        match cmd.spawn() {
            Ok(child) => Sipp { child, log_dir },
            Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                "sipp is not installed (Debian package sip-tester): run `bash .ci/install-deps`"
            ),
            Err(e) => panic!("cannot start sipp: {e}"),
        }
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for sipp")
    }

    /// Waits for it to exit; fails the test at `until`.
    pub fn wait(&mut self, until: Instant) -> ExitStatus {
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(Instant::now() < until, "sipp did not finish in time");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.log_dir.path().join("messages.log")
    }

    /// What SIPp reported as errors, for failure messages.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("errors.log")).unwrap_or_default()
    }

    /// Every message SIPp sent or received so far, from its message log.
    pub fn messages(&self) -> Vec<Logged> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        parse_log(&text)
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One message of SIPp's message log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// True for a message SIPp sent, false for one it received.
    pub sent: bool,
    /// The message's text.
    pub text: String,
}

impl Logged {
    /// The first line: a request line or a status line.
    pub fn start_line(&self) -> &str {
        self.text.lines().next().unwrap_or_default()
    }

    /// Whether it is a request of `method`.
    pub fn is_request(&self, method: &str) -> bool {
        self.start_line().starts_with(&format!("{method} "))
    }

    /// Whether it is a response with `status`.
    pub fn is_response(&self, status: u16) -> bool {
        self.start_line().starts_with(&format!("SIP/2.0 {status} "))
    }

    /// The value of its CSeq header, if any.
    pub fn cseq(&self) -> Option<&str> {
        self.text.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("CSeq")
                .then(|| value.trim())
        })
    }
}

/// Splits SIPp's message log (blocks headed by a line with
/// `message sent` or `message received`) into messages.
fn parse_log(text: &str) -> Vec<Logged> {
    let mut out: Vec<Logged> = Vec::new();
    let mut current: Option<Logged> = None;
    for line in text.lines() {
        let header = line.starts_with("----------------------------------------------- ")
            || (line.contains(" message sent") || line.contains(" message received"))
                && (line.contains("UDP") || line.contains("TCP") || line.contains("TLS"));
        if header {
            if let Some(m) = current.take() {
                out.push(m);
            }
            if line.contains("message sent") {
                current = Some(Logged {
                    sent: true,
                    text: String::new(),
                });
            } else if line.contains("message received") {
                current = Some(Logged {
                    sent: false,
                    text: String::new(),
                });
            }
            continue;
        }
        if let Some(m) = &mut current {
            if m.text.is_empty() && line.trim().is_empty() {
                continue;
            }
            m.text.push_str(line);
            m.text.push('\n');
        }
    }
    out.extend(current);
    out
}

/// A scenario file holding `xml`, deleted when dropped.
pub fn scenario(xml: &str) -> NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".xml")
        .tempfile()
        .expect("temporary file");
    f.write_all(xml.as_bytes()).expect("write scenario");
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_log_blocks() {
        let log = "----------------------------------------------- 2026-12-04 20:00:00.000000\n\
UDP message sent (300 bytes):\n\
\n\
INVITE sip:s@127.0.0.1:5060 SIP/2.0\n\
CSeq: 1 INVITE\n\
\n\
----------------------------------------------- 2026-12-04 20:00:00.100000\n\
UDP message received [250] bytes :\n\
\n\
SIP/2.0 200 OK\n\
CSeq: 1 INVITE\n\
\n";
        let m = parse_log(log);
        assert_eq!(m.len(), 2);
        assert!(m[0].sent && m[0].is_request("INVITE"));
        assert!(!m[1].sent && m[1].is_response(200));
        assert_eq!(m[1].cseq(), Some("1 INVITE"));
        assert!(!m[1].is_response(20));
    }
}
