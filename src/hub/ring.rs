//! The ring buffer behind a hub: items numbered by a sequence, an index of the places a reader
//! may start, and the cursors of lossless readers. Pure data structure, no waiting; generic
//! over what it holds ([`RingItem`]).

use super::{Delivery, Event, RingLimits};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether a reader may start at an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only after an access point (a video frame between keyframes, a dependent chunk).
    None,
    /// A start point only while the ring has seen no [`Access::Strong`] item (audio frames
    /// of a stream that has no video yet).
    Weak,
    /// Always a start point (a video keyframe, an independent chunk).
    Strong,
}

/// What a ring holds: it says where readers may start, its time and its size.
pub trait RingItem: Send + Sync + 'static {
    /// State that makes a publisher's items continuous across a publisher reconnect (held
    /// under the ring's lock; `()` for items that need none).
    type Timeline: Default + Send;

    /// Puts the item on the hub's timeline before it is stored.
    fn place(&mut self, timeline: &mut Self::Timeline);

    /// Whether a reader may start here.
    fn access(&self) -> Access;

    /// Its time in milliseconds, non-decreasing along the ring (decode order).
    fn time_ms(&self) -> i64;

    /// Bytes it holds, for the byte cap.
    fn size(&self) -> usize;
}

#[derive(Clone, Copy)]
struct Meta {
    arrived: Instant,
    time_ms: i64,
    size: usize,
}

pub(super) struct Ring<T: RingItem> {
    /// `items[i]` has sequence number `base_seq + i`.
    pub items: VecDeque<Arc<T>>,
    /// What pruning needs about each item, parallel to `items` and kept compact so the hot
    /// path does not touch cold items: arrival (the backlog age cap is wall-clock time, so a
    /// fast publisher does not trip it), time and size.
    meta: VecDeque<Meta>,
    pub base_seq: u64,
    /// Sequence numbers of access points still in the ring, oldest first: the strong ones
    /// once any arrived, else the weak ones.
    access_points: VecDeque<u64>,
    has_strong: bool,
    /// Sum of item sizes held.
    pub bytes: usize,
    pub lossless_cursors: HashMap<u64, u64>,
    pub ended: bool,
    pub timeline: T::Timeline,
    limits: RingLimits,
}

impl<T: RingItem> Ring<T> {
    pub fn new(limits: RingLimits) -> Self {
        Ring {
            items: VecDeque::new(),
            meta: VecDeque::new(),
            base_seq: 0,
            access_points: VecDeque::new(),
            has_strong: false,
            bytes: 0,
            lossless_cursors: HashMap::new(),
            ended: false,
            timeline: T::Timeline::default(),
            limits,
        }
    }

    fn head_seq(&self) -> u64 {
        self.base_seq + self.items.len() as u64
    }

    fn get(&self, seq: u64) -> Option<&Arc<T>> {
        seq.checked_sub(self.base_seq)
            .and_then(|i| self.items.get(i as usize))
    }

    fn time_at(&self, seq: u64) -> Option<i64> {
        seq.checked_sub(self.base_seq)
            .and_then(|i| self.meta.get(i as usize))
            .map(|m| m.time_ms)
    }

    /// The newest access point.
    pub fn newest_access_point(&self) -> Option<Arc<T>> {
        self.access_points
            .back()
            .and_then(|&seq| self.get(seq))
            .cloned()
    }

    pub fn start_position(&self) -> u64 {
        self.access_points.back().copied().unwrap_or(self.base_seq)
    }

    /// Stores an item; returns whether it is an access point.
    pub fn push(&mut self, mut item: T, now: Instant) -> bool {
        item.place(&mut self.timeline);
        let access = item.access();
        if access == Access::Strong && !self.has_strong {
            // Weak access points stop counting once a strong one exists.
            self.has_strong = true;
            self.access_points.clear();
        }
        let is_access_point = match access {
            Access::Strong => true,
            Access::Weak => !self.has_strong,
            Access::None => false,
        };
        if is_access_point {
            self.access_points.push_back(self.head_seq());
        }
        let size = item.size();
        self.bytes += size;
        self.meta.push_back(Meta {
            arrived: now,
            time_ms: item.time_ms(),
            size,
        });
        self.items.push_back(Arc::new(item));
        self.prune(now);
        is_access_point
    }

    /// Drops items no reader needs any more, then enforces the backlog caps.
    fn prune(&mut self, now: Instant) {
        let newest = match self.meta.back() {
            Some(m) => m.time_ms,
            None => return,
        };
        let last_access = self.access_points.back().copied().unwrap_or(self.base_seq);
        let mut keep_from = last_access;
        if let Some(&slowest) = self.lossless_cursors.values().min() {
            keep_from = keep_from.min(slowest);
        }
        while self.base_seq < keep_from {
            let Some(front) = self.meta.front() else {
                break;
            };
            if newest - front.time_ms < self.limits.min_keep_ms {
                break;
            }
            self.pop_front();
        }
        // Caps: ingest wins over a lossless reader that is too far behind, but the newest
        // access point's run stays unless it alone exceeds the byte cap.
        let max_age = Duration::from_millis(u64::try_from(self.limits.max_backlog_ms).unwrap_or(0));
        while let Some(front) = self.meta.front() {
            let too_old = now.duration_since(front.arrived) > max_age;
            let too_big = self.bytes > self.limits.max_backlog_bytes;
            let before_last_access = self.base_seq < last_access;
            if !(too_big || (too_old && before_last_access)) || self.items.len() == 1 {
                break;
            }
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if self.items.pop_front().is_some() {
            let size = self.meta.pop_front().map_or(0, |m| m.size);
            self.bytes -= size;
            self.base_seq += 1;
            while self
                .access_points
                .front()
                .is_some_and(|&k| k < self.base_seq)
            {
                self.access_points.pop_front();
            }
        }
    }

    /// The event at `cursor` and the cursor after it; `None` when caught up and not ended.
    pub fn read(&self, cursor: u64, delivery: Delivery) -> (Option<Event<T>>, u64) {
        let newest_access = self.access_points.back().copied();
        if cursor < self.base_seq {
            // Fell out of the ring: resume at the newest access point (or the oldest item).
            let resume = newest_access.unwrap_or(self.base_seq);
            return (
                Some(Event::Gap {
                    missed: resume - cursor,
                }),
                resume,
            );
        }
        if delivery == Delivery::Lossy {
            if let (Some(access), Some(at), Some(newest)) =
                (newest_access, self.time_at(cursor), self.meta.back())
            {
                if access > cursor && newest.time_ms - at > self.limits.lossy_max_lag_ms {
                    return (
                        Some(Event::Gap {
                            missed: access - cursor,
                        }),
                        access,
                    );
                }
            }
        }
        match self.get(cursor) {
            Some(item) => (Some(Event::Item(item.clone())), cursor + 1),
            None if self.ended => (Some(Event::Ended), cursor),
            None => (None, cursor),
        }
    }
}
