//! HLS playout over HTTP: `/live/<streamname>/index.m3u8` (the live window; the first request
//! for a stream without replay starts its segmenter and waits for the first segment),
//! `/replay/<streamname>/<session>/index.m3u8` (from memory while live, from disk after), and
//! their init and media segments.
//!
//! Content types per RFC 8216 (`application/vnd.apple.mpegurl`) and CMAF
//! (`video/iso.segment`); live playlists are never cached, segments are immutable; CORS is
//! open (the router adds it) so a player on any origin can play.

use super::files::{safe_relative, serve_file};
use super::{ApiError, AppState};
use crate::catalog::{self, StreamState};
use crate::sinks::hls::{self, HlsOutput, HlsPlan, Snapshot};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// How long a first live-playlist request waits for the first segment (one GOP and a bit).
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(10);

fn playlist_response(bytes: Bytes, cache_control: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(PLAYLIST_TYPE),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache_control),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// The live stream's HLS output, starting an on-demand one if the stream is live.
async fn live_output(state: &AppState, streamname: &str) -> Result<Arc<HlsOutput>, ApiError> {
    if let Some(output) = state.hls.outputs.get(streamname) {
        return Ok(output);
    }
    let key = streamname.to_string();
    let (stream, session) = state
        .catalog
        .call(move |conn| {
            let Some(stream) = catalog::find_stream_by_key(conn, &key)? else {
                return Ok(None);
            };
            let open = catalog::list_sessions(conn, stream.id)?
                .into_iter()
                .find(|s| s.ended_at.is_none());
            Ok(open.map(|session| (stream, session)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found("live stream"))?;
    if stream.streamname != streamname || stream.state != StreamState::Live {
        return Err(ApiError::not_found("live stream"));
    }
    let hub = state
        .hubs
        .get(stream.id)
        .ok_or_else(|| ApiError::not_found("live stream"))?;
    let plan = HlsPlan {
        stream_id: stream.id,
        streamname: stream.streamname.clone(),
        session_id: session.id,
        replay: None,
    };
    let (output, task) = hls::start(&state.hls, &hub, plan);
    if let Some(task) = task {
        state.tasks.spawn(task);
    }
    Ok(output)
}

/// `GET /live/{streamname}/index.m3u8`
pub async fn live_playlist(
    State(state): State<AppState>,
    Path(streamname): Path<String>,
) -> Result<Response, ApiError> {
    if !safe_relative(&streamname) {
        return Err(ApiError::not_found("live stream"));
    }
    let output = live_output(&state, &streamname).await?;
    let mut updates = output.watch();
    let ready = |s: &Snapshot| s.ended || (s.live.is_some() && s.segments > 0);
    let snapshot = tokio::time::timeout(FIRST_SEGMENT_WAIT, updates.wait_for(ready))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|s| s.clone())
        .unwrap_or_default();
    match snapshot.live {
        Some(live) => Ok(playlist_response(live, "no-cache, no-store")),
        None => Err(ApiError::not_found("live playlist")),
    }
}

fn segment_content_type(file: &str) -> Option<&'static str> {
    if file.ends_with(".m4s") {
        Some("video/iso.segment")
    } else if file.ends_with(".mp4") {
        Some("video/mp4")
    } else {
        None
    }
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /live/{streamname}/{session}/{file}`: a live segment or init segment.
pub async fn live_file(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((streamname, session, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    segment_file(&state, &method, &headers, &streamname, &session, &file).await
}

async fn segment_file(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    streamname: &str,
    session: &str,
    file: &str,
) -> Result<Response, ApiError> {
    let session = Uuid::parse_str(session).map_err(|_| ApiError::not_found("file"))?;
    let content_type = segment_content_type(file).ok_or_else(|| ApiError::not_found("file"))?;
    if !safe_relative(streamname) || !safe_relative(file) {
        return Err(ApiError::not_found("file"));
    }
    let path = hls::session_dir(&state.data_dir, streamname, session).join(file);
    serve_file(&path, method, headers, content_type, IMMUTABLE).await
}

/// `GET /replay/{streamname}/{session}/{file}`: the replay playlist (`index.m3u8`) or one of
/// its segments.
pub async fn replay_file(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((streamname, session, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    if file != "index.m3u8" {
        return segment_file(&state, &method, &headers, &streamname, &session, &file).await;
    }
    let session_id = Uuid::parse_str(&session).map_err(|_| ApiError::not_found("replay"))?;
    if !safe_relative(&streamname) {
        return Err(ApiError::not_found("replay"));
    }
    if let Some(output) = state.hls.outputs.get(&streamname) {
        if output.session_id == session_id && output.replay {
            let snapshot = output.watch().borrow().clone();
            if let Some(replay) = snapshot.replay {
                return Ok(playlist_response(replay, "no-cache"));
            }
        }
    }
    let path = hls::session_dir(&state.data_dir, &streamname, session_id).join("index.m3u8");
    serve_file(&path, &method, &headers, PLAYLIST_TYPE, "no-cache").await
}
