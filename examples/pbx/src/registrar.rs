//! The registrar (RFC 3261 section 10.3), sans-IO: a parsed REGISTER in,
//! the response and the audit records out.
//!
//! [`Registrar::handle`] takes the request, where it came from, the time
//! and a random source (for nonces, To tags and temporary GRUUs), and a
//! [`UserDirectory`] that knows each user's digest secret and whether the
//! user is a legacy phone allowed `MD5`. It answers:
//!
//! - `401` with one `WWW-Authenticate` per algorithm (`SHA-256`, then
//!   `SHA-512-256`; `MD5` added last, or alone, only for a legacy user
//!   ([`Md5Use`]) and only when `[dangerous] allow_md5_for_legacy_users`
//!   is on), from carevox-sip's
//!   stateless [`DigestServer`]; `stale=true` when the credentials were
//!   right but the nonce expired; a fresh challenge after wrong credentials.
//! - `403` while the user is locked out (credentials are not looked at),
//!   for a request over UDP or TCP that `[dangerous]` does not enable, and
//!   for a user registering another user's address, or a contact that
//!   is itself a GRUU (RFC 5627 section 5.1).
//! - `423 Interval Too Brief` with `Min-Expires` for a lifetime under the
//!   minimum; longer than the maximum is shortened to it.
//! - `400` for a bad Contact or Expires, `*` with anything but `Expires: 0`
//!   or beside another contact, and missing or bad mandatory headers; `404`
//!   for a domain this registrar does not serve; `416` for a non-SIP
//!   Request-URI; `420` for a `Require` naming an extension it lacks.
//! - `500` when the Call-ID/CSeq rule of step 7 refuses an update (a
//!   request older than the binding's last one), with no change made.
//! - `503` when the location service's caps leave no room.
//! - `200` with every live contact of the user and its remaining
//!   `expires`; with `+sip.instance` and `Supported: gruu`, also its
//!   `pub-gruu` and a new `temp-gruu` (RFC 5627).
//!
//! Failed digest attempts count towards the user's lockout (carevox-authz
//! [`LockoutTable`], keyed by the user name submitted, so unknown names
//! lock out like real ones); a success forgets them. Each registration,
//! refresh, removal, expiry, refusal and lockout yields an audit record
//! built by the facade's [`registration_record`].
//!
//! No log line or error of this module carries a URI, a number, a name or
//! a secret.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use carevox::audit::Record;
use carevox::authz::lockout::LockoutTable;
use carevox::redact::Pii;
use carevox::registration::{
    RefusalReason, RegistrationEvent, RegistrationSubject, registration_record,
};
use carevox::sip::auth::{
    Algorithm, Credentials, DigestError, DigestServer, NonceTracker, Request, ServerConfig,
    UserSecret,
};
use carevox::sip::{Contact, Message, MessageBuilder, Method, Uri};
use ring::rand::SecureRandom;

use crate::config::Config;
use crate::location::{
    Applied, Binding, BindingKey, Change, LocationError, LocationService, MAX_TEMP_GRUUS, Transport,
};
use crate::pin::VoicemailPin;

/// Whether a user may answer `MD5` digest challenges. Honoured only when
/// `[dangerous] allow_md5_for_legacy_users` is on; off, every user is
/// [`Md5Use::Refused`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Md5Use {
    /// `MD5` is neither offered nor accepted (the default).
    #[default]
    Refused,
    /// A legacy phone: `MD5` is offered after `SHA-256` and `SHA-512-256`
    /// and accepted.
    Offered,
    /// A legacy phone that abandons a `401` carrying `SHA-256` beside
    /// `MD5` (baresip 1.0 does): only `MD5` is offered; the others are
    /// still accepted.
    Only,
}

/// What the directory knows of one user.
#[derive(Debug, Clone)]
pub struct DirectoryUser {
    /// The user's secrets: a password (serves every algorithm) or stored
    /// HA1 values, one per hash function.
    pub secrets: Vec<UserSecret>,
    /// Whether the user is a legacy phone that may answer `MD5`.
    pub md5: Md5Use,
    /// The hash of the user's voicemail PIN, if one is set (check a typed
    /// PIN with [`crate::pin::verify_or_dummy`]).
    pub voicemail_pin: Option<VoicemailPin>,
}

impl DirectoryUser {
    fn secret_for(&self, algorithm: Algorithm) -> Option<&UserSecret> {
        self.secrets.iter().find(|s| match s {
            UserSecret::Password(_) => true,
            UserSecret::Ha1 { algorithm: a, .. } => *a == algorithm.base(),
        })
    }
}

/// Where users live (the PBX's data directory; a map in tests).
pub trait UserDirectory {
    /// The user called `username` (the digest user name, which is also the
    /// user part of the address of record), if there is one.
    fn user(&self, username: &str) -> Option<DirectoryUser>;
}

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The peer's address.
    pub address: Pii<SocketAddr>,
    /// The transport it came over.
    pub transport: Transport,
}

impl Source {
    /// A source at `address` over `transport`.
    pub fn new(address: SocketAddr, transport: Transport) -> Source {
        Source {
            address: Pii::new(address),
            transport,
        }
    }
}

/// The registrar's settings (from [`Config`] with
/// [`RegistrarSettings::from_config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrarSettings {
    /// The digest realm.
    pub realm: String,
    /// The domains served (compared case-insensitively).
    pub domains: Vec<String>,
    /// Digest algorithms offered, preferred first (no MD5).
    pub algorithms: Vec<Algorithm>,
    /// Nonce lifetime, seconds.
    pub nonce_lifetime_secs: u64,
    /// Clock skew tolerated on nonces, seconds.
    pub max_clock_skew_secs: u64,
    /// Nonces tracked against replay.
    pub max_tracked_nonces: usize,
    /// Whether legacy users may use MD5 at all.
    pub allow_md5_for_legacy_users: bool,
    /// Lockout rule.
    pub lockout: carevox::authz::lockout::LockoutPolicy,
    /// Shortest lifetime accepted, seconds.
    pub min_expires_secs: u32,
    /// Longest lifetime granted, seconds.
    pub max_expires_secs: u32,
    /// Lifetime of a contact that asks for none, seconds.
    pub default_expires_secs: u32,
    /// Cap on users holding registrations.
    pub max_users: usize,
    /// Cap on contacts per user.
    pub max_contacts_per_user: usize,
    /// Whether GRUUs are assigned.
    pub gruu: bool,
    /// The transports REGISTERs are taken from: TLS, and UDP or TCP only
    /// when `[dangerous]` listens on them. Others get `403`.
    pub transports: Vec<Transport>,
    /// The source id written into audit records.
    pub audit_source: String,
}

impl RegistrarSettings {
    /// The settings of a validated configuration; audit records name
    /// `audit_source` as their source.
    pub fn from_config(config: &Config, audit_source: &str) -> RegistrarSettings {
        RegistrarSettings {
            realm: config.server.realm.clone(),
            domains: config.server.domains.clone(),
            algorithms: config.digest_algorithms(),
            nonce_lifetime_secs: config.digest.nonce_lifetime_secs,
            max_clock_skew_secs: config.digest.max_clock_skew_secs,
            max_tracked_nonces: config.digest.max_tracked_nonces,
            allow_md5_for_legacy_users: config.dangerous.allow_md5_for_legacy_users,
            lockout: config.lockout.policy(),
            min_expires_secs: config.registrar.min_expires_secs,
            max_expires_secs: config.registrar.max_expires_secs,
            default_expires_secs: config.registrar.default_expires_secs,
            max_users: config.registrar.max_users,
            max_contacts_per_user: config.registrar.max_contacts_per_user,
            gruu: config.registrar.gruu,
            transports: {
                let mut t = vec![Transport::Tls];
                if !config.dangerous.tcp_listen.is_empty() {
                    t.push(Transport::Tcp);
                }
                if !config.dangerous.udp_listen.is_empty() {
                    t.push(Transport::Udp);
                }
                t
            },
            audit_source: audit_source.to_owned(),
        }
    }
}

/// Failures of the registrar itself (not of a request: those are
/// responses).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrarError {
    /// The digest server refused the settings (an empty algorithm list, or
    /// a secret under 32 bytes).
    #[error("digest settings: {0}")]
    Digest(DigestError),
    /// The random source failed.
    #[error("the random source failed")]
    Random,
    /// The time given lies before the Unix epoch.
    #[error("the time given lies before the Unix epoch")]
    ClockBeforeEpoch,
    /// A response could not be built from the request's headers.
    #[error("building the response failed: {0}")]
    Build(carevox::sip::ParseError),
}

/// What [`Registrar::handle`] decided.
#[derive(Debug)]
pub struct Handled {
    /// The response to send.
    pub response: Message,
    /// Its status code.
    pub status: u16,
    /// Audit records to append, in order.
    pub records: Vec<Record>,
}

/// What [`Registrar::authorize_call`] decided.
#[derive(Debug)]
#[non_exhaustive]
pub enum CallAuthorization {
    /// The caller proved to be this user.
    Authenticated {
        /// The user name.
        user: Pii<String>,
        /// Audit records to append (none for a plain success).
        records: Vec<Record>,
    },
    /// Send this response instead (`407`, `403`, `400`).
    Refused(Handled),
}

/// The registrar: digest server, nonce tracker, lockout table and location
/// service. See the [module docs](self).
#[derive(Debug)]
pub struct Registrar {
    settings: RegistrarSettings,
    digest: DigestServer,
    /// The same secret and realm with MD5 accepted after the others, for
    /// legacy users when the global switch is on.
    digest_md5: Option<DigestServer>,
    /// The same, offering MD5 alone, for [`Md5Use::Only`].
    digest_md5_only: Option<DigestServer>,
    nonces: NonceTracker,
    lockout: LockoutTable<Pii<String>>,
    location: LocationService,
}

/// Seconds since the Unix epoch.
fn unix_secs(now: SystemTime) -> Result<u64, RegistrarError> {
    now.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| RegistrarError::ClockBeforeEpoch)
}

/// Extra header fields of a response.
type Headers = Vec<(&'static str, String)>;

/// The request's answer: `200` with these header fields, or a refusal.
type Decision = Result<Headers, Refusal>;

/// A refusal decided while reading the request.
struct Refusal {
    status: u16,
    reason: &'static str,
    extra: Vec<(&'static str, String)>,
}

fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal {
        status,
        reason,
        extra: Vec::new(),
    }
}

/// Who challenges: the registrar (`401`, `WWW-Authenticate`,
/// `Authorization`) or the PBX as a proxy for calls (`407`,
/// `Proxy-Authenticate`, `Proxy-Authorization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Challenged {
    Registrar,
    Proxy,
}

/// One Contact of the request, validated.
struct Wanted {
    key: BindingKey,
    contact: String,
    q: u16,
    expires: u32,
}

impl Registrar {
    /// A registrar with `settings` and the nonce `secret` (at least 32
    /// bytes, shared by every registrar of the realm, e.g. drawn once and
    /// kept in the data directory).
    ///
    /// # Errors
    /// [`RegistrarError::Digest`] for a short secret or no algorithm.
    pub fn new(settings: RegistrarSettings, secret: &[u8]) -> Result<Registrar, RegistrarError> {
        let mut cfg = ServerConfig::new(&settings.realm);
        cfg.algorithms = settings
            .algorithms
            .iter()
            .copied()
            .filter(|a| a.base() != Algorithm::Md5)
            .collect();
        cfg.nonce_lifetime = settings.nonce_lifetime_secs;
        cfg.max_clock_skew = settings.max_clock_skew_secs;
        let digest = DigestServer::new(secret, cfg.clone()).map_err(RegistrarError::Digest)?;
        let (digest_md5, digest_md5_only) = if settings.allow_md5_for_legacy_users {
            let only = ServerConfig {
                algorithms: vec![Algorithm::Md5],
                ..cfg.clone()
            };
            (
                Some(DigestServer::new(secret, cfg.with_md5()).map_err(RegistrarError::Digest)?),
                Some(DigestServer::new(secret, only).map_err(RegistrarError::Digest)?),
            )
        } else {
            (None, None)
        };
        Ok(Registrar {
            nonces: NonceTracker::new(settings.max_tracked_nonces),
            // Failures are kept for submitted names too, real or not: room
            // for twice the users, and at least 1024 names.
            lockout: LockoutTable::new(
                settings.lockout,
                settings.max_users.saturating_mul(2).max(1024),
            ),
            location: LocationService::new(settings.max_users, settings.max_contacts_per_user),
            digest,
            digest_md5,
            digest_md5_only,
            settings,
        })
    }

    /// The location service, for routing.
    pub fn location(&self) -> &LocationService {
        &self.location
    }

    /// The settings.
    pub fn settings(&self) -> &RegistrarSettings {
        &self.settings
    }

    /// Removes every binding expired at `now` and returns one audit record
    /// per user that lost contacts. Call it at
    /// [`LocationService::next_expiry`].
    ///
    /// # Errors
    /// [`RegistrarError::ClockBeforeEpoch`].
    pub fn expire(&mut self, now: SystemTime) -> Result<Vec<Record>, RegistrarError> {
        let t = unix_secs(now)?;
        Ok(self
            .location
            .expire(t)
            .into_iter()
            .map(|e| {
                registration_record(
                    &RegistrationEvent::Expired {
                        removed: e.removed,
                        contacts: e.contacts,
                    },
                    &RegistrationSubject {
                        user_id: Pii::new(e.user.expose()),
                        network_address: Pii::new(None),
                        transport: None,
                        call_id: Pii::new(None),
                        digest_algorithm: None,
                    },
                    t,
                    &self.settings.audit_source,
                )
            })
            .collect())
    }

    /// Decides the response to `request` (a parsed REGISTER) from `source`
    /// at `now`. See the [module docs](self).
    ///
    /// # Errors
    /// Only failures of the registrar itself: the random source, a time
    /// before the epoch, or a response that cannot be built.
    pub fn handle(
        &mut self,
        request: &Message,
        source: Source,
        now: SystemTime,
        users: &dyn UserDirectory,
        rng: &dyn SecureRandom,
    ) -> Result<Handled, RegistrarError> {
        let t = unix_secs(now)?;
        let mut records = Vec::new();
        let mut ctx = Ctx {
            request,
            source,
            t,
            records: &mut records,
            algorithm: None,
        };
        let outcome = self.decide(&mut ctx, users, rng)?;
        let (status, reason, extra) = match outcome {
            Ok(extra) => (200, "OK", extra),
            Err(r) => (r.status, r.reason, r.extra),
        };
        let response = build(request, status, reason, &extra, rng)?;
        Ok(Handled {
            response,
            status,
            records,
        })
    }

    /// Authenticates the caller of a request the PBX serves as a proxy
    /// (an INVITE, a MESSAGE): with `Proxy-Authorization` credentials for
    /// the user its From names, under the same nonces, algorithms and
    /// lockout as registrations. A first request gets a `407` challenge;
    /// credentials of another user than the From's get `403` (no one
    /// calls under another's name).
    ///
    /// # Errors
    /// Only failures of the registrar itself, as [`Registrar::handle`].
    pub fn authorize_call(
        &mut self,
        request: &Message,
        source: Source,
        now: SystemTime,
        users: &dyn UserDirectory,
        rng: &dyn SecureRandom,
    ) -> Result<CallAuthorization, RegistrarError> {
        let t = unix_secs(now)?;
        let mut records = Vec::new();
        let mut ctx = Ctx {
            request,
            source,
            t,
            records: &mut records,
            algorithm: None,
        };
        let decided = if !self.settings.transports.contains(&source.transport) {
            Err(refuse(403, "Forbidden"))
        } else {
            let claimed = request
                .from()
                .ok()
                .and_then(|f| f.uri().as_sip().and_then(|u| u.user_decoded()))
                .and_then(|u| String::from_utf8(u.into_owned()).ok());
            match claimed {
                None => Err(refuse(403, "Forbidden")),
                Some(claimed) => {
                    match self.authenticate(&mut ctx, users, rng, Challenged::Proxy, &claimed)? {
                        Ok(user) if user == claimed => Ok(user),
                        Ok(user) => {
                            self.refused(&mut ctx, RefusalReason::OtherUsersAddress, None, &user);
                            Err(refuse(403, "Forbidden"))
                        }
                        Err(r) => Err(r),
                    }
                }
            }
        };
        match decided {
            Ok(user) => Ok(CallAuthorization::Authenticated {
                user: Pii::new(user),
                records,
            }),
            Err(r) => {
                let response = build(request, r.status, r.reason, &r.extra, rng)?;
                Ok(CallAuthorization::Refused(Handled {
                    response,
                    status: r.status,
                    records,
                }))
            }
        }
    }

    fn decide(
        &mut self,
        ctx: &mut Ctx<'_>,
        users: &dyn UserDirectory,
        rng: &dyn SecureRandom,
    ) -> Result<Decision, RegistrarError> {
        let req = ctx.request;
        // Only the transports the configuration serves.
        if !self.settings.transports.contains(&ctx.source.transport) {
            return Ok(Err(refuse(403, "Forbidden")));
        }
        // Mandatory headers (RFC 3261 section 8.1.1) and the method.
        if req.method() != Some(Method::Register) {
            let mut r = refuse(405, "Method Not Allowed");
            r.extra.push(("Allow", "REGISTER".to_owned()));
            return Ok(Err(r));
        }
        let (Ok(to), Ok(_from), Ok(call_id), Ok(cseq)) =
            (req.to(), req.from(), req.call_id(), req.cseq())
        else {
            return Ok(Err(refuse(400, "Bad Request")));
        };
        if cseq.method != Method::Register || req.top_via().is_err() {
            return Ok(Err(refuse(400, "Bad Request")));
        }
        // Step 1: the Request-URI names a domain served here.
        let Some(Ok(ruri)) = req.request_uri() else {
            return Ok(Err(refuse(400, "Bad Request")));
        };
        let Some(ruri) = ruri.as_sip() else {
            return Ok(Err(refuse(416, "Unsupported URI Scheme")));
        };
        if !self.serves(&ruri.host().to_string()) {
            return Ok(Err(refuse(404, "Not Found")));
        }
        // Step 2: Require.
        let unsupported: Vec<&str> = req
            .require()
            .filter(|tag| !(self.settings.gruu && tag.eq_ignore_ascii_case("gruu")))
            .collect();
        if !unsupported.is_empty() {
            let mut r = refuse(420, "Bad Extension");
            r.extra.push(("Unsupported", unsupported.join(", ")));
            return Ok(Err(r));
        }
        // Step 5 (address of record) before authentication so that the
        // challenge can offer MD5 to a legacy user.
        let Some(aor) = to.uri().as_sip() else {
            return Ok(Err(refuse(416, "Unsupported URI Scheme")));
        };
        let aor_user = match aor
            .user_decoded()
            .map(|u| String::from_utf8(u.into_owned()))
        {
            Some(Ok(u)) => u,
            _ => return Ok(Err(refuse(404, "Not Found"))),
        };
        if !self.serves(&aor.host().to_string()) {
            return Ok(Err(refuse(404, "Not Found")));
        }
        let aor_domain = aor.host().to_string();

        // Step 3: authentication.
        let username = match self.authenticate(ctx, users, rng, Challenged::Registrar, &aor_user)? {
            Ok(u) => u,
            Err(r) => return Ok(Err(r)),
        };
        // Step 4: the authenticated user may change only their own address.
        if username != aor_user {
            self.refused(ctx, RefusalReason::OtherUsersAddress, None, &username);
            return Ok(Err(refuse(403, "Forbidden")));
        }
        // Earlier bindings whose time ran out go first, audited.
        if let Some(e) = self.location.expire_user(&username, ctx.t) {
            self.audit(
                ctx,
                RegistrationEvent::Expired {
                    removed: e.removed,
                    contacts: e.contacts,
                },
                &username,
            );
        }

        // Step 6: the contacts.
        let changes = match self.read_contacts(req, call_id, cseq.seq, ctx) {
            Ok(c) => c,
            Err(r) => return Ok(Err(r)),
        };
        let gruu_wanted = self.settings.gruu
            && req
                .supported()
                .chain(req.require())
                .any(|t| t.eq_ignore_ascii_case("gruu"));
        if let Some(changes) = changes {
            // Step 7: Call-ID and CSeq ordering, for every binding touched.
            for change in &changes {
                let stale = match change {
                    Change::Upsert(b) => self
                        .location
                        .find(&username, &b.key)
                        .is_some_and(|old| old.call_id == b.call_id && cseq.seq <= old.cseq),
                    Change::Remove(k) => self.location.find(&username, k).is_some_and(|old| {
                        *old.call_id.expose() == call_id && cseq.seq <= old.cseq
                    }),
                    Change::RemoveAll => self
                        .location
                        .bindings(&username)
                        .iter()
                        .any(|old| *old.call_id.expose() == call_id && cseq.seq <= old.cseq),
                };
                if stale {
                    return Ok(Err(refuse(500, "Server Internal Error")));
                }
            }
            let changes =
                self.carry_temp_gruus(&username, changes, gruu_wanted, &aor_domain, rng)?;
            let longest = changes
                .iter()
                .filter_map(|c| match c {
                    Change::Upsert(b) => Some(b.remaining(ctx.t)),
                    _ => None,
                })
                .max();
            match self.location.apply(&username, changes, ctx.t) {
                Ok(applied) => self.audit_applied(ctx, &username, applied, longest),
                Err(LocationError::TooManyUsers { .. } | LocationError::TooManyContacts { .. }) => {
                    self.audit(ctx, RegistrationEvent::OverCapacity, &username);
                    return Ok(Err(refuse(503, "Service Unavailable")));
                }
            }
        }
        // Step 8: every live contact of the user.
        let mut extra = Vec::new();
        for b in self.location.lookup(&username, ctx.t) {
            extra.push((
                "Contact",
                self.contact_value(b, &aor_user, &aor_domain, gruu_wanted, ctx.t),
            ));
        }
        if gruu_wanted {
            extra.push(("Supported", "gruu".to_owned()));
        }
        // The registrar's time, for phones without a clock (section 10.3
        // step 8).
        if let Some(date) = http_date(ctx.t) {
            extra.push(("Date", date));
        }
        Ok(Ok(extra))
    }

    /// Digest authentication of `ctx.request` (RFC 3261 section 22): the
    /// user name it proved, or the refusal to send (a `401` or `407`
    /// challenge, `403` while locked out, `400` for malformed
    /// credentials). `claimed` names the user a first challenge is made for
    /// (the address of record), so that a legacy user is offered `MD5`.
    fn authenticate(
        &mut self,
        ctx: &mut Ctx<'_>,
        users: &dyn UserDirectory,
        rng: &dyn SecureRandom,
        who: Challenged,
        claimed: &str,
    ) -> Result<Result<String, Refusal>, RegistrarError> {
        let req = ctx.request;
        let Some(uri_text) = req.request_uri_str() else {
            return Ok(Err(refuse(400, "Bad Request")));
        };
        let method = req.method().map_or("", |m| m.as_str());
        let digest_request = Request::new(method, uri_text).with_body(req.body());
        let binding = ctx.source.address.expose().ip().to_string();
        let creds = self.credentials(req, who);
        let creds = match creds {
            Err(()) => return Ok(Err(refuse(400, "Bad Request"))),
            Ok(None) => {
                let md5 = self.md5_for(users.user(claimed).as_ref());
                return self
                    .challenge(who, md5, false, ctx.t, binding.as_bytes(), rng)
                    .map(Err);
            }
            Ok(Some(c)) => c,
        };
        let username = creds.username.expose().clone();
        ctx.algorithm = Some(creds.effective_algorithm());
        let lock_key = Pii::new(username.clone());
        if let Err(carevox::authz::lockout::LockoutError::Locked { retry_after_secs }) =
            self.lockout.check(&lock_key, ctx.t)
        {
            self.audit(
                ctx,
                RegistrationEvent::LockedOut { retry_after_secs },
                &username,
            );
            let mut r = refuse(403, "Forbidden");
            r.extra.push(("Retry-After", retry_after_secs.to_string()));
            return Ok(Err(r));
        }
        let user = users.user(&username);
        let md5 = self.md5_for(user.as_ref());
        let algorithm = creds.effective_algorithm();
        let Some(user) = user else {
            let locked_until = self.lockout.record_failure(&lock_key, ctx.t);
            self.refused(ctx, RefusalReason::UnknownUser, locked_until, &username);
            return self
                .challenge(who, Md5Use::Refused, false, ctx.t, binding.as_bytes(), rng)
                .map(Err);
        };
        if algorithm.base() == Algorithm::Md5 && md5 == Md5Use::Refused {
            let locked_until = self.lockout.record_failure(&lock_key, ctx.t);
            self.refused(
                ctx,
                RefusalReason::AlgorithmNotAllowed,
                locked_until,
                &username,
            );
            return self
                .challenge(who, Md5Use::Refused, false, ctx.t, binding.as_bytes(), rng)
                .map(Err);
        }
        // A legacy user's answer may use any algorithm the MD5 server
        // accepts (SHA-256 and SHA-512-256 included).
        let server = match (md5, &self.digest_md5) {
            (Md5Use::Offered | Md5Use::Only, Some(s)) => s,
            _ => &self.digest,
        };
        let verified = match user.secret_for(algorithm) {
            Some(secret) => server.verify(
                &creds,
                &digest_request,
                &username,
                secret,
                binding.as_bytes(),
                ctx.t,
                &mut self.nonces,
            ),
            None => Err(DigestError::UnsupportedAlgorithm),
        };
        match verified {
            Ok(_) => self.lockout.record_success(&lock_key),
            Err(DigestError::StaleNonce) => {
                return self
                    .challenge(who, md5, true, ctx.t, binding.as_bytes(), rng)
                    .map(Err);
            }
            Err(e) => {
                // A nonce this server never issued says nothing about the
                // password (the response is not checked against it): it
                // is refused but not counted towards the lockout.
                let locked_until = match e {
                    DigestError::InvalidNonce => None,
                    _ => self.lockout.record_failure(&lock_key, ctx.t),
                };
                self.refused(ctx, RefusalReason::BadCredentials, locked_until, &username);
                return self
                    .challenge(who, md5, false, ctx.t, binding.as_bytes(), rng)
                    .map(Err);
            }
        }
        Ok(Ok(username))
    }

    fn serves(&self, host: &str) -> bool {
        self.settings
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(host))
    }

    /// What the user gets: [`Md5Use::Refused`] unless the global switch
    /// is on.
    fn md5_for(&self, user: Option<&DirectoryUser>) -> Md5Use {
        match user {
            Some(u) if self.digest_md5.is_some() => u.md5,
            _ => Md5Use::Refused,
        }
    }

    /// The Digest credentials for this realm, if any; `Err` when an
    /// Authorization (or Proxy-Authorization) header is malformed.
    fn credentials(&self, req: &Message, who: Challenged) -> Result<Option<Credentials>, ()> {
        let headers: Vec<_> = match who {
            Challenged::Registrar => req.authorization().collect(),
            Challenged::Proxy => req.proxy_authorization().collect(),
        };
        for header in headers {
            let header = header.map_err(|_| ())?;
            if !header.is_scheme("Digest") {
                continue;
            }
            let creds = Credentials::from_header(&header).map_err(|_| ())?;
            if *creds.realm.expose() == self.settings.realm {
                return Ok(Some(creds));
            }
        }
        Ok(None)
    }

    fn challenge(
        &self,
        who: Challenged,
        md5: Md5Use,
        stale: bool,
        t: u64,
        binding: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Refusal, RegistrarError> {
        let server = match (md5, &self.digest_md5, &self.digest_md5_only) {
            (Md5Use::Offered, Some(s), _) | (Md5Use::Only, _, Some(s)) => s,
            _ => &self.digest,
        };
        let challenges = server
            .challenges(t, binding, stale, rng)
            .map_err(|e| match e {
                DigestError::Random => RegistrarError::Random,
                other => RegistrarError::Digest(other),
            })?;
        let (mut r, header) = match who {
            Challenged::Registrar => (refuse(401, "Unauthorized"), "WWW-Authenticate"),
            Challenged::Proxy => (
                refuse(407, "Proxy Authentication Required"),
                "Proxy-Authenticate",
            ),
        };
        for c in challenges {
            r.extra.push((header, c.to_string()));
        }
        Ok(r)
    }

    /// The changes the Contact headers ask for; `Ok(None)` for a query (no
    /// Contact).
    fn read_contacts(
        &self,
        req: &Message,
        call_id: &str,
        cseq: u32,
        ctx: &Ctx<'_>,
    ) -> Result<Option<Vec<Change>>, Refusal> {
        let s = &self.settings;
        let header_expires = match req.expires() {
            Ok(e) => e,
            Err(_) => return Err(refuse(400, "Bad Request")),
        };
        let mut contacts = Vec::new();
        for c in req.contacts() {
            match c {
                Ok(c) => contacts.push(c),
                Err(_) => return Err(refuse(400, "Bad Request")),
            }
        }
        if contacts.is_empty() {
            return Ok(None);
        }
        if contacts.contains(&Contact::Star) {
            if contacts.len() != 1 || header_expires != Some(0) {
                return Err(refuse(400, "Bad Request"));
            }
            return Ok(Some(vec![Change::RemoveAll]));
        }
        let mut wanted: Vec<Wanted> = Vec::new();
        for c in &contacts {
            let Some(addr) = c.addr() else {
                return Err(refuse(400, "Bad Request"));
            };
            let Some(uri) = addr.uri().as_sip() else {
                return Err(refuse(400, "Bad Request"));
            };
            // RFC 5627 section 5.1: a GRUU is not a contact.
            if uri.params().contains("gr") {
                return Err(refuse(403, "Forbidden"));
            }
            let expires = match addr.params().get("expires") {
                None => header_expires.unwrap_or(s.default_expires_secs),
                // delta-seconds: any run of digits, a value past 2^32 - 1
                // read as 2^32 - 1 (RFC 3261 section 20.19).
                Some(Some(v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                    v.parse::<u32>().unwrap_or(u32::MAX)
                }
                Some(_) => return Err(refuse(400, "Bad Request")),
            };
            let q = match addr.params().get("q") {
                None => 1000,
                Some(_) => match c.q() {
                    Some(q) => q,
                    None => return Err(refuse(400, "Bad Request")),
                },
            };
            let instance = match addr.params().get("+sip.instance") {
                None => None,
                Some(None) => return Err(refuse(400, "Bad Request")),
                Some(Some(_)) => match c.sip_instance() {
                    Some(i) => {
                        let i = i.trim();
                        let i = i
                            .strip_prefix('<')
                            .and_then(|i| i.strip_suffix('>'))
                            .unwrap_or(i);
                        if i.is_empty() {
                            return Err(refuse(400, "Bad Request"));
                        }
                        Some(i.to_owned())
                    }
                    None => return Err(refuse(400, "Bad Request")),
                },
            };
            let reg_id = match addr.params().get("reg-id") {
                None => None,
                Some(_) => match c.reg_id() {
                    Some(r) if instance.is_some() => Some(r),
                    _ => return Err(refuse(400, "Bad Request")),
                },
            };
            let key = match instance {
                Some(i) => BindingKey::Instance {
                    instance: Pii::new(i),
                    reg_id,
                },
                None => BindingKey::Uri(Pii::new(uri.as_str().to_owned())),
            };
            wanted.push(Wanted {
                key,
                contact: uri.as_str().to_owned(),
                q,
                expires,
            });
        }
        // Section 10.3 step 6: a lifetime under the minimum is refused
        // (zero removes); one over the maximum is shortened.
        if wanted
            .iter()
            .any(|w| w.expires > 0 && w.expires < s.min_expires_secs)
        {
            let mut r = refuse(423, "Interval Too Brief");
            r.extra
                .push(("Min-Expires", s.min_expires_secs.to_string()));
            return Err(r);
        }
        let changes = wanted
            .into_iter()
            .map(|w| {
                if w.expires == 0 {
                    Change::Remove(w.key)
                } else {
                    let granted = w.expires.min(s.max_expires_secs);
                    Change::Upsert(Binding {
                        key: w.key,
                        contact: Pii::new(w.contact),
                        q: w.q,
                        call_id: Pii::new(call_id.to_owned()),
                        cseq,
                        expires_at: ctx.t.saturating_add(granted.into()),
                        source: ctx.source.address,
                        transport: ctx.source.transport,
                        temp_gruus: Vec::new(),
                    })
                }
            })
            .collect();
        Ok(Some(changes))
    }

    /// Keeps the temporary GRUUs of a binding refreshed under the same
    /// Call-ID and issues a new one for each binding with an instance when
    /// the phone asked for GRUUs (RFC 5627 section 5.1).
    fn carry_temp_gruus(
        &self,
        user: &str,
        changes: Vec<Change>,
        gruu_wanted: bool,
        domain: &str,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<Change>, RegistrarError> {
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            let Change::Upsert(mut b) = change else {
                out.push(change);
                continue;
            };
            if let Some(old) = self.location.find(user, &b.key)
                && old.call_id == b.call_id
            {
                b.temp_gruus = old.temp_gruus.clone();
            }
            if gruu_wanted && b.instance().is_some() {
                let mut raw = [0u8; 15];
                rng.fill(&mut raw).map_err(|_| RegistrarError::Random)?;
                let token = data_encoding_lower(&raw);
                b.temp_gruus
                    .push(Pii::new(format!("sip:tgruu.{token}@{domain};gr")));
                while b.temp_gruus.len() > MAX_TEMP_GRUUS {
                    b.temp_gruus.remove(0);
                }
            }
            out.push(Change::Upsert(b));
        }
        Ok(out)
    }

    fn contact_value(
        &self,
        b: &Binding,
        user: &str,
        domain: &str,
        gruu_wanted: bool,
        t: u64,
    ) -> String {
        let mut v = format!("<{}>;expires={}", b.contact.expose(), b.remaining(t));
        if b.q != 1000 {
            v.push_str(&format!(";q={}.{:03}", b.q / 1000, b.q % 1000));
        }
        if let BindingKey::Instance { instance, reg_id } = &b.key {
            v.push_str(&format!(";+sip.instance=\"<{}>\"", instance.expose()));
            if let Some(r) = reg_id {
                v.push_str(&format!(";reg-id={r}"));
            }
            if gruu_wanted {
                // The public GRUU is the address of record with the
                // instance ID as `gr`; a user part that would need escaping
                // gets only the temporary GRUU.
                let aor = format!("sip:{user}@{domain}");
                if Uri::parse(&aor).is_ok() {
                    v.push_str(&format!(";pub-gruu=\"{aor};gr={}\"", instance.expose()));
                }
                if let Some(tg) = b.temp_gruus.last() {
                    v.push_str(&format!(";temp-gruu=\"{}\"", tg.expose()));
                }
            }
        }
        v
    }

    fn audit(&self, ctx: &mut Ctx<'_>, event: RegistrationEvent, user: &str) {
        let addr = ctx.source.address.expose().ip().to_string();
        let algorithm = ctx.algorithm.map(Algorithm::name);
        let call_id = ctx.request.call_id().ok();
        ctx.records.push(registration_record(
            &event,
            &RegistrationSubject {
                user_id: Pii::new(user),
                network_address: Pii::new(Some(&addr)),
                transport: Some(ctx.source.transport.name()),
                call_id: Pii::new(call_id),
                digest_algorithm: algorithm,
            },
            ctx.t,
            &self.settings.audit_source,
        ));
    }

    fn refused(
        &self,
        ctx: &mut Ctx<'_>,
        reason: RefusalReason,
        locked_until: Option<u64>,
        user: &str,
    ) {
        self.audit(
            ctx,
            RegistrationEvent::Refused {
                reason,
                locked_until,
            },
            user,
        );
    }

    fn audit_applied(&self, ctx: &mut Ctx<'_>, user: &str, applied: Applied, longest: Option<u64>) {
        let expires_secs = longest.map_or(0, |l| u32::try_from(l).unwrap_or(u32::MAX));
        if applied.removed > 0 {
            self.audit(
                ctx,
                RegistrationEvent::Unregistered {
                    removed: applied.removed,
                    contacts: applied.contacts,
                },
                user,
            );
        }
        if applied.added > 0 {
            self.audit(
                ctx,
                RegistrationEvent::Registered {
                    contacts: applied.contacts,
                    expires_secs,
                },
                user,
            );
        } else if applied.updated > 0 {
            self.audit(
                ctx,
                RegistrationEvent::Refreshed {
                    contacts: applied.contacts,
                    expires_secs,
                },
                user,
            );
        }
    }
}

/// The request being handled.
struct Ctx<'a> {
    request: &'a Message,
    source: Source,
    t: u64,
    records: &'a mut Vec<Record>,
    algorithm: Option<Algorithm>,
}

/// `t` as an RFC 1123 date (`Sat, 13 Nov 2010 23:29:00 GMT`), the form of
/// the Date header (RFC 3261 section 20.17).
fn http_date(t: u64) -> Option<String> {
    let ts = jiff::Timestamp::from_second(i64::try_from(t).ok()?).ok()?;
    jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&ts)
        .ok()
}

/// Lower-case base32 without padding (RFC 4648), for URI user parts.
fn data_encoding_lower(raw: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(raw).to_ascii_lowercase()
}

fn build(
    request: &Message,
    status: u16,
    reason: &str,
    extra: &[(&'static str, String)],
    rng: &dyn SecureRandom,
) -> Result<Message, RegistrarError> {
    let mut tag = [0u8; 8];
    rng.fill(&mut tag).map_err(|_| RegistrarError::Random)?;
    let mut b = MessageBuilder::response_to(request, status, reason)
        .and_then(|b| b.to_tag(&data_encoding::HEXLOWER.encode(&tag)))
        .map_err(RegistrarError::Build)?;
    for (name, value) in extra {
        b = b.header(name, value).map_err(RegistrarError::Build)?;
    }
    b.build().map_err(RegistrarError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc_1123() {
        assert_eq!(
            http_date(784_111_777).as_deref(),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        assert_eq!(http_date(u64::MAX), None);
    }

    #[test]
    fn a_time_before_the_epoch_is_an_error() {
        let before = UNIX_EPOCH - std::time::Duration::from_secs(1);
        assert!(matches!(
            unix_secs(before),
            Err(RegistrarError::ClockBeforeEpoch)
        ));
    }

    #[test]
    fn a_short_secret_is_refused() {
        let config = Config::default();
        let settings = RegistrarSettings::from_config(&config, "pbx");
        assert!(matches!(
            Registrar::new(settings, &[0u8; 31]),
            Err(RegistrarError::Digest(DigestError::WeakSecret))
        ));
    }
}
