//! The publish loop: protocol events → FLV demux → hub, ended through the live session
//! (`session::Publishing::finish`: the session ends, or waits for a reconnect).
//!
//! By default the socket is off tokio's reactor and read on a process-wide grid of
//! `rtmp.ingest_batch_ms` (100 ms): every publisher's timer fires in the same tick, so one
//! thread wakeup reads all streams, instead of one wakeup per TCP segment. That is what makes
//! a publishing stream cost a fraction of nginx-rtmp's CPU; it adds at most one tick of
//! latency. A tick drains the socket one 64 KiB read at a time, demuxing each before the next
//! (the receive buffer stays one read deep), and hands the tick's packets to the hub at once.
//! With `ingest_batch_ms = 0` the socket stays on the reactor and every arrival is read at
//! once.

use super::context::RtmpContext;
use super::io::{is_disconnect, Io, Outcome};
use super::protocol::{MediaKind, ProtocolError, ProtocolEvent};
use crate::catalog::{EndReason, Stream};
use crate::flv::{Demuxed, Demuxer};
use crate::media::Packet;
use crate::session::Publishing;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// An admitted publisher.
pub(super) struct PublishState {
    /// The RTMP message stream it publishes on.
    pub stream_id: u32,
    pub publishing: Publishing,
}

/// The most a publisher may deliver in one tick before the others get their turn.
const MAX_BYTES_PER_TICK: usize = 4 << 20;

/// Feeds one media event into the demuxer; packets gather in `batch` for the hub. Packets
/// carry the codec configuration they need, so a configuration change is in order with them.
fn ingest(
    demuxer: &mut Demuxer,
    batch: &mut Vec<Packet>,
    stream: &Stream,
    kind: MediaKind,
    timestamp: u32,
    payload: bytes::Bytes,
    received: u64,
) -> Result<(), Outcome> {
    let result = match kind {
        MediaKind::Video => demuxer.video(timestamp, payload),
        MediaKind::Audio => demuxer.audio(timestamp, payload),
        MediaKind::Data => {
            if let Err(e) = demuxer.script(&payload) {
                // Script data is advisory; a bad one is logged, not fatal.
                tracing::warn!(stream = %stream.streamname, error = %e, "ignoring malformed script data");
            }
            return Ok(());
        }
    };
    match result {
        Ok(Demuxed::Packet(packet)) => batch.push(packet),
        Ok(Demuxed::ConfigChanged { warning }) => {
            let generation = demuxer.config().generation;
            if let Some(warning) = warning {
                tracing::warn!(stream = %stream.streamname, generation, %warning, "codec configuration");
            } else {
                tracing::debug!(stream = %stream.streamname, generation, "codec configuration changed");
            }
        }
        Ok(Demuxed::Nothing) => {}
        Err(source) => return Err(Outcome::BadMedia { received, source }),
    }
    Ok(())
}

/// Handles every queued protocol event; `Some` when the client ended the publish.
fn handle_events(
    io: &mut Io,
    demuxer: &mut Demuxer,
    state: &PublishState,
) -> Result<Option<Outcome>, Outcome> {
    let mut batch = Vec::new();
    let outcome = handle_events_into(io, demuxer, state, &mut batch);
    // What arrived before an end or an error still reaches the readers.
    state.publishing.publisher().push_all(&mut batch);
    outcome
}

fn handle_events_into(
    io: &mut Io,
    demuxer: &mut Demuxer,
    state: &PublishState,
    batch: &mut Vec<Packet>,
) -> Result<Option<Outcome>, Outcome> {
    let stream = &state.publishing.session().stream;
    while let Some(event) = io.proto.poll_event()? {
        match event {
            ProtocolEvent::Media {
                kind,
                timestamp,
                payload,
                ..
            } => {
                let received = io.proto.bytes_received();
                ingest(demuxer, batch, stream, kind, timestamp, payload, received)?
            }
            ProtocolEvent::StreamClosed { .. } => return Ok(Some(Outcome::Unpublished)),
            ProtocolEvent::Publish { stream_id, .. } => io.proto.reject_publish(
                stream_id,
                "NetStream.Publish.BadName",
                "this connection already publishes",
            ),
            ProtocolEvent::Play { stream_id, .. } => io
                .proto
                .reject_play(stream_id, "this connection is publishing"),
            ProtocolEvent::Connect { .. } => {
                return Err(Outcome::Protocol(ProtocolError::Command {
                    command: "connect".into(),
                    reason: "sent twice".into(),
                }))
            }
        }
    }
    Ok(None)
}

/// Handles the queued events and sends what they produced; `Some` ends the publish.
async fn process(io: &mut Io, demuxer: &mut Demuxer, state: &PublishState) -> Option<Outcome> {
    match handle_events(io, demuxer, state) {
        Ok(Some(outcome)) | Err(outcome) => Some(outcome),
        Ok(None) => io.flush().await.err(),
    }
}

/// The next instant on the shared grid, so every publisher wakes in the same timer tick.
fn next_tick(epoch: Instant, batch: Duration) -> Instant {
    let since = Instant::now().saturating_duration_since(epoch).as_nanos();
    let step = batch.as_nanos().max(1);
    let ticks = since / step + 1;
    epoch + Duration::from_nanos(u64::try_from(ticks * step).unwrap_or(u64::MAX))
}

async fn ticked(
    ctx: &Arc<RtmpContext>,
    io: &mut Io,
    demuxer: &mut Demuxer,
    state: &PublishState,
) -> Outcome {
    let batch = Duration::from_millis(ctx.settings.ingest_batch_ms);
    let read_timeout = Duration::from_secs(ctx.settings.read_timeout_secs);
    if let Err(outcome) = io.take_off_reactor() {
        return outcome;
    }
    let hub = state.publishing.publisher().hub();
    let mut last_data = Instant::now();
    let mut eof = false;
    loop {
        if let Some(outcome) = process(io, demuxer, state).await {
            return outcome;
        }
        if eof {
            return Outcome::Closed;
        }
        // Only the tick wakes this loop; shutdown and stop are plain flags read once per tick
        // (at most one tick late). Polling their tokens instead took a lock and registered a
        // waiter on every tick of every publisher (~1.5 % of ingest CPU in perf).
        tokio::time::sleep_until(next_tick(ctx.clock_epoch, batch)).await;
        if ctx.shutting_down.load(Ordering::Acquire) {
            return Outcome::Shutdown;
        }
        if hub.is_stopping() {
            return Outcome::Stopped;
        }
        // Drain the socket one read at a time, each turned into packets before the next,
        // so the receive buffer stays one read deep; the tick's packets reach the hub at once.
        let mut batch = Vec::new();
        let mut read = 0;
        loop {
            let drained = match io.read_available() {
                Ok(drained) => drained,
                Err(outcome) => {
                    state.publishing.publisher().push_all(&mut batch);
                    return outcome;
                }
            };
            read += drained.bytes;
            eof |= drained.eof;
            match handle_events_into(io, demuxer, state, &mut batch) {
                Ok(None) => {}
                Ok(Some(outcome)) | Err(outcome) => {
                    // What arrived before an end or an error still reaches the readers.
                    state.publishing.publisher().push_all(&mut batch);
                    return outcome;
                }
            }
            if !drained.more || read >= MAX_BYTES_PER_TICK {
                break;
            }
        }
        state.publishing.publisher().push_all(&mut batch);
        let now = Instant::now();
        if read > 0 {
            last_data = now;
        } else if !eof && now.duration_since(last_data) > read_timeout {
            return Outcome::Timeout("read");
        }
    }
}

async fn event_driven(
    ctx: &Arc<RtmpContext>,
    io: &mut Io,
    demuxer: &mut Demuxer,
    state: &PublishState,
) -> Outcome {
    let read_timeout = Duration::from_secs(ctx.settings.read_timeout_secs);
    let cancelled = ctx.shutdown.cancelled();
    tokio::pin!(cancelled);
    let stopped = state.publishing.publisher().hub().stop_requested();
    tokio::pin!(stopped);
    io.read_chunk = 64 * 1024;
    let mut last_data = Instant::now();
    loop {
        if let Some(outcome) = process(io, demuxer, state).await {
            return outcome;
        }
        tokio::select! {
            biased;
            _ = &mut cancelled => return Outcome::Shutdown,
            _ = &mut stopped => return Outcome::Stopped,
            _ = tokio::time::sleep_until(last_data + read_timeout) => return Outcome::Timeout("read"),
            read = io.read_some() => match read {
                Ok(true) => last_data = Instant::now(),
                Ok(false) => return Outcome::Closed,
                Err(outcome) => return outcome,
            },
        }
    }
}

/// Runs an admitted publisher to its end and closes its session (or holds it for a
/// reconnect, see `session`).
pub(super) async fn run(ctx: &Arc<RtmpContext>, io: &mut Io, state: PublishState) -> Outcome {
    let mut demuxer = match state.publishing.continues_generation() {
        Some(generation) => Demuxer::continuing_after(generation),
        None => Demuxer::default(),
    };
    let outcome = if ctx.settings.ingest_batch_ms == 0 {
        event_driven(ctx, io, &mut demuxer, &state).await
    } else {
        ticked(ctx, io, &mut demuxer, &state).await
    };
    let farewell = match outcome {
        Outcome::Shutdown => Some("server shutting down"),
        Outcome::Stopped => Some("stream stopped by an operator"),
        _ => None,
    };
    if let Some(why) = farewell {
        io.proto.stop_publish(state.stream_id, why);
        let _ = io.flush().await;
    }
    let reason = match &outcome {
        Outcome::Closed | Outcome::Unpublished => EndReason::ClientClosed,
        // A reset after FCUnpublish/deleteStream, or by a client that just vanished, is a
        // normal end for a publisher (OBS ends with FIN and RST).
        Outcome::Io(e) if is_disconnect(e) => EndReason::ClientClosed,
        Outcome::Timeout(_) => EndReason::Timeout,
        Outcome::Shutdown => EndReason::Shutdown,
        Outcome::Stopped => EndReason::Stopped,
        _ => EndReason::Error,
    };
    let unpublished = matches!(outcome, Outcome::Unpublished);
    let (streamname, session_id) = {
        let session = state.publishing.session();
        (session.stream.streamname.clone(), session.session_id)
    };
    state.publishing.finish(reason, unpublished).await;
    tracing::info!(peer = %io.peer, stream = %streamname, session = %session_id, reason = reason.as_str(), "publisher connection ended");
    outcome
}
