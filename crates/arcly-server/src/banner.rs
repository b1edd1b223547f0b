//! The start-up message: where to publish and where to play, in plain words.

use crate::config::Settings;
use std::net::SocketAddr;

fn display_host(bound: SocketAddr, public: &str) -> String {
    if bound.ip().is_unspecified() {
        public.to_owned()
    } else if bound.is_ipv6() {
        format!("[{}]", bound.ip())
    } else {
        bound.ip().to_string()
    }
}

/// The banner for a server bound to `rtmp` (unless RTMP is off) and `http`.
pub fn banner(
    s: &Settings,
    rtmp: Option<SocketAddr>,
    http_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    rtmps: Option<SocketAddr>,
    https: Option<SocketAddr>,
) -> String {
    let http_host = display_host(http_addr, &s.public_host);
    let http = format!("http://{http_host}:{}", http_addr.port());
    let app = &s.apps[0];
    let mut o = String::new();
    o.push_str(&format!(
        "arcly {} is running.\n",
        env!("CARGO_PKG_VERSION")
    ));
    if let Some(r) = rtmp {
        o.push_str(&format!("arcly: rtmp listening on {r}\n"));
    }
    o.push_str(&format!("arcly: http listening on {http_addr}\n"));
    if let Some(a) = admin_addr {
        o.push_str(&format!("arcly: admin listening on {a}\n"));
    }
    if let Some(a) = rtmps {
        o.push_str(&format!("arcly: rtmps listening on {a}\n"));
    }
    if let Some(a) = https {
        o.push_str(&format!("arcly: https listening on {a}\n"));
    }
    o.push('\n');
    let token_hint = |t: &Option<String>| {
        if t.is_some() {
            "?token=YOUR_TOKEN"
        } else {
            ""
        }
    };
    match rtmp {
        Some(r) => {
            let rtmp = format!("rtmp://{}:{}", display_host(r, &s.public_host), r.port());
            o.push_str("Publish with RTMP:\n");
            o.push_str(&format!(
                "  URL:  {rtmp}/{}/KEY{}   (KEY is any stream name you choose)\n",
                app.name,
                token_hint(&app.publish_token)
            ));
            o.push_str("  In OBS (Settings > Stream, Service: Custom...):\n");
            o.push_str(&format!("    Server:      {rtmp}/{}\n", app.name));
            o.push_str(&format!(
                "    Stream Key:  KEY{}\n",
                token_hint(&app.publish_token)
            ));
            o.push_str(&format!(
                "  With ffmpeg:  ffmpeg -re -i input.mp4 -c copy -f flv {rtmp}/{}/KEY{}\n\n",
                app.name,
                token_hint(&app.publish_token)
            ));
            o.push_str("Play:\n");
            o.push_str(&format!(
                "  RTMP:      {rtmp}/{}/KEY{}\n",
                app.name,
                token_hint(&app.play_token)
            ));
        }
        None if rtmps.is_some() => o.push_str("RTMP is off: publish over RTMPS (below).\nPlay:\n"),
        None => o.push_str("RTMP is off: nothing can publish.\nPlay:\n"),
    }
    let play_q = token_hint(&app.play_token);
    if s.http_flv {
        o.push_str(&format!(
            "  HTTP-FLV:  {http}/{}/KEY.flv{play_q}\n",
            app.name
        ));
    }
    if s.hls.enabled {
        o.push_str(&format!(
            "  HLS:       {http}/{}/KEY/index.m3u8{play_q}{}\n",
            app.name,
            if s.hls.low_latency {
                "   (low-latency HLS on)"
            } else {
                ""
            }
        ));
    }
    o.push_str(&format!(
        "  Web page:  {http}/   (every live stream, with a player)\n"
    ));
    if s.apps.len() > 1 {
        let others: Vec<&str> = s.apps.iter().skip(1).map(|a| a.name.as_str()).collect();
        o.push_str(&format!(
            "  Other apps: {} (replace /{}/ in the URLs)\n",
            others.join(", "),
            app.name
        ));
    }
    o.push_str(&tls_lines(s, rtmps, https));
    o.push_str(&admin_line(s, &http, admin_addr));
    if let Some(dir) = &s.record.dir {
        let rec: Vec<String> = s
            .apps
            .iter()
            .map(|a| format!("{}={:?}", a.name, a.record).to_lowercase())
            .collect();
        o.push_str(&format!(
            "Recording to {} ({})\n",
            dir.display(),
            rec.join(", ")
        ));
    }
    o.push_str("Stop with Ctrl+C.\n");
    o
}

/// The TLS listeners' URLs, when any is on.
fn tls_lines(s: &Settings, rtmps: Option<SocketAddr>, https: Option<SocketAddr>) -> String {
    let app = &s.apps[0].name;
    let mut o = String::new();
    if let Some(a) = rtmps {
        let h = display_host(a, &s.public_host);
        o.push_str(&format!(
            "  RTMPS:     rtmps://{h}:{}/{app}/KEY   (publish and play over TLS)\n",
            a.port()
        ));
    }
    if let Some(a) = https {
        let h = display_host(a, &s.public_host);
        o.push_str(&format!(
            "  HTTPS:     https://{h}:{}/   (everything of the HTTP port, over TLS)\n",
            a.port()
        ));
    }
    o
}

/// Where the admin API and the metrics are, and who may use them.
fn admin_line(s: &Settings, http: &str, admin_addr: Option<SocketAddr>) -> String {
    let api = match admin_addr {
        Some(a) => format!("http://{}:{}", display_host(a, &s.public_host), a.port()),
        None => http.to_owned(),
    };
    let who = if s.admin_token.is_some() {
        "bearer token required"
    } else {
        "this machine only; set --admin-token to open it to others"
    };
    format!("\nAdmin API: {api}/api/streams   Metrics: {api}/metrics   ({who})\n")
}
