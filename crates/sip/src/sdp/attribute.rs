//! Typed `a=` attributes.

use std::fmt;

use carevox_redact::Pii;

use super::SdpError;
use super::crypto::Crypto;
use super::parse::digits_u64;

/// Whether `c` may appear in an SDP/SIP `token`.
pub fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'{'
                | b'|'
                | b'}'
                | b'~'
        )
}

/// Whether `s` is a non-empty `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// One `a=` line.
///
/// The attributes carevox understands are typed; every other one is kept as
/// [`Attribute::Other`] with its name and value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attribute {
    /// `a=rtpmap:<payload type> <encoding>/<clock rate>[/<channels>]`.
    Rtpmap(Rtpmap),
    /// `a=fmtp:<format> <parameters>`.
    Fmtp(Fmtp),
    /// `a=ptime:<milliseconds>`.
    Ptime(u32),
    /// `a=maxptime:<milliseconds>`.
    MaxPtime(u32),
    /// `a=sendrecv`, `a=sendonly`, `a=recvonly` or `a=inactive`.
    Direction(Direction),
    /// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
    Rtcp(Rtcp),
    /// `a=rtcp-mux` (RFC 5761).
    RtcpMux,
    /// `a=crypto` (RFC 4568): SDES keys for SRTP.
    Crypto(Crypto),
    /// `a=fingerprint` (RFC 8122): the DTLS certificate fingerprint.
    Fingerprint(Fingerprint),
    /// `a=setup` (RFC 4145): DTLS/TCP role.
    Setup(Setup),
    /// `a=mid:<identification tag>` (RFC 5888).
    Mid(String),
    /// Any other attribute, as written. The value may be anything (an
    /// `ice-pwd` password, a label naming a patient): `Debug` redacts it.
    Other {
        /// The attribute name.
        name: String,
        /// The value after the `:`, if there is one.
        value: Pii<Option<String>>,
    },
}

impl Attribute {
    /// The attribute name as written on the wire (`rtpmap`, `sendonly`, ...).
    pub fn name(&self) -> &str {
        match self {
            Attribute::Rtpmap(_) => "rtpmap",
            Attribute::Fmtp(_) => "fmtp",
            Attribute::Ptime(_) => "ptime",
            Attribute::MaxPtime(_) => "maxptime",
            Attribute::Direction(d) => d.as_str(),
            Attribute::Rtcp(_) => "rtcp",
            Attribute::RtcpMux => "rtcp-mux",
            Attribute::Crypto(_) => "crypto",
            Attribute::Fingerprint(_) => "fingerprint",
            Attribute::Setup(_) => "setup",
            Attribute::Mid(_) => "mid",
            Attribute::Other { name, .. } => name,
        }
    }
}

/// Writes the attribute as it follows `a=`.
impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::Rtpmap(m) => write!(f, "rtpmap:{m}"),
            Attribute::Fmtp(m) => write!(f, "fmtp:{} {}", m.format, m.params),
            Attribute::Ptime(p) => write!(f, "ptime:{p}"),
            Attribute::MaxPtime(p) => write!(f, "maxptime:{p}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::Rtcp(r) => {
                write!(f, "rtcp:{}", r.port)?;
                if let Some(c) = &r.connection {
                    write!(f, " {} {} {}", c.net_type, c.addr_type, c.address.expose())?;
                }
                Ok(())
            }
            Attribute::RtcpMux => f.write_str("rtcp-mux"),
            Attribute::Crypto(c) => write!(f, "crypto:{c}"),
            Attribute::Fingerprint(fp) => write!(f, "fingerprint:{fp}"),
            Attribute::Setup(s) => write!(f, "setup:{}", s.as_str()),
            Attribute::Mid(m) => write!(f, "mid:{m}"),
            Attribute::Other { name, value } => match value.expose() {
                Some(v) => write!(f, "{name}:{v}"),
                None => f.write_str(name),
            },
        }
    }
}

/// An `a=rtpmap` attribute: what an RTP payload type number means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    /// Payload type, 0 to 127.
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`, ...).
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Encoding parameters: the channel count for audio.
    pub channels: Option<u32>,
}

impl Rtpmap {
    /// The channel count: the encoding parameter, 1 when absent.
    pub fn channel_count(&self) -> u32 {
        self.channels.unwrap_or(1)
    }
}

impl fmt::Display for Rtpmap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}/{}",
            self.payload_type, self.encoding, self.clock_rate
        )?;
        if let Some(c) = self.channels {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

/// An `a=fmtp` attribute: format-specific parameters, kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// The format (payload type) the parameters apply to.
    pub format: String,
    /// The parameters, as written after the first space.
    pub params: String,
}

/// Media direction (RFC 3264 section 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Send and receive.
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither send nor receive.
    Inactive,
}

impl Direction {
    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Whether this side sends.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction with the given send and receive capabilities.
    pub fn from_flags(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Parses an attribute name (`sendrecv`, ...).
    pub fn parse(name: &str) -> Option<Direction> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }
}

/// An `a=rtcp` attribute: the RTCP port (and address) when not RTP port + 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    /// RTCP port.
    pub port: u16,
    /// Optional network type, address type and address.
    pub connection: Option<super::Connection>,
}

/// An `a=fingerprint` attribute (RFC 8122): a hash of the DTLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash function name as written (`sha-256`, `SHA-256`, ...).
    pub hash_function: String,
    /// The fingerprint bytes.
    pub bytes: Vec<u8>,
    /// Whether the hex digits are written in upper case (RFC 8122) rather
    /// than lower case.
    pub uppercase: bool,
}

impl Fingerprint {
    /// A fingerprint written with upper-case hex, as RFC 8122 specifies.
    pub fn new(hash_function: &str, bytes: Vec<u8>) -> Fingerprint {
        Fingerprint {
            hash_function: hash_function.to_owned(),
            bytes,
            uppercase: true,
        }
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hash_function)?;
        for (i, b) in self.bytes.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ":" })?;
            let hex = if self.uppercase {
                &data_encoding::HEXUPPER
            } else {
                &data_encoding::HEXLOWER
            };
            f.write_str(&hex.encode(&[*b]))?;
        }
        Ok(())
    }
}

/// An `a=setup` attribute (RFC 4145): which side opens the DTLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    /// This side connects.
    Active,
    /// This side accepts.
    Passive,
    /// Either (only in offers).
    ActPass,
    /// No connection for now.
    HoldConn,
}

impl Setup {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }

    /// Parses an attribute value.
    pub fn parse(value: &str) -> Option<Setup> {
        Some(match value {
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            "actpass" => Setup::ActPass,
            "holdconn" => Setup::HoldConn,
            _ => return None,
        })
    }
}

fn parse_fingerprint(value: &str) -> Option<Fingerprint> {
    let (hash, hex) = value.split_once(' ')?;
    if !is_token(hash) || hex.is_empty() {
        return None;
    }
    let has_lower = hex.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = hex.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        return None;
    }
    let mut bytes = Vec::with_capacity(hex.len() / 3 + 1);
    for pair in hex.split(':') {
        bytes.push(crate::parse::hex_byte(pair.as_bytes())?);
    }
    Some(Fingerprint {
        hash_function: hash.to_owned(),
        bytes,
        uppercase: !has_lower,
    })
}

fn parse_rtpmap(value: &str) -> Result<Rtpmap, &'static str> {
    let (pt, rest) = value.split_once(' ').ok_or("syntax")?;
    let payload_type = digits_u64(pt)
        .and_then(|p| u8::try_from(p).ok())
        .filter(|&p| p <= 127)
        .ok_or("payload type")?;
    let mut parts = rest.split('/');
    let encoding = parts
        .next()
        .filter(|s| is_token(s))
        .ok_or("encoding name")?;
    let clock_rate = parts
        .next()
        .and_then(digits_u64)
        .and_then(|c| u32::try_from(c).ok())
        .filter(|&c| c > 0)
        .ok_or("clock rate")?;
    let channels = match parts.next() {
        Some(c) => Some(
            digits_u64(c)
                .and_then(|c| u32::try_from(c).ok())
                .filter(|&c| c > 0)
                .ok_or("encoding parameters")?,
        ),
        None => None,
    };
    if parts.next().is_some() {
        return Err("syntax");
    }
    Ok(Rtpmap {
        payload_type,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
    })
}

fn parse_rtcp(line: usize, value: &str) -> Result<Rtcp, &'static str> {
    let (port, rest) = match value.split_once(' ') {
        Some((p, r)) => (p, Some(r)),
        None => (value, None),
    };
    let port = digits_u64(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or("port")?;
    let connection = match rest {
        Some(r) => Some(super::parse::parse_connection(line, r).map_err(|_| "address")?),
        None => None,
    };
    Ok(Rtcp { port, connection })
}

fn millis(value: &str) -> Result<u32, &'static str> {
    digits_u64(value)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or("milliseconds")
}

/// Parses the text after `a=`.
pub(super) fn parse_attribute(line: usize, text: &str) -> Result<Attribute, SdpError> {
    let (name, value) = match text.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (text, None),
    };
    if !is_token(name) || value.is_some_and(str::is_empty) {
        return Err(SdpError::InvalidField {
            line,
            kind: 'a',
            field: "attribute syntax",
        });
    }
    let invalid = |attribute: &'static str, field: &'static str| SdpError::InvalidAttribute {
        line,
        attribute,
        field,
    };
    let with_value = |attribute: &'static str| value.ok_or(invalid(attribute, "missing value"));
    let flag = |attribute: &'static str, a: Attribute| match value {
        None => Ok(a),
        Some(_) => Err(invalid(attribute, "unexpected value")),
    };
    Ok(match name {
        "rtpmap" => Attribute::Rtpmap(
            parse_rtpmap(with_value("rtpmap")?).map_err(|f| invalid("rtpmap", f))?,
        ),
        "fmtp" => {
            let v = with_value("fmtp")?;
            let (format, params) = v.split_once(' ').ok_or(invalid("fmtp", "syntax"))?;
            if !is_token(format) || params.is_empty() {
                return Err(invalid("fmtp", "format"));
            }
            Attribute::Fmtp(Fmtp {
                format: format.to_owned(),
                params: params.to_owned(),
            })
        }
        "ptime" => Attribute::Ptime(millis(with_value("ptime")?).map_err(|f| invalid("ptime", f))?),
        "maxptime" => Attribute::MaxPtime(
            millis(with_value("maxptime")?).map_err(|f| invalid("maxptime", f))?,
        ),
        "sendrecv" => flag("sendrecv", Attribute::Direction(Direction::SendRecv))?,
        "sendonly" => flag("sendonly", Attribute::Direction(Direction::SendOnly))?,
        "recvonly" => flag("recvonly", Attribute::Direction(Direction::RecvOnly))?,
        "inactive" => flag("inactive", Attribute::Direction(Direction::Inactive))?,
        "rtcp" => {
            Attribute::Rtcp(parse_rtcp(line, with_value("rtcp")?).map_err(|f| invalid("rtcp", f))?)
        }
        "rtcp-mux" => flag("rtcp-mux", Attribute::RtcpMux)?,
        "crypto" => Attribute::Crypto(
            Crypto::parse(with_value("crypto")?)
                .map_err(|source| SdpError::Crypto { line, source })?,
        ),
        "fingerprint" => Attribute::Fingerprint(
            parse_fingerprint(with_value("fingerprint")?)
                .ok_or(invalid("fingerprint", "hash function or hex bytes"))?,
        ),
        "setup" => {
            Attribute::Setup(Setup::parse(with_value("setup")?).ok_or(invalid("setup", "role"))?)
        }
        "mid" => {
            let v = with_value("mid")?;
            if !is_token(v) {
                return Err(invalid("mid", "identification tag"));
            }
            Attribute::Mid(v.to_owned())
        }
        _ => Attribute::Other {
            name: name.to_owned(),
            value: Pii::new(value.map(str::to_owned)),
        },
    })
}
