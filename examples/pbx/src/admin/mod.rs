//! The admin console: commands for authorized users, reached through a
//! control socket of the running server.
//!
//! The audit log and the vault have one writer per data directory, the
//! `serve` process, so the console does not open them: `serve` listens on
//! `<data_dir>/admin.sock` (mode 0600, in the data directory of mode 0700;
//! a stale socket is replaced, anything else at that path stops the start)
//! and `carevox-pbx admin --config pbx.toml COMMAND` talks to it
//! ([`proto`] is the wire format).
//!
//! Every login (password and TOTP code) and every command is decided by
//! carevox-authz and audited, refused or done:
//!
//! - logins through [`carevox::authz::password`] (Argon2id hashes),
//!   [`carevox::authz::totp`] (a code is accepted once) and
//!   [`carevox::authz::lockout`] (the `[lockout]` policy, per submitted
//!   name); a session lives in a [`carevox::authz::login::SessionStore`]
//!   and is logged off after `[admin] idle_logoff_secs` without a command;
//! - commands through the access policy [`control::policy_text`]
//!   (carevox-authz's hospital policy, plus an `account` resource): a
//!   voicemail belongs to its mailbox (the callee), a call recording to
//!   the caller's and the callee's; an account lists the mailboxes whose
//!   care team it is on.
//!
//! The accounts persist in `<data_dir>/admin/accounts.toml` (password
//! hashes, never passwords) and their TOTP secrets in a vault of their own
//! under the vault's master key ([`accounts`]).

pub mod accounts;
pub mod client;
pub mod control;
pub mod proto;
