//! Replay and live HLS: real RTMP pushes, playlists read back with `hls_m3u8`, `ffprobe` and
//! `ffmpeg` (required when CI=true) over real HTTP.

mod common;

use common::*;
use reelay::client::RtmpClient;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn create_with_processing(t: &TestServer, processing: Value) -> (String, String) {
    let body = t.create_stream_with(processing).await;
    (body["id"].as_str().unwrap().to_string(), streamname(&body))
}

async fn open_session(t: &TestServer, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = t.sessions(id).await.first() {
            return s["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no session");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fetches a playlist: status, content type, cache control, body.
async fn fetch(t: &TestServer, url: &str) -> (u16, String, String, String) {
    let response = t.http.get(url).send().await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (status, content_type, cache) = (
        response.status().as_u16(),
        header("content-type"),
        header("cache-control"),
    );
    (status, content_type, cache, response.text().await.unwrap())
}

fn listed_secs(playlist: &str) -> f64 {
    let parsed =
        hls_m3u8::MediaPlaylist::try_from(playlist).unwrap_or_else(|e| panic!("{e}: {playlist}"));
    parsed.duration().as_secs_f64()
}

/// ffprobe's codec names for a URL.
fn codecs(url: &str) -> Option<Vec<String>> {
    probe(url).map(|p| codec_names(&p))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_is_playable_while_live_and_after_and_live_hls_works() {
    let t = start().await;
    let (id, name) = create_with_processing(&t, json!([{"id": "replay", "duration": null}])).await;
    let (tags, video_secs) = looped_fixture(2); // 12 s
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    let session = open_session(&t, &id).await;
    let replay_url = t.url(&format!("/replay/{name}/{session}/index.m3u8"));
    let live_url = t.url(&format!("/live/{name}/index.m3u8"));
    let pusher = tokio::spawn(async move {
        send_tags(&mut publisher, &tags, 2.0).await;
        publisher
    });
    // Midway: both playlists are served, with their content type and caching, and probe.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (status, content_type, cache, replay) = fetch(&t, &replay_url).await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(content_type, "application/vnd.apple.mpegurl");
    assert_eq!(cache, "no-cache");
    assert!(replay.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{replay}");
    assert!(!replay.contains("#EXT-X-ENDLIST"), "{replay}");
    assert!(replay.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{replay}");
    let (status, content_type, cache, live) = fetch(&t, &live_url).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/vnd.apple.mpegurl"),
        "{live}"
    );
    assert_eq!(cache, "no-cache, no-store");
    assert!(listed_secs(&live) > 0.0);
    let cors = t
        .http
        .get(&live_url)
        .header("origin", "https://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cors.headers()["access-control-allow-origin"], "*");
    for url in [&replay_url, &live_url] {
        if let Some(codecs) = codecs(url) {
            assert!(
                codecs.contains(&"h264".into()) && codecs.contains(&"aac".into()),
                "{url}: {codecs:?}"
            );
        }
    }
    let publisher = pusher.await.unwrap();
    publisher.stop_publishing().await.unwrap();
    t.wait_state(&id, "ended").await;

    // After: the replay ends with ENDLIST and lists the pushed media within one segment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let replay = loop {
        let (status, _, _, replay) = fetch(&t, &replay_url).await;
        if status == 200 && replay.contains("#EXT-X-ENDLIST") {
            break replay;
        }
        assert!(Instant::now() < deadline, "{replay}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let listed = listed_secs(&replay);
    assert!(
        (listed - video_secs).abs() <= 2.1,
        "{listed} s listed, {video_secs} s pushed"
    );
    let (status, _, _, _) = fetch(&t, &live_url).await;
    assert_eq!(status, 404, "no live playlist after the end");
    // Listed as assets in the SPEC shapes.
    let (_, body) = t.get(&format!("/stream/{id}")).await;
    let listed = &body["playout"]["replay"][0];
    assert_eq!(listed["url"], replay_url.as_str(), "{body}");
    assert_eq!(listed["type"], "playout");
    assert_eq!(listed["session"], session.as_str());
    assert_eq!(listed["streamname"], name.as_str());
    assert_eq!(body["playout"]["hls"][0]["url"], live_url.as_str());
    assert_eq!(body["playout"]["hls"][0]["type"], "live");
    assert_eq!(
        body["playout"]["rtmp"][0]["status"]["replay"]["state"], "idle",
        "{body}"
    );
    // Segments are immutable and served with their CMAF type.
    let first_segment = replay.lines().find(|l| l.ends_with(".m4s")).unwrap();
    let segment = t
        .http
        .get(t.url(&format!("/replay/{name}/{session}/{first_segment}")))
        .send()
        .await
        .unwrap();
    assert_eq!(segment.status(), 200);
    assert_eq!(segment.headers()["content-type"], "video/iso.segment");
    assert!(segment.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    if tool("ffmpeg").is_some() {
        let out = output_ok(std::process::Command::new(tool("ffmpeg").unwrap()).args([
            "-nostdin",
            "-v",
            "error",
            "-i",
            &replay_url,
            "-f",
            "null",
            "-",
        ]));
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(errors.trim().is_empty(), "{errors}");
        let out = output_ok(std::process::Command::new(tool("ffprobe").unwrap()).args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            &replay_url,
        ]));
        let probed: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(
            (probed - video_secs).abs() <= 2.1,
            "ffprobe {probed} s, pushed {video_secs} s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_duration_keeps_a_window_and_removes_old_segments_from_disk() {
    let t = start().await;
    let (id, name) = create_with_processing(&t, json!([{"id": "replay", "duration": 10}])).await;
    let (tags, _) = looped_fixture(5); // 30 s
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    let session = open_session(&t, &id).await;
    let replay_url = t.url(&format!("/replay/{name}/{session}/index.m3u8"));
    let pusher = tokio::spawn(async move {
        send_tags(&mut publisher, &tags, 6.0).await;
        publisher
    });
    let mut longest: f64 = 0.0;
    while !pusher.is_finished() {
        let (status, _, _, playlist) = fetch(&t, &replay_url).await;
        if status == 200 {
            let listed = listed_secs(&playlist);
            assert!(listed <= 10.0 + 2.1, "{listed} s listed:\n{playlist}");
            longest = longest.max(listed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(longest >= 9.9, "the window filled up to {longest} s");
    pusher.await.unwrap().stop_publishing().await.unwrap();
    t.wait_state(&id, "ended").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, _, _, playlist) = fetch(&t, &replay_url).await;
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    let listed: Vec<String> = playlist
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let dir = t.dir.path().join("hls").join(&name).join(&session);
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".m4s"))
        .collect();
    on_disk.sort();
    let mut expected = listed.clone();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "segments on disk are exactly the listed ones"
    );
    assert!(
        !listed.iter().any(|l| l == "0.m4s"),
        "the first segments left: {listed:?}"
    );
}

/// Probes a downloaded file: (format duration, codec names).
fn probe_file(path: &std::path::Path) -> Option<(f64, Vec<String>)> {
    probe(path).map(|p| (format_duration(&p), codec_names(&p)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_of_5_to_15_seconds_is_a_10_second_regular_mp4() {
    let t = start().await;
    let (id, name) = create_with_processing(&t, json!([{"id": "replay", "duration": null}])).await;
    let (tags, _) = looped_fixture(4); // 24 s
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    let session = open_session(&t, &id).await;
    send_tags(&mut publisher, &tags, 0.0).await;
    publisher.stop_publishing().await.unwrap();
    t.wait_state(&id, "ended").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let clip = |start: Value, end: Value| {
        t.clip(&id, json!({"session": session, "start": start, "end": end}))
    };
    // Refusals name the field.
    for (start, end, field) in [
        (json!(5), json!(5), "end"),
        (json!(5), json!(4), "end"),
        (json!(-1), json!(4), "start"),
        (json!(5), json!(500), "end"),
    ] {
        let (status, body) = clip(start, end).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let (status, body) = t
        .clip(
            &id,
            json!({"session": uuid::Uuid::new_v4(), "start": 1, "end": 2}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (409, Some("session")),
        "{body}"
    );

    let (status, asset) = clip(json!(5), json!(15)).await;
    assert_eq!(status, 201, "{asset}");
    assert_eq!(asset["type"], "clip");
    assert_eq!(asset["session"], session.as_str());
    let url = asset["url"].as_str().unwrap();
    assert!(url.contains(&format!("/clips/{name}/")), "{url}");
    let response = t.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp4");
    let bytes = response.bytes().await.unwrap();
    let file = t.dir.path().join("clip.mp4");
    std::fs::write(&file, &bytes).unwrap();
    let reader =
        mp4::Mp4Reader::read_header(std::io::Cursor::new(bytes.to_vec()), bytes.len() as u64)
            .unwrap();
    assert!(reader.moov.mvex.is_none(), "a regular MP4");
    if let Some((duration, codecs)) = probe_file(&file) {
        assert!(
            (duration - 10.0).abs() <= 1.0 / 30.0,
            "clip lasts {duration} s"
        );
        assert!(
            codecs.contains(&"h264".into()) && codecs.contains(&"aac".into()),
            "{codecs:?}"
        );
    }
    decodes_cleanly(&file);
    let (_, stream) = t.get(&format!("/stream/{id}")).await;
    assert_eq!(stream["playout"]["clips"][0]["url"], url, "{stream}");
}
