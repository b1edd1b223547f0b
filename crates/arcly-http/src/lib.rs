//! The HTTP host of arcly-stream: one listener loop and the services
//! mounted on it.
//!
//! Every HTTP protocol crate (HLS, HTTP-FLV, metrics, and the server's API
//! and page) implements one trait, [`HttpService`]: a routing predicate
//! ([`owns`](HttpService::owns)) and an answer ([`call`](HttpService::call)).
//! A [`Router`] asks its services in mount order; [`serve`] is the one
//! accept loop (connection bounds in total and per address, a header read
//! timeout, a graceful stop). A service that streams for a long time may
//! take a request's socket instead and write to it outside hyper
//! ([`HttpService::wants_socket`]).
//!
//! [`serve_with_acceptor`] is the same loop with a transport layered over
//! each connection (HTTPS: [`tls::TlsAcceptor`], feature `tls`). Such
//! connections are always served by hyper: the direct-socket path of
//! [`HttpService::serve_socket`] takes a plain `TcpStream`, so over TLS an
//! HTTP-FLV player gets the service's hyper answer
//! ([`HttpService::call`]), the same bytes at one more copy per write.
//!
//! The kernel (`arcly-core`) has no HTTP runtime; this crate is where the
//! hyper runtime lives, for the crates that serve HTTP.
//!
//! ```
//! use arcly_http::{full, serve, text, ConnInfo, HttpLimits, HttpService, RequestBody, ResponseFuture, Router};
//! use hyper::{Method, Request, StatusCode};
//! use tokio_util::sync::CancellationToken;
//!
//! /// Answers `GET /hello` with the caller's address.
//! struct Hello;
//!
//! impl HttpService for Hello {
//!     fn name(&self) -> &'static str {
//!         "hello"
//!     }
//!     fn owns(&self, method: &Method, path: &str) -> bool {
//!         method == Method::GET && path == "/hello"
//!     }
//!     fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
//!         let peer = ConnInfo::peer_of(&req);
//!         Box::pin(async move { text(StatusCode::OK, format!("hello {}", peer.ip())) })
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr = listener.local_addr().unwrap();
//! let stop = CancellationToken::new();
//! let host = tokio::spawn(serve(listener, Router::new().mount(Hello), HttpLimits::default(), stop.clone()));
//!
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
//! c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
//! let mut answer = String::new();
//! c.read_to_string(&mut answer).await.unwrap();
//! assert!(answer.starts_with("HTTP/1.1 200"));
//! assert!(answer.ends_with("hello 127.0.0.1\n"));
//! stop.cancel();
//! host.await.unwrap();
//! # let _ = full(bytes::Bytes::new());
//! # });
//! ```
#![forbid(unsafe_code)]

pub mod body;
pub mod listener;
pub mod service;
#[cfg(feature = "tls")]
pub mod tls;

pub use body::{from_bytes_body, full, Body, ChannelBody, Chunks};
pub use listener::{serve, serve_with_acceptor, HttpLimits};
pub use service::{text, ConnInfo, HttpService, RequestBody, ResponseFuture, Router, SocketFuture};
