//! Stream lists with the SPEC filters (`GET /stream`), each page read in one catalog job with
//! its groups' members and its streams' latest pictures; counts for `/metrics`.

use super::model::{StateFilter, StreamPage, StreamQuery, StreamState};
use super::pictures::latest_pictures;
use super::streams::{group_members, query_streams, STREAM_COLUMNS};
use super::{Catalog, CatalogError};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use std::collections::HashMap;
use uuid::Uuid;

/// Lists an organisation's streams, newest first.
fn list_streams(
    conn: &Connection,
    org_hash: &str,
    query: &StreamQuery,
) -> Result<StreamPage, CatalogError> {
    // With tags the tag index is the selective one: `+` keeps SQLite from walking the
    // organisation's index instead (3.5 ms → 0.35 ms for two tags over 10,000 streams).
    let org_term = if query.tags.is_empty() {
        "org_hash = ?"
    } else {
        "+org_hash = ?"
    };
    let mut conditions = vec![org_term.to_string()];
    let mut values: Vec<SqlValue> = vec![org_hash.to_string().into()];
    match query.state {
        StateFilter::AllButDeleted => conditions.push("state <> 'deleted'".into()),
        StateFilter::Only(state) => {
            conditions.push("state = ?".into());
            values.push(state.as_str().to_string().into());
        }
    }
    for tag in &query.tags {
        conditions.push("id IN (SELECT stream_id FROM stream_tags WHERE tag = ?)".into());
        values.push(tag.clone().into());
    }
    if let Some(from) = &query.from {
        conditions.push("created_at >= ?".into());
        values.push(from.clone().into());
    }
    if let Some(to) = &query.to {
        conditions.push("created_at < ?".into());
        values.push(to.clone().into());
    }
    if query.collapse_groups {
        conditions.push("idx = 0".into());
    }
    if let Some(q) = &query.q {
        if query.collapse_groups {
            conditions.push(
                "streamgroup IN (SELECT streamgroup FROM streams
                                 WHERE org_hash = ? AND (id = ? OR streamname = ?))"
                    .into(),
            );
            values.push(org_hash.to_string().into());
        } else {
            conditions.push("(id = ? OR streamname = ?)".into());
        }
        values.push(q.clone().into());
        values.push(q.clone().into());
    }
    let filter = conditions.join(" AND ");
    let matching: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM streams WHERE {filter}"),
        params_from_iter(values.iter()),
        |row| row.get(0),
    )?;
    let mut total = u64::try_from(matching).unwrap_or(0);
    if let Some(quantity) = query.quantity {
        total = total.min(u64::from(quantity));
    }
    let offset = u64::from(query.page.max(1) - 1) * u64::from(query.per_page);
    let limit = total.saturating_sub(offset).min(u64::from(query.per_page));
    if limit == 0 {
        return Ok(StreamPage {
            items: Vec::new(),
            total,
            groups: HashMap::new(),
            pictures: Vec::new(),
        });
    }
    values.push(super::to_i64(limit).into());
    values.push(super::to_i64(offset).into());
    let items = query_streams(
        conn,
        &format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE {filter}
             ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
        ),
        params_from_iter(values.iter()),
    )?;
    let groups: Vec<Uuid> = items.iter().map(|s| s.streamgroup).collect();
    let ids: Vec<Uuid> = items.iter().map(|s| s.id).collect();
    Ok(StreamPage {
        groups: group_members(conn, org_hash, &groups)?,
        pictures: latest_pictures(conn, &ids, 0)?,
        items,
        total,
    })
}

impl Catalog {
    /// One page of an organisation's streams, newest first, with what list entries show.
    pub async fn list_streams(
        &self,
        org_hash: &str,
        query: StreamQuery,
    ) -> Result<StreamPage, CatalogError> {
        let org_hash = org_hash.to_string();
        self.read(move |conn| list_streams(conn, &org_hash, &query))
            .await
    }

    /// How many streams are in each state, across organisations (for `/metrics`).
    pub async fn count_streams_by_state(&self) -> Result<Vec<(StreamState, u64)>, CatalogError> {
        self.read(|conn| {
            super::query_all(
                conn,
                "SELECT state, COUNT(*) FROM streams GROUP BY state",
                [],
                |row| {
                    let state: String = row.get(0)?;
                    Ok((
                        StreamState::parse(&state)?,
                        super::to_u64(row.get(1)?, "count")?,
                    ))
                },
            )
        })
        .await
    }
}
