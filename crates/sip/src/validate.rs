//! Validation of a parsed message, as a server or proxy does it before
//! acting on a request (RFC 3261 sections 8.2 and 16.3), mapped to the
//! status code to answer with.

use crate::error::ParseError;
use crate::header::Method;
use crate::message::Message;
use crate::name::HeaderName;
use crate::uri::Uri;

/// Who validates: a user agent server checks `Require`; a proxy checks
/// `Proxy-Require` and `Max-Forwards`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// A user agent server (or registrar).
    #[default]
    Uas,
    /// A proxy that forwards the request.
    Proxy,
}

/// What the validating element supports.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ValidationPolicy<'a> {
    /// The role.
    pub role: Role,
    /// Option tags understood (for `Require` / `Proxy-Require`).
    pub extensions: &'a [&'a str],
    /// URI schemes accepted in the Request-URI (case-insensitive).
    pub schemes: &'a [&'a str],
    /// Most Via values accepted.
    pub max_vias: usize,
    /// Body types a user agent server understands (`type/subtype`,
    /// case-insensitive; `type/*` and `*/*` match any subtype or type).
    /// A request whose body has another type draws 415 with these in
    /// `Accept` (RFC 3261 section 8.2.3). Default: `application/sdp`.
    pub body_types: &'a [&'a str],
    /// Content codings a user agent server understands besides `identity`.
    /// A request whose body uses another draws 415 with these in
    /// `Accept-Encoding` (RFC 3261 section 8.2.3). Default: none.
    pub encodings: &'a [&'a str],
}

impl Default for ValidationPolicy<'_> {
    fn default() -> Self {
        Self {
            role: Role::Uas,
            extensions: &[],
            schemes: &["sip", "sips", "tel"],
            max_vias: 64,
            body_types: &["application/sdp"],
            encodings: &[],
        }
    }
}

impl<'a> ValidationPolicy<'a> {
    /// A policy for a user agent server supporting `extensions`.
    pub fn uas(extensions: &'a [&'a str]) -> Self {
        Self {
            extensions,
            ..Self::default()
        }
    }
    /// A policy for a proxy supporting `extensions`.
    pub fn proxy(extensions: &'a [&'a str]) -> Self {
        Self {
            role: Role::Proxy,
            extensions,
            ..Self::default()
        }
    }
    /// This policy with the body types understood (see
    /// [`ValidationPolicy::body_types`]).
    #[must_use]
    pub fn with_body_types(mut self, body_types: &'a [&'a str]) -> Self {
        self.body_types = body_types;
        self
    }
    /// This policy with the content codings understood (see
    /// [`ValidationPolicy::encodings`]).
    #[must_use]
    pub fn with_encodings(mut self, encodings: &'a [&'a str]) -> Self {
        self.encodings = encodings;
        self
    }
}

/// What to do with a message that passed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a proxy must not forward a request it is told to answer locally"]
#[non_exhaustive]
pub enum Verdict {
    /// Go on: a user agent server processes the request, a proxy may
    /// forward it (after decrementing Max-Forwards).
    Accept,
    /// A proxy got an OPTIONS request with `Max-Forwards: 0`: it must not
    /// forward it, and may answer it itself with its own capabilities
    /// (RFC 3261 section 16.3, item 2). Any other request in that state
    /// is refused with [`Invalid::TooManyHops`] (483).
    AnswerLocally,
}

/// Why a message is not acceptable, with the status code to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Invalid {
    /// The SIP version is not 2.0.
    #[error("unsupported SIP version")]
    Version,
    /// A control character or stray CR in the header section.
    #[error("illegal character in the header section at offset {offset}")]
    IllegalCharacter {
        /// Byte offset in the message.
        offset: usize,
    },
    /// A mandatory header field is missing.
    #[error("missing mandatory {0} header field")]
    MissingHeader(&'static str),
    /// A header field that may appear once appears more often.
    #[error("{0} header field appears more than once")]
    DuplicateHeader(&'static str),
    /// A header field could not be decoded.
    #[error(transparent)]
    Malformed(#[from] ParseError),
    /// The CSeq method differs from the request method.
    #[error("CSeq method does not match the request method")]
    CSeqMethodMismatch,
    /// The Request-URI scheme is not supported.
    #[error("unsupported Request-URI scheme")]
    UnsupportedScheme,
    /// `Require` (or `Proxy-Require` for a proxy) names unsupported extensions;
    /// the response carries them in `Unsupported`.
    #[error("{} unsupported extension(s) required", unsupported.len())]
    BadExtension {
        /// The unsupported option tags, for the `Unsupported` header field.
        unsupported: Vec<String>,
    },
    /// Max-Forwards reached zero at a proxy.
    #[error("too many hops")]
    TooManyHops,
    /// More Via values than the policy allows.
    #[error("more than {limit} Via values")]
    TooManyVias {
        /// The limit.
        limit: usize,
    },
    /// The Request-URI carries URI headers, which RFC 3261 section 19.1.1
    /// does not allow there.
    #[error("the Request-URI carries URI headers")]
    HeadersInRequestUri,
    /// The body has a type the user agent server does not understand
    /// (RFC 3261 section 8.2.3); the 415 response lists the understood
    /// types in `Accept`.
    #[error("unsupported body type")]
    UnsupportedMediaType {
        /// The value of the `Accept` header field of the response.
        accept: String,
    },
    /// The body uses a content coding the user agent server does not
    /// understand (RFC 3261 section 8.2.3); the 415 response lists the
    /// understood codings in `Accept-Encoding`.
    #[error("unsupported content coding")]
    UnsupportedEncoding {
        /// The value of the `Accept-Encoding` header field of the response.
        accept_encoding: String,
    },
}

impl Invalid {
    /// The status code to answer with.
    pub fn status_code(&self) -> u16 {
        match self {
            Invalid::Version => 505,
            Invalid::UnsupportedScheme => 416,
            Invalid::BadExtension { .. } => 420,
            Invalid::TooManyHops => 483,
            Invalid::TooManyVias { .. } => 513,
            Invalid::UnsupportedMediaType { .. } | Invalid::UnsupportedEncoding { .. } => 415,
            Invalid::Malformed(e) => e.status_code(),
            _ => 400,
        }
    }

    /// The response a server sends for this problem: status code and reason
    /// phrase, Via, From, To, Call-ID and CSeq copied from `request`, a To
    /// tag added; for 420 the `Unsupported` header field listing the
    /// extensions (RFC 3261 section 8.2.2.3); for 415 `Accept` or
    /// `Accept-Encoding` listing what is understood (section 8.2.3).
    pub fn response_to(
        &self,
        request: &Message,
        to_tag: &str,
    ) -> Result<crate::builder::MessageBuilder, ParseError> {
        let mut b = crate::builder::MessageBuilder::response_to(
            request,
            self.status_code(),
            self.reason_phrase(),
        )?
        .to_tag(to_tag)?;
        match self {
            Invalid::BadExtension { unsupported } => {
                b = b.header("Unsupported", &unsupported.join(", "))?;
            }
            Invalid::UnsupportedMediaType { accept } => b = b.header("Accept", accept)?,
            Invalid::UnsupportedEncoding { accept_encoding } => {
                b = b.header("Accept-Encoding", accept_encoding)?;
            }
            _ => {}
        }
        Ok(b)
    }

    /// The reason phrase that goes with [`Invalid::status_code`].
    pub fn reason_phrase(&self) -> &'static str {
        match self.status_code() {
            413 => "Request Entity Too Large",
            414 => "Request-URI Too Long",
            415 => "Unsupported Media Type",
            416 => "Unsupported URI Scheme",
            420 => "Bad Extension",
            483 => "Too Many Hops",
            505 => "Version Not Supported",
            513 => "Message Too Large",
            _ => "Bad Request",
        }
    }
}

/// Refuses control characters and bare CR or LF in the header section.
///
/// A control character other than CR and LF is legal in one place only: as
/// the escaped character of a quoted-pair inside a quoted string
/// (RFC 3261 section 25.1: `quoted-pair = "\\" (%x00-09 / %x0B-0C /
/// %x0E-7F)`), as in a display name `"NUL:\<00>"` (RFC 4475 section 3.1.1.2).
fn check_chars(msg: &Message) -> Result<(), Invalid> {
    let head = msg.head().as_bytes();
    let mut prev = 0u8;
    let mut quoted = false;
    let mut i = 0;
    while let Some(&b) = head.get(i) {
        // A line that does not start with white space starts a new header
        // field (or the empty line): no quoted string runs across it.
        if prev == b'\n' && !matches!(b, b' ' | b'\t') {
            quoted = false;
        }
        let bad = match b {
            b'\t' => false,
            b'\n' => prev != b'\r',
            b'\r' => head.get(i + 1) != Some(&b'\n'),
            0..=0x1f | 0x7f => true,
            b'"' => {
                quoted = !quoted;
                false
            }
            // Only relaxes: a backslash before anything else is checked as
            // an ordinary character (header values other than quoted
            // strings may hold one).
            b'\\' if quoted => match head.get(i + 1) {
                Some(&e) if e < 0x80 && e != b'\r' && e != b'\n' => {
                    prev = e;
                    i += 2;
                    continue;
                }
                _ => false,
            },
            _ => false,
        };
        if bad {
            return Err(Invalid::IllegalCharacter { offset: i });
        }
        prev = b;
        i += 1;
    }
    Ok(())
}

/// Validates `msg` under `policy`: the first problem found, in the order a
/// server checks them (RFC 3261 section 8.2), or what to do with it.
///
/// A proxy must act on the [`Verdict`]: an OPTIONS request with
/// `Max-Forwards: 0` passes as [`Verdict::AnswerLocally`], never to be
/// forwarded; any other request with `Max-Forwards: 0` draws 483.
///
/// Requests and responses both need Via, From, To, Call-ID and CSeq (a
/// request without Max-Forwards passes, as RFC 3261 section 16.3 says; a
/// malformed one does not). Parsing already refused what cannot be
/// delimited (bad Content-Length, truncated body, limits).
pub fn validate(msg: &Message, policy: &ValidationPolicy<'_>) -> Result<Verdict, Invalid> {
    check_chars(msg)?;
    if msg.version() != "SIP/2.0" {
        return Err(Invalid::Version);
    }
    let mut seen = [0u8; 8];
    const SINGLE: [(HeaderName, &str); 8] = [
        (HeaderName::From, "From"),
        (HeaderName::To, "To"),
        (HeaderName::CallId, "Call-ID"),
        (HeaderName::CSeq, "CSeq"),
        (HeaderName::MaxForwards, "Max-Forwards"),
        (HeaderName::ContentLength, "Content-Length"),
        (HeaderName::ContentType, "Content-Type"),
        (HeaderName::Expires, "Expires"),
    ];
    for field in msg.headers() {
        if !field.name.is_single_valued() {
            continue;
        }
        if let Some(i) = SINGLE.iter().position(|(n, _)| *n == field.name) {
            if let Some(count) = seen.get_mut(i) {
                *count = count.saturating_add(1);
                if *count > 1 {
                    return Err(Invalid::DuplicateHeader(
                        SINGLE.get(i).map_or("", |(_, s)| s),
                    ));
                }
            }
        } else if msg.header_values(field.name).nth(1).is_some() {
            return Err(Invalid::DuplicateHeader(
                field.name.canonical().unwrap_or(""),
            ));
        }
    }
    for (name, canonical) in [
        (HeaderName::Via, "Via"),
        (HeaderName::From, "From"),
        (HeaderName::To, "To"),
        (HeaderName::CallId, "Call-ID"),
        (HeaderName::CSeq, "CSeq"),
    ] {
        if msg.header(name).is_none() {
            return Err(Invalid::MissingHeader(canonical));
        }
    }
    let mut vias = 0;
    for via in msg.vias() {
        via?;
        vias += 1;
        if vias > policy.max_vias {
            return Err(Invalid::TooManyVias {
                limit: policy.max_vias,
            });
        }
    }
    msg.from()?;
    msg.to()?;
    msg.call_id()?;
    let cseq = msg.cseq()?;
    msg.content_type()?;
    msg.expires()?;
    for c in msg.contacts() {
        c?;
    }
    for r in msg.routes().chain(msg.record_routes()) {
        r?;
    }
    let Some(method) = msg.method() else {
        return Ok(Verdict::Accept);
    };
    if cseq.method != method {
        return Err(Invalid::CSeqMethodMismatch);
    }
    // A request without Max-Forwards passes (RFC 3261 section 16.3, step 3).
    let max_forwards = msg.max_forwards()?;
    // A request always has a Request-URI.
    let uri_text = msg.request_uri_str().unwrap_or("");
    match Uri::parse(uri_text) {
        Ok(uri) => {
            if !policy
                .schemes
                .iter()
                .any(|s| s.eq_ignore_ascii_case(uri.scheme()))
            {
                return Err(Invalid::UnsupportedScheme);
            }
            if uri.as_sip().is_some_and(|u| u.headers().is_some()) {
                return Err(Invalid::HeadersInRequestUri);
            }
        }
        Err(e) => {
            let scheme = uri_text.split_once(':').map_or("", |(s, _)| s);
            let is_scheme = scheme
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            if is_scheme
                && !policy
                    .schemes
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(scheme))
            {
                return Err(Invalid::UnsupportedScheme);
            }
            return Err(Invalid::Malformed(match e {
                ParseError::Uri { .. } => ParseError::StartLine {
                    what: "malformed Request-URI",
                },
                other => other,
            }));
        }
    }
    let verdict = if policy.role == Role::Proxy && max_forwards == Some(0) {
        if method != Method::Options {
            return Err(Invalid::TooManyHops);
        }
        Verdict::AnswerLocally
    } else {
        Verdict::Accept
    };
    if matches!(method, Method::Ack | Method::Cancel) {
        return Ok(verdict);
    }
    let required = match policy.role {
        Role::Uas => msg.require(),
        Role::Proxy => msg.proxy_require(),
    };
    let unsupported: Vec<String> = required
        .filter(|tag| {
            !policy
                .extensions
                .iter()
                .any(|e| e.eq_ignore_ascii_case(tag))
        })
        .map(str::to_owned)
        .collect();
    if !unsupported.is_empty() {
        return Err(Invalid::BadExtension { unsupported });
    }
    if policy.role == Role::Uas {
        check_body(msg, policy)?;
    }
    Ok(verdict)
}

/// RFC 3261 section 8.2.3: a body the user agent server cannot read draws
/// 415. A non-empty body needs a Content-Type (section 20.15). A body whose
/// Content-Disposition says `handling=optional` may be ignored instead
/// (section 20.11), so it is never refused.
fn check_body(msg: &Message, policy: &ValidationPolicy<'_>) -> Result<(), Invalid> {
    if msg.body().is_empty() {
        return Ok(());
    }
    let Some(media) = msg.content_type()? else {
        return Err(Invalid::MissingHeader("Content-Type"));
    };
    let optional = msg.header(HeaderName::ContentDisposition).is_some_and(|d| {
        let params = crate::parse::split1(d, b';').map_or("", |(_, p)| p);
        crate::parse::Params::new(params)
            .value("handling")
            .is_some_and(|h| h.eq_ignore_ascii_case("optional"))
    });
    if optional {
        return Ok(());
    }
    let understood = policy.body_types.iter().any(|t| {
        let (kind, sub) = t.split_once('/').unwrap_or((t, ""));
        (kind == "*" || kind.eq_ignore_ascii_case(media.kind))
            && (sub == "*" || sub.eq_ignore_ascii_case(media.subtype))
    });
    if !understood {
        return Err(Invalid::UnsupportedMediaType {
            accept: policy.body_types.join(", "),
        });
    }
    let unknown_coding = msg.list(HeaderName::ContentEncoding).any(|coding| {
        !coding.eq_ignore_ascii_case("identity")
            && !policy
                .encodings
                .iter()
                .any(|e| e.eq_ignore_ascii_case(coding))
    });
    if unknown_coding {
        let mut accept = vec!["identity"];
        accept.extend(policy.encodings.iter().copied());
        return Err(Invalid::UnsupportedEncoding {
            accept_encoding: accept.join(", "),
        });
    }
    Ok(())
}
