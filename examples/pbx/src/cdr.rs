//! Call detail records. A CDR names who called whom, when and for how long:
//! protected health information, so CDRs are sealed in the vault like
//! voicemail, never written to a plaintext table or a log.
//!
//! The server hands each finished call to a [`CdrWriter`]; the writer seals
//! them in batches (one vault object per batch: at most
//! [`CdrSettings::batch`] records, or what [`CdrSettings::flush`] gathered),
//! so that a busy PBX does not write one object per call. Each batch is a
//! vault object `cdr-…` of `application/x-ndjson`, one [`CallRecord`] per
//! line, with its own retention date (`[retention] call_records_days`).
//! The audit log holds every call's start, answer and end in the same
//! moment as the call; a CDR is the summary an administrator reads, and
//! the records of the last seconds before a crash are only in the audit
//! log.
//!
//! A batch the vault refuses (a full disk) is kept and tried again at the
//! next flush; past [`MAX_PENDING`] waiting records, new ones are counted
//! and warned about, never dropped without a word.

use std::sync::Arc;
use std::time::Duration;

use carevox::call_audit::{EndedBy, VoicemailReason};
use carevox::redact::Pii;
use carevox::vault::{Metadata, Vault};
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};
use zeroize::Zeroizing;

/// The media type of a batch.
pub const CDR_CONTENT_TYPE: &str = "application/x-ndjson";
/// The prefix of a batch's vault object id.
pub const CDR_ID_PREFIX: &str = "cdr-";
/// The label naming what a vault object holds; a batch's is [`CDR_KIND`].
pub const KIND_LABEL: &str = "kind";
/// The [`KIND_LABEL`] of a batch of call detail records.
pub const CDR_KIND: &str = "call_records";
/// The most records waiting for the vault; past it new ones are counted as
/// lost (and warned about) until the vault takes the waiting ones.
pub const MAX_PENDING: usize = 100_000;

/// How a call ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "disposition", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Disposition {
    /// The callee answered.
    Answered,
    /// The caller reached voicemail.
    Voicemail {
        /// Why: `no_answer`, `busy` or `unreachable`.
        reason: VoicemailCause,
    },
    /// The PBX or the callee refused the call with this status.
    Refused {
        /// The SIP status the caller got.
        status: u16,
    },
    /// The caller gave up, or the call ended, before any answer.
    Unanswered,
    /// The caller called the voicemail number to hear their messages.
    Mailbox,
}

/// Why a call reached voicemail (the serialisable twin of
/// [`VoicemailReason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VoicemailCause {
    /// Nobody answered in time.
    NoAnswer,
    /// The callee was busy or declined.
    Busy,
    /// No phone of the callee could be reached.
    Unreachable,
}

impl From<VoicemailReason> for VoicemailCause {
    fn from(r: VoicemailReason) -> VoicemailCause {
        match r {
            VoicemailReason::NoAnswer => VoicemailCause::NoAnswer,
            VoicemailReason::Busy => VoicemailCause::Busy,
            _ => VoicemailCause::Unreachable,
        }
    }
}

/// Who ended a call (the serialisable twin of [`EndedBy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Ender {
    /// The caller.
    Caller,
    /// The callee.
    Callee,
    /// The PBX (a refusal, a failed leg, the longest message, a shutdown).
    Pbx,
}

impl From<EndedBy> for Ender {
    fn from(e: EndedBy) -> Ender {
        match e {
            EndedBy::Caller => Ender::Caller,
            EndedBy::Callee => Ender::Callee,
            _ => Ender::Pbx,
        }
    }
}

/// One call's detail record. The parties, the Call-ID and the caller's
/// address are PHI: `<redacted>` in `Debug`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The SIP Call-ID of the caller's leg.
    pub call_id: Pii<String>,
    /// The caller's SIP user name.
    pub caller: Pii<String>,
    /// The callee's SIP user name (empty when the number reached nobody).
    pub callee: Pii<String>,
    /// The caller's IP address, as the PBX saw it.
    pub caller_address: Pii<Option<String>>,
    /// When the PBX took the call, seconds since the Unix epoch.
    pub started_at: u64,
    /// When the callee answered (or voicemail took the call).
    pub answered_at: Option<u64>,
    /// When the call ended.
    pub ended_at: u64,
    /// Seconds between the answer and the end.
    pub talk_secs: u64,
    /// How the call ended up.
    #[serde(flatten)]
    pub disposition: Disposition,
    /// Who ended it.
    pub ended_by: Ender,
}

impl CallRecord {
    /// Whether `user` took part (as caller or callee).
    pub fn involves(&self, user: &str) -> bool {
        self.caller.expose() == user || self.callee.expose() == user
    }
}

/// Why a batch could not be read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CdrError {
    /// A line is not a call detail record; its number is given, never its
    /// content.
    #[error("line {line} of the batch is not a call detail record")]
    Line {
        /// The line, from 1.
        line: usize,
    },
}

/// Encodes `records` as a batch: one JSON object per line.
pub fn encode_batch(records: &[CallRecord]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(records.len() * 256));
    for r in records {
        // Serialising plain strings and numbers into a Vec cannot fail.
        if serde_json::to_writer(&mut *out, r).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

/// Decodes a batch written by [`encode_batch`]; a line that is not a
/// record fails the whole batch (it was sealed whole, so damage means a
/// bug, not a torn write).
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<CallRecord>, CdrError> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| serde_json::from_slice(l).map_err(|_| CdrError::Line { line: i + 1 }))
        .collect()
}

/// When the batch with vault object id `id` was sealed (Unix seconds):
/// every record in it ended at or before that time.
pub fn sealed_at(id: &str) -> Option<u64> {
    id.strip_prefix(CDR_ID_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Whether the vault object `id` with `metadata` is a batch of CDRs.
pub fn is_batch(id: &str, metadata: &Metadata) -> bool {
    id.starts_with(CDR_ID_PREFIX) && metadata.get_label(KIND_LABEL) == Some(CDR_KIND)
}

/// The writer's numbers.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CdrSettings {
    /// The longest a finished call waits before its record is sealed.
    pub flush: Duration,
    /// The most records in one vault object.
    pub batch: usize,
    /// How long a batch is kept before the retention purge shreds it.
    pub retention: Duration,
}

/// The default of [`CdrSettings::flush`].
pub const DEFAULT_FLUSH: Duration = Duration::from_secs(30);
/// The default of [`CdrSettings::batch`].
pub const DEFAULT_BATCH: usize = 2000;

impl CdrSettings {
    /// Settings with the default flush and batch size, and `retention`.
    pub fn new(retention: Duration) -> CdrSettings {
        CdrSettings {
            flush: DEFAULT_FLUSH,
            batch: DEFAULT_BATCH,
            retention,
        }
    }

    /// The same with records sealed at most `flush` after their call.
    #[must_use]
    pub fn with_flush(mut self, flush: Duration) -> CdrSettings {
        self.flush = flush;
        self
    }

    /// The same with at most `batch` records an object (at least one).
    #[must_use]
    pub fn with_batch(mut self, batch: usize) -> CdrSettings {
        self.batch = batch.max(1);
        self
    }
}

/// What a writer did over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CdrReport {
    /// Records sealed in the vault.
    pub sealed: u64,
    /// Vault objects written.
    pub batches: u64,
    /// Records lost: refused past [`MAX_PENDING`], or still unsealed when
    /// the writer stopped because the vault kept failing.
    pub lost: u64,
}

/// The server's end of a CDR writer: hands records over, then closes it.
#[derive(Debug)]
pub struct CdrWriter {
    tx: mpsc::UnboundedSender<CallRecord>,
    task: JoinHandle<CdrReport>,
}

/// A clock giving Unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

impl CdrWriter {
    /// Starts a writer sealing into `vault`. Must be called inside a tokio
    /// runtime.
    pub fn start(
        vault: Arc<Vault>,
        rng: Arc<dyn SecureRandom + Send + Sync>,
        settings: CdrSettings,
        clock: Clock,
    ) -> CdrWriter {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(write_loop(vault, rng, settings, clock, rx));
        CdrWriter { tx, task }
    }

    /// Hands over one finished call's record.
    pub fn record(&self, record: CallRecord) {
        if self.tx.send(record).is_err() {
            warn!("call detail record lost: the writer stopped");
        }
    }

    /// Seals what is waiting and stops; returns what was done.
    pub async fn close(self) -> CdrReport {
        drop(self.tx);
        match self.task.await {
            Ok(report) => report,
            Err(e) => {
                warn!(error = %e, "call detail record writer failed");
                CdrReport::default()
            }
        }
    }
}

async fn write_loop(
    vault: Arc<Vault>,
    rng: Arc<dyn SecureRandom + Send + Sync>,
    settings: CdrSettings,
    clock: Clock,
    mut rx: mpsc::UnboundedReceiver<CallRecord>,
) -> CdrReport {
    let mut report = CdrReport::default();
    let mut pending: Vec<CallRecord> = Vec::new();
    // When the oldest waiting record must be sealed.
    let mut due: Option<Instant> = None;
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Some(record) => {
                    if pending.len() >= MAX_PENDING {
                        report.lost += 1;
                        warn!(lost = report.lost, "call detail record lost: the vault is not taking records");
                        continue;
                    }
                    pending.push(record);
                    if due.is_none() {
                        due = Some(Instant::now() + settings.flush);
                    }
                    if pending.len() >= settings.batch {
                        seal(&vault, &rng, &settings, &clock, &mut pending, &mut report).await;
                        due = (!pending.is_empty()).then(|| Instant::now() + settings.flush);
                    }
                }
                None => break,
            },
            () = sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                seal(&vault, &rng, &settings, &clock, &mut pending, &mut report).await;
                due = (!pending.is_empty()).then(|| Instant::now() + settings.flush);
            }
        }
    }
    // Closing: one more try for what waits.
    seal(&vault, &rng, &settings, &clock, &mut pending, &mut report).await;
    if !pending.is_empty() {
        report.lost += pending.len() as u64;
        warn!(
            lost = pending.len(),
            "call detail records not sealed at shutdown: the vault refused them"
        );
    }
    info!(
        sealed = report.sealed,
        batches = report.batches,
        lost = report.lost,
        "call detail records"
    );
    report
}

/// Seals `pending` in objects of at most `settings.batch` records; what the
/// vault refuses stays in `pending`.
async fn seal(
    vault: &Arc<Vault>,
    rng: &Arc<dyn SecureRandom + Send + Sync>,
    settings: &CdrSettings,
    clock: &Clock,
    pending: &mut Vec<CallRecord>,
    report: &mut CdrReport,
) {
    while !pending.is_empty() {
        let n = pending.len().min(settings.batch);
        let batch: Vec<CallRecord> = pending.drain(..n).collect();
        let vault = vault.clone();
        let rng = rng.clone();
        let now = clock();
        let retention = settings.retention.as_secs();
        let job = tokio::task::spawn_blocking(move || {
            let result = seal_batch(&vault, &*rng, &batch, now, retention);
            (batch, result)
        })
        .await;
        match job {
            Ok((_, Ok(id))) => {
                report.sealed += n as u64;
                report.batches += 1;
                debug!(records = n, object = %id, "call detail records sealed");
            }
            Ok((batch, Err(e))) => {
                warn!(error = %e, records = n, "call detail records not sealed; retrying later");
                // Back at the front, in order.
                pending.splice(0..0, batch);
                return;
            }
            Err(e) => {
                report.lost += n as u64;
                warn!(error = %e, records = n, "call detail records lost: the sealing task failed");
            }
        }
    }
}

/// Seals `batch` as one vault object, created at `now` and kept
/// `retention` seconds; returns its id. What the writer does for each
/// batch, for tools that import records.
pub fn seal_batch(
    vault: &Vault,
    rng: &dyn SecureRandom,
    batch: &[CallRecord],
    now: u64,
    retention: u64,
) -> Result<String, carevox::vault::Error> {
    let mut tag = [0u8; 6];
    rng.fill(&mut tag).map_err(|_| carevox::vault::Error::Rng)?;
    let id = format!(
        "{CDR_ID_PREFIX}{now}-{}",
        data_encoding::HEXLOWER.encode(&tag)
    );
    let first = batch.iter().map(|r| r.started_at).min().unwrap_or(now);
    let last = batch.iter().map(|r| r.ended_at).max().unwrap_or(now);
    let metadata = Metadata::new(
        id.clone(),
        CDR_CONTENT_TYPE,
        now,
        now.saturating_add(retention),
    )
    .label(KIND_LABEL, CDR_KIND)
    .label("records", batch.len().to_string())
    .label("first_started_at", first.to_string())
    .label("last_ended_at", last.to_string());
    let body = encode_batch(batch);
    vault.put(rng, metadata, &body)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u64) -> CallRecord {
        CallRecord {
            call_id: Pii::new(format!("call-{n}@clinic")),
            caller: Pii::new("alice".into()),
            callee: Pii::new("bob".into()),
            caller_address: Pii::new(Some("127.0.0.1".into())),
            started_at: 1_700_000_000 + n,
            answered_at: Some(1_700_000_002 + n),
            ended_at: 1_700_000_010 + n,
            talk_secs: 8,
            disposition: Disposition::Voicemail {
                reason: VoicemailCause::NoAnswer,
            },
            ended_by: Ender::Caller,
        }
    }

    #[test]
    fn a_batch_reads_back_as_written() {
        let records = vec![sample(1), sample(2)];
        let bytes = encode_batch(&records);
        assert_eq!(decode_batch(&bytes).expect("decodes"), records);
        let line = std::str::from_utf8(&bytes).expect("utf-8");
        assert!(line.contains(r#""disposition":"voicemail","reason":"no_answer""#));
    }

    #[test]
    fn a_damaged_line_is_named_by_number_only() {
        let mut bytes = encode_batch(&[sample(1)]).to_vec();
        bytes.extend_from_slice(b"{\"caller\":\"5551234567\"}\n");
        let e = decode_batch(&bytes).expect_err("refused");
        assert!(matches!(e, CdrError::Line { line: 2 }));
        assert!(!e.to_string().contains("5551234567"));
    }

    /// A vault backend that refuses new objects while `fail` is set.
    #[derive(Debug)]
    struct Flaky {
        inner: carevox::vault::MemoryBackend,
        fail: std::sync::atomic::AtomicBool,
    }

    impl carevox::vault::Backend for Flaky {
        fn create_payload(
            &self,
            id: &str,
        ) -> std::io::Result<Box<dyn carevox::vault::PayloadSink>> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(std::io::Error::other("disk full"));
            }
            self.inner.create_payload(id)
        }
        fn open_payload(
            &self,
            id: &str,
        ) -> std::io::Result<Box<dyn carevox::vault::ReadAt + Send>> {
            self.inner.open_payload(id)
        }
        fn delete_payload(&self, id: &str) -> std::io::Result<bool> {
            self.inner.delete_payload(id)
        }
        fn put_key_record(&self, id: &str, record: &[u8]) -> std::io::Result<()> {
            self.inner.put_key_record(id, record)
        }
        fn get_key_record(&self, id: &str) -> std::io::Result<Option<Vec<u8>>> {
            self.inner.get_key_record(id)
        }
        fn delete_key_record(&self, id: &str) -> std::io::Result<bool> {
            self.inner.delete_key_record(id)
        }
        fn list_key_records(&self) -> std::io::Result<Vec<String>> {
            self.inner.list_key_records()
        }
        fn list_payloads(&self) -> std::io::Result<Vec<String>> {
            self.inner.list_payloads()
        }
    }

    struct Fixture {
        vault: Arc<Vault>,
        backend: Arc<Flaky>,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        #[allow(clippy::disallowed_methods)]
        let rng = ring::rand::SystemRandom::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let keys =
            carevox::vault::LocalKeyFile::create(dir.path().join("kek"), &rng).expect("keys");
        let backend = Arc::new(Flaky {
            inner: carevox::vault::MemoryBackend::new(),
            fail: std::sync::atomic::AtomicBool::new(false),
        });
        let vault = Arc::new(Vault::new(backend.clone(), Arc::new(keys)));
        Fixture {
            vault,
            backend,
            _dir: dir,
        }
    }

    fn writer(f: &Fixture, batch: usize, flush_ms: u64) -> CdrWriter {
        #[allow(clippy::disallowed_methods)]
        let rng = Arc::new(ring::rand::SystemRandom::new());
        CdrWriter::start(
            f.vault.clone(),
            rng,
            CdrSettings::new(Duration::from_secs(86_400))
                .with_batch(batch)
                .with_flush(Duration::from_millis(flush_ms)),
            Arc::new(|| 1_800_000_000),
        )
    }

    fn sealed(vault: &Vault) -> Vec<Vec<CallRecord>> {
        let mut ids: Vec<String> = vault
            .list()
            .expect("list")
            .into_iter()
            .map(|o| o.id)
            .collect();
        ids.sort();
        ids.iter()
            .map(|id| {
                let (meta, bytes) = vault.get(id).expect("get");
                assert!(is_batch(id, &meta));
                assert_eq!(sealed_at(id), Some(1_800_000_000));
                assert_eq!(meta.retention_until, 1_800_000_000 + 86_400);
                decode_batch(&bytes).expect("decode")
            })
            .collect()
    }

    #[tokio::test]
    async fn records_are_sealed_by_count_and_by_time() {
        let f = fixture();
        let w = writer(&f, 2, 200);
        for n in 0..3 {
            w.record(sample(n));
        }
        // Two make a full batch at once; the third waits for the flush.
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(sealed(&f.vault).iter().map(Vec::len).sum::<usize>(), 2);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let all: Vec<CallRecord> = sealed(&f.vault).into_iter().flatten().collect();
        assert_eq!(all.len(), 3);
        let report = w.close().await;
        assert_eq!((report.sealed, report.batches, report.lost), (3, 2, 0));
    }

    #[tokio::test]
    async fn a_refusing_vault_keeps_the_records_until_it_takes_them() {
        let f = fixture();
        f.backend
            .fail
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let w = writer(&f, 100, 30);
        w.record(sample(1));
        w.record(sample(2));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(sealed(&f.vault).is_empty());
        f.backend
            .fail
            .store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(sealed(&f.vault), vec![vec![sample(1), sample(2)]]);
        let report = w.close().await;
        assert_eq!((report.sealed, report.lost), (2, 0));
    }

    #[tokio::test]
    async fn records_the_vault_never_takes_are_counted_as_lost() {
        let f = fixture();
        f.backend
            .fail
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let w = writer(&f, 100, 10_000);
        w.record(sample(1));
        w.record(sample(2));
        let report = w.close().await;
        assert_eq!((report.sealed, report.lost), (0, 2));
    }

    #[test]
    fn debug_never_shows_the_parties() {
        let shown = format!("{:?}", sample(1));
        for phi in ["alice", "bob", "call-1@clinic", "127.0.0.1"] {
            assert!(!shown.contains(phi), "{phi} in {shown}");
        }
    }
}
