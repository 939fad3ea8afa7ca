//! One RTMP connection: the socket, handshake and connect under a deadline, publish and play
//! admission against the catalog, then the publish loop ([`super::publish`]) or the play
//! loop ([`super::play`]). Each connection logs one line when it ends, naming the peer and
//! the reason.

use super::listener::RtmpContext;
use super::protocol::{ProtocolError, ProtocolEvent, ServerProtocol};
use super::{play, publish, session};
use crate::catalog::{self, EndReason, PublishRefusal, Stream, StreamState};
use crate::hub::{Publisher, StreamHub};
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::{IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Why a connection ended; logged once.
#[derive(Debug)]
pub(super) enum Outcome {
    Closed,
    /// The publisher unpublished (FCUnpublish/deleteStream/closeStream) before closing.
    Unpublished,
    Refused(String),
    Timeout(&'static str),
    Protocol(ProtocolError),
    Io(std::io::Error),
    BadMedia(String),
    TooSlow(u32),
    Shutdown,
    /// An operator stopped or deleted the stream.
    Stopped,
    StreamEnded,
    Internal(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Closed => write!(f, "closed by the client"),
            Outcome::Unpublished => write!(f, "unpublished by the client"),
            Outcome::Refused(reason) => write!(f, "refused: {reason}"),
            Outcome::Timeout(what) => write!(f, "{what} deadline passed"),
            Outcome::Protocol(e) => write!(f, "protocol error: {e}"),
            Outcome::Io(e) => write!(f, "socket error: {e}"),
            Outcome::BadMedia(e) => write!(f, "malformed media: {e}"),
            Outcome::TooSlow(skips) => write!(f, "player too slow ({skips} skips in a minute)"),
            Outcome::Shutdown => write!(f, "server shutdown"),
            Outcome::Stopped => write!(f, "stopped by an operator"),
            Outcome::StreamEnded => write!(f, "stream ended"),
            Outcome::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

/// The connection's socket: on tokio's reactor while it negotiates and plays; taken off it
/// ("polled") while it publishes, so segment arrivals wake nobody and the publish loop reads
/// on the shared ingest grid instead (see `rtmp.ingest_batch_ms`).
enum Socket {
    Async {
        reader: OwnedReadHalf,
        writer: OwnedWriteHalf,
    },
    Polled(std::net::TcpStream),
    Gone,
}

/// What a non-blocking read found.
pub(super) struct Drained {
    pub bytes: usize,
    pub eof: bool,
}

/// Control output a polled publisher may leave unsent (it should read our acks).
const MAX_UNSENT_BYTES: usize = 1 << 20;
/// Receive buffer of a publisher read on ticks (Linux doubles it): a 100 ms tick of a
/// 40 Mbit/s stream, or a 6 s burst of an OBS-default 2.5 Mbit/s one, fits.
const PUBLISH_RECV_BUFFER: usize = 1 << 20;

pub(super) struct Io {
    socket: Socket,
    /// Handshake bytes land here before going to the handshake state machine; once
    /// established, reads go straight into the chunk decoder's buffer.
    handshake_buf: BytesMut,
    /// Shared media chunks queued for a player, written after the protocol's own output.
    pending: VecDeque<Bytes>,
    /// Bytes reserved per read: large for publishers, small for players.
    pub read_chunk: usize,
    pub peer: SocketAddr,
    pub proto: ServerProtocol,
    write_timeout: Duration,
    metrics: crate::metrics::MediaMetrics,
}

impl Io {
    /// Reads once (awaiting data) into the protocol; `Ok(false)` at end of stream.
    pub async fn read_some(&mut self) -> Result<bool, Outcome> {
        let Socket::Async { reader, .. } = &mut self.socket else {
            return Err(Outcome::Internal("async read on a polled socket".into()));
        };
        let n = match self.proto.input_buffer() {
            Some(buf) => {
                buf.reserve(self.read_chunk);
                let n = reader.read_buf(buf).await.map_err(Outcome::Io)?;
                self.proto.note_received(n);
                self.metrics.bytes_in.inc_by(n as u64);
                n
            }
            None => {
                self.handshake_buf.clear();
                self.handshake_buf.reserve(4096);
                let n = reader
                    .read_buf(&mut self.handshake_buf)
                    .await
                    .map_err(Outcome::Io)?;
                self.proto
                    .receive(&self.handshake_buf[..n])
                    .map_err(Outcome::Protocol)?;
                self.metrics.bytes_in.inc_by(n as u64);
                n
            }
        };
        Ok(n > 0)
    }

    /// Takes the socket off the reactor for the publish loop (non-blocking reads on ticks),
    /// with a receive buffer that holds a tick of a fast sender.
    pub fn take_off_reactor(&mut self) -> Result<(), Outcome> {
        if let Socket::Async { reader, writer } = std::mem::replace(&mut self.socket, Socket::Gone)
        {
            let stream = reader
                .reunite(writer)
                .map_err(|e| Outcome::Internal(e.to_string()))?;
            let stream = stream.into_std().map_err(Outcome::Io)?;
            // A tick's worth of a burst must fit in the kernel: a client that sends its last
            // commands (FCUnpublish, deleteStream) in a burst and then resets the connection,
            // as OBS does, would otherwise lose what was still waiting for window space.
            // Memory is used only while data is queued.
            if let Err(e) =
                socket2::SockRef::from(&stream).set_recv_buffer_size(PUBLISH_RECV_BUFFER)
            {
                tracing::debug!(peer = %self.peer, error = %e, "cannot enlarge the receive buffer");
            }
            self.socket = Socket::Polled(stream);
        }
        Ok(())
    }

    /// Reads whatever a polled socket holds, without waiting, up to `max` bytes.
    pub fn read_available(&mut self, max: usize) -> Result<Drained, Outcome> {
        thread_local! {
            /// Reused read buffer: std reads need initialised memory, so one zeroed buffer
            /// per thread beats zeroing per read or holding one per connection.
            static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
        }
        let Socket::Polled(stream) = &mut self.socket else {
            return Err(Outcome::Internal("polled read on an async socket".into()));
        };
        let proto = &mut self.proto;
        let bytes_in = &self.metrics.bytes_in;
        let drained = SCRATCH.with_borrow_mut(|scratch| {
            let mut drained = Drained {
                bytes: 0,
                eof: false,
            };
            while drained.bytes < max {
                match stream.read(scratch) {
                    Ok(0) => {
                        drained.eof = true;
                        break;
                    }
                    Ok(n) => {
                        proto.receive(&scratch[..n]).map_err(Outcome::Protocol)?;
                        drained.bytes += n;
                        if n < scratch.len() {
                            break; // drained: what arrives now is read on the next tick
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Outcome::Io(e)),
                }
            }
            Ok(drained)
        })?;
        bytes_in.inc_by(drained.bytes as u64);
        Ok(drained)
    }

    /// Queues shared media bytes after whatever the protocol has queued so far.
    pub fn queue(&mut self, bytes: Bytes) {
        let control = self.proto.take_output();
        if !control.is_empty() {
            self.pending.push_back(control.freeze());
        }
        self.pending.push_back(bytes);
    }

    /// Writes everything queued, in order. Async sockets wait (up to the write deadline);
    /// a polled socket writes what it can now and keeps the rest for the next tick.
    pub async fn flush(&mut self) -> Result<(), Outcome> {
        let control = self.proto.take_output();
        if !control.is_empty() {
            self.pending.push_back(control.freeze());
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        match &mut self.socket {
            Socket::Async { writer, .. } => {
                let pending = &mut self.pending;
                let bytes_out = &self.metrics.bytes_out;
                let write_all = async {
                    while !pending.is_empty() {
                        let slices: Vec<IoSlice<'_>> =
                            pending.iter().take(64).map(|b| IoSlice::new(b)).collect();
                        let written = writer.write_vectored(&slices).await?;
                        if written == 0 {
                            return Err(std::io::ErrorKind::WriteZero.into());
                        }
                        bytes_out.inc_by(written as u64);
                        consume(pending, written);
                    }
                    Ok(())
                };
                match tokio::time::timeout(self.write_timeout, write_all).await {
                    Ok(result) => result.map_err(Outcome::Io),
                    Err(_) => Err(Outcome::Timeout("write")),
                }
            }
            Socket::Polled(stream) => {
                while !self.pending.is_empty() {
                    let slices: Vec<IoSlice<'_>> = self
                        .pending
                        .iter()
                        .take(64)
                        .map(|b| IoSlice::new(b))
                        .collect();
                    match stream.write_vectored(&slices) {
                        Ok(0) => return Err(Outcome::Io(std::io::ErrorKind::WriteZero.into())),
                        Ok(written) => {
                            self.metrics.bytes_out.inc_by(written as u64);
                            consume(&mut self.pending, written)
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(Outcome::Io(e)),
                    }
                }
                if self.pending.iter().map(Bytes::len).sum::<usize>() > MAX_UNSENT_BYTES {
                    return Err(Outcome::Timeout("write"));
                }
                Ok(())
            }
            Socket::Gone => Err(Outcome::Internal("socket gone".into())),
        }
    }

    /// Flushes what is queued (a refusal status) and reports the refusal.
    async fn refuse(&mut self, reason: String) -> Outcome {
        let _ = self.flush().await;
        if let Socket::Async { writer, .. } = &mut self.socket {
            let _ = writer.shutdown().await;
        }
        Outcome::Refused(reason)
    }
}

/// Drops `written` bytes from the front of the queue.
fn consume(pending: &mut VecDeque<Bytes>, mut written: usize) {
    while written > 0 {
        let Some(front) = pending.front_mut() else {
            return;
        };
        if written >= front.len() {
            written -= front.len();
            pending.pop_front();
        } else {
            front.advance(written);
            written = 0;
        }
    }
}

/// Serves one accepted socket to its end.
pub async fn run(ctx: Arc<RtmpContext>, socket: TcpStream, peer: SocketAddr) {
    let (reader, writer) = socket.into_split();
    let mut io = Io {
        socket: Socket::Async { reader, writer },
        handshake_buf: BytesMut::new(),
        pending: VecDeque::new(),
        read_chunk: 4096,
        peer,
        proto: ServerProtocol::new(),
        write_timeout: Duration::from_secs(ctx.settings.write_timeout_secs),
        metrics: ctx.media.clone(),
    };
    let outcome = serve(&ctx, &mut io).await;
    let received = io.proto.bytes_received();
    match &outcome {
        Outcome::Closed
        | Outcome::Unpublished
        | Outcome::StreamEnded
        | Outcome::Shutdown
        | Outcome::Stopped => {
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
        Ok(Ok(Role::Publish(state))) => publish::run(ctx, io, state).await,
        Ok(Ok(Role::Play(state))) => play::run(ctx, io, state).await,
    }
}

/// An admitted publisher.
pub(super) struct PublishState {
    pub stream: Stream,
    pub stream_id: u32,
    pub session_id: uuid::Uuid,
    pub publisher: Publisher,
    /// Set when this publisher continues a lingering session: the config generation to
    /// continue counting from.
    pub continues_generation: Option<u32>,
}

/// An admitted player.
pub(super) struct PlayState {
    pub stream: Stream,
    pub stream_id: u32,
    pub hub: Arc<StreamHub>,
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
    if stream.profile.is_some() {
        refuse(
            io,
            "NetStream.Publish.Denied",
            "a transcoded profile is made by the server; publish to the group's passthrough",
        );
        let reason = format!("publish {}: a transcoded profile", stream.streamname);
        return Err(io.refuse(reason).await);
    }
    if let Some(lingering) = ctx.lingering.take(stream.id) {
        return resume_publisher(ctx, io, stream_id, &key, stream, lingering).await;
    }
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
    session::start_sinks(ctx, &stream, &app, session.id, &publisher).await;
    io.proto.accept_publish(stream_id, &key);
    tracing::info!(peer = %io.peer, stream = %stream.streamname, session = %session.id, %app, "publishing started");
    Ok(Role::Publish(PublishState {
        stream,
        stream_id,
        session_id: session.id,
        publisher,
        continues_generation: None,
    }))
}

/// A publisher reconnecting within the grace period continues the lingering session.
async fn resume_publisher(
    ctx: &Arc<RtmpContext>,
    io: &mut Io,
    stream_id: u32,
    key: &str,
    stream: Stream,
    lingering: session::Lingering,
) -> Result<Role, Outcome> {
    if matches!(stream.state, StreamState::Locked | StreamState::Deleted) {
        let why = "stream is locked or deleted";
        io.proto
            .reject_publish(stream_id, "NetStream.Publish.Denied", why);
        session::end(
            ctx,
            &stream,
            lingering.session_id,
            lingering.publisher,
            EndReason::Stopped,
        )
        .await;
        return Err(io
            .refuse(format!("publish {}: {why}", stream.streamname))
            .await);
    }
    let generation = lingering.publisher.config_generation();
    lingering.publisher.resume();
    io.proto.accept_publish(stream_id, key);
    tracing::info!(peer = %io.peer, stream = %stream.streamname, session = %lingering.session_id, "publisher reconnected within the grace period; session continues");
    Ok(Role::Publish(PublishState {
        stream,
        stream_id,
        session_id: lingering.session_id,
        publisher: lingering.publisher,
        continues_generation: Some(generation),
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

/// Resets and aborts that end a connection the way a client closing it does.
pub(super) fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}
