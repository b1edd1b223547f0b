//! MSB-first bit reader and writer used by every header parser.
//!
//! The reader is bounded by its input: every read checks the remaining bit
//! count and returns [`CodecError::Truncated`] instead of reading past the
//! end. Exp-Golomb reads (ITU-T H.264 §9.1) refuse more than 31 leading zero
//! bits, so a run of zeros cannot loop or overflow.

use crate::error::{CodecError, Result};

/// The longest Exp-Golomb prefix accepted (values up to 2^32 - 2).
pub const MAX_EXP_GOLOMB_LEADING_ZEROS: u32 = 31;

/// Reads bits MSB first from a byte slice.
#[derive(Clone, Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Bit position from the start of `data`.
    pos: usize,
    what: &'static str,
}

impl<'a> BitReader<'a> {
    /// A reader over `data`; `what` names the structure in errors.
    pub fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { data, pos: 0, what }
    }

    /// Bits consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bits left.
    pub fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Whether the position is on a byte boundary.
    pub fn is_byte_aligned(&self) -> bool {
        self.pos % 8 == 0
    }

    /// Skip to the next byte boundary.
    pub fn byte_align(&mut self) {
        self.pos = self.pos.div_ceil(8) * 8;
        self.pos = self.pos.min(self.data.len() * 8);
    }

    /// The unread bytes from the current (byte-aligned, rounded up) position.
    pub fn rest_bytes(&self) -> &'a [u8] {
        let start = self.pos.div_ceil(8);
        self.data.get(start..).unwrap_or(&[])
    }

    /// The whole bytes between bit positions `start` and `end` (both rounded
    /// down to a byte); empty when out of range.
    pub fn bytes_between(&self, start: usize, end: usize) -> &'a [u8] {
        self.data.get(start / 8..end / 8).unwrap_or(&[])
    }

    fn err(&self) -> CodecError {
        CodecError::truncated(self.what)
    }

    /// Read one bit.
    pub fn bit(&mut self) -> Result<bool> {
        let byte = *self.data.get(self.pos / 8).ok_or_else(|| self.err())?;
        let b = (byte >> (7 - (self.pos % 8))) & 1;
        self.pos += 1;
        Ok(b == 1)
    }

    /// Read `n` bits (0..=32) as an unsigned integer.
    pub fn bits(&mut self, n: u32) -> Result<u32> {
        Ok(self.bits64(n)? as u32)
    }

    /// Read `n` bits (0..=64) as an unsigned integer.
    pub fn bits64(&mut self, n: u32) -> Result<u64> {
        if n > 64 {
            return Err(CodecError::invalid(self.what, "bit read wider than 64"));
        }
        if (n as usize) > self.remaining() {
            return Err(self.err());
        }
        let mut v: u64 = 0;
        let mut left = n;
        while left > 0 {
            let byte = *self.data.get(self.pos / 8).ok_or_else(|| self.err())?;
            let off = (self.pos % 8) as u32;
            let avail = 8 - off;
            let take = avail.min(left);
            let chunk = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            v = (v << take) | chunk;
            left -= take;
            self.pos += take as usize;
        }
        Ok(v)
    }

    /// Read a `u8` from `n <= 8` bits.
    pub fn u8(&mut self, n: u32) -> Result<u8> {
        Ok(self.bits(n.min(8))? as u8)
    }

    /// Skip `n` bits.
    pub fn skip(&mut self, n: usize) -> Result<()> {
        if n > self.remaining() {
            return Err(self.err());
        }
        self.pos += n;
        Ok(())
    }

    /// Unsigned Exp-Golomb `ue(v)` (H.264 §9.1).
    pub fn ue(&mut self) -> Result<u32> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > MAX_EXP_GOLOMB_LEADING_ZEROS {
                return Err(CodecError::invalid(
                    self.what,
                    "Exp-Golomb code longer than 32 bits",
                ));
            }
        }
        if zeros == 0 {
            return Ok(0);
        }
        let rest = self.bits64(zeros)?;
        let v = (1u64 << zeros) - 1 + rest;
        u32::try_from(v).map_err(|_| CodecError::invalid(self.what, "Exp-Golomb value overflows"))
    }

    /// `ue(v)` that must not exceed `max`.
    pub fn ue_max(&mut self, max: u32, field: &'static str) -> Result<u32> {
        let v = self.ue()?;
        if v > max {
            return Err(CodecError::invalid(field, "value out of range"));
        }
        Ok(v)
    }

    /// Signed Exp-Golomb `se(v)` (H.264 §9.1.1).
    pub fn se(&mut self) -> Result<i32> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).map_err(|_| CodecError::invalid(self.what, "Exp-Golomb value overflows"))
    }

    /// AV1 `leb128()` (AV1 §4.10.5): at most 8 bytes, value below 2^32.
    pub fn leb128(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for i in 0..8 {
            let byte = self.bits(8)?;
            v |= u64::from(byte & 0x7f) << (i * 7);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::invalid(self.what, "leb128 longer than 8 bytes"))
    }

    /// AV1 `uvlc()` (AV1 §4.10.3).
    pub fn uvlc(&mut self) -> Result<u32> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros >= 32 {
                return Ok(u32::MAX);
            }
        }
        let rest = self.bits64(zeros)?;
        let v = rest + (1u64 << zeros) - 1;
        Ok(u32::try_from(v).unwrap_or(u32::MAX))
    }
}

/// Writes bits MSB first into a growing buffer.
#[derive(Clone, Debug, Default)]
pub struct BitWriter {
    out: Vec<u8>,
    /// Bits used in the last byte (0 = byte aligned).
    used: u32,
}

impl BitWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append the low `n` bits of `v` (n <= 64).
    pub fn put(&mut self, n: u32, v: u64) {
        for i in (0..n.min(64)).rev() {
            let bit = ((v >> i) & 1) as u8;
            if self.used == 0 {
                self.out.push(0);
            }
            if let Some(last) = self.out.last_mut() {
                *last |= bit << (7 - self.used);
            }
            self.used = (self.used + 1) % 8;
        }
    }

    /// Append one bit.
    pub fn flag(&mut self, b: bool) {
        self.put(1, u64::from(b));
    }

    /// Append `ue(v)` (H.264 §9.1).
    pub fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros();
        self.put(len - 1, 0);
        self.put(len, x);
    }

    /// Pad with zero bits to a byte boundary.
    pub fn align(&mut self) {
        self.used = 0;
    }

    /// Bits written.
    pub fn bit_len(&self) -> usize {
        self.out.len() * 8
            - if self.used == 0 {
                0
            } else {
                (8 - self.used) as usize
            }
    }

    /// The bytes written (the last byte zero-padded).
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_fields_and_golomb() {
        // 1 | 010 | 011 | 00100 | 1 -> bits: 1 010 011 00100 1 ...
        let mut w = BitWriter::new();
        w.ue(0);
        w.ue(1);
        w.ue(2);
        w.ue(3);
        w.put(5, 0b10110);
        let buf = w.finish();
        let mut r = BitReader::new(&buf, "t");
        assert_eq!(r.ue().unwrap(), 0);
        assert_eq!(r.ue().unwrap(), 1);
        assert_eq!(r.ue().unwrap(), 2);
        assert_eq!(r.ue().unwrap(), 3);
        assert_eq!(r.bits(5).unwrap(), 0b10110);
    }

    #[test]
    fn zeros_do_not_loop() {
        let zeros = [0u8; 64];
        assert!(BitReader::new(&zeros, "t").ue().is_err());
        assert!(BitReader::new(&[], "t").bit().is_err());
        assert!(BitReader::new(&[0xff], "t").bits(9).is_err());
    }

    proptest! {
        #[test]
        fn golomb_round_trip(vals in proptest::collection::vec(0u32..u32::MAX - 1, 0..20), s in proptest::collection::vec(-1000i32..1000, 0..5)) {
            let mut w = BitWriter::new();
            for &v in &vals { w.ue(v); }
            for &v in &s { w.ue(if v > 0 { (v as u32) * 2 - 1 } else { (v.unsigned_abs()) * 2 }); }
            let buf = w.finish();
            let mut r = BitReader::new(&buf, "t");
            for &v in &vals { prop_assert_eq!(r.ue().unwrap(), v); }
            for &v in &s { prop_assert_eq!(r.se().unwrap(), v); }
        }

        #[test]
        fn bits_round_trip(fields in proptest::collection::vec((1u32..=64, any::<u64>()), 0..20)) {
            let mut w = BitWriter::new();
            for &(n, v) in &fields { w.put(n, v); }
            let buf = w.finish();
            let mut r = BitReader::new(&buf, "t");
            for &(n, v) in &fields {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(r.bits64(n).unwrap(), v & mask);
            }
        }
    }
}
