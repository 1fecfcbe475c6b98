//! The relay server of the load measurement, through its line protocol: one
//! call set up by offer and answer, a packet relayed each way, each leg
//! keyed by the relay on its own (the sender's key does not open what the
//! relay sends), a bad request refused, the counters at reset.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)]

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use carevox::media::{answer_audio, offer_crypto, offerer_srtp};
use carevox::relay::MediaPeer;
use carevox::sdes::{SdesOptions, srtp_context};
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::crypto::CryptoSuite;
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use carevox::srtp::Context;
use data_encoding::BASE64;
use ring::rand::SystemRandom;

fn request(stdin: &mut ChildStdin, stdout: &mut BufReader<ChildStdout>, line: &str) -> String {
    writeln!(stdin, "{line}").unwrap();
    stdin.flush().unwrap();
    let mut reply = String::new();
    stdout.read_line(&mut reply).unwrap();
    reply.trim_end().to_owned()
}

fn sdp_of(reply: &str) -> SessionDescription {
    let b64 = reply
        .strip_prefix("sdp ")
        .unwrap_or_else(|| panic!("{reply}"));
    let text = String::from_utf8(BASE64.decode(b64.as_bytes()).unwrap()).unwrap();
    SessionDescription::parse(&text).unwrap()
}

/// Sends one packet of `ssrc` sealed by `outbound` from `from` to `to`,
/// receives it at `at`, checks that `sender_key` does not open it and
/// `inbound` does, to the same RTP.
fn relay_one(
    outbound: &mut Context,
    ssrc: u32,
    from: &UdpSocket,
    to: std::net::SocketAddr,
    at: &UdpSocket,
    inbound: &mut Context,
    sender_key: &mut Context,
) {
    outbound.add_outbound_stream(ssrc).unwrap();
    let mut rtp = vec![0x80, 0, 0, 1, 0, 0, 0, 160];
    rtp.extend_from_slice(&ssrc.to_be_bytes());
    rtp.extend_from_slice(&[0xd5; 160]);
    let mut buf = vec![0u8; 1500];
    buf[..rtp.len()].copy_from_slice(&rtp);
    let len = outbound.protect_rtp_in_place(&mut buf, rtp.len()).unwrap();
    from.send_to(&buf[..len], to).unwrap();
    let mut got = vec![0u8; 1500];
    let (n, _) = at.recv_from(&mut got).unwrap();
    let mut copy = got[..n].to_vec();
    assert!(
        sender_key.unprotect_rtp_in_place(&mut copy, n).is_err(),
        "the sender's own key opened what the relay sent"
    );
    let plain = inbound.unprotect_rtp_in_place(&mut got, n).unwrap();
    assert_eq!(&got[..plain], &rtp[..]);
}

#[test]
fn a_call_through_the_relay_server_is_keyed_by_the_relay_on_each_leg() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_relay-server"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let rng = SystemRandom::new();
    let options = SdesOptions::new();

    let caller_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let callee_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&caller_socket, &callee_socket] {
        // A guard against a hang, not a measurement.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let caller_port = caller_socket.local_addr().unwrap().port();
    let callee_port = callee_socket.local_addr().unwrap().port();

    let caller_line = offer_crypto(1, CryptoSuite::AesCm128HmacSha1_80, &rng).unwrap();
    let offer = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {caller_port} RTP/SAVP 0\r\na=crypto:{caller_line}\r\n"
    );
    let to_callee = sdp_of(&request(
        &mut stdin,
        &mut stdout,
        &format!("offer c1 {}", BASE64.encode(offer.as_bytes())),
    ));
    let relay_b = MediaPeer::audio_of(&to_callee).unwrap().rtp;
    // The callee takes another suite than the caller's leg: the relay
    // offered every suite it keys.
    let mut caps = AudioCapabilities::new(vec![Codec::pcmu()]);
    caps.crypto_suites = vec![CryptoSuite::AeadAes128Gcm];
    let answered = answer_audio(
        &to_callee,
        &caps,
        &LocalMedia::new("127.0.0.1", callee_port, "2"),
        &rng,
        &options,
    )
    .unwrap();
    let callee_line = answered
        .answer
        .audio
        .as_ref()
        .unwrap()
        .srtp
        .as_ref()
        .unwrap()
        .local
        .clone();
    let mut callee = answered.srtp.unwrap();
    let to_caller = sdp_of(&request(
        &mut stdin,
        &mut stdout,
        &format!(
            "answer c1 {}",
            BASE64.encode(answered.answer.sdp.to_string().as_bytes())
        ),
    ));
    let relay_a = MediaPeer::audio_of(&to_caller).unwrap().rtp;
    let mut caller =
        offerer_srtp(std::slice::from_ref(&caller_line), &to_caller, &options).unwrap();
    assert_ne!(relay_a, relay_b);

    relay_one(
        &mut caller.outbound,
        0x1111,
        &caller_socket,
        relay_a,
        &callee_socket,
        &mut callee.inbound,
        &mut srtp_context(&caller_line, &options).unwrap(),
    );
    relay_one(
        &mut callee.outbound,
        0x2222,
        &callee_socket,
        relay_b,
        &caller_socket,
        &mut caller.inbound,
        &mut srtp_context(&callee_line, &options).unwrap(),
    );

    assert!(request(&mut stdin, &mut stdout, "answer c1 e30=").starts_with("err "));
    assert!(request(&mut stdin, &mut stdout, "hello").starts_with("err "));
    assert_eq!(request(&mut stdin, &mut stdout, "reset"), "ok 2 2 0");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
