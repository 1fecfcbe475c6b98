//! The relay under load, as the generator drives it: offer, answer and
//! tear-down, either to carevox's `relay-server` (a child process, a line
//! protocol on its stdin and stdout) or to rtpengine (its ng control
//! protocol: bencoded dictionaries over UDP).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use data_encoding::BASE64;

use crate::bencode::{self, Value};

/// How the generator reaches the relay.
pub(crate) enum Control {
    /// carevox's `relay-server`, started here.
    Carevox {
        child: Child,
        stdin: Option<ChildStdin>,
        stdout: BufReader<ChildStdout>,
    },
    /// A running rtpengine.
    Rtpengine {
        socket: UdpSocket,
        ng: SocketAddr,
        pid: u32,
        cookie: u64,
    },
}

impl Control {
    /// Starts `server`, pinned to core `cpu` with `taskset` when given.
    pub(crate) fn carevox(server: &str, cpu: Option<&str>) -> std::io::Result<Control> {
        let mut command = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpu, server]);
                c
            }
            None => Command::new(server),
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("no pipes to the relay server"));
        };
        Ok(Control::Carevox {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
        })
    }

    /// rtpengine's ng protocol at `ng`; its process is `pid`.
    pub(crate) fn rtpengine(ng: SocketAddr, pid: u32) -> std::io::Result<Control> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(Control::Rtpengine {
            socket,
            ng,
            pid,
            cookie: 0,
        })
    }

    /// The relay's process id.
    pub(crate) fn pid(&self) -> u32 {
        match self {
            Control::Carevox { child, .. } => child.id(),
            Control::Rtpengine { pid, .. } => *pid,
        }
    }

    /// The caller's offer for call `id`; returns the relay's offer to the
    /// callee.
    pub(crate) fn offer(&mut self, id: &str, sdp: &str) -> Result<String, String> {
        match self {
            Control::Carevox { .. } => {
                self.line(&format!("offer {id} {}", BASE64.encode(sdp.as_bytes())))
            }
            Control::Rtpengine { .. } => self.ng(vec![
                ("command", Value::str("offer")),
                ("call-id", Value::str(id)),
                ("from-tag", Value::str("caller")),
                ("sdp", Value::str(sdp)),
                ("replace", Value::List(vec![Value::str("origin")])),
            ]),
        }
    }

    /// The callee's answer for call `id`; returns the relay's answer to
    /// the caller.
    pub(crate) fn answer(&mut self, id: &str, sdp: &str) -> Result<String, String> {
        match self {
            Control::Carevox { .. } => {
                self.line(&format!("answer {id} {}", BASE64.encode(sdp.as_bytes())))
            }
            Control::Rtpengine { .. } => self.ng(vec![
                ("command", Value::str("answer")),
                ("call-id", Value::str(id)),
                ("from-tag", Value::str("caller")),
                ("to-tag", Value::str("callee")),
                ("sdp", Value::str(sdp)),
                ("replace", Value::List(vec![Value::str("origin")])),
            ]),
        }
    }

    /// Ends the calls `ids` (carevox: every call).
    pub(crate) fn reset(&mut self, ids: &[&str]) -> Result<(), String> {
        match self {
            Control::Carevox { .. } => {
                let reply = self.request("reset")?;
                if reply.starts_with("ok") {
                    Ok(())
                } else {
                    Err(reply)
                }
            }
            Control::Rtpengine { .. } => {
                for id in ids {
                    self.ng(vec![
                        ("command", Value::str("delete")),
                        ("call-id", Value::str(id)),
                        ("from-tag", Value::str("caller")),
                    ])?;
                }
                Ok(())
            }
        }
    }

    fn request(&mut self, line: &str) -> Result<String, String> {
        let Control::Carevox { stdin, stdout, .. } = self else {
            return Err("not the carevox relay server".to_owned());
        };
        let stdin = stdin.as_mut().ok_or("the relay server's input is closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("relay server: {e}"))?;
        let mut reply = String::new();
        match stdout.read_line(&mut reply) {
            Ok(0) => Err("the relay server exited".to_owned()),
            Ok(_) => Ok(reply.trim_end().to_owned()),
            Err(e) => Err(format!("relay server: {e}")),
        }
    }

    /// A request whose reply is `sdp BASE64`: the SDP.
    fn line(&mut self, line: &str) -> Result<String, String> {
        let reply = self.request(line)?;
        if let Some(b64) = reply.strip_prefix("sdp ") {
            let bytes = BASE64
                .decode(b64.as_bytes())
                .map_err(|_| "the relay server's SDP is not base64".to_owned())?;
            String::from_utf8(bytes).map_err(|_| "the relay server's SDP is not UTF-8".to_owned())
        } else {
            Err(format!("relay server: {reply}"))
        }
    }

    /// One ng request; returns the reply's SDP (or an empty string for a
    /// reply without one).
    fn ng(&mut self, entries: Vec<(&str, Value)>) -> Result<String, String> {
        let Control::Rtpengine {
            socket, ng, cookie, ..
        } = self
        else {
            return Err("not rtpengine".to_owned());
        };
        *cookie += 1;
        let tag = format!("{}_{}", std::process::id(), cookie);
        let mut message = format!("{tag} ").into_bytes();
        Value::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
        .encode(&mut message);
        let mut buf = vec![0u8; 65536];
        for _attempt in 0..3 {
            socket
                .send_to(&message, *ng)
                .map_err(|e| format!("ng: {e}"))?;
            while let Ok((len, _)) = socket.recv_from(&mut buf) {
                let Some(reply) = buf.get(..len) else { break };
                let Some(body) = reply
                    .strip_prefix(tag.as_bytes())
                    .and_then(|r| r.strip_prefix(b" "))
                else {
                    continue; // a late reply to an earlier attempt
                };
                let (value, _) = bencode::decode(body).ok_or("rtpengine's reply is not bencode")?;
                return match value.get("result").and_then(Value::as_str) {
                    Some("ok") => Ok(value
                        .get("sdp")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()),
                    other => Err(format!(
                        "rtpengine: {} ({})",
                        other.unwrap_or("no result"),
                        value
                            .get("error-reason")
                            .and_then(Value::as_str)
                            .unwrap_or("no reason given")
                    )),
                };
            }
        }
        Err("rtpengine did not answer".to_owned())
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        if let Control::Carevox { child, stdin, .. } = self {
            // End of input: the server stops its relays and exits.
            drop(stdin.take());
            let _ = child.wait();
        }
    }
}
