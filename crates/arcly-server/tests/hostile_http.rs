//! Hostile HTTP clients against the real server while an honest HTTP-FLV
//! player watches a real-time stream: slowloris heads, header floods, idle
//! keep-alive connections by the thousand, parked LL-HLS blocking requests
//! and an HTTP-FLV player that stops reading. Each has a bounded cost and a
//! timeout; the honest player loses no frame. The figures are printed
//! (`cargo test -p arcly-server --test hostile_http -- --nocapture`).

mod common;

use arcly_core::testing::tools;
use common::{http_get, publish, rss_kib, Arcly};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The soft limit on open files of this process.
fn nofile() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(1024)
}

/// Read an HTTP-FLV response until `stop`; the video tags' timestamps.
fn honest_player(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u32>> {
    std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(SECS(10))).unwrap();
        write!(c, "GET /live/cam.flv HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        let mut pos = None; // start of the next tag, once the head is read
        let mut video = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let n = c
                .read(&mut chunk)
                .expect("the honest player kept receiving");
            if n == 0 {
                eprintln!("hostile http: the honest player was disconnected");
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if pos.is_none() {
                if let Some(h) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    pos = Some(h + 4 + 9 + 4); // FLV header + PreviousTagSize0
                }
            }
            while let Some(p) = pos {
                let Some(hdr) = buf.get(p..p + 11) else { break };
                let size = u32::from_be_bytes([0, hdr[1], hdr[2], hdr[3]]) as usize;
                if buf.len() < p + 11 + size + 4 {
                    break;
                }
                let ts = u32::from_be_bytes([hdr[7], hdr[4], hdr[5], hdr[6]]);
                if hdr[0] == 9 {
                    video.push(ts);
                }
                pos = Some(p + 11 + size + 4);
            }
            if let Some(p) = pos {
                if p > 1 << 20 {
                    buf.drain(..p);
                    pos = Some(0);
                }
            }
        }
        video
    })
}

/// Wait until the server closes `c`; false if it stays open past `bound`.
fn closed_within(c: &TcpStream, bound: Duration) -> bool {
    let mut r = c;
    let t = Instant::now();
    let mut b = [0u8; 4096];
    while t.elapsed() < bound {
        c.set_read_timeout(Some(
            bound
                .saturating_sub(t.elapsed())
                .max(Duration::from_millis(10)),
        ))
        .unwrap();
        match r.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

/// A client socket bound to `ip` (127.0.0.x), connected to `to`.
fn connect_from(ip: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4()?;
        s.bind(SocketAddr::from((ip, 0)))?;
        s.connect(to).await?.into_std()
    })
    .and_then(|s| {
        s.set_nonblocking(false)?;
        Ok(s)
    })
}

#[test]
fn hostile_http_clients_have_bounded_costs_and_honest_players_lose_nothing() {
    let ff = tools::ffmpeg();
    let header_timeout = SECS(2);
    let write_timeout = SECS(2);
    let s = Arcly::start(&[
        "--ll-hls",
        "--hls-segment",
        "1",
        "--http-header-timeout",
        "2",
        "--http-write-timeout",
        "2",
        "--max-connections",
        "30000",
    ]);
    let pid = s.child.id();
    let _p = publish(&ff, "h264-aac.flv", &s.rtmp_url("live/cam"), true, true);
    s.wait_stream("live", "cam", true, SECS(10));
    let stop = Arc::new(AtomicBool::new(false));
    let honest = honest_player(s.http, Arc::clone(&stop));
    std::thread::sleep(SECS(2));
    let base = rss_kib(pid);
    let mut figures = Figures(vec![]);
    figures.push(format!("baseline RSS {base} KiB"));

    // 1. Slowloris: 200 heads trickled a byte at a time.
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut c = TcpStream::connect(s.http).unwrap();
            c.write_all(b"GET /live/cam/index.m3u8 HTTP/1.1\r\nX-a: ")
                .unwrap();
            c
        })
        .collect();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        for c in &mut slow {
            let _ = c.write_all(b"a");
        }
    }
    let peak = rss_kib(pid);
    let t = Instant::now();
    let cut = slow
        .iter()
        .filter(|c| closed_within(c, header_timeout * 5))
        .count();
    assert_eq!(cut, 200, "slowloris connections left open");
    figures.push(format!(
        "slowloris x200: all cut within {:.1?} of the last byte; RSS +{} KiB at peak",
        t.elapsed(),
        peak.saturating_sub(base)
    ));
    drop(slow);

    // 2. Header floods: 100 clients each sending 1 MB of header lines.
    let line = format!("X-Flood: {}\r\n", "f".repeat(1000));
    let mut refused = 0;
    let mut peak = 0;
    for _ in 0..100 {
        let mut c = TcpStream::connect(s.http).unwrap();
        c.set_write_timeout(Some(SECS(10))).unwrap();
        let _ = c.write_all(b"GET /live/cam/index.m3u8 HTTP/1.1\r\nHost: x\r\n");
        for _ in 0..1000 {
            if c.write_all(line.as_bytes()).is_err() {
                break;
            }
        }
        peak = peak.max(rss_kib(pid));
        let mut answer = Vec::new();
        c.set_read_timeout(Some(SECS(10))).unwrap();
        let _ = c.read_to_end(&mut answer);
        if answer.is_empty() || answer.starts_with(b"HTTP/1.1 431") {
            refused += 1;
        }
    }
    assert_eq!(refused, 100, "a 1 MB head was served");
    figures.push(format!(
        "header flood 100 x 1 MB: all refused (431 or closed); RSS +{} KiB at peak",
        peak.saturating_sub(base)
    ));

    // 3. Idle keep-alive connections: up to 10 000 (as many as this
    // process's open-file limit allows), 250 per loopback address; twice,
    // to show the second round reuses what the first freed (no leak).
    let n = 10_000.min(nofile().saturating_sub(1000) / 2);
    let (opened, peak1, after1) = idle_round(&s, n, header_timeout);
    figures.push(format!(
        "idle keep-alive x{opened}: all closed after the header timeout; RSS +{} KiB at peak ({} bytes per connection), +{} KiB once closed",
        peak1.saturating_sub(base),
        peak1.saturating_sub(base) * 1024 / opened.max(1) as u64,
        after1.saturating_sub(base)
    ));
    let (opened2, peak2, after2) = idle_round(&s, n, header_timeout);
    figures.push(format!(
        "idle keep-alive again x{opened2}: RSS +{} KiB at peak, +{} KiB once closed",
        peak2.saturating_sub(base),
        after2.saturating_sub(base)
    ));
    // The cost of an idle connection is bounded (hyper's 8 KiB read buffer
    // is most of it), and so their number is (connection limits). What the
    // allocator keeps after they close is reused by later rounds, not
    // leaked per connection.
    for peak in [peak1, peak2] {
        let per_conn = peak.saturating_sub(base) * 1024 / opened.max(1) as u64;
        assert!(per_conn < 16 * 1024, "{per_conn} bytes per idle connection");
    }

    // 4. Parked LL-HLS blocking requests: 1 000 reloads waiting for the
    // next part at once.
    let (code, body) = http_get(s.http, "/live/cam/index.m3u8", &[]);
    assert_eq!(code, 200);
    let text = String::from_utf8_lossy(&body);
    let msn: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let segs = text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    let next = msn + segs + 1;
    let mut parked: Vec<TcpStream> = (0..1000)
        .map(|i| {
            let mut c = connect_from([127, 0, 3, 1 + (i / 200) as u8], s.http).unwrap();
            write!(
                c,
                "GET /live/cam/index.m3u8?_HLS_msn={next}&_HLS_part=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let peak = rss_kib(pid);
    let mut answered = 0;
    for c in &mut parked {
        c.set_read_timeout(Some(SECS(20))).unwrap();
        let mut a = Vec::new();
        let _ = c.read_to_end(&mut a);
        if a.starts_with(b"HTTP/1.1 200") || a.starts_with(b"HTTP/1.1 503") {
            answered += 1;
        }
    }
    assert_eq!(answered, 1000, "parked requests left unanswered");
    figures.push(format!(
        "parked LL-HLS x1000: all answered within the blocking bound; RSS +{} KiB at peak",
        peak.saturating_sub(base)
    ));
    drop(parked);

    // 5. An HTTP-FLV player that stops reading: dropped at the write
    // timeout. Its stream runs 50x real time, so that the socket buffers
    // between the server and the stopped client (megabytes on loopback)
    // fill within seconds.
    let mut cmd = std::process::Command::new(&ff);
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-readrate", "50"])
        .args(["-stream_loop", "-1", "-i"])
        .arg(tools::fixture("h264-aac.flv"))
        .args(["-c", "copy", "-f", "flv", &s.rtmp_url("live/fast")]);
    let _fast = common::Proc::spawn(cmd);
    s.wait_stream("live", "fast", true, SECS(10));
    let stalled = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.set_recv_buffer_size(4096).unwrap();
            sock.connect(s.http).await.unwrap().into_std().unwrap()
        })
    };
    stalled.set_nonblocking(false).unwrap();
    (&stalled)
        .write_all(b"GET /live/fast.flv HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let t = Instant::now();
    let deadline = t + SECS(60);
    while !s.log().contains("client stopped reading") {
        assert!(
            Instant::now() < deadline,
            "the stalled HTTP-FLV player was never dropped:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, b) = http_get(s.http, "/api/streams/live/fast", &[]);
    let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
    assert_eq!(
        v["viewers"]["http-flv"].as_u64().unwrap_or(0),
        0,
        "the stalled player still holds its subscription: {v}"
    );
    figures.push(format!(
        "stalled HTTP-FLV player (a 50x stream): dropped {:.1?} after it stopped reading, once the socket buffers were full (write timeout {write_timeout:?})",
        t.elapsed()
    ));
    drop(stalled);

    std::thread::sleep(SECS(2));
    stop.store(true, Ordering::Relaxed);
    let video = honest.join().expect("the honest player failed");
    let after = rss_kib(pid);
    figures.push(format!(
        "after: RSS {after} KiB ({:+} KiB vs baseline)",
        after as i64 - base as i64
    ));
    // Frames lost would show as a jump to the next keyframe: the gaps
    // between consecutive video timestamps stay a frame's length.
    assert!(
        video.len() > 100,
        "the honest player got {} video frames",
        video.len()
    );
    let max_gap = video
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .max()
        .unwrap();
    figures.push(format!(
        "honest HTTP-FLV player: {} video frames, largest gap {max_gap} ms (frames lost: 0)",
        video.len()
    ));
    assert!(
        max_gap <= 250,
        "the honest player skipped: a {max_gap} ms gap"
    );
    assert!(
        after < base + 256 * 1024,
        "memory grew past every bound: {base} -> {after} KiB"
    );
}

/// Open up to `n` keep-alive connections (one request each, then silence)
/// and wait until the server has closed all of them. (opened, peak RSS,
/// RSS once closed).
fn idle_round(s: &Arcly, n: usize, header_timeout: Duration) -> (usize, u64, u64) {
    let pid = s.child.id();
    let mut idle = Vec::with_capacity(n);
    for i in 0..n {
        let ip = [127, 0, 1 + (i / 250 / 250) as u8, 1 + (i / 250 % 250) as u8];
        let Ok(mut c) = connect_from(ip, s.http) else {
            break;
        };
        if c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .is_err()
        {
            break;
        }
        idle.push(c);
    }
    let opened = idle.len();
    let peak = rss_kib(pid);
    let cut = idle
        .iter()
        .filter(|c| {
            let mut r: &TcpStream = c;
            let mut b = [0u8; 256];
            r.set_read_timeout(Some(SECS(20))).unwrap();
            let answered = matches!(r.read(&mut b), Ok(k) if b[..k].starts_with(b"HTTP/1.1 200"));
            answered && closed_within(c, header_timeout * 10)
        })
        .count();
    assert!(
        opened >= 1000,
        "only {opened} keep-alive connections opened"
    );
    assert_eq!(
        cut, opened,
        "idle keep-alive connections left open or unanswered"
    );
    drop(idle);
    std::thread::sleep(Duration::from_millis(500));
    (opened, peak, rss_kib(pid))
}

/// Figures, printed as they are measured.
struct Figures(Vec<String>);

impl Figures {
    fn push(&mut self, f: String) {
        eprintln!("hostile http: {f}");
        self.0.push(f);
    }
}
