//! carevox-authz beside Cedar and Casbin: decision latency on the sample
//! hospital policy (8 roles with a hierarchy) with 200 users, 20 care teams
//! and 500 patients, and the time to compile that policy.
//!
//! All three engines answer the same 1,024 pre-generated requests (seeded),
//! taken in turn, and are checked to agree on every one before measuring.
//!
//! - carevox: `Policy::decide` on the compiled `policies/hospital.toml`; the
//!   caller hands over the care teams of the user and of the patient.
//! - Cedar: `crates/authz/tests/cedar/hospital.cedar` with an entity store of
//!   the 8 roles (hierarchy as entity parents), 200 users (activated roles as
//!   parents, care teams as an attribute) and 500 x 6 resources; the Cedar
//!   requests are built before measuring, so only `is_authorized` is timed.
//! - Casbin: an RBAC model with a role hierarchy (`g`), care-team membership
//!   as a second grouping (`g2`, user to team), deny-override effect, and ABAC
//!   conditions in the matcher, with a registered time-window function.
//!
//! Run: `cargo bench -p carevox-benches --bench authz`.

// Set-up code of a benchmark: its tables are fixed and its indices in range.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::type_complexity
)]

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::str::FromStr;

use carevox_authz::{Attributes, Pii};
use carevox_authz::{
    BreakGlass, HOSPITAL_POLICY, PatientId, Policy, Principal, Request, Resource, TeamId, UserId,
};
use casbin::function_map::OperatorFunction;
use casbin::prelude::*;
use casbin::rhai::Dynamic;
use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityUid, PolicySet, RestrictedExpression, Schema,
};
use criterion::{Criterion, criterion_group, criterion_main};

const CEDAR_POLICY: &str = include_str!("../../crates/authz/tests/cedar/hospital.cedar");
const CEDAR_SCHEMA: &str = include_str!("../../crates/authz/tests/cedar/hospital.cedarschema");

const USERS: u64 = 200;
const TEAMS: u64 = 20;
const PATIENTS: u64 = 500;
const REQUESTS: usize = 1024;

/// (carevox resource type, Cedar entity type, actions)
const RESOURCES: [(&str, &str, &[&str]); 6] = [
    ("voicemail", "Voicemail", &["list", "listen", "delete"]),
    (
        "recording",
        "Recording",
        &["list", "play", "export", "delete"],
    ),
    ("call", "Call", &["place", "answer", "transfer", "monitor"]),
    ("call_log", "CallLog", &["read", "export"]),
    ("audit_log", "AuditLog", &["read", "export"]),
    ("policy", "PolicyDoc", &["read", "update"]),
];

const CASBIN_MODEL: &str = r#"
[request_definition]
r = sub, obj, act, team, owner, me, ephi, mfa, minute, glass

[policy_definition]
p = sub, obj, act, eft, rel, ephi, mfa, from, to, glass

[role_definition]
g = _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = (p.sub == "*" || g(r.sub, p.sub)) && r.obj == p.obj && r.act == p.act && (p.rel == "any" || (p.rel == "team" && r.owner != "" && g2(r.sub, r.team)) || (p.rel == "self" && r.me != "" && r.me == r.owner)) && (p.ephi == "*" || p.ephi == r.ephi) && (p.mfa == "*" || p.mfa == r.mfa) && inHours(r.minute, p.from, p.to) && (p.glass == "no" || r.glass == "yes")
"#;

/// The hospital policy's rules for Casbin, one line per (rule, resource,
/// action): sub, obj, act, eft, rel, ephi, mfa, from, to, glass.
fn casbin_rules() -> Vec<Vec<String>> {
    #[rustfmt::skip]
    let rules: &[(&str, &[&str], &[&str], &str, &str, &str, &str, (&str, &str), &str)] = &[
        ("administrator", &["voicemail", "recording", "call_log"], &["listen", "play", "export", "read"], "deny", "any", "true", "*", ("*", "*"), "no"),
        ("*", &["voicemail", "recording", "call_log"], &["list", "listen", "delete", "play", "export", "read"], "deny", "any", "true", "false", ("*", "*"), "no"),
        ("*", &["policy"], &["update"], "deny", "any", "*", "false", ("*", "*"), "no"),
        ("*", &["call"], &["monitor"], "deny", "any", "*", "*", ("1200", "420"), "no"),
        ("patient", &["voicemail"], &["list", "listen", "delete"], "allow", "self", "*", "*", ("*", "*"), "no"),
        ("patient", &["recording"], &["list", "play"], "allow", "self", "*", "*", ("*", "*"), "no"),
        ("patient", &["call_log"], &["read"], "allow", "self", "*", "*", ("*", "*"), "no"),
        ("patient", &["call"], &["place", "answer"], "allow", "any", "*", "*", ("*", "*"), "no"),
        ("receptionist", &["call"], &["place", "answer", "transfer"], "allow", "any", "*", "*", ("*", "*"), "no"),
        ("nurse", &["call"], &["place", "answer", "transfer"], "allow", "any", "*", "*", ("*", "*"), "no"),
        ("billing", &["call"], &["place", "answer", "transfer"], "allow", "any", "*", "*", ("*", "*"), "no"),
        ("receptionist", &["call_log"], &["read"], "allow", "any", "false", "*", ("*", "*"), "no"),
        ("nurse", &["voicemail"], &["list", "listen"], "allow", "team", "*", "*", ("*", "*"), "no"),
        ("nurse", &["call_log"], &["read"], "allow", "team", "*", "*", ("*", "*"), "no"),
        ("physician", &["voicemail"], &["delete"], "allow", "team", "*", "*", ("*", "*"), "no"),
        ("physician", &["recording"], &["list", "play"], "allow", "team", "*", "*", ("*", "*"), "no"),
        ("physician", &["recording"], &["export"], "allow", "team", "*", "*", ("420", "1140"), "no"),
        ("physician", &["call"], &["monitor"], "allow", "team", "*", "*", ("*", "*"), "no"),
        ("on_call_physician", &["voicemail"], &["list", "listen"], "allow", "any", "*", "*", ("*", "*"), "yes"),
        ("on_call_physician", &["recording"], &["list", "play"], "allow", "any", "*", "*", ("*", "*"), "yes"),
        ("on_call_physician", &["call_log"], &["read"], "allow", "any", "*", "*", ("*", "*"), "yes"),
        ("billing", &["call_log"], &["read", "export"], "allow", "any", "false", "*", ("360", "1200"), "no"),
        ("administrator", &["voicemail", "recording"], &["list", "delete"], "allow", "any", "*", "*", ("*", "*"), "no"),
        ("administrator", &["call_log"], &["read"], "allow", "any", "*", "*", ("*", "*"), "no"),
        ("administrator", &["policy"], &["read", "update"], "allow", "any", "*", "*", ("*", "*"), "no"),
        ("auditor", &["audit_log"], &["read", "export"], "allow", "any", "*", "*", ("*", "*"), "no"),
        ("auditor", &["policy"], &["read"], "allow", "any", "*", "*", ("*", "*"), "no"),
        ("auditor", &["call_log"], &["read"], "allow", "any", "*", "*", ("*", "*"), "no"),
    ];
    let mut lines = Vec::new();
    for (sub, objs, acts, eft, rel, ephi, mfa, (from, to), glass) in rules {
        for obj in *objs {
            let declared = RESOURCES.iter().find(|r| r.0 == *obj).unwrap().2;
            for act in acts.iter().filter(|a| declared.contains(a)) {
                lines.push(
                    [*sub, obj, act, eft, rel, ephi, mfa, from, to, glass]
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect(),
                );
            }
        }
    }
    lines
}

/// `inHours(minute, from, to)`: true without a window ("*"), else whether
/// the minute of the day lies in [from, to), wrapping past midnight.
fn in_hours(minute: Dynamic, from: Dynamic, to: Dynamic) -> Dynamic {
    let (Ok(from), Ok(to)) = (from.into_string(), to.into_string()) else {
        return false.into();
    };
    if from == "*" {
        return true.into();
    }
    let m = minute.as_int().map_or(-1, i64::from);
    let (f, t) = (from.parse::<i64>().unwrap(), to.parse::<i64>().unwrap());
    let inside = if f < t {
        f <= m && m < t
    } else {
        m >= f || m < t
    };
    inside.into()
}

/// SplitMix64: a small, seeded, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> usize {
        usize::try_from(self.next() % n).unwrap()
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct User {
    role: &'static str,
    teams: Vec<TeamId>,
    patient: Option<PatientId>,
    mfa: bool,
}

/// The hospital: users with one role each, care teams, patients.
fn hospital() -> Vec<User> {
    let mut rng = Rng(0x00A0_7A11_2026);
    (0..USERS)
        .map(|u| {
            let role = match u % 20 {
                0..=3 => "nurse",
                4..=6 => "physician",
                7 => "on_call_physician",
                8 | 9 => "receptionist",
                10 => "billing",
                11 => "administrator",
                12 => "auditor",
                _ => "patient",
            };
            let clinician = matches!(role, "nurse" | "physician" | "on_call_physician");
            let mut teams: Vec<TeamId> = if clinician {
                (0..1 + rng.below(2))
                    .map(|_| TeamId(u32::try_from(rng.below(TEAMS)).unwrap()))
                    .collect()
            } else {
                Vec::new()
            };
            teams.sort_unstable();
            teams.dedup();
            User {
                role,
                teams,
                patient: (role == "patient").then_some(PatientId::new(u % PATIENTS)),
                mfa: rng.chance(85),
            }
        })
        .collect()
}

fn patient_team(p: u64) -> [TeamId; 1] {
    [TeamId(u32::try_from(p % TEAMS).unwrap())]
}

/// One generated request, in plain data every engine is fed from.
struct Case {
    user: usize,
    resource: usize,
    action: &'static str,
    patient: u64,
    team: [TeamId; 1],
    ephi: bool,
    now: u64,
    glass: Option<BreakGlass<'static>>,
}

fn cases(users: &[User]) -> Vec<Case> {
    let mut rng = Rng(0x0B0E_2026_1123);
    (0..REQUESTS)
        .map(|_| {
            let user = rng.below(USERS);
            let resource = rng.below(6);
            let actions = RESOURCES[resource].2;
            let action = actions[rng.below(u64::try_from(actions.len()).unwrap())];
            // Patients mostly ask about themselves, clinicians mostly about
            // patients of their own teams.
            let patient = match (&users[user].patient, users[user].teams.first()) {
                (Some(p), _) if rng.chance(70) => p.get(),
                (_, Some(t)) if rng.chance(70) => {
                    u64::from(t.0) + TEAMS * u64::try_from(rng.below(PATIENTS / TEAMS)).unwrap()
                }
                _ => u64::try_from(rng.below(PATIENTS)).unwrap(),
            };
            let now = 1_795_392_000 + u64::try_from(rng.below(86_400)).unwrap();
            let glass =
                (users[user].role == "on_call_physician" && rng.chance(50)).then(|| BreakGlass {
                    reason: Pii::new("emergency"),
                    issued_at: now - 60,
                    expires_at: now + 1800,
                });
            Case {
                user,
                resource,
                action,
                patient,
                team: patient_team(patient),
                ephi: rng.chance(70),
                now,
                glass,
            }
        })
        .collect()
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_str(&format!("{ty}::\"{id}\"")).unwrap()
}

fn long(v: u64) -> RestrictedExpression {
    RestrictedExpression::new_long(i64::try_from(v).unwrap())
}

fn teams_expr(teams: &[TeamId]) -> RestrictedExpression {
    RestrictedExpression::new_set(
        teams
            .iter()
            .map(|t| RestrictedExpression::new_long(i64::from(t.0))),
    )
}

fn cedar_entities(policy: &Policy, users: &[User], schema: &Schema) -> Entities {
    let mut all = Vec::new();
    for (role, name) in policy.roles() {
        let parents = policy
            .inherited(role)
            .unwrap()
            .iter()
            .filter(|&r| r != role)
            .map(|r| uid("Role", policy.role_name(r).unwrap()))
            .collect();
        all.push(Entity::new_no_attrs(uid("Role", name), parents));
    }
    for (i, u) in users.iter().enumerate() {
        let mut attrs = HashMap::from([
            ("mfa".to_owned(), RestrictedExpression::new_bool(u.mfa)),
            ("teams".to_owned(), teams_expr(&u.teams)),
        ]);
        if let Some(p) = u.patient {
            attrs.insert("patient".into(), long(p.get()));
        }
        let parents = HashSet::from([uid("Role", u.role)]);
        all.push(Entity::new(uid("User", &i.to_string()), attrs, parents).unwrap());
    }
    for p in 0..PATIENTS {
        for (_, ty, _) in RESOURCES {
            for ephi in [false, true] {
                let attrs = HashMap::from([
                    ("ephi".to_owned(), RestrictedExpression::new_bool(ephi)),
                    ("teams".to_owned(), teams_expr(&patient_team(p))),
                    ("owner".to_owned(), long(p)),
                ]);
                let id = format!("{p}-{ephi}");
                all.push(Entity::new(uid(ty, &id), attrs, HashSet::new()).unwrap());
            }
        }
    }
    Entities::from_entities(all, Some(schema)).unwrap()
}

fn cedar_request(c: &Case, schema: &Schema) -> cedar_policy::Request {
    let mut ctx = vec![
        ("now".to_owned(), long(c.now)),
        ("minute".to_owned(), long((c.now % 86_400) / 60)),
    ];
    if let Some(g) = &c.glass {
        ctx.push((
            "glass".into(),
            RestrictedExpression::new_record([
                (
                    "reason_given".to_owned(),
                    RestrictedExpression::new_bool(!g.reason.expose().trim().is_empty()),
                ),
                ("issued_at".to_owned(), long(g.issued_at)),
                ("expires_at".to_owned(), long(g.expires_at)),
            ])
            .unwrap(),
        ));
    }
    cedar_policy::Request::new(
        uid("User", &c.user.to_string()),
        uid("Action", c.action),
        uid(
            RESOURCES[c.resource].1,
            &format!("{}-{}", c.patient, c.ephi),
        ),
        Context::from_pairs(ctx).unwrap(),
        Some(schema),
    )
    .unwrap()
}

type CasbinArgs = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
);

fn casbin_args(c: &Case, users: &[User], policy_max: u64) -> CasbinArgs {
    let u = &users[c.user];
    let glass_ok = c.glass.is_some_and(|g| {
        !g.reason.expose().trim().is_empty()
            && g.issued_at <= c.now
            && c.now < g.expires_at
            && g.expires_at - g.issued_at <= policy_max
    });
    (
        format!("u{}", c.user),
        RESOURCES[c.resource].0.to_owned(),
        c.action.to_owned(),
        format!("t{}", c.team[0].0),
        c.patient.to_string(),
        u.patient.map(|p| p.get().to_string()).unwrap_or_default(),
        c.ephi.to_string(),
        u.mfa.to_string(),
        i64::try_from((c.now % 86_400) / 60).unwrap(),
        if glass_ok { "yes" } else { "no" }.to_owned(),
    )
}

/// The policy alone: model, rules and role hierarchy.
async fn casbin_policy() -> Enforcer {
    let model = DefaultModel::from_str(CASBIN_MODEL).await.unwrap();
    let mut e = Enforcer::new(model, MemoryAdapter::default())
        .await
        .unwrap();
    e.add_function("inHours", OperatorFunction::Arg3(in_hours));
    e.add_policies(casbin_rules()).await.unwrap();
    e.add_grouping_policies(vec![
        vec!["physician".into(), "nurse".into()],
        vec!["on_call_physician".into(), "physician".into()],
    ])
    .await
    .unwrap();
    e
}

/// The policy with the users' roles and care teams.
async fn casbin_enforcer(users: &[User]) -> Enforcer {
    let mut e = casbin_policy().await;
    let mut g: Vec<Vec<String>> = Vec::new();
    let mut g2: Vec<Vec<String>> = Vec::new();
    for (i, u) in users.iter().enumerate() {
        g.push(vec![format!("u{i}"), u.role.to_owned()]);
        for t in &u.teams {
            g2.push(vec![format!("u{i}"), format!("t{}", t.0)]);
        }
    }
    e.add_grouping_policies(g).await.unwrap();
    e.add_named_grouping_policies("g2", g2).await.unwrap();
    e
}

fn bench(c: &mut Criterion) {
    let policy = Policy::from_toml(HOSPITAL_POLICY).unwrap();
    let users = hospital();
    let cases = cases(&users);
    let sessions: Vec<_> = users
        .iter()
        .map(|u| policy.role_set(&[u.role]).unwrap())
        .collect();
    let ours: Vec<Request<'_>> = cases
        .iter()
        .map(|c| {
            let u = &users[c.user];
            Request {
                principal: Principal::new(
                    &policy,
                    UserId(u64::try_from(c.user).unwrap()),
                    sessions[c.user],
                    u.mfa,
                    u.patient,
                    &u.teams,
                )
                .unwrap(),
                action: policy.action(c.action).unwrap(),
                resource: Resource {
                    kind: policy.resource_type(RESOURCES[c.resource].0).unwrap(),
                    owner: Some(PatientId::new(c.patient)),
                    care_teams: &c.team,
                    ephi: c.ephi,
                    attributes: Attributes::NONE,
                },
                attributes: Attributes::NONE,
                now: c.now,
                break_glass: c.glass,
            }
        })
        .collect();

    let (schema, _) = Schema::from_cedarschema_str(CEDAR_SCHEMA).unwrap();
    let cedar_set = PolicySet::from_str(CEDAR_POLICY).unwrap();
    let entities = cedar_entities(&policy, &users, &schema);
    let cedar_reqs: Vec<_> = cases.iter().map(|c| cedar_request(c, &schema)).collect();
    let authorizer = Authorizer::new();

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let enforcer = rt.block_on(casbin_enforcer(&users));
    let max = policy.break_glass_max_secs().unwrap();
    let casbin_reqs: Vec<CasbinArgs> = cases.iter().map(|c| casbin_args(c, &users, max)).collect();

    // The three engines agree on every request.
    let mut allowed = 0;
    for (i, r) in ours.iter().enumerate() {
        let a = policy.decide(r).is_allowed();
        let b = authorizer
            .is_authorized(&cedar_reqs[i], &cedar_set, &entities)
            .decision()
            == cedar_policy::Decision::Allow;
        let c = enforcer.enforce(casbin_reqs[i].clone()).unwrap();
        assert_eq!((a, a), (b, c), "request {i}");
        allowed += usize::from(a);
    }
    assert!(
        allowed > REQUESTS / 5 && allowed < REQUESTS * 4 / 5,
        "{allowed} allowed"
    );

    let mut group = c.benchmark_group("authz/decision");
    group.bench_function("carevox", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % REQUESTS;
            black_box(policy.decide(black_box(&ours[i])).is_allowed())
        });
    });
    group.bench_function("cedar", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % REQUESTS;
            black_box(
                authorizer
                    .is_authorized(black_box(&cedar_reqs[i]), &cedar_set, &entities)
                    .decision(),
            )
        });
    });
    group.bench_function("casbin", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % REQUESTS;
            black_box(enforcer.enforce(casbin_reqs[i].clone()).unwrap())
        });
    });
    group.finish();

    let mut group = c.benchmark_group("authz/compile");
    group.bench_function("carevox", |b| {
        b.iter(|| Policy::from_toml(black_box(HOSPITAL_POLICY)).unwrap());
    });
    group.bench_function("cedar", |b| {
        b.iter(|| PolicySet::from_str(black_box(CEDAR_POLICY)).unwrap());
    });
    group.bench_function("casbin", |b| {
        b.iter(|| rt.block_on(black_box(casbin_policy())));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = carevox_benches::config();
    targets = bench
}
criterion_main!(benches);
