//! The driver: [`Recorder`] (per-app policies, start/stop from host code,
//! retention) and [`RecordingSink`] (a [`MediaSink`] for
//! `Engine::attach_sink`), both running a [`SegmentWriter`] against a
//! [`StorageBackend`].
//!
//! # Live delivery is never disturbed
//! Frames reach the writer through a bounded queue filled with `try_send`:
//! the subscription (or `on_frame`) never waits for storage. When the queue
//! is full the recorder drops frames up to the next random-access point,
//! counts them, reports [`RecorderEvent::FramesDropped`] and continues the
//! recording after an `EXT-X-DISCONTINUITY` — it never skips silently.
//!
//! # Storage failures
//! Every failed storage call is logged with `tracing`, reported as
//! [`RecorderEvent::StorageError`] and to the engine's
//! [`Observer::storage_error`] (`op` is `append`, `sync`, `put`, `delete`;
//! `kind` one of `full`, `permission`, `not_found`, `layout`, `timeout`,
//! `key`, `io`, `other`). Appends and index writes are retried
//! ([`RecordConfig::retries`], exponential backoff) unless the error is one a
//! retry cannot fix (permission denied, read-only filesystem, a refused key,
//! a failed `sync`). A call that finally failed is also written to the
//! engine's audit trail ([`AuditOutcome::Failed`], protocol [`PROTOCOL`]).
//! A segment whose bytes could not be stored is left out of the index (its
//! frames are reported dropped, also to [`Observer::recording_dropped`]) and
//! the next segment is marked discontinuous, so the index only ever lists
//! complete segments.
//!
//! # Durability
//! Segment bytes are appended without a flush per append; when a segment
//! closes it is made durable once with [`StorageBackend::sync`], and only
//! then is the index rewritten to name it. A segment whose sync failed is
//! treated like one whose append failed.

use arcly_core::audit::{AuditEvent, AuditOutcome};
use arcly_core::auth::AuthAction;
use arcly_core::bus::Subscription;
use arcly_core::engine::Engine;
use arcly_core::events::EngineEvent;
use arcly_core::frame::MediaFrame;
use arcly_core::identity::StreamPath;
use arcly_core::observe::{NoopObserver, Observer};
use arcly_core::registry::{PlayRequest, PlaybackRegistry};
use arcly_core::segment::SegmentPolicy;
use arcly_core::traits::{MediaSink, StorageBackend, StorageKey};
use arcly_core::{Result, StreamError};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::playlist::{
    parse_compact_time, parse_rfc3339, rfc3339, PlaylistKind, PlaylistSegment, RecordingPlaylist,
};
use crate::writer::{
    MakeMuxer, MuxerFactory, SegmentInfo, SegmentWriter, WriterAction, WriterConfig,
};
use arcly_core::frame::CodecId;
use arcly_core::traits::ContainerFormat;

/// The name of a recording's VOD index (always ends with `EXT-X-ENDLIST`).
pub const INDEX_NAME: &str = "index.m3u8";
/// The name of a recording's EVENT playlist (for players opening it live).
pub const LIVE_NAME: &str = "live.m3u8";
/// The protocol name the recorder subscribes with.
pub const PROTOCOL: &str = "record";
/// How often [`Recorder::run`] applies [`RecordConfig::max_age`] while
/// nothing records.
pub const RETENTION_SWEEP: Duration = Duration::from_secs(60);

/// How one stream is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    /// Target segment duration (cuts at the first keyframe after it).
    pub segment_target: Duration,
    /// Also cut at the next keyframe once a segment holds this many bytes.
    pub segment_max_bytes: Option<u64>,
    /// Muxed bytes buffered before each append.
    pub flush_bytes: usize,
    /// Frames the writer queue holds before frames are dropped (QoS bound).
    pub queue_frames: usize,
    /// A recording stops (or rolls over) once it holds this much media.
    pub max_duration: Option<Duration>,
    /// At `max_duration`, start a new recording instead of stopping.
    pub rollover: bool,
    /// Delete recorded segments once they ended longer ago than this,
    /// oldest first, including those of earlier runs found on storage
    /// (default: kept). Applies per application, like
    /// [`RecordPolicy::max_total_bytes`], to a [`Recorder`]'s recordings;
    /// checked as segments close and every [`RETENTION_SWEEP`] while
    /// [`Recorder::run`] runs. A [`RecordingSink`] ignores it.
    pub max_age: Option<Duration>,
    /// How long a recording waits for a publisher that left to come back
    /// before it is finished (a returning one continues it after a
    /// discontinuity).
    pub republish_grace: Duration,
    /// Retries of a failed storage call (0: none).
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one.
    pub retry_backoff: Duration,
    /// The container: MPEG-TS ([`arcly_mpegts::MpegTsMuxer`]) by default;
    /// any [`Muxer`](arcly_core::traits::Muxer) fits (see
    /// [`RecordConfig::muxer`]). A codec the muxer cannot carry fails the
    /// recording at its first frame ([`RecorderEvent::Unsupported`]).
    pub muxer: MuxerFactory,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            segment_target: Duration::from_secs(6),
            segment_max_bytes: None,
            flush_bytes: 1 << 20,
            queue_frames: 4096,
            max_duration: None,
            rollover: false,
            max_age: None,
            republish_grace: Duration::from_secs(30),
            retries: 3,
            retry_backoff: Duration::from_millis(100),
            muxer: MuxerFactory::default(),
        }
    }
}

impl RecordConfig {
    /// Record with the muxers `make` returns (one per publisher), e.g.
    /// fMP4: `cfg.muxer(Arc::new(|| Box::new(Fmp4Muxer::new())))`. The
    /// segment extension and the index (`EXT-X-MAP`, `EXT-X-VERSION:7` for
    /// fMP4) follow from [`Muxer::format`](arcly_core::traits::Muxer::format)
    /// and [`Muxer::init_segment`](arcly_core::traits::Muxer::init_segment).
    #[must_use]
    pub fn muxer(mut self, make: Arc<MakeMuxer>) -> Self {
        self.muxer = MuxerFactory::from_arc(make);
        self
    }

    fn writer_config(&self) -> WriterConfig {
        let mut segment = SegmentPolicy::new(self.segment_target);
        segment.max_bytes = self.segment_max_bytes;
        WriterConfig {
            segment,
            flush_bytes: self.flush_bytes.max(1),
            max_duration: self.max_duration,
            rollover: self.rollover,
            muxer: self.muxer.clone(),
        }
    }
}

/// When an application's streams are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordMode {
    /// Never; [`Recorder::start`] is refused.
    Off,
    /// Only when the host calls [`Recorder::start`].
    #[default]
    OnRequest,
    /// Every stream that is published (see [`Recorder::run`]), and on request.
    All,
}

/// The recording policy of one application.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordPolicy {
    /// When to record.
    pub mode: RecordMode,
    /// How.
    pub config: RecordConfig,
    /// Keep the application's recordings under this many bytes, deleting the
    /// oldest segments first (the newest segment is never deleted). The
    /// recordings already on storage (earlier runs, found through their
    /// `index.m3u8`) count too, and go first.
    pub max_total_bytes: Option<u64>,
}

/// Why frames were not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropCause {
    /// The writer queue was full (storage slower than the stream).
    QueueFull,
    /// The recorder's bus subscription lagged and skipped frames.
    BusLag,
    /// The segment holding them could not be stored.
    StorageFailure,
    /// The muxer refused them (a codec the format cannot carry fails the
    /// recording; see [`RecorderEvent::Unsupported`]).
    Unrecordable,
}

/// Why a recording finished.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinishReason {
    /// The host stopped it.
    Stopped,
    /// The publisher left and did not come back within the grace period.
    PublisherGone,
    /// The stream was closed or the engine shut down.
    StreamClosed,
    /// `max_duration` was reached.
    MaxDuration,
    /// The subscription failed.
    Failed(String),
}

/// What a recorder reports. Also logged with `tracing`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecorderEvent {
    /// A recording began under `prefix`.
    RecordingStarted {
        /// The stream.
        path: StreamPath,
        /// `app/stream/<start-time>`.
        prefix: String,
    },
    /// A segment is on storage and in the index.
    SegmentWritten {
        /// The stream.
        path: StreamPath,
        /// The closed segment.
        segment: SegmentInfo,
    },
    /// A storage call failed.
    StorageError {
        /// The stream (none for retention work).
        path: Option<StreamPath>,
        /// `append`, `put`, `delete`, `list`, `get`.
        op: &'static str,
        /// The key concerned.
        key: String,
        /// The I/O error kind, when the failure was an I/O error.
        kind: Option<io::ErrorKind>,
        /// The error's message.
        error: String,
        /// Whether it will be retried.
        retrying: bool,
    },
    /// Frames were not recorded.
    FramesDropped {
        /// The stream.
        path: StreamPath,
        /// How many.
        frames: u64,
        /// Why.
        cause: DropCause,
    },
    /// The stream has a codec the recording's container cannot carry (AV1,
    /// VP9 or VVC in MPEG-TS): the recording fails at that codec's first
    /// frame, it does not go on without the track.
    Unsupported {
        /// The stream.
        path: StreamPath,
        /// The codec refused.
        codec: CodecId,
        /// The container.
        format: ContainerFormat,
        /// The muxer's message.
        error: String,
    },
    /// Retention deleted a segment.
    SegmentDeleted {
        /// The deleted segment.
        key: String,
        /// Its size.
        bytes: u64,
    },
    /// A recording finished; its index is final.
    RecordingFinished {
        /// The stream.
        path: StreamPath,
        /// The summary.
        summary: RecordingSummary,
    },
}

/// What [`Recorder::delete_recording`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeleteOutcome {
    /// The recording is gone.
    Deleted {
        /// Objects deleted besides the indexes (segments, init sections).
        objects: usize,
        /// Their bytes.
        bytes: u64,
    },
    /// Nothing is stored under the prefix.
    NotFound,
    /// The recording is still being written.
    InProgress,
}

/// Counters of one recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordingStats {
    /// Frames taken from the stream.
    pub frames_received: u64,
    /// Media frames muxed into segments.
    pub frames_written: u64,
    /// Frames dropped (queue full, bus lag, storage failure).
    pub frames_dropped: u64,
    /// Bytes stored.
    pub bytes_written: u64,
    /// Segments in the index.
    pub segments: u64,
    /// Failed storage calls (each attempt).
    pub storage_errors: u64,
}

/// What a finished recording did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    /// The last recording's key prefix, if any segment was started.
    pub prefix: Option<String>,
    /// Why it finished.
    pub reason: FinishReason,
    /// Its counters.
    pub stats: RecordingStats,
}

#[derive(Debug, Default)]
struct Counters {
    frames_received: AtomicU64,
    frames_written: AtomicU64,
    frames_dropped: AtomicU64,
    bytes_written: AtomicU64,
    segments: AtomicU64,
    storage_errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> RecordingStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RecordingStats {
            frames_received: l(&self.frames_received),
            frames_written: l(&self.frames_written),
            frames_dropped: l(&self.frames_dropped),
            bytes_written: l(&self.bytes_written),
            segments: l(&self.segments),
            storage_errors: l(&self.storage_errors),
        }
    }
}

/// Whether retrying `op` after `e` could help. A failed `sync` never is:
/// after a failed `fsync` the kernel may have dropped the dirty pages, so a
/// retry could succeed with the data gone.
fn retryable(op: &str, e: &StreamError) -> bool {
    if op == "sync" {
        return false;
    }
    match e {
        StreamError::Io(e) => !matches!(
            e.kind(),
            io::ErrorKind::PermissionDenied
                | io::ErrorKind::ReadOnlyFilesystem
                | io::ErrorKind::NotADirectory
                | io::ErrorKind::IsADirectory
                | io::ErrorKind::InvalidInput
        ),
        StreamError::InvalidName { .. } => false,
        _ => true,
    }
}

/// A short, bounded label for the [`Observer::storage_error`] `kind`.
fn error_label(e: &StreamError) -> &'static str {
    match e {
        StreamError::Io(e) => match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::FileTooLarge => "full",
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => "permission",
            io::ErrorKind::NotFound => "not_found",
            io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory => "layout",
            io::ErrorKind::TimedOut => "timeout",
            _ => "io",
        },
        StreamError::InvalidName { .. } => "key",
        _ => "other",
    }
}

/// The index of one recording, shared by its writer and retention.
#[derive(Debug)]
struct IndexState {
    /// The stream recorded (for reports from retention).
    path: StreamPath,
    prefix: String,
    playlist: RecordingPlaylist,
    ended: bool,
}

/// One segment a ledger accounts for.
#[derive(Debug)]
struct Entry {
    key: StorageKey,
    bytes: u64,
    /// When it ended (wall clock), if known.
    ended: Option<SystemTime>,
    index: Arc<tokio::sync::Mutex<IndexState>>,
}

/// Segments of one application, oldest first, for retention.
#[derive(Debug, Default)]
struct Ledger {
    segments: VecDeque<Entry>,
    total: u64,
    /// Prefixes of the recordings this recorder writes: never loaded from
    /// storage as earlier runs'.
    own: std::collections::HashSet<String>,
}

/// The retention of one application: its ledger, its bounds, and whether
/// the recordings already on storage were loaded into it.
struct AppLedger {
    app: String,
    max_total_bytes: Option<u64>,
    max_age: Option<Duration>,
    /// For the retries of retention's storage calls.
    cfg: RecordConfig,
    state: Mutex<Ledger>,
    loaded: tokio::sync::OnceCell<()>,
}

impl AppLedger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Load the recordings already on storage once, before anything is
    /// deleted or added: what earlier runs left counts against the bounds
    /// and goes first.
    async fn load(&self, shared: &Shared) {
        self.loaded
            .get_or_init(|| self.load_from_storage(shared))
            .await;
    }

    /// Every `app/stream/<start-time>/index.m3u8` on storage that is not one
    /// of this recorder's, its segments dated by the folder name and
    /// `EXT-X-PROGRAM-DATE-TIME`, merged in front of the ledger, oldest
    /// first.
    async fn load_from_storage(&self, shared: &Shared) {
        let prefix = format!("{}/", self.app);
        let keys = match shared
            .with_retry(None, &self.cfg, None, "list", &prefix, || {
                shared.storage.list(&prefix)
            })
            .await
        {
            Ok(k) => k,
            Err(_) => return, // reported; nothing known is deleted
        };
        // Listed before the snapshot: a recording of ours whose index is
        // listed registered its prefix before writing that index.
        let own = self.lock().own.clone();
        let mut found = Vec::new();
        for key in keys {
            let mut it = key.as_str().split('/');
            let (Some(_), Some(stream), Some(time), Some(name), None) =
                (it.next(), it.next(), it.next(), it.next(), it.next())
            else {
                continue;
            };
            let rec = format!("{}/{stream}/{time}", self.app);
            if name != INDEX_NAME || own.contains(&rec) {
                continue;
            }
            let Ok(path) = StreamPath::parse(&self.app, stream) else {
                continue;
            };
            let Ok(text) = shared
                .with_retry(None, &self.cfg, None, "get", key.as_str(), || {
                    shared.storage.get(&key)
                })
                .await
            else {
                continue;
            };
            let playlist = match RecordingPlaylist::parse(&text) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "retention: unreadable index left alone");
                    continue;
                }
            };
            let mut at = parse_compact_time(time);
            let segments: Vec<_> = playlist
                .segments
                .iter()
                .map(|s| {
                    if let Some(t) = s.program_date_time.as_deref().and_then(parse_rfc3339) {
                        at = Some(t);
                    }
                    at = at.map(|t| t + s.duration);
                    (format!("{rec}/{}", s.uri), s.bytes, at)
                })
                .collect();
            let index = Arc::new(tokio::sync::Mutex::new(IndexState {
                path,
                prefix: rec,
                playlist,
                ended: true,
            }));
            for (k, bytes, ended) in segments {
                if let Ok(key) = StorageKey::new(k) {
                    found.push(Entry {
                        key,
                        bytes,
                        ended,
                        index: Arc::clone(&index),
                    });
                }
            }
        }
        // Oldest first; undated ones first of all (stable: a recording's
        // segments keep their order).
        found.sort_by_key(|e| e.ended.unwrap_or(std::time::UNIX_EPOCH));
        let n = found.len();
        let mut l = self.lock();
        for e in found.into_iter().rev() {
            l.total += e.bytes;
            l.segments.push_front(e);
        }
        tracing::info!(app = %self.app, segments = n, bytes = l.total, "retention: recordings on storage accounted");
    }

    /// Take the segments the bounds say must go, oldest first: over
    /// `max_total_bytes` (never the newest), or ended more than `max_age`
    /// before `now`.
    fn over_bounds(&self, now: SystemTime) -> Vec<Entry> {
        let mut l = self.lock();
        let mut out = Vec::new();
        while let Some(front) = l.segments.front() {
            let over = self.max_total_bytes.is_some_and(|m| l.total > m) && l.segments.len() > 1;
            let old = self.max_age.is_some_and(|age| {
                front
                    .ended
                    .and_then(|e| now.duration_since(e).ok())
                    .is_some_and(|d| d > age)
            });
            if !(over || old) {
                break;
            }
            if let Some(e) = l.segments.pop_front() {
                l.total -= e.bytes;
                out.push(e);
            }
        }
        out
    }

    /// Delete what the bounds say must go; returns how many segments.
    async fn enforce(&self, shared: &Shared) -> usize {
        self.load(shared).await;
        let victims = self.over_bounds(SystemTime::now());
        let n = victims.len();
        for e in victims {
            retire(shared, &self.cfg, e.key, e.bytes, &e.index).await;
        }
        n
    }
}

/// Shared by the writer tasks of a [`Recorder`].
struct Shared {
    storage: Arc<dyn StorageBackend>,
    events: broadcast::Sender<RecorderEvent>,
    /// The engine's observer (a no-op one without an engine).
    observer: Arc<dyn Observer>,
    /// For the audit trail, when recording an engine's streams.
    engine: Option<Engine>,
}

impl Shared {
    fn new(storage: Arc<dyn StorageBackend>, capacity: usize, engine: Option<Engine>) -> Self {
        Self {
            storage,
            events: broadcast::channel(capacity.max(1)).0,
            observer: engine
                .as_ref()
                .map_or_else(|| Arc::new(NoopObserver) as _, |e| Arc::clone(e.observer())),
            engine,
        }
    }

    fn emit(&self, e: RecorderEvent) {
        let _ = self.events.send(e);
    }

    /// Report `frames` frames of `path` not recorded: event, observer, log.
    fn dropped(&self, path: &StreamPath, frames: u64, cause: DropCause) {
        if frames == 0 {
            return;
        }
        tracing::warn!(stream = %path, frames, ?cause, "recorder dropped frames");
        self.observer.recording_dropped(path, frames);
        self.emit(RecorderEvent::FramesDropped {
            path: path.clone(),
            frames,
            cause,
        });
    }

    /// Write a failure of the recording of `path` to the audit trail.
    fn audit_failure(&self, path: &StreamPath, reason: String) {
        if let Some(engine) = &self.engine {
            engine.audit().submit(AuditEvent::now(
                AuthAction::Publish,
                path.clone(),
                None,
                PROTOCOL,
                AuditOutcome::Failed(reason),
            ));
        }
    }

    /// Run a storage call with retries, reporting every failure.
    async fn with_retry<T, F, Fut>(
        &self,
        path: Option<&StreamPath>,
        cfg: &RecordConfig,
        counters: Option<&Counters>,
        op: &'static str,
        key: &str,
        mut call: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0u32;
        let mut backoff = cfg.retry_backoff;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    if let Some(c) = counters {
                        c.storage_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let retrying = attempt < cfg.retries && retryable(op, &e);
                    tracing::warn!(stream = ?path.map(|p| p.to_string()), op, key, error = %e, attempt, retrying, "recording storage error");
                    if let Some(p) = path {
                        self.observer.storage_error(p, op, error_label(&e));
                        if !retrying {
                            self.audit_failure(p, format!("{op} {key}: {e}"));
                        }
                    }
                    self.emit(RecorderEvent::StorageError {
                        path: path.cloned(),
                        op,
                        key: key.to_owned(),
                        kind: match &e {
                            StreamError::Io(io) => Some(io.kind()),
                            _ => None,
                        },
                        error: e.to_string(),
                        retrying,
                    });
                    if !retrying {
                        return Err(e);
                    }
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }

    /// Rewrite both playlists of a recording (or remove them once empty).
    async fn write_index(
        &self,
        path: Option<&StreamPath>,
        cfg: &RecordConfig,
        counters: Option<&Counters>,
        idx: &IndexState,
    ) -> Result<()> {
        let vod = StorageKey::new(format!("{}/{INDEX_NAME}", idx.prefix))?;
        let live = StorageKey::new(format!("{}/{LIVE_NAME}", idx.prefix))?;
        if idx.playlist.segments.is_empty() {
            for k in [&live, &vod] {
                self.with_retry(path, cfg, counters, "delete", k.as_str(), || {
                    self.storage.delete(k)
                })
                .await?;
            }
            return Ok(());
        }
        // The VOD index first: it is the one a crash must leave complete.
        let body = Bytes::from(idx.playlist.render(PlaylistKind::Vod));
        self.with_retry(path, cfg, counters, "put", vod.as_str(), || {
            self.storage.put(&vod, body.clone())
        })
        .await?;
        let body = Bytes::from(
            idx.playlist
                .render(PlaylistKind::Event { ended: idx.ended }),
        );
        self.with_retry(path, cfg, counters, "put", live.as_str(), || {
            self.storage.put(&live, body.clone())
        })
        .await
    }
}

/// An item of the writer queue.
#[derive(Debug)]
enum Item {
    Frame(Arc<MediaFrame>),
    /// Frames were dropped before the next item.
    Gap,
}

/// The producer side of a recording: admits frames into the bounded writer
/// queue without ever waiting.
struct Feeder {
    path: StreamPath,
    tx: mpsc::Sender<Item>,
    counters: Arc<Counters>,
    shared: Arc<Shared>,
    /// Dropping until the next random-access point.
    dropping: bool,
    dropped_run: u64,
    has_video: bool,
    /// Latest CONFIG frame per (video?, track, codec): re-sent after a drop.
    configs: Vec<Arc<MediaFrame>>,
}

impl Feeder {
    fn offer(&mut self, frame: Arc<MediaFrame>) {
        self.counters
            .frames_received
            .fetch_add(1, Ordering::Relaxed);
        if frame.is_video() {
            self.has_video = true;
        }
        if frame.is_publisher_end() {
            self.configs.clear();
            self.has_video = false;
        } else if frame.is_config() {
            self.configs.retain(|c| {
                !(c.frame_type == frame.frame_type
                    && c.track == frame.track
                    && c.codec == frame.codec)
            });
            self.configs.push(Arc::clone(&frame));
        }
        if self.dropping {
            let random_access = !frame.is_config()
                && if self.has_video {
                    frame.is_video() && frame.is_keyframe()
                } else {
                    frame.is_audio()
                };
            let need = self.configs.len() + 2;
            if (random_access || frame.is_end_of_stream()) && self.tx.capacity() >= need {
                self.dropping = false;
                self.report_drop(DropCause::QueueFull);
                let _ = self.tx.try_send(Item::Gap);
                if !frame.is_end_of_stream() {
                    for c in &self.configs {
                        let _ = self.tx.try_send(Item::Frame(Arc::clone(c)));
                    }
                }
                let _ = self.tx.try_send(Item::Frame(frame));
            } else if is_media(&frame) {
                self.dropped_run += 1;
                self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        match self.tx.try_send(Item::Frame(frame)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Item::Frame(f))) => {
                self.dropping = true;
                if is_media(&f) {
                    self.dropped_run = 1;
                    self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {}
        }
    }

    /// The bus skipped `n` frames for this subscriber.
    fn bus_lag(&mut self, n: u64) {
        self.counters.frames_dropped.fetch_add(n, Ordering::Relaxed);
        self.shared.dropped(&self.path, n, DropCause::BusLag);
        if !self.dropping {
            // The bus resumes at a keyframe; mark the discontinuity.
            let _ = self.tx.try_send(Item::Gap);
        }
    }

    /// The stream ended: report frames still being dropped.
    fn close(mut self) {
        self.report_drop(DropCause::QueueFull);
    }

    fn report_drop(&mut self, cause: DropCause) {
        let n = std::mem::take(&mut self.dropped_run);
        self.shared.dropped(&self.path, n, cause);
    }
}

/// A video or audio frame that is not a configuration record.
fn is_media(f: &MediaFrame) -> bool {
    !f.is_config() && !f.is_end_of_stream() && (f.is_video() || f.is_audio())
}

/// The consumer side: owns the [`SegmentWriter`] and does the I/O.
struct WriterTask {
    path: StreamPath,
    cfg: RecordConfig,
    shared: Arc<Shared>,
    counters: Arc<Counters>,
    ledger: Option<Arc<AppLedger>>,
    writer: SegmentWriter,
    index: Option<Arc<tokio::sync::Mutex<IndexState>>>,
    broken: Option<StorageKey>,
    next_discontinuity: bool,
    prefix: Arc<Mutex<Option<String>>>,
    stop: CancellationToken,
}

impl WriterTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Item>) -> WriterOutcome {
        let mut actions = Vec::new();
        let mut failed: Option<String> = None;
        // Frames not recorded because the recording failed.
        let mut refused = 0u64;
        while let Some(item) = rx.recv().await {
            if failed.is_some() {
                if matches!(&item, Item::Frame(f) if is_media(f)) {
                    refused += 1;
                }
                continue;
            }
            match item {
                Item::Gap => self.writer.gap(),
                Item::Frame(f) => match self.writer.push(&f, SystemTime::now(), &mut actions) {
                    Ok(()) => {}
                    Err(StreamError::Unsupported(msg)) => {
                        // A codec the container cannot carry: recording the
                        // other tracks alone would lose this one silently.
                        let format = self.writer.format();
                        let error = format!(
                            "{} cannot be recorded in {format:?} ({msg})",
                            f.codec.name()
                        );
                        tracing::error!(stream = %self.path, %error, "recording failed");
                        self.shared.emit(RecorderEvent::Unsupported {
                            path: self.path.clone(),
                            codec: f.codec,
                            format,
                            error: error.clone(),
                        });
                        self.shared.audit_failure(&self.path, error.clone());
                        refused += 1;
                        failed = Some(error);
                        self.stop.cancel();
                    }
                    Err(e) => {
                        // One frame the muxer refused: report and go on.
                        tracing::warn!(stream = %self.path, error = %e, "frame not recordable");
                        self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                        self.shared.dropped(&self.path, 1, DropCause::Unrecordable);
                    }
                },
            }
            for a in actions.drain(..) {
                self.apply(a).await;
            }
            self.counters
                .frames_written
                .store(self.writer.frames_written(), Ordering::Relaxed);
        }
        let _ = self.writer.finish(&mut actions);
        for a in actions.drain(..) {
            self.apply(a).await;
        }
        self.counters
            .frames_written
            .store(self.writer.frames_written(), Ordering::Relaxed);
        self.end_recording().await;
        if refused > 0 {
            self.counters
                .frames_dropped
                .fetch_add(refused, Ordering::Relaxed);
            self.shared
                .dropped(&self.path, refused, DropCause::Unrecordable);
        }
        let prefix = self
            .prefix
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        WriterOutcome {
            prefix,
            limited: self.writer.is_stopped(),
            failed,
        }
    }

    async fn end_recording(&mut self) {
        if let Some(idx) = self.index.take() {
            let mut idx = idx.lock().await;
            idx.ended = true;
            let _ = self
                .shared
                .write_index(Some(&self.path), &self.cfg, Some(&self.counters), &idx)
                .await;
        }
    }

    async fn apply(&mut self, action: WriterAction) {
        match action {
            WriterAction::RecordingStarted { prefix } => {
                self.end_recording().await;
                tracing::info!(stream = %self.path, %prefix, "recording started");
                *self.prefix.lock().unwrap_or_else(|e| e.into_inner()) = Some(prefix.clone());
                if let Some(l) = &self.ledger {
                    // Before its index exists: never taken for an earlier run's.
                    l.lock().own.insert(prefix.clone());
                }
                self.index = Some(Arc::new(tokio::sync::Mutex::new(IndexState {
                    path: self.path.clone(),
                    prefix: prefix.clone(),
                    playlist: RecordingPlaylist::new(self.cfg.segment_target),
                    ended: false,
                })));
                self.next_discontinuity = false;
                self.shared.emit(RecorderEvent::RecordingStarted {
                    path: self.path.clone(),
                    prefix,
                });
            }
            WriterAction::Init { key, data, segment } => {
                let storage = Arc::clone(&self.shared.storage);
                let r = self
                    .shared
                    .with_retry(
                        Some(&self.path),
                        &self.cfg,
                        Some(&self.counters),
                        "put",
                        key.as_str(),
                        || storage.put(&key, data.clone()),
                    )
                    .await;
                if r.is_err() {
                    // The segment cannot be decoded without it.
                    self.broken = Some(segment);
                }
            }
            WriterAction::Append { key, data } => {
                if self.broken.as_ref() == Some(&key) {
                    return;
                }
                let n = data.len() as u64;
                let storage = Arc::clone(&self.shared.storage);
                let r = self
                    .shared
                    .with_retry(
                        Some(&self.path),
                        &self.cfg,
                        Some(&self.counters),
                        "append",
                        key.as_str(),
                        || storage.append(&key, data.clone()),
                    )
                    .await;
                match r {
                    Ok(()) => {
                        self.counters.bytes_written.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(_) => {
                        // The segment is incomplete: keep it out of the index.
                        let _ = self.shared.storage.delete(&key).await;
                        self.broken = Some(key);
                    }
                }
            }
            WriterAction::SegmentClosed(info) => self.segment_closed(info).await,
            WriterAction::LimitReached => {
                tracing::info!(stream = %self.path, "recording reached its maximum duration");
                self.stop.cancel();
            }
        }
    }

    async fn segment_closed(&mut self, mut info: SegmentInfo) {
        if self.broken.as_ref() != Some(&info.key) && info.bytes > 0 {
            // Durable before the index names it (one flush per segment).
            let storage = Arc::clone(&self.shared.storage);
            let key = info.key.clone();
            let synced = self
                .shared
                .with_retry(
                    Some(&self.path),
                    &self.cfg,
                    Some(&self.counters),
                    "sync",
                    key.as_str(),
                    || storage.sync(&key),
                )
                .await;
            if synced.is_err() {
                let _ = self.shared.storage.delete(&key).await;
                self.broken = Some(key);
            }
        }
        if self.broken.as_ref() == Some(&info.key) {
            self.broken = None;
            self.next_discontinuity = true;
            self.counters
                .frames_dropped
                .fetch_add(info.frames, Ordering::Relaxed);
            self.shared
                .dropped(&self.path, info.frames, DropCause::StorageFailure);
            return;
        }
        if info.bytes == 0 {
            return;
        }
        let Some(index) = self.index.clone() else {
            return;
        };
        info.discontinuity |= std::mem::take(&mut self.next_discontinuity);
        {
            let mut idx = index.lock().await;
            let first = idx.playlist.segments.is_empty();
            idx.playlist.segments.push(PlaylistSegment {
                uri: info
                    .key
                    .as_str()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                map: info.init.clone(),
                duration: info.duration,
                bytes: info.bytes,
                discontinuity: info.discontinuity,
                program_date_time: (first || info.discontinuity).then(|| rfc3339(info.started_at)),
            });
            if self
                .shared
                .write_index(Some(&self.path), &self.cfg, Some(&self.counters), &idx)
                .await
                .is_err()
            {
                // The segment is on storage; the next successful index write
                // will list it.
            }
        }
        self.counters.segments.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(stream = %self.path, key = %info.key, ?info.duration, info.bytes, "segment written");
        if let Some(ledger) = &self.ledger {
            // What earlier runs left is accounted before this segment.
            ledger.load(&self.shared).await;
            {
                let mut l = ledger.lock();
                l.segments.push_back(Entry {
                    key: info.key.clone(),
                    bytes: info.bytes,
                    ended: Some(info.started_at + info.duration),
                    index: Arc::clone(&index),
                });
                l.total += info.bytes;
            }
            ledger.enforce(&self.shared).await;
        }
        self.shared.emit(RecorderEvent::SegmentWritten {
            path: self.path.clone(),
            segment: info,
        });
    }
}

/// Remove the oldest segment of a recording: index first (so the index never
/// names a missing object), then the object.
async fn retire(
    shared: &Shared,
    cfg: &RecordConfig,
    key: StorageKey,
    bytes: u64,
    idx: &tokio::sync::Mutex<IndexState>,
) {
    let mut orphan_init = None;
    let path = {
        let mut idx = idx.lock().await;
        let uri = key.as_str().rsplit('/').next().unwrap_or_default();
        if idx.playlist.segments.first().map(|s| s.uri.as_str()) == Some(uri) {
            let popped = idx.playlist.pop_front();
            let _ = shared.write_index(Some(&idx.path), cfg, None, &idx).await;
            // An initialization segment no remaining segment needs.
            if let Some(map) = popped.and_then(|p| p.map) {
                if !idx
                    .playlist
                    .segments
                    .iter()
                    .any(|s| s.map.as_ref() == Some(&map))
                {
                    orphan_init = StorageKey::new(format!("{}/{map}", idx.prefix)).ok();
                }
            }
        }
        idx.path.clone()
    };
    if let Some(init) = orphan_init {
        let _ = shared
            .with_retry(Some(&path), cfg, None, "delete", init.as_str(), || {
                shared.storage.delete(&init)
            })
            .await;
    }
    let r = shared
        .with_retry(Some(&path), cfg, None, "delete", key.as_str(), || {
            shared.storage.delete(&key)
        })
        .await;
    if r.is_ok() {
        tracing::info!(key = %key, bytes, "retention deleted a segment");
        shared.emit(RecorderEvent::SegmentDeleted {
            key: key.to_string(),
            bytes,
        });
    }
}

/// How a writer task ended.
#[derive(Debug, Default)]
struct WriterOutcome {
    /// The last recording's prefix.
    prefix: Option<String>,
    /// `max_duration` stopped it.
    limited: bool,
    /// The recording failed (a codec the container cannot carry).
    failed: Option<String>,
}

/// What [`start_writer`] returns: the feeder, the writer task, counters,
/// prefix.
type StartedWriter = (
    Feeder,
    JoinHandle<WriterOutcome>,
    Arc<Counters>,
    Arc<Mutex<Option<String>>>,
);

fn start_writer(
    path: StreamPath,
    cfg: RecordConfig,
    shared: Arc<Shared>,
    ledger: Option<Arc<AppLedger>>,
    stop: CancellationToken,
) -> StartedWriter {
    let (tx, rx) = mpsc::channel(cfg.queue_frames.max(4));
    let counters = Arc::new(Counters::default());
    let prefix = Arc::new(Mutex::new(None));
    let base = format!("{}/{}", path.app, path.stream);
    let task = WriterTask {
        path: path.clone(),
        writer: SegmentWriter::new(base, cfg.writer_config()),
        cfg,
        shared: Arc::clone(&shared),
        counters: Arc::clone(&counters),
        ledger,
        index: None,
        broken: None,
        next_discontinuity: false,
        prefix: Arc::clone(&prefix),
        stop,
    };
    let handle = tokio::spawn(task.run(rx));
    let feeder = Feeder {
        path,
        tx,
        counters: Arc::clone(&counters),
        shared,
        dropping: false,
        dropped_run: 0,
        has_video: false,
        configs: Vec::new(),
    };
    (feeder, handle, counters, prefix)
}

/// One active recording.
struct Active {
    stop: CancellationToken,
    task: JoinHandle<RecordingSummary>,
    counters: Arc<Counters>,
    prefix: Arc<Mutex<Option<String>>>,
}

struct RecorderInner {
    engine: Engine,
    shared: Arc<Shared>,
    policies: HashMap<String, RecordPolicy>,
    default_policy: RecordPolicy,
    active: Mutex<HashMap<StreamPath, Active>>,
    ledgers: Mutex<HashMap<String, Arc<AppLedger>>>,
    /// Storage was searched for applications the default policy bounds.
    searched_apps: std::sync::atomic::AtomicBool,
}

/// Records streams of an [`Engine`] into a [`StorageBackend`], under
/// per-application [`RecordPolicy`]s. Cheap to clone (shared).
///
/// ```
/// use arcly_core::engine::{AppSpec, Engine};
/// use arcly_core::registry::{PublishRegistry, PublishRequest};
/// use arcly_core::{CodecId, MediaFrame, StreamPath};
/// use arcly_record::{FsStorage, RecordMode, RecordPolicy, Recorder};
/// use std::sync::Arc;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let engine = Engine::builder().application(AppSpec::new("live")).build();
/// let recorder = Recorder::builder(engine.clone(), Arc::new(FsStorage::new(dir.path()).unwrap()))
///     .policy("live", RecordPolicy { mode: RecordMode::OnRequest, ..Default::default() })
///     .build();
/// let path = StreamPath::parse("live", "cam").unwrap();
/// recorder.start(&path).await.unwrap(); // subscribes before the publisher: nothing is missed
/// let mut publisher = engine.publish(PublishRequest::new(path.clone(), "example")).await.unwrap();
/// let mp3 = |ms| { let mut v = vec![0xFF, 0xFB, 0x94, 0x64]; v.resize(384, 0);
///                  MediaFrame::audio(CodecId::Mp3, ms, v.into()) };
/// for i in 0..100 { publisher.push(mp3(i * 24)); }
/// # tokio::time::sleep(std::time::Duration::from_millis(50)).await;
/// let summary = recorder.stop(&path).await.unwrap();
/// assert_eq!(summary.stats.frames_written, 100, "{summary:?}");
/// assert!(summary.prefix.unwrap().starts_with("live/cam/"));
/// # });
/// ```
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<RecorderInner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("policies", &self.inner.policies)
            .field("active", &self.active())
            .finish()
    }
}

/// Builds a [`Recorder`].
pub struct RecorderBuilder {
    engine: Engine,
    storage: Arc<dyn StorageBackend>,
    policies: HashMap<String, RecordPolicy>,
    default_policy: RecordPolicy,
    event_capacity: usize,
}

impl std::fmt::Debug for RecorderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderBuilder")
            .field("policies", &self.policies)
            .finish_non_exhaustive()
    }
}

impl RecorderBuilder {
    /// The policy of application `app`.
    #[must_use]
    pub fn policy(mut self, app: &str, policy: RecordPolicy) -> Self {
        self.policies.insert(app.to_owned(), policy);
        self
    }

    /// The policy of applications without one (default: on request, default
    /// config, no size bound).
    #[must_use]
    pub fn default_policy(mut self, policy: RecordPolicy) -> Self {
        self.default_policy = policy;
        self
    }

    /// Buffer up to `n` [`RecorderEvent`]s per listener (default 1024).
    #[must_use]
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n.max(1);
        self
    }

    /// Build the recorder.
    pub fn build(self) -> Recorder {
        Recorder {
            inner: Arc::new(RecorderInner {
                shared: Arc::new(Shared::new(
                    self.storage,
                    self.event_capacity,
                    Some(self.engine.clone()),
                )),
                engine: self.engine,
                policies: self.policies,
                default_policy: self.default_policy,
                active: Mutex::new(HashMap::new()),
                ledgers: Mutex::new(HashMap::new()),
                searched_apps: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }
}

impl Recorder {
    /// Start building a recorder of `engine`'s streams into `storage`.
    pub fn builder(engine: Engine, storage: Arc<dyn StorageBackend>) -> RecorderBuilder {
        RecorderBuilder {
            engine,
            storage,
            policies: HashMap::new(),
            default_policy: RecordPolicy::default(),
            event_capacity: 1024,
        }
    }

    /// The policy that applies to `app`.
    pub fn policy(&self, app: &str) -> &RecordPolicy {
        self.inner
            .policies
            .get(app)
            .unwrap_or(&self.inner.default_policy)
    }

    /// Listen to [`RecorderEvent`]s from now on.
    pub fn events(&self) -> broadcast::Receiver<RecorderEvent> {
        self.inner.shared.events.subscribe()
    }

    /// Streams being recorded now.
    pub fn active(&self) -> Vec<StreamPath> {
        let a = self.lock_active();
        let mut v: Vec<_> = a
            .iter()
            .filter(|(_, r)| !r.task.is_finished())
            .map(|(p, _)| p.clone())
            .collect();
        v.sort();
        v
    }

    /// Counters of the recording of `path`.
    pub fn stats(&self, path: &StreamPath) -> Option<RecordingStats> {
        self.lock_active().get(path).map(|a| a.counters.snapshot())
    }

    /// The key prefix of the current recording of `path`
    /// (`app/stream/<start-time>`), once its first segment has started.
    pub fn recording_prefix(&self, path: &StreamPath) -> Option<String> {
        self.lock_active()
            .get(path)
            .and_then(|a| a.prefix.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Delete the finished recording stored under `prefix`
    /// (`app/stream/<start-time>`): its segments leave the retention
    /// ledger (so they no longer count against
    /// [`RecordPolicy::max_total_bytes`]), then its indexes are deleted
    /// (so no index names a missing segment), then every other object.
    /// A recording still being written is refused
    /// ([`DeleteOutcome::InProgress`]).
    pub async fn delete_recording(&self, prefix: &str) -> Result<DeleteOutcome> {
        let mut it = prefix.split('/');
        let (Some(app), Some(stream), Some(_), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return Ok(DeleteOutcome::NotFound);
        };
        let path = StreamPath::parse(app, stream)?;
        if self.recording_prefix(&path).as_deref() == Some(prefix) {
            return Ok(DeleteOutcome::InProgress);
        }
        let storage = &self.inner.shared.storage;
        let dir = format!("{prefix}/");
        let keys = storage.list(&dir).await?;
        if keys.is_empty() {
            return Ok(DeleteOutcome::NotFound);
        }
        let ledger = {
            let l = self.inner.ledgers.lock().unwrap_or_else(|e| e.into_inner());
            l.get(app).cloned()
        };
        if let Some(ledger) = ledger {
            // What earlier runs left is accounted first, so it cannot come
            // back into the ledger from a later load.
            ledger.load(&self.inner.shared).await;
            let mut l = ledger.lock();
            let mut freed = 0;
            l.segments.retain(|e| {
                let gone = e.key.as_str().starts_with(&dir);
                if gone {
                    freed += e.bytes;
                }
                !gone
            });
            l.total = l.total.saturating_sub(freed);
        }
        let (indexes, rest): (Vec<_>, Vec<_>) = keys.into_iter().partition(|k| {
            k.as_str()
                .rsplit('/')
                .next()
                .is_some_and(|n| n == INDEX_NAME || n == LIVE_NAME)
        });
        // Sizes as the index accounts them (no segment is read).
        let sizes: HashMap<String, u64> = match StorageKey::new(format!("{dir}{INDEX_NAME}")) {
            Ok(k) => match storage.get(&k).await {
                Ok(text) => RecordingPlaylist::parse(&text)
                    .map(|p| p.segments.into_iter().map(|s| (s.uri, s.bytes)).collect())
                    .unwrap_or_default(),
                Err(_) => HashMap::new(),
            },
            Err(_) => HashMap::new(),
        };
        for k in &indexes {
            storage.delete(k).await?;
        }
        let (mut segments, mut bytes) = (0usize, 0u64);
        for k in &rest {
            storage.delete(k).await?;
            let name = k.as_str().rsplit('/').next().unwrap_or_default();
            let size = sizes.get(name).copied().unwrap_or(0);
            segments += 1;
            bytes += size;
            self.inner.shared.emit(RecorderEvent::SegmentDeleted {
                key: k.to_string(),
                bytes: size,
            });
        }
        tracing::info!(target: "arcly::audit", event = "recording_deleted", prefix, segments, bytes, "recording deleted");
        Ok(DeleteOutcome::Deleted {
            objects: segments,
            bytes,
        })
    }

    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<StreamPath, Active>> {
        self.inner.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ledger(&self, app: &str, policy: &RecordPolicy) -> Option<Arc<AppLedger>> {
        if policy.max_total_bytes.is_none() && policy.config.max_age.is_none() {
            return None;
        }
        let mut l = self.inner.ledgers.lock().unwrap_or_else(|e| e.into_inner());
        let ledger = l.entry(app.to_owned()).or_insert_with(|| {
            Arc::new(AppLedger {
                app: app.to_owned(),
                max_total_bytes: policy.max_total_bytes,
                max_age: policy.config.max_age,
                cfg: policy.config.clone(),
                state: Mutex::default(),
                loaded: tokio::sync::OnceCell::new(),
            })
        });
        Some(Arc::clone(ledger))
    }

    /// Apply retention now to every application that has a bound
    /// ([`RecordPolicy::max_total_bytes`], [`RecordConfig::max_age`]):
    /// the first time, the recordings already on storage are accounted
    /// (each `index.m3u8` under the application); the oldest segments over
    /// the bounds are deleted, index first. Applications without a policy
    /// of their own are found on storage (once: the first call lists it
    /// all) when the default policy has a bound. Returns how many segments
    /// were deleted. [`Recorder::run`]
    /// calls it at start and every [`RETENTION_SWEEP`].
    pub async fn enforce_retention(&self) -> usize {
        let bounded = |p: &RecordPolicy| p.max_total_bytes.is_some() || p.config.max_age.is_some();
        let mut apps: Vec<String> = self
            .inner
            .policies
            .iter()
            .filter(|(_, p)| bounded(p))
            .map(|(a, _)| a.clone())
            .collect();
        let known: Vec<String> = self
            .inner
            .ledgers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for app in known {
            if !apps.contains(&app) {
                apps.push(app);
            }
        }
        if bounded(&self.inner.default_policy)
            && !self.inner.searched_apps.swap(true, Ordering::Relaxed)
        {
            let shared = &self.inner.shared;
            let cfg = &self.inner.default_policy.config;
            if let Ok(keys) = shared
                .with_retry(None, cfg, None, "list", "", || shared.storage.list(""))
                .await
            {
                for k in keys {
                    let app = k.as_str().split('/').next().unwrap_or_default();
                    if !self.inner.policies.contains_key(app) && !apps.iter().any(|a| a == app) {
                        apps.push(app.to_owned());
                    }
                }
            }
        }
        let mut n = 0;
        for app in apps {
            let policy = self.policy(&app).clone();
            if let Some(l) = self.ledger(&app, &policy) {
                n += l.enforce(&self.inner.shared).await;
            }
        }
        n
    }

    /// Start recording `path` (the stream need not be live yet: the
    /// recorder waits for its publisher, and subscribing before the publisher
    /// starts means not a frame is missed). Returns `false` if it is already
    /// being recorded. Refused with [`StreamError::Unauthorized`] when the
    /// application's mode is [`RecordMode::Off`]. Needs a tokio runtime.
    pub async fn start(&self, path: &StreamPath) -> Result<bool> {
        let policy = self.policy(path.app.as_str()).clone();
        if policy.mode == RecordMode::Off {
            return Err(StreamError::Unauthorized {
                reason: "recording is off for this application".into(),
            });
        }
        if self.is_recording(path) {
            return Ok(false);
        }
        // Subscribe before returning, so frames published from now on are
        // all recorded.
        let mut req = PlayRequest::new(path.clone(), PROTOCOL);
        req.wait_for_publisher = true;
        let sub = self.inner.engine.subscribe(req).await?;
        Ok(self.spawn_recording(path, policy, sub))
    }

    fn is_recording(&self, path: &StreamPath) -> bool {
        self.lock_active()
            .get(path)
            .is_some_and(|a| !a.task.is_finished())
    }

    /// Record a stream that is live now, subscribing to it synchronously
    /// (no `.await` between the caller's decision and the subscription, so
    /// the GOP-cache replay covers every frame published since the last
    /// keyframe). Used by [`run`](Self::run) on `Published`.
    fn start_live(&self, path: &StreamPath) -> Result<bool> {
        let policy = self.policy(path.app.as_str()).clone();
        if policy.mode != RecordMode::All || self.is_recording(path) {
            return Ok(false);
        }
        let engine = &self.inner.engine;
        if engine.shutdown_token().is_cancelled() {
            return Err(StreamError::ShuttingDown);
        }
        let Some(stream) = engine.stream(path) else {
            return Err(StreamError::StreamNotFound {
                app: path.app.to_string(),
                stream: path.stream.to_string(),
            });
        };
        if engine
            .app(path.app.as_str())
            .is_some_and(|a| a.gop_cache_frames() == 0)
        {
            tracing::warn!(
                stream = %path,
                "recording an application without a GOP cache: frames published before the recorder subscribed are lost (enable AppSpec::gop_cache)"
            );
        }
        // The recorder is the host's own component: its subscription is
        // not put to the authenticator (policy decides), but it is audited
        // like any play.
        let sub = stream.subscribe(PROTOCOL)?;
        engine.audit().submit(AuditEvent::now(
            AuthAction::Play,
            path.clone(),
            None,
            PROTOCOL,
            AuditOutcome::Started,
        ));
        Ok(self.spawn_recording(path, policy, sub))
    }

    /// Run the recording of `path` on `sub`; `false` if one runs already.
    fn spawn_recording(&self, path: &StreamPath, policy: RecordPolicy, sub: Subscription) -> bool {
        let mut active = self.lock_active();
        if active.get(path).is_some_and(|a| !a.task.is_finished()) {
            return false;
        }
        let stop = CancellationToken::new();
        let ledger = self.ledger(path.app.as_str(), &policy);
        let (feeder, writer, counters, prefix) = start_writer(
            path.clone(),
            policy.config.clone(),
            Arc::clone(&self.inner.shared),
            ledger,
            stop.clone(),
        );
        let task = tokio::spawn(feed(
            sub,
            self.inner.engine.shutdown_token(),
            path.clone(),
            policy.config.republish_grace,
            feeder,
            writer,
            Arc::clone(&counters),
            stop.clone(),
            Arc::clone(&self.inner.shared),
        ));
        active.insert(
            path.clone(),
            Active {
                stop,
                task,
                counters,
                prefix,
            },
        );
        true
    }

    /// Stop recording `path` gracefully: every frame received is written,
    /// the last segment closed and the index finalized (`EXT-X-ENDLIST`).
    /// `None` if it was not being recorded.
    pub async fn stop(&self, path: &StreamPath) -> Option<RecordingSummary> {
        let a = self.lock_active().remove(path)?;
        a.stop.cancel();
        a.task.await.ok()
    }

    /// Stop every recording gracefully.
    pub async fn stop_all(&self) -> Vec<RecordingSummary> {
        let all: Vec<Active> = self.lock_active().drain().map(|(_, a)| a).collect();
        for a in &all {
            a.stop.cancel();
        }
        let mut out = Vec::new();
        for a in all {
            if let Ok(s) = a.task.await {
                out.push(s);
            }
        }
        out
    }

    /// Record every stream of [`RecordMode::All`] applications as it is
    /// published, until the engine shuts down (then every recording is
    /// stopped gracefully).
    ///
    /// The recorder learns of a publisher from the engine's `Published`
    /// event, after the publisher may already have pushed frames. It
    /// subscribes from the event handler itself, before yielding, and the
    /// subscription first replays the stream's GOP cache — so **give every
    /// application that is recorded this way a GOP cache**
    /// (`AppSpec::gop_cache`, large enough for one GOP): then the recording
    /// starts at the publisher's first keyframe. Without one, the frames
    /// published before the subscription (up to the next keyframe) are not
    /// recorded, and a warning is logged. [`Recorder::start`] before the
    /// publisher arrives needs no cache.
    pub fn run(&self) -> JoinHandle<()> {
        let me = self.clone();
        let mut events = self.inner.engine.events().subscribe();
        let shutdown = self.inner.engine.shutdown_token();
        // Retention on its own task: at start (recordings of earlier runs),
        // then every RETENTION_SWEEP for `max_age` while nothing records.
        let stop_sweeping = shutdown.child_token();
        let sweeper = {
            let me = self.clone();
            let stop = stop_sweeping.clone();
            tokio::spawn(async move {
                loop {
                    me.enforce_retention().await;
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(RETENTION_SWEEP) => {}
                    }
                }
            })
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    e = events.recv() => match e {
                        Ok(EngineEvent::Published { path, .. }) => {
                            // No `.await` before the subscription.
                            if let Err(e) = me.start_live(&path) {
                                tracing::warn!(stream = %path, error = %e, "could not start recording");
                            }
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "recorder missed engine events; rescanning streams");
                            for s in me.inner.engine.list_streams() {
                                if s.live {
                                    let _ = me.start_live(&s.path);
                                }
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                }
            }
            me.stop_all().await;
            // A sweep in progress finishes (an index is never left behind
            // its objects).
            stop_sweeping.cancel();
            let _ = sweeper.await;
        })
    }
}

/// The subscription side of a recording started by [`Recorder::start`].
#[allow(clippy::too_many_arguments)]
async fn feed(
    mut sub: Subscription,
    shutdown: CancellationToken,
    path: StreamPath,
    grace: Duration,
    mut feeder: Feeder,
    writer: JoinHandle<WriterOutcome>,
    counters: Arc<Counters>,
    stop: CancellationToken,
    shared: Arc<Shared>,
) -> RecordingSummary {
    let mut reason = FinishReason::Stopped;
    {
        {
            let mut publisher_gone: Option<tokio::time::Instant> = None;
            loop {
                let deadline = publisher_gone.map(|t| t + grace);
                let skipped = sub.skipped();
                let next = tokio::select! {
                    biased;
                    _ = stop.cancelled() => None,
                    _ = shutdown.cancelled() => None,
                    _ = async { match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    } } => { reason = FinishReason::PublisherGone; break; }
                    f = sub.recv() => Some(f),
                };
                let Some(next) = next else {
                    // Stop or shutdown: take what the bus already holds.
                    while let Ok(Some(f)) = sub.try_recv() {
                        feeder.offer(f);
                    }
                    if shutdown.is_cancelled() {
                        reason = FinishReason::StreamClosed;
                    } else if writer.is_finished() || feeder.tx.is_closed() {
                        reason = FinishReason::MaxDuration;
                    }
                    break;
                };
                match next {
                    Ok(f) => {
                        let lag = sub.skipped().saturating_sub(skipped);
                        if lag > 0 {
                            feeder.bus_lag(lag);
                        }
                        publisher_gone = f.is_publisher_end().then(tokio::time::Instant::now);
                        feeder.offer(f);
                    }
                    Err(StreamError::StreamClosed) => {
                        reason = FinishReason::StreamClosed;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(stream = %path, error = %e, "recording subscription failed");
                        reason = FinishReason::Failed(e.to_string());
                        break;
                    }
                }
            }
        }
    }
    feeder.close();
    let outcome = writer.await.unwrap_or_default();
    if let Some(error) = outcome.failed {
        reason = FinishReason::Failed(error);
    } else if outcome.limited {
        reason = FinishReason::MaxDuration;
    }
    let summary = RecordingSummary {
        prefix: outcome.prefix,
        reason,
        stats: counters.snapshot(),
    };
    tracing::info!(stream = %path, ?summary, "recording finished");
    shared.emit(RecorderEvent::RecordingFinished {
        path,
        summary: summary.clone(),
    });
    summary
}

/// A [`MediaSink`] that records the stream it is attached to
/// (`Engine::attach_sink(path, Box::new(sink))`). `on_frame` never waits
/// for storage; `on_end` (or an error) finishes the recording. Await the
/// [`RecordingSinkHandle`] for the summary.
pub struct RecordingSink {
    feeder: Option<Feeder>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for RecordingSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingSink")
            .field("path", &self.feeder.as_ref().map(|f| f.path.to_string()))
            .finish()
    }
}

/// The other end of a [`RecordingSink`]: stats, events and the summary.
#[derive(Debug)]
pub struct RecordingSinkHandle {
    task: JoinHandle<RecordingSummary>,
    counters: Arc<Counters>,
    events: broadcast::Sender<RecorderEvent>,
}

impl RecordingSinkHandle {
    /// Counters so far.
    pub fn stats(&self) -> RecordingStats {
        self.counters.snapshot()
    }

    /// Listen to this recording's events from now on.
    pub fn events(&self) -> broadcast::Receiver<RecorderEvent> {
        self.events.subscribe()
    }

    /// Wait until the sink has ended and everything is stored.
    pub async fn finished(self) -> Result<RecordingSummary> {
        self.task
            .await
            .map_err(|e| StreamError::Storage(format!("recording task failed: {e}")))
    }
}

impl RecordingSink {
    /// A sink recording `path` into `storage` with `config`. Failures are
    /// reported as [`RecorderEvent`]s only; see
    /// [`for_engine`](Self::for_engine). Needs a tokio runtime.
    pub fn new(
        path: StreamPath,
        storage: Arc<dyn StorageBackend>,
        config: RecordConfig,
    ) -> (Self, RecordingSinkHandle) {
        Self::with_shared(path, Arc::new(Shared::new(storage, 1024, None)), config)
    }

    /// As [`new`](Self::new), and storage failures and drops also reach
    /// `engine`'s [`Observer`] and audit trail (as with a [`Recorder`]).
    pub fn for_engine(
        engine: &Engine,
        path: StreamPath,
        storage: Arc<dyn StorageBackend>,
        config: RecordConfig,
    ) -> (Self, RecordingSinkHandle) {
        let shared = Arc::new(Shared::new(storage, 1024, Some(engine.clone())));
        Self::with_shared(path, shared, config)
    }

    fn with_shared(
        path: StreamPath,
        shared: Arc<Shared>,
        config: RecordConfig,
    ) -> (Self, RecordingSinkHandle) {
        let events = shared.events.clone();
        let (feeder, writer, counters, _prefix) = start_writer(
            path.clone(),
            config,
            Arc::clone(&shared),
            None,
            CancellationToken::new(),
        );
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let c = Arc::clone(&counters);
        let task = tokio::spawn(async move {
            let _ = done_rx.await;
            let outcome = writer.await.unwrap_or_default();
            let summary = RecordingSummary {
                prefix: outcome.prefix,
                reason: if let Some(error) = outcome.failed {
                    FinishReason::Failed(error)
                } else if outcome.limited {
                    FinishReason::MaxDuration
                } else {
                    FinishReason::StreamClosed
                },
                stats: c.snapshot(),
            };
            shared.emit(RecorderEvent::RecordingFinished {
                path,
                summary: summary.clone(),
            });
            summary
        });
        (
            Self {
                feeder: Some(feeder),
                done: Some(done_tx),
            },
            RecordingSinkHandle {
                task,
                counters,
                events,
            },
        )
    }

    fn end(&mut self) {
        // Closing the queue lets the writer drain and finish.
        if let Some(f) = self.feeder.take() {
            f.close();
        }
        if let Some(d) = self.done.take() {
            let _ = d.send(());
        }
    }
}

impl Drop for RecordingSink {
    fn drop(&mut self) {
        self.end();
    }
}

#[async_trait]
impl MediaSink for RecordingSink {
    async fn on_frame(&mut self, frame: Arc<MediaFrame>) -> Result<()> {
        if let Some(f) = self.feeder.as_mut() {
            f.offer(frame);
        }
        Ok(())
    }

    async fn on_end(&mut self) -> Result<()> {
        self.end();
        Ok(())
    }

    async fn on_error(&mut self, _error: &StreamError) {
        self.end();
    }
}
