//! DTMF over RTP (RFC 4733): the packets the sender makes have the layout
//! of the RFC, byte for byte; fed to the receiver, every key press comes
//! out exactly once, with any single packet lost, with duplicates, with
//! the end packets reordered or all lost, across timestamp wrap-around,
//! SSRC changes and long presses split into segments; packets that are
//! not telephone events are skipped or refused, never a panic; and no
//! sequence of event packets makes a stream report one timestamp twice.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::collections::HashSet;
use std::time::Duration;

use carevox::dtmf::{Digit, DtmfError, DtmfReceiver, DtmfSender, Event, EventReport, LATE_WINDOW};
use proptest::prelude::*;

const PT: u8 = 101;
const SSRC: u32 = 0x1122_3344;

/// The packets of each key of `keys`, pressed `press` ms each, a key
/// every `every` ms, from sequence 1 and timestamp `ts`.
fn dial(sender: &DtmfSender, keys: &str, press: u64, every: u64, ts: u32) -> Vec<Vec<Vec<u8>>> {
    let mut seq = 1u16;
    let mut ts = ts;
    let step = u32::try_from(every * u64::from(sender.clock_rate) / 1000).unwrap();
    keys.chars()
        .map(|key| {
            let packets: Vec<Vec<u8>> = sender
                .packets(
                    Digit::try_from(key).unwrap(),
                    Duration::from_millis(press),
                    seq,
                    ts,
                )
                .unwrap()
                .into_iter()
                .map(|p| p.packet)
                .collect();
            seq = seq.wrapping_add(packets.len() as u16);
            ts = ts.wrapping_add(step);
            packets
        })
        .collect()
}

/// What the receiver hears of `packets`: digits as characters, other
/// events as `?`.
fn heard<'a>(rx: &mut DtmfReceiver, packets: impl IntoIterator<Item = &'a Vec<u8>>) -> String {
    let mut out = String::new();
    for p in packets {
        for event in rx.push(p).unwrap() {
            out.push(event.digit().map_or('?', Digit::to_char));
        }
    }
    out
}

fn is_end(packet: &[u8]) -> bool {
    packet[13] & 0x80 != 0
}

fn timestamp(packet: &[u8]) -> u32 {
    u32::from_be_bytes(packet[4..8].try_into().unwrap())
}

fn event_packet(marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, (u8::from(marker) << 7) | PT];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

const KEYS: &str = "0123456789*#ABCD";

#[test]
fn the_sender_writes_the_rfc_4733_layout() {
    // Digit 1 for 100 ms at 8 kHz, updates every 50 ms, volume 10: one
    // update (marker, duration 400) at 50 ms, then the end report
    // (E bit, duration 800) three times, 50 ms apart; one timestamp.
    let packets = DtmfSender::new(PT, SSRC)
        .packets(Digit::One, Duration::from_millis(100), 1000, 16000)
        .unwrap();
    let by_hand: [&[u8]; 4] = [
        &[
            0x80, 0xe5, 0x03, 0xe8, 0, 0, 0x3e, 0x80, 0x11, 0x22, 0x33, 0x44, 1, 0x0a, 0x01, 0x90,
        ],
        &[
            0x80, 0x65, 0x03, 0xe9, 0, 0, 0x3e, 0x80, 0x11, 0x22, 0x33, 0x44, 1, 0x8a, 0x03, 0x20,
        ],
        &[
            0x80, 0x65, 0x03, 0xea, 0, 0, 0x3e, 0x80, 0x11, 0x22, 0x33, 0x44, 1, 0x8a, 0x03, 0x20,
        ],
        &[
            0x80, 0x65, 0x03, 0xeb, 0, 0, 0x3e, 0x80, 0x11, 0x22, 0x33, 0x44, 1, 0x8a, 0x03, 0x20,
        ],
    ];
    assert_eq!(packets.len(), 4);
    for (p, expected) in packets.iter().zip(by_hand) {
        assert_eq!(p.packet, expected);
    }
    let at: Vec<u64> = packets.iter().map(|p| p.at.as_millis() as u64).collect();
    assert_eq!(at, [50, 100, 150, 200]);
    // The report of the last one, read back.
    let report = EventReport::parse(&packets[3].packet[12..]).unwrap();
    assert_eq!(report.digit(), Ok(Digit::One));
    assert!(report.end());
    assert_eq!((report.volume(), report.duration()), (10, 800));
}

#[test]
fn a_hand_made_packet_is_one_digit() {
    let mut rx = DtmfReceiver::new(PT);
    // `#`, volume 7, 20 ms so far; then its end, 90 ms, three times.
    let start = event_packet(true, 7, 4242, SSRC, &[11, 0x07, 0x00, 0xa0]);
    assert_eq!(rx.push(&start).unwrap(), &[Event::Digit(Digit::Pound)]);
    for seq in 8..11 {
        let end = event_packet(false, seq, 4242, SSRC, &[11, 0x87, 0x02, 0xd0]);
        assert!(rx.push(&end).unwrap().is_empty());
    }
    assert_eq!(rx.stats().events, 1);
    assert_eq!(rx.stats().repeats, 3);
}

#[test]
fn every_key_once_at_both_intervals_and_clock_rates() {
    for sender in [
        DtmfSender::new(PT, SSRC),
        DtmfSender::new(PT, SSRC).with_interval(Duration::from_millis(20)),
        DtmfSender::new(PT, SSRC).with_clock_rate(48_000),
    ] {
        let mut rx = DtmfReceiver::new(PT);
        let call = dial(&sender, KEYS, 120, 250, 160);
        assert_eq!(heard(&mut rx, call.iter().flatten()), KEYS, "{sender:?}");
        assert_eq!(rx.stats().events, 16);
        assert_eq!(rx.stats().late, 0);
    }
}

#[test]
fn the_audio_between_the_events_is_skipped() {
    let mut rx = DtmfReceiver::new(PT);
    let call = dial(&DtmfSender::new(PT, SSRC), "19", 100, 300, 0);
    let mut audio = vec![0x80, 0, 0, 1, 0, 0, 0, 0];
    audio.extend_from_slice(&SSRC.to_be_bytes());
    audio.extend_from_slice(&[0xff; 160]);
    let mut packets = Vec::new();
    for p in call.iter().flatten() {
        packets.push(audio.clone());
        packets.push(p.clone());
    }
    assert_eq!(heard(&mut rx, &packets), "19");
    assert_eq!(rx.stats().other_payloads, packets.len() as u64 / 2);
    // Audio alone, of any payload type but the events', reports nothing.
    let mut other = DtmfReceiver::new(96);
    assert_eq!(heard(&mut other, call.iter().flatten()), "");
}

#[test]
fn a_short_press_is_a_digit() {
    // 20 ms: no update, only the three end packets (the first marked).
    let packets = DtmfSender::new(PT, SSRC)
        .packets(Digit::Three, Duration::from_millis(20), 0, 0)
        .unwrap();
    assert_eq!(packets.len(), 3);
    assert!(packets.iter().all(|p| is_end(&p.packet)));
    assert_eq!(packets[0].packet[1], 0x80 | PT);
    let mut rx = DtmfReceiver::new(PT);
    assert_eq!(heard(&mut rx, packets.iter().map(|p| &p.packet)), "3");
    // Only the last copy arriving is enough.
    let mut rx = DtmfReceiver::new(PT);
    assert_eq!(heard(&mut rx, [&packets[2].packet]), "3");
}

#[test]
fn the_loss_of_any_single_packet_loses_no_digit() {
    let call: Vec<Vec<u8>> = dial(&DtmfSender::new(PT, SSRC), "1590#*", 130, 250, 99)
        .into_iter()
        .flatten()
        .collect();
    for lost in 0..call.len() {
        let mut rx = DtmfReceiver::new(PT);
        let kept = call
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != lost)
            .map(|(_, p)| p);
        assert_eq!(heard(&mut rx, kept), "1590#*", "packet {lost} lost");
    }
}

#[test]
fn duplicates_report_nothing_more() {
    let call = dial(&DtmfSender::new(PT, SSRC), "2580", 100, 200, 7);
    let mut rx = DtmfReceiver::new(PT);
    let doubled = call.iter().flatten().flat_map(|p| [p, p, p]);
    assert_eq!(heard(&mut rx, doubled), "2580");
    // Fed again whole: every packet is a repeat or late.
    assert_eq!(heard(&mut rx, call.iter().flatten()), "");
}

#[test]
fn reordered_end_packets_report_nothing_more() {
    let call = dial(&DtmfSender::new(PT, SSRC), "1234", 150, 250, 5000);
    // Each key's end packets backwards, and the last copy delayed until
    // after the next key's first packet.
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut delayed: Option<Vec<u8>> = None;
    for key in &call {
        let (ends, updates): (Vec<_>, Vec<_>) = key.iter().cloned().partition(|p| is_end(p));
        assert_eq!(ends.len(), 3);
        let mut first = true;
        for p in updates {
            packets.push(p);
            if first {
                packets.extend(delayed.take());
                first = false;
            }
        }
        let mut ends = ends.into_iter().rev();
        delayed = ends.next();
        packets.extend(ends);
    }
    packets.extend(delayed);
    let mut rx = DtmfReceiver::new(PT);
    assert_eq!(heard(&mut rx, &packets), "1234");
    assert_eq!(rx.stats().late, 3);
}

#[test]
fn a_key_whose_end_packets_are_all_lost_is_still_a_digit() {
    // The same key twice too: a new timestamp is a new press.
    let call = dial(&DtmfSender::new(PT, SSRC), "5561", 120, 200, 1);
    let mut rx = DtmfReceiver::new(PT);
    let without_ends = call.iter().flatten().filter(|p| !is_end(p));
    assert_eq!(heard(&mut rx, without_ends), "5561");
    // Only the end packets of each, the marked first packets lost.
    let mut rx = DtmfReceiver::new(PT);
    let only_ends = call.iter().flatten().filter(|p| is_end(p));
    assert_eq!(heard(&mut rx, only_ends), "5561");
}

#[test]
fn timestamps_wrap_around() {
    let call = dial(
        &DtmfSender::new(PT, SSRC),
        "7890",
        100,
        200,
        u32::MAX - 2000,
    );
    assert!(timestamp(&call[3][0]) < 5000);
    let mut rx = DtmfReceiver::new(PT);
    assert_eq!(heard(&mut rx, call.iter().flatten()), "7890");
    // A packet of the first key, after the wrap, is late.
    assert_eq!(heard(&mut rx, [&call[0][0]]), "");
    assert_eq!(rx.stats().late, 1);
}

#[test]
fn a_long_press_in_segments_is_one_digit() {
    for sender in [
        DtmfSender::new(PT, SSRC),
        DtmfSender::new(PT, SSRC)
            .with_clock_rate(48_000)
            .with_interval(Duration::from_millis(20)),
    ] {
        let packets: Vec<Vec<u8>> = sender
            .packets(Digit::Nine, Duration::from_secs(20), 0, 1000)
            .unwrap()
            .into_iter()
            .map(|p| p.packet)
            .collect();
        // At 8 kHz 160 000 units: segments at 1000, +65535, +131070.
        let stamps: HashSet<u32> = packets.iter().map(|p| timestamp(p)).collect();
        let segments = (20 * sender.clock_rate).div_ceil(65535) as usize;
        assert_eq!(stamps.len(), segments, "{sender:?}");
        assert!(stamps.contains(&(1000 + 65535)));
        // Only the first packet is marked, only the last three end.
        assert_eq!(packets.iter().filter(|p| p[1] & 0x80 != 0).count(), 1);
        assert_eq!(packets.iter().filter(|p| is_end(p)).count(), 3);
        assert!(packets.iter().rev().take(3).all(|p| is_end(p)));
        let mut rx = DtmfReceiver::new(PT);
        assert_eq!(heard(&mut rx, &packets), "9", "{sender:?}");
        // The final reports of the segments lost too.
        let mut rx = DtmfReceiver::new(PT);
        let mut last_duration = HashSet::new();
        let kept = packets.iter().filter(|p| {
            let full = p[14..16] == [0xff, 0xff];
            if full {
                last_duration.insert(timestamp(p));
            }
            !full
        });
        assert_eq!(heard(&mut rx, kept), "9");
        assert_eq!(last_duration.len(), segments - 1);
        // Then the same key again, pressed briefly: a new digit.
        let next = sender
            .packets(
                Digit::Nine,
                Duration::from_millis(100),
                9000,
                1000 + 21 * sender.clock_rate,
            )
            .unwrap();
        assert_eq!(heard(&mut rx, next.iter().map(|p| &p.packet)), "9");
    }
}

#[test]
fn other_events_are_reported_as_not_digits() {
    let sender = DtmfSender::new(PT, SSRC);
    let mut rx = DtmfReceiver::new(PT);
    let flash = sender
        .event_packets(16, Duration::from_millis(300), 0, 0)
        .unwrap();
    let mut events = Vec::new();
    for p in &flash {
        events.extend_from_slice(rx.push(&p.packet).unwrap());
    }
    assert_eq!(events, [Event::Other(16)]);
    assert_eq!(events[0].digit(), None);
    assert_eq!(events[0].code(), 16);
    assert_eq!(
        EventReport::parse(&flash[0].packet[12..]).unwrap().digit(),
        Err(DtmfError::NotADigit { event: 16 })
    );
}

#[test]
fn a_new_ssrc_is_followed_and_the_old_one_still_known() {
    let old = dial(&DtmfSender::new(PT, 1), "12", 100, 200, 500_000);
    // The new stream's clock starts far behind the old one.
    let new = dial(&DtmfSender::new(PT, 2), "34", 100, 200, 10);
    let mut rx = DtmfReceiver::new(PT);
    assert_eq!(heard(&mut rx, old.iter().flatten()), "12");
    assert_eq!(heard(&mut rx, new.iter().flatten()), "34");
    // The old stream's packets, late: nothing.
    assert_eq!(heard(&mut rx, old.iter().flatten()), "");
    // Four more streams push the first out; it is then heard afresh.
    for ssrc in 3..7 {
        let other = dial(&DtmfSender::new(PT, ssrc), "0", 100, 200, 0);
        assert_eq!(heard(&mut rx, other.iter().flatten()), "0");
    }
    assert_eq!(heard(&mut rx, old.iter().flatten()), "12");
}

#[test]
fn a_restarted_clock_begins_new_events() {
    let sender = DtmfSender::new(PT, SSRC);
    let before = dial(&sender, "11", 100, 200, 1_000_000);
    let after = dial(&sender, "22", 100, 200, 1_000_000 - LATE_WINDOW - 10_000);
    let mut rx = DtmfReceiver::new(PT);
    assert_eq!(heard(&mut rx, before.iter().flatten()), "11");
    assert_eq!(heard(&mut rx, after.iter().flatten()), "22");
    // Within the window behind, a packet is late.
    let late = dial(&sender, "3", 100, 200, 1_000_000 - LATE_WINDOW - 20_000);
    assert_eq!(heard(&mut rx, late.iter().flatten()), "");
}

#[test]
fn packed_events_are_each_reported_once() {
    let mut rx = DtmfReceiver::new(PT);
    // `4` ended after 800 units, then `2` going for 160 units since.
    let ended = EventReport::new(4, true, 10, 800).unwrap().to_bytes();
    let going = EventReport::new(2, false, 10, 160).unwrap().to_bytes();
    let packed = event_packet(false, 1, 8000, SSRC, &[ended, going].concat());
    assert_eq!(
        rx.push(&packed).unwrap(),
        &[Event::Digit(Digit::Four), Event::Digit(Digit::Two)]
    );
    // `2` alone, stamped where `4` ended: the same event.
    let alone = event_packet(
        false,
        2,
        8800,
        SSRC,
        &EventReport::new(2, true, 10, 480).unwrap().to_bytes(),
    );
    assert!(rx.push(&alone).unwrap().is_empty());
    assert!(rx.push(&packed).unwrap().is_empty());
    assert_eq!(rx.stats().events, 2);
}

#[test]
fn what_is_not_a_telephone_event_is_refused_and_changes_nothing() {
    let mut rx = DtmfReceiver::new(PT);
    let cases: [(Vec<u8>, DtmfError); 6] = [
        (
            vec![0x80, PT, 0, 1],
            DtmfError::NotRtp {
                reason: "shorter than an RTP header",
            },
        ),
        (
            {
                let mut p = event_packet(true, 1, 0, SSRC, &[1, 0, 0, 160]);
                p[0] = 0x40;
                p
            },
            DtmfError::NotRtp {
                reason: "version is not 2",
            },
        ),
        (
            event_packet(true, 1, 0, SSRC, &[]),
            DtmfError::PayloadLength { len: 0 },
        ),
        (
            event_packet(true, 1, 0, SSRC, &[1, 0, 0]),
            DtmfError::PayloadLength { len: 3 },
        ),
        (
            event_packet(true, 1, 0, SSRC, &[1, 0, 0, 160, 9]),
            DtmfError::PayloadLength { len: 5 },
        ),
        (
            event_packet(true, 1, 0, SSRC, &[1, 0, 0, 160, 2, 0x80, 0, 160]),
            DtmfError::PackedUnended { index: 0 },
        ),
    ];
    for (packet, error) in cases {
        assert_eq!(rx.push(&packet).unwrap_err(), error);
    }
    assert_eq!(rx.stats(), DtmfReceiver::new(PT).stats());
    // A valid report with two CSRCs, an extension and padding: read.
    let mut p = vec![0x80 | 0x20 | 0x10 | 2, 0x80 | PT, 0, 9, 0, 0, 0, 0];
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
    p.extend_from_slice(&[6, 0x0a, 0, 160, 0, 0, 3]);
    assert_eq!(rx.push(&p).unwrap(), &[Event::Digit(Digit::Six)]);
}

/// One event as the proptest sends it.
#[derive(Debug, Clone)]
struct Press {
    ssrc: u32,
    event: u8,
    press_ms: u64,
    gap_ms: u64,
}

fn press() -> impl Strategy<Value = Press> {
    (0..3u32, 0..20u8, 1..400u64, 0..300u64).prop_map(|(ssrc, event, press_ms, gap_ms)| Press {
        ssrc,
        event,
        press_ms,
        gap_ms,
    })
}

/// What is done to the packets on the way.
#[derive(Debug, Clone)]
enum Mishap {
    Lose(usize),
    Repeat(usize),
    Swap(usize),
}

fn mishap() -> impl Strategy<Value = Mishap> {
    prop_oneof![
        any::<usize>().prop_map(Mishap::Lose),
        any::<usize>().prop_map(Mishap::Repeat),
        any::<usize>().prop_map(Mishap::Swap),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes, and any payload behind a header of the events' payload
    /// type: no panic, and a refused packet reports nothing.
    #[test]
    fn arbitrary_bytes_never_panic(
        raw in proptest::collection::vec(any::<u8>(), 0..64),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        marker in any::<bool>(),
        ts in any::<u32>(),
    ) {
        let mut rx = DtmfReceiver::new(PT);
        let _ = rx.push(&raw);
        let packet = event_packet(marker, 1, ts, SSRC, &payload);
        match rx.push(&packet) {
            Ok(events) => prop_assert!(events.len() <= payload.len() / 4),
            Err(_) => prop_assert!(payload.is_empty() || !payload.len().is_multiple_of(4) || payload.len() > 4),
        }
        let _ = EventReport::parse(&payload);
    }

    /// Event packets with arbitrary fields, in any order, stamped within
    /// the late window of each other: a stream reports one timestamp at
    /// most once.
    #[test]
    fn no_timestamp_is_reported_twice(
        base in any::<u32>(),
        packets in proptest::collection::vec(
            (0..4u32, 0..4096u32, any::<bool>(), 0..20u8, any::<bool>(), any::<u16>()),
            1..200),
    ) {
        let mut rx = DtmfReceiver::new(PT);
        let mut reported = HashSet::new();
        for (n, (ssrc, offset, marker, event, end, duration)) in packets.into_iter().enumerate() {
            // Offsets in steps of 32 units: collisions are frequent.
            let ts = base.wrapping_add(offset * 32);
            let report = EventReport::new(event, end, 10, duration).unwrap().to_bytes();
            let events = rx.push(&event_packet(marker, n as u16, ts, ssrc, &report)).unwrap();
            prop_assert!(events.len() <= 1);
            if !events.is_empty() {
                prop_assert!(reported.insert((ssrc, ts)), "{ssrc} {ts} twice");
            }
        }
    }

    /// Presses sent by the sender on up to three streams, then lost,
    /// repeated and swapped with a neighbour on the way: no press is
    /// reported twice, nothing is reported that was not pressed, and a
    /// press of which a packet arrives in order is reported.
    #[test]
    fn sent_presses_survive_loss_repeats_and_reordering(
        presses in proptest::collection::vec(press(), 1..12),
        mishaps in proptest::collection::vec(mishap(), 0..12),
        interval in prop_oneof![Just(20u64), Just(50)],
        base in any::<u32>(),
    ) {
        let mut clock = [base; 3];
        let mut seq = [0u16; 3];
        // (packet, ssrc, timestamp, event) in the order sent.
        let mut wire: Vec<(Vec<u8>, u32, u32, u8)> = Vec::new();
        for p in &presses {
            let i = p.ssrc as usize;
            let sender = DtmfSender::new(PT, p.ssrc).with_interval(Duration::from_millis(interval));
            let packets = sender
                .event_packets(p.event, Duration::from_millis(p.press_ms), seq[i], clock[i])
                .unwrap();
            for e in &packets {
                wire.push((e.packet.clone(), p.ssrc, clock[i], p.event));
            }
            seq[i] = seq[i].wrapping_add(packets.len() as u16);
            clock[i] = clock[i].wrapping_add(((p.press_ms + p.gap_ms) * 8) as u32 + 1);
        }
        let sent: HashSet<(u32, u32, u8)> = wire.iter().map(|w| (w.1, w.2, w.3)).collect();
        let mut reordered = false;
        for m in &mishaps {
            if wire.is_empty() {
                break;
            }
            match *m {
                Mishap::Lose(i) => { wire.remove(i % wire.len()); }
                Mishap::Repeat(i) => { let w = wire[i % wire.len()].clone(); wire.insert(i % wire.len(), w); }
                Mishap::Swap(i) => {
                    let i = i % wire.len();
                    if i + 1 < wire.len() {
                        wire.swap(i, i + 1);
                        reordered = true;
                    }
                }
            }
        }
        let mut rx = DtmfReceiver::new(PT);
        let mut reported = HashSet::new();
        for (packet, ssrc, ts, event) in &wire {
            let events = rx.push(packet).unwrap();
            prop_assert!(events.len() <= 1);
            if let Some(e) = events.first() {
                prop_assert_eq!(e.code(), *event);
                prop_assert!(reported.insert((*ssrc, *ts, *event)), "reported twice");
            }
        }
        prop_assert!(reported.is_subset(&sent));
        if !reordered {
            let arrived: HashSet<(u32, u32, u8)> = wire.iter().map(|w| (w.1, w.2, w.3)).collect();
            prop_assert_eq!(reported, arrived);
        }
    }
}
