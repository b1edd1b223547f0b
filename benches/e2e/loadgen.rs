//! End-to-end load generator: many RTMP (or HTTP-FLV) players in one process,
//! built on `arcly_rtmp::client::RtmpClient`, ramped in steps while the
//! server's CPU and memory are read from `/proc/PID`.
//!
//! ```text
//! e2e-loadgen ramp --label arcly --proto rtmp --url rtmp://127.0.0.1:1935/live/bench \
//!     --pid 1234 --steps 100,500 [--settle 5] [--window 10] [--rate 200] \
//!     [--workers 2] [--out results.tsv]
//! e2e-loadgen report results.tsv
//! ```
//!
//! For each step (total players N) it prints and appends one TSV row:
//! server CPU (% of one core: utime+stime from `/proc/PID/stat` over a fixed
//! window after the ramp settled), server RSS (`VmRSS`, the mean of samples every
//! 100 ms over the window), RSS per player above
//! the 0-player baseline, players behind real time, and the median/p99 time
//! from starting to connect to the first video keyframe for the players that
//! joined in that step.
//!
//! "Behind real time": each player maps media time to wall time by the
//! smallest `arrival - timestamp` it has seen (the frame that arrived the
//! earliest relative to its timestamp, i.e. the live edge); its lag is
//! `now - (that offset + newest timestamp)`. A player that stalls, or falls
//! further behind because the server or the network cannot keep up, grows a
//! lag; a burst of cached frames at join does not count. Players that failed
//! to connect or were disconnected are counted separately and as behind.

use arcly_core::{FrameType, MediaFrame, TimeBase};
use arcly_rtmp::client::RtmpClient;
use arcly_rtmp::flv::{FlvReader, TagDemuxer};
use bytes::{Buf, BytesMut};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A player is "behind" when its media is more than this far behind real time.
/// Steps with fewer players than this measure over
/// [`SMALL_STEP_WINDOWS`] windows (and so does the 0-player baseline).
const SMALL_STEP: usize = 500;
/// How many windows a small step (and the baseline) measures over.
const SMALL_STEP_WINDOWS: f64 = 3.0;

const BEHIND_US: i64 = 2_000_000;
/// Longest a player may take from TCP connect to `NetStream.Play.Start` / HTTP 200.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);
/// Handshakes in flight at once.
const MAX_CONNECTING: usize = 64;
/// Longest wait for every player of a step to be set up.
const RAMP_TIMEOUT: Duration = Duration::from_secs(60);

const CONNECTING: u8 = 0;
const PLAYING: u8 = 1;
const FAILED: u8 = 2;
const ENDED: u8 = 3;

/// What one player publishes to the measuring loop (written by its task only).
struct Slot {
    step: usize,
    start: Instant,
    state: AtomicU8,
    /// Microseconds from `start` to the first video keyframe, -1 before.
    ttfk_us: AtomicI64,
    /// Smallest `arrival_us - ts_us` seen (arrival measured from the run's epoch).
    min_off_us: AtomicI64,
    /// Newest media timestamp (µs).
    max_ts_us: AtomicI64,
    bytes: AtomicU64,
}

impl Slot {
    fn new(step: usize) -> Self {
        Self {
            step,
            start: Instant::now(),
            state: AtomicU8::new(CONNECTING),
            ttfk_us: AtomicI64::new(-1),
            min_off_us: AtomicI64::new(i64::MAX),
            max_ts_us: AtomicI64::new(i64::MIN),
            bytes: AtomicU64::new(0),
        }
    }

    /// Lag behind real time in µs at `now_us` (since the epoch), or `None`
    /// when the player never received media.
    fn lag_us(&self, now_us: i64) -> Option<i64> {
        let off = self.min_off_us.load(Relaxed);
        let ts = self.max_ts_us.load(Relaxed);
        (off != i64::MAX && ts != i64::MIN).then(|| now_us - off - ts)
    }
}

struct Shared {
    epoch: Instant,
    errors: Mutex<BTreeMap<String, usize>>,
}

impl Shared {
    fn error(&self, e: impl std::fmt::Display) {
        let mut s = e.to_string();
        s.truncate(120);
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(s)
            .or_default() += 1;
    }
}

/// Book-keeping for one received frame.
struct Track {
    first_key: bool,
    min_off: i64,
    max_ts: i64,
}

impl Track {
    fn new() -> Self {
        Self {
            first_key: false,
            min_off: i64::MAX,
            max_ts: i64::MIN,
        }
    }

    fn frame(&mut self, slot: &Slot, sh: &Shared, f: &MediaFrame, wire_bytes: usize) {
        let now = Instant::now();
        slot.bytes.fetch_add(wire_bytes as u64, Relaxed);
        if f.is_config() || f.frame_type == FrameType::Data || f.is_end_of_stream() {
            return;
        }
        if !self.first_key && f.codec.is_video() && f.is_keyframe() {
            self.first_key = true;
            slot.ttfk_us
                .store(now.duration_since(slot.start).as_micros() as i64, Relaxed);
        }
        let ts = f.time_base.rescale(f.dts, TimeBase::MICROS);
        let arrival = now.duration_since(sh.epoch).as_micros() as i64;
        let off = arrival - ts;
        if off < self.min_off {
            self.min_off = off;
            slot.min_off_us.store(off, Relaxed);
        }
        if ts > self.max_ts {
            self.max_ts = ts;
            slot.max_ts_us.store(ts, Relaxed);
        }
    }
}

fn payload_len(f: &MediaFrame) -> usize {
    f.payload.len()
}

async fn rtmp_player(
    url: Arc<str>,
    slot: Arc<Slot>,
    sh: Arc<Shared>,
    gate: Arc<tokio::sync::Semaphore>,
) {
    let permit = gate.acquire_owned().await;
    let setup = tokio::time::timeout(SETUP_TIMEOUT, RtmpClient::play(&url)).await;
    drop(permit);
    let mut c = match setup {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            sh.error(format!("play: {e}"));
            slot.state.store(FAILED, Relaxed);
            return;
        }
        Err(_) => {
            sh.error("play: setup timed out");
            slot.state.store(FAILED, Relaxed);
            return;
        }
    };
    slot.state.store(PLAYING, Relaxed);
    let mut t = Track::new();
    loop {
        match c.next_frame().await {
            Ok(Some(f)) => t.frame(&slot, &sh, &f, payload_len(&f)),
            Ok(None) => {
                sh.error("server closed the connection");
                slot.state.store(ENDED, Relaxed);
                return;
            }
            Err(e) => {
                sh.error(format!("next_frame: {e}"));
                slot.state.store(ENDED, Relaxed);
                return;
            }
        }
    }
}

/// Incremental decoder of an HTTP/1.1 chunked body (RFC 9112 §7.1).
#[derive(Default)]
struct Dechunk {
    buf: BytesMut,
    /// Bytes left in the current chunk's data, or `None` when a size line is next.
    left: Option<usize>,
    /// A CRLF after chunk data is still to be skipped.
    crlf: bool,
}

impl Dechunk {
    /// Feed `input`; decoded body bytes go to `out`. `Err` on malformed framing.
    fn push(&mut self, input: &[u8], out: &mut FlvReader) -> Result<bool, String> {
        self.buf.extend_from_slice(input);
        loop {
            if self.crlf {
                if self.buf.len() < 2 {
                    return Ok(true);
                }
                self.buf.advance(2);
                self.crlf = false;
            }
            match self.left {
                Some(n) => {
                    let take = n.min(self.buf.len());
                    if take == 0 {
                        return Ok(true);
                    }
                    out.push(&self.buf[..take]);
                    self.buf.advance(take);
                    if take == n {
                        self.left = None;
                        self.crlf = true;
                    } else {
                        self.left = Some(n - take);
                    }
                }
                None => {
                    let Some(eol) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                        if self.buf.len() > 1024 {
                            return Err("chunk size line too long".into());
                        }
                        return Ok(true);
                    };
                    let line = std::str::from_utf8(&self.buf[..eol]).map_err(|e| e.to_string())?;
                    let hex = line.split(';').next().unwrap_or("").trim();
                    let n = usize::from_str_radix(hex, 16)
                        .map_err(|e| format!("chunk size {hex:?}: {e}"))?;
                    self.buf.advance(eol + 2);
                    if n == 0 {
                        return Ok(false);
                    }
                    self.left = Some(n);
                }
            }
        }
    }
}

async fn flv_player(
    url: Arc<str>,
    slot: Arc<Slot>,
    sh: Arc<Shared>,
    gate: Arc<tokio::sync::Semaphore>,
) {
    let fail = |e: String, state: u8| {
        sh.error(e);
        slot.state.store(state, Relaxed);
    };
    let Some(rest) = url.strip_prefix("http://") else {
        return fail(format!("not an http:// URL: {url}"), FAILED);
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let permit = gate.acquire_owned().await;
    let setup = tokio::time::timeout(SETUP_TIMEOUT, async {
        let mut tcp = TcpStream::connect(host)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let req = format!(
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: arcly-e2e-loadgen\r\n\r\n"
        );
        tcp.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut head = Vec::new();
        let mut b = [0u8; 4096];
        loop {
            let n = tcp.read(&mut b).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("closed before the response head".to_string());
            }
            head.extend_from_slice(&b[..n]);
            if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                let rest = head.split_off(p + 4);
                return Ok((tcp, head, rest));
            }
            if head.len() > 16 * 1024 {
                return Err("response head too long".to_string());
            }
        }
    })
    .await;
    drop(permit);
    let (mut tcp, head, rest) = match setup {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return fail(e, FAILED),
        Err(_) => return fail("http: setup timed out".into(), FAILED),
    };
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") && !head.starts_with("http/1.0 200") {
        return fail(
            format!("http status: {}", head.lines().next().unwrap_or("")),
            FAILED,
        );
    }
    let chunked = head.contains("transfer-encoding: chunked");
    slot.state.store(PLAYING, Relaxed);
    let mut de = Dechunk::default();
    let mut reader = FlvReader::new();
    let mut demux = TagDemuxer::new();
    let mut frames = Vec::new();
    let mut t = Track::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut input: Vec<u8> = rest;
    loop {
        let more = if chunked {
            match de.push(&input, &mut reader) {
                Ok(m) => m,
                Err(e) => return fail(e, ENDED),
            }
        } else {
            reader.push(&input);
            true
        };
        loop {
            match reader.next_tag() {
                Ok(Some(tag)) => {
                    let n = tag.body.len();
                    if let Err(e) = demux.demux(tag.tag_type, tag.timestamp, tag.body, &mut frames)
                    {
                        return fail(format!("flv demux: {e}"), ENDED);
                    }
                    for f in frames.drain(..) {
                        t.frame(&slot, &sh, &f, n);
                    }
                }
                Ok(None) => break,
                Err(e) => return fail(format!("flv: {e}"), ENDED),
            }
        }
        if !more {
            return fail("http body ended".into(), ENDED);
        }
        let n = match tcp.read(&mut buf).await {
            Ok(0) => return fail("server closed the connection".into(), ENDED),
            Ok(n) => n,
            Err(e) => return fail(format!("read: {e}"), ENDED),
        };
        input.clear();
        input.extend_from_slice(&buf[..n]);
    }
}

// ------------------------------------------------------------- /proc probes

/// utime+stime of `pid` in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pid: &str) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e} (did the server exit?)"))?;
    // The command name is in parentheses and may contain spaces.
    let after = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14 → index 11.
    let u: u64 = f.get(11).and_then(|v| v.parse().ok()).ok_or("bad stat")?;
    let st: u64 = f.get(12).and_then(|v| v.parse().ok()).ok_or("bad stat")?;
    Ok(u + st)
}

fn rss_kb(pid: &str) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS".to_string())
}

/// Sleep `secs`, sampling the server's RSS every 100 ms; returns the mean.
/// One reading would measure the GOP cache's phase as much as the players:
/// it holds between nothing and a whole GOP (about 600 KB of a 2.5 Mb/s
/// stream with 2 s GOPs), which at 100 players is 6 KB per player.
async fn sleep_sampling_rss(pid: &str, secs: f64) -> Result<u64, String> {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let (mut sum, mut n) = (0u64, 0u64);
    loop {
        sum += rss_kb(pid)?;
        n += 1;
        let Some(left) = end.checked_duration_since(Instant::now()) else {
            break;
        };
        tokio::time::sleep(left.min(Duration::from_millis(100))).await;
    }
    Ok(sum / n.max(1))
}

/// (busy, total) jiffies of the whole host from `/proc/stat`.
fn host_ticks() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

// ------------------------------------------------------------------- ramp

struct Opts {
    label: String,
    proto: String,
    url: String,
    pid: String,
    steps: Vec<usize>,
    settle: f64,
    window: f64,
    rate: f64,
    workers: usize,
    out: Option<String>,
    /// Directory for a `perf record -g` of the server after each window.
    perf: Option<String>,
    clk_tck: f64,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        label: "server".into(),
        proto: "rtmp".into(),
        url: String::new(),
        pid: String::new(),
        steps: vec![100, 500],
        settle: 5.0,
        window: 10.0,
        rate: 200.0,
        workers: 2,
        out: None,
        perf: None,
        clk_tck: 100.0,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut v = || it.next().cloned().ok_or(format!("{a} needs a value"));
        let num = |s: String| s.parse::<f64>().map_err(|e| format!("{a}: {e}"));
        match a.as_str() {
            "--label" => o.label = v()?,
            "--proto" => o.proto = v()?,
            "--url" => o.url = v()?,
            "--pid" => o.pid = v()?,
            "--steps" => {
                o.steps = v()?
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|e| format!("--steps {s}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--settle" => o.settle = num(v()?)?,
            "--window" => o.window = num(v()?)?,
            "--rate" => o.rate = num(v()?)?,
            "--workers" => o.workers = num(v()?)? as usize,
            "--clk-tck" => o.clk_tck = num(v()?)?,
            "--out" => o.out = Some(v()?),
            "--perf" => o.perf = Some(v()?),
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if o.url.is_empty() || o.pid.is_empty() {
        return Err("ramp needs --url and --pid".into());
    }
    if !matches!(o.proto.as_str(), "rtmp" | "flv") {
        return Err("--proto is rtmp or flv".into());
    }
    if o.steps.windows(2).any(|w| w[1] <= w[0]) || o.steps.is_empty() {
        return Err("--steps must increase".into());
    }
    Ok(o)
}

const HEADER: &str = "label\tproto\tplayers\tplaying\tfailed\tcpu_pct\trss_kb\tbase_rss_kb\trss_per_player_kb\tbehind\tttfk_n\tttfk_med_ms\tttfk_p99_ms\tkbps_per_player\tloadgen_cpu_pct\thost_busy_pct\tbase_cpu_pct";

async fn ramp(o: Opts) -> Result<(), String> {
    let sh = Arc::new(Shared {
        epoch: Instant::now(),
        errors: Mutex::new(BTreeMap::new()),
    });
    let url: Arc<str> = o.url.clone().into();
    let gate = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTING));
    let me = std::process::id().to_string();
    // Baseline: publisher on, no players.
    // and its CPU over one window: the publisher's ingest, not the players.
    // Three windows: the baseline is subtracted from every step, and CPU
    // time is counted in clock ticks (10 ms), so a short baseline would add
    // its rounding to every per-player figure.
    let c0 = cpu_ticks(&o.pid)?;
    let t0 = Instant::now();
    let base_rss = sleep_sampling_rss(&o.pid, o.window * SMALL_STEP_WINDOWS).await?;
    let base_cpu =
        (cpu_ticks(&o.pid)? - c0) as f64 / o.clk_tck / t0.elapsed().as_secs_f64() * 100.0;
    let mut slots: Vec<Arc<Slot>> = Vec::new();
    let mut tasks = Vec::new();
    let mut rows = Vec::new();
    eprintln!(
        "[{}] {} baseline (publisher, no player): CPU {base_cpu:.2}%, RSS {} kB; steps {:?}",
        o.label, o.proto, base_rss, o.steps
    );
    for (si, &n) in o.steps.iter().enumerate() {
        // Ramp: start players at `rate` per second.
        let t_ramp = Instant::now();
        let first = slots.len();
        for k in first..n {
            let due = Duration::from_secs_f64((k - first) as f64 / o.rate);
            if let Some(w) = due.checked_sub(t_ramp.elapsed()) {
                tokio::time::sleep(w).await;
            }
            let slot = Arc::new(Slot::new(si));
            slots.push(Arc::clone(&slot));
            let fut = if o.proto == "rtmp" {
                tokio::spawn(rtmp_player(
                    Arc::clone(&url),
                    slot,
                    Arc::clone(&sh),
                    Arc::clone(&gate),
                ))
            } else {
                tokio::spawn(flv_player(
                    Arc::clone(&url),
                    slot,
                    Arc::clone(&sh),
                    Arc::clone(&gate),
                ))
            };
            tasks.push(fut);
        }
        // Wait until every new player is set up (or failed).
        while slots[first..]
            .iter()
            .any(|s| s.state.load(Relaxed) == CONNECTING)
            && t_ramp.elapsed() < RAMP_TIMEOUT
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ramp_s = t_ramp.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs_f64(o.settle)).await;
        // Measurement window.
        let c0 = cpu_ticks(&o.pid)?;
        let l0 = cpu_ticks(&me)?;
        let h0 = host_ticks();
        let b0: u64 = slots.iter().map(|s| s.bytes.load(Relaxed)).sum();
        let t0 = Instant::now();
        // Few players use little CPU: a longer window keeps the tick
        // rounding of the server's CPU time small against it.
        let window = if n < SMALL_STEP {
            o.window * SMALL_STEP_WINDOWS
        } else {
            o.window
        };
        let rss = sleep_sampling_rss(&o.pid, window).await?;
        let secs = t0.elapsed().as_secs_f64();
        let c1 = cpu_ticks(&o.pid)?;
        let l1 = cpu_ticks(&me)?;
        let h1 = host_ticks();
        let b1: u64 = slots.iter().map(|s| s.bytes.load(Relaxed)).sum();
        let cpu = (c1 - c0) as f64 / o.clk_tck / secs * 100.0;
        let lg = (l1 - l0) as f64 / o.clk_tck / secs * 100.0;
        let host = if h1.1 > h0.1 {
            (h1.0 - h0.0) as f64 / (h1.1 - h0.1) as f64 * 100.0
        } else {
            f64::NAN
        };
        let now_us = sh.epoch.elapsed().as_micros() as i64;
        let mut playing = 0;
        let mut failed = 0;
        let mut behind = 0;
        for s in &slots {
            match s.state.load(Relaxed) {
                PLAYING => {
                    playing += 1;
                    match s.lag_us(now_us) {
                        Some(l) if l <= BEHIND_US => {}
                        _ => behind += 1,
                    }
                }
                _ => {
                    failed += 1;
                    behind += 1;
                }
            }
        }
        let mut ttfk: Vec<f64> = slots
            .iter()
            .filter(|s| s.step == si)
            .map(|s| s.ttfk_us.load(Relaxed))
            .filter(|&v| v >= 0)
            .map(|v| v as f64 / 1000.0)
            .collect();
        ttfk.sort_by(f64::total_cmp);
        let kbps = (b1 - b0) as f64 * 8.0 / 1000.0 / secs / playing.max(1) as f64;
        let per = (rss as f64 - base_rss as f64) / n as f64;
        let row = format!(
            "{}\t{}\t{}\t{}\t{}\t{:.2}\t{}\t{}\t{:.2}\t{}\t{}\t{:.1}\t{:.1}\t{:.0}\t{:.1}\t{:.1}\t{:.2}",
            o.label,
            o.proto,
            n,
            playing,
            failed,
            cpu,
            rss,
            base_rss,
            per,
            behind,
            ttfk.len(),
            percentile(&ttfk, 0.5),
            percentile(&ttfk, 0.99),
            kbps,
            lg,
            host,
            base_cpu
        );
        eprintln!(
            "[{}] {} N={n}: ramp {ramp_s:.1}s, playing {playing}, failed {failed}, server CPU {cpu:.1}% ({:.4}%/player above the baseline), RSS {rss} kB ({per:.1} kB/player), behind {behind}, TTFK median {:.1} ms p99 {:.1} ms ({} players), {kbps:.0} kb/s/player, loadgen CPU {lg:.0}%, host busy {host:.0}%",
            o.label,
            o.proto,
            (cpu - base_cpu) / n as f64,
            percentile(&ttfk, 0.5),
            percentile(&ttfk, 0.99),
            ttfk.len()
        );
        rows.push(row);
        if let Some(dir) = &o.perf {
            // After the measurement window, so sampling does not inflate it.
            let file = format!("{dir}/{}-{}-{n}.perf.data", o.label, o.proto);
            let args: Vec<String> = [
                "record", "-g", "-F", "999", "-p", &o.pid, "-o", &file, "--", "sleep",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(std::iter::once(format!("{}", o.window)))
            .collect();
            let st = tokio::task::spawn_blocking(move || {
                std::process::Command::new("perf")
                    .args(&args)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
            })
            .await;
            eprintln!(
                "[{}] {} N={n}: perf record -> {file} ({st:?})",
                o.label, o.proto
            );
        }
    }
    let errs = sh.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for (e, n) in &errs {
        eprintln!("[{}] player error ×{n}: {e}", o.label);
    }
    for t in &tasks {
        t.abort();
    }
    if let Some(path) = &o.out {
        let exists = std::path::Path::new(path).exists();
        let mut text = String::new();
        if !exists {
            text.push_str(HEADER);
            text.push('\n');
        }
        for r in &rows {
            text.push_str(r);
            text.push('\n');
        }
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("{path}: {e}"))?;
    } else {
        println!("{HEADER}");
        for r in &rows {
            println!("{r}");
        }
    }
    Ok(())
}

// ----------------------------------------------------------------- report

type Row = BTreeMap<String, String>;

fn report(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().ok_or("empty results")?.split('\t').collect();
    let rows: Vec<Row> = lines
        .filter(|l| !l.trim().is_empty() && !l.starts_with("label\t"))
        .map(|l| {
            head.iter()
                .zip(l.split('\t'))
                .map(|(k, v)| ((*k).to_owned(), v.to_owned()))
                .collect()
        })
        .collect();
    let f = |r: &Row, k: &str| {
        r.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    println!(
        "\n{:<7} {:<5} {:>6} {:>7} {:>6} {:>8} {:>7} {:>10} {:>9} {:>10} {:>9} {:>7} {:>9} {:>9} {:>8} {:>8} {:>6}",
        "server", "proto", "N", "playing", "failed", "CPU %", "base %", "%/player", "RSS MB", "KB/player", "KB/pl+", "behind",
        "TTFK p50", "TTFK p99", "kb/s/pl", "loadgen%", "host%"
    );
    println!("{}", "-".repeat(149));
    // KB/pl+: RSS added per player added since the previous step of the
    // same series (the first step: since the baseline), which leaves out
    // what the first players cost once (a second worker thread's stack and
    // allocator arena, the join bursts' freed buffers).
    let mut prev: std::collections::HashMap<(String, String), (f64, f64)> = Default::default();
    // CPU per player above the 0-player baseline (the publisher's ingest).
    let cpu_per = |r: &Row| {
        let base = f(r, "base_cpu_pct");
        (f(r, "cpu_pct") - if base.is_nan() { 0.0 } else { base }) / f(r, "players")
    };
    // Server and load generator share the machine: when together they use
    // most of it, "behind" and the tail of TTFK say more about the machine.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let saturated = |r: &Row| f(r, "cpu_pct") + f(r, "loadgen_cpu_pct") > 75.0 * cores;
    let mut any_saturated = false;
    for r in &rows {
        let sat = saturated(r);
        any_saturated |= sat;
        let key = (r["label"].clone(), r["proto"].clone());
        let (n0, rss0) = prev
            .get(&key)
            .copied()
            .unwrap_or((0.0, f(r, "base_rss_kb")));
        let marginal = (f(r, "rss_kb") - rss0) / (f(r, "players") - n0);
        prev.insert(key, (f(r, "players"), f(r, "rss_kb")));
        println!(
            "{:<7} {:<5} {:>6} {:>7} {:>6} {:>8.1} {:>7.1} {:>10.4} {:>9.1} {:>10.1} {:>9.1} {:>7} {:>7.1}ms {:>7.1}ms {:>8.0} {:>8.0} {:>6.0}{}",
            r["label"],
            r["proto"],
            r["players"],
            r["playing"],
            r["failed"],
            f(r, "cpu_pct"),
            f(r, "base_cpu_pct"),
            cpu_per(r),
            f(r, "rss_kb") / 1024.0,
            f(r, "rss_per_player_kb"),
            marginal,
            r["behind"],
            f(r, "ttfk_med_ms"),
            f(r, "ttfk_p99_ms"),
            f(r, "kbps_per_player"),
            f(r, "loadgen_cpu_pct"),
            f(r, "host_busy_pct"),
            if sat { " *" } else { "" },
        );
    }
    if any_saturated {
        println!(
            "* server + load generator used more than 75% of the {cores} cores: players behind and TTFK tails there measure the machine as much as the server"
        );
    }
    // Side by side: arcly vs nginx over RTMP.
    let find = |label: &str, proto: &str, n: &str| {
        rows.iter()
            .rev()
            .find(|r| r["label"] == label && r["proto"] == proto && r["players"] == n)
    };
    let mut ns: Vec<&String> = rows
        .iter()
        .filter(|r| r["label"] == "arcly" && r["proto"] == "rtmp")
        .map(|r| &r["players"])
        .collect();
    ns.dedup();
    let pairs: Vec<(&Row, &Row)> = ns
        .iter()
        .filter_map(|n| Some((find("arcly", "rtmp", n)?, find("nginx", "rtmp", n)?)))
        .collect();
    if pairs.is_empty() {
        println!("\n(no arcly/nginx pair over RTMP to compare)");
        return Ok(());
    }
    println!(
        "\narcly vs nginx-rtmp over RTMP (CPU per player above the 0-player baseline; targets: CPU/player ≤ 0.40×, RSS/player ≤ 0.50×, no player behind where nginx has none, median TTFK < 50 ms)"
    );
    println!(
        "{:>6} {:>14} {:>14} {:>8} {:>14} {:>14} {:>8} {:>13} {:>13} {:>8}",
        "N",
        "CPU%/pl arcly",
        "CPU%/pl nginx",
        "ratio",
        "KB/pl arcly",
        "KB/pl nginx",
        "ratio",
        "behind a/n",
        "TTFK50 a/n",
        "verdict"
    );
    println!("{}", "-".repeat(120));
    let mut all_ok = true;
    for (a, n) in pairs {
        let (ca, cn) = (cpu_per(a), cpu_per(n));
        let (ma, mn) = (f(a, "rss_per_player_kb"), f(n, "rss_per_player_kb"));
        let (ba, bn) = (f(a, "behind"), f(n, "behind"));
        let cr = ca / cn;
        let mr = ma / mn;
        let mut miss = Vec::new();
        if cr.is_nan() || cr > 0.40 {
            miss.push("cpu");
        }
        if mr.is_nan() || mr > 0.50 {
            miss.push("mem");
        }
        if bn == 0.0 && ba > 0.0 {
            miss.push("behind");
        }
        let ttfk = f(a, "ttfk_med_ms");
        if ttfk.is_nan() || ttfk >= 50.0 {
            miss.push("ttfk");
        }
        all_ok &= miss.is_empty();
        println!(
            "{:>6} {:>14.4} {:>14.4} {:>7.2}x {:>14.1} {:>14.1} {:>7.2}x {:>13} {:>13} {:>8}",
            a["players"],
            ca,
            cn,
            cr,
            ma,
            mn,
            mr,
            format!("{}/{}", a["behind"], n["behind"]),
            format!("{:.0}/{:.0}ms", f(a, "ttfk_med_ms"), f(n, "ttfk_med_ms")),
            if miss.is_empty() {
                "ok".to_string()
            } else {
                format!("MISS:{}", miss.join(","))
            }
        );
    }
    println!(
        "\n{}",
        if all_ok {
            "all targets met"
        } else {
            "some targets missed (see verdict column)"
        }
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let res = match args.first().map(String::as_str) {
        Some("ramp") => parse(&args[1..]).and_then(|o| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(o.workers.max(1))
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(ramp(o))
        }),
        Some("report") => args
            .get(1)
            .ok_or_else(|| "report needs a results file".to_string())
            .and_then(|p| report(p)),
        _ => Err("usage: e2e-loadgen ramp --url URL --pid PID [--label L] [--proto rtmp|flv] [--steps 100,500] [--settle S] [--window S] [--rate R] [--workers W] [--clk-tck T] [--out FILE] [--perf DIR] | e2e-loadgen report FILE".into()),
    };
    if let Err(e) = res {
        eprintln!("e2e-loadgen: {e}");
        std::process::exit(1);
    }
}
