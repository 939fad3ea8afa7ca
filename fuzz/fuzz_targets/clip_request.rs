//! Clip requests: an arbitrary replay playlist (as read back from disk) and arbitrary
//! start/end never panic, and an accepted plan stays inside what the playlist lists.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reelay::hls::clip::{parse_playlist, plan_clip};

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let start = f64::from_le_bytes(data[..8].try_into().unwrap_or_default());
    let end = f64::from_le_bytes(data[8..16].try_into().unwrap_or_default());
    let text = String::from_utf8_lossy(&data[16..]);
    let Ok(segments) = parse_playlist(&text, None) else {
        return;
    };
    if let Ok(plan) = plan_clip(&segments, start, end) {
        assert!(!plan.segments.is_empty());
        assert!(plan.segments.iter().all(|uri| segments.iter().any(|s| &s.uri == uri)));
        assert!(end > start && start >= 0.0);
    }
});
