//! Property tests on generated policies and requests:
//! - the compiled decision agrees with a direct reading of the rules;
//! - adding a permit never turns an allow into a deny;
//! - removing a role from a session never grants more, except where the
//!   removed role carried the forbid that denied;
//! - a forbid that matches always wins.

// Test helpers outside #[test] functions may unwrap, index and panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use carevox_authz::{Attributes, Pii, PolicyError, ValidationErrorKind};
use carevox_authz::{
    BreakGlass, PatientId, Policy, Principal, Reason, Request, Resource, RoleSet, TeamId, UserId,
    Verdict,
};
use proptest::prelude::*;

const ROLES: usize = 5;
/// (resource, its actions)
const RESOURCES: [(&str, &[&str]); 2] = [("a", &["x", "y"]), ("b", &["x", "z"])];

#[derive(Debug, Clone)]
struct GenRule {
    permit: bool,
    roles: Option<Vec<usize>>,
    /// Index into RESOURCES, or 2 for both (then action "x" only).
    resource: usize,
    actions: Vec<usize>,
    relation: u8,
    ephi: Option<bool>,
    mfa: Option<bool>,
    hours: Option<(u16, u16)>,
    break_glass: bool,
}

impl GenRule {
    fn slots(&self) -> Vec<(&'static str, &'static str)> {
        if self.resource == 2 {
            return vec![("a", "x"), ("b", "x")];
        }
        let (r, acts) = RESOURCES[self.resource];
        self.actions.iter().map(|&a| (r, acts[a])).collect()
    }
}

#[derive(Debug, Clone)]
struct GenPolicy {
    /// inherits[i]: roles j < i that role i inherits (no cycles by construction).
    inherits: Vec<Vec<usize>>,
    rules: Vec<GenRule>,
}

fn hhmm(m: u16) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

impl GenPolicy {
    fn to_toml(&self) -> String {
        self.to_toml_skipping(&[])
    }

    /// The policy file without the rules at `skip` (ids keep their numbers).
    fn to_toml_skipping(&self, skip: &[usize]) -> String {
        let mut s = String::from("version = 1\n[break_glass]\nmax_minutes = 60\n");
        for (i, inh) in self.inherits.iter().enumerate() {
            let list: Vec<String> = inh.iter().map(|j| format!("\"r{j}\"")).collect();
            s += &format!(
                "[[roles]]\nname = \"r{i}\"\ninherits = [{}]\n",
                list.join(", ")
            );
        }
        for (r, acts) in RESOURCES {
            let list: Vec<String> = acts.iter().map(|a| format!("\"{a}\"")).collect();
            s += &format!(
                "[[resources]]\nname = \"{r}\"\nactions = [{}]\n",
                list.join(", ")
            );
        }
        for (i, r) in self.rules.iter().enumerate() {
            if skip.contains(&i) {
                continue;
            }
            s += &format!(
                "[[rules]]\nid = \"rule{i}\"\neffect = \"{}\"\n",
                if r.permit { "permit" } else { "forbid" }
            );
            s += &rule_body(r);
        }
        s
    }

    fn closure(&self, active: &[usize]) -> Vec<bool> {
        let mut has = vec![false; ROLES];
        let mut stack: Vec<usize> = active.to_vec();
        while let Some(r) = stack.pop() {
            if !has[r] {
                has[r] = true;
                stack.extend(&self.inherits[r]);
            }
        }
        has
    }
}

/// Compiles a generated policy. The generator may repeat a rule, which the
/// compiler refuses; a repeat changes no decision, so the repeats are left
/// out (and only they: any other error fails the test).
fn compile(g: &GenPolicy) -> Policy {
    match Policy::from_toml(&g.to_toml()) {
        Ok(p) => p,
        Err(PolicyError::Invalid(errors)) => {
            let skip: Vec<usize> = errors
                .iter()
                .map(|e| match &e.kind {
                    ValidationErrorKind::DuplicateRule { rule, .. } => rule[4..].parse().unwrap(),
                    other => panic!("{other}"),
                })
                .collect();
            Policy::from_toml(&g.to_toml_skipping(&skip)).unwrap()
        }
        Err(other) => panic!("{other}"),
    }
}

fn rule_body(r: &GenRule) -> String {
    let mut s = String::new();
    if let Some(roles) = &r.roles {
        let list: Vec<String> = roles.iter().map(|j| format!("\"r{j}\"")).collect();
        s += &format!("roles = [{}]\n", list.join(", "));
    }
    if r.resource == 2 {
        s += "resources = [\"a\", \"b\"]\nactions = [\"x\"]\n";
    } else {
        let (name, acts) = RESOURCES[r.resource];
        let list: Vec<String> = r
            .actions
            .iter()
            .map(|&a| format!("\"{}\"", acts[a]))
            .collect();
        s += &format!(
            "resources = [\"{name}\"]\nactions = [{}]\n",
            list.join(", ")
        );
    }
    s += match r.relation {
        1 => "relation = \"care-team\"\n",
        2 => "relation = \"self\"\n",
        _ => "",
    };
    if let Some(e) = r.ephi {
        s += &format!("ephi = {e}\n");
    }
    if let Some(m) = r.mfa {
        s += &format!("mfa = {m}\n");
    }
    if let Some((f, t)) = r.hours {
        s += &format!(
            "hours = {{ from = \"{}\", to = \"{}\" }}\n",
            hhmm(f),
            hhmm(t)
        );
    }
    if r.break_glass {
        s += "break_glass = true\n";
    }
    s
}

#[derive(Debug, Clone)]
struct GenRequest {
    active: Vec<usize>,
    mfa: bool,
    own: bool,
    team: bool,
    ephi: bool,
    minute: u64,
    /// 0 none, 1 valid, 2 expired
    glass: u8,
    slot: usize,
}

const SLOTS: [(&str, &str); 4] = [("a", "x"), ("a", "y"), ("b", "x"), ("b", "z")];
const DAY: u64 = 1_795_392_000;

fn roles_strategy() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::btree_set(0..ROLES, 1..=2).prop_map(|s| s.into_iter().collect())
}

fn rule_strategy(permit: bool) -> impl Strategy<Value = GenRule> {
    (
        prop::option::weighted(0.85, roles_strategy()),
        0usize..3,
        proptest::collection::btree_set(0usize..2, 1..=2),
        0u8..3,
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::weighted(0.3, (0u16..24, 0u16..24)),
        any::<bool>(),
    )
        .prop_map(
            move |(roles, resource, actions, relation, ephi, mfa, hours, bg)| {
                let hours = hours.filter(|(f, t)| f != t).map(|(f, t)| (f * 60, t * 60));
                let mut r = GenRule {
                    permit,
                    roles,
                    resource,
                    actions: actions.into_iter().collect(),
                    relation,
                    ephi,
                    mfa,
                    hours,
                    break_glass: permit && bg,
                };
                // Forbids always carry a condition, so that no permit is shadowed
                // (which validation would refuse as a rule that never applies).
                if !permit
                    && r.relation == 0
                    && r.ephi.is_none()
                    && r.mfa.is_none()
                    && r.hours.is_none()
                {
                    r.mfa = Some(false);
                }
                r
            },
        )
}

fn policy_strategy() -> impl Strategy<Value = GenPolicy> {
    let inherits = (0..ROLES)
        .map(|i| proptest::collection::btree_set(0..i.max(1), 0..=i.min(2)))
        .collect::<Vec<_>>();
    (
        inherits,
        proptest::collection::vec(any::<bool>().prop_flat_map(rule_strategy), 1..10),
    )
        .prop_map(|(inh, rules)| GenPolicy {
            inherits: inh
                .into_iter()
                .enumerate()
                .map(|(i, s)| s.into_iter().filter(|&j| j < i).collect())
                .collect(),
            rules,
        })
}

fn request_strategy() -> impl Strategy<Value = GenRequest> {
    (
        proptest::collection::btree_set(0..ROLES, 0..=3),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u64..1440,
        0u8..3,
        0usize..4,
    )
        .prop_map(
            |(active, mfa, own, team, ephi, minute, glass, slot)| GenRequest {
                active: active.into_iter().collect(),
                mfa,
                own,
                team,
                ephi,
                minute,
                glass,
                slot,
            },
        )
}

fn role_set(p: &Policy, active: &[usize]) -> RoleSet {
    let names: Vec<String> = active.iter().map(|r| format!("r{r}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    p.role_set(&names).unwrap()
}

const USER_TEAMS: [TeamId; 2] = [TeamId(1), TeamId(2)];
const OTHER_TEAMS: [TeamId; 1] = [TeamId(9)];
const PATIENT_TEAMS: [TeamId; 1] = [TeamId(2)];

fn decide<'p>(p: &'p Policy, req: &GenRequest, roles: RoleSet) -> carevox_authz::Decision<'p> {
    let now = DAY + req.minute * 60;
    let (res, act) = SLOTS[req.slot];
    let grant = match req.glass {
        0 => None,
        1 => Some(BreakGlass {
            reason: Pii::new("emergency"),
            issued_at: now - 60,
            expires_at: now + 60,
        }),
        _ => Some(BreakGlass {
            reason: Pii::new("emergency"),
            issued_at: now - 120,
            expires_at: now - 60,
        }),
    };
    p.decide(&Request {
        principal: Principal::new(
            p,
            UserId(1),
            roles,
            req.mfa,
            Some(PatientId::new(if req.own { 5 } else { 6 })),
            if req.team { &USER_TEAMS } else { &OTHER_TEAMS },
        )
        .unwrap(),
        action: p.action(act).unwrap(),
        resource: Resource {
            kind: p.resource_type(res).unwrap(),
            owner: Some(PatientId::new(5)),
            care_teams: &PATIENT_TEAMS,
            ephi: req.ephi,
            attributes: Attributes::NONE,
        },
        attributes: Attributes::NONE,
        now,
        break_glass: grant,
    })
}

/// Whether generated rule `r` matches the request, read directly from the model.
fn naive_match(r: &GenRule, req: &GenRequest, has: &[bool]) -> bool {
    let slot = SLOTS[req.slot];
    r.slots().contains(&slot)
        && r.roles.as_ref().is_none_or(|rs| rs.iter().any(|&x| has[x]))
        && r.ephi.is_none_or(|e| e == req.ephi)
        && r.mfa.is_none_or(|m| m == req.mfa)
        && r.hours.is_none_or(|(f, t)| {
            let m = u16::try_from(req.minute).unwrap();
            if f < t {
                f <= m && m < t
            } else {
                m >= f || m < t
            }
        })
        && match r.relation {
            1 => req.team,
            2 => req.own,
            _ => true,
        }
}

fn naive_allows(g: &GenPolicy, req: &GenRequest) -> bool {
    let has = g.closure(&req.active);
    if g.rules
        .iter()
        .any(|r| !r.permit && naive_match(r, req, &has))
    {
        return false;
    }
    g.rules
        .iter()
        .any(|r| r.permit && (!r.break_glass || req.glass == 1) && naive_match(r, req, &has))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn compiled_decision_matches_the_rules(g in policy_strategy(), reqs in proptest::collection::vec(request_strategy(), 16)) {
        let p = compile(&g);
        for req in &reqs {
            let d = decide(&p, req, role_set(&p, &req.active));
            prop_assert_eq!(d.is_allowed(), naive_allows(&g, req), "{:?} {:?}", req, d);
            // The deciding rule exists and has the matching effect.
            match d.reason {
                Reason::Permitted { rule } => prop_assert!(g.rules[rule[4..].parse::<usize>().unwrap()].permit),
                Reason::Forbidden { rule } => prop_assert!(!g.rules[rule[4..].parse::<usize>().unwrap()].permit),
                Reason::NotPermitted => prop_assert_eq!(d.verdict, Verdict::Deny),
                other => return Err(TestCaseError::fail(format!("unexpected reason {other:?}"))),
            }
        }
    }

    #[test]
    fn adding_a_permit_never_turns_allow_into_deny(
        g in policy_strategy(),
        extra in rule_strategy(true),
        reqs in proptest::collection::vec(request_strategy(), 16),
    ) {
        let before = compile(&g);
        let mut g2 = g.clone();
        let at = g2.rules.len() / 2;
        g2.rules.insert(at, extra);
        let after = compile(&g2);
        for req in &reqs {
            let d1 = decide(&before, req, role_set(&before, &req.active));
            let d2 = decide(&after, req, role_set(&after, &req.active));
            prop_assert!(!d1.is_allowed() || d2.is_allowed(), "{:?}: {:?} then {:?}", req, d1, d2);
            // A forbid decides the same way in both.
            if let Reason::Forbidden { .. } = d1.reason {
                prop_assert_eq!(d2.verdict, Verdict::Deny);
            }
        }
    }

    #[test]
    fn removing_a_role_never_grants_more(
        g in policy_strategy(),
        reqs in proptest::collection::vec(request_strategy(), 16),
        drop in 0usize..3,
    ) {
        let p = compile(&g);
        for req in &reqs {
            if req.active.is_empty() {
                continue;
            }
            let full = decide(&p, req, role_set(&p, &req.active));
            let mut fewer = req.active.clone();
            let removed = fewer.remove(drop % fewer.len());
            let less = decide(&p, req, role_set(&p, &fewer));
            if less.is_allowed() && !full.is_allowed() {
                // Only a forbid scoped to a role that went away may have lifted.
                let Reason::Forbidden { rule } = full.reason else {
                    return Err(TestCaseError::fail(format!("{req:?}: not permitted with more roles, allowed with fewer")));
                };
                let r = &g.rules[rule[4..].parse::<usize>().unwrap()];
                let had = g.closure(&req.active);
                let has = g.closure(&fewer);
                let scoped = r.roles.as_ref().is_some_and(|rs| rs.iter().all(|&x| !has[x]) && rs.iter().any(|&x| had[x]));
                prop_assert!(scoped, "{:?} removed r{}: {:?} -> {:?}", req, removed, full, less);
            }
        }
    }

    #[test]
    fn a_matching_forbid_always_wins(
        g in policy_strategy(),
        req in request_strategy(),
        scoped in any::<bool>(),
    ) {
        // A forbid written for exactly this request, at the end of the file.
        let (res, act) = SLOTS[req.slot];
        let resource = RESOURCES.iter().position(|(r, _)| *r == res).unwrap();
        let action = RESOURCES[resource].1.iter().position(|a| *a == act).unwrap();
        let forbid = GenRule {
            permit: false,
            roles: if scoped && !req.active.is_empty() { Some(vec![req.active[0]]) } else { None },
            resource,
            actions: vec![action],
            relation: 0,
            ephi: Some(req.ephi),
            mfa: Some(req.mfa),
            hours: None,
            break_glass: false,
        };
        let mut g2 = g.clone();
        g2.rules.push(forbid);
        let p = compile(&g2);
        let d = decide(&p, &req, role_set(&p, &req.active));
        prop_assert_eq!(d.verdict, Verdict::Deny);
        prop_assert!(matches!(d.reason, Reason::Forbidden { .. }), "{:?}", d);
    }
}
