//! One thumbnail at 720p and 1080p, from an H.264 High keyframe: decode in a warm decoder
//! (the per-stream decoder the thumbnailer keeps), convert with the stream's matrix, encode
//! JPEG — and each step alone.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use reelay::flv::file::{demux_tags, read_tags};
use reelay::media::{Packet, Track};
use reelay::picture::convert::{jpeg, to_rgb};
use reelay::picture::StreamDecoder;
use std::hint::black_box;

fn keyframe(name: &str) -> Packet {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let data = Bytes::from(std::fs::read(path).expect("fixture"));
    demux_tags(&read_tags(&data).expect("fixture parses"))
        .into_iter()
        .find(|p| p.track == Track::Video && p.is_key)
        .expect("a keyframe")
}

fn thumbnails(c: &mut Criterion) {
    let mut group = c.benchmark_group("thumbnail");
    group.sample_size(30);
    for (label, file) in [
        ("720p", "keyframe-720p.flv"),
        ("1080p", "keyframe-1080p.flv"),
    ] {
        let key = keyframe(file);
        let avc = key
            .config
            .video
            .as_ref()
            .and_then(|v| v.avc())
            .expect("H.264")
            .clone();
        let payload = key.payload();
        let mut decoder = StreamDecoder::new().expect("decoder");
        let picture = decoder.decode_keyframe(&avc, &payload).expect("decodes");
        let rgb = to_rgb(&picture, avc.color).expect("converts");
        group.bench_function(format!("{label}: decode + convert + JPEG"), |b| {
            b.iter(|| {
                let picture = decoder.decode_keyframe(&avc, &payload).expect("decodes");
                let rgb = to_rgb(&picture, avc.color).expect("converts");
                black_box(jpeg(&rgb, picture.width, picture.height, 85).expect("encodes"))
            })
        });
        group.bench_function(format!("{label}: decode (warm decoder)"), |b| {
            b.iter(|| black_box(decoder.decode_keyframe(&avc, &payload).expect("decodes")))
        });
        group.bench_function(format!("{label}: I420 → RGB"), |b| {
            b.iter(|| black_box(to_rgb(&picture, avc.color).expect("converts")))
        });
        group.bench_function(format!("{label}: JPEG q85"), |b| {
            b.iter(|| black_box(jpeg(&rgb, picture.width, picture.height, 85).expect("encodes")))
        });
    }
    group.finish();
}

criterion_group!(benches, thumbnails);
criterion_main!(benches);
