//! Stream rows: how they are read and written, creating stream groups, finding a stream by id
//! or RTMP key, and a group's members.
//!
//! Tags are kept twice: as the stream's JSON list (its order, as the user gave it) and one
//! row per tag in `stream_tags`, indexed, so a tag filter over thousands of streams is an
//! index lookup instead of parsing every stream's JSON.

use super::model::{NewStreamGroup, NewTranscode, Stream, StreamState};
use super::{now_rfc3339, random_alnum, Catalog, CatalogError};
use crate::processing::{Processing, TranscodeProfile};
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::HashMap;
use uuid::Uuid;

pub(super) const STREAM_COLUMNS: &str =
    "id, org_hash, streamname, state, tags, processing, streamgroup, idx, profile, created_at, \
     updated_at";

fn stream_from_row(row: &rusqlite::Row<'_>) -> Result<Stream, CatalogError> {
    let corrupt = |what: &str| CatalogError::Corrupt(what.to_string());
    let id: String = row.get(0)?;
    let state: String = row.get(3)?;
    let tags: String = row.get(4)?;
    let processing: String = row.get(5)?;
    let group: String = row.get(6)?;
    let profile: Option<String> = row.get(8)?;
    Ok(Stream {
        id: Uuid::parse_str(&id).map_err(|_| corrupt("stream id"))?,
        org_hash: row.get(1)?,
        streamname: row.get(2)?,
        state: StreamState::parse(&state)?,
        tags: serde_json::from_str(&tags).map_err(|_| corrupt("stream tags"))?,
        processing: Processing::from_json_text(&processing)
            .map_err(|e| corrupt(&format!("processing: {e}")))?,
        streamgroup: Uuid::parse_str(&group).map_err(|_| corrupt("stream group"))?,
        index: row.get(7)?,
        profile: profile
            .map(|p| TranscodeProfile::parse(&p).ok_or_else(|| corrupt("transcode profile")))
            .transpose()?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
    })
}

/// Every stream `sql` (selecting `STREAM_COLUMNS`) finds.
pub(super) fn query_streams(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Stream>, CatalogError> {
    super::query_all(conn, sql, params, stream_from_row)
}

fn query_stream(
    conn: &Connection,
    condition: &str,
    params: impl rusqlite::Params,
) -> Result<Option<Stream>, CatalogError> {
    let sql = format!("SELECT {STREAM_COLUMNS} FROM streams WHERE {condition}");
    Ok(query_streams(conn, &sql, params)?.into_iter().next())
}

/// A stream by id, whatever its organisation (for code that already checked it).
pub(super) fn stream_by_id(conn: &Connection, id: Uuid) -> Result<Option<Stream>, CatalogError> {
    query_stream(conn, "id = ?1", params![id.to_string()])
}

/// A stream of an organisation by id (other organisations' streams are not found).
pub(super) fn get_stream(
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

/// Every stream of a group, by index.
pub(super) fn group_streams(
    conn: &Connection,
    org_hash: &str,
    group: Uuid,
) -> Result<Vec<Stream>, CatalogError> {
    query_streams(
        conn,
        &format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE org_hash = ?1 AND streamgroup = ?2
             ORDER BY idx"
        ),
        params![org_hash, group.to_string()],
    )
}

/// The streams of every group among `groups` that has more than one, by group and ordered by
/// index: one query gives a list page its group badges and expandable members.
pub(super) fn group_members(
    conn: &Connection,
    org_hash: &str,
    groups: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Stream>>, CatalogError> {
    // A JSON array for `json_each` (ids need no escaping): one statement for any page size.
    // `+org_hash` keeps SQLite on the group index (the organisation index would scan every
    // stream of the organisation: 5 ms more per page of 150 at 10,000 streams).
    let wanted = uuid_array(groups);
    let streams = query_streams(
        conn,
        &format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE +org_hash = ?1
             AND streamgroup IN (SELECT value FROM json_each(?2)) ORDER BY streamgroup, idx"
        ),
        params![org_hash, wanted],
    )?;
    let mut by_group: HashMap<Uuid, Vec<Stream>> = HashMap::new();
    for stream in streams {
        by_group.entry(stream.streamgroup).or_default().push(stream);
    }
    by_group.retain(|_, members| members.len() > 1);
    Ok(by_group)
}

/// Ids as a JSON array for `json_each` (ids need no escaping).
pub(super) fn uuid_array(ids: &[Uuid]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
    format!("[{}]", quoted.join(","))
}

/// The JSON text of a tag list.
pub(super) fn tags_json(tags: &[String]) -> String {
    serde_json::Value::from(tags.to_vec()).to_string()
}

/// Replaces a stream's rows in `stream_tags`.
pub(super) fn write_tag_rows(
    conn: &Connection,
    stream_id: Uuid,
    tags: &[String],
) -> Result<(), CatalogError> {
    let id = stream_id.to_string();
    conn.execute("DELETE FROM stream_tags WHERE stream_id = ?1", params![id])?;
    let mut insert =
        conn.prepare_cached("INSERT OR IGNORE INTO stream_tags (tag, stream_id) VALUES (?1, ?2)")?;
    for tag in tags {
        insert.execute(params![tag, id])?;
    }
    Ok(())
}

/// What one new stream row holds besides its generated name.
struct NewRow<'a> {
    org_hash: &'a str,
    id: Uuid,
    group: Uuid,
    index: u32,
    profile: Option<TranscodeProfile>,
    tags: &'a [String],
    processing: &'a Processing,
    now: &'a str,
}

/// Inserts one stream row (and its tag rows) with a fresh streamname.
fn insert_stream(conn: &Connection, row: &NewRow<'_>) -> Result<(), CatalogError> {
    let profile = row.profile.map(|p| p.to_string());
    // Streamnames are unique; retry the rare collision of the 5 random characters.
    for _ in 0..8 {
        let streamname = format!("{}-{}", row.org_hash, random_alnum(5));
        let inserted = conn.execute(
            "INSERT OR IGNORE INTO streams (id, org_hash, streamname, state, tags, processing,
                 streamgroup, idx, profile, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'created', ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            params![
                row.id.to_string(),
                row.org_hash,
                streamname,
                tags_json(row.tags),
                row.processing.to_json_text(),
                row.group.to_string(),
                row.index,
                profile,
                row.now
            ],
        )?;
        if inserted == 1 {
            return write_tag_rows(conn, row.id, row.tags);
        }
    }
    Err(CatalogError::Corrupt(
        "no free streamname after 8 tries".into(),
    ))
}

impl Catalog {
    /// Creates a stream group: the passthrough (index 0, its id is the group's id) with the
    /// group's tags and processing, and one stream per transcode (index 1..), each with its
    /// own streamname and tags and the same processing. Returns them by index; a group
    /// without transcodes is a single stream.
    pub async fn create_stream_group(
        &self,
        org_hash: &str,
        new: NewStreamGroup,
    ) -> Result<Vec<Stream>, CatalogError> {
        let org_hash = org_hash.to_string();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_rfc3339();
            let group = Uuid::new_v4();
            let mut ids = vec![group];
            insert_stream(
                &tx,
                &NewRow {
                    org_hash: &org_hash,
                    id: group,
                    group,
                    index: 0,
                    profile: None,
                    tags: &new.tags,
                    processing: &new.processing,
                    now: &now,
                },
            )?;
            for (index, transcode) in (1..).zip(&new.transcodes) {
                let id = Uuid::new_v4();
                insert_stream(
                    &tx,
                    &NewRow {
                        org_hash: &org_hash,
                        id,
                        group,
                        index,
                        profile: Some(transcode.profile),
                        tags: &transcode.tags,
                        processing: &new.processing,
                        now: &now,
                    },
                )?;
                ids.push(id);
            }
            let mut streams = Vec::with_capacity(ids.len());
            for id in ids {
                streams.push(
                    stream_by_id(&tx, id)?
                        .ok_or_else(|| CatalogError::Corrupt("inserted stream vanished".into()))?,
                );
            }
            tx.commit()?;
            Ok(streams)
        })
        .await
    }

    /// Adds a transcoded profile to the group `group` of `org_hash` (the dashboard's "Add
    /// Profile"): a new stream with the next index and the passthrough's processing, or
    /// `None` when the group already has `max` live (not deleted) transcodes or no
    /// passthrough.
    pub async fn add_transcode(
        &self,
        org_hash: &str,
        group: Uuid,
        transcode: NewTranscode,
        max: usize,
    ) -> Result<Option<Stream>, CatalogError> {
        let org_hash = org_hash.to_string();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let members = group_streams(&tx, &org_hash, group)?;
            let Some(passthrough) = members.iter().find(|s| s.index == 0) else {
                return Ok(None);
            };
            let transcodes = members
                .iter()
                .filter(|s| s.index > 0 && s.state != StreamState::Deleted)
                .count();
            if transcodes >= max {
                return Ok(None);
            }
            let index = members.iter().map(|s| s.index).max().unwrap_or(0) + 1;
            let id = Uuid::new_v4();
            let now = now_rfc3339();
            insert_stream(
                &tx,
                &NewRow {
                    org_hash: &org_hash,
                    id,
                    group,
                    index,
                    profile: Some(transcode.profile),
                    tags: &transcode.tags,
                    processing: &passthrough.processing,
                    now: &now,
                },
            )?;
            let stream = stream_by_id(&tx, id)?;
            tx.commit()?;
            Ok(stream)
        })
        .await
    }

    /// A stream of an organisation by id (other organisations' streams are not found).
    pub async fn get_stream(
        &self,
        org_hash: &str,
        id: Uuid,
    ) -> Result<Option<Stream>, CatalogError> {
        let org_hash = org_hash.to_string();
        self.read(move |conn| get_stream(conn, &org_hash, id)).await
    }

    /// The stream an RTMP key names: its streamname (case-sensitive) or its id.
    pub async fn find_stream_by_key(&self, key: &str) -> Result<Option<Stream>, CatalogError> {
        let key = key.to_string();
        self.read(move |conn| query_stream(conn, "streamname = ?1 OR id = ?1", params![key]))
            .await
    }

    /// Every stream of a group, by index.
    pub async fn group_streams(
        &self,
        org_hash: &str,
        group: Uuid,
    ) -> Result<Vec<Stream>, CatalogError> {
        let org_hash = org_hash.to_string();
        self.read(move |conn| group_streams(conn, &org_hash, group))
            .await
    }
}
