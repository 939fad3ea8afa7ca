//! A recording survives `kill -9`: the real binary is killed mid-recording and restarted on
//! the same data folder; the recording is finalised, listed, and playable up to within a
//! second of the kill, and its session ends as `recovered`.

mod common;

use common::{
    call, call_with, decodes_cleanly, fixture_tags, free_port, reelay_command, send_tags,
    wait_healthy, KillOnDrop,
};
use reelay::client::RtmpClient;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

fn spawn_server(data: &Path, http: u16, rtmp: u16) -> KillOnDrop {
    KillOnDrop(
        reelay_command()
            .args(["serve", "--data-dir"])
            .arg(data)
            .args(["--http-addr", &format!("127.0.0.1:{http}")])
            .args(["--rtmp-addr", &format!("127.0.0.1:{rtmp}")])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_survives_sigkill_and_is_listed_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (http_port, rtmp_port) = (free_port(), free_port());
    let http = reqwest::Client::new();
    let mut server = spawn_server(&data, http_port, rtmp_port);
    wait_healthy(&http, http_port).await;
    let key = std::fs::read_to_string(data.join("admin-api-key"))
        .unwrap()
        .trim()
        .to_string();
    let base = format!("http://127.0.0.1:{http_port}");
    // Recorded via /rec, and with a replay: both must survive the kill.
    let (status, stream) = call_with(
        &http,
        reqwest::Method::POST,
        format!("{base}/stream"),
        &key,
        Some(serde_json::json!({"processing": [{"id": "replay", "duration": null}]})),
    )
    .await;
    assert_eq!(status, 201);
    let id = stream["id"].as_str().unwrap().to_string();
    let name = stream["ingest"]["rtmp"]["streamname"]
        .as_str()
        .unwrap()
        .to_string();

    // Push 4 s of media in real time, then kill the server without warning.
    let tags = fixture_tags();
    let cut = tags.iter().position(|t| t.timestamp_ms > 4000).unwrap();
    let rtmp = format!("127.0.0.1:{rtmp_port}").parse().unwrap();
    let mut publisher = RtmpClient::connect(rtmp, "rec").await.unwrap();
    publisher.publish(&name).await.unwrap();
    send_tags(&mut publisher, &tags[..cut], 1.0).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.kill(); // SIGKILL
    drop(publisher);

    let mut server = spawn_server(&data, http_port, rtmp_port);
    wait_healthy(&http, http_port).await;
    let (status, body) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/stream/{id}"),
        &key,
    )
    .await;
    assert_eq!(status, 200);
    let web = body["playout"]["web"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(web.len(), 1, "{body}");
    let duration = web[0]["duration"].as_f64().unwrap();
    let pushed = f64::from(tags[cut - 1].timestamp_ms) / 1000.0;
    eprintln!("recovered {duration} s of {pushed} s pushed before SIGKILL");
    assert!(
        duration >= pushed - 1.0 - 0.1 && duration <= pushed + 0.1,
        "recovered {duration} s of {pushed} s pushed"
    );
    let (_, sessions) = call(
        &http,
        reqwest::Method::GET,
        format!("{base}/stream/{id}/sessions"),
        &key,
    )
    .await;
    assert_eq!(sessions["items"][0]["end_reason"], "recovered");
    assert_eq!(sessions["items"][0]["assets"][0]["url"], web[0]["url"]);

    let bytes = http
        .get(web[0]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let file = dir.path().join("recovered.mp4");
    std::fs::write(&file, &bytes).unwrap();
    let size = bytes.len() as u64;
    let reader = mp4::Mp4Reader::read_header(std::io::Cursor::new(bytes.to_vec()), size).unwrap();
    assert!(reader.moov.mvex.is_none());
    assert_eq!(reader.tracks().len(), 2);
    decodes_cleanly(&file);

    // The replay was ended at the restart: its playlist lists what was written, with ENDLIST.
    let replay = &body["playout"]["replay"][0];
    assert_eq!(replay["session"], sessions["items"][0]["id"], "{body}");
    let replay_duration = replay["duration"].as_f64().unwrap();
    assert!(
        replay_duration >= pushed - 2.5 && replay_duration <= pushed + 0.1,
        "replay lists {replay_duration} s of {pushed} s pushed"
    );
    let playlist = http
        .get(replay["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
    server.kill();
}
