//! In-process ABR transcoding of a stream group (SPEC "Stream groups"): the passthrough's
//! live session starts one [`Transcoder`] with one rendition per transcode profile, and each
//! rendition is published into its member stream's own hub as an ingest would be — so
//! recording, replay, live HLS, RTMP play and pictures work on it unchanged.
//!
//! Threads, not async tasks (decoding and encoding are seconds of CPU per second of video):
//!
//! - one **source thread** reads the passthrough's hub as a lossy reader (never slowing the
//!   passthrough or its other readers; behind, it resumes at the next keyframe and counts a
//!   resync), decodes the H.264 once (OpenH264, see `picture::decode::LiveDecoder`) and hands
//!   each picture, and each audio frame, to every rendition;
//! - one **rendition thread** per profile drops frames to the profile's frame rate, scales
//!   (`picture::scale::FrameScaler`, SIMD), encodes ([`encode`]) with an IDR exactly at each
//!   source keyframe's presentation time, copies the source's AAC, and pushes the result
//!   through an FLV demuxer into its hub. Its queue is bounded: a rendition that cannot keep
//!   up loses frames (never a keyframe), counted in its status, and only it does.
//!
//! Status per rendition, under the member's `transcode` entry: `speed` = media seconds
//! encoded per second of wall clock over the last few seconds (1.0 keeps real time; dropped
//! frames lower it), `skipped` = frames dropped because the rendition could not keep up,
//! `last_error`.
//!
//! Not here: which streams a group has and their sessions (`session`), playlists (`http`).

pub mod encode;
mod rendition;

use crate::hub::{Delivery, Event, Publisher, StreamHub};
use crate::media::{Packet, Track};
use crate::metrics::TranscodeMetrics;
use crate::picture::decode::{LiveDecoder, LivePicture};
use crate::picture::Picture;
use crate::processing::TranscodeProfile;
use crate::status::StreamStatus;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The status id of a rendition's transcoding.
pub const STATUS_ID: &str = "transcode";
/// Frames a rendition may have queued before the source drops frames for it (audio frames
/// queue beside them and are never dropped): 0.4 s at 30 fps, enough to ride out a moment
/// without the CPU; a lagging rendition holds at most this many source pictures (3 MB each
/// at 1080p).
const RENDITION_QUEUE: usize = 12;
/// Messages (frames and audio) a rendition's channel holds; audio past it waits.
const CHANNEL_CAPACITY: usize = 256;

/// One rendition to make.
pub struct RenditionPlan {
    pub streamname: String,
    pub profile: TranscodeProfile,
    /// The writer of the member stream's hub.
    pub publisher: Publisher,
    /// The member stream's statuses.
    pub status: StreamStatus,
}

/// A decoded source picture shared by every rendition.
#[derive(Debug)]
pub struct SourceFrame {
    pub picture: Picture,
    pub pts_ms: i64,
    /// Decoded from a source keyframe: every rendition makes an IDR of it.
    pub key: bool,
}

/// What the source thread hands a rendition, in stream order.
enum Input {
    Frame(Arc<SourceFrame>),
    Audio(Arc<Packet>),
}

/// A running transcoder; its threads end when the source's publisher leaves.
pub struct Transcoder {
    finished: CancellationToken,
}

impl Transcoder {
    /// Resolves once every thread has ended and every rendition's hub has ended.
    pub async fn finished(&self) {
        self.finished.cancelled().await;
    }
}

/// A rendition as the source thread sees it.
struct RenditionInput {
    sender: SyncSender<Input>,
    /// Frames queued and not yet taken by the rendition thread.
    queued_frames: Arc<AtomicUsize>,
    profile: String,
    metrics: TranscodeMetrics,
    status: StreamStatus,
    /// Frames dropped for this rendition, shared with its thread (its speed).
    dropped: Arc<AtomicU64>,
}

impl RenditionInput {
    /// Queues a frame; a full queue drops it (a keyframe waits instead: renditions must have
    /// their IDRs).
    fn send_frame(&mut self, frame: &Arc<SourceFrame>) {
        if !frame.key && self.queued_frames.load(Ordering::Acquire) >= RENDITION_QUEUE {
            let dropped = self.dropped.fetch_add(1, Ordering::AcqRel) + 1;
            self.metrics.dropped(&self.profile);
            self.status.update(STATUS_ID, |s| s.skipped = dropped);
            return;
        }
        self.queued_frames.fetch_add(1, Ordering::AcqRel);
        if self.sender.send(Input::Frame(frame.clone())).is_err() {
            self.queued_frames.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn send_audio(&self, packet: &Arc<Packet>) {
        let _ = self.sender.send(Input::Audio(packet.clone()));
    }
}

/// Starts transcoding `source` (the passthrough's hub) into `renditions`. Must be called
/// on the runtime (the source thread waits for the hub through it).
pub fn start(
    source: &Arc<StreamHub>,
    source_name: &str,
    renditions: Vec<RenditionPlan>,
    metrics: &TranscodeMetrics,
) -> Transcoder {
    let finished = CancellationToken::new();
    let guard = Arc::new(finished.clone().drop_guard());
    let runtime = tokio::runtime::Handle::current();
    let mut inputs = Vec::new();
    for plan in renditions {
        let (sender, receiver) = mpsc::sync_channel(CHANNEL_CAPACITY);
        let queued_frames = Arc::new(AtomicUsize::new(0));
        let status = plan.status.clone();
        let name = plan.streamname.clone();
        let profile = plan.profile.to_string();
        let thread_metrics = metrics.clone();
        let guard = guard.clone();
        let taken = queued_frames.clone();
        let dropped = Arc::new(AtomicU64::new(0));
        let dropped_seen = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("abr-{name}"))
            .spawn(move || {
                thread_metrics.renditions.inc();
                rendition::run(plan, receiver, (&taken, &dropped_seen), &thread_metrics);
                thread_metrics.renditions.dec();
                drop(guard);
            });
        match spawned {
            Ok(_) => inputs.push(RenditionInput {
                sender,
                queued_frames,
                profile,
                metrics: metrics.clone(),
                status,
                dropped,
            }),
            Err(e) => status.error(STATUS_ID, format!("cannot start a thread: {e}")),
        }
    }
    let subscription = source.subscribe(Delivery::Lossy);
    let name = source_name.to_string();
    let resyncs = metrics.resyncs.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("abr-src-{name}"))
        .spawn(move || {
            run_source(&runtime, subscription, inputs, &name, &resyncs);
            drop(guard);
        });
    if let Err(e) = spawned {
        tracing::error!(stream = %source_name, error = %e, "cannot start the transcoder's source thread");
    }
    Transcoder { finished }
}

/// Copies a decoded picture out of the decoder once and queues it for every rendition.
fn fan_out(renditions: &mut [RenditionInput], out: LivePicture<'_>) {
    let frame = Arc::new(SourceFrame {
        picture: out.picture.to_picture(),
        pts_ms: out.pts_ms,
        key: out.key,
    });
    renditions.iter_mut().for_each(|r| r.send_frame(&frame));
}

/// The source thread: decode once, fan the pictures and the audio out to every rendition.
fn run_source(
    runtime: &tokio::runtime::Handle,
    mut subscription: crate::hub::Subscription,
    mut renditions: Vec<RenditionInput>,
    name: &str,
    resync_count: &prometheus_client::metrics::counter::Counter,
) {
    let mut decoder: Option<LiveDecoder> = None;
    let mut need_keyframe = true;
    let mut resyncs = 0u64;
    let mut warned_codec = false;
    let report = |renditions: &[RenditionInput], message: String| {
        for r in renditions {
            r.status.error(STATUS_ID, message.clone());
        }
    };
    loop {
        let packet = match runtime.block_on(subscription.next()) {
            Event::Item(packet) => packet,
            Event::Gap { missed } => {
                // Behind the live edge: start again at the next keyframe.
                resyncs += 1;
                resync_count.inc();
                tracing::warn!(stream = %name, missed, resyncs, "transcoder fell behind its source; resuming at the next keyframe");
                decoder = None;
                need_keyframe = true;
                continue;
            }
            Event::Ended => break,
        };
        if packet.track == Track::Audio {
            renditions.iter().for_each(|r| r.send_audio(&packet));
            continue;
        }
        let Some(avc) = packet.config.avc() else {
            if !warned_codec {
                warned_codec = true;
                report(
                    &renditions,
                    "the source video is not H.264 with a usable configuration: nothing to transcode"
                        .into(),
                );
            }
            continue;
        };
        if need_keyframe && !packet.is_key {
            continue;
        }
        need_keyframe = false;
        let live = match decoder.as_mut() {
            Some(decoder) => decoder,
            None => match LiveDecoder::new() {
                Ok(fresh) => decoder.insert(fresh),
                Err(e) => {
                    report(&renditions, format!("cannot make a decoder: {e}"));
                    need_keyframe = true;
                    continue;
                }
            },
        };
        let payload = packet.payload();
        let decoded = live.decode(
            avc,
            packet.config.generation,
            &payload,
            (packet.pts_ms(), packet.is_key),
            |out| fan_out(&mut renditions, out),
        );
        if let Err(e) = decoded {
            tracing::warn!(stream = %name, error = %e, "transcoder could not decode a frame; resuming at the next keyframe");
            report(&renditions, format!("decode: {e}"));
            decoder = None;
            need_keyframe = true;
        }
    }
    if let Some(mut decoder) = decoder {
        let _ = decoder.flush(|out| fan_out(&mut renditions, out));
    }
    // Dropping the senders ends the rendition threads once they have drained their queues.
}
