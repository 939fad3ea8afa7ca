//! Conformance with third-party tools: ffmpeg publishes, ffprobe and ffmpeg play over RTMP.
//! Skipped when the tools are missing, except with CI=true where they are required.

mod common;

use common::*;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_and_ffprobe_plays() {
    let (Some(ffmpeg), Some(ffprobe)) = (tool("ffmpeg"), tool("ffprobe")) else {
        return;
    };
    let t = start().await;
    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    let ingest = format!("rtmp://{}/rec/{name}", t.rtmp());
    let mut push = Command::new(&ffmpeg)
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "1",
            "-i",
        ])
        .arg(fixture_path())
        .args(["-c", "copy", "-f", "flv"])
        .arg(&ingest)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    t.wait_state(&id, "live").await;

    let play = format!("rtmp://{}/live/{name}", t.rtmp());
    let probe = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(&ffprobe)
            .args(["-v", "error", "-show_entries"])
            .args(["stream=codec_type,codec_name,profile,width,height,sample_rate,channels"])
            .args(["-of", "json"])
            .arg(&play)
            .output(),
    )
    .await
    .expect("ffprobe finished")
    .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let streams = info["streams"].as_array().unwrap();
    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").unwrap();
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["profile"], "High");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["sample_rate"], "48000");
    assert_eq!(audio["channels"], 2);

    // ffmpeg as a player decodes 3 s of the live stream without an error.
    let decode = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new(&ffmpeg)
            .args(["-hide_banner", "-v", "error", "-xerror", "-i"])
            .arg(&play)
            .args(["-t", "3", "-f", "null", "-"])
            .output(),
    )
    .await
    .expect("ffmpeg player finished")
    .unwrap();
    assert!(
        decode.status.success(),
        "{}",
        String::from_utf8_lossy(&decode.stderr)
    );

    let status = tokio::time::timeout(Duration::from_secs(30), push.wait())
        .await
        .expect("push finished")
        .unwrap();
    assert!(status.success());
    t.wait_state(&id, "ended").await;
    let sessions = t.sessions(&id).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["app"], "rec");
    assert_eq!(sessions[0]["end_reason"], "client_closed");
}
