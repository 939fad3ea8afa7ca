//! Writes seed corpora for the fuzz targets from the fixture: a real post-handshake publisher
//! byte stream (connect, createStream, publish, media at the default 128-byte chunk size),
//! a handshake followed by it, real sequence headers, AMF0 command bodies and FLV tag records.
//!
//! `cargo run --example fuzz_seeds` (writes into fuzz/corpus/<target>/).

use bytes::{Bytes, BytesMut};
use reelay::amf0::{encode_all, object, Value};
use reelay::flv::file::{demux_tags, read_tags};
use reelay::mux::finalize::finalize;
use reelay::mux::{init_segment, tracks_for, Fragmenter};
use reelay::rtmp::chunk::{ChunkEncoder, Message};
use rml_rtmp::handshake::{Handshake, PeerType};
use std::path::Path;

fn command(values: &[Value]) -> Bytes {
    encode_all(values).freeze()
}

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = Bytes::from(std::fs::read(root.join("tests/fixtures/obs-like.flv"))?);
    let tags = read_tags(&data)?;
    let corpus = root.join("fuzz/corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)?;
        Ok(())
    };

    let connect = command(&[
        Value::String("connect".into()),
        Value::Number(1.0),
        object(&[
            ("app", Value::String("live".into())),
            ("tcUrl", Value::String("rtmp://localhost/live".into())),
            ("type", Value::String("nonprivate".into())),
        ]),
    ]);
    let create = command(&[
        Value::String("createStream".into()),
        Value::Number(2.0),
        Value::Null,
    ]);
    let publish = command(&[
        Value::String("publish".into()),
        Value::Number(3.0),
        Value::Null,
        Value::String("ABCDE-fGhIj".into()),
        Value::String("live".into()),
    ]);
    let mut stream = BytesMut::new();
    let encoder = ChunkEncoder::default();
    let mut send = |csid, type_id, stream_id, timestamp, payload: Bytes| {
        encoder.encode(
            &mut stream,
            &Message {
                csid,
                timestamp,
                type_id,
                stream_id,
                payload,
            },
        )
    };
    send(3, 20, 0, 0, connect.clone());
    send(3, 20, 0, 0, create);
    send(3, 20, 1, 0, publish.clone());
    for tag in tags.iter().take(40) {
        let csid = if tag.tag_type == 8 { 4 } else { 6 };
        send(csid, tag.tag_type, 1, tag.timestamp_ms, tag.body.clone());
    }
    write(
        "chunk_stream",
        "publish-session",
        &[&[0u8][..], &stream].concat(),
    )?;
    write(
        "chunk_stream",
        "publish-session-split",
        &[&[77u8][..], &stream].concat(),
    )?;

    let mut client = Handshake::new(PeerType::Client);
    let c0c1 = client
        .generate_outbound_p0_and_p1()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut handshake = vec![40u8];
    handshake.extend_from_slice(&c0c1);
    handshake.extend_from_slice(&c0c1[1..]); // a C2-sized echo
    handshake.extend_from_slice(&stream[..stream.len().min(4000)]);
    write("handshake", "c0c1c2-session", &handshake)?;

    for (i, tag) in tags.iter().take(12).enumerate() {
        let kind = match tag.tag_type {
            9 => 0u8,
            8 => 1,
            _ => 2,
        };
        let len = tag.body.len().min(255);
        let mut record = vec![kind, len as u8, 0, i as u8];
        record.extend_from_slice(&tag.body[..len]);
        write("flv_tags", &format!("tag-{i}"), &record)?;
    }
    if let Some(video) = tags.iter().find(|t| t.tag_type == 9 && t.body[1] == 0) {
        write("avc_config", "x264-high", &video.body[5..])?;
    }
    for (name, selector) in [("hevc-aac.mp4", 0u8), ("av1-aac.mp4", 1)] {
        let mut file = std::io::Cursor::new(std::fs::read(root.join("tests/fixtures").join(name))?);
        while let Ok(atom) = <mp4_atom::Any as mp4_atom::ReadFrom>::read_from(&mut file) {
            if let mp4_atom::Any::Moov(moov) = atom {
                if let Some((_, record)) = reelay::mux::video_record(&moov) {
                    let mut seed = vec![selector];
                    seed.extend_from_slice(&record);
                    write("video_config", name, &seed)?;
                }
                break;
            }
        }
    }
    // The fixture's sequence header and first keyframe, as the h264_decode target splits them.
    if let (Some(header), Some(key)) = (
        tags.iter().find(|t| t.tag_type == 9 && t.body[1] == 0),
        tags.iter()
            .find(|t| t.tag_type == 9 && t.body[1] == 1 && t.body[0] >> 4 == 1),
    ) {
        let record = &header.body[5..];
        if record.len() < 256 {
            let mut seed = vec![record.len() as u8];
            seed.extend_from_slice(record);
            seed.extend_from_slice(&key.body[5..]);
            write("h264_decode", "x264-keyframe", &seed)?;
            // The keyframe and the frames after it, sized for the motion clip path
            // (length ≡ 1 mod 3) and the transcode path (≡ 2 mod 3; the last byte, 5, picks a
            // 64x36 rendition).
            let mut sequence = seed.clone();
            let following = tags
                .iter()
                .filter(|t| t.tag_type == 9 && t.body[1] == 1)
                .skip_while(|t| t.body[0] >> 4 != 1)
                .skip(1)
                .take(5);
            for frame in following {
                sequence.extend_from_slice(&frame.body[5..]);
            }
            for (name, remainder) in [("x264-clip", 1), ("x264-transcode", 2)] {
                let mut seed = sequence.clone();
                while seed.len() % 3 != remainder {
                    seed.push(5);
                }
                write("h264_decode", name, &seed)?;
            }
        }
    }
    if let Some(audio) = tags.iter().find(|t| t.tag_type == 8 && t.body[1] == 0) {
        write("aac_config", "lc-48k-stereo", &audio.body[2..])?;
    }
    write("amf0", "connect", &connect)?;
    write("amf0", "publish", &publish)?;
    if let Some(script) = tags.iter().find(|t| t.tag_type == 18) {
        write("amf0", "onmetadata", &script.body)?;
    }
    write("flv_file", "fixture-head", &data[..data.len().min(20_000)])?;

    // A replay playlist as the HLS sink writes it, with a clip request of 1.5 s → 4 s.
    let mut playlist = reelay::hls::MediaPlaylist::new(reelay::hls::Retention::Everything);
    for sequence in 0..4 {
        playlist.push(reelay::hls::SegmentEntry {
            sequence,
            uri: reelay::storage::layout::hls_segment_name(sequence),
            duration_secs: 2.0,
            init: reelay::storage::layout::hls_init_name(1),
            discontinuity: false,
            program_date_time: format!("2026-11-21T10:00:{:02}.000Z", 2 * sequence),
        });
    }
    playlist.end();
    let mut clip = Vec::new();
    clip.extend_from_slice(&1.5f64.to_le_bytes());
    clip.extend_from_slice(&4.0f64.to_le_bytes());
    clip.extend_from_slice(playlist.render("").as_bytes());
    write("clip_request", "replay-4-segments", &clip)?;

    // A short fragmented recording (fragments every ~300 ms), cut mid-fragment, and finalised.
    let packets = demux_tags(&tags);
    let (tracks, _) = tracks_for(&packets[0].config);
    let mut fragmented = init_segment(&tracks)?;
    let mut fragmenter = Fragmenter::new(tracks);
    for packet in packets.iter().take(60) {
        fragmenter.push(packet);
        if fragmenter.ready_ms() >= 300 {
            if let Some(fragment) = fragmenter.take_fragment()? {
                fragmented.extend_from_slice(&fragment.bytes);
            }
        }
    }
    write("recover", "fragmented", &fragmented)?;
    write("recover", "cut", &fragmented[..fragmented.len() * 3 / 4])?;
    let mut finalised = std::io::Cursor::new(fragmented);
    finalize(&mut finalised)?;
    write("recover", "finalised", finalised.get_ref())?;
    // Muxer records: [flags, dts step (i16), cts/4, size-1, fill].
    let records: Vec<u8> = (0..120u8)
        .flat_map(|i| [if i % 30 == 0 { 2 } else { i & 1 }, 0, 21, 8, i, i])
        .collect();
    write("mux", "steady", &records)?;
    // Client input for the catalog and the disk: processing lists, profile names, URL paths
    // (split at newlines by the target), history names.
    let settings: [(&str, &[u8]); 6] = [
        (
            "processing",
            br#"[{"id":"rec","duration":null},{"id":"replay","duration":3600},{"id":"thumbs","interval":10},{"id":"motionclip","interval":30,"duration":3}]"#,
        ),
        ("processing-bad", br#"[{"id":"thumbs","interval":9.5},{"id":"rec","x":1}]"#),
        ("profile", b"vtrans2-852x480x800x25"),
        ("vod-path", b"eu/ABCDE/ABCDE-x1Y2z-1.mp4"),
        (
            "hls-path",
            b"ABCDE-x1Y2z\n6c1a8f1e-93a2-4d0c-9a39-2f43a4f1b9d2\ninit-1.mp4",
        ),
        ("stamp", b"20261121T101500Z.jpg"),
    ];
    for (name, bytes) in settings {
        write("settings_and_keys", name, bytes)?;
    }
    println!("seeds written to {}", corpus.display());
    Ok(())
}
