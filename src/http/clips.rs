//! Clip & share: `POST /stream/{id}/clips` cuts an MP4 of `start..end` seconds of a session
//! from its replay segments (`hls::clip`), or, for a session without replay, from its
//! recordings (`mux::cut`), never re-encoding; `/clips/...` serves it.

use super::files::{serve_key, IMMUTABLE};
use super::stream_views::clip_view;
use super::streams::{load, parse_body};
use super::views::{AssetView, ErrorBody};
use super::{ApiBody, ApiError, ApiQuery, AppState, Auth, NoParams};
use crate::catalog::{self, Clip, Replay, Role};
use crate::hls::clip::{parse_playlist, plan_clip};
use crate::mux::cut::{cut, CutError};
use crate::mux::finalize::finalize_window;
use crate::storage::layout::{self, REPLAY_PLAYLIST};
use crate::storage::{Durability, Store};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Json;
use bytes::Bytes;
use serde::Deserialize;
use uuid::Uuid;

/// `POST /stream/{id}/clips`: seconds into the session.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClipRequest {
    /// A session id of the stream (`GET /stream/{id}/sessions`).
    #[schema(format = Uuid)]
    session: String,
    #[schema(minimum = 0)]
    start: f64,
    /// After `start`.
    end: f64,
}

/// The replay holds nothing to cut from yet.
fn replay_empty() -> ApiError {
    ApiError {
        status: StatusCode::CONFLICT,
        code: "conflict",
        message: "the replay holds no media yet".into(),
        field: Some("session".into()),
    }
}

/// Cuts `start..end` from a replay's stored segments into a regular MP4's bytes and its
/// duration: the playlist says which segments, the edit list trims them.
async fn clip_from_replay(
    state: &AppState,
    replay: &Replay,
    start: f64,
    end: f64,
) -> Result<(Vec<u8>, f64), ApiError> {
    let store: &dyn Store = state.store.as_ref();
    let playlist_key = layout::file_in(&replay.key, REPLAY_PLAYLIST).ok_or_else(replay_empty)?;
    let playlist = store
        .read(&playlist_key)
        .await
        .map_err(|_| replay_empty())?;
    let playlist = String::from_utf8_lossy(&playlist);
    let segments = parse_playlist(&playlist, replay.origin.as_deref()).map_err(|e| {
        tracing::error!(replay = %replay.key, error = %e, "unreadable replay playlist");
        ApiError::internal("the replay playlist is unreadable")
    })?;
    let plan =
        plan_clip(&segments, start, end).map_err(|e| ApiError::invalid(e.field, e.message))?;
    let mut bytes = Vec::new();
    for name in std::iter::once(&plan.init).chain(&plan.segments) {
        let key = layout::file_in(&replay.key, name).ok_or_else(|| {
            tracing::error!(replay = %replay.key, file = %name, "a replay playlist lists a file that is not a plain name");
            ApiError::internal("the replay playlist is unreadable")
        })?;
        let part = store.read(&key).await.map_err(|e| {
            // Segments of a sliding window can leave between planning and reading.
            tracing::warn!(file = %key, error = %e, "clip could not read a segment");
            ApiError::invalid(
                "start",
                format!("the replay no longer holds that range: {e}"),
            )
        })?;
        bytes.extend_from_slice(&part);
    }
    let window = plan.window;
    tokio::task::spawn_blocking(move || {
        let mut file = std::io::Cursor::new(bytes);
        let done = finalize_window(&mut file, Some(window))?;
        Ok::<_, crate::mux::finalize::FinalizeError>((file.into_inner(), done.duration_secs))
    })
    .await
    .map_err(|_| ApiError::internal("the clip task stopped"))?
    .map_err(|e| {
        tracing::error!(replay = %replay.key, error = %e, "clip from replay segments failed");
        ApiError::internal("cannot cut the replay")
    })
}

/// Cuts `start..end` from a session's finished recordings (read in place, only the chosen
/// samples).
async fn clip_from_recordings(
    state: &AppState,
    keys: Vec<String>,
    start: f64,
    end: f64,
) -> Result<(Vec<u8>, f64), ApiError> {
    let store = state.store.clone();
    let names = keys.clone();
    tokio::task::spawn_blocking(move || {
        let mut files = Vec::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            files.push(
                store
                    .open_blocking(key, false)
                    .map_err(|e| CutError::Read {
                        file: index,
                        message: e.to_string(),
                    })?,
            );
        }
        cut(&mut files, start, end)
    })
    .await
    .map_err(|_| ApiError::internal("the clip task stopped"))?
    .map_err(|e| match e {
        CutError::Refused(e) => ApiError::invalid(e.field, e.message),
        CutError::Read { file, ref message } => {
            let key = names.get(file).map_or("?", String::as_str);
            tracing::error!(file = %key, error = %message, "clip from recordings failed");
            ApiError::internal("cannot read the recording")
        }
    })
}

/// `POST /stream/{id}/clips`
#[utoipa::path(post, path = "/stream/{id}/clips", tag = "streams", request_body = ClipRequest,
    params(("id" = Uuid, Path, description = "stream id")),
    responses((status = 201, body = AssetView, description = "the clip (`type: clip`)"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("apikey" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    Path(id): Path<String>,
    ApiBody(body): ApiBody,
) -> Result<(StatusCode, Json<AssetView>), ApiError> {
    auth.require(Role::User)?;
    let stream = load(&state, &auth, &id).await?;
    let request: ClipRequest = parse_body(&body)?;
    let session_id = Uuid::parse_str(&request.session)
        .map_err(|_| ApiError::invalid("session", "not a session id"))?;
    let replay = state
        .catalog
        .get_replay(session_id)
        .await?
        .filter(|r| r.stream_id == stream.id);
    let (start, end) = (request.start, request.end);
    let (bytes, duration) = match replay {
        Some(replay) => clip_from_replay(&state, &replay, start, end).await?,
        None => {
            // No replay: cut from the session's recordings, if it was recorded.
            let recordings = state.catalog.session_recordings(session_id).await?;
            if recordings.is_empty() || recordings.iter().any(|r| r.stream_id != stream.id) {
                return Err(ApiError {
                    status: StatusCode::CONFLICT,
                    code: "conflict",
                    message: "no replay or recording for this session of this stream (clips need replay processing or recording on for the session)".into(),
                    field: Some("session".into()),
                });
            }
            let keys = recordings.into_iter().map(|r| r.key).collect();
            clip_from_recordings(&state, keys, start, end).await?
        }
    };
    let clip_id = Uuid::new_v4();
    let key = layout::clip(&stream.streamname, clip_id);
    let size = bytes.len() as u64;
    // Synced before it is listed.
    let store: &dyn Store = state.store.as_ref();
    store
        .put(&key, Bytes::from(bytes), Durability::Synced)
        .await
        .map_err(|e| {
            tracing::error!(file = %key, error = %e, "cannot write a clip");
            ApiError::internal("cannot write the clip")
        })?;
    let clip = Clip {
        id: clip_id,
        stream_id: stream.id,
        session_id,
        key,
        created_at: catalog::now_rfc3339(),
        start_secs: request.start,
        end_secs: request.end,
        size,
        duration_secs: duration,
    };
    state.catalog.insert_clip(clip.clone()).await?;
    Ok((StatusCode::CREATED, Json(clip_view(&state, &stream, &clip))))
}

/// `GET`/`HEAD /clips/{streamname}/{file}`
pub async fn serve(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((streamname, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key =
        layout::clip_from_url(&streamname, &file).ok_or_else(|| ApiError::not_found("clip"))?;
    serve_key(&state, &key, &method, &headers, "video/mp4", IMMUTABLE).await
}
