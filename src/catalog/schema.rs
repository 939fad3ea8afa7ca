//! Numbered schema migrations; `PRAGMA user_version` holds how many have run.

use super::CatalogError;
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: organisations, keys, streams, sessions.
    "CREATE TABLE organisations (
        hash TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        vod INTEGER NOT NULL,
        live_processing INTEGER NOT NULL,
        transcoding INTEGER NOT NULL,
        secure INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        org_hash TEXT NOT NULL REFERENCES organisations(hash),
        role TEXT NOT NULL,
        name TEXT,
        key_sha256 TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE TABLE streams (
        id TEXT PRIMARY KEY,
        org_hash TEXT NOT NULL REFERENCES organisations(hash),
        streamname TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        tags TEXT NOT NULL,
        processing TEXT NOT NULL,
        streamgroup TEXT NOT NULL,
        idx INTEGER NOT NULL,
        profile TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX streams_org_created ON streams(org_hash, created_at);
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        stream_id TEXT NOT NULL REFERENCES streams(id),
        app TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        end_reason TEXT
    );
    CREATE INDEX sessions_stream_started ON sessions(stream_id, started_at);
    CREATE INDEX sessions_open ON sessions(ended_at) WHERE ended_at IS NULL;",
    // 2: recordings (VOD files); listed as assets once `state` is 'done'.
    "CREATE TABLE recordings (
        id TEXT PRIMARY KEY,
        stream_id TEXT NOT NULL REFERENCES streams(id),
        session_id TEXT NOT NULL REFERENCES sessions(id),
        seq INTEGER NOT NULL,
        path TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        finished_at TEXT,
        size INTEGER,
        duration REAL,
        error TEXT
    );
    CREATE INDEX recordings_stream ON recordings(stream_id, created_at);
    CREATE INDEX recordings_open ON recordings(state) WHERE state = 'recording';",
    // 3: replay sessions (HLS rewind buffers) and clips cut from them.
    "CREATE TABLE replays (
        session_id TEXT PRIMARY KEY REFERENCES sessions(id),
        stream_id TEXT NOT NULL REFERENCES streams(id),
        path TEXT NOT NULL,
        created_at TEXT NOT NULL,
        origin TEXT,
        ended_at TEXT,
        duration REAL
    );
    CREATE INDEX replays_stream ON replays(stream_id, created_at);
    CREATE INDEX replays_open ON replays(ended_at) WHERE ended_at IS NULL;
    CREATE TABLE clips (
        id TEXT PRIMARY KEY,
        stream_id TEXT NOT NULL REFERENCES streams(id),
        session_id TEXT NOT NULL REFERENCES sessions(id),
        path TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        start REAL NOT NULL,
        end REAL NOT NULL,
        size INTEGER NOT NULL,
        duration REAL NOT NULL
    );
    CREATE INDEX clips_stream ON clips(stream_id, created_at);",
    // 4: one row per stream tag for tag filters; stream groups found by group id.
    "CREATE TABLE stream_tags (
        tag TEXT NOT NULL,
        stream_id TEXT NOT NULL REFERENCES streams(id),
        PRIMARY KEY (tag, stream_id)
    ) WITHOUT ROWID;
    CREATE INDEX stream_tags_stream ON stream_tags(stream_id);
    INSERT OR IGNORE INTO stream_tags (tag, stream_id)
        SELECT tags.value, streams.id FROM streams, json_each(streams.tags) AS tags;
    CREATE INDEX streams_group ON streams(streamgroup, idx);",
    // 5: sessions name their node; the database keeps one open session per stream (older
    // catalogs: extra open sessions a crash left are closed as recovered first); picture
    // history (thumbnails, motion clips) is listed here instead of by reading folders.
    "ALTER TABLE sessions ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
    UPDATE sessions SET ended_at = started_at, end_reason = 'recovered'
        WHERE ended_at IS NULL AND rowid NOT IN
            (SELECT MAX(rowid) FROM sessions WHERE ended_at IS NULL GROUP BY stream_id);
    CREATE UNIQUE INDEX sessions_one_open ON sessions(stream_id) WHERE ended_at IS NULL;
    CREATE TABLE pictures (
        id INTEGER PRIMARY KEY,
        stream_id TEXT NOT NULL REFERENCES streams(id),
        kind TEXT NOT NULL,
        key TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE INDEX pictures_stream ON pictures(stream_id, kind, id);",
    // 6: a stream group's transcode sessions point at their passthrough's session, and a
    // replay keeps what a multivariant playlist says of it (JSON), for the group's replay.
    "ALTER TABLE sessions ADD COLUMN group_session TEXT;
    CREATE INDEX sessions_group ON sessions(group_session) WHERE group_session IS NOT NULL;
    ALTER TABLE replays ADD COLUMN variant TEXT;",
];

/// Runs the migrations not yet applied, each in its own transaction; returns the version the
/// catalog had before (0: new).
pub fn migrate(conn: &Connection) -> Result<usize, CatalogError> {
    let applied: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied > MIGRATIONS.len() {
        return Err(CatalogError::Corrupt(format!(
            "catalog schema version {applied} is newer than this reelay ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx =
            rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(applied)
}
