//! The tokio driver around [`HlsStream`]: a [`Packager`] follows one stream
//! of a [`PlaybackRegistry`] (an `Engine`, or any host) and an
//! [`HlsRegistry`] owns one packager per stream, started on demand.
//!
//! Lifecycle of one packager:
//! - it subscribes with `wait_for_publisher: true` and protocol `"hls"`, so
//!   it may start before anyone publishes;
//! - an end-of-stream marker (the publisher left) ends the segment in
//!   progress; the next publisher's first segment carries
//!   `EXT-X-DISCONTINUITY`;
//! - with no publisher for [`PackagerConfig::unpublish_grace`], when the
//!   stream is removed, or on [`Packager::stop`], the playlist gets
//!   `EXT-X-ENDLIST` and the task ends; the ended playlist stays servable
//!   for [`PackagerConfig::keep_ended`].

use crate::stream::{HlsConfig, HlsStream, Position};
use arcly_core::engine::Engine;
use arcly_core::events::EngineEvent;
use arcly_core::registry::{PlayRequest, PlaybackRegistry};
use arcly_core::{MediaFrame, StreamError, StreamPath};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The protocol name packagers subscribe as.
pub const PROTOCOL: &str = "hls";
/// Frames pushed under one lock acquisition before readers get a turn.
const MAX_BATCH: usize = 64;
/// Times a packager resubscribes after being dropped as a slow subscriber.
const MAX_RESUBSCRIBES: u32 = 8;

/// Settings of every packager of an [`HlsRegistry`].
#[derive(Clone, Debug)]
pub struct PackagerConfig {
    /// Segmenting: segment target, LL-HLS part target (`None`: LL-HLS off),
    /// window, TS vs fMP4 (auto by default).
    pub hls: HlsConfig,
    /// How long to wait for a new publisher after one left before the
    /// playlist ends (default 10 s).
    pub unpublish_grace: Duration,
    /// How long an ended playlist (and its window) stays servable (default 30 s).
    pub keep_ended: Duration,
    /// Most packagers at once (default 1024); more are refused.
    pub max_streams: usize,
}

impl Default for PackagerConfig {
    fn default() -> Self {
        Self {
            hls: HlsConfig::default(),
            unpublish_grace: Duration::from_secs(10),
            keep_ended: Duration::from_secs(30),
            max_streams: 1024,
        }
    }
}

impl PackagerConfig {
    /// LL-HLS with parts of `part` (and segments of `segment`).
    pub fn low_latency(segment: Duration, part: Duration) -> Self {
        let mut c = Self::default();
        c.hls.segment_target = segment;
        c.hls.part_target = Some(part);
        c
    }
}

struct Shared {
    path: StreamPath,
    stream: Mutex<HlsStream>,
    position: watch::Receiver<Position>,
    cancel: CancellationToken,
    finished: watch::Sender<Option<Instant>>,
    /// Rendered playlists (full, delta) and the live edge they show.
    cache: Mutex<[Option<(Position, Bytes)>; 2]>,
}

/// One stream being packaged. Cheap to clone (shared); the task stops on
/// [`Packager::stop`], not when the handles are dropped.
#[derive(Clone)]
pub struct Packager {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Packager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packager")
            .field("path", &self.shared.path)
            .field("position", &self.position())
            .finish_non_exhaustive()
    }
}

impl Packager {
    /// Start packaging `path` from `registry` on the current tokio runtime.
    pub fn spawn(
        registry: Arc<dyn PlaybackRegistry>,
        path: StreamPath,
        cfg: PackagerConfig,
    ) -> Self {
        let (packager, _task) = Self::spawn_with_handle(registry, path, cfg);
        packager
    }

    /// [`Packager::spawn`], also returning the task (ends after `EXT-X-ENDLIST`).
    pub fn spawn_with_handle(
        registry: Arc<dyn PlaybackRegistry>,
        path: StreamPath,
        cfg: PackagerConfig,
    ) -> (Self, JoinHandle<()>) {
        let mut hls_cfg = cfg.hls.clone();
        // A per-session tag in every URI: a later session of the same
        // stream never collides with cached segments of this one.
        let tag = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64 & 0xff_ffff_ffff);
        hls_cfg.uri_prefix = format!("{}{tag:x}-", hls_cfg.uri_prefix);
        let stream = HlsStream::new(hls_cfg);
        let position = stream.subscribe();
        let (finished, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            path,
            stream: Mutex::new(stream),
            position,
            cancel: CancellationToken::new(),
            finished,
            cache: Mutex::new([None, None]),
        });
        let task = tokio::spawn(run(Arc::clone(&shared), registry, cfg));
        (Self { shared }, task)
    }

    /// The stream packaged.
    pub fn path(&self) -> &StreamPath {
        &self.shared.path
    }

    /// Lock the segmenter (briefly: the packager task waits meanwhile).
    pub fn lock(&self) -> MutexGuard<'_, HlsStream> {
        self.shared.stream.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The media playlist text (`skip`: a delta update), rendered once per
    /// live-edge change and shared by every request until the next.
    pub fn playlist(&self, skip: bool) -> Option<Bytes> {
        let slot = usize::from(skip);
        let pos = self.position();
        {
            let cache = self.shared.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((p, b)) = &cache[slot] {
                if *p == pos {
                    return Some(b.clone());
                }
            }
        }
        let (pos, text) = {
            let hls = self.lock();
            (hls.position(), hls.playlist(skip)?)
        };
        let bytes = Bytes::from(text);
        let mut cache = self.shared.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache[slot] = Some((pos, bytes.clone()));
        Some(bytes)
    }

    /// The live edge.
    pub fn position(&self) -> Position {
        *self.shared.position.borrow()
    }

    /// A receiver of every change of the live edge.
    pub fn subscribe(&self) -> watch::Receiver<Position> {
        self.shared.position.clone()
    }

    /// Wait until `_HLS_msn=msn` / `_HLS_part=part` can be answered (RFC
    /// 8216bis §6.2.5.2) or `timeout` passes; returns whether it is ready.
    pub async fn wait_ready(&self, msn: u64, part: Option<u64>, timeout: Duration) -> bool {
        let ready = |p: &Position| {
            p.ended || msn < p.msn || (msn == p.msn && part.is_some_and(|i| i < p.parts))
        };
        let mut rx = self.subscribe();
        let r = tokio::time::timeout(timeout, rx.wait_for(|p| ready(p))).await;
        matches!(r, Ok(Ok(_)))
    }

    /// Wait until the first playlist exists (or the stream ended), at most `timeout`.
    pub async fn wait_playlist(&self, timeout: Duration) -> bool {
        let mut rx = self.subscribe();
        let r = tokio::time::timeout(timeout, rx.wait_for(|p| p.msn > 0 || p.ended)).await;
        matches!(r, Ok(Ok(_)))
    }

    /// End the stream now: the playlist gets `EXT-X-ENDLIST` and the task ends.
    pub fn stop(&self) {
        self.shared.cancel.cancel();
    }

    /// When the packager ended (`None` while it runs).
    pub fn finished_at(&self) -> Option<Instant> {
        *self.shared.finished.borrow()
    }

    /// Wait until the task has ended.
    pub async fn finished(&self) {
        let mut rx = self.shared.finished.subscribe();
        let _ = rx.wait_for(Option::is_some).await;
    }
}

async fn run(shared: Arc<Shared>, registry: Arc<dyn PlaybackRegistry>, cfg: PackagerConfig) {
    let path = shared.path.clone();
    let mut resubscribes = 0;
    'subscribe: loop {
        let req = PlayRequest {
            wait_for_publisher: true,
            ..PlayRequest::new(path.clone(), PROTOCOL)
        };
        let sub = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            s = registry.subscribe(req) => s,
        };
        let mut sub = match sub {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(stream = %path, error = %e, "hls: cannot subscribe");
                break;
            }
        };
        let mut unpublished: Option<tokio::time::Instant> = None;
        loop {
            let deadline = unpublished.map(|t| t + cfg.unpublish_grace);
            let next = tokio::select! {
                _ = shared.cancel.cancelled() => {
                    // Stopping: what was already published still goes in.
                    let mut hls = lock(&shared);
                    while let Ok(Some(f)) = sub.try_recv() {
                        let _ = hls.push(&f);
                    }
                    break 'subscribe;
                }
                _ = sleep_until(deadline) => {
                    tracing::debug!(stream = %path, "hls: no publisher came back");
                    break 'subscribe;
                }
                f = sub.recv() => f,
            };
            let first = match next {
                Ok(f) => f,
                Err(StreamError::SlowSubscriber { .. }) if resubscribes < MAX_RESUBSCRIBES => {
                    resubscribes += 1;
                    tracing::warn!(stream = %path, "hls: fell behind; resubscribing");
                    lock(&shared).publisher_left();
                    continue 'subscribe;
                }
                Err(e) => {
                    tracing::debug!(stream = %path, error = %e, "hls: subscription ended");
                    break 'subscribe;
                }
            };
            // Push what is ready now under one lock acquisition.
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match sub.try_recv() {
                    Ok(Some(f)) => batch.push(f),
                    _ => break,
                }
            }
            let mut hls = lock(&shared);
            for f in &batch {
                note_publisher(&mut unpublished, f);
                if let Err(e) = hls.push(f) {
                    tracing::warn!(stream = %path, error = %e, "hls: frame refused");
                }
            }
        }
    }
    lock(&shared).end();
    shared.finished.send_replace(Some(Instant::now()));
}

fn lock(shared: &Shared) -> MutexGuard<'_, HlsStream> {
    shared.stream.lock().unwrap_or_else(|e| e.into_inner())
}

fn note_publisher(unpublished: &mut Option<tokio::time::Instant>, f: &MediaFrame) {
    if f.is_publisher_end() {
        *unpublished = Some(tokio::time::Instant::now());
    } else {
        *unpublished = None;
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

struct RegistryInner {
    source: Arc<dyn PlaybackRegistry>,
    cfg: PackagerConfig,
    per_app: HashMap<String, PackagerConfig>,
    packagers: RwLock<HashMap<StreamPath, Packager>>,
    shutdown: CancellationToken,
}

/// The packagers of a server, one per stream, started on demand. Cheap to
/// clone (shared).
///
/// Start them from the engine's events ([`HlsRegistry::follow`]: every
/// `Published` stream gets a packager) or explicitly
/// ([`HlsRegistry::start`]); the HTTP layer also starts one for a live
/// stream that a player asks for.
#[derive(Clone)]
pub struct HlsRegistry {
    inner: Arc<RegistryInner>,
}

impl std::fmt::Debug for HlsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlsRegistry")
            .field("streams", &self.read().len())
            .finish_non_exhaustive()
    }
}

impl HlsRegistry {
    /// Packagers reading from `source` (an `Engine` or any registry).
    pub fn new(source: Arc<dyn PlaybackRegistry>, cfg: PackagerConfig) -> Self {
        Self {
            inner: Arc::new(RegistryInner {
                source,
                cfg,
                per_app: HashMap::new(),
                packagers: RwLock::new(HashMap::new()),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Use `cfg` for the streams of application `app` (e.g. LL-HLS or
    /// fMP4 for one app only). Call before the registry is shared.
    #[must_use]
    pub fn with_app(mut self, app: &str, cfg: PackagerConfig) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.per_app.insert(app.to_owned(), cfg);
        }
        self
    }

    /// The default settings.
    pub fn config(&self) -> &PackagerConfig {
        &self.inner.cfg
    }

    /// The settings of `path`'s application.
    pub fn config_for(&self, path: &StreamPath) -> &PackagerConfig {
        self.inner
            .per_app
            .get(path.app.as_str())
            .unwrap_or(&self.inner.cfg)
    }

    /// The registry packagers read from.
    pub fn source(&self) -> &Arc<dyn PlaybackRegistry> {
        &self.inner.source
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<StreamPath, Packager>> {
        self.inner
            .packagers
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The packager of `path`, running or recently ended.
    pub fn get(&self, path: &StreamPath) -> Option<Packager> {
        self.read().get(path).cloned()
    }

    /// Paths with a packager.
    pub fn paths(&self) -> Vec<StreamPath> {
        self.read().keys().cloned().collect()
    }

    /// The running packager of `path`, starting one if there is none (or
    /// the last one ended). Errors when [`PackagerConfig::max_streams`]
    /// packagers run or the registry is shut down.
    pub fn start(&self, path: &StreamPath) -> arcly_core::Result<Packager> {
        if self.inner.shutdown.is_cancelled() {
            return Err(StreamError::ShuttingDown);
        }
        if let Some(p) = self.read().get(path).filter(|p| p.finished_at().is_none()) {
            return Ok(p.clone());
        }
        let mut map = self
            .inner
            .packagers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(p) = map.get(path).filter(|p| p.finished_at().is_none()) {
            return Ok(p.clone());
        }
        let keep = self.inner.cfg.keep_ended;
        map.retain(|_, p| p.finished_at().is_none_or(|t| t.elapsed() < keep));
        let cfg = self.config_for(path).clone();
        if map.len() >= self.inner.cfg.max_streams && !map.contains_key(path) {
            return Err(StreamError::LimitExceeded(format!(
                "more than {} HLS streams",
                self.inner.cfg.max_streams
            )));
        }
        let p = Packager::spawn(Arc::clone(&self.inner.source), path.clone(), cfg);
        map.insert(path.clone(), p.clone());
        Ok(p)
    }

    /// End `path`'s playlist now (`EXT-X-ENDLIST`).
    pub fn stop(&self, path: &StreamPath) {
        if let Some(p) = self.get(path) {
            p.stop();
        }
    }

    /// Forget packagers that ended more than [`PackagerConfig::keep_ended`] ago.
    pub fn prune(&self) -> usize {
        let keep = self.inner.cfg.keep_ended;
        let mut map = self
            .inner
            .packagers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let before = map.len();
        map.retain(|_, p| p.finished_at().is_none_or(|t| t.elapsed() < keep));
        before - map.len()
    }

    /// Start a packager for every stream `engine` publishes from now on
    /// (and for those live already); prunes ended ones. Runs until
    /// [`HlsRegistry::shutdown`] or the engine shuts down.
    pub fn follow(&self, engine: &Engine) -> JoinHandle<()> {
        let mut events = engine.events().subscribe();
        for s in engine.list_streams() {
            if s.live {
                let _ = self.start(&s.path);
            }
        }
        let this = self.clone();
        let engine_stop = engine.shutdown_token();
        tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    _ = this.inner.shutdown.cancelled() => return,
                    _ = engine_stop.cancelled() => { this.shutdown(); return; }
                    ev = events.recv() => ev,
                };
                match ev {
                    Ok(EngineEvent::Published { path, .. }) => {
                        if let Err(e) = this.start(&path) {
                            tracing::warn!(stream = %path, error = %e, "hls: packager not started");
                        }
                        this.prune();
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }

    /// End every playlist (`EXT-X-ENDLIST`) and start no more packagers.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
        for p in self.read().values() {
            p.stop();
        }
    }
}
