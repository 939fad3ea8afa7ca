//! Which tracks a recording or segment has, and their `moov` (sample entries, timescales).
//!
//! ISO/IEC 14496-12 (`trak`, `mvex`) and 14496-15 (`avc1`/`avcC`); AAC as `mp4a` + `esds`
//! (14496-14). A track exists only when its codec configuration can be written into a sample
//! entry: H.264 with a parsed `avcC`, AAC with a parsed AudioSpecificConfig. Other codecs are
//! relayed live but not muxed (the caller logs that once).

use crate::media::{AudioCodec, CodecConfig, Track, VideoCodec};
use bytes::Bytes;
use mp4_atom::{
    Atom, Audio, Avc1, Avcc, Codec, Dinf, Dref, Esds, FourCC, Ftyp, Hdlr, Mdhd, Mdia, Minf, Moov,
    Mp4a, Mvex, Mvhd, Smhd, Stbl, Stco, Stsd, Tkhd, Trak, Trex, Url, Visual, Vmhd,
};

/// Video media timescale: 90 kHz, the usual choice, exact for every common frame rate.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Movie (mvhd/tkhd/elst) timescale.
pub const MOVIE_TIMESCALE: u32 = 1_000;
/// Samples per AAC frame (AAC-LC and the core of HE-AAC).
pub const AAC_FRAME_SAMPLES: u32 = 1_024;

/// One muxable track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackSpec {
    pub track: Track,
    /// 1-based `track_id`, in the order video, audio.
    pub id: u32,
    pub timescale: u32,
    /// The codec record the sample entry was built from; a different record needs a new init.
    pub record: Bytes,
    pub width: u32,
    pub height: u32,
    pub sample_rate_hz: u32,
    pub channels: u8,
}

impl TrackSpec {
    /// Duration of one frame when timestamps cannot tell (the last sample, a timestamp jump).
    pub fn nominal_duration(&self) -> u32 {
        match self.track {
            Track::Video => VIDEO_TIMESCALE / 30,
            Track::Audio => AAC_FRAME_SAMPLES,
        }
    }

    /// Milliseconds to this track's media units.
    pub fn units_from_ms(&self, ms: i64) -> i64 {
        ms.saturating_mul(i64::from(self.timescale)) / 1000
    }
}

/// The tracks a configuration can be muxed into, and the names of codecs left out.
pub fn tracks_for(config: &CodecConfig) -> (Vec<TrackSpec>, Vec<&'static str>) {
    let mut tracks = Vec::new();
    let mut skipped = Vec::new();
    if let Some(video) = &config.video {
        match (&video.codec, &video.avc) {
            (VideoCodec::Avc, Some(avc)) => tracks.push(TrackSpec {
                track: Track::Video,
                id: 0,
                timescale: VIDEO_TIMESCALE,
                record: video.record.clone(),
                width: avc.width,
                height: avc.height,
                sample_rate_hz: 0,
                channels: 0,
            }),
            (codec, _) => skipped.push(codec.name()),
        }
    }
    if let Some(audio) = &config.audio {
        match (&audio.codec, &audio.aac) {
            (AudioCodec::Aac, Some(asc)) if asc.sample_rate_hz > 0 => tracks.push(TrackSpec {
                track: Track::Audio,
                id: 0,
                timescale: asc.sample_rate_hz,
                record: audio.record.clone(),
                width: 0,
                height: 0,
                sample_rate_hz: asc.sample_rate_hz,
                channels: asc.channels(),
            }),
            (codec, _) => skipped.push(codec.name()),
        }
    }
    for (index, track) in tracks.iter_mut().enumerate() {
        track.id = u32::try_from(index + 1).unwrap_or(u32::MAX);
    }
    (tracks, skipped)
}

/// One brand list for both forms of a recording, so finalising never rewrites `ftyp`.
pub fn ftyp() -> Ftyp {
    Ftyp {
        major_brand: FourCC::new(b"isom"),
        minor_version: 0x200,
        compatible_brands: vec![
            FourCC::new(b"isom"),
            FourCC::new(b"iso2"),
            FourCC::new(b"iso6"),
            FourCC::new(b"avc1"),
            FourCC::new(b"mp41"),
        ],
    }
}

fn avcc(spec: &TrackSpec) -> Result<Avcc, mp4_atom::Error> {
    let mut record: &[u8] = &spec.record;
    Avcc::decode_body(&mut record)
}

fn sample_entry(spec: &TrackSpec) -> Result<Codec, mp4_atom::Error> {
    Ok(match spec.track {
        Track::Video => Avc1 {
            visual: Visual {
                data_reference_index: 1,
                width: u16::try_from(spec.width).unwrap_or(u16::MAX),
                height: u16::try_from(spec.height).unwrap_or(u16::MAX),
                ..Visual::default()
            },
            avcc: avcc(spec)?,
            btrt: None,
            colr: None,
            pasp: None,
            taic: None,
            fiel: None,
            spatial: None,
        }
        .into(),
        Track::Audio => Mp4a {
            audio: Audio {
                data_reference_index: 1,
                channel_count: u16::from(spec.channels.max(1)),
                sample_size: 16,
                // The 16.16 field cannot hold rates above 65535 Hz; mdhd has the real one.
                sample_rate: u16::try_from(spec.sample_rate_hz).unwrap_or(0).into(),
            },
            esds: Esds {
                es_desc: mp4_atom::esds::EsDescriptor {
                    es_id: u16::try_from(spec.id).unwrap_or(0),
                    dec_config: mp4_atom::esds::DecoderConfig {
                        object_type_indication: 0x40,
                        stream_type: 5,
                        up_stream: 0,
                        buffer_size_db: Default::default(),
                        max_bitrate: 0,
                        avg_bitrate: 0,
                        dec_specific: Some(mp4_atom::esds::DecoderSpecific {
                            profile: 0,
                            freq_index: 0,
                            chan_conf: 0,
                            raw: spec.record.to_vec(),
                        }),
                    },
                    ..Default::default()
                },
            },
            btrt: None,
            taic: None,
        }
        .into(),
    })
}

/// A track's `trak` with an empty sample table (the fragmented form fills it in `moof`s).
pub fn empty_trak(spec: &TrackSpec) -> Result<Trak, mp4_atom::Error> {
    let video = spec.track == Track::Video;
    Ok(Trak {
        tkhd: Tkhd {
            track_id: spec.id,
            enabled: true,
            in_movie: true,
            volume: if video { 0.into() } else { 1.into() },
            width: u16::try_from(spec.width).unwrap_or(0).into(),
            height: u16::try_from(spec.height).unwrap_or(0).into(),
            alternate_group: if video { 0 } else { 1 },
            ..Tkhd::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: spec.timescale,
                language: "und".into(),
                ..Mdhd::default()
            },
            hdlr: Hdlr {
                handler: FourCC::new(if video { b"vide" } else { b"soun" }),
                name: if video {
                    "VideoHandler"
                } else {
                    "SoundHandler"
                }
                .into(),
            },
            minf: Minf {
                vmhd: video.then(Vmhd::default),
                smhd: (!video).then(Smhd::default),
                dinf: Dinf {
                    dref: Dref {
                        entries: vec![Url::default().into()],
                    },
                },
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![sample_entry(spec)?],
                    },
                    stco: Some(Stco::default()),
                    ..Stbl::default()
                },
                ..Minf::default()
            },
        },
        ..Trak::default()
    })
}

/// The `moov` of the fragmented form: tracks with empty tables plus `mvex`.
pub fn init_moov(tracks: &[TrackSpec]) -> Result<Moov, mp4_atom::Error> {
    Ok(Moov {
        mvhd: Mvhd {
            timescale: MOVIE_TIMESCALE,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: u32::try_from(tracks.len() + 1).unwrap_or(u32::MAX),
            ..Mvhd::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: tracks
                .iter()
                .map(|t| Trex {
                    track_id: t.id,
                    default_sample_description_index: 1,
                    ..Trex::default()
                })
                .collect(),
        }),
        trak: tracks.iter().map(empty_trak).collect::<Result<_, _>>()?,
        ..Moov::default()
    })
}

/// `ftyp` + the fragmented `moov`: the init segment (CMAF header).
pub fn init_segment(tracks: &[TrackSpec]) -> Result<Vec<u8>, mp4_atom::Error> {
    use mp4_atom::Encode;
    let mut out = Vec::with_capacity(1024);
    ftyp().encode(&mut out)?;
    init_moov(tracks)?.encode(&mut out)?;
    Ok(out)
}
