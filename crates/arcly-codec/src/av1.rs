//! AV1 (AOMedia AV1 bitstream specification): OBUs, the sequence header,
//! key-frame detection, `AV1CodecConfigurationRecord` (av1C, AV1-ISOBMFF
//! §2.3) and conversion of a temporal unit to the canonical layout
//! (AV1-ISOBMFF §2.4: size fields on every OBU, no temporal delimiters).

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::BitReader;
use crate::error::{CodecError, Result};
use crate::h264::reduce;

/// Longest OBU accepted (AV1 §4.10.5 allows up to 2^32 - 1; a frame above
/// 256 MiB is refused).
pub const MAX_OBU_LEN: u64 = 256 << 20;
/// Most OBUs walked in one temporal unit.
pub const MAX_OBUS_PER_TEMPORAL_UNIT: usize = 4096;

/// OBU type constants (AV1 §6.2.2).
pub mod obu_type {
    /// Sequence header.
    pub const SEQUENCE_HEADER: u8 = 1;
    /// Temporal delimiter.
    pub const TEMPORAL_DELIMITER: u8 = 2;
    /// Frame header.
    pub const FRAME_HEADER: u8 = 3;
    /// Tile group.
    pub const TILE_GROUP: u8 = 4;
    /// Metadata.
    pub const METADATA: u8 = 5;
    /// Frame (header + tile group).
    pub const FRAME: u8 = 6;
    /// Redundant frame header.
    pub const REDUNDANT_FRAME_HEADER: u8 = 7;
    /// Tile list.
    pub const TILE_LIST: u8 = 8;
    /// Padding.
    pub const PADDING: u8 = 15;
}

/// One OBU of a low-overhead bitstream (AV1 §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obu {
    /// `obu_type`.
    pub obu_type: u8,
    /// `(temporal_id, spatial_id)` when the extension header is present.
    pub extension: Option<(u8, u8)>,
    /// Whether the OBU carried `obu_size`.
    pub has_size_field: bool,
    /// The OBU header bytes (1 or 2, without the size field).
    pub header: Bytes,
    /// The payload (a slice of the input).
    pub payload: Bytes,
}

fn read_leb128(data: &[u8]) -> Result<(u64, usize)> {
    let mut v = 0u64;
    for i in 0..8 {
        let b = *data.get(i).ok_or(CodecError::truncated("AV1 leb128"))?;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(CodecError::invalid("AV1 leb128", "longer than 8 bytes"))
}

/// Append `v` as `leb128()` (AV1 §4.10.5).
pub fn write_leb128(out: &mut BytesMut, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.put_u8(b);
            return;
        }
        out.put_u8(b | 0x80);
    }
}

/// Iterator over the OBUs of a temporal unit. An OBU without a size field
/// extends to the end of the data. Errors stop the iteration.
#[derive(Clone, Debug)]
pub struct Obus {
    data: Bytes,
    count: usize,
    failed: bool,
}

impl Obus {
    /// Iterate over `data`.
    pub fn new(data: Bytes) -> Self {
        Self {
            data,
            count: 0,
            failed: false,
        }
    }

    fn parse_one(&mut self) -> Result<Obu> {
        const W: &str = "AV1 OBU header";
        let h = *self.data.first().ok_or(CodecError::truncated(W))?;
        if h & 0x80 != 0 {
            return Err(CodecError::invalid(W, "obu_forbidden_bit set"));
        }
        let obu_type = (h >> 3) & 0xf;
        let has_ext = h & 4 != 0;
        let has_size_field = h & 2 != 0;
        let hdr_len = if has_ext { 2 } else { 1 };
        let extension = if has_ext {
            let e = *self.data.get(1).ok_or(CodecError::truncated(W))?;
            Some((e >> 5, (e >> 3) & 3))
        } else {
            None
        };
        let (size, size_len) = if has_size_field {
            let (v, n) = read_leb128(self.data.get(hdr_len..).unwrap_or(&[]))?;
            (v, n)
        } else {
            ((self.data.len() - hdr_len) as u64, 0)
        };
        if size > MAX_OBU_LEN {
            return Err(CodecError::limit("AV1 obu_size", size, MAX_OBU_LEN));
        }
        let start = hdr_len + size_len;
        let end = start + size as usize;
        if end > self.data.len() {
            return Err(CodecError::truncated("AV1 OBU"));
        }
        let mut obu = self.data.split_to(end);
        let payload = obu.split_off(start);
        Ok(Obu {
            obu_type,
            extension,
            has_size_field,
            header: obu.slice(..hdr_len),
            payload,
        })
    }
}

impl Iterator for Obus {
    type Item = Result<Obu>;

    fn next(&mut self) -> Option<Result<Obu>> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        self.count += 1;
        if self.count > MAX_OBUS_PER_TEMPORAL_UNIT {
            self.failed = true;
            return Some(Err(CodecError::limit(
                "AV1 OBUs per temporal unit",
                self.count,
                MAX_OBUS_PER_TEMPORAL_UNIT,
            )));
        }
        let r = self.parse_one();
        self.failed = r.is_err();
        Some(r)
    }
}

/// Convert a temporal unit to the canonical layout: temporal delimiters
/// (and padding OBUs) removed, every OBU with `obu_has_size_field = 1`.
/// Returns a slice of the input, without copying, when it already conforms
/// apart from leading temporal delimiters.
pub fn to_canonical(tu: &Bytes) -> Result<Bytes> {
    let mut skip = 0usize;
    let mut conforming = true;
    let mut leading = true;
    let mut obus = Vec::new();
    let mut it = Obus::new(tu.clone());
    let mut consumed = 0usize;
    for obu in &mut it {
        let obu = obu?;
        let size_len = if obu.has_size_field {
            read_leb128(tu.get(consumed + obu.header.len()..).unwrap_or(&[]))?.1
        } else {
            0
        };
        let total = obu.header.len() + size_len + obu.payload.len();
        let drop = matches!(
            obu.obu_type,
            obu_type::TEMPORAL_DELIMITER | obu_type::PADDING
        );
        if drop && leading {
            skip += total;
        } else {
            leading = false;
            if drop || !obu.has_size_field {
                conforming = false;
            }
        }
        consumed += total;
        if !drop {
            obus.push(obu);
        }
    }
    if conforming {
        return Ok(tu.slice(skip.min(tu.len())..));
    }
    let mut out = BytesMut::with_capacity(tu.len() + 8 * obus.len());
    for obu in obus {
        let mut hdr = obu.header.to_vec();
        if let Some(first) = hdr.first_mut() {
            *first |= 2;
        }
        out.put_slice(&hdr);
        write_leb128(&mut out, obu.payload.len() as u64);
        out.put_slice(&obu.payload);
    }
    Ok(out.freeze())
}

/// Colour configuration of a sequence header (AV1 §5.5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColorConfig {
    /// Bit depth (8, 10 or 12).
    pub bit_depth: u8,
    /// `mono_chrome`.
    pub mono_chrome: bool,
    /// `subsampling_x`.
    pub subsampling_x: bool,
    /// `subsampling_y`.
    pub subsampling_y: bool,
    /// `chroma_sample_position`.
    pub chroma_sample_position: u8,
    /// `(color_primaries, transfer_characteristics, matrix_coefficients)`.
    pub color_description: (u8, u8, u8),
    /// `color_range` (true = full).
    pub full_range: bool,
}

/// A parsed sequence header OBU payload (AV1 §5.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequenceHeader {
    /// `seq_profile` (0 Main, 1 High, 2 Professional).
    pub profile: u8,
    /// `still_picture`.
    pub still_picture: bool,
    /// `reduced_still_picture_header`.
    pub reduced_still_picture_header: bool,
    /// `seq_level_idx[0]`.
    pub level_idx: u8,
    /// `seq_tier[0]`.
    pub tier: bool,
    /// `initial_display_delay_minus_1[0] + 1`, when present.
    pub initial_display_delay: Option<u8>,
    /// `(num_units_in_display_tick, time_scale)` from the timing info.
    pub timing: Option<(u32, u32)>,
    /// `max_frame_width_minus_1 + 1`.
    pub max_frame_width: u32,
    /// `max_frame_height_minus_1 + 1`.
    pub max_frame_height: u32,
    /// `frame_id_numbers_present_flag`.
    pub frame_id_numbers_present: bool,
    /// Colour configuration.
    pub color: ColorConfig,
}

impl SequenceHeader {
    /// Parse a sequence header OBU payload.
    pub fn parse(payload: &[u8]) -> Result<Self> {
        const W: &str = "AV1 sequence header";
        let mut r = BitReader::new(payload, W);
        let profile = r.u8(3)?;
        if profile > 2 {
            return Err(CodecError::unsupported(W, "seq_profile above 2"));
        }
        let still_picture = r.bit()?;
        let reduced = r.bit()?;
        let (mut level_idx, mut tier, mut timing, mut initial_display_delay) =
            (0, false, None, None);
        if reduced {
            level_idx = r.u8(5)?;
        } else {
            let mut decoder_model_info = false;
            let mut buffer_delay_len = 0;
            if r.bit()? {
                let tick = r.bits(32)?;
                let scale = r.bits(32)?;
                timing = Some((tick, scale));
                if r.bit()? {
                    r.uvlc()?; // num_ticks_per_picture_minus_1
                }
                decoder_model_info = r.bit()?;
                if decoder_model_info {
                    buffer_delay_len = r.bits(5)? + 1;
                    r.skip(32 + 10)?;
                }
            }
            let idd_present = r.bit()?;
            let ops = r.u8(5)? + 1;
            for i in 0..ops {
                r.skip(12)?; // operating_point_idc
                let lvl = r.u8(5)?;
                let t = lvl > 7 && r.bit()?;
                if decoder_model_info && r.bit()? {
                    r.skip(2 * buffer_delay_len as usize + 1)?;
                }
                let mut idd = None;
                if idd_present && r.bit()? {
                    idd = Some(r.u8(4)? + 1);
                }
                if i == 0 {
                    (level_idx, tier, initial_display_delay) = (lvl, t, idd);
                }
            }
        }
        let wb = r.bits(4)? + 1;
        let hb = r.bits(4)? + 1;
        let max_frame_width = r.bits(wb)? + 1;
        let max_frame_height = r.bits(hb)? + 1;
        let frame_id_numbers_present = !reduced && r.bit()?;
        if frame_id_numbers_present {
            r.skip(7)?;
        }
        r.skip(3)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
        if !reduced {
            r.skip(4)?; // interintra, masked, warped, dual filter
            let order_hint = r.bit()?;
            if order_hint {
                r.skip(2)?;
            }
            let force_sct = if r.bit()? { 2 } else { r.u8(1)? };
            if force_sct > 0 && !r.bit()? {
                r.skip(1)?; // seq_force_integer_mv
            }
            if order_hint {
                r.skip(3)?;
            }
        }
        r.skip(3)?; // superres, cdef, restoration
        let color = parse_color_config(&mut r, profile)?;
        Ok(Self {
            profile,
            still_picture,
            reduced_still_picture_header: reduced,
            level_idx,
            tier,
            initial_display_delay,
            timing,
            max_frame_width,
            max_frame_height,
            frame_id_numbers_present,
            color,
        })
    }

    /// Frame rate `(num, den)` from the timing info.
    pub fn frame_rate(&self) -> Option<(u32, u32)> {
        let (tick, scale) = self.timing?;
        (tick != 0 && scale != 0).then(|| reduce(u64::from(scale), u64::from(tick)))
    }

    /// The profile name as FFmpeg prints it.
    pub fn profile_name(&self) -> &'static str {
        match self.profile {
            0 => "Main",
            1 => "High",
            _ => "Professional",
        }
    }
}

// AV1 §5.5.2
fn parse_color_config(r: &mut BitReader<'_>, profile: u8) -> Result<ColorConfig> {
    let high = r.bit()?;
    let bit_depth = if profile == 2 && high {
        if r.bit()? {
            12
        } else {
            10
        }
    } else if high {
        10
    } else {
        8
    };
    let mono_chrome = profile != 1 && r.bit()?;
    let color_description = if r.bit()? {
        (r.u8(8)?, r.u8(8)?, r.u8(8)?)
    } else {
        (2, 2, 2)
    };
    let mut c = ColorConfig {
        bit_depth,
        mono_chrome,
        subsampling_x: true,
        subsampling_y: true,
        chroma_sample_position: 0,
        color_description,
        full_range: false,
    };
    if mono_chrome {
        c.full_range = r.bit()?;
        return Ok(c);
    }
    if color_description == (1, 13, 0) {
        c.full_range = true;
        c.subsampling_x = false;
        c.subsampling_y = false;
    } else {
        c.full_range = r.bit()?;
        match profile {
            0 => {}
            1 => (c.subsampling_x, c.subsampling_y) = (false, false),
            _ if bit_depth == 12 => {
                c.subsampling_x = r.bit()?;
                c.subsampling_y = c.subsampling_x && r.bit()?;
            }
            _ => (c.subsampling_x, c.subsampling_y) = (true, false),
        }
        if c.subsampling_x && c.subsampling_y {
            c.chroma_sample_position = r.u8(2)?;
        }
    }
    r.skip(1)?; // separate_uv_delta_q
    Ok(c)
}

/// Find and parse the sequence header OBU in `data` (a temporal unit or an
/// av1C's configOBUs).
pub fn find_sequence_header(data: &Bytes) -> Result<Option<(Bytes, SequenceHeader)>> {
    for obu in Obus::new(data.clone()) {
        let obu = obu?;
        if obu.obu_type == obu_type::SEQUENCE_HEADER {
            let sh = SequenceHeader::parse(&obu.payload)?;
            let mut whole = BytesMut::with_capacity(obu.payload.len() + 4);
            whole.put_slice(&obu.header);
            if let Some(b) = whole.first_mut() {
                *b |= 2;
            }
            write_leb128(&mut whole, obu.payload.len() as u64);
            whole.put_slice(&obu.payload);
            return Ok(Some((whole.freeze(), sh)));
        }
    }
    Ok(None)
}

/// Whether a canonical temporal unit starts a key frame: its first frame
/// header has `frame_type == KEY_FRAME` and `show_frame = 1` (AV1 §5.9.2).
/// A temporal unit whose sequence header says `reduced_still_picture_header`
/// is always a key frame.
pub fn is_keyframe(tu: &[u8]) -> bool {
    let mut data = tu;
    let mut reduced = false;
    for _ in 0..MAX_OBUS_PER_TEMPORAL_UNIT {
        let Some(&h) = data.first() else { return false };
        let t = (h >> 3) & 0xf;
        let hdr_len = if h & 4 != 0 { 2 } else { 1 };
        let (size, n) = if h & 2 != 0 {
            match read_leb128(data.get(hdr_len..).unwrap_or(&[])) {
                Ok(v) => v,
                Err(_) => return false,
            }
        } else {
            ((data.len().saturating_sub(hdr_len)) as u64, 0)
        };
        let start = hdr_len + n;
        let Some(payload) = usize::try_from(size)
            .ok()
            .and_then(|s| data.get(start..start.checked_add(s)?))
        else {
            return false;
        };
        match t {
            obu_type::SEQUENCE_HEADER => {
                reduced = SequenceHeader::parse(payload)
                    .map(|s| s.reduced_still_picture_header)
                    .unwrap_or(false);
            }
            obu_type::FRAME | obu_type::FRAME_HEADER => {
                if reduced {
                    return true;
                }
                let mut r = BitReader::new(payload, "AV1 frame header");
                // show_existing_frame, frame_type, show_frame
                return matches!((r.bit(), r.bits(2), r.bit()), (Ok(false), Ok(0), Ok(true)));
            }
            _ => {}
        }
        data = data.get(start + payload.len()..).unwrap_or(&[]);
    }
    false
}

/// `AV1CodecConfigurationRecord` (AV1-ISOBMFF §2.3.3): the AV1 `CONFIG`
/// frame payload and MP4's `av1C` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Av1CodecConfigurationRecord {
    /// `seq_profile`.
    pub profile: u8,
    /// `seq_level_idx_0`.
    pub level_idx: u8,
    /// `seq_tier_0`.
    pub tier: bool,
    /// `high_bitdepth`.
    pub high_bitdepth: bool,
    /// `twelve_bit`.
    pub twelve_bit: bool,
    /// `monochrome`.
    pub monochrome: bool,
    /// `chroma_subsampling_x`.
    pub chroma_subsampling_x: bool,
    /// `chroma_subsampling_y`.
    pub chroma_subsampling_y: bool,
    /// `chroma_sample_position`.
    pub chroma_sample_position: u8,
    /// `initial_presentation_delay_minus_one + 1`, when present.
    pub initial_presentation_delay: Option<u8>,
    /// `configOBUs` (normally the sequence header OBU), a slice of the input.
    pub config_obus: Bytes,
}

impl Av1CodecConfigurationRecord {
    /// Parse a record.
    pub fn parse(data: &Bytes) -> Result<Self> {
        const W: &str = "AV1CodecConfigurationRecord";
        let h = data.get(..4).ok_or(CodecError::truncated(W))?;
        if h[0] != 0x81 {
            return Err(CodecError::unsupported(W, "marker/version is not 1/1"));
        }
        Ok(Self {
            profile: h[1] >> 5,
            level_idx: h[1] & 0x1f,
            tier: h[2] & 0x80 != 0,
            high_bitdepth: h[2] & 0x40 != 0,
            twelve_bit: h[2] & 0x20 != 0,
            monochrome: h[2] & 0x10 != 0,
            chroma_subsampling_x: h[2] & 0x08 != 0,
            chroma_subsampling_y: h[2] & 0x04 != 0,
            chroma_sample_position: h[2] & 3,
            initial_presentation_delay: (h[3] & 0x10 != 0).then_some((h[3] & 0xf) + 1),
            config_obus: data.slice(4..),
        })
    }

    /// Build a record from a temporal unit (or OBUs) holding a sequence header.
    pub fn from_obus(data: &Bytes) -> Result<Self> {
        let (obu, sh) = find_sequence_header(data)?.ok_or(CodecError::invalid(
            "AV1CodecConfigurationRecord",
            "no sequence header OBU",
        ))?;
        Ok(Self::from_sequence_header(&sh, obu))
    }

    /// Build a record from a parsed sequence header and its whole OBU.
    pub fn from_sequence_header(sh: &SequenceHeader, sequence_header_obu: Bytes) -> Self {
        Self {
            profile: sh.profile,
            level_idx: sh.level_idx,
            tier: sh.tier,
            high_bitdepth: sh.color.bit_depth > 8,
            twelve_bit: sh.color.bit_depth == 12,
            monochrome: sh.color.mono_chrome,
            chroma_subsampling_x: sh.color.subsampling_x,
            chroma_subsampling_y: sh.color.subsampling_y,
            chroma_sample_position: sh.color.chroma_sample_position,
            initial_presentation_delay: None,
            config_obus: sequence_header_obu,
        }
    }

    /// Append the serialized record to `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        out.put_u8(0x81);
        out.put_u8((self.profile & 7) << 5 | (self.level_idx & 0x1f));
        out.put_u8(
            u8::from(self.tier) << 7
                | u8::from(self.high_bitdepth) << 6
                | u8::from(self.twelve_bit) << 5
                | u8::from(self.monochrome) << 4
                | u8::from(self.chroma_subsampling_x) << 3
                | u8::from(self.chroma_subsampling_y) << 2
                | (self.chroma_sample_position & 3),
        );
        out.put_u8(match self.initial_presentation_delay {
            Some(d) => 0x10 | (d.saturating_sub(1) & 0xf),
            None => 0,
        });
        out.put_slice(&self.config_obus);
    }

    /// The serialized record.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(4 + self.config_obus.len());
        self.write_to(&mut out);
        out.freeze()
    }

    /// Bit depth (8, 10 or 12).
    pub fn bit_depth(&self) -> u8 {
        match (self.high_bitdepth, self.twelve_bit) {
            (true, true) => 12,
            (true, false) => 10,
            _ => 8,
        }
    }

    /// The sequence header inside `config_obus`, when present.
    pub fn sequence_header(&self) -> Result<Option<SequenceHeader>> {
        Ok(find_sequence_header(&self.config_obus)?.map(|(_, s)| s))
    }

    /// The RFC 6381 codec string (AV1-ISOBMFF "Codecs Parameter String"),
    /// short form, e.g. `av01.0.08M.08`.
    pub fn codec_string(&self) -> String {
        format!(
            "av01.{}.{:02}{}.{:02}",
            self.profile,
            self.level_idx,
            if self.tier { 'H' } else { 'M' },
            self.bit_depth()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_strips_delimiters_and_adds_sizes() {
        // TD (with size 0), then a padding-free frame OBU without size field
        let tu = Bytes::from_static(&[0x12, 0x00, 0x30, 0x10, 0x20]);
        let c = to_canonical(&tu).unwrap();
        assert_eq!(&c[..], &[0x32, 0x02, 0x10, 0x20]);
        // already canonical after the TD: sliced, not copied
        let tu2 = Bytes::from_static(&[0x12, 0x00, 0x32, 0x02, 0x10, 0x20]);
        let c2 = to_canonical(&tu2).unwrap();
        assert_eq!(&c2[..], &[0x32, 0x02, 0x10, 0x20]);
        assert_eq!(c2.as_ptr(), tu2[2..].as_ptr());
    }

    #[test]
    fn leb128_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 31] {
            let mut b = BytesMut::new();
            write_leb128(&mut b, v);
            assert_eq!(read_leb128(&b).unwrap(), (v, b.len()));
        }
    }
}
