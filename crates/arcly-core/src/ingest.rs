//! The ingest layer shared by every wire protocol (feature `ingest`): a TCP
//! accept loop with connection bounds and graceful shutdown, idle timeouts,
//! a token-bucket [`RateLimiter`], the [keyframe gate](crate::inbound::KeyframeGate)
//! and NAL start-code scanning.
//!
//! A protocol is a [`ProtocolHandler`]; [`TcpIngest`] turns it into an
//! [`InboundProtocol`] the engine runs:
//!
//! ```no_run
//! # use arcly_core::ingest::{IngestLimits, TcpIngest};
//! # fn handler() -> std::sync::Arc<dyn arcly_core::traits::ProtocolHandler> { unimplemented!() }
//! let proto = TcpIngest::new("0.0.0.0:1935".parse().unwrap(), handler(), IngestLimits::default());
//! ```

use crate::error::{Result, StreamError};
use crate::inbound::{InboundProtocol, IngestContext};
use crate::traits::{Connection, ProtocolHandler};
use async_trait::async_trait;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub use crate::inbound::KeyframeGate;

/// Bounds on connections.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    /// Connections open at once, in total.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_ip: usize,
    /// A connection that neither sends nor accepts a byte for this long is closed.
    pub idle_timeout: Duration,
    /// The protocol's handshake must finish within this (enforced by the handler).
    pub handshake_timeout: Duration,
    /// How long connections may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_connections_per_ip: 256,
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Counts open connections in total and per IP; a permit releases its slot
/// when dropped.
#[derive(Debug, Default)]
pub struct ConnectionTracker {
    inner: Mutex<TrackerInner>,
}

#[derive(Debug, Default)]
struct TrackerInner {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One tracked connection's slot.
#[derive(Debug)]
pub struct ConnectionPermit {
    tracker: Arc<ConnectionTracker>,
    ip: IpAddr,
}

impl ConnectionTracker {
    /// Take a slot for `ip`, or say which bound refused it.
    pub fn try_acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: &IngestLimits,
    ) -> Result<ConnectionPermit> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if g.total >= limits.max_connections {
            return Err(StreamError::LimitExceeded(format!(
                "{} connections open (limit {})",
                g.total, limits.max_connections
            )));
        }
        let n = g.per_ip.get(&ip).copied().unwrap_or(0);
        if n >= limits.max_connections_per_ip {
            return Err(StreamError::LimitExceeded(format!(
                "{n} connections from {ip} (limit {})",
                limits.max_connections_per_ip
            )));
        }
        g.total += 1;
        g.per_ip.insert(ip, n + 1);
        Ok(ConnectionPermit {
            tracker: Arc::clone(self),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut g = self.tracker.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.total = g.total.saturating_sub(1);
        if let Some(n) = g.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                g.per_ip.remove(&self.ip);
            }
        }
    }
}

/// What a [`StreamAcceptor`] returns: the connection to serve, or why the
/// transport's own handshake failed.
pub type AcceptFuture = Pin<Box<dyn Future<Output = io::Result<Box<dyn Connection>>> + Send>>;

/// A transport layered over an accepted TCP connection before the protocol
/// sees it (TLS for RTMPS and HTTPS): the protocol handlers stay
/// transport-agnostic, they are handed a [`Connection`] either way.
///
/// The accept loop calls [`accept`](StreamAcceptor::accept) on the
/// connection's own task, bounded by the handshake timeout, so a slow
/// handshake never holds up the next accept.
pub trait StreamAcceptor: Send + Sync + 'static {
    /// A short name for logs (`tls`).
    fn name(&self) -> &'static str;

    /// Run the transport's handshake on `tcp` and return the stream to serve.
    fn accept(&self, tcp: TcpStream) -> AcceptFuture;
}

/// Turns a [`ProtocolHandler`] into an [`InboundProtocol`] on a TCP address.
pub struct TcpIngest {
    addr: SocketAddr,
    handler: Arc<dyn ProtocolHandler>,
    limits: IngestLimits,
    tracker: Arc<ConnectionTracker>,
    bound: Mutex<Option<oneshot::Sender<SocketAddr>>>,
    acceptor: Option<Arc<dyn StreamAcceptor>>,
}

impl std::fmt::Debug for TcpIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpIngest")
            .field("addr", &self.addr)
            .field("protocol", &self.handler.name())
            .finish()
    }
}

impl TcpIngest {
    /// Serve `handler` on `addr` within `limits`.
    pub fn new(addr: SocketAddr, handler: Arc<dyn ProtocolHandler>, limits: IngestLimits) -> Self {
        Self {
            addr,
            handler,
            limits,
            tracker: Arc::default(),
            bound: Mutex::new(None),
            acceptor: None,
        }
    }

    /// Layer `acceptor` (TLS) over every accepted connection; its handshake
    /// must finish within the limits' handshake timeout.
    #[must_use]
    pub fn with_acceptor(mut self, acceptor: Arc<dyn StreamAcceptor>) -> Self {
        self.acceptor = Some(acceptor);
        self
    }

    /// Learn the address actually bound (useful with port 0).
    pub fn local_addr_receiver(&self) -> oneshot::Receiver<SocketAddr> {
        let (tx, rx) = oneshot::channel();
        *self.bound.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        rx
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.tracker.open()
    }

    /// Serve on an already bound listener until `ctx.shutdown`.
    pub async fn serve_listener(&self, listener: TcpListener, ctx: IngestContext) -> Result<()> {
        let name = self.handler.name();
        if let Some(tx) = self.bound.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(listener.local_addr()?);
        }
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                a = listener.accept() => a,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            };
            let (tcp, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(protocol = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let permit = match self.tracker.try_acquire(peer.ip(), &self.limits) {
                Ok(p) => p,
                Err(e) => {
                    ctx.observer.ingest_error(name, "limit");
                    tracing::info!(protocol = name, %peer, reason = %e, "connection refused");
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let handler = Arc::clone(&self.handler);
            let ctx2 = ctx.clone();
            let idle = self.limits.idle_timeout;
            let handshake = self.limits.handshake_timeout;
            let acceptor = self.acceptor.clone();
            conns.spawn(async move {
                let _permit = permit;
                let stream: Box<dyn Connection> = match acceptor {
                    None => Box::new(tcp),
                    Some(a) => match tokio::time::timeout(handshake, a.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            ctx2.observer.ingest_error(name, "handshake");
                            tracing::info!(protocol = name, transport = a.name(), %peer, error = %e, "handshake failed");
                            return;
                        }
                        Err(_) => {
                            ctx2.observer.ingest_error(name, "timeout");
                            tracing::info!(protocol = name, transport = a.name(), %peer, "handshake timed out");
                            return;
                        }
                    },
                };
                ctx2.observer.connection_opened(name);
                let conn = IdleTimeout::new(stream, idle);
                let result = handler
                    .handle_connection(Box::new(conn), peer, ctx2.clone())
                    .await;
                if let Err(e) = result {
                    let label = match &e {
                        StreamError::Timeout(_) => "timeout",
                        StreamError::Io(io) if io.kind() == io::ErrorKind::TimedOut => "timeout",
                        StreamError::Io(_) => "io",
                        StreamError::LimitExceeded(_) => "limit",
                        e if e.is_refusal() => "refused",
                        _ => "protocol",
                    };
                    ctx2.observer.ingest_error(name, label);
                    tracing::info!(protocol = name, %peer, error = %e, "connection ended");
                }
                ctx2.observer.connection_closed(name);
            });
        }
        drop(listener);
        let grace = self.limits.shutdown_grace;
        if tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} })
            .await
            .is_err()
        {
            conns.abort_all();
        }
        Ok(())
    }
}

#[async_trait]
impl InboundProtocol for TcpIngest {
    fn name(&self) -> &'static str {
        self.handler.name()
    }

    async fn serve(self: Arc<Self>, ctx: IngestContext) -> Result<()> {
        let listener = TcpListener::bind(self.addr).await.map_err(|e| {
            StreamError::Io(io::Error::new(
                e.kind(),
                format!("bind {} for {}: {e}", self.addr, self.handler.name()),
            ))
        })?;
        self.serve_listener(listener, ctx).await
    }
}

/// A connection wrapper that fails reads and writes with `TimedOut` when no
/// byte moved in either direction for the idle timeout.
///
/// Traffic only records when it happened; the timer is re-armed when it
/// fires (once per timeout period), not on every read and write: a timer
/// moved per write costs a timer-wheel update per write per connection.
pub struct IdleTimeout<T> {
    inner: T,
    timeout: Duration,
    last_activity: tokio::time::Instant,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<T> std::fmt::Debug for IdleTimeout<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleTimeout")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl<T> IdleTimeout<T> {
    /// Wrap `inner`.
    pub fn new(inner: T, timeout: Duration) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            inner,
            timeout,
            last_activity: now,
            deadline: Box::pin(tokio::time::sleep_until(now + timeout)),
        }
    }

    fn reset(&mut self) {
        self.last_activity = tokio::time::Instant::now();
    }

    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            // The timer ran out: idle only if nothing moved since it was set.
            let due = self.last_activity + self.timeout;
            if due <= tokio::time::Instant::now() {
                return true;
            }
            self.deadline.as_mut().reset(due);
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.reset();
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                if self.expired(cx) {
                    Poll::Ready(Err(timed_out()))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<T> IdleTimeout<T> {
    /// Reset the idle clock after a write that moved bytes; turn a pending
    /// write into a timeout once the clock ran out.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.reset();
                }
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        self.after_write(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A token bucket on bytes and messages per connection.
///
/// Sans-IO: the caller passes the current time, so tests need no clock.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    bytes_per_sec: f64,
    msgs_per_sec: f64,
    byte_tokens: f64,
    msg_tokens: f64,
    byte_burst: f64,
    msg_burst: f64,
    last: Option<Instant>,
}

impl RateLimiter {
    /// Allow `bytes_per_sec` and `msgs_per_sec` on average, with bursts of
    /// `burst_secs` seconds' worth.
    pub fn new(bytes_per_sec: u64, msgs_per_sec: u64, burst_secs: f64) -> Self {
        let byte_burst = bytes_per_sec as f64 * burst_secs.max(0.001);
        let msg_burst = msgs_per_sec as f64 * burst_secs.max(0.001);
        Self {
            bytes_per_sec: bytes_per_sec as f64,
            msgs_per_sec: msgs_per_sec as f64,
            byte_tokens: byte_burst,
            msg_tokens: msg_burst,
            byte_burst,
            msg_burst,
            last: None,
        }
    }

    /// Account for one message of `bytes` at `now`. An error says which
    /// bucket ran dry; the caller disconnects with it.
    pub fn check(&mut self, now: Instant, bytes: usize) -> Result<()> {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.byte_tokens = (self.byte_tokens + dt * self.bytes_per_sec).min(self.byte_burst);
            self.msg_tokens = (self.msg_tokens + dt * self.msgs_per_sec).min(self.msg_burst);
        }
        self.last = Some(now);
        self.byte_tokens -= bytes as f64;
        self.msg_tokens -= 1.0;
        if self.byte_tokens < 0.0 {
            return Err(StreamError::LimitExceeded(format!(
                "byte rate above {} B/s",
                self.bytes_per_sec as u64
            )));
        }
        if self.msg_tokens < 0.0 {
            return Err(StreamError::LimitExceeded(format!(
                "message rate above {}/s",
                self.msgs_per_sec as u64
            )));
        }
        Ok(())
    }
}

/// Offsets of the Annex-B start codes (`00 00 01`, and the 4-byte form) in
/// `data`: each item is `(start_code_offset, payload_offset)`.
/// ITU-T H.264 Annex B.2 / H.265 Annex B.2.
pub fn find_start_codes(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        let Some(pos) = memchr::memchr(1, &data[i + 2..]) else {
            break;
        };
        let one = i + 2 + pos;
        if data[one - 1] == 0 && data[one - 2] == 0 {
            let start = if one >= 3 && data[one - 3] == 0 {
                one - 3
            } else {
                one - 2
            };
            out.push((start, one + 1));
        }
        i = one - 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_refuses_a_flood_and_refills() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1000, 10, 1.0);
        assert!(r.check(t0, 900).is_ok());
        let e = r.check(t0, 200).unwrap_err();
        assert!(e.to_string().contains("byte rate"), "{e}");
        let mut r = RateLimiter::new(1000, 10, 1.0);
        assert!(r.check(t0, 900).is_ok());
        assert!(r.check(t0 + Duration::from_millis(500), 500).is_ok());
        let mut r = RateLimiter::new(1 << 20, 2, 1.0);
        assert!(r.check(t0, 1).is_ok());
        assert!(r.check(t0, 1).is_ok());
        assert!(r
            .check(t0, 1)
            .unwrap_err()
            .to_string()
            .contains("message rate"));
    }

    #[test]
    fn tracker_bounds_total_and_per_ip() {
        let t = Arc::new(ConnectionTracker::default());
        let limits = IngestLimits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Default::default()
        };
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let p1 = t.try_acquire(a, &limits).unwrap();
        let _p2 = t.try_acquire(a, &limits).unwrap();
        assert!(t.try_acquire(a, &limits).is_err());
        let _p3 = t.try_acquire(b, &limits).unwrap();
        assert!(t.try_acquire(b, &limits).is_err(), "total bound");
        drop(p1);
        assert!(t.try_acquire(a, &limits).is_ok());
    }

    #[test]
    fn start_codes_are_found() {
        let d = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65, 9];
        assert_eq!(find_start_codes(&d), vec![(0, 4), (7, 10), (11, 15)]);
        assert!(find_start_codes(&[0, 0]).is_empty());
        assert!(find_start_codes(&[1, 1, 1, 0, 0]).is_empty());
    }

    #[tokio::test]
    async fn idle_connections_time_out() {
        let (a, _b) = tokio::io::duplex(64);
        let mut c = IdleTimeout::new(a, Duration::from_millis(50));
        let mut buf = [0u8; 8];
        let e = tokio::io::AsyncReadExt::read(&mut c, &mut buf)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_clock_counts_from_the_last_byte() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, mut b) = tokio::io::duplex(64);
        let mut c = IdleTimeout::new(a, Duration::from_secs(10));
        let start = tokio::time::Instant::now();
        let peer = tokio::spawn(async move {
            for at in [5u64, 12, 19] {
                tokio::time::sleep_until(start + Duration::from_secs(at)).await;
                b.write_all(b"x").await.unwrap();
            }
            b // keep the connection open, silent
        });
        let mut buf = [0u8; 8];
        let mut got = 0;
        let e = loop {
            match c.read(&mut buf).await {
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(got, 3);
        let idle_at = tokio::time::Instant::now() - start;
        assert!(
            idle_at >= Duration::from_secs(29) && idle_at < Duration::from_secs(30),
            "timed out at {idle_at:?}, want 10 s after the last byte at 19 s"
        );
        drop(peer.await.unwrap());
    }
}
