//! AVCC (length-prefixed NAL units, as RTMP and MP4 carry them) → Annex B (start codes), the
//! form OpenH264 takes, with the SPS and PPS from the sequence header in front.
//!
//! Every length comes from the network: a NAL unit that runs past the end is an error, never a
//! panic or an over-read.

use crate::media::avc::AvcConfig;
use thiserror::Error;

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Why a frame could not be converted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AnnexBError {
    #[error("NAL unit length at byte {0} runs past the end of the frame")]
    Truncated(usize),
    #[error("frame has no NAL unit")]
    Empty,
}

/// The parameter sets as Annex B (what a decoder needs before the first frame).
pub fn parameter_sets(config: &AvcConfig) -> Vec<u8> {
    let mut out = Vec::new();
    for unit in config.sps.iter().chain(&config.pps) {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(unit);
    }
    out
}

/// Appends the frame's NAL units to `out` as Annex B.
pub fn append_frame(
    config: &AvcConfig,
    frame: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), AnnexBError> {
    let size = usize::from(config.nal_length_size.clamp(1, 4));
    let mut pos = 0;
    let mut units = 0;
    while pos < frame.len() {
        let prefix = frame
            .get(pos..pos + size)
            .ok_or(AnnexBError::Truncated(pos))?;
        let len = prefix
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        let start = pos + size;
        let unit = start
            .checked_add(len)
            .and_then(|end| frame.get(start..end))
            .ok_or(AnnexBError::Truncated(pos))?;
        if !unit.is_empty() {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(unit);
            units += 1;
        }
        pos = start + len;
    }
    if units == 0 {
        return Err(AnnexBError::Empty);
    }
    Ok(())
}

/// Whether other frames may predict from this one: a slice NAL unit with `nal_ref_idc` ≠ 0.
/// Frames that are not (most B-frames of OBS streams) need not be decoded unless shown.
/// Unparseable frames count as references, so nothing a shown frame needs is ever skipped.
pub fn is_reference(config: &AvcConfig, frame: &[u8]) -> bool {
    let size = usize::from(config.nal_length_size.clamp(1, 4));
    let mut pos = 0;
    while pos < frame.len() {
        let Some(prefix) = frame.get(pos..pos + size) else {
            return true;
        };
        let len = prefix
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        let start = pos + size;
        let Some(&header) = frame.get(start) else {
            return true;
        };
        let (ref_idc, unit_type) = (header >> 5 & 3, header & 0x1f);
        if matches!(unit_type, 1 | 5) {
            return ref_idc != 0;
        }
        pos = start.saturating_add(len);
    }
    true
}
