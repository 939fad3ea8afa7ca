//! The HLS sink: one per stream that needs segments, writing CMAF segments to the session's
//! HLS folder (`storage::layout::hls_session`) and keeping the playlists that list them.
//!
//! Two users share one sink and one set of segments (SPEC: live HLS "from the same
//! segments"): the replay (`replay` processing, started with the session; keeps the whole
//! session or its last N seconds and stays playable after the end with `#EXT-X-ENDLIST`) and
//! live HLS (`/live/<streamname>/index.m3u8`, the newest few segments). A live stream without
//! replay gets its sink on the first live-playlist request (its live session starts it) and
//! stops it when nobody asked for the playlist for 30 s, so streams nobody watches over HLS
//! cost nothing. The replay reads the hub losslessly (the rewind buffer must be complete); a
//! live-only sink reads it lossy, like a player: behind, it skips to the newest keyframe and
//! the playlist gets a discontinuity.
//!
//! Playlists are served from memory (a snapshot swapped whole after each segment, so a reader
//! never sees half a playlist); the replay playlist is also written to disk (temp file +
//! rename) for after the session. A segment is in a playlist only after its file is written.
//!
//! Not here: cutting segments (`hls::segmenter`), HTTP (`http::hls`).

use super::{blocking, SinkError};
use crate::hls::{
    MediaPlaylist, Retention, Segment, SegmentEntry, Segmenter, SegmenterSettings, VariantInfo,
};
use crate::hub::{Delivery, Event, StreamHub, Subscription};
use crate::media::Track;
use crate::status::{SinkState, StreamStatus};
use crate::storage::layout::{self, REPLAY_PLAYLIST};
use crate::storage::{Durability, LocalStore};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

/// The replay's id in stream status.
pub const STATUS_ID: &str = "replay";
/// Segments in the live playlist.
pub const LIVE_WINDOW_SEGMENTS: usize = 6;
/// Seconds of segments kept on disk for live-only HLS (the window plus what players still
/// fetch).
const LIVE_KEEP_SECS: f64 = 30.0;

/// What the HTTP side reads: the current playlists.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub live: Option<Bytes>,
    pub replay: Option<Bytes>,
    pub segments: u64,
    pub ended: bool,
    /// What a multivariant playlist says of this output, measured on its recent segments.
    pub variant: Option<VariantInfo>,
}

/// Segments the variant figures are measured over.
const VARIANT_WINDOW: usize = 10;

/// Bytes, seconds and video frames of one segment.
type SegmentFigures = (usize, f64, u32);

fn variant_info(
    config: &crate::media::CodecConfig,
    recent: &std::collections::VecDeque<SegmentFigures>,
) -> VariantInfo {
    let mut codecs = Vec::new();
    let video = config.video.as_ref().and_then(|v| v.params.as_ref());
    if let Some(params) = video {
        codecs.push(params.codec_string());
    }
    if let Some(asc) = config.audio.as_ref().and_then(|a| a.aac.as_ref()) {
        codecs.push(format!("mp4a.40.{}", asc.object_type));
    }
    let rate = |bytes: usize, secs: f64| (bytes as f64 * 8.0 / secs.max(0.001)).round() as u64;
    let peak_bps = recent
        .iter()
        .map(|&(b, d, _)| rate(b, d))
        .max()
        .unwrap_or(0);
    let (bytes, secs) = recent.iter().fold((0, 0.0), |(b, d), s| (b + s.0, d + s.1));
    // The highest rate of a recent segment (RFC 8216bis: the maximum frame rate), so a
    // segment that lost frames does not lower it.
    let frame_rate = recent
        .iter()
        .filter(|&&(_, d, f)| d > 0.0 && f > 0)
        .map(|&(_, d, f)| f64::from(f) / d)
        .reduce(f64::max);
    VariantInfo {
        codecs: codecs.join(","),
        resolution: video.map(|p| p.picture_size()),
        frame_rate,
        peak_bps,
        average_bps: rate(bytes, secs),
    }
}

/// One stream's HLS output, shared by its sink and the HTTP handlers (through the stream's
/// live session, which holds it).
#[derive(Debug)]
pub struct HlsOutput {
    pub stream_id: Uuid,
    pub session_id: Uuid,
    /// Storage key of the session's folder.
    pub folder: String,
    pub replay: bool,
    snapshot: watch::Sender<Snapshot>,
    /// Unix ms of the last live-playlist request (idle stop of on-demand sinks).
    last_request_ms: AtomicI64,
    /// Cleared when the sink's task ends (idle stop, error, end of stream).
    running: AtomicBool,
}

impl HlsOutput {
    /// Notes a live-playlist request and returns a receiver of playlist updates.
    pub fn watch(&self) -> watch::Receiver<Snapshot> {
        self.last_request_ms.store(now_ms(), Ordering::Relaxed);
        self.snapshot.subscribe()
    }

    /// The current playlists, without counting as a live request.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// Whether its sink still runs (a stopped live-only output is replaced on demand).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// What every HLS sink shares.
#[derive(Clone)]
pub struct HlsContext {
    pub catalog: crate::catalog::Catalog,
    /// Where segments and playlists are written.
    pub spool: Arc<LocalStore>,
    /// An on-demand (live-only) sink stops after this long without a playlist request.
    pub idle_stop: Duration,
    /// Skipped packets are counted here.
    pub media: crate::metrics::MediaMetrics,
}

/// What one sink produces.
#[derive(Debug, Clone)]
pub struct HlsPlan {
    pub stream_id: Uuid,
    pub streamname: String,
    pub session_id: Uuid,
    /// `Some` for a replay session: how much it keeps.
    pub replay: Option<Retention>,
    /// The stream's sink statuses (this sink is `replay` when it keeps one).
    pub status: StreamStatus,
    /// A live-only output that runs for the whole session instead of stopping when nobody
    /// asks for it: a stream group's renditions, whose segments must all start at the same
    /// keyframe so their sequence numbers agree.
    pub whole_session: bool,
}

/// Makes the output and subscribes at once (at the hub's newest keyframe); returns the
/// output and the task to spawn. A replay reads losslessly (the rewind buffer must be
/// complete); a live-only output reads lossy like a player, so a slow disk costs its viewers
/// a skip instead of holding the ring.
pub fn start(
    ctx: &HlsContext,
    hub: &Arc<StreamHub>,
    plan: HlsPlan,
) -> (
    Arc<HlsOutput>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let output = Arc::new(HlsOutput {
        stream_id: plan.stream_id,
        session_id: plan.session_id,
        folder: layout::hls_session(&plan.streamname, plan.session_id),
        replay: plan.replay.is_some(),
        snapshot: watch::Sender::new(Snapshot::default()),
        last_request_ms: AtomicI64::new(now_ms()),
        running: AtomicBool::new(true),
    });
    let delivery = if plan.replay.is_some() {
        Delivery::Lossless
    } else {
        Delivery::Lossy
    };
    let subscription = hub.subscribe(delivery);
    let task = run(ctx.clone(), subscription, plan, output.clone());
    (output, task)
}

/// The sink's state between segments.
struct Sink {
    ctx: HlsContext,
    plan: HlsPlan,
    output: Arc<HlsOutput>,
    segmenter: Segmenter,
    playlist: MediaPlaylist,
    /// Wall clock and source time of the first packet, for `EXT-X-PROGRAM-DATE-TIME`.
    clock: Option<(OffsetDateTime, i64)>,
    /// The recent segments' figures and the configuration of the newest packet, for the
    /// variant figures.
    recent: std::collections::VecDeque<SegmentFigures>,
    config: Option<Arc<crate::media::CodecConfig>>,
    /// Video frames pushed since the last segment was cut, and in the segment just cut.
    frames: u32,
    segment_frames: u32,
}

impl Sink {
    fn program_date_time(&self, dts_ms: i64) -> String {
        let (wall, dts0) = self.clock.unwrap_or((OffsetDateTime::now_utc(), dts_ms));
        let at = wall + time::Duration::milliseconds(dts_ms - dts0);
        crate::catalog::format_rfc3339(at)
    }

    /// The key of a file in this session's folder.
    fn key(&self, name: &str) -> String {
        layout::hls_file(&self.plan.streamname, self.plan.session_id, name)
    }

    /// Stores a finished segment, lists it, and drops the files that left the playlist.
    async fn store(&mut self, segment: Segment) -> Result<(), SinkError> {
        let Segment {
            sequence,
            bytes,
            duration_secs,
            start_dts_ms,
            init,
            new_init,
            discontinuity,
        } = segment;
        self.recent
            .push_back((bytes.len(), duration_secs, self.segment_frames));
        if self.recent.len() > VARIANT_WINDOW {
            self.recent.pop_front();
        }
        let uri = layout::hls_segment_name(sequence);
        let init_uri = layout::hls_init_name(init);
        let new_init = new_init.map(|i| (self.key(&layout::hls_init_name(i.number)), i.bytes));
        let (spool, key) = (self.ctx.spool.clone(), self.key(&uri));
        blocking(move || {
            if let Some((init_key, init_bytes)) = new_init {
                spool
                    .put_blocking(&init_key, &init_bytes, Durability::Cached)
                    .map_err(SinkError::io(&init_key))?;
            }
            spool
                .write_blocking(&key, &bytes)
                .map_err(SinkError::io(&key))
        })
        .await?;
        let program_date_time = self.program_date_time(start_dts_ms);
        if sequence == 0 && self.plan.replay.is_some() {
            if let Err(e) = self
                .ctx
                .catalog
                .set_replay_origin(self.plan.session_id, &program_date_time)
                .await
            {
                tracing::error!(stream = %self.plan.streamname, error = %e, "cannot store the replay's time origin");
            }
        }
        let entry = SegmentEntry {
            sequence,
            uri,
            duration_secs,
            init: init_uri,
            discontinuity,
            program_date_time,
        };
        let removed = self.playlist.push(entry);
        self.publish(false).await?;
        if !removed.is_empty() {
            let still_used: Vec<String> =
                self.playlist.segments().map(|e| e.init.clone()).collect();
            let mut gone: Vec<String> = Vec::new();
            for entry in removed {
                gone.push(self.key(&entry.uri));
                if !still_used.contains(&entry.init) && !gone.contains(&self.key(&entry.init)) {
                    gone.push(self.key(&entry.init));
                }
            }
            let spool = self.ctx.spool.clone();
            blocking(move || {
                for key in gone {
                    if let Err(e) = spool.delete_blocking(&key) {
                        tracing::warn!(file = %key, error = %e, "cannot delete a segment that left the playlist");
                    }
                }
                Ok::<_, SinkError>(())
            })
            .await?;
        }
        if self.plan.replay.is_some() {
            self.plan.status.success(STATUS_ID);
        }
        Ok(())
    }

    /// Swaps in new playlist snapshots (and writes the replay playlist to disk).
    async fn publish(&mut self, ended: bool) -> Result<(), SinkError> {
        let prefix = format!("{}/", self.plan.session_id);
        let live =
            (!ended).then(|| Bytes::from(self.playlist.render_last(LIVE_WINDOW_SEGMENTS, &prefix)));
        let replay = self
            .plan
            .replay
            .is_some()
            .then(|| Bytes::from(self.playlist.render("")));
        let segments = self.playlist.segments().count() as u64;
        let variant = self.config.as_ref().map(|c| variant_info(c, &self.recent));
        self.output.snapshot.send_replace(Snapshot {
            live,
            replay: replay.clone(),
            segments,
            ended,
            variant,
        });
        if let Some(replay) = replay {
            // A replay is a rewind buffer: no sync (the recording is the durable copy).
            let (spool, key) = (self.ctx.spool.clone(), self.key(REPLAY_PLAYLIST));
            blocking(move || {
                spool
                    .put_blocking(&key, &replay, Durability::Cached)
                    .map_err(SinkError::io(&key))
            })
            .await?;
        }
        Ok(())
    }

    async fn on_event(&mut self, event: Event) -> Result<bool, SinkError> {
        let segment = match event {
            Event::Item(packet) => {
                self.clock
                    .get_or_insert_with(|| (OffsetDateTime::now_utc(), packet.dts_ms));
                if !self
                    .config
                    .as_ref()
                    .is_some_and(|c| Arc::ptr_eq(c, &packet.config))
                {
                    self.config = Some(packet.config.clone());
                }
                let segment = self.segmenter.push(&packet)?;
                if segment.is_some() {
                    // The frame that cut a segment is the next segment's first.
                    self.segment_frames = std::mem::take(&mut self.frames);
                }
                if packet.track == Track::Video {
                    self.frames += 1;
                }
                segment
            }
            Event::Gap { missed } => {
                self.ctx.media.dropped("hls", missed);
                if self.plan.replay.is_some() {
                    tracing::warn!(stream = %self.plan.streamname, missed, "replay fell behind its backlog cap: media skipped, a discontinuity follows");
                    self.plan.status.update(STATUS_ID, |s| s.skipped += 1);
                } else {
                    tracing::debug!(stream = %self.plan.streamname, missed, "live hls fell behind: skipped to the newest keyframe");
                }
                self.segment_frames = std::mem::take(&mut self.frames);
                self.segmenter.gap()?
            }
            Event::Ended => {
                self.segment_frames = std::mem::take(&mut self.frames);
                if let Some(segment) = self.segmenter.finish()? {
                    self.store(segment).await?;
                }
                self.playlist.end();
                self.publish(true).await?;
                return Ok(false);
            }
        };
        if let Some(segment) = segment {
            self.store(segment).await?;
        }
        Ok(true)
    }

    /// An on-demand sink nobody asked for lately.
    fn idle(&self) -> bool {
        self.plan.replay.is_none()
            && !self.plan.whole_session
            && now_ms() - self.output.last_request_ms.load(Ordering::Relaxed)
                > i64::try_from(self.ctx.idle_stop.as_millis()).unwrap_or(i64::MAX)
    }
}

async fn run(
    ctx: HlsContext,
    mut subscription: Subscription,
    plan: HlsPlan,
    output: Arc<HlsOutput>,
) {
    let retention = plan.replay.unwrap_or(Retention::LastSecs(LIVE_KEEP_SECS));
    if plan.replay.is_some() {
        plan.status
            .update(STATUS_ID, |s| s.state = SinkState::Active);
        if let Err(e) = ctx
            .catalog
            .begin_replay(plan.stream_id, plan.session_id, &output.folder)
            .await
        {
            tracing::error!(stream = %plan.streamname, error = %e, "cannot list the replay in the catalog");
        }
    }
    let mut sink = Sink {
        ctx: ctx.clone(),
        playlist: MediaPlaylist::new(retention),
        segmenter: Segmenter::new(SegmenterSettings::default()),
        clock: None,
        recent: std::collections::VecDeque::new(),
        config: None,
        frames: 0,
        segment_frames: 0,
        output: output.clone(),
        plan,
    };
    let streamname = sink.plan.streamname.clone();
    let mut idle_check = tokio::time::interval(Duration::from_secs(1));
    loop {
        let event = tokio::select! {
            event = subscription.next() => event,
            _ = idle_check.tick() => {
                if sink.idle() {
                    tracing::debug!(stream = %streamname, "live hls idle: stopped");
                    break;
                }
                continue;
            }
        };
        match sink.on_event(event).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::error!(stream = %streamname, error = %e, "hls stopped by an error; other outputs continue");
                if sink.plan.replay.is_some() {
                    sink.plan.status.error(STATUS_ID, e.to_string());
                }
                break;
            }
        }
    }
    drop(subscription);
    output.running.store(false, Ordering::Release);
    if sink.plan.replay.is_none() {
        let (spool, folder) = (ctx.spool.clone(), output.folder.clone());
        let _ = tokio::task::spawn_blocking(move || spool.delete_prefix_blocking(&folder)).await;
    } else {
        let (session_id, duration) = (sink.plan.session_id, sink.playlist.duration_secs());
        if let Err(e) = ctx.catalog.finish_replay(session_id, duration).await {
            tracing::error!(stream = %streamname, error = %e, "cannot mark the replay ended in the catalog");
        }
        if let Some(config) = &sink.config {
            let variant = variant_info(config, &sink.recent);
            if let Err(e) = ctx.catalog.set_replay_variant(session_id, &variant).await {
                tracing::error!(stream = %streamname, error = %e, "cannot store the replay's variant figures");
            }
        }
        sink.plan.status.idle(STATUS_ID);
    }
}

/// Ends the replays a crash left open: their stored playlists get `#EXT-X-ENDLIST` (they
/// list only segments already written) and the catalog marks them ended. Returns how many.
pub async fn recover(
    catalog: &crate::catalog::Catalog,
    spool: &Arc<LocalStore>,
) -> Result<usize, crate::catalog::CatalogError> {
    let open = catalog.open_replays().await?;
    let count = open.len();
    for replay in open {
        let key = layout::file_in(&replay.key, REPLAY_PLAYLIST);
        let spool = spool.clone();
        let duration = tokio::task::spawn_blocking(move || -> f64 {
            let Some(Ok(text)) = key.as_deref().map(|key| spool.read_blocking(key)) else {
                return 0.0;
            };
            let key = key.unwrap_or_default();
            let mut text = String::from_utf8_lossy(&text).into_owned();
            if !text.contains("#EXT-X-ENDLIST") {
                text.push_str("#EXT-X-ENDLIST\n");
                if let Err(e) = spool.put_blocking(&key, text.as_bytes(), Durability::Cached) {
                    tracing::error!(file = %key, error = %e, "cannot end a replay playlist left open");
                }
            }
            text.lines()
                .filter_map(|l| l.strip_prefix("#EXTINF:"))
                .filter_map(|l| l.trim_end_matches(',').parse::<f64>().ok())
                .sum()
        })
        .await
        .unwrap_or(0.0);
        catalog.finish_replay(replay.session_id, duration).await?;
        tracing::warn!(replay = %replay.key, duration_secs = duration, "ended a replay left open by an unclean stop");
    }
    Ok(count)
}
