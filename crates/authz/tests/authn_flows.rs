//! Behaviour of the authentication primitives over time, on a fake clock:
//! lockout and backoff, idle logoff and absolute session lifetime, and a
//! whole login with password, TOTP and recovery code.

// Tests draw real randomness; their outcomes do not depend on it.
#![allow(clippy::disallowed_methods)]
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use carevox_authz::lockout::{LockoutError, LockoutPolicy, LockoutState, LockoutTable};
use carevox_authz::login::{
    AuthMethod, EndReason, SessionError, SessionPolicy, SessionStore, SessionToken,
};
use carevox_authz::password::{
    Argon2Params, HashAlgorithm, Password, PasswordError, PasswordHasher,
};
use carevox_authz::recovery::{RecoveryCodeSet, RecoveryError};
use carevox_authz::totp::{Totp, TotpAlgorithm, TotpError, TotpSecret};
use ring::rand::SystemRandom;

/// A clock the test moves by hand: seconds since the Unix epoch.
struct FakeClock(u64);

impl FakeClock {
    fn now(&self) -> u64 {
        self.0
    }
    fn advance(&mut self, secs: u64) -> u64 {
        self.0 += secs;
        self.0
    }
}

fn tiny_argon2(memory_kib: u32) -> PasswordHasher {
    PasswordHasher::dangerous_low_cost(HashAlgorithm::Argon2id(Argon2Params {
        memory_kib,
        iterations: 1,
        parallelism: 1,
    }))
    .unwrap()
}

/// Why a login attempt failed, as the user would be told: one answer for
/// every credential failure, whether or not the account exists.
#[derive(Debug, PartialEq, Eq)]
enum LoginRefused {
    Locked { retry_after_secs: u64 },
    BadCredentials,
}

/// A miniature server: accounts with stored hashes, lockout per submitted
/// name, kept the way the module docs prescribe.
struct Server {
    hasher: PasswordHasher,
    policy: LockoutPolicy,
    accounts: Vec<(String, String)>,
    lockouts: std::collections::HashMap<String, LockoutState>,
}

impl Server {
    fn login(&mut self, name: &str, password: &str, now: u64) -> Result<(), LoginRefused> {
        let state = self.lockouts.entry(name.to_owned()).or_default();
        if let Err(LockoutError::Locked { retry_after_secs }) = self.policy.check(state, now) {
            return Err(LoginRefused::Locked { retry_after_secs });
        }
        let password = Password::new(password).unwrap();
        let outcome = match self.accounts.iter().find(|(n, _)| n == name) {
            Some((_, stored)) => self.hasher.verify(&password, stored).map(|_| ()),
            None => Err(self.hasher.dummy_verify(&password)),
        };
        match outcome {
            Ok(()) => {
                self.policy.record_success(state);
                Ok(())
            }
            Err(PasswordError::Mismatch) => {
                self.policy.record_failure(state, now);
                Err(LoginRefused::BadCredentials)
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
}

fn server() -> Server {
    let hasher = tiny_argon2(16);
    let stored = hasher
        .hash(&Password::new("right").unwrap(), &SystemRandom::new())
        .unwrap();
    Server {
        hasher,
        policy: LockoutPolicy {
            free_failures: 3,
            base_delay: Duration::from_secs(60),
            max_delay: Duration::from_secs(600),
            reset_after: Duration::from_secs(3600),
        },
        accounts: vec![("alice".to_owned(), stored)],
        lockouts: Default::default(),
    }
}

#[test]
fn lockout_backs_off_exponentially_and_success_resets() {
    let mut s = server();
    let mut clock = FakeClock(1_000_000);
    for _ in 0..2 {
        assert_eq!(
            s.login("alice", "wrong", clock.now()),
            Err(LoginRefused::BadCredentials)
        );
        clock.advance(1);
    }
    // The third failure locks for 60 s.
    assert_eq!(
        s.login("alice", "wrong", clock.now()),
        Err(LoginRefused::BadCredentials)
    );
    clock.advance(10);
    // While locked even the right password is not looked at.
    assert_eq!(
        s.login("alice", "right", clock.now()),
        Err(LoginRefused::Locked {
            retry_after_secs: 50
        })
    );
    // Each further failure doubles the wait: 120, 240, 480, then the 600 cap.
    for expected in [120, 240, 480, 600, 600] {
        clock.advance(s.policy.max_delay.as_secs());
        assert_eq!(
            s.login("alice", "wrong", clock.now()),
            Err(LoginRefused::BadCredentials)
        );
        assert_eq!(
            s.login("alice", "right", clock.now()),
            Err(LoginRefused::Locked {
                retry_after_secs: expected
            })
        );
        clock.advance(expected - 1);
        assert_eq!(
            s.login("alice", "right", clock.now()),
            Err(LoginRefused::Locked {
                retry_after_secs: 1
            })
        );
        clock.advance(1);
        // Now an attempt is allowed again (the next loop turn fails it).
        assert!(s.policy.check(&s.lockouts["alice"], clock.now()).is_ok());
    }
    assert_eq!(s.login("alice", "right", clock.now()), Ok(()));
    assert_eq!(s.lockouts["alice"], LockoutState::default());
    // After the reset the free failures are available again.
    for _ in 0..2 {
        assert_eq!(
            s.login("alice", "wrong", clock.now()),
            Err(LoginRefused::BadCredentials)
        );
    }
    assert_eq!(s.login("alice", "right", clock.now()), Ok(()));
}

#[test]
fn unknown_accounts_lock_out_exactly_like_real_ones() {
    let mut s = server();
    let clock = FakeClock(5_000);
    let mut real = Vec::new();
    let mut ghost = Vec::new();
    for i in 0..6 {
        real.push(s.login("alice", "wrong", clock.now() + i));
        ghost.push(s.login("nobody", "wrong", clock.now() + i));
    }
    assert_eq!(real, ghost);
    assert!(matches!(
        real.last(),
        Some(Err(LoginRefused::Locked { .. }))
    ));
    assert_eq!(s.lockouts["alice"], s.lockouts["nobody"]);
}

#[test]
fn failures_are_forgotten_after_a_quiet_period() {
    let mut s = server();
    let mut clock = FakeClock(0);
    for _ in 0..2 {
        s.login("alice", "wrong", clock.now()).unwrap_err();
    }
    clock.advance(3600);
    // Two more failures do not lock: the old two were forgotten.
    for _ in 0..2 {
        assert_eq!(
            s.login("alice", "wrong", clock.now()),
            Err(LoginRefused::BadCredentials)
        );
    }
    assert!(s.policy.check(&s.lockouts["alice"], clock.now()).is_ok());
}

#[test]
fn per_source_table_throttles_one_address() {
    use std::net::IpAddr;
    let policy = LockoutPolicy {
        free_failures: 20,
        ..LockoutPolicy::default()
    };
    let mut sources: LockoutTable<IpAddr> = LockoutTable::new(policy, 1000);
    let attacker: IpAddr = "192.0.2.7".parse().unwrap();
    let nurse: IpAddr = "198.51.100.3".parse().unwrap();
    let clock = FakeClock(10_000);
    // Spraying many account names from one address trips the source limit
    // even though no single account reaches its own.
    for _ in 0..20 {
        sources.check(&attacker, clock.now()).unwrap();
        sources.record_failure(&attacker, clock.now());
    }
    assert_eq!(
        sources.check(&attacker, clock.now()),
        Err(LockoutError::Locked {
            retry_after_secs: 30
        })
    );
    assert_eq!(sources.check(&nurse, clock.now()), Ok(()));
}

fn session_store() -> SessionStore {
    SessionStore::new(SessionPolicy {
        idle_timeout: Duration::from_secs(15 * 60),
        absolute_lifetime: Duration::from_secs(8 * 3600),
        capacity: 1000,
        max_per_user: 4,
    })
}

#[test]
fn idle_session_is_logged_off_at_the_timeout() {
    let store = session_store();
    let mut clock = FakeClock(1_700_000_000);
    let (token, info) = store
        .create(
            &SystemRandom::new(),
            "u-7",
            &[AuthMethod::Password],
            clock.now(),
        )
        .unwrap();
    assert_eq!(info.idle_deadline, clock.now() + 900);
    // Activity every 14 minutes keeps it alive for an hour.
    for _ in 0..4 {
        clock.advance(14 * 60);
        let info = store.touch(&token, clock.now()).unwrap();
        assert_eq!(info.last_seen_at, clock.now());
    }
    // `peek` does not count as activity.
    clock.advance(14 * 60);
    store.peek(&token, clock.now()).unwrap();
    clock.advance(59);
    store.peek(&token, clock.now()).unwrap();
    clock.advance(1); // exactly 15 minutes idle
    assert_eq!(
        store.touch(&token, clock.now()),
        Err(SessionError::IdleTimeout)
    );
    assert_eq!(
        store.touch(&token, clock.now()),
        Err(SessionError::NotFound)
    );
    assert!(store.is_empty());
}

#[test]
fn absolute_lifetime_ends_even_a_busy_session() {
    let store = session_store();
    let mut clock = FakeClock(0);
    let (token, info) = store
        .create(&SystemRandom::new(), "u-7", &[AuthMethod::Password], 0)
        .unwrap();
    assert_eq!(info.absolute_deadline, 8 * 3600);
    while clock.now() + 600 < 8 * 3600 {
        clock.advance(600);
        let info = store.touch(&token, clock.now()).unwrap();
        assert!(info.idle_deadline <= info.absolute_deadline);
    }
    clock.0 = 8 * 3600;
    assert_eq!(
        store.touch(&token, clock.now()),
        Err(SessionError::LifetimeExceeded)
    );
}

#[test]
fn purge_reports_each_automatic_logoff() {
    let store = session_store();
    let rng = SystemRandom::new();
    let (idle, idle_info) = store
        .create(&rng, "u-1", &[AuthMethod::Password], 0)
        .unwrap();
    let (busy, busy_info) = store
        .create(&rng, "u-2", &[AuthMethod::Password], 0)
        .unwrap();
    let (fresh, _) = store
        .create(&rng, "u-3", &[AuthMethod::Password], 8 * 3600 - 60)
        .unwrap();
    for t in (600..8 * 3600).step_by(600) {
        store.touch(&busy, t).unwrap();
    }
    let mut ended = store.purge_expired(8 * 3600);
    ended.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    assert_eq!(ended.len(), 2);
    assert_eq!(ended[0].id, idle_info.id);
    assert_eq!(ended[0].reason, EndReason::IdleTimeout);
    assert_eq!(ended[1].id, busy_info.id);
    assert_eq!(ended[1].reason, EndReason::LifetimeExceeded);
    assert_eq!(store.touch(&idle, 8 * 3600), Err(SessionError::NotFound));
    assert!(store.touch(&fresh, 8 * 3600).is_ok());
    assert!(store.purge_expired(8 * 3600).is_empty());
}

#[test]
fn logoff_ends_sessions_at_once() {
    let store = session_store();
    let rng = SystemRandom::new();
    let (a, a_info) = store
        .create(&rng, "u-1", &[AuthMethod::Password], 0)
        .unwrap();
    let (b, _) = store
        .create(&rng, "u-1", &[AuthMethod::Password], 0)
        .unwrap();
    let (c, _) = store
        .create(&rng, "u-2", &[AuthMethod::Password], 0)
        .unwrap();
    assert_eq!(store.logoff(&a).map(|i| i.id), Some(a_info.id));
    assert_eq!(store.logoff(&a), None);
    assert_eq!(store.touch(&a, 1), Err(SessionError::NotFound));
    assert_eq!(store.logoff_user("u-1"), 1);
    assert_eq!(store.touch(&b, 1), Err(SessionError::NotFound));
    assert!(store.touch(&c, 1).is_ok());
    // A token of the right shape that was never issued is simply unknown.
    let forged = SessionToken::parse(&"A".repeat(43)).unwrap();
    assert_eq!(store.touch(&forged, 1), Err(SessionError::NotFound));
}

#[test]
fn store_is_shared_across_threads() {
    let store = Arc::new(session_store());
    let rng = SystemRandom::new();
    let (token, _) = store
        .create(&rng, "u-1", &[AuthMethod::Password], 0)
        .unwrap();
    let handles: Vec<_> = (0..4u64)
        .map(|i| {
            let store = Arc::clone(&store);
            let token = token.clone();
            std::thread::spawn(move || {
                let rng = SystemRandom::new();
                for t in 0..50 {
                    store.touch(&token, t).unwrap();
                    let user = format!("t{i}");
                    store
                        .create(&rng, &user, &[AuthMethod::Password], t)
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // 1 shared session + 4 users x at most 4 sessions each.
    assert_eq!(store.len(), 1 + 4 * 4);
}

#[test]
fn full_login_with_rehash_totp_step_up_and_recovery() {
    let rng = SystemRandom::new();
    let mut clock = FakeClock(1_700_000_000);

    // Enrolled long ago with PBKDF2; the deployment now uses Argon2id.
    let old = PasswordHasher::dangerous_low_cost(HashAlgorithm::Pbkdf2Sha256 {
        iterations: NonZeroU32::new(1000).unwrap(),
    })
    .unwrap();
    let mut stored = old.hash(&Password::new("p@ss").unwrap(), &rng).unwrap();
    let current = tiny_argon2(32);
    let verified = current
        .verify(&Password::new("p@ss").unwrap(), &stored)
        .unwrap();
    assert!(verified.needs_rehash);
    stored = current.hash(&Password::new("p@ss").unwrap(), &rng).unwrap();
    assert!(
        !current
            .verify(&Password::new("p@ss").unwrap(), &stored)
            .unwrap()
            .needs_rehash
    );
    assert!(stored.starts_with("$argon2id$"));

    // Second factor: TOTP, with the last used step persisted.
    let totp = Totp::new(TotpAlgorithm::Sha256, 6).unwrap();
    let secret = TotpSecret::generate(&rng, TotpAlgorithm::Sha256).unwrap();
    let store = session_store();
    let (token, info) = store
        .create(&rng, "u-9", &[AuthMethod::Password], clock.now())
        .unwrap();
    assert!(!info.is_mfa());
    let code = totp.generate(&secret, clock.now()).unwrap();
    let step = totp.verify(&secret, &code, clock.now(), None).unwrap();
    let info = store
        .add_method(&token, AuthMethod::Totp, clock.now())
        .unwrap();
    assert!(info.is_mfa() && info.used(AuthMethod::Totp));
    // The same code a few seconds later, e.g. replayed by an onlooker, fails.
    clock.advance(5);
    assert_eq!(
        totp.verify(&secret, &code, clock.now(), Some(step)),
        Err(TotpError::Replayed)
    );
    // The next code works and moves the step on.
    clock.advance(30);
    let next = totp.generate(&secret, clock.now()).unwrap();
    assert_eq!(
        totp.verify(&secret, &next, clock.now(), Some(step)),
        Ok(step + 1)
    );

    // Phone lost: a recovery code instead, once.
    let (codes, set) = RecoveryCodeSet::generate(&rng, 8).unwrap();
    let stored_set = set.to_stored();
    let mut set = RecoveryCodeSet::from_stored(&stored_set).unwrap();
    assert_eq!(set.consume(codes[0].expose()), Ok(7));
    let stored_set = set.to_stored();
    let mut set = RecoveryCodeSet::from_stored(&stored_set).unwrap();
    assert_eq!(set.consume(codes[0].expose()), Err(RecoveryError::Invalid));
    let (_, info) = store
        .create(
            &rng,
            "u-9",
            &[AuthMethod::Password, AuthMethod::RecoveryCode],
            clock.now(),
        )
        .unwrap();
    assert!(info.is_mfa());
}
