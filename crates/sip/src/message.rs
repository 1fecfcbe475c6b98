//! SIP messages: zero-copy parsing from [`Bytes`], header access, typed
//! accessors and lossless serialization.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use carevox_redact::Pii;

use crate::error::ParseError;
use crate::header::{
    AuthHeader, AuthParams, CSeq, Contact, MediaType, Method, NameAddr, Reason, RetryAfter, Via,
};
use crate::limits::Limits;
use crate::name::HeaderName;
use crate::parse::{ListItems, is_token};
use crate::uri::Uri;

/// A byte range of the message, as two `u32` offsets (messages are bounded
/// by [`Limits::max_message_size`], at most 4 GiB - 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Self {
        // Callers only build spans inside a message whose length was checked
        // against a limit of at most u32::MAX.
        Self {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }
    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One header field: its classified name and where name and value are.
#[derive(Debug, Clone, Copy)]
struct Field {
    name: HeaderName,
    name_span: Span,
    value: Span,
}

#[derive(Debug, Clone, Copy)]
enum Start {
    Request {
        method: Span,
        uri: Span,
        version: Span,
    },
    Response {
        version: Span,
        status: u16,
        reason: Span,
    },
}

/// A parsed SIP request or response.
///
/// The message holds the bytes it was parsed from (a reference-counted
/// [`Bytes`]: cloning a message is cheap) and a small table of where each
/// header field is. Header values are decoded only when an accessor is
/// called. Serializing a parsed message ([`Message::as_bytes`]) gives back
/// exactly the bytes received.
///
/// `Debug` shows the shape (start line kind, where each field is), never
/// the bytes: header values and bodies carry PHI and keys.
#[derive(Debug, Clone)]
pub struct Message {
    raw: Pii<Bytes>,
    start: Start,
    fields: Vec<Field>,
    body_start: u32,
    content_length: Option<u32>,
}

/// One header field as it appears in the message. The value may carry
/// PHI (names, numbers, addresses) or credentials: `Debug` redacts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderField<'a> {
    /// The classified name.
    pub name: HeaderName,
    /// The name as written (possibly compact, any case).
    pub name_str: &'a str,
    /// The value as written, without the surrounding white space; folded
    /// lines keep their line breaks. Read it with [`Pii::expose`] or
    /// [`HeaderField::value_str`].
    pub value: Pii<&'a str>,
}

impl<'a> HeaderField<'a> {
    /// The value as written (never pass it to a log).
    pub fn value_str(&self) -> &'a str {
        self.value.into_inner()
    }
}

/// How a message was carried: this decides how its body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A UDP datagram: without Content-Length the body is the rest of the
    /// datagram; bytes after the Content-Length are dropped (RFC 3261 18.3).
    Datagram,
    /// A TCP or TLS byte stream: Content-Length is required and delimits the message.
    Stream,
}

fn text(bytes: &[u8]) -> &str {
    // The header section was checked to be UTF-8 at parse time and every span
    // is cut at an ASCII delimiter, so this never fails in practice.
    std::str::from_utf8(bytes).unwrap_or("")
}

pub(crate) fn is_version(v: &[u8]) -> bool {
    let Some((sip, nums)) = v.split_at_checked(4) else {
        return false;
    };
    if !sip.eq_ignore_ascii_case(b"SIP/") {
        return false;
    }
    let Some(dot) = nums.iter().position(|b| *b == b'.') else {
        return false;
    };
    let (major, minor) = nums.split_at(dot);
    let minor = minor.get(1..).unwrap_or(&[]);
    !major.is_empty()
        && !minor.is_empty()
        && major.iter().all(u8::is_ascii_digit)
        && minor.iter().all(u8::is_ascii_digit)
}

fn parse_start(line: &[u8], limits: &Limits) -> Result<Start, ParseError> {
    let err = |what| ParseError::StartLine { what };
    let sp1 = line
        .iter()
        .position(|b| *b == b' ')
        .ok_or(err("no space"))?;
    let (first, rest) = line.split_at(sp1);
    let rest = rest.get(1..).unwrap_or(&[]);
    if first.len() >= 4
        && first
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        if !is_version(first) {
            return Err(err("bad SIP version"));
        }
        let (code, reason) = match rest.split_at_checked(3) {
            Some((c, r)) => (c, r),
            None => return Err(err("bad status code")),
        };
        if !code.iter().all(u8::is_ascii_digit) {
            return Err(err("bad status code"));
        }
        let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&status) {
            return Err(err("status code out of range"));
        }
        let reason_start = match reason.first() {
            None => 0,
            Some(b' ') => 1,
            Some(_) => return Err(err("bad status code")),
        };
        let base = sp1 + 1 + 3;
        return Ok(Start::Response {
            version: Span::new(0, sp1),
            status,
            reason: Span::new(base + reason_start.min(reason.len()), line.len()),
        });
    }
    if first.is_empty() || !first.iter().all(|b| is_token(*b)) {
        return Err(err("bad method"));
    }
    let sp2 = rest
        .iter()
        .position(|b| *b == b' ')
        .ok_or(err("no SIP version"))?;
    if sp2 == 0 {
        return Err(err("empty Request-URI"));
    }
    if sp2 > limits.max_uri_length {
        return Err(ParseError::UriTooLong {
            len: sp2,
            limit: limits.max_uri_length,
        });
    }
    let version = rest.get(sp2 + 1..).unwrap_or(&[]);
    if !is_version(version) {
        return Err(err("bad SIP version"));
    }
    let uri_start = sp1 + 1;
    Ok(Start::Request {
        method: Span::new(0, sp1),
        uri: Span::new(uri_start, uri_start + sp2),
        version: Span::new(uri_start + sp2 + 1, line.len()),
    })
}

/// Index of the `\n` ending the line that starts at or after `from`.
#[inline]
fn find_lf(buf: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', buf.get(from..)?).map(|i| i + from)
}

/// Parses one message from the start of `input`. Returns the message and
/// the number of bytes of `input` it used (leading CRLFs included).
pub(crate) fn parse_message(
    input: &Bytes,
    limits: &Limits,
    transport: Transport,
) -> Result<(Message, usize), ParseError> {
    let p = parse_parts(input, limits, transport)?;
    let consumed = p.skip + p.total;
    let raw = input.slice(p.skip..consumed);
    Ok((p.into_message(raw), consumed))
}

/// Where the parts of a message are, before it is tied to its bytes.
#[derive(Debug)]
pub(crate) struct Parts {
    /// Leading CRLFs skipped.
    pub(crate) skip: usize,
    /// Length of the message after them.
    pub(crate) total: usize,
    start: Start,
    fields: Vec<Field>,
    body_start: u32,
    content_length: Option<u32>,
}

impl Parts {
    /// Ties the parts to `raw`, the `total` bytes after the skipped ones.
    pub(crate) fn into_message(self, raw: Bytes) -> Message {
        Message {
            raw: Pii::new(raw),
            start: self.start,
            fields: self.fields,
            body_start: self.body_start,
            content_length: self.content_length,
        }
    }
}

/// Parses one message from the start of `all` without taking ownership.
pub(crate) fn parse_parts(
    all: &[u8],
    limits: &Limits,
    transport: Transport,
) -> Result<Parts, ParseError> {
    parse_parts_inner(all, limits, transport, false)
}

/// Like [`parse_parts`] on a stream, but a body that has not fully arrived
/// is not an error: the parts then say how long the message will be
/// (`skip + total` may exceed `all.len()`).
pub(crate) fn parse_stream_head(all: &[u8], limits: &Limits) -> Result<Parts, ParseError> {
    parse_parts_inner(all, limits, Transport::Stream, true)
}

fn parse_parts_inner(
    all: &[u8],
    limits: &Limits,
    transport: Transport,
    partial_body: bool,
) -> Result<Parts, ParseError> {
    let stream = transport == Transport::Stream;
    let mut skip = 0;
    loop {
        match all.get(skip..) {
            Some([b'\r', b'\n', ..]) => skip += 2,
            Some([b'\n', ..]) => skip += 1,
            _ => break,
        }
    }
    let buf = all.get(skip..).unwrap_or(&[]);
    if buf.is_empty() || buf == b"\r" {
        return Err(if stream {
            ParseError::Incomplete
        } else {
            ParseError::Empty
        });
    }
    let max = limits.max_message_size.min(u32::MAX as usize);
    if !stream && buf.len() > max {
        return Err(ParseError::MessageTooLarge {
            size: buf.len(),
            limit: max,
        });
    }
    // On a stream, never look further than the largest allowed message.
    let scan = buf.get(..buf.len().min(max)).unwrap_or(buf);
    let short = |fallback: ParseError| {
        if !stream {
            fallback
        } else if buf.len() >= max {
            ParseError::MessageTooLarge {
                size: buf.len(),
                limit: max,
            }
        } else {
            ParseError::Incomplete
        }
    };

    // Start line.
    let lf = find_lf(scan, 0).ok_or_else(|| short(ParseError::NoEndOfHeaders))?;
    let sl_end = if lf > 0 && scan.get(lf - 1) == Some(&b'\r') {
        lf - 1
    } else {
        lf
    };
    if sl_end > limits.max_line_length {
        return Err(ParseError::LineTooLong {
            offset: 0,
            limit: limits.max_line_length,
        });
    }
    let start = parse_start(scan.get(..sl_end).unwrap_or(&[]), limits)?;
    let mut pos = lf + 1;

    // Header fields.
    let mut fields: Vec<Field> = Vec::with_capacity(16);
    let mut content_length: Option<u32> = None;
    let mut vias = 0usize;
    loop {
        match scan.get(pos..) {
            Some([b'\r', b'\n', ..]) => {
                pos += 2;
                break;
            }
            Some([b'\n', ..]) => {
                pos += 1;
                break;
            }
            Some([] | [b'\r']) | None => return Err(short(ParseError::NoEndOfHeaders)),
            Some(_) => {}
        }
        let line_start = pos;
        let mut search = pos;
        let (end, next) = loop {
            let lf = find_lf(scan, search).ok_or_else(|| short(ParseError::NoEndOfHeaders))?;
            let end = if lf > line_start && scan.get(lf - 1) == Some(&b'\r') {
                lf - 1
            } else {
                lf
            };
            let next = lf + 1;
            match scan.get(next) {
                Some(b' ' | b'\t') => search = next,
                None => return Err(short(ParseError::NoEndOfHeaders)),
                Some(_) => break (end, next),
            }
        };
        if end - line_start > limits.max_line_length {
            return Err(ParseError::LineTooLong {
                offset: line_start,
                limit: limits.max_line_length,
            });
        }
        let line = scan.get(line_start..end).unwrap_or(&[]);
        let name_len = line
            .iter()
            .position(|b| !is_token(*b))
            .unwrap_or(line.len());
        let bad_line = ParseError::HeaderLine { offset: line_start };
        if name_len == 0 {
            return Err(bad_line);
        }
        let mut colon = name_len;
        while matches!(line.get(colon), Some(b' ' | b'\t')) {
            colon += 1;
        }
        if line.get(colon) != Some(&b':') {
            return Err(bad_line);
        }
        let mut vstart = colon + 1;
        while line.get(vstart).is_some_and(|b| crate::parse::is_lws(*b)) {
            vstart += 1;
        }
        let mut vend = line.len();
        while vend > vstart && line.get(vend - 1).is_some_and(|b| crate::parse::is_lws(*b)) {
            vend -= 1;
        }
        let name = HeaderName::from_bytes(line.get(..name_len).unwrap_or(&[]));
        if fields.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        match name {
            HeaderName::Via => {
                vias += 1;
                if vias > limits.max_vias {
                    return Err(ParseError::TooManyVias {
                        limit: limits.max_vias,
                    });
                }
            }
            HeaderName::ContentLength => {
                let v = line.get(vstart..vend).unwrap_or(&[]);
                let n = std::str::from_utf8(v)
                    .ok()
                    .and_then(crate::parse::parse_u32)
                    .ok_or(ParseError::ContentLength)?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(ParseError::ContentLength);
                }
                content_length = Some(n);
            }
            _ => {}
        }
        fields.push(Field {
            name,
            name_span: Span::new(line_start, line_start + name_len),
            value: Span::new(line_start + vstart, line_start + vend),
        });
        pos = next;
    }
    let head_end = pos;
    if let Err(e) = std::str::from_utf8(scan.get(..head_end).unwrap_or(&[])) {
        return Err(ParseError::IllegalCharacter {
            offset: e.valid_up_to(),
        });
    }

    // Body.
    let available = buf.len() - head_end;
    let body_len = match content_length {
        Some(n) => {
            let n = n as usize;
            if n > limits.max_body_size {
                return Err(ParseError::BodyTooLarge {
                    len: n,
                    limit: limits.max_body_size,
                });
            }
            if head_end + n > max {
                return Err(ParseError::MessageTooLarge {
                    size: head_end + n,
                    limit: max,
                });
            }
            if n > available && !(stream && partial_body) {
                return Err(if stream {
                    ParseError::Incomplete
                } else {
                    ParseError::BodyTruncated {
                        expected: n,
                        available,
                    }
                });
            }
            n
        }
        None if stream => return Err(ParseError::MissingContentLength),
        None => {
            if available > limits.max_body_size {
                return Err(ParseError::BodyTooLarge {
                    len: available,
                    limit: limits.max_body_size,
                });
            }
            available
        }
    };
    Ok(Parts {
        skip,
        total: head_end + body_len,
        start,
        fields,
        body_start: u32::try_from(head_end).unwrap_or(u32::MAX),
        content_length,
    })
}

/// Iterator over the values of one header name, splitting comma-separated
/// lists.
#[derive(Debug, Clone)]
pub struct ListValues<'a> {
    msg: &'a Message,
    name: HeaderName,
    index: usize,
    items: Option<ListItems<'a>>,
}

impl<'a> Iterator for ListValues<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        loop {
            if let Some(items) = &mut self.items {
                if let Some(item) = items.next() {
                    return Some(item);
                }
                self.items = None;
            }
            let field = self
                .msg
                .fields
                .get(self.index..)?
                .iter()
                .position(|f| f.name == self.name)?;
            let i = self.index + field;
            self.index = i + 1;
            let value = self
                .msg
                .fields
                .get(i)
                .map_or("", |f| self.msg.span_text(f.value));
            self.items = Some(ListItems::new(value));
        }
    }
}

/// Iterator decoding each value of a list header with `T::parse`.
pub struct Decoded<'a, T> {
    inner: ListValues<'a>,
    parse: fn(&'a str) -> Result<T, ParseError>,
}

impl<T> fmt::Debug for Decoded<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoded")
            .field("name", &self.inner.name)
            .finish()
    }
}

impl<'a, T> Iterator for Decoded<'a, T> {
    type Item = Result<T, ParseError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(self.parse)
    }
}

impl Message {
    /// Parses a message received as a datagram, with the default [`Limits`].
    pub fn parse(bytes: Bytes) -> Result<Self, ParseError> {
        Self::parse_with(bytes, &Limits::default(), Transport::Datagram)
    }

    /// Parses one message with explicit limits and transport. For a stream,
    /// the input must hold a whole message (see [`crate::StreamFramer`] for
    /// cutting messages out of a byte stream); bytes after it are ignored.
    pub fn parse_with(
        bytes: Bytes,
        limits: &Limits,
        transport: Transport,
    ) -> Result<Self, ParseError> {
        parse_message(&bytes, limits, transport).map(|(m, _)| m)
    }

    fn span_text(&self, span: Span) -> &str {
        text(self.raw.expose().get(span.range()).unwrap_or(&[]))
    }

    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, Start::Request { .. })
    }

    /// True for a response.
    pub fn is_response(&self) -> bool {
        !self.is_request()
    }

    /// The request method, for a request.
    pub fn method(&self) -> Option<Method<'_>> {
        match self.start {
            Start::Request { method, .. } => Some(Method::from_token(self.span_text(method))),
            Start::Response { .. } => None,
        }
    }

    /// The Request-URI as written, for a request.
    pub fn request_uri_str(&self) -> Option<&str> {
        match self.start {
            Start::Request { uri, .. } => Some(self.span_text(uri)),
            Start::Response { .. } => None,
        }
    }

    /// The decoded Request-URI, for a request. A `sip` or `sips` URI with
    /// headers (`?Route=...`) is refused with
    /// [`ParseError::HeadersInRequestUri`]: RFC 3261 section 19.1.1 does
    /// not allow them there.
    pub fn request_uri(&self) -> Option<Result<Uri<'_>, ParseError>> {
        self.request_uri_str().map(|s| {
            let uri = Uri::parse(s)?;
            if uri.as_sip().is_some_and(|u| u.headers().is_some()) {
                return Err(ParseError::HeadersInRequestUri);
            }
            Ok(uri)
        })
    }

    /// The status code, for a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            Start::Response { status, .. } => Some(status),
            Start::Request { .. } => None,
        }
    }

    /// The reason phrase, for a response.
    pub fn reason(&self) -> Option<&str> {
        match self.start {
            Start::Response { reason, .. } => Some(self.span_text(reason)),
            Start::Request { .. } => None,
        }
    }

    /// The SIP version as written (`SIP/2.0`).
    pub fn version(&self) -> &str {
        match self.start {
            Start::Request { version, .. } | Start::Response { version, .. } => {
                self.span_text(version)
            }
        }
    }

    /// The start line, without its line break.
    pub fn start_line(&self) -> &str {
        let end = match self.start {
            Start::Request { version, .. } => version.end,
            Start::Response { reason, .. } => reason.end,
        };
        text(self.raw.expose().get(..end as usize).unwrap_or(&[]))
    }

    /// Every header field, in order.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = HeaderField<'_>> + '_ {
        self.fields.iter().map(|f| HeaderField {
            name: f.name,
            name_str: self.span_text(f.name_span),
            value: Pii::new(self.span_text(f.value)),
        })
    }

    /// The classified name and the value of each header field whose name
    /// passes `keep`, in order: only those values are decoded.
    pub(crate) fn values_where<'a>(
        &'a self,
        keep: impl Fn(HeaderName) -> bool + 'a,
    ) -> impl Iterator<Item = (HeaderName, &'a str)> + 'a {
        self.fields
            .iter()
            .filter(move |f| keep(f.name))
            .map(|f| (f.name, self.span_text(f.value)))
    }

    /// Number of header fields.
    pub fn header_count(&self) -> usize {
        self.fields.len()
    }

    /// The values of every field called `name` (a whole field value each).
    pub fn header_values(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.fields
            .iter()
            .filter(move |f| f.name == name)
            .map(|f| self.span_text(f.value))
    }

    /// The value of the first field called `name`.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| self.span_text(f.value))
    }

    /// The values of every field with this name in any spelling (for
    /// extension headers; known names match their compact form too).
    pub fn header_values_by_name<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let known = HeaderName::from_bytes(name.as_bytes());
        self.fields
            .iter()
            .filter(move |f| {
                if known == HeaderName::Other {
                    f.name == HeaderName::Other
                        && self.span_text(f.name_span).eq_ignore_ascii_case(name)
                } else {
                    f.name == known
                }
            })
            .map(|f| self.span_text(f.value))
    }

    /// The values of a list header, comma-separated items split apart.
    pub fn list(&self, name: HeaderName) -> ListValues<'_> {
        ListValues {
            msg: self,
            name,
            index: 0,
            items: None,
        }
    }

    fn decoded<'a, T>(
        &'a self,
        name: HeaderName,
        parse: fn(&'a str) -> Result<T, ParseError>,
    ) -> Decoded<'a, T> {
        Decoded {
            inner: self.list(name),
            parse,
        }
    }

    fn required(&self, name: HeaderName, canonical: &'static str) -> Result<&str, ParseError> {
        self.header(name)
            .ok_or(ParseError::MissingHeader { header: canonical })
    }

    fn number(&self, name: HeaderName, canonical: &'static str) -> Result<Option<u32>, ParseError> {
        self.header(name)
            .map(|v| {
                crate::parse::parse_u32(v).ok_or(ParseError::header(canonical, "not a number"))
            })
            .transpose()
    }

    /// The Via values, topmost first, comma-separated values split apart.
    pub fn vias(&self) -> Decoded<'_, Via<'_>> {
        self.decoded(HeaderName::Via, Via::parse)
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        self.list(HeaderName::Via)
            .next()
            .ok_or(ParseError::MissingHeader { header: "Via" })
            .and_then(Via::parse)
    }

    /// The From header field.
    pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
        NameAddr::parse(self.required(HeaderName::From, "From")?)
    }

    /// The To header field.
    pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
        NameAddr::parse(self.required(HeaderName::To, "To")?)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        let v = self.required(HeaderName::CallId, "Call-ID")?;
        if v.is_empty()
            || v.bytes()
                .any(|b| crate::parse::is_lws(b) || b.is_ascii_control())
        {
            return Err(ParseError::header("Call-ID", "bad value"));
        }
        Ok(v)
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq<'_>, ParseError> {
        CSeq::parse(self.required(HeaderName::CSeq, "CSeq")?)
    }

    /// Max-Forwards, if present.
    pub fn max_forwards(&self) -> Result<Option<u32>, ParseError> {
        self.number(HeaderName::MaxForwards, "Max-Forwards")
    }

    /// The Contact values (including `*`).
    pub fn contacts(&self) -> Decoded<'_, Contact<'_>> {
        self.decoded(HeaderName::Contact, Contact::parse)
    }

    /// The Route values, in order.
    pub fn routes(&self) -> Decoded<'_, NameAddr<'_>> {
        self.decoded(HeaderName::Route, NameAddr::parse)
    }

    /// The Record-Route values, in order.
    pub fn record_routes(&self) -> Decoded<'_, NameAddr<'_>> {
        self.decoded(HeaderName::RecordRoute, NameAddr::parse)
    }

    /// The Path values (RFC 3327), in order.
    pub fn paths(&self) -> Decoded<'_, NameAddr<'_>> {
        self.decoded(HeaderName::Path, NameAddr::parse)
    }

    /// Expires, if present (a value above `u32::MAX` saturates).
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        self.header(HeaderName::Expires)
            .map(|v| {
                crate::parse::parse_u32_saturating(v)
                    .ok_or(ParseError::header("Expires", "not a number"))
            })
            .transpose()
    }

    /// Min-Expires, if present.
    pub fn min_expires(&self) -> Result<Option<u32>, ParseError> {
        self.number(HeaderName::MinExpires, "Min-Expires")
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType<'_>>, ParseError> {
        self.header(HeaderName::ContentType)
            .map(MediaType::parse)
            .transpose()
    }

    /// Content-Length, if present (checked at parse time).
    pub fn content_length(&self) -> Option<u32> {
        self.content_length
    }

    /// The Allow methods.
    pub fn allow(&self) -> ListValues<'_> {
        self.list(HeaderName::Allow)
    }

    /// The Supported option tags.
    pub fn supported(&self) -> ListValues<'_> {
        self.list(HeaderName::Supported)
    }

    /// The Require option tags.
    pub fn require(&self) -> ListValues<'_> {
        self.list(HeaderName::Require)
    }

    /// The Proxy-Require option tags.
    pub fn proxy_require(&self) -> ListValues<'_> {
        self.list(HeaderName::ProxyRequire)
    }

    /// The Unsupported option tags.
    pub fn unsupported(&self) -> ListValues<'_> {
        self.list(HeaderName::Unsupported)
    }

    fn auth(
        &self,
        name: HeaderName,
        canonical: &'static str,
    ) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> + '_ {
        self.header_values(name).map(move |v| {
            AuthHeader::parse(v).map_err(|error| ParseError::AuthParams {
                header: canonical,
                error,
            })
        })
    }

    /// The WWW-Authenticate challenges, one per header field.
    pub fn www_authenticate(
        &self,
    ) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> + '_ {
        self.auth(HeaderName::WwwAuthenticate, "WWW-Authenticate")
    }

    /// The Proxy-Authenticate challenges, one per header field.
    pub fn proxy_authenticate(
        &self,
    ) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> + '_ {
        self.auth(HeaderName::ProxyAuthenticate, "Proxy-Authenticate")
    }

    /// The Authorization credentials, one per header field.
    pub fn authorization(&self) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> + '_ {
        self.auth(HeaderName::Authorization, "Authorization")
    }

    /// The Proxy-Authorization credentials, one per header field.
    pub fn proxy_authorization(
        &self,
    ) -> impl Iterator<Item = Result<AuthHeader<'_>, ParseError>> + '_ {
        self.auth(HeaderName::ProxyAuthorization, "Proxy-Authorization")
    }

    /// The Authentication-Info parameters, if present.
    pub fn authentication_info(&self) -> Result<Option<AuthParams<'_>>, ParseError> {
        self.header(HeaderName::AuthenticationInfo)
            .map(|v| {
                AuthParams::parse(v).map_err(|error| ParseError::AuthParams {
                    header: "Authentication-Info",
                    error,
                })
            })
            .transpose()
    }

    /// User-Agent, as written.
    pub fn user_agent(&self) -> Option<&str> {
        self.header(HeaderName::UserAgent)
    }

    /// Server, as written.
    pub fn server(&self) -> Option<&str> {
        self.header(HeaderName::Server)
    }

    /// Date, as written (an RFC 1123 date).
    pub fn date(&self) -> Option<&str> {
        self.header(HeaderName::Date)
    }

    /// Retry-After, if present.
    pub fn retry_after(&self) -> Result<Option<RetryAfter<'_>>, ParseError> {
        self.header(HeaderName::RetryAfter)
            .map(RetryAfter::parse)
            .transpose()
    }

    /// The Reason values (RFC 3326).
    pub fn reasons(&self) -> Decoded<'_, Reason<'_>> {
        self.decoded(HeaderName::Reason, Reason::parse)
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        self.raw
            .expose()
            .get(self.body_start as usize..)
            .unwrap_or(&[])
    }

    /// The body as a reference-counted slice of the message.
    pub fn body_bytes(&self) -> Bytes {
        self.raw.expose().slice(self.body_start as usize..)
    }

    /// The message exactly as received (leading CRLFs and, for datagrams,
    /// bytes after the Content-Length excluded).
    pub fn as_bytes(&self) -> &Bytes {
        self.raw.expose()
    }

    /// The bytes of the message, consuming it.
    pub fn into_bytes(self) -> Bytes {
        self.raw.into_inner()
    }

    /// Appends the message to `out`, byte for byte as received.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.raw.expose());
    }

    /// A reference-counted slice of the message holding `part`, which must be
    /// a string borrowed from this message (as the accessors return).
    pub fn slice_of(&self, part: &str) -> Option<Bytes> {
        let base = self.raw.expose().as_ptr() as usize;
        let p = part.as_ptr() as usize;
        let start = p.checked_sub(base)?;
        let end = start.checked_add(part.len())?;
        (end <= self.raw.expose().len()).then(|| self.raw.expose().slice(start..end))
    }

    /// The header section only (start line and headers, final empty line included).
    pub fn head(&self) -> &str {
        text(
            self.raw
                .expose()
                .get(..self.body_start as usize)
                .unwrap_or(&[]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    #[test]
    fn parses_rfc3261_invite() {
        let m = Message::parse(Bytes::from_static(INVITE.as_bytes())).unwrap();
        assert!(m.is_request());
        assert_eq!(m.method(), Some(Method::Invite));
        assert_eq!(m.request_uri_str(), Some("sip:bob@biloxi.com"));
        assert_eq!(m.version(), "SIP/2.0");
        assert_eq!(m.header_count(), 9);
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(m.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(m.to().unwrap().display_name().unwrap(), "Bob");
        assert_eq!(m.call_id().unwrap(), "a84b4c76e66710@pc33.atlanta.com");
        assert_eq!(m.cseq().unwrap().seq, 314159);
        assert_eq!(m.max_forwards().unwrap(), Some(70));
        assert_eq!(m.contacts().count(), 1);
        assert_eq!(m.body(), b"v=0\n");
        assert_eq!(m.as_bytes().as_ref(), INVITE.as_bytes());
        assert_eq!(m.start_line(), "INVITE sip:bob@biloxi.com SIP/2.0");
        let cid = m.call_id().unwrap();
        assert_eq!(m.slice_of(cid).unwrap().as_ref(), cid.as_bytes());
    }

    #[test]
    fn folding_compact_and_whitespace() {
        let raw = "OPTIONS sip:h SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1,\r\n SIP/2.0/TCP g\r\nSubject   :\r\n\tfolded\r\n  value  \r\nl:0\r\n\r\n";
        let m = Message::parse(Bytes::copy_from_slice(raw.as_bytes())).unwrap();
        assert_eq!(m.vias().count(), 2);
        assert_eq!(m.vias().nth(1).unwrap().unwrap().transport(), "TCP");
        assert_eq!(m.header(HeaderName::Subject), Some("folded\r\n  value"));
        assert_eq!(m.content_length(), Some(0));
    }

    #[test]
    fn response() {
        let raw = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h\r\n\r\n";
        let m = Message::parse(Bytes::from_static(raw.as_bytes())).unwrap();
        assert_eq!(m.status(), Some(180));
        assert_eq!(m.reason(), Some("Ringing"));
        let m = Message::parse(Bytes::from_static(b"SIP/2.0 200 \r\n\r\n")).unwrap();
        assert_eq!(m.reason(), Some(""));
    }

    #[test]
    fn body_delimiting() {
        let raw = Bytes::from_static(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\nabcdef");
        let m = Message::parse(raw.clone()).unwrap();
        assert_eq!(m.body(), b"abc");
        let err = Message::parse(Bytes::from_static(
            b"MESSAGE sip:a@b SIP/2.0\r\nl: 9\r\n\r\nabc",
        ));
        assert!(matches!(
            err,
            Err(ParseError::BodyTruncated {
                expected: 9,
                available: 3
            })
        ));
        let m = Message::parse(Bytes::from_static(b"MESSAGE sip:a@b SIP/2.0\r\n\r\nrest")).unwrap();
        assert_eq!(m.body(), b"rest");
        let stream = Message::parse_with(
            Bytes::from_static(b"MESSAGE sip:a@b SIP/2.0\r\n\r\nrest"),
            &Limits::default(),
            Transport::Stream,
        );
        assert_eq!(stream.unwrap_err(), ParseError::MissingContentLength);
        let conflicting = Message::parse(Bytes::from_static(
            b"A sip:a SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\nab",
        ));
        assert_eq!(conflicting.unwrap_err(), ParseError::ContentLength);
    }

    #[test]
    fn limits() {
        let l = Limits::default().with_max_headers(1);
        let r = Message::parse_with(
            Bytes::from_static(b"A sip:a SIP/2.0\r\nX: 1\r\nY: 2\r\n\r\n"),
            &l,
            Transport::Datagram,
        );
        assert_eq!(r.unwrap_err(), ParseError::TooManyHeaders { limit: 1 });
        let l = Limits::default().with_max_uri_length(4);
        let r = Message::parse_with(
            Bytes::from_static(b"A sip:abc SIP/2.0\r\n\r\n"),
            &l,
            Transport::Datagram,
        );
        assert_eq!(r.unwrap_err().status_code(), 414);
        let l = Limits::default().with_max_line_length(10);
        let r = Message::parse_with(
            Bytes::from_static(b"A sip:a SIP/2.0\r\n\r\n"),
            &l,
            Transport::Datagram,
        );
        assert!(matches!(r, Err(ParseError::LineTooLong { .. })));
    }
}
