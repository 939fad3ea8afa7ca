//! The catalog: the single source of truth for organisations, API keys, streams, sessions and
//! assets, reached only through the typed async methods of [`Catalog`] — nobody outside this
//! module writes SQL or sees a database connection. That method set is the interface a second
//! implementation (PostgreSQL) provides later; today it is SQLite.
//!
//! SQLite in WAL mode: one writer connection and a few reader connections, each on its own OS
//! thread ([`executor`]), so catalog work never runs on the async runtime's workers and reads
//! never wait behind a write. Each lane has a bounded queue: a burst of callers waits for a
//! place instead of piling up blocking tasks. Writes that read first take the write lock at
//! `BEGIN` (`IMMEDIATE`), so concurrent writers (the CLI beside a running server) queue on
//! SQLite's busy timeout instead of failing. Nothing is cached: a revoked key stops working
//! at once.
//!
//! Invariants the database itself enforces: one open session per stream (a unique partial
//! index), so "one publisher per stream" holds even past this process; every recording,
//! replay and clip row names its stream and session.
//!
//! Files:
//! - [`model`]: the rows as types, and what callers pass in (no SQL);
//! - `schema`: numbered migrations in `PRAGMA user_version`;
//! - `orgs`, `streams`, `edits`, `lists`, `sessions`, `assets`, `pictures`: the SQL and the
//!   typed methods, by concern.
//!
//! Not here: the media files themselves (`storage`, `sinks`); only their rows and keys.

mod assets;
mod edits;
mod executor;
mod lists;
pub mod model;
mod orgs;
mod pictures;
mod schema;
mod sessions;
mod streams;

pub use model::*;

use executor::{Executor, Lane};
use rusqlite::Connection;
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

/// Errors at the catalog boundary.
#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("catalog database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("catalog data invalid: {0}")]
    Corrupt(String),
    #[error("no catalog at {} (start the server once, or pass --data-dir)", .0.display())]
    Missing(std::path::PathBuf),
    #[error("the catalog's threads are gone (the server is stopping)")]
    Closed,
    #[error("a catalog job panicked (a bug): {0}")]
    Panicked(String),
    #[error("cannot start the catalog's threads: {0}")]
    Threads(#[source] std::io::Error),
}

/// The shared catalog handle: typed methods over the executor. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    executor: std::sync::Arc<Executor>,
    /// The schema version found before this open migrated it (0 on a new catalog).
    migrated_from: usize,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("migrated_from", &self.migrated_from)
            .finish_non_exhaustive()
    }
}

/// Readers besides the writer: reads of the API and of the media path run in parallel.
const READER_CONNECTIONS: usize = 3;
/// Jobs waiting per lane before callers wait for a place.
const QUEUE_PER_LANE: usize = 1024;

/// Opens a connection with the settings every catalog connection shares.
fn connect(path: &Path) -> Result<Connection, CatalogError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Catalog {
    /// Opens (creating if needed) the catalog at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        let writer = connect(path)?;
        let migrated_from = schema::migrate(&writer)?;
        let mut readers = Vec::with_capacity(READER_CONNECTIONS);
        for _ in 0..READER_CONNECTIONS {
            let reader = connect(path)?;
            reader.pragma_update(None, "query_only", true)?;
            readers.push(reader);
        }
        let executor = Executor {
            writer: Lane::start("write", vec![writer], QUEUE_PER_LANE)
                .map_err(CatalogError::Threads)?,
            readers: Lane::start("read", readers, QUEUE_PER_LANE).map_err(CatalogError::Threads)?,
        };
        Ok(Catalog {
            executor: std::sync::Arc::new(executor),
            migrated_from,
        })
    }

    /// Opens the catalog of a data folder a server has already made (for the CLI beside a
    /// running server); refuses to create one.
    pub fn open_existing(path: &Path) -> Result<Self, CatalogError> {
        if !path.exists() {
            return Err(CatalogError::Missing(path.to_path_buf()));
        }
        Self::open(path)
    }

    /// The schema version this open started from (0: a new catalog), so one-time upgrade
    /// work (importing picture history) knows whether it is due.
    pub fn migrated_from(&self) -> usize {
        self.migrated_from
    }

    /// Runs `f` on the writer connection.
    async fn write<R, F>(&self, f: F) -> Result<R, CatalogError>
    where
        F: FnOnce(&mut Connection) -> Result<R, CatalogError> + Send + 'static,
        R: Send + 'static,
    {
        self.executor.writer.run(f).await
    }

    /// Runs `f` on a reader connection.
    async fn read<R, F>(&self, f: F) -> Result<R, CatalogError>
    where
        F: FnOnce(&mut Connection) -> Result<R, CatalogError> + Send + 'static,
        R: Send + 'static,
    {
        self.executor.readers.run(f).await
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
    let mut stmt = conn.prepare_cached(sql)?;
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

/// A stored count or size, or `Corrupt` naming what it was.
fn to_u64(value: i64, what: &str) -> Result<u64, CatalogError> {
    u64::try_from(value).map_err(|_| CatalogError::Corrupt(format!("negative {what}")))
}

/// A count or size as SQLite stores it.
fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
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
