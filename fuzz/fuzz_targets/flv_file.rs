//! FLV file reading. Invariant: every tag body lies inside the input.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use reelay::flv::file::read_tags;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(tags) = read_tags(&bytes) {
        let total: usize = tags.iter().map(|t| t.body.len()).sum();
        assert!(total <= data.len());
    }
});
