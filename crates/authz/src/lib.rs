#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Authorization: policies, decisions, RBAC sessions.
pub mod decision;
pub mod policy;
pub mod rbac;
pub use carevox_redact::Pii;
pub use decision::{
    Attributes, BreakGlass, BreakGlassUse, Decision, PatientId, Principal, Reason, Request,
    Resource, TeamId, Unmet, UserId, Verdict,
};
pub use policy::{
    ActionId, Effect, Location, LocationId, NetworkId, Policy, PolicyError, ResourceTypeId, RoleId,
    RoleSet, SiteId, ValidationError, ValidationErrorKind,
};
pub use rbac::{Assignments, RbacError, Session};

/// The sample hospital policy shipped with the crate (`policies/hospital.toml`).
pub const HOSPITAL_POLICY: &str = include_str!("../policies/hospital.toml");

// Authentication: passwords, TOTP, recovery codes, lockout, login sessions.
pub mod lockout;
pub mod login;
pub mod password;
pub mod recovery;
pub mod secret;
pub mod totp;
