use super::file::read_tags;
use super::*;

fn fixture_tags() -> Vec<file::FlvTag> {
    let data = Bytes::from(std::fs::read("tests/fixtures/obs-like.flv").unwrap());
    read_tags(&data).unwrap()
}

fn demux_all(tags: &[file::FlvTag]) -> (Demuxer, Vec<Packet>) {
    let mut demuxer = Demuxer::default();
    let mut packets = Vec::new();
    for tag in tags {
        let out = match tag.tag_type {
            8 => demuxer.audio(tag.timestamp_ms, tag.body.clone()).unwrap(),
            9 => demuxer.video(tag.timestamp_ms, tag.body.clone()).unwrap(),
            _ => demuxer.script(&tag.body).unwrap(),
        };
        if let Demuxed::Packet(p) = out {
            packets.push(p);
        }
    }
    (demuxer, packets)
}

#[test]
fn demuxes_obs_like_fixture() {
    let (demuxer, packets) = demux_all(&fixture_tags());
    let config = demuxer.config();
    assert_eq!(
        config.generation, 2,
        "one video and one audio sequence header"
    );
    let avc = config.avc().unwrap();
    assert_eq!((avc.width, avc.height, avc.profile_idc), (640, 360, 100));
    let asc = config.audio.as_ref().unwrap().aac.unwrap();
    assert_eq!((asc.sample_rate_hz, asc.channels()), (48000, 2));
    assert!(config.metadata.is_some());

    let video: Vec<_> = packets.iter().filter(|p| p.track == Track::Video).collect();
    assert_eq!(video.len(), 180);
    assert_eq!(video.iter().filter(|p| p.is_key).count(), 3);
    assert!(video[0].is_key);
    assert!(video.iter().any(|p| p.cts_ms > 0), "B-frames have offsets");
    assert!(video.windows(2).all(|w| w[0].dts_ms <= w[1].dts_ms));
    // AVCC payload: 4-byte lengths that add up to the payload.
    let payload = video[0].payload();
    let mut pos = 0;
    while pos < payload.len() {
        let len = u32::from_be_bytes([
            payload[pos],
            payload[pos + 1],
            payload[pos + 2],
            payload[pos + 3],
        ]) as usize;
        pos += 4 + len;
    }
    assert_eq!(pos, payload.len());
}

#[test]
fn repeated_sequence_header_keeps_generation_and_changed_one_bumps_it() {
    let tags = fixture_tags();
    let (mut demuxer, _) = demux_all(&tags);
    let header = tags
        .iter()
        .find(|t| t.tag_type == 9 && t.body[1] == 0)
        .unwrap();
    assert!(matches!(
        demuxer.video(9000, header.body.clone()).unwrap(),
        Demuxed::Nothing
    ));
    let mut changed = header.body.to_vec();
    let last = changed.len() - 1;
    changed[last] ^= 0x01; // a different PPS byte
    assert!(matches!(
        demuxer.video(9000, Bytes::from(changed)).unwrap(),
        Demuxed::ConfigChanged { .. }
    ));
    assert_eq!(demuxer.config().generation, 3);
}

#[test]
fn timestamps_unwrap_past_32_bits() {
    let mut clock = TimestampUnwrapper::default();
    assert_eq!(clock.unwrap_ms(u32::MAX - 10), i64::from(u32::MAX) - 10);
    assert_eq!(clock.unwrap_ms(5), (1i64 << 32) + 5);
    // Slight reordering across the wrap goes back, not forward by 49 days.
    assert_eq!(clock.unwrap_ms(u32::MAX - 2), i64::from(u32::MAX) - 2);
    assert_eq!(clock.unwrap_ms(20), (1i64 << 32) + 20);
}

#[test]
fn enhanced_rtmp_hevc_is_recognised_and_relayed() {
    let mut demuxer = Demuxer::default();
    let mut seq = vec![0x80 | 0x10, b'h', b'v', b'c', b'1'];
    seq.extend_from_slice(&[1, 2, 3]);
    match demuxer.video(0, Bytes::from(seq)).unwrap() {
        Demuxed::ConfigChanged { warning } => assert!(warning.unwrap().contains("hevc")),
        other => panic!("{other:?}"),
    }
    // Coded frames with a composition time offset.
    let frame = vec![0x80 | 0x10 | 1, b'h', b'v', b'c', b'1', 0, 0, 40, 9, 9];
    match demuxer.video(33, Bytes::from(frame)).unwrap() {
        Demuxed::Packet(p) => {
            assert!(p.is_key);
            assert_eq!(p.cts_ms, 40);
            assert_eq!(&p.payload()[..], &[9, 9]);
            assert_eq!(p.config.video.as_ref().unwrap().codec, VideoCodec::Hevc);
        }
        other => panic!("{other:?}"),
    }
    // CodedFramesX for AV1: no offset field.
    let av1 = vec![0x80 | 0x20 | 3, b'a', b'v', b'0', b'1', 7];
    match demuxer.video(66, Bytes::from(av1)).unwrap() {
        Demuxed::Packet(p) => assert_eq!((p.is_key, &p.payload()[..]), (false, &[7u8][..])),
        other => panic!("{other:?}"),
    }
}

#[test]
fn negative_composition_offsets_are_signed() {
    let tag = parse_video_tag(&[0x27, 1, 0xFF, 0xFF, 0xF6, 0]).unwrap();
    assert_eq!(tag.cts_ms, -10);
}

#[test]
fn short_bodies_are_errors_not_panics() {
    let mut demuxer = Demuxer::default();
    for body in [&[][..], &[0x17], &[0x17, 1, 0], &[0x90, b'h']] {
        assert!(demuxer.video(0, Bytes::copy_from_slice(body)).is_err());
    }
    for body in [&[][..], &[0xAF], &[0x90, b'O']] {
        assert!(demuxer.audio(0, Bytes::copy_from_slice(body)).is_err());
    }
}

#[test]
fn unparseable_avc_record_is_a_warning_not_an_error() {
    let mut demuxer = Demuxer::default();
    match demuxer
        .video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 9, 9]))
        .unwrap()
    {
        Demuxed::ConfigChanged { warning } => assert!(warning.is_some()),
        other => panic!("{other:?}"),
    }
}
