//! The dashboard in a real browser (Debian's headless `chromium` + `chromedriver`, required
//! when CI=true), driven like a user: sign in with a key, create a stream with the form, see
//! it turn live in the list while a test publisher pushes the fixture, see its thumbnail, play
//! the live stream on the watch page and the replay in the stream page (`currentTime`
//! advances), make a clip, stop & lock, delete, filter and paginate 60 streams, and find no
//! edit control with a read-only key. Along the way: no console errors, no request to another
//! origin, keyboard use of the tabs, and screenshots of the main screens (laptop and phone
//! sizes) saved to `$REELAY_SCREENSHOTS` (default `target/screenshots`).

mod common;

use common::webdriver::Browser;
use common::*;
use reelay::catalog::Role;
use reelay::client::RtmpClient;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn screenshot_dir() -> PathBuf {
    std::env::var_os("REELAY_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/screenshots"))
        })
}

/// A JavaScript string literal.
fn js(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// Fails on any console error or warning the pages logged since the last check, and on any
/// resource the page loaded from another origin.
async fn assert_clean(browser: &Browser, step: &str) {
    let problems: Vec<_> = browser
        .console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
        .collect();
    assert!(problems.is_empty(), "{step}: console: {problems:?}");
    let foreign = browser
        .eval(
            "return performance.getEntriesByType('resource').map(e => e.name)
                .filter(n => !n.startsWith(location.origin + '/') && !n.startsWith('blob:') && !n.startsWith('data:'));",
        )
        .await;
    assert_eq!(foreign, json!([]), "{step}: requests to other origins");
}

async fn sign_in(browser: &Browser, t: &TestServer, key: &str) {
    browser.goto(&t.url("/")).await;
    browser
        .eval("sessionStorage.clear(); location.reload();")
        .await;
    browser.wait_element("#apikey", WAIT).await;
    browser.type_into("#apikey", key, true).await;
    browser.click("form.signin button[type=submit]").await;
    browser.wait_element("table.streams", WAIT).await;
}

/// Waits until `expression` is true in the page.
async fn wait_true(browser: &Browser, expression: &str, what: &str) {
    let value = browser
        .wait_for(&format!("(({expression}) || null)"), WAIT)
        .await;
    if value.is_null() {
        let page = browser
            .eval("return [location.hash, document.getElementById('list-summary')?.textContent, document.getElementById('status')?.textContent];")
            .await;
        panic!("timed out waiting for {what}; page (hash, list summary, status): {page}");
    }
}

/// How far the video matched by `css` plays in `watch`.
async fn advances(browser: &Browser, css: &str, watch: Duration) -> f64 {
    let time = format!("document.querySelector({}).currentTime", js(css));
    wait_true(browser, &format!("{time} > 0"), &format!("{css} to start")).await;
    let first = browser
        .eval(&format!("return {time};"))
        .await
        .as_f64()
        .unwrap();
    tokio::time::sleep(watch).await;
    let last = browser
        .eval(&format!("return {time};"))
        .await
        .as_f64()
        .unwrap();
    last - first
}

/// Another site: serves `pages` (path → HTML) on a port of its own, so the browser treats it
/// as a different origin from reelay. Returns its base URL.
async fn serve_pages(pages: Vec<(&'static str, String)>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = vec![0; 4096];
            let n = socket.read(&mut request).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&request[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("/");
            let body = pages.iter().find(|(p, _)| *p == path).map(|(_, html)| {
                format!("<!doctype html><meta charset=utf-8><title>a site</title>{html}")
            });
            let response = match body {
                Some(html) => format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                    html.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
            };
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_end_to_end_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let shots = screenshot_dir();
    let t = start().await;

    // --- Sign in: the form, a wrong key, then the admin key.
    browser.goto(&t.url("/")).await;
    browser.wait_element("#apikey", WAIT).await;
    browser.screenshot(&shots.join("sign-in.png")).await;
    browser.type_into("#apikey", "not-a-key", false).await;
    browser.click("form.signin button[type=submit]").await;
    wait_true(
        &browser,
        "document.getElementById('signin-error').textContent.includes('not valid')",
        "the wrong-key message",
    )
    .await;
    // Chromium logs the refused request itself; that one is expected.
    browser.console().await;
    sign_in(&browser, &t, &t.admin_key).await;
    let stored = browser
        .eval("return [sessionStorage.length, localStorage.length, document.cookie];")
        .await;
    assert_eq!(
        stored,
        json!([1, 0, ""]),
        "the key lives in the session only"
    );

    // --- Create a stream with the form: tags, thumbnails every 10 s, replay, recording.
    browser.click("#new-stream").await;
    browser
        .type_into("#new-tags", "casino, table-7", false)
        .await;
    for entry in ["thumbs", "replay", "rec"] {
        browser.click(&format!("#proc-{entry}")).await;
    }
    browser.type_into("#proc-thumbs-interval", "10", true).await;
    browser.click("#create-submit").await;
    let id = browser
        .wait_for(
            "(location.hash.startsWith('#/stream/') && document.getElementById('stream-id')?.textContent) || null",
            WAIT,
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    let (status, stream) = t.get(&format!("/stream/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(stream["tags"], json!(["casino", "table-7"]));
    let processing = &stream["playout"]["rtmp"][0]["processing"];
    let ids: Vec<&str> = processing
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{processing}");
    for wanted in ["thumbs", "replay", "rec"] {
        assert!(ids.contains(&wanted), "{processing}");
    }
    let name = streamname(&stream);
    assert_clean(&browser, "create").await;

    // --- Publish the fixture in real time; the list shows the stream live.
    let (tags, _) = looped_fixture(10);
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    // Sends until the server cuts the publisher off (stop & lock, below).
    let pusher = tokio::spawn(async move {
        let started = std::time::Instant::now();
        for tag in &tags {
            let due = Duration::from_millis(u64::from(tag.timestamp_ms));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
            if publisher.send_tag(tag).await.is_err() {
                return true;
            }
        }
        false
    });
    browser.goto(&t.url("/#/streams")).await;
    wait_true(
        &browser,
        &format!("document.querySelector('tr[data-id=\"{id}\"] [data-state=\"live\"]')"),
        "the stream to show live in the list",
    )
    .await;
    browser.screenshot(&shots.join("stream-list.png")).await;

    // --- The stream page: Live Processing shows the thumbnail once taken.
    browser
        .goto(&t.url(&format!("/#/stream/{id}?tab=processing")))
        .await;
    wait_true(
        &browser,
        "document.querySelector('#preview-thumbnails img')?.naturalWidth > 0",
        "the thumbnail preview",
    )
    .await;
    wait_true(
        &browser,
        "document.querySelector('#status-table [data-sink=\"thumbs\"]')",
        "the thumbs status row",
    )
    .await;
    // Keyboard: arrow keys move between tabs.
    browser
        .eval("document.getElementById('tab-processing').focus();")
        .await;
    browser.press("\u{E014}").await; // arrow right
    wait_true(
        &browser,
        "document.getElementById('tab-snippets')?.getAttribute('aria-selected') === 'true'",
        "arrow right to select Code Snippets",
    )
    .await;
    let snippet = browser
        .eval("return document.getElementById('snippet-iframe').textContent;")
        .await;
    assert!(
        snippet
            .as_str()
            .unwrap()
            .contains(&format!("/watch?name={name}")),
        "{snippet}"
    );
    browser.screenshot(&shots.join("code-snippets.png")).await;
    let snippets = browser
        .eval("return ['snippet-iframe', 'snippet-html'].map(id => document.getElementById(id).textContent);")
        .await;
    browser.press("\u{E012}").await; // arrow left, back to Live Processing
    browser.wait_element("#preview-thumbnails img", WAIT).await;
    browser.screenshot(&shots.join("live-processing.png")).await;
    // Edit the processing: thumbnails every 20 s (applies from the next ingest, the page says).
    browser.type_into("#proc-thumbs-interval", "20", true).await;
    browser.click("#processing-save").await;
    wait_true(
        &browser,
        "document.getElementById('status').textContent.includes('next')",
        "the notice that changes apply at the next ingest",
    )
    .await;
    let (_, changed) = t.get(&format!("/stream/{id}")).await;
    let thumbs = changed["playout"]["rtmp"][0]["processing"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "thumbs")
        .cloned();
    assert_eq!(thumbs, Some(json!({"id": "thumbs", "interval": 20})));
    // Overview: add a tag and save.
    browser.click("#tab-overview").await;
    browser.type_into("#tag-new", "vip\u{E007}", false).await;
    browser.click("#tags-save").await;
    wait_true(
        &browser,
        "document.getElementById('status').textContent.includes('Tags saved')",
        "tags saved",
    )
    .await;
    let (_, tagged) = t.get(&format!("/stream/{id}")).await;
    assert_eq!(tagged["tags"], json!(["casino", "table-7", "vip"]));
    browser.screenshot(&shots.join("overview.png")).await;
    assert_clean(&browser, "stream page").await;

    // --- Watch: the player page plays the live stream.
    browser.goto(&t.url(&format!("/watch?name={name}"))).await;
    let live = advances(&browser, "#video", Duration::from_secs(3)).await;
    assert!(live > 1.5, "live playback advanced only {live:.2} s");
    browser.screenshot(&shots.join("watch.png")).await;
    assert_clean(&browser, "watch").await;

    // --- The Code Snippets, pasted into a page of another site, play the live stream.
    let site = serve_pages(vec![
        ("/iframe.html", snippets[0].as_str().unwrap().to_string()),
        ("/html.html", snippets[1].as_str().unwrap().to_string()),
    ])
    .await;
    browser.goto(&format!("{site}/iframe.html")).await;
    browser.enter_frame("iframe").await;
    let framed = advances(&browser, "#video", Duration::from_secs(3)).await;
    assert!(
        framed > 1.5,
        "the iframe snippet advanced only {framed:.2} s"
    );
    browser.leave_frame().await;
    browser.goto(&format!("{site}/html.html")).await;
    let embedded = advances(&browser, "video", Duration::from_secs(3)).await;
    assert!(
        embedded > 1.5,
        "the HTML snippet advanced only {embedded:.2} s"
    );
    browser.console().await; // another site's page: its own console is not ours to judge

    // --- Rewatch the replay in the page, then make a clip of it.
    browser
        .goto(&t.url(&format!("/#/stream/{id}?tab=processing")))
        .await;
    browser.click("[data-rewatch]").await;
    let replay = advances(&browser, "#replay-video", Duration::from_secs(3)).await;
    assert!(replay > 1.5, "replay advanced only {replay:.2} s");
    browser.click("[data-clip]").await;
    browser.wait_element("#clip-start", WAIT).await;
    browser.type_into("#clip-start", "1", true).await;
    browser.type_into("#clip-end", "4", true).await;
    browser.click("#clip-make").await;
    let clip_url = browser
        .wait_for(
            "document.getElementById('clip-open')?.getAttribute('href') || null",
            WAIT,
        )
        .await;
    let clip = t
        .http
        .get(t.url(clip_url.as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(clip.status(), 200);
    let bytes = clip.bytes().await.unwrap();
    assert_eq!(&bytes[4..8], b"ftyp", "the clip is an MP4");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.mp4");
    std::fs::write(&path, &bytes).unwrap();
    if let Some(probe) = probe(&path) {
        let duration = format_duration(&probe);
        assert!((duration - 3.0).abs() < 0.5, "clip lasts {duration} s");
    }
    browser.screenshot(&shots.join("clip-and-share.png")).await;
    assert_clean(&browser, "replay and clip").await;

    // --- Stop & lock (confirmed): the publisher is cut off, the page says locked.
    browser.click("#action-stop").await;
    browser.click("dialog [data-confirm]").await;
    wait_true(
        &browser,
        "document.querySelector('.stream-head [data-state=\"locked\"]')",
        "the locked state",
    )
    .await;
    assert!(browser.find("#action-unlock").await.is_some());
    let cut_off = tokio::time::timeout(Duration::from_secs(10), pusher)
        .await
        .expect("the publisher is cut off after stop")
        .unwrap();
    assert!(cut_off, "the publisher could send everything after stop");
    assert_eq!(t.state_of(&id).await, "locked");

    // --- Delete (confirmed; cancel first leaves it alone).
    browser.click("#action-delete").await;
    browser.click("dialog button[value=cancel]").await;
    assert_eq!(t.state_of(&id).await, "locked");
    browser.click("#action-delete").await;
    browser.click("dialog [data-confirm]").await;
    wait_true(
        &browser,
        "document.querySelector('.stream-head [data-state=\"deleted\"]')",
        "the deleted state",
    )
    .await;
    assert_eq!(t.state_of(&id).await, "deleted");
    assert!(browser.find("#action-delete").await.is_none());
    assert_clean(&browser, "stop and delete").await;

    // --- 60 streams: paginate, filter by tag (with suggestions) and state, search.
    for i in 0..60 {
        let tag = if i % 2 == 0 { "evening" } else { "morning" };
        let (status, body) = t
            .request(
                reqwest::Method::POST,
                "/stream",
                Some(&t.admin_key),
                Some(json!({"tags": [tag, format!("n{i}")]})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    browser.goto(&t.url("/#/streams")).await;
    let summary = |text: &str| {
        format!(
            "document.getElementById('list-summary').textContent.includes({})",
            js(text)
        )
    };
    // 60 + the group-less test stream is deleted (hidden): 60 in all states but deleted.
    wait_true(
        &browser,
        &summary("Page 1 of 3 · 60 streams"),
        "3 pages of 25",
    )
    .await;
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('table.streams tbody tr').length;")
            .await,
        json!(25)
    );
    browser.click("#page-next").await;
    wait_true(&browser, &summary("Page 2 of 3"), "page 2").await;
    browser
        .eval("const s = document.getElementById('filter-per-page'); s.value = '50'; s.dispatchEvent(new Event('change'));")
        .await;
    wait_true(
        &browser,
        &summary("Page 1 of 2 · 60 streams"),
        "50 per page",
    )
    .await;
    browser.type_into("#filter-tags", "even", false).await;
    wait_true(
        &browser,
        "[...document.querySelectorAll('#tag-suggestions option')].some(o => o.value === 'evening')",
        "a tag suggestion after 3 characters",
    )
    .await;
    browser.type_into("#filter-tags", "evening", true).await;
    browser.click(".filters button[type=submit]").await;
    wait_true(
        &browser,
        &summary("Page 1 of 1 · 30 streams"),
        "the tag filter",
    )
    .await;
    browser
        .screenshot(&shots.join("stream-list-filtered.png"))
        .await;
    browser.type_into("#filter-tags", "", true).await;
    browser
        .eval("const s = document.getElementById('filter-state'); s.value = 'deleted'; s.dispatchEvent(new Event('change'));")
        .await;
    wait_true(&browser, &summary("· 1 stream"), "the deleted filter").await;
    browser
        .eval("const s = document.getElementById('filter-state'); s.value = 'all'; s.dispatchEvent(new Event('change'));")
        .await;
    browser.type_into("#filter-q", &name, true).await;
    browser.click(".filters button[type=submit]").await;
    wait_true(
        &browser,
        &summary("· 0 streams"),
        "search: deleted streams are hidden from all",
    )
    .await;
    let (_, some) = t.get("/stream?per_page=25&tags=n7").await;
    let other = some["items"][0]["ingest"]["rtmp"]["streamname"]
        .as_str()
        .unwrap()
        .to_string();
    browser.type_into("#filter-q", &other, true).await;
    browser.click(".filters button[type=submit]").await;
    wait_true(&browser, &summary("· 1 stream"), "search by streamname").await;
    browser
        .type_into("#filter-q", &other.to_lowercase(), true)
        .await;
    browser.click(".filters button[type=submit]").await;
    wait_true(&browser, &summary("· 0 streams"), "case-sensitive search").await;
    // A stream group: one badge per stream, one entry when grouped, members on expanding.
    let (status, group) = t
        .request(
            reqwest::Method::POST,
            "/stream",
            Some(&t.admin_key),
            Some(
                json!({"tags": ["grouped"], "transcodes": [{"profile": "vtrans2-852x480x800x25", "tags": ["grouped"]}]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    browser.type_into("#filter-q", "", true).await;
    browser.type_into("#filter-tags", "grouped", true).await;
    browser.click(".filters button[type=submit]").await;
    wait_true(
        &browser,
        &summary("· 2 streams"),
        "both streams of the group",
    )
    .await;
    let badges = browser
        .eval("return [...document.querySelectorAll('table.streams button.badge.group')].map(b => b.textContent);")
        .await;
    assert_eq!(
        badges,
        json!(["Streamgroup (2 Playouts)", "Streamgroup (2 Playouts)"])
    );
    browser.click("#filter-groups").await;
    wait_true(&browser, &summary("· 1 stream"), "the group as one entry").await;
    browser.click("table.streams button.badge.group").await;
    wait_true(
        &browser,
        "document.querySelectorAll('table.streams tr.member').length === 1",
        "the group's transcode row",
    )
    .await;
    browser.click("#filter-groups").await;
    // Phone size: the list still reads.
    browser.set_size(390, 844).await;
    browser.goto(&t.url("/#/streams")).await;
    browser.wait_element("table.streams tbody tr", WAIT).await;
    let overflow = browser
        .eval("return document.documentElement.scrollWidth > window.innerWidth + 1;")
        .await;
    assert_eq!(
        overflow,
        json!(false),
        "the page scrolls sideways on a phone"
    );
    browser
        .screenshot(&shots.join("phone-stream-list.png"))
        .await;
    // …and so does a stream page.
    let first_id = browser
        .eval("return document.querySelector('table.streams tbody tr').dataset.id;")
        .await;
    browser
        .goto(&t.url(&format!("/#/stream/{}", first_id.as_str().unwrap())))
        .await;
    browser.wait_element("#tabpanel section", WAIT).await;
    let overflow = browser
        .eval("return document.documentElement.scrollWidth > window.innerWidth + 1;")
        .await;
    assert_eq!(
        overflow,
        json!(false),
        "a stream page scrolls sideways on a phone"
    );
    browser.screenshot(&shots.join("phone-stream.png")).await;
    browser.set_size(1280, 900).await;
    assert_clean(&browser, "list").await;

    // --- A read-only key sees no edit control.
    let reader = t.key(Role::ReadOnly).await;
    sign_in(&browser, &t, &reader).await;
    assert!(browser.find("#new-stream").await.is_none());
    let (_, listed) = t.get("/stream?per_page=25").await;
    let some_id = listed["items"][0]["id"].as_str().unwrap().to_string();
    for tab in ["overview", "processing"] {
        browser
            .goto(&t.url(&format!("/#/stream/{some_id}?tab={tab}")))
            .await;
        browser.wait_element("#stream-id", WAIT).await;
        browser.wait_element("#tabpanel section", WAIT).await;
        for control in [
            "#action-stop",
            "#action-unlock",
            "#action-delete",
            "#tags-save",
            "#tag-new",
            "#processing-save",
            "#clip-make",
        ] {
            assert!(
                browser.find(control).await.is_none(),
                "read-only key sees {control} on {tab}"
            );
        }
    }
    let enabled = browser
        .eval("return [...document.querySelectorAll('#tabpanel input[type=checkbox], #tabpanel input[type=number]')].filter(i => !i.disabled).length;")
        .await;
    assert_eq!(enabled, json!(0), "read-only settings are not editable");
    assert_clean(&browser, "read-only").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_files_are_embedded_with_a_strict_policy() {
    let t = start().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/watch?name=x", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/player.js", "text/javascript"),
        ("/ui/style.css", "text/css"),
    ] {
        let response = t.http.get(t.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("default-src 'self'"), "{path}: {policy}");
        let framing = if path.starts_with("/watch") {
            "frame-ancestors *"
        } else {
            "frame-ancestors 'none'"
        };
        assert!(policy.contains(framing), "{path}: {policy}");
        // Revalidation answers 304 with the same validator.
        let etag = headers["etag"].clone();
        let again = t
            .http
            .get(t.url(path))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    let missing = t.http.get(t.url("/ui/nothing.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let escape = t.http.get(t.url("/ui/..%2Fmod.rs")).send().await.unwrap();
    assert_eq!(escape.status(), 404);
}
