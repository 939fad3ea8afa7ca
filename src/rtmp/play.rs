//! The play loop: a lossy hub reader relayed to an RTMP player.
//!
//! Media goes out as the packet's shared chunked form ([`crate::media::Packet::rtmp_chunks`],
//! built once per packet for all players on message stream 1) with vectored writes, so a
//! player costs no copy or encoding per packet. A player that falls behind skips to the
//! newest keyframe; one that keeps falling behind, or accepts no data for the write
//! deadline, is disconnected. It never slows the publisher or other players.

use super::context::RtmpContext;
use super::io::{Io, Outcome};
use super::protocol::{encode_media, MediaKind, ProtocolEvent};
use crate::catalog::Stream;
use crate::hub::{Delivery, Event, StreamHub};
use crate::media::{CodecConfig, Packet, Track};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An admitted player.
pub(super) struct PlayState {
    pub stream: Stream,
    /// The RTMP message stream it plays on.
    pub stream_id: u32,
    pub hub: Arc<StreamHub>,
}

/// Output gathered per write: enough to amortise syscalls, small enough to stay responsive.
const PLAY_BATCH_BYTES: usize = 256 * 1024;

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

/// Queues a packet; returns the bytes queued.
fn send_packet(io: &mut Io, stream_id: u32, packet: &Packet) -> usize {
    let kind = match packet.track {
        Track::Video => MediaKind::Video,
        Track::Audio => MediaKind::Audio,
    };
    let timestamp = (packet.dts_ms & 0xFFFF_FFFF) as u32;
    if stream_id == 1 && io.proto.uses_shared_chunking() {
        let chunks: Bytes = packet
            .rtmp_chunks
            .get_or_init(|| encode_media(kind, 1, timestamp, &packet.flv_body))
            .clone();
        let len = chunks.len();
        io.queue(chunks);
        len
    } else {
        let before = io.proto.pending_output();
        io.proto
            .send_media(kind, stream_id, timestamp, &packet.flv_body);
        io.proto.pending_output() - before
    }
}

/// Per-player relay state.
struct Relay {
    stream_id: u32,
    sent_generation: Option<u32>,
    metadata_sent: Option<Bytes>,
    skips: Vec<Instant>,
    max_skips: usize,
    metrics: crate::metrics::MediaMetrics,
}

/// Takes a player off the `players` gauge however playing ends.
struct PlayerCount<'a>(&'a crate::metrics::MediaMetrics);

impl Drop for PlayerCount<'_> {
    fn drop(&mut self) {
        self.0.players.dec();
    }
}

impl Relay {
    /// Queues one hub event; returns the bytes queued, or the end of playing.
    fn handle(&mut self, io: &mut Io, event: Event) -> Result<usize, Outcome> {
        match event {
            Event::Item(packet) => {
                let ts = (packet.dts_ms & 0xFFFF_FFFF) as u32;
                if self.sent_generation != Some(packet.config.generation) {
                    send_config(io, self.stream_id, &packet.config, ts);
                    self.sent_generation = Some(packet.config.generation);
                    self.metadata_sent = packet.config.metadata.clone();
                } else if packet.config.metadata != self.metadata_sent {
                    if let Some(metadata) = &packet.config.metadata {
                        io.proto
                            .send_media(MediaKind::Data, self.stream_id, ts, metadata);
                    }
                    self.metadata_sent = packet.config.metadata.clone();
                }
                Ok(send_packet(io, self.stream_id, &packet))
            }
            Event::Gap { missed } => {
                self.metrics.dropped("rtmp_play", missed);
                let now = Instant::now();
                self.skips
                    .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
                self.skips.push(now);
                tracing::debug!(peer = %io.peer, missed, "player behind: skipped to the newest keyframe");
                if self.skips.len() > self.max_skips {
                    return Err(Outcome::TooSlow(self.skips.len() as u32));
                }
                Ok(0)
            }
            Event::Ended => {
                io.proto.end_play(self.stream_id);
                Err(Outcome::StreamEnded)
            }
        }
    }
}

/// Runs an admitted player to its end.
pub(super) async fn run(ctx: &Arc<RtmpContext>, io: &mut Io, state: PlayState) -> Outcome {
    let PlayState {
        stream,
        stream_id,
        hub,
    } = state;
    tracing::info!(peer = %io.peer, stream = %stream.streamname, "playing started");
    ctx.media.players.inc();
    let _counted = PlayerCount(&ctx.media);
    let mut subscription = hub.subscribe(Delivery::Lossy);
    drop(hub);
    let mut relay = Relay {
        stream_id,
        sent_generation: None,
        metadata_sent: None,
        skips: Vec::new(),
        max_skips: ctx.settings.max_player_skips_per_minute as usize,
        metrics: ctx.media.clone(),
    };
    let cancelled = ctx.shutdown.cancelled();
    tokio::pin!(cancelled);
    let outcome = loop {
        // Drain what is ready into one write.
        let mut failed = None;
        let mut batch = 0;
        while batch < PLAY_BATCH_BYTES {
            let Some(event) = subscription.try_next() else {
                break;
            };
            match relay.handle(io, event) {
                Ok(n) => batch += n,
                Err(outcome) => {
                    failed = Some(outcome);
                    break;
                }
            }
        }
        if let Err(outcome) = io.flush().await {
            break outcome;
        }
        if let Some(outcome) = failed {
            break outcome;
        }
        tokio::select! {
            biased;
            _ = &mut cancelled => break Outcome::Shutdown,
            event = subscription.next() => {
                if let Err(outcome) = relay.handle(io, event) {
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
