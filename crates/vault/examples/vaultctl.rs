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
//! memory, whatever their size.

// A command-line tool: it reads the clock and the system RNG, and prints.
#![allow(clippy::disallowed_methods, clippy::print_stdout, clippy::print_stderr)]

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use carevox_vault::{FsBackend, KeyProvider, LocalKeyFile, Metadata, Vault};
use ring::rand::SystemRandom;

const USAGE: &str = "usage: vaultctl DIR <command>
  put ID FILE [--type MIME] [--retain-days N] [--label KEY=VALUE]...
  get ID [OUT] [--range OFFSET LEN]      (OUT defaults to stdout)
  list
  rotate                                 (new key version, rewrap everything, retire the old)
  shred ID
  delete ID
  purge [--now UNIX_SECONDS]
  gc                                     (remove payloads whose key was shredded)";

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn run(args: &[String]) -> Res<()> {
    let rng = SystemRandom::new();
    let (Some(dir), Some(cmd)) = (args.first(), args.get(1)) else {
        return Err(USAGE.into());
    };
    let rest = args.get(2..).unwrap_or_default();
    let (keys, vault) = open(Path::new(dir))?;
    match cmd.as_str() {
        "put" => {
            let (Some(id), Some(file)) = (rest.first(), rest.get(1)) else {
                return Err(USAGE.into());
            };
            let days: u64 = flag(rest, "--retain-days").unwrap_or("2190").parse()?;
            let created = now();
            let mut meta = Metadata::new(
                id,
                flag(rest, "--type").unwrap_or("application/octet-stream"),
                created,
                created + days * 86_400,
            );
            for (i, a) in rest.iter().enumerate() {
                if a == "--label" {
                    let kv = rest.get(i + 1).ok_or(USAGE)?;
                    let (k, v) = kv.split_once('=').ok_or("a label is KEY=VALUE")?;
                    meta = meta.label(k, v);
                }
            }
            let mut w = vault.writer(&rng, meta)?;
            io::copy(
                &mut BufReader::with_capacity(1 << 16, File::open(file)?),
                &mut w,
            )?;
            let info = w.finish()?;
            println!(
                "stored {} ({} bytes, key version {})",
                info.id, info.len, info.kek_version
            );
        }
        "get" => {
            let id = rest.first().ok_or(USAGE)?;
            let out_name = rest.get(1).filter(|a| !a.starts_with("--"));
            let mut out: Box<dyn Write> = match out_name {
                Some(p) => Box::new(BufWriter::new(File::create(p)?)),
                None => Box::new(io::stdout().lock()),
            };
            let mut reader = vault.open(id)?;
            if let Some(i) = rest.iter().position(|a| a == "--range") {
                let offset: u64 = rest.get(i + 1).ok_or(USAGE)?.parse()?;
                let len: u64 = rest.get(i + 2).ok_or(USAGE)?.parse()?;
                reader.seek(SeekFrom::Start(offset))?;
                io::copy(&mut reader.take(len), &mut out)?;
            } else {
                io::copy(&mut reader, &mut out)?;
            }
            out.flush()?;
        }
        "list" => {
            for o in vault.list()? {
                let m = vault.metadata(&o.id)?;
                println!(
                    "{}\t{}\tkey v{}\tretain until {}",
                    o.id, m.content_type, o.kek_version, m.retention_until
                );
            }
        }
        "rotate" => {
            let old = keys.current_version()?;
            let new = keys.add_version(&rng)?;
            let report = vault.rotate(&rng, &mut |p| {
                eprint!("\rrewrapped {}/{}", p.done, p.total);
            })?;
            eprintln!();
            println!(
                "key version {old} -> {new}: {} rewrapped, {} failed",
                report.rewrapped,
                report.failed.len()
            );
            for (v, retired) in keys.versions() {
                if !retired && v != new {
                    match vault.retire_kek(v) {
                        Ok(()) => println!("retired key version {v}"),
                        Err(e) => println!("kept key version {v}: {e}"),
                    }
                }
            }
        }
        "shred" => {
            vault.shred(rest.first().ok_or(USAGE)?)?;
            println!("shredded");
        }
        "delete" => {
            vault.delete(rest.first().ok_or(USAGE)?)?;
            println!("deleted");
        }
        "purge" => {
            let at = match flag(rest, "--now") {
                Some(n) => n.parse()?,
                None => now(),
            };
            let report = vault.purge_expired(at)?;
            for id in &report.purged {
                println!("purged {id}");
            }
            for (id, e) in &report.failed {
                println!("not purged {id}: {e}");
            }
            println!("{} purged, {} kept", report.purged.len(), report.kept);
        }
        "gc" => {
            for id in vault.collect_garbage()? {
                println!("removed payload {id}");
            }
        }
        _ => return Err(USAGE.into()),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vaultctl: {e}");
            ExitCode::FAILURE
        }
    }
}
