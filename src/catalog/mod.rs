//! The catalog: SQLite, the single source of truth for organisations, API keys, streams and
//! sessions. Schema changes are numbered migrations tracked in `PRAGMA user_version`.
//!
//! Functions take a `&Connection` so the CLI (`reelay keys …`, run beside a live server) and
//! the server share them; the server calls them through [`Catalog::call`], which runs them on
//! the blocking pool, never on an async worker. WAL mode lets the CLI write while the server
//! runs; nothing is cached, so a revoked key stops working at once.
//!
//! Not here: the media files themselves (`sinks`, `mux`); only their rows.

mod keys;
mod manage;
mod recordings;
mod replays;
mod schema;
mod streams;

pub use keys::{authenticate, create_key, list_keys, revoke_key, ApiKeyInfo, Principal, Role};
pub use manage::{
    change_state, count_streams_by_state, create_stream_group, group_members, group_streams,
    list_orgs, list_streams, set_packages, set_processing, set_tags, Change, ChangeRefused,
    Lifecycle, NewTranscode, PackageChange, StateChanged, StateFilter, StreamPage, StreamQuery,
};
pub use recordings::{
    begin_recording, fail_recording, finish_recording, get_recording, list_vod_assets,
    open_recordings, session_recordings, Recording, VodAsset,
};
pub use replays::{
    begin_replay, finish_replay, get_replay, insert_clip, list_clips, list_replays, open_replays,
    set_replay_origin, Clip, Replay,
};
pub use streams::{
    begin_publish, create_org, create_stream, end_publish, ensure_default_org, find_stream_by_key,
    get_org, get_stream, list_sessions, recover_open_sessions, EndReason, NewStream, Organisation,
    PublishRefusal, Session, Stream, StreamState,
};

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

/// Errors at the catalog boundary.
#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("catalog database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("catalog data invalid: {0}")]
    Corrupt(String),
    #[error("catalog task failed: {0}")]
    Join(String),
}

/// The shared catalog handle. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    conn: Arc<Mutex<Connection>>,
}

/// Opens (creating if needed) the catalog database and brings its schema up to date.
pub fn open_connection(path: &Path) -> Result<Connection, CatalogError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    schema::migrate(&conn)?;
    Ok(conn)
}

impl Catalog {
    /// Opens the catalog at `path`.
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        Ok(Catalog {
            conn: Arc::new(Mutex::new(open_connection(path)?)),
        })
    }

    /// Runs `f` with the connection on the blocking thread pool.
    pub async fn call<F, R>(&self, f: F) -> Result<R, CatalogError>
    where
        F: FnOnce(&mut Connection) -> Result<R, CatalogError> + Send + 'static,
        R: Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| CatalogError::Join(e.to_string()))?
    }
}

/// Every row `sql` selects, each turned into a value by `from_row` (which refuses corrupt
/// data with an error rather than a panic).
fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    from_row: impl Fn(&rusqlite::Row<'_>) -> Result<T, CatalogError>,
) -> Result<Vec<T>, CatalogError> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}

/// A stored id, or `Corrupt` naming what it was.
fn parse_uuid(text: &str, what: &str) -> Result<uuid::Uuid, CatalogError> {
    uuid::Uuid::parse_str(text).map_err(|_| CatalogError::Corrupt(what.into()))
}

/// Current time as RFC 3339 UTC with millisecond precision (fixed width, so it sorts as text).
pub fn now_rfc3339() -> String {
    format_rfc3339(time::OffsetDateTime::now_utc())
}

/// Formats a time as RFC 3339 UTC with millisecond precision.
pub fn format_rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `len` random characters from `[A-Za-z0-9]`.
pub fn random_alnum(len: usize) -> String {
    use rand::{distributions::Alphanumeric, Rng};
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests;
