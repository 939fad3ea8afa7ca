//! Pictures from the stream: H.264 keyframes decoded in-process (OpenH264), converted to RGB
//! with the stream's colour matrix, encoded as JPEG. The building blocks of thumbnails and
//! motion clips.
//!
//! - [`annexb`]: AVCC → Annex B for the decoder (pure, bounds-checked);
//! - [`decode`]: a stream's OpenH264 decoder, giving I420 pictures;
//! - [`convert`]: I420 → RGB (BT.709/BT.601, limited/full range) and JPEG;
//! - [`scale`]: downscaling to a maximum width;
//! - [`motion`]: motion clips (which frames to decode, GIF);
//! - [`pool`]: the decode threads behind a bounded queue.
//!
//! Not here: when pictures are taken and where they are stored (`sinks`).

pub mod annexb;
pub mod convert;
pub mod decode;
pub mod motion;
pub mod pool;
pub mod scale;
#[cfg(test)]
mod tests;

pub use decode::{Picture, StreamDecoder};

use thiserror::Error;

/// Why a picture (a thumbnail or a motion clip) could not be made.
#[derive(Debug, Error)]
pub enum PictureError {
    #[error("the stream has no usable H.264 configuration")]
    NoH264Config,
    #[error(transparent)]
    Decode(#[from] decode::DecodeError),
    #[error(transparent)]
    Scale(#[from] scale::ScaleError),
    #[error(transparent)]
    Convert(#[from] convert::ConvertError),
    #[error(transparent)]
    Motion(#[from] motion::MotionError),
    #[error("the decode job stopped unexpectedly")]
    JobLost,
}
