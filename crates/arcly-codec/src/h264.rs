//! H.264 / AVC (ITU-T H.264 | ISO/IEC 14496-10): NAL units, SPS/PPS and the
//! `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1).
//!
//! The kernel's canonical H.264 frame payload is NAL units behind 4-byte
//! lengths; the configuration frame carries an [`AvcDecoderConfigurationRecord`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::BitReader;
use crate::error::{CodecError, Result};
pub use crate::nal::{
    annexb_to_length_prefixed, annexb_to_length_prefixed_into, length_prefixed_to_annexb,
    length_prefixed_to_annexb_into, remove_emulation_prevention, AnnexBNals, LengthPrefixedNals,
};
use crate::nal::{AnnexBSlices, LengthPrefixedSlices};

/// Longest SPS/PPS accepted (the configuration record stores 16-bit lengths).
pub const MAX_PARAMETER_SET_LEN: usize = u16::MAX as usize;
/// Most parameter sets of one kind accepted in a configuration record.
pub const MAX_PARAMETER_SETS: usize = 32;
/// Largest picture dimension (pixels) accepted from an SPS.
pub const MAX_DIMENSION: u32 = 16_384 * 2;

/// NAL unit type constants (H.264 Table 7-1).
pub mod nal_type {
    /// Coded slice of a non-IDR picture.
    pub const SLICE: u8 = 1;
    /// Coded slice data partition A.
    pub const SLICE_DPA: u8 = 2;
    /// Coded slice of an IDR picture.
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
    /// End of sequence.
    pub const END_OF_SEQUENCE: u8 = 10;
    /// End of stream.
    pub const END_OF_STREAM: u8 = 11;
    /// Filler data.
    pub const FILLER: u8 = 12;
    /// Sequence parameter set extension.
    pub const SPS_EXT: u8 = 13;
    /// Subset sequence parameter set (SVC/MVC).
    pub const SUBSET_SPS: u8 = 15;
}

/// The `nal_unit_type` of a NAL unit whose first byte is `header` (H.264 §7.3.1).
pub const fn nal_type(header: u8) -> u8 {
    header & 0x1f
}

/// The `nal_unit_type` of `nal`, or `None` when it is empty.
pub fn nal_type_of(nal: &[u8]) -> Option<u8> {
    nal.first().map(|&h| nal_type(h))
}

/// Whether `nal` is a slice of an IDR picture.
pub fn is_idr(nal: &[u8]) -> bool {
    nal_type_of(nal) == Some(nal_type::IDR)
}

/// Whether a canonical payload (NAL units behind 4-byte lengths) holds an IDR slice.
pub fn contains_keyframe(payload: &[u8]) -> bool {
    contains_keyframe_length_prefixed(payload, 4)
}

/// Whether length-prefixed NAL units (`length_size` 1..=4) hold an IDR slice.
pub fn contains_keyframe_length_prefixed(payload: &[u8], length_size: u8) -> bool {
    LengthPrefixedSlices::new(payload, length_size).any(is_idr)
}

/// Whether an Annex-B access unit holds an IDR slice.
pub fn contains_keyframe_annexb(data: &[u8]) -> bool {
    AnnexBSlices::new(data).any(is_idr)
}

/// Whether `profile_idc` carries the chroma/bit-depth fields in its SPS
/// (H.264 §7.3.2.1.1).
pub const fn is_high_profile(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Sample aspect ratios of `aspect_ratio_idc` 1..=16 (H.264 Table E-1).
const SAR_TABLE: [(u16, u16); 17] = [
    (0, 0),
    (1, 1),
    (12, 11),
    (10, 11),
    (16, 11),
    (40, 33),
    (24, 11),
    (20, 11),
    (32, 11),
    (80, 33),
    (18, 11),
    (15, 11),
    (64, 33),
    (160, 99),
    (4, 3),
    (3, 2),
    (2, 1),
];

/// Video usability information (H.264 Annex E.1.1), the fields a server needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vui {
    /// Sample aspect ratio `(width, height)`, when signalled.
    pub sar: Option<(u16, u16)>,
    /// `video_full_range_flag` (when the video signal type is present).
    pub full_range: Option<bool>,
    /// `(colour_primaries, transfer_characteristics, matrix_coefficients)`.
    pub colour: Option<(u8, u8, u8)>,
    /// `(num_units_in_tick, time_scale, fixed_frame_rate_flag)`.
    pub timing: Option<(u32, u32, bool)>,
    /// `max_num_reorder_frames` from the bitstream restriction.
    pub max_num_reorder_frames: Option<u32>,
}

/// A parsed sequence parameter set (H.264 §7.3.2.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc`.
    pub profile_idc: u8,
    /// The byte of `constraint_set0_flag`..`constraint_set5_flag` and reserved bits.
    pub constraint_flags: u8,
    /// `level_idc` (e.g. 31 for level 3.1).
    pub level_idc: u8,
    /// `seq_parameter_set_id`.
    pub id: u32,
    /// `chroma_format_idc` (0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4).
    pub chroma_format_idc: u8,
    /// `separate_colour_plane_flag`.
    pub separate_colour_plane: bool,
    /// Luma bit depth (8..=14).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8..=14).
    pub bit_depth_chroma: u8,
    /// `log2_max_frame_num_minus4 + 4`.
    pub log2_max_frame_num: u8,
    /// `pic_order_cnt_type`.
    pub pic_order_cnt_type: u8,
    /// `max_num_ref_frames`.
    pub max_num_ref_frames: u32,
    /// `frame_mbs_only_flag` (false means interlaced coding is possible).
    pub frame_mbs_only: bool,
    /// Coded width in pixels after cropping.
    pub width: u32,
    /// Coded height in pixels after cropping.
    pub height: u32,
    /// Cropping `(left, right, top, bottom)` in pixels.
    pub crop: (u32, u32, u32, u32),
    /// VUI, when present and well formed.
    pub vui: Option<Vui>,
}

impl Sps {
    /// Parse an SPS NAL unit (header byte included, emulation prevention
    /// still in place).
    pub fn parse(nal: &[u8]) -> Result<Self> {
        const W: &str = "H.264 SPS";
        if nal.len() > MAX_PARAMETER_SET_LEN {
            return Err(CodecError::limit(W, nal.len(), MAX_PARAMETER_SET_LEN));
        }
        match nal_type_of(nal) {
            Some(nal_type::SPS) | Some(nal_type::SUBSET_SPS) => {}
            Some(_) => return Err(CodecError::invalid(W, "not an SPS NAL unit")),
            None => return Err(CodecError::truncated(W)),
        }
        let rbsp = remove_emulation_prevention(nal);
        let mut r = BitReader::new(rbsp.get(1..).unwrap_or(&[]), W);
        let profile_idc = r.u8(8)?;
        let constraint_flags = r.u8(8)?;
        let level_idc = r.u8(8)?;
        let id = r.ue_max(31, "H.264 seq_parameter_set_id")?;
        let (mut chroma_format_idc, mut separate_colour_plane, mut bd_l, mut bd_c) =
            (1u8, false, 8u8, 8u8);
        if is_high_profile(profile_idc) {
            chroma_format_idc = r.ue_max(3, "H.264 chroma_format_idc")? as u8;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.bit()?;
            }
            bd_l = r.ue_max(6, "H.264 bit_depth_luma_minus8")? as u8 + 8;
            bd_c = r.ue_max(6, "H.264 bit_depth_chroma_minus8")? as u8 + 8;
            r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
            if r.bit()? {
                // seq_scaling_matrix_present_flag
                let n = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..n {
                    if r.bit()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        let log2_max_frame_num = r.ue_max(12, "H.264 log2_max_frame_num_minus4")? as u8 + 4;
        let pic_order_cnt_type = r.ue_max(2, "H.264 pic_order_cnt_type")? as u8;
        if pic_order_cnt_type == 0 {
            r.ue_max(12, "H.264 log2_max_pic_order_cnt_lsb_minus4")?;
        } else if pic_order_cnt_type == 1 {
            r.skip(1)?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let n = r.ue_max(255, "H.264 num_ref_frames_in_pic_order_cnt_cycle")?;
            for _ in 0..n {
                r.se()?;
            }
        }
        let max_num_ref_frames = r.ue()?;
        r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
        let w_mbs = u64::from(r.ue()?) + 1;
        let h_map = u64::from(r.ue()?) + 1;
        let frame_mbs_only = r.bit()?;
        if !frame_mbs_only {
            r.skip(1)?; // mb_adaptive_frame_field_flag
        }
        r.skip(1)?; // direct_8x8_inference_flag
        let crop_units = if r.bit()? {
            [r.ue()?, r.ue()?, r.ue()?, r.ue()?]
        } else {
            [0; 4]
        };
        // §7.4.2.1.1: CropUnitX/Y from ChromaArrayType
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_w, sub_h) = match chroma_array_type {
            1 => (2u64, 2u64),
            2 => (2, 1),
            _ => (1, 1),
        };
        let field = if frame_mbs_only { 1u64 } else { 2 };
        let (cx, cy) = if chroma_array_type == 0 {
            (1, field)
        } else {
            (sub_w, sub_h * field)
        };
        let full_w = w_mbs * 16;
        let full_h = field * h_map * 16;
        let [l, rr, t, b] = crop_units.map(u64::from);
        let crop_w = (l + rr) * cx;
        let crop_h = (t + b) * cy;
        if full_w > u64::from(MAX_DIMENSION) || full_h > u64::from(MAX_DIMENSION) {
            return Err(CodecError::limit(
                "H.264 picture size",
                full_w.max(full_h),
                MAX_DIMENSION,
            ));
        }
        if crop_w >= full_w || crop_h >= full_h {
            return Err(CodecError::invalid(W, "cropping exceeds the picture"));
        }
        let vui = if r.bit()? {
            parse_vui(&mut r).ok()
        } else {
            None
        };
        Ok(Self {
            profile_idc,
            constraint_flags,
            level_idc,
            id,
            chroma_format_idc,
            separate_colour_plane,
            bit_depth_luma: bd_l,
            bit_depth_chroma: bd_c,
            log2_max_frame_num,
            pic_order_cnt_type,
            max_num_ref_frames,
            frame_mbs_only,
            width: (full_w - crop_w) as u32,
            height: (full_h - crop_h) as u32,
            crop: (
                (l * cx) as u32,
                (rr * cx) as u32,
                (t * cy) as u32,
                (b * cy) as u32,
            ),
            vui,
        })
    }

    /// Frame rate as a reduced fraction `(num, den)` from VUI timing
    /// (`time_scale / (2 * num_units_in_tick)`, H.264 §E.2.1), when present.
    pub fn frame_rate(&self) -> Option<(u32, u32)> {
        let (tick, scale, _) = self.vui.as_ref()?.timing?;
        if tick == 0 || scale == 0 {
            return None;
        }
        Some(reduce(u64::from(scale), 2 * u64::from(tick)))
    }

    /// Sample aspect ratio, when the VUI signals one.
    pub fn sar(&self) -> Option<(u16, u16)> {
        self.vui.as_ref()?.sar
    }

    /// The profile name as FFmpeg prints it (`High`, `Constrained Baseline`, …).
    pub fn profile_name(&self) -> &'static str {
        profile_name(self.profile_idc, self.constraint_flags)
    }
}

/// The profile name FFmpeg prints for `profile_idc` and the constraint byte.
pub fn profile_name(profile_idc: u8, constraint_flags: u8) -> &'static str {
    let set1 = constraint_flags & 0x40 != 0;
    let set3 = constraint_flags & 0x10 != 0;
    match profile_idc {
        66 if set1 => "Constrained Baseline",
        66 => "Baseline",
        77 => "Main",
        88 => "Extended",
        100 => "High",
        110 if set3 => "High 10 Intra",
        110 => "High 10",
        122 if set3 => "High 4:2:2 Intra",
        122 => "High 4:2:2",
        244 if set3 => "High 4:4:4 Intra",
        244 => "High 4:4:4 Predictive",
        44 => "CAVLC 4:4:4",
        _ => "unknown",
    }
}

/// The sample aspect ratio of a non-extended `aspect_ratio_idc` (Table E-1,
/// shared by H.264 and H.265).
pub(crate) fn sar_of(idc: u8) -> Option<(u16, u16)> {
    SAR_TABLE
        .get(usize::from(idc))
        .copied()
        .filter(|s| s.0 != 0)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Reduce `num/den` and clamp the parts into `u32`.
pub(crate) fn reduce(num: u64, den: u64) -> (u32, u32) {
    let g = gcd(num, den).max(1);
    let (mut n, mut d) = (num / g, den / g);
    while n > u64::from(u32::MAX) || d > u64::from(u32::MAX) {
        n >>= 1;
        d >>= 1;
    }
    (n as u32, d.max(1) as u32)
}

// H.264 §7.3.2.1.1.1
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(CodecError::invalid("H.264 delta_scale", "out of range"));
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

// H.264 §E.1.1
fn parse_vui(r: &mut BitReader<'_>) -> Result<Vui> {
    let mut v = Vui::default();
    if r.bit()? {
        let idc = r.u8(8)?;
        v.sar = if idc == 255 {
            Some((r.bits(16)? as u16, r.bits(16)? as u16))
        } else {
            sar_of(idc)
        };
    }
    if r.bit()? {
        r.skip(1)?; // overscan_appropriate_flag
    }
    if r.bit()? {
        r.skip(3)?; // video_format
        v.full_range = Some(r.bit()?);
        if r.bit()? {
            v.colour = Some((r.u8(8)?, r.u8(8)?, r.u8(8)?));
        }
    }
    if r.bit()? {
        r.ue()?;
        r.ue()?;
    }
    if r.bit()? {
        let tick = r.bits(32)?;
        let scale = r.bits(32)?;
        let fixed = r.bit()?;
        v.timing = Some((tick, scale, fixed));
    }
    let nal_hrd = r.bit()?;
    if nal_hrd {
        skip_hrd(r)?;
    }
    let vcl_hrd = r.bit()?;
    if vcl_hrd {
        skip_hrd(r)?;
    }
    if nal_hrd || vcl_hrd {
        r.skip(1)?; // low_delay_hrd_flag
    }
    r.skip(1)?; // pic_struct_present_flag
    if r.bit()? {
        r.skip(1)?; // motion_vectors_over_pic_boundaries_flag
        for _ in 0..4 {
            r.ue()?;
        }
        v.max_num_reorder_frames = Some(r.ue()?);
        r.ue()?; // max_dec_frame_buffering
    }
    Ok(v)
}

// H.264 §E.1.2
fn skip_hrd(r: &mut BitReader<'_>) -> Result<()> {
    let cpb_cnt = r.ue_max(31, "H.264 cpb_cnt_minus1")? + 1;
    r.skip(8)?;
    for _ in 0..cpb_cnt {
        r.ue()?;
        r.ue()?;
        r.skip(1)?;
    }
    r.skip(20)
}

/// A parsed picture parameter set: the basic fields (H.264 §7.3.2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pps {
    /// `pic_parameter_set_id`.
    pub id: u32,
    /// `seq_parameter_set_id` of the SPS it refers to.
    pub sps_id: u32,
    /// `entropy_coding_mode_flag` (true = CABAC).
    pub entropy_coding_mode: bool,
    /// `bottom_field_pic_order_in_frame_present_flag`.
    pub bottom_field_pic_order_in_frame_present: bool,
    /// `num_slice_groups_minus1 + 1`.
    pub num_slice_groups: u32,
    /// `num_ref_idx_l0_default_active_minus1 + 1`.
    pub num_ref_idx_l0_default_active: u32,
    /// `num_ref_idx_l1_default_active_minus1 + 1`.
    pub num_ref_idx_l1_default_active: u32,
    /// `weighted_pred_flag`.
    pub weighted_pred: bool,
    /// `weighted_bipred_idc`.
    pub weighted_bipred_idc: u8,
    /// `pic_init_qp_minus26 + 26`.
    pub pic_init_qp: i32,
    /// `chroma_qp_index_offset`.
    pub chroma_qp_index_offset: i32,
    /// `deblocking_filter_control_present_flag`.
    pub deblocking_filter_control_present: bool,
    /// `constrained_intra_pred_flag`.
    pub constrained_intra_pred: bool,
    /// `redundant_pic_cnt_present_flag`.
    pub redundant_pic_cnt_present: bool,
    /// `transform_8x8_mode_flag` (false when the High-profile tail is absent).
    pub transform_8x8_mode: bool,
}

impl Pps {
    /// Parse a PPS NAL unit (header byte included).
    pub fn parse(nal: &[u8]) -> Result<Self> {
        const W: &str = "H.264 PPS";
        if nal.len() > MAX_PARAMETER_SET_LEN {
            return Err(CodecError::limit(W, nal.len(), MAX_PARAMETER_SET_LEN));
        }
        match nal_type_of(nal) {
            Some(nal_type::PPS) => {}
            Some(_) => return Err(CodecError::invalid(W, "not a PPS NAL unit")),
            None => return Err(CodecError::truncated(W)),
        }
        let rbsp = remove_emulation_prevention(nal);
        let body = rbsp.get(1..).unwrap_or(&[]);
        let mut r = BitReader::new(body, W);
        let id = r.ue_max(255, "H.264 pic_parameter_set_id")?;
        let sps_id = r.ue_max(31, "H.264 seq_parameter_set_id")?;
        let entropy_coding_mode = r.bit()?;
        let bottom_field_pic_order_in_frame_present = r.bit()?;
        let num_slice_groups = r.ue_max(7, "H.264 num_slice_groups_minus1")? + 1;
        if num_slice_groups > 1 {
            match r.ue_max(6, "H.264 slice_group_map_type")? {
                0 => {
                    for _ in 0..num_slice_groups {
                        r.ue()?;
                    }
                }
                2 => {
                    for _ in 1..num_slice_groups {
                        r.ue()?;
                        r.ue()?;
                    }
                }
                3..=5 => {
                    r.skip(1)?;
                    r.ue()?;
                }
                6 => {
                    let n = u64::from(r.ue()?) + 1;
                    let bits = u64::from(32 - (num_slice_groups - 1).leading_zeros());
                    let total = usize::try_from(n * bits).map_err(|_| CodecError::truncated(W))?;
                    r.skip(total)?;
                }
                _ => {}
            }
        }
        let l0 = r.ue_max(31, "H.264 num_ref_idx_l0_default_active_minus1")? + 1;
        let l1 = r.ue_max(31, "H.264 num_ref_idx_l1_default_active_minus1")? + 1;
        let weighted_pred = r.bit()?;
        let weighted_bipred_idc = r.u8(2)?;
        let pic_init_qp = 26 + r.se()?;
        r.se()?; // pic_init_qs_minus26
        let chroma_qp_index_offset = r.se()?;
        let deblocking_filter_control_present = r.bit()?;
        let constrained_intra_pred = r.bit()?;
        let redundant_pic_cnt_present = r.bit()?;
        // more_rbsp_data(): is there a 1 bit after this one other than the stop bit?
        let last_one = body
            .iter()
            .rposition(|&b| b != 0)
            .map(|i| i * 8 + 7 - body.get(i).map_or(0, |b| b.trailing_zeros() as usize));
        let transform_8x8_mode = match last_one {
            Some(stop) if r.position() < stop => r.bit()?,
            _ => false,
        };
        Ok(Self {
            id,
            sps_id,
            entropy_coding_mode,
            bottom_field_pic_order_in_frame_present,
            num_slice_groups,
            num_ref_idx_l0_default_active: l0,
            num_ref_idx_l1_default_active: l1,
            weighted_pred,
            weighted_bipred_idc,
            pic_init_qp,
            chroma_qp_index_offset,
            deblocking_filter_control_present,
            constrained_intra_pred,
            redundant_pic_cnt_present,
            transform_8x8_mode,
        })
    }
}

/// The High-profile tail of an `AVCDecoderConfigurationRecord`
/// (ISO/IEC 14496-15 §5.3.3.1.2, for profile_idc 100, 110, 122, 144).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcHighProfileExt {
    /// `chroma_format` (2 bits).
    pub chroma_format: u8,
    /// `bit_depth_luma_minus8 + 8`.
    pub bit_depth_luma: u8,
    /// `bit_depth_chroma_minus8 + 8`.
    pub bit_depth_chroma: u8,
    /// SPS extension NAL units.
    pub sps_ext: Vec<Bytes>,
}

/// `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1): the H.264
/// `CONFIG` frame payload, FLV's AVC sequence header and MP4's `avcC` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcDecoderConfigurationRecord {
    /// `AVCProfileIndication` (the SPS `profile_idc`).
    pub profile_idc: u8,
    /// `profile_compatibility` (the SPS constraint byte).
    pub profile_compatibility: u8,
    /// `AVCLevelIndication`.
    pub level_idc: u8,
    /// NAL length prefix size in bytes (1, 2 or 4).
    pub length_size: u8,
    /// SPS NAL units (slices of the parsed input).
    pub sps: Vec<Bytes>,
    /// PPS NAL units.
    pub pps: Vec<Bytes>,
    /// The High-profile extension, when present.
    pub ext: Option<AvcHighProfileExt>,
}

fn read_ps_list(
    data: &Bytes,
    pos: &mut usize,
    count: usize,
    what: &'static str,
) -> Result<Vec<Bytes>> {
    if count > MAX_PARAMETER_SETS {
        return Err(CodecError::limit(what, count, MAX_PARAMETER_SETS));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len_bytes = data
            .get(*pos..*pos + 2)
            .ok_or(CodecError::truncated(what))?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let start = *pos + 2;
        if data.len() < start + len {
            return Err(CodecError::truncated(what));
        }
        out.push(data.slice(start..start + len));
        *pos = start + len;
    }
    Ok(out)
}

fn write_ps_list(out: &mut BytesMut, list: &[Bytes], what: &'static str) -> Result<()> {
    for ps in list {
        let len = u16::try_from(ps.len())
            .map_err(|_| CodecError::limit(what, ps.len(), MAX_PARAMETER_SET_LEN))?;
        out.put_u16(len);
        out.put_slice(ps);
    }
    Ok(())
}

impl AvcDecoderConfigurationRecord {
    /// Parse a record. Parameter sets are `Bytes` slices of `data`.
    ///
    /// The High-profile tail is read when at least its 4 fixed bytes follow
    /// the PPS list (some muxers omit it even for High profile).
    pub fn parse(data: &Bytes) -> Result<Self> {
        const W: &str = "AVCDecoderConfigurationRecord";
        let hdr = data.get(..6).ok_or(CodecError::truncated(W))?;
        if hdr[0] != 1 {
            return Err(CodecError::unsupported(W, "configurationVersion is not 1"));
        }
        let length_size = (hdr[4] & 0x03) + 1;
        if length_size == 3 {
            return Err(CodecError::invalid(
                W,
                "lengthSizeMinusOne of 2 is reserved",
            ));
        }
        let mut pos = 6;
        let sps = read_ps_list(data, &mut pos, usize::from(hdr[5] & 0x1f), "AVC SPS list")?;
        let n_pps = *data.get(pos).ok_or(CodecError::truncated(W))?;
        pos += 1;
        let pps = read_ps_list(data, &mut pos, usize::from(n_pps), "AVC PPS list")?;
        let mut ext = None;
        if matches!(hdr[1], 100 | 110 | 122 | 144) {
            if let Some(t) = data.get(pos..pos + 4) {
                let (cf, bl, bc, n) = (t[0] & 3, (t[1] & 7) + 8, (t[2] & 7) + 8, usize::from(t[3]));
                pos += 4;
                let sps_ext = read_ps_list(data, &mut pos, n, "AVC SPS extension list")?;
                ext = Some(AvcHighProfileExt {
                    chroma_format: cf,
                    bit_depth_luma: bl,
                    bit_depth_chroma: bc,
                    sps_ext,
                });
            }
        }
        Ok(Self {
            profile_idc: hdr[1],
            profile_compatibility: hdr[2],
            level_idc: hdr[3],
            length_size,
            sps,
            pps,
            ext,
        })
    }

    /// Build a record from SPS and PPS NAL units (length size 4). Profile,
    /// level and the High-profile tail come from the first SPS.
    pub fn from_parameter_sets(sps: Vec<Bytes>, pps: Vec<Bytes>) -> Result<Self> {
        let first = sps.first().ok_or(CodecError::invalid(
            "AVCDecoderConfigurationRecord",
            "no SPS",
        ))?;
        let parsed = Sps::parse(first)?;
        if sps.len() > MAX_PARAMETER_SETS || pps.len() > MAX_PARAMETER_SETS {
            return Err(CodecError::limit(
                "AVC parameter sets",
                sps.len().max(pps.len()),
                MAX_PARAMETER_SETS,
            ));
        }
        let ext = matches!(parsed.profile_idc, 100 | 110 | 122 | 144).then(|| AvcHighProfileExt {
            chroma_format: parsed.chroma_format_idc,
            bit_depth_luma: parsed.bit_depth_luma,
            bit_depth_chroma: parsed.bit_depth_chroma,
            sps_ext: Vec::new(),
        });
        Ok(Self {
            profile_idc: parsed.profile_idc,
            profile_compatibility: parsed.constraint_flags,
            level_idc: parsed.level_idc,
            length_size: 4,
            sps,
            pps,
            ext,
        })
    }

    /// Collect SPS and PPS from an access unit (length-prefixed with 4-byte
    /// lengths) and build a record, or `None` if it holds no SPS or no PPS.
    pub fn from_access_unit(payload: &Bytes) -> Result<Option<Self>> {
        let (mut sps, mut pps) = (Vec::new(), Vec::new());
        for nal in LengthPrefixedNals::new(payload.clone(), 4) {
            let nal = nal?;
            match nal_type_of(&nal) {
                Some(nal_type::SPS) if sps.len() < MAX_PARAMETER_SETS => sps.push(nal),
                Some(nal_type::PPS) if pps.len() < MAX_PARAMETER_SETS => pps.push(nal),
                _ => {}
            }
        }
        if sps.is_empty() || pps.is_empty() {
            return Ok(None);
        }
        Self::from_parameter_sets(sps, pps).map(Some)
    }

    /// Append the serialized record to `out`.
    pub fn write_to(&self, out: &mut BytesMut) -> Result<()> {
        const W: &str = "AVCDecoderConfigurationRecord";
        if !matches!(self.length_size, 1 | 2 | 4) {
            return Err(CodecError::invalid(W, "length size must be 1, 2 or 4"));
        }
        if self.sps.len() > 31 || self.pps.len() > 255 {
            return Err(CodecError::limit(W, self.sps.len().max(self.pps.len()), 31));
        }
        out.put_slice(&[
            1,
            self.profile_idc,
            self.profile_compatibility,
            self.level_idc,
        ]);
        out.put_u8(0xfc | (self.length_size - 1));
        out.put_u8(0xe0 | self.sps.len() as u8);
        write_ps_list(out, &self.sps, "AVC SPS")?;
        out.put_u8(self.pps.len() as u8);
        write_ps_list(out, &self.pps, "AVC PPS")?;
        if let Some(ext) = &self.ext {
            let n = u8::try_from(ext.sps_ext.len())
                .map_err(|_| CodecError::limit(W, ext.sps_ext.len(), 255))?;
            out.put_u8(0xfc | (ext.chroma_format & 3));
            out.put_u8(0xf8 | (ext.bit_depth_luma.wrapping_sub(8) & 7));
            out.put_u8(0xf8 | (ext.bit_depth_chroma.wrapping_sub(8) & 7));
            out.put_u8(n);
            write_ps_list(out, &ext.sps_ext, "AVC SPS extension")?;
        }
        Ok(())
    }

    /// The serialized record.
    pub fn to_bytes(&self) -> Result<Bytes> {
        let mut out = BytesMut::with_capacity(
            16 + self
                .sps
                .iter()
                .chain(&self.pps)
                .map(|p| p.len() + 2)
                .sum::<usize>(),
        );
        self.write_to(&mut out)?;
        Ok(out.freeze())
    }

    /// Parse the first SPS.
    pub fn parse_sps(&self) -> Result<Sps> {
        Sps::parse(self.sps.first().ok_or(CodecError::invalid(
            "AVCDecoderConfigurationRecord",
            "no SPS",
        ))?)
    }

    /// The RFC 6381 codec string, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.profile_compatibility, self.level_idc
        )
    }

    /// The parameter sets as Annex-B (`00 00 00 01` + SPS…, PPS…), to put in
    /// front of an IDR access unit for MPEG-TS or RTSP.
    pub fn parameter_sets_annexb(&self) -> Bytes {
        let mut out = BytesMut::new();
        for ps in self.sps.iter().chain(&self.pps) {
            out.put_slice(&[0, 0, 0, 1]);
            out.put_slice(ps);
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // x264 High, 640x360, 25 fps VUI (from fixtures/media/h264-aac.flv)
    pub(crate) const SPS_HIGH: &[u8] = &[
        0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03,
        0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
    ];

    #[test]
    fn parses_x264_sps() {
        let s = Sps::parse(SPS_HIGH).unwrap();
        assert_eq!(
            (s.profile_idc, s.level_idc, s.width, s.height),
            (100, 30, 640, 360)
        );
        assert_eq!(s.frame_rate(), Some((25, 1)));
        assert_eq!(s.sar(), Some((1, 1)));
        assert_eq!(s.profile_name(), "High");
    }

    #[test]
    fn keyframe_detection() {
        assert!(contains_keyframe(&[
            0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 1, 0x41
        ]));
        assert!(!contains_keyframe(&[0, 0, 0, 2, 0x41, 0x88]));
        assert!(!contains_keyframe(&[0, 0, 0, 9, 0x65]));
        assert!(contains_keyframe_annexb(&[
            0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x65, 0x88
        ]));
    }

    #[test]
    fn record_round_trip() {
        let sps = Bytes::from_static(SPS_HIGH);
        let pps = Bytes::from_static(&[0x68, 0xef, 0xbc, 0xb0]);
        let rec = AvcDecoderConfigurationRecord::from_parameter_sets(vec![sps], vec![pps.clone()])
            .unwrap();
        assert_eq!(rec.codec_string(), "avc1.64001e");
        let bytes = rec.to_bytes().unwrap();
        assert_eq!(AvcDecoderConfigurationRecord::parse(&bytes).unwrap(), rec);
        let p = Pps::parse(&pps).unwrap();
        assert!(p.entropy_coding_mode && p.transform_8x8_mode);
        for n in 0..bytes.len() {
            let _ = AvcDecoderConfigurationRecord::parse(&bytes.slice(..n));
        }
    }
}
