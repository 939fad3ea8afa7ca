//! Thumbnails (`thumbs` processing): at the first keyframe after publishing starts and then
//! every `interval` seconds (schedule in `pictures`), the newest keyframe is decoded alone on
//! the decode pool, scaled down to `pictures.thumbnail_max_width` if set, converted with the
//! stream's colour matrix and written as JPEG to the stable URL
//! `/thumbnails/<streamname>.jpg` and to a history (`/thumbnails/<streamname>/<UTC>.jpg`,
//! listed in the catalog; names from `storage::layout`).
//!
//! Not here: decoding itself (`picture`), motion clips (`motionclip`).

use super::pictures::{Job, PictureTask};
use crate::hub::StreamHub;
use crate::media::Packet;
use crate::picture::convert::{jpeg, to_rgb};
use crate::picture::scale::downscale;
use crate::picture::{PictureError, StreamDecoder};
use std::sync::Arc;
use std::time::Duration;

/// JPEG quality.
const QUALITY: u8 = 85;

/// Decodes one keyframe into JPEG bytes (on a pool thread).
pub fn render(
    decoder: &mut StreamDecoder,
    key: &Packet,
    max_width: u32,
) -> Result<Vec<u8>, PictureError> {
    let avc = key.config.avc().ok_or(PictureError::NoH264Config)?;
    let picture = decoder.decode_keyframe(avc, &key.payload())?;
    let picture = downscale(picture, max_width)?;
    let rgb = to_rgb(&picture, avc.color)?;
    Ok(jpeg(&rgb, picture.width, picture.height, QUALITY)?)
}

/// Takes thumbnails of one stream until it ends.
pub async fn run(task: PictureTask, hub: Arc<StreamHub>, interval: Duration) {
    let max_width = task.ctx.settings.thumbnail_max_width;
    task.run(&hub, interval, |key| async move {
        let job: Job = Box::new(move |decoder| render(decoder, &key, max_width));
        Some(job)
    })
    .await;
}
