//! The line parser behind [`SessionDescription::parse_with_limits`].

use carevox_redact::Pii;

use super::attribute::{is_token, parse_attribute};
use super::{
    Bandwidth, Connection, LineEnding, Media, ObsoleteKey, Origin, SdpError, SdpLimits,
    SessionDescription, Timing,
};

/// Where the parser is in the session-level line order of RFC 8866 section 5.
/// Each session-level line type has a rank; a line may not follow one of a
/// higher rank, and the single-occurrence ones may not repeat.
fn session_rank(kind: u8) -> Option<u8> {
    Some(match kind {
        b'v' => 0,
        b'o' => 1,
        b's' => 2,
        b'i' => 3,
        b'u' => 4,
        b'e' => 5,
        b'p' => 6,
        b'c' => 7,
        b'b' => 8,
        b't' | b'r' => 9,
        b'z' => 10,
        b'k' => 11,
        b'a' => 12,
        b'm' => 13,
        _ => return None,
    })
}

fn media_rank(kind: u8) -> Option<u8> {
    Some(match kind {
        b'i' => 0,
        b'c' => 1,
        b'b' => 2,
        b'k' => 3,
        b'a' => 4,
        _ => return None,
    })
}

/// Line types defined by RFC 8866 (anything else is refused).
fn is_known_type(kind: u8) -> bool {
    matches!(
        kind,
        b'v' | b'o'
            | b's'
            | b'i'
            | b'u'
            | b'e'
            | b'p'
            | b'c'
            | b'b'
            | b't'
            | b'r'
            | b'z'
            | b'k'
            | b'a'
            | b'm'
    )
}

/// Splits `bytes` into lines, each without its ending; reports whether every
/// line ended with a bare LF.
fn split_lines(bytes: &[u8]) -> impl Iterator<Item = (&[u8], bool)> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (line, lf_only) = match rest.iter().position(|&b| b == b'\n') {
            Some(pos) => {
                let (line, after) = rest.split_at(pos);
                rest = after.get(1..).unwrap_or_default();
                match line.strip_suffix(b"\r") {
                    Some(l) => (l, false),
                    None => (line, true),
                }
            }
            None => {
                let line = rest;
                rest = &[];
                (line, false)
            }
        };
        Some((line, lf_only))
    })
}

pub(super) fn parse(bytes: &[u8], limits: &SdpLimits) -> Result<SessionDescription, SdpError> {
    if bytes.len() > limits.max_size {
        return Err(SdpError::TooLarge {
            size: bytes.len(),
            max: limits.max_size,
        });
    }
    if bytes.is_empty() {
        return Err(SdpError::Empty);
    }
    let mut p = Parser::default();
    let mut all_lf = true;
    for (index, (raw, lf_only)) in split_lines(bytes).enumerate() {
        let line = index + 1;
        if line > limits.max_lines {
            return Err(SdpError::TooManyLines {
                max: limits.max_lines,
            });
        }
        all_lf &= lf_only;
        if raw.contains(&0) || raw.contains(&b'\r') {
            return Err(SdpError::ForbiddenCharacter { line });
        }
        let text = std::str::from_utf8(raw).map_err(|_| SdpError::NotUtf8 { line })?;
        let (kind, value) = match text.as_bytes() {
            [kind, b'=', ..] if kind.is_ascii_lowercase() => (*kind, text.get(2..).unwrap_or("")),
            _ => return Err(SdpError::MalformedLine { line }),
        };
        if !is_known_type(kind) {
            return Err(SdpError::UnknownLineType {
                line,
                kind: char::from(kind),
            });
        }
        p.line(line, kind, value, limits)?;
    }
    let mut sdp = p.finish()?;
    sdp.line_ending = if all_lf {
        LineEnding::Lf
    } else {
        LineEnding::CrLf
    };
    Ok(sdp)
}

#[derive(Default)]
struct Parser {
    /// Rank of the last session-level line, `None` before `v=`.
    rank: Option<u8>,
    origin: Option<Origin>,
    session_name: Option<String>,
    information: Option<String>,
    uri: Option<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    connection: Option<Connection>,
    bandwidths: Vec<Bandwidth>,
    timings: Vec<Timing>,
    time_zones: Option<String>,
    key: Option<ObsoleteKey>,
    attributes: Vec<super::Attribute>,
    media: Vec<Media>,
    /// Rank of the last line in the current media section.
    media_rank: Option<u8>,
}

impl Parser {
    fn line(
        &mut self,
        line: usize,
        kind: u8,
        value: &str,
        limits: &SdpLimits,
    ) -> Result<(), SdpError> {
        let unexpected = SdpError::UnexpectedLine {
            line,
            kind: char::from(kind),
        };
        if kind == b'm' {
            if self.rank.is_none_or(|r| r < 9) || self.timings.is_empty() {
                return Err(unexpected);
            }
            if self.media.len() >= limits.max_media {
                return Err(SdpError::TooManyMedia {
                    max: limits.max_media,
                });
            }
            self.rank = Some(13);
            self.media_rank = None;
            self.media.push(parse_media_line(line, value)?);
            return Ok(());
        }
        if let Some(media) = self.media.last_mut() {
            let rank = media_rank(kind).ok_or(unexpected.clone())?;
            if self.media_rank.is_some_and(|r| r > rank) {
                return Err(unexpected);
            }
            let repeat = self.media_rank == Some(rank);
            self.media_rank = Some(rank);
            match kind {
                b'i' if !repeat => {
                    media.information = Pii::new(Some(text(line, kind, value)?));
                }
                b'c' => media.connections.push(parse_connection(line, value)?),
                b'b' => media.bandwidths.push(parse_bandwidth(line, value)?),
                b'k' if !repeat => media.key = Some(ObsoleteKey::new(&text(line, kind, value)?)),
                b'a' => {
                    if media.attributes.len() >= limits.max_attributes {
                        return Err(SdpError::TooManyAttributes {
                            line,
                            max: limits.max_attributes,
                        });
                    }
                    media.attributes.push(parse_attribute(line, value)?);
                }
                _ => return Err(unexpected),
            }
            return Ok(());
        }
        let rank = session_rank(kind).ok_or(unexpected.clone())?;
        let expected_first = self.rank.is_none();
        if expected_first != (kind == b'v') {
            return Err(unexpected);
        }
        if self.rank.is_some_and(|r| r > rank) {
            return Err(unexpected);
        }
        let repeat = self.rank == Some(rank);
        // `r=` only directly under a `t=` or another `r=`.
        if kind == b'r' && !repeat {
            return Err(unexpected);
        }
        // The mandatory lines v, o, s come in that order, without gaps.
        if rank > 2 && self.session_name.is_none() {
            return Err(unexpected);
        }
        if (rank == 1 && self.rank != Some(0)) || (rank == 2 && self.rank != Some(1)) {
            return Err(unexpected);
        }
        self.rank = Some(rank);
        match kind {
            b'v' => {
                if value != "0" {
                    return Err(SdpError::UnsupportedVersion { line });
                }
            }
            b'o' if !repeat => self.origin = Some(parse_origin(line, value)?),
            b's' if !repeat => self.session_name = Some(text(line, kind, value)?),
            b'i' if !repeat => self.information = Some(text(line, kind, value)?),
            b'u' if !repeat => self.uri = Some(text(line, kind, value)?),
            b'e' => self.emails.push(text(line, kind, value)?),
            b'p' => self.phones.push(text(line, kind, value)?),
            b'c' if !repeat => self.connection = Some(parse_connection(line, value)?),
            b'b' => self.bandwidths.push(parse_bandwidth(line, value)?),
            b't' => self.timings.push(parse_timing(line, value)?),
            b'r' => {
                let repeat = parse_repeat(line, value)?;
                match self.timings.last_mut() {
                    Some(t) => t.repeats.push(repeat),
                    None => return Err(unexpected),
                }
            }
            b'z' if !repeat => self.time_zones = Some(parse_zones(line, value)?),
            b'k' if !repeat => self.key = Some(ObsoleteKey::new(&text(line, kind, value)?)),
            b'a' => {
                if self.attributes.len() >= limits.max_attributes {
                    return Err(SdpError::TooManyAttributes {
                        line,
                        max: limits.max_attributes,
                    });
                }
                self.attributes.push(parse_attribute(line, value)?);
            }
            _ => return Err(unexpected),
        }
        Ok(())
    }

    fn finish(self) -> Result<SessionDescription, SdpError> {
        if self.rank.is_none() {
            return Err(SdpError::MissingLine { kind: 'v' });
        }
        let origin = self.origin.ok_or(SdpError::MissingLine { kind: 'o' })?;
        let session_name = self
            .session_name
            .ok_or(SdpError::MissingLine { kind: 's' })?;
        if self.timings.is_empty() {
            return Err(SdpError::MissingLine { kind: 't' });
        }
        Ok(SessionDescription {
            origin,
            session_name: Pii::new(session_name),
            information: Pii::new(self.information),
            uri: Pii::new(self.uri),
            emails: Pii::new(self.emails),
            phones: Pii::new(self.phones),
            connection: self.connection,
            bandwidths: self.bandwidths,
            timings: self.timings,
            time_zones: self.time_zones,
            key: self.key,
            attributes: self.attributes,
            media: self.media,
            line_ending: LineEnding::CrLf,
        })
    }
}

/// A `text` field: any non-empty run of characters (control characters were
/// refused earlier).
fn text(line: usize, kind: u8, value: &str) -> Result<String, SdpError> {
    if value.is_empty() {
        return Err(SdpError::InvalidField {
            line,
            kind: char::from(kind),
            field: "empty value",
        });
    }
    Ok(value.to_owned())
}

/// Splits `value` at single spaces; empty fields (double spaces, leading or
/// trailing space) are an error.
fn fields(
    line: usize,
    kind: u8,
    value: &str,
) -> Result<impl Iterator<Item = &str> + Clone, SdpError> {
    if value.is_empty() || value.split(' ').any(str::is_empty) {
        return Err(SdpError::InvalidField {
            line,
            kind: char::from(kind),
            field: "field separation (single spaces)",
        });
    }
    Ok(value.split(' '))
}

/// Decimal digits, parsed into a `u64`.
pub(super) fn digits_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A non-whitespace string of visible characters.
fn is_non_ws(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// The `<nettype> <addrtype> <address>` fields that end both `o=` and `c=`
/// lines; nothing may follow them.
fn net_address<'a>(
    mut f: impl Iterator<Item = &'a str>,
    bad: impl Fn(&'static str) -> SdpError,
) -> Result<(String, String, Pii<String>), SdpError> {
    let net_type = f
        .next()
        .filter(|s| is_token(s))
        .ok_or_else(|| bad("network type"))?;
    let addr_type = f
        .next()
        .filter(|s| is_token(s))
        .ok_or_else(|| bad("address type"))?;
    let address = f
        .next()
        .filter(|s| is_non_ws(s))
        .ok_or_else(|| bad("address"))?;
    if f.next().is_some() {
        return Err(bad("field count"));
    }
    Ok((
        net_type.to_owned(),
        addr_type.to_owned(),
        Pii::from(address),
    ))
}

fn parse_origin(line: usize, value: &str) -> Result<Origin, SdpError> {
    let bad = |field| SdpError::InvalidField {
        line,
        kind: 'o',
        field,
    };
    let mut f = fields(line, b'o', value)?;
    let username = f.next().filter(|s| is_non_ws(s)).ok_or(bad("username"))?;
    let session_id = f
        .next()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(bad("session id"))?;
    let session_version = f
        .next()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(bad("session version"))?;
    let (net_type, addr_type, address) = net_address(f, bad)?;
    Ok(Origin {
        username: username.into(),
        session_id: session_id.into(),
        session_version: session_version.to_owned(),
        net_type,
        addr_type,
        address,
    })
}

pub(super) fn parse_connection(line: usize, value: &str) -> Result<Connection, SdpError> {
    let bad = |field| SdpError::InvalidField {
        line,
        kind: 'c',
        field,
    };
    let (net_type, addr_type, address) = net_address(fields(line, b'c', value)?, bad)?;
    Ok(Connection {
        net_type,
        addr_type,
        address,
    })
}

fn parse_bandwidth(line: usize, value: &str) -> Result<Bandwidth, SdpError> {
    let bad = |field| SdpError::InvalidField {
        line,
        kind: 'b',
        field,
    };
    let (bw_type, bw) = value.split_once(':').ok_or(bad("bandwidth syntax"))?;
    if !is_token(bw_type) {
        return Err(bad("bandwidth type"));
    }
    let bandwidth = digits_u64(bw).ok_or(bad("bandwidth value"))?;
    Ok(Bandwidth {
        bw_type: bw_type.to_owned(),
        bandwidth,
    })
}

fn parse_timing(line: usize, value: &str) -> Result<Timing, SdpError> {
    let bad = |field| SdpError::InvalidField {
        line,
        kind: 't',
        field,
    };
    let mut f = fields(line, b't', value)?;
    let start = f.next().and_then(digits_u64).ok_or(bad("start time"))?;
    let stop = f.next().and_then(digits_u64).ok_or(bad("stop time"))?;
    if f.next().is_some() {
        return Err(bad("field count"));
    }
    Ok(Timing {
        start,
        stop,
        repeats: Vec::new(),
    })
}

/// `typed-time = 1*DIGIT [fixed-len-time-unit]` with units d, h, m, s.
fn is_typed_time(s: &str) -> bool {
    let digits = s.strip_suffix(['d', 'h', 'm', 's']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn parse_repeat(line: usize, value: &str) -> Result<String, SdpError> {
    let f = fields(line, b'r', value)?;
    if f.clone().count() < 3 || !f.clone().all(is_typed_time) {
        return Err(SdpError::InvalidField {
            line,
            kind: 'r',
            field: "repeat times",
        });
    }
    Ok(value.to_owned())
}

fn parse_zones(line: usize, value: &str) -> Result<String, SdpError> {
    let f = fields(line, b'z', value)?;
    let parts: Vec<&str> = f.collect();
    let ok = !parts.is_empty()
        && parts.len().is_multiple_of(2)
        && parts.chunks(2).all(|pair| match pair {
            [time, offset] => {
                digits_u64(time).is_some()
                    && is_typed_time(offset.strip_prefix('-').unwrap_or(offset))
            }
            _ => false,
        });
    if !ok {
        return Err(SdpError::InvalidField {
            line,
            kind: 'z',
            field: "time zone adjustments",
        });
    }
    Ok(value.to_owned())
}

fn parse_media_line(line: usize, value: &str) -> Result<Media, SdpError> {
    let bad = |field| SdpError::InvalidField {
        line,
        kind: 'm',
        field,
    };
    let mut f = fields(line, b'm', value)?;
    let kind = f.next().filter(|s| is_token(s)).ok_or(bad("media type"))?;
    let port_field = f.next().ok_or(bad("port"))?;
    let (port, num_ports) = match port_field.split_once('/') {
        Some((p, n)) => (p, Some(n)),
        None => (port_field, None),
    };
    let port = digits_u64(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(bad("port"))?;
    let num_ports = match num_ports {
        Some(n) => Some(
            digits_u64(n)
                .and_then(|n| u16::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or(bad("number of ports"))?,
        ),
        None => None,
    };
    let protocol = f
        .next()
        .filter(|s| s.split('/').all(is_token))
        .ok_or(bad("protocol"))?;
    let formats: Vec<String> = f
        .map(|s| {
            if is_token(s) {
                Ok(s.to_owned())
            } else {
                Err(bad("format"))
            }
        })
        .collect::<Result<_, _>>()?;
    if formats.is_empty() {
        return Err(bad("format list"));
    }
    let mut media = Media::new(kind, port, protocol, formats);
    media.num_ports = num_ports;
    Ok(media)
}
