//! Arbitrary bytes as an AVC configuration record and frames through our decode paths:
//! record parsing, AVCC → Annex B, OpenH264, colour conversion, and (odd-length inputs) the
//! motion clip path — frame planning, a multi-frame decode, scaling, palette and GIF.
//! OpenH264 is C++ inside our process: a crash here is a crash of the server, so this runs
//! long.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reelay::media::avc::AvcConfig;
use reelay::picture::convert::to_rgb;
use reelay::picture::motion::{make_clip, ClipSettings};
use reelay::picture::StreamDecoder;
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

fuzz_target!(|data: &[u8]| {
    let clip_mode = data.len() % 2 == 1;
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (record, frame) = rest.split_at(split);
    let Ok(config) = AvcConfig::parse(record) else {
        return;
    };
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
