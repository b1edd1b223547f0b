//! The one listener loop: accept, bound, read the head, then either hand the
//! socket to a service that serves it directly or serve the connection with
//! hyper and the [`Router`].

use crate::service::{ConnInfo, RequestBody, Router};
use arcly_core::ingest::{ConnectionTracker, IngestLimits, StreamAcceptor};
use arcly_core::traits::Connection;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Request, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long a client may take to send its request headers by default:
/// a client trickling its head (slowloris) holds a slot at most this long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes of a request head the host reads itself before handing the
/// connection to hyper as it is (which then applies its own limits). A
/// head longer than this is never served outside hyper.
pub const SNIFF_LIMIT: usize = 8 * 1024;

/// Most headers a head served outside hyper may carry; more go to hyper.
pub const MAX_SNIFFED_HEADERS: usize = 48;

/// Most bytes of a request head hyper buffers by default: a header flood
/// gets `431` and the connection closes once it is past this, instead of
/// growing a buffer toward hyper's own ~400 KB bound per connection. A
/// few-KB credential in the query fits many times over.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long a write may make no progress by default before the connection
/// is closed: a client that stops reading (stopped process, zero window)
/// holds its slot, its subscription and its buffers at most this long.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(20);

/// Bounds of one listener.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// Connections open at once, in total (more are closed on accept).
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_ip: usize,
    /// How long a client may take to send a request's headers; also how
    /// long an idle keep-alive connection is kept waiting for its next
    /// request (hyper starts the timer as soon as it waits for a head).
    pub header_read_timeout: Duration,
    /// Most bytes of a request head ([`MAX_HEAD_BYTES`] by default).
    pub max_head_bytes: usize,
    /// How long a response write may make no progress before the
    /// connection is closed ([`WRITE_TIMEOUT`] by default).
    pub write_timeout: Duration,
    /// How long open connections may take to finish after the stop.
    pub shutdown_grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        let i = IngestLimits::default();
        Self {
            max_connections: i.max_connections,
            max_connections_per_ip: i.max_connections_per_ip,
            header_read_timeout: HEADER_READ_TIMEOUT,
            max_head_bytes: MAX_HEAD_BYTES,
            write_timeout: WRITE_TIMEOUT,
            shutdown_grace: i.shutdown_grace,
        }
    }
}

/// Serve `router` over HTTP/1.1 on `listener` until `shutdown` is
/// cancelled; then stop accepting and let open connections finish (live
/// bodies end on the same token) within `limits.shutdown_grace`, after which
/// they are aborted. Accept errors are logged and retried, so this returns
/// only on shutdown.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    serve_inner(listener, router, limits, None, shutdown).await
}

/// [`serve`], with `acceptor` (TLS) layered over every accepted connection
/// before HTTP is read from it. Its handshake must finish within the header
/// read timeout. These connections are always served by hyper (no
/// direct-socket take-over, see the [crate docs](crate)).
pub async fn serve_with_acceptor(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    acceptor: Arc<dyn StreamAcceptor>,
    shutdown: CancellationToken,
) {
    serve_inner(listener, router, limits, Some(acceptor), shutdown).await
}

async fn serve_inner(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    acceptor: Option<Arc<dyn StreamAcceptor>>,
    shutdown: CancellationToken,
) {
    let bounds = IngestLimits {
        max_connections: limits.max_connections,
        max_connections_per_ip: limits.max_connections_per_ip,
        ..IngestLimits::default()
    };
    let tracker = Arc::new(ConnectionTracker::default());
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match tracker.try_acquire(peer.ip(), &bounds) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(protocol = "http", %peer, reason = %e, "connection refused");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let conn = ConnInfo {
            peer,
            shutdown: shutdown.clone(),
        };
        let limits = limits.clone();
        let acceptor = acceptor.clone();
        conns.spawn(async move {
            let _permit = permit;
            match acceptor {
                None => serve_connection(tcp, router, conn, &limits).await,
                Some(a) => serve_layered(tcp, &*a, router, conn, &limits).await,
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}

/// One connection: read its first head, offer it to the owning service's
/// socket path, else serve it with hyper.
async fn serve_connection(tcp: TcpStream, router: Router, conn: ConnInfo, limits: &HttpLimits) {
    let mut head = Vec::new();
    match tokio::time::timeout(limits.header_read_timeout, read_head(&tcp, &mut head)).await {
        Ok(Ok(true)) => {}
        // Longer than a head we look into: hyper takes it (and its limits).
        Ok(Ok(false)) if head.len() >= SNIFF_LIMIT => {}
        // Closed, failed or timed out before a whole head.
        _ => return,
    }
    if let Some(req) = parse_bodyless_head(&head) {
        if let Some(svc) = router.owner(req.method(), req.uri().path()) {
            if svc.wants_socket(&req) {
                let svc = Arc::clone(svc);
                drop(head);
                svc.serve_socket(req, tcp, conn).await;
                return;
            }
        }
    }
    // Boxed: a player served on its socket does not carry hyper's state.
    let io = Rewind::new(head, tcp, limits.write_timeout);
    Box::pin(serve_hyper(io, router, conn, limits)).await;
}

/// One connection with a transport over it: its handshake (bounded by the
/// header read timeout), then hyper.
async fn serve_layered(
    tcp: TcpStream,
    acceptor: &dyn StreamAcceptor,
    router: Router,
    conn: ConnInfo,
    limits: &HttpLimits,
) {
    let peer = conn.peer;
    let stream = match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(tcp)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, transport = acceptor.name(), error = %e, "handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, transport = acceptor.name(), "handshake timed out");
            return;
        }
    };
    let io = Rewind::new(Vec::new(), stream, limits.write_timeout);
    Box::pin(serve_hyper(io, router, conn, limits)).await;
}

/// Read from `tcp` into `buf` until it holds a whole request head (`true`),
/// [`SNIFF_LIMIT`] bytes, or the client closes (`false`).
async fn read_head(tcp: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut scanned = 0usize;
    loop {
        if buf[scanned.saturating_sub(3)..]
            .windows(4)
            .any(|w| w == b"\r\n\r\n")
        {
            return Ok(true);
        }
        scanned = buf.len();
        if buf.len() >= SNIFF_LIMIT {
            return Ok(false);
        }
        buf.reserve((SNIFF_LIMIT - buf.len()).min(1024));
        match tcp.try_read_buf(buf) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => tcp.readable().await?,
            Err(e) => return Err(e),
        }
    }
}

/// `head` as a request when it is whole, well formed, carries no body
/// (no `Transfer-Encoding`, no non-zero `Content-Length`) and asks for no
/// upgrade; anything else is `None` and goes to hyper, which answers it
/// (including with its errors).
fn parse_bodyless_head(head: &[u8]) -> Option<Request<()>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_SNIFFED_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let mut b = Request::builder()
        .method(req.method?)
        .uri(req.path?.parse::<Uri>().ok()?);
    for h in req.headers.iter() {
        let body = h.name.eq_ignore_ascii_case("transfer-encoding")
            || (h.name.eq_ignore_ascii_case("content-length") && h.value.trim_ascii() != b"0");
        if body || h.name.eq_ignore_ascii_case("upgrade") {
            return None;
        }
        b = b.header(h.name, h.value);
    }
    b.body(()).ok()
}

/// A socket whose first reads replay bytes already read from it, and whose
/// writes fail with `TimedOut` once one has made no progress for the write
/// timeout (the timer exists only while a write is blocked).
struct Rewind<T = TcpStream> {
    pre: Bytes,
    io: T,
    write_timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> Rewind<T> {
    fn new(pre: Vec<u8>, io: T, write_timeout: Duration) -> Self {
        Self {
            pre: Bytes::from(pre),
            io,
            write_timeout,
            stalled: None,
        }
    }

    /// Track a write's outcome: progress clears the stall timer, `Pending`
    /// arms it (once) and fails the write when it fires.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let t = self.write_timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(t)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            let pre = self.pre.split_to(n);
            buf.put_slice(&pre);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Serve one connection with hyper and `router`.
async fn serve_hyper<T: Connection>(
    tcp: Rewind<T>,
    router: Router,
    conn: ConnInfo,
    limits: &HttpLimits,
) {
    let peer = conn.peer;
    let shutdown = conn.shutdown.clone();
    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let mut req: Request<RequestBody> = req.map(BodyExt::boxed);
        req.extensions_mut().insert(conn.clone());
        let fut = router.respond(req);
        async move { Ok::<_, std::convert::Infallible>(fut.await) }
    });
    let http = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192))
        .serve_connection(TokioIo::new(tcp), svc);
    tokio::pin!(http);
    tokio::select! {
        r = http.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(%peer, error = %e, "http connection ended");
            }
        }
        _ = shutdown.cancelled() => {
            http.as_mut().graceful_shutdown();
            let _ = http.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{text, HttpService, ResponseFuture};
    use arcly_core::ingest::AcceptFuture;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A transport whose handshake is one byte, `+`, from the client (or
    /// never, when the client sends nothing).
    struct PlusFirst;

    impl StreamAcceptor for PlusFirst {
        fn name(&self) -> &'static str {
            "plus"
        }
        fn accept(&self, mut tcp: TcpStream) -> AcceptFuture {
            Box::pin(async move {
                let mut b = [0u8; 1];
                tcp.read_exact(&mut b).await?;
                if b[0] != b'+' {
                    return Err(std::io::ErrorKind::InvalidData.into());
                }
                Ok(Box::new(tcp) as Box<dyn Connection>)
            })
        }
    }

    struct Hello;

    impl HttpService for Hello {
        fn name(&self) -> &'static str {
            "hello"
        }
        fn owns(&self, _: &hyper::Method, _: &str) -> bool {
            true
        }
        fn call(&self, _req: Request<crate::service::RequestBody>) -> ResponseFuture {
            Box::pin(async { text(hyper::StatusCode::OK, "hello") })
        }
    }

    #[tokio::test]
    async fn a_layered_transport_serves_and_a_stalled_handshake_is_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let limits = HttpLimits {
            header_read_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        };
        let host = tokio::spawn(serve_with_acceptor(
            listener,
            Router::new().mount(Hello),
            limits,
            Arc::new(PlusFirst),
            stop.clone(),
        ));
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"+GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello\n"), "{answer}");

        // No handshake: closed once the header timeout runs out.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let t0 = std::time::Instant::now();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf))
            .await
            .expect("closed within the header timeout")
            .unwrap_or(0);
        assert_eq!(n, 0);
        assert!(
            t0.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t0.elapsed()
        );
        // A failed handshake is closed at once, with no HTTP answer.
        let mut bad = TcpStream::connect(addr).await.unwrap();
        bad.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(10), bad.read(&mut buf))
            .await
            .expect("closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
        stop.cancel();
        host.await.unwrap();
    }

    #[test]
    fn bodyless_heads() {
        let r = parse_bodyless_head(b"GET /live/a.flv?token=x HTTP/1.1\r\nHost: h\r\n\r\n")
            .expect("a plain GET");
        assert_eq!(r.uri().path(), "/live/a.flv");
        assert_eq!(r.uri().query(), Some("token=x"));
        assert_eq!(r.headers()["host"], "h");
        for other in [
            &b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"[..],
            b"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /x HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET /x HTTP/1.1\r\nHost: h\r\n",
            b"\x00\x01garbage\r\n\r\n",
        ] {
            assert!(parse_bodyless_head(other).is_none(), "{other:?}");
        }
        assert!(parse_bodyless_head(b"GET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
    }
}
