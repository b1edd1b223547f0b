//! A publisher on the bus: [`PublishSession`] (what a protocol pushes
//! frames into, and drops to unpublish) and its [`KeyframeGate`].
//!
//! This module stands below the registries: [`crate::registry`] hands out
//! sessions, [`crate::inbound`] re-exports them for protocols; neither is
//! imported here.

use crate::audit::{AuditEvent, AuditOutcome, AuditPipeline};
use crate::auth::AuthAction;
use crate::bus::{PublisherState, StreamHandle};
use crate::events::EngineEvent;
use crate::frame::MediaFrame;
use crate::identity::StreamPath;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Forwards a new publish from its first video keyframe: video frames before
/// it could not be decoded by anyone. Configuration, audio and metadata pass.
#[derive(Debug, Default, Clone)]
pub struct KeyframeGate {
    open: bool,
    dropped: u64,
}

impl KeyframeGate {
    /// A closed gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `frame` may pass. Opens at the first video keyframe.
    pub fn admit(&mut self, frame: &MediaFrame) -> bool {
        if self.open || !frame.is_video() || frame.is_config() {
            return true;
        }
        if frame.is_keyframe() {
            self.open = true;
            return true;
        }
        self.dropped += 1;
        false
    }

    /// Frames refused so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

pub(crate) struct SessionParts {
    pub stream: StreamHandle,
    pub state: PublisherState,
    pub protocol: &'static str,
    pub peer: Option<SocketAddr>,
    pub publishers: Arc<AtomicUsize>,
    pub audit: Arc<AuditPipeline>,
}

/// An authorized, registered publisher. Push frames with
/// [`push`](PublishSession::push); drop it (or call
/// [`close`](PublishSession::close)) to unpublish.
pub struct PublishSession {
    parts: SessionParts,
    gate: KeyframeGate,
    closed: bool,
}

impl std::fmt::Debug for PublishSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishSession")
            .field("path", self.parts.stream.path())
            .field("protocol", &self.parts.protocol)
            .finish()
    }
}

impl PublishSession {
    pub(crate) fn new(parts: SessionParts) -> Self {
        Self {
            parts,
            gate: KeyframeGate::new(),
            closed: false,
        }
    }

    /// The stream published to.
    pub fn stream(&self) -> &StreamHandle {
        &self.parts.stream
    }

    /// The stream's address.
    pub fn path(&self) -> &StreamPath {
        self.parts.stream.path()
    }

    /// Which publisher of this stream this is (1 for the first).
    pub fn generation(&self) -> u64 {
        self.parts.state.generation
    }

    /// Cancelled when an operator kicks this publisher
    /// ([`StreamHandle::kick_publisher`]); a protocol handler selects on
    /// `kicked().cancelled()` and closes the connection.
    pub fn kicked(&self) -> &CancellationToken {
        &self.parts.state.kick
    }

    /// Publish one frame to every subscriber. Never waits: slow subscribers
    /// lag on their own. Video before the first keyframe is dropped.
    pub fn push(&mut self, frame: MediaFrame) {
        if self.gate.admit(&frame) {
            self.parts.stream.publish(&mut self.parts.state, frame);
        }
    }

    /// Unpublish now (the same as dropping the session).
    pub fn close(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        let p = &mut self.parts;
        p.stream.detach_publisher(&mut p.state);
        p.publishers.fetch_sub(1, Ordering::AcqRel);
        let path = p.stream.path().clone();
        p.stream.observer().publish_ended(&path, p.protocol);
        p.stream.events().emit(EngineEvent::Unpublished {
            path: path.clone(),
            protocol: p.protocol,
        });
        p.audit.submit(AuditEvent::now(
            AuthAction::Publish,
            path,
            p.peer,
            p.protocol,
            AuditOutcome::Ended,
        ));
        tracing::info!(stream = %p.stream.path(), protocol = p.protocol, "unpublished");
    }
}

impl Drop for PublishSession {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{CodecId, FrameFlags};
    use bytes::Bytes;

    #[test]
    fn gate_opens_at_first_keyframe() {
        let mut g = KeyframeGate::new();
        let cfg = MediaFrame::config(CodecId::H264, 0, Bytes::new());
        let p = MediaFrame::video(CodecId::H264, 0, 0, Bytes::new());
        let k = p.clone().with_flags(FrameFlags::KEYFRAME);
        let a = MediaFrame::audio(CodecId::Aac, 0, Bytes::new());
        assert!(g.admit(&cfg));
        assert!(g.admit(&a));
        assert!(!g.admit(&p));
        assert!(g.admit(&k));
        assert!(g.admit(&p));
        assert_eq!(g.dropped(), 1);
    }
}
