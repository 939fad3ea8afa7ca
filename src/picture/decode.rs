//! One stream's H.264 decoder: OpenH264 (built from its bundled source) behind a safe
//! interface that takes our packets and gives I420 pictures.
//!
//! OpenH264 decodes OBS-style High profile with B-frames bit-exactly only without flushing
//! after each call (`Flush::NoFlush`, then `flush_remaining` at the end); its default drops
//! most frames of such streams. It wants Annex B; we convert (see `annexb`).
//!
//! Decoders run only on the decode pool's threads, never on the async runtime, one warm
//! decoder per thread ([`with_thread_decoder`]).

use super::annexb::{append_frame, parameter_sets, AnnexBError};
use crate::media::avc::AvcConfig;
use openh264::decoder::{Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;
use std::cell::RefCell;
use thiserror::Error;

/// Why a frame gave no picture.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error(transparent)]
    AnnexB(#[from] AnnexBError),
    #[error("openh264: {0}")]
    Decoder(String),
    #[error("the decoder produced no picture")]
    NoPicture,
}

/// A decoded picture in I420, tightly packed (stride = width).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

fn copy_plane(source: &[u8], stride: usize, width: usize, height: usize) -> Vec<u8> {
    let mut plane = Vec::with_capacity(width * height);
    for row in source.chunks(stride.max(1)).take(height) {
        plane.extend_from_slice(row.get(..width).unwrap_or(row));
    }
    plane.resize(width * height, 0);
    plane
}

impl Picture {
    fn from_yuv(yuv: &(impl YUVSource + ?Sized)) -> Picture {
        let (width, height) = yuv.dimensions();
        let (y_stride, u_stride, v_stride) = yuv.strides();
        let (chroma_w, chroma_h) = (width.div_ceil(2), height.div_ceil(2));
        Picture {
            width: u32::try_from(width).unwrap_or(0),
            height: u32::try_from(height).unwrap_or(0),
            y: copy_plane(yuv.y(), y_stride, width, height),
            u: copy_plane(yuv.u(), u_stride, chroma_w, chroma_h),
            v: copy_plane(yuv.v(), v_stride, chroma_w, chroma_h),
        }
    }
}

/// A picture as the decoder gave it, still in the decoder's buffers: copied out only when
/// wanted (a motion clip shows a third of the frames it decodes; a 1080p copy is 3 MB).
pub struct DecodedPicture<'a>(&'a dyn YUVSource);

impl DecodedPicture<'_> {
    /// The picture, copied out of the decoder.
    pub fn to_picture(&self) -> Picture {
        Picture::from_yuv(self.0)
    }
}

/// A stream's decoder (every job sends the parameter sets first, so a new sequence header
/// needs nothing special).
pub struct StreamDecoder {
    decoder: Decoder,
    /// Whether the decoder has decoded a multi-frame sequence since it was made.
    ran_sequence: bool,
}

fn new_decoder() -> Result<Decoder, DecodeError> {
    let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
    Decoder::with_api_config(OpenH264API::from_source(), config)
        .map_err(|e| DecodeError::Decoder(e.to_string()))
}

impl StreamDecoder {
    pub fn new() -> Result<Self, DecodeError> {
        Ok(StreamDecoder {
            decoder: new_decoder()?,
            ran_sequence: false,
        })
    }

    /// OpenH264 (2.x, NoFlush) does not give back all of its picture buffers after a
    /// multi-frame sequence and its flush: the third 1080p motion clip in one decoder fails
    /// with "out of memory" (`dsOutOfMemory`, measured). So whatever follows a sequence gets
    /// a fresh decoder; keyframe-only work keeps the warm one.
    fn fresh_after_sequence(&mut self) -> Result<(), DecodeError> {
        if self.ran_sequence {
            self.decoder = new_decoder()?;
            self.ran_sequence = false;
        }
        Ok(())
    }

    /// Decodes one keyframe on its own (a thumbnail): a sequence of one frame, whose picture
    /// is the newest out (with NoFlush it usually comes out of the flush).
    pub fn decode_keyframe(
        &mut self,
        config: &AvcConfig,
        frame: &[u8],
    ) -> Result<Picture, DecodeError> {
        let mut newest = None;
        self.decode_sequence(config, [frame], |picture| {
            newest = Some(picture.to_picture());
        })?;
        newest.ok_or(DecodeError::NoPicture)
    }

    /// Decodes frames given in decode order from a keyframe on (a motion clip) and hands each
    /// picture to `on_picture` in display order; returns how many came out. OpenH264 passes
    /// no timestamps through, so the caller pairs the n-th picture with the n-th smallest
    /// presentation time it fed. Frames may be left out only if nothing fed references them.
    pub fn decode_sequence<'a>(
        &mut self,
        config: &AvcConfig,
        frames: impl IntoIterator<Item = &'a [u8]>,
        mut on_picture: impl FnMut(DecodedPicture<'_>),
    ) -> Result<usize, DecodeError> {
        self.fresh_after_sequence()?;
        let mut input = parameter_sets(config);
        let mut count = 0;
        let mut fed_frames = 0;
        let fed = frames.into_iter().try_for_each(|frame| {
            fed_frames += 1;
            // Only multi-frame sequences leave the decoder short of buffers.
            self.ran_sequence |= fed_frames > 1;
            append_frame(config, frame, &mut input)?;
            let decoded = self
                .decoder
                .decode(&input)
                .map_err(|e| DecodeError::Decoder(e.to_string()))?;
            if let Some(yuv) = decoded {
                on_picture(DecodedPicture(&yuv));
                count += 1;
            }
            input.clear();
            Ok::<(), DecodeError>(())
        });
        // Drain the reorder buffer even after an error, so nothing leaks into the next job.
        let flushed = self
            .decoder
            .flush_remaining()
            .map_err(|e| DecodeError::Decoder(e.to_string()));
        fed?;
        for yuv in flushed? {
            on_picture(DecodedPicture(&yuv));
            count += 1;
        }
        Ok(count)
    }
}

thread_local! {
    static THREAD_DECODER: RefCell<Option<StreamDecoder>> = const { RefCell::new(None) };
}

/// Runs `work` with this thread's decoder, made on first use. An OpenH264 decoder holds about
/// 50 MB once it has decoded 1080p (measured: RSS +51.7 MiB per stream when each stream kept
/// its own), so the decode pool keeps one per thread instead of one per stream. Every job
/// sends the parameter sets first and starts at a keyframe, so a decoder moves between
/// streams freely; it stays warm (an IDR in about half the time of a fresh decoder). A job
/// that fails drops the decoder, whose state is then unknown.
pub fn with_thread_decoder<T, E: From<DecodeError>>(
    work: impl FnOnce(&mut StreamDecoder) -> Result<T, E>,
) -> Result<T, E> {
    THREAD_DECODER.with_borrow_mut(|slot| {
        let decoder = match slot {
            Some(decoder) => decoder,
            None => slot.insert(StreamDecoder::new()?),
        };
        let result = work(decoder);
        if result.is_err() {
            *slot = None;
        }
        result
    })
}

/// A decoder fed one stream continuously (the ABR transcoder): frames in decode order in,
/// pictures out in display order, each with the presentation time and keyframe flag of the
/// frame it came from. OpenH264 passes no timestamps through, so the n-th picture out is
/// paired with the smallest presentation time fed and not yet out (display order is
/// presentation order). Never flushed between frames (`NoFlush`, see the module docs); a
/// decode error drops the decoder, and the caller starts again at the next keyframe.
pub struct LiveDecoder {
    decoder: Decoder,
    /// Presentation times fed and not yet out, with their keyframe flags.
    pending: std::collections::BTreeMap<i64, bool>,
    /// The parameter sets were sent for this configuration generation.
    sent_generation: Option<u32>,
    input: Vec<u8>,
}

/// A picture out of a [`LiveDecoder`], still in the decoder's buffers.
pub struct LivePicture<'a> {
    pub picture: DecodedPicture<'a>,
    pub pts_ms: i64,
    /// Decoded from a keyframe of the source.
    pub key: bool,
}

impl LiveDecoder {
    pub fn new() -> Result<Self, DecodeError> {
        Ok(LiveDecoder {
            decoder: new_decoder()?,
            pending: std::collections::BTreeMap::new(),
            sent_generation: None,
            input: Vec::new(),
        })
    }

    /// Feeds one frame (AVCC) of configuration `generation`; the parameter sets go first
    /// whenever the generation changes. Pictures that became ready go to `on_picture`.
    pub fn decode(
        &mut self,
        config: &AvcConfig,
        generation: u32,
        frame: &[u8],
        (pts_ms, key): (i64, bool),
        mut on_picture: impl FnMut(LivePicture<'_>),
    ) -> Result<(), DecodeError> {
        self.input.clear();
        if self.sent_generation != Some(generation) {
            self.input.extend_from_slice(&parameter_sets(config));
            self.sent_generation = Some(generation);
        }
        append_frame(config, frame, &mut self.input)?;
        self.pending.insert(pts_ms, key);
        let decoded = self
            .decoder
            .decode(&self.input)
            .map_err(|e| DecodeError::Decoder(e.to_string()))?;
        if let Some(yuv) = decoded {
            if let Some((pts_ms, key)) = self.pending.pop_first() {
                on_picture(LivePicture {
                    picture: DecodedPicture(&yuv),
                    pts_ms,
                    key,
                });
            }
        }
        Ok(())
    }

    /// Gives out the pictures still held for reordering (at the end of the stream).
    pub fn flush(
        &mut self,
        mut on_picture: impl FnMut(LivePicture<'_>),
    ) -> Result<(), DecodeError> {
        let flushed = self
            .decoder
            .flush_remaining()
            .map_err(|e| DecodeError::Decoder(e.to_string()))?;
        for yuv in flushed {
            if let Some((pts_ms, key)) = self.pending.pop_first() {
                on_picture(LivePicture {
                    picture: DecodedPicture(&yuv),
                    pts_ms,
                    key,
                });
            }
        }
        self.pending.clear();
        Ok(())
    }
}
