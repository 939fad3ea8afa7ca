//! The catalog's rows as types, and what callers hand in. No SQL here: these are the words
//! of the catalog interface, whichever database is behind it.

use super::CatalogError;
use crate::processing::{Processing, TranscodeProfile};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// An organisation and its packages.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Organisation {
    pub hash: String,
    pub name: String,
    pub vod: bool,
    pub live_processing: bool,
    pub transcoding: bool,
    pub secure: bool,
    pub created_at: String,
}

/// Package switches to change (`None`: leave as is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackageChange {
    pub vod: Option<bool>,
    pub live_processing: Option<bool>,
    pub transcoding: Option<bool>,
    pub secure: Option<bool>,
}

/// What a key may do. Ordered: a higher role can do everything a lower one can.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
pub enum Role {
    #[serde(rename = "nanoReadOnly")]
    ReadOnly,
    #[serde(rename = "nanoUser")]
    User,
    #[serde(rename = "nanoAdmin")]
    Admin,
}

impl Role {
    /// The bintu role name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "nanoReadOnly",
            Role::User => "nanoUser",
            Role::Admin => "nanoAdmin",
        }
    }

    /// Parses a bintu role name.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "nanoReadOnly" => Some(Role::ReadOnly),
            "nanoUser" => Some(Role::User),
            "nanoAdmin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is calling: the organisation and role of an authenticated key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub org_hash: String,
    pub role: Role,
}

/// A key as listed (never with its secret).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: String,
    pub org_hash: String,
    pub role: Role,
    pub name: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// Stream states (SPEC "States").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    Created,
    Live,
    Ended,
    Locked,
    Deleted,
}

impl StreamState {
    /// Every state, in the order `/metrics` lists them.
    pub const ALL: [StreamState; 5] = [
        StreamState::Created,
        StreamState::Live,
        StreamState::Ended,
        StreamState::Locked,
        StreamState::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Created => "created",
            StreamState::Live => "live",
            StreamState::Ended => "ended",
            StreamState::Locked => "locked",
            StreamState::Deleted => "deleted",
        }
    }

    /// The state a name (`live`, …) names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub(super) fn parse(s: &str) -> Result<Self, CatalogError> {
        Self::from_name(s).ok_or_else(|| CatalogError::Corrupt(format!("stream state {s:?}")))
    }
}

/// Why a session ended (SPEC "Session").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    ClientClosed,
    Timeout,
    Stopped,
    Error,
    Shutdown,
    Recovered,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::ClientClosed => "client_closed",
            EndReason::Timeout => "timeout",
            EndReason::Stopped => "stopped",
            EndReason::Error => "error",
            EndReason::Shutdown => "shutdown",
            EndReason::Recovered => "recovered",
        }
    }
}

/// The RTMP application a session was published to (SPEC "Ingest").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum App {
    /// Live only.
    Live,
    /// Live and recorded (with the `vod` package).
    Rec,
}

impl App {
    pub fn as_str(self) -> &'static str {
        match self {
            App::Live => "live",
            App::Rec => "rec",
        }
    }

    /// The app an RTMP `connect` names, if it is one we serve.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "live" => Some(App::Live),
            "rec" => Some(App::Rec),
            _ => None,
        }
    }
}

/// A stream row.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub id: Uuid,
    pub org_hash: String,
    pub streamname: String,
    pub state: StreamState,
    pub tags: Vec<String>,
    pub processing: Processing,
    pub streamgroup: Uuid,
    pub index: u32,
    /// Set on a group's transcodes (index 1..).
    pub profile: Option<TranscodeProfile>,
    pub created_at: String,
    pub updated_at: String,
}

/// One ingest, publish to unpublish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub id: Uuid,
    #[serde(skip)]
    pub stream_id: Uuid,
    pub app: String,
    /// The node that ran it (`server.node_id`).
    #[serde(skip)]
    pub node_id: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
}

/// Why publishing was refused by the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishRefusal {
    Locked,
    Deleted,
    /// The stream has an open session (another publisher, maybe on another node).
    AlreadyPublishing,
}

/// Which states a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    /// Everything but soft-deleted streams (`state=all`, the default).
    #[default]
    AllButDeleted,
    Only(StreamState),
}

/// A stream list request (`GET /stream`), already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamQuery {
    pub state: StateFilter,
    /// Every one must be among the stream's tags.
    pub tags: Vec<String>,
    /// Created at or after (our fixed-width RFC 3339, so it compares as text).
    pub from: Option<String>,
    /// Created before.
    pub to: Option<String>,
    /// One entry per stream group (its passthrough) instead of one per stream.
    pub collapse_groups: bool,
    /// Exact id or streamname (case-sensitive); with groups collapsed, a member's id or
    /// streamname finds its group.
    pub q: Option<String>,
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
    /// Only the newest N matching streams.
    pub quantity: Option<u32>,
}

impl Default for StreamQuery {
    fn default() -> Self {
        StreamQuery {
            state: StateFilter::AllButDeleted,
            tags: Vec::new(),
            from: None,
            to: None,
            collapse_groups: false,
            q: None,
            page: 1,
            per_page: 25,
            quantity: None,
        }
    }
}

/// One page of a stream list, how many streams match in all, and what the entries show
/// besides their rows (read in the same catalog job).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamPage {
    pub items: Vec<Stream>,
    pub total: u64,
    /// The streams of every listed group that has more than one, ordered by index.
    pub groups: HashMap<Uuid, Vec<Stream>>,
    /// Each listed stream's latest pictures (no history), in `items` order.
    pub pictures: Vec<LatestPictures>,
}

/// A transcoded profile of a new stream group (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTranscode {
    pub profile: TranscodeProfile,
    pub tags: Vec<String>,
}

/// What a new stream group is made of (already validated).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewStreamGroup {
    pub tags: Vec<String>,
    pub processing: Processing,
    pub transcodes: Vec<NewTranscode>,
}

/// Why a change to a stream was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeRefused {
    /// Deleted streams keep what they have; they are only readable.
    Deleted,
    /// Only a locked stream can be unlocked.
    NotLocked,
}

/// The outcome of a change: `None` when the stream is not in the organisation, else the
/// changed result or why it was refused.
pub type Change<T> = Option<Result<T, ChangeRefused>>;

/// A lifecycle change made: the stream as it is now and every stream whose state changed
/// (whose publishers must be disconnected on lock or delete).
#[derive(Debug, Clone, PartialEq)]
pub struct StateChanged {
    pub stream: Stream,
    pub changed: Vec<Uuid>,
}

/// A state an operator sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Stop and lock: publishing refused until unlocked.
    Lock,
    /// `locked` → `ended` (or `created` when it never went live).
    Unlock,
    /// Soft delete: hidden from default lists, publishing refused, assets kept.
    Delete,
}

/// One recording row.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub id: Uuid,
    pub stream_id: Uuid,
    pub session_id: Uuid,
    /// Its storage key (`storage::Layout::recording`).
    pub key: String,
    pub state: String,
    pub created_at: String,
    pub size: Option<u64>,
    pub duration_secs: Option<f64>,
}

/// A finished recording as a `playout.web` asset.
#[derive(Debug, Clone, PartialEq)]
pub struct VodAsset {
    pub key: String,
    pub session_id: Uuid,
    pub created_at: String,
    pub size: u64,
    pub duration_secs: f64,
}

/// One replay session.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub session_id: Uuid,
    pub stream_id: Uuid,
    /// Storage key of its folder (`storage::Layout::hls_session`).
    pub key: String,
    pub created_at: String,
    /// RFC 3339 wall-clock time of session time 0 (the first segment's
    /// `EXT-X-PROGRAM-DATE-TIME`): clip requests count seconds from here.
    pub origin: Option<String>,
    pub ended_at: Option<String>,
    pub duration_secs: Option<f64>,
}

/// A clip as a `clip` asset.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub id: Uuid,
    pub stream_id: Uuid,
    pub session_id: Uuid,
    /// Its storage key (`storage::Layout::clip`).
    pub key: String,
    pub created_at: String,
    pub start_secs: f64,
    pub end_secs: f64,
    pub size: u64,
    pub duration_secs: f64,
}

/// The two kinds of picture a stream can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PictureKind {
    Thumbnail,
    MotionClip,
}

impl PictureKind {
    /// Both kinds, in the order [`LatestPictures`] holds them.
    pub const ALL: [PictureKind; 2] = [PictureKind::Thumbnail, PictureKind::MotionClip];

    /// The processing id, used in status, metrics and the catalog.
    pub fn id(self) -> &'static str {
        match self {
            PictureKind::Thumbnail => "thumbs",
            PictureKind::MotionClip => "motionclip",
        }
    }

    /// The file extension (and so the format).
    pub fn extension(self) -> &'static str {
        match self {
            PictureKind::Thumbnail => "jpg",
            PictureKind::MotionClip => "gif",
        }
    }

    pub(super) fn parse(id: &str) -> Result<Self, CatalogError> {
        Self::ALL
            .into_iter()
            .find(|k| k.id() == id)
            .ok_or_else(|| CatalogError::Corrupt(format!("picture kind {id:?}")))
    }
}

/// A picture written to a stream's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPicture {
    pub stream_id: Uuid,
    pub kind: PictureKind,
    /// Storage key of the history file.
    pub key: String,
    pub created_at: String,
}

/// A stream's newest picture of one kind: when, and its newest history keys (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PictureHistory {
    pub updated_at: String,
    pub history: Vec<String>,
}

/// A stream's latest thumbnail and motion clip, in [`PictureKind::ALL`] order; `None` before
/// the first.
pub type LatestPictures = [Option<PictureHistory>; 2];

/// Everything `GET /stream/{id}` shows besides the row, newest first, at most `limit` each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamAssets {
    pub vods: Vec<VodAsset>,
    pub replays: Vec<Replay>,
    pub clips: Vec<Clip>,
    /// Every stream of its group, by index.
    pub members: Vec<Stream>,
    pub pictures: LatestPictures,
}

/// A stream's sessions (newest first) with every asset each produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionHistory {
    pub sessions: Vec<Session>,
    pub vods: Vec<VodAsset>,
    pub replays: Vec<Replay>,
    pub clips: Vec<Clip>,
}
