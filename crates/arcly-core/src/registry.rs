//! What protocols depend on: [`PublishRegistry`] and [`PlaybackRegistry`].
//!
//! A wire protocol never names the `Engine`; it is handed these traits (in an
//! [`crate::inbound::IngestContext`]), so it can be driven by any host that
//! implements them, including tests.

use crate::bus::{StreamHandle, StreamStats, Subscription};
use crate::error::Result;
use crate::identity::StreamPath;
use crate::publish::PublishSession;
use async_trait::async_trait;
use std::net::SocketAddr;

/// A request to publish.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// Where to publish.
    pub path: StreamPath,
    /// The query string sent after the stream name (`token=…`), if any.
    pub query: Option<String>,
    /// The client's address, when it came over a network.
    pub peer: Option<SocketAddr>,
    /// The protocol (`rtmp`, …).
    pub protocol: &'static str,
}

impl PublishRequest {
    /// A request for `path` over `protocol`, with no query and no peer.
    pub fn new(path: StreamPath, protocol: &'static str) -> Self {
        Self {
            path,
            query: None,
            peer: None,
            protocol,
        }
    }
}

/// A request to play.
#[derive(Debug, Clone)]
pub struct PlayRequest {
    /// What to play.
    pub path: StreamPath,
    /// The query string sent after the stream name (`token=…`), if any.
    pub query: Option<String>,
    /// The client's address, when it came over a network.
    pub peer: Option<SocketAddr>,
    /// The protocol (`rtmp`, `http-flv`, …).
    pub protocol: &'static str,
    /// Subscribe even if nobody publishes yet (the player waits, as RTMP
    /// players do); otherwise an unknown stream is
    /// [`crate::StreamError::StreamNotFound`].
    pub wait_for_publisher: bool,
}

impl PlayRequest {
    /// A request for `path` over `protocol` that requires a live publisher.
    pub fn new(path: StreamPath, protocol: &'static str) -> Self {
        Self {
            path,
            query: None,
            peer: None,
            protocol,
            wait_for_publisher: false,
        }
    }
}

/// Opens publish sessions: authorizes, applies limits, registers.
#[async_trait]
pub trait PublishRegistry: Send + Sync + 'static {
    /// Authorize and register a publisher. Dropping (or closing) the returned
    /// session unpublishes.
    async fn publish(&self, req: PublishRequest) -> Result<PublishSession>;
}

/// Opens subscriptions and answers questions about live streams.
#[async_trait]
pub trait PlaybackRegistry: Send + Sync + 'static {
    /// Authorize and subscribe.
    async fn subscribe(&self, req: PlayRequest) -> Result<Subscription>;
    /// The stream at `path`, if it exists (live or waiting).
    fn stream(&self, path: &StreamPath) -> Option<StreamHandle>;
    /// Counters of every stream.
    fn list_streams(&self) -> Vec<StreamStats>;
    /// Whether `app` is served here, so a protocol can refuse a connection
    /// to an unknown application before anything is published or played.
    /// The default says yes to everything.
    fn has_app(&self, _app: &str) -> bool {
        true
    }
}

/// Both registries, as one object a protocol can hold.
pub trait MediaRegistry: PublishRegistry + PlaybackRegistry {}
impl<T: PublishRegistry + PlaybackRegistry> MediaRegistry for T {}
