//! Sinks: readers of a stream hub that turn packets into outputs.
//!
//! - [`hls`]: CMAF segments and playlists for live HLS and the replay.
//! - [`recorder`]: lossless, crash-safe fragmented MP4 finalised into regular MP4 files.
//! - [`reserve`]: disk space kept back so recordings can be finished on a full disk.
//! - [`thumbs`]: JPEG thumbnails from keyframes, decoded on the decode pool.
//!
//! Not here: muxing itself (`mux`), RTMP play (`rtmp::play`).

pub mod hls;
pub mod recorder;
pub mod reserve;
pub mod thumbs;
