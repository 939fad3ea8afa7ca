//! What thumbnails and motion clips share: the context, the tick schedule, running a job on
//! the decode pool, and storing a picture at its stable URL plus history.
//!
//! The schedule: the first picture at the first keyframe after publishing starts, then one
//! per interval on the task's own grid of ticks (`TickPhases`: the grids of different streams
//! are offset so their decodes do not arrive at the pool together), each from the newest
//! keyframe (waiting for the next one when none arrived since the last picture). Between ticks
//! a picture task holds no reader on the hub and sleeps until its tick or the stream's end;
//! waiting for a keyframe, it wakes only when one arrives. So it costs nothing in between. Ticks that pass while the
//! stream's previous job still runs, or whose job the full decode queue refused, are skipped
//! and counted (status `skipped`, metric).

use crate::catalog::{format_rfc3339, Catalog, NewPicture};
use crate::config::PictureSettings;
use crate::hub::StreamHub;
use crate::media::{Packet, Track};
use crate::metrics::PictureMetrics;
use crate::picture::decode::with_thread_decoder;
use crate::picture::pool::DecodePool;
use crate::picture::PictureError;
use crate::picture::StreamDecoder;
use crate::status::StreamStatus;
use crate::storage::{layout, Durability, LocalStore};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::time::Instant;
use uuid::Uuid;

/// What every picture task shares.
#[derive(Debug, Clone)]
pub struct PictureContext {
    pub catalog: Catalog,
    /// Where pictures are written.
    pub spool: Arc<LocalStore>,
    pub pool: DecodePool,
    pub settings: PictureSettings,
    pub metrics: PictureMetrics,
    pub phases: TickPhases,
}

pub use crate::catalog::PictureKind;

/// How a job on the decode pool ended.
pub enum JobResult {
    /// The picture's bytes.
    Done(Vec<u8>),
    Failed(PictureError),
    /// The decode queue was full: the tick is skipped.
    Refused,
}

/// Runs `work` on the decode pool with the pool thread's decoder (see
/// `picture::decode::with_thread_decoder`), ahead of jobs with later deadlines.
async fn run_job(
    pool: &DecodePool,
    deadline: Instant,
    work: impl FnOnce(&mut StreamDecoder) -> Result<Vec<u8>, PictureError> + Send + 'static,
) -> JobResult {
    match pool.try_run(deadline, move || with_thread_decoder(work)) {
        None => JobResult::Refused,
        Some(reply) => match reply.await {
            Ok(Ok(bytes)) => JobResult::Done(bytes),
            Ok(Err(e)) => JobResult::Failed(e),
            Err(_) => JobResult::Failed(PictureError::JobLost),
        },
    }
}

/// Where one task's ticks fall: `origin + k × interval`.
#[derive(Debug, Clone, Copy)]
pub struct TickGrid {
    pub origin: Instant,
    pub interval: Duration,
}

impl TickGrid {
    /// The first tick at or after `at`.
    fn at_or_after(&self, at: Instant) -> Instant {
        let interval = self.interval.as_nanos().max(1);
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let steps = since.div_ceil(interval);
        let offset = u64::try_from(interval.saturating_mul(steps)).unwrap_or(u64::MAX);
        self.origin + Duration::from_nanos(offset)
    }
}

/// Gives each picture task its own offset within the interval, so that the ticks of streams
/// started together (after a restart, a scheduled show, a load test) spread over the interval
/// instead of sending all their decodes to the pool at once — where the last ones in the queue
/// would miss their next tick although the machine has time to spare. The n-th task of a kind
/// takes the fraction frac(n × 0.618…) of its interval (the golden ratio's sequence spreads
/// any number of tasks nearly evenly without knowing how many there will be); a task's index
/// is given back when it ends and taken by the next one.
#[derive(Debug, Clone)]
pub struct TickPhases {
    epoch: Instant,
    taken: Arc<Mutex<HashMap<PictureKind, BTreeSet<usize>>>>,
}

impl TickPhases {
    /// Phases are counted from now.
    pub fn new() -> Self {
        TickPhases {
            epoch: Instant::now(),
            taken: Arc::default(),
        }
    }

    /// Takes the lowest free index for `kind` until the slot is dropped.
    fn claim(&self, kind: PictureKind) -> PhaseSlot {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = taken.entry(kind).or_default();
        let index = (0..).find(|i| !taken.contains(i)).unwrap_or_default();
        taken.insert(index);
        PhaseSlot {
            phases: self.clone(),
            kind,
            index,
        }
    }
}

impl Default for TickPhases {
    fn default() -> Self {
        Self::new()
    }
}

/// One task's place among the phases (given back on drop).
struct PhaseSlot {
    phases: TickPhases,
    kind: PictureKind,
    index: usize,
}

impl PhaseSlot {
    /// The task's grid for `interval`.
    fn grid(&self, interval: Duration) -> TickGrid {
        const GOLDEN: f64 = 0.618_033_988_749_895;
        #[allow(clippy::cast_precision_loss)]
        let fraction = (self.index as f64 * GOLDEN).fract();
        TickGrid {
            origin: self.phases.epoch + interval.mul_f64(fraction),
            interval,
        }
    }
}

impl Drop for PhaseSlot {
    fn drop(&mut self) {
        let mut taken = self
            .phases
            .taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(taken) = taken.get_mut(&self.kind) {
            taken.remove(&self.index);
        }
    }
}

/// What one tick's work came to.
pub enum Tick {
    /// Go on; ticks that pass from `busy_since` until now were lost to this tick's job and
    /// count as skipped (earlier ones, e.g. while a motion clip was being collected, are not
    /// lost work: the schedule just moves on).
    Done { busy_since: Instant },
    /// This stream gets no more pictures this session.
    Stop,
}

/// Calls `take` with a keyframe at the first keyframe and then at the ticks of `grid` (the
/// second at least half an interval after the first; see the module doc) until the stream
/// ends or `take` says stop; `take` also gets the next tick (a job not done by then costs
/// it); `skipped` is called per lost tick.
pub async fn every_interval<F, Fut>(
    hub: &StreamHub,
    grid: TickGrid,
    mut skipped: impl FnMut(),
    mut take: F,
) where
    F: FnMut(Arc<Packet>, Instant) -> Fut,
    Fut: Future<Output = Tick>,
{
    let mut last_key = None;
    let mut next_tick: Option<Instant> = None;
    let newer_video_key =
        |after: Option<i64>| move |p: &Packet| p.track == Track::Video && Some(p.dts_ms) != after;
    while let Some(key) = hub.wait_access_point(newer_video_key(last_key)).await {
        last_key = Some(key.dts_ms);
        let tick = *next_tick.get_or_insert_with(Instant::now);
        let deadline = grid.at_or_after(tick + grid.interval / 2);
        let Tick::Done { busy_since } = take(key, deadline).await else {
            return;
        };
        let mut upcoming = deadline;
        let now = Instant::now();
        while upcoming <= now {
            if upcoming > busy_since {
                skipped();
            }
            upcoming += grid.interval;
        }
        next_tick = Some(upcoming);
        tokio::select! {
            _ = tokio::time::sleep_until(upcoming) => {}
            _ = hub.ended() => return,
        }
    }
}

/// A picture's work on the decode pool (decode, encode), given the pool thread's decoder.
pub type Job = Box<dyn FnOnce(&mut StreamDecoder) -> Result<Vec<u8>, PictureError> + Send>;

/// A picture task of one stream: the parts each tick needs.
pub struct PictureTask {
    pub ctx: PictureContext,
    pub kind: PictureKind,
    pub stream_id: Uuid,
    pub streamname: String,
    /// The stream's sink statuses (this task is `thumbs` or `motionclip`).
    pub status: StreamStatus,
}

impl PictureTask {
    /// Runs the schedule until the stream ends (then the status says `idle`, or keeps the
    /// error that stopped it). At each tick `prepare` turns the keyframe into a job (`None`:
    /// nothing to make this time), which runs on the pool and whose picture is stored.
    pub async fn run<F, Fut>(self, hub: &StreamHub, interval: Duration, prepare: F)
    where
        F: Fn(Arc<Packet>) -> Fut,
        Fut: Future<Output = Option<Job>>,
    {
        let task = &self;
        let prepare = &prepare;
        let slot = self.ctx.phases.claim(self.kind);
        every_interval(
            hub,
            slot.grid(interval),
            || task.skipped(),
            |key, deadline| async move {
                if task.refuse_codec(&key) {
                    return Tick::Stop;
                }
                let job = prepare(key).await;
                let busy_since = Instant::now();
                if let Some(job) = job {
                    task.finish(run_job(&task.ctx.pool, deadline, job).await)
                        .await;
                }
                Tick::Done { busy_since }
            },
        )
        .await;
        drop(slot);
        self.ended();
    }

    /// Counts a skipped tick in the status and the metrics.
    fn skipped(&self) {
        self.status.update(self.kind.id(), |s| s.skipped += 1);
        self.ctx.metrics.skipped(self.kind.id());
    }

    /// Notes a failed picture: logged, counted, shown in the status.
    fn fail(&self, error: &dyn std::error::Error) {
        let id = self.kind.id();
        tracing::warn!(stream = %self.streamname, kind = id, error = %error, "picture failed");
        self.ctx.metrics.failed(id);
        self.status.error(id, error.to_string());
    }

    /// Records a job's result: stores the picture, or notes the error.
    async fn finish(&self, result: JobResult) {
        let bytes = match result {
            JobResult::Refused => return self.skipped(),
            JobResult::Failed(e) => return self.fail(&e),
            JobResult::Done(bytes) => bytes,
        };
        match self.store(bytes).await {
            Ok(()) => {
                self.ctx.metrics.made(self.kind.id());
                self.status.success(self.kind.id());
            }
            Err(e) => self.fail(&e),
        }
    }

    /// Writes a picture to the history and the stable "latest" file, lists it in the
    /// catalog, and deletes the history files the catalog trimmed.
    async fn store(&self, bytes: Vec<u8>) -> Result<(), super::SinkError> {
        let at = OffsetDateTime::now_utc();
        let history = layout::picture_history(&self.streamname, self.kind, at);
        let latest = layout::picture_latest(&self.streamname, self.kind);
        let (spool, key) = (self.ctx.spool.clone(), history.clone());
        super::blocking(move || {
            spool
                .put_blocking(&key, &bytes, Durability::Cached)
                .map_err(super::SinkError::io(&key))?;
            spool
                .put_blocking(&latest, &bytes, Durability::Cached)
                .map_err(super::SinkError::io(&latest))
        })
        .await?;
        let picture = NewPicture {
            stream_id: self.stream_id,
            kind: self.kind,
            key: history,
            created_at: format_rfc3339(at),
        };
        let trimmed = self
            .ctx
            .catalog
            .add_picture(picture, self.ctx.settings.history)
            .await?;
        if !trimmed.is_empty() {
            let spool = self.ctx.spool.clone();
            super::blocking(move || {
                for key in trimmed {
                    spool
                        .delete_blocking(&key)
                        .map_err(super::SinkError::io(&key))?;
                }
                Ok::<_, super::SinkError>(())
            })
            .await?;
        }
        Ok(())
    }

    /// Refuses streams the decoder cannot take (HEVC, AV1): a clear status, logged once.
    fn refuse_codec(&self, key: &Packet) -> bool {
        let codec = key.config.video.as_ref().map(|v| v.codec);
        if codec == Some(crate::media::VideoCodec::Avc) {
            return false;
        }
        let name = codec.map_or("none", |c| c.name());
        let what = match self.kind {
            PictureKind::Thumbnail => "thumbnails",
            PictureKind::MotionClip => "motion clips",
        };
        let message = format!("{what} need H.264; this stream sends {name}");
        tracing::warn!(stream = %self.streamname, "{message}");
        self.status.error(self.kind.id(), message);
        true
    }

    /// Marks the task idle when the stream ended (an error that stopped it stays shown).
    fn ended(&self) {
        self.status.idle(self.kind.id());
    }
}

#[cfg(test)]
mod tests;
