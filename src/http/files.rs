//! File serving for `/vod/...` (SPEC "Files"): byte ranges (RFC 9110 §14), `ETag` and
//! `Last-Modified` with conditional requests, correct content types, no directory listings,
//! and no path that leaves the data folder (only plain name segments are accepted, so `..`,
//! absolute paths and encoded separators answer 404 before the file system is touched).
//!
//! Not here: producing the files (`sinks`).

use super::{ApiError, AppState};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::io::SeekFrom;
use std::time::UNIX_EPOCH;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Whether every segment is a plain file or folder name.
pub fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
}

/// A parsed `Range` header against a file length: `Ok(None)` = whole file.
fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None); // unknown unit: ignore, serve the whole file
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: serving the whole file is allowed
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let suffix: u64 = end.parse().map_err(|_| ())?;
        if suffix == 0 {
            return Err(());
        }
        (len.saturating_sub(suffix), len.checked_sub(1).ok_or(())?)
    } else {
        let start: u64 = start.parse().map_err(|_| ())?;
        let end = if end.is_empty() {
            len.checked_sub(1).ok_or(())?
        } else {
            end.parse::<u64>()
                .map_err(|_| ())?
                .min(len.saturating_sub(1))
        };
        (start, end)
    };
    if range.0 > range.1 || range.0 >= len {
        return Err(());
    }
    Ok(Some(range))
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `GET`/`HEAD /vod/{*path}`
pub async fn vod(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    if !safe_relative(&path) || !path.ends_with(".mp4") {
        return Err(ApiError::not_found("file"));
    }
    let full = state.data_dir.join("vod").join(&path);
    serve_file(
        &full,
        &method,
        &headers,
        "video/mp4",
        "public, max-age=3600",
    )
    .await
}

/// The content type of a picture file name (`.jpg` thumbnail, `.gif` motion clip).
fn picture_type(file: &str) -> Option<&'static str> {
    if file.ends_with(".jpg") {
        Some("image/jpeg")
    } else if file.ends_with(".gif") {
        Some("image/gif")
    } else {
        None
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
    let content_type = picture_type(&file).filter(|_| safe_relative(&file));
    let Some(content_type) = content_type else {
        return Err(ApiError::not_found("thumbnail"));
    };
    let full = state.data_dir.join("thumbnails").join(&file);
    serve_file(&full, &method, &headers, content_type, "public, max-age=5").await
}

/// `GET`/`HEAD /thumbnails/{streamname}/{file}`: a history picture (never changes).
pub async fn thumbnail_history(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((streamname, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let content_type =
        picture_type(&file).filter(|_| safe_relative(&streamname) && safe_relative(&file));
    let Some(content_type) = content_type else {
        return Err(ApiError::not_found("thumbnail"));
    };
    let full = state
        .data_dir
        .join("thumbnails")
        .join(&streamname)
        .join(&file);
    let immutable = "public, max-age=31536000, immutable";
    serve_file(&full, &method, &headers, content_type, immutable).await
}

/// Serves one file with ranges, `ETag`/`Last-Modified` and conditional requests; 404 when it
/// is missing or not a regular file. The caller has checked that `full` is inside the data
/// folder.
pub async fn serve_file(
    full: &std::path::Path,
    method: &Method,
    headers: &HeaderMap,
    content_type: &'static str,
    cache_control: &'static str,
) -> Result<Response, ApiError> {
    let mut file = tokio::fs::File::open(full)
        .await
        .map_err(|_| ApiError::not_found("file"))?;
    let meta = file
        .metadata()
        .await
        .map_err(|_| ApiError::not_found("file"))?;
    if !meta.is_file() {
        return Err(ApiError::not_found("file"));
    }
    let len = meta.len();
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let etag = format!("\"{len:x}-{nanos:x}\"");
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response_headers.insert(header::ETAG, header_value(&etag));
    response_headers.insert(
        header::LAST_MODIFIED,
        header_value(&httpdate::fmt_http_date(modified)),
    );
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if not_modified {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    // If-Range with a different validator: the file changed, send it whole.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == etag);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) if if_range_ok => match parse_range(value, len) {
            Ok(range) => range,
            Err(()) => {
                response_headers.insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{len}")),
                );
                return Ok((StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response());
            }
        },
        _ => None,
    };
    let (status, start, count) = match range {
        Some((start, end)) => {
            response_headers.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{end}/{len}")),
            );
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        None => (StatusCode::OK, 0, len),
    };
    response_headers.insert(header::CONTENT_LENGTH, header_value(&count.to_string()));
    if *method == Method::HEAD {
        return Ok((status, response_headers).into_response());
    }
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(|_| ApiError::not_found("file"))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file.take(count)));
    Ok((status, response_headers, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=9-1", 100), Err(()));
        assert_eq!(parse_range("bytes=-0", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=x-1", 100), Err(()));
    }

    #[test]
    fn only_plain_segments_are_served() {
        assert!(safe_relative("eu/ABCDE/ABCDE-x1Y2z-1.mp4"));
        for bad in [
            "",
            "/etc/passwd",
            "eu/../../x.mp4",
            "eu//x.mp4",
            ".hidden.mp4",
            "eu/%2e%2e/x",
            "a\\b.mp4",
        ] {
            assert!(!safe_relative(bad), "{bad}");
        }
    }
}
