//! FLV video, audio and script tag bodies through the demuxer. Invariants: packets carry a
//! payload slice inside their body and a config generation that never decreases.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use reelay::flv::{Demuxed, Demuxer};

fuzz_target!(|data: &[u8]| {
    let mut demuxer = Demuxer::default();
    let mut last_generation = 0;
    // Records: [kind, len, ts0, ts1, body...]
    let mut rest = data;
    while rest.len() >= 4 {
        let kind = rest[0] % 3;
        let len = usize::from(rest[1]).min(rest.len() - 4);
        let ts = u32::from(u16::from_be_bytes([rest[2], rest[3]])) * 1000;
        let body = Bytes::copy_from_slice(&rest[4..4 + len]);
        rest = &rest[4 + len..];
        let result = match kind {
            0 => demuxer.video(ts, body),
            1 => demuxer.audio(ts, body),
            _ => demuxer.script(&body),
        };
        if let Ok(Demuxed::Packet(packet)) = result {
            assert!(packet.payload_offset <= packet.flv_body.len());
            let _ = packet.payload();
        }
        assert!(demuxer.config().generation >= last_generation);
        last_generation = demuxer.config().generation;
    }
});
