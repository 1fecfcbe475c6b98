//! URIs: `sip` and `sips` (RFC 3261 section 19.1), `tel` (RFC 3966), and any
//! other absolute URI kept opaque.
//!
//! Parsed URIs borrow from the text they were parsed from; user, password,
//! parameters and headers keep their `%XX` escapes, decoded on demand.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use carevox_redact::Pii;

use crate::error::ParseError;
use crate::parse::{Params, percent_decode, split1};

/// A URI as found in a Request-URI or a name-addr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>),
    /// `tel:` (RFC 3966).
    Tel(TelUri<'a>),
    /// Any other absolute URI (`urn:`, `mailto:`, `http:` ...), kept as written.
    Other(OpaqueUri<'a>),
}

/// A `sip` or `sips` URI. `Debug` shows its shape only: user, password,
/// host, parameters and headers are PHI or secrets and print `<redacted>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    raw: Pii<&'a str>,
    secure: bool,
    user: Pii<Option<&'a str>>,
    password: Pii<Option<&'a str>>,
    host: Pii<Host<'a>>,
    port: Option<u16>,
    params: Params<'a>,
    headers: Pii<Option<&'a str>>,
}

/// The host of a SIP URI or Via sent-by. A phone's address or a domain
/// name is PHI: every variant holds its value in [`Pii`], so `Debug` shows
/// only which kind of host it is; `Display` writes it (for building
/// messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A domain name, as written.
    Name(Pii<&'a str>),
    /// An IPv4 address.
    Ipv4(Pii<Ipv4Addr>),
    /// An IPv6 reference (`[...]` in the text).
    Ipv6(Pii<Ipv6Addr>),
}

/// A `tel` URI (RFC 3966). The number is PHI: `Debug` redacts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelUri<'a> {
    raw: Pii<&'a str>,
    number: Pii<&'a str>,
    params: Params<'a>,
}

/// An absolute URI of a scheme this crate does not interpret. `Debug`
/// shows the scheme only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpaqueUri<'a> {
    raw: Pii<&'a str>,
    scheme: &'a str,
}

fn is_scheme(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

fn sip_letters(s: u8, i: u8, p: u8) -> bool {
    s.eq_ignore_ascii_case(&b's') && i.eq_ignore_ascii_case(&b'i') && p.eq_ignore_ascii_case(&b'p')
}

fn is_uri_char(b: u8) -> bool {
    crate::parse::is_class(b, crate::parse::URI)
}

impl<'a> Uri<'a> {
    /// Parses a URI (without surrounding `<>`).
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        // Fast path for the common `sip:` / `sips:` prefix, then one pass that
        // checks every character and finds the end of the userinfo.
        let b = s.as_bytes();
        let prefix = match b.get(..5) {
            Some([s0, i, p, b':', _]) if sip_letters(*s0, *i, *p) => Some((false, 4)),
            Some([s0, i, p, s1, b':'])
                if sip_letters(*s0, *i, *p) && s1.eq_ignore_ascii_case(&b's') =>
            {
                Some((true, 5))
            }
            _ => None,
        };
        if let Some((secure, skip)) = prefix {
            let rest = s.get(skip..).unwrap_or("");
            let mut at = None;
            for (i, &c) in rest.as_bytes().iter().enumerate() {
                if !is_uri_char(c) {
                    return Err(ParseError::uri("illegal character"));
                }
                if c == b'@' && at.is_none() {
                    at = Some(i);
                }
            }
            return SipUri::parse_rest(s, secure, rest, at).map(Uri::Sip);
        }
        if !b.iter().all(|c| is_uri_char(*c)) {
            return Err(ParseError::uri("illegal character"));
        }
        let (scheme, rest) = split1(s, b':').ok_or(ParseError::uri("no scheme"))?;
        if !is_scheme(scheme) {
            return Err(ParseError::uri("bad scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            let at = memchr::memchr(b'@', rest.as_bytes());
            SipUri::parse_rest(s, scheme.len() == 4, rest, at).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse_rest(s, rest).map(Uri::Tel)
        } else if rest.is_empty() {
            Err(ParseError::uri("empty scheme-specific part"))
        } else {
            Ok(Uri::Other(OpaqueUri {
                raw: Pii::new(s),
                scheme,
            }))
        }
    }

    /// The URI as written.
    pub fn as_str(&self) -> &'a str {
        match self {
            Uri::Sip(u) => u.as_str(),
            Uri::Tel(u) => u.as_str(),
            Uri::Other(u) => u.as_str(),
        }
    }

    /// The scheme as written.
    pub fn scheme(&self) -> &'a str {
        split1(self.as_str(), b':').map_or("", |(s, _)| s)
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// Equivalence: RFC 3261 19.1.4 for SIP, RFC 3966 section 4 for tel,
    /// case-insensitive scheme and exact text for others.
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        match (self, other) {
            (Uri::Sip(a), Uri::Sip(b)) => a.equivalent(b),
            (Uri::Tel(a), Uri::Tel(b)) => a.equivalent(b),
            (Uri::Other(a), Uri::Other(b)) => {
                a.scheme.eq_ignore_ascii_case(b.scheme)
                    && a.as_str().get(a.scheme.len()..) == b.as_str().get(b.scheme.len()..)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'a> OpaqueUri<'a> {
    /// The scheme as written.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }
    /// The whole URI as written.
    pub fn as_str(&self) -> &'a str {
        self.raw.into_inner()
    }
}

impl<'a> Host<'a> {
    /// Parses a host: IPv4 address, `[IPv6]` reference or domain name.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        if let Some(v6) = s.strip_prefix('[') {
            let v6 = v6
                .strip_suffix(']')
                .ok_or(ParseError::uri("unclosed IPv6 reference"))?;
            return v6
                .parse()
                .map(|a| Host::Ipv6(Pii::new(a)))
                .map_err(|_| ParseError::uri("bad IPv6 address"));
        }
        let (host, end) = scan_host(s)?;
        if end != s.len() {
            return Err(ParseError::uri("bad host name"));
        }
        Ok(host)
    }

    /// The address, if the host is an IP address.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::Ipv4(a) => Some(IpAddr::V4(a.into_inner())),
            Host::Ipv6(a) => Some(IpAddr::V6(a.into_inner())),
            Host::Name(_) => None,
        }
    }

    /// The domain name as written, if the host is one.
    pub fn name(&self) -> Option<&'a str> {
        match *self {
            Host::Name(n) => Some(n.into_inner()),
            Host::Ipv4(_) | Host::Ipv6(_) => None,
        }
    }

    /// RFC 3261 comparison: names case-insensitively, addresses by value.
    pub fn equivalent(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a.expose().eq_ignore_ascii_case(b.expose()),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n.expose()),
            Host::Ipv4(a) => write!(f, "{}", a.expose()),
            Host::Ipv6(a) => write!(f, "[{}]", a.expose()),
        }
    }
}

/// Scans a host name or IPv4 address at the start of `s`, up to the first
/// byte that cannot belong to one, in one pass: no empty label, no label
/// that starts or ends with `-`. Returns the host and its length.
fn scan_host(s: &str) -> Result<(Host<'_>, usize), ParseError> {
    let bad = ParseError::uri("bad host name");
    let b = s.as_bytes();
    let mut prev = b'.';
    let mut label_start = 0;
    let mut last_label = 0;
    let mut end = b.len();
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' {
            if prev == b'.' || prev == b'-' {
                return Err(bad);
            }
            last_label = label_start;
            label_start = i + 1;
        } else if c == b'-' {
            if prev == b'.' {
                return Err(bad);
            }
        } else if !c.is_ascii_alphanumeric() {
            end = i;
            break;
        }
        prev = c;
    }
    if end == 0 || end > 255 || prev == b'-' {
        return Err(bad);
    }
    // A trailing dot (a fully qualified name) ends an empty last label.
    let last = if prev == b'.' {
        last_label
    } else {
        label_start
    };
    let host = s.get(..end).ok_or(bad)?;
    if b.get(last).is_some_and(u8::is_ascii_digit) {
        let addr = host
            .parse()
            .map_err(|_| ParseError::uri("bad IPv4 address"))?;
        return Ok((Host::Ipv4(Pii::new(addr)), end));
    }
    Ok((Host::Name(Pii::new(host)), end))
}

/// Splits `host[:port]` (the host may be an IPv6 reference).
pub(crate) fn parse_hostport(s: &str) -> Result<(Host<'_>, Option<u16>), ParseError> {
    let (host, rest) = if s.starts_with('[') {
        let end = s
            .find(']')
            .ok_or(ParseError::uri("unclosed IPv6 reference"))?;
        let (h, rest) = s
            .split_at_checked(end + 1)
            .ok_or(ParseError::uri("bad host"))?;
        (Host::parse(h)?, rest)
    } else {
        let (h, end) = scan_host(s)?;
        (h, s.get(end..).unwrap_or(""))
    };
    if rest.is_empty() {
        return Ok((host, None));
    }
    let p = rest
        .strip_prefix(':')
        .ok_or(ParseError::uri("bad host or port"))?;
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::uri("bad port"));
    }
    let port = p.parse().map_err(|_| ParseError::uri("bad port"))?;
    Ok((host, Some(port)))
}

impl<'a> SipUri<'a> {
    /// Parses a `sip:` or `sips:` URI.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        match Uri::parse(s)? {
            Uri::Sip(u) => Ok(u),
            _ => Err(ParseError::uri("not a sip or sips URI")),
        }
    }

    fn parse_rest(
        raw: &'a str,
        secure: bool,
        rest: &'a str,
        at: Option<usize>,
    ) -> Result<Self, ParseError> {
        let (userinfo, hostpart) = match at {
            Some(i) => (rest.get(..i), rest.get(i + 1..).unwrap_or("")),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => match split1(ui, b':') {
                Some((u, p)) => (Some(u), Some(p)),
                None => (Some(ui), None),
            },
        };
        if let Some(u) = user
            && u.is_empty()
        {
            return Err(ParseError::uri("empty user"));
        }
        // The host part ends at the first `;` (parameters) or `?` (headers).
        let end = hostpart
            .as_bytes()
            .iter()
            .position(|c| *c == b';' || *c == b'?')
            .unwrap_or(hostpart.len());
        let (hostport, tail) = hostpart.split_at_checked(end).unwrap_or((hostpart, ""));
        let (params, headers) = match tail.as_bytes().first() {
            Some(b';') => {
                let tail = tail.get(1..).unwrap_or("");
                match split1(tail, b'?') {
                    Some((p, h)) => (p, Some(h)),
                    None => (tail, None),
                }
            }
            Some(_) => ("", tail.get(1..)),
            None => ("", None),
        };
        let (host, port) = parse_hostport(hostport)?;
        let params = Params::new(params);
        check_unique_params(params)?;
        Ok(SipUri {
            raw: Pii::new(raw),
            secure,
            user: Pii::new(user),
            password: Pii::new(password),
            host: Pii::new(host),
            port,
            params,
            headers: Pii::new(headers),
        })
    }

    /// The URI as written.
    pub fn as_str(&self) -> &'a str {
        self.raw.into_inner()
    }
    /// True for `sips:`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The user part as written (escapes kept).
    pub fn user(&self) -> Option<&'a str> {
        self.user.into_inner()
    }
    /// The user part with `%XX` escapes decoded.
    pub fn user_decoded(&self) -> Option<Cow<'a, [u8]>> {
        self.user().map(percent_decode)
    }
    /// The password as written. It is a secret: never log it.
    pub fn password(&self) -> Option<&'a str> {
        self.password.into_inner()
    }
    /// The host.
    pub fn host(&self) -> Host<'a> {
        self.host.into_inner()
    }
    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// The URI parameters (`;transport=tcp;lr`).
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The raw header part after `?`, if any.
    pub fn headers(&self) -> Option<&'a str> {
        self.headers.into_inner()
    }
    /// The `transport` parameter.
    pub fn transport(&self) -> Option<&'a str> {
        self.params.value("transport")
    }
    /// True when the `lr` (loose routing) parameter is present.
    pub fn lr(&self) -> bool {
        self.params.contains("lr")
    }
    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.value("maddr")
    }

    /// Equivalence, an equivalence relation (reflexive, symmetric and
    /// transitive): same scheme, user and password (escapes decoded,
    /// case-sensitive), host (names case-insensitive, addresses by value)
    /// and port, and the same set of parameters and of headers (names and
    /// values case-insensitive, escapes decoded, in any order).
    ///
    /// This is RFC 3261 section 19.1.4 but for one rule: the RFC ignores a
    /// parameter other than `user`, `ttl`, `method`, `maddr` and
    /// `transport` that only one of the URIs carries, which is not
    /// transitive (`sip:h;x=1` and `sip:h;x=2` would both match `sip:h`
    /// but not each other). Here every parameter counts. The RFC rule is
    /// [`SipUri::matches_rfc3261`].
    pub fn equivalent(&self, other: &SipUri<'_>) -> bool {
        self.same_base(other)
            && canonical_params(self.params) == canonical_params(other.params)
            && headers_equivalent(self.headers(), other.headers())
    }

    fn same_base(&self, other: &SipUri<'_>) -> bool {
        if self.secure != other.secure
            || self.port != other.port
            || !self.host().equivalent(&other.host())
        {
            return false;
        }
        let dec = |s: Option<&str>| s.map(|s| percent_decode(s).into_owned());
        dec(self.user()) == dec(other.user()) && dec(self.password()) == dec(other.password())
    }

    /// The comparison rule of RFC 3261 section 19.1.4 as written: a
    /// parameter other than `user`, `ttl`, `method`, `maddr` and
    /// `transport` that only one URI carries is ignored. Reflexive and
    /// symmetric but **not transitive**: use it to match a URI against one
    /// known URI (a Route against this proxy's own), never to group or
    /// deduplicate URIs (use [`SipUri::equivalent`]).
    pub fn matches_rfc3261(&self, other: &SipUri<'_>) -> bool {
        if !self.same_base(other) {
            return false;
        }
        let same = |a: &str, b: &str| percent_decode(a).eq_ignore_ascii_case(&percent_decode(b));
        for name in ["user", "ttl", "method", "maddr", "transport"] {
            match (self.params.get(name), other.params.get(name)) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    if !same(a.unwrap_or(""), b.unwrap_or("")) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        for p in self.params.iter() {
            if let Some(b) = other.params.get(p.name)
                && !same(p.value.into_inner().unwrap_or(""), b.unwrap_or(""))
            {
                return false;
            }
        }
        headers_equivalent(self.headers(), other.headers())
    }
}

/// Refuses a parameter name that appears twice (case-insensitively):
/// RFC 3261 section 19.1.4 compares a parameter by name, so a repeated one
/// has no defined meaning.
fn check_unique_params(params: Params<'_>) -> Result<(), ParseError> {
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for (index, p) in params.iter().enumerate() {
        let name = percent_decode(p.name).to_ascii_lowercase();
        if seen.contains(&name) {
            return Err(ParseError::DuplicateUriParameter { index });
        }
        seen.push(name);
    }
    Ok(())
}

/// Parameters as a sorted list of (name, value), names and values with
/// escapes decoded and ASCII letters in lower case; a flag has an empty
/// value (`;lr` is `;lr=`).
fn canonical_params(params: Params<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<_> = params
        .iter()
        .map(|p| {
            (
                percent_decode(p.name).to_ascii_lowercase(),
                percent_decode(p.value.into_inner().unwrap_or("")).to_ascii_lowercase(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Headers compared as a sorted list of (name, value), escapes decoded,
/// case-insensitive (RFC 3261 section 19.1.4: components not said to be
/// case-sensitive compare case-insensitively).
fn headers_equivalent(a: Option<&str>, b: Option<&str>) -> bool {
    let list = |h: Option<&str>| -> Vec<(Vec<u8>, Vec<u8>)> {
        let Some(h) = h else {
            return Vec::new();
        };
        let mut v: Vec<_> = h
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|s| {
                // A header without `=` has an empty value.
                let (n, v) = split1(s, b'=').unwrap_or((s, ""));
                (
                    percent_decode(n).to_ascii_lowercase(),
                    percent_decode(v).to_ascii_lowercase(),
                )
            })
            .collect();
        v.sort();
        v
    };
    list(a) == list(b)
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_visual_separator(b: u8) -> bool {
    matches!(b, b'-' | b'.' | b'(' | b')')
}

impl<'a> TelUri<'a> {
    fn parse_rest(raw: &'a str, rest: &'a str) -> Result<Self, ParseError> {
        let (number, params) = split1(rest, b';').unwrap_or((rest, ""));
        let params = Params::new(params);
        check_unique_params(params)?;
        if let Some(global) = number.strip_prefix('+') {
            let ok = global.bytes().any(|b| b.is_ascii_digit())
                && global
                    .bytes()
                    .all(|b| b.is_ascii_digit() || is_visual_separator(b));
            if !ok {
                return Err(ParseError::uri("bad global tel number"));
            }
        } else {
            let ok = number
                .bytes()
                .any(|b| b.is_ascii_hexdigit() || b == b'*' || b == b'#')
                && number.bytes().all(|b| {
                    b.is_ascii_hexdigit() || matches!(b, b'*' | b'#') || is_visual_separator(b)
                });
            if !ok {
                return Err(ParseError::uri("bad local tel number"));
            }
            if !params.contains("phone-context") {
                return Err(ParseError::uri("local tel number without phone-context"));
            }
        }
        Ok(TelUri {
            raw: Pii::new(raw),
            number: Pii::new(number),
            params,
        })
    }

    /// The URI as written.
    pub fn as_str(&self) -> &'a str {
        self.raw.into_inner()
    }
    /// The number as written, `+` and visual separators included.
    pub fn number(&self) -> &'a str {
        self.number.into_inner()
    }
    /// True for a global number (`+` prefix).
    pub fn is_global(&self) -> bool {
        self.number().starts_with('+')
    }
    /// The number without visual separators.
    pub fn digits(&self) -> String {
        self.number()
            .bytes()
            .filter(|b| !is_visual_separator(*b))
            .map(|b| char::from(b.to_ascii_uppercase()))
            .collect()
    }
    /// The parameters.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The `phone-context` parameter.
    pub fn phone_context(&self) -> Option<&'a str> {
        self.params.value("phone-context")
    }
    /// RFC 3966 section 4: same number without separators, same parameters
    /// (names case-insensitive, in any order).
    pub fn equivalent(&self, other: &TelUri<'_>) -> bool {
        if self.digits() != other.digits() {
            return false;
        }
        let norm = |p: Params<'_>| {
            let mut v: Vec<(String, String)> = p
                .iter()
                .map(|p| {
                    (
                        p.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(&percent_decode(
                            p.value.into_inner().unwrap_or(""),
                        ))
                        .to_ascii_lowercase(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        norm(self.params) == norm(other.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri<'_> {
        SipUri::parse(s).unwrap()
    }

    #[test]
    fn parts() {
        let u = sip("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?Subject=hi&X=%41");
        assert!(u.is_secure());
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.password(), Some("secret"));
        assert_eq!(
            u.host(),
            Host::Ipv6(Pii::new("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.lr());
        assert_eq!(u.headers(), Some("Subject=hi&X=%41"));
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
        assert_eq!(u.host(), Host::Name(Pii::new("example.com")));
        assert_eq!(
            sip("sip:10.0.0.1").host(),
            Host::Ipv4(Pii::new([10, 0, 0, 1].into()))
        );
    }

    #[test]
    fn bad() {
        for s in [
            "sip:",
            "sip:user@",
            "sip:host:99999",
            "sip:[::1",
            "sip:256.1.1.1",
            "sip:a b",
            "sip:-bad-.com",
            "tel:abc;x",
            "tel:1234",
            "nope",
            "1sip:x",
        ] {
            assert!(Uri::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let u = sip("sip:alice:hunter2@example.com");
        let shown = format!("{u:?} {:?}", Uri::Sip(u));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn hosts() {
        assert_eq!(
            Host::parse("example.com.").unwrap(),
            Host::Name(Pii::new("example.com."))
        );
        assert_eq!(
            Host::parse("a-b.c0").unwrap(),
            Host::Name(Pii::new("a-b.c0"))
        );
        assert_eq!(
            Host::parse("192.0.2.1").unwrap(),
            Host::Ipv4(Pii::new([192, 0, 2, 1].into()))
        );
        for bad in [
            "", ".", "a..b", "-a", "a-", "a-.b", "a.-b", "1.2.3.4.", "1.2.3", "a_b", "[::1",
        ] {
            assert!(Host::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_hostport("h.example:5060").unwrap(),
            (Host::Name(Pii::new("h.example")), Some(5060))
        );
        assert!(parse_hostport("h.example:").is_err());
        assert!(parse_hostport("h.example;x").is_err());
    }

    #[test]
    fn rfc3261_19_1_4_equivalent() {
        for (a, b) in [
            (
                "sip:%61lice@atlanta.com;transport=TCP",
                "sip:alice@AtLanTa.CoM;Transport=tcp",
            ),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
        ] {
            assert!(sip(a).equivalent(&sip(b)), "{a} vs {b}");
            assert!(sip(b).equivalent(&sip(a)), "{b} vs {a}");
            assert!(sip(a).matches_rfc3261(&sip(b)), "{a} vs {b}");
        }
        // A parameter in one URI only: ignored by the RFC rule, which is
        // not transitive, counted by the equivalence relation.
        for (a, b) in [
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        ] {
            assert!(sip(a).matches_rfc3261(&sip(b)), "{a} vs {b}");
            assert!(sip(b).matches_rfc3261(&sip(a)), "{b} vs {a}");
            assert!(!sip(a).equivalent(&sip(b)), "{a} vs {b}");
        }
    }

    #[test]
    fn repeated_parameters_are_refused() {
        for bad in [
            "sip:h;a=1;a=2",
            "sip:h;a=1;A=1",
            "sip:h;lr;lr",
            "sip:h;%61=1;a=2",
            "tel:+1234;ext=1;EXT=2",
        ] {
            assert_eq!(
                Uri::parse(bad),
                Err(ParseError::DuplicateUriParameter { index: 1 }),
                "{bad}"
            );
        }
    }

    #[test]
    fn rfc3261_19_1_4_not_equivalent() {
        for (a, b) in [
            (
                "SIP:ALICE@AtLanTa.CoM;Transport=udp",
                "sip:alice@AtLanTa.CoM;Transport=UDP",
            ),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            (
                "sip:bob@biloxi.com",
                "sip:bob@biloxi.com:6000;transport=tcp",
            ),
            (
                "sip:carol@chicago.com",
                "sip:carol@chicago.com?Subject=next%20meeting",
            ),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            (
                "sip:carol@chicago.com;security=on",
                "sip:carol@chicago.com;security=off",
            ),
        ] {
            assert!(!sip(a).equivalent(&sip(b)), "{a} vs {b}");
            assert!(!sip(a).matches_rfc3261(&sip(b)), "{a} vs {b}");
        }
    }

    #[test]
    fn tel() {
        let Uri::Tel(t) = Uri::parse("tel:+1-201-555-0123;ext=1").unwrap() else {
            panic!()
        };
        assert!(t.is_global());
        assert_eq!(t.digits(), "+12015550123");
        let Uri::Tel(u) = Uri::parse("tel:+1.201.555.0123;EXT=1").unwrap() else {
            panic!()
        };
        assert!(t.equivalent(&u));
        let Uri::Tel(l) = Uri::parse("tel:7042;phone-context=example.com").unwrap() else {
            panic!()
        };
        assert_eq!(l.phone_context(), Some("example.com"));
    }

    #[test]
    fn opaque() {
        let u = Uri::parse("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6").unwrap();
        assert!(matches!(u, Uri::Other(o) if o.scheme() == "urn"));
        assert!(
            u.equivalent(&Uri::parse("URN:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6").unwrap())
        );
    }
}
