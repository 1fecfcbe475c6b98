//! Voicemail PINs through the user directory, as the call flow reaches
//! them: a test user given a PIN with `Users::with_pins` has it through
//! `UserDirectory::user`, a low-cost test hash verifies with the default
//! hasher's verification, a user without a PIN and an unknown user are
//! refused alike, and no `Debug` shows the hash.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use carevox::redact::debug_leak;
use carevox_pbx::pin::verify_or_dummy;
use carevox_pbx::registrar::{Md5Use, UserDirectory};

mod common;

use common::Users;

#[test]
fn a_test_user_given_a_pin_has_it_through_the_directory() {
    let users =
        Users::with_passwords(&["alice", "bob"], Md5Use::Refused).with_pins(&[("bob", "2468")]);
    let bob = users.user("bob").unwrap();
    let pin = bob.voicemail_pin.as_ref().unwrap();
    assert!(pin.verify("2468"));
    assert!(!pin.verify("2467"));
    assert!(verify_or_dummy(bob.voicemail_pin.as_ref(), "2468"));
    assert!(!verify_or_dummy(bob.voicemail_pin.as_ref(), "8642"));

    // Alice has no PIN, and nobody is called carol: neither gets in, with
    // any PIN.
    let alice = users.user("alice").unwrap();
    assert!(alice.voicemail_pin.is_none());
    assert!(!verify_or_dummy(alice.voicemail_pin.as_ref(), "2468"));
    let carol = users.user("carol").and_then(|u| u.voicemail_pin);
    assert!(!verify_or_dummy(carol.as_ref(), "2468"));

    // The hash is nowhere in Debug (its PHC string starts with `$argon2id`).
    assert_eq!(debug_leak(&bob, &["argon2", "$v=19", "2468"]), None);
    assert_eq!(debug_leak(pin, &["argon2", "$v=19", "2468"]), None);
}
