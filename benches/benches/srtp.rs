//! SRTP and SRTCP protect/unprotect: carevox-srtp beside libsrtp2 (Debian,
//! through `peers/libsrtp`), `rtc-srtp` and `webrtc-srtp`, in one run.
//!
//! Cases: RTP packets with a 12-byte header and 160-byte or 1200-byte
//! payload, and an 80-byte RTCP packet, for AES_CM_128_HMAC_SHA1_80,
//! AEAD_AES_128_GCM and AEAD_AES_256_GCM. Every library gets a fresh packet
//! per iteration (built outside the timed part) because carevox and libsrtp
//! refuse to protect an index twice and refuse replays when unprotecting;
//! `rtc-srtp` and `webrtc-srtp` run with their default options (no replay
//! protection) and return a newly allocated packet, as their APIs do.
//! carevox and libsrtp work in place.
//!
//! `cargo bench -p carevox-benches --bench srtp`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use carevox_benches::config;
use carevox_peer_libsrtp::{Direction, Session};
use carevox_srtp::{Config, Context, MasterKey, Suite};
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};

const SSRC: u32 = 0xcafe_babe;

#[derive(Clone, Copy)]
enum Case {
    Rtp(usize),
    Rtcp80,
}

impl Case {
    fn name(self) -> String {
        match self {
            Case::Rtp(n) => format!("rtp {n}B"),
            Case::Rtcp80 => "rtcp 80B".to_string(),
        }
    }
}

/// The n-th plaintext packet of a case.
fn plaintext(case: Case, n: u64) -> Vec<u8> {
    match case {
        Case::Rtp(payload) => {
            let mut p = Vec::with_capacity(12 + payload + 64);
            p.extend_from_slice(&[0x80, 0x00]);
            p.extend_from_slice(&(n as u16).to_be_bytes());
            p.extend_from_slice(&((n as u32).wrapping_mul(160)).to_be_bytes());
            p.extend_from_slice(&SSRC.to_be_bytes());
            p.resize(12 + payload, 0xd5);
            p
        }
        Case::Rtcp80 => {
            let mut p = Vec::with_capacity(80 + 64);
            p.extend_from_slice(&[0x80, 200, 0x00, 19]);
            p.extend_from_slice(&SSRC.to_be_bytes());
            p.resize(80, 0xab);
            p
        }
    }
}

fn rtc_profile(suite: Suite) -> rtc_srtp::protection_profile::ProtectionProfile {
    use rtc_srtp::protection_profile::ProtectionProfile as P;
    match suite {
        Suite::AesCm128HmacSha1_80 => P::Aes128CmHmacSha1_80,
        Suite::AeadAes128Gcm => P::AeadAes128Gcm,
        _ => P::AeadAes256Gcm,
    }
}

fn webrtc_profile(suite: Suite) -> webrtc_srtp::protection_profile::ProtectionProfile {
    use webrtc_srtp::protection_profile::ProtectionProfile as P;
    match suite {
        Suite::AesCm128HmacSha1_80 => P::Aes128CmHmacSha1_80,
        Suite::AeadAes128Gcm => P::AeadAes128Gcm,
        _ => P::AeadAes256Gcm,
    }
}

fn suite_no(suite: Suite) -> usize {
    Suite::ALL.iter().position(|s| *s == suite).unwrap()
}

fn material(suite: Suite) -> Vec<u8> {
    (0..suite.key_len() + suite.salt_len())
        .map(|i| (i as u8).wrapping_mul(37) ^ 0x5c)
        .collect()
}

fn carevox_pair(suite: Suite) -> (Context, Context) {
    let key = || MasterKey::from_sdes(suite, &material(suite)).unwrap();
    let mut tx = Context::new(key(), Config::new()).unwrap();
    tx.add_outbound_stream(SSRC).unwrap();
    (tx, Context::new(key(), Config::new()).unwrap())
}

fn libsrtp_pair(suite: Suite) -> (Session, Session) {
    let m = material(suite);
    (
        Session::new(suite_no(suite), &m, Direction::Outbound(SSRC), 1024, true).unwrap(),
        Session::new(suite_no(suite), &m, Direction::Inbound, 1024, true).unwrap(),
    )
}

fn rtc_pair(suite: Suite) -> (rtc_srtp::context::Context, rtc_srtp::context::Context) {
    let provider = rtc_crypto::default_provider().unwrap();
    let m = material(suite);
    let (k, s) = m.split_at(suite.key_len());
    let new = || {
        rtc_srtp::context::Context::new(k, s, rtc_profile(suite), None, None, provider.crypto())
            .unwrap()
    };
    (new(), new())
}

fn webrtc_pair(suite: Suite) -> (webrtc_srtp::context::Context, webrtc_srtp::context::Context) {
    let m = material(suite);
    let (k, s) = m.split_at(suite.key_len());
    let new =
        || webrtc_srtp::context::Context::new(k, s, webrtc_profile(suite), None, None).unwrap();
    (new(), new())
}

fn protect(g: &mut BenchmarkGroup<'_, WallTime>, suite: Suite, case: Case) {
    let rtp = matches!(case, Case::Rtp(_));
    {
        let (mut tx, _) = carevox_pair(suite);
        let overhead = if rtp {
            tx.rtp_overhead()
        } else {
            tx.rtcp_overhead()
        };
        let mut n = 0u64;
        g.bench_function("carevox-srtp", |b| {
            b.iter_batched_ref(
                || {
                    n += 1;
                    let mut p = plaintext(case, n);
                    let len = p.len();
                    p.resize(len + overhead, 0);
                    (p, len)
                },
                |(p, len)| {
                    if rtp {
                        tx.protect_rtp_in_place(p, *len).unwrap()
                    } else {
                        tx.protect_rtcp_in_place(p, *len).unwrap()
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    {
        let (mut tx, _) = libsrtp_pair(suite);
        let mut n = 0u64;
        g.bench_function("libsrtp2", |b| {
            b.iter_batched_ref(
                || {
                    n += 1;
                    plaintext(case, n)
                },
                |p| {
                    if rtp {
                        tx.protect(p).unwrap()
                    } else {
                        tx.protect_rtcp(p).unwrap()
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    {
        let (mut tx, _) = rtc_pair(suite);
        let mut n = 0u64;
        g.bench_function("rtc-srtp", |b| {
            b.iter_batched_ref(
                || {
                    n += 1;
                    plaintext(case, n)
                },
                |p| {
                    if rtp {
                        tx.encrypt_rtp(p).unwrap()
                    } else {
                        tx.encrypt_rtcp(p).unwrap()
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    {
        let (mut tx, _) = webrtc_pair(suite);
        let mut n = 0u64;
        g.bench_function("webrtc-srtp", |b| {
            b.iter_batched_ref(
                || {
                    n += 1;
                    plaintext(case, n)
                },
                |p| {
                    if rtp {
                        tx.encrypt_rtp(p).unwrap()
                    } else {
                        tx.encrypt_rtcp(p).unwrap()
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
}

fn unprotect(g: &mut BenchmarkGroup<'_, WallTime>, suite: Suite, case: Case) {
    let rtp = matches!(case, Case::Rtp(_));
    {
        let (mut tx, mut rx) = carevox_pair(suite);
        let mut n = 0u64;
        g.bench_function("carevox-srtp", |b| {
            b.iter_batched_ref(
                || {
                    n += 1;
                    let p = plaintext(case, n);
                    let mut out = Vec::with_capacity(p.len() + 64);
                    if rtp {
                        tx.protect_rtp_vec(&p, &mut out).unwrap();
                    } else {
                        tx.protect_rtcp_vec(&p, &mut out).unwrap();
                    }
                    out
                },
                |p| {
                    let len = p.len();
                    if rtp {
                        rx.unprotect_rtp_in_place(p, len).unwrap()
                    } else {
                        rx.unprotect_rtcp_in_place(p, len).unwrap()
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    {
        let (mut tx, mut rx) = libsrtp_pair(suite);
        let mut n = 0u64;
        g.bench_function("libsrtp2", |b| {
            b.iter_batched_ref(
                || {
                    n += 1;
                    let mut p = plaintext(case, n);
                    if rtp {
                        tx.protect(&mut p).unwrap()
                    } else {
                        tx.protect_rtcp(&mut p).unwrap()
                    }
                    p
                },
                |p| {
                    if rtp {
                        rx.unprotect(p).unwrap()
                    } else {
                        rx.unprotect_rtcp(p).unwrap()
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    {
        let (mut tx, mut rx) = rtc_pair(suite);
        let mut n = 0u64;
        g.bench_function("rtc-srtp", |b| {
            b.iter_batched_ref(
                || {
                    n += 1;
                    let p = plaintext(case, n);
                    if rtp {
                        tx.encrypt_rtp(&p).unwrap().to_vec()
                    } else {
                        tx.encrypt_rtcp(&p).unwrap().to_vec()
                    }
                },
                |p| {
                    if rtp {
                        rx.decrypt_rtp(p).unwrap()
                    } else {
                        rx.decrypt_rtcp(p).unwrap()
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    {
        let (mut tx, mut rx) = webrtc_pair(suite);
        let mut n = 0u64;
        g.bench_function("webrtc-srtp", |b| {
            b.iter_batched_ref(
                || {
                    n += 1;
                    let p = plaintext(case, n);
                    if rtp {
                        tx.encrypt_rtp(&p).unwrap().to_vec()
                    } else {
                        tx.encrypt_rtcp(&p).unwrap().to_vec()
                    }
                },
                |p| {
                    if rtp {
                        rx.decrypt_rtp(p).unwrap()
                    } else {
                        rx.decrypt_rtcp(p).unwrap()
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
}

fn bench(c: &mut Criterion) {
    for suite in [
        Suite::AesCm128HmacSha1_80,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
    ] {
        for case in [Case::Rtp(160), Case::Rtp(1200), Case::Rtcp80] {
            let mut g = c.benchmark_group(format!("srtp/{suite}/protect {}", case.name()));
            protect(&mut g, suite, case);
            g.finish();
            let mut g = c.benchmark_group(format!("srtp/{suite}/unprotect {}", case.name()));
            unprotect(&mut g, suite, case);
            g.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
