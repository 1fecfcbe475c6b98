//! SRTP sessions: one outbound and one inbound context per call leg.

use std::sync::{Arc, Mutex, MutexGuard};

use carevox::sdes::{SdesError, SdesOptions, SrtpKeying, srtp_keying};
use carevox::sip::sdp::crypto::Crypto;
use carevox_srtp::{Config, Context, Error as RustSrtpError, MasterKey};
use zeroize::Zeroizing;

use crate::error::SrtpError;

impl From<RustSrtpError> for SrtpError {
    fn from(e: RustSrtpError) -> Self {
        let text = e.to_string();
        match e {
            RustSrtpError::AuthenticationFailed { .. } => SrtpError::AuthenticationFailed(text),
            RustSrtpError::Replay { .. } | RustSrtpError::TooOld { .. } => SrtpError::Replay(text),
            RustSrtpError::HeaderTooShort { .. }
            | RustSrtpError::BadVersion { .. }
            | RustSrtpError::CsrcOverrun { .. }
            | RustSrtpError::ExtensionOverrun { .. }
            | RustSrtpError::PaddingOverrun { .. } => SrtpError::Malformed(text),
            RustSrtpError::UnknownSuite
            | RustSrtpError::InvalidKeyLength { .. }
            | RustSrtpError::KeyMismatch { .. }
            | RustSrtpError::UnknownMki { .. } => SrtpError::InvalidKey(text),
            RustSrtpError::UnknownSsrc { .. }
            | RustSrtpError::TooManyStreams { .. }
            | RustSrtpError::DuplicateSsrc { .. } => SrtpError::Stream(text),
            RustSrtpError::KeyExpired { .. } => SrtpError::KeyExpired(text),
            _ => SrtpError::Other(text),
        }
    }
}

/// Why one packet of a batch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PacketStatus {
    /// Processed: its output is in the batch's buffer.
    Ok,
    /// Authentication failed (altered or wrongly keyed).
    AuthenticationFailed,
    /// Replayed or too old.
    Replay,
    /// Not well-formed.
    Malformed,
    /// Unknown stream, or too many streams.
    Stream,
    /// The key reached its limit.
    KeyExpired,
    /// Another failure.
    Other,
}

impl From<&SrtpError> for PacketStatus {
    fn from(e: &SrtpError) -> Self {
        match e {
            SrtpError::AuthenticationFailed(_) => PacketStatus::AuthenticationFailed,
            SrtpError::Replay(_) => PacketStatus::Replay,
            SrtpError::Malformed(_) => PacketStatus::Malformed,
            SrtpError::Stream(_) => PacketStatus::Stream,
            SrtpError::KeyExpired(_) => PacketStatus::KeyExpired,
            _ => PacketStatus::Other,
        }
    }
}

/// Why one packet of a batch was refused, and where it was in the batch.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PacketFailure {
    /// The packet's index in the batch (0 for the first).
    pub index: u32,
    /// The kind of failure, as in `statuses[index]`.
    pub status: PacketStatus,
    /// What was wrong, for a log (names the SSRC or sequence number where it
    /// helps; no key material, no payload).
    pub message: String,
}

/// The result of a batch call: the packets that went through, back to
/// back in one buffer, and the fate of each.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PacketBatch {
    /// The output packets, back to back, in batch order: packet `i` is
    /// `lengths[i]` bytes long and starts where packet `i - 1` ends.
    pub data: Vec<u8>,
    /// Each packet's output length; 0 for a packet whose status is not `Ok`
    /// (it has no bytes in `data`).
    pub lengths: Vec<u32>,
    /// Each packet's status, in batch order.
    pub statuses: Vec<PacketStatus>,
    /// The refused packets, in batch order, with their index and the
    /// reason; empty when every packet went through.
    pub failures: Vec<PacketFailure>,
}

/// One packet of a batch, processed in place: `buf[..len]` holds it, `buf`
/// has room for the output; returns the output length.
pub(crate) type InPlace = fn(&mut Context, &mut [u8], usize) -> Result<usize, RustSrtpError>;

/// One protect or unprotect call on a session's contexts.
type OnePacket = fn(&mut Contexts, &[u8], &mut Vec<u8>) -> Result<(), RustSrtpError>;

pub(crate) struct Contexts {
    /// What this side sends.
    pub(crate) outbound: Context,
    /// What this side receives.
    pub(crate) inbound: Context,
}

/// An SRTP session for one call leg: an outbound context (keyed by the
/// local SDES line or key) for what this side sends, and an inbound one
/// (keyed by the remote line) for what it receives. Thread-safe; calls on
/// one session are serialised.
#[derive(uniffi::Object)]
pub struct SrtpSession {
    inner: Mutex<Contexts>,
    suite: String,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The contexts print no key material; the suite is not secret.
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

fn sdes_suite_name(key: &MasterKey) -> String {
    key.suite().sdes_name().to_owned()
}

impl SrtpSession {
    fn from_master_keys(outbound: MasterKey, inbound: MasterKey) -> Result<Arc<Self>, SrtpError> {
        let suite = sdes_suite_name(&outbound);
        Ok(Arc::new(SrtpSession {
            inner: Mutex::new(Contexts {
                outbound: Context::new(outbound, Config::new())?,
                inbound: Context::new(inbound, Config::new())?,
            }),
            suite,
        }))
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Contexts>, SrtpError> {
        self.inner
            .lock()
            .map_err(|_| SrtpError::Other("SRTP session lock poisoned".into()))
    }

    fn one(&self, packet: &[u8], op: OnePacket) -> Result<Vec<u8>, SrtpError> {
        let mut guard = self.lock()?;
        let mut out = Vec::with_capacity(packet.len() + 32);
        op(&mut guard, packet, &mut out)?;
        Ok(out)
    }
}

fn protect_rtp(c: &mut Contexts, p: &[u8], out: &mut Vec<u8>) -> Result<(), RustSrtpError> {
    c.outbound.protect_rtp_vec(p, out)
}
fn unprotect_rtp(c: &mut Contexts, p: &[u8], out: &mut Vec<u8>) -> Result<(), RustSrtpError> {
    c.inbound.unprotect_rtp_vec(p, out)
}
fn protect_rtcp(c: &mut Contexts, p: &[u8], out: &mut Vec<u8>) -> Result<(), RustSrtpError> {
    c.outbound.protect_rtcp_vec(p, out)
}
fn unprotect_rtcp(c: &mut Contexts, p: &[u8], out: &mut Vec<u8>) -> Result<(), RustSrtpError> {
    c.inbound.unprotect_rtcp_vec(p, out)
}

/// What one SDES a=crypto value (`1 AES_CM_128_HMAC_SHA1_80 inline:...`,
/// with or without `a=crypto:`) keys, through the facade's SDES rules
/// (suites, MKIs, lifetimes, session parameters).
fn sdes_keying(line: &str) -> Result<SrtpKeying, SrtpError> {
    let value = line.trim();
    let value = value.strip_prefix("a=crypto:").unwrap_or(value);
    let crypto = Crypto::parse(value).map_err(|e| SrtpError::InvalidKey(e.to_string()))?;
    srtp_keying(&crypto, &SdesOptions::new()).map_err(sdes_error)
}

/// The error of an SDES line carevox-srtp cannot be keyed from. The message
/// names no key material.
fn sdes_error(e: SdesError) -> SrtpError {
    SrtpError::InvalidKey(e.to_string())
}

/// Checks that `lengths` describe `data` exactly: packet `i` is
/// `lengths[i]` bytes, starting where packet `i - 1` ends, and together they
/// cover the whole buffer.
pub(crate) fn check_lengths(data: &[u8], lengths: &[u32]) -> Result<(), SrtpError> {
    let mut at = 0usize;
    for (i, &len) in lengths.iter().enumerate() {
        let end = usize::try_from(len).ok().and_then(|l| at.checked_add(l));
        at = end.filter(|&e| e <= data.len()).ok_or_else(|| {
            SrtpError::InvalidBatch(format!(
                "packet {i} ({len} bytes at offset {at}) runs past the buffer's {} bytes",
                data.len()
            ))
        })?;
    }
    if at != data.len() {
        return Err(SrtpError::InvalidBatch(format!(
            "the lengths add up to {at} bytes but the buffer holds {}",
            data.len()
        )));
    }
    Ok(())
}

/// Where a batch's results go: the output packets back to back, and one
/// output length and one status per packet.
pub(crate) struct BatchOut<'a> {
    pub(crate) data: &'a mut [u8],
    pub(crate) lengths: &'a mut [u32],
    pub(crate) statuses: &'a mut [PacketStatus],
}

/// Runs `op` on each packet of a batch, writing into caller-owned memory:
/// each packet is copied once, from `packets` into its place in `out.data` (the
/// outputs back to back, in batch order), and processed there in place; a
/// refused packet takes no room in `out.data`, and `failed` is told its index and
/// error. `out_lengths` and `statuses` get one entry per packet. Returns the
/// number of bytes written to `out.data`. Nothing is allocated per packet.
///
/// The caller checks that `lengths` describe `packets` exactly
/// ([`check_lengths`]), that `out_lengths` and `statuses` have one slot per
/// packet, and that `out.data` holds `packets.len() + room * lengths.len()`
/// bytes; each of these is checked again here and a breach is an
/// `InvalidBatch` error, never a panic.
pub(crate) fn run_batch_into(
    ctx: &mut Context,
    packets: &[u8],
    lengths: &[u32],
    room: usize,
    op: InPlace,
    out: BatchOut<'_>,
    failed: &mut dyn FnMut(u32, SrtpError),
) -> Result<usize, SrtpError> {
    let BatchOut {
        data: out,
        lengths: out_lengths,
        statuses,
    } = out;
    let bad = |what: &str| SrtpError::InvalidBatch(what.into());
    if out_lengths.len() != lengths.len() || statuses.len() != lengths.len() {
        return Err(bad(
            "one output length and one status are needed per packet",
        ));
    }
    let mut at = 0usize;
    let mut written = 0usize;
    for (index, ((&len, out_len), status)) in (0u32..).zip(
        lengths
            .iter()
            .zip(out_lengths.iter_mut())
            .zip(statuses.iter_mut()),
    ) {
        let len = usize::try_from(len).map_err(|_| bad("packet longer than the address space"))?;
        let end = at
            .checked_add(len)
            .ok_or_else(|| bad("packet out of bounds"))?;
        let packet = packets
            .get(at..end)
            .ok_or_else(|| SrtpError::InvalidBatch(format!("packet {index} out of bounds")))?;
        at = end;
        let slot_end = written
            .checked_add(len)
            .and_then(|n| n.checked_add(room))
            .ok_or_else(|| bad("output out of bounds"))?;
        let slot = out.get_mut(written..slot_end).ok_or_else(|| {
            SrtpError::InvalidBatch(format!("no room for packet {index} in the output"))
        })?;
        slot[..len].copy_from_slice(packet);
        match op(ctx, slot, len) {
            Ok(n) => {
                written += n;
                *out_len = u32_len(n)?;
                *status = PacketStatus::Ok;
            }
            Err(e) => {
                let e = SrtpError::from(e);
                *out_len = 0;
                *status = PacketStatus::from(&e);
                failed(index, e);
            }
        }
    }
    Ok(written)
}

/// Runs `op` on each packet of a batch into a new [`PacketBatch`], through
/// [`run_batch_into`]: each packet is copied once, from the caller's buffer
/// into its place in the one output vector, and processed there in place.
fn run_batch(
    ctx: &mut Context,
    packets: &[u8],
    lengths: &[u32],
    room: usize,
    op: InPlace,
) -> Result<PacketBatch, SrtpError> {
    check_lengths(packets, lengths)?;
    let cap = room
        .checked_mul(lengths.len())
        .and_then(|r| r.checked_add(packets.len()))
        .ok_or_else(|| SrtpError::InvalidBatch("batch too large".into()))?;
    let mut data = vec![0u8; cap];
    let mut out_lengths = vec![0u32; lengths.len()];
    let mut statuses = vec![PacketStatus::Other; lengths.len()];
    let mut failures = Vec::new();
    let written = run_batch_into(
        ctx,
        packets,
        lengths,
        room,
        op,
        BatchOut {
            data: &mut data,
            lengths: &mut out_lengths,
            statuses: &mut statuses,
        },
        &mut |index, e| {
            failures.push(PacketFailure {
                index,
                status: PacketStatus::from(&e),
                message: e.to_string(),
            });
        },
    )?;
    data.truncate(written);
    Ok(PacketBatch {
        data,
        lengths: out_lengths,
        statuses,
        failures,
    })
}

fn u32_len(n: usize) -> Result<u32, SrtpError> {
    u32::try_from(n).map_err(|_| SrtpError::InvalidBatch("packet longer than 4 GiB".into()))
}

#[uniffi::export]
impl SrtpSession {
    /// A session keyed from an SDES exchange: `local_crypto` is this side's
    /// a=crypto value (it protects what this side sends), `remote_crypto` the
    /// peer's (it protects what this side receives). Both must name the same
    /// suite.
    #[uniffi::constructor]
    pub fn from_sdes(local_crypto: String, remote_crypto: String) -> Result<Arc<Self>, SrtpError> {
        let local_crypto = Zeroizing::new(local_crypto);
        let remote_crypto = Zeroizing::new(remote_crypto);
        let outbound = sdes_keying(&local_crypto)?;
        let inbound = sdes_keying(&remote_crypto)?;
        if outbound.suite() != inbound.suite() {
            return Err(SrtpError::InvalidKey(
                "the local and remote SDES lines name different suites".into(),
            ));
        }
        let suite = outbound.suite().sdes_name().to_owned();
        let outbound = outbound.into_context().map_err(sdes_error)?;
        let inbound = inbound.into_context().map_err(sdes_error)?;
        Ok(Arc::new(SrtpSession {
            inner: Mutex::new(Contexts { outbound, inbound }),
            suite,
        }))
    }

    /// A session keyed from raw material: `suite` is an SDES suite name
    /// (`AES_CM_128_HMAC_SHA1_80`, `AEAD_AES_128_GCM`, ...), each key the
    /// master key followed by the master salt (30 bytes for AES-128-CM,
    /// 28 for AES-128-GCM, ...). The Rust copies are zeroized.
    #[uniffi::constructor]
    pub fn from_keys(
        suite: String,
        outbound_key_salt: Vec<u8>,
        inbound_key_salt: Vec<u8>,
    ) -> Result<Arc<Self>, SrtpError> {
        let outbound_key_salt = Zeroizing::new(outbound_key_salt);
        let inbound_key_salt = Zeroizing::new(inbound_key_salt);
        let outbound = MasterKey::from_sdes_name(&suite, &outbound_key_salt)?;
        let inbound = MasterKey::from_sdes_name(&suite, &inbound_key_salt)?;
        Self::from_master_keys(outbound, inbound)
    }

    /// The suite both directions use.
    pub fn suite(&self) -> String {
        self.suite.clone()
    }

    /// Registers an SSRC this side sends with (RTP and RTCP), starting at
    /// rollover counter 0.
    pub fn add_outbound_stream(&self, ssrc: u32) -> Result<(), SrtpError> {
        Ok(self.lock()?.outbound.add_outbound_stream(ssrc)?)
    }

    /// Bytes SRTP adds to an RTP packet (tag and MKI).
    pub fn rtp_overhead(&self) -> Result<u32, SrtpError> {
        u32_len(self.lock()?.outbound.rtp_overhead())
    }

    /// Protects one RTP packet.
    pub fn protect_rtp(&self, packet: Vec<u8>) -> Result<Vec<u8>, SrtpError> {
        self.one(&packet, protect_rtp)
    }

    /// Authenticates and decrypts one SRTP packet; a replay or an altered
    /// packet is refused.
    pub fn unprotect_rtp(&self, packet: Vec<u8>) -> Result<Vec<u8>, SrtpError> {
        self.one(&packet, unprotect_rtp)
    }

    /// Protects one RTCP compound packet.
    pub fn protect_rtcp(&self, packet: Vec<u8>) -> Result<Vec<u8>, SrtpError> {
        self.one(&packet, protect_rtcp)
    }

    /// Authenticates and decrypts one SRTCP packet.
    pub fn unprotect_rtcp(&self, packet: Vec<u8>) -> Result<Vec<u8>, SrtpError> {
        self.one(&packet, unprotect_rtcp)
    }

    /// Protects many RTP packets in one crossing (50 packets of 20 ms are
    /// one second of audio). `packets` holds them back to back and
    /// `lengths` says how long each is; the lengths must describe the
    /// buffer exactly (`InvalidBatch` otherwise).
    ///
    /// `packets` is borrowed, not copied, across the boundary: in Kotlin and
    /// Swift a direct `ByteBuffer` / `Data` (Kotlin: `ByteBuffer.allocateDirect`,
    /// position 0, the packets up to its limit), in Python `bytes`. Each
    /// packet is copied once into the returned buffer and protected there.
    ///
    /// Each packet gets its own status: one that cannot be protected
    /// (malformed, unknown SSRC, key at its limit) has length 0, is listed
    /// in `failures` with its index, and does not stop the others, which
    /// may be sent.
    pub fn protect_rtp_batch(
        &self,
        packets: &[u8],
        lengths: Vec<u32>,
    ) -> Result<PacketBatch, SrtpError> {
        let mut guard = self.lock()?;
        let ctx = &mut guard.outbound;
        let room = ctx.rtp_overhead();
        run_batch(ctx, packets, &lengths, room, Context::protect_rtp_in_place)
    }

    /// Authenticates and decrypts many SRTP packets in one crossing, as
    /// [`SrtpSession::protect_rtp_batch`] (the same borrowed input, one copy
    /// of each packet into the returned buffer). Each packet gets its own
    /// status: a refused packet (replayed, altered, malformed) has length 0,
    /// is listed in `failures` with its index, and does not stop the others.
    pub fn unprotect_rtp_batch(
        &self,
        packets: &[u8],
        lengths: Vec<u32>,
    ) -> Result<PacketBatch, SrtpError> {
        let mut guard = self.lock()?;
        run_batch(
            &mut guard.inbound,
            packets,
            &lengths,
            0,
            Context::unprotect_rtp_in_place,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_must_describe_the_buffer_exactly() {
        let data = [1u8, 2, 3, 4, 5];
        assert!(check_lengths(&data, &[2, 0, 3]).is_ok());
        assert!(check_lengths(&[], &[]).is_ok());
        for lengths in [&[2, 4][..], &[2, 2], &[u32::MAX], &[6], &[]] {
            assert!(
                matches!(
                    check_lengths(&data, lengths),
                    Err(SrtpError::InvalidBatch(_))
                ),
                "{lengths:?}"
            );
        }
    }

    fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0x55; 160]);
        p
    }

    #[test]
    fn batches_match_single_calls_and_refuse_per_packet() {
        let k1 = vec![1u8; 30];
        let k2 = vec![2u8; 30];
        let suite = "AES_CM_128_HMAC_SHA1_80";
        let a = SrtpSession::from_keys(suite.into(), k1.clone(), k2.clone()).unwrap();
        let b = SrtpSession::from_keys(suite.into(), k2.clone(), k1.clone()).unwrap();
        let single = SrtpSession::from_keys(suite.into(), k1, k2).unwrap();
        a.add_outbound_stream(7).unwrap();
        single.add_outbound_stream(7).unwrap();
        let packets: Vec<Vec<u8>> = (0..5).map(|i| rtp(i, 7)).collect();
        // Packet 2 is of a stream never added, packet 3 is not RTP.
        let mut input = packets.clone();
        input[2] = rtp(2, 99);
        input[3] = vec![0x80, 0, 0];
        let lengths: Vec<u32> = input.iter().map(|p| p.len() as u32).collect();
        let out = a.protect_rtp_batch(&input.concat(), lengths).unwrap();
        assert_eq!(
            out.statuses,
            [
                PacketStatus::Ok,
                PacketStatus::Ok,
                PacketStatus::Stream,
                PacketStatus::Malformed,
                PacketStatus::Ok
            ]
        );
        assert_eq!(
            out.failures.iter().map(|f| f.index).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(out.failures[0].status, PacketStatus::Stream);
        let expected: Vec<u8> = [0, 1, 4]
            .iter()
            .flat_map(|&i| single.protect_rtp(packets[i].clone()).unwrap())
            .collect();
        assert_eq!(out.data, expected);
        assert_eq!(out.lengths, [182, 182, 0, 0, 182]);

        // Unprotect: packet 1 altered, packet 2 a replay of packet 0.
        let mut wires: Vec<Vec<u8>> = out.data.chunks(182).map(<[u8]>::to_vec).collect();
        wires[1][20] ^= 1;
        wires.push(wires[0].clone());
        let lengths: Vec<u32> = wires.iter().map(|w| w.len() as u32).collect();
        let back = b.unprotect_rtp_batch(&wires.concat(), lengths).unwrap();
        assert_eq!(
            back.statuses,
            [
                PacketStatus::Ok,
                PacketStatus::AuthenticationFailed,
                PacketStatus::Ok,
                PacketStatus::Replay
            ]
        );
        assert_eq!(back.lengths, [172, 0, 172, 0]);
        assert_eq!(back.data, [packets[0].clone(), packets[4].clone()].concat());
        assert_eq!(
            back.failures
                .iter()
                .map(|f| (f.index, f.status))
                .collect::<Vec<_>>(),
            [
                (1, PacketStatus::AuthenticationFailed),
                (3, PacketStatus::Replay)
            ]
        );
    }

    #[test]
    fn sdes_session_round_trip_and_refusals() {
        let local = "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        let remote = "1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";
        let a = SrtpSession::from_sdes(local.into(), remote.into()).unwrap();
        let b = SrtpSession::from_sdes(remote.into(), local.into()).unwrap();
        a.add_outbound_stream(7).unwrap();
        let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
        packet.extend_from_slice(&[0x55; 160]);
        let wire = a.protect_rtp(packet.clone()).unwrap();
        assert_eq!(b.unprotect_rtp(wire.clone()).unwrap(), packet);
        assert!(matches!(
            b.unprotect_rtp(wire.clone()),
            Err(SrtpError::Replay(_))
        ));
        let batch = b
            .unprotect_rtp_batch(&wire, vec![wire.len() as u32])
            .unwrap();
        assert_eq!(batch.statuses, vec![PacketStatus::Replay]);
        assert_eq!(batch.lengths, vec![0]);
        assert!(batch.data.is_empty());
        assert!(matches!(
            SrtpSession::from_sdes(local.into(), "1 AES_256_CM_HMAC_SHA1_80 inline:AAAA".into()),
            Err(SrtpError::InvalidKey(_))
        ));
    }

    #[test]
    fn sdes_lines_are_keyed_with_their_mki_and_session_parameters() {
        let key = "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
        let plain = format!("1 AES_CM_128_HMAC_SHA1_80 {key}");
        let with_mki = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {key}|2^20|1:4");
        let a = SrtpSession::from_sdes(with_mki.clone(), with_mki.clone()).unwrap();
        let b = SrtpSession::from_sdes(with_mki.clone(), with_mki).unwrap();
        a.add_outbound_stream(7).unwrap();
        let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
        packet.extend_from_slice(&[0x55; 160]);
        let wire = a.protect_rtp(packet.clone()).unwrap();
        // Header and payload, the 4-byte MKI, the 10-byte tag.
        assert_eq!(wire.len(), packet.len() + 4 + 10);
        assert_eq!(b.unprotect_rtp(wire).unwrap(), packet);
        for params in [
            "KDR=10",
            "UNENCRYPTED_SRTCP",
            "UNAUTHENTICATED_SRTP",
            "FEC_ORDER=FEC_SRTP",
        ] {
            let line = format!("{plain} {params}");
            assert!(
                matches!(
                    SrtpSession::from_sdes(line.clone(), plain.clone()),
                    Err(SrtpError::InvalidKey(_))
                ),
                "{params} must be refused"
            );
        }
    }
}
