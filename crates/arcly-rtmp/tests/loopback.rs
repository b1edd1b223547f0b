//! Real clients against a minimal server driver over loopback: ffmpeg (5.1
//! and 9) publishes fixtures with `-c copy`, ffmpeg and rtmpdump play.
#![allow(missing_docs)]

use arcly_core::testing::tools;
use arcly_core::MediaFrame;
use arcly_rtmp::client::RtmpClient;
use arcly_rtmp::flv::{FlvReader, TagDemuxer};
use arcly_rtmp::session::{ServerEvent, ServerSession};
use bytes::{Bytes, BytesMut};
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn fixture_frames(name: &str) -> Vec<MediaFrame> {
    let data = std::fs::read(tools::fixture(name)).unwrap();
    let mut r = FlvReader::new();
    r.push(&data);
    let mut d = TagDemuxer::new();
    let mut v = Vec::new();
    while let Some(t) = r.next_tag().unwrap() {
        d.demux(t.tag_type, t.timestamp, t.body, &mut v).unwrap();
    }
    v
}

async fn write_all(tcp: &mut TcpStream, s: &mut ServerSession) -> std::io::Result<()> {
    let mut v: Vec<Bytes> = Vec::new();
    s.poll_transmit_vectored(&mut v);
    for b in v {
        tcp.write_all(&b).await?;
    }
    Ok(())
}

/// Serve one connection: accept connect and publish and collect frames, or
/// accept play and send `to_play` then close.
async fn serve_one(listener: TcpListener, to_play: Vec<MediaFrame>) -> Vec<MediaFrame> {
    let (mut tcp, _) = listener.accept().await.unwrap();
    let mut s = ServerSession::default();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        s.handle_input(&buf[..n]).unwrap();
        while let Some(e) = s.poll_event() {
            match e {
                ServerEvent::ConnectRequested { app, .. } => {
                    assert_eq!(app, "live");
                    s.accept_connect().unwrap();
                }
                ServerEvent::PublishRequested {
                    stream_id,
                    stream_name,
                    ..
                } => {
                    assert_eq!(stream_name, "test");
                    s.accept_publish(stream_id).unwrap();
                }
                ServerEvent::PlayRequested {
                    stream_id, reset, ..
                } => {
                    s.accept_play(stream_id, reset).unwrap();
                    for f in &to_play {
                        s.send_frame(stream_id, f).unwrap();
                    }
                    s.send_user_control(&arcly_rtmp::message::UserControl::StreamEof(stream_id));
                    write_all(&mut tcp, &mut s).await.unwrap();
                    let _ = tcp.shutdown().await;
                    // Read until the player closes: dropping a socket with
                    // unread input resets it, and the player could lose the
                    // tail of what was sent.
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                        while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
                    })
                    .await;
                    return got;
                }
                ServerEvent::Media { frame, .. } => got.push(frame),
                _ => {}
            }
        }
        if write_all(&mut tcp, &mut s).await.is_err() {
            break;
        }
    }
    got
}

fn media_only(v: &[MediaFrame]) -> Vec<(bool, bool, i64, i64, Bytes)> {
    v.iter()
        .filter(|f| f.frame_type != arcly_core::FrameType::Data && !f.is_end_of_stream())
        .map(|f| (f.is_video(), f.is_config(), f.dts, f.pts, f.payload.clone()))
        .collect()
}

async fn publish_fixture(ffmpeg: std::path::PathBuf, name: &str, realtime: bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_one(listener, Vec::new()));
    let mut cmd = tokio::process::Command::new(&ffmpeg);
    cmd.args(["-hide_banner", "-v", "error"]);
    if realtime {
        cmd.arg("-re");
    }
    cmd.arg("-i").arg(tools::fixture(name));
    cmd.args([
        "-c",
        "copy",
        "-f",
        "flv",
        &format!("rtmp://127.0.0.1:{port}/live/test"),
    ]);
    let out = cmd.stderr(Stdio::piped()).output().await.unwrap();
    assert!(
        out.status.success(),
        "ffmpeg publish of {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = server.await.unwrap();
    let want = fixture_frames(name);
    let (mut g, mut w) = (media_only(&got), media_only(&want));
    if name.starts_with("vp9") {
        // FFmpeg 9 rebuilds vpcC on `-c copy` (it fills matrix_coefficients
        // from the bitstream), so the config record differs from the file's.
        g.retain(|f| !f.1);
        w.retain(|f| !f.1);
    }
    assert_eq!(g.len(), w.len(), "{name}: frame count");
    if let Some(i) = (0..g.len()).find(|&i| g[i] != w[i]) {
        let show = |x: &(bool, bool, i64, i64, Bytes)| {
            format!(
                "video={} config={} dts={} pts={} len={}",
                x.0,
                x.1,
                x.2,
                x.3,
                x.4.len()
            )
        };
        panic!(
            "{name}: frame {i} differs: got {} {:?} want {} {:?}",
            show(&g[i]),
            &g[i].4[..g[i].4.len().min(16)],
            show(&w[i]),
            &w[i].4[..w[i].4.len().min(16)]
        );
    }
    assert!(
        got.iter()
            .any(|f| f.frame_type == arcly_core::FrameType::Data),
        "{name}: onMetaData arrived"
    );
}

#[tokio::test]
async fn ffmpeg_publishes_h264_aac() {
    publish_fixture(tools::ffmpeg(), "h264-aac.flv", true).await;
}

#[tokio::test]
async fn ffmpeg9_publishes_enhanced_rtmp() {
    let f9 = tools::ffmpeg9();
    for name in [
        "hevc-aac.enhanced.flv",
        "av1-opus.enhanced.flv",
        "vp9-opus.enhanced.flv",
    ] {
        publish_fixture(f9.clone(), name, false).await;
    }
}

#[tokio::test]
async fn ffmpeg_plays_bit_exact() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let frames = fixture_frames("h264-aac.flv");
    let server = tokio::spawn(serve_one(listener, frames));
    let url = format!("rtmp://127.0.0.1:{port}/live/test");
    let ff = tools::ffmpeg();
    let played =
        tokio::task::spawn_blocking(move || tools::framemd5(&ff, &[], &url, &["-c", "copy"]))
            .await
            .unwrap();
    server.await.unwrap();
    let ff = tools::ffmpeg();
    let src = tools::fixture("h264-aac.flv");
    let want = tools::framemd5(&ff, &[], src.to_str().unwrap(), &["-c", "copy"]);
    assert_eq!(
        tools::md5_column(&played, 0),
        tools::md5_column(&want, 0),
        "video packets"
    );
    assert_eq!(
        tools::md5_column(&played, 1),
        tools::md5_column(&want, 1),
        "audio packets"
    );
    assert_eq!(tools::md5_column(&want, 0).len(), 150);
}

#[tokio::test]
async fn rtmpdump_plays() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let frames = fixture_frames("h264-aac.flv");
    let server = tokio::spawn(serve_one(listener, frames.clone()));
    let out = tokio::process::Command::new(tools::rtmpdump())
        .args([
            "-q",
            "-r",
            &format!("rtmp://127.0.0.1:{port}/live/test"),
            "-o",
            "-",
        ])
        .stderr(Stdio::piped())
        .output()
        .await
        .unwrap();
    server.await.unwrap();
    let mut r = FlvReader::new();
    r.push(&out.stdout);
    let mut d = TagDemuxer::new();
    let mut got = Vec::new();
    while let Some(t) = r.next_tag().unwrap() {
        d.demux(t.tag_type, t.timestamp, t.body, &mut got).unwrap();
    }
    assert_eq!(
        media_only(&got),
        media_only(&frames),
        "rtmpdump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn own_client_publishes_and_plays() {
    let frames = fixture_frames("vp9-opus.enhanced.flv");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_one(listener, Vec::new()));
    let mut c = RtmpClient::publish(&format!("rtmp://127.0.0.1:{port}/live/test"))
        .await
        .unwrap();
    for f in &frames {
        c.send_frame(f).await.unwrap();
    }
    c.close().await.unwrap();
    let got = server.await.unwrap();
    assert_eq!(media_only(&got), media_only(&frames));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve_one(listener, frames.clone()));
    let mut p = RtmpClient::play(&format!("rtmp://127.0.0.1:{port}/live/test"))
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(f) = p.next_frame().await.unwrap() {
        got.push(f);
    }
    server.await.unwrap();
    assert_eq!(media_only(&got), media_only(&frames));
    let _ = BytesMut::new();
}
