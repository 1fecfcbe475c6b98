//! Typed errors for the foreign side. Messages come from the library
//! crates' `Display`, which never echoes a secret or PHI.

/// A SIP or SDP failure.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum SipError {
    /// The message or header could not be parsed.
    #[error("{0}")]
    Parse(String),
    /// A message could not be built from the given parts.
    #[error("{0}")]
    Build(String),
    /// A header the call needs is missing.
    #[error("missing header: {0}")]
    MissingHeader(String),
    /// Digest authentication failed (challenge unusable or malformed).
    #[error("{0}")]
    Digest(String),
    /// SDP, SDES or offer/answer failed.
    #[error("{0}")]
    Sdp(String),
}

/// An SRTP failure.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum SrtpError {
    /// The authentication tag did not verify: the packet was altered or
    /// keyed differently.
    #[error("{0}")]
    AuthenticationFailed(String),
    /// The packet was already received (or is older than the replay window).
    #[error("{0}")]
    Replay(String),
    /// The packet is not well-formed RTP or RTCP.
    #[error("{0}")]
    Malformed(String),
    /// Key material, suite or SDES line is unusable.
    #[error("{0}")]
    InvalidKey(String),
    /// The SSRC has no stream (call `add_outbound_stream` first) or too many
    /// streams exist.
    #[error("{0}")]
    Stream(String),
    /// The key reached its packet limit: rekey.
    #[error("{0}")]
    KeyExpired(String),
    /// The batch's lengths do not describe its buffer.
    #[error("{0}")]
    InvalidBatch(String),
    /// Any other SRTP failure.
    #[error("{0}")]
    Other(String),
}

/// A vault failure.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum VaultError {
    /// No object with this id.
    #[error("{0}")]
    NotFound(String),
    /// An object with this id already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The object id is not acceptable.
    #[error("{0}")]
    InvalidId(String),
    /// Stored data failed authentication or is malformed (tampered, corrupt
    /// or truncated file).
    #[error("{0}")]
    Corrupt(String),
    /// The key provider failed or refused.
    #[error("{0}")]
    Key(String),
    /// The foreign reader or writer failed.
    #[error("{0}")]
    Stream(String),
    /// A file-system failure.
    #[error("{0}")]
    Io(String),
    /// An argument is out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// Any other vault failure.
    #[error("{0}")]
    Other(String),
}

/// An audit-log failure.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum AuditError {
    /// A key, record field or argument is not acceptable.
    #[error("{0}")]
    InvalidArgument(String),
    /// A proof did not verify.
    #[error("{0}")]
    ProofInvalid(String),
    /// Stored data is damaged.
    #[error("{0}")]
    Corrupt(String),
    /// A file-system failure.
    #[error("{0}")]
    Io(String),
    /// Any other audit failure.
    #[error("{0}")]
    Other(String),
}

/// An access-control or authentication failure.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum AuthzError {
    /// The policy text is not valid.
    #[error("{0}")]
    Policy(String),
    /// A role, action or resource type is not in the policy, or a role
    /// assignment breaks separation of duty.
    #[error("{0}")]
    Unknown(String),
    /// The password or the TOTP code is wrong, or the code was used already.
    #[error("{0}")]
    Authentication(String),
    /// Input is malformed (password, TOTP secret or code, hash).
    #[error("{0}")]
    InvalidInput(String),
    /// A login session is unknown, expired or idle.
    #[error("{0}")]
    Session(String),
    /// Any other failure.
    #[error("{0}")]
    Other(String),
}

/// What a foreign callback (key provider, reader, writer) reports when it
/// fails. Its text reaches Rust error messages: put no secret or PHI in it.
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The callback failed for this reason.
    #[error("{reason}")]
    Failed {
        /// Why, without secrets or PHI.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for CallbackError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CallbackError::Failed {
            reason: format!("unexpected foreign error: {}", e.reason),
        }
    }
}
