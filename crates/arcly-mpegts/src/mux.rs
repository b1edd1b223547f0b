//! The MPEG-TS muxer (ISO/IEC 13818-1 §2.4).

use arcly_core::frame::{CodecId, FrameFlags, FrameType, MediaFrame, TimeBase};
use arcly_core::traits::{ContainerFormat, Muxer};
use arcly_core::Result;
use bytes::{BufMut, Bytes, BytesMut};

use crate::error::TsError;
use crate::es;
use crate::packet::{write_timestamp, PACKET_SIZE, PAT_PID, SYNC_BYTE, TIMESTAMP_MODULUS};
use crate::psi::{self, PmtStream};
use arcly_codec::aac::{AdtsHeader, AudioSpecificConfig, MAX_ADTS_FRAME_LEN};
use arcly_codec::h264::AvcDecoderConfigurationRecord;
use arcly_codec::h265::HevcDecoderConfigurationRecord;

/// The most elementary streams one muxer carries (keeps the PMT in one
/// packet).
pub const MAX_STREAMS: usize = 8;
/// The longest gap, in 90 kHz ticks, between two PCRs the muxer writes
/// (40 ms, ISO/IEC 13818-1 §2.7.2 allows 100 ms; DVB asks for 40 ms).
pub const PCR_INTERVAL: i64 = 3_600;
/// A timestamp jump larger than this (10 s in 90 kHz ticks) is treated as a
/// discontinuity instead of being bridged with PCR-only packets.
pub const MAX_PCR_BRIDGE: i64 = 900_000;
/// The most AAC frames the muxer packs into one PES. Contiguous frames of a
/// stream (each PTS exactly one frame after the last) share a PES, as
/// ffmpeg does, instead of costing two TS packets each.
pub const MAX_AAC_FRAMES_PER_PES: usize = 5;

/// Smallest output buffer reserved after a flush.
const OUT_MIN_RESERVE: usize = 64 << 10;
/// Largest output buffer reserved after a flush (more still grows it).
const OUT_MAX_RESERVE: usize = 16 << 20;

/// Settings of an [`MpegTsMuxer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MuxerConfig {
    /// `transport_stream_id` written in the PAT.
    pub transport_stream_id: u16,
    /// `program_number` of the single program.
    pub program_number: u16,
    /// PID of the PMT.
    pub pmt_pid: u16,
    /// PID of the first elementary stream; later ones follow in order.
    pub first_es_pid: u16,
    /// PAT and PMT are repeated when this many 90 kHz ticks have passed
    /// since they were last written (besides every segment start and every
    /// video keyframe).
    pub psi_interval: i64,
    /// The PCR runs this many 90 kHz ticks behind the DTS of the frame it is
    /// written with, clamped at zero (decoder buffering headroom).
    pub pcr_lead: i64,
}

impl Default for MuxerConfig {
    fn default() -> Self {
        Self {
            transport_stream_id: 1,
            program_number: 1,
            pmt_pid: 0x1000,
            first_es_pid: 0x100,
            psi_interval: 9_000,
            pcr_lead: 9_000,
        }
    }
}

#[derive(Debug)]
struct EsStream {
    codec: CodecId,
    kind: FrameType,
    track: u8,
    pid: u16,
    stream_id: u8,
    stream_type: u8,
    descriptors: Vec<u8>,
    cc: u8,
    /// Video: parameter sets as Annex-B, from the last CONFIG record.
    params: Bytes,
    /// AAC: the ADTS header of the last AudioSpecificConfig, for an empty
    /// frame; each frame patches its `frame_length` in.
    adts: Option<[u8; 7]>,
    /// AAC: the sampling rate of the last AudioSpecificConfig.
    sample_rate: u32,
    /// AAC frames waiting to go out as one PES: their ADTS headers and raw
    /// payloads.
    aac_pending: Vec<([u8; 7], Bytes)>,
    /// PTS and DTS (90 kHz, unwrapped) of the first pending AAC frame.
    aac_pts0: i64,
    aac_dts0: i64,
    /// The first pending AAC frame is flagged a keyframe.
    aac_key0: bool,
    discontinuity_pending: bool,
}

/// An MPEG-2 transport stream muxer for H.264, H.265, AAC, MP3 and Opus.
///
/// Frames arrive in the kernel's canonical layout ([`arcly_core::frame`]);
/// the muxer converts at its edge: NAL units get Annex-B start codes, an
/// access unit delimiter, and the parameter sets of the last CONFIG record
/// in front of every keyframe; AAC gets an ADTS header, and up to
/// [`MAX_AAC_FRAMES_PER_PES`] contiguous AAC frames share one PES (held
/// back until the run ends, a video keyframe, a segment start, a
/// discontinuity or [`Muxer::flush`]); Opus gets the TS control header. Output accumulates in one reused buffer that
/// [`Muxer::flush`] hands out as `Bytes`.
///
/// Streams are learnt from the frames (the first CONFIG or media frame of a
/// codec and track adds one, and the PMT is rewritten with a new version),
/// or declared up front with [`MpegTsMuxer::add_stream`]. AMF0 metadata and
/// end-of-stream markers are ignored; AV1, VP9, VVC and other codecs are a
/// [`arcly_core::StreamError::Unsupported`] error.
#[derive(Debug)]
pub struct MpegTsMuxer {
    cfg: MuxerConfig,
    streams: Vec<EsStream>,
    pat_cc: u8,
    pmt_cc: u8,
    pmt_version: u8,
    pcr_pid: Option<u16>,
    psi_dirty: bool,
    /// PAT and PMT sections as last built.
    psi_sections: Option<(Vec<u8>, Vec<u8>)>,
    /// PAT/PMT were just written by `start_segment`: the next frame starts
    /// the PSI interval instead of repeating them.
    psi_fresh: bool,
    last_psi: Option<i64>,
    last_pcr: Option<i64>,
    force_pcr: bool,
    out: BytesMut,
    nal_pieces: Vec<(usize, usize)>,
}

impl Default for MpegTsMuxer {
    fn default() -> Self {
        Self::new()
    }
}

/// Adaptation-field contents of the first packet of a PES.
#[derive(Clone, Copy, Default)]
struct FirstAf {
    discontinuity: bool,
    random_access: bool,
    pcr: Option<i64>,
}

impl MpegTsMuxer {
    /// A muxer with the default settings.
    pub fn new() -> Self {
        Self::with_config(MuxerConfig::default())
    }

    /// A muxer with `cfg`.
    pub fn with_config(cfg: MuxerConfig) -> Self {
        Self {
            cfg,
            streams: Vec::new(),
            pat_cc: 0,
            pmt_cc: 0,
            pmt_version: 0,
            pcr_pid: None,
            psi_dirty: true,
            psi_sections: None,
            psi_fresh: false,
            last_psi: None,
            last_pcr: None,
            force_pcr: true,
            out: BytesMut::with_capacity(64 * 1024),
            nal_pieces: Vec::new(),
        }
    }

    /// Declare an elementary stream before its first frame, so the first PMT
    /// lists it. Returns its PID. Declaring an existing stream returns its
    /// PID again.
    pub fn add_stream(&mut self, codec: CodecId, track: u8) -> Result<u16, TsError> {
        let kind = if codec.is_video() {
            FrameType::Video
        } else {
            FrameType::Audio
        };
        self.stream_index(codec, kind, track, None)
            .map(|i| self.streams[i].pid)
    }

    /// The PIDs of the streams known so far, with their codec and track.
    pub fn streams(&self) -> impl Iterator<Item = (u16, CodecId, u8)> + '_ {
        self.streams.iter().map(|s| (s.pid, s.codec, s.track))
    }

    /// The PID carrying the PCR, once a stream is known.
    pub fn pcr_pid(&self) -> Option<u16> {
        self.pcr_pid
    }

    fn stream_index(
        &mut self,
        codec: CodecId,
        kind: FrameType,
        track: u8,
        first_payload: Option<&[u8]>,
    ) -> Result<usize, TsError> {
        if let Some(i) = self
            .streams
            .iter()
            .position(|s| s.codec == codec && s.kind == kind && s.track == track)
        {
            return Ok(i);
        }
        if let Some(i) = self
            .streams
            .iter()
            .position(|s| s.kind == kind && s.track == track)
        {
            // A codec change on a track (publisher restarted with another
            // codec): replace the stream and announce a new PMT.
            self.streams.remove(i);
        }
        if self.streams.len() >= MAX_STREAMS {
            return Err(TsError::LimitExceeded {
                limit: "MAX_STREAMS",
                value: MAX_STREAMS,
            });
        }
        let same_kind = self.streams.iter().filter(|s| s.kind == kind).count() as u8;
        let (stream_type, stream_id, descriptors) = match codec {
            CodecId::H264 => (psi::STREAM_TYPE_H264, 0xE0 + same_kind, Vec::new()),
            CodecId::H265 => (psi::STREAM_TYPE_H265, 0xE0 + same_kind, Vec::new()),
            CodecId::Aac => (psi::STREAM_TYPE_AAC_ADTS, 0xC0 + same_kind, Vec::new()),
            CodecId::Mp3 => {
                let mpeg1 = first_payload
                    .and_then(es::mpeg_audio_frame)
                    .is_none_or(|f| f.mpeg1);
                let t = if mpeg1 {
                    psi::STREAM_TYPE_MPEG1_AUDIO
                } else {
                    psi::STREAM_TYPE_MPEG2_AUDIO
                };
                (t, 0xC0 + same_kind, Vec::new())
            }
            // Opus in MPEG-TS (ETSI draft TS "Opus transport multiplexing"
            // v0.1.3 §5): private PES, registration descriptor 'Opus' and the
            // opus_audio_descriptor; the channel code is set from OpusHead.
            CodecId::Opus => (psi::STREAM_TYPE_PRIVATE_PES, 0xBD, opus_descriptors(2)),
            other => {
                return Err(TsError::Unsupported(format!(
                    "{other} (no MPEG-TS mapping in this muxer)"
                )))
            }
        };
        let pid = self
            .cfg
            .first_es_pid
            .checked_add(self.next_pid_offset())
            .ok_or(TsError::LimitExceeded {
                limit: "MAX_STREAMS",
                value: MAX_STREAMS,
            })?;
        self.streams.push(EsStream {
            codec,
            kind,
            track,
            pid,
            stream_id,
            stream_type,
            descriptors,
            cc: 0,
            params: Bytes::new(),
            adts: None,
            sample_rate: 0,
            aac_pending: Vec::new(),
            aac_pts0: 0,
            aac_dts0: 0,
            aac_key0: false,
            discontinuity_pending: false,
        });
        // PCR on the first video stream, else the first audio stream.
        let pcr = self
            .streams
            .iter()
            .find(|s| s.kind == FrameType::Video)
            .or_else(|| self.streams.first())
            .map(|s| s.pid);
        if pcr != self.pcr_pid {
            self.pcr_pid = pcr;
            self.force_pcr = true;
        }
        self.bump_pmt();
        Ok(self.streams.len() - 1)
    }

    fn next_pid_offset(&self) -> u16 {
        (0..)
            .find(|o| {
                !self
                    .streams
                    .iter()
                    .any(|s| s.pid == self.cfg.first_es_pid.wrapping_add(*o))
            })
            .unwrap_or(0)
    }

    fn bump_pmt(&mut self) {
        self.pmt_version = (self.pmt_version + 1) & 0x1F;
        self.psi_dirty = true;
    }

    /// Write PAT and PMT now. The sections are built (CRC included) only
    /// when the program changed.
    fn write_psi(&mut self) {
        if self.psi_dirty || self.psi_sections.is_none() {
            let pat = psi::write_pat(
                self.cfg.transport_stream_id,
                self.cfg.program_number,
                self.cfg.pmt_pid,
                0,
            );
            let streams: Vec<PmtStream> = self
                .streams
                .iter()
                .map(|s| PmtStream {
                    stream_type: s.stream_type,
                    pid: s.pid,
                    descriptors: s.descriptors.clone(),
                })
                .collect();
            let pmt = psi::write_pmt(
                self.cfg.program_number,
                self.pmt_version,
                self.pcr_pid.unwrap_or(crate::packet::NULL_PID),
                &streams,
            );
            self.psi_sections = Some((pat, pmt));
        }
        if let Some((pat, pmt)) = &self.psi_sections {
            write_section(&mut self.out, PAT_PID, &mut self.pat_cc, pat);
            write_section(&mut self.out, self.cfg.pmt_pid, &mut self.pmt_cc, pmt);
        }
        self.psi_dirty = false;
    }

    fn config(&mut self, idx: usize, frame: &MediaFrame) -> Result<(), TsError> {
        // Frames buffered under the old config go out under it.
        self.flush_aac(idx);
        let s = &mut self.streams[idx];
        match s.codec {
            CodecId::H264 => {
                s.params =
                    AvcDecoderConfigurationRecord::parse(&frame.payload)?.parameter_sets_annexb();
            }
            CodecId::H265 => {
                s.params =
                    HevcDecoderConfigurationRecord::parse(&frame.payload)?.parameter_sets_annexb();
            }
            CodecId::Aac => {
                let asc = AudioSpecificConfig::parse(&frame.payload)?;
                // Refuse now what ADTS cannot describe (object types > 4,
                // explicit frequencies), not at the first frame.
                let mut h = BytesMut::with_capacity(7);
                let adts = AdtsHeader::for_raw(&asc, 0, false)?;
                s.sample_rate = adts.sample_rate();
                adts.write_to(&mut h);
                s.adts = Some(
                    <[u8; 7]>::try_from(&h[..]).map_err(|_| TsError::BadPayload {
                        codec: "AAC",
                        reason: "ADTS header is not 7 bytes",
                    })?,
                );
            }
            CodecId::Opus => {
                let code = es::opus::channel_config_code(&frame.payload)?;
                let d = opus_descriptors(code);
                if d != s.descriptors {
                    s.descriptors = d;
                    self.bump_pmt();
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Before a frame at `dts` (90 kHz, unwrapped): PSI when due, PCR-only
    /// packets to bridge a gap. Returns the PCR to put in this frame's first
    /// packet, if it goes on the PCR PID.
    ///
    /// PAT and PMT go in front of every video keyframe (players and
    /// segmenters cut there and expect to be able to start decoding), and
    /// otherwise every `psi_interval`. Audio trailing the video clock does
    /// not re-trigger them; only a jump back of more than
    /// [`MAX_PCR_BRIDGE`] does.
    fn clock(&mut self, pid: u16, dts: i64, video_keyframe: bool) -> Option<i64> {
        if std::mem::take(&mut self.psi_fresh) && !self.psi_dirty {
            self.last_psi = Some(dts);
        } else if self.psi_dirty
            || video_keyframe
            || self.last_psi.is_none_or(|t| {
                dts.saturating_sub(t) >= self.cfg.psi_interval
                    || t.saturating_sub(dts) > MAX_PCR_BRIDGE
            })
        {
            self.write_psi();
            self.last_psi = Some(dts);
        }
        let pcr_pid = self.pcr_pid?;
        let mut target = dts - self.cfg.pcr_lead;
        if dts >= 0 {
            target = target.max(0);
        }
        match self.last_pcr {
            Some(last) if target >= last && target - last <= MAX_PCR_BRIDGE => {
                let mut last = last;
                while target - last > PCR_INTERVAL {
                    last += PCR_INTERVAL;
                    self.write_pcr_only(pcr_pid, last);
                }
                self.last_pcr = Some(last);
                if pid == pcr_pid && (target > last || self.force_pcr) {
                    self.last_pcr = Some(target);
                    self.force_pcr = false;
                    return Some(target);
                }
                if pid != pcr_pid && self.force_pcr {
                    self.write_pcr_only(pcr_pid, last);
                    self.force_pcr = false;
                }
                None
            }
            Some(last) if target < last && last - target <= MAX_PCR_BRIDGE => {
                // Behind the clock (audio trailing video): the PCR stays put.
                if self.force_pcr {
                    self.force_pcr = false;
                    if pid == pcr_pid {
                        return Some(last);
                    }
                    self.write_pcr_only(pcr_pid, last);
                }
                None
            }
            _ => {
                // First PCR, or a jump: start the clock here.
                self.last_pcr = Some(target);
                self.force_pcr = false;
                if pid == pcr_pid {
                    Some(target)
                } else {
                    self.write_pcr_only(pcr_pid, target);
                    None
                }
            }
        }
    }

    fn write_pcr_only(&mut self, pid: u16, pcr: i64) {
        let discontinuity = self
            .streams
            .iter_mut()
            .find(|s| s.pid == pid)
            .is_some_and(|s| std::mem::take(&mut s.discontinuity_pending));
        let cc = self
            .streams
            .iter()
            .find(|s| s.pid == pid)
            .map_or(0, |s| s.cc.wrapping_sub(1) & 0xF);
        let out = &mut self.out;
        out.reserve(PACKET_SIZE);
        // adaptation_field_control = '10' (no payload): the counter is not
        // incremented (§2.4.3.3), so repeat the last one.
        out.put_slice(&[
            SYNC_BYTE,
            (pid >> 8) as u8 & 0x1F,
            pid as u8,
            0x20 | cc,
            183,
        ]);
        out.put_u8(0x10 | if discontinuity { 0x80 } else { 0 });
        put_pcr(out, pcr);
        out.put_bytes(0xFF, PACKET_SIZE - 12);
    }

    /// Buffer one AAC frame, writing the pending PES first when this frame
    /// does not continue it.
    fn buffer_aac(&mut self, idx: usize, frame: &MediaFrame) -> Result<(), TsError> {
        let dts = frame.dts_in(TimeBase::MPEG_90K);
        let pts = frame.pts_in(TimeBase::MPEG_90K);
        let payload = &frame.payload;
        let s = &self.streams[idx];
        let mut adts = s.adts.ok_or(TsError::BadPayload {
            codec: "AAC",
            reason: "frame before its AudioSpecificConfig",
        })?;
        if payload.len() + 7 > MAX_ADTS_FRAME_LEN {
            return Err(TsError::LimitExceeded {
                limit: "MAX_ADTS_FRAME_LEN",
                value: MAX_ADTS_FRAME_LEN,
            });
        }
        // ISO/IEC 14496-3 §1.A.3.2.2 adts_variable_header: the 13-bit
        // aac_frame_length (header included) follows the 2 copyright
        // bits of byte 3 and ends in the top 3 bits of byte 5.
        let fl = payload.len() + 7;
        adts[3] = (adts[3] & 0xFC) | ((fl >> 11) & 0x03) as u8;
        adts[4] = (fl >> 3) as u8;
        adts[5] = (adts[5] & 0x1F) | (((fl & 0x07) as u8) << 5);
        // The demuxer gives frame n of a PES the PTS
        // pts0 + n * 1024 * 90000 / rate (integer division): pack only
        // frames whose PTS is exactly that, so the round trip is exact.
        let n = s.aac_pending.len();
        let contiguous = n > 0
            && n < MAX_AAC_FRAMES_PER_PES
            && s.sample_rate > 0
            && i64::try_from(n)
                .ok()
                .and_then(|n| n.checked_mul(1024 * 90_000))
                .map(|t| t / i64::from(s.sample_rate))
                .and_then(|t| s.aac_pts0.checked_add(t))
                == Some(pts);
        if !contiguous {
            self.flush_aac(idx);
        }
        let s = &mut self.streams[idx];
        if s.aac_pending.is_empty() {
            s.aac_pts0 = pts;
            s.aac_dts0 = dts;
            s.aac_key0 = frame.is_keyframe();
        }
        s.aac_pending.push((adts, payload.clone()));
        if s.aac_pending.len() >= MAX_AAC_FRAMES_PER_PES {
            self.flush_aac(idx);
        }
        Ok(())
    }

    /// Write the AAC frames pending on stream `idx` as one PES: the first
    /// frame's PTS, then ADTS header and raw frame for each
    /// (ISO/IEC 13818-1 §2.4.3.6, stream_type 0x0F).
    fn flush_aac(&mut self, idx: usize) {
        let Some(s) = self.streams.get_mut(idx) else {
            return;
        };
        if s.aac_pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut s.aac_pending);
        let (pts, dts, pid) = (s.aac_pts0, s.aac_dts0, s.pid);
        let pcr = self.clock(pid, dts, false);
        let audio_only = !self.streams.iter().any(|s| s.kind == FrameType::Video);
        let s = &mut self.streams[idx];
        let af = FirstAf {
            discontinuity: std::mem::take(&mut s.discontinuity_pending),
            random_access: s.aac_key0 || audio_only,
            pcr,
        };
        let body_len: usize = pending.iter().map(|(_, p)| 7 + p.len()).sum();
        let mut pes = [0u8; 19];
        let hlen = pes_header(&mut pes, s.stream_id, body_len, pts, pts, false);
        let mut pieces: Vec<&[u8]> = Vec::with_capacity(1 + 2 * pending.len());
        pieces.push(&pes[..hlen]);
        for (h, p) in &pending {
            pieces.push(h);
            pieces.push(p);
        }
        packetize(
            &mut self.out,
            s.pid,
            &mut s.cc,
            af,
            &pieces,
            hlen + body_len,
        );
        drop(pieces);
        // Keep the allocation for the next PES.
        let mut pending = pending;
        pending.clear();
        self.streams[idx].aac_pending = pending;
    }

    /// Write every stream's pending AAC frames.
    fn flush_all_aac(&mut self) {
        for i in 0..self.streams.len() {
            self.flush_aac(i);
        }
    }

    fn write_media(&mut self, idx: usize, frame: &MediaFrame) -> Result<(), TsError> {
        if self.streams[idx].codec == CodecId::Aac {
            return self.buffer_aac(idx, frame);
        }
        let dts = frame.dts_in(TimeBase::MPEG_90K);
        let pts = frame.pts_in(TimeBase::MPEG_90K);
        let pid = self.streams[idx].pid;
        let video_keyframe = frame.is_keyframe() && self.streams[idx].kind == FrameType::Video;
        if video_keyframe {
            // Audio before a keyframe goes out before it, so a segment cut
            // there holds all of it.
            self.flush_all_aac();
        }
        let pcr = self.clock(pid, dts, video_keyframe);
        let audio_only = !self.streams.iter().any(|s| s.kind == FrameType::Video);
        let s = &mut self.streams[idx];
        let keyframe = frame.is_keyframe();
        let af = FirstAf {
            discontinuity: std::mem::take(&mut s.discontinuity_pending),
            random_access: keyframe || (audio_only && s.kind == FrameType::Audio),
            pcr,
        };
        let payload = &frame.payload[..];
        let mut pes = [0u8; 19];
        match s.codec {
            CodecId::H264 | CodecId::H265 => {
                let h265 = s.codec == CodecId::H265;
                // Scan the length-prefixed NAL units (14496-15 §5.3.2).
                self.nal_pieces.clear();
                let (mut has_aud, mut has_params, mut pos) = (false, false, 0usize);
                while pos < payload.len() {
                    let len = payload
                        .get(pos..pos + 4)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                        .ok_or(TsError::BadPayload {
                            codec: codec_name(s.codec),
                            reason: "truncated NAL length",
                        })?;
                    let end = pos
                        .checked_add(4 + len)
                        .filter(|&e| e <= payload.len())
                        .ok_or(TsError::BadPayload {
                            codec: codec_name(s.codec),
                            reason: "NAL length past the frame",
                        })?;
                    if len > 0 {
                        let t = if h265 {
                            es::h265::nal_type(&payload[pos + 4..])
                        } else {
                            es::h264::nal_type(&payload[pos + 4..])
                        };
                        if self.nal_pieces.is_empty() {
                            has_aud = t == if h265 { es::h265::AUD } else { es::h264::AUD };
                        }
                        has_params |= if h265 {
                            t == es::h265::SPS
                        } else {
                            t == es::h264::SPS
                        };
                        self.nal_pieces.push((pos + 4, end));
                    }
                    pos = end;
                }
                let aud: &[u8] = match (has_aud, h265) {
                    (true, _) => &[],
                    (false, false) => &es::h264::AUD_NAL,
                    (false, true) => &es::h265::AUD_NAL,
                };
                let params: &[u8] = if keyframe && !has_params {
                    &s.params
                } else {
                    &[]
                };
                let body_len = aud.len()
                    + params.len()
                    + self
                        .nal_pieces
                        .iter()
                        .map(|(a, b)| b - a + 4)
                        .sum::<usize>();
                let hlen = pes_header(&mut pes, s.stream_id, body_len, pts, dts, true);
                let mut pieces: Vec<&[u8]> = Vec::with_capacity(3 + 2 * self.nal_pieces.len());
                pieces.extend([&pes[..hlen], aud, params]);
                for &(a, b) in &self.nal_pieces {
                    pieces.push(&START_CODE);
                    pieces.push(&payload[a..b]);
                }
                packetize(
                    &mut self.out,
                    s.pid,
                    &mut s.cc,
                    af,
                    &pieces,
                    hlen + body_len,
                );
            }
            CodecId::Mp3 => {
                let hlen = pes_header(&mut pes, s.stream_id, payload.len(), pts, pts, false);
                packetize(
                    &mut self.out,
                    s.pid,
                    &mut s.cc,
                    af,
                    &[&pes[..hlen], payload],
                    hlen + payload.len(),
                );
            }
            CodecId::Opus => {
                // opus_control_header: prefix 0x3FF, no trims, no extension,
                // then au_size as 0xFF bytes plus a remainder.
                let mut ctl = Vec::with_capacity(3 + payload.len() / 255);
                ctl.extend_from_slice(&[0x7F, 0xE0]);
                ctl.resize(2 + payload.len() / 255, 0xFF);
                ctl.push((payload.len() % 255) as u8);
                let body = ctl.len() + payload.len();
                let hlen = pes_header(&mut pes, s.stream_id, body, pts, pts, false);
                packetize(
                    &mut self.out,
                    s.pid,
                    &mut s.cc,
                    af,
                    &[&pes[..hlen], &ctl, payload],
                    hlen + body,
                );
            }
            _ => return Err(TsError::Unsupported(s.codec.name())),
        }
        Ok(())
    }
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

fn codec_name(c: CodecId) -> &'static str {
    match c {
        CodecId::H264 => "H.264",
        CodecId::H265 => "H.265",
        _ => "media",
    }
}

/// The registration descriptor 'Opus' (13818-1 §2.6.8) and the DVB
/// extension descriptor carrying the opus_audio_descriptor's
/// channel_config_code.
fn opus_descriptors(channel_code: u8) -> Vec<u8> {
    vec![
        psi::DESCRIPTOR_REGISTRATION,
        4,
        b'O',
        b'p',
        b'u',
        b's',
        psi::DESCRIPTOR_DVB_EXTENSION,
        2,
        psi::DVB_EXT_OPUS,
        channel_code,
    ]
}

fn to_33(ts: i64) -> u64 {
    ts.rem_euclid(TIMESTAMP_MODULUS) as u64
}

fn put_pcr(out: &mut BytesMut, pcr: i64) {
    // §2.4.3.5: program_clock_reference_base (33 bits, 90 kHz), 6 reserved
    // bits, extension (9 bits, 27 MHz remainder; 0 here).
    let base = to_33(pcr);
    out.put_slice(&[
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base as u8 & 1) << 7) | 0x7E,
        0,
    ]);
}

/// Write a PES header (§2.4.3.6) for a body of `body_len` bytes into `h`;
/// returns its length. `PES_packet_length` is 0 (unbounded) when the packet
/// would not fit 16 bits, which §2.4.3.7 allows for video only.
fn pes_header(
    h: &mut [u8; 19],
    stream_id: u8,
    body_len: usize,
    pts: i64,
    dts: i64,
    video: bool,
) -> usize {
    let with_dts = pts != dts;
    let ts_len = if with_dts { 10 } else { 5 };
    let packet_len = 3 + ts_len + body_len;
    let packet_len = match u16::try_from(packet_len) {
        Ok(n) => n,
        // Unbounded: only allowed for video elementary streams.
        Err(_) if video => 0,
        Err(_) => 0xFFFF,
    };
    h[..4].copy_from_slice(&[0, 0, 1, stream_id]);
    h[4..6].copy_from_slice(&packet_len.to_be_bytes());
    h[6] = 0x84; // '10', data_alignment_indicator
    h[7] = if with_dts { 0xC0 } else { 0x80 };
    h[8] = ts_len as u8;
    let mut t = [0u8; 5];
    write_timestamp(&mut t, if with_dts { 0x3 } else { 0x2 }, to_33(pts));
    h[9..14].copy_from_slice(&t);
    if with_dts {
        write_timestamp(&mut t, 0x1, to_33(dts));
        h[14..19].copy_from_slice(&t);
    }
    9 + ts_len
}

/// Split `pieces` (`total` bytes in all) into 188-byte packets on `pid`
/// (§2.4.3.2), the first one with `payload_unit_start_indicator` and the
/// adaptation field `first`, the last one padded with adaptation-field
/// stuffing (§2.4.3.5).
fn packetize(
    out: &mut BytesMut,
    pid: u16,
    cc: &mut u8,
    first: FirstAf,
    pieces: &[&[u8]],
    total: usize,
) {
    out.reserve((total / 184 + 2) * PACKET_SIZE);
    let mut remaining = total;
    let (mut piece, mut off) = (0usize, 0usize);
    let mut is_first = true;
    let pid_hi = (pid >> 8) as u8 & 0x1F;
    let pid_lo = pid as u8;
    while remaining > 0 {
        let (flags, pcr) = if is_first {
            let f = (u8::from(first.discontinuity) << 7)
                | (u8::from(first.random_access) << 6)
                | if first.pcr.is_some() { 0x10 } else { 0 };
            (f, first.pcr)
        } else {
            (0, None)
        };
        // Bytes of adaptation field this packet needs before stuffing.
        let af_base = if flags != 0 {
            2 + if pcr.is_some() { 6 } else { 0 }
        } else {
            0
        };
        let space = 184 - af_base;
        let n = remaining.min(space);
        let stuffing = space - n;
        let af_len = af_base + stuffing; // bytes of the whole adaptation field incl. its length byte
        let afc = if af_len > 0 { 0x30 } else { 0x10 };
        out.put_slice(&[
            SYNC_BYTE,
            (u8::from(is_first) << 6) | pid_hi,
            pid_lo,
            afc | *cc,
        ]);
        *cc = (*cc + 1) & 0xF;
        if af_len > 0 {
            out.put_u8((af_len - 1) as u8);
            if af_len > 1 {
                out.put_u8(flags);
                if let Some(p) = pcr {
                    put_pcr(out, p);
                }
                out.put_bytes(0xFF, af_len - 2 - if pcr.is_some() { 6 } else { 0 });
            }
        }
        let mut need = n;
        while need > 0 {
            let Some(p) = pieces.get(piece) else { break };
            let avail = &p[off.min(p.len())..];
            let take = avail.len().min(need);
            out.put_slice(&avail[..take]);
            need -= take;
            off += take;
            if off >= p.len() {
                piece += 1;
                off = 0;
            }
        }
        remaining -= n;
        is_first = false;
    }
}

/// Write one PSI section behind a pointer_field, padded with 0xFF
/// (§2.4.4.1, §2.4.4.2). Sections here always fit one packet.
fn write_section(out: &mut BytesMut, pid: u16, cc: &mut u8, section: &[u8]) {
    out.reserve(PACKET_SIZE);
    out.put_slice(&[
        SYNC_BYTE,
        0x40 | (pid >> 8) as u8 & 0x1F,
        pid as u8,
        0x10 | *cc,
        0,
    ]);
    *cc = (*cc + 1) & 0xF;
    let n = section.len().min(PACKET_SIZE - 5);
    out.put_slice(&section[..n]);
    out.put_bytes(0xFF, PACKET_SIZE - 5 - n);
}

impl Muxer for MpegTsMuxer {
    fn format(&self) -> ContainerFormat {
        ContainerFormat::MpegTs
    }

    fn init_segment(&mut self) -> Result<Option<Bytes>> {
        Ok(None)
    }

    fn start_segment(&mut self) -> Result<()> {
        self.flush_all_aac();
        self.write_psi();
        self.psi_fresh = true;
        self.force_pcr = true;
        Ok(())
    }

    fn write_frame(&mut self, frame: &MediaFrame) -> Result<()> {
        if frame.is_end_of_stream()
            || frame.frame_type == FrameType::Data
            || frame.codec == CodecId::Amf0Data
        {
            return Ok(());
        }
        if frame.flags.contains(FrameFlags::DISCONTINUITY) {
            self.discontinuity();
        }
        let idx = self.stream_index(
            frame.codec,
            frame.frame_type,
            frame.track,
            Some(&frame.payload),
        )?;
        if frame.is_config() {
            return Ok(self.config(idx, frame)?);
        }
        Ok(self.write_media(idx, frame)?)
    }

    fn discontinuity(&mut self) {
        self.flush_all_aac();
        for s in &mut self.streams {
            s.discontinuity_pending = true;
        }
        self.last_pcr = None;
        self.last_psi = None;
        self.force_pcr = true;
    }

    fn flush(&mut self) -> Result<Bytes> {
        // Every frame written so far goes out (LL-HLS parts need them all).
        self.flush_all_aac();
        let out = self.out.split().freeze();
        // The caller still holds `out`: give the next flush a buffer of the
        // same size now, so filling it never grows (copies) it.
        self.out
            .reserve(out.len().clamp(OUT_MIN_RESERVE, OUT_MAX_RESERVE));
        Ok(out)
    }
}
