//! HLS and LL-HLS, mounted from arcly-hls: an
//! `HlsRegistry` (`arcly_hls::packager`) packages every
//! published stream, and [`HlsAccess`] serves `/APP/KEY/index.m3u8`
//! (blocking reloads, delta updates), the multivariant `/APP/KEY.m3u8`,
//! segments, parts and init segments, each authorized like any other play
//! (`?token=…` or `Authorization: Bearer`), the credential carried through
//! every URI of the playlists.
//!
//! What the server adds: its settings, and packagers that subscribe as the
//! server's own machinery (they do not pass through the play tokens or the
//! `on_play` hook).

use crate::config::{HlsFormat, HlsSettings};
use arcly_core::auth::StreamAuthenticator;
use arcly_core::bus::{StreamHandle, StreamStats, Subscription};
use arcly_core::engine::Engine;
use arcly_core::registry::{PlayRequest, PlaybackRegistry};
use arcly_core::{StreamError, StreamPath};
use arcly_hls::access::HlsAccess;
use arcly_hls::http::{HlsService, HttpConfig};
use arcly_hls::packager::{HlsRegistry, PackagerConfig};
use arcly_hls::stream::{HlsConfig, SegmentFormat};
use arcly_http::{HttpService, RequestBody, ResponseFuture};
use async_trait::async_trait;
use hyper::Request;
use std::sync::Arc;
use std::time::Duration;

/// How long a clean stop waits for the playlists to be ended.
pub const FINISH_WAIT: Duration = Duration::from_secs(2);

/// The packagers' view of the engine: subscriptions straight on the stream,
/// without the player authorization.
struct OwnSubscriber(Engine);

#[async_trait]
impl PlaybackRegistry for OwnSubscriber {
    async fn subscribe(&self, req: PlayRequest) -> arcly_core::Result<Subscription> {
        match self.0.stream(&req.path) {
            Some(h) => h.subscribe(req.protocol),
            None => Err(StreamError::StreamNotFound {
                app: req.path.app.to_string(),
                stream: req.path.stream.to_string(),
            }),
        }
    }

    fn stream(&self, path: &StreamPath) -> Option<StreamHandle> {
        self.0.stream(path)
    }

    fn list_streams(&self) -> Vec<StreamStats> {
        self.0.list_streams()
    }

    fn has_app(&self, app: &str) -> bool {
        self.0.has_app(app)
    }
}

/// HLS for every stream of an engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct HlsHost {
    access: HlsAccess,
    registry: HlsRegistry,
}

/// The packager settings for `s`.
pub fn packager_config(s: &HlsSettings) -> PackagerConfig {
    PackagerConfig {
        hls: HlsConfig {
            segment_target: s.segment,
            part_target: s.low_latency.then_some(s.part),
            window: s.window,
            format: match s.format {
                HlsFormat::Auto => SegmentFormat::Auto,
                HlsFormat::Ts => SegmentFormat::MpegTs,
                HlsFormat::Fmp4 => SegmentFormat::Fmp4,
            },
            ..HlsConfig::default()
        },
        unpublish_grace: s.end_after,
        ..PackagerConfig::default()
    }
}

impl HlsHost {
    /// Package every stream `engine` publishes, until it shuts down; serve
    /// them to players `auth` allows.
    pub fn start(engine: &Engine, cfg: &HlsSettings, auth: Arc<dyn StreamAuthenticator>) -> Self {
        let registry = HlsRegistry::new(
            Arc::new(OwnSubscriber(engine.clone())),
            packager_config(cfg),
        );
        let _follow = registry.follow(engine);
        let service = HlsService::new(registry.clone(), HttpConfig::default());
        let apps = engine.clone();
        let access = HlsAccess::new(service, auth)
            .apps(move |app| apps.has_app(app))
            .observer(Arc::clone(engine.observer()));
        Self { access, registry }
    }

    /// HLS players of `path` (addresses that asked for its playlists lately).
    pub fn viewers(&self, path: &StreamPath) -> u64 {
        self.access.viewers(path)
    }

    /// End every playlist with `EXT-X-ENDLIST` and wait (bounded) until
    /// they are.
    pub async fn finish(&self) {
        self.registry.shutdown();
        let packagers: Vec<_> = self
            .registry
            .paths()
            .iter()
            .filter_map(|p| self.registry.get(p))
            .collect();
        let _ = tokio::time::timeout(FINISH_WAIT, async {
            for p in packagers {
                p.finished().await;
            }
        })
        .await;
    }
}

impl HttpService for HlsHost {
    fn name(&self) -> &'static str {
        "hls"
    }

    fn owns(&self, method: &hyper::Method, path: &str) -> bool {
        HttpService::owns(&self.access, method, path)
    }

    fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
        HttpService::call(&self.access, req)
    }
}
