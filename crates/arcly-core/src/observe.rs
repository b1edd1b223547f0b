//! Telemetry hooks: the [`Observer`] trait and its per-stream [`StreamProbe`].
//!
//! The kernel has no metrics singleton. A host injects an `Observer` into
//! the `EngineBuilder`; the default, [`NoopObserver`], does nothing. Per-frame
//! events go through a [`StreamProbe`] the observer hands out once per stream,
//! so an implementation can resolve its labels once and count with plain
//! atomic adds on the frame path.

use crate::auth::AuthAction;
use crate::frame::MediaFrame;
use crate::identity::{AppName, StreamPath};
use std::sync::Arc;
use std::time::Duration;

/// Per-stream counters, called on the frame path. Implementations must be
/// cheap (a handful of atomic adds) and must not block.
///
/// Threading contract: `frame_in` and `gop_cache` are only ever called by the
/// stream's single publisher (the publish path holds the publisher's state
/// exclusively), so an implementation may keep their counts in
/// single-writer cells; `frames_out` and `qos_skip` come from any subscriber's
/// task, concurrently.
pub trait StreamProbe: Send + Sync + 'static {
    /// A frame entered the stream from its publisher.
    fn frame_in(&self, _frame: &MediaFrame) {}
    /// Subscribers of `protocol` were handed `frames` frames totalling
    /// `bytes` payload bytes (reported in batches).
    fn frames_out(&self, _protocol: &'static str, _frames: u64, _bytes: u64) {}
    /// A lagging subscriber skipped `frames` frames to catch up.
    fn qos_skip(&self, _frames: u64) {}
    /// The GOP cache now holds `frames` frames of `bytes` bytes.
    fn gop_cache(&self, _frames: usize, _bytes: usize) {}
}

/// A probe that records nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopProbe;
impl StreamProbe for NoopProbe {}

/// Why a subscriber was disconnected by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// It kept falling behind the live edge.
    TooSlow,
    /// The stream was closed under it.
    StreamClosed,
}

/// Lifecycle and QoS hooks. Every method has a no-op default, so an
/// implementation overrides only what it records.
pub trait Observer: Send + Sync + 'static {
    /// A stream object was created; the returned probe receives its per-frame
    /// events until it is removed.
    fn stream_created(&self, _path: &StreamPath) -> Arc<dyn StreamProbe> {
        Arc::new(NoopProbe)
    }
    /// A stream object was removed (reaped or engine shut down).
    fn stream_removed(&self, _path: &StreamPath) {}
    /// A publisher started on `path` over `protocol`.
    fn publish_started(&self, _path: &StreamPath, _protocol: &'static str) {}
    /// The publisher of `path` went away.
    fn publish_ended(&self, _path: &StreamPath, _protocol: &'static str) {}
    /// A subscriber of `protocol` joined `path`.
    fn subscriber_joined(&self, _path: &StreamPath, _protocol: &'static str) {}
    /// A subscriber of `protocol` left `path`.
    fn subscriber_left(&self, _path: &StreamPath, _protocol: &'static str) {}
    /// A subscriber was disconnected by the kernel.
    fn subscriber_dropped(
        &self,
        _path: &StreamPath,
        _protocol: &'static str,
        _reason: &DropReason,
    ) {
    }
    /// The authenticator refused a request.
    fn auth_denied(&self, _app: &AppName, _action: AuthAction, _reason: &str) {}
    /// A connection of `protocol` was accepted.
    fn connection_opened(&self, _protocol: &'static str) {}
    /// A connection of `protocol` closed.
    fn connection_closed(&self, _protocol: &'static str) {}
    /// A connection was refused or ended by an error; `reason` is a short,
    /// bounded label (`timeout`, `limit`, `protocol`, `io`).
    fn ingest_error(&self, _protocol: &'static str, _reason: &'static str) {}
    /// A protocol handshake completed in `took`.
    fn handshake(&self, _protocol: &'static str, _took: Duration) {}
    /// A subscriber got its first frame `took` after it asked to play.
    fn first_frame(&self, _path: &StreamPath, _protocol: &'static str, _took: Duration) {}
    /// A storage operation (`put`, `append`, `delete`, …) for `path` failed;
    /// `kind` is a short, bounded label (`full`, `permission`, `io`).
    fn storage_error(&self, _path: &StreamPath, _op: &'static str, _kind: &'static str) {}
    /// A recorder of `path` dropped `frames` frames (storage too slow or failing).
    fn recording_dropped(&self, _path: &StreamPath, _frames: u64) {}
    /// An HTTP request of a media protocol (`hls`) was answered in `took`.
    /// `kind` is a short, bounded label (`playlist`, `segment`, `part`,
    /// `init`, `refused`, `other`); `blocking` says whether it could wait
    /// for media that did not exist yet (an LL-HLS blocking playlist reload,
    /// RFC 8216bis §6.2.5.2, or a part asked for before it is complete).
    fn http_request(
        &self,
        _protocol: &'static str,
        _kind: &'static str,
        _blocking: bool,
        _took: Duration,
    ) {
    }
}

/// An observer that records nothing: the default.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;
impl Observer for NoopObserver {}
