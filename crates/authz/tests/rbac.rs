//! NIST RBAC behaviour on the sample hospital policy: hierarchy, static and
//! dynamic separation of duty, role activation.

// Test helpers outside #[test] functions may unwrap, index and panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use carevox_authz::{
    Assignments, Attributes, HOSPITAL_POLICY, Policy, RbacError, Request, Resource, Session,
    TeamId, UserId,
};

fn policy() -> Policy {
    Policy::from_toml(HOSPITAL_POLICY).unwrap()
}

#[test]
fn hierarchy_is_transitive() {
    let p = policy();
    let on_call = p.role("on_call_physician").unwrap();
    let set = p.inherited(on_call).unwrap();
    for name in ["on_call_physician", "physician", "nurse"] {
        assert!(set.contains(p.role(name).unwrap()), "{name}");
    }
    assert_eq!(set.len(), 3);
    assert!(
        !p.inherited(p.role("nurse").unwrap())
            .unwrap()
            .contains(p.role("physician").unwrap())
    );
}

#[test]
fn static_sod_refuses_assignment() {
    let p = policy();
    let mut a = Assignments::new();
    let u = UserId(1);
    a.assign(&p, u, p.role("administrator").unwrap()).unwrap();
    let err = a.assign(&p, u, p.role("auditor").unwrap()).unwrap_err();
    assert!(
        matches!(&err, RbacError::StaticSod { set, role } if set == "admin-not-auditor" && role == "auditor")
    );
    // The refused role was not recorded.
    assert!(!a.assigned(u).contains(p.role("auditor").unwrap()));
}

#[test]
fn static_sod_follows_the_hierarchy() {
    // billing-not-clinician names nurse; a physician inherits nurse.
    let p = policy();
    let mut a = Assignments::new();
    let u = UserId(2);
    a.assign(&p, u, p.role("billing").unwrap()).unwrap();
    let err = a
        .assign(&p, u, p.role("on_call_physician").unwrap())
        .unwrap_err();
    assert!(matches!(err, RbacError::StaticSod { .. }));
}

#[test]
fn dynamic_sod_refuses_activation_but_not_assignment() {
    let p = policy();
    let mut a = Assignments::new();
    let u = UserId(3);
    let recep = p.role("receptionist").unwrap();
    let phys = p.role("physician").unwrap();
    a.assign(&p, u, recep).unwrap();
    a.assign(&p, u, phys).unwrap();
    let mut s = Session::new(u, true, None);
    s.activate(&p, &a, recep).unwrap();
    let err = s.activate(&p, &a, phys).unwrap_err();
    assert!(matches!(&err, RbacError::DynamicSod { set, .. } if set == "front-desk-or-clinic"));
    assert!(!s.effective_roles().contains(phys));
    // After dropping the front-desk role the clinical one may be activated.
    s.deactivate(&p, recep).unwrap();
    s.activate(&p, &a, phys).unwrap();
    assert!(s.effective_roles().contains(p.role("nurse").unwrap()));
    assert!(!s.active_roles().contains(p.role("nurse").unwrap()));
}

#[test]
fn activation_needs_authorization() {
    let p = policy();
    let mut a = Assignments::new();
    let u = UserId(4);
    a.assign(&p, u, p.role("physician").unwrap()).unwrap();
    let mut s = Session::new(u, true, None);
    // A junior role of an assigned role may be activated alone.
    s.activate(&p, &a, p.role("nurse").unwrap()).unwrap();
    // A senior one may not.
    let err = s
        .activate(&p, &a, p.role("on_call_physician").unwrap())
        .unwrap_err();
    assert!(matches!(err, RbacError::NotAuthorized { .. }));
}

#[test]
fn deassign_and_refresh_drop_the_role() {
    let p = policy();
    let mut a = Assignments::new();
    let u = UserId(5);
    let phys = p.role("physician").unwrap();
    a.assign(&p, u, phys).unwrap();
    let mut s = Session::new(u, true, None);
    s.activate(&p, &a, phys).unwrap();
    a.deassign(u, phys);
    s.refresh(&p, &a).unwrap();
    assert!(s.effective_roles().is_empty());
}

#[test]
fn senior_role_inherits_permissions() {
    // on_call_physician has no rule of its own for voicemail listening; it
    // inherits nurse's care-team permit through physician.
    let p = policy();
    let mut a = Assignments::new();
    let u = UserId(6);
    let role = p.role("on_call_physician").unwrap();
    a.assign(&p, u, role).unwrap();
    let mut s = Session::new(u, true, None);
    s.activate(&p, &a, role).unwrap();
    let teams = [TeamId(1)];
    let d = p.decide(&Request {
        principal: s.principal(&teams),
        action: p.action("listen").unwrap(),
        resource: Resource {
            kind: p.resource_type("voicemail").unwrap(),
            owner: Some(carevox_authz::PatientId::new(9)),
            care_teams: &teams,
            ephi: true,
            attributes: Attributes::NONE,
        },
        attributes: Attributes::NONE,
        now: 1_795_428_000,
        break_glass: None,
    });
    assert_eq!(d.rule(), Some("care-team-voicemail"));
    // A session with no role activated is not permitted anything.
    let empty = Session::new(u, true, None);
    let d2 = p.decide(&Request {
        principal: empty.principal(&teams),
        ..Request {
            principal: s.principal(&teams),
            action: p.action("listen").unwrap(),
            resource: Resource {
                kind: p.resource_type("voicemail").unwrap(),
                owner: Some(carevox_authz::PatientId::new(9)),
                care_teams: &teams,
                ephi: true,
                attributes: Attributes::NONE,
            },
            attributes: Attributes::NONE,
            now: 1_795_428_000,
            break_glass: None,
        }
    });
    assert!(!d2.is_allowed());
}

/// The sample policy without its separation-of-duty sets: the same roles
/// with the same ids, so a session opened under it carries over.
fn policy_without_sod() -> Policy {
    let text: String = HOSPITAL_POLICY
        .split("\n[[")
        .filter(|section| !section.starts_with("sod]]"))
        .collect::<Vec<_>>()
        .join("\n[[");
    assert!(!text.contains("[[sod]]"));
    Policy::from_toml(&text).unwrap()
}

#[test]
fn a_principal_cannot_be_built_past_separation_of_duty() {
    let p = policy();
    for (roles, dynamic, set) in [
        (
            &["administrator", "auditor"][..],
            false,
            "admin-not-auditor",
        ),
        // physician inherits nurse, which billing excludes.
        (
            &["billing", "physician"][..],
            false,
            "billing-not-clinician",
        ),
        (&["receptionist", "nurse"][..], true, "front-desk-or-clinic"),
        (
            &["receptionist", "on_call_physician"][..],
            true,
            "front-desk-or-clinic",
        ),
    ] {
        let set_of = p.role_set(roles).unwrap();
        let err =
            carevox_authz::Principal::new(&p, UserId(8), set_of, true, None, &[]).unwrap_err();
        match (&err, dynamic) {
            (RbacError::StaticSod { set: s, .. }, false)
            | (RbacError::DynamicSod { set: s, .. }, true) => assert_eq!(s, set, "{roles:?}"),
            _ => panic!("{roles:?}: {err:?}"),
        }
    }
    // Roles that keep every set are accepted, with what they inherit.
    let ok = carevox_authz::Principal::new(
        &p,
        UserId(8),
        p.role_set(&["on_call_physician"]).unwrap(),
        true,
        None,
        &[],
    )
    .unwrap();
    assert!(ok.roles().contains(p.role("nurse").unwrap()));
}

#[test]
fn decide_refuses_a_principal_that_breaks_separation_of_duty() {
    // A session opened under a policy without separation of duty holds
    // roles that the sample policy keeps apart; its decisions under the
    // sample policy are refused, with the set named.
    let lax = policy_without_sod();
    let strict = policy();
    let u = UserId(11);
    let teams = [TeamId(1)];
    for (roles, set) in [
        (["receptionist", "nurse"], "front-desk-or-clinic"),
        (["administrator", "auditor"], "admin-not-auditor"),
    ] {
        let mut a = Assignments::new();
        let mut s = Session::new(u, true, None);
        for r in roles {
            let r = lax.role(r).unwrap();
            a.assign(&lax, u, r).unwrap();
            s.activate(&lax, &a, r).unwrap();
        }
        let (action, kind) = if roles[0] == "receptionist" {
            ("place", "call")
        } else {
            ("read", "policy")
        };
        let request = Request {
            principal: s.principal(&teams),
            action: strict.action(action).unwrap(),
            resource: Resource {
                kind: strict.resource_type(kind).unwrap(),
                owner: None,
                care_teams: &teams,
                ephi: false,
                attributes: Attributes::NONE,
            },
            attributes: Attributes::NONE,
            now: 1_795_428_000,
            break_glass: None,
        };
        // The lax policy permits it; the strict one refuses it.
        assert!(lax.decide(&request).is_allowed());
        let d = strict.decide(&request);
        assert!(!d.is_allowed());
        assert_eq!(d.reason, carevox_authz::Reason::SeparationOfDuty { set });
        assert_eq!(d.unmet, carevox_authz::Unmet::SEPARATION_OF_DUTY);
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains(r#""kind":"separation_of_duty""#), "{json}");
    }
}
