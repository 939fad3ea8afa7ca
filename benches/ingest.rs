//! Ingest hot path: the bytes of a real publisher session (the OBS-like fixture, chunked as
//! OBS does at 4096 bytes and as the 128-byte default) through the server protocol (chunk
//! reassembly, command dispatch) and the FLV demuxer into packets. Reported in bytes/s.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reelay::amf0::{encode_all, object, Value};
use reelay::flv::file::read_tags;
use reelay::flv::{Demuxed, Demuxer};
use reelay::rtmp::chunk::{ChunkEncoder, Message};
use reelay::rtmp::protocol::{MediaKind, ProtocolEvent, ServerProtocol};

fn session_bytes(chunk_size: usize) -> Bytes {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/obs-like.flv");
    let data = Bytes::from(std::fs::read(path).expect("fixture"));
    let tags = read_tags(&data).expect("fixture parses");
    let mut out = BytesMut::new();
    let mut encoder = ChunkEncoder::default();
    let mut send = |encoder: &ChunkEncoder, csid, type_id, stream_id, ts, payload: Bytes| {
        encoder.encode(
            &mut out,
            &Message {
                csid,
                timestamp: ts,
                type_id,
                stream_id,
                payload,
            },
        )
    };
    let mut size = BytesMut::new();
    size.extend_from_slice(&(chunk_size as u32).to_be_bytes());
    send(&encoder, 2, 1, 0, 0, size.freeze());
    encoder.set_chunk_size(chunk_size);
    let connect = encode_all(&[
        Value::String("connect".into()),
        Value::Number(1.0),
        object(&[("app", Value::String("live".into()))]),
    ]);
    send(&encoder, 3, 20, 0, 0, connect.freeze());
    for tag in &tags {
        let csid = if tag.tag_type == 8 { 4 } else { 6 };
        send(
            &encoder,
            csid,
            tag.tag_type,
            1,
            tag.timestamp_ms,
            tag.body.clone(),
        );
    }
    out.freeze()
}

fn ingest(bytes: &Bytes, read_size: usize) -> usize {
    let mut protocol = ServerProtocol::after_handshake();
    let mut demuxer = Demuxer::default();
    let mut packets = 0;
    for part in bytes.chunks(read_size) {
        protocol.receive(part).expect("valid session");
        while let Some(event) = protocol.poll_event().expect("valid session") {
            match event {
                ProtocolEvent::Connect { .. } => protocol.accept_connect(),
                ProtocolEvent::Media {
                    kind,
                    timestamp,
                    payload,
                    ..
                } => {
                    let out = match kind {
                        MediaKind::Video => demuxer.video(timestamp, payload),
                        MediaKind::Audio => demuxer.audio(timestamp, payload),
                        MediaKind::Data => demuxer.script(&payload),
                    };
                    if let Ok(Demuxed::Packet(_)) = out {
                        packets += 1;
                    }
                }
                _ => {}
            }
        }
        let _ = protocol.take_output();
    }
    packets
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("chunk_parse_and_demux");
    for chunk_size in [4096usize, 128] {
        let bytes = session_bytes(chunk_size);
        assert!(ingest(&bytes, 65536) > 400);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("chunk_{chunk_size}_reads_64k"), |b| {
            b.iter(|| ingest(&bytes, 65536))
        });
        group.bench_function(format!("chunk_{chunk_size}_reads_1460"), |b| {
            b.iter(|| ingest(&bytes, 1460))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
