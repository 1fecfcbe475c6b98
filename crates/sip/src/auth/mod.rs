//! HTTP digest authentication for SIP (RFC 7616 as RFC 8760 applies it to
//! SIP): the server issues challenges and verifies credentials, the client
//! answers challenges.
//!
//! - [`Challenge`] and [`Credentials`] are the typed digest forms of the
//!   `WWW-Authenticate` / `Proxy-Authenticate` and `Authorization` /
//!   `Proxy-Authorization` headers, read with `from_header` from the
//!   [`AuthHeader`](crate::AuthHeader) the message layer gives (or with
//!   `parse` from a raw header value, through the same parser), with
//!   `Display` writing them back.
//! - [`DigestServer`] issues stateless nonces: the issue time, random bytes
//!   and an HMAC-SHA256 under a server secret over the time, the realm and
//!   caller-chosen binding data (a transport address, say). It verifies
//!   credentials in constant time, reports an expired but otherwise valid
//!   nonce as stale (answer with a fresh challenge carrying `stale=true`), and
//!   checks nonce counts against a caller-held, bounded [`NonceTracker`].
//! - [`DigestClient`] answers a challenge, drawing the cnonce from the
//!   caller's random source and counting `nc` per nonce.
//!
//! Algorithms: `MD5` and `MD5-sess` (for existing phones), `SHA-256`,
//! `SHA-256-sess`, `SHA-512-256` and `SHA-512-256-sess`; qop `auth` and
//! `auth-int`; `userhash`. Responses without qop (RFC 2069) are refused.
//! Time is an argument (unix seconds), never read. Passwords and HA1 values
//! are zeroized on drop and never printed; errors carry no secret, user name
//! or realm.
//!
//! ```
//! use carevox_sip::auth::{
//!     Algorithm, Challenge, DigestClient, DigestServer, NonceTracker, Password, Request,
//!     ServerConfig,
//! };
//! # #[allow(clippy::disallowed_methods)]
//! let rng = ring::rand::SystemRandom::new();
//! let now = 1_700_000_000;
//! let server = DigestServer::new(&[7u8; 32], ServerConfig::new("clinic.example"))?;
//! let mut tracker = NonceTracker::new(10_000);
//!
//! // 401 with WWW-Authenticate: the first challenge is SHA-256.
//! let header = server.challenge(now, b"192.0.2.7:5060", Algorithm::Sha256, false, &rng)?.to_string();
//!
//! // The phone answers.
//! let challenge = Challenge::parse(&header)?;
//! let mut client = DigestClient::new("nurse-42", Password::new("correct horse"));
//! let request = Request::new("REGISTER", "sip:clinic.example");
//! let authorization = client.authorize(&challenge, &request, &rng)?.to_string();
//!
//! // The registrar checks it; `AuthHeader` is what `Message::authorization` yields.
//! let header = carevox_sip::AuthHeader::parse(&authorization)?;
//! let creds = carevox_sip::auth::Credentials::from_header(&header)?;
//! let ok = server.verify(&creds, &request, "nurse-42", &Password::new("correct horse").into(),
//!                        b"192.0.2.7:5060", now + 1, &mut tracker)?;
//! assert_eq!(ok.algorithm, Algorithm::Sha256);
//! // The same Authorization again is a replay.
//! assert!(server.verify(&creds, &request, "nurse-42", &Password::new("correct horse").into(),
//!                       b"192.0.2.7:5060", now + 2, &mut tracker).is_err());
//! # Ok::<(), carevox_sip::auth::DigestError>(())
//! ```

mod client;
mod digest;
mod server;

pub use client::DigestClient;
pub use digest::{Challenge, Credentials, user_hash};
pub use server::{DigestServer, NonceTracker, ServerConfig, Verified};

use carevox_redact::{Pii, Secret};
use std::fmt;

use md5::Digest as _;
use zeroize::Zeroize;

/// What went wrong in digest authentication. No variant carries a secret,
/// a user name or a realm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The header value does not follow the auth-param grammar, or is over
    /// its limits: the message layer's error, with the byte offset.
    #[error("authentication header: {0}")]
    Params(#[from] crate::header::AuthParamError),
    /// The scheme is not `Digest`.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// A mandatory parameter is missing.
    #[error("missing parameter {0}")]
    MissingParam(&'static str),
    /// A parameter has an invalid value.
    #[error("invalid value of parameter {0}")]
    InvalidParam(&'static str),
    /// The algorithm is unknown or not enabled.
    #[error("unsupported or disabled digest algorithm")]
    UnsupportedAlgorithm,
    /// No usable quality of protection (none offered, or only ones not
    /// enabled).
    #[error("no supported quality of protection")]
    UnsupportedQop,
    /// The server secret is shorter than 32 bytes.
    #[error("server secret shorter than 32 bytes")]
    WeakSecret,
    /// The random source failed.
    #[error("random source failed")]
    Random,
    /// The credentials name another realm.
    #[error("credentials for another realm")]
    RealmMismatch,
    /// The credentials name another user than the one looked up.
    #[error("credentials for another user")]
    UserMismatch,
    /// The digest URI differs from the request URI.
    #[error("digest URI differs from the request URI")]
    UriMismatch,
    /// The nonce was not issued by this server (or for this binding).
    #[error("nonce not issued by this server")]
    InvalidNonce,
    /// The response is valid but the nonce has expired, or its count can no
    /// longer be checked: challenge again with `stale=true`.
    #[error("stale nonce: challenge again with stale=true")]
    StaleNonce,
    /// The nonce count is not above the highest one already accepted.
    #[error("nonce count replayed")]
    Replay,
    /// The response does not match: wrong password or altered request.
    #[error("digest response does not match")]
    ResponseMismatch,
}

impl DigestError {
    /// Whether the right answer is a fresh challenge with `stale=true`
    /// rather than a failure.
    pub fn is_stale(&self) -> bool {
        matches!(self, DigestError::StaleNonce)
    }
}

/// A digest algorithm (RFC 7616 section 3.3, RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`: for existing phones only.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256`.
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// The name as written in headers.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Parses a name, case-insensitively.
    pub fn parse(name: &str) -> Option<Algorithm> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ]
        .into_iter()
        .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Whether this is a `-sess` variant.
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// The variant without `-sess`: the hash function both share.
    pub fn base(self) -> Algorithm {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => Algorithm::Sha512_256,
        }
    }

    /// Length of a hex digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self.base() {
            Algorithm::Md5 => 32,
            _ => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Quality of protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: method and URI are protected.
    Auth,
    /// `auth-int`: the message body too.
    AuthInt,
}

impl Qop {
    /// The name as written in headers.
    pub fn name(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    /// Parses a name, case-insensitively.
    pub fn parse(name: &str) -> Option<Qop> {
        if name.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if name.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

/// A password: zeroized on drop, never printed.
#[derive(Debug, Clone)]
pub struct Password(Secret<String>);

impl Password {
    /// Wraps a password.
    pub fn new(password: &str) -> Password {
        Password(Secret::new(password.to_owned()))
    }

    fn bytes(&self) -> &[u8] {
        self.0.expose().as_bytes()
    }
}

/// What the server knows about a user's secret: the password, or the
/// stored `H(username:realm:password)` (HA1) of one hash function.
#[derive(Debug, Clone)]
pub enum UserSecret {
    /// The password itself.
    Password(Password),
    /// HA1 in lower-case hex, for the algorithm family of `algorithm` (an
    /// `MD5` HA1 serves `MD5` and `MD5-sess`).
    Ha1 {
        /// Which hash function the HA1 was computed with.
        algorithm: Algorithm,
        /// The lower-case hex HA1.
        hex: Secret<String>,
    },
}

impl UserSecret {
    /// A stored HA1 for the hash family of `algorithm`.
    pub fn ha1(algorithm: Algorithm, hex: &str) -> UserSecret {
        UserSecret::Ha1 {
            algorithm: algorithm.base(),
            hex: Secret::new(hex.to_ascii_lowercase()),
        }
    }

    /// Computes the HA1 of a password, to store instead of the password.
    pub fn ha1_from_password(
        algorithm: Algorithm,
        username: &str,
        realm: &str,
        password: &Password,
    ) -> UserSecret {
        let h = hex_hash(
            algorithm,
            &[
                username.as_bytes(),
                b":",
                realm.as_bytes(),
                b":",
                password.bytes(),
            ],
        );
        UserSecret::Ha1 {
            algorithm: algorithm.base(),
            hex: Secret::new(h.as_str().to_owned()),
        }
    }
}

impl From<Password> for UserSecret {
    fn from(p: Password) -> UserSecret {
        UserSecret::Password(p)
    }
}

/// A request as digest authentication sees it. `Debug` redacts the URI
/// and the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method (`REGISTER`, `INVITE`, ...).
    pub method: &'a str,
    /// The request URI, as written in the request line.
    pub uri: Pii<&'a str>,
    /// The body, for `auth-int` (`None` is an empty body).
    pub body: Pii<Option<&'a [u8]>>,
}

impl<'a> Request<'a> {
    /// A request without a body.
    pub fn new(method: &'a str, uri: &'a str) -> Request<'a> {
        Request {
            method,
            uri: Pii::new(uri),
            body: Pii::new(None),
        }
    }

    /// The same request with `body`.
    pub fn with_body(self, body: &'a [u8]) -> Request<'a> {
        Request {
            body: Pii::new(Some(body)),
            ..self
        }
    }

    /// The request URI.
    pub fn uri(&self) -> &'a str {
        self.uri.into_inner()
    }

    /// The body, if any.
    pub fn body(&self) -> Option<&'a [u8]> {
        self.body.into_inner()
    }
}

/// A lower-case hex digest held in a fixed buffer, zeroized on drop.
pub(crate) struct HexDigest {
    buf: [u8; 64],
    len: usize,
}

impl HexDigest {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl Drop for HexDigest {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

fn to_hex(raw: &[u8]) -> HexDigest {
    let mut out = HexDigest {
        buf: [0u8; 64],
        len: 0,
    };
    // Digests are at most 32 bytes (SHA-256, SHA-512/256): 64 hex digits.
    let raw = raw.get(..32).unwrap_or(raw);
    let len = data_encoding::HEXLOWER.encode_len(raw.len());
    if let Some(dst) = out.buf.get_mut(..len) {
        data_encoding::HEXLOWER.encode_mut(raw, dst);
        out.len = len;
    }
    out
}

/// `H(parts...)` in lower-case hex, with the hash function of `algorithm`.
pub(crate) fn hex_hash(algorithm: Algorithm, parts: &[&[u8]]) -> HexDigest {
    match algorithm.base() {
        Algorithm::Md5 => {
            let mut h = md5::Md5::new();
            for p in parts {
                h.update(p);
            }
            let mut raw: [u8; 16] = h.finalize().into();
            let out = to_hex(&raw);
            raw.zeroize();
            out
        }
        base => {
            let alg = if base == Algorithm::Sha256 {
                &ring::digest::SHA256
            } else {
                &ring::digest::SHA512_256
            };
            let mut ctx = ring::digest::Context::new(alg);
            for p in parts {
                ctx.update(p);
            }
            to_hex(ctx.finish().as_ref())
        }
    }
}

/// The inputs of one response computation (RFC 7616 section 3.4.1).
pub(crate) struct ResponseInput<'a> {
    pub(crate) algorithm: Algorithm,
    pub(crate) username: &'a str,
    pub(crate) realm: &'a str,
    pub(crate) nonce: &'a str,
    pub(crate) cnonce: &'a str,
    pub(crate) nc: &'a str,
    pub(crate) qop: Qop,
    pub(crate) request: &'a Request<'a>,
}

/// Computes the `response` value. `None` when a stored HA1 belongs to
/// another hash function.
pub(crate) fn compute_response(
    input: &ResponseInput<'_>,
    secret: &UserSecret,
) -> Option<HexDigest> {
    let alg = input.algorithm;
    let base_ha1 = match secret {
        UserSecret::Password(p) => hex_hash(
            alg,
            &[
                input.username.as_bytes(),
                b":",
                input.realm.as_bytes(),
                b":",
                p.bytes(),
            ],
        ),
        UserSecret::Ha1 { algorithm, hex } => {
            if *algorithm != alg.base() || hex.expose().len() != alg.hex_len() {
                return None;
            }
            let mut d = HexDigest {
                buf: [0u8; 64],
                len: hex.expose().len(),
            };
            d.buf
                .get_mut(..hex.expose().len())?
                .copy_from_slice(hex.expose().as_bytes());
            d
        }
    };
    let ha1 = if alg.is_session() {
        hex_hash(
            alg,
            &[
                base_ha1.as_bytes(),
                b":",
                input.nonce.as_bytes(),
                b":",
                input.cnonce.as_bytes(),
            ],
        )
    } else {
        base_ha1
    };
    let method = input.request.method.as_bytes();
    let uri = input.request.uri().as_bytes();
    let ha2 = match input.qop {
        Qop::Auth => hex_hash(alg, &[method, b":", uri]),
        Qop::AuthInt => {
            // `None` is documented as an empty body: H("") is its hash.
            let body = hex_hash(alg, &[input.request.body().unwrap_or_default()]);
            hex_hash(alg, &[method, b":", uri, b":", body.as_bytes()])
        }
    };
    Some(hex_hash(
        alg,
        &[
            ha1.as_bytes(),
            b":",
            input.nonce.as_bytes(),
            b":",
            input.nc.as_bytes(),
            b":",
            input.cnonce.as_bytes(),
            b":",
            input.qop.name().as_bytes(),
            b":",
            ha2.as_bytes(),
        ],
    ))
}
