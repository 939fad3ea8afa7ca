//! Headless Chromium (Debian `chromium` + `chromedriver`, required when CI=true) plays what
//! reelay serves: the live HLS playlist and the replay playlist of a stream being pushed, with
//! reelay's player module (Media Source Extensions over our CMAF segments) imported by a page
//! of another origin (tests/pages/mse-player.html, a file:// page, so CORS is exercised) —
//! the dashboard's HTML embed snippet. Firefox ESR (driven over WebDriver BiDi, required when
//! CI=true) plays the same through the dashboard's player page. hls.js (from the npm
//! registry, see `common::hls_js`) plays a stream group's multivariant playlist in Chromium.

mod common;

use common::bidi::Firefox;
use common::webdriver::Browser;
use common::*;
use reelay::client::RtmpClient;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The fixture's codecs: H.264 High 3.0 and AAC-LC.
const CODECS: &str = "avc1.64001e,mp4a.40.2";

/// Plays `playlist` in the page and returns how far playback advanced in `watch`.
async fn plays(browser: &Browser, playlist: &str, watch: Duration) -> f64 {
    let page = format!(
        "file://{}/tests/pages/mse-player.html?src={}",
        env!("CARGO_MANIFEST_DIR"),
        urlencode(playlist),
    );
    browser.goto(&page).await;
    let started = browser
        .wait_for("window.playerStartedAt", Duration::from_secs(15))
        .await;
    let errors = browser.eval("return window.playerErrors;").await;
    assert!(
        started.is_number(),
        "{playlist} did not start playing: {errors}"
    );
    // The player read the codecs from the init segment.
    let codecs = browser.eval("return window.player.codecs;").await;
    assert_eq!(codecs, json!(CODECS), "{playlist}");
    let begin = Instant::now();
    let first = current_time(browser).await;
    tokio::time::sleep(watch).await;
    let advanced = current_time(browser).await - first;
    let errors = browser.eval("return window.playerErrors;").await;
    assert_eq!(errors, json!([]), "{playlist}");
    eprintln!(
        "{playlist}: currentTime advanced {advanced:.2} s in {:.2} s",
        begin.elapsed().as_secs_f64()
    );
    advanced
}

async fn current_time(browser: &Browser) -> f64 {
    browser
        .eval("return document.getElementById('video').currentTime;")
        .await
        .as_f64()
        .unwrap()
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A server with a replay stream being pushed 18 s of the fixture in real time: the server,
/// the stream's id and streamname, and the pushing task (which gives the publisher back).
async fn pushing_with_replay() -> (TestServer, String, String, JoinHandle<RtmpClient>) {
    let t = start().await;
    let body = t
        .create_stream_with(json!([{"id": "replay", "duration": null}]))
        .await;
    let id = body["id"].as_str().unwrap().to_string();
    let name = streamname(&body);
    let (tags, _) = looped_fixture(3);
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    let pusher = tokio::spawn(async move {
        send_tags(&mut publisher, &tags, 1.0).await;
        publisher
    });
    (t, id, name, pusher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_the_live_and_the_replay_playlist() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let (t, id, name, pusher) = pushing_with_replay().await;
    let live_url = t.url(&format!("/live/{name}/index.m3u8"));
    let advanced = plays(&browser, &live_url, Duration::from_secs(4)).await;
    assert!(
        advanced >= 3.0,
        "live: currentTime advanced only {advanced} s in 4 s"
    );

    let sessions: Vec<Value> = t.sessions(&id).await;
    let session = sessions[0]["id"].as_str().unwrap();
    let replay_url = t.url(&format!("/replay/{name}/{session}/index.m3u8"));
    let advanced = plays(&browser, &replay_url, Duration::from_secs(3)).await;
    assert!(
        advanced >= 2.0,
        "replay: currentTime advanced only {advanced} s in 3 s"
    );
    browser.quit().await;
    let publisher = pusher.await.unwrap();
    publisher.stop_publishing().await.unwrap();
}

/// How far the player page's video advances in `watch` in Firefox, once it plays.
async fn firefox_plays(firefox: &mut Firefox, url: &str, watch: Duration) -> f64 {
    firefox.goto(url).await;
    let time = "document.getElementById('video').currentTime";
    let deadline = Instant::now() + Duration::from_secs(20);
    while firefox.number(time).await <= 0.0 {
        let message = firefox
            .eval("document.getElementById('message').textContent")
            .await;
        assert!(Instant::now() < deadline, "{url} did not start: {message}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let codecs = firefox.eval("window.reelayPlayer.codecs").await;
    assert_eq!(codecs["value"], json!(CODECS), "{url}");
    let first = firefox.number(time).await;
    tokio::time::sleep(watch).await;
    firefox.number(time).await - first
}

/// The dashboard's player page (`/watch`, our own MSE player) in Debian's Firefox ESR: the live
/// stream and a session's replay play, with no console error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firefox_plays_the_live_and_the_replay_on_the_watch_page() {
    let Some(mut firefox) = Firefox::start().await else {
        return;
    };
    let (t, id, name, pusher) = pushing_with_replay().await;
    let live = firefox_plays(
        &mut firefox,
        &t.url(&format!("/watch?name={name}")),
        Duration::from_secs(3),
    )
    .await;
    assert!(
        live >= 2.0,
        "live: currentTime advanced only {live} s in 3 s"
    );
    let sessions: Vec<Value> = t.sessions(&id).await;
    let session = sessions[0]["id"].as_str().unwrap();
    let replay = firefox_plays(
        &mut firefox,
        &t.url(&format!("/watch?name={name}&session={session}")),
        Duration::from_secs(3),
    )
    .await;
    assert!(
        replay >= 2.0,
        "replay: currentTime advanced only {replay} s in 3 s"
    );
    // The replay's seek bar spans the session so far; a seek lands and plays on.
    let duration = firefox
        .number("document.getElementById('video').duration")
        .await;
    assert!(
        duration.is_finite() && duration > 4.0,
        "replay duration {duration}"
    );
    firefox
        .eval("document.getElementById('video').currentTime = 1")
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = firefox
        .number("document.getElementById('video').currentTime")
        .await;
    assert!((2.0..5.0).contains(&after), "after seeking to 1 s: {after}");
    assert!(
        firefox.problems.is_empty(),
        "console: {:?}",
        firefox.problems
    );
    let publisher = pusher.await.unwrap();
    publisher.stop_publishing().await.unwrap();
}

/// A stream group's multivariant playlist in hls.js (an independent player, from the npm
/// registry) in Chromium: every rendition is offered with its size, playback starts, and a
/// switch to the smallest rendition shows its picture size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_a_stream_group_with_hls_js_and_switches_renditions() {
    let Some(hls_js) = hls_js() else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let t = start().await;
    let group = t
        .create_group(json!({"transcodes": [
            {"profile": "vtrans2-426x240x300x30"},
            {"profile": "vtrans2-256x144x150x30"},
        ]}))
        .await;
    let name = streamname(&group);
    let (tags, _) = looped_fixture(3);
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    let pusher = tokio::spawn(async move {
        send_tags(&mut publisher, &tags, 1.0).await;
        publisher
    });
    let master = t.url(&format!("/live/{name}/master.m3u8"));
    let page = format!(
        "file://{}/tests/pages/hlsjs-player.html?lib={}&src={}",
        env!("CARGO_MANIFEST_DIR"),
        urlencode(&format!("file://{}", hls_js.display())),
        urlencode(&master),
    );
    browser.goto(&page).await;
    let started = browser
        .wait_for("window.playerStartedAt", Duration::from_secs(20))
        .await;
    let errors = browser.eval("return window.playerErrors;").await;
    assert!(started.is_number(), "the group did not play: {errors}");
    let levels = browser.eval("return window.levels;").await;
    let mut sizes: Vec<(u64, u64)> = levels
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["width"].as_u64().unwrap(), l["height"].as_u64().unwrap()))
        .collect();
    sizes.sort();
    assert_eq!(sizes, [(256, 144), (426, 240), (640, 360)], "{levels}");
    // Pick the smallest rendition by hand: the picture follows.
    browser
        .eval(
            "const i = window.levels.findIndex((l) => l.width === 256); \
             window.hls.currentLevel = i; return i;",
        )
        .await;
    let switched = browser
        .wait_for(
            "document.getElementById('video').videoWidth === 256 || null",
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(
        switched,
        json!(true),
        "{}",
        browser.eval("return window.playerErrors;").await
    );
    let first = current_time(&browser).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        current_time(&browser).await - first >= 1.0,
        "playback stalled"
    );
    assert_eq!(browser.eval("return window.playerErrors;").await, json!([]));
    browser.quit().await;
    let publisher = pusher.await.unwrap();
    publisher.stop_publishing().await.unwrap();
}
