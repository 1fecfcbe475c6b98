//! `pbx.toml`: the PBX's configuration, with secure defaults.
//!
//! Every table and every key is optional; what is left out takes the secure
//! default documented on its field (and in `pbx.example.toml`). Unknown keys
//! are refused, so a misspelt setting never silently keeps its default.
//!
//! Secure by construction:
//! - SIP is served over TLS only. Listening on UDP or TCP, and accepting
//!   `MD5` digest for legacy phones, can be switched on only in the
//!   `[dangerous]` table, and [`Config::dangerous_settings`] reports each
//!   one that is on.
//! - Media is SRTP only: [`MediaSection::srtp_suites`] lists suites that
//!   both encrypt and authenticate; plain RTP has no setting at all.
//! - Digest authentication offers `SHA-256` and `SHA-512-256`; `MD5` is not
//!   a value `[digest] algorithms` accepts.
//!
//! Users are not configured here: they live in the PBX's data directory.
//!
//! Errors name the place in the file (line and column) and the key path:
//!
//! ```
//! use carevox_pbx::config::{Config, ConfigError};
//!
//! let config = Config::from_toml("[registrar]\nmin_expires_secs = 120\n")?;
//! assert_eq!(config.registrar.min_expires_secs, 120);
//! assert_eq!(config.digest, Config::default().digest);
//!
//! let err = Config::from_toml("[registrar]\nmax_expires_secs = 10\n").unwrap_err();
//! assert!(err.to_string().contains("line 2, column 20"), "{err}");
//! assert!(err.to_string().contains("registrar.max_expires_secs"), "{err}");
//! # Ok::<(), ConfigError>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use carevox::sip::auth::Algorithm;
use carevox::srtp::Suite;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `[server]`: names and the data directory.
    pub server: ServerSection,
    /// `[tls]`: SIP over TLS, the only transport outside `[dangerous]`.
    pub tls: TlsSection,
    /// `[digest]`: SIP digest authentication.
    pub digest: DigestSection,
    /// `[lockout]`: refusing attempts after repeated failures.
    pub lockout: LockoutSection,
    /// `[registrar]`: registration lifetimes and the location service's caps.
    pub registrar: RegistrarSection,
    /// `[media]`: SRTP.
    pub media: MediaSection,
    /// `[voicemail]`: when and how long.
    pub voicemail: VoicemailSection,
    /// `[recording]`: which calls are recorded, and the announcement.
    pub recording: RecordingSection,
    /// `[retention]`: how long stored data is kept.
    pub retention: RetentionSection,
    /// `[admin]`: the administrators' sessions.
    pub admin: AdminSection,
    /// `[audit]`: the audit log.
    pub audit: AuditSection,
    /// `[dangerous]`: settings that weaken a safeguard, each reported.
    pub dangerous: DangerousSection,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServerSection {
    /// The digest realm (protection space) named in challenges. Default
    /// `"carevox-pbx"`.
    pub realm: String,
    /// The domains whose addresses of record this registrar serves (the
    /// host part of a REGISTER's Request-URI and To). Default
    /// `["localhost"]`.
    pub domains: Vec<String>,
    /// Where the PBX keeps users, registrations, the vault and the audit
    /// log. An absolute path. Default `/var/lib/carevox-pbx`.
    pub data_dir: PathBuf,
    /// The vault's master key file. An absolute path, which should lie
    /// outside `data_dir` (a copy of the data directory should not carry
    /// its own key). Default `/etc/carevox-pbx/vault.key`.
    pub master_key_file: PathBuf,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            realm: "carevox-pbx".to_owned(),
            domains: vec!["localhost".to_owned()],
            data_dir: PathBuf::from("/var/lib/carevox-pbx"),
            master_key_file: PathBuf::from("/etc/carevox-pbx/vault.key"),
        }
    }
}

/// The lowest TLS version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 (`"1.2"`), with TLS 1.3 preferred.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only (`"1.3"`).
    #[serde(rename = "1.3")]
    Tls13,
}

/// `[tls]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsSection {
    /// Addresses on which SIP over TLS is served. At least one. Default
    /// `["127.0.0.1:5061"]` (loopback: list the PBX's own addresses to serve
    /// phones).
    pub listen: Vec<SocketAddr>,
    /// The server's certificate chain (PEM). Default
    /// `/etc/carevox-pbx/tls/certificate.pem`.
    pub certificate: PathBuf,
    /// The certificate's private key (PEM). Default
    /// `/etc/carevox-pbx/tls/private-key.pem`.
    pub private_key: PathBuf,
    /// CA certificates (PEM) that phones' client certificates must chain
    /// to. Default: none.
    pub ca: Option<PathBuf>,
    /// Whether phones must present a client certificate chaining to `ca`
    /// (mutual TLS). Default `false`; `true` needs `ca`.
    pub require_client_certificate: bool,
    /// The lowest TLS version accepted: `"1.2"` or `"1.3"`. Default `"1.2"`.
    pub min_version: TlsVersion,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5061))],
            certificate: PathBuf::from("/etc/carevox-pbx/tls/certificate.pem"),
            private_key: PathBuf::from("/etc/carevox-pbx/tls/private-key.pem"),
            ca: None,
            require_client_certificate: false,
            min_version: TlsVersion::Tls12,
        }
    }
}

/// A digest algorithm `[digest] algorithms` may name: `SHA-256` or
/// `SHA-512-256`. `MD5` is not one (see
/// [`DangerousSection::allow_md5_for_legacy_users`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
    /// `SHA-512-256` (RFC 7616, RFC 8760).
    Sha512_256,
}

impl DigestAlgorithm {
    /// The algorithm of carevox-sip.
    pub fn algorithm(self) -> Algorithm {
        match self {
            DigestAlgorithm::Sha256 => Algorithm::Sha256,
            DigestAlgorithm::Sha512_256 => Algorithm::Sha512_256,
        }
    }
}

impl TryFrom<String> for DigestAlgorithm {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        match Algorithm::parse(&name) {
            Some(Algorithm::Sha256) => Ok(DigestAlgorithm::Sha256),
            Some(Algorithm::Sha512_256) => Ok(DigestAlgorithm::Sha512_256),
            Some(Algorithm::Md5 | Algorithm::Md5Sess) => Err(
                "MD5 is not a digest algorithm to configure here: legacy phones get it per user, \
                 only with `[dangerous] allow_md5_for_legacy_users = true`"
                    .to_owned(),
            ),
            _ => Err("unsupported digest algorithm: use \"SHA-256\" or \"SHA-512-256\"".to_owned()),
        }
    }
}

/// `[digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DigestSection {
    /// The algorithms offered, in preference order, without repeats.
    /// Default `["SHA-256", "SHA-512-256"]`.
    pub algorithms: Vec<DigestAlgorithm>,
    /// How long a nonce stays valid, in seconds (10 to 3600). Nonces are
    /// stateless: they carry their issue time under an HMAC. Default 300.
    pub nonce_lifetime_secs: u64,
    /// How far a nonce's issue time may lie in the future (clock steps
    /// between servers sharing the nonce secret), in seconds (0 to 300).
    /// Default 30.
    pub max_clock_skew_secs: u64,
    /// How many nonces' counts are tracked against replay (1 to 1 000 000;
    /// about 100 bytes each). Default 10 000.
    pub max_tracked_nonces: usize,
}

impl Default for DigestSection {
    fn default() -> Self {
        DigestSection {
            algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Sha512_256],
            nonce_lifetime_secs: 300,
            max_clock_skew_secs: 30,
            max_tracked_nonces: 10_000,
        }
    }
}

/// `[lockout]`: carevox-authz's lockout policy for SIP digest attempts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LockoutSection {
    /// Consecutive failures allowed before the first wait (0 to 100).
    /// Default 5.
    pub free_failures: u32,
    /// The first wait, in seconds, doubling with each further failure (1 to
    /// 86 400). Default 30.
    pub base_delay_secs: u64,
    /// The longest wait, in seconds (at least `base_delay_secs`, at most
    /// 86 400). Default 3600.
    pub max_delay_secs: u64,
    /// Failures are forgotten after this long without one, in seconds (60
    /// to 2 592 000). Default 86 400.
    pub reset_after_secs: u64,
}

impl Default for LockoutSection {
    fn default() -> Self {
        LockoutSection {
            free_failures: 5,
            base_delay_secs: 30,
            max_delay_secs: 3600,
            reset_after_secs: 86_400,
        }
    }
}

impl LockoutSection {
    /// The carevox-authz policy these settings describe.
    pub fn policy(&self) -> carevox::authz::lockout::LockoutPolicy {
        carevox::authz::lockout::LockoutPolicy {
            free_failures: self.free_failures,
            base_delay: std::time::Duration::from_secs(self.base_delay_secs),
            max_delay: std::time::Duration::from_secs(self.max_delay_secs),
            reset_after: std::time::Duration::from_secs(self.reset_after_secs),
        }
    }
}

/// `[registrar]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RegistrarSection {
    /// The shortest registration accepted, in seconds; shorter requests
    /// get `423 Interval Too Brief` (1 to 86 400). Default 60.
    pub min_expires_secs: u32,
    /// The longest registration granted, in seconds; longer requests are
    /// shortened to it (at least `min_expires_secs`, at most 604 800).
    /// Default 3600.
    pub max_expires_secs: u32,
    /// The lifetime of a contact that asks for none, in seconds (between
    /// the two above). Default 600.
    pub default_expires_secs: u32,
    /// How many users may hold registrations at once (1 to 1 000 000);
    /// past it a new user's registration gets `503`. Default 10 000.
    pub max_users: usize,
    /// How many contacts one user may register (1 to 100); past it the
    /// registration gets `503`. Default 10.
    pub max_contacts_per_user: usize,
    /// Whether to assign GRUUs (RFC 5627) to contacts that carry a
    /// `+sip.instance` and ask for them. Default `true`.
    pub gruu: bool,
}

impl Default for RegistrarSection {
    fn default() -> Self {
        RegistrarSection {
            min_expires_secs: 60,
            max_expires_secs: 3600,
            default_expires_secs: 600,
            max_users: 10_000,
            max_contacts_per_user: 10,
            gruu: true,
        }
    }
}

/// An SRTP suite `[media] srtp_suites` may name: one that carevox-sip
/// negotiates and carevox-srtp keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct SrtpSuite(pub Suite);

impl TryFrom<String> for SrtpSuite {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        let keyable = carevox::sdes::keyable_suites();
        if keyable.iter().any(|s| s.name() == name) {
            Suite::from_sdes_name(&name)
                .map(SrtpSuite)
                .map_err(|_| "unknown SRTP suite".to_owned())
        } else {
            let names: Vec<&str> = keyable.iter().map(|s| s.name()).collect();
            Err(format!(
                "unknown SRTP suite: use one of {} (plain RTP is never offered)",
                names.join(", ")
            ))
        }
    }
}

/// `[media]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MediaSection {
    /// The SRTP suites offered and accepted (SDES, RFC 4568), in preference
    /// order, without repeats. Default `["AEAD_AES_256_GCM",
    /// "AEAD_AES_128_GCM", "AES_256_CM_HMAC_SHA1_80",
    /// "AES_CM_128_HMAC_SHA1_80"]`.
    pub srtp_suites: Vec<SrtpSuite>,
    /// The lowest UDP port of the media relay (RTP on even ports, RTCP on
    /// the next; 1024 to 65534). Default 20000.
    pub rtp_port_min: u16,
    /// The highest UDP port of the media relay (at least 3 above the
    /// lowest: two calls' legs). Default 29999.
    pub rtp_port_max: u16,
}

impl Default for MediaSection {
    fn default() -> Self {
        MediaSection {
            srtp_suites: vec![
                SrtpSuite(Suite::AeadAes256Gcm),
                SrtpSuite(Suite::AeadAes128Gcm),
                SrtpSuite(Suite::AesCm256HmacSha1_80),
                SrtpSuite(Suite::AesCm128HmacSha1_80),
            ],
            rtp_port_min: 20000,
            rtp_port_max: 29999,
        }
    }
}

/// `[voicemail]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct VoicemailSection {
    /// Seconds of ringing before an unanswered call goes to voicemail (5
    /// to 300). Default 25.
    pub no_answer_timeout_secs: u32,
    /// The longest message, in seconds (10 to 3600). Default 180.
    pub max_message_secs: u32,
    /// The number a user calls from their own phone to hear their
    /// messages after entering their voicemail PIN: the user part of the
    /// address called (1 to 32 of `0-9 * # a-z A-Z . - _`), never a
    /// user's name. Default `*97`.
    pub number: String,
}

impl Default for VoicemailSection {
    fn default() -> Self {
        VoicemailSection {
            no_answer_timeout_secs: 25,
            max_message_secs: 180,
            number: "*97".to_owned(),
        }
    }
}

/// `[recording]`: which answered calls are recorded into the vault. A
/// recorded call starts with an announcement both parties hear; there is
/// no setting to record without one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RecordingSection {
    /// Record every answered call. Default false.
    pub all_calls: bool,
    /// Record the calls these SIP users make or receive. Default none.
    pub users: Vec<String>,
    /// The announcement (an absolute path): a WAV file of 8 kHz mono
    /// G.711 μ-law or A-law or 16-bit PCM, 0.1 to 60 seconds. Default: two
    /// half-second 1400 Hz beeps.
    pub announcement: Option<PathBuf>,
    /// The longest recording of one call, in seconds (60 to 86 400); the
    /// call goes on unrecorded past it. Default 14 400 (four hours).
    pub max_recording_secs: u32,
}

impl Default for RecordingSection {
    fn default() -> Self {
        RecordingSection {
            all_calls: false,
            users: Vec::new(),
            announcement: None,
            max_recording_secs: 14_400,
        }
    }
}

/// `[retention]`: days after which stored data is purged.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetentionSection {
    /// Voicemail messages (1 to 36 500 days). Default 90.
    pub voicemail_days: u32,
    /// Call recordings (1 to 36 500 days). Default 2190 (six years).
    pub recordings_days: u32,
    /// Call detail records (1 to 36 500 days). Default 2190 (six years).
    pub call_records_days: u32,
    /// Audit records (1 to 36 500 days). Default 2190: the six years of
    /// 45 CFR 164.316(b)(2); less is reported by `check-config`.
    pub audit_days: u32,
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection {
            voicemail_days: 90,
            recordings_days: 2190,
            call_records_days: 2190,
            audit_days: 2190,
        }
    }
}

/// `[admin]`: sessions of the administrators.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AdminSection {
    /// Automatic logoff after this many idle seconds (60 to 86 400).
    /// Default 900; more is reported by `check-config`.
    pub idle_logoff_secs: u64,
    /// The longest session, in seconds (at least `idle_logoff_secs`, at
    /// most 604 800). Default 43 200.
    pub session_lifetime_secs: u64,
    /// Whether administrators need a second factor (TOTP). Default `true`,
    /// and the only value accepted: the admin console always asks for a
    /// TOTP code, so `false` is refused rather than left without effect.
    pub require_mfa: bool,
    /// Whether break-the-glass emergency access is available. Default
    /// `true`.
    pub emergency_access: bool,
    /// How long an emergency grant lasts, in minutes (1 to 1440). Default
    /// 60.
    pub emergency_access_max_minutes: u32,
}

impl Default for AdminSection {
    fn default() -> Self {
        AdminSection {
            idle_logoff_secs: 900,
            session_lifetime_secs: 43_200,
            require_mfa: true,
            emergency_access: true,
            emergency_access_max_minutes: 60,
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditSection {
    /// Whether the audit monitor raises alerts (failed logins and
    /// registrations per user and per address, lockouts, new networks,
    /// emergency access). Default `true`.
    pub monitor: bool,
    /// Records between two signed checkpoints (1 to 1 000 000). Default
    /// 1000.
    pub checkpoint_interval_records: u64,
    /// Local working hours, `HH:MM-HH:MM` (wrapping past midnight when the
    /// start is later); access by a console user (voicemail, CDRs, the
    /// audit log) outside them raises an alert. Empty (the default): no
    /// such alert.
    pub working_hours: String,
    /// Local time minus UTC for `working_hours`, `+HH:MM` or `-HH:MM`.
    /// Fixed: a daylight-saving change needs it updated. Default `+00:00`.
    pub utc_offset: String,
    /// Saturdays and Sundays count as outside working hours. Default
    /// `false`.
    pub weekdays_only: bool,
    /// Reads by one console user within `bulk_read_window_mins` that raise
    /// an alert (a bulk export); 0 turns the alert off. Each voicemail
    /// listed or exported, each mailbox's CDRs read, and each vault object
    /// opened for them counts. Default 100.
    pub bulk_reads: u32,
    /// The window of `bulk_reads`, in minutes (1 to 1440). Default 10.
    pub bulk_read_window_mins: u32,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            monitor: true,
            checkpoint_interval_records: 1000,
            working_hours: String::new(),
            utc_offset: "+00:00".to_owned(),
            weekdays_only: false,
            bulk_reads: 100,
            bulk_read_window_mins: 10,
        }
    }
}

/// `HH:MM` as minutes after midnight (`24:00` allowed as an end).
fn clock_minutes(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let total = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && total <= 1440).then_some(total)
}

impl AuditSection {
    /// `working_hours` as (start, end) minutes; `None` when empty, `Some(Err)`
    /// when malformed.
    fn hours(&self) -> Option<Result<(u16, u16), ()>> {
        if self.working_hours.trim().is_empty() {
            return None;
        }
        Some(
            self.working_hours
                .split_once('-')
                .and_then(|(a, b)| Some((clock_minutes(a)?, clock_minutes(b)?)))
                .filter(|(a, b)| a != b && *a < 1440)
                .ok_or(()),
        )
    }

    /// `utc_offset` in minutes, if well-formed (at most ±14:00).
    fn offset_minutes(&self) -> Option<i16> {
        let t = self.utc_offset.trim();
        let (sign, rest) = match t.as_bytes().first() {
            Some(b'+') => (1, t.get(1..)?),
            Some(b'-') => (-1, t.get(1..)?),
            _ => return None,
        };
        let m = clock_minutes(rest)?;
        (m <= 14 * 60).then(|| sign * i16::try_from(m).unwrap_or(0))
    }

    /// The monitoring rules of this section: carevox-audit's defaults,
    /// plus the working hours and the bulk-read threshold, both counting
    /// only console users (password and TOTP).
    pub fn monitor_config(&self) -> carevox::audit::monitor::MonitorConfig {
        use carevox::audit::AuthMethod;
        use carevox::audit::monitor::{MonitorConfig, WorkingHours};
        let working_hours = match (self.hours(), self.offset_minutes()) {
            (Some(Ok((start, end))), Some(offset)) => Some(WorkingHours {
                start_minute: start,
                end_minute: end,
                utc_offset_minutes: offset,
                weekdays_only: self.weekdays_only,
            }),
            _ => None,
        };
        MonitorConfig {
            working_hours,
            bulk_reads: self.bulk_reads,
            bulk_read_window_ms: u64::from(self.bulk_read_window_mins) * 60_000,
            access_by: vec![AuthMethod::PasswordMfa, AuthMethod::Password],
            ..MonitorConfig::default()
        }
    }
}

/// `[dangerous]`: the only place where a setting may weaken a safeguard.
/// Each setting that is on is listed by [`Config::dangerous_settings`] and
/// reported by `check-config`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DangerousSection {
    /// Addresses on which SIP is also served over UDP: signalling, and the
    /// SDES keys in it, travel in clear. Default: none.
    pub udp_listen: Vec<SocketAddr>,
    /// Addresses on which SIP is also served over TCP without TLS. Default:
    /// none.
    pub tcp_listen: Vec<SocketAddr>,
    /// Whether a user marked as a legacy phone may answer `MD5` digest
    /// challenges. Off, no user gets `MD5` whatever their own setting.
    /// Default `false`.
    pub allow_md5_for_legacy_users: bool,
}

/// One `[dangerous]` setting that is on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DangerousSetting {
    /// Its key path, e.g. `dangerous.udp_listen`.
    pub key: &'static str,
    /// What it weakens.
    pub effect: &'static str,
}

/// Where in the file something is: line and column (both from 1, the
/// column in characters) and the key path, e.g. `tls.listen[1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Line, counted from 1.
    pub line: u32,
    /// Column in characters, counted from 1.
    pub column: u32,
    /// The key path inside the file (empty for the whole file).
    pub path: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "line {}, column {}", self.line, self.column)
        } else {
            write!(
                f,
                "line {}, column {}, at `{}`",
                self.line, self.column, self.path
            )
        }
    }
}

/// What is wrong with one setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A number outside its range.
    #[error("{found} is out of range: allowed {min} to {max}")]
    OutOfRange {
        /// The smallest value allowed.
        min: u64,
        /// The largest value allowed.
        max: u64,
        /// The value found.
        found: u64,
    },
    /// A list that must not be empty is.
    #[error("the list must not be empty")]
    Empty,
    /// A list names the same value twice.
    #[error("item {index} repeats an earlier item")]
    Duplicate {
        /// The index of the repeat.
        index: usize,
    },
    /// A path that must be absolute is relative.
    #[error("the path must be absolute")]
    NotAbsolute,
    /// The realm is empty, too long (over 128 bytes) or holds a quote, a
    /// backslash or a control character.
    #[error("the realm must be 1 to 128 printable characters without quotes or backslashes")]
    BadRealm,
    /// A domain is not a host name or an IP address.
    #[error("domain {index} is not a host name or an IP address")]
    BadDomain {
        /// Its index in `server.domains`.
        index: usize,
    },
    /// An address is served twice (by two transports or twice by one).
    #[error("the address {address} is listened on twice")]
    AddressTwice {
        /// The address.
        address: SocketAddr,
    },
    /// Two settings contradict each other.
    #[error("{0}")]
    Conflict(&'static str),
    /// Working hours not written `HH:MM-HH:MM`, or empty ones.
    #[error("working hours must be written HH:MM-HH:MM, start and end different")]
    BadHours,
    /// A voicemail number that is empty, longer than 32 characters or
    /// holds a character other than `0-9 * # a-z A-Z . - _`.
    #[error("the number must be 1 to 32 of 0-9 * # a-z A-Z . - _")]
    BadNumber,
    /// A user name that is empty, longer than 128 bytes or holds a
    /// control character.
    #[error("user {index} must be 1 to 128 characters without control characters")]
    BadUser {
        /// Its index in the list.
        index: usize,
    },
    /// A UTC offset not written `+HH:MM` or `-HH:MM`, or past ±14:00.
    #[error("the offset must be written +HH:MM or -HH:MM, at most 14:00")]
    BadOffset,
}

/// One problem and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {problem}")]
pub struct Invalid {
    /// Where.
    pub location: Location,
    /// What.
    pub problem: Problem,
}

/// Why a configuration was refused. Messages name the place and the key,
/// and carry nothing from the file but numbers and addresses the
/// configuration itself defines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not TOML, or not TOML of this format (an unknown key, a
    /// wrong type, an unknown algorithm or suite).
    #[error("{location}: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// What the parser said.
        message: String,
    },
    /// The TOML is well-formed but settings are invalid: every problem
    /// found, in file order.
    #[error("{}", join(.0))]
    Invalid(Vec<Invalid>),
}

fn join(problems: &[Invalid]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a configuration file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read and refused.
    #[error("{}: {source}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ConfigError,
    },
}

impl Config {
    /// Parses and validates a configuration.
    ///
    /// # Errors
    /// [`ConfigError::Syntax`] for text that is not TOML of this format,
    /// [`ConfigError::Invalid`] with every invalid setting otherwise.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
            location: locate(text, e.span().map_or(0, |s| s.start), String::new()),
            message: e.message().to_owned(),
        })?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let inner = e.into_inner();
            let offset = match inner.span() {
                Some(s) => s.start,
                None => Spans::new(text).offset(&parse_path(&path)),
            };
            ConfigError::Syntax {
                location: locate(text, offset, path),
                message: inner.message().to_owned(),
            }
        })?;
        let problems = config.problems();
        if problems.is_empty() {
            return Ok(config);
        }
        let spans = Spans::new(text);
        let mut invalid: Vec<Invalid> = problems
            .into_iter()
            .map(|(path, problem)| {
                let offset = spans.offset(&path);
                Invalid {
                    location: locate(text, offset, path_text(&path)),
                    problem,
                }
            })
            .collect();
        invalid.sort_by_key(|i| (i.location.line, i.location.column));
        Err(ConfigError::Invalid(invalid))
    }

    /// Reads and validates the file at `path`.
    ///
    /// # Errors
    /// [`LoadError::Read`] when it cannot be read, [`LoadError::Config`]
    /// when it is refused.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|source| LoadError::Config {
            path: path.to_owned(),
            source,
        })
    }

    /// Every `[dangerous]` setting that is on, in the order of the table.
    pub fn dangerous_settings(&self) -> Vec<DangerousSetting> {
        let d = &self.dangerous;
        let mut out = Vec::new();
        if !d.udp_listen.is_empty() {
            out.push(DangerousSetting {
                key: "dangerous.udp_listen",
                effect: "SIP over UDP: signalling and the SDES keys in it travel in clear",
            });
        }
        if !d.tcp_listen.is_empty() {
            out.push(DangerousSetting {
                key: "dangerous.tcp_listen",
                effect: "SIP over TCP without TLS: signalling and the SDES keys in it travel in clear",
            });
        }
        if d.allow_md5_for_legacy_users {
            out.push(DangerousSetting {
                key: "dangerous.allow_md5_for_legacy_users",
                effect: "users marked as legacy phones may authenticate with MD5 digest",
            });
        }
        out
    }

    /// The digest algorithms of carevox-sip, in the configured order.
    pub fn digest_algorithms(&self) -> Vec<Algorithm> {
        self.digest
            .algorithms
            .iter()
            .map(|a| a.algorithm())
            .collect()
    }

    /// Every problem of the values, with its key path.
    fn problems(&self) -> Vec<(Vec<Seg>, Problem)> {
        let mut p = Problems::default();
        let s = &self.server;
        if s.realm.is_empty()
            || s.realm.len() > 128
            || s.realm
                .chars()
                .any(|c| c.is_control() || c == '"' || c == '\\')
        {
            p.push(&["server", "realm"], Problem::BadRealm);
        }
        if s.domains.is_empty() {
            p.push(&["server", "domains"], Problem::Empty);
        }
        for (index, d) in s.domains.iter().enumerate() {
            let ok = !d.is_empty() && d.len() <= 253 && carevox::sip::Host::parse(d).is_ok();
            if !ok {
                p.push_at(&["server", "domains"], index, Problem::BadDomain { index });
            }
        }
        for (index, d) in s.domains.iter().enumerate() {
            if s.domains
                .get(..index)
                .is_some_and(|before| before.iter().any(|b| b.eq_ignore_ascii_case(d)))
            {
                p.push_at(&["server", "domains"], index, Problem::Duplicate { index });
            }
        }
        p.absolute(&["server", "data_dir"], &s.data_dir);
        p.absolute(&["server", "master_key_file"], &s.master_key_file);

        let t = &self.tls;
        if t.listen.is_empty() {
            p.push(&["tls", "listen"], Problem::Empty);
        }
        p.absolute(&["tls", "certificate"], &t.certificate);
        p.absolute(&["tls", "private_key"], &t.private_key);
        if let Some(ca) = &t.ca {
            p.absolute(&["tls", "ca"], ca);
        }
        if t.require_client_certificate && t.ca.is_none() {
            p.push(
                &["tls", "require_client_certificate"],
                Problem::Conflict("requiring client certificates needs `ca`"),
            );
        }
        let mut seen: Vec<SocketAddr> = Vec::new();
        for (table, key, list) in [
            ("tls", "listen", &t.listen),
            ("dangerous", "udp_listen", &self.dangerous.udp_listen),
            ("dangerous", "tcp_listen", &self.dangerous.tcp_listen),
        ] {
            for (i, a) in list.iter().enumerate() {
                // UDP and TCP may share a port number; the same transport
                // may not listen twice, and TLS and TCP are both TCP.
                let clash = match key {
                    "udp_listen" => list.get(..i).is_some_and(|b| b.contains(a)),
                    _ => seen.contains(a),
                };
                if clash {
                    p.push_at(&[table, key], i, Problem::AddressTwice { address: *a });
                }
                if key != "udp_listen" {
                    seen.push(*a);
                }
            }
        }

        let d = &self.digest;
        if d.algorithms.is_empty() {
            p.push(&["digest", "algorithms"], Problem::Empty);
        }
        p.duplicates(&["digest", "algorithms"], &d.algorithms);
        p.range(
            &["digest", "nonce_lifetime_secs"],
            d.nonce_lifetime_secs,
            10,
            3600,
        );
        p.range(
            &["digest", "max_clock_skew_secs"],
            d.max_clock_skew_secs,
            0,
            300,
        );
        p.range(
            &["digest", "max_tracked_nonces"],
            d.max_tracked_nonces as u64,
            1,
            1_000_000,
        );

        let l = &self.lockout;
        p.range(
            &["lockout", "free_failures"],
            l.free_failures.into(),
            0,
            100,
        );
        p.range(
            &["lockout", "base_delay_secs"],
            l.base_delay_secs,
            1,
            86_400,
        );
        p.range(
            &["lockout", "max_delay_secs"],
            l.max_delay_secs,
            l.base_delay_secs.clamp(1, 86_400),
            86_400,
        );
        p.range(
            &["lockout", "reset_after_secs"],
            l.reset_after_secs,
            60,
            2_592_000,
        );

        let r = &self.registrar;
        p.range(
            &["registrar", "min_expires_secs"],
            r.min_expires_secs.into(),
            1,
            86_400,
        );
        p.range(
            &["registrar", "max_expires_secs"],
            r.max_expires_secs.into(),
            u64::from(r.min_expires_secs).clamp(1, 86_400),
            604_800,
        );
        if r.default_expires_secs < r.min_expires_secs
            || r.default_expires_secs > r.max_expires_secs
        {
            p.push(
                &["registrar", "default_expires_secs"],
                Problem::Conflict(
                    "default_expires_secs must lie between min_expires_secs and max_expires_secs",
                ),
            );
        }
        p.range(
            &["registrar", "max_users"],
            r.max_users as u64,
            1,
            1_000_000,
        );
        p.range(
            &["registrar", "max_contacts_per_user"],
            r.max_contacts_per_user as u64,
            1,
            100,
        );

        let m = &self.media;
        if m.srtp_suites.is_empty() {
            p.push(&["media", "srtp_suites"], Problem::Empty);
        }
        p.duplicates(&["media", "srtp_suites"], &m.srtp_suites);
        p.range(
            &["media", "rtp_port_min"],
            m.rtp_port_min.into(),
            1024,
            65534,
        );
        p.range(
            &["media", "rtp_port_max"],
            m.rtp_port_max.into(),
            1027,
            65535,
        );
        if u32::from(m.rtp_port_max) < u32::from(m.rtp_port_min) + 3 {
            p.push(
                &["media", "rtp_port_max"],
                Problem::Conflict("the media port range must hold at least two port pairs"),
            );
        }

        let v = &self.voicemail;
        p.range(
            &["voicemail", "no_answer_timeout_secs"],
            v.no_answer_timeout_secs.into(),
            5,
            300,
        );
        p.range(
            &["voicemail", "max_message_secs"],
            v.max_message_secs.into(),
            10,
            3600,
        );

        let t = &self.retention;
        for (key, days) in [
            ("voicemail_days", t.voicemail_days),
            ("recordings_days", t.recordings_days),
            ("call_records_days", t.call_records_days),
            ("audit_days", t.audit_days),
        ] {
            p.range(&["retention", key], days.into(), 1, 36_500);
        }

        let a = &self.admin;
        if !a.require_mfa {
            p.push(
                &["admin", "require_mfa"],
                Problem::Conflict(
                    "administrators always log in with a password and a TOTP code: \
                     `require_mfa` may only be true",
                ),
            );
        }
        p.range(
            &["admin", "idle_logoff_secs"],
            a.idle_logoff_secs,
            60,
            86_400,
        );
        p.range(
            &["admin", "session_lifetime_secs"],
            a.session_lifetime_secs,
            a.idle_logoff_secs.clamp(60, 86_400),
            604_800,
        );
        p.range(
            &["admin", "emergency_access_max_minutes"],
            a.emergency_access_max_minutes.into(),
            1,
            1440,
        );

        let number = &self.voicemail.number;
        if number.is_empty()
            || number.len() > 32
            || !number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "*#.-_".contains(c))
        {
            p.push(&["voicemail", "number"], Problem::BadNumber);
        }
        let r = &self.recording;
        p.range(
            &["recording", "max_recording_secs"],
            r.max_recording_secs.into(),
            60,
            86_400,
        );
        p.duplicates(&["recording", "users"], &r.users);
        for (index, user) in r.users.iter().enumerate() {
            if user.is_empty() || user.len() > 128 || user.chars().any(|c| c.is_control()) {
                p.push_at(&["recording", "users"], index, Problem::BadUser { index });
            }
        }
        if let Some(path) = &r.announcement {
            p.absolute(&["recording", "announcement"], path);
        }

        p.range(
            &["audit", "checkpoint_interval_records"],
            self.audit.checkpoint_interval_records,
            1,
            1_000_000,
        );
        if let Some(Err(())) = self.audit.hours() {
            p.push(&["audit", "working_hours"], Problem::BadHours);
        }
        if self.audit.offset_minutes().is_none() {
            p.push(&["audit", "utc_offset"], Problem::BadOffset);
        }
        p.range(
            &["audit", "bulk_read_window_mins"],
            self.audit.bulk_read_window_mins.into(),
            1,
            1440,
        );
        p.0
    }
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Reads back a path written by serde_path_to_error (`a.b[2].c`).
fn parse_path(text: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in text.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            out.push(Seg::Key(key.to_owned()));
        }
        for index in rest.split('[') {
            if let Some(Ok(i)) = index.strip_suffix(']').map(str::parse) {
                out.push(Seg::Index(i));
            }
        }
    }
    out
}

#[derive(Default)]
struct Problems(Vec<(Vec<Seg>, Problem)>);

impl Problems {
    fn push(&mut self, keys: &[&str], problem: Problem) {
        let path = keys.iter().map(|k| Seg::Key((*k).to_owned())).collect();
        self.0.push((path, problem));
    }

    fn push_at(&mut self, keys: &[&str], index: usize, problem: Problem) {
        let mut path: Vec<Seg> = keys.iter().map(|k| Seg::Key((*k).to_owned())).collect();
        path.push(Seg::Index(index));
        self.0.push((path, problem));
    }

    fn range(&mut self, keys: &[&str], found: u64, min: u64, max: u64) {
        if found < min || found > max {
            self.push(keys, Problem::OutOfRange { min, max, found });
        }
    }

    fn absolute(&mut self, keys: &[&str], path: &Path) {
        if !path.is_absolute() {
            self.push(keys, Problem::NotAbsolute);
        }
    }

    fn duplicates<T: PartialEq>(&mut self, keys: &[&str], items: &[T]) {
        for (index, item) in items.iter().enumerate() {
            if items.get(..index).is_some_and(|b| b.contains(item)) {
                self.push_at(keys, index, Problem::Duplicate { index });
            }
        }
    }
}

/// The parsed document with spans, to point at a key path.
struct Spans<'a> {
    root: Option<DeValue<'a>>,
}

impl<'a> Spans<'a> {
    fn new(text: &'a str) -> Spans<'a> {
        Spans {
            root: DeTable::parse(text)
                .ok()
                .map(|t| DeValue::Table(t.into_inner())),
        }
    }

    /// The byte offset of the value at `path`, or of the nearest enclosing
    /// value that the file writes (0 when none).
    fn offset(&self, path: &[Seg]) -> usize {
        let Some(root) = &self.root else {
            return 0;
        };
        let mut current = root;
        let mut offset = 0;
        for seg in path {
            let next = match seg {
                Seg::Key(k) => current.get(k.as_str()),
                Seg::Index(i) => current.get(*i),
            };
            match next {
                Some(v) => {
                    // Implicit tables carry an empty span at 0: keep the
                    // parent's offset for them.
                    let span = v.span();
                    if span.end > span.start {
                        offset = span.start;
                    }
                    current = v.get_ref();
                }
                None => break,
            }
        }
        offset
    }
}

/// Line and column of a byte offset.
fn locate(text: &str, offset: usize, path: String) -> Location {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    Location {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
        path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> Vec<Invalid> {
        match Config::from_toml(text) {
            Err(ConfigError::Invalid(v)) => v,
            other => panic!("expected invalid settings, got {other:?}"),
        }
    }

    #[test]
    fn the_voicemail_number_is_checked() {
        assert_eq!(Config::default().voicemail.number, "*97");
        let c = Config::from_toml("[voicemail]\nnumber = \"vm.box-1\"\n").unwrap();
        assert_eq!(c.voicemail.number, "vm.box-1");
        for bad in ["", "*9 7", "a@b", &"9".repeat(33), "#<97>"] {
            let v = invalid(&format!("[voicemail]\nnumber = \"{bad}\"\n"));
            assert_eq!(v[0].location.path, "voicemail.number", "{bad}");
            assert_eq!(v[0].problem, Problem::BadNumber, "{bad}");
        }
    }

    #[test]
    fn recording_settings_are_checked() {
        let c =
            Config::from_toml("[recording]\nusers = [\"bob\"]\nannouncement = \"/etc/a.wav\"\n")
                .unwrap();
        assert_eq!(c.recording.users, ["bob"]);
        assert!(!c.recording.all_calls);
        let v = invalid(
            "[recording]\nusers = [\"bob\", \"\", \"bob\"]\nannouncement = \"a.wav\"\n\
             max_recording_secs = 10\n",
        );
        let found: Vec<(&str, &Problem)> = v
            .iter()
            .map(|i| (i.location.path.as_str(), &i.problem))
            .collect();
        assert_eq!(
            found,
            [
                ("recording.users[1]", &Problem::BadUser { index: 1 }),
                ("recording.users[2]", &Problem::Duplicate { index: 2 }),
                ("recording.announcement", &Problem::NotAbsolute),
                (
                    "recording.max_recording_secs",
                    &Problem::OutOfRange {
                        min: 60,
                        max: 86_400,
                        found: 10
                    }
                ),
            ]
        );
        let (_, message) = syntax("[recording]\nrecord_without_announcement = true\n");
        assert!(message.contains("unknown field"), "{message}");
    }

    fn syntax(text: &str) -> (Location, String) {
        match Config::from_toml(text) {
            Err(ConfigError::Syntax { location, message }) => (location, message),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
        assert!(Config::default().problems().is_empty());
        assert!(Config::default().dangerous_settings().is_empty());
    }

    #[test]
    fn unknown_keys_are_refused_with_their_place() {
        let (loc, msg) = syntax("[registrar]\nmin_expires_secs = 60\nmax_expire = 10\n");
        assert_eq!((loc.line, loc.column), (3, 1), "{loc}");
        assert_eq!(loc.path, "registrar.max_expire");
        assert!(msg.contains("unknown field"), "{msg}");
        let (loc, _) = syntax("[sip]\nudp = true\n");
        assert_eq!(loc.line, 1);
        assert_eq!(loc.path, "sip");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let (loc, msg) = syntax("[admin]\nidle_logoff_secs = \"15m\"\n");
        assert_eq!(
            (loc.line, loc.column, loc.path.as_str()),
            (2, 20, "admin.idle_logoff_secs")
        );
        assert!(msg.contains("invalid type"), "{msg}");
        let (loc, _) = syntax("[tls]\nlisten = [\"127.0.0.1:5061\", \"nowhere\"]\n");
        assert_eq!(loc.path, "tls.listen[1]");
        assert_eq!((loc.line, loc.column), (2, 29));
    }

    #[test]
    fn md5_and_plain_rtp_cannot_be_configured_outside_dangerous() {
        let (loc, msg) = syntax("[digest]\nalgorithms = [\"SHA-256\", \"MD5\"]\n");
        assert_eq!(loc.path, "digest.algorithms[1]");
        assert!(msg.contains("allow_md5_for_legacy_users"), "{msg}");
        let (loc, msg) = syntax("[media]\nsrtp_suites = [\"NULL\"]\n");
        assert_eq!(loc.path, "media.srtp_suites[0]");
        assert!(msg.contains("plain RTP is never offered"), "{msg}");
        let (loc, _) = syntax("[media]\nrtp = true\n");
        assert_eq!(loc.path, "media.rtp");
        let (loc, _) = syntax("[dangerous]\nplain_rtp = true\n");
        assert_eq!(loc.path, "dangerous.plain_rtp");
    }

    #[test]
    fn working_hours_and_offset_are_read_or_refused_with_their_place() {
        let c = Config::from_toml(
            "[audit]\nworking_hours = \"07:30-19:00\"\nutc_offset = \"-05:00\"\n\
             weekdays_only = true\nbulk_reads = 20\nbulk_read_window_mins = 5\n",
        )
        .unwrap();
        let m = c.audit.monitor_config();
        let h = m.working_hours.expect("working hours");
        assert_eq!(
            (
                h.start_minute,
                h.end_minute,
                h.utc_offset_minutes,
                h.weekdays_only
            ),
            (450, 1140, -300, true)
        );
        assert_eq!((m.bulk_reads, m.bulk_read_window_ms), (20, 300_000));
        // Past midnight, and to the end of the day.
        let c = Config::from_toml("[audit]\nworking_hours = \"22:00-06:00\"\n").unwrap();
        let h = c.audit.monitor_config().working_hours.unwrap();
        assert_eq!((h.start_minute, h.end_minute), (1320, 360));
        let c = Config::from_toml("[audit]\nworking_hours = \"08:00-24:00\"\n").unwrap();
        assert_eq!(
            c.audit.monitor_config().working_hours.unwrap().end_minute,
            1440
        );
        // Off by default.
        assert!(
            Config::default()
                .audit
                .monitor_config()
                .working_hours
                .is_none()
        );
        for bad in [
            "7-19",
            "07:00-07:00",
            "07:00",
            "25:00-26:00",
            "07:60-19:00",
            "24:00-06:00",
        ] {
            let v = invalid(&format!("[audit]\nworking_hours = \"{bad}\"\n"));
            assert_eq!(v[0].location.path, "audit.working_hours", "{bad}");
            assert_eq!(v[0].problem, Problem::BadHours, "{bad}");
        }
        for bad in ["05:00", "+5", "-15:00", "+05:00:00", ""] {
            let v = invalid(&format!("[audit]\nutc_offset = \"{bad}\"\n"));
            assert_eq!(v[0].location.path, "audit.utc_offset", "{bad}");
            assert_eq!(v[0].problem, Problem::BadOffset, "{bad}");
        }
        let v = invalid("[audit]\nbulk_read_window_mins = 0\n");
        assert_eq!(v[0].location.path, "audit.bulk_read_window_mins");
    }

    #[test]
    fn every_problem_is_reported_in_file_order() {
        let v = invalid(
            "[admin]\nidle_logoff_secs = 5\n[registrar]\nmin_expires_secs = 600\nmax_expires_secs = 300\n",
        );
        let places: Vec<(u32, &str)> = v
            .iter()
            .map(|i| (i.location.line, i.location.path.as_str()))
            .collect();
        assert_eq!(
            places,
            [
                (2, "admin.idle_logoff_secs"),
                (3, "registrar.default_expires_secs"),
                (5, "registrar.max_expires_secs"),
            ]
        );
        assert_eq!(
            v[0].problem,
            Problem::OutOfRange {
                min: 60,
                max: 86_400,
                found: 5
            }
        );
    }

    #[test]
    fn cross_field_and_list_rules() {
        let v = invalid("[tls]\nrequire_client_certificate = true\n");
        assert_eq!(v[0].location.path, "tls.require_client_certificate");
        let v = invalid("[tls]\nlisten = []\n");
        assert_eq!(v[0].problem, Problem::Empty);
        let v = invalid(
            "[tls]\nlisten = [\"127.0.0.1:5061\"]\n[dangerous]\ntcp_listen = [\"127.0.0.1:5061\"]\nudp_listen = [\"127.0.0.1:5061\"]\n",
        );
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].location.path, "dangerous.tcp_listen[0]");
        let v = invalid("[digest]\nalgorithms = [\"SHA-256\", \"sha-256\"]\n");
        assert_eq!(v[0].problem, Problem::Duplicate { index: 1 });
        let v = invalid("[server]\ndata_dir = \"data\"\n");
        assert_eq!(v[0].problem, Problem::NotAbsolute);
        let v = invalid("[server]\ndomains = [\"pbx.example\", \"bad host\", \"PBX.example\"]\n");
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].problem, Problem::BadDomain { index: 1 });
        assert_eq!(v[1].problem, Problem::Duplicate { index: 2 });
        let v = invalid("[server]\nrealm = \"a\\\"b\"\n");
        assert_eq!(v[0].problem, Problem::BadRealm);
    }

    #[test]
    fn a_missing_key_points_at_its_table() {
        // default_expires_secs is not written: the error points at the
        // table that made it inconsistent.
        let v = invalid("\n[registrar]\nmax_expires_secs = 300\n");
        assert_eq!(v[0].location.path, "registrar.default_expires_secs");
        assert_eq!(v[0].location.line, 2);
    }

    #[test]
    fn dangerous_settings_are_each_reported() {
        let c = Config::from_toml(
            "[dangerous]\nudp_listen = [\"127.0.0.1:5060\"]\ntcp_listen = [\"127.0.0.1:5060\"]\nallow_md5_for_legacy_users = true\n",
        )
        .unwrap();
        let keys: Vec<&str> = c.dangerous_settings().iter().map(|d| d.key).collect();
        assert_eq!(
            keys,
            [
                "dangerous.udp_listen",
                "dangerous.tcp_listen",
                "dangerous.allow_md5_for_legacy_users"
            ]
        );
    }

    #[test]
    fn syntax_errors_locate_the_bad_byte() {
        let (loc, _) = syntax("[server]\nrealm = \"x\n");
        assert_eq!(loc.line, 2);
        assert!(loc.path.is_empty());
    }
}
