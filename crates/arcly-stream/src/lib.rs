//! # arcly-stream
//!
//! A live-media streaming kernel: publishers push frames in, any number of
//! subscribers take them out, with instant start from a GOP cache, live QoS
//! for slow viewers and zero-copy fan-out. Wire protocols (RTMP), packagers
//! (MPEG-TS, HLS/LL-HLS), recording and metrics plug into it as separate
//! crates, re-exported here behind cargo features.
//!
//! ```
//! use arcly_stream::prelude::*;
//! let engine = Engine::builder()
//!     .max_publishers(1000)
//!     .application(AppSpec::new("live").gop_cache(120)) // instant-start
//!     .build();
//! assert_eq!(engine.list_apps().len(), 1);
//! ```
//!
//! Publishing and playing from code:
//!
//! ```
//! use arcly_stream::prelude::*;
//! use arcly_stream::testing::SyntheticStream;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let engine = Engine::builder().application(AppSpec::new("live").gop_cache(120)).build();
//! let path = StreamPath::parse("live", "cam1")?;
//! let mut publisher = engine.publish(PublishRequest::new(path.clone(), "app")).await?;
//! let mut player = engine.subscribe(PlayRequest::new(path, "app")).await?;
//! for frame in SyntheticStream::new(25).take(10) {
//!     publisher.push(frame);
//! }
//! let first = player.recv().await?; // an Arc<MediaFrame>, shared with every other player
//! assert!(first.is_config());
//! # Ok::<(), StreamError>(())
//! # }).unwrap();
//! ```
//!
//! ## Writing a sink or a protocol (feature `macros`)
//!
//! A sink is a struct and the methods it routes frames to:
//!
//! ```
//! # #[cfg(feature = "macros")] {
//! use arcly_stream::prelude::*;
//! use std::sync::Arc;
//!
//! #[derive(MediaSink, Default)]
//! #[media_sink(video = on_video, audio = on_audio, on_end = done)]
//! struct Counter { video: usize, audio: usize }
//!
//! impl Counter {
//!     async fn on_video(&mut self, _f: Arc<MediaFrame>) -> Result<()> { self.video += 1; Ok(()) }
//!     async fn on_audio(&mut self, _f: Arc<MediaFrame>) -> Result<()> { self.audio += 1; Ok(()) }
//!     async fn done(&mut self) -> Result<()> { Ok(()) }
//! }
//! # }
//! ```
//!
//! A wire protocol is its connection handler; `#[protocol]` generates the
//! `ProtocolHandler` and the accept loop through the ingest layer (see
//! `arcly_macros` for every option):
//!
//! ```
//! # #[cfg(feature = "macros")] {
//! use arcly_stream::prelude::*;
//! use arcly_stream::traits::Connection;
//!
//! struct Echo;
//!
//! #[protocol(name = "echo", port = 7000)]
//! impl Echo {
//!     async fn handle(&self, _conn: Box<dyn Connection>) -> Result<()> { Ok(()) }
//! }
//! let _ingest = Echo.tcp_ingest(); // an InboundProtocol for EngineBuilder::protocol
//! # }
//! ```
//!
//! ## Features
//! | feature | brings |
//! |---|---|
//! | `codec` (default) | [`codec`]: H.264 and AAC parsing |
//! | `codec-h265`, `codec-av1`, `codec-vp9`, `codec-vvc`, `codecs-all` | the other codecs |
//! | `ingest` | [`ingest`]: TCP accept loop, limits, rate limiter |
//! | `mpegts` | [`packager::MpegTsMuxer`] and the TS demuxer in [`mpegts`] |
//! | `hls` | [`hls`]: fMP4, playlists, LL-HLS |
//! | `rtmp` | [`protocol::rtmp`] |
//! | `http` | [`http`]: the HTTP host every HTTP service mounts on |
//! | `httpflv` | [`protocol::httpflv`]: HTTP-FLV playback |
//! | `record`, `storage-fs` | [`record`]: the recorder and the filesystem storage backend |
//! | `metrics` | [`metrics`]: Prometheus observer and health endpoints |
//! | `macros` | `#[derive(MediaSink)]` and `#[protocol]` |
//! | `full` | all of the above |
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "ingest")]
pub use arcly_core::ingest;
pub use arcly_core::{
    audit, auth, bus, cluster, engine, error, events, frame, health, identity, inbound, observe,
    registry, segment, testing, traits, transcode,
};

pub use arcly_core::{
    AppName, CodecId, FourCc, FrameFlags, FrameType, MediaFrame, Result, StreamError, StreamId,
    StreamKey, StreamPath, TimeBase,
};

/// Re-exported so users don't pin their own version (the crate and its macro).
pub use ::async_trait;
#[doc(no_inline)]
pub use ::async_trait::async_trait;
/// Re-exported so users don't pin their own version.
pub use bytes;

/// Bitstream knowledge: NAL units, decoder configuration records, codec strings.
#[cfg(feature = "codec")]
pub use arcly_codec as codec;

/// The MPEG-TS muxer and demuxer.
#[cfg(feature = "mpegts")]
pub use arcly_mpegts as mpegts;

/// HLS and LL-HLS: fMP4 segments, playlists, packaging.
#[cfg(feature = "hls")]
pub use arcly_hls as hls;

/// Recording to storage, and the filesystem `StorageBackend` (`record::FsStorage`).
#[cfg(any(feature = "record", feature = "storage-fs"))]
pub use arcly_record as record;

/// Prometheus telemetry and the `/metrics`, `/healthz`, `/readyz` service.
#[cfg(feature = "metrics")]
pub use arcly_metrics as metrics;

/// `#[derive(MediaSink)]` and `#[protocol]`.
#[cfg(feature = "macros")]
pub use arcly_macros::{protocol, MediaSink};

/// Muxers that turn frames into segments.
pub mod packager {
    pub use arcly_core::traits::{ContainerFormat, Muxer};
    #[cfg(feature = "hls")]
    pub use arcly_hls::fmp4::Fmp4Muxer;
    #[cfg(feature = "mpegts")]
    pub use arcly_mpegts::MpegTsMuxer;
}

/// The HTTP host: [`http::serve`] (one listener loop), [`http::Router`] and
/// the [`http::HttpService`] shape every HTTP service (HLS, HTTP-FLV,
/// metrics) implements.
#[cfg(feature = "http")]
pub use arcly_http as http;

/// Wire protocols.
pub mod protocol {
    /// HTTP-FLV playback: `GET /APP/KEY.flv`, an HTTP service.
    #[cfg(feature = "httpflv")]
    pub use arcly_httpflv as httpflv;
    /// RTMP and Enhanced RTMP: publish and play, FLV.
    #[cfg(feature = "rtmp")]
    pub use arcly_rtmp as rtmp;
}

/// Everything a downstream user needs, in one import.
///
/// Traits are imported by name so their methods are callable.
pub mod prelude {
    pub use arcly_core::audit::{AuditEvent, AuditPipeline, AuditSink};
    pub use arcly_core::auth::{
        AuthAction, AuthDecision, AuthRequest, PermitAll, StreamAuthenticator,
    };
    pub use arcly_core::bus::{StreamHandle, StreamStats, Subscription};
    pub use arcly_core::engine::{AppSpec, Engine, EngineBuilder};
    pub use arcly_core::health::{HealthCheck, HealthRegistry, HealthStatus};
    pub use arcly_core::inbound::{InboundProtocol, IngestContext, PublishSession};
    pub use arcly_core::observe::{NoopObserver, Observer, StreamProbe};
    pub use arcly_core::registry::{
        PlayRequest, PlaybackRegistry, PublishRegistry, PublishRequest,
    };
    pub use arcly_core::traits::{MediaSink, MediaSource, Muxer, ProtocolHandler, StorageBackend};
    pub use arcly_core::{
        AppName, CodecId, FrameFlags, FrameType, MediaFrame, Result, StreamError, StreamId,
        StreamKey, StreamPath, TimeBase,
    };
    #[cfg(feature = "macros")]
    pub use arcly_macros::{protocol, MediaSink};
    pub use bytes::Bytes;
}

/// Paths the `arcly-macros` derive macros expand against. Not a public API:
/// it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use arcly_core;
    pub use arcly_core::error::{Result, StreamError};
    pub use arcly_core::frame::{CodecId, FourCc, FrameType, MediaFrame};
    pub use arcly_core::identity::StreamPath;
    pub use arcly_core::inbound::{InboundProtocol, IngestContext};
    #[cfg(feature = "ingest")]
    pub use arcly_core::ingest::{IngestLimits, TcpIngest};
    pub use arcly_core::traits::{Connection, MediaSink, ProtocolHandler};
    pub use async_trait::async_trait;
    pub use std::sync::Arc;
}
