//! Where a log's files live: the [`Storage`] trait, the file-system
//! implementation [`FsStorage`] (the default) and [`MemoryStorage`] for
//! tests.
//!
//! The log, the verifier, the index and the readers ([`crate::for_each_record_in`] and the like) do
//! all their I/O through a `Storage`. Files are named by paths: a log is a
//! live directory (segments `seg-<20 digits>.cva`, the checkpoint file
//! `checkpoints.cvc`, the index `index.cvi`) and any number of archive
//! directories holding sealed segments. Errors are [`std::io::Error`]s; the
//! callers add the path.
//!
//! # Durability
//!
//! The log acknowledges a record only after [`AppendFile::sync`] returned
//! for the bytes that hold it, so each method says what is durable (would
//! survive a crash or power loss) when it returns:
//!
//! | method | durable on return |
//! |---|---|
//! | [`Storage::create_append`] | the new file, its initial bytes and its directory entry |
//! | [`AppendFile::append`] | nothing |
//! | [`AppendFile::sync`] | every byte appended through the handle |
//! | [`Storage::truncate`] | the new length |
//! | [`Storage::remove`] | nothing (after a crash the file may be back) |
//! | [`Storage::replace`] | the new contents; the swap is atomic but its directory entry is durable only after [`Storage::sync_dir`] |
//! | [`Storage::move_file`] | the whole file at its destination; both directory entries only after [`Storage::sync_dir`] of each directory |
//! | [`Storage::sync_dir`] | every entry added to or removed from the directory |

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A file opened for appending, from [`Storage::create_append`] or
/// [`Storage::open_append`]. One writer at a time: the log holds it under
/// a lock.
pub trait AppendFile: Send + fmt::Debug {
    /// Appends all of `bytes` at the end of the file. Nothing is promised
    /// durable until [`AppendFile::sync`] returns.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes every byte appended so far durable (`fdatasync` on files).
    fn sync(&mut self) -> io::Result<()>;
}

/// Where the files of a log are kept. Object safe: the log holds an
/// `Arc<dyn Storage>`.
///
/// The operations are the ones the log needs and no more: whole-file and
/// ranged reads, appends with an explicit durable sync, cutting a torn
/// tail, removing, atomically replacing a small file (the index) and moving
/// sealed segments to an archive directory. The module documentation lists
/// what each method makes durable.
///
/// One log owns a live directory at a time; implementations need not guard
/// against two writers of one file.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates `dir` and any missing parents, readable by their owner only
    /// (audit records carry PHI). Not an error if it exists.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;

    /// The names of the files in `dir`, in no particular order (names that
    /// are not UTF-8 are left out). An error of kind
    /// [`io::ErrorKind::NotFound`] if `dir` does not exist.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// The length of the file at `path` in bytes
    /// ([`io::ErrorKind::NotFound`] if there is none).
    fn file_len(&self, path: &Path) -> io::Result<u64>;

    /// Replaces the contents of `buf` with the whole file at `path`
    /// ([`io::ErrorKind::NotFound`] if there is none).
    fn read_into(&self, path: &Path, buf: &mut Vec<u8>) -> io::Result<()>;

    /// The whole file at `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_into(path, &mut buf)?;
        Ok(buf)
    }

    /// Fills `buf` from byte `offset` of the file at `path`; returns how
    /// many bytes were read, fewer than `buf.len()` only at the end of the
    /// file.
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// Creates the file `path`, which must not exist, readable and writable
    /// by its owner only, writes `initial` into it and returns it opened
    /// for appending. When it returns, the file, `initial` and the file's
    /// entry in its directory are durable. The file appears whole: a crash
    /// never leaves it under its name with only part of `initial`.
    fn create_append(&self, path: &Path, initial: &[u8]) -> io::Result<Box<dyn AppendFile>>;

    /// Opens the existing file `path` for appending.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;

    /// Cuts the file `path` to `len` bytes (a torn tail); the new length is
    /// durable when it returns.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;

    /// Removes the file `path`. The removal is not promised durable: the
    /// log removes only what its recovery would remove again.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Replaces the file `path` with `bytes` atomically: after a crash it
    /// holds the old contents or the new, never a mix. The new contents are
    /// durable before the swap; the swap itself is durable after
    /// [`Storage::sync_dir`] of its directory.
    fn replace(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;

    /// Moves the file `from` to `to`, in another directory and possibly on
    /// another device. When it returns, `to` holds the whole file durably;
    /// the new and the removed directory entries are durable after
    /// [`Storage::sync_dir`] of each directory.
    fn move_file(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Makes the entries added to or removed from `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The file-system storage, the default: files in real directories.
///
/// Directories are created with mode 0700 and files with mode 0600 (on
/// Unix). Appends are made durable with `fdatasync`; a created file with
/// `fsync` of the file and of its directory; an archive move is a rename,
/// or, across devices, a copy that is fsynced (file and directory) before
/// the original is removed. [`Storage::replace`] writes `<name>.tmp`,
/// fsyncs it and renames it over `<name>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStorage;

/// Creates `dir` and any missing parents readable by the owner only.
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

/// Options for a new file readable and writable by the owner only.
fn private_file_options() -> OpenOptions {
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

fn fs_sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(path: &Path) -> io::Result<&Path> {
    path.parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no parent"))
}

/// A file of [`FsStorage`] opened for appending.
#[derive(Debug)]
struct FsAppendFile {
    file: File,
}

impl AppendFile for FsAppendFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

impl Storage for FsStorage {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        create_private_dir(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn read_into(&self, path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        File::open(path)?.read_to_end(buf).map(drop)
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut f = File::open(path)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut done = 0;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            match f.read(rest) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn create_append(&self, path: &Path, initial: &[u8]) -> io::Result<Box<dyn AppendFile>> {
        // Whole or not at all: the initial bytes are written and synced
        // under a temporary name, then the file takes its name. A crash
        // never leaves a file with a partial header.
        if fs::metadata(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "file already exists",
            ));
        }
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
        let mut tmp_name = name.to_os_string();
        tmp_name.push(".new");
        let tmp = path.with_file_name(tmp_name);
        let mut f = private_file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(initial)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        fs_sync_dir(parent(path)?)?;
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(FsAppendFile { file }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(FsAppendFile { file }))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn replace(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
        let mut tmp_name = name.to_os_string();
        tmp_name.push(".tmp");
        let tmp = path.with_file_name(tmp_name);
        let mut f = private_file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    }

    fn move_file(&self, from: &Path, to: &Path) -> io::Result<()> {
        if fs::rename(from, to).is_err() {
            // Another device: copy, make the copy durable, then remove.
            fs::copy(from, to)?;
            File::open(to)?.sync_all()?;
            fs_sync_dir(parent(to)?)?;
            fs::remove_file(from)?;
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        fs_sync_dir(dir)
    }
}

#[derive(Default)]
struct MemState {
    dirs: BTreeSet<PathBuf>,
    files: BTreeMap<PathBuf, Vec<u8>>,
    fail_writes: bool,
}

impl MemState {
    fn add_dir(&mut self, dir: &Path) {
        for d in dir.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            self.dirs.insert(d.to_path_buf());
        }
    }

    fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if p.as_os_str().is_empty() || self.dirs.contains(p) => Ok(()),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.fail_writes {
            Err(io::Error::other("MemoryStorage is set to fail writes"))
        } else {
            Ok(())
        }
    }

    fn file(&self, path: &Path) -> io::Result<&Vec<u8>> {
        self.files.get(path).ok_or(io::ErrorKind::NotFound.into())
    }

    fn file_mut(&mut self, path: &Path) -> io::Result<&mut Vec<u8>> {
        self.files
            .get_mut(path)
            .ok_or(io::ErrorKind::NotFound.into())
    }
}

/// Storage in memory, for tests. Cloning gives another handle to the same
/// files, so a test can "crash" by dropping a log and reopen it from a
/// clone; everything appended is kept (a crash that loses unsynced bytes
/// is what [`MemoryStorage::set_file_bytes`] lets a test write).
///
/// A test can also read, replace and list the stored bytes to tear a tail
/// or damage a record, and make every write fail to see how the log takes
/// an I/O error. `Debug` prints how many files there are, never their
/// contents (records carry PHI).
#[derive(Clone, Default)]
pub struct MemoryStorage {
    state: Arc<Mutex<MemState>>,
}

// Not a redaction a wrapper could do: the state sits behind a mutex, and
// `Debug` prints how many directories and files it holds, never their bytes.
impl fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("MemoryStorage")
            .field("dirs", &st.dirs.len())
            .field("files", &st.files.len())
            .finish_non_exhaustive()
    }
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stored bytes of the file `path`.
    pub fn file_bytes(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        self.lock().files.get(path.as_ref()).cloned()
    }

    /// Replaces (or creates) the file `path` with `bytes`, creating its
    /// directory if needed.
    pub fn set_file_bytes(&self, path: impl AsRef<Path>, bytes: Vec<u8>) {
        let path = path.as_ref();
        let mut st = self.lock();
        if let Some(dir) = path.parent() {
            st.add_dir(dir);
        }
        st.files.insert(path.to_path_buf(), bytes);
    }

    /// An independent copy of everything stored now: what a crash at this
    /// instant would leave, to reopen while the original carries on.
    pub fn snapshot(&self) -> MemoryStorage {
        let st = self.lock();
        MemoryStorage {
            state: Arc::new(Mutex::new(MemState {
                dirs: st.dirs.clone(),
                files: st.files.clone(),
                fail_writes: false,
            })),
        }
    }

    /// Every stored file, sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        self.lock().files.keys().cloned().collect()
    }

    /// While `fail` is true, every operation that would change the stored
    /// files fails with an I/O error and changes nothing.
    pub fn set_fail_writes(&self, fail: bool) {
        self.lock().fail_writes = fail;
    }
}

/// A file of [`MemoryStorage`] opened for appending.
struct MemAppendFile {
    path: PathBuf,
    state: Arc<Mutex<MemState>>,
}

// Prints the path only: the state behind the mutex is the whole storage.
impl fmt::Debug for MemAppendFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemAppendFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl MemAppendFile {
    fn lock(&self) -> MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl AppendFile for MemAppendFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.lock();
        st.check_writable()?;
        st.file_mut(&self.path)?.extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let st = self.lock();
        st.check_writable()?;
        st.file(&self.path).map(drop)
    }
}

impl Storage for MemoryStorage {
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.check_writable()?;
        st.add_dir(dir);
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.lock();
        if !st.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(st
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(self.lock().file(path)?.len() as u64)
    }

    fn read_into(&self, path: &Path, buf: &mut Vec<u8>) -> io::Result<()> {
        let st = self.lock();
        let bytes = st.file(path)?;
        buf.clear();
        buf.extend_from_slice(bytes);
        Ok(())
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let st = self.lock();
        let bytes = st.file(path)?;
        let rest = usize::try_from(offset)
            .ok()
            .and_then(|o| bytes.get(o..))
            .unwrap_or_default();
        let n = rest.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok(n)
    }

    fn create_append(&self, path: &Path, initial: &[u8]) -> io::Result<Box<dyn AppendFile>> {
        let mut st = self.lock();
        st.check_writable()?;
        st.check_parent(path)?;
        if st.files.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        st.files.insert(path.to_path_buf(), initial.to_vec());
        Ok(Box::new(MemAppendFile {
            path: path.to_path_buf(),
            state: Arc::clone(&self.state),
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        self.lock().file(path)?;
        Ok(Box::new(MemAppendFile {
            path: path.to_path_buf(),
            state: Arc::clone(&self.state),
        }))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut st = self.lock();
        st.check_writable()?;
        let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        st.file_mut(path)?.resize(len, 0);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.check_writable()?;
        st.files
            .remove(path)
            .map(drop)
            .ok_or(io::ErrorKind::NotFound.into())
    }

    fn replace(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.lock();
        st.check_writable()?;
        st.check_parent(path)?;
        st.files.insert(path.to_path_buf(), bytes.to_vec());
        Ok(())
    }

    fn move_file(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.check_writable()?;
        st.check_parent(to)?;
        let bytes = st
            .files
            .remove(from)
            .ok_or(io::Error::from(io::ErrorKind::NotFound))?;
        st.files.insert(to.to_path_buf(), bytes);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let st = self.lock();
        st.check_writable()?;
        if st.dirs.contains(dir) {
            Ok(())
        } else {
            Err(io::ErrorKind::NotFound.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_storage_behaves_like_a_file_system() {
        let m = MemoryStorage::new();
        let dir = Path::new("/log");
        let seg = dir.join("a");
        assert_eq!(
            m.list(dir).unwrap_err().kind(),
            io::ErrorKind::NotFound,
            "a missing directory is not empty"
        );
        assert_eq!(
            m.create_append(&seg, b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        m.create_dir(dir).unwrap();
        assert!(m.list(Path::new("/")).unwrap().is_empty(), "parents made");
        let mut f = m.create_append(&seg, b"head").unwrap();
        assert_eq!(
            m.create_append(&seg, b"").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        f.append(b"-tail").unwrap();
        f.sync().unwrap();
        assert_eq!(m.read(&seg).unwrap(), b"head-tail");
        let mut buf = [0u8; 8];
        assert_eq!(m.read_at(&seg, 5, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"tail");
        assert_eq!(m.read_at(&seg, 50, &mut buf).unwrap(), 0);
        m.truncate(&seg, 4).unwrap();
        assert_eq!(m.file_len(&seg).unwrap(), 4);
        m.replace(&dir.join("b"), b"new").unwrap();
        let mut names = m.list(dir).unwrap();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        m.create_dir(Path::new("/arch")).unwrap();
        m.move_file(&seg, Path::new("/arch/a")).unwrap();
        assert_eq!(m.list(dir).unwrap(), ["b"]);
        assert_eq!(m.file_bytes("/arch/a").unwrap(), b"head");
        m.set_fail_writes(true);
        assert!(f.append(b"more").is_err());
        assert!(m.remove(&dir.join("b")).is_err());
        m.set_fail_writes(false);
        m.remove(&dir.join("b")).unwrap();
        assert_eq!(
            m.read(&dir.join("b")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(
            !format!("{m:?}").contains("head"),
            "Debug shows no contents"
        );
    }

    #[test]
    fn fs_storage_reads_ranges_and_replaces_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let s = FsStorage;
        let dir = tmp.path().join("d");
        s.create_dir(&dir).unwrap();
        let path = dir.join("f");
        let mut f = s.create_append(&path, b"0123").unwrap();
        f.append(b"4567").unwrap();
        f.sync().unwrap();
        let mut buf = [0u8; 6];
        assert_eq!(s.read_at(&path, 5, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"567");
        s.replace(&dir.join("i"), b"index").unwrap();
        let mut names = s.list(&dir).unwrap();
        names.sort();
        assert_eq!(names, ["f", "i"], "no temporary file left");
        assert_eq!(
            s.create_append(&path, b"").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }
}
