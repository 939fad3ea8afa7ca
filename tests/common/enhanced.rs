//! Builds Enhanced-RTMP publisher input from MP4 fixtures.

use bytes::Bytes;
use reelay::flv::file::FlvTag;
use std::path::PathBuf;

/// An MP4 fixture (made by ffmpeg, see tests/fixtures/make-fixtures.sh) as the FLV tags an
/// Enhanced-RTMP encoder (OBS 30+, ffmpeg 6.1+) sends: video as `ExVideoTagHeader` with the
/// codec's FourCC (sequence start with the `hvcC`/`av1C` record, then coded frames), audio as
/// legacy AAC. Debian's ffmpeg 5.1 cannot publish Enhanced RTMP, so tests build it here.
pub fn enhanced_rtmp_tags(fixture: &str) -> Vec<FlvTag> {
    use mp4_atom::ReadFrom;
    use reelay::media::VideoCodec;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let data = std::fs::read(path).unwrap();
    let mut cursor = std::io::Cursor::new(&data);
    let moov = loop {
        if let mp4_atom::Any::Moov(moov) = mp4_atom::Any::read_from(&mut cursor).unwrap() {
            break moov;
        }
    };
    let (codec, record) = reelay::mux::video_record(&moov).unwrap();
    let fourcc: &[u8; 4] = match codec {
        VideoCodec::Hevc => b"hvc1",
        VideoCodec::Av1 => b"av01",
        other => panic!("{other:?} is not an Enhanced-RTMP codec"),
    };
    let size = data.len() as u64;
    let mut reader = mp4::Mp4Reader::read_header(std::io::Cursor::new(data), size).unwrap();
    let mut headers = Vec::new();
    let mut tags = Vec::new();
    let tracks: Vec<(u32, mp4::TrackType, u32, u32)> = reader
        .tracks()
        .values()
        .map(|t| {
            (
                t.track_id(),
                t.track_type().unwrap(),
                t.timescale(),
                t.sample_count(),
            )
        })
        .collect();
    for (id, kind, timescale, count) in tracks {
        let ms = |units: u64| (units * 1000 / u64::from(timescale)) as u32;
        match kind {
            mp4::TrackType::Video => {
                let mut start = vec![0x80 | 0x10]; // ExHeader, keyframe, SequenceStart
                start.extend_from_slice(fourcc);
                start.extend_from_slice(&record);
                headers.push(FlvTag {
                    tag_type: 9,
                    timestamp_ms: 0,
                    body: Bytes::from(start),
                });
            }
            mp4::TrackType::Audio => {
                let track = &reader.tracks()[&id];
                let profile = track.audio_profile().unwrap() as u16;
                let freq = track.sample_freq_index().unwrap() as u16;
                let channels = track.channel_config().unwrap() as u16;
                let asc = (profile << 11) | (freq << 7) | (channels << 3);
                let mut start = vec![0xAF, 0];
                start.extend_from_slice(&asc.to_be_bytes());
                headers.push(FlvTag {
                    tag_type: 8,
                    timestamp_ms: 0,
                    body: Bytes::from(start),
                });
            }
            _ => continue,
        }
        for sample_id in 1..=count {
            let sample = reader.read_sample(id, sample_id).unwrap().unwrap();
            let mut body = Vec::with_capacity(sample.bytes.len() + 8);
            if kind == mp4::TrackType::Video {
                let frame_type = if sample.is_sync { 0x10 } else { 0x20 };
                if codec == VideoCodec::Hevc {
                    body.push(0x80 | frame_type | 1); // CodedFrames, with a composition time
                    body.extend_from_slice(fourcc);
                    let cts = ms(u64::from(sample.rendering_offset.max(0) as u32));
                    body.extend_from_slice(&cts.to_be_bytes()[1..]);
                } else {
                    body.push(0x80 | frame_type | 1);
                    body.extend_from_slice(fourcc);
                }
            } else {
                body.extend_from_slice(&[0xAF, 1]);
            }
            body.extend_from_slice(&sample.bytes);
            tags.push(FlvTag {
                tag_type: if kind == mp4::TrackType::Video { 9 } else { 8 },
                timestamp_ms: ms(sample.start_time),
                body: Bytes::from(body),
            });
        }
    }
    // Interleave as an encoder sends: sequence headers first, then by timestamp.
    tags.sort_by_key(|t| t.timestamp_ms);
    headers.extend(tags);
    headers
}
