//! H.265 decoder configuration: the HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3)
//! that Enhanced RTMP carries for `hvc1`, and the SPS fields (ITU-T H.265 §7.3.2.2) a muxer
//! needs: the displayed picture size.
//!
//! The record itself is decoded with `mp4-atom` (the same type the muxer writes into the
//! `hvcC` box); the SPS is read here, bounds-checked, stopping at the conformance window.

use super::bits::{strip_emulation_prevention, BitReader, BitsError};
use mp4_atom::{Atom, Hvcc};
use thiserror::Error;

/// NAL unit type of a sequence parameter set.
const SPS_NAL_TYPE: u8 = 33;

/// Why an HEVC decoder configuration record was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HevcError {
    #[error("HEVC decoder configuration record malformed: {0}")]
    Record(String),
    #[error("HEVC record has no SPS")]
    NoSps,
    #[error("HEVC SPS malformed: {0}")]
    BadSps(&'static str),
}

impl From<BitsError> for HevcError {
    fn from(e: BitsError) -> Self {
        HevcError::BadSps(e.as_str())
    }
}

/// The parsed record with the first SPS's displayed picture size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    pub hvcc: Hvcc,
    pub width: u32,
    pub height: u32,
}

impl HevcConfig {
    /// Parses an `hvcC` record (the body of an Enhanced-RTMP HEVC sequence start).
    pub fn parse(record: &[u8]) -> Result<Self, HevcError> {
        let mut buf = record;
        let hvcc = Hvcc::decode_body(&mut buf).map_err(|e| HevcError::Record(e.to_string()))?;
        if hvcc.configuration_version != 1 {
            return Err(HevcError::Record(format!(
                "version {}",
                hvcc.configuration_version
            )));
        }
        let sps = hvcc
            .arrays
            .iter()
            .filter(|array| array.nal_unit_type == SPS_NAL_TYPE)
            .flat_map(|array| array.nalus.first())
            .next()
            .ok_or(HevcError::NoSps)?;
        let (width, height) = sps_picture_size(sps)?;
        Ok(HevcConfig {
            hvcc,
            width,
            height,
        })
    }

    /// Bytes of each NAL unit length prefix in samples.
    pub fn nal_length_size(&self) -> u8 {
        self.hvcc.length_size_minus_one + 1
    }

    /// RFC 6381 codec string (ISO/IEC 14496-15 Annex E), e.g. `hvc1.1.6.L93.B0`.
    pub fn codec_string(&self) -> String {
        let h = &self.hvcc;
        let space = ["", "A", "B", "C"][usize::from(h.general_profile_space & 3)];
        let compatibility =
            u32::from_be_bytes(h.general_profile_compatibility_flags).reverse_bits();
        let tier = if h.general_tier_flag { 'H' } else { 'L' };
        let mut out = format!(
            "hvc1.{space}{}.{compatibility:X}.{tier}{}",
            h.general_profile_idc, h.general_level_idc
        );
        let constraints = &h.general_constraint_indicator_flags;
        let used = constraints
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last + 1);
        for byte in &constraints[..used] {
            out.push_str(&format!(".{byte:X}"));
        }
        out
    }
}

/// Skips `profile_tier_level(1, max_sub_layers_minus1)` (H.265 §7.3.3).
fn skip_profile_tier_level(r: &mut BitReader, max_sub_layers_minus1: u32) -> Result<(), BitsError> {
    r.skip(96)?; // general profile (88 bits) and general_level_idc
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    let sub_layers = max_sub_layers_minus1.min(7) as usize;
    for i in 0..sub_layers {
        profile_present[i] = r.flag()?;
        level_present[i] = r.flag()?;
    }
    if sub_layers > 0 {
        r.skip(2 * (8 - sub_layers))?; // reserved_zero_2bits
    }
    for i in 0..sub_layers {
        if profile_present[i] {
            r.skip(88)?;
        }
        if level_present[i] {
            r.skip(8)?;
        }
    }
    Ok(())
}

/// Reads the displayed picture size (after the conformance window) from an SPS NAL unit.
pub fn sps_picture_size(sps_nal: &[u8]) -> Result<(u32, u32), HevcError> {
    if sps_nal.first().map(|b| (b >> 1) & 0x3f) != Some(SPS_NAL_TYPE) {
        return Err(HevcError::BadSps("not an SPS NAL unit"));
    }
    let rbsp = strip_emulation_prevention(sps_nal.get(2..).unwrap_or_default());
    let mut r = BitReader::new(&rbsp);
    r.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    r.bit()?; // sps_temporal_id_nesting_flag
    skip_profile_tier_level(&mut r, max_sub_layers_minus1)?;
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    let separate_colour_plane = chroma_format_idc == 3 && r.flag()?;
    let full_width = u64::from(r.ue()?);
    let full_height = u64::from(r.ue()?);
    let (mut left, mut right, mut top, mut bottom) = (0u64, 0u64, 0u64, 0u64);
    if r.flag()? {
        left = u64::from(r.ue()?);
        right = u64::from(r.ue()?);
        top = u64::from(r.ue()?);
        bottom = u64::from(r.ue()?);
    }
    let (unit_x, unit_y) = match (chroma_format_idc, separate_colour_plane) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let width = full_width
        .checked_sub(unit_x * (left + right))
        .ok_or(HevcError::BadSps(
            "conformance window wider than the picture",
        ))?;
    let height = full_height
        .checked_sub(unit_y * (top + bottom))
        .ok_or(HevcError::BadSps(
            "conformance window taller than the picture",
        ))?;
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        return Err(HevcError::BadSps("picture size out of range"));
    }
    Ok((width as u32, height as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPS of tests/fixtures/hevc-aac.mp4 (x265 Main, 426x240 coded as 432x240 with a
    /// conformance window).
    fn fixture_record() -> Vec<u8> {
        crate::media::fixture_video_record("hevc-aac.mp4")
    }

    #[test]
    fn parses_x265_record_with_conformance_window() {
        let config = HevcConfig::parse(&fixture_record()).unwrap();
        assert_eq!((config.width, config.height), (426, 240));
        assert_eq!(config.nal_length_size(), 4);
        assert_eq!(config.codec_string(), "hvc1.1.6.L60.90");
    }

    #[test]
    fn refuses_every_truncation_of_the_parameter_sets() {
        let record = fixture_record();
        let config = HevcConfig::parse(&record).unwrap();
        let sps = &config
            .hvcc
            .arrays
            .iter()
            .find(|a| a.nal_unit_type == SPS_NAL_TYPE)
            .unwrap()
            .nalus[0];
        // Everything up to the conformance window's last offset is needed.
        for len in 0..16 {
            assert!(sps_picture_size(&sps[..len]).is_err(), "len {len}");
        }
        for len in 0..23 {
            assert!(HevcConfig::parse(&record[..len]).is_err(), "len {len}");
        }
    }

    #[test]
    fn refuses_a_non_sps_and_a_record_without_sps() {
        assert!(sps_picture_size(&[0x40, 0x01, 0xff]).is_err());
        let mut record = fixture_record();
        record.truncate(22);
        record.push(0); // no arrays
        assert_eq!(HevcConfig::parse(&record), Err(HevcError::NoSps));
    }
}
