//! `carevox-pbx admin`: the admin console's command line, a client of the
//! running server's control socket.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use carevox_pbx::admin::client::{Client, ClientError};
use carevox_pbx::admin::control::socket_path;
use carevox_pbx::admin::proto::{CallRecordQuery, SecretText};
use carevox_pbx::cdr::{CallRecord, Disposition};
use carevox_pbx::config::Config;
use zeroize::Zeroize;

use crate::{
    AdminCommand, AuditCommand, CdrCommand, RecordingCommand, TotpCommand, UserCommand,
    VoicemailCommand,
};

/// Turns the terminal's echo off while secrets are read from it, and back
/// on when dropped. Does nothing when standard input is not a terminal.
struct NoEcho(bool);

impl NoEcho {
    fn new() -> NoEcho {
        let tty = std::io::stdin().is_terminal();
        if tty {
            eprintln!("(name, password and TOTP code, one a line; not echoed)");
            let _ = std::process::Command::new("stty")
                .arg("-echo")
                .stdin(std::process::Stdio::inherit())
                .status();
        }
        NoEcho(tty)
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if self.0 {
            let _ = std::process::Command::new("stty")
                .arg("echo")
                .stdin(std::process::Stdio::inherit())
                .status();
        }
    }
}

/// One line of standard input, without its line ending; the buffer it was
/// read into is zeroized.
fn line(input: &mut impl BufRead, what: &str) -> Result<SecretText, String> {
    let mut buf = String::new();
    let r = input.read_line(&mut buf);
    let text = buf.trim_end_matches(['\r', '\n']).to_owned();
    buf.zeroize();
    match r {
        Ok(n) if n > 0 && !text.is_empty() => Ok(SecretText::new(text)),
        _ => Err(format!("no {what} on standard input")),
    }
}

struct Credentials {
    name: String,
    password: SecretText,
    totp: SecretText,
}

fn credentials(input: &mut impl BufRead) -> Result<Credentials, String> {
    let name = line(input, "name")?.expose().to_owned();
    let password = line(input, "password")?;
    let totp = line(input, "TOTP code")?;
    Ok(Credentials {
        name,
        password,
        totp,
    })
}

fn failed(e: &ClientError) -> ExitCode {
    eprintln!("carevox-pbx admin: {e}");
    ExitCode::FAILURE
}

/// Runs `command` against the server of the configuration at `config`.
pub(crate) fn run(config: &Path, command: AdminCommand) -> ExitCode {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("carevox-pbx: {e}");
            return ExitCode::from(2);
        }
    };
    let socket = socket_path(&config);
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let echo = NoEcho::new();
    if let AdminCommand::EnrolFirst {
        name,
        role,
        mailboxes,
    } = command
    {
        let password = match line(&mut input, "password") {
            Ok(p) => p,
            Err(e) => {
                eprintln!("carevox-pbx admin: {e}");
                return ExitCode::from(2);
            }
        };
        drop(echo);
        let result = Client::connect(&socket)
            .and_then(|mut c| c.enrol_first(&name, &role, password, mailboxes));
        return match result {
            Ok(uri) => {
                println!("account {name} enrolled with role {role}");
                println!("add this to an authenticator app now; it is not shown again:");
                println!("{}", uri.expose());
                ExitCode::SUCCESS
            }
            Err(e) => failed(&e),
        };
    }
    let creds = match credentials(&mut input) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("carevox-pbx admin: {e}");
            return ExitCode::from(2);
        }
    };
    let new_password = if matches!(command, AdminCommand::User(UserCommand::Add { .. })) {
        match line(&mut input, "password for the new account") {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("carevox-pbx admin: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    drop(echo);
    let mut client = match Client::connect(&socket) {
        Ok(c) => c,
        Err(e) => return failed(&e),
    };
    if let Err(e) = client.login(&creds.name, creds.password, creds.totp) {
        return failed(&e);
    }
    let result = command_on(&mut client, command, new_password);
    let _ = client.logoff();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(&e),
    }
}

fn command_on(
    client: &mut Client,
    command: AdminCommand,
    new_password: Option<SecretText>,
) -> Result<(), ClientError> {
    match command {
        AdminCommand::EnrolFirst { .. } => Ok(()),
        AdminCommand::Voicemail(VoicemailCommand::List) => {
            let (items, withheld) = client.voicemail_list()?;
            println!(
                "{:<40} {:<20} {:<20} {:>9}",
                "id", "mailbox", "recorded (UTC)", "seconds"
            );
            for v in &items {
                println!(
                    "{:<40} {:<20} {:<20} {:>9.1}",
                    v.id,
                    v.owner.expose(),
                    utc(v.created_at),
                    seconds(v.duration_ms)
                );
            }
            listed(items.len(), withheld);
            Ok(())
        }
        AdminCommand::Recording(RecordingCommand::List) => {
            let (items, withheld) = client.recording_list()?;
            println!(
                "{:<40} {:<16} {:<16} {:<20} {:>9}",
                "id", "caller", "callee", "started (UTC)", "seconds"
            );
            for r in &items {
                println!(
                    "{:<40} {:<16} {:<16} {:<20} {:>9.1}",
                    r.id,
                    r.caller.expose(),
                    r.callee.expose(),
                    utc(r.started_at),
                    seconds(r.duration_ms)
                );
            }
            listed(items.len(), withheld);
            Ok(())
        }
        AdminCommand::Cdr(CdrCommand::List {
            user,
            since,
            until,
            limit,
        }) => {
            let list = client.call_records(CallRecordQuery {
                user,
                since,
                until,
                limit: Some(limit),
            })?;
            println!(
                "{:<20} {:<16} {:<16} {:<24} {:>7} {:<6}",
                "started (UTC)", "caller", "callee", "outcome", "talked", "ended"
            );
            for r in &list.items {
                println!(
                    "{:<20} {:<16} {:<16} {:<24} {:>7} {:<6}",
                    utc(r.started_at),
                    r.caller.expose(),
                    r.callee.expose(),
                    outcome(r),
                    r.talk_secs,
                    format!("{:?}", r.ended_by).to_lowercase()
                );
            }
            println!(
                "{} listed, {} older left out past the limit, {} withheld by the access policy",
                list.items.len(),
                list.omitted,
                list.withheld
            );
            if list.unreadable > 0 {
                println!(
                    "{} batches could not be read (damaged); see the audit log",
                    list.unreadable
                );
            }
            Ok(())
        }
        AdminCommand::Voicemail(VoicemailCommand::Export { id, file }) => {
            audio_written(client.voicemail_export(&id, &file)?, &file);
            Ok(())
        }
        AdminCommand::Recording(RecordingCommand::Export { id, file }) => {
            audio_written(client.recording_export(&id, &file)?, &file);
            Ok(())
        }
        AdminCommand::Voicemail(VoicemailCommand::Delete { id }) => {
            client.voicemail_delete(&id)?;
            println!("{id} shredded and removed");
            Ok(())
        }
        AdminCommand::Recording(RecordingCommand::Delete { id }) => {
            client.recording_delete(&id)?;
            println!("{id} shredded and removed");
            Ok(())
        }
        AdminCommand::Audit(AuditCommand::Verify) => {
            let v = client.audit_verify()?;
            match &v.damage {
                None => println!(
                    "ok: {} records, {} checkpoints, root {}; public key {}",
                    v.records, v.checkpoints, v.root, v.public_key
                ),
                Some(d) => {
                    println!("DAMAGED: {d}");
                    return Err(ClientError::Protocol("the audit log is damaged".into()));
                }
            }
            Ok(())
        }
        AdminCommand::Audit(AuditCommand::Alerts { since }) => {
            let items = client.audit_alerts(since)?;
            println!(
                "{:<24} {:<20} {:<20} {:<20} {:>8}",
                "alert", "at (UTC)", "who", "detail", "record"
            );
            for a in &items {
                println!(
                    "{:<24} {:<20} {:<20} {:<20} {:>8}",
                    a.kind,
                    utc(a.at_ms / 1000),
                    a.who.expose(),
                    a.detail.expose(),
                    a.seq
                );
            }
            println!("{} alerts", items.len());
            Ok(())
        }
        AdminCommand::Audit(AuditCommand::Export { file }) => {
            let n = client.audit_export(&file)?;
            println!("{n} bytes of records written to {}", file.display());
            Ok(())
        }
        AdminCommand::User(UserCommand::Add {
            name,
            role,
            mailboxes,
        }) => {
            let Some(password) = new_password else {
                return Err(ClientError::Protocol(
                    "no password for the new account".into(),
                ));
            };
            let uri = client.user_add(&name, &role, password, mailboxes)?;
            println!("account {name} added with role {role}");
            println!("add this to an authenticator app now; it is not shown again:");
            println!("{}", uri.expose());
            Ok(())
        }
        AdminCommand::User(UserCommand::Disable { name }) => {
            client.user_disable(&name)?;
            println!("account {name} disabled");
            Ok(())
        }
        AdminCommand::Totp(TotpCommand::Reset { name }) => {
            let uri = client.totp_reset(&name)?;
            println!("TOTP of {name} reset; add this to an authenticator app now:");
            println!("{}", uri.expose());
            Ok(())
        }
    }
}

/// Milliseconds of audio as seconds.
fn seconds(ms: u64) -> f64 {
    #[allow(
        clippy::cast_precision_loss,
        reason = "milliseconds of a message or a call"
    )]
    let secs = ms as f64 / 1000.0;
    secs
}

/// The last line of a listing of voicemail or recordings.
fn listed(count: usize, withheld: u64) {
    println!("{count} listed, {withheld} withheld by the access policy");
}

/// The line after an export of audio.
fn audio_written(bytes: u64, file: &Path) {
    println!("{bytes} bytes of audio written to {}", file.display());
}

/// Unix seconds as a UTC time, or the number when out of range.
fn utc(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(
            || secs.to_string(),
            |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

/// A record's outcome, in words.
fn outcome(r: &CallRecord) -> String {
    match r.disposition {
        Disposition::Answered => "answered".into(),
        Disposition::Voicemail { reason } => {
            format!("voicemail ({})", format!("{reason:?}").to_lowercase())
        }
        Disposition::Refused { status } => format!("refused ({status})"),
        Disposition::Mailbox => "own mailbox".into(),
        _ => "unanswered".into(),
    }
}
