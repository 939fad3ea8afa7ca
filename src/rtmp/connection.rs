//! One RTMP connection: handshake and connect under a deadline, then either a publish loop
//! (demux into a hub, read deadline, catalog session) or a play loop (lossy hub reader, write
//! deadline, disconnect when it keeps falling behind). Each connection logs one line when it
//! ends, naming the peer and the reason.

use super::listener::RtmpContext;
use super::protocol::{MediaKind, ProtocolError, ProtocolEvent, ServerProtocol};
use crate::catalog::{self, EndReason, PublishRefusal, Stream};
use crate::flv::{Demuxed, Demuxer};
use crate::hub::{Delivery, Event, Publisher};
use crate::media::{CodecConfig, Packet, Track};
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Why a connection ended; logged once.
#[derive(Debug)]
enum Outcome {
    Closed,
    Refused(String),
    Timeout(&'static str),
    Protocol(ProtocolError),
    Io(std::io::Error),
    BadMedia(String),
    TooSlow(u32),
    Shutdown,
    StreamEnded,
    Internal(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Closed => write!(f, "closed by the client"),
            Outcome::Refused(reason) => write!(f, "refused: {reason}"),
            Outcome::Timeout(what) => write!(f, "{what} deadline passed"),
            Outcome::Protocol(e) => write!(f, "protocol error: {e}"),
            Outcome::Io(e) => write!(f, "socket error: {e}"),
            Outcome::BadMedia(e) => write!(f, "malformed media: {e}"),
            Outcome::TooSlow(skips) => write!(f, "player too slow ({skips} skips in a minute)"),
            Outcome::Shutdown => write!(f, "server shutdown"),
            Outcome::StreamEnded => write!(f, "stream ended"),
            Outcome::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

struct Io {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buf: BytesMut,
    peer: SocketAddr,
    proto: ServerProtocol,
    write_timeout: Duration,
}

impl Io {
    /// Reads once into the protocol; `Ok(false)` at end of stream.
    async fn read_some(&mut self) -> Result<bool, Outcome> {
        self.buf.clear();
        self.buf.reserve(64 * 1024);
        let n = self
            .reader
            .read_buf(&mut self.buf)
            .await
            .map_err(Outcome::Io)?;
        if n == 0 {
            return Ok(false);
        }
        self.proto
            .receive(&self.buf[..n])
            .map_err(Outcome::Protocol)?;
        Ok(true)
    }

    async fn flush(&mut self) -> Result<(), Outcome> {
        let out = self.proto.take_output();
        if out.is_empty() {
            return Ok(());
        }
        match tokio::time::timeout(self.write_timeout, self.writer.write_all(&out)).await {
            Ok(result) => result.map_err(Outcome::Io),
            Err(_) => Err(Outcome::Timeout("write")),
        }
    }

    /// Flushes what is queued (a refusal status) and reports the refusal.
    async fn refuse(&mut self, reason: String) -> Outcome {
        let _ = self.flush().await;
        let _ = self.writer.shutdown().await;
        Outcome::Refused(reason)
    }
}

/// Serves one accepted socket to its end.
pub async fn run(ctx: Arc<RtmpContext>, socket: TcpStream, peer: SocketAddr) {
    let (reader, writer) = socket.into_split();
    let mut io = Io {
        reader,
        writer,
        buf: BytesMut::with_capacity(64 * 1024),
        peer,
        proto: ServerProtocol::new(),
        write_timeout: Duration::from_secs(ctx.settings.write_timeout_secs),
    };
    let outcome = serve(&ctx, &mut io).await;
    let received = io.proto.bytes_received();
    match &outcome {
        Outcome::Closed | Outcome::StreamEnded | Outcome::Shutdown => {
            tracing::info!(%peer, bytes_in = received, reason = %outcome, "rtmp connection closed")
        }
        Outcome::Io(e) if is_disconnect(e) => {
            tracing::info!(%peer, bytes_in = received, reason = %outcome, "rtmp connection closed")
        }
        Outcome::Refused(reason) => tracing::warn!(%peer, %reason, "rtmp connection refused"),
        _ => {
            tracing::warn!(%peer, bytes_in = received, reason = %outcome, "rtmp connection closed")
        }
    }
}

async fn serve(ctx: &Arc<RtmpContext>, io: &mut Io) -> Outcome {
    let deadline = Duration::from_secs(ctx.settings.handshake_timeout_secs);
    let setup = tokio::select! {
        _ = ctx.shutdown.cancelled() => return Outcome::Shutdown,
        setup = tokio::time::timeout(deadline, setup(ctx, io)) => setup,
    };
    match setup {
        Err(_) => Outcome::Timeout("handshake/connect"),
        Ok(Err(outcome)) => outcome,
        Ok(Ok(Role::Publish(publish))) => publish_loop(ctx, io, publish).await,
        Ok(Ok(Role::Play(play))) => play_loop(ctx, io, play).await,
    }
}

struct PublishState {
    stream: Stream,
    stream_id: u32,
    session_id: uuid::Uuid,
    publisher: Publisher,
}

struct PlayState {
    stream: Stream,
    stream_id: u32,
    hub: Arc<crate::hub::StreamHub>,
}

enum Role {
    Publish(PublishState),
    Play(PlayState),
}

/// Handshake, connect and admission, until the client publishes or plays.
async fn setup(ctx: &Arc<RtmpContext>, io: &mut Io) -> Result<Role, Outcome> {
    let mut app: Option<String> = None;
    loop {
        while let Some(event) = io.proto.poll_event().map_err(Outcome::Protocol)? {
            match event {
                ProtocolEvent::Connect { app: requested, .. } => {
                    if requested == "live" || requested == "rec" {
                        io.proto.accept_connect();
                        app = Some(requested);
                    } else {
                        io.proto
                            .reject_connect(&format!("unknown application {requested:?}"));
                        return Err(io.refuse(format!("unknown app {requested:?}")).await);
                    }
                }
                ProtocolEvent::Publish { stream_id, key, .. } => {
                    let app = app.clone().unwrap_or_default();
                    return admit_publisher(ctx, io, stream_id, key, app).await;
                }
                ProtocolEvent::Play { stream_id, key } => {
                    return admit_player(ctx, io, stream_id, key).await;
                }
                ProtocolEvent::Media { .. } | ProtocolEvent::StreamClosed { .. } => {}
            }
        }
        io.flush().await?;
        if !io.read_some().await? {
            return Err(Outcome::Closed);
        }
    }
}

/// The stream an RTMP key names (streamname or id).
async fn lookup_stream(ctx: &Arc<RtmpContext>, key: &str) -> Result<Option<Stream>, Outcome> {
    let key = key.to_string();
    ctx.catalog
        .call(move |conn| catalog::find_stream_by_key(conn, &key))
        .await
        .map_err(|e| Outcome::Internal(e.to_string()))
}

async fn admit_publisher(
    ctx: &Arc<RtmpContext>,
    io: &mut Io,
    stream_id: u32,
    key: String,
    app: String,
) -> Result<Role, Outcome> {
    let found = lookup_stream(ctx, &key).await?;
    let refuse = |io: &mut Io, code: &str, why: &str| {
        io.proto.reject_publish(stream_id, code, why);
    };
    let Some(stream) = found else {
        refuse(io, "NetStream.Publish.BadName", "unknown stream key");
        return Err(io
            .refuse(format!("publish {key:?}: unknown stream key"))
            .await);
    };
    let publisher = match ctx.hubs.claim(stream.id) {
        Ok(p) => p,
        Err(_) => {
            refuse(
                io,
                "NetStream.Publish.BadName",
                "stream already has a publisher",
            );
            let reason = format!("publish {}: already has a publisher", stream.streamname);
            return Err(io.refuse(reason).await);
        }
    };
    let (id, session_app) = (stream.id, app.clone());
    let begun = ctx
        .catalog
        .call(move |conn| catalog::begin_publish(conn, id, &session_app))
        .await
        .map_err(|e| Outcome::Internal(e.to_string()))?;
    let session = match begun {
        Ok(session) => session,
        Err(refusal) => {
            let why = match refusal {
                PublishRefusal::Locked => "stream is locked",
                PublishRefusal::Deleted => "stream is deleted",
            };
            refuse(io, "NetStream.Publish.Denied", why);
            let reason = format!("publish {}: {why}", stream.streamname);
            return Err(io.refuse(reason).await);
        }
    };
    if app == "rec" {
        let org_hash = stream.org_hash.clone();
        let org = ctx
            .catalog
            .call(move |conn| catalog::get_org(conn, &org_hash))
            .await
            .ok()
            .flatten();
        if !org.is_some_and(|o| o.vod) {
            tracing::info!(stream = %stream.streamname, "rec ingest without the vod package: behaves as live");
        }
    }
    io.proto.accept_publish(stream_id, &key);
    tracing::info!(peer = %io.peer, stream = %stream.streamname, session = %session.id, %app, "publishing started");
    Ok(Role::Publish(PublishState {
        stream,
        stream_id,
        session_id: session.id,
        publisher,
    }))
}

async fn admit_player(
    ctx: &Arc<RtmpContext>,
    io: &mut Io,
    stream_id: u32,
    key: String,
) -> Result<Role, Outcome> {
    let Some(stream) = lookup_stream(ctx, &key).await? else {
        io.proto.reject_play(stream_id, "unknown stream");
        return Err(io.refuse(format!("play {key:?}: unknown stream")).await);
    };
    let Some(hub) = ctx.hubs.get(stream.id) else {
        io.proto.reject_play(stream_id, "stream is not live");
        return Err(io
            .refuse(format!("play {}: not live", stream.streamname))
            .await);
    };
    io.proto.accept_play(stream_id, &key);
    Ok(Role::Play(PlayState {
        stream,
        stream_id,
        hub,
    }))
}

/// Feeds one media event into the demuxer and the hub.
fn ingest(
    demuxer: &mut Demuxer,
    publisher: &Publisher,
    stream: &Stream,
    kind: MediaKind,
    timestamp: u32,
    payload: bytes::Bytes,
) -> Result<(), Outcome> {
    let result = match kind {
        MediaKind::Video => demuxer.video(timestamp, payload),
        MediaKind::Audio => demuxer.audio(timestamp, payload),
        MediaKind::Data => match demuxer.script(&payload) {
            Ok(_) => {
                publisher.set_config(demuxer.config().clone());
                return Ok(());
            }
            Err(e) => {
                // Script data is advisory; a bad one is logged, not fatal.
                tracing::warn!(stream = %stream.streamname, error = %e, "ignoring malformed script data");
                return Ok(());
            }
        },
    };
    match result {
        Ok(Demuxed::Packet(packet)) => publisher.push(packet),
        Ok(Demuxed::ConfigChanged { warning }) => {
            let config = demuxer.config().clone();
            if let Some(warning) = warning {
                tracing::warn!(stream = %stream.streamname, generation = config.generation, %warning, "codec configuration");
            } else {
                tracing::debug!(stream = %stream.streamname, generation = config.generation, "codec configuration changed");
            }
            publisher.set_config(config);
        }
        Ok(Demuxed::Nothing) => {}
        Err(e) => return Err(Outcome::BadMedia(e.to_string())),
    }
    Ok(())
}

async fn publish_loop(ctx: &Arc<RtmpContext>, io: &mut Io, state: PublishState) -> Outcome {
    let PublishState {
        stream,
        stream_id,
        session_id,
        publisher,
    } = state;
    let read_timeout = Duration::from_secs(ctx.settings.read_timeout_secs);
    let mut demuxer = Demuxer::default();
    let outcome = loop {
        let step: Result<Option<Outcome>, Outcome> = async {
            while let Some(event) = io.proto.poll_event().map_err(Outcome::Protocol)? {
                match event {
                    ProtocolEvent::Media {
                        kind,
                        timestamp,
                        payload,
                        ..
                    } => ingest(&mut demuxer, &publisher, &stream, kind, timestamp, payload)?,
                    ProtocolEvent::StreamClosed { .. } => return Ok(Some(Outcome::Closed)),
                    ProtocolEvent::Publish { stream_id, .. } => {
                        io.proto.reject_publish(
                            stream_id,
                            "NetStream.Publish.BadName",
                            "this connection already publishes",
                        );
                    }
                    ProtocolEvent::Play { stream_id, .. } => {
                        io.proto
                            .reject_play(stream_id, "this connection is publishing");
                    }
                    ProtocolEvent::Connect { .. } => {
                        return Err(Outcome::Protocol(ProtocolError::Command {
                            command: "connect".into(),
                            reason: "sent twice".into(),
                        }))
                    }
                }
            }
            io.flush().await?;
            let read = tokio::select! {
                _ = ctx.shutdown.cancelled() => return Ok(Some(Outcome::Shutdown)),
                read = tokio::time::timeout(read_timeout, io.read_some()) => read,
            };
            match read {
                Err(_) => Ok(Some(Outcome::Timeout("read"))),
                Ok(Ok(true)) => Ok(None),
                Ok(Ok(false)) => Ok(Some(Outcome::Closed)),
                Ok(Err(outcome)) => Err(outcome),
            }
        }
        .await;
        match step {
            Ok(None) => continue,
            Ok(Some(outcome)) | Err(outcome) => break outcome,
        }
    };
    if matches!(outcome, Outcome::Shutdown) {
        io.proto.stop_publish(stream_id, "server shutting down");
        let _ = io.flush().await;
    }
    let reason = match &outcome {
        Outcome::Closed => EndReason::ClientClosed,
        // A reset after FCUnpublish/deleteStream, or by a client that just vanished, is a
        // normal end for a publisher (OBS ends with FIN and RST).
        Outcome::Io(e) if is_disconnect(e) => EndReason::ClientClosed,
        Outcome::Timeout(_) => EndReason::Timeout,
        Outcome::Shutdown => EndReason::Shutdown,
        _ => EndReason::Error,
    };
    drop(publisher);
    let ended = ctx
        .catalog
        .call(move |conn| catalog::end_publish(conn, session_id, reason))
        .await;
    if let Err(e) = ended {
        tracing::error!(stream = %stream.streamname, error = %e, "could not close the session in the catalog");
    }
    tracing::info!(peer = %io.peer, stream = %stream.streamname, session = %session_id, reason = reason.as_str(), "publishing ended");
    outcome
}

fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}

/// Sends the configuration a packet needs (metadata, sequence headers) to a player.
fn send_config(io: &mut Io, stream_id: u32, config: &CodecConfig, timestamp: u32) {
    if let Some(metadata) = &config.metadata {
        io.proto
            .send_media(MediaKind::Data, stream_id, timestamp, metadata);
    }
    if let Some(video) = config.video.as_ref().filter(|v| !v.flv_body.is_empty()) {
        io.proto
            .send_media(MediaKind::Video, stream_id, timestamp, &video.flv_body);
    }
    if let Some(audio) = config.audio.as_ref().filter(|a| !a.flv_body.is_empty()) {
        io.proto
            .send_media(MediaKind::Audio, stream_id, timestamp, &audio.flv_body);
    }
}

fn send_packet(io: &mut Io, stream_id: u32, packet: &Packet) {
    let kind = match packet.track {
        Track::Video => MediaKind::Video,
        Track::Audio => MediaKind::Audio,
    };
    let timestamp = (packet.dts_ms & 0xFFFF_FFFF) as u32;
    io.proto
        .send_media(kind, stream_id, timestamp, &packet.flv_body);
}

/// Output batched per write: enough to amortise syscalls, small enough to stay responsive.
const PLAY_BATCH_BYTES: usize = 256 * 1024;

async fn play_loop(ctx: &Arc<RtmpContext>, io: &mut Io, state: PlayState) -> Outcome {
    let PlayState {
        stream,
        stream_id,
        hub,
    } = state;
    tracing::info!(peer = %io.peer, stream = %stream.streamname, "playing started");
    let mut subscription = hub.subscribe(Delivery::Lossy);
    drop(hub);
    let mut sent_generation: Option<u32> = None;
    let mut metadata_sent: Option<bytes::Bytes> = None;
    let mut skips: Vec<Instant> = Vec::new();
    let max_skips = ctx.settings.max_player_skips_per_minute as usize;
    let mut handle = |io: &mut Io, event: Event| -> Result<(), Outcome> {
        match event {
            Event::Packet(packet) => {
                let ts = (packet.dts_ms & 0xFFFF_FFFF) as u32;
                if sent_generation != Some(packet.config.generation) {
                    send_config(io, stream_id, &packet.config, ts);
                    sent_generation = Some(packet.config.generation);
                    metadata_sent = packet.config.metadata.clone();
                } else if packet.config.metadata != metadata_sent {
                    if let Some(metadata) = &packet.config.metadata {
                        io.proto
                            .send_media(MediaKind::Data, stream_id, ts, metadata);
                    }
                    metadata_sent = packet.config.metadata.clone();
                }
                send_packet(io, stream_id, &packet);
                Ok(())
            }
            Event::Gap { missed } => {
                let now = Instant::now();
                skips.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
                skips.push(now);
                tracing::debug!(peer = %io.peer, missed, "player behind: skipped to the newest keyframe");
                if skips.len() > max_skips {
                    return Err(Outcome::TooSlow(skips.len() as u32));
                }
                Ok(())
            }
            Event::Ended => {
                io.proto.end_play(stream_id);
                Err(Outcome::StreamEnded)
            }
        }
    };
    let outcome = loop {
        // Drain what is ready into one write.
        let mut failed = None;
        while io.proto.pending_output() < PLAY_BATCH_BYTES {
            match subscription.try_next() {
                Some(event) => {
                    if let Err(outcome) = handle(io, event) {
                        failed = Some(outcome);
                        break;
                    }
                }
                None => break,
            }
        }
        if let Err(outcome) = io.flush().await {
            break outcome;
        }
        if let Some(outcome) = failed {
            break outcome;
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => break Outcome::Shutdown,
            event = subscription.next() => {
                if let Err(outcome) = handle(io, event) {
                    let _ = io.flush().await;
                    break outcome;
                }
            }
            read = io.read_some() => match read {
                Ok(true) => {
                    let mut closed = false;
                    loop {
                        match io.proto.poll_event() {
                            Ok(Some(ProtocolEvent::StreamClosed { .. })) => closed = true,
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(e) => return Outcome::Protocol(e),
                        }
                    }
                    if closed {
                        break Outcome::Closed;
                    }
                }
                Ok(false) => break Outcome::Closed,
                Err(outcome) => break outcome,
            },
        }
    };
    if let Outcome::TooSlow(skips) = &outcome {
        tracing::warn!(peer = %io.peer, stream = %stream.streamname, skips, "player disconnected: kept falling behind");
    }
    outcome
}
