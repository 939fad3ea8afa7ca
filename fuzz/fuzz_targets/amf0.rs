//! AMF0 decoding. Invariant: what decodes re-encodes to bytes that decode to the same
//! encoding (a fixed point after one round).
#![no_main]
use libfuzzer_sys::fuzz_target;
use reelay::amf0::{decode_all, encode_all};

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = decode_all(data) {
        let once = encode_all(&values);
        let again = decode_all(&once).expect("our own encoding decodes");
        assert_eq!(encode_all(&again), once);
    }
});
