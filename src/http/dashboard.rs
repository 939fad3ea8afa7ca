//! The dashboard: plain HTML, CSS and JavaScript modules compiled into the binary, served at
//! `/` (the app), `/ui/{file}` (its modules and styles) and `/watch` (the player page, which
//! other sites embed with an iframe). No build step and no CDN: the pages load nothing from
//! another origin, and their Content-Security-Policy tells the browser to refuse it if they
//! ever tried.

use axum::extract::Path;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::OnceLock;

use super::{ApiError, AppState};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("dashboard/", $name)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("watch.html", HTML),
    asset!("style.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("list.js", JS),
    asset!("stream.js", JS),
    asset!("player.js", JS),
    asset!("watch.js", JS),
];

/// Same-origin everything; `blob:` media for Media Source Extensions, `data:` images for
/// inline icons. The app may not be framed; the player page may (that is what it is for).
const APP_POLICY: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
     connect-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const PLAYER_POLICY: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
     connect-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'none'; frame-ancestors *";

/// The dashboard's routes. `/ui/` files are open to any origin: the HTML embed snippet
/// imports `player.js` from other sites' pages (module scripts are fetched with CORS).
pub fn routes() -> Router<AppState> {
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD]);
    let files =
        Router::new()
            .route(
                "/ui/{file}",
                get(|Path(file): Path<String>, headers: HeaderMap| async move {
                    serve(&file, &headers)
                }),
            )
            .layer(cors);
    Router::new()
        .route(
            "/",
            get(|headers: HeaderMap| async move { serve("index.html", &headers) }),
        )
        .route(
            "/watch",
            get(|headers: HeaderMap| async move { serve("watch.html", &headers) }),
        )
        .merge(files)
}

/// A strong validator per file, computed once: the files never change while the binary runs.
fn etag(index: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|asset| {
                // FNV-1a: enough to tell versions of a file apart.
                let hash = asset.body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                format!("\"{hash:016x}\"")
            })
            .collect()
    });
    tags.get(index).map_or("", String::as_str)
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return ApiError::not_found("dashboard file").into_response();
    };
    let asset = &ASSETS[index];
    let tag = etag(index);
    let policy = if name == "watch.html" {
        PLAYER_POLICY
    } else {
        APP_POLICY
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Revalidated on every load (cheap: 304), so a new binary's files are seen at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(value) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, value);
    }
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_pages_import_is_embedded() {
        for asset in ASSETS {
            for line in asset.body.lines() {
                let Some(rest) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let imported = rest.split('"').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|a| a.name == imported),
                    "{} imports {imported}, which is not embedded",
                    asset.name
                );
            }
        }
    }

    #[test]
    fn files_have_distinct_validators() {
        let tags: std::collections::HashSet<_> = (0..ASSETS.len()).map(etag).collect();
        assert_eq!(tags.len(), ASSETS.len());
    }
}
