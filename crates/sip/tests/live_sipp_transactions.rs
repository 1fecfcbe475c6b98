//! The transaction layer and user agent core against a running SIPp (Debian
//! `sip-tester`) over UDP on 127.0.0.1, driven by a plain socket and the
//! real clock through the public run loop:
//!
//! - a SIPp UAC that does not ACK the first 2xx: the user agent core must
//!   retransmit it (13.3.1.4), and the INVITE SIPp resends on each
//!   retransmitted 2xx is absorbed by the Accepted state (RFC 6026);
//! - a SIPp UAS that never answers: Timer B ends the INVITE client
//!   transaction after the INVITE was retransmitted by Timer A;
//! - a SIPp UAC whose INVITE arrives two or three times (its own
//!   retransmissions, the answer held back): the application sees one.
//!
//! SIPp must be installed: `cargo xtask test` and `.ci/run` install it
//! (`.ci/install-deps`); without it these tests fail and say so.

#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing)]

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use carevox_sip::Message;
use carevox_sip::dialog::{Outgoing, UaConfig, UaEvent, UaOutput, UserAgent};
use carevox_sip::transaction::{Config, Input, Received, Timers, TransportKind};
use carevox_testkit::free_udp_port;
use carevox_testkit::sipp::{Sipp, scenario};

const DEADLINE: Duration = Duration::from_secs(60);

/// A user agent on a UDP socket, with what it sent and heard.
struct Live {
    ua: UserAgent,
    sock: UdpSocket,
    addr: SocketAddr,
    sent: Vec<(Instant, Message)>,
    received: Vec<Message>,
    events: Vec<(Instant, UaEvent)>,
    /// Answer INVITEs with 180 and 200 this long after they arrive.
    answer_after: Option<Duration>,
    pending: Vec<(Instant, carevox_sip::transaction::TransactionId)>,
}

impl Live {
    fn new(t1: Duration) -> Live {
        Self::with_timers(Timers::default().with_t1(t1))
    }

    fn with_timers(timers: Timers) -> Live {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let config = UaConfig::new(&addr.to_string(), &format!("<sip:carevox@{addr}>"))
            .with_transaction(Config::default().with_timers(timers));
        Live {
            ua: UserAgent::new(config, Arc::new(ring::rand::SystemRandom::new())),
            sock,
            addr,
            sent: Vec::new(),
            received: Vec::new(),
            events: Vec::new(),
            answer_after: None,
            pending: Vec::new(),
        }
    }

    /// Runs the loop until `done` says so, answering events with `app`.
    fn run(
        &mut self,
        sipp: &mut Sipp,
        mut app: impl FnMut(&mut UserAgent, Instant, &UaEvent),
        mut done: impl FnMut(&Live, bool) -> bool,
    ) {
        let until = Instant::now() + DEADLINE;
        let mut buf = vec![0u8; 65_535];
        loop {
            let now = Instant::now();
            assert!(now < until, "the exchange did not finish in time");
            let mut wake = now + Duration::from_millis(50);
            let due: Vec<_> = self
                .pending
                .iter()
                .filter(|(at, _)| *at <= now)
                .map(|p| p.1)
                .collect();
            self.pending.retain(|(at, _)| *at > now);
            for id in due {
                self.ua.respond(now, id, 180, "Ringing", &[], None).unwrap();
                self.ua.respond(now, id, 200, "OK", &[], None).unwrap();
            }
            while let Some(out) = self.ua.poll_output() {
                match out {
                    UaOutput::Transmit(t) => {
                        self.sock.send_to(&t.bytes, t.destination).unwrap();
                        self.sent.push((now, Message::parse(t.bytes).unwrap()));
                    }
                    UaOutput::Event(e) => {
                        if let (
                            Some(after),
                            UaEvent::Request {
                                id, dialog: None, ..
                            },
                        ) = (self.answer_after, &e)
                        {
                            self.pending.push((now + after, *id));
                        }
                        app(&mut self.ua, now, &e);
                        self.events.push((now, e));
                    }
                    UaOutput::Timeout(at) => {
                        wake = wake.min(at);
                        break;
                    }
                    _ => {}
                }
            }
            if done(self, sipp.exited().is_some()) {
                return;
            }
            let wait = wake
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            self.sock.set_read_timeout(Some(wait)).unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let message = Message::parse(Bytes::copy_from_slice(&buf[..n]))
                        .unwrap_or_else(|e| panic!("SIPp sent a message that does not parse: {e}"));
                    self.received.push(message.clone());
                    self.ua
                        .handle_input(
                            Instant::now(),
                            Input::Receive(Received {
                                source: from,
                                transport: TransportKind::Udp,
                                message,
                            }),
                        )
                        .unwrap();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    self.ua
                        .handle_input(Instant::now(), Input::Timeout)
                        .unwrap();
                }
                Err(e) => panic!("recv: {e}"),
            }
        }
    }
}

const HEAD: &str = "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70";

fn uac_scenario(pause_before_ack_ms: u32) -> String {
    let invite = "INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-inv-[call_number]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipp@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

";
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="carevox">
<send retrans="500"><![CDATA[
{invite}]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="200" rrs="true"/>
<pause milliseconds="{pause_before_ack_ms}"/>
<send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{HEAD}
CSeq: 1 ACK
Content-Length: 0

]]></send>
<pause milliseconds="300"/>
<send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{HEAD}
CSeq: 2 BYE
Content-Length: 0

]]></send>
<recv response="200"/>
</scenario>
"#
    )
}

/// The application of the called side: 180 then 200 at once.
fn answer(ua: &mut UserAgent, now: Instant, e: &UaEvent) {
    if let UaEvent::Request {
        id,
        request,
        dialog: None,
    } = e
        && request.method().map(|m| m.as_str()) == Some("INVITE")
    {
        ua.respond(now, *id, 180, "Ringing", &[], None).unwrap();
        ua.respond(now, *id, 200, "OK", &[], None).unwrap();
    }
}

fn count(live: &Live, pred: impl Fn(&UaEvent) -> bool) -> usize {
    live.events.iter().filter(|(_, e)| pred(e)).count()
}

#[test]
fn sipp_uac_without_ack_gets_the_2xx_retransmitted() {
    let mut live = Live::new(Duration::from_millis(500));
    let xml = scenario(&uac_scenario(2_000));
    let mut sipp = Sipp::start(&[
        "-sf",
        xml.path().to_str().unwrap(),
        "-m",
        "1",
        "-p",
        &free_udp_port().to_string(),
        &live.addr.to_string(),
    ]);
    live.run(&mut sipp, answer, |l, exited| {
        exited
            && count(l, |e| {
                matches!(
                    e,
                    UaEvent::DialogTerminated {
                        reason: carevox_sip::dialog::TerminationReason::RemoteBye,
                        ..
                    }
                )
            }) == 1
    });
    assert!(sipp.exited().unwrap().success(), "SIPp's scenario failed");
    let oks = live
        .sent
        .iter()
        .filter(|(_, m)| m.status() == Some(200) && m.cseq().unwrap().seq == 1)
        .collect::<Vec<_>>();
    assert!(
        oks.len() >= 3,
        "the 2xx went out {} times in 2 s",
        oks.len()
    );
    // From T1, doubling: the first retransmission about 500 ms after the 2xx.
    let gap = oks[1].0 - oks[0].0;
    assert!(gap >= Duration::from_millis(450), "{gap:?}");
    assert_eq!(count(&live, |e| matches!(e, UaEvent::Ack { .. })), 1);
    assert_eq!(
        count(&live, |e| matches!(e, UaEvent::Request { .. })),
        1,
        "SIPp's INVITE resent for each retransmitted 2xx never reached the application"
    );
}

#[test]
fn sipp_uac_duplicated_invite_reaches_the_application_once() {
    // SIPp retransmits its INVITE every 500 ms until a response: hold every
    // response back (the automatic 100 Trying included) for 1.2 s so that
    // the INVITE arrives two or three times.
    let timers = Timers::default().with_trying(Duration::from_millis(1_500));
    let mut live = Live::with_timers(timers);
    live.answer_after = Some(Duration::from_millis(1_200));
    let xml = scenario(&uac_scenario(0));
    let mut sipp = Sipp::start(&[
        "-sf",
        xml.path().to_str().unwrap(),
        "-m",
        "1",
        "-p",
        &free_udp_port().to_string(),
        &live.addr.to_string(),
    ]);
    live.run(
        &mut sipp,
        |_, _, _| {},
        |l, exited| exited && count(l, |e| matches!(e, UaEvent::DialogTerminated { .. })) == 1,
    );
    assert!(sipp.exited().unwrap().success(), "SIPp's scenario failed");
    assert_eq!(count(&live, |e| matches!(e, UaEvent::Request { .. })), 1);
    assert_eq!(count(&live, |e| matches!(e, UaEvent::Ack { .. })), 1);
    let invites = live
        .received
        .iter()
        .filter(|m| m.method().map(|m| m.as_str()) == Some("INVITE"))
        .count();
    assert!(invites >= 2, "SIPp sent its INVITE {invites} times");
}

#[test]
fn sipp_uas_that_never_answers_ends_in_timer_b() {
    let t1 = Duration::from_millis(100);
    let mut live = Live::new(t1);
    let port = free_udp_port();
    let xml = scenario(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="silent">
<recv request="INVITE"/>
<pause milliseconds="9000"/>
</scenario>
"#,
    );
    let mut sipp = Sipp::start(&[
        "-sf",
        xml.path().to_str().unwrap(),
        "-m",
        "1",
        "-p",
        &port.to_string(),
    ]);
    // Give SIPp a moment to bind before the INVITE goes out.
    std::thread::sleep(Duration::from_millis(500));
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let req = Outgoing::new(
        "INVITE",
        &format!("sip:service@{remote}"),
        &format!("<sip:carevox@{}>", live.addr),
        &format!("<sip:service@{remote}>"),
        remote,
        TransportKind::Udp,
    );
    let started = Instant::now();
    let id = live.ua.send_request(started, &req).unwrap();
    live.run(
        &mut sipp,
        |_, _, _| {},
        |l, _| count(l, |e| matches!(e, UaEvent::Timeout { .. })) == 1,
    );
    let (at, e) = live
        .events
        .iter()
        .find(|(_, e)| matches!(e, UaEvent::Timeout { .. }))
        .unwrap();
    assert!(matches!(e, UaEvent::Timeout { id: t } if *t == id));
    // Timer B = 64*T1 = 6.4 s; Timer A sent the INVITE at 0, 0.1, 0.3, 0.7,
    // 1.5, 3.1 and 6.3 s.
    assert!(*at - started >= t1 * 64, "{:?}", *at - started);
    let invites = live
        .sent
        .iter()
        .filter(|(_, m)| m.method().map(|m| m.as_str()) == Some("INVITE"))
        .count();
    assert_eq!(invites, 7);
    // SIPp got them all and ends its scenario on its own.
    while sipp.exited().is_none() {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(sipp.exited().unwrap().success(), "SIPp's scenario failed");
}
