//! baresip (Debian `baresip-core`) against applications written on the
//! transaction driver ([`Endpoint`]), over TLS on 127.0.0.1, with a test CA
//! and server certificate made at test time:
//!
//! - baresip calls a user agent server: INVITE with an SDES SRTP offer
//!   (`mediaenc=srtp-mand`), a 200 whose answer keys SRTP, baresip's ACK,
//!   then our BYE in baresip's dialog, answered 200; baresip reports the
//!   call established, then closed. Every message of the call travels over
//!   the one TLS connection baresip opened.
//! - baresip registers with a registrar: a 401 digest challenge (MD5, the
//!   only algorithm baresip 1.0 answers), then 200 for credentials that
//!   verify, through server transactions of the driver.
//!
//! baresip 1.0 does not refuse a server certificate that does not chain to
//! its `sip_cafile` (tried: it registers all the same): these tests show
//! interoperation over TLS, not baresip's verification. A missing baresip
//! fails the tests, naming `.ci/install-deps`.
#![allow(clippy::disallowed_methods)] // a real clock and random source, as a live peer has
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // helpers outside #[test] functions

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use carevox_sip::auth::{
    Algorithm, Credentials, DigestServer, NonceTracker, Password, Request, ServerConfig, UserSecret,
};
use carevox_sip::sdp::SessionDescription;
use carevox_sip::sdp::offer_answer::{AudioCapabilities, Codec, LocalMedia, answer_audio};
use carevox_sip::transaction::{TransactionId, new_branch};
use carevox_sip::{
    HeaderName, Message, MessageBuilder, Method, ValidationPolicy, Verdict, validate,
};
use carevox_testkit::peer::Peer;
use carevox_testkit::pki::Ca;
use carevox_testkit::unix_now;
use carevox_transport::{
    Destination, Endpoint, EndpointConfig, EndpointEvent, EndpointEvents, Origin, TlsServerConfig,
    Transport, TransportConfig, TransportKind,
};
use tokio::time::Instant;

const CASE_TIMEOUT: Duration = Duration::from_secs(30);
const USER: &str = "alice";
const PASSWORD: &str = "live-test-only";
const REALM: &str = "carevox.test";

/// A driver listening for TLS on 127.0.0.1 with a certificate of `ca`.
async fn tls_endpoint(ca: &Ca) -> (Endpoint, EndpointEvents, SocketAddr) {
    let id = ca.issue(&["127.0.0.1"]);
    let tls = TlsServerConfig::new(id.chain.clone(), id.key.clone_key()).unwrap();
    let (transport, incoming) = Transport::builder(TransportConfig::default())
        .tls("127.0.0.1:0".parse().unwrap(), tls)
        .start()
        .await
        .unwrap();
    let addr = transport.local_addr(TransportKind::Tls).unwrap();
    let (endpoint, events) = Endpoint::start(transport, incoming, EndpointConfig::default());
    (endpoint, events, addr)
}

/// baresip with `account` (see carevox-testkit's `start_baresip`).
fn start_baresip(ca_pem: &str, account: &str, command: Option<&str>) -> Peer {
    carevox_testkit::peer::start_baresip(ca_pem, account, command, "")
}

/// The next event within the case's deadline.
async fn next(events: &mut EndpointEvents, deadline: Instant, baresip: &Peer) -> EndpointEvent {
    match tokio::time::timeout_at(deadline, events.recv()).await {
        Ok(Some(e)) => e,
        _ => panic!(
            "baresip did not get there in time; it printed:\n{}",
            baresip.log()
        ),
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

fn assert_tls_from_baresip(origin: &Origin, message: &Message) {
    assert_eq!(origin.kind, TransportKind::Tls);
    assert!(origin.source.ip().is_loopback());
    assert!(origin.connection.is_some());
    assert!(
        message
            .top_via()
            .unwrap()
            .transport()
            .eq_ignore_ascii_case("TLS"),
        "Via names TLS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_over_tls_with_sdes_and_the_call_is_torn_down() {
    let ca = Ca::new("carevox test CA");
    let (uas, mut events, addr) = tls_endpoint(&ca).await;
    let media = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let rng = ring::rand::SystemRandom::new();
    let baresip = start_baresip(
        &ca.pem,
        "<sip:alice@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU",
        // The account's `transport=tls` carries over to the dialled URI.
        Some(&format!("/dial sip:bob@{addr}")),
    );
    let deadline = Instant::now() + CASE_TIMEOUT;

    // The INVITE with its SDES offer.
    let (invite_id, invite, origin) = loop {
        if let EndpointEvent::Request {
            transaction,
            request,
            origin,
            ..
        } = next(&mut events, deadline, &baresip).await
        {
            assert_eq!(request.method(), Some(Method::Invite), "{request:?}");
            break (transaction, request, origin);
        }
    };
    assert_tls_from_baresip(&origin, &invite);
    assert_eq!(
        validate(&invite, &ValidationPolicy::uas(&[])).unwrap(),
        Verdict::Accept
    );
    let connection = origin.connection.unwrap();
    let offer = SessionDescription::parse_bytes(invite.body()).unwrap();
    let local = LocalMedia::new("127.0.0.1", media.local_addr().unwrap().port(), "7");
    let answered = answer_audio(
        &offer,
        &AudioCapabilities::new(vec![Codec::pcmu()]),
        &local,
        &rng,
    )
    .unwrap();
    let audio = answered.audio.expect("audio accepted");
    assert!(audio.srtp.is_some(), "SDES keys negotiated");
    let contact = format!("<sip:bob@{addr};transport=tls>");
    let ok = MessageBuilder::response_to(&invite, 200, "OK")
        .and_then(|b| b.to_tag("cvx1"))
        .and_then(|b| b.header("Contact", &contact))
        .and_then(|b| b.body("application/sdp", Bytes::from(answered.sdp.to_string())))
        .and_then(|b| b.build())
        .unwrap();
    uas.send_response(invite_id, ok.clone()).await.unwrap();

    // The ACK, the 2xx resent until it comes (13.3.1.4).
    let mut interval = Duration::from_millis(500);
    let mut resend_at = Instant::now() + interval;
    let ack_origin = loop {
        match tokio::time::timeout_at(resend_at.min(deadline), events.recv()).await {
            Ok(Some(EndpointEvent::Ack {
                request, origin, ..
            })) => {
                assert_eq!(request.call_id().unwrap(), invite.call_id().unwrap());
                break origin;
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the endpoint stopped"),
            Err(_) => {
                assert!(Instant::now() < deadline, "no ACK:\n{}", baresip.log());
                uas.send_response(invite_id, ok.clone()).await.unwrap();
                interval = (interval * 2).min(Duration::from_secs(4));
                resend_at = Instant::now() + interval;
            }
        }
    };
    assert_eq!(ack_origin.connection, Some(connection));
    wait_for_log(&baresip, "call established").await;

    // Our BYE in baresip's dialog, over its connection.
    let their_contact = invite.contacts().next().unwrap().unwrap();
    let target = their_contact.addr().unwrap().uri().to_string();
    let bye = MessageBuilder::request("BYE", &target)
        .and_then(|b| {
            b.header(
                "Via",
                &format!("SIP/2.0/TLS {addr};branch={}", new_branch(&rng).unwrap()),
            )
        })
        .and_then(|b| b.header("Max-Forwards", "70"))
        .and_then(|b| b.header("From", ok.header(HeaderName::To).unwrap()))
        .and_then(|b| b.header("To", invite.header(HeaderName::From).unwrap()))
        .and_then(|b| b.header("Call-ID", invite.call_id().unwrap()))
        .and_then(|b| b.header("CSeq", "1 BYE"))
        .and_then(|b| b.build())
        .unwrap();
    let bye_id: TransactionId = uas
        .send_request(
            bye,
            Destination::new(TransportKind::Tls, origin.source).over(connection),
        )
        .await
        .unwrap();
    let (status, bye_origin) = loop {
        if let EndpointEvent::Response {
            transaction,
            response,
            origin,
        } = next(&mut events, deadline, &baresip).await
            && transaction == bye_id
            && response.status().unwrap() >= 200
        {
            break (response.status().unwrap(), origin);
        }
    };
    assert_eq!(status, 200, "baresip ends the call:\n{}", baresip.log());
    assert_eq!(bye_origin.connection, Some(connection));
    // baresip ends the session on our BYE (libre reports a remote BYE with
    // the text of ECONNRESET, while the TLS connection stays open).
    wait_for_log(&baresip, "session closed").await;
    // One TLS connection carried the whole call.
    assert_eq!(uas.transport().connection_count(), 1);
    drop(baresip);
    uas.shutdown(Duration::from_secs(1)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_registers_over_tls_with_digest_through_the_driver() {
    let ca = Ca::new("carevox test CA");
    let (registrar, mut events, addr) = tls_endpoint(&ca).await;
    let rng = ring::rand::SystemRandom::new();
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&rng, &mut secret).unwrap();
    let server = DigestServer::new(
        &secret,
        ServerConfig {
            algorithms: vec![Algorithm::Md5],
            ..ServerConfig::new(REALM)
        },
    )
    .unwrap();
    let mut tracker = NonceTracker::new(64);
    let baresip = start_baresip(
        &ca.pem,
        &format!(
            "<sip:{USER}@127.0.0.1:{};transport=tls>;auth_pass={PASSWORD};regint=60",
            addr.port()
        ),
        None,
    );
    let deadline = Instant::now() + CASE_TIMEOUT;
    let mut challenges = 0;
    let mut connections = Vec::new();
    loop {
        let EndpointEvent::Request {
            transaction,
            request,
            origin,
            ..
        } = next(&mut events, deadline, &baresip).await
        else {
            continue;
        };
        assert_eq!(request.method(), Some(Method::Register));
        assert_tls_from_baresip(&origin, &request);
        assert_eq!(
            validate(&request, &ValidationPolicy::default()).expect("baresip's REGISTER validates"),
            Verdict::Accept
        );
        connections.push(origin.connection.unwrap());
        let binding = origin.source.to_string();
        let Some(header) = request.authorization().next() else {
            let challenge = server
                .challenge(unix_now(), binding.as_bytes(), Algorithm::Md5, false, &rng)
                .unwrap();
            let resp = MessageBuilder::response_to(&request, 401, "Unauthorized")
                .and_then(|b| b.to_tag("carevox"))
                .and_then(|b| b.header("WWW-Authenticate", &challenge.to_string()))
                .and_then(|b| b.build())
                .unwrap();
            registrar.send_response(transaction, resp).await.unwrap();
            challenges += 1;
            continue;
        };
        let creds = Credentials::from_header(&header.unwrap()).unwrap();
        let verified = server
            .verify(
                &creds,
                &Request::new("REGISTER", request.request_uri_str().unwrap()),
                USER,
                &UserSecret::from(Password::new(PASSWORD)),
                binding.as_bytes(),
                unix_now(),
                &mut tracker,
            )
            .unwrap_or_else(|e| panic!("baresip's credentials did not verify: {e}"));
        assert_eq!(verified.algorithm, Algorithm::Md5);
        let contact = request.contacts().next().unwrap().unwrap();
        let resp = MessageBuilder::response_to(&request, 200, "OK")
            .and_then(|b| b.to_tag("carevox"))
            .and_then(|b| {
                b.header(
                    "Contact",
                    &format!("<{}>;expires=60", contact.addr().unwrap().uri()),
                )
            })
            .and_then(|b| b.header("Expires", "60"))
            .and_then(|b| b.build())
            .unwrap();
        registrar.send_response(transaction, resp).await.unwrap();
        break;
    }
    assert!(challenges >= 1, "baresip was never challenged");
    // Every REGISTER came over one TLS connection: the 401 went back over
    // it (18.2.2), and baresip answered it there.
    assert!(connections.iter().all(|c| *c == connections[0]));
    wait_for_log(&baresip, "200 ok").await;
    drop(baresip);
    registrar.shutdown(Duration::from_secs(1)).await.unwrap();
}
