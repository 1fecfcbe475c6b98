//! Two endpoints keyed from SDES material exchange one second of 20 ms audio
//! frames (50 RTP packets each way, plus RTCP), then show that a tampered and
//! a replayed packet are refused.
//!
//! Run with `cargo run -p carevox-srtp --example sdes_call`.

#![allow(clippy::print_stdout)]

use carevox_srtp::{Config, Context, Error, MasterKey};

/// What each side put in its `a=crypto` line (base64-decoded key||salt).
const ALICE_INLINE: [u8; 30] = [
    0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
    0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6,
];
const BOB_INLINE: [u8; 30] = [
    0x5b, 0xa1, 0x06, 0x4e, 0x30, 0xec, 0x51, 0x61, 0x3c, 0xad, 0x92, 0x6c, 0x5a, 0x28, 0xef, 0x73,
    0x1e, 0xc7, 0xfb, 0x39, 0x7f, 0x70, 0xa9, 0x60, 0x65, 0x3c, 0xaf, 0x06, 0x55, 0x4c,
];
const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// One endpoint: it sends with its own key and receives with the peer's.
struct Endpoint {
    name: &'static str,
    ssrc: u32,
    send: Context,
    recv: Context,
}

impl Endpoint {
    fn new(name: &'static str, ssrc: u32, own: &[u8], peer: &[u8]) -> Result<Endpoint, Error> {
        let mut send = Context::new(MasterKey::from_sdes_name(SUITE, own)?, Config::new())?;
        send.add_outbound_stream(ssrc)?;
        let recv = Context::new(MasterKey::from_sdes_name(SUITE, peer)?, Config::new())?;
        Ok(Endpoint {
            name,
            ssrc,
            send,
            recv,
        })
    }
}

/// A 20 ms G.711 frame: 12-byte RTP header and 160 bytes of audio.
fn frame(ssrc: u32, seq: u16, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[0x80, 0x00]);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend((0..160u8).map(|i| i.wrapping_mul(3) ^ 0xd5));
}

fn main() -> Result<(), Error> {
    let mut alice = Endpoint::new("alice", 0xa11c_e000, &ALICE_INLINE, &BOB_INLINE)?;
    let mut bob = Endpoint::new("bob", 0x0000_b0b0, &BOB_INLINE, &ALICE_INLINE)?;

    let (mut plain, mut wire, mut heard) = (Vec::new(), Vec::new(), Vec::new());
    let mut last_from_alice = Vec::new();
    let mut bytes = 0usize;
    for seq in 0..50u16 {
        for alice_speaks in [true, false] {
            let (from, to) = if alice_speaks {
                (&mut alice, &mut bob)
            } else {
                (&mut bob, &mut alice)
            };
            frame(from.ssrc, seq.wrapping_add(65_530), &mut plain);
            from.send.protect_rtp_vec(&plain, &mut wire)?;
            to.recv.unprotect_rtp_vec(&wire, &mut heard)?;
            assert_eq!(heard, plain, "{} heard what {} said", to.name, from.name);
            bytes += wire.len();
            if alice_speaks {
                last_from_alice.clone_from(&wire);
            }
        }
    }
    println!(
        "1 s of audio each way: 100 frames, {bytes} bytes of SRTP, sequence numbers wrapped (ROC {})",
        bob.recv.inbound_roc(alice.ssrc).unwrap_or_default()
    );

    // An RTCP sender report from Bob.
    let mut rtcp = vec![0x80, 200, 0x00, 0x06];
    rtcp.extend_from_slice(&bob.ssrc.to_be_bytes());
    rtcp.extend_from_slice(&[0; 20]);
    bob.send.protect_rtcp_vec(&rtcp, &mut wire)?;
    alice.recv.unprotect_rtcp_vec(&wire, &mut heard)?;
    println!(
        "RTCP sender report: {} bytes protected, verified by alice",
        wire.len()
    );

    // Someone on the path changes one bit of the next packet.
    frame(alice.ssrc, 50u16.wrapping_add(65_530), &mut plain);
    alice.send.protect_rtp_vec(&plain, &mut wire)?;
    let mut tampered = wire.clone();
    if let Some(b) = tampered.get_mut(40) {
        *b ^= 0x01;
    }
    match bob.recv.unprotect_rtp_vec(&tampered, &mut heard) {
        Err(e @ Error::AuthenticationFailed { .. }) => println!("tampered packet refused: {e}"),
        other => println!("unexpected result for a tampered packet: {other:?}"),
    }
    // The genuine packet still goes through: the forgery changed nothing.
    bob.recv.unprotect_rtp_vec(&wire, &mut heard)?;

    // Someone replays a packet that was already delivered.
    match bob.recv.unprotect_rtp_vec(&last_from_alice, &mut heard) {
        Err(e @ Error::Replay { .. }) => println!("replayed packet refused: {e}"),
        other => println!("unexpected result for a replayed packet: {other:?}"),
    }
    Ok(())
}
