//! The [`EventBus`]: lifecycle and QoS events for hosts that want to react
//! (webhooks, admin UIs, logs). Delivery is best-effort: a listener that
//! falls behind misses events, and nobody listening costs next to nothing.

use crate::identity::StreamPath;
use std::net::SocketAddr;
use tokio::sync::broadcast;

/// Something that happened in an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// A publisher started.
    Published {
        /// The stream.
        path: StreamPath,
        /// The protocol it came over.
        protocol: &'static str,
        /// Its address, when known.
        peer: Option<SocketAddr>,
    },
    /// A publisher left.
    Unpublished {
        /// The stream.
        path: StreamPath,
        /// The protocol it came over.
        protocol: &'static str,
    },
    /// A subscriber joined.
    SubscriberJoined {
        /// The stream.
        path: StreamPath,
        /// The protocol it plays over.
        protocol: &'static str,
    },
    /// A subscriber left.
    SubscriberLeft {
        /// The stream.
        path: StreamPath,
        /// The protocol it played over.
        protocol: &'static str,
    },
    /// A subscriber fell behind and skipped frames.
    SubscriberLagged {
        /// The stream.
        path: StreamPath,
        /// The protocol it plays over.
        protocol: &'static str,
        /// Frames skipped.
        skipped: u64,
    },
    /// An idle stream was removed.
    StreamRemoved {
        /// The stream.
        path: StreamPath,
    },
}

/// A broadcast of [`EngineEvent`]s. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct EventBus {
    tx: broadcast::Sender<EngineEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(1024)
    }
}

impl EventBus {
    /// A bus that buffers up to `capacity` events per listener.
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Listen from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.tx.subscribe()
    }

    /// Emit an event to current listeners (dropped when there are none).
    pub fn emit(&self, event: EngineEvent) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(event);
        }
    }
}
