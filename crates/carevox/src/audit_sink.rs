//! Where the glue's audit records go: an [`AuditSink`] is anything that
//! appends a [`Record`] durably and returns its sequence number, such as
//! the audit log itself, or the log with a monitor watching it.
//!
//! A server that answers many requests a second shares one `fdatasync`
//! among them (group commit): it [`submit`](AuditSink::submit)s the records
//! of every request it handles, [`sync`](AuditSink::sync)s once, and only
//! then sends the answers. A sink that cannot stage records makes each one
//! durable in `submit`, which is always correct, only slower.

use carevox_audit::{AuditLog, Record};

/// Appends audit records; `Send + Sync` so that the vault's hook, called
/// from any thread, can hold one.
pub trait AuditSink: Send + Sync {
    /// Appends `record` and returns its sequence number once it is durable.
    fn append(&self, record: &Record) -> Result<u64, carevox_audit::Error>;

    /// Stages `record` and returns its sequence number, durable or not: it
    /// is durable once [`sync`](AuditSink::sync) returns. The default makes
    /// it durable at once ([`append`](AuditSink::append)).
    fn submit(&self, record: &Record) -> Result<u64, carevox_audit::Error> {
        self.append(record)
    }

    /// Makes every record submitted so far durable. The default has nothing
    /// to do: the default [`submit`](AuditSink::submit) is durable already.
    fn sync(&self) -> Result<(), carevox_audit::Error> {
        Ok(())
    }
}

impl AuditSink for AuditLog {
    fn append(&self, record: &Record) -> Result<u64, carevox_audit::Error> {
        AuditLog::append(self, record)
    }

    fn submit(&self, record: &Record) -> Result<u64, carevox_audit::Error> {
        AuditLog::submit(self, record)
    }

    fn sync(&self) -> Result<(), carevox_audit::Error> {
        AuditLog::sync(self).map(drop)
    }
}

impl<S: AuditSink + ?Sized> AuditSink for std::sync::Arc<S> {
    fn append(&self, record: &Record) -> Result<u64, carevox_audit::Error> {
        (**self).append(record)
    }

    fn submit(&self, record: &Record) -> Result<u64, carevox_audit::Error> {
        (**self).submit(record)
    }

    fn sync(&self) -> Result<(), carevox_audit::Error> {
        (**self).sync()
    }
}
