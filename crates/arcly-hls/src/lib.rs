//! HLS and LL-HLS packaging for arcly-stream.
//!
//! * [`fmp4`]: a fragmented-MP4 / CMAF [`Muxer`](arcly_core::traits::Muxer).
//! * [`playlist`]: media (LL-HLS) and multivariant playlist model and renderer.
//! * [`checker`]: RFC 8216bis rule checker for any playlist text.
//! * [`stream`]: [`HlsStream`](stream::HlsStream), the sans-IO segmenter.
//!
//! ```
//! use arcly_core::traits::Muxer;
//! let mut mux = arcly_hls::fmp4::Fmp4Muxer::new();
//! assert!(mux.init_segment()?.is_none()); // no track configured yet
//! # Ok::<(), arcly_core::StreamError>(())
//! ```
#![forbid(unsafe_code)]

pub mod checker;
mod clock;
pub mod fmp4;
pub mod packager;
pub mod playlist;
pub mod stream;
