//! Policies: the file format, its validation and the compiled, immutable form.
//!
//! A policy is written as TOML (see `policies/hospital.toml` for a complete
//! one) and turned into a [`Policy`] by [`Policy::from_toml`]. Compilation
//! checks the whole file and reports every problem it finds, each with its
//! line, column and path inside the file, instead of stopping at the first.
//!
//! The compiled [`Policy`] is immutable and `Send + Sync`: names are interned
//! into small integer ids, each role's inherited roles are a precomputed
//! bitset ([`RoleSet`]) and the rules are grouped per (resource type, action)
//! so that a decision looks at the few rules that can apply and allocates
//! nothing.

use std::collections::HashMap;
use std::fmt;

use jiff::tz::{Offset, TimeZone};
use serde::Deserialize;
use toml::Spanned;

/// The policy file format version this crate reads.
pub const FORMAT_VERSION: u32 = 1;

/// The most roles a policy may declare (the width of a [`RoleSet`]).
pub const MAX_ROLES: usize = 128;

/// The most rules a policy may declare.
pub const MAX_RULES: usize = 65_535;

/// A role, interned by a compiled [`Policy`]. Look one up with [`Policy::role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleId(u8);

impl RoleId {
    /// The role's position in the policy's role list.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// An action name, interned by a compiled [`Policy`]. Look one up with [`Policy::action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionId(u16);

/// A resource type, interned by a compiled [`Policy`]. Look one up with
/// [`Policy::resource_type`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceTypeId(u16);

/// A site of the clinic network, declared in the policy's `[[sites]]`. Look
/// one up with [`Policy::site`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId(u16);

impl SiteId {
    pub(crate) fn raw(self) -> u16 {
        self.0
    }
}

/// A location (a ward, a room, a department), declared in the policy's
/// `locations` list. Look one up with [`Policy::location`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocationId(u16);

impl LocationId {
    pub(crate) fn raw(self) -> u16 {
        self.0
    }
}

/// A network a request can come from, declared in the policy's `networks`
/// list. Look one up with [`Policy::network`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId(u16);

impl NetworkId {
    pub(crate) fn raw(self) -> u16 {
        self.0
    }
}

/// A set of roles of one policy, as a bitset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RoleSet(u128);

impl RoleSet {
    /// The empty set.
    pub const EMPTY: RoleSet = RoleSet(0);

    /// Whether `role` is in the set.
    pub fn contains(self, role: RoleId) -> bool {
        self.0 & (1u128 << role.0) != 0
    }

    /// The set with `role` added.
    #[must_use]
    pub fn with(self, role: RoleId) -> RoleSet {
        RoleSet(self.0 | (1u128 << role.0))
    }

    /// The set with `role` removed.
    #[must_use]
    pub fn without(self, role: RoleId) -> RoleSet {
        RoleSet(self.0 & !(1u128 << role.0))
    }

    /// The union of two sets.
    #[must_use]
    pub fn union(self, other: RoleSet) -> RoleSet {
        RoleSet(self.0 | other.0)
    }

    /// The intersection of two sets.
    #[must_use]
    pub fn intersection(self, other: RoleSet) -> RoleSet {
        RoleSet(self.0 & other.0)
    }

    /// Whether the two sets share a role.
    pub fn intersects(self, other: RoleSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether every role of `self` is in `other`.
    pub fn is_subset(self, other: RoleSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The number of roles in the set.
    pub fn len(self) -> usize {
        // At most 128: the conversion cannot fail.
        usize::try_from(self.0.count_ones()).unwrap_or(usize::MAX)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The roles in the set, in id order.
    pub fn iter(self) -> impl Iterator<Item = RoleId> {
        (0u8..128)
            .filter(move |i| self.0 & (1u128 << i) != 0)
            .map(RoleId)
    }
}

/// Where in a policy file something is: line and column (both from 1) and a
/// path such as `rules[3].roles[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Line, counted from 1.
    pub line: u32,
    /// Column in characters, counted from 1.
    pub column: u32,
    /// The path of the value inside the file, e.g. `roles[2].inherits[0]`.
    pub path: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "line {}, column {}", self.line, self.column)
        } else {
            write!(
                f,
                "line {}, column {} ({})",
                self.line, self.column, self.path
            )
        }
    }
}

/// What is wrong with one place of a policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationErrorKind {
    /// The file's `version` is not one this crate reads.
    #[error(
        "unsupported policy format version {found} (this crate reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion {
        /// The version found in the file.
        found: u32,
    },
    /// A role, resource type, separation-of-duty set or rule id is declared twice.
    #[error("duplicate {what} `{name}`")]
    Duplicate {
        /// What kind of name: `role`, `resource`, `action`, `sod set` or `rule`.
        what: &'static str,
        /// The repeated name.
        name: String,
    },
    /// A role name that the policy does not declare.
    #[error("unknown role `{name}`")]
    UnknownRole {
        /// The unknown name.
        name: String,
    },
    /// A resource type name that the policy does not declare.
    #[error("unknown resource type `{name}`")]
    UnknownResource {
        /// The unknown name.
        name: String,
    },
    /// An action that none of the rule's resource types declares.
    #[error("action `{action}` is not declared for resource type `{resource}`")]
    UnknownAction {
        /// The action.
        action: String,
        /// The resource type that lacks it.
        resource: String,
    },
    /// The role hierarchy has a cycle.
    #[error("role hierarchy cycle: {}", .roles.join(" -> "))]
    HierarchyCycle {
        /// The roles along the cycle, the first repeated at the end.
        roles: Vec<String>,
    },
    /// A separation-of-duty set that can never be satisfied, or a role that
    /// alone breaks it through the hierarchy.
    #[error("separation of duty conflict in `{set}`: {detail}")]
    SodConflict {
        /// The separation-of-duty set.
        set: String,
        /// What conflicts.
        detail: String,
    },
    /// A rule that no request can ever match.
    #[error("rule `{rule}` can never apply: {why}")]
    RuleNeverApplies {
        /// The rule id.
        rule: String,
        /// Why not.
        why: String,
    },
    /// A time of day that is not `HH:MM` in 00:00..=24:00.
    #[error("invalid time of day `{value}` (expected HH:MM between 00:00 and 24:00)")]
    InvalidTime {
        /// The text found.
        value: String,
    },
    /// A value out of its allowed range.
    #[error("{what} out of range: {detail}")]
    OutOfRange {
        /// Which setting.
        what: &'static str,
        /// The allowed range.
        detail: String,
    },
    /// A rule uses break-the-glass but the policy has no `[break_glass]` section.
    #[error("rule `{rule}` needs break-the-glass, but the policy has no [break_glass] section")]
    BreakGlassNotConfigured {
        /// The rule id.
        rule: String,
    },
    /// More roles than a [`RoleSet`] holds.
    #[error("too many roles: {count} (at most {MAX_ROLES})")]
    TooManyRoles {
        /// How many roles the file declares.
        count: usize,
    },
    /// More rules than a policy holds.
    #[error("too many rules: {count} (at most {MAX_RULES})")]
    TooManyRules {
        /// How many rules the file declares.
        count: usize,
    },
    /// A time zone name that the bundled IANA time zone database lacks.
    #[error("unknown time zone `{name}` (expected an IANA name such as `America/New_York`)")]
    UnknownTimeZone {
        /// The name found.
        name: String,
    },
    /// Two settings that exclude each other are both given.
    #[error("conflicting settings: {detail}")]
    Conflict {
        /// Which settings, and why.
        detail: String,
    },
    /// A site, location or network that the policy does not declare.
    #[error("unknown {what} `{name}`")]
    UnknownValue {
        /// `site`, `location` or `network`.
        what: &'static str,
        /// The unknown name.
        name: String,
    },
    /// A condition that is not of the condition grammar, or compares values
    /// of different kinds.
    #[error("rule `{rule}`: bad condition: {detail}")]
    BadCondition {
        /// The rule id.
        rule: String,
        /// What is wrong.
        detail: String,
    },
    /// A rule with the same effect, principals, resource types, actions and
    /// conditions as an earlier one.
    #[error("rule `{rule}` repeats rule `{same_as}`")]
    DuplicateRule {
        /// The later rule.
        rule: String,
        /// The earlier rule it repeats.
        same_as: String,
    },
}

/// One problem found in a policy file, with its location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {kind}")]
pub struct ValidationError {
    /// Where the problem is.
    pub location: Location,
    /// What the problem is.
    pub kind: ValidationErrorKind,
}

/// Why a policy could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not TOML, or not of this format's shape (a missing field,
    /// a value of the wrong type, an unknown key).
    #[error("policy syntax error at {location}: {message}")]
    Syntax {
        /// Where the parser stopped.
        location: Location,
        /// The parser's message.
        message: String,
    },
    /// The file parsed but breaks the policy's rules; every problem is listed.
    #[error("policy is invalid ({} problem(s)); first: {}", .0.len(), first(.0))]
    Invalid(Vec<ValidationError>),
}

fn first(errors: &[ValidationError]) -> String {
    // `Invalid` always carries at least one error; were it empty, an empty
    // "first" would still say nothing false.
    errors.first().map(ToString::to_string).unwrap_or_default()
}

impl PolicyError {
    /// The validation errors, empty for a syntax error.
    pub fn validation_errors(&self) -> &[ValidationError] {
        match self {
            PolicyError::Invalid(errors) => errors,
            PolicyError::Syntax { .. } => &[],
        }
    }
}

// ---------------------------------------------------------------------------
// The file model, as serde reads it.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Spanned<u32>,
    #[serde(default)]
    time_zone: Option<Spanned<String>>,
    #[serde(default)]
    utc_offset_minutes: Option<Spanned<i32>>,
    #[serde(default)]
    locations: Vec<Spanned<String>>,
    #[serde(default)]
    networks: Vec<Spanned<String>>,
    #[serde(default)]
    sites: Vec<Spanned<RawSite>>,
    #[serde(default)]
    break_glass: Option<Spanned<RawBreakGlass>>,
    #[serde(default)]
    roles: Vec<Spanned<RawRole>>,
    #[serde(default)]
    resources: Vec<Spanned<RawResource>>,
    #[serde(default)]
    sod: Vec<Spanned<RawSod>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreakGlass {
    max_minutes: Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    time_zone: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    name: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    inherits: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    name: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    actions: Vec<Spanned<String>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawSodKind {
    Static,
    Dynamic,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSod {
    name: Spanned<String>,
    kind: RawSodKind,
    roles: Vec<Spanned<String>>,
    #[serde(default)]
    limit: Option<Spanned<u32>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawEffect {
    Permit,
    Forbid,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum RawRelation {
    Any,
    CareTeam,
    #[serde(rename = "self")]
    Own,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHours {
    from: Spanned<String>,
    to: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    effect: RawEffect,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    roles: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    except_roles: Option<Vec<Spanned<String>>>,
    resources: Vec<Spanned<String>>,
    actions: Vec<Spanned<String>>,
    #[serde(default)]
    relation: Option<RawRelation>,
    #[serde(default)]
    ephi: Option<bool>,
    #[serde(default)]
    mfa: Option<bool>,
    #[serde(default)]
    hours: Option<Spanned<RawHours>>,
    #[serde(default)]
    break_glass: Option<Spanned<bool>>,
    #[serde(default)]
    when_break_glass: Option<Spanned<bool>>,
    #[serde(default)]
    conditions: Vec<Spanned<String>>,
}

// ---------------------------------------------------------------------------
// The compiled form.

/// Whether a rule permits or forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The rule grants access when it matches (unless a forbid matches too).
    Permit,
    /// The rule refuses access when it matches, whatever permits match.
    Forbid,
}

/// The relationship a rule requires between principal and resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Relation {
    Any,
    CareTeam,
    Own,
}

/// Which side of a request an attribute is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Side {
    Request,
    Resource,
}

/// The attributes conditions can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum AttrKind {
    Site,
    Location,
    Network,
}

impl AttrKind {
    fn name(self) -> &'static str {
        match self {
            AttrKind::Site => "site",
            AttrKind::Location => "location",
            AttrKind::Network => "network",
        }
    }
}

/// One attribute condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cond {
    /// `request.<kind> == resource.<kind>` (or `!=` when `negate`).
    Same { kind: AttrKind, negate: bool },
    /// `<side>.<kind> in [values]` (or `not in` / `!=` when `negate`);
    /// `values` is never empty.
    OneOf {
        side: Side,
        kind: AttrKind,
        negate: bool,
        values: Box<[u16]>,
    },
}

/// One rule as the decision procedure reads it: small and `Copy`, stored
/// contiguously per (resource type, action).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleCore {
    /// Index into `Policy::rules`.
    pub(crate) index: u16,
    /// `None`: any principal; otherwise the roles (through the hierarchy).
    pub(crate) roles: Option<RoleSet>,
    /// Principals holding any of these roles (through the hierarchy) never match.
    pub(crate) except: RoleSet,
    pub(crate) relation: Relation,
    pub(crate) ephi: Option<bool>,
    pub(crate) mfa: Option<bool>,
    /// Local minutes of the day `[from, to)`, `to` up to 1440 (24:00);
    /// wrapping past midnight when `from > to`.
    pub(crate) hours: Option<(u16, u16)>,
    /// A permit that applies only with a valid break-the-glass grant.
    pub(crate) break_glass: bool,
    /// A forbid that applies only to requests presenting a break-the-glass
    /// grant (`Some(true)`) or only to those that do not (`Some(false)`).
    pub(crate) when_break_glass: Option<bool>,
    /// A range of `Policy::conditions`; all must hold.
    pub(crate) conds: (u32, u32),
}

/// The rules that can apply to one (resource type, action): ranges into
/// `Policy::slot_rules`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Slot {
    pub(crate) forbids: (u32, u32),
    pub(crate) permits: (u32, u32),
    pub(crate) glass: (u32, u32),
}

/// A separation-of-duty constraint: no user (static) or session (dynamic)
/// may hold `limit` or more roles of `roles`.
#[derive(Debug, Clone)]
pub(crate) struct SodSet {
    pub(crate) name: Box<str>,
    pub(crate) roles: RoleSet,
    pub(crate) limit: usize,
}

/// A declared site: its name and the time zone of its clocks.
#[derive(Debug)]
pub(crate) struct SiteInfo {
    pub(crate) name: Box<str>,
    pub(crate) zone: TimeZone,
}

#[derive(Debug)]
pub(crate) struct RuleInfo {
    pub(crate) id: Box<str>,
    pub(crate) effect: Effect,
}

/// A compiled, validated, immutable policy.
///
/// Build one with [`Policy::from_toml`]; share it between threads behind an
/// `Arc`. Decisions are made by [`Policy::decide`].
#[derive(Debug)]
pub struct Policy {
    pub(crate) role_names: Vec<Box<str>>,
    role_index: HashMap<Box<str>, RoleId>,
    /// `closure[r]`: role `r` and every role it inherits, directly or not.
    pub(crate) closure: Vec<RoleSet>,
    resource_names: Vec<Box<str>>,
    resource_index: HashMap<Box<str>, ResourceTypeId>,
    action_names: Vec<Box<str>>,
    action_index: HashMap<Box<str>, ActionId>,
    /// `slots[resource * action_names.len() + action]`.
    pub(crate) slots: Vec<Slot>,
    pub(crate) slot_rules: Vec<RuleCore>,
    pub(crate) rules: Vec<RuleInfo>,
    pub(crate) ssd: Vec<SodSet>,
    pub(crate) dsd: Vec<SodSet>,
    /// Every role named by a separation-of-duty set: a principal with at
    /// most one of them cannot break any set (limits are at least 2).
    pub(crate) sod_roles: RoleSet,
    pub(crate) break_glass_max_secs: Option<u64>,
    /// The policy's time zone: hours of requests without a site, or at a
    /// site without its own zone.
    pub(crate) zone: TimeZone,
    pub(crate) sites: Vec<SiteInfo>,
    site_index: HashMap<Box<str>, SiteId>,
    location_names: Vec<Box<str>>,
    location_index: HashMap<Box<str>, LocationId>,
    network_names: Vec<Box<str>>,
    network_index: HashMap<Box<str>, NetworkId>,
    pub(crate) conditions: Vec<Cond>,
}

impl Policy {
    /// Parses, validates and compiles a policy written in TOML.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Syntax`] when the text is not TOML of this format, and
    /// [`PolicyError::Invalid`] with every problem found otherwise.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            PolicyError::Syntax {
                location: locate(text, offset, String::new()),
                message: e.message().to_owned(),
            }
        })?;
        Compiler::new(text).compile(raw)
    }

    /// The role called `name`.
    pub fn role(&self, name: &str) -> Option<RoleId> {
        self.role_index.get(name).copied()
    }

    /// The name of `role`.
    pub fn role_name(&self, role: RoleId) -> Option<&str> {
        self.role_names.get(role.index()).map(|n| &**n)
    }

    /// Every role, in declaration order.
    pub fn roles(&self) -> impl Iterator<Item = (RoleId, &str)> {
        self.role_names
            .iter()
            .zip(0u8..)
            .map(|(name, i)| (RoleId(i), &**name))
    }

    /// The action called `name` (actions are shared between resource types).
    pub fn action(&self, name: &str) -> Option<ActionId> {
        self.action_index.get(name).copied()
    }

    /// The name of `action`.
    pub fn action_name(&self, action: ActionId) -> Option<&str> {
        self.action_names.get(usize::from(action.0)).map(|n| &**n)
    }

    /// The resource type called `name`.
    pub fn resource_type(&self, name: &str) -> Option<ResourceTypeId> {
        self.resource_index.get(name).copied()
    }

    /// The name of `resource`.
    pub fn resource_type_name(&self, resource: ResourceTypeId) -> Option<&str> {
        self.resource_names
            .get(usize::from(resource.0))
            .map(|n| &**n)
    }

    /// The roles that `role` carries: itself and every role it inherits;
    /// `None` for a role id that is not of this policy.
    pub fn inherited(&self, role: RoleId) -> Option<RoleSet> {
        self.closure.get(role.index()).copied()
    }

    /// The roles that the roles of `set` carry, through the hierarchy.
    ///
    /// # Errors
    ///
    /// [`RbacError::UnknownRole`](crate::RbacError::UnknownRole) for the
    /// first role of `set` that is not of this policy.
    pub fn closure_of(&self, set: RoleSet) -> Result<RoleSet, crate::RbacError> {
        set.iter().try_fold(RoleSet::EMPTY, |acc, r| {
            self.inherited(r)
                .map(|c| acc.union(c))
                .ok_or(crate::RbacError::UnknownRole(r.index()))
        })
    }

    /// The role set holding `names` and what they inherit, or the first
    /// unknown name.
    ///
    /// # Errors
    ///
    /// The first name the policy does not declare.
    pub fn role_set<'n>(&self, names: &[&'n str]) -> Result<RoleSet, &'n str> {
        let mut set = RoleSet::EMPTY;
        for name in names {
            let role = self.role(name).ok_or(*name)?;
            set = set.union(self.inherited(role).ok_or(*name)?);
        }
        Ok(set)
    }

    /// The id of every rule, in file order.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| &*r.id)
    }

    /// The site called `name`.
    pub fn site(&self, name: &str) -> Option<SiteId> {
        self.site_index.get(name).copied()
    }

    /// The name of `site`.
    pub fn site_name(&self, site: SiteId) -> Option<&str> {
        self.sites.get(usize::from(site.0)).map(|s| &*s.name)
    }

    /// The location called `name`.
    pub fn location(&self, name: &str) -> Option<LocationId> {
        self.location_index.get(name).copied()
    }

    /// The name of `location`.
    pub fn location_name(&self, location: LocationId) -> Option<&str> {
        self.location_names
            .get(usize::from(location.0))
            .map(|n| &**n)
    }

    /// The network called `name`.
    pub fn network(&self, name: &str) -> Option<NetworkId> {
        self.network_index.get(name).copied()
    }

    /// The name of `network`.
    pub fn network_name(&self, network: NetworkId) -> Option<&str> {
        self.network_names.get(usize::from(network.0)).map(|n| &**n)
    }

    /// The time zone in which `hours` are read for requests at `site`: the
    /// site's own zone, else the policy's (`None` asks for the policy's).
    pub fn time_zone(&self, site: Option<SiteId>) -> &TimeZone {
        site.and_then(|s| self.sites.get(usize::from(s.0)))
            .map_or(&self.zone, |s| &s.zone)
    }

    /// The longest break-the-glass grant this policy honours, in seconds.
    pub fn break_glass_max_secs(&self) -> Option<u64> {
        self.break_glass_max_secs
    }

    pub(crate) fn slot(&self, resource: ResourceTypeId, action: ActionId) -> Option<&Slot> {
        let n = self.action_names.len();
        let a = usize::from(action.0);
        if a >= n {
            return None;
        }
        self.slots.get(usize::from(resource.0) * n + a)
    }
}

/// Line and column of a byte offset.
fn locate(text: &str, offset: usize, path: String) -> Location {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before
        .get(line_start..)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    Location {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
        path,
    }
}

fn parse_time(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

/// Offsets and lengths of compiled tables; bounded by [`MAX_RULES`] times the
/// number of (resource type, action) pairs, far below `u32::MAX`.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One operand of a condition, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    Attr(Side, AttrKind),
    Literal(String),
}

/// A condition as written: `a == b`, `a != b`, `a in [..]`, `a not in [..]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Parsed {
    Compare {
        left: Operand,
        right: Operand,
        negate: bool,
    },
    In {
        attr: (Side, AttrKind),
        values: Vec<String>,
        negate: bool,
    },
}

/// A resolved condition, hashable: part of a rule's [`Signature`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum SigCond {
    Same {
        kind: AttrKind,
        negate: bool,
    },
    OneOf {
        side: Side,
        kind: AttrKind,
        negate: bool,
        values: Vec<u16>,
    },
}

/// What a rule means, for finding repeated rules by hashing.
#[derive(PartialEq, Eq, Hash)]
struct Signature {
    effect: Effect,
    roles: Option<RoleSet>,
    except: RoleSet,
    relation: Relation,
    ephi: Option<bool>,
    mfa: Option<bool>,
    hours: Option<(u16, u16)>,
    break_glass: bool,
    when_break_glass: Option<bool>,
    slots: Vec<usize>,
    conds: Vec<SigCond>,
}

/// The declared attribute values conditions may name.
struct Values<'a> {
    sites: &'a HashMap<Box<str>, SiteId>,
    locations: &'a HashMap<Box<str>, LocationId>,
    networks: &'a HashMap<Box<str>, NetworkId>,
}

impl Values<'_> {
    fn get(&self, kind: AttrKind, name: &str) -> Option<u16> {
        match kind {
            AttrKind::Site => self.sites.get(name).map(|v| v.0),
            AttrKind::Location => self.locations.get(name).map(|v| v.0),
            AttrKind::Network => self.networks.get(name).map(|v| v.0),
        }
    }
}

/// Parses one condition:
///
/// ```text
/// condition := operand ("==" | "!=") operand
///            | attribute ["not"] "in" "[" literal ("," literal)* [","] "]"
/// operand   := attribute | literal
/// attribute := ("request" | "resource") "." ("site" | "location" | "network")
/// literal   := '"' name '"'        (TOML strings: write them as '...' or escape)
/// ```
fn parse_condition(text: &str) -> Result<Parsed, String> {
    #[derive(Debug, PartialEq)]
    enum Tok {
        Word(String),
        Lit(String),
        Eq,
        Ne,
        Open,
        Close,
        Comma,
    }
    let mut toks = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '[' => toks.push(Tok::Open),
            ']' => toks.push(Tok::Close),
            ',' => toks.push(Tok::Comma),
            '=' | '!' => {
                if chars.next_if(|&(_, n)| n == '=').is_none() {
                    return Err(format!("expected `{c}=` at character {}", at + 1));
                }
                toks.push(if c == '=' { Tok::Eq } else { Tok::Ne });
            }
            '"' => {
                let mut lit = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, ch)) => lit.push(ch),
                        None => {
                            return Err(format!(
                                "unterminated string starting at character {}",
                                at + 1
                            ));
                        }
                    }
                }
                toks.push(Tok::Lit(lit));
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' => {
                let mut word = String::from(c);
                while let Some((_, n)) =
                    chars.next_if(|&(_, n)| n.is_ascii_alphanumeric() || "_.-".contains(n))
                {
                    word.push(n);
                }
                toks.push(Tok::Word(word));
            }
            other => {
                return Err(format!(
                    "unexpected character `{other}` at character {}",
                    at + 1
                ));
            }
        }
    }
    let attr = |w: &str| -> Result<(Side, AttrKind), String> {
        let (side, key) = w.split_once('.').ok_or_else(|| {
            format!("`{w}` is not an attribute (write e.g. `request.site`) or a quoted name")
        })?;
        let side = match side {
            "request" => Side::Request,
            "resource" => Side::Resource,
            _ => {
                return Err(format!(
                    "unknown attribute `{w}` (attributes start with `request.` or `resource.`)"
                ));
            }
        };
        let kind = match key {
            "site" => AttrKind::Site,
            "location" => AttrKind::Location,
            "network" => AttrKind::Network,
            _ => {
                return Err(format!(
                    "unknown attribute `{w}` (known: site, location, network)"
                ));
            }
        };
        Ok((side, kind))
    };
    let operand = |t: Option<&Tok>| -> Result<Operand, String> {
        match t {
            Some(Tok::Word(w)) => attr(w).map(|(s, k)| Operand::Attr(s, k)),
            Some(Tok::Lit(l)) => Ok(Operand::Literal(l.clone())),
            _ => Err("expected an attribute or a quoted name".into()),
        }
    };
    let left = operand(toks.first())?;
    match toks.get(1..) {
        Some([op @ (Tok::Eq | Tok::Ne), right]) => Ok(Parsed::Compare {
            left,
            right: operand(Some(right))?,
            negate: *op == Tok::Ne,
        }),
        Some(rest) => {
            let (negate, rest) = match rest {
                [Tok::Word(not), Tok::Word(inw), rest @ ..] if not == "not" && inw == "in" => {
                    (true, rest)
                }
                [Tok::Word(inw), rest @ ..] if inw == "in" => (false, rest),
                _ => return Err("expected `==`, `!=`, `in` or `not in` after the first operand, and one operand after `==` or `!=`".into()),
            };
            let Operand::Attr(side, kind) = left else {
                return Err("the left side of `in` must be an attribute".into());
            };
            let [Tok::Open, items @ .., Tok::Close] = rest else {
                return Err("expected a list `[\"a\", \"b\"]` after `in`".into());
            };
            let mut values = Vec::new();
            let mut expect_value = true;
            for t in items {
                match (t, expect_value) {
                    (Tok::Lit(l), true) => {
                        values.push(l.clone());
                        expect_value = false;
                    }
                    (Tok::Comma, false) => expect_value = true,
                    _ => return Err("a list holds quoted names separated by commas".into()),
                }
            }
            if values.is_empty() {
                return Err("the list after `in` is empty".into());
            }
            Ok(Parsed::In {
                attr: (side, kind),
                values,
                negate,
            })
        }
        None => Err("the condition is empty".into()),
    }
}

struct Compiler<'t> {
    text: &'t str,
    errors: Vec<ValidationError>,
}

impl<'t> Compiler<'t> {
    fn new(text: &'t str) -> Self {
        Compiler {
            text,
            errors: Vec::new(),
        }
    }

    fn error(&mut self, offset: usize, path: String, kind: ValidationErrorKind) {
        let location = locate(self.text, offset, path);
        self.errors.push(ValidationError { location, kind });
    }

    fn compile(mut self, raw: RawPolicy) -> Result<Policy, PolicyError> {
        if *raw.version.get_ref() != FORMAT_VERSION {
            self.error(
                raw.version.span().start,
                "version".into(),
                ValidationErrorKind::UnsupportedVersion {
                    found: *raw.version.get_ref(),
                },
            );
        }
        let zone = self.policy_zone(&raw);
        let break_glass_max_secs = match &raw.break_glass {
            Some(bg) => {
                let minutes = bg.get_ref().max_minutes.get_ref();
                if *minutes == 0 || *minutes > 24 * 60 {
                    self.error(
                        bg.get_ref().max_minutes.span().start,
                        "break_glass.max_minutes".into(),
                        ValidationErrorKind::OutOfRange {
                            what: "break_glass.max_minutes",
                            detail: "must be between 1 and 1440".into(),
                        },
                    );
                }
                Some(u64::from(*minutes) * 60)
            }
            None => None,
        };

        // Roles.
        if raw.roles.len() > MAX_ROLES {
            self.error(
                raw.roles.get(MAX_ROLES).map_or(0, |r| r.span().start),
                format!("roles[{MAX_ROLES}]"),
                ValidationErrorKind::TooManyRoles {
                    count: raw.roles.len(),
                },
            );
        }
        let mut role_names: Vec<Box<str>> = Vec::new();
        let mut role_index: HashMap<Box<str>, RoleId> = HashMap::new();
        for (i, role) in raw.roles.iter().enumerate().take(MAX_ROLES) {
            let name = role.get_ref().name.get_ref();
            if role_index.contains_key(name.as_str()) {
                self.error(
                    role.get_ref().name.span().start,
                    format!("roles[{i}].name"),
                    ValidationErrorKind::Duplicate {
                        what: "role",
                        name: name.clone(),
                    },
                );
                continue;
            }
            let id = RoleId(u8::try_from(role_names.len()).unwrap_or(u8::MAX));
            role_names.push(name.as_str().into());
            role_index.insert(name.as_str().into(), id);
        }
        // Direct juniors of each role (by id).
        let mut juniors: Vec<Vec<RoleId>> = vec![Vec::new(); role_names.len()];
        for (i, role) in raw.roles.iter().enumerate().take(MAX_ROLES) {
            let Some(&me) = role_index.get(role.get_ref().name.get_ref().as_str()) else {
                continue;
            };
            for (j, parent) in role.get_ref().inherits.iter().enumerate() {
                match role_index.get(parent.get_ref().as_str()) {
                    Some(&p) => {
                        if let Some(list) = juniors.get_mut(me.index())
                            && !list.contains(&p)
                        {
                            list.push(p);
                        }
                    }
                    None => self.error(
                        parent.span().start,
                        format!("roles[{i}].inherits[{j}]"),
                        ValidationErrorKind::UnknownRole {
                            name: parent.get_ref().clone(),
                        },
                    ),
                }
            }
        }
        let closure = self.closure(&raw, &role_names, &juniors);

        // Resources and actions.
        let mut resource_names: Vec<Box<str>> = Vec::new();
        let mut resource_index: HashMap<Box<str>, ResourceTypeId> = HashMap::new();
        let mut action_names: Vec<Box<str>> = Vec::new();
        let mut action_index: HashMap<Box<str>, ActionId> = HashMap::new();
        let mut resource_actions: Vec<Vec<ActionId>> = Vec::new();
        for (i, res) in raw.resources.iter().enumerate() {
            let name = res.get_ref().name.get_ref();
            if resource_index.contains_key(name.as_str()) {
                self.error(
                    res.get_ref().name.span().start,
                    format!("resources[{i}].name"),
                    ValidationErrorKind::Duplicate {
                        what: "resource",
                        name: name.clone(),
                    },
                );
                continue;
            }
            let Ok(id) = u16::try_from(resource_names.len()) else {
                continue;
            };
            resource_names.push(name.as_str().into());
            resource_index.insert(name.as_str().into(), ResourceTypeId(id));
            let mut actions = Vec::new();
            for (j, action) in res.get_ref().actions.iter().enumerate() {
                let a = action.get_ref().as_str();
                let id = match action_index.get(a) {
                    Some(&id) => id,
                    None => {
                        let Ok(n) = u16::try_from(action_names.len()) else {
                            continue;
                        };
                        action_names.push(a.into());
                        action_index.insert(a.into(), ActionId(n));
                        ActionId(n)
                    }
                };
                if actions.contains(&id) {
                    self.error(
                        action.span().start,
                        format!("resources[{i}].actions[{j}]"),
                        ValidationErrorKind::Duplicate {
                            what: "action",
                            name: a.to_owned(),
                        },
                    );
                } else {
                    actions.push(id);
                }
            }
            resource_actions.push(actions);
        }

        // Separation of duty.
        let mut ssd = Vec::new();
        let mut dsd = Vec::new();
        let mut sod_names: Vec<&str> = Vec::new();
        for (i, sod) in raw.sod.iter().enumerate() {
            let s = sod.get_ref();
            let name = s.name.get_ref().as_str();
            if sod_names.contains(&name) {
                self.error(
                    s.name.span().start,
                    format!("sod[{i}].name"),
                    ValidationErrorKind::Duplicate {
                        what: "sod set",
                        name: name.to_owned(),
                    },
                );
            }
            sod_names.push(name);
            let mut roles = RoleSet::EMPTY;
            for (j, r) in s.roles.iter().enumerate() {
                match role_index.get(r.get_ref().as_str()) {
                    Some(&id) => roles = roles.with(id),
                    None => self.error(
                        r.span().start,
                        format!("sod[{i}].roles[{j}]"),
                        ValidationErrorKind::UnknownRole {
                            name: r.get_ref().clone(),
                        },
                    ),
                }
            }
            let limit = s.limit.as_ref().map_or(2, |l| *l.get_ref());
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            if limit < 2 || limit > s.roles.len() {
                let offset = s
                    .limit
                    .as_ref()
                    .map_or(sod.span().start, |l| l.span().start);
                self.error(
                    offset,
                    format!("sod[{i}].limit"),
                    ValidationErrorKind::SodConflict {
                        set: name.to_owned(),
                        detail: format!(
                            "limit {limit} must be at least 2 and at most the {} roles of the set",
                            s.roles.len()
                        ),
                    },
                );
                continue;
            }
            // A role that through the hierarchy alone holds `limit` roles of
            // the set could never be assigned (static) or activated (dynamic).
            for (j, r) in s.roles.iter().enumerate() {
                if let Some(&id) = role_index.get(r.get_ref().as_str()) {
                    let Some(carried) = closure.get(id.index()) else {
                        continue;
                    };
                    let held = carried.intersection(roles).len();
                    if held >= limit {
                        self.error(
                            r.span().start,
                            format!("sod[{i}].roles[{j}]"),
                            ValidationErrorKind::SodConflict {
                                set: name.to_owned(),
                                detail: format!(
                                    "role `{}` inherits {held} roles of the set, reaching its limit of {limit} by itself",
                                    r.get_ref()
                                ),
                            },
                        );
                    }
                }
            }
            let set = SodSet {
                name: name.into(),
                roles,
                limit,
            };
            match s.kind {
                RawSodKind::Static => ssd.push(set),
                RawSodKind::Dynamic => dsd.push(set),
            }
        }
        // A role in a dynamic set that a static set already keeps apart
        // is fine; a static set whose roles some role inherits together is
        // caught above.

        let sod_roles = ssd
            .iter()
            .chain(&dsd)
            .fold(RoleSet::EMPTY, |acc, set| acc.union(set.roles));

        // Sites, locations and networks.
        let mut sites: Vec<SiteInfo> = Vec::new();
        let mut site_index: HashMap<Box<str>, SiteId> = HashMap::new();
        for (i, site) in raw.sites.iter().enumerate() {
            let s = site.get_ref();
            let name = s.name.get_ref();
            if site_index.contains_key(name.as_str()) {
                self.error(
                    s.name.span().start,
                    format!("sites[{i}].name"),
                    ValidationErrorKind::Duplicate {
                        what: "site",
                        name: name.clone(),
                    },
                );
                continue;
            }
            let Ok(id) = u16::try_from(sites.len()) else {
                self.error(
                    s.name.span().start,
                    format!("sites[{i}]"),
                    ValidationErrorKind::OutOfRange {
                        what: "sites",
                        detail: format!("at most {} sites", u16::MAX),
                    },
                );
                break;
            };
            let site_zone = match &s.time_zone {
                Some(tz) => self
                    .zone_named(tz, format!("sites[{i}].time_zone"))
                    .unwrap_or_else(|| zone.clone()),
                None => zone.clone(),
            };
            site_index.insert(name.as_str().into(), SiteId(id));
            sites.push(SiteInfo {
                name: name.as_str().into(),
                zone: site_zone,
            });
        }
        let (location_names, location_index) =
            self.value_list(&raw.locations, "locations", "location", LocationId);
        let (network_names, network_index) =
            self.value_list(&raw.networks, "networks", "network", NetworkId);
        let values = Values {
            sites: &site_index,
            locations: &location_index,
            networks: &network_index,
        };

        // Rules.
        if raw.rules.len() > MAX_RULES {
            // Past the limit nothing else is checked: the file is refused
            // before any per-rule work.
            self.error(
                raw.rules.get(MAX_RULES).map_or(0, |r| r.span().start),
                format!("rules[{MAX_RULES}]"),
                ValidationErrorKind::TooManyRules {
                    count: raw.rules.len(),
                },
            );
            return Err(PolicyError::Invalid(self.errors));
        }
        let n_actions = action_names.len();
        let n_slots = resource_names.len() * n_actions;
        let mut per_slot: Vec<(Vec<RuleCore>, Vec<RuleCore>, Vec<RuleCore>)> =
            vec![(Vec::new(), Vec::new(), Vec::new()); n_slots];
        let mut rules: Vec<RuleInfo> = Vec::new();
        let mut rule_ids: HashMap<&str, usize> = HashMap::with_capacity(raw.rules.len());
        let mut signatures: HashMap<Signature, usize> = HashMap::with_capacity(raw.rules.len());
        let mut conditions: Vec<Cond> = Vec::new();
        let mut compiled: Vec<(RuleCore, Effect, Vec<usize>)> = Vec::new();
        for (i, rule) in raw.rules.iter().enumerate() {
            let r = rule.get_ref();
            let id = r.id.get_ref();
            if rule_ids.contains_key(id.as_str()) {
                self.error(
                    r.id.span().start,
                    format!("rules[{i}].id"),
                    ValidationErrorKind::Duplicate {
                        what: "rule",
                        name: id.clone(),
                    },
                );
            } else {
                rule_ids.insert(id.as_str(), i);
            }
            let roles = match &r.roles {
                None => None,
                Some(list) => {
                    let set = self.role_list(list, &role_index, &format!("rules[{i}].roles"));
                    if list.is_empty() {
                        self.error(
                            r.id.span().start,
                            format!("rules[{i}].roles"),
                            ValidationErrorKind::RuleNeverApplies {
                                rule: id.clone(),
                                why: "its role list is empty (leave `roles` out to mean any principal)"
                                    .into(),
                            },
                        );
                    }
                    Some(set)
                }
            };
            let except = match &r.except_roles {
                None => RoleSet::EMPTY,
                Some(list) => {
                    let set =
                        self.role_list(list, &role_index, &format!("rules[{i}].except_roles"));
                    // Holding a listed role means holding what it inherits
                    // too, so a listed role that carries an excepted role
                    // can never match.
                    let excluded =
                        |role: RoleId| closure.get(role.index()).is_some_and(|c| c.intersects(set));
                    let never = match roles {
                        Some(rs) => !rs.is_empty() && rs.iter().all(excluded),
                        None => false,
                    };
                    if never {
                        self.error(
                            r.id.span().start,
                            format!("rules[{i}].except_roles"),
                            ValidationErrorKind::RuleNeverApplies {
                                rule: id.clone(),
                                why: "every role it names holds a role of `except_roles`".into(),
                            },
                        );
                    }
                    set
                }
            };
            let mut resources = Vec::new();
            for (j, name) in r.resources.iter().enumerate() {
                match resource_index.get(name.get_ref().as_str()) {
                    Some(&id) => resources.push((id, j)),
                    None => self.error(
                        name.span().start,
                        format!("rules[{i}].resources[{j}]"),
                        ValidationErrorKind::UnknownResource {
                            name: name.get_ref().clone(),
                        },
                    ),
                }
            }
            let mut slots = Vec::new();
            for (j, action) in r.actions.iter().enumerate() {
                let a = action_index.get(action.get_ref().as_str()).copied();
                let mut found = false;
                for &(res, _) in &resources {
                    let declared = resource_actions
                        .get(usize::from(res.0))
                        .is_some_and(|acts| a.is_some_and(|a| acts.contains(&a)));
                    if let (true, Some(a)) = (declared, a) {
                        found = true;
                        slots.push(usize::from(res.0) * n_actions + usize::from(a.0));
                    }
                }
                if !found && !resources.is_empty() {
                    let resource = r
                        .resources
                        .iter()
                        .map(|s| s.get_ref().as_str())
                        .collect::<Vec<_>>()
                        .join("`, `");
                    self.error(
                        action.span().start,
                        format!("rules[{i}].actions[{j}]"),
                        ValidationErrorKind::UnknownAction {
                            action: action.get_ref().clone(),
                            resource,
                        },
                    );
                }
            }
            if r.resources.is_empty() || r.actions.is_empty() {
                self.error(
                    r.id.span().start,
                    format!("rules[{i}]"),
                    ValidationErrorKind::RuleNeverApplies {
                        rule: id.clone(),
                        why: "it names no resource type or no action".into(),
                    },
                );
            }
            let hours = r.hours.as_ref().and_then(|h| self.hours(h, i, id));
            let break_glass = r.break_glass.as_ref().is_some_and(|b| *b.get_ref());
            if let Some(b) = &r.break_glass {
                if *b.get_ref() && r.effect == RawEffect::Forbid {
                    self.error(
                        b.span().start,
                        format!("rules[{i}].break_glass"),
                        ValidationErrorKind::RuleNeverApplies {
                            rule: id.clone(),
                            why: "break_glass applies to permits only (a forbid limited to \
                                  break-the-glass requests says `when_break_glass = true`)"
                                .into(),
                        },
                    );
                }
                if *b.get_ref() && raw.break_glass.is_none() {
                    self.error(
                        b.span().start,
                        format!("rules[{i}].break_glass"),
                        ValidationErrorKind::BreakGlassNotConfigured { rule: id.clone() },
                    );
                }
            }
            let when_break_glass = r.when_break_glass.as_ref().map(|w| *w.get_ref());
            if let Some(w) = &r.when_break_glass {
                if r.effect == RawEffect::Permit {
                    self.error(
                        w.span().start,
                        format!("rules[{i}].when_break_glass"),
                        ValidationErrorKind::RuleNeverApplies {
                            rule: id.clone(),
                            why: "when_break_glass applies to forbids only (a permit for \
                                  break-the-glass requests says `break_glass = true`)"
                                .into(),
                        },
                    );
                }
                if *w.get_ref() && raw.break_glass.is_none() {
                    self.error(
                        w.span().start,
                        format!("rules[{i}].when_break_glass"),
                        ValidationErrorKind::BreakGlassNotConfigured { rule: id.clone() },
                    );
                }
            }
            let cond_start = conditions.len();
            let mut sig_conds = Vec::with_capacity(r.conditions.len());
            for (j, text) in r.conditions.iter().enumerate() {
                match parse_condition(text.get_ref()) {
                    Err(detail) => self.error(
                        text.span().start,
                        format!("rules[{i}].conditions[{j}]"),
                        ValidationErrorKind::BadCondition {
                            rule: id.clone(),
                            detail,
                        },
                    ),
                    Ok(parsed) => {
                        if let Some(c) = self.resolve_condition(&parsed, &values, text, (id, i, j))
                        {
                            sig_conds.push(c.clone());
                            conditions.push(match c {
                                SigCond::Same { kind, negate } => Cond::Same { kind, negate },
                                SigCond::OneOf {
                                    side,
                                    kind,
                                    negate,
                                    values,
                                } => Cond::OneOf {
                                    side,
                                    kind,
                                    negate,
                                    values: values.into(),
                                },
                            });
                        }
                    }
                }
            }
            let effect = match r.effect {
                RawEffect::Permit => Effect::Permit,
                RawEffect::Forbid => Effect::Forbid,
            };
            // At most MAX_RULES (u16::MAX) rules reach this point.
            let index = u16::try_from(rules.len()).unwrap_or(u16::MAX);
            rules.push(RuleInfo {
                id: id.as_str().into(),
                effect,
            });
            let core = RuleCore {
                index,
                roles,
                except,
                relation: match r.relation.unwrap_or(RawRelation::Any) {
                    RawRelation::Any => Relation::Any,
                    RawRelation::CareTeam => Relation::CareTeam,
                    RawRelation::Own => Relation::Own,
                },
                ephi: r.ephi,
                mfa: r.mfa,
                hours,
                break_glass,
                when_break_glass,
                conds: (to_u32(cond_start), to_u32(conditions.len())),
            };
            slots.sort_unstable();
            slots.dedup();
            sig_conds.sort_unstable();
            sig_conds.dedup();
            // Repeated rules are found by hashing what a rule means, so
            // the check is linear in the number of rules.
            let signature = Signature {
                effect,
                roles: core.roles,
                except: core.except,
                relation: core.relation,
                ephi: core.ephi,
                mfa: core.mfa,
                hours: core.hours,
                break_glass: core.break_glass,
                when_break_glass: core.when_break_glass,
                slots: slots.clone(),
                conds: sig_conds,
            };
            if !slots.is_empty() {
                match signatures.get(&signature) {
                    Some(&first) => {
                        if let Some(f) = raw.rules.get(first) {
                            self.error(
                                r.id.span().start,
                                format!("rules[{i}]"),
                                ValidationErrorKind::DuplicateRule {
                                    rule: id.clone(),
                                    same_as: f.get_ref().id.get_ref().clone(),
                                },
                            );
                        }
                    }
                    None => {
                        signatures.insert(signature, i);
                    }
                }
            }
            compiled.push((core, effect, slots));
        }

        // A permit that unconditional forbids cover everywhere never applies.
        // Per slot, the unconditional forbids are summed up once (a forbid
        // for any principal, and the union of the roles forbidden), so each
        // permit is checked against its slots only: linear, not pairwise.
        #[derive(Clone, Default)]
        struct Cover {
            any: Option<u16>,
            roles: RoleSet,
            /// The first unconditional forbid of each role, for the message.
            by_role: Vec<(RoleId, u16)>,
        }
        let mut cover: HashMap<usize, Cover> = HashMap::new();
        for (core, effect, slots) in &compiled {
            let unconditional = *effect == Effect::Forbid
                && core.relation == Relation::Any
                && core.ephi.is_none()
                && core.mfa.is_none()
                && core.hours.is_none()
                && core.when_break_glass.is_none()
                && !core.break_glass
                && core.except.is_empty()
                && core.conds.0 == core.conds.1;
            if !unconditional {
                continue;
            }
            for &s in slots {
                let c = cover.entry(s).or_default();
                match core.roles {
                    None => {
                        c.any.get_or_insert(core.index);
                    }
                    Some(fr) => {
                        for role in fr.iter() {
                            if !c.roles.contains(role) {
                                c.by_role.push((role, core.index));
                            }
                        }
                        c.roles = c.roles.union(fr);
                    }
                }
            }
        }
        for (i, (core, effect, slots)) in compiled.iter().enumerate() {
            if *effect != Effect::Permit || slots.is_empty() {
                continue;
            }
            let mut forbids: Vec<u16> = Vec::new();
            let all = slots.iter().all(|s| {
                let Some(c) = cover.get(s) else {
                    return false;
                };
                if let Some(f) = c.any {
                    forbids.push(f);
                    return true;
                }
                match core.roles {
                    Some(pr) if !pr.is_empty() && pr.is_subset(c.roles) => {
                        forbids.extend(
                            c.by_role
                                .iter()
                                .filter(|(r, _)| pr.contains(*r))
                                .map(|&(_, f)| f),
                        );
                        true
                    }
                    _ => false,
                }
            });
            if all {
                forbids.sort_unstable();
                forbids.dedup();
                let names = forbids
                    .iter()
                    .filter_map(|&k| rules.get(usize::from(k)).map(|r| &*r.id))
                    .collect::<Vec<_>>();
                if let Some(r) = raw.rules.get(i) {
                    self.error(
                        r.get_ref().id.span().start,
                        format!("rules[{i}]"),
                        ValidationErrorKind::RuleNeverApplies {
                            rule: r.get_ref().id.get_ref().clone(),
                            why: format!(
                                "every request it matches is forbidden unconditionally by `{}`",
                                names.join("`, `")
                            ),
                        },
                    );
                }
            }
        }

        if !self.errors.is_empty() {
            self.errors
                .sort_by_key(|e| (e.location.line, e.location.column));
            return Err(PolicyError::Invalid(self.errors));
        }

        for (core, effect, slots) in compiled {
            for s in slots {
                if let Some(slot) = per_slot.get_mut(s) {
                    match (effect, core.break_glass) {
                        (Effect::Forbid, _) => slot.0.push(core),
                        (Effect::Permit, false) => slot.1.push(core),
                        (Effect::Permit, true) => slot.2.push(core),
                    }
                }
            }
        }
        let mut slot_rules = Vec::new();
        let mut slots = Vec::with_capacity(per_slot.len());
        let mut push = |list: Vec<RuleCore>| {
            let start = to_u32(slot_rules.len());
            slot_rules.extend(list);
            (start, to_u32(slot_rules.len()))
        };
        for (f, p, g) in per_slot {
            slots.push(Slot {
                forbids: push(f),
                permits: push(p),
                glass: push(g),
            });
        }

        Ok(Policy {
            role_names,
            role_index,
            closure,
            resource_names,
            resource_index,
            action_names,
            action_index,
            slots,
            slot_rules,
            rules,
            ssd,
            dsd,
            sod_roles,
            break_glass_max_secs,
            zone,
            sites,
            site_index,
            location_names,
            location_index,
            network_names,
            network_index,
            conditions,
        })
    }

    /// The policy's time zone: `time_zone` (IANA name), or the fixed
    /// `utc_offset_minutes`, or UTC.
    fn policy_zone(&mut self, raw: &RawPolicy) -> TimeZone {
        if let (Some(_), Some(offset)) = (&raw.time_zone, &raw.utc_offset_minutes) {
            self.error(
                offset.span().start,
                "utc_offset_minutes".into(),
                ValidationErrorKind::Conflict {
                    detail: "give `time_zone` or `utc_offset_minutes`, not both".into(),
                },
            );
        }
        if let Some(name) = &raw.time_zone {
            return self
                .zone_named(name, "time_zone".into())
                .unwrap_or(TimeZone::UTC);
        }
        match &raw.utc_offset_minutes {
            Some(m) => {
                let offset = (m.get_ref().unsigned_abs() < 24 * 60)
                    .then(|| Offset::from_seconds(m.get_ref() * 60).ok())
                    .flatten();
                match offset {
                    Some(offset) => TimeZone::fixed(offset),
                    None => {
                        self.error(
                            m.span().start,
                            "utc_offset_minutes".into(),
                            ValidationErrorKind::OutOfRange {
                                what: "utc_offset_minutes",
                                detail: "must be strictly between -1440 and 1440".into(),
                            },
                        );
                        TimeZone::UTC
                    }
                }
            }
            None => TimeZone::UTC,
        }
    }

    /// The IANA zone `name`, from the tz database bundled with the crate
    /// (never the host's), or a located error.
    fn zone_named(&mut self, name: &Spanned<String>, path: String) -> Option<TimeZone> {
        match TimeZone::get(name.get_ref()) {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.error(
                    name.span().start,
                    path,
                    ValidationErrorKind::UnknownTimeZone {
                        name: name.get_ref().clone(),
                    },
                );
                None
            }
        }
    }

    /// A declared list of names (locations, networks), interned.
    fn value_list<I: Copy>(
        &mut self,
        list: &[Spanned<String>],
        key: &'static str,
        what: &'static str,
        make: fn(u16) -> I,
    ) -> (Vec<Box<str>>, HashMap<Box<str>, I>) {
        let mut names: Vec<Box<str>> = Vec::new();
        let mut index = HashMap::new();
        for (i, name) in list.iter().enumerate() {
            if index.contains_key(name.get_ref().as_str()) {
                self.error(
                    name.span().start,
                    format!("{key}[{i}]"),
                    ValidationErrorKind::Duplicate {
                        what,
                        name: name.get_ref().clone(),
                    },
                );
                continue;
            }
            let Ok(id) = u16::try_from(names.len()) else {
                self.error(
                    name.span().start,
                    format!("{key}[{i}]"),
                    ValidationErrorKind::OutOfRange {
                        what: key,
                        detail: format!("at most {} names", u16::MAX),
                    },
                );
                break;
            };
            names.push(name.get_ref().as_str().into());
            index.insert(name.get_ref().as_str().into(), make(id));
        }
        (names, index)
    }

    /// The roles of a rule's role list, reporting unknown names.
    fn role_list(
        &mut self,
        list: &[Spanned<String>],
        role_index: &HashMap<Box<str>, RoleId>,
        path: &str,
    ) -> RoleSet {
        let mut set = RoleSet::EMPTY;
        for (j, name) in list.iter().enumerate() {
            match role_index.get(name.get_ref().as_str()) {
                Some(&id) => set = set.with(id),
                None => self.error(
                    name.span().start,
                    format!("{path}[{j}]"),
                    ValidationErrorKind::UnknownRole {
                        name: name.get_ref().clone(),
                    },
                ),
            }
        }
        set
    }

    /// A rule's hours window: `from` in 00:00..=23:59, `to` in
    /// 00:00..=24:00; `from == to` is empty (refused), `from > to` wraps
    /// past midnight, and `to = 00:00` after a later `from` means the same
    /// as `to = 24:00`.
    fn hours(&mut self, h: &Spanned<RawHours>, i: usize, id: &str) -> Option<(u16, u16)> {
        let from = parse_time(h.get_ref().from.get_ref());
        let to = parse_time(h.get_ref().to.get_ref());
        for (field, value, t) in [
            ("from", &h.get_ref().from, from),
            ("to", &h.get_ref().to, to),
        ] {
            if t.is_none() {
                self.error(
                    value.span().start,
                    format!("rules[{i}].hours.{field}"),
                    ValidationErrorKind::InvalidTime {
                        value: value.get_ref().clone(),
                    },
                );
            }
        }
        if from == Some(1440) {
            self.error(
                h.get_ref().from.span().start,
                format!("rules[{i}].hours.from"),
                ValidationErrorKind::OutOfRange {
                    what: "hours.from",
                    detail: "24:00 ends a day; a window starts between 00:00 and 23:59".into(),
                },
            );
            return None;
        }
        let (from, to) = (from?, to?);
        // `to = 00:00` ends the window at midnight, as `24:00` does; but a
        // window from a time to the same time is empty (`00:00`-`00:00`
        // too), never the whole day: that is written `00:00`-`24:00`.
        if from == to || (from == 0 && to == 0) {
            self.error(
                h.span().start,
                format!("rules[{i}].hours"),
                ValidationErrorKind::RuleNeverApplies {
                    rule: id.to_owned(),
                    why: "its hours window is empty (from equals to)".into(),
                },
            );
            return None;
        }
        Some((from, if to == 0 { 1440 } else { to }))
    }

    /// Resolves a parsed condition against the declared values.
    fn resolve_condition(
        &mut self,
        parsed: &Parsed,
        values: &Values<'_>,
        text: &Spanned<String>,
        (id, i, j): (&str, usize, usize),
    ) -> Option<SigCond> {
        let path = format!("rules[{i}].conditions[{j}]");
        let rule = || id.to_owned();
        let bad = |this: &mut Self, detail: String| {
            this.error(
                text.span().start,
                path.clone(),
                ValidationErrorKind::BadCondition {
                    rule: rule(),
                    detail,
                },
            );
            None
        };
        let (side, kind, names, negate) = match parsed {
            Parsed::Compare {
                left: Operand::Attr(ls, lk),
                right: Operand::Attr(rs, rk),
                negate,
            } => {
                if lk != rk {
                    return bad(
                        self,
                        format!(
                            "compares a {} with a {}: they are never equal",
                            lk.name(),
                            rk.name()
                        ),
                    );
                }
                if ls == rs {
                    return bad(self, "compares an attribute with itself".into());
                }
                return Some(SigCond::Same {
                    kind: *lk,
                    negate: *negate,
                });
            }
            Parsed::Compare {
                left: Operand::Attr(side, kind),
                right: Operand::Literal(l),
                negate,
            }
            | Parsed::Compare {
                left: Operand::Literal(l),
                right: Operand::Attr(side, kind),
                negate,
            } => (*side, *kind, std::slice::from_ref(l), *negate),
            Parsed::Compare { .. } => {
                return bad(self, "compares two constants".into());
            }
            Parsed::In {
                attr: (side, kind),
                values,
                negate,
            } => (*side, *kind, values.as_slice(), *negate),
        };
        let mut ids = Vec::with_capacity(names.len());
        for name in names {
            match values.get(kind, name) {
                Some(v) => ids.push(v),
                None => {
                    self.error(
                        text.span().start,
                        path.clone(),
                        ValidationErrorKind::UnknownValue {
                            what: kind.name(),
                            name: name.clone(),
                        },
                    );
                    return None;
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Some(SigCond::OneOf {
            side,
            kind,
            negate,
            values: ids,
        })
    }

    /// Each role's transitive closure over `inherits`, reporting each cycle once.
    fn closure(
        &mut self,
        raw: &RawPolicy,
        role_names: &[Box<str>],
        juniors: &[Vec<RoleId>],
    ) -> Vec<RoleSet> {
        let n = role_names.len();
        // Depth-first search with colours: 0 new, 1 on the stack, 2 done.
        let mut colour = vec![0u8; n];
        let mut closure = vec![RoleSet::EMPTY; n];
        let mut reported: Vec<RoleSet> = Vec::new();
        for start in 0..n {
            if colour.get(start) != Some(&0) {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            if let Some(c) = colour.get_mut(start) {
                *c = 1;
            }
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                let child = juniors.get(node).and_then(|j| j.get(*next)).copied();
                *next += 1;
                match child {
                    Some(c) => {
                        let c = c.index();
                        match colour.get(c).copied() {
                            Some(0) => {
                                if let Some(x) = colour.get_mut(c) {
                                    *x = 1;
                                }
                                stack.push((c, 0));
                            }
                            Some(1) => {
                                // A cycle: the stack from `c` up to `node`.
                                let pos = stack.iter().position(|&(s, _)| s == c).unwrap_or(0);
                                let members: Vec<usize> =
                                    stack.iter().skip(pos).map(|&(s, _)| s).collect();
                                let set = members.iter().fold(RoleSet::EMPTY, |acc, &m| {
                                    acc.with(RoleId(u8::try_from(m).unwrap_or(u8::MAX)))
                                });
                                if !reported.contains(&set) {
                                    reported.push(set);
                                    let mut names: Vec<String> = members
                                        .iter()
                                        .filter_map(|&m| role_names.get(m).map(|s| s.to_string()))
                                        .collect();
                                    if let Some(first) = names.first().cloned() {
                                        names.push(first);
                                    }
                                    let (offset, path) = self.role_location(raw, c);
                                    self.error(
                                        offset,
                                        path,
                                        ValidationErrorKind::HierarchyCycle { roles: names },
                                    );
                                }
                            }
                            _ => {}
                        }
                    }
                    None => {
                        stack.pop();
                        if let Some(x) = colour.get_mut(node) {
                            *x = 2;
                        }
                        let me = RoleId(u8::try_from(node).unwrap_or(u8::MAX));
                        let mut set = RoleSet::EMPTY.with(me);
                        for j in juniors.get(node).into_iter().flatten() {
                            // A junior on a cycle has no closure yet: the
                            // cycle is reported and the policy refused, so
                            // the empty set here never reaches a decision.
                            set = set.union(closure.get(j.index()).copied().unwrap_or_default());
                        }
                        if let Some(x) = closure.get_mut(node) {
                            *x = set;
                        }
                    }
                }
            }
        }
        closure
    }

    fn role_location(&self, raw: &RawPolicy, role: usize) -> (usize, String) {
        // Role ids are given in declaration order, skipping duplicates.
        let mut seen = 0usize;
        let mut names: Vec<&str> = Vec::new();
        for (i, r) in raw.roles.iter().enumerate() {
            let name = r.get_ref().name.get_ref().as_str();
            if names.contains(&name) {
                continue;
            }
            names.push(name);
            if seen == role {
                let offset = r
                    .get_ref()
                    .inherits
                    .first()
                    .map_or(r.get_ref().name.span().start, |s| s.span().start);
                return (offset, format!("roles[{i}].inherits"));
            }
            seen += 1;
        }
        (0, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_set_operations() {
        let a = RoleId(0);
        let b = RoleId(127);
        let s = RoleSet::EMPTY.with(a).with(b);
        assert!(s.contains(a) && s.contains(b) && !s.contains(RoleId(5)));
        assert_eq!(s.len(), 2);
        assert_eq!(s.iter().collect::<Vec<_>>(), [a, b]);
        assert!(RoleSet::EMPTY.with(a).is_subset(s));
        assert!(!s.is_subset(RoleSet::EMPTY.with(a)));
        assert_eq!(s.without(b), RoleSet::EMPTY.with(a));
        assert!(s.without(a).without(b).is_empty());
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time("00:00"), Some(0));
        assert_eq!(parse_time("07:30"), Some(450));
        assert_eq!(parse_time("24:00"), Some(1440));
        for bad in ["24:01", "7:00", "07:60", "0700", "aa:bb", "-1:00", ""] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn locations_count_lines_and_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        let at = text.find('=').unwrap();
        assert_eq!(
            (
                locate(text, at, String::new()).line,
                locate(text, at, String::new()).column
            ),
            (1, 3)
        );
        let at = text.rfind('=').unwrap();
        let loc = locate(text, at, "p".into());
        assert_eq!((loc.line, loc.column), (2, 4));
        assert_eq!(loc.to_string(), "line 2, column 4 (p)");
        // An offset past the end does not panic.
        assert_eq!(locate(text, 999, String::new()).line, 3);
    }
}
