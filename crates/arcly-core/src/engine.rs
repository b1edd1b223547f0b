//! The [`Engine`]: applications, streams, protocols and policies in one
//! `Send + Sync` object. Several engines may live in one process; nothing is
//! global.
//!
//! ```
//! use arcly_core::engine::{AppSpec, Engine};
//! let engine = Engine::builder()
//!     .max_publishers(1000)
//!     .application(AppSpec::new("live").gop_cache(120))
//!     .build();
//! assert_eq!(engine.list_apps().len(), 1);
//! ```

use crate::audit::{AuditEvent, AuditOutcome, AuditPipeline, AuditSink, NoopAuditSink};
use crate::auth::{AuthAction, AuthDecision, AuthRequest, PermitAll, StreamAuthenticator};
use crate::bus::{BusConfig, PublisherInfo, StreamHandle, StreamStats, Subscription};
use crate::error::{Result, StreamError};
use crate::events::{EngineEvent, EventBus};
use crate::health::{HealthCheck, HealthRegistry};
use crate::identity::{AppName, StreamPath};
use crate::inbound::{InboundProtocol, IngestContext};
use crate::observe::{NoopObserver, Observer};
use crate::publish::{PublishSession, SessionParts};
use crate::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
use crate::traits::{MediaSink, MediaSource};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often `publish` and `subscribe` look a stream up again when the idle
/// reaper removed the one they found. Once is enough in practice: the reaper
/// removes a stream under the map's write lock, so the next lookup finds a
/// new one; the bound only guards against a bug turning this into a loop.
const LOOKUP_ATTEMPTS: u32 = 8;

/// One application (the `live` in `rtmp://host/live/key`) and its policies.
#[derive(Debug, Clone)]
pub struct AppSpec {
    name: AppName,
    gop_cache_frames: usize,
    gop_cache_bytes: usize,
    channel_capacity: usize,
    publish_enabled: bool,
}

impl AppSpec {
    /// An application named `name` with the GOP cache off.
    ///
    /// # Panics
    /// If `name` is not a valid [`AppName`]; use [`AppSpec::try_new`] for
    /// names that come from configuration.
    pub fn new(name: &str) -> Self {
        match Self::try_new(name) {
            Ok(spec) => spec,
            Err(e) => panic!("AppSpec::new: {e}"),
        }
    }

    /// An application named `name`, or the reason the name is refused.
    pub fn try_new(name: &str) -> Result<Self> {
        Ok(Self {
            name: AppName::new(name)?,
            gop_cache_frames: 0,
            gop_cache_bytes: 32 << 20,
            channel_capacity: 512,
            publish_enabled: true,
        })
    }

    /// Keep up to `frames` frames of the current GOP for instant start.
    #[must_use]
    pub fn gop_cache(mut self, frames: usize) -> Self {
        self.gop_cache_frames = frames;
        self
    }

    /// Bound the GOP cache to `bytes` payload bytes.
    #[must_use]
    pub fn gop_cache_bytes(mut self, bytes: usize) -> Self {
        self.gop_cache_bytes = bytes;
        self
    }

    /// Frames buffered per stream before a slow subscriber lags.
    #[must_use]
    pub fn channel_capacity(mut self, frames: usize) -> Self {
        self.channel_capacity = frames.max(2);
        self
    }

    /// Allow or refuse publishing into this application (play-only apps
    /// are fed by relays or sources).
    #[must_use]
    pub fn publish_enabled(mut self, enabled: bool) -> Self {
        self.publish_enabled = enabled;
        self
    }

    /// The application's name.
    pub fn name(&self) -> &AppName {
        &self.name
    }

    /// The GOP cache bound in frames.
    pub fn gop_cache_frames(&self) -> usize {
        self.gop_cache_frames
    }
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    apps: Vec<AppSpec>,
    max_publishers: usize,
    max_subscribers_per_stream: usize,
    max_lag_events: u32,
    idle_timeout: Duration,
    observer: Arc<dyn Observer>,
    authenticator: Arc<dyn StreamAuthenticator>,
    audit: Arc<dyn AuditSink>,
    audit_capacity: usize,
    health: HealthRegistry,
    protocols: Vec<Arc<dyn InboundProtocol>>,
    shutdown_grace: Duration,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("apps", &self.apps)
            .field("max_publishers", &self.max_publishers)
            .finish_non_exhaustive()
    }
}

impl Default for EngineBuilder {
    fn default() -> Self {
        Self {
            apps: Vec::new(),
            max_publishers: usize::MAX,
            max_subscribers_per_stream: usize::MAX,
            max_lag_events: 8,
            idle_timeout: Duration::from_secs(30),
            observer: Arc::new(NoopObserver),
            authenticator: Arc::new(PermitAll),
            audit: Arc::new(NoopAuditSink),
            audit_capacity: 1024,
            health: HealthRegistry::new(),
            protocols: Vec::new(),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl EngineBuilder {
    /// Publishers allowed at once across all applications.
    #[must_use]
    pub fn max_publishers(mut self, n: usize) -> Self {
        self.max_publishers = n;
        self
    }

    /// Subscribers allowed at once on one stream.
    #[must_use]
    pub fn max_subscribers_per_stream(mut self, n: usize) -> Self {
        self.max_subscribers_per_stream = n;
        self
    }

    /// Lag events tolerated within 30 s before a subscriber is dropped.
    #[must_use]
    pub fn max_lag_events(mut self, n: u32) -> Self {
        self.max_lag_events = n;
        self
    }

    /// Add an application. A second one with the same name replaces the first.
    #[must_use]
    pub fn application(mut self, app: AppSpec) -> Self {
        self.apps.retain(|a| a.name != app.name);
        self.apps.push(app);
        self
    }

    /// Run `protocol` when the engine runs.
    #[must_use]
    pub fn protocol(mut self, protocol: Arc<dyn InboundProtocol>) -> Self {
        self.protocols.push(protocol);
        self
    }

    /// Report lifecycle and QoS events to `observer`.
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Decide publish and play requests with `auth`.
    #[must_use]
    pub fn authenticator(mut self, auth: Arc<dyn StreamAuthenticator>) -> Self {
        self.authenticator = auth;
        self
    }

    /// Send the audit trail to `sink` through a queue of `capacity` events.
    #[must_use]
    pub fn audit_sink(mut self, sink: Arc<dyn AuditSink>, capacity: usize) -> Self {
        self.audit = sink;
        self.audit_capacity = capacity;
        self
    }

    /// Add a readiness check.
    #[must_use]
    pub fn health_check(self, check: Arc<dyn HealthCheck>) -> Self {
        self.health.register(check);
        self
    }

    /// Remove a stream with neither publisher nor subscriber after `timeout`.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long [`Engine::run`] waits for protocols to finish after shutdown.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Build the engine. Needs no runtime; [`Engine::run`] does.
    pub fn build(self) -> Engine {
        let apps = self.apps.into_iter().map(|a| (a.name.clone(), a)).collect();
        Engine {
            inner: Arc::new(EngineInner {
                apps,
                streams: RwLock::new(HashMap::new()),
                publishers: Arc::new(AtomicUsize::new(0)),
                max_publishers: AtomicUsize::new(self.max_publishers),
                max_subscribers_per_stream: AtomicUsize::new(self.max_subscribers_per_stream),
                max_lag_events: self.max_lag_events,
                idle_timeout: self.idle_timeout,
                observer: self.observer,
                authenticator: self.authenticator,
                audit: Arc::new(AuditPipeline::new(self.audit, self.audit_capacity)),
                health: self.health,
                events: EventBus::default(),
                protocols: self.protocols,
                shutdown: CancellationToken::new(),
                shutdown_grace: self.shutdown_grace,
            }),
        }
    }
}

struct EngineInner {
    apps: BTreeMap<AppName, AppSpec>,
    streams: RwLock<HashMap<StreamPath, StreamHandle>>,
    publishers: Arc<AtomicUsize>,
    // Atomics so that a host can change them live (`set_limits`).
    max_publishers: AtomicUsize,
    max_subscribers_per_stream: AtomicUsize,
    max_lag_events: u32,
    idle_timeout: Duration,
    observer: Arc<dyn Observer>,
    authenticator: Arc<dyn StreamAuthenticator>,
    audit: Arc<AuditPipeline>,
    health: HealthRegistry,
    events: EventBus,
    protocols: Vec<Arc<dyn InboundProtocol>>,
    shutdown: CancellationToken,
    shutdown_grace: Duration,
}

/// The streaming kernel: applications, streams, protocols and policies.
/// Cheap to clone (shared); `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("apps", &self.list_apps())
            .field("streams", &self.stream_count())
            .finish()
    }
}

impl Engine {
    /// Start building an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// The configured applications, sorted by name.
    pub fn list_apps(&self) -> Vec<AppName> {
        self.inner.apps.keys().cloned().collect()
    }

    /// The configuration of one application.
    pub fn app(&self, name: &str) -> Option<&AppSpec> {
        self.inner.apps.get(name)
    }

    /// Counters of every stream, sorted by path.
    pub fn list_streams(&self) -> Vec<StreamStats> {
        let mut v: Vec<StreamStats> = self
            .read_streams()
            .values()
            .map(StreamHandle::stats)
            .collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    /// Counters of one stream.
    pub fn stream_stats(&self, path: &StreamPath) -> Option<StreamStats> {
        self.read_streams().get(path).map(StreamHandle::stats)
    }

    /// Streams that exist now (live or with waiting subscribers).
    pub fn stream_count(&self) -> usize {
        self.read_streams().len()
    }

    /// Publishers attached now.
    pub fn publisher_count(&self) -> usize {
        self.inner.publishers.load(Ordering::Relaxed)
    }

    /// Lifecycle and QoS events.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// The readiness checks.
    pub fn health(&self) -> &HealthRegistry {
        &self.inner.health
    }

    /// Change the bounds set by [`EngineBuilder::max_publishers`] and
    /// [`EngineBuilder::max_subscribers_per_stream`] while running (a
    /// configuration reload). Publishers and subscribers already in are
    /// kept; the publisher bound applies to the next publish, the
    /// subscriber bound to streams created from now on.
    pub fn set_limits(&self, max_publishers: usize, max_subscribers_per_stream: usize) {
        self.inner
            .max_publishers
            .store(max_publishers, Ordering::Relaxed);
        self.inner
            .max_subscribers_per_stream
            .store(max_subscribers_per_stream, Ordering::Relaxed);
    }

    /// The audit queue (for its drop counters).
    pub fn audit(&self) -> &AuditPipeline {
        &self.inner.audit
    }

    /// The observer given to the builder.
    pub fn observer(&self) -> &Arc<dyn Observer> {
        &self.inner.observer
    }

    /// Cancelled when the engine shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Ask the engine to shut down; [`run`](Engine::run) returns once the
    /// protocols have finished (or the grace period ran out).
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// The context protocols are started with.
    pub fn ingest_context(&self) -> IngestContext {
        IngestContext {
            registry: Arc::new(self.clone()),
            observer: Arc::clone(&self.inner.observer),
            shutdown: self.inner.shutdown.clone(),
        }
    }

    /// Run the registered protocols and the idle reaper until
    /// [`shutdown`](Engine::shutdown); then close every stream.
    pub async fn run(&self) -> Result<()> {
        let ctx = self.ingest_context();
        let mut tasks = tokio::task::JoinSet::new();
        for p in &self.inner.protocols {
            let p = Arc::clone(p);
            let ctx = ctx.clone();
            tasks.spawn(async move {
                let name = p.name();
                if let Err(e) = p.serve(ctx).await {
                    tracing::error!(protocol = name, error = %e, "protocol stopped with an error");
                }
            });
        }
        let reaper = self.spawn_reaper();
        self.inner.shutdown.cancelled().await;
        let grace = self.inner.shutdown_grace;
        if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            tracing::warn!(?grace, "protocols did not stop within the grace period");
            tasks.abort_all();
        }
        reaper.abort();
        self.close_all();
        Ok(())
    }

    fn spawn_reaper(&self) -> JoinHandle<()> {
        let engine = self.clone();
        let every =
            (self.inner.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = engine.inner.shutdown.cancelled() => return,
                    _ = tick.tick() => { engine.reap_idle(); }
                }
            }
        })
    }

    /// Remove streams idle for longer than the idle timeout; returns how many.
    /// The run loop calls this periodically.
    pub fn reap_idle(&self) -> usize {
        let timeout = self.inner.idle_timeout;
        let mut removed = Vec::new();
        {
            let mut streams = self
                .inner
                .streams
                .write()
                .unwrap_or_else(|e| e.into_inner());
            streams.retain(|_, s| {
                // The write lock keeps new lookups out; `try_reap` keeps out
                // those that found the stream before it was taken.
                let idle = s.idle_for() >= timeout
                    && !s.is_live()
                    && s.subscriber_count() == 0
                    && s.try_reap();
                if idle {
                    removed.push(s.clone());
                }
                !idle
            });
        }
        for s in &removed {
            s.close();
            self.inner.events.emit(EngineEvent::StreamRemoved {
                path: s.path().clone(),
            });
            tracing::debug!(stream = %s.path(), "idle stream removed");
        }
        removed.len()
    }

    fn close_all(&self) {
        let all: Vec<StreamHandle> = {
            let mut streams = self
                .inner
                .streams
                .write()
                .unwrap_or_else(|e| e.into_inner());
            streams.drain().map(|(_, s)| s).collect()
        };
        for s in all {
            s.close();
        }
    }

    fn read_streams(&self) -> std::sync::RwLockReadGuard<'_, HashMap<StreamPath, StreamHandle>> {
        self.inner.streams.read().unwrap_or_else(|e| e.into_inner())
    }

    fn app_spec(&self, app: &AppName) -> Result<&AppSpec> {
        self.inner
            .apps
            .get(app)
            .ok_or_else(|| StreamError::UnknownApp(app.to_string()))
    }

    fn get_or_create(&self, path: &StreamPath, spec: &AppSpec) -> StreamHandle {
        if let Some(s) = self.read_streams().get(path) {
            return s.clone();
        }
        let mut streams = self
            .inner
            .streams
            .write()
            .unwrap_or_else(|e| e.into_inner());
        streams
            .entry(path.clone())
            .or_insert_with(|| {
                let cfg = BusConfig {
                    gop_cache_frames: spec.gop_cache_frames,
                    gop_cache_bytes: spec.gop_cache_bytes,
                    channel_capacity: spec.channel_capacity,
                    max_subscribers: self
                        .inner
                        .max_subscribers_per_stream
                        .load(Ordering::Relaxed),
                    max_lag_events: self.inner.max_lag_events,
                    ..BusConfig::default()
                };
                StreamHandle::new(
                    path.clone(),
                    cfg,
                    Arc::clone(&self.inner.observer),
                    self.inner.events.clone(),
                )
            })
            .clone()
    }

    async fn authorize(
        &self,
        action: AuthAction,
        path: &StreamPath,
        query: Option<String>,
        peer: Option<SocketAddr>,
        protocol: &'static str,
    ) -> Result<()> {
        let req = AuthRequest {
            action,
            app: path.app.clone(),
            stream: path.stream.clone(),
            query,
            peer,
            protocol,
        };
        match self.inner.authenticator.authorize(&req).await {
            AuthDecision::Allow => Ok(()),
            AuthDecision::Deny(reason) => {
                self.inner.observer.auth_denied(&path.app, action, &reason);
                self.inner.audit.submit(AuditEvent::now(
                    action,
                    path.clone(),
                    peer,
                    protocol,
                    AuditOutcome::Denied(reason.clone()),
                ));
                tracing::info!(stream = %path, action = action.as_str(), %reason, "denied");
                Err(StreamError::Unauthorized { reason })
            }
        }
    }

    /// Pull `source` into a new publish of `path` until it ends or the engine
    /// shuts down. The returned task yields the source's outcome.
    pub fn pump_source(
        &self,
        path: StreamPath,
        mut source: Box<dyn MediaSource>,
    ) -> JoinHandle<Result<()>> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut session = engine.publish(PublishRequest::new(path, "source")).await?;
            let shutdown = engine.shutdown_token();
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    f = source.next_frame() => f?,
                };
                match next {
                    Some(frame) => session.push(frame),
                    None => break,
                }
            }
            session.close();
            Ok(())
        })
    }

    /// Feed `path` into `sink` until the stream closes or the engine shuts
    /// down. The subscription waits for a publisher if there is none yet.
    pub fn attach_sink(
        &self,
        path: StreamPath,
        mut sink: Box<dyn MediaSink>,
    ) -> JoinHandle<Result<()>> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut req = PlayRequest::new(path.clone(), "sink");
            req.wait_for_publisher = true;
            let mut sub = engine.subscribe(req).await?;
            sink.on_start(&path).await?;
            let shutdown = engine.shutdown_token();
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    f = sub.recv() => f,
                };
                match next {
                    Ok(frame) => sink.on_frame(frame).await?,
                    Err(StreamError::StreamClosed) => break,
                    Err(e) => {
                        sink.on_error(&e).await;
                        return Err(e);
                    }
                }
            }
            sink.on_end().await
        })
    }
}

#[async_trait]
impl PublishRegistry for Engine {
    async fn publish(&self, req: PublishRequest) -> Result<PublishSession> {
        if self.inner.shutdown.is_cancelled() {
            return Err(StreamError::ShuttingDown);
        }
        let spec = self.app_spec(&req.path.app)?.clone();
        if !spec.publish_enabled {
            return Err(StreamError::Unauthorized {
                reason: "publishing is disabled for this application".into(),
            });
        }
        self.authorize(
            AuthAction::Publish,
            &req.path,
            req.query.clone(),
            req.peer,
            req.protocol,
        )
        .await?;
        let n = self.inner.publishers.fetch_add(1, Ordering::AcqRel);
        let limit = self.inner.max_publishers.load(Ordering::Relaxed);
        if n >= limit {
            self.inner.publishers.fetch_sub(1, Ordering::AcqRel);
            return Err(StreamError::TooManyPublishers { limit });
        }
        let info = PublisherInfo {
            protocol: req.protocol,
            peer: req.peer,
            since: SystemTime::now(),
        };
        let mut attempts = 0;
        let (stream, state) = loop {
            let stream = self.get_or_create(&req.path, &spec);
            match stream.attach_publisher(info.clone()) {
                Ok(state) => break (stream, state),
                // The reaper took this stream after we found it: look again
                // (its write lock is released by then; we find a new stream).
                Err(StreamError::StreamClosed)
                    if attempts < LOOKUP_ATTEMPTS && !self.inner.shutdown.is_cancelled() =>
                {
                    attempts += 1;
                }
                Err(e) => {
                    self.inner.publishers.fetch_sub(1, Ordering::AcqRel);
                    return Err(e);
                }
            }
        };
        self.inner.observer.publish_started(&req.path, req.protocol);
        self.inner.events.emit(EngineEvent::Published {
            path: req.path.clone(),
            protocol: req.protocol,
            peer: req.peer,
        });
        self.inner.audit.submit(AuditEvent::now(
            AuthAction::Publish,
            req.path.clone(),
            req.peer,
            req.protocol,
            AuditOutcome::Started,
        ));
        tracing::info!(stream = %req.path, protocol = req.protocol, peer = ?req.peer, "published");
        Ok(PublishSession::new(SessionParts {
            stream,
            state,
            protocol: req.protocol,
            peer: req.peer,
            publishers: Arc::clone(&self.inner.publishers),
            audit: Arc::clone(&self.inner.audit),
        }))
    }
}

#[async_trait]
impl PlaybackRegistry for Engine {
    async fn subscribe(&self, req: PlayRequest) -> Result<Subscription> {
        if self.inner.shutdown.is_cancelled() {
            return Err(StreamError::ShuttingDown);
        }
        let spec = self.app_spec(&req.path.app)?.clone();
        self.authorize(
            AuthAction::Play,
            &req.path,
            req.query.clone(),
            req.peer,
            req.protocol,
        )
        .await?;
        let mut attempts = 0;
        let sub = loop {
            let stream = if req.wait_for_publisher {
                self.get_or_create(&req.path, &spec)
            } else {
                match self.read_streams().get(&req.path) {
                    Some(s) if s.is_live() => s.clone(),
                    _ => {
                        return Err(StreamError::StreamNotFound {
                            app: req.path.app.to_string(),
                            stream: req.path.stream.to_string(),
                        })
                    }
                }
            };
            match stream.subscribe(req.protocol) {
                Ok(mut sub) => {
                    // The start is audited below; the subscription audits its end.
                    sub.audit_end(Arc::clone(&self.inner.audit), req.peer);
                    break sub;
                }
                // Reaped after we found it: look again (see `publish`).
                Err(StreamError::StreamClosed)
                    if attempts < LOOKUP_ATTEMPTS && !self.inner.shutdown.is_cancelled() =>
                {
                    attempts += 1;
                }
                Err(e) => return Err(e),
            }
        };
        self.inner.audit.submit(AuditEvent::now(
            AuthAction::Play,
            req.path.clone(),
            req.peer,
            req.protocol,
            AuditOutcome::Started,
        ));
        Ok(sub)
    }

    fn stream(&self, path: &StreamPath) -> Option<StreamHandle> {
        self.read_streams().get(path).cloned()
    }

    fn list_streams(&self) -> Vec<StreamStats> {
        Engine::list_streams(self)
    }

    fn has_app(&self, app: &str) -> bool {
        self.inner.apps.contains_key(app)
    }
}
