//! Evaluates a few requests against the sample hospital policy and prints
//! each decision with the rule that made it, as the audit log would get it.
//!
//! Run with `cargo run -p carevox-authz --example hospital_decisions`.

// An example program: it reports on the terminal.
#![allow(clippy::print_stdout)]

use carevox_authz::{
    Assignments, BreakGlass, HOSPITAL_POLICY, PatientId, Policy, PolicyError, Request, Resource,
    Session, TeamId, UserId,
};
use carevox_authz::{Attributes, Pii};

/// 2026-11-23 10:00 UTC, in seconds since the Unix epoch.
const TEN_AM: u64 = 1_795_428_000;
/// 2026-11-23 22:00 UTC.
const TEN_PM: u64 = TEN_AM + 12 * 3600;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let policy = Policy::from_toml(HOSPITAL_POLICY)?;
    let patient = PatientId::new(1042);
    let cardiology = [TeamId(7)];
    let oncology = [TeamId(9)];

    // Users, their roles, and sessions (MFA comes from the login).
    let mut assignments = Assignments::new();
    let mut session = |user: u64, role: &str, mfa: bool, own: Option<PatientId>| {
        let role = policy.role(role).ok_or("unknown role")?;
        assignments.assign(&policy, UserId(user), role)?;
        let mut s = Session::new(UserId(user), mfa, own);
        s.activate(&policy, &assignments, role)?;
        Ok::<Session, Box<dyn std::error::Error>>(s)
    };
    let nurse = session(1, "nurse", true, None)?;
    let receptionist = session(2, "receptionist", true, None)?;
    let physician = session(3, "physician", true, None)?;
    let on_call = session(4, "on_call_physician", true, None)?;
    let admin = session(5, "administrator", true, None)?;
    let patient_session = session(6, "patient", false, Some(patient))?;
    let patient_mfa = session(7, "patient", true, Some(patient))?;

    let grant = BreakGlass {
        reason: Pii::new("patient unresponsive in the emergency department"),
        issued_at: TEN_AM - 300,
        expires_at: TEN_AM + 3300,
    };

    #[allow(clippy::type_complexity)]
    let cases: [(
        &str,
        &Session,
        &[TeamId],
        &str,
        &str,
        u64,
        Option<BreakGlass<'_>>,
    ); 10] = [
        (
            "nurse on the care team listens to a voicemail",
            &nurse,
            &cardiology,
            "listen",
            "voicemail",
            TEN_AM,
            None,
        ),
        (
            "nurse on another team listens to a voicemail",
            &nurse,
            &oncology,
            "listen",
            "voicemail",
            TEN_AM,
            None,
        ),
        (
            "receptionist listens to a voicemail",
            &receptionist,
            &[],
            "listen",
            "voicemail",
            TEN_AM,
            None,
        ),
        (
            "receptionist transfers a call",
            &receptionist,
            &[],
            "transfer",
            "call",
            TEN_AM,
            None,
        ),
        (
            "physician exports a recording by day",
            &physician,
            &cardiology,
            "export",
            "recording",
            TEN_AM,
            None,
        ),
        (
            "physician exports a recording at night",
            &physician,
            &cardiology,
            "export",
            "recording",
            TEN_PM,
            None,
        ),
        (
            "on-call physician breaks the glass",
            &on_call,
            &oncology,
            "play",
            "recording",
            TEN_AM,
            Some(grant),
        ),
        (
            "administrator plays a recording",
            &admin,
            &[],
            "play",
            "recording",
            TEN_AM,
            None,
        ),
        (
            "patient without MFA plays their recording",
            &patient_session,
            &[],
            "play",
            "recording",
            TEN_AM,
            None,
        ),
        (
            "patient with MFA plays their recording",
            &patient_mfa,
            &[],
            "play",
            "recording",
            TEN_AM,
            None,
        ),
    ];

    for (what, session, teams, action, resource, now, break_glass) in cases {
        let request = Request {
            principal: session.principal(teams),
            action: policy.action(action).ok_or("unknown action")?,
            resource: Resource {
                kind: policy.resource_type(resource).ok_or("unknown resource")?,
                owner: Some(patient),
                care_teams: &cardiology,
                ephi: true,
                attributes: Attributes::NONE,
            },
            attributes: Attributes::NONE,
            now,
            break_glass,
        };
        let decision = policy.decide(&request);
        println!("{what}:");
        println!("  {}", serde_json::to_string(&decision)?);
    }

    // A policy with mistakes is refused, every mistake with its place.
    let broken = HOSPITAL_POLICY
        .replace(
            "inherits = [\"nurse\"]",
            "inherits = [\"nurse\", \"on_call_physician\"]",
        )
        .replace(
            "roles = [\"auditor\"]\nresources = [\"policy\"]",
            "roles = [\"auditer\"]\nresources = [\"policy\"]",
        );
    if let Err(PolicyError::Invalid(errors)) = Policy::from_toml(&broken) {
        println!("a broken copy of the policy is refused:");
        for e in errors {
            println!("  {e}");
        }
    }
    Ok(())
}
