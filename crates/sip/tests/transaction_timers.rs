//! Every transition of the transaction state machines of RFC 3261 section 17
//! (figures 5 to 8) with the corrections of RFC 6026 (Accepted, Timers L and
//! M), over UDP and over a reliable transport, in virtual time through the
//! public run loop.

// Instant::now is only the origin of virtual time; no test reads the clock again.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use carevox_sip::Message;
use carevox_sip::transaction::{
    Config, Event, Input, Kind, Output, Received, State, TransactionError, TransactionId,
    TransactionLayer, TransportKind,
};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const T4: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn peer() -> SocketAddr {
    "192.0.2.7:5060".parse().unwrap()
}

fn msg(s: &str) -> Message {
    Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

fn request(method: &str, branch: &str) -> Message {
    msg(&format!(
        "{method} sip:bob@192.0.2.7 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@192.0.2.1>;tag=ft1\r\n\
To: <sip:bob@192.0.2.7>\r\n\
Call-ID: call-1@192.0.2.1\r\n\
CSeq: 7 {method}\r\n\
Route: <sip:proxy.example;lr>\r\n\
Content-Length: 0\r\n\r\n"
    ))
}

fn response_to(req: &Message, status: u16, to_tag: Option<&str>) -> Message {
    let mut b = carevox_sip::MessageBuilder::response_to(req, status, "R").unwrap();
    if let Some(t) = to_tag {
        b = b.to_tag(t).unwrap();
    }
    b.build().unwrap()
}

/// One transaction layer driven in virtual time, with everything it output.
struct Probe {
    layer: TransactionLayer,
    start: Instant,
    now: Instant,
    sent: Vec<(Duration, Message)>,
    events: Vec<(Duration, Event)>,
}

impl Probe {
    fn new() -> Self {
        let start = Instant::now();
        Self {
            layer: TransactionLayer::new(Config::default()),
            start,
            now: start,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    fn drain(&mut self) -> Option<Instant> {
        loop {
            match self.layer.poll_output() {
                Some(Output::Transmit(t)) => {
                    assert_eq!(t.destination, peer());
                    self.sent
                        .push((self.now - self.start, Message::parse(t.bytes).unwrap()));
                }
                Some(Output::Event(e)) => self.events.push((self.now - self.start, e)),
                Some(Output::Timeout(at)) => return Some(at),
                None => return None,
                Some(_) => unreachable!(),
            }
        }
    }

    /// Runs timers until `offset` after the start.
    fn run_until(&mut self, offset: Duration) {
        let end = self.start + offset;
        while let Some(at) = self.drain() {
            if at > end {
                break;
            }
            self.now = at;
            self.layer.handle_input(at, Input::Timeout).unwrap();
        }
        self.now = end;
    }

    fn receive(&mut self, m: Message, transport: TransportKind) {
        self.layer
            .handle_input(
                self.now,
                Input::Receive(Received {
                    source: peer(),
                    transport,
                    message: m,
                }),
            )
            .unwrap();
        self.drain();
    }

    fn send(&mut self, m: Message, transport: TransportKind) -> TransactionId {
        let id = self
            .layer
            .send_request(self.now, m, peer(), transport)
            .unwrap();
        self.drain();
        id
    }

    fn respond(&mut self, id: TransactionId, m: Message) {
        self.layer.send_response(self.now, id, m).unwrap();
        self.drain();
    }

    fn sent_times(&self) -> Vec<Duration> {
        self.sent.iter().map(|(t, _)| *t).collect()
    }

    fn take_sent(&mut self) -> Vec<(Duration, Message)> {
        std::mem::take(&mut self.sent)
    }

    fn take_events(&mut self) -> Vec<(Duration, Event)> {
        std::mem::take(&mut self.events)
    }

    fn new_request(&mut self) -> TransactionId {
        let id = self
            .events
            .iter()
            .find_map(|(_, e)| match e {
                Event::Request { id, .. } => Some(*id),
                _ => None,
            })
            .expect("a request event");
        self.events.clear();
        id
    }
}

fn is_terminated(e: &Event, want: TransactionId) -> bool {
    matches!(e, Event::Terminated { id } if *id == want)
}

fn is_timeout(e: &Event, want: TransactionId) -> bool {
    matches!(e, Event::Timeout { id } if *id == want)
}

// ---- Figure 5: INVITE client transaction -------------------------------

#[test]
fn invite_client_calling_retransmits_with_timer_a_doubling_then_timer_b() {
    let mut p = Probe::new();
    let id = p.send(request("INVITE", "z9hG4bKa1"), TransportKind::Udp);
    assert_eq!(p.layer.state(id), Some(State::Calling));
    assert_eq!(p.layer.kind(id), Some(Kind::InviteClient));
    p.run_until(Duration::from_secs(40));
    // Sent at 0, then A at T1, 2T1, 4T1, ... (no cap at T2 for INVITE).
    let expect: Vec<Duration> = [0, 500, 1500, 3500, 7500, 15500, 31500]
        .into_iter()
        .map(ms)
        .collect();
    assert_eq!(p.sent_times(), expect);
    // Timer B at 64*T1: the TU learns of the timeout, the transaction ends.
    let ev = p.take_events();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].0, T1 * 64);
    assert!(is_timeout(&ev[0].1, id));
    assert!(is_terminated(&ev[1].1, id));
    assert_eq!(p.layer.state(id), None);
    assert!(p.layer.is_empty());
}

#[test]
fn invite_client_proceeding_stops_retransmissions_and_timer_b() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKa2");
    let id = p.send(inv.clone(), TransportKind::Udp);
    p.run_until(ms(600));
    p.receive(response_to(&inv, 180, Some("tt")), TransportKind::Udp);
    assert_eq!(p.layer.state(id), Some(State::Proceeding));
    p.run_until(Duration::from_secs(120));
    // The INVITE and one retransmission (A at T1), then nothing.
    assert_eq!(p.sent_times(), vec![ms(0), ms(500)]);
    let ev = p.take_events();
    assert!(
        matches!(&ev[..], [(_, Event::Response { response, .. })] if response.status() == Some(180))
    );
    assert_eq!(p.layer.state(id), Some(State::Proceeding));
    // Further provisionals reach the TU.
    p.receive(response_to(&inv, 183, Some("tt")), TransportKind::Udp);
    assert_eq!(p.take_events().len(), 1);
}

#[test]
fn invite_client_non_2xx_is_acked_inside_the_transaction_then_timer_d() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKa3");
    let id = p.send(inv.clone(), TransportKind::Udp);
    p.receive(response_to(&inv, 100, None), TransportKind::Udp);
    p.run_until(Duration::from_secs(1));
    let busy = response_to(&inv, 486, Some("busy1"));
    p.receive(busy.clone(), TransportKind::Udp);
    assert_eq!(p.layer.state(id), Some(State::Completed));
    let sent = p.take_sent();
    assert_eq!(sent.len(), 2);
    let ack = &sent[1].1;
    // 17.1.1.3: same Request-URI, Call-ID, From, CSeq number, top Via and
    // Route as the INVITE; the To of the response.
    assert_eq!(ack.method().unwrap().as_str(), "ACK");
    assert_eq!(ack.request_uri_str(), inv.request_uri_str());
    assert_eq!(ack.call_id().unwrap(), inv.call_id().unwrap());
    assert_eq!(ack.from().unwrap().tag(), Some("ft1"));
    assert_eq!(ack.to().unwrap().tag(), Some("busy1"));
    assert_eq!(ack.cseq().unwrap().seq, 7);
    assert_eq!(ack.cseq().unwrap().method.as_str(), "ACK");
    assert_eq!(ack.top_via().unwrap().branch(), Some("z9hG4bKa3"));
    assert_eq!(ack.vias().count(), 1);
    assert_eq!(ack.routes().count(), 1);
    let ev = p.take_events();
    assert_eq!(ev.len(), 2, "100 and 486 delivered");
    // A retransmitted 486 gets the ACK again and is not delivered.
    p.receive(busy, TransportKind::Udp);
    let again = p.take_sent();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.as_bytes(), ack.as_bytes());
    assert!(p.take_events().is_empty());
    // Timer D (32 s) ends it.
    p.run_until(Duration::from_secs(1) + Duration::from_secs(32) - ms(1));
    assert_eq!(p.layer.state(id), Some(State::Completed));
    p.run_until(Duration::from_secs(34));
    let ev = p.take_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, Duration::from_secs(33));
    assert!(is_terminated(&ev[0].1, id));
}

#[test]
fn invite_client_accepted_passes_2xx_retransmissions_until_timer_m() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKa4");
    let id = p.send(inv.clone(), TransportKind::Udp);
    p.run_until(ms(100));
    let ok = response_to(&inv, 200, Some("fork1"));
    p.receive(ok.clone(), TransportKind::Udp);
    assert_eq!(p.layer.state(id), Some(State::Accepted));
    // No ACK from the transaction for a 2xx, and no more retransmissions.
    p.run_until(Duration::from_secs(5));
    assert_eq!(p.sent_times(), vec![ms(0)]);
    // The retransmission, and a 2xx from another fork, both reach the TU.
    p.receive(ok, TransportKind::Udp);
    p.receive(response_to(&inv, 200, Some("fork2")), TransportKind::Udp);
    let ev = p.take_events();
    assert_eq!(ev.len(), 3);
    assert!(ev.iter().all(|(_, e)| matches!(e, Event::Response { .. })));
    // A late non-2xx is ignored.
    p.receive(response_to(&inv, 486, Some("fork3")), TransportKind::Udp);
    assert!(p.take_events().is_empty());
    assert_eq!(p.sent_times(), vec![ms(0)]);
    // Timer M = 64*T1 after the first 2xx.
    p.run_until(Duration::from_secs(40));
    let ev = p.take_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, ms(100) + T1 * 64);
    assert!(is_terminated(&ev[0].1, id));
}

#[test]
fn invite_client_over_tcp_never_retransmits_and_ends_at_once_after_non_2xx() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKa5");
    let id = p.send(inv.clone(), TransportKind::Tcp);
    p.run_until(Duration::from_secs(10));
    assert_eq!(p.sent_times(), vec![ms(0)]);
    p.receive(response_to(&inv, 603, Some("d")), TransportKind::Tcp);
    // The ACK is still sent; Timer D is zero.
    assert_eq!(p.sent.len(), 2);
    let ev = p.take_events();
    assert!(matches!(ev[0].1, Event::Response { .. }));
    assert!(is_terminated(&ev[1].1, id));
    // Timer B still applies over TCP.
    let mut p = Probe::new();
    let id = p.send(request("INVITE", "z9hG4bKa6"), TransportKind::Tcp);
    p.run_until(Duration::from_secs(33));
    assert_eq!(p.sent_times(), vec![ms(0)]);
    assert!(is_timeout(&p.events[0].1, id));
    assert_eq!(p.events[0].0, T1 * 64);
}

#[test]
fn invite_client_transport_error_informs_the_tu() {
    let mut p = Probe::new();
    let id = p.send(request("INVITE", "z9hG4bKa7"), TransportKind::Tcp);
    p.layer.transport_error(p.now, id).unwrap();
    p.drain();
    let ev = p.take_events();
    assert!(matches!(ev[0].1, Event::TransportError { id: e } if e == id));
    assert!(is_terminated(&ev[1].1, id));
    assert_eq!(
        p.layer.transport_error(p.now, id),
        Err(TransactionError::UnknownTransaction { id })
    );
}

// ---- Figure 6: non-INVITE client transaction -----------------------------

#[test]
fn non_invite_client_timer_e_doubles_to_t2_then_timer_f() {
    let mut p = Probe::new();
    let id = p.send(request("REGISTER", "z9hG4bKn1"), TransportKind::Udp);
    assert_eq!(p.layer.state(id), Some(State::Trying));
    p.run_until(Duration::from_secs(40));
    let mut expect = vec![ms(0), ms(500), ms(1500), ms(3500), ms(7500)];
    let mut t = ms(7500);
    while t + T2 < T1 * 64 {
        t += T2;
        expect.push(t);
    }
    assert_eq!(p.sent_times(), expect);
    let ev = p.take_events();
    assert_eq!(ev[0].0, T1 * 64);
    assert!(is_timeout(&ev[0].1, id));
    assert!(is_terminated(&ev[1].1, id));
}

#[test]
fn non_invite_client_proceeding_retransmits_every_t2() {
    let mut p = Probe::new();
    let req = request("BYE", "z9hG4bKn2");
    let id = p.send(req.clone(), TransportKind::Udp);
    p.run_until(ms(200));
    p.receive(response_to(&req, 100, None), TransportKind::Udp);
    assert_eq!(p.layer.state(id), Some(State::Proceeding));
    p.run_until(Duration::from_secs(13));
    // E was armed at T1 before the 100; from then on it is T2.
    assert_eq!(
        p.sent_times(),
        vec![ms(0), ms(500), ms(4500), ms(8500), ms(12500)]
    );
    // A final response completes it; Timer K = T4 ends it.
    p.receive(response_to(&req, 200, Some("x")), TransportKind::Udp);
    assert_eq!(p.layer.state(id), Some(State::Completed));
    p.receive(response_to(&req, 200, Some("x")), TransportKind::Udp);
    p.run_until(Duration::from_secs(30));
    assert_eq!(p.sent.len(), 5, "no retransmission once Completed");
    let ev = p.take_events();
    let responses = ev
        .iter()
        .filter(|(_, e)| matches!(e, Event::Response { .. }))
        .count();
    assert_eq!(
        responses, 2,
        "the 100 and one 200: the retransmission is absorbed"
    );
    let (at, last) = ev.last().unwrap();
    assert!(is_terminated(last, id));
    assert_eq!(*at, Duration::from_secs(13) + T4);
}

#[test]
fn non_invite_client_over_tcp_ends_at_once() {
    let mut p = Probe::new();
    let req = request("OPTIONS", "z9hG4bKn3");
    let id = p.send(req.clone(), TransportKind::Tls);
    p.run_until(Duration::from_secs(10));
    assert_eq!(p.sent_times(), vec![ms(0)]);
    p.receive(response_to(&req, 200, Some("x")), TransportKind::Tls);
    let ev = p.take_events();
    assert!(is_terminated(&ev[1].1, id));
    let mut p = Probe::new();
    let id = p.send(request("OPTIONS", "z9hG4bKn4"), TransportKind::Tcp);
    p.run_until(Duration::from_secs(40));
    assert!(is_timeout(&p.events[0].1, id));
    assert_eq!(p.sent.len(), 1);
}

// ---- Figure 7: INVITE server transaction ---------------------------------

#[test]
fn invite_server_sends_100_trying_when_the_tu_is_slow() {
    let mut p = Probe::new();
    p.receive(request("INVITE", "z9hG4bKs1"), TransportKind::Udp);
    let id = p.new_request();
    assert_eq!(p.layer.kind(id), Some(Kind::InviteServer));
    assert_eq!(p.layer.state(id), Some(State::Proceeding));
    p.run_until(ms(199));
    assert!(p.sent.is_empty());
    p.run_until(ms(250));
    let sent = p.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, ms(200));
    assert_eq!(sent[0].1.status(), Some(100));
    // A retransmitted INVITE gets the 100 again, and is not passed up.
    p.receive(request("INVITE", "z9hG4bKs1"), TransportKind::Udp);
    assert_eq!(p.take_sent()[0].1.status(), Some(100));
    assert!(p.take_events().is_empty());
}

#[test]
fn invite_server_no_100_when_the_tu_answers_in_time() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKs2");
    p.receive(inv.clone(), TransportKind::Udp);
    let id = p.new_request();
    p.run_until(ms(150));
    p.respond(id, response_to(&inv, 180, Some("u1")));
    p.run_until(ms(1000));
    let sent = p.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.status(), Some(180));
    // A retransmitted INVITE gets the last provisional.
    p.receive(inv, TransportKind::Udp);
    assert_eq!(p.take_sent()[0].1.status(), Some(180));
}

#[test]
fn invite_server_completed_retransmits_with_timer_g_until_timer_h() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKs3");
    p.receive(inv.clone(), TransportKind::Udp);
    let id = p.new_request();
    p.respond(id, response_to(&inv, 486, Some("u2")));
    assert_eq!(p.layer.state(id), Some(State::Completed));
    p.run_until(Duration::from_secs(40));
    let mut expect = vec![ms(0), ms(500), ms(1500), ms(3500), ms(7500)];
    let mut t = ms(7500);
    while t + T2 < T1 * 64 {
        t += T2;
        expect.push(t);
    }
    assert_eq!(p.sent_times(), expect);
    assert!(p.sent.iter().all(|(_, m)| m.status() == Some(486)));
    // Timer H: the ACK never came, the TU is told.
    let ev = p.take_events();
    assert_eq!(ev[0].0, T1 * 64);
    assert!(is_timeout(&ev[0].1, id));
    assert!(is_terminated(&ev[1].1, id));
}

#[test]
fn invite_server_ack_confirms_then_timer_i() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKs4");
    p.receive(inv.clone(), TransportKind::Udp);
    let id = p.new_request();
    let busy = response_to(&inv, 486, Some("u3"));
    p.respond(id, busy.clone());
    p.run_until(ms(600));
    // A retransmitted INVITE in Completed gets the final response.
    p.receive(inv.clone(), TransportKind::Udp);
    assert_eq!(p.sent.len(), 3);
    let ack = carevox_sip::transaction::ack_for(&inv, &busy).unwrap();
    p.receive(ack.clone(), TransportKind::Udp);
    assert_eq!(p.layer.state(id), Some(State::Confirmed));
    // No event for the ACK of a non-2xx; retransmissions stop; ACKs absorbed.
    assert!(p.take_events().is_empty());
    p.receive(ack, TransportKind::Udp);
    p.run_until(ms(600) + T4 - ms(1));
    assert_eq!(p.sent.len(), 3);
    assert_eq!(p.layer.state(id), Some(State::Confirmed));
    p.run_until(ms(600) + T4);
    let ev = p.take_events();
    assert_eq!(ev.len(), 1);
    assert!(is_terminated(&ev[0].1, id));
}

#[test]
fn invite_server_accepted_absorbs_invites_passes_acks_until_timer_l() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKs5");
    p.receive(inv.clone(), TransportKind::Udp);
    let id = p.new_request();
    let ok = response_to(&inv, 200, Some("u4"));
    p.respond(id, ok.clone());
    assert_eq!(p.layer.state(id), Some(State::Accepted));
    p.run_until(Duration::from_secs(3));
    // The transaction does not retransmit the 2xx itself...
    assert_eq!(p.sent.len(), 1);
    // ...the TU does, through it.
    p.respond(id, ok.clone());
    assert_eq!(p.sent.len(), 2);
    // A retransmitted INVITE is absorbed: no event, nothing sent.
    p.receive(inv.clone(), TransportKind::Udp);
    assert_eq!(p.sent.len(), 2);
    assert!(p.take_events().is_empty());
    // An ACK matching the transaction is passed up with it.
    let ack = carevox_sip::transaction::ack_for(&inv, &ok).unwrap();
    p.receive(ack, TransportKind::Udp);
    let ev = p.take_events();
    assert!(matches!(ev[0].1, Event::Ack { transaction: Some(t), .. } if t == id));
    // Only 2xx may follow a 2xx.
    assert!(matches!(
        p.layer
            .send_response(p.now, id, response_to(&inv, 486, Some("u4"))),
        Err(TransactionError::InvalidState { .. })
    ));
    p.run_until(Duration::from_secs(40));
    let ev = p.take_events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, T1 * 64);
    assert!(is_terminated(&ev[0].1, id));
}

#[test]
fn invite_server_over_tcp_no_timer_g_and_timer_i_zero() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKs6");
    p.receive(inv.clone(), TransportKind::Tcp);
    let id = p.new_request();
    let busy = response_to(&inv, 480, Some("u5"));
    p.respond(id, busy.clone());
    p.run_until(Duration::from_secs(10));
    // 100 Trying is still sent for a slow TU over TCP? No: the TU answered
    // at once, so only the 480, never retransmitted.
    assert_eq!(p.sent_times(), vec![ms(0)]);
    let ack = carevox_sip::transaction::ack_for(&inv, &busy).unwrap();
    p.receive(ack, TransportKind::Tcp);
    let ev = p.take_events();
    assert!(is_terminated(&ev[0].1, id));
    // Timer H runs over TCP too.
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKs7");
    p.receive(inv.clone(), TransportKind::Tcp);
    let id = p.new_request();
    p.respond(id, response_to(&inv, 480, Some("u6")));
    p.run_until(Duration::from_secs(40));
    assert_eq!(p.sent.len(), 1);
    assert!(is_timeout(&p.events[0].1, id));
}

// ---- Figure 8: non-INVITE server transaction -----------------------------

#[test]
fn non_invite_server_trying_proceeding_completed_then_timer_j() {
    let mut p = Probe::new();
    let reg = request("REGISTER", "z9hG4bKr1");
    p.receive(reg.clone(), TransportKind::Udp);
    let id = p.new_request();
    assert_eq!(p.layer.kind(id), Some(Kind::NonInviteServer));
    assert_eq!(p.layer.state(id), Some(State::Trying));
    // Trying: retransmissions are absorbed silently; no automatic 100.
    p.run_until(Duration::from_secs(1));
    p.receive(reg.clone(), TransportKind::Udp);
    assert!(p.sent.is_empty());
    assert!(p.take_events().is_empty());
    // Proceeding: retransmissions get the provisional.
    p.respond(id, response_to(&reg, 100, None));
    assert_eq!(p.layer.state(id), Some(State::Proceeding));
    p.receive(reg.clone(), TransportKind::Udp);
    assert_eq!(p.take_sent().len(), 2);
    // Completed: retransmissions get the final response; J = 64*T1.
    p.respond(id, response_to(&reg, 401, Some("r")));
    assert_eq!(p.layer.state(id), Some(State::Completed));
    p.receive(reg.clone(), TransportKind::Udp);
    let sent = p.take_sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].1.status(), Some(401));
    assert!(matches!(
        p.layer
            .send_response(p.now, id, response_to(&reg, 200, Some("r"))),
        Err(TransactionError::InvalidState { .. })
    ));
    p.run_until(Duration::from_secs(1) + T1 * 64 - ms(1));
    assert_eq!(p.layer.state(id), Some(State::Completed));
    p.run_until(Duration::from_secs(1) + T1 * 64);
    assert!(is_terminated(&p.take_events()[0].1, id));
    // After it ends, the same request is new again.
    p.receive(reg, TransportKind::Udp);
    assert!(matches!(p.events[0].1, Event::Request { .. }));
}

#[test]
fn non_invite_server_over_tcp_timer_j_is_zero() {
    let mut p = Probe::new();
    let reg = request("REGISTER", "z9hG4bKr2");
    p.receive(reg.clone(), TransportKind::Tcp);
    let id = p.new_request();
    p.respond(id, response_to(&reg, 200, Some("r")));
    assert!(is_terminated(&p.take_events()[0].1, id));
    assert_eq!(p.layer.state(id), None);
}

// ---- Matching -------------------------------------------------------------

#[test]
fn responses_match_by_branch_and_method_only() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKm1");
    let id = p.send(inv.clone(), TransportKind::Udp);
    // Same branch, other CSeq method: not this transaction.
    let other = msg(
        &String::from_utf8_lossy(response_to(&inv, 180, Some("a")).as_bytes())
            .replace("7 INVITE", "7 CANCEL"),
    );
    p.receive(other, TransportKind::Udp);
    assert!(matches!(
        p.take_events()[0].1,
        Event::UnmatchedResponse { .. }
    ));
    // Other branch: not this transaction.
    let stray = response_to(&request("INVITE", "z9hG4bKm2"), 200, Some("a"));
    p.receive(stray, TransportKind::Udp);
    assert!(matches!(
        p.take_events()[0].1,
        Event::UnmatchedResponse { .. }
    ));
    assert_eq!(p.layer.state(id), Some(State::Calling));
}

#[test]
fn requests_match_by_branch_and_sent_by() {
    let mut p = Probe::new();
    // As a proxy: the second request would otherwise be a merged one.
    p.layer = TransactionLayer::new(Config::default().with_reject_merged_requests(false));
    let a = request("OPTIONS", "z9hG4bKm3");
    p.receive(a.clone(), TransportKind::Udp);
    p.new_request();
    // Same branch from another sent-by is another transaction.
    let b =
        msg(&String::from_utf8_lossy(a.as_bytes()).replace("192.0.2.1:5060;", "192.0.2.9:5060;"));
    p.receive(b, TransportKind::Udp);
    p.new_request();
    p.receive(a, TransportKind::Udp);
    assert!(p.take_events().is_empty());
    assert_eq!(p.layer.len(), 2);
}

#[test]
fn cancel_is_matched_to_its_invite() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKc1");
    p.receive(inv.clone(), TransportKind::Udp);
    let invite_id = p.new_request();
    let cancel = carevox_sip::transaction::cancel_for(&inv).unwrap();
    p.receive(cancel, TransportKind::Udp);
    let ev = p.take_events();
    assert!(matches!(
        ev[0].1,
        Event::Request { cancels: Some(c), id, .. } if c == invite_id && id != invite_id
    ));
    // A CANCEL for nothing says so.
    let other = msg(
        &String::from_utf8_lossy(request("INVITE", "z9hG4bKc2").as_bytes())
            .replace("call-1@", "call-2@"),
    );
    let lone = carevox_sip::transaction::cancel_for(&other).unwrap();
    p.receive(lone, TransportKind::Udp);
    assert!(matches!(
        p.take_events()[0].1,
        Event::Request { cancels: None, .. }
    ));
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKc3");
    let id = p.send(inv.clone(), TransportKind::Udp);
    let cancel = p.layer.send_cancel(p.now, id).unwrap();
    p.drain();
    p.run_until(ms(100));
    assert_eq!(p.sent.len(), 1, "no CANCEL before a provisional (9.1)");
    p.receive(response_to(&inv, 180, Some("t")), TransportKind::Udp);
    let sent = p.take_sent();
    assert_eq!(sent.len(), 2);
    let c = &sent[1].1;
    assert_eq!(c.method().unwrap().as_str(), "CANCEL");
    assert_eq!(c.top_via().unwrap().branch(), Some("z9hG4bKc3"));
    assert_eq!(c.cseq().unwrap().seq, 7);
    assert_eq!(c.to().unwrap().tag(), None);
    assert_eq!(p.layer.state(cancel), Some(State::Trying));
    // The CANCEL's 200 reaches its own transaction, not the INVITE's.
    p.receive(response_to(c, 200, Some("t")), TransportKind::Udp);
    assert_eq!(p.layer.state(cancel), Some(State::Completed));
    assert_eq!(p.layer.state(id), Some(State::Proceeding));
    // A CANCEL held for an INVITE that ends first is never sent.
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKc4");
    let id = p.send(inv.clone(), TransportKind::Udp);
    let cancel = p.layer.send_cancel(p.now, id).unwrap();
    p.receive(response_to(&inv, 486, Some("t")), TransportKind::Udp);
    assert_eq!(p.layer.state(cancel), None);
    assert!(
        p.sent
            .iter()
            .all(|(_, m)| m.method().map(|m| m.as_str()) != Some("CANCEL"))
    );
}

#[test]
fn merged_requests_get_482() {
    let mut p = Probe::new();
    let first = request("INVITE", "z9hG4bKg1");
    p.receive(first, TransportKind::Udp);
    p.new_request();
    // The same request forked back through another path: other branch.
    let merged = request("INVITE", "z9hG4bKg2");
    p.receive(merged.clone(), TransportKind::Udp);
    let ev = p.take_events();
    assert!(matches!(ev[0].1, Event::MergedRequest { .. }));
    let sent = p.take_sent();
    assert_eq!(sent[0].1.status(), Some(482));
    // Its retransmission gets the 482 again.
    p.receive(merged, TransportKind::Udp);
    assert_eq!(p.take_sent()[0].1.status(), Some(482));
    // A proxy does not detect merges.
    let mut p = Probe::new();
    p.layer = TransactionLayer::new(Config::default().with_reject_merged_requests(false));
    p.receive(request("INVITE", "z9hG4bKg1"), TransportKind::Udp);
    p.receive(request("INVITE", "z9hG4bKg2"), TransportKind::Udp);
    let requests = p
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Request { .. }))
        .count();
    assert_eq!(requests, 2);
}

#[test]
fn rfc2543_requests_match_without_the_magic_cookie() {
    let mut p = Probe::new();
    let inv = request("INVITE", "old1");
    p.receive(inv.clone(), TransportKind::Udp);
    let id = p.new_request();
    // A retransmission is recognised by Request-URI, tags, Call-ID, CSeq, Via.
    p.receive(inv.clone(), TransportKind::Udp);
    assert!(p.take_events().is_empty());
    let busy = response_to(&inv, 486, Some("t2543"));
    p.respond(id, busy.clone());
    // The ACK matches when its To tag is the response's.
    let wrong =
        carevox_sip::transaction::ack_for(&inv, &response_to(&inv, 486, Some("other"))).unwrap();
    p.receive(wrong, TransportKind::Udp);
    assert_eq!(p.layer.state(id), Some(State::Completed));
    let ack = carevox_sip::transaction::ack_for(&inv, &busy).unwrap();
    p.receive(ack, TransportKind::Udp);
    assert_eq!(p.layer.state(id), Some(State::Confirmed));
}

#[test]
fn the_cap_on_live_transactions_is_a_typed_error() {
    let mut p = Probe::new();
    p.layer = TransactionLayer::new(Config::default().with_max_transactions(2));
    p.send(request("OPTIONS", "z9hG4bKcap1"), TransportKind::Udp);
    p.send(request("OPTIONS", "z9hG4bKcap2"), TransportKind::Udp);
    let err = p
        .layer
        .send_request(
            p.now,
            request("OPTIONS", "z9hG4bKcap3"),
            peer(),
            TransportKind::Udp,
        )
        .unwrap_err();
    assert_eq!(err, TransactionError::TooManyTransactions { limit: 2 });
    let err = p
        .layer
        .handle_input(
            p.now,
            Input::Receive(Received {
                source: peer(),
                transport: TransportKind::Udp,
                message: request("OPTIONS", "z9hG4bKcap4"),
            }),
        )
        .unwrap_err();
    assert_eq!(err, TransactionError::TooManyTransactions { limit: 2 });
    assert_eq!(p.layer.len(), 2);
}

#[test]
fn bad_requests_to_send_are_refused() {
    let mut l = TransactionLayer::new(Config::default());
    let now = Instant::now();
    let mut err = |m| l_send(&mut l, now, m);
    fn l_send(l: &mut TransactionLayer, now: Instant, m: Message) -> TransactionError {
        l.send_request(now, m, peer(), TransportKind::Udp)
            .unwrap_err()
    }
    assert_eq!(
        err(request("ACK", "z9hG4bKb1")),
        TransactionError::AckNotTransactional
    );
    let mut l2 = TransactionLayer::new(Config::default());
    assert_eq!(
        l_send(&mut l2, now, request("OPTIONS", "old")),
        TransactionError::MissingBranch
    );
    l2.send_request(
        now,
        request("OPTIONS", "z9hG4bKb2"),
        peer(),
        TransportKind::Udp,
    )
    .unwrap();
    assert_eq!(
        l_send(&mut l2, now, request("OPTIONS", "z9hG4bKb2")),
        TransactionError::DuplicateBranch
    );
}

#[test]
fn a_cancelled_invite_without_final_response_times_out_after_64_t1() {
    let mut p = Probe::new();
    let inv = request("INVITE", "z9hG4bKc5");
    let id = p.send(inv.clone(), TransportKind::Udp);
    p.receive(response_to(&inv, 180, Some("t")), TransportKind::Udp);
    p.run_until(Duration::from_secs(100));
    assert_eq!(
        p.layer.state(id),
        Some(State::Proceeding),
        "no Timer B once Proceeding"
    );
    p.layer.send_cancel(p.now, id).unwrap();
    p.drain();
    p.take_events();
    p.run_until(Duration::from_secs(100) + T1 * 64 - ms(1));
    assert_eq!(p.layer.state(id), Some(State::Proceeding));
    p.run_until(Duration::from_secs(100) + T1 * 64);
    assert!(p.events.iter().any(|(_, e)| is_timeout(e, id)));
    assert_eq!(p.layer.state(id), None);
}
