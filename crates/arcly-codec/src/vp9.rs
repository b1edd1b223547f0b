//! VP9 (VP9 Bitstream & Decoding Process Specification v0.6): the
//! uncompressed header (§6.2), superframe index (Annex B) and the
//! `VPCodecConfigurationRecord` (vpcC, VP-ISOBMFF §2.2).
//!
//! The canonical VP9 payload is one frame or superframe as the encoder wrote
//! it; the configuration frame carries the vpcC body (after the FullBox header).

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::BitReader;
use crate::error::{CodecError, Result};

/// Frames in a superframe (Annex B: 3 bits + 1).
pub const MAX_SUPERFRAME_FRAMES: usize = 8;

/// Colour configuration (§6.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColorConfig {
    /// Bit depth (8, 10 or 12).
    pub bit_depth: u8,
    /// `color_space` (0 unknown, 1 BT.601, 2 BT.709, … 7 sRGB).
    pub color_space: u8,
    /// `color_range` (true = full).
    pub full_range: bool,
    /// `subsampling_x`.
    pub subsampling_x: bool,
    /// `subsampling_y`.
    pub subsampling_y: bool,
}

/// The uncompressed frame header fields a server needs (§6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Profile 0..=3.
    pub profile: u8,
    /// `show_existing_frame` (then nothing else is read).
    pub show_existing_frame: bool,
    /// `frame_type == KEY_FRAME`.
    pub key_frame: bool,
    /// `show_frame`.
    pub show_frame: bool,
    /// `intra_only` (non-key frames).
    pub intra_only: bool,
    /// Colour configuration (key frames, and intra-only frames of profile > 0).
    pub color: Option<ColorConfig>,
    /// `(width, height)` (key and intra-only frames).
    pub size: Option<(u32, u32)>,
}

impl FrameHeader {
    /// Parse the uncompressed header at the start of a frame.
    pub fn parse(frame: &[u8]) -> Result<Self> {
        const W: &str = "VP9 uncompressed header";
        let mut r = BitReader::new(frame, W);
        if r.bits(2)? != 2 {
            return Err(CodecError::invalid(W, "frame_marker is not 2"));
        }
        let low = r.u8(1)?;
        let high = r.u8(1)?;
        let profile = (high << 1) | low;
        if profile == 3 && r.bit()? {
            return Err(CodecError::invalid(W, "reserved_zero set"));
        }
        let mut h = Self {
            profile,
            show_existing_frame: r.bit()?,
            key_frame: false,
            show_frame: false,
            intra_only: false,
            color: None,
            size: None,
        };
        if h.show_existing_frame {
            return Ok(h);
        }
        h.key_frame = !r.bit()?;
        h.show_frame = r.bit()?;
        let error_resilient = r.bit()?;
        if h.key_frame {
            sync_code(&mut r)?;
            h.color = Some(color_config(&mut r, profile)?);
            h.size = Some(frame_size(&mut r)?);
        } else {
            h.intra_only = !h.show_frame && r.bit()?;
            if !error_resilient {
                r.skip(2)?; // reset_frame_context
            }
            if h.intra_only {
                sync_code(&mut r)?;
                h.color = Some(if profile > 0 {
                    color_config(&mut r, profile)?
                } else {
                    ColorConfig {
                        bit_depth: 8,
                        color_space: 1,
                        full_range: false,
                        subsampling_x: true,
                        subsampling_y: true,
                    }
                });
                r.skip(8)?; // refresh_frame_flags
                h.size = Some(frame_size(&mut r)?);
            }
        }
        Ok(h)
    }
}

fn sync_code(r: &mut BitReader<'_>) -> Result<()> {
    if r.bits(24)? != 0x49_83_42 {
        return Err(CodecError::invalid(
            "VP9 uncompressed header",
            "bad frame_sync_code",
        ));
    }
    Ok(())
}

// §6.2.2
fn color_config(r: &mut BitReader<'_>, profile: u8) -> Result<ColorConfig> {
    let bit_depth = if profile >= 2 {
        if r.bit()? {
            12
        } else {
            10
        }
    } else {
        8
    };
    let color_space = r.u8(3)?;
    let mut c = ColorConfig {
        bit_depth,
        color_space,
        full_range: true,
        subsampling_x: false,
        subsampling_y: false,
    };
    if color_space != 7 {
        c.full_range = r.bit()?;
        if profile == 1 || profile == 3 {
            c.subsampling_x = r.bit()?;
            c.subsampling_y = r.bit()?;
            r.skip(1)?;
        } else {
            c.subsampling_x = true;
            c.subsampling_y = true;
        }
    } else if profile == 1 || profile == 3 {
        r.skip(1)?;
    }
    Ok(c)
}

fn frame_size(r: &mut BitReader<'_>) -> Result<(u32, u32)> {
    Ok((r.bits(16)? + 1, r.bits(16)? + 1))
}

/// The frames of a superframe (Annex B), as slices of `data`; a plain frame
/// yields itself.
pub fn superframe_frames(data: &Bytes) -> Result<Vec<Bytes>> {
    const W: &str = "VP9 superframe index";
    let Some(&last) = data.last() else {
        return Ok(Vec::new());
    };
    if last & 0xe0 != 0xc0 {
        return Ok(vec![data.clone()]);
    }
    let size_bytes = usize::from((last >> 3) & 3) + 1;
    let frames = usize::from(last & 7) + 1;
    let index_len = 2 + size_bytes * frames;
    if index_len > data.len() || data.get(data.len() - index_len) != Some(&last) {
        // not an index after all: the byte belongs to the frame
        return Ok(vec![data.clone()]);
    }
    let index = data
        .get(data.len() - index_len + 1..data.len() - 1)
        .ok_or(CodecError::truncated(W))?;
    let mut out = Vec::with_capacity(frames);
    let mut pos = 0usize;
    for chunk in index.chunks_exact(size_bytes) {
        let size = chunk
            .iter()
            .rev()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        let end = pos
            .checked_add(size)
            .ok_or(CodecError::invalid(W, "size overflow"))?;
        if end > data.len() - index_len {
            return Err(CodecError::invalid(W, "frame sizes exceed the superframe"));
        }
        out.push(data.slice(pos..end));
        pos = end;
    }
    Ok(out)
}

/// Whether a frame or superframe holds a key frame.
pub fn is_keyframe(data: &[u8]) -> bool {
    // a key frame is always the first frame of a superframe
    FrameHeader::parse(data)
        .map(|h| h.key_frame)
        .unwrap_or(false)
}

/// VP9 levels (VP9 levels annex): (level × 10, max luma picture size, max luma sample rate).
const LEVELS: [(u8, u64, u64); 14] = [
    (10, 36_864, 829_440),
    (11, 73_728, 2_764_800),
    (20, 122_880, 4_608_000),
    (21, 245_760, 9_216_000),
    (30, 552_960, 20_736_000),
    (31, 983_040, 36_864_000),
    (40, 2_228_224, 83_558_400),
    (41, 2_228_224, 160_432_128),
    (50, 8_912_896, 311_951_360),
    (51, 8_912_896, 588_251_136),
    (52, 8_912_896, 1_176_502_272),
    (60, 35_651_584, 1_176_502_272),
    (61, 35_651_584, 2_353_004_544),
    (62, 35_651_584, 4_706_009_088),
];

/// The lowest VP9 level that admits `width × height` at `fps` (when known).
pub fn level_for(width: u32, height: u32, fps: Option<(u32, u32)>) -> u8 {
    let pic = u64::from(width) * u64::from(height);
    let rate = fps
        .filter(|f| f.1 != 0)
        .map(|(n, d)| pic * u64::from(n) / u64::from(d));
    LEVELS
        .iter()
        .find(|(_, max_pic, max_rate)| pic <= *max_pic && rate.is_none_or(|r| r <= *max_rate))
        .map_or(62, |l| l.0)
}

/// `VPCodecConfigurationRecord` (VP-ISOBMFF §2.2), the vpcC body after its
/// FullBox header (version 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpCodecConfigurationRecord {
    /// Profile 0..=3.
    pub profile: u8,
    /// Level × 10 (e.g. 31 for 3.1).
    pub level: u8,
    /// Bit depth.
    pub bit_depth: u8,
    /// `chromaSubsampling` (0 4:2:0 vertical, 1 4:2:0 colocated, 2 4:2:2, 3 4:4:4).
    pub chroma_subsampling: u8,
    /// `videoFullRangeFlag`.
    pub full_range: bool,
    /// `colourPrimaries` (ISO/IEC 23091-2).
    pub colour_primaries: u8,
    /// `transferCharacteristics`.
    pub transfer_characteristics: u8,
    /// `matrixCoefficients`.
    pub matrix_coefficients: u8,
    /// `codecInitializationData` (empty for VP9).
    pub init_data: Bytes,
    /// Width from the key frame this record was built from (not serialized).
    pub width: Option<u32>,
    /// Height from the key frame this record was built from (not serialized).
    pub height: Option<u32>,
}

impl VpCodecConfigurationRecord {
    /// Parse a vpcC body. A leading FullBox header (version 1, flags 0) is
    /// skipped when present.
    pub fn parse(data: &Bytes) -> Result<Self> {
        const W: &str = "VPCodecConfigurationRecord";
        let body = if data.len() >= 12 && data.get(..4) == Some(&[1, 0, 0, 0]) {
            data.slice(4..)
        } else {
            data.clone()
        };
        let h = body.get(..8).ok_or(CodecError::truncated(W))?;
        let init_len = usize::from(u16::from_be_bytes([h[6], h[7]]));
        let init_data = body
            .get(8..8 + init_len)
            .map(|_| body.slice(8..8 + init_len))
            .ok_or(CodecError::truncated(W))?;
        Ok(Self {
            profile: h[0],
            level: h[1],
            bit_depth: h[2] >> 4,
            chroma_subsampling: (h[2] >> 1) & 7,
            full_range: h[2] & 1 != 0,
            colour_primaries: h[3],
            transfer_characteristics: h[4],
            matrix_coefficients: h[5],
            init_data,
            width: None,
            height: None,
        })
    }

    /// Build from the first key frame's uncompressed header. `fps` refines the
    /// level when known. Colour description comes from `color_space`.
    pub fn from_keyframe(frame: &[u8], fps: Option<(u32, u32)>) -> Result<Self> {
        let h = FrameHeader::parse(frame)?;
        let (Some(c), Some((w, hgt))) = (h.color, h.size) else {
            return Err(CodecError::invalid(
                "VPCodecConfigurationRecord",
                "not a key frame",
            ));
        };
        // 4:2:0 chroma siting is not in the VP9 bitstream; like FFmpeg's vpcC
        // writer, report "colocated with luma" (1).
        let chroma_subsampling = match (c.subsampling_x, c.subsampling_y) {
            (true, true) => 1,
            (true, false) => 2,
            _ => 3,
        };
        // VP-ISOBMFF §2.2 / 23091-2 code points for VP9 color_space
        let (cp, tc, mc) = match c.color_space {
            1 => (6, 6, 6),  // BT.601
            2 => (1, 1, 1),  // BT.709
            3 => (6, 6, 6),  // SMPTE-170
            4 => (7, 7, 7),  // SMPTE-240
            5 => (9, 14, 9), // BT.2020 (10-bit transfer)
            7 => (1, 13, 0), // sRGB
            _ => (2, 2, 2),  // unspecified
        };
        Ok(Self {
            profile: h.profile,
            level: level_for(w, hgt, fps),
            bit_depth: c.bit_depth,
            chroma_subsampling,
            full_range: c.full_range,
            colour_primaries: cp,
            transfer_characteristics: tc,
            matrix_coefficients: mc,
            init_data: Bytes::new(),
            width: Some(w),
            height: Some(hgt),
        })
    }

    /// Append the vpcC body to `out`.
    pub fn write_to(&self, out: &mut BytesMut) -> Result<()> {
        let n = u16::try_from(self.init_data.len()).map_err(|_| {
            CodecError::limit("VP codecInitializationData", self.init_data.len(), 65535)
        })?;
        out.put_slice(&[
            self.profile,
            self.level,
            (self.bit_depth & 0xf) << 4
                | (self.chroma_subsampling & 7) << 1
                | u8::from(self.full_range),
            self.colour_primaries,
            self.transfer_characteristics,
            self.matrix_coefficients,
        ]);
        out.put_u16(n);
        out.put_slice(&self.init_data);
        Ok(())
    }

    /// The serialized vpcC body.
    pub fn to_bytes(&self) -> Result<Bytes> {
        let mut out = BytesMut::with_capacity(8 + self.init_data.len());
        self.write_to(&mut out)?;
        Ok(out.freeze())
    }

    /// The RFC 6381 codec string (VP-ISOBMFF "Codecs Parameter String"),
    /// short form, e.g. `vp09.00.10.08`.
    pub fn codec_string(&self) -> String {
        format!(
            "vp09.{:02}.{:02}.{:02}",
            self.profile, self.level, self.bit_depth
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superframe_split() {
        // two frames of 2 and 1 bytes, 1-byte sizes: marker 0b110_00_001 = 0xc1
        let sf = Bytes::from_static(&[0xaa, 0xbb, 0xcc, 0xc1, 2, 1, 0xc1]);
        let f = superframe_frames(&sf).unwrap();
        assert_eq!(
            f,
            vec![
                Bytes::from_static(&[0xaa, 0xbb]),
                Bytes::from_static(&[0xcc])
            ]
        );
        assert!(superframe_frames(&Bytes::from_static(&[0xc1, 9, 9, 0xc1])).is_err());
        assert_eq!(level_for(640, 360, Some((25, 1))), 21);
    }
}
