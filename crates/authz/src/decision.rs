//! Requests and decisions.
//!
//! A [`Request`] says who (a [`Principal`]: user, the roles of their session,
//! whether the session passed multi-factor authentication, their care teams),
//! does what ([`ActionId`]) to what ([`Resource`]: type, owning patient, care
//! teams of that patient, ePHI or not), when (seconds since the Unix epoch),
//! and whether an emergency [`BreakGlass`] grant is presented.
//!
//! [`Policy::decide`] answers with a [`Decision`]: allow or deny, and why.
//! Forbid rules win over every permit; without a matching permit the answer
//! is [`Reason::NotPermitted`]. Permits that need break-the-glass are tried
//! only when no ordinary permit matches, and any presented grant flags the
//! decision for review. A decision borrows its rule id from the policy and
//! allocates nothing; it serializes (serde) into the record the composing
//! layer writes to the audit log.

use serde::Serialize;

use crate::policy::{ActionId, Effect, Policy, Relation, ResourceTypeId, RoleSet, RuleCore};

/// A user, as the caller's identity store numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct UserId(pub u64);

/// A patient, as the caller's records number them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PatientId(pub u64);

/// A care team, as the caller's relationship store numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct TeamId(pub u32);

/// Who asks: the facts about the principal a decision needs.
///
/// Build one from a [`Session`](crate::Session) with
/// [`Session::principal`](crate::Session::principal), which keeps the NIST
/// rules for role activation; `roles` must already hold the inherited roles
/// (as [`Policy::closure_of`] computes them).
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// The user.
    pub user: UserId,
    /// The session's roles with every role they inherit.
    pub roles: RoleSet,
    /// Whether the session was authenticated with a second factor.
    pub mfa: bool,
    /// The patient record that is this user's own, if the user is a patient.
    pub patient: Option<PatientId>,
    /// The care teams the user is on now, from the caller's relationship store.
    pub care_teams: &'a [TeamId],
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
}

/// An emergency access grant: a stated reason and a limited time.
///
/// The reason is checked only for being present (not blank); it is never
/// copied into the decision, since it may name a patient. The composing
/// layer writes it to the audit log beside the decision.
#[derive(Clone, Copy)]
pub struct BreakGlass<'a> {
    /// Why the emergency access is needed.
    pub reason: &'a str,
    /// When the grant starts, seconds since the Unix epoch.
    pub issued_at: u64,
    /// When the grant ends (exclusive), seconds since the Unix epoch.
    pub expires_at: u64,
}

impl std::fmt::Debug for BreakGlass<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BreakGlass")
            .field("reason", &"<redacted>")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
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
    NotPermitted,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
            Reason::NotPermitted => None,
        }
    }
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
        };
        let unused = if grant == BreakGlassUse::Used {
            BreakGlassUse::Unused
        } else {
            grant
        };
        let Some(slot) = self.slot(request.resource.kind, request.action) else {
            return decision(Verdict::Deny, Reason::NotPermitted, unused);
        };
        let minute = self.minute_of_day(request.now);
        let mut care_team = None;
        for rule in self.rules_in(slot.forbids) {
            if matches(rule, request, minute, &mut care_team) {
                return decision(
                    Verdict::Deny,
                    Reason::Forbidden {
                        rule: self.rule_id(rule),
                    },
                    unused,
                );
            }
        }
        for rule in self.rules_in(slot.permits) {
            if matches(rule, request, minute, &mut care_team) {
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
            for rule in self.rules_in(slot.glass) {
                if matches(rule, request, minute, &mut care_team) {
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
        decision(Verdict::Deny, Reason::NotPermitted, unused)
    }

    /// `Used` when a presented grant is valid now, else why not.
    fn check_grant(&self, request: &Request<'_>) -> BreakGlassUse {
        let Some(grant) = &request.break_glass else {
            return BreakGlassUse::None;
        };
        if grant.reason.trim().is_empty() {
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

    fn minute_of_day(&self, now: u64) -> u16 {
        let now = i128::from(now) + i128::from(self.utc_offset_secs);
        // rem_euclid keeps it in 0..86400, so the minute fits in u16.
        u16::try_from(now.rem_euclid(86_400) / 60).unwrap_or(0)
    }

    fn rules_in(&self, (start, end): (u32, u32)) -> &[RuleCore] {
        let range = usize::try_from(start).unwrap_or(usize::MAX)
            ..usize::try_from(end).unwrap_or(usize::MAX);
        self.slot_rules.get(range).unwrap_or(&[])
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
}

fn matches(rule: &RuleCore, req: &Request<'_>, minute: u16, care_team: &mut Option<bool>) -> bool {
    let p = &req.principal;
    if let Some(roles) = rule.roles {
        if !roles.intersects(p.roles) {
            return false;
        }
    }
    if rule.ephi.is_some_and(|e| e != req.resource.ephi) {
        return false;
    }
    if rule.mfa.is_some_and(|m| m != p.mfa) {
        return false;
    }
    if let Some((from, to)) = rule.hours {
        let inside = if from < to {
            from <= minute && minute < to
        } else {
            minute >= from || minute < to
        };
        if !inside {
            return false;
        }
    }
    match rule.relation {
        Relation::Any => true,
        Relation::Own => p.patient.is_some() && p.patient == req.resource.owner,
        Relation::CareTeam => *care_team.get_or_insert_with(|| {
            req.resource.owner.is_some()
                && p.care_teams
                    .iter()
                    .any(|t| req.resource.care_teams.contains(t))
        }),
    }
}

#[cfg(test)]
mod tests {
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
    fn minute_of_day_applies_the_offset_and_wraps() {
        let p = Policy::from_toml(POLICY).unwrap();
        assert_eq!(p.minute_of_day(0), 23 * 60);
        assert_eq!(p.minute_of_day(3600), 0);
        assert_eq!(p.minute_of_day(86_400 + 90 * 60), 30);
        assert_eq!(p.minute_of_day(u64::MAX), p.minute_of_day(u64::MAX));
    }

    #[test]
    fn window_across_midnight() {
        let p = Policy::from_toml(POLICY).unwrap();
        let roles = p.role_set(&["r"]).unwrap();
        let at = |now| {
            p.decide(&super::Request {
                principal: super::Principal {
                    user: super::UserId(1),
                    roles,
                    mfa: true,
                    patient: None,
                    care_teams: &[],
                },
                action: p.action("a").unwrap(),
                resource: super::Resource {
                    kind: p.resource_type("x").unwrap(),
                    owner: None,
                    care_teams: &[],
                    ephi: false,
                },
                now,
                break_glass: None,
            })
            .is_allowed()
        };
        // Local time is UTC-1: 23:00 UTC is 22:00 local, 07:00 UTC is 06:00.
        assert!(!at(22 * 3600 - 1));
        assert!(at(23 * 3600));
        assert!(at(3 * 3600));
        assert!(at(7 * 3600 - 1));
        assert!(!at(7 * 3600));
    }
}
