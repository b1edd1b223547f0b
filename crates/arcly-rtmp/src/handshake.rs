//! The RTMP handshake, sans-IO, for both ends.
//!
//! Two forms exist and both are accepted:
//!
//! - **plain** (RTMP 1.0 spec §5.2): C0/S0 is the version byte `3`; C1/S1 are
//!   1536 bytes (time, zero, random); C2/S2 echo the peer's C1/S1.
//! - **digest** ("complex", the Flash Player 9 form): C1/S1 carry an
//!   HMAC-SHA256 digest at an offset derived from four bytes of the packet
//!   (schema 0: offset bytes at 8..12, digest in 12..740; schema 1: offset
//!   bytes at 772..776, digest in 776..1504), keyed with the first 30 bytes
//!   of the Flash Player key (client) or 36 bytes of the Flash Media Server
//!   key (server). C2/S2 end with an HMAC over their first 1504 bytes, keyed
//!   by the HMAC of the peer's C1/S1 digest under the full key.
//!
//! The server answers a digest C1 with a digest S1/S2 (players such as
//! ffmpeg's validate them) and anything else with the plain echo. It never
//! checks C2: ffmpeg, OBS, librtmp and GStreamer all send something
//! acceptable, and nginx-rtmp and SRS don't check it either.

use crate::error::{Result, RtmpError};
use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The RTMP version byte of C0/S0.
pub const RTMP_VERSION: u8 = 3;
/// Size of C1/S1/C2/S2.
pub const HANDSHAKE_SIZE: usize = 1536;
const DIGEST_LEN: usize = 32;

/// The Flash Player key (`"Genuine Adobe Flash Player 001"` and 32 bytes).
const FP_KEY: [u8; 62] = *b"Genuine Adobe Flash Player 001\xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";
/// The Flash Media Server key (`"Genuine Adobe Flash Media Server 001"` and 32 bytes).
const FMS_KEY: [u8; 68] = *b"Genuine Adobe Flash Media Server 001\xF0\xEE\xC2\x4A\x80\x68\xBE\xE8\x2E\x00\xD0\xD1\x02\x9E\x7E\x57\x6E\xEC\x5D\x2D\x29\x80\x6F\xAB\x93\xB8\xE6\x36\xCF\xEB\x31\xAE";
const FP_KEY_PARTIAL: usize = 30;
const FMS_KEY_PARTIAL: usize = 36;
/// The version this server announces in S1 (what nginx-rtmp sends).
const SERVER_VERSION: [u8; 4] = [0x0D, 0x0E, 0x0A, 0x0D];
/// The version this client announces in C1 (Flash Player 9.0.124.2, like ffmpeg).
const CLIENT_VERSION: [u8; 4] = [0x09, 0x00, 0x7C, 0x02];

/// Where the digest lives in a C1/S1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestSchema {
    /// Offset bytes at 8..12, digest within 12..740.
    Schema0,
    /// Offset bytes at 772..776, digest within 776..1504.
    Schema1,
}

impl DigestSchema {
    fn offset(self, pkt: &[u8; HANDSHAKE_SIZE]) -> usize {
        let base = match self {
            Self::Schema0 => 8,
            Self::Schema1 => 772,
        };
        let sum: usize = pkt[base..base + 4].iter().map(|&b| usize::from(b)).sum();
        // 728 = 764 - 4 offset bytes - 32 digest bytes.
        sum % 728 + base + 4
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    // HMAC accepts keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_hmac(),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` only fails for fixed-size-key MACs; HMAC has none.
    panic!("HMAC refused a key")
}

fn digest_of(pkt: &[u8; HANDSHAKE_SIZE], offset: usize, key: &[u8]) -> [u8; DIGEST_LEN] {
    hmac(key, &[&pkt[..offset], &pkt[offset + DIGEST_LEN..]])
}

/// Find the digest of `pkt` under `key`, trying both schemas.
fn find_digest(pkt: &[u8; HANDSHAKE_SIZE], key: &[u8]) -> Option<(DigestSchema, [u8; DIGEST_LEN])> {
    for schema in [DigestSchema::Schema0, DigestSchema::Schema1] {
        let off = schema.offset(pkt);
        let d = digest_of(pkt, off, key);
        if pkt[off..off + DIGEST_LEN] == d {
            return Some((schema, d));
        }
    }
    None
}

/// Write a digest into `pkt` under `key` using `schema`; returns it.
fn sign(pkt: &mut [u8; HANDSHAKE_SIZE], schema: DigestSchema, key: &[u8]) -> [u8; DIGEST_LEN] {
    let off = schema.offset(pkt);
    let d = digest_of(pkt, off, key);
    pkt[off..off + DIGEST_LEN].copy_from_slice(&d);
    d
}

/// A C2/S2 answering a peer digest `peer_digest`: random, ending in the
/// HMAC of the first 1504 bytes under `HMAC(full_key, peer_digest)`.
fn digest_response(
    rng: &mut Rng,
    peer_digest: &[u8; DIGEST_LEN],
    full_key: &[u8],
) -> [u8; HANDSHAKE_SIZE] {
    let mut p = [0u8; HANDSHAKE_SIZE];
    rng.fill(&mut p);
    let temp = hmac(full_key, &[peer_digest]);
    let sig = hmac(&temp, &[&p[..HANDSHAKE_SIZE - DIGEST_LEN]]);
    p[HANDSHAKE_SIZE - DIGEST_LEN..].copy_from_slice(&sig);
    p
}

/// Whether `resp` (a C2/S2) carries the signature expected for our digest.
fn response_valid(
    resp: &[u8; HANDSHAKE_SIZE],
    our_digest: &[u8; DIGEST_LEN],
    full_key: &[u8],
) -> bool {
    let temp = hmac(full_key, &[our_digest]);
    hmac(&temp, &[&resp[..HANDSHAKE_SIZE - DIGEST_LEN]])[..] == resp[HANDSHAKE_SIZE - DIGEST_LEN..]
}

/// A small xorshift generator for handshake filler (not security relevant:
/// the handshake's "random" bytes are not secrets).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn from_entropy() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        Self(h.finish() | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

fn take_packet(input: &mut BytesMut) -> Option<[u8; HANDSHAKE_SIZE]> {
    if input.len() < HANDSHAKE_SIZE {
        return None;
    }
    let mut p = [0u8; HANDSHAKE_SIZE];
    p.copy_from_slice(&input.split_to(HANDSHAKE_SIZE));
    Some(p)
}

fn take_version(input: &mut BytesMut) -> Result<Option<u8>> {
    let Some(&v) = input.first() else {
        return Ok(None);
    };
    // RTMP 1.0 §5.2.2: 3 is plain RTMP; 6 and 8 are RTMPE, which needs the
    // encrypted handshake this crate does not implement.
    if v != RTMP_VERSION {
        return Err(RtmpError::Handshake(format!(
            "unsupported RTMP version {v} in C0/S0 (only 3; RTMPE is not supported)"
        )));
    }
    let _ = input.split_to(1);
    Ok(Some(v))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    C0,
    C1,
    C2,
    Done,
}

/// Which handshake form the peer used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// RTMP 1.0 plain echo.
    Plain,
    /// Flash Player 9 digest handshake with the given schema.
    Digest(DigestSchema),
}

/// The server side: reads C0 C1 C2, writes S0 S1 S2.
#[derive(Debug)]
pub struct ServerHandshake {
    state: ServerState,
    rng: Rng,
    kind: Option<HandshakeKind>,
    epoch: u32,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    /// A fresh server handshake.
    pub fn new() -> Self {
        Self {
            state: ServerState::C0,
            rng: Rng::from_entropy(),
            kind: None,
            epoch: 0,
        }
    }

    /// A server handshake with a fixed random seed (reproducible tests).
    pub fn with_seed(seed: u64) -> Self {
        Self {
            state: ServerState::C0,
            rng: Rng(seed | 1),
            kind: None,
            epoch: 0,
        }
    }

    /// Consume what the handshake needs from `input` (bytes after C2 stay
    /// there: they are chunk-stream data) and append replies to `out`.
    /// Returns `true` once the handshake is complete.
    pub fn handle(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool> {
        loop {
            match self.state {
                ServerState::C0 => {
                    if take_version(input)?.is_none() {
                        return Ok(false);
                    }
                    self.state = ServerState::C1;
                }
                ServerState::C1 => {
                    let Some(c1) = take_packet(input) else {
                        return Ok(false);
                    };
                    self.answer_c1(&c1, out);
                    self.state = ServerState::C2;
                }
                ServerState::C2 => {
                    if take_packet(input).is_none() {
                        return Ok(false);
                    }
                    self.state = ServerState::Done;
                }
                ServerState::Done => return Ok(true),
            }
        }
    }

    fn answer_c1(&mut self, c1: &[u8; HANDSHAKE_SIZE], out: &mut BytesMut) {
        out.reserve(1 + 2 * HANDSHAKE_SIZE);
        out.put_u8(RTMP_VERSION);
        let mut s1 = [0u8; HANDSHAKE_SIZE];
        self.rng.fill(&mut s1[8..]);
        s1[..4].copy_from_slice(&self.epoch.to_be_bytes());
        // A non-zero version in C1 announces the digest form; verify it.
        let found = if c1[4..8] == [0, 0, 0, 0] {
            None
        } else {
            find_digest(c1, &FP_KEY[..FP_KEY_PARTIAL])
        };
        match found {
            Some((schema, c1_digest)) => {
                s1[4..8].copy_from_slice(&SERVER_VERSION);
                sign(&mut s1, schema, &FMS_KEY[..FMS_KEY_PARTIAL]);
                out.put_slice(&s1);
                out.put_slice(&digest_response(&mut self.rng, &c1_digest, &FMS_KEY));
                self.kind = Some(HandshakeKind::Digest(schema));
            }
            None => {
                out.put_slice(&s1);
                out.put_slice(c1);
                self.kind = Some(HandshakeKind::Plain);
            }
        }
    }

    /// The form the client used (known after C1).
    pub fn kind(&self) -> Option<HandshakeKind> {
        self.kind
    }

    /// Whether C2 has been read.
    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Start,
    S0,
    S1,
    S2,
    Done,
}

/// The client side: writes C0 C1, reads S0 S1 S2, writes C2.
#[derive(Debug)]
pub struct ClientHandshake {
    state: ClientState,
    rng: Rng,
    digest: bool,
    c1_digest: Option<[u8; DIGEST_LEN]>,
    s1_digest: Option<[u8; DIGEST_LEN]>,
    c1: Option<Box<[u8; HANDSHAKE_SIZE]>>,
    server_verified: bool,
}

impl ClientHandshake {
    /// A client handshake; `digest` selects the Flash Player 9 form
    /// (what ffmpeg and OBS send) over the plain one.
    pub fn new(digest: bool) -> Self {
        Self::with_rng(digest, Rng::from_entropy())
    }

    /// Like [`new`](Self::new) with a fixed random seed.
    pub fn with_seed(digest: bool, seed: u64) -> Self {
        Self::with_rng(digest, Rng(seed | 1))
    }

    fn with_rng(digest: bool, rng: Rng) -> Self {
        Self {
            state: ClientState::Start,
            rng,
            digest,
            c1_digest: None,
            s1_digest: None,
            c1: None,
            server_verified: false,
        }
    }

    /// Write C0 and C1 to `out` (call once, first).
    pub fn start(&mut self, out: &mut BytesMut) {
        if self.state != ClientState::Start {
            return;
        }
        let mut c1 = [0u8; HANDSHAKE_SIZE];
        self.rng.fill(&mut c1[8..]);
        if self.digest {
            c1[4..8].copy_from_slice(&CLIENT_VERSION);
            self.c1_digest = Some(sign(
                &mut c1,
                DigestSchema::Schema0,
                &FP_KEY[..FP_KEY_PARTIAL],
            ));
        }
        out.put_u8(RTMP_VERSION);
        out.put_slice(&c1);
        self.c1 = Some(Box::new(c1));
        self.state = ClientState::S0;
    }

    /// Consume S0 S1 S2 from `input`, appending C2 to `out`. Returns `true`
    /// once complete; bytes after S2 stay in `input`.
    pub fn handle(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool> {
        loop {
            match self.state {
                ClientState::Start => {
                    return Err(RtmpError::InvalidState(
                        "ClientHandshake::start was not called",
                    ))
                }
                ClientState::S0 => {
                    if take_version(input)?.is_none() {
                        return Ok(false);
                    }
                    self.state = ClientState::S1;
                }
                ClientState::S1 => {
                    let Some(s1) = take_packet(input) else {
                        return Ok(false);
                    };
                    let found = if self.digest {
                        find_digest(&s1, &FMS_KEY[..FMS_KEY_PARTIAL])
                    } else {
                        None
                    };
                    match found {
                        Some((_, d)) => {
                            self.s1_digest = Some(d);
                            out.put_slice(&digest_response(&mut self.rng, &d, &FP_KEY));
                        }
                        // Plain server (or plain client): echo S1.
                        None => out.put_slice(&s1),
                    }
                    self.state = ClientState::S2;
                }
                ClientState::S2 => {
                    let Some(s2) = take_packet(input) else {
                        return Ok(false);
                    };
                    self.server_verified = match (&self.c1_digest, &self.c1) {
                        (Some(d), _) if self.s1_digest.is_some() => {
                            response_valid(&s2, d, &FMS_KEY)
                        }
                        (_, Some(c1)) => s2 == **c1,
                        _ => false,
                    };
                    self.c1 = None;
                    self.state = ClientState::Done;
                }
                ClientState::Done => return Ok(true),
            }
        }
    }

    /// Whether S2 proved the server read our C1 (a correct digest
    /// signature, or an exact echo). Informational: not enforced.
    pub fn server_verified(&self) -> bool {
        self.server_verified
    }
}

/// Build a digest C0+C1 for tests and fuzzing seeds.
pub fn digest_c0c1(seed: u64) -> Bytes {
    let mut out = BytesMut::new();
    ClientHandshake::with_seed(true, seed).start(&mut out);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(digest: bool) -> (ServerHandshake, ClientHandshake) {
        let mut s = ServerHandshake::with_seed(7);
        let mut c = ClientHandshake::with_seed(digest, 9);
        let mut c2s = BytesMut::new();
        let mut s2c = BytesMut::new();
        c.start(&mut c2s);
        // Feed byte by byte to exercise partial input.
        let all = c2s.split().freeze();
        let mut inb = BytesMut::new();
        for b in all.iter() {
            inb.put_u8(*b);
            assert!(!s.handle(&mut inb, &mut s2c).unwrap());
        }
        assert!(c.handle(&mut s2c, &mut c2s).unwrap());
        c2s.put_slice(b"\x02trailing chunk data");
        assert!(s.handle(&mut c2s, &mut s2c).unwrap());
        assert_eq!(&c2s[..], b"\x02trailing chunk data");
        (s, c)
    }

    #[test]
    fn plain_handshake_echoes() {
        let (s, c) = run(false);
        assert_eq!(s.kind(), Some(HandshakeKind::Plain));
        assert!(c.server_verified());
    }

    #[test]
    fn digest_handshake_signs_and_verifies() {
        let (s, c) = run(true);
        assert_eq!(s.kind(), Some(HandshakeKind::Digest(DigestSchema::Schema0)));
        assert!(
            c.server_verified(),
            "client must accept the server's S2 signature"
        );
    }

    #[test]
    fn digest_vector_schema1() {
        // A C1 signed with schema 1 by hand, checked against an independent HMAC.
        let mut c1 = [0x5au8; HANDSHAKE_SIZE];
        c1[4..8].copy_from_slice(&[0x80, 0, 7, 2]);
        let d = sign(&mut c1, DigestSchema::Schema1, &FP_KEY[..30]);
        let fill = 0x5ausize;
        let off = (fill * 4) % 728 + 776;
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Genuine Adobe Flash Player 001").unwrap();
        mac.update(&c1[..off]);
        mac.update(&c1[off + 32..]);
        assert_eq!(&mac.finalize().into_bytes()[..], &d[..]);
        assert_eq!(&c1[off..off + 32], &d[..]);
        let mut s = ServerHandshake::with_seed(1);
        let mut inb = BytesMut::new();
        inb.put_u8(3);
        inb.put_slice(&c1);
        let mut out = BytesMut::new();
        s.handle(&mut inb, &mut out).unwrap();
        assert_eq!(s.kind(), Some(HandshakeKind::Digest(DigestSchema::Schema1)));
        let mut s1 = [0u8; HANDSHAKE_SIZE];
        s1.copy_from_slice(&out[1..1 + HANDSHAKE_SIZE]);
        assert!(find_digest(&s1, &FMS_KEY[..36]).is_some());
        let mut s2 = [0u8; HANDSHAKE_SIZE];
        s2.copy_from_slice(&out[1 + HANDSHAKE_SIZE..]);
        assert!(response_valid(&s2, &d, &FMS_KEY));
    }

    #[test]
    fn bad_version_and_bad_digest() {
        let mut s = ServerHandshake::new();
        let mut inb = BytesMut::from(&[6u8][..]);
        assert!(matches!(
            s.handle(&mut inb, &mut BytesMut::new()),
            Err(RtmpError::Handshake(_))
        ));
        // A non-zero version with a wrong digest falls back to the plain echo.
        let mut s = ServerHandshake::new();
        let mut inb = BytesMut::new();
        inb.put_u8(3);
        let mut c1 = [1u8; HANDSHAKE_SIZE];
        c1[4] = 9;
        inb.put_slice(&c1);
        let mut out = BytesMut::new();
        s.handle(&mut inb, &mut out).unwrap();
        assert_eq!(s.kind(), Some(HandshakeKind::Plain));
        assert_eq!(&out[1 + HANDSHAKE_SIZE..], &c1[..]);
    }
}
