//! Stream groups that transcode (SPEC "Stream groups"): the fixture pushed to a group's
//! passthrough over RTMP; every rendition read back with ffprobe from its own recording:
//! exact size, frame rate, bit rate within ±25 % of the profile, IDRs at the source's
//! keyframe times and nowhere else; states and status per member; a member's thumbnail at
//! the profile size.

mod common;

use common::*;
use reelay::client::RtmpClient;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Polls `GET /stream/{id}` until `playout.web` lists a recording; its URL.
async fn recording_url(t: &TestServer, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = t.get(&format!("/stream/{id}")).await;
        if let Some(url) = body["playout"]["web"][0]["url"].as_str() {
            return url.to_string();
        }
        assert!(Instant::now() < deadline, "no recording: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Video packets as (pts seconds, keyframe) read by ffprobe, in presentation order.
fn video_packets(ffprobe: &Path, file: &Path) -> Vec<(f64, bool)> {
    let out = output_ok(
        std::process::Command::new(ffprobe)
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "packet=pts_time,flags",
                "-of",
                "csv=p=0",
            ])
            .arg(file),
    );
    let mut packets: Vec<(f64, bool)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (pts, flags) = line.split_once(',')?;
            Some((pts.parse().ok()?, flags.contains('K')))
        })
        .collect();
    packets.sort_by(|a, b| a.0.total_cmp(&b.0));
    packets
}

/// Keyframe times relative to the first keyframe, in milliseconds.
fn keyframe_offsets(packets: &[(f64, bool)]) -> Vec<i64> {
    let keys: Vec<f64> = packets.iter().filter(|p| p.1).map(|p| p.0).collect();
    keys.iter()
        .map(|k| ((k - keys[0]) * 1000.0).round() as i64)
        .collect()
}

fn video_stream(probe: &Value) -> &Value {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == "video")
        .unwrap()
}

/// The tests here use every core; they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_transcodes_every_profile_with_aligned_idrs() {
    let Some(ffprobe) = tool("ffprobe") else {
        return;
    };
    let _alone = ONE_AT_A_TIME.lock().await;
    let t = start().await;
    let profiles = ["vtrans2-426x240x300x25", "vtrans2-256x144x120x15"];
    let group = t
        .create_group(json!({"transcodes": [
            {"profile": profiles[0]},
            {"profile": profiles[1]},
        ]}))
        .await;
    let id = group["id"].as_str().unwrap().to_string();
    let members: Vec<(String, String)> = group["playout"]["rtmp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["streamname"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Every rendition keeps a replay (one setting for the whole group); the first one also
    // takes thumbnails.
    let (status, body) = t
        .request(
            reqwest::Method::PUT,
            &format!("/stream/{id}/processing"),
            Some(&t.admin_key),
            Some(json!({"processing": [{"id": "replay", "duration": null}], "sync": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = t
        .request(
            reqwest::Method::PUT,
            &format!("/stream/{}/processing", members[1].0),
            Some(&t.admin_key),
            Some(json!({"processing": [{"id": "replay", "duration": null}, {"id": "thumbs", "interval": 10}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (tags, _) = looped_fixture(3);
    let mut publisher = RtmpClient::connect(t.rtmp(), "rec").await.unwrap();
    publisher.publish(&members[0].1).await.unwrap();
    let half = tags.len() / 2;
    send_tags(&mut publisher, &tags[..half], 1.0).await;
    // Mid-stream: every member is live, each with its own session, transcoding in real time.
    for (member, _) in &members[1..] {
        assert_eq!(t.state_of(member).await, "live");
    }
    let (_, live) = t.get(&format!("/stream/{id}")).await;
    for entry in &live["playout"]["rtmp"].as_array().unwrap()[1..] {
        let transcode = &entry["status"]["transcode"];
        assert_eq!(transcode["state"], "active", "{entry}");
        assert!(transcode["frames"].as_u64().unwrap() > 10, "{entry}");
        let speed = transcode["speed"].as_f64().unwrap_or(1.0);
        assert!((0.8..1.3).contains(&speed), "{entry}");
    }
    abr_playlists_agree(&t, &live, &members).await;
    let session = t.sessions(&id).await[0]["id"].as_str().unwrap().to_string();
    replay_master_lists_every_rendition(&t, &members, &session, false).await;
    send_tags(&mut publisher, &tags[half..], 1.0).await;
    publisher.stop_publishing().await.unwrap();
    for (member, _) in &members {
        t.wait_state(member, "ended").await;
        assert_eq!(t.sessions(member).await.len(), 1);
    }

    replay_master_lists_every_rendition(&t, &members, &session, true).await;
    let (_, after) = t.get(&format!("/stream/{id}")).await;
    let statuses = after["playout"]["rtmp"].to_string();
    let source = download(&t, &recording_url(&t, &id).await, t.dir.path()).await;
    let source_keys = keyframe_offsets(&video_packets(&ffprobe, &source));
    assert!(source_keys.len() >= 6, "{source_keys:?}");
    for ((member, _), profile) in members[1..].iter().zip(profiles) {
        let parts: Vec<u32> = profile[8..]
            .split('x')
            .map(|p| p.parse().unwrap())
            .collect();
        let file = download(&t, &recording_url(&t, member).await, t.dir.path()).await;
        decodes_cleanly(&file);
        let probe = probe(&file).unwrap();
        let video = video_stream(&probe);
        assert_eq!(video["codec_name"], "h264");
        assert_eq!(video["width"], parts[0], "{video}");
        assert_eq!(video["height"], parts[1], "{video}");
        assert!(codec_names(&probe).contains(&"aac".to_string()));
        // Frame rate: the profile's (below the source's 30).
        let packets = video_packets(&ffprobe, &file);
        let span = packets.last().unwrap().0 - packets[0].0;
        let fps = (packets.len() - 1) as f64 / span;
        assert!(
            (fps - f64::from(parts[3])).abs() < 0.5,
            "{profile}: {fps} fps; {statuses}"
        );
        // Bit rate within ±25 % of the profile.
        let kbps = video["bit_rate"].as_str().unwrap().parse::<f64>().unwrap() / 1000.0;
        let target = f64::from(parts[2]);
        assert!(
            (kbps - target).abs() <= target * 0.25,
            "{profile}: {kbps} kbit/s"
        );
        // IDRs exactly at the source keyframes' times, and nowhere else.
        let source_packets = video_packets(&ffprobe, &source);
        assert_eq!(
            keyframe_offsets(&packets),
            source_keys,
            "{profile}: {} packets from {:?} to {:?}; source {} packets from {:?} to {:?}",
            packets.len(),
            packets.first(),
            packets.last(),
            source_packets.len(),
            source_packets.first(),
            source_packets.last()
        );
    }

    // Metrics per rendition.
    let metrics = t
        .http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for profile in profiles {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "reelay_transcode_frames_total{{profile=\"{profile}\"}}"
                ))
            })
            .unwrap_or_else(|| panic!("{profile} not in {metrics}"));
        let frames: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(frames > 200.0, "{line}");
    }
    assert!(
        metrics.contains("reelay_transcode_renditions 0"),
        "{metrics}"
    );

    // The first rendition's thumbnail has the profile's size.
    let (_, stream) = t.get(&format!("/stream/{}", members[1].0)).await;
    let url = stream["playout"]["thumbnails"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no thumbnail: {stream}"));
    let jpeg = t.http.get(url).send().await.unwrap().bytes().await.unwrap();
    let mut decoder = jpeg_decoder::Decoder::new(&jpeg[..]);
    decoder.read_info().unwrap();
    let info = decoder.info().unwrap();
    assert_eq!((info.width, info.height), (426, 240));
}

/// Media playlist segments as (sequence, duration).
fn segments(playlist: &str) -> Vec<(u64, f64)> {
    let mut sequence = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .map_or(0, |n| n.parse::<u64>().unwrap());
    let mut out = Vec::new();
    for line in playlist.lines() {
        if let Some(duration) = line.strip_prefix("#EXTINF:") {
            out.push((sequence, duration.trim_end_matches(',').parse().unwrap()));
            sequence += 1;
        }
    }
    out
}

/// The group's multivariant playlist lists every rendition, highest first, with measured
/// figures; the renditions' playlists number the same time spans alike.
async fn abr_playlists_agree(t: &TestServer, live: &Value, members: &[(String, String)]) {
    let abr = live["playout"]["hls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["type"] == "abr")
        .unwrap_or_else(|| panic!("no abr entry: {live}"));
    let url = abr["url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/live/{}/master.m3u8", members[0].1)));
    let response = t.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    let text = response.text().await.unwrap();
    let master =
        hls_m3u8::MasterPlaylist::try_from(text.as_str()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(master.variant_streams.len(), 3, "{text}");
    let expected = [
        (members[0].1.as_str(), "640x360", 30.0),
        (members[1].1.as_str(), "426x240", 25.0),
        (members[2].1.as_str(), "256x144", 15.0),
    ];
    let lines: Vec<&str> = text.lines().collect();
    let mut bandwidths = Vec::new();
    for (name, resolution, fps) in expected {
        let uri = format!("../{name}/index.m3u8");
        let at = lines
            .iter()
            .position(|l| *l == uri)
            .unwrap_or_else(|| panic!("{text}"));
        let inf = lines[at - 1];
        let attribute = |key: &str| {
            inf.split(&[':', ','][..])
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing: {inf}"))
                .to_string()
        };
        assert_eq!(attribute("RESOLUTION"), resolution, "{inf}");
        let frame_rate: f64 = attribute("FRAME-RATE").parse().unwrap();
        assert!((frame_rate - fps).abs() < 1.0, "{inf}");
        assert!(inf.contains("CODECS=\"avc1."), "{inf}");
        assert!(inf.contains("mp4a.40.2\""), "{inf}");
        let peak: u64 = attribute("BANDWIDTH").parse().unwrap();
        let average: u64 = attribute("AVERAGE-BANDWIDTH").parse().unwrap();
        assert!(peak >= average && average > 0, "{inf}");
        bandwidths.push(peak);
    }
    assert!(
        bandwidths.windows(2).all(|w| w[0] > w[1]),
        "highest first: {text}"
    );
    // Every rendition's playlist: the same sequence numbers for the same spans.
    let mut playlists = Vec::new();
    for (_, name) in members {
        let url = t.url(&format!("/live/{name}/index.m3u8"));
        let text = t.http.get(url).send().await.unwrap().text().await.unwrap();
        playlists.push(segments(&text));
    }
    let reference = &playlists[0];
    assert!(reference.len() >= 2, "{reference:?}");
    for other in &playlists[1..] {
        let mut common = 0;
        for (sequence, duration) in other {
            if let Some((_, expected)) = reference.iter().find(|(s, _)| s == sequence) {
                assert!(
                    (duration - expected).abs() < 0.05,
                    "{reference:?} vs {other:?}"
                );
                common += 1;
            }
        }
        assert!(common >= 2, "{reference:?} vs {other:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_transcoder_drops_only_its_own_frames() {
    let (Some(ffmpeg), Some(_)) = (tool("ffmpeg"), tool("ffprobe")) else {
        return;
    };
    let _alone = ONE_AT_A_TIME.lock().await;
    let t = start().await;
    // 1080p30 with noise (x264 at 6 Mbit/s) into eight 720p30 renditions: far more than two
    // cores encode in real time.
    let source = t.dir.path().join("source-1080p.flv");
    output_ok(
        std::process::Command::new(ffmpeg)
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
                "8",
                "-vf",
                "noise=alls=6:allf=t",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "60",
                "-b:v",
                "6M",
                "-c:a",
                "aac",
                "-f",
                "flv",
            ])
            .arg(&source),
    );
    let tags =
        reelay::flv::file::read_tags(&bytes::Bytes::from(std::fs::read(&source).unwrap())).unwrap();
    let source_frames = tags
        .iter()
        .filter(|t| t.tag_type == 9 && t.body.get(1) == Some(&1))
        .count();
    let transcodes: Vec<Value> = (0..8)
        .map(|_| json!({"profile": "vtrans2-1280x720x2000x30"}))
        .collect();
    let group = t.create_group(json!({"transcodes": transcodes})).await;
    let id = group["id"].as_str().unwrap().to_string();
    let name = streamname(&group);

    let mut publisher = RtmpClient::connect(t.rtmp(), "rec").await.unwrap();
    publisher.publish(&name).await.unwrap();
    let mut player = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    player.play(&name).await.unwrap();
    let played = tokio::spawn(async move {
        let mut frames = 0;
        while let Ok(Some(media)) = player.next_media().await {
            if media.tag_type == 9 && media.body.get(1) == Some(&1) {
                frames += 1;
            }
        }
        frames
    });
    let sending = tokio::spawn(async move {
        send_tags(&mut publisher, &tags, 1.0).await;
        publisher.stop_publishing().await.unwrap();
    });
    // While it runs, the renditions report how far below real time they are.
    let mut slowest = f64::MAX;
    let mut last = Value::Null;
    while !sending.is_finished() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, live) = t.get(&format!("/stream/{id}")).await;
        for entry in &live["playout"]["rtmp"].as_array().unwrap()[1..] {
            if let Some(speed) = entry["status"]["transcode"]["speed"].as_f64() {
                slowest = slowest.min(speed);
            }
        }
        last = live;
    }
    sending.await.unwrap();
    t.wait_state(&id, "ended").await;
    let played = tokio::time::timeout(Duration::from_secs(20), played)
        .await
        .unwrap()
        .unwrap();
    // The renditions say they could not keep up ...
    assert!(slowest < 0.95, "slowest {slowest}: {last}");
    let (_, after) = t.get(&format!("/stream/{id}")).await;
    let dropped: u64 = after["playout"]["rtmp"].as_array().unwrap()[1..]
        .iter()
        .map(|r| r["status"]["transcode"]["skipped"].as_u64().unwrap_or(0))
        .sum();
    assert!(dropped > 0, "{after}");
    // ... while the passthrough's player and recording lost nothing.
    assert_eq!(played, source_frames, "frames the passthrough's player got");
    let rec = &after["playout"]["rtmp"][0]["status"]["rec"];
    assert_eq!(rec["skipped"], 0, "{rec}");
    let file = download(&t, &recording_url(&t, &id).await, t.dir.path()).await;
    let ffprobe = tool("ffprobe").unwrap();
    assert_eq!(
        video_packets(&ffprobe, &file).len(),
        source_frames,
        "frames in the passthrough's recording"
    );
}

/// The group's replay as one ABR stream: every rendition's replay of the same group session,
/// highest first, each playlist reachable at the URI given (and ended once the group ended).
async fn replay_master_lists_every_rendition(
    t: &TestServer,
    members: &[(String, String)],
    session: &str,
    ended: bool,
) {
    let url = t.url(&format!("/replay/{}/{session}/master.m3u8", members[0].1));
    let response = t.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let text = response.text().await.unwrap();
    let master =
        hls_m3u8::MasterPlaylist::try_from(text.as_str()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(master.variant_streams.len(), 3, "{text}");
    let uris: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let resolutions: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("RESOLUTION=").nth(1))
        .map(|r| r.split(',').next().unwrap())
        .collect();
    assert_eq!(resolutions, ["640x360", "426x240", "256x144"], "{text}");
    for (uri, (_, name)) in uris.iter().zip(members) {
        assert!(uri.starts_with(&format!("../../{name}/")), "{uri}");
        let playlist_url = reqwest::Url::parse(&url).unwrap().join(uri).unwrap();
        let playlist = t.http.get(playlist_url).send().await.unwrap();
        assert_eq!(playlist.status(), 200, "{uri}");
        let playlist = playlist.text().await.unwrap();
        assert_eq!(playlist.contains("#EXT-X-ENDLIST"), ended, "{playlist}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passthrough_reconnecting_within_the_grace_keeps_its_renditions_going() {
    let Some(_) = tool("ffprobe") else {
        return;
    };
    let _alone = ONE_AT_A_TIME.lock().await;
    let t = start().await;
    let group = t
        .create_group(json!({"transcodes": [{"profile": "vtrans2-320x180x200x30"}]}))
        .await;
    let name = streamname(&group);
    let member = group["playout"]["rtmp"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tags = fixture_tags();
    let half = tags.iter().position(|t| t.timestamp_ms >= 3000).unwrap();

    let mut first = RtmpClient::connect(t.rtmp(), "rec").await.unwrap();
    first.publish(&name).await.unwrap();
    send_tags(&mut first, &tags[..half], 1.0).await;
    drop(first); // vanishes: no unpublish
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(t.state_of(&member).await, "live");
    let mut second = RtmpClient::connect(t.rtmp(), "rec").await.unwrap();
    second.publish(&name).await.unwrap();
    send_tags(&mut second, &tags, 1.0).await;
    second.stop_publishing().await.unwrap();
    t.wait_state(&member, "ended").await;

    // One session and one continuous recording of the rendition across the reconnect.
    let sessions = t.sessions(&member).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["end_reason"], "client_closed");
    let (_, body) = t.get(&format!("/stream/{member}")).await;
    assert_eq!(
        body["playout"]["web"].as_array().unwrap().len(),
        1,
        "{body}"
    );
    let file = download(&t, &recording_url(&t, &member).await, t.dir.path()).await;
    decodes_cleanly(&file);
    let probe = probe(&file).unwrap();
    let expected = 3.0 + f64::from(tags.last().unwrap().timestamp_ms) / 1000.0;
    let duration = format_duration(&probe);
    assert!(
        (duration - expected).abs() < 0.5,
        "{duration} vs {expected}"
    );
}
