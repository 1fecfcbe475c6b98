//! Call events of a PBX or a B2BUA (a call set up, answered, sent to
//! voicemail, refused, ended) turned into audit records of carevox-audit.
//!
//! | event | record | action | outcome |
//! |---|---|---|---|
//! | `Started` (an authenticated INVITE is routed) | `CallStart` | `Create` | success |
//! | `Answered` (the callee answered) | `CallStart` | `Update` | success |
//! | `ToVoicemail` (no answer, busy, unreachable) | `CallStart` | `Update` | success |
//! | `Refused` (the call was not set up) | `CallStart` | `Execute` | minor failure |
//! | `Ended` (BYE, CANCEL, a failure) | `CallEnd` | `Delete` | success |
//!
//! The actor is the caller, authenticated by SIP digest; the entity is the
//! call, by its Call-ID. The callee, the Call-ID, the address and every
//! detail are held in [`Pii`] by the record, so its `Debug` names none of
//! them.
//!
//! ```
//! use carevox::audit::{EventType, Outcome};
//! use carevox::call_audit::{CallEvent, CallSubject, EndedBy, call_record};
//! use carevox::redact::Pii;
//!
//! let call = CallSubject {
//!     caller: Pii::new("dr.lee"),
//!     callee: Pii::new("+15551234567"),
//!     call_id: Pii::new("a84b4c76e66710"),
//!     network_address: Pii::new(Some("192.0.2.7")),
//! };
//! let r = call_record(&CallEvent::Ended { duration_secs: 95, by: EndedBy::Caller }, &call, 1_795_428_000, "pbx");
//! assert_eq!((&r.event, r.outcome), (&EventType::CallEnd, Outcome::Success));
//! assert!(!format!("{r:?} {call:?}").contains("5551234567"));
//! ```

use carevox_audit::{
    Action, AuthMethod, EventType, ObjectKind, ObjectRef, Outcome, Record, Timestamp,
};
use carevox_redact::Pii;

/// Why a call went to voicemail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VoicemailReason {
    /// Nobody answered in time.
    NoAnswer,
    /// The callee was busy or declined.
    Busy,
    /// The callee had no registered phone, or it could not be reached.
    Unreachable,
}

impl VoicemailReason {
    /// A short stable name, written into the record.
    pub fn name(self) -> &'static str {
        match self {
            VoicemailReason::NoAnswer => "no answer",
            VoicemailReason::Busy => "busy",
            VoicemailReason::Unreachable => "unreachable",
        }
    }
}

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndedBy {
    /// The caller hung up (BYE or CANCEL).
    Caller,
    /// The callee hung up.
    Callee,
    /// The PBX ended it (a failed leg, a voicemail's longest message, a
    /// shutdown).
    Pbx,
}

impl EndedBy {
    /// A short stable name, written into the record.
    pub fn name(self) -> &'static str {
        match self {
            EndedBy::Caller => "caller",
            EndedBy::Callee => "callee",
            EndedBy::Pbx => "pbx",
        }
    }
}

/// One call event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallEvent {
    /// An authenticated caller's INVITE is being routed to the callee.
    Started,
    /// The callee answered.
    Answered,
    /// The call went to the callee's voicemail.
    ToVoicemail {
        /// Why.
        reason: VoicemailReason,
    },
    /// The call was not set up; the caller got this status.
    Refused {
        /// The final status sent to the caller.
        status: u16,
    },
    /// The call ended.
    Ended {
        /// Seconds since it was answered (0 if it never was).
        duration_secs: u64,
        /// Who ended it.
        by: EndedBy,
    },
}

/// Which call the event is about. Every field is [`Pii`], so `Debug`
/// prints none of them.
#[derive(Debug, Clone, Copy)]
pub struct CallSubject<'a> {
    /// The caller's user id (the digest user name).
    pub caller: Pii<&'a str>,
    /// Whom the call is for (a user name or a number).
    pub callee: Pii<&'a str>,
    /// The Call-ID of the caller's leg.
    pub call_id: Pii<&'a str>,
    /// The caller's address (IP, no port needed).
    pub network_address: Pii<Option<&'a str>>,
}

/// The audit record of `event` at `now` (seconds since the Unix epoch; the
/// record holds milliseconds), reported by `source`. See the
/// [module documentation](self) for the mapping.
pub fn call_record(event: &CallEvent, call: &CallSubject<'_>, now: u64, source: &str) -> Record {
    let (kind, action, outcome) = match event {
        CallEvent::Started => (EventType::CallStart, Action::Create, Outcome::Success),
        CallEvent::Answered | CallEvent::ToVoicemail { .. } => {
            (EventType::CallStart, Action::Update, Outcome::Success)
        }
        CallEvent::Refused { .. } => (EventType::CallStart, Action::Execute, Outcome::MinorFailure),
        CallEvent::Ended { .. } => (EventType::CallEnd, Action::Delete, Outcome::Success),
    };
    let mut r = Record::new(
        kind,
        action,
        outcome,
        Timestamp(now.saturating_mul(1000)),
        *call.caller.expose(),
        source,
    );
    r.actor.auth = AuthMethod::SipDigest;
    r.actor.network_address = call
        .network_address
        .expose()
        .map(|a| Pii::new(a.to_owned()));
    r.entity.object = Some(ObjectRef {
        kind: ObjectKind::Call,
        id: Pii::new((*call.call_id.expose()).to_owned()),
    });
    r.correlation_id = Some(Pii::new((*call.call_id.expose()).to_owned()));
    r = r.with_detail("callee", *call.callee.expose());
    match event {
        CallEvent::Started | CallEvent::Answered => {}
        CallEvent::ToVoicemail { reason } => r = r.with_detail("voicemail", reason.name()),
        CallEvent::Refused { status } => r = r.with_detail("status", status.to_string()),
        CallEvent::Ended { duration_secs, by } => {
            r = r.with_detail("duration_secs", duration_secs.to_string());
            r = r.with_detail("ended_by", by.name());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use carevox_redact::debug_leak;

    fn subject() -> CallSubject<'static> {
        CallSubject {
            caller: Pii::new("dr.lee"),
            callee: Pii::new("+15551234567"),
            call_id: Pii::new("call-7@clinic.example"),
            network_address: Pii::new(Some("192.0.2.7")),
        }
    }

    #[test]
    fn each_event_maps_to_its_record() {
        let cases = [
            (
                CallEvent::Started,
                EventType::CallStart,
                Action::Create,
                Outcome::Success,
            ),
            (
                CallEvent::Answered,
                EventType::CallStart,
                Action::Update,
                Outcome::Success,
            ),
            (
                CallEvent::ToVoicemail {
                    reason: VoicemailReason::Busy,
                },
                EventType::CallStart,
                Action::Update,
                Outcome::Success,
            ),
            (
                CallEvent::Refused { status: 488 },
                EventType::CallStart,
                Action::Execute,
                Outcome::MinorFailure,
            ),
            (
                CallEvent::Ended {
                    duration_secs: 3,
                    by: EndedBy::Callee,
                },
                EventType::CallEnd,
                Action::Delete,
                Outcome::Success,
            ),
        ];
        for (event, kind, action, outcome) in cases {
            let r = call_record(&event, &subject(), 1_700_000_000, "pbx");
            assert_eq!(
                (&r.event, &r.action, r.outcome),
                (&kind, &action, outcome),
                "{event:?}"
            );
            assert_eq!(r.actor.auth, AuthMethod::SipDigest);
            assert_eq!(r.occurred, Timestamp(1_700_000_000_000));
            assert_eq!(r.actor.user_id.expose(), "dr.lee");
            let object = r.entity.object.as_ref().unwrap_or_else(|| unreachable!());
            assert_eq!(object.kind, ObjectKind::Call);
            assert_eq!(object.id.expose(), "call-7@clinic.example");
            let debug = format!("{r:?} {r:#?}");
            for phi in ["dr.lee", "5551234567", "call-7", "192.0.2.7"] {
                assert!(!debug.contains(phi), "{phi} in {debug}");
            }
        }
        let r = call_record(
            &CallEvent::Ended {
                duration_secs: 95,
                by: EndedBy::Caller,
            },
            &subject(),
            1,
            "pbx",
        );
        let details: Vec<(String, String)> = r
            .details
            .iter()
            .map(|d| (d.key.expose().clone(), d.value.expose().clone()))
            .collect();
        assert!(details.contains(&("duration_secs".into(), "95".into())));
        assert!(details.contains(&("ended_by".into(), "caller".into())));
        assert!(details.contains(&("callee".into(), "+15551234567".into())));
        assert_eq!(
            debug_leak(&subject(), &["dr.lee", "5551234567", "call-7", "192.0.2.7"]),
            None
        );
    }
}
