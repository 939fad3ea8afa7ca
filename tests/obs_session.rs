//! The exact message flow OBS 29 sends, scripted byte by byte: the simple handshake (zero
//! version field), SetChunkSize 4096 before `connect`, releaseStream + FCPublish +
//! createStream back to back, `publish(key, 'live')`, `@setDataFrame onMetaData`, media, and
//! the end: FCUnpublish + deleteStream, then a TCP FIN followed by an RST.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use reelay::amf0::{decode_all, encode_all, object, Value};
use reelay::rtmp::chunk::{ChunkDecoder, ChunkEncoder, Message};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn cmd(values: &[Value]) -> Bytes {
    encode_all(values).freeze()
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

/// Reads server messages until a command named `name` arrives; returns its values.
async fn expect_command(
    socket: &mut TcpStream,
    decoder: &mut ChunkDecoder,
    name: &str,
) -> Vec<Value> {
    let mut buf = vec![0u8; 16384];
    loop {
        while let Some(m) = decoder.next_message().unwrap() {
            if m.type_id == 20 {
                let values = decode_all(&m.payload).unwrap();
                if values[0].as_str() == Some(name) {
                    return values;
                }
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "server closed while waiting for {name}");
        decoder.push(&buf[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obs29_session_ends_cleanly_with_fin_and_rst() {
    let t = start().await;
    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    let mut socket = TcpStream::connect(t.rtmp()).await.unwrap();

    // Simple handshake: C0 = 3, C1 = time 0, zero, 1528 bytes; C2 echoes S1.
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0u8; 8]);
    c0c1.extend((0..1528u32).map(|i| (i * 31 % 251) as u8));
    socket.write_all(&c0c1).await.unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    socket.read_exact(&mut s0s1s2).await.unwrap();
    assert_eq!(s0s1s2[0], 3);
    socket.write_all(&s0s1s2[1..1537]).await.unwrap();

    let mut out = BytesMut::new();
    let mut encoder = ChunkEncoder::default();
    let msg = |csid, type_id, stream_id, timestamp, payload| Message {
        csid,
        timestamp,
        type_id,
        stream_id,
        payload,
    };
    encoder.encode(
        &mut out,
        &msg(2, 1, 0, 0, Bytes::from_static(&[0, 0, 0x10, 0])),
    );
    encoder.set_chunk_size(4096);
    encoder.encode(
        &mut out,
        &msg(
            3,
            20,
            0,
            0,
            cmd(&[
                s("connect"),
                Value::Number(1.0),
                object(&[
                    ("app", s("live")),
                    ("type", s("nonprivate")),
                    ("flashVer", s("FMLE/3.0 (compatible; FMSc/1.0)")),
                    ("swfUrl", s("rtmp://localhost/live")),
                    ("tcUrl", s("rtmp://localhost/live")),
                ]),
            ]),
        ),
    );
    socket.write_all(&out.split()).await.unwrap();
    let mut decoder = ChunkDecoder::default();
    let result = expect_command(&mut socket, &mut decoder, "_result").await;
    assert_eq!(
        result[3].get("code").and_then(Value::as_str),
        Some("NetConnection.Connect.Success")
    );

    for (i, name_cmd) in ["releaseStream", "FCPublish"].iter().enumerate() {
        encoder.encode(
            &mut out,
            &msg(
                3,
                20,
                0,
                0,
                cmd(&[
                    s(name_cmd),
                    Value::Number(2.0 + i as f64),
                    Value::Null,
                    s(&name),
                ]),
            ),
        );
    }
    encoder.encode(
        &mut out,
        &msg(
            3,
            20,
            0,
            0,
            cmd(&[s("createStream"), Value::Number(4.0), Value::Null]),
        ),
    );
    socket.write_all(&out.split()).await.unwrap();
    // Results for releaseStream, FCPublish, then the stream id from createStream.
    let mut stream_id = None;
    for _ in 0..3 {
        let values = expect_command(&mut socket, &mut decoder, "_result").await;
        if values[1].as_f64() == Some(4.0) {
            stream_id = values[3].as_f64();
        }
    }
    let stream_id = stream_id.expect("createStream answered") as u32;

    encoder.encode(
        &mut out,
        &msg(
            4,
            20,
            stream_id,
            0,
            cmd(&[
                s("publish"),
                Value::Number(5.0),
                Value::Null,
                s(&name),
                s("live"),
            ]),
        ),
    );
    socket.write_all(&out.split()).await.unwrap();
    let status = expect_command(&mut socket, &mut decoder, "onStatus").await;
    assert_eq!(
        status[3].get("code").and_then(Value::as_str),
        Some("NetStream.Publish.Start")
    );
    t.wait_state(&id, "live").await;

    let tags = fixture_tags();
    for tag in &tags {
        let (csid, type_id, payload) = match tag.tag_type {
            18 => {
                // OBS wraps onMetaData in @setDataFrame.
                let mut body = encode_all(&[s("@setDataFrame")]);
                body.extend_from_slice(&tag.body);
                (4, 18, body.freeze())
            }
            8 => (4, 8, tag.body.clone()),
            _ => (6, 9, tag.body.clone()),
        };
        encoder.encode(
            &mut out,
            &msg(csid, type_id, stream_id, tag.timestamp_ms, payload),
        );
    }
    encoder.encode(
        &mut out,
        &msg(
            3,
            20,
            0,
            0,
            cmd(&[s("FCUnpublish"), Value::Number(6.0), Value::Null, s(&name)]),
        ),
    );
    encoder.encode(
        &mut out,
        &msg(
            3,
            20,
            0,
            0,
            cmd(&[
                s("deleteStream"),
                Value::Number(7.0),
                Value::Null,
                Value::Number(f64::from(stream_id)),
            ]),
        ),
    );
    socket.write_all(&out.split()).await.unwrap();
    // FIN, then RST (SO_LINGER 0 on close).
    socket.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    socket.set_zero_linger().unwrap();
    drop(socket);

    t.wait_state(&id, "ended").await;
    let sessions = t.sessions(&id).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0]["end_reason"], "client_closed",
        "FIN+RST after deleteStream is a normal end"
    );
}
