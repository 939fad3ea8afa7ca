//! Reading a regular MP4's `moov` back into samples and a codec configuration: the inverse of
//! `finalize`, for cutting clips out of recordings. Pure over the decoded `moov`.

use crate::media::{
    aac::AudioSpecificConfig, AudioCodec, AudioConfig, CodecConfig, Track, VideoConfig, VideoParams,
};
use bytes::Bytes;
use mp4_atom::{Atom, Codec, Moov, StszSamples};

/// Where one sample is and when it plays (media units of its track).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRef {
    pub offset: u64,
    pub size: u32,
    pub dts: u64,
    pub cts: i64,
    pub sync: bool,
}

/// One track's samples in decode order.
#[derive(Debug, Clone)]
pub struct TrackSamples {
    pub track: Track,
    pub timescale: u32,
    pub samples: Vec<SampleRef>,
    /// Where the last sample ends (media units).
    pub end: u64,
}

impl TrackSamples {
    /// Media units to milliseconds.
    pub fn ms(&self, units: i64) -> i64 {
        units.saturating_mul(1000) / i64::from(self.timescale.max(1))
    }
}

/// The sample tables of every audio and video track. Malformed tables give fewer samples,
/// never a panic (counts come from a file).
pub fn sample_tables(moov: &Moov) -> Vec<TrackSamples> {
    let mut out = Vec::new();
    for trak in &moov.trak {
        let track = match &trak.mdia.hdlr.handler {
            h if *h == mp4_atom::FourCC::new(b"vide") => Track::Video,
            h if *h == mp4_atom::FourCC::new(b"soun") => Track::Audio,
            _ => continue,
        };
        let stbl = &trak.mdia.minf.stbl;
        let sizes: Vec<u32> = match &stbl.stsz.samples {
            StszSamples::Identical { count, size } => {
                vec![*size; usize::try_from(*count).unwrap_or(0).min(1 << 24)]
            }
            StszSamples::Different { sizes } => sizes.clone(),
        };
        let count = sizes.len();
        let mut durations = Vec::with_capacity(count);
        for entry in &stbl.stts.entries {
            for _ in 0..entry.sample_count {
                if durations.len() == count {
                    break;
                }
                durations.push(u64::from(entry.sample_delta));
            }
        }
        let mut offsets_cts = Vec::with_capacity(count);
        for entry in stbl.ctts.iter().flat_map(|c| &c.entries) {
            for _ in 0..entry.sample_count {
                if offsets_cts.len() == count {
                    break;
                }
                offsets_cts.push(entry.sample_offset);
            }
        }
        let chunk_offsets: Vec<u64> = match (&stbl.co64, &stbl.stco) {
            (Some(co64), _) => co64.entries.clone(),
            (None, Some(stco)) => stco.entries.iter().map(|&o| u64::from(o)).collect(),
            (None, None) => Vec::new(),
        };
        let sync: Option<Vec<u32>> = stbl.stss.as_ref().map(|s| s.entries.clone());
        let mut samples = Vec::with_capacity(count);
        let mut index = 0usize;
        let mut dts = 0u64;
        let entries = &stbl.stsc.entries;
        for (chunk, &chunk_offset) in chunk_offsets.iter().enumerate() {
            let chunk_number = u32::try_from(chunk + 1).unwrap_or(u32::MAX);
            let per_chunk = entries
                .iter()
                .rev()
                .find(|e| e.first_chunk <= chunk_number)
                .map_or(0, |e| e.samples_per_chunk);
            let mut offset = chunk_offset;
            for _ in 0..per_chunk {
                let Some(&size) = sizes.get(index) else {
                    break;
                };
                let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
                samples.push(SampleRef {
                    offset,
                    size,
                    dts,
                    cts: offsets_cts.get(index).copied().unwrap_or(0),
                    sync: sync
                        .as_ref()
                        .is_none_or(|s| s.binary_search(&number).is_ok()),
                });
                offset = offset.saturating_add(u64::from(size));
                dts = dts.saturating_add(durations.get(index).copied().unwrap_or(0));
                index += 1;
            }
        }
        out.push(TrackSamples {
            track,
            timescale: trak.mdia.mdhd.timescale,
            samples,
            end: dts,
        });
    }
    out
}

/// The codec configuration the file's sample entries describe (what `mux::tracks_for` needs
/// to write the same tracks again).
pub fn codec_config(moov: &Moov) -> CodecConfig {
    let mut config = CodecConfig::default();
    for trak in &moov.trak {
        let Some(entry) = trak.mdia.minf.stbl.stsd.codecs.first() else {
            continue;
        };
        let mut record = Vec::new();
        let video = match entry {
            Codec::Avc1(e) => e
                .avcc
                .encode_body(&mut record)
                .ok()
                .map(|_| crate::media::VideoCodec::Avc),
            Codec::Hvc1(e) => e
                .hvcc
                .encode_body(&mut record)
                .ok()
                .map(|_| crate::media::VideoCodec::Hevc),
            Codec::Av01(e) => e
                .av1c
                .encode_body(&mut record)
                .ok()
                .map(|_| crate::media::VideoCodec::Av1),
            Codec::Mp4a(e) => {
                let asc = e
                    .esds
                    .es_desc
                    .dec_config
                    .dec_specific
                    .as_ref()
                    .map(|d| Bytes::from(d.raw.clone()))
                    .unwrap_or_default();
                config.audio = Some(AudioConfig {
                    codec: AudioCodec::Aac,
                    flv_body: Bytes::new(),
                    aac: AudioSpecificConfig::parse(&asc).ok(),
                    record: asc,
                });
                None
            }
            _ => None,
        };
        if let Some(codec) = video {
            let params = VideoParams::parse(codec, &record).and_then(Result::ok);
            config.video = Some(VideoConfig {
                codec,
                flv_body: Bytes::new(),
                record: Bytes::from(record),
                params,
            });
        }
    }
    config
}
