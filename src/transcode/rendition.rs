//! One rendition's thread: frame-rate decimation, scaling, encoding, audio copied, and the
//! result pushed into the member stream's hub through an FLV demuxer (as an ingest would).

use super::encode::{self, RenditionEncoder};
use super::{Input, RenditionPlan, SourceFrame, STATUS_ID};
use crate::flv::{Demuxed, Demuxer};
use crate::media::Packet;
use crate::metrics::TranscodeMetrics;
use crate::picture::scale::FrameScaler;
use crate::status::SinkState;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Audio held back at most this far (media time) ahead of the rendition's video, so the hub
/// gets the two tracks interleaved even though video comes out of the decoder and encoder a
/// few frames late; past it (a stream whose video stopped) audio goes on alone.
const AUDIO_HOLD_MS: i64 = 1_000;
/// How often `speed` is updated.
const SPEED_WINDOW: Duration = Duration::from_secs(2);

/// Keeps frames at most `fps` per second; a keyframe is always kept and restarts the grid.
struct Decimator {
    interval_ms: f64,
    next_due_ms: Option<f64>,
}

impl Decimator {
    fn new(fps: u32) -> Self {
        Decimator {
            interval_ms: 1000.0 / f64::from(fps.max(1)),
            next_due_ms: None,
        }
    }

    fn keep(&mut self, pts_ms: i64, key: bool) -> bool {
        let pts = pts_ms as f64;
        match self.next_due_ms {
            // Timestamps are whole milliseconds: allow 2 ms of rounding.
            Some(due) if !key && pts < due - 2.0 => false,
            Some(due) if !key && pts < due + self.interval_ms => {
                self.next_due_ms = Some(due + self.interval_ms);
                true
            }
            _ => {
                self.next_due_ms = Some(pts + self.interval_ms);
                true
            }
        }
    }
}

/// Media time encoded per second of wall clock.
struct Speed {
    window_start: Instant,
    last_frame: Instant,
    credited_ms: f64,
    /// Frames dropped for this rendition so far, and as of the previous frame.
    dropped_total: u64,
    dropped_seen: u64,
}

impl Speed {
    /// Credits one frame of `frame_ms`; returns the speed when a window is complete.
    fn credit(&mut self, frame_ms: f64) -> Option<f64> {
        let now = Instant::now();
        let overloaded = self.dropped_total > self.dropped_seen;
        self.dropped_seen = self.dropped_total;
        // A pause of the source (a publisher reconnecting) starts a new window; a long wait
        // for our own next frame while frames were dropped is overload, and counts.
        if !overloaded && now.duration_since(self.last_frame) > Duration::from_secs(1) {
            self.window_start = now;
            self.credited_ms = 0.0;
        }
        self.last_frame = now;
        self.credited_ms += frame_ms;
        let elapsed = now.duration_since(self.window_start);
        if elapsed < SPEED_WINDOW {
            return None;
        }
        let speed = self.credited_ms / elapsed.as_secs_f64() / 1000.0;
        self.window_start = now;
        self.credited_ms = 0.0;
        Some((speed * 100.0).round() / 100.0)
    }
}

struct Rendition {
    plan: RenditionPlan,
    demuxer: Demuxer,
    scaler: FrameScaler,
    decimator: Decimator,
    encoder: Option<RenditionEncoder>,
    /// The first frame, held until the second tells the source's frame rate.
    first: Option<Arc<SourceFrame>>,
    frame_ms: f64,
    video_record: Option<Vec<u8>>,
    audio_generation: Option<u32>,
    audio: VecDeque<Arc<Packet>>,
    video_pts_ms: Option<i64>,
    encoded: u64,
    speed: Speed,
    failed: bool,
    /// The encoder was reset: wait for a source keyframe.
    restart: bool,
}

/// Runs one rendition until the source thread hangs up.
pub(super) fn run(
    plan: RenditionPlan,
    input: Receiver<Input>,
    (queued_frames, dropped): (&AtomicUsize, &AtomicU64),
    metrics: &TranscodeMetrics,
) {
    let profile = plan.profile.to_string();
    let now = Instant::now();
    let mut rendition = Rendition {
        scaler: FrameScaler::new(plan.profile.width, plan.profile.height),
        decimator: Decimator::new(plan.profile.fps),
        demuxer: Demuxer::default(),
        encoder: None,
        first: None,
        frame_ms: 1000.0 / f64::from(plan.profile.fps.max(1)),
        video_record: None,
        audio_generation: None,
        audio: VecDeque::new(),
        video_pts_ms: None,
        encoded: 0,
        speed: Speed {
            window_start: now,
            last_frame: now,
            credited_ms: 0.0,
            dropped_total: 0,
            dropped_seen: 0,
        },
        failed: false,
        restart: false,
        plan,
    };
    if !encode::supported(&rendition.plan.profile) {
        let message = encode::EncodeError::UnsupportedSize(rendition.plan.profile).to_string();
        rendition.plan.status.error(STATUS_ID, message);
        rendition.failed = true;
    } else {
        rendition.plan.status.update(STATUS_ID, |s| {
            s.state = SinkState::Active;
            s.last_error = None;
        });
    }
    while let Ok(next) = input.recv() {
        match next {
            Input::Frame(frame) => {
                queued_frames.fetch_sub(1, Ordering::AcqRel);
                let before = rendition.encoded;
                rendition.speed.dropped_total = dropped.load(Ordering::Acquire);
                rendition.frame(frame);
                metrics.frames(&profile, rendition.encoded - before);
            }
            Input::Audio(packet) => rendition.audio(packet),
        }
    }
    if let Some(first) = rendition.first.take() {
        let before = rendition.encoded;
        rendition.encode(&first);
        metrics.frames(&profile, rendition.encoded - before);
    }
    rendition.release_audio(i64::MAX);
    rendition.plan.status.update(STATUS_ID, |s| {
        if s.state == SinkState::Active {
            s.state = SinkState::Idle;
        }
        s.speed = None;
    });
    // Dropping the plan drops the publisher: the member's hub ends for its readers.
}

fn raw_ts(ms: i64) -> u32 {
    // The demuxer unwraps 32-bit RTMP timestamps again.
    (ms.max(0) as u64 & 0xffff_ffff) as u32
}

impl Rendition {
    fn frame(&mut self, frame: Arc<SourceFrame>) {
        if self.failed {
            return;
        }
        if self.encoder.is_none() && self.first.is_some() {
            // The second source frame tells the source's rate: the output runs at the
            // profile's rate or, when the source is slower, at the source's.
            let first = self.first.take();
            if let Some(first) = first {
                let step = frame.pts_ms - first.pts_ms;
                if (1..=1000).contains(&step) {
                    self.frame_ms = self.frame_ms.max(step as f64);
                }
                self.encode(&first);
            }
        }
        if !self.decimator.keep(frame.pts_ms, frame.key) || (self.restart && !frame.key) {
            return;
        }
        self.restart = false;
        if self.encoder.is_none() && self.encoded == 0 {
            self.first = Some(frame);
            return;
        }
        self.encode(&frame);
    }

    fn encode(&mut self, frame: &SourceFrame) {
        if self.failed {
            return;
        }
        if self.encoder.is_none() {
            let fps = (1000.0 / self.frame_ms) as f32;
            match RenditionEncoder::new(&self.plan.profile, fps) {
                Ok(encoder) => self.encoder = Some(encoder),
                Err(e) => {
                    self.fail(e.to_string());
                    return;
                }
            }
        }
        let scaled = match self.scaler.scale(&frame.picture) {
            Ok(scaled) => scaled,
            Err(e) => return self.plan.status.error(STATUS_ID, e.to_string()),
        };
        let Some(encoder) = self.encoder.as_mut() else {
            return;
        };
        let encoded = match encoder.encode(&scaled, frame.pts_ms.max(0) as u64, frame.key) {
            Ok(Some(encoded)) => encoded,
            Ok(None) => return,
            Err(e) => {
                // The encoder's state is unknown: a fresh one starts at the next keyframe
                // (its first frame is an IDR, which must fall on a source keyframe).
                self.encoder = None;
                self.restart = true;
                return self.plan.status.error(STATUS_ID, e.to_string());
            }
        };
        let ts = raw_ts(frame.pts_ms);
        if let Some((sps, pps)) = &encoded.parameter_sets {
            let record = encode::avc_record(sps, pps);
            if self.video_record.as_ref() != Some(&record) {
                let header = Bytes::from(encode::flv_sequence_header(&record));
                self.demux(|d| d.video(ts, header));
                self.video_record = Some(record);
            }
        }
        let body = Bytes::from(encode::flv_frame(&encoded));
        self.demux(|d| d.video(ts, body));
        self.video_pts_ms = Some(frame.pts_ms);
        self.release_audio(frame.pts_ms);
        self.encoded += 1;
        let encoded_frames = self.encoded;
        let speed = self.speed.credit(self.frame_ms);
        self.plan.status.update(STATUS_ID, |s| {
            s.state = SinkState::Active;
            s.frames = Some(encoded_frames);
            if let Some(speed) = speed {
                s.speed = Some(speed);
            }
        });
    }

    fn fail(&mut self, message: String) {
        self.failed = true;
        self.plan.status.error(STATUS_ID, message);
    }

    fn audio(&mut self, packet: Arc<Packet>) {
        if self.video_pts_ms.is_none() && self.audio.is_empty() {
            // Before the first video frame, the audio configuration goes in at once, so
            // the rendition's first keyframe already has both tracks' configuration (a
            // recorder starts a new file on a change of tracks).
            self.audio_config(&packet);
        }
        self.audio.push_back(packet);
        let newest = self.audio.back().map_or(0, |p| p.dts_ms);
        let video = self.video_pts_ms.unwrap_or(i64::MIN);
        self.release_audio(video.max(newest - AUDIO_HOLD_MS));
    }

    /// Pushes the held audio up to `until_ms`.
    fn release_audio(&mut self, until_ms: i64) {
        while self.audio.front().is_some_and(|p| p.dts_ms <= until_ms) {
            let Some(packet) = self.audio.pop_front() else {
                break;
            };
            self.audio_config(&packet);
            let body = packet.flv_body.clone();
            self.demux(|d| d.audio(raw_ts(packet.dts_ms), body));
        }
    }

    /// Sends the audio sequence header of `packet`'s configuration, if it is new.
    fn audio_config(&mut self, packet: &Packet) {
        let generation = packet.config.generation;
        if self.audio_generation == Some(generation) {
            return;
        }
        self.audio_generation = Some(generation);
        if let Some(header) = packet
            .config
            .audio
            .as_ref()
            .map(|a| a.flv_body.clone())
            .filter(|b| !b.is_empty())
        {
            self.demux(|d| d.audio(raw_ts(packet.dts_ms), header));
        }
    }

    /// Runs one tag body through the demuxer and pushes what comes out.
    fn demux(&mut self, tag: impl FnOnce(&mut Demuxer) -> Result<Demuxed, crate::flv::FlvError>) {
        match tag(&mut self.demuxer) {
            Ok(Demuxed::Packet(packet)) => self.plan.publisher.push(packet),
            Ok(_) => {}
            Err(e) => self.plan.status.error(STATUS_ID, format!("demux: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Decimator;

    fn kept(source_fps: f64, profile_fps: u32, frames: usize) -> usize {
        let mut decimator = Decimator::new(profile_fps);
        (0..frames)
            .filter(|&i| {
                let pts = (i as f64 * 1000.0 / source_fps).round() as i64;
                decimator.keep(pts, i % 60 == 0)
            })
            .count()
    }

    #[test]
    fn decimation_keeps_the_profile_rate_or_the_source_rate() {
        assert_eq!(kept(30.0, 30, 300), 300);
        assert_eq!(kept(30.0, 60, 300), 300);
        // 10 s of 30 fps at 25 fps: 250 frames, give or take the keyframe restarts.
        let at_25 = kept(30.0, 25, 300);
        assert!((248..=255).contains(&at_25), "{at_25}");
        assert_eq!(kept(60.0, 30, 600), 300);
    }
}
