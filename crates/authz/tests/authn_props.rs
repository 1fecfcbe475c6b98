//! Property tests of the authentication primitives. Case counts are kept
//! small where a case hashes a password.

#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use carevox_authz::lockout::{LockoutPolicy, LockoutState};
use carevox_authz::login::SessionToken;
use carevox_authz::password::{
    Argon2Params, HashAlgorithm, Password, PasswordError, PasswordHasher,
};
use carevox_authz::recovery::{RecoveryCodeSet, RecoveryError};
use carevox_authz::totp::{Totp, TotpAlgorithm, TotpError, TotpSecret};
use proptest::prelude::*;
use ring::rand::SystemRandom;
use std::time::Duration;

fn tiny() -> PasswordHasher {
    PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(Argon2Params {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    }))
    .unwrap()
}

fn algorithm() -> impl Strategy<Value = TotpAlgorithm> {
    prop_oneof![
        Just(TotpAlgorithm::Sha1),
        Just(TotpAlgorithm::Sha256),
        Just(TotpAlgorithm::Sha512),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn phc_round_trip(password in "\\PC{1,40}") {
        let hasher = tiny();
        let password = Password::new(password).unwrap();
        let stored = hasher.hash(&password, &SystemRandom::new()).unwrap();
        prop_assert!(!hasher.needs_rehash(&stored).unwrap());
        prop_assert!(!hasher.verify(&password, &stored).unwrap().needs_rehash);
    }

    #[test]
    fn wrong_password_never_verifies(a in "\\PC{1,24}", b in "\\PC{1,24}") {
        prop_assume!(a != b);
        let hasher = tiny();
        let stored = hasher.hash(&Password::new(a).unwrap(), &SystemRandom::new()).unwrap();
        prop_assert_eq!(
            hasher.verify(&Password::new(b).unwrap(), &stored),
            Err(PasswordError::Mismatch)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn stored_hash_parser_never_panics(stored in "\\$?[a-z0-9=,$+/-]{0,120}") {
        let _ = tiny().verify(&Password::new("x").unwrap(), &stored);
    }

    #[test]
    fn code_verifies_only_within_one_step(
        seed in proptest::collection::vec(any::<u8>(), 16..=64),
        alg in algorithm(),
        digits in 6u8..=8,
        now in 90u64..4_000_000_000,
        delta in -4i64..=4,
    ) {
        let totp = Totp::new(alg, digits).unwrap();
        let secret = TotpSecret::from_bytes(&seed).unwrap();
        let current = totp.step_at(now).unwrap();
        let step = current.checked_add_signed(delta).unwrap();
        let code = totp.code_at_step(&secret, step);
        let result = totp.verify(&secret, &code, now, None);
        if delta.abs() <= 1 {
            prop_assert_eq!(result, Ok(step));
            // Once accepted, that step (and any before) is refused.
            prop_assert_eq!(totp.verify(&secret, &code, now, Some(step)), Err(TotpError::Replayed));
        } else {
            // Unless the code happens to equal one inside the window, it fails.
            let collides = (current - 1..=current + 1)
                .any(|s| *totp.code_at_step(&secret, s) == *code);
            prop_assume!(!collides);
            prop_assert_eq!(result, Err(TotpError::Invalid));
        }
    }

    #[test]
    fn totp_verify_never_panics(code in "\\PC{0,12}", now in any::<u64>(), last in any::<Option<u64>>()) {
        let totp = Totp::default();
        let secret = TotpSecret::from_bytes(&[7u8; 20]).unwrap();
        let _ = totp.verify(&secret, &code, now, last);
    }

    #[test]
    fn base32_round_trip(seed in proptest::collection::vec(any::<u8>(), 16..=64)) {
        let secret = TotpSecret::from_bytes(&seed).unwrap();
        let text = secret.to_base32();
        prop_assert!(text.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        prop_assert_eq!(TotpSecret::from_base32(&text.to_lowercase()).unwrap(), secret);
    }

    #[test]
    fn random_input_never_consumes_a_recovery_code(guess in "[0-9A-Za-z -]{0,30}") {
        let (codes, mut set) = RecoveryCodeSet::generate(&SystemRandom::new(), 4).unwrap();
        let normalised: String = guess.chars().filter(|c| *c != '-' && *c != ' ').collect();
        prop_assume!(!codes.iter().any(|c| c.expose().replace('-', "") == normalised.to_uppercase()));
        let result = set.consume(&guess);
        prop_assert!(matches!(result, Err(RecoveryError::Invalid | RecoveryError::Malformed)));
        prop_assert_eq!(set.remaining(), 4);
    }

    #[test]
    fn stored_recovery_parser_never_panics(stored in "(rc1\\$)?[A-Za-z0-9+/,$-]{0,100}") {
        let _ = RecoveryCodeSet::from_stored(&stored);
    }

    #[test]
    fn session_token_parser_never_panics(text in "\\PC{0,60}") {
        if let Ok(token) = SessionToken::parse(&text) {
            prop_assert_eq!(token.expose(), text.as_str());
        }
    }

    #[test]
    fn backoff_is_monotone_capped_and_ahead_of_now(
        free in 0u32..10,
        base in 1u64..120,
        cap in 1u64..100_000,
        failures in 1usize..80,
        start in 0u64..1u64 << 40,
    ) {
        let policy = LockoutPolicy {
            free_failures: free,
            base_delay: Duration::from_secs(base),
            max_delay: Duration::from_secs(cap),
            reset_after: Duration::from_secs(1u64 << 50),
        };
        let mut state = LockoutState::default();
        let mut previous = 0;
        for i in 0..failures {
            let now = start + i as u64;
            let delay = policy.delay_after(u32::try_from(i + 1).unwrap());
            prop_assert!(delay >= previous && delay <= cap);
            previous = delay;
            let until = policy.record_failure(&mut state, now);
            prop_assert_eq!(until, (delay > 0).then(|| now + delay));
            prop_assert_eq!(policy.check(&state, now).is_err(), delay > 0);
        }
        policy.record_success(&mut state);
        prop_assert!(policy.check(&state, start).is_ok());
    }
}
