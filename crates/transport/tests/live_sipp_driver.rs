//! The transaction driver ([`Endpoint`]) against a running SIPp (Debian
//! `sip-tester`) on 127.0.0.1, over UDP (`-t u1`) and over TCP (`-t t1`),
//! with scenarios that force retransmissions:
//!
//! - a SIPp UAC that does not ACK the first 2xx: the application (the UAS
//!   core, RFC 3261 13.3.1.4) resends the 2xx through the driver from T1,
//!   doubling, until the ACK. Over UDP SIPp waits 2 s, and its own message
//!   log shows the retransmissions arrived (the INVITE SIPp resends for
//!   them is absorbed by the Accepted state, RFC 6026); over TCP SIPp's
//!   scenario requires the 2xx three times before it ACKs;
//! - a SIPp UAC whose INVITE arrives twice (sent twice with one branch, and
//!   over UDP retransmitted by SIPp too, the answer held back): the
//!   application sees one request;
//! - a SIPp UAS that never answers: Timer B ends the INVITE client
//!   transaction after 64·T1; over UDP SIPp received the INVITE seven times
//!   (Timer A), over TCP once.
//!
//! SIPp must be installed: `.ci/install-deps` installs it; without it these
//! tests fail and say so.
#![allow(clippy::disallowed_methods)] // a real clock, as SIPp has
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // helpers outside #[test] functions

use std::net::SocketAddr;
use std::time::Duration;

use carevox_sip::transaction::{Config, Timers, TransactionId, new_branch};
use carevox_sip::{Message, MessageBuilder, Method};
use carevox_testkit::sipp::{Sipp, SippTransport, scenario};
use carevox_testkit::{free_tcp_port, free_udp_port};
use carevox_transport::{
    Destination, Endpoint, EndpointConfig, EndpointEvent, EndpointEvents, Transport,
    TransportConfig, TransportKind,
};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(60);

fn kind_of(t: SippTransport) -> TransportKind {
    match t {
        SippTransport::Udp => TransportKind::Udp,
        SippTransport::Tcp => TransportKind::Tcp,
    }
}

async fn endpoint(timers: Timers) -> (Endpoint, EndpointEvents) {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (transport, incoming) = Transport::builder(TransportConfig::default())
        .udp(local)
        .tcp(local)
        .start()
        .await
        .unwrap();
    Endpoint::start(
        transport,
        incoming,
        EndpointConfig::default().with_transactions(Config::default().with_timers(timers)),
    )
}

/// What the application saw.
#[derive(Default, Debug)]
struct Seen {
    invites: usize,
    acks: usize,
    byes: usize,
    timeouts: Vec<(Instant, TransactionId)>,
}

/// A 2xx the application resends until its ACK (13.3.1.4).
struct Pending2xx {
    transaction: TransactionId,
    call_id: String,
    ok: Message,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// A user agent server written on the driver: answers INVITE with 180 and
/// 200 (after `hold`), resends the 200 until the ACK, answers BYE.
struct App {
    endpoint: Endpoint,
    events: EndpointEvents,
    timers: Timers,
    hold: Duration,
    contact: String,
    seen: Seen,
    to_answer: Vec<(Instant, TransactionId, Message)>,
    resend: Vec<Pending2xx>,
}

impl App {
    async fn new(timers: Timers, kind: TransportKind) -> App {
        let (endpoint, events) = endpoint(timers).await;
        let addr = endpoint.transport().local_addr(kind).unwrap();
        let contact = match kind {
            TransportKind::Tcp => format!("<sip:carevox@{addr};transport=tcp>"),
            _ => format!("<sip:carevox@{addr}>"),
        };
        App {
            endpoint,
            events,
            timers,
            hold: Duration::ZERO,
            contact,
            seen: Seen::default(),
            to_answer: Vec::new(),
            resend: Vec::new(),
        }
    }

    fn addr(&self, kind: TransportKind) -> SocketAddr {
        self.endpoint.transport().local_addr(kind).unwrap()
    }

    async fn answer(&mut self, now: Instant, id: TransactionId, invite: &Message) {
        let ringing = MessageBuilder::response_to(invite, 180, "Ringing")
            .and_then(|b| b.to_tag("carevox"))
            .and_then(|b| b.build())
            .unwrap();
        self.endpoint.send_response(id, ringing).await.unwrap();
        let ok = MessageBuilder::response_to(invite, 200, "OK")
            .and_then(|b| b.to_tag("carevox"))
            .and_then(|b| b.header("Contact", &self.contact))
            .and_then(|b| b.build())
            .unwrap();
        self.endpoint.send_response(id, ok.clone()).await.unwrap();
        self.resend.push(Pending2xx {
            transaction: id,
            call_id: invite.call_id().unwrap().to_owned(),
            ok,
            next: now + self.timers.t1,
            interval: self.timers.t1,
            give_up: now + self.timers.t1x64(),
        });
    }

    /// Serves events until `done` says so.
    async fn run(&mut self, sipp: &mut Sipp, done: impl Fn(&Seen, bool) -> bool) {
        let until = Instant::now() + DEADLINE;
        loop {
            let now = Instant::now();
            assert!(
                now < until,
                "the exchange did not finish in time: {:?}",
                self.seen
            );
            if done(&self.seen, sipp.exited().is_some()) {
                return;
            }
            let due: Vec<_> = self
                .to_answer
                .iter()
                .filter(|p| p.0 <= now)
                .cloned()
                .collect();
            self.to_answer.retain(|p| p.0 > now);
            for (_, id, invite) in due {
                self.answer(now, id, &invite).await;
            }
            self.resend.retain(|p| p.give_up > now);
            for p in &mut self.resend {
                if p.next <= now {
                    // The server transaction is Accepted: the 2xx goes out
                    // again through it.
                    self.endpoint
                        .send_response(p.transaction, p.ok.clone())
                        .await
                        .unwrap();
                    p.interval = (p.interval * 2).min(self.timers.t2);
                    p.next = now + p.interval;
                }
            }
            let wake = self
                .to_answer
                .iter()
                .map(|p| p.0)
                .chain(self.resend.iter().map(|p| p.next))
                .fold(now + Duration::from_millis(50), Instant::min);
            let Ok(event) = tokio::time::timeout_at(wake, self.events.recv()).await else {
                continue;
            };
            match event.expect("the endpoint is running") {
                EndpointEvent::Request {
                    transaction,
                    request,
                    ..
                } => match request.method() {
                    Some(Method::Invite) => {
                        self.seen.invites += 1;
                        self.to_answer.push((now + self.hold, transaction, request));
                    }
                    Some(Method::Bye) => {
                        self.seen.byes += 1;
                        let ok = MessageBuilder::response_to(&request, 200, "OK")
                            .and_then(|b| b.build())
                            .unwrap();
                        self.endpoint.send_response(transaction, ok).await.unwrap();
                    }
                    _ => panic!("unexpected request {:?}", request.method()),
                },
                EndpointEvent::Ack { request, .. } => {
                    self.seen.acks += 1;
                    let call_id = request.call_id().unwrap().to_owned();
                    self.resend.retain(|p| p.call_id != call_id);
                }
                EndpointEvent::TimedOut { transaction } => {
                    self.seen.timeouts.push((Instant::now(), transaction));
                }
                _ => {}
            }
        }
    }
}

const HEAD: &str = "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70";

const INVITE: &str = "INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-inv-[call_number]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
Content-Length: 0

";

/// How the scenario holds back its ACK.
#[derive(Clone, Copy)]
enum AckAfter {
    /// Sent at once.
    Now,
    /// A pause: over UDP SIPp absorbs the 2xx retransmissions meanwhile
    /// (and resends its INVITE for each).
    Pause(u32),
    /// The 2xx received this many times more: over TCP SIPp takes any
    /// message during a pause as unexpected, so the scenario requires the
    /// retransmissions and fails without them.
    Retransmissions(usize),
}

/// A call: INVITE (sent `copies` times with one branch), 200, ACK held back
/// as `ack`, BYE, 200. SIPp retransmits over UDP only.
fn uac_scenario(copies: usize, ack: AckAfter) -> String {
    let mut sends = String::new();
    for n in 0..copies {
        let retrans = if n + 1 == copies {
            r#" retrans="500""#
        } else {
            ""
        };
        sends.push_str(&format!("<send{retrans}><![CDATA[\n{INVITE}]]></send>\n"));
        if n + 1 < copies {
            sends.push_str("<pause milliseconds=\"100\"/>\n");
        }
    }
    let hold = match ack {
        AckAfter::Now => String::new(),
        AckAfter::Pause(ms) => format!("<pause milliseconds=\"{ms}\"/>\n"),
        AckAfter::Retransmissions(n) => "<recv response=\"200\"/>\n".repeat(n),
    };
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="carevox">
{sends}<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="200" rrs="true"/>
{hold}<send><![CDATA[
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

fn sipp_uac(t: SippTransport, xml: &tempfile::NamedTempFile, target: SocketAddr) -> Sipp {
    let port = match t {
        SippTransport::Udp => free_udp_port(),
        SippTransport::Tcp => free_tcp_port(),
    };
    Sipp::start(&[
        "-t",
        t.arg(),
        "-sf",
        xml.path().to_str().unwrap(),
        "-m",
        "1",
        "-p",
        &port.to_string(),
        &target.to_string(),
    ])
}

async fn uac_without_ack(t: SippTransport) {
    let kind = kind_of(t);
    let mut app = App::new(Timers::default(), kind).await;
    // 2 s without an ACK over UDP; over TCP, until the 2xx came three
    // times (at 0, 0.5 and 1.5 s).
    let hold = match t {
        SippTransport::Udp => AckAfter::Pause(2_000),
        SippTransport::Tcp => AckAfter::Retransmissions(2),
    };
    let xml = scenario(&uac_scenario(1, hold));
    let mut sipp = sipp_uac(t, &xml, app.addr(kind));
    app.run(&mut sipp, |s, exited| exited && s.byes == 1).await;
    assert!(
        sipp.exited().unwrap().success(),
        "SIPp's scenario failed over {kind}: {}\n{:?}",
        sipp.errors(),
        sipp.messages()
    );
    // SIPp received the 2xx at 0, 0.5 and 1.5 s: three times at least
    // before its ACK, which stopped them.
    let oks = sipp
        .messages()
        .iter()
        .filter(|m| !m.sent && m.is_response(200) && m.cseq() == Some("1 INVITE"))
        .count();
    assert!(oks >= 3, "SIPp received the 2xx {oks} times over {kind}");
    assert_eq!(app.seen.acks, 1);
    assert_eq!(
        app.seen.invites, 1,
        "an INVITE SIPp resent reached the application over {kind}"
    );
    app.endpoint.shutdown(Duration::from_secs(1)).await.unwrap();
}

async fn duplicated_invite(t: SippTransport) {
    let kind = kind_of(t);
    // Every response (the automatic 100 Trying included) is held back for
    // 1.2 s, so that both copies of the INVITE arrive first.
    let timers = Timers::default().with_trying(Duration::from_millis(1_500));
    let mut app = App::new(timers, kind).await;
    app.hold = Duration::from_millis(1_200);
    let xml = scenario(&uac_scenario(2, AckAfter::Now));
    let mut sipp = sipp_uac(t, &xml, app.addr(kind));
    app.run(&mut sipp, |s, exited| exited && s.byes == 1).await;
    assert!(
        sipp.exited().unwrap().success(),
        "SIPp's scenario failed over {kind}: {}\n{:?}",
        sipp.errors(),
        sipp.messages()
    );
    let sent = sipp
        .messages()
        .iter()
        .filter(|m| m.sent && m.is_request("INVITE"))
        .count();
    assert!(sent >= 2, "SIPp sent its INVITE {sent} times over {kind}");
    assert_eq!(app.seen.invites, 1, "over {kind}");
    assert_eq!(app.seen.acks, 1, "over {kind}");
}

async fn uas_never_answers(t: SippTransport) {
    let kind = kind_of(t);
    let timers = Timers::default().with_t1(Duration::from_millis(100));
    let mut app = App::new(timers, kind).await;
    let port = match t {
        SippTransport::Udp => free_udp_port(),
        SippTransport::Tcp => free_tcp_port(),
    };
    let xml = scenario(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="silent">
<recv request="INVITE"/>
<pause milliseconds="9000"/>
</scenario>
"#,
    );
    let mut sipp = Sipp::start(&[
        "-t",
        t.arg(),
        "-sf",
        xml.path().to_str().unwrap(),
        "-m",
        "1",
        "-p",
        &port.to_string(),
    ]);
    // Give SIPp a moment to bind before the INVITE goes out.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let local = app.addr(kind);
    let rng = ring::rand::SystemRandom::new();
    let invite = MessageBuilder::request("INVITE", &format!("sip:service@{remote}"))
        .and_then(|b| {
            b.header(
                "Via",
                &format!(
                    "SIP/2.0/{} {local};branch={};rport",
                    kind.via_name(),
                    new_branch(&rng).unwrap()
                ),
            )
        })
        .and_then(|b| b.header("Max-Forwards", "70"))
        .and_then(|b| b.header("From", &format!("<sip:carevox@{local}>;tag=c1")))
        .and_then(|b| b.header("To", &format!("<sip:service@{remote}>")))
        .and_then(|b| b.header("Call-ID", &format!("silent-{}", local.port())))
        .and_then(|b| b.header("CSeq", "1 INVITE"))
        .and_then(|b| b.header("Contact", &app.contact))
        .and_then(|b| b.build())
        .unwrap();
    let started = Instant::now();
    let id = app
        .endpoint
        .send_request(invite, Destination::new(kind, remote))
        .await
        .unwrap();
    app.run(&mut sipp, |s, _| !s.timeouts.is_empty()).await;
    let (at, timed_out) = app.seen.timeouts[0];
    assert_eq!(timed_out, id);
    // Timer B = 64·T1 = 6.4 s.
    assert!(at - started >= timers.t1 * 64, "{:?}", at - started);
    sipp.wait(std::time::Instant::now() + DEADLINE);
    let received = sipp
        .messages()
        .iter()
        .filter(|m| !m.sent && m.is_request("INVITE"))
        .count();
    // Timer A over UDP sent it at 0, 0.1, 0.3, 0.7, 1.5, 3.1 and 6.3 s;
    // over TCP nothing is retransmitted.
    let expected = if kind == TransportKind::Udp { 7 } else { 1 };
    assert_eq!(received, expected, "INVITEs SIPp received over {kind}");
    assert!(sipp.exited().unwrap().success(), "SIPp's scenario failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_without_ack_gets_the_2xx_retransmitted_over_udp() {
    uac_without_ack(SippTransport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_without_ack_gets_the_2xx_retransmitted_over_tcp() {
    uac_without_ack(SippTransport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_duplicated_invite_reaches_the_application_once_over_udp() {
    duplicated_invite(SippTransport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_duplicated_invite_reaches_the_application_once_over_tcp() {
    duplicated_invite(SippTransport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uas_that_never_answers_ends_in_timer_b_over_udp() {
    uas_never_answers(SippTransport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uas_that_never_answers_ends_in_timer_b_over_tcp() {
    uas_never_answers(SippTransport::Tcp).await;
}
