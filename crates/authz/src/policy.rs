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
    utc_offset_minutes: Option<Spanned<i32>>,
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
}

// ---------------------------------------------------------------------------
// The compiled form.

/// Whether a rule permits or forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The rule grants access when it matches (unless a forbid matches too).
    Permit,
    /// The rule refuses access when it matches, whatever permits match.
    Forbid,
}

/// The relationship a rule requires between principal and resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    Any,
    CareTeam,
    Own,
}

/// One rule as the decision procedure reads it: small and `Copy`, stored
/// contiguously per (resource type, action).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleCore {
    /// Index into `Policy::rules`.
    pub(crate) index: u16,
    /// `None`: any principal; otherwise the roles (through the hierarchy).
    pub(crate) roles: Option<RoleSet>,
    pub(crate) relation: Relation,
    pub(crate) ephi: Option<bool>,
    pub(crate) mfa: Option<bool>,
    /// Minutes of the day, `[from, to)`, wrapping past midnight when `from > to`.
    pub(crate) hours: Option<(u16, u16)>,
    pub(crate) break_glass: bool,
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
    pub(crate) break_glass_max_secs: Option<u64>,
    pub(crate) utc_offset_secs: i64,
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

    /// The roles that `role` carries: itself and every role it inherits.
    pub fn inherited(&self, role: RoleId) -> RoleSet {
        self.closure.get(role.index()).copied().unwrap_or_default()
    }

    /// The roles that the roles of `set` carry, through the hierarchy.
    pub fn closure_of(&self, set: RoleSet) -> RoleSet {
        set.iter()
            .fold(RoleSet::EMPTY, |acc, r| acc.union(self.inherited(r)))
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
            set = set.union(self.inherited(role));
        }
        Ok(set)
    }

    /// The id of every rule, in file order.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| &*r.id)
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
        let utc_offset_secs = match &raw.utc_offset_minutes {
            Some(m) if m.get_ref().unsigned_abs() >= 24 * 60 => {
                self.error(
                    m.span().start,
                    "utc_offset_minutes".into(),
                    ValidationErrorKind::OutOfRange {
                        what: "utc_offset_minutes",
                        detail: "must be strictly between -1440 and 1440".into(),
                    },
                );
                0
            }
            Some(m) => i64::from(*m.get_ref()) * 60,
            None => 0,
        };
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
                        if let Some(list) = juniors.get_mut(me.index()) {
                            if !list.contains(&p) {
                                list.push(p);
                            }
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
                    let held = closure
                        .get(id.index())
                        .copied()
                        .unwrap_or_default()
                        .intersection(roles)
                        .len();
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

        // Rules.
        if raw.rules.len() > MAX_RULES {
            self.error(
                raw.rules.get(MAX_RULES).map_or(0, |r| r.span().start),
                format!("rules[{MAX_RULES}]"),
                ValidationErrorKind::TooManyRules {
                    count: raw.rules.len(),
                },
            );
        }
        let n_actions = action_names.len();
        let mut per_slot: Vec<(Vec<RuleCore>, Vec<RuleCore>, Vec<RuleCore>)> =
            vec![(Vec::new(), Vec::new(), Vec::new()); resource_names.len() * n_actions];
        let mut rules: Vec<RuleInfo> = Vec::new();
        let mut compiled: Vec<(RuleCore, Effect, Vec<usize>)> = Vec::new();
        for (i, rule) in raw.rules.iter().enumerate().take(MAX_RULES) {
            let r = rule.get_ref();
            let id = r.id.get_ref();
            if rules.iter().any(|x| &*x.id == id.as_str()) {
                self.error(
                    r.id.span().start,
                    format!("rules[{i}].id"),
                    ValidationErrorKind::Duplicate {
                        what: "rule",
                        name: id.clone(),
                    },
                );
            }
            let roles = match &r.roles {
                None => None,
                Some(list) => {
                    let mut set = RoleSet::EMPTY;
                    for (j, name) in list.iter().enumerate() {
                        match role_index.get(name.get_ref().as_str()) {
                            Some(&id) => set = set.with(id),
                            None => self.error(
                                name.span().start,
                                format!("rules[{i}].roles[{j}]"),
                                ValidationErrorKind::UnknownRole {
                                    name: name.get_ref().clone(),
                                },
                            ),
                        }
                    }
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
            let hours = match &r.hours {
                None => None,
                Some(h) => {
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
                    match (from, to) {
                        (Some(f), Some(t)) if f % 1440 == t % 1440 => {
                            self.error(
                                h.span().start,
                                format!("rules[{i}].hours"),
                                ValidationErrorKind::RuleNeverApplies {
                                    rule: id.clone(),
                                    why: "its hours window is empty (from equals to)".into(),
                                },
                            );
                            None
                        }
                        (Some(f), Some(t)) => Some((f % 1440, t % 1440)),
                        _ => None,
                    }
                }
            };
            let break_glass = r.break_glass.as_ref().is_some_and(|b| *b.get_ref());
            if let Some(b) = &r.break_glass {
                if *b.get_ref() && r.effect == RawEffect::Forbid {
                    self.error(
                        b.span().start,
                        format!("rules[{i}].break_glass"),
                        ValidationErrorKind::RuleNeverApplies {
                            rule: id.clone(),
                            why: "break_glass applies to permits only".into(),
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
            let effect = match r.effect {
                RawEffect::Permit => Effect::Permit,
                RawEffect::Forbid => Effect::Forbid,
            };
            let index = u16::try_from(rules.len()).unwrap_or(u16::MAX);
            rules.push(RuleInfo {
                id: id.as_str().into(),
                effect,
            });
            let core = RuleCore {
                index,
                roles,
                relation: match r.relation.unwrap_or(RawRelation::Any) {
                    RawRelation::Any => Relation::Any,
                    RawRelation::CareTeam => Relation::CareTeam,
                    RawRelation::Own => Relation::Own,
                },
                ephi: r.ephi,
                mfa: r.mfa,
                hours,
                break_glass,
            };
            slots.sort_unstable();
            slots.dedup();
            compiled.push((core, effect, slots));
        }

        // A permit that an unconditional forbid covers everywhere never applies.
        for (i, (core, effect, slots)) in compiled.iter().enumerate() {
            if *effect != Effect::Permit || slots.is_empty() {
                continue;
            }
            let shadowed_by = slots.iter().map(|&s| {
                compiled.iter().find(|(f, fe, fslots)| {
                    *fe == Effect::Forbid
                        && fslots.contains(&s)
                        && f.relation == Relation::Any
                        && f.ephi.is_none()
                        && f.mfa.is_none()
                        && f.hours.is_none()
                        && match (f.roles, core.roles) {
                            (None, _) => true,
                            (Some(fr), Some(pr)) => pr.is_subset(fr),
                            (Some(_), None) => false,
                        }
                })
            });
            let mut forbids = Vec::new();
            let mut all = true;
            for f in shadowed_by {
                match f {
                    Some((f, _, _)) => forbids.push(f.index),
                    None => all = false,
                }
            }
            if all {
                let names = forbids
                    .iter()
                    .filter_map(|&k| rules.get(usize::from(k)).map(|r| &*r.id))
                    .collect::<Vec<_>>();
                let mut names = names;
                names.dedup();
                let (offset, rid) = raw
                    .rules
                    .get(i)
                    .map(|r| {
                        (
                            r.get_ref().id.span().start,
                            r.get_ref().id.get_ref().clone(),
                        )
                    })
                    .unwrap_or_default();
                self.error(
                    offset,
                    format!("rules[{i}]"),
                    ValidationErrorKind::RuleNeverApplies {
                        rule: rid,
                        why: format!(
                            "every request it matches is forbidden unconditionally by `{}`",
                            names.join("`, `")
                        ),
                    },
                );
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
            let start = u32::try_from(slot_rules.len()).unwrap_or(u32::MAX);
            slot_rules.extend(list);
            (start, u32::try_from(slot_rules.len()).unwrap_or(u32::MAX))
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
            break_glass_max_secs,
            utc_offset_secs,
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
