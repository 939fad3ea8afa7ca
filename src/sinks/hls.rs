//! The HLS sink: one per stream that needs segments, writing CMAF segments to
//! `<data>/hls/<streamname>/<session>/` and keeping the playlists that list them.
//!
//! Two users share one sink and one set of segments (SPEC: live HLS "from the same
//! segments"): the replay (`replay` processing, started with the session; keeps the whole
//! session or its last N seconds and stays playable after the end with `#EXT-X-ENDLIST`) and
//! live HLS (`/live/<streamname>/index.m3u8`, the newest few segments). A live stream without
//! replay gets its sink on the first live-playlist request and stops it when nobody asked for
//! the playlist for `hls.idle_stop_secs`, so streams nobody watches over HLS cost nothing.
//!
//! Playlists are served from memory (a snapshot swapped whole after each segment, so a reader
//! never sees half a playlist); the replay playlist is also written to disk (temp file +
//! rename) for after the session. A segment is in a playlist only after its file is written.
//!
//! Not here: cutting segments (`hls::segmenter`), HTTP (`http::hls`).

use super::blocking;
use crate::catalog;
use crate::hls::{MediaPlaylist, Retention, Segment, SegmentEntry, Segmenter, SegmenterSettings};
use crate::hub::{Delivery, Event, StreamHub, Subscription};
use crate::status::{SinkState, StatusBoard};
use bytes::Bytes;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
}

/// One stream's HLS output, shared by its sink and the HTTP handlers.
#[derive(Debug)]
pub struct HlsOutput {
    pub stream_id: Uuid,
    pub session_id: Uuid,
    pub dir: PathBuf,
    pub replay: bool,
    snapshot: watch::Sender<Snapshot>,
    /// Unix ms of the last live-playlist request (idle stop of on-demand sinks).
    last_request_ms: AtomicI64,
}

impl HlsOutput {
    /// Notes a live-playlist request and returns a receiver of playlist updates.
    pub fn watch(&self) -> watch::Receiver<Snapshot> {
        self.last_request_ms.store(now_ms(), Ordering::Relaxed);
        self.snapshot.subscribe()
    }
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The HLS outputs of live streams, by streamname.
#[derive(Debug, Clone, Default)]
pub struct HlsOutputs {
    by_name: Arc<Mutex<HashMap<String, Arc<HlsOutput>>>>,
}

impl HlsOutputs {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<HlsOutput>>> {
        self.by_name.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, streamname: &str) -> Option<Arc<HlsOutput>> {
        self.map().get(streamname).cloned()
    }

    /// Removes `output` if it is still the one registered for `streamname`.
    fn remove(&self, streamname: &str, output: &Arc<HlsOutput>) {
        let mut map = self.map();
        if map.get(streamname).is_some_and(|o| Arc::ptr_eq(o, output)) {
            map.remove(streamname);
        }
    }
}

/// What every HLS sink shares.
#[derive(Clone)]
pub struct HlsContext {
    pub catalog: crate::catalog::Catalog,
    pub data_dir: PathBuf,
    pub outputs: HlsOutputs,
    pub status: StatusBoard,
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
}

/// The folder of a session's segments.
pub fn session_dir(data_dir: &Path, streamname: &str, session_id: Uuid) -> PathBuf {
    data_dir
        .join("hls")
        .join(streamname)
        .join(session_id.to_string())
}

/// Registers the output and subscribes at once (at the hub's newest keyframe); returns the
/// output and the task to spawn. An existing output of the same session is reused.
pub fn start(
    ctx: &HlsContext,
    hub: &Arc<StreamHub>,
    plan: HlsPlan,
) -> (
    Arc<HlsOutput>,
    Option<impl std::future::Future<Output = ()> + Send + 'static>,
) {
    let mut map = ctx.outputs.map();
    if let Some(existing) = map.get(&plan.streamname) {
        if existing.session_id == plan.session_id {
            return (existing.clone(), None);
        }
    }
    let output = Arc::new(HlsOutput {
        stream_id: plan.stream_id,
        session_id: plan.session_id,
        dir: session_dir(&ctx.data_dir, &plan.streamname, plan.session_id),
        replay: plan.replay.is_some(),
        snapshot: watch::Sender::new(Snapshot::default()),
        last_request_ms: AtomicI64::new(now_ms()),
    });
    map.insert(plan.streamname.clone(), output.clone());
    drop(map);
    let subscription = hub.subscribe(Delivery::Lossless);
    let task = run(ctx.clone(), subscription, plan, output.clone());
    (output, Some(task))
}

/// Why a segment could not be stored.
#[derive(Debug, thiserror::Error)]
enum HlsError {
    #[error("i/o on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("muxing: {0}")]
    Mux(#[from] mp4_atom::Error),
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> HlsError + '_ {
    move |source| HlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// [`super::write_atomically`] with the path in the error; a replay is a rewind buffer, so
/// no sync (the recording is the durable copy).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), HlsError> {
    super::write_atomically(path, bytes, false).map_err(io_error(path))
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
}

impl Sink {
    fn program_date_time(&self, dts_ms: i64) -> String {
        let (wall, dts0) = self.clock.unwrap_or((OffsetDateTime::now_utc(), dts_ms));
        let at = wall + time::Duration::milliseconds(dts_ms - dts0);
        crate::catalog::format_rfc3339(at)
    }

    /// Stores a finished segment, lists it, and drops the files that left the playlist.
    async fn store(&mut self, segment: Segment) -> Result<(), HlsError> {
        let dir = self.output.dir.clone();
        let Segment {
            sequence,
            bytes,
            duration_secs,
            start_dts_ms,
            init,
            new_init,
            discontinuity,
        } = segment;
        blocking(move || {
            std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
            if let Some(new_init) = new_init {
                write_atomically(&dir.join(&new_init.name), &new_init.bytes)?;
            }
            let path = dir.join(format!("{sequence}.m4s"));
            std::fs::write(&path, &bytes).map_err(io_error(&path))
        })
        .await?;
        let program_date_time = self.program_date_time(start_dts_ms);
        if sequence == 0 && self.plan.replay.is_some() {
            let (session_id, origin) = (self.plan.session_id, program_date_time.clone());
            if let Err(e) = self
                .ctx
                .catalog
                .call(move |conn| catalog::set_replay_origin(conn, session_id, &origin))
                .await
            {
                tracing::error!(stream = %self.plan.streamname, error = %e, "cannot store the replay's time origin");
            }
        }
        let entry = SegmentEntry {
            sequence,
            duration_secs,
            init,
            discontinuity,
            program_date_time,
        };
        let removed = self.playlist.push(entry);
        self.publish(false).await?;
        if !removed.is_empty() {
            let dir = self.output.dir.clone();
            let still_used: Vec<String> =
                self.playlist.segments().map(|e| e.init.clone()).collect();
            blocking(move || {
                for entry in removed {
                    let _ = std::fs::remove_file(dir.join(format!("{}.m4s", entry.sequence)));
                    if !still_used.contains(&entry.init) {
                        let _ = std::fs::remove_file(dir.join(&entry.init));
                    }
                }
                Ok::<_, HlsError>(())
            })
            .await?;
        }
        if self.plan.replay.is_some() {
            self.ctx.status.success(self.plan.stream_id, STATUS_ID);
        }
        Ok(())
    }

    /// Swaps in new playlist snapshots (and writes the replay playlist to disk).
    async fn publish(&mut self, ended: bool) -> Result<(), HlsError> {
        let prefix = format!("{}/", self.plan.session_id);
        let live =
            (!ended).then(|| Bytes::from(self.playlist.render_last(LIVE_WINDOW_SEGMENTS, &prefix)));
        let replay = self
            .plan
            .replay
            .is_some()
            .then(|| Bytes::from(self.playlist.render("")));
        let segments = self.playlist.segments().count() as u64;
        self.output.snapshot.send_replace(Snapshot {
            live,
            replay: replay.clone(),
            segments,
            ended,
        });
        if let Some(replay) = replay {
            let path = self.output.dir.join("index.m3u8");
            blocking(move || write_atomically(&path, &replay)).await?;
        }
        Ok(())
    }

    async fn on_event(&mut self, event: Event) -> Result<bool, HlsError> {
        let segment = match event {
            Event::Packet(packet) => {
                self.clock
                    .get_or_insert_with(|| (OffsetDateTime::now_utc(), packet.dts_ms));
                self.segmenter.push(&packet)?
            }
            Event::Gap { missed } => {
                self.ctx.media.dropped("hls", missed);
                tracing::warn!(stream = %self.plan.streamname, missed, "hls fell behind: media skipped, a discontinuity follows");
                self.ctx
                    .status
                    .update(self.plan.stream_id, STATUS_ID, |s| s.skipped += 1);
                self.segmenter.gap()?
            }
            Event::Ended => {
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
        ctx.status
            .update(plan.stream_id, STATUS_ID, |s| s.state = SinkState::Active);
        let (stream_id, session_id) = (plan.stream_id, plan.session_id);
        let path = format!("hls/{}/{}", plan.streamname, plan.session_id);
        if let Err(e) = ctx
            .catalog
            .call(move |conn| catalog::begin_replay(conn, stream_id, session_id, &path))
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
                    ctx.status
                        .error(sink.plan.stream_id, STATUS_ID, e.to_string());
                }
                break;
            }
        }
    }
    drop(subscription);
    ctx.outputs.remove(&streamname, &output);
    if sink.plan.replay.is_none() {
        let dir = output.dir.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    } else {
        let (session_id, duration) = (sink.plan.session_id, sink.playlist.duration_secs());
        if let Err(e) = ctx
            .catalog
            .call(move |conn| catalog::finish_replay(conn, session_id, duration))
            .await
        {
            tracing::error!(stream = %streamname, error = %e, "cannot mark the replay ended in the catalog");
        }
        ctx.status.update(sink.plan.stream_id, STATUS_ID, |s| {
            if s.state == SinkState::Active {
                s.state = SinkState::Idle;
            }
        });
    }
}

/// Ends the replays a crash left open: their on-disk playlists get `#EXT-X-ENDLIST` (they
/// list only segments already written) and the catalog marks them ended. Returns how many.
pub async fn recover(
    catalog: &crate::catalog::Catalog,
    data_dir: &Path,
) -> Result<usize, crate::catalog::CatalogError> {
    let open = catalog.call(|conn| catalog::open_replays(conn)).await?;
    let count = open.len();
    for replay in open {
        let path = data_dir.join(&replay.path).join("index.m3u8");
        let duration = tokio::task::spawn_blocking(move || -> f64 {
            let Ok(mut text) = std::fs::read_to_string(&path) else {
                return 0.0;
            };
            if !text.contains("#EXT-X-ENDLIST") {
                text.push_str("#EXT-X-ENDLIST\n");
                if let Err(e) = write_atomically(&path, text.as_bytes()) {
                    tracing::error!(error = %e, "cannot end a replay playlist left open");
                }
            }
            text.lines()
                .filter_map(|l| l.strip_prefix("#EXTINF:"))
                .filter_map(|l| l.trim_end_matches(',').parse::<f64>().ok())
                .sum()
        })
        .await
        .unwrap_or(0.0);
        let session_id = replay.session_id;
        catalog
            .call(move |conn| catalog::finish_replay(conn, session_id, duration))
            .await?;
        tracing::warn!(replay = %replay.path, duration_secs = duration, "ended a replay left open by an unclean stop");
    }
    Ok(count)
}
