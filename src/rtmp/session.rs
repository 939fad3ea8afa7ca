//! Publishing sessions beyond one connection: which sinks a new session starts, and the
//! reconnect grace — a publisher that drops without unpublishing (network blip, encoder
//! restart) leaves its session, hub and recording open for `recording.reconnect_grace_secs`;
//! a publisher of the same stream within that time continues them, with timestamps made
//! continuous by the hub ([`Publisher::resume`]). Past the grace, or at shutdown, the session
//! ends with the reason the connection ended with. An explicit unpublish ends it at once.
//!
//! While a session lingers the stream stays `live` (its session is open) and players stay
//! attached, waiting for media.

use super::listener::RtmpContext;
use crate::catalog::{self, EndReason, Stream};
use crate::hls::Retention;
use crate::hub::Publisher;
use crate::processing::{CLIP_SECS, INTERVAL_SECS};
use crate::sinks::hls::{self, HlsPlan};
use crate::sinks::pictures::{PictureKind, PictureTask};
use crate::sinks::recorder::{self, RecordingPlan};
use crate::sinks::{motionclip, thumbs};
use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use uuid::Uuid;

/// A session whose publisher dropped, waiting for a reconnect.
pub struct Lingering {
    pub publisher: Publisher,
    pub session_id: Uuid,
    reason: EndReason,
    token: u64,
}

/// Sessions in their reconnect grace, by stream id.
#[derive(Default)]
pub struct LingeringSessions {
    map: Mutex<HashMap<Uuid, Lingering>>,
    next_token: AtomicU64,
}

impl LingeringSessions {
    fn map(&self) -> MutexGuard<'_, HashMap<Uuid, Lingering>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a stream's lingering session over (a publisher reconnected).
    pub fn take(&self, stream_id: Uuid) -> Option<Lingering> {
        self.map().remove(&stream_id)
    }

    fn take_if(&self, stream_id: Uuid, token: u64) -> Option<Lingering> {
        let mut map = self.map();
        if map.get(&stream_id).is_some_and(|l| l.token == token) {
            map.remove(&stream_id)
        } else {
            None
        }
    }
}

/// Whether a session ending this way waits for a reconnect.
pub(super) fn waits_for_reconnect(ctx: &RtmpContext, reason: EndReason, unpublished: bool) -> bool {
    ctx.recording.reconnect_grace_secs > 0
        && !unpublished
        && matches!(reason, EndReason::ClientClosed | EndReason::Timeout)
}

/// Ends a session: the hub ends for its readers (the recorder finalises), the catalog closes it.
pub(super) async fn end(
    ctx: &RtmpContext,
    stream: &Stream,
    session_id: Uuid,
    publisher: Publisher,
    reason: EndReason,
) {
    drop(publisher);
    let ended = ctx
        .catalog
        .call(move |conn| catalog::end_publish(conn, session_id, reason))
        .await;
    if let Err(e) = ended {
        tracing::error!(stream = %stream.streamname, error = %e, "could not close the session in the catalog");
    }
}

/// Holds a dropped publisher's session open for the grace period.
pub(super) fn linger(
    ctx: &Arc<RtmpContext>,
    stream: Stream,
    session_id: Uuid,
    publisher: Publisher,
    reason: EndReason,
) {
    let token = ctx.lingering.next_token.fetch_add(1, Ordering::Relaxed);
    let publisher_hub = publisher.hub().clone();
    let grace = Duration::from_secs(ctx.recording.reconnect_grace_secs);
    ctx.lingering.map().insert(
        stream.id,
        Lingering {
            publisher,
            session_id,
            reason,
            token,
        },
    );
    tracing::info!(stream = %stream.streamname, session = %session_id, grace_secs = grace.as_secs(), "publisher dropped without unpublishing; session held for a reconnect");
    let ctx = ctx.clone();
    ctx.tasks.clone().spawn(async move {
        let hub = publisher_hub.clone();
        let stopped = tokio::select! {
            _ = tokio::time::sleep(grace) => false,
            _ = ctx.shutdown.cancelled() => false,
            _ = hub.stop_requested() => true,
        };
        if let Some(lingering) = ctx.lingering.take_if(stream.id, token) {
            let reason = if stopped { EndReason::Stopped } else { lingering.reason };
            tracing::info!(stream = %stream.streamname, session = %session_id, reason = reason.as_str(), "session waiting for a reconnect ended");
            end(&ctx, &stream, session_id, lingering.publisher, reason).await;
        }
    });
}

/// Starts the sinks a new session needs (SPEC "Live processing": recorded via `/rec` with the
/// `vod` package, or with a `rec` entry and `live_processing`; a replay with a `replay` entry
/// and `live_processing`).
pub(super) async fn start_sinks(
    ctx: &RtmpContext,
    stream: &Stream,
    app: &str,
    session_id: Uuid,
    publisher: &Publisher,
) {
    let entry = |id: &str| {
        stream
            .processing
            .as_array()
            .and_then(|entries| entries.iter().find(|e| e["id"] == id))
            .cloned()
    };
    let (rec_entry, replay_entry) = (entry("rec"), entry("replay"));
    let (thumbs_entry, motion_entry) = (entry("thumbs"), entry("motionclip"));
    let processing = rec_entry.is_some()
        || replay_entry.is_some()
        || thumbs_entry.is_some()
        || motion_entry.is_some();
    if app != "rec" && !processing {
        return;
    }
    let org_hash = stream.org_hash.clone();
    let org = match ctx
        .catalog
        .call(move |conn| catalog::get_org(conn, &org_hash))
        .await
    {
        Ok(org) => org,
        Err(e) => {
            tracing::error!(stream = %stream.streamname, error = %e, "cannot read the organisation's packages: this session is neither recorded nor replayable");
            return;
        }
    };
    let vod = org.as_ref().is_some_and(|o| o.vod);
    let live_processing = org.as_ref().is_some_and(|o| o.live_processing);
    if app == "rec" && !vod {
        tracing::info!(stream = %stream.streamname, "rec ingest without the vod package: behaves as live");
    }
    if processing && !live_processing {
        tracing::info!(stream = %stream.streamname, "processing settings are inert: the organisation has no live_processing package");
        let configured = [
            ("rec", &rec_entry),
            ("replay", &replay_entry),
            ("thumbs", &thumbs_entry),
            ("motionclip", &motion_entry),
        ];
        // A `/rec` ingest with `vod` records anyway.
        let recorded_anyway = |id: &str| id == "rec" && app == "rec" && vod;
        for (id, _) in configured
            .iter()
            .filter(|(id, entry)| entry.is_some() && !recorded_anyway(id))
        {
            ctx.recorder.status.disabled(
                stream.id,
                id,
                "the organisation has no live_processing package: this setting does nothing".into(),
            );
        }
    }
    if (app == "rec" && vod) || (rec_entry.is_some() && live_processing) {
        let plan = RecordingPlan {
            stream: stream.clone(),
            session_id,
            split_secs: rec_entry.as_ref().and_then(|e| e["duration"].as_u64()),
        };
        ctx.tasks
            .spawn(recorder::start(ctx.recorder.clone(), publisher.hub(), plan));
    }
    let picture_task = |kind| PictureTask {
        ctx: ctx.pictures.clone(),
        kind,
        stream_id: stream.id,
        streamname: stream.streamname.clone(),
    };
    // Validated when stored (`processing`); clamped again so an old row cannot surprise us.
    let seconds = |entry: &serde_json::Value, field: &str, range: RangeInclusive<u64>| {
        let value = entry[field].as_u64().unwrap_or(*range.start());
        Duration::from_secs(value.clamp(*range.start(), *range.end()))
    };
    if let (Some(thumbs), true) = (&thumbs_entry, live_processing) {
        ctx.tasks.spawn(thumbs::run(
            picture_task(PictureKind::Thumbnail),
            publisher.hub().clone(),
            seconds(thumbs, "interval", INTERVAL_SECS),
        ));
    }
    if let (Some(motion), true) = (&motion_entry, live_processing) {
        ctx.tasks.spawn(motionclip::run(
            picture_task(PictureKind::MotionClip),
            publisher.hub().clone(),
            seconds(motion, "interval", INTERVAL_SECS),
            seconds(motion, "duration", CLIP_SECS),
        ));
    }
    if let (Some(replay), true) = (replay_entry, live_processing) {
        let retention = match replay["duration"].as_u64() {
            Some(secs) => Retention::LastSecs(secs as f64),
            None => Retention::Everything,
        };
        let plan = HlsPlan {
            stream_id: stream.id,
            streamname: stream.streamname.clone(),
            session_id,
            replay: Some(retention),
        };
        if let (_, Some(task)) = hls::start(&ctx.hls, publisher.hub(), plan) {
            ctx.tasks.spawn(task);
        }
    }
}
