//! API keys: random secrets shown once, stored as SHA-256 (the secrets are 256-bit random,
//! so a fast hash is enough), each with a role inside one organisation.

use super::{now_rfc3339, random_alnum, CatalogError};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a key may do. Ordered: a higher role can do everything a lower one can.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
pub enum Role {
    #[serde(rename = "nanoReadOnly")]
    ReadOnly,
    #[serde(rename = "nanoUser")]
    User,
    #[serde(rename = "nanoAdmin")]
    Admin,
}

impl Role {
    /// The bintu role name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "nanoReadOnly",
            Role::User => "nanoUser",
            Role::Admin => "nanoAdmin",
        }
    }

    /// Parses a bintu role name.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "nanoReadOnly" => Some(Role::ReadOnly),
            "nanoUser" => Some(Role::User),
            "nanoAdmin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is calling: the organisation and role of an authenticated key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub org_hash: String,
    pub role: Role,
}

/// A key as listed (never with its secret).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: String,
    pub org_hash: String,
    pub role: Role,
    pub name: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a key; returns its listing and the secret, which is not stored.
pub fn create_key(
    conn: &Connection,
    org_hash: &str,
    role: Role,
    name: Option<&str>,
) -> Result<(ApiKeyInfo, String), CatalogError> {
    let secret = format!("rl_{}", random_alnum(43));
    let info = ApiKeyInfo {
        id: Uuid::new_v4().to_string(),
        org_hash: org_hash.to_string(),
        role,
        name: name.map(String::from),
        created_at: now_rfc3339(),
        revoked_at: None,
    };
    conn.execute(
        "INSERT INTO api_keys (id, org_hash, role, name, key_sha256, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            info.id,
            info.org_hash,
            role.as_str(),
            info.name,
            sha256_hex(&secret),
            info.created_at
        ],
    )?;
    Ok((info, secret))
}

fn row_to_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyInfo> {
    let role: String = row.get(2)?;
    Ok(ApiKeyInfo {
        id: row.get(0)?,
        org_hash: row.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::ReadOnly),
        name: row.get(3)?,
        created_at: row.get(4)?,
        revoked_at: row.get(5)?,
    })
}

/// Lists keys, of one organisation or of all.
pub fn list_keys(
    conn: &Connection,
    org_hash: Option<&str>,
) -> Result<Vec<ApiKeyInfo>, CatalogError> {
    let mut stmt = conn.prepare(
        "SELECT id, org_hash, role, name, created_at, revoked_at FROM api_keys
         WHERE ?1 IS NULL OR org_hash = ?1 ORDER BY created_at",
    )?;
    let rows = stmt.query_map(params![org_hash], row_to_info)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes a key (of one organisation, or of any); true if a live key with that id existed.
pub fn revoke_key(
    conn: &Connection,
    id: &str,
    org_hash: Option<&str>,
) -> Result<bool, CatalogError> {
    let changed = conn.execute(
        "UPDATE api_keys SET revoked_at = ?2
         WHERE id = ?1 AND revoked_at IS NULL AND (?3 IS NULL OR org_hash = ?3)",
        params![id, now_rfc3339(), org_hash],
    )?;
    Ok(changed == 1)
}

/// The principal of a secret, if it is a known, unrevoked key.
pub fn authenticate(conn: &Connection, secret: &str) -> Result<Option<Principal>, CatalogError> {
    let found = conn
        .query_row(
            "SELECT id, org_hash, role FROM api_keys WHERE key_sha256 = ?1 AND revoked_at IS NULL",
            params![sha256_hex(secret)],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?;
    Ok(found.and_then(|(key_id, org_hash, role)| {
        Role::parse(&role).map(|role| Principal {
            key_id,
            org_hash,
            role,
        })
    }))
}
