//! Start-up, the running server and the clean stop.
//!
//! [`Server::start`] checks what can fail before anything is served (the
//! recording directory, both listeners), builds the engine with its
//! policies and starts every part; [`Server::run_until_signal`] waits for
//! SIGINT or SIGTERM and then stops within the configured grace: listeners
//! close, players are told the stream ended (HTTP-FLV bodies end, RTMP
//! connections close), recordings and HLS playlists are finished with
//! `EXT-X-ENDLIST`.

use crate::auth::{spawn_notifier, ServerAuth};
use crate::config::{RecordModeArg, Settings};
use crate::hls::HlsHost;
use crate::http::HttpState;
use crate::logging::LogAudit;
use crate::monitor::Monitor;
use crate::webhook::HookUrl;
use arcly_core::engine::{AppSpec, Engine};
use arcly_core::ingest::{IngestLimits, TcpIngest};
use arcly_record::{FsStorage, RecordConfig, RecordMode, RecordPolicy, Recorder};
use arcly_rtmp::{RtmpConfig, RtmpHandler};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How long HTTP keeps answering after the playlists were ended, so
/// players reloading them see `EXT-X-ENDLIST`.
pub const ENDLIST_LINGER: Duration = Duration::from_secs(1);

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A setting was refused.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// `RTMP` or `HTTP`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The recording directory is missing or not writable.
    #[error("recording directory {dir}: {reason}")]
    RecordDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// A started server.
pub struct Server {
    engine: Engine,
    settings: Arc<Settings>,
    rtmp_addr: Option<SocketAddr>,
    http_addr: SocketAddr,
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

/// Refuse a recording directory that is missing, not a directory or not
/// writable (checked by creating and removing a probe file).
pub fn check_record_dir(dir: &Path) -> Result<(), StartError> {
    let err = |reason: String| StartError::RecordDir {
        dir: dir.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => err("does not exist (create it first)".into()),
        _ => err(format!("cannot be read: {e}")),
    })?;
    if !meta.is_dir() {
        return Err(err("is not a directory".into()));
    }
    let probe = dir.join(format!(".arcly-write-test-{}", std::process::id()));
    let r = std::fs::File::create(&probe).and_then(|mut f| f.write_all(b"ok"));
    let _ = std::fs::remove_file(&probe);
    r.map_err(|e| err(format!("is not writable: {e}")))
}

fn record_mode(m: RecordModeArg) -> RecordMode {
    match m {
        RecordModeArg::Off => RecordMode::Off,
        RecordModeArg::All => RecordMode::All,
        RecordModeArg::OnRequest => RecordMode::OnRequest,
    }
}

fn display_host(bound: SocketAddr, public: &str) -> String {
    if bound.ip().is_unspecified() {
        public.to_owned()
    } else if bound.is_ipv6() {
        format!("[{}]", bound.ip())
    } else {
        bound.ip().to_string()
    }
}

impl Server {
    /// Check, bind and start everything. Must run inside a tokio runtime.
    pub async fn start(settings: Settings) -> Result<Self, StartError> {
        let settings = Arc::new(settings);
        let s = &settings;

        // What can fail comes first, before anything is served.
        if let Some(dir) = &s.record.dir {
            check_record_dir(dir)?;
        }
        let rtmp_listener = match s.rtmp_listen {
            Some(addr) => {
                Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|source| StartError::Bind {
                            what: "RTMP",
                            addr,
                            source,
                        })?,
                )
            }
            None => None,
        };
        let http_listener =
            TcpListener::bind(s.http_listen)
                .await
                .map_err(|source| StartError::Bind {
                    what: "HTTP",
                    addr: s.http_listen,
                    source,
                })?;

        // Policies.
        let mut auth = ServerAuth::new(s.webhooks.timeout);
        for a in &s.apps {
            auth = auth.tokens(&a.name, a.publish_token.clone(), a.play_token.clone());
        }
        let hook = |u: &Option<String>| u.as_deref().and_then(|u| HookUrl::parse(u).ok());
        auth = auth.hooks(hook(&s.webhooks.on_publish), hook(&s.webhooks.on_play));
        let auth: Arc<dyn arcly_core::auth::StreamAuthenticator> = Arc::new(auth);

        let mut registry = prometheus_client::registry::Registry::default();
        let observer = arcly_metrics::PrometheusObserver::new(&mut registry);

        let mut builder = Engine::builder()
            .max_publishers(s.limits.max_publishers)
            .max_subscribers_per_stream(s.limits.max_players_per_stream)
            .observer(Arc::new(observer))
            .authenticator(Arc::clone(&auth))
            .audit_sink(Arc::new(LogAudit), 4096)
            .shutdown_grace(s.shutdown_grace);
        for a in &s.apps {
            // Names were validated with the config.
            let spec = AppSpec::try_new(&a.name)
                .map_err(|e| crate::config::ConfigError {
                    setting: "app.name".into(),
                    flag: Some("--app"),
                    reason: e.to_string(),
                })?
                .gop_cache(a.gop_cache);
            builder = builder.application(spec);
        }
        let engine = builder.build();
        let metrics =
            arcly_metrics::MetricsService::new(Arc::new(registry), engine.health().clone());

        let mut tasks = Vec::new();
        let e2 = engine.clone();
        tasks.push((
            "engine",
            tokio::spawn(async move {
                let _ = e2.run().await;
            }),
        ));

        // Recording.
        let (recorder, recorder_task) = match &s.record.dir {
            Some(dir) => {
                let storage = FsStorage::new(dir).map_err(|e| StartError::RecordDir {
                    dir: dir.clone(),
                    reason: e.to_string(),
                })?;
                let config = RecordConfig {
                    segment_target: s.record.segment,
                    max_duration: s.record.max_duration,
                    ..RecordConfig::default()
                };
                let mut b = Recorder::builder(engine.clone(), Arc::new(storage)).default_policy(
                    RecordPolicy {
                        mode: RecordMode::Off,
                        config: config.clone(),
                        max_total_bytes: s.record.max_total_bytes,
                    },
                );
                for a in &s.apps {
                    b = b.policy(
                        &a.name,
                        RecordPolicy {
                            mode: record_mode(a.record),
                            config: config.clone(),
                            max_total_bytes: s.record.max_total_bytes,
                        },
                    );
                }
                let rec = b.build();
                let task = rec.run();
                (Some(rec), Some(task))
            }
            None => (None, None),
        };

        // RTMP.
        let rtmp_addr = match rtmp_listener {
            Some(listener) => {
                let addr = listener.local_addr().ok();
                let limits = IngestLimits {
                    max_connections: s.limits.max_connections,
                    max_connections_per_ip: s.limits.max_connections_per_ip,
                    shutdown_grace: s.shutdown_grace,
                    ..IngestLimits::default()
                };
                let cfg = RtmpConfig {
                    limits: limits.clone(),
                    rate_limit: s
                        .limits
                        .max_bitrate_kbps
                        .map(|k| arcly_rtmp::handler::RateLimit {
                            bytes_per_sec: k.saturating_mul(125),
                            messages_per_sec: 10_000,
                            burst_secs: 2.0,
                        }),
                    merge_writes: s.rtmp_merge_writes,
                    ..RtmpConfig::default()
                };
                let ingest = TcpIngest::new(
                    addr.unwrap_or(s.http_listen),
                    Arc::new(RtmpHandler::new(cfg)),
                    limits,
                );
                let ctx = engine.ingest_context();
                tasks.push((
                    "rtmp",
                    tokio::spawn(async move {
                        if let Err(e) = ingest.serve_listener(listener, ctx).await {
                            tracing::error!(error = %e, "RTMP stopped");
                        }
                    }),
                ));
                addr
            }
            None => None,
        };

        // HTTP.
        let monitor = Monitor::start(&engine);
        let hls = s
            .hls
            .enabled
            .then(|| HlsHost::start(&engine, &s.hls, Arc::clone(&auth)));
        if s.webhooks.on_unpublish.is_some() || s.webhooks.on_stop.is_some() {
            let notifier = spawn_notifier(
                &engine,
                hook(&s.webhooks.on_unpublish),
                hook(&s.webhooks.on_stop),
                s.webhooks.timeout,
            );
            tasks.push(("webhooks", notifier));
        }
        let http_addr = http_listener.local_addr().unwrap_or(s.http_listen);
        let state = HttpState {
            engine: engine.clone(),
            settings: Arc::clone(&settings),
            metrics,
            monitor,
            hls: hls.clone(),
            recorder,
        };
        // HTTP stops after the engine, once the playlists carry ENDLIST, so
        // players reloading in the meantime learn that the stream ended.
        let http_stop = tokio_util::sync::CancellationToken::new();
        let shutdown = http_stop.clone();
        let grace = s.shutdown_grace;
        tasks.push((
            "http",
            tokio::spawn(crate::http::serve(http_listener, state, shutdown, grace)),
        ));

        Ok(Self {
            engine,
            settings,
            rtmp_addr,
            http_addr,
            tasks,
            hls,
            recorder_task,
            http_stop,
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

    /// The start-up message: where to publish and where to play, in plain words.
    pub fn banner(&self) -> String {
        let s = &self.settings;
        let http_host = display_host(self.http_addr, &s.public_host);
        let http = format!("http://{http_host}:{}", self.http_addr.port());
        let app = &s.apps[0];
        let mut o = String::new();
        o.push_str(&format!(
            "arcly {} is running.\n",
            env!("CARGO_PKG_VERSION")
        ));
        if let Some(r) = self.rtmp_addr {
            o.push_str(&format!("arcly: rtmp listening on {r}\n"));
        }
        o.push_str(&format!("arcly: http listening on {}\n\n", self.http_addr));
        let token_hint = |t: &Option<String>| {
            if t.is_some() {
                "?token=YOUR_TOKEN"
            } else {
                ""
            }
        };
        match self.rtmp_addr {
            Some(r) => {
                let rtmp = format!("rtmp://{}:{}", display_host(r, &s.public_host), r.port());
                o.push_str("Publish with RTMP:\n");
                o.push_str(&format!(
                    "  URL:  {rtmp}/{}/KEY{}   (KEY is any stream name you choose)\n",
                    app.name,
                    token_hint(&app.publish_token)
                ));
                o.push_str("  In OBS (Settings > Stream, Service: Custom...):\n");
                o.push_str(&format!("    Server:      {rtmp}/{}\n", app.name));
                o.push_str(&format!(
                    "    Stream Key:  KEY{}\n",
                    token_hint(&app.publish_token)
                ));
                o.push_str(&format!(
                    "  With ffmpeg:  ffmpeg -re -i input.mp4 -c copy -f flv {rtmp}/{}/KEY{}\n\n",
                    app.name,
                    token_hint(&app.publish_token)
                ));
                o.push_str("Play:\n");
                o.push_str(&format!(
                    "  RTMP:      {rtmp}/{}/KEY{}\n",
                    app.name,
                    token_hint(&app.play_token)
                ));
            }
            None => o.push_str("RTMP is off: nothing can publish.\nPlay:\n"),
        }
        let play_q = token_hint(&app.play_token);
        if s.http_flv {
            o.push_str(&format!(
                "  HTTP-FLV:  {http}/{}/KEY.flv{play_q}\n",
                app.name
            ));
        }
        if s.hls.enabled {
            o.push_str(&format!(
                "  HLS:       {http}/{}/KEY/index.m3u8{play_q}{}\n",
                app.name,
                if s.hls.low_latency {
                    "   (low-latency HLS on)"
                } else {
                    ""
                }
            ));
        }
        o.push_str(&format!(
            "  Web page:  {http}/   (every live stream, with a player)\n"
        ));
        if s.apps.len() > 1 {
            let others: Vec<&str> = s.apps.iter().skip(1).map(|a| a.name.as_str()).collect();
            o.push_str(&format!(
                "  Other apps: {} (replace /{}/ in the URLs)\n",
                others.join(", "),
                app.name
            ));
        }
        o.push_str(&format!(
            "\nAdmin API: {http}/api/streams{}   Metrics: {http}/metrics\n",
            if s.admin_token.is_some() {
                " (bearer token required)"
            } else {
                ""
            }
        ));
        if let Some(dir) = &s.record.dir {
            let rec: Vec<String> = s
                .apps
                .iter()
                .map(|a| format!("{}={:?}", a.name, a.record).to_lowercase())
                .collect();
            o.push_str(&format!(
                "Recording to {} ({})\n",
                dir.display(),
                rec.join(", ")
            ));
        }
        o.push_str("Stop with Ctrl+C.\n");
        o
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
