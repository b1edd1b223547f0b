//! Remux an MPEG-TS file through `TsDemuxer` and `MpegTsMuxer`:
//! `cargo run --release -p arcly-mpegts --example remux -- IN.ts OUT.ts`.
//! A new segment (PAT, PMT, keyframe) starts at every video keyframe. The
//! input is streamed in 1 MiB reads: memory stays flat.

use arcly_core::traits::Muxer;
use arcly_mpegts::{MpegTsMuxer, TsDemuxer};
use std::io::{Read, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        eprintln!("usage: remux IN.ts OUT.ts");
        std::process::exit(2);
    };
    let mut file = std::fs::File::open(&input)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&output)?);
    let mut demux = TsDemuxer::new();
    let mut mux = MpegTsMuxer::new();
    let mut frames = 0u64;
    let mut write_all =
        |demux: &mut TsDemuxer, mux: &mut MpegTsMuxer| -> Result<(), Box<dyn std::error::Error>> {
            while let Some(f) = demux.next_frame() {
                if f.is_video() && f.is_keyframe() {
                    out.write_all(&mux.flush()?)?;
                    mux.start_segment()?;
                }
                mux.write_frame(&f)?;
                frames += 1;
            }
            out.write_all(&mux.flush()?)?;
            Ok(())
        };
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Err(e) = demux.push(&buf[..n]) {
            eprintln!("warning: {e}");
        }
        write_all(&mut demux, &mut mux)?;
    }
    demux.finish()?;
    write_all(&mut demux, &mut mux)?;
    out.flush()?;
    eprintln!("{frames} frames");
    Ok(())
}
