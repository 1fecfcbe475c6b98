//! The scheduled retention purge. Each voicemail and each batch of call
//! detail records carries its retention date in its authenticated header
//! (`[retention] voicemail_days` or `call_records_days` after it was
//! stored); a pass deletes from the vault every object whose date has
//! passed, its data key first (crypto-shredding: a copy of the payload in
//! a backup can no longer be read), and the vault's audit hook records each
//! deletion as a purge. A message whose header cannot be read is kept and
//! counted, never deleted on a guess.
//!
//! `serve` runs a pass at start and then every [`PURGE_EVERY`]. Logs carry
//! counts only.

use std::sync::Arc;
use std::time::Duration;

use carevox::vault::{PurgeReport, Vault};
use tracing::{info, warn};

use crate::server::unix_now;

/// How often `serve` purges.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// One pass: deletes what has expired at `now` (Unix seconds).
pub fn purge_once(vault: &Vault, now: u64) -> Result<PurgeReport, carevox::vault::Error> {
    let report = vault.purge_expired(now)?;
    if report.failed.is_empty() {
        info!(
            purged = report.purged.len(),
            kept = report.kept,
            "retention purge"
        );
    } else {
        warn!(
            purged = report.purged.len(),
            kept = report.kept,
            unreadable = report.failed.len(),
            "retention purge: some messages could not be read and were kept"
        );
    }
    Ok(report)
}

/// Runs a pass now and then every `every`, each on a blocking thread,
/// until the task is aborted.
pub fn spawn_purge(vault: Arc<Vault>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let vault = vault.clone();
            let pass = tokio::task::spawn_blocking(move || purge_once(&vault, unix_now())).await;
            match pass {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!(error = %e, "retention purge failed"),
                Err(e) => warn!(error = %e, "retention purge did not complete"),
            }
        }
    })
}
