//! The `auth-param` list of a `WWW-Authenticate`, `Proxy-Authenticate`,
//! `Authorization` or `Proxy-Authorization` header value.

use std::borrow::Cow;

use super::DigestError;
use crate::sdp::is_token_char;

/// Longest header value accepted, in bytes.
pub const MAX_HEADER_LEN: usize = 8 * 1024;
/// Most parameters accepted in one header value.
pub const MAX_PARAMS: usize = 32;

/// One `name=value` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParam<'a> {
    /// The parameter name as written (compare case-insensitively).
    pub name: &'a str,
    /// The value, with quoted-string escapes removed.
    pub value: Cow<'a, str>,
    /// Whether the value was a quoted-string.
    pub quoted: bool,
}

/// A parsed header value: the scheme and its parameters, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParams<'a> {
    /// The authentication scheme (`Digest`).
    pub scheme: &'a str,
    /// The parameters, in order; names are unique (case-insensitively).
    pub params: Vec<AuthParam<'a>>,
}

impl<'a> AuthParams<'a> {
    /// Parses `scheme 1*LWS param *(LWS "," LWS param)`. Whitespace includes
    /// folded line breaks. Parameter names are unique, case-insensitively.
    pub fn parse(input: &'a str) -> Result<AuthParams<'a>, DigestError> {
        if input.len() > MAX_HEADER_LEN {
            return Err(DigestError::TooLong {
                max: MAX_HEADER_LEN,
            });
        }
        let mut p = Cursor { s: input, pos: 0 };
        p.skip_lws();
        let scheme = p.token().ok_or(DigestError::Syntax {
            offset: p.pos,
            what: "scheme",
        })?;
        let before = p.pos;
        p.skip_lws();
        if p.pos == before {
            return Err(DigestError::Syntax {
                offset: p.pos,
                what: "space after the scheme",
            });
        }
        let mut params: Vec<AuthParam<'a>> = Vec::new();
        loop {
            let name = p.token().ok_or(DigestError::Syntax {
                offset: p.pos,
                what: "parameter name",
            })?;
            p.skip_lws();
            if !p.eat(b'=') {
                return Err(DigestError::Syntax {
                    offset: p.pos,
                    what: "'=' after a parameter name",
                });
            }
            p.skip_lws();
            let (value, quoted) = if p.peek() == Some(b'"') {
                (p.quoted()?, true)
            } else {
                let v = p.token().ok_or(DigestError::Syntax {
                    offset: p.pos,
                    what: "parameter value",
                })?;
                (Cow::Borrowed(v), false)
            };
            if params.iter().any(|q| q.name.eq_ignore_ascii_case(name)) {
                return Err(DigestError::DuplicateParam { offset: p.pos });
            }
            if params.len() >= MAX_PARAMS {
                return Err(DigestError::TooManyParams { max: MAX_PARAMS });
            }
            params.push(AuthParam {
                name,
                value,
                quoted,
            });
            p.skip_lws();
            if p.peek().is_none() {
                break;
            }
            if !p.eat(b',') {
                return Err(DigestError::Syntax {
                    offset: p.pos,
                    what: "',' between parameters",
                });
            }
            p.skip_lws();
        }
        Ok(AuthParams { scheme, params })
    }

    /// Parses a header value given as bytes, which must be UTF-8.
    pub fn parse_bytes(input: &'a [u8]) -> Result<AuthParams<'a>, DigestError> {
        let s = std::str::from_utf8(input).map_err(|e| DigestError::Syntax {
            offset: e.valid_up_to(),
            what: "UTF-8",
        })?;
        AuthParams::parse(s)
    }

    /// The value of parameter `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_ref())
    }
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        self.s.as_bytes().get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.rest().first().copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_lws(&mut self) {
        let n = self
            .rest()
            .iter()
            .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .count();
        self.pos += n;
    }

    fn token(&mut self) -> Option<&'a str> {
        let n = self
            .rest()
            .iter()
            .take_while(|&&b| is_token_char(b))
            .count();
        if n == 0 {
            return None;
        }
        let t = self.s.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(t)
    }

    /// A quoted-string starting at the opening quote; escapes removed.
    fn quoted(&mut self) -> Result<Cow<'a, str>, DigestError> {
        let start = self.pos + 1;
        let mut owned: Option<String> = None;
        let mut i = start;
        let bytes = self.s.as_bytes();
        loop {
            let Some(&b) = bytes.get(i) else {
                return Err(DigestError::Syntax {
                    offset: i,
                    what: "closing quote",
                });
            };
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&next) = bytes.get(i + 1) else {
                        return Err(DigestError::Syntax {
                            offset: i,
                            what: "escape",
                        });
                    };
                    if !next.is_ascii() || next == b'\r' || next == b'\n' {
                        return Err(DigestError::Syntax {
                            offset: i,
                            what: "escape",
                        });
                    }
                    let buf = owned
                        .get_or_insert_with(|| self.s.get(start..i).unwrap_or_default().to_owned());
                    buf.push(char::from(next));
                    i += 2;
                }
                b'\t' => {
                    if let Some(buf) = owned.as_mut() {
                        buf.push('\t');
                    }
                    i += 1;
                }
                0..=0x1f | 0x7f => {
                    return Err(DigestError::Syntax {
                        offset: i,
                        what: "control character in a quoted string",
                    });
                }
                _ => {
                    // Copy whole UTF-8 characters.
                    let len = utf8_len(b);
                    if let Some(buf) = owned.as_mut() {
                        buf.push_str(self.s.get(i..i + len).unwrap_or_default());
                    }
                    i += len;
                }
            }
        }
        self.pos = i + 1;
        Ok(match owned {
            Some(s) => Cow::Owned(s),
            None => Cow::Borrowed(self.s.get(start..i).unwrap_or_default()),
        })
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// Writes `value` as a quoted-string, escaping `"` and `\\`. CR and LF,
/// which no header value can carry, are written as spaces so that a value
/// can never end the header; the parsers never produce them.
pub(super) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            c if c.is_ascii_control() && c != '\t' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_and_token_values() {
        let p = AuthParams::parse(
            "Digest realm=\"a\\\"b\" , nonce=\"xyz\",\r\n qop=\"auth,auth-int\",algorithm=SHA-256",
        )
        .unwrap();
        assert_eq!(p.scheme, "Digest");
        assert_eq!(p.get("REALM"), Some("a\"b"));
        assert_eq!(p.get("qop"), Some("auth,auth-int"));
        assert_eq!(p.get("algorithm"), Some("SHA-256"));
        assert!(!p.params[3].quoted);
    }

    #[test]
    fn refuses_malformed_lists() {
        for bad in [
            "Digest",
            "Digest realm",
            "Digest realm=\"x",
            "Digest realm=\"x\" nonce=\"y\"",
            "Digest realm=\"x\",,nonce=\"y\"",
            "Digest realm=\"x\", Realm=\"y\"",
            "Digest realm=\"x\",",
            "Digestrealm=\"x\"",
            "Digest realm=\"a\u{1}\"",
            "Digest realm=\"a\r\n b\"",
        ] {
            assert!(AuthParams::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn utf8_quoted_values_survive() {
        let p = AuthParams::parse("Digest realm=\"caf\u{e9} \\\\ x\"").unwrap();
        assert_eq!(p.get("realm"), Some("caf\u{e9} \\ x"));
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
        assert_eq!(quote("a\r\nb"), "\"a  b\"");
    }
}
