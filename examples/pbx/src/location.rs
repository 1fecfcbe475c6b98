//! The location service: the live contacts of each user, bounded.
//!
//! The registrar writes it (see [`crate::registrar`]); call routing reads
//! it with [`LocationService::lookup`], which never returns a contact whose
//! lifetime has run out, even before [`LocationService::expire`] has
//! removed it. It holds at most `max_users` users and `max_contacts` contacts
//! per user; past either cap a change is refused whole with a typed
//! [`LocationError`] (the registrar answers `503`).
//!
//! Every URI, user id, Call-ID and address is held in [`Pii`], so `Debug`
//! of the service or of a binding names none of them.
//!
//! Times are seconds since the Unix epoch, passed in.

use std::collections::HashMap;
use std::net::SocketAddr;

use carevox::redact::Pii;

/// How a request reached the PBX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// SIP over TLS.
    Tls,
    /// SIP over TCP without TLS (only with `[dangerous] tcp_listen`).
    Tcp,
    /// SIP over UDP (only with `[dangerous] udp_listen`).
    Udp,
}

impl Transport {
    /// The lower-case name (`tls`, `tcp`, `udp`).
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tls => "tls",
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// What identifies a binding within one user's contacts: the instance ID
/// and `reg-id` when the phone sent `+sip.instance` (RFC 5626 section 6,
/// RFC 5627), else the contact URI (RFC 3261 section 10.3, compared by the
/// URI equivalence of section 19.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BindingKey {
    /// `+sip.instance` (without its angle brackets) and `reg-id`.
    Instance {
        /// The instance ID, e.g. `urn:uuid:...`.
        instance: Pii<String>,
        /// The `reg-id`, if given.
        reg_id: Option<u32>,
    },
    /// The contact URI.
    Uri(Pii<String>),
}

impl BindingKey {
    fn matches(&self, other: &BindingKey) -> bool {
        match (self, other) {
            (
                BindingKey::Instance {
                    instance: a,
                    reg_id: ra,
                },
                BindingKey::Instance {
                    instance: b,
                    reg_id: rb,
                },
            ) => a.expose().eq_ignore_ascii_case(b.expose()) && ra == rb,
            (BindingKey::Uri(a), BindingKey::Uri(b)) => {
                match (
                    carevox::sip::Uri::parse(a.expose()),
                    carevox::sip::Uri::parse(b.expose()),
                ) {
                    (Ok(a), Ok(b)) => a.equivalent(&b),
                    _ => a == b,
                }
            }
            _ => false,
        }
    }
}

/// One contact of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// What identifies it among the user's contacts.
    pub key: BindingKey,
    /// The contact URI, as the phone wrote it inside `<...>`.
    pub contact: Pii<String>,
    /// The `q` value in thousandths (1000 when not given).
    pub q: u16,
    /// The Call-ID of the REGISTER that last wrote it.
    pub call_id: Pii<String>,
    /// The CSeq number of that REGISTER.
    pub cseq: u32,
    /// When it expires (unix seconds).
    pub expires_at: u64,
    /// Where the REGISTER came from.
    pub source: Pii<SocketAddr>,
    /// How it came.
    pub transport: Transport,
    /// Temporary GRUUs issued for this binding under its current Call-ID,
    /// newest last (at most [`MAX_TEMP_GRUUS`]).
    pub temp_gruus: Vec<Pii<String>>,
}

/// Temporary GRUUs kept per binding: issuing one more drops the oldest.
pub const MAX_TEMP_GRUUS: usize = 8;

impl Binding {
    /// Seconds left at `now` (0 once expired).
    pub fn remaining(&self, now: u64) -> u64 {
        self.expires_at.saturating_sub(now)
    }

    /// Whether it is still live at `now`.
    pub fn is_live(&self, now: u64) -> bool {
        self.expires_at > now
    }

    /// The instance ID, if the phone sent one.
    pub fn instance(&self) -> Option<&str> {
        match &self.key {
            BindingKey::Instance { instance, .. } => Some(instance.expose()),
            BindingKey::Uri(_) => None,
        }
    }
}

/// Why a change to the location service was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocationError {
    /// The service already holds `max_users` users.
    #[error("the location service holds its maximum of {max} users")]
    TooManyUsers {
        /// The cap.
        max: usize,
    },
    /// The change would give the user more than `max_contacts` contacts.
    #[error("a user may register at most {max} contacts")]
    TooManyContacts {
        /// The cap.
        max: usize,
    },
}

/// One change of a user's contacts, applied all together by
/// [`LocationService::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Add the binding, or replace the one with the same key.
    Upsert(Binding),
    /// Remove the binding with this key.
    Remove(BindingKey),
    /// Remove every binding of the user.
    RemoveAll,
}

/// What [`LocationService::apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Bindings added.
    pub added: usize,
    /// Bindings replaced (refreshed or moved).
    pub updated: usize,
    /// Bindings removed.
    pub removed: usize,
    /// The user's bindings afterwards.
    pub contacts: usize,
}

/// Contacts removed from one user by [`LocationService::expire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredContacts {
    /// The user.
    pub user: Pii<String>,
    /// How many were removed.
    pub removed: usize,
    /// How many are left.
    pub contacts: usize,
}

/// The bounded table of users' bindings. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct LocationService {
    max_users: usize,
    max_contacts: usize,
    users: HashMap<Pii<String>, Vec<Binding>>,
}

impl LocationService {
    /// An empty service holding at most `max_users` users (at least 1) and
    /// `max_contacts` contacts per user (at least 1).
    pub fn new(max_users: usize, max_contacts: usize) -> LocationService {
        LocationService {
            max_users: max_users.max(1),
            max_contacts: max_contacts.max(1),
            users: HashMap::new(),
        }
    }

    /// Users with at least one binding (live or not yet expired by
    /// [`LocationService::expire`]).
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// The user's live bindings at `now`, highest `q` first, then the
    /// latest expiry, then the one added last.
    pub fn lookup(&self, user: &str, now: u64) -> Vec<&Binding> {
        // Newest written first, so that equal `q` and expiry (two
        // registrations within a second: a phone restarted) still put
        // the newer binding first.
        let mut live: Vec<&Binding> = self
            .users
            .get(&Pii::new(user.to_owned()))
            .map(|b| b.iter().rev().filter(|b| b.is_live(now)).collect())
            .unwrap_or_default();
        live.sort_by(|a, b| b.q.cmp(&a.q).then(b.expires_at.cmp(&a.expires_at)));
        live
    }

    /// Every binding of the user, live or not yet expired, in the order
    /// written.
    pub fn bindings(&self, user: &str) -> &[Binding] {
        self.users
            .get(&Pii::new(user.to_owned()))
            .map_or(&[], Vec::as_slice)
    }

    /// The user's binding with `key`, if any.
    pub fn find(&self, user: &str, key: &BindingKey) -> Option<&Binding> {
        self.bindings(user).iter().find(|b| b.key.matches(key))
    }

    /// The live binding a GRUU (RFC 5627) names: a public GRUU names the
    /// user and the instance, a temporary one is looked up among those
    /// issued. `user` is the user part of the GRUU, or `None` for a
    /// temporary GRUU, whose user part is opaque.
    pub fn resolve_gruu(
        &self,
        user: Option<&str>,
        gr: Option<&str>,
        uri: &str,
        now: u64,
    ) -> Option<(&str, &Binding)> {
        match (user, gr) {
            (Some(user), Some(instance)) => self
                .users
                .get_key_value(&Pii::new(user.to_owned()))
                .and_then(|(u, bindings)| {
                    bindings
                        .iter()
                        .find(|b| {
                            b.is_live(now)
                                && b.instance()
                                    .is_some_and(|i| i.eq_ignore_ascii_case(instance))
                        })
                        .map(|b| (u.expose().as_str(), b))
                }),
            _ => self.users.iter().find_map(|(u, bindings)| {
                bindings
                    .iter()
                    .find(|b| b.is_live(now) && b.temp_gruus.iter().any(|t| t.expose() == uri))
                    .map(|b| (u.expose().as_str(), b))
            }),
        }
    }

    /// Applies `changes` to the user's bindings, all or none: when the
    /// result would break a cap, nothing changes. Bindings expired at `now`
    /// are dropped first (and not counted as removed).
    ///
    /// # Errors
    /// [`LocationError::TooManyUsers`] when the user is new and the
    /// service is full, [`LocationError::TooManyContacts`] when the user
    /// would hold more than `max_contacts` bindings.
    pub fn apply(
        &mut self,
        user: &str,
        changes: Vec<Change>,
        now: u64,
    ) -> Result<Applied, LocationError> {
        let key = Pii::new(user.to_owned());
        let mut list: Vec<Binding> = self
            .users
            .get(&key)
            .map(|b| b.iter().filter(|b| b.is_live(now)).cloned().collect())
            .unwrap_or_default();
        let mut applied = Applied::default();
        for change in changes {
            match change {
                Change::Upsert(binding) => {
                    match list.iter_mut().find(|b| b.key.matches(&binding.key)) {
                        Some(slot) => {
                            *slot = binding;
                            applied.updated += 1;
                        }
                        None => {
                            list.push(binding);
                            applied.added += 1;
                        }
                    }
                }
                Change::Remove(k) => {
                    let before = list.len();
                    list.retain(|b| !b.key.matches(&k));
                    applied.removed += before - list.len();
                }
                Change::RemoveAll => {
                    applied.removed += list.len();
                    list.clear();
                }
            }
        }
        if list.len() > self.max_contacts {
            return Err(LocationError::TooManyContacts {
                max: self.max_contacts,
            });
        }
        applied.contacts = list.len();
        if list.is_empty() {
            self.users.remove(&key);
        } else {
            if !self.users.contains_key(&key) && self.users.len() >= self.max_users {
                return Err(LocationError::TooManyUsers {
                    max: self.max_users,
                });
            }
            self.users.insert(key, list);
        }
        Ok(applied)
    }

    /// Removes every binding expired at `now`; returns, per user, how many
    /// went and how many are left.
    pub fn expire(&mut self, now: u64) -> Vec<ExpiredContacts> {
        let mut out = Vec::new();
        self.users.retain(|user, bindings| {
            let before = bindings.len();
            bindings.retain(|b| b.is_live(now));
            if bindings.len() < before {
                out.push(ExpiredContacts {
                    user: user.clone(),
                    removed: before - bindings.len(),
                    contacts: bindings.len(),
                });
            }
            !bindings.is_empty()
        });
        out
    }

    /// Removes the user's bindings expired at `now`, like
    /// [`LocationService::expire`] for one user.
    pub fn expire_user(&mut self, user: &str, now: u64) -> Option<ExpiredContacts> {
        let key = Pii::new(user.to_owned());
        let bindings = self.users.get_mut(&key)?;
        let before = bindings.len();
        bindings.retain(|b| b.is_live(now));
        let left = bindings.len();
        if left == 0 {
            self.users.remove(&key);
        }
        (left < before).then(|| ExpiredContacts {
            user: key,
            removed: before - left,
            contacts: left,
        })
    }

    /// The earliest expiry of any binding: when to call
    /// [`LocationService::expire`] next.
    pub fn next_expiry(&self) -> Option<u64> {
        self.users.values().flatten().map(|b| b.expires_at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, key: BindingKey, expires_at: u64) -> Binding {
        Binding {
            key,
            contact: Pii::new(contact.to_owned()),
            q: 1000,
            call_id: Pii::new("c".to_owned()),
            cseq: 1,
            expires_at,
            source: Pii::new(SocketAddr::from(([192, 0, 2, 1], 5061))),
            transport: Transport::Tls,
            temp_gruus: vec![Pii::new("sip:tgruu.abc@pbx.example;gr".to_owned())],
        }
    }

    fn uri_key(u: &str) -> BindingKey {
        BindingKey::Uri(Pii::new(u.to_owned()))
    }

    fn instance_key(i: &str, reg_id: Option<u32>) -> BindingKey {
        BindingKey::Instance {
            instance: Pii::new(i.to_owned()),
            reg_id,
        }
    }

    #[test]
    fn keys_match_by_uri_equivalence_or_by_instance_and_reg_id() {
        assert!(uri_key("sip:a@HOST.example").matches(&uri_key("sip:a@host.example")));
        assert!(!uri_key("sip:a@host.example").matches(&uri_key("sip:a@host.example:5070")));
        assert!(!uri_key("sip:A@host.example").matches(&uri_key("sip:a@host.example")));
        let i = instance_key("urn:uuid:1", Some(1));
        assert!(i.matches(&instance_key("URN:UUID:1", Some(1))));
        assert!(!i.matches(&instance_key("urn:uuid:1", Some(2))));
        assert!(!i.matches(&instance_key("urn:uuid:1", None)));
        assert!(!i.matches(&uri_key("urn:uuid:1")));
    }

    #[test]
    fn lookup_orders_by_q_and_hides_the_expired() {
        let mut loc = LocationService::new(10, 10);
        let mut low = binding("sip:a@192.0.2.1", uri_key("sip:a@192.0.2.1"), 200);
        low.q = 100;
        let high = binding("sip:a@192.0.2.2", uri_key("sip:a@192.0.2.2"), 150);
        let gone = binding("sip:a@192.0.2.3", uri_key("sip:a@192.0.2.3"), 120);
        loc.apply(
            "a",
            vec![
                Change::Upsert(low),
                Change::Upsert(high),
                Change::Upsert(gone),
            ],
            100,
        )
        .unwrap();
        let order: Vec<&str> = loc
            .lookup("a", 130)
            .iter()
            .map(|b| b.contact.expose().as_str())
            .collect();
        assert_eq!(order, ["sip:a@192.0.2.2", "sip:a@192.0.2.1"]);
        assert_eq!(loc.bindings("a").len(), 3, "not yet removed");
        let e = loc.expire_user("a", 130).unwrap();
        assert_eq!((e.removed, e.contacts), (1, 2));
        assert_eq!(loc.expire_user("a", 130), None);
        assert_eq!(loc.next_expiry(), Some(150));
        // Equal q and expiry (a phone restarted within the second): the
        // binding added last comes first.
        let old = binding("sip:b@192.0.2.4", uri_key("sip:b@192.0.2.4"), 200);
        let new = binding("sip:b@192.0.2.5", uri_key("sip:b@192.0.2.5"), 200);
        loc.apply("b", vec![Change::Upsert(old)], 100).unwrap();
        loc.apply("b", vec![Change::Upsert(new)], 100).unwrap();
        assert_eq!(loc.lookup("b", 130)[0].contact.expose(), "sip:b@192.0.2.5");
    }

    #[test]
    fn gruus_resolve_only_while_live() {
        let mut loc = LocationService::new(10, 10);
        let b = binding("sip:a@192.0.2.1", instance_key("urn:uuid:7", None), 200);
        loc.apply("a", vec![Change::Upsert(b)], 100).unwrap();
        assert!(
            loc.resolve_gruu(Some("a"), Some("urn:uuid:7"), "", 150)
                .is_some()
        );
        assert!(
            loc.resolve_gruu(Some("b"), Some("urn:uuid:7"), "", 150)
                .is_none()
        );
        assert!(
            loc.resolve_gruu(None, None, "sip:tgruu.abc@pbx.example;gr", 150)
                .is_some()
        );
        assert!(
            loc.resolve_gruu(None, None, "sip:tgruu.abc@pbx.example;gr", 200)
                .is_none()
        );
        assert!(
            loc.resolve_gruu(Some("a"), Some("urn:uuid:7"), "", 200)
                .is_none()
        );
    }

    #[test]
    fn debug_names_no_user_uri_or_address() {
        let mut loc = LocationService::new(10, 10);
        let b = binding(
            "sip:alice@192.0.2.1",
            instance_key("urn:uuid:7", Some(3)),
            200,
        );
        loc.apply("alice", vec![Change::Upsert(b)], 100).unwrap();
        let debug = format!("{loc:?} {:?}", loc.lookup("alice", 100));
        assert_eq!(
            carevox::redact::debug_leak(&debug, &["alice", "192.0.2.1", "urn:uuid:7", "tgruu"]),
            None
        );
    }
}
