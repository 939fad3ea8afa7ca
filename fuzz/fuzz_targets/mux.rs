//! The muxer fed arbitrary packet sequences (timestamps jumping back and forth, any sizes,
//! keyframes anywhere, fragments cut anywhere) never panics, and the finalised file is read
//! back by the independent `mp4` crate listing exactly the samples pushed.
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use reelay::flv::file::{demux_tags, read_tags};
use reelay::media::{Packet, Track};
use reelay::mux::finalize::finalize;
use reelay::mux::{init_segment, tracks_for, Fragmenter};
use std::io::{Cursor, Seek, SeekFrom, Write};
use std::sync::OnceLock;

fn template() -> &'static Packet {
    static PACKET: OnceLock<Packet> = OnceLock::new();
    PACKET.get_or_init(|| {
        let flv = Bytes::from_static(include_bytes!("../../tests/fixtures/obs-like.flv"));
        let tags = read_tags(&flv).expect("fixture parses");
        demux_tags(&tags).into_iter().next().expect("fixture has media")
    })
}

fuzz_target!(|data: &[u8]| {
    let template = template();
    let (tracks, _) = tracks_for(&template.config);
    let mut file = Cursor::new(init_segment(&tracks).expect("init encodes"));
    file.seek(SeekFrom::End(0)).expect("seek");
    let mut fragmenter = Fragmenter::new(tracks);
    let mut dts_ms: i64 = 0;
    let mut pushed = 0u64;
    for record in data.chunks_exact(6) {
        let step = i64::from(i16::from_be_bytes([record[1], record[2]]));
        dts_ms = dts_ms.saturating_add(step);
        let size = usize::from(record[4]) + 1;
        let packet = Packet {
            track: if record[0] & 1 == 0 { Track::Video } else { Track::Audio },
            dts_ms,
            cts_ms: i32::from(record[3] as i8) * 4,
            is_key: record[0] & 2 != 0,
            flv_body: Bytes::from(vec![record[5]; size]),
            payload_offset: usize::from(record[0] >> 5),
            ..template.clone()
        };
        if fragmenter.push(&packet) {
            pushed += 1;
        }
        if record[0] & 4 != 0 || fragmenter.ready_ms() >= 1000 {
            if let Some(fragment) = fragmenter.take_fragment().expect("fragment encodes") {
                file.write_all(&fragment.bytes).expect("write");
            }
        }
    }
    fragmenter.finish(None);
    if let Some(fragment) = fragmenter.take_fragment().expect("fragment encodes") {
        file.write_all(&fragment.bytes).expect("write");
    }
    match finalize(&mut file) {
        Ok(done) => {
            assert_eq!(done.samples, pushed);
            let bytes = file.into_inner();
            let size = bytes.len() as u64;
            let reader = mp4::Mp4Reader::read_header(Cursor::new(bytes), size)
                .expect("the mp4 crate reads our file");
            let listed: u64 = reader.tracks().values().map(|t| u64::from(t.sample_count())).sum();
            assert_eq!(listed, pushed);
        }
        Err(_) => assert_eq!(pushed, 0, "a file with samples must finalise"),
    }
});
