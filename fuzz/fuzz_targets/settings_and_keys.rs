//! Input that reaches the catalog and the disk from clients: a `processing` list (any JSON),
//! a transcode profile name, URL paths turned into storage keys, and history names read back
//! from disk. Nothing panics; an accepted `processing` list writes back to the same list and
//! stays in range; an accepted profile names itself; every key a URL gives is a valid key
//! without `..`, inside its own top folder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reelay::processing::{Processing, TranscodeProfile, CLIP_SECS, DURATION_SECS, INTERVAL_SECS};
use reelay::storage::layout;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(processing) = Processing::parse(&value, "processing") {
            let again = Processing::from_json_text(&processing.to_json_text())
                .expect("what was accepted parses again");
            assert_eq!(again, processing);
            if let Some(rec) = processing.rec() {
                assert!(rec.split_secs.is_none_or(|s| DURATION_SECS.contains(&s)));
            }
            if let Some(secs) = processing.thumbs_interval_secs() {
                assert!(INTERVAL_SECS.contains(&secs));
            }
            if let Some(motion) = processing.motionclip() {
                assert!(INTERVAL_SECS.contains(&motion.interval_secs));
                assert!(CLIP_SECS.contains(&motion.duration_secs));
            }
        }
    }
    if let Some(profile) = TranscodeProfile::parse(&text) {
        assert_eq!(profile.to_string(), text);
    }
    let parts: Vec<&str> = text.splitn(3, '\n').collect();
    let (a, b, c) = (
        parts.first().copied().unwrap_or(""),
        parts.get(1).copied().unwrap_or(""),
        parts.get(2).copied().unwrap_or(""),
    );
    let keys = [
        layout::vod_from_url(a),
        layout::clip_from_url(a, b),
        layout::hls_file_from_url(a, b, c),
        layout::picture_latest_from_url(a).map(|(key, _)| key),
        layout::picture_history_from_url(a, b).map(|(key, _)| key),
        layout::file_in("hls/x/y", a),
    ];
    for key in keys.into_iter().flatten() {
        assert!(layout::is_valid_key(&key), "{key:?}");
        assert!(!key.split('/').any(|s| s == ".." || s == "." || s.is_empty()));
        assert!(["vod/", "clips/", "hls/", "thumbnails/"]
            .iter()
            .any(|top| key.starts_with(top)));
    }
    if let Some(at) = layout::parse_stamp(&text) {
        assert!(text.starts_with(&layout::stamp(at)));
    }
});
