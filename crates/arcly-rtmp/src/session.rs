//! RTMP sessions, sans-IO: [`ServerSession`] and [`ClientSession`].
//!
//! Feed received bytes with `handle_input`, take events with `poll_event`,
//! and take bytes to send with `poll_transmit` (copying into one buffer) or
//! `poll_transmit_vectored` (a list of `Bytes` whose media payloads are
//! shared with the frames). Neither does I/O or keeps time.

use crate::amf0::Amf0Value;
use crate::chunk::{
    ChunkDecoder, ChunkEncoder, ChunkLimits, ChunkRestriction, MessageHeader, RawMessage,
};
use crate::error::{Result, RtmpError};
use crate::flv::{self, TagDemuxer};
use crate::handshake::{ClientHandshake, ServerHandshake};
use crate::message::{self, csid, status, status_object, type_id, Command, UserControl};
use crate::tx::TxQueue;
use arcly_core::MediaFrame;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::sync::Arc;

/// Most message streams (`createStream`) one connection may hold.
pub const MAX_STREAMS: usize = 16;
/// Most events queued before the caller must drain them.
pub const MAX_QUEUED_EVENTS: usize = 4096;
/// Largest message a server accepts before a publish is accepted on the
/// connection (before `connect`, and on connections that only play), and
/// most bytes of partial messages it holds meanwhile. A real client's
/// `connect` is a few hundred bytes (ffmpeg, OBS); a signed token of a few
/// KB in the server URL appears twice in it (app and `tcUrl`), so 16 KiB
/// leaves room for a 6 KB token; a player's commands are smaller still; only
/// an accepted publisher sends large messages (media). Stops a peer nobody
/// authenticated (an accepted `connect` only names an application) from
/// making the server buffer and decode messages of up to
/// [`ChunkLimits::max_message_size`] (8 MiB) on each of hundreds of
/// connections: a larger message is refused as soon as its chunk header
/// arrives, before its payload is buffered (issue 17).
pub const MAX_MESSAGE_BEFORE_PUBLISH: u32 = 16 << 10;

/// The codecs this server takes from publishers and relays to players, as
/// Enhanced RTMP FourCCs, advertised in the connect `_result`.
pub const SERVER_FOURCCS: &[&str] = &["avc1", "hvc1", "av01", "vp09", "vvc1", "Opus", "mp4a"];

/// Most malformed tags in a row (unknown AVCPacketType, truncated body or
/// NAL unit, bad script data) a publisher may send before it is
/// disconnected. One bad tag is dropped and counted and the stream goes on,
/// as SRS does; a publisher that sends nothing but garbage does not keep
/// the server parsing it forever.
pub const MAX_CONSECUTIVE_BAD_TAGS: u32 = 64;

/// Most bytes a client may send past a `publish` or `play` the server has
/// not answered yet (after `connect` is accepted; before, the bound is
/// [`MAX_MESSAGE_BEFORE_PUBLISH`]). Clients pipeline: a player sends
/// `connect`, `createStream` and `play` back to back, a publisher
/// `publish`, `@setDataFrame` and its sequence headers. The session holds
/// those bytes, undecoded and in order, until the step they follow is
/// answered (as nginx-rtmp and SRS serve such clients); this bounds what a
/// driver that keeps reading meanwhile can make it hold.
pub const MAX_PIPELINED_BYTES: usize = 1 << 20;

/// The bounds of a server's chunk decoder until `connect` is accepted.
const PRE_CONNECT: ChunkRestriction = ChunkRestriction {
    max_message_size: MAX_MESSAGE_BEFORE_PUBLISH,
    max_buffered: MAX_MESSAGE_BEFORE_PUBLISH as usize,
    message_label: "message size before connect is accepted",
    buffered_label: "buffered partial messages before connect is accepted",
};

/// The same bounds from then on until a publish is accepted.
const PRE_PUBLISH: ChunkRestriction = ChunkRestriction {
    message_label: "message size before a publish is accepted",
    buffered_label: "buffered partial messages before a publish is accepted",
    ..PRE_CONNECT
};

/// Settings of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// The chunk size this end sends with (announced with Set Chunk Size).
    /// Large values cut per-chunk overhead towards players.
    pub chunk_size: u32,
    /// The window acknowledgement size announced to the peer.
    pub window_ack_size: u32,
    /// Bounds on what the peer may send.
    pub limits: ChunkLimits,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            chunk_size: 60_000,
            window_ack_size: 2_500_000,
            limits: ChunkLimits::default(),
        }
    }
}

/// Input buffer capacity kept while nothing is pending in it.
const INPUT_KEEP: usize = 512;

/// The connection-level machinery both ends share: chunk codec, control
/// messages, acknowledgements and the transmit queue.
#[derive(Debug)]
struct Core {
    input: BytesMut,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    tx: TxQueue,
    received: u64,
    last_ack: u64,
    peer_window: u32,
}

impl Core {
    fn new(cfg: &SessionConfig) -> Self {
        Self {
            input: BytesMut::new(),
            decoder: ChunkDecoder::new(cfg.limits),
            encoder: ChunkEncoder::new(),
            tx: TxQueue::default(),
            received: 0,
            last_ack: 0,
            peer_window: 0,
        }
    }

    fn send(&mut self, csid: u32, type_id: u8, stream_id: u32, timestamp: u32, body: &[u8]) {
        let h = MessageHeader {
            csid,
            timestamp,
            type_id,
            stream_id,
        };
        let plan = self.encoder.plan(&h, body.len());
        self.tx.push_message(&plan, body);
    }

    fn send_control(&mut self, type_id: u8, value: u32) {
        self.send(csid::CONTROL, type_id, 0, 0, &message::u32_body(value));
    }

    fn set_chunk_size(&mut self, size: u32) {
        self.send_control(type_id::SET_CHUNK_SIZE, size);
        self.encoder.set_chunk_size(size);
    }

    fn send_user_control(&mut self, u: &UserControl) {
        self.send(csid::CONTROL, type_id::USER_CONTROL, 0, 0, &u.encode());
    }

    fn send_command(&mut self, stream_id: u32, c: &Command) {
        self.send(
            csid::COMMAND,
            type_id::COMMAND_AMF0,
            stream_id,
            0,
            &c.encode(),
        );
    }

    fn on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        let c = Command::new(
            "onStatus",
            0.0,
            Amf0Value::Null,
            vec![status_object(level, code, description)],
        );
        self.send_command(stream_id, &c);
    }

    /// Send a media frame as a message whose payload is shared, not copied:
    /// only the chunk and FLV tag headers are written per call. `dts_ms`
    /// and `pts_ms` place it on the receiver's timeline.
    fn send_frame_at(
        &mut self,
        stream_id: u32,
        frame: &Arc<MediaFrame>,
        dts_ms: i64,
        pts_ms: i64,
    ) -> Result<()> {
        let cts = pts_ms.saturating_sub(dts_ms).clamp(-0x80_0000, 0x7f_ffff) as i32;
        let Some(head) = flv::tag_header(frame, cts)? else {
            return Ok(());
        };
        // Players receive `onMetaData` as a plain data message (its tag
        // header is empty).
        let cs = match head.tag_type {
            flv::TAG_AUDIO => csid::AUDIO,
            flv::TAG_VIDEO => csid::VIDEO,
            _ => csid::DATA,
        };
        let h = MessageHeader {
            csid: cs,
            timestamp: dts_ms as u32,
            type_id: head.tag_type,
            stream_id,
        };
        let payload_len = if head.with_payload {
            frame.payload.len()
        } else {
            0
        };
        let plan = self.encoder.plan(&h, head.body_len(frame.payload.len()));
        self.tx
            .push_frame_message(&plan, head.as_bytes(), frame, payload_len);
        Ok(())
    }

    /// [`send_frame_at`](Self::send_frame_at) the frame's own timestamps.
    fn send_frame(&mut self, stream_id: u32, frame: &MediaFrame) -> Result<()> {
        let (dts, pts) = (frame.dts_ms(), frame.pts_ms());
        self.send_frame_at(stream_id, &Arc::new(frame.clone()), dts, pts)
    }

    /// Decode the next message, handling protocol control messages here.
    fn next_message(&mut self) -> Result<Option<RawMessage>> {
        loop {
            let Some(m) = self.decoder.decode(&mut self.input)? else {
                return Ok(None);
            };
            match m.type_id {
                type_id::SET_CHUNK_SIZE => self
                    .decoder
                    .set_chunk_size(message::parse_u32_body(&m.payload)? & 0x7FFF_FFFF)?,
                type_id::ABORT => self.decoder.abort(message::parse_u32_body(&m.payload)?),
                type_id::ACKNOWLEDGEMENT => {}
                type_id::WINDOW_ACK_SIZE => self.peer_window = message::parse_u32_body(&m.payload)?,
                type_id::SET_PEER_BANDWIDTH => {}
                type_id::USER_CONTROL => {
                    if let UserControl::PingRequest(t) = UserControl::parse(&m.payload)? {
                        self.send_user_control(&UserControl::PingResponse(t));
                    }
                }
                _ => return Ok(Some(m)),
            }
        }
    }

    fn account(&mut self, n: usize) {
        self.received += n as u64;
        // §5.4.3: acknowledge after each window of received bytes.
        if self.peer_window > 0 && self.received - self.last_ack >= u64::from(self.peer_window) {
            self.last_ack = self.received;
            self.send_control(type_id::ACKNOWLEDGEMENT, self.received as u32);
        }
    }

    fn poll_transmit(&mut self, out: &mut BytesMut) -> usize {
        self.tx.drain_into(out)
    }

    fn poll_transmit_vectored(&mut self, out: &mut Vec<Bytes>) -> usize {
        self.tx.drain_into_vectored(out)
    }

    fn has_transmit(&self) -> bool {
        !self.tx.is_empty()
    }

    /// Give back the input buffer once everything in it was parsed: a
    /// player sends little after its handshake, and keeping the
    /// handshake's buffer would cost every player kilobytes.
    fn release_input(&mut self) {
        if self.input.is_empty() && self.input.capacity() > INPUT_KEEP {
            self.input = BytesMut::new();
        }
    }
}

/// Split `name?query` into the name and the query.
fn split_query(s: &str) -> (String, Option<String>) {
    match s.split_once('?') {
        Some((n, q)) => (n.to_owned(), Some(q.to_owned())),
        None => (s.to_owned(), None),
    }
}

/// Something the server session learned from the client.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// `connect`: answer with [`ServerSession::accept_connect`] or
    /// [`ServerSession::reject_connect`].
    ConnectRequested {
        /// The application (`live`).
        app: String,
        /// `tcUrl`, if sent.
        tc_url: Option<String>,
        /// `objectEncoding` (0 = AMF0; 3 is answered with 0).
        object_encoding: f64,
        /// The whole command object.
        command_object: Amf0Value,
    },
    /// `publish`: answer with [`ServerSession::accept_publish`] or
    /// [`ServerSession::reject_publish`].
    PublishRequested {
        /// The message stream.
        stream_id: u32,
        /// The stream name without the query.
        stream_name: String,
        /// What followed `?` in the name (`token=…`).
        query: Option<String>,
        /// `live`, `record` or `append`.
        publish_type: String,
    },
    /// `play`: answer with [`ServerSession::accept_play`] or
    /// [`ServerSession::reject_play`].
    PlayRequested {
        /// The message stream.
        stream_id: u32,
        /// The stream name without the query.
        stream_name: String,
        /// What followed `?` in the name.
        query: Option<String>,
        /// `start` (-2 live or recorded, -1 live only, >= 0 seconds).
        start: f64,
        /// `duration` (-1 until the end).
        duration: f64,
        /// `reset`.
        reset: bool,
    },
    /// A frame from an accepted publisher (media, CONFIG, or metadata as
    /// a [`arcly_core::FrameType::Data`] frame with an AMF0 payload).
    Media {
        /// The message stream.
        stream_id: u32,
        /// The frame in the canonical layout.
        frame: MediaFrame,
    },
    /// The publisher stopped (`FCUnpublish`, `closeStream`, `deleteStream`).
    Unpublished {
        /// The message stream.
        stream_id: u32,
    },
    /// A player stopped (`closeStream`, `deleteStream`).
    PlayStopped {
        /// The message stream.
        stream_id: u32,
    },
    /// `receiveAudio`/`receiveVideo`.
    ReceiveMedia {
        /// The message stream.
        stream_id: u32,
        /// `true` for audio, `false` for video.
        audio: bool,
        /// Whether the player wants it.
        enabled: bool,
    },
    /// A tag that could not be mapped (unsupported codec); the connection goes on.
    Skipped {
        /// Why.
        reason: String,
    },
    /// `pause` on a play (RTMP 1.0 §7.2.2.8), already answered with
    /// `NetStream.Pause.Notify` or `NetStream.Unpause.Notify`: the driver
    /// sends no media while paused and resumes at the live edge from a
    /// keyframe.
    Pause {
        /// The message stream.
        stream_id: u32,
        /// `true` to pause, `false` to resume.
        paused: bool,
    },
    /// A malformed tag from a publisher (unknown packet type, truncated
    /// body) was dropped; the stream goes on. Counted in
    /// [`ServerSession::bad_tags`]; [`MAX_CONSECUTIVE_BAD_TAGS`] in a row
    /// end the connection.
    BadTag {
        /// The message stream.
        stream_id: u32,
        /// What was wrong with it.
        reason: String,
    },
}

#[derive(Debug)]
enum StreamState {
    Created,
    PublishPending(String),
    Publishing(String, Box<TagDemuxer>),
    PlayPending,
    Playing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Handshake,
    AwaitConnect,
    ConnectPending,
    Connected,
    Rejected,
}

/// The server end of one RTMP connection.
#[derive(Debug)]
pub struct ServerSession {
    cfg: SessionConfig,
    hs: ServerHandshake,
    core: Core,
    state: ConnState,
    connect_txn: f64,
    streams: HashMap<u32, StreamState>,
    next_stream_id: u32,
    events: VecDeque<ServerEvent>,
    frames: Vec<MediaFrame>,
    /// Malformed tags dropped so far.
    bad_tags: u64,
    /// Malformed tags since the last good one.
    bad_tags_in_a_row: u32,
}

impl Default for ServerSession {
    fn default() -> Self {
        Self::new(SessionConfig::default())
    }
}

impl ServerSession {
    /// A session waiting for the client's handshake.
    pub fn new(cfg: SessionConfig) -> Self {
        let mut core = Core::new(&cfg);
        core.decoder.restrict(PRE_CONNECT);
        Self {
            cfg,
            hs: ServerHandshake::new(),
            core,
            state: ConnState::Handshake,
            connect_txn: 1.0,
            streams: HashMap::new(),
            next_stream_id: 1,
            events: VecDeque::new(),
            frames: Vec::new(),
            bad_tags: 0,
            bad_tags_in_a_row: 0,
        }
    }

    /// Malformed tags from publishers dropped so far (see
    /// [`ServerEvent::BadTag`]).
    pub fn bad_tags(&self) -> u64 {
        self.bad_tags
    }

    /// Whether the handshake is complete.
    pub fn is_handshake_done(&self) -> bool {
        self.state != ConnState::Handshake
    }

    /// Feed bytes received from the client. An error means the connection
    /// must be closed (after sending what [`poll_transmit`](Self::poll_transmit) holds).
    pub fn handle_input(&mut self, data: &[u8]) -> Result<()> {
        self.core.input.extend_from_slice(data);
        if self.state == ConnState::Handshake {
            let mut out = BytesMut::new();
            let done = self.hs.handle(&mut self.core.input, &mut out)?;
            if !out.is_empty() {
                self.core.tx.push_copy(&out);
            }
            if !done {
                return Ok(());
            }
            self.state = ConnState::AwaitConnect;
        } else {
            self.core.account(data.len());
        }
        self.process_input()
    }

    /// Whether a `connect`, `publish` or `play` awaits the caller's answer
    /// (`accept_*` or `reject_*`). Meanwhile what the client pipelined after
    /// it is held undecoded, in order, and processed once the answer is
    /// given (up to [`MAX_PIPELINED_BYTES`]): a driver should answer before
    /// it reads more.
    pub fn is_waiting(&self) -> bool {
        self.state == ConnState::ConnectPending
            || self
                .streams
                .values()
                .any(|s| matches!(s, StreamState::PublishPending(_) | StreamState::PlayPending))
    }

    /// Decode and handle the held input in order, stopping at a step that
    /// needs the caller's answer (the rest stays held, within its bound).
    fn process_input(&mut self) -> Result<()> {
        if self.state == ConnState::Handshake {
            return Ok(());
        }
        while !self.is_waiting() && self.state != ConnState::Rejected {
            let Some(m) = self.core.next_message()? else {
                break;
            };
            self.on_message(m)?;
            if self.events.len() > MAX_QUEUED_EVENTS {
                return Err(RtmpError::limit(
                    "queued events",
                    self.events.len() as u64,
                    MAX_QUEUED_EVENTS as u64,
                ));
            }
        }
        let held = self.core.input.len();
        if held > 0 && (self.is_waiting() || self.state == ConnState::Rejected) {
            let (what, limit) = if self.state == ConnState::Connected {
                (
                    "bytes pipelined past an unanswered publish or play",
                    MAX_PIPELINED_BYTES,
                )
            } else {
                (
                    "bytes pipelined past an unanswered connect",
                    MAX_MESSAGE_BEFORE_PUBLISH as usize,
                )
            };
            if held > limit {
                return Err(RtmpError::limit(what, held as u64, limit as u64));
            }
        }
        self.core.release_input();
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        let ev = self.events.pop_front();
        if self.events.is_empty() && self.events.capacity() > 0 {
            // Commands come in bursts at connect and rarely after: don't
            // keep their queue for the life of every player.
            self.events = VecDeque::new();
        }
        ev
    }

    /// Move every queued outgoing byte into `out`; returns the count.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> usize {
        self.core.poll_transmit(out)
    }

    /// Move every queued outgoing buffer into `out` for a vectored write
    /// (media payloads are shared, not copied); returns the byte count.
    pub fn poll_transmit_vectored(&mut self, out: &mut Vec<Bytes>) -> usize {
        self.core.poll_transmit_vectored(out)
    }

    /// Whether bytes are waiting to be sent.
    pub fn has_transmit(&self) -> bool {
        self.core.has_transmit()
    }

    /// Bytes waiting to be sent.
    pub fn pending_transmit(&self) -> usize {
        self.core.tx.len()
    }

    /// Fill `dst` with the queued outgoing byte ranges, in order, without
    /// taking them (for a `writev` straight from the queue: media payloads
    /// are the frames' own memory); returns how many slices were filled.
    /// Follow the write with [`advance_transmit`](Self::advance_transmit).
    pub fn transmit_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        self.core.tx.chunks_vectored(dst)
    }

    /// Drop the first `n` queued bytes (those a write took).
    pub fn advance_transmit(&mut self, n: usize) {
        self.core.tx.advance(n);
    }

    fn on_message(&mut self, m: RawMessage) -> Result<()> {
        match m.type_id {
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let c = Command::parse(&m.payload, m.type_id == type_id::COMMAND_AMF3)?;
                self.on_command(m.stream_id, c)
            }
            type_id::AUDIO | type_id::VIDEO | type_id::DATA_AMF0 | type_id::DATA_AMF3 => {
                let mut body = m.payload;
                let tag_type = match m.type_id {
                    type_id::DATA_AMF3 => {
                        // AMF3 data starts with a format byte; 0 = AMF0 follows.
                        if body.first() != Some(&0) {
                            return Ok(());
                        }
                        body.advance(1);
                        flv::TAG_SCRIPT
                    }
                    type_id::DATA_AMF0 => flv::TAG_SCRIPT,
                    t => t,
                };
                self.on_media(m.stream_id, tag_type, m.timestamp, body)
            }
            type_id::AGGREGATE => self.on_aggregate(m),
            _ => Ok(()),
        }
    }

    /// §7.1.6: an aggregate is a sequence of FLV tags (header, body,
    /// back pointer) with timestamps relative to the first one.
    fn on_aggregate(&mut self, m: RawMessage) -> Result<()> {
        let mut b = m.payload;
        let mut base = None;
        while b.len() >= 11 {
            let t = b[0] & 0x1f;
            let size = (usize::from(b[1]) << 16) | (usize::from(b[2]) << 8) | usize::from(b[3]);
            let ts = u32::from(b[7]) << 24
                | u32::from(b[4]) << 16
                | u32::from(b[5]) << 8
                | u32::from(b[6]);
            if b.len() < 11 + size {
                // The rest of the aggregate is unusable: drop it as one
                // bad tag.
                let e = RtmpError::truncated("aggregate sub-message", 11 + size - b.len());
                return self.on_bad_tag(m.stream_id, e);
            }
            b.advance(11);
            let body = b.split_to(size);
            b.advance(b.len().min(4));
            let base_ts = *base.get_or_insert(ts);
            let abs = m.timestamp.wrapping_add(ts.wrapping_sub(base_ts));
            self.on_media(m.stream_id, t, abs, body)?;
        }
        Ok(())
    }

    fn on_media(
        &mut self,
        stream_id: u32,
        tag_type: u8,
        timestamp: u32,
        body: Bytes,
    ) -> Result<()> {
        let Some(StreamState::Publishing(_, demux)) = self.streams.get_mut(&stream_id) else {
            return Ok(()); // not (yet) an accepted publisher: drop
        };
        self.frames.clear();
        match demux.demux(tag_type, timestamp, body, &mut self.frames) {
            Ok(()) => self.bad_tags_in_a_row = 0,
            Err(RtmpError::Unsupported(reason)) => {
                self.events.push_back(ServerEvent::Skipped { reason });
                return Ok(());
            }
            // Whatever else the demuxer refuses concerns this tag alone.
            Err(e) => {
                self.frames.clear();
                return self.on_bad_tag(stream_id, e);
            }
        }
        for frame in self.frames.drain(..) {
            self.events
                .push_back(ServerEvent::Media { stream_id, frame });
        }
        Ok(())
    }

    /// Drop a malformed tag and count it; too many in a row end the
    /// connection (issue 18: one bad tag is not a dead stream).
    fn on_bad_tag(&mut self, stream_id: u32, e: RtmpError) -> Result<()> {
        self.bad_tags += 1;
        self.bad_tags_in_a_row += 1;
        if self.bad_tags_in_a_row > MAX_CONSECUTIVE_BAD_TAGS {
            return Err(RtmpError::limit(
                "malformed tags in a row",
                self.bad_tags_in_a_row.into(),
                MAX_CONSECUTIVE_BAD_TAGS.into(),
            ));
        }
        self.events.push_back(ServerEvent::BadTag {
            stream_id,
            reason: e.to_string(),
        });
        Ok(())
    }

    fn result(&mut self, txn: f64, obj: Amf0Value, args: Vec<Amf0Value>) {
        if txn != 0.0 {
            self.core
                .send_command(0, &Command::new("_result", txn, obj, args));
        }
    }

    fn on_command(&mut self, msg_stream: u32, c: Command) -> Result<()> {
        let txn = c.transaction_id;
        match c.name.as_str() {
            "connect" => {
                if self.state != ConnState::AwaitConnect {
                    return Err(RtmpError::protocol("connect sent twice"));
                }
                self.connect_txn = txn;
                self.state = ConnState::ConnectPending;
                // Moved, not cloned: the event owns the command object.
                let o = c.command_object;
                self.events.push_back(ServerEvent::ConnectRequested {
                    app: o
                        .get_str("app")
                        .unwrap_or("")
                        .trim_end_matches('/')
                        .to_owned(),
                    tc_url: o.get_str("tcUrl").map(str::to_owned),
                    object_encoding: o.get_f64("objectEncoding").unwrap_or(0.0),
                    command_object: o,
                });
                return Ok(());
            }
            _ if self.state != ConnState::Connected => {
                return Err(RtmpError::protocol(format!(
                    "command {:?} before connect was accepted",
                    c.name
                )));
            }
            "createStream" => {
                if self.streams.len() >= MAX_STREAMS {
                    return Err(RtmpError::limit(
                        "message streams",
                        self.streams.len() as u64 + 1,
                        MAX_STREAMS as u64,
                    ));
                }
                let id = self.next_stream_id;
                self.next_stream_id += 1;
                self.streams.insert(id, StreamState::Created);
                self.result(txn, Amf0Value::Null, vec![Amf0Value::Number(f64::from(id))]);
            }
            "releaseStream" | "FCPublish" => {
                self.result(txn, Amf0Value::Null, vec![Amf0Value::Undefined])
            }
            "getStreamLength" => self.result(txn, Amf0Value::Null, vec![Amf0Value::Number(0.0)]),
            "publish" => {
                let Some(st) = self.streams.get_mut(&msg_stream) else {
                    return Err(RtmpError::protocol(format!(
                        "publish on unknown stream {msg_stream}"
                    )));
                };
                if !matches!(st, StreamState::Created) {
                    return Err(RtmpError::protocol("publish on a busy stream"));
                }
                let (stream_name, query) = split_query(c.arg_str(0).unwrap_or(""));
                *st = StreamState::PublishPending(stream_name.clone());
                self.events.push_back(ServerEvent::PublishRequested {
                    stream_id: msg_stream,
                    stream_name,
                    query,
                    publish_type: c.arg_str(1).unwrap_or("live").to_owned(),
                });
            }
            "play" => {
                let Some(st) = self.streams.get_mut(&msg_stream) else {
                    return Err(RtmpError::protocol(format!(
                        "play on unknown stream {msg_stream}"
                    )));
                };
                if !matches!(st, StreamState::Created) {
                    return Err(RtmpError::protocol("play on a busy stream"));
                }
                *st = StreamState::PlayPending;
                let (stream_name, query) = split_query(c.arg_str(0).unwrap_or(""));
                self.events.push_back(ServerEvent::PlayRequested {
                    stream_id: msg_stream,
                    stream_name,
                    query,
                    start: c.arg_f64(1).unwrap_or(-2.0),
                    duration: c.arg_f64(2).unwrap_or(-1.0),
                    reset: c.args.get(3).and_then(Amf0Value::as_bool).unwrap_or(true),
                });
            }
            "FCUnpublish" => {
                let name = split_query(c.arg_str(0).unwrap_or("")).0;
                let id = self.streams.iter().find_map(|(id, s)| match s {
                    StreamState::Publishing(n, _) | StreamState::PublishPending(n)
                        if *n == name =>
                    {
                        Some(*id)
                    }
                    _ => None,
                });
                if let Some(id) = id {
                    self.stop_stream(id, false);
                }
                self.result(txn, Amf0Value::Null, vec![Amf0Value::Undefined]);
            }
            "closeStream" => self.stop_stream(msg_stream, false),
            "deleteStream" => {
                let id = c.arg_f64(0).unwrap_or(f64::from(msg_stream)) as u32;
                self.stop_stream(id, true);
            }
            "pause" => {
                // §7.2.2.8: pause flag, then the stream time in ms (unused
                // on a live stream). Only a play can pause.
                if matches!(self.streams.get(&msg_stream), Some(StreamState::Playing)) {
                    let paused = c.args.first().and_then(Amf0Value::as_bool).unwrap_or(true);
                    let (code, desc) = if paused {
                        (status::PAUSE_NOTIFY, "Paused live stream.")
                    } else {
                        (status::UNPAUSE_NOTIFY, "Unpaused live stream.")
                    };
                    self.core.on_status(msg_stream, "status", code, desc);
                    self.events.push_back(ServerEvent::Pause {
                        stream_id: msg_stream,
                        paused,
                    });
                }
            }
            "seek" => {
                // §7.2.2.7. A live stream has no past to seek into: answer
                // Seek.Notify and keep playing at the live edge, as SRS and
                // nginx-rtmp do, rather than leaving the player waiting.
                if matches!(self.streams.get(&msg_stream), Some(StreamState::Playing)) {
                    self.core.on_status(
                        msg_stream,
                        "status",
                        status::SEEK_NOTIFY,
                        "Live: at the live edge.",
                    );
                }
            }
            "play2" => {
                // §7.2.2.2 (play2): the parameters are one object, with
                // `streamName`. On a stream not yet playing it is a play;
                // switching a live play to another stream is not offered.
                let params = c.args.first();
                let name = params.and_then(|o| o.get_str("streamName")).unwrap_or("");
                match self.streams.get_mut(&msg_stream) {
                    Some(st @ StreamState::Created) if !name.is_empty() => {
                        *st = StreamState::PlayPending;
                        let (stream_name, query) = split_query(name);
                        self.events.push_back(ServerEvent::PlayRequested {
                            stream_id: msg_stream,
                            stream_name,
                            query,
                            start: params.and_then(|o| o.get_f64("start")).unwrap_or(-2.0),
                            duration: params.and_then(|o| o.get_f64("len")).unwrap_or(-1.0),
                            reset: true,
                        });
                    }
                    _ => self.core.on_status(
                        msg_stream,
                        "error",
                        status::PLAY_FAILED,
                        "play2 transitions are not supported on live streams",
                    ),
                }
            }
            "FCSubscribe" | "FCUnsubscribe" => {
                // Akamai-style clients (librtmp's `subscribe`) announce the
                // live stream they will play and expect `onFCSubscribe`
                // (`onFCUnsubscribe`) back, as Flash Media Server sends; the
                // play itself follows with `play`. nginx-rtmp ignores them.
                let name = c.arg_str(0).unwrap_or("");
                let (answer, code) = if c.name == "FCSubscribe" {
                    ("onFCSubscribe", status::PLAY_START)
                } else {
                    ("onFCUnsubscribe", status::PLAY_STOP)
                };
                let info = status_object("status", code, name);
                self.result(txn, Amf0Value::Null, vec![Amf0Value::Undefined]);
                self.core
                    .send_command(0, &Command::new(answer, 0.0, Amf0Value::Null, vec![info]));
            }
            "receiveAudio" | "receiveVideo" => {
                self.events.push_back(ServerEvent::ReceiveMedia {
                    stream_id: msg_stream,
                    audio: c.name == "receiveAudio",
                    enabled: c.args.first().and_then(Amf0Value::as_bool).unwrap_or(true),
                });
            }
            _ => {} // _checkbw, _result, onBWDone, ...
        }
        Ok(())
    }

    fn stop_stream(&mut self, id: u32, delete: bool) {
        let ev = match self.streams.get(&id) {
            Some(StreamState::Publishing(..)) => {
                self.core.on_status(
                    id,
                    "status",
                    status::UNPUBLISH_SUCCESS,
                    "Stopped publishing.",
                );
                Some(ServerEvent::Unpublished { stream_id: id })
            }
            Some(StreamState::Playing) => Some(ServerEvent::PlayStopped { stream_id: id }),
            _ => None,
        };
        if let Some(ev) = ev {
            self.events.push_back(ev);
        }
        if delete {
            self.streams.remove(&id);
        } else if let Some(s) = self.streams.get_mut(&id) {
            *s = StreamState::Created;
        }
    }

    /// Accept the pending `connect`: window size, peer bandwidth, chunk
    /// size, and the `_result` with `NetConnection.Connect.Success`. Then
    /// handles what the client pipelined after it (new events may follow);
    /// an error there means the connection must be closed.
    pub fn accept_connect(&mut self) -> Result<()> {
        if self.state != ConnState::ConnectPending {
            return Err(RtmpError::InvalidState("no connect is pending"));
        }
        self.state = ConnState::Connected;
        let c = &mut self.core;
        c.decoder.restrict(PRE_PUBLISH);
        c.send_control(type_id::WINDOW_ACK_SIZE, self.cfg.window_ack_size);
        let mut bw = BytesMut::new();
        bw.put_u32(self.cfg.window_ack_size);
        bw.put_u8(2); // dynamic (§5.4.5)
        c.send(csid::CONTROL, type_id::SET_PEER_BANDWIDTH, 0, 0, &bw);
        c.set_chunk_size(self.cfg.chunk_size);
        // Enhanced RTMP (v1, "NetConnection connect"): the server names the
        // codecs it takes and relays in its `fourCcList`, so a client
        // knows what it may send and receive.
        let props = Amf0Value::object([
            ("fmsVer", Amf0Value::string("FMS/3,5,3,888")),
            ("capabilities", Amf0Value::Number(127.0)),
            ("mode", Amf0Value::Number(1.0)),
            (
                "fourCcList",
                Amf0Value::StrictArray(
                    SERVER_FOURCCS
                        .iter()
                        .map(|f| Amf0Value::string(*f))
                        .collect(),
                ),
            ),
        ]);
        let Amf0Value::Object(mut info) =
            status_object("status", status::CONNECT_SUCCESS, "Connection succeeded.")
        else {
            return Err(RtmpError::InvalidState("status object"));
        };
        info.push(("objectEncoding".into(), Amf0Value::Number(0.0)));
        c.send_command(
            0,
            &Command::new(
                "_result",
                self.connect_txn,
                props,
                vec![Amf0Value::Object(info)],
            ),
        );
        // What the client pipelined after `connect` (createStream, play...).
        self.process_input()
    }

    /// Refuse the pending `connect` with `NetConnection.Connect.Rejected`
    /// and `reason`. The driver should flush and close.
    pub fn reject_connect(&mut self, reason: &str) {
        self.state = ConnState::Rejected;
        let c = Command::new(
            "_error",
            self.connect_txn,
            Amf0Value::Null,
            vec![status_object("error", status::CONNECT_REJECTED, reason)],
        );
        self.core.send_command(0, &c);
    }

    /// Accept a pending publish: StreamBegin and `NetStream.Publish.Start`.
    /// Then handles what the client pipelined after it (metadata and
    /// sequence headers become [`ServerEvent::Media`]).
    pub fn accept_publish(&mut self, stream_id: u32) -> Result<()> {
        let Some(st) = self.streams.get_mut(&stream_id) else {
            return Err(RtmpError::InvalidState("unknown stream"));
        };
        let StreamState::PublishPending(name) = st else {
            return Err(RtmpError::InvalidState(
                "no publish is pending on this stream",
            ));
        };
        let name = std::mem::take(name);
        let desc = format!("{name} is now published.");
        *st = StreamState::Publishing(name, Box::default());
        // Large messages (media) from now on.
        self.core.decoder.lift_restriction();
        self.core
            .send_user_control(&UserControl::StreamBegin(stream_id));
        self.core
            .on_status(stream_id, "status", status::PUBLISH_START, &desc);
        // Metadata and sequence headers sent right behind `publish`.
        self.process_input()
    }

    /// Refuse a pending publish with `code` (e.g.
    /// [`status::PUBLISH_BAD_NAME`]) and `description`, then handle what
    /// the client pipelined after it (its media is dropped: the stream is
    /// not publishing); an error there means the connection must be closed.
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) -> Result<()> {
        if let Some(st) = self.streams.get_mut(&stream_id) {
            *st = StreamState::Created;
        }
        self.core.on_status(stream_id, "error", code, description);
        self.process_input()
    }

    /// Accept a pending play: StreamBegin, `Play.Reset` (if `reset`),
    /// `Play.Start` and `|RtmpSampleAccess`, then handle what the client
    /// pipelined after it. Then send frames with
    /// [`send_frame`](Self::send_frame).
    pub fn accept_play(&mut self, stream_id: u32, reset: bool) -> Result<()> {
        let Some(st) = self.streams.get_mut(&stream_id) else {
            return Err(RtmpError::InvalidState("unknown stream"));
        };
        if !matches!(st, StreamState::PlayPending) {
            return Err(RtmpError::InvalidState("no play is pending on this stream"));
        }
        *st = StreamState::Playing;
        let c = &mut self.core;
        // No StreamIsRecorded (user control 4, RTMP 1.0 §7.1.7): every
        // stream this server plays is live, and a player told otherwise may
        // offer seeking.
        c.send_user_control(&UserControl::StreamBegin(stream_id));
        if reset {
            c.on_status(
                stream_id,
                "status",
                status::PLAY_RESET,
                "Playing and resetting.",
            );
        }
        c.on_status(stream_id, "status", status::PLAY_START, "Started playing.");
        let mut b = BytesMut::new();
        for v in [
            Amf0Value::string("|RtmpSampleAccess"),
            Amf0Value::Boolean(true),
            Amf0Value::Boolean(true),
        ] {
            v.encode(&mut b);
        }
        c.send(csid::DATA, type_id::DATA_AMF0, stream_id, 0, &b);
        self.process_input()
    }

    /// Refuse a pending play with `code` (e.g.
    /// [`status::PLAY_STREAM_NOT_FOUND`]) and `description`, then handle
    /// what the client pipelined after it; an error there means the
    /// connection must be closed.
    pub fn reject_play(&mut self, stream_id: u32, code: &str, description: &str) -> Result<()> {
        if let Some(st) = self.streams.get_mut(&stream_id) {
            *st = StreamState::Created;
        }
        self.core.on_status(stream_id, "error", code, description);
        self.process_input()
    }

    /// Send an `onStatus` on `stream_id` (e.g. `Play.UnpublishNotify`).
    pub fn send_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.core.on_status(stream_id, level, code, description);
    }

    /// Send a user control event (StreamEOF, StreamBegin, PingRequest).
    pub fn send_user_control(&mut self, event: &UserControl) {
        self.core.send_user_control(event);
    }

    /// Send a frame to a player on `stream_id`. The payload is not copied
    /// when taken with [`poll_transmit_vectored`](Self::poll_transmit_vectored).
    pub fn send_frame(&mut self, stream_id: u32, frame: &MediaFrame) -> Result<()> {
        self.core.send_frame(stream_id, frame)
    }

    /// Send a frame shared with the bus to a player on `stream_id` at the
    /// player's `dts_ms`/`pts_ms`: the chunk and FLV headers are written
    /// into the session's buffer and the payload is referenced, so a
    /// frame costs no allocation and no copy per player.
    pub fn send_frame_at(
        &mut self,
        stream_id: u32,
        frame: &Arc<MediaFrame>,
        dts_ms: i64,
        pts_ms: i64,
    ) -> Result<()> {
        self.core.send_frame_at(stream_id, frame, dts_ms, pts_ms)
    }
}

/// Something the client session learned from the server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// `connect` succeeded.
    Connected,
    /// `NetStream.Publish.Start`: send frames with [`ClientSession::send_frame`].
    PublishStarted {
        /// The message stream.
        stream_id: u32,
    },
    /// `NetStream.Play.Start`.
    PlayStarted {
        /// The message stream.
        stream_id: u32,
    },
    /// A frame from the server while playing.
    Media(MediaFrame),
    /// Any other `onStatus` (UnpublishNotify, PublishNotify, Reset, ...).
    Status {
        /// `status`, `warning` or `error`.
        level: String,
        /// The code.
        code: String,
        /// The description.
        description: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Intent {
    Publish(String),
    Play(String),
}

/// The client end of one RTMP connection (publish or play one stream).
#[derive(Debug)]
pub struct ClientSession {
    hs: ClientHandshake,
    handshaken: bool,
    core: Core,
    cfg: SessionConfig,
    app: String,
    tc_url: String,
    intent: Option<Intent>,
    stream_id: Option<u32>,
    events: VecDeque<ClientEvent>,
    demux: TagDemuxer,
    frames: Vec<MediaFrame>,
}

const TXN_CONNECT: f64 = 1.0;
const TXN_CREATE_STREAM: f64 = 4.0;

impl ClientSession {
    /// A client for `app` at `tc_url` (`rtmp://host:port/app`). Call
    /// [`publish`](Self::publish) or [`play`](Self::play), then pump bytes.
    pub fn new(app: &str, tc_url: &str, cfg: SessionConfig) -> Self {
        let mut s = Self {
            hs: ClientHandshake::new(true),
            handshaken: false,
            core: Core::new(&cfg),
            cfg,
            app: app.to_owned(),
            tc_url: tc_url.to_owned(),
            intent: None,
            stream_id: None,
            events: VecDeque::new(),
            demux: TagDemuxer::new(),
            frames: Vec::new(),
        };
        let mut out = BytesMut::new();
        s.hs.start(&mut out);
        s.core.tx.push_copy(&out);
        s
    }

    /// Publish `stream_name` (may carry `?query`) once connected.
    pub fn publish(&mut self, stream_name: &str) {
        self.intent = Some(Intent::Publish(stream_name.to_owned()));
    }

    /// Play `stream_name` once connected.
    pub fn play(&mut self, stream_name: &str) {
        self.intent = Some(Intent::Play(stream_name.to_owned()));
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Move queued outgoing bytes into `out`.
    pub fn poll_transmit(&mut self, out: &mut BytesMut) -> usize {
        self.core.poll_transmit(out)
    }

    /// Move queued outgoing buffers into `out` (payloads shared).
    pub fn poll_transmit_vectored(&mut self, out: &mut Vec<Bytes>) -> usize {
        self.core.poll_transmit_vectored(out)
    }

    /// Send a frame while publishing.
    pub fn send_frame(&mut self, frame: &MediaFrame) -> Result<()> {
        let id = self
            .stream_id
            .ok_or(RtmpError::InvalidState("not publishing"))?;
        if frame.frame_type == arcly_core::FrameType::Data
            && frame.codec == arcly_core::CodecId::Amf0Data
            && !frame.is_data_event()
        {
            // Metadata goes out as @setDataFrame (a data event as it came).
            let body = flv::set_data_frame(&frame.payload);
            self.core.send(
                csid::DATA,
                type_id::DATA_AMF0,
                id,
                frame.dts_ms() as u32,
                &body,
            );
            return Ok(());
        }
        self.core.send_frame(id, frame)
    }

    /// While playing, pause (`true`) or resume (`false`) the play
    /// (`pause`, RTMP 1.0 §7.2.2.8); the server answers with
    /// `NetStream.Pause.Notify` / `NetStream.Unpause.Notify`.
    pub fn pause(&mut self, paused: bool) -> Result<()> {
        let id = self
            .stream_id
            .ok_or(RtmpError::InvalidState("not playing"))?;
        let c = Command::new(
            "pause",
            0.0,
            Amf0Value::Null,
            vec![Amf0Value::Boolean(paused), Amf0Value::Number(0.0)],
        );
        self.core.send_command(id, &c);
        Ok(())
    }

    /// While playing, ask the server to stop or resume sending audio
    /// (`receiveAudio`) or video (`receiveVideo`).
    pub fn receive_media(&mut self, audio: bool, enabled: bool) -> Result<()> {
        let id = self
            .stream_id
            .ok_or(RtmpError::InvalidState("not playing"))?;
        let name = if audio {
            "receiveAudio"
        } else {
            "receiveVideo"
        };
        let c = Command::new(
            name,
            0.0,
            Amf0Value::Null,
            vec![Amf0Value::Boolean(enabled)],
        );
        self.core.send_command(id, &c);
        Ok(())
    }

    /// Send `FCUnpublish`/`deleteStream` (publisher) or `deleteStream` (player).
    pub fn close(&mut self) {
        if let Some(id) = self.stream_id.take() {
            if let Some(Intent::Publish(name)) = &self.intent {
                let c = Command::new(
                    "FCUnpublish",
                    0.0,
                    Amf0Value::Null,
                    vec![Amf0Value::string(name.as_str())],
                );
                self.core.send_command(0, &c);
            }
            let c = Command::new(
                "deleteStream",
                0.0,
                Amf0Value::Null,
                vec![Amf0Value::Number(f64::from(id))],
            );
            self.core.send_command(0, &c);
        }
    }

    /// Feed bytes from the server.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<()> {
        self.core.input.extend_from_slice(data);
        if !self.handshaken {
            let mut out = BytesMut::new();
            let done = self.hs.handle(&mut self.core.input, &mut out)?;
            if !out.is_empty() {
                self.core.tx.push_copy(&out);
            }
            if !done {
                return Ok(());
            }
            self.handshaken = true;
            self.core.set_chunk_size(self.cfg.chunk_size);
            let obj = Amf0Value::object([
                ("app", Amf0Value::string(self.app.as_str())),
                ("type", Amf0Value::string("nonprivate")),
                (
                    "flashVer",
                    Amf0Value::string("FMLE/3.0 (compatible; arcly)"),
                ),
                ("tcUrl", Amf0Value::string(self.tc_url.as_str())),
                (
                    "fourCcList",
                    Amf0Value::StrictArray(
                        ["avc1", "hvc1", "av01", "vp09", "Opus", "mp4a"]
                            .map(Amf0Value::string)
                            .to_vec(),
                    ),
                ),
            ]);
            self.core
                .send_command(0, &Command::new("connect", TXN_CONNECT, obj, vec![]));
        } else {
            self.core.account(data.len());
        }
        while let Some(m) = self.core.next_message()? {
            self.on_message(m)?;
        }
        Ok(())
    }

    fn on_message(&mut self, m: RawMessage) -> Result<()> {
        match m.type_id {
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let c = Command::parse(&m.payload, m.type_id == type_id::COMMAND_AMF3)?;
                self.on_command(c)
            }
            type_id::AUDIO | type_id::VIDEO | type_id::DATA_AMF0 => {
                self.frames.clear();
                let t = if m.type_id == type_id::DATA_AMF0 {
                    flv::TAG_SCRIPT
                } else {
                    m.type_id
                };
                match self
                    .demux
                    .demux(t, m.timestamp, m.payload, &mut self.frames)
                {
                    Ok(()) | Err(RtmpError::Unsupported(_)) => {}
                    Err(e) => return Err(e),
                }
                self.events
                    .extend(self.frames.drain(..).map(ClientEvent::Media));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn on_command(&mut self, c: Command) -> Result<()> {
        let info = c.args.first();
        let field = |k: &str| info.and_then(|i| i.get_str(k)).unwrap_or("").to_owned();
        match c.name.as_str() {
            "_result" if c.transaction_id == TXN_CONNECT => {
                self.events.push_back(ClientEvent::Connected);
                if self.intent.is_some() {
                    if let Some(Intent::Publish(name)) = &self.intent {
                        let n = Amf0Value::string(name.as_str());
                        self.core.send_command(
                            0,
                            &Command::new("releaseStream", 2.0, Amf0Value::Null, vec![n.clone()]),
                        );
                        self.core.send_command(
                            0,
                            &Command::new("FCPublish", 3.0, Amf0Value::Null, vec![n]),
                        );
                    }
                    self.core.send_command(
                        0,
                        &Command::new("createStream", TXN_CREATE_STREAM, Amf0Value::Null, vec![]),
                    );
                }
            }
            "_result" if c.transaction_id == TXN_CREATE_STREAM => {
                let id = c
                    .arg_f64(0)
                    .ok_or_else(|| RtmpError::protocol("createStream result without an id"))?
                    as u32;
                self.stream_id = Some(id);
                let cmd = match &self.intent {
                    Some(Intent::Publish(n)) => Command::new(
                        "publish",
                        5.0,
                        Amf0Value::Null,
                        vec![Amf0Value::string(n.as_str()), Amf0Value::string("live")],
                    ),
                    Some(Intent::Play(n)) => {
                        self.core.send_user_control(&UserControl::SetBufferLength {
                            stream_id: id,
                            millis: 1000,
                        });
                        Command::new(
                            "play",
                            5.0,
                            Amf0Value::Null,
                            vec![Amf0Value::string(n.as_str()), Amf0Value::Number(-2.0)],
                        )
                    }
                    None => return Ok(()),
                };
                self.core.send_command(id, &cmd);
            }
            "_error" => {
                return Err(RtmpError::Rejected {
                    code: field("code"),
                    description: field("description"),
                });
            }
            "onStatus" => {
                let (level, code) = (field("level"), field("code"));
                let id = self.stream_id.unwrap_or(0);
                if code == status::PUBLISH_START {
                    self.events
                        .push_back(ClientEvent::PublishStarted { stream_id: id });
                } else if code == status::PLAY_START {
                    self.events
                        .push_back(ClientEvent::PlayStarted { stream_id: id });
                } else if level == "error" {
                    return Err(RtmpError::Rejected {
                        code,
                        description: field("description"),
                    });
                } else {
                    self.events.push_back(ClientEvent::Status {
                        level,
                        code,
                        description: field("description"),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcly_core::{CodecId, FrameFlags};

    fn pump(c: &mut ClientSession, s: &mut ServerSession) {
        for _ in 0..8 {
            let mut b = BytesMut::new();
            c.poll_transmit(&mut b);
            s.handle_input(&b).unwrap();
            let mut b = BytesMut::new();
            s.poll_transmit(&mut b);
            c.handle_input(&b).unwrap();
        }
    }

    #[test]
    fn publish_and_play_without_sockets() {
        let mut s = ServerSession::default();
        let mut c = ClientSession::new("live", "rtmp://x/live", SessionConfig::default());
        c.publish("cam?token=1");
        pump(&mut c, &mut s);
        let Some(ServerEvent::ConnectRequested { app, tc_url, .. }) = s.poll_event() else {
            panic!()
        };
        assert_eq!(
            (app.as_str(), tc_url.as_deref()),
            ("live", Some("rtmp://x/live"))
        );
        s.accept_connect().unwrap();
        pump(&mut c, &mut s);
        assert_eq!(c.poll_event(), Some(ClientEvent::Connected));
        let Some(ServerEvent::PublishRequested {
            stream_id,
            stream_name,
            query,
            ..
        }) = s.poll_event()
        else {
            panic!()
        };
        assert_eq!(
            (stream_name.as_str(), query.as_deref()),
            ("cam", Some("token=1"))
        );
        s.accept_publish(stream_id).unwrap();
        pump(&mut c, &mut s);
        assert_eq!(
            c.poll_event(),
            Some(ClientEvent::PublishStarted { stream_id })
        );
        let cfg = MediaFrame::config(
            CodecId::H264,
            0,
            Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff]),
        );
        let key = MediaFrame::video(
            CodecId::H264,
            0,
            80,
            Bytes::from(vec![0, 0, 0, 3, 0x65, 1, 2]),
        )
        .with_flags(FrameFlags::KEYFRAME);
        let big = MediaFrame::video(
            CodecId::H264,
            0x0100_0000,
            0x0100_0000,
            Bytes::from(vec![7u8; 200_000]),
        );
        let meta = MediaFrame::metadata(
            0,
            crate::amf0::encode_all(&[
                Amf0Value::string("onMetaData"),
                Amf0Value::EcmaArray(vec![]),
            ]),
        );
        for f in [&meta, &cfg, &key, &big] {
            c.send_frame(f).unwrap();
        }
        pump(&mut c, &mut s);
        let got: Vec<_> = std::iter::from_fn(|| s.poll_event())
            .filter_map(|e| {
                if let ServerEvent::Media { frame, .. } = e {
                    Some(frame)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(got, vec![meta, cfg, key, big]);
        c.close();
        pump(&mut c, &mut s);
        assert_eq!(s.poll_event(), Some(ServerEvent::Unpublished { stream_id }));
    }

    /// A client session publishing "cam" to `s`; returns its stream id.
    fn publishing(s: &mut ServerSession) -> (ClientSession, u32) {
        let mut c = ClientSession::new("live", "rtmp://x/live", SessionConfig::default());
        c.publish("cam");
        pump(&mut c, s);
        assert!(matches!(
            s.poll_event(),
            Some(ServerEvent::ConnectRequested { .. })
        ));
        s.accept_connect().unwrap();
        pump(&mut c, s);
        let Some(ServerEvent::PublishRequested { stream_id, .. }) = s.poll_event() else {
            panic!("no publish")
        };
        s.accept_publish(stream_id).unwrap();
        pump(&mut c, s);
        (c, stream_id)
    }

    /// Issue 18 item 6: a malformed tag (unknown AVCPacketType, truncated
    /// body) is dropped and counted, and the stream goes on; only
    /// [`MAX_CONSECUTIVE_BAD_TAGS`] in a row end the connection.
    #[test]
    fn a_bad_tag_is_dropped_and_counted_not_fatal() {
        let mut s = ServerSession::default();
        let (mut c, sid) = publishing(&mut s);
        let send_raw = |c: &mut ClientSession, s: &mut ServerSession, body: &[u8]| {
            c.core.send(csid::VIDEO, type_id::VIDEO, sid, 40, body);
            let mut b = BytesMut::new();
            c.poll_transmit(&mut b);
            s.handle_input(&b)
        };
        // AVCPacketType 5 does not exist (FLV 10.1 §E.4.3.1).
        send_raw(&mut c, &mut s, &[0x17, 0x05, 0, 0, 0, 1, 2, 3]).expect("unknown AVCPacketType");
        // A keyframe cut short inside its CompositionTime.
        send_raw(&mut c, &mut s, &[0x17, 0x01, 0]).expect("truncated tag");
        // Then a good keyframe: it gets through.
        let key = MediaFrame::video(
            CodecId::H264,
            80,
            80,
            Bytes::from(vec![0, 0, 0, 2, 0x65, 1]),
        )
        .with_flags(FrameFlags::KEYFRAME);
        c.send_frame(&key).unwrap();
        pump(&mut c, &mut s);
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        let bad = events
            .iter()
            .filter(|e| matches!(e, ServerEvent::BadTag { stream_id, .. } if *stream_id == sid))
            .count();
        assert_eq!(bad, 2, "{events:?}");
        assert!(
            events
                .iter()
                .any(|e| matches!(e, ServerEvent::Media { frame, .. } if *frame == key)),
            "the stream goes on after bad tags: {events:?}"
        );
        assert_eq!(s.bad_tags(), 2);
        // The bound counts bad tags in a row, reset by a good one.
        for i in 0..MAX_CONSECUTIVE_BAD_TAGS {
            send_raw(&mut c, &mut s, &[0x17, 0x09]).unwrap_or_else(|e| panic!("bad tag {i}: {e}"));
        }
        match send_raw(&mut c, &mut s, &[0x17, 0x09]) {
            Err(RtmpError::Limit { what, .. }) => assert_eq!(what, "malformed tags in a row"),
            other => panic!(
                "{} bad tags in a row were accepted: {other:?}",
                MAX_CONSECUTIVE_BAD_TAGS + 1
            ),
        }
    }

    /// The commands and controls a server sent, as `name code` for
    /// commands and `uc N` for user control events.
    fn sent(s: &mut ServerSession) -> Vec<String> {
        let mut out = BytesMut::new();
        s.poll_transmit(&mut out);
        let mut dec = ChunkDecoder::default();
        let mut v = Vec::new();
        while let Some(m) = dec.decode(&mut out).unwrap() {
            match m.type_id {
                type_id::SET_CHUNK_SIZE => dec
                    .set_chunk_size(message::parse_u32_body(&m.payload).unwrap())
                    .unwrap(),
                type_id::USER_CONTROL => v.push(format!(
                    "uc {}",
                    u16::from_be_bytes([m.payload[0], m.payload[1]])
                )),
                type_id::COMMAND_AMF0 => {
                    let c = Command::parse(&m.payload, false).unwrap();
                    let code = c.args.first().and_then(|i| i.get_str("code")).unwrap_or("");
                    v.push(format!("{} {code}", c.name));
                }
                _ => {}
            }
        }
        v
    }

    /// Issue 18 item 12: no StreamIsRecorded for a live play; `pause` and
    /// `FCSubscribe` are answered.
    #[test]
    fn live_plays_are_not_recorded_and_pause_and_fcsubscribe_are_answered() {
        let mut s = handshaken();
        let wire = connect_then(|c| {
            c.send_command(
                0,
                &Command::new(
                    "FCSubscribe",
                    0.0,
                    Amf0Value::Null,
                    vec![Amf0Value::string("cam")],
                ),
            );
            c.send_command(
                0,
                &Command::new("createStream", 2.0, Amf0Value::Null, vec![]),
            );
            c.send_command(
                1,
                &Command::new("play", 3.0, Amf0Value::Null, vec![Amf0Value::string("cam")]),
            );
        });
        s.handle_input(&wire).unwrap();
        assert!(matches!(
            s.poll_event(),
            Some(ServerEvent::ConnectRequested { .. })
        ));
        s.accept_connect().unwrap();
        assert!(matches!(
            s.poll_event(),
            Some(ServerEvent::PlayRequested { .. })
        ));
        s.accept_play(1, false).unwrap();
        let got = sent(&mut s);
        assert!(
            got.contains(&"onFCSubscribe NetStream.Play.Start".to_owned()),
            "{got:?}"
        );
        assert!(got.contains(&"uc 0".to_owned()), "StreamBegin: {got:?}");
        assert!(
            !got.contains(&"uc 4".to_owned()),
            "StreamIsRecorded for a live play: {got:?}"
        );
        let pause = |flag: bool| {
            let mut core = Core::new(&SessionConfig::default());
            core.send_command(
                1,
                &Command::new(
                    "pause",
                    0.0,
                    Amf0Value::Null,
                    vec![Amf0Value::Boolean(flag), Amf0Value::Number(1234.0)],
                ),
            );
            let mut b = BytesMut::new();
            core.poll_transmit(&mut b);
            b
        };
        s.handle_input(&pause(true)).unwrap();
        assert_eq!(
            s.poll_event(),
            Some(ServerEvent::Pause {
                stream_id: 1,
                paused: true
            })
        );
        assert_eq!(sent(&mut s), ["onStatus NetStream.Pause.Notify"]);
        s.handle_input(&pause(false)).unwrap();
        assert_eq!(
            s.poll_event(),
            Some(ServerEvent::Pause {
                stream_id: 1,
                paused: false
            })
        );
        assert_eq!(sent(&mut s), ["onStatus NetStream.Unpause.Notify"]);
    }

    /// Issue 18 item 12: `seek` on a live play is answered and the play
    /// goes on; `play2` on a new stream plays; the connect `_result`
    /// advertises the server's FourCCs.
    #[test]
    fn seek_play2_and_the_servers_fourcc_list() {
        let mut s = handshaken();
        let wire = connect_then(|c| {
            c.send_command(
                0,
                &Command::new("createStream", 2.0, Amf0Value::Null, vec![]),
            );
            c.send_command(
                1,
                &Command::new(
                    "play2",
                    3.0,
                    Amf0Value::Null,
                    vec![Amf0Value::object([
                        ("streamName", Amf0Value::string("cam?token=t")),
                        ("start", Amf0Value::Number(-1.0)),
                    ])],
                ),
            );
        });
        s.handle_input(&wire).unwrap();
        assert!(matches!(
            s.poll_event(),
            Some(ServerEvent::ConnectRequested { .. })
        ));
        s.accept_connect().unwrap();
        // The connect _result names the codecs.
        let mut out = BytesMut::new();
        s.poll_transmit(&mut out);
        let mut dec = ChunkDecoder::default();
        let mut fourccs = None;
        while let Some(m) = dec.decode(&mut out).unwrap() {
            if m.type_id == type_id::SET_CHUNK_SIZE {
                dec.set_chunk_size(message::parse_u32_body(&m.payload).unwrap())
                    .unwrap();
            }
            if m.type_id == type_id::COMMAND_AMF0 {
                let c = Command::parse(&m.payload, false).unwrap();
                if c.name == "_result" {
                    if let Some(Amf0Value::StrictArray(v)) = c.command_object.get("fourCcList") {
                        fourccs = Some(
                            v.iter()
                                .filter_map(Amf0Value::as_str)
                                .map(str::to_owned)
                                .collect::<Vec<_>>(),
                        );
                    }
                }
            }
        }
        let fourccs = fourccs.expect("no fourCcList in the connect _result");
        assert!(fourccs.iter().any(|f| f == "hvc1") && fourccs.iter().any(|f| f == "avc1"));
        match s.poll_event() {
            Some(ServerEvent::PlayRequested {
                stream_name, query, ..
            }) => {
                assert_eq!(
                    (stream_name.as_str(), query.as_deref()),
                    ("cam", Some("token=t"))
                );
            }
            other => panic!("play2 did not play: {other:?}"),
        }
        s.accept_play(1, false).unwrap();
        let _ = sent(&mut s);
        let mut core = Core::new(&SessionConfig::default());
        core.send_command(
            1,
            &Command::new(
                "seek",
                0.0,
                Amf0Value::Null,
                vec![Amf0Value::Number(5000.0)],
            ),
        );
        let mut b = BytesMut::new();
        core.poll_transmit(&mut b);
        s.handle_input(&b).unwrap();
        assert_eq!(sent(&mut s), ["onStatus NetStream.Seek.Notify"]);
        assert!(s.poll_event().is_none(), "seek must not stop the play");
    }

    #[test]
    fn rejections_reach_the_client() {
        let mut s = ServerSession::default();
        let mut c = ClientSession::new("live", "rtmp://x/live", SessionConfig::default());
        c.play("nothing");
        pump(&mut c, &mut s);
        assert!(matches!(
            s.poll_event(),
            Some(ServerEvent::ConnectRequested { .. })
        ));
        s.reject_connect("app not configured");
        let mut b = BytesMut::new();
        s.poll_transmit(&mut b);
        match c.handle_input(&b) {
            Err(RtmpError::Rejected { code, description }) => {
                assert_eq!(code, status::CONNECT_REJECTED);
                assert_eq!(description, "app not configured");
            }
            other => panic!("{other:?}"),
        }
    }

    /// The client half of a plain handshake, fed to `s`: afterwards `s`
    /// takes chunk-stream bytes.
    fn handshaken() -> ServerSession {
        let mut s = ServerSession::default();
        let mut hs = vec![3u8];
        hs.extend_from_slice(&[0u8; 1536 * 2]);
        s.handle_input(&hs).unwrap();
        assert!(s.is_handshake_done());
        s.poll_transmit(&mut BytesMut::new());
        s
    }

    /// Issue 17 item 5: before `connect` is accepted a message larger than
    /// [`MAX_MESSAGE_BEFORE_PUBLISH`] is refused from its chunk header alone,
    /// before any of its payload is buffered.
    #[test]
    fn a_large_message_before_connect_is_refused_at_its_header() {
        let mut s = handshaken();
        // Set Chunk Size to the largest, then the header of a 7.9 MB
        // command message with no payload yet.
        let mut b = BytesMut::new();
        b.put_slice(&[0x02, 0, 0, 0, 0, 0, 4, type_id::SET_CHUNK_SIZE, 0, 0, 0, 0]);
        b.put_u32(0x7fff_ffff);
        b.put_slice(&[
            0x03,
            0,
            0,
            0,
            0x78,
            0x8b,
            0x60,
            type_id::COMMAND_AMF0,
            0,
            0,
            0,
            0,
        ]);
        match s.handle_input(&b) {
            Err(RtmpError::Limit { what, value, limit }) => {
                assert_eq!(what, "message size before connect is accepted");
                assert_eq!(
                    (value, limit),
                    (0x788b60, u64::from(MAX_MESSAGE_BEFORE_PUBLISH))
                );
            }
            other => panic!("a 7.9 MB message before connect was not refused: {other:?}"),
        }
        // Partial messages before connect are bounded too: eight 4 KiB
        // data messages on eight chunk streams, each left one chunk short.
        let mut s = handshaken();
        let mut b = BytesMut::new();
        for cs in 4..12u8 {
            b.put_slice(&[cs, 0, 0, 0, 0, 0x10, 0, type_id::DATA_AMF0, 0, 0, 0, 0]);
            b.put_slice(&[0u8; 128]);
            for _ in 0..30 {
                b.put_u8(0xc0 | cs);
                b.put_slice(&[0u8; 128]);
            }
        }
        assert!(
            matches!(
                s.handle_input(&b),
                Err(RtmpError::Limit {
                    what: "buffered partial messages before connect is accepted",
                    ..
                })
            ),
            "partial messages piled up before connect"
        );
    }

    /// An accepted `connect` authenticates nobody (it names an
    /// application): until a publish is accepted, large messages are
    /// still refused at their header.
    #[test]
    fn a_large_message_after_connect_but_before_publish_is_refused() {
        let mut s = handshaken();
        let mut b = connect_then(|_| {});
        s.handle_input(&b).unwrap();
        s.accept_connect().unwrap();
        b.clear();
        b.put_slice(&[0x02, 0, 0, 0, 0, 0, 4, type_id::SET_CHUNK_SIZE, 0, 0, 0, 0]);
        b.put_u32(0x7fff_ffff);
        b.put_slice(&[
            0x03,
            0,
            0,
            0,
            0x78,
            0x8b,
            0x60,
            type_id::COMMAND_AMF0,
            0,
            0,
            0,
            0,
        ]);
        match s.handle_input(&b) {
            Err(RtmpError::Limit { what, .. }) => {
                assert_eq!(what, "message size before a publish is accepted")
            }
            other => panic!("a 7.9 MB message before publish was not refused: {other:?}"),
        }
    }

    /// Once a publish is accepted the session's own limits apply again.
    #[test]
    fn large_messages_are_fine_once_publishing() {
        let mut s = ServerSession::default();
        let mut c = ClientSession::new("live", "rtmp://x/live", SessionConfig::default());
        c.publish("cam");
        pump(&mut c, &mut s);
        assert!(matches!(
            s.poll_event(),
            Some(ServerEvent::ConnectRequested { .. })
        ));
        s.accept_connect().unwrap();
        pump(&mut c, &mut s);
        let Some(ServerEvent::PublishRequested { stream_id, .. }) = s.poll_event() else {
            panic!()
        };
        s.accept_publish(stream_id).unwrap();
        pump(&mut c, &mut s);
        let big = MediaFrame::video(CodecId::H264, 40, 40, Bytes::from(vec![9u8; 1 << 20]))
            .with_flags(FrameFlags::KEYFRAME);
        c.send_frame(&big).unwrap();
        pump(&mut c, &mut s);
        let got = std::iter::from_fn(|| s.poll_event()).any(
            |e| matches!(e, ServerEvent::Media { frame, .. } if frame.payload.len() == 1 << 20),
        );
        assert!(got);
    }

    #[test]
    fn commands_before_connect_are_refused() {
        // A createStream with no connect at all.
        let mut s = handshaken();
        let mut core = Core::new(&SessionConfig::default());
        core.send_command(
            0,
            &Command::new("createStream", 2.0, Amf0Value::Null, vec![]),
        );
        let mut b = BytesMut::new();
        core.poll_transmit(&mut b);
        assert!(s.handle_input(&b).is_err());
    }

    /// What a hand-built client sends: `connect` to `live`, then `more`.
    fn connect_then(more: impl FnOnce(&mut Core)) -> BytesMut {
        let mut core = Core::new(&SessionConfig::default());
        let obj = Amf0Value::object([
            ("app", Amf0Value::string("live")),
            ("tcUrl", Amf0Value::string("rtmp://x/live")),
        ]);
        core.send_command(0, &Command::new("connect", 1.0, obj, vec![]));
        more(&mut core);
        let mut b = BytesMut::new();
        core.poll_transmit(&mut b);
        b
    }

    /// Issue 18 item 5: a player that sends `connect`, `createStream` and
    /// `play` back to back, without waiting for any answer, is served:
    /// what follows `connect` is held until `connect` is accepted.
    #[test]
    fn a_player_may_pipeline_connect_create_stream_and_play() {
        let mut s = handshaken();
        let wire = connect_then(|c| {
            c.send_command(
                0,
                &Command::new("createStream", 2.0, Amf0Value::Null, vec![]),
            );
            c.send_user_control(&UserControl::SetBufferLength {
                stream_id: 1,
                millis: 1000,
            });
            c.send_command(
                1,
                &Command::new(
                    "play",
                    3.0,
                    Amf0Value::Null,
                    vec![Amf0Value::string("cam?t=1"), Amf0Value::Number(-2.0)],
                ),
            );
        });
        // All at once, as one read.
        s.handle_input(&wire)
            .expect("pipelined commands are not a violation");
        assert!(matches!(
            s.poll_event(),
            Some(ServerEvent::ConnectRequested { .. })
        ));
        assert_eq!(
            s.poll_event(),
            None,
            "nothing past connect before it is answered"
        );
        assert!(s.is_waiting());
        s.accept_connect().unwrap();
        match s.poll_event() {
            Some(ServerEvent::PlayRequested {
                stream_id,
                stream_name,
                query,
                ..
            }) => {
                assert_eq!(stream_id, 1);
                assert_eq!(
                    (stream_name.as_str(), query.as_deref()),
                    ("cam", Some("t=1"))
                );
            }
            other => panic!("the pipelined play was lost: {other:?}"),
        }
        assert!(s.is_waiting());
        s.accept_play(1, true).unwrap();
        assert!(!s.is_waiting());
        // The answers went out in order: connect, createStream, play.
        let mut out = BytesMut::new();
        s.poll_transmit(&mut out);
        let mut dec = ChunkDecoder::default();
        let mut names = Vec::new();
        while let Some(m) = dec.decode(&mut out).unwrap() {
            match m.type_id {
                type_id::SET_CHUNK_SIZE => dec
                    .set_chunk_size(message::parse_u32_body(&m.payload).unwrap())
                    .unwrap(),
                type_id::COMMAND_AMF0 => {
                    let c = Command::parse(&m.payload, false).unwrap();
                    let code = c.args.first().and_then(|i| i.get_str("code")).unwrap_or("");
                    names.push(format!("{} {} {code}", c.name, c.transaction_id));
                }
                _ => {}
            }
        }
        assert_eq!(
            names,
            [
                "_result 1 NetConnection.Connect.Success",
                "_result 2 ",
                "onStatus 0 NetStream.Play.Reset",
                "onStatus 0 NetStream.Play.Start",
            ]
        );
    }

    /// Issue 18 item 5: a publisher that sends `publish`, `@setDataFrame`
    /// and its sequence headers back to back keeps them: they are held
    /// until the publish is accepted, then become media in order.
    #[test]
    fn a_publisher_may_pipeline_publish_metadata_and_sequence_headers() {
        let meta = MediaFrame::metadata(
            0,
            crate::amf0::encode_all(&[
                Amf0Value::string("onMetaData"),
                Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(640.0))]),
            ]),
        );
        let vcfg = MediaFrame::config(
            CodecId::H264,
            0,
            Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 0]),
        );
        let acfg = MediaFrame::config(CodecId::Aac, 0, Bytes::from_static(&[0x12, 0x10]));
        let key = MediaFrame::video(CodecId::H264, 0, 40, Bytes::from(vec![0, 0, 0, 2, 0x65, 1]))
            .with_flags(FrameFlags::KEYFRAME);
        let mut s = handshaken();
        let wire = connect_then(|c| {
            let n = || vec![Amf0Value::string("cam")];
            c.send_command(0, &Command::new("releaseStream", 2.0, Amf0Value::Null, n()));
            c.send_command(0, &Command::new("FCPublish", 3.0, Amf0Value::Null, n()));
            c.send_command(
                0,
                &Command::new("createStream", 4.0, Amf0Value::Null, vec![]),
            );
            c.send_command(
                1,
                &Command::new(
                    "publish",
                    5.0,
                    Amf0Value::Null,
                    vec![Amf0Value::string("cam"), Amf0Value::string("live")],
                ),
            );
            let body = flv::set_data_frame(&meta.payload);
            c.send(csid::DATA, type_id::DATA_AMF0, 1, 0, &body);
            for f in [&vcfg, &acfg, &key] {
                c.send_frame(1, f).unwrap();
            }
        });
        s.handle_input(&wire).unwrap();
        assert!(matches!(
            s.poll_event(),
            Some(ServerEvent::ConnectRequested { .. })
        ));
        s.accept_connect().unwrap();
        let Some(ServerEvent::PublishRequested { stream_id, .. }) = s.poll_event() else {
            panic!("the pipelined publish was lost")
        };
        assert_eq!(s.poll_event(), None);
        s.accept_publish(stream_id).unwrap();
        let media: Vec<_> = std::iter::from_fn(|| s.poll_event())
            .filter_map(|e| match e {
                ServerEvent::Media { frame, .. } => Some(frame),
                _ => None,
            })
            .collect();
        assert_eq!(media, vec![meta, vcfg, acfg, key]);
    }

    /// What a client pipelines past an unanswered step is bounded.
    #[test]
    fn pipelined_bytes_are_bounded() {
        let mut s = handshaken();
        let wire = connect_then(|c| {
            for _ in 0..5 {
                c.send(csid::DATA, type_id::DATA_AMF0, 0, 0, &[0u8; 4000]);
            }
        });
        match s.handle_input(&wire) {
            Err(RtmpError::Limit { what, .. }) => {
                assert_eq!(what, "bytes pipelined past an unanswered connect")
            }
            other => panic!("20 KB held past connect: {other:?}"),
        }
        // After connect, the bound is MAX_PIPELINED_BYTES.
        let mut s = handshaken();
        let wire = connect_then(|c| {
            c.send_command(
                0,
                &Command::new("createStream", 2.0, Amf0Value::Null, vec![]),
            );
            c.send_command(
                1,
                &Command::new("play", 3.0, Amf0Value::Null, vec![Amf0Value::string("cam")]),
            );
        });
        s.handle_input(&wire).unwrap();
        s.accept_connect().unwrap();
        assert!(s.is_waiting());
        let mut core = Core::new(&SessionConfig::default());
        for _ in 0..(MAX_PIPELINED_BYTES / 4000 + 1) {
            core.send(csid::DATA, type_id::DATA_AMF0, 1, 0, &[0u8; 4000]);
        }
        let mut b = BytesMut::new();
        core.poll_transmit(&mut b);
        assert!(matches!(
            s.handle_input(&b),
            Err(RtmpError::Limit {
                what: "bytes pipelined past an unanswered publish or play",
                ..
            })
        ));
    }
}
