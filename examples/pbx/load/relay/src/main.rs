//! The SRTP relay load generator (run through `examples/pbx/load/relay/run`).
//!
//! For each number of calls in turn it sets up that many calls through one
//! relay, each by SDP offer and answer on both legs (so that each leg has
//! its own keys, the relay's differing from the phones'), then sends 20 ms
//! frames of 160-byte G.711 in both directions of every call for the warm-up
//! and the measured seconds, and counts what comes out of the relay: packets
//! that open with the receiving phone's key (the relay's key for that leg),
//! authentication failures, losses, and packets that the *sender's* key
//! opens (a relay passing SRTP through instead of re-encrypting it; must be
//! zero). Meanwhile it reads the relay process's CPU time from
//! `/proc/PID/stat`.
//!
//! Two relays: `carevox` (the `relay-server` binary, started here, pinned to
//! a core with `taskset` when asked) and `rtpengine` (already running,
//! driven over its ng control protocol on UDP).
//!
//! Each step prints one tab-separated line on stdout:
//! `row PEER SUITE CALLS PPS CPU% US_PER_PACKET LOSS% SENT LOST AUTH_FAIL
//! PASSTHROUGH GENERATOR_CPU% PASS`. Progress goes to stderr. Stepping stops
//! after the first step with 0.1 % loss or more, or the relay at 90 % of a
//! core or more.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool: results on stdout, progress on stderr"
)]
#![allow(
    clippy::cast_precision_loss,
    reason = "packet and tick counts far below 2^52 become f64 for rates"
)]

mod bencode;
mod control;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use carevox::media::{SrtpSession, answer_audio, offer_crypto, offerer_srtp};
use carevox::relay::MediaPeer;
use carevox::sdes::{SdesOptions, srtp_context};
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::crypto::CryptoSuite;
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use carevox::srtp::{Context, Error as SrtpError};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use ring::rand::{SecureRandom, SystemRandom};

use crate::control::Control;

/// What one run measures.
struct Settings {
    peer: String,
    /// The caller's leg's suite.
    suite: CryptoSuite,
    /// The callee's leg's suite.
    callee_suite: CryptoSuite,
    steps: Vec<usize>,
    warmup: Duration,
    secs: Duration,
    clk_tck: f64,
}

fn usage() -> String {
    "usage: relay-load --peer carevox --server PATH [--server-cpu N] | --peer rtpengine \
     --ng ADDR --pid PID; [--suite CALLER_LEG_SUITE] [--callee-suite CALLEE_LEG_SUITE] \
     [--calls \"100 250 ...\"] [--secs S] [--warmup S] [--clk-tck N]"
        .to_owned()
}

fn suite_named(name: &str) -> Option<CryptoSuite> {
    match name {
        "AES_CM_128_HMAC_SHA1_80" => Some(CryptoSuite::AesCm128HmacSha1_80),
        "AES_CM_128_HMAC_SHA1_32" => Some(CryptoSuite::AesCm128HmacSha1_32),
        "AES_256_CM_HMAC_SHA1_80" => Some(CryptoSuite::AesCm256HmacSha1_80),
        "AEAD_AES_128_GCM" => Some(CryptoSuite::AeadAes128Gcm),
        "AEAD_AES_256_GCM" => Some(CryptoSuite::AeadAes256Gcm),
        _ => None,
    }
}

fn parse_args() -> Result<(Settings, Control), String> {
    let mut args: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let Some(name) = flag.strip_prefix("--") else {
            return Err(usage());
        };
        let value = it.next().ok_or_else(usage)?;
        args.insert(name.to_owned(), value);
    }
    let get = |k: &str| args.get(k).map(String::as_str);
    let num = |k: &str, default: f64| -> Result<f64, String> {
        get(k).map_or(Ok(default), |v| {
            v.parse::<f64>().map_err(|_| format!("--{k}: not a number"))
        })
    };
    let suite_name = get("suite").unwrap_or("AES_CM_128_HMAC_SHA1_80");
    let suite = suite_named(suite_name).ok_or_else(|| format!("unknown suite {suite_name}"))?;
    let callee_name = get("callee-suite").unwrap_or(suite_name);
    let callee_suite =
        suite_named(callee_name).ok_or_else(|| format!("unknown suite {callee_name}"))?;
    let steps = get("calls")
        .unwrap_or("100 250 500 1000 1500 2000 3000 4000")
        .split_whitespace()
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| "--calls: not a number".to_owned())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let peer = get("peer").ok_or_else(usage)?.to_owned();
    let control = match peer.as_str() {
        "carevox" => Control::carevox(get("server").ok_or_else(usage)?, get("server-cpu"))
            .map_err(|e| format!("relay-server: {e}"))?,
        "rtpengine" => {
            let ng: SocketAddr = get("ng")
                .ok_or_else(usage)?
                .parse()
                .map_err(|_| "--ng: not an address".to_owned())?;
            let pid: u32 = get("pid")
                .ok_or_else(usage)?
                .parse()
                .map_err(|_| "--pid: not a number".to_owned())?;
            Control::rtpengine(ng, pid).map_err(|e| format!("ng socket: {e}"))?
        }
        _ => return Err(usage()),
    };
    Ok((
        Settings {
            peer,
            suite,
            callee_suite,
            steps,
            warmup: Duration::from_secs_f64(num("warmup", 1.0)?),
            secs: Duration::from_secs_f64(num("secs", 5.0)?),
            clk_tck: num("clk-tck", 100.0)?,
        },
        control,
    ))
}

/// CPU time (user + system, in clock ticks) of process `pid`, all threads.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    // Field 3 (state) is the first after ')'; utime and stime are 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// One phone's end of one call: its socket, what it opens, what it checks.
struct End {
    socket: UdpSocket,
    /// Opens what the relay sends this phone (keyed with the relay's line
    /// for this leg).
    inbound: Context,
    /// Keyed with the *other* phone's own line: if it opens a packet, the
    /// relay passed the sender's SRTP through. Tried on the first packet.
    sender_key: Option<Context>,
    received: u64,
    auth_failures: u64,
    refused: u64,
    passthrough: u64,
}

/// One direction of one call: who sends, where to, with what.
struct Flow {
    from: usize,
    to: SocketAddr,
    outbound: Context,
    ssrc: u32,
    seq: u16,
    ts: u32,
}

struct Call {
    id: String,
}

/// A step's calls, their phones' ends and their flows.
type Calls = (Vec<Call>, Vec<End>, Vec<Flow>);

/// Sets up `n` calls through the relay; ends indexed 2i (caller) and 2i+1
/// (callee), flows 2i (caller to callee) and 2i+1 (back).
fn set_up(
    control: &mut Control,
    settings: &Settings,
    step: usize,
    n: usize,
    rng: &dyn SecureRandom,
) -> Result<Calls, String> {
    let options = SdesOptions::new();
    let mut calls = Vec::with_capacity(n);
    let mut ends = Vec::with_capacity(2 * n);
    let mut flows = Vec::with_capacity(2 * n);
    let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    for i in 0..n {
        let id = format!("load-{step}-{i}");
        let caller_socket = UdpSocket::bind(any).map_err(|e| format!("bind: {e}"))?;
        let callee_socket = UdpSocket::bind(any).map_err(|e| format!("bind: {e}"))?;
        let caller_port = caller_socket
            .local_addr()
            .map_err(|e| e.to_string())?
            .port();
        let callee_port = callee_socket
            .local_addr()
            .map_err(|e| e.to_string())?
            .port();
        let caller_line =
            offer_crypto(1, settings.suite.clone(), rng).map_err(|e| e.to_string())?;
        let offer = format!(
            "v=0\r\no=- {i} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {caller_port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n\
             a=sendrecv\r\na=crypto:{caller_line}\r\n"
        );
        let to_callee = control.offer(&id, &offer)?;
        let to_callee = SessionDescription::parse(&to_callee)
            .map_err(|e| format!("the relay's offer to the callee: {e}"))?;
        let relay_b = MediaPeer::audio_of(&to_callee)
            .map_err(|e| e.to_string())?
            .rtp;
        let mut caps = AudioCapabilities::new(vec![Codec::pcmu()]);
        caps.crypto_suites = vec![settings.callee_suite.clone()];
        let answered = answer_audio(
            &to_callee,
            &caps,
            &LocalMedia::new("127.0.0.1", callee_port, "2"),
            rng,
            &options,
        )
        .map_err(|e| format!("answering the relay's offer: {e}"))?;
        let callee_line = answered
            .answer
            .audio
            .as_ref()
            .and_then(|a| a.srtp.as_ref())
            .map(|k| k.local.clone())
            .ok_or_else(|| format!("the relay offered the callee no {}", settings.callee_suite))?;
        let callee: SrtpSession = answered
            .srtp
            .ok_or_else(|| "the callee's answer is not keyed".to_owned())?;
        let to_caller = control.answer(&id, &answered.answer.sdp.to_string())?;
        let to_caller = SessionDescription::parse(&to_caller)
            .map_err(|e| format!("the relay's answer to the caller: {e}"))?;
        let relay_a = MediaPeer::audio_of(&to_caller)
            .map_err(|e| e.to_string())?
            .rtp;
        let caller = offerer_srtp(std::slice::from_ref(&caller_line), &to_caller, &options)
            .map_err(|e| format!("keying the caller from the relay's answer: {e}"))?;
        let check = |line| srtp_context(line, &options).map_err(|e| e.to_string());
        let base = u32::try_from(2 * i).map_err(|_| "too many calls".to_owned())?;
        let mut caller_out = caller.outbound;
        let mut callee_out = callee.outbound;
        caller_out
            .add_outbound_stream(base + 1)
            .map_err(|e| e.to_string())?;
        callee_out
            .add_outbound_stream(base + 2)
            .map_err(|e| e.to_string())?;
        flows.push(Flow {
            from: 2 * i,
            to: relay_a,
            outbound: caller_out,
            ssrc: base + 1,
            seq: 1,
            ts: 0,
        });
        flows.push(Flow {
            from: 2 * i + 1,
            to: relay_b,
            outbound: callee_out,
            ssrc: base + 2,
            seq: 1,
            ts: 0,
        });
        ends.push(End {
            socket: caller_socket,
            inbound: caller.inbound,
            sender_key: Some(check(&callee_line)?),
            received: 0,
            auth_failures: 0,
            refused: 0,
            passthrough: 0,
        });
        ends.push(End {
            socket: callee_socket,
            inbound: callee.inbound,
            sender_key: Some(check(&caller_line)?),
            received: 0,
            auth_failures: 0,
            refused: 0,
            passthrough: 0,
        });
        calls.push(Call { id });
    }
    Ok((calls, ends, flows))
}

/// What one step measured.
struct Outcome {
    pps: f64,
    cpu: f64,
    us_per_packet: f64,
    loss: f64,
    sent: u64,
    lost: u64,
    auth_failures: u64,
    passthrough: u64,
    generator_cpu: f64,
}

const PAYLOAD: usize = 160;
const FRAME: Duration = Duration::from_millis(20);

fn receive(ends: &mut [End], index: usize, buf: &mut [u8]) -> u64 {
    let Some(end) = ends.get_mut(index) else {
        return 0;
    };
    let mut got = 0;
    while let Ok((len, _)) = end.socket.recv_from(buf) {
        if let Some(mut check) = end.sender_key.take()
            && let Some(packet) = buf.get(..len)
        {
            let mut copy = packet.to_vec();
            if check.unprotect_rtp_in_place(&mut copy, len).is_ok() {
                end.passthrough += 1;
            }
        }
        match end.inbound.unprotect_rtp_in_place(buf, len) {
            Ok(_) => {
                end.received += 1;
                got += 1;
            }
            Err(SrtpError::AuthenticationFailed { .. }) => end.auth_failures += 1,
            Err(_) => end.refused += 1,
        }
    }
    got
}

fn run_step(
    settings: &Settings,
    pid: &str,
    ends: &mut [End],
    flows: &mut [Flow],
) -> Result<Outcome, String> {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    for (i, end) in ends.iter_mut().enumerate() {
        poll.registry()
            .register(&mut end.socket, Token(i), Interest::READABLE)
            .map_err(|e| e.to_string())?;
    }
    let mut events = Events::with_capacity(4096);
    let mut buf = [0u8; 1500];
    let nflows = flows.len().max(1);
    let rounds = ((settings.warmup + settings.secs).as_secs_f64() / FRAME.as_secs_f64()).ceil();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a small positive number of 20 ms rounds"
    )]
    let total = rounds as u64 * nflows as u64;
    let spacing = FRAME / u32::try_from(nflows).map_err(|_| "too many flows".to_owned())?;
    let start = Instant::now();
    let due = |k: u64| {
        let round = u32::try_from(k / nflows as u64).unwrap_or(u32::MAX);
        let slot = u32::try_from(k % nflows as u64).unwrap_or(0);
        start + FRAME * round + spacing * slot
    };
    let window_start = start + settings.warmup;
    let window_end = window_start + settings.secs;
    let mut window: Option<(Instant, u64, u64, u64)> = None;
    let mut measured: Option<(f64, u64, u64, u64)> = None;
    let mut sent: u64 = 0;
    let mut send_failures: u64 = 0;
    let mut received: u64 = 0;
    let mut k: u64 = 0;
    let mut drain_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        // Send every packet due within the next millisecond (the poll's
        // granularity), so that sending never falls behind its schedule.
        let horizon = now + Duration::from_millis(1);
        while k < total && due(k) <= horizon {
            let f = usize::try_from(k % nflows as u64).unwrap_or(0);
            if let (Some(flow), Some(header)) = (flows.get_mut(f), buf.get_mut(..12)) {
                let [s0, s1] = flow.seq.to_be_bytes();
                let [t0, t1, t2, t3] = flow.ts.to_be_bytes();
                let [c0, c1, c2, c3] = flow.ssrc.to_be_bytes();
                header.copy_from_slice(&[0x80, 0, s0, s1, t0, t1, t2, t3, c0, c1, c2, c3]);
                if let Some(payload) = buf.get_mut(12..12 + PAYLOAD) {
                    payload.fill(0xff);
                }
                flow.seq = flow.seq.wrapping_add(1);
                flow.ts = flow.ts.wrapping_add(160);
                let len = flow
                    .outbound
                    .protect_rtp_in_place(&mut buf, 12 + PAYLOAD)
                    .map_err(|e| e.to_string())?;
                let socket = ends.get(flow.from).map(|e| &e.socket);
                match socket.map(|s| s.send_to(buf.get(..len).unwrap_or(&[]), flow.to)) {
                    Some(Ok(_)) => sent += 1,
                    _ => send_failures += 1,
                }
            }
            k += 1;
        }
        if window.is_none() && now >= window_start {
            let relay = cpu_ticks(pid).ok_or("the relay process is gone")?;
            let own = cpu_ticks("self").ok_or("cannot read /proc/self/stat")?;
            window = Some((now, relay, own, received));
        }
        if measured.is_none()
            && now >= window_end
            && let Some((at, relay, own, count)) = window
        {
            let relay_now = cpu_ticks(pid).ok_or("the relay process is gone")?;
            let own_now = cpu_ticks("self").ok_or("cannot read /proc/self/stat")?;
            measured = Some((
                (now - at).as_secs_f64(),
                relay_now.saturating_sub(relay),
                own_now.saturating_sub(own),
                received - count,
            ));
        }
        if k >= total && drain_until.is_none() {
            drain_until = Some(now + Duration::from_millis(300));
        }
        if let Some(end) = drain_until
            && now >= end
        {
            break;
        }
        let mut next = if k < total {
            due(k)
        } else {
            drain_until.unwrap_or(now)
        };
        // Wake for the window's edges too.
        if window.is_none() {
            next = next.min(window_start);
        }
        if measured.is_none() {
            next = next.min(window_end);
        }
        let wait = next.saturating_duration_since(Instant::now());
        poll.poll(&mut events, Some(wait))
            .map_err(|e| e.to_string())?;
        for event in &events {
            received += receive(ends, event.token().0, &mut buf);
        }
    }
    let (secs, relay_ticks, own_ticks, window_received) =
        measured.ok_or("the step ended before its measured window")?;
    let auth_failures = ends.iter().map(|e| e.auth_failures).sum();
    let passthrough = ends.iter().map(|e| e.passthrough).sum();
    let expected = sent + send_failures;
    let lost = expected.saturating_sub(received);
    let relay_secs = relay_ticks as f64 / settings.clk_tck;
    Ok(Outcome {
        pps: window_received as f64 / secs,
        cpu: 100.0 * relay_secs / secs,
        us_per_packet: if window_received == 0 {
            f64::NAN
        } else {
            1e6 * relay_secs / window_received as f64
        },
        loss: if expected == 0 {
            0.0
        } else {
            100.0 * lost as f64 / expected as f64
        },
        sent: expected,
        lost,
        auth_failures,
        passthrough,
        generator_cpu: 100.0 * own_ticks as f64 / settings.clk_tck / secs,
    })
}

fn main() -> ExitCode {
    let (settings, mut control) = match parse_args() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("relay-load: {e}");
            return ExitCode::from(2);
        }
    };
    #[allow(clippy::disallowed_methods)] // the tool's own random source
    let rng = SystemRandom::new();
    let pid = control.pid().to_string();
    let mut status = ExitCode::SUCCESS;
    for (step, &n) in settings.steps.iter().enumerate() {
        eprintln!(
            "relay-load: {} {}/{}: {n} calls ({} packets/s offered)",
            settings.peer,
            settings.suite,
            settings.callee_suite,
            n * 100
        );
        let (calls, mut ends, mut flows) = match set_up(&mut control, &settings, step, n, &rng) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("relay-load: setting up {n} calls: {e}");
                status = ExitCode::FAILURE;
                let _ = control.reset(&[]);
                break;
            }
        };
        let outcome = run_step(&settings, &pid, &mut ends, &mut flows);
        let ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
        if let Err(e) = control.reset(&ids) {
            eprintln!("relay-load: tearing down: {e}");
        }
        drop(ends);
        let o = match outcome {
            Ok(o) => o,
            Err(e) => {
                eprintln!("relay-load: {n} calls: {e}");
                status = ExitCode::FAILURE;
                break;
            }
        };
        let pass = o.loss < 0.1 && o.cpu < 90.0 && o.auth_failures == 0 && o.passthrough == 0;
        println!(
            "row\t{}\t{}/{}\t{n}\t{:.0}\t{:.1}\t{:.2}\t{:.3}\t{}\t{}\t{}\t{}\t{:.1}\t{}",
            settings.peer,
            settings.suite,
            settings.callee_suite,
            o.pps,
            o.cpu,
            o.us_per_packet,
            o.loss,
            o.sent,
            o.lost,
            o.auth_failures,
            o.passthrough,
            o.generator_cpu,
            if pass { "yes" } else { "no" }
        );
        if o.passthrough > 0 {
            eprintln!(
                "relay-load: {}: the sender's own key opened what the relay sent: it did not re-encrypt",
                settings.peer
            );
            status = ExitCode::FAILURE;
        }
        if !pass {
            break;
        }
    }
    status
}
