//! Hostile clients against the listener loop, with short limits so the
//! test is quick: each one's cost is bounded in time, and an honest client
//! is served throughout.

use arcly_http::{full, serve, HttpLimits, HttpService, RequestBody, ResponseFuture, Router};
use bytes::Bytes;
use hyper::{Method, Request, Response};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// `/small` answers a few bytes, `/big` 64 MiB (more than any socket
/// buffers hold).
struct Sized;

impl HttpService for Sized {
    fn name(&self) -> &'static str {
        "sized"
    }
    fn owns(&self, _: &Method, _: &str) -> bool {
        true
    }
    fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
        let big = req.uri().path() == "/big";
        Box::pin(async move {
            let body = if big {
                Bytes::from(vec![7u8; 64 << 20])
            } else {
                Bytes::from_static(b"ok")
            };
            Response::new(full(body))
        })
    }
}

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

async fn host() -> (SocketAddr, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let limits = HttpLimits {
        header_read_timeout: HEADER_TIMEOUT,
        write_timeout: WRITE_TIMEOUT,
        max_connections_per_ip: 10_000,
        ..HttpLimits::default()
    };
    tokio::spawn(serve(
        listener,
        Router::new().mount(Sized),
        limits,
        stop.clone(),
    ));
    (addr, stop)
}

/// An honest request, answered in full.
async fn honest(addr: SocketAddr) {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), c.read_to_string(&mut out))
        .await
        .expect("an honest request was not answered in time")
        .unwrap();
    assert!(
        out.starts_with("HTTP/1.1 200") && out.ends_with("ok"),
        "{out}"
    );
}

/// Wait until the server closes `c` (EOF or reset); how long it took.
async fn closed_within(c: &mut TcpStream, bound: Duration) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((t + bound).into(), c.read(&mut buf)).await {
            Err(_) => panic!("still open after {bound:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return t.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_heads_are_cut_at_the_header_timeout() {
    let (addr, stop) = host().await;
    let mut conns = Vec::new();
    for _ in 0..200 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /small HTTP/1.1\r\nX-a: ").await.unwrap();
        conns.push(c);
    }
    // Trickle a byte now and then; the head never ends.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for c in &mut conns {
            let _ = c.write_all(b"a").await;
        }
    }
    honest(addr).await;
    for c in &mut conns {
        closed_within(c, HEADER_TIMEOUT * 10).await;
    }
    honest(addr).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let (addr, stop) = host().await;
    let mut conns = Vec::new();
    for _ in 0..300 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = c.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        conns.push(c); // keep-alive, and then silence
    }
    for c in &mut conns {
        closed_within(c, HEADER_TIMEOUT * 10).await;
    }
    honest(addr).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_flood_is_refused() {
    let (addr, stop) = host().await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /small HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let line = format!("X-Flood: {}\r\n", "f".repeat(1000));
    let mut sent = 0usize;
    let mut answer = Vec::new();
    // Send up to 1 MB of header lines; the server answers and closes long
    // before.
    while sent < (1 << 20) {
        if c.write_all(line.as_bytes()).await.is_err() {
            break;
        }
        sent += line.len();
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 431") || answer.is_empty(),
        "a {sent}-byte head was answered: {text}"
    );
    honest(addr).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_at_the_write_timeout() {
    let (addr, stop) = host().await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Read nothing for a while: the server's write stalls, then it gives up.
    tokio::time::sleep(WRITE_TIMEOUT * 3).await;
    honest(addr).await;
    // What is in the socket buffers comes out, then the connection ends
    // well short of the 64 MiB body.
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let t = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => total += n,
            Err(_) => panic!("the stalled connection was not closed ({total} bytes read)"),
        }
        assert!(t.elapsed() < Duration::from_secs(30));
    }
    assert!(total < 60 << 20, "{total} bytes: the write never timed out");
    stop.cancel();
}
