//! Chunk stream + commands + FLV demux after the handshake, as a publisher's bytes reach the
//! server. Invariant: the chunk decoder yields the same messages whatever the split offsets
//! (checked whole vs. split at an offset taken from the input vs. byte by byte).
#![no_main]
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use reelay::flv::Demuxer;
use reelay::rtmp::chunk::{ChunkDecoder, Message};
use reelay::rtmp::protocol::{MediaKind, ProtocolEvent, ServerProtocol};

fn decode(parts: &[&[u8]]) -> (Vec<Message>, bool) {
    let mut decoder = ChunkDecoder::default();
    let mut out = Vec::new();
    for part in parts {
        decoder.push(part);
        loop {
            match decoder.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = usize::from(data[0]) % data.len();
    let body = &data[1..];
    let split = split.min(body.len());
    let (whole, whole_err) = decode(&[body]);
    let (halves, halves_err) = decode(&[&body[..split], &body[split..]]);
    assert_eq!(whole_err, halves_err);
    assert_eq!(whole, halves);
    if body.len() < 512 {
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        let (single, single_err) = decode(&bytes);
        assert_eq!(whole_err, single_err);
        assert_eq!(whole, single);
    }

    // The whole server path: accept everything, demux media.
    let mut protocol = ServerProtocol::after_handshake();
    let mut demuxer = Demuxer::default();
    if protocol.receive(body).is_err() {
        return;
    }
    loop {
        match protocol.poll_event() {
            Ok(Some(ProtocolEvent::Connect { .. })) => protocol.accept_connect(),
            Ok(Some(ProtocolEvent::Publish { stream_id, key, .. })) => {
                protocol.accept_publish(stream_id, &key)
            }
            Ok(Some(ProtocolEvent::Play { stream_id, key })) => {
                protocol.accept_play(stream_id, &key)
            }
            Ok(Some(ProtocolEvent::Media {
                kind,
                timestamp,
                payload,
                ..
            })) => {
                let _ = match kind {
                    MediaKind::Video => demuxer.video(timestamp, payload),
                    MediaKind::Audio => demuxer.audio(timestamp, payload),
                    MediaKind::Data => demuxer.script(&payload),
                };
            }
            Ok(Some(ProtocolEvent::StreamClosed { .. })) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let _ = protocol.take_output();
    let _ = Bytes::new();
});
