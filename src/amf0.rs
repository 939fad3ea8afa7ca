//! AMF0 (Adobe Action Message Format 0) encoding and decoding, for RTMP commands and FLV
//! script data.
//!
//! Ours rather than `rml_amf0`: that crate fails on the date and long-string markers that some
//! encoders send. Decoding never trusts a count from the input for allocation, limits nesting
//! depth, and decodes strings lossily (a bad UTF-8 byte never fails a stream).

use bytes::{BufMut, BytesMut};
use thiserror::Error;

/// Nesting deeper than this is refused rather than recursed into.
const MAX_DEPTH: usize = 32;

/// Why AMF0 bytes were refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Amf0Error {
    #[error("AMF0 value truncated at byte {0}")]
    Truncated(usize),
    #[error("unknown AMF0 marker {marker:#04x} at byte {offset}")]
    UnknownMarker { marker: u8, offset: usize },
    #[error("AMF0 values nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// One AMF0 value. Objects keep their property order (it matters to some peers).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    String(String),
    Object(Vec<(String, Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Value)>),
    StrictArray(Vec<Value>),
    /// Milliseconds since the Unix epoch (the time-zone field is ignored, as the spec says).
    Date(f64),
    TypedObject(String, Vec<(String, Value)>),
    Xml(String),
    /// Markers that carry no value we use (reference, unsupported, record set).
    Unsupported,
}

impl Value {
    /// The string inside a `String` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number inside a `Number` value.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// A property of an object-like value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(props) | Value::EcmaArray(props) | Value::TypedObject(_, props) => {
                props.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

/// Decodes every value in `data` (an RTMP command or data message body).
pub fn decode_all(data: &[u8]) -> Result<Vec<Value>, Amf0Error> {
    let mut decoder = Decoder { data, pos: 0 };
    let mut values = Vec::new();
    while decoder.pos < data.len() {
        values.push(decoder.value(0)?);
    }
    Ok(values)
}

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn take(&mut self, len: usize) -> Result<&[u8], Amf0Error> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.data.len())
            .ok_or(Amf0Error::Truncated(self.pos))?;
        let slice = &self.data[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        let b = self.take(8)?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(b);
        Ok(f64::from_be_bytes(raw))
    }

    fn string(&mut self, len: usize) -> Result<String, Amf0Error> {
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn short_string(&mut self) -> Result<String, Amf0Error> {
        let len = usize::from(self.u16()?);
        self.string(len)
    }

    fn long_string(&mut self) -> Result<String, Amf0Error> {
        let len = self.u32()? as usize;
        self.string(len)
    }

    /// Properties up to the empty-key object-end marker.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() && self.data.get(self.pos) == Some(&0x09) {
                self.pos += 1;
                return Ok(props);
            }
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        let offset = self.pos;
        let marker = self.u8()?;
        Ok(match marker {
            0x00 => Value::Number(self.f64()?),
            0x01 => Value::Boolean(self.u8()? != 0),
            0x02 => Value::String(self.short_string()?),
            0x03 => Value::Object(self.properties(depth)?),
            0x05 => Value::Null,
            0x06 => Value::Undefined,
            0x07 => {
                self.u16()?;
                Value::Unsupported
            }
            0x08 => {
                // The count is only a hint (often wrong); the end marker is authoritative.
                self.u32()?;
                Value::EcmaArray(self.properties(depth)?)
            }
            0x0A => {
                let count = self.u32()?;
                let mut items = Vec::new();
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Value::StrictArray(items)
            }
            0x0B => {
                let millis = self.f64()?;
                self.u16()?;
                Value::Date(millis)
            }
            0x0C => Value::String(self.long_string()?),
            0x0D | 0x0E => Value::Unsupported,
            0x0F => Value::Xml(self.long_string()?),
            0x10 => {
                let class = self.short_string()?;
                Value::TypedObject(class, self.properties(depth)?)
            }
            _ => return Err(Amf0Error::UnknownMarker { marker, offset }),
        })
    }
}

/// Appends the AMF0 encoding of `value` to `out`.
pub fn encode(out: &mut BytesMut, value: &Value) {
    fn key(out: &mut BytesMut, key: &str) {
        let bytes = &key.as_bytes()[..key.len().min(usize::from(u16::MAX))];
        out.put_u16(bytes.len() as u16);
        out.put_slice(bytes);
    }
    fn props(out: &mut BytesMut, props: &[(String, Value)]) {
        for (k, v) in props {
            key(out, k);
            encode(out, v);
        }
        out.put_slice(&[0, 0, 0x09]);
    }
    match value {
        Value::Number(n) => {
            out.put_u8(0x00);
            out.put_f64(*n);
        }
        Value::Boolean(b) => {
            out.put_u8(0x01);
            out.put_u8(u8::from(*b));
        }
        Value::String(s) if s.len() <= usize::from(u16::MAX) => {
            out.put_u8(0x02);
            key(out, s);
        }
        Value::String(s) => {
            out.put_u8(0x0C);
            out.put_u32(s.len() as u32);
            out.put_slice(s.as_bytes());
        }
        Value::Object(p) => {
            out.put_u8(0x03);
            props(out, p);
        }
        Value::Null => out.put_u8(0x05),
        Value::Undefined | Value::Unsupported => out.put_u8(0x06),
        Value::EcmaArray(p) => {
            out.put_u8(0x08);
            out.put_u32(p.len() as u32);
            props(out, p);
        }
        Value::StrictArray(items) => {
            out.put_u8(0x0A);
            out.put_u32(items.len() as u32);
            for item in items {
                encode(out, item);
            }
        }
        Value::Date(ms) => {
            out.put_u8(0x0B);
            out.put_f64(*ms);
            out.put_u16(0);
        }
        Value::TypedObject(class, p) => {
            out.put_u8(0x10);
            key(out, class);
            props(out, p);
        }
        Value::Xml(s) => {
            out.put_u8(0x0F);
            out.put_u32(s.len() as u32);
            out.put_slice(s.as_bytes());
        }
    }
}

/// Encodes a sequence of values (a command or data message body).
pub fn encode_all(values: &[Value]) -> BytesMut {
    let mut out = BytesMut::new();
    for value in values {
        encode(&mut out, value);
    }
    out
}

/// Shorthand for building an object from string keys.
pub fn object(props: &[(&str, Value)]) -> Value {
    Value::Object(
        props
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        let values = vec![
            Value::String("connect".into()),
            Value::Number(1.0),
            object(&[
                ("app", Value::String("live".into())),
                ("flag", Value::Boolean(true)),
                ("nested", object(&[("x", Value::Null)])),
            ]),
            Value::EcmaArray(vec![("duration".into(), Value::Number(0.0))]),
            Value::StrictArray(vec![Value::Number(1.0), Value::Undefined]),
            Value::Date(1_700_000_000_000.0),
            Value::String("x".repeat(70_000)),
            Value::TypedObject("T".into(), vec![("a".into(), Value::Number(2.0))]),
            Value::Xml("<a/>".into()),
        ];
        let encoded = encode_all(&values);
        assert_eq!(decode_all(&encoded).unwrap(), values);
    }

    #[test]
    fn refuses_truncation_at_every_offset() {
        let encoded = encode_all(&[
            Value::String("publish".into()),
            object(&[("k", Value::Number(3.0))]),
        ]);
        let first_value_len = 1 + 2 + "publish".len();
        for len in (1..encoded.len()).filter(|&l| l != first_value_len) {
            assert!(decode_all(&encoded[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn refuses_deep_nesting_and_unknown_markers() {
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
        }
        deep.push(0x05);
        assert_eq!(decode_all(&deep), Err(Amf0Error::TooDeep));
        assert_eq!(
            decode_all(&[0x11]),
            Err(Amf0Error::UnknownMarker {
                marker: 0x11,
                offset: 0
            })
        );
    }

    #[test]
    fn huge_declared_counts_do_not_allocate() {
        // A strict array claiming 4 billion items ends at the data, not in an allocation.
        assert!(decode_all(&[0x0A, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    }
}
