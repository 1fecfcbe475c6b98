//! NIST RBAC (ANSI INCITS 359): user-role assignment with static separation
//! of duty, and sessions whose activated roles keep dynamic separation of duty.
//!
//! - [`Assignments`] holds which roles each user is assigned. Assigning a role
//!   checks every static separation-of-duty set of the policy against the
//!   roles the user would then be authorized for (assigned roles and all they
//!   inherit).
//! - A [`Session`] holds the roles a user has activated. Activating a role
//!   requires it to be authorized for the user and checks every dynamic
//!   separation-of-duty set against the session's roles and all they inherit.
//!   [`Session::principal`] turns the session into the
//!   [`Principal`] of a request.

use std::collections::HashMap;

use crate::decision::{PatientId, Principal, TeamId, UserId};
use crate::policy::{Policy, RoleId, RoleSet};

/// Why an RBAC operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RbacError {
    /// The role id does not belong to the policy.
    #[error("role id {0} is not in the policy")]
    UnknownRole(usize),
    /// Assigning the role would break a static separation-of-duty set.
    #[error("static separation of duty `{set}` forbids role `{role}` for this user")]
    StaticSod {
        /// The separation-of-duty set.
        set: String,
        /// The role refused.
        role: String,
    },
    /// Activating the role would break a dynamic separation-of-duty set.
    #[error("dynamic separation of duty `{set}` forbids activating role `{role}` in this session")]
    DynamicSod {
        /// The separation-of-duty set.
        set: String,
        /// The role refused.
        role: String,
    },
    /// The user is not authorized for the role (neither assigned it nor
    /// assigned a role that inherits it).
    #[error("role `{role}` is not authorized for this user")]
    NotAuthorized {
        /// The role refused.
        role: String,
    },
}

fn role_name(policy: &Policy, role: RoleId) -> String {
    policy.role_name(role).unwrap_or("?").to_owned()
}

/// User-role assignments of one policy.
#[derive(Debug, Clone, Default)]
pub struct Assignments {
    users: HashMap<UserId, RoleSet>,
}

impl Assignments {
    /// No assignments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Assigns `role` to `user`, after checking static separation of duty.
    ///
    /// # Errors
    ///
    /// [`RbacError::StaticSod`] when the user would then be authorized for
    /// `limit` or more roles of a static set; [`RbacError::UnknownRole`].
    pub fn assign(&mut self, policy: &Policy, user: UserId, role: RoleId) -> Result<(), RbacError> {
        if role.index() >= policy.role_names.len() {
            return Err(RbacError::UnknownRole(role.index()));
        }
        let assigned = self.assigned(user).with(role);
        let authorized = policy.closure_of(assigned)?;
        for set in &policy.ssd {
            if authorized.intersection(set.roles).len() >= set.limit {
                return Err(RbacError::StaticSod {
                    set: set.name.to_string(),
                    role: role_name(policy, role),
                });
            }
        }
        self.users.insert(user, assigned);
        Ok(())
    }

    /// Removes `role` from `user`'s assigned roles. Sessions already open keep
    /// their roles until they are closed or the role is deactivated.
    pub fn deassign(&mut self, user: UserId, role: RoleId) {
        if let Some(set) = self.users.get_mut(&user) {
            *set = set.without(role);
        }
    }

    /// The roles assigned to `user`.
    pub fn assigned(&self, user: UserId) -> RoleSet {
        // A user without an entry has been assigned no role: the empty set
        // is exactly what that means.
        self.users.get(&user).copied().unwrap_or_default()
    }

    /// The roles `user` may activate: the assigned roles and all they inherit.
    ///
    /// # Errors
    ///
    /// [`RbacError::UnknownRole`] when the assignments hold a role that is
    /// not of `policy` (assignments made under another policy).
    pub fn authorized(&self, policy: &Policy, user: UserId) -> Result<RoleSet, RbacError> {
        policy.closure_of(self.assigned(user))
    }
}

/// An RBAC session: one user, the roles activated in it, and the facts from
/// authentication that decisions need.
#[derive(Debug, Clone)]
pub struct Session {
    user: UserId,
    patient: Option<PatientId>,
    mfa: bool,
    active: RoleSet,
    effective: RoleSet,
}

impl Session {
    /// A session for `user` with no role active. `mfa` says whether the
    /// login passed a second factor; `patient` is the user's own patient
    /// record, if they are a patient.
    pub fn new(user: UserId, mfa: bool, patient: Option<PatientId>) -> Self {
        Session {
            user,
            patient,
            mfa,
            active: RoleSet::EMPTY,
            effective: RoleSet::EMPTY,
        }
    }

    /// Activates `role`, after checking it is authorized for the user and
    /// that dynamic separation of duty holds.
    ///
    /// # Errors
    ///
    /// [`RbacError::NotAuthorized`], [`RbacError::DynamicSod`] or
    /// [`RbacError::UnknownRole`]; the session is unchanged.
    pub fn activate(
        &mut self,
        policy: &Policy,
        assignments: &Assignments,
        role: RoleId,
    ) -> Result<(), RbacError> {
        if role.index() >= policy.role_names.len() {
            return Err(RbacError::UnknownRole(role.index()));
        }
        if !assignments.authorized(policy, self.user)?.contains(role) {
            return Err(RbacError::NotAuthorized {
                role: role_name(policy, role),
            });
        }
        let carried = policy
            .inherited(role)
            .ok_or(RbacError::UnknownRole(role.index()))?;
        let effective = self.effective.union(carried);
        for set in &policy.dsd {
            if effective.intersection(set.roles).len() >= set.limit {
                return Err(RbacError::DynamicSod {
                    set: set.name.to_string(),
                    role: role_name(policy, role),
                });
            }
        }
        self.active = self.active.with(role);
        self.effective = effective;
        Ok(())
    }

    /// Deactivates `role` (no effect if it was not active).
    ///
    /// # Errors
    ///
    /// [`RbacError::UnknownRole`] when the session holds a role that is not
    /// of `policy`; the session is then emptied of roles, never left
    /// holding roles it cannot account for.
    pub fn deactivate(&mut self, policy: &Policy, role: RoleId) -> Result<(), RbacError> {
        self.active = self.active.without(role);
        self.recompute(policy)
    }

    /// Drops every active role the user is no longer authorized for (after a
    /// [`Assignments::deassign`]).
    ///
    /// # Errors
    ///
    /// [`RbacError::UnknownRole`] as for [`Session::deactivate`]; the
    /// session is then emptied of roles.
    pub fn refresh(&mut self, policy: &Policy, assignments: &Assignments) -> Result<(), RbacError> {
        match assignments.authorized(policy, self.user) {
            Ok(authorized) => {
                self.active = self.active.intersection(authorized);
                self.recompute(policy)
            }
            Err(e) => {
                self.active = RoleSet::EMPTY;
                self.effective = RoleSet::EMPTY;
                Err(e)
            }
        }
    }

    fn recompute(&mut self, policy: &Policy) -> Result<(), RbacError> {
        match policy.closure_of(self.active) {
            Ok(effective) => {
                self.effective = effective;
                Ok(())
            }
            Err(e) => {
                self.active = RoleSet::EMPTY;
                self.effective = RoleSet::EMPTY;
                Err(e)
            }
        }
    }

    /// The user of the session.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// Whether the session was authenticated with a second factor.
    pub fn mfa(&self) -> bool {
        self.mfa
    }

    /// The roles activated in the session.
    pub fn active_roles(&self) -> RoleSet {
        self.active
    }

    /// The activated roles and every role they inherit.
    pub fn effective_roles(&self) -> RoleSet {
        self.effective
    }

    /// The principal of a request made in this session, with the care teams
    /// the user is on now (from the caller's relationship store).
    pub fn principal<'a>(&self, care_teams: &'a [TeamId]) -> Principal<'a> {
        Principal::from_session(
            self.user,
            self.effective,
            self.mfa,
            self.patient,
            care_teams,
        )
    }
}
