//! Configuration: command-line flags ([`Cli`]), an optional TOML file
//! ([`FileConfig`]) with the same settings, and the validated result
//! ([`Settings`]).
//!
//! Precedence is built-in defaults, then the file, then the flags. Every
//! value is checked once at start-up; a bad one is refused with a
//! [`ConfigError`] that names the setting (as the file key and the flag) and
//! says why.
//!
//! ```
//! use arcly_server::config::{Cli, Settings};
//! use clap::Parser;
//! let cli = Cli::parse_from(["arcly", "--http-listen", "127.0.0.1:0", "--hls-segment", "1"]);
//! let s = Settings::resolve(&cli).unwrap();
//! assert_eq!(s.apps[0].name, "live");
//! assert_eq!(s.hls.segment.as_secs(), 1);
//!
//! let bad = Cli::parse_from(["arcly", "--hls-window", "0"]);
//! let e = Settings::resolve(&bad).unwrap_err();
//! assert!(e.to_string().contains("hls.window"));
//! ```

use clap::{Parser, ValueEnum};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Frames kept in the GOP cache of an app that enables it and gives no size.
pub const DEFAULT_GOP_CACHE_FRAMES: usize = 600;
/// Longest HLS segment target accepted.
pub const MAX_SEGMENT_SECS: f64 = 60.0;
/// Largest HLS window accepted.
pub const MAX_HLS_WINDOW: usize = 1000;
/// RTMP merged-write interval when none is set (HTTP-FLV players follow
/// the RTMP players' interval unless set apart).
pub const DEFAULT_MERGE_WRITES_MS: u64 =
    arcly_rtmp::handler::DEFAULT_MERGE_WRITES.as_millis() as u64;
/// Longest merged-write interval accepted (RTMP and HTTP-FLV).
pub const MAX_MERGE_WRITES_MS: u64 = 1000;
/// Longest webhook timeout accepted.
pub const MAX_WEBHOOK_TIMEOUT_MS: u64 = 60_000;

/// A setting that was refused at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting `{setting}`{}: {reason}", flag.map(|f| format!(" ({f})")).unwrap_or_default())]
pub struct ConfigError {
    /// The setting as it is spelled in the TOML file (`hls.segment_seconds`).
    pub setting: String,
    /// The flag that sets it, when there is one.
    pub flag: Option<&'static str>,
    /// Why it was refused.
    pub reason: String,
}

impl ConfigError {
    fn new(
        setting: impl Into<String>,
        flag: Option<&'static str>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            setting: setting.into(),
            flag,
            reason: reason.into(),
        }
    }
}

/// How players' timestamps are corrected (SRS's `time_jitter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TimeJitterArg {
    /// Monotonic output with the encoder's deltas; implausible jumps (clock
    /// resets, reconnects at 0) replaced by the last good delta.
    #[default]
    Full,
    /// Start near zero, then the encoder's deltas as sent, jumps included.
    Zero,
    /// The encoder's timestamps as sent.
    Off,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// HLS segment container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum HlsFormat {
    /// MPEG-TS for H.264/AAC/MP3, fMP4 for codecs TS cannot carry.
    #[default]
    Auto,
    /// Always MPEG-TS.
    Ts,
    /// Always fragmented MP4.
    Fmp4,
}

/// When streams are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RecordModeArg {
    /// Never (the default).
    #[default]
    Off,
    /// Every published stream.
    All,
    /// Only when asked through the admin API.
    OnRequest,
}

/// Command-line flags. Every one overrides the same setting of the file.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "arcly",
    version,
    allow_negative_numbers = true,
    about = "arcly streaming server: RTMP in, RTMP/HTTP-FLV/HLS out"
)]
pub struct Cli {
    /// A TOML file with the same settings as the flags (flags win).
    /// SIGHUP or POST /api/reload re-reads it: tokens, webhooks and the TLS
    /// certificate change live; other changes are logged as needing a restart.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Address RTMP listens on [default: 0.0.0.0:1935].
    #[arg(long, value_name = "ADDR")]
    pub rtmp_listen: Option<String>,
    /// Serve RTMP at all [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub rtmp: Option<bool>,
    /// Merge an RTMP player's writes: send what arrived in one write per
    /// this many milliseconds, on a grid shared by all players (0 writes
    /// every frame at once: lowest latency, most CPU per player) [default: 200].
    #[arg(long, value_name = "MS")]
    pub rtmp_merge_writes_ms: Option<u64>,
    /// Ping RTMP players that wait for a publisher this often (user control
    /// PingRequest); their answers keep them past the idle timeout [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub rtmp_ping_interval: Option<f64>,
    /// Longest an RTMP player waits for a publisher before it is closed
    /// [default: as long as it answers pings].
    #[arg(long, value_name = "SECONDS")]
    pub rtmp_max_publisher_wait: Option<f64>,
    /// When a publisher leaves, RTMP and HTTP-FLV players wait this long for
    /// the next one (an encoder restart) and go on with it; 0 ends their
    /// play at once [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub republish_grace: Option<f64>,
    /// Timestamp correction for RTMP and HTTP-FLV players [default: full].
    #[arg(long, value_name = "MODE")]
    pub time_jitter: Option<TimeJitterArg>,
    /// Address HTTP (HTTP-FLV, HLS, API, web page, metrics) listens on [default: 0.0.0.0:8080].
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// Host name printed in the URLs at start [default: this machine's name, or localhost].
    #[arg(long, value_name = "HOST")]
    pub public_host: Option<String>,
    /// An application (the `live` of rtmp://host/live/KEY); repeat for more.
    /// Given on the command line, the list replaces the file's [default: live].
    #[arg(long = "app", value_name = "NAME")]
    pub apps: Vec<String>,
    /// GOP cache size in frames for every app (0 disables) [default: 600].
    #[arg(long, value_name = "FRAMES")]
    pub gop_cache: Option<usize>,
    /// Publish token for an app, as APP=TOKEN (clients send KEY?token=TOKEN); repeatable.
    #[arg(long, value_name = "APP=TOKEN")]
    pub publish_token: Vec<String>,
    /// Play token for an app, as APP=TOKEN; repeatable.
    #[arg(long, value_name = "APP=TOKEN")]
    pub play_token: Vec<String>,
    /// Serve HTTP-FLV at /APP/KEY.flv [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub http_flv: Option<bool>,
    /// Merge an HTTP-FLV player's writes: send what arrived in one write per
    /// this many milliseconds, on a grid shared by all players (0 writes
    /// every frame at once) [default: RTMP players' interval, 200].
    #[arg(long, value_name = "MS")]
    pub http_flv_merge_writes_ms: Option<u64>,
    /// Longest an HTTP client may take to send a request's headers, and
    /// longest an idle keep-alive connection is kept (slowloris bound) [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub http_header_timeout: Option<f64>,
    /// An HTTP response write (an HTTP-FLV player, a segment) that makes no
    /// progress this long closes the connection [default: 20].
    #[arg(long, value_name = "SECONDS")]
    pub http_write_timeout: Option<f64>,
    /// Package HLS at /APP/KEY/index.m3u8 [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub hls: Option<bool>,
    /// HLS segment target in seconds [default: 2].
    #[arg(long, value_name = "SECONDS")]
    pub hls_segment: Option<f64>,
    /// LL-HLS part target in seconds [default: 0.5].
    #[arg(long, value_name = "SECONDS")]
    pub hls_part: Option<f64>,
    /// Segments listed in a live HLS playlist [default: 6].
    #[arg(long, value_name = "N")]
    pub hls_window: Option<usize>,
    /// Low-latency HLS (parts, preload hints, blocking reloads) [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub ll_hls: Option<bool>,
    /// HLS segment format [default: auto].
    #[arg(long, value_name = "FORMAT")]
    pub hls_format: Option<HlsFormat>,
    /// Seconds after a publisher leaves before its HLS playlist is ended
    /// with EXT-X-ENDLIST (a publisher back sooner continues it) [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub hls_end_after: Option<f64>,
    /// Directory recordings are written under (must exist and be writable).
    #[arg(long, value_name = "DIR")]
    pub record_dir: Option<PathBuf>,
    /// Which streams are recorded [default: off].
    #[arg(long, value_name = "MODE")]
    pub record: Option<RecordModeArg>,
    /// Recording segment target in seconds [default: 6].
    #[arg(long, value_name = "SECONDS")]
    pub record_segment: Option<f64>,
    /// A recording stops after this many seconds of media [default: unlimited].
    #[arg(long, value_name = "SECONDS")]
    pub record_max_duration: Option<f64>,
    /// Keep each app's recordings under this many bytes, those of earlier
    /// runs included; the oldest segments are deleted first [default: unlimited].
    #[arg(long, value_name = "BYTES")]
    pub record_max_total_bytes: Option<u64>,
    /// Connections open at once, per protocol listener [default: 10000].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
    /// Connections open at once from one IP address [default: 256].
    #[arg(long, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Inbound bitrate a publishing connection may send, in kbit/s [default: unlimited].
    #[arg(long, value_name = "KBPS")]
    pub max_bitrate_kbps: Option<u64>,
    /// Publishers at once across all apps [default: unlimited].
    #[arg(long, value_name = "N")]
    pub max_publishers: Option<usize>,
    /// Players at once on one stream [default: unlimited].
    #[arg(long, value_name = "N")]
    pub max_players_per_stream: Option<usize>,
    /// Log level or tracing filter directive (info, debug, `info,arcly_rtmp=debug`) [default: info].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log line format [default: pretty].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Bearer token the admin API and /metrics require from every caller
    /// (`Authorization: Bearer TOKEN`). Without one they answer only this
    /// machine (loopback) [default: none].
    #[arg(long, value_name = "TOKEN", env = "ARCLY_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Serve the admin API (and /metrics) on a listener of its own, e.g.
    /// 127.0.0.1:9997, instead of the HTTP port [default: none].
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// Secret (at least 32 bytes) verifying HS256 JSON Web Tokens, which are
    /// then accepted wherever a token is (`arcly token` issues them) [default: none].
    #[arg(
        long,
        value_name = "SECRET",
        env = "ARCLY_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<String>,
    /// JWKS file whose public keys (RS256, ES256, …) verify JSON Web Tokens [default: none].
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// http:// URL of a JWKS verifying JSON Web Tokens, fetched at start and
    /// refreshed (https is not supported) [default: none].
    #[arg(long, value_name = "URL")]
    pub jwks_url: Option<String>,
    /// Seconds between fetches of the JWKS URL [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub jwks_refresh: Option<f64>,
    /// Clock skew tolerated on a JWT's expiry, in seconds [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub jwt_leeway: Option<u64>,
    /// With JWTs configured, what needs a credential (a JWT, or the app's
    /// static token) on every app [default: both].
    #[arg(long, value_name = "ACTIONS")]
    pub jwt_required_for: Option<JwtRequired>,
    /// A subcommand instead of running the server.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Webhook asked before every publish (2xx allows).
    #[arg(long, value_name = "URL")]
    pub on_publish: Option<String>,
    /// Webhook asked before every play (2xx allows).
    #[arg(long, value_name = "URL")]
    pub on_play: Option<String>,
    /// Webhook told when a publisher leaves.
    #[arg(long, value_name = "URL")]
    pub on_unpublish: Option<String>,
    /// Webhook told when a player leaves.
    #[arg(long, value_name = "URL")]
    pub on_stop: Option<String>,
    /// How long a webhook may take, in milliseconds [default: 3000].
    #[arg(long, value_name = "MS")]
    pub webhook_timeout_ms: Option<u64>,
    /// Seconds allowed for a clean stop after SIGINT/SIGTERM [default: 5].
    #[arg(long, value_name = "SECONDS")]
    pub shutdown_grace: Option<f64>,
    /// Serve RTMPS (RTMP over TLS) on this address, e.g. 0.0.0.0:1936;
    /// needs --tls-cert and --tls-key [default: off].
    #[arg(long, value_name = "ADDR")]
    pub rtmps_listen: Option<String>,
    /// Serve HTTPS (everything HTTP serves) on this address, e.g.
    /// 0.0.0.0:8443; needs --tls-cert and --tls-key [default: off].
    #[arg(long, value_name = "ADDR")]
    pub https_listen: Option<String>,
    /// PEM certificate chain (leaf first) for RTMPS and HTTPS; re-read on
    /// reload (SIGHUP or POST /api/reload).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
}

/// The TOML file. Every table and key is optional; unknown keys are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[rtmp]`.
    #[serde(default)]
    pub rtmp: FileRtmp,
    /// `[http]`.
    #[serde(default)]
    pub http: FileHttp,
    /// `[[app]]`, one table per application.
    #[serde(default, rename = "app")]
    pub apps: Vec<FileApp>,
    /// `[hls]`.
    #[serde(default)]
    pub hls: FileHls,
    /// `[record]`.
    #[serde(default)]
    pub record: FileRecord,
    /// `[limits]`.
    #[serde(default)]
    pub limits: FileLimits,
    /// `[log]`.
    #[serde(default)]
    pub log: FileLog,
    /// `[admin]`.
    #[serde(default)]
    pub admin: FileAdmin,
    /// `[webhooks]`.
    #[serde(default)]
    pub webhooks: FileWebhooks,
    /// `[auth]`: signed tokens (JWT).
    #[serde(default)]
    pub auth: FileAuth,
    /// Seconds allowed for a clean stop.
    pub shutdown_grace_seconds: Option<f64>,
    /// `[rtmps]`.
    #[serde(default)]
    pub rtmps: FileTlsListener,
    /// `[https]`.
    #[serde(default)]
    pub https: FileTlsListener,
    /// `[tls]`.
    #[serde(default)]
    pub tls: FileTls,
}

/// `[rtmps]` or `[https]` of the file: a listener over TLS.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTlsListener {
    /// `enabled`: serve it on its default address unless `listen` says.
    pub enabled: Option<bool>,
    /// `listen`: serve it here (turns it on unless `enabled = false`).
    pub listen: Option<String>,
}

/// `[tls]` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTls {
    /// `tls.cert`: PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// `tls.key`: PEM private key.
    pub key: Option<PathBuf>,
}

/// Address RTMPS listens on when turned on without an address.
pub const DEFAULT_RTMPS_LISTEN: &str = "0.0.0.0:1936";
/// Address HTTPS listens on when turned on without an address.
pub const DEFAULT_HTTPS_LISTEN: &str = "0.0.0.0:8443";

/// The certificate and key of the TLS listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `[rtmp]` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRtmp {
    /// `rtmp.enabled`.
    pub enabled: Option<bool>,
    /// `rtmp.listen`.
    pub listen: Option<String>,
    /// `rtmp.merge_writes_ms`: RTMP players' merged-write interval.
    pub merge_writes_ms: Option<u64>,
    /// `rtmp.ping_interval_seconds`.
    pub ping_interval_seconds: Option<f64>,
    /// `rtmp.max_publisher_wait_seconds`.
    pub max_publisher_wait_seconds: Option<f64>,
    /// `rtmp.republish_grace_seconds` (RTMP and HTTP-FLV players).
    pub republish_grace_seconds: Option<f64>,
    /// `rtmp.time_jitter` (RTMP and HTTP-FLV players).
    pub time_jitter: Option<TimeJitterArg>,
}

/// `[http]` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHttp {
    /// `http.listen`.
    pub listen: Option<String>,
    /// `http.flv`: serve HTTP-FLV.
    pub flv: Option<bool>,
    /// `http.flv_merge_writes_ms`: HTTP-FLV merged-write interval.
    pub flv_merge_writes_ms: Option<u64>,
    /// `http.header_timeout_seconds`.
    pub header_timeout_seconds: Option<f64>,
    /// `http.write_timeout_seconds`.
    pub write_timeout_seconds: Option<f64>,
    /// `http.public_host`.
    pub public_host: Option<String>,
}

/// One `[[app]]` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApp {
    /// `app.name`.
    pub name: String,
    /// `app.gop_cache`: frames (0 disables).
    pub gop_cache: Option<usize>,
    /// `app.publish_token`.
    pub publish_token: Option<String>,
    /// `app.play_token`.
    pub play_token: Option<String>,
    /// `app.record`: overrides `record.mode` for this app.
    pub record: Option<RecordModeArg>,
}

/// `[hls]` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHls {
    /// `hls.enabled`.
    pub enabled: Option<bool>,
    /// `hls.segment_seconds`.
    pub segment_seconds: Option<f64>,
    /// `hls.part_seconds`.
    pub part_seconds: Option<f64>,
    /// `hls.window`.
    pub window: Option<usize>,
    /// `hls.low_latency`.
    pub low_latency: Option<bool>,
    /// `hls.format`.
    pub format: Option<HlsFormat>,
    /// `hls.end_after_seconds`.
    pub end_after_seconds: Option<f64>,
}

/// `[record]` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    /// `record.dir`.
    pub dir: Option<PathBuf>,
    /// `record.mode`.
    pub mode: Option<RecordModeArg>,
    /// `record.segment_seconds`.
    pub segment_seconds: Option<f64>,
    /// `record.max_duration_seconds`.
    pub max_duration_seconds: Option<f64>,
    /// `record.max_total_bytes`: per app, oldest deleted first.
    pub max_total_bytes: Option<u64>,
}

/// `[limits]` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    /// `limits.max_connections`.
    pub max_connections: Option<usize>,
    /// `limits.max_connections_per_ip`.
    pub max_connections_per_ip: Option<usize>,
    /// `limits.max_bitrate_kbps`.
    pub max_bitrate_kbps: Option<u64>,
    /// `limits.max_publishers`.
    pub max_publishers: Option<usize>,
    /// `limits.max_players_per_stream`.
    pub max_players_per_stream: Option<usize>,
}

/// `[log]` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLog {
    /// `log.level`.
    pub level: Option<String>,
    /// `log.format`.
    pub format: Option<LogFormat>,
}

/// `[admin]` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAdmin {
    /// `admin.token`.
    pub token: Option<String>,
    /// `admin.listen`.
    pub listen: Option<String>,
}

/// `[webhooks]` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWebhooks {
    /// `webhooks.on_publish`.
    pub on_publish: Option<String>,
    /// `webhooks.on_play`.
    pub on_play: Option<String>,
    /// `webhooks.on_unpublish`.
    pub on_unpublish: Option<String>,
    /// `webhooks.on_stop`.
    pub on_stop: Option<String>,
    /// `webhooks.timeout_ms`.
    pub timeout_ms: Option<u64>,
}

/// One application after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// Its name.
    pub name: String,
    /// GOP cache in frames (0: off).
    pub gop_cache: usize,
    /// Token publishers must send, if any.
    pub publish_token: Option<String>,
    /// Token players must send, if any.
    pub play_token: Option<String>,
    /// Recording mode of this app.
    pub record: RecordModeArg,
}

/// HLS after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct HlsSettings {
    /// Package HLS at all.
    pub enabled: bool,
    /// Segment target.
    pub segment: Duration,
    /// LL-HLS part target.
    pub part: Duration,
    /// Segments in the live playlist.
    pub window: usize,
    /// LL-HLS on.
    pub low_latency: bool,
    /// Segment container.
    pub format: HlsFormat,
    /// How long after a publisher leaves its playlist is ended.
    pub end_after: Duration,
}

/// Recording after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSettings {
    /// Where recordings go (required when any app records).
    pub dir: Option<PathBuf>,
    /// Segment target.
    pub segment: Duration,
    /// Longest recording.
    pub max_duration: Option<Duration>,
    /// Per-app size bound.
    pub max_total_bytes: Option<u64>,
}

/// Limits after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    /// Connections per listener.
    pub max_connections: usize,
    /// Connections per IP address.
    pub max_connections_per_ip: usize,
    /// Inbound bitrate per publishing connection, kbit/s.
    pub max_bitrate_kbps: Option<u64>,
    /// Publishers in total.
    pub max_publishers: usize,
    /// Players per stream.
    pub max_players_per_stream: usize,
}

/// Webhooks after validation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookSettings {
    /// Asked before a publish.
    pub on_publish: Option<String>,
    /// Asked before a play.
    pub on_play: Option<String>,
    /// Told after an unpublish.
    pub on_unpublish: Option<String>,
    /// Told after a play ends.
    pub on_stop: Option<String>,
    /// Bound on each call.
    pub timeout: Duration,
}

impl WebhookSettings {
    /// Whether any hook is configured.
    pub fn any(&self) -> bool {
        self.on_publish.is_some()
            || self.on_play.is_some()
            || self.on_unpublish.is_some()
            || self.on_stop.is_some()
    }
}

/// Every setting, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// RTMP listener, or `None` when RTMP is off.
    pub rtmp_listen: Option<SocketAddr>,
    /// HTTP listener.
    pub http_listen: SocketAddr,
    /// Host name for printed URLs.
    pub public_host: String,
    /// Applications.
    pub apps: Vec<AppSettings>,
    /// HTTP-FLV on.
    pub http_flv: bool,
    /// HTTP-FLV merged-write interval (zero: every frame at once).
    pub http_flv_merge_writes: Duration,
    /// RTMP players' merged-write interval (zero: every frame at once).
    pub rtmp_merge_writes: Duration,
    /// How often RTMP players waiting for a publisher are pinged.
    pub rtmp_ping_interval: Duration,
    /// Longest an RTMP player waits for a publisher (`None`: while it answers).
    pub rtmp_max_publisher_wait: Option<Duration>,
    /// How long players wait for the next publisher after one leaves.
    pub republish_grace: Duration,
    /// Players' timestamp correction.
    pub time_jitter: TimeJitterArg,
    /// HTTP request-head (and keep-alive idle) timeout.
    pub http_header_timeout: Duration,
    /// HTTP write-stall timeout.
    pub http_write_timeout: Duration,
    /// HLS.
    pub hls: HlsSettings,
    /// Recording.
    pub record: RecordSettings,
    /// Limits.
    pub limits: LimitSettings,
    /// Log filter directive.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Admin bearer token.
    pub admin_token: Option<String>,
    /// The admin API's own listener, when set apart from HTTP.
    pub admin_listen: Option<SocketAddr>,
    /// Webhooks.
    pub webhooks: WebhookSettings,
    /// Signed tokens (JWT).
    pub jwt: JwtSettings,
    /// Clean-stop bound.
    pub shutdown_grace: Duration,
    /// RTMPS listener, when on.
    pub rtmps_listen: Option<SocketAddr>,
    /// HTTPS listener, when on.
    pub https_listen: Option<SocketAddr>,
    /// Certificate and key, when a TLS listener is on.
    pub tls: Option<TlsSettings>,
}

impl Settings {
    /// Read the file named by `--config` (if any), apply the flags over it
    /// and validate everything.
    pub fn resolve(cli: &Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        Self::merge(&file, cli)
    }

    /// Apply `cli` over `file` and validate.
    pub fn merge(file: &FileConfig, cli: &Cli) -> Result<Self, ConfigError> {
        let rtmp_on = cli.rtmp.or(file.rtmp.enabled).unwrap_or(true);
        let rtmp_listen = addr(
            "rtmp.listen",
            "--rtmp-listen",
            cli.rtmp_listen.as_deref().or(file.rtmp.listen.as_deref()),
            "0.0.0.0:1935",
        )?;
        let http_listen = addr(
            "http.listen",
            "--http-listen",
            cli.http_listen.as_deref().or(file.http.listen.as_deref()),
            "0.0.0.0:8080",
        )?;
        if rtmp_on && rtmp_listen == http_listen && rtmp_listen.port() != 0 {
            return Err(ConfigError::new(
                "http.listen",
                Some("--http-listen"),
                format!("{http_listen} is also the RTMP address"),
            ));
        }
        let public_host = cli
            .public_host
            .clone()
            .or_else(|| file.http.public_host.clone())
            .unwrap_or_else(default_host);
        if public_host.is_empty() || public_host.contains(['/', ' ']) {
            return Err(ConfigError::new(
                "http.public_host",
                Some("--public-host"),
                format!("{public_host:?} is not a host name"),
            ));
        }

        let apps = resolve_apps(file, cli)?;

        let hls = resolve_hls(file, cli)?;

        let record = resolve_record(file, cli, &apps)?;

        let limits = resolve_limits(file, cli)?;

        let log_level = cli
            .log_level
            .clone()
            .or_else(|| file.log.level.clone())
            .unwrap_or_else(|| "info".into());
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&log_level) {
            return Err(ConfigError::new(
                "log.level",
                Some("--log-level"),
                format!("{log_level:?} is not a level or filter directive: {e}"),
            ));
        }

        let admin_token = cli.admin_token.clone().or_else(|| file.admin.token.clone());
        if admin_token.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::new(
                "admin.token",
                Some("--admin-token"),
                "must not be empty",
            ));
        }
        let admin_listen = match cli.admin_listen.as_deref().or(file.admin.listen.as_deref()) {
            Some(v) => {
                let a = addr("admin.listen", "--admin-listen", Some(v), "")?;
                if a.port() != 0 && (a == http_listen || (rtmp_on && a == rtmp_listen)) {
                    return Err(ConfigError::new(
                        "admin.listen",
                        Some("--admin-listen"),
                        format!("{a} is already the HTTP or RTMP address"),
                    ));
                }
                Some(a)
            }
            None => None,
        };

        let webhooks = resolve_webhooks(file, cli)?;

        let jwt = resolve_jwt(&file.auth, cli)?;

        let rtmp_merge_ms = merge_interval(
            "rtmp.merge_writes_ms",
            "--rtmp-merge-writes-ms",
            cli.rtmp_merge_writes_ms.or(file.rtmp.merge_writes_ms),
            DEFAULT_MERGE_WRITES_MS,
        )?;
        let merge_ms = merge_interval(
            "http.flv_merge_writes_ms",
            "--http-flv-merge-writes-ms",
            cli.http_flv_merge_writes_ms
                .or(file.http.flv_merge_writes_ms),
            rtmp_merge_ms,
        )?;

        // Bounds against hostile or stalled peers.
        let http_header_timeout = secs(
            "http.header_timeout_seconds",
            "--http-header-timeout",
            cli.http_header_timeout.or(file.http.header_timeout_seconds),
            10.0,
            0.5,
            300.0,
        )?;
        let http_write_timeout = secs(
            "http.write_timeout_seconds",
            "--http-write-timeout",
            cli.http_write_timeout.or(file.http.write_timeout_seconds),
            20.0,
            0.5,
            600.0,
        )?;
        let rtmp_ping_interval = secs(
            "rtmp.ping_interval_seconds",
            "--rtmp-ping-interval",
            cli.rtmp_ping_interval.or(file.rtmp.ping_interval_seconds),
            10.0,
            0.5,
            300.0,
        )?;
        let rtmp_max_publisher_wait = match cli
            .rtmp_max_publisher_wait
            .or(file.rtmp.max_publisher_wait_seconds)
        {
            Some(v) => Some(secs(
                "rtmp.max_publisher_wait_seconds",
                "--rtmp-max-publisher-wait",
                Some(v),
                v,
                0.5,
                86_400.0,
            )?),
            None => None,
        };

        let republish_grace = secs(
            "rtmp.republish_grace_seconds",
            "--republish-grace",
            cli.republish_grace.or(file.rtmp.republish_grace_seconds),
            10.0,
            0.0,
            600.0,
        )?;

        let shutdown_grace = secs(
            "shutdown_grace_seconds",
            "--shutdown-grace",
            cli.shutdown_grace.or(file.shutdown_grace_seconds),
            5.0,
            0.1,
            300.0,
        )?;

        let (rtmps_listen, https_listen, tls) = resolve_tls(file, cli)?;
        for (key, flag, a) in [
            ("rtmps.listen", "--rtmps-listen", rtmps_listen),
            ("https.listen", "--https-listen", https_listen),
        ] {
            let Some(a) = a.filter(|a| a.port() != 0) else {
                continue;
            };
            let taken = [
                Some(http_listen),
                rtmp_on.then_some(rtmp_listen),
                admin_listen,
            ]
            .contains(&Some(a))
                || (key == "https.listen" && rtmps_listen == Some(a));
            if taken {
                return Err(ConfigError::new(
                    key,
                    Some(flag),
                    format!("{a} is already used by another listener"),
                ));
            }
        }

        Ok(Self {
            rtmps_listen,
            https_listen,
            tls,
            rtmp_listen: rtmp_on.then_some(rtmp_listen),
            http_listen,
            public_host,
            apps,
            http_flv: cli.http_flv.or(file.http.flv).unwrap_or(true),
            http_flv_merge_writes: Duration::from_millis(merge_ms),
            rtmp_merge_writes: Duration::from_millis(rtmp_merge_ms),
            rtmp_ping_interval,
            rtmp_max_publisher_wait,
            republish_grace,
            time_jitter: cli
                .time_jitter
                .or(file.rtmp.time_jitter)
                .unwrap_or_default(),
            http_header_timeout,
            http_write_timeout,
            hls,
            record,
            limits,
            log_level,
            log_format: cli.log_format.or(file.log.format).unwrap_or_default(),
            admin_token,
            admin_listen,
            webhooks,
            jwt,
            shutdown_grace,
        })
    }

    /// The settings of app `name`.
    pub fn app(&self, name: &str) -> Option<&AppSettings> {
        self.apps.iter().find(|a| a.name == name)
    }
}

/// Read and parse a TOML config file.
pub fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "config",
            Some("--config"),
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.message().to_owned();
        let span = e
            .span()
            .map(|s| {
                let line = text.get(..s.start).map_or(0, |t| t.matches('\n').count()) + 1;
                let src = text.lines().nth(line - 1).unwrap_or("").trim();
                format!(" at line {line}: `{src}`")
            })
            .unwrap_or_default();
        ConfigError::new(
            format!("config file {}", path.display()),
            None,
            format!("{msg}{span}"),
        )
    })
}

fn default_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ']))
        .unwrap_or_else(|| "localhost".into())
}

fn addr(
    key: &str,
    flag: &'static str,
    v: Option<&str>,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let v = v.unwrap_or(default);
    v.parse().map_err(|_| {
        ConfigError::new(
            key,
            Some(flag),
            format!("{v:?} is not an IP:port address (e.g. 0.0.0.0:1935)"),
        )
    })
}

fn secs(
    key: &str,
    flag: &'static str,
    v: Option<f64>,
    default: f64,
    min: f64,
    max: f64,
) -> Result<Duration, ConfigError> {
    let v = v.unwrap_or(default);
    if !v.is_finite() || v < min || v > max {
        return Err(ConfigError::new(
            key,
            Some(flag),
            format!("must be {min} to {max} seconds, got {v}"),
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

/// `[hls]`: segment and part durations, window, format.
fn resolve_hls(file: &FileConfig, cli: &Cli) -> Result<HlsSettings, ConfigError> {
    let seg = secs(
        "hls.segment_seconds",
        "--hls-segment",
        cli.hls_segment.or(file.hls.segment_seconds),
        2.0,
        0.1,
        MAX_SEGMENT_SECS,
    )?;
    let part = secs(
        "hls.part_seconds",
        "--hls-part",
        cli.hls_part.or(file.hls.part_seconds),
        0.5,
        0.05,
        MAX_SEGMENT_SECS,
    )?;
    if part >= seg {
        return Err(ConfigError::new(
            "hls.part_seconds",
            Some("--hls-part"),
            format!(
                "a part ({}s) must be shorter than a segment ({}s)",
                part.as_secs_f64(),
                seg.as_secs_f64()
            ),
        ));
    }
    let window = cli.hls_window.or(file.hls.window).unwrap_or(6);
    if !(1..=MAX_HLS_WINDOW).contains(&window) {
        return Err(ConfigError::new(
            "hls.window",
            Some("--hls-window"),
            format!("must be 1 to {MAX_HLS_WINDOW} segments, got {window}"),
        ));
    }
    let hls = HlsSettings {
        enabled: cli.hls.or(file.hls.enabled).unwrap_or(true),
        segment: seg,
        part,
        window,
        low_latency: cli.ll_hls.or(file.hls.low_latency).unwrap_or(false),
        format: cli.hls_format.or(file.hls.format).unwrap_or_default(),
        end_after: secs(
            "hls.end_after_seconds",
            "--hls-end-after",
            cli.hls_end_after.or(file.hls.end_after_seconds),
            10.0,
            0.0,
            3600.0,
        )?,
    };
    Ok(hls)
}

/// `[record]`, checked against the apps' record modes.
fn resolve_record(
    file: &FileConfig,
    cli: &Cli,
    apps: &[AppSettings],
) -> Result<RecordSettings, ConfigError> {
    let record = RecordSettings {
        dir: cli.record_dir.clone().or_else(|| file.record.dir.clone()),
        segment: secs(
            "record.segment_seconds",
            "--record-segment",
            cli.record_segment.or(file.record.segment_seconds),
            6.0,
            0.1,
            600.0,
        )?,
        max_duration: match cli.record_max_duration.or(file.record.max_duration_seconds) {
            None => None,
            Some(v) => Some(secs(
                "record.max_duration_seconds",
                "--record-max-duration",
                Some(v),
                0.0,
                1.0,
                30.0 * 86_400.0,
            )?),
        },
        max_total_bytes: cli.record_max_total_bytes.or(file.record.max_total_bytes),
    };
    if record.max_total_bytes == Some(0) {
        return Err(ConfigError::new(
            "record.max_total_bytes",
            Some("--record-max-total-bytes"),
            "must be more than 0 (leave it out for no bound)",
        ));
    }
    if apps.iter().any(|a| a.record != RecordModeArg::Off) && record.dir.is_none() {
        return Err(ConfigError::new(
            "record.dir",
            Some("--record-dir"),
            "recording is on but no directory is given",
        ));
    }
    Ok(record)
}

/// `[limits]`.
fn resolve_limits(file: &FileConfig, cli: &Cli) -> Result<LimitSettings, ConfigError> {
    let positive = |key: &str, flag: &'static str, v: Option<usize>, d: usize| {
        let v = v.unwrap_or(d);
        if v == 0 {
            Err(ConfigError::new(key, Some(flag), "must be at least 1"))
        } else {
            Ok(v)
        }
    };
    let limits = LimitSettings {
        max_connections: positive(
            "limits.max_connections",
            "--max-connections",
            cli.max_connections.or(file.limits.max_connections),
            10_000,
        )?,
        max_connections_per_ip: positive(
            "limits.max_connections_per_ip",
            "--max-connections-per-ip",
            cli.max_connections_per_ip
                .or(file.limits.max_connections_per_ip),
            256,
        )?,
        max_bitrate_kbps: match cli.max_bitrate_kbps.or(file.limits.max_bitrate_kbps) {
            Some(0) => {
                return Err(ConfigError::new(
                    "limits.max_bitrate_kbps",
                    Some("--max-bitrate-kbps"),
                    "must be at least 1 kbit/s (leave it out for no bound)",
                ))
            }
            v => v,
        },
        max_publishers: positive(
            "limits.max_publishers",
            "--max-publishers",
            cli.max_publishers.or(file.limits.max_publishers),
            usize::MAX,
        )?,
        max_players_per_stream: positive(
            "limits.max_players_per_stream",
            "--max-players-per-stream",
            cli.max_players_per_stream
                .or(file.limits.max_players_per_stream),
            usize::MAX,
        )?,
    };
    if limits.max_connections_per_ip > limits.max_connections {
        return Err(ConfigError::new(
            "limits.max_connections_per_ip",
            Some("--max-connections-per-ip"),
            format!(
                "{} is more than limits.max_connections ({})",
                limits.max_connections_per_ip, limits.max_connections
            ),
        ));
    }
    Ok(limits)
}

/// `[webhooks]`: each URL checked, the timeout bounded.
fn resolve_webhooks(file: &FileConfig, cli: &Cli) -> Result<WebhookSettings, ConfigError> {
    let hook = |key: &str,
                flag: &'static str,
                v: Option<&String>|
     -> Result<Option<String>, ConfigError> {
        match v {
            None => Ok(None),
            Some(u) => crate::webhook::HookUrl::parse(u)
                .map(|_| Some(u.clone()))
                .map_err(|reason| ConfigError::new(key, Some(flag), reason)),
        }
    };
    let w = &file.webhooks;
    let timeout_ms = cli.webhook_timeout_ms.or(w.timeout_ms).unwrap_or(3000);
    if !(1..=MAX_WEBHOOK_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(ConfigError::new(
            "webhooks.timeout_ms",
            Some("--webhook-timeout-ms"),
            format!("must be 1 to {MAX_WEBHOOK_TIMEOUT_MS} ms, got {timeout_ms}"),
        ));
    }
    let webhooks = WebhookSettings {
        on_publish: hook(
            "webhooks.on_publish",
            "--on-publish",
            cli.on_publish.as_ref().or(w.on_publish.as_ref()),
        )?,
        on_play: hook(
            "webhooks.on_play",
            "--on-play",
            cli.on_play.as_ref().or(w.on_play.as_ref()),
        )?,
        on_unpublish: hook(
            "webhooks.on_unpublish",
            "--on-unpublish",
            cli.on_unpublish.as_ref().or(w.on_unpublish.as_ref()),
        )?,
        on_stop: hook(
            "webhooks.on_stop",
            "--on-stop",
            cli.on_stop.as_ref().or(w.on_stop.as_ref()),
        )?,
        timeout: Duration::from_millis(timeout_ms),
    };
    Ok(webhooks)
}

fn resolve_apps(file: &FileConfig, cli: &Cli) -> Result<Vec<AppSettings>, ConfigError> {
    let record_default = cli.record.or(file.record.mode).unwrap_or_default();
    let mut apps: Vec<AppSettings> = if !cli.apps.is_empty() {
        cli.apps
            .iter()
            .map(|n| {
                let from_file = file.apps.iter().find(|a| &a.name == n);
                AppSettings {
                    name: n.clone(),
                    gop_cache: from_file
                        .and_then(|a| a.gop_cache)
                        .unwrap_or(DEFAULT_GOP_CACHE_FRAMES),
                    publish_token: from_file.and_then(|a| a.publish_token.clone()),
                    play_token: from_file.and_then(|a| a.play_token.clone()),
                    record: from_file.and_then(|a| a.record).unwrap_or(record_default),
                }
            })
            .collect()
    } else if !file.apps.is_empty() {
        file.apps
            .iter()
            .map(|a| AppSettings {
                name: a.name.clone(),
                gop_cache: a.gop_cache.unwrap_or(DEFAULT_GOP_CACHE_FRAMES),
                publish_token: a.publish_token.clone(),
                play_token: a.play_token.clone(),
                record: a.record.unwrap_or(record_default),
            })
            .collect()
    } else {
        vec![AppSettings {
            name: "live".into(),
            gop_cache: DEFAULT_GOP_CACHE_FRAMES,
            publish_token: None,
            play_token: None,
            record: record_default,
        }]
    };
    // A flag for recording applies to every app.
    if let Some(mode) = cli.record {
        for a in &mut apps {
            a.record = mode;
        }
    }
    if let Some(g) = cli.gop_cache {
        for a in &mut apps {
            a.gop_cache = g;
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for a in &apps {
        if let Err(e) = arcly_core::AppName::new(&a.name) {
            return Err(ConfigError::new("app.name", Some("--app"), e.to_string()));
        }
        if !a
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(ConfigError::new(
                "app.name",
                Some("--app"),
                format!(
                    "{:?} may only use letters, digits, '-', '_' and '.' (it is part of every URL)",
                    a.name
                ),
            ));
        }
        if !seen.insert(a.name.clone()) {
            return Err(ConfigError::new(
                "app.name",
                Some("--app"),
                format!("{:?} is listed twice", a.name),
            ));
        }
        if RESERVED_APPS.contains(&a.name.as_str()) {
            return Err(ConfigError::new(
                "app.name",
                Some("--app"),
                format!("{:?} is reserved for the server's own HTTP paths", a.name),
            ));
        }
    }
    apply_tokens(&mut apps, &cli.publish_token, "--publish-token", |a, t| {
        a.publish_token = Some(t)
    })?;
    apply_tokens(&mut apps, &cli.play_token, "--play-token", |a, t| {
        a.play_token = Some(t)
    })?;
    for a in &apps {
        for (which, t) in [
            ("publish_token", &a.publish_token),
            ("play_token", &a.play_token),
        ] {
            if let Some(t) = t {
                // Any other character travels percent-encoded in a URL
                // (`%26` for '&'), and is decoded before the comparison.
                if t.is_empty() || t.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    return Err(ConfigError::new(
                        format!("app.{which}"),
                        None,
                        format!(
                            "the token of app {:?} must be non-empty, without spaces or control characters",
                            a.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(apps)
}

/// The TLS listeners (each on when its address or `enabled` is given) and
/// the certificate they need.
#[allow(clippy::type_complexity)]
fn resolve_tls(
    file: &FileConfig,
    cli: &Cli,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>, Option<TlsSettings>), ConfigError> {
    let listener = |key: &str,
                    flag: &'static str,
                    flag_value: &Option<String>,
                    f: &FileTlsListener,
                    default: &str| {
        let on = flag_value.is_some() || f.enabled.unwrap_or(f.listen.is_some());
        if !on {
            return Ok(None);
        }
        addr(
            key,
            flag,
            flag_value.as_deref().or(f.listen.as_deref()),
            default,
        )
        .map(Some)
    };
    let rtmps = listener(
        "rtmps.listen",
        "--rtmps-listen",
        &cli.rtmps_listen,
        &file.rtmps,
        DEFAULT_RTMPS_LISTEN,
    )?;
    let https = listener(
        "https.listen",
        "--https-listen",
        &cli.https_listen,
        &file.https,
        DEFAULT_HTTPS_LISTEN,
    )?;
    let cert = cli.tls_cert.clone().or_else(|| file.tls.cert.clone());
    let key = cli.tls_key.clone().or_else(|| file.tls.key.clone());
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsSettings { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::new(
                "tls.key",
                Some("--tls-key"),
                "tls.cert is set but not its private key",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "tls.cert",
                Some("--tls-cert"),
                "tls.key is set but not its certificate",
            ))
        }
    };
    if tls.is_none() && (rtmps.is_some() || https.is_some()) {
        return Err(ConfigError::new(
            "tls.cert",
            Some("--tls-cert"),
            "RTMPS or HTTPS is on: give a PEM certificate and key (tls.cert and tls.key)",
        ));
    }
    Ok((rtmps, https, tls))
}

/// App names that would shadow the server's own HTTP paths.
pub const RESERVED_APPS: &[&str] = &["api", "assets", "metrics", "healthz", "readyz"];

fn apply_tokens(
    apps: &mut [AppSettings],
    pairs: &[String],
    flag: &'static str,
    set: impl Fn(&mut AppSettings, String),
) -> Result<(), ConfigError> {
    let mut by_app = BTreeMap::new();
    for p in pairs {
        let Some((app, token)) = p.split_once('=') else {
            return Err(ConfigError::new(
                flag.trim_start_matches('-').replace('-', "_"),
                Some(flag),
                format!("{p:?} is not APP=TOKEN"),
            ));
        };
        by_app.insert(app.to_owned(), token.to_owned());
    }
    for (app, token) in by_app {
        match apps.iter_mut().find(|a| a.name == app) {
            Some(a) => set(a, token),
            None => {
                return Err(ConfigError::new(
                    flag.trim_start_matches('-').replace('-', "_"),
                    Some(flag),
                    format!("app {app:?} is not configured"),
                ))
            }
        }
    }
    Ok(())
}

/// A merged-write interval in milliseconds: `value` or `default`, at most
/// [`MAX_MERGE_WRITES_MS`].
fn merge_interval(
    key: &'static str,
    flag: &'static str,
    value: Option<u64>,
    default: u64,
) -> Result<u64, ConfigError> {
    let ms = value.unwrap_or(default);
    if ms > MAX_MERGE_WRITES_MS {
        return Err(ConfigError::new(
            key,
            Some(flag),
            format!("must be 0 to {MAX_MERGE_WRITES_MS} ms, got {ms}"),
        ));
    }
    Ok(ms)
}

// ---- Signed tokens (JWT): `[auth]`, the `--jwt-*` flags, `arcly token`.

/// Subcommands of `arcly` (none: run the server).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Issue an HS256 token from the configured secret (`--jwt-secret`,
    /// `ARCLY_JWT_SECRET` or `auth.jwt_secret`) and print it with ready
    /// URLs for each protocol.
    Token(TokenArgs),
}

/// `arcly token`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The application (or a pattern such as `*`) [default: the first app].
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
    /// The stream name, or a pattern: `*` (any), `cam*` (a prefix).
    #[arg(long, value_name = "STREAM")]
    pub stream: String,
    /// What the token allows: publish, play, or both (`publish,play`).
    #[arg(long, value_name = "ACTION", value_delimiter = ',', required = true)]
    pub action: Vec<TokenAction>,
    /// How long the token is valid: 90s, 30m, 1h, 7d.
    #[arg(long, value_name = "TTL", default_value = "1h")]
    pub ttl: String,
}

/// An action a token issued by `arcly token` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenAction {
    /// Publish.
    Publish,
    /// Play.
    Play,
}

impl TokenAction {
    /// The engine's action.
    pub fn to_auth(self) -> arcly_core::auth::AuthAction {
        match self {
            Self::Publish => arcly_core::auth::AuthAction::Publish,
            Self::Play => arcly_core::auth::AuthAction::Play,
        }
    }
}

/// With JWT verification configured, which actions need a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum JwtRequired {
    /// Publish and play (the default).
    #[default]
    Both,
    /// Only publish (anyone may play apps without a play token).
    Publish,
    /// Only play.
    Play,
    /// Neither: JWTs are accepted, not required.
    None,
}

/// `[auth]` of the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAuth {
    /// `auth.jwt_secret`: HS256 secret.
    pub jwt_secret: Option<String>,
    /// `auth.jwks`: JWKS file.
    pub jwks: Option<PathBuf>,
    /// `auth.jwks_url`: JWKS URL (http://).
    pub jwks_url: Option<String>,
    /// `auth.jwks_refresh_seconds`.
    pub jwks_refresh_seconds: Option<f64>,
    /// `auth.jwt_leeway_seconds`.
    pub jwt_leeway_seconds: Option<u64>,
    /// `auth.jwt_required_for`.
    pub jwt_required_for: Option<JwtRequired>,
}

/// A secret kept out of `Debug` output (and so out of logs).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Longest JWT clock-skew leeway accepted, in seconds.
pub const MAX_JWT_LEEWAY_SECS: u64 = 300;

/// Signed tokens after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtSettings {
    /// HS256 secret.
    pub secret: Option<Secret>,
    /// JWKS file (checked at start).
    pub jwks: Option<PathBuf>,
    /// JWKS URL.
    pub jwks_url: Option<String>,
    /// Interval between JWKS URL fetches.
    pub jwks_refresh: Duration,
    /// Clock skew tolerated on `exp` / `nbf`.
    pub leeway: Duration,
    /// What needs a credential when JWTs are on.
    pub required_for: JwtRequired,
}

impl JwtSettings {
    /// Whether any JWT verification is configured.
    pub fn enabled(&self) -> bool {
        self.secret.is_some() || self.jwks.is_some() || self.jwks_url.is_some()
    }

    /// The actions that need a credential on every app.
    pub fn required_actions(&self) -> Vec<arcly_core::auth::AuthAction> {
        use arcly_core::auth::AuthAction::{Play, Publish};
        match self.required_for {
            JwtRequired::Both => vec![Publish, Play],
            JwtRequired::Publish => vec![Publish],
            JwtRequired::Play => vec![Play],
            JwtRequired::None => vec![],
        }
    }
}

fn resolve_jwt(file: &FileAuth, cli: &Cli) -> Result<JwtSettings, ConfigError> {
    let secret = cli.jwt_secret.clone().or_else(|| file.jwt_secret.clone());
    if let Some(s) = &secret {
        if s.len() < crate::jwt::MIN_SECRET_LEN {
            return Err(ConfigError::new(
                "auth.jwt_secret",
                Some("--jwt-secret"),
                format!(
                    "must be at least {} bytes (RFC 7518 §3.2), got {}",
                    crate::jwt::MIN_SECRET_LEN,
                    s.len()
                ),
            ));
        }
    }
    let jwks = cli.jwks.clone().or_else(|| file.jwks.clone());
    let jwks_url = cli.jwks_url.clone().or_else(|| file.jwks_url.clone());
    if jwks.is_some() && jwks_url.is_some() {
        return Err(ConfigError::new(
            "auth.jwks_url",
            Some("--jwks-url"),
            "give auth.jwks (a file) or auth.jwks_url, not both",
        ));
    }
    if let Some(p) = &jwks {
        std::fs::read(p)
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
            .and_then(|b| crate::jwt::KeySet::parse(&b))
            .map_err(|reason| ConfigError::new("auth.jwks", Some("--jwks"), reason))?;
    }
    if let Some(u) = &jwks_url {
        crate::webhook::HookUrl::parse(u)
            .map_err(|reason| ConfigError::new("auth.jwks_url", Some("--jwks-url"), reason))?;
    }
    let jwks_refresh = secs(
        "auth.jwks_refresh_seconds",
        "--jwks-refresh",
        cli.jwks_refresh.or(file.jwks_refresh_seconds),
        crate::jwt::DEFAULT_JWKS_REFRESH.as_secs_f64(),
        10.0,
        86_400.0,
    )?;
    let leeway = cli
        .jwt_leeway
        .or(file.jwt_leeway_seconds)
        .unwrap_or(crate::jwt::DEFAULT_LEEWAY.as_secs());
    if leeway > MAX_JWT_LEEWAY_SECS {
        return Err(ConfigError::new(
            "auth.jwt_leeway_seconds",
            Some("--jwt-leeway"),
            format!("must be 0 to {MAX_JWT_LEEWAY_SECS} seconds, got {leeway}"),
        ));
    }
    Ok(JwtSettings {
        secret: secret.map(Secret),
        jwks,
        jwks_url,
        jwks_refresh,
        leeway: Duration::from_secs(leeway),
        required_for: cli
            .jwt_required_for
            .or(file.jwt_required_for)
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["arcly"];
        v.extend_from_slice(args);
        Cli::parse_from(v)
    }

    #[test]
    fn http_flv_follows_the_rtmp_merge_interval_unless_set_apart() {
        let s = Settings::merge(
            &FileConfig::default(),
            &cli(&["--rtmp-merge-writes-ms", "0"]),
        )
        .unwrap();
        assert_eq!(s.rtmp_merge_writes, Duration::ZERO);
        assert_eq!(s.http_flv_merge_writes, Duration::ZERO);
        let s = Settings::merge(
            &FileConfig::default(),
            &cli(&[
                "--rtmp-merge-writes-ms",
                "50",
                "--http-flv-merge-writes-ms",
                "300",
            ]),
        )
        .unwrap();
        assert_eq!(s.rtmp_merge_writes, Duration::from_millis(50));
        assert_eq!(s.http_flv_merge_writes, Duration::from_millis(300));
    }

    #[test]
    fn defaults_match_the_issue() {
        let s = Settings::merge(&FileConfig::default(), &cli(&[])).unwrap();
        assert_eq!(s.rtmp_listen, Some("0.0.0.0:1935".parse().unwrap()));
        assert_eq!(s.http_listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(s.apps.len(), 1);
        assert_eq!(s.apps[0].name, "live");
        assert!(s.apps[0].gop_cache > 0);
        assert!(s.hls.enabled && s.http_flv && !s.hls.low_latency);
        assert_eq!(
            s.http_flv_merge_writes,
            arcly_rtmp::handler::DEFAULT_MERGE_WRITES
        );
        assert_eq!(
            s.rtmp_merge_writes,
            arcly_rtmp::handler::DEFAULT_MERGE_WRITES
        );
        assert_eq!(s.hls.format, HlsFormat::Auto);
        assert_eq!(s.apps[0].record, RecordModeArg::Off);
        assert_eq!(s.log_format, LogFormat::Pretty);
    }

    #[test]
    fn flags_override_the_file() {
        let file: FileConfig = toml::from_str(
            r#"
            [http]
            listen = "127.0.0.1:9000"
            [hls]
            segment_seconds = 4.0
            window = 3
            [[app]]
            name = "cams"
            publish_token = "p"
            "#,
        )
        .unwrap();
        let s = Settings::merge(&file, &cli(&["--hls-window", "5"])).unwrap();
        assert_eq!(s.http_listen.port(), 9000);
        assert_eq!(s.hls.window, 5);
        assert_eq!(s.hls.segment, Duration::from_secs(4));
        assert_eq!(s.apps[0].name, "cams");
        assert_eq!(s.apps[0].publish_token.as_deref(), Some("p"));
        let s = Settings::merge(&file, &cli(&["--app", "cams", "--play-token", "cams=x"])).unwrap();
        assert_eq!(s.apps[0].publish_token.as_deref(), Some("p"));
        assert_eq!(s.apps[0].play_token.as_deref(), Some("x"));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases: &[(&[&str], &str)] = &[
            (&["--rtmp-listen", "nope"], "rtmp.listen"),
            (&["--hls-segment", "-1"], "hls.segment_seconds"),
            (&["--hls-part", "3"], "hls.part_seconds"),
            (&["--hls-window", "0"], "hls.window"),
            (&["--record", "all"], "record.dir"),
            (&["--max-connections", "0"], "limits.max_connections"),
            (&["--max-bitrate-kbps", "0"], "limits.max_bitrate_kbps"),
            (&["--log-level", "loud=="], "log.level"),
            (&["--app", "a b"], "app.name"),
            (&["--app", "api"], "app.name"),
            (&["--publish-token", "other=x"], "publish_token"),
            (&["--on-publish", "https://x/"], "webhooks.on_publish"),
            (&["--webhook-timeout-ms", "0"], "webhooks.timeout_ms"),
            (
                &["--http-flv-merge-writes-ms", "1001"],
                "http.flv_merge_writes_ms",
            ),
            (&["--rtmp-merge-writes-ms", "5000"], "rtmp.merge_writes_ms"),
            (&["--admin-token", ""], "admin.token"),
            (&["--https-listen", "127.0.0.1:8443"], "tls.cert"),
            (&["--tls-cert", "c.pem"], "tls.key"),
            (
                &["--rtmps-listen", "x", "--tls-cert", "c", "--tls-key", "k"],
                "rtmps.listen",
            ),
        ];
        for (args, key) in cases {
            let e = Settings::merge(&FileConfig::default(), &cli(args)).unwrap_err();
            assert!(e.setting.contains(key), "{args:?}: {e}");
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    /// Every recording setting has a flag, the size bound included.
    #[test]
    fn record_max_total_bytes_has_a_flag() {
        let args = ["arcly", "--record-max-total-bytes", "5000000"];
        let flag = Cli::try_parse_from(args).expect("the flag exists");
        let s = Settings::merge(&FileConfig::default(), &flag).unwrap();
        assert_eq!(s.record.max_total_bytes, Some(5_000_000));
        let file: FileConfig = toml::from_str("[record]\nmax_total_bytes = 7\n").unwrap();
        assert_eq!(
            Settings::merge(&file, &cli(&[]))
                .unwrap()
                .record
                .max_total_bytes,
            Some(7)
        );
        assert_eq!(
            Settings::merge(&file, &flag)
                .unwrap()
                .record
                .max_total_bytes,
            Some(5_000_000),
            "the flag wins"
        );
        let zero = Cli::try_parse_from(["arcly", "--record-max-total-bytes", "0"]).unwrap();
        let e = Settings::merge(&FileConfig::default(), &zero).unwrap_err();
        assert_eq!(e.setting, "record.max_total_bytes");
        assert_eq!(e.flag, Some("--record-max-total-bytes"));
    }

    #[test]
    fn the_example_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("arcly.example.toml");
        let file = load_file(&path).unwrap();
        // Its recording directory does not exist here; the rest must pass.
        let s = Settings::merge(&file, &cli(&[])).unwrap();
        assert_eq!(s.apps.len(), 2);
        assert_eq!(s.apps[1].record, RecordModeArg::All);
        assert_eq!(s.apps[1].publish_token.as_deref(), Some("change-me"));
        assert_eq!(s.hls.end_after, Duration::from_secs(10));
    }

    #[test]
    fn jwt_settings_are_checked() {
        let secret = "0123456789abcdef0123456789abcdef";
        let s = Settings::merge(&FileConfig::default(), &cli(&[])).unwrap();
        assert!(!s.jwt.enabled());
        let s = Settings::merge(&FileConfig::default(), &cli(&["--jwt-secret", secret])).unwrap();
        assert!(s.jwt.enabled());
        assert_eq!(s.jwt.leeway, crate::jwt::DEFAULT_LEEWAY);
        assert_eq!(s.jwt.required_actions().len(), 2);
        assert!(
            !format!("{s:?}").contains(secret),
            "the secret stays out of Debug"
        );
        let jwks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jwt/jwks.json");
        let file: FileConfig = toml::from_str(&format!(
            "[auth]\njwks = {:?}\njwt_leeway_seconds = 5\njwt_required_for = \"publish\"\n",
            jwks.display().to_string()
        ))
        .unwrap();
        let s = Settings::merge(&file, &cli(&[])).unwrap();
        assert_eq!(s.jwt.leeway, Duration::from_secs(5));
        assert_eq!(s.jwt.required_for, JwtRequired::Publish);
        let cases: &[(&[&str], &str)] = &[
            (&["--jwt-secret", "short"], "auth.jwt_secret"),
            (&["--jwks", "/nonexistent/jwks.json"], "auth.jwks"),
            (&["--jwks-url", "https://idp/jwks"], "auth.jwks_url"),
            (
                &["--jwks-url", "http://idp/jwks", "--jwks-refresh", "1"],
                "auth.jwks_refresh_seconds",
            ),
            (&["--jwt-leeway", "3600"], "auth.jwt_leeway_seconds"),
        ];
        for (args, key) in cases {
            let e = Settings::merge(&FileConfig::default(), &cli(args)).unwrap_err();
            assert_eq!(e.setting, *key, "{args:?}: {e}");
        }
        let both = cli(&[
            "--jwks",
            jwks.to_str().unwrap(),
            "--jwks-url",
            "http://idp/jwks",
        ]);
        assert!(Settings::merge(&FileConfig::default(), &both).is_err());
    }

    #[test]
    fn the_token_subcommand_leaves_the_default_alone() {
        assert!(cli(&["--http-listen", "127.0.0.1:0"]).command.is_none());
        let c = cli(&[
            "token",
            "--stream",
            "cam",
            "--action",
            "publish,play",
            "--config",
            "x.toml",
        ]);
        let Some(Command::Token(t)) = &c.command else {
            panic!("{c:?}")
        };
        assert_eq!(t.action, [TokenAction::Publish, TokenAction::Play]);
        assert_eq!(t.ttl, "1h");
        assert_eq!(
            c.config.as_deref(),
            Some(Path::new("x.toml")),
            "--config is global"
        );
        assert!(Cli::try_parse_from(["arcly", "token", "--stream", "cam"]).is_err());
    }

    #[test]
    fn tls_listeners_are_off_by_default_and_need_a_certificate() {
        let s = Settings::merge(&FileConfig::default(), &cli(&[])).unwrap();
        assert_eq!((s.rtmps_listen, s.https_listen, s.tls), (None, None, None));
        let file: FileConfig =
            toml::from_str("[https]\nenabled = true\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n")
                .unwrap();
        let s = Settings::merge(&file, &cli(&[])).unwrap();
        assert_eq!(s.https_listen, Some(DEFAULT_HTTPS_LISTEN.parse().unwrap()));
        assert_eq!(s.rtmps_listen, None);
        assert_eq!(s.tls.unwrap().key, PathBuf::from("k.pem"));
        let s = Settings::merge(&file, &cli(&["--rtmps-listen", "127.0.0.1:0"])).unwrap();
        assert_eq!(s.rtmps_listen, Some("127.0.0.1:0".parse().unwrap()));
        let e = Settings::merge(&file, &cli(&["--https-listen", "0.0.0.0:8080"])).unwrap_err();
        assert_eq!(e.setting, "https.listen");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.toml");
        std::fs::write(&p, "[hls]\nsegmnt_seconds = 2\n").unwrap();
        let e = load_file(&p).unwrap_err();
        assert!(e.to_string().contains("segmnt_seconds"), "{e}");
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
