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
use arcly_core::{FrameFlags, FrameType, MediaFrame, TimeBase};
use arcly_rtmp::flv::{mux_frame, FlvWriter};
use arcly_rtmp::handler::Rebaser;
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

/// One frame's tag on the player's timeline, appended to `out`.
fn push_tag(clock: &mut Rebaser, f: &MediaFrame, out: &mut Chunks) -> usize {
    if f.flags.contains(FrameFlags::DISCONTINUITY) {
        clock.discontinuity();
    }
    let (dts, pts) = clock.map(f);
    let mut g = f.clone();
    g.time_base = TimeBase::MILLIS;
    g.dts = dts;
    g.pts = pts;
    match mux_frame(&g) {
        Ok(Some(tag)) => {
            let mut v = Vec::with_capacity(3);
            FlvWriter::write_tag_vectored(&tag, &mut v);
            let n = tag.payload.len();
            for b in v {
                out.push(b);
            }
            n
        }
        Ok(None) => 0,
        Err(e) => {
            tracing::debug!(error = %e, codec = %f.codec, "frame not carried over HTTP-FLV");
            0
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
    let mut clock = Rebaser::new();
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
                    if batch.parts() > 0 {
                        let _ = tx.send(batch).await;
                    }
                    break 'outer;
                }
                Ok(f) => {
                    bytes += push_tag(&mut clock, &f, &mut batch);
                    frames += 1;
                }
                Err(e) => {
                    why = if matches!(e, arcly_core::StreamError::SlowSubscriber { .. }) {
                        "client too slow"
                    } else {
                        "stream closed"
                    };
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
