//! carevox-srtp against libsrtp2, for every suite: both protect the same
//! random RTP and RTCP packets and must produce the same bytes, and each
//! unprotects what the other protected. Sequence numbers start just below
//! 65536 so that every run crosses a wrap (ROC 0 to 1).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use carevox_peer_libsrtp::{Direction, Session};
use carevox_srtp::{Config, Context, MasterKey, Suite};

/// A small deterministic generator (xorshift64*), so that failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const SSRC: u32 = 0xcafe_babe;
const RTP_PACKETS: u16 = 3000;
const RTCP_PACKETS: usize = 1000;

/// A random RTP packet: CSRCs, sometimes a header extension, sometimes
/// padding, random payload.
fn rtp(rng: &mut Rng, seq: u16) -> Vec<u8> {
    let cc = rng.below(3) as u8;
    let ext = rng.below(4) == 0;
    let pad = rng.below(8) == 0;
    let mut p = vec![0x80 | cc | if ext { 0x10 } else { 0 } | if pad { 0x20 } else { 0 }];
    p.push(rng.below(128) as u8);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&rng.bytes(4));
    p.extend_from_slice(&SSRC.to_be_bytes());
    for _ in 0..cc {
        p.extend_from_slice(&rng.bytes(4));
    }
    if ext {
        let words = rng.below(3) as u16;
        p.extend_from_slice(&[0xbe, 0xde]);
        p.extend_from_slice(&words.to_be_bytes());
        p.extend_from_slice(&rng.bytes(4 * usize::from(words)));
    }
    let payload = rng.below(1200);
    p.extend_from_slice(&rng.bytes(payload));
    if pad {
        let n = 1 + rng.below(16) as u8;
        p.extend(std::iter::repeat_n(0, usize::from(n) - 1));
        p.push(n);
    }
    p
}

/// A random RTCP packet (one or two reports).
fn rtcp(rng: &mut Rng) -> Vec<u8> {
    let words = rng.below(60);
    let mut p = vec![0x80 | rng.below(4) as u8, 200 + rng.below(5) as u8];
    p.extend_from_slice(&(words as u16 + 1).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&rng.bytes(4 + 4 * words));
    p
}

fn run(suite_no: usize, encrypt_rtcp: bool) {
    let suite = Suite::ALL[suite_no];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ suite_no as u64);
    let key_and_salt = rng.bytes(suite.key_len() + suite.salt_len());
    let master = || MasterKey::from_sdes(suite, &key_and_salt).unwrap();
    let config = if encrypt_rtcp {
        Config::new()
    } else {
        Config::new().dangerous_unencrypted_srtcp()
    };
    let mut cv_tx = Context::new(master(), config.clone()).unwrap();
    cv_tx.add_outbound_stream(SSRC).unwrap();
    let mut cv_rx = Context::new(master(), config).unwrap();
    let mut ls_tx = Session::new(
        suite_no,
        &key_and_salt,
        Direction::Outbound(SSRC),
        1024,
        encrypt_rtcp,
    )
    .unwrap_or_else(|s| panic!("{suite}: libsrtp refused the policy: {s:?}"));
    let mut ls_rx = Session::new(
        suite_no,
        &key_and_salt,
        Direction::Inbound,
        1024,
        encrypt_rtcp,
    )
    .unwrap();

    let (mut ours, mut back) = (Vec::new(), Vec::new());
    let first_seq = 65536 - u32::from(RTP_PACKETS) / 2;
    for i in 0..RTP_PACKETS {
        let seq = (first_seq + u32::from(i)) as u16;
        let plain = rtp(&mut rng, seq);
        cv_tx.protect_rtp_vec(&plain, &mut ours).unwrap();
        let mut theirs = plain.clone();
        ls_tx.protect(&mut theirs).unwrap();
        assert_eq!(ours, theirs, "{suite}: SRTP packet {i} (seq {seq}) differs");
        // Each side unprotects the other's packet.
        let mut at_libsrtp = ours.clone();
        ls_rx.unprotect(&mut at_libsrtp).unwrap();
        assert_eq!(
            at_libsrtp, plain,
            "{suite}: libsrtp unprotect of packet {i}"
        );
        cv_rx.unprotect_rtp_vec(&theirs, &mut back).unwrap();
        assert_eq!(back, plain, "{suite}: carevox unprotect of packet {i}");
    }
    assert_eq!(
        cv_rx.inbound_roc(SSRC),
        Some(1),
        "{suite}: the run crossed a wrap"
    );

    for i in 0..RTCP_PACKETS {
        let plain = rtcp(&mut rng);
        cv_tx.protect_rtcp_vec(&plain, &mut ours).unwrap();
        let mut theirs = plain.clone();
        ls_tx.protect_rtcp(&mut theirs).unwrap();
        assert_eq!(ours, theirs, "{suite}: SRTCP packet {i} differs");
        let mut at_libsrtp = ours.clone();
        ls_rx.unprotect_rtcp(&mut at_libsrtp).unwrap();
        assert_eq!(at_libsrtp, plain, "{suite}: libsrtp SRTCP unprotect {i}");
        cv_rx.unprotect_rtcp_vec(&theirs, &mut back).unwrap();
        assert_eq!(back, plain, "{suite}: carevox SRTCP unprotect {i}");
    }

    // A packet libsrtp refuses (tampered), carevox refuses too.
    let plain = rtp(&mut rng, (first_seq + u32::from(RTP_PACKETS)) as u16);
    cv_tx.protect_rtp_vec(&plain, &mut ours).unwrap();
    let last = ours.len() - 1;
    ours[last] ^= 0x80;
    let mut at_libsrtp = ours.clone();
    assert!(ls_rx.unprotect(&mut at_libsrtp).is_err());
    assert!(cv_rx.unprotect_rtp_vec(&ours, &mut back).is_err());
}

#[test]
fn aes_cm_128_hmac_sha1_80() {
    run(0, true);
}

#[test]
fn aes_cm_128_hmac_sha1_32() {
    run(1, true);
}

#[test]
fn aes_256_cm_hmac_sha1_80() {
    run(2, true);
}

#[test]
fn aes_256_cm_hmac_sha1_32() {
    run(3, true);
}

#[test]
fn aead_aes_128_gcm() {
    run(4, true);
}

#[test]
fn aead_aes_256_gcm() {
    run(5, true);
}

#[test]
fn unencrypted_srtcp_aes_cm_128_hmac_sha1_80() {
    run(0, false);
}

#[test]
fn unencrypted_srtcp_aead_aes_128_gcm() {
    run(4, false);
}

/// Two master keys told apart by 2-byte MKIs: the sender switches key half
/// way; both libraries write and read the MKI the same way.
fn run_mki(suite_no: usize) {
    let suite = Suite::ALL[suite_no];
    let mut rng = Rng(0x51_7cc1_b727_220a ^ suite_no as u64);
    let km1 = rng.bytes(suite.key_len() + suite.salt_len());
    let km2 = rng.bytes(suite.key_len() + suite.salt_len());
    let (m1, m2) = ([0x01, 0xa1], [0x02, 0xb2]);
    let key = |km: &[u8], mki: &[u8]| {
        MasterKey::from_sdes(suite, km)
            .unwrap()
            .with_mki(mki)
            .unwrap()
    };
    let cv = || {
        let mut c = Context::new(key(&km1, &m1), Config::new()).unwrap();
        c.add_key(key(&km2, &m2)).unwrap();
        c
    };
    let mut cv_tx = cv();
    cv_tx.add_outbound_stream(SSRC).unwrap();
    let mut cv_rx = cv();
    let keys = [km1.as_slice(), km2.as_slice()];
    let mkis = [m1.as_slice(), m2.as_slice()];
    let mut ls_tx = Session::with_two_keys(suite_no, keys, mkis, Direction::Outbound(SSRC), 1024)
        .unwrap_or_else(|s| panic!("{suite}: libsrtp refused the MKI policy: {s:?}"));
    let mut ls_rx = Session::with_two_keys(suite_no, keys, mkis, Direction::Inbound, 1024).unwrap();
    let (mut ours, mut back) = (Vec::new(), Vec::new());
    for i in 0..400u16 {
        let key_no = u32::from(i >= 200);
        if i == 200 {
            cv_tx.set_active_key(&m2).unwrap();
        }
        let plain = rtp(&mut rng, i.wrapping_add(65_400));
        cv_tx.protect_rtp_vec(&plain, &mut ours).unwrap();
        let mut theirs = plain.clone();
        ls_tx.protect_mki(&mut theirs, key_no).unwrap();
        assert_eq!(ours, theirs, "{suite}: SRTP packet {i} with MKI differs");
        let mut at_libsrtp = ours.clone();
        ls_rx.unprotect_mki(&mut at_libsrtp).unwrap();
        assert_eq!(at_libsrtp, plain);
        cv_rx.unprotect_rtp_vec(&theirs, &mut back).unwrap();
        assert_eq!(back, plain);

        let plain = rtcp(&mut rng);
        cv_tx.protect_rtcp_vec(&plain, &mut ours).unwrap();
        let mut theirs = plain.clone();
        ls_tx.protect_rtcp_mki(&mut theirs, key_no).unwrap();
        assert_eq!(ours, theirs, "{suite}: SRTCP packet {i} with MKI differs");
        // libsrtp 2.5.0 does not read back SRTCP with an MKI under the `_32`
        // policies, not even its own packets (srtp_err_status_bad_mki; the
        // SRTCP tag there is 80 bits while the SRTP tag is 32); the bytes
        // above still match, and carevox reads libsrtp's packets below.
        if suite.rtp_tag_len() == suite.rtcp_tag_len() {
            let mut at_libsrtp = ours.clone();
            ls_rx
                .unprotect_rtcp_mki(&mut at_libsrtp)
                .unwrap_or_else(|s| panic!("{suite}: libsrtp SRTCP MKI unprotect {i}: {s:?}"));
            assert_eq!(at_libsrtp, plain);
        }
        cv_rx.unprotect_rtcp_vec(&theirs, &mut back).unwrap();
        assert_eq!(back, plain);
    }
    assert_eq!(cv_rx.key_usage(0), Some((200, 200)));
    assert_eq!(cv_rx.key_usage(1), Some((200, 200)));
}

/// The suites libsrtp is compared on: the first six of `Suite::ALL`. The
/// AES-192 suites (positions 6 and 7) are left out: libsrtp 2.5.0's
/// AES_192_CM output does not match carevox-srtp's, which follows the RFC
/// 6188 section 7 AES-192 key derivation vector (tested in carevox-srtp).
const COMPARED_SUITES: usize = 6;

#[test]
fn mki_rekey_every_suite() {
    assert_eq!(Suite::ALL[COMPARED_SUITES - 1], Suite::AeadAes256Gcm);
    for suite_no in 0..COMPARED_SUITES {
        run_mki(suite_no);
    }
}
