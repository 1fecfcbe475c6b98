//! The PBX's data directory: what `serve` opens, creating what is missing.
//!
//! ```text
//! <data_dir>/
//!   vault/            voicemail (carevox-vault, encrypted per object)
//!   audit/            the audit log (carevox-audit) and its signing key
//!   audit.pub         the log's public key (hex), for `carevox-audit verify`
//!   nonce.key         the digest nonce secret (32 random bytes)
//!   users.toml        the users (digest HA1 values and voicemail PIN
//!                     hashes, never passwords or PINs)
//!   admin/            the admin console's accounts (see [`crate::admin`])
//!     accounts.toml   names, roles, password hashes (never passwords)
//!     secrets/        each account's TOTP secret, a vault object
//!   admin.sock        the admin console's control socket, while `serve` runs
//! <master_key_file>   the vault's key-encryption key (kept outside the
//!                     data directory, so that a copy of one is not enough)
//! ```
//!
//! Every file written here is created owner-only (mode 0600) and every
//! directory 0700. Back up the vault and the audit log with the data
//! directory, and the master key and the audit signing key apart from it.
//!
//! `users.toml` holds one `[[user]]` table per user:
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! # hex of SHA-256("alice:<realm>:<password>"), and of SHA-512/256
//! ha1_sha256 = "..."
//! ha1_sha512_256 = "..."
//! # "refused" (default), "offered" or "only": MD5 for a legacy phone,
//! # honoured only with [dangerous] allow_md5_for_legacy_users
//! md5 = "refused"
//! ha1_md5 = "..."
//! # optional: the voicemail PIN's hash, a PHC string (see crate::pin)
//! voicemail_pin = "$argon2id$v=19$m=19456,t=2,p=1$...$..."
//! ```
//!
//! [`UsersFile::entry`] makes such an entry from a password, and
//! [`UsersFile::entry_with_pin`] one with a voicemail PIN too. A
//! `voicemail_pin` that is not a hash [`VoicemailPin::from_phc`] accepts
//! refuses the whole file.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use carevox::audit::monitor::Alert;
use carevox::audit::{AuditLog, AuthMethod, EventType, LogConfig, ObjectKind, Signer, Timestamp};
use carevox::audit_sink::{AlertHandler, AuditSink, Monitored, alert_kind, alert_seq};
use carevox::redact::{Pii, Secret};
use carevox::sip::auth::{Algorithm, Password, UserSecret};
use carevox::vault::{Backend, FsBackend, KeyProvider, LocalKeyFile, Vault};
use carevox::vault_audit::{Clock, VaultActor, VaultAuditConfig, VaultAuditHook};
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::pin::{PinError, VoicemailPin};
use crate::registrar::{DirectoryUser, Md5Use, UserDirectory};

/// How far behind the last audit record a record may arrive and still be
/// appended (at the last one's `recorded` time, its own `occurred` time
/// kept): the server's task, the admin console and the vault hooks each
/// stamp a record with whole seconds before appending it, so a record
/// stamped just before a second turns can reach the log just after one
/// stamped just after it. Further behind is a clock stepped back, refused.
pub const REORDER_WINDOW_MILLIS: u64 = 5_000;

/// Why the data directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file or directory could not be read or written.
    #[error("{what} ({path}): {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A key file has the wrong length.
    #[error("{path} must hold exactly 32 bytes")]
    KeyLength {
        /// The file.
        path: PathBuf,
    },
    /// The vault's master key could not be opened or made.
    #[error("vault master key: {0}")]
    VaultKey(#[from] carevox::vault::KeyError),
    /// The audit log could not be opened.
    #[error("audit log: {0}")]
    Audit(#[from] carevox::audit::Error),
    /// `users.toml` is not valid.
    #[error("users.toml: {0}")]
    Users(String),
    /// A user's `voicemail_pin` in `users.toml` is not a PIN hash that
    /// can be verified.
    #[error("users.toml: user {index}: voicemail_pin: {source}")]
    VoicemailPin {
        /// The user's position in the file, from 0.
        index: usize,
        /// What is wrong with it.
        source: PinError,
    },
    /// The audit log holds records but its signing key is missing: a new
    /// key could not continue the log (its checkpoints are signed with
    /// the old one). Restore the key from its backup.
    #[error(
        "{path} is missing but the audit log beside it holds records: restore the signing key from its backup"
    )]
    SigningKeyMissing {
        /// The missing key file.
        path: PathBuf,
    },
    /// The random source failed.
    #[error("the random source failed")]
    Random,
}

fn io<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> StoreError + 'p {
    move |source| StoreError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Makes `path` a directory only its owner may enter (creating it, or
/// narrowing a wider mode it was made with).
pub(crate) fn private_dir(path: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(io("create directory", path))?;
    tighten(path, 0o700)
}

/// Narrows `path`'s mode to `mode` if it is wider (a file or directory an
/// operator made by hand with the default umask).
fn tighten(path: &Path, mode: u32) -> Result<(), StoreError> {
    let meta = fs::metadata(path).map_err(io("read permissions", path))?;
    if meta.permissions().mode() & 0o777 & !mode != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(io("narrow permissions", path))?;
    }
    Ok(())
}

/// Whether the directory `path` holds anything.
fn has_entries(path: &Path) -> Result<bool, StoreError> {
    let mut entries = fs::read_dir(path).map_err(io("list directory", path))?;
    Ok(entries.next().is_some())
}

/// Writes the audit log's public key `hex` to `path` (owner-only, like
/// every file here) unless it already holds it; replaced by a rename, so
/// a reader never sees half a key.
fn write_public_key(path: &Path, hex: &str) -> Result<(), StoreError> {
    let line = format!("{hex}\n");
    match fs::read_to_string(path) {
        Ok(current) if current == line => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("read public key", path)(e)),
    }
    let tmp = path.with_extension("pub.tmp");
    // A leftover of a crash; if it cannot be removed, creating it fails
    // below with the reason.
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("create public key", &tmp))?;
    f.write_all(line.as_bytes())
        .map_err(io("write public key", &tmp))?;
    f.sync_all().map_err(io("sync public key", &tmp))?;
    fs::rename(&tmp, path).map_err(io("replace public key", path))
}

/// Reads a 32-byte key file, or makes one with `rng` (mode 0600).
fn key_file(path: &Path, rng: &dyn SecureRandom) -> Result<Secret<[u8; 32]>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => {
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::KeyLength {
                    path: path.to_owned(),
                })?;
            Ok(Secret::new(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rng.fill(&mut key).map_err(|_| StoreError::Random)?;
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io("create key file", path))?;
            f.write_all(&key).map_err(io("write key file", path))?;
            f.sync_all().map_err(io("sync key file", path))?;
            Ok(Secret::new(key))
        }
        Err(e) => Err(io("read key file", path)(e)),
    }
}

/// How the vault's audit records name its objects: voicemail, and call
/// recordings by their id prefix.
fn vault_audit_config() -> VaultAuditConfig {
    VaultAuditConfig::voicemail("carevox-pbx").with_prefix(
        crate::recording::RECORDING_PREFIX,
        EventType::RecordingAccess,
        ObjectKind::Recording,
    )
}

/// The opened data directory.
pub struct Store {
    /// The voicemail vault, auditing every operation.
    pub vault: Arc<Vault>,
    /// The vault's audit hook: set its actor before acting for someone.
    pub vault_hook: Arc<VaultAuditHook<dyn AuditSink>>,
    /// The audit log (verify, export, sync); append through
    /// [`Store::sink`].
    pub audit: Arc<AuditLog>,
    /// Where every record of the PBX goes: the audit log, watched by the
    /// monitoring rules when `[audit] monitor` is on.
    pub sink: Arc<dyn AuditSink>,
    /// The digest nonce secret.
    pub nonce_secret: Secret<[u8; 32]>,
    /// The users.
    pub users: UsersFile,
    /// The data directory.
    pub root: PathBuf,
    /// The same voicemail objects through a vault of their own, whose
    /// audit hook names the admin acting; the server's hook keeps naming
    /// the voicemail service, so that a message recorded while an admin
    /// reads another is never put down to the admin.
    pub admin_vault: Arc<Vault>,
    /// The hook of [`Store::admin_vault`].
    pub admin_vault_hook: Arc<VaultAuditHook<dyn AuditSink>>,
    /// The admin accounts' TOTP secrets (`admin/secrets`, under the
    /// vault's master key).
    pub admin_secrets: Arc<Vault>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("users", &self.users.users.len())
            .finish_non_exhaustive()
    }
}

/// Logs a monitoring alert by kind and record number only (alerts name
/// people; the record is in the audit log).
pub fn log_alert(alert: &Alert) {
    tracing::warn!(
        alert = alert_kind(alert),
        seq = alert_seq(alert),
        "audit monitor alert"
    );
}

/// The server's clock in whole seconds (as the audit log's milliseconds),
/// like every other record of the PBX: a finer time on one record would put
/// the next, stamped in whole seconds, before it, and the log refuses a
/// record whose time goes backwards.
pub fn server_clock() -> Clock {
    Arc::new(|| {
        #[allow(clippy::disallowed_methods)] // the server's clock
        let now = std::time::SystemTime::now();
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Timestamp(secs.saturating_mul(1000))
    })
}

impl Store {
    /// Opens the data directory and master key of `config`, creating what
    /// is missing. `now` (unix seconds) stamps the vault's audit actor; the
    /// voicemail service's vault records read the server's clock
    /// ([`server_clock`]).
    pub fn open(config: &Config, rng: &dyn SecureRandom, now: u64) -> Result<Store, StoreError> {
        Store::open_with(config, rng, now, server_clock(), Box::new(log_alert))
    }

    /// As [`Store::open`], the voicemail service's vault records reading
    /// `clock` (a test's, that the rest of its records follow) and the
    /// monitor's alerts going to `on_alert`.
    pub fn open_with(
        config: &Config,
        rng: &dyn SecureRandom,
        now: u64,
        clock: Clock,
        on_alert: AlertHandler,
    ) -> Result<Store, StoreError> {
        let root = &config.server.data_dir;
        private_dir(root)?;
        let audit_dir = root.join("audit");
        private_dir(&audit_dir)?;
        let signing_key = audit_dir.join("signing.key");
        if !signing_key.exists() && has_entries(&audit_dir)? {
            return Err(StoreError::SigningKeyMissing { path: signing_key });
        }
        let seed = key_file(&signing_key, rng)?;
        let signer = Signer::from_seed(seed.expose())?;
        let log_config = LogConfig {
            checkpoint_every_records: config.audit.checkpoint_interval_records,
            reorder_window_millis: REORDER_WINDOW_MILLIS,
            ..LogConfig::default()
        };
        let (log, _report) = AuditLog::open(&audit_dir, signer, log_config)?;
        let audit = Arc::new(log);
        write_public_key(&root.join("audit.pub"), &audit.verifying_key().to_hex())?;
        let sink: Arc<dyn AuditSink> = if config.audit.monitor {
            Arc::new(Monitored::new(
                audit.clone(),
                config.audit.monitor_config(),
                on_alert,
            ))
        } else {
            audit.clone()
        };

        let master = &config.server.master_key_file;
        if let Some(parent) = master.parent() {
            private_dir(parent)?;
        }
        let keys: Arc<dyn KeyProvider> = Arc::new(if master.exists() {
            LocalKeyFile::open(master)?
        } else {
            LocalKeyFile::create(master, rng)?
        });
        let vault_dir = root.join("vault");
        let backend: Arc<dyn Backend> =
            Arc::new(FsBackend::open(&vault_dir).map_err(io("open vault", &vault_dir))?);
        // The voicemail service's actor is set once: each of its records
        // carries the time of its operation from the server's clock.
        let hook = Arc::new(
            VaultAuditHook::new(
                sink.clone(),
                vault_audit_config(),
                VaultActor::new(
                    "voicemail-service",
                    AuthMethod::None,
                    Timestamp(now.saturating_mul(1000)),
                ),
            )
            .with_clock(clock),
        );
        let vault = Arc::new(Vault::new(backend.clone(), keys.clone()).with_hook(hook.clone()));
        // The console sets its actor, with the time, before each command.
        let admin_hook = Arc::new(VaultAuditHook::new(
            sink.clone(),
            vault_audit_config(),
            VaultActor::new(
                "admin-console",
                AuthMethod::None,
                Timestamp(now.saturating_mul(1000)),
            ),
        ));
        let admin_vault = Arc::new(Vault::new(backend, keys.clone()).with_hook(admin_hook.clone()));
        let admin_dir = root.join("admin");
        private_dir(&admin_dir)?;
        let secrets_dir = admin_dir.join("secrets");
        let secrets_backend =
            FsBackend::open(&secrets_dir).map_err(io("open admin secrets", &secrets_dir))?;
        let admin_secrets = Arc::new(Vault::new(Arc::new(secrets_backend), keys));
        let nonce_secret = key_file(&root.join("nonce.key"), rng)?;
        let users = UsersFile::load(&root.join("users.toml"))?;
        Ok(Store {
            vault,
            vault_hook: hook,
            audit,
            sink,
            nonce_secret,
            users,
            root: root.clone(),
            admin_vault,
            admin_vault_hook: admin_hook,
            admin_secrets,
        })
    }
}

/// `md5` of a user entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Md5Entry {
    #[default]
    Refused,
    Offered,
    Only,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    ha1_sha256: Option<String>,
    ha1_sha512_256: Option<String>,
    ha1_md5: Option<String>,
    #[serde(default)]
    md5: Md5Entry,
    voicemail_pin: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersToml {
    #[serde(default)]
    user: Vec<UserEntry>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The users of `users.toml`: names and HA1 values, never passwords.
#[derive(Debug, Default)]
pub struct UsersFile {
    users: HashMap<Pii<String>, DirectoryUser>,
}

impl UsersFile {
    /// Reads `path`; a missing file is no users.
    /// The file holds password equivalents: its mode is narrowed to 0600.
    pub fn load(path: &Path) -> Result<UsersFile, StoreError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => {
                tighten(path, 0o600)?;
                t
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io("read users", path)(e)),
        };
        Self::parse(&text)
    }

    /// Reads the text of a `users.toml`.
    pub fn parse(text: &str) -> Result<UsersFile, StoreError> {
        let parsed: UsersToml =
            toml::from_str(text).map_err(|e| StoreError::Users(e.message().to_owned()))?;
        let mut users = HashMap::new();
        for (i, u) in parsed.user.into_iter().enumerate() {
            let bad = |what: &str| StoreError::Users(format!("user {i}: {what}"));
            if u.name.is_empty()
                || u.name
                    .chars()
                    .any(|c| c.is_control() || c == ':' || c == '@')
            {
                return Err(bad(
                    "the name is empty or holds ':', '@' or a control character",
                ));
            }
            let mut secrets = Vec::new();
            for (hex, algorithm, len) in [
                (&u.ha1_sha256, Algorithm::Sha256, 64),
                (&u.ha1_sha512_256, Algorithm::Sha512_256, 64),
                (&u.ha1_md5, Algorithm::Md5, 32),
            ] {
                if let Some(h) = hex {
                    if !is_hex(h, len) {
                        return Err(bad("an HA1 is not hex of its hash's length"));
                    }
                    secrets.push(UserSecret::ha1(algorithm, h));
                }
            }
            if secrets.is_empty() {
                return Err(bad("no HA1 value"));
            }
            let md5 = match u.md5 {
                Md5Entry::Refused => Md5Use::Refused,
                Md5Entry::Offered => Md5Use::Offered,
                Md5Entry::Only => Md5Use::Only,
            };
            if md5 != Md5Use::Refused && u.ha1_md5.is_none() {
                return Err(bad("md5 is allowed but there is no ha1_md5"));
            }
            let voicemail_pin = u
                .voicemail_pin
                .map(VoicemailPin::from_phc)
                .transpose()
                .map_err(|source| StoreError::VoicemailPin { index: i, source })?;
            let user = DirectoryUser {
                secrets,
                md5,
                voicemail_pin,
            };
            if users.insert(Pii::new(u.name), user).is_some() {
                return Err(bad("the name repeats an earlier user"));
            }
        }
        Ok(UsersFile { users })
    }

    /// The `[[user]]` entry of `name` with `password` in `realm` (SHA-256
    /// and SHA-512-256 HA1; MD5 too when `md5` is not refused), as text
    /// to append to `users.toml`.
    pub fn entry(
        name: &str,
        realm: &str,
        password: &Password,
        md5: Md5Use,
    ) -> Result<String, StoreError> {
        Self::entry_with_pin(name, realm, password, md5, None)
    }

    /// As [`UsersFile::entry`], with the hash of the user's voicemail PIN
    /// when there is one (made with [`VoicemailPin::hash`], which refuses
    /// a PIN that is not 4 to 12 digits).
    pub fn entry_with_pin(
        name: &str,
        realm: &str,
        password: &Password,
        md5: Md5Use,
        voicemail_pin: Option<&VoicemailPin>,
    ) -> Result<String, StoreError> {
        let ha1 = |algorithm| match UserSecret::ha1_from_password(algorithm, name, realm, password)
        {
            UserSecret::Ha1 { hex, .. } => Some(hex.expose().clone()),
            _ => None,
        };
        let entry = UserEntry {
            name: name.to_owned(),
            ha1_sha256: ha1(Algorithm::Sha256),
            ha1_sha512_256: ha1(Algorithm::Sha512_256),
            ha1_md5: if md5 == Md5Use::Refused {
                None
            } else {
                ha1(Algorithm::Md5)
            },
            md5: match md5 {
                Md5Use::Offered => Md5Entry::Offered,
                Md5Use::Only => Md5Entry::Only,
                _ => Md5Entry::Refused,
            },
            voicemail_pin: voicemail_pin.map(|p| p.phc().to_owned()),
        };
        let doc = UsersToml { user: vec![entry] };
        toml::to_string(&doc).map_err(|e| StoreError::Users(e.to_string()))
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there is no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

impl UserDirectory for UsersFile {
    fn user(&self, username: &str) -> Option<DirectoryUser> {
        self.users.get(&Pii::new(username.to_owned())).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_err(text: &str) -> String {
        match UsersFile::parse(text) {
            Err(StoreError::Users(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_entry_made_from_a_password_reads_back_as_the_same_secret() {
        let password = Password::new("pw");
        let text = UsersFile::entry("alice", "clinic.test", &password, Md5Use::Refused)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!text.contains("pw\""));
        let users = UsersFile::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(users.len(), 1);
        let alice = users.user("alice").unwrap_or_else(|| panic!("no alice"));
        assert_eq!(alice.md5, Md5Use::Refused);
        assert_eq!(alice.secrets.len(), 2);
        let UserSecret::Ha1 { hex, .. } =
            UserSecret::ha1_from_password(Algorithm::Sha256, "alice", "clinic.test", &password)
        else {
            panic!("not an HA1")
        };
        assert!(text.contains(hex.expose().as_str()));
        assert!(users.user("bob").is_none());
        // A legacy entry carries its MD5 HA1.
        let legacy = UsersFile::entry("old", "clinic.test", &password, Md5Use::Only)
            .unwrap_or_else(|e| panic!("{e}"));
        let users = UsersFile::parse(&legacy).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(users.user("old").map(|u| u.md5), Some(Md5Use::Only));
    }

    #[test]
    fn bad_entries_are_refused_with_their_index() {
        let hex64 = "a".repeat(64);
        assert!(parse_err("[[user]]\nname = \"a\"\n").contains("user 0: no HA1"));
        assert!(parse_err("[[user]]\nname = \"a\"\nha1_sha256 = \"xyz\"\n").contains("not hex"));
        assert!(
            parse_err(&format!(
                "[[user]]\nname = \"a\"\nha1_sha256 = \"{hex64}\"\n[[user]]\nname = \"a\"\nha1_sha256 = \"{hex64}\"\n"
            ))
            .contains("user 1: the name repeats")
        );
        assert!(
            parse_err(&format!(
                "[[user]]\nname = \"a\"\nha1_sha256 = \"{hex64}\"\nmd5 = \"only\"\n"
            ))
            .contains("no ha1_md5")
        );
        assert!(
            parse_err(&format!(
                "[[user]]\nname = \"a:b\"\nha1_sha256 = \"{hex64}\"\n"
            ))
            .contains("the name")
        );
        assert!(
            !parse_err(&format!(
                "[[user]]\nname = \"a\"\nha1_sha256 = \"{hex64}\"\npassword = \"x\"\n"
            ))
            .is_empty()
        );
        assert_eq!(UsersFile::parse("").map(|u| u.len()).ok(), Some(0));
    }

    fn small_hasher() -> carevox::authz::password::PasswordHasher {
        use carevox::authz::password::{Argon2Params, HashAlgorithm, PasswordHasher};
        PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_entry_with_a_voicemail_pin_reads_back_and_verifies_only_that_pin() {
        #[allow(clippy::disallowed_methods)] // the test draws real randomness
        let rng = ring::rand::SystemRandom::new();
        let password = Password::new("pw");
        let pin =
            VoicemailPin::hash("2468", &small_hasher(), &rng).unwrap_or_else(|e| panic!("{e}"));
        let text =
            UsersFile::entry_with_pin("bob", "clinic.test", &password, Md5Use::Refused, Some(&pin))
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            text.contains(&format!("voicemail_pin = \"{}\"", pin.phc())),
            "{text}"
        );
        let users = UsersFile::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let bob = users.user("bob").unwrap_or_else(|| panic!("no bob"));
        let stored = bob.voicemail_pin.unwrap_or_else(|| panic!("no PIN"));
        assert!(stored.verify("2468"));
        assert!(!stored.verify("2467"));
        assert!(!stored.verify("24689"));
        // Without a PIN the entry has none.
        let plain = UsersFile::entry("carol", "clinic.test", &password, Md5Use::Refused)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!plain.contains("voicemail_pin"), "{plain}");
        let users = UsersFile::parse(&plain).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            users
                .user("carol")
                .is_some_and(|u| u.voicemail_pin.is_none())
        );
        // A PIN that is not 4 to 12 digits never makes it into an entry.
        for bad in ["123", "1234567890123", "12a4", "12 4"] {
            assert_eq!(
                VoicemailPin::hash(bad, &small_hasher(), &rng).err(),
                Some(PinError::Invalid),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_voicemail_pin_that_is_no_hash_refuses_the_file_with_its_index() {
        let hex64 = "a".repeat(64);
        let ok = format!("[[user]]\nname = \"a\"\nha1_sha256 = \"{hex64}\"\n");
        for garbage in [
            "2468",
            "",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$",
            "$md5$xyz",
            "$argon2id$v=19$m=9999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            let text = format!(
                "{ok}[[user]]\nname = \"b\"\nha1_sha256 = \"{hex64}\"\nvoicemail_pin = \"{garbage}\"\n"
            );
            match UsersFile::parse(&text) {
                Err(e @ StoreError::VoicemailPin { index: 1, .. }) => {
                    assert!(e.to_string().contains("user 1: voicemail_pin"), "{e}");
                    if !garbage.is_empty() {
                        assert!(!e.to_string().contains(garbage), "{e}");
                    }
                }
                other => panic!("{garbage:?}: {other:?}"),
            }
        }
        // Not a string at all.
        let not_a_string = parse_err(&format!("{ok}voicemail_pin = 2468\n"));
        assert!(not_a_string.contains("string"), "{not_a_string}");
    }

    #[test]
    fn debug_of_the_users_shows_no_pin_hash() {
        use carevox::redact::debug_leak;
        #[allow(clippy::disallowed_methods)] // the test draws real randomness
        let rng = ring::rand::SystemRandom::new();
        let pin =
            VoicemailPin::hash("97531", &small_hasher(), &rng).unwrap_or_else(|e| panic!("{e}"));
        let phc = pin.phc().to_owned();
        let text = UsersFile::entry_with_pin(
            "dave",
            "clinic.test",
            &Password::new("pw"),
            Md5Use::Refused,
            Some(&pin),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let users = UsersFile::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let dave = users.user("dave").unwrap_or_else(|| panic!("no dave"));
        assert!(dave.voicemail_pin.is_some());
        let salt_and_hash: Vec<&str> = phc.rsplit('$').take(2).collect();
        let mut needles = vec![phc.as_str(), "97531", "dave"];
        needles.extend(salt_and_hash);
        assert_eq!(debug_leak(&users, &needles), None);
        assert_eq!(debug_leak(&dave, &needles), None);
        assert_eq!(debug_leak(&pin, &needles), None);
    }

    fn config_in(dir: &Path) -> Config {
        Config::from_toml(&format!(
            "[server]\nrealm = \"clinic.test\"\ndomains = [\"pbx.test\"]\n\
             data_dir = \"{}\"\nmaster_key_file = \"{}\"\n",
            dir.join("data").display(),
            dir.join("keys/vault.key").display(),
        ))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_public_key_is_published_and_a_lost_signing_key_is_named() {
        use carevox::audit::{
            Action, EventType, Outcome, Record, VerifyOptions, VerifyingKey, verify_log,
        };
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = config_in(dir.path());
        #[allow(clippy::disallowed_methods)] // the test draws real randomness
        let rng = ring::rand::SystemRandom::new();
        let data = dir.path().join("data");
        {
            let store = Store::open(&config, &rng, 1_800_000_000).unwrap_or_else(|e| panic!("{e}"));
            let record = Record::new(
                EventType::ConfigurationChange,
                Action::Execute,
                Outcome::Success,
                Timestamp(1_800_000_000_000),
                "carevox-pbx",
                "carevox-pbx",
            );
            store
                .audit
                .append(&record)
                .unwrap_or_else(|e| panic!("{e}"));
            store
                .audit
                .checkpoint(Timestamp(1_800_000_000_000))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // Anyone holding audit.pub alone verifies the log.
        let hex = fs::read_to_string(data.join("audit.pub")).unwrap_or_else(|e| panic!("{e}"));
        let key = VerifyingKey::from_hex(hex.trim()).unwrap_or_else(|e| panic!("{e}"));
        let report = verify_log(data.join("audit"), &key, VerifyOptions::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(report.damage.is_none(), "{report:?}");
        assert_eq!(
            fs::metadata(data.join("audit.pub"))
                .map(|m| m.permissions().mode() & 0o777)
                .ok(),
            Some(0o600)
        );
        // Opening again keeps the same key and file.
        drop(Store::open(&config, &rng, 1_800_000_001).unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            fs::read_to_string(data.join("audit.pub")).ok().as_deref(),
            Some(hex.as_str())
        );
        // Without its signing key the log is not continued under a new one.
        fs::remove_file(data.join("audit/signing.key")).unwrap_or_else(|e| panic!("{e}"));
        match Store::open(&config, &rng, 1_800_000_002) {
            Err(e @ StoreError::SigningKeyMissing { .. }) => {
                assert!(e.to_string().contains("restore the signing key"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!data.join("audit/signing.key").exists());
    }
}
