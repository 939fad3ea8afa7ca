//! Publishing sessions (SPEC "Session"): opening one marks the stream live, closing it marks
//! the stream ended, crash recovery closes what was left open. At most one session of a
//! stream is open at a time, and the database says so (`sessions_one_open`), so a second
//! publisher is refused even when it reaches another process sharing the catalog.

use super::model::{App, EndReason, PublishRefusal, Session, StreamState};
use super::{now_rfc3339, parse_uuid, query_all, Catalog, CatalogError};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

/// Marks a stream live and opens a session, unless its state or an open session forbids it.
fn begin_publish(
    conn: &mut Connection,
    stream_id: Uuid,
    app: App,
    node_id: &str,
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
        app: app.as_str().to_string(),
        node_id: node_id.to_string(),
        started_at: now.clone(),
        ended_at: None,
        end_reason: None,
    };
    let inserted = tx.execute(
        "INSERT INTO sessions (id, stream_id, app, started_at, node_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            session.id.to_string(),
            stream_id.to_string(),
            session.app,
            now,
            node_id
        ],
    );
    match inserted {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
            return Ok(Err(PublishRefusal::AlreadyPublishing));
        }
        other => other?,
    };
    tx.execute(
        "UPDATE streams SET state = 'live', updated_at = ?2 WHERE id = ?1",
        params![stream_id.to_string(), now],
    )?;
    tx.commit()?;
    Ok(Ok(session))
}

/// A stream's sessions, newest first.
pub(super) fn list_sessions(
    conn: &Connection,
    stream_id: Uuid,
) -> Result<Vec<Session>, CatalogError> {
    query_all(
        conn,
        "SELECT id, app, started_at, ended_at, end_reason, node_id FROM sessions
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
                node_id: row.get(5)?,
            })
        },
    )
}

impl Catalog {
    /// Opens a session of `stream_id` published to `app` on node `node_id` and marks the
    /// stream live — or says why not (locked, deleted, already publishing).
    pub async fn begin_publish(
        &self,
        stream_id: Uuid,
        app: App,
        node_id: &str,
    ) -> Result<Result<Session, PublishRefusal>, CatalogError> {
        let node_id = node_id.to_string();
        self.write(move |conn| begin_publish(conn, stream_id, app, &node_id))
            .await
    }

    /// Marks `session_id` (a transcode's) as part of the stream group session `group_session`
    /// (its passthrough's), so the group's replay finds it.
    pub async fn set_group_session(
        &self,
        session_id: Uuid,
        group_session: Uuid,
    ) -> Result<(), CatalogError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE sessions SET group_session = ?2 WHERE id = ?1",
                params![session_id.to_string(), group_session.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    /// Closes a session and, if the stream is still `live`, marks it `ended`.
    pub async fn end_publish(
        &self,
        session_id: Uuid,
        reason: EndReason,
    ) -> Result<(), CatalogError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_rfc3339();
            tx.execute(
                "UPDATE sessions SET ended_at = ?2, end_reason = ?3
                 WHERE id = ?1 AND ended_at IS NULL",
                params![session_id.to_string(), now, reason.as_str()],
            )?;
            tx.execute(
                "UPDATE streams SET state = 'ended', updated_at = ?2
                 WHERE state = 'live' AND id = (SELECT stream_id FROM sessions WHERE id = ?1)",
                params![session_id.to_string(), now],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Closes sessions left open by a crash as `recovered` (with SQLite there is one node, so
    /// every open session is this node's); returns how many.
    pub async fn recover_open_sessions(&self) -> Result<usize, CatalogError> {
        self.write(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_rfc3339();
            let closed = tx.execute(
                "UPDATE sessions SET ended_at = ?1, end_reason = 'recovered'
                 WHERE ended_at IS NULL",
                params![now],
            )?;
            tx.execute(
                "UPDATE streams SET state = 'ended', updated_at = ?1 WHERE state = 'live'",
                params![now],
            )?;
            tx.commit()?;
            Ok(closed)
        })
        .await
    }

    /// A stream's sessions, newest first.
    pub async fn list_sessions(&self, stream_id: Uuid) -> Result<Vec<Session>, CatalogError> {
        self.read(move |conn| list_sessions(conn, stream_id)).await
    }
}
