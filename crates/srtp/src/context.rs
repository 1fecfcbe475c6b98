//! The per-session context: master keys, streams, and protect/unprotect.

use crate::crypto::Crypto;
use crate::packet::{check_padding, rtcp_ssrc, rtp_header};
use crate::replay::{
    DEFAULT_REPLAY_WINDOW, MAX_REPLAY_WINDOW, Refusal, ReplayWindow, estimate_index,
};
use crate::{Error, MasterKey, PacketKind, Suite};

/// Most SRTP packets one master key may protect or unprotect (RFC 3711 9.2).
pub const SRTP_KEY_LIMIT: u64 = 1 << 48;
/// Most SRTCP packets one master key may protect or unprotect (RFC 3711 9.2).
pub const SRTCP_KEY_LIMIT: u64 = 1 << 31;
/// Default limit on the number of inbound streams of a context.
pub const DEFAULT_MAX_INBOUND_STREAMS: usize = 64;

/// Largest SRTP packet index (48 bits).
const MAX_SRTP_INDEX: u64 = (1 << 48) - 1;
/// Largest SRTCP index (31 bits).
const MAX_SRTCP_INDEX: u32 = (1 << 31) - 1;

/// Which inbound SSRCs a context accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsrcPolicy {
    /// Create an inbound stream for any SSRC whose first packet
    /// authenticates (up to the configured number of streams).
    AcceptAny,
    /// Accept only SSRCs added with [`Context::add_inbound_stream`] or
    /// [`Context::set_inbound_roc`].
    KnownOnly,
}

/// Settings of a [`Context`]; the defaults are the safe ones.
///
/// Replay protection is always on; its window is [`DEFAULT_REPLAY_WINDOW`]
/// packets unless set otherwise (up to [`MAX_REPLAY_WINDOW`]).
#[derive(Debug, Clone)]
pub struct Config {
    replay_window: u16,
    ssrc_policy: SsrcPolicy,
    max_inbound_streams: usize,
    encrypt_rtcp: bool,
    srtp_limit: u64,
    srtcp_limit: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            replay_window: DEFAULT_REPLAY_WINDOW,
            ssrc_policy: SsrcPolicy::AcceptAny,
            max_inbound_streams: DEFAULT_MAX_INBOUND_STREAMS,
            encrypt_rtcp: true,
            srtp_limit: SRTP_KEY_LIMIT,
            srtcp_limit: SRTCP_KEY_LIMIT,
        }
    }
}

impl Config {
    /// The defaults: replay window of 256 packets, any inbound SSRC accepted
    /// (at most 64 streams), SRTCP encrypted, RFC 3711 key limits.
    pub fn new() -> Config {
        Config::default()
    }

    /// Sets the replay window for SRTP and SRTCP, in packets (64 to 1024).
    pub fn with_replay_window(mut self, packets: u16) -> Result<Config, Error> {
        if !(64..=MAX_REPLAY_WINDOW).contains(&packets) {
            return Err(Error::InvalidConfig {
                reason: "replay window must be 64 to 1024 packets",
            });
        }
        self.replay_window = packets;
        Ok(self)
    }

    /// Sets which inbound SSRCs are accepted.
    pub fn with_ssrc_policy(mut self, policy: SsrcPolicy) -> Config {
        self.ssrc_policy = policy;
        self
    }

    /// Sets the most inbound streams the context creates (at least 1).
    pub fn with_max_inbound_streams(mut self, streams: usize) -> Result<Config, Error> {
        if streams == 0 {
            return Err(Error::InvalidConfig {
                reason: "at least one inbound stream must be allowed",
            });
        }
        self.max_inbound_streams = streams;
        Ok(self)
    }

    /// Lowers the per-master-key packet limits (for policies stricter than
    /// RFC 3711, and for tests). Limits above 2^48 SRTP or 2^31 SRTCP packets
    /// are refused. A [`Event::KeyLimitNear`] is raised when 15/16 of a limit
    /// is used.
    pub fn with_key_limits(mut self, srtp: u64, srtcp: u64) -> Result<Config, Error> {
        if srtp == 0 || srtp > SRTP_KEY_LIMIT || srtcp == 0 || srtcp > SRTCP_KEY_LIMIT {
            return Err(Error::InvalidConfig {
                reason: "key limits must be 1..=2^48 (SRTP) and 1..=2^31 (SRTCP)",
            });
        }
        self.srtp_limit = srtp;
        self.srtcp_limit = srtcp;
        Ok(self)
    }

    /// Sends SRTCP authenticated but not encrypted (E flag clear; RFC 3711
    /// 3.4, RFC 7714 9.2). RTCP carries CNAMEs and timing that may identify
    /// people, so this is off by default; inbound packets are accepted in
    /// either form whatever this says, since the E flag is authenticated.
    pub fn dangerous_unencrypted_srtcp(mut self) -> Config {
        self.encrypt_rtcp = false;
        self
    }
}

/// Something the caller should act on, drained with [`Context::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A master key has used 15/16 of its packet limit: add a new key (with
    /// another MKI) and switch to it, or renegotiate, before it expires.
    KeyLimitNear {
        /// Position of the master key (0 = the first).
        key: usize,
        /// SRTP or SRTCP.
        kind: PacketKind,
        /// Packets used so far.
        used: u64,
        /// The limit, at which the key is refused with [`Error::KeyExpired`].
        limit: u64,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Warn {
    Quiet,
    Pending,
    Reported,
}

struct Usage {
    used: u64,
    limit: u64,
    warn: Warn,
}

impl Usage {
    fn new(limit: u64) -> Usage {
        Usage {
            used: 0,
            limit,
            warn: Warn::Quiet,
        }
    }

    #[inline]
    fn check(&self, kind: PacketKind, key: usize) -> Result<(), Error> {
        if self.used >= self.limit {
            Err(Error::KeyExpired { kind, key })
        } else {
            Ok(())
        }
    }

    #[inline]
    fn count(&mut self) {
        self.used += 1;
        if self.warn == Warn::Quiet && self.used >= self.limit - self.limit / 16 {
            self.warn = Warn::Pending;
        }
    }
}

struct KeySlot {
    mki: Box<[u8]>,
    rtp: Crypto,
    rtcp: Crypto,
    rtp_usage: Usage,
    rtcp_usage: Usage,
}

/// One SSRC's state: the SRTP window (its top is the highest index, so the
/// ROC), the ROC to start from, and the SRTCP window or next SRTCP index.
struct Stream {
    ssrc: u32,
    rtp: ReplayWindow,
    start_roc: u32,
    /// Outbound: the lowest SRTP index that may still be sent (moved up when
    /// the ROC is set on a stream that has sent, so that no index repeats).
    rtp_floor: u64,
    rtcp: ReplayWindow,
    rtcp_next: u32,
    /// Outbound: whether an SRTCP packet was sent (then indices below
    /// `rtcp_next` are used).
    rtcp_sent: bool,
}

impl Stream {
    fn new(ssrc: u32, window: u16, roc: u32) -> Stream {
        Stream {
            ssrc,
            rtp: ReplayWindow::new(window),
            start_roc: roc,
            rtp_floor: 0,
            rtcp: ReplayWindow::new(window),
            // libsrtp numbers the first SRTCP packet 1; doing the same keeps
            // the two bit-exact.
            rtcp_next: 1,
            rtcp_sent: false,
        }
    }

    #[inline]
    fn rtp_index(&self, seq: u16) -> Option<u64> {
        if self.rtp.started() {
            estimate_index(self.rtp.top(), seq)
        } else {
            Some((u64::from(self.start_roc) << 16) | u64::from(seq))
        }
    }

    fn roc(&self) -> u32 {
        if self.rtp.started() {
            u32::try_from(self.rtp.top() >> 16).unwrap_or(u32::MAX)
        } else {
            self.start_roc
        }
    }
}

fn refused(r: Refusal, kind: PacketKind, ssrc: u32, index: u64) -> Error {
    match r {
        Refusal::Replay => Error::Replay { kind, ssrc, index },
        Refusal::TooOld => Error::TooOld { kind, ssrc, index },
    }
}

fn too_small(needed: usize, available: usize) -> Error {
    Error::BufferTooSmall { needed, available }
}

/// Copies `src` into `buf[at..at + src.len()]`.
#[inline]
fn put(buf: &mut [u8], at: usize, src: &[u8]) -> Result<(), Error> {
    let available = buf.len();
    buf.get_mut(at..at + src.len())
        .ok_or(too_small(at + src.len(), available))?
        .copy_from_slice(src);
    Ok(())
}

/// An SRTP/SRTCP session: the master keys of one direction of one call leg,
/// its outbound streams (added explicitly) and its inbound streams (created
/// per SSRC on the first packet that authenticates, or added explicitly).
///
/// With SDES each side sends with its own key, so an endpoint holds two
/// contexts: one keyed with its own key to protect, one keyed with the
/// peer's key to unprotect. With DTLS-SRTP,
/// [`MasterKey::pair_from_dtls_exporter`] gives both keys.
///
/// A context is `Send + Sync`, holds no reference to anything else, and
/// allocates only when a key or stream is added: protecting and
/// unprotecting allocate nothing.
pub struct Context {
    suite: Suite,
    mki_len: usize,
    keys: Vec<KeySlot>,
    active: usize,
    config: Config,
    outbound: Vec<Stream>,
    inbound: Vec<Stream>,
}

// Written by hand: the key slots hold ring's AEAD and HMAC keys, which are
// not `Zeroize` and so cannot sit in a `Secret`; this prints counts and the
// configuration, never a key or a stream's state.
impl core::fmt::Debug for Context {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Context")
            .field("suite", &self.suite)
            .field("keys", &self.keys.len())
            .field("active_key", &self.active)
            .field("mki_len", &self.mki_len)
            .field("outbound_streams", &self.outbound.len())
            .field("inbound_streams", &self.inbound.len())
            .field("config", &self.config)
            .finish()
    }
}

impl Context {
    /// A context with one master key, which protects outbound packets.
    pub fn new(key: MasterKey, config: Config) -> Result<Context, Error> {
        let mut ctx = Context {
            suite: key.suite(),
            mki_len: key.mki().len(),
            keys: Vec::new(),
            active: 0,
            config,
            outbound: Vec::new(),
            inbound: Vec::new(),
        };
        ctx.add_key(key)?;
        Ok(ctx)
    }

    /// The suite of every key of this context.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Adds another master key, selected on the wire by its MKI. Every key of
    /// a context needs an MKI of the same length (a context without MKIs has
    /// exactly one key). Inbound packets may use any key at once; outbound
    /// packets use the active key (see [`Context::set_active_key`]).
    pub fn add_key(&mut self, key: MasterKey) -> Result<(), Error> {
        if key.suite() != self.suite {
            return Err(Error::KeyMismatch {
                reason: "the key is for another suite",
            });
        }
        if key.mki().len() != self.mki_len {
            return Err(Error::KeyMismatch {
                reason: "every key of a context needs an MKI of the same length",
            });
        }
        if !self.keys.is_empty() && self.mki_len == 0 {
            return Err(Error::KeyMismatch {
                reason: "without an MKI a context holds only one key",
            });
        }
        if self.keys.iter().any(|k| *k.mki == *key.mki()) {
            return Err(Error::KeyMismatch {
                reason: "the MKI is already in use",
            });
        }
        let rtp = Crypto::new(&key, PacketKind::Rtp)?;
        let rtcp = Crypto::new(&key, PacketKind::Rtcp)?;
        // A key's own lifetime (SDES) lowers the context's limits.
        let lifetime = key.lifetime().unwrap_or(u64::MAX);
        self.keys.push(KeySlot {
            mki: key.mki().into(),
            rtp,
            rtcp,
            rtp_usage: Usage::new(self.config.srtp_limit.min(lifetime)),
            rtcp_usage: Usage::new(self.config.srtcp_limit.min(lifetime)),
        });
        Ok(())
    }

    /// Makes the key with this MKI the one outbound packets use.
    pub fn set_active_key(&mut self, mki: &[u8]) -> Result<(), Error> {
        let pos = self
            .keys
            .iter()
            .position(|k| *k.mki == *mki)
            .ok_or(Error::UnknownMki {
                kind: PacketKind::Rtp,
            })?;
        self.active = pos;
        Ok(())
    }

    /// Packets used so far by key number `key` (SRTP, SRTCP).
    pub fn key_usage(&self, key: usize) -> Option<(u64, u64)> {
        self.keys
            .get(key)
            .map(|k| (k.rtp_usage.used, k.rtcp_usage.used))
    }

    /// The next event the caller should act on, if any (each is reported
    /// once). Call it after protecting or unprotecting, e.g. once per batch.
    pub fn poll_event(&mut self) -> Option<Event> {
        for (key, slot) in self.keys.iter_mut().enumerate() {
            for (kind, usage) in [
                (PacketKind::Rtp, &mut slot.rtp_usage),
                (PacketKind::Rtcp, &mut slot.rtcp_usage),
            ] {
                if usage.warn == Warn::Pending {
                    usage.warn = Warn::Reported;
                    return Some(Event::KeyLimitNear {
                        key,
                        kind,
                        used: usage.used,
                        limit: usage.limit,
                    });
                }
            }
        }
        None
    }

    fn stream_exists(streams: &[Stream], ssrc: u32) -> Result<(), Error> {
        if streams.iter().any(|s| s.ssrc == ssrc) {
            Err(Error::DuplicateSsrc { ssrc })
        } else {
            Ok(())
        }
    }

    /// Adds an outbound stream whose first packet has ROC 0.
    pub fn add_outbound_stream(&mut self, ssrc: u32) -> Result<(), Error> {
        self.add_outbound_stream_with_roc(ssrc, 0)
    }

    /// Adds an outbound stream starting at rollover counter `roc`.
    pub fn add_outbound_stream_with_roc(&mut self, ssrc: u32, roc: u32) -> Result<(), Error> {
        Self::stream_exists(&self.outbound, ssrc)?;
        self.outbound
            .push(Stream::new(ssrc, self.config.replay_window, roc));
        Ok(())
    }

    /// Removes an outbound stream; returns whether it existed.
    pub fn remove_outbound_stream(&mut self, ssrc: u32) -> bool {
        let before = self.outbound.len();
        self.outbound.retain(|s| s.ssrc != ssrc);
        before != self.outbound.len()
    }

    /// Adds a known inbound stream whose first packet has ROC 0.
    pub fn add_inbound_stream(&mut self, ssrc: u32) -> Result<(), Error> {
        Self::stream_exists(&self.inbound, ssrc)?;
        if self.inbound.len() >= self.config.max_inbound_streams {
            return Err(Error::TooManyStreams {
                limit: self.config.max_inbound_streams,
                ssrc,
            });
        }
        self.inbound
            .push(Stream::new(ssrc, self.config.replay_window, 0));
        Ok(())
    }

    /// Sets the rollover counter of inbound stream `ssrc` for joining it
    /// mid-way (e.g. from signalling): the next packet is taken at this ROC
    /// and the SRTP replay window starts afresh. Adds the stream if needed.
    pub fn set_inbound_roc(&mut self, ssrc: u32, roc: u32) -> Result<(), Error> {
        if !self.inbound.iter().any(|s| s.ssrc == ssrc) {
            self.add_inbound_stream(ssrc)?;
        }
        if let Some(s) = self.inbound.iter_mut().find(|s| s.ssrc == ssrc) {
            s.rtp.reset();
            s.start_roc = roc;
        }
        Ok(())
    }

    /// Removes an inbound stream; returns whether it existed.
    pub fn remove_inbound_stream(&mut self, ssrc: u32) -> bool {
        let before = self.inbound.len();
        self.inbound.retain(|s| s.ssrc != ssrc);
        before != self.inbound.len()
    }

    /// The current rollover counter of outbound stream `ssrc`.
    pub fn outbound_roc(&self, ssrc: u32) -> Option<u32> {
        self.outbound
            .iter()
            .find(|s| s.ssrc == ssrc)
            .map(Stream::roc)
    }

    /// Sets the rollover counter of outbound stream `ssrc`, for an
    /// application that resumes a session (the next packet is sent at this
    /// ROC). On a stream that has sent nothing any ROC is taken; once a
    /// packet was sent, only a ROC above the current one is, since a lower
    /// or equal one would send packet indices again (keystream reuse), and
    /// no index at or below the last one sent is ever sent afterwards.
    pub fn set_outbound_roc(&mut self, ssrc: u32, roc: u32) -> Result<(), Error> {
        let kind = PacketKind::Rtp;
        let stream = self
            .outbound
            .iter_mut()
            .find(|s| s.ssrc == ssrc)
            .ok_or(Error::UnknownSsrc { kind, ssrc })?;
        if stream.rtp.started() {
            let current = stream.roc();
            if roc <= current {
                return Err(Error::IndexReuse {
                    kind,
                    ssrc,
                    requested: u64::from(roc),
                    lowest: u64::from(current) + 1,
                });
            }
            stream.rtp_floor = stream.rtp.top() + 1;
            stream.rtp.reset();
        }
        stream.start_roc = roc;
        Ok(())
    }

    /// The SRTCP index the next SRTCP packet of outbound stream `ssrc` will
    /// carry (libsrtp's numbering: 1 for a fresh stream).
    pub fn outbound_srtcp_index(&self, ssrc: u32) -> Option<u32> {
        self.outbound
            .iter()
            .find(|s| s.ssrc == ssrc)
            .map(|s| s.rtcp_next)
    }

    /// Sets the SRTCP index of the next SRTCP packet of outbound stream
    /// `ssrc` (0 to 2^31 - 1), for an application that resumes a session.
    /// Once an SRTCP packet was sent, an index below the next one is
    /// refused: it was used already.
    pub fn set_outbound_srtcp_index(&mut self, ssrc: u32, index: u32) -> Result<(), Error> {
        let kind = PacketKind::Rtcp;
        if index > MAX_SRTCP_INDEX {
            return Err(Error::InvalidConfig {
                reason: "an SRTCP index must be below 2^31",
            });
        }
        let stream = self
            .outbound
            .iter_mut()
            .find(|s| s.ssrc == ssrc)
            .ok_or(Error::UnknownSsrc { kind, ssrc })?;
        if stream.rtcp_sent && index < stream.rtcp_next {
            return Err(Error::IndexReuse {
                kind,
                ssrc,
                requested: u64::from(index),
                lowest: u64::from(stream.rtcp_next),
            });
        }
        stream.rtcp_next = index;
        Ok(())
    }

    /// The current rollover counter of inbound stream `ssrc`.
    pub fn inbound_roc(&self, ssrc: u32) -> Option<u32> {
        self.inbound
            .iter()
            .find(|s| s.ssrc == ssrc)
            .map(Stream::roc)
    }

    /// Bytes that protecting adds to an RTP packet (tag and MKI).
    pub fn rtp_overhead(&self) -> usize {
        self.suite.rtp_tag_len() + self.mki_len
    }

    /// Bytes that protecting adds to an RTCP packet (tag, E||index, MKI).
    pub fn rtcp_overhead(&self) -> usize {
        self.suite.rtcp_tag_len() + 4 + self.mki_len
    }

    /// The key slot named by the MKI at `mki`, or the only key.
    #[inline]
    fn key_by_mki(keys: &[KeySlot], mki: &[u8], kind: PacketKind) -> Result<usize, Error> {
        if mki.is_empty() {
            return if keys.is_empty() {
                Err(Error::UnknownMki { kind })
            } else {
                Ok(0)
            };
        }
        keys.iter()
            .position(|k| *k.mki == *mki)
            .ok_or(Error::UnknownMki { kind })
    }

    /// Finds the inbound stream, or checks that a new one may be created.
    #[inline]
    fn inbound_slot(&self, ssrc: u32, kind: PacketKind) -> Result<Option<usize>, Error> {
        if let Some(i) = self.inbound.iter().position(|s| s.ssrc == ssrc) {
            return Ok(Some(i));
        }
        if self.config.ssrc_policy == SsrcPolicy::KnownOnly {
            return Err(Error::UnknownSsrc { kind, ssrc });
        }
        if self.inbound.len() >= self.config.max_inbound_streams {
            return Err(Error::TooManyStreams {
                limit: self.config.max_inbound_streams,
                ssrc,
            });
        }
        Ok(None)
    }

    // ---- SRTP ---------------------------------------------------------------

    /// Protects the RTP packet `buf[..len]` in place; `buf` must have room
    /// for [`Context::rtp_overhead`] more bytes. Returns the SRTP length.
    ///
    /// On error the packet is unchanged and no state moved.
    pub fn protect_rtp_in_place(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let available = buf.len();
        let packet = buf.get(..len).ok_or(too_small(len, available))?;
        let hdr = rtp_header(packet, 0)?;
        check_padding(packet, &hdr)?;
        let tag_len = self.suite.rtp_tag_len();
        let out_len = len + tag_len + self.mki_len;
        if available < out_len {
            return Err(too_small(out_len, available));
        }
        let kind = PacketKind::Rtp;
        let ssrc = hdr.ssrc;
        let stream = self
            .outbound
            .iter_mut()
            .find(|s| s.ssrc == ssrc)
            .ok_or(Error::UnknownSsrc { kind, ssrc })?;
        let index = stream.rtp_index(hdr.seq).ok_or(Error::TooOld {
            kind,
            ssrc,
            index: u64::from(hdr.seq),
        })?;
        let key_no = self.active;
        let key = self
            .keys
            .get_mut(key_no)
            .ok_or(Error::KeyExpired { kind, key: key_no })?;
        if index > MAX_SRTP_INDEX {
            return Err(Error::KeyExpired { kind, key: key_no });
        }
        if index < stream.rtp_floor {
            return Err(Error::Replay { kind, ssrc, index });
        }
        stream
            .rtp
            .check(index)
            .map_err(|r| refused(r, kind, ssrc, index))?;
        key.rtp_usage.check(kind, key_no)?;

        let (body, tail) = buf.split_at_mut(len);
        if self.suite.is_aead() {
            let (header, payload) = body.split_at_mut(hdr.len);
            let tag = key
                .rtp
                .seal(ssrc, index, header, payload)
                .map_err(|_| Error::AuthenticationFailed { kind, ssrc })?;
            put(tail, 0, tag.as_ref())?;
            put(tail, tag_len, &key.mki)?;
        } else {
            if let Some(payload) = body.get_mut(hdr.len..) {
                key.rtp.apply_ctr(ssrc, index, payload);
            }
            let roc = u32::try_from(index >> 16).unwrap_or(u32::MAX);
            let tag = key
                .rtp
                .mac(body, &roc.to_be_bytes())
                .ok_or(Error::AuthenticationFailed { kind, ssrc })?;
            let tag = tag
                .get(..tag_len)
                .ok_or(Error::AuthenticationFailed { kind, ssrc })?;
            put(tail, 0, &key.mki)?;
            put(tail, key.mki.len(), tag)?;
        }
        stream.rtp.commit(index);
        key.rtp_usage.count();
        Ok(out_len)
    }

    /// Protects the RTP packet `packet` into `out`; returns the SRTP length.
    /// `out` needs `packet.len() + rtp_overhead()` bytes.
    pub fn protect_rtp(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let needed = packet.len() + self.rtp_overhead();
        if out.len() < needed {
            return Err(too_small(needed, out.len()));
        }
        put(out, 0, packet)?;
        self.protect_rtp_in_place(out, packet.len())
    }

    /// Protects `packet` into `out`, replacing its contents. `out` grows only
    /// if its capacity is short, so a reused vector allocates nothing.
    pub fn protect_rtp_vec(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        out.clear();
        out.extend_from_slice(packet);
        out.resize(packet.len() + self.rtp_overhead(), 0);
        let result = self.protect_rtp_in_place(out, packet.len());
        match result {
            Ok(n) => out.truncate(n),
            Err(_) => out.clear(),
        }
        result.map(|_| ())
    }

    /// Unprotects the SRTP packet `buf[..len]` in place; returns the RTP
    /// length. The replay window, ROC and stream table change only after the
    /// packet authenticated. On error the contents of `buf` are unspecified.
    ///
    /// A packet that authenticates but whose RTP padding count exceeds its
    /// payload is counted as received (so a replay of it is refused) and
    /// reported as [`Error::PaddingOverrun`].
    pub fn unprotect_rtp_in_place(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let kind = PacketKind::Rtp;
        let available = buf.len();
        let packet = buf.get_mut(..len).ok_or(too_small(len, available))?;
        let tag_len = self.suite.rtp_tag_len();
        let trailer = tag_len + self.mki_len;
        if len < 12 + trailer {
            return Err(Error::HeaderTooShort {
                kind,
                len,
                needed: 12 + trailer,
            });
        }
        let body_end = len - trailer;
        let aead = self.suite.is_aead();
        // GCM: header || ciphertext || tag || MKI; HMAC: header || payload || MKI || tag.
        let (mki_at, cipher_end) = if aead {
            (len - self.mki_len, len - self.mki_len)
        } else {
            (body_end, body_end)
        };
        let short = Error::HeaderTooShort {
            kind,
            len,
            needed: 12 + trailer,
        };
        let hdr = rtp_header(packet.get(..body_end).ok_or(short.clone())?, trailer)?;
        let ssrc = hdr.ssrc;
        let mki = packet
            .get(mki_at..mki_at + self.mki_len)
            .ok_or(short.clone())?;
        let key_no = Self::key_by_mki(&self.keys, mki, kind)?;
        let slot = self.inbound_slot(ssrc, kind)?;
        let index = match slot.and_then(|i| self.inbound.get(i)) {
            Some(s) => {
                let index = s.rtp_index(hdr.seq).ok_or(Error::TooOld {
                    kind,
                    ssrc,
                    index: u64::from(hdr.seq),
                })?;
                s.rtp
                    .check(index)
                    .map_err(|r| refused(r, kind, ssrc, index))?;
                index
            }
            None => u64::from(hdr.seq),
        };
        if index > MAX_SRTP_INDEX {
            return Err(Error::KeyExpired { kind, key: key_no });
        }
        let key = self
            .keys
            .get_mut(key_no)
            .ok_or(Error::UnknownMki { kind })?;
        key.rtp_usage.check(kind, key_no)?;
        let auth_failed = Error::AuthenticationFailed { kind, ssrc };

        let plain_len = if aead {
            let (header, rest) = packet
                .get_mut(..cipher_end)
                .ok_or(short)?
                .split_at_mut_checked(hdr.len)
                .ok_or(auth_failed.clone())?;
            key.rtp
                .open(ssrc, index, header, rest)
                .map_err(|_| auth_failed)?;
            body_end
        } else {
            let (body, tail) = packet.split_at_mut(body_end);
            let tag = tail.get(self.mki_len..).ok_or(short)?;
            let roc = u32::try_from(index >> 16).unwrap_or(u32::MAX);
            key.rtp
                .verify_mac(body, &roc.to_be_bytes(), tag)
                .map_err(|_| auth_failed)?;
            if let Some(payload) = body.get_mut(hdr.len..) {
                key.rtp.apply_ctr(ssrc, index, payload);
            }
            body_end
        };

        // Authentic: commit.
        key.rtp_usage.count();
        match slot.and_then(|i| self.inbound.get_mut(i)) {
            Some(s) => s.rtp.commit(index),
            None => {
                let mut s = Stream::new(ssrc, self.config.replay_window, 0);
                s.rtp.commit(index);
                self.inbound.push(s);
            }
        }
        check_padding(
            buf.get(..plain_len)
                .ok_or(too_small(plain_len, available))?,
            &hdr,
        )?;
        Ok(plain_len)
    }

    /// Unprotects the SRTP packet `packet` into `out`; returns the RTP
    /// length. `out` needs `packet.len()` bytes.
    pub fn unprotect_rtp(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        if out.len() < packet.len() {
            return Err(too_small(packet.len(), out.len()));
        }
        put(out, 0, packet)?;
        self.unprotect_rtp_in_place(out, packet.len())
    }

    /// Unprotects `packet` into `out`, replacing its contents (cleared on
    /// error). A reused vector allocates nothing.
    pub fn unprotect_rtp_vec(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        out.clear();
        out.extend_from_slice(packet);
        let result = self.unprotect_rtp_in_place(out, packet.len());
        match result {
            Ok(n) => out.truncate(n),
            Err(_) => out.clear(),
        }
        result.map(|_| ())
    }

    // ---- SRTCP --------------------------------------------------------------

    /// Protects the RTCP packet `buf[..len]` in place; `buf` must have room
    /// for [`Context::rtcp_overhead`] more bytes. Returns the SRTCP length.
    ///
    /// On error the packet is unchanged and no state moved.
    pub fn protect_rtcp_in_place(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let kind = PacketKind::Rtcp;
        let available = buf.len();
        let packet = buf.get(..len).ok_or(too_small(len, available))?;
        let ssrc = rtcp_ssrc(packet, 0)?;
        let tag_len = self.suite.rtcp_tag_len();
        let out_len = len + self.rtcp_overhead();
        if available < out_len {
            return Err(too_small(out_len, available));
        }
        let stream = self
            .outbound
            .iter_mut()
            .find(|s| s.ssrc == ssrc)
            .ok_or(Error::UnknownSsrc { kind, ssrc })?;
        let key_no = self.active;
        let key = self
            .keys
            .get_mut(key_no)
            .ok_or(Error::KeyExpired { kind, key: key_no })?;
        let index = stream.rtcp_next;
        if index > MAX_SRTCP_INDEX {
            return Err(Error::KeyExpired { kind, key: key_no });
        }
        key.rtcp_usage.check(kind, key_no)?;
        let encrypt = self.config.encrypt_rtcp;
        let e_index = (index | if encrypt { 0x8000_0000 } else { 0 }).to_be_bytes();
        let auth_failed = Error::AuthenticationFailed { kind, ssrc };

        if self.suite.is_aead() {
            let tag = if encrypt {
                let (body, _) = buf.split_at_mut(len);
                let (header, payload) = body.split_at_mut_checked(8).ok_or(auth_failed.clone())?;
                let mut aad = [0u8; 12];
                put(&mut aad, 0, header)?;
                put(&mut aad, 8, &e_index)?;
                key.rtcp
                    .seal(ssrc, u64::from(index), &aad, payload)
                    .map_err(|_| auth_failed)?
            } else {
                put(buf, len, &e_index)?;
                let aad = buf.get(..len + 4).ok_or(too_small(len + 4, available))?;
                key.rtcp
                    .seal(ssrc, u64::from(index), aad, &mut [])
                    .map_err(|_| auth_failed)?
            };
            put(buf, len, tag.as_ref())?;
            put(buf, len + tag_len, &e_index)?;
            put(buf, len + tag_len + 4, &key.mki)?;
        } else {
            if encrypt && let Some(payload) = buf.get_mut(8..len) {
                key.rtcp.apply_ctr(ssrc, u64::from(index), payload);
            }
            put(buf, len, &e_index)?;
            put(buf, len + 4, &key.mki)?;
            let signed = buf.get(..len + 4).ok_or(too_small(len + 4, available))?;
            let tag = key.rtcp.mac(signed, &[]).ok_or(auth_failed.clone())?;
            put(
                buf,
                len + 4 + key.mki.len(),
                tag.get(..tag_len).ok_or(auth_failed)?,
            )?;
        }
        stream.rtcp_next = index + 1;
        stream.rtcp_sent = true;
        key.rtcp_usage.count();
        Ok(out_len)
    }

    /// Protects the RTCP packet `packet` into `out`; returns the SRTCP
    /// length. `out` needs `packet.len() + rtcp_overhead()` bytes.
    pub fn protect_rtcp(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let needed = packet.len() + self.rtcp_overhead();
        if out.len() < needed {
            return Err(too_small(needed, out.len()));
        }
        put(out, 0, packet)?;
        self.protect_rtcp_in_place(out, packet.len())
    }

    /// Protects `packet` into `out`, replacing its contents. A reused vector
    /// allocates nothing.
    pub fn protect_rtcp_vec(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        out.clear();
        out.extend_from_slice(packet);
        out.resize(packet.len() + self.rtcp_overhead(), 0);
        let result = self.protect_rtcp_in_place(out, packet.len());
        match result {
            Ok(n) => out.truncate(n),
            Err(_) => out.clear(),
        }
        result.map(|_| ())
    }

    /// Unprotects the SRTCP packet `buf[..len]` in place (encrypted or, E
    /// flag clear, authenticated only); returns the RTCP length. State
    /// changes only after the packet authenticated. On error the contents of
    /// `buf` are unspecified.
    pub fn unprotect_rtcp_in_place(&mut self, buf: &mut [u8], len: usize) -> Result<usize, Error> {
        let kind = PacketKind::Rtcp;
        let available = buf.len();
        let packet = buf.get_mut(..len).ok_or(too_small(len, available))?;
        let tag_len = self.suite.rtcp_tag_len();
        let trailer = tag_len + 4 + self.mki_len;
        if len < 8 + trailer {
            return Err(Error::HeaderTooShort {
                kind,
                len,
                needed: 8 + trailer,
            });
        }
        let aead = self.suite.is_aead();
        // GCM: hdr || ct || tag || E|index || MKI; HMAC: hdr || ct || E|index || MKI || tag.
        let (index_at, mki_at) = if aead {
            (len - self.mki_len - 4, len - self.mki_len)
        } else {
            (
                len - tag_len - self.mki_len - 4,
                len - tag_len - self.mki_len,
            )
        };
        let ssrc = rtcp_ssrc(packet, 0)?;
        let short = Error::HeaderTooShort {
            kind,
            len,
            needed: 8 + trailer,
        };
        let e_index: [u8; 4] = packet
            .get(index_at..index_at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or(short.clone())?;
        let e_index_n = u32::from_be_bytes(e_index);
        let encrypted = e_index_n & 0x8000_0000 != 0;
        let index = u64::from(e_index_n & MAX_SRTCP_INDEX);
        let mki = packet
            .get(mki_at..mki_at + self.mki_len)
            .ok_or(short.clone())?;
        let key_no = Self::key_by_mki(&self.keys, mki, kind)?;
        let slot = self.inbound_slot(ssrc, kind)?;
        if let Some(s) = slot.and_then(|i| self.inbound.get(i)) {
            s.rtcp
                .check(index)
                .map_err(|r| refused(r, kind, ssrc, index))?;
        }
        let key = self
            .keys
            .get_mut(key_no)
            .ok_or(Error::UnknownMki { kind })?;
        key.rtcp_usage.check(kind, key_no)?;
        let auth_failed = Error::AuthenticationFailed { kind, ssrc };

        let plain_len = if aead {
            let plain_len = index_at - tag_len;
            if encrypted {
                let mut aad = [0u8; 12];
                put(&mut aad, 0, packet.get(..8).ok_or(short.clone())?)?;
                put(&mut aad, 8, &e_index)?;
                let ct = packet.get_mut(8..index_at).ok_or(short)?;
                key.rtcp
                    .open(ssrc, index, &aad, ct)
                    .map_err(|_| auth_failed)?;
            } else {
                let mut tag = [0u8; 16];
                put(
                    &mut tag,
                    0,
                    packet.get(plain_len..index_at).ok_or(short.clone())?,
                )?;
                // The AAD is the packet followed by E||index: move the index
                // over the tag, which is kept aside.
                put(packet, plain_len, &e_index)?;
                let aad = packet.get(..plain_len + 4).ok_or(short)?;
                key.rtcp
                    .open(ssrc, index, aad, &mut tag)
                    .map_err(|_| auth_failed)?;
            }
            plain_len
        } else {
            let (signed, rest) = packet.split_at_checked(index_at + 4).ok_or(short.clone())?;
            let tag = rest
                .get(rest.len().checked_sub(tag_len).ok_or(short)?..)
                .ok_or(auth_failed.clone())?;
            key.rtcp
                .verify_mac(signed, &[], tag)
                .map_err(|_| auth_failed)?;
            if encrypted && let Some(payload) = packet.get_mut(8..index_at) {
                key.rtcp.apply_ctr(ssrc, index, payload);
            }
            index_at
        };

        key.rtcp_usage.count();
        match slot.and_then(|i| self.inbound.get_mut(i)) {
            Some(s) => s.rtcp.commit(index),
            None => {
                let mut s = Stream::new(ssrc, self.config.replay_window, 0);
                s.rtcp.commit(index);
                self.inbound.push(s);
            }
        }
        Ok(plain_len)
    }

    /// Unprotects the SRTCP packet `packet` into `out`; returns the RTCP
    /// length. `out` needs `packet.len()` bytes.
    pub fn unprotect_rtcp(&mut self, packet: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        if out.len() < packet.len() {
            return Err(too_small(packet.len(), out.len()));
        }
        put(out, 0, packet)?;
        self.unprotect_rtcp_in_place(out, packet.len())
    }

    /// Unprotects `packet` into `out`, replacing its contents (cleared on
    /// error). A reused vector allocates nothing.
    pub fn unprotect_rtcp_vec(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        out.clear();
        out.extend_from_slice(packet);
        let result = self.unprotect_rtcp_in_place(out, packet.len());
        match result {
            Ok(n) => out.truncate(n),
            Err(_) => out.clear(),
        }
        result.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(name: &str) -> Vec<(String, Vec<u8>)> {
        let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains(':'))
            .filter_map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                let v = v.trim();
                let bytes = data_encoding::HEXLOWER_PERMISSIVE.decode(v.as_bytes()).ok();
                bytes.map(|b| (k.trim().to_string(), b))
            })
            .collect()
    }

    fn get<'a>(v: &'a [(String, Vec<u8>)], k: &str) -> &'a [u8] {
        &v.iter()
            .find(|(n, _)| n == k)
            .unwrap_or_else(|| panic!("no {k}"))
            .1
    }

    /// A context whose SRTP and SRTCP session keys are the given ones, as in
    /// the RFC 7714 examples (which skip the key derivation).
    fn with_session_keys(suite: Suite, key: &[u8], salt: &[u8]) -> Context {
        let master =
            MasterKey::new(suite, &vec![0; suite.key_len()], &vec![0; suite.salt_len()]).unwrap();
        let mut ctx = Context::new(master, Config::new()).unwrap();
        ctx.keys[0].rtp =
            Crypto::from_session_keys(suite, PacketKind::Rtp, key, &[], salt).unwrap();
        ctx.keys[0].rtcp =
            Crypto::from_session_keys(suite, PacketKind::Rtcp, key, &[], salt).unwrap();
        ctx
    }

    #[test]
    fn rfc7714_16_srtp_examples() {
        for (file, suite) in [
            (
                "rfc7714_16_1_srtp_aead_aes_128_gcm.txt",
                Suite::AeadAes128Gcm,
            ),
            (
                "rfc7714_16_2_srtp_aead_aes_256_gcm.txt",
                Suite::AeadAes256Gcm,
            ),
        ] {
            let v = vector(file);
            let plain = get(&v, "rtp_plaintext");
            let protected = get(&v, "srtp_protected");
            let mut tx = with_session_keys(suite, get(&v, "session_key"), get(&v, "session_salt"));
            tx.add_outbound_stream(0x5501a0b2).unwrap();
            let mut out = Vec::new();
            tx.protect_rtp_vec(plain, &mut out).unwrap();
            assert_eq!(out, protected, "{file}");
            let mut rx = with_session_keys(suite, get(&v, "session_key"), get(&v, "session_salt"));
            rx.unprotect_rtp_vec(protected, &mut out).unwrap();
            assert_eq!(out, plain, "{file}");
        }
    }

    #[test]
    fn rfc7714_17_srtcp_examples() {
        for (file, suite) in [
            (
                "rfc7714_17_1_srtcp_aead_aes_128_gcm.txt",
                Suite::AeadAes128Gcm,
            ),
            (
                "rfc7714_17_2_srtcp_aead_aes_256_gcm.txt",
                Suite::AeadAes256Gcm,
            ),
        ] {
            let v = vector(file);
            let plain = get(&v, "rtcp_plaintext");
            let index = u32::from_be_bytes(get(&v, "srtcp_index").try_into().unwrap());
            let (key, salt) = (get(&v, "session_key"), get(&v, "session_salt"));
            let mut tx = with_session_keys(suite, key, salt);
            tx.add_outbound_stream(0x4d617273).unwrap();
            tx.outbound[0].rtcp_next = index;
            let mut out = Vec::new();
            tx.protect_rtcp_vec(plain, &mut out).unwrap();
            assert_eq!(out, get(&v, "srtcp_protected"), "{file}");
            let mut rx = with_session_keys(suite, key, salt);
            rx.unprotect_rtcp_vec(get(&v, "srtcp_protected"), &mut out)
                .unwrap();
            assert_eq!(out, plain, "{file}");

            if v.iter().any(|(k, _)| k == "srtcp_auth_only") {
                let auth_only = get(&v, "srtcp_auth_only");
                let mut tx = with_session_keys(suite, key, salt);
                tx.config = Config::new().dangerous_unencrypted_srtcp();
                tx.add_outbound_stream(0x4d617273).unwrap();
                tx.outbound[0].rtcp_next = index;
                tx.protect_rtcp_vec(plain, &mut out).unwrap();
                assert_eq!(out, auth_only, "{file} E=0");
                let mut rx = with_session_keys(suite, key, salt);
                rx.unprotect_rtcp_vec(auth_only, &mut out).unwrap();
                assert_eq!(out, plain, "{file} E=0");
                let mut bad = auth_only.to_vec();
                bad[20] ^= 1;
                let mut rx = with_session_keys(suite, key, salt);
                assert!(matches!(
                    rx.unprotect_rtcp_vec(&bad, &mut out),
                    Err(Error::AuthenticationFailed { .. })
                ));
            }
        }
    }

    #[test]
    fn context_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Context>();
        check::<MasterKey>();
    }
}
