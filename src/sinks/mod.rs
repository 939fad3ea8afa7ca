//! Sinks: readers of a stream hub that turn packets into outputs.
//!
//! - [`hls`]: CMAF segments and playlists for live HLS and the replay.
//! - [`recorder`]: lossless, crash-safe fragmented MP4 finalised into regular MP4 files.
//! - [`pictures`]: what thumbnails and motion clips share (schedule, decoder, storage);
//! - [`thumbs`]: JPEG thumbnails from keyframes, decoded on the decode pool;
//! - [`motionclip`]: animated GIF motion clips, decoded on the decode pool.
//! - [`error`]: the error type of the sinks that write files.
//!
//! Sinks write into the spool (`storage::LocalStore`) on the blocking pool and list what they
//! made in the catalog after it is written. Which sinks a session runs is decided in one
//! place, `session`.
//!
//! Not here: muxing itself (`mux`), RTMP play (`rtmp`), file names (`storage::layout`).

pub mod error;
pub mod hls;
pub mod motionclip;
pub mod pictures;
pub mod recorder;
pub mod thumbs;

pub use error::SinkError;

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
