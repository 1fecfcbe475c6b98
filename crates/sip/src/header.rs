//! Typed views of header field values.
//!
//! Every type here borrows from the message it was decoded from; nothing is
//! copied. Decoding is lazy: a value is parsed when its accessor is called.

use std::borrow::Cow;
use std::fmt;

use carevox_redact::Pii;

use crate::error::ParseError;
use crate::parse::{
    Params, find_top, is_lws, is_tchar, is_token, is_token_str, quoted_len, split1, trim, unquote,
};
use crate::uri::{Host, Uri, parse_hostport};

/// A SIP method. Methods are case-sensitive (RFC 3261 section 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method<'a> {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// REGISTER.
    Register,
    /// OPTIONS.
    Options,
    /// INFO (RFC 6086).
    Info,
    /// UPDATE (RFC 3311).
    Update,
    /// PRACK (RFC 3262).
    Prack,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other (extension) method token.
    Other(&'a str),
}

impl<'a> Method<'a> {
    /// Classifies a method token (case-sensitive).
    pub fn from_token(s: &'a str) -> Self {
        match s {
            "INVITE" => Self::Invite,
            "ACK" => Self::Ack,
            "BYE" => Self::Bye,
            "CANCEL" => Self::Cancel,
            "REGISTER" => Self::Register,
            "OPTIONS" => Self::Options,
            "INFO" => Self::Info,
            "UPDATE" => Self::Update,
            "PRACK" => Self::Prack,
            "SUBSCRIBE" => Self::Subscribe,
            "NOTIFY" => Self::Notify,
            "REFER" => Self::Refer,
            "MESSAGE" => Self::Message,
            "PUBLISH" => Self::Publish,
            other => Self::Other(other),
        }
    }

    /// The method token.
    pub fn as_str(&self) -> &'a str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Register => "REGISTER",
            Self::Options => "OPTIONS",
            Self::Info => "INFO",
            Self::Update => "UPDATE",
            Self::Prack => "PRACK",
            Self::Subscribe => "SUBSCRIBE",
            Self::Notify => "NOTIFY",
            Self::Refer => "REFER",
            Self::Message => "MESSAGE",
            Self::Publish => "PUBLISH",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Method<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Index of the first linear white space byte in `b`, or its length.
fn lws_pos(b: &[u8]) -> usize {
    b.iter().position(|c| is_lws(*c)).unwrap_or(b.len())
}

/// Splits `s` at its first run of linear white space.
fn split_word(s: &str) -> (&str, &str) {
    let i = lws_pos(s.as_bytes());
    let (a, b) = s.split_at_checked(i).unwrap_or((s, ""));
    (a, trim(b))
}

/// One Via value: `SIP/2.0/UDP host:port;branch=...`. `Debug` redacts the
/// host (a phone's address) and the parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    protocol: &'a str,
    version: &'a str,
    transport: &'a str,
    host: Pii<Host<'a>>,
    port: Option<u16>,
    params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parses one Via value.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        let err = |what| ParseError::header("Via", what);
        let (proto, rest) = split1(s, b'/').ok_or(err("no protocol"))?;
        let (version, rest) = split1(rest, b'/').ok_or(err("no transport"))?;
        let rest = trim(rest);
        let t_end = rest
            .bytes()
            .position(|b| !is_token(b))
            .unwrap_or(rest.len());
        let (transport, rest) = rest.split_at_checked(t_end).ok_or(err("no transport"))?;
        let (protocol, version) = (trim(proto), trim(version));
        if !is_token_str(protocol) || !is_token_str(version) || !is_token_str(transport) {
            return Err(err("bad protocol"));
        }
        if !rest.as_bytes().first().is_some_and(|b| is_lws(*b)) {
            return Err(err("no sent-by"));
        }
        let (sent_by, params) = match split1(rest, b';') {
            Some((a, p)) => (trim(a), p),
            None => (trim(rest), ""),
        };
        let (host, port) = parse_sent_by(sent_by).ok_or(err("bad sent-by"))?;
        Ok(Via {
            protocol,
            version,
            transport,
            host: Pii::new(host),
            port,
            params: Params::new(params),
        })
    }

    /// The protocol name (`SIP`).
    pub fn protocol(&self) -> &'a str {
        self.protocol
    }
    /// The protocol version (`2.0`).
    pub fn version(&self) -> &'a str {
        self.version
    }
    /// The transport (`UDP`, `TCP`, `TLS`, `WS`, ...), as written.
    pub fn transport(&self) -> &'a str {
        self.transport
    }
    /// The sent-by host.
    pub fn host(&self) -> Host<'a> {
        self.host.into_inner()
    }
    /// The sent-by port, if explicit.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// All parameters.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.value("branch")
    }
    /// The `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.params.value("received")
    }
    /// The `rport` parameter (RFC 3581): `Some(None)` when present without a
    /// value, `Some(Some(port))` with one, `None` when absent or not a port.
    pub fn rport(&self) -> Option<Option<u16>> {
        match self.params.get("rport")? {
            None => Some(None),
            Some(v) => v.parse().ok().map(Some),
        }
    }
    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.value("maddr")
    }
    /// The `ttl` parameter, if a number from 0 to 255.
    pub fn ttl(&self) -> Option<u8> {
        self.params.value("ttl").and_then(|v| v.parse().ok())
    }
}

/// `host [SWS ":" SWS port]`.
fn parse_sent_by(s: &str) -> Option<(Host<'_>, Option<u16>)> {
    if !s.bytes().any(is_lws) {
        return parse_hostport(s).ok();
    }
    let b = s.as_bytes();
    let host_end = if b.first() == Some(&b'[') {
        b.iter().position(|c| *c == b']')? + 1
    } else {
        b.iter()
            .position(|c| *c == b':' || is_lws(*c))
            .unwrap_or(b.len())
    };
    let (host, rest) = s.split_at_checked(host_end)?;
    let host = Host::parse(host).ok()?;
    let rest = trim(rest);
    if rest.is_empty() {
        return Some((host, None));
    }
    let port = trim(rest.strip_prefix(':')?);
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((host, Some(port.parse().ok()?)))
}

/// A name-addr or addr-spec with header parameters: the value of From, To,
/// Contact, Route, Record-Route, Path, Reply-To, Refer-To ... `Debug`
/// redacts the display name, the URI and the parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    display: Pii<Option<&'a str>>,
    uri: Uri<'a>,
    bracketed: bool,
    params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses a name-addr (`"Bob" <sip:bob@h>;tag=1`) or an addr-spec
    /// (`sip:bob@h;tag=1`, where the parameters belong to the header).
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        let s = trim(s);
        let b = s.as_bytes();
        let (display, rest) = if b.first() == Some(&b'"') {
            let n = quoted_len(b).ok_or(ParseError::uri("unclosed display name"))?;
            let (d, rest) = s
                .split_at_checked(n)
                .ok_or(ParseError::uri("bad display name"))?;
            (Some(d), trim(rest))
        } else if let Some(lt) = find_top(b, b'<') {
            let (d, rest) = s
                .split_at_checked(lt)
                .ok_or(ParseError::uri("bad display name"))?;
            let d = trim(d);
            if !d.bytes().all(|c| is_token(c) || is_lws(c) || !c.is_ascii()) {
                return Err(ParseError::uri("bad display name"));
            }
            ((!d.is_empty()).then_some(d), rest)
        } else {
            // An addr-spec without `<...>` (RFC 3261 section 20): what
            // follows the first `;` are header parameters, and the URI may
            // hold neither `?` (headers) nor `,`.
            let (uri, params) = match split1(s, b';') {
                Some((u, p)) => (trim(u), p),
                None => (s, ""),
            };
            if uri.bytes().any(|c| c == b'?' || c == b',') {
                return Err(ParseError::AddrSpecNeedsBrackets);
            }
            let params = Params::new(params);
            check_header_params(params).map_err(|e| match e {
                // `sip:user;par=x@host` written bare: the `;` starts header
                // parameters, which cannot hold an `@`.
                ParseError::HeaderParam { .. } => ParseError::AddrSpecNeedsBrackets,
                other => other,
            })?;
            return Ok(NameAddr {
                display: Pii::new(None),
                uri: Uri::parse(uri)?,
                bracketed: false,
                params,
            });
        };
        let inner = rest
            .strip_prefix('<')
            .ok_or(ParseError::uri("expected <"))?;
        let (uri, after) = split1(inner, b'>').ok_or(ParseError::uri("unclosed <"))?;
        let after = trim(after);
        let params = if after.is_empty() {
            ""
        } else {
            after
                .strip_prefix(';')
                .ok_or(ParseError::uri("junk after >"))?
        };
        let params = Params::new(params);
        check_header_params(params)?;
        Ok(NameAddr {
            display: Pii::new(display),
            uri: Uri::parse(uri)?,
            bracketed: true,
            params,
        })
    }

    /// The display name as written (quotes and escapes kept).
    pub fn display_name_raw(&self) -> Option<&'a str> {
        self.display.into_inner()
    }
    /// The display name with quotes and escapes removed.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display_name_raw().map(unquote)
    }
    /// The URI.
    pub fn uri(&self) -> &Uri<'a> {
        &self.uri
    }
    /// True when the URI was written in `<...>`.
    pub fn is_bracketed(&self) -> bool {
        self.bracketed
    }
    /// The header parameters (after the URI).
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The `tag` parameter (From, To).
    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag")
    }
}

/// Checks header parameters (RFC 3261 `generic-param`): the name a token,
/// the value a token, a host (IPv6 references included) or a quoted string.
fn check_header_params(params: Params<'_>) -> Result<(), ParseError> {
    for (index, p) in params.iter().enumerate() {
        let bad = ParseError::HeaderParam { index };
        if !is_token_str(p.name) {
            return Err(bad);
        }
        let Some(v) = p.value.into_inner() else {
            continue;
        };
        let ok = if v.starts_with('"') {
            quoted_len(v.as_bytes()) == Some(v.len())
        } else {
            !v.is_empty()
                && v.bytes()
                    .all(|c| is_token(c) || matches!(c, b'[' | b']' | b':'))
        };
        if !ok {
            return Err(bad);
        }
    }
    Ok(())
}

/// One Contact value: `*` or an address with parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (remove all bindings, RFC 3261 section 10.2.2).
    Star,
    /// An address.
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parses one Contact value.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        if trim(s) == "*" {
            return Ok(Contact::Star);
        }
        NameAddr::parse(s).map(Contact::Addr)
    }
    /// The address, unless this is `*`.
    pub fn addr(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Star => None,
            Contact::Addr(a) => Some(a),
        }
    }
    fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.addr()?.params.get(name)
    }
    /// The `expires` parameter (saturating at `u32::MAX`).
    pub fn expires(&self) -> Option<u32> {
        crate::parse::parse_u32_saturating(self.param("expires")??)
    }
    /// The `q` parameter in thousandths (`q=0.5` is 500), if well-formed.
    pub fn q(&self) -> Option<u16> {
        parse_qvalue(self.param("q")??)
    }
    /// The `+sip.instance` parameter with its quotes removed (RFC 5626).
    pub fn sip_instance(&self) -> Option<Cow<'a, str>> {
        self.param("+sip.instance")?.map(unquote)
    }
    /// The `gr` parameter (RFC 5627): `Some(None)` when present without a value.
    pub fn gr(&self) -> Option<Option<&'a str>> {
        self.param("gr")
    }
    /// The `reg-id` parameter (RFC 5626).
    pub fn reg_id(&self) -> Option<u32> {
        crate::parse::parse_u32(self.param("reg-id")??)
    }
}

fn parse_qvalue(s: &str) -> Option<u16> {
    let (int, frac) = split1(s, b'.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        let scale = match i {
            0 => 100,
            1 => 10,
            _ => 1,
        };
        thousandths += u16::from(b - b'0') * scale;
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The CSeq value: a sequence number and a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number (below 2^31, RFC 3261 section 8.1.1.5).
    pub seq: u32,
    /// The method.
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parses a CSeq value.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        let err = |what| ParseError::header("CSeq", what);
        let (num, method) = split_word(trim(s));
        let seq = crate::parse::parse_u32(num).ok_or(err("bad sequence number"))?;
        if seq >= 1 << 31 {
            return Err(err("sequence number too large"));
        }
        if !is_token_str(method) {
            return Err(err("bad method"));
        }
        Ok(CSeq {
            seq,
            method: Method::from_token(method),
        })
    }
}

/// A media type (Content-Type): `type/subtype;params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// The type (`application`).
    pub kind: &'a str,
    /// The subtype (`sdp`).
    pub subtype: &'a str,
    /// The parameters.
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses a media type.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        let err = ParseError::header("Content-Type", "bad media type");
        let (mt, params) = match split1(s, b';') {
            Some((a, p)) => (a, p),
            None => (s, ""),
        };
        let (kind, subtype) = split1(mt, b'/').ok_or(err.clone())?;
        let (kind, subtype) = (trim(kind), trim(subtype));
        if !is_token_str(kind) || !is_token_str(subtype) {
            return Err(err);
        }
        Ok(MediaType {
            kind,
            subtype,
            params: Params::new(params),
        })
    }

    /// True when type and subtype match, case-insensitively.
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// Longest authentication header value [`AuthHeader::parse`] and
/// [`AuthParams::parse`] accept, in bytes.
pub const MAX_AUTH_HEADER_LEN: usize = 8 * 1024;
/// Most parameters accepted in one authentication header value.
pub const MAX_AUTH_PARAMS: usize = 32;

/// Why an authentication header value does not follow the auth-param
/// grammar. Offsets count bytes from the start of the value; no variant
/// carries any of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthParamError {
    /// The value is longer than [`MAX_AUTH_HEADER_LEN`].
    #[error("value longer than {max} bytes")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// More parameters than [`MAX_AUTH_PARAMS`].
    #[error("more than {max} parameters")]
    TooManyParams {
        /// The limit.
        max: usize,
    },
    /// The value does not follow the grammar.
    #[error("syntax error at byte {offset}: expected {what}")]
    Syntax {
        /// Byte offset in the value.
        offset: usize,
        /// What was expected there.
        what: &'static str,
    },
    /// A parameter name appears twice (compared case-insensitively); RFC
    /// 7235 section 2.2 allows each name once.
    #[error("repeated parameter ending at byte {offset}")]
    DuplicateParam {
        /// Byte offset in the value, just after the second occurrence.
        offset: usize,
    },
}

/// A challenge or credentials (WWW-Authenticate, Proxy-Authenticate,
/// Authorization, Proxy-Authorization): an auth scheme, then either an
/// auth-param list or a token68 (RFC 7235 section 2.1, RFC 3261 section
/// 25.1). [`crate::auth::Challenge::from_header`] and
/// [`crate::auth::Credentials::from_header`] read the digest forms.
/// `Debug` shows the scheme and the parameter names only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthHeader<'a> {
    scheme: &'a str,
    token68: Pii<Option<&'a str>>,
    params: AuthParams<'a>,
}

impl<'a> AuthHeader<'a> {
    /// Parses `scheme [1*LWS (token68 / #auth-param)]`, checking the whole
    /// auth-param list: names are tokens and unique (case-insensitively),
    /// values are tokens or quoted strings with valid escapes, empty list
    /// items are skipped, at most [`MAX_AUTH_PARAMS`] parameters and
    /// [`MAX_AUTH_HEADER_LEN`] bytes. Linear white space, folded line breaks
    /// included, may surround `=` and `,`.
    pub fn parse(s: &'a str) -> Result<Self, AuthParamError> {
        check_len(s)?;
        let mut p = Scanner::new(s);
        p.skip_lws();
        let scheme = p.token().ok_or(AuthParamError::Syntax {
            offset: p.pos,
            what: "auth scheme",
        })?;
        let after_scheme = p.pos;
        p.skip_lws();
        if p.at_end() {
            return Ok(AuthHeader {
                scheme,
                token68: Pii::new(None),
                params: AuthParams::EMPTY,
            });
        }
        if p.pos == after_scheme {
            return Err(AuthParamError::Syntax {
                offset: p.pos,
                what: "white space after the auth scheme",
            });
        }
        if let Some(token68) = p.token68() {
            return Ok(AuthHeader {
                scheme,
                token68: Pii::new(Some(token68)),
                params: AuthParams::EMPTY,
            });
        }
        let params = AuthParams::check(p)?;
        Ok(AuthHeader {
            scheme,
            token68: Pii::new(None),
            params,
        })
    }

    /// Parses a header value given as bytes, which must be UTF-8.
    pub fn parse_bytes(b: &'a [u8]) -> Result<Self, AuthParamError> {
        if b.len() > MAX_AUTH_HEADER_LEN {
            return Err(AuthParamError::TooLong {
                max: MAX_AUTH_HEADER_LEN,
            });
        }
        let s = std::str::from_utf8(b).map_err(|e| AuthParamError::Syntax {
            offset: e.valid_up_to(),
            what: "UTF-8",
        })?;
        Self::parse(s)
    }

    /// The scheme as written (`Digest`); compare it case-insensitively.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// True when the scheme is `name`, compared case-insensitively.
    pub fn is_scheme(&self, name: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(name)
    }

    /// The token68 credential or challenge (`Bearer` tokens of RFC 8898),
    /// when the scheme is followed by one instead of parameters. It may be
    /// a secret: never log it.
    pub fn token68(&self) -> Option<&'a str> {
        self.token68.into_inner()
    }

    /// The parameters (empty for a token68 or a bare scheme).
    pub fn params(&self) -> AuthParams<'a> {
        self.params
    }
}

/// A checked auth-param list (RFC 7235 section 2.1, RFC 3261 section
/// 25.1): `name=token` and `name="quoted string"` items separated by
/// commas. Values may hold secrets (a digest `response`): never log them;
/// `Debug` shows the names only. Borrowed from the message, and iterating
/// allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthParams<'a> {
    raw: Pii<&'a str>,
    len: usize,
}

// Not a redaction (the list is already a `Pii`): this prints the parameter
// names, which are protocol tokens, and never a value.
impl fmt::Debug for AuthParams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|p| p.name)).finish()
    }
}

impl<'a> AuthParams<'a> {
    const EMPTY: AuthParams<'static> = AuthParams {
        raw: Pii::new(""),
        len: 0,
    };

    /// Parses a list without a scheme (the value of Authentication-Info),
    /// with the checks and limits of [`AuthHeader::parse`].
    pub fn parse(s: &'a str) -> Result<Self, AuthParamError> {
        check_len(s)?;
        Self::check(Scanner::new(s))
    }

    /// Checks the list from `p.pos` to the end of `p.s`.
    fn check(mut p: Scanner<'a>) -> Result<Self, AuthParamError> {
        let raw = p.s.get(p.pos..).unwrap_or_default();
        let mut names = [""; MAX_AUTH_PARAMS];
        let mut len = 0;
        while let Some(param) = p.next_param()? {
            let seen = names.get(..len).unwrap_or_default();
            if seen.iter().any(|n| n.eq_ignore_ascii_case(param.name)) {
                return Err(AuthParamError::DuplicateParam { offset: p.pos });
            }
            let slot = names.get_mut(len).ok_or(AuthParamError::TooManyParams {
                max: MAX_AUTH_PARAMS,
            })?;
            *slot = param.name;
            len += 1;
        }
        Ok(AuthParams {
            raw: Pii::new(raw),
            len,
        })
    }

    /// The list as in the message.
    pub fn as_str(&self) -> &'a str {
        self.raw.into_inner()
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The parameters in order.
    pub fn iter(&self) -> AuthParamIter<'a> {
        AuthParamIter {
            scanner: Scanner::new(self.raw.into_inner()),
        }
    }

    /// The parameter called `name` (case-insensitive); names are unique.
    pub fn get(&self, name: &str) -> Option<AuthParam<'a>> {
        self.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The parameters called `names` (case-insensitively), found in one
    /// pass: `pick(["realm", "nonce"])` is `[realm, nonce]`.
    pub fn pick<const N: usize>(&self, names: [&str; N]) -> [Option<AuthParam<'a>>; N] {
        let mut found = [None; N];
        for p in self.iter() {
            let i = names.iter().position(|n| n.eq_ignore_ascii_case(p.name));
            if let Some(slot) = i.and_then(|i| found.get_mut(i)) {
                *slot = Some(p);
            }
        }
        found
    }
}

impl<'a> IntoIterator for AuthParams<'a> {
    type Item = AuthParam<'a>;
    type IntoIter = AuthParamIter<'a>;
    fn into_iter(self) -> AuthParamIter<'a> {
        self.iter()
    }
}

/// Iterator over an [`AuthParams`] list.
#[derive(Clone)]
pub struct AuthParamIter<'a> {
    scanner: Scanner<'a>,
}

// Written by hand: the scanner borrows the raw list, which every parsing
// step reads; this prints the offset only.
impl fmt::Debug for AuthParamIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthParamIter")
            .field("offset", &self.scanner.pos)
            .finish()
    }
}

impl<'a> Iterator for AuthParamIter<'a> {
    type Item = AuthParam<'a>;

    fn next(&mut self) -> Option<AuthParam<'a>> {
        // The list was checked when the `AuthParams` was made.
        self.scanner.next_param().ok().flatten()
    }
}

/// One auth-param. `Debug` hides the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthParam<'a> {
    name: &'a str,
    raw: Pii<&'a str>,
}

impl<'a> AuthParam<'a> {
    /// The name as written; compare it case-insensitively.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The value as written: a token, or a quoted string with its quotes
    /// and escapes.
    pub fn raw_value(&self) -> &'a str {
        self.raw.into_inner()
    }

    /// True when the value is a quoted string.
    pub fn is_quoted(&self) -> bool {
        self.raw.expose().starts_with('"')
    }

    /// The value: a token as written, a quoted string without its quotes
    /// and escapes, a folded line break in it read as the white space that
    /// follows it. Borrowed unless the value holds an escape or a fold.
    pub fn value(&self) -> Cow<'a, str> {
        let raw = self.raw.into_inner();
        let Some(inner) = raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')) else {
            return Cow::Borrowed(raw);
        };
        if !inner.bytes().any(|b| matches!(b, b'\\' | b'\r' | b'\n')) {
            return Cow::Borrowed(inner);
        }
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                '\r' | '\n' => {}
                c => out.push(c),
            }
        }
        Cow::Owned(out)
    }
}

fn check_len(s: &str) -> Result<(), AuthParamError> {
    if s.len() > MAX_AUTH_HEADER_LEN {
        return Err(AuthParamError::TooLong {
            max: MAX_AUTH_HEADER_LEN,
        });
    }
    Ok(())
}

/// The one scanner of the auth-param grammar.
#[derive(Clone)]
struct Scanner<'a> {
    s: &'a str,
    pos: usize,
    /// A parameter was read: a comma or the end must come next.
    after_param: bool,
}

impl<'a> Scanner<'a> {
    fn new(s: &'a str) -> Self {
        Scanner {
            s,
            pos: 0,
            after_param: false,
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.s.as_bytes().get(self.pos..).unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.rest().first() == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_lws(&mut self) {
        self.pos += self.rest().iter().take_while(|b| is_lws(**b)).count();
    }

    /// An RFC 7230 token (RFC 3261 tokens and `#$&^|`).
    fn token(&mut self) -> Option<&'a str> {
        let n = self.rest().iter().take_while(|b| is_tchar(**b)).count();
        let t = self
            .s
            .get(self.pos..self.pos + n)
            .filter(|t| !t.is_empty())?;
        self.pos += n;
        Some(t)
    }

    /// A token68 that runs to the end of the value (trailing white space
    /// aside); the position is unchanged when there is none.
    fn token68(&mut self) -> Option<&'a str> {
        let rest = self.rest();
        let n = rest
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(b))
            .count();
        let n = n + rest.get(n..)?.iter().take_while(|b| **b == b'=').count();
        if n == 0 || !rest.get(n..)?.iter().all(|b| is_lws(*b)) {
            return None;
        }
        let t = self.s.get(self.pos..self.pos + n)?;
        self.pos = self.s.len();
        Some(t)
    }

    /// The length of the quoted string that starts at the position, quotes
    /// included: `qdtext` is white space, a folded line break, printable
    /// ASCII or non-ASCII UTF-8; `quoted-pair` escapes an ASCII byte other
    /// than CR and LF.
    fn quoted_len(&self) -> Result<usize, AuthParamError> {
        match self.plain_quoted_len() {
            Some(n) => Ok(n),
            None => self.quoted_len_slow(),
        }
    }

    /// The common case of [`Scanner::quoted_len`]: no control character
    /// but HTAB and no fold. Jumps from one quote or backslash to the next
    /// and checks the text between in one pass. `None` sends the string to
    /// the byte-by-byte scan, which also says where an error is.
    fn plain_quoted_len(&self) -> Option<usize> {
        let b = self.rest();
        let mut i = 1;
        loop {
            let tail = b.get(i..)?;
            let j = memchr::memchr2(b'"', b'\\', tail)?;
            let text = tail.get(..j)?;
            if text
                .iter()
                .any(|c| (*c < 0x20 && *c != b'\t') || *c == 0x7f)
            {
                return None;
            }
            i += j;
            match (b.get(i)?, b.get(i + 1)) {
                (b'"', _) => return Some(i + 1),
                (_, Some(c)) if c.is_ascii() && (*c >= 0x20 || *c == b'\t') && *c != 0x7f => i += 2,
                _ => return None,
            }
        }
    }

    fn quoted_len_slow(&self) -> Result<usize, AuthParamError> {
        let b = self.rest();
        let err = |i: usize, what| AuthParamError::Syntax {
            offset: self.pos + i,
            what,
        };
        let mut i = 1;
        loop {
            match b.get(i) {
                None => return Err(err(i, "closing quote")),
                Some(b'"') => return Ok(i + 1),
                Some(b'\\') => match b.get(i + 1) {
                    Some(c) if c.is_ascii() && *c != b'\r' && *c != b'\n' => i += 2,
                    _ => return Err(err(i, "an escaped ASCII character")),
                },
                Some(b'\r' | b'\n') => {
                    // A fold: [CR] LF, then at least one SP or HTAB.
                    let lf = i + usize::from(b.get(i) == Some(&b'\r'));
                    match (b.get(lf), b.get(lf + 1)) {
                        (Some(b'\n'), Some(b' ' | b'\t')) => i = lf + 2,
                        _ => return Err(err(i, "a folded line in a quoted string")),
                    }
                }
                Some(b'\t') => i += 1,
                Some(0..=0x1f | 0x7f) => return Err(err(i, "no control character")),
                Some(_) => i += 1,
            }
        }
    }

    /// The next parameter, past empty list items; `None` at the end.
    fn next_param(&mut self) -> Result<Option<AuthParam<'a>>, AuthParamError> {
        let syntax = |offset, what| AuthParamError::Syntax { offset, what };
        self.skip_lws();
        if self.after_param && !self.at_end() && !self.eat(b',') {
            return Err(syntax(self.pos, "',' between parameters"));
        }
        loop {
            self.skip_lws();
            if !self.eat(b',') {
                break;
            }
        }
        if self.at_end() {
            return Ok(None);
        }
        let name = self.token().ok_or(syntax(self.pos, "a parameter name"))?;
        self.skip_lws();
        if !self.eat(b'=') {
            return Err(syntax(self.pos, "'=' after a parameter name"));
        }
        self.skip_lws();
        let raw = if self.rest().first() == Some(&b'"') {
            let n = self.quoted_len()?;
            let v = self.s.get(self.pos..self.pos + n).unwrap_or_default();
            self.pos += n;
            v
        } else {
            self.token()
                .ok_or(syntax(self.pos, "a token or quoted-string value"))?
        };
        self.after_param = true;
        Ok(Some(AuthParam {
            name,
            raw: Pii::new(raw),
        }))
    }
}

/// A Retry-After value: seconds, an optional comment and parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter<'a> {
    /// Delta-seconds.
    pub seconds: u32,
    /// The comment, with its parentheses (free text: redacted in `Debug`).
    pub comment: Pii<Option<&'a str>>,
    /// The parameters (`duration`).
    pub params: Params<'a>,
}

impl<'a> RetryAfter<'a> {
    /// Parses a Retry-After value.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        let err = |what| ParseError::header("Retry-After", what);
        let s = trim(s);
        let d_end = s
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(s.len());
        let (num, rest) = s.split_at_checked(d_end).ok_or(err("bad value"))?;
        let seconds = crate::parse::parse_u32_saturating(num).ok_or(err("bad delta-seconds"))?;
        let mut rest = trim(rest);
        let mut comment = None;
        if rest.starts_with('(') {
            let end = comment_len(rest.as_bytes()).ok_or(err("unclosed comment"))?;
            let (c, r) = rest.split_at_checked(end).ok_or(err("bad comment"))?;
            comment = Some(c);
            rest = trim(r);
        }
        let params = if rest.is_empty() {
            ""
        } else {
            rest.strip_prefix(';').ok_or(err("junk after value"))?
        };
        Ok(RetryAfter {
            seconds,
            comment: Pii::new(comment),
            params: Params::new(params),
        })
    }
    /// The `duration` parameter.
    pub fn duration(&self) -> Option<u32> {
        crate::parse::parse_u32_saturating(self.params.value("duration")?)
    }
}

/// Length of a (possibly nested) comment starting with `(`.
fn comment_len(b: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 1,
            b'(' => depth += 1,
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// One Reason value (RFC 3326): `Q.850;cause=16;text="Normal"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason<'a> {
    /// The protocol (`SIP`, `Q.850`).
    pub protocol: &'a str,
    /// The parameters.
    pub params: Params<'a>,
}

impl<'a> Reason<'a> {
    /// Parses one Reason value.
    pub fn parse(s: &'a str) -> Result<Self, ParseError> {
        let (protocol, params) = match split1(s, b';') {
            Some((a, p)) => (trim(a), p),
            None => (trim(s), ""),
        };
        if !is_token_str(protocol) {
            return Err(ParseError::header("Reason", "bad protocol"));
        }
        Ok(Reason {
            protocol,
            params: Params::new(params),
        })
    }
    /// The `cause` parameter.
    pub fn cause(&self) -> Option<u16> {
        self.params.value("cause")?.parse().ok()
    }
    /// The `text` parameter, unquoted.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        self.params.value("text").map(unquote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_odd_whitespace() {
        let v = Via::parse("SIP  /   2.0  /UDP  192.0.2.2  :  5060 ;branch=z9hG4bK1;rport;received=1.2.3.4;ttl=16;maddr=224.2.0.1").unwrap();
        assert_eq!(v.transport(), "UDP");
        assert_eq!(v.host(), Host::Ipv4(Pii::new([192, 0, 2, 2].into())));
        assert_eq!(v.port(), Some(5060));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("1.2.3.4"));
        assert_eq!(v.ttl(), Some(16));
        assert_eq!(v.maddr(), Some("224.2.0.1"));
        let v = Via::parse("SIP/2.0/TLS [2001:db8::9]:5061;rport=1234").unwrap();
        assert_eq!(v.port(), Some(5061));
        assert_eq!(v.rport(), Some(Some(1234)));
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0UDP host").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n =
            NameAddr::parse(r#""J Rosenberg \"Jdrosen\"" <sip:jdrosen@example.com>;tag=98asjd8"#)
                .unwrap();
        assert_eq!(n.display_name().unwrap(), r#"J Rosenberg "Jdrosen""#);
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("sip:bob@example.com;tag=x").unwrap();
        assert_eq!(n.tag(), Some("x"));
        assert_eq!(n.uri().as_str(), "sip:bob@example.com");
        let n = NameAddr::parse("Bob Smith <sip:bob@example.com;transport=tcp>").unwrap();
        assert_eq!(n.display_name().unwrap(), "Bob Smith");
        assert_eq!(n.tag(), None);
        assert!(NameAddr::parse("<sip:bob@example.com").is_err());
        assert!(NameAddr::parse(r#""unterminated <sip:x@y>"#).is_err());
    }

    #[test]
    fn contact_params() {
        let c = Contact::parse(
            r#"<sip:a@b>;expires=3600;q=0.7;+sip.instance="<urn:uuid:1>";gr;reg-id=1"#,
        )
        .unwrap();
        assert_eq!(c.expires(), Some(3600));
        assert_eq!(c.q(), Some(700));
        assert_eq!(c.sip_instance().unwrap(), "<urn:uuid:1>");
        assert_eq!(c.gr(), Some(None));
        assert_eq!(c.reg_id(), Some(1));
        assert_eq!(Contact::parse(" * ").unwrap(), Contact::Star);
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("1.5"), None);
    }

    #[test]
    fn cseq_and_friends() {
        let c = CSeq::parse("4711   INVITE").unwrap();
        assert_eq!(c.seq, 4711);
        assert_eq!(c.method, Method::Invite);
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("1").is_err());
        let r = RetryAfter::parse("18000 (in a (nested) meeting) ;duration=3600").unwrap();
        assert_eq!(r.seconds, 18000);
        assert_eq!(r.duration(), Some(3600));
        let r = Reason::parse(r#"Q.850 ;cause=16 ;text="Terminated""#).unwrap();
        assert_eq!(r.cause(), Some(16));
        assert_eq!(r.text().unwrap(), "Terminated");
        let m = MediaType::parse("application / SDP ; charset=utf-8").unwrap();
        assert!(m.is("application", "sdp"));
    }

    #[test]
    fn auth() {
        let a = AuthHeader::parse(
            r#"Digest username="bob", realm="a,b", nonce="x\"y", uri="sip:h", response="00", algorithm=SHA-256, qop=auth, nc=00000001"#,
        )
        .unwrap();
        assert_eq!(a.scheme(), "Digest");
        assert!(a.is_scheme("DIGEST"));
        let p = a.params();
        assert_eq!(p.get("realm").unwrap().value(), "a,b");
        assert_eq!(p.get("nonce").unwrap().value(), r#"x"y"#);
        assert_eq!(p.get("nonce").unwrap().raw_value(), r#""x\"y""#);
        assert_eq!(p.get("ALGORITHM").unwrap().value(), "SHA-256");
        assert!(!p.get("qop").unwrap().is_quoted());
        assert_eq!(p.iter().count(), 8);
        assert_eq!(p.len(), 8);
        let [realm, missing, qop] = p.pick(["REALM", "stale", "qop"]);
        assert_eq!(realm.unwrap().name(), "realm");
        assert!(missing.is_none());
        assert_eq!(qop.unwrap().value(), "auth");
        let shown = format!("{a:?} {:?}", p.get("response").unwrap());
        assert!(!shown.contains("bob") && !shown.contains("00"), "{shown}");
        assert!(shown.contains("response"));
    }

    #[test]
    fn auth_params_whitespace_folds_and_empty_items() {
        let a = AuthHeader::parse(
            "Digest\r\n realm = \"a\\\"b\" ,nonce=\"xyz\",\r\n\tqop=\"auth,auth-int\",, ,algorithm=SHA-256,",
        )
        .unwrap();
        let p = a.params();
        assert_eq!(p.len(), 4);
        assert_eq!(p.get("REALM").unwrap().value(), "a\"b");
        assert_eq!(p.get("qop").unwrap().value(), "auth,auth-int");
        assert_eq!(p.get("algorithm").unwrap().value(), "SHA-256");
        // A folded line inside a quoted string reads as the white space after it.
        let a = AuthHeader::parse("Digest realm=\"a\r\n b\", nonce=\"c\n\td\"").unwrap();
        assert_eq!(a.params().get("realm").unwrap().value(), "a b");
        assert_eq!(a.params().get("nonce").unwrap().value(), "c\td");
        // HTAB is qdtext; a quoted-pair may escape any ASCII byte but CR and LF.
        let a = AuthHeader::parse("Digest a=\"x\ty\", b=\"\\\tz\", c=\"\\\u{1}\"").unwrap();
        assert_eq!(a.params().get("a").unwrap().value(), "x\ty");
        assert_eq!(a.params().get("b").unwrap().value(), "\tz");
        assert_eq!(a.params().get("c").unwrap().value(), "\u{1}");
        // Leading commas are empty items too.
        assert_eq!(
            AuthHeader::parse("Digest , ,a=1").unwrap().params().len(),
            1
        );
        // UTF-8 in quoted strings, RFC 7230 token characters in values.
        let a = AuthHeader::parse("Digest realm=\"caf\u{e9} \\\\ x\", x=a#b|c^d").unwrap();
        assert_eq!(a.params().get("realm").unwrap().value(), "caf\u{e9} \\ x");
        assert_eq!(a.params().get("x").unwrap().value(), "a#b|c^d");
        // An RFC 8187 `username*` value is a token.
        let a = AuthHeader::parse("Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe").unwrap();
        assert_eq!(
            a.params().get("username*").unwrap().value(),
            "UTF-8''J%C3%A4s%C3%B8n%20Doe"
        );
    }

    #[test]
    fn auth_schemes_alone_and_token68() {
        let a = AuthHeader::parse("Negotiate").unwrap();
        assert!(a.params().is_empty() && a.token68().is_none());
        let a = AuthHeader::parse("Bearer mF_9.B5f-4.1JqM/+x== \r\n").unwrap();
        assert_eq!(a.token68(), Some("mF_9.B5f-4.1JqM/+x=="));
        assert!(a.params().is_empty());
        assert!(!format!("{a:?}").contains("mF_9"));
        // A lone word, with or without trailing `=`, is a token68.
        assert_eq!(
            AuthHeader::parse("Digest realm").unwrap().token68(),
            Some("realm")
        );
        assert_eq!(
            AuthHeader::parse("Digest realm=").unwrap().token68(),
            Some("realm=")
        );
        // `name=value` is a parameter, not a token68 followed by junk.
        let a = AuthHeader::parse("Bearer realm=x").unwrap();
        assert_eq!(a.token68(), None);
        assert_eq!(a.params().get("realm").unwrap().value(), "x");
    }

    #[test]
    fn auth_params_refuse_malformed_lists() {
        use AuthParamError::*;
        let syntax = |offset| Syntax { offset, what: "" };
        let cases: &[(&str, AuthParamError)] = &[
            ("", syntax(0)),
            ("Digest realm=,", syntax(13)),
            ("Digest realm==x", syntax(13)),
            ("Digest realm=\"x", syntax(15)),
            ("Digest realm=\"x\" nonce=\"y\"", syntax(17)),
            ("Digest realm=\"x\"y", syntax(16)),
            ("Digest realm=a b", syntax(15)),
            ("Digest realm=<a,b>", syntax(13)),
            ("Digest stale, realm=x", syntax(12)),
            ("Digest \"realm\"=x", syntax(7)),
            ("Digestrealm=\"x\"", syntax(11)),
            ("Digest realm=\"a\u{1}\"", syntax(15)),
            ("Digest realm=\"a\r\nb\"", syntax(15)),
            ("Digest realm=\"a\rb\"", syntax(15)),
            ("Digest realm=\"a\\\r\n b\"", syntax(15)),
            ("Digest realm=\"a\\\u{e9}\"", syntax(15)),
            (
                "Digest realm=\"x\", Realm=\"y\"",
                DuplicateParam { offset: 27 },
            ),
        ];
        for (bad, want) in cases {
            let got = AuthHeader::parse(bad).unwrap_err();
            match (got, want) {
                (Syntax { offset, .. }, Syntax { offset: o, .. }) => {
                    assert_eq!(offset, *o, "{bad:?}: {got}")
                }
                (got, want) => assert_eq!(got, *want, "{bad:?}"),
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// The fast scan of a quoted string agrees with the byte-by-byte one
        /// whenever it answers.
        #[test]
        fn quoted_scans_agree(body in "[a\"\\\\\t\r\n \u{1}\u{7f}\u{e9}]{0,24}") {
            let s = format!("\"{body}");
            let p = Scanner::new(&s);
            if let Some(n) = p.plain_quoted_len() {
                proptest::prop_assert_eq!(p.quoted_len_slow(), Ok(n));
            }
        }
    }

    #[test]
    fn auth_params_limits() {
        let many: Vec<String> = (0..=MAX_AUTH_PARAMS).map(|i| format!("p{i}=1")).collect();
        let ok = format!("Digest {}", many[..MAX_AUTH_PARAMS].join(", "));
        assert_eq!(
            AuthHeader::parse(&ok).unwrap().params().len(),
            MAX_AUTH_PARAMS
        );
        assert_eq!(
            AuthHeader::parse(&format!("Digest {}", many.join(", "))),
            Err(AuthParamError::TooManyParams {
                max: MAX_AUTH_PARAMS
            })
        );
        let long = format!("Digest realm=\"{}\"", "a".repeat(MAX_AUTH_HEADER_LEN));
        assert_eq!(
            AuthHeader::parse(&long),
            Err(AuthParamError::TooLong {
                max: MAX_AUTH_HEADER_LEN
            })
        );
        assert_eq!(
            AuthHeader::parse_bytes(b"Digest realm=\"\xff\""),
            Err(AuthParamError::Syntax {
                offset: 14,
                what: "UTF-8"
            })
        );
        // Authentication-Info has no scheme.
        let info =
            AuthParams::parse("nextnonce=\"47364c23432d2e131a5fb210812c\", qop=auth").unwrap();
        assert_eq!(info.len(), 2);
        assert!(AuthParams::parse("qop=auth, QOP=auth").is_err());
    }
}
