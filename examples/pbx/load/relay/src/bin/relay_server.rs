//! The carevox side of the relay load measurement: PBX media relays
//! ([`spawn_relay`] over port pairs of a [`PortPool`] on 127.0.0.1, on a
//! tokio runtime as the PBX starts it), set up on request by SDP offer and
//! answer the way the PBX's B2BUA does, in a process of their own so that
//! their CPU time can be read from `/proc`.
//!
//! It speaks a line protocol on stdin and stdout (SDPs in base64), one
//! request and one reply at a time:
//!
//! - `offer ID SDP`: the caller's offer. The relay answers it from a port
//!   pair of its own (keeping that answer), and replies `sdp OFFER` with its
//!   offer to the callee from a second pair: one `a=crypto` line, with a
//!   fresh key of its own, for every suite carevox keys (as the PBX offers
//!   its configured suites).
//! - `answer ID SDP`: the callee's answer. The relay starts, and the reply
//!   is `sdp ANSWER`, the answer kept for the caller.
//! - `reset`: every relay stops; the reply is `ok RECEIVED SENT
//!   AUTH_FAILURES` summed over both legs of every call.
//!
//! A request that fails is answered `err WHAT`. The process ends at the end
//! of its input.

#![allow(
    clippy::print_stderr,
    reason = "a command-line tool: a fatal error goes to stderr"
)]

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use carevox::media::{SrtpSession, answer_audio, offer_cryptos, offerer_srtp};
use carevox::relay::{MediaPeer, MediaRelay, RelayConfig};
use carevox::sdes::{SdesOptions, keyable_suites};
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::crypto::Crypto;
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use carevox_pbx::media::{MediaTask, PortPair, PortPool, spawn_relay};
use data_encoding::BASE64;
use ring::rand::{SecureRandom, SystemRandom};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A call whose caller leg is answered and whose callee has been offered.
struct Pending {
    caller_srtp: SrtpSession,
    caller_peer: MediaPeer,
    caller_answer: String,
    caller_ports: PortPair,
    callee_lines: Vec<Crypto>,
    callee_ports: PortPair,
}

struct Relays {
    rng: SystemRandom,
    pool: PortPool,
    pending: HashMap<String, Pending>,
    running: Vec<MediaTask>,
}

fn decode(b64: &str) -> Result<SessionDescription, String> {
    let bytes = BASE64
        .decode(b64.as_bytes())
        .map_err(|_| "SDP is not base64".to_owned())?;
    let text = String::from_utf8(bytes).map_err(|_| "SDP is not UTF-8".to_owned())?;
    SessionDescription::parse(&text).map_err(|e| format!("SDP: {e}"))
}

impl Relays {
    async fn offer(&mut self, id: &str, offer: &SessionDescription) -> Result<String, String> {
        let caller_peer = MediaPeer::audio_of(offer).map_err(|e| e.to_string())?;
        let caller_ports = self.pool.bind().await.map_err(|e| e.to_string())?;
        let callee_ports = self.pool.bind().await.map_err(|e| e.to_string())?;
        let answered = answer_audio(
            offer,
            &AudioCapabilities::new(vec![Codec::pcmu()]),
            &LocalMedia::new("127.0.0.1", caller_ports.port(), "1"),
            &self.rng as &dyn SecureRandom,
            &SdesOptions::new(),
        )
        .map_err(|e| e.to_string())?;
        let Some(caller_srtp) = answered.srtp else {
            return Err("the offer has no SDES audio stream carevox keys".to_owned());
        };
        let callee_lines = offer_cryptos(&keyable_suites(), &self.rng as &dyn SecureRandom)
            .map_err(|e| e.to_string())?;
        let mut to_callee = format!(
            "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
            callee_ports.port()
        );
        for line in &callee_lines {
            to_callee.push_str(&format!("a=crypto:{line}\r\n"));
        }
        self.pending.insert(
            id.to_owned(),
            Pending {
                caller_srtp,
                caller_peer,
                caller_answer: answered.answer.sdp.to_string(),
                caller_ports,
                callee_lines,
                callee_ports,
            },
        );
        Ok(to_callee)
    }

    fn answer(&mut self, id: &str, answer: &SessionDescription) -> Result<String, String> {
        let call = self
            .pending
            .remove(id)
            .ok_or_else(|| "no such call".to_owned())?;
        let callee_srtp = offerer_srtp(&call.callee_lines, answer, &SdesOptions::new())
            .map_err(|e| e.to_string())?;
        let callee_peer = MediaPeer::audio_of(answer).map_err(|e| e.to_string())?;
        let relay = MediaRelay::new(
            call.caller_srtp,
            call.caller_peer,
            callee_srtp,
            callee_peer,
            RelayConfig::default(),
        );
        self.running.push(spawn_relay(
            relay,
            call.caller_ports,
            call.callee_ports,
            None,
        ));
        Ok(call.caller_answer)
    }

    async fn reset(&mut self) -> (u64, u64, u64) {
        self.pending.clear();
        let (mut received, mut sent, mut failed) = (0, 0, 0);
        for task in self.running.drain(..) {
            let stats = task.stop().await;
            for leg in [stats.a, stats.b] {
                received += leg.received;
                sent += leg.sent;
                failed += leg.auth_failures;
            }
        }
        (received, sent, failed)
    }
}

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("relay-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _entered = runtime.enter();
    // Below the kernel's ephemeral range, where the generator's sockets are.
    let (min, max) = (10_000, 32_000);
    #[allow(clippy::disallowed_methods)] // the program's own random source
    let rng = SystemRandom::new();
    let mut relays = Relays {
        rng,
        pool: PortPool::new(LOCALHOST, min, max),
        pending: HashMap::new(),
        running: Vec::new(),
    };
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let reply = match (words.next(), words.next(), words.next()) {
            (Some("offer"), Some(id), Some(sdp)) => decode(sdp)
                .and_then(|sdp| runtime.block_on(relays.offer(id, &sdp)))
                .map(|s| format!("sdp {}", BASE64.encode(s.as_bytes()))),
            (Some("answer"), Some(id), Some(sdp)) => decode(sdp)
                .and_then(|sdp| relays.answer(id, &sdp))
                .map(|s| format!("sdp {}", BASE64.encode(s.as_bytes()))),
            (Some("reset"), None, None) => {
                let (received, sent, failed) = runtime.block_on(relays.reset());
                Ok(format!("ok {received} {sent} {failed}"))
            }
            _ => Err("unknown request".to_owned()),
        };
        let line = match reply {
            Ok(r) => r,
            Err(e) => format!("err {e}"),
        };
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    runtime.block_on(relays.reset());
    ExitCode::SUCCESS
}
