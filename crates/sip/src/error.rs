//! Errors of the SIP message layer: parsing, typed header decoding and URIs.
//!
//! Messages say what was wrong and where (byte offset, header name) and never
//! echo the content of the message, which may carry names or phone numbers.

/// Why a SIP message, header or URI could not be parsed.
///
/// Each variant maps to the status code a server should answer with
/// ([`ParseError::status_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A stream does not yet hold a whole message: read more bytes.
    #[error("incomplete message: more bytes are needed")]
    Incomplete,
    /// The input is empty or holds only line breaks.
    #[error("empty message")]
    Empty,
    /// The message is larger than the configured limit.
    #[error("message of at least {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Size seen so far.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// More header fields than the configured limit.
    #[error("more than {limit} header fields")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// More Via header fields than the configured limit.
    #[error("more than {limit} Via header fields")]
    TooManyVias {
        /// The configured limit.
        limit: usize,
    },
    /// A line (start line or header field, folded lines included) is too long.
    #[error("line at offset {offset} exceeds the limit of {limit} bytes")]
    LineTooLong {
        /// Byte offset of the line in the message.
        offset: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The Request-URI is longer than the configured limit.
    #[error("Request-URI of {len} bytes exceeds the limit of {limit} bytes")]
    UriTooLong {
        /// Length of the Request-URI.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The body is larger than the configured limit.
    #[error("body of {len} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// Length announced or found.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The start line is not a valid Request-Line or Status-Line.
    #[error("malformed start line: {what}")]
    StartLine {
        /// What was wrong.
        what: &'static str,
    },
    /// A header line is malformed (no colon, empty or illegal name).
    #[error("malformed header field at offset {offset}")]
    HeaderLine {
        /// Byte offset of the line in the message.
        offset: usize,
    },
    /// The header section holds bytes that are not UTF-8 or are control characters.
    #[error("illegal character in the header section at offset {offset}")]
    IllegalCharacter {
        /// Byte offset of the first illegal byte.
        offset: usize,
    },
    /// The header section does not end with an empty line.
    #[error("the header section does not end with an empty line")]
    NoEndOfHeaders,
    /// The Content-Length value is not a number, or two values disagree.
    #[error("invalid Content-Length")]
    ContentLength,
    /// A stream message has no Content-Length (RFC 3261 section 18.3).
    #[error("a message on a stream transport needs a Content-Length")]
    MissingContentLength,
    /// The body is shorter than the Content-Length says.
    #[error("body of {available} bytes is shorter than Content-Length {expected}")]
    BodyTruncated {
        /// The Content-Length.
        expected: usize,
        /// Bytes present after the header section.
        available: usize,
    },
    /// A header field value could not be decoded as its type.
    #[error("malformed {header} header field: {what}")]
    Header {
        /// Canonical name of the header field.
        header: &'static str,
        /// What was wrong.
        what: &'static str,
    },
    /// An authentication header field (WWW-Authenticate, Authorization,
    /// Proxy-Authenticate, Proxy-Authorization, Authentication-Info) does
    /// not follow the auth-param grammar.
    #[error("malformed {header} header field: {error}")]
    AuthParams {
        /// Canonical name of the header field.
        header: &'static str,
        /// What was wrong, and where in the value.
        #[source]
        error: crate::header::AuthParamError,
    },
    /// A mandatory header field is absent.
    #[error("missing {header} header field")]
    MissingHeader {
        /// Canonical name of the header field.
        header: &'static str,
    },
    /// A URI is malformed.
    #[error("malformed URI: {what}")]
    Uri {
        /// What was wrong.
        what: &'static str,
    },
    /// A URI names the same parameter twice (names compare
    /// case-insensitively, escapes decoded). RFC 3261 section 19.1.4
    /// compares parameters by name, so the repeated one has no defined
    /// meaning: it is refused rather than guessed.
    #[error("URI parameter number {index} repeats an earlier parameter name")]
    DuplicateUriParameter {
        /// Position of the repeated parameter in the list, from 0.
        index: usize,
    },
    /// The Request-URI carries headers (`?Route=...`), which RFC 3261
    /// (section 19.1.1, table 1; sections 8.1.1.1 and 16.5) does not allow
    /// there.
    #[error("the Request-URI carries URI headers ('?'), which it may not")]
    HeadersInRequestUri,
    /// A From, To, Contact, Route or similar value written without `<...>`
    /// holds a `?` or `,` in its URI, or parameters that are not header
    /// parameters: RFC 3261 section 20 requires the name-addr form there.
    #[error("an address with '?', ',' or URI parameters must be written in <...>")]
    AddrSpecNeedsBrackets,
    /// A header parameter (after an address, `;name=value`) is not a
    /// token, or its value is not a token, host or quoted string.
    #[error("malformed header parameter number {index}")]
    HeaderParam {
        /// Position of the parameter in the list, from 0.
        index: usize,
    },
    /// A builder was given a name or value that would not produce a valid message.
    #[error("invalid {what} given to a message builder")]
    Builder {
        /// What was rejected.
        what: &'static str,
    },
}

impl ParseError {
    /// The status code a server should answer a request that failed this way.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::MessageTooLarge { .. }
            | Self::TooManyHeaders { .. }
            | Self::LineTooLong { .. } => 513,
            Self::UriTooLong { .. } => 414,
            Self::BodyTooLarge { .. } => 413,
            // A malformed URI is a syntax error like any other: 416 answers
            // only an unsupported Request-URI scheme (RFC 3261 section
            // 8.2.2.1), which validation reports as `Invalid::UnsupportedScheme`.
            _ => 400,
        }
    }

    pub(crate) fn header(header: &'static str, what: &'static str) -> Self {
        Self::Header { header, what }
    }

    pub(crate) fn uri(what: &'static str) -> Self {
        Self::Uri { what }
    }
}
