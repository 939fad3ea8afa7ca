//! The server side of one RTMP connection as a sans-IO state machine: bytes in through
//! [`ServerProtocol::receive`], [`ProtocolEvent`]s out through
//! [`ServerProtocol::poll_event`], bytes to send through [`ServerProtocol::take_output`].
//!
//! It answers what needs no decision by itself (handshake, createStream, releaseStream,
//! FCPublish, pings, acknowledgements) and leaves admission — connect, publish, play — to the
//! caller, which answers with the `accept_*`/`reject_*` methods. Command flow as OBS and
//! ffmpeg send it: connect → releaseStream + FCPublish + createStream → publish →
//! `@setDataFrame onMetaData` → media → FCUnpublish + deleteStream.
//!
//! The handshake is `rml_rtmp`'s (simple and digest variants); everything after it is ours
//! (see `chunk`).

use super::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, Message};
use crate::amf0::{self, object, Value};
use bytes::{Bytes, BytesMut};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use std::collections::VecDeque;
use thiserror::Error;

/// Message type ids (RTMP spec §5.4, §7.1).
pub mod msg_type {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

const CSID_CONTROL: u32 = 2;
const CSID_COMMAND: u32 = 3;
const CSID_AUDIO: u32 = 4;
const CSID_DATA: u32 = 5;
const CSID_VIDEO: u32 = 6;
/// Our outgoing chunk size (what OBS uses too): fewer headers than the default 128.
pub const OUT_CHUNK_SIZE: usize = 4096;
const WINDOW_ACK_SIZE: u32 = 5_000_000;

/// Why a connection is closed for a protocol violation.
#[derive(Debug, Error)]
pub enum ProtocolError {
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error("malformed {command} command: {reason}")]
    Command { command: String, reason: String },
    #[error("{0} before connect")]
    NotConnected(&'static str),
}

/// Kinds of media/data messages a publisher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    /// AMF0 script data (`@setDataFrame`, `onMetaData`).
    Data,
}

/// What the caller must act on.
#[derive(Debug, Clone, PartialEq)]
pub enum ProtocolEvent {
    /// Answer with [`ServerProtocol::accept_connect`] or [`ServerProtocol::reject_connect`].
    Connect { app: String, tc_url: Option<String> },
    /// Answer with [`ServerProtocol::accept_publish`] or [`ServerProtocol::reject_publish`].
    Publish {
        stream_id: u32,
        key: String,
        mode: String,
    },
    /// Answer with [`ServerProtocol::accept_play`] or [`ServerProtocol::reject_play`].
    Play { stream_id: u32, key: String },
    Media {
        kind: MediaKind,
        stream_id: u32,
        timestamp: u32,
        payload: Bytes,
    },
    /// FCUnpublish, closeStream or deleteStream: the client ends its publish or play.
    StreamClosed { stream_id: u32 },
}

enum Stage {
    Handshaking(Box<Handshake>),
    Established,
}

/// See the module docs.
pub struct ServerProtocol {
    stage: Stage,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    output: BytesMut,
    events: VecDeque<ProtocolEvent>,
    connected: bool,
    connect_transaction: f64,
    next_stream_id: u32,
    peer_window_ack_size: u32,
    bytes_received: u64,
    last_ack_at: u64,
}

impl Default for ServerProtocol {
    fn default() -> Self {
        Self::new()
    }
}

fn number(values: &[Value], index: usize) -> f64 {
    values.get(index).and_then(Value::as_f64).unwrap_or(0.0)
}

impl ServerProtocol {
    pub fn new() -> Self {
        ServerProtocol {
            stage: Stage::Handshaking(Box::new(Handshake::new(PeerType::Server))),
            decoder: ChunkDecoder::default(),
            encoder: ChunkEncoder::default(),
            output: BytesMut::new(),
            events: VecDeque::new(),
            connected: false,
            connect_transaction: 1.0,
            next_stream_id: 1,
            peer_window_ack_size: 2_500_000,
            bytes_received: 0,
            last_ack_at: 0,
        }
    }

    /// A connection whose handshake already completed: lets fuzzers and tests reach the
    /// chunk stream and commands without producing a valid handshake first.
    pub fn after_handshake() -> Self {
        let mut protocol = Self::new();
        protocol.stage = Stage::Established;
        protocol
    }

    /// True once the handshake completed.
    pub fn is_established(&self) -> bool {
        matches!(self.stage, Stage::Established)
    }

    /// Bytes received so far, for logs and metrics.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Feeds received bytes. Errors are protocol violations: close the connection.
    pub fn receive(&mut self, data: &[u8]) -> Result<(), ProtocolError> {
        match &mut self.stage {
            Stage::Handshaking(handshake) => match handshake.process_bytes(data) {
                Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                    self.output.extend_from_slice(&response_bytes);
                }
                Ok(HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                }) => {
                    self.output.extend_from_slice(&response_bytes);
                    self.stage = Stage::Established;
                    self.decoder.push(&remaining_bytes);
                }
                Err(e) => return Err(ProtocolError::Handshake(format!("{e:?}"))),
            },
            Stage::Established => self.decoder.push(data),
        }
        self.note_received(data.len());
        Ok(())
    }

    /// Once established: the buffer to read socket bytes into directly; call
    /// [`ServerProtocol::note_received`] with the count after each read.
    pub fn input_buffer(&mut self) -> Option<&mut BytesMut> {
        match self.stage {
            Stage::Established => Some(self.decoder.input_mut()),
            Stage::Handshaking(_) => None,
        }
    }

    /// Counts bytes that arrived (directly or through `receive`) and acknowledges each
    /// window the peer asked for.
    pub fn note_received(&mut self, count: usize) {
        self.bytes_received += count as u64;
        if self.bytes_received - self.last_ack_at >= u64::from(self.peer_window_ack_size) {
            self.last_ack_at = self.bytes_received;
            let seq = (self.bytes_received & 0xFFFF_FFFF) as u32;
            self.control(msg_type::ACKNOWLEDGEMENT, &seq.to_be_bytes());
        }
    }

    /// The next event, or `None` when more bytes are needed.
    pub fn poll_event(&mut self) -> Result<Option<ProtocolEvent>, ProtocolError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            if !self.is_established() {
                return Ok(None);
            }
            match self.decoder.next_message()? {
                None => return Ok(None),
                Some(message) => self.handle_message(message)?,
            }
        }
    }

    /// Bytes to write to the peer.
    pub fn take_output(&mut self) -> BytesMut {
        self.output.split()
    }

    fn send(&mut self, csid: u32, type_id: u8, stream_id: u32, timestamp: u32, payload: &[u8]) {
        let message = Message {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: Bytes::copy_from_slice(payload),
        };
        self.encoder.encode(&mut self.output, &message);
    }

    fn control(&mut self, type_id: u8, payload: &[u8]) {
        self.send(CSID_CONTROL, type_id, 0, 0, payload);
    }

    fn user_control(&mut self, event: u16, data: u32) {
        let mut payload = [0u8; 6];
        payload[..2].copy_from_slice(&event.to_be_bytes());
        payload[2..].copy_from_slice(&data.to_be_bytes());
        self.control(msg_type::USER_CONTROL, &payload);
    }

    fn command(&mut self, stream_id: u32, values: &[Value]) {
        let payload = amf0::encode_all(values);
        self.send(CSID_COMMAND, msg_type::COMMAND_AMF0, stream_id, 0, &payload);
    }

    fn on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.command(
            stream_id,
            &[
                Value::String("onStatus".into()),
                Value::Number(0.0),
                Value::Null,
                object(&[
                    ("level", Value::String(level.into())),
                    ("code", Value::String(code.into())),
                    ("description", Value::String(description.into())),
                ]),
            ],
        );
    }

    fn result(&mut self, transaction: f64, value: Value) {
        self.command(
            0,
            &[
                Value::String("_result".into()),
                Value::Number(transaction),
                Value::Null,
                value,
            ],
        );
    }

    fn handle_message(&mut self, message: Message) -> Result<(), ProtocolError> {
        match message.type_id {
            msg_type::WINDOW_ACK_SIZE if message.payload.len() >= 4 => {
                let p = &message.payload;
                let size = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                self.peer_window_ack_size = size.max(4096);
            }
            msg_type::USER_CONTROL if message.payload.len() >= 6 => {
                let p = &message.payload;
                if u16::from_be_bytes([p[0], p[1]]) == 6 {
                    // Ping request → ping response with the same timestamp.
                    let ts = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
                    self.user_control(7, ts);
                }
            }
            msg_type::AUDIO | msg_type::VIDEO | msg_type::DATA_AMF0 | msg_type::DATA_AMF3 => {
                if !self.connected {
                    return Err(ProtocolError::NotConnected("media"));
                }
                let kind = match message.type_id {
                    msg_type::AUDIO => MediaKind::Audio,
                    msg_type::VIDEO => MediaKind::Video,
                    _ => MediaKind::Data,
                };
                let mut payload = message.payload;
                if message.type_id == msg_type::DATA_AMF3 && payload.first() == Some(&0) {
                    payload = payload.slice(1..);
                }
                self.events.push_back(ProtocolEvent::Media {
                    kind,
                    stream_id: message.stream_id,
                    timestamp: message.timestamp,
                    payload,
                });
            }
            msg_type::AGGREGATE => {
                if !self.connected {
                    return Err(ProtocolError::NotConnected("media"));
                }
                self.split_aggregate(&message);
            }
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                let mut body = &message.payload[..];
                if message.type_id == msg_type::COMMAND_AMF3 && body.first() == Some(&0) {
                    body = &body[1..];
                }
                self.handle_command(message.stream_id, body)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// An aggregate message carries FLV tags; their timestamps are rebased on the message's.
    fn split_aggregate(&mut self, message: &Message) {
        let data = &message.payload;
        let mut pos = 0usize;
        let mut base: Option<u32> = None;
        while let Some(header) = data.get(pos..pos + 11) {
            let size = u32::from_be_bytes([0, header[1], header[2], header[3]]) as usize;
            let ts = u32::from_be_bytes([header[7], header[4], header[5], header[6]]);
            let Some(end) = pos.checked_add(11 + size).filter(|&e| e <= data.len()) else {
                break;
            };
            let first_ts = *base.get_or_insert(ts);
            let kind = match header[0] & 0x1F {
                8 => Some(MediaKind::Audio),
                9 => Some(MediaKind::Video),
                18 => Some(MediaKind::Data),
                _ => None,
            };
            if let Some(kind) = kind {
                self.events.push_back(ProtocolEvent::Media {
                    kind,
                    stream_id: message.stream_id,
                    timestamp: message.timestamp.wrapping_add(ts.wrapping_sub(first_ts)),
                    payload: data.slice(pos + 11..end),
                });
            }
            pos = end + 4;
        }
    }

    fn handle_command(&mut self, stream_id: u32, body: &[u8]) -> Result<(), ProtocolError> {
        let values = amf0::decode_all(body).map_err(|e| ProtocolError::Command {
            command: "(undecodable)".into(),
            reason: e.to_string(),
        })?;
        let name = values
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let transaction = number(&values, 1);
        let malformed = |reason: &str| ProtocolError::Command {
            command: name.clone(),
            reason: reason.to_string(),
        };
        match name.as_str() {
            "connect" => {
                let props = values
                    .get(2)
                    .ok_or_else(|| malformed("no command object"))?;
                let app = props
                    .get("app")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed("no app"))?;
                // Some clients put query strings or trailing slashes in the app name.
                let app = app.split(['?', '/']).next().unwrap_or_default().to_string();
                let tc_url = props.get("tcUrl").and_then(Value::as_str).map(String::from);
                self.connect_transaction = transaction;
                self.events
                    .push_back(ProtocolEvent::Connect { app, tc_url });
            }
            _ if !self.connected => return Err(ProtocolError::NotConnected("command")),
            "createStream" => {
                let id = self.next_stream_id;
                self.next_stream_id = self.next_stream_id.saturating_add(1);
                self.result(transaction, Value::Number(f64::from(id)));
            }
            "releaseStream" | "FCPublish" | "getStreamLength" | "FCSubscribe"
                if transaction > 0.0 =>
            {
                self.result(transaction, Value::Undefined);
            }
            "publish" | "play" => {
                let key = values
                    .get(3)
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed("no stream name"))?;
                // The key may carry a query string (?token=...) that is not part of the name.
                let key = key.split('?').next().unwrap_or_default().to_string();
                if name == "publish" {
                    let mode = values
                        .get(4)
                        .and_then(Value::as_str)
                        .unwrap_or("live")
                        .to_ascii_lowercase();
                    self.events.push_back(ProtocolEvent::Publish {
                        stream_id,
                        key,
                        mode,
                    });
                } else {
                    self.events
                        .push_back(ProtocolEvent::Play { stream_id, key });
                }
            }
            "FCUnpublish" | "closeStream" => {
                self.events
                    .push_back(ProtocolEvent::StreamClosed { stream_id });
            }
            "deleteStream" => {
                let id = number(&values, 3) as u32;
                self.events
                    .push_back(ProtocolEvent::StreamClosed { stream_id: id });
            }
            _ => {}
        }
        Ok(())
    }

    /// Accepts the connect request.
    pub fn accept_connect(&mut self) {
        self.connected = true;
        self.control(msg_type::WINDOW_ACK_SIZE, &WINDOW_ACK_SIZE.to_be_bytes());
        let mut bandwidth = WINDOW_ACK_SIZE.to_be_bytes().to_vec();
        bandwidth.push(2); // dynamic
        self.control(msg_type::SET_PEER_BANDWIDTH, &bandwidth);
        self.control(
            msg_type::SET_CHUNK_SIZE,
            &(OUT_CHUNK_SIZE as u32).to_be_bytes(),
        );
        self.encoder.set_chunk_size(OUT_CHUNK_SIZE);
        let transaction = self.connect_transaction;
        self.command(
            0,
            &[
                Value::String("_result".into()),
                Value::Number(transaction),
                object(&[
                    ("fmsVer", Value::String("FMS/3,0,1,123".into())),
                    ("capabilities", Value::Number(31.0)),
                ]),
                object(&[
                    ("level", Value::String("status".into())),
                    (
                        "code",
                        Value::String("NetConnection.Connect.Success".into()),
                    ),
                    ("description", Value::String("Connection succeeded.".into())),
                    ("objectEncoding", Value::Number(0.0)),
                ]),
            ],
        );
    }

    /// Refuses the connect request; close the connection after flushing the output.
    pub fn reject_connect(&mut self, description: &str) {
        let transaction = self.connect_transaction;
        self.command(
            0,
            &[
                Value::String("_error".into()),
                Value::Number(transaction),
                Value::Null,
                object(&[
                    ("level", Value::String("error".into())),
                    (
                        "code",
                        Value::String("NetConnection.Connect.Rejected".into()),
                    ),
                    ("description", Value::String(description.into())),
                ]),
            ],
        );
    }

    /// Accepts a publish request.
    pub fn accept_publish(&mut self, stream_id: u32, key: &str) {
        self.user_control(0, stream_id);
        self.on_status(
            stream_id,
            "status",
            "NetStream.Publish.Start",
            &format!("{key} is now published."),
        );
    }

    /// Refuses a publish request with an `onStatus` error (`code` such as
    /// `NetStream.Publish.BadName`); close the connection after flushing.
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) {
        self.on_status(stream_id, "error", code, description);
    }

    /// Accepts a play request; media follows with [`ServerProtocol::send_media`].
    pub fn accept_play(&mut self, stream_id: u32, key: &str) {
        self.user_control(0, stream_id);
        self.on_status(
            stream_id,
            "status",
            "NetStream.Play.Reset",
            &format!("Playing and resetting {key}."),
        );
        self.on_status(
            stream_id,
            "status",
            "NetStream.Play.Start",
            &format!("Started playing {key}."),
        );
        let access = amf0::encode_all(&[
            Value::String("|RtmpSampleAccess".into()),
            Value::Boolean(true),
            Value::Boolean(true),
        ]);
        self.send(CSID_DATA, msg_type::DATA_AMF0, stream_id, 0, &access);
    }

    /// Refuses a play request; close the connection after flushing.
    pub fn reject_play(&mut self, stream_id: u32, description: &str) {
        self.on_status(
            stream_id,
            "error",
            "NetStream.Play.StreamNotFound",
            description,
        );
    }

    /// Tells a player the stream ended.
    pub fn end_play(&mut self, stream_id: u32) {
        self.on_status(
            stream_id,
            "status",
            "NetStream.Play.UnpublishNotify",
            "The stream ended.",
        );
        self.user_control(1, stream_id);
    }

    /// Tells a publisher it was stopped (by the API or a shutdown).
    pub fn stop_publish(&mut self, stream_id: u32, description: &str) {
        self.on_status(stream_id, "error", "NetStream.Publish.Denied", description);
    }

    /// Queues a media or data message to a player; `payload` is an FLV tag body.
    pub fn send_media(&mut self, kind: MediaKind, stream_id: u32, timestamp: u32, payload: &Bytes) {
        self.encoder.encode(
            &mut self.output,
            &media_message(kind, stream_id, timestamp, payload),
        );
    }

    /// True when media can be sent as [`encode_media`] chunks: the connection switched to
    /// our outgoing chunk size (every accepted connection has).
    pub fn uses_shared_chunking(&self) -> bool {
        self.connected
    }

    /// Bytes queued for the peer and not yet taken.
    pub fn pending_output(&self) -> usize {
        self.output.len()
    }
}

fn media_message(kind: MediaKind, stream_id: u32, timestamp: u32, payload: &Bytes) -> Message {
    let (csid, type_id) = match kind {
        MediaKind::Audio => (CSID_AUDIO, msg_type::AUDIO),
        MediaKind::Video => (CSID_VIDEO, msg_type::VIDEO),
        MediaKind::Data => (CSID_DATA, msg_type::DATA_AMF0),
    };
    Message {
        csid,
        timestamp,
        type_id,
        stream_id,
        payload: payload.clone(),
    }
}

/// A media message as chunks at [`OUT_CHUNK_SIZE`], independent of any connection's state
/// (type-0 first chunk, absolute timestamp). Every player on the same message stream id gets
/// the same bytes, so they are built once per packet and shared.
pub fn encode_media(kind: MediaKind, stream_id: u32, timestamp: u32, payload: &Bytes) -> Bytes {
    let mut encoder = ChunkEncoder::default();
    encoder.set_chunk_size(OUT_CHUNK_SIZE);
    let mut out = BytesMut::new();
    encoder.encode(
        &mut out,
        &media_message(kind, stream_id, timestamp, payload),
    );
    out.freeze()
}

#[cfg(test)]
mod tests;
