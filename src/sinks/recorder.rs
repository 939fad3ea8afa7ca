//! The recorder: a lossless hub reader that writes a session to MP4 files.
//!
//! While recording, a file is fragmented: `ftyp` + `moov` (with `mvex`) first, then one
//! `moof`+`mdat` per `recording.fragment_ms` of media, each written and synced before the next
//! (a kill loses at most one fragment). When the file ends it is finalised in place into a
//! regular MP4 (`mux::finalize`), then, and only then, marked `done` in the catalog.
//!
//! A file ends when the session ends, when `rec.duration` has passed and a video keyframe
//! arrives (the keyframe starts the next file; nothing is lost or doubled between files),
//! when the codec configuration changes (a new file gets the new sample entries), or when the
//! hub reports a gap (the recorder fell behind its backlog cap: the loss is logged and counted
//! and the next file starts at the next keyframe). A write error stops the recording with a
//! log line, a metric and the stream's `rec` status; what was written stays playable. On a
//! full disk the [`DiskReserve`] is given up so the file can still be finalised; if finalising
//! fails anyway, recovery finalises it at the next start.
//!
//! File I/O runs on the blocking pool, never on an async worker; ingest never waits for it.
//!
//! Not here: deciding whether a session is recorded (`session`), file names
//! (`storage::layout`), crash recovery at start-up ([`recover`] is called by `server`).

use super::{blocking, SinkError};
use crate::catalog::{self, Catalog, Recording, Stream};
use crate::hub::{Delivery, Event, StreamHub, Subscription};
use crate::media::{tracks_changed, CodecConfig, Packet, Track};
use crate::metrics::RecordingMetrics;
use crate::mux::finalize::{finalize, FinalizeError, Finalized};
use crate::mux::{init_segment, tracks_for, Fragmenter};
use crate::status::{SinkState, StreamStatus};
use crate::storage::reserve::{is_disk_full, DiskReserve};
use crate::storage::{layout, LocalStore};
use std::io::Write;
use std::sync::Arc;
use uuid::Uuid;

/// The recorder's id in stream status (the `rec` processing entry's id).
pub const STATUS_ID: &str = "rec";

/// What every recorder shares.
#[derive(Clone)]
pub struct RecorderContext {
    pub catalog: Catalog,
    /// Where recordings are written (and finalised in place).
    pub spool: Arc<LocalStore>,
    pub region: String,
    pub fragment_ms: u64,
    pub metrics: RecordingMetrics,
    /// Skipped packets are counted here.
    pub media: crate::metrics::MediaMetrics,
    pub reserve: Arc<DiskReserve>,
}

/// What to record.
#[derive(Debug, Clone)]
pub struct RecordingPlan {
    pub stream: Stream,
    pub session_id: Uuid,
    /// `rec.duration`: start a new file at the first keyframe after this many seconds.
    pub split_secs: Option<u32>,
    /// The stream's sink statuses (this sink is `rec`).
    pub status: StreamStatus,
}

/// Subscribes at once (so no packet is missed) and returns the task to spawn.
pub fn start(
    ctx: RecorderContext,
    hub: &Arc<StreamHub>,
    plan: RecordingPlan,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let subscription = hub.subscribe(Delivery::Lossless);
    run(ctx, subscription, plan)
}

/// One file being written.
struct OpenFile {
    recording: Recording,
    status: StreamStatus,
    /// Shared with the blocking pool for each write (`&File` reads, writes and seeks).
    file: Arc<std::fs::File>,
    fragmenter: Fragmenter,
    /// The configuration its sample entries were built from.
    config: Arc<CodecConfig>,
    init_written: bool,
    has_video: bool,
}

impl OpenFile {
    async fn create(
        ctx: &RecorderContext,
        plan: &RecordingPlan,
        config: Arc<CodecConfig>,
    ) -> Result<Option<OpenFile>, SinkError> {
        let (tracks, skipped) = tracks_for(&config);
        if !skipped.is_empty() {
            tracing::warn!(stream = %plan.stream.streamname, codecs = ?skipped, "recording leaves out codecs it cannot put in MP4");
        }
        if tracks.is_empty() {
            return Ok(None);
        }
        let has_video = tracks.iter().any(|t| t.track == Track::Video);
        let (region, org, name) = (
            ctx.region.clone(),
            plan.stream.org_hash.clone(),
            plan.stream.streamname.clone(),
        );
        let recording = ctx
            .catalog
            .begin_recording(plan.stream.id, plan.session_id, move |n| {
                layout::recording(&region, &org, &name, n)
            })
            .await?;
        let (spool, reserve, key) = (
            ctx.spool.clone(),
            ctx.reserve.clone(),
            recording.key.clone(),
        );
        let file = blocking(move || {
            if let Err(e) = reserve.ensure() {
                tracing::warn!(error = %e, bytes = reserve.bytes(), "cannot make the disk reserve; a recording on a full disk may stay fragmented until the next start");
            }
            spool
                .create_new_blocking(&key)
                .map_err(SinkError::io(&key))
        })
        .await?;
        tracing::info!(stream = %plan.stream.streamname, file = %recording.key, "recording started");
        ctx.metrics.active.inc();
        plan.status
            .update(STATUS_ID, |s| s.state = SinkState::Active);
        Ok(Some(OpenFile {
            recording,
            status: plan.status.clone(),
            file: Arc::new(file),
            fragmenter: Fragmenter::new(tracks),
            config,
            init_written: false,
            has_video,
        }))
    }

    /// Writes the ready samples as one fragment (after the init segment, the first time) and
    /// syncs them.
    async fn write_fragment(&mut self, ctx: &RecorderContext) -> Result<(), SinkError> {
        let Some(fragment) = self.fragmenter.take_fragment()? else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        if !self.init_written {
            let specs: Vec<_> = self.fragmenter.specs().cloned().collect();
            bytes = init_segment(&specs)?;
        }
        bytes.extend_from_slice(&fragment.bytes);
        let written = bytes.len() as u64;
        let (file, key) = (self.file.clone(), self.recording.key.clone());
        blocking(move || {
            (&*file)
                .write_all(&bytes)
                .and_then(|()| file.sync_data())
                .map_err(SinkError::io(&key))
        })
        .await?;
        self.init_written = true;
        ctx.metrics.bytes_written.inc_by(written);
        self.status.success(STATUS_ID);
        Ok(())
    }

    /// Flushes the held samples, finalises the file and lists it in the catalog.
    async fn close(
        mut self,
        ctx: &RecorderContext,
        next_dts_ms: Option<i64>,
    ) -> Result<(), SinkError> {
        self.fragmenter.finish(next_dts_ms);
        self.write_fragment(ctx).await?;
        self.complete(ctx).await
    }

    /// Finalises what is on disk (also after a write error) and records the outcome.
    async fn complete(self, ctx: &RecorderContext) -> Result<(), SinkError> {
        ctx.metrics.active.dec();
        let id = self.recording.id;
        let file = self.file;
        if !self.init_written {
            // Nothing was ever written: no file, no asset.
            let (spool, key) = (ctx.spool.clone(), self.recording.key.clone());
            blocking(move || {
                drop(file);
                spool.delete_blocking(&key).map_err(SinkError::io(&key))
            })
            .await?;
            ctx.catalog.fail_recording(id, "no media").await?;
            return Ok(());
        }
        let (reserve, released) = (ctx.reserve.clone(), ctx.metrics.reserve_released.clone());
        let done: Finalized = blocking(move || match finalize(&mut &*file) {
            Err(FinalizeError::Io(e)) if is_disk_full(&e) && release(&reserve, &released) => {
                Ok::<_, SinkError>(finalize(&mut &*file)?)
            }
            other => Ok(other?),
        })
        .await?;
        ctx.catalog
            .finish_recording(id, done.size_bytes, done.duration_secs)
            .await?;
        ctx.metrics.files_finished.inc();
        tracing::info!(file = %self.recording.key, bytes = done.size_bytes, duration_secs = done.duration_secs, "recording finished");
        Ok(())
    }
}

/// The recorder's state machine over hub events.
struct Recorder {
    ctx: RecorderContext,
    plan: RecordingPlan,
    current: Option<OpenFile>,
    /// After a gap or at the start: video waits for a keyframe.
    need_keyframe: bool,
    /// Configuration (by identity) that gave no muxable track; its packets are skipped.
    unmuxable: Option<Arc<CodecConfig>>,
}

impl Recorder {
    async fn on_packet(&mut self, packet: &Packet) -> Result<(), SinkError> {
        if self
            .unmuxable
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &packet.config))
        {
            return Ok(());
        }
        let video_key = packet.track == Track::Video && packet.is_key;
        // A file ends on a configuration change or, with `duration`, at the first keyframe
        // after it (audio-only: the first packet after it).
        let ends_here = self.current.as_mut().is_some_and(|file| {
            let changed = tracks_changed(&mut file.config, &packet.config);
            let due = self.plan.split_secs.is_some_and(|secs| {
                let split_ms = i64::from(secs) * 1000;
                file.fragmenter.since_start_ms(packet.dts_ms) >= split_ms
                    && (video_key || !file.has_video)
            });
            changed || due
        });
        if ends_here {
            if let Some(file) = self.current.take() {
                file.close(&self.ctx, Some(packet.dts_ms)).await?;
            }
        }
        if self.current.is_none() {
            match OpenFile::create(&self.ctx, &self.plan, packet.config.clone()).await? {
                Some(file) => self.current = Some(file),
                None => {
                    tracing::warn!(stream = %self.plan.stream.streamname, "nothing to record: no H.264 or AAC track");
                    self.unmuxable = Some(packet.config.clone());
                    return Ok(());
                }
            }
        }
        let Some(file) = self.current.as_mut() else {
            return Ok(());
        };
        if packet.track == Track::Video && file.has_video {
            if self.need_keyframe && !packet.is_key {
                return Ok(());
            }
            self.need_keyframe = false;
        }
        file.fragmenter.push(packet);
        if file.fragmenter.ready_ms() >= self.ctx.fragment_ms {
            file.write_fragment(&self.ctx).await?;
        }
        Ok(())
    }

    async fn close_current(&mut self) -> Result<(), SinkError> {
        match self.current.take() {
            Some(file) => file.close(&self.ctx, None).await,
            None => Ok(()),
        }
    }
}

async fn run(ctx: RecorderContext, mut subscription: Subscription, plan: RecordingPlan) {
    let mut recorder = Recorder {
        ctx,
        plan,
        current: None,
        need_keyframe: true,
        unmuxable: None,
    };
    let streamname = recorder.plan.stream.streamname.clone();
    let status = recorder.plan.status.clone();
    loop {
        let step = match subscription.next().await {
            Event::Item(packet) => recorder.on_packet(&packet).await,
            Event::Gap { missed } => {
                recorder.ctx.metrics.gaps.inc();
                recorder.ctx.media.dropped("rec", missed);
                status.update(STATUS_ID, |s| s.skipped += 1);
                tracing::error!(stream = %streamname, missed, "recorder fell behind the backlog cap: media skipped; the file ends here and a new one starts at the next keyframe");
                recorder.need_keyframe = true;
                recorder.close_current().await
            }
            Event::Ended => match recorder.close_current().await {
                Ok(()) => {
                    status.idle(STATUS_ID);
                    return;
                }
                Err(e) => Err(e),
            },
        };
        if let Err(e) = step {
            stop_on_error(&mut recorder, e).await;
            // Stop reading: a lossless reader that does not read would hold the ring back.
            return;
        }
    }
}

/// Gives up the disk reserve (blocking I/O); true if that freed space.
fn release(reserve: &DiskReserve, released: &prometheus_client::metrics::counter::Counter) -> bool {
    let freed = reserve.release();
    if freed {
        released.inc();
        tracing::warn!(
            bytes = reserve.bytes(),
            "disk full: released the disk reserve to finalise recordings"
        );
    }
    freed
}

/// Reports a write error (log, metric, stream status) and keeps what was written playable.
async fn stop_on_error(recorder: &mut Recorder, error: SinkError) {
    let ctx = recorder.ctx.clone();
    let stream = &recorder.plan.stream;
    ctx.metrics.write_errors.inc();
    let disk_full = error.disk_full();
    let message = if disk_full {
        format!("disk full: {error}")
    } else {
        error.to_string()
    };
    recorder.plan.status.error(STATUS_ID, message);
    tracing::error!(stream = %stream.streamname, error = %error, disk_full, "recording stopped by an error; live delivery continues");
    if disk_full {
        let (reserve, released) = (ctx.reserve.clone(), ctx.metrics.reserve_released.clone());
        let _ = blocking(move || Ok::<_, SinkError>(release(&reserve, &released))).await;
    }
    if let Some(file) = recorder.current.take() {
        let key = file.recording.key.clone();
        if let Err(e) = file.complete(&ctx).await {
            tracing::error!(file = %key, error = %e, "could not finalise the recording; it stays fragmented until the next start");
        }
    }
}

/// Finalises the recordings a crash left open; returns how many became playable. The files
/// are finalised on the blocking pool.
pub async fn recover(
    catalog: &Catalog,
    spool: &Arc<LocalStore>,
) -> Result<usize, catalog::CatalogError> {
    let open = catalog.open_recordings().await?;
    let mut recovered = 0;
    for recording in open {
        let (spool, key) = (spool.clone(), recording.key.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let file = spool.open_blocking(&key, true).map_err(|e| e.to_string())?;
            finalize(&mut &file).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        match outcome {
            Ok(done) => {
                catalog
                    .finish_recording(recording.id, done.size_bytes, done.duration_secs)
                    .await?;
                tracing::warn!(file = %recording.key, duration_secs = done.duration_secs, cut_bytes = done.truncated_bytes, "recovered a recording left open by an unclean stop");
                recovered += 1;
            }
            Err(e) => {
                tracing::error!(file = %recording.key, error = %e, "recording left open by an unclean stop has nothing playable");
                catalog.fail_recording(recording.id, &e).await?;
            }
        }
    }
    Ok(recovered)
}
