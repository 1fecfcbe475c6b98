//! `carevox-audit`: verify, export and query a carevox audit log.
//!
//! ```text
//! carevox-audit verify DIR --key PUBKEY [--archive DIR]... [--trusted CHECKPOINT.json]
//! carevox-audit export DIR --format jsonl [--archive DIR]...
//! carevox-audit query DIR [--actor X] [--patient P] [--event E] [--from T] [--to T] [--archive DIR]...
//! carevox-audit reindex DIR [--archive DIR]...
//! carevox-audit monitor DIR [--failed-logins N] [--window-minutes M] [--many-patients N] [--hours HH:MM-HH:MM]
//! carevox-audit head DIR
//! ```
//!
//! Exit status: 0 when all is well, 1 when verification found damage, 2 on
//! a usage or I/O error.

// A command-line tool: it reports on the terminal and exits with a status.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use carevox_audit::index::{Index, Query};
use carevox_audit::monitor::{Monitor, MonitorConfig, WorkingHours};
use carevox_audit::store::{CHECKPOINT_FILE, for_each_record, scan_checkpoints};
use carevox_audit::{
    Checkpoint, Progress, Record, Timestamp, VerifyOptions, VerifyingKey, verify_log,
};

const USAGE: &str = "\
usage:
  carevox-audit verify DIR --key PUBKEY [--archive DIR]... [--trusted CHECKPOINT.json]
  carevox-audit export DIR --format jsonl [--archive DIR]...
  carevox-audit query DIR [--actor USER] [--patient REF] [--event TYPE]
                          [--from TIME] [--to TIME] [--archive DIR]...
  carevox-audit reindex DIR [--archive DIR]...
  carevox-audit monitor DIR [--failed-logins N] [--window-minutes M]
                            [--many-patients N] [--hours HH:MM-HH:MM]
  carevox-audit head DIR

PUBKEY is 64 hex digits, or a file holding them or the 32 raw key bytes.
TIME is RFC 3339 in UTC (2026-03-01T08:00:00Z) or milliseconds since 1970.
";

struct Args {
    command: String,
    dir: PathBuf,
    options: Vec<(String, String)>,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let mut it = std::env::args().skip(1);
        let command = it.next().ok_or("missing command")?;
        if command == "-h" || command == "--help" {
            return Err(String::new());
        }
        let dir = PathBuf::from(it.next().ok_or("missing DIR")?);
        let mut options = Vec::new();
        while let Some(flag) = it.next() {
            let name = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument `{flag}`"))?
                .to_owned();
            let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            options.push((name, value));
        }
        Ok(Args {
            command,
            dir,
            options,
        })
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<PathBuf> {
        self.options
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| PathBuf::from(v))
            .collect()
    }

    fn check(&self, allowed: &[&str]) -> Result<(), String> {
        match self
            .options
            .iter()
            .find(|(n, _)| !allowed.contains(&n.as_str()))
        {
            Some((n, _)) => Err(format!("unknown option --{n} for `{}`", self.command)),
            None => Ok(()),
        }
    }
}

fn load_key(arg: &str) -> Result<VerifyingKey, String> {
    if let Ok(k) = VerifyingKey::from_hex(arg) {
        return Ok(k);
    }
    let bytes = std::fs::read(arg).map_err(|e| format!("cannot read key file {arg}: {e}"))?;
    if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(VerifyingKey::from_bytes(raw));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| "key file is neither hex nor 32 bytes".to_owned())?;
    VerifyingKey::from_hex(&text).map_err(|e| e.to_string())
}

fn parse_time(s: Option<&str>, what: &str) -> Result<Option<Timestamp>, String> {
    s.map(|s| {
        Timestamp::parse(s)
            .ok_or_else(|| format!("--{what}: not an RFC 3339 UTC time or milliseconds"))
    })
    .transpose()
}

fn verify(args: &Args) -> Result<ExitCode, String> {
    args.check(&["key", "archive", "trusted"])?;
    let key = load_key(args.one("key").ok_or("verify needs --key PUBKEY")?)?;
    let trusted = match args.one("trusted") {
        None => None,
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            Some(serde_json::from_str::<Checkpoint>(&text).map_err(|e| format!("{path}: {e}"))?)
        }
    };
    let mut shown = false;
    let mut progress = |p: Progress| {
        // Only large logs get a progress line.
        if p.total_bytes >= 8 << 20 {
            let pct = p.bytes.saturating_mul(100) / p.total_bytes.max(1);
            eprint!("\rverifying: {} records, {pct}%", p.records);
            shown = true;
        }
    };
    let report = verify_log(
        &args.dir,
        &key,
        VerifyOptions {
            archive_dirs: args.all("archive"),
            trusted,
            progress: Some(&mut progress),
        },
    )
    .map_err(|e| e.to_string())?;
    if shown {
        eprintln!();
    }
    if let Some((path, off)) = &report.torn_tail {
        eprintln!(
            "note: unfinished write at the end of {} (byte {off}); opening the log removes it",
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
                carevox_audit::hex_encode(&report.root)
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

fn export(args: &Args) -> Result<ExitCode, String> {
    args.check(&["format", "archive"])?;
    match args.one("format") {
        Some("jsonl") => {}
        Some(f) => return Err(format!("unknown format `{f}` (jsonl is supported)")),
        None => return Err("export needs --format jsonl".into()),
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for_each_record(&args.dir, &args.all("archive"), |seq, record, _| {
        serde_json::to_writer(&mut out, &Line { seq, record })
            .map_err(|_| carevox_audit::Error::Index("export: cannot write JSON"))?;
        out.write_all(b"\n").map_err(|e| carevox_audit::Error::Io {
            path: "stdout".into(),
            source: e,
        })
    })
    .map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

fn query(args: &Args) -> Result<ExitCode, String> {
    args.check(&["actor", "patient", "event", "from", "to", "archive"])?;
    let q = Query {
        actor: args.one("actor").map(str::to_owned),
        patient: args.one("patient").map(str::to_owned),
        event: args.one("event").map(str::to_owned),
        from: parse_time(args.one("from"), "from")?,
        to: parse_time(args.one("to"), "to")?,
    };
    let archives = args.all("archive");
    let (index, rebuilt) = Index::open_current(&args.dir, &archives).map_err(|e| e.to_string())?;
    if rebuilt {
        eprintln!("index rebuilt from the log ({} records)", index.len());
    }
    let hits = index
        .query(&args.dir, &archives, &q)
        .map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for (seq, record) in &hits {
        let line = serde_json::to_string(&Line { seq: *seq, record }).map_err(|e| e.to_string())?;
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    eprintln!("{} matching records", hits.len());
    Ok(ExitCode::SUCCESS)
}

fn reindex(args: &Args) -> Result<ExitCode, String> {
    args.check(&["archive"])?;
    let index = Index::build(&args.dir, &args.all("archive")).map_err(|e| e.to_string())?;
    index.write(&args.dir).map_err(|e| e.to_string())?;
    println!("indexed {} records", index.len());
    Ok(ExitCode::SUCCESS)
}

fn parse_hours(s: &str) -> Option<WorkingHours> {
    let (a, b) = s.split_once('-')?;
    let minute = |t: &str| -> Option<u16> {
        let (h, m) = t.split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60).then_some(h * 60 + m)
    };
    Some(WorkingHours {
        start_minute: minute(a)?,
        end_minute: minute(b)?,
        utc_offset_minutes: 0,
        weekdays_only: false,
    })
}

fn monitor(args: &Args) -> Result<ExitCode, String> {
    args.check(&[
        "failed-logins",
        "window-minutes",
        "many-patients",
        "hours",
        "archive",
    ])?;
    let mut cfg = MonitorConfig::default();
    let num = |name: &str| -> Result<Option<u32>, String> {
        args.one(name)
            .map(|v| v.parse().map_err(|_| format!("--{name}: not a number")))
            .transpose()
    };
    if let Some(n) = num("failed-logins")? {
        cfg.failed_logins = n;
    }
    if let Some(m) = num("window-minutes")? {
        cfg.failed_login_window_ms = u64::from(m) * 60_000;
    }
    if let Some(n) = num("many-patients")? {
        cfg.many_patients = n;
    }
    if let Some(h) = args.one("hours") {
        cfg.working_hours = Some(parse_hours(h).ok_or("--hours: expected HH:MM-HH:MM (UTC)")?);
    }
    let mut m = Monitor::new(cfg);
    let mut alerts = Vec::new();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut count = 0usize;
    for_each_record(&args.dir, &args.all("archive"), |seq, record, _| {
        alerts.clear();
        m.observe(seq, record, &mut alerts);
        for a in &alerts {
            count += 1;
            let line = serde_json::to_string(a)
                .map_err(|_| carevox_audit::Error::Index("monitor: cannot write JSON"))?;
            writeln!(out, "{line}").map_err(|e| carevox_audit::Error::Io {
                path: "stdout".into(),
                source: e,
            })?;
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    eprintln!("{count} alerts");
    Ok(ExitCode::SUCCESS)
}

fn head(args: &Args) -> Result<ExitCode, String> {
    args.check(&[])?;
    let scan = scan_checkpoints(&args.dir.join(CHECKPOINT_FILE)).map_err(|e| e.to_string())?;
    let (cp, _) = scan.checkpoints.last().ok_or("the log has no checkpoint")?;
    println!("{}", serde_json::to_string(cp).map_err(|e| e.to_string())?);
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}\n");
            }
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match args.command.as_str() {
        "verify" => verify(&args),
        "export" => export(&args),
        "query" => query(&args),
        "reindex" => reindex(&args),
        "head" => head(&args),
        "monitor" => monitor(&args),
        other => Err(format!("unknown command `{other}`")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
