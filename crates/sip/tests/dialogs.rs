//! Dialog rules of the user agent core (RFC 3261 sections 12, 13 and 14,
//! RFC 3311), each driven through the public run loop against messages
//! written by hand for the peer.

// Instant::now is only the origin of virtual time; no test reads the clock again.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use carevox_sip::dialog::{
    DialogError, DialogId, DialogRole, DialogState, Outgoing, TerminationReason, UaConfig, UaEvent,
    UaOutput, UserAgent,
};
use carevox_sip::transaction::{Input, Received, Transmit, TransportKind};
use carevox_sip::{Message, MessageBuilder};

fn peer() -> SocketAddr {
    "192.0.2.20:5060".parse().unwrap()
}

fn msg(s: &str) -> Message {
    Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
}

struct Ua {
    ua: UserAgent,
    start: Instant,
    now: Instant,
    sent: Vec<(Duration, Transmit)>,
    events: Vec<UaEvent>,
    /// The transport messages arrive on.
    transport: TransportKind,
}

impl Ua {
    fn new(config: UaConfig) -> Self {
        let start = Instant::now();
        Ua {
            ua: UserAgent::new(config, Arc::new(ring::rand::SystemRandom::new())),
            start,
            now: start,
            sent: Vec::new(),
            events: Vec::new(),
            transport: TransportKind::Udp,
        }
    }

    fn alice() -> Self {
        Self::new(UaConfig::new("192.0.2.10:5060", "<sip:alice@192.0.2.10>"))
    }

    fn drain(&mut self) -> Option<Instant> {
        loop {
            match self.ua.poll_output() {
                Some(UaOutput::Transmit(t)) => self.sent.push((self.now - self.start, t)),
                Some(UaOutput::Event(e)) => self.events.push(e),
                Some(UaOutput::Timeout(at)) => return Some(at),
                None => return None,
                Some(_) => unreachable!(),
            }
        }
    }

    fn run_until(&mut self, offset: Duration) {
        let end = self.start + offset;
        while let Some(at) = self.drain() {
            if at > end {
                break;
            }
            self.now = at;
            self.ua.handle_input(at, Input::Timeout).unwrap();
        }
        self.now = end;
    }

    fn receive(&mut self, m: Message) {
        self.ua
            .handle_input(
                self.now,
                Input::Receive(Received {
                    source: peer(),
                    transport: self.transport,
                    message: m,
                }),
            )
            .unwrap();
        self.drain();
    }

    fn take_sent(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.sent)
            .into_iter()
            .map(|(_, t)| Message::parse(t.bytes).unwrap())
            .collect()
    }

    fn take_events(&mut self) -> Vec<UaEvent> {
        std::mem::take(&mut self.events)
    }

    fn invite(&mut self) -> Message {
        let req = Outgoing::new(
            "INVITE",
            "sip:bob@192.0.2.20",
            "<sip:alice@example.org>",
            "<sip:bob@example.org>",
            peer(),
            TransportKind::Udp,
        );
        self.ua.send_request(self.now, &req).unwrap();
        self.drain();
        self.take_sent().remove(0)
    }
}

fn reply(req: &Message, status: u16, tag: &str, extra: &[(&str, &str)]) -> Message {
    let mut b = MessageBuilder::response_to(req, status, "R")
        .unwrap()
        .to_tag(tag)
        .unwrap();
    for (n, v) in extra {
        b = b.header(n, v).unwrap();
    }
    b.build().unwrap()
}

const INCOMING: &str = "INVITE sip:alice@192.0.2.10 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKin1\r\n\
Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.org>;tag=bobtag\r\n\
To: <sip:alice@example.org>\r\n\
Call-ID: in-call-1\r\n\
CSeq: 10 INVITE\r\n\
Contact: <sip:bob@192.0.2.20:5062>\r\n\
Content-Length: 0\r\n\r\n";

fn request_id(events: &[UaEvent]) -> carevox_sip::transaction::TransactionId {
    events
        .iter()
        .find_map(|e| match e {
            UaEvent::Request { id, .. } => Some(*id),
            _ => None,
        })
        .expect("a request")
}

fn dialog_of(events: &[UaEvent]) -> DialogId {
    events
        .iter()
        .find_map(|e| match e {
            UaEvent::DialogConfirmed { dialog } | UaEvent::DialogEarly { dialog } => Some(*dialog),
            _ => None,
        })
        .expect("a dialog")
}

#[test]
fn a_forked_invite_makes_one_early_dialog_per_to_tag_and_acks_each_2xx() {
    let mut a = Ua::alice();
    let inv = a.invite();
    let c1 = [("Contact", "<sip:bob@192.0.2.21>")];
    let c2 = [("Contact", "<sip:bob@192.0.2.22>")];
    a.receive(reply(&inv, 180, "fork1", &c1));
    a.receive(reply(&inv, 180, "fork2", &c2));
    let early: Vec<_> = a
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, UaEvent::DialogEarly { .. }))
        .collect();
    assert_eq!(early.len(), 2);
    assert_eq!(a.ua.dialogs().count(), 2);
    assert!(a.ua.dialogs().all(|d| d.state() == DialogState::Early));
    // Both forks answer: two confirmed dialogs, each ACKed at its own target.
    let ok1 = reply(&inv, 200, "fork1", &c1);
    a.receive(ok1.clone());
    a.receive(reply(&inv, 200, "fork2", &c2));
    let confirmed = a
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, UaEvent::DialogConfirmed { .. }))
        .count();
    assert_eq!(confirmed, 2);
    let acks = std::mem::take(&mut a.sent);
    assert_eq!(acks.len(), 2);
    let dests: Vec<_> = acks.iter().map(|(_, t)| t.destination).collect();
    assert_eq!(
        dests,
        vec![
            "192.0.2.21:5060".parse().unwrap(),
            "192.0.2.22:5060".parse::<SocketAddr>().unwrap()
        ]
    );
    let ack = Message::parse(acks[0].1.bytes.clone()).unwrap();
    assert_eq!(ack.method().unwrap().as_str(), "ACK");
    assert_eq!(ack.request_uri_str(), Some("sip:bob@192.0.2.21"));
    assert_eq!(ack.cseq().unwrap().seq, inv.cseq().unwrap().seq);
    assert_ne!(
        ack.top_via().unwrap().branch(),
        inv.top_via().unwrap().branch(),
        "the ACK for a 2xx is a transaction of its own"
    );
    assert_eq!(ack.to().unwrap().tag(), Some("fork1"));
    // A retransmitted 2xx gets the same ACK again, and no event.
    a.receive(ok1);
    assert!(a.take_events().is_empty());
    let again = std::mem::take(&mut a.sent);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.bytes, acks[0].1.bytes);
}

#[test]
fn a_non_2xx_ends_every_early_dialog() {
    let mut a = Ua::alice();
    let inv = a.invite();
    a.receive(reply(&inv, 183, "f1", &[("Contact", "<sip:b@192.0.2.21>")]));
    a.receive(reply(&inv, 180, "f2", &[("Contact", "<sip:b@192.0.2.22>")]));
    a.take_events();
    a.receive(reply(&inv, 486, "f2", &[]));
    let ended = a
        .take_events()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                UaEvent::DialogTerminated {
                    reason: TerminationReason::EarlyFailure,
                    ..
                }
            )
        })
        .count();
    assert_eq!(ended, 2);
    assert_eq!(a.ua.dialogs().count(), 0);
}

#[test]
fn uas_dialog_route_set_target_and_2xx_retransmission_until_ack() {
    let mut a = Ua::alice();
    let inv = msg(INCOMING);
    a.receive(inv.clone());
    let id = request_id(&a.take_events());
    let d =
        a.ua.respond(a.now, id, 200, "OK", &[], None)
            .unwrap()
            .unwrap();
    a.drain();
    let dialog = a.ua.dialog(d).unwrap().clone();
    assert_eq!(dialog.role(), DialogRole::Uas);
    assert_eq!(dialog.state(), DialogState::Confirmed);
    // 12.1.1: the route set is the Record-Route in order; the target the Contact.
    assert_eq!(
        dialog.route_set().expose(),
        &vec![
            "<sip:p2.example;lr>".to_owned(),
            "<sip:p1.example;lr>".to_owned()
        ]
    );
    assert_eq!(dialog.remote_target().expose(), "sip:bob@192.0.2.20:5062");
    assert_eq!(dialog.remote_seq(), Some(10));
    assert_eq!(dialog.local_seq(), None);
    // The 2xx copies the Record-Route and carries the local tag and Contact.
    let ok = a.take_sent().remove(0);
    assert_eq!(ok.record_routes().count(), 2);
    assert_eq!(ok.to().unwrap().tag(), Some(dialog.local_tag()));
    assert_eq!(ok.contacts().count(), 1);
    // 13.3.1.4: retransmitted from T1, doubling to T2.
    a.run_until(Duration::from_secs(12));
    let times: Vec<_> = a.sent.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(times, vec![500, 1500, 3500, 7500, 11500]);
    a.sent.clear();
    a.events.clear();
    // The ACK stops them.
    let ack = msg(&INCOMING
        .replace("INVITE sip", "ACK sip")
        .replace("10 INVITE", "10 ACK")
        .replace("z9hG4bKin1", "z9hG4bKack1")
        .replace(
            "To: <sip:alice@example.org>",
            &format!("To: <sip:alice@example.org>;tag={}", dialog.local_tag()),
        ));
    a.receive(ack);
    assert!(matches!(a.take_events()[..], [UaEvent::Ack { dialog, .. }] if dialog == d));
    a.run_until(Duration::from_secs(60));
    assert!(a.sent.is_empty());
    assert_eq!(a.ua.dialog(d).unwrap().state(), DialogState::Confirmed);
}

#[test]
fn uas_without_ack_gives_up_after_64_t1_with_bye() {
    let mut a = Ua::alice();
    a.receive(msg(INCOMING));
    let id = request_id(&a.take_events());
    let d =
        a.ua.respond(a.now, id, 200, "OK", &[], None)
            .unwrap()
            .unwrap();
    a.run_until(Duration::from_secs(40));
    let bye = a
        .sent
        .iter()
        .find(|(_, t)| t.bytes.starts_with(b"BYE "))
        .expect("a BYE");
    assert_eq!(bye.0, Duration::from_secs(32));
    // The BYE follows the route set: to the first route's URI (a name, so
    // the address the dialog's messages came from), Request-URI the target.
    let m = Message::parse(bye.1.bytes.clone()).unwrap();
    assert_eq!(m.request_uri_str(), Some("sip:bob@192.0.2.20:5062"));
    assert_eq!(m.routes().count(), 2);
    assert_eq!(bye.1.destination, peer());
    assert!(a.events.iter().any(|e| matches!(
        e,
        UaEvent::DialogTerminated { dialog, reason: TerminationReason::AckTimeout } if *dialog == d
    )));
    assert!(a.ua.dialog(d).is_none());
}

fn confirmed_uac(a: &mut Ua) -> (Message, DialogId) {
    let inv = a.invite();
    a.receive(reply(
        &inv,
        200,
        "b1",
        &[
            ("Contact", "<sip:bob@192.0.2.20:5062>"),
            ("Record-Route", "<sip:192.0.2.30;lr>, <sip:192.0.2.31;lr>"),
        ],
    ));
    let d = dialog_of(&a.take_events());
    a.sent.clear();
    (inv, d)
}

#[test]
fn uac_requests_in_the_dialog_follow_section_12_2_1_1() {
    let mut a = Ua::alice();
    let (inv, d) = confirmed_uac(&mut a);
    let dialog = a.ua.dialog(d).unwrap();
    // 12.1.2: the route set is the Record-Route reversed.
    assert_eq!(
        dialog.route_set().expose(),
        &vec![
            "<sip:192.0.2.31;lr>".to_owned(),
            "<sip:192.0.2.30;lr>".to_owned()
        ]
    );
    let seq = inv.cseq().unwrap().seq;
    a.ua.send_in_dialog(a.now, d, "INFO", &[], None).unwrap();
    a.drain();
    let (_, t) = a.sent.pop().unwrap();
    // Loose routing: to the first route, Request-URI the remote target.
    assert_eq!(t.destination, "192.0.2.31:5060".parse().unwrap());
    let info = Message::parse(t.bytes).unwrap();
    assert_eq!(info.request_uri_str(), Some("sip:bob@192.0.2.20:5062"));
    assert_eq!(info.routes().count(), 2);
    assert_eq!(info.cseq().unwrap().seq, seq + 1);
    assert_eq!(info.call_id().unwrap(), inv.call_id().unwrap());
    assert_eq!(info.from().unwrap().tag(), inv.from().unwrap().tag());
    assert_eq!(info.to().unwrap().tag(), Some("b1"));
    assert_eq!(a.ua.dialog(d).unwrap().local_seq(), Some(seq + 1));
}

#[test]
fn update_and_re_invite_refresh_the_remote_target() {
    // UAC side: the 2xx to UPDATE carries the new target.
    let mut a = Ua::alice();
    let (_, d) = confirmed_uac(&mut a);
    a.ua.send_in_dialog(a.now, d, "UPDATE", &[], None).unwrap();
    a.drain();
    let update = Message::parse(a.sent.pop().unwrap().1.bytes).unwrap();
    assert_eq!(
        update.contacts().count(),
        1,
        "a target refresh carries Contact"
    );
    a.receive(reply(
        &update,
        200,
        "b1",
        &[("Contact", "<sip:bob@192.0.2.99>")],
    ));
    assert_eq!(
        a.ua.dialog(d).unwrap().remote_target().expose(),
        "sip:bob@192.0.2.99"
    );
    // UAS side: a re-INVITE's Contact replaces the target on receipt.
    let mut b = Ua::alice();
    b.receive(msg(INCOMING));
    let id = request_id(&b.take_events());
    let d =
        b.ua.respond(b.now, id, 200, "OK", &[], None)
            .unwrap()
            .unwrap();
    let tag = b.ua.dialog(d).unwrap().local_tag().to_owned();
    let reinvite = INCOMING
        .replace("z9hG4bKin1", "z9hG4bKin2")
        .replace("10 INVITE", "11 INVITE")
        .replace(
            "To: <sip:alice@example.org>",
            &format!("To: <sip:alice@example.org>;tag={tag}"),
        )
        .replace("192.0.2.20:5062", "192.0.2.77:5062");
    b.receive(msg(&reinvite));
    assert_eq!(
        b.ua.dialog(d).unwrap().remote_target().expose(),
        "sip:bob@192.0.2.77:5062"
    );
    assert_eq!(b.ua.dialog(d).unwrap().remote_seq(), Some(11));
    assert!(
        b.take_events()
            .iter()
            .any(|e| matches!(e, UaEvent::Request { dialog: Some(x), .. } if *x == d))
    );
}

#[test]
fn requests_outside_a_dialog_get_481_and_old_cseq_500() {
    let mut b = Ua::alice();
    b.receive(msg(INCOMING));
    let id = request_id(&b.take_events());
    let d =
        b.ua.respond(b.now, id, 200, "OK", &[], None)
            .unwrap()
            .unwrap();
    let tag = b.ua.dialog(d).unwrap().local_tag().to_owned();
    b.drain();
    b.sent.clear();
    b.events.clear();
    let in_dialog = |method: &str, seq: u32, branch: &str, to_tag: &str| {
        msg(&INCOMING
            .replace("INVITE sip", &format!("{method} sip"))
            .replace("10 INVITE", &format!("{seq} {method}"))
            .replace("z9hG4bKin1", branch)
            .replace(
                "To: <sip:alice@example.org>",
                &format!("To: <sip:alice@example.org>;tag={to_tag}"),
            ))
    };
    b.receive(in_dialog("INFO", 11, "z9hG4bKx1", "nosuchtag"));
    assert_eq!(b.take_sent()[0].status(), Some(481));
    b.receive(in_dialog("INFO", 9, "z9hG4bKx2", &tag));
    assert_eq!(b.take_sent()[0].status(), Some(500));
    assert!(b.take_events().is_empty());
    // BYE ends the dialog with 200.
    b.receive(in_dialog("BYE", 12, "z9hG4bKx3", &tag));
    assert_eq!(b.take_sent()[0].status(), Some(200));
    assert!(b.take_events().iter().any(|e| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: TerminationReason::RemoteBye,
            ..
        }
    )));
    assert!(b.ua.dialog(d).is_none());
}

const SUBSCRIBE: &str = "SUBSCRIBE sip:alice@192.0.2.10 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKsub1\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@example.org>;tag=phonetag\r\n\
To: <sip:alice@example.org>\r\n\
Call-ID: sub-1\r\n\
CSeq: 5 SUBSCRIBE\r\n\
Event: message-summary\r\n\
Expires: 600\r\n\
Contact: <sip:alice@192.0.2.20:5062>\r\n\
Content-Length: 0\r\n\r\n";

/// RFC 6665 as the notifier: a 2xx to SUBSCRIBE creates a confirmed dialog
/// at once (no ACK), NOTIFY goes in it, a refreshing SUBSCRIBE arrives in
/// it and moves the target, and once forgotten the dialog answers 481.
/// Over UDP and over TCP (where the 2xx ends the server transaction at
/// once).
#[test]
fn a_2xx_to_subscribe_makes_a_dialog_for_notify_until_forgotten() {
    subscription_over(TransportKind::Udp, "UDP");
    subscription_over(TransportKind::Tcp, "TCP");
}

fn subscription_over(transport: TransportKind, via: &str) {
    let subscribe = SUBSCRIBE.replace("SIP/2.0/UDP", &format!("SIP/2.0/{via}"));
    let mut n = Ua::alice();
    n.transport = transport;
    n.receive(msg(&subscribe));
    let id = request_id(&n.take_events());
    let d =
        n.ua.respond(n.now, id, 200, "OK", &[("Expires", "600")], None)
            .unwrap()
            .expect("a dialog");
    n.drain();
    assert!(matches!(
        n.take_events()[..],
        [UaEvent::DialogConfirmed { dialog }] if dialog == d
    ));
    let dialog = n.ua.dialog(d).unwrap().clone();
    assert_eq!(dialog.state(), DialogState::Confirmed);
    assert_eq!(dialog.remote_target().expose(), "sip:alice@192.0.2.20:5062");
    let ok = n.take_sent().remove(0);
    assert_eq!(ok.to().unwrap().tag(), Some(dialog.local_tag()));
    assert_eq!(ok.contacts().count(), 1);
    // No 2xx retransmission: nothing waits for an ACK.
    n.run_until(Duration::from_secs(10));
    assert!(n.take_sent().is_empty());

    n.ua.send_in_dialog(
        n.now,
        d,
        "NOTIFY",
        &[
            ("Event", "message-summary"),
            ("Subscription-State", "active;expires=590"),
        ],
        Some((
            "application/simple-message-summary",
            Bytes::from_static(b"Messages-Waiting: no\r\n"),
        )),
    )
    .unwrap();
    n.drain();
    let notify = n.take_sent().remove(0);
    assert_eq!(notify.method(), Some(carevox_sip::Method::Notify));
    assert_eq!(
        notify.request_uri().unwrap().unwrap().as_str(),
        "sip:alice@192.0.2.20:5062"
    );
    assert_eq!(notify.call_id().unwrap(), "sub-1");
    assert_eq!(notify.from().unwrap().tag(), Some(dialog.local_tag()));
    assert_eq!(notify.to().unwrap().tag(), Some("phonetag"));

    // The refresh, in the dialog, from a new contact.
    let refresh = subscribe
        .replace("z9hG4bKsub1", "z9hG4bKsub2")
        .replace("5 SUBSCRIBE", "6 SUBSCRIBE")
        .replace("192.0.2.20:5062", "192.0.2.20:5064")
        .replace(
            "To: <sip:alice@example.org>",
            &format!("To: <sip:alice@example.org>;tag={}", dialog.local_tag()),
        );
    n.receive(msg(&refresh));
    let events = n.take_events();
    assert!(matches!(
        events[..],
        [UaEvent::Request { dialog: Some(got), .. }] if got == d
    ));
    assert_eq!(
        n.ua.dialog(d).unwrap().remote_target().expose(),
        "sip:alice@192.0.2.20:5064"
    );
    let id = request_id(&events);
    assert_eq!(
        n.ua.respond(n.now, id, 200, "OK", &[("Expires", "600")], None)
            .unwrap(),
        Some(d)
    );
    n.drain();
    n.take_sent();

    n.ua.forget_dialog(d).unwrap();
    n.drain();
    assert!(matches!(
        n.take_events()[..],
        [UaEvent::DialogTerminated {
            reason: TerminationReason::Forgotten,
            ..
        }]
    ));
    assert!(n.ua.dialog(d).is_none());
    assert_eq!(
        n.ua.forget_dialog(d),
        Err(DialogError::UnknownDialog { id: d })
    );
    n.receive(msg(&refresh
        .replace("z9hG4bKsub2", "z9hG4bKsub3")
        .replace("6 SUBSCRIBE", "7 SUBSCRIBE")));
    assert_eq!(n.take_sent()[0].status(), Some(481));
}

/// A SUBSCRIBE refused (here 489, an unknown event package) makes no dialog.
#[test]
fn a_refused_subscribe_makes_no_dialog() {
    let mut n = Ua::alice();
    n.receive(msg(SUBSCRIBE));
    let id = request_id(&n.take_events());
    let d =
        n.ua.respond(
            n.now,
            id,
            489,
            "Bad Event",
            &[("Allow-Events", "presence")],
            None,
        )
        .unwrap();
    assert_eq!(d, None);
    n.drain();
    assert!(n.take_events().is_empty());
    assert_eq!(n.ua.dialogs().count(), 0);
}

#[test]
fn crossing_re_invites_get_491() {
    let mut a = Ua::alice();
    let (inv, d) = confirmed_uac(&mut a);
    a.ua.send_in_dialog(a.now, d, "INVITE", &[], None).unwrap();
    assert_eq!(
        a.ua.send_in_dialog(a.now, d, "INVITE", &[], None),
        Err(DialogError::InviteInProgress { id: d })
    );
    a.drain();
    a.sent.clear();
    let from_tag = inv.from().unwrap().tag().unwrap().to_owned();
    let theirs = format!(
        "INVITE sip:alice@192.0.2.10 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKglare\r\n\
Max-Forwards: 70\r\nFrom: <sip:bob@example.org>;tag=b1\r\n\
To: <sip:alice@example.org>;tag={from_tag}\r\nCall-ID: {}\r\n\
CSeq: 5 INVITE\r\nContact: <sip:bob@192.0.2.20>\r\nContent-Length: 0\r\n\r\n",
        inv.call_id().unwrap()
    );
    a.receive(msg(&theirs));
    assert_eq!(a.take_sent()[0].status(), Some(491));
}

#[test]
fn cancel_gets_200_and_the_invite_487() {
    let mut b = Ua::alice();
    let inv = msg(INCOMING);
    b.receive(inv.clone());
    let id = request_id(&b.take_events());
    b.ua.respond(b.now, id, 180, "Ringing", &[], None).unwrap();
    b.drain();
    b.sent.clear();
    b.receive(carevox_sip::transaction::cancel_for(&inv).unwrap());
    let sent = b.take_sent();
    let statuses: Vec<_> = sent.iter().map(|m| m.status()).collect();
    assert_eq!(statuses, vec![Some(200), Some(487)]);
    // The 487 carries the tag of the 180: the same early dialog ends.
    assert!(sent[1].to().unwrap().tag().is_some());
    let ev = b.take_events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, UaEvent::Cancelled { invite } if *invite == id))
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: TerminationReason::Rejected,
            ..
        }
    )));
}

#[test]
fn the_cap_on_dialogs_is_a_typed_error() {
    let mut b =
        Ua::new(UaConfig::new("192.0.2.10:5060", "<sip:alice@192.0.2.10>").with_max_dialogs(1));
    b.receive(msg(INCOMING));
    let id = request_id(&b.take_events());
    b.ua.respond(b.now, id, 200, "OK", &[], None).unwrap();
    b.receive(msg(&INCOMING
        .replace("in-call-1", "in-call-2")
        .replace("z9hG4bKin1", "z9hG4bKin9")));
    let id = request_id(&b.take_events());
    assert_eq!(
        b.ua.respond(b.now, id, 200, "OK", &[], None),
        Err(DialogError::TooManyDialogs { limit: 1 })
    );
    // The refused INVITE can still be answered with an error.
    b.ua.respond(b.now, id, 486, "Busy Here", &[], None)
        .unwrap();
}

#[test]
fn dialog_debug_shows_no_uri() {
    let mut a = Ua::alice();
    let (_, d) = confirmed_uac(&mut a);
    let shown = format!("{:?} {:?}", a.ua.dialog(d).unwrap(), a.ua);
    for secret in ["bob@", "alice@", "192.0.2.30", "example.org"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[test]
fn bye_in_an_early_dialog_is_refused() {
    let mut a = Ua::alice();
    let inv = a.invite();
    a.receive(reply(&inv, 180, "e1", &[("Contact", "<sip:b@192.0.2.21>")]));
    let d = dialog_of(&a.take_events());
    assert_eq!(
        a.ua.send_in_dialog(a.now, d, "BYE", &[], None),
        Err(DialogError::NotConfirmed { id: d })
    );
    assert!(a.ua.send_in_dialog(a.now, d, "UPDATE", &[], None).is_ok());
}

#[test]
fn early_dialogs_no_2xx_confirmed_end_with_the_invite_transaction() {
    let mut a = Ua::alice();
    let inv = a.invite();
    a.receive(reply(
        &inv,
        180,
        "late",
        &[("Contact", "<sip:b@192.0.2.21>")],
    ));
    a.receive(reply(
        &inv,
        200,
        "won",
        &[("Contact", "<sip:b@192.0.2.22>")],
    ));
    assert_eq!(a.ua.dialogs().count(), 2);
    a.take_events();
    // Timer M (64*T1 after the 2xx) ends the INVITE transaction.
    a.run_until(Duration::from_secs(31));
    assert_eq!(a.ua.dialogs().count(), 2);
    a.run_until(Duration::from_secs(33));
    let ended: Vec<_> = a
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, UaEvent::DialogTerminated { .. }))
        .collect();
    assert_eq!(ended.len(), 1);
    let left: Vec<_> = a.ua.dialogs().collect();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].remote_tag(), "won");
    assert_eq!(left[0].state(), DialogState::Confirmed);
}
