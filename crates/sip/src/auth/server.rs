//! The server side: stateless nonces, verification, replay tracking.

use carevox_redact::Pii;
use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;

use super::digest::{Challenge, Credentials, user_hash};
use super::{Algorithm, DigestError, Qop, Request, ResponseInput, UserSecret, compute_response};

/// Bytes of issue time at the start of a nonce.
const TIME_LEN: usize = 8;
/// Random bytes after the time.
const RANDOM_LEN: usize = 12;
/// The HMAC-SHA256 tag at the end.
const TAG_LEN: usize = 32;
const NONCE_LEN: usize = TIME_LEN + RANDOM_LEN + TAG_LEN;
/// A nonce's identity for replay tracking: its time and random bytes.
type NonceId = [u8; TIME_LEN + RANDOM_LEN];

/// Server settings, with secure defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The realm (protection space) challenges name.
    pub realm: String,
    /// Algorithms accepted in credentials, and offered by
    /// [`DigestServer::challenges`] in this order. Default: `SHA-256`, then
    /// `SHA-512-256` (RFC 8760 section 2.4 asks for the preferred one
    /// first). `MD5` is never a default: enable it explicitly with
    /// [`ServerConfig::with_md5`] or [`ServerConfig::legacy_md5_only`] for
    /// phones that know nothing else.
    pub algorithms: Vec<Algorithm>,
    /// How long a nonce stays valid, in seconds. Default 300.
    pub nonce_lifetime: u64,
    /// How far in the future an issue time may lie (clock steps between
    /// servers sharing the secret), in seconds. Default 30.
    pub max_clock_skew: u64,
    /// Whether to offer and accept `auth-int`. Default false.
    pub auth_int: bool,
    /// Whether to ask clients for hashed user names (`userhash=true`).
    /// Default false.
    pub userhash: bool,
}

impl ServerConfig {
    /// Defaults for `realm`.
    pub fn new(realm: &str) -> ServerConfig {
        ServerConfig {
            realm: realm.to_owned(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Sha512_256],
            nonce_lifetime: 300,
            max_clock_skew: 30,
            auth_int: false,
            userhash: false,
        }
    }

    /// These settings with `MD5` accepted and offered after the algorithms
    /// already listed, for existing phones that answer only `MD5`. MD5 is
    /// broken as a hash; use it only where a phone offers nothing better.
    #[must_use]
    pub fn with_md5(mut self) -> ServerConfig {
        if !self.algorithms.contains(&Algorithm::Md5) {
            self.algorithms.push(Algorithm::Md5);
        }
        self
    }

    /// Settings for `realm` that offer and accept `MD5` only. baresip 1.0
    /// needs this: it answers only `MD5` and abandons a registration whose
    /// `401` also carries a `SHA-256` challenge, even beside an `MD5` one.
    pub fn legacy_md5_only(realm: &str) -> ServerConfig {
        ServerConfig {
            algorithms: vec![Algorithm::Md5],
            ..ServerConfig::new(realm)
        }
    }
}

/// Issues challenges and verifies credentials. Holds no per-client state:
/// nonces carry their own issue time and an HMAC under the server secret.
/// `Send + Sync`; share one among tasks.
pub struct DigestServer {
    key: hmac::Key,
    config: ServerConfig,
}

// Written by hand: ring's `hmac::Key` is not `Zeroize` (ring keeps and wipes
// it itself), so it cannot sit in a `Secret`; the key is never printed.
impl std::fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestServer")
            .field("key", &"<redacted>")
            .field("config", &self.config)
            .finish()
    }
}

/// A successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The algorithm the client used.
    pub algorithm: Algorithm,
    /// The qop the client used.
    pub qop: Qop,
    /// The nonce count accepted.
    pub nc: u32,
    /// When the nonce was issued (unix seconds).
    pub nonce_issued_at: u64,
}

impl DigestServer {
    /// A server with `secret` (at least 32 bytes, e.g. from the caller's
    /// random source, shared by every server of the realm).
    pub fn new(secret: &[u8], config: ServerConfig) -> Result<DigestServer, DigestError> {
        if secret.len() < 32 {
            return Err(DigestError::WeakSecret);
        }
        if config.algorithms.is_empty() {
            return Err(DigestError::UnsupportedAlgorithm);
        }
        Ok(DigestServer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    fn tag(&self, id: &NonceId, binding: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(id);
        let realm = self.config.realm.as_bytes();
        ctx.update(&u64::try_from(realm.len()).unwrap_or(u64::MAX).to_be_bytes());
        ctx.update(realm);
        ctx.update(binding);
        ctx.sign()
    }

    /// A fresh nonce issued at `now` (unix seconds), bound to `binding`.
    fn nonce(
        &self,
        now: u64,
        binding: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<String, DigestError> {
        let mut id: NonceId = [0u8; TIME_LEN + RANDOM_LEN];
        let (time, random) = id.split_at_mut(TIME_LEN);
        time.copy_from_slice(&now.to_be_bytes());
        rng.fill(random).map_err(|_| DigestError::Random)?;
        let tag = self.tag(&id, binding);
        let mut raw = Vec::with_capacity(NONCE_LEN);
        raw.extend_from_slice(&id);
        raw.extend_from_slice(tag.as_ref());
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// A challenge for `algorithm` with a fresh nonce. `binding` is bound
    /// into the nonce (the client's transport address, say, or empty) and
    /// must be given again to [`DigestServer::verify`]. Set `stale` when
    /// answering a [`DigestError::StaleNonce`].
    pub fn challenge(
        &self,
        now: u64,
        binding: &[u8],
        algorithm: Algorithm,
        stale: bool,
        rng: &dyn SecureRandom,
    ) -> Result<Challenge, DigestError> {
        if !self.config.algorithms.contains(&algorithm) {
            return Err(DigestError::UnsupportedAlgorithm);
        }
        let mut qop = vec![Qop::Auth];
        if self.config.auth_int {
            qop.push(Qop::AuthInt);
        }
        Ok(Challenge {
            realm: self.config.realm.clone(),
            domain: None,
            nonce: Pii::new(self.nonce(now, binding, rng)?),
            opaque: Pii::new(None),
            stale,
            algorithm: Some(algorithm),
            qop,
            charset_utf8: true,
            userhash: self.config.userhash,
        })
    }

    /// One challenge per configured algorithm, in preference order, sharing
    /// one nonce: send each as its own header.
    pub fn challenges(
        &self,
        now: u64,
        binding: &[u8],
        stale: bool,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<Challenge>, DigestError> {
        let first = self.config.algorithms.first().copied();
        let first = first.ok_or(DigestError::UnsupportedAlgorithm)?;
        let base = self.challenge(now, binding, first, stale, rng)?;
        Ok(self
            .config
            .algorithms
            .iter()
            .map(|&a| Challenge {
                algorithm: Some(a),
                ..base.clone()
            })
            .collect())
    }

    /// Checks a nonce's tag and returns its identity and issue time.
    fn open_nonce(&self, nonce: &str, binding: &[u8]) -> Result<(NonceId, u64), DigestError> {
        if nonce.len() > 2 * NONCE_LEN {
            return Err(DigestError::InvalidNonce);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| DigestError::InvalidNonce)?;
        let (id, tag) = raw
            .split_at_checked(TIME_LEN + RANDOM_LEN)
            .ok_or(DigestError::InvalidNonce)?;
        let id: NonceId = id.try_into().map_err(|_| DigestError::InvalidNonce)?;
        let expected = self.tag(&id, binding);
        if tag.len() != TAG_LEN || !bool::from(expected.as_ref().ct_eq(tag)) {
            return Err(DigestError::InvalidNonce);
        }
        let mut time = [0u8; TIME_LEN];
        time.copy_from_slice(id.get(..TIME_LEN).ok_or(DigestError::InvalidNonce)?);
        Ok((id, u64::from_be_bytes(time)))
    }

    /// Verifies credentials for `request`.
    ///
    /// `username` is the user the caller looked up (from
    /// `creds.username`, or, with `userhash`, by matching
    /// [`user_hash`](super::user_hash)) and `secret` its password or HA1.
    /// `binding` is what was given to [`DigestServer::challenge`]; `now` is
    /// unix seconds. On success the nonce count is recorded in `tracker`.
    ///
    /// [`DigestError::StaleNonce`] means the credentials were right but the
    /// nonce expired (or its count can no longer be checked): answer with a
    /// new challenge with `stale=true`. Any other error is a failure.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &self,
        creds: &Credentials,
        request: &Request<'_>,
        username: &str,
        secret: &UserSecret,
        binding: &[u8],
        now: u64,
        tracker: &mut NonceTracker,
    ) -> Result<Verified, DigestError> {
        if *creds.realm.expose() != self.config.realm {
            return Err(DigestError::RealmMismatch);
        }
        let algorithm = creds.effective_algorithm();
        if !self.config.algorithms.contains(&algorithm) {
            return Err(DigestError::UnsupportedAlgorithm);
        }
        let qop = creds.qop.ok_or(DigestError::UnsupportedQop)?;
        if qop == Qop::AuthInt && !self.config.auth_int {
            return Err(DigestError::UnsupportedQop);
        }
        let nc = creds.nc.ok_or(DigestError::MissingParam("nc"))?;
        let cnonce = creds
            .cnonce
            .expose()
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(DigestError::MissingParam("cnonce"))?;
        if creds.uri.expose() != request.uri() {
            return Err(DigestError::UriMismatch);
        }
        let user_ok = if creds.userhash {
            *creds.username.expose() == user_hash(algorithm, username, &self.config.realm)
        } else {
            creds.username.expose() == username
        };
        if !user_ok {
            return Err(DigestError::UserMismatch);
        }
        let (id, issued) = self.open_nonce(creds.nonce.expose(), binding)?;
        if issued > now.saturating_add(self.config.max_clock_skew) {
            return Err(DigestError::InvalidNonce);
        }
        let nc_text = format!("{nc:08x}");
        let expected = compute_response(
            &ResponseInput {
                algorithm,
                username,
                realm: &self.config.realm,
                nonce: creds.nonce.expose(),
                cnonce,
                nc: &nc_text,
                qop,
                request,
            },
            secret,
        )
        .ok_or(DigestError::UnsupportedAlgorithm)?;
        let given = creds.response.expose().as_bytes();
        if given.len() != expected.as_bytes().len() || !bool::from(expected.as_bytes().ct_eq(given))
        {
            return Err(DigestError::ResponseMismatch);
        }
        if now > issued.saturating_add(self.config.nonce_lifetime) {
            return Err(DigestError::StaleNonce);
        }
        tracker.check(&id, issued, nc, now, self.config.nonce_lifetime)?;
        Ok(Verified {
            algorithm,
            qop,
            nc,
            nonce_issued_at: issued,
        })
    }
}

/// The highest nonce count accepted per nonce, held by the caller and
/// bounded in memory.
///
/// It keeps at most `capacity` nonces, about 100 bytes each (a 20-byte
/// nonce identity, the count and issue time, and hash-map and queue
/// overhead): 10 000 nonces take about 1 MB. Nonces past their lifetime are
/// dropped first. When it is full the oldest entry is evicted and the
/// tracker remembers its issue time; a nonce issued no later than that and
/// not tracked is then reported as stale, so an evicted nonce can never be
/// replayed: its client is simply challenged again.
#[derive(Debug, Clone)]
pub struct NonceTracker {
    capacity: usize,
    entries: HashMap<NonceId, u32>,
    order: VecDeque<(NonceId, u64)>,
    /// Issue time of the newest evicted entry.
    floor: Option<u64>,
}

impl NonceTracker {
    /// A tracker holding at most `capacity` nonces (at least 1).
    pub fn new(capacity: usize) -> NonceTracker {
        NonceTracker {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
            floor: None,
        }
    }

    /// Number of nonces tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no nonce is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn check(
        &mut self,
        id: &NonceId,
        issued: u64,
        nc: u32,
        now: u64,
        lifetime: u64,
    ) -> Result<(), DigestError> {
        while let Some(&(old, t)) = self.order.front() {
            if t.saturating_add(lifetime) >= now {
                break;
            }
            self.order.pop_front();
            self.entries.remove(&old);
        }
        if let Some(highest) = self.entries.get_mut(id) {
            if nc <= *highest {
                return Err(DigestError::Replay);
            }
            *highest = nc;
            return Ok(());
        }
        if self.floor.is_some_and(|f| issued <= f) {
            return Err(DigestError::StaleNonce);
        }
        while self.entries.len() >= self.capacity {
            let Some((old, t)) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&old);
            self.floor = Some(self.floor.map_or(t, |f| f.max(t)));
        }
        self.entries.insert(*id, nc);
        self.order.push_back((*id, issued));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NonceId {
        [n; TIME_LEN + RANDOM_LEN]
    }

    #[test]
    fn tracker_rejects_non_increasing_counts() {
        let mut t = NonceTracker::new(4);
        t.check(&id(1), 100, 1, 100, 300).unwrap();
        t.check(&id(1), 100, 3, 101, 300).unwrap();
        assert_eq!(t.check(&id(1), 100, 3, 102, 300), Err(DigestError::Replay));
        assert_eq!(t.check(&id(1), 100, 2, 102, 300), Err(DigestError::Replay));
        t.check(&id(1), 100, 4, 102, 300).unwrap();
    }

    #[test]
    fn tracker_is_bounded_and_evicted_nonces_go_stale() {
        let mut t = NonceTracker::new(2);
        t.check(&id(1), 100, 1, 110, 300).unwrap();
        t.check(&id(2), 101, 1, 110, 300).unwrap();
        t.check(&id(3), 102, 1, 110, 300).unwrap();
        assert_eq!(t.len(), 2);
        // id(1) was evicted: it may not come back, even with a higher count.
        assert_eq!(
            t.check(&id(1), 100, 2, 111, 300),
            Err(DigestError::StaleNonce)
        );
        // A newer nonce is still welcome.
        t.check(&id(4), 103, 1, 111, 300).unwrap();
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn tracker_drops_expired_entries_first() {
        let mut t = NonceTracker::new(2);
        t.check(&id(1), 100, 1, 100, 10).unwrap();
        t.check(&id(2), 200, 1, 200, 10).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.floor, None);
    }
}
