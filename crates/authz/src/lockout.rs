//! Lockout after repeated failures, with exponential backoff.
//!
//! A [`LockoutPolicy`] lets `free_failures` consecutive failures pass, then
//! imposes a wait that doubles with every further failure, from `base_delay`
//! up to `max_delay`. A success resets the count; so does a quiet period of
//! `reset_after` without failures. Time is an argument (seconds since the Unix
//! epoch) and the state is a small [`LockoutState`] the caller persists with
//! the account (or keeps in a [`LockoutTable`] in memory, e.g. per source
//! address).
//!
//! The run of a login attempt:
//!
//! 1. [`LockoutPolicy::check`] the account's state (and the source's). If it
//!    is locked, refuse *without* looking at the credentials, so a locked
//!    account is no oracle for guessing.
//! 2. Verify the credentials.
//! 3. On failure [`LockoutPolicy::record_failure`]; on success
//!    [`LockoutPolicy::record_success`]. Persist the state.
//!
//! # Not revealing whether an account exists
//!
//! Key the state by the identifier the user *submitted* (normalised), whether
//! or not such an account exists, and run the same steps for an unknown name
//! (with `PasswordHasher::dummy_verify` in step 2). Unknown names then lock
//! out exactly like real ones, and the caller answers both with the same
//! message and the same timing. [`LockoutError`] carries only the wait, never
//! the account.
//!
//! ```
//! use carevox_authz::lockout::{LockoutError, LockoutPolicy, LockoutState};
//! use std::time::Duration;
//!
//! let policy = LockoutPolicy {
//!     free_failures: 3,
//!     base_delay: Duration::from_secs(30),
//!     max_delay: Duration::from_secs(3600),
//!     reset_after: Duration::from_secs(86_400),
//! };
//! let mut state = LockoutState::default();
//! let t = 1_700_000_000;
//! for i in 0..3 {
//!     assert!(policy.check(&state, t + i).is_ok());
//!     policy.record_failure(&mut state, t + i);
//! }
//! // The third failure (at t + 2) locks for 30 s.
//! assert_eq!(policy.check(&state, t + 3), Err(LockoutError::Locked { retry_after_secs: 29 }));
//! assert!(policy.check(&state, t + 32).is_ok());
//! policy.record_success(&mut state);
//! assert_eq!(state, LockoutState::default());
//! ```

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

/// Errors of lockout checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LockoutError {
    /// Too many recent failures: try again after the wait.
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    Locked {
        /// Seconds until an attempt is allowed again (at least 1).
        retry_after_secs: u64,
    },
}

/// The lockout rule. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockoutPolicy {
    /// Consecutive failures allowed before the first wait (N). With 0,
    /// every failure imposes a wait.
    pub free_failures: u32,
    /// The wait after the N-th failure; it doubles with each further one.
    pub base_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
    /// Failures are forgotten after this long without one.
    pub reset_after: Duration,
}

impl Default for LockoutPolicy {
    /// 5 free failures, then 30 s doubling up to 1 hour; forgotten after 24
    /// hours. (NIST SP 800-63B section 5.2.2 asks for at most 100
    /// consecutive failures; this stays far below.)
    fn default() -> Self {
        Self {
            free_failures: 5,
            base_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(3600),
            reset_after: Duration::from_secs(86_400),
        }
    }
}

/// What the caller persists per account (or per source): the count of
/// consecutive failures, when the last one happened and until when attempts
/// are refused. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LockoutState {
    /// Consecutive failures since the last success or reset.
    pub failures: u32,
    /// Time of the last failure.
    pub last_failure_at: Option<u64>,
    /// Attempts are refused before this time.
    pub locked_until: Option<u64>,
}

impl LockoutPolicy {
    /// `Ok` if an attempt may be made at `now`.
    ///
    /// # Errors
    /// [`LockoutError::Locked`] with the remaining wait.
    pub fn check(&self, state: &LockoutState, now: u64) -> Result<(), LockoutError> {
        match state.locked_until {
            Some(until) if now < until => Err(LockoutError::Locked {
                retry_after_secs: until - now,
            }),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt at `now` and returns the time until which
    /// attempts are now refused, if any.
    pub fn record_failure(&self, state: &mut LockoutState, now: u64) -> Option<u64> {
        if self.is_stale(state, now) {
            *state = LockoutState::default();
        }
        state.failures = state.failures.saturating_add(1);
        state.last_failure_at = Some(now);
        let delay = self.delay_after(state.failures);
        state.locked_until = if delay == 0 {
            None
        } else {
            Some(now.saturating_add(delay))
        };
        state.locked_until
    }

    /// Records a successful attempt: forgets all failures.
    pub fn record_success(&self, state: &mut LockoutState) {
        *state = LockoutState::default();
    }

    /// The wait, in seconds, imposed after `failures` consecutive failures:
    /// 0 up to `free_failures - 1`, then `base_delay * 2^(failures - N)`,
    /// capped at `max_delay`. With `free_failures == 0`, the first failure
    /// already waits `base_delay`.
    #[must_use]
    pub fn delay_after(&self, failures: u32) -> u64 {
        let threshold = self.free_failures.max(1);
        if failures < threshold || failures == 0 {
            return 0;
        }
        let doublings = failures - threshold;
        let base = self.base_delay.as_secs();
        let max = self.max_delay.as_secs();
        let delay = if doublings >= 63 {
            u64::MAX
        } else {
            base.saturating_mul(1u64 << doublings)
        };
        delay.min(max)
    }

    /// Whether the state's failures are old enough to forget at `now`.
    #[must_use]
    pub fn is_stale(&self, state: &LockoutState, now: u64) -> bool {
        let locked = state.locked_until.is_some_and(|until| now < until);
        let quiet = state
            .last_failure_at
            .is_none_or(|last| now.saturating_sub(last) >= self.reset_after.as_secs());
        !locked && quiet
    }
}

/// A bounded in-memory map of lockout states, e.g. per source address
/// (`LockoutTable<std::net::IpAddr>`) or per account name for deployments
/// without a database. When full, the oldest entry makes room; an entry is
/// removed on success and when stale.
///
/// Wrap it in a `Mutex` to share it; it is `Send + Sync` when `K` is.
#[derive(Debug, Clone)]
pub struct LockoutTable<K> {
    policy: LockoutPolicy,
    capacity: usize,
    states: HashMap<K, LockoutState>,
    order: VecDeque<K>,
}

impl<K: Eq + Hash + Clone> LockoutTable<K> {
    /// An empty table holding at most `capacity` (at least 1) entries.
    #[must_use]
    pub fn new(policy: LockoutPolicy, capacity: usize) -> Self {
        Self {
            policy,
            capacity: capacity.max(1),
            states: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The policy applied.
    #[must_use]
    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    /// `Ok` if `key` may attempt at `now`.
    ///
    /// # Errors
    /// [`LockoutError::Locked`] with the remaining wait.
    pub fn check(&self, key: &K, now: u64) -> Result<(), LockoutError> {
        self.states
            .get(key)
            .map_or(Ok(()), |state| self.policy.check(state, now))
    }

    /// Records a failure for `key` at `now`; returns the lock end, if any.
    pub fn record_failure(&mut self, key: &K, now: u64) -> Option<u64> {
        if !self.states.contains_key(key) {
            self.make_room(now);
            self.order.push_back(key.clone());
        }
        let state = self.states.entry(key.clone()).or_default();
        self.policy.record_failure(state, now)
    }

    /// Records a success for `key`: forgets it.
    pub fn record_success(&mut self, key: &K) {
        self.states.remove(key);
        self.compact();
    }

    /// The state of `key`, if it has failures on record.
    #[must_use]
    pub fn state(&self, key: &K) -> Option<&LockoutState> {
        self.states.get(key)
    }

    /// Number of keys with failures on record.
    #[must_use]
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether no key has failures on record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Drops every stale entry; returns how many.
    pub fn purge(&mut self, now: u64) -> usize {
        let before = self.states.len();
        let policy = self.policy;
        self.states.retain(|_, state| !policy.is_stale(state, now));
        self.compact();
        before - self.states.len()
    }

    fn make_room(&mut self, now: u64) {
        if self.states.len() < self.capacity {
            return;
        }
        if self.purge(now) > 0 {
            return;
        }
        while self.states.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.states.remove(&oldest);
        }
    }

    /// Keeps the insertion queue from growing past twice the live entries.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.states.len() + 16 {
            let states = &self.states;
            self.order.retain(|k| states.contains_key(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            free_failures: 3,
            base_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(100),
            reset_after: Duration::from_secs(1000),
        }
    }

    #[test]
    fn delays_double_and_cap() {
        let p = policy();
        let delays: Vec<u64> = (0..10).map(|f| p.delay_after(f)).collect();
        assert_eq!(delays, [0, 0, 0, 10, 20, 40, 80, 100, 100, 100]);
        assert_eq!(p.delay_after(u32::MAX), 100);
        let strict = LockoutPolicy {
            free_failures: 0,
            ..p
        };
        assert_eq!(strict.delay_after(0), 0);
        assert_eq!(strict.delay_after(1), 10);
        assert_eq!(strict.delay_after(2), 20);
    }

    #[test]
    fn quiet_period_forgets_failures() {
        let p = policy();
        let mut s = LockoutState::default();
        p.record_failure(&mut s, 0);
        p.record_failure(&mut s, 1);
        assert_eq!(s.failures, 2);
        p.record_failure(&mut s, 1001);
        assert_eq!(s.failures, 1, "the count restarted after the quiet period");
        assert_eq!(s.locked_until, None);
    }

    #[test]
    fn table_is_bounded_and_evicts_oldest() {
        let mut t = LockoutTable::new(policy(), 3);
        for k in 0..3u32 {
            t.record_failure(&k, 5);
        }
        assert_eq!(t.len(), 3);
        t.record_failure(&9, 6);
        assert_eq!(t.len(), 3);
        assert!(t.state(&0).is_none(), "oldest entry evicted");
        assert!(t.state(&9).is_some());
        t.record_success(&9);
        assert!(t.state(&9).is_none());
        assert_eq!(t.purge(5000), 2);
        assert!(t.is_empty());
    }

    #[test]
    fn table_locks_a_key_independently() {
        let mut t = LockoutTable::new(policy(), 100);
        for i in 0..3 {
            t.record_failure(&"10.0.0.1", i);
        }
        assert_eq!(
            t.check(&"10.0.0.1", 3),
            Err(LockoutError::Locked {
                retry_after_secs: 9
            })
        );
        assert_eq!(t.check(&"10.0.0.2", 3), Ok(()));
        assert_eq!(t.check(&"10.0.0.1", 12), Ok(()));
    }

    #[test]
    fn churn_keeps_the_queue_bounded() {
        let mut t = LockoutTable::new(policy(), 4);
        for i in 0..10_000u32 {
            t.record_failure(&i, 0);
            t.record_success(&i);
        }
        assert!(t.order.len() <= 2 * t.states.len() + 17);
    }
}
