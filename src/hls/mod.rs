//! HLS with CMAF segments: live playout and the replay (rewind) buffer share one segmenter
//! and one list of segments per stream.
//!
//! - [`segmenter`]: packets → init + media segments cut at keyframes (pure);
//! - [`master`]: a stream group's multivariant playlist (pure);
//! - [`clip`]: the segments and trim window of a clip & share request (pure);
//! - [`playlist`]: the segment list and its playlists (replay: event or last N seconds;
//!   live: the newest few segments), rendered incrementally (pure).
//!
//! Not here: writing files and serving them (`sinks::hls`, `http::hls`).

pub mod clip;
pub mod master;
pub mod playlist;
pub mod segmenter;
#[cfg(test)]
mod tests;

pub use master::{master_playlist, VariantInfo};
pub use playlist::{MediaPlaylist, Retention, SegmentEntry};
pub use segmenter::{InitSegment, Segment, Segmenter, SegmenterSettings};
