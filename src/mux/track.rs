//! Which tracks a recording or segment has, and their `moov` (sample entries, timescales).
//!
//! ISO/IEC 14496-12 (`trak`, `mvex`), 14496-15 (`avc1`/`avcC`, `hvc1`/`hvcC`), AV1-ISOBMFF
//! (`av01`/`av1C`); AAC as `mp4a` + `esds` (14496-14). A track exists only when its codec
//! configuration can be written into a sample entry: H.264, HEVC or AV1 with a parsed record,
//! AAC with a parsed AudioSpecificConfig. Other codecs (VP9, MP3, Opus over Enhanced RTMP) are
//! relayed live but not muxed (the caller logs that once).
//!
//! HEVC is written as `hvc1` (parameter sets only in the sample entry), the form Safari and
//! Chrome require; Enhanced RTMP encoders (OBS, ffmpeg 6+) send them there.

use crate::media::{AudioCodec, CodecConfig, Track, VideoParams};
use bytes::Bytes;
use mp4_atom::{
    Atom, Audio, Av01, Av1c, Avc1, Avcc, Codec, Dinf, Dref, Esds, FourCC, Ftyp, Hdlr, Hvc1, Hvcc,
    Mdhd, Mdia, Minf, Moov, Mp4a, Mvex, Mvhd, Smhd, Stbl, Stco, Stsd, Tkhd, Trak, Trex, Url,
    Visual, Vmhd,
};

/// Video media timescale: 90 kHz, the usual choice, exact for every common frame rate.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Movie (mvhd/tkhd/elst) timescale.
pub const MOVIE_TIMESCALE: u32 = 1_000;
/// Samples per AAC frame (AAC-LC and the core of HE-AAC).
pub const AAC_FRAME_SAMPLES: u32 = 1_024;

/// The sample entry a track is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleEntry {
    Avc1,
    Hvc1,
    Av01,
    Mp4a,
}

/// One muxable track.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackSpec {
    pub track: Track,
    pub entry: SampleEntry,
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
        match &video.params {
            Some(params) => {
                let (width, height) = params.picture_size();
                tracks.push(TrackSpec {
                    track: Track::Video,
                    entry: match params {
                        VideoParams::Avc(_) => SampleEntry::Avc1,
                        VideoParams::Hevc(_) => SampleEntry::Hvc1,
                        VideoParams::Av1(_) => SampleEntry::Av01,
                    },
                    id: 0,
                    timescale: VIDEO_TIMESCALE,
                    record: video.record.clone(),
                    width,
                    height,
                    sample_rate_hz: 0,
                    channels: 0,
                })
            }
            None => skipped.push(video.codec.name()),
        }
    }
    if let Some(audio) = &config.audio {
        match (&audio.codec, &audio.aac) {
            (AudioCodec::Aac, Some(asc)) if asc.sample_rate_hz > 0 => tracks.push(TrackSpec {
                track: Track::Audio,
                entry: SampleEntry::Mp4a,
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

/// Decodes the track's codec record as the configuration box `T` of its sample entry.
fn record_box<T: Atom>(spec: &TrackSpec) -> Result<T, mp4_atom::Error> {
    let mut record: &[u8] = &spec.record;
    T::decode_body(&mut record)
}

fn sample_entry(spec: &TrackSpec) -> Result<Codec, mp4_atom::Error> {
    let visual = Visual {
        data_reference_index: 1,
        width: u16::try_from(spec.width).unwrap_or(u16::MAX),
        height: u16::try_from(spec.height).unwrap_or(u16::MAX),
        ..Visual::default()
    };
    Ok(match spec.entry {
        SampleEntry::Avc1 => Avc1 {
            visual,
            avcc: record_box::<Avcc>(spec)?,
            btrt: None,
            colr: None,
            pasp: None,
            taic: None,
            fiel: None,
            spatial: None,
        }
        .into(),
        SampleEntry::Hvc1 => Hvc1 {
            visual,
            hvcc: record_box::<Hvcc>(spec)?,
            ..Hvc1::default()
        }
        .into(),
        SampleEntry::Av01 => Av01 {
            visual,
            av1c: record_box::<Av1c>(spec)?,
            ..Av01::default()
        }
        .into(),
        SampleEntry::Mp4a => Mp4a {
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

/// The video codec and configuration record of a `moov`'s first video sample entry: the
/// inverse of [`empty_trak`]'s sample entries, for reading our own recordings back (clips)
/// and for pushing MP4 fixtures as Enhanced RTMP in tests.
pub fn video_record(moov: &Moov) -> Option<(crate::media::VideoCodec, Vec<u8>)> {
    use crate::media::VideoCodec;
    let entry = moov
        .trak
        .iter()
        .flat_map(|trak| trak.mdia.minf.stbl.stsd.codecs.first())
        .find(|entry| matches!(entry, Codec::Avc1(_) | Codec::Hvc1(_) | Codec::Av01(_)))?;
    let mut record = Vec::new();
    let codec = match entry {
        Codec::Avc1(e) => e.avcc.encode_body(&mut record).map(|_| VideoCodec::Avc),
        Codec::Hvc1(e) => e.hvcc.encode_body(&mut record).map(|_| VideoCodec::Hevc),
        Codec::Av01(e) => e.av1c.encode_body(&mut record).map(|_| VideoCodec::Av1),
        _ => return None,
    }
    .ok()?;
    Some((codec, record))
}
