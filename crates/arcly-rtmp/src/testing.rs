//! Helpers for tests and benchmarks of code built on the sessions.

use crate::error::{Result, RtmpError};
use crate::session::{ClientSession, ServerEvent, ServerSession, SessionConfig};
use bytes::BytesMut;

/// A server and a client session that went through the handshake,
/// `connect` to `live` and `play("cam")` with each other in memory, the
/// server accepting both. Returns them and the play's message stream id;
/// frames sent with [`ServerSession::send_frame_at`] on that id decode in
/// the client.
pub fn playing_pair() -> Result<(ServerSession, ClientSession, u32)> {
    let mut s = ServerSession::default();
    let mut c = ClientSession::new("live", "rtmp://x/live", SessionConfig::default());
    c.play("cam");
    let mut sid = None;
    for _ in 0..8 {
        let mut b = BytesMut::new();
        c.poll_transmit(&mut b);
        s.handle_input(&b)?;
        while let Some(e) = s.poll_event() {
            match e {
                ServerEvent::ConnectRequested { .. } => s.accept_connect()?,
                ServerEvent::PlayRequested { stream_id, .. } => {
                    s.accept_play(stream_id, true)?;
                    sid = Some(stream_id);
                }
                _ => {}
            }
        }
        let mut b = BytesMut::new();
        s.poll_transmit(&mut b);
        c.handle_input(&b)?;
    }
    let sid = sid.ok_or_else(|| RtmpError::protocol("the client never asked to play"))?;
    Ok((s, c, sid))
}
