//! An SRTP relay between the two legs of a call, sans-IO: what a B2BUA
//! puts in the media path so that each leg has its own keys and no leg ever
//! learns the other's (and so that the call can be recorded).
//!
//! Each [`Leg`] holds the [`SrtpSession`] negotiated with its peer: the
//! session's `inbound` context opens what that peer sends, its `outbound`
//! context seals what the relay sends to that peer. A packet goes through
//! two steps, in the caller's own buffer (no copy, no allocation):
//!
//! 1. [`MediaRelay::receive`] authenticates and decrypts an SRTP or SRTCP
//!    packet from one leg's peer in place. Tampered, replayed and foreign
//!    packets are refused with a typed error and never go further. The
//!    plaintext RTP or RTCP is then in the buffer: a recorder reads it
//!    there.
//! 2. [`MediaRelay::forward`] seals that plaintext for the other leg in
//!    place and says where to send it; [`MediaRelay::seal`] does the same
//!    for media the relay makes itself (a prompt, an announcement).
//!
//! The relay sends to the address each peer's SDP gave until an
//! authenticated packet arrives from another one; then it follows the
//! packets (symmetric RTP, RFC 4961, so that a phone behind a NAT is
//! reached). Only a packet that authenticated moves a leg: a forged or
//! replayed packet from anywhere cannot redirect the media.
//!
//! ```
//! use carevox::media::{answer_audio, offer_crypto, offerer_srtp};
//! use carevox::relay::{Channel, Leg, MediaRelay, MediaPeer, RelayConfig};
//! use carevox::sdes::SdesOptions;
//! use carevox::sip::sdp::SessionDescription;
//! use carevox::sip::sdp::crypto::CryptoSuite;
//! use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
//! # #[allow(clippy::disallowed_methods)]
//! let rng = ring::rand::SystemRandom::new();
//! let options = SdesOptions::new();
//! let caps = AudioCapabilities::new(vec![Codec::pcmu()]);
//! let offer_of = |line: &carevox::sip::sdp::crypto::Crypto, port: u16| {
//!     SessionDescription::parse(&format!(
//!         "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
//!          m=audio {port} RTP/SAVP 0\r\na=crypto:{line}\r\n"
//!     ))
//! };
//!
//! // Leg A: the caller offers, the relay answers with its own key.
//! let caller_line = offer_crypto(1, CryptoSuite::AesCm128HmacSha1_80, &rng)?;
//! let to_relay = answer_audio(
//!     &offer_of(&caller_line, 4000)?, &caps, &LocalMedia::new("127.0.0.1", 30000, "1"),
//!     &rng, &options,
//! )?;
//! let mut caller = offerer_srtp(&[caller_line], &to_relay.answer.sdp, &options)?;
//! // Leg B: the relay offers its own key to the callee, who answers.
//! let relay_line = offer_crypto(1, CryptoSuite::AesCm128HmacSha1_80, &rng)?;
//! let callee_answer = answer_audio(
//!     &offer_of(&relay_line, 30002)?, &caps, &LocalMedia::new("127.0.0.1", 5000, "2"),
//!     &rng, &options,
//! )?;
//! let mut callee = callee_answer.srtp.expect("keyed");
//! let toward_callee = offerer_srtp(&[relay_line], &callee_answer.answer.sdp, &options)?;
//!
//! let mut relay = MediaRelay::new(
//!     to_relay.srtp.expect("keyed"),
//!     MediaPeer::new("127.0.0.1:4000".parse()?),
//!     toward_callee,
//!     MediaPeer::new("127.0.0.1:5000".parse()?),
//!     RelayConfig::default(),
//! );
//!
//! // The caller sends a packet; the relay opens it, then seals it for B.
//! caller.outbound.add_outbound_stream(7)?;
//! let rtp = [0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7, 0xd5, 0xd5];
//! let mut buf = [0u8; 1500];
//! buf[..rtp.len()].copy_from_slice(&rtp);
//! let len = caller.outbound.protect_rtp_in_place(&mut buf, rtp.len())?;
//! let plain = relay.receive(Leg::A, Channel::Rtp, "127.0.0.1:4000".parse()?, &mut buf, len)?;
//! assert_eq!(&buf[..plain], &rtp); // what a recorder would read
//! let out = relay.forward(Leg::A, Channel::Rtp, &mut buf, plain)?;
//! assert_eq!(out.to, "127.0.0.1:5000".parse()?);
//! // Only the callee's key opens it.
//! let opened = callee.inbound.unprotect_rtp_in_place(&mut buf, out.len)?;
//! assert_eq!(&buf[..opened], &rtp);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::{IpAddr, SocketAddr};

use carevox_sip::sdp::SessionDescription;
use carevox_srtp::Error as SrtpError;

use crate::media::SrtpSession;

/// One side of a relayed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// The first leg (by convention the caller's).
    A,
    /// The second leg (by convention the callee's).
    B,
}

impl Leg {
    /// The other leg.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }
}

/// RTP (media) or RTCP (control).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// SRTP.
    Rtp,
    /// SRTCP.
    Rtcp,
}

/// Where one leg's peer receives media, from its SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MediaPeer {
    /// RTP.
    pub rtp: SocketAddr,
    /// RTCP: the next port up, or the RTP address with rtcp-mux (RFC 5761).
    pub rtcp: SocketAddr,
}

impl MediaPeer {
    /// RTP at `rtp`, RTCP on the next port (RFC 3550 section 11).
    pub fn new(rtp: SocketAddr) -> MediaPeer {
        let mut rtcp = rtp;
        rtcp.set_port(rtp.port().wrapping_add(1));
        MediaPeer { rtp, rtcp }
    }

    /// RTP and RTCP on one address (rtcp-mux, RFC 5761).
    pub fn muxed(addr: SocketAddr) -> MediaPeer {
        MediaPeer {
            rtp: addr,
            rtcp: addr,
        }
    }

    /// Where the first accepted SDES audio stream (`RTP/SAVP` or
    /// `RTP/SAVPF`) of `sdp` receives media: the stream's own connection
    /// address, else the session's, at the stream's port; RTCP on the same
    /// port with `a=rtcp-mux`, else the next one (RFC 3605's `a=rtcp` is
    /// not read).
    pub fn audio_of(sdp: &SessionDescription) -> Result<MediaPeer, PeerError> {
        let media = sdp
            .media
            .iter()
            .find(|m| m.kind == "audio" && !m.is_rejected() && m.is_sdes_srtp())
            .ok_or(PeerError::NoSdesAudio)?;
        let connection = media
            .connections
            .first()
            .or(sdp.connection.as_ref())
            .ok_or(PeerError::NoConnection)?;
        let ip: IpAddr = connection
            .address
            .expose()
            .parse()
            .map_err(|_| PeerError::NotAnAddress)?;
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(PeerError::NotAnAddress);
        }
        let rtp = SocketAddr::new(ip, media.port);
        Ok(if media.rtcp_mux() {
            MediaPeer::muxed(rtp)
        } else {
            MediaPeer::new(rtp)
        })
    }
}

/// Why an SDP names no address to send media to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// No accepted SDES (`RTP/SAVP`) audio stream.
    #[error("no accepted SDES audio stream")]
    NoSdesAudio,
    /// Neither the stream nor the session has a connection line.
    #[error("no connection address for the audio stream")]
    NoConnection,
    /// The connection address is not a unicast IP address (a host name,
    /// `0.0.0.0`, a multicast group).
    #[error("the audio stream's connection address is not a unicast IP address")]
    NotAnAddress,
}

/// Settings of a [`MediaRelay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayConfig {
    /// Streams (SSRCs) one leg may send through the relay (default 4). A
    /// leg's inbound context has its own cap too.
    pub max_streams: usize,
    /// Whether a leg follows the source of its peer's authenticated packets
    /// (symmetric RTP; default on). Off, media goes only to the SDP's
    /// addresses.
    pub follow_source: bool,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            max_streams: 4,
            follow_source: true,
        }
    }
}

impl RelayConfig {
    /// Sets [`RelayConfig::max_streams`] (at least 1).
    pub fn with_max_streams(mut self, n: usize) -> Self {
        self.max_streams = n.max(1);
        self
    }

    /// Sets [`RelayConfig::follow_source`].
    pub fn with_follow_source(mut self, on: bool) -> Self {
        self.follow_source = on;
        self
    }
}

/// Why a packet was not relayed. Carries no packet content and no key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// SRTP refused it: authentication failed, a replay, a malformed
    /// packet, an unknown stream, a key past its limit.
    #[error("leg {leg:?}: {source}")]
    Srtp {
        /// The leg whose context refused it.
        leg: Leg,
        /// Why.
        source: SrtpError,
    },
    /// A leg sent more streams than [`RelayConfig::max_streams`].
    #[error("leg {leg:?} sends more than {limit} streams")]
    TooManyStreams {
        /// The leg that sent it.
        leg: Leg,
        /// The limit.
        limit: usize,
    },
    /// The packet is too short to carry the SSRC it is relayed by.
    #[error("a {len}-byte {channel:?} packet is too short to relay")]
    Malformed {
        /// RTP or RTCP.
        channel: Channel,
        /// Its length.
        len: usize,
    },
}

/// Where to send a sealed packet, and its length in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// The peer's address for this channel.
    pub to: SocketAddr,
    /// The sealed packet's length.
    pub len: usize,
}

/// Counters of one leg (what its peer sent, what was refused).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LegStats {
    /// Packets from the peer that authenticated.
    pub received: u64,
    /// Packets sealed toward the peer.
    pub sent: u64,
    /// Packets from the peer that failed authentication.
    pub auth_failures: u64,
    /// Packets from the peer refused as replays.
    pub replays: u64,
    /// Packets from the peer refused for another reason.
    pub refused: u64,
    /// Times the peer's address changed to follow its packets.
    pub moves: u64,
}

#[derive(Debug)]
struct LegState {
    srtp: SrtpSession,
    peer: MediaPeer,
    /// SSRCs this leg's peer sent whose streams exist on the other leg's
    /// outbound context.
    streams: Vec<u32>,
    /// SSRCs the relay sends toward this leg on its own.
    own: Vec<u32>,
    stats: LegStats,
}

/// The media relay of one call. See the [module documentation](self).
#[derive(Debug)]
pub struct MediaRelay {
    a: LegState,
    b: LegState,
    config: RelayConfig,
}

fn ssrc_of(channel: Channel, packet: &[u8]) -> Option<u32> {
    let at = match channel {
        Channel::Rtp => 8,
        Channel::Rtcp => 4,
    };
    let b: [u8; 4] = packet.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

impl MediaRelay {
    /// A relay between leg A's peer (keyed by `a`, reached at `a_peer`) and
    /// leg B's.
    pub fn new(
        a: SrtpSession,
        a_peer: MediaPeer,
        b: SrtpSession,
        b_peer: MediaPeer,
        config: RelayConfig,
    ) -> MediaRelay {
        let leg = |srtp, peer| LegState {
            srtp,
            peer,
            streams: Vec::new(),
            own: Vec::new(),
            stats: LegStats::default(),
        };
        MediaRelay {
            a: leg(a, a_peer),
            b: leg(b, b_peer),
            config,
        }
    }

    fn leg(&self, leg: Leg) -> &LegState {
        match leg {
            Leg::A => &self.a,
            Leg::B => &self.b,
        }
    }

    fn leg_mut(&mut self, leg: Leg) -> &mut LegState {
        match leg {
            Leg::A => &mut self.a,
            Leg::B => &mut self.b,
        }
    }

    /// Where `leg`'s peer is sent media now.
    pub fn peer(&self, leg: Leg) -> MediaPeer {
        self.leg(leg).peer
    }

    /// The counters of `leg`.
    pub fn stats(&self, leg: Leg) -> LegStats {
        self.leg(leg).stats
    }

    /// The room a buffer needs past a packet's plaintext for sealing it
    /// toward `leg` (the tag, and for RTCP the SRTCP index).
    pub fn overhead(&self, leg: Leg, channel: Channel) -> usize {
        let ctx = &self.leg(leg).srtp.outbound;
        match channel {
            Channel::Rtp => ctx.rtp_overhead(),
            Channel::Rtcp => ctx.rtcp_overhead(),
        }
    }

    /// Authenticates and decrypts, in place, the packet `buf[..len]` that
    /// `from`'s peer sent from `source`; returns the plaintext's length. A
    /// packet that authenticates from another address than the one in use
    /// moves the leg there (when [`RelayConfig::follow_source`] is on).
    pub fn receive(
        &mut self,
        from: Leg,
        channel: Channel,
        source: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, RelayError> {
        let follow = self.config.follow_source;
        let state = self.leg_mut(from);
        let result = match channel {
            Channel::Rtp => state.srtp.inbound.unprotect_rtp_in_place(buf, len),
            Channel::Rtcp => state.srtp.inbound.unprotect_rtcp_in_place(buf, len),
        };
        match result {
            Ok(plain) => {
                state.stats.received += 1;
                let at = match channel {
                    Channel::Rtp => &mut state.peer.rtp,
                    Channel::Rtcp => &mut state.peer.rtcp,
                };
                if follow && *at != source {
                    *at = source;
                    state.stats.moves += 1;
                }
                Ok(plain)
            }
            Err(e) => {
                match e {
                    SrtpError::AuthenticationFailed { .. } => state.stats.auth_failures += 1,
                    SrtpError::Replay { .. } => state.stats.replays += 1,
                    _ => state.stats.refused += 1,
                }
                Err(RelayError::Srtp {
                    leg: from,
                    source: e,
                })
            }
        }
    }

    /// Seals, in place, the plaintext `buf[..len]` that [`receive`] opened
    /// from `from`'s peer, for the other leg; returns where to send it.
    /// The other leg's outbound stream for the packet's SSRC is made on its
    /// first packet (up to [`RelayConfig::max_streams`]).
    ///
    /// [`receive`]: MediaRelay::receive
    pub fn forward(
        &mut self,
        from: Leg,
        channel: Channel,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Relayed, RelayError> {
        let ssrc = buf
            .get(..len)
            .and_then(|p| ssrc_of(channel, p))
            .ok_or(RelayError::Malformed { channel, len })?;
        let limit = self.config.max_streams;
        let (src, dst) = match from {
            Leg::A => (&mut self.a, &mut self.b),
            Leg::B => (&mut self.b, &mut self.a),
        };
        if !src.streams.contains(&ssrc) {
            if src.streams.len() >= limit {
                return Err(RelayError::TooManyStreams { leg: from, limit });
            }
            // The forwarded stream keeps its rollover counter, so that its
            // packet indexes are the same on both legs.
            let roc = src.srtp.inbound.inbound_roc(ssrc).unwrap_or(0);
            dst.srtp
                .outbound
                .add_outbound_stream_with_roc(ssrc, roc)
                .map_err(|e| RelayError::Srtp {
                    leg: from.other(),
                    source: e,
                })?;
            src.streams.push(ssrc);
        }
        Self::seal_into(dst, from.other(), channel, buf, len)
    }

    /// Seals, in place, media the relay makes itself (a prompt, an
    /// announcement) for `to`'s peer: the plaintext RTP or RTCP packet
    /// `buf[..len]`, whose SSRC must not be one the other leg sends
    /// through the relay. Its stream is made on its first packet.
    pub fn seal(
        &mut self,
        to: Leg,
        channel: Channel,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Relayed, RelayError> {
        let ssrc = buf
            .get(..len)
            .and_then(|p| ssrc_of(channel, p))
            .ok_or(RelayError::Malformed { channel, len })?;
        let limit = self.config.max_streams;
        let relayed = self.leg(to.other()).streams.contains(&ssrc);
        let state = self.leg_mut(to);
        if !state.own.contains(&ssrc) {
            if relayed {
                // One SSRC, two senders: the packet indexes would collide.
                return Err(RelayError::Srtp {
                    leg: to,
                    source: SrtpError::DuplicateSsrc { ssrc },
                });
            }
            if state.own.len() >= limit {
                return Err(RelayError::TooManyStreams { leg: to, limit });
            }
            state
                .srtp
                .outbound
                .add_outbound_stream(ssrc)
                .map_err(|e| RelayError::Srtp { leg: to, source: e })?;
            state.own.push(ssrc);
        }
        Self::seal_into(state, to, channel, buf, len)
    }

    fn seal_into(
        state: &mut LegState,
        to: Leg,
        channel: Channel,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Relayed, RelayError> {
        let sealed = match channel {
            Channel::Rtp => state.srtp.outbound.protect_rtp_in_place(buf, len),
            Channel::Rtcp => state.srtp.outbound.protect_rtcp_in_place(buf, len),
        }
        .map_err(|e| RelayError::Srtp { leg: to, source: e })?;
        state.stats.sent += 1;
        Ok(Relayed {
            to: match channel {
                Channel::Rtp => state.peer.rtp,
                Channel::Rtcp => state.peer.rtcp,
            },
            len: sealed,
        })
    }
}
