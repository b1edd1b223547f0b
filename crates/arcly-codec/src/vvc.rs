//! H.266 / VVC (ITU-T H.266 | ISO/IEC 23090-3): NAL header, SPS basics and
//! the `VvcDecoderConfigurationRecord` (ISO/IEC 14496-15 §11.2.4.2).
//!
//! The canonical VVC frame payload is NAL units behind 4-byte lengths (see
//! [`crate::nal`]); the configuration frame carries the record.

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::{BitReader, BitWriter};
use crate::error::{CodecError, Result};
use crate::nal::{remove_emulation_prevention, LengthPrefixedNals, LengthPrefixedSlices};

/// Longest parameter set accepted.
pub const MAX_PARAMETER_SET_LEN: usize = u16::MAX as usize;
/// Most arrays, and NAL units per array, accepted in a record.
pub const MAX_PARAMETER_SETS: usize = 64;
/// Largest picture dimension accepted from an SPS.
pub const MAX_DIMENSION: u32 = 65_535;

/// NAL unit type constants (H.266 Table 5).
pub mod nal_type {
    /// IDR with leading pictures.
    pub const IDR_W_RADL: u8 = 7;
    /// IDR without leading pictures.
    pub const IDR_N_LP: u8 = 8;
    /// Clean random access.
    pub const CRA: u8 = 9;
    /// Gradual decoding refresh.
    pub const GDR: u8 = 10;
    /// Operating point information.
    pub const OPI: u8 = 12;
    /// Decoding capability information.
    pub const DCI: u8 = 13;
    /// Video parameter set.
    pub const VPS: u8 = 14;
    /// Sequence parameter set.
    pub const SPS: u8 = 15;
    /// Picture parameter set.
    pub const PPS: u8 = 16;
    /// Prefix adaptation parameter set.
    pub const PREFIX_APS: u8 = 17;
    /// Picture header.
    pub const PH: u8 = 19;
    /// Access unit delimiter.
    pub const AUD: u8 = 20;
    /// Prefix SEI.
    pub const PREFIX_SEI: u8 = 23;
}

/// The `nal_unit_type` of `nal` (H.266 §7.3.1.2), or `None` when shorter than a header.
pub fn nal_type_of(nal: &[u8]) -> Option<u8> {
    nal.get(1).map(|&b| b >> 3)
}

/// Whether `nal` is an IRAP slice (IDR_W_RADL, IDR_N_LP, CRA; types 7..=9).
pub fn is_irap(nal: &[u8]) -> bool {
    matches!(nal_type_of(nal), Some(nal_type::IDR_W_RADL..=nal_type::CRA))
}

/// Whether a canonical payload (NAL units behind 4-byte lengths) holds an IRAP slice.
pub fn contains_keyframe(payload: &[u8]) -> bool {
    LengthPrefixedSlices::new(payload, 4).any(is_irap)
}

/// `VvcPTLRecord` (ISO/IEC 14496-15 §11.2.4.2.2), equivalent to the SPS's
/// `profile_tier_level(1, num_sublayers - 1)`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VvcPtl {
    /// `general_profile_idc` (1 = Main 10).
    pub profile_idc: u8,
    /// `general_tier_flag`.
    pub tier_flag: bool,
    /// `general_level_idc` (16 × major + 3 × minor, e.g. 51 for 3.1 — see H.266 Table A.8).
    pub level_idc: u8,
    /// `ptl_frame_only_constraint_flag`, `ptl_multilayer_enabled_flag` and
    /// `general_constraint_info()`, as whole bytes (`num_bytes_constraint_info`).
    pub constraint_info: Vec<u8>,
    /// `sublayer_level_idc[i]` for i = 0..num_sublayers-1, when present.
    pub sublayer_level_idc: Vec<Option<u8>>,
    /// `general_sub_profile_idc[]`.
    pub sub_profile_idc: Vec<u32>,
}

impl VvcPtl {
    /// `ptl_frame_only_constraint_flag`.
    pub fn frame_only(&self) -> bool {
        self.constraint_info.first().is_some_and(|b| b & 0x80 != 0)
    }

    fn read_sublayers_and_subprofiles(
        &mut self,
        r: &mut BitReader<'_>,
        num_sublayers: u8,
    ) -> Result<()> {
        let n = usize::from(num_sublayers.saturating_sub(1));
        let mut present = vec![false; n];
        for i in (0..n).rev() {
            present[i] = r.bit()?;
        }
        while !r.is_byte_aligned() {
            r.skip(1)?;
        }
        self.sublayer_level_idc = vec![None; n];
        for i in (0..n).rev() {
            if present[i] {
                self.sublayer_level_idc[i] = Some(r.u8(8)?);
            }
        }
        let subs = r.u8(8)?;
        self.sub_profile_idc = (0..subs).map(|_| r.bits(32)).collect::<Result<_>>()?;
        Ok(())
    }

    /// The profile name as FFmpeg prints it.
    pub fn profile_name(&self) -> &'static str {
        match self.profile_idc {
            1 => "Main 10",
            65 => "Main 10 Still Picture",
            33 => "Main 10 4:4:4",
            97 => "Main 10 4:4:4 Still Picture",
            17 => "Multilayer Main 10",
            49 => "Multilayer Main 10 4:4:4",
            _ => "unknown",
        }
    }

    /// The codec string (ISO/IEC 14496-15 Annex E): `vvc1.<profile>.<L|H><level>.C<constraints>`,
    /// constraints as RFC 4648 base32 of the constraint bytes without trailing zero bytes.
    pub fn codec_string(&self, fourcc: &str) -> String {
        let used = self
            .constraint_info
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        let c = base32(self.constraint_info.get(..used).unwrap_or(&[]));
        format!(
            "{fourcc}.{}.{}{}.C{}",
            self.profile_idc,
            if self.tier_flag { 'H' } else { 'L' },
            self.level_idc,
            if c.is_empty() { "A".into() } else { c }
        )
    }
}

fn base32(data: &[u8]) -> String {
    const ALPHA: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHA[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHA[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// A parsed SPS: the basics (H.266 §7.3.2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    /// `sps_seq_parameter_set_id`.
    pub id: u8,
    /// `sps_max_sublayers_minus1 + 1`.
    pub max_sublayers: u8,
    /// `sps_chroma_format_idc`.
    pub chroma_format_idc: u8,
    /// Profile, tier and level, when `sps_ptl_dpb_hrd_params_present_flag`.
    pub ptl: Option<VvcPtl>,
    /// Width after the conformance window.
    pub width: u32,
    /// Height after the conformance window.
    pub height: u32,
    /// Bit depth (`None` when subpictures are signalled; this parser stops there).
    pub bit_depth: Option<u8>,
}

impl Sps {
    /// Parse an SPS NAL unit (2-byte header included).
    pub fn parse(nal: &[u8]) -> Result<Self> {
        const W: &str = "H.266 SPS";
        if nal.len() > MAX_PARAMETER_SET_LEN {
            return Err(CodecError::limit(W, nal.len(), MAX_PARAMETER_SET_LEN));
        }
        if nal_type_of(nal) != Some(nal_type::SPS) {
            return Err(CodecError::invalid(W, "not an SPS NAL unit"));
        }
        let rbsp = remove_emulation_prevention(nal);
        let mut r = BitReader::new(rbsp.get(2..).unwrap_or(&[]), W);
        let id = r.u8(4)?;
        r.skip(4)?; // sps_video_parameter_set_id
        let max_sublayers = r.u8(3)? + 1;
        if max_sublayers > 7 {
            return Err(CodecError::invalid(W, "sps_max_sublayers_minus1 above 6"));
        }
        let chroma_format_idc = r.u8(2)?;
        r.skip(2)?; // sps_log2_ctu_size_minus5
        let ptl = if r.bit()? {
            Some(parse_sps_ptl(&mut r, max_sublayers)?)
        } else {
            None
        };
        r.skip(1)?; // sps_gdr_enabled_flag
        if r.bit()? {
            r.skip(1)?; // sps_res_change_in_clvs_allowed_flag
        }
        let w = r.ue()?;
        let h = r.ue()?;
        if w == 0 || h == 0 || w > MAX_DIMENSION || h > MAX_DIMENSION {
            return Err(CodecError::limit(
                "H.266 picture size",
                w.max(h),
                MAX_DIMENSION,
            ));
        }
        let (sw, shh) = match chroma_format_idc {
            1 => (2u64, 2u64),
            2 => (2, 1),
            _ => (1, 1),
        };
        let win = if r.bit()? {
            [r.ue()?, r.ue()?, r.ue()?, r.ue()?].map(u64::from)
        } else {
            [0; 4]
        };
        let (cw, ch) = (sw * (win[0] + win[1]), shh * (win[2] + win[3]));
        if cw >= u64::from(w) || ch >= u64::from(h) {
            return Err(CodecError::invalid(
                W,
                "conformance window exceeds the picture",
            ));
        }
        let bit_depth = if r.bit()? {
            None
        } else {
            Some(r.ue_max(8, "H.266 sps_bitdepth_minus8")? as u8 + 8)
        };
        Ok(Self {
            id,
            max_sublayers,
            chroma_format_idc,
            ptl,
            width: w - cw as u32,
            height: h - ch as u32,
            bit_depth,
        })
    }
}

// H.266 §7.3.3.1 profile_tier_level(1, n) and §7.3.3.2 general_constraint_info()
fn parse_sps_ptl(r: &mut BitReader<'_>, num_sublayers: u8) -> Result<VvcPtl> {
    let mut p = VvcPtl {
        profile_idc: r.u8(7)?,
        tier_flag: r.bit()?,
        level_idc: r.u8(8)?,
        ..Default::default()
    };
    // constraint bytes: frame_only, multilayer, then gci up to its byte alignment
    let start = r.position();
    r.skip(2)?;
    if r.bit()? {
        r.skip(71)?;
        let extra = r.bits(8)?;
        r.skip(extra as usize)?;
    }
    while !r.is_byte_aligned() {
        r.skip(1)?;
    }
    p.constraint_info = r.bytes_between(start, r.position()).to_vec();
    p.read_sublayers_and_subprofiles(r, num_sublayers)?;
    Ok(p)
}

/// One NAL unit array of the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NalArray {
    /// `array_completeness`.
    pub complete: bool,
    /// `NAL_unit_type`.
    pub nal_type: u8,
    /// The NAL units (slices of the parsed input).
    pub nalus: Vec<Bytes>,
}

/// The `ptl_present_flag` part of the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VvcRecordPtl {
    /// `ols_idx`.
    pub ols_idx: u16,
    /// `num_sublayers`.
    pub num_sublayers: u8,
    /// `constant_frame_rate`.
    pub constant_frame_rate: u8,
    /// `chroma_format_idc`.
    pub chroma_format_idc: u8,
    /// `bit_depth_minus8 + 8`.
    pub bit_depth: u8,
    /// `native_ptl`.
    pub ptl: VvcPtl,
    /// `max_picture_width`.
    pub max_picture_width: u16,
    /// `max_picture_height`.
    pub max_picture_height: u16,
    /// `avg_frame_rate` in frames per 256 s.
    pub avg_frame_rate: u16,
}

/// `VvcDecoderConfigurationRecord` (ISO/IEC 14496-15 §11.2.4.2): the VVC
/// `CONFIG` frame payload and MP4's `vvcC` body (after the FullBox header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VvcDecoderConfigurationRecord {
    /// NAL length prefix size (1, 2 or 4).
    pub length_size: u8,
    /// Profile/tier/level and picture format, when present.
    pub ptl: Option<VvcRecordPtl>,
    /// Parameter set and SEI arrays.
    pub arrays: Vec<NalArray>,
}

fn be16(d: &[u8], at: usize, what: &'static str) -> Result<u16> {
    let b = d.get(at..at + 2).ok_or(CodecError::truncated(what))?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

impl VvcDecoderConfigurationRecord {
    /// Parse a record. A leading FullBox header (version 0, flags 0, as in
    /// the `vvcC` box) is skipped.
    pub fn parse(data: &Bytes) -> Result<Self> {
        const W: &str = "VvcDecoderConfigurationRecord";
        let data = if data.get(..4) == Some(&[0, 0, 0, 0]) {
            data.slice(4..)
        } else {
            data.clone()
        };
        let first = *data.first().ok_or(CodecError::truncated(W))?;
        let length_size = ((first >> 1) & 3) + 1;
        if length_size == 3 {
            return Err(CodecError::invalid(
                W,
                "LengthSizeMinusOne of 2 is reserved",
            ));
        }
        let mut pos = 1usize;
        let ptl = if first & 1 != 0 {
            let mut r = BitReader::new(data.get(1..).unwrap_or(&[]), W);
            let ols_idx = r.bits(9)? as u16;
            let num_sublayers = r.u8(3)?;
            let constant_frame_rate = r.u8(2)?;
            let chroma_format_idc = r.u8(2)?;
            let bit_depth = r.u8(3)? + 8;
            r.skip(5)?;
            // VvcPTLRecord
            r.skip(2)?;
            let n_bytes = usize::from(r.u8(6)?);
            let mut ptl = VvcPtl {
                profile_idc: r.u8(7)?,
                tier_flag: r.bit()?,
                level_idc: r.u8(8)?,
                ..Default::default()
            };
            ptl.constraint_info = (0..n_bytes).map(|_| r.u8(8)).collect::<Result<_>>()?;
            // sublayer flags: num_sublayers - 1 flags then reserved bits up to 8 total
            let n = usize::from(num_sublayers.saturating_sub(1));
            let mut present = vec![false; n];
            for i in (0..n).rev() {
                present[i] = r.bit()?;
            }
            if num_sublayers > 1 {
                r.skip(9 - usize::from(num_sublayers).min(9))?;
            }
            ptl.sublayer_level_idc = vec![None; n];
            for i in (0..n).rev() {
                if present[i] {
                    ptl.sublayer_level_idc[i] = Some(r.u8(8)?);
                }
            }
            let subs = r.u8(8)?;
            ptl.sub_profile_idc = (0..subs).map(|_| r.bits(32)).collect::<Result<_>>()?;
            let max_picture_width = r.bits(16)? as u16;
            let max_picture_height = r.bits(16)? as u16;
            let avg_frame_rate = r.bits(16)? as u16;
            pos += r.position() / 8;
            Some(VvcRecordPtl {
                ols_idx,
                num_sublayers,
                constant_frame_rate,
                chroma_format_idc,
                bit_depth,
                ptl,
                max_picture_width,
                max_picture_height,
                avg_frame_rate,
            })
        } else {
            None
        };
        let n_arrays = usize::from(*data.get(pos).ok_or(CodecError::truncated(W))?);
        if n_arrays > MAX_PARAMETER_SETS {
            return Err(CodecError::limit(W, n_arrays, MAX_PARAMETER_SETS));
        }
        pos += 1;
        let mut arrays = Vec::with_capacity(n_arrays);
        for _ in 0..n_arrays {
            let b = *data.get(pos).ok_or(CodecError::truncated(W))?;
            let (complete, t) = (b & 0x80 != 0, b & 0x1f);
            pos += 1;
            let n = if t == nal_type::DCI || t == nal_type::OPI {
                1
            } else {
                let n = usize::from(be16(&data, pos, W)?);
                pos += 2;
                n
            };
            if n > MAX_PARAMETER_SETS {
                return Err(CodecError::limit("VVC NAL array", n, MAX_PARAMETER_SETS));
            }
            let mut nalus = Vec::with_capacity(n);
            for _ in 0..n {
                let len = usize::from(be16(&data, pos, W)?);
                let end = pos + 2 + len;
                if end > data.len() {
                    return Err(CodecError::truncated(W));
                }
                nalus.push(data.slice(pos + 2..end));
                pos = end;
            }
            arrays.push(NalArray {
                complete,
                nal_type: t,
                nalus,
            });
        }
        Ok(Self {
            length_size,
            ptl,
            arrays,
        })
    }

    /// Build a record from VPS (may be empty), SPS and PPS NAL units (length
    /// size 4). The PTL part comes from the first SPS.
    pub fn from_parameter_sets(vps: Vec<Bytes>, sps: Vec<Bytes>, pps: Vec<Bytes>) -> Result<Self> {
        const W: &str = "VvcDecoderConfigurationRecord";
        let first = sps.first().ok_or(CodecError::invalid(W, "no SPS"))?;
        let s = Sps::parse(first)?;
        let max = vps.len().max(sps.len()).max(pps.len());
        if max > MAX_PARAMETER_SETS {
            return Err(CodecError::limit(
                "VVC parameter sets",
                max,
                MAX_PARAMETER_SETS,
            ));
        }
        let ptl = s.ptl.map(|ptl| VvcRecordPtl {
            ols_idx: 0,
            num_sublayers: s.max_sublayers,
            constant_frame_rate: 1,
            chroma_format_idc: s.chroma_format_idc,
            bit_depth: s.bit_depth.unwrap_or(8),
            ptl,
            max_picture_width: u16::try_from(s.width).unwrap_or(u16::MAX),
            max_picture_height: u16::try_from(s.height).unwrap_or(u16::MAX),
            avg_frame_rate: 0,
        });
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
            length_size: 4,
            ptl,
            arrays,
        })
    }

    /// Collect VPS/SPS/PPS from a canonical access unit and build a record,
    /// or `None` when SPS or PPS is missing.
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
        if s.is_empty() || p.is_empty() {
            return Ok(None);
        }
        Self::from_parameter_sets(v, s, p).map(Some)
    }

    /// Append the serialized record (without FullBox header) to `out`.
    pub fn write_to(&self, out: &mut BytesMut) -> Result<()> {
        const W: &str = "VvcDecoderConfigurationRecord";
        if !matches!(self.length_size, 1 | 2 | 4) {
            return Err(CodecError::invalid(W, "length size must be 1, 2 or 4"));
        }
        let mut w = BitWriter::new();
        w.put(5, 0x1f);
        w.put(2, u64::from(self.length_size - 1));
        w.flag(self.ptl.is_some());
        if let Some(p) = &self.ptl {
            if p.ptl.constraint_info.len() > 63 || p.ptl.sub_profile_idc.len() > 255 {
                return Err(CodecError::limit(
                    W,
                    p.ptl.constraint_info.len().max(p.ptl.sub_profile_idc.len()),
                    63,
                ));
            }
            w.put(9, u64::from(p.ols_idx));
            w.put(3, u64::from(p.num_sublayers));
            w.put(2, u64::from(p.constant_frame_rate));
            w.put(2, u64::from(p.chroma_format_idc));
            w.put(3, u64::from(p.bit_depth.wrapping_sub(8)));
            w.put(5, 0x1f);
            w.put(2, 0);
            w.put(6, p.ptl.constraint_info.len() as u64);
            w.put(7, u64::from(p.ptl.profile_idc));
            w.flag(p.ptl.tier_flag);
            w.put(8, u64::from(p.ptl.level_idc));
            for &b in &p.ptl.constraint_info {
                w.put(8, u64::from(b));
            }
            let n = usize::from(p.num_sublayers.saturating_sub(1));
            for i in (0..n).rev() {
                w.flag(p.ptl.sublayer_level_idc.get(i).is_some_and(Option::is_some));
            }
            if p.num_sublayers > 1 {
                w.put(9 - u32::from(p.num_sublayers).min(9), 0);
            }
            for i in (0..n).rev() {
                if let Some(Some(l)) = p.ptl.sublayer_level_idc.get(i) {
                    w.put(8, u64::from(*l));
                }
            }
            w.put(8, p.ptl.sub_profile_idc.len() as u64);
            for &s in &p.ptl.sub_profile_idc {
                w.put(32, u64::from(s));
            }
            w.put(16, u64::from(p.max_picture_width));
            w.put(16, u64::from(p.max_picture_height));
            w.put(16, u64::from(p.avg_frame_rate));
        }
        out.put_slice(&w.finish());
        let n = u8::try_from(self.arrays.len())
            .map_err(|_| CodecError::limit(W, self.arrays.len(), 255))?;
        out.put_u8(n);
        for a in &self.arrays {
            out.put_u8(u8::from(a.complete) << 7 | (a.nal_type & 0x1f));
            if a.nal_type != nal_type::DCI && a.nal_type != nal_type::OPI {
                let n = u16::try_from(a.nalus.len())
                    .map_err(|_| CodecError::limit(W, a.nalus.len(), 65535))?;
                out.put_u16(n);
            }
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
                    "VvcDecoderConfigurationRecord",
                    "no SPS",
                ))?,
        )
    }

    /// The codec string with the `vvc1` sample entry, when PTL is present.
    pub fn codec_string(&self) -> Option<String> {
        self.ptl.as_ref().map(|p| p.ptl.codec_string("vvc1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_and_irap() {
        assert_eq!(base32(&[0x80]), "QA");
        assert!(is_irap(&[0x00, 0x41]));
        assert!(!is_irap(&[0x00, 0x01]));
    }
}
