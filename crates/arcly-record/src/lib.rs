//! Recording for arcly-stream: recordings that lose nothing.
//!
//! * [`FsStorage`] (feature `storage-fs`, on by default): the filesystem
//!   [`StorageBackend`](arcly_core::traits::StorageBackend) — keys that
//!   cannot escape the root (no symbolic link is followed), atomic puts
//!   (temporary file, `fsync`, rename, directory `fsync`), streaming appends
//!   made durable once per object by `sync`, listing and deletion.
//! * [`Recorder`]: records an engine's streams under per-application
//!   [`RecordPolicy`]s (record all, on request, maximum duration, maximum
//!   total size and maximum age with the oldest deleted first, recordings
//!   of earlier runs included), started and stopped from host code. [`RecordingSink`] does the same as a
//!   [`MediaSink`](arcly_core::traits::MediaSink) for `Engine::attach_sink`.
//! * [`writer::SegmentWriter`]: the sans-IO core — frames in, segments cut
//!   at keyframes by the shared
//!   [`SegmentClock`](arcly_core::segment::SegmentClock) out, in any
//!   container behind the core's [`Muxer`](arcly_core::traits::Muxer)
//!   contract ([`writer::MuxerFactory`], [`RecordConfig::muxer`]): MPEG-TS
//!   (arcly-mpegts) by default, fMP4 (e.g. arcly-hls's `Fmp4Muxer`) with an
//!   `init.mp4` and `EXT-X-MAP`. A codec the container cannot carry (AV1,
//!   VP9, VVC in MPEG-TS) fails the recording at its first frame
//!   ([`RecorderEvent::Unsupported`]).
//! * [`playlist`]: the recording's index, an HLS media playlist.
//! * `http` (feature `http`): `RecordingsService`, the recordings listed,
//!   deleted, played back as HLS VOD over any time range and downloaded.
//!
//! # Layout of a recording
//! ```text
//! app/stream/<start-time>/000001.ts      segments, cut at keyframes (.m4s for fMP4)
//! app/stream/<start-time>/000002.ts
//! app/stream/<start-time>/init.mp4       fMP4 only: the EXT-X-MAP (init-<seq>.mp4 after a change)
//! app/stream/<start-time>/index.m3u8     VOD + ENDLIST: every closed segment (crash-safe)
//! app/stream/<start-time>/live.m3u8      EVENT: for players opening it while it records
//! ```
//! `<start-time>` is UTC, `20240501T120000.123Z`. Both playlists are
//! rewritten atomically after every closed segment, after the segment's bytes
//! are durable, so a crash (`kill -9`, power loss) loses at most the segment
//! in progress and `index.m3u8` always opens as a finished recording.
//!
//! # Guarantees
//! * Graceful stop ([`Recorder::stop`], unpublish then the republish grace,
//!   engine shutdown): every frame received is written and the playlists end
//!   with `EXT-X-ENDLIST`.
//! * A publisher that leaves and comes back within
//!   [`RecordConfig::republish_grace`] continues the same recording after an
//!   `EXT-X-DISCONTINUITY`.
//! * The recorder never slows the stream: it has its own bounded queue, and
//!   any frame it had to drop is counted and reported
//!   ([`RecorderEvent::FramesDropped`]), as is every storage failure
//!   ([`RecorderEvent::StorageError`]); both also reach the engine's
//!   `Observer` (`recording_dropped`, `storage_error`), and a storage call
//!   that finally failed is written to its audit trail.
//!
//! ```
//! use arcly_core::engine::{AppSpec, Engine};
//! use arcly_core::registry::{PublishRegistry, PublishRequest};
//! use arcly_core::traits::StorageBackend;
//! use arcly_core::{CodecId, MediaFrame, StreamPath};
//! use arcly_record::{FsStorage, Recorder};
//! use std::sync::Arc;
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let storage = Arc::new(FsStorage::new(dir.path()).unwrap());
//! let engine = Engine::builder().application(AppSpec::new("live")).build();
//! let recorder = Recorder::builder(engine.clone(), storage.clone()).build();
//! let path = StreamPath::parse("live", "cam").unwrap();
//! recorder.start(&path).await.unwrap();
//! let mut publisher = engine.publish(PublishRequest::new(path.clone(), "example")).await.unwrap();
//! let mp3 = |ms| { let mut v = vec![0xFF, 0xFB, 0x94, 0x64]; v.resize(384, 0);
//!                  MediaFrame::audio(CodecId::Mp3, ms, v.into()) };
//! for i in 0..500 { publisher.push(mp3(i * 24)); } // 12 s of MP3
//! # tokio::time::sleep(std::time::Duration::from_millis(50)).await;
//! let summary = recorder.stop(&path).await.unwrap();
//! let prefix = summary.prefix.unwrap();
//! let keys = storage.list(&format!("{prefix}/")).await.unwrap();
//! let names: Vec<&str> = keys.iter().map(|k| k.as_str().rsplit('/').next().unwrap()).collect();
//! assert_eq!(names, ["000001.ts", "000002.ts", "index.m3u8", "live.m3u8"]);
//! # });
//! ```
#![forbid(unsafe_code)]

#[cfg(all(feature = "storage-fs", unix))]
mod fs;
#[cfg(feature = "http")]
pub mod http;
pub mod playlist;
mod recorder;
pub mod writer;

#[cfg(all(feature = "storage-fs", unix))]
pub use fs::{FsStorage, MAX_LIST_DEPTH, TEMP_MARKER};
pub use playlist::{PlaylistError, PlaylistKind, PlaylistSegment, RecordingPlaylist};
pub use recorder::{
    DeleteOutcome, DropCause, FinishReason, RecordConfig, RecordMode, RecordPolicy, Recorder,
    RecorderBuilder, RecorderEvent, RecordingSink, RecordingSinkHandle, RecordingStats,
    RecordingSummary, INDEX_NAME, LIVE_NAME, PROTOCOL, RETENTION_SWEEP,
};
pub use writer::{MuxerFactory, SegmentInfo, SegmentWriter, WriterAction, WriterConfig, INIT_NAME};
