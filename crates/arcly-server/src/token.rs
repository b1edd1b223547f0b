//! `arcly token`: issue an HS256 [JWT](crate::jwt) from the configured
//! secret and print it with ready URLs for each protocol.
//!
//! ```
//! use arcly_server::config::{Cli, Command, Settings};
//! use clap::Parser;
//! let secret = "0123456789abcdef0123456789abcdef";
//! let cli = Cli::parse_from([
//!     "arcly", "--jwt-secret", secret, "--public-host", "tv.example",
//!     "token", "--stream", "cam", "--action", "publish,play", "--ttl", "1h",
//! ]);
//! let Some(Command::Token(args)) = &cli.command else { unreachable!() };
//! let out = arcly_server::token::run(&Settings::resolve(&cli).unwrap(), args).unwrap();
//! let token = out.lines().next().unwrap();
//! assert!(arcly_server::jwt::looks_like_jwt(token));
//! assert!(out.contains(&format!("rtmp://tv.example:1935/live/cam?token={token}")));
//! assert!(out.contains(&format!("http://tv.example:8080/live/cam/index.m3u8?token={token}")));
//! ```

use crate::config::{Settings, TokenArgs};
use crate::jwt::{issue_hs256, matches, now_secs, parse_ttl};
use std::net::SocketAddr;

/// Where `addr` is reached from outside: the public host for a wildcard
/// bind, else the address itself.
fn host_port(addr: SocketAddr, public: &str) -> String {
    if addr.ip().is_unspecified() {
        format!("{public}:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// The token (first line) and the URLs that use it, or why none can be issued.
pub fn run(s: &Settings, args: &TokenArgs) -> Result<String, String> {
    let secret = s.jwt.secret.as_ref().ok_or(
        "no JWT secret: give --jwt-secret, set ARCLY_JWT_SECRET or auth.jwt_secret in the config file",
    )?;
    let app = match &args.app {
        Some(a) => a.clone(),
        None => s.apps.first().map(|a| a.name.clone()).unwrap_or_default(),
    };
    if !app.contains('*') && s.app(&app).is_none() {
        return Err(format!(
            "app {app:?} is not configured (apps: {})",
            s.apps
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let stream = &args.stream;
    if stream.is_empty()
        || stream.contains(['/', '?', '&', '#', '%'])
        || stream.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "stream {stream:?} must be a stream name or a pattern such as * or cam*"
        ));
    }
    let ttl = parse_ttl(&args.ttl)?;
    let mut actions: Vec<_> = args.action.iter().map(|a| a.to_auth()).collect();
    actions.dedup();
    let token = issue_hs256(secret.expose().as_bytes(), &app, stream, &actions, ttl)?;

    // A pattern is shown with a placeholder the user fills in.
    let url_app = if app.contains('*') {
        s.apps
            .iter()
            .find(|a| matches(&app, &a.name))
            .map_or_else(|| "APP".to_owned(), |a| a.name.clone())
    } else {
        app.clone()
    };
    let url_stream = stream.replace('*', "NAME");
    let path = format!("{url_app}/{url_stream}");
    let publish = actions.contains(&arcly_core::auth::AuthAction::Publish);
    let play = actions.contains(&arcly_core::auth::AuthAction::Play);
    let mut o = format!("{token}\n\n");
    o.push_str(&format!(
        "HS256 token for app {app:?}, stream {stream:?}, action {}; expires at {} (in {}s).\n",
        actions
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(","),
        now_secs().saturating_add(ttl.as_secs()),
        ttl.as_secs()
    ));
    if stream.contains('*') {
        o.push_str(&format!(
            "NAME below stands for any name the pattern {stream:?} matches.\n"
        ));
    }
    o.push('\n');
    let rtmp = s
        .rtmp_listen
        .map(|a| format!("rtmp://{}", host_port(a, &s.public_host)));
    let http = format!("http://{}", host_port(s.http_listen, &s.public_host));
    if publish {
        match &rtmp {
            Some(r) => o.push_str(&format!(
                "Publish (RTMP):  {r}/{path}?token={token}\n  OBS: Server {r}/{url_app}, Stream Key {url_stream}?token={token}\n"
            )),
            None => o.push_str("Publish: RTMP is off.\n"),
        }
    }
    if play {
        o.push_str("Play:\n");
        if let Some(r) = &rtmp {
            o.push_str(&format!("  RTMP:      {r}/{path}?token={token}\n"));
        }
        if s.http_flv {
            o.push_str(&format!("  HTTP-FLV:  {http}/{path}.flv?token={token}\n"));
        }
        if s.hls.enabled {
            o.push_str(&format!(
                "  HLS:       {http}/{path}/index.m3u8?token={token}\n"
            ));
            o.push_str(&format!(
                "  HLS with a header:  curl -H 'Authorization: Bearer {token}' {http}/{path}/index.m3u8\n"
            ));
        }
    }
    Ok(o)
}
