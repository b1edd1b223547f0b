//! The codec parsers' error type.

use arcly_core::StreamError;

/// Why a bitstream could not be parsed or built.
///
/// Every parser in this crate returns this error for truncated, oversized or
/// nonsensical input; none of them panics. `#[non_exhaustive]`: new variants
/// may appear in minor releases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended before the structure did. Feeding more bytes (or the
    /// whole unit) may succeed.
    #[error("{what}: truncated input")]
    Truncated {
        /// The structure being read.
        what: &'static str,
    },
    /// A field holds a value the specification forbids. The input is corrupt
    /// or not of the expected kind; retrying will not help.
    #[error("{what}: invalid value: {reason}")]
    Invalid {
        /// The structure or field being read.
        what: &'static str,
        /// Which rule was broken.
        reason: &'static str,
    },
    /// A field exceeds one of this crate's named bounds (a `MAX_*` constant):
    /// the input may be legal but is refused to bound memory and time.
    #[error("{what}: {value} exceeds the limit of {limit}")]
    LimitExceeded {
        /// The bounded quantity.
        what: &'static str,
        /// The value found.
        value: u64,
        /// The bound.
        limit: u64,
    },
    /// The input is well formed but uses a feature this crate does not
    /// handle (a reserved version, an unknown syntax extension).
    #[error("{what}: unsupported: {reason}")]
    Unsupported {
        /// The structure being read.
        what: &'static str,
        /// What is not supported.
        reason: &'static str,
    },
}

impl CodecError {
    pub(crate) const fn truncated(what: &'static str) -> Self {
        Self::Truncated { what }
    }

    pub(crate) const fn invalid(what: &'static str, reason: &'static str) -> Self {
        Self::Invalid { what, reason }
    }

    pub(crate) const fn unsupported(what: &'static str, reason: &'static str) -> Self {
        Self::Unsupported { what, reason }
    }

    pub(crate) fn limit(
        what: &'static str,
        value: impl TryInto<u64>,
        limit: impl TryInto<u64>,
    ) -> Self {
        Self::LimitExceeded {
            what,
            value: value.try_into().unwrap_or(u64::MAX),
            limit: limit.try_into().unwrap_or(u64::MAX),
        }
    }
}

impl From<CodecError> for StreamError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Unsupported { .. } => StreamError::Unsupported(e.to_string()),
            CodecError::LimitExceeded { .. } => StreamError::LimitExceeded(e.to_string()),
            _ => StreamError::Protocol(e.to_string()),
        }
    }
}

/// This crate's result alias.
pub type Result<T, E = CodecError> = std::result::Result<T, E>;
