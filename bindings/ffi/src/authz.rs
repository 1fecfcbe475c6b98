//! Access control and authentication: policies and decisions, password and
//! TOTP login, sessions.

use std::sync::Arc;

use carevox_authz::login::{AuthMethod, SessionError, SessionPolicy, SessionStore, SessionToken};
use carevox_authz::password::{Password, PasswordError, PasswordHasher};
use carevox_authz::totp::{Totp, TotpAlgorithm, TotpError, TotpSecret};
use carevox_authz::{
    Assignments, Attributes, BreakGlass, BreakGlassUse, HOSPITAL_POLICY, PatientId, Pii, Policy,
    RbacError, Reason, Request, Resource, Session, TeamId, UserId,
};
use zeroize::Zeroizing;

use crate::error::AuthzError;
use crate::system_rng;

impl From<TotpError> for AuthzError {
    fn from(e: TotpError) -> Self {
        let text = e.to_string();
        match e {
            TotpError::Invalid | TotpError::Replayed => AuthzError::Authentication(text),
            _ => AuthzError::InvalidInput(text),
        }
    }
}

impl From<PasswordError> for AuthzError {
    fn from(e: PasswordError) -> Self {
        let text = e.to_string();
        match e {
            PasswordError::Mismatch => AuthzError::Authentication(text),
            _ => AuthzError::InvalidInput(text),
        }
    }
}

impl From<SessionError> for AuthzError {
    fn from(e: SessionError) -> Self {
        AuthzError::Session(e.to_string())
    }
}

impl From<RbacError> for AuthzError {
    fn from(e: RbacError) -> Self {
        AuthzError::Unknown(e.to_string())
    }
}

/// Why access was allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DecisionReason {
    /// A permit rule matched (and no forbid rule).
    Permitted,
    /// A forbid rule matched.
    Forbidden,
    /// No rule permits it.
    NotPermitted,
}

/// What became of a presented break-the-glass grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum BreakGlassOutcome {
    /// None was presented.
    NotPresented,
    /// It was needed and used.
    Used,
    /// It was presented but not needed.
    Unused,
    /// It had no reason.
    NoReason,
    /// It had expired (or was not yet valid).
    Expired,
    /// Its lifetime exceeds what the policy allows.
    TooLong,
}

/// An emergency access grant.
#[derive(Debug, Clone, uniffi::Record)]
pub struct BreakGlassGrant {
    /// Why (recorded and reviewed; may be PHI).
    pub reason: String,
    /// Issued, seconds since the Unix epoch.
    pub issued_at: u64,
    /// Expires, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// An access request: who, doing what, to which resource, when.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AccessRequest {
    /// The user's numeric id.
    pub user_id: u64,
    /// The roles to activate for this request (names from the policy);
    /// each assignment is checked for separation of duty.
    pub roles: Vec<String>,
    /// Whether the user logged in with a second factor.
    pub mfa: bool,
    /// The care teams the user belongs to.
    pub care_teams: Vec<u32>,
    /// The patient the user is, for a patient acting on their own data.
    pub own_patient: Option<u64>,
    /// The action name (`listen`, `read`, ...).
    pub action: String,
    /// The resource type name (`voicemail`, `recording`, ...).
    pub resource_type: String,
    /// The patient the resource belongs to.
    pub resource_owner: Option<u64>,
    /// The care teams of that patient.
    pub resource_care_teams: Vec<u32>,
    /// Whether the resource holds ePHI.
    pub ephi: bool,
    /// When, seconds since the Unix epoch.
    pub now: u64,
    /// An emergency grant, if one is presented.
    pub break_glass: Option<BreakGlassGrant>,
    /// The site (clinic, hospital) the request comes from: the name of one
    /// of the policy's `[[sites]]`. Tested by `request.site` conditions, and
    /// picks the time zone in which the rules' `hours` are read (the
    /// policy's `time_zone` when `None`). `None` when the site is unknown:
    /// `==` and `in` conditions on it then fail.
    #[uniffi(default = None)]
    pub site: Option<String>,
    /// The location inside the site (ward, room, department) the request
    /// comes from: one of the policy's `locations`. `None` when unknown.
    #[uniffi(default = None)]
    pub location: Option<String>,
    /// The network the request comes from (`clinic-lan`, `vpn`,
    /// `internet`...): one of the policy's `networks`. `None` when unknown.
    #[uniffi(default = None)]
    pub network: Option<String>,
    /// The site the resource belongs to (`resource.site`), a name from the
    /// policy's `[[sites]]`; `None` when unknown.
    #[uniffi(default = None)]
    pub resource_site: Option<String>,
    /// The location the resource belongs to (`resource.location`), one of
    /// the policy's `locations`; `None` when unknown.
    #[uniffi(default = None)]
    pub resource_location: Option<String>,
}

/// The decision and its explanation.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AccessDecision {
    /// Whether access is granted.
    pub allowed: bool,
    /// Why.
    pub reason: DecisionReason,
    /// The id of the rule that decided, if one did.
    pub rule: Option<String>,
    /// What became of the break-the-glass grant.
    pub break_glass: BreakGlassOutcome,
    /// Whether the access must be reviewed.
    pub review: bool,
    /// For a request no rule permits: the id of the permit that came
    /// nearest (fewest unmet conditions), if the policy has one for the
    /// action.
    pub nearest_rule: Option<String>,
    /// For a request no rule permits: the names of the conditions the
    /// nearest permit lacked (`mfa`, `care_team`...), in a fixed order.
    pub unmet: Vec<String>,
    /// One line for a person: the verdict, the rule, what was missing and
    /// the grant.
    pub explanation: String,
}

/// A loaded access policy. Immutable and thread-safe.
#[derive(Debug, uniffi::Object)]
pub struct AuthzPolicy {
    inner: Policy,
}

/// The policy's id for a site, location or network name; a name the policy
/// does not declare is an error (a typo would otherwise fail every condition
/// on it in silence).
fn lookup<T>(
    policy: &Policy,
    kind: &str,
    name: Option<&str>,
    find: fn(&Policy, &str) -> Option<T>,
) -> Result<Option<T>, AuthzError> {
    name.map(|n| {
        find(policy, n).ok_or_else(|| AuthzError::Unknown(format!("no {kind} {n:?} in the policy")))
    })
    .transpose()
}

fn teams(ids: &[u32]) -> Vec<TeamId> {
    ids.iter().map(|&t| TeamId(t)).collect()
}

#[uniffi::export]
impl AuthzPolicy {
    /// Loads and validates a policy written in TOML.
    #[uniffi::constructor]
    pub fn from_toml(text: String) -> Result<Arc<Self>, AuthzError> {
        let inner = Policy::from_toml(&text).map_err(|e| AuthzError::Policy(e.to_string()))?;
        Ok(Arc::new(AuthzPolicy { inner }))
    }

    /// The sample hospital policy shipped with carevox-authz.
    #[uniffi::constructor]
    pub fn hospital_sample() -> Result<Arc<Self>, AuthzError> {
        Self::from_toml(HOSPITAL_POLICY.to_owned())
    }

    /// The role names.
    pub fn role_names(&self) -> Vec<String> {
        self.inner.roles().map(|(_, n)| n.to_owned()).collect()
    }

    /// The rule ids.
    pub fn rule_ids(&self) -> Vec<String> {
        self.inner.rule_ids().map(str::to_owned).collect()
    }

    /// Decides a request.
    pub fn decide(&self, request: AccessRequest) -> Result<AccessDecision, AuthzError> {
        let policy = &self.inner;
        let user = UserId(request.user_id);
        let mut assignments = Assignments::new();
        let mut session = Session::new(user, request.mfa, request.own_patient.map(PatientId::new));
        for name in &request.roles {
            let role = policy
                .role(name)
                .ok_or_else(|| AuthzError::Unknown(format!("no role {name:?} in the policy")))?;
            assignments.assign(policy, user, role)?;
            session.activate(policy, &assignments, role)?;
        }
        let action = policy.action(&request.action).ok_or_else(|| {
            AuthzError::Unknown(format!("no action {:?} in the policy", request.action))
        })?;
        let kind = policy
            .resource_type(&request.resource_type)
            .ok_or_else(|| {
                AuthzError::Unknown(format!(
                    "no resource type {:?} in the policy",
                    request.resource_type
                ))
            })?;
        let origin = Attributes {
            site: lookup(policy, "site", request.site.as_deref(), Policy::site)?,
            location: lookup(
                policy,
                "location",
                request.location.as_deref(),
                Policy::location,
            )?,
            network: lookup(
                policy,
                "network",
                request.network.as_deref(),
                Policy::network,
            )?,
        };
        let resource_attributes = Attributes {
            site: lookup(
                policy,
                "site",
                request.resource_site.as_deref(),
                Policy::site,
            )?,
            location: lookup(
                policy,
                "location",
                request.resource_location.as_deref(),
                Policy::location,
            )?,
            network: None,
        };
        let user_teams = teams(&request.care_teams);
        let resource_teams = teams(&request.resource_care_teams);
        let decision = policy.decide(&Request {
            principal: session.principal(&user_teams),
            action,
            resource: Resource {
                kind,
                owner: request.resource_owner.map(PatientId::new),
                care_teams: &resource_teams,
                ephi: request.ephi,
                attributes: resource_attributes,
            },
            attributes: origin,
            now: request.now,
            break_glass: request.break_glass.as_ref().map(|g| BreakGlass {
                reason: Pii::new(g.reason.as_str()),
                issued_at: g.issued_at,
                expires_at: g.expires_at,
            }),
        });
        let (reason, rule) = match decision.reason {
            Reason::Permitted { rule } => (DecisionReason::Permitted, Some(rule.to_owned())),
            Reason::Forbidden { rule } => (DecisionReason::Forbidden, Some(rule.to_owned())),
            _ => (DecisionReason::NotPermitted, None),
        };
        let break_glass = match decision.break_glass {
            BreakGlassUse::Used => BreakGlassOutcome::Used,
            BreakGlassUse::Unused => BreakGlassOutcome::Unused,
            BreakGlassUse::NoReason => BreakGlassOutcome::NoReason,
            BreakGlassUse::Expired => BreakGlassOutcome::Expired,
            BreakGlassUse::TooLong => BreakGlassOutcome::TooLong,
            _ => BreakGlassOutcome::NotPresented,
        };
        let allowed = decision.is_allowed();
        let mut explanation = match (&reason, &rule) {
            (DecisionReason::Permitted, Some(r)) => format!("allowed by rule {r}"),
            (DecisionReason::Forbidden, Some(r)) => format!("denied: forbidden by rule {r}"),
            _ => "denied: no rule permits it".to_owned(),
        };
        let nearest_rule = decision.nearest.map(str::to_owned);
        let unmet: Vec<String> = decision.unmet.names().map(str::to_owned).collect();
        if let Some(r) = &nearest_rule {
            explanation.push_str(&format!("; nearest rule {r}"));
            if !unmet.is_empty() {
                explanation.push_str(&format!(" lacks {}", unmet.join(", ")));
            }
        }
        let grant = match break_glass {
            BreakGlassOutcome::NotPresented => None,
            BreakGlassOutcome::Used => Some("emergency access grant used"),
            BreakGlassOutcome::Unused => Some("emergency access grant presented but not needed"),
            BreakGlassOutcome::NoReason => Some("emergency access grant refused: no reason"),
            BreakGlassOutcome::Expired => Some("emergency access grant refused: not valid now"),
            BreakGlassOutcome::TooLong => {
                Some("emergency access grant refused: longer than the policy allows")
            }
        };
        if let Some(g) = grant {
            explanation.push_str("; ");
            explanation.push_str(g);
        }
        if decision.review {
            explanation.push_str("; review required");
        }
        Ok(AccessDecision {
            allowed,
            reason,
            rule,
            break_glass,
            review: decision.review,
            nearest_rule,
            unmet,
            explanation,
        })
    }
}

/// A new TOTP enrolment: show the URI as a QR code once, store the secret
/// (secret: in the Keychain/Keystore or server-side, never in logs).
#[derive(Clone, uniffi::Record)]
pub struct TotpEnrolment {
    /// The shared secret, base32 (RFC 4648, no padding).
    pub secret_base32: String,
    /// The `otpauth://` provisioning URI.
    pub provisioning_uri: String,
}

// Written by hand: UniFFI records cannot hold the redacting wrappers.
impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment")
            .field("secret_base32", &carevox::redact::Pii::new(()))
            .field("provisioning_uri", &carevox::redact::Pii::new(()))
            .finish()
    }
}

/// A successful login.
#[derive(Clone, uniffi::Record)]
pub struct LoginSession {
    /// The bearer token (secret: present it with each request, never log it).
    pub token: String,
    /// The session's public id, safe for audit records.
    pub session_id: String,
    /// Whether a second factor was used.
    pub mfa: bool,
    /// The TOTP time step consumed: store it and pass it as
    /// `last_used_step` next time, so that a code is never accepted twice.
    pub totp_step: u64,
    /// When the session idles out, seconds since the Unix epoch.
    pub idle_deadline: u64,
}

// Written by hand: UniFFI records cannot hold the redacting wrappers.
impl std::fmt::Debug for LoginSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginSession")
            .field("token", &carevox::redact::Pii::new(()))
            .field("session_id", &self.session_id)
            .field("mfa", &self.mfa)
            .field("totp_step", &self.totp_step)
            .field("idle_deadline", &self.idle_deadline)
            .finish()
    }
}

/// Password hashing, TOTP and login sessions, with secure defaults
/// (Argon2id with OWASP parameters, 6-digit SHA-1 TOTP in 30 s steps, the
/// session store's default idle and absolute timeouts). Thread-safe.
#[derive(Debug, uniffi::Object)]
pub struct Authenticator {
    hasher: PasswordHasher,
    totp: Totp,
    sessions: SessionStore,
}

fn password(text: String) -> Result<Password, AuthzError> {
    let text = Zeroizing::new(text);
    Ok(Password::new(text.as_str())?)
}

fn totp_secret(base32: String) -> Result<TotpSecret, AuthzError> {
    let base32 = Zeroizing::new(base32);
    Ok(TotpSecret::from_base32(&base32)?)
}

#[uniffi::export]
impl Authenticator {
    /// An authenticator with the default parameters.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Authenticator {
            hasher: PasswordHasher::default(),
            totp: Totp::default(),
            sessions: SessionStore::new(SessionPolicy::default()),
        })
    }

    /// Hashes a password for storage (PHC string with a fresh salt).
    pub fn hash_password(&self, password: String) -> Result<String, AuthzError> {
        Ok(self
            .hasher
            .hash(&self::password(password)?, &system_rng())?)
    }

    /// Checks a password against a stored hash; throws `Authentication` if
    /// it does not match. Returns whether the hash should be replaced by a
    /// fresh one (`hash_password`) made with the current parameters.
    pub fn verify_password(
        &self,
        password: String,
        stored_hash: String,
    ) -> Result<bool, AuthzError> {
        Ok(self
            .hasher
            .verify(&self::password(password)?, &stored_hash)?
            .needs_rehash)
    }

    /// Enrols a TOTP authenticator for `account` at `issuer`.
    pub fn enrol_totp(&self, issuer: String, account: String) -> Result<TotpEnrolment, AuthzError> {
        let secret = TotpSecret::generate(&system_rng(), TotpAlgorithm::Sha1)?;
        let uri = self.totp.provisioning_uri(&secret, &issuer, &account)?;
        Ok(TotpEnrolment {
            secret_base32: secret.to_base32().to_string(),
            provisioning_uri: uri.to_string(),
        })
    }

    /// The code an authenticator app shows at `now` (seconds since the Unix
    /// epoch) for this secret.
    pub fn totp_code(&self, secret_base32: String, now: u64) -> Result<String, AuthzError> {
        Ok(self
            .totp
            .generate(&totp_secret(secret_base32)?, now)?
            .to_string())
    }

    /// Verifies a TOTP code at `now`; returns the step it consumed (pass it
    /// as `last_used_step` next time). A code at or before `last_used_step`
    /// is refused as replayed.
    pub fn verify_totp(
        &self,
        secret_base32: String,
        code: String,
        now: u64,
        last_used_step: Option<u64>,
    ) -> Result<u64, AuthzError> {
        let code = Zeroizing::new(code);
        Ok(self
            .totp
            .verify(&totp_secret(secret_base32)?, &code, now, last_used_step)?)
    }

    /// Logs in with password and TOTP: checks the password against
    /// `stored_hash`, then the code, then opens a session. Any failure
    /// throws `Authentication` without saying which factor failed.
    #[allow(clippy::too_many_arguments)]
    pub fn login(
        &self,
        user_id: String,
        password: String,
        stored_hash: String,
        totp_secret_base32: String,
        totp_code: String,
        now: u64,
        last_used_step: Option<u64>,
    ) -> Result<LoginSession, AuthzError> {
        let refused = || AuthzError::Authentication("login refused".into());
        match self.hasher.verify(&self::password(password)?, &stored_hash) {
            Ok(_) => {}
            Err(PasswordError::Mismatch) => return Err(refused()),
            Err(e) => return Err(e.into()),
        }
        let code = Zeroizing::new(totp_code);
        let step = match self.totp.verify(
            &totp_secret(totp_secret_base32)?,
            &code,
            now,
            last_used_step,
        ) {
            Ok(step) => step,
            Err(TotpError::Invalid | TotpError::Replayed) => return Err(refused()),
            Err(e) => return Err(e.into()),
        };
        let (token, info) = self.sessions.create(
            &system_rng(),
            &user_id,
            &[AuthMethod::Password, AuthMethod::Totp],
            now,
        )?;
        Ok(LoginSession {
            token: token.expose().to_owned(),
            session_id: info.id.to_string(),
            mfa: info.is_mfa(),
            totp_step: step,
            idle_deadline: info.idle_deadline,
        })
    }

    /// Marks activity on a session at `now`; returns the new idle deadline.
    /// Throws `Session` if it is unknown, idle too long or too old.
    pub fn touch_session(&self, token: String, now: u64) -> Result<u64, AuthzError> {
        let token = Zeroizing::new(token);
        let token = SessionToken::parse(&token)?;
        Ok(self.sessions.touch(&token, now)?.idle_deadline)
    }

    /// Logs a session off; returns whether it existed.
    pub fn logoff(&self, token: String) -> Result<bool, AuthzError> {
        let token = Zeroizing::new(token);
        let token = SessionToken::parse(&token)?;
        Ok(self.sessions.logoff(&token).is_some())
    }
}
