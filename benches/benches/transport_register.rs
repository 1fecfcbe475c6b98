//! Registrations per second over TLS on 127.0.0.1: many TLS clients send
//! REGISTER requests and wait for the 200, one after the other on each
//! client, all clients at once.
//!
//! - `carevox_endpoint`: a registrar written on carevox-transport's
//!   transaction driver (`Endpoint`), answering each REGISTER 200 with its
//!   Contact, in a server transaction.
//! - `kamailio`: kamailio (Debian `kamailio`, `kamailio-tls-modules`) with
//!   its TLS module on 127.0.0.1, `registrar` and `usrloc` in memory,
//!   `save("location")` answering 200: the same load in the same run.
//!
//! Both servers present a certificate made at run time by a test CA that
//! the clients trust and verify. The clients are carevox-transport TLS
//! clients (one connection each, opened before measuring). Criterion's
//! throughput is in registrations per second.
//!
//! Run with `cargo bench -p carevox-benches --bench transport_register`.
//! A missing kamailio fails the benchmark, naming `.ci/install-deps`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use carevox_sip::{Message, MessageBuilder, Method};
use carevox_testkit::pki::{Ca, Identity};
use carevox_testkit::{find_binary, free_tcp_port};
use carevox_transport::{
    Destination, Endpoint, EndpointConfig, EndpointEvent, Event, Incoming, TlsClientConfig,
    TlsServerConfig, Transport, TransportConfig, TransportKind,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

/// TLS clients registering at once.
const CLIENTS: usize = 16;
/// The longest one registration may take before the run is declared stuck.
const STUCK: Duration = Duration::from_secs(10);
/// The server certificate's name, checked by every client.
const SERVER_NAME: &str = "registrar.carevox.test";

/// One TLS client: its transport, events and a counter for CSeq and branch.
struct Client {
    index: usize,
    transport: Transport,
    incoming: Incoming,
    seq: u32,
}

fn register(client: usize, seq: u32, local: SocketAddr) -> Message {
    MessageBuilder::request("REGISTER", "sip:carevox.test")
        .and_then(|b| {
            b.header(
                "Via",
                &format!("SIP/2.0/TLS {local};branch=z9hG4bKbench{client}x{seq};rport"),
            )
        })
        .and_then(|b| b.header("Max-Forwards", "70"))
        .and_then(|b| {
            b.header(
                "From",
                &format!("<sip:user{client}@carevox.test>;tag=b{client}"),
            )
        })
        .and_then(|b| b.header("To", &format!("<sip:user{client}@carevox.test>")))
        .and_then(|b| b.header("Call-ID", &format!("bench-{client}@127.0.0.1")))
        .and_then(|b| b.header("CSeq", &format!("{seq} REGISTER")))
        .and_then(|b| {
            b.header(
                "Contact",
                &format!("<sip:user{client}@{local};transport=tls>;expires=3600"),
            )
        })
        .and_then(|b| b.build())
        .unwrap()
}

impl Client {
    async fn connect(index: usize, ca: &Ca) -> Client {
        let tls = TlsClientConfig::builder(vec![ca.cert.clone()])
            .build()
            .unwrap();
        let (transport, incoming) = Transport::builder(TransportConfig::default())
            .tls_client(tls)
            .start()
            .await
            .unwrap();
        Client {
            index,
            transport,
            incoming,
            seq: 0,
        }
    }

    /// One REGISTER and its 200.
    async fn register_once(&mut self, server: SocketAddr) {
        self.seq += 1;
        let local: SocketAddr = "127.0.0.1:5999".parse().unwrap();
        let req = register(self.index, self.seq, local);
        self.transport
            .send_message(&Destination::tls(server, SERVER_NAME), &req)
            .await
            .unwrap();
        loop {
            let event = tokio::time::timeout(STUCK, self.incoming.recv())
                .await
                .expect("a response in time")
                .expect("the client transport is open");
            let Event::Message(r) = event else {
                continue;
            };
            let Some(status) = r.message.status() else {
                continue;
            };
            if status < 200 || r.message.cseq().unwrap().seq != self.seq {
                continue;
            }
            assert_eq!(status, 200, "the registrar refused a REGISTER");
            return;
        }
    }
}

/// `iters` registrations spread over every client, all clients at once;
/// returns the wall time they took.
fn measure(rt: &Runtime, clients: &mut Vec<Client>, server: SocketAddr, iters: u64) -> Duration {
    rt.block_on(async {
        let per_client = iters / CLIENTS as u64;
        let extra = iters % CLIENTS as u64;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, mut client) in clients.drain(..).enumerate() {
            let n = per_client + u64::from((i as u64) < extra);
            tasks.spawn(async move {
                for _ in 0..n {
                    client.register_once(server).await;
                }
                client
            });
        }
        while let Some(done) = tasks.join_next().await {
            clients.push(done.unwrap());
        }
        started.elapsed()
    })
}

/// A registrar on the transaction driver: every REGISTER answered 200 with
/// its Contact.
async fn carevox_registrar(id: &Identity) -> (Endpoint, SocketAddr) {
    let tls = TlsServerConfig::new(id.chain.clone(), id.key.clone_key()).unwrap();
    let (transport, incoming) =
        Transport::builder(TransportConfig::default().with_max_connections(4 * CLIENTS))
            .tls("127.0.0.1:0".parse().unwrap(), tls)
            .start()
            .await
            .unwrap();
    let addr = transport.local_addr(TransportKind::Tls).unwrap();
    let (endpoint, mut events) = Endpoint::start(transport, incoming, EndpointConfig::default());
    let answering = endpoint.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let EndpointEvent::Request {
                transaction,
                request,
                ..
            } = event
            else {
                continue;
            };
            let mut b = MessageBuilder::response_to(&request, 200, "OK")
                .and_then(|b| b.to_tag("reg"))
                .unwrap();
            if request.method() == Some(Method::Register) {
                for contact in request.contacts() {
                    if let Some(a) = contact
                        .ok()
                        .and_then(|c| c.addr().map(|a| a.uri().to_string()))
                    {
                        b = b.header("Contact", &format!("<{a}>;expires=3600")).unwrap();
                    }
                }
            }
            let _ = answering
                .send_response(transaction, b.build().unwrap())
                .await;
        }
    });
    (endpoint, addr)
}

/// kamailio running as a TLS registrar on 127.0.0.1; killed on drop.
struct Kamailio {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // kamailio forks its workers into its own process group: end the
        // whole group (SIGTERM), then make sure of the main process.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let until = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const KAMAILIO_MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";

fn kamailio_registrar(id: &Identity) -> (Kamailio, SocketAddr) {
    let bin = find_binary("kamailio", "kamailio");
    assert!(
        std::path::Path::new(KAMAILIO_MODULES)
            .join("tls.so")
            .is_file(),
        "kamailio's TLS module is not installed: run `bash .ci/install-deps`, which installs \
         the Debian package kamailio-tls-modules listed in .ci/apt-packages"
    );
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &id.cert_pem).unwrap();
    std::fs::write(&key, &id.key_pem).unwrap();
    let tls_cfg = dir.path().join("tls.cfg");
    std::fs::write(
        &tls_cfg,
        format!(
            "[server:default]\n\
             method = TLSv1.2+\n\
             verify_certificate = no\n\
             require_certificate = no\n\
             private_key = {}\n\
             certificate = {}\n",
            key.display(),
            cert.display()
        ),
    )
    .unwrap();
    let port = free_tcp_port();
    let cfg = dir.path().join("kamailio.cfg");
    std::fs::write(
        &cfg,
        format!(
            "#!KAMAILIO\n\
             debug=0\n\
             log_stderror=yes\n\
             children=2\n\
             tcp_children=2\n\
             enable_tls=yes\n\
             auto_aliases=no\n\
             listen=tls:127.0.0.1:{port}\n\
             mpath=\"{KAMAILIO_MODULES}\"\n\
             loadmodule \"tls.so\"\n\
             loadmodule \"sl.so\"\n\
             loadmodule \"tm.so\"\n\
             loadmodule \"usrloc.so\"\n\
             loadmodule \"registrar.so\"\n\
             modparam(\"tls\", \"config\", \"{}\")\n\
             modparam(\"usrloc\", \"db_mode\", 0)\n\
             request_route {{\n\
             \x20   if (method==\"REGISTER\") {{ save(\"location\"); exit; }}\n\
             \x20   sl_send_reply(\"404\", \"Not here\");\n\
             }}\n",
            tls_cfg.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("kamailio.log")).unwrap();
    let child = Command::new(bin)
        .arg("-f")
        .arg(&cfg)
        .args(["-DD", "-E", "-m", "64", "-M", "8"])
        .arg("-Y")
        .arg(dir.path())
        .arg("-P")
        .arg(dir.path().join("kamailio.pid"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start kamailio");
    let log_path = dir.path().join("kamailio.log");
    // Killed and reaped from here on, however this ends.
    let guard = Kamailio { child, _dir: dir };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Wait until it listens.
    let until = Instant::now() + STUCK;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < until,
            "kamailio did not start listening:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (guard, addr)
}

fn bench_register(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ca = Ca::new("carevox bench CA");
    let id = ca.issue(&[SERVER_NAME]);
    let mut group = c.benchmark_group("register_tls_loopback");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));

    let (endpoint, addr) = rt.block_on(carevox_registrar(&id));
    let mut clients: Vec<Client> = rt.block_on(async {
        let mut v = Vec::new();
        for i in 0..CLIENTS {
            let mut c = Client::connect(i, &ca).await;
            // The handshake happens here, before any measurement.
            c.register_once(addr).await;
            v.push(c);
        }
        v
    });
    group.bench_function("carevox_endpoint", |b| {
        b.iter_custom(|iters| measure(&rt, &mut clients, addr, iters));
    });
    drop(clients);
    rt.block_on(async {
        let _ = endpoint.shutdown(Duration::from_secs(1)).await;
    });

    let (kamailio, addr) = kamailio_registrar(&id);
    let mut clients: Vec<Client> = rt.block_on(async {
        let mut v = Vec::new();
        for i in 0..CLIENTS {
            let mut c = Client::connect(i, &ca).await;
            c.register_once(addr).await;
            v.push(c);
        }
        v
    });
    group.bench_function("kamailio", |b| {
        b.iter_custom(|iters| measure(&rt, &mut clients, addr, iters));
    });
    drop(clients);
    drop(kamailio);
    group.finish();
}

criterion_group!(benches, bench_register);
criterion_main!(benches);
