//! A connection's socket and why a connection ended.
//!
//! [`Io`] owns the socket — on tokio's reactor while the connection negotiates and plays,
//! off it ("polled") while it publishes, so segment arrivals wake nobody and the publish loop
//! reads on the shared ingest grid (see `rtmp.ingest_batch_ms`) — and the sans-IO protocol
//! state machine it feeds. [`Outcome`] is the one error type a connection task ends with,
//! logged once with the peer.

use super::protocol::{ProtocolError, ServerProtocol};
use crate::flv::FlvError;
use crate::session::Refusal;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::{IoSlice, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Why a connection ended; logged once, where its task ends.
#[derive(Debug, thiserror::Error)]
pub enum Outcome {
    #[error("closed by the client")]
    Closed,
    /// The publisher unpublished (FCUnpublish/deleteStream/closeStream) before closing.
    #[error("unpublished by the client")]
    Unpublished,
    /// Admission refused `request` (e.g. `publish "ABCDE-x1Y2z"`).
    #[error("refused {request}: {refusal}")]
    Refused { request: String, refusal: Refusal },
    #[error("{0} deadline passed")]
    Timeout(&'static str),
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("socket error: {0}")]
    Io(#[source] std::io::Error),
    /// A media message the demuxer refused, in the connection's first `received` bytes.
    #[error("malformed media (within the first {received} bytes received): {source}")]
    BadMedia {
        received: u64,
        #[source]
        source: FlvError,
    },
    #[error("player too slow ({0} skips in a minute)")]
    TooSlow(u32),
    #[error("server shutdown")]
    Shutdown,
    /// An operator stopped or deleted the stream.
    #[error("stopped by an operator")]
    Stopped,
    #[error("stream ended")]
    StreamEnded,
    /// A state this code should never reach (a bug), named.
    #[error("internal error: {0}")]
    Internal(&'static str),
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
pub struct Drained {
    pub bytes: usize,
    pub eof: bool,
    /// The read filled the read buffer: the socket may hold more.
    pub more: bool,
}

/// Control output a polled publisher may leave unsent (it should read our acks).
const MAX_UNSENT_BYTES: usize = 1 << 20;
/// Receive buffer of a publisher read on ticks (Linux doubles it): a 100 ms tick of a
/// 40 Mbit/s stream, or a 6 s burst of an OBS-default 2.5 Mbit/s one, fits.
const PUBLISH_RECV_BUFFER: usize = 1 << 20;

pub struct Io {
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
            return Err(Outcome::Internal("async read on a polled socket"));
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
                .map_err(|_| Outcome::Internal("the socket halves do not belong together"))?;
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

    /// Reads once from a polled socket, without waiting: up to 64 KiB into the protocol.
    /// The caller turns what arrived into messages before reading again, so the protocol's
    /// receive buffer holds one read, not a tick's worth (a burst after a stall can be
    /// megabytes).
    pub fn read_available(&mut self) -> Result<Drained, Outcome> {
        thread_local! {
            /// Reused read buffer: std reads need initialised memory, so one zeroed buffer
            /// per thread beats zeroing per read or holding one per connection.
            static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
        }
        let Socket::Polled(stream) = &mut self.socket else {
            return Err(Outcome::Internal("polled read on an async socket"));
        };
        let proto = &mut self.proto;
        let bytes_in = &self.metrics.bytes_in;
        let drained = SCRATCH.with_borrow_mut(|scratch| {
            let mut drained = Drained {
                bytes: 0,
                eof: false,
                more: false,
            };
            loop {
                match stream.read(scratch) {
                    Ok(0) => drained.eof = true,
                    Ok(n) => {
                        proto.receive(&scratch[..n]).map_err(Outcome::Protocol)?;
                        drained.bytes = n;
                        drained.more = n == scratch.len();
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Outcome::Io(e)),
                }
                return Ok(drained);
            }
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
            Socket::Gone => Err(Outcome::Internal("socket gone")),
        }
    }

    /// Flushes what is queued (a refusal status), closes the socket's sending side and
    /// reports the refusal.
    pub async fn refuse(&mut self, request: String, refusal: Refusal) -> Outcome {
        let _ = self.flush().await;
        if let Socket::Async { writer, .. } = &mut self.socket {
            let _ = writer.shutdown().await;
        }
        Outcome::Refused { request, refusal }
    }

    /// An `Io` for a freshly accepted socket.
    pub fn new(
        socket: TcpStream,
        peer: SocketAddr,
        write_timeout: Duration,
        metrics: crate::metrics::MediaMetrics,
    ) -> Self {
        let (reader, writer) = socket.into_split();
        Io {
            socket: Socket::Async { reader, writer },
            handshake_buf: BytesMut::new(),
            pending: VecDeque::new(),
            read_chunk: 4096,
            peer,
            proto: ServerProtocol::new(),
            write_timeout,
            metrics,
        }
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

/// Resets and aborts that end a connection the way a client closing it does.
pub fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}
