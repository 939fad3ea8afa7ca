//! Stream endpoints: create, list, read, change and stop streams (their JSON shape is built in
//! `stream_views`).

use super::stream_views::{
    clip_view, list_views, replay_view, stream_view, stream_with_assets, vod_view,
};
use super::views::{
    CreateStreamBody, ErrorBody, GroupView, ProcessingBody, SessionList, SessionView, StreamList,
    StreamView, TagsBody, TranscodeBody,
};
use super::{ApiBody, ApiError, ApiQuery, AppState, Auth, NoParams};
use crate::catalog::{
    self, ChangeRefused, Lifecycle, NewStreamGroup, NewTranscode, Role, SessionHistory,
    StateChanged, StateFilter, Stream, StreamQuery, StreamState,
};
use crate::processing::{FieldError, Processing, TranscodeProfile, PROFILE_RULE};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use uuid::Uuid;

/// Parses a JSON body, turning serde's message into a field-naming 400.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // No body and a JSON `null` both mean "nothing given" (every field left out).
    if body.is_empty() || body.trim_ascii() == b"null" {
        return serde_json::from_slice(b"{}").map_err(|e| ApiError::invalid("", e.to_string()));
    }
    // serde would also read a struct from a JSON array (its fields in order): refuse that.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::invalid("", "the body must be a JSON object"));
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

/// Validates tags at `field`: at most 50, each 1..=64 characters.
pub fn validate_tags(tags: &[String], field: &str) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(ApiError::invalid(field, "at most 50 tags"));
    }
    for (i, tag) in tags.iter().enumerate() {
        let len = tag.chars().count();
        if !(1..=64).contains(&len) {
            return Err(ApiError::invalid(
                format!("{field}[{i}]"),
                "each tag must be 1..=64 characters",
            ));
        }
    }
    Ok(())
}

/// The answers every stream route may give besides its success.
const NO_STREAM: &str = "no such stream in the caller's organisation";

/// `POST /stream`
#[utoipa::path(post, path = "/stream", tag = "streams", request_body = Option<CreateStreamBody>,
    responses((status = 201, body = StreamView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 413, body = ErrorBody)),
    security(("apikey" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    ApiBody(body): ApiBody,
) -> Result<(StatusCode, Json<StreamView>), ApiError> {
    auth.require(Role::User)?;
    let body: CreateStreamBody = parse_body(&body)?;
    let tags = body.tags.unwrap_or_default();
    validate_tags(&tags, "tags")?;
    let processing = match &body.processing {
        // Left out or null: nothing configured, as before.
        None | Some(Value::Null) => Processing::default(),
        Some(p) => Processing::parse(p, "processing").map_err(field_error)?,
    };
    let transcodes = validate_transcodes(body.transcodes.unwrap_or_default())?;
    let new = NewStreamGroup {
        tags,
        processing,
        transcodes,
    };
    let streams = state
        .catalog
        .create_stream_group(&auth.0.org_hash, new)
        .await?;
    let first = streams
        .first()
        .ok_or_else(|| ApiError::from(catalog::CatalogError::Corrupt("empty group".into())))?;
    let group = if streams.len() > 1 { &streams[..] } else { &[] };
    Ok((StatusCode::CREATED, Json(stream_view(&state, first, group))))
}

/// Most transcoded profiles a group can have.
const MAX_TRANSCODES: usize = 8;

/// Checks `vtrans2-WxHxKBPSxFPS` profiles and their tags.
fn validate_transcodes(transcodes: Vec<TranscodeBody>) -> Result<Vec<NewTranscode>, ApiError> {
    if transcodes.len() > MAX_TRANSCODES {
        return Err(ApiError::invalid(
            "transcodes",
            format!("at most {MAX_TRANSCODES} profiles"),
        ));
    }
    let mut out: Vec<NewTranscode> = Vec::with_capacity(transcodes.len());
    for (i, transcode) in transcodes.into_iter().enumerate() {
        let profile = TranscodeProfile::parse(&transcode.profile)
            .ok_or_else(|| ApiError::invalid(format!("transcodes[{i}].profile"), PROFILE_RULE))?;
        let tags = transcode.tags.unwrap_or_default();
        validate_tags(&tags, &format!("transcodes[{i}].tags"))?;
        out.push(NewTranscode { profile, tags });
    }
    Ok(out)
}

/// A refused setting as a 400 naming its field.
fn field_error(e: FieldError) -> ApiError {
    ApiError::invalid(e.field, e.message)
}

/// The stream `id` of the caller's organisation, or 404.
pub async fn load(state: &AppState, auth: &Auth, id: &str) -> Result<Stream, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::not_found("stream"))?;
    state
        .catalog
        .get_stream(&auth.0.org_hash, id)
        .await?
        .ok_or_else(|| ApiError::not_found("stream"))
}

/// `GET /stream/{id}` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssetLimitQuery {
    /// Newest assets of each kind to list, 1..=1000 (default 10).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    asset_limit: Option<String>,
}

/// `GET /stream/{id}`
#[utoipa::path(get, path = "/stream/{id}", tag = "streams",
    params(("id" = Uuid, Path, description = "stream id"), AssetLimitQuery),
    responses((status = 200, body = StreamView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody, description = NO_STREAM)),
    security(("apikey" = [])))]
pub async fn get_one(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<AssetLimitQuery>,
) -> Result<Json<StreamView>, ApiError> {
    auth.require(Role::ReadOnly)?;
    let asset_limit = match query.asset_limit {
        None => 10,
        Some(limit) => parse_in(&limit, "asset_limit", 1..=1000)? as usize,
    };
    let stream = load(&state, &auth, &id).await?;
    Ok(Json(
        stream_with_assets(&state, &stream, asset_limit).await?,
    ))
}

/// An integer query parameter in `range`, or a 400 naming it.
fn parse_in(
    text: &str,
    field: &str,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ApiError> {
    match text.parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ApiError::invalid(
            field,
            format!("must be an integer {}..={}", range.start(), range.end()),
        )),
    }
}

/// `GET /stream` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `live`, `created`, `ended`, `locked`, `deleted`, or `all` (default: all but deleted).
    #[param(value_type = Option<String>, pattern = "^(live|created|ended|locked|deleted|all)$")]
    state: Option<String>,
    /// Comma-separated; a stream must have every one.
    tags: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Created before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// `true`: one entry per stream group (its passthrough); default `false`.
    #[param(value_type = Option<bool>)]
    streamgroups: Option<String>,
    /// Exact id or streamname (case-sensitive).
    q: Option<String>,
    /// 1-based page (default 1).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000000)]
    page: Option<String>,
    /// 25 (default), 50, 100 or 150.
    #[param(value_type = Option<String>, pattern = "^(25|50|100|150)$")]
    per_page: Option<String>,
    /// Only the newest N matching streams, 1..=100000.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100000)]
    quantity: Option<String>,
}

/// A list request turned into a catalog query, or a 400 naming the parameter.
fn stream_query(query: ListQuery) -> Result<StreamQuery, ApiError> {
    let state = match query.state.as_deref() {
        None | Some("all") => StateFilter::AllButDeleted,
        Some(name) => StateFilter::Only(StreamState::from_name(name).ok_or_else(|| {
            ApiError::invalid(
                "state",
                "must be live, created, ended, locked, deleted or all",
            )
        })?),
    };
    let tags: Vec<String> = match &query.tags {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
    };
    validate_tags(&tags, "tags")?;
    let time = |value: &Option<String>, field: &str| -> Result<Option<String>, ApiError> {
        value
            .as_deref()
            .map(|text| {
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .map(catalog::format_rfc3339)
                    .map_err(|_| {
                        ApiError::invalid(
                            field,
                            "must be an RFC 3339 time, e.g. 2026-11-21T00:00:00Z",
                        )
                    })
            })
            .transpose()
    };
    let collapse_groups = match query.streamgroups.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("streamgroups", "must be true or false")),
    };
    let per_page = match query.per_page.as_deref() {
        None => 25,
        Some(text) => match text.parse::<u32>() {
            Ok(n @ (25 | 50 | 100 | 150)) => n,
            _ => return Err(ApiError::invalid("per_page", "must be 25, 50, 100 or 150")),
        },
    };
    Ok(StreamQuery {
        state,
        tags,
        from: time(&query.from, "from")?,
        to: time(&query.to, "to")?,
        collapse_groups,
        q: query.q.filter(|q| !q.is_empty()),
        page: match &query.page {
            None => 1,
            Some(page) => parse_in(page, "page", 1..=1_000_000)?,
        },
        per_page,
        quantity: query
            .quantity
            .as_deref()
            .map(|n| parse_in(n, "quantity", 1..=100_000))
            .transpose()?,
    })
}

/// `GET /stream`
#[utoipa::path(get, path = "/stream", tag = "streams", params(ListQuery),
    responses((status = 200, body = StreamList), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody)),
    security(("apikey" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<StreamList>, ApiError> {
    auth.require(Role::ReadOnly)?;
    let query = stream_query(query)?;
    let (page, per_page) = (query.page, query.per_page);
    let found = state.catalog.list_streams(&auth.0.org_hash, query).await?;
    Ok(Json(StreamList {
        items: list_views(&state, &found),
        total: found.total,
        page,
        per_page,
    }))
}

/// `GET /stream/{id}/group`
#[utoipa::path(get, path = "/stream/{id}/group", tag = "streams",
    params(("id" = Uuid, Path, description = "id of any stream of the group")),
    responses((status = 200, body = GroupView), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = NO_STREAM)),
    security(("apikey" = [])))]
pub async fn group(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    Path(id): Path<String>,
) -> Result<Json<GroupView>, ApiError> {
    auth.require(Role::ReadOnly)?;
    let stream = load(&state, &auth, &id).await?;
    let group = stream.streamgroup;
    let members = state.catalog.group_streams(&stream.org_hash, group).await?;
    let mut items = Vec::with_capacity(members.len());
    for member in &members {
        items.push(stream_with_assets(&state, member, 10).await?);
    }
    Ok(Json(GroupView {
        streamgroup: group,
        items,
    }))
}

/// `POST /stream/{id}/transcodes`
#[utoipa::path(post, path = "/stream/{id}/transcodes", tag = "streams",
    params(("id" = Uuid, Path, description = "id of any stream of the group")),
    request_body = TranscodeBody,
    responses((status = 201, body = StreamView, description = "the new member; effective at the group's next ingest"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = NO_STREAM),
              (status = 409, body = ErrorBody, description = "the group has the most profiles it can have")),
    security(("apikey" = [])))]
pub async fn add_transcode(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    Path(id): Path<String>,
    ApiBody(body): ApiBody,
) -> Result<(StatusCode, Json<StreamView>), ApiError> {
    auth.require(Role::User)?;
    let body: TranscodeBody = parse_body(&body)?;
    let stream = load(&state, &auth, &id).await?;
    if stream.state == catalog::StreamState::Deleted {
        return Err(refused(ChangeRefused::Deleted));
    }
    let profile = TranscodeProfile::parse(&body.profile)
        .ok_or_else(|| ApiError::invalid("profile", PROFILE_RULE))?;
    let tags = body.tags.unwrap_or_default();
    validate_tags(&tags, "tags")?;
    let transcode = NewTranscode { profile, tags };
    let added = state
        .catalog
        .add_transcode(
            &stream.org_hash,
            stream.streamgroup,
            transcode,
            MAX_TRANSCODES,
        )
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("a stream group has at most {MAX_TRANSCODES} transcoded profiles"),
            )
        })?;
    let group = state
        .catalog
        .group_streams(&stream.org_hash, stream.streamgroup)
        .await?;
    let mut view = stream_view(&state, &added, &group);
    view.notice = Some("the new profile is transcoded from the group's next ingest on".into());
    Ok((StatusCode::CREATED, Json(view)))
}

/// A refused change as an API error.
fn refused(why: ChangeRefused) -> ApiError {
    let message = match why {
        ChangeRefused::Deleted => "the stream is deleted; it can only be read",
        ChangeRefused::NotLocked => "the stream is not locked",
    };
    ApiError::new(StatusCode::CONFLICT, "conflict", message)
}

/// The answer to a change of one stream: the stream as it is now, with its assets.
async fn changed(
    state: &AppState,
    result: catalog::Change<Stream>,
) -> Result<Json<StreamView>, ApiError> {
    let stream = result
        .ok_or_else(|| ApiError::not_found("stream"))?
        .map_err(refused)?;
    Ok(Json(stream_with_assets(state, &stream, 10).await?))
}

/// `PUT /stream/{id}/tag`
#[utoipa::path(put, path = "/stream/{id}/tag", tag = "streams", request_body = TagsBody,
    params(("id" = Uuid, Path, description = "stream id")),
    responses((status = 200, body = StreamView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = NO_STREAM),
              (status = 409, body = ErrorBody, description = "the stream is deleted")),
    security(("apikey" = [])))]
pub async fn set_tags(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    Path(id): Path<String>,
    ApiBody(body): ApiBody,
) -> Result<Json<StreamView>, ApiError> {
    auth.require(Role::User)?;
    let body: TagsBody = parse_body(&body)?;
    validate_tags(&body.tags, "tags")?;
    let stream = load(&state, &auth, &id).await?;
    let result = state
        .catalog
        .set_tags(&auth.0.org_hash, stream.id, body.tags)
        .await?;
    changed(&state, result).await
}

/// `PUT /stream/{id}/processing`
#[utoipa::path(put, path = "/stream/{id}/processing", tag = "streams",
    request_body = ProcessingBody,
    params(("id" = Uuid, Path, description = "stream id")),
    responses((status = 200, body = StreamView, description = "saved; applies when publishing next starts (`notice`)"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = NO_STREAM),
              (status = 409, body = ErrorBody, description = "the stream is deleted")),
    security(("apikey" = [])))]
pub async fn set_processing(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    Path(id): Path<String>,
    ApiBody(body): ApiBody,
) -> Result<Json<StreamView>, ApiError> {
    auth.require(Role::User)?;
    let body: ProcessingBody = parse_body(&body)?;
    let processing = Processing::parse(&body.processing, "processing").map_err(field_error)?;
    let sync = body.sync.unwrap_or(false);
    let stream = load(&state, &auth, &id).await?;
    let result = state
        .catalog
        .set_processing(&auth.0.org_hash, stream.id, processing, sync)
        .await?;
    let Json(mut view) = changed(&state, result).await?;
    view.notice =
        Some("processing settings are saved; they apply when publishing next starts".into());
    Ok(Json(view))
}

/// Applies a lifecycle change and disconnects the publishers of the streams it locked or
/// deleted (the publish loop notices within a tick).
async fn lifecycle(
    state: &AppState,
    auth: &Auth,
    id: &str,
    change: Lifecycle,
) -> Result<Json<StreamView>, ApiError> {
    auth.require(Role::User)?;
    let stream = load(state, auth, id).await?;
    let result = state
        .catalog
        .change_state(&auth.0.org_hash, stream.id, change)
        .await?;
    let result = result.map(|r| {
        r.map(|StateChanged { stream, changed }| {
            if change != Lifecycle::Unlock {
                for member in changed {
                    state.sessions.stop(member);
                }
            }
            stream
        })
    });
    changed(state, result).await
}

/// `POST /stream/{id}/stop`
#[utoipa::path(post, path = "/stream/{id}/stop", tag = "streams",
    params(("id" = Uuid, Path, description = "stream id")),
    responses((status = 200, body = StreamView, description = "locked; a publisher is disconnected"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = NO_STREAM),
              (status = 409, body = ErrorBody, description = "the stream is deleted")),
    security(("apikey" = [])))]
pub async fn stop(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    Path(id): Path<String>,
) -> Result<Json<StreamView>, ApiError> {
    lifecycle(&state, &auth, &id, Lifecycle::Lock).await
}

/// `POST /stream/{id}/unlock`
#[utoipa::path(post, path = "/stream/{id}/unlock", tag = "streams",
    params(("id" = Uuid, Path, description = "stream id")),
    responses((status = 200, body = StreamView, description = "ended (or created when never live)"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = NO_STREAM),
              (status = 409, body = ErrorBody, description = "the stream is not locked")),
    security(("apikey" = [])))]
pub async fn unlock(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    Path(id): Path<String>,
) -> Result<Json<StreamView>, ApiError> {
    lifecycle(&state, &auth, &id, Lifecycle::Unlock).await
}

/// `DELETE /stream/{id}`
#[utoipa::path(delete, path = "/stream/{id}", tag = "streams",
    params(("id" = Uuid, Path, description = "stream id")),
    responses((status = 200, body = StreamView, description = "soft deleted; a publisher is disconnected"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = NO_STREAM)),
    security(("apikey" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    Path(id): Path<String>,
) -> Result<Json<StreamView>, ApiError> {
    lifecycle(&state, &auth, &id, Lifecycle::Delete).await
}

/// `GET /stream/{id}/sessions`
#[utoipa::path(get, path = "/stream/{id}/sessions", tag = "streams",
    params(("id" = Uuid, Path, description = "stream id")),
    responses((status = 200, body = SessionList), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody, description = NO_STREAM)),
    security(("apikey" = [])))]
pub async fn sessions(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    Path(id): Path<String>,
) -> Result<Json<SessionList>, ApiError> {
    auth.require(Role::ReadOnly)?;
    let stream = load(&state, &auth, &id).await?;
    let SessionHistory {
        sessions,
        vods,
        replays,
        clips,
    } = state.catalog.session_history(stream.id).await?;
    let items = sessions
        .iter()
        .map(|s| SessionView {
            id: s.id,
            started_at: s.started_at.clone(),
            ended_at: s.ended_at.clone(),
            app: s.app.clone(),
            end_reason: s.end_reason.clone(),
            assets: vods
                .iter()
                .filter(|a| a.session_id == s.id)
                .map(|a| vod_view(&state, &stream, a))
                .chain(
                    replays
                        .iter()
                        .filter(|r| r.session_id == s.id)
                        .map(|r| replay_view(&state, &stream, r)),
                )
                .chain(
                    clips
                        .iter()
                        .filter(|c| c.session_id == s.id)
                        .map(|c| clip_view(&state, &stream, c)),
                )
                .collect(),
        })
        .collect();
    Ok(Json(SessionList { items }))
}
