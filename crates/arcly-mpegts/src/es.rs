//! Elementary-stream conversions at the TS edge: decoder configuration
//! records to in-band parameter sets and back, AudioSpecificConfig to ADTS
//! and back, Opus framing.
//!
//! Private helpers; the generic NAL/ADTS/record code lives in arcly-codec.

use crate::error::TsError;

/// H.264 NAL unit types (ITU-T H.264 Table 7-1).
pub(crate) mod h264 {
    pub const IDR: u8 = 5;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
    /// The access unit delimiter NAL with `primary_pic_type = 7` (any slice
    /// type) and its stop bit (H.264 §7.3.2.4).
    pub const AUD_NAL: [u8; 6] = [0, 0, 0, 1, 0x09, 0xF0];
    pub fn nal_type(nal: &[u8]) -> u8 {
        nal.first().map_or(0, |b| b & 0x1F)
    }
}

/// H.265 NAL unit types (ITU-T H.265 Table 7-1).
pub(crate) mod h265 {
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
    pub const AUD: u8 = 35;
    /// AUD NAL (type 35, layer 0, temporal id 1) with `pic_type = 2` and its
    /// stop bit (H.265 §7.3.2.5).
    pub const AUD_NAL: [u8; 7] = [0, 0, 0, 1, 0x46, 0x01, 0x50];
    pub fn nal_type(nal: &[u8]) -> u8 {
        nal.first().map_or(0, |b| (b >> 1) & 0x3F)
    }
    /// IRAP pictures: BLA, IDR, CRA and the reserved IRAP types 16..=23.
    pub fn is_irap(t: u8) -> bool {
        (16..=23).contains(&t)
    }
}

fn payload_err(codec: &'static str, reason: &'static str) -> TsError {
    TsError::BadPayload { codec, reason }
}

fn take<'a>(d: &mut &'a [u8], n: usize, codec: &'static str) -> Result<&'a [u8], TsError> {
    let head = d.get(..n).ok_or(payload_err(codec, "record truncated"))?;
    *d = &d[n..];
    Ok(head)
}

fn push_nal(out: &mut Vec<u8>, nal: &[u8]) {
    out.extend_from_slice(&[0, 0, 0, 1]);
    out.extend_from_slice(nal);
}

/// The SPS and PPS of an `AVCDecoderConfigurationRecord`
/// (ISO/IEC 14496-15 §5.3.3.1) as Annex-B with 4-byte start codes.
pub(crate) fn avcc_to_annexb(record: &[u8]) -> Result<Vec<u8>, TsError> {
    const C: &str = "avcC";
    let mut d = record;
    let head = take(&mut d, 6, C)?;
    if head[0] != 1 {
        return Err(payload_err(C, "configurationVersion is not 1"));
    }
    let mut out = Vec::with_capacity(record.len() + 16);
    let num_sps = usize::from(head[5] & 0x1F);
    for _ in 0..num_sps {
        let len = take(&mut d, 2, C)?;
        let nal = take(&mut d, usize::from(u16::from_be_bytes([len[0], len[1]])), C)?;
        push_nal(&mut out, nal);
    }
    let num_pps = usize::from(take(&mut d, 1, C)?[0]);
    for _ in 0..num_pps {
        let len = take(&mut d, 2, C)?;
        let nal = take(&mut d, usize::from(u16::from_be_bytes([len[0], len[1]])), C)?;
        push_nal(&mut out, nal);
    }
    Ok(out)
}

/// The parameter-set arrays of an `HEVCDecoderConfigurationRecord`
/// (ISO/IEC 14496-15 §8.3.3.1) as Annex-B with 4-byte start codes.
pub(crate) fn hvcc_to_annexb(record: &[u8]) -> Result<Vec<u8>, TsError> {
    const C: &str = "hvcC";
    let mut d = record;
    let head = take(&mut d, 23, C)?;
    if head[0] != 1 {
        return Err(payload_err(C, "configurationVersion is not 1"));
    }
    let mut out = Vec::with_capacity(record.len() + 16);
    for _ in 0..head[22] {
        let a = take(&mut d, 3, C)?;
        let n = u16::from_be_bytes([a[1], a[2]]);
        for _ in 0..n {
            let len = take(&mut d, 2, C)?;
            let nal = take(&mut d, usize::from(u16::from_be_bytes([len[0], len[1]])), C)?;
            push_nal(&mut out, nal);
        }
    }
    Ok(out)
}

/// Remove emulation-prevention bytes (H.264 §7.4.1, H.265 §7.4.2), at most
/// `limit` output bytes.
fn rbsp(nal: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len().min(limit));
    let mut zeros = 0;
    for &b in nal {
        if out.len() >= limit {
            break;
        }
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn u16_len(n: usize, codec: &'static str) -> Result<[u8; 2], TsError> {
    u16::try_from(n)
        .map(u16::to_be_bytes)
        .map_err(|_| payload_err(codec, "parameter set longer than 65535 bytes"))
}

/// Build an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1) with
/// `lengthSizeMinusOne = 3` from in-band SPS and PPS.
pub(crate) fn build_avcc(sps: &[Vec<u8>], pps: &[Vec<u8>]) -> Result<Vec<u8>, TsError> {
    const C: &str = "H.264";
    let first = sps.first().ok_or(payload_err(C, "no SPS"))?;
    let ptl = first
        .get(1..4)
        .ok_or(payload_err(C, "SPS shorter than 4 bytes"))?;
    let mut r = vec![
        1,
        ptl[0],
        ptl[1],
        ptl[2],
        0xFF,
        0xE0 | (sps.len().min(31) as u8),
    ];
    for s in sps.iter().take(31) {
        r.extend_from_slice(&u16_len(s.len(), C)?);
        r.extend_from_slice(s);
    }
    r.push(pps.len().min(255) as u8);
    for p in pps.iter().take(255) {
        r.extend_from_slice(&u16_len(p.len(), C)?);
        r.extend_from_slice(p);
    }
    Ok(r)
}

/// Build an `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3.1) with
/// `lengthSizeMinusOne = 3` from in-band VPS, SPS and PPS. The general
/// profile/tier/level fields are copied from the SPS's
/// `profile_tier_level` (H.265 §7.3.3).
pub(crate) fn build_hvcc(
    vps: &[Vec<u8>],
    sps: &[Vec<u8>],
    pps: &[Vec<u8>],
) -> Result<Vec<u8>, TsError> {
    const C: &str = "H.265";
    let first = sps.first().ok_or(payload_err(C, "no SPS"))?;
    // 2-byte NAL header, 1 byte of sps_video_parameter_set_id /
    // sps_max_sub_layers_minus1 / temporal_id_nesting, then 12 bytes of
    // general profile_tier_level.
    let raw = rbsp(first, 64);
    let ptl = raw
        .get(3..15)
        .ok_or(payload_err(C, "SPS too short for profile_tier_level"))?;
    let sub_layers = raw.get(2).map_or(0, |b| (b >> 1) & 0x7);
    let nesting = raw.get(2).map_or(1, |b| b & 1);
    let mut r = Vec::with_capacity(64);
    r.push(1);
    r.extend_from_slice(ptl); // profile_space..general_level_idc
    r.extend_from_slice(&[0xF0, 0x00]); // min_spatial_segmentation_idc = 0
    r.push(0xFC); // parallelismType = 0
    r.push(0xFD); // chroma_format_idc = 1 (4:2:0)
    r.push(0xF8); // bit_depth_luma_minus8 = 0
    r.push(0xF8); // bit_depth_chroma_minus8 = 0
    r.extend_from_slice(&[0, 0]); // avgFrameRate unknown
                                  // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3
    r.push(((sub_layers + 1) << 3) | (nesting << 2) | 0x3);
    let arrays: Vec<(u8, &[Vec<u8>])> = [(h265::VPS, vps), (h265::SPS, sps), (h265::PPS, pps)]
        .into_iter()
        .filter(|(_, a)| !a.is_empty())
        .collect();
    r.push(arrays.len() as u8);
    for (t, nals) in arrays {
        r.push(0x80 | t); // array_completeness = 1
        r.extend_from_slice(&(nals.len().min(0xFFFF) as u16).to_be_bytes());
        for n in nals.iter().take(0xFFFF) {
            r.extend_from_slice(&u16_len(n.len(), C)?);
            r.extend_from_slice(n);
        }
    }
    Ok(r)
}

/// Sampling frequencies by `samplingFrequencyIndex` (ISO/IEC 14496-3 Table 1.18).
pub(crate) const AAC_SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The fields of an AudioSpecificConfig an ADTS header can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AdtsParams {
    /// ADTS `profile` = audioObjectType − 1 (0..=3).
    pub profile: u8,
    /// `sampling_frequency_index` (0..=12).
    pub sf_index: u8,
    /// `channel_configuration` (1..=7).
    pub channels: u8,
}

/// The largest raw AAC frame an ADTS header can describe (13-bit
/// `frame_length` minus the 7-byte header).
pub(crate) const MAX_ADTS_PAYLOAD: usize = 0x1FFF - 7;

impl AdtsParams {
    /// Read the core of an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1);
    /// explicit SBR/PS signalling (object types 5 and 29) maps to the
    /// underlying core object type, as ADTS carries implicit signalling only.
    pub fn from_asc(asc: &[u8]) -> Result<Self, TsError> {
        const C: &str = "AudioSpecificConfig";
        let mut bits: u64 = 0;
        for (i, b) in asc.iter().take(8).enumerate() {
            bits |= u64::from(*b) << (56 - 8 * i);
        }
        if asc.len() < 2 {
            return Err(payload_err(C, "shorter than 2 bytes"));
        }
        let mut pos = 0u32;
        let mut read = |n: u32| {
            let v = (bits << pos) >> (64 - n);
            pos += n;
            v as u32
        };
        let mut aot = read(5);
        if aot == 31 {
            aot = 32 + read(6);
        }
        let mut sfi = read(4);
        if sfi == 15 {
            let freq = read(24);
            sfi = AAC_SAMPLE_RATES
                .iter()
                .position(|&r| r == freq)
                .ok_or_else(|| TsError::Unsupported(format!("AAC at {freq} Hz in ADTS")))?
                as u32;
        }
        let channels = read(4);
        if aot == 5 || aot == 29 {
            let ext = read(4);
            if ext == 15 {
                read(24);
            }
            aot = read(5);
        }
        if !(1..=4).contains(&aot) {
            return Err(TsError::Unsupported(format!(
                "AAC audio object type {aot} in ADTS"
            )));
        }
        if sfi > 12 {
            return Err(payload_err(C, "reserved samplingFrequencyIndex"));
        }
        if channels == 0 || channels > 7 {
            return Err(TsError::Unsupported(format!(
                "AAC channelConfiguration {channels} in ADTS (program_config_element)"
            )));
        }
        Ok(Self {
            profile: (aot - 1) as u8,
            sf_index: sfi as u8,
            channels: channels as u8,
        })
    }

    /// A 2-byte AudioSpecificConfig for these parameters.
    pub fn to_asc(self) -> [u8; 2] {
        let aot = self.profile + 1;
        [
            (aot << 3) | (self.sf_index >> 1),
            ((self.sf_index & 1) << 7) | (self.channels << 3),
        ]
    }

    /// The 7-byte ADTS header (ISO/IEC 14496-3 §1.A.2.2, no CRC) for a raw
    /// frame of `payload_len` bytes (at most [`MAX_ADTS_PAYLOAD`]).
    pub fn header(self, payload_len: usize) -> [u8; 7] {
        let len = (payload_len + 7) as u32;
        [
            0xFF,
            0xF1, // syncword, MPEG-4, layer 0, protection_absent
            (self.profile << 6) | (self.sf_index << 2) | (self.channels >> 2),
            ((self.channels & 3) << 6) | ((len >> 11) as u8 & 0x3),
            (len >> 3) as u8,
            ((len as u8 & 0x7) << 5) | 0x1F, // buffer fullness 0x7FF (VBR)
            0xFC,                            // number_of_raw_data_blocks_in_frame = 0
        ]
    }
}

/// One parsed ADTS header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AdtsFrame {
    pub params: AdtsParams,
    /// Header length (7, or 9 with CRC).
    pub header_len: usize,
    /// Whole frame length, header included.
    pub frame_len: usize,
}

/// Parse the ADTS header at the start of `d` (ISO/IEC 14496-3 §1.A.2.2).
pub(crate) fn parse_adts(d: &[u8]) -> Result<AdtsFrame, TsError> {
    const C: &str = "ADTS";
    let h = d.get(..7).ok_or(payload_err(C, "truncated header"))?;
    if h[0] != 0xFF || h[1] & 0xF6 != 0xF0 {
        return Err(payload_err(C, "no syncword"));
    }
    let header_len = if h[1] & 1 == 0 { 9 } else { 7 };
    let frame_len =
        (usize::from(h[3] & 0x3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
    if frame_len < header_len {
        return Err(payload_err(C, "frame_length shorter than the header"));
    }
    let sf_index = (h[2] >> 2) & 0xF;
    if sf_index > 12 {
        return Err(payload_err(C, "reserved sampling_frequency_index"));
    }
    Ok(AdtsFrame {
        params: AdtsParams {
            profile: h[2] >> 6,
            sf_index,
            channels: ((h[2] & 1) << 2) | (h[3] >> 6),
        },
        header_len,
        frame_len,
    })
}

/// The Opus parameters the TS mapping carries.
pub(crate) mod opus {
    use super::payload_err;
    use crate::error::TsError;

    /// Streams and coupled streams of the Vorbis channel layouts (RFC 7845
    /// §5.1.1.2), indexed by channel count − 1.
    const VORBIS_LAYOUT: [(u8, u8, &[u8]); 8] = [
        (1, 0, &[0]),
        (1, 1, &[0, 1]),
        (2, 1, &[0, 2, 1]),
        (2, 2, &[0, 1, 2, 3]),
        (3, 2, &[0, 4, 1, 2, 3]),
        (4, 2, &[0, 4, 1, 2, 3, 5]),
        (4, 3, &[0, 4, 1, 2, 3, 5, 6]),
        (5, 3, &[0, 6, 1, 2, 3, 4, 5, 7]),
    ];

    /// The `channel_config_code` of the Opus audio descriptor for an
    /// `OpusHead` (RFC 7845 §5.1): 1..=8 for the standard layouts.
    pub fn channel_config_code(head: &[u8]) -> Result<u8, TsError> {
        const C: &str = "OpusHead";
        if head.get(..8) != Some(b"OpusHead") {
            return Err(payload_err(C, "no OpusHead magic"));
        }
        let h = head
            .get(..19)
            .ok_or(payload_err(C, "shorter than 19 bytes"))?;
        let channels = h[9];
        let family = h[18];
        let ok = match (family, channels) {
            (0, 1 | 2) => true,
            (1, 1..=8) => {
                let (streams, coupled, map) = VORBIS_LAYOUT[usize::from(channels - 1)];
                head.get(19..21) == Some(&[streams, coupled][..])
                    && head.get(21..21 + usize::from(channels)) == Some(map)
            }
            _ => false,
        };
        if ok {
            Ok(channels)
        } else {
            Err(TsError::Unsupported(format!(
                "Opus with {channels} channels, mapping family {family}"
            )))
        }
    }

    /// A synthetic `OpusHead` for a `channel_config_code` of 1..=8 (48 kHz,
    /// pre-skip 0, Vorbis channel order).
    pub fn opus_head(code: u8) -> Option<Vec<u8>> {
        let channels = code;
        if !(1..=8).contains(&channels) {
            return None;
        }
        let mut h = b"OpusHead".to_vec();
        h.extend_from_slice(&[1, channels, 0, 0]);
        h.extend_from_slice(&48000u32.to_le_bytes());
        h.extend_from_slice(&[0, 0]);
        if channels <= 2 {
            h.push(0);
        } else {
            let (s, c, map) = VORBIS_LAYOUT[usize::from(channels - 1)];
            h.extend_from_slice(&[1, s, c]);
            h.extend_from_slice(map);
        }
        Some(h)
    }
}

/// What an MPEG audio frame header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MpegAudioFrame {
    /// Frame length in bytes, header included.
    pub len: usize,
    /// Whether it is MPEG-1 (else MPEG-2 or 2.5 low sample rates).
    pub mpeg1: bool,
    /// Samples per channel in the frame.
    pub samples: u32,
    /// Sample rate in Hz.
    pub rate: u32,
}

/// Parse the MPEG audio frame header that starts `d` (ISO/IEC 11172-3
/// §2.4.2.3, 13818-3 §2.4.2.3).
pub(crate) fn mpeg_audio_frame(d: &[u8]) -> Option<MpegAudioFrame> {
    let h = d.get(..4)?;
    if h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (h[1] >> 3) & 3; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    let layer = (h[1] >> 1) & 3; // 1 = III, 2 = II, 3 = I
    let br_idx = usize::from(h[2] >> 4);
    let sr_idx = usize::from((h[2] >> 2) & 3);
    let padding = usize::from((h[2] >> 1) & 1);
    if version == 1 || layer == 0 || br_idx == 0 || br_idx == 15 || sr_idx == 3 {
        return None;
    }
    let mpeg1 = version == 3;
    const BR_V1: [[u16; 15]; 3] = [
        [
            0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ],
        [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ],
        [
            0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ],
    ];
    const BR_V2: [[u16; 15]; 2] = [
        [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ],
        [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ];
    let layer_i = layer == 3;
    let kbps = if mpeg1 {
        BR_V1[usize::from(3 - layer)][br_idx]
    } else {
        BR_V2[usize::from(!layer_i)][br_idx]
    };
    let base_rate = [44100u32, 48000, 32000][sr_idx];
    let rate = match version {
        3 => base_rate,
        2 => base_rate / 2,
        _ => base_rate / 4,
    };
    let bitrate = u32::from(kbps) * 1000;
    let len = if layer_i {
        (12 * bitrate / rate + padding as u32) * 4
    } else if layer == 1 && !mpeg1 {
        72 * bitrate / rate + padding as u32
    } else {
        144 * bitrate / rate + padding as u32
    };
    let samples = match (layer_i, layer == 1, mpeg1) {
        (true, _, _) => 384,
        (false, true, false) => 576,
        _ => 1152,
    };
    Some(MpegAudioFrame {
        len: len as usize,
        mpeg1,
        samples,
        rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asc_adts_round_trip() {
        // AAC-LC, 48 kHz, mono: 0x11 0x88
        let p = AdtsParams::from_asc(&[0x11, 0x88]).unwrap();
        assert_eq!(
            p,
            AdtsParams {
                profile: 1,
                sf_index: 3,
                channels: 1
            }
        );
        assert_eq!(p.to_asc(), [0x11, 0x88]);
        let h = p.header(300);
        let f = parse_adts(&h).unwrap();
        assert_eq!(f.params, p);
        assert_eq!(f.frame_len, 307);
        // HE-AAC explicit SBR (aot 5) over AAC-LC at 24 kHz core
        let he = AdtsParams::from_asc(&[0x2B, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!(he.profile, 1);
        assert!(matches!(
            AdtsParams::from_asc(&[0x10, 0x00]),
            Err(TsError::Unsupported(_))
        ));
        assert!(AdtsParams::from_asc(&[0x11]).is_err());
    }

    #[test]
    fn records_to_annexb_and_back() {
        let sps = vec![0x67, 0x64, 0x00, 0x1E, 0xAC];
        let pps = vec![0x68, 0xEE, 0x3C, 0x80];
        let avcc = build_avcc(std::slice::from_ref(&sps), std::slice::from_ref(&pps)).unwrap();
        let annexb = avcc_to_annexb(&avcc).unwrap();
        assert_eq!(
            annexb,
            [&[0, 0, 0, 1][..], &sps, &[0, 0, 0, 1], &pps].concat()
        );
        assert!(avcc_to_annexb(&avcc[..avcc.len() - 1]).is_err());
        let vps = vec![0x40, 0x01, 0x0C];
        let hsps = [vec![0x42, 0x01, 0x01], vec![0x01; 12]].concat();
        let hpps = vec![0x44, 0x01, 0xC1];
        let hvcc = build_hvcc(
            std::slice::from_ref(&vps),
            std::slice::from_ref(&hsps),
            std::slice::from_ref(&hpps),
        )
        .unwrap();
        assert_eq!(hvcc[1..13], [0x01; 12]);
        let annexb = hvcc_to_annexb(&hvcc).unwrap();
        assert_eq!(
            annexb,
            [
                &[0, 0, 0, 1][..],
                &vps,
                &[0, 0, 0, 1],
                &hsps,
                &[0, 0, 0, 1],
                &hpps
            ]
            .concat()
        );
    }

    #[test]
    fn opus_heads() {
        for code in 1..=8 {
            let head = opus::opus_head(code).unwrap();
            assert_eq!(opus::channel_config_code(&head).unwrap(), code);
        }
        assert!(opus::opus_head(0).is_none());
    }

    #[test]
    fn mp3_frame_length() {
        // MPEG-1 layer III, 128 kbps, 44.1 kHz, no padding: 417 bytes
        assert_eq!(
            mpeg_audio_frame(&[0xFF, 0xFB, 0x90, 0x00]),
            Some(MpegAudioFrame {
                len: 417,
                mpeg1: true,
                samples: 1152,
                rate: 44100
            })
        );
        // MPEG-2 layer III 64 kbps 24 kHz: 144*64000/24000/... = 72*64000/24000 = 192
        assert_eq!(
            mpeg_audio_frame(&[0xFF, 0xF3, 0x84, 0x00]).map(|f| (f.len, f.mpeg1, f.samples)),
            Some((192, false, 576))
        );
        assert_eq!(mpeg_audio_frame(&[0xFF, 0x00, 0, 0]), None);
    }
}
