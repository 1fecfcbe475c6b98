//! `carevox-tour [DATA_DIR]`: walks one patient call through every safeguard
//! and prints what happened. Without `DATA_DIR` the data goes to a fresh
//! directory under the system's temporary directory.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use carevox_tour::{Options, alert_kind, run};

fn main() -> ExitCode {
    let data_dir = std::env::args_os().nth(1).map(PathBuf::from);
    if data_dir
        .as_deref()
        .is_some_and(|d| d.as_os_str() == "-h" || d.as_os_str() == "--help")
    {
        println!(
            "usage: carevox-tour [DATA_DIR]\n\nWalks one patient call through login, SIP/SDES, SRTP, the vault,\naccess control and the audit log. DATA_DIR (created with mode 0700)\ndefaults to a fresh directory under the system's temporary directory."
        );
        return ExitCode::SUCCESS;
    }
    let options = Options {
        data_dir,
        ..Options::default()
    };
    let report = match run(&options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("carevox-tour: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("carevox tour: one patient call through every safeguard");
    println!("data directory (0700): {}", report.data_dir.display());
    for stage in &report.stages {
        println!(
            "\n[{}] {:.1} ms",
            stage.name,
            stage.elapsed.as_secs_f64() * 1e3
        );
        for line in &stage.lines {
            println!("  - {line}");
        }
    }
    println!("\nsummary");
    println!(
        "  login: {}; failed attempt audited: {}",
        if report.login_ok {
            "ok with MFA"
        } else {
            "FAILED"
        },
        report.failed_login_seq.is_some()
    );
    println!(
        "  SRTP {}: {}/{} frames, tampered refused: {}, replay refused: {}",
        report.srtp_suite,
        report.frames_unprotected,
        report.frames_protected,
        report.tampered_refused,
        report.replay_refused
    );
    println!(
        "  voicemail: {} bytes stored, readable: {}, vault operations audited: {}",
        report.voicemail_bytes, report.voicemail_readable, report.vault_events_audited
    );
    println!("  receptionist: {}", report.receptionist);
    println!("  physician: {}", report.physician);
    println!(
        "  administrator break-glass: {}",
        report.administrator_break_glass
    );
    println!(
        "  on-call physician break-glass: {} (review: {})",
        report.on_call_break_glass, report.break_glass_review
    );
    println!("  idle logoff: {}", report.idle_logoff);
    let kinds: Vec<&str> = report.alerts.iter().map(alert_kind).collect();
    println!("  alerts ({}): {}", kinds.len(), kinds.join(", "));
    println!(
        "  audit: {} records, verified: {}, inclusion proof: {}",
        report.audit_records, report.audit_verified, report.inclusion_verified
    );
    let total: f64 = report.stages.iter().map(|s| s.elapsed.as_secs_f64()).sum();
    println!("  wall-clock total: {:.1} ms", total * 1e3);
    ExitCode::SUCCESS
}
