//! RTMP for arcly-stream, sans-IO.
//!
//! The protocol is a stack of state machines that take bytes and return
//! events and bytes; no I/O happens below the thin tokio client.
//!
//! - [`amf0`]: AMF0 values (commands, `onMetaData`).
//! - [`handshake`]: the plain and digest handshakes, server and client.
//! - [`chunk`]: the chunk stream decoder and (vectored) encoder.
//! - [`message`]: protocol control, user control and AMF0 commands.
//! - [`session`]: [`session::ServerSession`] and [`session::ClientSession`],
//!   the connection state machines (`handle_input` / `poll_event` /
//!   `poll_transmit`).
//! - [`flv`]: FLV and Enhanced RTMP tags to and from `arcly_core::MediaFrame`,
//!   and an FLV file/stream reader and writer.
//! - [`testing`]: sessions set up in memory for tests and benchmarks.
//! - [`client`]: a thin tokio client (`RtmpClient::publish` / `play`).
//! - [`handler`]: [`RtmpHandler`], the server: publish into and play from
//!   the registries of an `arcly_core::inbound::IngestContext`, run by the
//!   ingest layer's `TcpIngest` (`RtmpHandler::new(cfg).into_protocol(addr)`).
//!
//! ```
//! use arcly_rtmp::chunk::{ChunkDecoder, ChunkEncoder, MessageHeader};
//! use bytes::{Bytes, BytesMut};
//!
//! let mut enc = ChunkEncoder::new();
//! let mut wire = BytesMut::new();
//! let hdr = MessageHeader { csid: 6, timestamp: 40, type_id: 9, stream_id: 1 };
//! enc.write(&hdr, &[0x17; 300], &mut wire);
//!
//! let mut dec = ChunkDecoder::default();
//! let msg = dec.decode(&mut wire).unwrap().expect("one whole message");
//! assert_eq!((msg.timestamp, msg.type_id, msg.payload.len()), (40, 9, 300));
//! ```
#![forbid(unsafe_code)]

pub mod amf0;
pub mod chunk;
pub mod client;
pub mod error;
pub mod flv;
pub mod handler;
pub mod handshake;
pub mod message;
pub mod session;
pub mod testing;
mod tx;

pub use error::{Result, RtmpError};
pub use handler::{RtmpConfig, RtmpHandler, TimeJitter};
