//! The seams of the kernel: what sources, sinks, protocols, storage,
//! hardware accelerators and muxers implement.

use crate::error::{Result, StreamError};
use crate::frame::{CodecId, MediaFrame};
use crate::identity::StreamPath;
use async_trait::async_trait;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;

/// Something that produces frames: a file reader, a test generator, a relay.
///
/// The engine's source pump (`Engine::pump_source`) pulls it into a stream.
#[async_trait]
pub trait MediaSource: Send {
    /// The next frame, or `Ok(None)` at the end.
    async fn next_frame(&mut self) -> Result<Option<MediaFrame>>;
}

/// Something that consumes a stream's frames: a recorder, a packager, a relay.
///
/// The lifecycle is `on_start`, any number of `on_frame`, then `on_end`
/// (or `on_error` if the subscription failed).
#[async_trait]
pub trait MediaSink: Send {
    /// Called once before the first frame.
    async fn on_start(&mut self, _path: &StreamPath) -> Result<()> {
        Ok(())
    }
    /// Called for each frame, in order. The `Arc` is shared with every other
    /// subscriber: the payload is never copied.
    async fn on_frame(&mut self, frame: Arc<MediaFrame>) -> Result<()>;
    /// Called once when the stream ends normally.
    async fn on_end(&mut self) -> Result<()> {
        Ok(())
    }
    /// Called once when the subscription fails (lag, closed engine).
    async fn on_error(&mut self, _error: &StreamError) {}
}

#[async_trait]
impl<S: MediaSink + ?Sized> MediaSink for Box<S> {
    async fn on_start(&mut self, path: &StreamPath) -> Result<()> {
        (**self).on_start(path).await
    }
    async fn on_frame(&mut self, frame: Arc<MediaFrame>) -> Result<()> {
        (**self).on_frame(frame).await
    }
    async fn on_end(&mut self) -> Result<()> {
        (**self).on_end().await
    }
    async fn on_error(&mut self, error: &StreamError) {
        (**self).on_error(error).await
    }
}

/// A bidirectional byte stream a protocol handler serves.
pub trait Connection:
    tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static
{
}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Connection for T {}

/// Serves one accepted connection of a wire protocol.
///
/// The ingest layer's accept loop (feature `ingest`) owns the listener, the
/// limits and the timeouts, and calls this once per connection.
#[async_trait]
pub trait ProtocolHandler: Send + Sync + 'static {
    /// Short protocol name for logs and metrics (`rtmp`).
    fn name(&self) -> &'static str;
    /// Serve `conn` from `peer` until it closes. An error ends that
    /// connection only.
    async fn handle_connection(
        &self,
        conn: Box<dyn Connection>,
        peer: SocketAddr,
        ctx: crate::inbound::IngestContext,
    ) -> Result<()>;
}

/// A validated key in a [`StorageBackend`]: relative, `/`-separated, no `..`,
/// no empty or `.` segments, no control characters or backslashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey(Arc<str>);

impl StorageKey {
    /// Validate `key`.
    pub fn new(key: impl AsRef<str>) -> Result<Self> {
        let key = key.as_ref();
        let refuse = |reason| {
            Err(StreamError::InvalidName {
                kind: "storage key",
                value: key.chars().take(64).collect(),
                reason,
            })
        };
        if key.is_empty() || key.len() > 1024 {
            return refuse("must be 1 to 1024 bytes");
        }
        if key.starts_with('/') {
            return refuse("is absolute");
        }
        if key.chars().any(|c| c.is_control() || c == '\\' || c == ':') {
            return refuse("contains a control character, '\\' or ':'");
        }
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return refuse("has an empty, '.' or '..' segment");
        }
        Ok(Self(Arc::from(key)))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where recordings and segments are stored.
#[async_trait]
pub trait StorageBackend: Send + Sync + 'static {
    /// Write a whole object atomically: readers see the old or the new
    /// content, never a mix.
    async fn put(&self, key: &StorageKey, data: Bytes) -> Result<()>;
    /// Append to an object in progress, creating it if absent.
    async fn append(&self, key: &StorageKey, data: Bytes) -> Result<()>;
    /// Read a whole object.
    async fn get(&self, key: &StorageKey) -> Result<Bytes>;
    /// Keys under `prefix` (a key prefix ending in `/`, or empty for all), sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<StorageKey>>;
    /// Delete an object; deleting a missing object is not an error.
    async fn delete(&self, key: &StorageKey) -> Result<()>;
    /// Make what was appended to `key` durable (fsync). Backends whose
    /// appends are already durable keep the default, which does nothing.
    async fn sync(&self, _key: &StorageKey) -> Result<()> {
        Ok(())
    }
}

/// What a hardware accelerator offers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HwCapabilities {
    /// Codecs it can decode.
    pub decode: Vec<CodecId>,
    /// Codecs it can encode.
    pub encode: Vec<CodecId>,
    /// Largest picture it handles (width, height).
    pub max_resolution: (u32, u32),
}

/// A hardware encoder/decoder a [`crate::transcode::Transcoder`] may use.
/// The kernel never requires one.
pub trait HwAccelBackend: Send + Sync + 'static {
    /// Short name (`vaapi`, `nvenc`).
    fn name(&self) -> &str;
    /// What it can do on this machine.
    fn capabilities(&self) -> HwCapabilities;
    /// Whether it can encode `codec`.
    fn can_encode(&self, codec: CodecId) -> bool {
        self.capabilities().encode.contains(&codec)
    }
}

/// A container format a [`Muxer`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContainerFormat {
    /// MPEG-2 transport stream (ISO/IEC 13818-1).
    MpegTs,
    /// Fragmented MP4 / CMAF (ISO/IEC 14496-12, 23000-19).
    Fmp4,
    /// FLV (FLV 10.1).
    Flv,
}

impl ContainerFormat {
    /// The HTTP `Content-Type` of a segment of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::MpegTs => "video/mp2t",
            Self::Fmp4 => "video/mp4",
            Self::Flv => "video/x-flv",
        }
    }

    /// The usual file extension of a segment, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::MpegTs => "ts",
            Self::Fmp4 => "m4s",
            Self::Flv => "flv",
        }
    }
}

/// The contract of a segmenting muxer (TS, fMP4, FLV), shared by the HLS
/// packager and the recorder.
///
/// Drive it like this: feed CONFIG frames and media with
/// [`write_frame`](Muxer::write_frame); at a segment boundary (decided by the
/// caller, always before a keyframe) call
/// [`start_segment`](Muxer::start_segment); take bytes out with
/// [`flush`](Muxer::flush) whenever a part or segment must be published.
/// Frames arrive in the canonical layout of [`crate::frame`].
pub trait Muxer: Send {
    /// The format this muxer writes.
    fn format(&self) -> ContainerFormat;
    /// The initialization segment (fMP4's `ftyp`+`moov`), available once the
    /// CONFIG frames of every track have been written; `None` for formats
    /// without one, or before the configuration is known.
    fn init_segment(&mut self) -> Result<Option<Bytes>>;
    /// Begin a new segment: what follows must be decodable on its own
    /// (TS writes PAT and PMT here).
    fn start_segment(&mut self) -> Result<()>;
    /// Add one frame. CONFIG frames update the track configuration and write
    /// no media. A frame the format cannot carry is a
    /// [`StreamError::Unsupported`] error.
    fn write_frame(&mut self, frame: &MediaFrame) -> Result<()>;
    /// Mark a discontinuity (publisher restart, timestamp jump) before the
    /// next frame.
    fn discontinuity(&mut self) {}
    /// Finish what is buffered and return the bytes written since the last
    /// flush (for fMP4, a complete `moof`+`mdat` fragment). May be empty.
    fn flush(&mut self) -> Result<Bytes>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_cannot_escape() {
        assert!(StorageKey::new("live/cam/0001.ts").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a//b",
            "a/./b",
            "c:\\x",
            "a\0",
        ] {
            assert!(StorageKey::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn formats_know_their_content_type() {
        assert_eq!(ContainerFormat::MpegTs.content_type(), "video/mp2t");
        assert_eq!(ContainerFormat::Fmp4.extension(), "m4s");
    }
}
