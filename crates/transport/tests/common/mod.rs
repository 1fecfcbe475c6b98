//! Helpers shared by the behaviour tests: the test PKI of
//! carevox-testkit as rustls configurations, requests, and waiting for
//! events with a bound.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use carevox_sip::{Message, MessageBuilder};
use carevox_transport::{
    Event, Incoming, Received, TlsClientConfig, TlsServerConfig, Transport, TransportConfig,
};

/// The longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

pub use carevox_testkit::pki::{Ca, Identity};

/// The TLS server configuration of a test identity.
pub trait ServerConfigExt {
    /// A server presenting this chain and key.
    fn server_config(&self) -> TlsServerConfig;
}

impl ServerConfigExt for Identity {
    fn server_config(&self) -> TlsServerConfig {
        TlsServerConfig::new(self.chain.clone(), self.key.clone_key()).unwrap()
    }
}

/// A client configuration trusting `ca` only.
pub fn client_trusting(ca: &Ca) -> TlsClientConfig {
    TlsClientConfig::builder(vec![ca.cert.clone()])
        .build()
        .unwrap()
}

/// A request with a fresh branch, carrying `marker` in its headers and body.
pub fn request(method: &str, transport: &str, marker: &str) -> Message {
    MessageBuilder::request(method, "sip:registrar.example")
        .unwrap()
        .header(
            "Via",
            &format!("SIP/2.0/{transport} client.example;branch=z9hG4bK{marker}"),
        )
        .unwrap()
        .header("Max-Forwards", "70")
        .unwrap()
        .header("From", "<sip:alice@client.example>;tag=1")
        .unwrap()
        .header("To", "<sip:registrar.example>")
        .unwrap()
        .header("Call-ID", &format!("call-{marker}"))
        .unwrap()
        .header("CSeq", &format!("1 {method}"))
        .unwrap()
        .body("text/plain", Bytes::from(format!("body-{marker}")))
        .unwrap()
        .build()
        .unwrap()
}

/// A request whose body is `size` bytes of `fill`.
pub fn big_request(method: &str, transport: &str, fill: u8, size: usize) -> Message {
    MessageBuilder::from_message(&request(method, transport, "big"))
        .body("text/plain", Bytes::from(vec![fill; size]))
        .unwrap()
        .build()
        .unwrap()
}

/// The response `status` to `request`.
pub fn response(request: &Message, status: u16) -> Message {
    MessageBuilder::response_to(request, status, "OK")
        .unwrap()
        .to_tag("srv")
        .unwrap()
        .build()
        .unwrap()
}

/// The next event, failing the test after [`WAIT`].
pub async fn next_event(incoming: &mut Incoming) -> Event {
    tokio::time::timeout(WAIT, incoming.recv())
        .await
        .expect("an event in time")
        .expect("the transport is open")
}

/// The next received message, skipping connection events.
pub async fn next_message(incoming: &mut Incoming) -> Received {
    loop {
        if let Event::Message(r) = next_event(incoming).await {
            return r;
        }
    }
}

/// A transport with `config` listening on every given kind on 127.0.0.1.
pub async fn start(
    config: TransportConfig,
    udp: bool,
    tcp: bool,
    tls: Option<TlsServerConfig>,
    tls_client: Option<TlsClientConfig>,
) -> (Transport, Incoming) {
    let mut b = Transport::builder(config);
    if udp {
        b = b.udp(loopback());
    }
    if tcp {
        b = b.tcp(loopback());
    }
    if let Some(tls) = tls {
        b = b.tls(loopback(), tls);
    }
    if let Some(client) = tls_client {
        b = b.tls_client(client);
    }
    b.start().await.unwrap()
}

/// A server listening on UDP, TCP and TLS with `id`'s certificate, and a
/// client on UDP with a TLS client trusting `ca`, both default configured.
pub async fn server_and_client(
    ca: &Ca,
    id: &Identity,
) -> ((Transport, Incoming), (Transport, Incoming)) {
    let server = start(
        TransportConfig::default(),
        true,
        true,
        Some(id.server_config()),
        None,
    )
    .await;
    let client = start(
        TransportConfig::default(),
        true,
        false,
        None,
        Some(client_trusting(ca)),
    )
    .await;
    (server, client)
}
