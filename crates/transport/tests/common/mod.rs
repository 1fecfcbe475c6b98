//! Helpers shared by the behaviour tests: a test PKI made with rcgen at
//! run time, requests, and waiting for events with a bound.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use carevox_sip::{Message, MessageBuilder};
use carevox_transport::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use carevox_transport::{
    Event, Incoming, Received, TlsClientConfig, TlsServerConfig, Transport, TransportConfig,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};

/// The longest any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A certificate authority made for one test.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pub cert: CertificateDer<'static>,
    /// The CA certificate in PEM, for external programs.
    pub pem: String,
}

/// A certificate chain and its key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// The leaf certificate in PEM, for external programs.
    pub cert_pem: String,
    /// The key in PKCS#8 PEM, for external programs.
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let signed = params.self_signed(&key).unwrap();
        let (cert, pem) = (signed.der().clone(), signed.pem());
        Ca {
            params,
            key,
            cert,
            pem,
        }
    }

    /// A leaf certificate for `names` (DNS names or IP addresses), valid now.
    pub fn issue(&self, names: &[&str]) -> Identity {
        self.issue_with(names, |_| {})
    }

    /// A leaf certificate for `names` that expired years ago.
    pub fn issue_expired(&self, names: &[&str]) -> Identity {
        self.issue_with(names, |p| {
            p.not_before = date_time_ymd(2001, 1, 1);
            p.not_after = date_time_ymd(2002, 1, 1);
        })
    }

    fn issue_with(&self, names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Identity {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        let mut dn = DistinguishedName::new();
        // The first name is the common name too, for clients that still
        // check it.
        dn.push(
            DnType::CommonName,
            names.first().map_or("carevox test leaf", String::as_str),
        );
        params.distinguished_name = dn;
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl Identity {
    pub fn server_config(&self) -> TlsServerConfig {
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
