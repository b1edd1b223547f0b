//! RTMPS and HTTPS against the built `arcly` binary with FFmpeg 9, and live
//! reloads (SIGHUP, `POST /api/reload`) that rotate the certificate and
//! the tokens while a player keeps playing.
//!
//! Certificates are generated here (rcgen) for 127.0.0.1 and FFmpeg
//! verifies them: they go into a CA directory hashed with `openssl rehash`
//! and named by `SSL_CERT_DIR`, which reaches the nested opens of the HLS
//! demuxer too (`-ca_file` / `-tls_verify` do not).

mod common;

use arcly_core::testing::tools;
use common::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A CA directory FFmpeg trusts, and certificates written into it.
struct Pki {
    dir: PathBuf,
    ca: PathBuf,
}

impl Pki {
    fn new(tag: &str) -> Self {
        let dir = temp_dir(&format!("tls-{tag}"));
        let ca = dir.join("ca");
        std::fs::create_dir_all(&ca).unwrap();
        Self { dir, ca }
    }

    /// A self-signed certificate for 127.0.0.1 with common name `cn`,
    /// trusted from now on; written to `cert.pem` / `key.pem` (replacing
    /// what is there, as an operator rotating in place would). Returns the
    /// certificate's PEM.
    fn issue(&self, cn: &str) -> String {
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let pem = cert.pem();
        std::fs::write(self.ca.join(format!("{cn}.pem")), &pem).unwrap();
        let st = Command::new("openssl")
            .arg("rehash")
            .arg(&self.ca)
            .status()
            .expect("openssl rehash");
        assert!(st.success());
        std::fs::write(self.cert(), &pem).unwrap();
        std::fs::write(self.key(), key.serialize_pem()).unwrap();
        pem
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// FFmpeg 9 with this CA trusted.
    fn ffmpeg(&self) -> Command {
        let mut c = Command::new(tools::ffmpeg9());
        c.env("SSL_CERT_DIR", &self.ca)
            .args(["-hide_banner", "-nostdin", "-v", "error"]);
        c
    }

    /// The flags that turn RTMPS and HTTPS on with this certificate.
    fn flags(&self) -> Vec<String> {
        vec![
            "--rtmps-listen".into(),
            "127.0.0.1:0".into(),
            "--https-listen".into(),
            "127.0.0.1:0".into(),
            "--tls-cert".into(),
            self.cert().to_string_lossy().into(),
            "--tls-key".into(),
            self.key().to_string_lossy().into(),
        ]
    }
}

/// The RTMPS and HTTPS addresses from the banner.
fn tls_addrs(s: &Arcly) -> (SocketAddr, SocketAddr) {
    let log = s.log();
    let find = |prefix: &str| -> SocketAddr {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("[stdout] arcly: {prefix} listening on ")))
            .unwrap_or_else(|| panic!("no {prefix} line in the banner:\n{log}"))
            .trim()
            .parse()
            .unwrap()
    };
    (find("rtmps"), find("https"))
}

/// `ffmpeg … -i input … -f framemd5 -` of the video, bounded; fails on any
/// error FFmpeg prints.
fn video_md5(mut cmd: Command, input: &str, within: Duration) -> Vec<String> {
    cmd.args(["-i", input, "-map", "0:v", "-f", "framemd5", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn ffmpeg");
    let out = wait_output(child, within, input);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    tools::md5_column(&lines, 0)
}

fn wait_output(
    mut child: std::process::Child,
    within: Duration,
    what: &str,
) -> std::process::Output {
    let deadline = Instant::now() + within;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ffmpeg on {what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// FFmpeg 9 publishing `fixture` to `url` (`-re`, once or looped).
fn publish_tls(pki: &Pki, fixture: &str, url: &str, looped: bool) -> Proc {
    let mut c = pki.ffmpeg();
    c.arg("-re");
    if looped {
        c.args(["-stream_loop", "-1"]);
    }
    c.arg("-i")
        .arg(tools::fixture(fixture))
        .args(["-c", "copy", "-f", "flv", url]);
    Proc::spawn(c)
}

/// FFmpeg 9 publishes H.264/AAC over RTMPS; FFmpeg 9 plays it back over
/// RTMPS (waiting before the publish), HTTPS-FLV (joining during it) and
/// HTTPS HLS (after it), each verifying the certificate, and the decoded
/// video frames equal the source's (all of them for RTMPS and HLS).
#[test]
fn ffmpeg9_publishes_over_rtmps_and_plays_over_https_bit_exact() {
    let ff = tools::ffmpeg9();
    let src = source_video_md5(&ff, "h264-aac.flv");
    let pki = Pki::new("interop");
    pki.issue("arcly-interop");
    let mut args = pki.flags();
    args.extend(["--hls-end-after", "0.5", "--hls-segment", "1"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let s = Arcly::start(&args);
    let (rtmps, https) = tls_addrs(&s);
    let url = format!("rtmps://{rtmps}/live/tls");

    let waiting = {
        let (cmd, url) = (pki.ffmpeg(), url.clone());
        std::thread::spawn(move || video_md5(cmd, &url, SECS(60)))
    };
    std::thread::sleep(Duration::from_millis(1500));
    let mut publisher = publish_tls(&pki, "h264-aac.flv", &url, false);
    s.wait_stream("live", "tls", true, SECS(15));
    let flv = {
        let cmd = pki.ffmpeg();
        let url = format!("https://{https}/live/tls.flv");
        std::thread::spawn(move || video_md5(cmd, &url, SECS(60)))
    };
    assert!(
        publisher.wait(SECS(40)).success(),
        "RTMPS publish failed: {}",
        publisher.stderr()
    );
    assert_same_frames("FFmpeg 9 over RTMPS", &src, &waiting.join().unwrap(), true);
    // Joined during the publish: the whole source when it came within the
    // first GOP (the cache replays it), else a run from a keyframe to the
    // end (a busy machine); bit-exact either way.
    assert_same_frames("FFmpeg 9 over HTTPS-FLV", &src, &flv.join().unwrap(), false);

    s.wait_stream("live", "tls", false, SECS(10));
    std::thread::sleep(Duration::from_millis(1500));
    let got = video_md5(
        pki.ffmpeg(),
        &format!("https://{https}/live/tls/index.m3u8"),
        SECS(60),
    );
    assert_same_frames("FFmpeg 9 over HTTPS HLS", &src, &got, true);

    // The TLS ports speak only TLS, and a client that does not trust the
    // certificate is refused by its own verification.
    let mut plain = Command::new(tools::ffmpeg9());
    plain.args(["-hide_banner", "-nostdin", "-v", "error"]);
    plain
        .env("SSL_CERT_DIR", pki.dir.join("nothing-trusted"))
        .args([
            "-i",
            &format!("https://{https}/live/tls/index.m3u8"),
            "-f",
            "null",
            "-",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = plain.output().unwrap();
    assert!(
        !out.status.success(),
        "an untrusted certificate was accepted"
    );
    let (code, _) = http_get(s.http, "/live/tls/index.m3u8", &[]);
    assert_eq!(code, 200, "plain HTTP keeps serving beside HTTPS");
}

/// A certificate or key that cannot be used stops start-up with a message
/// naming the file, and RTMPS/HTTPS without a certificate is refused.
#[test]
fn unusable_certificates_stop_start_up() {
    let pki = Pki::new("bad");
    std::fs::write(pki.cert(), "not a certificate\n").unwrap();
    std::fs::write(pki.key(), "not a key\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_arcly"))
        .args([
            "--rtmp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(pki.flags())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cert.pem") && err.contains("CERTIFICATE"),
        "{err}"
    );

    pki.issue("arcly-bad");
    std::fs::write(pki.key(), "not a key\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_arcly"))
        .args([
            "--rtmp-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(pki.flags())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("key.pem"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_arcly"))
        .args(["--https-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("tls.cert"), "{err}");
}

/// The certificate a new TLS connection to `addr` is answered with, as the
/// base64 of its DER (`openssl s_client`).
fn served_cert(addr: SocketAddr) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string()])
        .args(["-servername", "localhost"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("openssl s_client");
    pem_body(&String::from_utf8_lossy(&out.stdout))
}

/// The base64 of the first certificate of a PEM text.
fn pem_body(pem: &str) -> String {
    pem.split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END CERTIFICATE-----").next())
        .map(|b| b.split_whitespace().collect())
        .unwrap_or_default()
}

/// A configuration file with `live`'s publish token and the certificate.
fn write_config(pki: &Pki, publish_token: &str, extra: &str) -> PathBuf {
    let path = pki.dir.join("arcly.toml");
    let text = format!(
        "[[app]]\nname = \"live\"\npublish_token = \"{publish_token}\"\n\n\
         [rtmps]\nlisten = \"127.0.0.1:0\"\n[https]\nlisten = \"127.0.0.1:0\"\n\
         [tls]\ncert = {:?}\nkey = {:?}\n{extra}",
        pki.cert(),
        pki.key()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Wait until the log holds `n` lines with `what`.
fn wait_log(s: &Arcly, what: &str, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while s.log().matches(what).count() < n {
        assert!(
            Instant::now() < deadline,
            "no {what:?} in the log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a publish of `key?token=…` over RTMPS is accepted: it stays up
/// (the stream goes live) or is refused (FFmpeg exits with an error).
fn publish_accepted(s: &Arcly, pki: &Pki, rtmps: SocketAddr, key: &str, token: &str) -> bool {
    let url = format!("rtmps://{rtmps}/live/{key}?token={token}");
    let mut p = publish_tls(pki, "h264-aac.flv", &url, true);
    let deadline = Instant::now() + SECS(20);
    loop {
        let (_, body) = http_get(s.http, "/api/streams", &[]);
        if String::from_utf8_lossy(&body).contains(&format!("\"{key}\"")) {
            return true;
        }
        if let Some(st) = p.0.try_wait().unwrap() {
            assert!(!st.success(), "a refused publish exits with an error");
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "publish of {key} neither live nor refused: {}",
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGHUP rotates the certificate and the publish token while a publisher
/// and an HTTPS-FLV player stay connected: the player decodes every frame
/// of its 10 seconds, reaching past the reload; a new TLS connection is
/// answered with the new certificate; the old token is refused to new
/// publishers and the new one accepted.
#[test]
fn sighup_rotates_certificate_and_token_while_a_player_keeps_playing() {
    let ff = tools::ffmpeg9();
    let src = source_video_md5(&ff, "h264-aac.flv");
    let fps = src.len() as f64 / 6.08;
    let pki = Pki::new("sighup");
    let cert_a = pki.issue("arcly-reload-a");
    let config = write_config(&pki, "old", "");
    let s = Arcly::start(&["--config", config.to_str().unwrap()]);
    let (rtmps, https) = tls_addrs(&s);
    assert_eq!(served_cert(https), pem_body(&cert_a));
    assert_eq!(served_cert(rtmps), pem_body(&cert_a), "RTMPS too");

    let url = format!("rtmps://{rtmps}/live/cam?token=old");
    let mut publisher = publish_tls(&pki, "h264-aac.flv", &url, true);
    s.wait_stream("live", "cam", true, SECS(15));
    let player = {
        let mut cmd = pki.ffmpeg();
        cmd.args(["-t", "10"]);
        let url = format!("https://{https}/live/cam.flv");
        std::thread::spawn(move || {
            let got = video_md5(cmd, &url, SECS(60));
            (got, Instant::now())
        })
    };
    std::thread::sleep(SECS(3));

    let cert_b = pki.issue("arcly-reload-b");
    write_config(&pki, "new", "");
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    wait_log(&s, "configuration reloaded", 1, SECS(10));
    let reloaded_at = Instant::now();
    assert_eq!(served_cert(https), pem_body(&cert_b), "new handshakes");
    assert_eq!(served_cert(rtmps), pem_body(&cert_b), "RTMPS too");
    assert!(!publish_accepted(&s, &pki, rtmps, "old-token", "old"));
    assert!(publish_accepted(&s, &pki, rtmps, "new-token", "new"));

    let (got, ended_at) = player.join().unwrap();
    assert!(ended_at > reloaded_at, "the player ended before the reload");
    assert!(
        got.len() as f64 >= 9.0 * fps,
        "the player decoded {} frames of 10 s at {fps:.1} fps",
        got.len()
    );
    assert!(
        publisher.0.try_wait().unwrap().is_none(),
        "the publisher authorized before the reload was dropped: {}",
        publisher.stderr()
    );
    let log = s.log();
    assert!(!log.contains("need a restart"), "{log}");
}

/// `POST /api/reload`: a file that cannot be used changes nothing (422,
/// the old token and certificate stay); a good one applies the token and
/// the certificate and names the changed settings that need a restart.
#[test]
fn api_reload_applies_all_or_nothing_and_names_restart_settings() {
    let pki = Pki::new("api");
    let cert_a = pki.issue("arcly-api-a");
    let config = write_config(&pki, "old", "");
    let s = Arcly::start(&["--config", config.to_str().unwrap()]);
    let (rtmps, https) = tls_addrs(&s);

    // The token changes, but the new key does not belong to the certificate.
    write_config(&pki, "new", "");
    let key_a = std::fs::read(pki.key()).unwrap();
    let cert_a_file = std::fs::read(pki.cert()).unwrap();
    pki.issue("arcly-api-b");
    std::fs::write(pki.cert(), &cert_a_file).unwrap();
    let (code, body) = http_request(s.http, "POST", "/api/reload", &[]);
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(code, 422, "{text}");
    assert!(text.contains("tls.cert"), "{text}");
    wait_log(&s, "reload refused", 1, SECS(10));
    assert_eq!(served_cert(https), pem_body(&cert_a));
    assert!(publish_accepted(&s, &pki, rtmps, "still-old", "old"));

    std::fs::write(pki.key(), &key_a).unwrap();
    let cert_b = pki.issue("arcly-api-b2");
    write_config(
        &pki,
        "new",
        "[limits]\nmax_connections = 500\nmax_publishers = 2\n",
    );
    let (code, body) = http_request(s.http, "POST", "/api/reload", &[]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["applied"],
        serde_json::json!(["tokens", "limits", "certificate"]),
        "{v}"
    );
    assert_eq!(
        v["restart_needed"],
        serde_json::json!(["limits.max_connections"]),
        "{v}"
    );
    wait_log(&s, "need a restart", 1, SECS(10));
    assert_eq!(served_cert(https), pem_body(&cert_b));
    assert!(!publish_accepted(&s, &pki, rtmps, "now-old", "old"));
    assert!(publish_accepted(&s, &pki, rtmps, "now-new", "new"));
    // limits.max_publishers = 2 applies to the next publish.
    s.wait_stream("live", "now-new", false, SECS(10));
    let url = |k: &str| format!("rtmps://{rtmps}/live/{k}?token=new");
    let _one = publish_tls(&pki, "h264-aac.flv", &url("one"), true);
    let _two = publish_tls(&pki, "h264-aac.flv", &url("two"), true);
    s.wait_stream("live", "one", true, SECS(15));
    s.wait_stream("live", "two", true, SECS(15));
    assert!(!publish_accepted(&s, &pki, rtmps, "three", "new"));

    let (code, _) = http_request(s.http, "GET", "/api/reload", &[]);
    assert_eq!(code, 405);

    // An admin token set in the file guards the API from the reload on.
    write_config(
        &pki,
        "new",
        "[limits]\nmax_connections = 500\nmax_publishers = 2\n[admin]\ntoken = \"adm\"\n",
    );
    let (code, body) = http_request(s.http, "POST", "/api/reload", &[]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (code, &v["applied"]),
        (200, &serde_json::json!(["admin.token"]))
    );
    let (code, _) = http_get(s.http, "/api/streams", &[]);
    assert_eq!(code, 401);
    let (code, _) = http_get(s.http, "/api/streams", &[("Authorization", "Bearer adm")]);
    assert_eq!(code, 200);
}
