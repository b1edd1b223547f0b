//! Program-specific information: the Program Association Table and the
//! Program Map Table (ISO/IEC 13818-1 §2.4.4).

use crate::crc::crc32_mpeg2;
use crate::error::TsError;

/// `stream_type` of MPEG-1 audio (layers I–III at 32/44.1/48 kHz) (13818-1 Table 2-34).
pub const STREAM_TYPE_MPEG1_AUDIO: u8 = 0x03;
/// `stream_type` of MPEG-2 audio (MPEG-2/2.5 layer III at low sample rates).
pub const STREAM_TYPE_MPEG2_AUDIO: u8 = 0x04;
/// `stream_type` of PES packets with private data (Opus, with a registration descriptor).
pub const STREAM_TYPE_PRIVATE_PES: u8 = 0x06;
/// `stream_type` of AAC in ADTS (ISO/IEC 13818-7 audio).
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;
/// `stream_type` of H.264 / AVC video.
pub const STREAM_TYPE_H264: u8 = 0x1B;
/// `stream_type` of H.265 / HEVC video.
pub const STREAM_TYPE_H265: u8 = 0x24;

/// `table_id` of a PAT section.
pub const TABLE_ID_PAT: u8 = 0x00;
/// `table_id` of a PMT section.
pub const TABLE_ID_PMT: u8 = 0x02;
/// A PAT or PMT section is at most 1024 bytes including its 3-byte header
/// (`section_length` ≤ 1021, §2.4.4.3 and §2.4.4.8).
pub const MAX_SECTION_SIZE: usize = 1024;
/// The registration descriptor tag (§2.6.8).
pub const DESCRIPTOR_REGISTRATION: u8 = 0x05;
/// The DVB extension descriptor tag that carries the Opus audio descriptor.
pub const DESCRIPTOR_DVB_EXTENSION: u8 = 0x7F;
/// The extension tag of the Opus audio descriptor (Opus in MPEG-TS, ETSI TS 102 366-style draft v0.1.3 §5).
pub const DVB_EXT_OPUS: u8 = 0x80;

/// One elementary stream in a PMT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PmtStream {
    /// `stream_type`.
    pub stream_type: u8,
    /// `elementary_PID`.
    pub pid: u16,
    /// The raw ES_info descriptors.
    pub descriptors: Vec<u8>,
}

impl PmtStream {
    /// The format identifier of a registration descriptor (§2.6.8) among
    /// this stream's descriptors, e.g. `*b"Opus"`.
    pub fn registration(&self) -> Option<[u8; 4]> {
        self.descriptor(DESCRIPTOR_REGISTRATION)
            .and_then(|d| d.get(..4))
            .and_then(|d| d.try_into().ok())
    }

    /// The body of the first descriptor with `tag`.
    pub fn descriptor(&self, tag: u8) -> Option<&[u8]> {
        let mut d = self.descriptors.as_slice();
        while let [t, len, rest @ ..] = d {
            let body = rest.get(..usize::from(*len))?;
            if *t == tag {
                return Some(body);
            }
            d = &rest[usize::from(*len)..];
        }
        None
    }
}

/// A parsed PMT (§2.4.4.8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pmt {
    /// `program_number`.
    pub program_number: u16,
    /// `version_number`.
    pub version: u8,
    /// `PCR_PID`.
    pub pcr_pid: u16,
    /// The elementary streams, in section order.
    pub streams: Vec<PmtStream>,
}

fn finish_section(mut s: Vec<u8>) -> Vec<u8> {
    // section_length counts the bytes after it, CRC included.
    let section_length = s.len() - 3 + 4;
    s[1] = 0xB0 | ((section_length >> 8) as u8 & 0x0F);
    s[2] = section_length as u8;
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    s
}

/// A PAT section with one program (§2.4.4.3).
pub fn write_pat(
    transport_stream_id: u16,
    program_number: u16,
    pmt_pid: u16,
    version: u8,
) -> Vec<u8> {
    let mut s = vec![TABLE_ID_PAT, 0, 0];
    s.extend_from_slice(&transport_stream_id.to_be_bytes());
    s.push(0xC1 | ((version & 0x1F) << 1)); // reserved, version, current_next_indicator = 1
    s.extend_from_slice(&[0, 0]); // section_number, last_section_number
    s.extend_from_slice(&program_number.to_be_bytes());
    s.extend_from_slice(&(0xE000 | pmt_pid).to_be_bytes());
    finish_section(s)
}

/// A PMT section (§2.4.4.8).
pub fn write_pmt(program_number: u16, version: u8, pcr_pid: u16, streams: &[PmtStream]) -> Vec<u8> {
    let mut s = vec![TABLE_ID_PMT, 0, 0];
    s.extend_from_slice(&program_number.to_be_bytes());
    s.push(0xC1 | ((version & 0x1F) << 1));
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(&(0xE000 | pcr_pid).to_be_bytes());
    s.extend_from_slice(&0xF000u16.to_be_bytes()); // program_info_length = 0
    for st in streams {
        s.push(st.stream_type);
        s.extend_from_slice(&(0xE000 | st.pid).to_be_bytes());
        s.extend_from_slice(&(0xF000 | st.descriptors.len() as u16).to_be_bytes());
        s.extend_from_slice(&st.descriptors);
    }
    finish_section(s)
}

/// Check the common long-form section header and CRC; return the bytes
/// between the 8-byte header and the CRC, and the version.
fn section_body<'a>(
    s: &'a [u8],
    table_id: u8,
    table: &'static str,
) -> Result<(&'a [u8], u16, u8), TsError> {
    let bad = |reason| TsError::BadSection { table, reason };
    let head = s.get(..8).ok_or(bad("shorter than its header"))?;
    if head[0] != table_id {
        return Err(bad("unexpected table_id"));
    }
    if head[1] & 0x80 == 0 {
        return Err(bad("section_syntax_indicator is 0"));
    }
    let len = usize::from(u16::from_be_bytes([head[1], head[2]]) & 0x0FFF);
    if !(5 + 4..=MAX_SECTION_SIZE - 3).contains(&len) {
        return Err(bad("section_length out of range"));
    }
    let total = s
        .get(..3 + len)
        .ok_or(bad("section_length past the data"))?;
    if crc32_mpeg2(total) != 0 {
        return Err(bad("CRC32 mismatch"));
    }
    let id = u16::from_be_bytes([head[3], head[4]]);
    let version = (head[5] >> 1) & 0x1F;
    Ok((&total[8..total.len() - 4], id, version))
}

/// Parse a PAT section: `(program_number, program_map_PID)` pairs, the
/// network PID entry (program 0) excluded.
pub fn parse_pat(s: &[u8]) -> Result<Vec<(u16, u16)>, TsError> {
    let (body, _tsid, _version) = section_body(s, TABLE_ID_PAT, "PAT")?;
    if body.len() % 4 != 0 {
        return Err(TsError::BadSection {
            table: "PAT",
            reason: "program loop not a multiple of 4",
        });
    }
    Ok(body
        .chunks_exact(4)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u16::from_be_bytes([c[2], c[3]]) & 0x1FFF,
            )
        })
        .filter(|&(program, _)| program != 0)
        .collect())
}

/// Parse a PMT section.
pub fn parse_pmt(s: &[u8]) -> Result<Pmt, TsError> {
    let bad = |reason| TsError::BadSection {
        table: "PMT",
        reason,
    };
    let (body, program_number, version) = section_body(s, TABLE_ID_PMT, "PMT")?;
    let head = body.get(..4).ok_or(bad("missing PCR_PID"))?;
    let pcr_pid = u16::from_be_bytes([head[0], head[1]]) & 0x1FFF;
    let info_len = usize::from(u16::from_be_bytes([head[2], head[3]]) & 0x0FFF);
    let mut rest = body
        .get(4 + info_len..)
        .ok_or(bad("program_info_length past the section"))?;
    let mut streams = Vec::new();
    while !rest.is_empty() {
        let h = rest.get(..5).ok_or(bad("truncated stream entry"))?;
        let es_len = usize::from(u16::from_be_bytes([h[3], h[4]]) & 0x0FFF);
        let descriptors = rest
            .get(5..5 + es_len)
            .ok_or(bad("ES_info_length past the section"))?;
        streams.push(PmtStream {
            stream_type: h[0],
            pid: u16::from_be_bytes([h[1], h[2]]) & 0x1FFF,
            descriptors: descriptors.to_vec(),
        });
        rest = &rest[5 + es_len..];
    }
    Ok(Pmt {
        program_number,
        version,
        pcr_pid,
        streams,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pat_and_pmt_round_trip() {
        let pat = write_pat(1, 1, 0x1000, 3);
        assert_eq!(crc32_mpeg2(&pat), 0);
        assert_eq!(parse_pat(&pat).unwrap(), vec![(1, 0x1000)]);
        let streams = vec![
            PmtStream {
                stream_type: STREAM_TYPE_H264,
                pid: 0x100,
                descriptors: vec![],
            },
            PmtStream {
                stream_type: STREAM_TYPE_PRIVATE_PES,
                pid: 0x101,
                descriptors: vec![5, 4, b'O', b'p', b'u', b's', 0x7F, 2, 0x80, 2],
            },
        ];
        let pmt = write_pmt(1, 7, 0x100, &streams);
        let parsed = parse_pmt(&pmt).unwrap();
        assert_eq!(parsed.pcr_pid, 0x100);
        assert_eq!(parsed.version, 7);
        assert_eq!(parsed.streams, streams);
        assert_eq!(parsed.streams[1].registration(), Some(*b"Opus"));
        assert_eq!(parsed.streams[1].descriptor(0x7F), Some(&[0x80, 2][..]));
    }

    #[test]
    fn corrupted_sections_are_refused() {
        let mut pat = write_pat(1, 1, 0x1000, 0);
        pat[9] ^= 1;
        assert!(matches!(
            parse_pat(&pat),
            Err(TsError::BadSection {
                reason: "CRC32 mismatch",
                ..
            })
        ));
        assert!(parse_pmt(&[2, 0xB0]).is_err());
        let mut pmt = write_pmt(1, 0, 0x100, &[]);
        pmt[2] = 0xFF; // section_length past the data
        assert!(parse_pmt(&pmt).is_err());
    }
}
