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
use std::sync::Arc;
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
        })
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
        (self.failing.load(Ordering::Acquire) || next).then(|| {
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
        self.inner.delete(key).await
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
