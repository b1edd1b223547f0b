//! The 188-byte transport packet and its adaptation field
//! (ISO/IEC 13818-1 §2.4.3.2 – §2.4.3.5).

use crate::error::TsError;

/// Size of one transport packet.
pub const PACKET_SIZE: usize = 188;
/// The sync byte every packet starts with.
pub const SYNC_BYTE: u8 = 0x47;
/// PID of the Program Association Table.
pub const PAT_PID: u16 = 0x0000;
/// The null packet PID.
pub const NULL_PID: u16 = 0x1FFF;
/// The 90 kHz timestamps of PES headers are 33 bits wide.
pub const TIMESTAMP_MASK: u64 = (1 << 33) - 1;
/// The 33-bit timestamp modulus.
pub const TIMESTAMP_MODULUS: i64 = 1 << 33;

/// The parsed adaptation field of a packet (§2.4.3.4); only the fields this
/// crate uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdaptationField {
    /// `discontinuity_indicator`.
    pub discontinuity: bool,
    /// `random_access_indicator`.
    pub random_access: bool,
    /// The PCR in 27 MHz ticks (`base * 300 + extension`), if present.
    pub pcr: Option<u64>,
}

/// A parsed packet header, borrowing the packet's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsPacket<'a> {
    /// `transport_error_indicator`.
    pub transport_error: bool,
    /// `payload_unit_start_indicator`.
    pub payload_unit_start: bool,
    /// The 13-bit PID.
    pub pid: u16,
    /// `transport_scrambling_control` (non-zero: scrambled).
    pub scrambling: u8,
    /// Whether the packet carries a payload (`adaptation_field_control` bit 0).
    pub has_payload: bool,
    /// The 4-bit continuity counter.
    pub continuity_counter: u8,
    /// The adaptation field, if present.
    pub adaptation: Option<AdaptationField>,
    /// The payload bytes (empty without payload).
    pub payload: &'a [u8],
}

impl<'a> TsPacket<'a> {
    /// Parse one 188-byte packet (§2.4.3.2). Every length is checked against
    /// the packet.
    pub fn parse(p: &'a [u8; PACKET_SIZE]) -> Result<Self, TsError> {
        if p[0] != SYNC_BYTE {
            return Err(TsError::SyncLost { skipped: 0 });
        }
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 0x3;
        let mut pos = 4usize;
        let mut adaptation = None;
        if afc & 0x2 != 0 {
            let len = usize::from(p[4]);
            pos = 5;
            // §2.4.3.5: 0..=182 with a payload, 183 without.
            let max = if afc & 0x1 != 0 { 182 } else { 183 };
            if len > max {
                return Err(TsError::BadPacket {
                    pid,
                    reason: "adaptation_field_length too large",
                });
            }
            let af = &p[pos..pos + len];
            pos += len;
            let mut field = AdaptationField::default();
            if let Some(&flags) = af.first() {
                field.discontinuity = flags & 0x80 != 0;
                field.random_access = flags & 0x40 != 0;
                if flags & 0x10 != 0 {
                    let b = af.get(1..7).ok_or(TsError::BadPacket {
                        pid,
                        reason: "PCR past adaptation field",
                    })?;
                    let base = (u64::from(b[0]) << 25)
                        | (u64::from(b[1]) << 17)
                        | (u64::from(b[2]) << 9)
                        | (u64::from(b[3]) << 1)
                        | (u64::from(b[4]) >> 7);
                    let ext = (u64::from(b[4] & 1) << 8) | u64::from(b[5]);
                    field.pcr = Some(base * 300 + ext);
                }
            }
            adaptation = Some(field);
        }
        let has_payload = afc & 0x1 != 0;
        Ok(Self {
            transport_error: p[1] & 0x80 != 0,
            payload_unit_start: p[1] & 0x40 != 0,
            pid,
            scrambling: p[3] >> 6,
            has_payload,
            continuity_counter: p[3] & 0x0F,
            adaptation,
            payload: if has_payload { &p[pos..] } else { &[] },
        })
    }
}

/// Write the 33-bit `ts` as the 5-byte PTS/DTS field with the 4-bit `prefix`
/// (§2.4.3.7: `'0010'` PTS only, `'0011'` PTS with DTS, `'0001'` DTS).
pub(crate) fn write_timestamp(out: &mut [u8; 5], prefix: u8, ts: u64) {
    let ts = ts & TIMESTAMP_MASK;
    out[0] = (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1;
    out[1] = (ts >> 22) as u8;
    out[2] = (((ts >> 15) as u8 & 0x7F) << 1) | 1;
    out[3] = (ts >> 7) as u8;
    out[4] = ((ts as u8 & 0x7F) << 1) | 1;
}

/// Read a 5-byte PTS/DTS field (§2.4.3.7); `None` if a marker bit is clear.
pub(crate) fn read_timestamp(b: &[u8]) -> Option<u64> {
    let b: &[u8; 5] = b.get(..5)?.try_into().ok()?;
    if b[0] & 1 == 0 || b[2] & 1 == 0 || b[4] & 1 == 0 {
        return None;
    }
    Some(
        (u64::from(b[0] >> 1 & 0x07) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_33_bits() {
        for ts in [0u64, 1, 90_000, (1 << 32) + 12345, TIMESTAMP_MASK] {
            let mut b = [0; 5];
            write_timestamp(&mut b, 0x2, ts);
            assert_eq!(read_timestamp(&b), Some(ts));
            assert_eq!(b[0] >> 4, 0x2);
        }
    }

    #[test]
    fn rejects_bad_sync_and_oversized_adaptation() {
        let mut p = [0xFFu8; PACKET_SIZE];
        assert!(matches!(TsPacket::parse(&p), Err(TsError::SyncLost { .. })));
        p[0] = SYNC_BYTE;
        p[1] = 0x01;
        p[2] = 0x00;
        p[3] = 0x30; // adaptation + payload
        p[4] = 183;
        assert!(matches!(
            TsPacket::parse(&p),
            Err(TsError::BadPacket { .. })
        ));
    }
}
