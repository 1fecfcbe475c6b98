//! SDP session descriptions (RFC 8866): parsing, typed access and
//! serialization.
//!
//! [`SessionDescription::parse`] reads a description with a strict line
//! grammar: every line is `<type>=<value>`, the types come in the order RFC
//! 8866 section 5 gives, and the fields of each known line and attribute are
//! checked. A violation is an [`SdpError`] naming the 1-based line number and
//! what was wrong, never the offending text (SDP can carry addresses, names
//! and keys). Unknown attributes are kept, in order, as
//! [`Attribute::Other`]; a line type letter that RFC 8866 does not define is
//! refused, as section 5 requires.
//!
//! Serialization (`Display`) writes the typed form back. For well-formed
//! input (single spaces between fields, numbers without leading zeros) the
//! output is byte-identical to the input, including its line ending (CRLF,
//! or bare LF when every input line used it).
//!
//! [`SdpLimits`] bound the size, the number of lines, of media sections and of
//! attributes, so that nothing allocates without bound on hostile input.
//!
//! ```
//! use carevox_sip::sdp::{Attribute, Direction, SessionDescription};
//!
//! let text = "v=0\r\n\
//!             o=- 20518 0 IN IP4 203.0.113.1\r\n\
//!             s= \r\n\
//!             c=IN IP4 203.0.113.1\r\n\
//!             t=0 0\r\n\
//!             m=audio 54400 RTP/AVP 0 101\r\n\
//!             a=rtpmap:101 telephone-event/8000\r\n\
//!             a=sendrecv\r\n";
//! let sdp = SessionDescription::parse(text)?;
//! let audio = &sdp.media[0];
//! assert_eq!(audio.port, 54400);
//! assert_eq!(audio.direction(), Direction::SendRecv);
//! assert!(matches!(&audio.attributes[0], Attribute::Rtpmap(m) if m.encoding == "telephone-event"));
//! assert_eq!(sdp.to_string(), text);
//! # Ok::<(), carevox_sip::sdp::SdpError>(())
//! ```

mod attribute;
pub mod crypto;
pub mod offer_answer;

use std::fmt;

use carevox_redact::{Pii, Secret};
use subtle::ConstantTimeEq;

pub use attribute::{
    Attribute, Direction, Fingerprint, Fmtp, Rtcp, Rtpmap, Setup, is_token, is_token_char,
};
pub use crypto::CryptoError;

/// What went wrong while parsing a session description.
///
/// Line numbers are 1-based. No variant carries text from the description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The description is larger than [`SdpLimits::max_size`].
    #[error("session description of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The description has more lines than [`SdpLimits::max_lines`].
    #[error("session description has more than {max} lines")]
    TooManyLines {
        /// The configured limit.
        max: usize,
    },
    /// The description has more media sections than [`SdpLimits::max_media`].
    #[error("session description has more than {max} media sections")]
    TooManyMedia {
        /// The configured limit.
        max: usize,
    },
    /// A session or media section has more attributes than
    /// [`SdpLimits::max_attributes`].
    #[error("line {line}: more than {max} attributes in one section")]
    TooManyAttributes {
        /// Line number of the attribute over the limit.
        line: usize,
        /// The configured limit.
        max: usize,
    },
    /// The description is empty.
    #[error("empty session description")]
    Empty,
    /// A line is not valid UTF-8.
    #[error("line {line}: not valid UTF-8")]
    NotUtf8 {
        /// Line number.
        line: usize,
    },
    /// A line is empty or not of the form `<type>=<value>`.
    #[error("line {line}: not of the form <type>=<value>")]
    MalformedLine {
        /// Line number.
        line: usize,
    },
    /// A line holds a control character (NUL, a lone CR) that SDP forbids.
    #[error("line {line}: forbidden control character")]
    ForbiddenCharacter {
        /// Line number.
        line: usize,
    },
    /// A line type letter RFC 8866 does not define.
    #[error("line {line}: unknown line type '{kind}'")]
    UnknownLineType {
        /// Line number.
        line: usize,
        /// The type letter.
        kind: char,
    },
    /// A known line type in a place the grammar does not allow: out of order,
    /// repeated where only one is allowed, or before the first `m=`/after it.
    #[error("line {line}: '{kind}=' line not allowed here")]
    UnexpectedLine {
        /// Line number.
        line: usize,
        /// The type letter.
        kind: char,
    },
    /// A mandatory line is missing.
    #[error("missing mandatory '{kind}=' line")]
    MissingLine {
        /// The type letter of the missing line.
        kind: char,
    },
    /// A field of a line does not follow its grammar.
    #[error("line {line}: invalid {field} in '{kind}=' line")]
    InvalidField {
        /// Line number.
        line: usize,
        /// The type letter of the line.
        kind: char,
        /// Which field was wrong.
        field: &'static str,
    },
    /// The protocol version (`v=`) is not 0.
    #[error("line {line}: unsupported SDP version")]
    UnsupportedVersion {
        /// Line number.
        line: usize,
    },
    /// A known attribute whose value does not follow its grammar.
    #[error("line {line}: invalid {field} in a={attribute} attribute")]
    InvalidAttribute {
        /// Line number.
        line: usize,
        /// The attribute name.
        attribute: &'static str,
        /// Which part was wrong.
        field: &'static str,
    },
    /// A description built by hand that does not parse back to itself
    /// (see [`SessionDescription::check`]).
    #[error("description does not parse back to itself")]
    NotRoundTrip,
    /// An `a=crypto` attribute that RFC 4568 refuses.
    #[error("line {line}: invalid a=crypto attribute: {source}")]
    Crypto {
        /// Line number.
        line: usize,
        /// What was wrong with it.
        source: CryptoError,
    },
}

/// Limits applied while parsing, against hostile input.
///
/// The defaults fit any real offer, WebRTC ones included, with room to spare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdpLimits {
    /// Largest accepted description, in bytes. Default 32 KiB.
    pub max_size: usize,
    /// Most lines. Default 1024.
    pub max_lines: usize,
    /// Most media sections (`m=` lines). Default 32.
    pub max_media: usize,
    /// Most attributes in the session section or in one media section.
    /// Default 256.
    pub max_attributes: usize,
}

impl Default for SdpLimits {
    fn default() -> Self {
        SdpLimits {
            max_size: 32 * 1024,
            max_lines: 1024,
            max_media: 32,
            max_attributes: 256,
        }
    }
}

/// The line ending a description is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineEnding {
    /// `\r\n`, as RFC 8866 requires. The default.
    #[default]
    CrLf,
    /// A bare `\n`, which parsers must accept; kept to round-trip such input.
    Lf,
}

impl LineEnding {
    fn as_str(self) -> &'static str {
        match self {
            LineEnding::CrLf => "\r\n",
            LineEnding::Lf => "\n",
        }
    }
}

/// The `o=` line: who created the session, and its identity and version.
/// The user name, session id and address are [`Pii`], so `Debug` redacts
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// User name, `-` when none.
    pub username: Pii<String>,
    /// Session id: decimal digits.
    pub session_id: Pii<String>,
    /// Session version: decimal digits, increased on every change.
    pub session_version: String,
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Unicast address or host name of the creator.
    pub address: Pii<String>,
}

/// A `c=` line: where media is sent. The address is a [`Pii`], so `Debug`
/// redacts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type, `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// The connection address, with any multicast `/ttl` and `/count`
    /// suffixes as written.
    pub address: Pii<String>,
}

impl Connection {
    /// An `IN IP4` or `IN IP6` connection for `address`, the type chosen by
    /// whether the text contains a `:`.
    pub fn internet(address: &str) -> Connection {
        let addr_type = if address.contains(':') { "IP6" } else { "IP4" };
        Connection {
            net_type: "IN".to_owned(),
            addr_type: addr_type.to_owned(),
            address: address.into(),
        }
    }
}

/// A `b=` line: a bandwidth limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// Modifier: `CT`, `AS`, `TIAS`, `RS`, `RR` or another token.
    pub bw_type: String,
    /// Bandwidth, in the unit the modifier defines (kbit/s for `AS`).
    pub bandwidth: u64,
}

/// A time description: a `t=` line and its `r=` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Start time (NTP seconds), 0 for unbounded.
    pub start: u64,
    /// Stop time (NTP seconds), 0 for unbounded.
    pub stop: u64,
    /// `r=` repeat lines, each as written (checked against the grammar).
    pub repeats: Vec<String>,
}

/// The obsolete `k=` line, kept for round trips. Its value may hold a key in
/// the clear, so it is zeroized on drop and redacted in `Debug`.
#[derive(Debug, Clone)]
pub struct ObsoleteKey(Secret<String>);

impl ObsoleteKey {
    /// Wraps a `k=` value.
    pub fn new(value: &str) -> ObsoleteKey {
        ObsoleteKey(Secret::new(value.to_owned()))
    }

    /// The value as written.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// Compared in constant time (for equal lengths).
impl PartialEq for ObsoleteKey {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.expose().as_bytes().ct_eq(other.expose().as_bytes()))
    }
}

impl Eq for ObsoleteKey {}

/// One media section: the `m=` line and the lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Media type: `audio`, `video`, `application`, ...
    pub kind: String,
    /// Transport port; 0 marks a rejected or disabled stream.
    pub port: u16,
    /// Number of ports, when written as `port/count`.
    pub num_ports: Option<u16>,
    /// Transport protocol, such as `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`.
    pub protocol: String,
    /// Media formats: RTP payload type numbers for RTP protocols.
    pub formats: Vec<String>,
    /// `i=` media title.
    pub information: Pii<Option<String>>,
    /// `c=` lines of this section.
    pub connections: Vec<Connection>,
    /// `b=` lines of this section.
    pub bandwidths: Vec<Bandwidth>,
    /// The obsolete `k=` line.
    pub key: Option<ObsoleteKey>,
    /// `a=` lines of this section, in order.
    pub attributes: Vec<Attribute>,
}

impl Media {
    /// A media section with no lines under the `m=` line.
    pub fn new(kind: &str, port: u16, protocol: &str, formats: Vec<String>) -> Media {
        Media {
            kind: kind.to_owned(),
            port,
            num_ports: None,
            protocol: protocol.to_owned(),
            formats,
            information: Pii::new(None),
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }

    /// The direction attribute of this section, `sendrecv` when none.
    /// (Use [`SessionDescription::media_direction`] to honour a
    /// session-level default.)
    pub fn direction(&self) -> Direction {
        self.explicit_direction().unwrap_or(Direction::SendRecv)
    }

    /// The direction attribute of this section, if it has one.
    pub fn explicit_direction(&self) -> Option<Direction> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Direction(d) => Some(*d),
            _ => None,
        })
    }

    /// The `a=rtpmap` attributes of this section.
    pub fn rtpmaps(&self) -> impl Iterator<Item = &Rtpmap> {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::Rtpmap(m) => Some(m),
            _ => None,
        })
    }

    /// The `a=rtpmap` for payload type `pt`, if any.
    pub fn rtpmap(&self, pt: u8) -> Option<&Rtpmap> {
        self.rtpmaps().find(|m| m.payload_type == pt)
    }

    /// The `a=fmtp` parameters for format `format`, if any.
    pub fn fmtp(&self, format: &str) -> Option<&Fmtp> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp(f) if f.format == format => Some(f),
            _ => None,
        })
    }

    /// The `a=crypto` attributes of this section, in order.
    pub fn cryptos(&self) -> impl Iterator<Item = &crypto::Crypto> {
        self.attributes.iter().filter_map(|a| match a {
            Attribute::Crypto(c) => Some(c),
            _ => None,
        })
    }

    /// Whether the section has `a=rtcp-mux`.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes
            .iter()
            .any(|a| matches!(a, Attribute::RtcpMux))
    }

    /// Whether the stream is rejected or disabled (port 0).
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// Whether the protocol is RTP protected by SRTP keyed with SDES
    /// (`RTP/SAVP` or `RTP/SAVPF`).
    pub fn is_sdes_srtp(&self) -> bool {
        matches!(self.protocol.as_str(), "RTP/SAVP" | "RTP/SAVPF")
    }

    /// Whether the protocol is RTP over DTLS-SRTP (`UDP/TLS/RTP/SAVP` or
    /// `UDP/TLS/RTP/SAVPF`).
    pub fn is_dtls_srtp(&self) -> bool {
        matches!(
            self.protocol.as_str(),
            "UDP/TLS/RTP/SAVP" | "UDP/TLS/RTP/SAVPF"
        )
    }

    /// Whether the protocol is plain, unprotected RTP (`RTP/AVP`, `RTP/AVPF`).
    pub fn is_plain_rtp(&self) -> bool {
        matches!(self.protocol.as_str(), "RTP/AVP" | "RTP/AVPF")
    }

    /// The first attribute named `name` (typed or not), by its wire name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name() == name)
    }
}

/// A parsed SDP session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` origin.
    pub origin: Origin,
    /// `s=` session name (`" "` or `-` when there is none to give).
    pub session_name: Pii<String>,
    /// `i=` session information.
    pub information: Pii<Option<String>>,
    /// `u=` URI.
    pub uri: Pii<Option<String>>,
    /// `e=` email addresses.
    pub emails: Pii<Vec<String>>,
    /// `p=` phone numbers.
    pub phones: Pii<Vec<String>>,
    /// Session-level `c=` line.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// Time descriptions (at least one when parsed).
    pub timings: Vec<Timing>,
    /// `z=` time-zone adjustments, as written.
    pub time_zones: Option<String>,
    /// The obsolete session-level `k=` line.
    pub key: Option<ObsoleteKey>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// Media sections, in order.
    pub media: Vec<Media>,
    /// The line ending used when writing.
    pub line_ending: LineEnding,
}

impl SessionDescription {
    /// A description with the given origin, session name `-`, one `t=0 0`
    /// line and nothing else.
    pub fn new(origin: Origin) -> SessionDescription {
        SessionDescription {
            origin,
            session_name: Pii::new("-".to_owned()),
            information: Pii::new(None),
            uri: Pii::new(None),
            emails: Pii::new(Vec::new()),
            phones: Pii::new(Vec::new()),
            connection: None,
            bandwidths: Vec::new(),
            timings: vec![Timing {
                start: 0,
                stop: 0,
                repeats: Vec::new(),
            }],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
            line_ending: LineEnding::CrLf,
        }
    }

    /// Parses a description with the default [`SdpLimits`].
    pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
        Self::parse_with_limits(text.as_bytes(), &SdpLimits::default())
    }

    /// Parses a description from bytes (a SIP body) with the default limits.
    pub fn parse_bytes(bytes: &[u8]) -> Result<SessionDescription, SdpError> {
        Self::parse_with_limits(bytes, &SdpLimits::default())
    }

    /// Parses a description from bytes with the given limits.
    pub fn parse_with_limits(
        bytes: &[u8],
        limits: &SdpLimits,
    ) -> Result<SessionDescription, SdpError> {
        parse::parse(bytes, limits)
    }

    /// Checks that the description, as written by `Display`, parses back
    /// to the same description. Parsed descriptions always pass; run it on
    /// descriptions built or edited by hand before sending them, so that a
    /// field holding a line break or a space where the grammar has none
    /// cannot inject or corrupt lines.
    pub fn check(&self) -> Result<(), SdpError> {
        let text = self.to_string();
        let limits = SdpLimits {
            max_size: usize::MAX,
            max_lines: usize::MAX,
            max_media: usize::MAX,
            max_attributes: usize::MAX,
        };
        let parsed = Self::parse_with_limits(text.as_bytes(), &limits)?;
        if parsed == *self {
            Ok(())
        } else {
            Err(SdpError::NotRoundTrip)
        }
    }

    /// The direction of media section `index`, falling back to the
    /// session-level direction attribute, then to `sendrecv`.
    pub fn media_direction(&self, index: usize) -> Option<Direction> {
        let media = self.media.get(index)?;
        Some(
            media
                .explicit_direction()
                .or_else(|| {
                    self.attributes.iter().find_map(|a| match a {
                        Attribute::Direction(d) => Some(*d),
                        _ => None,
                    })
                })
                .unwrap_or(Direction::SendRecv),
        )
    }

    /// The connection that applies to media section `index`: its own first
    /// `c=` line, else the session-level one.
    pub fn media_connection(&self, index: usize) -> Option<&Connection> {
        let media = self.media.get(index)?;
        media.connections.first().or(self.connection.as_ref())
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nl = self.line_ending.as_str();
        let o = &self.origin;
        write!(f, "v=0{nl}")?;
        write!(
            f,
            "o={} {} {} {} {} {}{nl}",
            o.username.expose(),
            o.session_id.expose(),
            o.session_version,
            o.net_type,
            o.addr_type,
            o.address.expose()
        )?;
        write!(f, "s={}{nl}", self.session_name.expose())?;
        if let Some(i) = self.information.expose() {
            write!(f, "i={i}{nl}")?;
        }
        if let Some(u) = self.uri.expose() {
            write!(f, "u={u}{nl}")?;
        }
        for e in self.emails.expose() {
            write!(f, "e={e}{nl}")?;
        }
        for p in self.phones.expose() {
            write!(f, "p={p}{nl}")?;
        }
        if let Some(c) = &self.connection {
            write_connection(f, c, nl)?;
        }
        for b in &self.bandwidths {
            write!(f, "b={}:{}{nl}", b.bw_type, b.bandwidth)?;
        }
        for t in &self.timings {
            write!(f, "t={} {}{nl}", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}{nl}")?;
            }
        }
        if let Some(z) = &self.time_zones {
            write!(f, "z={z}{nl}")?;
        }
        if let Some(k) = &self.key {
            write!(f, "k={}{nl}", k.expose())?;
        }
        for a in &self.attributes {
            write!(f, "a={a}{nl}")?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.kind, m.port)?;
            if let Some(n) = m.num_ports {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.protocol)?;
            for fmt in &m.formats {
                write!(f, " {fmt}")?;
            }
            f.write_str(nl)?;
            if let Some(i) = m.information.expose() {
                write!(f, "i={i}{nl}")?;
            }
            for c in &m.connections {
                write_connection(f, c, nl)?;
            }
            for b in &m.bandwidths {
                write!(f, "b={}:{}{nl}", b.bw_type, b.bandwidth)?;
            }
            if let Some(k) = &m.key {
                write!(f, "k={}{nl}", k.expose())?;
            }
            for a in &m.attributes {
                write!(f, "a={a}{nl}")?;
            }
        }
        Ok(())
    }
}

fn write_connection(f: &mut fmt::Formatter<'_>, c: &Connection, nl: &str) -> fmt::Result {
    write!(
        f,
        "c={} {} {}{nl}",
        c.net_type,
        c.addr_type,
        c.address.expose()
    )
}

mod parse;
