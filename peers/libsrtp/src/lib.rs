//! A thin, safe binding to Cisco libsrtp2 as Debian ships it
//! (`libsrtp2-dev`), through a small C shim that includes the real
//! `<srtp2/srtp.h>`. Used only by the differential tests and benchmarks of
//! `carevox-srtp`.
//!
//! Suites are numbered as in `carevox_srtp::Suite::ALL`: 0 and 1
//! AES_CM_128_HMAC_SHA1_80/_32, 2 and 3 AES_256_CM_HMAC_SHA1_80/_32, 4 and 5
//! AEAD_AES_128_GCM / AEAD_AES_256_GCM. libsrtp numbers the first SRTCP
//! packet with index 1.

use std::ffi::{c_int, c_ulong, c_void};
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
        let expected = match suite {
            0 | 1 => 30,
            2 | 3 => 46,
            4 => 28,
            5 => 44,
            _ => return Err(Status(-1)),
        };
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
