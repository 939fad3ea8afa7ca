//! One thumbnail at 720p and 1080p, from an H.264 High keyframe: decode in a warm decoder
//! (the per-stream decoder the thumbnailer keeps), convert with the stream's matrix, encode
//! JPEG — and each step alone.
//!
//! One 3-second motion clip (480 px, 10 fps GIF) of a 1080p30 OBS-like stream (High, 2
//! B-frames with b-pyramid, 2 s GOP, 6 Mbit/s with sensor-like noise), against decoding every
//! frame of those 3 s (what a decode-everything approach pays). The source is made once with
//! ffmpeg into `target/bench-media/` (the command is in `clip_source`); without ffmpeg the
//! motion clip benches are skipped.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use reelay::flv::file::{demux_tags, read_tags};
use reelay::media::{Packet, Track};
use reelay::picture::annexb::is_reference;
use reelay::picture::convert::{jpeg, to_rgb};
use reelay::picture::motion::{make_clip, plan, ClipSettings, FrameInfo};
use reelay::picture::StreamDecoder;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;

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
        let avc = key.config.avc().expect("H.264").clone();
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

/// The 1080p motion clip source (made with ffmpeg on first use), or `None` without ffmpeg.
fn clip_source() -> Option<Vec<Packet>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-media");
    let path = dir.join("obs-1080p-3.5s.flv");
    if !path.exists() {
        std::fs::create_dir_all(&dir).ok()?;
        let made = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=30",
                "-t",
                "3.5",
            ])
            .args([
                "-vf",
                "noise=alls=6:allf=t",
                "-c:v",
                "libx264",
                "-profile:v",
                "high",
            ])
            .args(["-preset", "veryfast", "-pix_fmt", "yuv420p", "-x264-params"])
            .arg("keyint=60:min-keyint=60:scenecut=0:bframes=2:b-pyramid=normal")
            .args([
                "-b:v", "6000k", "-maxrate", "6000k", "-bufsize", "12000k", "-an",
            ])
            .arg(&path)
            .status();
        if !matches!(made, Ok(s) if s.success()) {
            eprintln!("skipping motion clip benches: ffmpeg could not make {path:?}");
            return None;
        }
    }
    let data = Bytes::from(std::fs::read(&path).ok()?);
    let packets = demux_tags(&read_tags(&data).ok()?);
    Some(
        packets
            .into_iter()
            .filter(|p| p.track == Track::Video)
            .collect(),
    )
}

fn motion_clips(c: &mut Criterion) {
    let Some(video) = clip_source() else {
        return;
    };
    let avc = video[0].config.avc().expect("H.264").clone();
    let payloads: Vec<Bytes> = video.iter().map(|p| p.payload()).collect();
    let frames: Vec<(i64, &[u8])> = video
        .iter()
        .zip(&payloads)
        .map(|(p, b)| (p.dts_ms + i64::from(p.cts_ms), &b[..]))
        .collect();
    let settings = ClipSettings {
        width: 480,
        fps: 10,
        duration_ms: 3000,
    };
    let infos: Vec<FrameInfo> = frames
        .iter()
        .map(|&(pts_ms, f)| FrameInfo {
            pts_ms,
            is_reference: is_reference(&avc, f),
        })
        .collect();
    let planned = plan(&infos, settings.fps, settings.duration_ms).expect("a plan");
    let in_clip = frames.iter().filter(|(pts, _)| *pts < 3000).count();
    eprintln!(
        "3 s clip: {} of {in_clip} frames decoded, {} shown",
        planned.decode.len(),
        planned.shown.len()
    );
    let mut decoder = StreamDecoder::new().expect("decoder");
    let mut group = c.benchmark_group("motion clip");
    group.sample_size(10);
    group.bench_function("1080p 3 s → 480 px GIF at 10 fps", |b| {
        b.iter(|| black_box(make_clip(&mut decoder, &avc, &frames, settings).expect("clip")))
    });
    group.bench_function("1080p 3 s: planned frames decoded only", |b| {
        b.iter(|| {
            let wanted = planned.decode.iter().map(|&i| frames[i].1);
            black_box(decoder.decode_sequence(&avc, wanted, |_| {}))
        })
    });
    group.bench_function("1080p 3 s: every frame decoded", |b| {
        b.iter(|| {
            let all = frames.iter().take(in_clip).map(|f| f.1);
            black_box(decoder.decode_sequence(&avc, all, |_| {}))
        })
    });
    group.finish();
}

criterion_group!(benches, thumbnails, motion_clips);
criterion_main!(benches);
