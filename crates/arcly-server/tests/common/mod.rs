//! Helpers for driving the built `arcly` binary and the external tools.
#![allow(dead_code)]

use arcly_core::testing::tools;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `arcly` with its bound addresses and captured logs.
pub struct Arcly {
    pub child: Child,
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
    /// The admin listener, when `--admin-listen` was given.
    pub admin: Option<SocketAddr>,
    pub log: Arc<Mutex<String>>,
}

impl Arcly {
    /// Start the binary on loopback port 0 with `args`, wait for its banner.
    pub fn start(args: &[&str]) -> Self {
        Self::start_on("127.0.0.1:0", "127.0.0.1:0", args)
    }

    /// Start the binary with RTMP and HTTP on the given addresses.
    pub fn start_on(rtmp_listen: &str, http_listen: &str, args: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_arcly"));
        cmd.args([
            "--rtmp-listen",
            rtmp_listen,
            "--http-listen",
            http_listen,
            "--log-level",
            "info",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start arcly");
        let log = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let l2 = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                l2.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let l3 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l3.lock().unwrap().push_str(&format!("[stdout] {line}\n"));
                let _ = tx.send(line);
            }
        });
        let (mut rtmp, mut http, mut admin) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        // The listening lines end with a blank line.
        let mut blank = false;
        while rtmp.is_none() || http.is_none() || !blank {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("arcly did not start; log:\n{}", log.lock().unwrap())
            });
            if let Some(a) = line.strip_prefix("arcly: rtmp listening on ") {
                rtmp = Some(a.trim().parse().unwrap());
            }
            if let Some(a) = line.strip_prefix("arcly: http listening on ") {
                http = Some(a.trim().parse().unwrap());
            }
            if let Some(a) = line.strip_prefix("arcly: admin listening on ") {
                admin = Some(a.trim().parse().unwrap());
            }
            blank = http.is_some() && line.trim().is_empty();
        }
        Self {
            child,
            rtmp: rtmp.unwrap(),
            http: http.unwrap(),
            admin,
            log,
        }
    }

    pub fn rtmp_url(&self, app_key: &str) -> String {
        format!("rtmp://{}/{app_key}", self.rtmp)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Send SIGTERM and wait for the exit (bounded).
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        wait_child(&mut self.child, within)
            .unwrap_or_else(|| panic!("arcly did not exit within {within:?}; log:\n{}", self.log()))
    }

    /// Poll `/api/streams` until `app/key` is listed (or not), bounded.
    pub fn wait_stream(
        &self,
        app: &str,
        key: &str,
        live: bool,
        within: Duration,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let (_, body) = http_get(self.http, "/api/streams", &[]);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let found = v["streams"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| {
                    s["app"] == app && s["key"] == key && (!live || s["video_codec"].is_string())
                })
                .cloned();
            if found.is_some() == live {
                return found.unwrap_or_default();
            }
            assert!(
                Instant::now() < deadline,
                "stream {app}/{key} live={live} not reached; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Arcly {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_child(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal HTTP/1.0 GET: (status, body).
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<u8>) {
    http_request(addr, "GET", path, headers)
}

pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let head_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http response head");
    let head = String::from_utf8_lossy(&out[..head_end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, out[head_end + 4..].to_vec())
}

/// A publishing ffmpeg (`-c copy -f flv`), killed on drop.
pub struct Proc(pub Child, pub Arc<Mutex<String>>);

impl Proc {
    pub fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tool");
        let log = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().unwrap();
        let l2 = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            l2.lock().unwrap().push_str(&s);
        });
        Self(child, log)
    }

    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        wait_child(&mut self.0, within).unwrap_or_else(|| {
            let _ = self.0.kill();
            panic!(
                "tool did not finish in {within:?}: {}",
                self.1.lock().unwrap()
            )
        })
    }

    pub fn stderr(&self) -> String {
        // Give the reader thread a moment after exit.
        std::thread::sleep(Duration::from_millis(50));
        self.1.lock().unwrap().clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `ffmpeg [-re] -i fixture -c copy -f flv url`.
pub fn publish(ffmpeg: &Path, fixture: &str, url: &str, realtime: bool, looped: bool) -> Proc {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-v", "error"]);
    if realtime {
        cmd.arg("-re");
    }
    if looped {
        cmd.args(["-stream_loop", "-1"]);
    }
    cmd.arg("-i")
        .arg(tools::fixture(fixture))
        .args(["-c", "copy", "-f", "flv", url]);
    Proc::spawn(cmd)
}

/// What FFmpeg 9 prints when an HTTP chunked body ends (it reports the end
/// of a live HTTP-FLV stream as EIO, where a Content-Length body ends
/// cleanly): not an error of the stream.
const END_OF_HTTP_STREAM: &[&str] = &[
    "Error during demuxing: Input/output error",
    "Task finished with error code: -5",
    "Terminating thread with return code -5",
];

/// framemd5 of `input` through `ffmpeg`, bounded by `within`; extra input
/// options first, output options after. Fails on any error ffmpeg prints
/// (decode errors included), except the end-of-stream report above.
pub fn framemd5_timeout(
    ffmpeg: &Path,
    input_args: &[&str],
    input: &str,
    output_args: &[&str],
    within: Duration,
) -> Vec<String> {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-v", "error"])
        .args(input_args)
        .args(["-i", input])
        .args(output_args)
        .args(["-f", "framemd5", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn ffmpeg");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_child(&mut child, within);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = t_out.join().unwrap();
    let stderr = t_err.join().unwrap();
    let status = status.unwrap_or_else(|| panic!("ffmpeg on {input} timed out: {stderr}"));
    assert!(
        status.success(),
        "ffmpeg on {input} failed ({status}): {stderr}"
    );
    stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Video frame hashes (decoded) of a fixture.
pub fn source_video_md5(ffmpeg: &Path, fixture: &str) -> Vec<String> {
    let lines = tools::framemd5(
        ffmpeg,
        &[],
        tools::fixture(fixture).to_str().unwrap(),
        &["-map", "0:v"],
    );
    tools::md5_column(&lines, 0)
}

/// Assert `got` is the whole source, or, for players that joined late, a
/// run of it starting at a keyframe and reaching the end.
pub fn assert_same_frames(what: &str, src: &[String], got: &[String], exact: bool) {
    assert!(!got.is_empty(), "{what}: no frame decoded");
    if exact {
        assert_eq!(src.len(), got.len(), "{what}: frame count differs");
        assert!(src == got, "{what}: frame hashes differ");
    } else {
        let start = src.len().saturating_sub(got.len());
        assert!(
            src[start..] == *got,
            "{what}: the {} frames received are not the source's last {} frames",
            got.len(),
            got.len()
        );
    }
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("arcly-e2e-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A second host for tests: a network namespace joined to this one by a
/// veth pair, so a server here sees its clients come from a non-loopback
/// address. Needs root (CI and the developers' machines run as root).
/// Removed on drop.
pub struct RemoteHost {
    ns: String,
    /// This machine's address on the pair (servers listen here).
    pub host_ip: std::net::Ipv4Addr,
    /// The namespace's address (the remote client's).
    pub peer_ip: std::net::Ipv4Addr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl RemoteHost {
    /// Create the namespace and the pair (addresses in 10.231.N.0/30, a
    /// subnet that exists only between this machine and its namespace).
    pub fn new(tag: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = (std::process::id() % 60) * 4
            + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4;
        let ns = format!("arcly-{tag}-{n}");
        let (h, p) = (format!("vah{n}"), format!("van{n}"));
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = Command::new("ip").args(["link", "del", &h]).output();
        let (a, b) = ((n / 64) as u8, ((n % 64) * 4) as u8);
        let host_ip = std::net::Ipv4Addr::new(10, 231, a, b + 1);
        let peer_ip = std::net::Ipv4Addr::new(10, 231, a, b + 2);
        ip(&["netns", "add", &ns]);
        ip(&["link", "add", &h, "type", "veth", "peer", "name", &p]);
        ip(&["link", "set", &p, "netns", &ns]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &h]);
        ip(&["link", "set", &h, "up"]);
        ip(&[
            "netns",
            "exec",
            &ns,
            "ip",
            "addr",
            "add",
            &format!("{peer_ip}/30"),
            "dev",
            &p,
        ]);
        ip(&["netns", "exec", &ns, "ip", "link", "set", &p, "up"]);
        ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
        Self {
            ns,
            host_ip,
            peer_ip,
        }
    }

    /// `curl` from the namespace: (status, body). `args` go before the URL.
    pub fn curl(&self, args: &[&str], url: &str) -> (u16, String) {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "curl",
                "-s",
                "-m",
                "20",
                "-w",
                "\n%{http_code}",
            ])
            .args(args)
            .arg(url)
            .output()
            .expect("run curl in the namespace");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// Run `cmd args` inside the namespace.
    pub fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, cmd]);
        c
    }
}

impl Drop for RemoteHost {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and so the pair.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// The resident set size of process `pid`, in KiB (0 if unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Poll `path` until it answers 200 with a media playlist naming segments
/// (within `within`); the playlist.
pub fn wait_playlist(s: &Arcly, path: &str, headers: &[(&str, &str)], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (code, body) = http_get(s.http, path, headers);
        let text = String::from_utf8_lossy(&body).to_string();
        if code == 200 && text.contains("#EXTINF") {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: {code} {text}\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
