//! A simulated network in virtual time: user agents (and optionally a relay
//! between them) exchange datagrams that the network drops, duplicates,
//! delays and reorders, from a seeded random number generator.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use carevox_sip::dialog::{
    DialogId, DialogState, Outgoing, TerminationReason, UaConfig, UaEvent, UaOutput, UserAgent,
};
use carevox_sip::transaction::{Input, Received, TransactionId, TransportKind};
use carevox_sip::{HeaderName, Message, MessageBuilder};

/// xorshift64*: deterministic from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// How the network treats datagrams.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub loss: f64,
    pub duplicate: f64,
    /// Each datagram takes from 1 ms to this long (reordering follows).
    pub max_delay: Duration,
    /// Datagrams (by index) dropped whatever `loss` says.
    pub drop_indexes: Vec<bool>,
    /// From this datagram index on, everything is dropped (a cut link).
    pub cut_at: Option<usize>,
}

impl NetConfig {
    pub fn lossy(loss: f64) -> Self {
        Self {
            loss,
            duplicate: 0.05,
            max_delay: Duration::from_millis(80),
            drop_indexes: Vec::new(),
            cut_at: None,
        }
    }
}

/// What the called side does with an INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 180, then 200 after this long.
    Accept(Duration),
    /// 486 Busy Here at once.
    Busy,
    /// 180 and nothing more.
    Never,
}

/// The script of a call.
#[derive(Debug, Clone)]
pub struct Script {
    pub answer: Answer,
    /// How long the caller keeps the call before BYE.
    pub hold: Duration,
    /// The caller sends a re-INVITE after this long in the call.
    pub reinvite_after: Option<Duration>,
    /// The caller cancels if no final response came this long after INVITE.
    pub cancel_after: Duration,
    /// Through a relay that record-routes.
    pub relay: bool,
    pub transport: TransportKind,
}

impl Script {
    pub fn call(answer: Answer) -> Self {
        Self {
            answer,
            hold: Duration::from_secs(5),
            reinvite_after: None,
            cancel_after: Duration::from_secs(30),
            relay: false,
            transport: TransportKind::Udp,
        }
    }
}

/// What one side saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub events: Vec<(Duration, UaEvent)>,
    pub confirmed: u32,
    pub terminated: Vec<TerminationReason>,
    pub finals: Vec<u16>,
    pub timeouts: u32,
    pub acks: u32,
    pub cancelled: u32,
    pub requests: Vec<String>,
}

enum App {
    Bye(DialogId),
    Reinvite(DialogId),
    Answer(TransactionId),
    Cancel(TransactionId),
}

pub const ALICE: &str = "10.0.0.1:5060";
pub const BOB: &str = "10.0.0.2:5060";
pub const RELAY: &str = "10.0.0.3:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

struct Packet {
    at: Instant,
    seq: u64,
    from: SocketAddr,
    to: SocketAddr,
    transport: TransportKind,
    bytes: Bytes,
}

pub struct Sim {
    pub start: Instant,
    pub now: Instant,
    rng: Rng,
    net: NetConfig,
    sent: usize,
    seq: u64,
    flight: Vec<Packet>,
    pub alice: UserAgent,
    pub bob: UserAgent,
    pub a: Seen,
    pub b: Seen,
    app: Vec<(Instant, bool, App)>,
    script: Script,
    invite: Option<TransactionId>,
    invite_final: bool,
    /// The relay's record of requests it forwarded statelessly.
    pub relayed: u32,
}

impl Sim {
    pub fn new(seed: u64, net: NetConfig, script: Script) -> Self {
        let start = Instant::now();
        let rng_a: Arc<dyn ring::rand::SecureRandom + Send + Sync> =
            Arc::new(ring::rand::SystemRandom::new());
        let alice = UserAgent::new(
            UaConfig::new(ALICE, "<sip:alice@10.0.0.1:5060>"),
            rng_a.clone(),
        );
        let bob = UserAgent::new(UaConfig::new(BOB, "<sip:bob@10.0.0.2:5060>"), rng_a);
        Self {
            start,
            now: start,
            rng: Rng::new(seed),
            net,
            sent: 0,
            seq: 0,
            flight: Vec::new(),
            alice,
            bob,
            a: Seen::default(),
            b: Seen::default(),
            app: Vec::new(),
            script,
            invite: None,
            invite_final: false,
            relayed: 0,
        }
    }

    fn first_hop(&self) -> SocketAddr {
        if self.script.relay {
            addr(RELAY)
        } else {
            addr(BOB)
        }
    }

    /// Alice sends REGISTER to Bob as registrar; Bob challenges once.
    pub fn register(&mut self) -> TransactionId {
        let req = Outgoing::new(
            "REGISTER",
            "sip:10.0.0.2",
            "<sip:alice@example.org>",
            "<sip:alice@example.org>",
            self.first_hop(),
            self.script.transport,
        );
        let id = self.alice.send_request(self.now, &req).expect("REGISTER");
        self.collect();
        id
    }

    pub fn call(&mut self) {
        let req = Outgoing::new(
            "INVITE",
            "sip:bob@10.0.0.2:5060",
            "<sip:alice@example.org>",
            "<sip:bob@example.org>",
            self.first_hop(),
            self.script.transport,
        );
        let id = self.alice.send_request(self.now, &req).expect("INVITE");
        self.invite = Some(id);
        self.app
            .push((self.now + self.script.cancel_after, true, App::Cancel(id)));
        self.collect();
    }

    fn transmit(&mut self, from: SocketAddr, t: carevox_sip::transaction::Transmit) {
        let index = self.sent;
        self.sent += 1;
        let dropped = self.net.drop_indexes.get(index).copied().unwrap_or(false)
            || self.net.cut_at.is_some_and(|c| index >= c)
            || (t.transport == TransportKind::Udp && self.rng.unit() < self.net.loss);
        if dropped {
            return;
        }
        let copies = if t.transport == TransportKind::Udp && self.rng.unit() < self.net.duplicate {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let max = self.net.max_delay.as_millis() as u64;
            let delay = Duration::from_millis(1 + self.rng.below(max.max(1)));
            self.seq += 1;
            self.flight.push(Packet {
                at: self.now + delay,
                seq: self.seq,
                from,
                to: t.destination,
                transport: t.transport,
                bytes: t.bytes.clone(),
            });
        }
    }

    /// Drains both user agents' queued output.
    fn collect(&mut self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        loop {
            let mut progress = false;
            for side in [true, false] {
                loop {
                    let ua = if side { &mut self.alice } else { &mut self.bob };
                    match ua.poll_output() {
                        Some(UaOutput::Transmit(t)) => {
                            progress = true;
                            let from = addr(if side { ALICE } else { BOB });
                            self.transmit(from, t);
                        }
                        Some(UaOutput::Event(e)) => {
                            progress = true;
                            self.on_event(side, e);
                        }
                        Some(UaOutput::Timeout(at)) => {
                            next = Some(next.map_or(at, |n| n.min(at)));
                            break;
                        }
                        None => break,
                        Some(_) => unreachable!(),
                    }
                }
            }
            if !progress {
                return next;
            }
            next = None;
        }
    }

    fn on_event(&mut self, alice: bool, e: UaEvent) {
        let t = self.now - self.start;
        let now = self.now;
        let script = self.script.clone();
        let seen = if alice { &mut self.a } else { &mut self.b };
        seen.events.push((t, e.clone()));
        match e {
            UaEvent::DialogConfirmed { dialog } => {
                seen.confirmed += 1;
                if alice {
                    if let Some(after) = script.reinvite_after {
                        self.app.push((now + after, true, App::Reinvite(dialog)));
                    }
                    self.app.push((now + script.hold, true, App::Bye(dialog)));
                }
            }
            UaEvent::DialogTerminated { reason, .. } => seen.terminated.push(reason),
            UaEvent::Timeout { .. } => seen.timeouts += 1,
            UaEvent::Ack { .. } => seen.acks += 1,
            UaEvent::Cancelled { .. } => seen.cancelled += 1,
            UaEvent::Response { id, response, .. } => {
                let status = response.status().unwrap_or(0);
                if status >= 200 {
                    seen.finals.push(status);
                }
                if alice && Some(id) == self.invite && status >= 200 {
                    self.invite_final = true;
                }
                if alice && status == 401 {
                    // Resend with credentials: same Call-ID and From tag, next CSeq.
                    let call_id = response.call_id().unwrap().to_owned();
                    let tag = response.from().unwrap().tag().unwrap().to_owned();
                    let mut req = Outgoing::new(
                        "REGISTER",
                        "sip:10.0.0.2",
                        "<sip:alice@example.org>",
                        "<sip:alice@example.org>",
                        self.first_hop(),
                        script.transport,
                    );
                    req.call = Some((call_id, tag));
                    req.cseq = Some(response.cseq().unwrap().seq + 1);
                    req.headers.push((
                        "Authorization".into(),
                        "Digest username=\"alice\", realm=\"example.org\", nonce=\"n1\", uri=\"sip:10.0.0.2\", response=\"00\"".into(),
                    ));
                    self.alice.send_request(now, &req).unwrap();
                }
            }
            UaEvent::Request {
                id,
                request,
                dialog,
            } => {
                let method = request.method().unwrap().as_str().to_owned();
                seen.requests.push(method.clone());
                assert!(!alice || method != "INVITE" || dialog.is_some());
                match method.as_str() {
                    "REGISTER" => {
                        if request.authorization().next().is_some() {
                            self.bob
                                .respond(now, id, 200, "OK", &[("Expires", "3600")], None)
                                .unwrap();
                        } else {
                            self.bob
                                .respond(
                                    now,
                                    id,
                                    401,
                                    "Unauthorized",
                                    &[(
                                        "WWW-Authenticate",
                                        "Digest realm=\"example.org\", nonce=\"n1\"",
                                    )],
                                    None,
                                )
                                .unwrap();
                        }
                    }
                    "INVITE" if dialog.is_none() => match script.answer {
                        Answer::Busy => {
                            self.bob
                                .respond(now, id, 486, "Busy Here", &[], None)
                                .unwrap();
                        }
                        Answer::Never => {
                            self.bob
                                .respond(now, id, 180, "Ringing", &[], None)
                                .unwrap();
                        }
                        Answer::Accept(after) => {
                            self.bob
                                .respond(now, id, 180, "Ringing", &[], None)
                                .unwrap();
                            self.app.push((now + after, false, App::Answer(id)));
                        }
                    },
                    _ => {
                        let ua = if alice {
                            &mut self.alice
                        } else {
                            &mut self.bob
                        };
                        ua.respond(now, id, 200, "OK", &[], None).unwrap();
                    }
                }
            }
            _ => {}
        }
    }

    fn run_app(&mut self, alice: bool, action: App) {
        let now = self.now;
        match action {
            App::Answer(id) => {
                // The INVITE may have been cancelled meanwhile.
                let _ = self.bob.respond(
                    now,
                    id,
                    200,
                    "OK",
                    &[],
                    Some(("application/sdp", Bytes::from_static(b"v=0\r\n"))),
                );
            }
            App::Bye(d) => {
                let ua = if alice {
                    &mut self.alice
                } else {
                    &mut self.bob
                };
                if ua.dialog(d).is_some() {
                    ua.send_in_dialog(now, d, "BYE", &[], None).unwrap();
                }
            }
            App::Reinvite(d) => {
                if self
                    .alice
                    .dialog(d)
                    .is_some_and(|d| d.state() == DialogState::Confirmed)
                {
                    let _ = self.alice.send_in_dialog(now, d, "INVITE", &[], None);
                }
            }
            App::Cancel(id) => {
                if !self.invite_final {
                    let _ = self.alice.cancel(now, id);
                }
            }
        }
    }

    /// Relays one datagram: requests go to the other side with the relay's
    /// Via (a branch derived from the incoming one, as a stateless proxy
    /// does, 16.11) and, for a dialog-creating INVITE, its Record-Route;
    /// responses lose the top Via and go back.
    fn relay(&mut self, p: Packet) {
        let Ok(msg) = Message::parse(p.bytes) else {
            return;
        };
        let other = if p.from == addr(ALICE) {
            addr(BOB)
        } else {
            addr(ALICE)
        };
        let vias: Vec<String> = msg.list(HeaderName::Via).map(str::to_owned).collect();
        let mut b = MessageBuilder::from_message(&msg).remove("Via");
        if msg.is_request() {
            let branch = msg.top_via().unwrap().branch().unwrap_or("x").to_owned();
            let routes: Vec<String> = msg
                .list(HeaderName::Route)
                .map(str::to_owned)
                .filter(|r| !r.contains("10.0.0.3"))
                .collect();
            b = b.remove("Route");
            for r in routes {
                b = b.header("Route", &r).unwrap();
            }
            for v in vias.iter().rev() {
                b = b.header_first("Via", v).unwrap();
            }
            b = b
                .header_first("Via", &format!("SIP/2.0/UDP {RELAY};branch={branch}.r"))
                .unwrap();
            if msg.method().unwrap().as_str() == "INVITE" && msg.to().unwrap().tag().is_none() {
                b = b.header("Record-Route", "<sip:10.0.0.3:5060;lr>").unwrap();
            }
            self.relayed += 1;
        } else {
            for v in vias.iter().skip(1).rev() {
                b = b.header_first("Via", v).unwrap();
            }
        }
        let out = b.build().unwrap();
        self.transmit(
            addr(RELAY),
            carevox_sip::transaction::Transmit {
                destination: other,
                transport: p.transport,
                bytes: out.into_bytes(),
            },
        );
    }

    /// Runs until nothing is left to do or `limit` of virtual time passed.
    pub fn run(&mut self, limit: Duration) {
        let end = self.start + limit;
        loop {
            let timer = self.collect();
            let flight = self.flight.iter().map(|p| (p.at, p.seq)).min();
            let app = self.app.iter().map(|(at, _, _)| *at).min();
            let next = [timer, flight.map(|f| f.0), app]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else {
                return;
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = next.max(self.now);
            if let Some((at, seq)) = flight
                && at <= self.now
            {
                let i = self.flight.iter().position(|p| p.seq == seq).unwrap();
                let p = self.flight.swap_remove(i);
                let to = p.to;
                if to == addr(RELAY) {
                    self.relay(p);
                    continue;
                }
                let ua = if to == addr(ALICE) {
                    &mut self.alice
                } else {
                    &mut self.bob
                };
                let message = Message::parse(p.bytes).unwrap();
                let _ = ua.handle_input(
                    self.now,
                    Input::Receive(Received {
                        source: p.from,
                        transport: p.transport,
                        message,
                    }),
                );
                continue;
            }
            if let Some(i) = self.app.iter().position(|(at, _, _)| *at <= self.now) {
                let (_, alice, action) = self.app.swap_remove(i);
                self.run_app(alice, action);
                continue;
            }
            let now = self.now;
            self.alice.handle_input(now, Input::Timeout).unwrap();
            self.bob.handle_input(now, Input::Timeout).unwrap();
        }
    }

    pub fn dialogs(&self) -> (usize, usize) {
        (self.alice.dialogs().count(), self.bob.dialogs().count())
    }

    pub fn methods_in_dialogs(&self) -> HashMap<String, u32> {
        let mut m = HashMap::new();
        for r in &self.b.requests {
            *m.entry(r.clone()).or_default() += 1;
        }
        m
    }
}
