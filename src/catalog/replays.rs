//! Replay sessions (HLS rewind buffers, one per session with `replay` processing) and the
//! clips cut from them. A replay row exists from the session's start; `ended_at` is set when
//! its playlist got `#EXT-X-ENDLIST` (at the end, or by recovery after a crash).

use super::{now_rfc3339, parse_uuid, query_all, CatalogError};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

/// One replay session.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub session_id: Uuid,
    pub stream_id: Uuid,
    /// Its folder, relative to the data folder: `hls/<streamname>/<session>`.
    pub path: String,
    pub created_at: String,
    /// RFC 3339 wall-clock time of session time 0 (the first segment's
    /// `EXT-X-PROGRAM-DATE-TIME`): clip requests count seconds from here.
    pub origin: Option<String>,
    pub ended_at: Option<String>,
    pub duration_secs: Option<f64>,
}

/// A clip as a `clip` asset.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub id: Uuid,
    pub stream_id: Uuid,
    pub session_id: Uuid,
    /// The file, relative to the data folder: `clips/<streamname>/<id>.mp4`.
    pub path: String,
    pub created_at: String,
    pub start_secs: f64,
    pub end_secs: f64,
    pub size: u64,
    pub duration_secs: f64,
}

/// Registers a replay session as it starts.
pub fn begin_replay(
    conn: &Connection,
    stream_id: Uuid,
    session_id: Uuid,
    path: &str,
) -> Result<(), CatalogError> {
    conn.execute(
        "INSERT OR IGNORE INTO replays (session_id, stream_id, path, created_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            session_id.to_string(),
            stream_id.to_string(),
            path,
            now_rfc3339()
        ],
    )?;
    Ok(())
}

/// Sets session time 0 of a replay (when its first segment is stored).
pub fn set_replay_origin(
    conn: &Connection,
    session_id: Uuid,
    origin: &str,
) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE replays SET origin = ?2 WHERE session_id = ?1 AND origin IS NULL",
        params![session_id.to_string(), origin],
    )?;
    Ok(())
}

/// Marks a replay ended with the duration its playlist lists.
pub fn finish_replay(
    conn: &Connection,
    session_id: Uuid,
    duration_secs: f64,
) -> Result<(), CatalogError> {
    conn.execute(
        "UPDATE replays SET ended_at = ?2, duration = ?3 WHERE session_id = ?1",
        params![session_id.to_string(), now_rfc3339(), duration_secs],
    )?;
    Ok(())
}

const REPLAY_COLUMNS: &str = "session_id, stream_id, path, created_at, origin, ended_at, duration";

fn replay_from_row(row: &rusqlite::Row<'_>) -> Result<Replay, CatalogError> {
    Ok(Replay {
        session_id: parse_uuid(&row.get::<_, String>(0)?, "replay session")?,
        stream_id: parse_uuid(&row.get::<_, String>(1)?, "replay stream")?,
        path: row.get(2)?,
        created_at: row.get(3)?,
        origin: row.get(4)?,
        ended_at: row.get(5)?,
        duration_secs: row.get(6)?,
    })
}

fn query_replays(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Replay>, CatalogError> {
    let sql = format!("SELECT {REPLAY_COLUMNS} FROM replays {filter}");
    query_all(conn, &sql, args, replay_from_row)
}

/// Replays a crash left open.
pub fn open_replays(conn: &Connection) -> Result<Vec<Replay>, CatalogError> {
    query_replays(conn, "WHERE ended_at IS NULL", [])
}

/// A stream's replays, newest first, at most `limit`.
pub fn list_replays(
    conn: &Connection,
    stream_id: Uuid,
    limit: usize,
) -> Result<Vec<Replay>, CatalogError> {
    query_replays(
        conn,
        "WHERE stream_id = ?1 ORDER BY created_at DESC LIMIT ?2",
        params![
            stream_id.to_string(),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
    )
}

/// One session's replay.
pub fn get_replay(conn: &Connection, session_id: Uuid) -> Result<Option<Replay>, CatalogError> {
    conn.query_row(
        &format!("SELECT {REPLAY_COLUMNS} FROM replays WHERE session_id = ?1"),
        params![session_id.to_string()],
        |row| Ok(replay_from_row(row)),
    )
    .optional()?
    .transpose()
}

/// Lists a clip whose file is written and synced.
pub fn insert_clip(conn: &Connection, clip: &Clip) -> Result<(), CatalogError> {
    conn.execute(
        "INSERT INTO clips (id, stream_id, session_id, path, created_at, start, end, size, duration)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            clip.id.to_string(),
            clip.stream_id.to_string(),
            clip.session_id.to_string(),
            clip.path,
            clip.created_at,
            clip.start_secs,
            clip.end_secs,
            i64::try_from(clip.size).unwrap_or(i64::MAX),
            clip.duration_secs
        ],
    )?;
    Ok(())
}

/// A stream's clips, newest first, at most `limit`.
pub fn list_clips(
    conn: &Connection,
    stream_id: Uuid,
    limit: usize,
) -> Result<Vec<Clip>, CatalogError> {
    query_all(
        conn,
        "SELECT id, stream_id, session_id, path, created_at, start, end, size, duration
         FROM clips WHERE stream_id = ?1 ORDER BY created_at DESC LIMIT ?2",
        params![
            stream_id.to_string(),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |row| {
            let size: i64 = row.get(7)?;
            Ok(Clip {
                id: parse_uuid(&row.get::<_, String>(0)?, "clip id")?,
                stream_id: parse_uuid(&row.get::<_, String>(1)?, "clip stream")?,
                session_id: parse_uuid(&row.get::<_, String>(2)?, "clip session")?,
                path: row.get(3)?,
                created_at: row.get(4)?,
                start_secs: row.get(5)?,
                end_secs: row.get(6)?,
                size: u64::try_from(size).unwrap_or(0),
                duration_secs: row.get(8)?,
            })
        },
    )
}
