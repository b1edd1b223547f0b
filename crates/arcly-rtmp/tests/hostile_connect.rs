//! Issue 17 item 5, "bounded work per unauthenticated byte": 200
//! connections each send a 7.9 MB `connect` made of strict arrays of NULLs
//! (after raising the chunk size so it comes as one chunk), and the server's
//! memory must not grow with them. It used to grow about 50 MB per
//! connection (the message was buffered whole, then every one-byte NULL
//! decoded into a 32-byte value). Then 200 more send an honest `connect`
//! first and the same 7.9 MB as the next command: an accepted `connect`
//! is not an authenticated publisher either.
//!
//! Its own test binary with a single test, so that the process's resident
//! memory (`VmRSS`/`VmHWM` in `/proc/self/status`) is this test's alone.
//! Run with `--nocapture` to see the figures.
#![allow(missing_docs)]

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::inbound::InboundProtocol;
use arcly_rtmp::amf0::{self, Amf0Value};
use arcly_rtmp::{RtmpConfig, RtmpHandler};
use bytes::{BufMut, Bytes, BytesMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Hostile connections run at once.
const CONNECTIONS: usize = 200;
/// Growth of the peak resident memory allowed while they run.
const MAX_GROWTH_KB: u64 = 20 * 1024;
/// Past this growth the test stops at once (the bug it guards against
/// costs gigabytes at 200 connections: don't take the machine down).
const ABORT_GROWTH_KB: u64 = 512 * 1024;

/// A field of `/proc/self/status` in kB.
fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"))
}

/// Reset `VmHWM` to the current RSS (Linux >= 4.0); false if refused.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The chunk stream a hostile client sends after its handshake: Set Chunk
/// Size to the largest, then one command of about 7.9 MB whose argument
/// is a strict array of strict arrays of NULLs, in a single chunk. The
/// command is the `connect` itself, or, with `connect_first`, follows a
/// small honest `connect`.
fn hostile_stream(connect_first: bool) -> Bytes {
    const INNER: usize = 65_535;
    const OUTER: usize = 120;
    let mut b = BytesMut::new();
    if connect_first {
        let connect = amf0::encode_all(&[
            Amf0Value::string("connect"),
            Amf0Value::Number(1.0),
            Amf0Value::object([
                ("app", Amf0Value::string("live")),
                ("tcUrl", Amf0Value::string("rtmp://127.0.0.1/live")),
            ]),
        ]);
        assert!(connect.len() <= 128, "one chunk at the default chunk size");
        b.put_u8(0x03);
        b.put_slice(&[0, 0, 0]);
        b.put_slice(&(connect.len() as u32).to_be_bytes()[1..]);
        b.put_slice(&[20, 0, 0, 0, 0]);
        b.put_slice(&connect);
    }
    let head = amf0::encode_all(&[
        Amf0Value::string(if connect_first {
            "releaseStream"
        } else {
            "connect"
        }),
        Amf0Value::Number(1.0),
        Amf0Value::object([
            ("app", Amf0Value::string("live")),
            ("tcUrl", Amf0Value::string("rtmp://127.0.0.1/live")),
        ]),
    ]);
    let body_len = head.len() + 5 + OUTER * (5 + INNER);
    assert!(
        body_len < 8 << 20,
        "fits the largest message the server takes"
    );
    b.reserve(12 + 4 + 12 + body_len);
    // Set Chunk Size (RTMP 1.0 §5.4.1) on chunk stream 2.
    b.put_slice(&[0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0]);
    b.put_u32(0x7fff_ffff);
    // A type-0 header on chunk stream 3: AMF0 command (20), stream 0.
    b.put_u8(0x03);
    b.put_slice(&[0, 0, 0]);
    b.put_slice(&(body_len as u32).to_be_bytes()[1..]);
    b.put_slice(&[20, 0, 0, 0, 0]);
    b.put_slice(&head);
    b.put_u8(0x0a); // strict array (AMF0 §2.12)
    b.put_u32(OUTER as u32);
    for _ in 0..OUTER {
        b.put_u8(0x0a);
        b.put_u32(INNER as u32);
        b.put_bytes(0x05, INNER); // null (AMF0 §2.7)
    }
    b.freeze()
}

/// Plain handshake, then the hostile stream; returns whether the server
/// closed the connection (within `wait`).
async fn hostile_client(port: u16, stream: Bytes, wait: Duration) -> bool {
    let Ok(mut t) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut c0c1 = [0u8; 1537];
    c0c1[0] = 3;
    if t.write_all(&c0c1).await.is_err() {
        return false;
    }
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    if t.read_exact(&mut s0s1s2).await.is_err() {
        return false;
    }
    if t.write_all(&s0s1s2[1..1537]).await.is_err() {
        return false;
    }
    drop(s0s1s2);
    // The server may refuse (and close) before all of it is written.
    let _ = tokio::time::timeout(wait, t.write_all(&stream)).await;
    let mut b = [0u8; 512];
    tokio::time::timeout(wait, async {
        loop {
            match t.read(&mut b).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_commands_before_publish_cost_little_memory() {
    let streams = [hostile_stream(false), hostile_stream(true)];
    let engine = Engine::builder().application(AppSpec::new("live")).build();
    let ingest = Arc::new(
        RtmpHandler::new(RtmpConfig::default()).into_protocol("127.0.0.1:0".parse().unwrap()),
    );
    let bound = ingest.local_addr_receiver();
    tokio::spawn(Arc::clone(&ingest).serve(engine.ingest_context()));
    let port = bound.await.expect("listener bound").port();
    let wait = Duration::from_secs(15);

    // One connection first, so one-time costs (runtime, first accept) are
    // in the baseline.
    for stream in &streams {
        hostile_client(port, stream.clone(), wait).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;

    let base = status_kb("VmRSS");
    let hwm_reset = reset_peak();
    let peak = Arc::new(AtomicU64::new(base));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let rss = status_kb("VmRSS");
                peak.fetch_max(rss, Ordering::Relaxed);
                if rss.saturating_sub(base) > ABORT_GROWTH_KB {
                    eprintln!(
                        "RSS grew by {} MB (from {} MB) while hostile connects ran: stopping",
                        rss.saturating_sub(base) / 1024,
                        base / 1024
                    );
                    std::process::exit(1);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    let t0 = Instant::now();
    let mut closed = [0usize; 2];
    for (stream, closed) in streams.iter().zip(&mut closed) {
        let clients: Vec<_> = (0..CONNECTIONS)
            .map(|_| tokio::spawn(hostile_client(port, stream.clone(), wait)))
            .collect();
        for c in clients {
            *closed += usize::from(c.await.expect("client task"));
        }
        // Let the server finish with the connections (it lingers 500 ms).
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let elapsed = t0.elapsed();
    done.store(true, Ordering::Relaxed);
    watchdog.join().unwrap();

    let sampled = peak.load(Ordering::Relaxed);
    let hwm = status_kb("VmHWM");
    let top = if hwm_reset { sampled.max(hwm) } else { sampled };
    let growth = top.saturating_sub(base);
    eprintln!(
        "2 x {CONNECTIONS} connections x {:.1} MB command (as connect, after connect): \
         RSS {} kB before, peak {} kB (VmHWM {}, reset {}), growth {} kB, \
         {closed:?} closed by the server, {:.1} s",
        streams[0].len() as f64 / 1e6,
        base,
        top,
        hwm,
        if hwm_reset { "ok" } else { "refused" },
        growth,
        elapsed.as_secs_f64()
    );
    assert_eq!(
        closed, [CONNECTIONS; 2],
        "every hostile connection is refused and closed"
    );
    assert!(
        growth < MAX_GROWTH_KB,
        "peak RSS grew by {growth} kB (limit {MAX_GROWTH_KB} kB) for {CONNECTIONS} hostile connects"
    );
    engine.shutdown();
}
