//! The caller's organisation: its packages and its API keys (SPEC "HTTP API").

use super::streams::parse_body;
use super::views::{
    ApiKeyList, ApiKeyView, CreateKeyBody, ErrorBody, NewApiKeyView, OrganisationView, Packages,
    PackagesBody,
};
use super::{ApiBody, ApiError, ApiQuery, AppState, Auth, NoParams};
use crate::catalog::{ApiKeyInfo, Organisation, PackageChange, Principal, Role};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

fn organisation_view(org: Organisation) -> OrganisationView {
    OrganisationView {
        hash: org.hash,
        name: org.name,
        packages: Packages {
            vod: org.vod,
            live_processing: org.live_processing,
            transcoding: org.transcoding,
            secure: org.secure,
        },
        created_at: org.created_at,
    }
}

fn key_view(key: ApiKeyInfo) -> ApiKeyView {
    ApiKeyView {
        id: key.id,
        role: key.role,
        name: key.name,
        created_at: key.created_at,
        revoked_at: key.revoked_at,
    }
}

/// `GET /organisation`
#[utoipa::path(get, path = "/organisation", tag = "organisation",
    responses((status = 200, body = OrganisationView), (status = 401, body = ErrorBody)),
    security(("apikey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
) -> Result<Json<OrganisationView>, ApiError> {
    auth.require(Role::ReadOnly)?;
    let org = auth.0.org_hash.clone();
    let found = state
        .catalog
        .get_org(&org)
        .await?
        .ok_or_else(|| ApiError::not_found("organisation"))?;
    Ok(Json(organisation_view(found)))
}

/// `PUT /organisation/packages`
#[utoipa::path(put, path = "/organisation/packages", tag = "organisation",
    request_body = Option<PackagesBody>,
    responses((status = 200, body = OrganisationView, description = "applies from the next ingest"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("apikey" = [])))]
pub async fn set_packages(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    ApiBody(body): ApiBody,
) -> Result<Json<OrganisationView>, ApiError> {
    auth.require(Role::Admin)?;
    let body: PackagesBody = parse_body(&body)?;
    let change = PackageChange {
        vod: body.vod,
        live_processing: body.live_processing,
        transcoding: body.transcoding,
        secure: body.secure,
    };
    let org = auth.0.org_hash.clone();
    let updated = state
        .catalog
        .set_packages(&org, change)
        .await?
        .ok_or_else(|| ApiError::not_found("organisation"))?;
    Ok(Json(organisation_view(updated)))
}

/// `POST /apikey`
#[utoipa::path(post, path = "/apikey", tag = "organisation", request_body = CreateKeyBody,
    responses((status = 201, body = NewApiKeyView, description = "`key` is shown only here"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("apikey" = [])))]
pub async fn create_key(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    ApiBody(body): ApiBody,
) -> Result<(StatusCode, Json<NewApiKeyView>), ApiError> {
    auth.require(Role::Admin)?;
    let body: CreateKeyBody = parse_body(&body)?;
    if let Some(name) = &body.name {
        if !(1..=100).contains(&name.chars().count()) {
            return Err(ApiError::invalid("name", "must be 1..=100 characters"));
        }
    }
    let org = auth.0.org_hash.clone();
    let (info, secret) = state
        .catalog
        .create_key(&org, body.role, body.name.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewApiKeyView {
            id: info.id,
            role: info.role,
            name: info.name,
            key: secret,
            created_at: info.created_at,
        }),
    ))
}

/// `GET /apikey`
#[utoipa::path(get, path = "/apikey", tag = "organisation",
    responses((status = 200, body = ApiKeyList), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody)),
    security(("apikey" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
) -> Result<Json<ApiKeyList>, ApiError> {
    auth.require(Role::Admin)?;
    let org = auth.0.org_hash.clone();
    let keys = state.catalog.list_keys(Some(&org)).await?;
    Ok(Json(ApiKeyList {
        items: keys.into_iter().map(key_view).collect(),
    }))
}

/// `GET /apikey/self`: the calling key itself, so a client (the dashboard) can adapt to its
/// role without being allowed to list the organisation's keys.
#[utoipa::path(get, path = "/apikey/self", tag = "organisation",
    responses((status = 200, body = ApiKeyView), (status = 401, body = ErrorBody)),
    security(("apikey" = [])))]
pub async fn own_key(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
) -> Result<Json<ApiKeyView>, ApiError> {
    auth.require(Role::ReadOnly)?;
    let Principal {
        key_id, org_hash, ..
    } = auth.0;
    let keys = state.catalog.list_keys(Some(&org_hash)).await?;
    keys.into_iter()
        .find(|key| key.id == key_id)
        .map(|key| Json(key_view(key)))
        .ok_or_else(|| ApiError::not_found("API key"))
}

/// `DELETE /apikey/{id}`
#[utoipa::path(delete, path = "/apikey/{id}", tag = "organisation",
    params(("id" = String, Path, description = "key id")),
    responses((status = 204, description = "revoked; it stops working at once"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody, description = "no such live key in the organisation")),
    security(("apikey" = [])))]
pub async fn revoke_key(
    State(state): State<AppState>,
    auth: Auth,
    _: ApiQuery<NoParams>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require(Role::Admin)?;
    let org = auth.0.org_hash.clone();
    let revoked = state.catalog.revoke_key(&id, Some(&org)).await?;
    if revoked {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("API key"))
    }
}
