use super::*;
use crate::flv::file::{demux_tags, read_tags};
use crate::media::{Packet, Track};
use crate::mux::finalize::finalize;
use bytes::Bytes;
use std::io::Cursor;

fn fixture_packets() -> Vec<Packet> {
    let data = Bytes::from(std::fs::read("tests/fixtures/obs-like.flv").unwrap());
    demux_tags(&read_tags(&data).unwrap())
}

fn segment_all(packets: &[Packet]) -> Vec<Segment> {
    let mut segmenter = Segmenter::new(SegmenterSettings::default());
    let mut segments = Vec::new();
    for packet in packets {
        segments.extend(segmenter.push(packet).unwrap());
    }
    segments.extend(segmenter.finish().unwrap());
    segments
}

/// The first sample of a segment is a sync sample (its `trun` first flags say so).
fn starts_with_keyframe(segment: &[u8]) -> bool {
    let mut buf = segment;
    let moof = <mp4_atom::Moof as mp4_atom::Decode>::decode(&mut buf).unwrap();
    let video = moof.traf.iter().find(|t| t.tfhd.track_id == 1).unwrap();
    let flags = video.trun[0].samples.iter().next().unwrap().flags.unwrap();
    flags & 0x0001_0000 == 0
}

#[test]
fn fixture_is_cut_at_each_gop_and_the_segments_hold_every_sample() {
    let packets = fixture_packets();
    let segments = segment_all(&packets);
    // 6 s at a 2 s GOP: cuts at 2 s and 4 s.
    let durations: Vec<f64> = segments.iter().map(|s| s.duration_secs).collect();
    assert_eq!(segments.len(), 3, "{durations:?}");
    assert!((durations[0] - 2.0).abs() < 0.01 && (durations[1] - 2.0).abs() < 0.01);
    let total: f64 = durations.iter().sum();
    assert!((total - 6.0).abs() < 0.05, "{durations:?}");
    assert!(segments.iter().all(|s| starts_with_keyframe(&s.bytes)));
    assert_eq!(segments[0].new_init.as_ref().unwrap().number, 1);
    assert!(segments[1..]
        .iter()
        .all(|s| s.new_init.is_none() && s.init == 1));
    assert_eq!(
        segments.iter().map(|s| s.sequence).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(segments.iter().all(|s| !s.discontinuity));

    // Init + segments is one fragmented file listing every packet after the first keyframe.
    let mut file = segments[0].new_init.clone().unwrap().bytes;
    for segment in &segments {
        file.extend_from_slice(&segment.bytes);
    }
    let mut cursor = Cursor::new(file);
    let done = finalize(&mut cursor).unwrap();
    let first_key = packets
        .iter()
        .position(|p| p.track == Track::Video && p.is_key)
        .unwrap();
    assert_eq!(done.samples, (packets.len() - first_key) as u64);
    assert!(
        (done.duration_secs - 6.0).abs() < 0.1,
        "{}",
        done.duration_secs
    );
}

#[test]
fn a_codec_change_starts_a_new_init_and_a_discontinuity() {
    let mut packets = fixture_packets();
    let half = packets.len() / 2;
    // The second half carries a different (but valid) configuration generation.
    let mut other = (*packets[half].config).clone();
    other.generation += 1;
    if let Some(video) = other.video.as_mut() {
        let mut record = video.record.to_vec();
        record.push(0); // trailing byte: a different record, still parseable
        video.record = Bytes::from(record);
    }
    let other = std::sync::Arc::new(other);
    let restart = packets[half..]
        .iter()
        .position(|p| p.track == Track::Video && p.is_key)
        .unwrap()
        + half;
    for packet in &mut packets[restart..] {
        packet.config = other.clone();
    }
    let segments = segment_all(&packets);
    let switched = segments.iter().position(|s| s.init == 2).unwrap();
    assert!(segments[switched].discontinuity);
    assert!(segments[switched].new_init.is_some());
    assert!(segments[..switched].iter().all(|s| s.init == 1));
    assert!(segments.iter().all(|s| starts_with_keyframe(&s.bytes)));
}

fn entry(sequence: u64, duration_secs: f64, init: &str, discontinuity: bool) -> SegmentEntry {
    SegmentEntry {
        sequence,
        uri: format!("{sequence}.m4s"),
        duration_secs,
        init: init.into(),
        discontinuity,
        program_date_time: "2026-11-21T10:00:00.000Z".into(),
    }
}

#[test]
fn last_n_seconds_keeps_n_plus_at_most_one_segment_and_counts_what_left() {
    let mut playlist = MediaPlaylist::new(Retention::LastSecs(10.0));
    let mut removed = Vec::new();
    for i in 0..20 {
        let init = if i < 8 { "init-1.mp4" } else { "init-2.mp4" };
        removed.extend(playlist.push(entry(i, 2.0, init, i == 8)));
        assert!(playlist.duration_secs() < 10.0 + 2.0 + 1e-9);
        assert!(playlist.duration_secs() >= 10.0 || i < 5);
    }
    assert_eq!(removed.len(), 15);
    let text = playlist.render("");
    let parsed = hls_m3u8::MediaPlaylist::try_from(text.as_str()).unwrap();
    assert_eq!(parsed.media_sequence, 15);
    assert_eq!(parsed.segments.iter().count(), 5);
    assert_eq!(parsed.discontinuity_sequence, 1, "{text}");
    assert!(
        parsed.playlist_type.is_none(),
        "a sliding window is not an EVENT playlist"
    );
    assert!(text.contains("#EXT-X-MAP:URI=\"init-2.mp4\""), "{text}");
    assert!(!text.contains("init-1.mp4"), "{text}");
}

#[test]
fn event_playlist_ends_with_endlist_and_the_live_window_is_prefixed() {
    let mut playlist = MediaPlaylist::new(Retention::Everything);
    for i in 0..10 {
        assert!(playlist
            .push(entry(i, 2.002, "init-1.mp4", false))
            .is_empty());
    }
    let live = playlist.render_last(3, "abc/");
    let parsed = hls_m3u8::MediaPlaylist::try_from(live.as_str()).unwrap();
    assert_eq!(parsed.media_sequence, 7);
    assert_eq!(parsed.segments.iter().count(), 3);
    assert!(live.contains("#EXT-X-MAP:URI=\"abc/init-1.mp4\""), "{live}");
    assert!(live.contains("\nabc/9.m4s\n"), "{live}");
    assert!(!live.contains("PLAYLIST-TYPE"), "{live}");
    playlist.end();
    let replay = playlist.render("");
    let parsed = hls_m3u8::MediaPlaylist::try_from(replay.as_str()).unwrap();
    assert!(parsed.has_end_list);
    assert_eq!(parsed.segments.iter().count(), 10);
    assert_eq!(parsed.target_duration.as_secs(), 2);
    assert!((parsed.duration().as_secs_f64() - 20.02).abs() < 0.01);
    assert!(replay.contains("#EXT-X-PLAYLIST-TYPE:EVENT"));
    assert_eq!(replay.matches("#EXT-X-PROGRAM-DATE-TIME").count(), 10);
}
