use super::*;

fn message(csid: u32, timestamp: u32, type_id: u8, stream_id: u32, len: usize) -> Message {
    Message {
        csid,
        timestamp,
        type_id,
        stream_id,
        payload: Bytes::from(
            (0..len)
                .map(|i| (i * 7 + csid as usize) as u8)
                .collect::<Vec<_>>(),
        ),
    }
}

fn decode_all(decoder: &mut ChunkDecoder) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(m) = decoder.next_message().unwrap() {
        out.push(m);
    }
    out
}

#[test]
fn round_trips_at_every_split_offset() {
    let mut encoder = ChunkEncoder::default();
    let mut wire = BytesMut::new();
    let messages = vec![
        message(3, 0, 20, 0, 40),
        message(6, 1000, 9, 1, 1000),
        message(4, 1020, 8, 1, 300),
        message(70, 0xFF_FFFF + 5, 9, 1, 500), // 2-byte csid, extended timestamp
        message(400, 7, 8, 1, 0),              // 3-byte csid, empty payload
    ];
    for m in &messages {
        encoder.encode(&mut wire, m);
    }
    // Now with a bigger chunk size, announced in-band.
    let mut size = BytesMut::new();
    size.put_u32(4096);
    let set_size = Message {
        csid: 2,
        timestamp: 0,
        type_id: 1,
        stream_id: 0,
        payload: size.freeze(),
    };
    encoder.encode(&mut wire, &set_size);
    encoder.set_chunk_size(4096);
    let big = message(6, 2000, 9, 1, 10_000);
    encoder.encode(&mut wire, &big);
    let mut expected = messages.clone();
    expected.push(set_size);
    expected.push(big);

    for split in 0..wire.len() {
        let mut decoder = ChunkDecoder::default();
        decoder.push(&wire[..split]);
        let mut got = decode_all(&mut decoder);
        decoder.push(&wire[split..]);
        got.extend(decode_all(&mut decoder));
        assert_eq!(got, expected, "split at {split}");
        assert_eq!(decoder.buffered(), 0);
    }
}

/// Builds chunks by hand: (fmt, csid, header bytes after the basic header, payload bytes).
fn chunk(out: &mut Vec<u8>, fmt: u8, csid: u32, header: &[u8], payload: &[u8]) {
    if csid < 64 {
        out.push((fmt << 6) | csid as u8);
    } else {
        out.extend_from_slice(&[fmt << 6, (csid - 64) as u8]);
    }
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
}

fn header0(ts: u32, len: u32, type_id: u8, stream_id: u32) -> Vec<u8> {
    let mut h = ts.to_be_bytes()[1..].to_vec();
    h.extend_from_slice(&len.to_be_bytes()[1..]);
    h.push(type_id);
    h.extend_from_slice(&stream_id.to_le_bytes());
    h
}

#[test]
fn interleaved_chunk_streams_reassemble_separately() {
    // Video (csid 6, 300 bytes) and audio (csid 4, 200 bytes) with 128-byte chunks,
    // interleaved V1 A1 V2 A2 V3: legal RTMP that rml_rtmp 0.8 corrupts.
    let video: Vec<u8> = (0..300).map(|i| (i % 251) as u8).collect();
    let audio: Vec<u8> = (0..200).map(|i| 255 - (i % 251) as u8).collect();
    let mut wire = Vec::new();
    chunk(&mut wire, 0, 6, &header0(40, 300, 9, 1), &video[..128]);
    chunk(&mut wire, 0, 4, &header0(42, 200, 8, 1), &audio[..128]);
    chunk(&mut wire, 3, 6, &[], &video[128..256]);
    chunk(&mut wire, 3, 4, &[], &audio[128..]);
    chunk(&mut wire, 3, 6, &[], &video[256..]);
    let mut decoder = ChunkDecoder::default();
    decoder.push(&wire);
    let got = decode_all(&mut decoder);
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].csid, got[0].timestamp), (4, 42));
    assert_eq!(&got[0].payload[..], &audio[..]);
    assert_eq!((got[1].csid, got[1].timestamp), (6, 40));
    assert_eq!(&got[1].payload[..], &video[..]);
}

#[test]
fn header_compression_accumulates_deltas() {
    let mut wire = Vec::new();
    // fmt0 at 1000, fmt1 +33 with a new length, fmt2 +34, fmt3 repeats the last delta.
    chunk(&mut wire, 0, 6, &header0(1000, 2, 9, 1), &[1, 2]);
    let mut h1 = 33u32.to_be_bytes()[1..].to_vec();
    h1.extend_from_slice(&3u32.to_be_bytes()[1..]);
    h1.push(9);
    chunk(&mut wire, 1, 6, &h1, &[3, 4, 5]);
    chunk(&mut wire, 2, 6, &34u32.to_be_bytes()[1..], &[6, 7, 8]);
    chunk(&mut wire, 3, 6, &[], &[9, 10, 11]);
    let mut decoder = ChunkDecoder::default();
    decoder.push(&wire);
    let got = decode_all(&mut decoder);
    let stamps: Vec<u32> = got.iter().map(|m| m.timestamp).collect();
    assert_eq!(stamps, vec![1000, 1033, 1067, 1101]);
    assert_eq!(&got[3].payload[..], &[9, 10, 11]);
    assert!(got.iter().all(|m| m.stream_id == 1 && m.type_id == 9));
}

#[test]
fn extended_timestamp_repeats_in_continuation_chunks() {
    let payload: Vec<u8> = (0..200).map(|i| i as u8).collect();
    let mut wire = Vec::new();
    let mut h = header0(0xFF_FFFF, 200, 9, 1);
    h.extend_from_slice(&0x0123_4567u32.to_be_bytes());
    chunk(&mut wire, 0, 6, &h, &payload[..128]);
    chunk(
        &mut wire,
        3,
        6,
        &0x0123_4567u32.to_be_bytes(),
        &payload[128..],
    );
    let mut decoder = ChunkDecoder::default();
    decoder.push(&wire);
    let got = decode_all(&mut decoder);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamp, 0x0123_4567);
    assert_eq!(&got[0].payload[..], &payload[..]);
}

#[test]
fn abort_discards_a_partial_message() {
    let mut wire = Vec::new();
    chunk(&mut wire, 0, 6, &header0(0, 300, 9, 1), &[0u8; 128]);
    let mut abort = header0(0, 4, 2, 0);
    abort.truncate(11);
    chunk(&mut wire, 0, 2, &abort, &6u32.to_be_bytes());
    chunk(&mut wire, 0, 6, &header0(5, 3, 9, 1), &[1, 2, 3]);
    let mut decoder = ChunkDecoder::default();
    decoder.push(&wire);
    let got = decode_all(&mut decoder);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].type_id, 2);
    assert_eq!(&got[1].payload[..], &[1, 2, 3]);
}

#[test]
fn protocol_violations_are_errors_with_offsets() {
    let mut decoder = ChunkDecoder::default();
    decoder.push(&[(3 << 6) | 5]);
    assert_eq!(
        decoder.next_message(),
        Err(ChunkError::NoPreviousHeader { offset: 0, csid: 5 })
    );

    let mut decoder = ChunkDecoder::default();
    let mut wire = Vec::new();
    chunk(&mut wire, 0, 2, &header0(0, 4, 1, 0), &0u32.to_be_bytes());
    decoder.push(&wire);
    assert!(matches!(
        decoder.next_message(),
        Err(ChunkError::BadChunkSize { size: 0, .. })
    ));

    let mut decoder = ChunkDecoder::default();
    let mut wire = Vec::new();
    for csid in 3..(3 + MAX_CHUNK_STREAMS as u32 + 1) {
        chunk(&mut wire, 0, csid, &header0(0, 200, 9, 1), &[0u8; 128]);
    }
    decoder.push(&wire);
    assert!(matches!(
        decoder.next_message(),
        Err(ChunkError::TooManyChunkStreams { .. })
    ));

    let mut decoder = ChunkDecoder::default();
    let mut wire = Vec::new();
    chunk(&mut wire, 0, 6, &header0(0, 300, 9, 1), &[0u8; 128]);
    chunk(&mut wire, 0, 6, &header0(0, 3, 9, 1), &[1, 2, 3]);
    decoder.push(&wire);
    assert!(matches!(
        decoder.next_message(),
        Err(ChunkError::MessageInterrupted { csid: 6, .. })
    ));
}

#[test]
fn partial_messages_are_capped() {
    // Many chunk streams each starting a 16 MiB message with a huge chunk size.
    let mut decoder = ChunkDecoder::default();
    let mut wire = Vec::new();
    chunk(
        &mut wire,
        0,
        2,
        &header0(0, 4, 1, 0),
        &(1u32 << 20).to_be_bytes(),
    );
    decoder.push(&wire);
    assert!(decoder.next_message().unwrap().is_some());
    let mut failed = false;
    for csid in 3..40u32 {
        let mut wire = Vec::new();
        chunk(
            &mut wire,
            0,
            csid,
            &header0(0, 0xFF_FFFF, 9, 1),
            &vec![0u8; 1 << 20],
        );
        decoder.push(&wire);
        match decoder.next_message() {
            Ok(None) => {}
            Err(ChunkError::TooMuchBuffered { .. }) => {
                failed = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(failed, "the partial-bytes cap must trip");
}

#[test]
fn messages_never_hold_the_receive_buffer() {
    // Small single-chunk messages, medium single-chunk ones and reassembled ones, delivered
    // in reads of 64 KiB like the publish loop's.
    let mut encoder = ChunkEncoder::default();
    encoder.set_chunk_size(4096);
    let mut wire = BytesMut::new();
    let mut sent = Vec::new();
    for i in 0..400u32 {
        let len = match i % 4 {
            0 => 300,   // audio-sized
            1 => 3000,  // a small video frame: one chunk, its own allocation
            2 => 60,    // tiny
            _ => 20000, // reassembled from five chunks
        };
        let m = message(4 + i % 3, i * 20, 9, 1, len);
        encoder.encode(&mut wire, &m);
        sent.push(m);
    }
    let mut decoder = ChunkDecoder {
        chunk_size: 4096,
        ..ChunkDecoder::default()
    };
    let mut got = Vec::new();
    let mut capacities = Vec::new();
    for read in wire.chunks(64 * 1024) {
        decoder.push(read);
        let input = decoder.input_mut();
        let receive = input.as_ptr() as usize..input.as_ptr() as usize + input.capacity();
        capacities.push(input.capacity());
        for m in decode_all(&mut decoder) {
            let at = m.payload.as_ptr() as usize;
            assert!(
                m.payload.is_empty() || !receive.contains(&at),
                "a {}-byte message points into the receive buffer",
                m.payload.len()
            );
            got.push(m);
        }
    }
    assert_eq!(got, sent);
    // The receive buffer is reused, not regrown: it stays about one read plus a chunk.
    assert!(
        capacities.iter().all(|&c| c <= 2 * 64 * 1024 + 8192),
        "{capacities:?}"
    );
}
