//! Break-the-glass on the sample hospital policy: a stated reason, a limited
//! time, a review flag on every use; and the audit form of decisions.

// Test helpers outside #[test] functions may unwrap, index and panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use carevox_authz::{
    Assignments, BreakGlass, BreakGlassUse, HOSPITAL_POLICY, PatientId, Policy, Reason, Request,
    Resource, Session, TeamId, UserId, Verdict,
};
use carevox_authz::{Attributes, Pii};

const TEN_AM: u64 = 1_795_428_000;

fn on_call_request<'a>(
    p: &Policy,
    session: &'a Session,
    grant: Option<BreakGlass<'a>>,
    now: u64,
) -> Request<'a> {
    Request {
        principal: session.principal(&[]),
        action: p.action("listen").unwrap(),
        resource: Resource {
            kind: p.resource_type("voicemail").unwrap(),
            owner: Some(PatientId::new(77)),
            care_teams: &[TeamId(5)],
            ephi: true,
            attributes: Attributes::NONE,
        },
        attributes: Attributes::NONE,
        now,
        break_glass: grant,
    }
}

fn session(p: &Policy, role: &str, mfa: bool) -> Session {
    let mut a = Assignments::new();
    let r = p.role(role).unwrap();
    a.assign(p, UserId(10), r).unwrap();
    let mut s = Session::new(UserId(10), mfa, None);
    s.activate(p, &a, r).unwrap();
    s
}

fn grant(issued_at: u64, minutes: u64) -> BreakGlass<'static> {
    BreakGlass {
        reason: Pii::new("patient arrived unconscious; history needed"),
        issued_at,
        expires_at: issued_at + minutes * 60,
    }
}

#[test]
fn grant_opens_access_until_it_expires() {
    let p = Policy::from_toml(HOSPITAL_POLICY).unwrap();
    let s = session(&p, "on_call_physician", true);
    let g = grant(TEN_AM, 30);

    let before = p.decide(&on_call_request(&p, &s, None, TEN_AM));
    assert_eq!(before.reason, Reason::NotPermitted);
    assert!(!before.review);

    for now in [TEN_AM, TEN_AM + 29 * 60 + 59] {
        let d = p.decide(&on_call_request(&p, &s, Some(g), now));
        assert_eq!(d.verdict, Verdict::Allow);
        assert_eq!(
            d.reason,
            Reason::Permitted {
                rule: "on-call-break-glass"
            }
        );
        assert_eq!(d.break_glass, BreakGlassUse::Used);
        assert!(d.review);
    }
    for now in [TEN_AM - 1, TEN_AM + 30 * 60, TEN_AM + 86_400] {
        let d = p.decide(&on_call_request(&p, &s, Some(g), now));
        assert_eq!(d.verdict, Verdict::Deny, "at {now}");
        assert_eq!(d.break_glass, BreakGlassUse::Expired);
        assert!(d.review, "a presented grant is always flagged");
    }
}

#[test]
fn grant_needs_a_reason_and_a_bounded_duration() {
    let p = Policy::from_toml(HOSPITAL_POLICY).unwrap();
    let s = session(&p, "on_call_physician", true);
    let blank = BreakGlass {
        reason: Pii::new("   "),
        ..grant(TEN_AM, 30)
    };
    let d = p.decide(&on_call_request(&p, &s, Some(blank), TEN_AM + 60));
    assert_eq!(
        (d.verdict, d.break_glass),
        (Verdict::Deny, BreakGlassUse::NoReason)
    );
    assert!(d.review);

    // The policy allows at most 240 minutes.
    assert_eq!(p.break_glass_max_secs(), Some(240 * 60));
    let ok = p.decide(&on_call_request(
        &p,
        &s,
        Some(grant(TEN_AM, 240)),
        TEN_AM + 60,
    ));
    assert!(ok.is_allowed());
    let long = p.decide(&on_call_request(
        &p,
        &s,
        Some(grant(TEN_AM, 241)),
        TEN_AM + 60,
    ));
    assert_eq!(
        (long.verdict, long.break_glass),
        (Verdict::Deny, BreakGlassUse::TooLong)
    );
}

#[test]
fn grant_does_not_widen_other_roles_nor_beat_forbids() {
    let p = Policy::from_toml(HOSPITAL_POLICY).unwrap();
    let g = Some(grant(TEN_AM, 30));
    // A plain physician has no emergency permit.
    let phys = session(&p, "physician", true);
    let d = p.decide(&on_call_request(&p, &phys, g, TEN_AM + 60));
    assert_eq!(d.reason, Reason::NotPermitted);
    assert_eq!(d.break_glass, BreakGlassUse::Unused);
    assert!(d.review);
    // Without MFA the ePHI forbid wins even with a valid grant.
    let no_mfa = session(&p, "on_call_physician", false);
    let d = p.decide(&on_call_request(&p, &no_mfa, g, TEN_AM + 60));
    assert_eq!(
        d.reason,
        Reason::Forbidden {
            rule: "forbid-ephi-without-mfa"
        }
    );
    assert_eq!(d.break_glass, BreakGlassUse::Unused);
}

#[test]
fn ordinary_permit_is_preferred_to_the_emergency_one() {
    let p = Policy::from_toml(HOSPITAL_POLICY).unwrap();
    let s = session(&p, "on_call_physician", true);
    let teams = [TeamId(5)];
    let mut req = on_call_request(&p, &s, Some(grant(TEN_AM, 30)), TEN_AM + 60);
    req.principal = s.principal(&teams);
    let d = p.decide(&req);
    assert_eq!(
        d.reason,
        Reason::Permitted {
            rule: "care-team-voicemail"
        }
    );
    assert_eq!(d.break_glass, BreakGlassUse::Unused);
    assert!(d.review);
}

#[test]
fn decision_serializes_for_the_audit_log() {
    let p = Policy::from_toml(HOSPITAL_POLICY).unwrap();
    let s = session(&p, "on_call_physician", true);
    let d = p.decide(&on_call_request(
        &p,
        &s,
        Some(grant(TEN_AM, 30)),
        TEN_AM + 60,
    ));
    assert_eq!(
        serde_json::to_string(&d).unwrap(),
        r#"{"verdict":"allow","reason":{"kind":"permitted","rule":"on-call-break-glass"},"break_glass":"used","review":true}"#
    );
    let none = p.decide(&on_call_request(&p, &s, None, TEN_AM));
    assert_eq!(
        serde_json::to_string(&none).unwrap(),
        r#"{"verdict":"deny","reason":{"kind":"not_permitted"},"break_glass":"none","review":false,"nearest":"care-team-voicemail","unmet":["not_on_care_team"]}"#
    );
    // The reason text is never in the decision nor in the grant's Debug form.
    let g = grant(TEN_AM, 30);
    assert!(!format!("{g:?}").contains("unconscious"));
}

#[test]
fn time_of_day_uses_the_policy_zone() {
    // The same policy in New York's zone (EST, UTC-5, in late November):
    // 10:00 UTC is 05:00 local, outside the day window of
    // physician-export-day (07:00-19:00).
    let shifted =
        HOSPITAL_POLICY.replace("time_zone = \"UTC\"", "time_zone = \"America/New_York\"");
    assert_ne!(shifted, HOSPITAL_POLICY);
    let p = Policy::from_toml(&shifted).unwrap();
    let s = session(&p, "physician", true);
    let teams = [TeamId(5)];
    let req = |now| Request {
        principal: s.principal(&teams),
        action: p.action("export").unwrap(),
        resource: Resource {
            kind: p.resource_type("recording").unwrap(),
            owner: Some(PatientId::new(1)),
            care_teams: &teams,
            ephi: true,
            attributes: Attributes::NONE,
        },
        attributes: Attributes::NONE,
        now,
        break_glass: None,
    };
    assert_eq!(p.decide(&req(TEN_AM)).reason, Reason::NotPermitted);
    assert_eq!(
        p.decide(&req(TEN_AM + 5 * 3600)).reason,
        Reason::Permitted {
            rule: "physician-export-day"
        }
    );
}
