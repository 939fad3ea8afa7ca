//! The ring buffer behind a hub: packets numbered by a sequence, a keyframe index, and the
//! cursors of lossless readers. Pure data structure, no waiting.

use super::{Delivery, Event, RingLimits};
use crate::media::{CodecConfig, Packet, Track};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
struct Meta {
    arrived: Instant,
    dts_ms: i64,
    size: usize,
}

/// Keeps a stream's timestamps continuous across a publisher reconnect: the new publisher's
/// clock (starting near 0 again) is shifted to continue where the old one stopped.
#[derive(Debug, Default)]
pub(super) struct Timeline {
    offset_ms: i64,
    pub rebase_pending: bool,
    /// Where the media so far ends: the latest presentation time plus that track's usual
    /// frame step (presentation, not decode time, so B-frames of the old publisher are not
    /// overlapped by the new one's first frames).
    end_ms: Option<i64>,
    last_dts_ms: [Option<i64>; 2],
    last_step_ms: [i64; 2],
}

impl Timeline {
    fn place(&mut self, packet: &mut Packet) {
        if std::mem::take(&mut self.rebase_pending) {
            if let Some(end) = self.end_ms {
                self.offset_ms = end - packet.dts_ms;
            }
        }
        packet.dts_ms += self.offset_ms;
        let track = usize::from(packet.track == Track::Audio);
        if let Some(last) = self.last_dts_ms[track] {
            let step = packet.dts_ms - last;
            if (1..1000).contains(&step) {
                self.last_step_ms[track] = step;
            }
        }
        self.last_dts_ms[track] = Some(packet.dts_ms);
        let end = packet.dts_ms + i64::from(packet.cts_ms.max(0)) + self.last_step_ms[track];
        self.end_ms = Some(self.end_ms.map_or(end, |e| e.max(end)));
    }
}

pub(super) struct Ring {
    /// `packets[i]` has sequence number `base_seq + i`.
    pub packets: VecDeque<Arc<Packet>>,
    /// What pruning needs about each packet, parallel to `packets` and kept compact so the
    /// hot path does not touch cold packets: arrival (the backlog age cap is wall-clock time,
    /// so a fast publisher does not trip it), dts and size.
    meta: VecDeque<Meta>,
    pub base_seq: u64,
    /// Sequence numbers of random access points still in the ring, oldest first. With video
    /// these are video keyframes; for audio-only streams every audio packet.
    keyframes: VecDeque<u64>,
    has_video: bool,
    /// Sum of payload sizes held.
    pub bytes: usize,
    pub lossless_cursors: HashMap<u64, u64>,
    pub config: Arc<CodecConfig>,
    pub ended: bool,
    pub timeline: Timeline,
    limits: RingLimits,
}

impl Ring {
    pub fn new(limits: RingLimits) -> Self {
        Ring {
            packets: VecDeque::new(),
            meta: VecDeque::new(),
            base_seq: 0,
            keyframes: VecDeque::new(),
            has_video: false,
            bytes: 0,
            lossless_cursors: HashMap::new(),
            config: Arc::new(CodecConfig::default()),
            ended: false,
            timeline: Timeline::default(),
            limits,
        }
    }

    fn head_seq(&self) -> u64 {
        self.base_seq + self.packets.len() as u64
    }

    fn get(&self, seq: u64) -> Option<&Arc<Packet>> {
        seq.checked_sub(self.base_seq)
            .and_then(|i| self.packets.get(i as usize))
    }

    fn dts_at(&self, seq: u64) -> Option<i64> {
        seq.checked_sub(self.base_seq)
            .and_then(|i| self.meta.get(i as usize))
            .map(|m| m.dts_ms)
    }

    /// The newest keyframe (video; any packet of an audio-only stream).
    pub fn newest_keyframe(&self) -> Option<Arc<Packet>> {
        self.keyframes
            .back()
            .and_then(|&seq| self.get(seq))
            .cloned()
    }

    pub fn start_position(&self) -> u64 {
        self.keyframes.back().copied().unwrap_or(self.base_seq)
    }

    pub fn push(&mut self, mut packet: Packet, now: Instant) {
        self.timeline.place(&mut packet);
        if packet.track == Track::Video && !self.has_video {
            // Audio packets stop counting as random access points once video exists.
            self.has_video = true;
            self.keyframes.clear();
        }
        let is_access_point = packet.is_key && (packet.track == Track::Video || !self.has_video);
        if is_access_point {
            self.keyframes.push_back(self.head_seq());
        }
        let size = packet.flv_body.len();
        self.bytes += size;
        self.meta.push_back(Meta {
            arrived: now,
            dts_ms: packet.dts_ms,
            size,
        });
        self.packets.push_back(Arc::new(packet));
        self.prune(now);
    }

    /// Drops packets no reader needs any more, then enforces the backlog caps.
    fn prune(&mut self, now: Instant) {
        let newest_dts = match self.meta.back() {
            Some(m) => m.dts_ms,
            None => return,
        };
        let last_key = self.keyframes.back().copied().unwrap_or(self.base_seq);
        let mut keep_from = last_key;
        if let Some(&slowest) = self.lossless_cursors.values().min() {
            keep_from = keep_from.min(slowest);
        }
        while self.base_seq < keep_from {
            let front = match self.meta.front() {
                Some(m) => m,
                None => break,
            };
            if newest_dts - front.dts_ms < self.limits.min_keep_ms {
                break;
            }
            self.pop_front();
        }
        // Caps: ingest wins over a lossless reader that is too far behind, but the last GOP
        // stays unless it alone exceeds the byte cap.
        let max_age = Duration::from_millis(u64::try_from(self.limits.max_backlog_ms).unwrap_or(0));
        while let Some(front) = self.meta.front() {
            let too_old = now.duration_since(front.arrived) > max_age;
            let too_big = self.bytes > self.limits.max_backlog_bytes;
            let before_last_key = self.base_seq < last_key;
            if !(too_big || (too_old && before_last_key)) || self.packets.len() == 1 {
                break;
            }
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if self.packets.pop_front().is_some() {
            let size = self.meta.pop_front().map_or(0, |m| m.size);
            self.bytes -= size;
            self.base_seq += 1;
            while self.keyframes.front().is_some_and(|&k| k < self.base_seq) {
                self.keyframes.pop_front();
            }
        }
    }

    /// The event at `cursor` and the cursor after it; `None` when caught up and not ended.
    pub fn read(&self, cursor: u64, delivery: Delivery) -> (Option<Event>, u64) {
        let newest_key = self.keyframes.back().copied();
        if cursor < self.base_seq {
            // Fell out of the ring: resume at the newest keyframe (or the oldest packet).
            let resume = newest_key.unwrap_or(self.base_seq);
            return (
                Some(Event::Gap {
                    missed: resume - cursor,
                }),
                resume,
            );
        }
        if delivery == Delivery::Lossy {
            if let (Some(key), Some(at), Some(newest)) =
                (newest_key, self.dts_at(cursor), self.meta.back())
            {
                if key > cursor && newest.dts_ms - at > self.limits.lossy_max_lag_ms {
                    return (
                        Some(Event::Gap {
                            missed: key - cursor,
                        }),
                        key,
                    );
                }
            }
        }
        match self.get(cursor) {
            Some(packet) => (Some(Event::Packet(packet.clone())), cursor + 1),
            None if self.ended => (Some(Event::Ended), cursor),
            None => (None, cursor),
        }
    }
}
