//! `carevox-pbx`: the PBX's command line.
//!
//! `carevox-pbx check-config FILE` validates a `pbx.toml` and reads it
//! against the technical safeguards of 45 CFR 164.312. Exit status: 0 when
//! every safeguard is met, 1 when a setting weakens one, 2 for a usage
//! error or a file that cannot be read or is invalid.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use carevox_pbx::check::check_config;
use carevox_pbx::config::Config;
use clap::{Parser, Subcommand};

/// The carevox PBX: SIP over TLS and SRTP only.
#[derive(Debug, Parser)]
#[command(name = "carevox-pbx", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file and report each HIPAA Security Rule
    /// technical safeguard (45 CFR 164.312) as met or weakened.
    ///
    /// It reads the settings only: it says what they ask for, not what a
    /// running server does. Exit status: 0 every safeguard met, 1 one or
    /// more weakened, 2 the file cannot be read or is invalid.
    CheckConfig {
        /// The configuration file (pbx.toml).
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => {
            let config = match Config::load(&file) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("carevox-pbx: {e}");
                    return ExitCode::from(2);
                }
            };
            let report = check_config(&config);
            print!("{report}");
            if report.all_met() {
                println!("all safeguards met");
                ExitCode::SUCCESS
            } else {
                println!("one or more safeguards weakened");
                ExitCode::FAILURE
            }
        }
    }
}
