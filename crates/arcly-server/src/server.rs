//! Start-up, the running server and the clean stop.
//!
//! [`Server::start`] reads as the order of things: check and bind what can
//! fail ([`crate::listen`]), build the engine with its policies
//! ([`crate::engine`]), start recording ([`crate::record`]), RTMP
//! ([`crate::rtmp`]), RTMPS ([`crate::tls`], its certificate read before
//! anything is bound), HLS ([`crate::hls`]), the webhooks
//! ([`crate::auth::spawn_notifier`]), the [`Reloader`] and the HTTP and
//! HTTPS listeners with their mounts ([`crate::http`]).
//! [`Server::run_until_signal`] reloads on SIGHUP ([`crate::reload`]),
//! waits for SIGINT or
//! SIGTERM and then stops within the configured grace: listeners close,
//! players are told the stream ended (HTTP-FLV bodies end, RTMP
//! connections close), recordings and HLS playlists are finished with
//! `EXT-X-ENDLIST`.

use crate::admin::AdminGuard;
use crate::api::ApiService;
use crate::config::Settings;
use crate::hls::HlsHost;
use crate::monitor::Monitor;
use crate::reload::{ReloadService, Reloader, SwapAuth};
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
    rtmps_addr: Option<SocketAddr>,
    https_addr: Option<SocketAddr>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    hls: Option<HlsHost>,
    recorder_task: Option<JoinHandle<()>>,
    reloader: Reloader,
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
        let certs = crate::tls::load(s)?;
        let listeners = crate::listen::bind(s).await?;
        // Behind a swappable holder: a reload replaces it whole.
        let swap = SwapAuth::new(crate::engine::authenticator(s));
        let auth: Arc<dyn arcly_core::auth::StreamAuthenticator> = Arc::new(swap.clone());
        let (engine, metrics) = crate::engine::build(s, Arc::clone(&auth))?;
        let mut tasks = vec![("engine", spawn_engine(&engine))];
        let recording = crate::record::start(s, &engine)?;
        let rtmp_addr = listeners.rtmp.map(|l| {
            let (addr, task) = crate::rtmp::spawn(l, s, &engine);
            tasks.push(("rtmp", task));
            addr
        });
        let mut rtmps_addr = None;
        if let (Some(l), Some(store)) = (listeners.rtmps, &certs) {
            let (addr, task) = crate::tls::spawn_rtmps(l, s, &engine, store)?;
            tasks.push(("rtmps", task));
            rtmps_addr = addr;
        }
        let guard = AdminGuard::new(s.admin_token.as_deref(), Some(&s.public_host));
        let recordings = crate::recordings::service(
            s,
            recording.as_ref().map(|r| &r.recorder),
            Arc::clone(&auth),
            guard.clone(),
        );
        let hls = s.hls.enabled.then(|| HlsHost::start(&engine, &s.hls, auth));
        let reloader = Reloader::new(
            Arc::clone(&settings),
            swap,
            certs.clone(),
            engine.clone(),
            crate::engine::spawn_hooks(s, &engine),
            guard.clone(),
        );
        let reload = ReloadService {
            reloader: reloader.clone(),
            guard: guard.clone(),
        };
        let http_addr = listeners.http.local_addr().unwrap_or(s.http_listen);
        let api = ApiService {
            engine: engine.clone(),
            settings: Arc::clone(&settings),
            monitor: Monitor::start(&engine),
            hls: hls.clone(),
            recorder: recording.as_ref().map(|r| r.recorder.clone()),
            guard: guard.clone(),
        };
        // HTTP stops after the engine, once the playlists carry ENDLIST, so
        // players reloading in the meantime learn that the stream ended.
        let http_stop = tokio_util::sync::CancellationToken::new();
        let admin_addr = listeners.admin.map(|l| {
            let addr = l.local_addr().ok();
            let router = crate::http::admin_router(
                metrics.clone(),
                api.clone(),
                reload.clone(),
                recordings.clone(),
            );
            tasks.push(("admin", crate::http::spawn(l, router, s, http_stop.clone())));
            addr
        });
        let mounts = crate::http::Mounts {
            metrics,
            api,
            hls: hls.clone(),
            reload,
            recordings,
        };
        let router = crate::http::router(s, mounts);
        let mut https_addr = None;
        if let (Some(l), Some(store)) = (listeners.https, &certs) {
            https_addr = l.local_addr().ok();
            let task = crate::tls::spawn_https(l, router.clone(), s, store, http_stop.clone())?;
            tasks.push(("https", task));
        }
        tasks.push((
            "http",
            crate::http::spawn(listeners.http, router, s, http_stop.clone()),
        ));
        Ok(Self {
            engine,
            rtmp_addr: rtmp_addr.flatten(),
            http_addr,
            admin_addr: admin_addr.flatten(),
            rtmps_addr,
            https_addr,
            tasks,
            hls,
            recorder_task: recording.map(|r| r.task),
            reloader,
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

    /// What reloads the configuration (SIGHUP and `POST /api/reload` go
    /// through it); the binary sets its source.
    pub fn reloader(&self) -> &Reloader {
        &self.reloader
    }

    /// The RTMPS address actually bound, when RTMPS is on.
    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        self.rtmps_addr
    }

    /// The HTTPS address actually bound, when HTTPS is on.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
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
            self.rtmps_addr,
            self.https_addr,
        )
    }

    /// Wait for SIGINT or SIGTERM, then [`shutdown`](Server::shutdown);
    /// reload the configuration on every SIGHUP meanwhile.
    pub async fn run_until_signal(self) {
        tokio::select! {
            _ = wait_for_signal() => {}
            _ = self.reloader.clone().on_sighup() => {}
        }
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
        let mut tasks = self.tasks;
        if let Some(t) = self.reloader.take_notifier() {
            tasks.push(("webhooks", t));
        }
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
