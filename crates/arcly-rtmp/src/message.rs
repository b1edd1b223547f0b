//! RTMP messages above the chunk stream: protocol control (RTMP 1.0 §5.4),
//! user control (§6.2, §7.1.7) and AMF0 commands (§7.1.1, §7.2).

use crate::amf0::{self, Amf0Reader, Amf0Value};
use crate::error::{Result, RtmpError};
use bytes::{BufMut, Bytes, BytesMut};

/// Message type ids (RTMP 1.0 §5.4, §7.1).
pub mod type_id {
    /// Set Chunk Size (§5.4.1).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (§5.4.2).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (§5.4.3).
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message (§6.2).
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (§5.4.4).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (§5.4.5).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio (§7.1.4).
    pub const AUDIO: u8 = 8;
    /// Video (§7.1.5).
    pub const VIDEO: u8 = 9;
    /// AMF3 data (§7.1.2).
    pub const DATA_AMF3: u8 = 15;
    /// AMF3 command (§7.1.1).
    pub const COMMAND_AMF3: u8 = 17;
    /// AMF0 data (§7.1.2).
    pub const DATA_AMF0: u8 = 18;
    /// AMF0 command (§7.1.1).
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate (§7.1.6).
    pub const AGGREGATE: u8 = 22;
}

/// Chunk stream ids this crate sends on (the ones ffmpeg uses).
pub mod csid {
    /// Protocol and user control.
    pub const CONTROL: u32 = 2;
    /// Commands.
    pub const COMMAND: u32 = 3;
    /// Audio.
    pub const AUDIO: u32 = 4;
    /// Data (metadata).
    pub const DATA: u32 = 5;
    /// Video.
    pub const VIDEO: u32 = 6;
}

/// User control events (§7.1.7).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserControl {
    /// The stream is functional (event 0).
    StreamBegin(u32),
    /// Playback ended (event 1).
    StreamEof(u32),
    /// No more data for now (event 2).
    StreamDry(u32),
    /// The client's buffer length in milliseconds (event 3).
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in ms.
        millis: u32,
    },
    /// The stream is recorded (event 4).
    StreamIsRecorded(u32),
    /// Ping request with the server's timestamp (event 6).
    PingRequest(u32),
    /// Ping response echoing the request's timestamp (event 7).
    PingResponse(u32),
    /// Any other event.
    Other {
        /// Event type.
        event: u16,
        /// Event data.
        data: Bytes,
    },
}

impl UserControl {
    /// Parse the body of a type-4 message.
    pub fn parse(b: &Bytes) -> Result<Self> {
        let ev = b
            .get(..2)
            .ok_or_else(|| RtmpError::truncated("user control event", 2))?;
        let ev = u16::from_be_bytes([ev[0], ev[1]]);
        let u32_at = |o: usize| {
            b.get(o..o + 4)
                .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
                .ok_or_else(|| {
                    RtmpError::truncated("user control data", o + 4 - b.len().min(o + 4))
                })
        };
        Ok(match ev {
            0 => Self::StreamBegin(u32_at(2)?),
            1 => Self::StreamEof(u32_at(2)?),
            2 => Self::StreamDry(u32_at(2)?),
            3 => Self::SetBufferLength {
                stream_id: u32_at(2)?,
                millis: u32_at(6)?,
            },
            4 => Self::StreamIsRecorded(u32_at(2)?),
            6 => Self::PingRequest(u32_at(2)?),
            7 => Self::PingResponse(u32_at(2)?),
            event => Self::Other {
                event,
                data: b.slice(2..),
            },
        })
    }

    /// Encode the message body.
    pub fn encode(&self) -> Bytes {
        let mut o = BytesMut::with_capacity(10);
        let (ev, a, b) = match self {
            Self::StreamBegin(s) => (0, *s, None),
            Self::StreamEof(s) => (1, *s, None),
            Self::StreamDry(s) => (2, *s, None),
            Self::SetBufferLength { stream_id, millis } => (3, *stream_id, Some(*millis)),
            Self::StreamIsRecorded(s) => (4, *s, None),
            Self::PingRequest(t) => (6, *t, None),
            Self::PingResponse(t) => (7, *t, None),
            Self::Other { event, data } => {
                o.put_u16(*event);
                o.put_slice(data);
                return o.freeze();
            }
        };
        o.put_u16(ev);
        o.put_u32(a);
        if let Some(b) = b {
            o.put_u32(b);
        }
        o.freeze()
    }
}

/// An AMF0 command (§7.1.1): name, transaction id, command object, arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Command name (`connect`, `publish`, `_result`, `onStatus`, ...).
    pub name: String,
    /// Transaction id (0 when no answer is expected).
    pub transaction_id: f64,
    /// The command object (often `Null`).
    pub command_object: Amf0Value,
    /// Further arguments.
    pub args: Vec<Amf0Value>,
}

/// Most arguments accepted in one command.
pub const MAX_COMMAND_ARGS: usize = 64;

impl Command {
    /// A command with `name`, `transaction_id`, `command_object` and `args`.
    pub fn new(
        name: &str,
        transaction_id: f64,
        command_object: Amf0Value,
        args: Vec<Amf0Value>,
    ) -> Self {
        Self {
            name: name.into(),
            transaction_id,
            command_object,
            args,
        }
    }

    /// Parse a command message body; `amf3` for type 17, whose body starts
    /// with a format byte (0 means the rest is AMF0).
    pub fn parse(body: &[u8], amf3: bool) -> Result<Self> {
        let body = if amf3 {
            match body.split_first() {
                Some((0, rest)) => rest,
                Some(_) => return Err(RtmpError::Amf3Refused),
                None => return Err(RtmpError::truncated("AMF3 command", 1)),
            }
        } else {
            body
        };
        let mut r = Amf0Reader::new(body);
        let name = match r.next_value()? {
            Some(Amf0Value::String(s)) | Some(Amf0Value::LongString(s)) => s,
            other => {
                return Err(RtmpError::protocol(format!(
                    "command name is not a string: {other:?}"
                )))
            }
        };
        let transaction_id = r.next_value()?.and_then(|v| v.as_f64()).unwrap_or(0.0);
        let command_object = r.next_value()?.unwrap_or(Amf0Value::Null);
        let mut args = Vec::new();
        while let Some(v) = r.next_value()? {
            if args.len() >= MAX_COMMAND_ARGS {
                return Err(RtmpError::limit(
                    "command arguments",
                    args.len() as u64 + 1,
                    MAX_COMMAND_ARGS as u64,
                ));
            }
            args.push(v);
        }
        Ok(Self {
            name,
            transaction_id,
            command_object,
            args,
        })
    }

    /// Encode as an AMF0 command body.
    pub fn encode(&self) -> Bytes {
        let mut o = BytesMut::with_capacity(64);
        Amf0Value::string(self.name.as_str()).encode(&mut o);
        Amf0Value::Number(self.transaction_id).encode(&mut o);
        self.command_object.encode(&mut o);
        for a in &self.args {
            amf0::encode(a, &mut o);
        }
        o.freeze()
    }

    /// Argument `i` as a string.
    pub fn arg_str(&self, i: usize) -> Option<&str> {
        self.args.get(i)?.as_str()
    }

    /// Argument `i` as a number.
    pub fn arg_f64(&self, i: usize) -> Option<f64> {
        self.args.get(i)?.as_f64()
    }
}

/// A `{level, code, description}` info object for `onStatus`/`_result`/`_error`.
pub fn status_object(level: &str, code: &str, description: &str) -> Amf0Value {
    Amf0Value::object([
        ("level", Amf0Value::string(level)),
        ("code", Amf0Value::string(code)),
        ("description", Amf0Value::string(description)),
    ])
}

/// The body of a 4-byte-value control message (Set Chunk Size, Abort,
/// Acknowledgement, Window Acknowledgement Size).
pub fn u32_body(v: u32) -> Bytes {
    Bytes::copy_from_slice(&v.to_be_bytes())
}

/// Read the 4-byte value of a control message.
pub fn parse_u32_body(b: &[u8]) -> Result<u32> {
    let x = b
        .get(..4)
        .ok_or_else(|| RtmpError::truncated("control message", 4 - b.len().min(4)))?;
    Ok(u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

/// Status codes this crate sends and recognizes.
pub mod status {
    /// Connect succeeded.
    pub const CONNECT_SUCCESS: &str = "NetConnection.Connect.Success";
    /// Connect refused (with a description saying why).
    pub const CONNECT_REJECTED: &str = "NetConnection.Connect.Rejected";
    /// Publishing started.
    pub const PUBLISH_START: &str = "NetStream.Publish.Start";
    /// The name is already being published (or is otherwise unusable).
    pub const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";
    /// Unpublish succeeded.
    pub const UNPUBLISH_SUCCESS: &str = "NetStream.Unpublish.Success";
    /// Playback reset (playlist start).
    pub const PLAY_RESET: &str = "NetStream.Play.Reset";
    /// Playback started.
    pub const PLAY_START: &str = "NetStream.Play.Start";
    /// No such stream.
    pub const PLAY_STREAM_NOT_FOUND: &str = "NetStream.Play.StreamNotFound";
    /// The publisher went away; the player stays connected.
    pub const PLAY_UNPUBLISH_NOTIFY: &str = "NetStream.Play.UnpublishNotify";
    /// A publisher (re)started.
    pub const PLAY_PUBLISH_NOTIFY: &str = "NetStream.Play.PublishNotify";
    /// Playback stopped.
    pub const PLAY_STOP: &str = "NetStream.Play.Stop";
    /// The play was paused (answer to `pause(true)`, RTMP 1.0 §7.2.2.8).
    pub const PAUSE_NOTIFY: &str = "NetStream.Pause.Notify";
    /// The play was resumed (answer to `pause(false)`).
    pub const UNPAUSE_NOTIFY: &str = "NetStream.Unpause.Notify";
    /// Answer to `seek` (RTMP 1.0 §7.2.2.7); on a live stream the play
    /// stays at the live edge.
    pub const SEEK_NOTIFY: &str = "NetStream.Seek.Notify";
    /// The authenticator refused the publish (the description says why).
    pub const PUBLISH_UNAUTHORIZED: &str = "NetStream.Publish.Unauthorized";
    /// Publishing failed for another reason (unknown application, limits).
    pub const PUBLISH_FAILED: &str = "NetStream.Publish.Failed";
    /// The authenticator refused the play (the description says why).
    pub const PLAY_UNAUTHORIZED: &str = "NetStream.Play.Unauthorized";
    /// Playing failed for another reason (unknown application, limits).
    pub const PLAY_FAILED: &str = "NetStream.Play.Failed";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_round_trip_and_amf3_prefix() {
        let c = Command::new(
            "publish",
            5.0,
            Amf0Value::Null,
            vec![Amf0Value::string("key?t=1"), Amf0Value::string("live")],
        );
        let b = c.encode();
        assert_eq!(Command::parse(&b, false).unwrap(), c);
        let mut a3 = vec![0u8];
        a3.extend_from_slice(&b);
        assert_eq!(Command::parse(&a3, true).unwrap(), c);
        assert!(matches!(
            Command::parse(&[1, 2], true),
            Err(RtmpError::Amf3Refused)
        ));
        assert!(Command::parse(&[0x00, 0, 0, 0, 0, 0, 0, 0, 0], false).is_err());
    }

    #[test]
    fn user_control_round_trip() {
        for u in [
            UserControl::StreamBegin(1),
            UserControl::PingRequest(77),
            UserControl::SetBufferLength {
                stream_id: 1,
                millis: 3000,
            },
        ] {
            assert_eq!(UserControl::parse(&u.encode()).unwrap(), u);
        }
        assert!(UserControl::parse(&Bytes::from_static(&[0, 6, 1])).is_err());
    }
}
