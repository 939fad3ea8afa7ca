//! Thumbnails (`thumbs` processing): at the first keyframe after publishing starts and then
//! every `interval` seconds (schedule in `pictures`), the newest keyframe is decoded alone on
//! the decode pool, scaled down to `pictures.thumbnail_max_width` if set, converted with the
//! stream's colour matrix and written as JPEG to the stable URL
//! `/thumbnails/<streamname>.jpg` and to a history (`/thumbnails/<streamname>/<UTC>.jpg`).
//!
//! Not here: decoding itself (`picture`), motion clips (`motionclip`).

use super::pictures::{every_interval, run_job, PictureTask, Tick};
use crate::hub::StreamHub;
use crate::media::Packet;
use crate::picture::convert::{jpeg, to_rgb};
use crate::picture::scale::downscale;
use crate::picture::StreamDecoder;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// JPEG quality.
const QUALITY: u8 = 85;

/// Decodes one keyframe into JPEG bytes (on a pool thread).
pub fn render(
    decoder: &mut StreamDecoder,
    key: &Packet,
    max_width: u32,
) -> Result<Vec<u8>, String> {
    let avc = key
        .config
        .video
        .as_ref()
        .and_then(|v| v.avc())
        .ok_or("no H.264 configuration")?;
    let picture = decoder
        .decode_keyframe(avc, &key.payload())
        .map_err(|e| e.to_string())?;
    let picture = downscale(picture, max_width).map_err(|e| e.to_string())?;
    let rgb = to_rgb(&picture, avc.color).map_err(|e| e.to_string())?;
    jpeg(&rgb, picture.width, picture.height, QUALITY).map_err(|e| e.to_string())
}

/// Takes thumbnails of one stream until it ends; the status then says `idle` (or keeps the
/// error that stopped it).
pub async fn run(task: PictureTask, hub: Arc<StreamHub>, interval: Duration) {
    let task = &task;
    every_interval(
        &hub,
        interval,
        || task.skipped(),
        |key| async move {
            if task.refuse_codec(&key) {
                return Tick::Stop;
            }
            let busy_since = Instant::now();
            let max_width = task.ctx.settings.thumbnail_max_width;
            let result = run_job(&task.ctx.pool, move |decoder| {
                render(decoder, &key, max_width)
            })
            .await;
            task.finish(result).await;
            Tick::Done { busy_since }
        },
    )
    .await;
    task.ended();
}
