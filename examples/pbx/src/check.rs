//! `check-config`: a validated configuration read against the technical
//! safeguards of the HIPAA Security Rule, 45 CFR 164.312.
//!
//! Each safeguard is [`Status::Met`] or [`Status::Weakened`], with the
//! reasons taken from the settings themselves. The check reads the
//! configuration only: it says what the settings ask for, not what a
//! running server does.
//!
//! ```
//! use carevox_pbx::check::{Safeguard, Status, check_config};
//! use carevox_pbx::config::Config;
//!
//! let report = check_config(&Config::default());
//! assert!(report.all_met());
//!
//! let config = Config::from_toml("[dangerous]\nudp_listen = [\"127.0.0.1:5060\"]\n")?;
//! let report = check_config(&config);
//! let e1 = report.finding(Safeguard::TransmissionSecurity).expect("every safeguard is checked");
//! assert_eq!(e1.status(), Status::Weakened);
//! assert!(e1.reasons.iter().any(|r| r.text.contains("SIP over UDP is enabled")));
//! # Ok::<(), carevox_pbx::config::ConfigError>(())
//! ```

use std::fmt;

use crate::config::{Config, DangerousSetting, TlsVersion};

/// A technical safeguard of 45 CFR 164.312.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Safeguard {
    /// (a)(1) access control: unique user identification, emergency
    /// access, automatic logoff.
    AccessControl,
    /// (a)(2)(iv) encryption and decryption (of data at rest).
    EncryptionAtRest,
    /// (b) audit controls.
    AuditControls,
    /// (c)(1) integrity.
    Integrity,
    /// (d) person or entity authentication.
    Authentication,
    /// (e)(1) transmission security.
    TransmissionSecurity,
}

impl Safeguard {
    /// Every safeguard checked, in the order of the rule.
    pub const ALL: [Safeguard; 6] = [
        Safeguard::AccessControl,
        Safeguard::EncryptionAtRest,
        Safeguard::AuditControls,
        Safeguard::Integrity,
        Safeguard::Authentication,
        Safeguard::TransmissionSecurity,
    ];

    /// The paragraph, e.g. `164.312(a)(1)`.
    pub fn citation(self) -> &'static str {
        match self {
            Safeguard::AccessControl => "164.312(a)(1)",
            Safeguard::EncryptionAtRest => "164.312(a)(2)(iv)",
            Safeguard::AuditControls => "164.312(b)",
            Safeguard::Integrity => "164.312(c)(1)",
            Safeguard::Authentication => "164.312(d)",
            Safeguard::TransmissionSecurity => "164.312(e)(1)",
        }
    }

    /// The safeguard's name.
    pub fn title(self) -> &'static str {
        match self {
            Safeguard::AccessControl => "access control",
            Safeguard::EncryptionAtRest => "encryption at rest",
            Safeguard::AuditControls => "audit controls",
            Safeguard::Integrity => "integrity",
            Safeguard::Authentication => "person or entity authentication",
            Safeguard::TransmissionSecurity => "transmission security",
        }
    }
}

/// Whether the settings meet a safeguard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Every setting that bears on it meets it.
    Met,
    /// At least one setting weakens it.
    Weakened,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Met => "met",
            Status::Weakened => "weakened",
        })
    }
}

/// One setting's bearing on a safeguard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// Whether it weakens the safeguard.
    pub weakens: bool,
    /// What the setting does, with its key and value.
    pub text: String,
}

/// One safeguard and the reasons for its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The safeguard.
    pub safeguard: Safeguard,
    /// The reasons, weakening or not, in the order checked.
    pub reasons: Vec<Reason>,
}

impl Finding {
    /// [`Status::Weakened`] when a reason weakens it.
    pub fn status(&self) -> Status {
        if self.reasons.iter().any(|r| r.weakens) {
            Status::Weakened
        } else {
            Status::Met
        }
    }

    /// The reasons that weaken it.
    pub fn weaknesses(&self) -> impl Iterator<Item = &Reason> {
        self.reasons.iter().filter(|r| r.weakens)
    }
}

/// The whole check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One finding per safeguard, in the order of [`Safeguard::ALL`].
    pub findings: Vec<Finding>,
    /// Every `[dangerous]` setting that is on.
    pub dangerous: Vec<DangerousSetting>,
}

impl Report {
    /// Whether every safeguard is met.
    pub fn all_met(&self) -> bool {
        self.findings.iter().all(|f| f.status() == Status::Met)
    }

    /// The finding of `safeguard` (every one has a finding in a report
    /// built by [`check_config`]).
    pub fn finding(&self, safeguard: Safeguard) -> Option<&Finding> {
        self.findings.iter().find(|f| f.safeguard == safeguard)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            let s = finding.safeguard;
            writeln!(f, "{} {}: {}", s.citation(), s.title(), finding.status())?;
            for r in &finding.reasons {
                let mark = if r.weakens { "weakened" } else { "ok" };
                writeln!(f, "  - [{mark}] {}", r.text)?;
            }
        }
        if self.dangerous.is_empty() {
            writeln!(f, "[dangerous]: nothing enabled")?;
        } else {
            writeln!(f, "[dangerous] settings enabled:")?;
            for d in &self.dangerous {
                writeln!(f, "  - {}: {}", d.key, d.effect)?;
            }
        }
        Ok(())
    }
}

/// The longest idle time before automatic logoff that meets (a)(1).
pub const MAX_IDLE_LOGOFF_SECS: u64 = 900;
/// The longest emergency grant that meets (a)(1).
pub const MAX_EMERGENCY_MINUTES: u32 = 240;
/// The shortest audit retention that meets (b): six years, 164.316(b)(2).
pub const MIN_AUDIT_RETENTION_DAYS: u32 = 2190;
/// The most records between signed checkpoints that meets (b).
pub const MAX_CHECKPOINT_INTERVAL: u64 = 10_000;
/// The most failed attempts before a lock that meets (d).
pub const MAX_FREE_FAILURES: u32 = 10;

struct Reasons(Vec<Reason>);

impl Reasons {
    fn met(&mut self, text: String) {
        self.0.push(Reason {
            weakens: false,
            text,
        });
    }
    fn weak(&mut self, text: String) {
        self.0.push(Reason {
            weakens: true,
            text,
        });
    }
    fn either(&mut self, weakens: bool, weak: String, met: String) {
        if weakens {
            self.weak(weak)
        } else {
            self.met(met)
        }
    }
}

/// Reads `config` against each safeguard.
pub fn check_config(config: &Config) -> Report {
    let findings = Safeguard::ALL
        .into_iter()
        .map(|s| {
            let mut r = Reasons(Vec::new());
            match s {
                Safeguard::AccessControl => access_control(config, &mut r),
                Safeguard::EncryptionAtRest => encryption_at_rest(config, &mut r),
                Safeguard::AuditControls => audit_controls(config, &mut r),
                Safeguard::Integrity => integrity(config, &mut r),
                Safeguard::Authentication => authentication(config, &mut r),
                Safeguard::TransmissionSecurity => transmission(config, &mut r),
            }
            Finding {
                safeguard: s,
                reasons: r.0,
            }
        })
        .collect();
    Report {
        findings,
        dangerous: config.dangerous_settings(),
    }
}

fn access_control(c: &Config, r: &mut Reasons) {
    r.met(
        "unique user identification: every registration authenticates one user account of the \
         data directory, and every audit record names it"
            .to_owned(),
    );
    let idle = c.admin.idle_logoff_secs;
    r.either(
        idle > MAX_IDLE_LOGOFF_SECS,
        format!(
            "automatic logoff: admin.idle_logoff_secs = {idle}, longer than \
             {MAX_IDLE_LOGOFF_SECS} s: an unattended session stays open"
        ),
        format!("automatic logoff: administrators are logged off after {idle} s idle"),
    );
    let minutes = c.admin.emergency_access_max_minutes;
    if !c.admin.emergency_access {
        r.weak(
            "emergency access: admin.emergency_access = false: there is no break-the-glass \
             procedure for an emergency"
                .to_owned(),
        );
    } else {
        r.either(
            minutes > MAX_EMERGENCY_MINUTES,
            format!(
                "emergency access: admin.emergency_access_max_minutes = {minutes}, longer than \
                 {MAX_EMERGENCY_MINUTES}: an emergency grant outlives the emergency"
            ),
            format!(
                "emergency access: break-the-glass grants last at most {minutes} minutes and are \
                 audited"
            ),
        );
    }
}

fn encryption_at_rest(c: &Config, r: &mut Reasons) {
    let key = &c.server.master_key_file;
    r.either(
        key.starts_with(&c.server.data_dir),
        "server.master_key_file lies inside server.data_dir: a copy of the data directory \
         carries the key that decrypts it"
            .to_owned(),
        "voicemail and recordings are to be stored in the vault (AEAD envelopes), whose master \
         key file lies outside the data directory"
            .to_owned(),
    );
    let rec = &c.recording;
    let which = if rec.all_calls {
        Some("every answered call is".to_owned())
    } else if rec.users.is_empty() {
        None
    } else {
        Some(format!("the calls of {} users are", rec.users.len()))
    };
    if let Some(which) = which {
        r.met(format!(
            "{which} recorded into the vault after an announcement both parties hear, kept {} \
             days",
            c.retention.recordings_days
        ));
    }
}

fn audit_controls(c: &Config, r: &mut Reasons) {
    r.either(
        !c.audit.monitor,
        "audit.monitor = false: failed registrations, lockouts and emergency access raise no \
         alert"
            .to_owned(),
        "the audit monitor alerts on failed logins and registrations, lockouts, new networks \
         and emergency access"
            .to_owned(),
    );
    let days = c.retention.audit_days;
    r.either(
        days < MIN_AUDIT_RETENTION_DAYS,
        format!(
            "retention.audit_days = {days}: audit records are purged before the six years of \
             45 CFR 164.316(b)(2)"
        ),
        format!("audit records are kept {days} days"),
    );
    let n = c.audit.checkpoint_interval_records;
    r.either(
        n > MAX_CHECKPOINT_INTERVAL,
        format!(
            "audit.checkpoint_interval_records = {n}, more than {MAX_CHECKPOINT_INTERVAL}: a cut \
             of the log's tail goes unproven for longer"
        ),
        format!("the hash-chained audit log is sealed by a signed checkpoint every {n} records"),
    );
}

fn integrity(c: &Config, r: &mut Reasons) {
    let d = &c.dangerous;
    if !d.udp_listen.is_empty() {
        r.weak(
            "SIP over UDP is enabled: messages, and the SDES keys in them, can be altered in \
             transit"
                .to_owned(),
        );
    }
    if !d.tcp_listen.is_empty() {
        r.weak(
            "SIP over TCP without TLS is enabled: messages, and the SDES keys in them, can be \
             altered in transit"
                .to_owned(),
        );
    }
    if d.udp_listen.is_empty() && d.tcp_listen.is_empty() {
        r.met("SIP messages travel only in TLS records, which are authenticated".to_owned());
    }
    let short: Vec<&str> = c
        .media
        .srtp_suites
        .iter()
        .filter(|s| s.0.rtp_tag_len() < 10)
        .map(|s| s.0.sdes_name())
        .collect();
    r.either(
        !short.is_empty(),
        format!(
            "media.srtp_suites offers {}: RTP packets authenticated by a 32-bit tag only",
            short.join(", ")
        ),
        "every SRTP suite offered authenticates packets with a tag of 80 bits or more".to_owned(),
    );
}

fn authentication(c: &Config, r: &mut Reasons) {
    r.either(
        c.dangerous.allow_md5_for_legacy_users,
        "dangerous.allow_md5_for_legacy_users = true: users marked as legacy phones \
         authenticate with MD5 digest, whose stored HA1 is cheap to attack"
            .to_owned(),
        format!(
            "SIP digest authentication with {} only",
            c.digest
                .algorithms
                .iter()
                .map(|a| a.algorithm().name())
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    );
    let n = c.lockout.free_failures;
    r.either(
        n > MAX_FREE_FAILURES,
        format!(
            "lockout.free_failures = {n}, more than {MAX_FREE_FAILURES}: many guesses pass \
             before a user is locked"
        ),
        format!(
            "a user is locked after {} consecutive failed attempts",
            n.max(1)
        ),
    );
    // `require_mfa = false` is refused when the configuration is read.
    r.met("administrators log in with a password and a TOTP code".to_owned());
    if c.tls.require_client_certificate {
        r.met("phones also present a client certificate (mutual TLS)".to_owned());
    }
}

fn transmission(c: &Config, r: &mut Reasons) {
    let d = &c.dangerous;
    if !d.udp_listen.is_empty() {
        r.weak("SIP over UDP is enabled: signalling and SDES keys travel in clear".to_owned());
    }
    if !d.tcp_listen.is_empty() {
        r.weak(
            "SIP over TCP without TLS is enabled: signalling and SDES keys travel in clear"
                .to_owned(),
        );
    }
    let version = match c.tls.min_version {
        TlsVersion::Tls12 => "1.2",
        TlsVersion::Tls13 => "1.3",
    };
    if d.udp_listen.is_empty() && d.tcp_listen.is_empty() {
        r.met(format!("SIP is served over TLS {version} or later only"));
    }
    r.met("media is SRTP only: plain RTP is neither offered nor accepted".to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_meet_every_safeguard() {
        let report = check_config(&Config::default());
        assert!(report.all_met(), "{report}");
        assert_eq!(report.findings.len(), 6);
        for f in &report.findings {
            assert!(!f.reasons.is_empty(), "{:?} has reasons", f.safeguard);
        }
    }
}
