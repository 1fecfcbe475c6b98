//! SIP messages, validation, building, the digest client and SDP audio
//! offer/answer with SDES keys.

use std::sync::{Arc, Mutex};

use carevox::media::{answer_audio, offer_crypto};
use carevox::sdes::SdesOptions;
use carevox_sip::auth::Challenge;
use carevox_sip::auth::DigestClient as RustDigestClient;
use carevox_sip::auth::{Password, Request as DigestRequest};
use carevox_sip::sdp::SessionDescription;
use carevox_sip::sdp::crypto::{Crypto, CryptoSuite};
use carevox_sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use carevox_sip::{HeaderName, Message, MessageBuilder, ValidationPolicy, validate};

use crate::error::SipError;
use crate::system_rng;

fn parse_err(e: impl std::fmt::Display) -> SipError {
    SipError::Parse(e.to_string())
}

fn build_err(e: impl std::fmt::Display) -> SipError {
    SipError::Build(e.to_string())
}

/// One header field, by name and value.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SipHeader {
    /// The header name as written (`Via`, `Call-ID`, ...).
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A message body and its type.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SipBody {
    /// The Content-Type (`application/sdp`).
    pub content_type: String,
    /// The body bytes.
    pub bytes: Vec<u8>,
}

/// Why a message failed validation, and the status to answer it with.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SipValidationFailure {
    /// The response status code RFC 3261 prescribes (400, 416, 420, 505, ...).
    pub status_code: u16,
    /// What is wrong, without PHI.
    pub reason: String,
}

/// The CSeq header: sequence number and method.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SipCSeq {
    /// Sequence number.
    pub seq: u32,
    /// Method.
    pub method: String,
}

/// A From or To header: URI, display name and tag.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SipNameAddr {
    /// The URI (PHI: handle it as such).
    pub uri: String,
    /// The display name, unquoted (PHI).
    pub display_name: Option<String>,
    /// The tag parameter.
    pub tag: Option<String>,
}

/// A parsed SIP message (request or response). Immutable and thread-safe.
#[derive(Debug, uniffi::Object)]
pub struct SipMessage {
    inner: Message,
}

#[uniffi::export]
impl SipMessage {
    /// Parses one message from its bytes (a datagram or one framed message).
    #[uniffi::constructor]
    pub fn parse(bytes: Vec<u8>) -> Result<Arc<Self>, SipError> {
        let inner = Message::parse(bytes.into()).map_err(parse_err)?;
        Ok(Arc::new(SipMessage { inner }))
    }

    /// Whether it is a request.
    pub fn is_request(&self) -> bool {
        self.inner.is_request()
    }

    /// The method of a request.
    pub fn method(&self) -> Option<String> {
        self.inner.method().map(|m| m.as_str().to_owned())
    }

    /// The request URI as written (PHI).
    pub fn request_uri(&self) -> Option<String> {
        self.inner.request_uri_str().map(str::to_owned)
    }

    /// The status code of a response.
    pub fn status_code(&self) -> Option<u16> {
        self.inner.status()
    }

    /// The reason phrase of a response.
    pub fn reason_phrase(&self) -> Option<String> {
        self.inner.reason().map(str::to_owned)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<String, SipError> {
        self.inner.call_id().map(str::to_owned).map_err(parse_err)
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<SipCSeq, SipError> {
        let c = self.inner.cseq().map_err(parse_err)?;
        Ok(SipCSeq {
            seq: c.seq,
            method: c.method.as_str().to_owned(),
        })
    }

    /// The From header.
    pub fn from_header(&self) -> Result<SipNameAddr, SipError> {
        let n = self.inner.from().map_err(parse_err)?;
        Ok(SipNameAddr {
            uri: n.uri().to_string(),
            display_name: n.display_name().map(|d| d.into_owned()),
            tag: n.tag().map(str::to_owned),
        })
    }

    /// The To header.
    pub fn to_header(&self) -> Result<SipNameAddr, SipError> {
        let n = self.inner.to().map_err(parse_err)?;
        Ok(SipNameAddr {
            uri: n.uri().to_string(),
            display_name: n.display_name().map(|d| d.into_owned()),
            tag: n.tag().map(str::to_owned),
        })
    }

    /// The top Via's branch parameter.
    pub fn via_branch(&self) -> Result<Option<String>, SipError> {
        let via = self.inner.top_via().map_err(parse_err)?;
        Ok(via.branch().map(str::to_owned))
    }

    /// Max-Forwards, if present.
    pub fn max_forwards(&self) -> Result<Option<u32>, SipError> {
        self.inner.max_forwards().map_err(parse_err)
    }

    /// Expires, if present.
    pub fn expires(&self) -> Result<Option<u32>, SipError> {
        self.inner.expires().map_err(parse_err)
    }

    /// The Content-Type as written, if present.
    pub fn content_type(&self) -> Option<String> {
        self.inner
            .header(HeaderName::ContentType)
            .map(str::to_owned)
    }

    /// The values of every header field with this name (compact forms
    /// match), in order.
    pub fn header_values(&self, name: String) -> Vec<String> {
        self.inner
            .header_values_by_name(&name)
            .map(str::to_owned)
            .collect()
    }

    /// Every header field in order.
    pub fn headers(&self) -> Vec<SipHeader> {
        self.inner
            .headers()
            .map(|h| SipHeader {
                name: h.name_str.to_owned(),
                value: (*h.value.expose()).to_owned(),
            })
            .collect()
    }

    /// The body.
    pub fn body(&self) -> Vec<u8> {
        self.inner.body().to_vec()
    }

    /// The message as it goes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.as_bytes().to_vec()
    }

    /// Validates the message as RFC 3261 section 8.2 and 16.3 ask of a
    /// receiver. `None`: valid. Otherwise the status code to answer a request
    /// with and why.
    pub fn validate(&self) -> Option<SipValidationFailure> {
        match validate(&self.inner, &ValidationPolicy::default()) {
            Ok(_) => None,
            Err(e) => Some(SipValidationFailure {
                status_code: e.status_code(),
                reason: e.to_string(),
            }),
        }
    }
}

fn finish(
    mut builder: MessageBuilder,
    headers: Vec<SipHeader>,
    body: Option<SipBody>,
) -> Result<Arc<SipMessage>, SipError> {
    for h in &headers {
        builder = builder.header(&h.name, &h.value).map_err(build_err)?;
    }
    if let Some(b) = body {
        builder = builder
            .body(&b.content_type, b.bytes.into())
            .map_err(build_err)?;
    }
    let inner = builder.build().map_err(build_err)?;
    Ok(Arc::new(SipMessage { inner }))
}

/// Builds a request: method, request URI, header fields in order, and an
/// optional body (Content-Type and Content-Length are written for it).
#[uniffi::export]
pub fn sip_build_request(
    method: String,
    request_uri: String,
    headers: Vec<SipHeader>,
    body: Option<SipBody>,
) -> Result<Arc<SipMessage>, SipError> {
    let builder = MessageBuilder::request(&method, &request_uri).map_err(build_err)?;
    finish(builder, headers, body)
}

/// Builds a response to `request`: Via, From, To, Call-ID and CSeq are
/// copied from it (RFC 3261 section 8.2.6); `to_tag` is added to To when
/// given; then the extra header fields and the optional body.
#[uniffi::export]
pub fn sip_build_response(
    request: Arc<SipMessage>,
    status_code: u16,
    reason_phrase: String,
    to_tag: Option<String>,
    headers: Vec<SipHeader>,
    body: Option<SipBody>,
) -> Result<Arc<SipMessage>, SipError> {
    let mut builder = MessageBuilder::response_to(&request.inner, status_code, &reason_phrase)
        .map_err(build_err)?;
    if let Some(tag) = to_tag {
        builder = builder.to_tag(&tag).map_err(build_err)?;
    }
    finish(builder, headers, body)
}

/// The header to add to the retried request.
#[derive(Debug, Clone, uniffi::Record)]
pub struct DigestAuthorization {
    /// `Authorization` (answering a 401) or `Proxy-Authorization` (a 407).
    pub header_name: String,
    /// The header value.
    pub value: String,
}

/// The client side of SIP digest authentication (RFC 3261 section 22, RFC
/// 7616). Keeps the nonce count per nonce; thread-safe.
#[derive(Debug, uniffi::Object)]
pub struct DigestClient {
    inner: Mutex<RustDigestClient>,
}

#[uniffi::export]
impl DigestClient {
    /// A client for `username` with `password`. The password is held in a
    /// zeroizing buffer on the Rust side.
    #[uniffi::constructor]
    pub fn new(username: String, password: String) -> Arc<Self> {
        let password = zeroize::Zeroizing::new(password);
        Arc::new(DigestClient {
            inner: Mutex::new(RustDigestClient::new(&username, Password::new(&password))),
        })
    }

    /// Answers the challenge in a 401 (WWW-Authenticate) or 407
    /// (Proxy-Authenticate) response, for a request with `method`,
    /// `request_uri` and `body` (the body matters for qop=auth-int).
    pub fn authorize(
        &self,
        challenge: Arc<SipMessage>,
        method: String,
        request_uri: String,
        body: Option<Vec<u8>>,
    ) -> Result<DigestAuthorization, SipError> {
        let msg = &challenge.inner;
        let (header_name, found) = match msg.status() {
            Some(401) => ("Authorization", msg.www_authenticate().next()),
            Some(407) => ("Proxy-Authorization", msg.proxy_authenticate().next()),
            _ => {
                return Err(SipError::Digest(
                    "not a 401 or 407 response: nothing to answer".into(),
                ));
            }
        };
        let header = found
            .ok_or_else(|| {
                SipError::MissingHeader(
                    if header_name == "Authorization" {
                        "WWW-Authenticate"
                    } else {
                        "Proxy-Authenticate"
                    }
                    .into(),
                )
            })?
            .map_err(parse_err)?;
        let challenge =
            Challenge::from_header(&header).map_err(|e| SipError::Digest(e.to_string()))?;
        let mut request = DigestRequest::new(&method, &request_uri);
        if let Some(b) = body.as_deref() {
            request = request.with_body(b);
        }
        let mut client = self
            .inner
            .lock()
            .map_err(|_| SipError::Digest("digest client lock poisoned".into()))?;
        let credentials = client
            .authorize(&challenge, &request, &system_rng())
            .map_err(|e| SipError::Digest(e.to_string()))?;
        Ok(DigestAuthorization {
            header_name: header_name.into(),
            value: credentials.to_string(),
        })
    }
}

/// An SDP audio offer and its SDES line.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SdpOffer {
    /// The SDP text to send (it carries the key in its a=crypto line).
    pub sdp: String,
    /// The value of the offer's a=crypto line (`1 AES_CM_128_HMAC_SHA1_80
    /// inline:...`): the key that protects what the offerer sends. Secret.
    pub local_crypto: String,
}

/// What an SDP answer agreed to.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SdpAnswer {
    /// The SDP text to send back.
    pub sdp: String,
    /// The accepted codecs, most preferred first (encoding names).
    pub codecs: Vec<String>,
    /// Where the offerer receives RTP.
    pub remote_address: Option<String>,
    /// The offerer's RTP port.
    pub remote_port: u16,
    /// The answer's a=crypto value: protects what the answerer sends. Secret.
    pub local_crypto: String,
    /// The offer's accepted a=crypto value: protects what the offerer sends.
    /// Secret.
    pub remote_crypto: String,
}

fn codec_by_name(name: &str) -> Result<Codec, SipError> {
    match name.to_ascii_uppercase().as_str() {
        "PCMU" => Ok(Codec::pcmu()),
        "PCMA" => Ok(Codec::pcma()),
        "G722" => Ok(Codec::g722()),
        "OPUS" => Ok(Codec::opus()),
        _ => Err(SipError::Sdp(format!(
            "unknown codec {name:?}: PCMU, PCMA, G722 or opus"
        ))),
    }
}

/// Static payload type and rtpmap of a codec for an offer.
fn offer_payload(name: &str, dynamic: &mut u8) -> Result<(u8, String), SipError> {
    match name.to_ascii_uppercase().as_str() {
        "PCMU" => Ok((0, "PCMU/8000".into())),
        "PCMA" => Ok((8, "PCMA/8000".into())),
        "G722" => Ok((9, "G722/8000".into())),
        "OPUS" => {
            let pt = *dynamic;
            *dynamic = dynamic.saturating_add(1);
            Ok((pt, "opus/48000/2".into()))
        }
        _ => Err(SipError::Sdp(format!(
            "unknown codec {name:?}: PCMU, PCMA, G722 or opus"
        ))),
    }
}

/// Builds an SDP audio offer (RTP/SAVP with one SDES a=crypto line of
/// `suite`, e.g. `AES_CM_128_HMAC_SHA1_80`) for `codecs` (PCMU, PCMA, G722,
/// opus, most preferred first) received at `address`:`port`. The key is
/// fresh from the operating system's generator.
#[uniffi::export]
pub fn sdp_audio_offer(
    address: String,
    port: u16,
    session_id: String,
    codecs: Vec<String>,
    suite: String,
) -> Result<SdpOffer, SipError> {
    if codecs.is_empty() {
        return Err(SipError::Sdp("an offer needs at least one codec".into()));
    }
    // Offer only what SRTP can key: negotiation and keying never disagree.
    let crypto = offer_crypto(1, CryptoSuite::from_name(&suite), &system_rng())
        .map_err(|e| SipError::Sdp(e.to_string()))?;
    let mut dynamic = 96u8;
    let mut pts = Vec::new();
    let mut maps = String::new();
    for c in &codecs {
        let (pt, map) = offer_payload(c, &mut dynamic)?;
        pts.push(pt.to_string());
        maps.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
    }
    let family = if address.contains(':') { "IP6" } else { "IP4" };
    let text = zeroize::Zeroizing::new(format!(
        "v=0\r\no=- {session_id} 1 IN {family} {address}\r\ns=-\r\nc=IN {family} {address}\r\nt=0 0\r\n\
         m=audio {port} RTP/SAVP {}\r\n{maps}a=ptime:20\r\na=sendrecv\r\na=crypto:{crypto}\r\n",
        pts.join(" ")
    ));
    // The offer must be valid SDP before it goes out; this also checks the
    // address and session id.
    let parsed = SessionDescription::parse(&text).map_err(|e| SipError::Sdp(e.to_string()))?;
    Ok(SdpOffer {
        sdp: parsed.to_string(),
        local_crypto: crypto.to_string(),
    })
}

/// Answers an SDP audio offer with `codecs` (see [`sdp_audio_offer`]) at
/// `address`:`port`, choosing only an SDES line of the offer that keys a
/// carevox-srtp context (its suite, MKIs, lifetimes and session parameters
/// all usable) and keying a fresh local one.
#[uniffi::export]
pub fn sdp_audio_answer(
    offer_sdp: String,
    address: String,
    port: u16,
    session_id: String,
    codecs: Vec<String>,
) -> Result<SdpAnswer, SipError> {
    let offer = SessionDescription::parse(&offer_sdp).map_err(|e| SipError::Sdp(e.to_string()))?;
    let codecs = codecs
        .iter()
        .map(|c| codec_by_name(c))
        .collect::<Result<Vec<_>, _>>()?;
    let answer = answer_audio(
        &offer,
        &AudioCapabilities::new(codecs),
        &LocalMedia::new(&address, port, &session_id),
        &system_rng(),
        &SdesOptions::new(),
    )
    .map_err(|e| SipError::Sdp(e.to_string()))?
    .answer;
    let audio = answer
        .audio
        .ok_or_else(|| SipError::Sdp("no audio stream of the offer was accepted".into()))?;
    let sdes = audio
        .srtp
        .ok_or_else(|| SipError::Sdp("the accepted stream has no SDES keys".into()))?;
    Ok(SdpAnswer {
        sdp: answer.sdp.to_string(),
        codecs: audio.codecs.iter().map(|c| c.name.clone()).collect(),
        remote_address: audio.remote_address.map(|a| a.into_inner()),
        remote_port: audio.remote_port,
        local_crypto: sdes.local.to_string(),
        remote_crypto: sdes.remote.to_string(),
    })
}

/// The offerer's side after the answer came back: the answer's a=crypto
/// value whose tag matches the offer's line `local_crypto`. That value keys
/// what the offerer receives.
#[uniffi::export]
pub fn sdp_answer_crypto(answer_sdp: String, local_crypto: String) -> Result<String, SipError> {
    let local = Crypto::parse(&local_crypto).map_err(|e| SipError::Sdp(e.to_string()))?;
    let answer =
        SessionDescription::parse(&answer_sdp).map_err(|e| SipError::Sdp(e.to_string()))?;
    answer
        .media
        .iter()
        .flat_map(|m| m.cryptos())
        .find(|c| c.tag == local.tag)
        .map(ToString::to_string)
        .ok_or_else(|| SipError::Sdp("the answer has no a=crypto line with the offer's tag".into()))
}
