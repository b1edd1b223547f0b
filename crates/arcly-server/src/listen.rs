//! What can fail comes first: the recording directory and every listener
//! are checked and bound before anything is served.

use crate::config::Settings;
use crate::error::StartError;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use tokio::net::TcpListener;

/// The bound listeners.
#[derive(Debug)]
pub struct Listeners {
    /// RTMP, unless it is off.
    pub rtmp: Option<TcpListener>,
    /// HTTP.
    pub http: TcpListener,
    /// The admin API's own, when `admin.listen` is set.
    pub admin: Option<TcpListener>,
    /// RTMPS, when `rtmps.listen` is set.
    pub rtmps: Option<TcpListener>,
    /// HTTPS, when `https.listen` is set.
    pub https: Option<TcpListener>,
}

/// Check the recording directory, then bind RTMP and HTTP.
pub async fn bind(s: &Settings) -> Result<Listeners, StartError> {
    if let Some(dir) = &s.record.dir {
        check_record_dir(dir)?;
    }
    let rtmp = match s.rtmp_listen {
        Some(addr) => Some(bind_one("RTMP", addr).await?),
        None => None,
    };
    let http = bind_one("HTTP", s.http_listen).await?;
    let admin = match s.admin_listen {
        Some(addr) => Some(bind_one("the admin API", addr).await?),
        None => None,
    };
    let rtmps = match s.rtmps_listen {
        Some(addr) => Some(bind_one("RTMPS", addr).await?),
        None => None,
    };
    let https = match s.https_listen {
        Some(addr) => Some(bind_one("HTTPS", addr).await?),
        None => None,
    };
    Ok(Listeners {
        rtmp,
        http,
        admin,
        rtmps,
        https,
    })
}

async fn bind_one(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

/// Refuse a recording directory that is missing, not a directory or not
/// writable (checked by creating and removing a probe file).
pub fn check_record_dir(dir: &Path) -> Result<(), StartError> {
    let err = |reason: String| StartError::RecordDir {
        dir: dir.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => err("does not exist (create it first)".into()),
        _ => err(format!("cannot be read: {e}")),
    })?;
    if !meta.is_dir() {
        return Err(err("is not a directory".into()));
    }
    let probe = dir.join(format!(".arcly-write-test-{}", std::process::id()));
    let r = std::fs::File::create(&probe).and_then(|mut f| f.write_all(b"ok"));
    let _ = std::fs::remove_file(&probe);
    r.map_err(|e| err(format!("is not writable: {e}")))
}
