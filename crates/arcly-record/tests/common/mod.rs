//! Shared helpers: real frames from the fixtures, an engine, a fault-injecting
//! storage wrapper, ffmpeg checks.
#![allow(dead_code)]

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::testing::tools::{ffmpeg, fixture, framemd5, md5_column};
use arcly_core::traits::{StorageBackend, StorageKey};
use arcly_core::{MediaFrame, Result, StreamError, StreamPath};
use arcly_mpegts::TsDemuxer;
use async_trait::async_trait;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every frame of `fixtures/media/<name>` (an MPEG-TS file), as the demuxer gives them.
pub fn fixture_frames(name: &str) -> Vec<MediaFrame> {
    let data = std::fs::read(fixture(name)).unwrap();
    let mut d = TsDemuxer::new();
    d.push(&data).unwrap();
    d.finish().unwrap();
    std::iter::from_fn(|| d.next_frame()).collect()
}

pub fn media_count(frames: &[MediaFrame]) -> u64 {
    frames
        .iter()
        .filter(|f| !f.is_config() && (f.is_video() || f.is_audio()))
        .count() as u64
}

pub fn engine() -> Engine {
    Engine::builder()
        .application(AppSpec::new("live").channel_capacity(4096))
        .build()
}

pub fn path(s: &str) -> StreamPath {
    StreamPath::parse("live", s).unwrap()
}

pub fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// `framemd5` hash columns of streams 0 and 1 of `input`.
pub fn md5s(input: &Path) -> (Vec<String>, Vec<String>) {
    let lines = framemd5(&ffmpeg(), &[], input.to_str().unwrap(), &[]);
    (md5_column(&lines, 0), md5_column(&lines, 1))
}

/// `ffmpeg -v error` decoding `input` entirely: what it printed on stderr.
pub fn decode_errors(input: &Path) -> String {
    let out = std::process::Command::new(ffmpeg())
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(input)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg could not decode {}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn source_md5s() -> (Vec<String>, Vec<String>) {
    md5s(&fixture("h264-aac.ts"))
}

pub fn root_path(dir: &tempfile::TempDir, key: &str) -> PathBuf {
    std::fs::canonicalize(dir.path()).unwrap().join(key)
}

/// A [`StorageBackend`] wrapper that injects faults.
pub struct Faulty {
    pub inner: Arc<dyn StorageBackend>,
    /// Appends fail with this kind while `failing` is set.
    pub fail_kind: std::io::ErrorKind,
    pub failing: AtomicBool,
    /// Fail this many appends, then heal (when `failing` is not set).
    pub fail_next_appends: AtomicU64,
    /// Every call sleeps this long first (a slow disk).
    pub delay_ms: AtomicU64,
    pub appends: AtomicU64,
    /// Appends to keys ending with this fail (with `fail_kind`).
    pub fail_suffix: Mutex<Option<String>>,
    /// Every call, in order: (operation, key).
    pub ops: Mutex<Vec<(&'static str, String)>>,
}

impl Faulty {
    pub fn new(inner: Arc<dyn StorageBackend>, kind: std::io::ErrorKind) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fail_kind: kind,
            failing: AtomicBool::new(false),
            fail_next_appends: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            fail_suffix: Mutex::new(None),
            ops: Mutex::new(Vec::new()),
        })
    }

    pub fn fail_appends_to(&self, suffix: &str) {
        *self.fail_suffix.lock().unwrap() = Some(suffix.to_owned());
    }

    pub fn ops(&self) -> Vec<(&'static str, String)> {
        self.ops.lock().unwrap().clone()
    }

    fn log(&self, op: &'static str, key: &StorageKey) {
        self.ops.lock().unwrap().push((op, key.to_string()));
    }

    async fn delay(&self) {
        let d = self.delay_ms.load(Ordering::Relaxed);
        if d > 0 {
            tokio::time::sleep(Duration::from_millis(d)).await;
        }
    }

    fn fault(&self, op: &str, key: &StorageKey) -> Option<StreamError> {
        let next = self
            .fail_next_appends
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        let by_key = self
            .fail_suffix
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|s| key.as_str().ends_with(s.as_str()));
        (self.failing.load(Ordering::Acquire) || next || by_key).then(|| {
            StreamError::Io(std::io::Error::new(
                self.fail_kind,
                format!("{op} {key}: injected"),
            ))
        })
    }
}

#[async_trait]
impl StorageBackend for Faulty {
    async fn put(&self, key: &StorageKey, data: Bytes) -> Result<()> {
        self.delay().await;
        self.log("put", key);
        if self.failing.load(Ordering::Acquire) {
            return Err(StreamError::Io(std::io::Error::new(
                self.fail_kind,
                format!("put {key}: injected"),
            )));
        }
        self.inner.put(key, data).await
    }
    async fn append(&self, key: &StorageKey, data: Bytes) -> Result<()> {
        self.delay().await;
        self.appends.fetch_add(1, Ordering::Relaxed);
        self.log("append", key);
        if let Some(e) = self.fault("append", key) {
            return Err(e);
        }
        self.inner.append(key, data).await
    }
    async fn get(&self, key: &StorageKey) -> Result<Bytes> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<StorageKey>> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &StorageKey) -> Result<()> {
        self.log("delete", key);
        self.inner.delete(key).await
    }
    async fn sync(&self, key: &StorageKey) -> Result<()> {
        self.delay().await;
        self.log("sync", key);
        self.inner.sync(key).await
    }
}

/// Compare hash columns without printing hundreds of hashes.
#[track_caller]
pub fn assert_same(got: &[String], want: &[String], what: &str) {
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first.is_none(),
        "{what}: {} frames vs {} expected, first difference at {first:?}",
        got.len(),
        want.len()
    );
}

/// Counts what the recorder reports to the engine's observer.
#[derive(Default)]
pub struct CountingObserver {
    /// (path, op, kind) of every `storage_error`.
    pub storage_errors: Mutex<Vec<(String, &'static str, &'static str)>>,
    pub dropped: AtomicU64,
}

impl arcly_core::observe::Observer for CountingObserver {
    fn storage_error(&self, path: &StreamPath, op: &'static str, kind: &'static str) {
        self.storage_errors
            .lock()
            .unwrap()
            .push((path.to_string(), op, kind));
    }
    fn recording_dropped(&self, _path: &StreamPath, frames: u64) {
        self.dropped.fetch_add(frames, Ordering::Relaxed);
    }
}

/// Keeps every audit event.
#[derive(Default)]
pub struct AuditLog(pub Mutex<Vec<arcly_core::audit::AuditEvent>>);

#[async_trait]
impl arcly_core::audit::AuditSink for AuditLog {
    async fn record(&self, event: arcly_core::audit::AuditEvent) {
        self.0.lock().unwrap().push(event);
    }
}

/// An engine whose observer and audit sink the test can read.
pub fn observed_engine() -> (Engine, Arc<CountingObserver>, Arc<AuditLog>) {
    let obs = Arc::new(CountingObserver::default());
    let audit = Arc::new(AuditLog::default());
    let engine = Engine::builder()
        .application(AppSpec::new("live").channel_capacity(4096))
        .observer(obs.clone())
        .audit_sink(audit.clone(), 1024)
        .build();
    (engine, obs, audit)
}
