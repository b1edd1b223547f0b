//! Live figures per stream for the admin API and the web page: viewers by
//! protocol (from the engine's events), bitrates in and out (sampled from
//! the stream counters), and codec, resolution and frame rate (from the
//! stream's configuration and `onMetaData`).

use crate::auth::INTERNAL_PROTOCOLS;
use arcly_core::bus::StreamStats;
use arcly_core::engine::Engine;
use arcly_core::events::EngineEvent;
use arcly_core::StreamPath;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::broadcast::error::RecvError;

/// How often bitrates are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Entry {
    viewers: BTreeMap<&'static str, u64>,
    last: Option<(Instant, u64, u64)>,
    kbps_in: f64,
    kbps_out: f64,
}

/// Shared live figures. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Monitor {
    inner: Arc<Mutex<HashMap<StreamPath, Entry>>>,
}

/// One stream as the admin API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamView {
    /// Application.
    pub app: String,
    /// Stream key (name).
    pub key: String,
    /// Whether a publisher is attached.
    pub live: bool,
    /// Video codec, if any.
    pub video_codec: Option<String>,
    /// Audio codec, if any.
    pub audio_codec: Option<String>,
    /// Picture width.
    pub width: Option<u32>,
    /// Picture height.
    pub height: Option<u32>,
    /// Frames per second (bitstream timing, else the publisher's metadata).
    pub frame_rate: Option<f64>,
    /// RFC 6381 codec strings of the tracks (`avc1.64001e`, `mp4a.40.2`).
    pub codec_strings: Vec<String>,
    /// Video profile as FFmpeg names it (`High`, `Main 10`).
    pub video_profile: Option<String>,
    /// Audio sample rate in Hz.
    pub audio_sample_rate: Option<u32>,
    /// Audio channels.
    pub audio_channels: Option<u8>,
    /// Inbound kbit/s over the last second.
    pub kbps_in: f64,
    /// Outbound kbit/s (all players) over the last second.
    pub kbps_out: f64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Payload bytes sent.
    pub bytes_out: u64,
    /// Protocol the publisher came over.
    pub publisher_protocol: Option<String>,
    /// Publisher's address.
    pub publisher_addr: Option<String>,
    /// Seconds since the publisher started.
    pub uptime_seconds: Option<u64>,
    /// Players by protocol (`rtmp`, `http-flv`, …).
    pub viewers: BTreeMap<String, u64>,
    /// Players in total.
    pub viewers_total: u64,
    /// Frames skipped by lagging players.
    pub qos_skipped: u64,
}

impl Monitor {
    /// Start following `engine`'s events and sampling its counters until it
    /// shuts down.
    pub fn start(engine: &Engine) -> Self {
        let me = Self::default();
        let mut events = engine.events().subscribe();
        let shutdown = engine.shutdown_token();
        let m = me.clone();
        let e2 = engine.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => m.sample(&e2.list_streams()),
                    ev = events.recv() => match ev {
                        Ok(ev) => m.on_event(ev),
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return,
                    },
                }
            }
        });
        me
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamPath, Entry>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn on_event(&self, ev: EngineEvent) {
        let mut g = self.lock();
        match ev {
            EngineEvent::SubscriberJoined { path, protocol } => {
                *g.entry(path)
                    .or_default()
                    .viewers
                    .entry(protocol)
                    .or_default() += 1;
            }
            EngineEvent::SubscriberLeft { path, protocol } => {
                if let Some(n) = g.entry(path).or_default().viewers.get_mut(protocol) {
                    *n = n.saturating_sub(1);
                }
            }
            EngineEvent::StreamRemoved { path } => {
                g.remove(&path);
            }
            _ => {}
        }
    }

    fn sample(&self, streams: &[StreamStats]) {
        let now = Instant::now();
        let mut g = self.lock();
        for s in streams {
            let e = g.entry(s.path.clone()).or_default();
            if let Some((t, bi, bo)) = e.last {
                let dt = now.duration_since(t).as_secs_f64().max(1e-3);
                e.kbps_in = s.bytes_in.saturating_sub(bi) as f64 * 8.0 / 1000.0 / dt;
                e.kbps_out = s.bytes_out.saturating_sub(bo) as f64 * 8.0 / 1000.0 / dt;
            }
            e.last = Some((now, s.bytes_in, s.bytes_out));
        }
    }

    /// The view of one stream's counters.
    pub fn view(&self, s: &StreamStats) -> StreamView {
        let g = self.lock();
        let e = g.get(&s.path);
        let viewers: BTreeMap<String, u64> = e
            .map(|e| {
                e.viewers
                    .iter()
                    .filter(|(p, n)| **n > 0 && !INTERNAL_PROTOCOLS.contains(p))
                    .map(|(p, n)| ((*p).to_owned(), *n))
                    .collect()
            })
            .unwrap_or_default();
        let meta = s.configs.metadata.as_ref().map(|m| metadata(&m.payload));
        let (m_width, m_height, m_fps) = meta.unwrap_or_default();
        let info = |f: Option<&std::sync::Arc<arcly_core::MediaFrame>>| {
            f.and_then(|f| {
                arcly_codec::info::CodecInfo::from_config_bytes(f.codec, &f.payload).ok()
            })
        };
        let vinfo = info(s.configs.video.first());
        let ainfo = info(s.configs.audio.first());
        let width = vinfo.as_ref().and_then(|i| i.width).or(m_width);
        let height = vinfo.as_ref().and_then(|i| i.height).or(m_height);
        let frame_rate = vinfo
            .as_ref()
            .and_then(|i| i.frame_rate)
            .filter(|(n, d)| *n > 0 && *d > 0)
            .map(|(n, d)| (f64::from(n) / f64::from(d) * 1000.0).round() / 1000.0)
            .or(m_fps);
        let codec_strings = vinfo
            .iter()
            .chain(ainfo.iter())
            .map(|i| i.codec_string().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        let round = |x: f64| (x * 10.0).round() / 10.0;
        StreamView {
            app: s.path.app.to_string(),
            key: s.path.stream.to_string(),
            live: s.live,
            video_codec: s.configs.video.first().map(|f| f.codec.name()),
            audio_codec: s.configs.audio.first().map(|f| f.codec.name()),
            width,
            height,
            frame_rate,
            codec_strings,
            video_profile: vinfo
                .as_ref()
                .and_then(|i| i.profile_name)
                .map(str::to_owned),
            audio_sample_rate: ainfo.as_ref().and_then(|i| i.sample_rate),
            audio_channels: ainfo.as_ref().and_then(|i| i.channels),
            kbps_in: round(e.map_or(0.0, |e| e.kbps_in)),
            kbps_out: round(e.map_or(0.0, |e| e.kbps_out)),
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            publisher_protocol: s.publisher.as_ref().map(|p| p.protocol.to_owned()),
            publisher_addr: s
                .publisher
                .as_ref()
                .and_then(|p| p.peer)
                .map(|a| a.to_string()),
            uptime_seconds: s.publisher.as_ref().map(|p| {
                SystemTime::now()
                    .duration_since(p.since)
                    .unwrap_or_default()
                    .as_secs()
            }),
            viewers_total: viewers.values().sum(),
            viewers,
            qos_skipped: s.qos_skipped,
        }
    }
}

/// Width, height and frame rate from an `onMetaData` AMF0 payload.
fn metadata(payload: &[u8]) -> (Option<u32>, Option<u32>, Option<f64>) {
    let Ok(values) = arcly_rtmp::amf0::decode_all(payload) else {
        return (None, None, None);
    };
    let Some(obj) = values.iter().find(|v| v.as_object().is_some()) else {
        return (None, None, None);
    };
    let dim = |k: &str| {
        obj.get_f64(k)
            .filter(|v| v.is_finite() && *v > 0.0 && *v < 65_536.0)
            .map(|v| v as u32)
    };
    let fps = obj
        .get_f64("framerate")
        .or_else(|| obj.get_f64("videoframerate"))
        .filter(|v| v.is_finite() && *v > 0.0 && *v < 1000.0)
        .map(|v| (v * 1000.0).round() / 1000.0);
    (dim("width"), dim("height"), fps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcly_rtmp::amf0::Amf0Value;

    #[test]
    fn metadata_figures() {
        let mut b = bytes::BytesMut::new();
        Amf0Value::string("onMetaData").encode(&mut b);
        Amf0Value::object([
            ("width", Amf0Value::Number(640.0)),
            ("height", Amf0Value::Number(360.0)),
            ("framerate", Amf0Value::Number(25.0)),
        ])
        .encode(&mut b);
        assert_eq!(metadata(&b), (Some(640), Some(360), Some(25.0)));
        assert_eq!(metadata(b"\xff"), (None, None, None));
    }
}
