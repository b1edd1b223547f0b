//! The one shape of an HTTP service: [`HttpService`] (a routing predicate
//! plus an answer), and the [`Router`] that asks the mounted services in
//! order.

use crate::body::{full, Body};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// The request body every service receives (hyper's body, boxed so that a
/// service can also be driven from a test without a socket).
pub type RequestBody = BoxBody<Bytes, hyper::Error>;

/// What answering a request returns.
pub type ResponseFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// What serving a connection outside hyper returns.
pub type SocketFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The connection a request came on. The host puts it in every request's
/// extensions ([`ConnInfo::of`] reads it back).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Cancelled when the host stops: long responses (a live stream) end.
    pub shutdown: CancellationToken,
}

impl ConnInfo {
    /// The connection of `req`, if a host put it there.
    pub fn of<B>(req: &Request<B>) -> Option<&ConnInfo> {
        req.extensions().get::<ConnInfo>()
    }

    /// The peer of `req`, or the unspecified address when it came from no
    /// host (a test calling the service directly).
    pub fn peer_of<B>(req: &Request<B>) -> SocketAddr {
        Self::of(req).map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.peer)
    }
}

/// A mountable HTTP service: the routing predicate the host asks
/// ([`owns`](HttpService::owns)) and the answer ([`call`](HttpService::call)).
///
/// A service that streams a long body may also take a request's socket and
/// answer outside hyper ([`wants_socket`](HttpService::wants_socket) /
/// [`serve_socket`](HttpService::serve_socket)): the host reads the request
/// head itself and hands over the connection, so a player costs one task
/// writing straight to its socket (HTTP-FLV does this).
pub trait HttpService: Send + Sync + 'static {
    /// A short name for logs (`hls`, `metrics`).
    fn name(&self) -> &'static str;

    /// Whether this service answers `method` on `path`. The host asks its
    /// services in mount order and gives the request to the first that says
    /// yes.
    fn owns(&self, method: &Method, path: &str) -> bool;

    /// Answer a request this service [owns](HttpService::owns). The
    /// connection's [`ConnInfo`] is in the request's extensions.
    fn call(&self, req: Request<RequestBody>) -> ResponseFuture;

    /// Whether to serve `head` (a request without a body, read whole by the
    /// host) straight on its socket. Asked only of the service that owns the
    /// request. The default says no.
    fn wants_socket(&self, _head: &Request<()>) -> bool {
        false
    }

    /// Serve `head` on `tcp`, writing the whole HTTP response; the
    /// connection closes when the future ends. Called only after
    /// [`wants_socket`](HttpService::wants_socket) said yes; the default
    /// closes the connection.
    fn serve_socket(&self, _head: Request<()>, _tcp: TcpStream, _conn: ConnInfo) -> SocketFuture {
        Box::pin(async {})
    }
}

/// A plain-text response (`msg` and a newline).
pub fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(msg.into() + "\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Services asked in mount order; a request no service owns gets a 404.
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Router {
    services: Arc<Vec<Arc<dyn HttpService>>>,
    headers: Arc<Vec<(HeaderName, HeaderValue)>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field(
                "services",
                &self.services.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Router {
    /// No services: every request is a 404.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mount `service` after the ones mounted so far.
    pub fn mount(mut self, service: impl HttpService) -> Self {
        Arc::make_mut(&mut self.services).push(Arc::new(service));
        self
    }

    /// Mount a shared service after the ones mounted so far.
    pub fn mount_arc(mut self, service: Arc<dyn HttpService>) -> Self {
        Arc::make_mut(&mut self.services).push(service);
        self
    }

    /// Add `name: value` to every response that does not carry `name`.
    pub fn default_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        Arc::make_mut(&mut self.headers).push((name, value));
        self
    }

    /// The service that owns `method` on `path`, if any.
    pub fn owner(&self, method: &Method, path: &str) -> Option<&Arc<dyn HttpService>> {
        self.services.iter().find(|s| s.owns(method, path))
    }

    /// Answer `req` with the service that owns it (404 when none does).
    pub fn respond(&self, req: Request<RequestBody>) -> ResponseFuture {
        let fut = match self.owner(req.method(), req.uri().path()) {
            Some(s) => s.call(req),
            None => Box::pin(async { text(StatusCode::NOT_FOUND, "not found") }),
        };
        let headers = Arc::clone(&self.headers);
        if headers.is_empty() {
            return fut;
        }
        Box::pin(async move {
            let mut resp = fut.await;
            for (name, value) in headers.iter() {
                if !resp.headers().contains_key(name) {
                    resp.headers_mut().insert(name.clone(), value.clone());
                }
            }
            resp
        })
    }

    /// The headers added to every response (for answers written outside
    /// hyper).
    pub fn default_headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty};

    struct Fixed(&'static str, &'static str);

    impl HttpService for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn owns(&self, _: &Method, path: &str) -> bool {
            path.starts_with(self.1)
        }
        fn call(&self, _req: Request<RequestBody>) -> ResponseFuture {
            let name = self.0;
            Box::pin(async move { text(StatusCode::OK, name) })
        }
    }

    fn req(path: &str) -> Request<RequestBody> {
        Request::builder()
            .uri(path)
            .body(
                Empty::new()
                    .map_err(|e: std::convert::Infallible| match e {})
                    .boxed(),
            )
            .unwrap()
    }

    async fn body(r: Response<Body>) -> String {
        let b = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn first_owner_answers_in_mount_order() {
        let r = Router::new()
            .mount(Fixed("a", "/a"))
            .mount(Fixed("any", "/"))
            .mount(Fixed("never", "/a"))
            .default_header(hyper::header::SERVER, HeaderValue::from_static("arcly"));
        assert_eq!(body(r.respond(req("/a/x")).await).await, "a\n");
        let resp = r.respond(req("/b")).await;
        assert_eq!(resp.headers()[hyper::header::SERVER], "arcly");
        assert_eq!(body(resp).await, "any\n");
        let none = Router::new().mount(Fixed("a", "/a"));
        assert_eq!(
            none.respond(req("/b")).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            format!("{r:?}"),
            "Router { services: [\"a\", \"any\", \"never\"], .. }"
        );
    }
}
