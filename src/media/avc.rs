//! H.264 decoder configuration: the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3)
//! and the parts of the SPS (ITU-T H.264 §7.3.2.1) a muxer and a status page need.
//!
//! Every length and count comes from the network, so each read is bounds-checked and the SPS
//! reader stops at the picture size; it never allocates more than the input.

use super::bits::{strip_emulation_prevention, BitReader, BitsError};
use thiserror::Error;

/// Why a decoder configuration record was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AvcError {
    #[error("AVC decoder configuration record truncated at byte {0}")]
    Truncated(usize),
    #[error("unsupported AVC configuration version {0}")]
    BadVersion(u8),
    #[error("AVC record has no SPS")]
    NoSps,
    #[error("SPS malformed: {0}")]
    BadSps(&'static str),
}

/// The parsed record with the first SPS's picture size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    pub profile_idc: u8,
    pub profile_compatibility: u8,
    pub level_idc: u8,
    /// Bytes of each NAL unit length prefix in samples (1, 2 or 4).
    pub nal_length_size: u8,
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
    pub width: u32,
    pub height: u32,
    /// How to turn the decoded YUV into RGB (from the SPS's VUI).
    pub color: ColorInfo,
}

/// The colour signal description of an SPS (H.264 Annex E), for YUV → RGB conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColorInfo {
    /// `matrix_coefficients`: 1 = BT.709, 5/6 = BT.601, 2 = unspecified, …
    pub matrix_coefficients: u8,
    /// `video_full_range_flag`: 0..255 instead of 16..235.
    pub full_range: bool,
}

impl ColorInfo {
    /// Whether to use BT.709 (else BT.601): as signalled, or by picture size when the
    /// stream does not say (the usual convention: HD is BT.709).
    pub fn is_bt709(&self, height: u32) -> bool {
        match self.matrix_coefficients {
            1 => true,
            5 | 6 => false,
            _ => height > 576,
        }
    }
}

impl Default for ColorInfo {
    fn default() -> Self {
        ColorInfo {
            matrix_coefficients: 2,
            full_range: false,
        }
    }
}

impl AvcConfig {
    /// Parses an `avcC` record (the body of an FLV AVC sequence header after its 5-byte
    /// prefix).
    pub fn parse(record: &[u8]) -> Result<Self, AvcError> {
        let mut pos = 0usize;
        let byte = |pos: &mut usize| -> Result<u8, AvcError> {
            let value = *record.get(*pos).ok_or(AvcError::Truncated(*pos))?;
            *pos += 1;
            Ok(value)
        };
        let version = byte(&mut pos)?;
        if version != 1 {
            return Err(AvcError::BadVersion(version));
        }
        let profile_idc = byte(&mut pos)?;
        let profile_compatibility = byte(&mut pos)?;
        let level_idc = byte(&mut pos)?;
        let nal_length_size = (byte(&mut pos)? & 0x03) + 1;
        let sps_count = byte(&mut pos)? & 0x1f;
        let read_units = |count: usize, pos: &mut usize| -> Result<Vec<Vec<u8>>, AvcError> {
            let mut units = Vec::new();
            for _ in 0..count {
                let hi = *record.get(*pos).ok_or(AvcError::Truncated(*pos))?;
                let lo = *record.get(*pos + 1).ok_or(AvcError::Truncated(*pos + 1))?;
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                *pos += 2;
                let unit = record
                    .get(*pos..*pos + len)
                    .ok_or(AvcError::Truncated(*pos))?;
                units.push(unit.to_vec());
                *pos += len;
            }
            Ok(units)
        };
        let sps = read_units(usize::from(sps_count), &mut pos)?;
        let pps_count = *record.get(pos).ok_or(AvcError::Truncated(pos))?;
        pos += 1;
        let pps = read_units(usize::from(pps_count), &mut pos)?;
        let first_sps = sps.first().ok_or(AvcError::NoSps)?;
        let (width, height, color) = sps_info(first_sps)?;
        Ok(AvcConfig {
            profile_idc,
            profile_compatibility,
            level_idc,
            nal_length_size,
            sps,
            pps,
            width,
            height,
            color,
        })
    }

    /// RFC 6381 codec string, e.g. `avc1.640028`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.profile_compatibility, self.level_idc
        )
    }
}

impl From<BitsError> for AvcError {
    fn from(e: BitsError) -> Self {
        AvcError::BadSps(e.as_str())
    }
}

fn skip_scaling_list(reader: &mut BitReader, size: u32) -> Result<(), AvcError> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            let delta = reader.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(AvcError::BadSps("delta_scale out of range"));
            }
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Reads the displayed picture size (after cropping) from an SPS NAL unit.
pub fn sps_picture_size(sps_nal: &[u8]) -> Result<(u32, u32), AvcError> {
    sps_info(sps_nal).map(|(width, height, _)| (width, height))
}

/// The VUI's colour description; a VUI that ends early leaves the defaults (the picture
/// size, read before it, is what the SPS must give).
fn read_color(r: &mut BitReader) -> ColorInfo {
    let mut color = ColorInfo::default();
    let _ = (|| -> Result<(), BitsError> {
        if !r.flag()? {
            return Ok(()); // no VUI
        }
        if r.flag()? && r.bits(8)? == 255 {
            r.skip(32)?; // sar_width, sar_height
        }
        if r.flag()? {
            r.bit()?; // overscan_appropriate_flag
        }
        if r.flag()? {
            r.bits(3)?; // video_format
            color.full_range = r.flag()?;
            if r.flag()? {
                r.bits(16)?; // colour_primaries, transfer_characteristics
                color.matrix_coefficients = r.bits(8)? as u8;
            }
        }
        Ok(())
    })();
    color
}

/// Picture size and colour description of an SPS NAL unit.
pub fn sps_info(sps_nal: &[u8]) -> Result<(u32, u32, ColorInfo), AvcError> {
    if sps_nal.first().map(|b| b & 0x1f) != Some(7) {
        return Err(AvcError::BadSps("not an SPS NAL unit"));
    }
    let rbsp = strip_emulation_prevention(&sps_nal[1..]);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()? == 1;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    let pic_order_cnt_type = r.ue()?;
    if pic_order_cnt_type == 0 {
        r.ue()?;
    } else if pic_order_cnt_type == 1 {
        r.bit()?;
        r.se()?;
        r.se()?;
        let cycle = r.ue()?;
        if cycle > 255 {
            return Err(AvcError::BadSps("too many ref frames in POC cycle"));
        }
        for _ in 0..cycle {
            r.se()?;
        }
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = u64::from(r.bit()?);
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) = (0u64, 0u64, 0u64, 0u64);
    if r.bit()? == 1 {
        crop_left = u64::from(r.ue()?);
        crop_right = u64::from(r.ue()?);
        crop_top = u64::from(r.ue()?);
        crop_bottom = u64::from(r.ue()?);
    }
    let (crop_unit_x, crop_unit_y) = match (chroma_format_idc, separate_colour_plane) {
        (0, _) | (3, true) => (1, 2 - frame_mbs_only),
        (1, _) => (2, 2 * (2 - frame_mbs_only)),
        (2, _) => (2, 2 - frame_mbs_only),
        _ => (1, 2 - frame_mbs_only),
    };
    let full_width = width_mbs * 16;
    let full_height = (2 - frame_mbs_only) * height_map_units * 16;
    let width = full_width
        .checked_sub(crop_unit_x * (crop_left + crop_right))
        .ok_or(AvcError::BadSps("cropping wider than the picture"))?;
    let height = full_height
        .checked_sub(crop_unit_y * (crop_top + crop_bottom))
        .ok_or(AvcError::BadSps("cropping taller than the picture"))?;
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        return Err(AvcError::BadSps("picture size out of range"));
    }
    Ok((width as u32, height as u32, read_color(&mut r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// avcC of tests/fixtures/obs-like.flv (x264, High profile, 640x360).
    const RECORD_640X360: [u8; 45] = [
        0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40,
        0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c,
        0x0f, 0x16, 0x2d, 0x96, 0x01, 0x00, 0x04, 0x68, 0xef, 0xbc, 0xb0, 0xfd, 0xf8, 0xf8, 0x00,
    ];

    #[test]
    fn parses_high_profile_record() {
        let config = AvcConfig::parse(&RECORD_640X360).unwrap();
        assert_eq!(config.profile_idc, 100);
        assert_eq!(config.level_idc, 30);
        assert_eq!(config.nal_length_size, 4);
        assert_eq!(config.sps.len(), 1);
        assert_eq!(config.pps.len(), 1);
        assert_eq!((config.width, config.height), (640, 360));
        assert_eq!(config.codec_string(), "avc1.64001e");
    }

    #[test]
    fn refuses_every_truncation() {
        // The record ends with High-profile extension bytes we do not need, so cutting those
        // three still parses; every shorter cut must fail.
        for len in 0..RECORD_640X360.len() - 4 {
            assert!(
                AvcConfig::parse(&RECORD_640X360[..len]).is_err(),
                "len {len}"
            );
        }
    }

    /// Found by the avc_config fuzz target: a scaling-list delta of 2^31 overflowed i32.
    #[test]
    fn huge_scaling_list_delta_is_an_error_not_an_overflow() {
        let sps = [
            0x67, 0x64, 0x02, 0x01, 0x04, 0x00, 0x06, 0x1e, 0xac, 0xf8, 0x11, 0x23, 0x00, 0x00,
            0x00, 0xf2, 0x00, 0x01, 0x00, 0x00, 0x00, 0xf7, 0xd2, 0xe9, 0x00, 0x00, 0x00, 0x00,
            0x03, 0xff, 0xff, 0xff, 0x00, 0xef, 0xbc, 0xb2, 0x00, 0x00,
        ];
        assert!(sps_picture_size(&sps).is_err());
    }

    #[test]
    fn refuses_bad_version_and_missing_sps() {
        let mut bad = RECORD_640X360;
        bad[0] = 2;
        assert_eq!(AvcConfig::parse(&bad), Err(AvcError::BadVersion(2)));
        assert_eq!(
            AvcConfig::parse(&[1, 0x64, 0, 0x1e, 0xff, 0xe0, 0]),
            Err(AvcError::NoSps)
        );
    }
}
