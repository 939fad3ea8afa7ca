//! AV1 decoder configuration: the AV1CodecConfigurationRecord (`av1C`, AV1-ISOBMFF §2.3)
//! that Enhanced RTMP carries for `av01`, and from its sequence header OBU (AV1 §5.5) the
//! maximum frame size a muxer writes into the sample entry.
//!
//! The record is decoded with `mp4-atom` (the same type the muxer writes); the sequence
//! header is read here, bounds-checked, stopping at the frame size.

use super::bits::{BitReader, BitsError};
use mp4_atom::{Atom, Av1c};
use thiserror::Error;

const OBU_SEQUENCE_HEADER: u8 = 1;

/// Why an AV1 codec configuration record was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Av1Error {
    #[error("AV1 codec configuration record malformed: {0}")]
    Record(String),
    #[error("AV1 record carries no sequence header OBU")]
    NoSequenceHeader,
    #[error("AV1 sequence header malformed: {0}")]
    BadSequenceHeader(&'static str),
}

impl From<BitsError> for Av1Error {
    fn from(e: BitsError) -> Self {
        Av1Error::BadSequenceHeader(e.as_str())
    }
}

/// The parsed record with the sequence header's maximum frame size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Av1Config {
    pub av1c: Av1c,
    pub width: u32,
    pub height: u32,
}

impl Av1Config {
    /// Parses an `av1C` record (the body of an Enhanced-RTMP AV1 sequence start).
    pub fn parse(record: &[u8]) -> Result<Self, Av1Error> {
        let mut buf = record;
        let av1c = Av1c::decode_body(&mut buf).map_err(|e| Av1Error::Record(e.to_string()))?;
        let header = sequence_header_obu(&av1c.config_obus)?;
        let (width, height) = max_frame_size(header)?;
        Ok(Av1Config {
            av1c,
            width,
            height,
        })
    }

    /// RFC 6381 codec string (AV1-ISOBMFF "Codecs Parameter String"), e.g. `av01.0.04M.08`.
    pub fn codec_string(&self) -> String {
        let c = &self.av1c;
        let depth = match (c.high_bitdepth, c.twelve_bit) {
            (true, true) => 12,
            (true, false) => 10,
            _ => 8,
        };
        let tier = if c.seq_tier_0 { 'H' } else { 'M' };
        format!(
            "av01.{}.{:02}{tier}.{depth:02}",
            c.seq_profile, c.seq_level_idx_0
        )
    }
}

/// Reads a `leb128()` value (AV1 §4.10.5), at most 8 bytes.
fn leb128(data: &[u8], pos: &mut usize) -> Result<u64, Av1Error> {
    let mut value = 0u64;
    for i in 0..8 {
        let byte = *data
            .get(*pos)
            .ok_or(Av1Error::BadSequenceHeader("OBU size truncated"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Av1Error::BadSequenceHeader("OBU size too long"))
}

/// The payload of the first sequence header OBU among `obus` (low-overhead format).
fn sequence_header_obu(obus: &[u8]) -> Result<&[u8], Av1Error> {
    let mut pos = 0;
    while pos < obus.len() {
        let header = obus[pos];
        pos += 1;
        let obu_type = (header >> 3) & 0x0f;
        if header & 0x04 != 0 {
            pos += 1; // extension header
        }
        let size = if header & 0x02 != 0 {
            usize::try_from(leb128(obus, &mut pos)?).unwrap_or(usize::MAX)
        } else {
            obus.len().saturating_sub(pos)
        };
        let payload = obus
            .get(pos..pos.saturating_add(size))
            .ok_or(Av1Error::BadSequenceHeader("OBU truncated"))?;
        if obu_type == OBU_SEQUENCE_HEADER {
            return Ok(payload);
        }
        pos += size;
    }
    Err(Av1Error::NoSequenceHeader)
}

/// `max_frame_width_minus_1 + 1` and the height from a sequence header OBU payload.
fn max_frame_size(header: &[u8]) -> Result<(u32, u32), Av1Error> {
    let mut r = BitReader::new(header);
    r.bits(3)?; // seq_profile
    r.bit()?; // still_picture
    let reduced_still_picture_header = r.flag()?;
    if reduced_still_picture_header {
        r.bits(5)?; // seq_level_idx[0]
    } else {
        let mut decoder_model_info_present = false;
        let mut buffer_delay_length = 0;
        if r.flag()? {
            // timing_info()
            r.skip(64)?; // num_units_in_display_tick, time_scale
            if r.flag()? {
                r.ue()?; // num_ticks_per_picture_minus_1 (uvlc)
            }
            decoder_model_info_present = r.flag()?;
            if decoder_model_info_present {
                buffer_delay_length = r.bits(5)? + 1;
                r.skip(32 + 5 + 5)?;
            }
        }
        let initial_display_delay_present = r.flag()?;
        let operating_points = r.bits(5)? + 1;
        for _ in 0..operating_points {
            r.bits(12)?; // operating_point_idc
            if r.bits(5)? > 7 {
                r.bit()?; // seq_tier
            }
            if decoder_model_info_present && r.flag()? {
                r.skip(2 * buffer_delay_length as usize + 1)?;
            }
            if initial_display_delay_present && r.flag()? {
                r.bits(4)?;
            }
        }
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    let width = u64::from(r.bits(width_bits)?) + 1;
    let height = u64::from(r.bits(height_bits)?) + 1;
    if width > 16384 || height > 16384 {
        return Err(Av1Error::BadSequenceHeader("frame size out of range"));
    }
    Ok((width as u32, height as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `av1C` of tests/fixtures/av1-aac.mp4 (SVT-AV1, Main, 426x240).
    fn fixture_record() -> Vec<u8> {
        crate::media::fixture_video_record("av1-aac.mp4")
    }

    #[test]
    fn parses_svt_av1_record() {
        let config = Av1Config::parse(&fixture_record()).unwrap();
        assert_eq!((config.width, config.height), (426, 240));
        assert_eq!(config.codec_string(), "av01.0.00M.08");
    }

    #[test]
    fn refuses_every_truncation() {
        let record = fixture_record();
        for len in 0..record.len() - 1 {
            assert!(Av1Config::parse(&record[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn a_record_without_sequence_header_is_refused() {
        let record = fixture_record();
        assert_eq!(
            Av1Config::parse(&record[..4]),
            Err(Av1Error::NoSequenceHeader)
        );
    }
}
