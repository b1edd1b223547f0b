//! AAC (ISO/IEC 14496-3): ADTS headers (§1.A.2.2), `AudioSpecificConfig`
//! (§1.6.2.1) and conversion between raw frames and ADTS.
//!
//! The kernel's canonical AAC payload is one raw frame; the configuration
//! frame carries an [`AudioSpecificConfig`]. MPEG-TS and `.aac` files use ADTS.

use bytes::{BufMut, Bytes, BytesMut};

use crate::bits::{BitReader, BitWriter};
use crate::error::{CodecError, Result};

/// Sampling frequencies by `samplingFrequencyIndex` (14496-3 Table 1.18).
pub const SAMPLING_FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Longest `AudioSpecificConfig` accepted.
pub const MAX_AUDIO_SPECIFIC_CONFIG_LEN: usize = 1024;

/// Bytes of an ADTS header without CRC.
pub const ADTS_HEADER_LEN: usize = 7;

/// Largest ADTS frame (`aac_frame_length` is 13 bits).
pub const MAX_ADTS_FRAME_LEN: usize = 8191;

/// Object types (14496-3 Table 1.17) this crate names.
pub mod object_type {
    /// AAC Main.
    pub const AAC_MAIN: u8 = 1;
    /// AAC LC.
    pub const AAC_LC: u8 = 2;
    /// AAC SSR.
    pub const AAC_SSR: u8 = 3;
    /// AAC LTP.
    pub const AAC_LTP: u8 = 4;
    /// SBR (HE-AAC).
    pub const SBR: u8 = 5;
    /// Parametric stereo (HE-AAC v2).
    pub const PS: u8 = 29;
}

/// The `samplingFrequencyIndex` of `hz`, when it has one.
pub fn frequency_index(hz: u32) -> Option<u8> {
    SAMPLING_FREQUENCIES
        .iter()
        .position(|&f| f == hz)
        .map(|i| i as u8)
}

/// Channels of `channelConfiguration` 1..=7 (14496-3 Table 1.19); 0 for
/// "defined in a program config element".
pub const fn channels_of(channel_configuration: u8) -> u8 {
    match channel_configuration {
        1..=6 => channel_configuration,
        7 => 8,
        _ => 0,
    }
}

/// An ADTS frame header (14496-3 §1.A.2.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdtsHeader {
    /// `ID`: true for MPEG-2 AAC, false for MPEG-4.
    pub mpeg2: bool,
    /// `profile_ObjectType + 1`: the audio object type (1..=4).
    pub object_type: u8,
    /// `sampling_frequency_index` (0..=12).
    pub sampling_frequency_index: u8,
    /// `private_bit`.
    pub private_bit: bool,
    /// `channel_configuration` (0..=7).
    pub channel_configuration: u8,
    /// `original_copy`.
    pub original_copy: bool,
    /// `home`.
    pub home: bool,
    /// `aac_frame_length`: the whole frame, header included.
    pub frame_length: u16,
    /// `adts_buffer_fullness` (0x7FF = variable rate).
    pub buffer_fullness: u16,
    /// `number_of_raw_data_blocks_in_frame + 1`.
    pub raw_data_blocks: u8,
    /// `crc_check`, when `protection_absent` is 0.
    pub crc: Option<u16>,
}

impl AdtsHeader {
    /// Parse the header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<Self> {
        const W: &str = "ADTS header";
        let h = data
            .get(..ADTS_HEADER_LEN)
            .ok_or(CodecError::truncated(W))?;
        let mut r = BitReader::new(h, W);
        if r.bits(12)? != 0xfff {
            return Err(CodecError::invalid(W, "no 0xFFF syncword"));
        }
        let mpeg2 = r.bit()?;
        if r.bits(2)? != 0 {
            return Err(CodecError::invalid(W, "layer is not 0"));
        }
        let protection_absent = r.bit()?;
        let object_type = r.u8(2)? + 1;
        let sampling_frequency_index = r.u8(4)?;
        if usize::from(sampling_frequency_index) >= SAMPLING_FREQUENCIES.len() {
            return Err(CodecError::invalid(W, "reserved sampling_frequency_index"));
        }
        let private_bit = r.bit()?;
        let channel_configuration = r.u8(3)?;
        let original_copy = r.bit()?;
        let home = r.bit()?;
        r.skip(2)?; // copyright_identification_bit, _start
        let frame_length = r.bits(13)? as u16;
        let buffer_fullness = r.bits(11)? as u16;
        let raw_data_blocks = r.u8(2)? + 1;
        let mut hdr = Self {
            mpeg2,
            object_type,
            sampling_frequency_index,
            private_bit,
            channel_configuration,
            original_copy,
            home,
            frame_length,
            buffer_fullness,
            raw_data_blocks,
            crc: None,
        };
        if !protection_absent {
            // §1.A.2.2.3 adts_error_check / adts_header_error_check: with several
            // raw blocks, 16-bit positions precede the CRC.
            let at = hdr.header_len() - 2;
            let c = data.get(at..at + 2).ok_or(CodecError::truncated(W))?;
            hdr.crc = Some(u16::from_be_bytes([c[0], c[1]]));
        }
        if usize::from(hdr.frame_length) < hdr.header_len() {
            return Err(CodecError::invalid(
                W,
                "aac_frame_length shorter than the header",
            ));
        }
        Ok(hdr)
    }

    /// Header length in bytes (7, or 9 with CRC, plus 2 per extra raw block with CRC).
    pub fn header_len(&self) -> usize {
        if self.crc.is_some() {
            ADTS_HEADER_LEN + 2 * usize::from(self.raw_data_blocks)
        } else {
            ADTS_HEADER_LEN
        }
    }

    /// Bytes after the header (`frame_length - header_len`).
    pub fn payload_len(&self) -> usize {
        usize::from(self.frame_length).saturating_sub(self.header_len())
    }

    /// Sampling frequency in Hz.
    pub fn sample_rate(&self) -> u32 {
        SAMPLING_FREQUENCIES
            .get(usize::from(self.sampling_frequency_index))
            .copied()
            .unwrap_or(0)
    }

    /// The `AudioSpecificConfig` this header implies.
    pub fn audio_specific_config(&self) -> AudioSpecificConfig {
        AudioSpecificConfig::new(
            self.object_type,
            self.sample_rate(),
            self.channel_configuration,
        )
    }

    /// A header for one raw frame of `raw_len` bytes described by `asc`
    /// (its core object type, 1..=4). With `crc`, the header carries a CRC
    /// computed by [`AdtsHeader::write_with_crc`].
    pub fn for_raw(asc: &AudioSpecificConfig, raw_len: usize, crc: bool) -> Result<Self> {
        const W: &str = "ADTS header";
        if !(1..=4).contains(&asc.object_type) {
            return Err(CodecError::unsupported(
                W,
                "ADTS carries only object types 1..=4",
            ));
        }
        let idx = asc.sampling_frequency_index.ok_or(CodecError::unsupported(
            W,
            "ADTS needs an indexed sampling frequency",
        ))?;
        if asc.channel_configuration > 7 {
            return Err(CodecError::invalid(W, "channel configuration above 7"));
        }
        let len = raw_len
            + if crc {
                ADTS_HEADER_LEN + 2
            } else {
                ADTS_HEADER_LEN
            };
        if len > MAX_ADTS_FRAME_LEN {
            return Err(CodecError::limit(
                "ADTS frame length",
                len,
                MAX_ADTS_FRAME_LEN,
            ));
        }
        Ok(Self {
            mpeg2: false,
            object_type: asc.object_type,
            sampling_frequency_index: idx,
            private_bit: false,
            channel_configuration: asc.channel_configuration,
            original_copy: false,
            home: false,
            frame_length: len as u16,
            buffer_fullness: 0x7ff,
            raw_data_blocks: 1,
            crc: crc.then_some(0),
        })
    }

    fn fixed_bytes(&self) -> [u8; 7] {
        let mut w = BitWriter::new();
        w.put(12, 0xfff);
        w.flag(self.mpeg2);
        w.put(2, 0);
        w.flag(self.crc.is_none());
        w.put(2, u64::from(self.object_type.saturating_sub(1) & 3));
        w.put(4, u64::from(self.sampling_frequency_index & 0xf));
        w.flag(self.private_bit);
        w.put(3, u64::from(self.channel_configuration & 7));
        w.flag(self.original_copy);
        w.flag(self.home);
        w.put(2, 0);
        w.put(13, u64::from(self.frame_length & 0x1fff));
        w.put(11, u64::from(self.buffer_fullness & 0x7ff));
        w.put(2, u64::from(self.raw_data_blocks.saturating_sub(1) & 3));
        let v = w.finish();
        let mut out = [0u8; 7];
        out.copy_from_slice(&v[..7]);
        out
    }

    /// Append the header as is (the stored `crc` value, if any) to `out`.
    pub fn write_to(&self, out: &mut BytesMut) {
        out.put_slice(&self.fixed_bytes());
        if let Some(crc) = self.crc {
            for _ in 1..self.raw_data_blocks {
                out.put_u16(0);
            }
            out.put_u16(crc);
        }
    }

    /// Append the header with its CRC computed over the header and `raw`
    /// (one raw data block), then `raw` itself.
    ///
    /// The CRC is CRC-16 with generator x^16 + x^15 + x^2 + 1 and initial
    /// value 0xFFFF (14496-3 §1.A.3.2 refers to 11172-3 §2.4.3.1), over the
    /// 56 header bits and the first 192 bits of the raw data block. That is
    /// the protected region for a frame with one channel element; frames
    /// with several elements protect other bits and decoders that check the
    /// CRC may reject them.
    pub fn write_with_crc(&self, raw: &[u8], out: &mut BytesMut) {
        let fixed = self.fixed_bytes();
        let mut crc = 0xffffu16;
        for &b in fixed.iter().chain(raw.iter().take(24)) {
            crc = crc16_step(crc, b);
        }
        out.put_slice(&fixed);
        out.put_u16(crc);
        out.put_slice(raw);
    }
}

fn crc16_step(mut crc: u16, byte: u8) -> u16 {
    crc ^= u16::from(byte) << 8;
    for _ in 0..8 {
        crc = if crc & 0x8000 != 0 {
            (crc << 1) ^ 0x8005
        } else {
            crc << 1
        };
    }
    crc
}

/// One ADTS frame split into its header and raw payload (a `Bytes` slice).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdtsFrame {
    /// The parsed header.
    pub header: AdtsHeader,
    /// The raw AAC data after the header.
    pub payload: Bytes,
}

/// Iterator over the frames of an ADTS stream. A bad header or a frame that
/// runs past the end yields one error and stops.
#[derive(Clone, Debug)]
pub struct AdtsFrames {
    data: Bytes,
    failed: bool,
}

impl AdtsFrames {
    /// Iterate over the frames in `data`.
    pub fn new(data: Bytes) -> Self {
        Self {
            data,
            failed: false,
        }
    }
}

impl Iterator for AdtsFrames {
    type Item = Result<AdtsFrame>;

    fn next(&mut self) -> Option<Result<AdtsFrame>> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        let header = match AdtsHeader::parse(&self.data) {
            Ok(h) => h,
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        };
        let len = usize::from(header.frame_length);
        if len > self.data.len() {
            self.failed = true;
            return Some(Err(CodecError::truncated("ADTS frame")));
        }
        let mut frame = self.data.split_to(len);
        let payload = frame.split_off(header.header_len());
        Some(Ok(AdtsFrame { header, payload }))
    }
}

/// Strip the ADTS header from one frame: the raw payload as a slice of
/// `frame`, and the header.
pub fn adts_to_raw(frame: &Bytes) -> Result<(AdtsHeader, Bytes)> {
    let h = AdtsHeader::parse(frame)?;
    let end = usize::from(h.frame_length);
    if end > frame.len() {
        return Err(CodecError::truncated("ADTS frame"));
    }
    if h.raw_data_blocks > 1 && h.crc.is_some() {
        return Err(CodecError::unsupported(
            "ADTS frame",
            "several raw data blocks with CRC",
        ));
    }
    Ok((h, frame.slice(h.header_len()..end)))
}

/// Append `raw` behind an ADTS header built from `asc` (without CRC).
pub fn raw_to_adts(asc: &AudioSpecificConfig, raw: &[u8], out: &mut BytesMut) -> Result<()> {
    let h = AdtsHeader::for_raw(asc, raw.len(), false)?;
    out.reserve(raw.len() + ADTS_HEADER_LEN);
    h.write_to(out);
    out.put_slice(raw);
    Ok(())
}

/// How SBR/PS presence is signalled in an `AudioSpecificConfig` (14496-3 §1.6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SbrSignalling {
    /// Not signalled (implicit: a decoder finds SBR in the payload, if any).
    #[default]
    Implicit,
    /// Explicit hierarchical: the first object type is 5 (SBR) or 29 (PS),
    /// followed by the extension frequency and the core object type.
    Hierarchical,
    /// Explicit backward compatible: the sync extension `0x2b7` after the
    /// core config.
    BackwardCompatible,
}

/// `AudioSpecificConfig` (ISO/IEC 14496-3 §1.6.2.1), for the GA object
/// types (AAC Main/LC/SSR/LTP/scalable, ER AAC) and their SBR/PS extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// The core audio object type (2 for AAC-LC, also under HE-AAC).
    pub object_type: u8,
    /// `samplingFrequencyIndex`, or `None` when the frequency is explicit.
    pub sampling_frequency_index: Option<u8>,
    /// Core sampling frequency in Hz.
    pub sampling_frequency: u32,
    /// `channelConfiguration` (0 = program config element, not parsed).
    pub channel_configuration: u8,
    /// GASpecificConfig `frameLengthFlag` (960-sample frames).
    pub frame_length_flag: bool,
    /// GASpecificConfig `coreCoderDelay` when `dependsOnCoreCoder` is set.
    pub core_coder_delay: Option<u16>,
    /// GASpecificConfig `extensionFlag`.
    pub extension_flag: bool,
    /// How SBR/PS is signalled.
    pub sbr_signalling: SbrSignalling,
    /// `sbrPresentFlag` (explicit signalling only).
    pub sbr_present: bool,
    /// `psPresentFlag` (explicit signalling only).
    pub ps_present: bool,
    /// The SBR output sampling frequency, when signalled.
    pub extension_sampling_frequency: Option<u32>,
}

fn is_ga(aot: u8) -> bool {
    matches!(aot, 1..=4 | 6 | 7 | 17 | 19..=23)
}

fn read_aot(r: &mut BitReader<'_>) -> Result<u8> {
    let t = r.u8(5)?;
    Ok(if t == 31 { 32 + r.u8(6)? } else { t })
}

fn write_aot(w: &mut BitWriter, aot: u8) {
    if aot >= 31 {
        w.put(5, 31);
        w.put(6, u64::from(aot - 32));
    } else {
        w.put(5, u64::from(aot));
    }
}

/// (index, frequency); index 15 escapes to 24 explicit bits.
fn read_freq(r: &mut BitReader<'_>) -> Result<(Option<u8>, u32)> {
    let idx = r.u8(4)?;
    if idx == 15 {
        return Ok((None, r.bits(24)?));
    }
    let f = SAMPLING_FREQUENCIES
        .get(usize::from(idx))
        .copied()
        .ok_or(CodecError::invalid(
            "AudioSpecificConfig",
            "reserved samplingFrequencyIndex",
        ))?;
    Ok((Some(idx), f))
}

/// `idx` `None` writes the explicit 24-bit frequency.
fn write_freq(w: &mut BitWriter, idx: Option<u8>, hz: u32) {
    match idx {
        Some(i) => w.put(4, u64::from(i)),
        None => {
            w.put(4, 15);
            w.put(24, u64::from(hz));
        }
    }
}

impl AudioSpecificConfig {
    /// A plain config: `object_type`, `sampling_frequency` (indexed when a
    /// table entry matches) and `channel_configuration`, no SBR signalling.
    pub fn new(object_type: u8, sampling_frequency: u32, channel_configuration: u8) -> Self {
        Self {
            object_type,
            sampling_frequency_index: frequency_index(sampling_frequency),
            sampling_frequency,
            channel_configuration,
            frame_length_flag: false,
            core_coder_delay: None,
            extension_flag: false,
            sbr_signalling: SbrSignalling::Implicit,
            sbr_present: false,
            ps_present: false,
            extension_sampling_frequency: None,
        }
    }

    /// Parse a config. Fields after a program config element
    /// (`channelConfiguration` 0) are not read.
    pub fn parse(data: &[u8]) -> Result<Self> {
        const W: &str = "AudioSpecificConfig";
        if data.len() > MAX_AUDIO_SPECIFIC_CONFIG_LEN {
            return Err(CodecError::limit(
                W,
                data.len(),
                MAX_AUDIO_SPECIFIC_CONFIG_LEN,
            ));
        }
        let mut r = BitReader::new(data, W);
        let mut aot = read_aot(&mut r)?;
        if aot == 0 {
            return Err(CodecError::invalid(W, "object type 0"));
        }
        let (idx, freq) = read_freq(&mut r)?;
        let channel_configuration = r.u8(4)?;
        let mut asc = Self::new(aot, freq, channel_configuration);
        if aot == object_type::SBR || aot == object_type::PS {
            // §1.6.2.1: explicit hierarchical signalling
            asc.sbr_signalling = SbrSignalling::Hierarchical;
            asc.sbr_present = true;
            asc.ps_present = aot == object_type::PS;
            let (_, ext) = read_freq(&mut r)?;
            asc.extension_sampling_frequency = Some(ext);
            aot = read_aot(&mut r)?;
            if aot == 22 {
                r.skip(4)?; // extensionChannelConfiguration
            }
        }
        asc.object_type = aot;
        asc.sampling_frequency_index = idx;
        asc.sampling_frequency = freq;
        if !is_ga(aot) {
            return Ok(asc);
        }
        // §4.4.1 GASpecificConfig
        asc.frame_length_flag = r.bit()?;
        if r.bit()? {
            asc.core_coder_delay = Some(r.bits(14)? as u16);
        }
        asc.extension_flag = r.bit()?;
        if channel_configuration == 0 {
            return Ok(asc); // program_config_element(): not parsed
        }
        if matches!(aot, 6 | 20) {
            r.skip(3)?; // layerNr
        }
        if asc.extension_flag {
            if aot == 22 {
                r.skip(16)?; // numOfSubFrame, layer_length
            }
            if matches!(aot, 17 | 19 | 20 | 23) {
                r.skip(3)?; // resilience flags
            }
            r.skip(1)?; // extensionFlag3
        }
        // §1.6.5.2 backward-compatible explicit signalling
        if asc.sbr_signalling != SbrSignalling::Hierarchical
            && r.remaining() >= 16
            && r.bits(11)? == 0x2b7
        {
            let ext_aot = read_aot(&mut r)?;
            if ext_aot == object_type::SBR {
                asc.sbr_signalling = SbrSignalling::BackwardCompatible;
                asc.sbr_present = r.bit()?;
                if asc.sbr_present {
                    let (_, ext) = read_freq(&mut r)?;
                    asc.extension_sampling_frequency = Some(ext);
                    if r.remaining() >= 12 && r.bits(11)? == 0x548 {
                        asc.ps_present = r.bit()?;
                    }
                }
            }
        }
        Ok(asc)
    }

    /// Serialize (the inverse of [`AudioSpecificConfig::parse`]).
    pub fn to_bytes(&self) -> Result<Bytes> {
        const W: &str = "AudioSpecificConfig";
        if self.object_type == 0 || self.object_type > 95 {
            return Err(CodecError::invalid(W, "object type out of range"));
        }
        if self.channel_configuration > 15 || self.sampling_frequency >= 1 << 24 {
            return Err(CodecError::invalid(
                W,
                "channel configuration or frequency out of range",
            ));
        }
        if self.channel_configuration == 0 && is_ga(self.object_type) {
            return Err(CodecError::unsupported(
                W,
                "program config elements are not built",
            ));
        }
        let mut w = BitWriter::new();
        let hierarchical = self.sbr_signalling == SbrSignalling::Hierarchical;
        let ext_freq = self
            .extension_sampling_frequency
            .unwrap_or(self.sampling_frequency);
        if hierarchical {
            write_aot(
                &mut w,
                if self.ps_present {
                    object_type::PS
                } else {
                    object_type::SBR
                },
            );
        } else {
            write_aot(&mut w, self.object_type);
        }
        write_freq(
            &mut w,
            self.sampling_frequency_index,
            self.sampling_frequency,
        );
        w.put(4, u64::from(self.channel_configuration));
        if hierarchical {
            write_freq(&mut w, frequency_index(ext_freq), ext_freq);
            write_aot(&mut w, self.object_type);
            if self.object_type == 22 {
                w.put(4, 0);
            }
        }
        if is_ga(self.object_type) {
            w.flag(self.frame_length_flag);
            w.flag(self.core_coder_delay.is_some());
            if let Some(d) = self.core_coder_delay {
                w.put(14, u64::from(d));
            }
            w.flag(self.extension_flag);
            if matches!(self.object_type, 6 | 20) {
                w.put(3, 0);
            }
            if self.extension_flag {
                if self.object_type == 22 {
                    w.put(16, 0);
                }
                if matches!(self.object_type, 17 | 19 | 20 | 23) {
                    w.put(3, 0);
                }
                w.flag(false);
            }
        }
        if self.sbr_signalling == SbrSignalling::BackwardCompatible {
            w.put(11, 0x2b7);
            write_aot(&mut w, object_type::SBR);
            w.flag(self.sbr_present);
            if self.sbr_present {
                write_freq(&mut w, frequency_index(ext_freq), ext_freq);
                if self.ps_present {
                    w.put(11, 0x548);
                    w.flag(true);
                }
            }
        }
        Ok(Bytes::from(w.finish()))
    }

    /// Channels (from the channel configuration; parametric stereo makes a
    /// mono core stereo). 0 when a program config element defines them.
    pub fn channels(&self) -> u8 {
        let c = channels_of(self.channel_configuration);
        if self.ps_present && c == 1 {
            2
        } else {
            c
        }
    }

    /// Output sample rate: the SBR rate when SBR is signalled, else the core rate.
    pub fn output_sample_rate(&self) -> u32 {
        match self.extension_sampling_frequency {
            Some(f) if self.sbr_present => f,
            _ => self.sampling_frequency,
        }
    }

    /// The object type an RFC 6381 string names: 29 with PS, 5 with SBR,
    /// else the core type.
    pub fn signalled_object_type(&self) -> u8 {
        if self.ps_present {
            object_type::PS
        } else if self.sbr_present {
            object_type::SBR
        } else {
            self.object_type
        }
    }

    /// The RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.signalled_object_type())
    }

    /// The profile name as FFmpeg prints it (`LC`, `HE-AAC`, `HE-AACv2`, …).
    pub fn profile_name(&self) -> &'static str {
        match self.signalled_object_type() {
            object_type::PS => "HE-AACv2",
            object_type::SBR => "HE-AAC",
            1 => "Main",
            2 => "LC",
            3 => "SSR",
            4 => "LTP",
            23 => "LD",
            39 => "ELD",
            _ => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_lc_48k_mono() {
        let asc = AudioSpecificConfig::parse(&[0x11, 0x88]).unwrap();
        assert_eq!(
            (asc.object_type, asc.sampling_frequency, asc.channels()),
            (2, 48000, 1)
        );
        assert_eq!(asc.codec_string(), "mp4a.40.2");
        assert_eq!(&asc.to_bytes().unwrap()[..], &[0x11, 0x88]);
    }

    #[test]
    fn parses_he_aac_signalling() {
        // hierarchical: AOT 5, 24 kHz core, stereo, 48 kHz SBR, core LC
        let asc = AudioSpecificConfig::parse(&[0x2b, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!(asc.sbr_signalling, SbrSignalling::Hierarchical);
        assert_eq!(
            (
                asc.object_type,
                asc.sampling_frequency,
                asc.output_sample_rate()
            ),
            (2, 24000, 48000)
        );
        assert_eq!(asc.codec_string(), "mp4a.40.5");
        // backward compatible with PS: LC 24 kHz mono + 0x2b7 SBR 48 kHz + 0x548 PS
        let mut a = AudioSpecificConfig::new(2, 24000, 1);
        a.sbr_signalling = SbrSignalling::BackwardCompatible;
        a.sbr_present = true;
        a.ps_present = true;
        a.extension_sampling_frequency = Some(48000);
        let b = a.to_bytes().unwrap();
        let p = AudioSpecificConfig::parse(&b).unwrap();
        assert_eq!(p, a);
        assert_eq!((p.channels(), p.codec_string().as_str()), (2, "mp4a.40.29"));
    }

    #[test]
    fn adts_round_trip() {
        let asc = AudioSpecificConfig::new(2, 44100, 2);
        let mut out = BytesMut::new();
        raw_to_adts(&asc, &[1, 2, 3], &mut out).unwrap();
        let frame = out.freeze();
        let (h, raw) = adts_to_raw(&frame).unwrap();
        assert_eq!(&raw[..], &[1, 2, 3]);
        assert_eq!(h.audio_specific_config(), asc);
        let mut crc = BytesMut::new();
        AdtsHeader::for_raw(&asc, 3, true)
            .unwrap()
            .write_with_crc(&[1, 2, 3], &mut crc);
        let (h2, raw2) = adts_to_raw(&crc.freeze()).unwrap();
        assert!(h2.crc.is_some());
        assert_eq!(&raw2[..], &[1, 2, 3]);
    }

    proptest! {
        #[test]
        fn asc_round_trip(aot in prop_oneof![Just(1u8), Just(2), Just(4), Just(23), Just(39), Just(42)],
                          freq in prop_oneof![Just(48000u32), Just(44100), Just(12345)],
                          ch in 1u8..8, sig in 0u8..3, ps: bool, flf: bool, ext: bool) {
            let mut a = AudioSpecificConfig::new(aot, freq, ch);
            a.frame_length_flag = flf && is_ga(aot);
            a.extension_flag = ext && is_ga(aot);
            if sig > 0 && aot == 2 {
                a.sbr_signalling = if sig == 1 { SbrSignalling::Hierarchical } else { SbrSignalling::BackwardCompatible };
                a.sbr_present = true;
                a.ps_present = ps;
                a.extension_sampling_frequency = Some(freq * 2);
            }
            let b = a.to_bytes().unwrap();
            prop_assert_eq!(AudioSpecificConfig::parse(&b).unwrap(), a);
        }

        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = AudioSpecificConfig::parse(&data);
            let _ = AdtsHeader::parse(&data);
            let _ = AdtsFrames::new(Bytes::from(data)).count();
        }
    }
}
