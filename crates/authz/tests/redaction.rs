//! No password, TOTP seed, session token, recovery code, user name or
//! patient id appears in the `{:?}` or `{:#?}` of any public type, decision
//! or error of the crate, built here from known values.

// Test helpers outside #[test] functions may unwrap, index and panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::disallowed_methods // SystemRandom: outcomes do not depend on it
)]

use std::fmt::Debug;

use carevox_authz::lockout::{LockoutPolicy, LockoutState};
use carevox_authz::login::{AuthMethod, SessionPolicy, SessionStore, SessionToken};
use carevox_authz::password::{Argon2Params, HashAlgorithm, Password, PasswordHasher};
use carevox_authz::recovery::RecoveryCodeSet;
use carevox_authz::totp::{Totp, TotpSecret};
use carevox_authz::{
    Assignments, Attributes, BreakGlass, HOSPITAL_POLICY, PatientId, Pii, Policy, PolicyError,
    Principal, Request, Resource, Session, TeamId, UserId,
};
use carevox_redact::debug_leak;
use ring::rand::SystemRandom;

const PASSWORD: &str = "correct horse battery staple";
const SEED: &[u8] = b"seed-0123456789-abcdef";
const USER_NAME: &str = "dr.grey.seattle";
const PATIENT: u64 = 424_242;
const REASON: &str = "patient Jane Roe coded in bed 12";

fn assert_clean<T: Debug + ?Sized>(what: &str, value: &T, needles: &[&str]) {
    if let Some((needle, out)) = debug_leak(value, needles) {
        panic!("{what} shows `{needle}`: {out}");
    }
}

#[test]
fn authentication_types_and_errors_redact() {
    let rng = SystemRandom::new();
    let seed = TotpSecret::from_bytes(SEED).unwrap();
    let seed_b32 = seed.to_base32();
    let seed_text = std::str::from_utf8(SEED).unwrap();
    let hasher = PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }))
    .unwrap();
    let password = Password::new(PASSWORD).unwrap();
    let stored = hasher.hash(&password, &rng).unwrap();
    let (codes, set) = RecoveryCodeSet::generate(&rng, 4).unwrap();
    let store = SessionStore::new(SessionPolicy::default());
    let (token, info) = store
        .create(
            &rng,
            USER_NAME,
            &[AuthMethod::Password, AuthMethod::Totp],
            1_000,
        )
        .unwrap();
    let code = Totp::default().generate(&seed, 1_000).unwrap();
    let ended = store.purge_expired(1_000_000);

    let mut needles = vec![
        PASSWORD,
        "horse",
        seed_text,
        seed_b32.as_str(),
        token.expose(),
        USER_NAME,
        "grey",
        code.as_str(),
    ];
    let code_texts: Vec<String> = codes.iter().map(|c| c.expose().to_owned()).collect();
    needles.extend(code_texts.iter().map(String::as_str));
    // The raw seed bytes as Debug would list them.
    let seed_bytes = format!("{:?}", &SEED[..4]);
    let seed_bytes = seed_bytes.trim_matches(|c| c == '[' || c == ']');
    needles.push(seed_bytes);

    assert_clean("Password", &password, &needles);
    assert_clean("TotpSecret", &seed, &needles);
    assert_clean("RecoveryCode", &codes[0], &needles);
    assert_clean("Vec<RecoveryCode>", &codes, &needles);
    assert_clean("RecoveryCodeSet", &set, &needles);
    assert_clean("SessionToken", &token, &needles);
    assert_clean("SessionInfo", &info, &needles);
    assert_clean("EndedSession", &ended, &needles);
    assert!(!ended.is_empty());
    assert_clean("SessionStore", &store, &needles);
    assert_clean("PasswordHasher", &hasher, &needles);
    assert_clean("LockoutPolicy", &LockoutPolicy::default(), &needles);
    assert_clean("LockoutState", &LockoutState::default(), &needles);

    // Errors built from the same secrets.
    assert_clean(
        "PasswordError",
        &hasher.verify(&Password::new("wrong").unwrap(), &stored),
        &needles,
    );
    assert_clean(
        "TotpError",
        &Totp::default().verify(&seed, "000000", 1_000, Some(u64::MAX)),
        &needles,
    );
    assert_clean(
        "TotpError (base32)",
        &TotpSecret::from_base32(&format!("{}!", seed_b32.as_str())),
        &needles,
    );
    let mut set2 = set.clone();
    let used = set2.consume(&code_texts[0]);
    assert!(used.is_ok());
    assert_clean("RecoveryError", &set2.consume(&code_texts[0]), &needles);
    assert_clean(
        "SessionError",
        &SessionToken::parse(&format!("{}x", token.expose())),
        &needles,
    );
    assert_clean(
        "SessionError (touch)",
        &store.touch(&token, 10_000_000),
        &needles,
    );
}

#[test]
fn authorization_types_and_decisions_redact() {
    let policy = Policy::from_toml(HOSPITAL_POLICY).unwrap();
    let patient_text = PATIENT.to_string();
    let needles = [patient_text.as_str(), "Jane", "Roe", "bed 12"];
    let patient = PatientId::new(PATIENT);
    let teams = [TeamId(3)];
    let mut assignments = Assignments::new();
    let physician = policy.role("on_call_physician").unwrap();
    assignments.assign(&policy, UserId(9), physician).unwrap();
    let mut session = Session::new(UserId(9), true, Some(patient));
    session.activate(&policy, &assignments, physician).unwrap();
    let principal = session.principal(&teams);
    let built = Principal::new(
        &policy,
        UserId(9),
        policy.role_set(&["nurse"]).unwrap(),
        true,
        Some(patient),
        &teams,
    )
    .unwrap();
    let grant = BreakGlass {
        reason: Pii::new(REASON),
        issued_at: 1_000,
        expires_at: 2_000,
    };
    let request = Request {
        principal,
        action: policy.action("listen").unwrap(),
        resource: Resource {
            kind: policy.resource_type("voicemail").unwrap(),
            owner: Some(patient),
            care_teams: &[TeamId(4)],
            ephi: true,
            attributes: Attributes::NONE,
        },
        attributes: Attributes::NONE,
        now: 1_500,
        break_glass: Some(grant),
    };
    let allowed = policy.decide(&request);
    let denied = policy.decide(&Request {
        break_glass: None,
        ..request
    });
    assert!(allowed.is_allowed() && !denied.is_allowed());

    assert_clean("PatientId", &patient, &needles);
    assert_clean("Session", &session, &needles);
    assert_clean("Principal", &principal, &needles);
    assert_clean("Principal::new", &built, &needles);
    assert_clean("BreakGlass", &grant, &needles);
    assert_clean("Request", &request, &needles);
    assert_clean("Decision (allowed)", &allowed, &needles);
    assert_clean("Decision (denied)", &denied, &needles);
    assert_clean("Assignments", &assignments, &needles);
    assert_clean("Policy", &policy, &needles);
    for d in [allowed, denied] {
        let json = serde_json::to_string(&d).unwrap();
        for n in needles {
            assert!(!json.contains(n), "{json}");
        }
    }

    // Errors: separation of duty, and policy errors.
    let refused = Principal::new(
        &policy,
        UserId(9),
        policy.role_set(&["administrator", "auditor"]).unwrap(),
        true,
        Some(patient),
        &teams,
    );
    assert_clean("RbacError", &refused, &needles);
    let bad: Result<Policy, PolicyError> =
        Policy::from_toml(&HOSPITAL_POLICY.replace("max_minutes = 240", "max_minutes = 0"));
    assert_clean("PolicyError", &bad, &needles);
}
