//! The always-on kernel of arcly-stream.
//!
//! Frames ([`frame`]), names ([`identity`]), the fan-out bus with its GOP
//! cache and live QoS ([`bus`]), the registries protocols publish and play
//! through ([`registry`], [`inbound`]), the [`engine`] that holds them, and
//! the injected policies: [`auth`], [`observe`], [`audit`], [`health`].
//! Contracts for ABR ([`transcode`]) and clustering ([`cluster`]) let hosts
//! plug in what the kernel deliberately leaves out.
//!
//! ```
//! use arcly_core::engine::{AppSpec, Engine};
//! use arcly_core::registry::{PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest};
//! use arcly_core::testing::SyntheticStream;
//! use arcly_core::StreamPath;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let engine = Engine::builder().application(AppSpec::new("live").gop_cache(120)).build();
//! let path = StreamPath::parse("live", "cam").unwrap();
//! let mut publisher = engine.publish(PublishRequest::new(path.clone(), "example")).await.unwrap();
//! for frame in SyntheticStream::new(25).take(60) {
//!     publisher.push(frame);
//! }
//! // A late joiner starts with the configuration and the last keyframe.
//! let mut player = engine.subscribe(PlayRequest::new(path, "example")).await.unwrap();
//! let first = player.recv().await.unwrap();
//! assert!(first.is_config());
//! # });
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod auth;
pub mod bus;
pub mod cluster;
pub mod engine;
pub mod error;
pub mod events;
pub mod frame;
pub mod health;
pub mod identity;
pub mod inbound;
#[cfg(feature = "ingest")]
pub mod ingest;
pub mod observe;
pub mod publish;
pub mod registry;
mod ring;
pub mod segment;
pub mod testing;
pub mod traits;
pub mod transcode;

pub use error::{Result, StreamError};
pub use frame::{CodecId, FourCc, FrameFlags, FrameType, MediaFrame, TimeBase};
pub use identity::{AppName, StreamId, StreamKey, StreamPath};
