//! The sample hospital policy against its decision table
//! (`tests/data/hospital_decisions.txt`): every role against every resource
//! type and action, in several request contexts.

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

const TABLE: &str = include_str!("data/hospital_decisions.txt");

/// 2026-11-23 00:00:00 UTC.
const MIDNIGHT: u64 = 1_795_392_000;

struct Context {
    name: String,
    team: bool,
    own: bool,
    mfa: bool,
    ephi: bool,
    minute: u64,
    break_glass: String,
}

fn parse_context(line: &str) -> Context {
    let (name, rest) = line.trim_start_matches('[').split_once(']').unwrap();
    let mut ctx = Context {
        name: name.to_owned(),
        team: false,
        own: false,
        mfa: false,
        ephi: false,
        minute: 0,
        break_glass: "none".into(),
    };
    for kv in rest.split_whitespace() {
        let (k, v) = kv.split_once('=').unwrap();
        let yes = v == "yes";
        match k {
            "team" => ctx.team = yes,
            "own" => ctx.own = yes,
            "mfa" => ctx.mfa = yes,
            "ephi" => ctx.ephi = yes,
            "time" => {
                let (h, m) = v.split_once(':').unwrap();
                ctx.minute = h.parse::<u64>().unwrap() * 60 + m.parse::<u64>().unwrap();
            }
            "break_glass" => ctx.break_glass = v.to_owned(),
            other => panic!("unknown context key {other}"),
        }
    }
    ctx
}

#[test]
fn hospital_decision_table() {
    let policy = Policy::from_toml(HOSPITAL_POLICY).unwrap();
    let mut roles: Vec<String> = Vec::new();
    let mut ctx: Option<Context> = None;
    let mut checked = 0;
    let mut failures = Vec::new();
    for (lineno, line) in TABLE.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(r) = line.strip_prefix("roles:") {
            roles = r.split_whitespace().map(str::to_owned).collect();
            continue;
        }
        if line.starts_with('[') {
            ctx = Some(parse_context(line));
            continue;
        }
        let ctx = ctx.as_ref().expect("a context before the first row");
        let cells: Vec<&str> = line.split_whitespace().collect();
        let (resource, action, expected) = (cells[0], cells[1], &cells[2..]);
        assert_eq!(expected.len(), roles.len(), "line {}", lineno + 1);
        for (role, want) in roles.iter().zip(expected) {
            let role_id = policy.role(role).unwrap();
            let user = UserId(7);
            let patient = PatientId::new(42);
            let mut assignments = Assignments::new();
            assignments.assign(&policy, user, role_id).unwrap();
            let own = if role == "patient" && ctx.own {
                Some(patient)
            } else if role == "patient" {
                Some(PatientId::new(43))
            } else {
                None
            };
            let mut session = Session::new(user, ctx.mfa, own);
            session.activate(&policy, &assignments, role_id).unwrap();
            let user_teams = [TeamId(if ctx.team { 3 } else { 4 })];
            let patient_teams = [TeamId(3)];
            let now = MIDNIGHT + ctx.minute * 60;
            let grant = match ctx.break_glass.as_str() {
                "none" => None,
                "valid" => Some(BreakGlass {
                    reason: Pii::new("unresponsive patient in the emergency department"),
                    issued_at: now - 600,
                    expires_at: now + 3000,
                }),
                "expired" => Some(BreakGlass {
                    reason: Pii::new("unresponsive patient in the emergency department"),
                    issued_at: now - 7200,
                    expires_at: now - 1,
                }),
                other => panic!("unknown break_glass {other}"),
            };
            let request = Request {
                principal: session.principal(&user_teams),
                action: policy.action(action).unwrap(),
                resource: Resource {
                    kind: policy.resource_type(resource).unwrap(),
                    owner: Some(patient),
                    care_teams: &patient_teams,
                    ephi: ctx.ephi,
                    attributes: Attributes::NONE,
                },
                attributes: Attributes::NONE,
                now,
                break_glass: grant,
            };
            let d = policy.decide(&request);
            let (want_rule, want_glass) = match want.strip_suffix('*') {
                Some(r) => (r, true),
                None => (*want, false),
            };
            let ok = match want_rule {
                "-" => d.verdict == Verdict::Deny && d.reason == Reason::NotPermitted,
                f if f.starts_with('!') => {
                    d.verdict == Verdict::Deny && d.reason == Reason::Forbidden { rule: &f[1..] }
                }
                p => d.verdict == Verdict::Allow && d.reason == Reason::Permitted { rule: p },
            };
            let glass_ok = match ctx.break_glass.as_str() {
                "none" => d.break_glass == BreakGlassUse::None && !d.review,
                "valid" => {
                    d.review
                        && d.break_glass
                            == if want_glass {
                                BreakGlassUse::Used
                            } else {
                                BreakGlassUse::Unused
                            }
                }
                _ => d.review && d.break_glass == BreakGlassUse::Expired,
            };
            if !ok || !glass_ok {
                failures.push(format!(
                    "[{}] {resource} {action} as {role}: expected {want}, got {d:?}",
                    ctx.name
                ));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // 7 contexts x 17 rows x 8 roles.
    assert_eq!(checked, 7 * 17 * 8);
}
