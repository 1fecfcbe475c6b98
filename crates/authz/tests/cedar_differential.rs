//! Differential test against Cedar: the sample hospital policy, written for
//! Cedar in `tests/cedar/hospital.cedar` (schema `hospital.cedarschema`),
//! gives the same allow or deny as `policies/hospital.toml` on 20,000
//! requests from a seeded generator, and the rule carevox names as deciding
//! is among the policies Cedar names as determining.
//!
//! Cedar receives the activated roles as the user's parents and the role
//! hierarchy as entity data, so it computes role inheritance on its own.

// Test helpers outside #[test] functions may unwrap, index and panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use carevox_authz::{Attributes, Pii, RbacError};
use carevox_authz::{
    BreakGlass, HOSPITAL_POLICY, PatientId, Policy, Principal, Reason, Request, Resource, TeamId,
    UserId, Verdict,
};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityUid, PolicySet, RestrictedExpression,
    Schema, ValidationMode, Validator,
};

const CEDAR_POLICY: &str = include_str!("cedar/hospital.cedar");
const CEDAR_SCHEMA: &str = include_str!("cedar/hospital.cedarschema");
const REQUESTS: usize = 20_000;

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

/// The sites of the policy and the time zones it gives them.
const SITES: [(&str, &str); 2] = [("boston", "America/New_York"), ("denver", "America/Denver")];
const NETWORKS: [(&str, &str); 3] = [("clinic-lan", ""), ("vpn", ""), ("internet", "")];

/// One of `items` (its name), or none a quarter of the time.
fn pick<'a>(rng: &mut Rng, items: &[(&'a str, &'a str)]) -> Option<(&'a str, &'a str)> {
    let k = usize::try_from(rng.below(u64::try_from(items.len()).unwrap() + 1)).unwrap();
    k.checked_sub(1).map(|k| items[k])
}

/// The local minute of the day of `now` in `zone`, read with jiff's bundled
/// time zone database, independently of the policy.
fn local_minute(zone: &str, now: u64) -> u64 {
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    let dt = tz.to_datetime(jiff::Timestamp::from_second(i64::try_from(now).unwrap()).unwrap());
    u64::try_from(dt.hour()).unwrap() * 60 + u64::try_from(dt.minute()).unwrap()
}

const ROLES: [&str; 8] = [
    "patient",
    "receptionist",
    "nurse",
    "physician",
    "on_call_physician",
    "billing",
    "administrator",
    "auditor",
];

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
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn teams(&mut self) -> Vec<TeamId> {
        let n = self.below(3);
        let mut t: Vec<TeamId> = (0..n)
            .map(|_| TeamId(u32::try_from(self.below(6)).unwrap()))
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_str(&format!("{ty}::\"{id}\"")).unwrap()
}

fn long(v: u64) -> RestrictedExpression {
    RestrictedExpression::new_long(i64::try_from(v).unwrap())
}

fn team_set(teams: &[TeamId]) -> RestrictedExpression {
    RestrictedExpression::new_set(
        teams
            .iter()
            .map(|t| RestrictedExpression::new_long(i64::from(t.0))),
    )
}

/// The role entities with the hierarchy of the carevox policy.
fn role_entities(policy: &Policy) -> Vec<Entity> {
    ROLES
        .iter()
        .map(|&name| {
            let me = policy.role(name).unwrap();
            let parents: HashSet<EntityUid> = policy
                .inherited(me)
                .unwrap()
                .iter()
                .filter(|&r| r != me)
                .map(|r| uid("Role", policy.role_name(r).unwrap()))
                .collect();
            Entity::new_no_attrs(uid("Role", name), parents)
        })
        .collect()
}

#[test]
fn cedar_policy_validates_against_its_schema() {
    let (schema, _) = Schema::from_cedarschema_str(CEDAR_SCHEMA).unwrap();
    let set = PolicySet::from_str(CEDAR_POLICY).unwrap();
    let result = Validator::new(schema).validate(&set, ValidationMode::default());
    let errors: Vec<String> = result.validation_errors().map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // One Cedar policy per carevox rule, with the same ids.
    let policy = Policy::from_toml(HOSPITAL_POLICY).unwrap();
    let mut ours: Vec<&str> = policy.rule_ids().collect();
    let mut theirs: Vec<&str> = set.policies().filter_map(|p| p.annotation("id")).collect();
    ours.sort_unstable();
    theirs.sort_unstable();
    assert_eq!(ours, theirs);
}

#[test]
fn same_decisions_as_cedar_on_generated_requests() {
    let policy = Policy::from_toml(HOSPITAL_POLICY).unwrap();
    let (schema, _) = Schema::from_cedarschema_str(CEDAR_SCHEMA).unwrap();
    let set = PolicySet::from_str(CEDAR_POLICY).unwrap();
    let ids: HashMap<String, String> = set
        .policies()
        .map(|p| (p.id().to_string(), p.annotation("id").unwrap().to_owned()))
        .collect();
    let roles = role_entities(&policy);
    let authorizer = Authorizer::new();
    let mut rng = Rng(0x00C0_FFEE_2026_1123);
    let mut allows = 0;
    let mut forbidden = 0;
    let mut glass_used = 0;
    let mut sod_refused = 0;

    for i in 0..REQUESTS {
        // Principal: one or two activated roles.
        let mut active = vec![ROLES[usize::try_from(rng.below(8)).unwrap()]];
        if rng.chance(30) {
            active.push(ROLES[usize::try_from(rng.below(8)).unwrap()]);
        }
        let mfa = rng.chance(75);
        let user_teams = rng.teams();
        let patient_self = if active.contains(&"patient") || rng.chance(5) {
            Some(PatientId::new(rng.below(4)))
        } else {
            None
        };
        // Resource and action.
        let (res, cedar_ty, actions) = RESOURCES[usize::try_from(rng.below(6)).unwrap()];
        let action =
            actions[usize::try_from(rng.below(u64::try_from(actions.len()).unwrap())).unwrap()];
        let owner = if rng.chance(85) {
            Some(PatientId::new(rng.below(4)))
        } else {
            None
        };
        let res_teams = rng.teams();
        let ephi = rng.chance(70);
        // Three days in November, or the days around the daylight saving
        // changes of spring and autumn 2026 in the United States.
        let start =
            [1_795_000_000, 1_772_841_600, 1_793_404_800][usize::try_from(rng.below(3)).unwrap()];
        let now = start + rng.below(3 * 86_400);
        let req_site = pick(&mut rng, &SITES);
        let res_site = pick(&mut rng, &SITES);
        let network = pick(&mut rng, &NETWORKS);
        let glass = match rng.below(8) {
            0 | 1 => Some(BreakGlass {
                reason: Pii::new("emergency"),
                issued_at: now - rng.below(3600),
                expires_at: now + 1 + rng.below(3600),
            }),
            2 => Some(BreakGlass {
                reason: Pii::new(if rng.chance(50) { "" } else { "  " }),
                issued_at: now - 10,
                expires_at: now + 10,
            }),
            3 => {
                let issued = now - rng.below(30_000);
                Some(BreakGlass {
                    reason: Pii::new("emergency"),
                    issued_at: issued,
                    expires_at: issued + rng.below(30_000),
                })
            }
            _ => None,
        };

        // carevox.
        let names: Vec<&str> = active.clone();
        let active_set = policy.role_set(&names).unwrap();
        let principal = match Principal::new(
            &policy,
            UserId(1),
            active_set,
            mfa,
            patient_self,
            &user_teams,
        ) {
            Ok(p) => p,
            Err(e) => {
                // Roles that break separation of duty make no principal.
                assert!(
                    matches!(
                        e,
                        RbacError::StaticSod { .. } | RbacError::DynamicSod { .. }
                    ),
                    "{e}"
                );
                sod_refused += 1;
                continue;
            }
        };
        let ours = policy.decide(&Request {
            principal,
            action: policy.action(action).unwrap(),
            resource: Resource {
                kind: policy.resource_type(res).unwrap(),
                owner,
                care_teams: &res_teams,
                ephi,
                attributes: Attributes {
                    site: res_site.map(|(s, _)| policy.site(s).unwrap()),
                    ..Attributes::NONE
                },
            },
            attributes: Attributes {
                site: req_site.map(|(s, _)| policy.site(s).unwrap()),
                network: network.map(|(n, _)| policy.network(n).unwrap()),
                ..Attributes::NONE
            },
            now,
            break_glass: glass,
        });

        // Cedar.
        let user = uid("User", "u1");
        let mut attrs = HashMap::from([
            ("mfa".to_owned(), RestrictedExpression::new_bool(mfa)),
            ("teams".to_owned(), team_set(&user_teams)),
        ]);
        if let Some(p) = patient_self {
            attrs.insert("patient".into(), long(p.get()));
        }
        let parents: HashSet<EntityUid> = active.iter().map(|r| uid("Role", r)).collect();
        let user_entity = Entity::new(user.clone(), attrs, parents).unwrap();
        let resource = uid(cedar_ty, "r1");
        let mut rattrs = HashMap::from([
            ("ephi".to_owned(), RestrictedExpression::new_bool(ephi)),
            ("teams".to_owned(), team_set(&res_teams)),
        ]);
        if let Some(o) = owner {
            rattrs.insert("owner".into(), long(o.get()));
        }
        if let Some((site, _)) = res_site {
            rattrs.insert("site".into(), RestrictedExpression::new_string(site.into()));
        }
        let resource_entity = Entity::new(resource.clone(), rattrs, HashSet::new()).unwrap();
        let entities = Entities::from_entities(
            roles.iter().cloned().chain([user_entity, resource_entity]),
            Some(&schema),
        )
        .unwrap();
        let mut ctx = vec![
            ("now".to_owned(), long(now)),
            (
                "minute".to_owned(),
                long(local_minute(req_site.map_or("UTC", |(_, z)| z), now)),
            ),
        ];
        if let Some((site, _)) = req_site {
            ctx.push(("site".into(), RestrictedExpression::new_string(site.into())));
        }
        if let Some((net, _)) = network {
            ctx.push((
                "network".into(),
                RestrictedExpression::new_string(net.into()),
            ));
        }
        if let Some(g) = &glass {
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
        let action_uid = uid("Action", action);
        let context = Context::from_pairs(ctx).unwrap();
        let request =
            cedar_policy::Request::new(user, action_uid, resource, context, Some(&schema)).unwrap();
        let answer = authorizer.is_authorized(&request, &set, &entities);
        let errors: Vec<String> = answer
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        assert!(errors.is_empty(), "request {i}: cedar errors {errors:?}");
        let determining: Vec<&str> = answer
            .diagnostics()
            .reason()
            .map(|id| ids[&id.to_string()].as_str())
            .collect();

        let context = format!(
            "request {i}: {active:?} mfa={mfa} self={patient_self:?} teams={user_teams:?} \
             {action} {res} owner={owner:?} teams={res_teams:?} ephi={ephi} now={now} \
             site={req_site:?} resource site={res_site:?} network={network:?} glass={glass:?}: carevox {ours:?}, cedar {:?} {determining:?}",
            answer.decision()
        );
        let cedar_allows = answer.decision() == Decision::Allow;
        assert_eq!(ours.verdict == Verdict::Allow, cedar_allows, "{context}");
        match ours.reason {
            Reason::Permitted { rule } | Reason::Forbidden { rule } => {
                assert!(determining.contains(&rule), "{context}");
            }
            Reason::NotPermitted => assert!(determining.is_empty(), "{context}"),
            other => panic!("unexpected reason {other:?}: {context}"),
        }
        allows += usize::from(ours.is_allowed());
        forbidden += usize::from(matches!(ours.reason, Reason::Forbidden { .. }));
        glass_used += usize::from(ours.break_glass == carevox_authz::BreakGlassUse::Used);
    }
    // The generator reaches every kind of outcome in quantity.
    assert!(allows > REQUESTS / 10, "{allows} allows");
    assert!(forbidden > REQUESTS / 10, "{forbidden} forbidden");
    assert!(glass_used > 50, "{glass_used} break-the-glass allows");
    assert!(
        sod_refused > 50,
        "{sod_refused} principals refused by separation of duty"
    );
}
