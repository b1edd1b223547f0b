//! Elementary-stream conversions at the TS edge: decoder configuration
//! records to in-band parameter sets and back, AudioSpecificConfig to ADTS
//! and back, Opus framing.
//!
//! Private helpers for what arcly-codec does not cover (Opus and MPEG audio
//! framing); H.264/H.265 records and ADTS come from arcly-codec.

use crate::error::TsError;

/// H.264 NAL unit types (ITU-T H.264 Table 7-1).
pub(crate) mod h264 {
    pub use arcly_codec::h264::nal_type::{AUD, IDR, PPS, SPS};
    /// The access unit delimiter NAL with `primary_pic_type = 7` (any slice
    /// type) and its stop bit (H.264 §7.3.2.4).
    pub const AUD_NAL: [u8; 6] = [0, 0, 0, 1, 0x09, 0xF0];
    pub fn nal_type(nal: &[u8]) -> u8 {
        arcly_codec::h264::nal_type_of(nal).unwrap_or(0)
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

/// Call `f(start, end)` for the NAL units of an Annex-B byte stream
/// (ITU-T H.264 Annex B.2, H.265 Annex B.2): each one runs from after a
/// `00 00 01` start code to the next one, trailing zero bytes (a 4-byte
/// start code's `zero_byte`, `trailing_zero_8bits`) excluded; bytes before
/// the first start code and empty units are skipped. One pass: `memchr`
/// finds each `01` byte and the two bytes before it are checked.
pub(crate) fn annexb_nals(data: &[u8], mut f: impl FnMut(usize, usize)) {
    let Some(first) = find_start_code(data, 0) else {
        return;
    };
    let mut pos = first + 3;
    while pos < data.len() {
        let (end, next) = match find_start_code(data, pos) {
            Some(i) => (i, i + 3),
            None => (data.len(), data.len()),
        };
        let nal = data.get(pos..end).unwrap_or_default();
        let trimmed = nal.len() - nal.iter().rev().take_while(|&&b| b == 0).count();
        if trimmed > 0 {
            f(pos, pos + trimmed);
        }
        pos = next;
    }
}

/// The offset of the first `00 00 01` at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from.checked_add(2)?;
    while i < data.len() {
        let one = i + memchr::memchr(1, data.get(i..)?)?;
        if data.get(one - 2..one) == Some(&[0, 0][..]) {
            return Some(one - 2);
        }
        i = one + 1;
    }
    None
}

fn payload_err(codec: &'static str, reason: &'static str) -> TsError {
    TsError::BadPayload { codec, reason }
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
    fn annexb_scanner_matches_arcly_codec() {
        let cases: [&[u8]; 6] = [
            &[
                0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x65, 1, 2, 0, 0, 0, 0, 1, 0x41, 7,
            ],
            &[1, 2, 3, 0, 0, 1, 0x67, 0, 0, 1, 0, 0, 1],
            &[0, 0, 1],
            &[],
            &[0, 0, 1, 0, 0, 0, 0, 1, 5],
            &[9, 9, 0, 0, 1, 0x41, 0, 0, 3, 0, 0, 1, 0x41, 0, 0],
        ];
        for data in cases {
            let mut ours = Vec::new();
            annexb_nals(data, |a, b| ours.push(&data[a..b]));
            let theirs: Vec<&[u8]> = arcly_codec::nal::AnnexBSlices::new(data).collect();
            assert_eq!(ours, theirs, "{data:?}");
        }
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
