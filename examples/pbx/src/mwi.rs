//! Message waiting indication (RFC 3842 over RFC 6665): a phone subscribes
//! to its own mailbox's `message-summary` and the PBX tells it, at once and
//! whenever the count changes, how many voicemail messages wait.
//!
//! The PBX knows which mailbox a message belongs to from its encrypted
//! `callee` label; at start it opens each message's header once to build a
//! [`MailboxIndex`] (object id to mailbox, in memory only), adds each new
//! message as it is stored, and counts only the objects still in the vault,
//! so a message deleted through the admin console or purged shows at the
//! next check ([`CHECK_EVERY`]).
//!
//! The PBX does not track which messages were heard: every message counts
//! as new.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use carevox::redact::Pii;
use carevox::vault::Vault;
use tokio::time::Instant;

/// The event package served.
pub const EVENT: &str = "message-summary";
/// The body's media type (RFC 3842 section 5).
pub const CONTENT_TYPE: &str = "application/simple-message-summary";
/// A subscription's length when the SUBSCRIBE asks none, and the longest
/// granted.
pub const DEFAULT_EXPIRES: u32 = 3600;
/// The shortest subscription accepted; a shorter one gets `423` with this
/// `Min-Expires` (RFC 6665 section 4.2.1.1).
pub const MIN_EXPIRES: u32 = 60;
/// How often subscriptions are checked: expiries, and counts changed by a
/// deletion or a purge.
pub const CHECK_EVERY: Duration = Duration::from_secs(30);

/// The body of a NOTIFY for `account` (a SIP URI) with `waiting` messages.
pub fn summary(account: &str, waiting: u32) -> String {
    let flag = if waiting > 0 { "yes" } else { "no" };
    format!(
        "Messages-Waiting: {flag}\r\nMessage-Account: {account}\r\n\
         Voice-Message: {waiting}/0 (0/0)\r\n"
    )
}

/// An `Expires` header that is not a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Expires is not a number of seconds")]
pub struct BadExpires;

/// The expiry a SUBSCRIBE asks for: its `Expires` header, or the default.
pub fn requested_expires(value: Option<&str>) -> Result<u32, BadExpires> {
    match value {
        None => Ok(DEFAULT_EXPIRES),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .map_err(|_| BadExpires),
    }
}

/// One phone's subscription to its mailbox.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The mailbox (the subscriber's own SIP user name).
    pub mailbox: Pii<String>,
    /// The account URI the phone subscribed to (the NOTIFY's
    /// `Message-Account`).
    pub account: Pii<String>,
    /// When it ends unless refreshed.
    pub expires_at: Instant,
    /// The count last sent, if any.
    pub last_sent: Option<u32>,
}

/// Which stored object (a voicemail, a held text message) belongs to
/// which mailbox. In memory only: the mailbox is an encrypted label in the
/// vault.
#[derive(Debug, Default, Clone)]
pub struct MailboxIndex {
    by_id: HashMap<String, Pii<String>>,
}

impl MailboxIndex {
    /// Reads the header of each object in `vault` whose id starts with
    /// `prefix` and takes its mailbox from the label `label`; one that
    /// cannot be read is left out (and the vault's hook records the
    /// failure).
    pub fn scan(
        vault: &Vault,
        prefix: &str,
        label: &str,
    ) -> Result<MailboxIndex, carevox::vault::Error> {
        let mut index = MailboxIndex::default();
        for o in vault.list()? {
            if !o.id.starts_with(prefix) {
                continue;
            }
            if let Ok(meta) = vault.metadata(&o.id)
                && let Some(mailbox) = meta.get_label(label)
            {
                index.by_id.insert(o.id, Pii::new(mailbox.to_owned()));
            }
        }
        Ok(index)
    }

    /// The objects of `mailbox`, in id order.
    pub fn of(&self, mailbox: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, m)| m.expose() == mailbox)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Forgets an object (delivered, deleted).
    pub fn remove(&mut self, id: &str) {
        self.by_id.remove(id);
    }

    /// A message stored for `mailbox`.
    pub fn insert(&mut self, id: String, mailbox: String) {
        self.by_id.insert(id, Pii::new(mailbox));
    }

    /// The messages of each mailbox among the objects `live` (the vault's
    /// current ids); forgets those no longer there.
    pub fn counts(&mut self, live: &HashSet<String>) -> HashMap<String, u32> {
        self.by_id.retain(|id, _| live.contains(id));
        let mut counts = HashMap::new();
        for mailbox in self.by_id.values() {
            *counts.entry(mailbox.expose().clone()).or_insert(0u32) += 1;
        }
        counts
    }
}

/// The id prefix of the PBX's voicemail objects.
pub const VOICEMAIL_PREFIX: &str = "vm-";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_follows_rfc_3842() {
        assert_eq!(
            summary("sips:bob@clinic.test", 2),
            "Messages-Waiting: yes\r\nMessage-Account: sips:bob@clinic.test\r\n\
             Voice-Message: 2/0 (0/0)\r\n"
        );
        assert!(summary("sips:bob@clinic.test", 0).starts_with("Messages-Waiting: no\r\n"));
    }

    #[test]
    fn expires_is_read_or_defaulted() {
        assert_eq!(requested_expires(None), Ok(DEFAULT_EXPIRES));
        assert_eq!(requested_expires(Some(" 600 ")), Ok(600));
        assert_eq!(requested_expires(Some("0")), Ok(0));
        assert_eq!(requested_expires(Some("99999999999")), Ok(u32::MAX));
        assert_eq!(requested_expires(Some("soon")), Err(BadExpires));
    }

    #[test]
    fn counts_forget_what_left_the_vault() {
        let mut index = MailboxIndex::default();
        index.insert("vm-1".into(), "bob".into());
        index.insert("vm-2".into(), "bob".into());
        index.insert("vm-3".into(), "carol".into());
        let live: HashSet<String> = ["vm-1", "vm-3"].iter().map(|s| (*s).to_owned()).collect();
        let counts = index.counts(&live);
        assert_eq!(counts.get("bob"), Some(&1));
        assert_eq!(counts.get("carol"), Some(&1));
        assert_eq!(index.of("bob"), vec!["vm-1".to_owned()]);
        index.remove("vm-1");
        assert!(index.of("bob").is_empty());
        assert!(index.counts(&HashSet::new()).is_empty());
    }
}
