//! Origin/edge contracts: a [`ClusterRelay`] lets an edge engine find the
//! origin that holds a stream and pull it, or push a local stream to another
//! node.
//!
//! A sketch of an edge that pulls from a fixed origin:
//!
//! ```
//! use arcly_core::cluster::{ClusterRelay, OriginLocation};
//! use arcly_core::{bus::Subscription, inbound::PublishSession, Result, StreamPath};
//!
//! struct StaticOrigin(String);
//!
//! #[async_trait::async_trait]
//! impl ClusterRelay for StaticOrigin {
//!     async fn locate(&self, _path: &StreamPath) -> Result<Option<OriginLocation>> {
//!         Ok(Some(OriginLocation { url: self.0.clone() }))
//!     }
//!     async fn pull(&self, _origin: &OriginLocation, _into: PublishSession) -> Result<()> {
//!         Ok(()) // connect with a protocol client and push frames into `_into`
//!     }
//!     async fn push(&self, _to: &OriginLocation, _from: Subscription) -> Result<()> {
//!         Ok(())
//!     }
//! }
//! let _relay = StaticOrigin("rtmp://origin:1935".into());
//! ```

use crate::bus::Subscription;
use crate::error::Result;
use crate::identity::StreamPath;
use crate::inbound::PublishSession;
use async_trait::async_trait;

/// Where a stream's origin is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginLocation {
    /// A URL a protocol client can pull from or push to.
    pub url: String,
}

/// Finds and moves streams between nodes.
#[async_trait]
pub trait ClusterRelay: Send + Sync + 'static {
    /// The origin of `path`, or `None` when no node has it.
    async fn locate(&self, path: &StreamPath) -> Result<Option<OriginLocation>>;
    /// Pull the stream from `origin` into the local publish session until it ends.
    async fn pull(&self, origin: &OriginLocation, into: PublishSession) -> Result<()>;
    /// Push a local stream to `to` until it ends.
    async fn push(&self, to: &OriginLocation, from: Subscription) -> Result<()>;
}
