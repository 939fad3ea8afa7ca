//! Live sessions: what one publish starts and stops, and the one registry of live streams.
//!
//! A [`LiveSession`] is a stream while it has a publisher: its catalog session, its hub, the
//! sinks its settings asked for (recorder, replay, thumbnails, motion clips — later the
//! transcoder, restream and health counters) and its live HLS output. [`LiveSessions`] holds
//! them by stream, with each stream's sink statuses, in one map behind one lock. Protocols
//! ask it: RTMP admission calls [`LiveSessions::begin_publish`] and ends with
//! [`Publishing::finish`]; RTMP play and HTTP look up a live stream's hub or HLS output;
//! the API stops a publisher through it. Only this module starts sinks ([`sinks`]).
//!
//! One publisher per stream: the registry refuses a second one at once, and the catalog's
//! one-open-session rule refuses it even where the registry cannot see (another process).
//!
//! Reconnect grace: a publisher that drops without unpublishing (network blip, encoder
//! restart) leaves its session, hub and sinks running for `recording.reconnect_grace_secs`;
//! a publisher of the same stream within that time continues them, with timestamps made
//! continuous by the hub ([`crate::hub::Publisher::resume`]). Past the grace, or at shutdown,
//! the session ends with the reason the connection ended with; stop or delete ends it at
//! once as `stopped`. While a session lingers the stream stays `live` and players stay
//! attached, waiting for media.
//!
//! Not here: the wire protocols (`rtmp`, `http`), what sinks do (`sinks`).

mod group;
mod sinks;

use crate::catalog::{App, Catalog, CatalogError, EndReason, PublishRefusal, Stream, StreamState};
use crate::hub::{Publisher, RingLimits, StreamHub};
use crate::sinks::hls::{self, HlsContext, HlsOutput, HlsPlan};
use crate::sinks::pictures::PictureContext;
use crate::sinks::recorder::RecorderContext;
use crate::status::{SinkStatus, StreamStatus};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

/// Why a publisher or player was not admitted. `label` names it in metrics.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("unknown application {0:?} (live or rec)")]
    UnknownApp(String),
    #[error("unknown stream key")]
    UnknownKey,
    #[error("a transcoded profile is made by the server; publish to the group's passthrough")]
    TranscodeProfile,
    #[error("the stream already has a publisher")]
    AlreadyPublishing,
    #[error("the stream is locked")]
    Locked,
    #[error("the stream is deleted")]
    Deleted,
    #[error("the stream is not live")]
    NotLive,
    #[error("the catalog cannot answer: {0}")]
    Unavailable(#[source] CatalogError),
}

impl Refusal {
    /// A short name for metrics and log fields.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::UnknownApp(_) => "unknown_app",
            Refusal::UnknownKey => "unknown_key",
            Refusal::TranscodeProfile => "transcode_profile",
            Refusal::AlreadyPublishing => "already_publishing",
            Refusal::Locked => "locked",
            Refusal::Deleted => "deleted",
            Refusal::NotLive => "not_live",
            Refusal::Unavailable(_) => "unavailable",
        }
    }
}

impl From<PublishRefusal> for Refusal {
    fn from(refusal: PublishRefusal) -> Self {
        match refusal {
            PublishRefusal::Locked => Refusal::Locked,
            PublishRefusal::Deleted => Refusal::Deleted,
            PublishRefusal::AlreadyPublishing => Refusal::AlreadyPublishing,
        }
    }
}

/// What starting and ending sessions needs.
pub struct SessionContext {
    pub catalog: Catalog,
    /// This server's name in the catalog's sessions (`server.node_id`).
    pub node_id: String,
    pub ring_limits: RingLimits,
    /// How long a dropped publisher's session waits for it (0: ends at once).
    pub reconnect_grace: Duration,
    pub recorder: RecorderContext,
    pub hls: HlsContext,
    pub pictures: PictureContext,
    pub transcode_metrics: crate::metrics::TranscodeMetrics,
    /// Sinks and grace timers run here; shutdown waits for them.
    pub tasks: TaskTracker,
    pub shutdown: CancellationToken,
}

/// A publisher that dropped, held while its session waits for a reconnect.
struct Lingering {
    publisher: Publisher,
    reason: EndReason,
    /// Which wait this is (a reconnect and a second drop start a new one).
    token: u64,
}

/// One stream while it has a publisher (connected, or within its reconnect grace).
pub struct LiveSession {
    /// The stream's row as it was when publishing started (its settings for this session).
    pub stream: Stream,
    pub session_id: Uuid,
    pub app: App,
    pub hub: Arc<StreamHub>,
    /// The stream's sink statuses.
    pub status: StreamStatus,
    /// The HLS output (the replay's from the start, or live-only on demand).
    hls: Mutex<Option<Arc<HlsOutput>>>,
    lingering: Mutex<Option<Lingering>>,
    /// A passthrough's group members and their transcoder, while it runs.
    group: Mutex<Option<group::GroupRun>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LiveSession {
    /// The HLS output if it is this session's replay and its sink still runs.
    pub fn replay_output(&self) -> Option<Arc<HlsOutput>> {
        lock(&self.hls)
            .as_ref()
            .filter(|o| o.replay && o.is_running())
            .cloned()
    }
}

/// One stream's entry: its live session and its sink statuses (kept across sessions).
#[derive(Default)]
struct Slot {
    live: Option<Arc<LiveSession>>,
    /// A publisher is being admitted (between the registry check and the catalog's answer).
    claimed: bool,
    status: StreamStatus,
}

#[derive(Default)]
struct Registry {
    by_id: HashMap<Uuid, Slot>,
    /// Streamnames never change, so this index never goes stale.
    by_name: HashMap<String, Uuid>,
}

struct Shared {
    ctx: SessionContext,
    registry: Mutex<Registry>,
    next_token: AtomicU64,
}

/// The registry of live streams. Cheap to clone.
#[derive(Clone)]
pub struct LiveSessions {
    shared: Arc<Shared>,
}

impl LiveSessions {
    pub fn new(ctx: SessionContext) -> Self {
        LiveSessions {
            shared: Arc::new(Shared {
                ctx,
                registry: Mutex::default(),
                next_token: AtomicU64::new(0),
            }),
        }
    }

    fn ctx(&self) -> &SessionContext {
        &self.shared.ctx
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.shared.registry)
    }

    /// Admits a publisher of the stream `key` names (streamname or id) to `app`: continues
    /// the stream's session if it waits for a reconnect, else opens one, starts its hub and
    /// the sinks its settings ask for.
    pub async fn begin_publish(&self, key: &str, app: App) -> Result<Publishing, Refusal> {
        let stream = self
            .ctx()
            .catalog
            .find_stream_by_key(key)
            .await
            .map_err(Refusal::Unavailable)?
            .ok_or(Refusal::UnknownKey)?;
        if stream.profile.is_some() {
            return Err(Refusal::TranscodeProfile);
        }
        if let Some((session, publisher)) = self.take_lingering(stream.id) {
            return self.resume(stream, session, publisher).await;
        }
        let status = self.claim(&stream)?;
        let begun = self
            .ctx()
            .catalog
            .begin_publish(stream.id, app, &self.ctx().node_id)
            .await;
        let catalog_session = match begun {
            Ok(Ok(session)) => session,
            Ok(Err(refusal)) => {
                self.release_claim(stream.id);
                return Err(refusal.into());
            }
            Err(e) => {
                self.release_claim(stream.id);
                return Err(Refusal::Unavailable(e));
            }
        };
        let publisher = Publisher::new(self.ctx().ring_limits);
        let session = Arc::new(LiveSession {
            session_id: catalog_session.id,
            app,
            hub: publisher.hub().clone(),
            status,
            hls: Mutex::default(),
            lingering: Mutex::default(),
            group: Mutex::default(),
            stream,
        });
        {
            let mut registry = self.registry();
            let slot = registry.by_id.entry(session.stream.id).or_default();
            slot.claimed = false;
            slot.live = Some(session.clone());
        }
        sinks::start(self.ctx(), &session).await;
        if let Some(run) = self.start_group(&session).await {
            *lock(&session.group) = Some(run);
        }
        Ok(Publishing {
            session,
            publisher: Some(publisher),
            continues_generation: None,
            sessions: self.clone(),
        })
    }

    /// A publisher reconnected within the grace: the lingering session continues, unless
    /// the stream was locked or deleted meanwhile.
    async fn resume(
        &self,
        stream: Stream,
        session: Arc<LiveSession>,
        publisher: Publisher,
    ) -> Result<Publishing, Refusal> {
        match stream.state {
            StreamState::Locked | StreamState::Deleted => {
                self.end(&session, publisher, EndReason::Stopped).await;
                Err(if stream.state == StreamState::Locked {
                    Refusal::Locked
                } else {
                    Refusal::Deleted
                })
            }
            _ => {
                let generation = publisher.config_generation();
                publisher.resume();
                tracing::info!(stream = %session.stream.streamname, session = %session.session_id, "publisher reconnected within the grace period; session continues");
                Ok(Publishing {
                    session,
                    publisher: Some(publisher),
                    continues_generation: Some(generation),
                    sessions: self.clone(),
                })
            }
        }
    }

    /// Marks a stream as being admitted; refuses if it has a publisher or one is being
    /// admitted. Returns the stream's statuses.
    fn claim(&self, stream: &Stream) -> Result<StreamStatus, Refusal> {
        let mut registry = self.registry();
        registry
            .by_name
            .insert(stream.streamname.clone(), stream.id);
        let slot = registry.by_id.entry(stream.id).or_default();
        if slot.live.is_some() || slot.claimed {
            return Err(Refusal::AlreadyPublishing);
        }
        slot.claimed = true;
        Ok(slot.status.clone())
    }

    fn release_claim(&self, stream_id: Uuid) {
        if let Some(slot) = self.registry().by_id.get_mut(&stream_id) {
            slot.claimed = false;
        }
    }

    /// The live session of a stream, if it has one.
    pub fn get(&self, stream_id: Uuid) -> Option<Arc<LiveSession>> {
        self.registry()
            .by_id
            .get(&stream_id)
            .and_then(|slot| slot.live.clone())
    }

    /// The live session of the stream a key names (streamname or id), if it has one.
    pub fn find(&self, key: &str) -> Option<Arc<LiveSession>> {
        let registry = self.registry();
        let id = match registry.by_name.get(key) {
            Some(id) => *id,
            None => Uuid::parse_str(key).ok()?,
        };
        registry.by_id.get(&id).and_then(|slot| slot.live.clone())
    }

    /// The hub an RTMP player of `key` reads, or why not.
    pub async fn player_hub(&self, key: &str) -> Result<(Stream, Arc<StreamHub>), Refusal> {
        if let Some(session) = self.find(key) {
            return Ok((session.stream.clone(), session.hub.clone()));
        }
        match self.ctx().catalog.find_stream_by_key(key).await {
            Ok(Some(_)) => Err(Refusal::NotLive),
            Ok(None) => Err(Refusal::UnknownKey),
            Err(e) => Err(Refusal::Unavailable(e)),
        }
    }

    /// The live HLS output of a live stream (exact streamname), starting a live-only one
    /// when the stream has none running; `None` when the stream is not live.
    pub fn live_hls(&self, streamname: &str) -> Option<Arc<HlsOutput>> {
        let session = self.find(streamname)?;
        if session.stream.streamname != streamname {
            return None;
        }
        Some(self.hls_output(&session, false))
    }

    /// The session's running HLS output, started now if it has none (`whole_session`: it
    /// runs until the session ends instead of stopping when nobody asks for it).
    fn hls_output(&self, session: &Arc<LiveSession>, whole_session: bool) -> Arc<HlsOutput> {
        let mut hls = lock(&session.hls);
        if let Some(output) = hls.as_ref().filter(|o| o.is_running()) {
            return output.clone();
        }
        let plan = HlsPlan {
            stream_id: session.stream.id,
            streamname: session.stream.streamname.clone(),
            session_id: session.session_id,
            replay: None,
            status: session.status.clone(),
            whole_session,
        };
        let (output, task) = hls::start(&self.ctx().hls, &session.hub, plan);
        self.ctx().tasks.spawn(task);
        *hls = Some(output.clone());
        output
    }

    /// The HLS outputs of a live stream group's renditions, highest first (the passthrough,
    /// then the transcodes by bit rate), for its multivariant playlist; `None` unless
    /// `streamname` is a live passthrough whose group transcodes.
    pub fn group_hls(&self, streamname: &str) -> Option<Vec<(Stream, Arc<HlsOutput>)>> {
        let session = self.find(streamname)?;
        if session.stream.streamname != streamname {
            return None;
        }
        let members: Vec<Arc<LiveSession>> = lock(&session.group).as_ref()?.members.clone();
        let mut renditions = vec![(session.stream.clone(), self.hls_output(&session, true))];
        let mut members: Vec<_> = members
            .iter()
            .map(|m| (m.stream.clone(), self.hls_output(m, true)))
            .collect();
        members.sort_by_key(|(s, _)| std::cmp::Reverse(s.profile.map_or(0, |p| p.kbps)));
        renditions.extend(members);
        Some(renditions)
    }

    /// Asks a stream's publisher (connected or lingering) to go: stop and delete.
    pub fn stop(&self, stream_id: Uuid) {
        if let Some(session) = self.get(stream_id) {
            session.hub.stop_publishing();
        }
    }

    /// Each sink's status for a stream (empty when no session ran since the server started).
    pub fn status_of(&self, stream_id: Uuid) -> BTreeMap<&'static str, SinkStatus> {
        self.registry()
            .by_id
            .get(&stream_id)
            .map(|slot| slot.status.snapshot())
            .unwrap_or_default()
    }

    /// Streams with a publisher (connected or waiting for a reconnect).
    pub fn live_count(&self) -> usize {
        self.registry()
            .by_id
            .values()
            .filter(|slot| slot.live.is_some())
            .count()
    }

    /// Takes a stream's dropped publisher back for a reconnecting one.
    fn take_lingering(&self, stream_id: Uuid) -> Option<(Arc<LiveSession>, Publisher)> {
        let session = self.get(stream_id)?;
        let lingering = lock(&session.lingering).take()?;
        Some((session, lingering.publisher))
    }

    /// Whether a session ending this way waits for a reconnect.
    fn waits_for_reconnect(&self, reason: EndReason, unpublished: bool) -> bool {
        !self.ctx().reconnect_grace.is_zero()
            && !unpublished
            && matches!(reason, EndReason::ClientClosed | EndReason::Timeout)
    }

    /// Ends a session: the hub ends for its readers (the recorder finalises), the catalog
    /// closes it, and the stream leaves the registry.
    async fn end(&self, session: &Arc<LiveSession>, publisher: Publisher, reason: EndReason) {
        drop(publisher);
        if let Err(e) = self
            .ctx()
            .catalog
            .end_publish(session.session_id, reason)
            .await
        {
            tracing::error!(stream = %session.stream.streamname, error = %e, "could not close the session in the catalog");
        }
        self.forget(session);
        let group = lock(&session.group).take();
        if let Some(run) = group {
            self.end_group(run, reason).await;
        }
    }

    /// Takes an ended session out of the registry.
    fn forget(&self, session: &Arc<LiveSession>) {
        let mut registry = self.registry();
        if let Some(slot) = registry.by_id.get_mut(&session.stream.id) {
            if slot.live.as_ref().is_some_and(|s| Arc::ptr_eq(s, session)) {
                slot.live = None;
            }
        }
    }

    /// Holds a dropped publisher's session open for the grace period.
    fn linger(&self, session: Arc<LiveSession>, publisher: Publisher, reason: EndReason) {
        let token = self.shared.next_token.fetch_add(1, Ordering::Relaxed);
        *lock(&session.lingering) = Some(Lingering {
            publisher,
            reason,
            token,
        });
        let grace = self.ctx().reconnect_grace;
        tracing::info!(stream = %session.stream.streamname, session = %session.session_id, grace_secs = grace.as_secs(), "publisher dropped without unpublishing; session held for a reconnect");
        let sessions = self.clone();
        self.ctx().tasks.spawn(async move {
            let stopped = tokio::select! {
                _ = tokio::time::sleep(grace) => false,
                _ = sessions.ctx().shutdown.cancelled() => false,
                _ = session.hub.stop_requested() => true,
            };
            let mine = {
                let mut lingering = lock(&session.lingering);
                match lingering.as_ref() {
                    Some(l) if l.token == token => lingering.take(),
                    _ => None,
                }
            };
            if let Some(lingering) = mine {
                let reason = if stopped {
                    EndReason::Stopped
                } else {
                    lingering.reason
                };
                tracing::info!(stream = %session.stream.streamname, session = %session.session_id, reason = reason.as_str(), "session waiting for a reconnect ended");
                sessions.end(&session, lingering.publisher, reason).await;
            }
        });
    }
}

/// An admitted publisher: the publish loop pushes through it and ends with
/// [`Publishing::finish`].
pub struct Publishing {
    session: Arc<LiveSession>,
    /// Taken by `finish`; if the loop never finishes (a bug), dropping ends the session.
    publisher: Option<Publisher>,
    continues_generation: Option<u32>,
    sessions: LiveSessions,
}

impl Publishing {
    /// The hub's writer.
    pub fn publisher(&self) -> &Publisher {
        // invariant: `publisher` is only taken by `finish` (which consumes self) and by Drop.
        self.publisher
            .as_ref()
            .expect("a publish holds its publisher until `finish` consumes it")
    }

    pub fn session(&self) -> &Arc<LiveSession> {
        &self.session
    }

    /// Set when this publisher continues a lingering session: the codec-configuration
    /// generation to continue counting from.
    pub fn continues_generation(&self) -> Option<u32> {
        self.continues_generation
    }

    /// Ends the publish: the session ends now, or waits for a reconnect when the client
    /// vanished without unpublishing (see the module docs).
    pub async fn finish(mut self, reason: EndReason, unpublished: bool) {
        let Some(publisher) = self.publisher.take() else {
            return;
        };
        let (sessions, session) = (self.sessions.clone(), self.session.clone());
        if sessions.waits_for_reconnect(reason, unpublished) {
            sessions.linger(session, publisher, reason);
        } else {
            sessions.end(&session, publisher, reason).await;
        }
    }
}

impl Drop for Publishing {
    fn drop(&mut self) {
        if let Some(publisher) = self.publisher.take() {
            tracing::error!(stream = %self.session.stream.streamname, "a publish ended without closing its session; closing it as error");
            let (sessions, session) = (self.sessions.clone(), self.session.clone());
            self.sessions.ctx().tasks.spawn(async move {
                sessions.end(&session, publisher, EndReason::Error).await;
            });
        }
    }
}
