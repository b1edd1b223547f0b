//! Loopback fan-out: one publisher at ~2.5 Mb/s (25 fps H.264-shaped video
//! with a 2 s GOP, plus AAC-shaped audio), N players from this one process.
//!
//! Reports, per N, the server's CPU time per player (the server runs on its
//! own runtime whose threads are named `arcly-srv`, measured from
//! `/proc/self/task/*/stat`) and each player's time from connect to its
//! first keyframe.
//!
//! ```text
//! cargo run --release -p arcly-rtmp --example fanout -- [--players 50,200] [--seconds 5] [--kbps 2500]
//! ```
//!
//! One line per N:
//! `rtmp-fanout players=N kbps=... seconds=... server_cpu_pct=... server_cpu_us_per_player_s=... ttfk_ms_p50=... ttfk_ms_p99=... ttfk_ms_max=... recv_mbps=... process_cpu_pct=... incomplete=...`
#![allow(missing_docs)]

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::inbound::InboundProtocol;
use arcly_core::{CodecId, FrameFlags, MediaFrame};
use arcly_rtmp::client::RtmpClient;
use arcly_rtmp::{RtmpConfig, RtmpHandler};
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVER_THREAD: &str = "arcly-srv";
/// Linux's USER_HZ (the unit of utime/stime in /proc); 100 on every
/// mainstream configuration.
const TICKS_PER_SEC: f64 = 100.0;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// CPU seconds used so far by this process's threads whose name starts with `prefix`.
fn thread_cpu(prefix: &str) -> f64 {
    let mut ticks = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    for t in dir.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        ticks += get(11) + get(12);
    }
    ticks as f64 / TICKS_PER_SEC
}

/// An AVCC-shaped access unit of `len` bytes (one NAL unit).
fn nal(len: usize, nal_type: u8, seed: u8) -> Bytes {
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&((len - 4) as u32).to_be_bytes());
    v.push(nal_type);
    v.extend((0..len - 5).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    Bytes::from(v)
}

async fn publish(url: String, kbps: u64, stop: Arc<AtomicU64>) {
    let mut c = RtmpClient::publish(&url).await.expect("publish");
    let avcc = Bytes::from_static(&[
        1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 2, 0x68, 0xee,
    ]);
    let asc = Bytes::from_static(&[0x11, 0x90]);
    c.send_frame(&MediaFrame::config(CodecId::H264, 0, avcc))
        .await
        .unwrap();
    c.send_frame(&MediaFrame::config(CodecId::Aac, 0, asc))
        .await
        .unwrap();
    // 2 s GOP at 25 fps: the keyframe is 10x a P frame.
    let audio_bps = 128_000u64;
    let video_bytes_per_gop = (kbps * 1000).saturating_sub(audio_bps) / 8 * 2;
    let p_len = (video_bytes_per_gop / 59) as usize;
    let key_len = p_len * 10;
    let p_len = p_len.max(64);
    let t0 = Instant::now();
    let mut audio_ts = 0i64;
    for i in 0u64.. {
        if stop.load(Ordering::Relaxed) != 0 {
            break;
        }
        let ts = (i * 40) as i64;
        while audio_ts <= ts {
            let f = MediaFrame::audio(CodecId::Aac, audio_ts, nal(340, 0x21, i as u8));
            c.send_frame(&f).await.unwrap();
            audio_ts += 21;
        }
        let f = if i % 50 == 0 {
            MediaFrame::video(CodecId::H264, ts, ts, nal(key_len, 0x65, i as u8))
                .with_flags(FrameFlags::KEYFRAME)
        } else {
            MediaFrame::video(CodecId::H264, ts, ts, nal(p_len, 0x41, i as u8))
        };
        c.send_frame(&f).await.unwrap();
        let due = Duration::from_millis(ts as u64 + 40);
        if let Some(w) = due.checked_sub(t0.elapsed()) {
            tokio::time::sleep(w).await;
        }
    }
    c.close().await.ok();
}

struct PlayerStats {
    ttfk: Option<Duration>,
    bytes: u64,
}

async fn player(url: String, until: Instant) -> PlayerStats {
    let t0 = Instant::now();
    let mut p = match RtmpClient::play(&url).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("player: {e}");
            return PlayerStats {
                ttfk: None,
                bytes: 0,
            };
        }
    };
    let mut s = PlayerStats {
        ttfk: None,
        bytes: 0,
    };
    while let Ok(Ok(Some(f))) = tokio::time::timeout_at(until.into(), p.next_frame()).await {
        s.bytes += f.payload.len() as u64;
        if s.ttfk.is_none() && f.is_video() && !f.is_config() {
            assert!(
                f.is_keyframe(),
                "a player's first picture is not a keyframe"
            );
            s.ttfk = Some(t0.elapsed());
        }
        if Instant::now() >= until {
            break;
        }
    }
    s
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn main() {
    let counts: Vec<usize> = arg("--players", "50,200")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let seconds: f64 = arg("--seconds", "5").parse().unwrap_or(5.0);
    let kbps: u64 = arg("--kbps", "2500").parse().unwrap_or(2500);

    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fanout-client")
        .enable_all()
        .build()
        .unwrap();

    let engine = Engine::builder()
        .application(AppSpec::new("live").gop_cache(200))
        .max_subscribers_per_stream(100_000)
        .build();
    let mut cfg = RtmpConfig::default();
    cfg.limits.max_connections_per_ip = 100_000;
    let ingest = Arc::new(RtmpHandler::new(cfg).into_protocol("127.0.0.1:0".parse().unwrap()));
    let bound = ingest.local_addr_receiver();
    let ctx = engine.ingest_context();
    server_rt.spawn(Arc::clone(&ingest).serve(ctx));
    let addr = client_rt.block_on(bound).expect("bound");
    let url = format!("rtmp://{addr}/live/bench");

    let stop = Arc::new(AtomicU64::new(0));
    let pub_task = client_rt.spawn(publish(url.clone(), kbps, Arc::clone(&stop)));
    std::thread::sleep(Duration::from_millis(500));

    for n in counts {
        let until = Instant::now() + Duration::from_secs_f64(seconds + 1.0);
        let players: Vec<_> = (0..n)
            .map(|_| client_rt.spawn(player(url.clone(), until)))
            .collect();
        // Measure the steady state: after a second of joining.
        std::thread::sleep(Duration::from_secs(1));
        let (cpu0, all0, t0) = (thread_cpu(SERVER_THREAD), thread_cpu(""), Instant::now());
        std::thread::sleep(Duration::from_secs_f64(seconds));
        let (cpu1, all1) = (thread_cpu(SERVER_THREAD), thread_cpu(""));
        let wall = t0.elapsed().as_secs_f64();
        let stats: Vec<PlayerStats> = client_rt.block_on(async {
            let mut v = Vec::new();
            for p in players {
                v.push(p.await.expect("player task"));
            }
            v
        });
        let mut ttfk: Vec<f64> = stats
            .iter()
            .filter_map(|s| s.ttfk.map(|d| d.as_secs_f64() * 1000.0))
            .collect();
        ttfk.sort_by(f64::total_cmp);
        let incomplete = stats.iter().filter(|s| s.ttfk.is_none()).count();
        let bytes: u64 = stats.iter().map(|s| s.bytes).sum();
        let cpu = (cpu1 - cpu0) / wall;
        println!(
            "rtmp-fanout players={n} kbps={kbps} seconds={seconds} server_cpu_pct={:.1} \
             server_cpu_us_per_player_s={:.1} ttfk_ms_p50={:.1} ttfk_ms_p99={:.1} ttfk_ms_max={:.1} \
             recv_mbps={:.1} process_cpu_pct={:.1} incomplete={incomplete}",
            cpu * 100.0,
            cpu / n as f64 * 1e6,
            pct(&ttfk, 0.5),
            pct(&ttfk, 0.99),
            ttfk.last().copied().unwrap_or(f64::NAN),
            bytes as f64 * 8.0 / (seconds + 1.0) / 1e6,
            (all1 - all0) / wall * 100.0,
        );
    }
    stop.store(1, Ordering::Relaxed);
    let _ = client_rt.block_on(pub_task);
    engine.shutdown();
}
