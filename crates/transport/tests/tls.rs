//! TLS refusals: old protocol versions, wrong names, expired and untrusted
//! certificates, missing client certificates under mutual TLS, and
//! handshakes that never finish. Certificates are made at test time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // helpers outside #[test] functions

mod common;

use std::process::Stdio;
use std::time::Duration;

use carevox_transport::{
    ClientAuth, CloseReason, Destination, Error, Event, TlsClientConfig, TlsFailure,
    TlsServerConfig, Transport, TransportConfig, TransportKind,
};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const NAME: &str = "sip.carevox.test";

async fn tls_server(id: &Identity) -> (Transport, carevox_transport::Incoming) {
    start(
        TransportConfig::default(),
        false,
        false,
        Some(id.server_config()),
        None,
    )
    .await
}

async fn tls_client(config: TlsClientConfig) -> (Transport, carevox_transport::Incoming) {
    start(TransportConfig::default(), false, false, None, Some(config)).await
}

/// Sends an OPTIONS to `server` over TLS as `name` and returns the error.
async fn refused(client: &Transport, server: &Transport, name: &str) -> Error {
    let dest = Destination::tls(server.local_addr(TransportKind::Tls).unwrap(), name);
    client
        .send_message(&dest, &request("OPTIONS", "TLS", "neg"))
        .await
        .expect_err("the handshake must fail")
}

/// Asserts that `incoming` delivers no message for a while.
async fn nothing_delivered(incoming: &mut carevox_transport::Incoming) {
    let quiet = timeout(Duration::from_millis(300), async {
        loop {
            if let Some(Event::Message(_)) = incoming.recv().await {
                panic!("a message was delivered");
            }
        }
    })
    .await;
    assert!(quiet.is_err());
}

/// Which certificate the server presents in a refusal case.
#[derive(Clone, Copy, Debug)]
enum Presented {
    /// Valid, from the trusted CA, for [`NAME`].
    Valid,
    /// From the trusted CA, expired years ago.
    Expired,
    /// Valid, from a CA the client does not trust.
    Untrusted,
}

#[tokio::test]
async fn bad_server_certificates_are_refused() {
    // (certificate, name the client asks for, the refusal it must get)
    let cases = [
        (
            Presented::Valid,
            "other.carevox.test",
            TlsFailure::WrongServerName,
        ),
        (Presented::Expired, NAME, TlsFailure::ExpiredCertificate),
        (Presented::Untrusted, NAME, TlsFailure::UntrustedCertificate),
    ];
    for (presented, name, expected) in cases {
        let ca = Ca::new("test CA");
        let other = Ca::new("someone else's CA");
        let id = match presented {
            Presented::Valid => ca.issue(&[NAME]),
            Presented::Expired => ca.issue_expired(&[NAME]),
            Presented::Untrusted => other.issue(&[NAME]),
        };
        let (server, mut server_in) = tls_server(&id).await;
        let (client, _c) = tls_client(client_trusting(&ca)).await;
        let err = refused(&client, &server, name).await;
        assert!(
            matches!(err, Error::Tls { failure } if failure == expected),
            "{presented:?} as {name}: {err:?}"
        );
        assert_eq!(client.connection_count(), 0, "{presented:?}");
        nothing_delivered(&mut server_in).await;
    }
}

#[tokio::test]
async fn an_ip_address_is_not_a_valid_name_for_a_host_certificate() {
    let ca = Ca::new("test CA");
    let (server, mut server_in) = tls_server(&ca.issue(&[NAME])).await;
    let (client, _c) = tls_client(client_trusting(&ca)).await;
    let dest = Destination::new(
        TransportKind::Tls,
        server.local_addr(TransportKind::Tls).unwrap(),
    );
    let err = client
        .send_message(&dest, &request("OPTIONS", "TLS", "ip"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls {
                failure: TlsFailure::WrongServerName
            }
        ),
        "{err:?}"
    );
    assert_eq!(client.connection_count(), 0);
    nothing_delivered(&mut server_in).await;
}

#[tokio::test]
async fn an_untrusted_server_gets_through_only_the_dangerous_door() {
    let ca = Ca::new("test CA");
    let other = Ca::new("someone else's CA");
    let (server, mut server_in) = tls_server(&other.issue(&[NAME])).await;
    // Only through the dangerous door does the same server get through.
    let mut builder = TlsClientConfig::builder(vec![ca.cert.clone()]);
    builder.dangerous().disable_certificate_verification();
    let (lax, mut lax_in) = tls_client(builder.build().unwrap()).await;
    let dest = Destination::tls(server.local_addr(TransportKind::Tls).unwrap(), NAME);
    let req = request("OPTIONS", "TLS", "lax");
    lax.send_message(&dest, &req).await.unwrap();
    let got = next_message(&mut server_in).await;
    assert_eq!(got.message.as_bytes(), req.as_bytes());
    // An answer over the unverified connection says so.
    server
        .send_message(&Destination::reply_to(&got), &response(&got.message, 200))
        .await
        .unwrap();
    assert!(!next_message(&mut lax_in).await.peer_authenticated);
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let ca = Ca::new("test CA");
    let server_id = ca.issue(&[NAME]);
    let server_tls = TlsServerConfig::with_client_auth(
        server_id.chain.clone(),
        server_id.key.clone_key(),
        ClientAuth::Required(vec![ca.cert.clone()]),
    )
    .unwrap();
    let (server, mut server_in) = start(
        TransportConfig::default(),
        false,
        false,
        Some(server_tls),
        None,
    )
    .await;
    let dest = Destination::tls(server.local_addr(TransportKind::Tls).unwrap(), NAME);

    // No certificate: in TLS 1.3 the client finishes its side of the
    // handshake before the server refuses, so the refusal shows as an
    // error or as the connection closing; the message is never delivered.
    let (client, mut client_in) = tls_client(client_trusting(&ca)).await;
    match client
        .send_message(&dest, &request("OPTIONS", "TLS", "nocert"))
        .await
    {
        Err(Error::Tls { .. }) => {}
        Ok(_) => loop {
            if let Event::Closed { reason, .. } = next_event(&mut client_in).await {
                assert!(
                    matches!(reason, CloseReason::Io | CloseReason::PeerClosed),
                    "{reason:?}"
                );
                break;
            }
        },
        Err(e) => panic!("unexpected error {e:?}"),
    }
    nothing_delivered(&mut server_in).await;

    // A certificate from another CA is refused the same way.
    let stranger = Ca::new("stranger CA").issue(&["phone.example"]);
    let config = TlsClientConfig::builder(vec![ca.cert.clone()])
        .client_certificate(stranger.chain.clone(), stranger.key.clone_key())
        .build()
        .unwrap();
    let (client, mut client_in) = tls_client(config).await;
    if client
        .send_message(&dest, &request("OPTIONS", "TLS", "stranger"))
        .await
        .is_ok()
    {
        loop {
            if let Event::Closed { .. } = next_event(&mut client_in).await {
                break;
            }
        }
    }
    nothing_delivered(&mut server_in).await;

    // With a certificate from the trusted CA the message arrives.
    let phone = ca.issue(&["phone.carevox.test"]);
    let config = TlsClientConfig::builder(vec![ca.cert.clone()])
        .client_certificate(phone.chain.clone(), phone.key.clone_key())
        .build()
        .unwrap();
    let (client, _c) = tls_client(config).await;
    let req = request("OPTIONS", "TLS", "withcert");
    client.send_message(&dest, &req).await.unwrap();
    assert_eq!(
        next_message(&mut server_in).await.message.as_bytes(),
        req.as_bytes()
    );
}

#[tokio::test]
async fn mutual_tls_refusal_is_reported_by_a_raw_rustls_client() {
    // The same refusal seen without this crate's client: the server's
    // alert arrives on the first read.
    let ca = Ca::new("test CA");
    let server_id = ca.issue(&[NAME]);
    let server_tls = TlsServerConfig::with_client_auth(
        server_id.chain.clone(),
        server_id.key.clone_key(),
        ClientAuth::Required(vec![ca.cert.clone()]),
    )
    .unwrap();
    let (server, _server_in) = start(
        TransportConfig::default(),
        false,
        false,
        Some(server_tls),
        None,
    )
    .await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(server.local_addr(TransportKind::Tls).unwrap())
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from(NAME).unwrap();
    match connector.connect(name, tcp).await {
        Err(_) => {}
        Ok(mut tls) => {
            let _ = tls.write_all(b"\r\n\r\n").await;
            let mut buf = [0u8; 16];
            let r = timeout(WAIT, tls.read(&mut buf)).await.unwrap();
            let err = r.expect_err("the server refuses the client");
            let tls_err = err
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
                .expect("a TLS error");
            assert!(
                matches!(
                    tls_err,
                    rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired)
                ),
                "{tls_err:?}"
            );
        }
    }
}

/// A ClientHello with record and client version `minor` (2: TLS 1.1,
/// 3: TLS 1.2), no supported_versions extension, and the suites, groups and
/// signature algorithms rustls supports, so that only the version differs.
fn client_hello(minor: u8) -> Vec<u8> {
    let mut body = vec![0x03, minor];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x06, 0xc0, 0x2b, 0xc0, 0x2f, 0x13, 0x01]);
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // groups
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // point formats
        0x00, 0x0d, 0x00, 0x06, 0x00, 0x04, 0x04, 0x03, 0x08, 0x04, // sig algs
    ];
    body.extend_from_slice(&u16::try_from(extensions.len()).unwrap().to_be_bytes());
    body.extend_from_slice(extensions);
    let mut hs = vec![0x01]; // ClientHello
    let len = u32::try_from(body.len()).unwrap().to_be_bytes();
    hs.extend_from_slice(&len[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, minor];
    record.extend_from_slice(&u16::try_from(hs.len()).unwrap().to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

/// Sends `hello` to `addr` and returns the first record header and two
/// bytes of its body.
async fn first_record(addr: std::net::SocketAddr, hello: &[u8]) -> Vec<u8> {
    let mut peer = TcpStream::connect(addr).await.unwrap();
    peer.write_all(hello).await.unwrap();
    let mut reply = vec![0u8; 7];
    timeout(WAIT, peer.read_exact(&mut reply))
        .await
        .unwrap()
        .unwrap();
    reply
}

#[tokio::test]
async fn a_tls_1_1_client_hello_is_refused_with_a_protocol_version_alert() {
    let ca = Ca::new("test CA");
    let (server, mut server_in) = tls_server(&ca.issue(&[NAME])).await;
    let addr = server.local_addr(TransportKind::Tls).unwrap();
    // The same hello as TLS 1.2 gets a ServerHello (a handshake record)...
    let ok = first_record(addr, &client_hello(3)).await;
    assert_eq!(ok[0], 0x16, "{ok:?}");
    // ...as TLS 1.1 a fatal (2) protocol_version (70) alert.
    let reply = first_record(addr, &client_hello(2)).await;
    assert_eq!(reply[0], 0x15, "an alert record, got {reply:?}");
    assert_eq!(&reply[5..7], &[2, 70], "{reply:?}");
    nothing_delivered(&mut server_in).await;
}

#[tokio::test]
async fn openssl_s_client_with_tls_1_1_is_refused_and_with_tls_1_2_accepted() {
    let Ok(status) = std::process::Command::new("openssl")
        .arg("version")
        .output()
    else {
        panic!("openssl is not installed: run .ci/install-deps (Debian package openssl)");
    };
    assert!(status.status.success());
    let ca = Ca::new("test CA");
    let (server, _server_in) = tls_server(&ca.issue(&[NAME])).await;
    let addr = server.local_addr(TransportKind::Tls).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();

    let run = |version: &'static str, extra: &'static [&'static str]| {
        let ca_file = ca_file.clone();
        async move {
            let child = tokio::process::Command::new("openssl")
                .args(["s_client", "-connect", &addr.to_string(), version])
                .args(["-servername", NAME, "-verify_return_error", "-CAfile"])
                .arg(&ca_file)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let out = timeout(WAIT, child.wait_with_output())
                .await
                .unwrap()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success(), text)
        }
    };
    let (ok, text) = run("-tls1_1", &["-cipher", "DEFAULT:@SECLEVEL=0"]).await;
    assert!(!ok, "TLS 1.1 accepted:\n{text}");
    assert!(text.contains("Cipher is (NONE)"), "{text}");
    let (ok, text) = run("-tls1_2", &[]).await;
    assert!(ok, "TLS 1.2 refused:\n{text}");
    assert!(text.contains("TLSv1.2"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
}

#[tokio::test]
async fn a_half_open_handshake_times_out() {
    let ca = Ca::new("test CA");
    let config = TransportConfig::default()
        .with_handshake_timeout(Duration::from_millis(1500))
        .with_max_connections(1);
    let (server, _server_in) = start(
        config,
        false,
        false,
        Some(ca.issue(&[NAME]).server_config()),
        None,
    )
    .await;
    let addr = server.local_addr(TransportKind::Tls).unwrap();
    // A peer that connects and sends half a ClientHello, then nothing.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(&client_hello(3)[..20]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // It holds the only slot while the handshake is pending...
    assert_eq!(server.connection_count(), 1);
    let mut buf = [0u8; 64];
    // ...until the handshake timeout closes it.
    let r = timeout(WAIT, half.read(&mut buf)).await.unwrap();
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert_eq!(server.connection_count(), 0);

    // An outbound handshake to a server that never answers times out too.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (client, _c) = start(
        TransportConfig::default().with_handshake_timeout(Duration::from_millis(300)),
        false,
        false,
        None,
        Some(client_trusting(&ca)),
    )
    .await;
    let err = client
        .send_message(
            &Destination::tls(silent.local_addr().unwrap(), NAME),
            &request("OPTIONS", "TLS", "silent"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tls {
                failure: TlsFailure::Timeout
            }
        ),
        "{err:?}"
    );
    assert_eq!(client.connection_count(), 0);
}

#[tokio::test]
async fn tls_without_a_client_configuration_is_refused() {
    let (client, _c) = start(TransportConfig::default(), false, false, None, None).await;
    let err = client
        .send_message(
            &Destination::tls("127.0.0.1:5061".parse().unwrap(), NAME),
            &request("OPTIONS", "TLS", "noconf"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoTlsClient), "{err:?}");
}

#[test]
fn bad_configurations_are_typed_errors() {
    assert!(matches!(
        TlsClientConfig::builder(Vec::new()).build(),
        Err(Error::TlsConfig { .. })
    ));
    let ca = Ca::new("test CA");
    let id = ca.issue(&[NAME]);
    let other = ca.issue(&[NAME]);
    // A key that does not match the certificate.
    assert!(matches!(
        TlsServerConfig::new(id.chain.clone(), other.key.clone_key()),
        Err(Error::TlsConfig { .. })
    ));
    assert!(matches!(
        TlsServerConfig::with_client_auth(
            id.chain.clone(),
            id.key.clone_key(),
            ClientAuth::Required(Vec::new())
        ),
        Err(Error::TlsConfig { .. })
    ));
}

#[test]
fn debug_output_holds_no_key_material() {
    let ca = Ca::new("test CA");
    let id = ca.issue(&[NAME]);
    let server = format!("{:?}", id.server_config());
    let client = TlsClientConfig::builder(vec![ca.cert.clone()])
        .client_certificate(id.chain.clone(), id.key.clone_key())
        .build()
        .unwrap();
    let client = format!("{client:?}");
    let mut builder = TlsClientConfig::builder(vec![ca.cert.clone()])
        .client_certificate(id.chain.clone(), id.key.clone_key());
    let builder_text = format!("{builder:?}");
    builder.dangerous().disable_certificate_verification();
    assert!(format!("{builder:?}").contains("verification off"));
    let key = id.key.secret_der();
    // The P-256 private scalar (after `02 01 01 04 20` in the PKCS#8
    // ECPrivateKey), in any common rendering, never appears; nor does the
    // certificate, which may name a person.
    let at = key
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .unwrap()
        + 5;
    let window = &key[at..at + 32];
    let cert_hex: String = id.chain[0][..48]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let decimal = format!("{window:?}");
    let decimal = decimal.trim_matches(|c| c == '[' || c == ']');
    let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
    for text in [&server, &client, &builder_text] {
        assert!(!text.contains(decimal), "{text}");
        assert!(!text.to_ascii_lowercase().contains(&hex), "{text}");
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(!text.to_ascii_lowercase().contains(&cert_hex), "{text}");
    }
}
