//! [`StartError`]: why the server did not start.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting was refused.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// `RTMP` or `HTTP`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The TLS certificate or key cannot be used.
    #[error("TLS certificate (tls.cert / tls.key): {0}")]
    Tls(#[from] arcly_http::tls::TlsError),
    /// The recording directory is missing or not writable.
    #[error("recording directory {dir}: {reason}")]
    RecordDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}
