//! Counts what a PBX data directory's audit log holds, for the load script
//! (`examples/pbx/load/run`): the log is verified with the public key
//! alone, then its records are counted by kind and the call records are
//! grouped by call (their correlation id, the Call-ID), so that the script
//! can show that every call it made was audited.
//!
//! `cargo run --release -p carevox-pbx --example audit_tally -- DATA_DIR`
//!
//! Prints `key value` lines (counts only: no user, address or Call-ID):
//! `records`, `verified` (1 when the verifier found no damage),
//! `calls` (distinct Call-IDs with a call record), `calls_started`,
//! `calls_answered`, `calls_voicemail`, `calls_refused`, `calls_ended` (calls with such a record),
//! `calls_complete` (calls with all three), `call_records`,
//! `registration_records`, `other_records`. Exit status 2 for a usage
//! error or an unreadable log.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use carevox::audit::{Action, EventType, Signer, VerifyOptions, for_each_record, verify_log};

/// What one call's records said.
#[derive(Default, Clone, Copy)]
struct Seen {
    started: bool,
    answered: bool,
    voicemail: bool,
    refused: bool,
    ended: bool,
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: audit_tally DATA_DIR");
        return ExitCode::from(2);
    };
    match tally(&PathBuf::from(dir).join("audit")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("audit_tally: {e}");
            ExitCode::from(2)
        }
    }
}

fn tally(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let seed: [u8; 32] = std::fs::read(dir.join("signing.key"))?
        .as_slice()
        .try_into()
        .map_err(|_| "signing.key must hold 32 bytes")?;
    let key = Signer::from_seed(&seed)?.verifying_key();
    let report = verify_log(dir, &key, VerifyOptions::default())?;
    let mut calls: HashMap<String, Seen> = HashMap::new();
    let (mut call_records, mut registrations, mut other) = (0u64, 0u64, 0u64);
    let (records, _root) = for_each_record(dir, &[], |_, r, _| {
        match r.event {
            EventType::CallStart | EventType::CallEnd => {
                call_records += 1;
                if let Some(id) = &r.correlation_id {
                    let seen = calls.entry(id.expose().clone()).or_default();
                    match (&r.event, &r.action) {
                        (EventType::CallStart, Action::Create) => seen.started = true,
                        (EventType::CallStart, Action::Update) => {
                            if r.details.iter().any(|d| d.key.expose() == "voicemail") {
                                seen.voicemail = true;
                            } else {
                                seen.answered = true;
                            }
                        }
                        (EventType::CallStart, Action::Execute) => seen.refused = true,
                        (EventType::CallEnd, _) => seen.ended = true,
                        _ => {}
                    }
                }
            }
            EventType::Login | EventType::Logout => registrations += 1,
            _ => other += 1,
        }
        Ok(())
    })?;
    let count = |f: fn(&Seen) -> bool| calls.values().filter(|s| f(s)).count();
    println!("records {records}");
    println!("verified {}", u8::from(report.is_ok()));
    println!("calls {}", calls.len());
    println!("calls_started {}", count(|s| s.started));
    println!("calls_answered {}", count(|s| s.answered));
    println!("calls_voicemail {}", count(|s| s.voicemail));
    println!("calls_refused {}", count(|s| s.refused));
    println!("calls_ended {}", count(|s| s.ended));
    println!(
        "calls_complete {}",
        count(|s| s.started && s.answered && s.ended)
    );
    println!("call_records {call_records}");
    println!("registration_records {registrations}");
    println!("other_records {other}");
    Ok(())
}
