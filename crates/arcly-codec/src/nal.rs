//! NAL unit framing shared by H.264, H.265 and VVC.
//!
//! * A fast Annex-B start-code scanner ([`find_start_code`]) built on
//!   `memchr::memmem` (SIMD search for `00 00 01`) (ITU-T H.264 Annex B.2, H.265 Annex B.2,
//!   H.266 Annex B.2 share the byte-stream format).
//! * Zero-copy iteration over Annex-B ([`AnnexBNals`]) and length-prefixed
//!   ([`LengthPrefixedNals`], ISO/IEC 14496-15 §5.3.2) data: every NAL unit is
//!   a `Bytes` slice of the input.
//! * Conversions between the two layouts, and emulation-prevention removal
//!   (H.264 §7.4.1) for header parsing.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{CodecError, Result};

/// The largest NAL unit a 4-byte length prefix can describe.
pub const MAX_NAL_LEN: usize = u32::MAX as usize;

/// Where a start code was found by [`find_start_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartCode {
    /// Index of the first byte of the start code (the `zero_byte` of a
    /// 4-byte `00 00 00 01` when present).
    pub start: usize,
    /// Index of the first byte after the start code (the NAL header).
    pub payload: usize,
}

impl StartCode {
    /// 3 or 4.
    pub fn len(&self) -> usize {
        self.payload - self.start
    }

    /// Never true; present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Find the first Annex-B start code (`00 00 01`, or `00 00 00 01`) that
/// begins at or after `from`.
///
/// Runs at memchr speed: a SIMD substring search for `00 00 01`, then one
/// look back for the `zero_byte` of a 4-byte start code.
pub fn find_start_code(data: &[u8], from: usize) -> Option<StartCode> {
    let hay = data.get(from..)?;
    // memmem's SIMD prefilter tests two needle bytes per position at once
    let p = from + memchr::memmem::find(hay, &[0, 0, 1])?;
    let start = if p > from && data.get(p - 1) == Some(&0) {
        p - 1
    } else {
        p
    };
    Some(StartCode {
        start,
        payload: p + 3,
    })
}

/// Whether `data` begins with an Annex-B start code (possibly after extra
/// leading zero bytes).
pub fn starts_with_start_code(data: &[u8]) -> bool {
    let zeros = data.iter().take_while(|&&b| b == 0).count();
    zeros >= 2 && data.get(zeros) == Some(&1)
}

fn trim_trailing_zeros(data: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && data.get(end - 1) == Some(&0) {
        end -= 1;
    }
    end
}

/// Iterator over the NAL units of an Annex-B byte stream, as `Bytes` slices of
/// the input (no start codes, trailing zero bytes removed). Bytes before the
/// first start code are skipped. Empty NAL units are not yielded.
#[derive(Clone, Debug)]
pub struct AnnexBNals {
    data: Bytes,
    /// Start of the next NAL unit's payload; `data.len()` when done.
    pos: usize,
}

impl AnnexBNals {
    /// Iterate over the NAL units of `data`.
    pub fn new(data: Bytes) -> Self {
        let pos = find_start_code(&data, 0).map_or(data.len(), |sc| sc.payload);
        Self { data, pos }
    }
}

impl Iterator for AnnexBNals {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        while self.pos < self.data.len() {
            let start = self.pos;
            let (end, next) = match find_start_code(&self.data, start) {
                Some(sc) => (sc.start, sc.payload),
                None => (self.data.len(), self.data.len()),
            };
            self.pos = next;
            let end = trim_trailing_zeros(&self.data, start, end);
            if end > start {
                return Some(self.data.slice(start..end));
            }
        }
        None
    }
}

impl std::iter::FusedIterator for AnnexBNals {}

/// Iterator over NAL units each behind a big-endian length of `length_size`
/// bytes (1, 2, 3 or 4; ISO/IEC 14496-15 §5.3.2). Yields `Bytes` slices of the
/// input; a length that runs past the end yields one error and stops.
#[derive(Clone, Debug)]
pub struct LengthPrefixedNals {
    data: Bytes,
    pos: usize,
    length_size: usize,
    failed: bool,
}

impl LengthPrefixedNals {
    /// Iterate over `data` with `length_size`-byte prefixes. A size outside
    /// 1..=4 yields one [`CodecError::Invalid`].
    pub fn new(data: Bytes, length_size: u8) -> Self {
        Self {
            data,
            pos: 0,
            length_size: usize::from(length_size),
            failed: false,
        }
    }
}

fn read_be(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
}

impl Iterator for LengthPrefixedNals {
    type Item = Result<Bytes>;

    fn next(&mut self) -> Option<Result<Bytes>> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        if !(1..=4).contains(&self.length_size) {
            self.failed = true;
            return Some(Err(CodecError::invalid(
                "NAL length prefix",
                "length size must be 1..=4",
            )));
        }
        let hdr_end = self.pos + self.length_size;
        let Some(hdr) = self.data.get(self.pos..hdr_end) else {
            self.failed = true;
            return Some(Err(CodecError::truncated("NAL length prefix")));
        };
        let len = read_be(hdr);
        let end = match hdr_end.checked_add(len) {
            Some(e) if e <= self.data.len() => e,
            _ => {
                self.failed = true;
                return Some(Err(CodecError::truncated("length-prefixed NAL unit")));
            }
        };
        self.pos = end;
        Some(Ok(self.data.slice(hdr_end..end)))
    }
}

impl std::iter::FusedIterator for LengthPrefixedNals {}

/// Borrowing iterator over length-prefixed NAL units of a slice (for
/// inspection without a `Bytes` handle). Stops silently at the first
/// malformed length; use [`LengthPrefixedNals`] to see errors.
#[derive(Clone, Debug)]
pub struct LengthPrefixedSlices<'a> {
    data: &'a [u8],
    length_size: usize,
}

impl<'a> LengthPrefixedSlices<'a> {
    /// Iterate over `data` with `length_size`-byte prefixes (1..=4; any other
    /// size yields nothing).
    pub fn new(data: &'a [u8], length_size: u8) -> Self {
        let length_size = usize::from(length_size);
        let data = if (1..=4).contains(&length_size) {
            data
        } else {
            &[]
        };
        Self { data, length_size }
    }
}

impl<'a> Iterator for LengthPrefixedSlices<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let hdr = self.data.get(..self.length_size)?;
        let len = read_be(hdr);
        let end = self.length_size.checked_add(len)?;
        let Some(nal) = self.data.get(self.length_size..end) else {
            self.data = &[];
            return None;
        };
        self.data = self.data.get(end..).unwrap_or(&[]);
        Some(nal)
    }
}

/// Borrowing iterator over the NAL units of an Annex-B slice (same rules as
/// [`AnnexBNals`]).
#[derive(Clone, Debug)]
pub struct AnnexBSlices<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> AnnexBSlices<'a> {
    /// Iterate over the NAL units of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        let pos = find_start_code(data, 0).map_or(data.len(), |sc| sc.payload);
        Self { data, pos }
    }
}

impl<'a> Iterator for AnnexBSlices<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while self.pos < self.data.len() {
            let start = self.pos;
            let (end, next) = match find_start_code(self.data, start) {
                Some(sc) => (sc.start, sc.payload),
                None => (self.data.len(), self.data.len()),
            };
            self.pos = next;
            let end = trim_trailing_zeros(self.data, start, end);
            if end > start {
                return self.data.get(start..end);
            }
        }
        None
    }
}

/// Append the NAL units of an Annex-B stream to `out`, each behind a 4-byte
/// length (the kernel's canonical layout). Returns the number of NAL units.
pub fn annexb_to_length_prefixed_into(data: &Bytes, out: &mut BytesMut) -> Result<usize> {
    let mut n = 0;
    out.reserve(data.len() + 8);
    let mark = out.len();
    for nal in AnnexBNals::new(data.clone()) {
        let Ok(len) = u32::try_from(nal.len()) else {
            out.truncate(mark);
            return Err(CodecError::limit("NAL unit length", nal.len(), MAX_NAL_LEN));
        };
        out.put_u32(len);
        out.put_slice(&nal);
        n += 1;
    }
    Ok(n)
}

/// Convert an Annex-B stream into NAL units behind 4-byte lengths.
pub fn annexb_to_length_prefixed(data: &Bytes) -> Result<Bytes> {
    let mut out = BytesMut::with_capacity(data.len() + 8);
    annexb_to_length_prefixed_into(data, &mut out)?;
    Ok(out.freeze())
}

/// Append the NAL units of length-prefixed `data` (`length_size` = 1..=4) to
/// `out` as Annex-B, each behind a 4-byte start code `00 00 00 01`. On error
/// `out` is left as it was. Returns the number of NAL units.
pub fn length_prefixed_to_annexb_into(
    data: &Bytes,
    length_size: u8,
    out: &mut BytesMut,
) -> Result<usize> {
    let mark = out.len();
    out.reserve(data.len());
    let mut n = 0;
    for nal in LengthPrefixedNals::new(data.clone(), length_size) {
        match nal {
            Ok(nal) => {
                out.put_slice(&[0, 0, 0, 1]);
                out.put_slice(&nal);
                n += 1;
            }
            Err(e) => {
                out.truncate(mark);
                return Err(e);
            }
        }
    }
    Ok(n)
}

/// Convert length-prefixed NAL units (`length_size` = 1..=4) to Annex-B with
/// 4-byte start codes.
pub fn length_prefixed_to_annexb(data: &Bytes, length_size: u8) -> Result<Bytes> {
    let mut out = BytesMut::with_capacity(data.len() + 16);
    length_prefixed_to_annexb_into(data, length_size, &mut out)?;
    Ok(out.freeze())
}

/// Re-frame length-prefixed NAL units with a different prefix size (e.g.
/// widen 1- or 2-byte prefixes to the canonical 4). Fails if a NAL unit does
/// not fit the new size.
pub fn relength(data: &Bytes, from_size: u8, to_size: u8) -> Result<Bytes> {
    if !(1..=4).contains(&to_size) {
        return Err(CodecError::invalid(
            "NAL length prefix",
            "length size must be 1..=4",
        ));
    }
    if from_size == to_size {
        // validate, then hand back the same buffer
        for nal in LengthPrefixedNals::new(data.clone(), from_size) {
            nal?;
        }
        return Ok(data.clone());
    }
    let mut out = BytesMut::with_capacity(data.len() + 64);
    let max = (1u64 << (8 * u32::from(to_size))) - 1;
    for nal in LengthPrefixedNals::new(data.clone(), from_size) {
        let nal = nal?;
        let len = nal.len() as u64;
        if len > max {
            return Err(CodecError::limit("NAL unit length", len, max));
        }
        out.put_uint(len, usize::from(to_size));
        out.put_slice(&nal);
    }
    Ok(out.freeze())
}

/// Remove emulation-prevention bytes (`00 00 03` → `00 00`, H.264 §7.4.1,
/// H.265 §7.4.2) to get the RBSP of a NAL unit. Borrows when there is none.
pub fn remove_emulation_prevention(nal: &[u8]) -> Cow<'_, [u8]> {
    let Some(first) = memchr::memmem::find(nal, &[0, 0, 3]) else {
        return Cow::Borrowed(nal);
    };
    let mut out = Vec::with_capacity(nal.len());
    out.extend_from_slice(nal.get(..first).unwrap_or(&[]));
    let mut zeros = 0usize;
    for &b in nal.get(first..).unwrap_or(&[]) {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    Cow::Owned(out)
}

/// Insert emulation-prevention bytes into an RBSP (the inverse of
/// [`remove_emulation_prevention`]), so the result contains no start code.
pub fn add_emulation_prevention(rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 4);
    let mut zeros = 0usize;
    for &b in rbsp {
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_three_and_four_byte_codes() {
        let d = [9, 0, 0, 1, 0x67, 0, 0, 0, 1, 0x68, 0, 0, 2];
        assert_eq!(
            find_start_code(&d, 0),
            Some(StartCode {
                start: 1,
                payload: 4
            })
        );
        assert_eq!(
            find_start_code(&d, 4),
            Some(StartCode {
                start: 5,
                payload: 9
            })
        );
        assert_eq!(
            find_start_code(&d, 6),
            Some(StartCode {
                start: 6,
                payload: 9
            })
        );
        assert_eq!(find_start_code(&d, 9), None);
        assert_eq!(find_start_code(&d, usize::MAX), None);
    }

    #[test]
    fn iterates_annexb() {
        let d = Bytes::from_static(&[
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 0, 0, 3, 1, 0,
        ]);
        let nals: Vec<_> = AnnexBNals::new(d).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 0, 0, 3, 1]]
        );
    }

    #[test]
    fn converts_both_ways() {
        let d = Bytes::from_static(&[0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3]);
        let lp = annexb_to_length_prefixed(&d).unwrap();
        assert_eq!(&lp[..], &[0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x68, 3]);
        assert_eq!(length_prefixed_to_annexb(&lp, 4).unwrap(), d);
        let two = relength(&lp, 4, 2).unwrap();
        assert_eq!(&two[..], &[0, 3, 0x67, 1, 2, 0, 2, 0x68, 3]);
        assert_eq!(relength(&two, 2, 4).unwrap(), lp);
        let mut out = BytesMut::from(&b"xy"[..]);
        assert!(
            length_prefixed_to_annexb_into(&Bytes::from_static(&[0, 0, 0, 9, 1]), 4, &mut out)
                .is_err()
        );
        assert_eq!(&out[..], b"xy");
    }

    #[test]
    fn emulation_prevention() {
        assert!(matches!(
            remove_emulation_prevention(&[1, 2, 3]),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            &*remove_emulation_prevention(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            &[0, 0, 1, 0, 0, 0, 0]
        );
    }

    proptest! {
        #[test]
        fn epb_round_trip(rbsp in proptest::collection::vec(prop_oneof![Just(0u8), Just(3u8), Just(1u8), any::<u8>()], 0..200)) {
            let nal = add_emulation_prevention(&rbsp);
            prop_assert!(memchr::memmem::find(&nal, &[0, 0, 1]).is_none());
            prop_assert_eq!(&*remove_emulation_prevention(&nal), &rbsp[..]);
        }

        #[test]
        fn annexb_length_prefixed_identity(nals in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..50), 0..10)) {
            // NAL units as a real encoder emits them: no start code inside, no trailing zero
            let nals: Vec<Vec<u8>> = nals.into_iter().map(|n| { let mut n = add_emulation_prevention(&n); n.push(0x80); n }).collect();
            let mut annexb = Vec::new();
            for n in &nals { annexb.extend_from_slice(&[0, 0, 0, 1]); annexb.extend_from_slice(n); }
            let annexb = Bytes::from(annexb);
            let lp = annexb_to_length_prefixed(&annexb).unwrap();
            let got: Vec<Bytes> = LengthPrefixedNals::new(lp.clone(), 4).collect::<Result<_>>().unwrap();
            prop_assert_eq!(got.len(), nals.len());
            prop_assert_eq!(length_prefixed_to_annexb(&lp, 4).unwrap(), annexb);
        }

        #[test]
        fn scanner_matches_naive(data in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..300), from in 0usize..300) {
            let naive = (from..data.len().saturating_sub(2)).find(|&i| data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1);
            let fast = find_start_code(&data, from);
            prop_assert_eq!(fast.map(|s| s.payload), naive.map(|i| i + 3));
        }

        #[test]
        fn iterators_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), ls in 0u8..6) {
            let b = Bytes::from(data);
            let _ = AnnexBNals::new(b.clone()).count();
            let _ = LengthPrefixedNals::new(b, ls).count();
        }
    }
}
