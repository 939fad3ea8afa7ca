//! Clip & share: `POST /stream/{id}/clips` cuts an MP4 of `start..end` seconds of a session
//! from its replay segments (`hls::clip`), or, for a session without replay, from its
//! recordings (`mux::cut`), never re-encoding; `/clips/...` serves it.

use super::files::{safe_relative, serve_file};
use super::stream_views::clip_view;
use super::streams::{load, parse_body};
use super::views::{AssetView, ErrorBody};
use super::{ApiBody, ApiError, ApiQuery, AppState, Auth, NoParams};
use crate::catalog::{self, Clip, Role};
use crate::hls::clip::{parse_playlist, plan_clip, ClipPlan};
use crate::mux::cut::{cut, CutError};
use crate::mux::finalize::finalize_window;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Json;
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

/// Reads the planned files, finalises them into `path` (temp file + rename, synced); returns
/// size and duration.
fn write_clip(
    dir: &std::path::Path,
    plan: &ClipPlan,
    path: &std::path::Path,
) -> std::io::Result<(u64, f64)> {
    let mut bytes = std::fs::read(dir.join(&plan.init))?;
    for segment in &plan.segments {
        bytes.extend_from_slice(&std::fs::read(dir.join(segment))?);
    }
    let mut file = std::io::Cursor::new(bytes);
    let done = finalize_window(&mut file, Some(plan.window))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    write_bytes(path, file.get_ref())?;
    Ok((done.size_bytes, done.duration_secs))
}

/// Writes a clip file atomically and synced (it is listed right after).
fn write_bytes(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    crate::sinks::write_atomically(path, bytes, true)
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
        .call(move |conn| catalog::get_replay(conn, session_id))
        .await?
        .filter(|r| r.stream_id == stream.id);
    let clip_id = Uuid::new_v4();
    let relative = format!("clips/{}/{clip_id}.mp4", stream.streamname);
    let path = state.data_dir.join(&relative);
    let (start, end) = (request.start, request.end);
    let written = match replay {
        Some(replay) => {
            let dir = state.data_dir.join(&replay.path);
            let playlist = tokio::fs::read_to_string(dir.join("index.m3u8"))
                .await
                .map_err(|_| ApiError {
                    status: StatusCode::CONFLICT,
                    code: "conflict",
                    message: "the replay holds no media yet".into(),
                    field: Some("session".into()),
                })?;
            let segments = parse_playlist(&playlist, replay.origin.as_deref()).map_err(|e| {
                tracing::error!(replay = %replay.path, error = %e, "unreadable replay playlist");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the replay playlist is unreadable",
                )
            })?;
            let plan = plan_clip(&segments, start, end)
                .map_err(|e| ApiError::invalid(e.field, e.message))?;
            tokio::task::spawn_blocking(move || write_clip(&dir, &plan, &path))
                .await
                .map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                })?
                .map_err(|e| {
                    // Segments of a sliding window can leave between planning and reading.
                    tracing::warn!(error = %e, "clip could not be written");
                    ApiError::invalid(
                        "start",
                        format!("the replay no longer holds that range: {e}"),
                    )
                })?
        }
        None => {
            // No replay: cut from the session's recordings, if it was recorded.
            let stream_id = stream.id;
            let recordings = state
                .catalog
                .call(move |conn| catalog::session_recordings(conn, session_id))
                .await?;
            if recordings.is_empty() || recordings.iter().any(|r| r.stream_id != stream_id) {
                return Err(ApiError {
                    status: StatusCode::CONFLICT,
                    code: "conflict",
                    message: "no replay or recording for this session of this stream (clips need replay processing or recording on for the session)".into(),
                    field: Some("session".into()),
                });
            }
            let files: Vec<std::path::PathBuf> = recordings
                .iter()
                .map(|r| state.data_dir.join(&r.path))
                .collect();
            tokio::task::spawn_blocking(move || {
                let paths: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
                let (bytes, duration) = cut(&paths, start, end)?;
                write_bytes(&path, &bytes).map_err(|e| CutError::Read {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                Ok::<_, CutError>((bytes.len() as u64, duration))
            })
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?
            .map_err(|e| match e {
                CutError::Refused(e) => ApiError::invalid(e.field, e.message),
                CutError::Read { .. } => {
                    tracing::error!(error = %e, "clip from recordings failed");
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "cannot read the recording",
                    )
                }
            })?
        }
    };
    let (size, duration) = written;
    let clip = Clip {
        id: clip_id,
        stream_id: stream.id,
        session_id,
        path: relative,
        created_at: catalog::now_rfc3339(),
        start_secs: request.start,
        end_secs: request.end,
        size,
        duration_secs: duration,
    };
    let listed = clip.clone();
    state
        .catalog
        .call(move |conn| catalog::insert_clip(conn, &listed))
        .await?;
    Ok((StatusCode::CREATED, Json(clip_view(&state, &stream, &clip))))
}

/// `GET`/`HEAD /clips/{streamname}/{file}`
pub async fn serve(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((streamname, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !safe_relative(&streamname) || !safe_relative(&file) || !file.ends_with(".mp4") {
        return Err(ApiError::not_found("clip"));
    }
    let path = state.data_dir.join("clips").join(&streamname).join(&file);
    serve_file(
        &path,
        &method,
        &headers,
        "video/mp4",
        "public, max-age=31536000, immutable",
    )
    .await
}
