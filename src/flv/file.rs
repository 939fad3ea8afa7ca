//! FLV file reader (Adobe FLV spec v10.1 §E.2–E.3): header, then tags with their previous-tag
//! sizes. Used to replay fixtures in tests, benches and the load generator.

use bytes::Bytes;
use thiserror::Error;

/// Why an FLV file was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FlvFileError {
    #[error("not an FLV file (bad signature)")]
    BadSignature,
    #[error("FLV truncated at byte {0}")]
    Truncated(usize),
    #[error("encrypted FLV tag at byte {0}")]
    Encrypted(usize),
}

/// One FLV tag: type 8 audio, 9 video, 18 script data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    pub tag_type: u8,
    pub timestamp_ms: u32,
    pub body: Bytes,
}

/// Parses a whole FLV file into its tags.
pub fn read_tags(data: &Bytes) -> Result<Vec<FlvTag>, FlvFileError> {
    if data.len() < 9 || &data[..3] != b"FLV" {
        return Err(FlvFileError::BadSignature);
    }
    let header_len = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    // Skip the header and PreviousTagSize0.
    let mut pos = header_len
        .checked_add(4)
        .ok_or(FlvFileError::Truncated(5))?;
    let mut tags = Vec::new();
    while pos < data.len() {
        let header = data
            .get(pos..pos + 11)
            .ok_or(FlvFileError::Truncated(pos))?;
        if header[0] & 0x20 != 0 {
            return Err(FlvFileError::Encrypted(pos));
        }
        let tag_type = header[0] & 0x1F;
        let size = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
        let timestamp_ms = u32::from_be_bytes([header[7], header[4], header[5], header[6]]);
        let body_start = pos + 11;
        let body_end = body_start + size;
        if body_end > data.len() {
            return Err(FlvFileError::Truncated(body_start));
        }
        tags.push(FlvTag {
            tag_type,
            timestamp_ms,
            body: data.slice(body_start..body_end),
        });
        pos = body_end + 4;
    }
    Ok(tags)
}

/// Demuxes a file's tags into packets (each carries the configuration in force), skipping
/// tags the demuxer refuses. For fixtures, benches, fuzzing and the load generator.
pub fn demux_tags(tags: &[FlvTag]) -> Vec<crate::media::Packet> {
    let mut demuxer = super::Demuxer::default();
    let mut packets = Vec::new();
    for tag in tags {
        let result = match tag.tag_type {
            8 => demuxer.audio(tag.timestamp_ms, tag.body.clone()),
            9 => demuxer.video(tag.timestamp_ms, tag.body.clone()),
            18 => demuxer.script(&tag.body),
            _ => continue,
        };
        if let Ok(super::Demuxed::Packet(packet)) = result {
            packets.push(packet);
        }
    }
    packets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fixture() {
        let data = Bytes::from(std::fs::read("tests/fixtures/obs-like.flv").unwrap());
        let tags = read_tags(&data).unwrap();
        assert!(tags.iter().filter(|t| t.tag_type == 9).count() >= 180);
        assert!(tags.iter().any(|t| t.tag_type == 8));
        assert_eq!(tags[0].tag_type, 18);
        for len in [0, 5, 20, 100] {
            let cut = data.slice(..len);
            assert!(read_tags(&cut).is_err(), "len {len}");
        }
    }
}
