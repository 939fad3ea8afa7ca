//! What operators change on a stream through the API: tags, processing settings and the
//! states a user sets (`locked`, `deleted`, and back by unlocking). Every change sets
//! `updated_at`, in one transaction with the read that checks it is allowed.

use super::model::{Change, ChangeRefused, Lifecycle, StateChanged, Stream, StreamState};
use super::streams::{get_stream, group_streams, stream_by_id, tags_json, write_tag_rows};
use super::{now_rfc3339, Catalog, CatalogError};
use crate::processing::Processing;
use rusqlite::{params, Connection, TransactionBehavior};
use uuid::Uuid;

fn vanished(id: Uuid) -> CatalogError {
    CatalogError::Corrupt(format!("stream {id} vanished during a change"))
}

/// Runs `edit` on a stream that is not deleted, in one transaction, and returns the stream
/// as it is afterwards.
fn edit_unless_deleted(
    conn: &mut Connection,
    org_hash: &str,
    id: Uuid,
    edit: impl FnOnce(&Connection, &Stream, &str) -> Result<(), CatalogError>,
) -> Result<Change<Stream>, CatalogError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(stream) = get_stream(&tx, org_hash, id)? else {
        return Ok(None);
    };
    if stream.state == StreamState::Deleted {
        return Ok(Some(Err(ChangeRefused::Deleted)));
    }
    edit(&tx, &stream, &now_rfc3339())?;
    let stream = stream_by_id(&tx, id)?.ok_or_else(|| vanished(id))?;
    tx.commit()?;
    Ok(Some(Ok(stream)))
}

/// Applies a lifecycle change to a stream — to its whole group when it is the group's
/// passthrough (the transcodes exist only through it).
fn change_state(
    conn: &mut Connection,
    org_hash: &str,
    id: Uuid,
    change: Lifecycle,
) -> Result<Change<StateChanged>, CatalogError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(stream) = get_stream(&tx, org_hash, id)? else {
        return Ok(None);
    };
    match (change, stream.state) {
        (Lifecycle::Delete, _) => {}
        (_, StreamState::Deleted) => return Ok(Some(Err(ChangeRefused::Deleted))),
        (Lifecycle::Unlock, state) if state != StreamState::Locked => {
            return Ok(Some(Err(ChangeRefused::NotLocked)))
        }
        _ => {}
    }
    let members = if stream.index == 0 {
        group_streams(&tx, org_hash, stream.streamgroup)?
    } else {
        vec![stream]
    };
    let now = now_rfc3339();
    let mut changed = Vec::new();
    for member in members {
        let new_state = match (change, member.state) {
            (_, StreamState::Deleted) => continue,
            (Lifecycle::Delete, _) => StreamState::Deleted,
            (Lifecycle::Lock, _) => StreamState::Locked,
            (Lifecycle::Unlock, StreamState::Locked) => {
                let sessions: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM sessions WHERE stream_id = ?1",
                    params![member.id.to_string()],
                    |row| row.get(0),
                )?;
                if sessions > 0 {
                    StreamState::Ended
                } else {
                    StreamState::Created
                }
            }
            (Lifecycle::Unlock, _) => continue,
        };
        tx.execute(
            "UPDATE streams SET state = ?2, updated_at = ?3 WHERE id = ?1",
            params![member.id.to_string(), new_state.as_str(), now],
        )?;
        changed.push(member.id);
    }
    let stream = stream_by_id(&tx, id)?.ok_or_else(|| vanished(id))?;
    tx.commit()?;
    Ok(Some(Ok(StateChanged { stream, changed })))
}

impl Catalog {
    /// Replaces a stream's tags (already validated).
    pub async fn set_tags(
        &self,
        org_hash: &str,
        id: Uuid,
        tags: Vec<String>,
    ) -> Result<Change<Stream>, CatalogError> {
        let org_hash = org_hash.to_string();
        self.write(move |conn| {
            edit_unless_deleted(conn, &org_hash, id, |tx, _, now| {
                tx.execute(
                    "UPDATE streams SET tags = ?2, updated_at = ?3 WHERE id = ?1",
                    params![id.to_string(), tags_json(&tags), now],
                )?;
                write_tag_rows(tx, id, &tags)
            })
        })
        .await
    }

    /// Sets a stream's processing settings, and with `sync` those of every stream of its
    /// group; they apply from the next ingest on.
    pub async fn set_processing(
        &self,
        org_hash: &str,
        id: Uuid,
        processing: Processing,
        sync: bool,
    ) -> Result<Change<Stream>, CatalogError> {
        let (org_hash, text) = (org_hash.to_string(), processing.to_json_text());
        self.write(move |conn| {
            edit_unless_deleted(conn, &org_hash, id, |tx, stream, now| {
                if sync {
                    tx.execute(
                        "UPDATE streams SET processing = ?2, updated_at = ?3
                         WHERE streamgroup = ?1 AND state <> 'deleted'",
                        params![stream.streamgroup.to_string(), text, now],
                    )?;
                } else {
                    tx.execute(
                        "UPDATE streams SET processing = ?2, updated_at = ?3 WHERE id = ?1",
                        params![id.to_string(), text, now],
                    )?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Applies a lifecycle change to a stream — to its whole group when it is the group's
    /// passthrough.
    pub async fn change_state(
        &self,
        org_hash: &str,
        id: Uuid,
        change: Lifecycle,
    ) -> Result<Change<StateChanged>, CatalogError> {
        let org_hash = org_hash.to_string();
        self.write(move |conn| change_state(conn, &org_hash, id, change))
            .await
    }
}
