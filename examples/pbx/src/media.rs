//! Media on sockets: the PBX's SRTP relay between two legs, and media
//! endpoints (the voicemail service's, a softphone's) that send an audio
//! source and hand what they receive to a sink. Each runs as one tokio
//! task over its own UDP port pair (RTP on an even port, RTCP on the next),
//! taken from a [`PortPool`].
//!
//! The cryptography and the packet rules are the facade's
//! ([`MediaRelay`], [`SrtpSession`]); this module only moves datagrams and
//! keeps time. Refused packets (tampered, replayed, foreign) are counted and
//! logged by kind, never by content.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use carevox::audio::G711;
use carevox::dtmf::{Digit, DtmfSender};
use carevox::media::SrtpSession;
use carevox::recording::Speaker;
use carevox::relay::{Channel, Leg, LegStats, MediaRelay, RelayError};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{MissedTickBehavior, interval};
use tracing::debug;

/// The largest datagram read.
const MAX_DATAGRAM: usize = 1500;
/// Room past a packet for the SRTP tag and SRTCP index.
const SEAL_ROOM: usize = 64;

/// Why media could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// Every port pair of the pool is in use.
    #[error("no free media port pair in {min}-{max}")]
    PortsExhausted {
        /// The pool's lowest port.
        min: u16,
        /// The pool's highest port.
        max: u16,
    },
    /// A socket could not be opened.
    #[error("media socket: {0}")]
    Io(#[from] std::io::Error),
}

/// The even/odd port pairs media may use on one address.
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<Mutex<PoolState>>,
}

#[derive(Debug)]
struct PoolState {
    ip: IpAddr,
    min: u16,
    max: u16,
    used: BTreeSet<u16>,
    next: u16,
}

impl PortPool {
    /// Pairs from `min` to `max` (inclusive, RTP on the even ports) on `ip`.
    pub fn new(ip: IpAddr, min: u16, max: u16) -> PortPool {
        let min = min.saturating_add(min % 2);
        PortPool {
            inner: Arc::new(Mutex::new(PoolState {
                ip,
                min,
                max,
                used: BTreeSet::new(),
                next: min,
            })),
        }
    }

    /// Binds the next free pair.
    pub async fn bind(&self) -> Result<PortPair, MediaError> {
        // Ports another process holds are skipped: try each free pair once.
        let attempts = {
            let s = self.state();
            usize::from((s.max.saturating_sub(s.min)) / 2 + 1)
        };
        for _ in 0..attempts {
            let (ip, port) = {
                let mut s = self.state();
                let Some(port) = s.take() else {
                    return Err(MediaError::PortsExhausted {
                        min: s.min,
                        max: s.max,
                    });
                };
                (s.ip, port)
            };
            let rtp = UdpSocket::bind(SocketAddr::new(ip, port)).await;
            let rtcp = UdpSocket::bind(SocketAddr::new(ip, port.saturating_add(1))).await;
            match (rtp, rtcp) {
                (Ok(rtp), Ok(rtcp)) => {
                    return Ok(PortPair {
                        rtp,
                        rtcp,
                        port,
                        pool: Some(self.clone()),
                    });
                }
                _ => {
                    self.state().used.remove(&port);
                }
            }
        }
        let s = self.state();
        Err(MediaError::PortsExhausted {
            min: s.min,
            max: s.max,
        })
    }

    /// Pairs in use.
    pub fn in_use(&self) -> usize {
        self.state().used.len()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, port: u16) {
        self.state().used.remove(&port);
    }
}

impl PoolState {
    /// The next free even port, round robin (a port just released is not
    /// reused at once, so late packets of the last call do not reach the
    /// next).
    fn take(&mut self) -> Option<u16> {
        let span = (self.max.saturating_sub(self.min)) / 2 + 1;
        for _ in 0..span {
            let port = self.next;
            self.next = if port.saturating_add(2) > self.max.saturating_sub(1) {
                self.min
            } else {
                port + 2
            };
            if port.saturating_add(1) <= self.max && self.used.insert(port) {
                return Some(port);
            }
        }
        None
    }
}

/// A bound RTP/RTCP socket pair; its ports return to the pool when it is
/// dropped.
#[derive(Debug)]
pub struct PortPair {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    port: u16,
    pool: Option<PortPool>,
}

impl PortPair {
    /// A pair on any free ports of `ip`, outside any pool (tests, clients).
    pub async fn ephemeral(ip: IpAddr) -> Result<PortPair, MediaError> {
        // The RTCP port must be the RTP port plus one: retry until a pair is
        // free.
        for _ in 0..64 {
            let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
            let port = rtp.local_addr()?.port();
            if port % 2 != 0 || port == u16::MAX {
                continue;
            }
            if let Ok(rtcp) = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await {
                return Ok(PortPair {
                    rtp,
                    rtcp,
                    port,
                    pool: None,
                });
            }
        }
        Err(MediaError::PortsExhausted {
            min: 0,
            max: u16::MAX,
        })
    }

    /// The RTP address (RTCP is on the next port).
    pub fn rtp_addr(&self) -> Result<SocketAddr, MediaError> {
        Ok(self.rtp.local_addr()?)
    }

    /// The RTP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortPair {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.release(self.port);
        }
    }
}

/// What a relay or an endpoint counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MediaStats {
    /// Leg A of a relay, or an endpoint's one leg.
    pub a: LegStats,
    /// Leg B of a relay (zero for an endpoint).
    pub b: LegStats,
    /// Plaintext packets the sink could not take in time (dropped from
    /// the copy for the sink only; the relay forwarded them).
    pub sink_drops: u64,
}

/// A running media task: stop it to get its counters.
#[derive(Debug)]
pub struct MediaTask {
    stop: Option<oneshot::Sender<()>>,
    done: Option<oneshot::Receiver<MediaStats>>,
    stats: watch::Receiver<MediaStats>,
    keys: Option<mpsc::Sender<Digit>>,
}

impl MediaTask {
    /// Presses `digit` on an endpoint that agreed on telephone-events: it
    /// is sent as RFC 4733 events (100 ms, then a pause) after the keys
    /// pressed before it. False when the endpoint cannot send keys or too
    /// many are waiting.
    pub fn press(&self, digit: Digit) -> bool {
        self.keys
            .as_ref()
            .is_some_and(|k| k.try_send(digit).is_ok())
    }

    /// The counters so far.
    pub fn stats(&self) -> MediaStats {
        *self.stats.borrow()
    }

    /// Stops the task (its sockets close, its sink's channel ends) and
    /// returns its counters.
    pub async fn stop(mut self) -> MediaStats {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.done.take() {
            Some(done) => done.await.unwrap_or_else(|_| *self.stats.borrow()),
            None => *self.stats.borrow(),
        }
    }
}

impl Drop for MediaTask {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Where plaintext RTP goes: a recorder, a test, a player. Bounded: a sink
/// that does not keep up loses packets (counted), the media path never
/// waits for it.
pub type Sink = mpsc::Sender<Vec<u8>>;

/// The task's side of a [`MediaTask`].
struct TaskEnds {
    stop: oneshot::Receiver<()>,
    done: oneshot::Sender<MediaStats>,
    stats: watch::Sender<MediaStats>,
}

fn new_task() -> (MediaTask, TaskEnds) {
    let (stop_tx, stop) = oneshot::channel();
    let (done, done_rx) = oneshot::channel();
    let (stats, stats_rx) = watch::channel(MediaStats::default());
    (
        MediaTask {
            stop: Some(stop_tx),
            done: Some(done_rx),
            stats: stats_rx,
            keys: None,
        },
        TaskEnds { stop, done, stats },
    )
}

fn log_refusal(leg: Leg, e: &RelayError) {
    // The error names the kind of refusal and an SSRC, never content.
    debug!(leg = ?leg, error = %e, "media packet refused");
}

/// A plaintext RTP packet a relay hands to a call recording: who sent it,
/// when it arrived (since the relay started) and the packet.
#[derive(Debug)]
pub struct Tapped {
    /// The leg whose peer sent it, or [`Speaker::Own`] for the
    /// announcement.
    pub speaker: Speaker,
    /// Its arrival, since the relay started.
    pub at: Duration,
    /// The plaintext RTP packet.
    pub packet: Vec<u8>,
}

/// Where a tapped packet goes: a call recorder. Bounded: a recorder that
/// does not keep up loses packets (counted), the media path never waits.
pub type TapSink = mpsc::Sender<Tapped>;

/// A relay that records its call: first it plays `announcement` to both
/// legs (the parties do not hear each other meanwhile), then it relays,
/// and every plaintext RTP packet of both legs, and of the announcement,
/// goes to `sink`.
#[derive(Debug)]
pub struct RecordedRelay {
    /// Where the packets go.
    pub sink: TapSink,
    /// G.711 μ-law samples played to both legs before they are joined;
    /// empty for none.
    pub announcement: Arc<Vec<u8>>,
    /// The SSRC of the announcement's stream toward each leg.
    pub ssrc: u32,
}

/// The announcement's state in a relay task.
struct Playing {
    samples: Arc<Vec<u8>>,
    ssrc: u32,
    /// The next sample to play.
    at: u32,
    seq: u16,
}

fn socket_of<'p>(a: &'p PortPair, b: &'p PortPair, leg: Leg, channel: Channel) -> &'p UdpSocket {
    match (leg, channel) {
        (Leg::A, Channel::Rtp) => &a.rtp,
        (Leg::A, Channel::Rtcp) => &a.rtcp,
        (Leg::B, Channel::Rtp) => &b.rtp,
        (Leg::B, Channel::Rtcp) => &b.rtcp,
    }
}

fn speaker_of(leg: Leg) -> Speaker {
    match leg {
        Leg::A => Speaker::A,
        Leg::B => Speaker::B,
    }
}

/// Starts relaying between leg A's peer (reached through `a`) and leg B's
/// (through `b`). With `recording`, the relay plays its announcement to
/// both legs first and hands every plaintext RTP packet to its sink.
pub fn spawn_relay(
    mut relay: MediaRelay,
    a: PortPair,
    b: PortPair,
    recording: Option<RecordedRelay>,
) -> MediaTask {
    let (task, ends) = new_task();
    let TaskEnds {
        stop: mut stop_rx,
        done: done_tx,
        stats: stats_tx,
    } = ends;
    let (tap, mut playing) = match recording {
        Some(r) => {
            let playing = (!r.announcement.is_empty()).then_some(Playing {
                samples: r.announcement,
                ssrc: r.ssrc,
                at: 0,
                seq: 1,
            });
            (Some(r.sink), playing)
        }
        None => (None, None),
    };
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut tick = interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut bufs = [[0u8; MAX_DATAGRAM + SEAL_ROOM]; 4];
        let mut own = [0u8; 12 + 160 + SEAL_ROOM];
        let mut stats = MediaStats::default();
        loop {
            let [b0, b1, b2, b3] = &mut bufs;
            let (leg, channel, buf, got) = tokio::select! {
                _ = &mut stop_rx => break,
                _ = tick.tick(), if playing.is_some() => {
                    let at = started.elapsed();
                    if let Some(p) = &mut playing
                        && !play_frame(&mut relay, &a, &b, p, &mut own, tap.as_ref(), at, &mut stats).await
                    {
                        playing = None;
                    }
                    continue;
                }
                r = a.rtp.recv_from(&mut b0[..MAX_DATAGRAM]) => (Leg::A, Channel::Rtp, b0, r),
                r = a.rtcp.recv_from(&mut b1[..MAX_DATAGRAM]) => (Leg::A, Channel::Rtcp, b1, r),
                r = b.rtp.recv_from(&mut b2[..MAX_DATAGRAM]) => (Leg::B, Channel::Rtp, b2, r),
                r = b.rtcp.recv_from(&mut b3[..MAX_DATAGRAM]) => (Leg::B, Channel::Rtcp, b3, r),
            };
            let Ok((len, source)) = got else {
                continue;
            };
            let buf: &mut [u8] = buf;
            let plain = match relay.receive(leg, channel, source, buf, len) {
                Ok(n) => n,
                Err(e) => {
                    log_refusal(leg, &e);
                    continue;
                }
            };
            // While the announcement plays, the parties' media is opened
            // (so that the legs follow their peers) but neither relayed
            // nor recorded.
            if playing.is_some() && channel == Channel::Rtp {
                continue;
            }
            if channel == Channel::Rtp
                && let Some(sink) = &tap
                && let Some(p) = buf.get(..plain)
                && sink
                    .try_send(Tapped {
                        speaker: speaker_of(leg),
                        at: started.elapsed(),
                        packet: p.to_vec(),
                    })
                    .is_err()
            {
                stats.sink_drops += 1;
            }
            match relay.forward(leg, channel, buf, plain) {
                Ok(out) => {
                    let socket = socket_of(&a, &b, leg.other(), channel);
                    if let Some(sealed) = buf.get(..out.len) {
                        let _ = socket.send_to(sealed, out.to).await;
                    }
                }
                Err(e) => log_refusal(leg, &e),
            }
            stats.a = relay.stats(Leg::A);
            stats.b = relay.stats(Leg::B);
            let _ = stats_tx.send(stats);
        }
        stats.a = relay.stats(Leg::A);
        stats.b = relay.stats(Leg::B);
        // The ports go back to the pool before the task says it is done
        // (and the recording's sink closes, which seals it).
        drop((a, b, tap));
        let _ = done_tx.send(stats);
    });
    task
}

/// Plays the announcement's next 20 ms to both legs (and the recording);
/// false once it is over.
#[allow(clippy::too_many_arguments)]
async fn play_frame(
    relay: &mut MediaRelay,
    a: &PortPair,
    b: &PortPair,
    p: &mut Playing,
    buf: &mut [u8; 12 + 160 + SEAL_ROOM],
    tap: Option<&TapSink>,
    at: Duration,
    stats: &mut MediaStats,
) -> bool {
    let Some(frame) = frame(&Source::Samples(p.samples.clone()), G711::Pcmu, p.at) else {
        return false;
    };
    let header = rtp_header(G711::Pcmu.payload_type(), p.seq, p.at, p.ssrc);
    let len = header.len() + frame.len();
    let mut plain = [0u8; 12 + 160];
    let (h, rest) = plain.split_at_mut(12);
    h.copy_from_slice(&header);
    if let Some(dst) = rest.get_mut(..frame.len()) {
        dst.copy_from_slice(&frame);
    }
    if let Some(sink) = tap
        && sink
            .try_send(Tapped {
                speaker: Speaker::Own,
                at,
                packet: plain.get(..len).unwrap_or(&plain).to_vec(),
            })
            .is_err()
    {
        stats.sink_drops += 1;
    }
    for leg in [Leg::A, Leg::B] {
        if let Some(dst) = buf.get_mut(..len) {
            dst.copy_from_slice(plain.get(..len).unwrap_or(&plain));
        }
        match relay.seal(leg, Channel::Rtp, buf, len) {
            Ok(out) => {
                if let Some(sealed) = buf.get(..out.len) {
                    let _ = socket_of(a, b, leg, Channel::Rtp)
                        .send_to(sealed, out.to)
                        .await;
                }
            }
            Err(e) => log_refusal(leg, &e),
        }
    }
    p.seq = p.seq.wrapping_add(1);
    p.at = p.at.wrapping_add(160);
    true
}

/// What a media endpoint sends, one 20 ms frame of G.711 at a time.
#[derive(Debug, Clone)]
pub enum Source {
    /// Nothing (the endpoint only listens).
    Silent,
    /// A sine tone at this frequency (Hz), forever.
    Tone(f64),
    /// These samples (G.711 of the endpoint's law), once, then nothing.
    Samples(Arc<Vec<u8>>),
    /// What is queued in this playout as it is queued (nothing while it is
    /// empty).
    Playout(Playout),
}

/// Audio queued for a media endpoint to send, 20 ms at a time: a prompt,
/// a message being played back. Whoever holds a clone queues more or
/// clears it (a key pressed to skip).
#[derive(Debug, Clone, Default)]
pub struct Playout {
    queued: Arc<Mutex<std::collections::VecDeque<u8>>>,
}

impl Playout {
    /// An empty playout.
    pub fn new() -> Playout {
        Playout::default()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<u8>> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `samples` after what is queued.
    pub fn push(&self, samples: &[u8]) {
        self.queue().extend(samples);
    }

    /// Drops everything queued.
    pub fn clear(&self) {
        self.queue().clear();
    }

    /// Samples still to play.
    pub fn pending(&self) -> usize {
        self.queue().len()
    }

    /// The next frame: up to 160 samples, padded with `silence`; none when
    /// nothing is queued.
    fn next_frame(&self, silence: u8) -> Option<Vec<u8>> {
        let mut q = self.queue();
        if q.is_empty() {
            return None;
        }
        let n = q.len().min(160);
        let mut f: Vec<u8> = q.drain(..n).collect();
        f.resize(160, silence);
        Some(f)
    }
}

/// A media endpoint's settings.
#[derive(Debug, Clone)]
pub struct EndpointMedia {
    /// The law of what it sends and expects.
    pub law: G711,
    /// Its SSRC.
    pub ssrc: u32,
    /// What it sends.
    pub source: Source,
    /// Where its peer receives RTP (RTCP on the next port).
    pub peer: SocketAddr,
    /// The telephone-event payload type agreed with the peer, if any: the
    /// endpoint can then send keys ([`MediaTask::press`]).
    pub dtmf: Option<u8>,
}

/// How long a key sent by an endpoint lasts.
const KEY_LENGTH: Duration = Duration::from_millis(100);
/// Silent 20 ms ticks between two keys.
const KEY_GAP_TICKS: u32 = 3;

/// Starts a media endpoint on `ports` with the session `srtp` (its
/// `outbound` context seals what it sends, `inbound` opens what its peer
/// sends). Every 20 ms it sends a frame of `media.source`; every packet
/// from its peer that authenticates goes, as plaintext RTP, to `sink`.
pub fn spawn_endpoint(
    mut srtp: SrtpSession,
    ports: PortPair,
    media: EndpointMedia,
    sink: Option<Sink>,
) -> Result<MediaTask, carevox::srtp::Error> {
    srtp.outbound.add_outbound_stream(media.ssrc)?;
    let (mut task, ends) = new_task();
    let (keys_tx, mut keys) = mpsc::channel::<Digit>(64);
    let sender = media.dtmf.map(|pt| {
        task.keys = Some(keys_tx);
        DtmfSender::new(pt, media.ssrc).with_interval(Duration::from_millis(20))
    });
    let TaskEnds {
        stop: mut stop_rx,
        done: done_tx,
        stats: stats_tx,
    } = ends;
    tokio::spawn(async move {
        let mut tick = interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut rx = [0u8; MAX_DATAGRAM];
        let mut rx_rtcp = [0u8; MAX_DATAGRAM];
        let mut tx = [0u8; MAX_DATAGRAM + SEAL_ROOM];
        let mut stats = MediaStats::default();
        let mut seq: u16 = 1;
        let mut sent_samples: u32 = 0;
        let mut peer = media.peer;
        // Keys waiting, the packets of the key being sent (one a tick) and
        // the silent ticks after it.
        let mut waiting: std::collections::VecDeque<Digit> = std::collections::VecDeque::new();
        let mut event: std::collections::VecDeque<Vec<u8>> = std::collections::VecDeque::new();
        let mut gap = 0u32;
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                Some(d) = keys.recv() => waiting.push_back(d),
                _ = tick.tick() => {
                    if event.is_empty() && gap == 0
                        && let (Some(s), Some(d)) = (&sender, waiting.pop_front())
                    {
                        match s.packets(d, KEY_LENGTH, seq, sent_samples) {
                            Ok(packets) => {
                                seq = seq.wrapping_add(u16::try_from(packets.len()).unwrap_or(0));
                                event.extend(packets.into_iter().map(|p| p.packet));
                                gap = KEY_GAP_TICKS;
                            }
                            Err(e) => debug!(error = %e, "key not sent"),
                        }
                    }
                    if let Some(packet) = event.pop_front() {
                        // A key's packets replace the audio while it lasts.
                        let len = packet.len();
                        if let Some(dst) = tx.get_mut(..len) {
                            dst.copy_from_slice(&packet);
                            if let Ok(n) = srtp.outbound.protect_rtp_in_place(&mut tx, len)
                                && let Some(sealed) = tx.get(..n)
                            {
                                let _ = ports.rtp.send_to(sealed, peer).await;
                                stats.a.sent += 1;
                            }
                        }
                        sent_samples = sent_samples.wrapping_add(160);
                        continue;
                    }
                    if gap > 0 {
                        gap -= 1;
                        sent_samples = sent_samples.wrapping_add(160);
                        continue;
                    }
                    let Some(frame) = frame(&media.source, media.law, sent_samples) else {
                        // Nothing to send: the RTP clock goes on (RFC 3550
                        // section 5.1), so that what follows is placed
                        // after the pause.
                        if matches!(media.source, Source::Playout(_)) {
                            sent_samples = sent_samples.wrapping_add(160);
                        }
                        continue;
                    };
                    let header = rtp_header(media.law.payload_type(), seq, sent_samples, media.ssrc);
                    let len = header.len() + frame.len();
                    let (h, rest) = tx.split_at_mut(12);
                    h.copy_from_slice(&header);
                    if let Some(p) = rest.get_mut(..frame.len()) {
                        p.copy_from_slice(&frame);
                    }
                    match srtp.outbound.protect_rtp_in_place(&mut tx, len) {
                        Ok(n) => {
                            if let Some(sealed) = tx.get(..n) {
                                let _ = ports.rtp.send_to(sealed, peer).await;
                            }
                            stats.a.sent += 1;
                        }
                        Err(e) => debug!(error = %e, "media frame not sealed"),
                    }
                    seq = seq.wrapping_add(1);
                    sent_samples = sent_samples.wrapping_add(160);
                }
                r = ports.rtp.recv_from(&mut rx) => {
                    let Ok((len, source)) = r else { continue };
                    match srtp.inbound.unprotect_rtp_in_place(&mut rx, len) {
                        Ok(plain) => {
                            stats.a.received += 1;
                            // Symmetric RTP: answer where authenticated
                            // media comes from.
                            peer = source;
                            if let Some(sink) = &sink
                                && let Some(p) = rx.get(..plain)
                                && sink.try_send(p.to_vec()).is_err()
                            {
                                stats.sink_drops += 1;
                            }
                        }
                        Err(carevox::srtp::Error::AuthenticationFailed { .. }) => {
                            stats.a.auth_failures += 1;
                        }
                        Err(carevox::srtp::Error::Replay { .. }) => stats.a.replays += 1,
                        Err(e) => {
                            stats.a.refused += 1;
                            debug!(error = %e, "media packet refused");
                        }
                    }
                }
                r = ports.rtcp.recv_from(&mut rx_rtcp) => {
                    let Ok((len, _)) = r else { continue };
                    if srtp.inbound.unprotect_rtcp_in_place(&mut rx_rtcp, len).is_err() {
                        stats.a.refused += 1;
                    }
                }
            }
            let _ = stats_tx.send(stats);
        }
        drop(ports);
        let _ = done_tx.send(stats);
    });
    Ok(task)
}

fn rtp_header(pt: u8, seq: u16, ts: u32, ssrc: u32) -> [u8; 12] {
    let [s0, s1] = seq.to_be_bytes();
    let [t0, t1, t2, t3] = ts.to_be_bytes();
    let [c0, c1, c2, c3] = ssrc.to_be_bytes();
    [0x80, pt & 0x7f, s0, s1, t0, t1, t2, t3, c0, c1, c2, c3]
}

/// A sample value already within the `i16` range.
#[allow(
    clippy::cast_possible_truncation,
    reason = "the value is clamped to the i16 range first"
)]
fn to_sample(v: f64) -> i16 {
    v.round().clamp(-32768.0, 32767.0) as i16
}

/// `millis` of a sine tone at `frequency` Hz and `amplitude` (of 32767),
/// μ-law at 8 kHz: the PBX's prompts and beeps.
pub fn beep(frequency: f64, millis: u32, amplitude: f64) -> Vec<u8> {
    (0..millis.saturating_mul(8))
        .map(|n| {
            let t = f64::from(n) / 8000.0;
            G711::Pcmu.encode(to_sample(
                amplitude * (2.0 * std::f64::consts::PI * frequency * t).sin(),
            ))
        })
        .collect()
}

/// `millis` of μ-law silence.
pub fn pause(millis: u32) -> Vec<u8> {
    vec![G711::Pcmu.silence(); usize::try_from(millis.saturating_mul(8)).unwrap_or(0)]
}

/// The frame of `source` starting at sample `at`.
fn frame(source: &Source, law: G711, at: u32) -> Option<Vec<u8>> {
    match source {
        Source::Silent => None,
        Source::Tone(f) => Some(
            (0..160u32)
                .map(|i| {
                    let t = f64::from(at.wrapping_add(i)) / 8000.0;
                    let s = 8000.0 * (2.0 * std::f64::consts::PI * f * t).sin();
                    law.encode(to_sample(s))
                })
                .collect(),
        ),
        Source::Playout(p) => p.next_frame(law.silence()),
        Source::Samples(all) => {
            let start = usize::try_from(at).ok()?;
            let chunk = all.get(start..)?;
            if chunk.is_empty() {
                return None;
            }
            let mut f = chunk.get(..160).unwrap_or(chunk).to_vec();
            f.resize(160, law.silence());
            Some(f)
        }
    }
}
