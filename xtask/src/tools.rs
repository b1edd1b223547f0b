//! Installs (or checks for) what the tests drive: Debian's ffmpeg, rtmpdump,
//! GStreamer and Chromium, PyPI's imageio-ffmpeg (FFmpeg 9), crates.io's
//! cargo-deny. Anything already present is left alone.

use std::path::Path;
use std::process::Command;

/// Debian packages the tests need, each with a file that shows it is installed.
const APT: &[(&str, &str)] = &[
    ("ffmpeg", "/usr/bin/ffmpeg"),
    ("rtmpdump", "/usr/bin/rtmpdump"),
    ("gstreamer1.0-tools", "/usr/bin/gst-launch-1.0"),
    (
        "gstreamer1.0-plugins-good",
        "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstflv.so",
    ),
    (
        "gstreamer1.0-plugins-bad",
        "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstrtmp2.so",
    ),
    (
        "gstreamer1.0-libav",
        "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstlibav.so",
    ),
    ("chromium", "/usr/bin/chromium"),
    // A remote peer for the admin and token tests: `ip netns` + veth, and
    // curl run inside the namespace.
    ("iproute2", "/bin/ip"),
    ("curl", "/usr/bin/curl"),
    // The TLS tests: `openssl rehash` makes the CA directory FFmpeg trusts,
    // `openssl s_client` reads the certificate a listener answers with.
    ("openssl", "/usr/bin/openssl"),
];

fn have(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Make sure every tool is there, installing what is missing.
pub fn ensure_all() -> Result<(), String> {
    let missing: Vec<&str> = APT
        .iter()
        .filter(|(_, f)| !Path::new(f).exists())
        .map(|(p, _)| *p)
        .collect();
    if !missing.is_empty() {
        eprintln!("==> installing Debian packages: {}", missing.join(" "));
        let root = have("id", &["-u"])
            && String::from_utf8_lossy(
                &Command::new("id")
                    .arg("-u")
                    .output()
                    .map_err(|e| e.to_string())?
                    .stdout,
            )
            .trim()
                == "0";
        if !root {
            return Err(format!(
                "missing Debian packages {missing:?}: run `apt-get install {}` as root",
                missing.join(" ")
            ));
        }
        crate::run(
            "apt-get update",
            Command::new("apt-get").args(["update", "-qq"]),
        )?;
        crate::run(
            "apt-get install",
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing),
        )?;
    }
    let ff9 = "import imageio_ffmpeg as i, os, sys; p = i.get_ffmpeg_exe(); sys.exit(0 if os.path.exists(p) else 1)";
    if !have("python3", &["-c", ff9]) {
        crate::run(
            "pip install imageio-ffmpeg",
            Command::new("python3").args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "imageio-ffmpeg",
            ]),
        )?;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if !have(&cargo, &["deny", "--version"]) {
        crate::run(
            "cargo install cargo-deny",
            Command::new(&cargo).args(["install", "--locked", "cargo-deny"]),
        )?;
    }
    Ok(())
}
