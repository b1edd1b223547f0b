//! The kernel's error type.

use std::time::Duration;

/// Errors a caller of the kernel can act on.
///
/// `#[non_exhaustive]`: new variants may appear in minor releases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// An application, stream or key name was refused on construction.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidName {
        /// Which kind of name (`app`, `stream`, `key`, `storage key`).
        kind: &'static str,
        /// The refused value (truncated to 64 characters).
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The application is not configured on this engine.
    #[error("unknown application {0:?}")]
    UnknownApp(String),
    /// No stream of that name is live.
    #[error("stream {app}/{stream} not found")]
    StreamNotFound {
        /// Application name.
        app: String,
        /// Stream name.
        stream: String,
    },
    /// A publisher already holds that stream name.
    #[error("stream {app}/{stream} is already being published")]
    AlreadyPublishing {
        /// Application name.
        app: String,
        /// Stream name.
        stream: String,
    },
    /// The engine's `max_publishers` bound is reached.
    #[error("publisher limit of {limit} reached")]
    TooManyPublishers {
        /// The configured bound.
        limit: usize,
    },
    /// The per-stream subscriber bound is reached.
    #[error("subscriber limit of {limit} reached for this stream")]
    TooManySubscribers {
        /// The configured bound.
        limit: usize,
    },
    /// The authenticator refused the request.
    #[error("not authorized: {reason}")]
    Unauthorized {
        /// The authenticator's reason, fit to show to the client.
        reason: String,
    },
    /// A subscriber fell behind too often and was disconnected.
    #[error("subscriber too slow: lagged {lag_events} times, {skipped} frames skipped")]
    SlowSubscriber {
        /// How many times it fell behind.
        lag_events: u64,
        /// Frames it skipped in total.
        skipped: u64,
    },
    /// The stream was removed (publisher gone and reaped, or engine shut down).
    #[error("stream closed")]
    StreamClosed,
    /// The engine is shutting down.
    #[error("engine is shutting down")]
    ShuttingDown,
    /// A peer or parser sent data that violates its protocol or format.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A codec or container cannot carry this media.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A resource limit was exceeded (connections, rate, size).
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// An operation did not finish in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A storage backend failed.
    #[error("storage: {0}")]
    Storage(String),
    /// An I/O error from the operating system.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl StreamError {
    /// Whether the error means "the client may not do this" (auth, limits, names).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Unauthorized { .. }
                | Self::TooManyPublishers { .. }
                | Self::TooManySubscribers { .. }
                | Self::AlreadyPublishing { .. }
                | Self::InvalidName { .. }
                | Self::UnknownApp(_)
        )
    }

    /// Shorthand for [`StreamError::Protocol`].
    pub fn protocol(msg: impl Into<String>) -> Self {
        Self::Protocol(msg.into())
    }
}

/// The kernel's result alias.
pub type Result<T, E = StreamError> = std::result::Result<T, E>;
