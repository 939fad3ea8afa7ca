use super::*;
use rusqlite::params;

async fn catalog() -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(&dir.path().join("c.sqlite3")).unwrap();
    (dir, catalog)
}

/// A second connection to the same file, for what the interface does not offer (setting a
/// state directly, looking at stored bytes).
fn side_door(dir: &tempfile::TempDir) -> rusqlite::Connection {
    connect(&dir.path().join("c.sqlite3")).unwrap()
}

async fn one_stream(catalog: &Catalog, org: &str) -> Stream {
    catalog
        .create_stream_group(org, NewStreamGroup::default())
        .await
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn first_start_creates_one_org_and_admin_key() {
    let (dir, catalog) = catalog().await;
    assert_eq!(catalog.migrated_from(), 0);
    let (org, key) = catalog.ensure_default_org().await.unwrap().unwrap();
    assert_eq!(org.hash.len(), 5);
    assert!(org.vod && org.live_processing && org.transcoding && org.secure);
    assert!(catalog.ensure_default_org().await.unwrap().is_none());
    let principal = catalog.authenticate(&key).await.unwrap().unwrap();
    assert_eq!(
        (principal.org_hash, principal.role),
        (org.hash, Role::Admin)
    );
    // Only the hash is stored.
    let stored: String = side_door(&dir)
        .query_row("SELECT key_sha256 FROM api_keys", [], |r| r.get(0))
        .unwrap();
    assert!(!stored.contains(&key));
}

#[tokio::test]
async fn revoked_keys_stop_working() {
    let (_dir, catalog) = catalog().await;
    let (org, _) = catalog.ensure_default_org().await.unwrap().unwrap();
    let (info, key) = catalog
        .create_key(&org.hash, Role::ReadOnly, Some("ci"))
        .await
        .unwrap();
    assert!(catalog.authenticate(&key).await.unwrap().is_some());
    assert!(catalog.revoke_key(&info.id, None).await.unwrap());
    assert!(!catalog.revoke_key(&info.id, None).await.unwrap());
    assert!(catalog.authenticate(&key).await.unwrap().is_none());
    assert!(catalog.authenticate("nonsense").await.unwrap().is_none());
}

#[tokio::test]
async fn publish_lifecycle_and_recovery() {
    let (_dir, catalog) = catalog().await;
    let (org, _) = catalog.ensure_default_org().await.unwrap().unwrap();
    let stream = one_stream(&catalog, &org.hash).await;
    assert_eq!(stream.state, StreamState::Created);
    assert!(stream.streamname.starts_with(&format!("{}-", org.hash)));
    assert_eq!(stream.streamgroup, stream.id);
    // Found by streamname (case-sensitive) and by id.
    let by_name = catalog
        .find_stream_by_key(&stream.streamname)
        .await
        .unwrap();
    assert_eq!(by_name.map(|s| s.id), Some(stream.id));
    let by_id = catalog.find_stream_by_key(&stream.id.to_string()).await;
    assert_eq!(by_id.unwrap().map(|s| s.id), Some(stream.id));
    let lower = stream.streamname.to_lowercase();
    if lower != stream.streamname {
        assert!(catalog.find_stream_by_key(&lower).await.unwrap().is_none());
    }

    let session = catalog
        .begin_publish(stream.id, App::Live, "node-a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.node_id, "node-a");
    let live = catalog
        .get_stream(&org.hash, stream.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live.state, StreamState::Live);
    catalog
        .end_publish(session.id, EndReason::ClientClosed)
        .await
        .unwrap();
    let ended = catalog
        .get_stream(&org.hash, stream.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.state, StreamState::Ended);
    let sessions = catalog.list_sessions(stream.id).await.unwrap();
    assert_eq!(sessions[0].end_reason.as_deref(), Some("client_closed"));
    assert_eq!(sessions[0].node_id, "node-a");

    // A crash leaves a session open; the next start closes it as recovered.
    catalog
        .begin_publish(stream.id, App::Rec, "node-a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(catalog.recover_open_sessions().await.unwrap(), 1);
    let sessions = catalog.list_sessions(stream.id).await.unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].end_reason.as_deref(), Some("recovered"));
    assert!(sessions[0].ended_at.is_some());
    let after = catalog
        .get_stream(&org.hash, stream.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.state, StreamState::Ended);
}

#[tokio::test]
async fn the_database_refuses_a_second_open_session() {
    let (dir, catalog) = catalog().await;
    let (org, _) = catalog.ensure_default_org().await.unwrap().unwrap();
    let stream = one_stream(&catalog, &org.hash).await;
    let first = catalog
        .begin_publish(stream.id, App::Live, "node-a")
        .await
        .unwrap()
        .unwrap();
    // Through the interface, from any node: refused, and no row is added.
    for node in ["node-a", "node-b"] {
        assert_eq!(
            catalog
                .begin_publish(stream.id, App::Live, node)
                .await
                .unwrap(),
            Err(PublishRefusal::AlreadyPublishing)
        );
    }
    assert_eq!(catalog.list_sessions(stream.id).await.unwrap().len(), 1);
    // Past the interface (another program writing the file): the index itself refuses.
    let raw = side_door(&dir).execute(
        "INSERT INTO sessions (id, stream_id, app, started_at, node_id)
         VALUES ('x', ?1, 'live', '2026-01-01T00:00:00.000Z', 'node-c')",
        params![stream.id.to_string()],
    );
    assert!(
        matches!(&raw, Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation),
        "{raw:?}"
    );
    // Once the first ends, the next publisher gets a session.
    catalog
        .end_publish(first.id, EndReason::ClientClosed)
        .await
        .unwrap();
    assert!(catalog
        .begin_publish(stream.id, App::Live, "node-b")
        .await
        .unwrap()
        .is_ok());
}

#[tokio::test]
async fn locked_and_deleted_streams_refuse_publishing() {
    let (dir, catalog) = catalog().await;
    let (org, _) = catalog.ensure_default_org().await.unwrap().unwrap();
    let stream = one_stream(&catalog, &org.hash).await;
    for (state, refusal) in [
        ("locked", PublishRefusal::Locked),
        ("deleted", PublishRefusal::Deleted),
    ] {
        side_door(&dir)
            .execute(
                "UPDATE streams SET state = ?1 WHERE id = ?2",
                params![state, stream.id.to_string()],
            )
            .unwrap();
        assert_eq!(
            catalog
                .begin_publish(stream.id, App::Live, "n")
                .await
                .unwrap(),
            Err(refusal)
        );
    }
    assert!(catalog.list_sessions(stream.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn other_organisations_streams_are_invisible() {
    let (_dir, catalog) = catalog().await;
    let (org, _) = catalog.ensure_default_org().await.unwrap().unwrap();
    let (other, _) = catalog.create_org("other").await.unwrap();
    let stream = one_stream(&catalog, &org.hash).await;
    assert!(catalog
        .get_stream(&other.hash, stream.id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn picture_history_keeps_the_newest_and_hands_back_the_rest() {
    let (_dir, catalog) = catalog().await;
    let (org, _) = catalog.ensure_default_org().await.unwrap().unwrap();
    let stream = one_stream(&catalog, &org.hash).await;
    let mut trimmed = Vec::new();
    for i in 0..5 {
        let picture = NewPicture {
            stream_id: stream.id,
            kind: PictureKind::Thumbnail,
            key: format!("thumbnails/x/{i}.jpg"),
            created_at: format!("2026-11-21T10:00:0{i}.000Z"),
        };
        trimmed.extend(catalog.add_picture(picture, 3).await.unwrap());
    }
    assert_eq!(trimmed, ["thumbnails/x/0.jpg", "thumbnails/x/1.jpg"]);
    let assets = catalog
        .stream_assets(&org.hash, stream.id, stream.streamgroup, 2)
        .await
        .unwrap();
    let [thumbs, motion] = assets.pictures;
    let thumbs = thumbs.unwrap();
    assert_eq!(thumbs.updated_at, "2026-11-21T10:00:04.000Z");
    assert_eq!(thumbs.history, ["thumbnails/x/4.jpg", "thumbnails/x/3.jpg"]);
    assert!(motion.is_none());
    // A list page carries the latest picture without history.
    let page = catalog
        .list_streams(&org.hash, StreamQuery::default())
        .await
        .unwrap();
    let latest = page.pictures[0][0].clone().unwrap();
    assert_eq!(latest.updated_at, "2026-11-21T10:00:04.000Z");
    assert!(latest.history.is_empty());
}

#[tokio::test]
async fn migrations_are_idempotent_and_refuse_newer_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite3");
    drop(Catalog::open(&path).unwrap());
    let again = Catalog::open(&path).unwrap();
    assert!(again.migrated_from() >= 5);
    drop(again);
    connect(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert!(matches!(
        Catalog::open(&path),
        Err(CatalogError::Corrupt(_))
    ));
}

#[test]
fn timestamps_are_fixed_width_rfc3339() {
    let t = now_rfc3339();
    assert_eq!(t.len(), 24, "{t}");
    assert!(t.ends_with('Z'));
    assert!(
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).is_ok()
    );
}
