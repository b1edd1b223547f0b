//! Response bodies: [`Chunks`], a list of shared `Bytes` written with one
//! vectored write (media payloads are never copied into the response), and
//! [`ChannelBody`], a streaming body fed through a bounded channel.

use bytes::{Buf, Bytes};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// The body type of every response the server sends.
pub type Body = BoxBody<Chunks, Infallible>;

/// A sequence of byte buffers read as one [`Buf`]; `chunks_vectored` hands
/// all of them to the socket at once.
#[derive(Debug, Default, Clone)]
pub struct Chunks {
    parts: VecDeque<Bytes>,
    remaining: usize,
}

impl Chunks {
    /// No bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append `b` (nothing is copied).
    pub fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.remaining += b.len();
            self.parts.push_back(b);
        }
    }

    /// Buffers held.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }
}

impl From<Bytes> for Chunks {
    fn from(b: Bytes) -> Self {
        let mut c = Self::new();
        c.push(b);
        c
    }
}

impl Buf for Chunks {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.parts.front().map_or(&[], |b| b.as_ref())
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end of Chunks");
        self.remaining -= cnt;
        while cnt > 0 {
            let Some(front) = self.parts.front_mut() else {
                return;
            };
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.parts.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, part) in dst.iter_mut().zip(self.parts.iter()) {
            *slot = IoSlice::new(part);
            n += 1;
        }
        n
    }
}

/// A whole body in one buffer.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(Chunks::from(b.into())).boxed()
}

/// Convert another body of `Bytes` frames (the metrics and HLS services).
pub fn from_bytes_body<B>(b: B) -> Body
where
    B: HttpBody<Data = Bytes, Error = Infallible> + Send + Sync + 'static,
{
    b.map_frame(|f| f.map_data(Chunks::from)).boxed()
}

/// A streaming body fed by the sending half of a bounded channel. When the
/// channel is full the sender waits: a slow client holds at most the
/// channel's capacity of batches, and its feeder falls behind on the bus
/// (where it skips ahead) instead of buffering here. Dropping the sender
/// ends the body.
#[derive(Debug)]
pub struct ChannelBody {
    rx: mpsc::Receiver<Chunks>,
}

impl ChannelBody {
    /// A body and its sender, holding at most `capacity` batches.
    pub fn new(capacity: usize) -> (mpsc::Sender<Chunks>, Self) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (tx, Self { rx })
    }
}

impl HttpBody for ChannelBody {
    type Data = Chunks;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunks>, Infallible>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|c| Ok(Frame::data(c))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_read_as_one_buffer() {
        let mut c = Chunks::new();
        c.push(Bytes::from_static(b"abc"));
        c.push(Bytes::new());
        c.push(Bytes::from_static(b"defg"));
        assert_eq!((c.remaining(), c.parts()), (7, 2));
        let mut io = [IoSlice::new(&[]); 4];
        assert_eq!(c.chunks_vectored(&mut io), 2);
        c.advance(4);
        assert_eq!(c.chunk(), b"efg");
        let rest = c.copy_to_bytes(3);
        assert_eq!(&rest[..], b"efg");
        assert_eq!(c.remaining(), 0);
    }
}
