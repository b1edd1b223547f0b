//! The RTMP chunk stream (RTMP 1.0 spec §5.3), sans-IO.
//!
//! [`ChunkDecoder`] reassembles messages from chunks: all four header
//! formats (§5.3.1.2), 1-, 2- and 3-byte basic headers (§5.3.1.1), extended
//! timestamps (§5.3.1.3) including the copy that type-3 chunks carry,
//! interleaved chunk streams, abort (§5.4.2) and set-chunk-size (§5.4.1).
//! Message size, buffered bytes and the number of chunk streams are bounded
//! by [`ChunkLimits`].
//!
//! [`ChunkEncoder`] splits messages into chunks with the smallest header
//! that is unambiguous. [`ChunkEncoder::write_vectored`] produces a list of
//! `Bytes` where only the chunk headers are new memory and the payload
//! pieces are slices of the caller's `Bytes`: one frame can be written to
//! many players, each with its own header state, with no payload copy.

use crate::error::{Result, RtmpError};
use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The chunk size both ends start with (§5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// The largest chunk size that matters: a message length is 24 bits, so a
/// larger announced size is clamped to this (every message fits one chunk).
pub const MAX_CHUNK_SIZE: u32 = 0x00FF_FFFF;
/// Largest timestamp that fits the 3-byte field; larger ones use the
/// extended field (§5.3.1.3).
const EXTENDED_TS: u32 = 0x00FF_FFFF;
/// Lowest chunk stream id (0 and 1 select the 2- and 3-byte basic header).
pub const MIN_CSID: u32 = 2;
/// Highest chunk stream id a 3-byte basic header can carry.
pub const MAX_CSID: u32 = 65599;

/// Bounds applied by the [`ChunkDecoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    /// Largest message accepted (the wire field allows 16 MiB - 1).
    pub max_message_size: u32,
    /// Most distinct chunk stream ids one peer may use.
    pub max_chunk_streams: usize,
    /// Most payload bytes held in partially received messages, summed over
    /// all chunk streams.
    pub max_buffered: usize,
}

impl Default for ChunkLimits {
    fn default() -> Self {
        Self {
            max_message_size: 8 << 20,
            max_chunk_streams: 64,
            max_buffered: 32 << 20,
        }
    }
}

/// Bounds tighter than the decoder's [`ChunkLimits`], applied for a while
/// (a server applies one until the peer's `connect` is accepted). Each
/// error names the bound with the labels given here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRestriction {
    /// Largest message accepted while restricted: checked against the
    /// length in the chunk header, before any of the payload is buffered.
    pub max_message_size: u32,
    /// Most payload bytes of partial messages held while restricted.
    pub max_buffered: usize,
    /// How a refused message size is named in the error.
    pub message_label: &'static str,
    /// How refused buffered bytes are named in the error.
    pub buffered_label: &'static str,
}

/// One reassembled message with its header (§5.3.1.2 fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The chunk stream it arrived on.
    pub csid: u32,
    /// Absolute timestamp in milliseconds (32-bit, wraps).
    pub timestamp: u32,
    /// Message type id (§5.4, §7.1).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// The message body.
    pub payload: Bytes,
}

#[derive(Debug, Default)]
struct InState {
    timestamp: u32,
    /// The delta (or, after a type-0 header, the absolute value) that a
    /// type-3 header starting a new message adds (ffmpeg and SRS semantics).
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last 3-byte timestamp field was 0xFFFFFF: type-3 chunks carry
    /// the 4-byte extended value too.
    extended: bool,
    ext_value: u32,
    partial: Option<BytesMut>,
}

/// Reassembles RTMP messages from chunks.
#[derive(Debug)]
pub struct ChunkDecoder {
    chunk_size: u32,
    limits: ChunkLimits,
    restriction: Option<ChunkRestriction>,
    streams: StreamTable,
    buffered: usize,
}

/// Per-chunk-stream input state. A peer uses a handful of chunk streams
/// (bounded by [`ChunkLimits::max_chunk_streams`]), so a short list is
/// smaller than a hash map and as fast.
#[derive(Debug, Default)]
struct StreamTable(Vec<(u32, InState)>);

impl StreamTable {
    fn get(&self, csid: &u32) -> Option<&InState> {
        self.0.iter().find(|(c, _)| c == csid).map(|(_, s)| s)
    }
    fn get_mut(&mut self, csid: &u32) -> Option<&mut InState> {
        self.0.iter_mut().find(|(c, _)| c == csid).map(|(_, s)| s)
    }
    fn contains_key(&self, csid: &u32) -> bool {
        self.get(csid).is_some()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn entry_or_default(&mut self, csid: u32) -> &mut InState {
        let i = match self.0.iter().position(|(c, _)| *c == csid) {
            Some(i) => i,
            None => {
                self.0.push((csid, InState::default()));
                self.0.len() - 1
            }
        };
        // `i` was found or pushed just above.
        &mut self.0[i].1
    }
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new(ChunkLimits::default())
    }
}

/// A parsed chunk header, before it is applied.
struct Header {
    fmt: u8,
    csid: u32,
    len: usize,
    ts_field: u32,
    /// The 3-byte field of a type-0/1/2 header was the 0xFFFFFF marker.
    marker: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

fn be24(b: &[u8]) -> u32 {
    u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl ChunkDecoder {
    /// A decoder with the default chunk size of 128 and `limits`.
    pub fn new(limits: ChunkLimits) -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            limits,
            restriction: None,
            streams: StreamTable::default(),
            buffered: 0,
        }
    }

    /// Apply `r` on top of the [`ChunkLimits`] (it never loosens them)
    /// until [`lift_restriction`](Self::lift_restriction).
    pub fn restrict(&mut self, r: ChunkRestriction) {
        self.restriction = Some(r);
    }

    /// Go back to the decoder's own [`ChunkLimits`].
    pub fn lift_restriction(&mut self) {
        self.restriction = None;
    }

    /// The bounds in force: largest message and most buffered bytes, each
    /// with the name its error carries.
    fn bounds(&self) -> ((u32, &'static str), (usize, &'static str)) {
        let own = (
            (self.limits.max_message_size, "message size"),
            (self.limits.max_buffered, "buffered partial messages"),
        );
        match self.restriction {
            Some(r) => (
                if r.max_message_size < own.0 .0 {
                    (r.max_message_size, r.message_label)
                } else {
                    own.0
                },
                if r.max_buffered < own.1 .0 {
                    (r.max_buffered, r.buffered_label)
                } else {
                    own.1
                },
            ),
            None => own,
        }
    }

    /// The peer's current chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Apply the peer's Set Chunk Size (§5.4.1): 1 to 2^31-1; sizes above
    /// [`MAX_CHUNK_SIZE`] are clamped (a message never exceeds it).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<()> {
        if size == 0 || size > 0x7FFF_FFFF {
            return Err(RtmpError::protocol(format!("invalid chunk size {size}")));
        }
        self.chunk_size = size.min(MAX_CHUNK_SIZE);
        Ok(())
    }

    /// Apply Abort Message (§5.4.2): drop the partial message on `csid`.
    pub fn abort(&mut self, csid: u32) {
        if let Some(st) = self.streams.get_mut(&csid) {
            if let Some(p) = st.partial.take() {
                self.buffered = self.buffered.saturating_sub(p.len());
            }
        }
    }

    /// Peek a chunk header at the front of `input`: `Ok(None)` if more
    /// bytes are needed.
    fn peek_header(&self, input: &[u8]) -> Result<Option<Header>> {
        let Some(&b0) = input.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        // §5.3.1.1 basic header.
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match input.get(1) {
                Some(&b1) => (64 + u32::from(b1), 2),
                None => return Ok(None),
            },
            1 => match input.get(1..3) {
                Some(b) => (64 + u32::from(b[0]) + 256 * u32::from(b[1]), 3),
                None => return Ok(None),
            },
            c => (u32::from(c), 1),
        };
        let prev = self.streams.get(&csid);
        let mh_len = [11usize, 7, 3, 0][usize::from(fmt)];
        let Some(mh) = input.get(pos..pos + mh_len) else {
            return Ok(None);
        };
        pos += mh_len;
        let (mut ts_field, length, type_id, stream_id) = match fmt {
            0 => (
                be24(mh),
                be24(&mh[3..]),
                mh[6],
                u32::from_le_bytes([mh[7], mh[8], mh[9], mh[10]]),
            ),
            1 => (
                be24(mh),
                be24(&mh[3..]),
                mh[6],
                prev.map_or(0, |p| p.stream_id),
            ),
            2 => {
                let p = prev;
                (
                    be24(mh),
                    p.map_or(0, |p| p.length),
                    p.map_or(0, |p| p.type_id),
                    p.map_or(0, |p| p.stream_id),
                )
            }
            _ => {
                let p = prev;
                let field = if p.is_some_and(|p| p.extended) {
                    EXTENDED_TS
                } else {
                    0
                };
                (
                    field,
                    p.map_or(0, |p| p.length),
                    p.map_or(0, |p| p.type_id),
                    p.map_or(0, |p| p.stream_id),
                )
            }
        };
        // §5.3.1.3: the 3-byte field set to 0xFFFFFF is the marker that the
        // 4-byte extended timestamp follows, whatever value that carries.
        let marker = fmt < 3 && ts_field == EXTENDED_TS;
        if ts_field == EXTENDED_TS {
            let continuation = fmt == 3 && prev.is_some_and(|p| p.partial.is_some());
            match input.get(pos..pos + 4) {
                Some(b) => {
                    let v = be32(b);
                    // §5.3.1.3: type-3 chunks repeat the extended field. Some
                    // encoders omit it on continuation chunks: only skip
                    // the 4 bytes when they repeat the value (as SRS does).
                    if !continuation || prev.is_some_and(|p| p.ext_value == v) {
                        pos += 4;
                        ts_field = v;
                    } else {
                        ts_field = prev.map_or(0, |p| p.ext_value);
                    }
                }
                None => return Ok(None),
            }
        }
        Ok(Some(Header {
            fmt,
            csid,
            len: pos,
            ts_field,
            marker,
            length,
            type_id,
            stream_id,
        }))
    }

    /// Decode chunks from the front of `input` until one message is
    /// complete. Returns `Ok(None)` when `input` holds no complete message
    /// yet (consumed chunks are kept internally; unconsumed bytes stay in
    /// `input`).
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<RawMessage>> {
        loop {
            let Some(h) = self.peek_header(input)? else {
                return Ok(None);
            };
            if !self.streams.contains_key(&h.csid)
                && self.streams.len() >= self.limits.max_chunk_streams
            {
                return Err(RtmpError::limit(
                    "chunk streams",
                    self.streams.len() as u64 + 1,
                    self.limits.max_chunk_streams as u64,
                ));
            }
            let ((max_message, message_what), (max_buffered, buffered_what)) = self.bounds();
            // Checked as soon as the header is known, before any of the
            // payload is buffered (§5.3.1.2: the length is in type-0/1
            // headers; types 2 and 3 repeat the previous one).
            if h.length > max_message {
                return Err(RtmpError::limit(
                    message_what,
                    h.length.into(),
                    max_message.into(),
                ));
            }
            let st = self.streams.entry_or_default(h.csid);
            let have = st.partial.as_ref().map_or(0, BytesMut::len);
            let starts_message = h.fmt != 3 || st.partial.is_none();
            let already = if starts_message { 0 } else { have };
            let remaining = (h.length as usize).saturating_sub(already);
            let piece = remaining.min(self.chunk_size as usize);
            if input.len() < h.len + piece {
                return Ok(None);
            }
            input.advance(h.len);
            if starts_message {
                if let Some(p) = st.partial.take() {
                    // A new header interrupted a message: drop the partial one.
                    self.buffered = self.buffered.saturating_sub(p.len());
                    tracing::debug!(
                        csid = h.csid,
                        "chunk header type {} interrupted a partial message",
                        h.fmt
                    );
                }
                match h.fmt {
                    0 => {
                        st.timestamp = h.ts_field;
                        st.delta = h.ts_field;
                    }
                    1 | 2 => {
                        st.timestamp = st.timestamp.wrapping_add(h.ts_field);
                        st.delta = h.ts_field;
                    }
                    _ => {
                        if st.extended {
                            st.delta = h.ts_field;
                        }
                        st.timestamp = st.timestamp.wrapping_add(st.delta);
                    }
                }
                if h.fmt != 3 {
                    // Decided by the marker, not by the value: a header with
                    // the marker and a small extended value is followed by
                    // type-3 chunks that carry the field too (§5.3.1.3).
                    st.extended = h.marker;
                    st.ext_value = h.ts_field;
                }
                st.length = h.length;
                st.type_id = h.type_id;
                st.stream_id = h.stream_id;
            }
            if starts_message && piece == remaining {
                // The whole message is in this chunk: no copy.
                let payload = input.split_to(piece).freeze();
                return Ok(Some(RawMessage {
                    csid: h.csid,
                    timestamp: st.timestamp,
                    type_id: st.type_id,
                    stream_id: st.stream_id,
                    payload,
                }));
            }
            if self.buffered + piece > max_buffered {
                return Err(RtmpError::limit(
                    buffered_what,
                    (self.buffered + piece) as u64,
                    max_buffered as u64,
                ));
            }
            let part = st
                .partial
                .get_or_insert_with(|| BytesMut::with_capacity((h.length as usize).min(1 << 16)));
            part.extend_from_slice(&input[..piece]);
            input.advance(piece);
            self.buffered += piece;
            if part.len() >= st.length as usize {
                let payload = st.partial.take().unwrap_or_default().freeze();
                self.buffered = self.buffered.saturating_sub(payload.len());
                return Ok(Some(RawMessage {
                    csid: h.csid,
                    timestamp: st.timestamp,
                    type_id: st.type_id,
                    stream_id: st.stream_id,
                    payload,
                }));
            }
        }
    }
}

/// The header of a message to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageHeader {
    /// Chunk stream id, [`MIN_CSID`]..=[`MAX_CSID`].
    pub csid: u32,
    /// Absolute timestamp in milliseconds.
    pub timestamp: u32,
    /// Message type id.
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
}

#[derive(Debug, Default, Clone, Copy)]
struct OutState {
    timestamp: u32,
    delta: Option<u32>,
    length: u32,
    type_id: u8,
    stream_id: u32,
}

/// Splits messages into chunks, remembering per-chunk-stream headers so
/// later messages get smaller headers.
#[derive(Debug)]
pub struct ChunkEncoder {
    chunk_size: u32,
    /// Header state per chunk stream id: a session sends on a handful of
    /// chunk streams, so a short list beats a hash map (no hashing per
    /// message, one small allocation).
    streams: Vec<(u32, OutState)>,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

fn put_basic(out: &mut impl BufMut, fmt: u8, csid: u32) {
    let f = fmt << 6;
    match csid {
        0..=63 => out.put_u8(f | csid as u8),
        64..=319 => {
            out.put_u8(f);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            out.put_u8(f | 1);
            let v = csid - 64;
            out.put_u8(v as u8);
            out.put_u8((v >> 8) as u8);
        }
    }
}

fn put_u24(out: &mut impl BufMut, v: u32) {
    out.put_u8((v >> 16) as u8);
    out.put_u8((v >> 8) as u8);
    out.put_u8(v as u8);
}

/// The chunk headers of one message, as [`ChunkEncoder::plan`] chose them:
/// write [`put_first`](Self::put_first) before the first
/// [`chunk_size`](Self::chunk_size) bytes of the body and
/// [`put_continuation`](Self::put_continuation) before each further piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlan {
    fmt: u8,
    csid: u32,
    /// The timestamp or delta written in the header.
    field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    chunk_size: usize,
    len: usize,
}

impl ChunkPlan {
    /// Body bytes carried per chunk.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// The body length (capped at the 24-bit maximum).
    pub fn body_len(&self) -> usize {
        self.len
    }

    /// Chunks the message takes (at least one, even for an empty body).
    pub fn chunks(&self) -> usize {
        self.len.div_ceil(self.chunk_size).max(1)
    }

    fn extended(&self) -> bool {
        self.field >= EXTENDED_TS
    }

    /// The first chunk's header: basic header, the message header of the
    /// chosen format (§5.3.1.2) and the extended timestamp when needed.
    pub fn put_first(&self, out: &mut impl BufMut) {
        put_basic(out, self.fmt, self.csid);
        if self.fmt < 3 {
            put_u24(out, self.field.min(EXTENDED_TS));
        }
        if self.fmt < 2 {
            put_u24(out, self.length);
            out.put_u8(self.type_id);
        }
        if self.fmt == 0 {
            out.put_u32_le(self.stream_id);
        }
        if self.extended() {
            out.put_u32(self.field);
        }
    }

    /// A continuation chunk's header (type 3; §5.3.1.3: it repeats the
    /// extended timestamp).
    pub fn put_continuation(&self, out: &mut impl BufMut) {
        put_basic(out, 3, self.csid);
        if self.extended() {
            out.put_u32(self.field);
        }
    }
}

impl ChunkEncoder {
    /// An encoder at the default chunk size of 128.
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: Vec::new(),
        }
    }

    /// The chunk size in use.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Use `size` from now on (clamped to 1..=[`MAX_CHUNK_SIZE`]). The
    /// caller must have sent Set Chunk Size to the peer first.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE);
    }

    /// Forget header state (e.g. after the peer aborted).
    pub fn reset(&mut self) {
        self.streams.clear();
    }

    /// Choose the headers of a message of `len` body bytes and remember
    /// them for the next message on its chunk stream. The caller must then
    /// write the message as the plan says.
    pub fn plan(&mut self, h: &MessageHeader, len: usize) -> ChunkPlan {
        let csid = h.csid.clamp(MIN_CSID, MAX_CSID);
        let len = len.min(EXTENDED_TS as usize);
        let length = len as u32;
        let slot = self.streams.iter().position(|(c, _)| *c == csid);
        let prev = slot.and_then(|i| self.streams.get(i)).map(|(_, st)| *st);
        // §5.3.1.2: pick the smallest header whose omitted fields match.
        let (fmt, field) = match prev {
            Some(p)
                if p.stream_id == h.stream_id
                    && h.timestamp.wrapping_sub(p.timestamp) < 0x8000_0000 =>
            {
                let delta = h.timestamp.wrapping_sub(p.timestamp);
                if p.length != length || p.type_id != h.type_id {
                    (1, delta)
                } else if p.delta == Some(delta) {
                    (3, delta)
                } else {
                    (2, delta)
                }
            }
            _ => (0, h.timestamp),
        };
        let st = OutState {
            timestamp: h.timestamp,
            delta: if fmt == 0 { None } else { Some(field) },
            length,
            type_id: h.type_id,
            stream_id: h.stream_id,
        };
        match slot.and_then(|i| self.streams.get_mut(i)) {
            Some((_, s)) => *s = st,
            None => self.streams.push((csid, st)),
        }
        ChunkPlan {
            fmt,
            csid,
            field,
            length,
            type_id: h.type_id,
            stream_id: h.stream_id,
            chunk_size: self.chunk_size as usize,
            len,
        }
    }

    /// Write the message as chunks into `out`, copying the payload.
    pub fn write(&mut self, h: &MessageHeader, payload: &[u8], out: &mut BytesMut) {
        let plan = self.plan(h, payload.len());
        let payload = payload.get(..plan.body_len()).unwrap_or(payload);
        out.reserve(payload.len() + 18 + (plan.chunks() - 1) * 7);
        for (i, piece) in payload.chunks(plan.chunk_size()).enumerate() {
            if i == 0 {
                plan.put_first(out);
            } else {
                plan.put_continuation(out);
            }
            out.put_slice(piece);
        }
        if payload.is_empty() {
            plan.put_first(out);
        }
    }

    /// Write the message as a list of buffers for a vectored write: chunk
    /// headers (new, small) interleaved with slices of `payload` (shared,
    /// not copied). Appends to `out`; returns the total byte count.
    pub fn write_vectored(
        &mut self,
        h: &MessageHeader,
        payload: &Bytes,
        out: &mut Vec<Bytes>,
    ) -> usize {
        self.write_vectored_parts(h, std::slice::from_ref(payload), out)
    }

    /// Like [`write_vectored`](Self::write_vectored) for a message body made
    /// of several parts (e.g. an FLV tag header and the frame payload),
    /// written back to back without joining them.
    pub fn write_vectored_parts(
        &mut self,
        h: &MessageHeader,
        parts: &[Bytes],
        out: &mut Vec<Bytes>,
    ) -> usize {
        let total_len: usize = parts.iter().map(Bytes::len).sum();
        let plan = self.plan(h, total_len);
        let mut hdrs = BytesMut::with_capacity(18 + (plan.chunks() - 1) * 7);
        let mut ends = Vec::with_capacity(plan.chunks());
        plan.put_first(&mut hdrs);
        ends.push(hdrs.len());
        for _ in 1..plan.chunks() {
            plan.put_continuation(&mut hdrs);
            ends.push(hdrs.len());
        }
        let hdrs = hdrs.freeze();
        let cs = plan.chunk_size();
        out.reserve(ends.len() * 2 + parts.len());
        let mut start = 0;
        let (mut part, mut off) = (0usize, 0usize);
        let mut left = plan.body_len();
        for end in &ends {
            out.push(hdrs.slice(start..*end));
            start = *end;
            let mut room = cs.min(left);
            left -= room;
            while room > 0 {
                let Some(p) = parts.get(part) else { break };
                let n = (p.len() - off).min(room);
                if n > 0 {
                    out.push(p.slice(off..off + n));
                }
                off += n;
                room -= n;
                if off == p.len() {
                    part += 1;
                    off = 0;
                }
            }
        }
        hdrs.len() + plan.body_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(dec: &mut ChunkDecoder, buf: &mut BytesMut) -> Vec<RawMessage> {
        let mut v = Vec::new();
        while let Some(m) = dec.decode(buf).unwrap() {
            v.push(m);
        }
        v
    }

    fn msg(csid: u32, ts: u32, type_id: u8, sid: u32, len: usize) -> RawMessage {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + csid as usize) as u8).collect();
        RawMessage {
            csid,
            timestamp: ts,
            type_id,
            stream_id: sid,
            payload: payload.into(),
        }
    }

    fn hdr(m: &RawMessage) -> MessageHeader {
        MessageHeader {
            csid: m.csid,
            timestamp: m.timestamp,
            type_id: m.type_id,
            stream_id: m.stream_id,
        }
    }

    #[test]
    fn spec_example_type3_reuses_delta() {
        // RTMP 1.0 §5.3.2.1 example 1: four audio messages, deltas of 33.
        let msgs: Vec<_> = (0..4)
            .map(|i| msg(3, 1000 + 33 * i, 8, 12345, 32))
            .collect();
        let mut enc = ChunkEncoder::new();
        let mut out = BytesMut::new();
        for m in &msgs {
            enc.write(&hdr(m), &m.payload, &mut out);
        }
        // 12 + 32, then type 2 (4 + 32), then type 3 twice (1 + 32).
        assert_eq!(out.len(), 44 + 36 + 33 + 33);
        assert_eq!(out[0], 0x03);
        assert_eq!(out[44] >> 6, 2);
        assert_eq!(out[80] >> 6, 3);
        assert_eq!(out[113] >> 6, 3);
        let got = decode_all(&mut ChunkDecoder::default(), &mut out);
        assert_eq!(got, msgs);
    }

    #[test]
    fn extended_timestamp_on_type3_chunks() {
        let m = msg(4, 0x0100_0000, 9, 1, 300);
        let mut enc = ChunkEncoder::new();
        let mut out = BytesMut::new();
        enc.write(&hdr(&m), &m.payload, &mut out);
        // 12-byte header + 4 ext, then two type-3 chunks each with 1 + 4 bytes.
        assert_eq!(out.len(), 16 + 300 + 2 * 5);
        assert_eq!(&out[1..4], &[0xff, 0xff, 0xff]);
        assert_eq!(&out[12..16], &0x0100_0000u32.to_be_bytes());
        assert_eq!(out[16 + 128], 0xc4);
        assert_eq!(&out[17 + 128..21 + 128], &0x0100_0000u32.to_be_bytes());
        let got = decode_all(&mut ChunkDecoder::default(), &mut out.clone());
        assert_eq!(got, vec![m.clone()]);
        // Without the repeated field on continuation chunks (some encoders).
        let mut bare = BytesMut::new();
        bare.put_slice(&out[..16 + 128]);
        bare.put_u8(0xc4);
        bare.put_slice(&m.payload[128..256]);
        bare.put_u8(0xc4);
        bare.put_slice(&m.payload[256..]);
        assert_eq!(decode_all(&mut ChunkDecoder::default(), &mut bare), vec![m]);
    }

    /// Issue 18 item 8, RTMP 1.0 §5.3.1.3: whether the extended timestamp
    /// field is present is decided by the 0xFFFFFF marker in the type-0/1/2
    /// header, not by the value it carries: a header with the marker and a
    /// small extended value (5, 33) is followed by type-3 chunks that also
    /// carry the 4-byte field.
    #[test]
    fn the_marker_not_the_value_selects_the_extended_field() {
        let body: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        let mut w = BytesMut::new();
        // Type 0 on csid 4: marker, length 200, video, stream 1, extended 5.
        w.put_slice(&[0x04, 0xff, 0xff, 0xff, 0, 0, 200, 9, 1, 0, 0, 0]);
        w.put_u32(5);
        w.put_slice(&body[..128]);
        // Its continuation: type 3, with the extended field again.
        w.put_u8(0xc4);
        w.put_u32(5);
        w.put_slice(&body[128..]);
        // Type 1 (delta): marker, length 10, extended delta 33.
        w.put_slice(&[0x44, 0xff, 0xff, 0xff, 0, 0, 10, 9]);
        w.put_u32(33);
        w.put_slice(&body[..10]);
        // A type-3 header starting a new message repeats the delta, and
        // carries the extended field too.
        w.put_u8(0xc4);
        w.put_u32(33);
        w.put_slice(&body[10..20]);
        // And a plain type-2 header afterwards has none.
        w.put_slice(&[0x84, 0, 0, 7]);
        w.put_slice(&body[20..30]);
        let got = decode_all(&mut ChunkDecoder::default(), &mut w);
        let ts: Vec<_> = got.iter().map(|m| (m.timestamp, m.payload.len())).collect();
        assert_eq!(ts, vec![(5, 200), (38, 10), (71, 10), (78, 10)]);
        assert_eq!(&got[0].payload[..], &body[..]);
        assert_eq!(&got[2].payload[..], &body[10..20]);
        assert_eq!(&got[3].payload[..], &body[20..30]);
        assert!(w.is_empty());
    }

    #[test]
    fn interleaved_streams_and_abort() {
        let a = msg(4, 10, 9, 1, 400);
        let b = msg(6, 20, 8, 1, 200);
        let mut enc = ChunkEncoder::new();
        let (mut va, mut vb) = (Vec::new(), Vec::new());
        enc.write_vectored(&hdr(&a), &a.payload, &mut va);
        enc.write_vectored(&hdr(&b), &b.payload, &mut vb);
        // Interleave chunk by chunk (header+payload pairs).
        let mut out = BytesMut::new();
        let (pa, pb): (Vec<_>, Vec<_>) = (va.chunks(2).collect(), vb.chunks(2).collect());
        for i in 0..pa.len().max(pb.len()) {
            for p in [pa.get(i), pb.get(i)].into_iter().flatten() {
                for x in *p {
                    out.put_slice(x);
                }
            }
        }
        let got = decode_all(&mut ChunkDecoder::default(), &mut out);
        assert_eq!(got, vec![b.clone(), a.clone()]);

        // Abort drops the partial message on csid 4.
        let mut dec = ChunkDecoder::default();
        let mut out = BytesMut::new();
        for x in &va[..2] {
            out.put_slice(x);
        }
        assert!(dec.decode(&mut out).unwrap().is_none());
        assert_eq!(dec.buffered, 128);
        dec.abort(4);
        assert_eq!(dec.buffered, 0);
    }

    #[test]
    fn vectored_shares_payload() {
        let m = msg(5, 40, 9, 1, 1000);
        let mut enc = ChunkEncoder::new();
        enc.set_chunk_size(4096);
        let mut v = Vec::new();
        let n = enc.write_vectored(&hdr(&m), &m.payload, &mut v);
        assert_eq!(v.len(), 2);
        assert_eq!(n, 12 + 1000);
        assert_eq!(
            v[1].as_ptr(),
            m.payload.as_ptr(),
            "payload must not be copied"
        );
    }

    #[test]
    fn vectored_parts_split_across_chunks() {
        let m = msg(6, 80, 9, 1, 300);
        let parts = [m.payload.slice(..5), m.payload.slice(5..)];
        let mut v = Vec::new();
        let n = ChunkEncoder::new().write_vectored_parts(&hdr(&m), &parts, &mut v);
        let mut wire = BytesMut::new();
        for x in &v {
            wire.put_slice(x);
        }
        assert_eq!(n, wire.len());
        assert_eq!(decode_all(&mut ChunkDecoder::default(), &mut wire), vec![m]);
    }

    #[test]
    fn limits_and_bad_input() {
        let mut dec = ChunkDecoder::new(ChunkLimits {
            max_message_size: 100,
            ..Default::default()
        });
        let mut b = BytesMut::from(&[0x03, 0, 0, 0, 0, 0, 200, 9, 0, 0, 0, 0][..]);
        assert!(matches!(
            dec.decode(&mut b),
            Err(RtmpError::Limit {
                what: "message size",
                ..
            })
        ));
        let mut dec = ChunkDecoder::new(ChunkLimits {
            max_chunk_streams: 2,
            ..Default::default()
        });
        let mut b = BytesMut::new();
        for cs in 2..5u8 {
            b.put_slice(&[cs, 0, 0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 0xaa]);
        }
        assert!(dec.decode(&mut b).unwrap().is_some());
        assert!(dec.decode(&mut b).unwrap().is_some());
        assert!(matches!(
            dec.decode(&mut b),
            Err(RtmpError::Limit {
                what: "chunk streams",
                ..
            })
        ));
        assert!(ChunkDecoder::default().set_chunk_size(0).is_err());
        assert!(ChunkDecoder::default().set_chunk_size(0x8000_0000).is_err());
        let mut d = ChunkDecoder::default();
        d.set_chunk_size(0x7fff_ffff).unwrap();
        assert_eq!(d.chunk_size(), MAX_CHUNK_SIZE);
    }

    fn arb_msgs() -> impl Strategy<Value = Vec<RawMessage>> {
        prop::collection::vec(
            (
                prop_oneof![2u32..10, 60u32..70, 310u32..330, 65590u32..=65599],
                prop_oneof![0u32..100_000, 0x00ff_fff0u32..0x0100_0010, any::<u32>()],
                1u8..23,
                0u32..3,
                0usize..700,
            ),
            1..12,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(c, t, ty, s, l)| msg(c, t, ty, s, l))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            msgs in arb_msgs(),
            cs in prop_oneof![Just(128u32), 1u32..300, Just(4096u32), Just(MAX_CHUNK_SIZE)],
            split in 1usize..97,
            vectored in any::<bool>(),
        ) {
            let mut enc = ChunkEncoder::new();
            enc.set_chunk_size(cs);
            let mut wire = BytesMut::new();
            for m in &msgs {
                if vectored {
                    let mut v = Vec::new();
                    let n = enc.write_vectored(&hdr(m), &m.payload, &mut v);
                    prop_assert_eq!(n, v.iter().map(Bytes::len).sum::<usize>());
                    for x in v { wire.put_slice(&x); }
                } else {
                    enc.write(&hdr(m), &m.payload, &mut wire);
                }
            }
            let mut dec = ChunkDecoder::default();
            dec.set_chunk_size(cs).unwrap();
            let mut inbuf = BytesMut::new();
            let mut got = Vec::new();
            for piece in wire.chunks(split) {
                inbuf.put_slice(piece);
                while let Some(m) = dec.decode(&mut inbuf).unwrap() { got.push(m); }
            }
            prop_assert!(inbuf.is_empty());
            prop_assert_eq!(got, msgs);
        }

        #[test]
        fn garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..2048), cs in 1u32..512) {
            let mut dec = ChunkDecoder::default();
            dec.set_chunk_size(cs).unwrap();
            let mut buf = BytesMut::from(&b[..]);
            while let Ok(Some(_)) = dec.decode(&mut buf) {}
        }
    }
}
