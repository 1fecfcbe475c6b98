//! Protecting and unprotecting allocate nothing in steady state: a counting
//! global allocator sees zero allocations over thousands of packets of every
//! suite, SRTP and SRTCP, through the slice, `Vec` and in-place forms.
//!
//! This file holds a single test so that no other test thread allocates
//! while it counts, and the test first waits for the harness's own thread
//! to go quiet: right after starting the test thread, libtest records it in
//! its bookkeeping (a few allocations), which on a loaded machine can land
//! inside the first counted window.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::alloc::System;

use carevox_srtp::{Config, Context, MasterKey, Suite};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn rtp(seq: u16, len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]);
    p.resize(12 + len, 0x5a);
    p
}

/// Returns once no thread of the process has allocated for three
/// consecutive 20 ms windows (or after about two seconds, in which case the
/// counted windows below would show whoever keeps allocating).
fn wait_for_quiet() {
    let mut quiet = 0;
    for _ in 0..100 {
        let region = Region::new(GLOBAL);
        std::thread::sleep(std::time::Duration::from_millis(20));
        if region.change().allocations == 0 {
            quiet += 1;
            if quiet == 3 {
                return;
            }
        } else {
            quiet = 0;
        }
    }
}

#[test]
fn steady_state_protect_and_unprotect_allocate_nothing() {
    wait_for_quiet();
    for suite in Suite::ALL {
        let key = || {
            MasterKey::new(suite, &vec![3; suite.key_len()], &vec![4; suite.salt_len()])
                .unwrap()
                .with_mki(&[1])
                .unwrap()
        };
        let mut tx = Context::new(key(), Config::new()).unwrap();
        tx.add_outbound_stream(7).unwrap();
        let mut rx = Context::new(key(), Config::new()).unwrap();
        let mut rtcp = vec![0x81, 201, 0, 5, 0, 0, 0, 7];
        rtcp.resize(24, 9);
        // Warm up: the receiver's stream and the buffers' capacity.
        let (mut wire, mut back) = (Vec::with_capacity(2048), Vec::with_capacity(2048));
        let mut slice = [0u8; 2048];
        let mut plain = [0u8; 2048];
        let packets: Vec<Vec<u8>> = (0..3000u16).map(|s| rtp(s, 160)).collect();
        tx.protect_rtp_vec(&packets[0], &mut wire).unwrap();
        rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
        tx.protect_rtcp_vec(&rtcp, &mut wire).unwrap();
        rx.unprotect_rtcp_vec(&wire, &mut back).unwrap();

        let region = Region::new(GLOBAL);
        for (i, p) in packets.iter().enumerate().skip(1) {
            match i % 3 {
                0 => {
                    tx.protect_rtp_vec(p, &mut wire).unwrap();
                    rx.unprotect_rtp_vec(&wire, &mut back).unwrap();
                }
                1 => {
                    let n = tx.protect_rtp(p, &mut slice).unwrap();
                    rx.unprotect_rtp(&slice[..n], &mut plain).unwrap();
                }
                _ => {
                    slice[..p.len()].copy_from_slice(p);
                    let n = tx.protect_rtp_in_place(&mut slice, p.len()).unwrap();
                    rx.unprotect_rtp_in_place(&mut slice, n).unwrap();
                }
            }
            tx.protect_rtcp_vec(&rtcp, &mut wire).unwrap();
            rx.unprotect_rtcp_vec(&wire, &mut back).unwrap();
            // Refusals allocate nothing either.
            assert!(rx.unprotect_rtcp_vec(&wire, &mut back).is_err());
        }
        let stats = region.change();
        assert_eq!(stats.allocations, 0, "{suite}: {stats:?}");
        assert_eq!(stats.reallocations, 0, "{suite}: {stats:?}");
        assert_eq!(rx.key_usage(0), Some((3000, 3000)));
    }
    // The counter does see allocations.
    let region = Region::new(GLOBAL);
    let v: Vec<u8> = Vec::with_capacity(64);
    assert_eq!(region.change().allocations, 1);
    drop(v);
}
