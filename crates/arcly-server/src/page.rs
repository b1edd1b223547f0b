//! The web page (`/`: every live stream with a player) and the hls.js it
//! loads, an [`HttpService`].

use arcly_http::{full, text, HttpService, RequestBody, ResponseFuture};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

/// The web page.
const INDEX_HTML: &str = include_str!("../assets/index.html");
/// hls.js as vendored by arcly-hls from its npm release (its
/// `assets/hls.js/` holds the licence, version and refresh script).
const HLS_JS: &[u8] = include_bytes!("../../arcly-hls/assets/hls.js/hls.min.js");

/// `GET /`, `/index.html`, `/assets/hls.min.js`; `/favicon.ico` is a 404.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageService;

impl HttpService for PageService {
    fn name(&self) -> &'static str {
        "page"
    }

    fn owns(&self, method: &Method, path: &str) -> bool {
        let get = method == Method::GET || method == Method::HEAD;
        match path {
            "/" | "/index.html" | "/assets/hls.min.js" => get,
            "/favicon.ico" => true,
            _ => false,
        }
    }

    fn call(&self, req: Request<RequestBody>) -> ResponseFuture {
        let path = req.uri().path().to_owned();
        Box::pin(async move {
            match path.as_str() {
                "/" | "/index.html" => {
                    let mut r = Response::new(full(Bytes::from_static(INDEX_HTML.as_bytes())));
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    );
                    r
                }
                "/assets/hls.min.js" => {
                    let mut r = Response::new(full(Bytes::from_static(HLS_JS)));
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("text/javascript"),
                    );
                    r.headers_mut().insert(
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("max-age=86400"),
                    );
                    r
                }
                _ => text(StatusCode::NOT_FOUND, "not found"),
            }
        })
    }
}
