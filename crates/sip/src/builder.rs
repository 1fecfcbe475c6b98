//! Building messages: requests, responses to requests, and rebuilding a
//! parsed message with changes (as a proxy forwards it).
//!
//! A builder writes canonical text (`Name: value` lines, CRLF, a computed
//! Content-Length) and parses the result, so a built [`Message`] is always
//! one this crate accepts. Names and values are checked so that no input can
//! inject a line break or a second header field.

use std::borrow::Cow;

use bytes::Bytes;
use carevox_redact::Pii;

use crate::error::ParseError;
use crate::limits::Limits;
use crate::message::{Message, Transport};
use crate::name::HeaderName;
use crate::parse::{is_lws, is_token_str};

/// Builds a request or response.
///
/// `Debug` shows the header names only: the start line (a Request-URI),
/// header values and the body (SDP with `inline:` keys) are redacted.
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    /// The start line and every field value, one after the other (one
    /// allocation for them all). A value that is replaced or extended is
    /// written anew at the end.
    text: Pii<String>,
    /// Where the start line is in `text`.
    start: Slice,
    headers: Vec<Field>,
    body: Pii<Bytes>,
}

/// A range of a builder's text.
#[derive(Debug, Clone, Copy)]
struct Slice {
    start: usize,
    end: usize,
}

/// One header field to write. `Debug` shows the name, never the value.
#[derive(Debug, Clone)]
struct Field {
    /// The classified name, as `HeaderName::from_bytes` gives it for `name`.
    kind: HeaderName,
    /// The name to write: canonical names are not copied.
    name: Cow<'static, str>,
    /// Where the value is in the builder's text.
    value: Slice,
}

impl Field {
    fn new(name: &str, value: Slice) -> Self {
        Self {
            kind: HeaderName::from_bytes(name.as_bytes()),
            name: Cow::Owned(name.to_owned()),
            value,
        }
    }

    /// A field named after a parsed one, in its canonical spelling if it has one.
    fn like(kind: HeaderName, as_written: &str, value: Slice) -> Self {
        Self {
            kind,
            name: kind
                .canonical()
                .map_or_else(|| Cow::Owned(as_written.to_owned()), Cow::Borrowed),
            value,
        }
    }
}

/// True when `value` may hold a parameter called `tag` (in any case).
fn may_have_tag(value: &str) -> bool {
    let b = value.as_bytes();
    memchr::memchr2_iter(b't', b'T', b).any(|i| {
        b.get(i + 1..i + 3)
            .is_some_and(|rest| rest.eq_ignore_ascii_case(b"ag"))
    })
}

fn check_value(value: &str) -> Result<(), ParseError> {
    if value
        .bytes()
        .any(|b| (b.is_ascii_control() && b != b'\t') || b == 0x7f)
    {
        return Err(ParseError::Builder {
            what: "header value (control character or line break)",
        });
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ParseError> {
    if !is_token_str(name) {
        return Err(ParseError::Builder {
            what: "header name",
        });
    }
    Ok(())
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, n: usize) {
    if n >= 10 {
        push_decimal(out, n / 10);
    }
    if let Ok(d) = u8::try_from(n % 10) {
        out.push(b'0' + d);
    }
}

/// Replaces each folded line break (and the white space around it) with a
/// single space.
pub fn unfold(value: &str) -> Cow<'_, str> {
    if memchr::memchr2(b'\r', b'\n', value.as_bytes()).is_none() {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut in_fold = false;
    for c in value.chars() {
        if c == '\r' || c == '\n' {
            while out.ends_with([' ', '\t']) {
                out.pop();
            }
            in_fold = true;
            continue;
        }
        if in_fold {
            if c == ' ' || c == '\t' {
                continue;
            }
            out.push(' ');
            in_fold = false;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

impl MessageBuilder {
    /// A request: `METHOD uri SIP/2.0`.
    pub fn request(method: &str, uri: &str) -> Result<Self, ParseError> {
        if !is_token_str(method) {
            return Err(ParseError::Builder { what: "method" });
        }
        if uri.is_empty() || uri.bytes().any(|b| is_lws(b) || b.is_ascii_control()) {
            return Err(ParseError::Builder {
                what: "Request-URI",
            });
        }
        // RFC 3261 section 19.1.1: no URI headers in a Request-URI.
        if crate::uri::Uri::parse(uri)
            .is_ok_and(|u| u.as_sip().is_some_and(|s| s.headers().is_some()))
        {
            return Err(ParseError::HeadersInRequestUri);
        }
        let mut text = String::with_capacity(method.len() + uri.len() + 256);
        text.push_str(method);
        text.push(' ');
        text.push_str(uri);
        text.push_str(" SIP/2.0");
        Ok(Self::with_start(text, Vec::with_capacity(8)))
    }

    /// A response: `SIP/2.0 status reason`.
    pub fn response(status: u16, reason: &str) -> Result<Self, ParseError> {
        if !(100..=699).contains(&status) {
            return Err(ParseError::Builder {
                what: "status code",
            });
        }
        check_value(reason)?;
        let mut text = String::with_capacity(reason.len() + 256);
        text.push_str("SIP/2.0 ");
        for d in [status / 100, status / 10 % 10, status % 10] {
            if let Ok(d) = u8::try_from(d) {
                text.push(char::from(b'0' + d));
            }
        }
        text.push(' ');
        text.push_str(reason);
        // Room for the fields a response copies from its request and a few
        // more.
        Ok(Self::with_start(text, Vec::with_capacity(8)))
    }

    /// A builder whose text holds the start line alone.
    fn with_start(text: String, headers: Vec<Field>) -> Self {
        Self {
            start: Slice {
                start: 0,
                end: text.len(),
            },
            text: Pii::new(text),
            headers,
            body: Pii::new(Bytes::new()),
        }
    }

    /// Appends `value` to the text and tells where it is.
    fn push_text(&mut self, value: &str) -> Slice {
        let text = self.text.expose_mut();
        let start = text.len();
        text.push_str(value);
        Slice {
            start,
            end: text.len(),
        }
    }

    /// A range of the text.
    fn slice(&self, s: Slice) -> &str {
        // Every slice was taken from the text, which only grows.
        self.text.expose().get(s.start..s.end).unwrap_or("")
    }

    /// A response to `request` (RFC 3261 section 8.2.6.2): copies every Via
    /// (in order), From, To, Call-ID and CSeq. Add a To tag with
    /// [`MessageBuilder::to_tag`].
    pub fn response_to(request: &Message, status: u16, reason: &str) -> Result<Self, ParseError> {
        let mut b = Self::response(status, reason)?;
        let copied = request.values_where(|name| {
            matches!(
                name,
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
            )
        });
        for (kind, value) in copied {
            // The five names above all have a canonical spelling.
            let Some(name) = kind.canonical() else {
                continue;
            };
            let value = b.push_text(&unfold(value));
            b.headers.push(Field {
                kind,
                name: Cow::Borrowed(name),
                value,
            });
        }
        Ok(b)
    }

    /// A builder holding everything `msg` holds: the same start line, the
    /// same header fields in the same order (folded values unfolded, names in
    /// their canonical spelling) and the same body. Content-Length is
    /// recomputed when built.
    pub fn from_message(msg: &Message) -> Self {
        let mut b = Self::with_start(
            msg.start_line().to_owned(),
            Vec::with_capacity(msg.header_count()),
        );
        for f in msg.headers() {
            if f.name != HeaderName::ContentLength {
                let value = b.push_text(&unfold(f.value_str()));
                b.headers.push(Field::like(f.name, f.name_str, value));
            }
        }
        b.body = Pii::new(msg.body_bytes());
        b
    }

    /// Adds the `tag` parameter to the To header field, unless it has one.
    pub fn to_tag(mut self, tag: &str) -> Result<Self, ParseError> {
        if !is_token_str(tag) {
            return Err(ParseError::Builder { what: "tag" });
        }
        for i in 0..self.headers.len() {
            let Some(&Field {
                kind: HeaderName::To,
                value: old,
                ..
            }) = self.headers.get(i)
            else {
                continue;
            };
            let value = self.slice(old);
            // Without `tag` anywhere in it, the value has no tag parameter,
            // and need not be parsed to know.
            let has_tag = may_have_tag(value)
                && crate::header::NameAddr::parse(value).is_ok_and(|n| n.tag().is_some());
            if has_tag {
                continue;
            }
            let text = self.text.expose_mut();
            let start = if old.end == text.len() {
                // The last value written: extend it where it is.
                old.start
            } else {
                let start = text.len();
                text.extend_from_within(old.start..old.end);
                start
            };
            text.push_str(";tag=");
            text.push_str(tag);
            let end = text.len();
            if let Some(f) = self.headers.get_mut(i) {
                f.value = Slice { start, end };
            }
        }
        Ok(self)
    }

    /// Appends a header field.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, ParseError> {
        check_name(name)?;
        check_value(value)?;
        let value = self.push_text(value);
        self.headers.push(Field::new(name, value));
        Ok(self)
    }

    /// Inserts a header field before all others (a proxy's new Via).
    pub fn header_first(mut self, name: &str, value: &str) -> Result<Self, ParseError> {
        check_name(name)?;
        check_value(value)?;
        let value = self.push_text(value);
        self.headers.insert(0, Field::new(name, value));
        Ok(self)
    }

    /// Replaces every field called `name` by one with `value` (at the place
    /// of the first one, or at the end).
    pub fn set(mut self, name: &str, value: &str) -> Result<Self, ParseError> {
        check_name(name)?;
        check_value(value)?;
        let same = |n: &str| {
            n.eq_ignore_ascii_case(name) || HeaderName::from_bytes(name.as_bytes()).matches(n)
        };
        let value = self.push_text(value);
        match self.headers.iter().position(|f| same(&f.name)) {
            Some(i) => {
                if let Some(slot) = self.headers.get_mut(i) {
                    slot.value = value;
                }
                let mut index = 0;
                self.headers.retain(|f| {
                    let keep = index <= i || !same(&f.name);
                    index += 1;
                    keep
                });
            }
            None => self.headers.push(Field::new(name, value)),
        }
        Ok(self)
    }

    /// Removes every field called `name` (any spelling).
    pub fn remove(mut self, name: &str) -> Self {
        let known = HeaderName::from_bytes(name.as_bytes());
        self.headers.retain(|f| {
            !(f.name.eq_ignore_ascii_case(name) || (known != HeaderName::Other && known == f.kind))
        });
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(self, content_type: &str, body: Bytes) -> Result<Self, ParseError> {
        let mut b = self.set("Content-Type", content_type)?;
        b.body = Pii::new(body);
        Ok(b)
    }

    /// Writes the message text into `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.slice(self.start).as_bytes());
        out.extend_from_slice(b"\r\n");
        for field in &self.headers {
            if field.kind == HeaderName::ContentLength {
                continue;
            }
            out.extend_from_slice(field.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(self.slice(field.value).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(out, self.body.expose().len());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(self.body.expose());
    }

    /// Builds the message with the default [`Limits`].
    pub fn build(&self) -> Result<Message, ParseError> {
        self.build_with(&Limits::default())
    }

    /// Builds the message, refusing one that exceeds `limits`.
    pub fn build_with(&self, limits: &Limits) -> Result<Message, ParseError> {
        let fields: usize = self
            .headers
            .iter()
            .map(|f| f.name.len() + (f.value.end - f.value.start) + 4)
            .sum();
        let start = self.start.end - self.start.start;
        let mut out = Vec::with_capacity(start + fields + 40 + self.body.expose().len());
        self.write_to(&mut out);
        Message::parse_with(Bytes::from(out), limits, Transport::Stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds() {
        assert_eq!(unfold("a \r\n\t b"), "a b");
        assert_eq!(unfold("a\r\n b\r\n c"), "a b c");
        assert_eq!(unfold("plain"), "plain");
    }

    #[test]
    fn numbers_written_in_decimal() {
        for (status, len) in [(100, 0), (180, 7), (404, 10), (699, 1234)] {
            let body = Bytes::from(vec![b'x'; len]);
            let m = MessageBuilder::response(status, "R")
                .unwrap()
                .body("text/plain", body)
                .unwrap()
                .build()
                .unwrap();
            assert_eq!(m.status(), Some(status));
            assert_eq!(m.start_line(), format!("SIP/2.0 {status} R"));
            assert_eq!(m.header(HeaderName::ContentLength), Some(&*len.to_string()));
            assert_eq!(m.body_bytes().len(), len);
        }
    }

    #[test]
    fn to_tag_only_where_there_is_none() {
        let to = |value: &str, last: bool| {
            let mut b = MessageBuilder::response(200, "OK").unwrap();
            if last {
                b = b
                    .header("Call-ID", "c")
                    .unwrap()
                    .header("To", value)
                    .unwrap();
            } else {
                b = b
                    .header("To", value)
                    .unwrap()
                    .header("Call-ID", "c")
                    .unwrap();
            }
            let m = b.to_tag("srv").unwrap().build().unwrap();
            assert_eq!(m.header(HeaderName::CallId), Some("c"));
            m.header(HeaderName::To).unwrap().to_owned()
        };
        for last in [true, false] {
            assert_eq!(to("<sip:b@h>", last), "<sip:b@h>;tag=srv");
            // `tag` in the display name or the URI is no tag parameter.
            assert_eq!(
                to("\"Tag\" <sip:tag@h;tag=1>", last),
                "\"Tag\" <sip:tag@h;tag=1>;tag=srv"
            );
            assert_eq!(to("<sip:b@h>;TAG=x", last), "<sip:b@h>;TAG=x");
            assert_eq!(to("sip:b@h;tag=x", last), "sip:b@h;tag=x");
            // A value that does not parse gets the tag, as before.
            assert_eq!(to("<sip:b@h", last), "<sip:b@h;tag=srv");
        }
    }

    #[test]
    fn refuses_injection() {
        let b = MessageBuilder::request("OPTIONS", "sip:a@b").unwrap();
        assert!(b.clone().header("X", "a\r\nVia: evil").is_err());
        assert!(b.clone().header("X:Y", "a").is_err());
        assert!(MessageBuilder::request("OPT IONS", "sip:a@b").is_err());
        assert!(MessageBuilder::request("OPTIONS", "sip:a@b SIP/2.0\r\n").is_err());
    }
}
