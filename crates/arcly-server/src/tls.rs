//! RTMPS and HTTPS: the certificate of `tls.cert` / `tls.key` in a
//! [`CertStore`] that a reload replaces, and the listeners over it.
//!
//! RTMPS is the RTMP handler behind the same accept loop as RTMP, with a
//! [`TlsAcceptor`] layered over each connection
//! ([`TcpIngest::with_acceptor`](arcly_core::ingest::TcpIngest::with_acceptor)).
//! HTTPS serves the HTTP router (HLS, HTTP-FLV, the API, the page) through
//! [`arcly_http::serve_with_acceptor`]; over TLS an HTTP-FLV player is
//! answered by hyper rather than on the raw socket (see the `arcly_http`
//! crate docs).

use crate::config::{Settings, TlsSettings};
use crate::error::StartError;
use arcly_core::engine::Engine;
use arcly_core::ingest::StreamAcceptor;
use arcly_http::tls::{load_pem, CertStore, CertifiedKey, TlsAcceptor, TlsError};
use arcly_http::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Read the certificate and key of `s`, when a TLS listener is on.
pub fn load(s: &Settings) -> Result<Option<CertStore>, StartError> {
    match &s.tls {
        Some(t) if s.rtmps_listen.is_some() || s.https_listen.is_some() => {
            Ok(Some(CertStore::new(read(t)?)))
        }
        _ => Ok(None),
    }
}

/// Read `t`'s certificate and key (a reload calls this before changing
/// anything).
pub fn read(t: &TlsSettings) -> Result<Arc<CertifiedKey>, TlsError> {
    load_pem(&t.cert, &t.key)
}

fn acceptor(store: &CertStore, alpn: &[&[u8]]) -> Result<Arc<dyn StreamAcceptor>, TlsError> {
    Ok(Arc::new(TlsAcceptor::new(store.clone(), alpn)?))
}

/// Serve RTMPS on `listener` until the engine shuts down.
pub fn spawn_rtmps(
    listener: TcpListener,
    s: &Settings,
    engine: &Engine,
    store: &CertStore,
) -> Result<(Option<SocketAddr>, JoinHandle<()>), StartError> {
    let tls = acceptor(store, &[])?;
    Ok(crate::rtmp::spawn_over(listener, s, engine, Some(tls)))
}

/// Serve `router` over HTTPS on `listener` until `stop` is cancelled.
pub fn spawn_https(
    listener: TcpListener,
    router: Router,
    s: &Settings,
    store: &CertStore,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, StartError> {
    let tls = acceptor(store, &[b"http/1.1"])?;
    let limits = crate::http::limits(s);
    Ok(tokio::spawn(arcly_http::serve_with_acceptor(
        listener, router, limits, tls, stop,
    )))
}
