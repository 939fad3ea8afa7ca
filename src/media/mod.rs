//! Codec-level media units shared by every part of the media path.
//!
//! A [`Packet`] is one access unit (a video frame or an audio frame) with its timing and the
//! codec configuration it needs. It keeps the original FLV tag body so RTMP play relays it
//! byte for byte; the codec payload is a zero-copy slice of that body. Nothing here does I/O.
//!
//! Not here: FLV parsing (`flv`), the per-stream ring (`hub`), muxing (`mux`).

pub mod aac;
pub mod av1;
pub mod avc;
pub mod bits;
pub mod hevc;

use bytes::Bytes;
use std::sync::{Arc, OnceLock};

/// Which elementary stream a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    Video,
    Audio,
}

/// Video codecs we recognise. Only AVC is decoded anywhere; the others are relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Avc,
    Hevc,
    Av1,
    Vp9,
    /// A legacy FLV codec id or Enhanced-RTMP FourCC we relay without understanding.
    Other(u32),
}

impl VideoCodec {
    /// Short codec name for logs and status.
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::Avc => "h264",
            VideoCodec::Hevc => "hevc",
            VideoCodec::Av1 => "av1",
            VideoCodec::Vp9 => "vp9",
            VideoCodec::Other(_) => "other",
        }
    }
}

/// Audio codecs we recognise. Only AAC is muxed; the others are relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    Mp3,
    Opus,
    Other(u32),
}

impl AudioCodec {
    /// Short codec name for logs and status.
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Aac => "aac",
            AudioCodec::Mp3 => "mp3",
            AudioCodec::Opus => "opus",
            AudioCodec::Other(_) => "other",
        }
    }
}

/// The video sequence header in force.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoConfig {
    pub codec: VideoCodec,
    /// The FLV tag body that carried the sequence header, resent to late RTMP joiners.
    pub flv_body: Bytes,
    /// Codec configuration record (`avcC`, `hvcC`, `av1C`), a slice of `flv_body`.
    pub record: Bytes,
    /// The parsed record, present when the codec is one we mux and its record parsed.
    pub params: Option<VideoParams>,
}

impl VideoConfig {
    /// The H.264 parameters, for the parts that decode pictures (only AVC is decoded).
    pub fn avc(&self) -> Option<&avc::AvcConfig> {
        match &self.params {
            Some(VideoParams::Avc(config)) => Some(config),
            _ => None,
        }
    }
}

/// A parsed video codec configuration record: what a muxer needs to write a sample entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoParams {
    Avc(avc::AvcConfig),
    Hevc(hevc::HevcConfig),
    Av1(av1::Av1Config),
}

impl VideoParams {
    /// Parses `record` for the codecs we mux; `None` for codecs we only relay.
    pub fn parse(codec: VideoCodec, record: &[u8]) -> Option<Result<Self, String>> {
        Some(match codec {
            VideoCodec::Avc => avc::AvcConfig::parse(record)
                .map(VideoParams::Avc)
                .map_err(|e| e.to_string()),
            VideoCodec::Hevc => hevc::HevcConfig::parse(record)
                .map(VideoParams::Hevc)
                .map_err(|e| e.to_string()),
            VideoCodec::Av1 => av1::Av1Config::parse(record)
                .map(VideoParams::Av1)
                .map_err(|e| e.to_string()),
            VideoCodec::Vp9 | VideoCodec::Other(_) => return None,
        })
    }

    /// The displayed picture size in pixels.
    pub fn picture_size(&self) -> (u32, u32) {
        match self {
            VideoParams::Avc(c) => (c.width, c.height),
            VideoParams::Hevc(c) => (c.width, c.height),
            VideoParams::Av1(c) => (c.width, c.height),
        }
    }

    /// RFC 6381 codec string for playlists and status.
    pub fn codec_string(&self) -> String {
        match self {
            VideoParams::Avc(c) => c.codec_string(),
            VideoParams::Hevc(c) => c.codec_string(),
            VideoParams::Av1(c) => c.codec_string(),
        }
    }
}

/// The audio sequence header in force.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioConfig {
    pub codec: AudioCodec,
    /// The FLV tag body that carried the sequence header (or the first frame for codecs
    /// without one), resent to late RTMP joiners.
    pub flv_body: Bytes,
    /// AudioSpecificConfig for AAC, a slice of `flv_body`; empty otherwise.
    pub record: Bytes,
    pub aac: Option<aac::AudioSpecificConfig>,
}

/// The codec configuration a run of packets was encoded with.
///
/// Invariant: `generation` increases by one whenever a sequence header with different bytes
/// arrives, so readers detect a change by comparing generations alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CodecConfig {
    pub generation: u32,
    pub video: Option<VideoConfig>,
    pub audio: Option<AudioConfig>,
    /// The `onMetaData` AMF0 payload (without `@setDataFrame`), resent to late joiners.
    pub metadata: Option<Bytes>,
}

impl CodecConfig {
    /// Whether `other` has the same codec records: a muxer can keep its sample entries (a new
    /// generation may only carry new metadata or repeat a sequence header).
    pub fn same_tracks(&self, other: &CodecConfig) -> bool {
        self.same_video(other)
            && self.audio.as_ref().map(|a| &a.record) == other.audio.as_ref().map(|a| &a.record)
    }

    /// Whether `other` has the same video record: decoded pictures keep their size and
    /// decoder setup across it (a motion clip may span it).
    pub fn same_video(&self, other: &CodecConfig) -> bool {
        self.video.as_ref().map(|v| &v.record) == other.video.as_ref().map(|v| &v.record)
    }

    /// The H.264 parameters in force, if the video is H.264 with a parsed record.
    pub fn avc(&self) -> Option<&avc::AvcConfig> {
        self.video.as_ref()?.avc()
    }
}

/// Whether a muxer whose sample entries came from `current` needs new ones for `next`. A new
/// generation with the same codec records replaces `current`, so the following packets
/// compare by pointer again instead of by record.
pub fn tracks_changed(current: &mut Arc<CodecConfig>, next: &Arc<CodecConfig>) -> bool {
    if Arc::ptr_eq(current, next) {
        return false;
    }
    if current.same_tracks(next) {
        *current = next.clone();
        return false;
    }
    true
}

/// One access unit. The hub shares it as `Arc<Packet>`: one allocation per packet, one
/// reference count per reader.
#[derive(Debug, Clone)]
pub struct Packet {
    pub track: Track,
    /// Decode timestamp in milliseconds, unwrapped past the RTMP 32-bit wrap.
    pub dts_ms: i64,
    /// Composition offset (pts − dts) in milliseconds; non-zero with B-frames.
    pub cts_ms: i32,
    /// A random access point: an IDR/key video frame, or any audio frame.
    pub is_key: bool,
    /// The configuration this packet was encoded with.
    pub config: Arc<CodecConfig>,
    /// The whole FLV tag body as received (relayed unchanged to RTMP players).
    pub flv_body: Bytes,
    /// Where the codec payload starts inside `flv_body`.
    pub payload_offset: usize,
    /// This packet as RTMP chunks for players on message stream 1 (nearly all of them),
    /// built by the first player that sends it and shared by the rest (the hub shares the
    /// packet itself behind an `Arc`), so fan-out costs no copy or encoding per player.
    pub rtmp_chunks: OnceLock<Bytes>,
}

impl Packet {
    /// The codec payload: AVCC length-prefixed NAL units for AVC, a raw frame for AAC.
    pub fn payload(&self) -> Bytes {
        self.flv_body
            .slice(self.payload_offset.min(self.flv_body.len())..)
    }

    /// Presentation timestamp in milliseconds.
    pub fn pts_ms(&self) -> i64 {
        self.dts_ms + i64::from(self.cts_ms)
    }
}

/// The video codec record of an MP4 fixture, for tests of the record parsers.
#[cfg(test)]
pub(crate) fn fixture_video_record(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(path).unwrap();
    let mut cursor = std::io::Cursor::new(data);
    loop {
        match <mp4_atom::Any as mp4_atom::ReadFrom>::read_from(&mut cursor).unwrap() {
            mp4_atom::Any::Moov(moov) => return crate::mux::video_record(&moov).unwrap().1,
            _ => continue,
        }
    }
}
