//! [`RtmpHandler`]: RTMP publish and play served from the registries.
//!
//! The handler is a thin tokio driver around [`ServerSession`]: bytes read
//! from the connection go into the session; its events become
//! [`PublishRegistry::publish`](arcly_core::registry::PublishRegistry::publish)
//! and [`PlaybackRegistry::subscribe`](arcly_core::registry::PlaybackRegistry::subscribe)
//! calls; frames from a publisher are pushed into its
//! [`PublishSession`]; frames from a
//! [`Subscription`](arcly_core::bus::Subscription) are rebased, mapped to
//! FLV tags at the edge ([`crate::flv`]) and written to the player with
//! vectored writes whose payload slices are shared with the bus.
//!
//! It depends only on the [`IngestContext`] it is handed, never on the
//! engine, and runs under [`TcpIngest`] (which owns the listener, the
//! connection bounds and the idle timeout; the RTMP handshake timeout is
//! enforced here).
//!
//! ```
//! use arcly_core::inbound::InboundProtocol;
//! use arcly_rtmp::{RtmpConfig, RtmpHandler};
//! use std::sync::Arc;
//!
//! let mut cfg = RtmpConfig::default();
//! cfg.limits.handshake_timeout = std::time::Duration::from_secs(5);
//! let rtmp = Arc::new(RtmpHandler::new(cfg).into_protocol("127.0.0.1:1935".parse().unwrap()));
//! // Hand it to an engine (`EngineBuilder::protocol(rtmp)`), or run it on any
//! // registry with `rtmp.serve(IngestContext::new(registry))`.
//! assert_eq!(rtmp.name(), "rtmp");
//! ```

use crate::message::{status, UserControl};
use crate::session::{ServerEvent, ServerSession, SessionConfig};
use arcly_core::bus::TrackSelection;
use arcly_core::inbound::{IngestContext, PublishSession};
use arcly_core::ingest::{IngestLimits, RateLimiter, TcpIngest};
use arcly_core::registry::{PlayRequest, PublishRequest};
use arcly_core::traits::{Connection, ProtocolHandler};
use arcly_core::{FrameType, MediaFrame, StreamError, StreamPath};
use async_trait::async_trait;
use std::collections::HashMap;
use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol name used in requests, logs and metrics.
pub const PROTOCOL: &str = "rtmp";
/// Gap in milliseconds left between the last frame of one publisher and the
/// first frame of the next, so a player's timestamps keep increasing.
pub const REPUBLISH_GAP_MS: i64 = 40;
/// How long a closing connection keeps reading so the peer receives the
/// last status before the socket goes.
pub const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_millis(500);
/// Default merged-write interval ([`RtmpConfig::merge_writes`]). Most of
/// what a player costs the server is per write (the send path and, on
/// loopback, waking the reader), so the interval sets players per core:
/// measured with `cargo xtask bench e2e`, 200 ms costs about two thirds of
/// 100 ms per player. SRS merges 350 ms by default; zero writes each frame
/// at once for the lowest latency.
pub const DEFAULT_MERGE_WRITES: std::time::Duration = std::time::Duration::from_millis(200);
/// Frames per tick from which a player's ticks come on a grid
/// [`FINE_GRID`] times finer: a stream sent faster than real time (a
/// backlog, a file pushed without `-re`) could otherwise lap the bus's ring
/// (512 frames by default) within one interval and make a healthy player
/// skip ahead.
pub const FAST_BATCH: usize = 32;
/// How much finer the grid is for fast streams (and for the first ticks of
/// a play, before the stream's rate is known).
pub const FINE_GRID: u32 = 8;
/// Default [`RtmpConfig::ping_interval`]: a third of the default idle
/// timeout (30 s), so a player that answers is never idle that long.
pub const DEFAULT_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// Default [`RtmpConfig::republish_grace`]: long enough for OBS's
/// automatic reconnect (its first retry comes after a few seconds) or an
/// encoder restarted by hand.
pub const DEFAULT_REPUBLISH_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
/// Buffers gathered per `writev` from a session's queue (on the stack of
/// the write, never kept per connection).
const WRITE_IOVECS: usize = 64;
/// Read buffer of a connection that does not publish: players send a
/// handshake, a few commands and acknowledgements, and every byte of a
/// buffer kept per player counts thousands of times.
pub const SMALL_READ_BUFFER: usize = 512;
/// Read buffer of a connection that only plays, once playing: what it
/// still sends is acknowledgements and the odd command.
pub const PLAYER_READ_BUFFER: usize = 128;

/// A token-bucket bound on what one connection may send us.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Average inbound bytes per second.
    pub bytes_per_sec: u64,
    /// Average inbound messages per second (each read counts as one, and
    /// each event beyond the first a read produced as one more).
    pub messages_per_sec: u64,
    /// Burst allowance, in seconds' worth of the averages.
    pub burst_secs: f64,
}

/// Settings of the RTMP handler.
#[derive(Debug, Clone)]
pub struct RtmpConfig {
    /// Chunk size, window size and parser bounds of each session.
    pub session: SessionConfig,
    /// Connection bounds and timeouts (the handshake timeout is enforced by
    /// the handler, the rest by [`TcpIngest`]).
    pub limits: IngestLimits,
    /// Optional inbound rate limit per connection; exceeding it disconnects
    /// with a reason.
    pub rate_limit: Option<RateLimit>,
    /// Most frames written to a player in one batch (one vectored write).
    pub max_batch_frames: usize,
    /// Most payload bytes written to a player in one batch.
    pub max_batch_bytes: usize,
    /// Size of the read buffer of a connection that publishes. Players and
    /// connections still handshaking read through a 4 KiB buffer: they send
    /// little, and a big buffer per player is most of its memory.
    pub read_buffer_size: usize,
    /// Merge a player's media writes (SRS calls this "merged write"): while
    /// media flows, a player wakes once per interval, on a grid shared by
    /// every connection of the handler, and sends everything that arrived
    /// meanwhile in one vectored write, instead of waking and writing per
    /// frame. All players wake at the same instants, so the runtime's
    /// threads wake once per tick for all of them. The first write after
    /// play starts (the cached GOP) is never delayed. Zero writes every
    /// frame at once.
    pub merge_writes: std::time::Duration,
    /// How often a player waiting for a publisher (before the first one, or
    /// between an unpublish and the next publish) is sent a PingRequest
    /// (user control 6, RTMP 1.0 §7.1.7). Such a player sends nothing on
    /// its own, and would be cut by the idle timeout; its PingResponse is
    /// traffic, and a waiting player that answers nothing for the idle
    /// timeout is closed. Zero sends no pings.
    pub ping_interval: std::time::Duration,
    /// How long a play may wait for a publisher before it is ended with
    /// `NetStream.Play.Stop` (checked every ping interval, or every second
    /// without pings). `None` keeps it as long as it answers pings, as
    /// nginx-rtmp does with `idle_streams on` (its default).
    pub max_publisher_wait: Option<std::time::Duration>,
    /// How long a publisher's departure is hidden from its players: when
    /// the next publisher of the stream comes within this time, players
    /// carry on with its first keyframe and configuration, on a timeline
    /// that keeps increasing, and are told nothing (SRS tells players
    /// nothing either). Past it they are sent
    /// `NetStream.Play.UnpublishNotify` and `StreamEOF`, which ends
    /// clients such as ffmpeg, and go on waiting as before. Zero tells
    /// them at once.
    pub republish_grace: std::time::Duration,
    /// How players' timestamps are corrected (SRS's `time_jitter`; full
    /// by default, as SRS).
    pub time_jitter: TimeJitter,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            limits: IngestLimits::default(),
            rate_limit: None,
            max_batch_frames: 64,
            max_batch_bytes: 1 << 20,
            read_buffer_size: 64 * 1024,
            merge_writes: DEFAULT_MERGE_WRITES,
            ping_interval: DEFAULT_PING_INTERVAL,
            max_publisher_wait: None,
            republish_grace: DEFAULT_REPUBLISH_GRACE,
            time_jitter: TimeJitter::Full,
        }
    }
}

/// Serves RTMP publishers and players from the registries of an
/// [`IngestContext`]. Run it with [`into_protocol`](Self::into_protocol).
#[derive(Debug, Clone)]
pub struct RtmpHandler {
    cfg: RtmpConfig,
    /// The merged-write grid shared by all connections.
    clock: MergeClock,
}

impl Default for RtmpHandler {
    fn default() -> Self {
        Self::new(RtmpConfig::default())
    }
}

impl RtmpHandler {
    /// A handler with `cfg`.
    pub fn new(cfg: RtmpConfig) -> Self {
        Self {
            clock: MergeClock::new(tokio::time::Instant::now(), cfg.merge_writes),
            cfg,
        }
    }

    /// The handler's settings.
    pub fn config(&self) -> &RtmpConfig {
        &self.cfg
    }

    /// This handler as an inbound protocol listening on `addr` (wrap it in an
    /// `Arc` to hand it to an engine, or call `serve` yourself).
    pub fn into_protocol(self, addr: SocketAddr) -> TcpIngest {
        let limits = self.cfg.limits.clone();
        TcpIngest::new(addr, Arc::new(self), limits)
    }

    /// Shorthand for `RtmpHandler::new(cfg).into_protocol(addr)`.
    pub fn listen(addr: SocketAddr, cfg: RtmpConfig) -> TcpIngest {
        Self::new(cfg).into_protocol(addr)
    }
}

#[async_trait]
impl ProtocolHandler for RtmpHandler {
    fn name(&self) -> &'static str {
        PROTOCOL
    }

    async fn handle_connection(
        &self,
        conn: Box<dyn Connection>,
        peer: SocketAddr,
        ctx: IngestContext,
    ) -> arcly_core::Result<()> {
        let mut c = Conn::new(&self.cfg, self.clock, conn, peer, ctx);
        let r = c.run().await;
        // Whatever happened, try to deliver the last status messages.
        let _ = c.flush().await;
        let _ = c.io.shutdown().await;
        // Read (and drop) what the peer still sends for a moment: closing a
        // socket with unread input resets it, and the peer could lose the
        // status that says why it was closed. (On the heap: a buffer held
        // in this future would be part of every connection's task.)
        let mut sink = vec![0u8; 4096];
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            while matches!(c.io.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        r
    }
}

/// Is `f` the bus's in-band marker that the publisher left (as opposed to a
/// codec's end-of-sequence, which is a video or audio frame)?
pub fn publisher_left(f: &MediaFrame) -> bool {
    f.is_end_of_stream() && f.frame_type == FrameType::Data && f.payload.is_empty()
}

/// The grid merged writes wake on: the multiples of `interval` counted from
/// `epoch`. Every player of a server (RTMP and HTTP-FLV) shares one, so the runtime wakes once
/// per tick for all of them rather than once per player.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeClock {
    epoch: tokio::time::Instant,
    interval: std::time::Duration,
}

impl MergeClock {
    /// Ticks every `interval` from `epoch`; a zero interval turns merging off
    /// (every frame is written at once).
    pub fn new(epoch: tokio::time::Instant, interval: std::time::Duration) -> Self {
        Self { epoch, interval }
    }

    /// No merging: every frame is written as soon as it arrives.
    pub fn off() -> Self {
        Self::new(tokio::time::Instant::now(), std::time::Duration::ZERO)
    }

    /// The interval (zero when off).
    pub fn interval(&self) -> std::time::Duration {
        self.interval
    }

    /// The instant the grid counts from.
    pub fn epoch(&self) -> tokio::time::Instant {
        self.epoch
    }

    /// The first tick strictly after `now`, or `None` when merging is off.
    pub fn next_tick(&self, now: tokio::time::Instant) -> Option<tokio::time::Instant> {
        self.next_tick_of(now, 1)
    }

    /// The first point strictly after `now` of the grid `div` times finer.
    pub fn next_tick_of(
        &self,
        now: tokio::time::Instant,
        div: u32,
    ) -> Option<tokio::time::Instant> {
        let iv = (self.interval / div.max(1)).as_nanos();
        if iv == 0 {
            return None;
        }
        let since = now.saturating_duration_since(self.epoch).as_nanos();
        let k = since / iv + 1;
        let off = u64::try_from(k * iv).ok()?;
        Some(self.epoch + std::time::Duration::from_nanos(off))
    }
}

/// How a player's timestamps are corrected: SRS's `time_jitter` (`full`,
/// `zero`, `off`), applied per player by [`Rebaser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeJitter {
    /// Start near zero and keep each track's timestamps increasing with the
    /// deltas the encoder sent; a step that is no plausible delta (a clock
    /// reset, a reconnect that restarts at 0, a jump forward of more than
    /// [`MAX_JITTER_MS`] past the track's last delta, or backwards by more
    /// than [`MAX_HOLD_MS`]) is replaced by the track's last good delta.
    /// A 32-bit wrap of the encoder's clock is a step like any other.
    #[default]
    Full,
    /// Start near zero, then pass the encoder's deltas through as sent,
    /// jumps included (SRS's `zero`).
    Zero,
    /// The encoder's timestamps as sent (SRS's `off`).
    Off,
}

/// A step forward this much longer than a track's last delta is a jump,
/// not a gap in the media ([`TimeJitter::Full`]). SRS uses 250 ms in both
/// directions; a second lets a stalled encoder's real gap through.
pub const MAX_JITTER_MS: i64 = 1000;
/// A step backwards up to this long is jitter: the frame is sent at the
/// track's last timestamp, and the track goes on from its highest input
/// (so no delta is lost). A longer one is a jump.
pub const MAX_HOLD_MS: i64 = 100;
/// The delta a jump is replaced by while a track has none yet (SRS's
/// `DEFAULT_FRAME_TIME_MS`).
pub const DEFAULT_FRAME_MS: i64 = 10;

/// One track's mapping in a [`Rebaser`].
#[derive(Debug, Default, Clone, Copy)]
struct TrackClock {
    /// Whether the track has been mapped since the last (re)start.
    seen: bool,
    /// The highest input timestamp of the track.
    last_in: i64,
    /// The output of the frame at `last_in`.
    last_out: i64,
    /// The last plausible delta (0 while none).
    delta: i64,
}

/// The difference `to - from` of two encoder timestamps, taking a 32-bit
/// wrap of the RTMP clock (RTMP 1.0 §5.3.1.2.1, after about 49.7 days, or
/// at once for an encoder that starts near 2^32) as the short step it is.
fn step(from: i64, to: i64) -> i64 {
    let d = to.wrapping_sub(from);
    if d < -(1 << 31) && d > -(1 << 33) {
        d + (1 << 32)
    } else if d > (1 << 31) && d < (1 << 33) {
        d - (1 << 32)
    } else {
        d
    }
}

/// Maps a publisher's timestamps onto a player's timeline: starting near
/// zero, keeping each track increasing with the encoder's deltas
/// ([`TimeJitter::Full`], the default), continuing across republish.
///
/// Each track (video, audio) keeps its own mapping, so audio and video
/// stay as far apart as the encoder put them; a track that jumps first
/// (a clock reset) takes the track's last delta, and the other track,
/// when it jumps the same way, follows its mapping, so the two stay in
/// sync across the reset. No allocation: a player keeps one of these.
#[derive(Debug, Default, Clone)]
pub struct Rebaser {
    mode: TimeJitter,
    /// Video (0) and audio (1).
    tracks: [TrackClock; 2],
    /// Where the first frame after (re)start goes on the timeline.
    resume: i64,
    /// Input and output of the first frame since (re)start
    /// ([`TimeJitter::Zero`]).
    base: Option<(i64, i64)>,
    /// The highest output timestamp so far.
    last: i64,
}

impl Rebaser {
    /// A timeline starting at zero, with full jitter correction.
    pub fn new() -> Self {
        Self::default()
    }

    /// A timeline starting at zero, corrected as `mode` says.
    pub fn with_jitter(mode: TimeJitter) -> Self {
        Self {
            mode,
            ..Self::default()
        }
    }

    /// The correction applied.
    pub fn jitter(&self) -> TimeJitter {
        self.mode
    }

    /// The next publisher (or a discontinuity) starts after what was sent.
    pub fn discontinuity(&mut self) {
        let started = self.base.take().is_some();
        if started {
            self.resume = self.last + REPUBLISH_GAP_MS;
        }
        for t in &mut self.tracks {
            t.seen = false;
        }
    }

    /// The player's `(dts, pts)` in milliseconds for `f`. Configuration and
    /// metadata go out at the current position; media is shifted so the
    /// first frame after (re)start lands at the resume point.
    pub fn map(&mut self, f: &MediaFrame) -> (i64, i64) {
        if self.mode == TimeJitter::Off {
            return (f.dts_ms(), f.pts_ms());
        }
        if f.is_config() || f.frame_type == FrameType::Data {
            return (self.last, self.last);
        }
        let (dts, pts) = (f.dts_ms(), f.pts_ms());
        let first = self.base.is_none();
        let (src, dst) = *self.base.get_or_insert((dts, self.resume));
        let out = match self.mode {
            TimeJitter::Zero => dts.saturating_sub(src).saturating_add(dst).max(0),
            _ => self.correct(usize::from(!f.is_video()), dts, first),
        };
        self.last = self.last.max(out);
        (out, out.saturating_add(pts.saturating_sub(dts)))
    }

    /// [`TimeJitter::Full`]: the output of track `k`'s frame at `dts`.
    fn correct(&mut self, k: usize, dts: i64, first: bool) -> i64 {
        let other = self.tracks[1 - k];
        // Where the other track's mapping puts this frame.
        let along_other = other
            .seen
            .then(|| other.last_out + step(other.last_in, dts));
        let t = &mut self.tracks[k];
        // The input the output stands for: a first frame moved up to the
        // resume point counts as held, so the track's next deltas put it
        // back in sync with the other one.
        let mut last_in = dts;
        let out = if first {
            self.resume
        } else if !t.seen {
            // The track's first frame since (re)start: next to the other
            // one as the encoder put it (not before the resume point), or
            // at the current position when the two clocks are far apart.
            match along_other.filter(|&o| (o - other.last_out).abs() <= MAX_JITTER_MS) {
                Some(o) if o < self.resume => {
                    last_in = dts + (self.resume - o);
                    self.resume
                }
                Some(o) => o,
                None => self.last,
            }
        } else {
            let d = step(t.last_in, dts);
            if (0..=t.delta + MAX_JITTER_MS).contains(&d) {
                if d > 0 {
                    t.delta = d;
                }
                t.last_in = dts;
                t.last_out += d;
                return t.last_out;
            }
            if (-MAX_HOLD_MS..0).contains(&d) {
                // Jitter: held, and the track goes on from its highest input.
                return t.last_out;
            }
            // A jump: where the other track went if it jumped the same way
            // (the two stay in sync), else one delta on.
            let delta = if t.delta > 0 {
                t.delta
            } else {
                DEFAULT_FRAME_MS
            };
            let floor = t.last_out;
            along_other
                .filter(|&o| o >= floor && o <= floor + delta + MAX_JITTER_MS)
                .unwrap_or(floor + delta)
        };
        *t = TrackClock {
            seen: true,
            last_in,
            last_out: out,
            delta: if first || !t.seen { 0 } else { t.delta },
        };
        out
    }
}

/// One player on one message stream.
struct Play {
    stream_id: u32,
    sub: arcly_core::bus::Subscription,
    audio: bool,
    video: bool,
    video_needs_key: bool,
    resend_audio_config: bool,
    clock: Rebaser,
    awaiting_publisher: bool,
    /// When the play started waiting for a publisher (last time).
    waiting_since: tokio::time::Instant,
    /// While the publisher's departure is hidden from the player
    /// ([`RtmpConfig::republish_grace`]): when to tell it.
    grace_until: Option<tokio::time::Instant>,
    /// The player paused: frames are dropped (the play stays at the live
    /// edge) until it resumes, from a keyframe.
    paused: bool,
}

struct Conn<'a> {
    cfg: &'a RtmpConfig,
    clock: MergeClock,
    io: Box<dyn Connection>,
    peer: SocketAddr,
    ctx: IngestContext,
    session: ServerSession,
    app: Option<String>,
    /// The query the client put after the application (`rtmp://h/live?token=x`,
    /// as OBS users do) or in the `tcUrl`; added to every publish's and
    /// play's own query.
    connect_query: Option<String>,
    connected: bool,
    publishers: HashMap<u32, PublishSession>,
    plays: Vec<Play>,
    limiter: Option<RateLimiter>,
    /// Set when the connection must close after the next flush.
    closing: Option<StreamError>,
    /// While set, player media is merged: frames wait in the subscriptions
    /// (and queued bytes in the session) until this tick of the grid.
    tick: Option<tokio::time::Instant>,
    /// Write what the session holds at the top of the loop even while
    /// merging (a tick just drained the subscriptions).
    flush_due: bool,
    /// Tick on the fine grid: a play just started, the last tick found
    /// nothing (the rate is unknown again), [`FAST_BATCH`] frames or more,
    /// or a play that had to skip.
    fine_ticks: bool,
    /// Whether media has been queued for a player yet (the first batch is
    /// never merged, so the first picture arrives at once).
    media_written: bool,
    /// When the peer last sent anything (a waiting player's PingResponse).
    last_heard: tokio::time::Instant,
}

impl<'a> Conn<'a> {
    fn new(
        cfg: &'a RtmpConfig,
        clock: MergeClock,
        io: Box<dyn Connection>,
        peer: SocketAddr,
        ctx: IngestContext,
    ) -> Self {
        Self {
            cfg,
            clock,
            io,
            peer,
            ctx,
            session: ServerSession::new(cfg.session),
            app: None,
            connect_query: None,
            connected: false,
            publishers: HashMap::new(),
            plays: Vec::with_capacity(1),
            limiter: cfg
                .rate_limit
                .map(|r| RateLimiter::new(r.bytes_per_sec, r.messages_per_sec, r.burst_secs)),
            closing: None,
            tick: None,
            flush_due: false,
            fine_ticks: true,
            media_written: false,
            last_heard: tokio::time::Instant::now(),
        }
    }

    /// Frames the plays of this connection skipped to catch up so far.
    fn skipped(&self) -> u64 {
        self.plays.iter().map(|p| p.sub.skipped()).sum()
    }

    /// The next point of the merged-write grid after now (of the fine grid,
    /// which contains the coarse one, while `fine_ticks`); now itself when
    /// merging is off.
    fn next_tick(&self) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let div = if self.fine_ticks { FINE_GRID } else { 1 };
        self.clock.next_tick_of(now, div).unwrap_or(now)
    }

    async fn run(&mut self) -> arcly_core::Result<()> {
        let mut buf = vec![0u8; SMALL_READ_BUFFER];
        let hs_timeout = self.cfg.limits.handshake_timeout;
        // On the heap and gone once connected: every byte of this future
        // is kept by every player for its whole life.
        let mut hs_timer = Some(Box::pin(tokio::time::sleep(hs_timeout)));
        // One timer for the merge ticks, re-armed per tick.
        let tick_timer = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(tick_timer);
        // Pings to players waiting for a publisher: on the heap, and only
        // while one waits.
        let mut wait_timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        let shutdown = self.ctx.shutdown.clone();
        // Registered once: a fresh `cancelled()` per wake-up would lock the
        // token's waiter list twice per wake-up of every player.
        let shutdown_signal = shutdown.cancelled();
        tokio::pin!(shutdown_signal);
        loop {
            if self.tick.is_none() || std::mem::take(&mut self.flush_due) {
                self.flush().await?;
            }
            if let Some(e) = self.closing.take() {
                return Err(e);
            }
            if !self.publishers.is_empty() && buf.len() < self.cfg.read_buffer_size {
                buf.resize(self.cfg.read_buffer_size, 0);
            } else if self.publishers.is_empty()
                && !self.plays.is_empty()
                && buf.len() > PLAYER_READ_BUFFER
            {
                buf = vec![0u8; PLAYER_READ_BUFFER];
            }
            if self.connected {
                hs_timer = None;
            }
            let waiting = self.plays.iter().any(|p| p.awaiting_publisher);
            if waiting != wait_timer.is_some() {
                wait_timer = waiting.then(|| {
                    Box::pin(tokio::time::sleep_until(
                        self.next_wait_tick(tokio::time::Instant::now()),
                    ))
                });
                if waiting {
                    // A player sends little while media flows: it has the
                    // idle timeout from now to answer a ping.
                    self.last_heard = tokio::time::Instant::now();
                }
            } else if let Some(t) = wait_timer.as_mut() {
                // A grace that began while another play already waited.
                if let Some(g) = self.first_grace_end() {
                    if g < t.deadline() {
                        t.as_mut().reset(g);
                    }
                }
            }
            let tick = self.tick;
            if let Some(t) = tick {
                if tick_timer.deadline() != t {
                    tick_timer.as_mut().reset(t);
                }
            }
            // An operator may kick any publisher of this connection.
            let mut kicks: Vec<_> = self
                .publishers
                .values()
                .map(|p| Box::pin(p.kicked().clone().cancelled_owned()))
                .collect();
            let kicked = std::future::poll_fn(|cx| {
                if kicks.iter_mut().any(|k| k.as_mut().poll(cx).is_ready()) {
                    std::task::Poll::Ready(())
                } else {
                    std::task::Poll::Pending
                }
            });
            tokio::select! {
                biased;
                _ = &mut shutdown_signal => {
                    // Tell players the stream ended before the connection goes.
                    for p in std::mem::take(&mut self.plays) {
                        let sid = p.stream_id;
                        self.session.send_status(sid, "status", status::PLAY_STOP, "server shutting down");
                        self.session.send_user_control(&UserControl::StreamEof(sid));
                    }
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.flush()).await;
                    return Ok(());
                }
                _ = kicked, if !self.publishers.is_empty() => {
                    return Err(StreamError::Unauthorized {
                        reason: "publisher kicked by the operator".into(),
                    });
                }
                _ = async {
                    match hs_timer.as_mut() {
                        Some(t) => t.await,
                        None => std::future::pending().await,
                    }
                }, if hs_timer.is_some() => {
                    return Err(StreamError::Timeout(hs_timeout));
                }
                _ = async {
                    match wait_timer.as_mut() {
                        Some(t) => t.await,
                        None => std::future::pending().await,
                    }
                }, if wait_timer.is_some() => {
                    self.on_wait_tick()?;
                    if let Some(t) = wait_timer.as_mut() {
                        t.as_mut().reset(self.next_wait_tick(tokio::time::Instant::now()));
                    }
                }
                r = self.io.read(&mut buf) => {
                    let n = r?;
                    if n == 0 {
                        return Ok(());
                    }
                    self.last_heard = tokio::time::Instant::now();
                    // Boxed: commands are rare for a player, and their
                    // futures would otherwise size every connection's task.
                    Box::pin(self.on_input(&buf[..n])).await?;
                }
                _ = &mut tick_timer, if tick.is_some() => {
                    // One wake-up per tick while media flows: take all that
                    // arrived, write it, sleep to the next tick without
                    // waiting on the bus. A tick that finds nothing goes
                    // back to waiting for the next frame.
                    let (mut got, mut full) = (0usize, false);
                    let skipped_before = self.skipped();
                    for i in 0..self.plays.len() {
                        let (n, f) = self.drain_play(i, 0)?;
                        got += n;
                        full |= f;
                    }
                    self.flush_due = true;
                    // Fine while the stream is fast, while its rate is not
                    // known (after an idle tick) and after a skip: a player
                    // the ring lapped takes few frames (it waits for a
                    // keyframe) and would otherwise go back to coarse ticks
                    // and be lapped again and again.
                    self.fine_ticks =
                        got == 0 || got >= FAST_BATCH || self.skipped() > skipped_before;
                    self.tick = if full {
                        Some(tokio::time::Instant::now())
                    } else if got > 0 {
                        Some(self.next_tick())
                    } else {
                        None
                    };
                }
                (i, r) = recv_any(&mut self.plays), if tick.is_none() => {
                    self.on_play_frame(i, r)?;
                    self.drain_play(i, 1)?;
                    if self.media_written && !self.cfg.merge_writes.is_zero() {
                        self.tick = Some(self.next_tick());
                    }
                    self.media_written = true;
                }
            }
        }
    }

    /// How often [`on_wait_tick`](Self::on_wait_tick) runs while a play
    /// waits for a publisher.
    fn wait_period(&self) -> std::time::Duration {
        if self.cfg.ping_interval.is_zero() {
            std::time::Duration::from_secs(1)
        } else {
            self.cfg.ping_interval
        }
    }

    /// The earliest end of a republish grace among the plays.
    fn first_grace_end(&self) -> Option<tokio::time::Instant> {
        self.plays.iter().filter_map(|p| p.grace_until).min()
    }

    /// When [`on_wait_tick`](Self::on_wait_tick) runs next: a wait period
    /// from `now`, or the end of a republish grace if that comes first.
    fn next_wait_tick(&self, now: tokio::time::Instant) -> tokio::time::Instant {
        let next = now + self.wait_period();
        self.first_grace_end().map_or(next, |g| g.min(next))
    }

    /// While a play waits for a publisher: tell plays whose republish grace
    /// ended that the publisher left, end plays that waited past
    /// [`RtmpConfig::max_publisher_wait`], close a peer that answered
    /// nothing for the idle timeout, and ping the others (RTMP 1.0 §7.1.7:
    /// PingRequest carries the server's time, echoed by PingResponse).
    fn on_wait_tick(&mut self) -> arcly_core::Result<()> {
        let now = tokio::time::Instant::now();
        for p in &mut self.plays {
            if p.grace_until.is_some_and(|g| g <= now) {
                p.grace_until = None;
                tell_unpublished(&mut self.session, p.stream_id);
            }
        }
        if let Some(limit) = self.cfg.max_publisher_wait {
            let before = self.plays.len();
            let session = &mut self.session;
            self.plays.retain(|p| {
                let expired = p.awaiting_publisher && now - p.waiting_since >= limit;
                if expired {
                    let sid = p.stream_id;
                    session.send_status(
                        sid,
                        "status",
                        status::PLAY_STOP,
                        &format!("no publisher within {} s", limit.as_secs()),
                    );
                    session.send_user_control(&UserControl::StreamEof(sid));
                }
                !expired
            });
            if self.plays.len() < before {
                tracing::info!(peer = %self.peer, "play ended: no publisher within {limit:?}");
                if self.plays.is_empty() && self.publishers.is_empty() {
                    self.closing = Some(StreamError::Timeout(limit));
                }
            }
        }
        let idle = self.cfg.limits.idle_timeout;
        if !idle.is_zero() && now - self.last_heard >= idle {
            // Our pings keep the socket busy, so the idle timeout of the
            // ingest layer would never fire: a peer that answers none of
            // them is gone.
            return Err(StreamError::Timeout(idle));
        }
        if !self.cfg.ping_interval.is_zero() && self.closing.is_none() {
            let ts = now.duration_since(self.clock.epoch()).as_millis() as u32;
            self.session
                .send_user_control(&UserControl::PingRequest(ts));
        }
        self.flush_due = true;
        Ok(())
    }

    /// Write everything the session holds, straight from its queue (the
    /// payloads are the bus's frames), with as few `writev` calls as the
    /// socket allows.
    async fn flush(&mut self) -> std::io::Result<()> {
        while self.session.has_transmit() {
            let (session, io) = (&self.session, &mut self.io);
            let n = std::future::poll_fn(|cx| {
                let mut iov = [IoSlice::new(&[]); WRITE_IOVECS];
                let k = session.transmit_vectored(&mut iov);
                std::pin::Pin::new(&mut *io).poll_write_vectored(cx, iov.get(..k).unwrap_or(&[]))
            })
            .await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.session.advance_transmit(n);
        }
        Ok(())
    }

    async fn on_input(&mut self, data: &[u8]) -> arcly_core::Result<()> {
        if let Err(e) = self.session.handle_input(data) {
            tracing::debug!(peer = %self.peer, error = %e, "rtmp input refused");
            return Err(e.into());
        }
        let now = std::time::Instant::now();
        if let Some(l) = &mut self.limiter {
            // The read's bytes, counted as one message with its first event.
            l.check(now, data.len())?;
        }
        let mut first = true;
        while let Some(ev) = self.session.poll_event() {
            if let Some(l) = &mut self.limiter {
                if !std::mem::take(&mut first) {
                    l.check(now, 0)?;
                }
            }
            self.on_event(ev).await?;
            if self.closing.is_some() {
                break;
            }
        }
        Ok(())
    }

    async fn on_event(&mut self, ev: ServerEvent) -> arcly_core::Result<()> {
        match ev {
            ServerEvent::ConnectRequested { app, tc_url, .. } => {
                // `rtmp://h/live?token=x` arrives as the app `live?token=x`
                // (OBS's server field); some clients only keep it in the
                // tcUrl. nginx-rtmp and SRS both take it from there.
                let (app, query) = match app.split_once('?') {
                    Some((a, q)) => (a.to_owned(), Some(q.to_owned())),
                    None => {
                        let q = tc_url
                            .as_deref()
                            .and_then(|u| u.split_once('?'))
                            .map(|(_, q)| q.to_owned());
                        (app, q)
                    }
                };
                self.connect_query = query.filter(|q| !q.is_empty());
                if let Err(e) = arcly_core::AppName::new(&app) {
                    let reason = e.to_string();
                    self.session.reject_connect(&reason);
                    self.closing = Some(e);
                } else if !self.ctx.registry.has_app(&app) {
                    // Refuse at connect, as nginx-rtmp does for an unknown
                    // application, rather than at publish or play.
                    let e = StreamError::UnknownApp(app.clone());
                    self.session.reject_connect(&e.to_string());
                    self.closing = Some(e);
                } else {
                    self.session.accept_connect()?;
                    self.app = Some(app);
                    self.connected = true;
                }
            }
            ServerEvent::PublishRequested {
                stream_id,
                stream_name,
                query,
                ..
            } => self.on_publish(stream_id, &stream_name, query).await,
            ServerEvent::PlayRequested {
                stream_id,
                stream_name,
                query,
                reset,
                ..
            } => self.on_play(stream_id, &stream_name, query, reset).await?,
            ServerEvent::Media { stream_id, frame } => {
                if let Some(p) = self.publishers.get_mut(&stream_id) {
                    p.push(frame);
                }
            }
            ServerEvent::Unpublished { stream_id } => {
                // Dropping the session unpublishes: players get the marker.
                self.publishers.remove(&stream_id);
            }
            ServerEvent::PlayStopped { stream_id } => {
                self.plays.retain(|p| p.stream_id != stream_id);
            }
            ServerEvent::ReceiveMedia {
                stream_id,
                audio,
                enabled,
            } => {
                if let Some(p) = self.plays.iter_mut().find(|p| p.stream_id == stream_id) {
                    if audio {
                        p.resend_audio_config = enabled && !p.audio;
                        p.audio = enabled;
                    } else {
                        p.video_needs_key = enabled && !p.video;
                        p.video = enabled;
                    }
                }
            }
            ServerEvent::Skipped { reason } => {
                tracing::debug!(peer = %self.peer, %reason, "rtmp tag skipped");
            }
            ServerEvent::Pause { stream_id, paused } => {
                if let Some(p) = self.plays.iter_mut().find(|p| p.stream_id == stream_id) {
                    if paused {
                        p.paused = true;
                    } else if std::mem::take(&mut p.paused) {
                        // Resume at the live edge: video from the next
                        // keyframe with its configuration, audio with its
                        // configuration first (as after receiveVideo/Audio).
                        p.video_needs_key = p.video;
                        p.resend_audio_config = p.audio;
                    }
                }
            }
            ServerEvent::BadTag { stream_id, reason } => {
                // Dropped and counted by the session; the stream goes on.
                tracing::debug!(
                    peer = %self.peer,
                    stream_id,
                    %reason,
                    bad_tags = self.session.bad_tags(),
                    "malformed rtmp tag dropped"
                );
            }
        }
        Ok(())
    }

    /// The stream's own query, then the connect query's parameters.
    fn query(&self, own: Option<String>) -> Option<String> {
        match (own.filter(|q| !q.is_empty()), &self.connect_query) {
            (Some(o), Some(c)) => Some(format!("{o}&{c}")),
            (Some(o), None) => Some(o),
            (None, c) => c.clone(),
        }
    }

    fn path(&self, stream_name: &str) -> arcly_core::Result<StreamPath> {
        StreamPath::parse(self.app.as_deref().unwrap_or(""), stream_name)
    }

    async fn on_publish(&mut self, stream_id: u32, name: &str, query: Option<String>) {
        let res = match self.path(name) {
            Ok(path) => {
                let req = PublishRequest {
                    path,
                    query: self.query(query),
                    peer: Some(self.peer),
                    protocol: PROTOCOL,
                };
                self.ctx.registry.publish(req).await
            }
            Err(e) => Err(e),
        };
        match res {
            Ok(session) => match self.session.accept_publish(stream_id) {
                Ok(()) => {
                    self.publishers.insert(stream_id, session);
                }
                Err(e) => self.closing = Some(e.into()),
            },
            Err(e) => {
                let code = match &e {
                    StreamError::AlreadyPublishing { .. } | StreamError::InvalidName { .. } => {
                        status::PUBLISH_BAD_NAME
                    }
                    StreamError::Unauthorized { .. } => status::PUBLISH_UNAUTHORIZED,
                    _ => status::PUBLISH_FAILED,
                };
                tracing::info!(peer = %self.peer, stream = name, %code, error = %e, "publish refused");
                // The connection closes with `e` either way; what the client
                // pipelined after the refused publish does not matter.
                if let Err(after) = self.session.reject_publish(stream_id, code, &e.to_string()) {
                    tracing::debug!(peer = %self.peer, error = %after, "input after a refused publish");
                }
                self.closing = Some(e);
            }
        }
    }

    async fn on_play(
        &mut self,
        stream_id: u32,
        name: &str,
        query: Option<String>,
        reset: bool,
    ) -> arcly_core::Result<()> {
        let res = match self.path(name) {
            Ok(path) => {
                let req = PlayRequest {
                    path,
                    query: self.query(query),
                    peer: Some(self.peer),
                    protocol: PROTOCOL,
                    wait_for_publisher: true,
                };
                self.ctx.registry.subscribe(req).await
            }
            Err(e) => Err(e),
        };
        match res {
            Ok(mut sub) => {
                // Legacy players cannot read Enhanced RTMP multitrack tags,
                // and every track would multiply the egress: the default
                // track only (no player asks for multitrack yet).
                sub.select_tracks(TrackSelection::Default);
                self.session.accept_play(stream_id, reset)?;
                let awaiting_publisher = sub.replay_len() == 0 && !sub.stream().is_live();
                self.plays.push(Play {
                    stream_id,
                    sub,
                    audio: true,
                    video: true,
                    video_needs_key: false,
                    resend_audio_config: false,
                    clock: Rebaser::with_jitter(self.cfg.time_jitter),
                    awaiting_publisher,
                    waiting_since: tokio::time::Instant::now(),
                    grace_until: None,
                    paused: false,
                });
            }
            Err(e) => {
                let code = match &e {
                    StreamError::StreamNotFound { .. } | StreamError::InvalidName { .. } => {
                        status::PLAY_STREAM_NOT_FOUND
                    }
                    StreamError::Unauthorized { .. } => status::PLAY_UNAUTHORIZED,
                    _ => status::PLAY_FAILED,
                };
                tracing::info!(peer = %self.peer, stream = name, %code, error = %e, "play refused");
                // The connection closes with `e` either way; what the client
                // pipelined after the refused play does not matter.
                if let Err(after) = self.session.reject_play(stream_id, code, &e.to_string()) {
                    tracing::debug!(peer = %self.peer, error = %after, "input after a refused play");
                }
                self.closing = Some(e);
            }
        }
        Ok(())
    }

    /// Take more ready frames of play `i` (without waiting) into the same
    /// batch, so one vectored write carries them all; `taken` frames are
    /// already in it. Returns the frames taken here and whether the batch
    /// bound stopped the drain.
    fn drain_play(&mut self, i: usize, taken: usize) -> arcly_core::Result<(usize, bool)> {
        let (max_frames, max_bytes) = (self.cfg.max_batch_frames, self.cfg.max_batch_bytes);
        let (mut frames, mut bytes) = (taken, 0usize);
        while frames < max_frames && bytes < max_bytes {
            let Some(p) = self.plays.get_mut(i) else {
                return Ok((frames - taken, false));
            };
            let r = match p.sub.try_recv() {
                Ok(Some(f)) => Ok(f),
                Ok(None) => return Ok((frames - taken, false)),
                Err(e) => Err(e),
            };
            if let Ok(f) = &r {
                bytes += f.payload.len();
            }
            frames += 1;
            self.on_play_frame(i, r)?;
        }
        Ok((frames - taken, true))
    }

    fn on_play_frame(
        &mut self,
        i: usize,
        r: arcly_core::Result<Arc<MediaFrame>>,
    ) -> arcly_core::Result<()> {
        let Some(p) = self.plays.get_mut(i) else {
            return Ok(());
        };
        let sid = p.stream_id;
        let f = match r {
            Ok(f) => f,
            Err(e) => {
                // The stream was removed or this player kept lagging: end the play.
                let desc = e.to_string();
                self.session
                    .send_status(sid, "status", status::PLAY_STOP, &desc);
                self.session.send_user_control(&UserControl::StreamEof(sid));
                self.plays.remove(i);
                tracing::info!(peer = %self.peer, error = %desc, "play ended");
                if self.plays.is_empty() && self.publishers.is_empty() {
                    self.closing = Some(e);
                }
                return Ok(());
            }
        };
        if publisher_left(&f) {
            if !p.awaiting_publisher {
                let now = tokio::time::Instant::now();
                p.awaiting_publisher = true;
                p.waiting_since = now;
                p.clock.discontinuity();
                if self.cfg.republish_grace.is_zero() {
                    tell_unpublished(&mut self.session, sid);
                } else {
                    // Told only if no publisher comes back in time: ffmpeg
                    // and librtmp clients end on UnpublishNotify.
                    p.grace_until = Some(now + self.cfg.republish_grace);
                }
            }
            return Ok(());
        }
        if p.awaiting_publisher {
            p.awaiting_publisher = false;
            p.clock.discontinuity();
            // Within the grace the player never learnt the publisher left:
            // the next one's configuration and first keyframe simply follow.
            if p.grace_until.take().is_none() {
                self.session
                    .send_user_control(&UserControl::StreamBegin(sid));
                self.session.send_status(
                    sid,
                    "status",
                    status::PLAY_PUBLISH_NOTIFY,
                    "A publisher started.",
                );
            }
        } else if f.flags.contains(arcly_core::FrameFlags::DISCONTINUITY) {
            p.clock.discontinuity();
        }
        if p.paused {
            return Ok(());
        }
        if f.is_audio() {
            if !p.audio {
                return Ok(());
            }
            if std::mem::take(&mut p.resend_audio_config) && !f.is_config() {
                let cfgs = p.sub.stream().configs();
                for c in cfgs.frames().filter(|c| c.is_audio() && c.is_config()) {
                    send(&mut self.session, p, c)?;
                }
            }
        } else if f.is_video() {
            if !p.video {
                return Ok(());
            }
            if p.video_needs_key && !f.is_config() {
                if !f.is_keyframe() {
                    return Ok(());
                }
                p.video_needs_key = false;
                let cfgs = p.sub.stream().configs();
                for c in cfgs.frames().filter(|c| c.is_video() && c.is_config()) {
                    send(&mut self.session, p, c)?;
                }
            }
        }
        send(&mut self.session, p, &f)
    }
}

/// Tell the player of `stream_id` that its publisher left (it keeps
/// waiting for the next one): `NetStream.Play.UnpublishNotify` and
/// `StreamEOF`, as nginx-rtmp sends with `play_restart`.
fn tell_unpublished(session: &mut ServerSession, stream_id: u32) {
    session.send_status(
        stream_id,
        "status",
        status::PLAY_UNPUBLISH_NOTIFY,
        "The publisher left; waiting for the next one.",
    );
    session.send_user_control(&UserControl::StreamEof(stream_id));
}

/// Queue `f` for player `p` on its timeline. The payload is shared, not
/// copied: only the small FLV and chunk headers are written per player.
fn send(session: &mut ServerSession, p: &mut Play, f: &Arc<MediaFrame>) -> arcly_core::Result<()> {
    send_rebased(session, p.stream_id, &mut p.clock, f)
}

fn send_rebased(
    session: &mut ServerSession,
    stream_id: u32,
    clock: &mut Rebaser,
    f: &Arc<MediaFrame>,
) -> arcly_core::Result<()> {
    let (dts, pts) = clock.map(f);
    match session.send_frame_at(stream_id, f, dts, pts) {
        Ok(()) => Ok(()),
        Err(crate::RtmpError::Limit { .. } | crate::RtmpError::Unsupported(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The next frame of any play (pending forever when there is none).
async fn recv_any(plays: &mut [Play]) -> (usize, arcly_core::Result<Arc<MediaFrame>>) {
    match plays {
        [] => std::future::pending().await,
        [one] => (0, one.sub.recv().await),
        many => {
            let mut futs: Vec<_> = many
                .iter_mut()
                .enumerate()
                .map(|(i, p)| Box::pin(async move { (i, p.sub.recv().await) }))
                .collect();
            std::future::poll_fn(|cx| {
                for f in &mut futs {
                    if let std::task::Poll::Ready(x) = f.as_mut().poll(cx) {
                        return std::task::Poll::Ready(x);
                    }
                }
                std::task::Poll::Pending
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcly_core::{CodecId, FrameFlags};
    use bytes::Bytes;

    fn v(dts: i64, pts: i64) -> MediaFrame {
        MediaFrame::video(CodecId::H264, dts, pts, Bytes::new())
    }
    fn a(ts: i64) -> MediaFrame {
        MediaFrame::audio(CodecId::Aac, ts, Bytes::new())
    }

    #[test]
    fn rebaser_starts_near_zero_and_continues_across_republish() {
        let mut r = Rebaser::new();
        let cfg = MediaFrame::config(CodecId::H264, 0, Bytes::new());
        assert_eq!(r.map(&cfg), (0, 0));
        assert_eq!(r.map(&v(90_000, 90_080)), (0, 80));
        assert_eq!(r.map(&a(89_990)), (0, 0), "audio before the base clamps");
        assert_eq!(r.map(&a(90_010)), (10, 10));
        assert_eq!(r.map(&v(90_040, 90_040)), (40, 40));
        r.discontinuity();
        assert_eq!(r.map(&cfg), (40, 40));
        let k = v(0, 0).with_flags(FrameFlags::KEYFRAME);
        assert_eq!(r.map(&k), (80, 80));
        assert_eq!(r.map(&a(0)), (80, 80));
        assert_eq!(r.map(&v(40, 120)), (120, 200));
        // Timestamps that go backwards within a track are held.
        assert_eq!(r.map(&v(20, 20)), (120, 120));
    }

    /// Map `(is_video, dts)` inputs, returning the output DTS.
    fn run(r: &mut Rebaser, input: &[(bool, i64)]) -> Vec<i64> {
        input
            .iter()
            .map(|&(video, ts)| r.map(&if video { v(ts, ts) } else { a(ts) }).0)
            .collect()
    }

    /// Interleaved 25 fps video and ~43 fps audio from `start` for `n` ms.
    fn av(start: i64, n: i64) -> Vec<(bool, i64)> {
        let mut out: Vec<(bool, i64)> = (0..n / 40).map(|i| (true, start + i * 40)).collect();
        out.extend((0..n / 23).map(|i| (false, start + i * 23)));
        out.sort_by_key(|&(video, ts)| (ts, !video));
        out
    }

    fn deltas(out: &[i64], input: &[(bool, i64)], video: bool) -> Vec<i64> {
        let ts: Vec<i64> = out
            .iter()
            .zip(input)
            .filter(|(_, i)| i.0 == video)
            .map(|(o, _)| *o)
            .collect();
        ts.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Issue 18 #7: an encoder clock reset mid-stream (both tracks back to
    /// zero) is neither frozen (held until the timestamps catch up) nor
    /// passed through: each track goes one delta on, then with the
    /// encoder's deltas, audio and video still in sync.
    #[test]
    fn a_clock_reset_keeps_the_deltas_and_the_sync() {
        let mut input = av(500_000, 4_000);
        input.extend(av(0, 4_000));
        let mut r = Rebaser::new();
        let out = run(&mut r, &input);
        for video in [true, false] {
            let d = deltas(&out, &input, video);
            let want = if video { 40 } else { 23 };
            // The track that jumps second follows the first one's mapping
            // (sync), so its step at the reset may differ a little.
            let off: Vec<_> = d.iter().filter(|&&d| d != want).collect();
            assert!(
                off.len() <= usize::from(!video) && off.iter().all(|&&d| d > 0 && d <= 2 * want),
                "video {video}: deltas {off:?} besides {want}"
            );
        }
        // Audio and video of the same input instant leave together.
        let after: Vec<_> = out.iter().zip(&input).skip(input.len() / 2 + 2).collect();
        let v0 = after.iter().find(|(_, i)| i.0 && i.1 == 920).unwrap().0;
        let a0 = after.iter().find(|(_, i)| !i.0 && i.1 == 920).unwrap().0;
        assert_eq!(v0, a0, "in sync after the reset");
    }

    /// A jump forward far beyond a frame's delta (an hour) is replaced by
    /// the last delta; a jump back (10 s) is not held either.
    #[test]
    fn big_jumps_either_way_take_the_last_delta() {
        for jump in [3_600_000, -10_000] {
            let input: Vec<(bool, i64)> = (0..50)
                .map(|i| (true, i * 40 + if i >= 25 { jump } else { 0 }))
                .collect();
            let out = run(&mut Rebaser::new(), &input);
            let want: Vec<i64> = (0..50).map(|i| i * 40).collect();
            assert_eq!(out, want, "jump {jump}");
        }
        // A real gap of under a second passes: the encoder stalled.
        let input = [(true, 0), (true, 40), (true, 840), (true, 880)];
        assert_eq!(run(&mut Rebaser::new(), &input), [0, 40, 840, 880]);
    }

    /// RTMP timestamps are 32 bits: the wrap is a step of one delta.
    #[test]
    fn the_32_bit_wrap_is_one_step() {
        let top = (1i64 << 32) - 60;
        let input: Vec<(bool, i64)> = (0..6)
            .map(|i| (true, (top + i * 40) & 0xffff_ffff))
            .collect();
        assert_eq!(run(&mut Rebaser::new(), &input), [0, 40, 80, 120, 160, 200]);
    }

    /// A reconnect that starts again at zero continues after what was sent.
    #[test]
    fn a_reconnect_at_zero_continues_the_timeline() {
        let mut r = Rebaser::new();
        let first = av(1_000, 2_000);
        let out = run(&mut r, &first);
        let end = *out.iter().max().unwrap();
        r.discontinuity();
        let second = av(0, 2_000);
        let out = run(&mut r, &second);
        assert_eq!(out[0], end + REPUBLISH_GAP_MS);
        assert!(deltas(&out, &second, true).iter().all(|&d| d == 40));
        assert!(deltas(&out, &second, false).iter().all(|&d| d == 23));
    }

    /// Audio a little behind video keeps its distance, and small backward
    /// jitter within a track is held without losing time.
    #[test]
    fn skew_and_jitter() {
        let input = [
            (true, 1_000),
            (false, 1_180),
            (true, 1_040),
            (false, 1_203),
            (false, 1_195),
            (false, 1_226),
        ];
        assert_eq!(
            run(&mut Rebaser::new(), &input),
            [0, 180, 40, 203, 203, 226]
        );
    }

    /// `zero` passes the encoder's jumps through after starting at zero;
    /// `off` passes everything.
    #[test]
    fn zero_and_off() {
        let input = [(true, 5_000), (true, 5_040), (true, 0), (true, 40)];
        let mut zero = Rebaser::with_jitter(TimeJitter::Zero);
        assert_eq!(run(&mut zero, &input), [0, 40, 0, 0]);
        let mut off = Rebaser::with_jitter(TimeJitter::Off);
        assert_eq!(run(&mut off, &input), [5_000, 5_040, 0, 40]);
    }

    #[test]
    fn only_the_bus_marker_means_the_publisher_left() {
        assert!(publisher_left(&MediaFrame::end_of_stream()));
        let eos = v(0, 0).with_flags(FrameFlags::END_OF_STREAM);
        assert!(!publisher_left(&eos));
    }

    #[test]
    fn the_play_path_shares_the_payload() {
        let (mut s, mut c, sid) = crate::testing::playing_pair().unwrap();
        let payload = Bytes::from(vec![7u8; 150_000]);
        let f = MediaFrame::video(CodecId::H264, 5000, 5040, payload.clone())
            .with_flags(FrameFlags::KEYFRAME);
        let mut clock = Rebaser::new();
        send_rebased(&mut s, sid, &mut clock, &Arc::new(f)).unwrap();
        let mut out = Vec::new();
        s.poll_transmit_vectored(&mut out);
        let range = payload.as_ptr_range();
        let shared: usize = out
            .iter()
            .filter(|b| range.contains(&b.as_ptr()))
            .map(Bytes::len)
            .sum();
        assert_eq!(
            shared,
            payload.len(),
            "every payload byte is a slice of the frame"
        );
        // And the client gets the frame back, rebased to zero.
        let wire: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
        c.handle_input(&wire).unwrap();
        let got = std::iter::from_fn(|| c.poll_event())
            .find_map(|e| match e {
                crate::session::ClientEvent::Media(m) => Some(m),
                _ => None,
            })
            .unwrap();
        assert_eq!((got.dts_ms(), got.pts_ms()), (0, 40));
        assert_eq!(got.payload, payload);
    }
}
