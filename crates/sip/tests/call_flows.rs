//! The basic call flows of RFC 3665 between two user agents (and through a
//! relay that record-routes), in virtual time over a network that drops,
//! duplicates, delays and reorders datagrams, from 0 to 30 percent loss.

// Instant::now is only the origin of virtual time; no test reads the clock again.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]
#![allow(clippy::cast_precision_loss, clippy::cast_sign_loss)]

mod sim;

use std::time::Duration;

use carevox_sip::dialog::{DialogRole, TerminationReason, UaEvent};
use carevox_sip::transaction::TransportKind;
use proptest::prelude::*;
use sim::{Answer, NetConfig, Script, Sim};

const LOSSES: [f64; 4] = [0.0, 0.1, 0.2, 0.3];
const SEEDS: u64 = 12;
const LIMIT: Duration = Duration::from_secs(600);

fn each(mut f: impl FnMut(f64, u64)) {
    for loss in LOSSES {
        for seed in 0..SEEDS {
            f(loss, seed);
        }
    }
}

/// RFC 3665 section 2.1: registration with a digest challenge.
#[test]
fn registration() {
    each(|loss, seed| {
        let mut s = Sim::new(seed, NetConfig::lossy(loss), Script::call(Answer::Busy));
        s.register();
        s.run(LIMIT);
        assert_eq!(s.a.finals, vec![401, 200], "loss {loss} seed {seed}");
        assert_eq!(s.b.requests, vec!["REGISTER", "REGISTER"]);
        assert!(s.alice.transactions().is_empty());
        assert!(s.bob.transactions().is_empty());
    });
}

fn assert_completed_call(s: &Sim, what: &str) {
    assert_eq!(s.a.confirmed, 1, "{what}: caller connected");
    assert_eq!(s.b.confirmed, 1, "{what}: callee connected");
    // The ACK may be lost until the BYE, which implies it, arrives.
    assert!(s.b.acks <= 1, "{what}: at most one ACK event");
    assert_eq!(s.a.terminated, vec![TerminationReason::LocalBye], "{what}");
    assert_eq!(s.b.terminated, vec![TerminationReason::RemoteBye], "{what}");
    assert_eq!(s.dialogs(), (0, 0), "{what}: no half-open call");
    assert!(s.alice.transactions().is_empty(), "{what}");
    assert!(s.bob.transactions().is_empty(), "{what}");
}

/// RFC 3665 section 3.1: a successful call, then BYE.
#[test]
fn successful_call_and_bye() {
    each(|loss, seed| {
        let mut s = Sim::new(
            seed,
            NetConfig::lossy(loss),
            Script::call(Answer::Accept(Duration::from_secs(2))),
        );
        s.call();
        s.run(LIMIT);
        assert_completed_call(&s, &format!("loss {loss} seed {seed}"));
        if loss == 0.0 {
            assert_eq!(s.b.acks, 1);
        }
        // The INVITE and the BYE both got their 200.
        assert_eq!(s.a.finals.iter().filter(|c| **c == 200).count(), 2);
    });
}

/// The same through a relay that record-routes: the route set holds it
/// and every request in the dialog goes through it.
#[test]
fn successful_call_through_a_record_routing_relay() {
    each(|loss, seed| {
        let mut script = Script::call(Answer::Accept(Duration::from_millis(500)));
        script.relay = true;
        let mut s = Sim::new(seed, NetConfig::lossy(loss), script);
        s.call();
        s.run(Duration::from_secs(3));
        if loss == 0.0 {
            let d = s.alice.dialogs().next().expect("a dialog");
            assert_eq!(d.role(), DialogRole::Uac);
            assert_eq!(
                d.route_set().expose(),
                &vec!["<sip:10.0.0.3:5060;lr>".to_owned()]
            );
            assert_eq!(d.remote_target().expose(), "sip:bob@10.0.0.2:5060");
            let d = s.bob.dialogs().next().expect("a dialog");
            assert_eq!(
                d.route_set().expose(),
                &vec!["<sip:10.0.0.3:5060;lr>".to_owned()]
            );
        }
        s.run(LIMIT);
        assert_completed_call(&s, &format!("relay loss {loss} seed {seed}"));
        assert!(s.relayed >= 3, "INVITE, ACK and BYE went through the relay");
    });
}

/// RFC 3665 section 3.3: busy. The ACK is the transaction's; no dialog.
#[test]
fn busy() {
    each(|loss, seed| {
        let mut s = Sim::new(seed, NetConfig::lossy(loss), Script::call(Answer::Busy));
        s.call();
        s.run(LIMIT);
        assert_eq!(s.a.finals, vec![486], "loss {loss} seed {seed}");
        assert_eq!(s.a.confirmed + s.b.confirmed, 0);
        assert_eq!(s.dialogs(), (0, 0));
        // The callee's transaction ended by ACK (Timer I), not by Timer H.
        assert_eq!(s.b.timeouts, 0, "loss {loss} seed {seed}");
        assert!(s.alice.transactions().is_empty());
        assert!(s.bob.transactions().is_empty());
    });
}

/// RFC 3665 sections 3.6 and 3.8: no answer, the caller cancels.
#[test]
fn no_answer_then_cancel() {
    each(|loss, seed| {
        let mut script = Script::call(Answer::Never);
        script.cancel_after = Duration::from_secs(10);
        let mut s = Sim::new(seed, NetConfig::lossy(loss), script);
        s.call();
        s.run(LIMIT);
        let what = format!("loss {loss} seed {seed}");
        assert_eq!(s.b.cancelled, 1, "{what}");
        // 200 for the CANCEL, 487 for the INVITE.
        let mut finals = s.a.finals.clone();
        finals.sort_unstable();
        assert_eq!(finals, vec![200, 487], "{what}");
        assert_eq!(
            s.a.terminated,
            vec![TerminationReason::EarlyFailure],
            "{what}"
        );
        assert_eq!(s.b.terminated, vec![TerminationReason::Rejected], "{what}");
        assert_eq!(s.dialogs(), (0, 0), "{what}");
        assert_eq!(s.b.timeouts, 0, "{what}: the 487 was acknowledged");
    });
}

/// RFC 3665 section 3.7 style: a re-INVITE in the call, its 2xx ACKed,
/// with the local CSeq rising by one.
#[test]
fn re_invite_in_the_call() {
    each(|loss, seed| {
        let mut script = Script::call(Answer::Accept(Duration::from_millis(300)));
        script.reinvite_after = Some(Duration::from_secs(1));
        script.hold = Duration::from_secs(50);
        let mut s = Sim::new(seed, NetConfig::lossy(loss), script);
        s.call();
        s.run(Duration::from_secs(45));
        let what = format!("loss {loss} seed {seed}");
        let d = s.alice.dialogs().next().expect("in the call");
        assert_eq!(d.local_seq(), Some(2), "{what}");
        let d = s.bob.dialogs().next().expect("in the call");
        assert_eq!(d.remote_seq(), Some(2), "{what}");
        // The ACK for the re-INVITE's 2xx arrived (a lost first ACK is
        // implied by the re-INVITE, which the caller sends only after it).
        let acked = s.b.events.iter().any(
            |(_, e)| matches!(e, UaEvent::Ack { request, .. } if request.cseq().unwrap().seq == 2),
        );
        assert!(acked, "{what}: the re-INVITE's 2xx ACKed");
        assert!(s.b.terminated.is_empty(), "{what}");
        assert_eq!(s.b.requests, vec!["INVITE", "INVITE"], "{what}");
        s.run(LIMIT);
        assert_eq!(s.dialogs(), (0, 0), "{what}");
        // The BYE carried CSeq 3.
        let bye_ok = s.a.events.iter().any(|(_, e)| {
            matches!(e, UaEvent::Response { response, .. }
                if response.cseq().unwrap().seq == 3 && response.status() == Some(200))
        });
        assert!(bye_ok, "{what}");
    });
}

/// Over TCP nothing is retransmitted and the flows still complete.
#[test]
fn successful_call_over_tcp() {
    let mut script = Script::call(Answer::Accept(Duration::from_secs(1)));
    script.transport = TransportKind::Tcp;
    let mut s = Sim::new(1, NetConfig::lossy(0.0), script);
    s.call();
    s.run(LIMIT);
    assert_completed_call(&s, "tcp");
}

/// The callee retransmits its 2xx until the ACK: when every ACK is lost,
/// it gives up after 64*T1 and ends the call with BYE (13.3.1.4), and the
/// caller, which had the call up, takes the BYE: no half-open call.
#[test]
fn lost_acks_end_the_call_with_bye() {
    // Datagrams: 0 INVITE, 1 180, 2 200, 3 ACK; afterwards every ACK is
    // the caller's answer to a retransmitted 200: drop them all by hand.
    let mut net = NetConfig::lossy(0.0);
    net.duplicate = 0.0;
    net.drop_indexes = (0..40).map(|i| i >= 3 && i % 2 == 1).collect();
    let mut script = Script::call(Answer::Accept(Duration::from_millis(100)));
    script.hold = Duration::from_secs(300);
    let mut s = Sim::new(7, net, script);
    s.call();
    s.run(LIMIT);
    assert_eq!(s.a.confirmed, 1);
    assert_eq!(s.b.acks, 0);
    assert_eq!(s.b.terminated, vec![TerminationReason::AckTimeout]);
    assert_eq!(s.a.terminated, vec![TerminationReason::RemoteBye]);
    assert_eq!(s.dialogs(), (0, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any loss pattern that leaves the retransmission budget enough (at
    /// most four datagrams in a row lost) ends in the same state on both
    /// sides: the call made and cleared, or, when every ACK was lost, the
    /// callee's BYE clearing it on both sides.
    #[test]
    fn enough_budget_means_the_same_end_on_both_sides(
        pattern in prop::collection::vec(any::<bool>(), 0..80),
        seed in any::<u64>(),
    ) {
        let mut run = 0;
        let mut pattern = pattern;
        for d in &mut pattern {
            if *d { run += 1 } else { run = 0 }
            if run > 4 { *d = false; run = 0; }
        }
        let mut net = NetConfig::lossy(0.0);
        net.drop_indexes = pattern;
        let mut s = Sim::new(seed, net, Script::call(Answer::Accept(Duration::from_secs(1))));
        s.call();
        s.run(LIMIT);
        prop_assert_eq!(s.dialogs(), (0, 0));
        prop_assert!(s.alice.transactions().is_empty());
        prop_assert!(s.bob.transactions().is_empty());
        prop_assert_eq!(s.b.confirmed, 1, "the INVITE always gets through");
        let ends = (s.a.terminated.clone(), s.b.terminated.clone());
        let full = (vec![TerminationReason::LocalBye], vec![TerminationReason::RemoteBye]);
        // Every ACK lost: the callee gave up with BYE, the caller took it.
        let no_ack = (vec![TerminationReason::RemoteBye], vec![TerminationReason::AckTimeout]);
        prop_assert!(ends == full || (ends == no_ack && s.b.acks == 0), "{:?}", ends);
    }

    /// A link cut at any point: both sides give up (time out or clear the
    /// dialog), and neither is left with a call.
    #[test]
    fn a_cut_link_leaves_no_half_open_call(cut in 0usize..3, seed in any::<u64>()) {
        let mut net = NetConfig::lossy(0.0);
        net.duplicate = 0.0;
        net.cut_at = Some(cut);
        let mut script = Script::call(Answer::Accept(Duration::from_secs(1)));
        script.hold = Duration::from_secs(1000);
        let mut s = Sim::new(seed, net, script);
        s.call();
        s.run(Duration::from_secs(900));
        let (a, b) = s.dialogs();
        // The caller holds the call only if the callee got the ACK.
        prop_assert_eq!(a, b, "cut at {}", cut);
        if a == 1 {
            prop_assert_eq!(s.b.acks, 1);
        }
    }
}
