//! The HTTP API (bintu-shaped, SPEC "HTTP API") and health endpoint on axum/hyper.
//!
//! Every error is JSON `{"error": {"code", "message", "field"?}}`; bodies are parsed by us, not
//! by axum's extractor, so malformed and unknown input gets that shape too.
//!
//! The JSON shapes are types (`views`) from which `/openapi.json` is generated (`openapi`).
//! Handlers reach the catalog through its typed methods, live streams through the session
//! registry, and files through the storage layout (`files`); the dashboard is embedded
//! (`dashboard`).

mod auth;
mod clips;
mod dashboard;
mod files;
mod hls;
mod openapi;
mod orgs;
mod stream_views;
mod streams;
pub mod views;

use crate::catalog::{Catalog, CatalogError, StreamState};
use crate::config::PublicUrls;
use crate::session::LiveSessions;
use crate::storage::LocalStore;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::sync::Arc;

pub use auth::Auth;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Catalog,
    /// Live streams: their hubs, HLS outputs and sink statuses.
    pub sessions: LiveSessions,
    pub urls: Arc<PublicUrls>,
    /// Where served files are (by `storage::layout` key).
    pub store: Arc<LocalStore>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// An API error with its HTTP status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 400 naming the offending input.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_input",
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 500 with a message safe to show (details go to the log where the error happened).
    pub fn internal(message: &str) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        tracing::error!(error = %e, "catalog error while serving a request");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error, see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

/// A request body, read whole up to the body limit; over it: 413 in the JSON error shape.
pub struct ApiBody(pub axum::body::Bytes);

impl FromRequest<AppState> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(ApiBody)
            .map_err(|rejection| {
                let status = rejection.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "payload_too_large"
                } else {
                    "invalid_input"
                };
                ApiError::new(status, code, rejection.body_text())
            })
    }
}

/// The query of a route that takes no parameters: any parameter is refused.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// Query parameters parsed into `T` (which refuses unknown ones); errors name the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|rejection| {
                let message = rejection.body_text();
                // serde names the parameter in backticks: "unknown field `x`, expected …".
                let field = message.split('`').nth(1).unwrap_or("").to_string();
                ApiError::invalid(field, message)
            })
    }
}

/// `GET /health`
#[utoipa::path(get, path = "/health", tag = "server",
    responses((status = 200, body = views::Health, description = "the server runs")))]
async fn health() -> Json<views::Health> {
    Json(views::Health {
        status: "ok".into(),
    })
}

/// `GET /metrics`: Prometheus scrape target (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "server",
    responses((status = 200, content_type = "application/openmetrics-text", body = String,
               description = "Prometheus metrics")))]
async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let scraped = &state.metrics.scraped;
    match state.catalog.count_streams_by_state().await {
        Ok(counts) => {
            for stream_state in StreamState::ALL {
                let count = counts
                    .iter()
                    .find(|(s, _)| *s == stream_state)
                    .map_or(0, |(_, n)| *n);
                scraped
                    .streams
                    .get_or_create(&vec![("state", stream_state.as_str())])
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count streams"),
    }
    scraped
        .publishers
        .set(i64::try_from(state.sessions.live_count()).unwrap_or(i64::MAX));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// Counts each request by route pattern, method and status, with its latency.
async fn track_request(
    axum::extract::State(metrics): axum::extract::State<Arc<crate::metrics::Metrics>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics.http.observe(
        route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Routes players fetch from any origin: CORS open, no credentials.
fn media_routes() -> Router<AppState> {
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::HEAD])
        .allow_headers([axum::http::header::RANGE])
        .expose_headers([
            axum::http::header::CONTENT_LENGTH,
            axum::http::header::CONTENT_RANGE,
        ]);
    Router::new()
        .route("/live/{streamname}/index.m3u8", get(hls::live_playlist))
        .route("/live/{streamname}/master.m3u8", get(hls::live_master))
        .route("/live/{streamname}/{session}/{file}", get(hls::live_file))
        .route(
            "/replay/{streamname}/{session}/{file}",
            get(hls::replay_file),
        )
        .route("/clips/{streamname}/{file}", get(clips::serve))
        .route("/thumbnails/{file}", get(files::latest_thumbnail))
        .route(
            "/thumbnails/{streamname}/{file}",
            get(files::thumbnail_history),
        )
        .layer(cors)
}

/// The API router.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi::document))
        .route("/stream", post(streams::create).get(streams::list))
        .route(
            "/stream/{id}",
            get(streams::get_one).delete(streams::delete),
        )
        .route("/stream/{id}/group", get(streams::group))
        .route("/stream/{id}/transcodes", post(streams::add_transcode))
        .route("/stream/{id}/tag", put(streams::set_tags))
        .route("/stream/{id}/processing", put(streams::set_processing))
        .route("/stream/{id}/stop", post(streams::stop))
        .route("/stream/{id}/unlock", post(streams::unlock))
        .route("/stream/{id}/sessions", get(streams::sessions))
        .route("/stream/{id}/clips", post(clips::create))
        .route("/organisation", get(orgs::get))
        .route("/organisation/packages", put(orgs::set_packages))
        .route("/apikey", post(orgs::create_key).get(orgs::list_keys))
        .route("/apikey/self", get(orgs::own_key))
        .route("/apikey/{id}", axum::routing::delete(orgs::revoke_key))
        .route("/vod/{*path}", get(files::vod))
        .merge(media_routes())
        .merge(dashboard::routes())
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            track_request,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
