//! Sinks: readers of a stream hub that turn packets into outputs.
//!
//! - [`hls`]: CMAF segments and playlists for live HLS and the replay.
//! - [`recorder`]: lossless, crash-safe fragmented MP4 finalised into regular MP4 files.
//! - [`reserve`]: disk space kept back so recordings can be finished on a full disk.
//! - [`pictures`]: what thumbnails and motion clips share (schedule, decoder, storage);
//! - [`thumbs`]: JPEG thumbnails from keyframes, decoded on the decode pool;
//! - [`motionclip`]: animated GIF motion clips, decoded on the decode pool.
//!
//! Not here: muxing itself (`mux`), RTMP play (`rtmp::play`).

use std::io::Write;
use std::path::Path;

pub mod hls;
pub mod motionclip;
pub mod pictures;
pub mod recorder;
pub mod reserve;
pub mod thumbs;

/// Runs file work on the blocking pool (never on an async worker); a task that could not
/// finish becomes the caller's error.
pub(crate) async fn blocking<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<tokio::task::JoinError> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await?
}

/// Replaces `path` with `bytes` through `<path>.tmp` and a rename, so readers see the old
/// content or the new, never a part; `durable` also syncs the data before the rename.
pub fn write_atomically(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = std::path::PathBuf::from(temp);
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)
}
