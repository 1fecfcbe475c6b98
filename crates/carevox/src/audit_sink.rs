//! Where the glue's audit records go: an [`AuditSink`] is anything that
//! appends a [`Record`] durably and returns its sequence number, such as
//! the audit log itself, or the log with a monitor watching it.

use carevox_audit::{AuditLog, Record};

/// Appends audit records; `Send + Sync` so that the vault's hook, called
/// from any thread, can hold one.
pub trait AuditSink: Send + Sync {
    /// Appends `record` and returns its sequence number once it is durable.
    fn append(&self, record: &Record) -> Result<u64, carevox_audit::Error>;
}

impl AuditSink for AuditLog {
    fn append(&self, record: &Record) -> Result<u64, carevox_audit::Error> {
        AuditLog::append(self, record)
    }
}

impl<S: AuditSink + ?Sized> AuditSink for std::sync::Arc<S> {
    fn append(&self, record: &Record) -> Result<u64, carevox_audit::Error> {
        (**self).append(record)
    }
}
