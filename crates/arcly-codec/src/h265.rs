//! H.265 / HEVC (ITU-T H.265 | ISO/IEC 23008-2): NAL header, VPS/SPS/PPS
//! basics and the `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3.1).
//!
//! The canonical H.265 frame payload is NAL units behind 4-byte lengths (use
//! the [`crate::nal`] functions for framing); the configuration frame carries
//! an [`HevcDecoderConfigurationRecord`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::BitReader;
use crate::error::{CodecError, Result};
use crate::h264::reduce;
use crate::nal::{remove_emulation_prevention, LengthPrefixedNals, LengthPrefixedSlices};

/// Longest parameter set accepted.
pub const MAX_PARAMETER_SET_LEN: usize = u16::MAX as usize;
/// Most NAL units per array, and most arrays, accepted in a configuration record.
pub const MAX_PARAMETER_SETS: usize = 64;
/// Largest picture dimension accepted from an SPS.
pub const MAX_DIMENSION: u32 = 65_535;

/// NAL unit type constants (H.265 Table 7-1).
pub mod nal_type {
    /// First IRAP type (BLA_W_LP).
    pub const BLA_W_LP: u8 = 16;
    /// IDR with leading pictures.
    pub const IDR_W_RADL: u8 = 19;
    /// IDR without leading pictures.
    pub const IDR_N_LP: u8 = 20;
    /// Clean random access.
    pub const CRA: u8 = 21;
    /// Last (reserved) IRAP type.
    pub const RSV_IRAP_23: u8 = 23;
    /// Video parameter set.
    pub const VPS: u8 = 32;
    /// Sequence parameter set.
    pub const SPS: u8 = 33;
    /// Picture parameter set.
    pub const PPS: u8 = 34;
    /// Access unit delimiter.
    pub const AUD: u8 = 35;
    /// Prefix SEI.
    pub const PREFIX_SEI: u8 = 39;
    /// Suffix SEI.
    pub const SUFFIX_SEI: u8 = 40;
}

/// The 2-byte NAL unit header (H.265 §7.3.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NalHeader {
    /// `nal_unit_type`.
    pub nal_type: u8,
    /// `nuh_layer_id`.
    pub layer_id: u8,
    /// `nuh_temporal_id_plus1 - 1`.
    pub temporal_id: u8,
}

impl NalHeader {
    /// Parse the header at the start of `nal`.
    pub fn parse(nal: &[u8]) -> Result<Self> {
        let h = nal
            .get(..2)
            .ok_or(CodecError::truncated("H.265 NAL header"))?;
        if h[0] & 0x80 != 0 {
            return Err(CodecError::invalid(
                "H.265 NAL header",
                "forbidden_zero_bit set",
            ));
        }
        let tid = h[1] & 7;
        if tid == 0 {
            return Err(CodecError::invalid(
                "H.265 NAL header",
                "nuh_temporal_id_plus1 is 0",
            ));
        }
        Ok(Self {
            nal_type: (h[0] >> 1) & 0x3f,
            layer_id: ((h[0] & 1) << 5) | (h[1] >> 3),
            temporal_id: tid - 1,
        })
    }
}

/// The `nal_unit_type` of `nal`, or `None` when it is shorter than a header.
pub fn nal_type_of(nal: &[u8]) -> Option<u8> {
    nal.first().map(|&b| (b >> 1) & 0x3f)
}

/// Whether `nal` is an IRAP picture's slice (BLA, IDR, CRA; types 16..=23).
pub fn is_irap(nal: &[u8]) -> bool {
    matches!(
        nal_type_of(nal),
        Some(nal_type::BLA_W_LP..=nal_type::RSV_IRAP_23)
    )
}

/// Whether a canonical payload (NAL units behind 4-byte lengths) holds an IRAP slice.
pub fn contains_keyframe(payload: &[u8]) -> bool {
    LengthPrefixedSlices::new(payload, 4).any(is_irap)
}

/// `profile_tier_level()` general part (H.265 §7.3.3), which is also the
/// 12 bytes after the version in the configuration record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ProfileTierLevel {
    /// `general_profile_space`.
    pub profile_space: u8,
    /// `general_tier_flag` (true = High tier).
    pub tier_flag: bool,
    /// `general_profile_idc` (1 Main, 2 Main 10, 3 Main Still, 4 RExt…).
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[0..32]`, flag 0 in the MSB.
    pub profile_compatibility_flags: u32,
    /// The 48 constraint indicator bits (progressive, interlaced, …).
    pub constraint_indicator_flags: u64,
    /// `general_level_idc` (30 × level, e.g. 93 for level 3.1).
    pub level_idc: u8,
}

impl ProfileTierLevel {
    fn read_general(r: &mut BitReader<'_>) -> Result<Self> {
        Ok(Self {
            profile_space: r.u8(2)?,
            tier_flag: r.bit()?,
            profile_idc: r.u8(5)?,
            profile_compatibility_flags: r.bits(32)?,
            constraint_indicator_flags: r.bits64(48)?,
            level_idc: r.u8(8)?,
        })
    }

    fn write(&self, out: &mut BytesMut) {
        out.put_u8(
            (self.profile_space & 3) << 6
                | u8::from(self.tier_flag) << 5
                | (self.profile_idc & 0x1f),
        );
        out.put_u32(self.profile_compatibility_flags);
        out.put_uint(self.constraint_indicator_flags & 0xffff_ffff_ffff, 6);
        out.put_u8(self.level_idc);
    }

    /// The RFC 6381 / ISO/IEC 14496-15 Annex E codec string with the given
    /// sample entry (`hvc1` or `hev1`), e.g. `hvc1.1.6.L93.B0`.
    pub fn codec_string(&self, fourcc: &str) -> String {
        let space = match self.profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        let mut s = format!(
            "{fourcc}.{space}{}.{:X}.{}{}",
            self.profile_idc,
            self.profile_compatibility_flags.reverse_bits(),
            if self.tier_flag { 'H' } else { 'L' },
            self.level_idc
        );
        let bytes = self.constraint_indicator_flags.to_be_bytes();
        let constraint = bytes.get(2..).unwrap_or(&[]);
        let used = constraint
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        for b in constraint.iter().take(used) {
            s.push_str(&format!(".{b:X}"));
        }
        s
    }

    /// The profile name as FFmpeg prints it.
    pub fn profile_name(&self) -> &'static str {
        match self.profile_idc {
            1 => "Main",
            2 => "Main 10",
            3 => "Main Still Picture",
            4 => "Rext",
            9 => "SCC",
            _ => "unknown",
        }
    }
}

// H.265 §7.3.3: skip the sub-layer part after the general fields.
fn skip_sub_layers(r: &mut BitReader<'_>, max_sub_layers_minus1: u8) -> Result<()> {
    let n = usize::from(max_sub_layers_minus1);
    let mut flags = [(false, false); 8];
    for f in flags.iter_mut().take(n) {
        *f = (r.bit()?, r.bit()?);
    }
    if n > 0 {
        r.skip(2 * (8 - n))?;
    }
    for &(profile, level) in flags.iter().take(n) {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    Ok(())
}

/// A parsed sequence parameter set: the fields a server needs (H.265 §7.3.2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    /// `sps_video_parameter_set_id`.
    pub vps_id: u8,
    /// `sps_max_sub_layers_minus1 + 1`.
    pub max_sub_layers: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// General profile, tier and level.
    pub ptl: ProfileTierLevel,
    /// `sps_seq_parameter_set_id`.
    pub id: u32,
    /// `chroma_format_idc`.
    pub chroma_format_idc: u8,
    /// `separate_colour_plane_flag`.
    pub separate_colour_plane: bool,
    /// Width after the conformance window.
    pub width: u32,
    /// Height after the conformance window.
    pub height: u32,
    /// Luma bit depth.
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// Sample aspect ratio from the VUI.
    pub sar: Option<(u16, u16)>,
    /// `(vui_num_units_in_tick, vui_time_scale)` from the VUI.
    pub timing: Option<(u32, u32)>,
}

/// Most short-term reference picture sets in an SPS (H.265 §7.4.3.2.1).
const MAX_ST_RPS: usize = 64;

impl Sps {
    /// Parse an SPS NAL unit (2-byte header included).
    pub fn parse(nal: &[u8]) -> Result<Self> {
        const W: &str = "H.265 SPS";
        if nal.len() > MAX_PARAMETER_SET_LEN {
            return Err(CodecError::limit(W, nal.len(), MAX_PARAMETER_SET_LEN));
        }
        if NalHeader::parse(nal)?.nal_type != nal_type::SPS {
            return Err(CodecError::invalid(W, "not an SPS NAL unit"));
        }
        let rbsp = remove_emulation_prevention(nal);
        let mut r = BitReader::new(rbsp.get(2..).unwrap_or(&[]), W);
        let vps_id = r.u8(4)?;
        let max_sub_layers_minus1 = r.u8(3)?;
        if max_sub_layers_minus1 > 6 {
            return Err(CodecError::invalid(W, "sps_max_sub_layers_minus1 above 6"));
        }
        let temporal_id_nesting = r.bit()?;
        let ptl = ProfileTierLevel::read_general(&mut r)?;
        skip_sub_layers(&mut r, max_sub_layers_minus1)?;
        let id = r.ue_max(15, "H.265 sps_seq_parameter_set_id")?;
        let chroma_format_idc = r.ue_max(3, "H.265 chroma_format_idc")? as u8;
        let separate_colour_plane = chroma_format_idc == 3 && r.bit()?;
        let w = r.ue()?;
        let h = r.ue()?;
        if w == 0 || h == 0 || w > MAX_DIMENSION || h > MAX_DIMENSION {
            return Err(CodecError::limit(
                "H.265 picture size",
                w.max(h),
                MAX_DIMENSION,
            ));
        }
        let (sub_w, sub_h) = match (chroma_format_idc, separate_colour_plane) {
            (1, _) => (2u64, 2u64),
            (2, _) => (2, 1),
            _ => (1, 1),
        };
        let win = if r.bit()? {
            [r.ue()?, r.ue()?, r.ue()?, r.ue()?].map(u64::from)
        } else {
            [0; 4]
        };
        let crop_w = sub_w * (win[0] + win[1]);
        let crop_h = sub_h * (win[2] + win[3]);
        if crop_w >= u64::from(w) || crop_h >= u64::from(h) {
            return Err(CodecError::invalid(
                W,
                "conformance window exceeds the picture",
            ));
        }
        let bit_depth_luma = r.ue_max(8, "H.265 bit_depth_luma_minus8")? as u8 + 8;
        let bit_depth_chroma = r.ue_max(8, "H.265 bit_depth_chroma_minus8")? as u8 + 8;
        let mut sps = Self {
            vps_id,
            max_sub_layers: max_sub_layers_minus1 + 1,
            temporal_id_nesting,
            ptl,
            id,
            chroma_format_idc,
            separate_colour_plane,
            width: w - crop_w as u32,
            height: h - crop_h as u32,
            bit_depth_luma,
            bit_depth_chroma,
            sar: None,
            timing: None,
        };
        // The rest only matters for the VUI; a malformed tail keeps the above.
        if let Ok((sar, timing)) = parse_tail(&mut r, max_sub_layers_minus1) {
            sps.sar = sar;
            sps.timing = timing;
        }
        Ok(sps)
    }

    /// Frame rate `(num, den)` from VUI timing (`time_scale / num_units_in_tick`).
    pub fn frame_rate(&self) -> Option<(u32, u32)> {
        let (tick, scale) = self.timing?;
        (tick != 0 && scale != 0).then(|| reduce(u64::from(scale), u64::from(tick)))
    }
}

type Tail = (Option<(u16, u16)>, Option<(u32, u32)>);

// H.265 §7.3.2.2.1 from log2_max_pic_order_cnt_lsb_minus4 to the VUI timing.
fn parse_tail(r: &mut BitReader<'_>, max_sub_layers_minus1: u8) -> Result<Tail> {
    let log2_max_poc_lsb = r.ue_max(12, "H.265 log2_max_pic_order_cnt_lsb_minus4")? + 4;
    let ordering_all = r.bit()?;
    let first = if ordering_all {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        r.ue()?;
        r.ue()?;
        r.ue()?;
    }
    for _ in 0..6 {
        r.ue()?; // coding/transform block sizes, hierarchy depths
    }
    if r.bit()? && r.bit()? {
        skip_scaling_list_data(r)?;
    }
    r.skip(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.bit()? {
        r.skip(8)?;
        r.ue()?;
        r.ue()?;
        r.skip(1)?;
    }
    let num_st = r.ue_max(MAX_ST_RPS as u32, "H.265 num_short_term_ref_pic_sets")? as usize;
    let mut num_delta_pocs = [0u32; MAX_ST_RPS];
    for i in 0..num_st {
        let n = skip_st_ref_pic_set(r, i, &num_delta_pocs)?;
        if let Some(slot) = num_delta_pocs.get_mut(i) {
            *slot = n;
        }
    }
    if r.bit()? {
        let n = r.ue_max(32, "H.265 num_long_term_ref_pics_sps")?;
        for _ in 0..n {
            r.skip(log2_max_poc_lsb as usize + 1)?;
        }
    }
    r.skip(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if !r.bit()? {
        return Ok((None, None));
    }
    // §E.2.1 vui_parameters
    let mut sar = None;
    if r.bit()? {
        let idc = r.u8(8)?;
        sar = if idc == 255 {
            Some((r.bits(16)? as u16, r.bits(16)? as u16))
        } else {
            crate::h264::sar_of(idc)
        };
    }
    if r.bit()? {
        r.skip(1)?;
    }
    if r.bit()? {
        r.skip(4)?;
        if r.bit()? {
            r.skip(24)?;
        }
    }
    if r.bit()? {
        r.ue()?;
        r.ue()?;
    }
    r.skip(3)?; // neutral_chroma_indication, field_seq, frame_field_info_present
    if r.bit()? {
        for _ in 0..4 {
            r.ue()?;
        }
    }
    let timing = if r.bit()? {
        Some((r.bits(32)?, r.bits(32)?))
    } else {
        None
    };
    Ok((sar, timing))
}

// H.265 §7.3.4
fn skip_scaling_list_data(r: &mut BitReader<'_>) -> Result<()> {
    for size_id in 0..4u32 {
        let step = if size_id == 3 { 3 } else { 1 };
        let mut matrix = 0;
        while matrix < 6 {
            if !r.bit()? {
                r.ue()?;
            } else {
                let coef = 64.min(1usize << (4 + (size_id << 1)));
                if size_id > 1 {
                    r.se()?;
                }
                for _ in 0..coef {
                    r.se()?;
                }
            }
            matrix += step;
        }
    }
    Ok(())
}

// H.265 §7.3.7; returns NumDeltaPocs of this set.
fn skip_st_ref_pic_set(
    r: &mut BitReader<'_>,
    idx: usize,
    num_delta_pocs: &[u32; MAX_ST_RPS],
) -> Result<u32> {
    if idx != 0 && r.bit()? {
        // inter_ref_pic_set_prediction_flag (delta_idx_minus1 only in slice headers)
        r.skip(1)?;
        r.ue()?;
        let ref_n = num_delta_pocs.get(idx - 1).copied().unwrap_or(0);
        let mut n = 0;
        for _ in 0..=ref_n {
            let used = r.bit()?;
            let use_delta = used || r.bit()?;
            n += u32::from(use_delta);
        }
        return Ok(n);
    }
    let neg = r.ue_max(16, "H.265 num_negative_pics")?;
    let pos = r.ue_max(16, "H.265 num_positive_pics")?;
    for _ in 0..neg + pos {
        r.ue()?;
        r.skip(1)?;
    }
    Ok(neg + pos)
}

/// One array of the configuration record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NalArray {
    /// `array_completeness`.
    pub complete: bool,
    /// `NAL_unit_type` of every unit in the array.
    pub nal_type: u8,
    /// The NAL units (slices of the parsed input).
    pub nalus: Vec<Bytes>,
}

/// `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3.1.2): the H.265
/// `CONFIG` frame payload and MP4's `hvcC` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HevcDecoderConfigurationRecord {
    /// General profile, tier and level.
    pub ptl: ProfileTierLevel,
    /// `min_spatial_segmentation_idc`.
    pub min_spatial_segmentation_idc: u16,
    /// `parallelismType`.
    pub parallelism_type: u8,
    /// `chromaFormat`.
    pub chroma_format: u8,
    /// `bitDepthLumaMinus8 + 8`.
    pub bit_depth_luma: u8,
    /// `bitDepthChromaMinus8 + 8`.
    pub bit_depth_chroma: u8,
    /// `avgFrameRate` in frames per 256 s (0 = unspecified).
    pub avg_frame_rate: u16,
    /// `constantFrameRate`.
    pub constant_frame_rate: u8,
    /// `numTemporalLayers`.
    pub num_temporal_layers: u8,
    /// `temporalIdNested`.
    pub temporal_id_nested: bool,
    /// NAL length prefix size (1, 2 or 4).
    pub length_size: u8,
    /// Parameter set and SEI arrays.
    pub arrays: Vec<NalArray>,
}

impl HevcDecoderConfigurationRecord {
    /// Parse a record; NAL units are `Bytes` slices of `data`.
    pub fn parse(data: &Bytes) -> Result<Self> {
        const W: &str = "HEVCDecoderConfigurationRecord";
        let h = data.get(..23).ok_or(CodecError::truncated(W))?;
        if h[0] != 1 {
            return Err(CodecError::unsupported(W, "configurationVersion is not 1"));
        }
        let mut r = BitReader::new(h.get(1..13).unwrap_or(&[]), W);
        let ptl = ProfileTierLevel::read_general(&mut r)?;
        let length_size = (h[21] & 3) + 1;
        if length_size == 3 {
            return Err(CodecError::invalid(
                W,
                "lengthSizeMinusOne of 2 is reserved",
            ));
        }
        let n_arrays = usize::from(h[22]);
        if n_arrays > MAX_PARAMETER_SETS {
            return Err(CodecError::limit(W, n_arrays, MAX_PARAMETER_SETS));
        }
        let mut pos = 23;
        let mut arrays = Vec::with_capacity(n_arrays);
        for _ in 0..n_arrays {
            let a = data.get(pos..pos + 3).ok_or(CodecError::truncated(W))?;
            let (complete, nal_type) = (a[0] & 0x80 != 0, a[0] & 0x3f);
            let n = usize::from(u16::from_be_bytes([a[1], a[2]]));
            if n > MAX_PARAMETER_SETS {
                return Err(CodecError::limit("HEVC NAL array", n, MAX_PARAMETER_SETS));
            }
            pos += 3;
            let mut nalus = Vec::with_capacity(n);
            for _ in 0..n {
                let l = data.get(pos..pos + 2).ok_or(CodecError::truncated(W))?;
                let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
                let end = pos + 2 + len;
                if end > data.len() {
                    return Err(CodecError::truncated(W));
                }
                nalus.push(data.slice(pos + 2..end));
                pos = end;
            }
            arrays.push(NalArray {
                complete,
                nal_type,
                nalus,
            });
        }
        Ok(Self {
            ptl,
            min_spatial_segmentation_idc: u16::from_be_bytes([h[13], h[14]]) & 0x0fff,
            parallelism_type: h[15] & 3,
            chroma_format: h[16] & 3,
            bit_depth_luma: (h[17] & 7) + 8,
            bit_depth_chroma: (h[18] & 7) + 8,
            avg_frame_rate: u16::from_be_bytes([h[19], h[20]]),
            constant_frame_rate: h[21] >> 6,
            num_temporal_layers: (h[21] >> 3) & 7,
            temporal_id_nested: h[21] & 4 != 0,
            length_size,
            arrays,
        })
    }

    /// Build a record from VPS, SPS and PPS NAL units (length size 4, arrays
    /// marked complete). Profile, chroma and bit depth come from the first SPS.
    pub fn from_parameter_sets(vps: Vec<Bytes>, sps: Vec<Bytes>, pps: Vec<Bytes>) -> Result<Self> {
        let first = sps.first().ok_or(CodecError::invalid(
            "HEVCDecoderConfigurationRecord",
            "no SPS",
        ))?;
        let s = Sps::parse(first)?;
        if vps.len().max(sps.len()).max(pps.len()) > MAX_PARAMETER_SETS {
            return Err(CodecError::limit(
                "HEVC parameter sets",
                vps.len().max(sps.len()).max(pps.len()),
                MAX_PARAMETER_SETS,
            ));
        }
        let arrays = [
            (nal_type::VPS, vps),
            (nal_type::SPS, sps),
            (nal_type::PPS, pps),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(t, nalus)| NalArray {
            complete: true,
            nal_type: t,
            nalus,
        })
        .collect();
        Ok(Self {
            ptl: s.ptl,
            min_spatial_segmentation_idc: 0,
            parallelism_type: 0,
            chroma_format: s.chroma_format_idc,
            bit_depth_luma: s.bit_depth_luma,
            bit_depth_chroma: s.bit_depth_chroma,
            avg_frame_rate: 0,
            constant_frame_rate: 0,
            num_temporal_layers: s.max_sub_layers,
            temporal_id_nested: s.temporal_id_nesting,
            length_size: 4,
            arrays,
        })
    }

    /// Collect VPS/SPS/PPS from a canonical access unit and build a record,
    /// or `None` when one of them is missing.
    pub fn from_access_unit(payload: &Bytes) -> Result<Option<Self>> {
        let (mut v, mut s, mut p) = (Vec::new(), Vec::new(), Vec::new());
        for nal in LengthPrefixedNals::new(payload.clone(), 4) {
            let nal = nal?;
            let list = match nal_type_of(&nal) {
                Some(nal_type::VPS) => &mut v,
                Some(nal_type::SPS) => &mut s,
                Some(nal_type::PPS) => &mut p,
                _ => continue,
            };
            if list.len() < MAX_PARAMETER_SETS {
                list.push(nal);
            }
        }
        if v.is_empty() || s.is_empty() || p.is_empty() {
            return Ok(None);
        }
        Self::from_parameter_sets(v, s, p).map(Some)
    }

    /// Append the serialized record to `out`.
    pub fn write_to(&self, out: &mut BytesMut) -> Result<()> {
        const W: &str = "HEVCDecoderConfigurationRecord";
        if !matches!(self.length_size, 1 | 2 | 4) {
            return Err(CodecError::invalid(W, "length size must be 1, 2 or 4"));
        }
        let n_arrays = u8::try_from(self.arrays.len())
            .map_err(|_| CodecError::limit(W, self.arrays.len(), 255))?;
        out.put_u8(1);
        self.ptl.write(out);
        out.put_u16(0xf000 | (self.min_spatial_segmentation_idc & 0x0fff));
        out.put_u8(0xfc | (self.parallelism_type & 3));
        out.put_u8(0xfc | (self.chroma_format & 3));
        out.put_u8(0xf8 | (self.bit_depth_luma.wrapping_sub(8) & 7));
        out.put_u8(0xf8 | (self.bit_depth_chroma.wrapping_sub(8) & 7));
        out.put_u16(self.avg_frame_rate);
        out.put_u8(
            (self.constant_frame_rate & 3) << 6
                | (self.num_temporal_layers & 7) << 3
                | u8::from(self.temporal_id_nested) << 2
                | (self.length_size - 1),
        );
        out.put_u8(n_arrays);
        for a in &self.arrays {
            let n = u16::try_from(a.nalus.len())
                .map_err(|_| CodecError::limit(W, a.nalus.len(), 65535))?;
            out.put_u8(u8::from(a.complete) << 7 | (a.nal_type & 0x3f));
            out.put_u16(n);
            for nal in &a.nalus {
                let len = u16::try_from(nal.len())
                    .map_err(|_| CodecError::limit(W, nal.len(), MAX_PARAMETER_SET_LEN))?;
                out.put_u16(len);
                out.put_slice(nal);
            }
        }
        Ok(())
    }

    /// The serialized record.
    pub fn to_bytes(&self) -> Result<Bytes> {
        let mut out = BytesMut::with_capacity(64);
        self.write_to(&mut out)?;
        Ok(out.freeze())
    }

    /// The NAL units of type `t` across all arrays.
    pub fn nalus_of(&self, t: u8) -> impl Iterator<Item = &Bytes> {
        self.arrays
            .iter()
            .filter(move |a| a.nal_type == t)
            .flat_map(|a| a.nalus.iter())
    }

    /// Parse the first SPS.
    pub fn parse_sps(&self) -> Result<Sps> {
        Sps::parse(
            self.nalus_of(nal_type::SPS)
                .next()
                .ok_or(CodecError::invalid(
                    "HEVCDecoderConfigurationRecord",
                    "no SPS",
                ))?,
        )
    }

    /// The RFC 6381 codec string with the `hvc1` sample entry.
    pub fn codec_string(&self) -> String {
        self.ptl.codec_string("hvc1")
    }

    /// VPS, SPS and PPS as Annex-B, for MPEG-TS/RTSP in front of an IRAP.
    pub fn parameter_sets_annexb(&self) -> Bytes {
        let mut out = BytesMut::new();
        for t in [nal_type::VPS, nal_type::SPS, nal_type::PPS] {
            for nal in self.nalus_of(t) {
                out.put_slice(&[0, 0, 0, 1]);
                out.put_slice(nal);
            }
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_string_examples() {
        let ptl = ProfileTierLevel {
            profile_space: 0,
            tier_flag: false,
            profile_idc: 1,
            profile_compatibility_flags: 0x6000_0000,
            constraint_indicator_flags: 0xb000_0000_0000,
            level_idc: 93,
        };
        assert_eq!(ptl.codec_string("hvc1"), "hvc1.1.6.L93.B0");
    }

    #[test]
    fn nal_header_and_irap() {
        let h = NalHeader::parse(&[0x40, 0x01]).unwrap();
        assert_eq!((h.nal_type, h.layer_id, h.temporal_id), (32, 0, 0));
        assert!(is_irap(&[0x26, 0x01]));
        assert!(!is_irap(&[0x02, 0x01]));
        assert!(contains_keyframe(&[0, 0, 0, 2, 0x28, 0x01]));
    }
}
