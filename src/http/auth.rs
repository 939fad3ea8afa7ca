//! API key authentication (`X-BINTU-APIKEY: <key>` or `Authorization: Bearer <key>`) and role
//! checks. No key or an unknown key: 401; a role too low: 403.

use super::{ApiError, AppState};
use crate::catalog::{Principal, Role};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

/// The authenticated caller.
pub struct Auth(pub Principal);

impl Auth {
    /// Refuses with 403 unless the caller has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.0.role >= role {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this needs the {} role", role.as_str()),
            ))
        }
    }
}

fn key_from(parts: &Parts) -> Option<String> {
    if let Some(v) = parts.headers.get("x-bintu-apikey") {
        return v.to_str().ok().map(|s| s.trim().to_string());
    }
    let auth = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    let auth = auth.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized =
            |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m.to_string());
        let key = key_from(parts)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| unauthorized("send an API key in X-BINTU-APIKEY"))?;
        let principal = state
            .catalog
            .authenticate(&key)
            .await?
            .ok_or_else(|| unauthorized("unknown or revoked API key"))?;
        Ok(Auth(principal))
    }
}
