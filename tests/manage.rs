//! The management API: every route × role, stream groups, list filters on a catalog of
//! hundreds of streams, processing settings, the lifecycle with a real publisher,
//! organisation packages and keys, input limits and the OpenAPI document.

mod common;

use common::*;
use reelay::catalog::Role;
use reelay::client::{ClientError, RtmpClient};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn key_of(t: &TestServer, role: Role) -> String {
    t.key(role).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_each_role_as_specified() {
    let t = start().await;
    let user = key_of(&t, Role::User).await;
    let reader = key_of(&t, Role::ReadOnly).await;
    let (_, other_admin) = t.server.catalog.create_org("other").await.unwrap();
    let keys: [(&str, Option<&str>); 5] = [
        ("admin", Some(&t.admin_key)),
        ("user", Some(&user)),
        ("read-only", Some(&reader)),
        ("none", None),
        ("other org", Some(&other_admin)),
    ];
    // Each route gets a fresh stream per caller, so a delete by one does not change what the
    // next one sees. Expected: admin, user, read-only, none, other organisation.
    type Route = (Method, &'static str, Option<Value>, [u16; 5]);
    let routes: Vec<Route> = vec![
        (Method::GET, "/stream", None, [200, 200, 200, 401, 200]),
        (Method::GET, "/stream/{id}", None, [200, 200, 200, 401, 404]),
        (
            Method::GET,
            "/stream/{id}/group",
            None,
            [200, 200, 200, 401, 404],
        ),
        (
            Method::GET,
            "/stream/{id}/sessions",
            None,
            [200, 200, 200, 401, 404],
        ),
        (
            Method::PUT,
            "/stream/{id}/tag",
            Some(json!({"tags": ["a"]})),
            [200, 200, 403, 401, 404],
        ),
        (
            Method::PUT,
            "/stream/{id}/processing",
            Some(json!({"processing": [{"id": "thumbs", "interval": 10}]})),
            [200, 200, 403, 401, 404],
        ),
        (
            Method::POST,
            "/stream/{id}/stop",
            None,
            [200, 200, 403, 401, 404],
        ),
        (
            Method::POST,
            "/stream/{id}/unlock",
            None,
            [409, 409, 403, 401, 404],
        ),
        (
            Method::DELETE,
            "/stream/{id}",
            None,
            [200, 200, 403, 401, 404],
        ),
        (
            Method::POST,
            "/stream/{id}/clips",
            Some(json!({"session": "00000000-0000-4000-8000-000000000000", "start": 0, "end": 1})),
            [409, 409, 403, 401, 404],
        ),
        (
            Method::POST,
            "/stream",
            Some(json!({})),
            [201, 201, 403, 401, 201],
        ),
        (
            Method::GET,
            "/organisation",
            None,
            [200, 200, 200, 401, 200],
        ),
        (
            Method::PUT,
            "/organisation/packages",
            Some(json!({"secure": true})),
            [200, 403, 403, 401, 200],
        ),
        (Method::GET, "/apikey", None, [200, 403, 403, 401, 200]),
        (Method::GET, "/apikey/self", None, [200, 200, 200, 401, 200]),
        (
            Method::POST,
            "/apikey",
            Some(json!({"role": "nanoReadOnly"})),
            [201, 403, 403, 401, 201],
        ),
        (
            Method::DELETE,
            "/apikey/{key}",
            None,
            [204, 403, 403, 401, 404],
        ),
        (Method::GET, "/health", None, [200; 5]),
        (Method::GET, "/openapi.json", None, [200; 5]),
    ];
    for (method, template, body, want) in routes {
        for ((who, key), want) in keys.iter().zip(want) {
            let stream = t.create_stream().await;
            let (_, new_key) = t
                .request(
                    Method::POST,
                    "/apikey",
                    Some(&t.admin_key),
                    Some(json!({"role": "nanoUser"})),
                )
                .await;
            let path = template
                .replace("{id}", stream["id"].as_str().unwrap())
                .replace("{key}", new_key["id"].as_str().unwrap());
            let (status, resp) = t.request(method.clone(), &path, *key, body.clone()).await;
            assert_eq!(status, want, "{method} {path} as {who}: {resp}");
            if status >= 400 {
                assert!(resp["error"]["code"].is_string(), "error shape: {resp}");
                assert!(resp["error"]["message"].is_string(), "error shape: {resp}");
            }
        }
    }
    // The caller's own key tells its role (the dashboard adapts to it).
    for (key, role) in [
        (&t.admin_key, "nanoAdmin"),
        (&user, "nanoUser"),
        (&reader, "nanoReadOnly"),
    ] {
        let (_, me) = t
            .request(Method::GET, "/apikey/self", Some(key), None)
            .await;
        assert_eq!(me["role"], role, "{me}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_groups_list_every_profile() {
    let t = start().await;
    let (status, group) = t
        .request(
            Method::POST,
            "/stream",
            Some(&t.admin_key),
            Some(
                json!({"tags": ["lot-7"], "processing": [{"id": "thumbs", "interval": 10}],
                        "transcodes": [{"profile": "vtrans2-852x480x800x25", "tags": ["sd"]},
                                       {"profile": "vtrans2-640x360x400x25"}]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let rtmp = group["playout"]["rtmp"].as_array().unwrap();
    assert_eq!(rtmp.len(), 3);
    let names: Vec<&str> = rtmp
        .iter()
        .map(|r| r["streamname"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );
    assert_eq!(rtmp[1]["profile"], "vtrans2-852x480x800x25");
    assert_eq!(rtmp[1]["tags"], json!(["sd"]));
    // Nothing runs before the passthrough is published (tests/transcode.rs runs it).
    assert!(rtmp[1]["status"].get("transcode").is_none(), "{group}");
    assert_eq!(rtmp[2]["index"], 2);
    let id = group["id"].as_str().unwrap();
    let (_, listed) = t.get(&format!("/stream/{id}/group")).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    assert_eq!(listed["streamgroup"], id);
    // A transcode's own id finds the same group.
    let (_, from_member) = t
        .get(&format!(
            "/stream/{}/group",
            rtmp[2]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(from_member["streamgroup"], id);
    // Lists: three entries, or one with groups collapsed.
    let (_, all) = t.get("/stream").await;
    assert_eq!(all["total"], 3);
    let (_, collapsed) = t.get("/stream?streamgroups=true").await;
    assert_eq!(collapsed["total"], 1);
    assert_eq!(collapsed["items"][0]["id"], id);
    // Processing with sync reaches every profile; without, only the one.
    let body =
        json!({"processing": [{"id": "motionclip", "interval": 20, "duration": 3}], "sync": true});
    let (status, changed) = t
        .request(
            Method::PUT,
            &format!("/stream/{id}/processing"),
            Some(&t.admin_key),
            Some(body),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert!(changed["notice"].as_str().unwrap().contains("next"));
    for entry in changed["playout"]["rtmp"].as_array().unwrap() {
        assert_eq!(entry["processing"][0]["id"], "motionclip", "{entry}");
    }
    let member = rtmp[1]["id"].as_str().unwrap();
    let body = json!({"processing": []});
    t.request(
        Method::PUT,
        &format!("/stream/{member}/processing"),
        Some(&t.admin_key),
        Some(body),
    )
    .await;
    let (_, after) = t.get(&format!("/stream/{id}")).await;
    let processing: Vec<&Value> = after["playout"]["rtmp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["processing"])
        .collect();
    assert_eq!(processing[0][0]["id"], "motionclip");
    assert_eq!(processing[1], &json!([]));
    assert_eq!(processing[2][0]["id"], "motionclip");
    // Publishing to a transcoded profile is refused: the server makes it.
    let mut client = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    assert!(matches!(
        client.publish(names[1]).await,
        Err(ClientError::Refused(_))
    ));
    // Add Profile, through any member of the group: the next index, the group's processing.
    let add_path = format!("/stream/{member}/transcodes");
    let add = |body: Value| t.request(Method::POST, &add_path, Some(&t.admin_key), Some(body));
    let (status, added) = add(json!({"profile": "vtrans2-426x240x300x15", "tags": ["tiny"]})).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["streamgroup"], id);
    assert_eq!(added["playout"]["rtmp"].as_array().unwrap().len(), 4);
    let new_entry = &added["playout"]["rtmp"][3];
    assert_eq!(new_entry["index"], 3);
    assert_eq!(new_entry["profile"], "vtrans2-426x240x300x15");
    assert_eq!(new_entry["tags"], json!(["tiny"]));
    assert_eq!(new_entry["processing"][0]["id"], "motionclip");
    assert!(added["notice"].as_str().unwrap().contains("next ingest"));
    let (status, refused) = add(json!({"profile": "vtrans2-426x240x300"})).await;
    assert_eq!(
        (status, &refused["error"]["field"]),
        (400, &json!("profile")),
        "{refused}"
    );
    let (status, _) = t
        .request(
            Method::POST,
            "/stream/00000000-0000-4000-8000-000000000000/transcodes",
            Some(&t.admin_key),
            Some(json!({"profile": "vtrans2-426x240x300x15"})),
        )
        .await;
    assert_eq!(status, 404);
    // At most 8 transcodes: 3 now, 5 more, then 409.
    for _ in 0..5 {
        assert_eq!(
            add(json!({"profile": "vtrans2-320x180x200x15"})).await.0,
            201
        );
    }
    let (status, full) = add(json!({"profile": "vtrans2-320x180x200x15"})).await;
    assert_eq!(status, 409, "{full}");
    let (_, listed) = t.get(&format!("/stream/{id}/group")).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_settings_are_validated_with_the_field_and_range() {
    let t = start().await;
    let stream = t.create_stream().await;
    let path = format!("/stream/{}/processing", stream["id"].as_str().unwrap());
    let cases = [
        (
            json!({"processing": [{"id": "thumbs", "interval": 3601}]}),
            "processing[0].interval",
            "10..=3600",
        ),
        (
            json!({"processing": [{"id": "rec", "duration": null}, {"id": "motionclip", "interval": 10, "duration": 61}]}),
            "processing[1].duration",
            "1..=60",
        ),
        (
            json!({"processing": [{"id": "replay", "duration": 0}]}),
            "processing[0].duration",
            "1..=86400",
        ),
        (
            json!({"processing": [{"id": "transcode"}]}),
            "processing[0].id",
            "allowed",
        ),
        (json!({"processing": [], "extra": 1}), "extra", ""),
        (json!({"processing": [], "sync": "yes"}), "", ""),
        // Found by schemathesis: a list is required, and a body is an object.
        (json!({"processing": null}), "processing", "list"),
        (json!([null, null]), "", "JSON object"),
        (json!([[], true]), "", "JSON object"),
    ];
    for (body, field, range) in cases {
        let (status, resp) = t
            .request(Method::PUT, &path, Some(&t.admin_key), Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert_eq!(
            resp["error"]["field"].as_str().unwrap_or(""),
            field,
            "{body}: {resp}"
        );
        assert!(
            resp["error"]["message"].as_str().unwrap().contains(range),
            "{resp}"
        );
    }
    let good = json!({"processing": [{"id": "rec", "duration": 3600}, {"id": "replay"}]});
    let (status, resp) = t
        .request(Method::PUT, &path, Some(&t.admin_key), Some(good))
        .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        resp["playout"]["rtmp"][0]["processing"],
        json!([{"id": "rec", "duration": 3600}, {"id": "replay", "duration": null}])
    );
    assert_ne!(resp["updated_at"], stream["updated_at"]);
}

/// Sets a stream's creation time (to build date ranges).
async fn backdate(t: &TestServer, id: &str, created_at: &str) {
    t.sql()
        .execute(
            "UPDATE streams SET created_at = ?1 WHERE id = ?2",
            rusqlite::params![created_at, id],
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_on_a_catalog_of_hundreds_of_streams() {
    let t = start().await;
    // 300 streams: tags by residue, creation dates one hour apart going back from 2026-11-20.
    let mut ids = Vec::new();
    for i in 0..300u32 {
        let mut tags = vec![format!("n{}", i % 3)];
        if i % 5 == 0 {
            tags.push("five".into());
        }
        let (status, s) = t
            .request(
                Method::POST,
                "/stream",
                Some(&t.admin_key),
                Some(json!({"tags": tags})),
            )
            .await;
        assert_eq!(status, 201);
        let id = s["id"].as_str().unwrap().to_string();
        let at = time::OffsetDateTime::parse(
            "2026-11-20T12:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
            - time::Duration::hours(i64::from(i));
        backdate(&t, &id, &reelay::catalog::format_rfc3339(at)).await;
        ids.push((
            id,
            s["ingest"]["rtmp"]["streamname"]
                .as_str()
                .unwrap()
                .to_string(),
        ));
    }
    let list = |query: String| {
        let t = &t;
        async move {
            let (status, body) = t.get(&format!("/stream?{query}")).await;
            assert_eq!(status, 200, "{query}: {body}");
            body
        }
    };
    // Pagination: 300 in 2 pages of 150, newest first, no overlap.
    let first = list("per_page=150".into()).await;
    let second = list("per_page=150&page=2".into()).await;
    let third = list("per_page=150&page=3".into()).await;
    assert_eq!(
        (first["total"].as_u64(), second["total"].as_u64()),
        (Some(300), Some(300))
    );
    assert_eq!(first["items"][0]["id"], ids[0].0.as_str());
    assert_eq!(second["items"][149]["id"], ids[299].0.as_str());
    assert_eq!(third["items"].as_array().unwrap().len(), 0);
    assert_eq!(
        list(String::new()).await["items"].as_array().unwrap().len(),
        25
    );
    // Tags: all must match (n0 and five: i ≡ 0 mod 15 → 20 streams).
    assert_eq!(list("tags=n0,five".into()).await["total"], 20);
    assert_eq!(list("tags=n1".into()).await["total"], 100);
    assert_eq!(list("tags=nothing".into()).await["total"], 0);
    // Dates: from inclusive, to exclusive; a day holds 24 of them.
    let day = list("from=2026-11-19T12:00:01Z&to=2026-11-20T12:00:01Z&per_page=50".into()).await;
    assert_eq!(day["total"], 24);
    assert_eq!(day["items"][0]["id"], ids[0].0.as_str());
    assert_eq!(
        list("from=2026-11-20T13:00:00%2B01:00".into()).await["total"],
        1,
        "offsets are honoured"
    );
    // q: exact and case-sensitive, id or streamname.
    let (id, name) = &ids[42];
    assert_eq!(
        list(format!("q={name}")).await["items"][0]["id"],
        id.as_str()
    );
    assert_eq!(list(format!("q={id}")).await["total"], 1);
    assert_eq!(
        list(format!("q={}", name.to_lowercase())).await["total"],
        u64::from(name.to_lowercase() == *name)
    );
    assert_eq!(
        list(format!("q={}", &name[..name.len() - 1])).await["total"],
        0
    );
    // quantity: the newest N, paginated within.
    let newest = list("quantity=30&per_page=25&page=2".into()).await;
    assert_eq!(newest["total"], 30);
    assert_eq!(newest["items"].as_array().unwrap().len(), 5);
    // States: deleted are hidden unless asked for.
    let (status, _) = t
        .request(
            Method::DELETE,
            &format!("/stream/{}", ids[0].0),
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(list(String::new()).await["total"], 299);
    assert_eq!(list("state=all".into()).await["total"], 299);
    assert_eq!(list("state=deleted".into()).await["total"], 1);
    assert_eq!(list("state=created".into()).await["total"], 299);
    assert_eq!(list("state=live".into()).await["total"], 0);
    // Bad parameters name themselves.
    for (query, field) in [
        ("per_page=20", "per_page"),
        ("page=0", "page"),
        ("state=on", "state"),
        ("from=yesterday", "from"),
        ("streamgroups=1", "streamgroups"),
        ("colour=red", "colour"),
        ("quantity=-1", "quantity"),
    ] {
        let (status, body) = t.get(&format!("/stream?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_disconnects_the_publisher_and_locks_until_unlocked() {
    let t = start().await;
    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    let tags = fixture_tags();
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    send_tags(&mut publisher, &tags[..40], 0.0).await;
    t.wait_state(&id, "live").await;

    let asked = Instant::now();
    let (status, locked) = t
        .request(
            Method::POST,
            &format!("/stream/{id}/stop"),
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(status, 200, "{locked}");
    assert_eq!(locked["state"], "locked");
    // The publisher is disconnected within a second: its connection ends.
    let ended = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(Some(_)) = publisher.next_media().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "still connected {:?} after stop",
        asked.elapsed()
    );
    let sessions = t.sessions(&id).await;
    assert_eq!(sessions[0]["end_reason"], "stopped", "{sessions:?}");
    assert_eq!(t.state_of(&id).await, "locked");
    // Publishing is refused while locked.
    let mut again = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    assert!(
        matches!(again.publish(&name).await, Err(ClientError::Refused(code)) if code == "NetStream.Publish.Denied")
    );
    // Unlock: ended (it was live once); publishing works again.
    let (status, unlocked) = t
        .request(
            Method::POST,
            &format!("/stream/{id}/unlock"),
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(unlocked["state"], "ended");
    assert!(
        unlocked["updated_at"].as_str() > locked["updated_at"].as_str()
            || unlocked["updated_at"] == locked["updated_at"]
    );
    let mut back = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    back.publish(&name).await.unwrap();
    t.wait_state(&id, "live").await;
    // Delete disconnects too; the stream stays readable by id, refuses publishing and edits.
    let (status, deleted) = t
        .request(
            Method::DELETE,
            &format!("/stream/{id}"),
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(deleted["state"], "deleted");
    let gone = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(Some(_)) = back.next_media().await {}
    })
    .await;
    assert!(gone.is_ok(), "publisher still connected after delete");
    assert_eq!(t.state_of(&id).await, "deleted");
    let (status, body) = t
        .request(
            Method::PUT,
            &format!("/stream/{id}/tag"),
            Some(&t.admin_key),
            Some(json!({"tags": ["x"]})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let mut refused = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    assert!(refused.publish(&name).await.is_err());
    // Unlock of a never-live locked stream gives created.
    let fresh = t.create_stream().await;
    let fid = fresh["id"].as_str().unwrap();
    t.request(
        Method::POST,
        &format!("/stream/{fid}/stop"),
        Some(&t.admin_key),
        None,
    )
    .await;
    let (_, unlocked) = t
        .request(
            Method::POST,
            &format!("/stream/{fid}/unlock"),
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(unlocked["state"], "created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_and_keys_of_the_organisation() {
    let t = start().await;
    let (status, org) = t.get("/organisation").await;
    assert_eq!(status, 200);
    assert_eq!(
        org["packages"],
        json!({"vod": true, "live_processing": true, "transcoding": true, "secure": true})
    );
    let (status, org) = t
        .request(
            Method::PUT,
            "/organisation/packages",
            Some(&t.admin_key),
            Some(json!({"live_processing": false})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(org["packages"]["live_processing"], false);
    assert_eq!(org["packages"]["vod"], true);
    let (status, body) = t
        .request(
            Method::PUT,
            "/organisation/packages",
            Some(&t.admin_key),
            Some(json!({"vod": "off"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // With live_processing off, a stream's thumbnails are inert and say so.
    let stream = t
        .create_stream_with(json!([{"id": "thumbs", "interval": 10}]))
        .await;
    let id = stream["id"].as_str().unwrap().to_string();
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&streamname(&stream)).await.unwrap();
    send_tags(&mut publisher, &fixture_tags()[..40], 0.0).await;
    t.wait_state(&id, "live").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, now) = t.get(&format!("/stream/{id}")).await;
        let thumbs = &now["playout"]["rtmp"][0]["status"]["thumbs"];
        if thumbs["state"] == "disabled" {
            assert!(thumbs["detail"]
                .as_str()
                .unwrap()
                .contains("live_processing"));
            break;
        }
        assert!(Instant::now() < deadline, "{now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publisher.stop_publishing().await.unwrap();

    // Keys: create (secret shown once), list (no secrets), revoke (stops working at once).
    let (status, created) = t
        .request(
            Method::POST,
            "/apikey",
            Some(&t.admin_key),
            Some(json!({"role": "nanoReadOnly", "name": "wall"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["key"].as_str().unwrap().to_string();
    assert_eq!(
        t.request(Method::GET, "/stream", Some(&secret), None)
            .await
            .0,
        200
    );
    let (_, listed) = t
        .request(Method::GET, "/apikey", Some(&t.admin_key), None)
        .await;
    let text = listed.to_string();
    assert!(text.contains("wall") && !text.contains(&secret), "{text}");
    let (status, _) = t
        .request(
            Method::DELETE,
            &format!("/apikey/{}", created["id"].as_str().unwrap()),
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        t.request(Method::GET, "/stream", Some(&secret), None)
            .await
            .0,
        401
    );
    for (body, field) in [
        (json!({"role": "root"}), ""),
        (json!({"role": "nanoUser", "name": ""}), "name"),
    ] {
        let (status, resp) = t
            .request(Method::POST, "/apikey", Some(&t.admin_key), Some(body))
            .await;
        assert_eq!(status, 400, "{resp}");
        assert_eq!(
            resp["error"]["field"].as_str().unwrap_or(""),
            field,
            "{resp}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_the_openapi_document() {
    // A small limit, so the whole body is in the socket before the server answers 413 and
    // closes (a body of megabytes would race the close and fail the client's write).
    let t = start_with(|c| c.server.max_body_bytes = 1024).await;
    let huge = json!({"tags": [ "x".repeat(4096) ]});
    let (status, body) = t
        .request(Method::POST, "/stream", Some(&t.admin_key), Some(huge))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Unknown query parameters are refused, naming the parameter, also where none are taken.
    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap();
    for path in [
        format!("/stream/{id}/sessions?verbose=1"),
        format!("/stream/{id}?verbose=1"),
        "/organisation?verbose=1".to_string(),
    ] {
        let (status, body) = t.get(&path).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("verbose")),
            "{path}: {body}"
        );
    }

    let (status, doc) = t.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/stream", "get"),
        ("/stream", "post"),
        ("/stream/{id}", "get"),
        ("/stream/{id}", "delete"),
        ("/stream/{id}/group", "get"),
        ("/stream/{id}/tag", "put"),
        ("/stream/{id}/processing", "put"),
        ("/stream/{id}/stop", "post"),
        ("/stream/{id}/unlock", "post"),
        ("/stream/{id}/sessions", "get"),
        ("/stream/{id}/clips", "post"),
        ("/organisation", "get"),
        ("/organisation/packages", "put"),
        ("/apikey", "post"),
        ("/apikey", "get"),
        ("/apikey/{id}", "delete"),
        ("/apikey/self", "get"),
        ("/health", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in ["StreamView", "ProcessingEntry", "ErrorBody", "StreamList"] {
        assert!(schemas.contains_key(name), "{name}");
    }
}

/// The value of the sample `name` (with its labels, exactly as rendered) in `/metrics`.
async fn sample(t: &TestServer, name: &str) -> Option<f64> {
    let text = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_streams_traffic_and_requests() {
    let t = start().await;
    let stream = t.create_stream().await;
    t.create_stream().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&streamname(&stream)).await.unwrap();
    let tags = fixture_tags();
    send_tags(&mut publisher, &tags[..60], 0.0).await;
    t.wait_state(&id, "live").await;
    let mut player = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    player.play(&streamname(&stream)).await.unwrap();
    assert!(player.next_media().await.unwrap().is_some());

    assert_eq!(
        sample(&t, "reelay_streams{state=\"live\"}").await,
        Some(1.0)
    );
    assert_eq!(
        sample(&t, "reelay_streams{state=\"created\"}").await,
        Some(1.0)
    );
    assert_eq!(
        sample(&t, "reelay_streams{state=\"deleted\"}").await,
        Some(0.0)
    );
    assert_eq!(sample(&t, "reelay_publishers").await, Some(1.0));
    assert_eq!(sample(&t, "reelay_rtmp_players").await, Some(1.0));
    let received = sample(&t, "reelay_rtmp_received_bytes_total")
        .await
        .unwrap();
    let sent = sample(&t, "reelay_rtmp_sent_bytes_total").await.unwrap();
    assert!(received > 20_000.0, "{received}");
    assert!(sent > 10_000.0, "{sent}");
    // Requests by route pattern (not path) and status, with latency.
    let route = "reelay_http_requests_total{route=\"/stream/{id}\",method=\"GET\",status=\"200\"}";
    let before = sample(&t, route).await.unwrap_or(0.0);
    t.get(&format!("/stream/{id}")).await;
    t.get("/stream/not-a-stream").await;
    assert_eq!(sample(&t, route).await, Some(before + 1.0));
    let missing =
        "reelay_http_requests_total{route=\"/stream/{id}\",method=\"GET\",status=\"404\"}";
    assert_eq!(sample(&t, missing).await, Some(1.0));
    let latency =
        "reelay_http_request_duration_seconds_count{route=\"/stream/{id}\",method=\"GET\"}";
    assert!(sample(&t, latency).await.unwrap() >= 2.0);
    drop(player);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sample(&t, "reelay_rtmp_players").await != Some(0.0) {
        assert!(Instant::now() < deadline, "player gauge not released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publisher.stop_publishing().await.unwrap();
}
