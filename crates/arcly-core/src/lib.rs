//! The always-on kernel of arcly-stream.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod frame;
pub mod identity;
pub mod traits;

pub use error::{Result, StreamError};
pub use frame::{CodecId, FourCc, FrameFlags, FrameType, MediaFrame, TimeBase};
pub use identity::{AppName, StreamId, StreamKey, StreamPath};
pub mod testing;
