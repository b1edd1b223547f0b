//! Remux an MPEG-TS file through `TsDemuxer` and `MpegTsMuxer`:
//! `cargo run --release -p arcly-mpegts --example remux -- IN.ts OUT.ts`.
//!
//! The input is streamed in 1 MiB reads (memory stays flat); PAT and PMT go
//! in front of every video keyframe, as the muxer does by itself. Output
//! is written by a second thread, so the file system's page allocation and
//! copy run beside the demux and mux instead of after them.

use arcly_core::traits::Muxer;
use arcly_mpegts::{MpegTsMuxer, TsDemuxer};
use bytes::Bytes;
use std::io::{Read, Write};
use std::sync::mpsc;

/// Bytes of input per read.
const READ_SIZE: usize = 1 << 20;
/// Flushed buffers waiting for the writer thread.
const WRITE_QUEUE: usize = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        eprintln!("usage: remux IN.ts OUT.ts");
        std::process::exit(2);
    };
    let mut file = std::fs::File::open(&input)?;
    let mut out = std::fs::File::create(&output)?;
    let (tx, rx) = mpsc::sync_channel::<Bytes>(WRITE_QUEUE);
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for chunk in rx {
            out.write_all(&chunk)?;
        }
        Ok(())
    });
    let mut buf = vec![0u8; READ_SIZE];
    let mut demux = TsDemuxer::new();
    let mut mux = MpegTsMuxer::new();
    let mut frames = 0u64;
    let mut drain =
        |demux: &mut TsDemuxer, mux: &mut MpegTsMuxer| -> Result<(), Box<dyn std::error::Error>> {
            while let Some(f) = demux.next_frame() {
                mux.write_frame(&f)?;
                frames += 1;
            }
            let bytes = mux.flush()?;
            if !bytes.is_empty() {
                tx.send(bytes)?;
            }
            Ok(())
        };
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if let Err(e) = demux.push(buf.get(..n).unwrap_or_default()) {
            eprintln!("warning: {e}");
        }
        drain(&mut demux, &mut mux)?;
    }
    demux.finish()?;
    drain(&mut demux, &mut mux)?;
    drop(tx);
    writer.join().map_err(|_| "writer thread panicked")??;
    eprintln!("{frames} frames");
    Ok(())
}
