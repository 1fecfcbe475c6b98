//! Storage backends: where payloads and key records live.

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use carevox_redact::{Pii, Secret};

use crate::stream::ReadAt;

/// A payload being written. Nothing is visible under the object's name until
/// [`PayloadSink::commit`] returns; dropping the sink without committing
/// discards it.
pub trait PayloadSink: Write + Send {
    /// Makes the payload durable and visible, atomically.
    fn commit(self: Box<Self>) -> io::Result<()>;
}

/// Where a vault keeps its objects.
///
/// Each object is two records: the payload (header, encrypted metadata and
/// segments; large, written once) and the key record (the wrapped data key;
/// small, replaced on every rewrap, destroyed to shred). Both writes must be
/// atomic: after a crash a record is either the old one, the new one, or
/// absent, never partial. An object exists when its key record exists.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Starts writing the payload of `id`, replacing any previous one on commit.
    fn create_payload(&self, id: &str) -> io::Result<Box<dyn PayloadSink>>;
    /// Opens the payload of `id` for random access.
    fn open_payload(&self, id: &str) -> io::Result<Box<dyn ReadAt + Send>>;
    /// Deletes the payload of `id`; `false` when there was none.
    fn delete_payload(&self, id: &str) -> io::Result<bool>;
    /// Writes (or atomically replaces) the key record of `id`, durably.
    fn put_key_record(&self, id: &str, record: &[u8]) -> io::Result<()>;
    /// Reads the key record of `id`.
    fn get_key_record(&self, id: &str) -> io::Result<Option<Vec<u8>>>;
    /// Deletes the key record of `id`, durably; `false` when there was none.
    fn delete_key_record(&self, id: &str) -> io::Result<bool>;
    /// The ids that have a key record, sorted.
    fn list_key_records(&self) -> io::Result<Vec<String>>;
    /// The ids that have a payload, sorted.
    fn list_payloads(&self) -> io::Result<Vec<String>>;
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);
const TMP_PREFIX: &str = ".tmp-";

/// The temporary file through which `name` in `dir` is written:
/// `.tmp-<name>-<pid>-<n>`.
fn tmp_path(dir: &Path, name: &str) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{TMP_PREFIX}{name}-{}-{n}", std::process::id()))
}

/// True when `file` is a temporary file of [`tmp_path`] for `name`: exactly
/// `.tmp-<name>-<digits>-<digits>`, so that the temporary files of another
/// file whose name starts with `name` are not taken for its own.
fn is_tmp_of(file: &str, name: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    file.strip_prefix(TMP_PREFIX)
        .and_then(|rest| rest.strip_prefix(name))
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

/// Removes the temporary files that a crash during [`atomic_write`] of
/// `path` left beside it, then syncs the directory. Returns how many were
/// removed.
pub(crate) fn remove_stale_temps(path: &Path) -> io::Result<usize> {
    let dir = parent(path)?;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = file_name(path)?;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|f| is_tmp_of(f, name))
        {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

fn file_name(path: &Path) -> io::Result<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))
}

fn create_private(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Creates `dir` and any missing parents readable by the owner only, so
/// that object ids and key records are not listed to other users.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn parent(path: &Path) -> io::Result<&Path> {
    path.parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))
}

/// Writes `bytes` to `path` atomically and durably: a temporary file in the
/// same directory (mode 0600), fsync, rename over `path`, fsync of the
/// directory.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path)?;
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let name = file_name(path)?;
    let tmp = tmp_path(dir, name);
    let result = (|| {
        let mut f = create_private(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The filesystem backend, the default.
///
/// Layout under the root directory: `objects/<id>.cvx` (payloads) and
/// `keys/<id>.key` (key records), each written through a temporary file
/// `.tmp-*` in the same directory, fsynced, renamed into place, and the
/// directory fsynced. Opening the backend removes temporary files left by a
/// crash. One process owns a vault directory at a time.
#[derive(Debug)]
pub struct FsBackend {
    objects: PathBuf,
    keys: PathBuf,
}

impl FsBackend {
    /// Opens (creating if needed) a vault directory.
    pub fn open(root: impl AsRef<Path>) -> io::Result<FsBackend> {
        let root = root.as_ref();
        let objects = root.join("objects");
        let keys = root.join("keys");
        for dir in [&objects, &keys] {
            create_private_dir(dir)?;
            let mut removed = false;
            for entry in fs::read_dir(dir)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                    fs::remove_file(entry.path())?;
                    removed = true;
                }
            }
            if removed {
                sync_dir(dir)?;
            }
        }
        Ok(FsBackend { objects, keys })
    }

    fn payload_path(&self, id: &str) -> PathBuf {
        self.objects.join(format!("{id}.cvx"))
    }

    fn key_path(&self, id: &str) -> PathBuf {
        self.keys.join(format!("{id}.key"))
    }
}

fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(parent(path)?)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

struct FsSink {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl Write for FsSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.write_all(buf),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PayloadSink for FsSink {
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        let file = self.file.take().ok_or(io::ErrorKind::BrokenPipe)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp, &self.dest)?;
        sync_dir(parent(&self.dest)?)
    }
}

impl Drop for FsSink {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Backend for FsBackend {
    fn create_payload(&self, id: &str) -> io::Result<Box<dyn PayloadSink>> {
        let dest = self.payload_path(id);
        let tmp = tmp_path(&self.objects, id);
        let file = create_private(&tmp)?;
        Ok(Box::new(FsSink {
            file: Some(file),
            tmp,
            dest,
        }))
    }

    fn open_payload(&self, id: &str) -> io::Result<Box<dyn ReadAt + Send>> {
        Ok(Box::new(File::open(self.payload_path(id))?))
    }

    fn delete_payload(&self, id: &str) -> io::Result<bool> {
        remove(&self.payload_path(id))
    }

    fn put_key_record(&self, id: &str, record: &[u8]) -> io::Result<()> {
        atomic_write(&self.key_path(id), record)
    }

    fn get_key_record(&self, id: &str) -> io::Result<Option<Vec<u8>>> {
        match File::open(self.key_path(id)) {
            Ok(f) => {
                // At most one byte more than the longest valid record, so a
                // huge file is refused by the parser without being read.
                let mut b = Vec::new();
                f.take(crate::format::MAX_KEY_RECORD_LEN as u64 + 1)
                    .read_to_end(&mut b)?;
                Ok(Some(b))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn delete_key_record(&self, id: &str) -> io::Result<bool> {
        remove(&self.key_path(id))
    }

    fn list_key_records(&self) -> io::Result<Vec<String>> {
        list_dir(&self.keys, ".key")
    }

    fn list_payloads(&self) -> io::Result<Vec<String>> {
        list_dir(&self.objects, ".cvx")
    }
}

fn list_dir(dir: &Path, suffix: &str) -> io::Result<Vec<String>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = name.strip_suffix(suffix)
            && crate::format::validate_object_id(id).is_ok()
        {
            ids.push(id.to_owned());
        }
    }
    ids.sort();
    Ok(ids)
}

/// `Debug` shows the ids only: key records are secrets (a printed copy
/// would outlive a shred), payloads are bulk ciphertext.
#[derive(Debug, Default)]
struct MemState {
    payloads: HashMap<String, Pii<Arc<Vec<u8>>>>,
    keys: HashMap<String, Secret<Vec<u8>>>,
}

/// An in-memory backend, for tests. Also lets a test read and replace the
/// stored bytes, to check what the vault does with damaged objects.
#[derive(Debug, Default, Clone)]
pub struct MemoryBackend {
    state: Arc<Mutex<MemState>>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored payload bytes of `id`.
    pub fn payload_bytes(&self, id: &str) -> Option<Vec<u8>> {
        self.lock().payloads.get(id).map(|p| p.expose().to_vec())
    }

    /// Replaces the stored payload bytes of `id`.
    pub fn set_payload_bytes(&self, id: &str, bytes: Vec<u8>) {
        self.lock()
            .payloads
            .insert(id.to_owned(), Pii::new(Arc::new(bytes)));
    }

    /// The stored key record of `id`.
    pub fn key_record_bytes(&self, id: &str) -> Option<Vec<u8>> {
        self.lock().keys.get(id).map(|k| k.expose().clone())
    }

    /// Replaces the stored key record of `id`.
    pub fn set_key_record_bytes(&self, id: &str, bytes: Vec<u8>) {
        self.lock().keys.insert(id.to_owned(), Secret::new(bytes));
    }
}

struct MemSink {
    data: Vec<u8>,
    id: String,
    state: Arc<Mutex<MemState>>,
}

impl Write for MemSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PayloadSink for MemSink {
    fn commit(self: Box<Self>) -> io::Result<()> {
        let MemSink { data, id, state } = *self;
        state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .payloads
            .insert(id, Pii::new(Arc::new(data)));
        Ok(())
    }
}

impl Backend for MemoryBackend {
    fn create_payload(&self, id: &str) -> io::Result<Box<dyn PayloadSink>> {
        Ok(Box::new(MemSink {
            data: Vec::new(),
            id: id.to_owned(),
            state: Arc::clone(&self.state),
        }))
    }

    fn open_payload(&self, id: &str) -> io::Result<Box<dyn ReadAt + Send>> {
        let p = self
            .lock()
            .payloads
            .get(id)
            .map(|p| Arc::clone(p.expose()))
            .ok_or(io::ErrorKind::NotFound)?;
        Ok(Box::new(p))
    }

    fn delete_payload(&self, id: &str) -> io::Result<bool> {
        Ok(self.lock().payloads.remove(id).is_some())
    }

    fn put_key_record(&self, id: &str, record: &[u8]) -> io::Result<()> {
        self.lock()
            .keys
            .insert(id.to_owned(), Secret::new(record.to_vec()));
        Ok(())
    }

    fn get_key_record(&self, id: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.lock().keys.get(id).map(|k| k.expose().clone()))
    }

    fn delete_key_record(&self, id: &str) -> io::Result<bool> {
        Ok(self.lock().keys.remove(id).is_some())
    }

    fn list_key_records(&self) -> io::Result<Vec<String>> {
        let mut ids: Vec<String> = self.lock().keys.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }

    fn list_payloads(&self) -> io::Result<Vec<String>> {
        let mut ids: Vec<String> = self.lock().payloads.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }
}
