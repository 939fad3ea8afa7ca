//! Recordings (VOD files). A row is created, in state `recording`, before the file is; it
//! becomes `done` with its size and duration only after the finalised file is synced, so the
//! catalog never lists a file that is not on disk. Rows left `recording` by a crash are what
//! recovery finalises at the next start.

use super::{now_rfc3339, parse_uuid, query_all, CatalogError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

/// One recording row.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub id: Uuid,
    pub stream_id: Uuid,
    pub session_id: Uuid,
    /// The file, relative to the data folder: `vod/<region>/<orghash>/<streamname>-<n>.mp4`.
    pub path: String,
    pub state: String,
    pub created_at: String,
    pub size: Option<u64>,
    pub duration_secs: Option<f64>,
}

/// A finished recording as a `playout.web` asset.
#[derive(Debug, Clone, PartialEq)]
pub struct VodAsset {
    pub path: String,
    pub session_id: Uuid,
    pub created_at: String,
    pub size: u64,
    pub duration_secs: f64,
}

/// Registers the next file of a stream (`<streamname>-<n>.mp4`, n counting from 1 per stream).
pub fn begin_recording(
    conn: &mut Connection,
    stream_id: Uuid,
    session_id: Uuid,
    folder: &str,
    streamname: &str,
) -> Result<Recording, CatalogError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let last: Option<i64> = tx.query_row(
        "SELECT MAX(seq) FROM recordings WHERE stream_id = ?1",
        params![stream_id.to_string()],
        |r| r.get(0),
    )?;
    let seq = last.unwrap_or(0) + 1;
    let recording = Recording {
        id: Uuid::new_v4(),
        stream_id,
        session_id,
        path: format!("{folder}/{streamname}-{seq}.mp4"),
        state: "recording".into(),
        created_at: now_rfc3339(),
        size: None,
        duration_secs: None,
    };
    tx.execute(
        "INSERT INTO recordings (id, stream_id, session_id, seq, path, state, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'recording', ?6)",
        params![
            recording.id.to_string(),
            stream_id.to_string(),
            session_id.to_string(),
            seq,
            recording.path,
            recording.created_at
        ],
    )?;
    tx.commit()?;
    Ok(recording)
}

/// Marks a recording finished (its file is finalised and synced).
pub fn finish_recording(
    conn: &Connection,
    id: Uuid,
    size: u64,
    duration_secs: f64,
) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE recordings SET state = 'done', finished_at = ?2, size = ?3, duration = ?4,
         error = NULL WHERE id = ?1",
        params![
            id.to_string(),
            now_rfc3339(),
            i64::try_from(size).unwrap_or(i64::MAX),
            duration_secs
        ],
    )?;
    Ok(())
}

/// Marks a recording failed with the reason (no playable file).
pub fn fail_recording(conn: &Connection, id: Uuid, error: &str) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE recordings SET state = 'failed', finished_at = ?2, error = ?3 WHERE id = ?1",
        params![id.to_string(), now_rfc3339(), error],
    )?;
    Ok(())
}

fn recording_from_row(row: &rusqlite::Row<'_>) -> Result<Recording, CatalogError> {
    let id: String = row.get(0)?;
    let stream: String = row.get(1)?;
    let session: String = row.get(2)?;
    let size: Option<i64> = row.get(6)?;
    Ok(Recording {
        id: parse_uuid(&id, "recording id")?,
        stream_id: parse_uuid(&stream, "recording stream")?,
        session_id: parse_uuid(&session, "recording session")?,
        path: row.get(3)?,
        state: row.get(4)?,
        created_at: row.get(5)?,
        size: size.and_then(|s| u64::try_from(s).ok()),
        duration_secs: row.get(7)?,
    })
}

const RECORDING_COLUMNS: &str =
    "id, stream_id, session_id, path, state, created_at, size, duration";

/// Recordings a crash left unfinished.
pub fn open_recordings(conn: &Connection) -> Result<Vec<Recording>, CatalogError> {
    let sql = format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE state = 'recording'");
    query_all(conn, &sql, [], recording_from_row)
}

/// One recording by id.
pub fn get_recording(conn: &Connection, id: Uuid) -> Result<Option<Recording>, CatalogError> {
    let sql = format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE id = ?1");
    conn.query_row(&sql, params![id.to_string()], |row| {
        Ok(recording_from_row(row))
    })
    .optional()?
    .transpose()
}

/// A stream's finished recordings, newest first, at most `limit`.
pub fn list_vod_assets(
    conn: &Connection,
    stream_id: Uuid,
    limit: usize,
) -> Result<Vec<VodAsset>, CatalogError> {
    query_all(
        conn,
        "SELECT path, session_id, created_at, size, duration FROM recordings
         WHERE stream_id = ?1 AND state = 'done' ORDER BY seq DESC LIMIT ?2",
        params![
            stream_id.to_string(),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |row| {
            let session: String = row.get(1)?;
            let size: Option<i64> = row.get(3)?;
            let duration: Option<f64> = row.get(4)?;
            Ok(VodAsset {
                path: row.get(0)?,
                session_id: parse_uuid(&session, "recording session")?,
                created_at: row.get(2)?,
                size: size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                duration_secs: duration.unwrap_or(0.0),
            })
        },
    )
}

/// A session's finished recordings in order (`rec.duration` splits a session into several).
pub fn session_recordings(
    conn: &Connection,
    session_id: Uuid,
) -> Result<Vec<Recording>, CatalogError> {
    let sql = format!(
        "SELECT {RECORDING_COLUMNS} FROM recordings WHERE session_id = ?1 AND state = 'done'
         ORDER BY seq"
    );
    query_all(
        conn,
        &sql,
        params![session_id.to_string()],
        recording_from_row,
    )
}
