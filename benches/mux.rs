//! Muxing and finalising: the fixture through the fragmenter (MB/s of media), and the cost of
//! finalising recordings of 10 and 60 minutes, with tiny and with realistic payloads — the
//! cost follows the number of samples (the `moov` written), not the media size.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use reelay::flv::file::{demux_tags, read_tags};
use reelay::media::{Packet, Track};
use reelay::mux::finalize::finalize;
use reelay::mux::{init_segment, tracks_for, Fragmenter};
use std::io::Cursor;

fn fixture_packets() -> Vec<Packet> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/obs-like.flv");
    let data = Bytes::from(std::fs::read(path).expect("fixture"));
    demux_tags(&read_tags(&data).expect("fixture parses"))
}

/// Muxes packets into a fragmented file with a fragment per second.
fn fragmented(packets: impl Iterator<Item = Packet>, template: &Packet) -> Vec<u8> {
    let (tracks, _) = tracks_for(&template.config);
    let mut file = init_segment(&tracks).expect("init");
    let mut fragmenter = Fragmenter::new(tracks);
    for packet in packets {
        fragmenter.push(&packet);
        if fragmenter.ready_ms() >= 1000 {
            if let Some(f) = fragmenter.take_fragment().expect("fragment") {
                file.extend_from_slice(&f.bytes);
            }
        }
    }
    fragmenter.finish(None);
    if let Some(f) = fragmenter.take_fragment().expect("fragment") {
        file.extend_from_slice(&f.bytes);
    }
    file
}

/// A synthetic recording: 30 fps video (keyframe every 2 s) + 48 kHz AAC for `minutes`.
fn synthetic(template: &Packet, minutes: u64, video_bytes: usize) -> Vec<u8> {
    let video_body = Bytes::from(vec![0u8; video_bytes + 5]);
    let audio_body = Bytes::from(vec![0u8; 2 + 16]);
    let frames = minutes * 60 * 30;
    let audio_frames = minutes * 60 * 48_000 / 1024;
    let video = (0..frames).map(|i| (i as i64 * 1000 / 30, Track::Video, i % 60 == 0));
    let audio = (0..audio_frames).map(|i| (i as i64 * 1024 * 1000 / 48_000, Track::Audio, true));
    let mut timeline: Vec<_> = video.chain(audio).collect();
    timeline.sort_by_key(|(t, track, _)| (*t, *track == Track::Audio));
    let packets = timeline.into_iter().map(|(dts_ms, track, is_key)| Packet {
        track,
        dts_ms,
        is_key,
        cts_ms: 0,
        flv_body: if track == Track::Video {
            video_body.clone()
        } else {
            audio_body.clone()
        },
        payload_offset: if track == Track::Video { 5 } else { 2 },
        ..template.clone()
    });
    fragmented(packets, template)
}

fn bench(c: &mut Criterion) {
    let packets = fixture_packets();
    let media_bytes: usize = packets.iter().map(|p| p.payload().len()).sum();
    let mut group = c.benchmark_group("mux");
    group.throughput(Throughput::Bytes(media_bytes as u64));
    group.bench_function("fixture_to_fragments", |b| {
        b.iter(|| fragmented(packets.iter().cloned(), &packets[0]))
    });
    group.finish();

    let mut group = c.benchmark_group("finalize");
    group.sample_size(10);
    for (name, minutes, video_bytes) in [
        ("10min_16B_frames", 10, 16),
        ("10min_10KiB_frames", 10, 10 * 1024),
        ("60min_16B_frames", 60, 16),
    ] {
        let file = synthetic(&packets[0], minutes, video_bytes);
        group.bench_function(name, |b| {
            b.iter_batched(
                || Cursor::new(file.clone()),
                // Returned, so freeing the buffer is not timed.
                |mut f| {
                    finalize(&mut f).expect("finalises");
                    f
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
