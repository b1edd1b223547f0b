//! HTTP-FLV: `GET /APP/KEY.flv` streams the FLV header, `onMetaData`, the
//! sequence headers, the GOP cache and then live tags as one body, with
//! timestamps rebased to start near zero (FLV 10.1 §E.2–§E.4, tag headers
//! built by [`arcly_rtmp::flv::tag_header`]).
//!
//! A [`Feeder`] reads the bus [`Subscription`] and turns it into batches of
//! tags. Writes are merged (what SRS calls "merged write"): the first batch
//! (the cached GOP) goes out at once, then a player wakes only on the ticks
//! of a [`MergeClock`], a grid shared by every player of the server, and
//! sends everything that arrived since in one batch. While frames keep
//! flowing a player sleeps tick to tick without registering on the bus; only
//! a tick that finds nothing makes it wait on the bus again.
//!
//! A `GET` of a `.flv` is served straight on its socket by [`play_direct`]:
//! one task per player that writes each batch with vectored writes, the
//! body delimited by the end of the connection (no chunked framing, no
//! hyper buffers). Other requests for a `.flv` (`HEAD`, …) go through hyper
//! with [`stream`]: a feeder task sends batches into a bounded
//! [`ChannelBody`]. Either way, when the client reads slowly the write
//! waits, the subscription falls behind on the bus and skips ahead to the
//! next keyframe there. Nothing grows here.

use arcly_core::bus::{Subscription, TrackSelection};
use arcly_core::{FrameFlags, MediaFrame};
use arcly_http::{ChannelBody, Chunks};
use arcly_rtmp::flv::{tag_header, FlvWriter, TagHeader};
pub use arcly_rtmp::handler::MergeClock;
use arcly_rtmp::handler::{publisher_left, Rebaser, TimeJitter};
use bytes::{Buf, Bytes};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The protocol name of HTTP-FLV players.
pub const PROTOCOL: &str = "http-flv";
/// Batches queued for one client before its feeder waits.
pub const CHANNEL_BATCHES: usize = 2;
/// Most frames in one batch.
pub const MAX_BATCH_FRAMES: usize = 64;
/// Most payload bytes in one batch.
pub const MAX_BATCH_BYTES: usize = 512 * 1024;
/// A stream that would bring this many frames or more per merge interval
/// (measured from the last batches) is fast: the player then wakes on a
/// grid [`BUSY_DIVISOR`] times finer, so that what arrives between two
/// wake-ups stays well within the bus's ring and the player does not lag
/// (and skip) merely for having slept. So does a player that has no
/// measure yet, right after its first batch.
pub const BUSY_BATCH_FRAMES: usize = MAX_BATCH_FRAMES / 2;
/// How much finer the grid of a fast stream is.
pub const BUSY_DIVISOR: u32 = arcly_rtmp::handler::FINE_GRID;

/// Start streaming `feeder`'s subscription as FLV; returns the response
/// body. The feeder ends when the publisher leaves and none comes back
/// within its grace ([`Feeder::with_republish_grace`]), the client goes
/// away, the subscription fails or `shutdown` is cancelled.
pub fn stream(feeder: Feeder, peer: SocketAddr, shutdown: CancellationToken) -> ChannelBody {
    let (tx, body) = ChannelBody::new(CHANNEL_BATCHES);
    tokio::spawn(feed(feeder, tx, peer, shutdown));
    body
}

/// Writes frames as FLV tags on one player's timeline. The small headers
/// (the previous tag's `PreviousTagSize`, the tag header and the codec
/// header) are built on the stack and held inline in the batch, so a frame
/// costs no allocation of its own; payloads are shared with the bus, never
/// copied.
#[derive(Debug, Default)]
pub struct TagWriter {
    clock: Rebaser,
    /// The last tag's `PreviousTagSize`, not yet written.
    pending: Option<u32>,
}

impl TagWriter {
    /// A writer whose timeline starts at zero, with full jitter correction.
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer whose timestamps are corrected as `mode` says.
    pub fn with_jitter(mode: TimeJitter) -> Self {
        Self {
            clock: Rebaser::with_jitter(mode),
            pending: None,
        }
    }

    /// Append `f`'s tag to `out` (its `PreviousTagSize` waits until the next
    /// tag or [`finish_batch`](Self::finish_batch)). Returns the payload
    /// bytes appended (0 for frames FLV does not carry).
    pub fn append(&mut self, f: &MediaFrame, out: &mut Chunks) -> usize {
        if f.flags.contains(FrameFlags::DISCONTINUITY) {
            self.clock.discontinuity();
        }
        let (dts, _) = self.clock.map(f);
        // FLV 10.1 §E.4.1: the composition offset in the tag body is
        // relative, so only the tag timestamp moves to the player's timeline.
        let cts = (f.pts_ms() - f.dts_ms()).clamp(-0x80_0000, 0x7f_ffff) as i32;
        let head = match tag_header(f, cts) {
            Ok(Some(h)) => h,
            Ok(None) => return 0,
            Err(e) => {
                tracing::debug!(error = %e, codec = %f.codec, "frame not carried over HTTP-FLV");
                return 0;
            }
        };
        let len = head.body_len(f.payload.len());
        let mut b = [0u8; 4 + 11 + TagHeader::MAX_LEN];
        let mut n = 0;
        if let Some(p) = self.pending.take() {
            b[..4].copy_from_slice(&p.to_be_bytes());
            n = 4;
        }
        b[n..n + 11].copy_from_slice(&FlvWriter::tag_header(head.tag_type, dts as u32, len));
        n += 11;
        let h = head.as_bytes();
        b[n..n + h.len()].copy_from_slice(h);
        n += h.len();
        out.push_inline(&b[..n]);
        self.pending = Some((11 + len) as u32);
        if head.with_payload {
            out.push(f.payload.clone());
            f.payload.len()
        } else {
            0
        }
    }

    /// Move the pending `PreviousTagSize` into `out` (end of a batch).
    pub fn finish_batch(&mut self, out: &mut Chunks) {
        if let Some(p) = self.pending.take() {
            out.push_inline(&p.to_be_bytes());
        }
    }
}

/// Why a [`Feeder`] stopped.
pub type StopReason = &'static str;

/// One player's source of batches: the subscription, its FLV timeline and
/// the merged-write schedule.
#[derive(Debug)]
pub struct Feeder {
    sub: Subscription,
    writer: TagWriter,
    merge: MergeClock,
    /// The tick to sleep until before draining; `None` waits on the bus.
    wake_at: Option<Instant>,
    /// A batch went out already (the first one is never delayed).
    started: bool,
    /// When the last batch was taken (to measure the stream's frame rate).
    last_batch: Option<Instant>,
    /// How long a publisher's departure waits for the next publisher.
    republish_grace: Duration,
    /// The publisher left: the play ends at this instant unless the next
    /// publisher's frames come first.
    grace_until: Option<Instant>,
}

impl Feeder {
    /// A feeder of `sub` on the schedule of `merge`. An HTTP-FLV player is
    /// a legacy FLV reader: it gets the default video and audio tracks of a
    /// multitrack publish, not tags it cannot read.
    pub fn new(mut sub: Subscription, merge: MergeClock) -> Self {
        sub.select_tracks(TrackSelection::Default);
        Self {
            sub,
            writer: TagWriter::new(),
            merge,
            wake_at: None,
            started: false,
            last_batch: None,
            republish_grace: arcly_rtmp::handler::DEFAULT_REPUBLISH_GRACE,
            grace_until: None,
        }
    }

    /// Keep the player through a publisher's departure for `grace`: when
    /// the next publisher comes in time, the body goes on with its
    /// configuration and first keyframe, on a timeline that keeps
    /// increasing (the FLV stream a player reads never ends, as with SRS).
    /// Zero ends the body when the publisher leaves. The default is RTMP's,
    /// [`DEFAULT_REPUBLISH_GRACE`](arcly_rtmp::handler::DEFAULT_REPUBLISH_GRACE).
    pub fn with_republish_grace(mut self, grace: Duration) -> Self {
        self.republish_grace = grace;
        self
    }

    /// Correct the player's timestamps as `mode` says (full by default).
    /// Call before the first batch.
    pub fn with_time_jitter(mut self, mode: TimeJitter) -> Self {
        self.writer = TagWriter::with_jitter(mode);
        self
    }

    /// The subscription.
    pub fn subscription(&self) -> &Subscription {
        &self.sub
    }

    /// Append the next batch of tags to `out`: the first call returns what
    /// is ready at once, later ones wait for the next tick of the merge
    /// clock (or the next frame, when the stream had gone quiet) and take
    /// everything available, up to [`MAX_BATCH_FRAMES`] and
    /// [`MAX_BATCH_BYTES`]. `Err` means the stream ended for this player;
    /// `out` may still hold a last batch to send.
    pub async fn next_batch(&mut self, out: &mut Chunks) -> Result<(), StopReason> {
        loop {
            let mut frames = 0usize;
            let mut bytes = 0usize;
            let skipped_before = self.sub.skipped();
            // Cancel-safe: what was appended to `out` stays there, and a
            // tick being waited for is kept in `wake_at`.
            match self.wake_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => {
                    let r = match self.grace_until {
                        Some(end) => match tokio::time::timeout_at(end, self.sub.recv()).await {
                            Ok(r) => r,
                            Err(_) => {
                                self.writer.finish_batch(out);
                                return Err("publisher left");
                            }
                        },
                        None => self.sub.recv().await,
                    };
                    self.push(r, out, &mut frames, &mut bytes)?;
                    if self.started {
                        // The stream had gone quiet: merge what follows this
                        // frame up to the next tick, of the fine grid while
                        // the rate is unknown.
                        let now = Instant::now();
                        let next = if self.last_batch.is_none() {
                            self.merge.next_tick_of(now, BUSY_DIVISOR)
                        } else {
                            self.merge.next_tick(now)
                        };
                        if let Some(t) = next {
                            self.wake_at = Some(t);
                            tokio::time::sleep_until(t).await;
                        }
                    }
                }
            }
            while frames < MAX_BATCH_FRAMES && bytes < MAX_BATCH_BYTES {
                let r = match self.sub.try_recv() {
                    Ok(Some(f)) => Ok(f),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                self.push(r, out, &mut frames, &mut bytes)?;
            }
            self.writer.finish_batch(out);
            let full = frames >= MAX_BATCH_FRAMES || bytes >= MAX_BATCH_BYTES;
            if out.remaining() == 0 {
                // A tick that found nothing: wait on the bus, and take the
                // stream's rate as unknown again (a stream that paused may
                // come back fast).
                self.wake_at = None;
                self.last_batch = None;
                continue;
            }
            self.started = true;
            let now = Instant::now();
            // A player the ring lapped takes few frames (it waits for a
            // keyframe): by the count alone it would go back to coarse
            // ticks and be lapped again and again.
            let lapped = self.sub.skipped() > skipped_before;
            let fast = match self.last_batch.replace(now) {
                // Frames this batch took, scaled to one merge interval.
                Some(t) if now > t => {
                    frames as f64 * self.merge.interval().as_secs_f64() / (now - t).as_secs_f64()
                        >= BUSY_BATCH_FRAMES as f64
                }
                _ => true,
            };
            let busy = fast || lapped;
            self.wake_at = if full {
                // More is waiting: the next batch goes as soon as this one.
                Some(now)
            } else if busy {
                self.merge.next_tick_of(now, BUSY_DIVISOR)
            } else {
                self.merge.next_tick(now)
            };
            return Ok(());
        }
    }

    fn push(
        &mut self,
        r: arcly_core::Result<Arc<MediaFrame>>,
        out: &mut Chunks,
        frames: &mut usize,
        bytes: &mut usize,
    ) -> Result<(), StopReason> {
        match r {
            Ok(f) if publisher_left(&f) => {
                if self.republish_grace.is_zero() {
                    self.writer.finish_batch(out);
                    return Err("publisher left");
                }
                // The next publisher starts after what was sent.
                self.writer.clock.discontinuity();
                self.grace_until
                    .get_or_insert(Instant::now() + self.republish_grace);
                Ok(())
            }
            Ok(f) => {
                self.grace_until = None;
                *bytes += self.writer.append(&f, out);
                *frames += 1;
                Ok(())
            }
            Err(e) => {
                self.writer.finish_batch(out);
                Err(
                    if matches!(e, arcly_core::StreamError::SlowSubscriber { .. }) {
                        "client too slow"
                    } else {
                        "stream closed"
                    },
                )
            }
        }
    }
}

/// The FLV file header for the stream `sub` plays (audio and video flags
/// from its configuration; both when it has none yet).
fn file_header(sub: &Subscription) -> bytes::Bytes {
    let configs = sub.stream().configs();
    let (mut has_audio, mut has_video) = (!configs.audio.is_empty(), !configs.video.is_empty());
    if !has_audio && !has_video {
        (has_audio, has_video) = (true, true);
    }
    FlvWriter::header(has_audio, has_video)
}

fn audit_stop(sub: &Subscription, peer: SocketAddr, why: StopReason) {
    let path = sub.stream().path();
    // The kernel's audit trail records the play's end; this line adds why.
    tracing::info!(
        event = "stop",
        app = path.app.as_str(),
        stream = path.stream.as_str(),
        peer = %peer,
        protocol = PROTOCOL,
        reason = why,
        skipped = sub.skipped(),
        "stop"
    );
}

async fn feed(
    mut feeder: Feeder,
    tx: tokio::sync::mpsc::Sender<Chunks>,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let why = 'run: {
        if tx
            .send(Chunks::from(file_header(&feeder.sub)))
            .await
            .is_err()
        {
            break 'run "client left";
        }
        loop {
            let mut batch = Chunks::new();
            let r = tokio::select! {
                biased;
                _ = &mut cancelled => break 'run "server stopping",
                _ = tx.closed() => break 'run "client left",
                r = feeder.next_batch(&mut batch) => r,
            };
            let sent = batch.parts() == 0 || tx.send(batch).await.is_ok();
            match r {
                Err(why) => break 'run why,
                Ok(()) if !sent => break 'run "client left",
                Ok(()) => {}
            }
        }
    };
    audit_stop(&feeder.sub, peer, why);
}

/// The response head of an HTTP-FLV stream served by [`play_direct`]: the
/// body runs until the connection closes (RFC 9112 §6.3 rule 8).
pub const DIRECT_RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: video/x-flv\r\n\
Cache-Control: no-cache\r\n\
Access-Control-Allow-Origin: *\r\n\
Connection: close\r\n\r\n";

/// How long a player's write may make no progress by default before the
/// player is dropped: a client that stopped reading (a stopped process, a
/// zero window) holds its connection slot, its subscription and its batch
/// at most this long, and does not keep its stream from being reaped.
pub const DEFAULT_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Serve `feeder`'s subscription as FLV straight on `tcp` (whose request
/// was read already): the response head, then one vectored write per
/// batch, until the publisher leaves and none comes back within the
/// feeder's grace, the client goes away, the subscription fails or
/// `shutdown` is cancelled. The connection is closed at the end. A write
/// stalled for [`DEFAULT_WRITE_TIMEOUT`] drops the player.
pub fn play_direct(
    tcp: TcpStream,
    feeder: Feeder,
    peer: SocketAddr,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = ()> {
    // Not an async fn: the player's future is play_direct_bounded's own,
    // not one more layer around it.
    play_direct_bounded(tcp, feeder, peer, shutdown, DEFAULT_WRITE_TIMEOUT)
}

/// [`play_direct`] with a write that makes no progress for `write_timeout`
/// dropping the player.
pub async fn play_direct_bounded(
    tcp: TcpStream,
    mut feeder: Feeder,
    peer: SocketAddr,
    shutdown: CancellationToken,
    write_timeout: std::time::Duration,
) {
    // Registered once: a fresh `cancelled()` per batch would take the
    // shared token's lock twice a tick for every player.
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    // Likewise registered once for the socket's read readiness.
    let gone = client_gone(&tcp);
    tokio::pin!(gone);
    let why = 'run: {
        let mut out = Chunks::new();
        out.push(Bytes::from_static(DIRECT_RESPONSE_HEAD));
        out.push(file_header(&feeder.sub));
        let mut stop = None;
        loop {
            let w = tokio::select! {
                biased;
                _ = &mut cancelled => break 'run "server stopping",
                w = write_all(&tcp, &mut out, write_timeout) => w,
            };
            match w {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    break 'run "client stopped reading"
                }
                Err(_) => break 'run "client left",
            }
            if let Some(why) = stop {
                break 'run why;
            }
            // A fresh list per batch: an idle player holds no capacity (a
            // GOP batch's would otherwise stay for the connection's life).
            out = Chunks::new();
            let r = tokio::select! {
                biased;
                _ = &mut cancelled => break 'run "server stopping",
                _ = &mut gone => break 'run "client left",
                r = feeder.next_batch(&mut out) => r,
            };
            stop = r.err();
        }
    };
    audit_stop(&feeder.sub, peer, why);
}

/// Completes when the client closes its side or the socket fails; what it
/// sends meanwhile is read and dropped.
async fn client_gone(tcp: &TcpStream) {
    loop {
        if tcp.readable().await.is_err() {
            return;
        }
        let mut b = [0u8; 1024];
        match tcp.try_read(&mut b) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Write all of `out` with non-blocking vectored writes; `TimedOut` when
/// the socket stays unwritable for `stall` (the timer exists only while a
/// write waits).
async fn write_all(
    tcp: &TcpStream,
    out: &mut Chunks,
    stall: std::time::Duration,
) -> std::io::Result<()> {
    while out.remaining() > 0 {
        match write_some(tcp, out) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => out.advance(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Boxed: the timer only exists while the socket is full, and
                // the player's future stays small the rest of the time.
                match Box::pin(tokio::time::timeout(stall, tcp.writable())).await {
                    Ok(r) => r?,
                    Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Most buffers handed to one `writev` (the slices live on the stack of this
/// synchronous call, not in the player's future).
const IOV_MAX: usize = 128;

fn write_some(tcp: &TcpStream, out: &Chunks) -> std::io::Result<usize> {
    let mut iov = [IoSlice::new(&[]); IOV_MAX];
    let n = out.chunks_vectored(&mut iov);
    tcp.try_write_vectored(&iov[..n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcly_core::engine::{AppSpec, Engine};
    use arcly_core::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
    use arcly_core::{CodecId, StreamPath};
    use bytes::{Buf, Bytes};
    use std::time::Duration;

    const TICK: Duration = Duration::from_millis(100);

    fn video(ts: i64, key: bool) -> MediaFrame {
        let f = MediaFrame::video(CodecId::H264, ts, ts, Bytes::from(vec![0u8; 1000]));
        if key {
            f.with_flags(FrameFlags::KEYFRAME)
        } else {
            f
        }
    }

    async fn setup() -> (arcly_core::inbound::PublishSession, Subscription) {
        let engine = Engine::builder()
            .application(AppSpec::new("live").gop_cache(600))
            .build();
        let path = StreamPath::parse("live", "cam").unwrap();
        let mut publisher = engine
            .publish(PublishRequest::new(path.clone(), "test"))
            .await
            .unwrap();
        publisher.push(MediaFrame::config(
            CodecId::H264,
            0,
            Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff]),
        ));
        for i in 0..30 {
            publisher.push(video(i * 10, i == 0));
        }
        let sub = engine
            .subscribe(PlayRequest::new(path, PROTOCOL))
            .await
            .unwrap();
        (publisher, sub)
    }

    /// A legacy FLV reader is not sent the other tracks of a multitrack
    /// publish.
    #[tokio::test]
    async fn players_take_the_default_tracks() {
        let (_publisher, sub) = setup().await;
        assert_eq!(sub.tracks(), TrackSelection::All);
        let feeder = Feeder::new(sub, MergeClock::new(Instant::now(), TICK));
        assert_eq!(feeder.subscription().tracks(), TrackSelection::Default);
    }

    /// Frames arriving every 10 ms go out once per 100 ms tick, on the
    /// shared grid; the cached GOP is not delayed.
    #[tokio::test(start_paused = true)]
    async fn merged_writes_batch_per_tick() {
        let epoch = Instant::now();
        let (mut publisher, sub) = setup().await;
        // Join 30 ms into a tick: the grid is the epoch's, not the player's.
        tokio::time::advance(Duration::from_millis(30)).await;
        let mut feeder = Feeder::new(sub, MergeClock::new(epoch, TICK));
        let mut out = Chunks::new();
        let t0 = Instant::now();
        feeder.next_batch(&mut out).await.unwrap();
        assert_eq!(Instant::now(), t0, "the GOP batch must not wait");
        assert!(out.remaining() > 30 * 1000, "config + 30 cached frames");

        let producer = tokio::spawn(async move {
            for i in 30..130 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                publisher.push(video(i * 10, i % 60 == 0));
            }
            publisher
        });
        let mut sizes = Vec::new();
        while sizes.iter().sum::<usize>() < 100 {
            let mut out = Chunks::new();
            feeder.next_batch(&mut out).await.unwrap();
            let at = Instant::now() - epoch;
            // The first batches after the quiet start are on the fine grid
            // (the stream's rate is not known yet; the timer rounds to the
            // millisecond), the others on the tick.
            if sizes.len() < 2 {
                let fine = (TICK / BUSY_DIVISOR).as_nanos();
                let off = (at.as_nanos() + 1_000_000) % fine;
                assert!(off <= 2_000_000, "woke off the fine grid at {at:?}");
            } else {
                assert_eq!(
                    at.as_nanos() % TICK.as_nanos(),
                    0,
                    "woke off the grid at {at:?}"
                );
            }
            // A tag: header + codec header, payload, PreviousTagSize.
            let frames = out.remaining() / (11 + 5 + 1000 + 4);
            sizes.push(frames);
        }
        drop(producer.await.unwrap());
        // 100 frames over 1 s: about ten batches of about ten, not 100 writes.
        assert!(sizes.len() <= 13, "not merged: {sizes:?}");
        assert!(sizes.iter().filter(|&&n| n >= 9).count() >= 8, "{sizes:?}");
    }

    /// A stream far faster than real time (2 000 frames a second into a
    /// 256-frame ring, 200 ms ticks) is followed on a finer grid, also after
    /// a pause: the player never lags, skips or misses a frame.
    #[tokio::test(start_paused = true)]
    async fn a_fast_stream_does_not_lag_between_ticks() {
        let engine = Engine::builder()
            .application(AppSpec::new("live").gop_cache(600).channel_capacity(256))
            .build();
        let path = StreamPath::parse("live", "fast").unwrap();
        let mut publisher = engine
            .publish(PublishRequest::new(path.clone(), "test"))
            .await
            .unwrap();
        publisher.push(video(0, true));
        let sub = engine
            .subscribe(PlayRequest::new(path, PROTOCOL))
            .await
            .unwrap();
        let tick = Duration::from_millis(200);
        let mut feeder = Feeder::new(sub, MergeClock::new(Instant::now(), tick));
        let producer = tokio::spawn(async move {
            for i in 1..=2000 {
                if i % 2 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                if i == 1000 {
                    // A pause (a publisher's loop point): the player goes
                    // idle and must not come back on coarse ticks.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                publisher.push(video(i, i % 500 == 0));
            }
            publisher
        });
        let tag = 11 + 5 + 1000 + 4;
        let mut got = 0;
        while got < 2001 * tag {
            let mut out = Chunks::new();
            let r = tokio::time::timeout(Duration::from_secs(5), feeder.next_batch(&mut out)).await;
            assert!(
                matches!(r, Ok(Ok(()))),
                "stuck after {} frames, {} skipped",
                got / tag,
                feeder.subscription().skipped()
            );
            got += out.remaining();
        }
        drop(producer.await.unwrap());
        assert_eq!(feeder.subscription().skipped(), 0);
        assert_eq!(got, 2001 * tag);
    }

    /// Issue 18 #10: the publisher leaves and the next one comes within
    /// the grace: the body goes on, with the new configuration and on a
    /// timeline that keeps increasing. When none comes, it ends once the
    /// grace is over.
    #[tokio::test(start_paused = true)]
    async fn players_stay_through_a_republish_within_the_grace() {
        let engine = Engine::builder()
            .application(AppSpec::new("live").gop_cache(600))
            .build();
        let path = StreamPath::parse("live", "re").unwrap();
        let config = MediaFrame::config(CodecId::H264, 0, Bytes::from_static(&[1, 0x64, 0, 0x1f]));
        let mut publisher = engine
            .publish(PublishRequest::new(path.clone(), "test"))
            .await
            .unwrap();
        publisher.push(config.clone());
        for i in 0..10 {
            publisher.push(video(90_000 + i * 40, i == 0));
        }
        let sub = engine
            .subscribe(PlayRequest::new(path.clone(), PROTOCOL))
            .await
            .unwrap();
        let grace = Duration::from_secs(5);
        let mut feeder = Feeder::new(sub, MergeClock::off()).with_republish_grace(grace);
        let mut tags = Vec::new();
        let take = |out: Chunks, tags: &mut Vec<(u8, u32)>| {
            let mut b = out.clone();
            let mut body = b.copy_to_bytes(b.remaining());
            // Tags, each followed (or preceded) by a PreviousTagSize.
            while body.remaining() >= 11 {
                if body[0] != 8 && body[0] != 9 && body[0] != 18 {
                    body.advance(4);
                    continue;
                }
                let kind = body[0];
                let len = u32::from_be_bytes([0, body[1], body[2], body[3]]) as usize;
                let ts = u32::from_be_bytes([body[7], body[4], body[5], body[6]]);
                tags.push((kind, ts));
                body.advance(11 + len);
            }
        };
        let mut out = Chunks::new();
        feeder.next_batch(&mut out).await.unwrap();
        take(out, &mut tags);
        drop(publisher);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut publisher = engine
            .publish(PublishRequest::new(path.clone(), "test"))
            .await
            .unwrap();
        publisher.push(config.clone());
        for i in 0..10 {
            publisher.push(video(i * 40, i == 0));
        }
        while tags.len() < 22 {
            let mut out = Chunks::new();
            let r = tokio::time::timeout(Duration::from_secs(1), feeder.next_batch(&mut out)).await;
            assert!(matches!(r, Ok(Ok(()))), "the body ended: {r:?}");
            take(out, &mut tags);
        }
        let video_ts: Vec<u32> = tags.iter().filter(|t| t.0 == 9).map(|t| t.1).collect();
        assert_eq!(video_ts.len(), 22, "two configurations, twenty pictures");
        assert!(
            video_ts.windows(2).all(|w| w[1] >= w[0]),
            "timestamps keep increasing: {video_ts:?}"
        );
        // No publisher within the grace: the body ends when it is over.
        drop(publisher);
        let left = Instant::now();
        let r = loop {
            let mut out = Chunks::new();
            if let Err(why) = feeder.next_batch(&mut out).await {
                break why;
            }
        };
        assert_eq!(r, "publisher left");
        assert_eq!(Instant::now() - left, grace);
    }

    /// With merging off every frame goes out on its own.
    #[tokio::test(start_paused = true)]
    async fn merge_off_writes_each_frame() {
        let (mut publisher, sub) = setup().await;
        let mut feeder = Feeder::new(sub, MergeClock::off());
        let mut out = Chunks::new();
        feeder.next_batch(&mut out).await.unwrap();
        for i in 30..35 {
            publisher.push(video(i * 10, false));
            let mut out = Chunks::new();
            feeder.next_batch(&mut out).await.unwrap();
            assert_eq!(out.remaining(), 11 + 5 + 1000 + 4);
        }
    }

    /// A player's future lives as long as the player: keep it small.
    #[tokio::test]
    async fn direct_player_future_is_small() {
        let (_publisher, sub) = setup().await;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = l.local_addr().unwrap();
        let _client = TcpStream::connect(peer).await.unwrap();
        let (tcp, _) = l.accept().await.unwrap();
        let feeder = Feeder::new(sub, MergeClock::off());
        let fut = play_direct(tcp, feeder, peer, CancellationToken::new());
        let size = std::mem::size_of_val(&fut);
        eprintln!("play_direct future: {size} bytes");
        assert!(size < 2048, "{size} bytes");
    }

    /// A direct player gets the head, the FLV header and the GOP at once,
    /// and its task ends when the client leaves or the server stops.
    #[tokio::test]
    async fn direct_player_ends_with_the_client_or_the_server() {
        use tokio::io::AsyncReadExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        for client_leaves in [true, false] {
            let (_publisher, sub) = setup().await;
            let mut client = TcpStream::connect(addr).await.unwrap();
            let (tcp, peer) = l.accept().await.unwrap();
            let stop = CancellationToken::new();
            let merge = MergeClock::new(Instant::now(), TICK);
            let feeder = Feeder::new(sub, merge).with_republish_grace(Duration::ZERO);
            let player = tokio::spawn(play_direct(tcp, feeder, peer, stop.clone()));
            let want = DIRECT_RESPONSE_HEAD.len() + 13 + 30 * (11 + 5 + 1000 + 4);
            let mut got = vec![0u8; want];
            tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got))
                .await
                .unwrap()
                .unwrap();
            assert!(got.starts_with(DIRECT_RESPONSE_HEAD));
            assert_eq!(&got[DIRECT_RESPONSE_HEAD.len()..][..3], b"FLV");
            if client_leaves {
                drop(client);
            } else {
                stop.cancel();
            }
            tokio::time::timeout(Duration::from_secs(5), player)
                .await
                .expect("the player did not end")
                .unwrap();
        }
    }

    /// Issue 18 #9: a data event (`onCuePoint`) goes out as a script tag
    /// carrying the message as the publisher sent it.
    #[test]
    fn data_events_are_script_tags() {
        let cue = arcly_rtmp::amf0::encode_all(&[
            arcly_rtmp::amf0::Amf0Value::string("onCuePoint"),
            arcly_rtmp::amf0::Amf0Value::string("ad-break"),
        ]);
        let mut w = TagWriter::new();
        let mut out = Chunks::new();
        w.append(&video(0, true), &mut out);
        let n = w.append(&MediaFrame::data_event(0, cue.clone()), &mut out);
        w.finish_batch(&mut out);
        assert_eq!(n, cue.len());
        let all = out.copy_to_bytes(out.remaining());
        let tag = 11 + 5 + 1000 + 4;
        assert_eq!(all[tag], 18, "a script tag");
        assert_eq!(&all[tag + 11..tag + 11 + cue.len()], &cue[..]);
    }

    /// The inline headers make the same bytes as the FLV file writer.
    #[test]
    fn tags_match_the_file_writer() {
        let frames = [
            MediaFrame::config(CodecId::H264, 0, Bytes::from_static(&[1, 0x64, 0, 0x1f])),
            MediaFrame::config(CodecId::Aac, 0, Bytes::from_static(&[0x11, 0x90])),
            video(0, true),
            MediaFrame::audio(CodecId::Aac, 5, Bytes::from(vec![3u8; 300])),
            MediaFrame::video(CodecId::H264, 40, 120, Bytes::from(vec![9u8; 700])),
            MediaFrame::video(CodecId::H265, 80, 80, Bytes::from(vec![8u8; 50])),
            MediaFrame::audio(CodecId::Opus, 90, Bytes::from(vec![2u8; 80])),
        ];
        let mut want = bytes::BytesMut::new();
        for f in &frames {
            FlvWriter::write_frame(f, &mut want).unwrap();
        }
        let mut w = TagWriter::new();
        let mut out = Chunks::new();
        for (i, f) in frames.iter().enumerate() {
            w.append(f, &mut out);
            if i == 3 {
                w.finish_batch(&mut out);
            }
        }
        w.finish_batch(&mut out);
        assert_eq!(out.copy_to_bytes(out.remaining()), want.freeze());
    }

    #[test]
    fn ticks_are_multiples_of_the_interval() {
        let epoch = Instant::now();
        let c = MergeClock::new(epoch, TICK);
        assert_eq!(c.next_tick(epoch), Some(epoch + TICK));
        assert_eq!(
            c.next_tick(epoch + Duration::from_millis(250)),
            Some(epoch + Duration::from_millis(300))
        );
        assert_eq!(
            c.next_tick(epoch + Duration::from_millis(300)),
            Some(epoch + Duration::from_millis(400))
        );
        assert_eq!(
            MergeClock::new(epoch, Duration::ZERO).next_tick(epoch),
            None
        );
    }
}
