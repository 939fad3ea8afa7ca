use super::finalize::{finalize, RecordingFile};
use super::*;
use crate::flv::file::{demux_tags, read_tags};
use crate::media::{Packet, Track};
use bytes::Bytes;
use std::io::{Cursor, Seek, SeekFrom, Write};

fn fixture_packets() -> Vec<Packet> {
    let data = Bytes::from(std::fs::read("tests/fixtures/obs-like.flv").unwrap());
    demux_tags(&read_tags(&data).unwrap())
}

/// Muxes packets into a fragmented file the way the recorder does (a fragment per second).
fn record(packets: &[Packet]) -> Cursor<Vec<u8>> {
    let (tracks, skipped) = tracks_for(&packets[0].config);
    assert!(skipped.is_empty());
    let mut file = Cursor::new(init_segment(&tracks).unwrap());
    file.seek(SeekFrom::End(0)).unwrap();
    let mut fragmenter = Fragmenter::new(tracks);
    for packet in packets {
        assert!(fragmenter.push(packet));
        if fragmenter.ready_ms() >= 1000 {
            let fragment = fragmenter.take_fragment().unwrap().unwrap();
            file.write_all(&fragment.bytes).unwrap();
        }
    }
    fragmenter.finish(None);
    if let Some(fragment) = fragmenter.take_fragment().unwrap() {
        file.write_all(&fragment.bytes).unwrap();
    }
    file
}

fn top_level_boxes(data: &[u8]) -> Vec<(String, usize)> {
    let mut boxes = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        boxes.push((
            String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned(),
            size,
        ));
        assert!(size >= 8);
        pos += size;
    }
    assert_eq!(pos, data.len(), "boxes cover the file exactly");
    boxes
}

/// Reads a regular MP4 back with the independent `mp4` crate.
fn read_back(data: &[u8]) -> mp4::Mp4Reader<Cursor<Vec<u8>>> {
    mp4::Mp4Reader::read_header(Cursor::new(data.to_vec()), data.len() as u64).unwrap()
}

#[test]
fn fixture_finalises_into_a_regular_mp4_listing_every_sample() {
    let packets = fixture_packets();
    let mut file = record(&packets);
    let fragmented = top_level_boxes(file.get_ref());
    assert!(fragmented.iter().filter(|(k, _)| k == "moof").count() >= 5);

    let done = finalize(&mut file).unwrap();
    assert_eq!(done.samples, packets.len() as u64);
    assert_eq!(done.truncated_bytes, 0);
    let boxes = top_level_boxes(file.get_ref());
    assert!(boxes.iter().all(|(k, _)| k != "moof"), "{boxes:?}");
    assert_eq!(boxes.iter().filter(|(k, _)| k == "moov").count(), 1);
    assert_eq!(boxes.last().unwrap().0, "moov");

    let reader = read_back(file.get_ref());
    assert!(reader.moov.mvex.is_none());
    let video = packets.iter().filter(|p| p.track == Track::Video).count();
    let audio = packets.len() - video;
    let mut counts: Vec<u32> = reader.tracks().values().map(|t| t.sample_count()).collect();
    counts.sort();
    let mut expected = vec![video as u32, audio as u32];
    expected.sort();
    assert_eq!(counts, expected);
    // Every video sample read back is byte-identical to what was pushed.
    let mut reader = reader;
    let video_id = reader
        .tracks()
        .values()
        .find(|t| t.track_type().ok() == Some(mp4::TrackType::Video))
        .unwrap()
        .track_id();
    let pushed: Vec<&Packet> = packets.iter().filter(|p| p.track == Track::Video).collect();
    for (index, packet) in pushed.iter().enumerate() {
        let sample = reader
            .read_sample(video_id, index as u32 + 1)
            .unwrap()
            .unwrap();
        assert_eq!(sample.bytes, packet.payload(), "sample {index}");
        assert_eq!(sample.is_sync, packet.is_key, "sample {index}");
    }
    // The fixture is 6 s long.
    assert!((done.duration_secs - 6.0).abs() < 0.1, "{done:?}");
}

#[test]
fn finalising_twice_changes_nothing() {
    let mut file = record(&fixture_packets());
    let first = finalize(&mut file).unwrap();
    let bytes = file.get_ref().clone();
    let second = finalize(&mut file).unwrap();
    assert_eq!(file.get_ref(), &bytes);
    assert_eq!(first.duration_secs, second.duration_secs);
    assert_eq!(first.samples, second.samples);
}

#[test]
fn a_crash_mid_fragment_is_cut_at_the_last_complete_fragment() {
    let packets = fixture_packets();
    let full = record(&packets).into_inner();
    let complete = {
        let mut f = Cursor::new(full.clone());
        finalize(&mut f).unwrap()
    };
    // Cut inside the last fragment's mdat, and in the middle of a moof header.
    let boxes = top_level_boxes(&full);
    let last_mdat_start: usize = boxes[..boxes.len() - 1].iter().map(|(_, s)| s).sum();
    for cut in [full.len() - 10, last_mdat_start - 20] {
        let mut file = Cursor::new(full[..cut].to_vec());
        let done = finalize(&mut file).unwrap();
        assert!(done.truncated_bytes > 0);
        assert!(done.samples < complete.samples && done.samples > 0);
        let reader = read_back(file.get_ref());
        let listed: u64 = reader
            .tracks()
            .values()
            .map(|t| u64::from(t.sample_count()))
            .sum();
        assert_eq!(listed, done.samples);
    }
}

#[test]
fn a_crash_after_the_final_moov_only_renames_what_is_left() {
    let mut file = record(&fixture_packets());
    let fragmented = file.get_ref().clone();
    let done = finalize(&mut file).unwrap();
    // Simulate the crash: the final moov was synced but no box was renamed yet.
    let mut crashed = fragmented.clone();
    crashed.extend_from_slice(&file.get_ref()[fragmented.len()..]);
    let mut crashed = Cursor::new(crashed);
    let again = finalize(&mut crashed).unwrap();
    assert_eq!(crashed.get_ref(), file.get_ref());
    assert_eq!(again.duration_secs, done.duration_secs);
}

#[test]
fn garbage_and_empty_files_are_refused_without_panicking() {
    for data in [
        vec![],
        vec![0u8; 7],
        b"\0\0\0\x08ftyp\0\0\0\x10junk".to_vec(),
    ] {
        let mut file = Cursor::new(data);
        assert!(finalize(&mut file).is_err());
    }
    // An init segment with no fragment is not playable: refused, file untouched.
    let (tracks, _) = tracks_for(&fixture_packets()[0].config);
    let init = init_segment(&tracks).unwrap();
    let mut file = Cursor::new(init.clone());
    assert!(finalize(&mut file).is_err());
    assert_eq!(file.get_ref(), &init);
    let _ = file.truncate_to(0);
}

fn synthetic(
    track: Track,
    dts_ms: i64,
    config: &std::sync::Arc<crate::media::CodecConfig>,
) -> Packet {
    Packet {
        track,
        dts_ms,
        cts_ms: 0,
        is_key: true,
        config: config.clone(),
        flv_body: Bytes::from_static(&[0xAF, 1, 0x21, 0x10, 0x04]),
        payload_offset: 2,
        rtmp_chunks: Default::default(),
    }
}

#[test]
fn audio_keeps_1024_sample_frames_despite_millisecond_jitter_and_jumps_are_capped() {
    let config = fixture_packets()[0].config.clone();
    let (tracks, _) = tracks_for(&config);
    let audio_only: Vec<TrackSpec> = tracks
        .into_iter()
        .filter(|t| t.track == Track::Audio)
        .collect();
    let rate = audio_only[0].sample_rate_hz as f64;
    let mut fragmenter = Fragmenter::new(audio_only);
    // 100 frames at their true times rounded to ms, then a jump of an hour, then 10 more.
    let mut times: Vec<i64> = (0..100)
        .map(|i| (i as f64 * 1024.0 * 1000.0 / rate).round() as i64)
        .collect();
    let after = 3_600_000;
    times.extend((0..10).map(|i| after + (i as f64 * 1024.0 * 1000.0 / rate).round() as i64));
    for t in &times {
        fragmenter.push(&synthetic(Track::Audio, *t, &config));
    }
    fragmenter.finish(None);
    let fragment = fragmenter.take_fragment().unwrap().unwrap();
    let moof =
        <mp4_atom::Moof as mp4_atom::Decode>::decode(&mut fragment.bytes.as_slice()).unwrap();
    let durations: Vec<u32> = moof.traf[0].trun[0]
        .samples
        .iter()
        .map(|e| e.duration.unwrap())
        .collect();
    assert_eq!(durations.len(), 110);
    assert!(durations.iter().all(|&d| d == 1024), "{durations:?}");
}

#[test]
fn fuzz_found_inputs_finalise_without_panicking() {
    // Every `recover-*` crash the fuzzer found; the first: a tfdt near u64::MAX overflowed
    // the decode-time sum.
    let mut seen = 0;
    for entry in std::fs::read_dir("tests/fixtures/fuzz").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("recover-") {
            continue;
        }
        seen += 1;
        let data = std::fs::read(&path).unwrap();
        let mut file = Cursor::new(data);
        if finalize(&mut file).is_ok() {
            let once = file.get_ref().clone();
            finalize(&mut file).unwrap();
            assert_eq!(file.get_ref(), &once, "{name}");
        }
    }
    assert!(seen > 0);
}

#[test]
fn overlapping_timestamps_do_not_pull_audio_out_of_sync() {
    // The fixture looped with a period shorter than its audio (as a careless encoder or a
    // looping source does), pushed lap after lap: each lap's audio overlaps the next by ~16 ms.
    let packets = fixture_packets();
    let period_ms = 6000;
    let laps = 50;
    let mut looped = Vec::new();
    for lap in 0..laps {
        for packet in &packets {
            let mut packet = packet.clone();
            packet.dts_ms += lap * period_ms;
            looped.push(packet);
        }
    }
    let mut file = record(&looped);
    finalize(&mut file).unwrap();
    let reader = read_back(file.get_ref());
    let mut ends = Vec::new();
    for track in reader.tracks().values() {
        ends.push(track.duration().as_secs_f64());
    }
    let expected = (laps * period_ms) as f64 / 1000.0;
    for end in &ends {
        assert!(
            (end - expected).abs() < 0.1,
            "track ends {ends:?}, source {expected}"
        );
    }
}
