//! baresip (Debian `baresip-core`) against a user agent run by the driver
//! ([`Agent`]), over TLS on 127.0.0.1 with a test CA made at test time.
//! Every rule of the dialog is the core's: the To tag and Contact of our
//! answers, the 2xx retransmitted until baresip's ACK, our ACK for its 2xx,
//! the BYE built from the dialog's state.
//!
//! - baresip calls the agent: INVITE with an SDES offer (`mediaenc=srtp-mand`),
//!   a 200 from the agent whose SDP answer keys SRTP, baresip's ACK, then
//!   the agent's BYE, answered 200; baresip reports the call established,
//!   then closed.
//! - baresip registers over TLS (the application answers 200), then the
//!   agent calls it over the connection of its registration, as a PBX calls
//!   a registered phone: baresip answers on its own (`answermode=auto`),
//!   the agent's core ACKs, and the agent's BYE ends the call. baresip has
//!   no TLS server: every message travels over the one connection it
//!   opened.
//!
//! A missing baresip fails the tests, naming `.ci/install-deps`.
#![allow(clippy::disallowed_methods)] // a real clock and random source, as a live peer has
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // helpers outside #[test] functions

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use carevox_sip::dialog::{DialogState, Outgoing, UaConfig, UaEvent, UserAgent};
use carevox_sip::sdp::SessionDescription;
use carevox_sip::sdp::crypto::{Crypto, CryptoSuite};
use carevox_sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia, answer_audio};
use carevox_sip::transaction::TransportKind as SipKind;
use carevox_sip::{HeaderName, Message, Method};
use carevox_testkit::free_tcp_port;
use carevox_testkit::peer::Peer;
use carevox_testkit::pki::Ca;
use carevox_transport::{
    Agent, AgentEvent, AgentEvents, Destination, EndpointConfig, Origin, TlsServerConfig,
    Transport, TransportConfig, TransportKind,
};
use tokio::time::Instant;

const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// An agent listening for TLS on 127.0.0.1 with a certificate of `ca`.
async fn tls_agent(ca: &Ca) -> (Agent, AgentEvents, SocketAddr) {
    let id = ca.issue(&["127.0.0.1"]);
    let tls = TlsServerConfig::new(id.chain.clone(), id.key.clone_key()).unwrap();
    let (transport, incoming) = Transport::builder(TransportConfig::default())
        .tls("127.0.0.1:0".parse().unwrap(), tls)
        .start()
        .await
        .unwrap();
    let addr = transport.local_addr(TransportKind::Tls).unwrap();
    let ua = UserAgent::new(
        UaConfig::new(
            &addr.to_string(),
            &format!("<sip:pbx@{addr};transport=tls>"),
        ),
        Arc::new(ring::rand::SystemRandom::new()),
    );
    let (agent, events) = Agent::start(transport, incoming, ua, EndpointConfig::default());
    (agent, events, addr)
}

/// baresip with `account` (see carevox-testkit's `start_baresip`).
fn start_baresip(ca_pem: &str, account: &str, command: Option<&str>) -> Peer {
    carevox_testkit::peer::start_baresip(ca_pem, account, command, "")
}

/// The next core event within the case's deadline, with its origin.
async fn next(
    events: &mut AgentEvents,
    deadline: Instant,
    baresip: &Peer,
) -> (UaEvent, Option<Origin>) {
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(AgentEvent::Ua { event, origin })) => return (event, origin),
            Ok(Some(_)) => {}
            _ => panic!(
                "baresip did not get there in time; it printed:\n{}",
                baresip.log()
            ),
        }
    }
}

/// Waits until baresip's output contains `text`.
async fn wait_for_log(baresip: &Peer, text: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while !baresip.log().to_lowercase().contains(text) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        baresip.log().to_lowercase().contains(text),
        "baresip never printed {text:?}:\n{}",
        baresip.log()
    );
}

fn assert_over_tls(origin: Option<&Origin>) {
    let origin = origin.expect("a received message");
    assert_eq!(origin.kind, TransportKind::Tls);
    assert!(origin.source.ip().is_loopback());
    assert!(origin.connection.is_some());
}

/// The SDES answer to `offer`'s audio, keyed for SRTP.
fn sdp_answer(offer: &Message, rng: &ring::rand::SystemRandom) -> String {
    let media = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let offer = SessionDescription::parse_bytes(offer.body()).unwrap();
    let local = LocalMedia::new("127.0.0.1", media.local_addr().unwrap().port(), "7");
    let answered = answer_audio(
        &offer,
        &AudioCapabilities::new(vec![Codec::pcmu()]),
        &local,
        rng,
    )
    .unwrap();
    assert!(
        answered.audio.expect("audio accepted").srtp.is_some(),
        "SDES keys negotiated"
    );
    answered.sdp.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_the_agent_over_tls_and_the_agent_hangs_up() {
    let ca = Ca::new("carevox test CA");
    let (agent, mut events, addr) = tls_agent(&ca).await;
    let rng = ring::rand::SystemRandom::new();
    let baresip = start_baresip(
        &ca.pem,
        "<sip:alice@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU",
        Some(&format!("/dial sip:bob@{addr}")),
    );
    let deadline = Instant::now() + CASE_TIMEOUT;

    let (invite_id, invite, origin) = loop {
        if let (
            UaEvent::Request {
                id,
                request,
                dialog,
            },
            origin,
        ) = next(&mut events, deadline, &baresip).await
        {
            assert_eq!(request.method(), Some(Method::Invite), "{request:?}");
            assert_eq!(dialog, None);
            break (id, request, origin);
        }
    };
    assert_over_tls(origin.as_ref());
    let connection = origin.unwrap().connection.unwrap();
    let answer = sdp_answer(&invite, &rng);
    let dialog = agent
        .respond(
            invite_id,
            200,
            "OK",
            &[],
            Some(("application/sdp", Bytes::from(answer))),
        )
        .await
        .unwrap()
        .expect("the 200 makes a dialog");

    // baresip's ACK reaches the application through the core.
    loop {
        if let (UaEvent::Ack { dialog: d, request }, origin) =
            next(&mut events, deadline, &baresip).await
        {
            assert_eq!(d, dialog);
            assert_eq!(request.call_id().unwrap(), invite.call_id().unwrap());
            assert_eq!(origin.unwrap().connection, Some(connection));
            break;
        }
    }
    wait_for_log(&baresip, "call established").await;
    let state = agent.dialog(dialog).await.unwrap().unwrap();
    assert_eq!(state.state(), DialogState::Confirmed);

    let bye = agent
        .send_in_dialog(dialog, "BYE", &[], None)
        .await
        .unwrap();
    loop {
        if let (UaEvent::Response { id, response, .. }, origin) =
            next(&mut events, deadline, &baresip).await
            && id == bye
        {
            assert_eq!(response.status(), Some(200), "{}", baresip.log());
            assert_eq!(origin.unwrap().connection, Some(connection));
            break;
        }
    }
    wait_for_log(&baresip, "session closed").await;
    assert!(agent.dialog(dialog).await.unwrap().is_none());
    assert_eq!(agent.transport().connection_count(), 1);
    drop(baresip);
    agent.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_calls_baresip_over_its_registration_connection() {
    let ca = Ca::new("carevox test CA");
    let (agent, mut events, addr) = tls_agent(&ca).await;
    let rng = ring::rand::SystemRandom::new();
    let baresip = start_baresip(
        &ca.pem,
        &format!(
            "<sip:alice@127.0.0.1:{};transport=tls>;regint=60;answermode=auto;\
             mediaenc=srtp-mand;audio_codecs=PCMU",
            addr.port()
        ),
        None,
    );
    let deadline = Instant::now() + CASE_TIMEOUT;

    // The registration, answered 200 by the application.
    let (contact, origin) = loop {
        if let (UaEvent::Request { id, request, .. }, origin) =
            next(&mut events, deadline, &baresip).await
            && request.method() == Some(Method::Register)
        {
            assert_over_tls(origin.as_ref());
            let contact = request
                .header(HeaderName::Contact)
                .expect("a Contact")
                .to_owned();
            agent
                .respond(
                    id,
                    200,
                    "OK",
                    &[
                        ("Contact", &format!("{contact};expires=60")),
                        ("Expires", "60"),
                    ],
                    None,
                )
                .await
                .unwrap();
            break (contact, origin.unwrap());
        }
    };
    wait_for_log(&baresip, "200 ok").await;
    let connection = origin.connection.unwrap();
    let contact_uri = carevox_sip::header::NameAddr::parse(&contact)
        .unwrap()
        .uri()
        .as_str()
        .to_owned();
    // The Contact's host and port, reached over the registration's flow.
    let contact_addr: SocketAddr = {
        let uri = carevox_sip::Uri::parse(&contact_uri).unwrap();
        let sip = uri.as_sip().unwrap();
        SocketAddr::new(sip.host().ip().unwrap(), sip.port().unwrap_or(5061))
    };

    // The call, as a PBX places it: to the Contact, over the connection.
    let crypto = Crypto::generate(1, CryptoSuite::AesCm128HmacSha1_80, &rng).unwrap();
    let offer = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\na=crypto:{crypto}\r\n",
        free_tcp_port()
    );
    let invite = Outgoing {
        body: Some(("application/sdp".to_owned(), Bytes::from(offer))),
        ..Outgoing::new(
            "INVITE",
            &contact_uri,
            "<sip:pbx@carevox.test>",
            "<sip:alice@carevox.test>",
            contact_addr,
            SipKind::Tls,
        )
    };
    let mut dest = Destination::new(TransportKind::Tls, contact_addr).over(connection);
    dest.server_name = Some("127.0.0.1".to_owned());
    let invite_id = agent.send_request(invite, dest).await.unwrap();

    let dialog = loop {
        match next(&mut events, deadline, &baresip).await {
            (UaEvent::DialogConfirmed { dialog }, _) => break dialog,
            (UaEvent::Response { id, response, .. }, origin) if id == invite_id => {
                assert!(
                    response.status().unwrap() < 300,
                    "baresip refused the call: {:?}\n{}",
                    response.status(),
                    baresip.log()
                );
                assert_eq!(origin.unwrap().connection, Some(connection));
            }
            _ => {}
        }
    };
    wait_for_log(&baresip, "call established").await;
    let bye = agent
        .send_in_dialog(dialog, "BYE", &[], None)
        .await
        .unwrap();
    loop {
        if let (UaEvent::Response { id, response, .. }, origin) =
            next(&mut events, deadline, &baresip).await
            && id == bye
        {
            assert_eq!(response.status(), Some(200), "{}", baresip.log());
            assert_eq!(origin.unwrap().connection, Some(connection));
            break;
        }
    }
    wait_for_log(&baresip, "session closed").await;
    // Nothing but baresip's own connection was ever opened.
    assert_eq!(agent.transport().connection_count(), 1);
    drop(baresip);
    agent.shutdown(Duration::from_secs(1)).await.unwrap();
}
