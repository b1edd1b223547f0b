//! HTTP-FLV: `GET /APP/KEY.flv` streams the FLV header, `onMetaData`, the
//! sequence headers, the GOP cache and then live tags as one chunked body,
//! with timestamps rebased to start near zero (FLV 10.1 §E.2–§E.4, tags
//! built by [`arcly_rtmp::flv::mux_frame`]).
//!
//! The feeder task reads the bus [`Subscription`] and sends batches into a
//! bounded [`ChannelBody`]; when the client reads slowly the send waits, the
//! subscription falls behind on the bus and skips ahead to the next
//! keyframe there. Nothing grows here.

use crate::body::{ChannelBody, Chunks};
use arcly_core::bus::Subscription;
use arcly_core::{FrameFlags, FrameType, MediaFrame};
use arcly_rtmp::flv::{mux_frame, FlvWriter};
use arcly_rtmp::handler::Rebaser;
use bytes::{BufMut, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The protocol name of HTTP-FLV players.
pub const PROTOCOL: &str = "http-flv";
/// Batches queued for one client before its feeder waits.
pub const CHANNEL_BATCHES: usize = 4;
/// Most frames in one batch.
pub const MAX_BATCH_FRAMES: usize = 64;
/// Most payload bytes in one batch.
pub const MAX_BATCH_BYTES: usize = 512 * 1024;

/// Start streaming `sub` as FLV; returns the response body. The feeder
/// ends when the publisher leaves, the client goes away, the subscription
/// fails or `shutdown` is cancelled.
pub fn stream(sub: Subscription, peer: SocketAddr, shutdown: CancellationToken) -> ChannelBody {
    let (tx, body) = ChannelBody::new(CHANNEL_BATCHES);
    tokio::spawn(feed(sub, tx, peer, shutdown));
    body
}

fn publisher_left(f: &MediaFrame) -> bool {
    f.is_end_of_stream() && f.frame_type == FrameType::Data && f.payload.is_empty()
}

/// Most bytes reserved at once for the small per-tag headers.
const SCRATCH_BYTES: usize = 8 * 1024;

/// Writes frames as FLV tags on one player's timeline. The small headers
/// (tag header, codec header, `PreviousTagSize`) go into one scratch buffer
/// and are split off as shared slices, so a frame costs no allocation of
/// its own; payloads are shared with the bus, never copied.
#[derive(Debug, Default)]
pub struct TagWriter {
    clock: Rebaser,
    scratch: BytesMut,
}

impl TagWriter {
    /// A writer whose timeline starts at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append `f`'s tag to `out` (its `PreviousTagSize` waits in the scratch
    /// buffer until the next tag or [`finish_batch`](Self::finish_batch)).
    /// Returns the payload bytes appended (0 for frames FLV does not carry).
    pub fn append(&mut self, f: &MediaFrame, out: &mut Chunks) -> usize {
        if f.flags.contains(FrameFlags::DISCONTINUITY) {
            self.clock.discontinuity();
        }
        let (dts, _) = self.clock.map(f);
        let mut tag = match mux_frame(f) {
            Ok(Some(t)) => t,
            Ok(None) => return 0,
            Err(e) => {
                tracing::debug!(error = %e, codec = %f.codec, "frame not carried over HTTP-FLV");
                return 0;
            }
        };
        // FLV 10.1 §E.4.1: the composition offset in the tag body is
        // relative, so only the tag timestamp moves to the player's timeline.
        tag.timestamp = dts as u32;
        let len = tag.body_len();
        if self.scratch.capacity() - self.scratch.len() < 16 + tag.header.len() {
            self.scratch.reserve(SCRATCH_BYTES);
        }
        self.scratch
            .put_slice(&FlvWriter::tag_header(tag.tag_type, tag.timestamp, len));
        self.scratch.put_slice(&tag.header);
        out.push(self.scratch.split().freeze());
        let n = tag.payload.len();
        out.push(tag.payload);
        self.scratch.put_u32((11 + len) as u32);
        n
    }

    /// Move the pending `PreviousTagSize` into `out` (end of a batch).
    pub fn finish_batch(&mut self, out: &mut Chunks) {
        if !self.scratch.is_empty() {
            out.push(self.scratch.split().freeze());
        }
    }
}

async fn feed(
    mut sub: Subscription,
    tx: tokio::sync::mpsc::Sender<Chunks>,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let path = sub.stream().path().clone();
    let configs = sub.stream().configs();
    let (mut has_audio, mut has_video) = (!configs.audio.is_empty(), !configs.video.is_empty());
    if !has_audio && !has_video {
        (has_audio, has_video) = (true, true);
    }
    let mut writer = TagWriter::new();
    let mut first = Chunks::new();
    first.push(FlvWriter::header(has_audio, has_video));
    if tx.send(first).await.is_err() {
        return;
    }
    let mut why = "client left";
    'outer: loop {
        let r = tokio::select! {
            biased;
            _ = shutdown.cancelled() => { why = "server stopping"; break }
            _ = tx.closed() => break,
            r = sub.recv() => r,
        };
        let mut batch = Chunks::new();
        let (mut frames, mut bytes) = (0usize, 0usize);
        let mut next: Option<arcly_core::Result<Arc<MediaFrame>>> = Some(r);
        while let Some(r) = next.take() {
            match r {
                Ok(f) if publisher_left(&f) => {
                    why = "publisher left";
                    writer.finish_batch(&mut batch);
                    if batch.parts() > 0 {
                        let _ = tx.send(batch).await;
                    }
                    break 'outer;
                }
                Ok(f) => {
                    bytes += writer.append(&f, &mut batch);
                    frames += 1;
                }
                Err(e) => {
                    why = if matches!(e, arcly_core::StreamError::SlowSubscriber { .. }) {
                        "client too slow"
                    } else {
                        "stream closed"
                    };
                    writer.finish_batch(&mut batch);
                    if batch.parts() > 0 {
                        let _ = tx.send(batch).await;
                    }
                    break 'outer;
                }
            }
            if frames < MAX_BATCH_FRAMES && bytes < MAX_BATCH_BYTES {
                next = sub.try_recv().transpose();
            }
        }
        writer.finish_batch(&mut batch);
        if batch.parts() > 0 && tx.send(batch).await.is_err() {
            break;
        }
    }
    tracing::info!(
        target: "arcly::audit",
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
