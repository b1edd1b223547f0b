//! Inbound protocols: [`InboundProtocol`], [`IngestContext`] and
//! [`PublishSession`].
//!
//! A new wire protocol is one `InboundProtocol`. The engine starts it with an
//! `IngestContext` (the registries, the observer, the shutdown signal); the
//! protocol opens a [`PublishSession`] through
//! [`PublishRegistry::publish`](crate::registry::PublishRegistry::publish) for
//! each publisher and pushes frames into it; closing or dropping the session
//! unpublishes. Players subscribe through the
//! [`PlaybackRegistry`](crate::registry::PlaybackRegistry).

use crate::error::Result;
use crate::observe::Observer;
use crate::registry::MediaRegistry;
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The publisher side, defined in [`crate::publish`] (below the registries)
/// and re-exported here for protocols.
pub use crate::publish::{KeyframeGate, PublishSession};

/// What a protocol worker is handed by the engine.
#[derive(Clone)]
pub struct IngestContext {
    /// Publish and play through these.
    pub registry: Arc<dyn MediaRegistry>,
    /// Report connection-level events here.
    pub observer: Arc<dyn Observer>,
    /// Cancelled when the engine shuts down: stop accepting, finish up.
    pub shutdown: CancellationToken,
}

impl std::fmt::Debug for IngestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestContext")
            .field("shutdown", &self.shutdown.is_cancelled())
            .finish()
    }
}

impl IngestContext {
    /// A context over `registry` with a no-op observer and a fresh shutdown token.
    pub fn new(registry: Arc<dyn MediaRegistry>) -> Self {
        Self {
            registry,
            observer: Arc::new(crate::observe::NoopObserver),
            shutdown: CancellationToken::new(),
        }
    }
}

/// A wire protocol the engine runs (RTMP, SRT, a test protocol).
#[async_trait]
pub trait InboundProtocol: Send + Sync + 'static {
    /// Short name for logs and metrics (`rtmp`).
    fn name(&self) -> &'static str;
    /// Run until `ctx.shutdown` is cancelled, then return after closing
    /// connections gracefully. An error stops this protocol only.
    async fn serve(self: Arc<Self>, ctx: IngestContext) -> Result<()>;
}
