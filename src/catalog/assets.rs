//! Assets: recordings (VOD files), replay sessions and clips, and the reads that show them
//! with a stream or its sessions.
//!
//! A recording row is created, in state `recording`, before its file; it becomes `done` with
//! its size and duration only after the finalised file is synced, so the catalog never lists
//! a file that is not on disk, and rows left `recording` by a crash are what recovery
//! finalises at the next start. A replay row exists from its session's start; `ended_at` is
//! set when its playlist got `#EXT-X-ENDLIST` (at the end, or by recovery). A clip is listed
//! once its file is written and synced.

use super::model::{Clip, Recording, Replay, SessionHistory, StreamAssets, VodAsset};
use super::pictures::latest_pictures;
use super::sessions::list_sessions;
use super::streams::group_streams;
use super::{now_rfc3339, parse_uuid, query_all, to_i64, to_u64, Catalog, CatalogError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

const RECORDING_COLUMNS: &str =
    "id, stream_id, session_id, path, state, created_at, size, duration";

fn recording_from_row(row: &rusqlite::Row<'_>) -> Result<Recording, CatalogError> {
    let size: Option<i64> = row.get(6)?;
    Ok(Recording {
        id: parse_uuid(&row.get::<_, String>(0)?, "recording id")?,
        stream_id: parse_uuid(&row.get::<_, String>(1)?, "recording stream")?,
        session_id: parse_uuid(&row.get::<_, String>(2)?, "recording session")?,
        key: row.get(3)?,
        state: row.get(4)?,
        created_at: row.get(5)?,
        size: size.map(|s| to_u64(s, "size")).transpose()?,
        duration_secs: row.get(7)?,
    })
}

/// A stream's finished recordings, newest first, at most `limit`.
fn vod_assets(
    conn: &Connection,
    stream_id: Uuid,
    limit: usize,
) -> Result<Vec<VodAsset>, CatalogError> {
    query_all(
        conn,
        "SELECT path, session_id, created_at, size, duration FROM recordings
         WHERE stream_id = ?1 AND state = 'done' ORDER BY seq DESC LIMIT ?2",
        params![stream_id.to_string(), limit_param(limit)],
        |row| {
            let size: Option<i64> = row.get(3)?;
            let duration: Option<f64> = row.get(4)?;
            Ok(VodAsset {
                key: row.get(0)?,
                session_id: parse_uuid(&row.get::<_, String>(1)?, "recording session")?,
                created_at: row.get(2)?,
                size: size.map(|s| to_u64(s, "size")).transpose()?.unwrap_or(0),
                duration_secs: duration.unwrap_or(0.0),
            })
        },
    )
}

const REPLAY_COLUMNS: &str = "session_id, stream_id, path, created_at, origin, ended_at, duration";

fn replay_from_row(row: &rusqlite::Row<'_>) -> Result<Replay, CatalogError> {
    Ok(Replay {
        session_id: parse_uuid(&row.get::<_, String>(0)?, "replay session")?,
        stream_id: parse_uuid(&row.get::<_, String>(1)?, "replay stream")?,
        key: row.get(2)?,
        created_at: row.get(3)?,
        origin: row.get(4)?,
        ended_at: row.get(5)?,
        duration_secs: row.get(6)?,
    })
}

fn replays(conn: &Connection, stream_id: Uuid, limit: usize) -> Result<Vec<Replay>, CatalogError> {
    query_all(
        conn,
        &format!(
            "SELECT {REPLAY_COLUMNS} FROM replays WHERE stream_id = ?1
             ORDER BY created_at DESC LIMIT ?2"
        ),
        params![stream_id.to_string(), limit_param(limit)],
        replay_from_row,
    )
}

fn clips(conn: &Connection, stream_id: Uuid, limit: usize) -> Result<Vec<Clip>, CatalogError> {
    query_all(
        conn,
        "SELECT id, stream_id, session_id, path, created_at, start, end, size, duration
         FROM clips WHERE stream_id = ?1 ORDER BY created_at DESC LIMIT ?2",
        params![stream_id.to_string(), limit_param(limit)],
        |row| {
            Ok(Clip {
                id: parse_uuid(&row.get::<_, String>(0)?, "clip id")?,
                stream_id: parse_uuid(&row.get::<_, String>(1)?, "clip stream")?,
                session_id: parse_uuid(&row.get::<_, String>(2)?, "clip session")?,
                key: row.get(3)?,
                created_at: row.get(4)?,
                start_secs: row.get(5)?,
                end_secs: row.get(6)?,
                size: to_u64(row.get(7)?, "clip size")?,
                duration_secs: row.get(8)?,
            })
        },
    )
}

/// A `LIMIT` value (`usize::MAX`: everything).
fn limit_param(limit: usize) -> i64 {
    to_i64(u64::try_from(limit).unwrap_or(u64::MAX))
}

impl Catalog {
    /// Registers the next recording of a stream (numbered from 1 per stream) in state
    /// `recording`; `key_for(n)` names its file (the storage layout decides names).
    pub async fn begin_recording(
        &self,
        stream_id: Uuid,
        session_id: Uuid,
        key_for: impl FnOnce(u32) -> String + Send + 'static,
    ) -> Result<Recording, CatalogError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let last: Option<u32> = tx.query_row(
                "SELECT MAX(seq) FROM recordings WHERE stream_id = ?1",
                params![stream_id.to_string()],
                |r| r.get(0),
            )?;
            let seq = last.unwrap_or(0) + 1;
            let recording = Recording {
                id: Uuid::new_v4(),
                stream_id,
                session_id,
                key: key_for(seq),
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
                    recording.key,
                    recording.created_at
                ],
            )?;
            tx.commit()?;
            Ok(recording)
        })
        .await
    }

    /// Marks a recording finished (its file is finalised and synced).
    pub async fn finish_recording(
        &self,
        id: Uuid,
        size: u64,
        duration_secs: f64,
    ) -> Result<(), CatalogError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE recordings SET state = 'done', finished_at = ?2, size = ?3,
                 duration = ?4, error = NULL WHERE id = ?1",
                params![id.to_string(), now_rfc3339(), to_i64(size), duration_secs],
            )?;
            Ok(())
        })
        .await
    }

    /// Marks a recording failed with the reason (no playable file).
    pub async fn fail_recording(&self, id: Uuid, error: &str) -> Result<(), CatalogError> {
        let error = error.to_string();
        self.write(move |conn| {
            conn.execute(
                "UPDATE recordings SET state = 'failed', finished_at = ?2, error = ?3
                 WHERE id = ?1",
                params![id.to_string(), now_rfc3339(), error],
            )?;
            Ok(())
        })
        .await
    }

    /// Recordings a crash left unfinished.
    pub async fn open_recordings(&self) -> Result<Vec<Recording>, CatalogError> {
        self.read(|conn| {
            let sql =
                format!("SELECT {RECORDING_COLUMNS} FROM recordings WHERE state = 'recording'");
            query_all(conn, &sql, [], recording_from_row)
        })
        .await
    }

    /// A session's finished recordings in order (`rec.duration` splits a session into
    /// several).
    pub async fn session_recordings(
        &self,
        session_id: Uuid,
    ) -> Result<Vec<Recording>, CatalogError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {RECORDING_COLUMNS} FROM recordings
                 WHERE session_id = ?1 AND state = 'done' ORDER BY seq"
            );
            query_all(
                conn,
                &sql,
                params![session_id.to_string()],
                recording_from_row,
            )
        })
        .await
    }

    /// Registers a replay session as it starts; `key` is its folder.
    pub async fn begin_replay(
        &self,
        stream_id: Uuid,
        session_id: Uuid,
        key: &str,
    ) -> Result<(), CatalogError> {
        let key = key.to_string();
        self.write(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO replays (session_id, stream_id, path, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    session_id.to_string(),
                    stream_id.to_string(),
                    key,
                    now_rfc3339()
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Sets session time 0 of a replay (when its first segment is stored).
    pub async fn set_replay_origin(
        &self,
        session_id: Uuid,
        origin: &str,
    ) -> Result<(), CatalogError> {
        let origin = origin.to_string();
        self.write(move |conn| {
            conn.execute(
                "UPDATE replays SET origin = ?2 WHERE session_id = ?1 AND origin IS NULL",
                params![session_id.to_string(), origin],
            )?;
            Ok(())
        })
        .await
    }

    /// Marks a replay ended with the duration its playlist lists.
    pub async fn finish_replay(
        &self,
        session_id: Uuid,
        duration_secs: f64,
    ) -> Result<(), CatalogError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE replays SET ended_at = ?2, duration = ?3 WHERE session_id = ?1",
                params![session_id.to_string(), now_rfc3339(), duration_secs],
            )?;
            Ok(())
        })
        .await
    }

    /// Keeps what a multivariant playlist says of a replay (JSON of `hls::VariantInfo`).
    pub async fn set_replay_variant(
        &self,
        session_id: Uuid,
        variant: &crate::hls::VariantInfo,
    ) -> Result<(), CatalogError> {
        let json = serde_json::to_string(variant)
            .map_err(|e| CatalogError::Corrupt(format!("variant: {e}")))?;
        self.write(move |conn| {
            conn.execute(
                "UPDATE replays SET variant = ?2 WHERE session_id = ?1",
                params![session_id.to_string(), json],
            )?;
            Ok(())
        })
        .await
    }

    /// The replays of a stream group's session: the passthrough's (`session_id`) and its
    /// transcodes' (sessions that name it as their group session), each with its stored
    /// variant figures (none for a replay still running or recovered after a crash).
    pub async fn group_replays(
        &self,
        session_id: Uuid,
    ) -> Result<Vec<(Replay, Option<crate::hls::VariantInfo>)>, CatalogError> {
        self.read(move |conn| {
            let columns = REPLAY_COLUMNS
                .split(", ")
                .map(|c| format!("r.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {columns}, r.variant FROM replays r JOIN sessions s ON s.id = r.session_id
                 WHERE s.id = ?1 OR s.group_session = ?1"
            );
            let count = REPLAY_COLUMNS.split(", ").count();
            query_all(conn, &sql, params![session_id.to_string()], |row| {
                let replay = replay_from_row(row)?;
                let variant: Option<String> = row.get(count)?;
                Ok((replay, variant.and_then(|v| serde_json::from_str(&v).ok())))
            })
        })
        .await
    }

    /// Replays a crash left open.
    pub async fn open_replays(&self) -> Result<Vec<Replay>, CatalogError> {
        self.read(|conn| {
            let sql = format!("SELECT {REPLAY_COLUMNS} FROM replays WHERE ended_at IS NULL");
            query_all(conn, &sql, [], replay_from_row)
        })
        .await
    }

    /// One session's replay.
    pub async fn get_replay(&self, session_id: Uuid) -> Result<Option<Replay>, CatalogError> {
        self.read(move |conn| {
            conn.query_row(
                &format!("SELECT {REPLAY_COLUMNS} FROM replays WHERE session_id = ?1"),
                params![session_id.to_string()],
                |row| Ok(replay_from_row(row)),
            )
            .optional()?
            .transpose()
        })
        .await
    }

    /// Lists a clip whose file is written and synced.
    pub async fn insert_clip(&self, clip: Clip) -> Result<(), CatalogError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO clips (id, stream_id, session_id, path, created_at, start, end,
                     size, duration)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    clip.id.to_string(),
                    clip.stream_id.to_string(),
                    clip.session_id.to_string(),
                    clip.key,
                    clip.created_at,
                    clip.start_secs,
                    clip.end_secs,
                    to_i64(clip.size),
                    clip.duration_secs
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// What `GET /stream/{id}` shows of a stream of `org_hash` in group `group`: its newest
    /// `limit` assets of each kind, its group's members and its latest pictures with their
    /// newest `limit` history entries — one catalog job.
    pub async fn stream_assets(
        &self,
        org_hash: &str,
        stream_id: Uuid,
        group: Uuid,
        limit: usize,
    ) -> Result<StreamAssets, CatalogError> {
        let org_hash = org_hash.to_string();
        self.read(move |conn| {
            Ok(StreamAssets {
                vods: vod_assets(conn, stream_id, limit)?,
                replays: replays(conn, stream_id, limit)?,
                clips: clips(conn, stream_id, limit)?,
                members: group_streams(conn, &org_hash, group)?,
                pictures: latest_pictures(conn, &[stream_id], limit)?
                    .pop()
                    .unwrap_or_default(),
            })
        })
        .await
    }

    /// A stream's sessions, newest first, with every asset they produced — one catalog job.
    pub async fn session_history(&self, stream_id: Uuid) -> Result<SessionHistory, CatalogError> {
        self.read(move |conn| {
            Ok(SessionHistory {
                sessions: list_sessions(conn, stream_id)?,
                vods: vod_assets(conn, stream_id, usize::MAX)?,
                replays: replays(conn, stream_id, usize::MAX)?,
                clips: clips(conn, stream_id, usize::MAX)?,
            })
        })
        .await
    }
}
