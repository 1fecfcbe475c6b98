//! A small command-line tool over a vault directory: put, get (whole or a
//! byte range), list, rotate, shred, delete, purge and garbage-collect objects.
//!
//! ```sh
//! cargo run -p carevox-vault --example vaultctl -- /tmp/v put vm-1 message.wav --label call-id=abc
//! cargo run -p carevox-vault --example vaultctl -- /tmp/v get vm-1 out.wav
//! cargo run -p carevox-vault --example vaultctl -- /tmp/v get vm-1 part.wav --range 4096 8192
//! cargo run -p carevox-vault --example vaultctl -- /tmp/v list
//! cargo run -p carevox-vault --example vaultctl -- /tmp/v rotate
//! cargo run -p carevox-vault --example vaultctl -- /tmp/v shred vm-1
//! cargo run -p carevox-vault --example vaultctl -- /tmp/v purge
//! cargo run -p carevox-vault --example vaultctl -- /tmp/v gc
//! ```
//!
//! The directory holds `kek` (a local key file, created on first use) and the
//! vault itself under `vault/`. Files stream through the vault in constant
//! memory, whatever their size. `get` writes to a temporary file beside its
//! output (mode 0600) and renames it into place only once the last segment
//! has been authenticated; on any failure the temporary file is removed and
//! an existing output file is left as it was.
//!
//! Exit codes: 0 success, 1 failure (an integrity failure, a missing object,
//! an I/O error), 2 usage error. Progress bars appear on stderr for `put`,
//! `get` and `rotate` only when stderr is a terminal.

// A command-line tool: it reads the clock and the system RNG, and prints.
#![allow(clippy::disallowed_methods, clippy::print_stdout, clippy::print_stderr)]

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use carevox_vault::{FsBackend, KeyProvider, LocalKeyFile, Metadata, Vault};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ring::rand::SystemRandom;

/// Encrypted storage of recordings and voicemail, from the command line.
#[derive(Debug, Parser)]
#[command(name = "vaultctl", version, about)]
struct Cli {
    /// The vault directory: `kek` (the key file, created on first use) and
    /// `vault/`.
    dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Stores FILE as object ID.
    Put {
        /// The object id: 1 to 128 of A-Z a-z 0-9 . _ - (never PHI).
        id: String,
        /// The file to store.
        file: PathBuf,
        /// MIME type of the content.
        #[arg(long = "type", default_value = "application/octet-stream")]
        content_type: String,
        /// Days to retain the object before `purge` removes it.
        #[arg(long, default_value_t = 2190)]
        retain_days: u64,
        /// A label KEY=VALUE, stored encrypted (repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// Writes object ID to OUT (or to stdout), whole or a byte range.
    Get {
        /// The object id.
        id: String,
        /// The output file; stdout when absent.
        out: Option<PathBuf>,
        /// Only LEN bytes from OFFSET.
        #[arg(long, num_args = 2, value_names = ["OFFSET", "LEN"])]
        range: Option<Vec<u64>>,
    },
    /// Lists the objects with their content type, key version and retention.
    List,
    /// Adds a key version, rewraps every object under it, retires the others.
    Rotate,
    /// Destroys an object's key: its payload becomes undecryptable.
    Shred {
        /// The object id.
        id: String,
    },
    /// Deletes an object (key record and payload).
    Delete {
        /// The object id.
        id: String,
    },
    /// Deletes every object whose retention has passed.
    Purge {
        /// The time to purge at, seconds since the Unix epoch (default: now).
        #[arg(long)]
        now: Option<u64>,
    },
    /// Removes payloads whose key was shredded.
    Gc,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| "a label is KEY=VALUE".to_owned())
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn now() -> Res<u64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
}

fn open(dir: &Path) -> Res<(Arc<LocalKeyFile>, Vault)> {
    std::fs::create_dir_all(dir)?;
    let kek = dir.join("kek");
    let keys = Arc::new(if kek.exists() {
        LocalKeyFile::open(&kek)?
    } else {
        LocalKeyFile::create(&kek, &SystemRandom::new())?
    });
    let provider: Arc<dyn KeyProvider> = keys.clone();
    let vault = Vault::new(Arc::new(FsBackend::open(dir.join("vault"))?), provider);
    Ok((keys, vault))
}

/// A progress bar of `len` units on stderr, or a hidden one when stderr is
/// not a terminal (piped, redirected, under a test).
fn progress(len: u64, bytes: bool) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    let template = if bytes {
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}"
    } else {
        "{bar:40} {pos}/{len} {eta}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style);
    }
    pb
}

/// The temporary file beside `out` that `get` writes before renaming.
fn temp_beside(out: &Path) -> Res<PathBuf> {
    let name = out
        .file_name()
        .ok_or("the output path has no file name")?
        .to_string_lossy();
    let n: u32 = rand_u32()?;
    Ok(out.with_file_name(format!(
        ".{name}.vaultctl-{}-{n:08x}.tmp",
        std::process::id()
    )))
}

fn rand_u32() -> Res<u32> {
    let mut b = [0u8; 4];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut b)
        .map_err(|_| "random number generator failed")?;
    Ok(u32::from_be_bytes(b))
}

/// Copies `len` bytes (or all) of `reader` to `out` through a temporary
/// file beside it, renamed into place only once every byte has been read
/// (and so authenticated); the temporary file is removed on any failure.
fn write_verified(reader: &mut dyn Read, out: &Path, pb: &ProgressBar) -> Res<()> {
    let tmp = temp_beside(out)?;
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(&tmp)?;
    let result = (|| -> Res<()> {
        let mut w = BufWriter::with_capacity(1 << 16, file);
        io::copy(&mut pb.wrap_read(reader), &mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, out)?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn run(cli: Cli) -> Res<()> {
    let rng = SystemRandom::new();
    let (keys, vault) = open(&cli.dir)?;
    match cli.command {
        Command::Put {
            id,
            file,
            content_type,
            retain_days,
            labels,
        } => {
            let created = now()?;
            let until = retain_days
                .checked_mul(86_400)
                .and_then(|s| s.checked_add(created))
                .ok_or("--retain-days is too large")?;
            let mut meta = Metadata::new(id, content_type, created, until);
            for (k, v) in labels {
                meta = meta.label(k, v);
            }
            let input = File::open(&file)?;
            let pb = progress(input.metadata()?.len(), true);
            let mut w = vault.writer(&rng, meta)?;
            io::copy(
                &mut pb.wrap_read(BufReader::with_capacity(1 << 16, input)),
                &mut w,
            )?;
            let info = w.finish()?;
            pb.finish_and_clear();
            println!(
                "stored {} ({} bytes, key version {})",
                info.id, info.len, info.kek_version
            );
        }
        Command::Get { id, out, range } => {
            let mut reader = vault.open(&id)?;
            let total = reader.len();
            let (mut reader, len): (Box<dyn Read>, u64) = match range.as_deref() {
                Some(&[offset, len]) => {
                    reader.seek(SeekFrom::Start(offset))?;
                    let len = len.min(total.saturating_sub(offset));
                    (Box::new(reader.take(len)), len)
                }
                Some(_) => return Err("--range takes OFFSET and LEN".into()),
                None => (Box::new(reader), total),
            };
            match out {
                Some(path) => {
                    let pb = progress(len, true);
                    write_verified(&mut reader, &path, &pb)?;
                    pb.finish_and_clear();
                }
                None => {
                    let mut stdout = io::stdout().lock();
                    io::copy(&mut reader, &mut stdout)?;
                    stdout.flush()?;
                }
            }
        }
        Command::List => {
            for o in vault.list()? {
                let m = vault.metadata(&o.id)?;
                println!(
                    "{}\t{}\tkey v{}\tretain until {}",
                    o.id, m.content_type, o.kek_version, m.retention_until
                );
            }
        }
        Command::Rotate => {
            let old = keys.current_version()?;
            let new = keys.add_version(&rng)?;
            let pb = progress(0, false);
            let report = vault.rotate(&rng, &mut |p| {
                pb.set_length(p.total as u64);
                pb.set_position(p.done as u64);
            })?;
            pb.finish_and_clear();
            println!(
                "key version {old} -> {new}: {} rewrapped, {} failed",
                report.rewrapped,
                report.failed.len()
            );
            for (id, e) in &report.failed {
                println!("not rewrapped {id}: {e}");
            }
            for (v, retired) in keys.versions() {
                if !retired && v != new {
                    match vault.retire_kek(v) {
                        Ok(()) => println!("retired key version {v}"),
                        Err(e) => println!("kept key version {v}: {e}"),
                    }
                }
            }
            if !report.failed.is_empty() {
                return Err("some objects were not rewrapped".into());
            }
        }
        Command::Shred { id } => {
            vault.shred(&id)?;
            println!("shredded");
        }
        Command::Delete { id } => {
            vault.delete(&id)?;
            println!("deleted");
        }
        Command::Purge { now: at } => {
            let at = match at {
                Some(n) => n,
                None => now()?,
            };
            let report = vault.purge_expired(at)?;
            for id in &report.purged {
                println!("purged {id}");
            }
            for (id, e) in &report.failed {
                println!("not purged {id}: {e}");
            }
            println!("{} purged, {} kept", report.purged.len(), report.kept);
            if !report.failed.is_empty() {
                return Err("some objects could not be checked".into());
            }
        }
        Command::Gc => {
            for id in vault.collect_garbage()? {
                println!("removed payload {id}");
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version exit 0; a usage error exits 2.
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vaultctl: {e}");
            ExitCode::FAILURE
        }
    }
}
