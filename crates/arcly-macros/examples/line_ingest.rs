//! A whole wire protocol written as one connection handler with
//! `#[protocol]`: a line-based ingest that publishes into an engine, and a
//! `#[derive(MediaSink)]` that prints what arrives.
//!
//! The protocol, one command per line (`\n` or `\r\n`):
//!
//! ```text
//! PUBLISH <app>/<stream>     first line; the server answers "OK" or "ERR <why>"
//! C <H264|AAC> <hex>         a decoder configuration record
//! K <ts_ms> <hex>            an H.264 keyframe (length-prefixed NAL units)
//! V <ts_ms> <hex>            any other H.264 picture
//! A <ts_ms> <hex>            a raw AAC frame
//!                            (K, V, A: leave <hex> out for an empty payload)
//! END                        unpublish (closing the connection does too)
//! ```
//!
//! Run it with `cargo run -p arcly-macros --example line_ingest`.

use arcly_macros::{protocol, MediaSink};
use arcly_stream::prelude::*;
use arcly_stream::traits::Connection;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Longest accepted line, terminator included.
pub const MAX_LINE: usize = 256 * 1024;

/// One parsed line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `PUBLISH app/stream`.
    Publish(StreamPath),
    /// A frame to push.
    Frame(MediaFrame),
    /// `END`.
    End,
}

fn refuse(what: impl Into<String>) -> StreamError {
    StreamError::Protocol(what.into())
}

/// Decode lowercase or uppercase hex, refusing odd lengths and other bytes.
pub fn decode_hex(text: &[u8]) -> Result<Bytes> {
    if text.len() % 2 != 0 {
        return Err(refuse("hex payload has an odd number of digits"));
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.chunks_exact(2)
        .map(|p| match (nibble(p[0]), nibble(p[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => Err(refuse("payload is not hex")),
        })
        .collect::<Result<Vec<u8>>>()
        .map(Bytes::from)
}

/// Parse one line (without its terminator). Sans-IO: bytes in, a command out.
pub fn parse_line(line: &[u8]) -> Result<Command> {
    let text = std::str::from_utf8(line).map_err(|_| refuse("line is not UTF-8"))?;
    let mut words = text.split_ascii_whitespace();
    let verb = words.next().ok_or_else(|| refuse("empty line"))?;
    let mut next = |what: &str| {
        words
            .next()
            .ok_or_else(|| refuse(format!("{verb}: missing {what}")))
    };
    let cmd = match verb {
        "PUBLISH" => {
            let name = next("app/stream")?;
            let (app, stream) = name
                .split_once('/')
                .ok_or_else(|| refuse("PUBLISH takes app/stream"))?;
            Command::Publish(StreamPath::parse(app, stream)?)
        }
        "C" => {
            let codec = match next("codec")? {
                "H264" => CodecId::H264,
                "AAC" => CodecId::Aac,
                other => return Err(refuse(format!("unsupported codec {other:?}"))),
            };
            Command::Frame(MediaFrame::config(
                codec,
                0,
                decode_hex(next("payload")?.as_bytes())?,
            ))
        }
        "K" | "V" | "A" => {
            let ts: i64 = next("timestamp")?
                .parse()
                .map_err(|_| refuse("timestamp is not an integer"))?;
            // An empty payload writes no hex word at all.
            let payload = decode_hex(words.next().unwrap_or("").as_bytes())?;
            Command::Frame(match verb {
                "A" => MediaFrame::audio(CodecId::Aac, ts, payload),
                "K" => MediaFrame::video(CodecId::H264, ts, ts, payload)
                    .with_flags(FrameFlags::KEYFRAME),
                _ => MediaFrame::video(CodecId::H264, ts, ts, payload),
            })
        }
        "END" => Command::End,
        other => return Err(refuse(format!("unknown command {other:?}"))),
    };
    if words.next().is_some() {
        return Err(refuse(format!("{verb}: trailing words")));
    }
    Ok(cmd)
}

/// Read one line into `buf` (terminator stripped), at most [`MAX_LINE`]
/// bytes. `Ok(false)` at a clean end of input.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Result<bool> {
    buf.clear();
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return if buf.is_empty() {
                Ok(false)
            } else {
                Err(refuse("connection closed mid-line"))
            };
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > MAX_LINE {
            return Err(StreamError::LimitExceeded(format!(
                "line longer than {MAX_LINE} bytes"
            )));
        }
        buf.extend_from_slice(&avail[..take]);
        r.consume(take);
        if done {
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            return Ok(true);
        }
    }
}

/// Tell the client why, then fail the connection with `e`.
async fn fail<W: AsyncWrite + Unpin>(w: &mut W, e: StreamError) -> Result<()> {
    let _ = w.write_all(format!("ERR {e}\n").as_bytes()).await;
    let _ = w.shutdown().await;
    Err(e)
}

/// The line protocol: stateless, so one value serves every connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineIngest;

#[protocol(name = "line", port = 9000)]
impl LineIngest {
    async fn handle(
        &self,
        conn: Box<dyn Connection>,
        peer: SocketAddr,
        ctx: IngestContext,
    ) -> Result<()> {
        let (r, mut w) = tokio::io::split(conn);
        let mut r = BufReader::new(r);
        let mut line = Vec::new();
        if !read_line(&mut r, &mut line).await? {
            return Ok(());
        }
        let path = match parse_line(&line) {
            Ok(Command::Publish(p)) => p,
            Ok(_) => {
                return fail(&mut w, refuse("the first line must be PUBLISH app/stream")).await
            }
            Err(e) => return fail(&mut w, e).await,
        };
        let mut req = PublishRequest::new(path, Self::PROTOCOL_NAME);
        req.peer = Some(peer);
        let mut session = match ctx.registry.publish(req).await {
            Ok(s) => s,
            Err(e) => return fail(&mut w, e).await,
        };
        w.write_all(b"OK\n").await?;
        loop {
            let more = tokio::select! {
                _ = ctx.shutdown.cancelled() => break,
                more = read_line(&mut r, &mut line) => more,
            };
            let more = match more {
                Ok(m) => m,
                Err(e) => return fail(&mut w, e).await,
            };
            if !more {
                break;
            }
            match parse_line(&line) {
                Ok(Command::Frame(f)) => session.push(f),
                Ok(Command::End) => break,
                Ok(Command::Publish(_)) => {
                    return fail(&mut w, refuse("already publishing")).await;
                }
                Err(e) => return fail(&mut w, e).await,
            }
        }
        session.close();
        Ok(())
    }
}

/// Prints what a stream carries.
#[derive(MediaSink, Default)]
#[media_sink(on_frame = show, end_of_stream = publisher_left, on_start = started)]
pub struct Printer {
    frames: usize,
}

impl Printer {
    async fn started(&mut self, path: &StreamPath) -> Result<()> {
        println!("watching {path}");
        Ok(())
    }
    async fn show(&mut self, frame: Arc<MediaFrame>) -> Result<()> {
        self.frames += 1;
        println!(
            "{:>4} {:?} {} at {} ms, {} bytes",
            self.frames,
            frame.frame_type,
            frame.codec,
            frame.pts_ms(),
            frame.payload.len()
        );
        Ok(())
    }
    async fn publisher_left(&mut self, _marker: Arc<MediaFrame>) -> Result<()> {
        println!("publisher left after {} frames", self.frames);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let ingest = Arc::new(LineIngest.tcp_ingest_on("127.0.0.1:0".parse().map_err(refuse_addr)?));
    let bound = ingest.local_addr_receiver();
    let engine = Engine::builder()
        .application(AppSpec::new("live"))
        .protocol(ingest)
        .build();
    let runner = tokio::spawn({
        let engine = engine.clone();
        async move { engine.run().await }
    });
    let addr = bound.await.map_err(|_| refuse("ingest did not bind"))?;
    println!("line ingest on {addr}");
    let path = StreamPath::parse("live", "demo")?;
    let watcher = engine.attach_sink(path, Box::new(Printer::default()));

    let mut client = tokio::net::TcpStream::connect(addr).await?;
    client
        .write_all(
            b"PUBLISH live/demo\nC H264 01640028\nK 0 0000000165\nA 1 2110\nV 40 0000000141\nEND\n",
        )
        .await?;
    let mut reply = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut client, &mut reply).await?;
    println!("server said: {}", reply.trim());

    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    engine.shutdown();
    runner.await.map_err(|e| refuse(e.to_string()))??;
    watcher.await.map_err(|e| refuse(e.to_string()))??;
    Ok(())
}

fn refuse_addr(e: std::net::AddrParseError) -> StreamError {
    refuse(e.to_string())
}
