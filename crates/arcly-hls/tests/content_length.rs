//! Every HLS answer whose body is known carries `Content-Length` (issue 18,
//! item 14): playlists, blocking playlist reloads once answered, segments,
//! parts, init segments and errors. A client that does not speak chunked
//! transfer coding (srs-bench's HLS client, simple embedded players, some
//! caches) otherwise waits forever for a body it cannot delimit.
//!
//! Checked over a real socket by reading the raw response head, for the
//! service mounted as is and mounted by a host that converts the body to
//! its own type frame by frame (as the `arcly` server does): such a
//! conversion loses the body's exact size, so the length must be in the
//! headers themselves.

mod common;

use arcly_core::engine::{AppSpec, Engine};
use arcly_core::registry::{PublishRegistry, PublishRequest};
use arcly_core::testing::tools;
use arcly_core::StreamPath;
use arcly_hls::http::{HlsService, HttpConfig};
use arcly_hls::packager::{HlsRegistry, PackagerConfig};
use arcly_hls::stream::SegmentFormat;
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serve `svc` on a loopback port; with `convert`, the body goes through
/// `map_frame(..).boxed()` first, as a host with its own body type does.
async fn mount(svc: HlsService, convert: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let svc = svc.clone();
            tokio::spawn(async move {
                let f = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let svc = svc.clone();
                    async move {
                        let resp = svc.respond(&req).await;
                        let resp = if convert {
                            resp.map(|b| b.map_frame(|f| f.map_data(|d| d)).boxed())
                        } else {
                            resp.map(BodyExt::boxed)
                        };
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), f)
                    .await;
            });
        }
    });
    addr
}

/// A raw HTTP/1.1 exchange: the status, the header lines (lower-cased
/// names) and the body bytes as sent on the wire.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn raw(addr: SocketAddr, method: &str, target: &str) -> Raw {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("response within 20 s")
        .unwrap();
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(buf[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw {
        status: status.parse().unwrap(),
        headers,
        body: buf[end + 4..].to_vec(),
    }
}

/// `Content-Length` present and equal to the body, no chunked coding.
fn assert_length(r: &Raw, what: &str) {
    assert_eq!(
        r.header("transfer-encoding"),
        None,
        "{what}: answered with chunked transfer coding"
    );
    let len = r
        .header("content-length")
        .unwrap_or_else(|| panic!("{what}: no Content-Length in {:?}", r.headers));
    assert_eq!(len.parse::<usize>().unwrap(), r.body.len(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_known_body_is_sent_with_content_length() {
    let engine = Engine::builder()
        .application(AppSpec::new("ll").channel_capacity(4096))
        .build();
    let mut cfg = PackagerConfig::low_latency(Duration::from_secs(1), Duration::from_millis(250));
    cfg.hls.format = SegmentFormat::Fmp4;
    let hls = HlsRegistry::new(Arc::new(engine.clone()), cfg);
    let path = StreamPath::parse("ll", "k").unwrap();
    let packager = hls.start(&path).unwrap();
    let svc = HlsService::new(hls.clone(), HttpConfig::default());
    let plain = mount(svc.clone(), false).await;
    let converted = mount(svc, true).await;

    let frames = common::read_ts(&tools::fixture("h264-aac.ts"));
    let mut publisher = engine
        .publish(PublishRequest::new(path.clone(), "test"))
        .await
        .unwrap();
    while engine
        .stream_stats(&path)
        .is_none_or(|s| s.subscribers == 0)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Most of the clip now; the rest after the blocking requests are sent.
    let (now, later) = frames.split_at(frames.len() * 2 / 3);
    for f in now {
        publisher.push(f.clone());
    }
    // Keyframes every 2 s: segment 0 is complete, segment 1 has parts.
    assert!(packager.wait_ready(1, None, Duration::from_secs(10)).await);

    let (seg, part, init, pos) = {
        let s = packager.lock();
        (
            s.segment_uri(0),
            s.part_uri(0, 0),
            s.init_uri(1),
            s.position(),
        )
    };
    // The next part, not there yet: a blocking reload and a part request
    // are both answered when it is.
    let (next_msn, next_part) = (pos.msn, pos.parts);
    let next_part_uri = packager.lock().part_uri(pos.msn, pos.parts as usize);
    let mut blocking = Vec::new();
    for addr in [plain, converted] {
        let t = format!("/ll/k/index.m3u8?_HLS_msn={next_msn}&_HLS_part={next_part}");
        blocking.push(tokio::spawn(async move { raw(addr, "GET", &t).await }));
        let t = format!("/ll/k/{next_part_uri}");
        blocking.push(tokio::spawn(async move { raw(addr, "GET", &t).await }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for f in later {
        publisher.push(f.clone());
    }
    for (i, b) in blocking.into_iter().enumerate() {
        let r = b.await.unwrap();
        assert_eq!(r.status, 200, "blocking request {i}");
        assert_length(&r, &format!("blocking request {i}"));
    }

    for (mount, addr) in [("plain", plain), ("converted", converted)] {
        for target in [
            "/ll/k.m3u8".to_owned(),
            "/ll/k/index.m3u8".to_owned(),
            "/ll/k/index.m3u8?_HLS_skip=YES".to_owned(),
            format!("/ll/k/{seg}"),
            format!("/ll/k/{part}"),
            format!("/ll/k/{init}"),
            "/ll/k/nope-seg1.m4s".to_owned(),
        ] {
            let r = raw(addr, "GET", &target).await;
            assert_length(&r, &format!("{mount} GET {target} ({})", r.status));
            assert!(r.status == 200 || target.contains("nope"), "{target}");
            let head = raw(addr, "HEAD", &target).await;
            assert_eq!(
                head.header("content-length"),
                r.header("content-length"),
                "{mount} HEAD {target}"
            );
            assert!(head.body.is_empty());
        }
        // A preflight is a 204: no body, so neither a length nor chunks
        // (RFC 9110 §8.6).
        let r = raw(addr, "OPTIONS", "/ll/k/index.m3u8").await;
        assert_eq!(r.status, 204);
        assert_eq!(r.header("content-length"), None, "{mount}");
        assert_eq!(r.header("transfer-encoding"), None, "{mount}");
    }
    drop(publisher);
}
