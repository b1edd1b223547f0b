//! The filesystem [`StorageBackend`]: [`FsStorage`] (feature `storage-fs`,
//! Unix only).
//!
//! * **Keys cannot escape the root.** [`StorageKey`] already refuses `..`,
//!   `.`, empty segments and absolute keys; on top of that every path
//!   component under the root is checked with `symlink_metadata` and a
//!   symbolic link anywhere on the way is refused, and the last component is
//!   opened with `O_NOFOLLOW`, so a link planted in the tree cannot redirect
//!   a write outside it.
//! * **Durable directories.** Every directory created on the way to a key
//!   (and the root, when [`FsStorage::new`] creates it) is `fsync`ed in its
//!   parent right after it is created, so the `fsync` of an object's
//!   directory is not undone by a power loss that forgets the directory.
//! * **Atomic puts.** [`StorageBackend::put`] writes a temporary file in the
//!   target directory, `fsync`s it, renames it over the key and `fsync`s the
//!   directory: after a crash a reader sees the old or the new object, never
//!   a torn one.
//! * **Streaming appends.** [`StorageBackend::append`] appends to the
//!   page cache (a process crash loses nothing once it returned); the
//!   caller makes an object durable once, when it is complete, with
//!   [`StorageBackend::sync`] (`fdatasync` of the file, then `fsync` of its
//!   directory so its name survives a power loss too). The recorder syncs
//!   each segment once, when it closes, before the index names it.
//!   [`FsStorage::sync_appends`] makes every append `fdatasync` as well. A
//!   failed append truncates the file back to its previous length, so
//!   retrying it does not duplicate bytes.
//!
//! Errors keep their [`std::io::ErrorKind`] (`StorageFull`,
//! `PermissionDenied`, `NotFound`, …) inside [`StreamError::Io`], with the
//! operation and key in the message; a key that crosses a symbolic link is
//! [`StreamError::InvalidName`].

use arcly_core::traits::{StorageBackend, StorageKey};
use arcly_core::{Result, StreamError};
use async_trait::async_trait;
use bytes::Bytes;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The marker in the name of a temporary file of an atomic put; `list`
/// never returns such files.
pub const TEMP_MARKER: &str = ".arcly-tmp.";

/// The deepest directory tree `list` walks below the root.
pub const MAX_LIST_DEPTH: usize = 64;

/// A [`StorageBackend`] over a directory of the local filesystem.
///
/// ```
/// use arcly_core::traits::{StorageBackend, StorageKey};
/// use arcly_record::FsStorage;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = FsStorage::new(dir.path()).unwrap();
/// let key = StorageKey::new("live/cam/index.m3u8").unwrap();
/// store.put(&key, "#EXTM3U\n".into()).await.unwrap();
/// assert_eq!(&store.get(&key).await.unwrap()[..], b"#EXTM3U\n");
/// assert_eq!(store.list("live/").await.unwrap(), vec![key]);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct FsStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    sync_appends: bool,
    counter: AtomicU64,
    /// Every directory synced, in order (unit tests only).
    #[cfg(test)]
    synced: std::sync::Mutex<Vec<PathBuf>>,
}

/// How [`FsStorage::resolve`] treats missing directories.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dirs {
    Create,
    MustExist,
}

impl FsStorage {
    /// A store rooted at `root`, created if missing. The root itself may be
    /// reached through a symbolic link (the operator chose it); nothing below
    /// it may.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let given = root.as_ref();
        // The directories about to be created, deepest first.
        let missing: Vec<PathBuf> = given
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err())
            .map(Path::to_path_buf)
            .collect();
        fs::create_dir_all(given).map_err(|e| io_error("create root", &given.display(), e))?;
        let root =
            fs::canonicalize(given).map_err(|e| io_error("open root", &given.display(), e))?;
        let store = Self {
            inner: Arc::new(Inner {
                root,
                sync_appends: false,
                counter: AtomicU64::new(0),
                #[cfg(test)]
                synced: std::sync::Mutex::default(),
            }),
        };
        // A created directory survives a power loss once its parent is synced.
        for dir in missing.iter().rev() {
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            store
                .sync_dir(parent)
                .map_err(|e| io_error("sync parent of", &dir.display(), e))?;
        }
        Ok(store)
    }

    /// Whether `append` also calls `fdatasync` before it returns (default
    /// `false`: durability comes from one [`StorageBackend::sync`] per
    /// complete object, which costs one flush instead of one per append). A
    /// process crash loses nothing either way.
    #[must_use]
    pub fn sync_appends(self, sync: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                root: self.inner.root.clone(),
                sync_appends: sync,
                counter: AtomicU64::new(0),
                #[cfg(test)]
                synced: std::sync::Mutex::default(),
            }),
        }
    }

    /// The root directory (canonical).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// `fsync` a directory, so the entries it holds are durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(test)]
        self.inner
            .synced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(dir.to_path_buf());
        sync_dir(dir)
    }

    /// The directories synced so far (unit tests).
    #[cfg(test)]
    fn synced_dirs(&self) -> Vec<PathBuf> {
        self.inner
            .synced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The filesystem path of `key`, checking (and with `Dirs::Create`,
    /// creating) every directory on the way. Refuses symbolic links.
    fn resolve(&self, key: &StorageKey, dirs: Dirs) -> Result<PathBuf> {
        self.resolve_as(key, dirs, false)
    }

    /// As [`resolve`](Self::resolve); with `want_dir` the key must name a
    /// directory (or nothing) instead of a file.
    fn resolve_as(&self, key: &StorageKey, dirs: Dirs, want_dir: bool) -> Result<PathBuf> {
        let mut path = self.inner.root.clone();
        let mut segments = key.as_str().split('/').peekable();
        while let Some(seg) = segments.next() {
            path.push(seg);
            let last = segments.peek().is_none();
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => return Err(symlink_refused(key)),
                Ok(m) if !last && !m.is_dir() => {
                    return Err(io_error(
                        "resolve",
                        key,
                        io::Error::new(io::ErrorKind::NotADirectory, "a key prefix is a file"),
                    ))
                }
                Ok(m) if last && m.is_dir() != want_dir => {
                    return Err(io_error(
                        "resolve",
                        key,
                        if want_dir {
                            io::Error::new(io::ErrorKind::NotADirectory, "the prefix is a file")
                        } else {
                            io::Error::new(io::ErrorKind::IsADirectory, "the key is a directory")
                        },
                    ))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if last {
                        break;
                    }
                    if dirs == Dirs::MustExist {
                        return Err(io_error("resolve", key, e));
                    }
                    match fs::create_dir(&path) {
                        Ok(()) => {
                            // The new entry is durable once its parent
                            // directory is synced (the object's own
                            // directory is synced by `put` and `sync`).
                            let parent = path.parent().unwrap_or(&self.inner.root);
                            self.sync_dir(parent)
                                .map_err(|e| io_error("sync new directory of", key, e))?;
                        }
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            // Raced with another writer: check what is there now.
                            let m = fs::symlink_metadata(&path)
                                .map_err(|e| io_error("resolve", key, e))?;
                            if !m.is_dir() || m.file_type().is_symlink() {
                                return Err(symlink_refused(key));
                            }
                        }
                        Err(e) => return Err(io_error("create directory for", key, e)),
                    }
                }
                Err(e) => return Err(io_error("resolve", key, e)),
            }
        }
        Ok(path)
    }

    fn put_blocking(&self, key: &StorageKey, data: &[u8]) -> Result<()> {
        let path = self.resolve(key, Dirs::Create)?;
        let dir = path.parent().unwrap_or(&self.inner.root).to_path_buf();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}{TEMP_MARKER}{}.{n}", std::process::id()));
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)?;
            f.write_all(data)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &path)?;
            self.sync_dir(&dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|e| io_error("put", key, e))
    }

    fn append_blocking(&self, key: &StorageKey, data: &[u8]) -> Result<()> {
        let path = self.resolve(key, Dirs::Create)?;
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| nofollow_error("append", key, e))?;
        let before = f.metadata().map_err(|e| io_error("append", key, e))?.len();
        let result = f.write_all(data).and_then(|()| {
            if self.inner.sync_appends {
                f.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            // Leave the object as it was so that a retry appends once.
            let _ = f.set_len(before);
            return Err(io_error("append", key, e));
        }
        Ok(())
    }

    fn sync_blocking(&self, key: &StorageKey) -> Result<()> {
        let path = self.resolve(key, Dirs::MustExist)?;
        let f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| nofollow_error("sync", key, e))?;
        // The data and the size (fdatasync), then the directory entry: a
        // file created by `append` is only durable once its name is.
        f.sync_data().map_err(|e| io_error("sync", key, e))?;
        let dir = path.parent().unwrap_or(&self.inner.root);
        self.sync_dir(dir)
            .map_err(|e| io_error("sync directory of", key, e))
    }

    fn get_blocking(&self, key: &StorageKey) -> Result<Bytes> {
        let path = self.resolve(key, Dirs::MustExist)?;
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| nofollow_error("get", key, e))?;
        let mut buf = Vec::new();
        io::Read::read_to_end(&mut f, &mut buf).map_err(|e| io_error("get", key, e))?;
        Ok(Bytes::from(buf))
    }

    fn delete_blocking(&self, key: &StorageKey) -> Result<()> {
        let path = match self.resolve(key, Dirs::MustExist) {
            Ok(p) => p,
            Err(StreamError::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("delete", key, e)),
        }
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<StorageKey>> {
        // Walk the deepest directory the prefix names, then filter by prefix.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let mut start = self.inner.root.clone();
        if !dir_part.is_empty() {
            let k = StorageKey::new(dir_part)?;
            match self.resolve_as(&k, Dirs::MustExist, true) {
                Ok(p) => start = p,
                Err(StreamError::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    return Ok(Vec::new())
                }
                Err(e) => return Err(e),
            }
            match fs::symlink_metadata(&start) {
                Ok(m) if m.is_dir() => {}
                _ => return Ok(Vec::new()),
            }
        }
        let mut out = Vec::new();
        let mut stack = vec![(start, dir_part.to_owned(), 0usize)];
        while let Some((dir, rel, depth)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("list", &dir.display(), e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_error("list", &dir.display(), e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if name.contains(TEMP_MARKER) {
                    continue;
                }
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let Ok(ft) = entry.file_type() else { continue };
                if ft.is_dir() && depth < MAX_LIST_DEPTH {
                    stack.push((entry.path(), key, depth + 1));
                } else if ft.is_file() && key.starts_with(prefix) {
                    if let Ok(k) = StorageKey::new(&key) {
                        out.push(k);
                    }
                }
                // Symbolic links and special files are never listed.
            }
        }
        out.sort();
        Ok(out)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn symlink_refused(key: &StorageKey) -> StreamError {
    StreamError::InvalidName {
        kind: "storage key",
        value: key.as_str().chars().take(64).collect(),
        reason: "passes through a symbolic link",
    }
}

/// `O_NOFOLLOW` on a link fails with `ELOOP`: report it as a refused key.
fn nofollow_error(op: &str, key: &StorageKey, e: io::Error) -> StreamError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        symlink_refused(key)
    } else {
        io_error(op, key, e)
    }
}

/// An I/O error with the operation and key in its message and its kind kept.
fn io_error(op: &str, key: &dyn std::fmt::Display, e: io::Error) -> StreamError {
    StreamError::Io(io::Error::new(e.kind(), format!("{op} {key}: {e}")))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StreamError::Storage(format!("storage task failed: {e}")))?
}

#[async_trait]
impl StorageBackend for FsStorage {
    async fn put(&self, key: &StorageKey, data: Bytes) -> Result<()> {
        let (s, k) = (self.clone(), key.clone());
        blocking(move || s.put_blocking(&k, &data)).await
    }

    async fn append(&self, key: &StorageKey, data: Bytes) -> Result<()> {
        let (s, k) = (self.clone(), key.clone());
        blocking(move || s.append_blocking(&k, &data)).await
    }

    /// `fdatasync` the object, then `fsync` its directory. A failed sync is
    /// not worth retrying: after a failed `fsync` the kernel may have
    /// dropped the dirty pages, so a second call can succeed with the data
    /// lost; treat the object as not durable.
    async fn sync(&self, key: &StorageKey) -> Result<()> {
        let (s, k) = (self.clone(), key.clone());
        blocking(move || s.sync_blocking(&k)).await
    }

    async fn get(&self, key: &StorageKey) -> Result<Bytes> {
        let (s, k) = (self.clone(), key.clone());
        blocking(move || s.get_blocking(&k)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<StorageKey>> {
        let (s, p) = (self.clone(), prefix.to_owned());
        blocking(move || s.list_blocking(&p)).await
    }

    async fn delete(&self, key: &StorageKey) -> Result<()> {
        let (s, k) = (self.clone(), key.clone());
        blocking(move || s.delete_blocking(&k)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> StorageKey {
        StorageKey::new(s).unwrap()
    }

    /// A directory's entry is only durable once its parent is synced: each
    /// directory created for a key is synced in its parent, as well as the
    /// directory holding the object (and the root's parent when `new`
    /// creates the root).
    #[tokio::test]
    async fn new_directories_are_synced_in_their_parent() {
        let tmp = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(tmp.path()).unwrap();
        let s = FsStorage::new(base.join("root/r")).unwrap();
        let root = s.root().to_path_buf();
        assert_eq!(s.synced_dirs(), vec![base.clone(), base.join("root")]);
        s.put(&key("a/b/c/index.m3u8"), "x".into()).await.unwrap();
        let synced = s.synced_dirs();
        for dir in [
            root.clone(),
            root.join("a"),
            root.join("a/b"),
            root.join("a/b/c"),
        ] {
            assert!(
                synced.contains(&dir),
                "{} not synced: {synced:?}",
                dir.display()
            );
        }
        s.append(&key("a/d/1.ts"), "y".into()).await.unwrap();
        s.sync(&key("a/d/1.ts")).await.unwrap();
        let synced = s.synced_dirs();
        assert!(synced.contains(&root.join("a/d")));
        // `a` gained the entry `d`: synced again after the append created it.
        let a = root.join("a");
        assert!(
            synced.iter().filter(|d| **d == a).count() >= 2,
            "{synced:?}"
        );
        // Existing directories are not synced again for nothing.
        let before = s.synced_dirs().len();
        s.append(&key("a/d/2.ts"), "z".into()).await.unwrap();
        assert_eq!(s.synced_dirs().len(), before);
    }
}
