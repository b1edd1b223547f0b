//! Helpers that downstream crates and users test with: in-memory sources
//! and sinks, synthetic streams, and locators for the external programs that
//! interop tests drive.

pub mod tools;

use crate::error::Result;
use crate::frame::{CodecId, FrameFlags, MediaFrame};
use crate::traits::{MediaSink, MediaSource};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A source that yields frames from memory, optionally paced.
#[derive(Debug, Default)]
pub struct MemorySource {
    frames: VecDeque<MediaFrame>,
    pace: Option<Duration>,
}

impl MemorySource {
    /// A source over `frames`, as fast as they are pulled.
    pub fn new(frames: impl IntoIterator<Item = MediaFrame>) -> Self {
        Self {
            frames: frames.into_iter().collect(),
            pace: None,
        }
    }

    /// Wait `every` before each frame.
    #[must_use]
    pub fn paced(mut self, every: Duration) -> Self {
        self.pace = Some(every);
        self
    }
}

#[async_trait]
impl MediaSource for MemorySource {
    async fn next_frame(&mut self) -> Result<Option<MediaFrame>> {
        if let Some(p) = self.pace {
            tokio::time::sleep(p).await;
        }
        Ok(self.frames.pop_front())
    }
}

/// A sink that keeps every frame it is given; clone it to read them back.
#[derive(Debug, Default, Clone)]
pub struct CollectingSink {
    frames: Arc<Mutex<Vec<Arc<MediaFrame>>>>,
    ended: Arc<Mutex<bool>>,
}

impl CollectingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The frames received so far.
    pub fn frames(&self) -> Vec<Arc<MediaFrame>> {
        self.frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether `on_end` was called.
    pub fn ended(&self) -> bool {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl MediaSink for CollectingSink {
    async fn on_frame(&mut self, frame: Arc<MediaFrame>) -> Result<()> {
        self.frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(frame);
        Ok(())
    }
    async fn on_end(&mut self) -> Result<()> {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner()) = true;
        Ok(())
    }
}

/// A synthetic H.264 + AAC stream: configuration frames, then GOPs of
/// `gop` video frames (the first a keyframe) at 25 fps with an audio frame
/// after each picture. Payloads are placeholders that encode the frame's
/// position (`b"v:<gop>:<idx>"`), so tests can check order and gaps; they are
/// not decodable media.
#[derive(Debug, Clone)]
pub struct SyntheticStream {
    gop: usize,
    with_audio: bool,
    video_idx: u64,
    emitted_config: bool,
    pending_audio: Option<MediaFrame>,
}

impl SyntheticStream {
    /// A stream with GOPs of `gop` pictures (at least 1) and audio.
    pub fn new(gop: usize) -> Self {
        Self {
            gop: gop.max(1),
            with_audio: true,
            video_idx: 0,
            emitted_config: false,
            pending_audio: None,
        }
    }

    /// Leave audio out.
    #[must_use]
    pub fn video_only(mut self) -> Self {
        self.with_audio = false;
        self
    }

    /// The GOP index and position within it encoded in a synthetic video payload.
    pub fn decode_position(payload: &[u8]) -> Option<(u64, u64)> {
        let s = std::str::from_utf8(payload).ok()?;
        let mut it = s.strip_prefix("v:")?.split(':');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    }
}

impl Iterator for SyntheticStream {
    type Item = MediaFrame;
    fn next(&mut self) -> Option<MediaFrame> {
        if !self.emitted_config {
            self.emitted_config = true;
            let mut cfg = vec![MediaFrame::config(
                CodecId::H264,
                0,
                Bytes::from_static(b"avcC"),
            )];
            if self.with_audio {
                cfg.push(MediaFrame::config(
                    CodecId::Aac,
                    0,
                    Bytes::from_static(&[0x11, 0x90]),
                ));
            }
            // Return the first; queue the audio config as the pending frame.
            let mut it = cfg.into_iter();
            let first = it.next();
            self.pending_audio = it.next();
            return first;
        }
        if let Some(a) = self.pending_audio.take() {
            return Some(a);
        }
        let idx = self.video_idx;
        self.video_idx += 1;
        let gop = self.gop as u64;
        let ts = (idx * 40) as i64;
        let mut v = MediaFrame::video(
            CodecId::H264,
            ts,
            ts,
            Bytes::from(format!("v:{}:{}", idx / gop, idx % gop)),
        );
        if idx % gop == 0 {
            v = v.with_flags(FrameFlags::KEYFRAME);
        }
        if self.with_audio {
            self.pending_audio = Some(MediaFrame::audio(
                CodecId::Aac,
                ts + 1,
                Bytes::from(format!("a:{idx}")),
            ));
        }
        Some(v)
    }
}
