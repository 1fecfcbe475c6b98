//! Policy validation: every kind of error, each reported with its location,
//! and all errors of a file reported together.

// Test helpers outside #[test] functions may unwrap, index and panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use carevox_authz::{Policy, PolicyError, ValidationError, ValidationErrorKind};

/// A small valid policy; tests append to it or replace parts.
const BASE: &str = r#"version = 1

[break_glass]
max_minutes = 60

[[roles]]
name = "nurse"

[[roles]]
name = "physician"
inherits = ["nurse"]

[[roles]]
name = "billing"

[[resources]]
name = "voicemail"
actions = ["list", "listen"]

[[rules]]
id = "nurse-listen"
effect = "permit"
roles = ["nurse"]
resources = ["voicemail"]
actions = ["listen"]
"#;

fn errors(text: &str) -> Vec<ValidationError> {
    match Policy::from_toml(text) {
        Err(PolicyError::Invalid(errors)) => errors,
        Err(other) => panic!("expected validation errors, got {other}"),
        Ok(_) => panic!("expected validation errors, the policy compiled"),
    }
}

fn only(text: &str) -> ValidationError {
    let mut errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    errs.remove(0)
}

/// The 1-based line of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> u32 {
    let at = text.find(needle).unwrap();
    u32::try_from(text[..at].matches('\n').count() + 1).unwrap()
}

#[test]
fn base_policy_compiles() {
    let p = Policy::from_toml(BASE).unwrap();
    assert_eq!(p.rule_ids().collect::<Vec<_>>(), ["nurse-listen"]);
}

#[test]
fn unsupported_version() {
    let text = BASE.replace("version = 1", "version = 7");
    let e = only(&text);
    assert_eq!(e.kind, ValidationErrorKind::UnsupportedVersion { found: 7 });
    assert_eq!((e.location.line, e.location.column), (1, 11));
    assert_eq!(e.location.path, "version");
}

#[test]
fn unknown_role_in_a_rule() {
    let text = BASE.replace(r#"roles = ["nurse"]"#, r#"roles = ["nurse", "surgeon"]"#);
    let e = only(&text);
    assert_eq!(
        e.kind,
        ValidationErrorKind::UnknownRole {
            name: "surgeon".into()
        }
    );
    assert_eq!(e.location.line, line_of(&text, "\"surgeon\""));
    assert_eq!(e.location.column, 19);
    assert_eq!(e.location.path, "rules[0].roles[1]");
}

#[test]
fn unknown_role_in_inherits() {
    let text = BASE.replace(r#"inherits = ["nurse"]"#, r#"inherits = ["nures"]"#);
    let e = only(&text);
    assert!(matches!(e.kind, ValidationErrorKind::UnknownRole { ref name } if name == "nures"));
    assert_eq!(e.location.path, "roles[1].inherits[0]");
    assert_eq!(e.location.line, line_of(&text, "\"nures\""));
}

#[test]
fn hierarchy_cycle() {
    let text = BASE.replace(
        "[[roles]]\nname = \"nurse\"\n",
        "[[roles]]\nname = \"nurse\"\ninherits = [\"physician\"]\n",
    );
    let e = only(&text);
    match &e.kind {
        ValidationErrorKind::HierarchyCycle { roles } => {
            assert_eq!(roles.first(), roles.last());
            assert_eq!(roles.len(), 3, "{roles:?}");
            assert!(roles.contains(&"nurse".to_owned()));
            assert!(roles.contains(&"physician".to_owned()));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.location.path.starts_with("roles["), "{}", e.location.path);
    assert!(
        e.location.path.ends_with("].inherits"),
        "{}",
        e.location.path
    );
}

#[test]
fn self_inheritance_is_a_cycle() {
    let text = BASE.replace(
        "[[roles]]\nname = \"billing\"\n",
        "[[roles]]\nname = \"billing\"\ninherits = [\"billing\"]\n",
    );
    let e = only(&text);
    assert_eq!(
        e.kind,
        ValidationErrorKind::HierarchyCycle {
            roles: vec!["billing".into(), "billing".into()]
        }
    );
    assert_eq!(e.location.path, "roles[2].inherits");
    assert_eq!(e.location.line, line_of(&text, "[\"billing\"]"));
}

#[test]
fn sod_conflict_through_the_hierarchy() {
    // physician inherits nurse, so a physician alone holds both roles of the set.
    let text = format!(
        "{BASE}\n[[sod]]\nname = \"split\"\nkind = \"static\"\nroles = [\"nurse\", \"physician\"]\n"
    );
    let e = only(&text);
    assert!(
        matches!(&e.kind, ValidationErrorKind::SodConflict { set, .. } if set == "split"),
        "{e:?}"
    );
    assert_eq!(e.location.path, "sod[0].roles[1]");
    assert_eq!(
        e.location.line,
        line_of(&text, "roles = [\"nurse\", \"physician\"]")
    );
}

#[test]
fn sod_limit_out_of_range() {
    let text = format!(
        "{BASE}\n[[sod]]\nname = \"split\"\nkind = \"dynamic\"\nroles = [\"nurse\", \"billing\"]\nlimit = 3\n"
    );
    let e = only(&text);
    assert!(
        matches!(e.kind, ValidationErrorKind::SodConflict { .. }),
        "{e:?}"
    );
    assert_eq!(e.location.path, "sod[0].limit");
    assert_eq!(e.location.line, line_of(&text, "limit = 3"));
}

#[test]
fn unknown_resource_and_action() {
    let text = BASE.replace(
        "resources = [\"voicemail\"]\nactions = [\"listen\"]",
        "resources = [\"voicemail\", \"fax\"]\nactions = [\"listen\", \"play\"]",
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!(
        errs[0].kind,
        ValidationErrorKind::UnknownResource { name: "fax".into() }
    );
    assert_eq!(errs[0].location.path, "rules[0].resources[1]");
    assert!(
        matches!(&errs[1].kind, ValidationErrorKind::UnknownAction { action, .. } if action == "play")
    );
    assert_eq!(errs[1].location.path, "rules[0].actions[1]");
    assert_eq!(errs[1].location.line, errs[0].location.line + 1);
}

#[test]
fn duplicate_names() {
    let text = format!(
        "{BASE}\n[[roles]]\nname = \"nurse\"\n\n[[rules]]\nid = \"nurse-listen\"\neffect = \"permit\"\nroles = [\"physician\"]\nresources = [\"voicemail\"]\nactions = [\"list\"]\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs.iter().any(|e| e.location.path == "roles[3].name"
        && matches!(&e.kind, ValidationErrorKind::Duplicate { what: "role", name } if name == "nurse")));
    assert!(errs.iter().any(|e| e.location.path == "rules[1].id"
        && matches!(&e.kind, ValidationErrorKind::Duplicate { what: "rule", .. })));
}

#[test]
fn rule_with_empty_hours_never_applies() {
    let text = format!("{BASE}hours = {{ from = \"08:00\", to = \"08:00\" }}\n");
    let e = only(&text);
    assert!(
        matches!(e.kind, ValidationErrorKind::RuleNeverApplies { ref rule, .. } if rule == "nurse-listen")
    );
    assert_eq!(e.location.path, "rules[0].hours");
    assert_eq!(e.location.line, line_of(&text, "hours ="));
}

#[test]
fn permit_shadowed_by_unconditional_forbid_never_applies() {
    let text = format!(
        "{BASE}\n[[rules]]\nid = \"no-voicemail\"\neffect = \"forbid\"\nresources = [\"voicemail\"]\nactions = [\"listen\", \"list\"]\n"
    );
    let e = only(&text);
    match &e.kind {
        ValidationErrorKind::RuleNeverApplies { rule, why } => {
            assert_eq!(rule, "nurse-listen");
            assert!(why.contains("no-voicemail"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.location.path, "rules[0]");
    assert_eq!(e.location.line, line_of(&text, "id = \"nurse-listen\""));
}

#[test]
fn empty_role_list_never_applies() {
    let text = BASE.replace(r#"roles = ["nurse"]"#, "roles = []");
    let e = only(&text);
    assert!(matches!(
        e.kind,
        ValidationErrorKind::RuleNeverApplies { .. }
    ));
    assert_eq!(e.location.path, "rules[0].roles");
}

#[test]
fn invalid_time_of_day() {
    let text = format!("{BASE}hours = {{ from = \"25:00\", to = \"7\" }}\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!(
        errs[0].kind,
        ValidationErrorKind::InvalidTime {
            value: "25:00".into()
        }
    );
    assert_eq!(errs[0].location.path, "rules[0].hours.from");
    assert_eq!(errs[1].location.path, "rules[0].hours.to");
    assert!(errs[0].location.column < errs[1].location.column);
}

#[test]
fn break_glass_without_configuration() {
    let text =
        format!("{BASE}break_glass = true\n").replace("[break_glass]\nmax_minutes = 60\n", "");
    let e = only(&text);
    assert_eq!(
        e.kind,
        ValidationErrorKind::BreakGlassNotConfigured {
            rule: "nurse-listen".into()
        }
    );
    assert_eq!(e.location.path, "rules[0].break_glass");
    assert_eq!(e.location.line, line_of(&text, "break_glass = true"));
}

#[test]
fn break_glass_duration_out_of_range() {
    let text = BASE.replace("max_minutes = 60", "max_minutes = 0");
    let e = only(&text);
    assert!(matches!(
        e.kind,
        ValidationErrorKind::OutOfRange {
            what: "break_glass.max_minutes",
            ..
        }
    ));
    assert_eq!(e.location.line, 4);
}

#[test]
fn too_many_roles() {
    let mut text = BASE.to_owned();
    for i in 0..130 {
        text.push_str(&format!("\n[[roles]]\nname = \"r{i}\"\n"));
    }
    let e = only(&text);
    assert_eq!(e.kind, ValidationErrorKind::TooManyRoles { count: 133 });
    assert_eq!(e.location.path, "roles[128]");
}

#[test]
fn every_error_is_reported_in_file_order() {
    let text = BASE
        .replace("version = 1", "version = 2")
        .replace(r#"inherits = ["nurse"]"#, r#"inherits = ["ghost"]"#)
        .replace(r#"actions = ["listen"]"#, r#"actions = ["sing"]"#);
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    let lines: Vec<u32> = errs.iter().map(|e| e.location.line).collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
    let msg = PolicyError::Invalid(errs).to_string();
    assert!(msg.contains("3 problem(s)"), "{msg}");
    assert!(msg.contains("line 1, column 11 (version)"), "{msg}");
}

#[test]
fn syntax_error_has_a_location() {
    let text = BASE.replace("effect = \"permit\"", "effect = \"maybe\"");
    match Policy::from_toml(&text) {
        Err(PolicyError::Syntax { location, message }) => {
            assert_eq!(location.line, line_of(&text, "effect = \"maybe\""));
            assert!(!message.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let err = Policy::from_toml("version = 1\n[[roles]]\nnam = \"x\"\n").unwrap_err();
    assert!(
        matches!(err, PolicyError::Syntax { ref location, .. } if location.line == 3),
        "{err}"
    );
    assert!(err.validation_errors().is_empty());
}

#[test]
fn whole_day_and_end_of_day_windows_compile() {
    // 24:00 is the end of the day: 00:00-24:00 is the whole day, not empty.
    for (from, to) in [
        ("00:00", "24:00"),
        ("22:00", "24:00"),
        ("22:00", "00:00"),
        ("23:59", "00:01"),
        ("00:00", "23:59"),
    ] {
        let text = format!("{BASE}hours = {{ from = \"{from}\", to = \"{to}\" }}\n");
        assert!(Policy::from_toml(&text).is_ok(), "{from}-{to}");
    }
    // Empty windows are refused, whichever way they are written.
    for (from, to) in [("00:00", "00:00"), ("13:30", "13:30")] {
        let text = format!("{BASE}hours = {{ from = \"{from}\", to = \"{to}\" }}\n");
        let e = only(&text);
        assert!(
            matches!(e.kind, ValidationErrorKind::RuleNeverApplies { .. }),
            "{from}-{to}: {e}"
        );
    }
    // A window cannot start at the end of the day.
    let text = format!("{BASE}hours = {{ from = \"24:00\", to = \"06:00\" }}\n");
    let e = only(&text);
    assert_eq!(e.location.path, "rules[0].hours.from");
    assert!(matches!(e.kind, ValidationErrorKind::OutOfRange { .. }));
}

#[test]
fn a_rule_repeating_another_is_reported() {
    let text = format!(
        "{BASE}\n[[rules]]\nid = \"same\"\neffect = \"permit\"\nroles = [\"nurse\"]\nresources = [\"voicemail\"]\nactions = [\"listen\"]\n"
    );
    let e = only(&text);
    assert_eq!(
        e.kind,
        ValidationErrorKind::DuplicateRule {
            rule: "same".into(),
            same_as: "nurse-listen".into()
        }
    );
    assert_eq!(e.location.line, line_of(&text, "id = \"same\""));
    // The same rule with a condition more is not a repeat.
    let text = format!("{text}mfa = true\n");
    assert!(Policy::from_toml(&text).is_ok());
}
