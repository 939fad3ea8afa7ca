//! Packets → CMAF segments for HLS: each segment starts at a video keyframe and is one
//! `moof`+`mdat` from the shared muxer (`mux::Fragmenter`), with the init segment (`ftyp` +
//! `moov`) it needs.
//!
//! A segment is cut at the first video keyframe once it holds `min_segment_ms` of video, so
//! the segment length follows the stream's GOP (2 s for OBS defaults; a 0.5 s GOP gives 1 s
//! segments). Audio-only streams are cut every `audio_only_segment_ms`. A codec change starts
//! a new init segment and a discontinuity; so does a gap in a lossless reader's input.
//!
//! Pure: bytes in, bytes out; the sink does the I/O.

use crate::media::{tracks_changed, CodecConfig, Packet, Track};
use crate::mux::{init_segment, tracks_for, Fragmenter};
use std::sync::Arc;

/// Where segments are cut.
#[derive(Debug, Clone, Copy)]
pub struct SegmenterSettings {
    pub min_segment_ms: i64,
    pub audio_only_segment_ms: u64,
}

impl Default for SegmenterSettings {
    fn default() -> Self {
        SegmenterSettings {
            min_segment_ms: 1000,
            audio_only_segment_ms: 2000,
        }
    }
}

/// An init segment to store before the media segments that use it.
#[derive(Debug, Clone)]
pub struct InitSegment {
    /// Its number in the session, from 1 (the storage layout names the file after it).
    pub number: u32,
    pub bytes: Vec<u8>,
}

/// One finished media segment.
#[derive(Debug, Clone)]
pub struct Segment {
    pub sequence: u64,
    /// `moof` + `mdat`.
    pub bytes: Vec<u8>,
    pub duration_secs: f64,
    /// Source decode time (ms) of its first packet, for `EXT-X-PROGRAM-DATE-TIME`.
    pub start_dts_ms: i64,
    /// The number of the init segment it needs.
    pub init: u32,
    /// A new init segment to store first (the first segment, or after a codec change).
    pub new_init: Option<InitSegment>,
    pub discontinuity: bool,
}

/// The segment being built.
struct Current {
    fragmenter: Fragmenter,
    config: Arc<CodecConfig>,
    init: u32,
    new_init: Option<InitSegment>,
    has_video: bool,
    /// Source dts of the segment's first packet.
    start_dts_ms: Option<i64>,
    discontinuity: bool,
}

/// Cuts one stream's packets into segments.
pub struct Segmenter {
    settings: SegmenterSettings,
    current: Option<Current>,
    /// Configuration (by identity) with no muxable track; its packets are skipped.
    unmuxable: Option<Arc<CodecConfig>>,
    inits: u32,
    next_sequence: u64,
    need_keyframe: bool,
    /// The next segment follows a break (codec change, gap).
    discontinuity_next: bool,
}

impl Segmenter {
    pub fn new(settings: SegmenterSettings) -> Self {
        Segmenter {
            settings,
            current: None,
            unmuxable: None,
            inits: 0,
            next_sequence: 0,
            need_keyframe: true,
            discontinuity_next: false,
        }
    }

    /// Adds a packet; returns the segment it completed, if any.
    pub fn push(&mut self, packet: &Packet) -> Result<Option<Segment>, mp4_atom::Error> {
        if self
            .unmuxable
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &packet.config))
        {
            return Ok(None);
        }
        let mut done = None;
        let changed = self
            .current
            .as_mut()
            .is_some_and(|current| tracks_changed(&mut current.config, &packet.config));
        if changed {
            done = self.close(Some(packet.dts_ms))?;
            self.discontinuity_next = true;
            self.need_keyframe = true;
        }
        if self.current.is_none() && !self.open(&packet.config)? {
            return Ok(done);
        }
        let Some(current) = self.current.as_mut() else {
            return Ok(done);
        };
        let video = packet.track == Track::Video && current.has_video;
        if self.need_keyframe && current.has_video {
            if !(video && packet.is_key) {
                return Ok(done); // a segment starts with a keyframe; earlier audio waits too
            }
            self.need_keyframe = false;
        }
        let start = *current.start_dts_ms.get_or_insert(packet.dts_ms);
        let cut_video = video
            && packet.is_key
            && packet.dts_ms - start >= self.settings.min_segment_ms
            && done.is_none();
        if !current.fragmenter.push(packet) {
            return Ok(done);
        }
        if cut_video {
            // The keyframe is held as the next segment's first sample; all before it is ready.
            let duration_secs = (packet.dts_ms - start) as f64 / 1000.0;
            let segment = self.take(duration_secs)?;
            if let Some(current) = self.current.as_mut() {
                current.start_dts_ms = Some(packet.dts_ms);
            }
            return Ok(segment);
        }
        if !current.has_video
            && current.fragmenter.ready_ms() >= self.settings.audio_only_segment_ms
        {
            let duration_secs = current.fragmenter.ready_ms() as f64 / 1000.0;
            let segment = self.take(duration_secs)?;
            if let Some(current) = self.current.as_mut() {
                current.start_dts_ms = None;
            }
            return Ok(segment.or(done));
        }
        Ok(done)
    }

    /// The input skipped media (a lossless reader's gap): ends the segment; the next one
    /// starts at a keyframe after a discontinuity.
    pub fn gap(&mut self) -> Result<Option<Segment>, mp4_atom::Error> {
        let done = self.close(None)?;
        self.discontinuity_next = true;
        self.need_keyframe = true;
        Ok(done)
    }

    /// The stream ended: the last segment.
    pub fn finish(&mut self) -> Result<Option<Segment>, mp4_atom::Error> {
        self.close(None)
    }

    /// Starts a new fragmenter (and init segment) for `config`; false if nothing is muxable.
    fn open(&mut self, config: &Arc<CodecConfig>) -> Result<bool, mp4_atom::Error> {
        let (tracks, _) = tracks_for(config);
        if tracks.is_empty() {
            self.unmuxable = Some(config.clone());
            return Ok(false);
        }
        self.inits += 1;

        let has_video = tracks.iter().any(|t| t.track == Track::Video);
        let bytes = init_segment(&tracks)?;
        self.current = Some(Current {
            fragmenter: Fragmenter::new(tracks),
            config: config.clone(),
            init: self.inits,
            new_init: Some(InitSegment {
                number: self.inits,
                bytes,
            }),
            has_video,
            start_dts_ms: None,
            discontinuity: self.discontinuity_next,
        });
        self.discontinuity_next = false;
        Ok(true)
    }

    /// Ends the current fragmenter; its held samples end at `next_dts_ms` when known.
    fn close(&mut self, next_dts_ms: Option<i64>) -> Result<Option<Segment>, mp4_atom::Error> {
        let Some(current) = self.current.as_mut() else {
            return Ok(None);
        };
        let start = current.start_dts_ms;
        current.fragmenter.finish(next_dts_ms);
        // The video span when there is video (audio may overhang the cut a frame or two).
        let ready_ms = current
            .fragmenter
            .ready_ms_of(Track::Video)
            .unwrap_or_else(|| current.fragmenter.ready_ms());
        let duration_secs = match (start, next_dts_ms) {
            (Some(start), Some(next)) if next > start => (next - start) as f64 / 1000.0,
            _ => ready_ms as f64 / 1000.0,
        };
        let segment = self.take(duration_secs)?;
        self.current = None;
        Ok(segment)
    }

    /// Encodes the ready samples as the next segment.
    fn take(&mut self, duration_secs: f64) -> Result<Option<Segment>, mp4_atom::Error> {
        let Some(current) = self.current.as_mut() else {
            return Ok(None);
        };
        let start_dts_ms = current.start_dts_ms.unwrap_or(0);
        let Some(fragment) = current.fragmenter.take_fragment()? else {
            return Ok(None);
        };
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        Ok(Some(Segment {
            sequence,
            bytes: fragment.bytes,
            duration_secs,
            start_dts_ms,
            init: current.init,
            new_init: current.new_init.take(),
            discontinuity: std::mem::take(&mut current.discontinuity),
        }))
    }
}
