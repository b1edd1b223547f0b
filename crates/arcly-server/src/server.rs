//! Start-up, the running server and the clean stop.
//!
//! [`Server::start`] reads as the order of things: check and bind what can
//! fail ([`crate::listen`]), build the engine with its policies
//! ([`crate::engine`]), start recording ([`crate::record`]), RTMP
//! ([`crate::rtmp`]), HLS ([`crate::hls`]), the webhooks
//! ([`crate::auth::spawn_notifier`]) and the HTTP listener with its mounts
//! ([`crate::http`]). [`Server::run_until_signal`] waits for SIGINT or
//! SIGTERM and then stops within the configured grace: listeners close,
//! players are told the stream ended (HTTP-FLV bodies end, RTMP
//! connections close), recordings and HLS playlists are finished with
//! `EXT-X-ENDLIST`.

use crate::admin::AdminGuard;
use crate::api::ApiService;
use crate::config::Settings;
use crate::engine::hook;
use crate::hls::HlsHost;
use crate::monitor::Monitor;
use arcly_core::engine::Engine;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub use crate::error::StartError;
pub use crate::listen::check_record_dir;

/// How long HTTP keeps answering after the playlists were ended, so
/// players reloading them see `EXT-X-ENDLIST`.
pub const ENDLIST_LINGER: Duration = Duration::from_secs(1);

/// A started server.
pub struct Server {
    engine: Engine,
    settings: Arc<Settings>,
    rtmp_addr: Option<SocketAddr>,
    http_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    hls: Option<HlsHost>,
    recorder_task: Option<JoinHandle<()>>,
    http_stop: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("rtmp", &self.rtmp_addr)
            .field("http", &self.http_addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Check, bind and start everything. Must run inside a tokio runtime.
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        let settings = Arc::new(settings);
        let s = &settings;
        let listeners = crate::listen::bind(s).await?;
        let auth = crate::engine::authenticator(s);
        let (engine, metrics) = crate::engine::build(s, Arc::clone(&auth))?;
        let mut tasks = vec![("engine", spawn_engine(&engine))];
        let recording = crate::record::start(s, &engine)?;
        let rtmp_addr = listeners.rtmp.map(|l| {
            let (addr, task) = crate::rtmp::spawn(l, s, &engine);
            tasks.push(("rtmp", task));
            addr
        });
        let guard = AdminGuard::new(s.admin_token.as_deref(), Some(&s.public_host));
        let recordings = crate::recordings::service(
            s,
            recording.as_ref().map(|r| &r.recorder),
            Arc::clone(&auth),
            guard,
        );
        let hls = s.hls.enabled.then(|| HlsHost::start(&engine, &s.hls, auth));
        if let Some(task) = spawn_hooks(s, &engine) {
            tasks.push(("webhooks", task));
        }
        let http_addr = listeners.http.local_addr().unwrap_or(s.http_listen);
        let api = ApiService {
            engine: engine.clone(),
            settings: Arc::clone(&settings),
            monitor: Monitor::start(&engine),
            hls: hls.clone(),
            recorder: recording.as_ref().map(|r| r.recorder.clone()),
            guard: AdminGuard::new(s.admin_token.as_deref(), Some(&s.public_host)),
        };
        // HTTP stops after the engine, once the playlists carry ENDLIST, so
        // players reloading in the meantime learn that the stream ended.
        let http_stop = tokio_util::sync::CancellationToken::new();
        let admin_addr = listeners.admin.map(|l| {
            let addr = l.local_addr().ok();
            let router =
                crate::http::admin_router(metrics.clone(), api.clone(), recordings.clone());
            tasks.push(("admin", crate::http::spawn(l, router, s, http_stop.clone())));
            addr
        });
        let mounts = crate::http::Mounts {
            metrics,
            api,
            hls: hls.clone(),
            recordings,
        };
        let router = crate::http::router(s, mounts);
        tasks.push((
            "http",
            crate::http::spawn(listeners.http, router, s, http_stop.clone()),
        ));
        Ok(Self {
            engine,
            rtmp_addr: rtmp_addr.flatten(),
            http_addr,
            admin_addr: admin_addr.flatten(),
            tasks,
            hls,
            recorder_task: recording.map(|r| r.task),
            http_stop,
            settings,
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The RTMP address actually bound.
    pub fn rtmp_addr(&self) -> Option<SocketAddr> {
        self.rtmp_addr
    }

    /// The HTTP address actually bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The admin listener's address, when `admin.listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The start-up message: where to publish and where to play, in plain words.
    pub fn banner(&self) -> String {
        crate::banner::banner(
            &self.settings,
            self.rtmp_addr,
            self.http_addr,
            self.admin_addr,
        )
    }

    /// Wait for SIGINT or SIGTERM, then [`shutdown`](Server::shutdown).
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("stopping: no new connections; ending streams, recordings and playlists");
        self.shutdown().await;
    }

    /// Stop accepting, end every stream, finish recordings and playlists,
    /// and return within the shutdown grace (plus a little).
    pub async fn shutdown(self) {
        self.engine.shutdown();
        let grace = self.settings.shutdown_grace;
        let hls = self.hls.clone();
        let rec = self.recorder_task;
        let tasks = self.tasks;
        let http_stop = self.http_stop;
        let http_stop_late = http_stop.clone();
        let all = async move {
            if let Some(h) = hls {
                h.finish().await;
                tokio::time::sleep(ENDLIST_LINGER.min(grace / 2)).await;
            }
            http_stop.cancel();
            if let Some(t) = rec {
                let _ = t.await;
            }
            for (name, t) in tasks {
                if t.await.is_err() {
                    tracing::warn!(task = name, "task failed while stopping");
                }
            }
        };
        if tokio::time::timeout(grace + Duration::from_secs(1), all)
            .await
            .is_err()
        {
            http_stop_late.cancel();
            tracing::warn!(?grace, "not everything stopped within the grace period");
        } else {
            tracing::info!("stopped");
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut i), Ok(mut t)) => {
                tokio::select! {
                    _ = i.recv() => {}
                    _ = t.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn spawn_engine(engine: &Engine) -> JoinHandle<()> {
    let e = engine.clone();
    tokio::spawn(async move {
        let _ = e.run().await;
    })
}

/// The `on_unpublish` / `on_stop` notifier, when either hook is set.
fn spawn_hooks(s: &Settings, engine: &Engine) -> Option<JoinHandle<()>> {
    let w = &s.webhooks;
    (w.on_unpublish.is_some() || w.on_stop.is_some()).then(|| {
        crate::auth::spawn_notifier(engine, hook(&w.on_unpublish), hook(&w.on_stop), w.timeout)
    })
}
