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

/// The NAL units of an AVCC frame in order. A length that runs past the end is an error,
/// which ends the iteration.
fn nal_units<'a>(
    config: &AvcConfig,
    frame: &'a [u8],
) -> impl Iterator<Item = Result<&'a [u8], AnnexBError>> + 'a {
    let size = usize::from(config.nal_length_size.clamp(1, 4));
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= frame.len() {
            return None;
        }
        let unit = frame.get(pos..pos + size).and_then(|prefix| {
            let len = prefix
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b));
            let start = pos + size;
            let end = start.checked_add(len)?;
            Some((frame.get(start..end)?, end))
        });
        Some(match unit {
            Some((unit, end)) => {
                pos = end;
                Ok(unit)
            }
            None => {
                let at = std::mem::replace(&mut pos, frame.len());
                Err(AnnexBError::Truncated(at))
            }
        })
    })
}

/// Appends the frame's NAL units to `out` as Annex B.
pub fn append_frame(
    config: &AvcConfig,
    frame: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), AnnexBError> {
    let mut units = 0;
    for unit in nal_units(config, frame) {
        let unit = unit?;
        if !unit.is_empty() {
            out.extend_from_slice(&START_CODE);
            out.extend_from_slice(unit);
            units += 1;
        }
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
    nal_units(config, frame)
        .find_map(|unit| match unit {
            Err(_) => Some(true),
            Ok(unit) => unit
                .first()
                .filter(|&&header| matches!(header & 0x1f, 1 | 5))
                .map(|&header| header >> 5 & 3 != 0),
        })
        .unwrap_or(true)
}
