//! Webhooks as SRS and nginx-rtmp operators know them: `on_publish` and
//! `on_play` are asked before a publish or play (a 2xx answer within the
//! timeout allows it; anything else, or no answer in time, denies it and the
//! answer's body becomes the reason), `on_unpublish` and `on_stop` are told
//! afterwards. Every call is a JSON `POST` over plain HTTP/1.1.
//!
//! The body is one object:
//! ```json
//! {"action":"on_publish","app":"live","stream":"cam","param":"token=x",
//!  "client_addr":"127.0.0.1:50000","protocol":"rtmp","server_id":"arcly"}
//! ```

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::time::Duration;

/// Most bytes of a webhook answer read (the rest is ignored).
pub const MAX_ANSWER_BYTES: usize = 4096;
/// Most characters of an answer used as the denial reason.
pub const MAX_REASON_CHARS: usize = 200;

/// A parsed `http://host:port/path` webhook address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookUrl {
    /// `host:port` to connect to.
    pub authority: String,
    /// Path and query sent in the request line.
    pub path: String,
}

impl HookUrl {
    /// Parse `url`; only `http://` is supported.
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?} must start with http:// (https is not supported)"))?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if auth.is_empty() || auth.contains('@') {
            return Err(format!("{url:?} has no usable host"));
        }
        let authority = if auth
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            auth.to_owned()
        } else {
            format!("{auth}:80")
        };
        Ok(Self {
            authority,
            path: path.to_owned(),
        })
    }
}

/// The JSON body of a webhook call.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HookEvent {
    /// `on_publish`, `on_play`, `on_unpublish`, `on_stop`.
    pub action: &'static str,
    /// The application.
    pub app: String,
    /// The stream name.
    pub stream: String,
    /// The query string the client sent, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// The client's address, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    /// The protocol (`rtmp`, `http-flv`, `hls`).
    pub protocol: &'static str,
    /// Always `arcly`.
    pub server_id: &'static str,
}

/// What a webhook answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAnswer {
    /// A 2xx.
    Allowed,
    /// Anything else, with a reason fit for the client.
    Denied(String),
}

/// What a client is told when the webhook could not be asked.
pub const UNAVAILABLE: &str = "authorization is unavailable, try again later";

/// POST `event` to `url` within `timeout`.
pub async fn call(url: &HookUrl, event: &HookEvent, timeout: Duration) -> HookAnswer {
    match tokio::time::timeout(timeout, post(url, event)).await {
        Ok(Ok((status, body))) if (200..300).contains(&status) => {
            let _ = body;
            HookAnswer::Allowed
        }
        Ok(Ok((status, body))) => {
            let text = answer_reason(&body);
            HookAnswer::Denied(if text.is_empty() {
                format!("{} refused (HTTP {status})", event.action)
            } else {
                format!("{} refused (HTTP {status}): {text}", event.action)
            })
        }
        // What went wrong on the way to the webhook is the operator's
        // business (it names internal addresses): the log has it, the client
        // is told only that authorization is unavailable.
        Ok(Err(e)) => {
            tracing::warn!(hook = event.action, error = %e, "webhook unreachable");
            HookAnswer::Denied(format!("{UNAVAILABLE} ({} unreachable)", event.action))
        }
        Err(_) => {
            tracing::warn!(
                hook = event.action,
                timeout_ms = timeout.as_millis() as u64,
                "webhook did not answer in time"
            );
            HookAnswer::Denied(format!("{UNAVAILABLE} ({} did not answer)", event.action))
        }
    }
}

/// The reason in a webhook answer body (untrusted): a JSON object's `reason` or `message`
/// field, or the text itself, trimmed and bounded.
pub fn answer_reason(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => v
            .get("reason")
            .or_else(|| v.get("message"))
            .and_then(|r| r.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| text.into_owned()),
        Err(_) => text.into_owned(),
    };
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_REASON_CHARS)
        .collect()
}

async fn post(url: &HookUrl, event: &HookEvent) -> Result<(u16, Bytes), String> {
    let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(&url.authority)
        .await
        .map_err(|e| format!("connect {}: {e}", url.authority))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    let conn = tokio::spawn(conn);
    let req = Request::post(url.path.as_str())
        .header(hyper::header::HOST, url.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "arcly")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = match Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    conn.abort();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = HookUrl::parse("http://127.0.0.1:9/hooks?x=1").unwrap();
        assert_eq!(u.authority, "127.0.0.1:9");
        assert_eq!(u.path, "/hooks?x=1");
        assert_eq!(
            HookUrl::parse("http://example").unwrap().authority,
            "example:80"
        );
        assert!(HookUrl::parse("https://x/").is_err());
        assert!(HookUrl::parse("http:///x").is_err());
    }

    #[test]
    fn reasons() {
        assert_eq!(answer_reason(br#"{"reason":"banned"}"#), "banned");
        assert_eq!(answer_reason(b"  no\n way "), "no way");
        assert_eq!(answer_reason(&[b'a'; 1000]).len(), MAX_REASON_CHARS);
    }

    fn event(action: &'static str) -> HookEvent {
        HookEvent {
            action,
            app: "live".into(),
            stream: "a".into(),
            param: None,
            client_addr: None,
            protocol: "rtmp",
            server_id: "arcly",
        }
    }

    #[tokio::test]
    async fn a_silent_hook_denies_in_time() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = HookUrl::parse(&format!("http://{}/", l.local_addr().unwrap())).unwrap();
        let ev = event("on_publish");
        let t = std::time::Instant::now();
        let a = call(&url, &ev, Duration::from_millis(200)).await;
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(matches!(a, HookAnswer::Denied(r) if r.contains("did not answer")));
        drop(l);
    }

    #[tokio::test]
    async fn an_unreachable_hook_does_not_tell_the_client_where_it_is() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l); // nothing listens there now
        let url = HookUrl::parse(&format!("http://{addr}/hook")).unwrap();
        let ev = event("on_play");
        let HookAnswer::Denied(r) = call(&url, &ev, Duration::from_secs(5)).await else {
            panic!("an unreachable hook allowed");
        };
        assert!(r.starts_with(UNAVAILABLE), "{r}");
        assert!(
            !r.contains("127.0.0.1") && !r.contains(&addr.port().to_string()),
            "{r}"
        );
        assert!(!r.to_lowercase().contains("refused"), "{r}");
    }
}
