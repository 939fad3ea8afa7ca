//! Motion clips (`motionclip` processing): at the first keyframe after publishing starts and
//! then every `interval` seconds (schedule in `pictures`), `duration` seconds of the stream
//! from the newest keyframe on are collected (shared packets, no copy), then decoded and made
//! into a looping GIF on the decode pool (which frames are decoded and why: `picture::motion`)
//! and written to the stable URL `/thumbnails/<streamname>.gif` and to a history
//! (`/thumbnails/<streamname>/<UTC>.gif`).
//!
//! A clip never spans a change of codec configuration (a new sequence header, e.g. a new
//! resolution): it ends there, and the next clip starts from the new configuration. When
//! `duration` exceeds `interval` clips run back to back; the ticks that pass while a clip is
//! being collected are not counted as skipped (nothing was refused), only those lost to a
//! decode still running are.

use super::pictures::{every_interval, run_job, PictureTask, Tick};
use crate::hub::{Delivery, Event, StreamHub};
use crate::media::{Packet, Track};
use crate::picture::motion::{make_clip, ClipSettings};
use crate::picture::StreamDecoder;
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
            Ok(Event::Packet(packet)) => packet,
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
        let record = |p: &Packet| p.config.video.as_ref().map(|v| v.record.clone());
        if packet.config.generation != first.config.generation && record(&packet) != record(first) {
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
) -> Result<Vec<u8>, String> {
    let avc = frames
        .first()
        .and_then(|f| f.config.video.as_ref())
        .and_then(|v| v.avc())
        .ok_or("no H.264 configuration")?;
    let payloads: Vec<_> = frames.iter().map(|f| f.payload()).collect();
    let sources: Vec<(i64, &[u8])> = frames
        .iter()
        .zip(&payloads)
        .map(|(f, p)| (f.dts_ms + i64::from(f.cts_ms), &p[..]))
        .collect();
    make_clip(decoder, avc, &sources, settings).map_err(|e| e.to_string())
}

/// Makes motion clips of one stream until it ends; the status then says `idle` (or keeps the
/// error that stopped it).
pub async fn run(task: PictureTask, hub: Arc<StreamHub>, interval: Duration, duration: Duration) {
    let task = &task;
    let hub = &hub;
    let settings = ClipSettings {
        width: task.ctx.settings.motionclip_width,
        fps: task.ctx.settings.motionclip_fps,
        duration_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
    };
    every_interval(
        hub,
        interval,
        || task.skipped(),
        |key| async move {
            if task.refuse_codec(&key) {
                return Tick::Stop;
            }
            let frames = collect(hub, settings.duration_ms).await;
            let busy_since = Instant::now();
            if frames.is_empty() {
                // The stream ended (or the reader fell behind) before a keyframe came.
                return Tick::Done { busy_since };
            }
            let result = run_job(&task.ctx.pool, move |decoder| {
                render(decoder, &frames, settings)
            })
            .await;
            task.finish(result).await;
            Tick::Done { busy_since }
        },
    )
    .await;
    task.ended();
}
