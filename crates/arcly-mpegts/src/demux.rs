//! A sans-IO MPEG-TS demuxer: bytes in, [`MediaFrame`]s out.
//!
//! PAT and PMT (ISO/IEC 13818-1 §2.4.4) pick the elementary streams; PES
//! packets (§2.4.3.6) are reassembled per PID and converted to the kernel's
//! canonical layout (see [`arcly_core::frame`]): Annex-B H.264/H.265 becomes
//! 4-byte length-prefixed NAL units with access unit delimiters and
//! parameter sets removed (the parameter sets become `avcC`/`hvcC` CONFIG
//! frames whenever they change); ADTS becomes raw AAC frames plus an
//! AudioSpecificConfig CONFIG frame; Opus loses its TS control header.
//!
//! Input is untrusted: every length is checked against the data and against
//! a [`DemuxLimits`] bound, nothing panics, and memory is bounded by
//! `max_streams × max_pes_size` plus the frames the caller has not pulled.

use std::collections::VecDeque;

use arcly_core::frame::{CodecId, FrameFlags, FrameType, MediaFrame, TimeBase};
use bytes::{BufMut, Bytes, BytesMut};

use crate::error::TsError;
use crate::es;
use crate::packet::{TsPacket, PACKET_SIZE, PAT_PID, SYNC_BYTE, TIMESTAMP_MODULUS};
use crate::psi::{self, MAX_SECTION_SIZE};
use arcly_codec::aac::AdtsHeader;
use arcly_codec::h264::AvcDecoderConfigurationRecord;
use arcly_codec::h265::HevcDecoderConfigurationRecord;

/// Default bound on one reassembled PES packet (16 MiB).
pub const MAX_PES_SIZE: usize = 16 << 20;
/// Default bound on the elementary streams followed at once.
pub const MAX_DEMUX_STREAMS: usize = 16;
/// Default bound on frames waiting to be pulled with [`TsDemuxer::next_frame`].
pub const MAX_QUEUED_FRAMES: usize = 16_384;
/// Size of the slabs PES packets are reassembled in (see `es_packet`); a
/// frame the caller keeps pins at most one slab.
const PES_SLAB: usize = 256 << 10;
/// Bound on the parameter sets of one kind kept for a CONFIG record.
pub const MAX_PARAMETER_SETS: usize = 16;

/// The bounds a [`TsDemuxer`] enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemuxLimits {
    /// Largest PES packet reassembled; a larger one is dropped with
    /// [`TsError::LimitExceeded`].
    pub max_pes_size: usize,
    /// Most elementary streams followed; further PMT entries are ignored
    /// with [`TsError::LimitExceeded`].
    pub max_streams: usize,
    /// Most frames queued before the caller pulls them; more are dropped
    /// with [`TsError::LimitExceeded`].
    pub max_queued_frames: usize,
}

impl Default for DemuxLimits {
    fn default() -> Self {
        Self {
            max_pes_size: MAX_PES_SIZE,
            max_streams: MAX_DEMUX_STREAMS,
            max_queued_frames: MAX_QUEUED_FRAMES,
        }
    }
}

/// Counters of what the demuxer has seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemuxStats {
    /// Transport packets parsed.
    pub packets: u64,
    /// Continuity-counter gaps (lost packets).
    pub continuity_errors: u64,
    /// PES packets dropped (malformed, oversized, corrupted by loss).
    pub dropped_pes: u64,
    /// Frames produced (CONFIG frames included).
    pub frames: u64,
}

#[derive(Debug, Default)]
struct SectionBuf {
    data: Vec<u8>,
    active: bool,
}

impl SectionBuf {
    /// Feed a packet payload; returns a complete section when one ends.
    fn feed(&mut self, payload: &[u8], start: bool) -> Option<Vec<u8>> {
        let mut data = payload;
        if start {
            let pointer = usize::from(*data.first()?);
            data = data.get(1 + pointer..)?;
            self.data.clear();
            self.active = true;
        }
        if !self.active {
            return None;
        }
        let room = MAX_SECTION_SIZE.saturating_sub(self.data.len());
        self.data.extend_from_slice(&data[..data.len().min(room)]);
        let len = self
            .data
            .get(1..3)
            .map(|b| 3 + usize::from(u16::from_be_bytes([b[0], b[1]]) & 0x0FFF))?;
        if self.data.len() >= len || self.data.len() >= MAX_SECTION_SIZE {
            self.active = false;
            let mut s = std::mem::take(&mut self.data);
            s.truncate(len);
            return Some(s);
        }
        None
    }
}

#[derive(Debug)]
struct EsState {
    pid: u16,
    stream_type: u8,
    codec: CodecId,
    kind: FrameType,
    track: u8,
    cc: Option<u8>,
    pes: BytesMut,
    /// Size of the last PES packet reassembled.
    last_pes_len: usize,
    /// Whether `pes` holds the start of a PES packet.
    in_pes: bool,
    /// Whether the PES being assembled lost data.
    corrupt: bool,
    discontinuity: bool,
    random_access: bool,
    /// Parameter sets and the record last emitted.
    vps: Vec<Bytes>,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    config: Option<Bytes>,
    opus_channels: u8,
}

/// A sans-IO MPEG-TS demuxer. Feed bytes with [`push`](Self::push), pull
/// frames with [`next_frame`](Self::next_frame), call
/// [`finish`](Self::finish) at the end of the input to flush the last PES
/// packets. Timestamps come out in 90 kHz ticks, unwrapped past the 33-bit
/// wrap.
#[derive(Debug)]
pub struct TsDemuxer {
    limits: DemuxLimits,
    partial: Vec<u8>,
    pmt_pid: Option<u16>,
    pat: SectionBuf,
    pmt: SectionBuf,
    pmt_version: Option<u8>,
    streams: Vec<EsState>,
    queue: VecDeque<MediaFrame>,
    clock: Option<i64>,
    stats: DemuxStats,
    first_error: Option<TsError>,
    /// Scratch list of NAL unit ranges, reused across access units.
    nal_ranges: Vec<(usize, usize)>,
    /// The last PAT and PMT sections parsed, to skip their repetitions.
    last_pat: Vec<u8>,
    last_pmt: Vec<u8>,
}

impl Default for TsDemuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl TsDemuxer {
    /// A demuxer with the default [`DemuxLimits`].
    pub fn new() -> Self {
        Self::with_limits(DemuxLimits::default())
    }

    /// A demuxer with `limits`.
    pub fn with_limits(limits: DemuxLimits) -> Self {
        Self {
            limits,
            partial: Vec::with_capacity(PACKET_SIZE),
            pmt_pid: None,
            pat: SectionBuf::default(),
            pmt: SectionBuf::default(),
            pmt_version: None,
            streams: Vec::new(),
            queue: VecDeque::new(),
            clock: None,
            stats: DemuxStats::default(),
            first_error: None,
            nal_ranges: Vec::new(),
            last_pat: Vec::new(),
            last_pmt: Vec::new(),
        }
    }

    /// What the demuxer has seen so far.
    pub fn stats(&self) -> DemuxStats {
        self.stats
    }

    /// The elementary streams the PMT announced and this demuxer follows:
    /// `(pid, codec, stream_type)`.
    pub fn streams(&self) -> impl Iterator<Item = (u16, CodecId, u8)> + '_ {
        self.streams.iter().map(|s| (s.pid, s.codec, s.stream_type))
    }

    /// Feed bytes. Every complete packet is processed; a trailing partial
    /// packet is kept for the next call. Malformed input does not stop the
    /// demuxer: the offending packet, section or PES is dropped, the rest is
    /// processed, and the first error met during this call is returned.
    /// Frames decoded before and after it are available from
    /// [`next_frame`](Self::next_frame) either way.
    pub fn push(&mut self, mut data: &[u8]) -> Result<(), TsError> {
        self.first_error = None;
        if !self.partial.is_empty() {
            let need = PACKET_SIZE - self.partial.len();
            let n = need.min(data.len());
            self.partial.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.partial.len() < PACKET_SIZE {
                return Ok(());
            }
            let pkt = std::mem::take(&mut self.partial);
            if let Ok(p) = <&[u8; PACKET_SIZE]>::try_from(&pkt[..]) {
                if p[0] == SYNC_BYTE {
                    self.packet(p);
                } else {
                    // Resynchronise inside the held bytes and what follows.
                    let mut joined = pkt;
                    joined.extend_from_slice(data);
                    self.push_aligned(&joined);
                    return self.finish_push();
                }
            }
            self.partial = Vec::with_capacity(PACKET_SIZE);
        }
        self.push_aligned(data);
        self.finish_push()
    }

    fn finish_push(&mut self) -> Result<(), TsError> {
        match self.first_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn push_aligned(&mut self, data: &[u8]) {
        let mut pos = 0;
        while pos < data.len() {
            let rest = &data[pos..];
            if rest[0] != SYNC_BYTE {
                // §2.4.3.3: find a 0x47 that is followed by another one a
                // packet later (or sits in the last partial packet).
                let skip = (1..rest.len())
                    .find(|&i| {
                        rest[i] == SYNC_BYTE
                            && rest.get(i + PACKET_SIZE).is_none_or(|&b| b == SYNC_BYTE)
                    })
                    .unwrap_or(rest.len());
                self.error(TsError::SyncLost { skipped: skip });
                pos += skip;
                continue;
            }
            match rest
                .get(..PACKET_SIZE)
                .and_then(|p| <&[u8; PACKET_SIZE]>::try_from(p).ok())
            {
                Some(p) => {
                    self.packet(p);
                    pos += PACKET_SIZE;
                }
                None => {
                    self.partial.extend_from_slice(rest);
                    break;
                }
            }
        }
    }

    /// Flush the PES packets still being assembled (their end is only known
    /// when the next one starts, or at the end of the input).
    pub fn finish(&mut self) -> Result<(), TsError> {
        self.first_error = None;
        for i in 0..self.streams.len() {
            self.flush_pes(i);
        }
        self.partial.clear();
        self.finish_push()
    }

    /// The next demuxed frame, if any.
    pub fn next_frame(&mut self) -> Option<MediaFrame> {
        self.queue.pop_front()
    }

    fn error(&mut self, e: TsError) {
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    fn packet(&mut self, p: &[u8; PACKET_SIZE]) {
        self.stats.packets += 1;
        let pkt = match TsPacket::parse(p) {
            Ok(pkt) => pkt,
            Err(e) => return self.error(e),
        };
        if pkt.pid == PAT_PID {
            if pkt.transport_error || !pkt.has_payload {
                return;
            }
            if let Some(section) = self.pat.feed(pkt.payload, pkt.payload_unit_start) {
                // A repeated, identical PAT changes nothing (CRC included).
                if self.last_pat == section {
                    return;
                }
                let parsed = psi::parse_pat(&section);
                if parsed.is_ok() {
                    self.last_pat = section;
                }
                match parsed {
                    Ok(programs) => {
                        if let Some(&(_, pmt)) = programs.first() {
                            if self.pmt_pid != Some(pmt) {
                                self.pmt_pid = Some(pmt);
                                self.pmt_version = None;
                                self.last_pmt.clear();
                            }
                        }
                    }
                    Err(e) => self.error(e),
                }
            }
            return;
        }
        if Some(pkt.pid) == self.pmt_pid {
            if pkt.transport_error || !pkt.has_payload {
                return;
            }
            if let Some(section) = self.pmt.feed(pkt.payload, pkt.payload_unit_start) {
                if self.last_pmt == section {
                    return;
                }
                match psi::parse_pmt(&section) {
                    Ok(pmt) => {
                        self.last_pmt = section;
                        self.apply_pmt(pmt);
                    }
                    Err(e) => self.error(e),
                }
            }
            return;
        }
        let Some(i) = self.streams.iter().position(|s| s.pid == pkt.pid) else {
            return;
        };
        self.es_packet(i, &pkt);
    }

    fn apply_pmt(&mut self, pmt: psi::Pmt) {
        if self.pmt_version == Some(pmt.version) {
            return;
        }
        self.pmt_version = Some(pmt.version);
        let mut next: Vec<EsState> = Vec::new();
        let (mut videos, mut audios) = (0u8, 0u8);
        for st in &pmt.streams {
            let (codec, opus_channels) = match st.stream_type {
                psi::STREAM_TYPE_H264 => (CodecId::H264, 0),
                psi::STREAM_TYPE_H265 => (CodecId::H265, 0),
                psi::STREAM_TYPE_AAC_ADTS => (CodecId::Aac, 0),
                psi::STREAM_TYPE_MPEG1_AUDIO | psi::STREAM_TYPE_MPEG2_AUDIO => (CodecId::Mp3, 0),
                psi::STREAM_TYPE_PRIVATE_PES if st.registration() == Some(*b"Opus") => {
                    let code = st
                        .descriptor(psi::DESCRIPTOR_DVB_EXTENSION)
                        .filter(|d| d.first() == Some(&psi::DVB_EXT_OPUS))
                        .and_then(|d| d.get(1).copied())
                        .unwrap_or(2);
                    (CodecId::Opus, code)
                }
                _ => continue,
            };
            if next.len() >= self.limits.max_streams {
                self.error(TsError::LimitExceeded {
                    limit: "max_streams",
                    value: self.limits.max_streams,
                });
                break;
            }
            let kind = if codec.is_video() {
                FrameType::Video
            } else {
                FrameType::Audio
            };
            let track = if kind == FrameType::Video {
                &mut videos
            } else {
                &mut audios
            };
            let t = *track;
            *track = track.saturating_add(1);
            // Keep the state of a stream the new PMT version still lists.
            if let Some(pos) = self
                .streams
                .iter()
                .position(|s| s.pid == st.pid && s.stream_type == st.stream_type)
            {
                let mut s = self.streams.swap_remove(pos);
                s.track = t;
                s.opus_channels = opus_channels;
                next.push(s);
                continue;
            }
            next.push(EsState {
                pid: st.pid,
                stream_type: st.stream_type,
                codec,
                kind,
                track: t,
                cc: None,
                pes: BytesMut::new(),
                last_pes_len: 0,
                in_pes: false,
                corrupt: false,
                discontinuity: false,
                random_access: false,
                vps: Vec::new(),
                sps: Vec::new(),
                pps: Vec::new(),
                config: None,
                opus_channels,
            });
        }
        // Streams the PMT dropped: flush what they hold.
        let old = std::mem::replace(&mut self.streams, next);
        let keep = self.streams.len();
        self.streams.extend(old);
        for i in keep..self.streams.len() {
            self.flush_pes(i);
        }
        self.streams.truncate(keep);
    }

    fn es_packet(&mut self, i: usize, pkt: &TsPacket<'_>) {
        let pid = pkt.pid;
        if pkt.scrambling != 0 {
            self.streams[i].corrupt = true;
            return self.error(TsError::BadPacket {
                pid,
                reason: "scrambled",
            });
        }
        if pkt.transport_error {
            self.streams[i].corrupt = true;
            return;
        }
        let s = &mut self.streams[i];
        let af = pkt.adaptation.unwrap_or_default();
        if af.discontinuity {
            s.discontinuity = true;
            s.cc = None;
        }
        if !pkt.has_payload {
            return;
        }
        // §2.4.3.3: the counter increments by one per payload packet; one
        // duplicate is allowed.
        if let Some(prev) = s.cc {
            let expected = (prev + 1) & 0xF;
            if pkt.continuity_counter == prev {
                return;
            }
            if pkt.continuity_counter != expected {
                s.corrupt = true;
                self.stats.continuity_errors += 1;
                let got = pkt.continuity_counter;
                self.streams[i].cc = Some(got);
                self.error(TsError::ContinuityError { pid, expected, got });
            }
        }
        let s = &mut self.streams[i];
        s.cc = Some(pkt.continuity_counter);
        if pkt.payload_unit_start {
            self.flush_pes(i);
            let s = &mut self.streams[i];
            s.in_pes = true;
            s.corrupt = false;
            s.random_access = af.random_access;
            s.pes.clear();
            // Reassembly buffers are carved from slabs: each PES is split
            // off the front of one, so the next PES lands in the same
            // allocation and the PES is not grown (copied) while it
            // arrives. Expect what PES_packet_length says, else a bit more
            // than the last PES of this stream.
            let expected = match pkt.payload.get(4..6) {
                Some(b) if b != [0, 0] => 6 + usize::from(u16::from_be_bytes([b[0], b[1]])),
                _ => s.last_pes_len.saturating_add(s.last_pes_len / 4),
            }
            .min(self.limits.max_pes_size);
            if s.pes.capacity() < expected {
                s.pes
                    .reserve(expected.max(PES_SLAB).min(self.limits.max_pes_size));
            }
        }
        let s = &mut self.streams[i];
        if !s.in_pes {
            return;
        }
        if s.pes.len() + pkt.payload.len() > self.limits.max_pes_size {
            s.in_pes = false;
            s.pes.clear();
            self.stats.dropped_pes += 1;
            return self.error(TsError::LimitExceeded {
                limit: "max_pes_size",
                value: self.limits.max_pes_size,
            });
        }
        s.pes.extend_from_slice(pkt.payload);
        // A bounded PES is complete as soon as its length is reached.
        if let Some(b) = s.pes.get(4..6) {
            let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
            if len != 0 && s.pes.len() >= 6 + len {
                self.flush_pes(i);
            }
        }
    }

    fn flush_pes(&mut self, i: usize) {
        let s = &mut self.streams[i];
        if !s.in_pes {
            return;
        }
        s.in_pes = false;
        // The PES is reassembled in one reused buffer per stream; the frame
        // payloads are slices of the `Bytes` it is split off as.
        let data = s.pes.split();
        s.last_pes_len = data.len();
        if s.corrupt {
            self.stats.dropped_pes += 1;
            return;
        }
        if let Err(e) = self.pes(i, data) {
            self.stats.dropped_pes += 1;
            self.error(e);
        }
    }

    /// Unwrap a 33-bit timestamp to the value congruent to it that is
    /// closest to the last one seen on any stream.
    fn unwrap_ts(&mut self, ts: u64) -> i64 {
        let ts = ts as i64;
        let v = match self.clock {
            None => ts,
            Some(c) => {
                let base = c - c.rem_euclid(TIMESTAMP_MODULUS) + ts;
                [base - TIMESTAMP_MODULUS, base, base + TIMESTAMP_MODULUS]
                    .into_iter()
                    .min_by_key(|v| (v - c).abs())
                    .unwrap_or(base)
            }
        };
        self.clock = Some(v);
        v
    }

    fn pes(&mut self, i: usize, data: BytesMut) -> Result<(), TsError> {
        let pid = self.streams[i].pid;
        let bad = |reason| TsError::BadPes { pid, reason };
        let h = data.get(..9).ok_or(bad("shorter than its header"))?;
        if h[..3] != [0, 0, 1] {
            return Err(bad("no packet_start_code_prefix"));
        }
        if h[6] & 0xC0 != 0x80 {
            return Err(bad("missing the '10' marker of the optional header"));
        }
        let pes_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let flags = h[7] >> 6;
        let hdl = usize::from(h[8]);
        let start = 9 + hdl;
        let end = if pes_len == 0 {
            data.len()
        } else {
            (6 + pes_len).min(data.len())
        };
        if start > end {
            return Err(bad("PES_header_data_length past the packet"));
        }
        let opt = data
            .get(9..start)
            .ok_or(bad("PES_header_data_length past the packet"))?;
        let (pts, dts) = match flags {
            2 => {
                let p = crate::packet::read_timestamp(opt).ok_or(bad("bad PTS"))?;
                (p, p)
            }
            3 => {
                let p = crate::packet::read_timestamp(opt).ok_or(bad("bad PTS"))?;
                let d = opt
                    .get(5..)
                    .and_then(crate::packet::read_timestamp)
                    .ok_or(bad("bad DTS"))?;
                (p, d)
            }
            _ => return Err(bad("no PTS")),
        };
        let dts = self.unwrap_ts(dts);
        // PTS relative to DTS, so a wrap between them stays consistent.
        let pts = dts
            + ((pts as i64 - dts).rem_euclid(TIMESTAMP_MODULUS) + TIMESTAMP_MODULUS / 2)
                .rem_euclid(TIMESTAMP_MODULUS)
            - TIMESTAMP_MODULUS / 2;
        if let CodecId::H264 | CodecId::H265 = self.streams[i].codec {
            return self.video(i, data, start, end, pts, dts);
        }
        let payload = data.freeze().slice(start..end);
        match self.streams[i].codec {
            CodecId::Aac => self.aac(i, payload, pts),
            CodecId::Mp3 => self.mp3(i, payload, pts),
            CodecId::Opus => self.opus(i, payload, pts),
            _ => Ok(()),
        }
    }

    fn emit(&mut self, i: usize, mut f: MediaFrame) -> Result<(), TsError> {
        let s = &mut self.streams[i];
        f.frame_type = s.kind;
        f.track = s.track;
        if !f.is_config() && std::mem::take(&mut s.discontinuity) {
            f.flags.insert(FrameFlags::DISCONTINUITY);
        }
        if self.queue.len() >= self.limits.max_queued_frames {
            return Err(TsError::LimitExceeded {
                limit: "max_queued_frames",
                value: self.limits.max_queued_frames,
            });
        }
        self.stats.frames += 1;
        self.queue.push_back(f);
        Ok(())
    }

    fn emit_config(&mut self, i: usize, record: Bytes, ts: i64) -> Result<(), TsError> {
        let s = &mut self.streams[i];
        if s.config.as_ref() == Some(&record) {
            return Ok(());
        }
        s.config = Some(record.clone());
        let codec = s.codec;
        self.emit(
            i,
            MediaFrame::new(codec, TimeBase::MPEG_90K, ts, ts, record)
                .with_flags(FrameFlags::CONFIG),
        )
    }

    /// Annex-B access unit in `buf[start..end]` to the canonical layout:
    /// 4-byte length-prefixed NAL units, AUD and parameter sets removed
    /// (the parameter sets become an `avcC`/`hvcC` CONFIG frame when they
    /// change). The conversion happens in place whenever the bytes freed by
    /// start codes and removed NAL units leave room for the length fields,
    /// which is the usual case: then no NAL byte is copied.
    fn video(
        &mut self,
        i: usize,
        buf: BytesMut,
        start: usize,
        end: usize,
        pts: i64,
        dts: i64,
    ) -> Result<(), TsError> {
        let s = &mut self.streams[i];
        let h265 = s.codec == CodecId::H265;
        let codec_name = if h265 { "H.265" } else { "H.264" };
        let (mut keyframe, mut new_params) = (false, false);
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        let mut nals = std::mem::take(&mut self.nal_ranges);
        nals.clear();
        let au = buf.get(start..end).unwrap_or_default();
        es::annexb_nals(au, |a, b| nals.push((start + a, start + b)));
        nals.retain(|&(a, b)| {
            let nal = buf.get(a..b).unwrap_or_default();
            let t = if h265 {
                es::h265::nal_type(nal)
            } else {
                es::h264::nal_type(nal)
            };
            let list = match (h265, t) {
                (false, es::h264::SPS) | (true, es::h265::SPS) => &mut sps,
                (false, es::h264::PPS) | (true, es::h265::PPS) => &mut pps,
                (true, es::h265::VPS) => &mut vps,
                (false, es::h264::AUD) | (true, es::h265::AUD) => return false,
                _ => {
                    keyframe |= if h265 {
                        es::h265::is_irap(t)
                    } else {
                        t == es::h264::IDR
                    };
                    return true;
                }
            };
            new_params = true;
            if list.len() < MAX_PARAMETER_SETS && !list.iter().any(|n: &Bytes| n == nal) {
                list.push(Bytes::copy_from_slice(nal));
            }
            false
        });
        let payload = to_length_prefixed(buf, start, &nals, codec_name);
        self.nal_ranges = nals;
        let payload = payload?;
        let s = &mut self.streams[i];
        if new_params {
            // A parameter set seen again replaces the old one of that kind.
            if !sps.is_empty() {
                s.sps = sps;
            }
            if !pps.is_empty() {
                s.pps = pps;
            }
            if !vps.is_empty() {
                s.vps = vps;
            }
            let record = if h265 {
                if s.vps.is_empty() || s.sps.is_empty() || s.pps.is_empty() {
                    None
                } else {
                    // ISO/IEC 14496-15 §8.3.3.1: profile, chroma format and
                    // bit depths come from the SPS (Main 10 stays Main 10).
                    Some(
                        HevcDecoderConfigurationRecord::from_parameter_sets(
                            s.vps.clone(),
                            s.sps.clone(),
                            s.pps.clone(),
                        )?
                        .to_bytes()?,
                    )
                }
            } else if s.sps.is_empty() || s.pps.is_empty() {
                None
            } else {
                Some(
                    AvcDecoderConfigurationRecord::from_parameter_sets(
                        s.sps.clone(),
                        s.pps.clone(),
                    )?
                    .to_bytes()?,
                )
            };
            if let Some(r) = record {
                self.emit_config(i, r, dts)?;
            }
        }
        if payload.is_empty() {
            return Ok(());
        }
        let codec = self.streams[i].codec;
        let mut f = MediaFrame::new(codec, TimeBase::MPEG_90K, dts, pts, payload);
        if keyframe {
            f.flags.insert(FrameFlags::KEYFRAME);
        }
        self.emit(i, f)
    }

    fn aac(&mut self, i: usize, payload: Bytes, pts: i64) -> Result<(), TsError> {
        let mut pos = 0;
        let mut n = 0i64;
        while pos < payload.len() {
            let adts = AdtsHeader::parse(&payload[pos..])?;
            let end = pos + usize::from(adts.frame_length);
            let start = pos + adts.header_len();
            if end > payload.len() || start > end {
                return Err(TsError::BadPayload {
                    codec: "ADTS",
                    reason: "frame_length past the PES",
                });
            }
            let rate = i64::from(adts.sample_rate().max(1));
            let ts = pts + n * 1024 * 90_000 / rate;
            if self.streams[i].config.is_none() || n == 0 {
                self.emit_config(i, adts.audio_specific_config().to_bytes()?, ts)?;
            }
            let raw = payload.slice(start..end);
            self.emit(
                i,
                MediaFrame::new(CodecId::Aac, TimeBase::MPEG_90K, ts, ts, raw)
                    .with_flags(FrameFlags::KEYFRAME),
            )?;
            n += 1;
            pos = end;
        }
        Ok(())
    }

    fn mp3(&mut self, i: usize, payload: Bytes, pts: i64) -> Result<(), TsError> {
        let mut pos = 0;
        let mut ts = pts;
        while pos < payload.len() {
            let rest = &payload[pos..];
            let (len, samples, rate) = match es::mpeg_audio_frame(rest) {
                Some(f) if f.len > 0 && f.len <= rest.len() => (f.len, f.samples, f.rate),
                _ => (rest.len(), 0, 1),
            };
            let frame = payload.slice(pos..pos + len);
            self.emit(
                i,
                MediaFrame::new(CodecId::Mp3, TimeBase::MPEG_90K, ts, ts, frame)
                    .with_flags(FrameFlags::KEYFRAME),
            )?;
            ts += i64::from(samples) * 90_000 / i64::from(rate.max(1));
            pos += len;
        }
        Ok(())
    }

    fn opus(&mut self, i: usize, payload: Bytes, pts: i64) -> Result<(), TsError> {
        const C: &str = "Opus";
        let bad = |reason| TsError::BadPayload { codec: C, reason };
        if let Some(head) = es::opus::opus_head(self.streams[i].opus_channels) {
            self.emit_config(i, Bytes::from(head), pts)?;
        }
        let mut pos = 0;
        let mut ts = pts;
        while pos < payload.len() {
            let d = &payload[pos..];
            let h = d.get(..2).ok_or(bad("truncated control header"))?;
            // opus_control_header: 11-bit prefix 0x3FF, start_trim_flag,
            // end_trim_flag, control_extension_flag, 2 reserved bits.
            if h[0] != 0x7F || h[1] & 0xE0 != 0xE0 {
                return Err(bad("no control_header_prefix"));
            }
            let mut p = 2;
            let mut size = 0usize;
            loop {
                let b = *d.get(p).ok_or(bad("truncated au_size"))?;
                p += 1;
                size += usize::from(b);
                if b != 0xFF {
                    break;
                }
            }
            if h[1] & 0x10 != 0 {
                p += 2;
            }
            if h[1] & 0x08 != 0 {
                p += 2;
            }
            if h[1] & 0x04 != 0 {
                let ext = usize::from(*d.get(p).ok_or(bad("truncated control extension"))?);
                p += 1 + ext;
            }
            let end = p
                .checked_add(size)
                .filter(|&e| e <= d.len())
                .ok_or(bad("au_size past the PES"))?;
            let packet = payload.slice(pos + p..pos + end);
            let samples = opus_samples(&packet);
            self.emit(
                i,
                MediaFrame::new(CodecId::Opus, TimeBase::MPEG_90K, ts, ts, packet)
                    .with_flags(FrameFlags::KEYFRAME),
            )?;
            ts += i64::from(samples) * 90_000 / 48_000;
            pos += end;
        }
        Ok(())
    }
}

/// The NAL units at `nals` (ascending, non-overlapping ranges of `buf`, all
/// at or after `floor`) as 4-byte length-prefixed units (ISO/IEC 14496-15
/// §5.3.2). Bytes before `floor` (the PES header) are never written.
///
/// Built from the last unit backwards, each one moved right against the
/// next one's length field; with 4-byte start codes nothing moves at all.
/// That needs every length field to land on bytes no earlier unit still
/// occupies: checked first, and when it does not hold (3-byte start codes
/// with no removed unit ahead of them) the units are copied into a new
/// buffer instead.
fn to_length_prefixed(
    mut buf: BytesMut,
    floor: usize,
    nals: &[(usize, usize)],
    codec: &'static str,
) -> Result<Bytes, TsError> {
    let too_long = || TsError::BadPayload {
        codec,
        reason: "NAL unit over 4 GiB",
    };
    let Some(&(_, end)) = nals.last() else {
        return Ok(Bytes::new());
    };
    // Dry run: where each unit goes, and whether that is safe.
    let mut w = end;
    let mut in_place = true;
    for (k, &(a, b)) in nals.iter().enumerate().rev() {
        let len = b - a;
        u32::try_from(len).map_err(|_| too_long())?;
        let limit = match k.checked_sub(1).and_then(|p| nals.get(p)) {
            Some(&(_, prev_end)) => prev_end,
            None => floor,
        };
        match (w - len).checked_sub(4) {
            Some(field) if field >= limit => w = field,
            _ => {
                in_place = false;
                break;
            }
        }
    }
    if !in_place {
        let total: usize = nals.iter().map(|(a, b)| 4 + b - a).sum();
        let mut out = BytesMut::with_capacity(total);
        for &(a, b) in nals {
            let nal = buf.get(a..b).unwrap_or_default();
            out.put_u32(u32::try_from(nal.len()).map_err(|_| too_long())?);
            out.put_slice(nal);
        }
        return Ok(out.freeze());
    }
    let mut w = end;
    for &(a, b) in nals.iter().rev() {
        let len = b - a;
        let dest = w - len;
        if dest != a {
            buf.copy_within(a..b, dest);
        }
        let field = dest - 4;
        if let Some(f) = buf.get_mut(field..dest) {
            f.copy_from_slice(&u32::try_from(len).map_err(|_| too_long())?.to_be_bytes());
        }
        w = field;
    }
    Ok(buf.freeze().slice(w..end))
}

/// The samples (at 48 kHz) of an Opus packet, from its TOC byte (RFC 6716 §3.1).
fn opus_samples(p: &[u8]) -> u32 {
    let Some(&toc) = p.first() else { return 0 };
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config & 3)],
        12..=15 => [480, 960][usize::from(config & 1)],
        _ => [120, 240, 480, 960][usize::from(config & 3)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => p.get(1).map_or(0, |b| u32::from(b & 0x3F)),
    };
    frame * frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(data: &[u8], floor: usize) -> Bytes {
        let mut nals = Vec::new();
        es::annexb_nals(&data[floor..], |a, b| nals.push((floor + a, floor + b)));
        // drop AUDs like the demuxer does
        nals.retain(|&(a, _)| data[a] & 0x1F != 9);
        to_length_prefixed(BytesMut::from(data), floor, &nals, "H.264").unwrap()
    }

    #[test]
    fn length_prefixing_in_place_and_by_copy() {
        let want = [&[0, 0, 0, 3, 0x65, 1, 2][..], &[0, 0, 0, 2, 0x41, 7]].concat();
        // 4-byte start codes: in place (nothing moves), header kept.
        let four = [0xAA, 0xBB, 0, 0, 0, 1, 0x65, 1, 2, 0, 0, 0, 1, 0x41, 7];
        assert_eq!(&convert(&four, 2)[..], &want[..]);
        // 3-byte start codes behind a removed AUD: in place, units move.
        let aud = [
            0xAA, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x65, 1, 2, 0, 0, 1, 0x41, 7,
        ];
        assert_eq!(&convert(&aud, 1)[..], &want[..]);
        // 3-byte start codes and no room: copied.
        let three = [0xAA, 0, 0, 1, 0x65, 1, 2, 0, 0, 1, 0x41, 7];
        assert_eq!(&convert(&three, 1)[..], &want[..]);
        // Never writes before `floor`, nothing at all yields nothing.
        assert!(convert(&[0xAA, 0, 0, 1], 1).is_empty());
    }
}
