//! Arbitrary bytes as an AVC configuration record and frames through our decode paths:
//! record parsing, AVCC → Annex B, OpenH264, colour conversion; (length ≡ 1 mod 3) the
//! motion clip path — frame planning, a multi-frame decode, scaling, palette and GIF; and
//! (length ≡ 2 mod 3) the ABR transcode path — the continuous decoder, scaling to a profile
//! size taken from the input (odd, tiny and oversized ones included), the OpenH264 encoder,
//! and its output wrapped in FLV tag bodies through the demuxer.
//! OpenH264 is C++ inside our process: a crash here is a crash of the server, so this runs
//! long.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reelay::media::avc::AvcConfig;
use reelay::picture::convert::to_rgb;
use reelay::picture::motion::{make_clip, ClipSettings};
use reelay::picture::decode::LiveDecoder;
use reelay::picture::scale::FrameScaler;
use reelay::picture::StreamDecoder;
use reelay::processing::TranscodeProfile;
use reelay::transcode::encode::{self, RenditionEncoder};
use std::cell::RefCell;

thread_local! {
    static DECODER: RefCell<Option<StreamDecoder>> = const { RefCell::new(None) };
}

/// Splits AVCC data into frames of one NAL unit each (the rest, if any, as a last frame).
fn frames_of(data: &[u8], length_size: usize) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let Some(prefix) = data.get(pos..pos + length_size) else {
            frames.push(&data[pos..]);
            break;
        };
        let len = prefix.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        let end = (pos + length_size).saturating_add(len).min(data.len());
        frames.push(&data[pos..end]);
        pos = end;
    }
    frames
}

/// The transcode path of one rendition over `frames`.
fn transcode(config: &AvcConfig, frames: &[&[u8]], size: (u32, u32)) {
    let Ok(mut decoder) = LiveDecoder::new() else {
        return;
    };
    let profile = TranscodeProfile {
        width: size.0,
        height: size.1,
        kbps: 100,
        fps: 15,
    };
    let mut scaler = encode::supported(&profile).then(|| FrameScaler::new(size.0, size.1));
    let mut encoder = RenditionEncoder::new(&profile, 15.0).ok();
    let mut demuxer = reelay::flv::Demuxer::default();
    let mut on_picture = |out: reelay::picture::decode::LivePicture<'_>| {
        let (Some(scaler), Some(encoder)) = (scaler.as_mut(), encoder.as_mut()) else {
            return;
        };
        let Ok(scaled) = scaler.scale(&out.picture.to_picture()) else {
            return;
        };
        if let Ok(Some(frame)) = encoder.encode(&scaled, out.pts_ms.max(0) as u64, out.key) {
            if let Some((sps, pps)) = &frame.parameter_sets {
                let header = encode::flv_sequence_header(&encode::avc_record(sps, pps));
                let _ = demuxer.video(out.pts_ms as u32, header.into());
            }
            let _ = demuxer.video(out.pts_ms as u32, encode::flv_frame(&frame).into());
        }
    };
    for (i, frame) in frames.iter().enumerate() {
        let pts = i as i64 * 33 + if i % 2 == 1 { 66 } else { 0 };
        if decoder
            .decode(config, 0, frame, (pts, i == 0), &mut on_picture)
            .is_err()
        {
            return;
        }
    }
    let _ = decoder.flush(&mut on_picture);
}

fuzz_target!(|data: &[u8]| {
    let clip_mode = data.len() % 3 == 1;
    let transcode_mode = data.len() % 3 == 2;
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (record, frame) = rest.split_at(split);
    let Ok(config) = AvcConfig::parse(record) else {
        return;
    };
    if transcode_mode {
        let length_size = usize::from(config.nal_length_size.clamp(1, 4));
        // The profile size from the input's last byte: even, odd, and too large ones.
        let last = usize::from(data.last().copied().unwrap_or(0));
        let size = ([16, 64, 65, 4002][last % 4], [16, 36, 37, 2400][last / 4 % 4]);
        transcode(&config, &frames_of(frame, length_size), size);
        return;
    }
    DECODER.with_borrow_mut(|decoder| {
        if decoder.is_none() {
            *decoder = StreamDecoder::new().ok();
        }
        let Some(decoder) = decoder.as_mut() else { return };
        if clip_mode {
            let length_size = usize::from(config.nal_length_size.clamp(1, 4));
            let frames: Vec<(i64, &[u8])> = frames_of(frame, length_size)
                .into_iter()
                .enumerate()
                // A B-frame-like presentation order: every other frame shown late.
                .map(|(i, f)| (i as i64 * 33 + if i % 2 == 1 { 66 } else { 0 }, f))
                .collect();
            let settings = ClipSettings {
                width: 64,
                fps: 10,
                duration_ms: 1000,
            };
            let _ = make_clip(decoder, &config, &frames, settings);
        } else if let Ok(picture) = decoder.decode_keyframe(&config, frame) {
            let _ = to_rgb(&picture, config.color);
        }
    });
});
