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
    start: Pii<String>,
    headers: Vec<(String, Pii<String>)>,
    body: Pii<Bytes>,
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

/// Replaces each folded line break (and the white space around it) with a
/// single space.
pub fn unfold(value: &str) -> Cow<'_, str> {
    if !value.bytes().any(|b| b == b'\r' || b == b'\n') {
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
        Ok(Self {
            start: Pii::new(format!("{method} {uri} SIP/2.0")),
            headers: Vec::new(),
            body: Pii::new(Bytes::new()),
        })
    }

    /// A response: `SIP/2.0 status reason`.
    pub fn response(status: u16, reason: &str) -> Result<Self, ParseError> {
        if !(100..=699).contains(&status) {
            return Err(ParseError::Builder {
                what: "status code",
            });
        }
        check_value(reason)?;
        Ok(Self {
            start: Pii::new(format!("SIP/2.0 {status} {reason}")),
            headers: Vec::new(),
            body: Pii::new(Bytes::new()),
        })
    }

    /// A response to `request` (RFC 3261 section 8.2.6.2): copies every Via
    /// (in order), From, To, Call-ID and CSeq. Add a To tag with
    /// [`MessageBuilder::to_tag`].
    pub fn response_to(request: &Message, status: u16, reason: &str) -> Result<Self, ParseError> {
        let mut b = Self::response(status, reason)?;
        for field in request.headers() {
            if matches!(
                field.name,
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
            ) {
                let name = field.name.canonical().unwrap_or(field.name_str);
                b.headers.push((
                    name.to_owned(),
                    Pii::new(unfold(field.value_str()).into_owned()),
                ));
            }
        }
        Ok(b)
    }

    /// A builder holding everything `msg` holds: the same start line, the
    /// same header fields in the same order (folded values unfolded, names in
    /// their canonical spelling) and the same body. Content-Length is
    /// recomputed when built.
    pub fn from_message(msg: &Message) -> Self {
        let headers = msg
            .headers()
            .filter(|f| f.name != HeaderName::ContentLength)
            .map(|f| {
                let name = f.name.canonical().unwrap_or(f.name_str);
                (
                    name.to_owned(),
                    Pii::new(unfold(f.value_str()).into_owned()),
                )
            })
            .collect();
        Self {
            start: Pii::new(msg.start_line().to_owned()),
            headers,
            body: Pii::new(msg.body_bytes()),
        }
    }

    /// Adds the `tag` parameter to the To header field, unless it has one.
    pub fn to_tag(mut self, tag: &str) -> Result<Self, ParseError> {
        if !is_token_str(tag) {
            return Err(ParseError::Builder { what: "tag" });
        }
        for (name, value) in &mut self.headers {
            let value = value.expose_mut();
            if HeaderName::To.matches(name) {
                let has_tag = crate::header::NameAddr::parse(value)
                    .map(|n| n.tag().is_some())
                    .unwrap_or(false);
                if !has_tag {
                    value.push_str(";tag=");
                    value.push_str(tag);
                }
            }
        }
        Ok(self)
    }

    /// Appends a header field.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, ParseError> {
        check_name(name)?;
        check_value(value)?;
        self.headers
            .push((name.to_owned(), Pii::new(value.to_owned())));
        Ok(self)
    }

    /// Inserts a header field before all others (a proxy's new Via).
    pub fn header_first(mut self, name: &str, value: &str) -> Result<Self, ParseError> {
        check_name(name)?;
        check_value(value)?;
        self.headers
            .insert(0, (name.to_owned(), Pii::new(value.to_owned())));
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
        match self.headers.iter().position(|(n, _)| same(n)) {
            Some(i) => {
                if let Some(slot) = self.headers.get_mut(i) {
                    slot.1 = Pii::new(value.to_owned());
                }
                let mut index = 0;
                self.headers.retain(|(n, _)| {
                    let keep = index <= i || !same(n);
                    index += 1;
                    keep
                });
            }
            None => self
                .headers
                .push((name.to_owned(), Pii::new(value.to_owned()))),
        }
        Ok(self)
    }

    /// Removes every field called `name` (any spelling).
    pub fn remove(mut self, name: &str) -> Self {
        let known = HeaderName::from_bytes(name.as_bytes());
        self.headers.retain(|(n, _)| {
            !(n.eq_ignore_ascii_case(name) || (known != HeaderName::Other && known.matches(n)))
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
        out.extend_from_slice(self.start.expose().as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            if HeaderName::ContentLength.matches(name) {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.expose().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(
            format!("Content-Length: {}\r\n\r\n", self.body.expose().len()).as_bytes(),
        );
        out.extend_from_slice(self.body.expose());
    }

    /// Builds the message with the default [`Limits`].
    pub fn build(&self) -> Result<Message, ParseError> {
        self.build_with(&Limits::default())
    }

    /// Builds the message, refusing one that exceeds `limits`.
    pub fn build_with(&self, limits: &Limits) -> Result<Message, ParseError> {
        let mut out = Vec::with_capacity(256 + self.body.expose().len());
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
    fn refuses_injection() {
        let b = MessageBuilder::request("OPTIONS", "sip:a@b").unwrap();
        assert!(b.clone().header("X", "a\r\nVia: evil").is_err());
        assert!(b.clone().header("X:Y", "a").is_err());
        assert!(MessageBuilder::request("OPT IONS", "sip:a@b").is_err());
        assert!(MessageBuilder::request("OPTIONS", "sip:a@b SIP/2.0\r\n").is_err());
    }
}
