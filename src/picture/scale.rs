//! Downscaling a decoded picture to a maximum width (thumbnails with a size limit, motion
//! clips at 480 px). Scaling the three I420 planes before colour conversion converts a
//! quarter or less of the pixels: 1080p → 480 px costs about a millisecond this way
//! (`fast_image_resize`, bilinear convolution, which widens its kernel when shrinking so fine
//! detail does not alias).

use super::Picture;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use thiserror::Error;

/// Why a picture could not be scaled.
#[derive(Debug, Error)]
#[error("resize: {0}")]
pub struct ScaleError(String);

/// The size a `width`×`height` picture gets when at most `max_width` wide: aspect kept,
/// both sides even (I420 and most viewers like that), never upscaled. `max_width` 0 means
/// the source size.
pub fn fitted_size(width: u32, height: u32, max_width: u32) -> (u32, u32) {
    if max_width == 0 || width <= max_width || width == 0 {
        return (width, height);
    }
    let new_width = (max_width & !1).max(2);
    let new_height = (u64::from(height) * u64::from(new_width) / u64::from(width)) as u32;
    (new_width, (new_height & !1).max(2))
}

fn resize_plane(
    resizer: &mut Resizer,
    plane: &[u8],
    (width, height): (u32, u32),
    (new_width, new_height): (u32, u32),
) -> Result<Vec<u8>, ScaleError> {
    let source = ImageRef::new(width, height, plane, PixelType::U8)
        .map_err(|e| ScaleError(e.to_string()))?;
    let mut target = Image::new(new_width, new_height, PixelType::U8);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    resizer
        .resize(&source, &mut target, &options)
        .map_err(|e| ScaleError(e.to_string()))?;
    Ok(target.into_vec())
}

/// The picture at most `max_width` wide (see [`fitted_size`]); unchanged when it fits.
pub fn downscale(picture: Picture, max_width: u32) -> Result<Picture, ScaleError> {
    let (width, height) = (picture.width, picture.height);
    let (new_width, new_height) = fitted_size(width, height, max_width);
    if (new_width, new_height) == (width, height) {
        return Ok(picture);
    }
    let mut resizer = Resizer::new();
    let chroma = (width.div_ceil(2), height.div_ceil(2));
    let new_chroma = (new_width / 2, new_height / 2);
    Ok(Picture {
        width: new_width,
        height: new_height,
        y: resize_plane(
            &mut resizer,
            &picture.y,
            (width, height),
            (new_width, new_height),
        )?,
        u: resize_plane(&mut resizer, &picture.u, chroma, new_chroma)?,
        v: resize_plane(&mut resizer, &picture.v, chroma, new_chroma)?,
    })
}

/// Scales pictures to one exact size (an ABR rendition): the aspect ratio is kept and the
/// rest of the frame is black (letterbox or pillarbox), so a picture is never cropped and
/// never distorted; when the two aspect ratios differ by less than 2 % (1920x1080 into
/// 852x480), the picture fills the frame instead of getting a bar of a pixel or two. Keeps
/// its resizer (and that resizer's buffers) from frame to frame.
pub struct FrameScaler {
    resizer: Resizer,
    width: u32,
    height: u32,
}

/// The size and offset of the picture inside a `width`×`height` frame (even numbers).
fn placement(source: (u32, u32), (width, height): (u32, u32)) -> ((u32, u32), (u32, u32)) {
    let (sw, sh) = (u64::from(source.0.max(1)), u64::from(source.1.max(1)));
    let (w, h) = (u64::from(width), u64::from(height));
    // Compare sw/sh with w/h without division: within 2 %, fill.
    let (a, b) = (sw * h, w * sh);
    if a.abs_diff(b) * 50 <= a.max(b) {
        return ((width, height), (0, 0));
    }
    let (inner_w, inner_h) = if a > b {
        // Wider than the frame: full width, bars above and below.
        (w, (sh * w / sw).max(2))
    } else {
        ((sw * h / sh).max(2), h)
    };
    let even = |v: u64| (v as u32 & !1).max(2);
    let (inner_w, inner_h) = (even(inner_w).min(width), even(inner_h).min(height));
    (
        (inner_w, inner_h),
        (((width - inner_w) / 2) & !1, ((height - inner_h) / 2) & !1),
    )
}

impl FrameScaler {
    /// A scaler to `width`×`height`; both must be even (I420), which the caller checks.
    pub fn new(width: u32, height: u32) -> Self {
        FrameScaler {
            resizer: Resizer::new(),
            width,
            height,
        }
    }

    /// The picture at exactly this scaler's size.
    pub fn scale(&mut self, picture: &Picture) -> Result<Picture, ScaleError> {
        let (width, height) = (self.width, self.height);
        let source = (picture.width, picture.height);
        let ((inner_w, inner_h), (left, top)) = placement(source, (width, height));
        let chroma = (source.0.div_ceil(2), source.1.div_ceil(2));
        let planes = [
            (&picture.y, source, (inner_w, inner_h), 16u8, 1),
            (&picture.u, chroma, (inner_w / 2, inner_h / 2), 128, 2),
            (&picture.v, chroma, (inner_w / 2, inner_h / 2), 128, 2),
        ];
        let mut out = Vec::with_capacity(3);
        for (plane, from, to, black, divisor) in planes {
            let scaled = if from == to {
                plane.clone()
            } else {
                resize_plane(&mut self.resizer, plane, from, to)?
            };
            let (frame_w, frame_h) = (width / divisor, height / divisor);
            if to == (frame_w, frame_h) {
                out.push(scaled);
                continue;
            }
            let mut framed = vec![black; (frame_w * frame_h) as usize];
            let (left, top) = ((left / divisor) as usize, (top / divisor) as usize);
            let row_len = to.0 as usize;
            for (row, line) in scaled.chunks(row_len.max(1)).enumerate() {
                let start = (top + row) * frame_w as usize + left;
                if let Some(target) = framed.get_mut(start..start + line.len()) {
                    target.copy_from_slice(line);
                }
            }
            out.push(framed);
        }
        let mut planes = out.into_iter();
        let mut next = || planes.next().unwrap_or_default();
        Ok(Picture {
            width,
            height,
            y: next(),
            u: next(),
            v: next(),
        })
    }
}

#[cfg(test)]
mod frame_scaler_tests {
    use super::*;

    #[test]
    fn near_aspect_fills_and_other_aspects_get_bars() {
        assert_eq!(placement((1920, 1080), (852, 480)), ((852, 480), (0, 0)));
        // 4:3 into 16:9: pillarbox, centred.
        assert_eq!(placement((640, 480), (640, 360)), ((480, 360), (80, 0)));
        // 21:9 into 16:9: letterbox.
        assert_eq!(placement((2560, 1080), (640, 360)), ((640, 270), (0, 44)));
    }

    #[test]
    fn scaled_frames_have_the_exact_size_and_black_bars() {
        let source = Picture {
            width: 64,
            height: 48,
            y: vec![200; 64 * 48],
            u: vec![90; 32 * 24],
            v: vec![160; 32 * 24],
        };
        let mut scaler = FrameScaler::new(64, 36);
        let frame = scaler.scale(&source).unwrap();
        assert_eq!((frame.width, frame.height), (64, 36));
        assert_eq!(frame.y.len(), 64 * 36);
        assert_eq!(frame.u.len(), 32 * 18);
        // Left bar black, middle picture.
        assert_eq!(frame.y[0], 16);
        assert_eq!(frame.y[32], 200);
        assert_eq!(frame.u[0], 128);
    }
}
