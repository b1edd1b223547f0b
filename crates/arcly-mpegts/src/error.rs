//! Errors of the muxer and the demuxer.

use arcly_core::StreamError;

/// What went wrong while reading or writing a transport stream.
///
/// Every variant converts into [`StreamError`]: malformed input becomes
/// [`StreamError::Protocol`], a bound hit becomes
/// [`StreamError::LimitExceeded`], media TS cannot carry becomes
/// [`StreamError::Unsupported`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsError {
    /// A packet did not start with the sync byte 0x47 (ISO/IEC 13818-1
    /// §2.4.3.3); the demuxer skipped `skipped` bytes to find sync again.
    #[error("lost sync: skipped {skipped} bytes to the next 0x47")]
    SyncLost {
        /// Bytes dropped before sync was found again (or pending).
        skipped: usize,
    },
    /// A packet's header or adaptation field is inconsistent.
    #[error("malformed packet on PID {pid:#06x}: {reason}")]
    BadPacket {
        /// The packet's PID.
        pid: u16,
        /// What was wrong.
        reason: &'static str,
    },
    /// A PSI section (PAT, PMT) is malformed or its CRC does not match.
    #[error("malformed {table} section: {reason}")]
    BadSection {
        /// `PAT` or `PMT`.
        table: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// A PES packet header or payload is malformed.
    #[error("malformed PES on PID {pid:#06x}: {reason}")]
    BadPes {
        /// The elementary stream's PID.
        pid: u16,
        /// What was wrong.
        reason: &'static str,
    },
    /// An elementary stream payload (NAL units, ADTS, Opus framing, a
    /// configuration record) is malformed.
    #[error("malformed {codec} payload: {reason}")]
    BadPayload {
        /// The codec name.
        codec: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// The continuity counter of a PID skipped: packets were lost.
    #[error("continuity counter on PID {pid:#06x} jumped from {expected} to {got}")]
    ContinuityError {
        /// The PID.
        pid: u16,
        /// The counter that was expected.
        expected: u8,
        /// The counter that arrived.
        got: u8,
    },
    /// A named bound was hit (PES size, stream count, section size).
    #[error("limit {limit} = {value} exceeded")]
    LimitExceeded {
        /// The name of the limit constant.
        limit: &'static str,
        /// Its value.
        value: usize,
    },
    /// A codec structure (configuration record, ADTS header) failed to
    /// parse or cannot be written.
    #[error(transparent)]
    Codec(#[from] arcly_codec::CodecError),
    /// The codec (or this configuration of it) cannot be carried in MPEG-TS
    /// by this muxer.
    #[error("MPEG-TS cannot carry {0}")]
    Unsupported(String),
}

impl From<TsError> for StreamError {
    fn from(e: TsError) -> Self {
        match e {
            TsError::Unsupported(_)
            | TsError::Codec(arcly_codec::CodecError::Unsupported { .. }) => {
                StreamError::Unsupported(e.to_string())
            }
            TsError::LimitExceeded { .. } => StreamError::LimitExceeded(e.to_string()),
            _ => StreamError::Protocol(e.to_string()),
        }
    }
}
