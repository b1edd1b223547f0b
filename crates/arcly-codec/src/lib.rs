//! Bitstream parsers for arcly-stream: the kernel's codec knowledge, in pure
//! Rust and without I/O.
//!
//! * [`nal`]: a memchr-based Annex-B start-code scanner and zero-copy NAL
//!   unit iteration shared by H.264, H.265 and VVC.
//! * [`h264`]: SPS/PPS, `AVCDecoderConfigurationRecord`, layout conversion,
//!   IDR detection.
//! * [`aac`]: ADTS headers, `AudioSpecificConfig`, raw ↔ ADTS.
//! * `h265`, `av1`, `vp9`, `vvc` (Cargo features of the same names, or
//!   `all`): their headers, configuration records and keyframe detection.
//! * [`CodecInfo`]: codec, profile, level, size, frame rate, bit depth,
//!   sample rate, channels and the RFC 6381 codec string, from a `CONFIG`
//!   frame's record; [`is_keyframe`] for any codec's canonical payload.
//!
//! Every parser takes untrusted bytes: malformed input yields a
//! [`CodecError`], never a panic, an unbounded allocation or an endless loop.
//!
//! ```
//! use arcly_codec::{aac::AudioSpecificConfig, h264};
//! use bytes::Bytes;
//!
//! // Annex-B → canonical 4-byte length prefixes → Annex-B
//! let annexb = Bytes::from_static(&[0, 0, 0, 1, 0x65, 0x88, 0x84, 0, 0, 0, 1, 0x41, 0x9a]);
//! let canonical = h264::annexb_to_length_prefixed(&annexb)?;
//! assert!(h264::contains_keyframe(&canonical));
//! assert_eq!(h264::length_prefixed_to_annexb(&canonical, 4)?, annexb);
//!
//! let asc = AudioSpecificConfig::parse(&[0x11, 0x88])?;
//! assert_eq!((asc.sampling_frequency, asc.channels()), (48_000, 1));
//! assert_eq!(asc.codec_string(), "mp4a.40.2");
//! # Ok::<(), arcly_codec::CodecError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aac;
#[cfg(feature = "av1")]
pub mod av1;
pub mod bits;
pub mod error;
pub mod h264;
#[cfg(feature = "h265")]
pub mod h265;
pub mod info;
pub mod nal;
#[cfg(feature = "vp9")]
pub mod vp9;
#[cfg(feature = "vvc")]
pub mod vvc;

pub use error::{CodecError, Result};
pub use info::{is_keyframe, CodecInfo, OpusHead};
