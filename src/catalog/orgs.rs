//! Organisations and their API keys. Keys are random secrets shown once and stored as SHA-256
//! (the secrets are 256-bit random, so a fast hash is enough), each with a role inside one
//! organisation.

use super::model::{ApiKeyInfo, Organisation, PackageChange, Principal, Role};
use super::{now_rfc3339, random_alnum, Catalog, CatalogError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const ORG_COLUMNS: &str = "hash, name, vod, live_processing, transcoding, secure, created_at";

fn org_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Organisation> {
    Ok(Organisation {
        hash: row.get(0)?,
        name: row.get(1)?,
        vod: row.get(2)?,
        live_processing: row.get(3)?,
        transcoding: row.get(4)?,
        secure: row.get(5)?,
        created_at: row.get(6)?,
    })
}

fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Inserts a key; returns its listing and the secret, which is not stored.
fn insert_key(
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

/// Creates an organisation with every package on and its first admin key.
fn insert_org(conn: &mut Connection, name: &str) -> Result<(Organisation, String), CatalogError> {
    let org = Organisation {
        hash: random_alnum(5),
        name: name.to_string(),
        vod: true,
        live_processing: true,
        transcoding: true,
        secure: true,
        created_at: now_rfc3339(),
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO organisations VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            org.hash,
            org.name,
            org.vod,
            org.live_processing,
            org.transcoding,
            org.secure,
            org.created_at
        ],
    )?;
    let (_, secret) = insert_key(&tx, &org.hash, Role::Admin, Some("first admin key"))?;
    tx.commit()?;
    Ok((org, secret))
}

fn key_from_row(row: &rusqlite::Row<'_>) -> Result<ApiKeyInfo, CatalogError> {
    let role: String = row.get(2)?;
    Ok(ApiKeyInfo {
        id: row.get(0)?,
        org_hash: row.get(1)?,
        role: Role::parse(&role).ok_or_else(|| CatalogError::Corrupt(format!("role {role:?}")))?,
        name: row.get(3)?,
        created_at: row.get(4)?,
        revoked_at: row.get(5)?,
    })
}

pub(super) fn get_org(conn: &Connection, hash: &str) -> Result<Option<Organisation>, CatalogError> {
    Ok(conn
        .query_row(
            &format!("SELECT {ORG_COLUMNS} FROM organisations WHERE hash = ?1"),
            params![hash],
            org_from_row,
        )
        .optional()?)
}

impl Catalog {
    /// Creates an organisation with every package on; returns it and its first admin key.
    pub async fn create_org(&self, name: &str) -> Result<(Organisation, String), CatalogError> {
        let name = name.to_string();
        self.write(move |conn| insert_org(conn, &name)).await
    }

    /// On an empty catalog, creates the default organisation and returns its admin key.
    pub async fn ensure_default_org(&self) -> Result<Option<(Organisation, String)>, CatalogError> {
        self.write(|conn| {
            let count: i64 =
                conn.query_row("SELECT COUNT(*) FROM organisations", [], |r| r.get(0))?;
            if count > 0 {
                return Ok(None);
            }
            insert_org(conn, "default").map(Some)
        })
        .await
    }

    /// One organisation.
    pub async fn get_org(&self, hash: &str) -> Result<Option<Organisation>, CatalogError> {
        let hash = hash.to_string();
        self.read(move |conn| get_org(conn, &hash)).await
    }

    /// Every organisation, oldest first.
    pub async fn list_orgs(&self) -> Result<Vec<Organisation>, CatalogError> {
        self.read(|conn| {
            let sql = format!("SELECT {ORG_COLUMNS} FROM organisations ORDER BY created_at");
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([], org_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Turns an organisation's packages on or off; returns it as it is now.
    pub async fn set_packages(
        &self,
        hash: &str,
        change: PackageChange,
    ) -> Result<Option<Organisation>, CatalogError> {
        let hash = hash.to_string();
        self.write(move |conn| {
            conn.execute(
                "UPDATE organisations SET vod = COALESCE(?2, vod),
                     live_processing = COALESCE(?3, live_processing),
                     transcoding = COALESCE(?4, transcoding), secure = COALESCE(?5, secure)
                 WHERE hash = ?1",
                params![
                    hash,
                    change.vod,
                    change.live_processing,
                    change.transcoding,
                    change.secure
                ],
            )?;
            get_org(conn, &hash)
        })
        .await
    }

    /// Creates a key; returns its listing and the secret, which is not stored.
    pub async fn create_key(
        &self,
        org_hash: &str,
        role: Role,
        name: Option<&str>,
    ) -> Result<(ApiKeyInfo, String), CatalogError> {
        let (org_hash, name) = (org_hash.to_string(), name.map(String::from));
        self.write(move |conn| insert_key(conn, &org_hash, role, name.as_deref()))
            .await
    }

    /// Lists keys, of one organisation or of all, oldest first.
    pub async fn list_keys(&self, org_hash: Option<&str>) -> Result<Vec<ApiKeyInfo>, CatalogError> {
        let org_hash = org_hash.map(String::from);
        self.read(move |conn| {
            super::query_all(
                conn,
                "SELECT id, org_hash, role, name, created_at, revoked_at FROM api_keys
                 WHERE ?1 IS NULL OR org_hash = ?1 ORDER BY created_at",
                params![org_hash],
                key_from_row,
            )
        })
        .await
    }

    /// Revokes a key (of one organisation, or of any); true if a live key with that id
    /// existed.
    pub async fn revoke_key(&self, id: &str, org_hash: Option<&str>) -> Result<bool, CatalogError> {
        let (id, org_hash) = (id.to_string(), org_hash.map(String::from));
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE api_keys SET revoked_at = ?2
                 WHERE id = ?1 AND revoked_at IS NULL AND (?3 IS NULL OR org_hash = ?3)",
                params![id, now_rfc3339(), org_hash],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    /// The principal of a secret, if it is a known, unrevoked key.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>, CatalogError> {
        let digest = sha256_hex(secret);
        self.read(move |conn| {
            let found = conn
                .prepare_cached(
                    "SELECT id, org_hash, role FROM api_keys
                     WHERE key_sha256 = ?1 AND revoked_at IS NULL",
                )?
                .query_row(params![digest], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })
                .optional()?;
            Ok(found.and_then(|(key_id, org_hash, role)| {
                Role::parse(&role).map(|role| Principal {
                    key_id,
                    org_hash,
                    role,
                })
            }))
        })
        .await
    }
}
