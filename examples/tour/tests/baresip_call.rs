//! A real softphone calls a carevox endpoint: baresip (Debian
//! `baresip-core`) dials a user agent server built from carevox-sip on
//! 127.0.0.1, offering SRTP with SDES keys; the server answers with its own
//! key from the facade's `carevox::media::answer_audio`, which also keys
//! carevox-srtp in each direction from the two `a=crypto` lines; it
//! authenticates and decrypts every packet baresip sends,
//! sends protected audio back, and hangs up with a BYE.
//!
//! baresip must be installed: `cargo xtask test` and `.ci/run` install it
//! (`.ci/install-deps`); without it this test fails and says so.

#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]
#![allow(clippy::panic, clippy::indexing_slicing, clippy::print_stderr)]
#![allow(clippy::cast_possible_truncation)]

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use carevox::media::answer_audio;
use carevox::sdes::SdesOptions;
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use carevox::sip::{HeaderName, Message, MessageBuilder, Method, ValidationPolicy, validate};

const DEADLINE: Duration = Duration::from_secs(60);
/// Packets to take from baresip (20 ms each) before hanging up: long
/// enough for baresip's once-a-second status line to show what it received.
const PACKETS: usize = 200;
const OUR_SSRC: u32 = 0x0cae_5011;

/// A baresip process that is killed and reaped however the test ends.
struct Baresip(Child);

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts baresip with a configuration in `home`: loopback only, no sound
/// card (a 440 Hz sine as the microphone), SRTP with SDES mandatory, PCMU.
fn start_baresip(home: &Path, dial: &str) -> Baresip {
    let conf = home.join(".baresip");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("config"),
        "sip_listen 127.0.0.1:0\n\
         net_interface 127.0.0.1\n\
         module_path /usr/lib/baresip/modules\n\
         module g711.so\n\
         module ausine.so\n\
         module srtp.so\n\
         module_app account.so\n\
         module_app menu.so\n\
         audio_source ausine,440\n\
         ausrc_srate 48000\n\
         ausrc_channels 2\n\
         auplay_srate 48000\n\
         auplay_channels 2\n",
    )
    .unwrap();
    std::fs::write(
        conf.join("accounts"),
        "<sip:alice@127.0.0.1>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU\n",
    )
    .unwrap();
    let out = std::fs::File::create(home.join("stdout")).unwrap();
    let err = std::fs::File::create(home.join("stderr")).unwrap();
    let child = Command::new("baresip")
        .env("HOME", home)
        .arg("-f")
        .arg(&conf)
        .args(["-t", "30", "-e", &format!("/dial {dial}")])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn();
    match child {
        Ok(c) => Baresip(c),
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "baresip is not installed (Debian package baresip-core): run `bash .ci/install-deps`"
        ),
        Err(e) => panic!("cannot start baresip: {e}"),
    }
}

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    s
}

fn recv(sock: &UdpSocket, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match sock.recv_from(buf) {
        Ok(got) => Some(got),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("recv: {e}"),
    }
}

/// A PCMU packet of frame `i`: a 1 kHz square-ish tone, enough for baresip
/// to decode something other than silence.
fn our_packet(i: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(172);
    p.extend_from_slice(&[0x80, 0x00]);
    p.extend_from_slice(&(i as u16).to_be_bytes());
    p.extend_from_slice(&(i * 160).to_be_bytes());
    p.extend_from_slice(&OUR_SSRC.to_be_bytes());
    p.extend((0..160).map(|n| if n % 8 < 4 { 0x20 } else { 0xa0 }));
    p
}

/// The largest received bit rate baresip printed in its status line
/// (`audio=<tx>/<rx> (bit/s)`).
fn baresip_rx_rate(stdout: &str) -> u64 {
    stdout
        .split("audio=")
        .skip(1)
        .filter_map(|s| s.split_once(' ').map(|(rates, _)| rates))
        .filter_map(|rates| rates.split_once('/'))
        .filter_map(|(_, rx)| rx.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn baresip_calls_with_srtp_and_both_directions_decrypt() {
    let home = tempfile::tempdir().unwrap();
    let sig = socket();
    let media = socket();
    let sig_addr = sig.local_addr().unwrap();
    let media_addr = media.local_addr().unwrap();
    let rng = ring::rand::SystemRandom::new();
    let baresip = start_baresip(home.path(), &format!("sip:bob@{sig_addr}"));
    let until = Instant::now() + DEADLINE;
    let mut buf = vec![0u8; 65_535];

    // The INVITE, answered with our SDES key.
    let (invite, peer) = loop {
        assert!(Instant::now() < until, "no INVITE from baresip");
        let Some((n, from)) = recv(&sig, &mut buf) else {
            continue;
        };
        let msg = Message::parse(Bytes::copy_from_slice(&buf[..n])).unwrap();
        assert_eq!(
            validate(&msg, &ValidationPolicy::uas(&[])).unwrap(),
            carevox::sip::Verdict::Accept
        );
        if msg.method() == Some(Method::Invite) {
            break (msg, from);
        }
    };
    let offer = SessionDescription::parse_bytes(invite.body()).unwrap();
    let local = LocalMedia::new("127.0.0.1", media_addr.port(), "7");
    // Secure defaults: SRTP required, plain RTP refused.
    let caps = AudioCapabilities::new(vec![Codec::pcmu()]);
    let answered = answer_audio(&offer, &caps, &local, &rng, &SdesOptions::new()).unwrap();
    let answer = answered.answer;
    let audio = answer.audio.as_ref().expect("audio accepted");
    assert!(audio.srtp.is_some(), "SDES negotiated");
    let srtp = answered.srtp.expect("SRTP keyed from the SDES lines");
    let (mut inbound, mut outbound) = (srtp.inbound, srtp.outbound);
    outbound.add_outbound_stream(OUR_SSRC).unwrap();
    let ok = MessageBuilder::response_to(&invite, 200, "OK")
        .unwrap()
        .to_tag("cvx1")
        .unwrap()
        .header("Contact", &format!("<sip:bob@{sig_addr}>"))
        .unwrap()
        .body("application/sdp", Bytes::from(answer.sdp.to_string()))
        .unwrap()
        .build()
        .unwrap();
    sig.send_to(ok.as_bytes(), peer).unwrap();

    // Media: every packet from baresip authenticated and decrypted; one of
    // ours protected and sent back for each.
    let (mut decrypted, mut refused, mut sent) = (0usize, 0usize, 0u32);
    let mut payload_bytes = std::collections::BTreeSet::new();
    let (mut plain, mut wire) = (Vec::new(), Vec::new());
    while decrypted < PACKETS {
        assert!(
            Instant::now() < until,
            "baresip sent {decrypted} packets in time"
        );
        // Answer retransmitted INVITEs (until baresip's ACK stops them).
        if let Some((n, from)) = recv(&sig, &mut buf) {
            let msg = Message::parse(Bytes::copy_from_slice(&buf[..n])).unwrap();
            if msg.method() == Some(Method::Invite) {
                sig.send_to(ok.as_bytes(), from).unwrap();
            }
        }
        let Some((n, from)) = recv(&media, &mut buf) else {
            continue;
        };
        match inbound.unprotect_rtp_vec(&buf[..n], &mut plain) {
            Ok(()) => {
                decrypted += 1;
                assert_eq!(plain[1] & 0x7f, 0, "PCMU");
                payload_bytes.extend(plain[12..].iter().copied());
                outbound
                    .protect_rtp_vec(&our_packet(sent), &mut wire)
                    .unwrap();
                media.send_to(&wire, from).unwrap();
                sent += 1;
            }
            Err(e) => {
                eprintln!("refused a packet from baresip: {e}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 0, "every packet from baresip authenticates");
    assert!(
        payload_bytes.len() > 8,
        "baresip's tone decrypts to varied samples"
    );

    // Hang up: our BYE in baresip's dialog.
    let from = invite.header_values(HeaderName::To).next().unwrap();
    let to = invite.header_values(HeaderName::From).next().unwrap();
    let contact = invite.contacts().next().unwrap().unwrap();
    let target = contact.addr().unwrap().uri().to_string();
    let bye = MessageBuilder::request("BYE", &target)
        .unwrap()
        .header(
            "Via",
            &format!("SIP/2.0/UDP {sig_addr};branch=z9hG4bKcvxbye1"),
        )
        .unwrap()
        .header("Max-Forwards", "70")
        .unwrap()
        .header("From", &format!("{from};tag=cvx1"))
        .unwrap()
        .header("To", to)
        .unwrap()
        .header("Call-ID", invite.call_id().unwrap())
        .unwrap()
        .header("CSeq", "1 BYE")
        .unwrap()
        .build()
        .unwrap();
    let mut next_send = Instant::now();
    let status = loop {
        assert!(Instant::now() < until, "no answer to the BYE");
        if Instant::now() >= next_send {
            sig.send_to(bye.as_bytes(), peer).unwrap();
            next_send = Instant::now() + Duration::from_millis(500);
        }
        let Some((n, _)) = recv(&sig, &mut buf) else {
            continue;
        };
        let msg = Message::parse(Bytes::copy_from_slice(&buf[..n])).unwrap();
        if let (Some(status), Ok(cseq)) = (msg.status(), msg.cseq())
            && cseq.method == Method::Bye
        {
            break status;
        }
    };
    assert_eq!(status, 200, "baresip ends the call");
    drop(baresip);

    // baresip decrypted our audio: its SRTP module reports every packet it
    // cannot decrypt and drops it; the stream announces the first packet
    // that passes, and the status line shows a received bit rate.
    let stdout = std::fs::read_to_string(home.path().join("stdout")).unwrap();
    let stderr = std::fs::read_to_string(home.path().join("stderr")).unwrap();
    let all = format!("{stdout}{stderr}");
    assert!(
        !all.contains("failed to decrypt"),
        "baresip refused our SRTP:\n{all}"
    );
    assert!(
        all.contains("incoming rtp for 'audio' established"),
        "no packet of ours reached baresip's audio stream:\n{all}"
    );
    assert!(
        baresip_rx_rate(&all) > 0,
        "baresip received no audio from us ({sent} packets sent):\n{all}"
    );
}
