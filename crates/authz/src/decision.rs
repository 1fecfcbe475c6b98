//! Requests and decisions.
//!
//! A [`Request`] says who (a [`Principal`]: user, the roles of their session,
//! whether the session passed multi-factor authentication, their care teams),
//! does what ([`ActionId`]) to what ([`Resource`]: type, owning patient, care
//! teams of that patient, ePHI or not, its site and location), from where
//! (the request's [`Attributes`]: site, location, network), when (seconds
//! since the Unix epoch), and whether an emergency [`BreakGlass`] grant is
//! presented.
//!
//! [`Policy::decide`] answers with a [`Decision`]: allow or deny, and why.
//! A principal whose roles break separation of duty is refused first.
//! Forbid rules win over every permit; without a matching permit the answer
//! is [`Reason::NotPermitted`], with the nearest permit and the conditions
//! it failed ([`Unmet`]). Permits that need break-the-glass are tried only
//! when no ordinary permit matches, and any presented grant flags the
//! decision for review. A decision borrows its names from the policy and
//! allocates nothing; it serializes (serde) into the record the composing
//! layer writes to the audit log, and holds no PHI.

use carevox_redact::Pii;
use serde::Serialize;

use crate::policy::{
    ActionId, AttrKind, Cond, Effect, LocationId, NetworkId, Policy, Relation, ResourceTypeId,
    RoleSet, RuleCore, Side, SiteId,
};
use crate::rbac::RbacError;

/// A user, as the caller's identity store numbers them. A number, never a
/// name: it may appear in decisions and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UserId(pub u64);

/// A patient, as the caller's records number them. The number is PHI: it is
/// held in a [`Pii`] and never printed by `Debug`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PatientId(Pii<u64>);

impl PatientId {
    /// The patient with record number `id`.
    #[must_use]
    pub const fn new(id: u64) -> Self {
        PatientId(Pii::new(id))
    }

    /// The record number. Never pass it to a log.
    #[must_use]
    pub const fn get(self) -> u64 {
        *self.0.expose()
    }
}

/// A care team, as the caller's relationship store numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TeamId(pub u32);

/// Who asks: the facts about the principal a decision needs.
///
/// A principal can only be made in ways that keep separation of duty:
/// [`Session::principal`](crate::Session::principal), from a session whose
/// roles were activated under the NIST rules, or [`Principal::new`], which
/// checks every static and dynamic separation-of-duty set of the policy.
/// [`Policy::decide`] checks them again, so a principal carried over from
/// another policy cannot get past them either.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    user: UserId,
    roles: RoleSet,
    mfa: bool,
    patient: Option<PatientId>,
    care_teams: &'a [TeamId],
}

impl<'a> Principal<'a> {
    /// A principal holding the roles of `active` (and all they inherit),
    /// after checking them against every static and dynamic
    /// separation-of-duty set of `policy`.
    ///
    /// `mfa` says whether the login passed a second factor; `patient` is the
    /// user's own patient record, if they are a patient; `care_teams` are the
    /// care teams the user is on now (from the caller's relationship store).
    ///
    /// # Errors
    ///
    /// [`RbacError::UnknownRole`] for a role not of `policy`;
    /// [`RbacError::StaticSod`] or [`RbacError::DynamicSod`] when the roles
    /// break a separation-of-duty set.
    ///
    /// ```
    /// use carevox_authz::{HOSPITAL_POLICY, Policy, Principal, RbacError, UserId};
    ///
    /// let policy = Policy::from_toml(HOSPITAL_POLICY)?;
    /// let roles = policy.role_set(&["administrator", "auditor"]).expect("declared");
    /// let refused = Principal::new(&policy, UserId(7), roles, true, None, &[]);
    /// assert!(matches!(refused, Err(RbacError::StaticSod { .. })));
    /// # Ok::<(), carevox_authz::PolicyError>(())
    /// ```
    pub fn new(
        policy: &Policy,
        user: UserId,
        active: RoleSet,
        mfa: bool,
        patient: Option<PatientId>,
        care_teams: &'a [TeamId],
    ) -> Result<Self, RbacError> {
        let roles = policy.closure_of(active)?;
        policy.check_sod(roles)?;
        Ok(Principal {
            user,
            roles,
            mfa,
            patient,
            care_teams,
        })
    }

    /// Built by a session, whose activations kept separation of duty.
    pub(crate) fn from_session(
        user: UserId,
        roles: RoleSet,
        mfa: bool,
        patient: Option<PatientId>,
        care_teams: &'a [TeamId],
    ) -> Self {
        Principal {
            user,
            roles,
            mfa,
            patient,
            care_teams,
        }
    }

    /// The user.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// The principal's roles with every role they inherit.
    pub fn roles(&self) -> RoleSet {
        self.roles
    }

    /// Whether the session was authenticated with a second factor.
    pub fn mfa(&self) -> bool {
        self.mfa
    }

    /// The patient record that is this user's own, if the user is a patient.
    pub fn patient(&self) -> Option<PatientId> {
        self.patient
    }

    /// The care teams the user is on now.
    pub fn care_teams(&self) -> &'a [TeamId] {
        self.care_teams
    }
}

/// Where a request comes from, or where a resource belongs: the attributes
/// that rule conditions test (`request.site == resource.site`,
/// `request.network in ["clinic-lan", "vpn"]`). Each is an id interned by
/// the policy ([`Policy::site`], [`Policy::location`], [`Policy::network`]);
/// `None` when unknown or not declared by the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// The site (clinic, hospital) of the network.
    pub site: Option<SiteId>,
    /// The location inside a site (ward, room, department).
    pub location: Option<LocationId>,
    /// The network the request comes from.
    pub network: Option<NetworkId>,
}

impl Attributes {
    /// No attribute known.
    pub const NONE: Attributes = Attributes {
        site: None,
        location: None,
        network: None,
    };

    fn get(&self, kind: AttrKind) -> Option<u16> {
        match kind {
            AttrKind::Site => self.site.map(SiteId::raw),
            AttrKind::Location => self.location.map(LocationId::raw),
            AttrKind::Network => self.network.map(NetworkId::raw),
        }
    }
}

/// What is asked for: a resource of some type, about a patient.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    /// The resource type (voicemail, recording...).
    pub kind: ResourceTypeId,
    /// The patient the resource is about, if any.
    pub owner: Option<PatientId>,
    /// The care teams of that patient, from the caller's relationship store.
    pub care_teams: &'a [TeamId],
    /// Whether the resource holds electronic protected health information.
    pub ephi: bool,
    /// Where the resource belongs (its site, location).
    pub attributes: Attributes,
}

/// An emergency access grant: a stated reason and a limited time.
///
/// The reason is checked only for being present (not blank); it is never
/// copied into the decision, since it may name a patient, and `Debug` never
/// shows it. The composing layer writes it to the audit log beside the
/// decision.
#[derive(Debug, Clone, Copy)]
pub struct BreakGlass<'a> {
    /// Why the emergency access is needed.
    pub reason: Pii<&'a str>,
    /// When the grant starts, seconds since the Unix epoch.
    pub issued_at: u64,
    /// When the grant ends (exclusive), seconds since the Unix epoch.
    pub expires_at: u64,
}

/// One access request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who asks.
    pub principal: Principal<'a>,
    /// What they want to do.
    pub action: ActionId,
    /// To what.
    pub resource: Resource<'a>,
    /// Where the request comes from (site, location, network). The site
    /// also picks the time zone of `hours` conditions.
    pub attributes: Attributes,
    /// When, in seconds since the Unix epoch (the caller's clock).
    pub now: u64,
    /// An emergency access grant, if the user invoked one.
    pub break_glass: Option<BreakGlass<'a>>,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Access granted.
    Allow,
    /// Access refused.
    Deny,
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason<'p> {
    /// A permit rule matched and no forbid did.
    Permitted {
        /// The id of the permit rule.
        rule: &'p str,
    },
    /// A forbid rule matched: no permit can override it.
    Forbidden {
        /// The id of the forbid rule.
        rule: &'p str,
    },
    /// No rule permitted the request (and none forbade it).
    /// [`Decision::nearest`] and [`Decision::unmet`] say what was missing.
    NotPermitted,
    /// The principal's roles break a separation-of-duty set of the policy:
    /// nothing is decided for such a principal.
    SeparationOfDuty {
        /// The name of the set.
        set: &'p str,
    },
}

/// Conditions a request failed, as a compact bitset: what a denied request
/// lacked to be permitted. Serializes as a list of names
/// (`["outside_hours", "wrong_site"]`); holds no PHI by construction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Unmet(u16);

impl Unmet {
    /// Nothing unmet.
    pub const NONE: Unmet = Unmet(0);
    /// The principal holds none of the rule's roles.
    pub const ROLE: Unmet = Unmet(1);
    /// The principal holds a role the rule excepts.
    pub const EXCEPTED_ROLE: Unmet = Unmet(1 << 1);
    /// The user is not on a care team of the patient.
    pub const CARE_TEAM: Unmet = Unmet(1 << 2);
    /// The resource is not the user's own.
    pub const NOT_OWN: Unmet = Unmet(1 << 3);
    /// The resource's ePHI flag is not the one the rule names.
    pub const EPHI: Unmet = Unmet(1 << 4);
    /// The session's MFA is not what the rule needs (usually: no MFA).
    pub const MFA: Unmet = Unmet(1 << 5);
    /// The local time is outside the rule's hours.
    pub const OUTSIDE_HOURS: Unmet = Unmet(1 << 6);
    /// A site condition failed.
    pub const WRONG_SITE: Unmet = Unmet(1 << 7);
    /// A location condition failed.
    pub const WRONG_LOCATION: Unmet = Unmet(1 << 8);
    /// A network condition failed.
    pub const WRONG_NETWORK: Unmet = Unmet(1 << 9);
    /// The rule needs a valid break-the-glass grant.
    pub const BREAK_GLASS: Unmet = Unmet(1 << 10);
    /// The principal's roles break separation of duty.
    pub const SEPARATION_OF_DUTY: Unmet = Unmet(1 << 11);

    const NAMES: [(Unmet, &'static str); 12] = [
        (Unmet::ROLE, "role"),
        (Unmet::EXCEPTED_ROLE, "excepted_role"),
        (Unmet::CARE_TEAM, "not_on_care_team"),
        (Unmet::NOT_OWN, "not_own_record"),
        (Unmet::EPHI, "ephi"),
        (Unmet::MFA, "mfa"),
        (Unmet::OUTSIDE_HOURS, "outside_hours"),
        (Unmet::WRONG_SITE, "wrong_site"),
        (Unmet::WRONG_LOCATION, "wrong_location"),
        (Unmet::WRONG_NETWORK, "wrong_network"),
        (Unmet::BREAK_GLASS, "break_glass"),
        (Unmet::SEPARATION_OF_DUTY, "separation_of_duty"),
    ];

    /// Whether every condition of `other` is in `self`.
    pub fn contains(self, other: Unmet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether nothing is unmet.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many conditions are unmet.
    pub fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// The names of the unmet conditions, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Unmet::NAMES
            .into_iter()
            .filter(move |(flag, _)| self.contains(*flag))
            .map(|(_, name)| name)
    }

    fn with(self, other: Unmet) -> Unmet {
        Unmet(self.0 | other.0)
    }
}

/// For serde's `skip_serializing_if`, which passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn nothing_unmet(unmet: &Unmet) -> bool {
    unmet.is_empty()
}

impl std::ops::BitOr for Unmet {
    type Output = Unmet;
    fn bitor(self, other: Unmet) -> Unmet {
        self.with(other)
    }
}

// Not a redaction: prints the names of the unmet conditions, not the bits.
impl std::fmt::Debug for Unmet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

impl std::fmt::Display for Unmet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for name in self.names() {
            if !first {
                f.write_str(", ")?;
            }
            f.write_str(name)?;
            first = false;
        }
        Ok(())
    }
}

impl Serialize for Unmet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

/// What became of a presented break-the-glass grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakGlassUse {
    /// No grant was presented.
    None,
    /// The grant was valid and a break-the-glass permit granted the access.
    Used,
    /// The grant was valid but not needed, or no emergency permit applied.
    Unused,
    /// The grant had a blank reason.
    NoReason,
    /// The grant was not yet valid or had expired at the request's time.
    Expired,
    /// The grant lasts longer than the policy allows, or the policy has none.
    TooLong,
}

/// The answer to a [`Request`]: allow or deny, and why.
///
/// A decision holds rule and set names of the policy and flags, never a
/// patient id, a user name or free text from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Decision<'p> {
    /// Allow or deny.
    pub verdict: Verdict,
    /// The rule that decided, or that nothing permitted.
    pub reason: Reason<'p>,
    /// What became of a presented break-the-glass grant.
    pub break_glass: BreakGlassUse,
    /// Whether the access must be reviewed: set whenever a break-the-glass
    /// grant was presented, used or not.
    pub review: bool,
    /// For [`Reason::NotPermitted`]: the permit for this resource type and
    /// action that came nearest (fewest unmet conditions, the first in the
    /// file on a tie); `None` when none exists. Left out of the serialized
    /// form when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nearest: Option<&'p str>,
    /// For [`Reason::NotPermitted`]: the conditions the nearest permit
    /// failed; for [`Reason::SeparationOfDuty`]: that flag. Empty otherwise,
    /// and then left out of the serialized form.
    #[serde(skip_serializing_if = "nothing_unmet")]
    pub unmet: Unmet,
}

impl Decision<'_> {
    /// Whether access is granted.
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// The id of the rule that decided, if one did.
    pub fn rule(&self) -> Option<&str> {
        match self.reason {
            Reason::Permitted { rule } | Reason::Forbidden { rule } => Some(rule),
            Reason::NotPermitted | Reason::SeparationOfDuty { .. } => None,
        }
    }
}

/// Facts of one request computed at most once, when a rule first needs them.
struct Lazy {
    /// The local minute of the day; `Some(None)` when the time is out of
    /// the time zone database's range.
    minute: Option<Option<u16>>,
    care_team: Option<bool>,
}

impl Policy {
    /// Decides `request`. Allocation-free; never reads a clock.
    pub fn decide<'p>(&'p self, request: &Request<'_>) -> Decision<'p> {
        let grant = self.check_grant(request);
        let review = request.break_glass.is_some();
        let decision = |verdict, reason, break_glass| Decision {
            verdict,
            reason,
            break_glass,
            review,
            nearest: None,
            unmet: Unmet::NONE,
        };
        let unused = if grant == BreakGlassUse::Used {
            BreakGlassUse::Unused
        } else {
            grant
        };
        // Separation of duty, again: a principal breaking it gets nothing.
        // Every set has a limit of at least 2, so fewer than 2 roles named
        // by any set cannot break one (the common, fast case).
        let roles = request.principal.roles;
        if roles.intersection(self.sod_roles).len() >= 2
            && let Some(set) = self.broken_sod(roles)
        {
            return Decision {
                unmet: Unmet::SEPARATION_OF_DUTY,
                ..decision(
                    Verdict::Deny,
                    Reason::SeparationOfDuty { set: &set.name },
                    unused,
                )
            };
        }
        let Some(slot) = self.slot(request.resource.kind, request.action) else {
            return decision(Verdict::Deny, Reason::NotPermitted, unused);
        };
        let mut lazy = Lazy {
            minute: None,
            care_team: None,
        };
        // The ranges are built by the compiler from the same vector, so
        // they always resolve; were one not to, the forbids fail closed and
        // the permits grant nothing.
        let Some(forbids) = self.rules_in(slot.forbids) else {
            return decision(Verdict::Deny, Reason::NotPermitted, unused);
        };
        // Empty permit lists can only refuse more: they never widen access.
        let permits = self.rules_in(slot.permits).unwrap_or_default();
        let glass = self.rules_in(slot.glass).unwrap_or_default();
        for rule in forbids {
            if self
                .check::<false>(rule, request, &mut lazy, Effect::Forbid)
                .is_empty()
            {
                return decision(
                    Verdict::Deny,
                    Reason::Forbidden {
                        rule: self.rule_id(rule),
                    },
                    unused,
                );
            }
        }
        for rule in permits {
            if self
                .check::<false>(rule, request, &mut lazy, Effect::Permit)
                .is_empty()
            {
                return decision(
                    Verdict::Allow,
                    Reason::Permitted {
                        rule: self.rule_id(rule),
                    },
                    unused,
                );
            }
        }
        if grant == BreakGlassUse::Used {
            for rule in glass {
                if self
                    .check::<false>(rule, request, &mut lazy, Effect::Permit)
                    .is_empty()
                {
                    return decision(
                        Verdict::Allow,
                        Reason::Permitted {
                            rule: self.rule_id(rule),
                        },
                        BreakGlassUse::Used,
                    );
                }
            }
        }
        // Not permitted: name the nearest permit and what it lacked.
        let mut nearest: Option<(&RuleCore, Unmet)> = None;
        for rule in permits.iter().chain(glass) {
            let mut unmet = self.check::<true>(rule, request, &mut lazy, Effect::Permit);
            if rule.break_glass && grant != BreakGlassUse::Used {
                unmet = unmet | Unmet::BREAK_GLASS;
            }
            if nearest.is_none_or(|(_, best)| unmet.len() < best.len()) {
                nearest = Some((rule, unmet));
            }
        }
        Decision {
            nearest: nearest.map(|(rule, _)| self.rule_id(rule)),
            unmet: nearest.map_or(Unmet::NONE, |(_, unmet)| unmet),
            ..decision(Verdict::Deny, Reason::NotPermitted, unused)
        }
    }

    /// The first separation-of-duty set (static, then dynamic) that `roles`
    /// break.
    fn broken_sod(&self, roles: RoleSet) -> Option<&crate::policy::SodSet> {
        self.ssd
            .iter()
            .chain(&self.dsd)
            .find(|set| roles.intersection(set.roles).len() >= set.limit)
    }

    /// Checks `roles` (with what they inherit) against every
    /// separation-of-duty set.
    pub(crate) fn check_sod(&self, roles: RoleSet) -> Result<(), RbacError> {
        let refuse = |set: &crate::policy::SodSet| {
            // The role named is the last (by id) of the set's roles held.
            let role = roles
                .intersection(set.roles)
                .iter()
                .last()
                .and_then(|r| self.role_name(r))
                .unwrap_or("?")
                .to_owned();
            (set.name.to_string(), role)
        };
        if let Some(set) = self
            .ssd
            .iter()
            .find(|set| roles.intersection(set.roles).len() >= set.limit)
        {
            let (set, role) = refuse(set);
            return Err(RbacError::StaticSod { set, role });
        }
        if let Some(set) = self
            .dsd
            .iter()
            .find(|set| roles.intersection(set.roles).len() >= set.limit)
        {
            let (set, role) = refuse(set);
            return Err(RbacError::DynamicSod { set, role });
        }
        Ok(())
    }

    /// `Used` when a presented grant is valid now, else why not.
    fn check_grant(&self, request: &Request<'_>) -> BreakGlassUse {
        let Some(grant) = &request.break_glass else {
            return BreakGlassUse::None;
        };
        if grant.reason.expose().trim().is_empty() {
            return BreakGlassUse::NoReason;
        }
        let Some(max) = self.break_glass_max_secs else {
            return BreakGlassUse::TooLong;
        };
        if grant.expires_at.saturating_sub(grant.issued_at) > max {
            return BreakGlassUse::TooLong;
        }
        if request.now < grant.issued_at || request.now >= grant.expires_at {
            return BreakGlassUse::Expired;
        }
        BreakGlassUse::Used
    }

    /// The local minute of the day of `now` in the time zone of `site`
    /// (the policy's zone without a site); `None` past the range of the time
    /// zone database (beyond the year 9999).
    pub(crate) fn local_minute(&self, site: Option<SiteId>, now: u64) -> Option<u16> {
        let secs = i64::try_from(now).ok()?;
        let ts = jiff::Timestamp::from_second(secs).ok()?;
        let local = self.time_zone(site).to_datetime(ts);
        let hour = u16::try_from(local.hour()).ok()?;
        let minute = u16::try_from(local.minute()).ok()?;
        Some(hour * 60 + minute)
    }

    /// The rules of one range of `slot_rules`, `None` if the range does not
    /// resolve (never, for ranges the compiler built).
    fn rules_in(&self, (start, end): (u32, u32)) -> Option<&[RuleCore]> {
        let range = usize::try_from(start).ok()?..usize::try_from(end).ok()?;
        self.slot_rules.get(range)
    }

    fn rule_id(&self, rule: &RuleCore) -> &str {
        self.rules
            .get(usize::from(rule.index))
            .map_or("", |r| &*r.id)
    }

    /// The effect of the rule with id `id`, if the policy has one.
    pub fn rule_effect(&self, id: &str) -> Option<Effect> {
        self.rules.iter().find(|r| &*r.id == id).map(|r| r.effect)
    }

    /// The conditions of `rule` that `req` fails: with `ALL`, every one (to
    /// explain a denial); without, at most the first (to decide fast).
    ///
    /// Facts that cannot be known count against a permit and for a forbid:
    /// a time outside the time zone database's range is outside every
    /// permit's hours and inside every forbid's.
    #[inline]
    fn check<const ALL: bool>(
        &self,
        rule: &RuleCore,
        req: &Request<'_>,
        lazy: &mut Lazy,
        effect: Effect,
    ) -> Unmet {
        let mut unmet = Unmet::NONE;
        macro_rules! fail {
            ($flag:expr) => {{
                unmet = unmet.with($flag);
                if !ALL {
                    return unmet;
                }
            }};
        }
        let p = &req.principal;
        if let Some(roles) = rule.roles
            && !roles.intersects(p.roles)
        {
            fail!(Unmet::ROLE);
        }
        if rule.except.intersects(p.roles) {
            fail!(Unmet::EXCEPTED_ROLE);
        }
        if rule.ephi.is_some_and(|e| e != req.resource.ephi) {
            fail!(Unmet::EPHI);
        }
        if rule.mfa.is_some_and(|m| m != p.mfa) {
            fail!(Unmet::MFA);
        }
        if rule
            .when_break_glass
            .is_some_and(|w| w != req.break_glass.is_some())
        {
            fail!(Unmet::BREAK_GLASS);
        }
        if let Some((from, to)) = rule.hours {
            let minute = *lazy
                .minute
                .get_or_insert_with(|| self.local_minute(req.attributes.site, req.now));
            let inside = match minute {
                Some(m) if from < to => from <= m && m < to,
                Some(m) => m >= from || m < to,
                None => effect == Effect::Forbid,
            };
            if !inside {
                fail!(Unmet::OUTSIDE_HOURS);
            }
        }
        if rule.conds.0 != rule.conds.1 {
            // A range the compiler built always resolves; were one not to,
            // the rule would count as matching for a forbid and as failing
            // for a permit (fail closed either way).
            let conds = self.conditions_in(rule.conds);
            if conds.is_none() && effect == Effect::Permit {
                fail!(Unmet::WRONG_SITE | Unmet::WRONG_LOCATION | Unmet::WRONG_NETWORK);
            }
            for cond in conds.unwrap_or_default() {
                if let Some(kind) = self.cond_fails(cond, req) {
                    fail!(match kind {
                        AttrKind::Site => Unmet::WRONG_SITE,
                        AttrKind::Location => Unmet::WRONG_LOCATION,
                        AttrKind::Network => Unmet::WRONG_NETWORK,
                    });
                }
            }
        }
        match rule.relation {
            Relation::Any => {}
            Relation::Own => {
                if !(p.patient.is_some() && p.patient == req.resource.owner) {
                    fail!(Unmet::NOT_OWN);
                }
            }
            Relation::CareTeam => {
                let on_team = *lazy.care_team.get_or_insert_with(|| {
                    req.resource.owner.is_some()
                        && p.care_teams
                            .iter()
                            .any(|t| req.resource.care_teams.contains(t))
                });
                if !on_team {
                    fail!(Unmet::CARE_TEAM);
                }
            }
        }
        unmet
    }

    /// The conditions of one rule, `None` if the range does not resolve
    /// (never, for ranges the compiler built).
    fn conditions_in(&self, (start, end): (u32, u32)) -> Option<&[Cond]> {
        let range = usize::try_from(start).ok()?..usize::try_from(end).ok()?;
        self.conditions.get(range)
    }

    /// The kind of attribute of a failed condition, `None` if it holds.
    ///
    /// `==` and `in` hold only when the attribute is known and equal (a
    /// member); `!=` and `not in` are their negations, so they hold when
    /// the attribute is unknown.
    fn cond_fails(&self, cond: &Cond, req: &Request<'_>) -> Option<AttrKind> {
        let side = |s: Side| match s {
            Side::Request => &req.attributes,
            Side::Resource => &req.resource.attributes,
        };
        let (kind, holds) = match *cond {
            Cond::Same { kind, negate } => {
                let a = req.attributes.get(kind);
                let b = req.resource.attributes.get(kind);
                (kind, (a.is_some() && a == b) != negate)
            }
            Cond::OneOf {
                side: s,
                kind,
                negate,
                ref values,
            } => {
                let v = side(s).get(kind);
                (kind, v.is_some_and(|v| values.contains(&v)) != negate)
            }
        };
        (!holds).then_some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    const POLICY: &str = r#"version = 1
utc_offset_minutes = -60
[[roles]]
name = "r"
[[resources]]
name = "x"
actions = ["a"]
[[rules]]
id = "night"
effect = "permit"
roles = ["r"]
resources = ["x"]
actions = ["a"]
hours = { from = "22:00", to = "06:00" }
"#;

    #[test]
    fn local_minute_applies_the_offset_and_wraps() {
        let p = Policy::from_toml(POLICY).unwrap();
        assert_eq!(p.local_minute(None, 0), Some(23 * 60));
        assert_eq!(p.local_minute(None, 3600), Some(0));
        assert_eq!(p.local_minute(None, 86_400 + 90 * 60), Some(30));
        // Past the year 9999 the time cannot be placed in a day.
        assert_eq!(p.local_minute(None, u64::MAX), None);
        assert_eq!(p.local_minute(None, 300_000_000_000), None);
    }

    #[test]
    fn window_across_midnight() {
        let p = Policy::from_toml(POLICY).unwrap();
        let roles = p.role_set(&["r"]).unwrap();
        let at = |now| {
            p.decide(&Request {
                principal: Principal::new(&p, UserId(1), roles, true, None, &[]).unwrap(),
                action: p.action("a").unwrap(),
                resource: Resource {
                    kind: p.resource_type("x").unwrap(),
                    owner: None,
                    care_teams: &[],
                    ephi: false,
                    attributes: Attributes::NONE,
                },
                attributes: Attributes::NONE,
                now,
                break_glass: None,
            })
        };
        // Local time is UTC-1: 23:00 UTC is 22:00 local, 07:00 UTC is 06:00.
        assert!(!at(22 * 3600 - 1).is_allowed());
        assert_eq!(at(22 * 3600 - 1).unmet, Unmet::OUTSIDE_HOURS);
        assert_eq!(at(22 * 3600 - 1).nearest, Some("night"));
        assert!(at(23 * 3600).is_allowed());
        assert!(at(3 * 3600).is_allowed());
        assert!(at(7 * 3600 - 1).is_allowed());
        assert!(!at(7 * 3600).is_allowed());
        // A time that cannot be placed is outside a permit's hours.
        assert!(!at(u64::MAX).is_allowed());
    }

    #[test]
    fn unmet_names_and_serializes_without_phi() {
        let u = Unmet::OUTSIDE_HOURS | Unmet::WRONG_SITE | Unmet::MFA;
        assert_eq!(u.len(), 3);
        assert_eq!(u.to_string(), "mfa, outside_hours, wrong_site");
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"["mfa","outside_hours","wrong_site"]"#
        );
        assert!(Unmet::NONE.is_empty());
    }
}
