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
use crate::sinks::hls::{HlsOutput, Snapshot};
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

/// The output's playlists once it has a segment (or ended), noting a live request; empty
/// when `deadline` passes first.
async fn first_segment(output: &HlsOutput, deadline: tokio::time::Instant) -> Snapshot {
    let mut updates = output.watch();
    let ready = |s: &Snapshot| s.ended || (s.live.is_some() && s.segments > 0);
    tokio::time::timeout_at(deadline, updates.wait_for(ready))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|s| s.clone())
        .unwrap_or_default()
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
    let deadline = tokio::time::Instant::now() + FIRST_SEGMENT_WAIT;
    match first_segment(&output, deadline).await.live {
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
    // One deadline for all: the renditions' first segments come at about the same time.
    let deadline = tokio::time::Instant::now() + FIRST_SEGMENT_WAIT;
    let mut entries = Vec::new();
    for (stream, output) in renditions {
        let snapshot = first_segment(&output, deadline).await;
        if let Some(variant) = snapshot.variant.filter(|v| v.peak_bps > 0) {
            entries.push((format!("../{}/index.m3u8", stream.streamname), variant));
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

/// The multivariant playlist's name, live and in a replay.
const MASTER_PLAYLIST: &str = "master.m3u8";

/// `GET /replay/{streamname}/{session}/master.m3u8`: a stream group's replay as one ABR
/// stream: the passthrough's replay and every transcode's replay of the same group session,
/// highest first; figures from the running outputs while live, from the catalog after.
async fn replay_master(
    state: &AppState,
    streamname: &str,
    session: &str,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("stream group replay");
    let session_id = Uuid::parse_str(session).map_err(|_| not_found())?;
    let passthrough = state
        .catalog
        .find_stream_by_key(streamname)
        .await?
        .filter(|s| s.streamname == streamname && s.index == 0)
        .ok_or_else(not_found)?;
    let members = state
        .catalog
        .group_streams(&passthrough.org_hash, passthrough.streamgroup)
        .await?;
    let replays = state.catalog.group_replays(session_id).await?;
    if !replays
        .iter()
        .any(|(r, _)| r.stream_id == passthrough.id && r.session_id == session_id)
    {
        return Err(not_found());
    }
    let mut entries = Vec::new();
    for (replay, stored) in replays {
        let Some(member) = members.iter().find(|m| m.id == replay.stream_id) else {
            continue;
        };
        let live = state
            .sessions
            .get(member.id)
            .filter(|s| s.session_id == replay.session_id)
            .and_then(|s| s.replay_output())
            .and_then(|output| output.snapshot().variant);
        if let Some(variant) = live.or(stored).filter(|v| v.peak_bps > 0) {
            let uri = format!(
                "../../{}/{}/{REPLAY_PLAYLIST}",
                member.streamname, replay.session_id
            );
            entries.push((member.index, uri, variant));
        }
    }
    if entries.is_empty() {
        return Err(not_found());
    }
    // The passthrough first, then the transcodes by bit rate.
    entries.sort_by_key(|(index, _, v)| (*index != 0, std::cmp::Reverse(v.peak_bps)));
    let entries: Vec<_> = entries.into_iter().map(|(_, uri, v)| (uri, v)).collect();
    Ok(playlist_response(
        Bytes::from(crate::hls::master_playlist(&entries)),
        "no-cache",
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
    if file == MASTER_PLAYLIST {
        return replay_master(&state, &streamname, &session).await;
    }
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
