//! Packets → `moof` + `mdat` fragments (ISO/IEC 14496-12 §8.8), with sample timing.
//!
//! Sample durations come from the next sample's timestamp, so each track holds its newest
//! sample back until the next one arrives (or [`Fragmenter::finish`] closes the run with a
//! nominal duration). Timing rules, per track, in media units:
//! - video: duration = next dts − dts;
//! - audio (AAC): every frame lasts 1024 samples while that keeps the track within one frame
//!   of its timestamps (1 ms resolution), so millisecond rounding never accumulates into
//!   drift; further off (a real gap, or timestamps stepping back), the duration realigns it;
//! - both: a duration is at least one unit, so a small step back is absorbed by the next few
//!   samples and the tracks stay in sync; a jump of more than [`MAX_GAP_MS`] either way is a
//!   timestamp discontinuity, not a pause: the sample gets the last good duration and later
//!   timestamps are shifted so the track stays continuous.
//!
//! `tfdt` counts from the first packet the fragmenter saw (any track), so a track that starts
//! later than the other keeps its offset and the two stay in sync without an edit list; the
//! finaliser derives edit lists from the same numbers.

use super::track::TrackSpec;
use crate::media::{Packet, Track};
use bytes::Bytes;
use mp4_atom::{Encode, Mfhd, Moof, Tfdt, Tfhd, Traf, Trun, TrunEntry};

/// Above this, a forward timestamp step is a discontinuity rather than a pause.
pub const MAX_GAP_MS: i64 = 10_000;

/// `sample_flags` of a sync sample: depends on no other sample.
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_flags` of a non-sync sample: depends on others, `sample_is_non_sync_sample`.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

#[derive(Debug, Clone)]
struct Sample {
    /// Decode time in media units from the fragmenter's origin.
    dts: u64,
    duration: u32,
    cts: i32,
    is_key: bool,
    data: Bytes,
}

#[derive(Debug)]
struct TrackState {
    spec: TrackSpec,
    /// The newest sample, waiting for its successor to know its duration.
    /// The newest sample (with its source time), waiting for its successor to know its
    /// duration.
    held: Option<(Sample, i64)>,
    /// Whether a sample was taken; after the first, each dts is the previous end.
    started: bool,
    ready: Vec<Sample>,
    /// Sum of the durations in `ready`.
    ready_units: u64,
    /// Added to source timestamps (media units) after discontinuities.
    shift: i64,
    last_duration: u32,
    /// Decode time the next sample must not go below.
    end: u64,
}

impl TrackState {
    fn new(spec: TrackSpec) -> Self {
        let last_duration = spec.nominal_duration();
        TrackState {
            spec,
            held: None,
            started: false,
            ready: Vec::new(),
            ready_units: 0,
            shift: 0,
            last_duration,
            end: 0,
        }
    }

    /// Duration of the held sample given its successor's source time (media units).
    fn duration_until(&mut self, held: (u64, i64), next_source: i64) -> u32 {
        let (held_dts, held_source) = held;
        let delta = next_source - held_source;
        let max_gap = self.spec.units_from_ms(MAX_GAP_MS);
        let nominal = i64::from(self.spec.nominal_duration());
        let audio = self.spec.track == Track::Audio;
        if delta.abs() > max_gap {
            // Discontinuity: keep the track continuous and shift what follows.
            let kept = if audio {
                nominal
            } else {
                i64::from(self.last_duration)
            };
            self.shift += kept - delta;
            return u32::try_from(kept.max(1)).unwrap_or(u32::MAX);
        }
        // The duration that puts the next sample at its source time; never below one unit,
        // so small steps back (overlapping timestamps) are absorbed over the next samples
        // instead of moving the whole track out of sync.
        let aligned = next_source - i64::try_from(held_dts).unwrap_or(i64::MAX);
        let duration = if audio && (aligned - nominal).abs() <= nominal {
            nominal
        } else {
            aligned
        };
        let duration = u32::try_from(duration.max(1)).unwrap_or(u32::MAX);
        if delta > 0 {
            self.last_duration = duration;
        }
        duration
    }

    /// The held sample's output dts and source time.
    fn held_times(&self) -> Option<(u64, i64)> {
        self.held
            .as_ref()
            .map(|(sample, source)| (sample.dts, *source))
    }

    fn release_held(&mut self, duration: u32) {
        if let Some((mut sample, _)) = self.held.take() {
            sample.duration = duration;
            self.end = sample.dts + u64::from(duration);
            self.ready_units += u64::from(duration);
            self.ready.push(sample);
        }
    }
}

/// One encoded fragment.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// `moof` followed by `mdat`.
    pub bytes: Vec<u8>,
    pub samples: usize,
    /// Decode-time span of the fragment's longest track, in milliseconds.
    pub duration_ms: u64,
}

/// Builds fragments for a fixed set of tracks. Pure: no I/O.
#[derive(Debug)]
pub struct Fragmenter {
    tracks: Vec<TrackState>,
    origin_ms: Option<i64>,
    sequence: u32,
}

impl Fragmenter {
    /// A fragmenter for `tracks` (from [`super::tracks_for`]).
    pub fn new(tracks: Vec<TrackSpec>) -> Self {
        Fragmenter {
            tracks: tracks.into_iter().map(TrackState::new).collect(),
            origin_ms: None,
            sequence: 0,
        }
    }

    /// The tracks being muxed.
    pub fn specs(&self) -> impl Iterator<Item = &TrackSpec> {
        self.tracks.iter().map(|t| &t.spec)
    }

    /// Adds one packet; `false` when it belongs to no muxed track (it is dropped).
    pub fn push(&mut self, packet: &Packet) -> bool {
        let Some(state) = self
            .tracks
            .iter_mut()
            .find(|t| t.spec.track == packet.track)
        else {
            return false;
        };
        let origin = *self.origin_ms.get_or_insert(packet.dts_ms);
        if let Some(held) = state.held_times() {
            let next_source = state.spec.units_from_ms(packet.dts_ms - origin) + state.shift;
            let duration = state.duration_until(held, next_source);
            state.release_held(duration);
        }
        // After `duration_until`, which may have moved `shift`.
        let source = state.spec.units_from_ms(packet.dts_ms - origin) + state.shift;
        let dts = if state.started {
            state.end
        } else {
            state.started = true;
            u64::try_from(source.max(0)).unwrap_or(0)
        };
        let cts_units = state.spec.units_from_ms(i64::from(packet.cts_ms));
        let sample = Sample {
            dts,
            duration: 0,
            cts: i32::try_from(cts_units).unwrap_or(0),
            is_key: packet.is_key,
            data: packet.payload(),
        };
        state.held = Some((sample, source));
        true
    }

    /// Media time (ms) covered by samples ready to be written, over the longest track.
    pub fn ready_ms(&self) -> u64 {
        self.tracks
            .iter()
            .map(|t| t.ready_units * 1000 / u64::from(t.spec.timescale.max(1)))
            .max()
            .unwrap_or(0)
    }

    /// Media time (ms) of one track's ready samples; `None` if the track is not muxed.
    pub fn ready_ms_of(&self, track: Track) -> Option<u64> {
        self.tracks
            .iter()
            .find(|t| t.spec.track == track)
            .map(|t| t.ready_units * 1000 / u64::from(t.spec.timescale.max(1)))
    }

    /// How far (ms of source time) `dts_ms` lies after the first packet of this fragmenter;
    /// 0 before any packet.
    pub fn since_start_ms(&self, dts_ms: i64) -> i64 {
        self.origin_ms.map_or(0, |origin| dts_ms - origin)
    }

    /// Closes every held sample (end of session or of a file): the video sample lasts until
    /// `next_dts_ms` when given (the packet that starts the next file), else its last
    /// duration; audio frames last one frame.
    pub fn finish(&mut self, next_dts_ms: Option<i64>) {
        let origin = self.origin_ms.unwrap_or(0);
        for state in &mut self.tracks {
            let Some(held) = state.held_times() else {
                continue;
            };
            let duration = match (state.spec.track, next_dts_ms) {
                (Track::Video, Some(next)) => {
                    let next_source = state.spec.units_from_ms(next - origin) + state.shift;
                    state.duration_until(held, next_source)
                }
                (Track::Video, None) => state.last_duration,
                (Track::Audio, _) => state.spec.nominal_duration(),
            };
            state.release_held(duration);
        }
    }

    /// Encodes the ready samples as one fragment, or `None` when there are none.
    pub fn take_fragment(&mut self) -> Result<Option<Fragment>, mp4_atom::Error> {
        let samples: usize = self.tracks.iter().map(|t| t.ready.len()).sum();
        if samples == 0 {
            return Ok(None);
        }
        let duration_ms = self.ready_ms();
        self.sequence += 1;
        let mut moof = Moof {
            mfhd: Mfhd {
                sequence_number: self.sequence,
            },
            traf: Vec::new(),
        };
        let mut payload_sizes = Vec::new();
        for state in self.tracks.iter().filter(|t| !t.ready.is_empty()) {
            let entries: Vec<TrunEntry> = state
                .ready
                .iter()
                .map(|s| TrunEntry {
                    duration: Some(s.duration),
                    size: Some(u32::try_from(s.data.len()).unwrap_or(u32::MAX)),
                    flags: Some(if s.is_key {
                        SYNC_SAMPLE_FLAGS
                    } else {
                        NON_SYNC_SAMPLE_FLAGS
                    }),
                    cts: Some(i64::from(s.cts)),
                })
                .collect();
            payload_sizes.push(state.ready.iter().map(|s| s.data.len()).sum::<usize>());
            moof.traf.push(Traf {
                tfhd: Tfhd {
                    track_id: state.spec.id,
                    default_base_is_moof: true,
                    ..Tfhd::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: state.ready.first().map_or(0, |s| s.dts),
                }),
                trun: vec![Trun {
                    data_offset: Some(0),
                    samples: entries.into(),
                }],
                ..Traf::default()
            });
        }
        // Data offsets are relative to the moof start; the moof's size does not depend on
        // their values, so measure once and fill them in.
        let mut measured = Vec::new();
        moof.encode(&mut measured)?;
        let mut offset = measured.len() + 8;
        for (traf, size) in moof.traf.iter_mut().zip(&payload_sizes) {
            if let Some(trun) = traf.trun.first_mut() {
                trun.data_offset = Some(i32::try_from(offset).unwrap_or(i32::MAX));
            }
            offset += size;
        }
        let mdat_size = 8 + payload_sizes.iter().sum::<usize>();
        let mut bytes = Vec::with_capacity(measured.len() + mdat_size);
        moof.encode(&mut bytes)?;
        bytes.extend_from_slice(&u32::try_from(mdat_size).unwrap_or(u32::MAX).to_be_bytes());
        bytes.extend_from_slice(b"mdat");
        for state in &mut self.tracks {
            state.ready_units = 0;
            for sample in state.ready.drain(..) {
                bytes.extend_from_slice(&sample.data);
            }
        }
        Ok(Some(Fragment {
            bytes,
            samples,
            duration_ms,
        }))
    }
}
