//! An access decision of carevox-authz turned into an audit record of
//! carevox-audit: who asked for what, about which patient, what the policy
//! said and by which rule, and, for an emergency ("break the glass")
//! request, the stated reason as the purpose of use.
//!
//! ```
//! use carevox::access::{Access, Subject, Target, access_record};
//! use carevox::audit::{Action, AuthMethod, EventType, ObjectKind, ObjectRef, Outcome};
//! use carevox::authz::{
//!     Assignments, Attributes, HOSPITAL_POLICY, PatientId, Policy, Request, Resource, Session, TeamId,
//!     UserId,
//! };
//!
//! let policy = Policy::from_toml(HOSPITAL_POLICY)?;
//! let role = policy.role("receptionist").expect("role");
//! let mut assignments = Assignments::new();
//! assignments.assign(&policy, UserId(3), role)?;
//! let mut session = Session::new(UserId(3), true, None);
//! session.activate(&policy, &assignments, role)?;
//! let request = Request {
//!     principal: session.principal(&[]),
//!     action: policy.action("listen").expect("action"),
//!     resource: Resource {
//!         kind: policy.resource_type("voicemail").expect("type"),
//!         owner: Some(PatientId::new(42)),
//!         care_teams: &[TeamId(3)],
//!         ephi: true,
//!         attributes: Attributes::NONE,
//!     },
//!     attributes: Attributes::NONE,
//!     now: 1_795_428_000,
//!     break_glass: None,
//! };
//! let decision = policy.decide(&request);
//! let record = access_record(
//!     &request,
//!     &decision,
//!     &Subject { user_id: "front.desk", role: Some("receptionist"), network_address: None, auth: AuthMethod::PasswordMfa },
//!     &Target {
//!         event: EventType::VoicemailAccess,
//!         action: Action::Read,
//!         patient: Some(carevox::redact::Pii::new("Patient/42")),
//!         object: Some(ObjectRef { kind: ObjectKind::Voicemail, id: "vm-1".into() }),
//!         correlation_id: None,
//!     },
//!     "pbx",
//! );
//! assert!(matches!(Access::from_decision(&decision), Access::NotPermitted { .. }));
//! assert_eq!(record.outcome, Outcome::MinorFailure);
//! assert_eq!(record.occurred.as_millis(), 1_795_428_000_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use carevox_audit::{
    Action, AuthMethod, Detail, EventType, ObjectRef, Outcome, PurposeOfUse, Record, Timestamp,
};
use carevox_authz::{BreakGlassUse, Decision, Reason, Request};
use carevox_redact::Pii;

/// How an access request was decided, owned (free of the policy's
/// lifetime) and printable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Allowed by this rule.
    Permitted(String),
    /// Denied by this forbid rule.
    Forbidden(String),
    /// Denied: no rule permits it. `nearest` names the permit that came
    /// closest and `unmet` the conditions it failed (`outside_hours`,
    /// `wrong_site`, `mfa`, ...), never a patient, a user or free text.
    NotPermitted {
        /// The closest permit rule, if any rule applied to the action.
        nearest: Option<String>,
        /// The names of the conditions that permit failed.
        unmet: Vec<&'static str>,
    },
    /// Denied: the principal's roles break this separation-of-duty set.
    SeparationOfDuty(String),
}

impl Access {
    /// The access a decision grants or refuses, with its rule.
    pub fn from_decision(decision: &Decision<'_>) -> Access {
        match decision.reason {
            Reason::Permitted { rule } => Access::Permitted(rule.to_owned()),
            Reason::Forbidden { rule } => Access::Forbidden(rule.to_owned()),
            Reason::NotPermitted => Access::NotPermitted {
                nearest: decision.nearest.map(str::to_owned),
                unmet: decision.unmet.names().collect(),
            },
            Reason::SeparationOfDuty { set } => Access::SeparationOfDuty(set.to_owned()),
        }
    }

    /// Whether access is granted.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Access::Permitted(_))
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Permitted(rule) => write!(f, "allowed by rule {rule}"),
            Access::Forbidden(rule) => write!(f, "denied: forbidden by rule {rule}"),
            Access::NotPermitted { nearest, unmet } => {
                write!(f, "denied: no rule permits it")?;
                if let Some(rule) = nearest {
                    write!(f, " (nearest rule {rule}")?;
                    if !unmet.is_empty() {
                        write!(f, " failed: {}", unmet.join(", "))?;
                    }
                    write!(f, ")")?;
                }
                Ok(())
            }
            Access::SeparationOfDuty(set) => {
                write!(f, "denied: roles break separation of duty {set}")
            }
        }
    }
}

/// Who asked, as the audit record names them.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The user's audit identifier (an opaque id or login name).
    pub user_id: &'a str,
    /// The role they acted in.
    pub role: Option<&'a str>,
    /// Where they connected from.
    pub network_address: Option<&'a str>,
    /// How their session was authenticated.
    pub auth: AuthMethod,
}

/// What was asked for, as the audit record names it.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The kind of event (voicemail access, recording access, ...).
    pub event: EventType,
    /// What was to be done.
    pub action: Action,
    /// The patient reference (a FHIR reference such as `Patient/42`);
    /// PHI, so `Debug` shows `<redacted>`.
    pub patient: Option<Pii<&'a str>>,
    /// The object.
    pub object: Option<ObjectRef>,
    /// A call or session id tying the record to others.
    pub correlation_id: Option<&'a str>,
}

/// The short name of what became of a break-the-glass grant.
fn break_glass_name(use_: BreakGlassUse) -> &'static str {
    match use_ {
        BreakGlassUse::None => "none",
        BreakGlassUse::Used => "used",
        BreakGlassUse::Unused => "unused",
        BreakGlassUse::NoReason => "no-reason",
        BreakGlassUse::Expired => "expired",
        BreakGlassUse::TooLong => "too-long",
    }
}

/// The audit record of `decision` on `request`: success when allowed, a
/// minor failure when denied; time from the request (seconds) in
/// milliseconds; purpose of use "emergency" with the grant's reason when a
/// break-the-glass grant was presented (allowed or not); details
/// `decision` (the [`Access`] text), and `break-glass` and `review` when a
/// grant was presented.
pub fn access_record(
    request: &Request<'_>,
    decision: &Decision<'_>,
    subject: &Subject<'_>,
    target: &Target<'_>,
    source: &str,
) -> Record {
    let access = Access::from_decision(decision);
    let outcome = if decision.is_allowed() {
        Outcome::Success
    } else {
        Outcome::MinorFailure
    };
    let mut r = Record::new(
        target.event.clone(),
        target.action.clone(),
        outcome,
        Timestamp(request.now.saturating_mul(1000)),
        subject.user_id,
        source,
    );
    r.actor.role = subject.role.map(str::to_owned);
    r.actor.network_address = subject.network_address.map(Pii::from);
    r.actor.auth = subject.auth.clone();
    r.entity.patient = target.patient.map(|p| p.map(str::to_owned));
    r.entity.object = target.object.clone();
    r.correlation_id = target.correlation_id.map(Pii::from);
    if let Some(grant) = request.break_glass {
        r.purpose = PurposeOfUse::Emergency {
            justification: grant.reason.map(str::to_owned),
        };
    }
    r.details.push(Detail {
        key: "decision".into(),
        value: access.to_string().into(),
    });
    if decision.break_glass != BreakGlassUse::None {
        r.details.push(Detail {
            key: "break-glass".into(),
            value: break_glass_name(decision.break_glass).into(),
        });
    }
    if decision.review {
        r.details.push(Detail {
            key: "review".into(),
            value: "required".into(),
        });
    }
    r
}
