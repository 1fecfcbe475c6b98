//! Recording both sides of a call into one vault object: each party is
//! placed where its packets arrived and then by their timestamps, so that
//! jitter, reordering and loss keep the speech's timing; moments nobody
//! spoke in are silence; a stream that jumps or lags is placed again at its
//! arrival instead of growing the recording or being lost; the mix stays
//! bounded; the longest duration holds.

#![cfg(feature = "vault")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;
use std::time::Duration;

use carevox::audio::{G711, tone_power};
use carevox::recording::{CallRecorder, CallRecorderConfig, Pushed, RecordingError, Skip, Speaker};
use carevox::vault::{LocalKeyFile, MemoryBackend, Metadata, Vault};
use proptest::prelude::*;
use ring::rand::SystemRandom;

fn vault() -> (Vault, tempfile::TempDir) {
    let rng = SystemRandom::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = LocalKeyFile::create(dir.path().join("kek"), &rng).unwrap();
    (
        Vault::new(Arc::new(MemoryBackend::new()), Arc::new(keys)),
        dir,
    )
}

fn metadata(id: &str) -> Metadata {
    Metadata::new(id, G711::Pcmu.media_type(), 1_700_000_000, 1_800_000_000)
}

fn packet(ssrc: u32, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// 20 ms of a tone at `hz` starting at sample `start`, μ-law.
fn tone(hz: f64, start: u32) -> Vec<u8> {
    (0..160u32)
        .map(|i| {
            let t = f64::from(start + i) / 8000.0;
            G711::Pcmu.encode((8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
        })
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn decoded(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| G711::Pcmu.decode(b)).collect()
}

fn energy(samples: &[i16]) -> f64 {
    samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64
}

fn recorder<'v>(vault: &'v Vault, id: &str) -> CallRecorder<'v> {
    CallRecorder::start(
        vault,
        &SystemRandom::new(),
        metadata(id),
        CallRecorderConfig::new(G711::Pcmu),
    )
    .unwrap()
}

#[test]
fn both_parties_are_heard_where_they_spoke() {
    let (vault, _dir) = vault();
    let mut rec = recorder(&vault, "rec-turns");
    // A speaks (440 Hz) for the first second, B (1000 Hz) for the third;
    // their streams start at unrelated timestamps.
    for n in 0..50u32 {
        let ts = 90_000 + n * 160;
        let p = packet(11, n as u16, ts, &tone(440.0, n * 160));
        rec.push(Speaker::A, ms(u64::from(n) * 20), &p).unwrap();
    }
    for n in 0..50u32 {
        let ts = 3_000_000_000u32.wrapping_add(n * 160);
        let p = packet(
            22,
            60_000u16.wrapping_add(n as u16),
            ts,
            &tone(1000.0, n * 160),
        );
        rec.push(Speaker::B, ms(2000 + u64::from(n) * 20), &p)
            .unwrap();
    }
    let info = rec.finish(ms(3000)).unwrap();
    assert_eq!(info.len, 24_000, "the call's three seconds");
    let (_, bytes) = vault.get("rec-turns").unwrap();
    let s = decoded(&bytes);
    assert!(tone_power(&s[..8000], 8000, 440.0) > 0.4);
    assert!(tone_power(&s[..8000], 8000, 1000.0) < 0.01);
    assert!(energy(&s[8000..16_000]) < 1.0, "nobody spoke in the second");
    assert!(tone_power(&s[16_000..], 8000, 1000.0) > 0.4);
    assert!(tone_power(&s[16_000..], 8000, 440.0) < 0.01);
}

#[test]
fn both_parties_at_once_are_mixed() {
    let (vault, _dir) = vault();
    let mut rec = recorder(&vault, "rec-both");
    for n in 0..100u32 {
        let at = ms(u64::from(n) * 20);
        rec.push(
            Speaker::A,
            at,
            &packet(1, n as u16, n * 160, &tone(440.0, n * 160)),
        )
        .unwrap();
        rec.push(
            Speaker::B,
            at + ms(7),
            &packet(2, n as u16, 5000 + n * 160, &tone(1000.0, n * 160)),
        )
        .unwrap();
        // The announcement side plays too, in the first half second.
        if n < 25 {
            rec.push(
                Speaker::Own,
                at,
                &packet(3, n as u16, n * 160, &tone(1400.0, n * 160)),
            )
            .unwrap();
        }
    }
    let stats = rec.stats();
    assert_eq!(stats.placed, 225);
    rec.finish(ms(2000)).unwrap();
    let (_, bytes) = vault.get("rec-both").unwrap();
    let s = decoded(&bytes);
    let later = &s[8000..16_000];
    assert!(tone_power(later, 8000, 440.0) > 0.2, "A is in the mix");
    assert!(tone_power(later, 8000, 1000.0) > 0.2, "B is in the mix");
    assert!(
        tone_power(&s[..4000], 8000, 1400.0) > 0.1,
        "the announcement"
    );
    assert!(tone_power(later, 8000, 1400.0) < 0.01, "ended");
}

#[test]
fn jitter_and_reordering_within_the_delay_keep_the_timing() {
    let (vault, _dir) = vault();
    let mut rec = recorder(&vault, "rec-jitter");
    // Arrivals wobble by up to 60 ms and pairs swap places; a frame is lost.
    let mut order: Vec<u32> = (0..100).collect();
    for pair in order[1..].chunks_mut(7) {
        if pair.len() > 1 {
            pair.swap(0, 1);
        }
    }
    for (i, &n) in order.iter().enumerate() {
        if n == 33 {
            continue;
        }
        let wobble = [0u64, 60, 15, 45, 5, 30][i % 6];
        let at = ms(u64::try_from(i).unwrap() * 20 + wobble);
        let pushed = rec
            .push(
                Speaker::A,
                at,
                &packet(9, n as u16, 1000 + n * 160, &tone(440.0, n * 160)),
            )
            .unwrap();
        if pushed != Pushed::Skipped(Skip::Late) {
            assert!(
                matches!(pushed, Pushed::Written { samples: 160 }),
                "{n}: {pushed:?}"
            );
        }
    }
    let stats = rec.stats();
    // Overtaken frames arrive after their successor, whose timestamp
    // already moved the stream on: they are late, and counted.
    assert_eq!(stats.placed + stats.late, 99);
    assert_eq!(stats.realigned, 0, "jitter never moves the stream");
    rec.finish(ms(2000)).unwrap();
    let (_, bytes) = vault.get("rec-jitter").unwrap();
    let s = decoded(&bytes);
    // The lost frame is silence exactly where it belonged.
    assert!(energy(&s[33 * 160..34 * 160]) < 1.0);
    assert!(energy(&s[32 * 160..33 * 160]) > 1_000_000.0);
    assert!(energy(&s[34 * 160..35 * 160]) > 1_000_000.0);
    assert!(tone_power(&s[..16_000], 8000, 440.0) > 0.3);
}

#[test]
fn a_packet_later_than_the_delay_is_skipped_not_written_twice() {
    let (vault, _dir) = vault();
    let mut rec = recorder(&vault, "rec-late");
    rec.push(Speaker::A, ms(0), &packet(1, 0, 0, &[0x10; 160]))
        .unwrap();
    rec.push(Speaker::A, ms(20), &packet(1, 2, 320, &[0x10; 160]))
        .unwrap();
    // Frame 1 shows up a second later: its moment is written already.
    assert_eq!(
        rec.push(Speaker::A, ms(1020), &packet(1, 1, 160, &[0x10; 160]))
            .unwrap(),
        Pushed::Skipped(Skip::Late)
    );
    // A repeat is late too.
    assert_eq!(
        rec.push(Speaker::A, ms(1030), &packet(1, 2, 320, &[0x10; 160]))
            .unwrap(),
        Pushed::Skipped(Skip::Late)
    );
    assert_eq!(rec.stats().late, 2);
}

#[test]
fn timestamps_that_jump_or_stall_are_placed_at_their_arrival() {
    let (vault, _dir) = vault();
    let mut rec = recorder(&vault, "rec-jump");
    for n in 0..10u32 {
        rec.push(
            Speaker::A,
            ms(u64::from(n) * 20),
            &packet(1, n as u16, n * 160, &[0x10; 160]),
        )
        .unwrap();
    }
    // After a hold, a phone's timestamps jump a minute ahead while only
    // two seconds passed: the recording does not grow by a minute.
    let jump = 10 * 160 + 60 * 8000;
    rec.push(Speaker::A, ms(2200), &packet(1, 10, jump, &[0x20; 160]))
        .unwrap();
    assert_eq!(rec.stats().realigned, 1);
    // Another phone's timestamps stall across a hold: what follows is
    // placed at its arrival, not dropped as late.
    rec.push(
        Speaker::A,
        ms(5000),
        &packet(1, 11, jump + 160, &[0x30; 160]),
    )
    .unwrap();
    assert_eq!(rec.stats().realigned, 2);
    assert_eq!(rec.stats().late, 0);
    let info = rec.finish(ms(5020)).unwrap();
    assert_eq!(info.len, 5020 * 8, "wall-clock length");
    let (_, bytes) = vault.get("rec-jump").unwrap();
    assert_eq!(bytes[2200 * 8], 0x20, "placed where it arrived");
    assert_eq!(bytes[5000 * 8], 0x30);
    assert_eq!(bytes[1000 * 8], G711::Pcmu.silence());
}

#[test]
fn a_second_stream_beside_a_live_one_is_skipped_and_replaces_a_quiet_one() {
    let (vault, _dir) = vault();
    let mut rec = recorder(&vault, "rec-streams");
    rec.push(Speaker::B, ms(0), &packet(1, 0, 0, &[0x10; 160]))
        .unwrap();
    assert_eq!(
        rec.push(Speaker::B, ms(20), &packet(2, 0, 0, &[0x10; 160]))
            .unwrap(),
        Pushed::Skipped(Skip::OtherStream)
    );
    // Stream 1 falls silent; a second later stream 2 takes over.
    assert!(matches!(
        rec.push(Speaker::B, ms(1000), &packet(2, 1, 160, &[0x10; 160]))
            .unwrap(),
        Pushed::Written { .. }
    ));
    assert_eq!(rec.stats().other_streams, 1);
}

#[test]
fn other_payloads_are_skipped_and_non_rtp_refused_without_writing() {
    let (vault, _dir) = vault();
    let mut rec = recorder(&vault, "rec-refuse");
    let mut dtmf = packet(1, 0, 0, &[1, 0x8a, 0, 160]);
    dtmf[1] = 101;
    assert_eq!(
        rec.push(Speaker::A, ms(0), &dtmf).unwrap(),
        Pushed::Skipped(Skip::OtherPayload)
    );
    assert!(matches!(
        rec.push(Speaker::A, ms(0), &[0x80, 0, 1]),
        Err(RecordingError::NotRtp { .. })
    ));
    assert!(matches!(
        rec.push(Speaker::A, ms(0), &[0x40; 20]),
        Err(RecordingError::NotRtp { .. })
    ));
    let info = rec.finish(Duration::ZERO).unwrap();
    assert_eq!(info.len, 0);
}

#[test]
fn the_longest_duration_holds() {
    let (vault, _dir) = vault();
    let config = CallRecorderConfig::new(G711::Pcmu).with_max_duration(Duration::from_secs(1));
    let mut rec =
        CallRecorder::start(&vault, &SystemRandom::new(), metadata("rec-full"), config).unwrap();
    let mut full = false;
    for n in 0..200u32 {
        let pushed = rec
            .push(
                Speaker::A,
                ms(u64::from(n) * 20),
                &packet(1, n as u16, n * 160, &[0x10; 160]),
            )
            .unwrap();
        full |= pushed == Pushed::Full;
    }
    assert!(full);
    let info = rec.finish(ms(4000)).unwrap();
    assert_eq!(info.len, 8000);
}

#[test]
fn the_mix_is_encrypted_at_rest() {
    let rng = SystemRandom::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = LocalKeyFile::create(dir.path().join("kek"), &rng).unwrap();
    let backend = Arc::new(MemoryBackend::new());
    let vault = Vault::new(backend.clone(), Arc::new(keys));
    let mut rec = recorder(&vault, "rec-sealed");
    let marker = [0x5au8; 160];
    for n in 0..10u32 {
        rec.push(
            Speaker::A,
            ms(u64::from(n) * 20),
            &packet(1, n as u16, n * 160, &marker),
        )
        .unwrap();
    }
    rec.finish(ms(200)).unwrap();
    let stored = backend.payload_bytes("rec-sealed").unwrap();
    assert!(stored.len() >= 1600);
    assert!(!stored.windows(32).any(|w| w == &marker[..32]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the packets and their arrival times, the recording never
    /// runs past the last arrival plus the look-ahead, every stored sample
    /// decodes, and nothing panics.
    #[test]
    fn any_sequence_keeps_the_bounds(
        steps in proptest::collection::vec(
            (0u8..3, 0u32..4, any::<u32>(), 0u64..400, 0usize..400),
            1..80,
        )
    ) {
        let (vault, _dir) = vault();
        let mut rec = recorder(&vault, "rec-any");
        let mut at = 0u64;
        for (who, ssrc, ts, step, len) in steps {
            at += step;
            let speaker = [Speaker::A, Speaker::B, Speaker::Own][usize::from(who)];
            let p = packet(ssrc, 0, ts, &vec![0x33; len]);
            let _ = rec.push(speaker, ms(at), &p).unwrap();
        }
        let info = rec.finish(ms(at)).unwrap();
        // Arrival, the look-ahead (1 s) and one packet at most.
        prop_assert!(info.len <= at * 8 + 8000 + 400);
        prop_assert!(info.len >= at * 8);
    }
}
