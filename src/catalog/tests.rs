use super::*;

fn catalog() -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = open_connection(&dir.path().join("c.sqlite3")).unwrap();
    (dir, conn)
}

#[test]
fn first_start_creates_one_org_and_admin_key() {
    let (_dir, conn) = catalog();
    let (org, key) = ensure_default_org(&conn).unwrap().unwrap();
    assert_eq!(org.hash.len(), 5);
    assert!(org.vod && org.live_processing && org.transcoding && org.secure);
    assert!(ensure_default_org(&conn).unwrap().is_none());
    let principal = authenticate(&conn, &key).unwrap().unwrap();
    assert_eq!(
        (principal.org_hash, principal.role),
        (org.hash, Role::Admin)
    );
    // Only the hash is stored.
    let stored: String = conn
        .query_row("SELECT key_sha256 FROM api_keys", [], |r| r.get(0))
        .unwrap();
    assert!(!stored.contains(&key));
}

#[test]
fn revoked_keys_stop_working() {
    let (_dir, conn) = catalog();
    let (org, _) = ensure_default_org(&conn).unwrap().unwrap();
    let (info, key) = create_key(&conn, &org.hash, Role::ReadOnly, Some("ci")).unwrap();
    assert!(authenticate(&conn, &key).unwrap().is_some());
    assert!(revoke_key(&conn, &info.id, None).unwrap());
    assert!(!revoke_key(&conn, &info.id, None).unwrap());
    assert!(authenticate(&conn, &key).unwrap().is_none());
    assert!(authenticate(&conn, "nonsense").unwrap().is_none());
}

#[test]
fn publish_lifecycle_and_recovery() {
    let (_dir, mut conn) = catalog();
    let (org, _) = ensure_default_org(&conn).unwrap().unwrap();
    let stream = create_stream(&conn, &org.hash, &NewStream::default()).unwrap();
    assert_eq!(stream.state, StreamState::Created);
    assert!(stream.streamname.starts_with(&format!("{}-", org.hash)));
    assert_eq!(stream.streamgroup, stream.id);
    // Found by streamname (case-sensitive) and by id.
    assert!(find_stream_by_key(&conn, &stream.streamname)
        .unwrap()
        .is_some());
    assert!(find_stream_by_key(&conn, &stream.id.to_string())
        .unwrap()
        .is_some());
    assert!(find_stream_by_key(&conn, &stream.streamname.to_lowercase())
        .unwrap()
        .is_none_or(|s| s.streamname == stream.streamname.to_lowercase()));

    let session = begin_publish(&mut conn, stream.id, "live")
        .unwrap()
        .unwrap();
    let live = get_stream(&conn, &org.hash, stream.id).unwrap().unwrap();
    assert_eq!(live.state, StreamState::Live);
    end_publish(&mut conn, session.id, EndReason::ClientClosed).unwrap();
    let ended = get_stream(&conn, &org.hash, stream.id).unwrap().unwrap();
    assert_eq!(ended.state, StreamState::Ended);
    let sessions = list_sessions(&conn, stream.id).unwrap();
    assert_eq!(sessions[0].end_reason.as_deref(), Some("client_closed"));

    // A crash leaves a session open; the next start closes it as recovered.
    begin_publish(&mut conn, stream.id, "rec").unwrap().unwrap();
    assert_eq!(recover_open_sessions(&mut conn).unwrap(), 1);
    let sessions = list_sessions(&conn, stream.id).unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].end_reason.as_deref(), Some("recovered"));
    assert!(sessions[0].ended_at.is_some());
    let after = get_stream(&conn, &org.hash, stream.id).unwrap().unwrap();
    assert_eq!(after.state, StreamState::Ended);
}

#[test]
fn locked_and_deleted_streams_refuse_publishing() {
    let (_dir, mut conn) = catalog();
    let (org, _) = ensure_default_org(&conn).unwrap().unwrap();
    let stream = create_stream(&conn, &org.hash, &NewStream::default()).unwrap();
    for (state, refusal) in [
        ("locked", PublishRefusal::Locked),
        ("deleted", PublishRefusal::Deleted),
    ] {
        conn.execute(
            "UPDATE streams SET state = ?1 WHERE id = ?2",
            rusqlite::params![state, stream.id.to_string()],
        )
        .unwrap();
        assert_eq!(
            begin_publish(&mut conn, stream.id, "live").unwrap(),
            Err(refusal)
        );
    }
    assert!(list_sessions(&conn, stream.id).unwrap().is_empty());
}

#[test]
fn other_organisations_streams_are_invisible() {
    let (_dir, conn) = catalog();
    let (org, _) = ensure_default_org(&conn).unwrap().unwrap();
    let (other, _) = create_org(&conn, "other").unwrap();
    let stream = create_stream(&conn, &org.hash, &NewStream::default()).unwrap();
    assert!(get_stream(&conn, &other.hash, stream.id).unwrap().is_none());
}

#[test]
fn migrations_are_idempotent_and_refuse_newer_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.sqlite3");
    drop(open_connection(&path).unwrap());
    let conn = open_connection(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(
        open_connection(&path),
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
