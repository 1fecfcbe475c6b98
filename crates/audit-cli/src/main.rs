//! `carevox-audit`: verify, export, query and monitor a carevox audit log.
//!
//! Exit status: 0 when all is well, 1 when verification found damage or a
//! command could not finish (a damaged or unreadable log), 2 on a usage
//! error.

// A command-line tool: it reports on the terminal and exits with a status.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use carevox_audit::monitor::{Monitor, MonitorConfig, WorkingHours};
use carevox_audit::{
    CHECKPOINT_FILE, Checkpoint, Index, Pii, Progress, Query, Record, SealSeed, Timestamp,
    VerifyOptions, VerifyingKey, for_each_record, scan_checkpoints, verify_log,
};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

/// Verify, export, query and monitor a carevox audit log.
#[derive(Debug, Parser)]
#[command(name = "carevox-audit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check framing, the hash chain, every signed checkpoint and the
    /// signatures; exit 1 and name the first bad record on damage.
    Verify {
        /// The log directory.
        dir: PathBuf,
        /// The public key: 64 hex digits, or a file holding them or the 32
        /// raw key bytes.
        #[arg(long, value_name = "PUBKEY")]
        key: String,
        /// A directory holding archived segments (repeatable).
        #[arg(long, value_name = "DIR")]
        archive: Vec<PathBuf>,
        /// A checkpoint kept outside the log (JSON, as `head` prints it):
        /// detects rollback and forks.
        #[arg(long, value_name = "CHECKPOINT.json")]
        trusted: Option<PathBuf>,
        /// A file holding the log's sealing seed (64 hex digits or 32 raw
        /// bytes): every seal and every sealed record is checked.
        #[arg(long, value_name = "FILE")]
        seal_seed: Option<PathBuf>,
    },
    /// Print every record as one JSON object per line.
    Export {
        /// The log directory.
        dir: PathBuf,
        /// The output format.
        #[arg(long, value_enum)]
        format: Format,
        /// A directory holding archived segments (repeatable).
        #[arg(long, value_name = "DIR")]
        archive: Vec<PathBuf>,
    },
    /// Print the records that match every filter given.
    Query {
        /// The log directory.
        dir: PathBuf,
        /// The user id of the actor.
        #[arg(long, value_name = "USER")]
        actor: Option<String>,
        /// The patient reference.
        #[arg(long, value_name = "REF")]
        patient: Option<String>,
        /// The event type.
        #[arg(long, value_name = "TYPE")]
        event: Option<String>,
        /// Records at or after this time (RFC 3339 UTC or milliseconds).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        from: Option<Timestamp>,
        /// Records at or before this time (RFC 3339 UTC or milliseconds).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        to: Option<Timestamp>,
        /// A directory holding archived segments (repeatable).
        #[arg(long, value_name = "DIR")]
        archive: Vec<PathBuf>,
    },
    /// Rebuild the query index from the log.
    Reindex {
        /// The log directory.
        dir: PathBuf,
        /// A directory holding archived segments (repeatable).
        #[arg(long, value_name = "DIR")]
        archive: Vec<PathBuf>,
    },
    /// Print alerts for suspicious patterns, one JSON object per line.
    Monitor {
        /// The log directory.
        dir: PathBuf,
        /// Alert after this many failed logins in the window.
        #[arg(long, value_name = "N")]
        failed_logins: Option<u32>,
        /// The failed-login window in minutes.
        #[arg(long, value_name = "M")]
        window_minutes: Option<u32>,
        /// Alert when one user touches this many patients.
        #[arg(long, value_name = "N")]
        many_patients: Option<u32>,
        /// Working hours in UTC, HH:MM-HH:MM.
        #[arg(long, value_name = "HH:MM-HH:MM", value_parser = parse_hours)]
        hours: Option<WorkingHours>,
        /// A directory holding archived segments (repeatable).
        #[arg(long, value_name = "DIR")]
        archive: Vec<PathBuf>,
    },
    /// Print the last checkpoint as JSON, to keep elsewhere.
    Head {
        /// The log directory.
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// One JSON object per line.
    Jsonl,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).ok_or_else(|| "not an RFC 3339 UTC time or milliseconds".to_owned())
}

fn parse_hours(s: &str) -> Result<WorkingHours, String> {
    let bad = || "expected HH:MM-HH:MM (UTC)".to_owned();
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let minute = |t: &str| -> Option<u16> {
        let (h, m) = t.split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60).then_some(h * 60 + m)
    };
    Ok(WorkingHours {
        start_minute: minute(a).ok_or_else(bad)?,
        end_minute: minute(b).ok_or_else(bad)?,
        utc_offset_minutes: 0,
        weekdays_only: false,
    })
}

/// Why a command stopped: a usage error (exit 2) or a failure (exit 1).
enum Failure {
    Usage(String),
    Failed(String),
}

impl From<carevox_audit::Error> for Failure {
    fn from(e: carevox_audit::Error) -> Self {
        Failure::Failed(e.to_string())
    }
}

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure::Failed(e.to_string())
}

fn load_key(arg: &str) -> Result<VerifyingKey, Failure> {
    if let Ok(k) = VerifyingKey::from_hex(arg) {
        return Ok(k);
    }
    let bytes = std::fs::read(arg)
        .map_err(|e| Failure::Usage(format!("--key: neither 64 hex digits nor a key file: {e}")))?;
    if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(VerifyingKey::from_bytes(raw));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::Usage("--key: the file is neither hex nor 32 bytes".into()))?;
    VerifyingKey::from_hex(&text).map_err(|e| Failure::Usage(format!("--key: {e}")))
}

/// A progress bar on a terminal; nothing when stderr is piped.
fn progress_bar(what: &'static str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
        .map(|s| s.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_message(what);
    Some(bar)
}

/// The sealing seed from a file of 64 hex digits or 32 raw bytes (a file,
/// never an argument: arguments are visible to other users).
fn load_seed(path: &Path) -> Result<SealSeed, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
    if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(SealSeed::from_bytes(raw));
    }
    let hex = data_encoding::HEXLOWER_PERMISSIVE
        .decode(bytes.trim_ascii())
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
        .ok_or_else(|| Failure::Usage("--seal-seed: expected 64 hex digits or 32 bytes".into()))?;
    Ok(SealSeed::from_bytes(hex))
}

fn verify(
    dir: &Path,
    key: &str,
    archive: Vec<PathBuf>,
    trusted: Option<PathBuf>,
    seal_seed: Option<PathBuf>,
) -> Result<ExitCode, Failure> {
    let key = load_key(key)?;
    let seal_seed = seal_seed.as_deref().map(load_seed).transpose()?;
    let trusted = match trusted {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
            Some(
                serde_json::from_str::<Checkpoint>(&text)
                    .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?,
            )
        }
    };
    let bar = progress_bar("verifying");
    let mut progress = |p: Progress| {
        if let Some(bar) = &bar {
            bar.set_length(p.total_bytes);
            bar.set_position(p.bytes);
        }
    };
    let report = verify_log(
        dir,
        &key,
        VerifyOptions {
            archive_dirs: archive,
            trusted,
            progress: Some(&mut progress),
            seal_seed,
        },
    )?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if let Some((path, off)) = &report.torn_tail {
        eprintln!(
            "note: unacknowledged write cut short at the end of {} (byte {off}); \
             opening the log cuts it and records the cut",
            path.display()
        );
    }
    match &report.damage {
        None => {
            println!(
                "ok: {} records from {} in {} segments; {} checkpoints ({} matched, {} signature only); root {}",
                report.records,
                report.first_seq,
                report.segments,
                report.checkpoints,
                report.checkpoints_matched,
                report.checkpoints_signature_only,
                data_encoding::HEXLOWER.encode(&report.root)
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(d) => {
            println!("DAMAGED: {d}");
            if let Some(seq) = d.seq {
                println!("first bad record: {seq}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

#[derive(serde::Serialize)]
struct Line<'a> {
    seq: u64,
    #[serde(flatten)]
    record: &'a Record,
}

fn io_error(e: std::io::Error) -> carevox_audit::Error {
    carevox_audit::Error::Io {
        path: "stdout".into(),
        source: e,
    }
}

fn write_json(out: &mut impl Write, value: &impl serde::Serialize) -> carevox_audit::Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(|e| io_error(e.into()))?;
    out.write_all(b"\n").map_err(io_error)
}

fn export(dir: &Path, archive: &[PathBuf]) -> Result<ExitCode, Failure> {
    let bar = progress_bar("exporting");
    if let Some(bar) = &bar {
        let total = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        bar.set_length(total);
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut last = (0u64, 0u64);
    for_each_record(dir, archive, |seq, record, loc| {
        if let Some(bar) = &bar {
            if loc.segment != last.0 {
                last = (loc.segment, bar.position().saturating_add(last.1));
            }
            bar.set_position(last.1.saturating_add(loc.offset));
        }
        write_json(&mut out, &Line { seq, record })
    })?;
    out.flush().map_err(failed)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    Ok(ExitCode::SUCCESS)
}

fn query(dir: &Path, archive: &[PathBuf], q: &Query) -> Result<ExitCode, Failure> {
    let (index, rebuilt) = Index::open_current(dir, archive)?;
    if rebuilt {
        eprintln!("index rebuilt from the log ({} records)", index.len());
    }
    let hits = index.query(dir, archive, q)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (seq, record) in &hits {
        write_json(&mut out, &Line { seq: *seq, record })?;
    }
    out.flush().map_err(failed)?;
    eprintln!("{} matching records", hits.len());
    Ok(ExitCode::SUCCESS)
}

fn monitor(dir: &Path, archive: &[PathBuf], cfg: MonitorConfig) -> Result<ExitCode, Failure> {
    let mut m = Monitor::new(cfg);
    let mut alerts = Vec::new();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut count = 0usize;
    for_each_record(dir, archive, |seq, record, _| {
        alerts.clear();
        m.observe(seq, record, &mut alerts);
        for a in &alerts {
            count += 1;
            write_json(&mut out, a)?;
        }
        Ok(())
    })?;
    out.flush().map_err(failed)?;
    eprintln!("{count} alerts");
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Verify {
            dir,
            key,
            archive,
            trusted,
            seal_seed,
        } => verify(&dir, &key, archive, trusted, seal_seed),
        Command::Export {
            dir,
            format: Format::Jsonl,
            archive,
        } => export(&dir, &archive),
        Command::Query {
            dir,
            actor,
            patient,
            event,
            from,
            to,
            archive,
        } => {
            let q = Query {
                actor: actor.map(Pii::new),
                patient: patient.map(Pii::new),
                event,
                from,
                to,
            };
            query(&dir, &archive, &q)
        }
        Command::Reindex { dir, archive } => {
            let index = Index::build(&dir, &archive)?;
            index.write(&dir)?;
            println!("indexed {} records", index.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Monitor {
            dir,
            failed_logins,
            window_minutes,
            many_patients,
            hours,
            archive,
        } => {
            let mut cfg = MonitorConfig::default();
            if let Some(n) = failed_logins {
                cfg.failed_logins = n;
            }
            if let Some(m) = window_minutes {
                cfg.failed_login_window_ms = u64::from(m) * 60_000;
            }
            if let Some(n) = many_patients {
                cfg.many_patients = n;
            }
            if hours.is_some() {
                cfg.working_hours = hours;
            }
            monitor(&dir, &archive, cfg)
        }
        Command::Head { dir } => {
            let scan = scan_checkpoints(&dir.join(CHECKPOINT_FILE))?;
            let (cp, _) = scan
                .checkpoints
                .last()
                .ok_or_else(|| failed("the log has no checkpoint"))?;
            println!("{}", serde_json::to_string(cp).map_err(failed)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    // clap prints --help and --version (exit 0) and usage errors (exit 2).
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
