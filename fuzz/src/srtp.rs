//! Fuzz entry points of carevox-srtp: SRTP and SRTCP unprotect on arbitrary
//! bytes.
//!
//! The first input byte chooses the suite (low three bits, modulo 6) and
//! whether the context uses a one-byte MKI (bit 3); the rest is the packet.
//! The keys are fixed: for AES_CM_128_HMAC_SHA1_80, AES_256_CM_HMAC_SHA1_80
//! and AEAD_AES_128_GCM they are those of libsrtp's pipeline vectors, so the
//! seed corpus holds real protected packets that reach the decryption paths.

use carevox_srtp::{Config, Context, Error, MasterKey, Suite};

/// Decodes the fixed hex keys below.
fn hex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .expect("the fixed keys are hex")
}

/// The receiving context the selector byte asks for.
fn context(selector: u8) -> Option<Context> {
    let suite = *Suite::ALL.get(usize::from(selector & 7) % Suite::ALL.len())?;
    let (key, salt) = match suite {
        Suite::AesCm128HmacSha1_80 => (
            hex("e1f97a0d3e018be0d64fa32c06de4139"),
            hex("0ec675ad498afeebb6960b3aabe6"),
        ),
        Suite::AesCm256HmacSha1_80 => (
            hex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6"),
            hex("3b04803de51ee7c96423ab5b78d2"),
        ),
        Suite::AeadAes128Gcm => (
            hex("000102030405060708090a0b0c0d0e0f"),
            hex("a0a1a2a3a4a5a6a7a8a9aaab"),
        ),
        _ => (vec![0x42; suite.key_len()], vec![0x24; suite.salt_len()]),
    };
    let mut master = MasterKey::new(suite, &key, &salt).ok()?;
    if selector & 8 != 0 {
        master = master.with_mki(&[selector]).ok()?;
    }
    Context::new(master, Config::new()).ok()
}

fn unprotect(data: &[u8], rtcp: bool) {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let Some(mut ctx) = context(selector) else {
        return;
    };
    let mut out = Vec::new();
    let run = |ctx: &mut Context, out: &mut Vec<u8>| {
        if rtcp {
            ctx.unprotect_rtcp_vec(packet, out)
        } else {
            ctx.unprotect_rtp_vec(packet, out)
        }
    };
    if run(&mut ctx, &mut out).is_ok() {
        assert!(out.len() < packet.len(), "unprotect did not remove the tag");
        // The same packet again must be a replay and change nothing.
        match run(&mut ctx, &mut out) {
            Err(Error::Replay { .. }) => {}
            other => panic!("second delivery of an accepted packet gave {other:?}"),
        }
    }
    // The slice form with a short buffer never writes past it.
    let mut small = [0u8; 16];
    let result = if rtcp {
        ctx.unprotect_rtcp(packet, &mut small)
    } else {
        ctx.unprotect_rtp(packet, &mut small)
    };
    if let Ok(n) = result {
        assert!(n <= small.len());
    }
}

/// SRTP unprotect of arbitrary bytes.
pub fn srtp_unprotect_rtp(data: &[u8]) {
    unprotect(data, false);
}

/// SRTCP unprotect of arbitrary bytes.
pub fn srtp_unprotect_rtcp(data: &[u8]) {
    unprotect(data, true);
}
