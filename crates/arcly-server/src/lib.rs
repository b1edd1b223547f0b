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
//! The server only composes: every protocol lives in a library crate
//! (`arcly-rtmp`, `arcly-httpflv`, `arcly-hls`, `arcly-metrics`, on the
//! `arcly-http` host), and this crate reads the settings, binds the
//! listeners and mounts the services.
//!
//! # Modules
//! - [`config`]: flags, the TOML file, validation.
//! - [`server`]: [`Server::start`](server::Server::start), the start-up in
//!   order, and the clean stop; each step is a module of its own:
//!   - [`listen`]: check the recording directory, bind the listeners;
//!   - [`engine`]: the engine and its policies ([`auth`]: static tokens,
//!     signed tokens ([`jwt`]) and [`webhook`]s; [`logging`]: the audit
//!     log lines);
//!   - [`record`]: the recorder; [`recordings`]: recordings listed,
//!     deleted and played back over HTTP;
//!   - [`rtmp`]: the RTMP listener;
//!   - [`tls`]: RTMPS and HTTPS, and their certificate;
//!   - [`hls`]: HLS packaging and its play authorization;
//!   - [`http`]: the HTTP listener and its mounts ([`api`], [`page`]),
//!     and who may use the API ([`admin`]).
//! - [`reload`]: SIGHUP and `POST /api/reload` re-read the configuration
//!   and apply tokens, webhooks and the certificate live.
//! - [`monitor`]: live figures per stream.
//! - [`banner`]: where to publish and where to play.
//! - [`token`]: the `arcly token` subcommand (issue a JWT, print its URLs).
//!
//! # Kicking a publisher
//! `POST /api/streams/APP/KEY/kick` cancels the publisher's kick token
//! (`StreamHandle::kick_publisher`); its protocol handler closes the
//! connection and the stream goes offline.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod auth;
pub mod banner;
pub mod config;
pub mod engine;
pub mod error;
pub mod hls;
pub mod http;
pub mod jwt;
pub mod listen;
pub mod logging;
pub mod monitor;
pub mod page;
pub mod record;
pub mod recordings;
pub mod reload;
pub mod rtmp;
pub mod server;
pub mod tls;
pub mod token;
pub mod webhook;
