//! Thumbnails (`thumbs` processing): at the first keyframe after publishing starts and then
//! every `interval` seconds, the newest keyframe is decoded alone on the decode pool,
//! converted with the stream's colour matrix and written as JPEG to the stable URL
//! `/thumbnails/<streamname>.jpg` (temp file + rename) and to a history
//! (`/thumbnails/<streamname>/<UTC time>.jpg`, newest `HISTORY` kept).
//!
//! The task holds no reader on the hub: at each tick it takes the newest keyframe the ring
//! holds (waiting for the next one when none arrived since the last tick), so it costs nothing
//! between ticks. The stream's warm decoder travels with each job to the pool and back.
//!
//! Not here: motion clips (later), decoding itself (`picture`).

use crate::hub::StreamHub;
use crate::media::{Packet, Track, VideoCodec};
use crate::picture::convert::{jpeg, to_rgb};
use crate::picture::pool::DecodePool;
use crate::picture::StreamDecoder;
use crate::status::{SinkState, StatusBoard};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::time::Instant;
use uuid::Uuid;

/// The thumbnailer's id in stream status.
pub const STATUS_ID: &str = "thumbs";
/// History pictures kept per stream.
pub const HISTORY: usize = 60;
/// JPEG quality.
const QUALITY: u8 = 85;

/// What every picture task shares.
#[derive(Debug, Clone)]
pub struct PictureContext {
    pub data_dir: PathBuf,
    pub pool: DecodePool,
    pub status: StatusBoard,
}

/// The thumbnail folder of a stream and its stable file.
pub fn thumbnail_paths(data_dir: &Path, streamname: &str) -> (PathBuf, PathBuf) {
    let root = data_dir.join("thumbnails");
    (
        root.join(streamname),
        root.join(format!("{streamname}.jpg")),
    )
}

/// `20261121T101500Z`: history file names sort by time.
fn stamp(at: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Writes the JPEG to the stable file and the history, dropping the oldest history files.
fn store(data_dir: &Path, streamname: &str, jpeg: &[u8]) -> std::io::Result<()> {
    let (folder, stable) = thumbnail_paths(data_dir, streamname);
    std::fs::create_dir_all(&folder)?;
    let history = folder.join(format!("{}.jpg", stamp(OffsetDateTime::now_utc())));
    std::fs::write(&history, jpeg)?;
    super::write_atomically(&stable, jpeg, false)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(HISTORY);
    for old in &files[..excess] {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

/// Decodes one keyframe into JPEG bytes (on a pool thread).
fn render(decoder: &mut StreamDecoder, key: &Packet) -> Result<Vec<u8>, String> {
    let avc = key
        .config
        .video
        .as_ref()
        .and_then(|v| v.avc())
        .ok_or("no H.264 configuration")?;
    let picture = decoder
        .decode_keyframe(avc, &key.payload())
        .map_err(|e| e.to_string())?;
    let rgb = to_rgb(&picture, avc.color).map_err(|e| e.to_string())?;
    jpeg(&rgb, picture.width, picture.height, QUALITY).map_err(|e| e.to_string())
}

/// The newest video keyframe other than `after`, waiting for one; `None` when the stream ended.
async fn next_keyframe(hub: &StreamHub, after: Option<i64>) -> Option<Arc<Packet>> {
    loop {
        let (key, ended) = hub.newest_keyframe();
        if ended {
            return None;
        }
        if let Some(key) = key.filter(|k| k.track == Track::Video && Some(k.dts_ms) != after) {
            return Some(key);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Takes thumbnails of one stream until it ends; the status then says `idle` (or keeps the
/// error that stopped it).
pub async fn run(
    ctx: PictureContext,
    hub: Arc<StreamHub>,
    stream_id: Uuid,
    streamname: String,
    interval: Duration,
) {
    take_thumbnails(&ctx, hub, stream_id, streamname, interval).await;
    ctx.status.update(stream_id, STATUS_ID, |s| {
        if s.state == SinkState::Active {
            s.state = SinkState::Idle;
        }
    });
}

async fn take_thumbnails(
    ctx: &PictureContext,
    hub: Arc<StreamHub>,
    stream_id: Uuid,
    streamname: String,
    interval: Duration,
) {
    let mut decoder: Option<Box<StreamDecoder>> = None;
    let mut last_key = None;
    let mut next_tick = Instant::now();
    while let Some(key) = next_keyframe(&hub, last_key).await {
        last_key = Some(key.dts_ms);
        let codec = key.config.video.as_ref().map(|v| v.codec);
        if codec != Some(VideoCodec::Avc) {
            let name = codec.map_or("none", |c| c.name());
            let message = format!("thumbnails need H.264; this stream sends {name}");
            tracing::warn!(stream = %streamname, "{message}");
            ctx.status.error(stream_id, STATUS_ID, message);
            return;
        }
        let previous = decoder.take();
        let job = ctx.pool.try_run(move || {
            let mut decoder = match previous {
                Some(decoder) => decoder,
                None => match StreamDecoder::new() {
                    Ok(decoder) => Box::new(decoder),
                    Err(e) => return (None, Err(e.to_string())),
                },
            };
            let result = render(&mut decoder, &key);
            (Some(decoder), result)
        });
        match job {
            None => ctx.status.update(stream_id, STATUS_ID, |s| s.skipped += 1),
            Some(result) => match result.await {
                Ok((returned, Ok(bytes))) => {
                    decoder = returned;
                    let (dir, name) = (ctx.data_dir.clone(), streamname.clone());
                    let stored =
                        tokio::task::spawn_blocking(move || store(&dir, &name, &bytes)).await;
                    match stored {
                        Ok(Ok(())) => ctx.status.success(stream_id, STATUS_ID),
                        Ok(Err(e)) => ctx.status.error(stream_id, STATUS_ID, e.to_string()),
                        Err(e) => ctx.status.error(stream_id, STATUS_ID, e.to_string()),
                    }
                }
                Ok((returned, Err(e))) => {
                    decoder = returned;
                    tracing::warn!(stream = %streamname, error = %e, "thumbnail failed");
                    ctx.status.error(stream_id, STATUS_ID, e);
                }
                Err(_) => decoder = None,
            },
        }
        // Ticks missed while the job ran count as skipped.
        next_tick += interval;
        let now = Instant::now();
        while next_tick < now {
            next_tick += interval;
            ctx.status.update(stream_id, STATUS_ID, |s| s.skipped += 1);
        }
        while Instant::now() < next_tick {
            if hub.newest_keyframe().1 {
                return;
            }
            let left = next_tick.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
    }
}
