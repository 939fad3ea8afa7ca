//! FLV tag bodies → codec-level [`Packet`]s (Adobe FLV spec v10.1 §E.4, and Enhanced RTMP v2
//! for HEVC/AV1/VP9 FourCC video and FourCC audio).
//!
//! [`Demuxer`] is the per-publisher state: the codec configuration in force (a new sequence
//! header with different bytes starts a new generation) and the timestamp unwrapper. It does no
//! I/O and never logs; problems come back as [`FlvError`] (the tag is unusable) or as a
//! `warning` on a configuration change (the stream is relayed but cannot be processed).
//!
//! Not here: RTMP chunking (`rtmp`), the ring (`hub`), FLV files (see [`file`]).

pub mod file;

use crate::amf0;
use crate::media::{
    aac::AudioSpecificConfig, AudioCodec, AudioConfig, CodecConfig, Packet, Track, VideoCodec,
    VideoConfig, VideoParams,
};
use bytes::Bytes;
use std::sync::Arc;
use thiserror::Error;

/// Why a tag body was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FlvError {
    #[error("{track} tag body too short ({len} bytes)")]
    TooShort { track: &'static str, len: usize },
    #[error("script data is not AMF0: {0}")]
    Script(#[from] amf0::Amf0Error),
}

/// What one tag body turned into.
#[derive(Debug)]
pub enum Demuxed {
    /// A media frame to push into the hub.
    Packet(Packet),
    /// The codec configuration changed (new generation). `warning` says why the stream can be
    /// relayed but not processed (for example, an AVC record we could not parse).
    ConfigChanged { warning: Option<String> },
    /// Nothing to deliver (end of sequence, unknown script data, a repeated sequence header).
    Nothing,
}

/// Unwraps RTMP's 32-bit millisecond timestamps into a monotonic 64-bit clock.
///
/// Each raw value is mapped to the 64-bit value nearest to the previous one, so the clock
/// continues across the wrap at 2^32 ms (~49.7 days) and tolerates small reordering between
/// audio and video.
#[derive(Debug, Default, Clone)]
pub struct TimestampUnwrapper {
    last_ms: Option<i64>,
}

impl TimestampUnwrapper {
    /// Maps a raw 32-bit timestamp onto the unwrapped clock.
    pub fn unwrap_ms(&mut self, raw_ms: u32) -> i64 {
        const WRAP: i64 = 1 << 32;
        let raw = i64::from(raw_ms);
        let value = match self.last_ms {
            None => raw,
            Some(last) => {
                let base = last.div_euclid(WRAP) * WRAP + raw;
                [base - WRAP, base, base + WRAP]
                    .into_iter()
                    .min_by_key(|candidate| (candidate - last).abs())
                    .unwrap_or(base)
            }
        };
        self.last_ms = Some(value);
        value
    }
}

/// Reads a big-endian signed 24-bit composition time offset.
fn si24(bytes: &[u8]) -> i32 {
    let raw = (i32::from(bytes[0]) << 16) | (i32::from(bytes[1]) << 8) | i32::from(bytes[2]);
    (raw << 8) >> 8
}

fn fourcc(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn video_codec_from_fourcc(code: u32) -> VideoCodec {
    match &code.to_be_bytes() {
        b"avc1" => VideoCodec::Avc,
        b"hvc1" => VideoCodec::Hevc,
        b"av01" => VideoCodec::Av1,
        b"vp09" => VideoCodec::Vp9,
        _ => VideoCodec::Other(code),
    }
}

fn audio_codec_from_fourcc(code: u32) -> AudioCodec {
    match &code.to_be_bytes() {
        b"mp4a" => AudioCodec::Aac,
        b"Opus" => AudioCodec::Opus,
        b".mp3" => AudioCodec::Mp3,
        _ => AudioCodec::Other(code),
    }
}

/// A classified video tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTag {
    pub codec: VideoCodec,
    pub kind: TagKind,
    pub is_key: bool,
    pub cts_ms: i32,
    /// Where the codec payload (record or frame) starts in the body.
    pub payload_offset: usize,
}

/// What a tag body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagKind {
    SequenceHeader,
    Frame,
    /// End of sequence, metadata, command frames, multitrack: nothing to deliver.
    Other,
}

/// Classifies a video tag body (legacy FLV or Enhanced RTMP).
pub fn parse_video_tag(body: &[u8]) -> Result<VideoTag, FlvError> {
    let too_short = || FlvError::TooShort {
        track: "video",
        len: body.len(),
    };
    let first = *body.first().ok_or_else(too_short)?;
    if first & 0x80 != 0 {
        // Enhanced RTMP: [IsExHeader:1][FrameType:3][PacketType:4][FourCC:32]
        let frame_type = (first >> 4) & 0x07;
        let packet_type = first & 0x0F;
        let code = fourcc(body.get(1..5).ok_or_else(too_short)?);
        let codec = video_codec_from_fourcc(code);
        let is_key = frame_type == 1;
        let tag = |kind, cts_ms, payload_offset| VideoTag {
            codec,
            kind,
            is_key,
            cts_ms,
            payload_offset,
        };
        return Ok(match packet_type {
            0 => tag(TagKind::SequenceHeader, 0, 5),
            1 if matches!(codec, VideoCodec::Avc | VideoCodec::Hevc) => {
                let cts = si24(body.get(5..8).ok_or_else(too_short)?);
                tag(TagKind::Frame, cts, 8)
            }
            1 | 3 => tag(TagKind::Frame, 0, 5),
            _ => tag(TagKind::Other, 0, 5),
        });
    }
    let frame_type = first >> 4;
    let codec_id = first & 0x0F;
    let is_key = frame_type == 1;
    if frame_type == 5 {
        return Ok(VideoTag {
            codec: VideoCodec::Other(u32::from(codec_id)),
            kind: TagKind::Other,
            is_key: false,
            cts_ms: 0,
            payload_offset: 1,
        });
    }
    if codec_id == 7 {
        let header = body.get(1..5).ok_or_else(too_short)?;
        let kind = match header[0] {
            0 => TagKind::SequenceHeader,
            1 => TagKind::Frame,
            _ => TagKind::Other,
        };
        return Ok(VideoTag {
            codec: VideoCodec::Avc,
            kind,
            is_key,
            cts_ms: si24(&header[1..4]),
            payload_offset: 5,
        });
    }
    Ok(VideoTag {
        codec: VideoCodec::Other(u32::from(codec_id)),
        kind: TagKind::Frame,
        is_key,
        cts_ms: 0,
        payload_offset: 1,
    })
}

/// A classified audio tag body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioTag {
    pub codec: AudioCodec,
    pub kind: TagKind,
    pub payload_offset: usize,
}

/// Classifies an audio tag body (legacy FLV or Enhanced RTMP FourCC audio).
pub fn parse_audio_tag(body: &[u8]) -> Result<AudioTag, FlvError> {
    let too_short = || FlvError::TooShort {
        track: "audio",
        len: body.len(),
    };
    let first = *body.first().ok_or_else(too_short)?;
    let sound_format = first >> 4;
    match sound_format {
        10 => {
            let packet_type = *body.get(1).ok_or_else(too_short)?;
            Ok(AudioTag {
                codec: AudioCodec::Aac,
                kind: if packet_type == 0 {
                    TagKind::SequenceHeader
                } else {
                    TagKind::Frame
                },
                payload_offset: 2,
            })
        }
        9 => {
            let packet_type = first & 0x0F;
            let codec = audio_codec_from_fourcc(fourcc(body.get(1..5).ok_or_else(too_short)?));
            let kind = match packet_type {
                0 => TagKind::SequenceHeader,
                1 => TagKind::Frame,
                _ => TagKind::Other,
            };
            Ok(AudioTag {
                codec,
                kind,
                payload_offset: 5,
            })
        }
        2 | 14 => Ok(AudioTag {
            codec: AudioCodec::Mp3,
            kind: TagKind::Frame,
            payload_offset: 1,
        }),
        other => Ok(AudioTag {
            codec: AudioCodec::Other(u32::from(other)),
            kind: TagKind::Frame,
            payload_offset: 1,
        }),
    }
}

/// Per-publisher demuxing state. See the module docs.
#[derive(Debug, Default)]
pub struct Demuxer {
    config: Arc<CodecConfig>,
    clock: TimestampUnwrapper,
}

impl Demuxer {
    /// A demuxer for a publisher that continues a stream: its first configuration gets a
    /// generation after `generation`, so readers see the change.
    pub fn continuing_after(generation: u32) -> Self {
        Demuxer {
            config: Arc::new(CodecConfig {
                generation,
                ..CodecConfig::default()
            }),
            clock: TimestampUnwrapper::default(),
        }
    }

    /// The configuration in force, for late joiners.
    pub fn config(&self) -> &Arc<CodecConfig> {
        &self.config
    }

    fn bump(&mut self, change: impl FnOnce(&mut CodecConfig)) {
        let mut next = (*self.config).clone();
        change(&mut next);
        next.generation = self.config.generation.wrapping_add(1);
        self.config = Arc::new(next);
    }

    fn packet(
        &mut self,
        track: Track,
        raw_ts: u32,
        body: Bytes,
        offset: usize,
        cts: i32,
        key: bool,
    ) -> Demuxed {
        Demuxed::Packet(Packet {
            track,
            dts_ms: self.clock.unwrap_ms(raw_ts),
            cts_ms: cts,
            is_key: key,
            config: self.config.clone(),
            flv_body: body,
            payload_offset: offset,
            rtmp_chunks: Default::default(),
        })
    }

    /// Handles one video tag body with its RTMP timestamp.
    pub fn video(&mut self, raw_ts: u32, body: Bytes) -> Result<Demuxed, FlvError> {
        let tag = parse_video_tag(&body)?;
        match tag.kind {
            TagKind::Other => Ok(Demuxed::Nothing),
            TagKind::Frame => Ok(self.packet(
                Track::Video,
                raw_ts,
                body,
                tag.payload_offset,
                tag.cts_ms,
                tag.is_key,
            )),
            TagKind::SequenceHeader => {
                let record = body.slice(tag.payload_offset.min(body.len())..);
                if let Some(current) = &self.config.video {
                    if current.codec == tag.codec && current.record == record {
                        return Ok(Demuxed::Nothing);
                    }
                }
                let (params, warning) = match VideoParams::parse(tag.codec, &record) {
                    Some(Ok(params)) => (Some(params), None),
                    Some(Err(e)) => (
                        None,
                        Some(format!(
                            "{} sequence header unusable: {e}",
                            tag.codec.name()
                        )),
                    ),
                    None => (
                        None,
                        Some(format!(
                            "video codec {} is relayed but not processed",
                            tag.codec.name()
                        )),
                    ),
                };
                self.bump(|c| {
                    c.video = Some(VideoConfig {
                        codec: tag.codec,
                        flv_body: body.clone(),
                        record,
                        params,
                    })
                });
                Ok(Demuxed::ConfigChanged { warning })
            }
        }
    }

    /// Handles one audio tag body with its RTMP timestamp.
    pub fn audio(&mut self, raw_ts: u32, body: Bytes) -> Result<Demuxed, FlvError> {
        let tag = parse_audio_tag(&body)?;
        match tag.kind {
            TagKind::Other => Ok(Demuxed::Nothing),
            TagKind::SequenceHeader => {
                let record = body.slice(tag.payload_offset.min(body.len())..);
                if let Some(current) = &self.config.audio {
                    if current.codec == tag.codec && current.record == record {
                        return Ok(Demuxed::Nothing);
                    }
                }
                let mut warning = None;
                let aac = match tag.codec {
                    AudioCodec::Aac => match AudioSpecificConfig::parse(&record) {
                        Ok(asc) => Some(asc),
                        Err(e) => {
                            warning = Some(format!("AAC sequence header unusable: {e}"));
                            None
                        }
                    },
                    _ => None,
                };
                self.bump(|c| {
                    c.audio = Some(AudioConfig {
                        codec: tag.codec,
                        flv_body: body.clone(),
                        record,
                        aac,
                    })
                });
                Ok(Demuxed::ConfigChanged { warning })
            }
            TagKind::Frame => {
                let known = self.config.audio.as_ref().map(|a| a.codec);
                if known != Some(tag.codec) && tag.codec != AudioCodec::Aac {
                    // Codecs without a sequence header: the first frame announces the codec.
                    self.bump(|c| {
                        c.audio = Some(AudioConfig {
                            codec: tag.codec,
                            flv_body: Bytes::new(),
                            record: Bytes::new(),
                            aac: None,
                        })
                    });
                }
                Ok(self.packet(Track::Audio, raw_ts, body, tag.payload_offset, 0, true))
            }
        }
    }

    /// Handles a script data body (`@setDataFrame`/`onMetaData`); keeps `onMetaData` for
    /// late joiners. Other script data is ignored.
    pub fn script(&mut self, body: &[u8]) -> Result<Demuxed, FlvError> {
        let values = amf0::decode_all(body)?;
        let mut values = values.as_slice();
        if values.first().and_then(amf0::Value::as_str) == Some("@setDataFrame") {
            values = &values[1..];
        }
        if values.first().and_then(amf0::Value::as_str) != Some("onMetaData") {
            return Ok(Demuxed::Nothing);
        }
        let metadata = amf0::encode_all(values).freeze();
        if self.config.metadata.as_ref() == Some(&metadata) {
            return Ok(Demuxed::Nothing);
        }
        // Metadata is not codec configuration: replace it without a new generation.
        let mut next = (*self.config).clone();
        next.metadata = Some(metadata);
        self.config = Arc::new(next);
        Ok(Demuxed::Nothing)
    }
}

#[cfg(test)]
mod tests;
