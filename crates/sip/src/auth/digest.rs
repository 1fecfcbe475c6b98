//! Typed `Digest` challenges and credentials.

use std::fmt;

use carevox_redact::Pii;

use super::{Algorithm, DigestError, Qop, hex_hash};
use crate::header::{AuthHeader, AuthParam};

/// A `WWW-Authenticate` / `Proxy-Authenticate` digest challenge. `Debug`
/// hides the nonce and `opaque`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space.
    pub realm: String,
    /// `domain`, as written.
    pub domain: Option<String>,
    /// The server nonce (redacted in `Debug`: it authenticates).
    pub nonce: Pii<String>,
    /// `opaque`, to be echoed by the client.
    pub opaque: Pii<Option<String>>,
    /// `stale=true`: the previous nonce expired, the credentials were right.
    pub stale: bool,
    /// The algorithm; `None` when absent (which means MD5).
    pub algorithm: Option<Algorithm>,
    /// The offered qop values carevox knows, in order.
    pub qop: Vec<Qop>,
    /// `charset=UTF-8`.
    pub charset_utf8: bool,
    /// `userhash=true`: the client should send a hashed user name.
    pub userhash: bool,
}

impl Challenge {
    /// Reads the digest challenge of a `WWW-Authenticate` or
    /// `Proxy-Authenticate` header, as [`Message::www_authenticate`] and
    /// [`Message::proxy_authenticate`] give it.
    ///
    /// An unknown algorithm is an error (such a challenge cannot be
    /// answered); unknown parameters and qop values are ignored.
    ///
    /// [`Message::www_authenticate`]: crate::Message::www_authenticate
    /// [`Message::proxy_authenticate`]: crate::Message::proxy_authenticate
    pub fn from_header(header: &AuthHeader<'_>) -> Result<Challenge, DigestError> {
        if !header.is_scheme("Digest") {
            return Err(DigestError::NotDigest);
        }
        let [
            realm,
            domain,
            nonce,
            opaque,
            stale,
            algorithm,
            qop,
            charset,
            userhash,
        ] = header.params().pick([
            "realm",
            "domain",
            "nonce",
            "opaque",
            "stale",
            "algorithm",
            "qop",
            "charset",
            "userhash",
        ]);
        let algorithm = match algorithm {
            Some(a) => Some(Algorithm::parse(&a.value()).ok_or(DigestError::UnsupportedAlgorithm)?),
            None => None,
        };
        // No qop parameter is an RFC 2069 challenge (an empty list). A qop
        // parameter naming no option this crate knows is not the same
        // thing: refuse it rather than read it as "no qop".
        let qop: Vec<Qop> = match qop {
            None => Vec::new(),
            Some(q) => {
                let known: Vec<Qop> = q
                    .value()
                    .split(',')
                    .filter_map(|v| Qop::parse(v.trim()))
                    .collect();
                if known.is_empty() {
                    return Err(DigestError::InvalidParam("qop"));
                }
                known
            }
        };
        Ok(Challenge {
            realm: owned(realm.ok_or(DigestError::MissingParam("realm"))?),
            domain: domain.map(owned),
            nonce: Pii::new(owned(nonce.ok_or(DigestError::MissingParam("nonce"))?)),
            opaque: Pii::new(opaque.map(owned)),
            stale: bool_param(stale, "stale")?,
            algorithm,
            qop,
            charset_utf8: charset.is_some_and(|c| c.value().eq_ignore_ascii_case("UTF-8")),
            userhash: bool_param(userhash, "userhash")?,
        })
    }

    /// Parses a challenge header value (`Digest realm=...`): the same as
    /// [`AuthHeader::parse`] then [`Challenge::from_header`].
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        Challenge::from_header(&AuthHeader::parse(value)?)
    }

    /// Parses a challenge header value given as bytes.
    pub fn parse_bytes(value: &[u8]) -> Result<Challenge, DigestError> {
        Challenge::from_header(&AuthHeader::parse_bytes(value)?)
    }

    /// The algorithm in force: MD5 when none is named.
    pub fn effective_algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }
}

fn owned(p: AuthParam<'_>) -> String {
    p.value().into_owned()
}

fn bool_param(p: Option<AuthParam<'_>>, name: &'static str) -> Result<bool, DigestError> {
    match p.map(|p| p.value()) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(DigestError::InvalidParam(name)),
    }
}

/// Writes `value` as a quoted-string, escaping `"` and `\\`. CR and LF,
/// which no header value can carry, are written as spaces so that a value
/// can never end the header; the parsers never produce them.
fn quote(value: &str) -> String {
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

struct Writer<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    first: bool,
}

impl Writer<'_, '_> {
    fn raw(&mut self, name: &str, value: &str) -> fmt::Result {
        let sep = if self.first { " " } else { ", " };
        self.first = false;
        write!(self.f, "{sep}{name}={value}")
    }

    fn quoted(&mut self, name: &str, value: &str) -> fmt::Result {
        self.raw(name, &quote(value))
    }
}

/// Writes the header value, starting with `Digest`.
impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest")?;
        let mut w = Writer { f, first: true };
        w.quoted("realm", &self.realm)?;
        if let Some(d) = &self.domain {
            w.quoted("domain", d)?;
        }
        w.quoted("nonce", self.nonce.expose())?;
        if let Some(o) = self.opaque.expose() {
            w.quoted("opaque", o)?;
        }
        if self.stale {
            w.raw("stale", "true")?;
        }
        if let Some(a) = self.algorithm {
            w.raw("algorithm", a.name())?;
        }
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.name()).collect();
            w.quoted("qop", &list.join(","))?;
        }
        if self.charset_utf8 {
            w.raw("charset", "UTF-8")?;
        }
        if self.userhash {
            w.raw("userhash", "true")?;
        }
        Ok(())
    }
}

/// An `Authorization` / `Proxy-Authorization` digest response. `Debug`
/// shows the algorithm, qop, nonce count and flags only: the user name,
/// realm, URI, nonces and response are held in [`Pii`] and stay hidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name: plain, decoded from `username*`, or, with
    /// [`Credentials::userhash`], the hex `H(username:realm)`.
    pub username: Pii<String>,
    /// Whether the user name came in (or is to be written as) `username*`.
    pub extended_username: bool,
    /// The realm.
    pub realm: Pii<String>,
    /// The server nonce being answered.
    pub nonce: Pii<String>,
    /// The digest URI.
    pub uri: Pii<String>,
    /// The response, lower-case hex.
    pub response: Pii<String>,
    /// The algorithm; `None` when absent (MD5).
    pub algorithm: Option<Algorithm>,
    /// The client nonce.
    pub cnonce: Pii<Option<String>>,
    /// The echoed `opaque`.
    pub opaque: Pii<Option<String>>,
    /// The chosen qop.
    pub qop: Option<Qop>,
    /// The nonce count.
    pub nc: Option<u32>,
    /// Whether `username` is hashed.
    pub userhash: bool,
}

impl Credentials {
    /// Reads the digest credentials of an `Authorization` or
    /// `Proxy-Authorization` header, as [`Message::authorization`] and
    /// [`Message::proxy_authorization`] give it.
    ///
    /// [`Message::authorization`]: crate::Message::authorization
    /// [`Message::proxy_authorization`]: crate::Message::proxy_authorization
    pub fn from_header(header: &AuthHeader<'_>) -> Result<Credentials, DigestError> {
        if !header.is_scheme("Digest") {
            return Err(DigestError::NotDigest);
        }
        let [
            username,
            username_ext,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            cnonce,
            opaque,
            qop,
            nc,
            userhash,
        ] = header.params().pick([
            "username",
            "username*",
            "realm",
            "nonce",
            "uri",
            "response",
            "algorithm",
            "cnonce",
            "opaque",
            "qop",
            "nc",
            "userhash",
        ]);
        let (username, extended_username) = match (username, username_ext) {
            (Some(u), None) => (owned(u), false),
            (None, Some(ext)) => (decode_ext_value(&ext.value())?, true),
            (Some(_), Some(_)) => return Err(DigestError::InvalidParam("username*")),
            (None, None) => return Err(DigestError::MissingParam("username")),
        };
        let algorithm = match algorithm {
            Some(a) => Some(Algorithm::parse(&a.value()).ok_or(DigestError::UnsupportedAlgorithm)?),
            None => None,
        };
        let qop = match qop {
            Some(q) => Some(Qop::parse(&q.value()).ok_or(DigestError::UnsupportedQop)?),
            None => None,
        };
        let nc = match nc {
            Some(n) => Some(parse_nc(&n.value()).ok_or(DigestError::InvalidParam("nc"))?),
            None => None,
        };
        let userhash = bool_param(userhash, "userhash")?;
        if userhash && extended_username {
            return Err(DigestError::InvalidParam("userhash"));
        }
        let req = |p: Option<AuthParam<'_>>, name: &'static str| {
            p.map(owned).ok_or(DigestError::MissingParam(name))
        };
        Ok(Credentials {
            username: Pii::new(username),
            extended_username,
            realm: Pii::new(req(realm, "realm")?),
            nonce: Pii::new(req(nonce, "nonce")?),
            uri: Pii::new(req(uri, "uri")?),
            response: Pii::new(req(response, "response")?),
            algorithm,
            cnonce: Pii::new(cnonce.map(owned)),
            opaque: Pii::new(opaque.map(owned)),
            qop,
            nc,
            userhash,
        })
    }

    /// Parses a credentials header value (`Digest username=...`): the same
    /// as [`AuthHeader::parse`] then [`Credentials::from_header`].
    pub fn parse(value: &str) -> Result<Credentials, DigestError> {
        Credentials::from_header(&AuthHeader::parse(value)?)
    }

    /// Parses a credentials header value given as bytes.
    pub fn parse_bytes(value: &[u8]) -> Result<Credentials, DigestError> {
        Credentials::from_header(&AuthHeader::parse_bytes(value)?)
    }

    /// The algorithm in force: MD5 when none is named.
    pub fn effective_algorithm(&self) -> Algorithm {
        self.algorithm.unwrap_or(Algorithm::Md5)
    }
}

/// `nc`: exactly 8 lower-case hex digits, not zero.
fn parse_nc(s: &str) -> Option<u32> {
    if s.len() != 8
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u32::from_str_radix(s, 16).ok().filter(|&n| n > 0)
}

/// Decodes an RFC 8187 ext-value (`UTF-8''percent%20encoded`).
fn decode_ext_value(s: &str) -> Result<String, DigestError> {
    let bad = DigestError::InvalidParam("username*");
    let (charset, rest) = s.split_once('\'').ok_or(bad.clone())?;
    let (_language, encoded) = rest.split_once('\'').ok_or(bad.clone())?;
    if !charset.eq_ignore_ascii_case("UTF-8") {
        return Err(bad);
    }
    let mut out = Vec::with_capacity(encoded.len());
    let mut bytes = encoded.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(|c| char::from(c).to_digit(16));
            let lo = bytes.next().and_then(|c| char::from(c).to_digit(16));
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(u8::try_from(h * 16 + l).map_err(|_| bad.clone())?),
                _ => return Err(bad),
            }
        } else if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b);
        } else {
            return Err(bad);
        }
    }
    String::from_utf8(out).map_err(|_| bad)
}

fn encode_ext_value(s: &str) -> String {
    let mut out = String::from("UTF-8''");
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push_str(&data_encoding::HEXUPPER.encode(&[b]));
        }
    }
    out
}

/// Writes the header value, starting with `Digest`.
impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest")?;
        let mut w = Writer { f, first: true };
        if self.extended_username {
            w.raw("username*", &encode_ext_value(self.username.expose()))?;
        } else {
            w.quoted("username", self.username.expose())?;
        }
        w.quoted("realm", self.realm.expose())?;
        w.quoted("nonce", self.nonce.expose())?;
        w.quoted("uri", self.uri.expose())?;
        w.quoted("response", self.response.expose())?;
        if let Some(a) = self.algorithm {
            w.raw("algorithm", a.name())?;
        }
        if let Some(c) = self.cnonce.expose() {
            w.quoted("cnonce", c)?;
        }
        if let Some(o) = self.opaque.expose() {
            w.quoted("opaque", o)?;
        }
        if let Some(q) = self.qop {
            w.raw("qop", q.name())?;
        }
        if let Some(n) = self.nc {
            w.raw("nc", &format!("{n:08x}"))?;
        }
        if self.userhash {
            w.raw("userhash", "true")?;
        }
        Ok(())
    }
}

/// `H(username:realm)` in lower-case hex: the hashed user name of RFC 7616
/// section 3.4.4, for looking users up when `userhash=true`.
pub fn user_hash(algorithm: Algorithm, username: &str, realm: &str) -> String {
    hex_hash(algorithm, &[username.as_bytes(), b":", realm.as_bytes()])
        .as_str()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_value_round_trip() {
        let enc = encode_ext_value("J\u{e4}s\u{f8}n Doe");
        assert_eq!(enc, "UTF-8''J%C3%A4s%C3%B8n%20Doe");
        assert_eq!(decode_ext_value(&enc).unwrap(), "J\u{e4}s\u{f8}n Doe");
        assert!(decode_ext_value("ISO-8859-1''x").is_err());
        assert!(decode_ext_value("UTF-8''%C3").is_err());
    }

    #[test]
    fn nc_is_eight_lower_hex_digits() {
        assert_eq!(parse_nc("0000000a"), Some(10));
        assert_eq!(parse_nc("0000000A"), None);
        assert_eq!(parse_nc("00000000"), None);
        assert_eq!(parse_nc("1"), None);
    }
}
