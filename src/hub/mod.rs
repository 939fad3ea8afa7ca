//! One hub per live stream: a ring of recent packets, the codec configuration in force, and
//! readers that each hold their own cursor.
//!
//! - [`Publisher::push`] is synchronous (lock, append, prune, unlock, wake): ingest never waits
//!   on a reader, and nothing is copied per reader ([`Packet`] clones are reference counts).
//! - The ring always keeps the last GOP (from the newest keyframe) and at least
//!   `min_keep_ms` of media, so a new reader starts at a keyframe at once.
//! - Lossless readers (recorder, replay) hold the ring back until they have read a packet, up
//!   to `max_backlog_bytes` / `max_backlog_ms` (wall-clock age, so a publisher sending faster
//!   than real time does not trip it); past that ingest wins and the reader gets
//!   [`Event::Gap`] — the loss is explicit.
//! - Lossy readers (players, thumbnails) hold nothing back: behind the ring, or more than
//!   `lossy_max_lag_ms` behind the newest packet with a newer keyframe available, they get
//!   [`Event::Gap`] and resume at the newest keyframe.
//!
//! Not here: what readers do with packets, and publish admission (see `rtmp` and `catalog`).

mod ring;
#[cfg(test)]
mod tests;

use crate::media::{CodecConfig, Packet};
use ring::Ring;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use uuid::Uuid;

/// Ring limits; see the module docs for what each protects.
#[derive(Debug, Clone, Copy)]
pub struct RingLimits {
    pub min_keep_ms: i64,
    pub max_backlog_bytes: usize,
    /// Wall-clock age of the oldest packet a lossless reader may still need.
    pub max_backlog_ms: i64,
    pub lossy_max_lag_ms: i64,
}

impl Default for RingLimits {
    fn default() -> Self {
        RingLimits {
            min_keep_ms: 2_000,
            max_backlog_bytes: 64 << 20,
            max_backlog_ms: 30_000,
            lossy_max_lag_ms: 3_000,
        }
    }
}

/// How a reader wants to be treated when it falls behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Holds the ring back (up to the backlog caps): recorder, replay.
    Lossless,
    /// Skips to the newest keyframe when behind: players, thumbnails, motion clips.
    Lossy,
}

/// What a reader gets next.
#[derive(Debug, Clone)]
pub enum Event {
    Packet(Arc<Packet>),
    /// `missed` packets were skipped; the next packet is a keyframe.
    Gap {
        missed: u64,
    },
    /// The publisher left; no more packets will come.
    Ended,
}

/// The shared state of one live stream.
pub struct StreamHub {
    pub stream_id: Uuid,
    ring: Mutex<Ring>,
    notify: Notify,
    next_reader_id: AtomicU64,
    /// Total packets lossy readers skipped, for metrics and logs.
    pub dropped_packets: AtomicU64,
    /// Cancelled when an operator stops or deletes the stream: its publisher must go.
    stop: tokio_util::sync::CancellationToken,
    /// Set with `stop`: a plain load for the ticked publish loop, which checks it once per
    /// tick instead of polling the token (a lock and a waiter registration each time).
    stopping: AtomicBool,
}

impl StreamHub {
    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding this lock would be a bug in ring code; recover the data.
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a reader positioned at the newest keyframe (or the oldest packet when no
    /// keyframe has arrived yet).
    pub fn subscribe(self: &Arc<Self>, delivery: Delivery) -> Subscription {
        let id = self.next_reader_id.fetch_add(1, Ordering::Relaxed);
        let mut ring = self.lock();
        let cursor = ring.start_position();
        if delivery == Delivery::Lossless {
            ring.lossless_cursors.insert(id, cursor);
        }
        Subscription {
            hub: self.clone(),
            id,
            delivery,
            cursor,
        }
    }

    /// The codec configuration in force (for a reader that starts now).
    pub fn config(&self) -> Arc<CodecConfig> {
        self.lock().config.clone()
    }

    /// The newest random access point held (for a snapshot) and whether the stream ended.
    /// Cheap: no reader is registered and nothing is copied but one `Arc`.
    pub fn newest_keyframe(&self) -> (Option<Arc<Packet>>, bool) {
        let ring = self.lock();
        (ring.newest_keyframe(), ring.ended)
    }

    /// Asks the stream's publisher (connected, or waiting for a reconnect) to stop.
    pub fn stop_publishing(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.cancel();
    }

    /// Whether `stop_publishing` was called; for loops that wake on their own anyway.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Resolves once `stop_publishing` was called.
    pub async fn stop_requested(&self) {
        self.stop.cancelled().await;
    }

    /// Number of packets and bytes held, for metrics and tests.
    pub fn ring_usage(&self) -> (usize, usize) {
        let ring = self.lock();
        (ring.packets.len(), ring.bytes)
    }
}

/// The one writer of a hub. Dropping it ends the stream for every reader.
pub struct Publisher {
    hub: Arc<StreamHub>,
    registry: Hubs,
}

impl Publisher {
    /// Appends a packet and wakes readers. Never waits on a reader.
    pub fn push(&self, packet: Packet) {
        self.hub.lock().push(packet, std::time::Instant::now());
        self.hub.notify.notify_waiters();
    }

    /// Appends every packet of `batch` (emptying it) under one lock and wakes readers once:
    /// what a publisher read in one tick costs one clock read and one wakeup, not one each.
    pub fn push_all(&self, batch: &mut Vec<Packet>) {
        if batch.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        {
            let mut ring = self.hub.lock();
            for packet in batch.drain(..) {
                ring.push(packet, now);
            }
        }
        self.hub.notify.notify_waiters();
    }

    /// Publishes a new codec configuration (sequence header or metadata change) for readers
    /// that start after this point.
    pub fn set_config(&self, config: Arc<CodecConfig>) {
        self.hub.lock().config = config;
    }

    /// A reconnected publisher takes over: its timestamps (restarting near 0) are shifted to
    /// continue where the previous publisher's stopped, so readers see one timeline.
    pub fn resume(&self) {
        self.hub.lock().timeline.rebase_pending = true;
    }

    /// The generation of the configuration in force, so a new demuxer continues counting.
    pub fn config_generation(&self) -> u32 {
        self.hub.lock().config.generation
    }

    /// The hub, for tests and status.
    pub fn hub(&self) -> &Arc<StreamHub> {
        &self.hub
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.hub.lock().ended = true;
        self.hub.notify.notify_waiters();
        self.registry.remove(self.hub.stream_id, &self.hub);
    }
}

/// A reader's cursor into one hub.
pub struct Subscription {
    hub: Arc<StreamHub>,
    id: u64,
    delivery: Delivery,
    /// Sequence number of the next packet to read.
    cursor: u64,
}

impl Subscription {
    /// The next event if one is ready, without waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        let mut ring = self.hub.lock();
        let (event, cursor) = ring.read(self.cursor, self.delivery);
        self.cursor = cursor;
        if self.delivery == Delivery::Lossless {
            ring.lossless_cursors.insert(self.id, cursor);
        }
        drop(ring);
        if let Some(Event::Gap { missed }) = &event {
            self.hub
                .dropped_packets
                .fetch_add(*missed, Ordering::Relaxed);
        }
        event
    }

    /// Waits for the next event.
    pub async fn next(&mut self) -> Event {
        let hub = self.hub.clone();
        loop {
            let notified = hub.notify.notified();
            tokio::pin!(notified);
            // Register before checking so a push between the check and the wait is not lost.
            notified.as_mut().enable();
            if let Some(event) = self.try_next() {
                return event;
            }
            notified.await;
        }
    }

    /// The hub this reader is attached to.
    pub fn hub(&self) -> &Arc<StreamHub> {
        &self.hub
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if self.delivery == Delivery::Lossless {
            self.hub.lock().lossless_cursors.remove(&self.id);
        }
    }
}

/// Why a publisher could not claim a hub.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("stream already has a publisher")]
pub struct AlreadyPublishing;

/// The registry of live hubs, keyed by stream id. Cheap to clone.
#[derive(Clone, Default)]
pub struct Hubs {
    inner: Arc<Mutex<HashMap<Uuid, Arc<StreamHub>>>>,
    limits: RingLimits,
}

impl Hubs {
    /// A registry whose hubs use `limits`.
    pub fn new(limits: RingLimits) -> Self {
        Hubs {
            inner: Arc::default(),
            limits,
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<Uuid, Arc<StreamHub>>> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes the caller the stream's one publisher, or refuses if it already has one.
    pub fn claim(&self, stream_id: Uuid) -> Result<Publisher, AlreadyPublishing> {
        let mut map = self.map();
        if map.contains_key(&stream_id) {
            return Err(AlreadyPublishing);
        }
        let hub = Arc::new(StreamHub {
            stream_id,
            ring: Mutex::new(Ring::new(self.limits)),
            notify: Notify::new(),
            next_reader_id: AtomicU64::new(0),
            dropped_packets: AtomicU64::new(0),
            stop: Default::default(),
            stopping: AtomicBool::new(false),
        });
        map.insert(stream_id, hub.clone());
        Ok(Publisher {
            hub,
            registry: self.clone(),
        })
    }

    /// The live hub of a stream, if it has a publisher.
    pub fn get(&self, stream_id: Uuid) -> Option<Arc<StreamHub>> {
        self.map().get(&stream_id).cloned()
    }

    /// Number of live hubs.
    pub fn live_count(&self) -> usize {
        self.map().len()
    }

    fn remove(&self, stream_id: Uuid, hub: &Arc<StreamHub>) {
        let mut map = self.map();
        if map.get(&stream_id).is_some_and(|h| Arc::ptr_eq(h, hub)) {
            map.remove(&stream_id);
        }
    }
}
