//! Time-of-day rules in IANA time zones: the policy's zone and each site's,
//! read in local wall-clock time, right across daylight saving changes
//! (spring forward and fall back in New York and Berlin, 2026).

// Test helpers outside #[test] functions may unwrap, index and panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use carevox_authz::{
    Attributes, Policy, PolicyError, Principal, Request, Resource, Unmet, UserId, ValidationError,
    ValidationErrorKind,
};

const POLICY: &str = r#"version = 1
time_zone = "America/New_York"

[[sites]]
name = "berlin"
time_zone = "Europe/Berlin"

[[sites]]
name = "manhattan"

[[roles]]
name = "r"

[[resources]]
name = "x"
actions = ["day", "two", "one", "all", "late"]

[[rules]]
id = "day"
effect = "permit"
roles = ["r"]
resources = ["x"]
actions = ["day"]
hours = { from = "07:00", to = "19:00" }

[[rules]]
id = "two"
effect = "permit"
roles = ["r"]
resources = ["x"]
actions = ["two"]
hours = { from = "02:00", to = "03:00" }

[[rules]]
id = "one"
effect = "permit"
roles = ["r"]
resources = ["x"]
actions = ["one"]
hours = { from = "01:00", to = "02:00" }

[[rules]]
id = "all"
effect = "permit"
roles = ["r"]
resources = ["x"]
actions = ["all"]
hours = { from = "00:00", to = "24:00" }

[[rules]]
id = "late"
effect = "permit"
roles = ["r"]
resources = ["x"]
actions = ["late"]
hours = { from = "22:00", to = "24:00" }
"#;

/// Whether `action` is allowed at the UTC instant `utc` (RFC 3339) for a
/// request at `site` (`None`: the policy's zone).
fn allowed(p: &Policy, action: &str, site: Option<&str>, utc: &str) -> bool {
    let now: jiff::Timestamp = utc.parse().unwrap();
    let d = p.decide(&Request {
        principal: Principal::new(p, UserId(1), p.role_set(&["r"]).unwrap(), true, None, &[])
            .unwrap(),
        action: p.action(action).unwrap(),
        resource: Resource {
            kind: p.resource_type("x").unwrap(),
            owner: None,
            care_teams: &[],
            ephi: false,
            attributes: Attributes::NONE,
        },
        attributes: Attributes {
            site: site.map(|s| p.site(s).unwrap()),
            ..Attributes::NONE
        },
        now: u64::try_from(now.as_second()).unwrap(),
        break_glass: None,
    });
    if !d.is_allowed() {
        assert_eq!(d.unmet, Unmet::OUTSIDE_HOURS, "{d:?}");
        assert_eq!(d.nearest, Some(action));
    }
    d.is_allowed()
}

/// One case: the action, the UTC instant (RFC 3339) and whether it is
/// allowed then.
type Case = (&'static str, &'static str, bool);

/// Checks every case for a request at `site`, naming the one that fails.
fn check(p: &Policy, site: Option<&str>, cases: &[Case]) {
    for &(action, utc, expected) in cases {
        assert_eq!(
            allowed(p, action, site, utc),
            expected,
            "{action:?} at {utc} (site {site:?})"
        );
    }
}

/// The policy above with its zone text replaced, which must not compile;
/// its validation errors.
fn invalid(from: &str, to: &str) -> Vec<ValidationError> {
    let text = POLICY.replace(from, to);
    match Policy::from_toml(&text) {
        Err(PolicyError::Invalid(errors)) => errors,
        other => panic!("{to:?} in place of {from:?}: {other:?}"),
    }
}

#[test]
fn new_york_spring_forward() {
    // 2026-03-08: 02:00 EST (UTC-5) becomes 03:00 EDT (UTC-4) at 07:00 UTC.
    let p = Policy::from_toml(POLICY).unwrap();
    let cases: &[Case] = &[
        // The day before: 06:30 EST, then 07:00 EST.
        ("day", "2026-03-07T11:30:00Z", false),
        ("day", "2026-03-07T12:00:00Z", true),
        // The day itself: 06:59 and 07:00 EDT (a fixed UTC-5 would say 05:59
        // and 06:00), then 18:59 and 19:00 EDT.
        ("day", "2026-03-08T10:59:00Z", false),
        ("day", "2026-03-08T11:00:00Z", true),
        ("day", "2026-03-08T22:59:00Z", true),
        ("day", "2026-03-08T23:00:00Z", false),
        // 02:00 to 03:00 does not exist that night: 01:59:59 EST is followed
        // by 03:00:00 EDT. The night before it does.
        ("two", "2026-03-08T06:59:59Z", false),
        ("two", "2026-03-08T07:00:00Z", false),
        ("two", "2026-03-08T07:30:00Z", false),
        ("two", "2026-03-07T07:30:00Z", true),
    ];
    for site in [None, Some("manhattan")] {
        check(&p, site, cases);
    }
}

#[test]
fn new_york_fall_back() {
    // 2026-11-01: 02:00 EDT (UTC-4) becomes 01:00 EST (UTC-5) at 06:00 UTC.
    let p = Policy::from_toml(POLICY).unwrap();
    check(
        &p,
        None,
        &[
            // 01:00 to 02:00 happens twice: 05:00-06:00 UTC (EDT) and
            // 06:00-07:00 UTC (EST).
            ("one", "2026-11-01T04:59:59Z", false),
            ("one", "2026-11-01T05:00:00Z", true),
            ("one", "2026-11-01T05:59:59Z", true),
            ("one", "2026-11-01T06:00:00Z", true),
            ("one", "2026-11-01T06:59:59Z", true),
            ("one", "2026-11-01T07:00:00Z", false),
            // Day hours start at 07:00 EST = 12:00 UTC; the day before at
            // 11:00 UTC.
            ("day", "2026-11-01T11:59:00Z", false),
            ("day", "2026-11-01T12:00:00Z", true),
            ("day", "2026-10-31T11:00:00Z", true),
            ("day", "2026-10-31T10:59:00Z", false),
        ],
    );
}

#[test]
fn berlin_spring_forward_at_its_site() {
    // 2026-03-29: 02:00 CET (UTC+1) becomes 03:00 CEST (UTC+2) at 01:00 UTC.
    let p = Policy::from_toml(POLICY).unwrap();
    check(
        &p,
        Some("berlin"),
        &[
            ("day", "2026-03-29T05:00:00Z", true),  // 07:00 CEST
            ("day", "2026-03-29T04:59:00Z", false), // 06:59 CEST
            ("day", "2026-03-28T05:00:00Z", false), // 06:00 CET
            ("day", "2026-03-28T06:00:00Z", true),  // 07:00 CET
            ("two", "2026-03-29T00:59:59Z", false), // 01:59:59 CET
            ("two", "2026-03-29T01:00:00Z", false), // 03:00 CEST
            ("two", "2026-03-28T01:30:00Z", true),  // 02:30 CET
        ],
    );
    // The same instant is outside day hours in New York (01:00 EDT).
    check(&p, None, &[("day", "2026-03-29T05:00:00Z", false)]);
}

#[test]
fn berlin_fall_back_at_its_site() {
    // 2026-10-25: 03:00 CEST (UTC+2) becomes 02:00 CET (UTC+1) at 01:00 UTC.
    let p = Policy::from_toml(POLICY).unwrap();
    check(
        &p,
        Some("berlin"),
        &[
            // 02:00 to 03:00 happens twice: 00:00-01:00 UTC and 01:00-02:00 UTC.
            ("two", "2026-10-24T23:59:59Z", false),
            ("two", "2026-10-25T00:00:00Z", true),
            ("two", "2026-10-25T01:00:00Z", true),
            ("two", "2026-10-25T01:59:59Z", true),
            ("two", "2026-10-25T02:00:00Z", false),
            ("day", "2026-10-25T06:00:00Z", true),  // 07:00 CET
            ("day", "2026-10-25T05:59:00Z", false), // 06:59 CET
            ("day", "2026-10-24T05:00:00Z", true),  // 07:00 CEST
        ],
    );
}

#[test]
fn a_whole_day_and_a_window_to_midnight() {
    let p = Policy::from_toml(POLICY).unwrap();
    // 00:00-24:00 is every minute of every day, the short and long days too.
    let all: Vec<Case> = [
        "2026-03-08T05:00:00Z",
        "2026-03-08T06:59:59Z",
        "2026-03-08T07:00:00Z",
        "2026-11-01T05:30:00Z",
        "2026-11-01T06:30:00Z",
        "2026-06-01T03:59:59Z",
        "2026-06-01T04:00:00Z",
    ]
    .into_iter()
    .map(|t| ("all", t, true))
    .collect();
    check(&p, None, &all);
    check(&p, Some("berlin"), &all);
    // 22:00-24:00 runs to the end of the local day.
    check(
        &p,
        None,
        &[
            ("late", "2026-06-02T03:59:59Z", true),  // 23:59:59 EDT
            ("late", "2026-06-02T04:00:00Z", false), // 00:00 EDT
            ("late", "2026-06-02T02:00:00Z", true),  // 22:00 EDT
            ("late", "2026-06-02T01:59:59Z", false), // 21:59:59 EDT
        ],
    );
}

#[test]
fn zones_are_validated_with_their_location() {
    let errors = invalid("Europe/Berlin", "Europe/Berlinn");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        errors[0].kind,
        ValidationErrorKind::UnknownTimeZone {
            name: "Europe/Berlinn".into()
        }
    );
    assert_eq!(errors[0].location.path, "sites[0].time_zone");
    assert_eq!(errors[0].location.line, 6);

    let errors = invalid("America/New_York", "EST5EDT-ish");
    assert_eq!(errors[0].location.path, "time_zone");
    assert_eq!(errors[0].location.line, 2);

    let errors = invalid(
        "time_zone = \"America/New_York\"",
        "time_zone = \"America/New_York\"\nutc_offset_minutes = 60",
    );
    assert!(matches!(
        errors[0].kind,
        ValidationErrorKind::Conflict { .. }
    ));
    assert_eq!(errors[0].location.line, 3);
}

#[test]
fn a_fixed_offset_still_reads_as_before() {
    let text = POLICY.replace(
        "time_zone = \"America/New_York\"",
        "utc_offset_minutes = -300",
    );
    let p = Policy::from_toml(&text).unwrap();
    // No daylight saving with a fixed offset: 07:00 is 12:00 UTC all year.
    check(
        &p,
        None,
        &[
            ("day", "2026-06-01T11:59:00Z", false),
            ("day", "2026-06-01T12:00:00Z", true),
        ],
    );
}
