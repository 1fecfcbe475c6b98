//! Writes SRTP and SRTCP packets protected by libsrtp as seeds for the
//! `srtp_unprotect_rtp` and `srtp_unprotect_rtcp` fuzz targets.
//!
//!     cargo run -p carevox-peer-libsrtp --example fuzz_seeds -- OUT_DIR
//!
//! Each seed is the fuzz input format of `fuzz/src/srtp.rs`: one selector
//! byte choosing the suite (its index in `carevox_srtp::Suite::ALL`), then the
//! packet. The master keys are the ones that file fixes for each suite, so
//! the seeds authenticate and the fuzzer starts from the decryption paths.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::error::Error;
use std::fs;
use std::path::Path;

use carevox_peer_libsrtp::{Direction, Session};
use carevox_srtp::Suite;
use data_encoding::HEXLOWER_PERMISSIVE;

/// The key and salt that `fuzz/src/srtp.rs` uses for `suite`.
fn fuzz_key(suite: Suite) -> Result<Vec<u8>, Box<dyn Error>> {
    let (key, salt) = match suite {
        Suite::AesCm128HmacSha1_80 => (
            HEXLOWER_PERMISSIVE.decode(b"e1f97a0d3e018be0d64fa32c06de4139")?,
            HEXLOWER_PERMISSIVE.decode(b"0ec675ad498afeebb6960b3aabe6")?,
        ),
        Suite::AesCm256HmacSha1_80 => (
            HEXLOWER_PERMISSIVE
                .decode(b"f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6")?,
            HEXLOWER_PERMISSIVE.decode(b"3b04803de51ee7c96423ab5b78d2")?,
        ),
        Suite::AeadAes128Gcm => (
            HEXLOWER_PERMISSIVE.decode(b"000102030405060708090a0b0c0d0e0f")?,
            HEXLOWER_PERMISSIVE.decode(b"a0a1a2a3a4a5a6a7a8a9aaab")?,
        ),
        _ => (vec![0x42; suite.key_len()], vec![0x24; suite.salt_len()]),
    };
    Ok([key, salt].concat())
}

/// libsrtp's number for `suite` in the peer's shim, if it has one.
fn libsrtp_suite(suite: Suite) -> Option<usize> {
    match suite.sdes_name() {
        "AES_CM_128_HMAC_SHA1_80" => Some(0),
        "AES_CM_128_HMAC_SHA1_32" => Some(1),
        "AES_256_CM_HMAC_SHA1_80" => Some(2),
        "AES_256_CM_HMAC_SHA1_32" => Some(3),
        "AEAD_AES_128_GCM" => Some(4),
        "AEAD_AES_256_GCM" => Some(5),
        _ => None,
    }
}

/// RTP packets of several shapes: plain, with CSRCs, with a header
/// extension, with padding, and an empty payload.
fn rtp_packets(ssrc: u32) -> Vec<Vec<u8>> {
    let header = |first: u8, seq: u16| {
        let mut p = vec![first, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(160 * u32::from(seq)).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p
    };
    let mut out = Vec::new();
    let mut plain = header(0x80, 1);
    plain.extend(std::iter::repeat_n(0xd5, 160));
    out.push(plain);
    let mut csrc = header(0x82, 2);
    csrc.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
    csrc.extend(std::iter::repeat_n(0x55, 20));
    out.push(csrc);
    let mut ext = header(0x90, 3);
    ext.extend_from_slice(&[0xbe, 0xde, 0x00, 0x01, 0x10, 0xff, 0x00, 0x00]);
    ext.extend(std::iter::repeat_n(0x7f, 33));
    out.push(ext);
    let mut padded = header(0xa0, 4);
    padded.extend(std::iter::repeat_n(0x11, 13));
    padded.extend_from_slice(&[0, 0, 3]);
    out.push(padded);
    out.push(header(0x80, 5));
    out
}

/// A sender report with one report block, and a receiver report followed by
/// an SDES chunk (a compound packet).
fn rtcp_packets(ssrc: u32) -> Vec<Vec<u8>> {
    let mut sr = vec![0x81, 200, 0x00, 0x0c];
    sr.extend_from_slice(&ssrc.to_be_bytes());
    sr.extend(std::iter::repeat_n(0x01, 20));
    sr.extend(std::iter::repeat_n(0x02, 24));
    let mut rr = vec![0x80, 201, 0x00, 0x01];
    rr.extend_from_slice(&ssrc.to_be_bytes());
    rr.extend_from_slice(&[0x81, 202, 0x00, 0x03]);
    rr.extend_from_slice(&ssrc.to_be_bytes());
    rr.extend_from_slice(&[1, 4, b'u', b'n', b'i', b't', 0, 0]);
    vec![sr, rr]
}

fn main() -> Result<(), Box<dyn Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: fuzz_seeds OUT_DIR (writes OUT_DIR/srtp_unprotect_rtp and _rtcp)")?;
    let rtp_dir = Path::new(&out).join("srtp_unprotect_rtp");
    let rtcp_dir = Path::new(&out).join("srtp_unprotect_rtcp");
    fs::create_dir_all(&rtp_dir)?;
    fs::create_dir_all(&rtcp_dir)?;
    let ssrc = 0xcafe_f00d;
    let mut written = 0;
    for (selector, suite) in Suite::ALL.iter().enumerate() {
        let Some(number) = libsrtp_suite(*suite) else {
            eprintln!(
                "{}: libsrtp has no such suite here, no seeds",
                suite.sdes_name()
            );
            continue;
        };
        let selector = u8::try_from(selector)?;
        let key = fuzz_key(*suite)?;
        let mut session = Session::new(number, &key, Direction::Outbound(ssrc), 128, true)
            .map_err(|s| format!("libsrtp refused {}: {s:?}", suite.sdes_name()))?;
        for (i, mut packet) in rtp_packets(ssrc).into_iter().enumerate() {
            session
                .protect(&mut packet)
                .map_err(|s| format!("protect: {s:?}"))?;
            let mut seed = vec![selector];
            seed.extend_from_slice(&packet);
            fs::write(
                rtp_dir.join(format!("libsrtp-{}-{i}", suite.sdes_name())),
                seed,
            )?;
            written += 1;
        }
        for (i, mut packet) in rtcp_packets(ssrc).into_iter().enumerate() {
            session
                .protect_rtcp(&mut packet)
                .map_err(|s| format!("protect_rtcp: {s:?}"))?;
            let mut seed = vec![selector];
            seed.extend_from_slice(&packet);
            fs::write(
                rtcp_dir.join(format!("libsrtp-{}-{i}", suite.sdes_name())),
                seed,
            )?;
            written += 1;
        }
    }
    println!("{written} seeds written under {out}");
    Ok(())
}
