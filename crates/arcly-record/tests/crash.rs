//! `kill -9` of a process that records: the index still opens in ffmpeg and
//! holds every closed segment; at most the segment in progress is lost.

mod common;

use arcly_core::testing::tools::fixture;
use arcly_record::{RecordingPlaylist, INDEX_NAME};
use common::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `record_child` example, built by `cargo test` next to this test's binary.
fn child_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let p = dir.join("examples").join("record_child");
    assert!(
        p.is_file(),
        "{} is missing: run the tests with `cargo test -p arcly-record` (it builds examples)",
        p.display()
    );
    p
}

#[test]
fn sigkill_mid_segment_leaves_a_playable_index() {
    let dir = tmpdir();
    // Publish 4.5 s from the first frame: the keyframes at +0, +2 s and +4 s
    // close two 2-second segments; the third stays open when the child dies.
    let mut child = Command::new(child_binary())
        .arg(dir.path())
        .arg(fixture("h264-aac.ts"))
        .arg("4500")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut segments = Vec::new();
    let mut published = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(published && segments.len() >= 2) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l == "PUBLISHED" => published = true,
            Ok(l) => {
                if let Some(k) = l.strip_prefix("SEGMENT ") {
                    segments.push(k.to_owned());
                }
            }
            Err(e) => {
                let _ = child.kill();
                panic!("child did not record two segments: {e} (saw {segments:?})");
            }
        }
    }
    // Let the open segment receive its bytes, then SIGKILL (Child::kill).
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    let prefix = segments[0].rsplit_once('/').unwrap().0.to_owned();
    let index_path = root_path(&dir, &format!("{prefix}/{INDEX_NAME}"));
    let index = RecordingPlaylist::parse(&std::fs::read(&index_path).unwrap()).unwrap();
    assert!(index.ended, "the VOD index always ends with ENDLIST");
    let uris: Vec<String> = index
        .segments
        .iter()
        .map(|s| format!("{prefix}/{}", s.uri))
        .collect();
    assert_eq!(uris, segments, "every closed segment, nothing more");
    // The in-progress segment (buffered below `flush_bytes`, or partly
    // appended) is what was lost; it is not in the index.
    assert_eq!(
        decode_errors(&index_path),
        "",
        "ffmpeg -v error on the index"
    );
    let (rv, ra) = md5s(&index_path);
    let (sv, sa) = source_md5s();
    assert_eq!(rv.len(), 100, "two closed segments of 2 s at 25 fps");
    assert_same(&rv, &sv[..100], "video of the closed segments");
    assert_same(&ra, &sa[..ra.len()], "audio of the closed segments");
}
