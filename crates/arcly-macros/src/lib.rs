//! # arcly-macros
//!
//! Two macros that take the boilerplate out of extending arcly-stream:
//!
//! - [`#[derive(MediaSink)]`](derive@MediaSink): a struct and a method become
//!   a sink, with frames routed by kind and filtered by codec.
//! - [`#[protocol]`](macro@protocol): a connection handler becomes a wire
//!   protocol the engine serves through the shared TCP accept loop.
//!
//! The generated code names only `::arcly_stream::__private::…`, so it works
//! from a crate that depends on the `arcly-stream` facade alone (with its
//! `ingest` feature for `#[protocol]`).
//!
//! ## `#[derive(MediaSink)]`, before and after
//!
//! Before: the trait by hand, with the routing written out.
//!
//! ```
//! use arcly_stream::prelude::*;
//! use std::sync::Arc;
//!
//! struct VideoCounter { pictures: usize, configs: usize }
//!
//! #[arcly_stream::async_trait]
//! impl MediaSink for VideoCounter {
//!     async fn on_frame(&mut self, frame: Arc<MediaFrame>) -> Result<()> {
//!         if !frame.is_video() || frame.codec != CodecId::H264 {
//!             return Ok(());
//!         }
//!         if frame.is_config() {
//!             self.configs += 1;
//!         } else {
//!             self.pictures += 1;
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! After: say what you want, write only the handlers.
//!
//! ```
//! use arcly_macros::MediaSink;
//! use arcly_stream::prelude::*;
//! use arcly_stream::testing::SyntheticStream;
//! use std::sync::Arc;
//!
//! #[derive(MediaSink, Default)]
//! #[media_sink(filter(video), codecs(H264), config = on_config, video = on_picture)]
//! struct VideoCounter { pictures: usize, configs: usize }
//!
//! impl VideoCounter {
//!     async fn on_config(&mut self, _frame: Arc<MediaFrame>) -> Result<()> {
//!         self.configs += 1;
//!         Ok(())
//!     }
//!     async fn on_picture(&mut self, _frame: Arc<MediaFrame>) -> Result<()> {
//!         self.pictures += 1;
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mut sink = VideoCounter::default();
//! for frame in SyntheticStream::new(25).take(21) { // 2 configs, then 10 × (video, audio)
//!     sink.on_frame(Arc::new(frame)).await?;
//! }
//! assert_eq!((sink.configs, sink.pictures), (1, 10));
//! # Ok::<(), StreamError>(())
//! # }).unwrap();
//! ```
//!
//! ### Options of `#[media_sink(...)]` on the struct
//!
//! | option | handler signature | receives |
//! |---|---|---|
//! | `on_frame = m` | `async fn m(&mut self, frame: Arc<MediaFrame>) -> Result<()>` | every frame no other handler took |
//! | `video = m`, `audio = m`, `data = m` | same | frames of that kind |
//! | `config = m` | same | decoder configuration frames (of any kind) |
//! | `end_of_stream = m` | same | the marker a departing publisher leaves, whatever the filters |
//! | `on_start = m` | `async fn m(&mut self, path: &StreamPath) -> Result<()>` | once, before the first frame |
//! | `on_end = m` | `async fn m(&mut self) -> Result<()>` | once, when the stream ends |
//! | `on_error = m` | `async fn m(&mut self, error: &StreamError)` | once, if the subscription fails |
//! | `filter(video, audio, data)` | | keep only these kinds; the rest is dropped |
//! | `codecs(H264, Aac, "avc1")` | | keep only these codecs (`CodecId` variants or FourCCs) |
//! | `crate = path` | | where the `arcly-stream` facade is, if renamed |
//!
//! A frame passes the filters, then goes to the first of: `config` (if it is
//! a configuration frame), its kind's handler, `on_frame`, the delegate.
//! Lifecycle hooks that are not named do nothing, or forward to the delegate.
//! Options may be split over several `#[media_sink]` attributes.
//!
//! ### Wrappers: `#[media_sink(delegate)]` on a field
//!
//! ```
//! use arcly_macros::MediaSink;
//! use arcly_stream::prelude::*;
//! use arcly_stream::testing::{CollectingSink, SyntheticStream};
//! use std::sync::Arc;
//!
//! /// Passes audio only to any inner sink.
//! #[derive(MediaSink)]
//! #[media_sink(filter(audio))]
//! struct AudioOnly<S> {
//!     #[media_sink(delegate)]
//!     inner: S,
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let inner = CollectingSink::new();
//! let mut sink = AudioOnly { inner: inner.clone() };
//! for frame in SyntheticStream::new(25).take(6) {
//!     sink.on_frame(Arc::new(frame)).await?;
//! }
//! sink.on_end().await?;
//! assert!(inner.frames().iter().all(|f| f.is_audio()));
//! assert_eq!(inner.frames().len(), 3);
//! assert!(inner.ended());
//! # Ok::<(), StreamError>(())
//! # }).unwrap();
//! ```
//!
//! ## `#[protocol]`, before and after
//!
//! Before: a `ProtocolHandler` impl, then the ingest wiring at each use.
//!
//! ```
//! use arcly_stream::ingest::{IngestLimits, TcpIngest};
//! use arcly_stream::prelude::*;
//! use arcly_stream::traits::Connection;
//! use std::{net::SocketAddr, sync::Arc};
//!
//! struct Echo;
//!
//! #[arcly_stream::async_trait]
//! impl ProtocolHandler for Echo {
//!     fn name(&self) -> &'static str { "echo" }
//!     async fn handle_connection(
//!         &self, conn: Box<dyn Connection>, _peer: SocketAddr, _ctx: IngestContext,
//!     ) -> Result<()> {
//!         let (mut r, mut w) = tokio::io::split(conn);
//!         tokio::io::copy(&mut r, &mut w).await?;
//!         Ok(())
//!     }
//! }
//!
//! let ingest = TcpIngest::new(([0, 0, 0, 0], 7777).into(), Arc::new(Echo), IngestLimits::default());
//! ```
//!
//! After: the connection handler and nothing else.
//!
//! ```
//! use arcly_macros::protocol;
//! use arcly_stream::prelude::*;
//! use arcly_stream::traits::Connection;
//!
//! struct Echo;
//!
//! #[protocol(name = "echo", port = 7777)]
//! impl Echo {
//!     async fn handle(&self, conn: Box<dyn Connection>) -> Result<()> {
//!         let (mut r, mut w) = tokio::io::split(conn);
//!         tokio::io::copy(&mut r, &mut w).await?;
//!         Ok(())
//!     }
//! }
//!
//! let engine = Engine::builder()
//!     .application(AppSpec::new("live"))
//!     .protocol(Echo.inbound()) // TcpIngest on 0.0.0.0:7777, default limits
//!     .build();
//! assert_eq!(Echo::PROTOCOL_NAME, "echo");
//! assert_eq!(Echo::DEFAULT_PORT, 7777);
//! ```
//!
//! The crate's `examples/line_ingest.rs` is a complete protocol: a line-based
//! ingest that publishes into an engine.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use proc_macro::TokenStream;

mod protocol;
mod sink;
mod util;

/// Implements `MediaSink` for a struct by routing frames to its methods.
///
/// Configure it with `#[media_sink(...)]` on the struct (handlers, `filter`,
/// `codecs`) and optionally `#[media_sink(delegate)]` on one field holding an
/// inner sink. Handlers are inherent `async fn`s; see the
/// [crate docs](crate#options-of-media_sink-on-the-struct) for their
/// signatures and the routing order.
///
/// ```
/// use arcly_macros::MediaSink;
/// use arcly_stream::prelude::*;
/// use std::sync::Arc;
///
/// #[derive(MediaSink)]
/// #[media_sink(on_frame = handle_frame, on_end = finish)]
/// struct Printer;
///
/// impl Printer {
///     async fn handle_frame(&mut self, frame: Arc<MediaFrame>) -> Result<()> {
///         println!("{frame:?}");
///         Ok(())
///     }
///     async fn finish(&mut self) -> Result<()> {
///         println!("done");
///         Ok(())
///     }
/// }
/// ```
#[proc_macro_derive(MediaSink, attributes(media_sink))]
pub fn derive_media_sink(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    sink::derive(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes a type a wire protocol: implements `ProtocolHandler` by calling its
/// connection handler, and adds constructors that serve it through the
/// shared TCP accept loop (`TcpIngest`: limits, idle timeouts, one task per
/// connection, graceful shutdown).
///
/// Options: `name = "..."` (required: the name in logs and metrics),
/// `port = N` (the default port), `handler = method` (default `handle`),
/// `crate = path` (where the facade is, if renamed).
///
/// Put it on the inherent `impl` block holding the handler, where the
/// handler's signature is checked:
/// `async fn handle(&self, conn: Box<dyn Connection>, peer: SocketAddr, ctx: IngestContext) -> Result<()>`
/// (`peer` and `ctx` may be left out; parameters are recognised by type).
/// Or put it on the struct, and write that handler with all four parameters
/// in any inherent `impl`.
///
/// Added to the type: `PROTOCOL_NAME`, `tcp_ingest_on(addr)`,
/// `tcp_ingest_with(addr, limits)`, and with `port`: `DEFAULT_PORT`,
/// `tcp_ingest()` and `inbound()` (an `Arc<dyn InboundProtocol>` for
/// `EngineBuilder::protocol`).
///
/// ```
/// use arcly_macros::protocol;
/// use arcly_stream::prelude::*;
/// use arcly_stream::traits::Connection;
/// use std::net::SocketAddr;
///
/// #[protocol(name = "discard", port = 9009)]
/// struct Discard;
///
/// impl Discard {
///     async fn handle(&self, mut conn: Box<dyn Connection>, _peer: SocketAddr, _ctx: IngestContext) -> Result<()> {
///         tokio::io::copy(&mut conn, &mut tokio::io::sink()).await?;
///         Ok(())
///     }
/// }
///
/// let ingest = Discard.tcp_ingest_on("127.0.0.1:0".parse().unwrap());
/// assert_eq!(ingest.open_connections(), 0);
/// ```
#[proc_macro_attribute]
pub fn protocol(args: TokenStream, item: TokenStream) -> TokenStream {
    protocol::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
