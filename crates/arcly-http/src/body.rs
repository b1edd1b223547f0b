//! Response bodies of every service: [`Chunks`], a list of shared `Bytes` and small inline
//! buffers written with one vectored write (media payloads are never copied
//! into the response), and [`ChannelBody`], a streaming body fed through a
//! bounded channel.

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
/// all of them to the socket at once. Small pieces (tag headers) are held
/// inline, so they cost no allocation of their own.
#[derive(Debug, Default, Clone)]
pub struct Chunks {
    parts: VecDeque<Part>,
    remaining: usize,
}

/// Most bytes [`Chunks::push_inline`] keeps without an allocation.
pub const INLINE_CAP: usize = 38;

#[derive(Debug, Clone)]
enum Part {
    Shared(Bytes),
    Inline {
        pos: u8,
        len: u8,
        buf: [u8; INLINE_CAP],
    },
}

impl Part {
    fn as_slice(&self) -> &[u8] {
        match self {
            Part::Shared(b) => b,
            Part::Inline { pos, len, buf } => {
                buf.get(usize::from(*pos)..usize::from(*len)).unwrap_or(&[])
            }
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Drop the first `n` bytes (`n` < `len()`).
    fn advance(&mut self, n: usize) {
        match self {
            Part::Shared(b) => b.advance(n),
            Part::Inline { pos, len, .. } => {
                *pos = pos
                    .saturating_add(u8::try_from(n).unwrap_or(u8::MAX))
                    .min(*len);
            }
        }
    }
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
            self.parts.push_back(Part::Shared(b));
        }
    }

    /// Append a copy of `b`: inline when it is at most [`INLINE_CAP`] bytes,
    /// in a buffer of its own otherwise.
    pub fn push_inline(&mut self, b: &[u8]) {
        let mut buf = [0u8; INLINE_CAP];
        match (buf.get_mut(..b.len()), u8::try_from(b.len())) {
            (Some(dst), Ok(len)) if len > 0 => {
                dst.copy_from_slice(b);
                self.remaining += b.len();
                self.parts.push_back(Part::Inline { pos: 0, len, buf });
            }
            _ => self.push(Bytes::copy_from_slice(b)),
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
        self.parts.front().map_or(&[], Part::as_slice)
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
            *slot = IoSlice::new(part.as_slice());
            n += 1;
        }
        n
    }
}

/// A whole body in one buffer.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(Chunks::from(b.into())).boxed()
}

/// Convert another body of `Bytes` frames (the metrics and HLS services),
/// keeping its size hint, so a body of known length is still sent with
/// `Content-Length` rather than chunked (`map_frame` would lose it).
pub fn from_bytes_body<B>(b: B) -> Body
where
    B: HttpBody<Data = Bytes, Error = Infallible> + Send + Sync + Unpin + 'static,
{
    BytesBody(b).boxed()
}

/// A body of `Bytes` frames read as [`Chunks`], its size hint kept.
struct BytesBody<B>(B);

impl<B> HttpBody for BytesBody<B>
where
    B: HttpBody<Data = Bytes, Error = Infallible> + Unpin,
{
    type Data = Chunks;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunks>, Infallible>>> {
        Pin::new(&mut self.0)
            .poll_frame(cx)
            .map(|o| o.map(|r| r.map(|f| f.map_data(Chunks::from))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
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
    fn converted_bodies_keep_their_length() {
        let b = from_bytes_body(Full::new(Bytes::from_static(b"12345")));
        assert_eq!(b.size_hint().exact(), Some(5));
    }

    #[test]
    fn chunks_read_as_one_buffer() {
        let mut c = Chunks::new();
        c.push(Bytes::from_static(b"abc"));
        c.push(Bytes::new());
        c.push(Bytes::from_static(b"defg"));
        c.push_inline(b"hij");
        c.push_inline(&[]);
        c.push_inline(&[b'k'; INLINE_CAP + 1]);
        assert_eq!((c.remaining(), c.parts()), (10 + INLINE_CAP + 1, 4));
        let mut io = [IoSlice::new(&[]); 4];
        assert_eq!(c.chunks_vectored(&mut io), 4);
        assert_eq!(&*io[2], b"hij");
        c.advance(4);
        assert_eq!(c.chunk(), b"efg");
        c.advance(4);
        assert_eq!(c.chunk(), b"ij");
        let rest = c.copy_to_bytes(2);
        assert_eq!(&rest[..], b"ij");
        assert_eq!(c.remaining(), INLINE_CAP + 1);
        c.advance(INLINE_CAP + 1);
        assert_eq!((c.remaining(), c.parts()), (0, 0));
    }
}
