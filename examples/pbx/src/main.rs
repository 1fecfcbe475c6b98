//! `carevox-pbx`: the PBX's command line.
//!
//! `carevox-pbx check-config FILE` validates a `pbx.toml` and reads it
//! against the technical safeguards of 45 CFR 164.312. Exit status: 0 when
//! every safeguard is met, 1 when a setting weakens one, 2 for a usage
//! error or a file that cannot be read or is invalid.
//!
//! `carevox-pbx demo` runs the PBX and two softphones in one process and
//! walks a voicemail through every safeguard.
//! `carevox-pbx serve --config FILE` runs the PBX until SIGINT or SIGTERM.
//! `carevox-pbx user-entry NAME --realm REALM` prints the `users.toml`
//! entry of a password read from standard input; with `--voicemail-pin`,
//! the second line is the user's voicemail PIN (4 to 12 digits), stored as
//! its Argon2id hash.
//! `carevox-pbx admin --config FILE COMMAND` runs an admin command through
//! the running server's control socket, reading the admin's name, password
//! and TOTP code from standard input, one a line.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use carevox::audit::{Action, Detail, EventType, Outcome, Record, Timestamp};
use carevox::authz::password::PasswordHasher;
use carevox::redact::Pii;
use carevox::sip::auth::Password;
use carevox_pbx::admin::control::{ControlParts, ControlServer, ControlSettings};
use carevox_pbx::check::check_config;
use carevox_pbx::config::Config;
use carevox_pbx::pin::{PinError, VoicemailPin};
use carevox_pbx::registrar::{Md5Use, Registrar, RegistrarSettings};
use carevox_pbx::server::{Server, ServerParts, ServerSettings};
use carevox_pbx::store::{Store, UsersFile};
use carevox_transport::TlsServerConfig;
use carevox_transport::pki_types::pem::PemObject;
use carevox_transport::pki_types::{CertificateDer, PrivateKeyDer};
use clap::{Parser, Subcommand};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroize;

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
    /// Run the whole PBX in one process on 127.0.0.1 with a fresh data
    /// directory and a test CA: two SDK softphones register, one calls
    /// the other, nobody answers, a voicemail is left; a physician logs in
    /// with password and TOTP and plays it; a receptionist is refused; the
    /// audit log is verified with the public key alone.
    Demo {
        /// Where to keep the data (an empty or missing directory); a fresh
        /// one under the system's temporary directory by default.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run the PBX: SIP over TLS on the configured addresses, until SIGINT
    /// or SIGTERM. The data directory and the vault's master key are
    /// created when missing; users are read from `<data_dir>/users.toml`.
    Serve {
        /// The configuration file (pbx.toml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Run an admin command through the running server's control socket.
    ///
    /// Standard input gives, one a line: the admin's name, password and
    /// current TOTP code (for `enrol-first`, only the new password; for
    /// `user add`, then the new account's first password). Nothing read is
    /// echoed or kept. Exit status: 0 done, 1 refused or failed, 2 usage.
    Admin {
        /// The configuration file (pbx.toml) of the running server.
        #[arg(long)]
        config: PathBuf,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print the `users.toml` entry for NAME with the password read from
    /// the first line of standard input (HA1 values only: the password is
    /// not written anywhere).
    UserEntry {
        /// The user name.
        name: String,
        /// The digest realm (`[server] realm` of the configuration).
        #[arg(long)]
        realm: String,
        /// Also read the user's voicemail PIN (4 to 12 digits) from the
        /// second line of standard input; the entry holds its Argon2id hash.
        #[arg(long)]
        voicemail_pin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Make the first account, accepted only while there is none; prints
    /// its TOTP provisioning URI once. Reads its password from stdin.
    EnrolFirst {
        /// The account name.
        name: String,
        /// Its role in the access policy (e.g. administrator).
        #[arg(long)]
        role: String,
        /// A mailbox (SIP user) whose voicemail, recordings and call records it serves (repeatable).
        #[arg(long = "mailbox")]
        mailboxes: Vec<String>,
    },
    /// Voicemail: list, export, delete.
    #[command(subcommand)]
    Voicemail(VoicemailCommand),
    /// Call recordings: list, export, delete.
    #[command(subcommand)]
    Recording(RecordingCommand),
    /// Call detail records: list.
    #[command(subcommand)]
    Cdr(CdrCommand),
    /// The audit log: verify, export.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Accounts: add, disable.
    #[command(subcommand)]
    User(UserCommand),
    /// TOTP: reset.
    #[command(subcommand)]
    Totp(TotpCommand),
}

#[derive(Debug, Subcommand)]
enum VoicemailCommand {
    /// The messages the policy lets you list: id, mailbox, time, duration.
    List,
    /// Write a message as a WAV file (created 0600; never replaced).
    Export {
        /// The message id.
        id: String,
        /// The file to create.
        file: PathBuf,
    },
    /// Crypto-shred a message, then remove its ciphertext.
    Delete {
        /// The message id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum RecordingCommand {
    /// The call recordings the policy lets you list: id, caller, callee,
    /// start, duration.
    List,
    /// Write a recording as a WAV file (created 0600; never replaced).
    Export {
        /// The recording id.
        id: String,
        /// The file to create.
        file: PathBuf,
    },
    /// Crypto-shred a recording, then remove its ciphertext.
    Delete {
        /// The recording id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum CdrCommand {
    /// The call detail records the policy lets you read, oldest first:
    /// start (UTC), caller, callee, outcome, seconds talked, who ended it.
    List {
        /// Only calls this SIP user made or received.
        #[arg(long)]
        user: Option<String>,
        /// Only calls that ended at or after this time: a date
        /// (2026-12-05, UTC midnight), an RFC 3339 time
        /// (2026-12-05T09:30:00Z) or Unix seconds.
        #[arg(long, value_parser = parse_time)]
        since: Option<u64>,
        /// Only calls that started before this time (same forms).
        #[arg(long, value_parser = parse_time)]
        until: Option<u64>,
        /// At most this many, the newest (1 to 10 000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// A time given on the command line, as Unix seconds.
fn parse_time(text: &str) -> Result<u64, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    let at = if let Ok(t) = text.parse::<jiff::Timestamp>() {
        t
    } else if let Ok(t) = format!("{text}T00:00:00Z").parse::<jiff::Timestamp>() {
        t
    } else {
        return Err("not a date (2026-12-05), an RFC 3339 time or Unix seconds".into());
    };
    u64::try_from(at.as_second()).map_err(|_| "a time before 1970".to_owned())
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Sign a checkpoint and verify the log with the public key alone.
    Verify,
    /// The monitoring rules' alerts, replayed over the whole log: kind,
    /// time (UTC), who, detail, record number.
    Alerts {
        /// Only alerts raised at or after this time: a date (2026-12-05),
        /// an RFC 3339 time or Unix seconds.
        #[arg(long, value_parser = parse_time)]
        since: Option<u64>,
    },
    /// Write every record as one JSON object per line (created 0600).
    Export {
        /// The file to create.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add an account; prints its TOTP provisioning URI once. Its first
    /// password is the fourth line of stdin.
    Add {
        /// The account name.
        name: String,
        /// Its role in the access policy.
        #[arg(long)]
        role: String,
        /// A mailbox whose voicemail, recordings and call records it serves (repeatable).
        #[arg(long = "mailbox")]
        mailboxes: Vec<String>,
    },
    /// Disable an account and end its sessions.
    Disable {
        /// The account name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum TotpCommand {
    /// Give an account a new TOTP secret (the old one is shredded); prints
    /// the provisioning URI once.
    Reset {
        /// The account name.
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Demo { dir } => demo(dir.as_deref()),
        Command::UserEntry {
            name,
            realm,
            voicemail_pin,
        } => user_entry(&name, &realm, voicemail_pin),
        Command::Admin { config, command } => console::run(&config, command),
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

mod console;

fn user_entry(name: &str, realm: &str, with_pin: bool) -> ExitCode {
    let stdin = std::io::stdin();
    let mut line = String::new();
    if stdin.read_line(&mut line).is_err() {
        line.zeroize();
        eprintln!("carevox-pbx: no password on standard input");
        return ExitCode::from(2);
    }
    let typed = line.trim_end_matches(['\r', '\n']);
    if typed.is_empty() {
        line.zeroize();
        eprintln!("carevox-pbx: the password is empty");
        return ExitCode::from(2);
    }
    let password = Password::new(typed);
    line.zeroize();
    let pin = if with_pin {
        let read = stdin.read_line(&mut line);
        let typed = line.trim_end_matches(['\r', '\n']);
        #[allow(clippy::disallowed_methods)] // the program's own random source
        let rng = SystemRandom::new();
        let hashed = match read {
            Ok(_) if !typed.is_empty() => {
                VoicemailPin::hash(typed, &PasswordHasher::default(), &rng)
            }
            _ => {
                line.zeroize();
                eprintln!("carevox-pbx: no voicemail PIN on the second line of standard input");
                return ExitCode::from(2);
            }
        };
        line.zeroize();
        match hashed {
            Ok(pin) => Some(pin),
            Err(e @ PinError::Invalid) => {
                eprintln!("carevox-pbx: {e}");
                return ExitCode::from(2);
            }
            Err(e) => {
                eprintln!("carevox-pbx: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    match UsersFile::entry_with_pin(name, realm, &password, Md5Use::Refused, pin.as_ref()) {
        Ok(entry) => {
            print!("{entry}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("carevox-pbx: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("carevox-pbx: {e}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("carevox-pbx: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carevox-pbx: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    #[allow(clippy::disallowed_methods)] // the program's own random source
    let rng: Arc<dyn SecureRandom + Send + Sync> = Arc::new(SystemRandom::new());
    let now = unix_now();
    let store = Store::open(&config, &*rng, now)?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&config.tls.certificate)?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&config.tls.private_key)?;
    let tls = TlsServerConfig::new(chain, key)?;
    let registrar = Registrar::new(
        RegistrarSettings::from_config(&config, "carevox-pbx"),
        store.nonce_secret.expose(),
    )?;
    let settings = ServerSettings::from_config(&config)?;
    // The configuration in force is the first record of the run.
    let mut loaded = Record::new(
        EventType::ConfigurationChange,
        Action::Execute,
        Outcome::Success,
        Timestamp(now.saturating_mul(1000)),
        "carevox-pbx",
        "carevox-pbx",
    );
    loaded.details.push(Detail {
        key: "config".into(),
        value: Pii::new("loaded".to_owned()),
    });
    for d in config.dangerous_settings() {
        loaded.details.push(Detail {
            key: "dangerous".into(),
            value: Pii::new(d.key.to_owned()),
        });
    }
    store.sink.append(&loaded)?;
    let users = store.users.len();
    let control = ControlServer::start(
        ControlSettings::from_config(&config),
        ControlParts::from_store(&store, rng.clone()),
    )?;
    let server = Server::start(
        settings,
        ServerParts {
            registrar,
            users: Arc::new(store.users),
            vault: store.vault.clone(),
            audit: store.sink.clone(),
            rng,
            tls,
        },
    )
    .await?;
    let purge = carevox_pbx::retention::spawn_purge(
        store.vault.clone(),
        carevox_pbx::retention::PURGE_EVERY,
    );
    println!(
        "carevox-pbx: serving SIP over TLS on {} for {users} users",
        server.addr()
    );
    println!("carevox-pbx: admin console on {}", control.path().display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    println!("carevox-pbx: stopping");
    purge.abort();
    control.shutdown();
    server.shutdown().await;
    store.audit.sync()?;
    Ok(())
}

fn unix_now() -> u64 {
    #[allow(clippy::disallowed_methods)] // the command's own clock
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn demo(dir: Option<&Path>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("carevox-pbx: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    #[allow(clippy::disallowed_methods)] // the program's own random source
    let rng: Arc<dyn SecureRandom + Send + Sync> = Arc::new(SystemRandom::new());
    match runtime.block_on(carevox_pbx::demo::run(dir, rng)) {
        Ok(report) => {
            let ok = report.audit_intact
                && report.tone_share > 0.8
                && report.physician.as_ref().is_some_and(|a| a.is_allowed())
                && report
                    .receptionist
                    .as_ref()
                    .is_some_and(|a| !a.is_allowed());
            if ok {
                ExitCode::SUCCESS
            } else {
                eprintln!("carevox-pbx: the demo ran but a check failed");
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("carevox-pbx demo: {e}");
            ExitCode::FAILURE
        }
    }
}
