//! AudioSpecificConfig parsing. Invariant: a parsed config has a non-zero sample rate.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reelay::media::aac::AudioSpecificConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(asc) = AudioSpecificConfig::parse(data) {
        assert!(asc.channel_config <= 15);
        let _ = asc.channels();
    }
});
