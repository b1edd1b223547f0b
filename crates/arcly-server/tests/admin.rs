//! Who may use the admin API and `/metrics`, over real sockets: a remote
//! peer is a network namespace joined by a veth pair (`ip netns`, as root).

mod common;

use common::{http_get, http_request, Arcly, RemoteHost};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The loopback address of a server listening on 0.0.0.0.
fn local(addr: SocketAddr) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], addr.port()))
}

/// A raw request with exactly these header lines; the whole answer.
fn raw(addr: SocketAddr, head: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn without_a_token_the_api_answers_only_this_machine() {
    let remote = RemoteHost::new("adm");
    let s = Arcly::start_on("127.0.0.1:0", "0.0.0.0:0", &[]);
    let url = |p: &str| format!("http://{}:{}{p}", remote.host_ip, s.http.port());

    // This machine: the operator's curl and page work as before.
    let (code, body) = http_get(local(s.http), "/api/streams", &[]);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(http_get(local(s.http), "/metrics", &[]).0, 200);

    // Another host: refused, and told how to open it up.
    let (code, body) = remote.curl(&[], &url("/api/streams"));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("admin.token"), "{body}");
    assert_eq!(
        remote
            .curl(&["-X", "POST"], &url("/api/streams/live/x/kick"))
            .0,
        403
    );
    assert_eq!(remote.curl(&[], &url("/api/server")).0, 403);
    assert_eq!(
        remote.curl(&[], &url("/metrics")).0,
        403,
        "series name every stream key"
    );
    // What a remote viewer or load balancer needs stays open.
    assert_eq!(remote.curl(&[], &url("/healthz")).0, 200);
    assert_eq!(remote.curl(&[], &url("/")).0, 200);
    assert_eq!(remote.curl(&[], &url("/live/nobody.flv")).0, 404);
    assert!(
        s.log().contains("admin API request refused"),
        "refusals are logged: {}",
        s.log()
    );
}

#[test]
fn with_a_token_every_caller_sends_it() {
    let remote = RemoteHost::new("tok");
    let s = Arcly::start_on("127.0.0.1:0", "0.0.0.0:0", &["--admin-token", "adm-9f2"]);
    let url = |p: &str| format!("http://{}:{}{p}", remote.host_ip, s.http.port());
    let bearer = ["-H", "Authorization: Bearer adm-9f2"];

    assert_eq!(remote.curl(&bearer, &url("/api/streams")).0, 200);
    assert_eq!(remote.curl(&bearer, &url("/metrics")).0, 200);
    assert_eq!(remote.curl(&[], &url("/api/streams")).0, 401);
    let wrong = ["-H", "Authorization: Bearer adm-9f3"];
    assert_eq!(remote.curl(&wrong, &url("/api/streams")).0, 401);
    // Authorized, and the stream does not exist.
    let kick = ["-X", "POST", "-H", "Authorization: Bearer adm-9f2"];
    assert_eq!(remote.curl(&kick, &url("/api/streams/live/x/kick")).0, 404);
    // Loopback is no exception once a token is set.
    assert_eq!(http_get(local(s.http), "/api/streams", &[]).0, 401);
}

#[test]
fn other_sites_cannot_drive_or_read_the_api() {
    let s = Arcly::start(&[]);
    let kick = "/api/streams/live/x/kick";
    // A page on another site posting through the operator's browser.
    let (code, body) = http_request(s.http, "POST", kick, &[("Origin", "https://evil.example")]);
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    let fetch_meta = [("Sec-Fetch-Site", "cross-site")];
    assert_eq!(http_request(s.http, "POST", kick, &fetch_meta).0, 403);
    assert_eq!(
        http_request(s.http, "DELETE", kick, &[("Origin", "null")]).0,
        403
    );
    // The same request from the server's own page, or from curl: allowed
    // (and the stream is not there).
    let own = format!("http://{}", s.http);
    assert_eq!(
        http_request(s.http, "POST", kick, &[("Origin", own.as_str())]).0,
        404
    );
    assert_eq!(http_request(s.http, "POST", kick, &[]).0, 404);

    // No CORS on the API: another site's page cannot read it.
    let answer = raw(
        s.http,
        &format!(
            "GET /api/streams HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n",
            s.http
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !answer
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{answer}"
    );
    let preflight = raw(
        s.http,
        &format!(
            "OPTIONS /api/streams/live/x/kick HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\n\
             Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
            s.http
        ),
    );
    assert!(
        !preflight
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{preflight}"
    );
    // Media still allows any origin.
    let media = raw(
        s.http,
        &format!(
            "OPTIONS /live/cam/index.m3u8 HTTP/1.1\r\nHost: {}\r\nOrigin: https://a.example\r\nConnection: close\r\n\r\n",
            s.http
        ),
    );
    assert!(
        media
            .to_ascii_lowercase()
            .contains("access-control-allow-origin: *"),
        "{media}"
    );

    // DNS rebinding: a name that resolves to 127.0.0.1 is not this server.
    let rebound = raw(
        s.http,
        &format!(
            "GET /api/streams HTTP/1.1\r\nHost: evil.example:{}\r\nConnection: close\r\n\r\n",
            s.http.port()
        ),
    );
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
}

#[test]
fn admin_listen_moves_the_api_off_the_public_port() {
    let s = Arcly::start(&["--admin-listen", "127.0.0.1:0"]);
    let admin = s.admin.expect("the banner names the admin listener");
    let (code, body) = http_get(s.http, "/api/streams", &[]);
    assert_eq!(code, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("admin.listen"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(http_get(admin, "/api/streams", &[]).0, 200);
    assert_eq!(http_get(admin, "/metrics", &[]).0, 200);
    // The public port keeps serving players and the page.
    assert_eq!(http_get(s.http, "/", &[]).0, 200);
    assert_eq!(http_get(s.http, "/healthz", &[]).0, 200);
}

/// Whole bodies go out with `Content-Length`, not chunked (simple HTTP
/// clients and caches need it).
#[test]
fn telemetry_and_api_answers_carry_content_length() {
    let s = Arcly::start(&[]);
    for path in ["/metrics", "/healthz", "/api/streams", "/"] {
        let answer = raw(
            s.http,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                s.http
            ),
        );
        let head = answer
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
        assert!(
            head.contains("content-length:") && !head.contains("transfer-encoding"),
            "{path}: {head}"
        );
    }
}
