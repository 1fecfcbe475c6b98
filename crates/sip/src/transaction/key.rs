//! Transaction matching keys (RFC 3261 sections 17.1.3 and 17.2.3, and the
//! RFC 2543 fallback of 17.2.3), and the merged-request key of 8.2.2.2.

use std::hash::{BuildHasher, RandomState};

use carevox_redact::Pii;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use super::TransactionId;
use crate::error::ParseError;
use crate::header::{CSeq, Method};
use crate::message::Message;
use crate::uri::Host;

/// The magic cookie that opens every RFC 3261 branch (section 8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

// Every key below is written as bytes into a buffer the caller reuses, one
// field after the other, each variable-length field preceded by its length:
// two keys are equal exactly when all their fields are. A lookup then hashes
// one contiguous slice once and allocates nothing; only a new transaction
// copies its key into the table.

/// Appends `field` preceded by its length. Fields come from a message, at
/// most `u32::MAX` bytes long ([`crate::Limits::max_message_size`]).
fn put(buf: &mut Vec<u8>, field: &[u8]) {
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(field);
}

/// The method a request or response belongs to for matching: ACK matches the
/// INVITE transaction it acknowledges.
fn put_match_method(buf: &mut Vec<u8>, method: Method<'_>) {
    let m = match method {
        Method::Ack => "INVITE",
        other => other.as_str(),
    };
    put(buf, m.as_bytes());
}

/// Appends the sent-by of a Via as matching compares it: the host as
/// `Host`'s `Display` writes it, in lower case, then the port when one is
/// written.
fn put_sent_by(buf: &mut Vec<u8>, host: Host<'_>, port: Option<u16>) {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    match host {
        Host::Name(n) => buf.extend(n.expose().bytes().map(|b| b.to_ascii_lowercase())),
        Host::Ipv4(a) => {
            for (i, octet) in a.expose().octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                put_decimal(buf, octet);
            }
        }
        Host::Ipv6(a) => {
            use std::io::Write as _;
            // Writing into a Vec cannot fail. The text is canonical (lower
            // case hex, zeros compressed), as `Host`'s `Display` writes it.
            let _ = write!(buf, "[{}]", a.expose());
        }
    }
    let len = u32::try_from(buf.len() - at - 4).unwrap_or(u32::MAX);
    if let Some(slot) = buf.get_mut(at..at + 4) {
        slot.copy_from_slice(&len.to_le_bytes());
    }
    match port {
        Some(p) => {
            buf.push(1);
            buf.extend_from_slice(&p.to_le_bytes());
        }
        None => buf.push(0),
    }
}

fn put_decimal(buf: &mut Vec<u8>, n: u8) {
    if n >= 100 {
        buf.push(b'0' + n / 100);
    }
    if n >= 10 {
        buf.push(b'0' + (n / 10) % 10);
    }
    buf.push(b'0' + n % 10);
}

/// The kind of a server key: the first byte of its encoding.
const BRANCH: u8 = 0;
const LEGACY: u8 = 1;

/// Writes into `buf` what identifies the server transaction of a received
/// request: the branch, sent-by and method of RFC 3261 (17.2.3), or, for a
/// branch without the magic cookie, the RFC 2543 fallback (Request-URI,
/// From tag, Call-ID, CSeq, method and top Via; the To tag is compared
/// apart, as the ACK carries the tag of the response). `as_method` replaces
/// the request's own method (a CANCEL looks up the INVITE it cancels, 9.2).
/// `from_tag` is the tag of the request's From. Returns true for the
/// fallback.
pub(crate) fn server_key(
    buf: &mut Vec<u8>,
    msg: &Message,
    from_tag: Option<&str>,
    as_method: Option<Method<'_>>,
) -> Result<bool, ParseError> {
    buf.clear();
    let raw_via = msg
        .list(crate::name::HeaderName::Via)
        .next()
        .ok_or(ParseError::MissingHeader { header: "Via" })?;
    let via = crate::header::Via::parse(raw_via)?;
    let own = msg.method().ok_or(ParseError::StartLine {
        what: "not a request",
    })?;
    let method = as_method.unwrap_or(own);
    match via.branch() {
        Some(b) if b.starts_with(MAGIC_COOKIE) => {
            buf.push(BRANCH);
            put(buf, b.as_bytes());
            put_sent_by(buf, via.host(), via.port());
            put_match_method(buf, method);
            Ok(false)
        }
        _ => {
            let uri = msg.request_uri_str().ok_or(ParseError::StartLine {
                what: "not a request",
            })?;
            buf.push(LEGACY);
            put(buf, uri.as_bytes());
            match from_tag {
                Some(t) => {
                    buf.push(1);
                    put(buf, t.as_bytes());
                }
                None => buf.push(0),
            }
            put(buf, msg.call_id()?.as_bytes());
            buf.extend_from_slice(&msg.cseq()?.seq.to_le_bytes());
            put_match_method(buf, method);
            put(buf, raw_via.as_bytes());
            Ok(true)
        }
    }
}

/// Writes into `buf` what identifies a client transaction: the branch of the
/// top Via and the CSeq method (17.1.3), for a request sent or a response
/// received. False (and nothing written) when the top Via has no branch.
pub(crate) fn client_key(buf: &mut Vec<u8>, msg: &Message) -> Result<bool, ParseError> {
    buf.clear();
    let via = msg.top_via()?;
    let Some(branch) = via.branch() else {
        return Ok(false);
    };
    put(buf, branch.as_bytes());
    put(buf, msg.cseq()?.method.as_str().as_bytes());
    Ok(true)
}

/// Writes into `buf` the key that reveals a merged request (8.2.2.2): From
/// tag, Call-ID and CSeq of a request without a To tag. False (and nothing
/// written) for a request with a To tag or without a From tag.
pub(crate) fn merge_key(
    buf: &mut Vec<u8>,
    to_tag: Option<&str>,
    from_tag: Option<&str>,
    call_id: &str,
    cseq: CSeq<'_>,
) -> bool {
    buf.clear();
    let (None, Some(from_tag)) = (to_tag, from_tag) else {
        return false;
    };
    put(buf, from_tag.as_bytes());
    put(buf, call_id.as_bytes());
    buf.extend_from_slice(&cseq.seq.to_le_bytes());
    put(buf, cseq.method.as_str().as_bytes());
    true
}

/// A key as a table holds it: its hash, kept so that neither growing the
/// table nor removing a transaction's entry hashes anything again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hashed(u64);

#[derive(Debug)]
struct Slot {
    hash: u64,
    /// Branches, Call-IDs, tags, hosts and URIs: `Debug` redacts them.
    key: Pii<Box<[u8]>>,
    id: TransactionId,
}

/// Transactions by matching key.
///
/// Keys are chosen by whoever sends us requests, so the table must resist
/// hash flooding: it hashes with the standard library's SipHash-1-3 under a
/// random key of its own ([`RandomState`], the same function and keying as a
/// `std::collections::HashMap`), applied once to a key's whole encoding.
/// SipHash is a keyed pseudo-random function: without the table's key,
/// which never leaves the process, a sender cannot tell which keys collide,
/// so it cannot pile its requests into one bucket. (The encoding is
/// injective, so distinct keys are distinct inputs to the hash.)
#[derive(Debug)]
pub(crate) struct KeyTable {
    state: RandomState,
    table: HashTable<Slot>,
}

impl KeyTable {
    pub(crate) fn new() -> Self {
        Self {
            state: RandomState::new(),
            table: HashTable::new(),
        }
    }

    /// The hash of a key written by one of the functions above.
    pub(crate) fn hash(&self, key: &[u8]) -> Hashed {
        Hashed(self.state.hash_one(key))
    }

    /// The transaction of `key`.
    pub(crate) fn get(&self, hash: Hashed, key: &[u8]) -> Option<TransactionId> {
        self.table
            .find(hash.0, |s| **s.key.expose() == *key)
            .map(|s| s.id)
    }

    /// Maps `key` to `id`, replacing what it mapped to.
    pub(crate) fn insert(&mut self, hash: Hashed, key: &[u8], id: TransactionId) {
        match self
            .table
            .entry(hash.0, |s| **s.key.expose() == *key, |s| s.hash)
        {
            Entry::Occupied(mut o) => o.get_mut().id = id,
            Entry::Vacant(v) => {
                v.insert(Slot {
                    hash: hash.0,
                    key: Pii::new(key.into()),
                    id,
                });
            }
        }
    }

    /// Removes the key of hash `hash` if it still maps to `id` (a later
    /// transaction may have taken the key over).
    pub(crate) fn remove(&mut self, hash: Hashed, id: TransactionId) {
        if let Ok(slot) = self.table.find_entry(hash.0, |s| s.id == id) {
            slot.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes())).unwrap()
    }

    const INVITE: &str = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP A.example:5060;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";

    fn skey(m: &Message, as_method: Option<Method<'_>>) -> (bool, Vec<u8>) {
        let mut buf = Vec::new();
        let from_tag = m.from().unwrap().tag();
        let legacy = server_key(&mut buf, m, from_tag, as_method).unwrap();
        assert_eq!(legacy, buf.first() == Some(&LEGACY));
        (legacy, buf)
    }

    #[test]
    fn ack_and_cancel_keys() {
        let inv = skey(&msg(INVITE), None);
        let ack = msg(&INVITE
            .replace("INVITE sip", "ACK sip")
            .replace("1 INVITE", "1 ACK"));
        assert_eq!(skey(&ack, None), inv);
        let cancel = msg(&INVITE
            .replace("INVITE sip", "CANCEL sip")
            .replace("1 INVITE", "1 CANCEL"));
        assert_ne!(skey(&cancel, None), inv);
        assert_eq!(skey(&cancel, Some(Method::Invite)), inv);
        // Host case does not matter; the port does.
        let other = msg(&INVITE.replace("A.example:5060", "a.example:5060"));
        assert_eq!(skey(&other, None), inv);
        let other = msg(&INVITE.replace("A.example:5060", "a.example"));
        assert_ne!(skey(&other, None), inv);
    }

    #[test]
    fn legacy_key_without_cookie() {
        let old = msg(&INVITE.replace("branch=z9hG4bKx", "branch=1"));
        assert!(skey(&old, None).0);
        let none = msg(&INVITE.replace(";branch=z9hG4bKx", ""));
        assert!(skey(&none, None).0);
    }
}
