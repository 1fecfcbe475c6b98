//! SIP server transactions: a complete non-INVITE exchange (REGISTER, 401,
//! REGISTER, 200) and a complete INVITE one (INVITE, 180, 200, ACK; 100
//! Trying is left to the transaction, which sends none when the answer
//! comes at once).
//!
//! - `sans_io`: carevox-sip's transaction layer alone, in virtual time (1 ms
//!   per exchange, so that about 32 000 transactions stay alive in
//!   Completed or Accepted, as on a loaded UDP server). Each exchange parses
//!   the received bytes, feeds them, builds the responses, sends them
//!   through the transaction and drains the output. No peer has a sans-IO
//!   transaction layer to set beside it.
//! - `udp_loopback`: the same exchanges against a server on 127.0.0.1, from
//!   one client that sends each request and waits for the responses: the
//!   carevox layer on a plain UDP socket in a thread, and ezk-sip-core (its
//!   endpoint, UDP transport and server transactions on a tokio runtime)
//!   answering the same way from a layer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::disallowed_methods)]

use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use carevox_sip::transaction::{
    Config, Event, Input, Output, Received, TransactionId, TransactionLayer, TransportKind,
};
use carevox_sip::{Message, MessageBuilder};
use criterion::{Criterion, criterion_group, criterion_main};

fn register(n: u64, cseq: u32, auth: bool) -> Vec<u8> {
    let auth = if auth {
        "Authorization: Digest username=\"bob\", realm=\"biloxi.example.com\", nonce=\"dcd98b7102dd2f0e\", uri=\"sip:biloxi.example.com\", response=\"245f23415f11432b3434341c022\"\r\n"
    } else {
        ""
    };
    format!(
        "REGISTER sip:biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKreg{n}x{cseq};rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Bob <sip:bob@biloxi.example.com>;tag=456248\r\n\
Call-ID: reg{n}@127.0.0.1\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: <sip:bob@127.0.0.1:5070>;expires=3600\r\n\
{auth}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn invite(n: u64) -> Vec<u8> {
    format!(
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKinv{n};rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: inv{n}@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@127.0.0.1:5070>\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn ack(n: u64) -> Vec<u8> {
    format!(
        "ACK sip:bob@127.0.0.1:5080 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKack{n};rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=srv\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: inv{n}@127.0.0.1\r\n\
CSeq: 1 ACK\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The transaction user of the carevox server: 401 to a REGISTER without
/// credentials, 200 to one with; 180 then 200 to an INVITE.
/// Where a server hands each datagram to send.
type Sink<'a> = &'a mut dyn FnMut(SocketAddr, Bytes);

/// Hands what the layer has to send to `sink`, as soon as it is there (a
/// 180 leaves before the 200 is built, as with any transaction user).
fn flush(layer: &mut TransactionLayer, sink: Sink<'_>) {
    while let Some(o) = layer.poll_output() {
        match o {
            Output::Transmit(t) => sink(t.destination, t.bytes),
            Output::Timeout(_) => break,
            other => panic!("unexpected output while answering: {other:?}"),
        }
    }
}

fn answer(
    layer: &mut TransactionLayer,
    now: Instant,
    id: TransactionId,
    request: &Message,
    sink: Sink<'_>,
) {
    if request.method().map(|m| m.as_str()) == Some("INVITE") {
        let ringing = MessageBuilder::response_to(request, 180, "Ringing")
            .and_then(|b| b.to_tag("srv"))
            .and_then(|b| b.build())
            .unwrap();
        layer.send_response(now, id, ringing).unwrap();
        flush(layer, sink);
        let ok = MessageBuilder::response_to(request, 200, "OK")
            .and_then(|b| b.to_tag("srv"))
            .and_then(|b| b.header("Contact", "<sip:bob@127.0.0.1:5080>"))
            .and_then(|b| b.build())
            .unwrap();
        layer.send_response(now, id, ok).unwrap();
    } else if request.authorization().next().is_some() {
        let ok = MessageBuilder::response_to(request, 200, "OK")
            .and_then(|b| b.to_tag("srv"))
            .and_then(|b| b.build())
            .unwrap();
        layer.send_response(now, id, ok).unwrap();
    } else {
        let challenge = MessageBuilder::response_to(request, 401, "Unauthorized")
            .and_then(|b| b.to_tag("srv"))
            .and_then(|b| {
                b.header(
                    "WWW-Authenticate",
                    "Digest realm=\"biloxi.example.com\", nonce=\"dcd98b7102dd2f0e\", qop=\"auth\"",
                )
            })
            .and_then(|b| b.build())
            .unwrap();
        layer.send_response(now, id, challenge).unwrap();
    }
    flush(layer, sink);
}

/// Feeds one datagram and answers it; what to send goes to `sink`.
fn serve(
    layer: &mut TransactionLayer,
    now: Instant,
    source: SocketAddr,
    bytes: Bytes,
    sink: Sink<'_>,
) {
    let message = Message::parse(bytes).unwrap();
    layer
        .handle_input(
            now,
            Input::Receive(Received {
                source,
                transport: TransportKind::Udp,
                message,
            }),
        )
        .unwrap();
    while let Some(o) = layer.poll_output() {
        match o {
            Output::Transmit(t) => sink(t.destination, t.bytes),
            Output::Event(Event::Request { id, request, .. }) => {
                answer(layer, now, id, &request, sink)
            }
            Output::Timeout(_) => break,
            _ => {}
        }
    }
}

fn big_layer() -> TransactionLayer {
    TransactionLayer::new(Config::default().with_max_transactions(4_000_000))
}

fn sans_io(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip_transaction/sans_io");
    let client: SocketAddr = "127.0.0.1:5070".parse().unwrap();
    g.bench_function("non_invite/carevox", |b| {
        let mut layer = big_layer();
        let mut now = Instant::now();
        let mut n = 0u64;
        let mut out = Vec::with_capacity(8);
        b.iter(|| {
            n += 1;
            now += Duration::from_millis(1);
            layer.handle_input(now, Input::Timeout).unwrap();
            out.clear();
            let mut sink = |to, bytes| out.push((to, bytes));
            serve(
                &mut layer,
                now,
                client,
                Bytes::from(register(n, 1, false)),
                &mut sink,
            );
            serve(
                &mut layer,
                now,
                client,
                Bytes::from(register(n, 2, true)),
                &mut sink,
            );
            assert_eq!(out.len(), 2);
            black_box(&out);
        });
    });
    g.bench_function("invite/carevox", |b| {
        let mut layer = big_layer();
        let mut now = Instant::now();
        let mut n = 0u64;
        let mut out = Vec::with_capacity(8);
        b.iter(|| {
            n += 1;
            now += Duration::from_millis(1);
            layer.handle_input(now, Input::Timeout).unwrap();
            out.clear();
            let mut sink = |to, bytes| out.push((to, bytes));
            serve(&mut layer, now, client, Bytes::from(invite(n)), &mut sink);
            serve(&mut layer, now, client, Bytes::from(ack(n)), &mut sink);
            assert_eq!(out.len(), 2);
            black_box(&out);
        });
    });
    g.finish();
}

/// The carevox server on a UDP socket in a thread, until `stop`.
fn carevox_server(stop: Arc<AtomicBool>) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let addr = sock.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut layer = big_layer();
        let mut buf = vec![0u8; 65_535];
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            match sock.recv_from(&mut buf) {
                Ok((len, from)) => {
                    serve(
                        &mut layer,
                        now,
                        from,
                        Bytes::copy_from_slice(&buf[..len]),
                        &mut |to, bytes| {
                            sock.send_to(&bytes, to).unwrap();
                        },
                    );
                }
                Err(_) => {
                    layer.handle_input(now, Input::Timeout).unwrap();
                    while let Some(Output::Transmit(t)) = layer.poll_output() {
                        sock.send_to(&t.bytes, t.destination).unwrap();
                    }
                }
            }
        }
    });
    (addr, handle)
}

mod ezk {
    use std::net::SocketAddr;

    use ezk_sip_core::{Endpoint, IncomingRequest, Layer, MayTake};
    use ezk_sip_types::{Method, StatusCode};

    pub(crate) struct Answer;

    #[async_trait::async_trait]
    impl Layer for Answer {
        fn name(&self) -> &'static str {
            "bench-answer"
        }

        async fn receive(&self, endpoint: &Endpoint, request: MayTake<'_, IncomingRequest>) {
            let method = request.line.method.clone();
            if method == Method::ACK {
                let _ = request.take();
                return;
            }
            let mut req = request.take();
            if method == Method::INVITE {
                let mut tsx = endpoint.create_server_inv_tsx(&mut req);
                let mut ringing = endpoint.create_response(&req, StatusCode::RINGING, None);
                tsx.respond_provisional(&mut ringing).await.unwrap();
                let ok = endpoint.create_response(&req, StatusCode::OK, None);
                let _accepted = tsx.respond_success(ok).await.unwrap();
            } else {
                let tsx = endpoint.create_server_tsx(&mut req);
                let code = if req.base_headers.cseq.cseq == 2 {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                };
                let response = endpoint.create_response(&req, code, None);
                tsx.respond(response).await.unwrap();
            }
        }
    }

    pub(crate) fn start(rt: &tokio::runtime::Runtime) -> (SocketAddr, Endpoint) {
        rt.block_on(async {
            let mut builder = Endpoint::builder();
            builder.add_layer(Answer);
            let tp = builder
                .bind_udp("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            let addr = tp.bound();
            (addr, builder.build())
        })
    }
}

/// One client exchange: send each request, wait for its final response.
fn exchange_non_invite(sock: &UdpSocket, server: SocketAddr, n: u64, buf: &mut [u8]) {
    sock.send_to(&register(n, 1, false), server).unwrap();
    wait_final(sock, buf, 401);
    sock.send_to(&register(n, 2, true), server).unwrap();
    wait_final(sock, buf, 200);
}

fn exchange_invite(sock: &UdpSocket, server: SocketAddr, n: u64, buf: &mut [u8]) {
    sock.send_to(&invite(n), server).unwrap();
    wait_final(sock, buf, 200);
    sock.send_to(&ack(n), server).unwrap();
}

fn wait_final(sock: &UdpSocket, buf: &mut [u8], status: u16) {
    loop {
        let (len, _) = sock.recv_from(buf).expect("a response in time");
        let code = std::str::from_utf8(&buf[8..11.min(len)]).unwrap_or("");
        if code.parse::<u16>().ok() == Some(status) {
            return;
        }
    }
}

fn udp_loopback(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip_transaction/udp_loopback");
    g.measurement_time(Duration::from_secs(4));
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 65_535];

    let stop = Arc::new(AtomicBool::new(false));
    let (addr, handle) = carevox_server(stop.clone());
    let mut n = 0u64;
    g.bench_function("non_invite/carevox", |b| {
        b.iter(|| {
            n += 1;
            exchange_non_invite(&client, addr, n, &mut buf);
        });
    });
    g.bench_function("invite/carevox", |b| {
        b.iter(|| {
            n += 1;
            exchange_invite(&client, addr, n, &mut buf);
        });
    });
    stop.store(true, Ordering::Relaxed);
    handle.join().unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (addr, _endpoint) = ezk::start(&rt);
    g.bench_function("non_invite/ezk-sip-core", |b| {
        b.iter(|| {
            n += 1;
            exchange_non_invite(&client, addr, n, &mut buf);
        });
    });
    g.bench_function("invite/ezk-sip-core", |b| {
        b.iter(|| {
            n += 1;
            exchange_invite(&client, addr, n, &mut buf);
        });
    });
    g.finish();
}

criterion_group!(benches, sans_io, udp_loopback);
criterion_main!(benches);
