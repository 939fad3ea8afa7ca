//! HTTP API tests: authentication, roles, organisation scoping, validation errors, shapes.

mod common;

use common::*;
use reelay::catalog::Role;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_organisations() {
    let t = start().await;
    let user = t.key(Role::User).await;
    let reader = t.key(Role::ReadOnly).await;
    let (_, other_admin) = t.server.catalog.create_org("other").await.unwrap();

    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap();
    let get_path = format!("/stream/{id}");
    let sessions_path = format!("/stream/{id}/sessions");
    // (method, path, body) × (key, expected status)
    let routes = [
        (Method::POST, "/stream".to_string(), Some(json!({}))),
        (Method::GET, get_path.clone(), None),
        (Method::GET, sessions_path.clone(), None),
    ];
    let keys: [(&str, Option<&str>); 5] = [
        ("admin", Some(&t.admin_key)),
        ("user", Some(&user)),
        ("read-only", Some(&reader)),
        ("none", None),
        ("other org", Some(&other_admin)),
    ];
    let expected = [
        // POST /stream: admin, user ok; read-only 403; none 401; other org creates its own.
        [201, 201, 403, 401, 201],
        [200, 200, 200, 401, 404],
        [200, 200, 200, 401, 404],
    ];
    for ((method, path, body), want) in routes.iter().zip(expected) {
        for ((who, key), want) in keys.iter().zip(want) {
            let (status, resp) = t.request(method.clone(), path, *key, body.clone()).await;
            assert_eq!(status, want, "{method} {path} as {who}: {resp}");
            if status >= 400 {
                assert!(resp["error"]["code"].is_string(), "error shape: {resp}");
                assert!(resp["error"]["message"].is_string(), "error shape: {resp}");
            }
        }
    }
    // Bearer works like X-BINTU-APIKEY; a wrong key is 401.
    let resp = t
        .http
        .get(t.url(&get_path))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (status, _) = t
        .request(Method::GET, &get_path, Some("rl_wrong"), None)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_stream_validates_and_returns_the_bintu_shape() {
    let t = start().await;
    let post = |body| t.request(Method::POST, "/stream", Some(&t.admin_key), Some(body));
    let (status, s) = post(json!({
        "tags": ["casino", "table-7"],
        "processing": [{"id": "rec", "duration": 3600}, {"id": "thumbs", "interval": 30}]
    }))
    .await;
    assert_eq!(status, 201, "{s}");
    let name = s["ingest"]["rtmp"]["streamname"].as_str().unwrap();
    let org: String = name.split('-').next().unwrap().to_string();
    assert_eq!(org.len(), 5);
    assert_eq!(name.len(), 11);
    assert_eq!(s["state"], "created");
    assert_eq!(s["streamgroup"], s["id"]);
    assert_eq!(s["tags"], json!(["casino", "table-7"]));
    let rtmp_url = format!("rtmp://127.0.0.1:{}/live", t.rtmp().port());
    assert_eq!(s["ingest"]["rtmp"]["url"], rtmp_url);
    let playout = &s["playout"]["rtmp"][0];
    assert_eq!(playout["index"], 0);
    assert_eq!(playout["streamname"], name);
    assert_eq!(
        playout["processing"][0],
        json!({"id": "rec", "duration": 3600})
    );
    for key in ["hls", "web", "thumbnails", "replay", "motionclip"] {
        assert!(s["playout"][key].is_array(), "{key}");
    }
    for ts in ["created_at", "updated_at"] {
        let v = s[ts].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).is_ok()
        );
    }

    let cases = [
        (
            json!({"processing": [{"id": "thumbs", "interval": 5}]}),
            "processing[0].interval",
        ),
        (json!({"processing": [{"id": "x"}]}), "processing[0].id"),
        (json!({"tags": ["", "a"]}), "tags[0]"),
        (json!({"tags": vec!["t"; 51]}), "tags"),
        (json!({"colour": "red"}), "colour"),
        (
            json!({"transcodes": [{"profile": "vtrans2-852x480x800"}]}),
            "transcodes[0].profile",
        ),
        (
            json!({"transcodes": [{"profile": "vtrans2-852x480x800x25", "tags": [""]}]}),
            "transcodes[0].tags[0]",
        ),
    ];
    for (body, field) in cases {
        let (status, resp) = post(body.clone()).await;
        assert_eq!(status, 400, "{body}: {resp}");
        assert_eq!(resp["error"]["field"], field, "{body}: {resp}");
        assert_eq!(resp["error"]["code"], "invalid_input");
    }
    // Not JSON at all.
    let resp = t
        .http
        .post(t.url("/stream"))
        .header("X-BINTU-APIKEY", &t.admin_key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_input");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_routes_and_health() {
    let t = start().await;
    let (status, body) = t.request(Method::GET, "/health", None, None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    for path in [
        "/stream/not-a-uuid",
        "/stream/7b0c3f0e-1111-4222-8333-444455556666",
        "/stream/7b0c3f0e-1111-4222-8333-444455556666/sessions",
        "/no/such/route",
    ] {
        let (status, body) = t.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let stream = t.create_stream().await;
    let (status, body) = t
        .get(&format!(
            "/stream/{}?asset_limit=0",
            stream["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "asset_limit");
}
