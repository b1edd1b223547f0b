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
/// HTTPS HLS (after it), each verifying the certificate, and every decoded
/// video frame equals the source's.
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
    assert_same_frames("FFmpeg 9 over HTTPS-FLV", &src, &flv.join().unwrap(), true);

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
