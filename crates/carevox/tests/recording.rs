//! Recording a call's audio into the vault: a tone sent with loss, repeats
//! and reordering comes back with its timing and its frequency; lost
//! packets become silence, bounded; other streams and payload types are
//! skipped; the longest duration holds; what is not RTP is refused without
//! writing anything; samples and labels are encrypted at rest; arbitrary
//! packet sequences never break the bounds.

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
use carevox::recording::{Pushed, Recorder, RecorderConfig, RecordingError, Skip};
use carevox::vault::{LocalKeyFile, MemoryBackend, Metadata, Vault};
use proptest::prelude::*;
use ring::rand::SystemRandom;

const CALLER: &str = "sip:+15551234567@clinic.example";

fn vault() -> (Vault, Arc<MemoryBackend>, tempfile::TempDir) {
    let rng = SystemRandom::new();
    let dir = tempfile::tempdir().unwrap();
    let keys = LocalKeyFile::create(dir.path().join("kek"), &rng).unwrap();
    let backend = Arc::new(MemoryBackend::new());
    (Vault::new(backend.clone(), Arc::new(keys)), backend, dir)
}

fn metadata(id: &str) -> Metadata {
    Metadata::new(id, G711::Pcmu.media_type(), 1_700_000_000, 1_800_000_000).label("caller", CALLER)
}

fn packet(ssrc: u32, pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// 20 ms of a 440 Hz tone starting at sample `start`, μ-law encoded.
fn tone_frame(start: u32) -> Vec<u8> {
    (0..160u32)
        .map(|i| {
            let t = f64::from(start + i) / 8000.0;
            G711::Pcmu.encode((12000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16)
        })
        .collect()
}

fn decoded(bytes: &[u8]) -> Vec<i16> {
    bytes.iter().map(|&b| G711::Pcmu.decode(b)).collect()
}

#[test]
fn a_tone_with_loss_repeats_and_reordering_comes_back_in_time() {
    let (vault, _, _dir) = vault();
    let rng = SystemRandom::new();
    let mut rec = Recorder::start(
        &vault,
        &rng,
        metadata("vm-tone"),
        RecorderConfig::new(G711::Pcmu),
    )
    .unwrap();
    let frames: Vec<Vec<u8>> = (0..100u16)
        .map(|n| packet(7, 0, n, u32::from(n) * 160, &tone_frame(u32::from(n) * 160)))
        .collect();
    let lost = [10usize, 11, 40, 77];
    for (n, f) in frames.iter().enumerate() {
        if lost.contains(&n) {
            continue;
        }
        if n == 50 {
            // Frame 51 overtakes frame 50: 50 then arrives late.
            assert!(matches!(
                rec.push(&frames[51]).unwrap(),
                Pushed::Written { .. }
            ));
            assert_eq!(rec.push(f).unwrap(), Pushed::Skipped(Skip::Late));
            continue;
        }
        if n == 51 {
            continue;
        }
        assert!(
            matches!(rec.push(f).unwrap(), Pushed::Written { .. }),
            "{n}"
        );
        if n == 20 {
            assert_eq!(
                rec.push(f).unwrap(),
                Pushed::Skipped(Skip::Late),
                "a repeat"
            );
        }
    }
    let stats = rec.stats();
    assert_eq!(stats.samples, 100 * 160, "the call's whole span");
    assert_eq!(
        stats.concealed,
        5 * 160,
        "four lost frames and the late one"
    );
    assert_eq!(stats.late, 2);
    assert_eq!(rec.duration(), Duration::from_secs(2));
    let info = rec.finish().unwrap();
    assert_eq!(info.len, 16_000);

    let (meta, bytes) = vault.get("vm-tone").unwrap();
    assert_eq!(meta.content_type, "audio/PCMU");
    assert_eq!(meta.get_label("caller"), Some(CALLER));
    // Lost frames are silence, the others the tone.
    assert!(bytes[1600..1920].iter().all(|&b| b == 0xff));
    assert_eq!(&bytes[1920..2080], &frames[12][12..]);
    let samples = decoded(&bytes);
    assert!(tone_power(&samples, 8000, 440.0) > 0.4);
    assert!(tone_power(&samples, 8000, 1000.0) < 0.01);
}

#[test]
fn a_jump_in_time_is_bounded_and_the_longest_duration_holds() {
    let (vault, _, _dir) = vault();
    let rng = SystemRandom::new();
    let config = RecorderConfig::new(G711::Pcmu)
        .with_max_duration(Duration::from_secs(3))
        .with_max_gap(Duration::from_millis(500));
    let mut rec = Recorder::start(&vault, &rng, metadata("vm-bounds"), config).unwrap();
    rec.push(&packet(7, 0, 1, 0, &[0x11; 160])).unwrap();
    // An hour later, by the timestamps: half a second of silence only.
    let hour = 8000 * 3600;
    assert_eq!(
        rec.push(&packet(7, 0, 2, hour, &[0x22; 160])).unwrap(),
        Pushed::Written {
            samples: 4000 + 160
        }
    );
    // Then packets until the longest duration: the last one is cut.
    let mut seq = 3u16;
    let mut ts = hour + 160;
    let mut full = false;
    for _ in 0..200 {
        match rec.push(&packet(7, 0, seq, ts, &[0x33; 160])).unwrap() {
            Pushed::Written { .. } => {}
            Pushed::Full => {
                full = true;
                break;
            }
            other => panic!("{other:?}"),
        }
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(160);
    }
    assert!(full);
    assert_eq!(rec.stats().samples, 24_000);
    assert_eq!(rec.finish().unwrap().len, 24_000);
}

#[test]
fn other_streams_and_payload_types_are_skipped() {
    let (vault, _, _dir) = vault();
    let rng = SystemRandom::new();
    let mut rec = Recorder::start(
        &vault,
        &rng,
        metadata("vm-skip"),
        RecorderConfig::new(G711::Pcmu),
    )
    .unwrap();
    rec.push(&packet(7, 0, 1, 0, &[0x11; 160])).unwrap();
    assert_eq!(
        rec.push(&packet(8, 0, 1, 160, &[0x22; 160])).unwrap(),
        Pushed::Skipped(Skip::OtherStream)
    );
    // A DTMF event (RFC 4733, dynamic type 101), comfort noise (13), A-law.
    for pt in [101u8, 13, 8] {
        assert_eq!(
            rec.push(&packet(7, pt, 2, 160, &[0x01, 0x0a, 0, 160]))
                .unwrap(),
            Pushed::Skipped(Skip::OtherPayload)
        );
    }
    assert_eq!(
        rec.push(&packet(7, 0, 2, 160, &[])).unwrap(),
        Pushed::Skipped(Skip::Empty)
    );
    let stats = rec.stats();
    assert_eq!((stats.other_streams, stats.other_payloads), (1, 3));
    assert_eq!(rec.finish().unwrap().len, 160);
}

#[test]
fn what_is_not_rtp_is_refused_and_writes_nothing() {
    let (vault, _, _dir) = vault();
    let rng = SystemRandom::new();
    let mut rec = Recorder::start(
        &vault,
        &rng,
        metadata("vm-bad"),
        RecorderConfig::new(G711::Pcmu),
    )
    .unwrap();
    rec.push(&packet(7, 0, 1, 0, &[0x11; 160])).unwrap();
    let mut bad = vec![
        vec![],
        vec![0x80; 11],
        {
            let mut p = packet(7, 0, 2, 160, &[0; 4]);
            p[0] = 0x40; // version 1
            p
        },
        {
            let mut p = packet(7, 0, 2, 160, &[0; 4]);
            p[0] = 0x8f; // 15 CSRCs in a 16-byte packet
            p
        },
        {
            let mut p = packet(7, 0, 2, 160, &[0xbe, 0xde, 0x00, 0x09]);
            p[0] = 0x90; // an extension of 9 words that is not there
            p
        },
        {
            let mut p = packet(7, 0, 2, 160, &[0, 0, 0, 200]);
            p[0] = 0xa0; // 200 bytes of padding in 16
            p
        },
    ];
    for p in bad.drain(..) {
        assert!(
            matches!(rec.push(&p), Err(RecordingError::NotRtp { .. })),
            "{p:?}"
        );
    }
    assert_eq!(rec.stats().samples, 160);
    // The recording goes on, and holds only what was valid.
    rec.push(&packet(7, 0, 2, 160, &[0x22; 160])).unwrap();
    assert_eq!(rec.finish().unwrap().len, 320);
    // The same object id cannot be written twice.
    assert!(matches!(
        Recorder::start(
            &vault,
            &rng,
            metadata("vm-bad"),
            RecorderConfig::new(G711::Pcmu)
        ),
        Err(RecordingError::Vault(_))
    ));
}

#[test]
fn samples_and_labels_are_encrypted_at_rest() {
    let (vault, backend, _dir) = vault();
    let rng = SystemRandom::new();
    let mut rec = Recorder::start(
        &vault,
        &rng,
        metadata("vm-rest"),
        RecorderConfig::new(G711::Pcmu),
    )
    .unwrap();
    let frame = tone_frame(0);
    for n in 0..50u16 {
        rec.push(&packet(7, 0, n, u32::from(n) * 160, &frame))
            .unwrap();
    }
    rec.finish().unwrap();
    let stored = backend.payload_bytes("vm-rest").unwrap();
    assert!(!stored.windows(16).any(|w| w == &frame[..16]));
    assert!(!stored.windows(CALLER.len()).any(|w| w == CALLER.as_bytes()));
    // Nothing is stored for a recording that was never finished.
    let rec = Recorder::start(
        &vault,
        &rng,
        metadata("vm-dropped"),
        RecorderConfig::new(G711::Pcmu),
    )
    .unwrap();
    drop(rec);
    assert!(vault.get("vm-dropped").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of packets, valid or not: no panic, the object holds
    /// exactly the samples counted, never more than the longest duration.
    #[test]
    fn arbitrary_packets_keep_the_bounds(
        packets in proptest::collection::vec(
            (any::<u32>(), prop_oneof![Just(0u8), any::<u8>()], any::<u32>(),
             proptest::collection::vec(any::<u8>(), 0..400), any::<bool>()),
            0..60),
    ) {
        let (vault, _, _dir) = vault();
        let rng = SystemRandom::new();
        let config = RecorderConfig::new(G711::Pcmu).with_max_duration(Duration::from_secs(2));
        let mut rec = Recorder::start(&vault, &rng, metadata("vm-prop"), config).unwrap();
        for (n, (ssrc, pt, ts, payload, raw)) in packets.into_iter().enumerate() {
            let p = if raw {
                payload
            } else {
                packet(ssrc % 3, pt & 0x7f, n as u16, ts, &payload)
            };
            let _ = rec.push(&p);
            prop_assert!(rec.stats().samples <= 16_000);
        }
        let samples = rec.stats().samples;
        prop_assert_eq!(rec.finish().unwrap().len, samples);
    }
}
