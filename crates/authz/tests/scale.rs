//! Compiling large policies: tens of thousands of rules compile (duplicate
//! and shadowing checks hash rules instead of comparing them in pairs), and
//! the documented limit on the number of rules is enforced with a typed
//! error. No timing is asserted here; the benchmark measures speed.

// Test helpers outside #[test] functions may unwrap, index and panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write as _;

use carevox_authz::policy::MAX_RULES;
use carevox_authz::{Policy, PolicyError, ValidationErrorKind};

const RESOURCES: usize = 250;
const ACTIONS: usize = 4;
const ROLES: usize = 100;

fn header() -> String {
    let mut t = String::from("version = 1\n");
    for r in 0..ROLES {
        writeln!(t, "[[roles]]\nname = \"r{r}\"").unwrap();
    }
    for k in 0..RESOURCES {
        writeln!(
            t,
            "[[resources]]\nname = \"t{k}\"\nactions = [\"a0\", \"a1\", \"a2\", \"a3\"]"
        )
        .unwrap();
    }
    t
}

/// Rule `n`: a distinct (role, resource type, action) for every n below
/// RESOURCES * ACTIONS * ROLES (100,000).
fn rule(t: &mut String, n: usize, effect: &str) {
    let resource = n % RESOURCES;
    let action = (n / RESOURCES) % ACTIONS;
    let role = (n / (RESOURCES * ACTIONS)) % ROLES;
    writeln!(
        t,
        "[[rules]]\nid = \"x{n}\"\neffect = \"{effect}\"\nroles = [\"r{role}\"]\nresources = [\"t{resource}\"]\nactions = [\"a{action}\"]"
    )
    .unwrap();
}

#[test]
fn fifty_thousand_rules_compile() {
    let mut text = header();
    for n in 0..50_000 {
        rule(&mut text, n, "permit");
    }
    let p = Policy::from_toml(&text).unwrap();
    assert_eq!(p.rule_ids().count(), 50_000);
}

#[test]
fn repeats_and_shadowed_permits_are_found_among_many_rules() {
    let mut text = header();
    for n in 0..40_000 {
        rule(&mut text, n, "permit");
    }
    // Rule 40,000 repeats rule 7 under another id.
    text.push_str(
        "[[rules]]\nid = \"again\"\neffect = \"permit\"\nroles = [\"r0\"]\nresources = [\"t7\"]\nactions = [\"a0\"]\n",
    );
    // Forbidding r0 and r1 on t3/a0 unconditionally shadows a permit for
    // both roles there (two forbids together cover it), not one for r2.
    for role in ["r0", "r1"] {
        writeln!(
            text,
            "[[rules]]\nid = \"no-{role}\"\neffect = \"forbid\"\nroles = [\"{role}\"]\nresources = [\"t3\"]\nactions = [\"a0\"]"
        )
        .unwrap();
    }
    text.push_str("[[rules]]\nid = \"both\"\neffect = \"permit\"\nroles = [\"r0\", \"r1\"]\nresources = [\"t3\"]\nactions = [\"a0\"]\n");
    text.push_str("[[rules]]\nid = \"wider\"\neffect = \"permit\"\nroles = [\"r1\", \"r2\"]\nresources = [\"t3\"]\nactions = [\"a0\"]\n");
    let Err(PolicyError::Invalid(errors)) = Policy::from_toml(&text) else {
        panic!("compiled");
    };
    let kinds: Vec<&ValidationErrorKind> = errors.iter().map(|e| &e.kind).collect();
    // Rule x3 (r0, t3, a0) and rule x1003 (r1, t3, a0) are shadowed too.
    assert_eq!(errors.len(), 4, "{kinds:#?}");
    assert!(kinds.contains(&&ValidationErrorKind::DuplicateRule {
        rule: "again".into(),
        same_as: "x7".into(),
    }));
    let never: Vec<&str> = kinds
        .iter()
        .filter_map(|k| match k {
            ValidationErrorKind::RuleNeverApplies { rule, .. } => Some(rule.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(never, ["x3", "x1003", "both"]);
}

#[test]
fn the_rule_limit_is_a_typed_error() {
    let mut text = header();
    for n in 0..=MAX_RULES {
        rule(&mut text, n, "permit");
    }
    let Err(PolicyError::Invalid(errors)) = Policy::from_toml(&text) else {
        panic!("a policy past the rule limit compiled");
    };
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].kind,
        ValidationErrorKind::TooManyRules {
            count: MAX_RULES + 1
        }
    );
    assert_eq!(errors[0].location.path, format!("rules[{MAX_RULES}]"));
}
