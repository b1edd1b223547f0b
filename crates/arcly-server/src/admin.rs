//! Who may use the admin API and `/metrics` (which name every stream key):
//! the [`AdminGuard`].
//!
//! - With no admin token configured, only this machine may: the peer must
//!   be a loopback address **and** the `Host` it asked for must name this
//!   machine (`localhost`, a loopback address or the configured public
//!   host), so a web page that rebinds its own name to 127.0.0.1 (DNS
//!   rebinding) is refused too. Everyone else gets 403 with how to open it
//!   up. This is MediaMTX's default, and what an operator trying the server
//!   on a public host expects.
//! - With a token (`admin.token`), every caller, local or remote, sends
//!   `Authorization: Bearer TOKEN`; it is compared in constant time
//!   (`subtle`). Wrong or missing: 401.
//! - A request that changes state (anything but `GET`, `HEAD`, `OPTIONS`)
//!   must not come from another site's page: a `Sec-Fetch-Site` other than
//!   `same-origin` / `none`, or an `Origin` whose host is not the `Host`
//!   asked for, is refused with 403 (cross-site request forgery: the
//!   operator's own browser is on loopback).
//!
//! The API sends no CORS headers, so no other site's page can read it.

use arc_swap::ArcSwapOption;
use arcly_http::{full, Body, ConnInfo};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::net::IpAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Longest bearer token compared (a longer header is refused unread).
pub const MAX_TOKEN_LEN: usize = 4096;

/// The admin access rule (see the [module docs](self)). Cheap to clone;
/// clones share the token, which [`AdminGuard::set_token`] replaces live.
#[derive(Clone, Default)]
pub struct AdminGuard {
    token: Arc<ArcSwapOption<String>>,
    public_host: Option<Arc<str>>,
}

impl std::fmt::Debug for AdminGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminGuard")
            .field("token", &self.token.load().as_ref().map(|_| "…"))
            .field("public_host", &self.public_host)
            .finish()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A remote peer, and no token is configured.
    RemoteWithoutToken,
    /// Loopback peer, but the `Host` does not name this machine.
    ForeignHost,
    /// The bearer token is missing or wrong.
    BadToken,
    /// A state-changing request from another site's page.
    CrossSite,
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadToken => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        }
    }

    /// What the caller is told.
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::RemoteWithoutToken => {
                "the admin API and /metrics answer only on this machine: to use them \
                 from another host, set an admin token (admin.token, --admin-token or \
                 ARCLY_ADMIN_TOKEN) and send \"Authorization: Bearer TOKEN\""
            }
            Refusal::ForeignHost => {
                "refused: the Host header does not name this server (use localhost or \
                 the server's address)"
            }
            Refusal::BadToken => "admin token required: send \"Authorization: Bearer TOKEN\"",
            Refusal::CrossSite => "cross-site request refused",
        }
    }
}

impl AdminGuard {
    /// The rule for `token` (`None`: this machine only); `public_host` is a
    /// further name of this machine accepted in `Host`.
    pub fn new(token: Option<&str>, public_host: Option<&str>) -> Self {
        Self {
            token: Arc::new(ArcSwapOption::from(token.map(|t| Arc::new(t.to_owned())))),
            public_host: public_host.map(Arc::from),
        }
    }

    /// Require `token` from now on (`None`: this machine only), for this
    /// guard and every clone of it (a configuration reload).
    pub fn set_token(&self, token: Option<&str>) {
        self.token.store(token.map(|t| Arc::new(t.to_owned())));
    }

    /// Whether a token is configured.
    pub fn has_token(&self) -> bool {
        self.token.load().is_some()
    }

    /// Check `req` (its peer is in the [`ConnInfo`] the host put in it).
    pub fn check<B>(&self, req: &Request<B>) -> Result<(), Refusal> {
        let peer = ConnInfo::peer_of(req).ip().to_canonical();
        match &*self.token.load() {
            Some(want) => {
                let got = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .map(HeaderValue::as_bytes)
                    .filter(|v| v.len() <= MAX_TOKEN_LEN + 7)
                    .and_then(|v| v.strip_prefix(b"Bearer "))
                    .unwrap_or(b"");
                if !bool::from(got.ct_eq(want.as_bytes())) {
                    return Err(Refusal::BadToken);
                }
            }
            None => {
                if !peer.is_loopback() {
                    return Err(Refusal::RemoteWithoutToken);
                }
                if !self.host_is_local(req) {
                    return Err(Refusal::ForeignHost);
                }
            }
        }
        if changes_state(req.method()) && cross_site(req) {
            return Err(Refusal::CrossSite);
        }
        Ok(())
    }

    /// The refusal as a response.
    pub fn refuse(r: &Refusal) -> Response<Body> {
        let body = format!("{{\"error\": {:?}}}\n", r.message());
        let mut resp = Response::new(full(Bytes::from(body)));
        *resp.status_mut() = r.status();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if *r == Refusal::BadToken {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }

    /// Whether the `Host` of `req` names this machine (no `Host`, as from a
    /// raw HTTP/1.0 client, is accepted: browsers always send one).
    fn host_is_local<B>(&self, req: &Request<B>) -> bool {
        let Some(host) = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
        else {
            return true;
        };
        let name = host_name(host);
        if name.eq_ignore_ascii_case("localhost")
            || name.to_ascii_lowercase().ends_with(".localhost")
        {
            return true;
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            return ip.to_canonical().is_loopback();
        }
        self.public_host
            .as_deref()
            .is_some_and(|p| host_name(p).eq_ignore_ascii_case(name))
    }
}

/// Methods that change state.
fn changes_state(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The host part of a `Host` value or an authority (`[::1]:80` → `::1`).
fn host_name(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            authority
        }
    })
}

/// Whether a browser says `req` comes from another site's page
/// (Fetch Metadata `Sec-Fetch-Site`, else `Origin` against `Host`).
fn cross_site<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return true;
        }
    }
    let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(authority) = origin.split_once("://").map(|(_, a)| a) else {
        // "null" (a sandboxed or file: page) or garbage.
        return true;
    };
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    !authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn req(method: &str, peer: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().method(method).uri("/api/streams");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut r = b.body(()).unwrap();
        r.extensions_mut().insert(ConnInfo {
            peer: peer.parse::<SocketAddr>().unwrap(),
            shutdown: Default::default(),
        });
        r
    }

    #[test]
    fn without_a_token_only_this_machine() {
        let g = AdminGuard::new(None, Some("media.example"));
        let local = [("host", "127.0.0.1:8080")];
        assert_eq!(g.check(&req("GET", "127.0.0.1:5000", &local)), Ok(()));
        assert_eq!(
            g.check(&req("GET", "[::1]:5000", &[("host", "[::1]:8080")])),
            Ok(())
        );
        assert_eq!(
            g.check(&req(
                "GET",
                "[::ffff:127.0.0.1]:5000",
                &[("host", "localhost:8080")]
            )),
            Ok(())
        );
        assert_eq!(
            g.check(&req("GET", "127.0.0.1:5000", &[("host", "media.example")])),
            Ok(())
        );
        assert_eq!(
            g.check(&req("GET", "10.1.2.3:5000", &local)),
            Err(Refusal::RemoteWithoutToken)
        );
        assert_eq!(
            g.check(&req(
                "GET",
                "127.0.0.1:5000",
                &[("host", "evil.example:8080")]
            )),
            Err(Refusal::ForeignHost),
            "DNS rebinding"
        );
    }

    #[test]
    fn with_a_token_everyone_sends_it() {
        let g = AdminGuard::new(Some("s3cret"), None);
        let ok = [("authorization", "Bearer s3cret")];
        assert_eq!(g.check(&req("GET", "10.1.2.3:5000", &ok)), Ok(()));
        for bad in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "bearer s3cret",
            "s3cret",
            "",
        ] {
            assert_eq!(
                g.check(&req("GET", "127.0.0.1:5000", &[("authorization", bad)])),
                Err(Refusal::BadToken),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_new_token_applies_to_every_clone() {
        let g = AdminGuard::new(Some("old"), None);
        let clone = g.clone();
        g.set_token(Some("new"));
        let with = |t: &str| {
            clone.check(&req(
                "GET",
                "10.1.2.3:5000",
                &[("authorization", &format!("Bearer {t}"))],
            ))
        };
        assert_eq!(with("old"), Err(Refusal::BadToken));
        assert_eq!(with("new"), Ok(()));
        g.set_token(None);
        assert_eq!(with("new"), Err(Refusal::RemoteWithoutToken));
    }

    #[test]
    fn state_changes_from_other_sites_are_refused() {
        let g = AdminGuard::new(None, None);
        let h = |extra: &[(&'static str, &'static str)]| {
            let mut v = vec![("host", "127.0.0.1:8080")];
            v.extend_from_slice(extra);
            v
        };
        let post = |hs: &[(&str, &str)]| g.check(&req("POST", "127.0.0.1:1", hs));
        assert_eq!(post(&h(&[])), Ok(()), "curl sends no Origin");
        assert_eq!(post(&h(&[("origin", "http://127.0.0.1:8080")])), Ok(()));
        assert_eq!(post(&h(&[("sec-fetch-site", "same-origin")])), Ok(()));
        assert_eq!(
            post(&h(&[("origin", "https://evil.example")])),
            Err(Refusal::CrossSite)
        );
        assert_eq!(post(&h(&[("origin", "null")])), Err(Refusal::CrossSite));
        assert_eq!(
            post(&h(&[("sec-fetch-site", "cross-site")])),
            Err(Refusal::CrossSite)
        );
        assert_eq!(
            post(&h(&[("sec-fetch-site", "same-site")])),
            Err(Refusal::CrossSite)
        );
        // Reading is left to the browser's same-origin policy (no CORS).
        assert_eq!(
            g.check(&req(
                "GET",
                "127.0.0.1:1",
                &h(&[("origin", "https://evil.example")])
            )),
            Ok(())
        );
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("a.example:80"), "a.example");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("a.example"), "a.example");
        assert_eq!(host_name("[::1]"), "::1");
    }
}
