//! The one place sinks are started: what a new session runs, from its stream's typed
//! settings and its organisation's packages (SPEC "Live processing"):
//!
//! - recorded via `/rec` with the `vod` package, or with a `rec` entry and `live_processing`
//!   (`rec.duration` splits files);
//! - a replay with a `replay` entry and `live_processing`;
//! - thumbnails and motion clips with their entries and `live_processing`.
//!
//! Settings the organisation's packages make inert are shown as `disabled` in the status.

use super::{LiveSession, SessionContext};
use crate::catalog::App;
use crate::hls::Retention;
use crate::sinks::hls::{self, HlsPlan};
use crate::sinks::pictures::{PictureKind, PictureTask};
use crate::sinks::recorder::{self, RecordingPlan};
use crate::sinks::{motionclip, thumbs};
use std::sync::Arc;
use std::time::Duration;

/// Starts the sinks `session` needs.
pub(super) async fn start(ctx: &SessionContext, session: &Arc<LiveSession>) {
    let stream = &session.stream;
    let processing = &stream.processing;
    let recorded_app = session.app == App::Rec;
    if !recorded_app && processing.is_empty() {
        return;
    }
    let org = match ctx.catalog.get_org(&stream.org_hash).await {
        Ok(org) => org,
        Err(e) => {
            tracing::error!(stream = %stream.streamname, error = %e, "cannot read the organisation's packages: this session is neither recorded nor processed");
            return;
        }
    };
    let vod = org.as_ref().is_some_and(|o| o.vod);
    let live_processing = org.as_ref().is_some_and(|o| o.live_processing);
    if recorded_app && !vod {
        tracing::info!(stream = %stream.streamname, "rec ingest without the vod package: behaves as live");
    }
    if !processing.is_empty() && !live_processing {
        tracing::info!(stream = %stream.streamname, "processing settings are inert: the organisation has no live_processing package");
        // A `/rec` ingest with `vod` records anyway.
        let recorded_anyway = |id: &str| id == "rec" && recorded_app && vod;
        for id in processing
            .entries()
            .iter()
            .map(|e| e.id())
            .filter(|id| !recorded_anyway(id))
        {
            session.status.disabled(
                id,
                "the organisation has no live_processing package: this setting does nothing".into(),
            );
        }
    }
    let rec = processing.rec().filter(|_| live_processing);
    if (recorded_app && vod) || rec.is_some() {
        let plan = RecordingPlan {
            stream: stream.clone(),
            session_id: session.session_id,
            split_secs: rec.and_then(|r| r.split_secs),
            status: session.status.clone(),
        };
        ctx.tasks
            .spawn(recorder::start(ctx.recorder.clone(), &session.hub, plan));
    }
    if !live_processing {
        return;
    }
    let picture_task = |kind| PictureTask {
        ctx: ctx.pictures.clone(),
        kind,
        stream_id: stream.id,
        streamname: stream.streamname.clone(),
        status: session.status.clone(),
    };
    let seconds = |secs: u32| Duration::from_secs(u64::from(secs));
    if let Some(interval_secs) = processing.thumbs_interval_secs() {
        ctx.tasks.spawn(thumbs::run(
            picture_task(PictureKind::Thumbnail),
            session.hub.clone(),
            seconds(interval_secs),
        ));
    }
    if let Some(motion) = processing.motionclip() {
        ctx.tasks.spawn(motionclip::run(
            picture_task(PictureKind::MotionClip),
            session.hub.clone(),
            seconds(motion.interval_secs),
            seconds(motion.duration_secs),
        ));
    }
    if let Some(replay) = processing.replay() {
        let retention = match replay.keep_secs {
            Some(secs) => Retention::LastSecs(f64::from(secs)),
            None => Retention::Everything,
        };
        let plan = HlsPlan {
            stream_id: stream.id,
            streamname: stream.streamname.clone(),
            session_id: session.session_id,
            replay: Some(retention),
            status: session.status.clone(),
            whole_session: true,
        };
        let (output, task) = hls::start(&ctx.hls, &session.hub, plan);
        *super::lock(&session.hls) = Some(output);
        ctx.tasks.spawn(task);
    }
}
