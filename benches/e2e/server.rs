//! A minimal RTMP server for the end-to-end benchmark when the `arcly`
//! binary is not available: an arcly-core `Engine` with one application
//! (`live`, GOP cache) and arcly-rtmp's `RtmpHandler` under `TcpIngest`.
//! This is the same publish/play path the `arcly` server runs, without its
//! HTTP side, HLS, recording or metrics.
//!
//! ```text
//! e2e-rtmp-server --rtmp-listen 127.0.0.1:1935 [--gop-cache 600] [--workers N]
//!                 [--read-buffer BYTES] [--merge-ms MS]
//! ```
//!
//! `--merge-ms` is an experiment for the profile in the e2e report: each
//! connection's writes are merged in a buffer and sent at most every MS
//! milliseconds (or at 64 KiB), as SRS's `mw_latency` does, to measure what
//! fewer, larger `writev` calls save per player. It copies the bytes once
//! (a real implementation in the handler would keep the shared `Bytes`).

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::inbound::InboundProtocol;
use arcly_core::traits::ProtocolHandler;
use arcly_rtmp::{RtmpConfig, RtmpHandler};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Flush the merge buffer at once when it holds this much.
const MERGE_FLUSH_BYTES: usize = 64 * 1024;
/// Writes wait (Pending) once this much is buffered and the socket is full.
const MERGE_MAX_BYTES: usize = 1 << 20;

/// Merges writes and sends them at most every `delay` (see the module docs).
struct Merged {
    inner: TcpStream,
    buf: Vec<u8>,
    sent: usize,
    delay: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl Merged {
    fn new(inner: TcpStream, delay: Duration) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            sent: 0,
            delay,
            timer: Box::pin(tokio::time::sleep(delay)),
            armed: false,
        }
    }

    /// Write out what is buffered; Ready once all of it went.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = match Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.sent += n;
        }
        self.buf.clear();
        self.sent = 0;
        self.armed = false;
        if self.buf.capacity() > 2 * MERGE_FLUSH_BYTES {
            self.buf.shrink_to(MERGE_FLUSH_BYTES);
        }
        Poll::Ready(Ok(()))
    }

    /// Flush when the timer is due; registers the timer otherwise.
    fn poll_timer(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.armed && self.timer.as_mut().poll(cx).is_ready() {
            if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
                return Err(e);
            }
        }
        Ok(())
    }
}

impl AsyncRead for Merged {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Err(e) = this.poll_timer(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Merged {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.buf.len() >= MERGE_MAX_BYTES {
            match this.poll_drain(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let mut n = 0;
        for b in bufs {
            this.buf.extend_from_slice(b);
            n += b.len();
        }
        if this.buf.len() - this.sent >= MERGE_FLUSH_BYTES {
            if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
        }
        if this.buf.len() > this.sent && !this.armed {
            this.armed = true;
            let at = tokio::time::Instant::now() + this.delay;
            this.timer.as_mut().reset(at);
        }
        if let Err(e) = this.poll_timer(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.poll_drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

fn main() {
    let mut listen = "127.0.0.1:1935".to_string();
    let mut gop = 600usize;
    let mut workers = 0usize;
    let mut merge_ms = 0u64;
    let mut cfg = RtmpConfig::default();
    cfg.limits.max_connections = 100_000;
    cfg.limits.max_connections_per_ip = 100_000;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--help" || a == "-h" {
            println!("e2e-rtmp-server --rtmp-listen ADDR [--gop-cache FRAMES] [--workers N] [--read-buffer BYTES] [--merge-ms MS]");
            return;
        }
        let v = it.next().unwrap_or_default();
        match a.as_str() {
            "--rtmp-listen" => listen = v,
            "--gop-cache" => gop = v.parse().unwrap_or(gop),
            "--workers" => workers = v.parse().unwrap_or(0),
            "--read-buffer" => cfg.read_buffer_size = v.parse().unwrap_or(cfg.read_buffer_size),
            "--merge-ms" => merge_ms = v.parse().unwrap_or(0),
            _ => {
                eprintln!("e2e-rtmp-server: unknown argument {a}");
                std::process::exit(2);
            }
        }
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        rt.worker_threads(workers);
    }
    let rt = rt.enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let engine = Engine::builder()
            .application(AppSpec::new("live").gop_cache(gop))
            .build();
        let addr: std::net::SocketAddr = listen.parse().expect("--rtmp-listen ADDR:PORT");
        if merge_ms == 0 {
            // Runs until killed (SIGTERM from run.sh).
            let ingest = Arc::new(RtmpHandler::new(cfg).into_protocol(addr));
            let r = Arc::clone(&ingest).serve(engine.ingest_context()).await;
            eprintln!("e2e-rtmp-server: listener ended: {r:?}");
        } else {
            let handler = Arc::new(RtmpHandler::new(cfg));
            let listener = TcpListener::bind(addr).await.expect("bind");
            let delay = Duration::from_millis(merge_ms);
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let h = Arc::clone(&handler);
                let ctx = engine.ingest_context();
                tokio::spawn(async move {
                    let _ = h
                        .handle_connection(Box::new(Merged::new(tcp, delay)), peer, ctx)
                        .await;
                });
            }
        }
        engine.shutdown();
    });
}
