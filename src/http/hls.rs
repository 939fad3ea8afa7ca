//! HLS playout over HTTP: `/live/<streamname>/index.m3u8` (the live window; the first request
//! for a stream without replay has its live session start a segmenter, and waits for the
//! first segment), `/replay/<streamname>/<session>/index.m3u8` (from memory while live, from
//! storage after), and their init and media segments.
//!
//! Content types per RFC 8216 (`application/vnd.apple.mpegurl`) and CMAF
//! (`video/iso.segment`); live playlists are never cached, segments are immutable; CORS is
//! open (the router adds it) so a player on any origin can play.

use super::files::{serve_key, IMMUTABLE};
use super::{ApiError, AppState};
use crate::sinks::hls::Snapshot;
use crate::storage::layout::{self, REPLAY_PLAYLIST};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
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

/// `GET /live/{streamname}/index.m3u8`
pub async fn live_playlist(
    State(state): State<AppState>,
    Path(streamname): Path<String>,
) -> Result<Response, ApiError> {
    let output = state
        .sessions
        .live_hls(&streamname)
        .ok_or_else(|| ApiError::not_found("live stream"))?;
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

/// `GET /live/{streamname}/master.m3u8`: a live stream group's multivariant playlist (SPEC
/// "Stream groups"), one `EXT-X-STREAM-INF` per rendition, highest first, each pointing at the
/// rendition's own live playlist. Waits (like a first live playlist) until every rendition
/// has a segment, so its figures are measured, not guessed.
pub async fn live_master(
    State(state): State<AppState>,
    Path(streamname): Path<String>,
) -> Result<Response, ApiError> {
    let renditions = state
        .sessions
        .group_hls(&streamname)
        .ok_or_else(|| ApiError::not_found("live stream group"))?;
    let mut entries = Vec::new();
    for (stream, output) in renditions {
        let mut updates = output.watch();
        let ready = |s: &Snapshot| s.ended || s.segments > 0;
        let snapshot = tokio::time::timeout(FIRST_SEGMENT_WAIT, updates.wait_for(ready))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|s| s.clone())
            .unwrap_or_default();
        if let Some(variant) = snapshot.variant.filter(|v| v.peak_bps > 0) {
            entries.push((stream.streamname, variant));
        }
    }
    if entries.is_empty() {
        return Err(ApiError::not_found("live playlist"));
    }
    Ok(playlist_response(
        Bytes::from(crate::hls::master_playlist(&entries)),
        "no-cache, no-store",
    ))
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
    let content_type = segment_content_type(file).ok_or_else(|| ApiError::not_found("file"))?;
    let key = layout::hls_file_from_url(streamname, session, file)
        .ok_or_else(|| ApiError::not_found("file"))?;
    serve_key(state, &key, method, headers, content_type, IMMUTABLE).await
}

/// `GET /replay/{streamname}/{session}/{file}`: the replay playlist (`index.m3u8`) or one of
/// its segments.
pub async fn replay_file(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((streamname, session, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    if file != REPLAY_PLAYLIST {
        return segment_file(&state, &method, &headers, &streamname, &session, &file).await;
    }
    let key = layout::hls_file_from_url(&streamname, &session, &file)
        .ok_or_else(|| ApiError::not_found("replay"))?;
    let session_id = Uuid::parse_str(&session).map_err(|_| ApiError::not_found("replay"))?;
    let live = state
        .sessions
        .find(&streamname)
        .filter(|s| s.stream.streamname == streamname && s.session_id == session_id)
        .and_then(|s| s.replay_output());
    if let Some(replay) = live.and_then(|output| output.snapshot().replay) {
        return Ok(playlist_response(replay, "no-cache"));
    }
    serve_key(&state, &key, &method, &headers, PLAYLIST_TYPE, "no-cache").await
}
