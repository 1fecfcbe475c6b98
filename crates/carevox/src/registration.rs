//! SIP registration events of a registrar (a contact bound, refreshed,
//! removed or expired; a REGISTER refused or locked out) turned into audit
//! records of carevox-audit.
//!
//! A registration is an authentication by SIP digest, so its records are
//! `Login` and `Logout` records and the log's monitor treats them as it
//! treats logins: failed registrations count towards the repeated-failure
//! alerts per user and per address, and a registration from a new network
//! raises that alert.
//!
//! | event | record | action | outcome | auth |
//! |---|---|---|---|---|
//! | `Registered` (a new contact) | `Login` | `Create` | success | `SipDigest` |
//! | `Refreshed` (only known contacts renewed) | `Login` | `Update` | success | `SipDigest` |
//! | `Unregistered` (Expires 0, or `*`) | `Logout` | `Delete` | success | `SipDigest` |
//! | `Expired` (the lifetime ran out) | `Logout` | `Delete` | success | `None` |
//! | `Refused` (bad credentials, unknown user, algorithm not allowed, another user's address) | `Login` | `Execute` | minor failure | `SipDigest` |
//! | `LockedOut` (refused unseen) | `Login` | `Execute` | minor failure | `None` |
//! | `OverCapacity` (authenticated, no room) | `Login` | `Create` | serious failure | `SipDigest` |
//!
//! The user id, the address, the Call-ID and the details are held in
//! [`Pii`] by the record, so its `Debug` names none of them.
//!
//! ```
//! use carevox::audit::{Action, AuthMethod, EventType, Outcome};
//! use carevox::redact::Pii;
//! use carevox::registration::{RegistrationEvent, RegistrationSubject, registration_record};
//!
//! let who = RegistrationSubject {
//!     user_id: Pii::new("nurse.ana"),
//!     network_address: Pii::new(Some("192.0.2.7")),
//!     transport: Some("tls"),
//!     call_id: Pii::new(Some("a84b4c76e66710")),
//!     digest_algorithm: Some("SHA-256"),
//! };
//! let r = registration_record(&RegistrationEvent::Registered { contacts: 1, expires_secs: 600 }, &who, 1_795_428_000, "pbx");
//! assert_eq!((&r.event, &r.action, r.outcome, &r.actor.auth), (&EventType::Login, &Action::Create, Outcome::Success, &AuthMethod::SipDigest));
//! assert!(!format!("{r:?} {who:?}").contains("nurse.ana"));
//! ```

use carevox_audit::{Action, AuthMethod, EventType, Outcome, Record, Timestamp};
use carevox_redact::Pii;

/// Why a REGISTER was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The digest response, user, realm, URI or nonce did not check out,
    /// or a nonce count was replayed.
    BadCredentials,
    /// No such user (recorded under the name submitted, so that unknown
    /// names lock out like real ones).
    UnknownUser,
    /// The credentials used an algorithm the user may not use (MD5
    /// without the legacy permission).
    AlgorithmNotAllowed,
    /// The user authenticated, but asked to change another user's address
    /// of record.
    OtherUsersAddress,
}

impl RefusalReason {
    /// A short stable name, written into the record.
    pub fn name(self) -> &'static str {
        match self {
            RefusalReason::BadCredentials => "bad credentials",
            RefusalReason::UnknownUser => "unknown user",
            RefusalReason::AlgorithmNotAllowed => "digest algorithm not allowed",
            RefusalReason::OtherUsersAddress => "another user's address of record",
        }
    }
}

/// One registration event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationEvent {
    /// At least one new contact was bound.
    Registered {
        /// Contacts of the user after the request.
        contacts: usize,
        /// The longest lifetime granted, in seconds.
        expires_secs: u32,
    },
    /// Known contacts were renewed, none added.
    Refreshed {
        /// Contacts of the user after the request.
        contacts: usize,
        /// The longest lifetime granted, in seconds.
        expires_secs: u32,
    },
    /// The user removed contacts (Expires 0, or `Contact: *`).
    Unregistered {
        /// Contacts removed.
        removed: usize,
        /// Contacts left.
        contacts: usize,
    },
    /// Contacts' lifetimes ran out.
    Expired {
        /// Contacts removed.
        removed: usize,
        /// Contacts left.
        contacts: usize,
    },
    /// The REGISTER was refused after its credentials were checked.
    Refused {
        /// Why.
        reason: RefusalReason,
        /// Until when attempts are refused now (unix seconds), if this
        /// failure locked the user.
        locked_until: Option<u64>,
    },
    /// The REGISTER was refused unseen because the user is locked.
    LockedOut {
        /// Seconds until an attempt is allowed again.
        retry_after_secs: u64,
    },
    /// The user authenticated, but the registrar's caps on users or on
    /// contacts per user left no room.
    OverCapacity,
}

/// Who the event is about and how the request came. The user id, the
/// address and the Call-ID are [`Pii`], so `Debug` prints none of them.
#[derive(Debug, Clone, Copy)]
pub struct RegistrationSubject<'a> {
    /// The user's id (the digest user name).
    pub user_id: Pii<&'a str>,
    /// The request's source address (IP, no port needed).
    pub network_address: Pii<Option<&'a str>>,
    /// The transport (`tls`, `tcp`, `udp`).
    pub transport: Option<&'a str>,
    /// The REGISTER's Call-ID, which ties a phone's registrations together.
    pub call_id: Pii<Option<&'a str>>,
    /// The digest algorithm of the credentials, if any were given.
    pub digest_algorithm: Option<&'a str>,
}

/// The audit record of `event` at `now` (seconds since the Unix epoch; the
/// record holds milliseconds), reported by `source`. See the
/// [module documentation](self) for the mapping.
pub fn registration_record(
    event: &RegistrationEvent,
    subject: &RegistrationSubject<'_>,
    now: u64,
    source: &str,
) -> Record {
    use RegistrationEvent as E;
    let (kind, action, outcome, auth) = match event {
        E::Registered { .. } => (
            EventType::Login,
            Action::Create,
            Outcome::Success,
            AuthMethod::SipDigest,
        ),
        E::Refreshed { .. } => (
            EventType::Login,
            Action::Update,
            Outcome::Success,
            AuthMethod::SipDigest,
        ),
        E::Unregistered { .. } => (
            EventType::Logout,
            Action::Delete,
            Outcome::Success,
            AuthMethod::SipDigest,
        ),
        E::Expired { .. } => (
            EventType::Logout,
            Action::Delete,
            Outcome::Success,
            AuthMethod::None,
        ),
        E::Refused { .. } => (
            EventType::Login,
            Action::Execute,
            Outcome::MinorFailure,
            AuthMethod::SipDigest,
        ),
        E::LockedOut { .. } => (
            EventType::Login,
            Action::Execute,
            Outcome::MinorFailure,
            AuthMethod::None,
        ),
        E::OverCapacity => (
            EventType::Login,
            Action::Create,
            Outcome::SeriousFailure,
            AuthMethod::SipDigest,
        ),
    };
    let at = Timestamp(now.saturating_mul(1000));
    let mut r = Record::new(kind, action, outcome, at, *subject.user_id.expose(), source);
    let digest = auth == AuthMethod::SipDigest;
    r.actor.auth = auth;
    r.actor.network_address = subject.network_address.into_inner().map(Pii::from);
    r.correlation_id = subject.call_id.into_inner().map(Pii::from);
    let what = match event {
        E::Registered { .. } => "registered",
        E::Refreshed { .. } => "refreshed",
        E::Unregistered { .. } => "unregistered",
        E::Expired { .. } => "expired",
        E::Refused { .. } => "refused",
        E::LockedOut { .. } => "locked out",
        E::OverCapacity => "over capacity",
    };
    r = r.with_detail("registration", what);
    if let Some(t) = subject.transport {
        r = r.with_detail("transport", t);
    }
    if digest && let Some(a) = subject.digest_algorithm {
        r = r.with_detail("digest-algorithm", a);
    }
    match *event {
        E::Registered {
            contacts,
            expires_secs,
        }
        | E::Refreshed {
            contacts,
            expires_secs,
        } => {
            r = r.with_detail("contacts", contacts.to_string());
            r = r.with_detail("expires-secs", expires_secs.to_string());
        }
        E::Unregistered { removed, contacts } | E::Expired { removed, contacts } => {
            r = r.with_detail("removed", removed.to_string());
            r = r.with_detail("contacts", contacts.to_string());
        }
        E::Refused {
            reason,
            locked_until,
        } => {
            r = r.with_detail("result", reason.name());
            if let Some(t) = locked_until {
                r = r.with_detail("locked-until", t.to_string());
            }
        }
        E::LockedOut { retry_after_secs } => {
            r = r.with_detail("retry-after-secs", retry_after_secs.to_string());
        }
        E::OverCapacity => {}
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> RegistrationSubject<'static> {
        RegistrationSubject {
            user_id: Pii::new("dr.house"),
            network_address: Pii::new(Some("198.51.100.4")),
            transport: Some("tls"),
            call_id: Pii::new(Some("call-1@phone.example")),
            digest_algorithm: Some("SHA-512-256"),
        }
    }

    fn value<'r>(r: &'r Record, key: &str) -> Option<&'r str> {
        r.details
            .iter()
            .find(|d| d.key.expose() == key)
            .map(|d| d.value.expose().as_str())
    }

    #[test]
    fn every_event_maps_to_its_row() {
        use RegistrationEvent as E;
        let rows = [
            (
                E::Registered {
                    contacts: 2,
                    expires_secs: 600,
                },
                EventType::Login,
                Action::Create,
                Outcome::Success,
                AuthMethod::SipDigest,
            ),
            (
                E::Refreshed {
                    contacts: 2,
                    expires_secs: 600,
                },
                EventType::Login,
                Action::Update,
                Outcome::Success,
                AuthMethod::SipDigest,
            ),
            (
                E::Unregistered {
                    removed: 2,
                    contacts: 0,
                },
                EventType::Logout,
                Action::Delete,
                Outcome::Success,
                AuthMethod::SipDigest,
            ),
            (
                E::Expired {
                    removed: 1,
                    contacts: 1,
                },
                EventType::Logout,
                Action::Delete,
                Outcome::Success,
                AuthMethod::None,
            ),
            (
                E::Refused {
                    reason: RefusalReason::BadCredentials,
                    locked_until: Some(1_700_000_030),
                },
                EventType::Login,
                Action::Execute,
                Outcome::MinorFailure,
                AuthMethod::SipDigest,
            ),
            (
                E::LockedOut {
                    retry_after_secs: 29,
                },
                EventType::Login,
                Action::Execute,
                Outcome::MinorFailure,
                AuthMethod::None,
            ),
            (
                E::OverCapacity,
                EventType::Login,
                Action::Create,
                Outcome::SeriousFailure,
                AuthMethod::SipDigest,
            ),
        ];
        for (event, kind, action, outcome, auth) in rows {
            let r = registration_record(&event, &subject(), 1_700_000_000, "pbx");
            assert_eq!(
                (&r.event, &r.action, r.outcome, &r.actor.auth),
                (&kind, &action, outcome, &auth),
                "{event:?}"
            );
            assert_eq!(r.occurred.0, 1_700_000_000_000);
            assert_eq!(r.actor.user_id.expose(), "dr.house");
            assert_eq!(r.source_id, "pbx");
            assert_eq!(value(&r, "transport"), Some("tls"));
            assert_eq!(
                value(&r, "digest-algorithm").is_some(),
                auth == AuthMethod::SipDigest
            );
            let debug = format!("{r:?} {:?}", subject());
            for secret in ["dr.house", "198.51.100.4", "call-1@phone.example"] {
                assert!(!debug.contains(secret), "{event:?} leaks in {debug}");
            }
        }
    }

    #[test]
    fn details_carry_counts_and_lock_times() {
        let r = registration_record(
            &RegistrationEvent::Refused {
                reason: RefusalReason::AlgorithmNotAllowed,
                locked_until: Some(42),
            },
            &subject(),
            1,
            "pbx",
        );
        assert_eq!(value(&r, "result"), Some("digest algorithm not allowed"));
        assert_eq!(value(&r, "locked-until"), Some("42"));
        let r = registration_record(
            &RegistrationEvent::Unregistered {
                removed: 3,
                contacts: 1,
            },
            &subject(),
            1,
            "pbx",
        );
        assert_eq!(value(&r, "registration"), Some("unregistered"));
        assert_eq!(value(&r, "removed"), Some("3"));
        assert_eq!(value(&r, "contacts"), Some("1"));
        assert_eq!(
            r.correlation_id.as_ref().map(|c| c.expose().as_str()),
            Some("call-1@phone.example")
        );
    }
}
