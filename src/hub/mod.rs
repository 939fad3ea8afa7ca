//! One hub per live stream: a ring of recent items, and readers that each hold their own
//! cursor. Generic over what it carries ([`RingItem`]): media packets today, and later decoded
//! frames (ABR) and CMAF chunks (low-latency playout), with the same rules for all.
//!
//! - [`Publisher::push`] is synchronous (lock, append, prune, unlock, wake): ingest never waits
//!   on a reader, and nothing is copied per reader (items are shared as `Arc`s).
//! - The ring always keeps the run from the newest access point (for packets: the last GOP)
//!   and at least `min_keep_ms` of media, so a new reader starts at an access point at once
//!   and a reader a moment behind does not lose what it was reading when a keyframe arrives.
//! - Lossless readers (recorder, replay) hold the ring back until they have read an item, up
//!   to `max_backlog_bytes` / `max_backlog_ms` (wall-clock age, so a publisher sending faster
//!   than real time does not trip it); past that ingest wins and the reader gets
//!   [`Event::Gap`] — the loss is explicit.
//! - Lossy readers (players, live HLS, pictures) hold nothing back: behind the ring, or more
//!   than `lossy_max_lag_ms` behind the newest item with a newer access point available, they
//!   get [`Event::Gap`] and resume at the newest access point.
//! - Waiting is by notification: readers wake on a push, access-point waiters (pictures) only
//!   on an access point, end waiters only at the end.
//!
//! Not here: what readers do with items, who may publish (`session`).

mod packet;
mod ring;
#[cfg(test)]
mod tests;

pub use packet::PacketTimeline;
pub use ring::{Access, RingItem};

use crate::media::Packet;
use ring::Ring;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Ring limits; see the module docs for what each protects.
#[derive(Debug, Clone, Copy)]
pub struct RingLimits {
    pub min_keep_ms: i64,
    pub max_backlog_bytes: usize,
    /// Wall-clock age of the oldest item a lossless reader may still need.
    pub max_backlog_ms: i64,
    pub lossy_max_lag_ms: i64,
}

impl Default for RingLimits {
    fn default() -> Self {
        RingLimits {
            min_keep_ms: 1_000,
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
    /// Skips to the newest access point when behind: players, live HLS, pictures.
    Lossy,
}

/// What a reader gets next.
#[derive(Debug)]
pub enum Event<T = Packet> {
    Item(Arc<T>),
    /// `missed` items were skipped; the next item is an access point.
    Gap {
        missed: u64,
    },
    /// The publisher left; no more items will come.
    Ended,
}

/// The shared state of one live stream.
pub struct StreamHub<T: RingItem = Packet> {
    ring: Mutex<Ring<T>>,
    /// Woken on every push and at the end.
    pushed: Notify,
    /// Woken when an access point is pushed and at the end.
    access_point: Notify,
    /// Cancelled when the publisher leaves.
    ended: CancellationToken,
    next_reader_id: AtomicU64,
    /// Total items lossy readers skipped, for metrics and logs.
    pub dropped_items: AtomicU64,
    /// Cancelled when an operator stops or deletes the stream: its publisher must go.
    stop: CancellationToken,
    /// Set with `stop`: a plain load for the ticked publish loop, which checks it once per
    /// tick instead of polling the token (a lock and a waiter registration each time).
    stopping: AtomicBool,
}

impl<T: RingItem> StreamHub<T> {
    fn lock(&self) -> MutexGuard<'_, Ring<T>> {
        // A panic while holding this lock would be a bug in ring code; recover the data.
        self.ring
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a reader positioned at the newest access point (or the oldest item when none has
    /// arrived yet).
    pub fn subscribe(self: &Arc<Self>, delivery: Delivery) -> Subscription<T> {
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

    /// The newest access point held (for a snapshot) and whether the stream ended. Cheap: no
    /// reader is registered and nothing is copied but one `Arc`.
    pub fn newest_access_point(&self) -> (Option<Arc<T>>, bool) {
        let ring = self.lock();
        (ring.newest_access_point(), ring.ended)
    }

    /// Waits for the newest access point to be one `wanted` accepts (it may be one already
    /// held); `None` when the stream ends first. Wakes only when an access point arrives.
    pub async fn wait_access_point(&self, wanted: impl Fn(&T) -> bool) -> Option<Arc<T>> {
        loop {
            let notified = self.access_point.notified();
            tokio::pin!(notified);
            // Register before checking so an access point pushed in between is not missed.
            notified.as_mut().enable();
            let (point, ended) = self.newest_access_point();
            if ended {
                return None;
            }
            if let Some(point) = point.filter(|p| wanted(p)) {
                return Some(point);
            }
            notified.await;
        }
    }

    /// Resolves once the publisher has left.
    pub async fn ended(&self) {
        self.ended.cancelled().await;
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

    /// Number of items and bytes held, for metrics and tests.
    pub fn ring_usage(&self) -> (usize, usize) {
        let ring = self.lock();
        (ring.items.len(), ring.bytes)
    }
}

/// The one writer of a hub. Dropping it ends the stream for every reader.
pub struct Publisher<T: RingItem = Packet> {
    hub: Arc<StreamHub<T>>,
}

impl<T: RingItem> Publisher<T> {
    /// A new hub and its one publisher.
    pub fn new(limits: RingLimits) -> Self {
        Publisher {
            hub: Arc::new(StreamHub {
                ring: Mutex::new(Ring::new(limits)),
                pushed: Notify::new(),
                access_point: Notify::new(),
                ended: CancellationToken::new(),
                next_reader_id: AtomicU64::new(0),
                dropped_items: AtomicU64::new(0),
                stop: CancellationToken::new(),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// Appends an item and wakes readers. Never waits on a reader.
    pub fn push(&self, item: T) {
        let access_point = self.hub.lock().push(item, std::time::Instant::now());
        self.wake(access_point);
    }

    /// Appends every item of `batch` (emptying it) under one lock and wakes readers once:
    /// what a publisher read in one tick costs one clock read and one wakeup, not one each.
    pub fn push_all(&self, batch: &mut Vec<T>) {
        if batch.is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        let mut access_point = false;
        {
            let mut ring = self.hub.lock();
            for item in batch.drain(..) {
                access_point |= ring.push(item, now);
            }
        }
        self.wake(access_point);
    }

    fn wake(&self, access_point: bool) {
        self.hub.pushed.notify_waiters();
        if access_point {
            self.hub.access_point.notify_waiters();
        }
    }

    /// The hub, for readers and status.
    pub fn hub(&self) -> &Arc<StreamHub<T>> {
        &self.hub
    }
}

impl Publisher<Packet> {
    /// A reconnected publisher takes over: its timestamps (restarting near 0) are shifted to
    /// continue where the previous publisher's stopped, so readers see one timeline.
    pub fn resume(&self) {
        self.hub.lock().timeline.rebase_pending = true;
    }

    /// The codec-configuration generation of the newest packet, so a new demuxer continues
    /// counting after it.
    pub fn config_generation(&self) -> u32 {
        self.hub.lock().timeline.generation
    }
}

impl<T: RingItem> Drop for Publisher<T> {
    fn drop(&mut self) {
        self.hub.lock().ended = true;
        self.hub.ended.cancel();
        self.hub.pushed.notify_waiters();
        self.hub.access_point.notify_waiters();
    }
}

/// A reader's cursor into one hub.
pub struct Subscription<T: RingItem = Packet> {
    hub: Arc<StreamHub<T>>,
    id: u64,
    delivery: Delivery,
    /// Sequence number of the next item to read.
    cursor: u64,
}

impl<T: RingItem> Subscription<T> {
    /// The next event if one is ready, without waiting.
    pub fn try_next(&mut self) -> Option<Event<T>> {
        let mut ring = self.hub.lock();
        let (event, cursor) = ring.read(self.cursor, self.delivery);
        self.cursor = cursor;
        if self.delivery == Delivery::Lossless {
            ring.lossless_cursors.insert(self.id, cursor);
        }
        drop(ring);
        if let Some(Event::Gap { missed }) = &event {
            self.hub.dropped_items.fetch_add(*missed, Ordering::Relaxed);
        }
        event
    }

    /// Waits for the next event.
    pub async fn next(&mut self) -> Event<T> {
        let hub = self.hub.clone();
        loop {
            let notified = hub.pushed.notified();
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
    pub fn hub(&self) -> &Arc<StreamHub<T>> {
        &self.hub
    }
}

impl<T: RingItem> Drop for Subscription<T> {
    fn drop(&mut self) {
        if self.delivery == Delivery::Lossless {
            self.hub.lock().lossless_cursors.remove(&self.id);
        }
    }
}
