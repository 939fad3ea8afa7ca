//! HEVC (`hvcC` + SPS) and AV1 (`av1C` + sequence header OBU) record parsing, the first byte
//! choosing the codec. Invariant: a parsed record has a sane picture size, and the muxer can
//! turn it into a sample entry that encodes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use reelay::media::{VideoCodec, VideoParams};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, record)) = data.split_first() else {
        return;
    };
    let codec = if selector & 1 == 0 {
        VideoCodec::Hevc
    } else {
        VideoCodec::Av1
    };
    if let Some(Ok(params)) = VideoParams::parse(codec, record) {
        let (width, height) = params.picture_size();
        assert!(width > 0 && width <= 16384);
        assert!(height > 0 && height <= 16384);
        let _ = params.codec_string();
        let config = reelay::media::CodecConfig {
            video: Some(reelay::media::VideoConfig {
                codec,
                flv_body: bytes::Bytes::new(),
                record: bytes::Bytes::copy_from_slice(record),
                params: Some(params),
            }),
            ..Default::default()
        };
        let (tracks, _) = reelay::mux::tracks_for(&config);
        reelay::mux::init_segment(&tracks).expect("a parsed record encodes as a sample entry");
    }
    let _ = reelay::media::hevc::sps_picture_size(record);
});
