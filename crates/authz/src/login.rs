//! Login sessions: what a user holds after authenticating.
//!
//! A [`SessionStore`] issues a random [`SessionToken`] (256 bits from the
//! caller's CSPRNG, base64url) at login and keeps, under the SHA-256 of the
//! token, who logged in, when, and with which [`AuthMethod`]s. Every request
//! presents the token to [`SessionStore::touch`], which refuses it once the
//! session has been idle for `idle_timeout` (automatic logoff, HIPAA
//! 164.312(a)(2)(iii)) or has lived for `absolute_lifetime`, whatever the
//! activity, and otherwise records the activity. [`SessionStore::logoff`]
//! ends a session at once. Time is an argument (seconds since the Unix epoch).
//!
//! The store never holds a token, only its digest, so a dump of its memory
//! does not yield live tokens; lookup by digest means the comparison an
//! attacker can time is on the digest, never on the token. The token type is
//! zeroized on drop and redacted in `Debug`; the [`SessionId`] in a
//! [`SessionInfo`] is a truncated digest, safe to write to logs and the audit
//! trail.
//!
//! [`SessionInfo::is_mfa`] tells the policy layer whether the session was
//! authenticated with two kinds of factor (e.g. password and TOTP), as
//! needed for access to ePHI; [`SessionStore::add_method`] records a second
//! factor given later (step-up).
//!
//! ```
//! use carevox_authz::login::{AuthMethod, SessionError, SessionPolicy, SessionStore};
//! use ring::rand::SystemRandom;
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), SessionError> {
//! let store = SessionStore::new(SessionPolicy {
//!     idle_timeout: Duration::from_secs(15 * 60),
//!     ..SessionPolicy::default()
//! });
//! let t = 1_700_000_000;
//! let (token, info) = store.create(&SystemRandom::new(), "u-1042", &[AuthMethod::Password], t)?;
//! assert!(!info.is_mfa());
//! let info = store.add_method(&token, AuthMethod::Totp, t + 10)?;
//! assert!(info.is_mfa());
//!
//! store.touch(&token, t + 10 * 60)?; // activity keeps it alive
//! assert_eq!(store.touch(&token, t + 26 * 60), Err(SessionError::IdleTimeout));
//! assert_eq!(store.touch(&token, t + 26 * 60), Err(SessionError::NotFound)); // gone
//! # Ok(())
//! # }
//! ```

use core::fmt;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use carevox_redact::{Pii, Secret};
use ring::digest;
use ring::rand::SecureRandom;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::secret::{RandomError, ct_eq, fill};

/// Random bytes in a session token.
pub const TOKEN_BYTES: usize = 32;

/// Characters of an encoded session token.
pub const TOKEN_CHARS: usize = 43;

/// Errors of login sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// No such session: never issued, logged off, or already expired.
    #[error("no such session")]
    NotFound,
    /// The session was idle too long and is now logged off.
    #[error("the session was idle too long and has been logged off")]
    IdleTimeout,
    /// The session reached its absolute lifetime and is now logged off.
    #[error("the session reached its maximum lifetime and has been logged off")]
    LifetimeExceeded,
    /// The store holds its maximum number of live sessions.
    #[error("the session store is full ({capacity} sessions)")]
    StoreFull {
        /// The store's capacity.
        capacity: usize,
    },
    /// A session needs at least one authentication method.
    #[error("a session needs at least one authentication method")]
    NoMethod,
    /// The token text is not a token this store issues.
    #[error("a session token is {TOKEN_CHARS} base64url characters")]
    MalformedToken,
    /// The caller's random generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The kind of factor an authentication method proves (NIST SP 800-63B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Factor {
    /// Something the user knows (a password).
    Knowledge,
    /// Something the user has (an authenticator app, a code sheet).
    Possession,
    /// Something the user is (a biometric), verified elsewhere.
    Inherence,
}

/// How the user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A memorised password.
    Password,
    /// A TOTP code (RFC 6238).
    Totp,
    /// A single-use recovery code (a look-up secret).
    RecoveryCode,
    /// A device-bound credential, e.g. a WebAuthn key, verified by the caller.
    HardwareKey,
    /// A biometric verified on a trusted device by the caller.
    Biometric,
}

impl AuthMethod {
    /// The factor the method proves.
    #[must_use]
    pub fn factor(self) -> Factor {
        match self {
            Self::Password => Factor::Knowledge,
            Self::Totp | Self::RecoveryCode | Self::HardwareKey => Factor::Possession,
            Self::Biometric => Factor::Inherence,
        }
    }

    /// A short name for logs and audit records.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery-code",
            Self::HardwareKey => "hardware-key",
            Self::Biometric => "biometric",
        }
    }
}

/// A session's bearer token: zeroized on drop, redacted in `Debug`. Send it
/// to the client (e.g. in a `Secure; HttpOnly` cookie) and never log it.
#[derive(Debug, Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionToken(Secret<String>);

impl PartialEq for SessionToken {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(self.0.expose().as_bytes(), other.0.expose().as_bytes())
    }
}

impl Eq for SessionToken {}

impl SessionToken {
    /// Parses a token presented by a client, checking only its shape.
    ///
    /// # Errors
    /// [`SessionError::MalformedToken`] unless it is 43 base64url characters.
    pub fn parse(text: &str) -> Result<Self, SessionError> {
        if text.len() != TOKEN_CHARS {
            return Err(SessionError::MalformedToken);
        }
        let mut raw = Zeroizing::new([0u8; TOKEN_BYTES]);
        Base64UrlUnpadded::decode(text, raw.as_mut()).map_err(|_| SessionError::MalformedToken)?;
        Ok(Self(Secret::new(text.to_owned())))
    }

    /// The token text, to hand to the client.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    fn digest(&self) -> [u8; 32] {
        let d = digest::digest(&digest::SHA256, self.0.expose().as_bytes());
        let mut out = [0u8; 32];
        for (o, b) in out.iter_mut().zip(d.as_ref()) {
            *o = *b;
        }
        out
    }
}

/// A session's public identifier: the first 16 bytes of the token's
/// SHA-256, in hex. Safe to log and to put in audit records; it cannot be
/// turned back into the token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 16]);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

// Not a redaction: the id is public by design (a digest of the token).
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// A snapshot of a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The public identifier, for logs and audit.
    pub id: SessionId,
    /// The user, as the caller identified them (use an opaque id, not a
    /// name); held as [`Pii`] so that `Debug` never shows it.
    pub user_id: Pii<String>,
    /// When the session was created.
    pub created_at: u64,
    /// The last activity.
    pub last_seen_at: u64,
    /// The methods the user authenticated with, in order, without repeats.
    pub methods: Vec<AuthMethod>,
    /// The session is logged off at this time unless there is activity first.
    pub idle_deadline: u64,
    /// The session is logged off at this time whatever the activity.
    pub absolute_deadline: u64,
}

impl SessionInfo {
    /// Whether the methods prove at least two different kinds of factor
    /// (multi-factor authentication).
    #[must_use]
    pub fn is_mfa(&self) -> bool {
        let mut first: Option<Factor> = None;
        for m in &self.methods {
            match first {
                None => first = Some(m.factor()),
                Some(f) if f != m.factor() => return true,
                Some(_) => {}
            }
        }
        false
    }

    /// Whether `method` was used.
    #[must_use]
    pub fn used(&self, method: AuthMethod) -> bool {
        self.methods.contains(&method)
    }
}

/// Why a session ended, as reported by [`SessionStore::purge_expired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// Idle for longer than the idle timeout (automatic logoff).
    IdleTimeout,
    /// Older than the absolute lifetime.
    LifetimeExceeded,
}

/// A session that ended without an explicit logoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    /// Its public identifier.
    pub id: SessionId,
    /// Its user, held as [`Pii`] so that `Debug` never shows it.
    pub user_id: Pii<String>,
    /// Why it ended.
    pub reason: EndReason,
}

/// Limits of a [`SessionStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionPolicy {
    /// Logged off after this long without activity.
    pub idle_timeout: Duration,
    /// Logged off after this long whatever the activity.
    pub absolute_lifetime: Duration,
    /// The most live sessions in the store.
    pub capacity: usize,
    /// The most live sessions per user; a new one ends the user's least
    /// recently active session.
    pub max_per_user: usize,
}

impl Default for SessionPolicy {
    /// 15 minutes idle, 12 hours absolute, 100,000 sessions, 8 per user.
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(15 * 60),
            absolute_lifetime: Duration::from_secs(12 * 3600),
            capacity: 100_000,
            max_per_user: 8,
        }
    }
}

#[derive(Debug)]
struct Entry {
    digest: [u8; 32],
    user_id: String,
    created_at: u64,
    last_seen_at: u64,
    methods: Vec<AuthMethod>,
}

/// The sessions, by token digest, with an index by user so that per-user
/// limits and logoffs do not scan the whole store.
#[derive(Debug, Default)]
struct Table {
    by_digest: HashMap<[u8; 32], Entry>,
    by_user: HashMap<String, Vec<[u8; 32]>>,
}

impl Table {
    fn len(&self) -> usize {
        self.by_digest.len()
    }

    fn insert(&mut self, entry: Entry) {
        self.by_user
            .entry(entry.user_id.clone())
            .or_default()
            .push(entry.digest);
        self.by_digest.insert(entry.digest, entry);
    }

    fn remove(&mut self, digest: &[u8; 32]) -> Option<Entry> {
        let entry = self.by_digest.remove(digest)?;
        if let Some(keys) = self.by_user.get_mut(&entry.user_id) {
            keys.retain(|k| k != digest);
            if keys.is_empty() {
                self.by_user.remove(&entry.user_id);
            }
        }
        Some(entry)
    }

    fn user_keys(&self, user_id: &str) -> &[[u8; 32]] {
        // A user without an entry has no session: the empty list is exactly
        // what that means.
        self.by_user.get(user_id).map_or(&[], Vec::as_slice)
    }
}

/// An in-memory, bounded, thread-safe store of login sessions (`Send + Sync`;
/// share it behind an `Arc`). Its `Debug` shows the policy and the number of
/// sessions, not who is logged in.
pub struct SessionStore {
    policy: SessionPolicy,
    sessions: Mutex<Table>,
}

// Written by hand: the table sits behind a mutex and is keyed by user ids;
// this prints the policy and the number of sessions, never who.
impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("policy", &self.policy)
            .field("sessions", &self.len())
            .finish()
    }
}

impl SessionStore {
    /// An empty store.
    #[must_use]
    pub fn new(policy: SessionPolicy) -> Self {
        Self {
            policy,
            sessions: Mutex::new(Table::default()),
        }
    }

    /// The store's limits.
    #[must_use]
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// Starts a session for `user_id`, authenticated with `methods`, at `now`.
    ///
    /// # Errors
    /// [`SessionError::NoMethod`], [`SessionError::StoreFull`] (after
    /// dropping expired sessions), or [`SessionError::Random`].
    pub fn create(
        &self,
        rng: &dyn SecureRandom,
        user_id: &str,
        methods: &[AuthMethod],
        now: u64,
    ) -> Result<(SessionToken, SessionInfo), SessionError> {
        if methods.is_empty() {
            return Err(SessionError::NoMethod);
        }
        let mut raw = Zeroizing::new([0u8; TOKEN_BYTES]);
        fill(rng, raw.as_mut(), "a session token")?;
        let token = SessionToken(Secret::new(Base64UrlUnpadded::encode_string(raw.as_ref())));
        let digest = token.digest();
        let mut unique = Vec::with_capacity(methods.len());
        for m in methods {
            if !unique.contains(m) {
                unique.push(*m);
            }
        }
        let mut sessions = self.lock();
        self.limit_user(&mut sessions, user_id);
        if sessions.len() >= self.policy.capacity {
            self.purge_locked(&mut sessions, now);
            if sessions.len() >= self.policy.capacity {
                return Err(SessionError::StoreFull {
                    capacity: self.policy.capacity,
                });
            }
        }
        let entry = Entry {
            digest,
            user_id: user_id.to_owned(),
            created_at: now,
            last_seen_at: now,
            methods: unique,
        };
        let info = self.info(&entry);
        sessions.insert(entry);
        Ok((token, info))
    }

    /// Checks the session at `now` and records activity. An expired session
    /// is removed and its reason returned.
    ///
    /// # Errors
    /// [`SessionError::NotFound`], [`SessionError::IdleTimeout`] or
    /// [`SessionError::LifetimeExceeded`].
    pub fn touch(&self, token: &SessionToken, now: u64) -> Result<SessionInfo, SessionError> {
        self.with_live(token, now, |entry| {
            entry.last_seen_at = entry.last_seen_at.max(now);
        })
    }

    /// Like [`touch`](Self::touch) but without recording activity (for
    /// background requests that must not keep a session alive).
    ///
    /// # Errors
    /// As for [`touch`](Self::touch).
    pub fn peek(&self, token: &SessionToken, now: u64) -> Result<SessionInfo, SessionError> {
        self.with_live(token, now, |_| {})
    }

    /// Records a further authentication method (e.g. a TOTP code given
    /// after the password: step-up to MFA) and the activity.
    ///
    /// # Errors
    /// As for [`touch`](Self::touch).
    pub fn add_method(
        &self,
        token: &SessionToken,
        method: AuthMethod,
        now: u64,
    ) -> Result<SessionInfo, SessionError> {
        self.with_live(token, now, |entry| {
            entry.last_seen_at = entry.last_seen_at.max(now);
            if !entry.methods.contains(&method) {
                entry.methods.push(method);
            }
        })
    }

    /// Ends the session now (explicit logoff). Returns its info if it existed.
    pub fn logoff(&self, token: &SessionToken) -> Option<SessionInfo> {
        let digest = token.digest();
        let mut sessions = self.lock();
        let entry = sessions.remove(&digest)?;
        Some(self.info(&entry))
    }

    /// Ends every session of `user_id` (e.g. on password change or account
    /// suspension). Returns how many.
    pub fn logoff_user(&self, user_id: &str) -> usize {
        let mut sessions = self.lock();
        let keys = sessions.user_keys(user_id).to_vec();
        for key in &keys {
            sessions.remove(key);
        }
        keys.len()
    }

    /// Removes every session expired at `now` and reports each, so the
    /// caller can audit automatic logoffs. Call it periodically.
    pub fn purge_expired(&self, now: u64) -> Vec<EndedSession> {
        let mut sessions = self.lock();
        self.purge_locked(&mut sessions, now)
    }

    /// Number of sessions held (some may have expired since the last purge).
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store holds no session.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // The map stays consistent even if a holder panicked: every update
        // is a single insert, remove or field store.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with_live(
        &self,
        token: &SessionToken,
        now: u64,
        update: impl FnOnce(&mut Entry),
    ) -> Result<SessionInfo, SessionError> {
        let digest = token.digest();
        let mut sessions = self.lock();
        let entry = sessions
            .by_digest
            .get_mut(&digest)
            .ok_or(SessionError::NotFound)?;
        // The map found the entry by digest; confirm in constant time.
        if !ct_eq(&entry.digest, &digest) {
            return Err(SessionError::NotFound);
        }
        if let Some(reason) = self.expired(entry, now) {
            sessions.remove(&digest);
            return Err(match reason {
                EndReason::IdleTimeout => SessionError::IdleTimeout,
                EndReason::LifetimeExceeded => SessionError::LifetimeExceeded,
            });
        }
        update(entry);
        Ok(self.info(entry))
    }

    /// Whether the session has ended at `now`, and by which deadline came
    /// first.
    fn expired(&self, entry: &Entry, now: u64) -> Option<EndReason> {
        let idle = self.idle_deadline(entry);
        if now < idle {
            None
        } else if idle < self.absolute_deadline(entry) {
            Some(EndReason::IdleTimeout)
        } else {
            Some(EndReason::LifetimeExceeded)
        }
    }

    fn idle_deadline(&self, entry: &Entry) -> u64 {
        entry
            .last_seen_at
            .saturating_add(self.policy.idle_timeout.as_secs())
            .min(self.absolute_deadline(entry))
    }

    fn absolute_deadline(&self, entry: &Entry) -> u64 {
        entry
            .created_at
            .saturating_add(self.policy.absolute_lifetime.as_secs())
    }

    fn info(&self, entry: &Entry) -> SessionInfo {
        let mut id = [0u8; 16];
        for (i, b) in id.iter_mut().zip(entry.digest.iter()) {
            *i = *b;
        }
        SessionInfo {
            id: SessionId(id),
            user_id: Pii::new(entry.user_id.clone()),
            created_at: entry.created_at,
            last_seen_at: entry.last_seen_at,
            methods: entry.methods.clone(),
            idle_deadline: self.idle_deadline(entry),
            absolute_deadline: self.absolute_deadline(entry),
        }
    }

    fn purge_locked(&self, sessions: &mut Table, now: u64) -> Vec<EndedSession> {
        let mut ended = Vec::new();
        for entry in sessions.by_digest.values() {
            if let Some(reason) = self.expired(entry, now) {
                ended.push((entry.digest, reason));
            }
        }
        ended
            .into_iter()
            .filter_map(|(digest, reason)| {
                let entry = sessions.remove(&digest)?;
                Some(EndedSession {
                    id: self.info(&entry).id,
                    user_id: Pii::new(entry.user_id.clone()),
                    reason,
                })
            })
            .collect()
    }

    /// Makes room for one more session of `user_id` by ending its least
    /// recently active sessions.
    fn limit_user(&self, sessions: &mut Table, user_id: &str) {
        let max = self.policy.max_per_user.max(1);
        while sessions.user_keys(user_id).len() >= max {
            let oldest = sessions
                .user_keys(user_id)
                .iter()
                .filter_map(|k| sessions.by_digest.get(k))
                .min_by_key(|e| e.last_seen_at)
                .map(|e| e.digest);
            match oldest {
                Some(key) => {
                    sessions.remove(&key);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::test_rng;

    fn store(capacity: usize, per_user: usize) -> SessionStore {
        SessionStore::new(SessionPolicy {
            idle_timeout: Duration::from_secs(100),
            absolute_lifetime: Duration::from_secs(1000),
            capacity,
            max_per_user: per_user,
        })
    }

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SessionStore>();
        check::<SessionToken>();
    }

    #[test]
    fn tokens_are_256_bit_base64url_and_redacted() {
        let s = store(10, 10);
        let (token, info) = s
            .create(&test_rng(), "u1", &[AuthMethod::Password], 0)
            .unwrap();
        assert_eq!(token.expose().len(), TOKEN_CHARS);
        assert_eq!(SessionToken::parse(token.expose()).unwrap(), token);
        assert!(!format!("{token:?}{info:?}").contains(token.expose()));
        assert_eq!(info.id.to_string().len(), 32);
        assert!(SessionToken::parse("short").is_err());
        assert!(SessionToken::parse(&"+".repeat(TOKEN_CHARS)).is_err());
    }

    #[test]
    fn per_user_limit_drops_least_recent() {
        let s = store(10, 2);
        let rng = test_rng();
        let (a, _) = s.create(&rng, "u1", &[AuthMethod::Password], 0).unwrap();
        let (b, _) = s.create(&rng, "u1", &[AuthMethod::Password], 1).unwrap();
        s.touch(&a, 2).unwrap();
        let (c, _) = s.create(&rng, "u1", &[AuthMethod::Password], 3).unwrap();
        assert!(s.touch(&a, 4).is_ok());
        assert_eq!(s.touch(&b, 4), Err(SessionError::NotFound));
        assert!(s.touch(&c, 4).is_ok());
    }

    #[test]
    fn capacity_is_enforced_after_purging() {
        let s = store(2, 5);
        let rng = test_rng();
        s.create(&rng, "u1", &[AuthMethod::Password], 0).unwrap();
        s.create(&rng, "u2", &[AuthMethod::Password], 50).unwrap();
        assert_eq!(
            s.create(&rng, "u3", &[AuthMethod::Password], 60)
                .unwrap_err(),
            SessionError::StoreFull { capacity: 2 }
        );
        // At 120 the first is idle-expired and makes room.
        assert!(s.create(&rng, "u3", &[AuthMethod::Password], 120).is_ok());
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn user_index_stays_consistent() {
        let s = store(40, 3);
        let rng = test_rng();
        let mut tokens = Vec::new();
        // A fixed pseudo-random mix of operations over a few users.
        let mut x: u64 = 12345;
        for t in 0..600u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let user = format!("u{}", (x >> 33) % 7);
            match (x >> 40) % 5 {
                0 | 1 => {
                    if let Ok((token, _)) = s.create(&rng, &user, &[AuthMethod::Password], t) {
                        tokens.push(token);
                    }
                }
                2 => {
                    if let Some(token) =
                        tokens.get(usize::try_from(x >> 50).unwrap() % (tokens.len() + 1))
                    {
                        let _ = s.logoff(token);
                    }
                }
                3 => {
                    let _ = s.logoff_user(&user);
                }
                _ => {
                    let _ = s.purge_expired(t);
                }
            }
            let table = s.lock();
            let indexed: usize = table.by_user.values().map(Vec::len).sum();
            assert_eq!(indexed, table.by_digest.len());
            assert!(
                table
                    .by_user
                    .values()
                    .all(|v| !v.is_empty() && v.len() <= 3)
            );
            for (user, keys) in &table.by_user {
                assert!(keys.iter().all(|k| table.by_digest[k].user_id == *user));
            }
        }
    }

    #[test]
    fn mfa_needs_two_kinds_of_factor() {
        let s = store(10, 10);
        let rng = test_rng();
        let mfa = |methods: &[AuthMethod]| s.create(&rng, "u", methods, 0).unwrap().1.is_mfa();
        assert!(!mfa(&[AuthMethod::Password]));
        assert!(!mfa(&[AuthMethod::Totp, AuthMethod::RecoveryCode]));
        assert!(mfa(&[AuthMethod::Password, AuthMethod::Totp]));
        assert!(mfa(&[AuthMethod::Password, AuthMethod::RecoveryCode]));
        assert!(mfa(&[AuthMethod::HardwareKey, AuthMethod::Biometric]));
        assert_eq!(
            s.create(&rng, "u", &[], 0).unwrap_err(),
            SessionError::NoMethod
        );
    }
}
