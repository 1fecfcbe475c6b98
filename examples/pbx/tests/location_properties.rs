//! Properties of the location service under any sequence of changes and
//! clock steps: the caps hold, lookups return only live contacts, a refused
//! change changes nothing, a granted one is visible, keys stay unique.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::net::SocketAddr;

use carevox::redact::Pii;
use carevox_pbx::location::{Binding, BindingKey, Change, LocationService, Transport};
use proptest::prelude::*;

const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];
const MAX_USERS: usize = 2;
const MAX_CONTACTS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        user: usize,
        contact: u8,
        lifetime: u64,
    },
    Remove {
        user: usize,
        contact: u8,
    },
    RemoveAll {
        user: usize,
    },
    Advance {
        secs: u64,
    },
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..USERS.len(), 0u8..5, 1u64..100)
            .prop_map(|(user, contact, lifetime)| Op::Upsert { user, contact, lifetime }),
        2 => (0..USERS.len(), 0u8..5).prop_map(|(user, contact)| Op::Remove { user, contact }),
        1 => (0..USERS.len()).prop_map(|user| Op::RemoveAll { user }),
        2 => (0u64..60).prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::Expire),
    ]
}

/// Contact `n`, written in one of two equivalent spellings.
fn uri(n: u8, alt: bool) -> String {
    if alt {
        format!("sip:PHONE@192.0.2.{n};Transport=tls")
    } else {
        format!("sip:PHONE@192.0.2.{n};transport=TLS")
    }
}

fn binding(contact: u8, expires_at: u64, alt: bool) -> Binding {
    let u = uri(contact, alt);
    Binding {
        key: BindingKey::Uri(Pii::new(u.clone())),
        contact: Pii::new(u),
        q: 1000,
        call_id: Pii::new("c".to_owned()),
        cseq: 1,
        expires_at,
        source: Pii::new("192.0.2.1:5061".parse::<SocketAddr>().unwrap()),
        transport: Transport::Tls,
        temp_gruus: Vec::new(),
    }
}

fn snapshot(loc: &LocationService) -> Vec<Vec<Binding>> {
    USERS.iter().map(|u| loc.bindings(u).to_vec()).collect()
}

fn contact_of(b: &Binding) -> u8 {
    b.contact
        .expose()
        .rsplit('.')
        .next()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

proptest! {
    #[test]
    fn the_table_keeps_its_invariants(ops in prop::collection::vec((op(), any::<bool>()), 1..60)) {
        let mut loc = LocationService::new(MAX_USERS, MAX_CONTACTS);
        let mut now = 1_000u64;
        for (op, alt) in ops {
            let before = snapshot(&loc);
            match op {
                Op::Upsert { user, contact, lifetime } => {
                    let b = binding(contact, now + lifetime, alt);
                    match loc.apply(USERS[user], vec![Change::Upsert(b)], now) {
                        Ok(applied) => {
                            prop_assert_eq!(applied.added + applied.updated, 1);
                            let live = loc.lookup(USERS[user], now);
                            let found: Vec<_> = live.iter().filter(|b| contact_of(b) == contact).collect();
                            prop_assert_eq!(found.len(), 1);
                            prop_assert_eq!(found[0].expires_at, now + lifetime);
                        }
                        Err(_) => prop_assert_eq!(snapshot(&loc), before, "a refused change changes nothing"),
                    }
                }
                Op::Remove { user, contact } => {
                    let key = BindingKey::Uri(Pii::new(uri(contact, alt)));
                    loc.apply(USERS[user], vec![Change::Remove(key)], now).unwrap();
                    prop_assert!(loc.lookup(USERS[user], now).iter().all(|b| contact_of(b) != contact));
                }
                Op::RemoveAll { user } => {
                    loc.apply(USERS[user], vec![Change::RemoveAll], now).unwrap();
                    prop_assert!(loc.bindings(USERS[user]).is_empty());
                }
                Op::Advance { secs } => now += secs,
                Op::Expire => {
                    loc.expire(now);
                    for u in USERS {
                        prop_assert!(loc.bindings(u).iter().all(|b| b.is_live(now)));
                    }
                }
            }
            prop_assert!(loc.user_count() <= MAX_USERS);
            for u in USERS {
                let all = loc.bindings(u);
                prop_assert!(all.len() <= MAX_CONTACTS);
                let mut contacts: Vec<u8> = all.iter().map(contact_of).collect();
                contacts.sort_unstable();
                contacts.dedup();
                prop_assert_eq!(contacts.len(), all.len(), "one binding per equivalent contact");
                prop_assert!(loc.lookup(u, now).iter().all(|b| b.is_live(now)));
                if let Some(next) = loc.next_expiry() {
                    prop_assert!(all.iter().all(|b| b.expires_at >= next));
                }
            }
        }
    }
}
