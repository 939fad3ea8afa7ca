//! Media packets in a hub: video keyframes are where readers start (audio frames only until
//! the stream has video), and a publisher that reconnects continues the timeline.

use super::ring::{Access, RingItem};
use crate::media::{Packet, Track};

/// Keeps a stream's timestamps continuous across a publisher reconnect: the new publisher's
/// clock (starting near 0 again) is shifted to continue where the old one stopped.
#[derive(Debug, Default)]
pub struct PacketTimeline {
    offset_ms: i64,
    /// Set by `Publisher::resume`: the next packet rebases the clock.
    pub(super) rebase_pending: bool,
    /// Where the media so far ends: the latest presentation time plus that track's usual
    /// frame step (presentation, not decode time, so B-frames of the old publisher are not
    /// overlapped by the new one's first frames).
    end_ms: Option<i64>,
    last_dts_ms: [Option<i64>; 2],
    last_step_ms: [i64; 2],
    /// The configuration generation of the newest packet, so a new demuxer continues it.
    pub(super) generation: u32,
}

impl RingItem for Packet {
    type Timeline = PacketTimeline;

    fn place(&mut self, timeline: &mut PacketTimeline) {
        if std::mem::take(&mut timeline.rebase_pending) {
            if let Some(end) = timeline.end_ms {
                timeline.offset_ms = end - self.dts_ms;
            }
        }
        self.dts_ms += timeline.offset_ms;
        let track = usize::from(self.track == Track::Audio);
        if let Some(last) = timeline.last_dts_ms[track] {
            let step = self.dts_ms - last;
            if (1..1000).contains(&step) {
                timeline.last_step_ms[track] = step;
            }
        }
        timeline.last_dts_ms[track] = Some(self.dts_ms);
        let end = self.dts_ms + i64::from(self.cts_ms.max(0)) + timeline.last_step_ms[track];
        timeline.end_ms = Some(timeline.end_ms.map_or(end, |e| e.max(end)));
        timeline.generation = self.config.generation;
    }

    fn access(&self) -> Access {
        match (self.track, self.is_key) {
            (Track::Video, true) => Access::Strong,
            (Track::Audio, true) => Access::Weak,
            _ => Access::None,
        }
    }

    fn time_ms(&self) -> i64 {
        self.dts_ms
    }

    fn size(&self) -> usize {
        self.flv_body.len()
    }
}
