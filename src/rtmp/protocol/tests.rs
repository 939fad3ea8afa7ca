use super::*;
use crate::rtmp::chunk::ChunkDecoder;

fn encode(messages: &[Message]) -> BytesMut {
    let encoder = ChunkEncoder::default();
    let mut out = BytesMut::new();
    for m in messages {
        encoder.encode(&mut out, m);
    }
    out
}

fn command_msg(stream_id: u32, values: &[Value]) -> Message {
    Message {
        csid: 3,
        timestamp: 0,
        type_id: msg_type::COMMAND_AMF0,
        stream_id,
        payload: amf0::encode_all(values).freeze(),
    }
}

fn connect_msg() -> Message {
    command_msg(
        0,
        &[
            Value::String("connect".into()),
            Value::Number(1.0),
            object(&[("app", Value::String("live/?x=1".into()))]),
        ],
    )
}

fn events(protocol: &mut ServerProtocol) -> Vec<ProtocolEvent> {
    let mut out = Vec::new();
    while let Some(e) = protocol.poll_event().unwrap() {
        out.push(e);
    }
    out
}

/// Decodes what the server sent (its chunk size switches to 4096 in-band).
fn sent(protocol: &mut ServerProtocol, decoder: &mut ChunkDecoder) -> Vec<Message> {
    decoder.push(&protocol.take_output());
    let mut out = Vec::new();
    while let Some(m) = decoder.next_message().unwrap() {
        out.push(m);
    }
    out
}

#[test]
fn connect_then_create_stream_and_publish() {
    let mut p = ServerProtocol::after_handshake();
    let mut decoder = ChunkDecoder::default();
    p.receive(&encode(&[connect_msg()])).unwrap();
    assert_eq!(
        events(&mut p),
        vec![ProtocolEvent::Connect {
            app: "live".into(),
            tc_url: None
        }]
    );
    p.accept_connect();
    let replies = sent(&mut p, &mut decoder);
    let kinds: Vec<u8> = replies.iter().map(|m| m.type_id).collect();
    assert_eq!(kinds, vec![5, 6, 1, 20]);
    let result = amf0::decode_all(&replies[3].payload).unwrap();
    assert_eq!(result[0].as_str(), Some("_result"));

    p.receive(&encode(&[
        command_msg(
            0,
            &[
                Value::String("releaseStream".into()),
                Value::Number(2.0),
                Value::Null,
                Value::String("k".into()),
            ],
        ),
        command_msg(
            0,
            &[
                Value::String("FCPublish".into()),
                Value::Number(3.0),
                Value::Null,
                Value::String("k".into()),
            ],
        ),
        command_msg(
            0,
            &[
                Value::String("createStream".into()),
                Value::Number(4.0),
                Value::Null,
            ],
        ),
        command_msg(
            1,
            &[
                Value::String("publish".into()),
                Value::Number(5.0),
                Value::Null,
                Value::String("k?token=1".into()),
                Value::String("LIVE".into()),
            ],
        ),
    ]))
    .unwrap();
    assert_eq!(
        events(&mut p),
        vec![ProtocolEvent::Publish {
            stream_id: 1,
            key: "k".into(),
            mode: "live".into()
        }]
    );
    let replies = sent(&mut p, &mut decoder);
    let transactions: Vec<f64> = replies
        .iter()
        .map(|m| amf0::decode_all(&m.payload).unwrap()[1].as_f64().unwrap())
        .collect();
    assert_eq!(transactions, vec![2.0, 3.0, 4.0]);
    let created = amf0::decode_all(&replies[2].payload).unwrap();
    assert_eq!(created[3].as_f64(), Some(1.0));
}

#[test]
fn commands_and_media_before_connect_are_errors() {
    let mut p = ServerProtocol::after_handshake();
    p.receive(&encode(&[command_msg(
        0,
        &[
            Value::String("createStream".into()),
            Value::Number(2.0),
            Value::Null,
        ],
    )]))
    .unwrap();
    assert!(matches!(
        p.poll_event(),
        Err(ProtocolError::NotConnected(_))
    ));
    let mut p = ServerProtocol::after_handshake();
    p.receive(&encode(&[Message {
        csid: 6,
        timestamp: 0,
        type_id: 9,
        stream_id: 1,
        payload: Bytes::from_static(&[0x17, 1, 0, 0, 0]),
    }]))
    .unwrap();
    assert!(matches!(
        p.poll_event(),
        Err(ProtocolError::NotConnected(_))
    ));
    // A connect without an app.
    let mut p = ServerProtocol::after_handshake();
    p.receive(&encode(&[command_msg(
        0,
        &[
            Value::String("connect".into()),
            Value::Number(1.0),
            object(&[]),
        ],
    )]))
    .unwrap();
    assert!(matches!(p.poll_event(), Err(ProtocolError::Command { .. })));
}

#[test]
fn pings_acks_amf3_envelopes_and_aggregates() {
    let mut p = ServerProtocol::after_handshake();
    let mut decoder = ChunkDecoder::default();
    p.receive(&encode(&[connect_msg()])).unwrap();
    events(&mut p);
    p.accept_connect();
    sent(&mut p, &mut decoder);

    // Ping request → ping response with the same timestamp.
    let ping = Message {
        csid: 2,
        timestamp: 0,
        type_id: msg_type::USER_CONTROL,
        stream_id: 0,
        payload: Bytes::from_static(&[0, 6, 0, 0, 0x12, 0x34]),
    };
    // Window ack size 4096 from the peer → we acknowledge every 4096 bytes.
    let window = Message {
        csid: 2,
        timestamp: 0,
        type_id: msg_type::WINDOW_ACK_SIZE,
        stream_id: 0,
        payload: Bytes::from_static(&[0, 0, 0x10, 0]),
    };
    p.receive(&encode(&[ping, window])).unwrap();
    events(&mut p);
    let replies = sent(&mut p, &mut decoder);
    assert!(replies
        .iter()
        .any(|m| m.type_id == 4 && m.payload[..] == [0, 7, 0, 0, 0x12, 0x34]));

    // An AMF3-envelope data message and an aggregate of two FLV tags.
    let mut data = vec![0u8];
    data.extend_from_slice(&amf0::encode_all(&[Value::String("onMetaData".into())]));
    let mut aggregate = Vec::new();
    for (tag_type, ts, body) in [
        (9u8, 1000u32, &[0x17u8, 1, 0, 0, 0, 1][..]),
        (8, 1020, &[0xAF, 1, 2][..]),
    ] {
        aggregate.push(tag_type);
        aggregate.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        aggregate.extend_from_slice(&ts.to_be_bytes()[1..]);
        aggregate.push((ts >> 24) as u8);
        aggregate.extend_from_slice(&[0, 0, 0]);
        aggregate.extend_from_slice(body);
        aggregate.extend_from_slice(&(11 + body.len() as u32).to_be_bytes());
    }
    let filler = vec![0u8; 5000];
    p.receive(&encode(&[
        Message {
            csid: 5,
            timestamp: 0,
            type_id: msg_type::DATA_AMF3,
            stream_id: 1,
            payload: Bytes::from(data),
        },
        Message {
            csid: 6,
            timestamp: 5000,
            type_id: msg_type::AGGREGATE,
            stream_id: 1,
            payload: Bytes::from(aggregate),
        },
        Message {
            csid: 7,
            timestamp: 0,
            type_id: 19,
            stream_id: 1,
            payload: Bytes::from(filler),
        },
    ]))
    .unwrap();
    let got = events(&mut p);
    assert_eq!(got.len(), 3);
    match &got[0] {
        ProtocolEvent::Media {
            kind: MediaKind::Data,
            payload,
            ..
        } => assert_eq!(payload[0], 0x02),
        other => panic!("{other:?}"),
    }
    match (&got[1], &got[2]) {
        (
            ProtocolEvent::Media {
                kind: MediaKind::Video,
                timestamp: t1,
                ..
            },
            ProtocolEvent::Media {
                kind: MediaKind::Audio,
                timestamp: t2,
                payload,
                ..
            },
        ) => {
            assert_eq!((*t1, *t2), (5000, 5020));
            assert_eq!(&payload[..], &[0xAF, 1, 2]);
        }
        other => panic!("{other:?}"),
    }
    // More than 4096 bytes arrived since the window was set: an acknowledgement went out.
    let replies = sent(&mut p, &mut decoder);
    assert!(replies
        .iter()
        .any(|m| m.type_id == msg_type::ACKNOWLEDGEMENT));
}

#[test]
fn garbage_handshake_is_an_error() {
    let mut p = ServerProtocol::new();
    assert!(matches!(
        p.receive(&[0x16, 0x03, 0x01]),
        Err(ProtocolError::Handshake(_))
    ));
    let mut p = ServerProtocol::new();
    p.receive(&[3]).unwrap();
    assert!(!p.is_established());
}
