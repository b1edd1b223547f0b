//! AMF0 (Action Message Format version 0), the encoding of RTMP commands and
//! FLV script data.
//!
//! Follows the "AMF0 File Format Specification" (Adobe, 2007). Every type
//! that RTMP commands and `onMetaData` use is decoded and encoded; the AMF3
//! switch marker (`avmplus-object`, §2.20), references and typed objects are
//! refused with [`RtmpError::UnsupportedAmfMarker`] so the session can answer
//! with a clear status instead of guessing.
//!
//! The decoder is bounded: nesting depth ([`MAX_DEPTH`]), string length
//! ([`MAX_STRING_LEN`]) and element count ([`MAX_ELEMENTS`]) are checked
//! against named limits, and every length against the input. Beyond those
//! per-value bounds, one [`Amf0Reader`] (one message) has a total budget
//! across nesting: [`MAX_VALUES`] values and [`MAX_DECODED_BYTES`] bytes of
//! decoded memory, charged before anything is allocated. A value takes
//! `size_of::<Amf0Value>()` (32) bytes however short its encoding (a NULL is
//! one byte), so without that budget a message of nested strict arrays of
//! NULLs costs about 32 bytes of memory per byte received.

use crate::error::{Result, RtmpError};
use bytes::BufMut;

/// Deepest nesting of objects/arrays accepted by the decoder.
pub const MAX_DEPTH: usize = 32;
/// Longest string (short or long) accepted by the decoder, in bytes.
pub const MAX_STRING_LEN: usize = 1 << 20;
/// Most properties or elements accepted in one object or array.
pub const MAX_ELEMENTS: usize = 1 << 16;
/// Most values one reader (one message) decodes, counted at every depth
/// (object properties, array elements and top-level values). Stops a
/// message of nested strict arrays from turning each one-byte NULL into a
/// 32-byte value millions of times over (`onMetaData` from real encoders
/// holds a few dozen values; FLV files with a keyframe index a few
/// thousand).
pub const MAX_VALUES: usize = 1 << 16;
/// Most bytes of memory one reader (one message) may allocate for what it
/// decodes: each value's `size_of::<Amf0Value>()`, each property's key and
/// `String` header, each string's bytes. Bounds the memory an 8 MiB
/// message can cost to a fixed amount, whatever its shape.
pub const MAX_DECODED_BYTES: usize = 4 << 20;

/// What one property costs beyond its value: the key's `String` header
/// (the key's bytes are charged separately).
const PROPERTY_COST: usize = std::mem::size_of::<String>();
/// What one value costs in its parent `Vec` (or in the result list).
const VALUE_COST: usize = std::mem::size_of::<Amf0Value>();

// AMF0 §2.1 type markers.
const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0A;
const DATE: u8 = 0x0B;
const LONG_STRING: u8 = 0x0C;
const XML_DOCUMENT: u8 = 0x0F;
/// The AMF3 switch (`avmplus-object-marker`, AMF0 §2.20).
pub const AVMPLUS_OBJECT: u8 = 0x11;

/// An ordered list of properties (AMF0 objects and ECMA arrays keep the
/// order they were written in).
pub type Amf0Object = Vec<(String, Amf0Value)>;

/// One AMF0 value.
#[derive(Clone, Debug, PartialEq)]
pub enum Amf0Value {
    /// §2.2 number: an IEEE 754 double.
    Number(f64),
    /// §2.3 boolean.
    Boolean(bool),
    /// §2.4 string (at most 65535 bytes when encoded with this variant).
    String(String),
    /// §2.5 anonymous object.
    Object(Amf0Object),
    /// §2.7 null.
    Null,
    /// §2.8 undefined.
    Undefined,
    /// §2.10 ECMA array (associative array).
    EcmaArray(Amf0Object),
    /// §2.12 strict array.
    StrictArray(Vec<Amf0Value>),
    /// §2.13 date: milliseconds since the Unix epoch and a time-zone field
    /// (reserved, should be 0).
    Date {
        /// Milliseconds since 1970-01-01T00:00:00Z.
        millis: f64,
        /// Time-zone offset field (reserved by the spec).
        time_zone: i16,
    },
    /// §2.14 long string (or §2.17 XML document, decoded to a long string).
    LongString(String),
}

impl Amf0Value {
    /// The string content of a `String` or `LongString`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) | Self::LongString(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a `Number`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The value of a `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The properties of an `Object` or `EcmaArray`.
    pub fn as_object(&self) -> Option<&Amf0Object> {
        match self {
            Self::Object(o) | Self::EcmaArray(o) => Some(o),
            _ => None,
        }
    }

    /// Property `key` of an `Object` or `EcmaArray` (first match).
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.as_object()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Property `key` as a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// Property `key` as a number.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    /// A string value, choosing the long form when it does not fit 16 bits.
    pub fn string(s: impl Into<String>) -> Self {
        let s = s.into();
        if s.len() > usize::from(u16::MAX) {
            Self::LongString(s)
        } else {
            Self::String(s)
        }
    }

    /// Build an `Object` from `(key, value)` pairs.
    pub fn object<K: Into<String>>(props: impl IntoIterator<Item = (K, Amf0Value)>) -> Self {
        Self::Object(props.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Encode this value onto `out`.
    pub fn encode(&self, out: &mut impl BufMut) {
        encode(self, out);
    }

    /// The encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Number(_) => 9,
            Self::Boolean(_) => 2,
            Self::String(s) | Self::LongString(s) => {
                if s.len() > usize::from(u16::MAX) || matches!(self, Self::LongString(_)) {
                    5 + s.len()
                } else {
                    3 + s.len()
                }
            }
            Self::Object(o) => 1 + props_len(o) + 3,
            Self::EcmaArray(o) => 5 + props_len(o) + 3,
            Self::Null | Self::Undefined => 1,
            Self::StrictArray(v) => 5 + v.iter().map(Self::encoded_len).sum::<usize>(),
            Self::Date { .. } => 11,
        }
    }
}

fn props_len(o: &Amf0Object) -> usize {
    o.iter()
        .map(|(k, v)| 2 + k.len().min(usize::from(u16::MAX)) + v.encoded_len())
        .sum()
}

/// A cursor over AMF0 input that decodes values one at a time.
///
/// Everything one reader decodes shares one budget of [`MAX_VALUES`]
/// values and [`MAX_DECODED_BYTES`] bytes: make one reader per message.
#[derive(Debug, Clone)]
pub struct Amf0Reader<'a> {
    buf: &'a [u8],
    /// Values decoded so far, at every depth.
    values: usize,
    max_values: usize,
    /// Bytes of memory charged so far for what was decoded.
    bytes: usize,
    max_bytes: usize,
}

impl<'a> Amf0Reader<'a> {
    /// Read from `buf` with the default budget ([`MAX_VALUES`],
    /// [`MAX_DECODED_BYTES`]).
    pub fn new(buf: &'a [u8]) -> Self {
        Self::with_budget(buf, MAX_VALUES, MAX_DECODED_BYTES)
    }

    /// Read from `buf`, decoding at most `max_values` values and
    /// allocating at most `max_bytes` bytes for them, in total over every
    /// value read.
    pub fn with_budget(buf: &'a [u8], max_values: usize, max_bytes: usize) -> Self {
        Self {
            buf,
            values: 0,
            max_values,
            bytes: 0,
            max_bytes,
        }
    }

    /// Charge `values` values and `bytes` bytes to the budget, before
    /// they are allocated.
    fn charge(&mut self, values: usize, bytes: usize) -> Result<()> {
        let (v, b) = (
            self.values.saturating_add(values),
            self.bytes.saturating_add(bytes),
        );
        if v > self.max_values {
            return Err(RtmpError::limit(
                "AMF0 values in a message",
                v as u64,
                self.max_values as u64,
            ));
        }
        if b > self.max_bytes {
            return Err(RtmpError::limit(
                "AMF0 decoded bytes in a message",
                b as u64,
                self.max_bytes as u64,
            ));
        }
        (self.values, self.bytes) = (v, b);
        Ok(())
    }

    /// The bytes not consumed yet.
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Decode the next value, or `Ok(None)` at the end of input.
    pub fn next_value(&mut self) -> Result<Option<Amf0Value>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        self.value(0).map(Some)
    }

    /// Decode every remaining value.
    pub fn read_all(&mut self) -> Result<Vec<Amf0Value>> {
        let mut out = Vec::new();
        while let Some(v) = self.next_value()? {
            if out.len() >= MAX_ELEMENTS {
                return Err(RtmpError::limit(
                    "AMF0 values in a message",
                    out.len() as u64,
                    MAX_ELEMENTS as u64,
                ));
            }
            out.push(v);
        }
        Ok(out)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(RtmpError::truncated(what, n - self.buf.len()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1, "AMF0 marker")?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2, "AMF0 u16")?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4, "AMF0 u32")?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64> {
        let b = self.take(8, "AMF0 number")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn str_of(&mut self, len: usize) -> Result<String> {
        if len > MAX_STRING_LEN {
            return Err(RtmpError::limit(
                "AMF0 string length",
                len as u64,
                MAX_STRING_LEN as u64,
            ));
        }
        if self.buf.len() < len {
            return Err(RtmpError::truncated("AMF0 string", len - self.buf.len()));
        }
        self.charge(0, len)?;
        let b = self.take(len, "AMF0 string")?;
        // Lenient like Flash: invalid UTF-8 is replaced, not refused.
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    fn short_str(&mut self) -> Result<String> {
        let len = usize::from(self.u16()?);
        self.str_of(len)
    }

    fn long_str(&mut self) -> Result<String> {
        let len = self.u32()? as usize;
        self.str_of(len)
    }

    /// Properties up to the object-end marker (§2.5 `object-property`*,
    /// `object-end-type`). A missing end marker at the very end of the
    /// input is tolerated (some encoders omit it in ECMA arrays).
    fn props(&mut self, depth: usize) -> Result<Amf0Object> {
        let mut props = Amf0Object::new();
        loop {
            if self.buf.is_empty() {
                return Ok(props);
            }
            self.charge(0, PROPERTY_COST)?;
            let key = self.short_str()?;
            if key.is_empty() && self.buf.first() == Some(&OBJECT_END) {
                self.buf = &self.buf[1..];
                return Ok(props);
            }
            if props.len() >= MAX_ELEMENTS {
                return Err(RtmpError::limit(
                    "AMF0 object properties",
                    props.len() as u64,
                    MAX_ELEMENTS as u64,
                ));
            }
            let v = self.value(depth + 1)?;
            props.push((key, v));
        }
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value> {
        if depth > MAX_DEPTH {
            return Err(RtmpError::limit(
                "AMF0 nesting depth",
                depth as u64,
                MAX_DEPTH as u64,
            ));
        }
        let marker = self.u8()?;
        // The value's own slot in its parent (or in the result list).
        self.charge(1, VALUE_COST)?;
        Ok(match marker {
            NUMBER => Amf0Value::Number(self.f64()?),
            BOOLEAN => Amf0Value::Boolean(self.u8()? != 0),
            STRING => Amf0Value::String(self.short_str()?),
            OBJECT => Amf0Value::Object(self.props(depth)?),
            NULL => Amf0Value::Null,
            UNDEFINED => Amf0Value::Undefined,
            ECMA_ARRAY => {
                // §2.10: the count is a hint; the end marker terminates.
                let _count = self.u32()?;
                Amf0Value::EcmaArray(self.props(depth)?)
            }
            STRICT_ARRAY => {
                let count = self.u32()? as usize;
                if count > MAX_ELEMENTS {
                    return Err(RtmpError::limit(
                        "AMF0 strict array length",
                        count as u64,
                        MAX_ELEMENTS as u64,
                    ));
                }
                // Each element is at least one byte: refuse counts the input cannot hold.
                if count > self.buf.len() {
                    return Err(RtmpError::truncated(
                        "AMF0 strict array",
                        count - self.buf.len(),
                    ));
                }
                // Refuse at once what the budget cannot hold; and grow the
                // vector as elements decode rather than reserving what the
                // peer's count claims.
                if count > self.max_values - self.values {
                    return Err(RtmpError::limit(
                        "AMF0 values in a message",
                        (self.values + count) as u64,
                        self.max_values as u64,
                    ));
                }
                let mut v = Vec::new();
                for _ in 0..count {
                    v.push(self.value(depth + 1)?);
                }
                Amf0Value::StrictArray(v)
            }
            DATE => {
                let millis = self.f64()?;
                let tz = self.u16()? as i16;
                Amf0Value::Date {
                    millis,
                    time_zone: tz,
                }
            }
            LONG_STRING | XML_DOCUMENT => Amf0Value::LongString(self.long_str()?),
            AVMPLUS_OBJECT => return Err(RtmpError::Amf3Refused),
            other => return Err(RtmpError::UnsupportedAmfMarker(other)),
        })
    }
}

/// Decode every value in `buf`.
pub fn decode_all(buf: &[u8]) -> Result<Vec<Amf0Value>> {
    Amf0Reader::new(buf).read_all()
}

/// Encode `value` onto `out`.
pub fn encode(value: &Amf0Value, out: &mut impl BufMut) {
    match value {
        Amf0Value::Number(n) => {
            out.put_u8(NUMBER);
            out.put_f64(*n);
        }
        Amf0Value::Boolean(b) => {
            out.put_u8(BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Amf0Value::String(s) if s.len() <= usize::from(u16::MAX) => {
            out.put_u8(STRING);
            out.put_u16(s.len() as u16);
            out.put_slice(s.as_bytes());
        }
        Amf0Value::String(s) | Amf0Value::LongString(s) => {
            out.put_u8(LONG_STRING);
            out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
            out.put_slice(
                s.as_bytes()
                    .get(..u32::MAX as usize)
                    .unwrap_or(s.as_bytes()),
            );
        }
        Amf0Value::Object(o) => {
            out.put_u8(OBJECT);
            encode_props(o, out);
        }
        Amf0Value::Null => out.put_u8(NULL),
        Amf0Value::Undefined => out.put_u8(UNDEFINED),
        Amf0Value::EcmaArray(o) => {
            out.put_u8(ECMA_ARRAY);
            out.put_u32(u32::try_from(o.len()).unwrap_or(u32::MAX));
            encode_props(o, out);
        }
        Amf0Value::StrictArray(v) => {
            out.put_u8(STRICT_ARRAY);
            out.put_u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
            for e in v {
                encode(e, out);
            }
        }
        Amf0Value::Date { millis, time_zone } => {
            out.put_u8(DATE);
            out.put_f64(*millis);
            out.put_i16(*time_zone);
        }
    }
}

fn encode_props(o: &Amf0Object, out: &mut impl BufMut) {
    for (k, v) in o {
        let key = k
            .as_bytes()
            .get(..usize::from(u16::MAX))
            .unwrap_or(k.as_bytes());
        out.put_u16(key.len() as u16);
        out.put_slice(key);
        encode(v, out);
    }
    out.put_u16(0);
    out.put_u8(OBJECT_END);
}

/// Encode a sequence of values into a new buffer.
pub fn encode_all(values: &[Amf0Value]) -> bytes::Bytes {
    let mut out = bytes::BytesMut::with_capacity(values.iter().map(Amf0Value::encoded_len).sum());
    for v in values {
        encode(v, &mut out);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn connect_command_bytes() {
        // The start of what ffmpeg sends as `connect`.
        let v = vec![
            Amf0Value::string("connect"),
            Amf0Value::Number(1.0),
            Amf0Value::object([
                ("app", Amf0Value::string("live")),
                ("fpad", Amf0Value::Boolean(false)),
            ]),
        ];
        let b = encode_all(&v);
        assert_eq!(&b[..10], b"\x02\x00\x07connect");
        assert_eq!(b[10], 0x00);
        assert_eq!(&b[11..19], &1.0f64.to_be_bytes());
        assert_eq!(b.len(), v.iter().map(Amf0Value::encoded_len).sum::<usize>());
        assert_eq!(decode_all(&b).unwrap(), v);
        assert_eq!(v[2].get_str("app"), Some("live"));
    }

    #[test]
    fn amf3_is_refused_clearly() {
        assert!(matches!(
            decode_all(&[0x11, 0x0a]),
            Err(RtmpError::Amf3Refused)
        ));
        assert!(matches!(
            decode_all(&[0x07, 0, 1]),
            Err(RtmpError::UnsupportedAmfMarker(7))
        ));
    }

    #[test]
    fn limits_hold() {
        let mut deep = Vec::new();
        for _ in 0..(MAX_DEPTH + 2) {
            deep.extend_from_slice(&[STRICT_ARRAY, 0, 0, 0, 1]);
        }
        deep.push(NULL);
        assert!(matches!(
            decode_all(&deep),
            Err(RtmpError::Limit {
                what: "AMF0 nesting depth",
                ..
            })
        ));
        assert!(matches!(
            decode_all(&[STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff]),
            Err(RtmpError::Limit { .. })
        ));
        assert!(matches!(
            decode_all(&[LONG_STRING, 0x7f, 0xff, 0xff, 0xff]),
            Err(RtmpError::Limit { .. })
        ));
        assert!(matches!(
            decode_all(&[STRING, 0, 5, b'a']),
            Err(RtmpError::Truncated { need: 4, .. })
        ));
    }

    /// Issue 17 item 5: nested strict arrays of NULLs (one byte each) used
    /// to decode into 32 bytes per input byte with no total bound. One
    /// message now has one budget across nesting.
    #[test]
    fn nested_null_arrays_hit_the_message_budget() {
        let (outer, inner) = (200usize, 1000usize);
        let mut b = vec![STRICT_ARRAY];
        b.extend_from_slice(&(outer as u32).to_be_bytes());
        for _ in 0..outer {
            b.push(STRICT_ARRAY);
            b.extend_from_slice(&(inner as u32).to_be_bytes());
            b.extend(std::iter::repeat_n(NULL, inner));
        }
        assert!(outer * inner > MAX_VALUES);
        match decode_all(&b) {
            Err(RtmpError::Limit { what, value, limit }) => {
                assert_eq!(what, "AMF0 values in a message");
                assert!(value > limit && limit == MAX_VALUES as u64);
            }
            other => panic!(
                "nested arrays decoded past the budget: {:?}",
                other.map(|v| v.len())
            ),
        }
        // The same shape within the budget decodes.
        let small: Vec<u8> = b[..5 + 10 * (5 + inner)].to_vec();
        let mut small = small;
        small[1..5].copy_from_slice(&10u32.to_be_bytes());
        assert_eq!(decode_all(&small).unwrap().len(), 1);
        // A declared count the budget cannot hold is refused before decoding.
        let mut r =
            Amf0Reader::with_budget(&[STRICT_ARRAY, 0, 0, 0, 3, NULL, NULL, NULL], 3, 1 << 10);
        assert!(matches!(r.next_value(), Err(RtmpError::Limit { .. })));
        // Bytes: strings and property keys count across values.
        let s = encode_all(&[
            Amf0Value::string("x".repeat(600)),
            Amf0Value::string("y".repeat(600)),
        ]);
        let mut r = Amf0Reader::with_budget(&s, 16, 1000);
        assert!(r.next_value().unwrap().is_some());
        assert!(matches!(
            r.next_value(),
            Err(RtmpError::Limit {
                what: "AMF0 decoded bytes in a message",
                ..
            })
        ));
    }

    #[test]
    fn ecma_array_without_end_marker_and_xml() {
        let mut b = vec![ECMA_ARRAY, 0, 0, 0, 1, 0, 1, b'a', NUMBER];
        b.extend_from_slice(&2.5f64.to_be_bytes());
        let v = decode_all(&b).unwrap();
        assert_eq!(
            v,
            vec![Amf0Value::EcmaArray(vec![(
                "a".into(),
                Amf0Value::Number(2.5)
            )])]
        );
        assert_eq!(
            decode_all(&[XML_DOCUMENT, 0, 0, 0, 1, b'x']).unwrap(),
            vec![Amf0Value::LongString("x".into())]
        );
    }

    fn arb_value() -> impl Strategy<Value = Amf0Value> {
        let leaf = prop_oneof![
            any::<f64>()
                .prop_filter("NaN != NaN", |f| !f.is_nan())
                .prop_map(Amf0Value::Number),
            any::<bool>().prop_map(Amf0Value::Boolean),
            ".{0,40}".prop_map(Amf0Value::String),
            ".{0,10}".prop_map(Amf0Value::LongString),
            Just(Amf0Value::Null),
            Just(Amf0Value::Undefined),
            (-1e12f64..1e12, any::<i16>())
                .prop_map(|(millis, time_zone)| Amf0Value::Date { millis, time_zone }),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(("[a-z]{1,8}", inner.clone()), 0..6)
                    .prop_map(Amf0Value::Object),
                prop::collection::vec(("[a-z]{1,8}", inner.clone()), 0..6)
                    .prop_map(Amf0Value::EcmaArray),
                prop::collection::vec(inner, 0..6).prop_map(Amf0Value::StrictArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trip(vals in prop::collection::vec(arb_value(), 0..5)) {
            let b = encode_all(&vals);
            prop_assert_eq!(b.len(), vals.iter().map(Amf0Value::encoded_len).sum::<usize>());
            prop_assert_eq!(decode_all(&b).unwrap(), vals);
        }

        #[test]
        fn garbage_never_panics(b in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_all(&b);
        }
    }
}
