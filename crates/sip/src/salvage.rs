//! Answering a request that failed to parse.
//!
//! A request the parser refuses (a bad Content-Length, a header line
//! without a colon, bytes that are not UTF-8, a message over a limit) still
//! deserves its 400 (or 413, 414, 513) when the server can tell where to
//! send it: RFC 3261 section 8.2.6.2 builds a response from the request's
//! Via, From, To, Call-ID and CSeq. [`PartialRequest::salvage`] reads just
//! those, with the start line, from the raw bytes; [`ParseError::response_to`]
//! builds the response, its reason phrase naming the problem (as section
//! 21.4.1 suggests) from the error's own text, which never echoes the
//! message.
//!
//! ```
//! use carevox_sip::{Limits, Message, PartialRequest};
//!
//! let raw = b"INVITE sip:bob@biloxi.example SIP/2.0\r\n\
//! Via: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1\r\n\
//! From: <sip:alice@atlanta.example>;tag=1\r\n\
//! To: <sip:bob@biloxi.example>\r\n\
//! Call-ID: c1@192.0.2.7\r\n\
//! CSeq: 1 INVITE\r\n\
//! Content-Length: nine\r\n\r\n";
//! let err = Message::parse(bytes::Bytes::from_static(raw)).unwrap_err();
//! let partial = PartialRequest::salvage(raw, &Limits::default()).expect("answerable");
//! let response = err.response_to(&partial, "t1")?.build()?;
//! assert_eq!(response.status(), Some(400));
//! assert_eq!(response.call_id()?, "c1@192.0.2.7");
//! assert_eq!(response.to()?.tag(), Some("t1"));
//! # Ok::<(), carevox_sip::ParseError>(())
//! ```

use carevox_redact::Pii;

use crate::builder::{MessageBuilder, unfold};
use crate::error::ParseError;
use crate::header::{CSeq, Method, NameAddr, Via};
use crate::limits::Limits;
use crate::message::is_version;
use crate::name::HeaderName;
use crate::parse::{ListItems, is_lws, is_token};

/// The parts of a request that a response copies, read from bytes that did
/// not parse as a whole message. `Debug` redacts the header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialRequest {
    method: String,
    vias: Vec<Pii<String>>,
    from: Pii<String>,
    to: Pii<String>,
    call_id: Pii<String>,
    cseq: String,
}

/// One header line, unfolded, as text; `None` when it is not UTF-8 or holds
/// a control character.
fn line_text(line: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(line).ok()?;
    if s.bytes()
        .any(|b| (b.is_ascii_control() && !is_lws(b)) || b == 0x7f)
    {
        return None;
    }
    Some(unfold(s).into_owned())
}

impl PartialRequest {
    /// Reads the start line and the Via, From, To, Call-ID and CSeq header
    /// fields of a request from `input`, looking no further than
    /// `limits.max_message_size` bytes.
    ///
    /// Returns `None` when no response can be built: a response rather
    /// than a request, an ACK (never answered), a start line that is not
    /// `method SP Request-URI SP SIP/x.y`, or a missing, repeated or
    /// malformed transaction header field. Other header lines may be
    /// broken: they are skipped.
    pub fn salvage(input: &[u8], limits: &Limits) -> Option<PartialRequest> {
        let mut buf = input.get(..input.len().min(limits.max_message_size))?;
        while let Some(rest) = buf
            .strip_prefix(b"\r\n")
            .or_else(|| buf.strip_prefix(b"\n"))
        {
            buf = rest;
        }
        let mut lines = Lines { buf };
        let start = lines.next()?;
        let mut words = start.split(|b| *b == b' ');
        let method = std::str::from_utf8(words.next()?).ok()?;
        let uri = words.next()?;
        let version = words.next()?;
        if words.next().is_some()
            || method.is_empty()
            || !method.bytes().all(is_token)
            || uri.is_empty()
            || !is_version(version)
            || method.eq_ignore_ascii_case("SIP/2.0")
        {
            return None;
        }
        if Method::from_token(method) == Method::Ack {
            return None;
        }
        let mut vias = Vec::new();
        let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
        for line in lines {
            let name_len = line
                .iter()
                .position(|b| !is_token(*b))
                .unwrap_or(line.len());
            let name = HeaderName::from_bytes(line.get(..name_len)?);
            let slot = match name {
                HeaderName::Via => None,
                HeaderName::From => Some(&mut from),
                HeaderName::To => Some(&mut to),
                HeaderName::CallId => Some(&mut call_id),
                HeaderName::CSeq => Some(&mut cseq),
                _ => continue,
            };
            let rest = line.get(name_len..)?;
            let colon = rest.iter().position(|b| !matches!(b, b' ' | b'\t'))?;
            if rest.get(colon) != Some(&b':') {
                return None;
            }
            let value = line_text(rest.get(colon + 1..)?)?;
            let value = value
                .trim_matches(|c: char| c == ' ' || c == '\t')
                .to_owned();
            match slot {
                None => vias.push(Pii::new(value)),
                Some(slot) => {
                    if slot.is_some() {
                        return None;
                    }
                    *slot = Some(value);
                }
            }
        }
        let (from, to, call_id, cseq) = (from?, to?, call_id?, cseq?);
        // Every value must decode, or the response would not parse.
        if vias.is_empty() {
            return None;
        }
        for field in &vias {
            for via in ListItems::new(field.expose()) {
                Via::parse(via).ok()?;
            }
        }
        NameAddr::parse(&from).ok()?;
        NameAddr::parse(&to).ok()?;
        if call_id.is_empty() || call_id.bytes().any(|b| is_lws(b) || b.is_ascii_control()) {
            return None;
        }
        CSeq::parse(&cseq).ok()?;
        Some(PartialRequest {
            method: method.to_owned(),
            vias,
            from: Pii::new(from),
            to: Pii::new(to),
            call_id: Pii::new(call_id),
            cseq,
        })
    }

    /// The request method.
    pub fn method(&self) -> Method<'_> {
        Method::from_token(&self.method)
    }
    /// The Via field values, in order (never log them).
    pub fn vias(&self) -> impl Iterator<Item = &str> + '_ {
        self.vias.iter().map(|v| v.expose().as_str())
    }
    /// The From value (never log it).
    pub fn from(&self) -> &str {
        self.from.expose()
    }
    /// The To value (never log it).
    pub fn to(&self) -> &str {
        self.to.expose()
    }
    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        self.call_id.expose()
    }
    /// The CSeq value.
    pub fn cseq(&self) -> &str {
        &self.cseq
    }

    /// A response builder with `status` and `reason`, the Via values in
    /// order, From, To, Call-ID and CSeq copied (RFC 3261 section 8.2.6.2).
    /// Add a To tag with [`MessageBuilder::to_tag`].
    pub fn response(&self, status: u16, reason: &str) -> Result<MessageBuilder, ParseError> {
        let mut b = MessageBuilder::response(status, reason)?;
        for via in &self.vias {
            b = b.header("Via", via.expose())?;
        }
        b.header("From", self.from.expose())?
            .header("To", self.to.expose())?
            .header("Call-ID", self.call_id.expose())?
            .header("CSeq", &self.cseq)
    }
}

impl ParseError {
    /// The response to a request that failed to parse this way: the status
    /// of [`ParseError::status_code`], a reason phrase naming the problem
    /// (`Bad Request (invalid Content-Length)`: the error's text, which
    /// never echoes the message), the transaction header fields of
    /// `partial` and a To tag.
    pub fn response_to(
        &self,
        partial: &PartialRequest,
        to_tag: &str,
    ) -> Result<MessageBuilder, ParseError> {
        let status = self.status_code();
        let phrase = match status {
            413 => "Request Entity Too Large",
            414 => "Request-URI Too Long",
            513 => "Message Too Large",
            _ => "Bad Request",
        };
        partial
            .response(status, &format!("{phrase} ({self})"))?
            .to_tag(to_tag)
    }
}

/// The header lines of a message (folded lines joined with their breaks),
/// up to the empty line or the end of the input.
struct Lines<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.buf.is_empty() || self.buf.starts_with(b"\r\n") || self.buf.starts_with(b"\n") {
            return None;
        }
        let mut end = 0;
        loop {
            match memchr::memchr(b'\n', self.buf.get(end..)?) {
                Some(i) => {
                    let lf = end + i;
                    if matches!(self.buf.get(lf + 1), Some(b' ' | b'\t')) {
                        end = lf + 1;
                        continue;
                    }
                    let line = self.buf.get(..lf)?;
                    self.buf = self.buf.get(lf + 1..)?;
                    return Some(line.strip_suffix(b"\r").unwrap_or(line));
                }
                None => {
                    let line = self.buf;
                    self.buf = &[];
                    return Some(line);
                }
            }
        }
    }
}
