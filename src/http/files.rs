//! Serving stored files (SPEC "Files"): `/vod/…`, `/thumbnails/…`, and the HLS and clip
//! files other modules route here. Byte ranges, strong `ETag`s, `Last-Modified`, and the
//! conditional requests of RFC 9110 in its order (`If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since`) come from tower-http's `ServeFile`; `If-Range`, which
//! `ServeFile` does not evaluate, is checked here against the validators `ServeFile` itself
//! sends, with the `headers` crate's typed header: when it does not match exactly, the range
//! is dropped and the whole file is sent, never a range of a different version.
//!
//! URL paths become storage keys only through `storage::layout`, which accepts plain name
//! segments alone: `..`, absolute paths, encoded separators and dot files answer 404 before
//! the file system is touched. No directory is ever listed.
//!
//! Not here: producing the files (`sinks`), naming them (`storage::layout`).

use super::{ApiError, AppState};
use crate::storage::layout;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use headers::{ETag, HeaderMapExt, IfRange, LastModified};
use std::time::SystemTime;
use tower_http::services::ServeFile;

/// Cache lifetime of files that never change once written (segments, history, clips).
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A request as `ServeFile` takes it: the method and headers that matter.
fn file_request(method: &Method, headers: HeaderMap) -> Request<()> {
    let mut request = Request::new(());
    *request.method_mut() = method.clone();
    *request.headers_mut() = headers;
    request
}

/// Whether an `If-Range` precondition holds for the file at `path`: its value is exactly the
/// strong `ETag` or the `Last-Modified` date `ServeFile` sends for it now (RFC 9110
/// §13.1.5). Asks `ServeFile` for the validators with a plain `HEAD`.
async fn if_range_holds(path: &std::path::Path, mime: &mime::Mime, if_range: &IfRange) -> bool {
    let head = ServeFile::new_with_mime(path, mime)
        .try_call(file_request(&Method::HEAD, HeaderMap::new()))
        .await;
    let Ok(head) = head else {
        return false;
    };
    let etag = head.headers().typed_get::<ETag>();
    let modified = head.headers().typed_get::<LastModified>();
    etag.is_some_and(|etag| *if_range == IfRange::etag(etag))
        || modified.is_some_and(|lm| *if_range == IfRange::date(SystemTime::from(lm)))
}

/// Serves the stored file `key` (already a valid key) with ranges and validators; 404 when
/// it does not exist.
pub async fn serve_key(
    state: &AppState,
    key: &str,
    method: &Method,
    headers: &HeaderMap,
    content_type: &'static str,
    cache_control: &'static str,
) -> Result<Response, ApiError> {
    let path = state
        .store
        .path(key)
        .map_err(|_| ApiError::not_found("file"))?;
    let mime: mime::Mime = content_type
        .parse()
        .map_err(|_| ApiError::internal("a content type the server names is not a MIME type"))?;
    let mut headers = headers.clone();
    if headers.contains_key(header::RANGE) {
        if let Some(if_range) = headers.typed_get::<IfRange>() {
            if !if_range_holds(&path, &mime, &if_range).await {
                headers.remove(header::RANGE);
            }
        }
    }
    headers.remove(header::IF_RANGE);
    let served = ServeFile::new_with_mime(&path, &mime)
        .ignore_multi_range_requests(true)
        .try_call(file_request(method, headers))
        .await;
    let response = match served {
        Ok(response) => response,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::not_found("file"))
        }
        Err(e) => {
            tracing::error!(file = %key, error = %e, "cannot read a stored file");
            return Err(ApiError::internal("cannot read the file"));
        }
    };
    let mut response = response.map(Body::new);
    if response.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::not_found("file"));
    }
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
    }
    Ok(response)
}

/// `GET`/`HEAD /vod/{*path}`
pub async fn vod(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let key = layout::vod_from_url(&path).ok_or_else(|| ApiError::not_found("file"))?;
    serve_key(
        &state,
        &key,
        &method,
        &headers,
        "video/mp4",
        "public, max-age=3600",
    )
    .await
}

/// The content type of a picture kind.
fn picture_type(kind: crate::catalog::PictureKind) -> &'static str {
    match kind {
        crate::catalog::PictureKind::Thumbnail => "image/jpeg",
        crate::catalog::PictureKind::MotionClip => "image/gif",
    }
}

/// `GET`/`HEAD /thumbnails/{file}`: a stream's latest thumbnail `<streamname>.jpg` or motion
/// clip `<streamname>.gif` (short cache lifetime: they change every interval).
pub async fn latest_thumbnail(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let (key, kind) =
        layout::picture_latest_from_url(&file).ok_or_else(|| ApiError::not_found("thumbnail"))?;
    let cache = "public, max-age=5";
    serve_key(&state, &key, &method, &headers, picture_type(kind), cache).await
}

/// `GET`/`HEAD /thumbnails/{streamname}/{file}`: a history picture (never changes).
pub async fn thumbnail_history(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((streamname, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (key, kind) = layout::picture_history_from_url(&streamname, &file)
        .ok_or_else(|| ApiError::not_found("thumbnail"))?;
    serve_key(
        &state,
        &key,
        &method,
        &headers,
        picture_type(kind),
        IMMUTABLE,
    )
    .await
}
