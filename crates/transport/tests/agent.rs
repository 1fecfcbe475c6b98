//! The user agent driver on 127.0.0.1, both sides carevox agents: a call
//! set up, confirmed and hung up over UDP, TCP and TLS (the ACK for the 2xx
//! and the answer to the BYE sent by the cores); an early dialog from a
//! 180; a BYE from the called side over the caller's TLS connection when
//! the caller's Contact names no reachable server; a CANCEL answered 487; a
//! refused connection reported as a transport error that ends the dialog;
//! and a shutdown that refuses new calls but still serves a BYE.
#![allow(clippy::disallowed_methods)] // a real random source, as the agents on a real network have
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] functions

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use carevox_sip::dialog::{
    DialogId, DialogState, Outgoing, TerminationReason, UaConfig, UaEvent, UserAgent,
};
use carevox_sip::transaction::{Config, Timers, TransactionId, TransportKind as SipKind};
use carevox_sip::{HeaderName, Message, Method};
use carevox_transport::{
    Agent, AgentEvent, AgentEvents, Destination, EndpointConfig, EndpointError, Origin, Transport,
    TransportKind,
};
use common::*;

const NAME: &str = "sip.carevox.test";

fn ua(transport: &Transport, kind: TransportKind, user: &str, contact: Option<&str>) -> UserAgent {
    let addr = transport.local_addr(kind).unwrap();
    let scheme = if kind == TransportKind::Tls {
        ";transport=tls"
    } else if kind == TransportKind::Tcp {
        ";transport=tcp"
    } else {
        ""
    };
    let contact = contact.map_or_else(|| format!("<sip:{user}@{addr}{scheme}>"), str::to_owned);
    let timers = Timers::default()
        .with_t1(Duration::from_millis(50))
        .with_t2(Duration::from_millis(200))
        .with_t4(Duration::from_millis(250))
        .with_d(Duration::from_millis(500));
    UserAgent::new(
        UaConfig::new(&addr.to_string(), &contact)
            .with_transaction(Config::default().with_timers(timers)),
        Arc::new(ring::rand::SystemRandom::new()),
    )
}

struct Pair {
    callee: Agent,
    callee_events: AgentEvents,
    caller: Agent,
    caller_events: AgentEvents,
}

/// A callee listening on UDP, TCP and TLS and a caller trusting its
/// certificate; the caller's Contact is `caller_contact` when given.
async fn pair(kind: TransportKind, caller_contact: Option<&str>) -> Pair {
    pair_with(kind, caller_contact, EndpointConfig::default()).await
}

/// As [`pair`], the callee's agent with `callee_config`.
async fn pair_with(
    kind: TransportKind,
    caller_contact: Option<&str>,
    callee_config: EndpointConfig,
) -> Pair {
    let ca = Ca::new("agent test CA");
    let id = ca.issue(&[NAME]);
    let ((st, si), (ct, ci)) = server_and_client(&ca, &id).await;
    let callee_ua = ua(&st, kind, "bob", None);
    // The caller has no TCP or TLS listener: its Via and Contact name its
    // UDP address unless told otherwise.
    let caller_ua = ua(&ct, TransportKind::Udp, "alice", caller_contact);
    let (callee, callee_events) = Agent::start(st, si, callee_ua, callee_config);
    let (caller, caller_events) = Agent::start(ct, ci, caller_ua, EndpointConfig::default());
    Pair {
        callee,
        callee_events,
        caller,
        caller_events,
    }
}

fn destination(agent: &Agent, kind: TransportKind) -> Destination {
    let addr = agent.transport().local_addr(kind).unwrap();
    match kind {
        TransportKind::Tls => Destination::tls(addr, NAME),
        _ => Destination::new(kind, addr),
    }
}

fn sip_kind(kind: TransportKind) -> SipKind {
    match kind {
        TransportKind::Udp => SipKind::Udp,
        TransportKind::Tcp => SipKind::Tcp,
        TransportKind::Tls => SipKind::Tls,
        other => panic!("no SIP transport for {other}"),
    }
}

fn invite(to: SocketAddr, kind: TransportKind) -> Outgoing {
    let scheme = if kind == TransportKind::Tls {
        "sips"
    } else {
        "sip"
    };
    Outgoing::new(
        "INVITE",
        &format!("{scheme}:bob@{to}"),
        "<sip:alice@example.org>",
        "<sip:bob@example.org>",
        to,
        sip_kind(kind),
    )
}

/// Core events until one matches `pred`; returns it with its origin and
/// the events skipped.
async fn until(
    events: &mut AgentEvents,
    pred: impl Fn(&UaEvent) -> bool,
) -> (UaEvent, Option<Origin>, Vec<UaEvent>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut skipped = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(e) = tokio::time::timeout(left, events.recv()).await else {
            panic!("no awaited event in time; seen: {skipped:?}");
        };
        if let AgentEvent::Ua { event, origin } = e.expect("the agent is running") {
            if pred(&event) {
                return (event, origin, skipped);
            }
            skipped.push(event);
        }
    }
}

fn new_request(method: Method<'static>) -> impl Fn(&UaEvent) -> bool {
    move |e| matches!(e, UaEvent::Request { request, .. } if request.method() == Some(method))
}

fn request_of(e: &UaEvent) -> (TransactionId, &Message, Option<DialogId>) {
    match e {
        UaEvent::Request {
            id,
            request,
            dialog,
        } => (*id, request, *dialog),
        other => panic!("not a request: {other:?}"),
    }
}

fn confirmed(e: &UaEvent) -> bool {
    matches!(e, UaEvent::DialogConfirmed { .. })
}

fn terminated(e: &UaEvent) -> bool {
    matches!(e, UaEvent::DialogTerminated { .. })
}

fn dialog_of(e: &UaEvent) -> DialogId {
    match e {
        UaEvent::DialogConfirmed { dialog }
        | UaEvent::DialogEarly { dialog }
        | UaEvent::DialogTerminated { dialog, .. }
        | UaEvent::Ack { dialog, .. } => *dialog,
        other => panic!("no dialog in {other:?}"),
    }
}

fn final_response(e: &UaEvent) -> bool {
    matches!(e, UaEvent::Response { response, .. } if response.status().unwrap() >= 200)
}

/// A whole call: INVITE, 180 (early dialogs), 200 (confirmed on both
/// sides, the caller's core ACKs), BYE from the caller (the callee's core
/// answers 200 and ends its dialog).
async fn call(kind: TransportKind) {
    let mut p = pair(kind, None).await;
    let dest = destination(&p.callee, kind);
    p.caller
        .send_request(invite(dest.addr, kind), dest)
        .await
        .unwrap();

    let (e, origin, _) = until(&mut p.callee_events, new_request(Method::Invite)).await;
    let (id, _, dialog) = request_of(&e);
    assert_eq!(dialog, None);
    assert_eq!(origin.unwrap().kind, kind);
    let early = p
        .callee
        .respond(id, 180, "Ringing", &[], None)
        .await
        .unwrap();
    let (e, _, _) = until(&mut p.caller_events, |e| {
        matches!(e, UaEvent::DialogEarly { .. })
    })
    .await;
    let caller_dialog = dialog_of(&e);
    assert_eq!(
        p.caller
            .dialog(caller_dialog)
            .await
            .unwrap()
            .unwrap()
            .state(),
        DialogState::Early
    );

    let answered = p.callee.respond(id, 200, "OK", &[], None).await.unwrap();
    assert_eq!(answered, early, "the 200 confirms the dialog the 180 made");
    let callee_dialog = answered.unwrap();
    let (e, _, _) = until(&mut p.caller_events, confirmed).await;
    assert_eq!(dialog_of(&e), caller_dialog);
    // The caller's core sent the ACK on its own.
    let (e, _, _) = until(&mut p.callee_events, |e| matches!(e, UaEvent::Ack { .. })).await;
    assert_eq!(dialog_of(&e), callee_dialog);
    let d = p.callee.dialog(callee_dialog).await.unwrap().unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(d.remote_seq(), Some(1));

    p.caller
        .send_in_dialog(caller_dialog, "BYE", &[], None)
        .await
        .unwrap();
    let (e, _, _) = until(&mut p.caller_events, terminated).await;
    assert!(matches!(
        e,
        UaEvent::DialogTerminated {
            reason: TerminationReason::LocalBye,
            ..
        }
    ));
    let (e, _, _) = until(&mut p.callee_events, terminated).await;
    assert_eq!(dialog_of(&e), callee_dialog);
    assert!(p.callee.dialog(callee_dialog).await.unwrap().is_none());
    // The BYE's 200 came from the callee's core.
    let (e, _, _) = until(&mut p.caller_events, final_response).await;
    match e {
        UaEvent::Response { response, .. } => {
            assert_eq!(response.status(), Some(200));
            assert_eq!(response.cseq().unwrap().method, Method::Bye);
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn a_call_over_udp() {
    call(TransportKind::Udp).await;
}

#[tokio::test]
async fn a_call_over_tcp() {
    call(TransportKind::Tcp).await;
}

#[tokio::test]
async fn a_call_over_tls() {
    call(TransportKind::Tls).await;
}

/// The caller reached the callee over TLS, and its Contact names a port
/// where nothing listens: the callee's BYE still reaches it, over the
/// connection the INVITE came on (the dialog's flow), and the caller's core
/// answers it over the same connection.
#[tokio::test]
async fn a_bye_from_the_called_side_goes_over_the_callers_connection() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = closed.local_addr().unwrap();
    drop(closed);
    let contact = format!("<sip:alice@{nowhere};transport=tls>");
    let mut p = pair(TransportKind::Tls, Some(&contact)).await;
    let dest = destination(&p.callee, TransportKind::Tls);
    p.caller
        .send_request(invite(dest.addr, TransportKind::Tls), dest)
        .await
        .unwrap();
    let (e, origin, _) = until(&mut p.callee_events, new_request(Method::Invite)).await;
    let (id, _, _) = request_of(&e);
    let connection = origin.unwrap().connection.unwrap();
    let callee_dialog = p
        .callee
        .respond(id, 200, "OK", &[], None)
        .await
        .unwrap()
        .unwrap();
    until(&mut p.callee_events, |e| matches!(e, UaEvent::Ack { .. })).await;
    let (e, _, _) = until(&mut p.caller_events, confirmed).await;
    let caller_dialog = dialog_of(&e);

    p.callee
        .send_in_dialog(callee_dialog, "BYE", &[], None)
        .await
        .unwrap();
    let (e, _, skipped) = until(&mut p.callee_events, final_response).await;
    assert!(
        !skipped
            .iter()
            .any(|e| matches!(e, UaEvent::TransportError { .. })),
        "the BYE was sent toward the Contact instead of the flow"
    );
    match e {
        UaEvent::Response { response, .. } => assert_eq!(response.status(), Some(200)),
        _ => unreachable!(),
    }
    let (e, _, _) = until(&mut p.caller_events, terminated).await;
    assert_eq!(dialog_of(&e), caller_dialog);
    // Nothing but the caller's connection was ever open on the callee.
    assert_eq!(p.callee.transport().connection_count(), 1);
    assert_eq!(
        p.callee
            .transport()
            .connection_to(TransportKind::Tls, nowhere),
        None
    );
    let _ = connection;
}

/// A CANCEL before the answer: the callee's core answers it 200 and the
/// INVITE 487; the caller's early dialog ends.
#[tokio::test]
async fn a_cancel_before_the_answer_ends_the_call_with_487() {
    let mut p = pair(TransportKind::Udp, None).await;
    let dest = destination(&p.callee, TransportKind::Udp);
    let invite_id = p
        .caller
        .send_request(invite(dest.addr, TransportKind::Udp), dest)
        .await
        .unwrap();
    let (e, _, _) = until(&mut p.callee_events, new_request(Method::Invite)).await;
    let (id, _, _) = request_of(&e);
    p.callee
        .respond(id, 180, "Ringing", &[], None)
        .await
        .unwrap();
    until(&mut p.caller_events, |e| {
        matches!(e, UaEvent::DialogEarly { .. })
    })
    .await;
    p.caller.cancel(invite_id).await.unwrap();
    let (e, _, _) = until(&mut p.callee_events, |e| {
        matches!(e, UaEvent::Cancelled { .. })
    })
    .await;
    assert!(matches!(e, UaEvent::Cancelled { invite } if invite == id));
    let (e, _, skipped) = until(&mut p.caller_events, |e| {
        matches!(e, UaEvent::Response { id, response, .. }
            if *id == invite_id && response.status().unwrap() >= 200)
    })
    .await;
    match e {
        UaEvent::Response { response, .. } => assert_eq!(response.status(), Some(487)),
        _ => unreachable!(),
    }
    // The 487 ended the caller's early dialog (its event comes first).
    assert!(skipped.iter().any(|e| matches!(
        e,
        UaEvent::DialogTerminated {
            reason: TerminationReason::EarlyFailure,
            ..
        }
    )));
}

/// The caller's TCP connection closes during the call and its Contact
/// names a port where nothing listens: the callee's BYE falls back to the
/// Contact, the connection is refused, the core learns of it, the request
/// fails and the dialog ends.
#[tokio::test]
async fn a_refused_connection_fails_the_request_and_ends_the_dialog() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = closed.local_addr().unwrap();
    drop(closed);
    let contact = format!("<sip:alice@{nowhere};transport=tcp>");
    let mut p = pair(TransportKind::Tcp, Some(&contact)).await;
    let dest = destination(&p.callee, TransportKind::Tcp);
    p.caller
        .send_request(invite(dest.addr, TransportKind::Tcp), dest)
        .await
        .unwrap();
    let (e, _, _) = until(&mut p.callee_events, new_request(Method::Invite)).await;
    let (id, _, _) = request_of(&e);
    let dialog = p
        .callee
        .respond(id, 200, "OK", &[], None)
        .await
        .unwrap()
        .unwrap();
    until(&mut p.callee_events, |e| matches!(e, UaEvent::Ack { .. })).await;
    let (_, origin, _) = until(&mut p.caller_events, confirmed).await;
    let caller_connection = origin.unwrap().connection.unwrap();
    p.caller.transport().close_connection(caller_connection);
    loop {
        let e = tokio::time::timeout(WAIT, p.callee_events.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(e, AgentEvent::ConnectionClosed { .. }) {
            break;
        }
    }

    let bye = p
        .callee
        .send_in_dialog(dialog, "BYE", &[], None)
        .await
        .unwrap();
    let (e, _, _) = until(&mut p.callee_events, |e| {
        matches!(e, UaEvent::TransportError { .. })
    })
    .await;
    assert!(matches!(e, UaEvent::TransportError { id } if id == bye));
    assert!(p.callee.dialog(dialog).await.unwrap().is_none());
}

/// A call from the caller to the callee at `dest` (UDP), answered and
/// acknowledged; returns the caller's dialog.
async fn answered_call(p: &mut Pair, dest: &Destination) -> DialogId {
    p.caller
        .send_request(invite(dest.addr, TransportKind::Udp), dest.clone())
        .await
        .unwrap();
    let (e, _, _) = until(&mut p.callee_events, new_request(Method::Invite)).await;
    let (id, _, _) = request_of(&e);
    p.callee.respond(id, 200, "OK", &[], None).await.unwrap();
    until(&mut p.callee_events, |e| matches!(e, UaEvent::Ack { .. })).await;
    let (e, _, _) = until(&mut p.caller_events, confirmed).await;
    dialog_of(&e)
}

/// The status of the caller's BYE response.
async fn bye_status(p: &mut Pair) -> u16 {
    let (e, _, _) = until(&mut p.caller_events, |e| {
        matches!(e, UaEvent::Response { response, .. }
            if response.cseq().unwrap().method == Method::Bye)
    })
    .await;
    match e {
        UaEvent::Response { response, .. } => response.status().unwrap(),
        _ => unreachable!(),
    }
}

/// During a shutdown, a new INVITE is answered 503 by the agent and the
/// application never sees it, while a BYE in a live dialog still is served;
/// a new request of ours is refused.
#[tokio::test]
async fn a_shutdown_refuses_new_calls_but_serves_a_bye() {
    let mut p = pair(TransportKind::Udp, None).await;
    let dest = destination(&p.callee, TransportKind::Udp);
    let caller_dialog = answered_call(&mut p, &dest).await;

    let callee = p.callee.clone();
    let shutdown = tokio::spawn(async move { callee.shutdown(Duration::from_secs(5)).await });
    // Wait until the shutdown has begun: a new request of the callee's own
    // is refused.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let probe = Outgoing::new(
            "OPTIONS",
            "sip:probe@127.0.0.1",
            "<sip:bob@example.org>",
            "<sip:probe@example.org>",
            "127.0.0.1:9".parse().unwrap(),
            SipKind::Udp,
        );
        let sent = p
            .callee
            .send_request(probe, Destination::udp("127.0.0.1:9".parse().unwrap()))
            .await;
        if sent == Err(EndpointError::ShuttingDown) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no shutdown began");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A second call: refused with 503 by the callee's agent.
    let second = p
        .caller
        .send_request(invite(dest.addr, TransportKind::Udp), dest)
        .await
        .unwrap();
    let (e, _, _) = until(&mut p.caller_events, |e| {
        matches!(e, UaEvent::Response { id, response, .. }
            if *id == second && response.status().unwrap() >= 200)
    })
    .await;
    match e {
        UaEvent::Response { response, .. } => assert_eq!(response.status(), Some(503)),
        _ => unreachable!(),
    }
    // The first call's BYE is still answered.
    p.caller
        .send_in_dialog(caller_dialog, "BYE", &[], None)
        .await
        .unwrap();
    let (e, _, skipped) = until(&mut p.callee_events, terminated).await;
    assert!(matches!(e, UaEvent::DialogTerminated { .. }));
    assert!(
        !skipped
            .iter()
            .any(|e| matches!(e, UaEvent::Request { request, .. } if request.method() == Some(Method::Invite))),
        "the refused INVITE reached the application"
    );
    assert_eq!(bye_status(&mut p).await, 200);
    let report = shutdown.await.unwrap().unwrap();
    assert_eq!(report.abandoned, 0);
}

/// An application that falls behind: past the overload backlog, new calls
/// are answered 503 with Retry-After by the agent and never reach it, while
/// the BYE of the call it has still does.
#[tokio::test]
async fn an_overloaded_agent_refuses_new_calls_but_serves_a_bye() {
    let mut p = pair_with(
        TransportKind::Udp,
        None,
        EndpointConfig::default().with_overload_backlog(2),
    )
    .await;
    let dest = destination(&p.callee, TransportKind::Udp);
    let caller_dialog = answered_call(&mut p, &dest).await;

    // The callee's application reads nothing now: three new calls wait for
    // it (backlog 0, 1, 2), the next three are refused.
    let mut sent = Vec::new();
    for _ in 0..6 {
        let id = p
            .caller
            .send_request(invite(dest.addr, TransportKind::Udp), dest.clone())
            .await
            .unwrap();
        sent.push(id);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut refused = Vec::new();
    while refused.len() < 3 {
        let (e, _, _) = until(
            &mut p.caller_events,
            |e| matches!(e, UaEvent::Response { response, .. } if response.status() == Some(503)),
        )
        .await;
        if let UaEvent::Response { id, response, .. } = e {
            assert_eq!(response.header(HeaderName::RetryAfter), Some("5"));
            refused.push(id);
        }
    }
    assert_eq!(refused, sent[3..].to_vec());

    // The call it has still ends: the BYE gets through and is answered.
    p.caller
        .send_in_dialog(caller_dialog, "BYE", &[], None)
        .await
        .unwrap();
    let (_, _, skipped) = until(&mut p.callee_events, terminated).await;
    let invites = skipped
        .iter()
        .filter(|e| matches!(e, UaEvent::Request { request, .. } if request.method() == Some(Method::Invite)))
        .count();
    assert_eq!(
        invites, 3,
        "only the calls before the backlog reached the application"
    );
    assert_eq!(bye_status(&mut p).await, 200);
}
