//! Measures how soon a live HLS segment is announced: pushes the fixture in real time to a
//! running reelay (a stream with `replay`, so segment n ends at the (n+1)-th keyframe), polls
//! `/live/<name>/index.m3u8` every 2 ms, and reports, per segment, the time from sending the
//! segment's last frame to the playlist listing it. The cut needs the next keyframe (one frame
//! later) and ingest reads on the `rtmp.ingest_batch_ms` grid, so both are part of the figure.
//!
//! `cargo run --release --example hls_latency -- --rtmp 127.0.0.1:1935 \
//!     --api http://127.0.0.1:8080 --key <admin key> [--seconds 30]`

use anyhow::Context;
use reelay::client::RtmpClient;
use reelay::flv::file::{read_tags, FlvTag};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rtmp = arg("--rtmp").unwrap_or_else(|| "127.0.0.1:1935".into());
    let api = arg("--api").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let key = arg("--key").context("--key <admin api key>")?;
    let seconds: u32 = arg("--seconds").map_or(Ok(30), |s| s.parse())?;
    let http = reqwest::Client::new();
    let stream: serde_json::Value = http
        .post(format!("{api}/stream"))
        .header("X-BINTU-APIKEY", &key)
        .json(&serde_json::json!({"processing": [{"id": "replay", "duration": 60}]}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let name = stream["ingest"]["rtmp"]["streamname"]
        .as_str()
        .context("no streamname")?
        .to_string();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/obs-like.flv");
    let tags = read_tags(&bytes::Bytes::from(std::fs::read(fixture)?))?;
    let last_video = tags
        .iter()
        .filter(|t| t.tag_type == 9)
        .map(|t| t.timestamp_ms)
        .max()
        .unwrap_or(0);
    let period = last_video + 33;

    // Send instants of each segment's last frame, by segment number.
    let last_frames = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let mut client = RtmpClient::connect(rtmp.parse()?, "live").await?;
    client.publish(&name).await?;
    // The looped fixture in timestamp order (the file itself ends with audio past its last
    // video frame; sent in file order, the next lap's keyframe would go out late).
    let mut timeline: Vec<FlvTag> = Vec::new();
    for round in 0..seconds.div_ceil(6) {
        for tag in &tags {
            let is_header = tag.tag_type == 18 || tag.body.get(1) == Some(&0);
            if round > 0 && is_header {
                continue;
            }
            timeline.push(FlvTag {
                tag_type: tag.tag_type,
                timestamp_ms: tag.timestamp_ms + round * period,
                body: tag.body.clone(),
            });
        }
    }
    timeline.sort_by_key(|t| {
        (
            t.body.get(1) != Some(&0) && t.tag_type != 18,
            t.timestamp_ms,
        )
    });
    let publisher = {
        let last_frames = last_frames.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut previous_video: Option<Instant> = None;
            let mut keyframes = 0u32;
            for tag in &timeline {
                let due = Duration::from_millis(u64::from(tag.timestamp_ms));
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
                let is_video_frame = tag.tag_type == 9 && tag.body.get(1) == Some(&1);
                let is_key = is_video_frame && tag.body.first().is_some_and(|b| b >> 4 == 1);
                if is_key {
                    if keyframes > 0 {
                        if let (Some(at), Ok(mut frames)) = (previous_video, last_frames.lock()) {
                            frames.push(at);
                        }
                    }
                    keyframes += 1;
                }
                client.send_tag(tag).await?;
                if is_video_frame {
                    previous_video = Some(Instant::now());
                }
            }
            client.stop_publishing().await?;
            anyhow::Ok(())
        })
    };

    let playlist = format!("{api}/live/{name}/index.m3u8");
    let mut announced: Vec<Option<Instant>> = Vec::new();
    while !publisher.is_finished() {
        if let Ok(response) = http.get(&playlist).send().await {
            if response.status().is_success() {
                let text = response.text().await?;
                let now = Instant::now();
                for line in text.lines().filter(|l| l.ends_with(".m4s")) {
                    let file = line.rsplit('/').next().unwrap_or(line);
                    if let Ok(n) = file.trim_end_matches(".m4s").parse::<usize>() {
                        if announced.len() <= n {
                            announced.resize(n + 1, None);
                        }
                        announced[n].get_or_insert(now);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    publisher.await??;
    let frames = last_frames.lock().map(|f| f.clone()).unwrap_or_default();
    let mut delays: Vec<f64> = announced
        .iter()
        .zip(&frames)
        .filter_map(|(at, last)| {
            at.map(|at| at.saturating_duration_since(*last).as_secs_f64() * 1000.0)
        })
        .collect();
    anyhow::ensure!(!delays.is_empty(), "no segment was announced");
    println!(
        "segments: {}; delay from a segment's last frame to its announcement (ms):",
        delays.len()
    );
    println!(
        "  {}",
        delays
            .iter()
            .map(|d| format!("{d:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    delays.sort_by(f64::total_cmp);
    let at = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    println!(
        "  min {:.0}  median {:.0}  p95 {:.0}  max {:.0}",
        at(0.0),
        at(0.5),
        at(0.95),
        at(1.0)
    );
    Ok(())
}
