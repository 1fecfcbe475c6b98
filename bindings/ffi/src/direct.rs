//! The direct media path: SRTP batches into caller-owned memory, for a
//! JVM caller with direct `ByteBuffer`s (JNA direct mapping, see
//! `bindings/kotlin/src/main/kotlin/org/carevox/SrtpDirectBatch.kt`).
//!
//! The UniFFI batch calls return a [`PacketBatch`](crate::PacketBatch)
//! record, which UniFFI serialises into a `RustBuffer` and Kotlin copies
//! again into a `ByteArray`: two copies of each packet on the way out. The
//! two functions here take the session's UniFFI handle and plain pointers
//! instead, and write the output packets, their lengths and their statuses
//! into memory the caller allocated once and reuses: one copy of each
//! packet (the caller's input into the output, where it is processed in
//! place), none on the way out. The SRTP work is the same code as the UniFFI
//! path (`run_batch_into` in `srtp.rs`).
//!
//! This is the only module of the crate with hand-written unsafe code. Every
//! pointer and length is checked before it becomes a slice; a bad argument
//! is a negative return code (see [`DirectError`]), never undefined
//! behaviour and never a panic across the boundary (`catch_unwind`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use carevox_srtp::Context;
use uniffi::{Handle, HandleAlloc};

use crate::srtp::{BatchOut, InPlace, PacketStatus, SrtpSession, check_lengths, run_batch_into};

/// Why a direct batch call did nothing. The call returns the negated code;
/// the Kotlin side maps each to the exception type of the UniFFI path
/// (`SrtpException.InvalidBatch` for an argument, `SrtpException.Other`
/// for the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum DirectError {
    /// The session handle is 0.
    NullSession = 1,
    /// A buffer pointer is null.
    NullPointer = 2,
    /// A length does not fit the address space, or the lengths array is
    /// not aligned for `u32`.
    BadArgument = 3,
    /// The packet lengths do not add up to the input's length exactly.
    BadLengths = 4,
    /// The output buffer is smaller than the input plus the SRTP overhead
    /// of every packet.
    OutputTooSmall = 5,
    /// The session's lock is poisoned.
    Poisoned = 6,
    /// The Rust side panicked (a bug); nothing was written that the return
    /// value vouches for.
    Panic = 7,
}

impl DirectError {
    fn code(self) -> i64 {
        -(self as i64)
    }
}

/// The byte a packet's status is written as in `statuses`.
fn status_byte(s: PacketStatus) -> u8 {
    match s {
        PacketStatus::Ok => 0,
        PacketStatus::AuthenticationFailed => 1,
        PacketStatus::Replay => 2,
        PacketStatus::Malformed => 3,
        PacketStatus::Stream => 4,
        PacketStatus::KeyExpired => 5,
        PacketStatus::Other => 6,
    }
}

/// The packets processed per chunk of a call: the statuses go through a
/// stack array of this size (see [`batch`]); a call takes any number.
const CHUNK: usize = 64;

/// The arguments of one direct call, as raw values from the foreign side.
struct Raw {
    session: u64,
    input: *const u8,
    in_len: u64,
    lengths: *const u32,
    count: u64,
    output: *mut u8,
    out_cap: u64,
    out_lengths: *mut u32,
    statuses: *mut u8,
}

fn to_usize(n: u64) -> Result<usize, DirectError> {
    usize::try_from(n).map_err(|_| DirectError::BadArgument)
}

/// Checks the raw arguments and runs the batch; returns the bytes written
/// to the output.
///
/// # Safety
///
/// As for [`carevox_srtp_protect_rtp_into`].
unsafe fn batch(raw: &Raw, outbound: bool) -> Result<u64, DirectError> {
    if raw.session == 0 {
        return Err(DirectError::NullSession);
    }
    if raw.input.is_null()
        || raw.lengths.is_null()
        || raw.output.is_null()
        || raw.out_lengths.is_null()
        || raw.statuses.is_null()
    {
        return Err(DirectError::NullPointer);
    }
    if !raw.lengths.is_aligned() || !raw.out_lengths.is_aligned() {
        return Err(DirectError::BadArgument);
    }
    let in_len = to_usize(raw.in_len)?;
    let count = to_usize(raw.count)?;
    let out_cap = to_usize(raw.out_cap)?;
    // A slice may not be longer than isize::MAX bytes.
    let max = isize::MAX as usize;
    if in_len > max || out_cap > max || count > max / 4 {
        return Err(DirectError::BadArgument);
    }
    // SAFETY: the caller guarantees that `session` is a live handle of an
    // `SrtpSession` that stays alive for the whole call (the Kotlin class
    // holds its own clone of the handle). `get_arc` clones the handle and
    // takes that clone back as an `Arc`, which is dropped at the end of this
    // function: the caller's reference count is untouched.
    let session: Arc<SrtpSession> = unsafe {
        <SrtpSession as HandleAlloc<crate::UniFfiTag>>::get_arc(Handle::from_raw_unchecked(
            raw.session,
        ))
    };
    // SAFETY: the pointers are non-null and aligned (checked above); the
    // caller guarantees that each points to at least as many elements as its
    // length argument says, readable (input, lengths) or writable (output,
    // out_lengths, statuses), for the duration of the call, and that the
    // writable regions overlap none of the others. The lengths are at most
    // isize::MAX bytes (checked above).
    let (input, lengths, output, out_lengths, statuses) = unsafe {
        (
            std::slice::from_raw_parts(raw.input, in_len),
            std::slice::from_raw_parts(raw.lengths, count),
            std::slice::from_raw_parts_mut(raw.output, out_cap),
            std::slice::from_raw_parts_mut(raw.out_lengths, count),
            std::slice::from_raw_parts_mut(raw.statuses, count),
        )
    };
    check_lengths(input, lengths).map_err(|_| DirectError::BadLengths)?;
    let mut guard = session.lock().map_err(|_| DirectError::Poisoned)?;
    let (ctx, room, op): (&mut Context, usize, InPlace) = if outbound {
        let room = guard.outbound.rtp_overhead();
        (&mut guard.outbound, room, Context::protect_rtp_in_place)
    } else {
        (&mut guard.inbound, 0, Context::unprotect_rtp_in_place)
    };
    let need = room
        .checked_mul(count)
        .and_then(|r| r.checked_add(in_len))
        .ok_or(DirectError::OutputTooSmall)?;
    if out_cap < need {
        return Err(DirectError::OutputTooSmall);
    }
    // The statuses are `PacketStatus` values in Rust and bytes on the
    // foreign side: processed in chunks through a stack array, so that
    // nothing is allocated per call.
    let mut written = 0usize;
    let mut at = 0usize;
    for ((lens, out_lens), stats) in lengths
        .chunks(CHUNK)
        .zip(out_lengths.chunks_mut(CHUNK))
        .zip(statuses.chunks_mut(CHUNK))
    {
        let chunk_in: usize = lens.iter().map(|&l| l as usize).sum();
        let mut st = [PacketStatus::Other; CHUNK];
        let st = &mut st[..lens.len()];
        let n = run_batch_into(
            ctx,
            &input[at..at + chunk_in],
            lens,
            room,
            op,
            BatchOut {
                data: &mut output[written..],
                lengths: out_lens,
                statuses: st,
            },
            &mut |_, _| {},
        )
        .map_err(|_| DirectError::OutputTooSmall)?;
        for (byte, s) in stats.iter_mut().zip(st.iter()) {
            *byte = status_byte(*s);
        }
        at += chunk_in;
        written += n;
    }
    u64::try_from(written).map_err(|_| DirectError::BadArgument)
}

fn entry(raw: &Raw, outbound: bool) -> i64 {
    // SAFETY: the caller's guarantees are those of `batch`, forwarded.
    match catch_unwind(AssertUnwindSafe(|| unsafe { batch(raw, outbound) })) {
        Ok(Ok(n)) => i64::try_from(n).unwrap_or(DirectError::BadArgument.code()),
        Ok(Err(e)) => e.code(),
        Err(_) => DirectError::Panic.code(),
    }
}

/// Protects a batch of RTP packets with the session's outbound context,
/// into caller-owned memory.
///
/// `input` holds `count` packets back to back, `lengths[i]` bytes each,
/// exactly `in_len` bytes in all. Each packet is copied once into `output`
/// (the protected packets back to back, in batch order; a refused one takes
/// no room) and protected there in place; `out_lengths[i]` gets its output
/// length (0 if refused) and `statuses[i]` its status (0 ok, 1
/// authentication failed, 2 replay, 3 malformed, 4 unknown stream, 5 key
/// expired, 6 other). `out_cap` must be at least `in_len` plus
/// `count` times the session's `rtp_overhead()`.
///
/// Returns the number of bytes written to `output`, or a negative
/// [`DirectError`] code, in which case no packet was processed.
///
/// # Safety
///
/// `session` is 0 or a handle of an `SrtpSession` from this library
/// (`uniffiCloneHandle()` in Kotlin) that the caller keeps alive for the
/// whole call; the call borrows it and leaves its reference count as it
/// was. Each non-null pointer points to as many elements as its length
/// argument says (`in_len` bytes, `count` `u32`s, `out_cap` bytes, `count`
/// `u32`s, `count` bytes), valid for the whole call, and the three output
/// regions overlap no other region. Nothing else is assumed: null pointers,
/// wrong lengths and misaligned arrays are refused with an error code.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn carevox_srtp_protect_rtp_into(
    session: u64,
    input: *const u8,
    in_len: u64,
    lengths: *const u32,
    count: u64,
    output: *mut u8,
    out_cap: u64,
    out_lengths: *mut u32,
    statuses: *mut u8,
) -> i64 {
    let raw = Raw {
        session,
        input,
        in_len,
        lengths,
        count,
        output,
        out_cap,
        out_lengths,
        statuses,
    };
    entry(&raw, true)
}

/// Authenticates and decrypts a batch of SRTP packets with the session's
/// inbound context, into caller-owned memory: the arguments, statuses and
/// return value of [`carevox_srtp_protect_rtp_into`], with `out_cap` at
/// least `in_len`. A replayed or altered packet gets its status and does not
/// stop the others.
///
/// # Safety
///
/// As for [`carevox_srtp_protect_rtp_into`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn carevox_srtp_unprotect_rtp_into(
    session: u64,
    input: *const u8,
    in_len: u64,
    lengths: *const u32,
    count: u64,
    output: *mut u8,
    out_cap: u64,
    out_lengths: *mut u32,
    statuses: *mut u8,
) -> i64 {
    let raw = Raw {
        session,
        input,
        in_len,
        lengths,
        count,
        output,
        out_cap,
        out_lengths,
        statuses,
    };
    entry(&raw, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

    fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0x55; 160]);
        p
    }

    /// Caller-owned buffers of a direct call, as the Kotlin class holds them.
    struct Bufs {
        input: Vec<u8>,
        lengths: Vec<u32>,
        output: Vec<u8>,
        out_lengths: Vec<u32>,
        statuses: Vec<u8>,
    }

    impl Bufs {
        fn new(packets: &[Vec<u8>], room: usize) -> Self {
            let input = packets.concat();
            let n = packets.len();
            Bufs {
                output: vec![0; input.len() + room * n],
                input,
                lengths: packets.iter().map(|p| p.len() as u32).collect(),
                out_lengths: vec![9; n],
                statuses: vec![9; n],
            }
        }

        fn call(&mut self, handle: u64, protect: bool) -> i64 {
            let f = if protect {
                carevox_srtp_protect_rtp_into
            } else {
                carevox_srtp_unprotect_rtp_into
            };
            // SAFETY: every pointer comes from a live Vec of the length
            // passed with it; the handle is live (or 0).
            unsafe {
                f(
                    handle,
                    self.input.as_ptr(),
                    self.input.len() as u64,
                    self.lengths.as_ptr(),
                    self.lengths.len() as u64,
                    self.output.as_mut_ptr(),
                    self.output.len() as u64,
                    self.out_lengths.as_mut_ptr(),
                    self.statuses.as_mut_ptr(),
                )
            }
        }
    }

    fn handle(s: &Arc<SrtpSession>) -> u64 {
        <SrtpSession as HandleAlloc<crate::UniFfiTag>>::new_handle(Arc::clone(s)).as_raw()
    }

    fn release(h: u64) {
        // SAFETY: `h` came from `new_handle` and is released once.
        drop(unsafe {
            <SrtpSession as HandleAlloc<crate::UniFfiTag>>::consume_handle(
                Handle::from_raw_unchecked(h),
            )
        });
    }

    #[test]
    fn round_trip_matches_the_uniffi_batch_and_leaves_the_refcount_alone() {
        let a = SrtpSession::from_keys(SUITE.into(), vec![1; 30], vec![2; 30]).unwrap();
        let b = SrtpSession::from_keys(SUITE.into(), vec![2; 30], vec![1; 30]).unwrap();
        let single = SrtpSession::from_keys(SUITE.into(), vec![1; 30], vec![2; 30]).unwrap();
        a.add_outbound_stream(7).unwrap();
        single.add_outbound_stream(7).unwrap();
        let (ha, hb) = (handle(&a), handle(&b));
        assert_eq!(Arc::strong_count(&a), 2);
        let mut packets: Vec<Vec<u8>> = (0..70).map(|i| rtp(i, 7)).collect();
        packets[3] = rtp(3, 99);
        let mut out = Bufs::new(&packets, 10);
        let n = out.call(ha, true);
        assert_eq!(Arc::strong_count(&a), 2);
        let expected = single
            .protect_rtp_batch(&packets.concat(), out.lengths.clone())
            .unwrap();
        assert_eq!(n as usize, expected.data.len());
        assert_eq!(&out.output[..n as usize], expected.data);
        assert_eq!(out.out_lengths, expected.lengths);
        assert_eq!(out.statuses[3], 4);
        assert_eq!(out.statuses.iter().filter(|&&s| s == 0).count(), 69);

        // Back: packet 1 altered, packet 0 replayed at the end.
        let mut wires: Vec<Vec<u8>> = out.output[..n as usize]
            .chunks(182)
            .map(<[u8]>::to_vec)
            .collect();
        wires[1][20] ^= 1;
        wires.push(wires[0].clone());
        let mut back = Bufs::new(&wires, 0);
        let m = back.call(hb, false);
        // 69 protected packets and the replay: 68 go through.
        assert_eq!(m as usize, 68 * 172);
        assert_eq!(back.statuses[0], 0);
        assert_eq!(back.statuses[1], 1);
        assert_eq!(back.statuses[69], 2);
        assert_eq!(back.out_lengths[1], 0);
        assert_eq!(&back.output[..172], packets[0].as_slice());
        release(ha);
        release(hb);
        assert_eq!(Arc::strong_count(&a), 1);
        assert_eq!(Arc::strong_count(&b), 1);
    }

    #[test]
    fn bad_arguments_get_their_code_and_touch_nothing() {
        let a = SrtpSession::from_keys(SUITE.into(), vec![1; 30], vec![2; 30]).unwrap();
        a.add_outbound_stream(7).unwrap();
        let h = handle(&a);
        let packets = vec![rtp(0, 7), rtp(1, 7)];

        let mut bufs = Bufs::new(&packets, 10);
        assert_eq!(bufs.call(0, true), DirectError::NullSession.code());

        // Lengths that run past the input, or fall short of it.
        for lengths in [vec![172, 173], vec![172, 171], vec![u32::MAX, 1]] {
            let mut bufs = Bufs::new(&packets, 10);
            bufs.lengths = lengths;
            assert_eq!(bufs.call(h, true), DirectError::BadLengths.code());
            assert_eq!(bufs.statuses, [9, 9], "nothing written");
        }
        // No room for the tags; for unprotect, the input's size suffices.
        let mut bufs = Bufs::new(&packets, 9);
        assert_eq!(bufs.call(h, true), DirectError::OutputTooSmall.code());
        assert_eq!(bufs.statuses, [9, 9]);
        let mut bufs = Bufs::new(&packets, 0);
        bufs.output.pop();
        assert_eq!(bufs.call(h, false), DirectError::OutputTooSmall.code());

        // Null pointers, one at a time.
        let mut bufs = Bufs::new(&packets, 10);
        let ptrs = |b: &mut Bufs| {
            (
                b.input.as_ptr(),
                b.lengths.as_ptr(),
                b.output.as_mut_ptr(),
                b.out_lengths.as_mut_ptr(),
                b.statuses.as_mut_ptr(),
            )
        };
        for which in 0..5 {
            let (mut i, mut l, mut o, mut ol, mut s) = ptrs(&mut bufs);
            match which {
                0 => i = std::ptr::null(),
                1 => l = std::ptr::null(),
                2 => o = std::ptr::null_mut(),
                3 => ol = std::ptr::null_mut(),
                _ => s = std::ptr::null_mut(),
            }
            // SAFETY: the non-null pointers come from live Vecs of the
            // lengths passed; the handle is live.
            let r = unsafe { carevox_srtp_protect_rtp_into(h, i, 344, l, 2, o, 364, ol, s) };
            assert_eq!(r, DirectError::NullPointer.code(), "pointer {which}");
        }
        // A misaligned lengths array.
        let raw = bufs
            .lengths
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<u32>();
        // SAFETY: the misaligned pointer is refused before any read.
        let r = unsafe {
            carevox_srtp_protect_rtp_into(
                h,
                bufs.input.as_ptr(),
                344,
                raw,
                1,
                bufs.output.as_mut_ptr(),
                364,
                bufs.out_lengths.as_mut_ptr(),
                bufs.statuses.as_mut_ptr(),
            )
        };
        assert_eq!(r, DirectError::BadArgument.code());
        // A length past isize::MAX.
        // SAFETY: refused before any read.
        let r = unsafe {
            carevox_srtp_protect_rtp_into(
                h,
                bufs.input.as_ptr(),
                u64::MAX,
                bufs.lengths.as_ptr(),
                2,
                bufs.output.as_mut_ptr(),
                364,
                bufs.out_lengths.as_mut_ptr(),
                bufs.statuses.as_mut_ptr(),
            )
        };
        assert_eq!(r, DirectError::BadArgument.code());
        // After all of that, a good call still works and the count is as it was.
        assert_eq!(bufs.call(h, true), 364);
        assert_eq!(bufs.statuses, [0, 0]);
        release(h);
        assert_eq!(Arc::strong_count(&a), 1);
    }
}
