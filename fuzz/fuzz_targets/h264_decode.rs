//! Arbitrary bytes as an AVC configuration record and a frame through our decode path
//! (record parsing, AVCC → Annex B, OpenH264, colour conversion). OpenH264 is C++ inside our
//! process: a crash here is a crash of the server, so this runs long.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reelay::media::avc::AvcConfig;
use reelay::picture::convert::to_rgb;
use reelay::picture::StreamDecoder;
use std::cell::RefCell;

thread_local! {
    static DECODER: RefCell<Option<StreamDecoder>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
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
        if let Ok(picture) = decoder.decode_keyframe(&config, frame) {
            let _ = to_rgb(&picture, config.color);
        }
    });
});
