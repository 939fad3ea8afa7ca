//! Motion clips (`motionclip` processing): at the first keyframe after publishing starts and
//! then every `interval` seconds (schedule in `pictures`), `duration` seconds of the stream
//! from the newest keyframe on are collected (shared packets, no copy), then decoded and made
//! into a looping GIF on the decode pool (which frames are decoded and why: `picture::motion`)
//! and written to the stable URL `/thumbnails/<streamname>.gif` and to a history
//! (`/thumbnails/<streamname>/<UTC>.gif`, listed in the catalog).
//!
//! A clip never spans a change of codec configuration (a new sequence header, e.g. a new
//! resolution): it ends there, and the next clip starts from the new configuration. When
//! `duration` exceeds `interval` clips run back to back; the ticks that pass while a clip is
//! being collected are not counted as skipped (nothing was refused), only those lost to a
//! decode still running are.

use super::pictures::{Job, PictureTask};
use crate::hub::{Delivery, Event, StreamHub};
use crate::media::{Packet, Track};
use crate::picture::motion::{make_clip, ClipSettings};
use crate::picture::{PictureError, StreamDecoder};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The video packets of one clip, in decode order from a keyframe: `duration_ms` of
/// presentation time, fewer when the stream ends, falls behind, changes configuration or
/// sends no video for a while (wall-clock limit: twice the duration plus 5 s).
pub async fn collect(hub: &Arc<StreamHub>, duration_ms: i64) -> Vec<Arc<Packet>> {
    let mut reader = hub.subscribe(Delivery::Lossy);
    let mut frames: Vec<Arc<Packet>> = Vec::new();
    let limit = Duration::from_millis(u64::try_from(duration_ms).unwrap_or(0) * 2 + 5000);
    let deadline = Instant::now() + limit;
    loop {
        let packet = match tokio::time::timeout_at(deadline, reader.next()).await {
            Ok(Event::Item(packet)) => packet,
            Ok(Event::Gap { .. } | Event::Ended) | Err(_) => break,
        };
        if packet.track != Track::Video {
            continue;
        }
        let Some(first) = frames.first() else {
            if packet.is_key {
                frames.push(packet);
            }
            continue;
        };
        if !packet.config.same_video(&first.config) {
            break;
        }
        // Presentation time ≥ decode time, so from here on nothing falls inside the clip.
        if packet.dts_ms >= first.dts_ms + i64::from(first.cts_ms) + duration_ms {
            break;
        }
        frames.push(packet);
    }
    frames
}

/// Makes the GIF of collected frames (on a pool thread).
pub fn render(
    decoder: &mut StreamDecoder,
    frames: &[Arc<Packet>],
    settings: ClipSettings,
) -> Result<Vec<u8>, PictureError> {
    let avc = frames
        .first()
        .and_then(|f| f.config.avc())
        .ok_or(PictureError::NoH264Config)?;
    let payloads: Vec<_> = frames.iter().map(|f| f.payload()).collect();
    let sources: Vec<(i64, &[u8])> = frames
        .iter()
        .zip(&payloads)
        .map(|(f, p)| (f.dts_ms + i64::from(f.cts_ms), &p[..]))
        .collect();
    Ok(make_clip(decoder, avc, &sources, settings)?)
}

/// Makes motion clips of one stream until it ends.
pub async fn run(task: PictureTask, hub: Arc<StreamHub>, interval: Duration, duration: Duration) {
    let settings = ClipSettings {
        width: task.ctx.settings.motionclip_width,
        fps: task.ctx.settings.motionclip_fps,
        duration_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
    };
    let collecting_from = &hub;
    task.run(&hub, interval, |_key| async move {
        let frames = collect(collecting_from, settings.duration_ms).await;
        if frames.is_empty() {
            return None; // the stream ended (or the reader fell behind) before a keyframe
        }
        let job: Job = Box::new(move |decoder| render(decoder, &frames, settings));
        Some(job)
    })
    .await;
}
