//! A thin, safe binding to Cisco libsrtp2 as Debian ships it
//! (`libsrtp2-dev`), through a small C shim that includes the real
//! `<srtp2/srtp.h>`. Used only by the differential tests and benchmarks of
//! `carevox-srtp`.
//!
//! Suites are numbered as in `carevox_srtp::Suite::ALL`: 0 and 1
//! AES_CM_128_HMAC_SHA1_80/_32, 2 and 3 AES_256_CM_HMAC_SHA1_80/_32, 4 and 5
//! AEAD_AES_128_GCM / AEAD_AES_256_GCM. libsrtp numbers the first SRTCP
//! packet with index 1.

use std::ffi::{c_int, c_uint, c_ulong, c_void};
use std::sync::OnceLock;

type SrtpT = *mut c_void;

unsafe extern "C" {
    fn cv_libsrtp_init() -> c_int;
    fn cv_libsrtp_create(
        out: *mut SrtpT,
        suite: c_int,
        key_salt: *const u8,
        inbound: c_int,
        ssrc: u32,
        window: c_ulong,
        encrypt_rtcp: c_int,
    ) -> c_int;
    fn cv_libsrtp_create_mki(
        out: *mut SrtpT,
        suite: c_int,
        key_salt_1: *const u8,
        key_salt_2: *const u8,
        mki_1: *const u8,
        mki_2: *const u8,
        mki_len: c_uint,
        inbound: c_int,
        ssrc: u32,
        window: c_ulong,
    ) -> c_int;
    fn cv_libsrtp_protect_mki(s: SrtpT, buf: *mut u8, len: *mut c_int, key: c_uint) -> c_int;
    fn cv_libsrtp_unprotect_mki(s: SrtpT, buf: *mut u8, len: *mut c_int) -> c_int;
    fn cv_libsrtp_protect_rtcp_mki(s: SrtpT, buf: *mut u8, len: *mut c_int, key: c_uint) -> c_int;
    fn cv_libsrtp_unprotect_rtcp_mki(s: SrtpT, buf: *mut u8, len: *mut c_int) -> c_int;
    fn cv_libsrtp_protect(s: SrtpT, buf: *mut u8, len: *mut c_int) -> c_int;
    fn cv_libsrtp_unprotect(s: SrtpT, buf: *mut u8, len: *mut c_int) -> c_int;
    fn cv_libsrtp_protect_rtcp(s: SrtpT, buf: *mut u8, len: *mut c_int) -> c_int;
    fn cv_libsrtp_unprotect_rtcp(s: SrtpT, buf: *mut u8, len: *mut c_int) -> c_int;
    fn cv_libsrtp_dealloc(s: SrtpT) -> c_int;
    fn cv_libsrtp_max_trailer() -> c_int;
}

static INIT: OnceLock<c_int> = OnceLock::new();

/// A libsrtp error status (`srtp_err_status_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub i32);

/// Longest trailer libsrtp may append (`SRTP_MAX_TRAILER_LEN`).
pub fn max_trailer() -> usize {
    // SAFETY: returns a compile-time constant; no arguments, no state.
    let n = unsafe { cv_libsrtp_max_trailer() };
    usize::try_from(n).unwrap_or(0)
}

/// Direction of a session: libsrtp ties each stream to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Protects packets of one SSRC.
    Outbound(u32),
    /// Unprotects packets of any SSRC.
    Inbound,
}

/// One libsrtp session (`srtp_t`).
#[derive(Debug)]
pub struct Session {
    raw: SrtpT,
}

fn init() -> Result<(), Status> {
    // SAFETY: srtp_init has no preconditions; `OnceLock` makes this the
    // only call, so no two threads initialise libsrtp at once.
    let status = *INIT.get_or_init(|| unsafe { cv_libsrtp_init() });
    if status == 0 {
        Ok(())
    } else {
        Err(Status(status))
    }
}

/// Bytes of master key and salt for suite number `suite`.
fn key_salt_len(suite: usize) -> Result<usize, Status> {
    match suite {
        0 | 1 => Ok(30),
        2 | 3 => Ok(46),
        4 => Ok(28),
        5 => Ok(44),
        _ => Err(Status(-1)),
    }
}

impl Session {
    /// A session for suite number `suite` keyed with `key_and_salt` (master
    /// key then master salt), with a replay window of `window` packets.
    pub fn new(
        suite: usize,
        key_and_salt: &[u8],
        direction: Direction,
        window: u32,
        encrypt_rtcp: bool,
    ) -> Result<Session, Status> {
        init()?;
        let expected = key_salt_len(suite)?;
        if key_and_salt.len() != expected {
            return Err(Status(-1));
        }
        let (inbound, ssrc) = match direction {
            Direction::Outbound(ssrc) => (0, ssrc),
            Direction::Inbound => (1, 0),
        };
        let mut raw: SrtpT = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; `key_and_salt` holds exactly
        // the key and salt lengths libsrtp reads for this suite (checked
        // above) and libsrtp copies them during srtp_create.
        let status = unsafe {
            cv_libsrtp_create(
                &mut raw,
                c_int::try_from(suite).unwrap_or(-1),
                key_and_salt.as_ptr(),
                inbound,
                ssrc,
                c_ulong::from(window),
                c_int::from(encrypt_rtcp),
            )
        };
        if status == 0 && !raw.is_null() {
            Ok(Session { raw })
        } else {
            Err(Status(status))
        }
    }

    /// A session with two master keys (each key then salt), told apart on
    /// the wire by the MKIs `mki_1` and `mki_2` of equal length. SRTCP is
    /// encrypted.
    pub fn with_two_keys(
        suite: usize,
        keys: [&[u8]; 2],
        mkis: [&[u8]; 2],
        direction: Direction,
        window: u32,
    ) -> Result<Session, Status> {
        init()?;
        let expected = key_salt_len(suite)?;
        let [k1, k2] = keys;
        let [m1, m2] = mkis;
        if k1.len() != expected || k2.len() != expected || m1.len() != m2.len() || m1.is_empty() {
            return Err(Status(-1));
        }
        let (inbound, ssrc) = match direction {
            Direction::Outbound(ssrc) => (0, ssrc),
            Direction::Inbound => (1, 0),
        };
        let mut raw: SrtpT = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; both keys hold exactly the
        // key and salt bytes libsrtp reads for this suite and both MKIs
        // `mki_len` bytes (checked above); libsrtp copies all of them during
        // srtp_create, so the borrows need not outlive the call.
        let status = unsafe {
            cv_libsrtp_create_mki(
                &mut raw,
                c_int::try_from(suite).unwrap_or(-1),
                k1.as_ptr(),
                k2.as_ptr(),
                m1.as_ptr(),
                m2.as_ptr(),
                c_uint::try_from(m1.len()).map_err(|_| Status(-1))?,
                inbound,
                ssrc,
                c_ulong::from(window),
            )
        };
        if status == 0 && !raw.is_null() {
            Ok(Session { raw })
        } else {
            Err(Status(status))
        }
    }

    fn call_mki(
        &mut self,
        f: unsafe extern "C" fn(SrtpT, *mut u8, *mut c_int, c_uint) -> c_int,
        buf: &mut Vec<u8>,
        key: u32,
    ) -> Result<(), Status> {
        let len = buf.len();
        buf.resize(len + max_trailer(), 0);
        let mut n = c_int::try_from(len).map_err(|_| Status(-1))?;
        // SAFETY: as in `call`: a live session, `len` bytes of packet plus
        // SRTP_MAX_TRAILER_LEN bytes of room (which covers tag and MKI), and
        // a valid length pointer. libsrtp checks `key` against its key count.
        let status = unsafe { f(self.raw, buf.as_mut_ptr(), &mut n, key) };
        let n = usize::try_from(n).unwrap_or(0);
        if status == 0 {
            buf.truncate(n);
            Ok(())
        } else {
            buf.truncate(len);
            Err(Status(status))
        }
    }

    /// Protects the RTP packet in `buf` with master key number `key`,
    /// writing its MKI.
    pub fn protect_mki(&mut self, buf: &mut Vec<u8>, key: u32) -> Result<(), Status> {
        self.call_mki(cv_libsrtp_protect_mki, buf, key)
    }

    /// Unprotects the SRTP packet in `buf`, choosing the key by its MKI.
    pub fn unprotect_mki(&mut self, buf: &mut Vec<u8>) -> Result<(), Status> {
        self.call(cv_libsrtp_unprotect_mki, buf, false)
    }

    /// Protects the RTCP packet in `buf` with master key number `key`.
    pub fn protect_rtcp_mki(&mut self, buf: &mut Vec<u8>, key: u32) -> Result<(), Status> {
        self.call_mki(cv_libsrtp_protect_rtcp_mki, buf, key)
    }

    /// Unprotects the SRTCP packet in `buf`, choosing the key by its MKI.
    pub fn unprotect_rtcp_mki(&mut self, buf: &mut Vec<u8>) -> Result<(), Status> {
        self.call(cv_libsrtp_unprotect_rtcp_mki, buf, false)
    }

    fn call(
        &mut self,
        f: unsafe extern "C" fn(SrtpT, *mut u8, *mut c_int) -> c_int,
        buf: &mut Vec<u8>,
        grows: bool,
    ) -> Result<(), Status> {
        let len = buf.len();
        if grows {
            buf.resize(len + max_trailer(), 0);
        }
        let mut n = c_int::try_from(len).map_err(|_| Status(-1))?;
        // SAFETY: `self.raw` is a live session; `buf` holds `len` bytes of
        // packet plus, when protecting, SRTP_MAX_TRAILER_LEN bytes of room,
        // which is all libsrtp writes past the packet; `n` is a valid
        // pointer to the packet length.
        let status = unsafe { f(self.raw, buf.as_mut_ptr(), &mut n) };
        let n = usize::try_from(n).unwrap_or(0);
        if status == 0 {
            buf.truncate(n);
            Ok(())
        } else {
            buf.truncate(len);
            Err(Status(status))
        }
    }

    /// Protects the RTP packet in `buf` in place (the vector grows).
    pub fn protect(&mut self, buf: &mut Vec<u8>) -> Result<(), Status> {
        self.call(cv_libsrtp_protect, buf, true)
    }

    /// Unprotects the SRTP packet in `buf` in place.
    pub fn unprotect(&mut self, buf: &mut Vec<u8>) -> Result<(), Status> {
        self.call(cv_libsrtp_unprotect, buf, false)
    }

    /// Protects the RTCP packet in `buf` in place (the vector grows).
    pub fn protect_rtcp(&mut self, buf: &mut Vec<u8>) -> Result<(), Status> {
        self.call(cv_libsrtp_protect_rtcp, buf, true)
    }

    /// Unprotects the SRTCP packet in `buf` in place.
    pub fn unprotect_rtcp(&mut self, buf: &mut Vec<u8>) -> Result<(), Status> {
        self.call(cv_libsrtp_unprotect_rtcp, buf, false)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: `raw` came from srtp_create and is freed exactly once.
        unsafe {
            cv_libsrtp_dealloc(self.raw);
        }
    }
}
