//! MPEG-2 transport stream (ISO/IEC 13818-1) for arcly-stream: a segmenting
//! muxer that HLS players accept, and a bounded, sans-IO demuxer.
//!
//! * [`MpegTsMuxer`] implements [`arcly_core::traits::Muxer`]: frames in the
//!   kernel's canonical layout go in, 188-byte packets come out of
//!   [`Muxer::flush`](arcly_core::traits::Muxer::flush) as `Bytes`.
//! * [`TsDemuxer`] takes bytes and gives back [`MediaFrame`]s in canonical
//!   layout, with CONFIG frames synthesized from in-band parameter sets and
//!   ADTS headers. It takes untrusted input: every length is checked, memory
//!   is bounded by [`DemuxLimits`].
//!
//! ```
//! use arcly_core::frame::{CodecId, FrameFlags, MediaFrame};
//! use arcly_core::traits::Muxer;
//! use arcly_mpegts::{MpegTsMuxer, TsDemuxer};
//! use bytes::Bytes;
//!
//! let mut mux = MpegTsMuxer::new();
//! // AAC-LC, 48 kHz, mono
//! mux.write_frame(&MediaFrame::config(CodecId::Aac, 0, Bytes::from_static(&[0x11, 0x88])))?;
//! mux.start_segment()?;
//! mux.write_frame(&MediaFrame::audio(CodecId::Aac, 0, Bytes::from_static(&[0x21, 0x10, 0x04])))?;
//! let ts = mux.flush()?;
//! assert_eq!(ts.len() % 188, 0);
//!
//! let mut demux = TsDemuxer::new();
//! demux.push(&ts)?;
//! demux.finish()?;
//! let frames: Vec<MediaFrame> = std::iter::from_fn(|| demux.next_frame()).collect();
//! assert!(frames[0].is_config());
//! assert_eq!(&frames[1].payload[..], &[0x21, 0x10, 0x04]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod crc;
pub mod demux;
pub mod error;
mod es;
pub mod mux;
pub mod packet;
pub mod psi;

#[doc(no_inline)]
pub use arcly_core::frame::MediaFrame;
pub use crc::crc32_mpeg2;
pub use demux::{DemuxLimits, TsDemuxer};
pub use error::TsError;
pub use mux::{MpegTsMuxer, MuxerConfig};
