#![no_main]
use arcly_rtmp::session::{ServerEvent, ServerSession};
use libfuzzer_sys::fuzz_target;

// A valid plain handshake followed by fuzzed chunk-stream bytes.
fuzz_target!(|data: &[u8]| {
    let mut s = ServerSession::default();
    let mut hs = vec![3u8];
    hs.extend_from_slice(&[0u8; 1536 * 2]);
    let _ = s.handle_input(&hs);
    let _ = s.handle_input(data).map(|()| {
        while let Some(e) = s.poll_event() {
            match e {
                ServerEvent::ConnectRequested { .. } => {
                    let _ = s.accept_connect();
                }
                ServerEvent::PublishRequested { stream_id, .. } => {
                    let _ = s.accept_publish(stream_id);
                }
                _ => {}
            }
        }
    });
});
