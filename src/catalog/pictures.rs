//! Picture history (thumbnails and motion clips): one row per history file, so the API lists
//! a stream's newest pictures with an index lookup instead of reading its folder, and the
//! history is trimmed by deleting the oldest rows (the caller deletes their files after).

use super::model::{LatestPictures, NewPicture, PictureHistory, PictureKind};
use super::streams::uuid_array;
use super::{Catalog, CatalogError};
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::HashMap;
use uuid::Uuid;

/// The latest pictures of `streams` (in that order), each with its newest `history_limit`
/// history keys (0: none).
pub(super) fn latest_pictures(
    conn: &Connection,
    streams: &[Uuid],
    history_limit: usize,
) -> Result<Vec<LatestPictures>, CatalogError> {
    if streams.is_empty() {
        return Ok(Vec::new());
    }
    let mut found: HashMap<(Uuid, PictureKind), PictureHistory> = HashMap::new();
    // Newest first per stream and kind; `ROW_NUMBER` keeps only what is listed.
    let mut stmt = conn.prepare_cached(
        "SELECT stream_id, kind, key, created_at FROM (
             SELECT stream_id, kind, key, created_at,
                    ROW_NUMBER() OVER (PARTITION BY stream_id, kind ORDER BY id DESC) AS n
             FROM pictures WHERE stream_id IN (SELECT value FROM json_each(?1)))
         WHERE n <= ?2 ORDER BY stream_id, kind, n",
    )?;
    let keep = super::to_i64(u64::try_from(history_limit).unwrap_or(u64::MAX)).max(1);
    let mut rows = stmt.query(params![uuid_array(streams), keep])?;
    while let Some(row) = rows.next()? {
        let stream = super::parse_uuid(&row.get::<_, String>(0)?, "picture stream")?;
        let kind = PictureKind::parse(&row.get::<_, String>(1)?)?;
        let (key, created_at): (String, String) = (row.get(2)?, row.get(3)?);
        let entry = found
            .entry((stream, kind))
            .or_insert_with(|| PictureHistory {
                updated_at: created_at,
                history: Vec::new(),
            });
        if history_limit > 0 {
            entry.history.push(key);
        }
    }
    Ok(streams
        .iter()
        .map(|id| PictureKind::ALL.map(|kind| found.remove(&(*id, kind))))
        .collect())
}

impl Catalog {
    /// Lists a picture written to a stream's history and trims that history to its newest
    /// `keep`; returns the keys of the trimmed pictures, whose files the caller deletes.
    pub async fn add_picture(
        &self,
        picture: NewPicture,
        keep: usize,
    ) -> Result<Vec<String>, CatalogError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (stream, kind) = (picture.stream_id.to_string(), picture.kind.id());
            tx.execute(
                "INSERT OR REPLACE INTO pictures (stream_id, kind, key, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![stream, kind, picture.key, picture.created_at],
            )?;
            let keep = super::to_i64(u64::try_from(keep).unwrap_or(u64::MAX));
            let trimmed = super::query_all(
                &tx,
                "DELETE FROM pictures WHERE stream_id = ?1 AND kind = ?2 AND id NOT IN
                     (SELECT id FROM pictures WHERE stream_id = ?1 AND kind = ?2
                      ORDER BY id DESC LIMIT ?3)
                 RETURNING key",
                params![stream, kind, keep],
                |row| Ok(row.get::<_, String>(0)?),
            )?;
            tx.commit()?;
            Ok(trimmed)
        })
        .await
    }

    /// Lists pictures found on disk that the catalog does not know yet (history written
    /// before the catalog listed pictures), oldest first within each stream and kind.
    pub async fn import_pictures(&self, pictures: Vec<NewPicture>) -> Result<usize, CatalogError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut added = 0;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO pictures (stream_id, kind, key, created_at)
                     SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM streams WHERE id = ?1)",
                )?;
                for p in &pictures {
                    added += insert.execute(params![
                        p.stream_id.to_string(),
                        p.kind.id(),
                        p.key,
                        p.created_at
                    ])?;
                }
            }
            tx.commit()?;
            Ok(added)
        })
        .await
    }
}
