//! fMP4 muxing cost versus a memcpy of the same bytes, and playlist
//! rendering versus a naive `format!`-per-line reference.
#![allow(missing_docs, clippy::assign_op_pattern)] // criterion_group! fn; the naive reference is naive on purpose

use arcly_core::traits::Muxer;
use arcly_core::{CodecId, FrameFlags, MediaFrame};
use arcly_hls::fmp4::Fmp4Muxer;
use arcly_hls::playlist::{LowLatency, MediaPlaylist, PartEntry, SegmentEntry};
use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

/// A minimal avcC (High, 640x360) and 6 s of 25 fps video + 48 kHz AAC.
fn frames() -> Vec<MediaFrame> {
    let sps = [
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
    ];
    let mut avcc = vec![1, 0x64, 0, 0x1e, 0xff, 0xe1, 0, sps.len() as u8];
    avcc.extend_from_slice(&sps);
    avcc.extend_from_slice(&[1, 0, 4, 0x68, 0xeb, 0xe3, 0xcb]);
    let mut out = vec![
        MediaFrame::config(CodecId::H264, 0, Bytes::from(avcc)),
        MediaFrame::config(CodecId::Aac, 0, Bytes::from_static(&[0x11, 0x88])),
    ];
    let video = Bytes::from(vec![0x55u8; 3000]);
    let audio = Bytes::from(vec![0x21u8; 250]);
    for i in 0..150i64 {
        let mut f = MediaFrame::video(CodecId::H264, i * 40, i * 40 + 80, video.clone());
        if i % 50 == 0 {
            f = f.with_flags(FrameFlags::KEYFRAME);
        }
        out.push(f);
        for j in 0..2 {
            out.push(MediaFrame::audio(
                CodecId::Aac,
                i * 40 + j * 20,
                audio.clone(),
            ));
        }
    }
    out
}

fn bench_fmp4(c: &mut Criterion) {
    let frames = frames();
    let bytes: usize = frames.iter().map(|f| f.payload.len()).sum();
    let mut g = c.benchmark_group("fmp4_6s_of_media");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("fmp4_mux_parts_of_5_frames", |b| {
        b.iter(|| {
            let mut m = Fmp4Muxer::new();
            let mut n = 0;
            let mut total = 0;
            for f in &frames {
                m.write_frame(f).unwrap();
                n += 1;
                if n % 15 == 0 {
                    total += m.flush().unwrap().len();
                }
            }
            total += m.flush().unwrap().len();
            black_box(total)
        });
    });
    g.bench_function("reference_memcpy_same_payloads", |b| {
        b.iter(|| {
            let mut v = Vec::with_capacity(bytes);
            for f in &frames {
                v.extend_from_slice(&f.payload);
            }
            black_box(v.len())
        });
    });
    g.finish();
}

fn playlist() -> MediaPlaylist {
    let mut p = MediaPlaylist::new(2);
    p.media_sequence = 1000;
    p.map_uri = Some("init1.mp4".into());
    p.low_latency = Some(LowLatency {
        part_target: 0.2,
        part_hold_back: 0.6,
        can_block_reload: true,
        can_skip_until: Some(12.0),
    });
    for s in 0..10u64 {
        let mut e = SegmentEntry::new(format!("seg{}.m4s", 1000 + s), 2.0);
        e.program_date_time =
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000 + 2 * s));
        e.parts = (0..10)
            .map(|i| PartEntry {
                uri: format!("part{}.{i}.m4s", 1000 + s),
                duration: 0.2,
                independent: i == 0,
            })
            .collect();
        p.segments.push(e);
    }
    p.pending_parts = (0..4)
        .map(|i| PartEntry {
            uri: format!("part1010.{i}.m4s"),
            duration: 0.2,
            independent: i == 0,
        })
        .collect();
    p.preload_hint = Some("part1010.4.m4s".into());
    p
}

/// The obvious way: one `format!` per tag, concatenated.
fn naive_render(p: &MediaPlaylist) -> String {
    let mut s = String::new();
    s = s + "#EXTM3U\n" + &format!("#EXT-X-VERSION:{}\n", p.version());
    s = s + &format!("#EXT-X-TARGETDURATION:{}\n", p.target_duration);
    s = s + "#EXT-X-INDEPENDENT-SEGMENTS\n";
    let ll = p.low_latency.as_ref().unwrap();
    s = s + &format!("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={:.3},HOLD-BACK={:.3},PART-HOLD-BACK={:.3}\n", ll.can_skip_until.unwrap(), 6.0, ll.part_hold_back);
    s = s + &format!("#EXT-X-PART-INF:PART-TARGET={:.3}\n", ll.part_target);
    s = s + &format!(
        "#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
        p.media_sequence, p.discontinuity_sequence
    );
    s = s + &format!("#EXT-X-MAP:URI=\"{}\"\n", p.map_uri.as_ref().unwrap());
    let n = p.segments.len();
    for (i, seg) in p.segments.iter().enumerate() {
        let t = seg.program_date_time.unwrap();
        let mut d = String::new();
        arcly_hls::playlist::push_date_time(&mut d, t);
        s = s + &format!("#EXT-X-PROGRAM-DATE-TIME:{d}\n");
        if i + 2 >= n {
            for part in &seg.parts {
                s = s + &format!(
                    "#EXT-X-PART:DURATION={:.3},URI=\"{}\"{}\n",
                    part.duration,
                    part.uri,
                    if part.independent {
                        ",INDEPENDENT=YES"
                    } else {
                        ""
                    }
                );
            }
        }
        s = s + &format!("#EXTINF:{:.3},\n{}\n", seg.duration, seg.uri);
    }
    for part in &p.pending_parts {
        s = s + &format!(
            "#EXT-X-PART:DURATION={:.3},URI=\"{}\"{}\n",
            part.duration,
            part.uri,
            if part.independent {
                ",INDEPENDENT=YES"
            } else {
                ""
            }
        );
    }
    s + &format!(
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"\n",
        p.preload_hint.as_ref().unwrap()
    )
}

fn bench_playlist(c: &mut Criterion) {
    let p = playlist();
    assert_eq!(
        naive_render(&p),
        p.render(false),
        "reference renders the same text"
    );
    let mut g = c.benchmark_group("ll_hls_playlist_10_segments");
    g.bench_function("render_into_reused_buffer", |b| {
        let mut buf = String::new();
        b.iter(|| {
            p.render_into(false, &mut buf);
            black_box(buf.len())
        });
    });
    g.bench_function("render", |b| b.iter(|| black_box(p.render(false).len())));
    g.bench_function("reference_naive_format_concat", |b| {
        b.iter(|| black_box(naive_render(&p).len()))
    });
    g.finish();
}

criterion_group!(benches, bench_fmp4, bench_playlist);
criterion_main!(benches);
