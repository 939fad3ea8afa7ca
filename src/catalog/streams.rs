//! Organisations, streams and sessions, and the state changes of publishing (SPEC "Concepts").

use super::{create_key, now_rfc3339, parse_uuid, query_all, random_alnum, CatalogError, Role};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use uuid::Uuid;

/// An organisation and its packages.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Organisation {
    pub hash: String,
    pub name: String,
    pub vod: bool,
    pub live_processing: bool,
    pub transcoding: bool,
    pub secure: bool,
    pub created_at: String,
}

/// Stream states (SPEC "States").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    Created,
    Live,
    Ended,
    Locked,
    Deleted,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Created => "created",
            StreamState::Live => "live",
            StreamState::Ended => "ended",
            StreamState::Locked => "locked",
            StreamState::Deleted => "deleted",
        }
    }

    /// The state a name (`live`, …) names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::parse(name).ok()
    }

    pub(super) fn parse(s: &str) -> Result<Self, CatalogError> {
        Ok(match s {
            "created" => StreamState::Created,
            "live" => StreamState::Live,
            "ended" => StreamState::Ended,
            "locked" => StreamState::Locked,
            "deleted" => StreamState::Deleted,
            other => return Err(CatalogError::Corrupt(format!("stream state {other:?}"))),
        })
    }
}

/// Why a session ended (SPEC "Session").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    ClientClosed,
    Timeout,
    Stopped,
    Error,
    Shutdown,
    Recovered,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::ClientClosed => "client_closed",
            EndReason::Timeout => "timeout",
            EndReason::Stopped => "stopped",
            EndReason::Error => "error",
            EndReason::Shutdown => "shutdown",
            EndReason::Recovered => "recovered",
        }
    }
}

/// A stream row.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub id: Uuid,
    pub org_hash: String,
    pub streamname: String,
    pub state: StreamState,
    pub tags: Vec<String>,
    /// Validated `processing` list in the bintu shape.
    pub processing: serde_json::Value,
    pub streamgroup: Uuid,
    pub index: u32,
    pub profile: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// One ingest, publish to unpublish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub id: Uuid,
    #[serde(skip)]
    pub stream_id: Uuid,
    pub app: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
}

/// What a new stream is made from (already validated).
#[derive(Debug, Clone, Default)]
pub struct NewStream {
    pub tags: Vec<String>,
    pub processing: serde_json::Value,
}

pub(super) fn org_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Organisation> {
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

/// Creates an organisation with every package on and its first admin key.
pub fn create_org(conn: &Connection, name: &str) -> Result<(Organisation, String), CatalogError> {
    let org = Organisation {
        hash: random_alnum(5),
        name: name.to_string(),
        vod: true,
        live_processing: true,
        transcoding: true,
        secure: true,
        created_at: now_rfc3339(),
    };
    let tx = conn.unchecked_transaction()?;
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
    let (_, secret) = create_key(&tx, &org.hash, Role::Admin, Some("first admin key"))?;
    tx.commit()?;
    Ok((org, secret))
}

/// On an empty catalog, creates the default organisation and returns its admin key.
pub fn ensure_default_org(
    conn: &Connection,
) -> Result<Option<(Organisation, String)>, CatalogError> {
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM organisations", [], |r| r.get(0))?;
    if count > 0 {
        return Ok(None);
    }
    create_org(conn, "default").map(Some)
}

/// One organisation.
pub fn get_org(conn: &Connection, hash: &str) -> Result<Option<Organisation>, CatalogError> {
    Ok(conn
        .query_row(
            "SELECT hash, name, vod, live_processing, transcoding, secure, created_at
             FROM organisations WHERE hash = ?1",
            params![hash],
            org_from_row,
        )
        .optional()?)
}

pub(super) const STREAM_COLUMNS: &str =
    "id, org_hash, streamname, state, tags, processing, streamgroup, \
                              idx, profile, created_at, updated_at";

fn stream_from_row(row: &rusqlite::Row<'_>) -> Result<Stream, CatalogError> {
    let corrupt = |what: &str| CatalogError::Corrupt(what.to_string());
    let id: String = row.get(0)?;
    let tags: String = row.get(4)?;
    let processing: String = row.get(5)?;
    let group: String = row.get(6)?;
    let state: String = row.get(3)?;
    Ok(Stream {
        id: Uuid::parse_str(&id).map_err(|_| corrupt("stream id"))?,
        org_hash: row.get(1)?,
        streamname: row.get(2)?,
        state: StreamState::parse(&state)?,
        tags: serde_json::from_str(&tags).map_err(|_| corrupt("stream tags"))?,
        processing: serde_json::from_str(&processing).map_err(|_| corrupt("processing"))?,
        streamgroup: Uuid::parse_str(&group).map_err(|_| corrupt("stream group"))?,
        index: row.get(7)?,
        profile: row.get(8)?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
    })
}

fn query_stream(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> Result<Option<Stream>, CatalogError> {
    let sql = format!("SELECT {STREAM_COLUMNS} FROM streams WHERE {condition}");
    Ok(query_streams(conn, &sql, params)?.into_iter().next())
}

/// Every stream `sql` (selecting `STREAM_COLUMNS`) finds.
pub(super) fn query_streams(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Stream>, CatalogError> {
    super::query_all(conn, sql, params, stream_from_row)
}

/// A stream by id, whatever its organisation (for code that already checked it).
pub(super) fn stream_by_id(conn: &Connection, id: Uuid) -> Result<Option<Stream>, CatalogError> {
    query_stream(conn, "id = ?1", params![id.to_string()])
}

/// Inserts one stream row (and its tag rows) with a fresh streamname; returns its id.
#[allow(clippy::too_many_arguments)]
pub(super) fn insert_stream(
    conn: &Connection,
    org_hash: &str,
    id: Uuid,
    group: Uuid,
    index: u32,
    profile: Option<&str>,
    tags: &[String],
    processing: &serde_json::Value,
    now: &str,
) -> Result<Uuid, CatalogError> {
    let processing = if processing.is_null() {
        serde_json::json!([])
    } else {
        processing.clone()
    };
    // Streamnames are unique; retry the rare collision of the 5 random characters.
    for _ in 0..8 {
        let streamname = format!("{org_hash}-{}", random_alnum(5));
        let inserted = conn.execute(
            "INSERT OR IGNORE INTO streams (id, org_hash, streamname, state, tags, processing,
                 streamgroup, idx, profile, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'created', ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![
                id.to_string(),
                org_hash,
                streamname,
                super::manage::tags_json(tags),
                processing.to_string(),
                group.to_string(),
                index,
                profile,
                now
            ],
        )?;
        if inserted == 1 {
            super::manage::write_tag_rows(conn, id, tags)?;
            return Ok(id);
        }
    }
    Err(CatalogError::Corrupt(
        "no free streamname after 8 tries".into(),
    ))
}

/// Creates a single stream (its own stream group) in an organisation.
pub fn create_stream(
    conn: &Connection,
    org_hash: &str,
    new: &NewStream,
) -> Result<Stream, CatalogError> {
    let id = Uuid::new_v4();
    let tx = conn.unchecked_transaction()?;
    insert_stream(
        &tx,
        org_hash,
        id,
        id,
        0,
        None,
        &new.tags,
        &new.processing,
        &now_rfc3339(),
    )?;
    let stream = stream_by_id(&tx, id)?
        .ok_or_else(|| CatalogError::Corrupt("inserted stream vanished".into()))?;
    tx.commit()?;
    Ok(stream)
}

/// A stream of an organisation by id (other organisations' streams are not found).
pub fn get_stream(
    conn: &Connection,
    org_hash: &str,
    id: Uuid,
) -> Result<Option<Stream>, CatalogError> {
    query_stream(
        conn,
        "id = ?1 AND org_hash = ?2",
        params![id.to_string(), org_hash],
    )
}

/// The stream an RTMP key names: its streamname (case-sensitive) or its id.
pub fn find_stream_by_key(conn: &Connection, key: &str) -> Result<Option<Stream>, CatalogError> {
    query_stream(conn, "streamname = ?1 OR id = ?1", params![key])
}

/// Why publishing was refused by the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishRefusal {
    Locked,
    Deleted,
}

/// Marks a stream live and opens a session, unless its state forbids publishing.
pub fn begin_publish(
    conn: &mut Connection,
    stream_id: Uuid,
    app: &str,
) -> Result<Result<Session, PublishRefusal>, CatalogError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let state: Option<String> = tx
        .query_row(
            "SELECT state FROM streams WHERE id = ?1",
            params![stream_id.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    match state.as_deref().map(StreamState::parse).transpose()? {
        Some(StreamState::Locked) => return Ok(Err(PublishRefusal::Locked)),
        Some(StreamState::Deleted) | None => return Ok(Err(PublishRefusal::Deleted)),
        _ => {}
    }
    let now = now_rfc3339();
    let session = Session {
        id: Uuid::new_v4(),
        stream_id,
        app: app.to_string(),
        started_at: now.clone(),
        ended_at: None,
        end_reason: None,
    };
    tx.execute(
        "UPDATE streams SET state = 'live', updated_at = ?2 WHERE id = ?1",
        params![stream_id.to_string(), now],
    )?;
    tx.execute(
        "INSERT INTO sessions (id, stream_id, app, started_at) VALUES (?1, ?2, ?3, ?4)",
        params![session.id.to_string(), stream_id.to_string(), app, now],
    )?;
    tx.commit()?;
    Ok(Ok(session))
}

/// Closes a session and, if the stream is still `live`, marks it `ended`.
pub fn end_publish(
    conn: &mut Connection,
    session_id: Uuid,
    reason: EndReason,
) -> Result<(), CatalogError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_rfc3339();
    tx.execute(
        "UPDATE sessions SET ended_at = ?2, end_reason = ?3 WHERE id = ?1 AND ended_at IS NULL",
        params![session_id.to_string(), now, reason.as_str()],
    )?;
    tx.execute(
        "UPDATE streams SET state = 'ended', updated_at = ?2
         WHERE state = 'live' AND id = (SELECT stream_id FROM sessions WHERE id = ?1)",
        params![session_id.to_string(), now],
    )?;
    tx.commit()?;
    Ok(())
}

/// Closes sessions left open by a crash as `recovered`; returns how many.
pub fn recover_open_sessions(conn: &mut Connection) -> Result<usize, CatalogError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_rfc3339();
    let closed = tx.execute(
        "UPDATE sessions SET ended_at = ?1, end_reason = 'recovered' WHERE ended_at IS NULL",
        params![now],
    )?;
    tx.execute(
        "UPDATE streams SET state = 'ended', updated_at = ?1 WHERE state = 'live'",
        params![now],
    )?;
    tx.commit()?;
    Ok(closed)
}

/// A stream's sessions, newest first.
pub fn list_sessions(conn: &Connection, stream_id: Uuid) -> Result<Vec<Session>, CatalogError> {
    query_all(
        conn,
        "SELECT id, app, started_at, ended_at, end_reason FROM sessions
         WHERE stream_id = ?1 ORDER BY started_at DESC, rowid DESC",
        params![stream_id.to_string()],
        |row| {
            Ok(Session {
                id: parse_uuid(&row.get::<_, String>(0)?, "session id")?,
                stream_id,
                app: row.get(1)?,
                started_at: row.get(2)?,
                ended_at: row.get(3)?,
                end_reason: row.get(4)?,
            })
        },
    )
}
