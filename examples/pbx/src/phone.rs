//! A softphone made of the SDK: what the demo's two phones are, and what
//! the tests call the PBX with. SIP over TLS only (verifying the PBX's
//! certificate and name), digest authentication with the strongest
//! algorithm the PBX offers (MD5 only when allowed), SDES-SRTP audio with
//! an audio source as its microphone and a sink as its loudspeaker.
//!
//! Like a mobile app, the phone has no listening socket: it registers over
//! the one TLS connection it opens, names itself `<random>.invalid` with
//! `;ob` (RFC 5626), and the PBX reaches it over that connection.
//!
//! Every step is a method that waits for its outcome; events that arrive
//! meanwhile (an incoming call while registering) wait their turn.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use carevox::audio::G711;
use carevox::media::{MediaError as OfferError, answer_audio, offer_cryptos, offerer_srtp};
use carevox::redact::Pii;
use carevox::relay::MediaPeer;
use carevox::sdes::SdesOptions;
use carevox::sip::auth::{Algorithm, Challenge, DigestClient, Password, Request};
use carevox::sip::dialog::{DialogId, Outgoing, UaConfig, UaEvent, UserAgent};
use carevox::sip::sdp::SessionDescription;
use carevox::sip::sdp::crypto::CryptoSuite;
use carevox::sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia};
use carevox::sip::transaction::{TransactionId, TransportKind as SipKind, random_token};
use carevox::sip::{Message, Method};
use carevox_transport::{
    Agent, AgentEvent, AgentEvents, Destination, EndpointConfig, EndpointError, TlsClientConfig,
    Transport, TransportConfig,
};
use ring::rand::SecureRandom;
use tokio::sync::mpsc;

use crate::media::{
    EndpointMedia, MediaError, MediaStats, MediaTask, PortPair, Source, spawn_endpoint,
};

/// How long a phone waits for the PBX's answer to one request.
const ANSWER_WAIT: Duration = Duration::from_secs(32);

/// A phone's settings.
#[derive(Debug)]
pub struct PhoneConfig {
    /// The user part of its address of record.
    pub user: Pii<String>,
    /// The PBX's domain (the host of the address of record).
    pub domain: String,
    /// The digest password.
    pub password: Password,
    /// The PBX's TLS address.
    pub pbx: SocketAddr,
    /// The name the PBX's certificate must carry.
    pub server_name: String,
    /// Whom the phone trusts (the PBX's CA).
    pub tls: TlsClientConfig,
    /// The address its media sockets bind.
    pub media_ip: IpAddr,
    /// Its microphone.
    pub source: Source,
    /// The SRTP suites it offers, most preferred first.
    pub suites: Vec<CryptoSuite>,
    /// Whether it answers an MD5 challenge (off: only SHA-256 and
    /// SHA-512-256).
    pub allow_md5: bool,
}

/// Why a phone's step failed. Carries no URI, number, name or key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// The SIP stack refused.
    #[error("SIP: {0}")]
    Sip(#[from] EndpointError),
    /// The transport could not start.
    #[error("transport: {0}")]
    Transport(#[from] carevox_transport::Error),
    /// The PBX refused the request with this status.
    #[error("refused with {status}")]
    Refused {
        /// The final status.
        status: u16,
    },
    /// The PBX's challenge cannot be answered (no algorithm allowed, a
    /// malformed challenge).
    #[error("the challenge cannot be answered: {0}")]
    Challenge(&'static str),
    /// No answer in time, or the transaction failed in the transport.
    #[error("no answer from the PBX")]
    NoAnswer,
    /// The phone's agent stopped.
    #[error("the phone has stopped")]
    Stopped,
    /// The SDP offer or answer could not be made or used.
    #[error("media negotiation: {0}")]
    Negotiation(#[from] OfferError),
    /// The answer names no address to send media to.
    #[error("the answer names no media address: {0}")]
    MediaAddress(#[from] carevox::relay::PeerError),
    /// A media socket could not be opened.
    #[error("media: {0}")]
    Media(#[from] MediaError),
    /// SRTP refused to set up a stream.
    #[error("SRTP: {0}")]
    Srtp(#[from] carevox::srtp::Error),
    /// A message could not be built or read.
    #[error("message: {0}")]
    Message(#[from] carevox::sip::ParseError),
    /// The random number generator failed.
    #[error("random number generator")]
    Random,
}

/// The payload type the phone offers for telephone-events (RFC 4733).
const DTMF_PT: u8 = 101;

/// A call in progress: its dialog, its media and what the phone hears.
#[derive(Debug)]
pub struct ActiveCall {
    /// The dialog.
    pub dialog: DialogId,
    media: MediaTask,
    heard: mpsc::Receiver<Vec<u8>>,
}

impl ActiveCall {
    /// The G.711 samples heard so far (read once).
    pub fn take_heard(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Ok(p) = self.heard.try_recv() {
            if let Some(payload) = p.get(12..) {
                out.extend_from_slice(payload);
            }
        }
        out
    }

    /// The media counters so far.
    pub fn stats(&self) -> MediaStats {
        self.media.stats()
    }

    /// Presses the keys of `keys` (`0`-`9`, `*`, `#`, `A`-`D`), sent one
    /// after another as RFC 4733 telephone-events; false when the call
    /// agreed on no telephone-events or a key is not one.
    pub fn press(&self, keys: &str) -> bool {
        keys.chars()
            .all(|c| carevox::dtmf::Digit::from_char(c).is_ok_and(|d| self.media.press(d)))
    }
}

/// How a call attempt ended.
#[derive(Debug)]
pub enum CallOutcome {
    /// Answered (by the callee or by voicemail).
    Answered(ActiveCall),
    /// Refused with this final status.
    Refused(u16),
}

/// A text message the phone received. The sender and the text are PHI:
/// `<redacted>` in `Debug`.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// The sender's SIP user name.
    pub from: Pii<String>,
    /// The message's media type.
    pub content_type: String,
    /// The message itself.
    pub text: Pii<Vec<u8>>,
}

/// A call arriving at the phone.
#[derive(Debug)]
pub struct IncomingCall {
    /// Its INVITE server transaction.
    pub transaction: TransactionId,
    offer: Message,
}

/// A softphone. See the [module documentation](self).
pub struct Phone {
    agent: Agent,
    events: AgentEvents,
    backlog: VecDeque<UaEvent>,
    config: PhoneConfig,
    digest: DigestClient,
    rng: Arc<dyn SecureRandom + Send + Sync>,
    aor: String,
}

impl std::fmt::Debug for Phone {
    // The random source has no Debug; the rest holds its PHI in wrappers.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("agent", &self.agent)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Phone {
    /// Starts the phone's SIP stack (a TLS client, no listener).
    pub async fn start(
        config: PhoneConfig,
        rng: Arc<dyn SecureRandom + Send + Sync>,
    ) -> Result<Phone, PhoneError> {
        let (transport, incoming) = Transport::builder(TransportConfig::default())
            .tls_client(config.tls.clone())
            .start()
            .await?;
        let host = format!(
            "{}.invalid",
            random_token(&*rng, 8).map_err(|_| PhoneError::Random)?
        );
        let user = config.user.expose().clone();
        let ua = UserAgent::new(
            UaConfig::new(&host, &format!("<sips:{user}@{host};transport=tls;ob>")),
            rng.clone(),
        );
        let (agent, events) = Agent::start(transport, incoming, ua, EndpointConfig::default());
        let digest = DigestClient::new(&user, config.password.clone());
        let aor = format!("<sips:{user}@{}>", config.domain);
        Ok(Phone {
            agent,
            events,
            backlog: VecDeque::new(),
            config,
            digest,
            rng,
            aor,
        })
    }

    fn destination(&self) -> Destination {
        Destination::tls(self.config.pbx, &self.config.server_name)
    }

    /// The next core event, from the backlog first.
    async fn next_event(&mut self) -> Result<UaEvent, PhoneError> {
        if let Some(e) = self.backlog.pop_front() {
            return Ok(e);
        }
        loop {
            match tokio::time::timeout(ANSWER_WAIT, self.events.recv()).await {
                Ok(Some(AgentEvent::Ua { event, .. })) => return Ok(event),
                Ok(Some(_)) => {}
                Ok(None) => return Err(PhoneError::Stopped),
                Err(_) => return Err(PhoneError::NoAnswer),
            }
        }
    }

    /// Waits for events until `pick` takes one; the others go back to the
    /// backlog in order.
    async fn wait_for<T>(
        &mut self,
        mut pick: impl FnMut(&UaEvent) -> Option<Result<T, PhoneError>>,
    ) -> Result<T, PhoneError> {
        let mut skipped = Vec::new();
        let result = loop {
            let e = match self.next_event().await {
                Ok(e) => e,
                Err(err) => break Err(err),
            };
            match pick(&e) {
                Some(r) => break r,
                None => skipped.push(e),
            }
        };
        for e in skipped.into_iter().rev() {
            self.backlog.push_front(e);
        }
        result
    }

    /// The final response to `txn` (provisional ones are passed over).
    async fn final_response(&mut self, txn: TransactionId) -> Result<Message, PhoneError> {
        self.wait_for(|e| match e {
            UaEvent::Response { id, response, .. }
                if *id == txn && response.status().is_some_and(|s| s >= 200) =>
            {
                Some(Ok(response.clone()))
            }
            UaEvent::Timeout { id } | UaEvent::TransportError { id } if *id == txn => {
                Some(Err(PhoneError::NoAnswer))
            }
            _ => None,
        })
        .await
    }

    /// The strongest challenge of `response` this phone may answer.
    fn pick_challenge(&self, response: &Message, proxy: bool) -> Result<Challenge, PhoneError> {
        let headers: Vec<_> = if proxy {
            response.proxy_authenticate().collect()
        } else {
            response.www_authenticate().collect()
        };
        let rank = |a: Algorithm| match a {
            Algorithm::Sha512_256 => Some(3),
            Algorithm::Sha256 => Some(2),
            Algorithm::Md5 if self.config.allow_md5 => Some(1),
            _ => None,
        };
        headers
            .into_iter()
            .filter_map(|h| h.ok().and_then(|h| Challenge::from_header(&h).ok()))
            .filter_map(|c| rank(c.effective_algorithm()).map(|r| (r, c)))
            .max_by_key(|(r, _)| *r)
            .map(|(_, c)| c)
            .ok_or(PhoneError::Challenge(
                "no challenge with an allowed algorithm",
            ))
    }

    /// Sends `out`, answering one 401 or 407 with credentials; returns the
    /// final response and the transaction that got it.
    async fn send_authenticated(
        &mut self,
        mut out: Outgoing,
    ) -> Result<(TransactionId, Message), PhoneError> {
        let mut txn = self
            .agent
            .send_request(out.clone(), self.destination())
            .await?;
        let mut response = self.final_response(txn).await?;
        let status = response.status().unwrap_or(0);
        if status == 401 || status == 407 {
            let proxy = status == 407;
            let challenge = self.pick_challenge(&response, proxy)?;
            let body = out.body.as_ref().map(|(_, b)| b.clone());
            let uri = out.request_uri.expose().clone();
            let request = match &body {
                Some(b) => Request::new(&out.method, &uri).with_body(b),
                None => Request::new(&out.method, &uri),
            };
            let credentials = self
                .digest
                .authorize(&challenge, &request, &*self.rng)
                .map_err(|_| PhoneError::Challenge("digest"))?;
            let from_tag = response
                .from()?
                .tag()
                .ok_or(PhoneError::Challenge("no From tag"))?
                .to_owned();
            out.call = Some((response.call_id()?.to_owned(), from_tag));
            out.cseq = Some(response.cseq()?.seq.saturating_add(1));
            let name = if proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            out.headers.push((name.to_owned(), credentials.to_string()));
            txn = self.agent.send_request(out, self.destination()).await?;
            response = self.final_response(txn).await?;
        }
        Ok((txn, response))
    }

    /// Sends a request outside a dialog to `user` at the PBX's domain
    /// (a SUBSCRIBE, an OPTIONS), with `headers`, answering a digest
    /// challenge once; returns the final response.
    pub async fn request(
        &mut self,
        method: &str,
        user: &str,
        headers: &[(&str, &str)],
    ) -> Result<Message, PhoneError> {
        self.request_with(method, user, headers, None).await
    }

    /// Sends a text message (SIP MESSAGE, RFC 3428) of `content_type` to
    /// `user`; returns the PBX's final status (200 delivered, 202 held for
    /// an offline user).
    pub async fn message(
        &mut self,
        user: &str,
        content_type: &str,
        text: &[u8],
    ) -> Result<u16, PhoneError> {
        let body = Some((content_type.to_owned(), Bytes::copy_from_slice(text)));
        let response = self.request_with("MESSAGE", user, &[], body).await?;
        response.status().ok_or(PhoneError::NoAnswer)
    }

    /// Waits for a text message; answers it 200. Returns the sender's SIP
    /// user name, the content type and the text.
    pub async fn next_message(&mut self) -> Result<ReceivedMessage, PhoneError> {
        let (id, request) = self
            .wait_for(|e| match e {
                UaEvent::Request {
                    id,
                    request,
                    dialog: None,
                } if request.method() == Some(Method::Message) => Some(Ok((*id, request.clone()))),
                _ => None,
            })
            .await?;
        self.agent.respond(id, 200, "OK", &[], None).await?;
        let from = request
            .from()?
            .uri()
            .as_sip()
            .and_then(|u| u.user_decoded())
            .and_then(|u| String::from_utf8(u.into_owned()).ok())
            .ok_or(PhoneError::Challenge("the message's From has no user"))?;
        let content_type = request
            .header(carevox::sip::HeaderName::ContentType)
            .ok_or(PhoneError::Challenge("the message has no Content-Type"))?
            .to_owned();
        Ok(ReceivedMessage {
            from: Pii::new(from),
            content_type,
            text: Pii::new(request.body().to_vec()),
        })
    }

    async fn request_with(
        &mut self,
        method: &str,
        user: &str,
        headers: &[(&str, &str)],
        body: Option<(String, Bytes)>,
    ) -> Result<Message, PhoneError> {
        let target = format!("sips:{user}@{}", self.config.domain);
        let mut out = Outgoing::new(
            method,
            &target,
            &self.aor,
            &format!("<{target}>"),
            self.config.pbx,
            SipKind::Tls,
        );
        out.headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        out.body = body;
        Ok(self.send_authenticated(out).await?.1)
    }

    /// Registers for `expires` seconds (0 un-registers).
    pub async fn register(&mut self, expires: u32) -> Result<(), PhoneError> {
        let mut out = Outgoing::new(
            "REGISTER",
            &format!("sips:{}", self.config.domain),
            &self.aor,
            &self.aor,
            self.config.pbx,
            SipKind::Tls,
        );
        out.headers
            .push(("Expires".to_owned(), expires.to_string()));
        let (_, response) = self.send_authenticated(out).await?;
        match response.status() {
            Some(s) if (200..300).contains(&s) => Ok(()),
            Some(s) => Err(PhoneError::Refused { status: s }),
            None => Err(PhoneError::NoAnswer),
        }
    }

    /// The SDP offer for `ports`, with one `a=crypto` line per suite.
    fn offer(
        &self,
        ports: &PortPair,
    ) -> Result<(String, Vec<carevox::sip::sdp::crypto::Crypto>), PhoneError> {
        let lines = offer_cryptos(&self.config.suites, &*self.rng)?;
        let ip = self.config.media_ip;
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let mut sdp = format!(
            "v=0\r\no=- 1 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
             m=audio {} RTP/SAVP 0 {DTMF_PT}\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:{DTMF_PT} telephone-event/8000\r\na=fmtp:{DTMF_PT} 0-15\r\n\
             a=ptime:20\r\na=sendrecv\r\n",
            ports.port()
        );
        for l in &lines {
            sdp.push_str(&format!("a=crypto:{l}\r\n"));
        }
        Ok((sdp, lines))
    }

    fn start_media(
        &self,
        srtp: carevox::media::SrtpSession,
        ports: PortPair,
        peer: MediaPeer,
        dtmf: Option<u8>,
    ) -> Result<(MediaTask, mpsc::Receiver<Vec<u8>>), PhoneError> {
        let mut ssrc = [0u8; 4];
        self.rng.fill(&mut ssrc).map_err(|_| PhoneError::Random)?;
        let (sink, heard) = mpsc::channel(4096);
        let media = spawn_endpoint(
            srtp,
            ports,
            EndpointMedia {
                law: G711::Pcmu,
                ssrc: u32::from_be_bytes(ssrc),
                source: self.config.source.clone(),
                peer: peer.rtp,
                dtmf,
            },
            Some(sink),
        )?;
        Ok((media, heard))
    }

    /// Calls `user` at the PBX's domain; returns once the call is answered
    /// or refused.
    pub async fn call(&mut self, user: &str) -> Result<CallOutcome, PhoneError> {
        let ports = PortPair::ephemeral(self.config.media_ip).await?;
        let (sdp, lines) = self.offer(&ports)?;
        let target = format!("sips:{user}@{}", self.config.domain);
        let mut out = Outgoing::new(
            "INVITE",
            &target,
            &self.aor,
            &format!("<{target}>"),
            self.config.pbx,
            SipKind::Tls,
        );
        out.body = Some(("application/sdp".to_owned(), Bytes::from(sdp)));
        let (txn, response) = self.send_authenticated(out).await?;
        let status = response.status().unwrap_or(0);
        if !(200..300).contains(&status) {
            return Ok(CallOutcome::Refused(status));
        }
        let dialog = self
            .wait_for(|e| match e {
                UaEvent::DialogConfirmed { dialog } => Some(Ok(*dialog)),
                UaEvent::Response {
                    id,
                    dialog: Some(d),
                    response,
                    ..
                } if *id == txn && response.status().is_some_and(|s| s >= 200) => Some(Ok(*d)),
                _ => None,
            })
            .await?;
        let answer = SessionDescription::parse_bytes(response.body())
            .map_err(|_| PhoneError::Challenge("the answer's SDP does not parse"))?;
        let srtp = offerer_srtp(&lines, &answer, &SdesOptions::new())?;
        let peer = MediaPeer::audio_of(&answer)?;
        // Keys go as telephone-events when the answer kept them.
        let dtmf = answer
            .to_string()
            .contains(&format!("a=rtpmap:{DTMF_PT} telephone-event/8000"))
            .then_some(DTMF_PT);
        let (media, heard) = self.start_media(srtp, ports, peer, dtmf)?;
        Ok(CallOutcome::Answered(ActiveCall {
            dialog,
            media,
            heard,
        }))
    }

    /// Waits for a call to arrive.
    pub async fn incoming(&mut self) -> Result<IncomingCall, PhoneError> {
        self.wait_for(|e| match e {
            UaEvent::Request {
                id,
                request,
                dialog: None,
            } if request.method() == Some(Method::Invite) => Some(Ok(IncomingCall {
                transaction: *id,
                offer: request.clone(),
            })),
            _ => None,
        })
        .await
    }

    /// Waits until the caller's side cancels `call` (the caller gave up,
    /// or another phone of the same user answered).
    pub async fn cancelled(&mut self, call: &IncomingCall) -> Result<(), PhoneError> {
        let invite = call.transaction;
        self.wait_for(|e| match e {
            UaEvent::Cancelled { invite: i } if *i == invite => Some(Ok(())),
            _ => None,
        })
        .await
    }

    /// Rings (180) for an incoming call.
    pub async fn ring(&mut self, call: &IncomingCall) -> Result<(), PhoneError> {
        self.agent
            .respond(call.transaction, 180, "Ringing", &[], None)
            .await?;
        Ok(())
    }

    /// Answers an incoming call with SDES-SRTP audio.
    pub async fn answer(&mut self, call: IncomingCall) -> Result<ActiveCall, PhoneError> {
        let ports = PortPair::ephemeral(self.config.media_ip).await?;
        let offer = SessionDescription::parse_bytes(call.offer.body())
            .map_err(|_| PhoneError::Challenge("the offer's SDP does not parse"))?;
        let local = LocalMedia::new(&self.config.media_ip.to_string(), ports.port(), "1");
        let answered = answer_audio(
            &offer,
            &AudioCapabilities::new(vec![Codec::pcmu()]),
            &local,
            &*self.rng,
            &SdesOptions::new(),
        )?;
        let srtp = answered
            .srtp
            .ok_or(PhoneError::Negotiation(OfferError::NoSdesAudio))?;
        let peer = MediaPeer::audio_of(&offer)?;
        let dtmf = answered
            .answer
            .audio
            .as_ref()
            .and_then(|a| a.telephone_event);
        let dialog = self
            .agent
            .respond(
                call.transaction,
                200,
                "OK",
                &[],
                Some((
                    "application/sdp",
                    Bytes::from(answered.answer.sdp.to_string()),
                )),
            )
            .await?
            .ok_or(PhoneError::Challenge("no dialog for the answer"))?;
        let (media, heard) = self.start_media(srtp, ports, peer, dtmf)?;
        Ok(ActiveCall {
            dialog,
            media,
            heard,
        })
    }

    /// Refuses an incoming call with `status` (486 Busy Here, 603
    /// Decline...).
    pub async fn reject(&mut self, call: IncomingCall, status: u16) -> Result<(), PhoneError> {
        self.agent
            .respond(call.transaction, status, "Busy Here", &[], None)
            .await?;
        Ok(())
    }

    /// Hangs up: BYE, then the media stops. Returns what the phone heard
    /// and its media counters.
    pub async fn hang_up(
        &mut self,
        mut call: ActiveCall,
    ) -> Result<(Vec<u8>, MediaStats), PhoneError> {
        let bye = self
            .agent
            .send_in_dialog(call.dialog, "BYE", &[], None)
            .await?;
        let response = self.final_response(bye).await;
        let heard = call.take_heard();
        let stats = call.media.stop().await;
        response?;
        Ok((heard, stats))
    }

    /// Waits until the other side ends `call`; returns what the phone
    /// heard and its media counters.
    pub async fn hung_up(
        &mut self,
        mut call: ActiveCall,
    ) -> Result<(Vec<u8>, MediaStats), PhoneError> {
        let dialog = call.dialog;
        self.wait_for(|e| match e {
            UaEvent::DialogTerminated { dialog: d, .. } if *d == dialog => Some(Ok(())),
            _ => None,
        })
        .await?;
        let heard = call.take_heard();
        let stats = call.media.stop().await;
        Ok((heard, stats))
    }

    /// Un-registers and stops the SIP stack.
    pub async fn stop(self) -> Result<(), PhoneError> {
        self.agent.shutdown(Duration::from_secs(2)).await?;
        Ok(())
    }
}
