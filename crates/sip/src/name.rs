//! Header field names: the known ones, their compact forms, and the rest.

macro_rules! header_names {
    ($( $(#[$doc:meta])* $variant:ident = $canonical:literal, $lower:literal, $compact:literal, $single:literal; )*) => {
        /// A header field name: one RFC 3261 or extension header this crate
        /// knows, or [`HeaderName::Other`] for any other one (kept verbatim).
        ///
        /// Matching is case-insensitive and understands the compact forms
        /// (`v` for Via, `m` for Contact, `i` for Call-ID, ...).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
            /// Any header field this crate does not know by name.
            Other,
        }

        impl HeaderName {
            /// The canonical spelling, or `None` for [`HeaderName::Other`].
            pub fn canonical(self) -> Option<&'static str> {
                match self {
                    $( Self::$variant => Some($canonical), )*
                    Self::Other => None,
                }
            }

            /// The compact form (RFC 3261 section 7.3.3 and extensions), if any.
            pub fn compact(self) -> Option<char> {
                match self {
                    $( Self::$variant => { let c: char = $compact; if c == ' ' { None } else { Some(c) } } )*
                    Self::Other => None,
                }
            }

            /// True for header fields that may appear at most once in a message.
            pub fn is_single_valued(self) -> bool {
                match self {
                    $( Self::$variant => $single, )*
                    Self::Other => false,
                }
            }

            fn from_lower(lower: &[u8]) -> Self {
                match lower {
                    $( $lower => Self::$variant, )*
                    _ => Self::Other,
                }
            }

            fn from_compact(c: u8) -> Self {
                match c.to_ascii_lowercase() {
                    $( c if c as char == $compact && $compact != ' ' => Self::$variant, )*
                    _ => Self::Other,
                }
            }
        }
    };
}

header_names! {
    /// Accept.
    Accept = "Accept", b"accept", ' ', false;
    /// Accept-Contact (RFC 3841), compact `a`.
    AcceptContact = "Accept-Contact", b"accept-contact", 'a', false;
    /// Accept-Encoding.
    AcceptEncoding = "Accept-Encoding", b"accept-encoding", ' ', false;
    /// Accept-Language.
    AcceptLanguage = "Accept-Language", b"accept-language", ' ', false;
    /// Alert-Info.
    AlertInfo = "Alert-Info", b"alert-info", ' ', false;
    /// Allow.
    Allow = "Allow", b"allow", ' ', false;
    /// Allow-Events (RFC 6665), compact `u`.
    AllowEvents = "Allow-Events", b"allow-events", 'u', false;
    /// Authentication-Info.
    AuthenticationInfo = "Authentication-Info", b"authentication-info", ' ', false;
    /// Authorization.
    Authorization = "Authorization", b"authorization", ' ', false;
    /// Call-ID, compact `i`.
    CallId = "Call-ID", b"call-id", 'i', true;
    /// Call-Info.
    CallInfo = "Call-Info", b"call-info", ' ', false;
    /// Contact, compact `m`.
    Contact = "Contact", b"contact", 'm', false;
    /// Content-Disposition.
    ContentDisposition = "Content-Disposition", b"content-disposition", ' ', true;
    /// Content-Encoding, compact `e`.
    ContentEncoding = "Content-Encoding", b"content-encoding", 'e', false;
    /// Content-Language.
    ContentLanguage = "Content-Language", b"content-language", ' ', false;
    /// Content-Length, compact `l`.
    ContentLength = "Content-Length", b"content-length", 'l', true;
    /// Content-Type, compact `c`.
    ContentType = "Content-Type", b"content-type", 'c', true;
    /// CSeq.
    CSeq = "CSeq", b"cseq", ' ', true;
    /// Date.
    Date = "Date", b"date", ' ', true;
    /// Error-Info.
    ErrorInfo = "Error-Info", b"error-info", ' ', false;
    /// Event (RFC 6665), compact `o`.
    Event = "Event", b"event", 'o', true;
    /// Expires.
    Expires = "Expires", b"expires", ' ', true;
    /// From, compact `f`.
    From = "From", b"from", 'f', true;
    /// Identity (RFC 8224), compact `y`.
    Identity = "Identity", b"identity", 'y', false;
    /// Identity-Info (RFC 4474), compact `n`.
    IdentityInfo = "Identity-Info", b"identity-info", 'n', false;
    /// In-Reply-To.
    InReplyTo = "In-Reply-To", b"in-reply-to", ' ', false;
    /// Max-Forwards.
    MaxForwards = "Max-Forwards", b"max-forwards", ' ', true;
    /// MIME-Version.
    MimeVersion = "MIME-Version", b"mime-version", ' ', true;
    /// Min-Expires.
    MinExpires = "Min-Expires", b"min-expires", ' ', true;
    /// Min-SE (RFC 4028).
    MinSe = "Min-SE", b"min-se", ' ', true;
    /// Organization.
    Organization = "Organization", b"organization", ' ', true;
    /// Path (RFC 3327).
    Path = "Path", b"path", ' ', false;
    /// Priority.
    Priority = "Priority", b"priority", ' ', true;
    /// Proxy-Authenticate.
    ProxyAuthenticate = "Proxy-Authenticate", b"proxy-authenticate", ' ', false;
    /// Proxy-Authorization.
    ProxyAuthorization = "Proxy-Authorization", b"proxy-authorization", ' ', false;
    /// Proxy-Require.
    ProxyRequire = "Proxy-Require", b"proxy-require", ' ', false;
    /// RAck (RFC 3262).
    RAck = "RAck", b"rack", ' ', true;
    /// Reason (RFC 3326).
    Reason = "Reason", b"reason", ' ', false;
    /// Record-Route.
    RecordRoute = "Record-Route", b"record-route", ' ', false;
    /// Refer-To (RFC 3515), compact `r`.
    ReferTo = "Refer-To", b"refer-to", 'r', true;
    /// Referred-By (RFC 3892), compact `b`.
    ReferredBy = "Referred-By", b"referred-by", 'b', true;
    /// Reject-Contact (RFC 3841), compact `j`.
    RejectContact = "Reject-Contact", b"reject-contact", 'j', false;
    /// Reply-To.
    ReplyTo = "Reply-To", b"reply-to", ' ', true;
    /// Request-Disposition (RFC 3841), compact `d`.
    RequestDisposition = "Request-Disposition", b"request-disposition", 'd', false;
    /// Require.
    Require = "Require", b"require", ' ', false;
    /// Retry-After.
    RetryAfter = "Retry-After", b"retry-after", ' ', true;
    /// Route.
    Route = "Route", b"route", ' ', false;
    /// RSeq (RFC 3262).
    RSeq = "RSeq", b"rseq", ' ', true;
    /// Server.
    Server = "Server", b"server", ' ', true;
    /// Service-Route (RFC 3608).
    ServiceRoute = "Service-Route", b"service-route", ' ', false;
    /// Session-Expires (RFC 4028), compact `x`.
    SessionExpires = "Session-Expires", b"session-expires", 'x', true;
    /// SIP-ETag (RFC 3903).
    SipETag = "SIP-ETag", b"sip-etag", ' ', true;
    /// SIP-If-Match (RFC 3903).
    SipIfMatch = "SIP-If-Match", b"sip-if-match", ' ', true;
    /// Subject, compact `s`.
    Subject = "Subject", b"subject", 's', true;
    /// Subscription-State (RFC 6665).
    SubscriptionState = "Subscription-State", b"subscription-state", ' ', true;
    /// Supported, compact `k`.
    Supported = "Supported", b"supported", 'k', false;
    /// Timestamp.
    Timestamp = "Timestamp", b"timestamp", ' ', true;
    /// To, compact `t`.
    To = "To", b"to", 't', true;
    /// Unsupported.
    Unsupported = "Unsupported", b"unsupported", ' ', false;
    /// User-Agent.
    UserAgent = "User-Agent", b"user-agent", ' ', true;
    /// Via, compact `v`.
    Via = "Via", b"via", 'v', false;
    /// Warning.
    Warning = "Warning", b"warning", ' ', false;
    /// WWW-Authenticate.
    WwwAuthenticate = "WWW-Authenticate", b"www-authenticate", ' ', false;
}

impl HeaderName {
    /// Classifies a header field name, case-insensitively, compact forms included.
    pub fn from_bytes(name: &[u8]) -> Self {
        match name {
            [c] => Self::from_compact(*c),
            _ if name.len() <= 24 => {
                let mut buf = [0u8; 24];
                let Some(dst) = buf.get_mut(..name.len()) else {
                    return Self::Other;
                };
                for (d, s) in dst.iter_mut().zip(name) {
                    *d = s.to_ascii_lowercase();
                }
                Self::from_lower(dst)
            }
            _ => Self::Other,
        }
    }

    /// True when `name` (in any spelling, compact or not) names this header field.
    pub fn matches(self, name: &str) -> bool {
        self != Self::Other && Self::from_bytes(name.as_bytes()) == self
    }

    /// True for header fields whose value is a comma-separated list
    /// (RFC 3261 section 7.3.1), so that one field may carry several values.
    pub fn is_list(self) -> bool {
        matches!(
            self,
            Self::Accept
                | Self::AcceptContact
                | Self::AcceptEncoding
                | Self::AcceptLanguage
                | Self::AlertInfo
                | Self::Allow
                | Self::AllowEvents
                | Self::CallInfo
                | Self::Contact
                | Self::ContentEncoding
                | Self::ContentLanguage
                | Self::ErrorInfo
                | Self::InReplyTo
                | Self::Path
                | Self::ProxyRequire
                | Self::Reason
                | Self::RecordRoute
                | Self::RejectContact
                | Self::RequestDisposition
                | Self::Require
                | Self::Route
                | Self::ServiceRoute
                | Self::Supported
                | Self::Unsupported
                | Self::Via
                | Self::Warning
        )
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderName;

    #[test]
    fn names_and_compact_forms() {
        assert_eq!(HeaderName::from_bytes(b"VIA"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"V"), HeaderName::Via);
        assert_eq!(HeaderName::from_bytes(b"call-id"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"X-Foo"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"q"), HeaderName::Other);
        for (c, name) in [
            ('i', HeaderName::CallId),
            ('m', HeaderName::Contact),
            ('e', HeaderName::ContentEncoding),
            ('l', HeaderName::ContentLength),
            ('c', HeaderName::ContentType),
            ('f', HeaderName::From),
            ('s', HeaderName::Subject),
            ('k', HeaderName::Supported),
            ('t', HeaderName::To),
            ('v', HeaderName::Via),
            ('o', HeaderName::Event),
            ('u', HeaderName::AllowEvents),
            ('r', HeaderName::ReferTo),
            ('x', HeaderName::SessionExpires),
            ('b', HeaderName::ReferredBy),
            ('y', HeaderName::Identity),
        ] {
            assert_eq!(HeaderName::from_bytes(&[c as u8]), name, "{c}");
            assert_eq!(name.compact(), Some(c));
            let canonical = name.canonical().unwrap();
            assert_eq!(HeaderName::from_bytes(canonical.as_bytes()), name);
            assert_eq!(
                HeaderName::from_bytes(canonical.to_uppercase().as_bytes()),
                name
            );
        }
    }
}
