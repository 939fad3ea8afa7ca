//! HLS: the cost of segmenting a stream (the fixture through the segmenter, per second of
//! media and MB/s) and of keeping a long replay's playlist (adding a segment and rendering
//! the live window and the whole playlist after 24 hours of 2-second segments).

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use reelay::flv::file::{demux_tags, read_tags};
use reelay::hls::{MediaPlaylist, Retention, SegmentEntry, Segmenter, SegmenterSettings};
use std::hint::black_box;

fn entry(sequence: u64) -> SegmentEntry {
    SegmentEntry {
        sequence,
        uri: reelay::storage::layout::hls_segment_name(sequence),
        duration_secs: 2.0,
        init: reelay::storage::layout::hls_init_name(1),
        discontinuity: false,
        program_date_time: "2026-11-21T10:00:00.000Z".into(),
    }
}

fn segmenting(c: &mut Criterion) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/obs-like.flv");
    let data = Bytes::from(std::fs::read(path).expect("fixture"));
    let packets = demux_tags(&read_tags(&data).expect("fixture parses"));
    let media: usize = packets.iter().map(|p| p.payload().len()).sum();
    let mut group = c.benchmark_group("hls");
    group.throughput(Throughput::Bytes(media as u64));
    group.bench_function("segment the 6 s fixture", |b| {
        b.iter(|| {
            let mut segmenter = Segmenter::new(SegmenterSettings::default());
            let mut bytes = 0;
            for packet in &packets {
                if let Some(segment) = segmenter.push(packet).expect("segment") {
                    bytes += segment.bytes.len();
                }
            }
            if let Some(segment) = segmenter.finish().expect("segment") {
                bytes += segment.bytes.len();
            }
            black_box(bytes)
        })
    });
    group.finish();

    let day = 24 * 3600 / 2;
    let mut long = MediaPlaylist::new(Retention::Everything);
    for sequence in 0..day {
        long.push(entry(sequence));
    }
    let mut group = c.benchmark_group("hls playlist, 24 h of 2 s segments");
    group.bench_function("add a segment", |b| {
        b.iter_batched_ref(
            || {
                let mut p = MediaPlaylist::new(Retention::LastSecs(3600.0));
                for sequence in 0..1800 {
                    p.push(entry(sequence));
                }
                p
            },
            |p| black_box(p.push(entry(1800))),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("render the live window", |b| {
        b.iter(|| black_box(long.render_last(6, "session/").len()))
    });
    group.bench_function("render the whole replay", |b| {
        b.iter(|| black_box(long.render("").len()))
    });
    group.finish();
}

criterion_group!(benches, segmenting);
criterion_main!(benches);
