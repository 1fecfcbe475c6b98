//! Authentication events of carevox-authz (a password refused, a second
//! factor refused, an account locked out, a session opened, a session
//! ended) turned into audit records of carevox-audit, so that the log's
//! monitor sees failed logins, lockouts and logins from new networks.
//!
//! ```
//! use carevox::audit::{AuthMethod, EventType, Outcome};
//! use carevox::login::{LoginEvent, LoginSubject, login_record};
//!
//! let who = LoginSubject { user_id: "nurse.ana", role: Some("nurse"), network_address: Some("10.20.30.40") };
//! let refused = login_record(&LoginEvent::PasswordRefused { locked_until: None }, &who, 1_795_428_000, "pbx");
//! assert_eq!((refused.event, refused.outcome, refused.actor.auth), (EventType::Login, Outcome::MinorFailure, AuthMethod::Password));
//! ```

use carevox_audit::{Action, AuthMethod, EventType, Outcome, Record, Timestamp};
use carevox_authz::login::{AuthMethod as Method, EndReason, SessionInfo};
use carevox_redact::Pii;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogoffReason {
    /// The user logged off.
    Requested,
    /// Idle past the idle timeout (automatic logoff).
    IdleTimeout,
    /// Older than the session's absolute lifetime.
    LifetimeExceeded,
}

impl From<EndReason> for LogoffReason {
    fn from(r: EndReason) -> LogoffReason {
        match r {
            EndReason::IdleTimeout => LogoffReason::IdleTimeout,
            EndReason::LifetimeExceeded => LogoffReason::LifetimeExceeded,
            _ => LogoffReason::LifetimeExceeded,
        }
    }
}

/// One authentication event.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum LoginEvent<'a> {
    /// The password was wrong; `locked_until` is what
    /// `LockoutPolicy::record_failure` returned.
    PasswordRefused {
        /// Until when attempts are refused now, if the failure locked.
        locked_until: Option<u64>,
    },
    /// The password was right and the second factor (e.g. TOTP) wrong.
    SecondFactorRefused {
        /// The second factor tried.
        method: Method,
        /// Until when attempts are refused now, if the failure locked.
        locked_until: Option<u64>,
    },
    /// The attempt was refused unseen because the account is locked
    /// (`LockoutError::Locked`).
    LockedOut {
        /// Seconds until an attempt is allowed again.
        retry_after_secs: u64,
    },
    /// A session was opened.
    LoggedIn {
        /// The session, as `SessionStore::create` returned it.
        session: &'a SessionInfo,
    },
    /// A session ended.
    LoggedOff {
        /// The session's public id.
        session_id: &'a str,
        /// Why.
        reason: LogoffReason,
    },
}

/// Who the event is about.
#[derive(Debug, Clone, Copy)]
pub struct LoginSubject<'a> {
    /// The user's audit identifier.
    pub user_id: &'a str,
    /// Their role, if known.
    pub role: Option<&'a str>,
    /// Where the attempt came from.
    pub network_address: Option<&'a str>,
}

/// The audit method of the session's methods: `PasswordMfa` for a password
/// and a factor of another kind, `Password` for a password alone, else the
/// method names joined by `+`.
fn audit_method(session: &SessionInfo) -> AuthMethod {
    if session.used(Method::Password) && session.is_mfa() {
        AuthMethod::PasswordMfa
    } else if session.methods == [Method::Password] {
        AuthMethod::Password
    } else {
        AuthMethod::Other(method_names(&session.methods))
    }
}

fn method_names(methods: &[Method]) -> String {
    methods
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join("+")
}

/// The audit record of `event` at `now` (seconds since the Unix epoch, as
/// carevox-authz counts; the record holds milliseconds). Failures are
/// `Login` records with a minor-failure outcome (the monitor counts them);
/// a session opened is a successful `Login` correlated with the session
/// id; a session ended is a `Logout` with its reason.
pub fn login_record(
    event: &LoginEvent<'_>,
    subject: &LoginSubject<'_>,
    now: u64,
    source: &str,
) -> Record {
    let at = Timestamp(now.saturating_mul(1000));
    let (kind, outcome) = match event {
        LoginEvent::LoggedIn { .. } => (EventType::Login, Outcome::Success),
        LoginEvent::LoggedOff { .. } => (EventType::Logout, Outcome::Success),
        _ => (EventType::Login, Outcome::MinorFailure),
    };
    let mut r = Record::new(kind, Action::Execute, outcome, at, subject.user_id, source);
    r.actor.role = subject.role.map(str::to_owned);
    r.actor.network_address = subject.network_address.map(Pii::from);
    match event {
        LoginEvent::PasswordRefused { locked_until } => {
            r.actor.auth = AuthMethod::Password;
            r = r.with_detail("result", "password refused");
            if let Some(t) = locked_until {
                r = r.with_detail("locked-until", t.to_string());
            }
        }
        LoginEvent::SecondFactorRefused {
            method,
            locked_until,
        } => {
            r.actor.auth = AuthMethod::Password;
            r = r.with_detail("result", format!("{} refused", method.name()));
            if let Some(t) = locked_until {
                r = r.with_detail("locked-until", t.to_string());
            }
        }
        LoginEvent::LockedOut { retry_after_secs } => {
            r.actor.auth = AuthMethod::None;
            r = r.with_detail("result", "locked out");
            r = r.with_detail("retry-after-secs", retry_after_secs.to_string());
        }
        LoginEvent::LoggedIn { session } => {
            r.actor.auth = audit_method(session);
            r.correlation_id = Some(session.id.to_string().into());
            r = r.with_detail("methods", method_names(&session.methods));
        }
        LoginEvent::LoggedOff { session_id, reason } => {
            r.correlation_id = Some((*session_id).into());
            let why = match reason {
                LogoffReason::Requested => "logoff",
                LogoffReason::IdleTimeout => "idle timeout",
                LogoffReason::LifetimeExceeded => "session lifetime exceeded",
            };
            r = r.with_detail("reason", why);
        }
    }
    r
}
