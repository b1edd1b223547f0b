//! HLS and LL-HLS packaging for arcly-stream.
//!
//! * [`fmp4`]: a fragmented-MP4 / CMAF [`Muxer`](arcly_core::traits::Muxer).
//! * [`playlist`]: media (LL-HLS) and multivariant playlist model and renderer.
//! * [`checker`]: RFC 8216bis rule checker for any playlist text.
//! * [`stream`]: [`HlsStream`](stream::HlsStream), the sans-IO segmenter
//!   (segment boundaries from the shared `arcly_core::segment` clock).
//! * [`packager`]: [`Packager`](packager::Packager) follows one engine
//!   stream; [`HlsRegistry`](packager::HlsRegistry) owns one per stream.
//! * [`http`]: [`HlsService`](http::HlsService), the hyper 1.x delivery
//!   service, an [`arcly_http::HttpService`] mounted on the host's router.
//!
//! Serving an engine's streams over HLS:
//!
//! ```no_run
//! use arcly_core::engine::{AppSpec, Engine};
//! use arcly_hls::http::{HlsService, HttpConfig};
//! use arcly_http::{serve, HttpLimits, Router};
//! use arcly_hls::packager::{HlsRegistry, PackagerConfig};
//! use std::sync::Arc;
//! # async fn run() -> std::io::Result<()> {
//! let engine = Engine::builder().application(AppSpec::new("live")).build();
//! let hls = HlsRegistry::new(Arc::new(engine.clone()), PackagerConfig::default());
//! hls.follow(&engine); // a packager for every stream published
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let service = HlsService::new(hls, HttpConfig::default());
//! let router = Router::new().mount(service); // /live/KEY/index.m3u8
//! serve(listener, router, HttpLimits::default(), engine.shutdown_token()).await;
//! # Ok(()) }
//! ```
//!
//! The sans-IO muxer on its own:
//!
//! ```
//! use arcly_core::traits::Muxer;
//! let mut mux = arcly_hls::fmp4::Fmp4Muxer::new();
//! assert!(mux.init_segment()?.is_none()); // no track configured yet
//! # Ok::<(), arcly_core::StreamError>(())
//! ```
#![forbid(unsafe_code)]

pub mod access;
pub mod checker;
mod clock;
pub mod fmp4;
pub mod http;
pub mod packager;
pub mod playlist;
pub mod stream;
