//! Where the glue's audit records go: an [`AuditSink`] is anything that
//! appends a [`Record`] durably and returns its sequence number, such as
//! the audit log itself, or the log with a monitor watching it.
//!
//! A server that answers many requests a second shares one `fdatasync`
//! among them (group commit): it [`submit`](AuditSink::submit)s the records
//! of every request it handles, [`sync`](AuditSink::sync)s once, and only
//! then sends the answers. A sink that cannot stage records makes each one
//! durable in `submit`, which is always correct, only slower.

use std::sync::{Arc, Mutex, PoisonError};

use carevox_audit::monitor::{Alert, Monitor, MonitorConfig};
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

impl<S: AuditSink + ?Sized> AuditSink for Arc<S> {
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

/// Where a [`Monitored`] sink hands its alerts.
pub type AlertHandler = Box<dyn Fn(&Alert) + Send + Sync>;

/// An [`AuditSink`] that runs carevox-audit's monitoring rules
/// ([`Monitor`]: repeated failed logins per user and per address, a login
/// from a new network, emergency access, access out of hours, many
/// patients) over every record appended through it, and hands each alert
/// to its handler once the record is in the log (submitted or appended).
///
/// Put every writer of a log behind the same `Monitored` sink: the rules
/// see only what passes through it. Alerts name people (their fields are
/// [`Pii`](carevox_redact::Pii)); a handler that logs should log
/// [`alert_kind`] and [`alert_seq`] only, the record itself being in the
/// audit log for those entitled to read it.
pub struct Monitored<S: ?Sized> {
    monitor: Mutex<Monitor>,
    on_alert: AlertHandler,
    inner: Arc<S>,
}

impl<S: ?Sized> std::fmt::Debug for Monitored<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The monitor's Debug prints its rules and counts, never who.
        f.debug_struct("Monitored")
            .field(
                "monitor",
                &*self.monitor.lock().unwrap_or_else(PoisonError::into_inner),
            )
            .finish_non_exhaustive()
    }
}

impl<S: AuditSink + ?Sized> Monitored<S> {
    /// Watches what is appended to `inner` with the rules of `config`.
    pub fn new(inner: Arc<S>, config: MonitorConfig, on_alert: AlertHandler) -> Monitored<S> {
        Monitored {
            monitor: Mutex::new(Monitor::new(config)),
            on_alert,
            inner,
        }
    }

    fn watch(&self, seq: u64, record: &Record) {
        let mut alerts = Vec::new();
        self.monitor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(seq, record, &mut alerts);
        for a in &alerts {
            (self.on_alert)(a);
        }
    }
}

impl<S: AuditSink + ?Sized> AuditSink for Monitored<S> {
    fn append(&self, record: &Record) -> Result<u64, carevox_audit::Error> {
        let seq = self.inner.append(record)?;
        self.watch(seq, record);
        Ok(seq)
    }

    fn submit(&self, record: &Record) -> Result<u64, carevox_audit::Error> {
        let seq = self.inner.submit(record)?;
        self.watch(seq, record);
        Ok(seq)
    }

    fn sync(&self) -> Result<(), carevox_audit::Error> {
        self.inner.sync()
    }
}

/// The kind of an alert, safe to log.
pub fn alert_kind(alert: &Alert) -> &'static str {
    match alert {
        Alert::RepeatedFailedLogins { .. } => "repeated-failed-logins",
        Alert::NewNetwork { .. } => "new-network",
        Alert::BreakTheGlass { .. } => "break-the-glass",
        Alert::OutsideWorkingHours { .. } => "outside-working-hours",
        Alert::ManyPatients { .. } => "many-patients",
        Alert::BulkReads { .. } => "bulk-reads",
        _ => "other",
    }
}

/// The sequence number of the record that raised an alert, safe to log.
pub fn alert_seq(alert: &Alert) -> Option<u64> {
    match alert {
        Alert::RepeatedFailedLogins { seq, .. }
        | Alert::NewNetwork { seq, .. }
        | Alert::BreakTheGlass { seq, .. }
        | Alert::OutsideWorkingHours { seq, .. }
        | Alert::ManyPatients { seq, .. }
        | Alert::BulkReads { seq, .. } => Some(*seq),
        _ => None,
    }
}
