//! The error type of this crate.

use arcly_core::StreamError;

/// Errors from the RTMP parsers and state machines.
///
/// Every variant means "this connection cannot go on" unless noted; the
/// driver logs it and closes that connection only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RtmpError {
    /// The input ended inside a value that needs more bytes (AMF0, FLV).
    #[error("truncated {what}: need {need} more bytes")]
    Truncated {
        /// What was being parsed.
        what: &'static str,
        /// How many more bytes were needed (at least).
        need: usize,
    },
    /// A named bound was exceeded (message size, chunk size, depth, ...).
    #[error("limit exceeded: {what} is {value}, limit {limit}")]
    Limit {
        /// Which bound.
        what: &'static str,
        /// The value seen.
        value: u64,
        /// The bound.
        limit: u64,
    },
    /// An AMF0 marker this crate does not accept (including the AMF3 switch).
    #[error("unsupported AMF0 marker 0x{0:02x}")]
    UnsupportedAmfMarker(u8),
    /// The peer asked for AMF3 object encoding, which this server refuses.
    #[error("AMF3 is not supported; use objectEncoding 0")]
    Amf3Refused,
    /// A string was not valid UTF-8.
    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(&'static str),
    /// The handshake was malformed (bad version, bad length).
    #[error("handshake: {0}")]
    Handshake(String),
    /// The peer violated the chunk stream or message protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// An FLV tag or Enhanced RTMP header could not be parsed.
    #[error("flv: {0}")]
    Flv(String),
    /// A codec or feature this crate cannot carry (not fatal for the connection
    /// when it concerns one tag: the driver may drop the tag).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The peer refused or failed a request (connect rejected, publish
    /// refused), with the status code and description it sent.
    #[error("rejected by peer: {code}: {description}")]
    Rejected {
        /// The `onStatus`/`_error` code, e.g. `NetStream.Publish.BadName`.
        code: String,
        /// The peer's description.
        description: String,
    },
    /// A call was made in a state where it is not allowed.
    #[error("invalid state: {0}")]
    InvalidState(&'static str),
    /// An I/O error from the driver.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl RtmpError {
    pub(crate) fn protocol(msg: impl Into<String>) -> Self {
        Self::Protocol(msg.into())
    }
    pub(crate) fn truncated(what: &'static str, need: usize) -> Self {
        Self::Truncated { what, need }
    }
    pub(crate) fn limit(what: &'static str, value: u64, limit: u64) -> Self {
        Self::Limit { what, value, limit }
    }
}

impl From<RtmpError> for StreamError {
    fn from(e: RtmpError) -> Self {
        match e {
            RtmpError::Io(io) => StreamError::Io(io),
            RtmpError::Limit { .. } => StreamError::LimitExceeded(e.to_string()),
            RtmpError::Unsupported(_)
            | RtmpError::Amf3Refused
            | RtmpError::UnsupportedAmfMarker(_) => StreamError::Unsupported(e.to_string()),
            other => StreamError::Protocol(other.to_string()),
        }
    }
}

/// This crate's result alias.
pub type Result<T, E = RtmpError> = std::result::Result<T, E>;
