//! Requests and responses over UDP, TCP and TLS between two transports on
//! 127.0.0.1; responses on the connection the request came on; connection
//! reuse and RFC 5923 aliases.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // helpers outside #[test] functions

mod common;

use carevox_transport::{
    ClientAuth, Destination, Event, TlsClientConfig, TlsServerConfig, TransportConfig,
    TransportKind,
};
use common::*;

/// A server listening on `kind` only and a client that can reach it
/// (trusting the server's test CA for TLS), and the destination to use.
async fn pair_over(
    kind: TransportKind,
) -> (
    carevox_transport::Transport,
    carevox_transport::Incoming,
    carevox_transport::Transport,
    carevox_transport::Incoming,
    Destination,
) {
    let udp = kind == TransportKind::Udp;
    let ca = Ca::new("test CA");
    let (server_tls, client_tls) = match kind {
        TransportKind::Tls => (
            Some(ca.issue(&["sip.carevox.test"]).server_config()),
            Some(client_trusting(&ca)),
        ),
        _ => (None, None),
    };
    let (server, server_in) = start(
        TransportConfig::default(),
        udp,
        kind == TransportKind::Tcp,
        server_tls,
        None,
    )
    .await;
    let (client, client_in) = start(TransportConfig::default(), udp, false, None, client_tls).await;
    let addr = server.local_addr(kind).unwrap();
    let dest = match kind {
        TransportKind::Tls => Destination::tls(addr, "sip.carevox.test"),
        _ => Destination::new(kind, addr),
    };
    (server, server_in, client, client_in, dest)
}

/// Over each transport: a request from the client, answered by the server
/// to where it came from (for TCP and TLS over the same connection, RFC
/// 3261 18.2.2), both ends checked.
#[tokio::test]
async fn request_and_response_over_each_transport() {
    for kind in [TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls] {
        let (server, mut server_in, client, mut client_in, dest) = pair_over(kind).await;
        let req = request("OPTIONS", kind.via_name(), "round1");
        let sent = client.send_message(&dest, &req).await.unwrap();
        assert_eq!(sent.kind, kind);
        assert_eq!(sent.connection.is_some(), kind.is_stream(), "{kind}");

        let got = next_message(&mut server_in).await;
        assert_eq!(got.kind, kind);
        assert_eq!(got.local, dest.addr);
        assert_eq!(got.message.as_bytes(), req.as_bytes());
        assert!(
            !got.peer_authenticated,
            "{kind}: the client showed no certificate"
        );
        if kind == TransportKind::Udp {
            assert_eq!(got.connection, None);
            assert_eq!(got.source, client.local_addr(TransportKind::Udp).unwrap());
        }

        let resp = response(&got.message, 200);
        let back_sent = server
            .send_message(&Destination::reply_to(&got), &resp)
            .await
            .unwrap();
        // The response goes back over the connection the request came on.
        assert_eq!(back_sent.connection, got.connection, "{kind}");
        let back = next_message(&mut client_in).await;
        assert_eq!(back.connection, sent.connection, "{kind}");
        // We verified the server's certificate; UDP and TCP prove nothing.
        assert_eq!(back.peer_authenticated, kind == TransportKind::Tls);
        assert_eq!(back.message.status(), Some(200));
        assert_eq!(back.message.as_bytes(), resp.as_bytes());
        // One connection each way, no second one opened for the response.
        let expected = usize::from(kind.is_stream());
        assert_eq!(server.connection_count(), expected, "{kind}");
        assert_eq!(client.connection_count(), expected, "{kind}");
    }
}

#[tokio::test]
async fn tls_to_an_ip_address_checks_the_ip_in_the_certificate() {
    let ca = Ca::new("test CA");
    let id = ca.issue(&["127.0.0.1"]);
    let (server, mut server_in) = start(
        TransportConfig::default(),
        false,
        false,
        Some(id.server_config()),
        None,
    )
    .await;
    let (client, _client_in) = start(
        TransportConfig::default(),
        false,
        false,
        None,
        Some(client_trusting(&ca)),
    )
    .await;
    let addr = server.local_addr(TransportKind::Tls).unwrap();
    let req = request("OPTIONS", "TLS", "ip1");
    client
        .send_message(&Destination::new(TransportKind::Tls, addr), &req)
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut server_in).await.message.as_bytes(),
        req.as_bytes()
    );
}

#[tokio::test]
async fn connections_are_reused_for_the_same_destination() {
    let (server, mut server_in) = start(TransportConfig::default(), false, true, None, None).await;
    let (client, _client_in) = start(TransportConfig::default(), false, false, None, None).await;
    let dest = Destination::tcp(server.local_addr(TransportKind::Tcp).unwrap());
    let mut conns = Vec::new();
    for i in 0..5 {
        let req = request("OPTIONS", "TCP", &format!("reuse{i}"));
        conns.push(client.send_message(&dest, &req).await.unwrap().connection);
    }
    let mut server_conns = Vec::new();
    for _ in 0..5 {
        server_conns.push(next_message(&mut server_in).await.connection);
    }
    assert!(conns.iter().all(|c| *c == conns[0]), "{conns:?}");
    assert!(server_conns.iter().all(|c| *c == server_conns[0]));
    assert_eq!(client.connection_count(), 1);
    assert_eq!(server.connection_count(), 1);
    assert_eq!(
        client.connection_to(TransportKind::Tcp, dest.addr),
        conns[0]
    );
}

#[tokio::test]
async fn concurrent_sends_open_one_connection() {
    let (server, mut server_in) = start(TransportConfig::default(), false, true, None, None).await;
    let (client, _client_in) = start(TransportConfig::default(), false, false, None, None).await;
    let dest = Destination::tcp(server.local_addr(TransportKind::Tcp).unwrap());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = client.clone();
        let dest = dest.clone();
        tasks.push(tokio::spawn(async move {
            let req = request("OPTIONS", "TCP", &format!("conc{i}"));
            client.send_message(&dest, &req).await.unwrap().connection
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    for _ in 0..8 {
        next_message(&mut server_in).await;
    }
    assert!(ids.iter().all(|c| *c == ids[0]), "{ids:?}");
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn a_request_toward_the_peer_reuses_its_inbound_connection() {
    // The server sends a request back toward the client's address: the
    // connection the client opened carries it, none is opened.
    let (server, mut server_in) = start(TransportConfig::default(), false, true, None, None).await;
    let (client, mut client_in) = start(TransportConfig::default(), false, false, None, None).await;
    let dest = Destination::tcp(server.local_addr(TransportKind::Tcp).unwrap());
    client
        .send_message(&dest, &request("REGISTER", "TCP", "in1"))
        .await
        .unwrap();
    let got = next_message(&mut server_in).await;
    let back = request("OPTIONS", "TCP", "in2");
    let sent = server
        .send_message(&Destination::tcp(got.source), &back)
        .await
        .unwrap();
    assert_eq!(sent.connection, got.connection);
    let r = next_message(&mut client_in).await;
    assert_eq!(r.message.as_bytes(), back.as_bytes());
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn a_response_falls_back_to_the_address_when_its_connection_closed() {
    let (server, mut server_in) = start(TransportConfig::default(), false, true, None, None).await;
    let (client, mut client_in) = start(TransportConfig::default(), false, true, None, None).await;
    let dest = Destination::tcp(server.local_addr(TransportKind::Tcp).unwrap());
    client
        .send_message(&dest, &request("OPTIONS", "TCP", "fb1"))
        .await
        .unwrap();
    let got = next_message(&mut server_in).await;
    let conn = got.connection.unwrap();
    server.close_connection(conn);
    loop {
        if let Event::Closed { connection, .. } = next_event(&mut server_in).await {
            assert_eq!(connection, conn);
            break;
        }
    }
    // The client listens on TCP too: the response goes to its listener
    // over a new connection.
    let listener = client.local_addr(TransportKind::Tcp).unwrap();
    let resp = response(&got.message, 200);
    let dest = Destination::tcp(listener).over(conn);
    let sent = server.send_message(&dest, &resp).await.unwrap();
    assert_ne!(sent.connection, Some(conn));
    let back = next_message(&mut client_in).await;
    assert_eq!(back.message.as_bytes(), resp.as_bytes());
}

#[tokio::test]
async fn tls_alias_from_an_authenticated_client_is_honoured() {
    let ca = Ca::new("test CA");
    let server_id = ca.issue(&["sip.carevox.test"]);
    let client_id = ca.issue(&["phone.carevox.test"]);
    let server_tls = TlsServerConfig::with_client_auth(
        server_id.chain.clone(),
        server_id.key.clone_key(),
        ClientAuth::Required(vec![ca.cert.clone()]),
    )
    .unwrap();
    let client_tls = TlsClientConfig::builder(vec![ca.cert.clone()])
        .client_certificate(client_id.chain.clone(), client_id.key.clone_key())
        .build()
        .unwrap();
    let (server, mut server_in) = start(
        TransportConfig::default(),
        false,
        false,
        Some(server_tls),
        None,
    )
    .await;
    let (client, mut client_in) = start(
        TransportConfig::default(),
        false,
        false,
        None,
        Some(client_tls),
    )
    .await;
    let dest = Destination::tls(
        server.local_addr(TransportKind::Tls).unwrap(),
        "sip.carevox.test",
    );
    let req = carevox_sip::MessageBuilder::from_message(&request("REGISTER", "TLS", "al1"))
        .set("Via", "SIP/2.0/TLS 127.0.0.1:5071;branch=z9hG4bKal1;alias")
        .unwrap()
        .build()
        .unwrap();
    client.send_message(&dest, &req).await.unwrap();
    let got = next_message(&mut server_in).await;
    assert!(got.peer_authenticated);
    let alias: std::net::SocketAddr = "127.0.0.1:5071".parse().unwrap();
    assert_eq!(
        server.connection_to(TransportKind::Tls, alias),
        got.connection
    );
    // A request toward the aliased address travels over that connection.
    let back = request("OPTIONS", "TLS", "al2");
    let sent = server
        .send_message(&Destination::tls(alias, "phone.carevox.test"), &back)
        .await
        .unwrap();
    assert_eq!(sent.connection, got.connection);
    assert_eq!(
        next_message(&mut client_in).await.message.as_bytes(),
        back.as_bytes()
    );
}

#[tokio::test]
async fn alias_is_ignored_without_a_client_certificate() {
    let ca = Ca::new("test CA");
    let id = ca.issue(&["sip.carevox.test"]);
    let (server, mut server_in) = start(
        TransportConfig::default(),
        false,
        false,
        Some(id.server_config()),
        None,
    )
    .await;
    let (client, _client_in) = start(
        TransportConfig::default(),
        false,
        false,
        None,
        Some(client_trusting(&ca)),
    )
    .await;
    let dest = Destination::tls(
        server.local_addr(TransportKind::Tls).unwrap(),
        "sip.carevox.test",
    );
    let req = carevox_sip::MessageBuilder::from_message(&request("REGISTER", "TLS", "al3"))
        .set("Via", "SIP/2.0/TLS 127.0.0.1:5072;branch=z9hG4bKal3;alias")
        .unwrap()
        .build()
        .unwrap();
    client.send_message(&dest, &req).await.unwrap();
    let got = next_message(&mut server_in).await;
    assert!(got.connection.is_some());
    assert!(!got.peer_authenticated);
    let alias: std::net::SocketAddr = "127.0.0.1:5072".parse().unwrap();
    assert_eq!(server.connection_to(TransportKind::Tls, alias), None);
    // The application may still alias it after its own checks.
    assert!(server.alias(got.connection.unwrap(), alias));
    assert_eq!(
        server.connection_to(TransportKind::Tls, alias),
        got.connection
    );
}

#[tokio::test]
async fn ipv6_loopback_over_udp_and_tcp() {
    let v6: std::net::SocketAddr = "[::1]:0".parse().unwrap();
    let (server, mut server_in) = carevox_transport::Transport::builder(TransportConfig::default())
        .udp(v6)
        .tcp(v6)
        .start()
        .await
        .unwrap();
    let (client, _c) = carevox_transport::Transport::builder(TransportConfig::default())
        .udp(v6)
        .start()
        .await
        .unwrap();
    for dest in [
        Destination::udp(server.local_addr(TransportKind::Udp).unwrap()),
        Destination::tcp(server.local_addr(TransportKind::Tcp).unwrap()),
    ] {
        let req = request("OPTIONS", dest.kind.via_name(), "v6");
        client.send_message(&dest, &req).await.unwrap();
        let got = next_message(&mut server_in).await;
        assert!(got.source.is_ipv6() && got.source.ip().is_loopback());
        assert_eq!(got.message.as_bytes(), req.as_bytes());
    }
    // No IPv4 UDP socket: a typed error, not a panic.
    let err = client
        .send_message(
            &Destination::udp("127.0.0.1:9".parse().unwrap()),
            &request("OPTIONS", "UDP", "v4"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            carevox_transport::Error::NoSocket { family: "IPv4", .. }
        ),
        "{err}"
    );
}
