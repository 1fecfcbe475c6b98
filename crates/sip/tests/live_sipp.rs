//! Calls between carevox-sip and a running SIPp (Debian `sip-tester`), over
//! UDP on 127.0.0.1, in both roles:
//!
//! - SIPp's built-in `uac` scenario places calls to a user agent server
//!   written with this crate: it parses and validates every request, answers
//!   the INVITE with 100, 180 and a 200 whose SDP comes from
//!   `answer_audio`, and the BYE with 200. SIPp's exit status says whether
//!   every call followed its scenario.
//!   The same over TCP, with messages framed by `StreamFramer`.
//! - A user agent client written with this crate calls SIPp's `uas`
//!   scenario: INVITE with an SDP offer, ACK to the 200, BYE.
//!
//! SIPp must be installed: `cargo xtask test` and `.ci/run` install it
//! (`.ci/install-deps`); without it these tests fail and say so.

#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing, clippy::print_stderr)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use carevox_sip::sdp::SessionDescription;
use carevox_sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia, answer_audio};
use carevox_sip::{
    Frame, HeaderName, Limits, Message, MessageBuilder, Method, StreamFramer, ValidationPolicy,
    Verdict, validate,
};
use carevox_testkit::free_udp_port;
use carevox_testkit::sipp::Sipp;

/// How long one exchange may take before the test gives up; generous for a
/// loaded machine, and never a measure of speed.
const DEADLINE: Duration = Duration::from_secs(60);

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s
}

/// One datagram, parsed; `None` on timeout.
fn receive(sock: &UdpSocket) -> Option<(Message, SocketAddr)> {
    let mut buf = vec![0u8; 65_535];
    match sock.recv_from(&mut buf) {
        Ok((n, from)) => {
            buf.truncate(n);
            let msg = Message::parse(Bytes::from(buf))
                .unwrap_or_else(|e| panic!("SIPp sent a message that does not parse: {e}"));
            Some((msg, from))
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("recv: {e}"),
    }
}

fn send(sock: &UdpSocket, to: SocketAddr, builder: &MessageBuilder) {
    let msg = builder.build().unwrap();
    sock.send_to(msg.as_bytes(), to).unwrap();
}

/// What the user agent server did for one call.
#[derive(Default)]
struct Call {
    tag: String,
    invites: u32,
    acks: u32,
    byes: u32,
}

/// A user agent server for SIPp's `uac` scenario, built from the crate's
/// public API; the transport is the caller's.
struct Uas {
    contact: String,
    rng: ring::rand::SystemRandom,
    calls: HashMap<String, Call>,
}

impl Uas {
    fn new(contact: String) -> Uas {
        Uas {
            contact,
            rng: ring::rand::SystemRandom::new(),
            calls: HashMap::new(),
        }
    }

    /// The responses to one request from SIPp.
    fn answer(&mut self, request: &Message) -> Vec<MessageBuilder> {
        let verdict = validate(request, &ValidationPolicy::uas(&[]))
            .unwrap_or_else(|why| panic!("SIPp's request does not validate: {why}"));
        assert_eq!(verdict, Verdict::Accept);
        let call_id = request.call_id().unwrap().to_owned();
        let n = self.calls.len();
        let call = self.calls.entry(call_id).or_insert_with(|| Call {
            tag: format!("cvx{n}"),
            ..Call::default()
        });
        match request.method() {
            Some(Method::Invite) => {
                call.invites += 1;
                let offer = SessionDescription::parse(
                    std::str::from_utf8(request.body()).expect("SDP is text"),
                )
                .unwrap_or_else(|e| panic!("SIPp's SDP offer does not parse: {e}"));
                let mut caps = AudioCapabilities::new(vec![Codec::pcmu()]);
                // SIPp offers plain RTP; these tests are about signalling.
                caps.allow_plain_rtp = true;
                let local = LocalMedia::new("127.0.0.1", 40_000, "1");
                let answer = answer_audio(&offer, &caps, &local, &self.rng).unwrap();
                assert!(answer.audio.is_some(), "PCMU accepted");
                let mut out = vec![MessageBuilder::response_to(request, 100, "Trying").unwrap()];
                for (status, reason) in [(180, "Ringing"), (200, "OK")] {
                    let mut response = MessageBuilder::response_to(request, status, reason)
                        .unwrap()
                        .to_tag(&call.tag)
                        .unwrap()
                        .header("Contact", &self.contact)
                        .unwrap();
                    if status == 200 {
                        response = response
                            .body("application/sdp", Bytes::from(answer.sdp.to_string()))
                            .unwrap();
                    }
                    out.push(response);
                }
                out
            }
            Some(Method::Ack) => {
                call.acks += 1;
                let to = request.to().unwrap();
                assert_eq!(to.tag(), Some(call.tag.as_str()), "the ACK carries our tag");
                Vec::new()
            }
            Some(Method::Bye) => {
                call.byes += 1;
                let to = request.to().unwrap();
                assert_eq!(to.tag(), Some(call.tag.as_str()), "the BYE carries our tag");
                vec![MessageBuilder::response_to(request, 200, "OK").unwrap()]
            }
            other => panic!("SIPp's uac scenario sent {other:?}"),
        }
    }

    /// Every call was set up, acknowledged and ended.
    fn check(&self, calls: u32) {
        assert_eq!(self.calls.len(), calls as usize);
        for (id, call) in &self.calls {
            // Retransmissions may repeat an INVITE or a BYE, never drop one.
            assert!(
                call.invites >= 1 && call.acks >= 1 && call.byes >= 1,
                "{id}"
            );
        }
    }
}

#[test]
fn sipp_uac_calls_a_carevox_uas() {
    const CALLS: u32 = 5;
    let sock = socket();
    let addr = sock.local_addr().unwrap();
    let mut uas = Uas::new(format!("<sip:carevox@{addr}>"));
    let mut sipp = Sipp::start(&["-sn", "uac", "-m", &CALLS.to_string(), &addr.to_string()]);
    let until = Instant::now() + DEADLINE;
    while sipp.exited().is_none() {
        assert!(Instant::now() < until, "the calls did not finish in time");
        let Some((request, from)) = receive(&sock) else {
            continue;
        };
        for response in uas.answer(&request) {
            send(&sock, from, &response);
        }
    }
    let status = sipp.wait(until);
    assert_eq!(status.code(), Some(0), "SIPp reports a failed call");
    uas.check(CALLS);
}

#[test]
fn sipp_uac_calls_a_carevox_uas_over_tcp() {
    const CALLS: u32 = 3;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut uas = Uas::new(format!("<sip:carevox@{addr};transport=tcp>"));
    let mut sipp = Sipp::start(&[
        "-sn",
        "uac",
        "-t",
        "t1",
        "-m",
        &CALLS.to_string(),
        &addr.to_string(),
    ]);
    let until = Instant::now() + DEADLINE;
    listener.set_nonblocking(true).unwrap();
    let mut stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(sipp.exited().is_none(), "SIPp ended before connecting");
                assert!(Instant::now() < until, "SIPp did not connect");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut framer = StreamFramer::server(Limits::default());
    let mut buf = vec![0u8; 16 * 1024];
    while sipp.exited().is_none() {
        assert!(Instant::now() < until, "the calls did not finish in time");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => framer.push(&buf[..n]).unwrap(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => panic!("read: {e}"),
        }
        while let Some(frame) = framer
            .next_frame()
            .unwrap_or_else(|e| panic!("SIPp's stream does not frame: {e}"))
        {
            let Frame::Message(request) = frame else {
                continue; // a keep-alive
            };
            for response in uas.answer(&request) {
                stream
                    .write_all(response.build().unwrap().as_bytes())
                    .unwrap();
            }
        }
    }
    let status = sipp.wait(until);
    assert_eq!(status.code(), Some(0), "SIPp reports a failed call");
    uas.check(CALLS);
}

/// Sends `request` every 500 ms (RFC 3261 timer A, without its backoff)
/// until a final response of the same CSeq method arrives; returns every
/// response seen, in order.
fn transact(sock: &UdpSocket, to: SocketAddr, request: &Message, until: Instant) -> Vec<Message> {
    let method = request.method().unwrap();
    let mut seen = Vec::new();
    let mut next_send = Instant::now();
    loop {
        assert!(Instant::now() < until, "no final response to {method}");
        if Instant::now() >= next_send {
            sock.send_to(request.as_bytes(), to).unwrap();
            next_send = Instant::now() + Duration::from_millis(500);
        }
        let Some((response, _)) = receive(sock) else {
            continue;
        };
        let status = response.status().expect("a response");
        let cseq = response.cseq().unwrap();
        if cseq.method != method {
            continue; // a retransmission for an earlier transaction
        }
        seen.push(response);
        if status >= 200 {
            return seen;
        }
    }
}

#[test]
fn a_carevox_uac_calls_sipp_uas() {
    let sock = socket();
    let uac = sock.local_addr().unwrap();
    let port = free_udp_port();
    let mut sipp = Sipp::start(&["-sn", "uas", "-p", &port.to_string(), "-m", "1"]);
    let remote: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let until = Instant::now() + DEADLINE;

    let offer = SessionDescription::parse(&format!(
        "v=0\r\no=- 42 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n",
        40_002
    ))
    .unwrap();
    let target = format!("sip:service@{remote}");
    let from = format!("<sip:carevox@{uac}>;tag=uac1");
    let call_id = format!("live-{}@127.0.0.1", std::process::id());
    let request = |method: &str, uri: &str, cseq: u32, branch: &str, to: &str| {
        MessageBuilder::request(method, uri)
            .unwrap()
            .header(
                "Via",
                &format!("SIP/2.0/UDP {uac};branch=z9hG4bK{branch};rport"),
            )
            .unwrap()
            .header("Max-Forwards", "70")
            .unwrap()
            .header("From", &from)
            .unwrap()
            .header("To", to)
            .unwrap()
            .header("Call-ID", &call_id)
            .unwrap()
            .header("CSeq", &format!("{cseq} {method}"))
            .unwrap()
            .header("Contact", &format!("<sip:carevox@{uac}>"))
            .unwrap()
    };

    let invite = request("INVITE", &target, 1, "inv1", &format!("<{target}>"))
        .body("application/sdp", Bytes::from(offer.to_string()))
        .unwrap()
        .build()
        .unwrap();
    let responses = transact(&sock, remote, &invite, until);
    let ok = responses.last().unwrap();
    assert_eq!(ok.status(), Some(200), "SIPp answers the INVITE");
    assert!(
        responses.iter().any(|r| r.status() == Some(180)),
        "SIPp's uas rings first"
    );
    for r in &responses {
        let verdict = validate(r, &ValidationPolicy::uas(&[]))
            .unwrap_or_else(|why| panic!("SIPp's response does not validate: {why}"));
        assert_eq!(verdict, Verdict::Accept);
    }
    let answer = SessionDescription::parse(std::str::from_utf8(ok.body()).unwrap())
        .unwrap_or_else(|e| panic!("SIPp's SDP answer does not parse: {e}"));
    assert_eq!(answer.media.len(), 1);
    let to = ok.header_values(HeaderName::To).next().unwrap();
    let contact = ok.contacts().next().expect("a Contact in the 200").unwrap();
    let dialog_target = contact.addr().expect("an address").uri().to_string();

    // The ACK to a 2xx is its own transaction, sent to the remote target.
    let ack = request("ACK", &dialog_target, 1, "ack1", to)
        .build()
        .unwrap();
    sock.send_to(ack.as_bytes(), remote).unwrap();

    let bye = request("BYE", &dialog_target, 2, "bye1", to)
        .build()
        .unwrap();
    let responses = transact(&sock, remote, &bye, until);
    assert_eq!(
        responses.last().unwrap().status(),
        Some(200),
        "SIPp ends the call"
    );

    let status = sipp.wait(until);
    assert_eq!(status.code(), Some(0), "SIPp reports a failed call");
}
