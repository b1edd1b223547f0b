//! The `arcly` streaming server: RTMP ingest and playback, HTTP-FLV, HLS and
//! LL-HLS, recording, Prometheus metrics, a JSON admin API and a web page,
//! wired from the arcly-* crates and running on built-in defaults.
//!
//! The binary (`cargo run --release -p arcly-server`) parses [`config::Cli`],
//! resolves [`config::Settings`], starts a [`server::Server`] and stops it
//! cleanly on SIGINT/SIGTERM. The same can be done from code:
//!
//! ```
//! use arcly_server::config::{Cli, Settings};
//! use arcly_server::server::Server;
//! use clap::Parser;
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let cli = Cli::parse_from(["arcly", "--rtmp-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"]);
//! let server = Server::start(Settings::resolve(&cli).unwrap()).await.unwrap();
//! assert!(server.banner().contains("/live/KEY.flv"));
//! server.shutdown().await;
//! # });
//! ```
//!
//! Every setting is a flag (`arcly --help`) and a key of the optional TOML
//! file (`--config`); `arcly.example.toml` beside this crate lists them all
//! with their defaults.
//!
//! # Modules
//! - [`config`]: flags, the TOML file, validation.
//! - [`auth`]: static tokens and webhooks ([`webhook`]).
//! - [`http`]: the one hyper server and its routes; [`httpflv`], [`hls`],
//!   [`api`], [`body`].
//! - [`monitor`]: live figures per stream.
//! - [`logging`]: the tracing subscriber and the audit log lines.
//! - [`server`]: start-up, banner, clean stop.
//!
//! # Kicking a publisher
//! `POST /api/streams/APP/KEY/kick` cancels the publisher's kick token
//! (`StreamHandle::kick_publisher`); its protocol handler closes the
//! connection and the stream goes offline.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod body;
pub mod config;
pub mod hls;
pub mod http;
pub mod httpflv;
pub mod logging;
pub mod monitor;
pub mod server;
pub mod webhook;
