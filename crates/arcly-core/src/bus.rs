//! The bus: one publisher, any number of late-joining subscribers.
//!
//! A [`StreamHandle`] is the live object behind one stream name. Its
//! publisher (a [`crate::inbound::PublishSession`]) pushes frames; each frame
//! is wrapped in an `Arc` once and handed to every subscriber through a
//! single-writer ring of `ArcSwapOption` slots (see `ring.rs`), so the payload
//! is never copied and a delivery costs one reference-count increment.
//!
//! # GOP cache
//! Besides the channel, the stream keeps the latest CONFIG frames and every
//! frame since the last keyframe in an append-only table (one per GOP, behind
//! an `ArcSwap` that changes only when a GOP starts). Appending is O(1) and
//! lock-free: the publisher fills a slot, then publishes the new length; a
//! joining subscriber reads the length and the slots below it and replays
//! them before live frames, so playback starts at once on a decodable
//! keyframe. Frames carry a sequence number so the replay and the live
//! channel join without gap or duplicate.
//!
//! # Tracks
//! A publisher may send several tracks of a kind (Enhanced RTMP multitrack:
//! renditions, languages). Each kind has a default track: track 0 when the
//! publisher sends one (every legacy or single-track tag is track 0), else
//! the first track of that kind it sent. When a frame is published the bus
//! flags the others [`FrameFlags::NON_DEFAULT_TRACK`](crate::FrameFlags)
//! (the frame is still owned then: no extra cost per subscriber). GOPs start
//! only at a keyframe of the default video track, and a subscriber that has
//! to wait for a keyframe waits for one of the default track, so track 0
//! never starts on a P-frame. A subscription receives every track unless it
//! selects [`TrackSelection::Default`], as players that did not ask for
//! multitrack do: they cannot read the other tracks, and would multiply
//! their egress by the number of tracks.
//!
//! # Live QoS
//! A subscriber that falls behind (the channel overwrote frames it had not
//! read) never slows the publisher or anyone else: it skips ahead to the next
//! video keyframe (audio continues; no decoder is handed a frame whose
//! references were dropped), re-sends any configuration that changed while it
//! lagged, counts the skip and reports it to the [`Observer`]. One that lags
//! more than [`BusConfig::max_lag_events`] times within
//! [`BusConfig::lag_window`] is dropped with [`StreamError::SlowSubscriber`].

use crate::audit::{AuditEvent, AuditOutcome, AuditPipeline};
use crate::auth::AuthAction;
use crate::error::{Result, StreamError};
use crate::events::{EngineEvent, EventBus};
use crate::frame::{FrameType, MediaFrame};
use crate::identity::StreamPath;
use crate::observe::{DropReason, Observer, StreamProbe};
use crate::ring::{Read, Ring};
use arc_swap::{ArcSwap, ArcSwapOption};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// Which tracks a [`Subscription`] receives (see the module docs, "Tracks").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TrackSelection {
    /// Every track: for packagers and recorders that map each track, and
    /// players that asked for multitrack.
    #[default]
    All,
    /// Only the default video and audio tracks (and metadata): for players
    /// that did not ask for multitrack.
    Default,
}

/// Bounds and sizes of one stream's bus.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// Frames the GOP cache may hold (0 disables it).
    pub gop_cache_frames: usize,
    /// Payload bytes the GOP cache may hold.
    pub gop_cache_bytes: usize,
    /// Frames the broadcast ring holds per stream; a subscriber further
    /// behind than this lags.
    pub channel_capacity: usize,
    /// Subscribers allowed at once (`usize::MAX`: unbounded).
    pub max_subscribers: usize,
    /// Lag events tolerated within `lag_window` before a subscriber is dropped.
    pub max_lag_events: u32,
    /// The window over which lag events are counted.
    pub lag_window: Duration,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            gop_cache_frames: 0,
            gop_cache_bytes: 32 << 20,
            channel_capacity: 512,
            max_subscribers: usize::MAX,
            max_lag_events: 8,
            lag_window: Duration::from_secs(30),
        }
    }
}

/// The latest configuration of a stream: decoder records and metadata.
#[derive(Debug, Clone, Default)]
pub struct ConfigSet {
    /// The latest video CONFIG frame per track.
    pub video: Vec<Arc<MediaFrame>>,
    /// The latest audio CONFIG frame per track.
    pub audio: Vec<Arc<MediaFrame>>,
    /// The latest metadata frame (`onMetaData`, AMF0).
    pub metadata: Option<Arc<MediaFrame>>,
    /// The latest codec-level metadata per codec and track (an Enhanced
    /// RTMP video `Metadata` packet such as colour information): kept apart
    /// from `onMetaData` so one never replaces the other.
    pub codec_metadata: Vec<Arc<MediaFrame>>,
}

impl ConfigSet {
    fn with(&self, frame: &Arc<MediaFrame>) -> Self {
        let mut next = self.clone();
        let slot = if frame.frame_type == FrameType::Data {
            if frame.codec == crate::frame::CodecId::Amf0Data {
                next.metadata = Some(Arc::clone(frame));
            } else {
                next.codec_metadata
                    .retain(|f| (f.codec, f.track) != (frame.codec, frame.track));
                next.codec_metadata.push(Arc::clone(frame));
            }
            return next;
        } else if frame.is_video() {
            &mut next.video
        } else {
            &mut next.audio
        };
        slot.retain(|f| f.track != frame.track);
        slot.push(Arc::clone(frame));
        next
    }

    /// Every frame, metadata first, then video and audio configs, then
    /// codec-level metadata, in the order a player wants them.
    pub fn frames(&self) -> impl Iterator<Item = &Arc<MediaFrame>> {
        self.metadata
            .iter()
            .chain(self.video.iter())
            .chain(self.audio.iter())
            .chain(self.codec_metadata.iter())
    }

    fn max_sequence(&self) -> u64 {
        self.frames().map(|f| f.sequence).max().unwrap_or(0)
    }
}

/// Frames per chunk of a GOP segment's slot table.
const GOP_CHUNK: usize = 64;

/// One chunk of a GOP segment's slot table: each slot is written once.
type GopChunk = Box<[OnceLock<Arc<MediaFrame>>]>;

/// One GOP: an append-only table of frames, written by the publisher only
/// and read by joining subscribers without a lock. The publisher fills a slot
/// (`OnceLock::set`), then publishes the new length with `Release`; a reader
/// loads the length with `Acquire` and reads the slots below it. A new
/// segment is swapped in (one `ArcSwap` store) only when a GOP starts.
struct GopSegment {
    /// Configuration in force when this GOP began.
    configs: Arc<ConfigSet>,
    chunks: Box<[OnceLock<GopChunk>]>,
    len: AtomicUsize,
}

impl GopSegment {
    fn new(configs: Arc<ConfigSet>, capacity: usize) -> Self {
        let n_chunks = capacity.div_ceil(GOP_CHUNK).max(1);
        Self {
            configs,
            chunks: (0..n_chunks).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
        }
    }

    fn capacity(&self) -> usize {
        self.chunks.len() * GOP_CHUNK
    }

    /// Append (publisher only). Returns false when the table is full.
    fn push(&self, frame: &Arc<MediaFrame>) -> bool {
        let idx = self.len.load(Ordering::Relaxed);
        if idx >= self.capacity() {
            return false;
        }
        let chunk = self.chunks[idx / GOP_CHUNK]
            .get_or_init(|| (0..GOP_CHUNK).map(|_| OnceLock::new()).collect());
        // The slot is empty: only the publisher writes, once per index.
        let _ = chunk[idx % GOP_CHUNK].set(Arc::clone(frame));
        self.len.store(idx + 1, Ordering::Release);
        true
    }

    /// The frames appended so far, oldest first.
    fn snapshot(&self) -> Vec<Arc<MediaFrame>> {
        let len = self.len.load(Ordering::Acquire);
        let mut out = Vec::with_capacity(len);
        for idx in 0..len {
            if let Some(f) = self.chunks[idx / GOP_CHUNK]
                .get()
                .and_then(|c| c[idx % GOP_CHUNK].get())
            {
                out.push(Arc::clone(f));
            }
        }
        out
    }
}

/// Who publishes a stream.
#[derive(Debug, Clone)]
pub struct PublisherInfo {
    /// The protocol it came over.
    pub protocol: &'static str,
    /// Its address, when it came over a network.
    pub peer: Option<SocketAddr>,
    /// When it started.
    pub since: SystemTime,
}

/// A point-in-time view of a stream's counters.
#[derive(Debug, Clone)]
pub struct StreamStats {
    /// The stream.
    pub path: StreamPath,
    /// Whether a publisher is attached.
    pub live: bool,
    /// The publisher, when live.
    pub publisher: Option<PublisherInfo>,
    /// The configuration (codecs) last seen.
    pub configs: Arc<ConfigSet>,
    /// Frames received from publishers.
    pub frames_in: u64,
    /// Payload bytes received from publishers.
    pub bytes_in: u64,
    /// Frames handed to subscribers (reported in batches).
    pub frames_out: u64,
    /// Payload bytes handed to subscribers (reported in batches).
    pub bytes_out: u64,
    /// Subscribers now.
    pub subscribers: usize,
    /// Frames skipped by lagging subscribers.
    pub qos_skipped: u64,
    /// Subscribers dropped for being too slow.
    pub subscribers_dropped: u64,
    /// Frames in the GOP cache now.
    pub gop_frames: usize,
    /// How many publishers this stream has had (1 for the first).
    pub generation: u64,
    /// When the stream object was created.
    pub created: SystemTime,
}

#[derive(Default)]
struct Counters {
    frames_in: AtomicU64,
    bytes_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_out: AtomicU64,
    qos_skipped: AtomicU64,
    dropped: AtomicU64,
}

pub(crate) struct StreamShared {
    path: StreamPath,
    ring: Ring,
    config: ArcSwap<ConfigSet>,
    gop: ArcSwapOption<GopSegment>,
    cfg: BusConfig,
    live: AtomicBool,
    closed: AtomicBool,
    /// Set by the engine's reaper while it decides to remove the stream (see
    /// [`StreamHandle::try_reap`]); a publisher or subscriber that sees it
    /// backs off and looks the stream up again.
    reaping: AtomicBool,
    has_video: AtomicBool,
    generation: AtomicU64,
    subscribers: AtomicUsize,
    /// Milliseconds since `epoch` when the stream last had a publisher or subscriber.
    last_active_ms: AtomicU64,
    epoch: Instant,
    created: SystemTime,
    publisher: ArcSwapOption<PublisherInfo>,
    /// Cancelled to disconnect the current publisher from outside its protocol.
    kick: ArcSwapOption<tokio_util::sync::CancellationToken>,
    counters: Counters,
    probe: Arc<dyn StreamProbe>,
    observer: Arc<dyn Observer>,
    events: EventBus,
    gop_len: AtomicU32,
}

/// The live object behind one stream name. Cheap to clone (shared).
#[derive(Clone)]
pub struct StreamHandle {
    pub(crate) shared: Arc<StreamShared>,
}

impl std::fmt::Debug for StreamHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHandle")
            .field("path", &self.shared.path)
            .field("live", &self.is_live())
            .field("subscribers", &self.subscriber_count())
            .finish()
    }
}

impl StreamHandle {
    /// A stream outside any engine (tests, embedded single-stream use).
    pub fn new(
        path: StreamPath,
        cfg: BusConfig,
        observer: Arc<dyn Observer>,
        events: EventBus,
    ) -> Self {
        let probe = observer.stream_created(&path);
        Self {
            shared: Arc::new(StreamShared {
                path,
                ring: Ring::new(cfg.channel_capacity.max(2)),
                config: ArcSwap::from_pointee(ConfigSet::default()),
                gop: ArcSwapOption::empty(),
                cfg,
                live: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                reaping: AtomicBool::new(false),
                has_video: AtomicBool::new(false),
                generation: AtomicU64::new(0),
                subscribers: AtomicUsize::new(0),
                last_active_ms: AtomicU64::new(0),
                epoch: Instant::now(),
                created: SystemTime::now(),
                publisher: ArcSwapOption::empty(),
                kick: ArcSwapOption::empty(),
                counters: Counters::default(),
                probe,
                observer,
                events,
                gop_len: AtomicU32::new(0),
            }),
        }
    }

    /// The stream's address.
    pub fn path(&self) -> &StreamPath {
        &self.shared.path
    }

    /// Whether a publisher is attached.
    pub fn is_live(&self) -> bool {
        self.shared.live.load(Ordering::Acquire)
    }

    /// Whether the stream was closed (removed from its engine).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Subscribers now.
    pub fn subscriber_count(&self) -> usize {
        self.shared.subscribers.load(Ordering::Relaxed)
    }

    /// The latest configuration (decoder records, metadata).
    pub fn configs(&self) -> Arc<ConfigSet> {
        self.shared.config.load_full()
    }

    /// The current publisher, if live.
    pub fn publisher(&self) -> Option<PublisherInfo> {
        self.shared.publisher.load_full().map(|p| (*p).clone())
    }

    /// Ask the current publisher to leave (an operator's "kick"): the token
    /// its [`crate::inbound::PublishSession::kicked`] exposes is cancelled
    /// and its protocol handler closes the connection. Returns whether a
    /// publisher was attached.
    pub fn kick_publisher(&self) -> bool {
        match self.shared.kick.load_full() {
            Some(token) if self.is_live() => {
                token.cancel();
                true
            }
            _ => false,
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> StreamStats {
        let s = &self.shared;
        let c = &s.counters;
        StreamStats {
            path: s.path.clone(),
            live: self.is_live(),
            publisher: self.publisher(),
            configs: self.configs(),
            frames_in: c.frames_in.load(Ordering::Relaxed),
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
            frames_out: c.frames_out.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            subscribers: self.subscriber_count(),
            qos_skipped: c.qos_skipped.load(Ordering::Relaxed),
            subscribers_dropped: c.dropped.load(Ordering::Relaxed),
            gop_frames: s.gop_len.load(Ordering::Relaxed) as usize,
            generation: s.generation.load(Ordering::Relaxed),
            created: s.created,
        }
    }

    /// How long the stream has had neither publisher nor subscriber.
    pub fn idle_for(&self) -> Duration {
        let s = &self.shared;
        if self.is_live() || self.subscriber_count() > 0 {
            return Duration::ZERO;
        }
        let now = s.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(s.last_active_ms.load(Ordering::Relaxed)))
    }

    fn touch(&self) {
        let s = &self.shared;
        s.last_active_ms
            .store(s.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Subscribe as `protocol`. The subscription first replays the cached
    /// configuration and GOP, then follows the live edge.
    pub fn subscribe(&self, protocol: &'static str) -> Result<Subscription> {
        let s = &self.shared;
        if self.is_closed() {
            return Err(StreamError::StreamClosed);
        }
        // SeqCst, with the load of `reaping` below: see `try_reap`.
        let n = s.subscribers.fetch_add(1, Ordering::SeqCst);
        if s.reaping.load(Ordering::SeqCst) {
            s.subscribers.fetch_sub(1, Ordering::AcqRel);
            return Err(StreamError::StreamClosed);
        }
        if n >= s.cfg.max_subscribers {
            s.subscribers.fetch_sub(1, Ordering::AcqRel);
            return Err(StreamError::TooManySubscribers {
                limit: s.cfg.max_subscribers,
            });
        }
        // Order matters: subscribe to the channel first, then snapshot the
        // cache. A frame is stored in the cache before it is sent, so every
        // frame sent before `subscribe` is in the snapshot; frames in both are
        // dropped from the channel side by sequence number.
        let pos = s.ring.tail() + 1;
        let gop = s.gop.load_full();
        let current = s.config.load_full();
        let mut replay = VecDeque::new();
        // Without a cached GOP, video starts at the next keyframe of the
        // default track. Before any video came this changes nothing for one
        // track (a publish starts at its first keyframe, see `KeyframeGate`)
        // but it does when that keyframe is another track's.
        let mut waiting_keyframe = true;
        let skip_through;
        let chain = gop.as_ref().map(|g| g.snapshot()).unwrap_or_default();
        match (gop, chain.last()) {
            (Some(g), Some(last)) => {
                replay.extend(g.configs.frames().cloned());
                skip_through = last.sequence.max(g.configs.max_sequence());
                replay.extend(chain.iter().cloned());
                waiting_keyframe = false;
            }
            _ => {
                replay.extend(current.frames().cloned());
                skip_through = current.max_sequence();
            }
        }
        let config_seen = replay
            .iter()
            .filter(|f| f.is_config())
            .map(|f| f.sequence)
            .max()
            .unwrap_or(0);
        self.touch();
        s.observer.subscriber_joined(&s.path, protocol);
        s.events.emit(EngineEvent::SubscriberJoined {
            path: s.path.clone(),
            protocol,
        });
        Ok(Subscription {
            stream: self.clone(),
            pos,
            replay,
            skip_through,
            waiting_keyframe,
            config_seen,
            protocol,
            lag_events: VecDeque::new(),
            total_lag_events: 0,
            skipped: 0,
            pending_frames: 0,
            pending_bytes: 0,
            joined: Instant::now(),
            first_delivered: false,
            tracks: TrackSelection::All,
            audit: None,
        })
    }

    /// Publish one frame (called by the publisher's session only).
    pub(crate) fn publish(&self, state: &mut PublisherState, mut frame: MediaFrame) {
        let s = &self.shared;
        state.next_sequence += 1;
        frame.sequence = state.next_sequence;
        if state.first_of_generation {
            state.first_of_generation = false;
            if s.generation.load(Ordering::Relaxed) > 1 {
                frame.flags |= crate::frame::FrameFlags::DISCONTINUITY;
            }
        }
        state.mark_track(&mut frame);
        let bytes = frame.payload.len();
        let is_video = frame.is_video();
        let frame = Arc::new(frame);
        s.counters.frames_in.fetch_add(1, Ordering::Relaxed);
        s.counters
            .bytes_in
            .fetch_add(bytes as u64, Ordering::Relaxed);
        s.probe.frame_in(&frame);

        if is_video && !state.has_video {
            state.has_video = true;
            s.has_video.store(true, Ordering::Release);
        }
        // A data event (a cue point, a caption) is delivered, not kept.
        if frame.is_config() || (frame.frame_type == FrameType::Data && !frame.is_data_event()) {
            let next = Arc::new(state.configs.with(&frame));
            state.configs = Arc::clone(&next);
            s.config.store(next);
        }
        self.cache(state, &frame, bytes);
        // A send error only means nobody listens right now.
        s.ring.push(frame);
    }

    fn cache(&self, state: &mut PublisherState, frame: &Arc<MediaFrame>, bytes: usize) {
        let s = &self.shared;
        if s.cfg.gop_cache_frames == 0 {
            return;
        }
        // A GOP starts at a video keyframe; an audio-only stream starts a new
        // one once the current one holds a second of audio. Only frames of
        // the default track count: a GOP started at another track's keyframe
        // would start track 0 on a P-frame.
        let audio_start = !state.has_video
            && frame.is_audio()
            && !frame.is_config()
            && (state.gop_frames >= 50 || state.gop.is_none());
        let starts_gop =
            frame.is_default_track() && ((frame.is_video() && frame.is_keyframe()) || audio_start);
        if starts_gop {
            let seg = Arc::new(GopSegment::new(
                Arc::clone(&state.configs),
                s.cfg.gop_cache_frames,
            ));
            seg.push(frame);
            s.gop.store(Some(Arc::clone(&seg)));
            state.gop = Some(seg);
            state.gop_frames = 1;
            state.gop_bytes = bytes;
        } else if let Some(seg) = &state.gop {
            if state.gop_frames + 1 > s.cfg.gop_cache_frames
                || state.gop_bytes + bytes > s.cfg.gop_cache_bytes
                || !seg.push(frame)
            {
                // Over the bound: stop caching until the next keyframe, rather
                // than keep a GOP a player could not decode from its start.
                s.gop.store(None);
                state.gop = None;
                state.gop_frames = 0;
                state.gop_bytes = 0;
            } else {
                state.gop_frames += 1;
                state.gop_bytes += bytes;
            }
        } else {
            return;
        }
        s.gop_len.store(state.gop_frames as u32, Ordering::Relaxed);
        s.probe.gop_cache(state.gop_frames, state.gop_bytes);
    }

    /// Mark the stream live for a new publisher. Fails if one is attached,
    /// and with [`StreamError::StreamClosed`] if the stream is closed or being
    /// reaped (look it up again).
    pub(crate) fn attach_publisher(&self, info: PublisherInfo) -> Result<PublisherState> {
        let s = &self.shared;
        if s.closed.load(Ordering::Acquire) || s.reaping.load(Ordering::Acquire) {
            return Err(StreamError::StreamClosed);
        }
        // Taking `live` is taking the ring's write permission: it is released
        // by `detach_publisher` after the previous publisher's last write.
        // SeqCst, with the load of `reaping` below: see `try_reap`.
        if s.live
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::Acquire)
            .is_err()
        {
            return Err(StreamError::AlreadyPublishing {
                app: s.path.app.to_string(),
                stream: s.path.stream.to_string(),
            });
        }
        if s.reaping.load(Ordering::SeqCst) {
            // The reaper is removing this stream; nothing was written yet.
            s.live.store(false, Ordering::SeqCst);
            return Err(StreamError::StreamClosed);
        }
        let generation = s.generation.fetch_add(1, Ordering::AcqRel) + 1;
        s.publisher.store(Some(Arc::new(info)));
        let kick = tokio_util::sync::CancellationToken::new();
        s.kick.store(Some(Arc::new(kick.clone())));
        s.config.store(Arc::new(ConfigSet::default()));
        s.has_video.store(false, Ordering::Release);
        self.touch();
        Ok(PublisherState {
            // Sequences keep growing across publishers so that subscribers'
            // de-duplication stays correct.
            next_sequence: s.ring.tail(),
            first_of_generation: true,
            has_video: false,
            default_tracks: [None; 2],
            configs: Arc::new(ConfigSet::default()),
            gop: None,
            gop_frames: 0,
            gop_bytes: 0,
            generation,
            kick,
        })
    }

    /// Detach the publisher: the GOP cache is cleared and subscribers get the
    /// in-band end-of-stream marker.
    ///
    /// The marker is the departing publisher's last write to the ring, and
    /// it happens before `live` is cleared: `live` is the ring's write
    /// permission. The next publisher can only take it (the compare-exchange
    /// in [`attach_publisher`](Self::attach_publisher)) after the store that
    /// clears it, so it reads a tail that includes the marker and its first
    /// frame takes the next sequence. Clearing `live` first let both write
    /// the same sequence: the marker or the new publisher's first frame was
    /// lost, and the tail could go backwards.
    pub(crate) fn detach_publisher(&self, state: &mut PublisherState) {
        let s = &self.shared;
        state.gop = None;
        state.gop_frames = 0;
        state.gop_bytes = 0;
        s.gop.store(None);
        s.gop_len.store(0, Ordering::Relaxed);
        s.probe.gop_cache(0, 0);
        let mut eos = MediaFrame::end_of_stream();
        state.next_sequence += 1;
        eos.sequence = state.next_sequence;
        s.publisher.store(None);
        s.kick.store(None);
        self.touch();
        s.ring.push(Arc::new(eos));
        // Everything above happens before the next publisher attaches.
        s.live.store(false, Ordering::SeqCst);
    }

    /// Claim an idle stream for removal: true if it has neither publisher
    /// nor subscriber, and from then on no publisher can attach to it and no
    /// subscriber join it. The caller removes it from its map and
    /// [`close`](Self::close)s it.
    ///
    /// A publisher (subscriber) first registers (sets `live`, counts itself),
    /// then checks `reaping`; the reaper first sets `reaping`, then checks
    /// `live` and the subscriber count. All four accesses are SeqCst, so at
    /// least one side sees the other: either the reaper backs off, or the
    /// newcomer does (and looks the stream up again, finding it kept or a
    /// new one). Checking `closed` alone let a publisher attach to a stream
    /// the reaper had just removed, publishing into a stream no player could
    /// find.
    pub(crate) fn try_reap(&self) -> bool {
        let s = &self.shared;
        s.reaping.store(true, Ordering::SeqCst);
        if s.live.load(Ordering::SeqCst) || s.subscribers.load(Ordering::SeqCst) > 0 {
            s.reaping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Close the stream: subscribers end with [`StreamError::StreamClosed`].
    pub(crate) fn close(&self) {
        let s = &self.shared;
        if s.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        s.gop.store(None);
        // Not a write into the ring: a publisher may still be writing.
        // Subscribers see the flag once they have drained what is there.
        s.ring.close();
        s.observer.stream_removed(&s.path);
    }

    pub(crate) fn observer(&self) -> &Arc<dyn Observer> {
        &self.shared.observer
    }

    pub(crate) fn events(&self) -> &EventBus {
        &self.shared.events
    }
}

/// The publisher side's private state: only the publishing session holds it,
/// so the publish path needs no lock.
pub(crate) struct PublisherState {
    next_sequence: u64,
    first_of_generation: bool,
    has_video: bool,
    /// The default video and audio track, once a frame of the kind came.
    default_tracks: [Option<u8>; 2],
    configs: Arc<ConfigSet>,
    gop: Option<Arc<GopSegment>>,
    gop_frames: usize,
    gop_bytes: usize,
    pub(crate) generation: u64,
    pub(crate) kick: tokio_util::sync::CancellationToken,
}

impl PublisherState {
    /// Flag `frame` [`FrameFlags::NON_DEFAULT_TRACK`] unless it is on its
    /// kind's default track: track 0 when the publisher sends one, else the
    /// first track of the kind it sent. An Enhanced RTMP video `Metadata`
    /// frame counts as video.
    ///
    /// [`FrameFlags::NON_DEFAULT_TRACK`]: crate::frame::FrameFlags::NON_DEFAULT_TRACK
    fn mark_track(&mut self, frame: &mut MediaFrame) {
        use crate::frame::FrameFlags;
        frame.flags.remove(FrameFlags::NON_DEFAULT_TRACK);
        let kind = if frame.is_video()
            || (frame.frame_type == FrameType::Data && frame.codec.is_video())
        {
            0
        } else if frame.is_audio() {
            1
        } else {
            return;
        };
        let default = self.default_tracks[kind].get_or_insert(frame.track);
        if frame.track == 0 {
            // Track 0 is the default whenever it exists (a multitrack
            // sequence start may list another track first).
            *default = 0;
        }
        if frame.track != *default {
            frame.flags.insert(FrameFlags::NON_DEFAULT_TRACK);
        }
    }
}

/// How many deliveries a subscription accumulates before it reports them to
/// the stream's counters (keeps shared cache lines quiet on the fan-out path).
const REPORT_EVERY: u64 = 64;

/// One subscriber's view of a stream.
///
/// [`recv`](Subscription::recv) yields the replayed configuration and GOP,
/// then live frames. An end-of-stream marker frame
/// ([`MediaFrame::is_publisher_end`]) means the publisher left; the
/// subscription stays valid and the next frames (flagged DISCONTINUITY,
/// configuration first) belong to the next publisher.
pub struct Subscription {
    stream: StreamHandle,
    /// The ring position (frame sequence) this subscriber reads next.
    pos: u64,
    replay: VecDeque<Arc<MediaFrame>>,
    skip_through: u64,
    waiting_keyframe: bool,
    config_seen: u64,
    protocol: &'static str,
    lag_events: VecDeque<Instant>,
    total_lag_events: u64,
    skipped: u64,
    pending_frames: u64,
    pending_bytes: u64,
    joined: Instant,
    first_delivered: bool,
    tracks: TrackSelection,
    /// Where the end of this play is audited, when its start was (boxed:
    /// a player's future holds its subscription, keep it small).
    audit: Option<Box<PlayAudit>>,
}

/// What a subscription needs to write its end to the audit trail.
struct PlayAudit {
    pipeline: Arc<AuditPipeline>,
    peer: Option<SocketAddr>,
    /// Why the subscription failed, if it did (written as
    /// [`AuditOutcome::Failed`] rather than [`AuditOutcome::Ended`]).
    failure: Option<String>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("path", self.stream.path())
            .field("protocol", &self.protocol)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Subscription {
    /// The stream subscribed to.
    pub fn stream(&self) -> &StreamHandle {
        &self.stream
    }

    /// Frames skipped so far to catch up with the live edge.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Frames waiting in the replay queue (the cached GOP not yet received).
    pub fn replay_len(&self) -> usize {
        self.replay.len()
    }

    /// Receive only `tracks` from now on (the default is
    /// [`TrackSelection::All`]). Players that did not ask for multitrack
    /// select [`TrackSelection::Default`] right after subscribing, before
    /// the first [`recv`](Self::recv), so the replayed configuration and GOP
    /// are filtered too.
    pub fn select_tracks(&mut self, tracks: TrackSelection) {
        self.tracks = tracks;
    }

    /// The tracks this subscription receives.
    pub fn tracks(&self) -> TrackSelection {
        self.tracks
    }

    /// Whether this subscription receives `f`'s track.
    #[inline]
    fn wants(&self, f: &MediaFrame) -> bool {
        self.tracks == TrackSelection::All || f.is_default_track()
    }

    /// Audit this play's end to `pipeline` when the subscription is dropped
    /// (the engine, which audited its start, sets this).
    pub(crate) fn audit_end(&mut self, pipeline: Arc<AuditPipeline>, peer: Option<SocketAddr>) {
        self.audit = Some(Box::new(PlayAudit {
            pipeline,
            peer,
            failure: None,
        }));
    }

    /// The next frame. Errors: [`StreamError::StreamClosed`] when the stream
    /// is removed, [`StreamError::SlowSubscriber`] when this subscriber kept
    /// lagging.
    #[inline]
    pub async fn recv(&mut self) -> Result<Arc<MediaFrame>> {
        loop {
            if let Some(f) = self.try_recv()? {
                return Ok(f);
            }
            let shared = Arc::clone(&self.stream.shared);
            shared.ring.wait(self.pos).await;
        }
    }

    /// The next frame if one is ready now, without waiting. `Ok(None)` means
    /// nothing is pending.
    #[inline]
    pub fn try_recv(&mut self) -> Result<Option<Arc<MediaFrame>>> {
        loop {
            if let Some(f) = self.replay.pop_front() {
                if self.replay.is_empty() {
                    // The join's replay queue is not kept for the whole
                    // subscription: every subscriber would hold a GOP's
                    // worth of slots.
                    self.replay = VecDeque::new();
                }
                if !self.wants(&f) {
                    continue;
                }
                return Ok(Some(self.deliver(f)));
            }
            match self.stream.shared.ring.read(&mut self.pos) {
                Read::Frame(f) => {
                    if !self.wants(&f) {
                        continue;
                    }
                    if let Some(f) = self.admit(f)? {
                        return Ok(Some(self.deliver(f)));
                    }
                }
                Read::Lagged(n) => self.lagged(n)?,
                Read::Empty if self.stream.shared.ring.is_closed() => {
                    return Err(StreamError::StreamClosed)
                }
                Read::Empty => return Ok(None),
            }
        }
    }

    #[inline]
    fn admit(&mut self, f: Arc<MediaFrame>) -> Result<Option<Arc<MediaFrame>>> {
        if f.sequence != 0 && f.sequence <= self.skip_through {
            return Ok(None);
        }
        if f.is_publisher_end() {
            if self.stream.is_closed() {
                return Err(StreamError::StreamClosed);
            }
            // The next publisher starts with its configuration and a
            // keyframe (of the default track, perhaps not its first one).
            self.waiting_keyframe = true;
            self.config_seen = 0;
            return Ok(Some(f));
        }
        // A codec's end of sequence is not the publisher leaving: the
        // publisher stays, and a subscriber waiting for a keyframe still
        // waits (the sequence end is a video frame it skips like the
        // pictures around it); configuration tracking carries on.
        if f.is_config() {
            self.config_seen = self.config_seen.max(f.sequence);
            return Ok(Some(f));
        }
        if self.waiting_keyframe && f.is_video() {
            // Only a keyframe of the default track ends the wait: after one
            // of another track, track 0 would resume on a P-frame.
            if !(f.is_keyframe() && f.is_default_track()) {
                self.skipped += 1;
                self.stream
                    .shared
                    .counters
                    .qos_skipped
                    .fetch_add(1, Ordering::Relaxed);
                self.stream.shared.probe.qos_skip(1);
                return Ok(None);
            }
            self.waiting_keyframe = false;
            // Configuration may have changed while this subscriber lagged:
            // re-send what it has not seen, ahead of the keyframe.
            let configs = self.stream.configs();
            let missed: Vec<_> = configs
                .frames()
                .filter(|c| c.is_config() && c.sequence > self.config_seen && self.wants(c))
                .cloned()
                .collect();
            if !missed.is_empty() {
                for c in &missed {
                    self.config_seen = self.config_seen.max(c.sequence);
                }
                self.replay.extend(missed);
                self.replay.push_back(f);
                return Ok(self.replay.pop_front());
            }
        }
        Ok(Some(f))
    }

    fn lagged(&mut self, n: u64) -> Result<()> {
        let s = &self.stream.shared;
        self.skipped += n;
        self.total_lag_events += 1;
        s.counters.qos_skipped.fetch_add(n, Ordering::Relaxed);
        s.probe.qos_skip(n);
        self.waiting_keyframe = s.has_video.load(Ordering::Acquire);
        let now = Instant::now();
        self.lag_events.push_back(now);
        while self
            .lag_events
            .front()
            .is_some_and(|t| now.duration_since(*t) > s.cfg.lag_window)
        {
            self.lag_events.pop_front();
        }
        s.events.emit(EngineEvent::SubscriberLagged {
            path: s.path.clone(),
            protocol: self.protocol,
            skipped: n,
        });
        if self.lag_events.len() > s.cfg.max_lag_events as usize {
            s.counters.dropped.fetch_add(1, Ordering::Relaxed);
            s.observer
                .subscriber_dropped(&s.path, self.protocol, &DropReason::TooSlow);
            let err = StreamError::SlowSubscriber {
                lag_events: self.total_lag_events,
                skipped: self.skipped,
            };
            if let Some(audit) = &mut self.audit {
                audit.failure = Some(err.to_string());
            }
            return Err(err);
        }
        Ok(())
    }

    #[inline]
    fn deliver(&mut self, f: Arc<MediaFrame>) -> Arc<MediaFrame> {
        if !self.first_delivered && !f.is_config() && f.frame_type != FrameType::Data {
            self.first_delivered = true;
            let s = &self.stream.shared;
            s.observer
                .first_frame(&s.path, self.protocol, self.joined.elapsed());
        }
        self.pending_frames += 1;
        self.pending_bytes += f.payload.len() as u64;
        if self.pending_frames >= REPORT_EVERY {
            self.report();
        }
        f
    }

    fn report(&mut self) {
        if self.pending_frames == 0 {
            return;
        }
        let s = &self.stream.shared;
        s.counters
            .frames_out
            .fetch_add(self.pending_frames, Ordering::Relaxed);
        s.counters
            .bytes_out
            .fetch_add(self.pending_bytes, Ordering::Relaxed);
        s.probe
            .frames_out(self.protocol, self.pending_frames, self.pending_bytes);
        self.pending_frames = 0;
        self.pending_bytes = 0;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.report();
        let s = &self.stream.shared;
        s.subscribers.fetch_sub(1, Ordering::AcqRel);
        self.stream.touch();
        s.observer.subscriber_left(&s.path, self.protocol);
        s.events.emit(EngineEvent::SubscriberLeft {
            path: s.path.clone(),
            protocol: self.protocol,
        });
        if let Some(audit) = self.audit.take() {
            let outcome = match audit.failure {
                Some(reason) => AuditOutcome::Failed(reason),
                None => AuditOutcome::Ended,
            };
            audit.pipeline.submit(AuditEvent::now(
                AuthAction::Play,
                s.path.clone(),
                audit.peer,
                self.protocol,
                outcome,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::NoopObserver;

    fn stream() -> StreamHandle {
        StreamHandle::new(
            StreamPath::parse("live", "reap").unwrap(),
            BusConfig::default(),
            Arc::new(NoopObserver),
            EventBus::default(),
        )
    }

    fn info() -> PublisherInfo {
        PublisherInfo {
            protocol: "test",
            peer: None,
            since: SystemTime::now(),
        }
    }

    /// The reaper's claim and a newcomer's registration exclude each other,
    /// whichever comes first; a refused claim leaves the stream usable.
    #[test]
    fn the_reaper_and_newcomers_exclude_each_other() {
        let s = stream();
        let sub = s.subscribe("test").unwrap();
        assert!(!s.try_reap(), "a stream with a subscriber is kept");
        let mut state = s.attach_publisher(info()).unwrap();
        drop(sub);
        assert!(!s.try_reap(), "a live stream is kept");
        s.detach_publisher(&mut state);
        assert!(s.try_reap(), "an idle stream is claimed");
        assert!(matches!(
            s.attach_publisher(info()),
            Err(StreamError::StreamClosed)
        ));
        assert!(matches!(
            s.subscribe("test"),
            Err(StreamError::StreamClosed)
        ));
        assert!(!s.is_live() && s.subscriber_count() == 0, "nothing leaked");
    }

    /// The departing publisher's marker is written before the next
    /// publisher can take the ring: its first frame takes the next sequence.
    #[test]
    fn the_next_publisher_continues_after_the_marker() {
        let s = stream();
        let mut sub = s.subscribe("test").unwrap();
        let mut a = s.attach_publisher(info()).unwrap();
        s.publish(&mut a, MediaFrame::metadata(0, bytes::Bytes::new()));
        s.detach_publisher(&mut a);
        let mut b = s.attach_publisher(info()).unwrap();
        s.publish(&mut b, MediaFrame::metadata(0, bytes::Bytes::new()));
        let seqs: Vec<_> = std::iter::from_fn(|| sub.try_recv().unwrap())
            .map(|f| (f.sequence, f.is_publisher_end()))
            .collect();
        assert_eq!(seqs, [(1, false), (2, true), (3, false)]);
    }
}
