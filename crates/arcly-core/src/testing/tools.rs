//! Locating the external programs interop tests drive, and the repository's
//! media fixtures.
//!
//! `cargo xtask test` installs every tool before the tests run; a test that
//! cannot find one fails with a message that names the package, it never
//! skips silently.

use std::path::{Path, PathBuf};
use std::process::Command;

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn required(env: &str, name: &str, package: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    on_path(name).unwrap_or_else(|| {
        panic!("`{name}` not found: run `cargo xtask test` (it installs {package}) or set {env}")
    })
}

/// Debian's ffmpeg (5.1), or `$ARCLY_FFMPEG`.
pub fn ffmpeg() -> PathBuf {
    required("ARCLY_FFMPEG", "ffmpeg", "Debian's ffmpeg")
}

/// Debian's ffprobe, or `$ARCLY_FFPROBE`.
pub fn ffprobe() -> PathBuf {
    required("ARCLY_FFPROBE", "ffprobe", "Debian's ffmpeg")
}

/// rtmpdump, or `$ARCLY_RTMPDUMP`.
pub fn rtmpdump() -> PathBuf {
    required("ARCLY_RTMPDUMP", "rtmpdump", "Debian's rtmpdump")
}

/// GStreamer's gst-launch-1.0, or `$ARCLY_GST_LAUNCH`.
pub fn gst_launch() -> PathBuf {
    required(
        "ARCLY_GST_LAUNCH",
        "gst-launch-1.0",
        "Debian's gstreamer1.0-tools",
    )
}

/// The static FFmpeg 9 from PyPI's `imageio-ffmpeg` wheel (Enhanced RTMP,
/// HEVC/AV1/VP9/Opus/VVC), or `$ARCLY_FFMPEG9`.
pub fn ffmpeg9() -> PathBuf {
    if let Some(p) = std::env::var_os("ARCLY_FFMPEG9") {
        return PathBuf::from(p);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import imageio_ffmpeg as i; print(i.get_ffmpeg_exe())",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => panic!(
            "FFmpeg 9 not found: run `cargo xtask test` (it runs `pip install imageio-ffmpeg`) or set ARCLY_FFMPEG9"
        ),
    }
}

/// The repository's `fixtures/media` folder (see its `make.sh`).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/media")
}

/// One fixture by file name, e.g. `fixture("h264-aac.flv")`.
pub fn fixture(name: &str) -> PathBuf {
    let p = fixtures_dir().join(name);
    assert!(p.is_file(), "fixture {} is missing", p.display());
    p
}

/// Run `ffmpeg -f framemd5` on `input` (extra input options first) and return
/// the per-frame hash lines (comments dropped), for bit-exact comparisons
/// after a trip through the server.
pub fn framemd5(
    ffmpeg: &Path,
    input_args: &[&str],
    input: &str,
    output_args: &[&str],
) -> Vec<String> {
    let mut cmd = Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-v", "error"])
        .args(input_args)
        .args(["-i", input]);
    cmd.args(output_args).args(["-f", "framemd5", "-"]);
    let out = cmd.output().expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg framemd5 of {input} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The hash column (last field) of framemd5 lines for one stream index.
pub fn md5_column(lines: &[String], stream_index: usize) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.split(',').next().map(str::trim) == Some(&stream_index.to_string()))
        .filter_map(|l| l.rsplit(',').next().map(|s| s.trim().to_owned()))
        .collect()
}
