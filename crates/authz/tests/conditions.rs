//! Conditions on request and resource attributes (site, location, network),
//! `except_roles` on a permit, `when_break_glass` on a forbid, and the
//! explanation of a denial.

// Test helpers outside #[test] functions may unwrap, index and panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use carevox_authz::{
    Attributes, BreakGlass, Pii, Policy, PolicyError, Principal, Reason, Request, Resource, Unmet,
    UserId, ValidationError, ValidationErrorKind, Verdict,
};

const POLICY: &str = r#"version = 1
networks = ["lan", "vpn", "internet"]
locations = ["icu", "ward-3"]

[break_glass]
max_minutes = 60

[[sites]]
name = "north"

[[sites]]
name = "south"

[[roles]]
name = "nurse"

[[roles]]
name = "physician"
inherits = ["nurse"]

[[roles]]
name = "student"
inherits = ["nurse"]

[[resources]]
name = "chart"
actions = ["read", "write", "print", "export"]

[[rules]]
id = "same-site-read"
effect = "permit"
roles = ["nurse"]
resources = ["chart"]
actions = ["read"]
conditions = ["resource.site == request.site"]

[[rules]]
id = "north-write"
effect = "permit"
roles = ["nurse"]
except_roles = ["student"]
resources = ["chart"]
actions = ["write"]
conditions = ['request.site == "north"', 'request.network in ["lan", "vpn"]']

[[rules]]
id = "print-outside-icu"
effect = "permit"
roles = ["nurse"]
resources = ["chart"]
actions = ["print"]
conditions = ['resource.location not in ["icu"]', '"south" != resource.site']

[[rules]]
id = "forbid-internet"
effect = "forbid"
resources = ["chart"]
actions = ["read", "write", "print"]
conditions = ['request.network == "internet"']

[[rules]]
id = "glass-export"
effect = "permit"
roles = ["physician"]
resources = ["chart"]
actions = ["export"]
break_glass = true

[[rules]]
id = "forbid-glass-at-south"
effect = "forbid"
resources = ["chart"]
actions = ["export", "read"]
when_break_glass = true
conditions = ['request.site == "south"']
"#;

struct Case<'a> {
    roles: &'a [&'a str],
    action: &'a str,
    site: Option<&'a str>,
    network: Option<&'a str>,
    res_site: Option<&'a str>,
    res_location: Option<&'a str>,
    glass: bool,
}

const BASE: Case<'static> = Case {
    roles: &["nurse"],
    action: "read",
    site: None,
    network: None,
    res_site: None,
    res_location: None,
    glass: false,
};

const NOW: u64 = 1_800_000_000;

fn decide<'p>(p: &'p Policy, c: &Case<'_>) -> carevox_authz::Decision<'p> {
    p.decide(&Request {
        principal: Principal::new(p, UserId(1), p.role_set(c.roles).unwrap(), true, None, &[])
            .unwrap(),
        action: p.action(c.action).unwrap(),
        resource: Resource {
            kind: p.resource_type("chart").unwrap(),
            owner: None,
            care_teams: &[],
            ephi: true,
            attributes: Attributes {
                site: c.res_site.map(|s| p.site(s).unwrap()),
                location: c.res_location.map(|l| p.location(l).unwrap()),
                network: None,
            },
        },
        attributes: Attributes {
            site: c.site.map(|s| p.site(s).unwrap()),
            location: None,
            network: c.network.map(|n| p.network(n).unwrap()),
        },
        now: NOW,
        break_glass: c.glass.then(|| BreakGlass {
            reason: Pii::new("patient 4711 coded in bed 12"),
            issued_at: NOW - 60,
            expires_at: NOW + 600,
        }),
    })
}

fn policy() -> Policy {
    Policy::from_toml(POLICY).unwrap()
}

#[test]
fn resource_site_equals_request_site() {
    let p = policy();
    for (site, res_site, allowed) in [
        (Some("north"), Some("north"), true),
        (Some("south"), Some("south"), true),
        (Some("north"), Some("south"), false),
        (Some("south"), Some("north"), false),
        // An unknown site never equals anything, not even another unknown.
        (None, Some("north"), false),
        (Some("north"), None, false),
        (None, None, false),
    ] {
        let d = decide(
            &p,
            &Case {
                site,
                res_site,
                ..BASE
            },
        );
        assert_eq!(d.is_allowed(), allowed, "{site:?} {res_site:?}: {d:?}");
        if !allowed {
            assert_eq!(d.reason, Reason::NotPermitted);
            assert_eq!(d.nearest, Some("same-site-read"));
            assert_eq!(d.unmet, Unmet::WRONG_SITE);
        }
    }
}

#[test]
fn constants_and_sets() {
    let p = policy();
    let write = |site, network| {
        decide(
            &p,
            &Case {
                action: "write",
                site,
                network,
                ..BASE
            },
        )
    };
    assert!(write(Some("north"), Some("lan")).is_allowed());
    assert!(write(Some("north"), Some("vpn")).is_allowed());
    let d = write(Some("south"), Some("lan"));
    assert_eq!(d.unmet, Unmet::WRONG_SITE);
    let d = write(Some("north"), None);
    assert_eq!(d.unmet, Unmet::WRONG_NETWORK);
    let d = write(None, None);
    assert_eq!(d.unmet, Unmet::WRONG_SITE | Unmet::WRONG_NETWORK);
    // The internet is forbidden whatever permits match.
    let d = write(Some("north"), Some("internet"));
    assert_eq!(
        d.reason,
        Reason::Forbidden {
            rule: "forbid-internet"
        }
    );
}

#[test]
fn negated_conditions_hold_on_unknown_attributes() {
    let p = policy();
    let print = |res_site, res_location| {
        decide(
            &p,
            &Case {
                action: "print",
                res_site,
                res_location,
                ..BASE
            },
        )
        .is_allowed()
    };
    assert!(print(None, None));
    assert!(print(Some("north"), Some("ward-3")));
    assert!(!print(Some("north"), Some("icu")));
    assert!(!print(Some("south"), Some("ward-3")));
    let d = decide(
        &p,
        &Case {
            action: "print",
            res_site: Some("south"),
            res_location: Some("icu"),
            ..BASE
        },
    );
    assert_eq!(d.unmet, Unmet::WRONG_SITE | Unmet::WRONG_LOCATION);
}

#[test]
fn except_roles_exclude_through_the_hierarchy() {
    let p = policy();
    let write = |roles| {
        decide(
            &p,
            &Case {
                roles,
                action: "write",
                site: Some("north"),
                network: Some("lan"),
                ..BASE
            },
        )
    };
    assert!(write(&["nurse"]).is_allowed());
    assert!(write(&["physician"]).is_allowed());
    // A student inherits nurse but is excepted, alone or with another role.
    let d = write(&["student"]);
    assert!(!d.is_allowed());
    assert_eq!(d.unmet, Unmet::EXCEPTED_ROLE);
    assert!(!write(&["student", "physician"]).is_allowed());
}

#[test]
fn a_forbid_limited_to_break_the_glass() {
    let p = policy();
    let case = |site, glass, action| Case {
        roles: &["physician"],
        action,
        site,
        res_site: site,
        glass,
        ..BASE
    };
    // Ordinary reads at the south site are not touched by the forbid.
    assert!(decide(&p, &case(Some("south"), false, "read")).is_allowed());
    // The same read with an emergency grant is forbidden (the grant was presented).
    let d = decide(&p, &case(Some("south"), true, "read"));
    assert_eq!(
        d.reason,
        Reason::Forbidden {
            rule: "forbid-glass-at-south"
        }
    );
    assert!(d.review);
    // Emergency export: allowed at north, forbidden at south.
    let d = decide(&p, &case(Some("north"), true, "export"));
    assert_eq!(
        d.reason,
        Reason::Permitted {
            rule: "glass-export"
        }
    );
    let d = decide(&p, &case(Some("south"), true, "export"));
    assert_eq!(d.verdict, Verdict::Deny);
    // Without a grant, the emergency permit names what was missing.
    let d = decide(&p, &case(Some("north"), false, "export"));
    assert_eq!(d.nearest, Some("glass-export"));
    assert_eq!(d.unmet, Unmet::BREAK_GLASS);
}

#[test]
fn explanations_carry_no_phi() {
    let p = policy();
    let d = decide(
        &p,
        &Case {
            action: "export",
            site: Some("north"),
            glass: true,
            ..BASE
        },
    );
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(
        json,
        r#"{"verdict":"deny","reason":{"kind":"not_permitted"},"break_glass":"unused","review":true,"nearest":"glass-export","unmet":["role"]}"#
    );
    for text in [format!("{d:?}"), format!("{d:#?}"), json] {
        assert!(!text.contains("4711"), "{text}");
        assert!(!text.contains("bed"), "{text}");
    }
}

fn errors(text: &str) -> Vec<ValidationError> {
    match Policy::from_toml(text) {
        Err(PolicyError::Invalid(errors)) => errors,
        Err(other) => panic!("expected validation errors, got {other}"),
        Ok(_) => panic!("expected validation errors, the policy compiled"),
    }
}

/// The 1-based line of the last occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> u32 {
    let at = text.rfind(needle).unwrap();
    u32::try_from(text[..at].matches('\n').count() + 1).unwrap()
}

#[test]
fn conditions_are_validated_with_their_location() {
    for (bad, path, kind) in [
        (
            "'request.site == \"west\"'",
            "rules[6].conditions[0]",
            ValidationErrorKind::UnknownValue {
                what: "site",
                name: "west".into(),
            },
        ),
        (
            "'request.network in [\"lan\", \"wifi\"]'",
            "rules[6].conditions[0]",
            ValidationErrorKind::UnknownValue {
                what: "network",
                name: "wifi".into(),
            },
        ),
    ] {
        let text = format!(
            "{POLICY}\n[[rules]]\nid = \"late\"\neffect = \"permit\"\nresources = [\"chart\"]\nactions = [\"read\"]\nconditions = [{bad}]\n"
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].kind, kind);
        assert_eq!(errs[0].location.path, path);
        assert_eq!(errs[0].location.line, line_of(&text, "conditions = ["));
    }
}

#[test]
fn malformed_conditions_name_the_rule() {
    for bad in [
        "request.site = resource.site",
        "request.site == resource.network",
        "request.site == request.site",
        "\"north\" == \"south\"",
        "request.floor == \"1\"",
        "patient.site == \"north\"",
        "request.site in []",
        "request.site in \"north\"",
        "request.site",
        "",
        "request.site == \"north",
        "request.site == resource.site == request.site",
    ] {
        let text = format!(
            "{POLICY}\n[[rules]]\nid = \"odd\"\neffect = \"permit\"\nresources = [\"chart\"]\nactions = [\"read\"]\nconditions = ['{bad}']\n"
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{bad}: {errs:#?}");
        assert!(
            matches!(&errs[0].kind, ValidationErrorKind::BadCondition { rule, .. } if rule == "odd"),
            "{bad}: {errs:#?}"
        );
        assert_eq!(errs[0].location.path, "rules[6].conditions[0]", "{bad}");
        assert_eq!(errs[0].location.line, line_of(&text, "conditions = ['"));
        assert!(errs[0].to_string().contains("odd"), "{}", errs[0]);
    }
}

#[test]
fn except_roles_and_when_break_glass_are_validated() {
    let cases = [
        // Every listed role holds an excepted one: never applies.
        (
            "id = \"x\"\neffect = \"permit\"\nroles = [\"student\"]\nexcept_roles = [\"nurse\"]\n",
            "rules[6].except_roles",
        ),
        (
            "id = \"x\"\neffect = \"permit\"\nroles = [\"nurse\"]\nexcept_roles = [\"intern\"]\n",
            "rules[6].except_roles[0]",
        ),
        // when_break_glass is for forbids; break_glass for permits.
        (
            "id = \"x\"\neffect = \"permit\"\nroles = [\"nurse\"]\nwhen_break_glass = true\n",
            "rules[6].when_break_glass",
        ),
        (
            "id = \"x\"\neffect = \"forbid\"\nroles = [\"nurse\"]\nbreak_glass = true\n",
            "rules[6].break_glass",
        ),
    ];
    for (rule, path) in cases {
        let text =
            format!("{POLICY}\n[[rules]]\n{rule}resources = [\"chart\"]\nactions = [\"print\"]\n");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{rule}: {errs:#?}");
        assert_eq!(errs[0].location.path, path, "{rule}");
    }
}
