//! [`PrometheusObserver`]: the kernel's [`Observer`] recorded into a
//! prometheus-client [`Registry`] the host owns.

use crate::labels::{SeriesLabels, StreamLabel};
use arcly_core::auth::AuthAction;
use arcly_core::observe::{DropReason, Observer, StreamProbe};
use arcly_core::{AppName, MediaFrame, StreamPath};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The prefix of every metric this crate registers.
pub const PREFIX: &str = "arcly";

/// Which labels stream-scoped series carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StreamLabels {
    /// Series are labelled by application (`app`) only: cardinality is the
    /// number of configured applications. The default.
    #[default]
    PerApp,
    /// Series are labelled by application and stream (`app`, `stream`) for
    /// up to `max_streams` streams at once; streams past the limit share the
    /// series `stream="_other"` of their application. A stream's series are
    /// removed when the kernel removes the stream.
    PerStream {
        /// Streams that get series of their own at once.
        max_streams: usize,
    },
}

/// How a [`PrometheusObserver`] labels and buckets what it records.
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    stream_labels: StreamLabels,
    handshake_buckets: Vec<f64>,
    first_frame_buckets: Vec<f64>,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        Self {
            stream_labels: StreamLabels::PerApp,
            // 1 ms .. ~8 s.
            handshake_buckets: exponential_buckets(0.001, 2.0, 14).collect(),
            // 5 ms .. ~10 s.
            first_frame_buckets: exponential_buckets(0.005, 2.0, 12).collect(),
        }
    }
}

impl MetricsOptions {
    /// Per-application labels and the default buckets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Label stream-scoped series by stream too, for at most `max_streams`
    /// streams at once (see [`StreamLabels::PerStream`]).
    #[must_use]
    pub fn per_stream(mut self, max_streams: usize) -> Self {
        self.stream_labels = StreamLabels::PerStream { max_streams };
        self
    }

    /// Choose the stream labelling explicitly.
    #[must_use]
    pub fn stream_labels(mut self, labels: StreamLabels) -> Self {
        self.stream_labels = labels;
        self
    }

    /// Upper bounds (seconds) of the `arcly_handshake_duration_seconds`
    /// buckets; non-finite values are ignored.
    #[must_use]
    pub fn handshake_buckets(mut self, bounds: impl IntoIterator<Item = f64>) -> Self {
        self.handshake_buckets = clean_buckets(bounds);
        self
    }

    /// Upper bounds (seconds) of the `arcly_time_to_first_frame_seconds`
    /// buckets; non-finite values are ignored.
    #[must_use]
    pub fn first_frame_buckets(mut self, bounds: impl IntoIterator<Item = f64>) -> Self {
        self.first_frame_buckets = clean_buckets(bounds);
        self
    }
}

fn clean_buckets(bounds: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = bounds.into_iter().filter(|b| b.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v.dedup();
    v
}

#[derive(Clone)]
struct Buckets(Arc<[f64]>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

type CounterFamily = Family<SeriesLabels, Counter>;
type GaugeFamily = Family<SeriesLabels, Gauge>;
type HistogramFamily = Family<SeriesLabels, Histogram, Buckets>;

struct Metrics {
    streams_active: GaugeFamily,
    publishers: GaugeFamily,
    publishes: CounterFamily,
    subscribers: GaugeFamily,
    plays: CounterFamily,
    frames_out: CounterFamily,
    bytes_out: CounterFamily,
    gop_frames: GaugeFamily,
    gop_bytes: GaugeFamily,
    qos_skipped: CounterFamily,
    dropped: CounterFamily,
    auth_denials: CounterFamily,
    ingest_errors: CounterFamily,
    connections: GaugeFamily,
    connections_accepted: CounterFamily,
    handshake: HistogramFamily,
    first_frame: HistogramFamily,
    http_requests: CounterFamily,
    blocking_requests: HistogramFamily,
}

impl Metrics {
    fn new(opts: &MetricsOptions) -> Self {
        Self {
            streams_active: GaugeFamily::default(),
            publishers: GaugeFamily::default(),
            publishes: CounterFamily::default(),
            subscribers: GaugeFamily::default(),
            plays: CounterFamily::default(),
            frames_out: CounterFamily::default(),
            bytes_out: CounterFamily::default(),
            gop_frames: GaugeFamily::default(),
            gop_bytes: GaugeFamily::default(),
            qos_skipped: CounterFamily::default(),
            dropped: CounterFamily::default(),
            auth_denials: CounterFamily::default(),
            ingest_errors: CounterFamily::default(),
            connections: GaugeFamily::default(),
            connections_accepted: CounterFamily::default(),
            handshake: HistogramFamily::new_with_constructor(Buckets(
                opts.handshake_buckets.clone().into(),
            )),
            http_requests: CounterFamily::default(),
            // A blocking reload waits up to about three target durations.
            blocking_requests: HistogramFamily::new_with_constructor(Buckets(
                exponential_buckets(0.005, 2.0, 13)
                    .collect::<Vec<_>>()
                    .into(),
            )),
            first_frame: HistogramFamily::new_with_constructor(Buckets(
                opts.first_frame_buckets.clone().into(),
            )),
        }
    }

    fn register(&self, r: &mut Registry) {
        // Names follow https://prometheus.io/docs/practices/naming/: the
        // encoder appends the unit and, for counters, `_total`.
        r.register(
            "streams_active",
            "Streams that exist in the kernel (live or with waiting players)",
            self.streams_active.clone(),
        );
        r.register(
            "publishers",
            "Publishers attached now",
            self.publishers.clone(),
        );
        r.register(
            "publishes",
            "Publish sessions started",
            self.publishes.clone(),
        );
        r.register(
            "subscribers",
            "Subscribers (players, relays, sinks) attached now",
            self.subscribers.clone(),
        );
        r.register("plays", "Subscriptions started", self.plays.clone());
        r.register(
            "frames_out",
            "Frames delivered to subscribers (reported in batches)",
            self.frames_out.clone(),
        );
        r.register_with_unit(
            "payload_out",
            "Frame payload delivered to subscribers (reported in batches)",
            Unit::Bytes,
            self.bytes_out.clone(),
        );
        r.register(
            "gop_cache_frames",
            "Frames held in GOP caches for instant start",
            self.gop_frames.clone(),
        );
        r.register_with_unit(
            "gop_cache",
            "Payload held in GOP caches for instant start",
            Unit::Bytes,
            self.gop_bytes.clone(),
        );
        r.register(
            "qos_skipped_frames",
            "Frames lagging subscribers skipped to catch up with the live edge",
            self.qos_skipped.clone(),
        );
        r.register(
            "subscribers_dropped",
            "Subscribers disconnected by the kernel",
            self.dropped.clone(),
        );
        r.register(
            "auth_denials",
            "Publish and play requests the authenticator refused",
            self.auth_denials.clone(),
        );
        r.register(
            "ingest_errors",
            "Connections refused or ended by an error",
            self.ingest_errors.clone(),
        );
        r.register(
            "connections",
            "Protocol connections open now",
            self.connections.clone(),
        );
        r.register(
            "connections_accepted",
            "Protocol connections accepted",
            self.connections_accepted.clone(),
        );
        // Histograms carry the unit in the name but no `# UNIT` line: the
        // OpenMetrics spec allows one, yet some strict consumers (the
        // openmetrics-parser crate) refuse units on histograms.
        r.register(
            "handshake_duration_seconds",
            "Time taken by protocol handshakes",
            self.handshake.clone(),
        );
        r.register(
            "http_requests",
            "HTTP requests of media protocols answered, by kind",
            self.http_requests.clone(),
        );
        r.register(
            "blocking_request_duration_seconds",
            "Time taken to answer requests that wait for media (LL-HLS blocking reloads, parts)",
            self.blocking_requests.clone(),
        );
        r.register(
            "time_to_first_frame_seconds",
            "Time from a play request to its first picture or sound frame",
            self.first_frame.clone(),
        );
    }
}

/// A stream with series of its own (per-stream labelling only).
struct StreamEntry {
    /// Stream objects alive for this path (a removed stream's `close` can run
    /// after its successor was created).
    refs: usize,
    scope: SeriesLabels,
    /// Protocols whose per-stream series exist, to remove them with it.
    protocols: Vec<&'static str>,
}

struct Inner {
    opts: MetricsOptions,
    m: Metrics,
    /// Frames and bytes in, kept per probe and summed at scrape time.
    ingest: Arc<IngestTable>,
    /// Per-stream labelling only; lifecycle events, never the frame path.
    streams: Mutex<StreamTable>,
}

#[derive(Default)]
struct StreamTable {
    entries: HashMap<StreamPath, StreamEntry>,
    /// Entries labelled with their own name (not `_other`).
    named: usize,
}

/// An [`Observer`] that records into a prometheus-client [`Registry`].
///
/// Create it with the registry the host exposes (never a global one), give
/// it to `EngineBuilder::observer`, and serve the registry with
/// [`MetricsService`](crate::MetricsService). Cheap to clone: clones share
/// the same series, so one observer may serve several engines whose figures
/// should add up; engines that need separate figures get separate registries.
///
/// Per-frame work goes through the [`StreamProbe`] it hands out per stream:
/// two relaxed loads and stores on the stream's own cache line per frame in
/// (summed at scrape time), and two atomic adds per batch of deliveries out
/// (after a lock-free lookup of the protocol's counters).
#[derive(Clone)]
pub struct PrometheusObserver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PrometheusObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusObserver")
            .field("stream_labels", &self.inner.opts.stream_labels)
            .finish_non_exhaustive()
    }
}

impl PrometheusObserver {
    /// An observer with per-application labels, registered under `arcly_`
    /// in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        Self::with_options(registry, MetricsOptions::default())
    }

    /// An observer configured by `opts`, registered under `arcly_` in
    /// `registry`.
    ///
    /// Register at most one observer per registry: a second would expose
    /// every `arcly_*` family twice, which OpenMetrics forbids. Engines
    /// whose figures should add up share one observer (it is `Clone`);
    /// engines that need separate figures get separate registries.
    pub fn with_options(registry: &mut Registry, opts: MetricsOptions) -> Self {
        let m = Metrics::new(&opts);
        let ingest = Arc::new(IngestTable::default());
        let sub = registry.sub_registry_with_prefix(PREFIX);
        m.register(sub);
        sub.register_collector(Box::new(Arc::clone(&ingest)));
        Self {
            inner: Arc::new(Inner {
                opts,
                m,
                ingest,
                streams: Mutex::new(StreamTable::default()),
            }),
        }
    }

    /// The labelling in force.
    pub fn stream_labels(&self) -> StreamLabels {
        self.inner.opts.stream_labels
    }
}

fn app_scope(app: &AppName) -> SeriesLabels {
    SeriesLabels {
        app: Some(app.clone()),
        ..SeriesLabels::default()
    }
}

fn drop_reason(reason: &DropReason) -> &'static str {
    match reason {
        DropReason::TooSlow => "too_slow",
        DropReason::StreamClosed => "stream_closed",
        _ => "other",
    }
}

impl Inner {
    fn per_stream(&self) -> Option<usize> {
        match self.opts.stream_labels {
            StreamLabels::PerApp => None,
            StreamLabels::PerStream { max_streams } => Some(max_streams),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, StreamTable> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The scope of a new stream object, taking a reference on its entry.
    fn acquire_scope(&self, path: &StreamPath) -> SeriesLabels {
        let Some(max) = self.per_stream() else {
            return app_scope(&path.app);
        };
        let mut t = self.table();
        if let Some(e) = t.entries.get_mut(path) {
            e.refs += 1;
            return e.scope.clone();
        }
        let named = t.named < max;
        let scope = SeriesLabels {
            app: Some(path.app.clone()),
            stream: Some(if named {
                StreamLabel::Name(path.stream.clone())
            } else {
                StreamLabel::Other
            }),
            ..SeriesLabels::default()
        };
        if named {
            t.named += 1;
        }
        t.entries.insert(
            path.clone(),
            StreamEntry {
                refs: 1,
                scope: scope.clone(),
                protocols: Vec::new(),
            },
        );
        scope
    }

    /// Drop a reference; the last one removes the stream's own series.
    fn release_scope(&self, path: &StreamPath) {
        if self.per_stream().is_none() {
            return;
        }
        let entry = {
            let mut t = self.table();
            let Some(e) = t.entries.get_mut(path) else {
                return;
            };
            e.refs = e.refs.saturating_sub(1);
            if e.refs > 0 {
                return;
            }
            let Some(e) = t.entries.remove(path) else {
                return;
            };
            if matches!(e.scope.stream, Some(StreamLabel::Name(_))) {
                t.named = t.named.saturating_sub(1);
            }
            e
        };
        if !matches!(entry.scope.stream, Some(StreamLabel::Name(_))) {
            // `_other` is shared by every stream past the limit: it stays.
            return;
        }
        let m = &self.m;
        let s = &entry.scope;
        self.ingest.forget(s);
        m.gop_frames.remove(s);
        m.gop_bytes.remove(s);
        m.qos_skipped.remove(s);
        for p in entry.protocols {
            let sp = s.clone().with_protocol(p);
            m.frames_out.remove(&sp);
            m.bytes_out.remove(&sp);
            m.subscribers.remove(&sp);
        }
    }

    /// The scope of an existing stream, noting that `protocol` has series
    /// under it. `None` when the stream's series were already removed.
    fn scope_with_protocol(
        &self,
        path: &StreamPath,
        protocol: &'static str,
    ) -> Option<SeriesLabels> {
        if self.per_stream().is_none() {
            return Some(app_scope(&path.app));
        }
        let mut t = self.table();
        let e = t.entries.get_mut(path)?;
        if !e.protocols.contains(&protocol) {
            e.protocols.push(protocol);
        }
        Some(e.scope.clone())
    }
}

/// Delivery counters of one protocol, cached by a probe.
#[derive(Clone)]
struct Egress {
    protocol: &'static str,
    frames: Counter,
    bytes: Counter,
}

/// The per-stream probe: metric handles resolved once at stream creation.
struct Probe {
    inner: Arc<Inner>,
    path: StreamPath,
    /// This probe's frames/bytes in, and its key in the ingest table.
    ingest: Arc<IngestCounters>,
    ingest_id: u64,
    qos_skipped: Counter,
    gop_frames: Gauge,
    gop_bytes: Gauge,
    /// The last GOP size this stream reported, so a shared per-app gauge can
    /// be moved by the difference.
    last_gop_frames: AtomicI64,
    last_gop_bytes: AtomicI64,
    /// Delivery counters of the first protocols seen, filled in order and
    /// never replaced: the frame path reads them with one acquire load each.
    egress: [OnceLock<Egress>; EGRESS_SLOTS],
}

/// Protocols a probe caches delivery counters for; more still count, through
/// the slower family lookup.
const EGRESS_SLOTS: usize = 8;

fn same_protocol(a: &'static str, b: &'static str) -> bool {
    std::ptr::eq(a, b) || a == b
}

impl Probe {
    #[cold]
    #[inline(never)]
    fn frames_out_slow(&self, protocol: &'static str, frames: u64, bytes: u64) {
        let Some(scope) = self.inner.scope_with_protocol(&self.path, protocol) else {
            return;
        };
        let labels = scope.with_protocol(protocol);
        let e = Egress {
            protocol,
            frames: self.inner.m.frames_out.get_or_create_owned(&labels),
            bytes: self.inner.m.bytes_out.get_or_create_owned(&labels),
        };
        e.frames.inc_by(frames);
        e.bytes.inc_by(bytes);
        for slot in &self.egress {
            let cached = match slot.get() {
                Some(x) => x,
                None => match slot.set(e.clone()) {
                    Ok(()) => return,
                    // Another thread filled it first: look at what it put.
                    Err(_) => match slot.get() {
                        Some(x) => x,
                        None => return,
                    },
                },
            };
            if same_protocol(cached.protocol, protocol) {
                return;
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.inner.ingest.detach(self.ingest_id);
    }
}

/// One stream's frames and bytes in, on a cache line of its own.
///
/// Written by one thread at a time: the kernel calls
/// [`StreamProbe::frame_in`] only from the stream's publish path, which holds
/// the publisher's `&mut` state (arcly-core `bus.rs`, `StreamHandle::publish`),
/// and hands the stream from one publisher to the next through an
/// acquire/release pair. So a relaxed load and store replace a locked
/// read-modify-write; readers (scrapes) see a value at most one frame old.
#[derive(Debug, Default)]
#[repr(align(64))]
struct IngestCounters {
    frames: AtomicU64,
    bytes: AtomicU64,
}

impl IngestCounters {
    #[inline]
    fn add(&self, bytes: u64) {
        let f = self.frames.load(Ordering::Relaxed);
        self.frames.store(f.wrapping_add(1), Ordering::Relaxed);
        let b = self.bytes.load(Ordering::Relaxed);
        self.bytes.store(b.wrapping_add(bytes), Ordering::Relaxed);
    }

    fn get(&self) -> (u64, u64) {
        (
            self.frames.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

#[derive(Debug, Default)]
struct IngestState {
    next_id: u64,
    live: HashMap<u64, (SeriesLabels, Arc<IngestCounters>)>,
    /// Totals of probes that went away, per series, so counters never drop.
    retired: HashMap<SeriesLabels, (u64, u64)>,
}

/// `arcly_frames_in_total` and `arcly_payload_in_bytes_total`, summed over
/// live and retired probes at scrape time.
#[derive(Debug, Default)]
struct IngestTable {
    state: Mutex<IngestState>,
}

impl IngestTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, IngestState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn attach(&self, scope: &SeriesLabels) -> (u64, Arc<IngestCounters>) {
        let counters = Arc::new(IngestCounters::default());
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.live.insert(id, (scope.clone(), Arc::clone(&counters)));
        st.retired.entry(scope.clone()).or_default();
        (id, counters)
    }

    /// A probe went away: keep its totals under its series (if that series
    /// still exists).
    fn detach(&self, id: u64) {
        let mut st = self.lock();
        if let Some((scope, c)) = st.live.remove(&id) {
            let (f, b) = c.get();
            if let Some(t) = st.retired.get_mut(&scope) {
                t.0 = t.0.wrapping_add(f);
                t.1 = t.1.wrapping_add(b);
            }
        }
    }

    /// Remove a series (its stream ended): live probes under it stop being
    /// exported.
    fn forget(&self, scope: &SeriesLabels) {
        let mut st = self.lock();
        st.live.retain(|_, (s, _)| s != scope);
        st.retired.remove(scope);
    }

    fn totals(&self) -> Vec<(SeriesLabels, u64, u64)> {
        let st = self.lock();
        let mut sums: HashMap<&SeriesLabels, (u64, u64)> =
            st.retired.iter().map(|(k, v)| (k, *v)).collect();
        for (scope, c) in st.live.values() {
            let (f, b) = c.get();
            let t = sums.entry(scope).or_default();
            t.0 = t.0.wrapping_add(f);
            t.1 = t.1.wrapping_add(b);
        }
        sums.into_iter()
            .map(|(k, (f, b))| (k.clone(), f, b))
            .collect()
    }
}

impl Collector for IngestTable {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let totals = self.totals();
        if totals.is_empty() {
            // Like a `Family` with no series: no descriptor either.
            return Ok(());
        }
        let mut frames = encoder.encode_descriptor(
            "frames_in",
            "Frames received from publishers.",
            None,
            MetricType::Counter,
        )?;
        for (labels, f, _) in &totals {
            ConstCounter::new(*f).encode(frames.encode_family(labels)?)?;
        }
        let unit = Unit::Bytes;
        let mut bytes = encoder.encode_descriptor(
            "payload_in",
            "Frame payload received from publishers.",
            Some(&unit),
            MetricType::Counter,
        )?;
        for (labels, _, b) in &totals {
            ConstCounter::new(*b).encode(bytes.encode_family(labels)?)?;
        }
        Ok(())
    }
}

fn to_i64(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl StreamProbe for Probe {
    #[inline]
    fn frame_in(&self, frame: &MediaFrame) {
        self.ingest.add(frame.payload.len() as u64);
    }

    #[inline]
    fn frames_out(&self, protocol: &'static str, frames: u64, bytes: u64) {
        for slot in &self.egress {
            match slot.get() {
                Some(e) if same_protocol(e.protocol, protocol) => {
                    e.frames.inc_by(frames);
                    e.bytes.inc_by(bytes);
                    return;
                }
                Some(_) => {}
                None => break,
            }
        }
        self.frames_out_slow(protocol, frames, bytes);
    }

    #[inline]
    fn qos_skip(&self, frames: u64) {
        self.qos_skipped.inc_by(frames);
    }

    fn gop_cache(&self, frames: usize, bytes: usize) {
        // Only the publishing session reports, so swap-and-diff is exact.
        let (f, b) = (to_i64(frames), to_i64(bytes));
        let df = f - self.last_gop_frames.swap(f, Ordering::Relaxed);
        let db = b - self.last_gop_bytes.swap(b, Ordering::Relaxed);
        if df != 0 {
            self.gop_frames.inc_by(df);
        }
        if db != 0 {
            self.gop_bytes.inc_by(db);
        }
    }
}

impl Observer for PrometheusObserver {
    fn stream_created(&self, path: &StreamPath) -> Arc<dyn StreamProbe> {
        let inner = &self.inner;
        let m = &inner.m;
        m.streams_active.get_or_create(&app_scope(&path.app)).inc();
        let scope = inner.acquire_scope(path);
        let (ingest_id, ingest) = inner.ingest.attach(&scope);
        Arc::new(Probe {
            inner: Arc::clone(inner),
            path: path.clone(),
            ingest_id,
            ingest,
            qos_skipped: m.qos_skipped.get_or_create_owned(&scope),
            gop_frames: m.gop_frames.get_or_create_owned(&scope),
            gop_bytes: m.gop_bytes.get_or_create_owned(&scope),
            last_gop_frames: AtomicI64::new(0),
            last_gop_bytes: AtomicI64::new(0),
            egress: Default::default(),
        })
    }

    fn stream_removed(&self, path: &StreamPath) {
        self.inner
            .m
            .streams_active
            .get_or_create(&app_scope(&path.app))
            .dec();
        self.inner.release_scope(path);
    }

    fn publish_started(&self, path: &StreamPath, protocol: &'static str) {
        let l = app_scope(&path.app).with_protocol(protocol);
        self.inner.m.publishers.get_or_create(&l).inc();
        self.inner.m.publishes.get_or_create(&l).inc();
    }

    fn publish_ended(&self, path: &StreamPath, protocol: &'static str) {
        let l = app_scope(&path.app).with_protocol(protocol);
        self.inner.m.publishers.get_or_create(&l).dec();
    }

    fn subscriber_joined(&self, path: &StreamPath, protocol: &'static str) {
        let m = &self.inner.m;
        m.plays
            .get_or_create(&app_scope(&path.app).with_protocol(protocol))
            .inc();
        if let Some(scope) = self.inner.scope_with_protocol(path, protocol) {
            m.subscribers
                .get_or_create(&scope.with_protocol(protocol))
                .inc();
        }
    }

    fn subscriber_left(&self, path: &StreamPath, protocol: &'static str) {
        // A stream removed under its subscribers took its series with it:
        // do not bring a series back just to decrement it.
        if let Some(scope) = self.inner.scope_with_protocol(path, protocol) {
            self.inner
                .m
                .subscribers
                .get_or_create(&scope.with_protocol(protocol))
                .dec();
        }
    }

    fn subscriber_dropped(&self, path: &StreamPath, protocol: &'static str, reason: &DropReason) {
        let l = app_scope(&path.app)
            .with_protocol(protocol)
            .with_extra("reason", drop_reason(reason));
        self.inner.m.dropped.get_or_create(&l).inc();
    }

    fn auth_denied(&self, app: &AppName, action: AuthAction, _reason: &str) {
        // The reason is free text (unbounded cardinality): logged by the
        // engine and kept in the audit trail, not a label.
        let l = app_scope(app).with_extra("action", action.as_str());
        self.inner.m.auth_denials.get_or_create(&l).inc();
    }

    fn connection_opened(&self, protocol: &'static str) {
        let l = SeriesLabels::protocol(protocol);
        self.inner.m.connections.get_or_create(&l).inc();
        self.inner.m.connections_accepted.get_or_create(&l).inc();
    }

    fn connection_closed(&self, protocol: &'static str) {
        let l = SeriesLabels::protocol(protocol);
        self.inner.m.connections.get_or_create(&l).dec();
    }

    fn ingest_error(&self, protocol: &'static str, reason: &'static str) {
        let l = SeriesLabels::protocol(protocol).with_extra("reason", reason);
        self.inner.m.ingest_errors.get_or_create(&l).inc();
    }

    fn handshake(&self, protocol: &'static str, took: Duration) {
        let l = SeriesLabels::protocol(protocol);
        self.inner
            .m
            .handshake
            .get_or_create(&l)
            .observe(took.as_secs_f64());
    }

    fn http_request(
        &self,
        protocol: &'static str,
        kind: &'static str,
        blocking: bool,
        took: Duration,
    ) {
        let l = SeriesLabels::protocol(protocol).with_extra("kind", kind);
        self.inner.m.http_requests.get_or_create(&l).inc();
        if blocking {
            self.inner
                .m
                .blocking_requests
                .get_or_create(&l)
                .observe(took.as_secs_f64());
        }
    }

    fn first_frame(&self, path: &StreamPath, protocol: &'static str, took: Duration) {
        let l = app_scope(&path.app).with_protocol(protocol);
        self.inner
            .m
            .first_frame
            .get_or_create(&l)
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn path(s: &str) -> StreamPath {
        StreamPath::parse("live", s).unwrap()
    }

    fn scrape(r: &Registry) -> String {
        let mut s = String::new();
        encode(&mut s, r).unwrap();
        s
    }

    #[test]
    fn names_follow_conventions() {
        let mut r = Registry::default();
        let o = PrometheusObserver::new(&mut r);
        let p = o.stream_created(&path("a"));
        p.frame_in(&MediaFrame::end_of_stream());
        p.gop_cache(3, 300);
        p.frames_out("rtmp", 2, 20);
        o.handshake("rtmp", Duration::from_millis(3));
        let text = scrape(&r);
        for want in [
            "arcly_frames_in_total{app=\"live\"} 1",
            "arcly_payload_in_bytes_total{app=\"live\"} 0",
            "arcly_gop_cache_bytes{app=\"live\"} 300",
            "arcly_gop_cache_frames{app=\"live\"} 3",
            "arcly_frames_out_total{app=\"live\",protocol=\"rtmp\"} 2",
            "arcly_payload_out_bytes_total{app=\"live\",protocol=\"rtmp\"} 20",
            "arcly_handshake_duration_seconds_count{protocol=\"rtmp\"} 1",
            "arcly_streams_active{app=\"live\"} 1",
            "# UNIT arcly_payload_in_bytes bytes",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn per_app_gop_gauge_sums_streams() {
        let mut r = Registry::default();
        let o = PrometheusObserver::new(&mut r);
        let a = o.stream_created(&path("a"));
        let b = o.stream_created(&path("b"));
        a.gop_cache(10, 1000);
        b.gop_cache(5, 500);
        a.gop_cache(12, 1200);
        assert!(scrape(&r).contains("arcly_gop_cache_frames{app=\"live\"} 17"));
        a.gop_cache(0, 0);
        assert!(scrape(&r).contains("arcly_gop_cache_bytes{app=\"live\"} 500"));
    }

    #[test]
    fn per_stream_limit_and_removal() {
        let mut r = Registry::default();
        let o = PrometheusObserver::with_options(&mut r, MetricsOptions::new().per_stream(1));
        let a = o.stream_created(&path("a"));
        let b = o.stream_created(&path("b"));
        a.frame_in(&MediaFrame::end_of_stream());
        b.frame_in(&MediaFrame::end_of_stream());
        let text = scrape(&r);
        assert!(text.contains("arcly_frames_in_total{app=\"live\",stream=\"a\"} 1"));
        assert!(text.contains("arcly_frames_in_total{app=\"live\",stream=\"_other\"} 1"));
        o.stream_removed(&path("a"));
        o.stream_removed(&path("b"));
        let text = scrape(&r);
        assert!(!text.contains("stream=\"a\""), "{text}");
        assert!(text.contains("stream=\"_other\""));
        // The probe going away later does not bring the series back.
        drop(a);
        assert!(!scrape(&r).contains("stream=\"a\""));
        // The freed slot goes to the next stream.
        let _c = o.stream_created(&path("c"));
        assert!(scrape(&r).contains("stream=\"c\""));
    }

    #[test]
    fn recreated_stream_keeps_its_series_until_the_last_reference() {
        let mut r = Registry::default();
        let o = PrometheusObserver::with_options(&mut r, MetricsOptions::new().per_stream(8));
        let old = o.stream_created(&path("a"));
        let new = o.stream_created(&path("a"));
        o.stream_removed(&path("a"));
        new.frame_in(&MediaFrame::end_of_stream());
        drop(old);
        assert!(scrape(&r).contains("arcly_frames_in_total{app=\"live\",stream=\"a\"} 1"));
        o.stream_removed(&path("a"));
        assert!(!scrape(&r).contains("stream=\"a\""));
    }

    #[test]
    fn per_app_counters_survive_removed_streams() {
        let mut r = Registry::default();
        let o = PrometheusObserver::new(&mut r);
        let a = o.stream_created(&path("a"));
        for _ in 0..3 {
            a.frame_in(&MediaFrame::end_of_stream());
        }
        o.stream_removed(&path("a"));
        drop(a);
        assert!(scrape(&r).contains("arcly_frames_in_total{app=\"live\"} 3"));
        let b = o.stream_created(&path("b"));
        b.frame_in(&MediaFrame::end_of_stream());
        b.frame_in(&MediaFrame::end_of_stream());
        assert!(scrape(&r).contains("arcly_frames_in_total{app=\"live\"} 5"));
    }

    #[test]
    fn frame_in_from_successive_threads_adds_up() {
        // Publishers of one stream follow each other on different threads.
        let mut r = Registry::default();
        let o = PrometheusObserver::new(&mut r);
        let p = o.stream_created(&path("a"));
        for _ in 0..4 {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    p.frame_in(&MediaFrame::end_of_stream());
                }
            })
            .join()
            .unwrap();
        }
        assert!(scrape(&r).contains("arcly_frames_in_total{app=\"live\"} 4000"));
    }

    #[test]
    fn more_protocols_than_cached_slots_still_count() {
        const PROTOS: [&str; 11] = [
            "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10",
        ];
        let mut r = Registry::default();
        let o = PrometheusObserver::new(&mut r);
        let p = o.stream_created(&path("a"));
        for _ in 0..3 {
            for proto in PROTOS {
                p.frames_out(proto, 2, 10);
            }
        }
        let text = scrape(&r);
        for proto in PROTOS {
            let want = format!("arcly_frames_out_total{{app=\"live\",protocol=\"{proto}\"}} 6");
            assert!(text.contains(&want), "missing {want}");
        }
    }
}
