//! Motion clips: `duration` seconds of the stream from a keyframe on, as a looping animated
//! GIF sampled at `fps` frames per second and downscaled to `width`.
//!
//! The cheapest correct way to get the frames. Decoding, not encoding, is the cost (a 1080p
//! frame decodes in ~12 ms; scaling, palette mapping and LZW of a 480 px frame take ~2 ms).
//! Sampling 30 fps at 10 fps shows one frame in three, but H.264 frames predict from each
//! other, so a shown frame needs every frame it references decoded first. What can be left
//! out is exactly the frames nothing references (`nal_ref_idc` 0 — in OBS/x264 streams most
//! B-frames) that are not themselves shown; and nothing after the last shown frame in decode
//! order. So [`plan`] decodes: every reference frame up to the last shown frame, plus the
//! shown frames. With OBS's default GOP (P B B, the middle B a reference under b-pyramid)
//! that is about 2/3 of the frames for 10-of-30 fps, against all of them for ffmpeg's
//! `fps` filter. Skipping a non-reference frame leaves no hole a decoder must conceal: the
//! next reference frame's `frame_num` follows the previous reference frame's.
//!
//! Which frame is shown at sample time `t`: the one on screen then, i.e. the last frame with
//! presentation time ≤ `t`. Each GIF frame lasts until the next shown frame starts, so the
//! delays are true to the source timing (cumulative rounding to the GIF's centiseconds keeps
//! the total exact), and the clip loops forever.
//!
//! Colours: one global palette for the whole clip (NeuQuant over pixels sampled from every
//! frame, 255 colours) and a lazily filled 15-bit lookup table from RGB to palette index, so
//! each pixel costs a table read. Index 255 is transparent: a pixel that keeps its index from
//! the previous frame is written as transparent, which LZW packs into almost nothing when the
//! picture is mostly still.

use super::convert::to_rgb;
use super::decode::{DecodeError, StreamDecoder};
use super::scale::downscale;
use crate::media::avc::{AvcConfig, ColorInfo};
use color_quant::NeuQuant;
use std::borrow::Cow;
use std::collections::VecDeque;
use thiserror::Error;

/// How a motion clip is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipSettings {
    /// Maximum width in pixels (height follows the aspect ratio).
    pub width: u32,
    /// Sampled frames per second.
    pub fps: u32,
    /// Length of the clip in milliseconds.
    pub duration_ms: i64,
}

/// Why a motion clip could not be made.
#[derive(Debug, Error)]
pub enum MotionError {
    #[error("no frames to make a clip of")]
    NoFrames,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the decoder gave {got} pictures for {fed} frames")]
    PictureCount { got: usize, fed: usize },
    #[error("{0}")]
    Picture(String),
    #[error("gif: {0}")]
    Gif(String),
}

/// One source video frame in decode order: its presentation time and whether other frames
/// may reference it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    pub pts_ms: i64,
    pub is_reference: bool,
}

/// What to decode and what to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipPlan {
    /// Source frames (indices, decode order) to feed the decoder.
    pub decode: Vec<usize>,
    /// Presentation times of the frames that become GIF frames, ascending.
    pub shown: Vec<i64>,
    /// Where the clip ends (ms): the last frame lasts until then.
    pub end_ms: i64,
}

/// Plans a clip of the frames (decode order, the first a keyframe). See the module doc.
pub fn plan(frames: &[FrameInfo], fps: u32, duration_ms: i64) -> Option<ClipPlan> {
    let start = frames.first()?.pts_ms;
    let fps = i64::from(fps.max(1));
    // Frames that can be shown, in display order (leading pictures before the key are not).
    let mut display: Vec<usize> = (0..frames.len())
        .filter(|&i| frames[i].pts_ms >= start)
        .collect();
    display.sort_by_key(|&i| (frames[i].pts_ms, i));
    let last_pts = frames[*display.last()?].pts_ms;
    // When the stream stopped early the clip ends one frame interval after its last frame.
    let typical_interval = display
        .windows(2)
        .map(|w| frames[w[1]].pts_ms - frames[w[0]].pts_ms)
        .filter(|&d| d > 0)
        .min()
        .unwrap_or(1000 / fps);
    let end = (start + duration_ms).min(last_pts + typical_interval);
    let mut shown_indices: Vec<usize> = Vec::new();
    let mut cursor = 0;
    for k in 0.. {
        // Sample time start + k/fps, compared exactly in units of 1/fps ms.
        let t_scaled = start * fps + k * 1000;
        if t_scaled >= end * fps {
            break;
        }
        while cursor + 1 < display.len() && frames[display[cursor + 1]].pts_ms * fps <= t_scaled {
            cursor += 1;
        }
        let pick = display[cursor];
        if shown_indices.last() != Some(&pick) {
            shown_indices.push(pick);
        }
    }
    let last_needed = *shown_indices.iter().max()?;
    let mut shown = vec![false; last_needed + 1];
    for &i in &shown_indices {
        shown[i] = true;
    }
    let decode = (0..=last_needed)
        .filter(|&i| frames[i].is_reference || shown[i])
        .collect();
    Some(ClipPlan {
        decode,
        shown: shown_indices.iter().map(|&i| frames[i].pts_ms).collect(),
        end_ms: end,
    })
}

/// GIF frame delays in centiseconds: each shown frame lasts until the next starts, the last
/// until `end_ms`; rounded cumulatively so the total is the clip's length.
pub fn delays_cs(shown: &[i64], end_ms: i64) -> Vec<u16> {
    let Some(&start) = shown.first() else {
        return Vec::new();
    };
    let at_cs = |t: i64| ((t - start) as f64 / 10.0).round() as i64;
    shown
        .iter()
        .copied()
        .chain(std::iter::once(end_ms))
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| (at_cs(w[1]) - at_cs(w[0])).clamp(1, i64::from(u16::MAX)) as u16)
        .collect()
}

/// RGB frames of one size, becoming one GIF.
struct FrameSet {
    width: u32,
    height: u32,
    frames: Vec<Vec<u8>>,
}

/// Decodes the planned frames and keeps the shown ones, downscaled, as RGB.
fn decode_shown(
    decoder: &mut StreamDecoder,
    config: &AvcConfig,
    frames: &[(i64, &[u8])],
    plan: &ClipPlan,
    settings: ClipSettings,
) -> Result<FrameSet, MotionError> {
    // The n-th picture out is the n-th smallest presentation time fed.
    let mut display_times: Vec<i64> = plan.decode.iter().map(|&i| frames[i].0).collect();
    display_times.sort_unstable();
    let mut wanted: VecDeque<i64> = plan.shown.iter().copied().collect();
    let mut set = FrameSet {
        width: 0,
        height: 0,
        frames: Vec::with_capacity(plan.shown.len()),
    };
    let mut failure = None;
    let mut next = 0;
    let fed = plan.decode.len();
    let got = decoder.decode_sequence(
        config,
        plan.decode.iter().map(|&i| frames[i].1),
        |picture| {
            let pts = display_times.get(next).copied();
            next += 1;
            if failure.is_some() || pts.is_none() || wanted.front().copied() != pts {
                return;
            }
            wanted.pop_front();
            match shown_rgb(picture.to_picture(), settings.width, config.color) {
                Ok((width, height, rgb)) => {
                    (set.width, set.height) = (width, height);
                    set.frames.push(rgb);
                }
                Err(e) => failure = Some(e),
            }
        },
    )?;
    if let Some(e) = failure {
        return Err(e);
    }
    if got != fed {
        return Err(MotionError::PictureCount { got, fed });
    }
    Ok(set)
}

fn shown_rgb(
    picture: super::Picture,
    width: u32,
    color: ColorInfo,
) -> Result<(u32, u32, Vec<u8>), MotionError> {
    let small = downscale(picture, width).map_err(|e| MotionError::Picture(e.to_string()))?;
    let rgb = to_rgb(&small, color).map_err(|e| MotionError::Picture(e.to_string()))?;
    Ok((small.width, small.height, rgb))
}

/// Makes a motion clip from frames in decode order (presentation time, AVCC payload), the
/// first a keyframe: the GIF's bytes.
pub fn make_clip(
    decoder: &mut StreamDecoder,
    config: &AvcConfig,
    frames: &[(i64, &[u8])],
    settings: ClipSettings,
) -> Result<Vec<u8>, MotionError> {
    let infos: Vec<FrameInfo> = frames
        .iter()
        .map(|&(pts_ms, payload)| FrameInfo {
            pts_ms,
            is_reference: super::annexb::is_reference(config, payload),
        })
        .collect();
    let plan = plan(&infos, settings.fps, settings.duration_ms).ok_or(MotionError::NoFrames)?;
    let set = decode_shown(decoder, config, frames, &plan, settings)?;
    encode_gif(&set, &delays_cs(&plan.shown, plan.end_ms))
}

/// Palette colours (index 255 is the transparent "unchanged" pixel).
const COLOURS: usize = 255;
const TRANSPARENT: u8 = 255;
/// Pixels the palette is trained on, spread over all frames.
const PALETTE_SAMPLE: usize = 65_536;

/// Maps RGB to palette indices through a 15-bit table filled on first use.
struct PaletteMap {
    quant: NeuQuant,
    table: Vec<u8>,
    known: Vec<bool>,
}

impl PaletteMap {
    fn train(frames: &[Vec<u8>]) -> PaletteMap {
        let pixels: usize = frames.iter().map(|f| f.len() / 3).sum();
        let step = (pixels / PALETTE_SAMPLE).max(1);
        let mut sample = Vec::with_capacity(PALETTE_SAMPLE * 4 + 4);
        for frame in frames {
            for rgb in frame.chunks_exact(3).step_by(step) {
                sample.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 255]);
            }
        }
        PaletteMap {
            quant: NeuQuant::new(10, COLOURS, &sample),
            table: vec![0; 1 << 15],
            known: vec![false; 1 << 15],
        }
    }

    fn palette(&self) -> Vec<u8> {
        let mut palette = self.quant.color_map_rgb();
        palette.resize(256 * 3, 0);
        palette
    }

    fn index(&mut self, rgb: &[u8]) -> u8 {
        let key = (usize::from(rgb[0] >> 3) << 10)
            | (usize::from(rgb[1] >> 3) << 5)
            | usize::from(rgb[2] >> 3);
        if !self.known[key] {
            let centre = |c: u8| (c & !7) | 4;
            let found = self
                .quant
                .index_of(&[centre(rgb[0]), centre(rgb[1]), centre(rgb[2]), 255]);
            self.table[key] = u8::try_from(found.min(COLOURS - 1)).unwrap_or(0);
            self.known[key] = true;
        }
        self.table[key]
    }
}

fn encode_gif(set: &FrameSet, delays: &[u16]) -> Result<Vec<u8>, MotionError> {
    let gif_error = |e: gif::EncodingError| MotionError::Gif(e.to_string());
    let (width, height) = (
        u16::try_from(set.width).map_err(|_| MotionError::Picture("too wide".into()))?,
        u16::try_from(set.height).map_err(|_| MotionError::Picture("too tall".into()))?,
    );
    if set.frames.is_empty() {
        return Err(MotionError::NoFrames);
    }
    let mut palette = PaletteMap::train(&set.frames);
    let mut out = Vec::new();
    {
        let mut encoder =
            gif::Encoder::new(&mut out, width, height, &palette.palette()).map_err(gif_error)?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(gif_error)?;
        let mut previous: Vec<u8> = Vec::new();
        let mut indices = Vec::with_capacity(usize::from(width) * usize::from(height));
        for (rgb, &delay) in set.frames.iter().zip(delays) {
            let current: Vec<u8> = rgb.chunks_exact(3).map(|p| palette.index(p)).collect();
            indices.clear();
            if previous.len() == current.len() {
                indices.extend(current.iter().zip(&previous).map(|(&now, &before)| {
                    if now == before {
                        TRANSPARENT
                    } else {
                        now
                    }
                }));
            } else {
                indices.extend_from_slice(&current);
            }
            let frame = gif::Frame {
                width,
                height,
                delay,
                dispose: gif::DisposalMethod::Keep,
                transparent: Some(TRANSPARENT),
                buffer: Cow::Borrowed(&indices),
                ..gif::Frame::default()
            };
            encoder.write_frame(&frame).map_err(gif_error)?;
            previous = current;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(list: &[(i64, bool)]) -> Vec<FrameInfo> {
        list.iter()
            .map(|&(pts_ms, is_reference)| FrameInfo {
                pts_ms,
                is_reference,
            })
            .collect()
    }

    #[test]
    fn samples_the_frame_on_screen_and_skips_unreferenced_unshown_frames() {
        // 30 fps (33 ms) I P B B P B B … in decode order, B-frames not referenced.
        let mut list = vec![(0, true)];
        for gop in 0..10 {
            let p = (gop * 3 + 3) * 100 / 3;
            list.push((p, true));
            list.push(((gop * 3 + 1) * 100 / 3, false));
            list.push(((gop * 3 + 2) * 100 / 3, false));
        }
        let plan = plan(&frames(&list), 10, 1000).unwrap();
        // One frame in three shown: 0, 100, 200 … 900 ms.
        assert_eq!(plan.shown, (0..10).map(|k| k * 100).collect::<Vec<_>>());
        assert_eq!(plan.end_ms, 1000);
        // Shown frames are the P-frames here; no B-frame needs decoding.
        assert!(plan.decode.iter().all(|&i| list[i].1));
        // Nothing after the last shown frame (900 ms, decode index 25) is decoded.
        assert_eq!(plan.decode.last(), Some(&25));
        assert_eq!(delays_cs(&plan.shown, plan.end_ms), vec![10; 10]);
    }

    #[test]
    fn shown_b_frames_are_decoded_and_delays_follow_the_source() {
        // 25 fps (40 ms) sampled at 10 fps: frames at 0, 80, 200, 280, 400 … are on screen.
        let list: Vec<(i64, bool)> = (0..25).map(|i| (i * 40, i % 2 == 0)).collect();
        let plan = plan(&frames(&list), 10, 1000).unwrap();
        assert_eq!(
            plan.shown,
            vec![0, 80, 200, 280, 400, 480, 600, 680, 800, 880]
        );
        assert!(
            plan.decode.contains(&7),
            "the shown frame at 280 ms is decoded"
        );
        assert!(
            !plan.decode.contains(&1),
            "the frame at 40 ms is neither needed nor shown"
        );
        let delays = delays_cs(&plan.shown, plan.end_ms);
        assert_eq!(delays, vec![8, 12, 8, 12, 8, 12, 8, 12, 8, 12]);
        assert_eq!(delays.iter().map(|&d| u32::from(d)).sum::<u32>(), 100);
    }

    #[test]
    fn a_stream_ending_early_gives_a_shorter_clip() {
        let list: Vec<(i64, bool)> = (0..15).map(|i| (i * 33, true)).collect();
        let plan = plan(&frames(&list), 10, 3000).unwrap();
        assert_eq!(plan.end_ms, 14 * 33 + 33);
        assert_eq!(plan.shown.len(), 5);
        assert!(super::plan(&[], 10, 3000).is_none());
    }
}
