//! The error type of the crate.

/// Which kind of packet an error or a counter is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// SRTP (media).
    Rtp,
    /// SRTCP (control).
    Rtcp,
}

impl core::fmt::Display for PacketKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Rtp => "SRTP",
            Self::Rtcp => "SRTCP",
        })
    }
}

/// Everything that can go wrong while keying a context or protecting and
/// unprotecting a packet.
///
/// Messages name what was wrong and where (lengths, offsets, SSRCs, packet
/// indices) and never contain key material or payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The packet is shorter than its fixed header (plus, when unprotecting,
    /// the trailer: index, MKI and tag).
    #[error("{kind} packet of {len} bytes is too short: at least {needed} bytes are needed")]
    HeaderTooShort {
        /// RTP or RTCP.
        kind: PacketKind,
        /// Length of the packet.
        len: usize,
        /// Minimum length for this suite and configuration.
        needed: usize,
    },
    /// The version field of the header is not 2.
    #[error("{kind} header has version {version}, expected 2")]
    BadVersion {
        /// RTP or RTCP.
        kind: PacketKind,
        /// The version found in the first two bits.
        version: u8,
    },
    /// The CSRC list runs past the end of the packet.
    #[error("RTP CSRC list of {count} entries ends at byte {end}, past the {len}-byte packet body")]
    CsrcOverrun {
        /// CSRC count from the header.
        count: u8,
        /// Offset where the list would end.
        end: usize,
        /// Length available for header and payload.
        len: usize,
    },
    /// The header extension runs past the end of the packet.
    #[error(
        "RTP header extension at byte {offset} ends at byte {end}, past the {len}-byte packet body"
    )]
    ExtensionOverrun {
        /// Offset of the extension header.
        offset: usize,
        /// Offset where the extension would end.
        end: usize,
        /// Length available for header and payload.
        len: usize,
    },
    /// The padding count is larger than the payload.
    #[error("RTP padding count {padding} exceeds the {payload}-byte payload")]
    PaddingOverrun {
        /// Padding count from the last byte.
        padding: u8,
        /// Payload length, padding included.
        payload: usize,
    },
    /// The authentication tag did not verify: the packet was altered, or was
    /// protected with another key.
    #[error("{kind} authentication failed for SSRC {ssrc:#010x}")]
    AuthenticationFailed {
        /// RTP or RTCP.
        kind: PacketKind,
        /// SSRC from the (unauthenticated) header.
        ssrc: u32,
    },
    /// The packet index was already received (or, on protect, already sent).
    #[error("{kind} packet index {index} of SSRC {ssrc:#010x} is a replay")]
    Replay {
        /// RTP or RTCP.
        kind: PacketKind,
        /// SSRC of the stream.
        ssrc: u32,
        /// Packet index (48-bit for SRTP, 31-bit for SRTCP).
        index: u64,
    },
    /// The packet index is older than the replay window.
    #[error("{kind} packet index {index} of SSRC {ssrc:#010x} is older than the replay window")]
    TooOld {
        /// RTP or RTCP.
        kind: PacketKind,
        /// SSRC of the stream.
        ssrc: u32,
        /// Packet index (48-bit for SRTP, 31-bit for SRTCP).
        index: u64,
    },
    /// No stream exists for this SSRC and the context does not create one:
    /// outbound streams are explicit; inbound ones are refused when the
    /// context accepts only known SSRCs.
    #[error("unknown SSRC {ssrc:#010x} for {kind}")]
    UnknownSsrc {
        /// RTP or RTCP.
        kind: PacketKind,
        /// The SSRC.
        ssrc: u32,
    },
    /// The master key reached its packet limit (2^48 SRTP or 2^31 SRTCP
    /// packets), or the stream's packet index space is used up. Rekey.
    #[error(
        "{kind} key limit reached for master key #{key}: rekey before sending or receiving more"
    )]
    KeyExpired {
        /// RTP or RTCP.
        kind: PacketKind,
        /// Position of the master key in the context (0 = the first added).
        key: usize,
    },
    /// The MKI of the packet names no master key of the context.
    #[error("{kind} packet carries an MKI that names no master key of this context")]
    UnknownMki {
        /// RTP or RTCP.
        kind: PacketKind,
    },
    /// The output buffer cannot hold the result.
    #[error("output buffer of {available} bytes is too small: {needed} bytes are needed")]
    BufferTooSmall {
        /// Bytes the output needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// The context already holds the maximum number of inbound streams.
    #[error("inbound stream limit of {limit} reached; SSRC {ssrc:#010x} refused")]
    TooManyStreams {
        /// The configured limit.
        limit: usize,
        /// The SSRC that would have been added.
        ssrc: u32,
    },
    /// A stream for this SSRC already exists.
    #[error("a stream for SSRC {ssrc:#010x} already exists")]
    DuplicateSsrc {
        /// The SSRC.
        ssrc: u32,
    },
    /// The suite name is not one of the supported suites.
    #[error("unknown or unsupported SRTP suite")]
    UnknownSuite,
    /// Key, salt or keying material has the wrong length for the suite.
    #[error("{what} is {len} bytes, the suite needs {expected}")]
    InvalidKeyLength {
        /// Which input ("master key", "master salt", "SDES key||salt", ...).
        what: &'static str,
        /// Its length.
        len: usize,
        /// The length the suite needs.
        expected: usize,
    },
    /// A master key does not fit the context: other suite, MKI length
    /// different from the others, or an MKI already used.
    #[error("master key does not fit the context: {reason}")]
    KeyMismatch {
        /// What did not fit.
        reason: &'static str,
    },
    /// Setting an outbound stream's ROC or SRTCP index would send packet
    /// indices that were already sent (keystream reuse).
    #[error(
        "{kind} index of SSRC {ssrc:#010x} cannot be set to {requested}: indices below {lowest} were already used"
    )]
    IndexReuse {
        /// SRTP (the ROC) or SRTCP (the SRTCP index).
        kind: PacketKind,
        /// The stream.
        ssrc: u32,
        /// The ROC or SRTCP index asked for.
        requested: u64,
        /// The lowest value that may be set.
        lowest: u64,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What was out of range.
        reason: &'static str,
    },
}
