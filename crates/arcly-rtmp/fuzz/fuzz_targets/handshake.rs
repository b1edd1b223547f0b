#![no_main]
use arcly_rtmp::handshake::{ClientHandshake, ServerHandshake};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut s = ServerHandshake::with_seed(1);
    let mut input = BytesMut::from(data);
    let _ = s.handle(&mut input, &mut BytesMut::new());
    let mut c = ClientHandshake::with_seed(true, 2);
    c.start(&mut BytesMut::new());
    let mut input = BytesMut::from(data);
    let _ = c.handle(&mut input, &mut BytesMut::new());
});
