//! The API's JSON shapes as types (SPEC "HTTP API"): handlers build these, serde writes them,
//! and the OpenAPI document (`openapi`) is generated from the same types, so the document
//! cannot drift from what the server answers.

use crate::catalog::{Role, StreamState};
use crate::processing::{Processing, ProcessingEntry, TranscodeProfile};
use crate::status::SinkStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// A stream in the bintu shape (`GET /stream/{id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamView {
    pub id: Uuid,
    /// The passthrough stream's id (a single stream's own id).
    pub streamgroup: Uuid,
    pub state: StreamState,
    pub tags: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub ingest: IngestView,
    pub playout: PlayoutView,
    /// Set on answers to changes that take effect later (processing: at the next ingest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// Where a broadcaster pushes.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestView {
    pub rtmp: RtmpIngest,
}

/// OBS: Server = `url`, Stream Key = `streamname`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RtmpIngest {
    pub url: String,
    pub streamname: String,
}

/// Everything a stream can be watched or downloaded as.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct PlayoutView {
    /// Every stream of the group, by index (a single stream: itself).
    pub rtmp: Vec<RtmpPlayout>,
    pub hls: Vec<HlsPlayout>,
    /// Recordings (`type: vod`), newest first.
    pub web: Vec<AssetView>,
    pub thumbnails: Vec<PictureView>,
    /// Replay sessions (`type: playout`), newest first.
    pub replay: Vec<AssetView>,
    pub motionclip: Vec<PictureView>,
    /// Clips cut with clip & share (`type: clip`), newest first.
    pub clips: Vec<AssetView>,
}

/// One stream of a group as RTMP playout, with its processing settings and their status.
#[derive(Debug, Serialize, ToSchema)]
pub struct RtmpPlayout {
    pub id: Uuid,
    pub streamname: String,
    pub url: String,
    /// 0 = passthrough, 1..n = transcodes.
    pub index: u32,
    /// `vtrans2-WxHxKBPSxFPS` for transcodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub profile: Option<TranscodeProfile>,
    pub tags: Vec<String>,
    #[schema(value_type = Vec<ProcessingEntry>)]
    pub processing: Processing,
    /// What each running sink is doing, by processing id (and `transcoding`).
    pub status: BTreeMap<String, SinkStatus>,
}

/// Live HLS.
#[derive(Debug, Serialize, ToSchema)]
pub struct HlsPlayout {
    pub url: String,
    #[serde(rename = "type")]
    pub kind: AssetType,
    #[serde(rename = "streamId")]
    pub stream_id: Uuid,
}

/// What an asset is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AssetType {
    Live,
    /// A stream group's multivariant playlist.
    Abr,
    Vod,
    Playout,
    Image,
    Gif,
    Clip,
}

/// A file made by processing (SPEC "Asset").
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetView {
    pub url: String,
    #[serde(rename = "type")]
    pub kind: AssetType,
    #[serde(rename = "streamId")]
    pub stream_id: Uuid,
    pub streamname: String,
    pub session: Uuid,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Clips: seconds into the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
}

/// The latest thumbnail or motion clip and its history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PictureView {
    pub url: String,
    #[serde(rename = "type")]
    pub kind: AssetType,
    #[serde(rename = "streamId")]
    pub stream_id: Uuid,
    pub streamname: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub history: Vec<String>,
}

/// A page of streams.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamList {
    /// Newest first; list entries carry the latest pictures but no asset history (read one
    /// stream for that).
    pub items: Vec<StreamView>,
    /// Streams matching the filters in all pages.
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

/// A stream group, every profile by index.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    pub streamgroup: Uuid,
    pub items: Vec<StreamView>,
}

/// One ingest, publish to unpublish, with what it produced.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime, nullable)]
    pub ended_at: Option<String>,
    /// `live` or `rec`.
    pub app: String,
    /// `client_closed`, `timeout`, `stopped`, `error`, `shutdown`, `recovered`; null while live.
    #[schema(nullable)]
    pub end_reason: Option<String>,
    pub assets: Vec<AssetView>,
}

/// A stream's sessions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionView>,
}

/// Packages an organisation has.
#[derive(Debug, Serialize, ToSchema)]
pub struct Packages {
    /// Off: `/rec` ingest behaves as `live`.
    pub vod: bool,
    /// Off: processing settings are kept but do nothing (the status says so).
    pub live_processing: bool,
    pub transcoding: bool,
    pub secure: bool,
}

/// The caller's organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationView {
    pub hash: String,
    pub name: String,
    pub packages: Packages,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// An API key as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub role: Role,
    #[schema(nullable)]
    pub name: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime, nullable)]
    pub revoked_at: Option<String>,
}

/// A new key: `key` is its secret, shown only in this answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewApiKeyView {
    pub id: String,
    pub role: Role,
    #[schema(nullable)]
    pub name: Option<String>,
    pub key: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The organisation's keys, oldest first, revoked ones included.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, and where in the input.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `invalid_input`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `payload_too_large`, `internal`, …
    pub code: String,
    pub message: String,
    /// The JSON path or query parameter at fault (`processing[1].interval`, `per_page`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// A tag: 1..=64 characters (only a schema: tags travel as strings).
#[derive(Debug)]
pub struct Tag;

impl utoipa::PartialSchema for Tag {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(64))
            .description(Some("1..=64 characters"))
            .into()
    }
}

impl ToSchema for Tag {}

/// `POST /stream`: every field optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStreamBody {
    /// At most 50.
    #[schema(value_type = Option<Vec<Tag>>, max_items = 50)]
    pub tags: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<ProcessingEntry>>)]
    pub processing: Option<Value>,
    /// Makes a stream group: the passthrough plus one stream per profile (at most 8).
    #[schema(max_items = 8)]
    pub transcodes: Option<Vec<TranscodeBody>>,
}

/// One transcoded profile of a new stream group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TranscodeBody {
    /// `vtrans2-<width>x<height>x<kbit/s>x<fps>`, e.g. `vtrans2-852x480x800x25`.
    #[schema(
        pattern = "^vtrans2-[1-9][0-9]{1,3}x[1-9][0-9]{1,3}x[1-9][0-9]{1,4}x([1-9]|[1-9][0-9]|1[01][0-9]|120)$"
    )]
    pub profile: String,
    /// At most 50.
    #[schema(value_type = Option<Vec<Tag>>, max_items = 50)]
    pub tags: Option<Vec<String>>,
}

/// `PUT /stream/{id}/tag`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagsBody {
    /// Replaces the tags: at most 50.
    #[schema(value_type = Vec<Tag>, max_items = 50)]
    pub tags: Vec<String>,
}

/// `PUT /stream/{id}/processing`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessingBody {
    #[schema(value_type = Vec<ProcessingEntry>)]
    pub processing: Value,
    /// Apply to every stream of the group.
    pub sync: Option<bool>,
}

/// `PUT /organisation/packages`: the packages to switch (others stay).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackagesBody {
    pub vod: Option<bool>,
    pub live_processing: Option<bool>,
    pub transcoding: Option<bool>,
    pub secure: Option<bool>,
}

/// `POST /apikey`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    pub role: Role,
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
}
