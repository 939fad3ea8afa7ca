//! The one fragmented-MP4 (CMAF) muxer: recording, replay segments and clips all use it.
//!
//! Pure — everything writes into buffers; the callers do the I/O. Built on `mp4-atom`'s typed
//! boxes (ISO/IEC 14496-12/-14/-15):
//! - [`track`]: which tracks a codec configuration gives, the init segment (`ftyp` + `moov`
//!   with `mvex`);
//! - [`fragment`]: packets → `moof` + `mdat`, with sample timing (durations, composition
//!   offsets, discontinuities);
//! - [`finalize`]: a fragmented file → a regular MP4 in place: the fragments' media stays
//!   where it is, `moof`s and the fragmented `moov` become `free`, a complete `moov` is
//!   appended. The same code cuts a crashed recording at its last complete fragment.
//!
//! - [`samples`] and [`cut`]: a finalised file read back into samples, and clips cut from
//!   recordings.
//!
//! Not here: files, fsync and the catalog (`sinks::recorder`).

pub mod cut;
pub mod finalize;
pub mod fragment;
pub mod samples;
#[cfg(test)]
mod tests;
pub mod track;

pub use fragment::{Fragment, Fragmenter};
pub use track::{init_segment, tracks_for, video_record, TrackSpec};
