//! The admin console's accounts: `<data_dir>/admin/accounts.toml` (mode
//! 0600) holds each account's name, number, role, mailboxes, password hash
//! (a carevox-authz PHC string, never the password), the vault object id
//! of its TOTP secret and the last TOTP step used (so that a code is never
//! accepted twice). The TOTP secrets themselves are vault objects in
//! `admin/secrets`, encrypted under the vault's master key.
//!
//! The file is replaced whole on each change: written to a temporary file,
//! synced, renamed over the old one, and the directory synced.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the accounts could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountsError {
    /// The file could not be read or written.
    #[error("{what} ({path}): {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("accounts.toml: {0}")]
    Invalid(String),
}

/// One admin account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The login name.
    pub name: String,
    /// A number unique among the accounts (the policy's user id).
    pub id: u64,
    /// The role in the access policy.
    pub role: String,
    /// The SIP users whose voicemail this account's care team covers.
    #[serde(default)]
    pub mailboxes: Vec<String>,
    /// The password hash (PHC string of carevox-authz).
    pub password_hash: String,
    /// The vault object holding the TOTP secret.
    pub totp_object: String,
    /// The last TOTP step accepted.
    #[serde(default)]
    pub totp_last_step: Option<u64>,
    /// A disabled account cannot log in.
    #[serde(default)]
    pub disabled: bool,
    /// When it was made (seconds since the Unix epoch).
    pub created_at: u64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsToml {
    #[serde(default)]
    account: Vec<Account>,
}

/// Whether `name` may name an account or a mailbox: 1 to 64 bytes of
/// ASCII letters, digits, `.`, `_`, `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The accounts, as read from and written to their file.
#[derive(Debug)]
pub struct Accounts {
    path: PathBuf,
    accounts: Vec<Account>,
}

impl Accounts {
    /// Reads `path` (a missing file is no account).
    pub fn load(path: &Path) -> Result<Accounts, AccountsError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(AccountsError::Io {
                    what: "read accounts",
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let parsed: AccountsToml =
            toml::from_str(&text).map_err(|e| AccountsError::Invalid(e.message().to_owned()))?;
        for (i, a) in parsed.account.iter().enumerate() {
            if !valid_name(&a.name) || a.mailboxes.iter().any(|m| !valid_name(m)) {
                return Err(AccountsError::Invalid(format!(
                    "account {i}: a name or mailbox is not valid"
                )));
            }
            if parsed
                .account
                .iter()
                .take(i)
                .any(|b| b.name == a.name || b.id == a.id)
            {
                return Err(AccountsError::Invalid(format!(
                    "account {i}: the name or id repeats an earlier account"
                )));
            }
        }
        Ok(Accounts {
            path: path.to_owned(),
            accounts: parsed.account,
        })
    }

    /// Whether there is no account.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The account called `name`.
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The number for a new account.
    pub fn next_id(&self) -> u64 {
        self.accounts
            .iter()
            .map(|a| a.id)
            .max()
            .map_or(1, |m| m.saturating_add(1))
    }

    /// Adds `account` and writes the file; refused if the name is taken.
    pub fn add(&mut self, account: Account) -> Result<bool, AccountsError> {
        if self.get(&account.name).is_some() {
            return Ok(false);
        }
        self.accounts.push(account);
        if let Err(e) = self.save() {
            self.accounts.pop();
            return Err(e);
        }
        Ok(true)
    }

    /// Changes the account `name` with `f` and writes the file; `false`
    /// when there is no such account.
    pub fn update(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Account),
    ) -> Result<bool, AccountsError> {
        let Some(i) = self.accounts.iter().position(|a| a.name == name) else {
            return Ok(false);
        };
        let before = self.accounts.get(i).cloned();
        if let Some(a) = self.accounts.get_mut(i) {
            f(a);
        }
        if let Err(e) = self.save() {
            if let (Some(slot), Some(b)) = (self.accounts.get_mut(i), before) {
                *slot = b;
            }
            return Err(e);
        }
        Ok(true)
    }

    fn save(&self) -> Result<(), AccountsError> {
        let io = |what: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| AccountsError::Io { what, path, source }
        };
        let text = toml::to_string(&AccountsToml {
            account: self.accounts.clone(),
        })
        .map_err(|e| AccountsError::Invalid(e.to_string()))?;
        let tmp = self.path.with_extension("toml.tmp");
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("create accounts", &tmp))?;
        f.write_all(text.as_bytes())
            .map_err(io("write accounts", &tmp))?;
        f.sync_all().map_err(io("sync accounts", &tmp))?;
        fs::rename(&tmp, &self.path).map_err(io("replace accounts", &self.path))?;
        if let Some(dir) = self.path.parent() {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("sync admin directory", dir))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, id: u64) -> Account {
        Account {
            name: name.into(),
            id,
            role: "physician".into(),
            mailboxes: vec!["bob".into()],
            password_hash: "$argon2id$x".into(),
            totp_object: "totp-1".into(),
            totp_last_step: None,
            disabled: false,
            created_at: 1,
        }
    }

    #[test]
    fn accounts_persist_and_names_are_unique() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("accounts.toml");
        let mut a = Accounts::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(a.is_empty());
        assert!(
            a.add(account("dr.lee", 1))
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(
            !a.add(account("dr.lee", 2))
                .unwrap_or_else(|e| panic!("{e}"))
        );
        assert!(
            a.update("dr.lee", |x| x.disabled = true)
                .unwrap_or_else(|e| panic!("{e}"))
        );
        let b = Accounts::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.get("dr.lee").map(|x| x.disabled), Some(true));
        assert_eq!(b.next_id(), 2);
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        fs::write(&path, text.replace("dr.lee", "dr lee")).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            Accounts::load(&path),
            Err(AccountsError::Invalid(_))
        ));
        assert!(!format!("{:?}", account("dr.lee", 1)).contains("dr.lee"));
    }
}
