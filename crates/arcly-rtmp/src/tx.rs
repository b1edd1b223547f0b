//! The transmit queue of a session: what it will send, in order, as byte
//! ranges of one local buffer (chunk headers, FLV tag headers, control
//! messages) interleaved with ranges of shared frame payloads.
//!
//! Sending a frame to a player appends a few header bytes to the local
//! buffer and one reference to the frame: in the steady state no
//! allocation, no copy of the payload and no reference-count traffic
//! beyond the frame's own `Arc`. [`TxQueue::chunks_vectored`] hands the
//! queued ranges to one `writev`; [`TxQueue::advance`] consumes what the
//! socket took.

use crate::chunk::ChunkPlan;
use arcly_core::MediaFrame;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;

/// Segments reserved when a batch starts (a 200 ms batch of a 30 fps
/// stream with audio takes about 30).
const BATCH_SEGMENTS: usize = 32;
/// Local bytes reserved when a batch starts (such a batch needs about 300).
const BATCH_LOCAL: usize = 384;

#[derive(Debug)]
enum Seg {
    /// `local[start..end]`.
    Local(u32, u32),
    /// `frame.payload[start..end]`.
    Frame(Arc<MediaFrame>, u32, u32),
}

impl Seg {
    fn len(&self) -> usize {
        match self {
            Seg::Local(a, b) | Seg::Frame(_, a, b) => (b - a) as usize,
        }
    }
}

/// Queued outgoing bytes; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct TxQueue {
    local: Vec<u8>,
    segs: VecDeque<Seg>,
    /// Bytes of the front segment already sent.
    front_sent: usize,
    /// Unsent bytes.
    len: usize,
}

impl TxQueue {
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Reserve room for a typical batch when the queue starts one (it holds
    /// no memory between batches).
    fn begin(&mut self) {
        if self.segs.capacity() == 0 {
            self.segs.reserve(BATCH_SEGMENTS);
            self.local.reserve(BATCH_LOCAL);
        }
    }

    /// Register `local[start..]` as the next segment (merged with the
    /// previous one when that ends where this starts).
    fn seal_local(&mut self, start: usize) {
        let end = self.local.len();
        if end == start {
            return;
        }
        self.len += end - start;
        if let Some(Seg::Local(_, e)) = self.segs.back_mut() {
            if *e as usize == start {
                *e = end as u32;
                return;
            }
        }
        self.segs.push_back(Seg::Local(start as u32, end as u32));
    }

    /// Queue a copy of `bytes`.
    pub(crate) fn push_copy(&mut self, bytes: &[u8]) {
        let start = self.local.len();
        self.local.extend_from_slice(bytes);
        self.seal_local(start);
    }

    fn push_frame(&mut self, frame: &Arc<MediaFrame>, start: usize, end: usize) {
        if end > start {
            self.len += end - start;
            self.segs
                .push_back(Seg::Frame(Arc::clone(frame), start as u32, end as u32));
        }
    }

    /// Queue a message whose body is copied (control messages, commands).
    pub(crate) fn push_message(&mut self, plan: &ChunkPlan, body: &[u8]) {
        let body = body.get(..plan.body_len()).unwrap_or(body);
        let start = self.local.len();
        self.local
            .reserve(body.len() + 18 + (plan.chunks() - 1) * 7);
        plan.put_first(&mut self.local);
        for (i, piece) in body.chunks(plan.chunk_size()).enumerate() {
            if i > 0 {
                plan.put_continuation(&mut self.local);
            }
            self.local.extend_from_slice(piece);
        }
        self.seal_local(start);
    }

    /// Queue a message whose body is `head` (copied; a few bytes) followed
    /// by `frame`'s payload (referenced, not copied). The plan's body
    /// length must be `head.len() + payload_len` with `payload_len` at most
    /// the payload's length.
    pub(crate) fn push_frame_message(
        &mut self,
        plan: &ChunkPlan,
        head: &[u8],
        frame: &Arc<MediaFrame>,
        payload_len: usize,
    ) {
        self.begin();
        let cs = plan.chunk_size();
        let total = plan.body_len();
        let payload_len = payload_len.min(frame.payload.len());
        let (mut sent, mut chunk) = (0usize, 0usize);
        loop {
            let start = self.local.len();
            if chunk == 0 {
                plan.put_first(&mut self.local);
            } else {
                plan.put_continuation(&mut self.local);
            }
            let room_end = (sent + cs).min(total);
            // The part of this chunk that lies in `head`.
            if sent < head.len() {
                let e = room_end.min(head.len());
                self.local
                    .extend_from_slice(head.get(sent..e).unwrap_or(&[]));
                sent = e;
            }
            self.seal_local(start);
            // The part that lies in the payload.
            if sent < room_end {
                let p0 = sent - head.len();
                let p1 = (room_end - head.len()).min(payload_len);
                self.push_frame(frame, p0, p1);
                sent = room_end;
            }
            chunk += 1;
            if sent >= total {
                break;
            }
        }
    }

    /// Fill `dst` with the queued ranges, in order; returns how many.
    pub(crate) fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (i, seg) in self.segs.iter().enumerate() {
            let Some(slot) = dst.get_mut(n) else { break };
            let mut b = self.seg_bytes(seg);
            if i == 0 {
                b = b.get(self.front_sent..).unwrap_or(&[]);
            }
            *slot = IoSlice::new(b);
            n += 1;
        }
        n
    }

    fn seg_bytes<'a>(&'a self, seg: &'a Seg) -> &'a [u8] {
        match seg {
            Seg::Local(a, b) => self.local.get(*a as usize..*b as usize).unwrap_or(&[]),
            Seg::Frame(f, a, b) => f.payload.get(*a as usize..*b as usize).unwrap_or(&[]),
        }
    }

    /// Drop `n` sent bytes from the front.
    pub(crate) fn advance(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(front) = self.segs.front() else {
                break;
            };
            let left = front.len() - self.front_sent;
            if n < left {
                self.front_sent += n;
                return;
            }
            n -= left;
            self.front_sent = 0;
            self.segs.pop_front();
        }
        if self.segs.is_empty() {
            self.clear();
        }
    }

    /// Forget everything queued and give the memory back: a player spends
    /// most of its life between batches, and with thousands of players
    /// what each keeps between batches is most of the server's memory
    /// (an allocation per batch costs nothing next to the write).
    fn clear(&mut self) {
        self.segs = VecDeque::new();
        self.local = Vec::new();
        self.front_sent = 0;
        self.len = 0;
    }

    /// Move everything into `out` (copying).
    pub(crate) fn drain_into(&mut self, out: &mut BytesMut) -> usize {
        let n = self.len;
        out.reserve(n);
        for (i, seg) in self.segs.iter().enumerate() {
            let b = self.seg_bytes(seg);
            out.put_slice(if i == 0 {
                b.get(self.front_sent..).unwrap_or(&[])
            } else {
                b
            });
        }
        self.clear();
        n
    }

    /// Move everything into `out` as buffers: payload ranges are slices of
    /// the frames' payloads (not copied), local ranges slices of one buffer.
    pub(crate) fn drain_into_vectored(&mut self, out: &mut Vec<Bytes>) -> usize {
        let n = self.len;
        let local = Bytes::from(std::mem::take(&mut self.local));
        for (i, seg) in std::mem::take(&mut self.segs).into_iter().enumerate() {
            let skip = if i == 0 { self.front_sent } else { 0 };
            let b = match seg {
                Seg::Local(a, b) => local.slice(a as usize + skip..b as usize),
                Seg::Frame(f, a, b) => f.payload.slice(a as usize + skip..b as usize),
            };
            out.push(b);
        }
        self.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{ChunkDecoder, ChunkEncoder, ChunkLimits, MessageHeader};
    use arcly_core::CodecId;

    fn collect(q: &TxQueue) -> Vec<u8> {
        let mut iov = vec![IoSlice::new(&[]); q.segs.len()];
        let n = q.chunks_vectored(&mut iov);
        iov[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn frame_messages_decode_back_and_share_the_payload() {
        let payload = Bytes::from((0..10_000u32).map(|i| i as u8).collect::<Vec<_>>());
        let frame = Arc::new(MediaFrame::video(CodecId::H264, 0, 0, payload.clone()));
        for cs in [1usize, 3, 5, 128, 4096, 60_000] {
            let mut enc = ChunkEncoder::new();
            enc.set_chunk_size(cs as u32);
            let mut q = TxQueue::default();
            let head = [0x17, 1, 0, 0, 0];
            let h = MessageHeader {
                csid: 6,
                timestamp: 1000,
                type_id: 9,
                stream_id: 1,
            };
            let plan = enc.plan(&h, head.len() + payload.len());
            q.push_frame_message(&plan, &head, &frame, payload.len());
            assert_eq!(q.len(), collect(&q).len());
            let mut dec = ChunkDecoder::new(ChunkLimits::default());
            dec.set_chunk_size(cs as u32).unwrap();
            let mut wire = BytesMut::from(&collect(&q)[..]);
            let m = dec.decode(&mut wire).unwrap().expect("one message");
            assert_eq!(&m.payload[..5], &head);
            assert_eq!(&m.payload[5..], &payload[..]);
            let mut v = Vec::new();
            q.drain_into_vectored(&mut v);
            let range = payload.as_ptr_range();
            let shared: usize = v
                .iter()
                .filter(|b| range.contains(&b.as_ptr()))
                .map(Bytes::len)
                .sum();
            assert_eq!(shared, payload.len(), "chunk size {cs}");
            assert!(q.is_empty());
        }
    }

    #[test]
    fn partial_advances_resume_mid_segment() {
        let mut q = TxQueue::default();
        q.push_copy(b"hello ");
        let f = Arc::new(MediaFrame::video(
            CodecId::H264,
            0,
            0,
            Bytes::from_static(b"world"),
        ));
        q.push_frame(&f, 0, 5);
        q.push_copy(b"!");
        let all = collect(&q);
        assert_eq!(all, b"hello world!");
        for step in 1..=5 {
            let mut q2 = TxQueue::default();
            q2.push_copy(b"hello ");
            q2.push_frame(&f, 0, 5);
            q2.push_copy(b"!");
            let mut got = Vec::new();
            while !q2.is_empty() {
                let c = collect(&q2);
                let n = step.min(c.len());
                got.extend_from_slice(&c[..n]);
                q2.advance(n);
            }
            assert_eq!(got, all);
        }
        let mut out = BytesMut::new();
        assert_eq!(q.drain_into(&mut out), 12);
        assert_eq!(&out[..], b"hello world!");
    }

    #[test]
    fn nothing_is_kept_between_batches() {
        let mut q = TxQueue::default();
        let f = Arc::new(MediaFrame::video(
            CodecId::H264,
            0,
            0,
            Bytes::from(vec![0; 100]),
        ));
        for i in 0..1000 {
            q.push_copy(&[i as u8; 20]);
            q.push_frame(&f, 0, 100);
        }
        let n = q.len();
        q.advance(n);
        assert!(q.is_empty());
        assert_eq!(q.segs.capacity(), 0);
        assert_eq!(q.local.capacity(), 0);
    }
}
