//! AVCDecoderConfigurationRecord and SPS parsing. Invariant: a parsed record has a sane
//! picture size and NAL length size.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reelay::media::avc::{sps_picture_size, AvcConfig};

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AvcConfig::parse(data) {
        assert!(config.width > 0 && config.width <= 16384);
        assert!(config.height > 0 && config.height <= 16384);
        assert!(matches!(config.nal_length_size, 1..=4));
        assert!(!config.sps.is_empty());
    }
    let _ = sps_picture_size(data);
});
