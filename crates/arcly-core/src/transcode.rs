//! Adaptive-bitrate contracts: a [`Transcoder`] turns one source stream into
//! renditions described by [`RenditionSpec`]s, each published as its own
//! stream so every protocol and packager can serve it.
//!
//! The kernel ships no transcoder (it has no codec libraries); a host plugs
//! one in. A sketch of an implementation:
//!
//! ```
//! use arcly_core::transcode::{RenditionSpec, Transcoder};
//! use arcly_core::{bus::Subscription, inbound::PublishSession, CodecId, Result};
//!
//! struct Passthrough { renditions: Vec<RenditionSpec> }
//!
//! #[async_trait::async_trait]
//! impl Transcoder for Passthrough {
//!     fn renditions(&self) -> &[RenditionSpec] { &self.renditions }
//!     async fn run(&self, mut input: Subscription, mut outputs: Vec<PublishSession>) -> Result<()> {
//!         // A real transcoder decodes, scales and encodes here.
//!         while let Ok(frame) = input.recv().await {
//!             if frame.is_end_of_stream() { break; }
//!             for out in &mut outputs { out.push((*frame).clone()); }
//!         }
//!         Ok(())
//!     }
//! }
//! let t = Passthrough { renditions: vec![RenditionSpec::new("720p", CodecId::H264, 1280, 720, 2_500_000)] };
//! assert_eq!(t.renditions()[0].stream_suffix(), "_720p");
//! ```

use crate::bus::Subscription;
use crate::error::Result;
use crate::frame::CodecId;
use crate::inbound::PublishSession;
use async_trait::async_trait;

/// One output of a transcoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionSpec {
    /// A short name (`720p`), used in stream names and playlists.
    pub name: String,
    /// The output video codec.
    pub codec: CodecId,
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// Target bitrate in bits per second.
    pub bitrate_bps: u64,
    /// Output frame rate as a fraction, or `None` to keep the source's.
    pub frame_rate: Option<(u32, u32)>,
}

impl RenditionSpec {
    /// A rendition keeping the source frame rate.
    pub fn new(name: &str, codec: CodecId, width: u32, height: u32, bitrate_bps: u64) -> Self {
        Self {
            name: name.to_owned(),
            codec,
            width,
            height,
            bitrate_bps,
            frame_rate: None,
        }
    }

    /// The suffix appended to the source stream's name for this rendition.
    pub fn stream_suffix(&self) -> String {
        format!("_{}", self.name)
    }
}

/// Produces renditions of a stream.
#[async_trait]
pub trait Transcoder: Send + Sync + 'static {
    /// The renditions it produces, best first.
    fn renditions(&self) -> &[RenditionSpec];
    /// Read `input` and publish one output per rendition (same order as
    /// [`renditions`](Transcoder::renditions)) until the input ends.
    async fn run(&self, input: Subscription, outputs: Vec<PublishSession>) -> Result<()>;
}
