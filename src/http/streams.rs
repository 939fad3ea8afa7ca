//! Stream endpoints and the bintu JSON shape of a stream.

use super::{ApiError, AppState, Auth};
use crate::catalog::{self, Clip, NewStream, Replay, Role, Stream, VodAsset};
use crate::processing;
use crate::sinks::pictures::{picture_paths, PictureKind};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use uuid::Uuid;

/// Parses a JSON body, turning serde's message into a field-naming 400.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|e| ApiError::invalid("", e.to_string()));
    }
    serde_json::from_slice(body).map_err(|e| {
        let message = e.to_string();
        // serde names unknown fields in backticks: "unknown field `x`, expected ...".
        let field = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("unknown field"))
            .unwrap_or("")
            .to_string();
        ApiError::invalid(field, format!("invalid JSON body: {message}"))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateStreamBody {
    tags: Option<Vec<String>>,
    processing: Option<Value>,
    transcodes: Option<Value>,
}

/// Validates tags: at most 50, each 1..=64 characters.
pub fn validate_tags(tags: &[String]) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(ApiError::invalid("tags", "at most 50 tags"));
    }
    for (i, tag) in tags.iter().enumerate() {
        let len = tag.chars().count();
        if !(1..=64).contains(&len) {
            return Err(ApiError::invalid(
                format!("tags[{i}]"),
                "each tag must be 1..=64 characters",
            ));
        }
    }
    Ok(())
}

/// A finished recording in the SPEC asset shape (`playout.web`).
fn vod_json(state: &AppState, stream: &Stream, asset: &VodAsset) -> Value {
    json!({
        "url": format!("{}/{}", state.urls.http, asset.path),
        "type": "vod",
        "streamId": stream.id,
        "streamname": stream.streamname,
        "session": asset.session_id,
        "created_at": asset.created_at,
        "size": asset.size,
        "duration": asset.duration_secs,
    })
}

/// A replay session in the SPEC asset shape (`playout.replay`, type `playout`).
fn replay_json(state: &AppState, stream: &Stream, replay: &Replay) -> Value {
    json!({
        "url": format!("{}/replay/{}/{}/index.m3u8", state.urls.http, stream.streamname, replay.session_id),
        "type": "playout",
        "streamId": stream.id,
        "streamname": stream.streamname,
        "session": replay.session_id,
        "created_at": replay.created_at,
        "duration": replay.duration_secs,
    })
}

/// A clip in the SPEC asset shape (type `clip`).
pub fn clip_json(state: &AppState, stream: &Stream, clip: &Clip) -> Value {
    json!({
        "url": format!("{}/{}", state.urls.http, clip.path),
        "type": "clip",
        "streamId": stream.id,
        "streamname": stream.streamname,
        "session": clip.session_id,
        "created_at": clip.created_at,
        "size": clip.size,
        "duration": clip.duration_secs,
        "start": clip.start_secs,
        "end": clip.end_secs,
    })
}

/// The latest picture of one kind with its history (newest first, at most `limit`), in the
/// SPEC shape (`playout.thumbnails`, `playout.motionclip`); empty before the first one.
async fn pictures_json(
    state: &AppState,
    stream: &Stream,
    kind: PictureKind,
    limit: usize,
) -> Vec<Value> {
    let (folder, stable) = picture_paths(&state.data_dir, &stream.streamname, kind);
    let suffix = format!(".{}", kind.extension());
    let listed = tokio::task::spawn_blocking(move || {
        let modified = std::fs::metadata(&stable).and_then(|m| m.modified()).ok()?;
        let mut history: Vec<String> = std::fs::read_dir(&folder)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|name| name.ends_with(&suffix))
                    .collect()
            })
            .unwrap_or_default();
        history.sort_unstable_by(|a, b| b.cmp(a));
        history.truncate(limit);
        Some((modified, history))
    })
    .await
    .ok()
    .flatten();
    let Some((modified, history)) = listed else {
        return Vec::new();
    };
    let base = format!("{}/thumbnails/{}", state.urls.http, stream.streamname);
    let kind_type = match kind {
        PictureKind::Thumbnail => "image",
        PictureKind::MotionClip => "gif",
    };
    vec![json!({
        "url": format!("{base}.{}", kind.extension()),
        "type": kind_type,
        "streamId": stream.id,
        "streamname": stream.streamname,
        "updated_at": catalog::format_rfc3339(modified.into()),
        "history": history.iter().map(|name| format!("{base}/{name}")).collect::<Vec<_>>(),
    })]
}

/// A stream's listed assets, newest first.
#[derive(Default)]
pub struct Assets {
    pub web: Vec<Value>,
    pub replay: Vec<Value>,
    pub clips: Vec<Value>,
    pub thumbnails: Vec<Value>,
    pub motionclip: Vec<Value>,
}

/// The stream with its newest `asset_limit` assets of each kind.
async fn stream_with_assets(
    state: &AppState,
    stream: &Stream,
    asset_limit: usize,
) -> Result<Value, ApiError> {
    let id = stream.id;
    let (vods, replays, clips) = state
        .catalog
        .call(move |conn| {
            Ok((
                catalog::list_vod_assets(conn, id, asset_limit)?,
                catalog::list_replays(conn, id, asset_limit)?,
                catalog::list_clips(conn, id, asset_limit)?,
            ))
        })
        .await?;
    let assets = Assets {
        web: vods.iter().map(|a| vod_json(state, stream, a)).collect(),
        replay: replays
            .iter()
            .map(|r| replay_json(state, stream, r))
            .collect(),
        clips: clips.iter().map(|c| clip_json(state, stream, c)).collect(),
        thumbnails: pictures_json(state, stream, PictureKind::Thumbnail, asset_limit).await,
        motionclip: pictures_json(state, stream, PictureKind::MotionClip, asset_limit).await,
    };
    Ok(stream_json(state, stream, assets))
}

/// The stream in the bintu shape of `GET /stream/{id}`.
pub fn stream_json(state: &AppState, stream: &Stream, assets: Assets) -> Value {
    let ingest_url = format!("{}/live", state.urls.rtmp);
    json!({
        "id": stream.id,
        "streamgroup": stream.streamgroup,
        "state": stream.state.as_str(),
        "tags": stream.tags,
        "created_at": stream.created_at,
        "updated_at": stream.updated_at,
        "ingest": {"rtmp": {"url": ingest_url, "streamname": stream.streamname}},
        "playout": {
            "rtmp": [{
                "id": stream.id,
                "streamname": stream.streamname,
                "url": ingest_url,
                "index": stream.index,
                "tags": stream.tags,
                "processing": stream.processing,
                "status": state.status.of(stream.id),
            }],
            "hls": [{
                "url": format!("{}/live/{}/index.m3u8", state.urls.http, stream.streamname),
                "type": "live",
                "streamId": stream.id,
            }],
            "web": assets.web,
            "thumbnails": assets.thumbnails,
            "replay": assets.replay,
            "motionclip": assets.motionclip,
            "clips": assets.clips,
        },
    })
}

/// `POST /stream`
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(Role::User)?;
    let body: CreateStreamBody = parse_body(&body)?;
    if body.transcodes.as_ref().is_some_and(|t| !t.is_null()) {
        return Err(ApiError::invalid(
            "transcodes",
            "stream groups with transcodes are not supported by this server yet",
        ));
    }
    let tags = body.tags.unwrap_or_default();
    validate_tags(&tags)?;
    let processing = match &body.processing {
        None | Some(Value::Null) => json!([]),
        Some(p) => processing::validate(p, "processing")
            .map_err(|e| ApiError::invalid(e.field, e.message))?,
    };
    let org = auth.0.org_hash.clone();
    let new = NewStream { tags, processing };
    let stream = state
        .catalog
        .call(move |conn| catalog::create_stream(conn, &org, &new))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(stream_json(&state, &stream, Assets::default())),
    ))
}

/// The stream `id` of the caller's organisation, or 404.
pub async fn load(state: &AppState, auth: &Auth, id: &str) -> Result<Stream, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found("stream"))?;
    let org = auth.0.org_hash.clone();
    state
        .catalog
        .call(move |conn| catalog::get_stream(conn, &org, id))
        .await?
        .ok_or_else(|| ApiError::not_found("stream"))
}

/// `GET /stream/{id}`
pub async fn get_one(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::ReadOnly)?;
    let asset_limit = match query.get("asset_limit") {
        None => 10,
        Some(limit) => match limit.parse::<usize>() {
            Ok(n @ 1..=1000) => n,
            _ => {
                return Err(ApiError::invalid(
                    "asset_limit",
                    "must be an integer 1..=1000",
                ))
            }
        },
    };
    let stream = load(&state, &auth, &id).await?;
    Ok(Json(
        stream_with_assets(&state, &stream, asset_limit).await?,
    ))
}

/// `GET /stream/{id}/sessions`
pub async fn sessions(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(Role::ReadOnly)?;
    let stream = load(&state, &auth, &id).await?;
    let stream_id = stream.id;
    let (sessions, vods, replays, clips) = state
        .catalog
        .call(move |conn| {
            Ok((
                catalog::list_sessions(conn, stream_id)?,
                catalog::list_vod_assets(conn, stream_id, usize::MAX)?,
                catalog::list_replays(conn, stream_id, usize::MAX)?,
                catalog::list_clips(conn, stream_id, usize::MAX)?,
            ))
        })
        .await?;
    let items: Vec<Value> = sessions
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "started_at": s.started_at,
                "ended_at": s.ended_at,
                "app": s.app,
                "end_reason": s.end_reason,
                "assets": vods
                    .iter()
                    .filter(|a| a.session_id == s.id)
                    .map(|a| vod_json(&state, &stream, a))
                    .chain(
                        replays
                            .iter()
                            .filter(|r| r.session_id == s.id)
                            .map(|r| replay_json(&state, &stream, r)),
                    )
                    .chain(
                        clips
                            .iter()
                            .filter(|c| c.session_id == s.id)
                            .map(|c| clip_json(&state, &stream, c)),
                    )
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
