//! Recording (VOD): real RTMP pushes, files read back with ffprobe/ffmpeg (required when
//! CI=true), the `mp4` crate as an independent parser, and real HTTP range requests.

mod common;

use common::*;
use reelay::client::RtmpClient;
use reelay::flv::file::{demux_tags, FlvTag};
use reelay::media::Track;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Polls `GET /stream/{id}` until `playout.web` lists `count` recordings.
async fn wait_recordings(t: &TestServer, id: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = t.get(&format!("/stream/{id}?asset_limit=100")).await;
        let web = body["playout"]["web"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if web.len() >= count {
            return web;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} recordings: {body}",
            web.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn top_level_boxes(data: &[u8]) -> Vec<String> {
    let mut boxes = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        boxes.push(String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned());
        assert!(size >= 8);
        pos += size;
    }
    boxes
}

/// Samples per track listed in the file's moov, read with the `mp4` crate.
fn sample_counts(path: &Path) -> (u32, u32) {
    let data = std::fs::read(path).unwrap();
    let size = data.len() as u64;
    let reader = mp4::Mp4Reader::read_header(std::io::Cursor::new(data), size).unwrap();
    assert!(reader.moov.mvex.is_none(), "a regular MP4 has no mvex");
    let mut video = 0;
    let mut audio = 0;
    for track in reader.tracks().values() {
        match track.track_type().unwrap() {
            mp4::TrackType::Video => video = track.sample_count(),
            mp4::TrackType::Audio => audio = track.sample_count(),
            _ => {}
        }
    }
    (video, audio)
}

fn media_counts(tags: &[FlvTag]) -> (u32, u32) {
    let packets = demux_tags(tags);
    let video = packets.iter().filter(|p| p.track == Track::Video).count() as u32;
    (video, packets.len() as u32 - video)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rec_ingest_gives_a_regular_mp4_matching_the_pushed_media_served_with_ranges() {
    let t = start().await;
    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    let tags = fixture_tags();
    let mut publisher = RtmpClient::connect(t.rtmp(), "rec").await.unwrap();
    publisher.publish(&name).await.unwrap();
    send_tags(&mut publisher, &tags, 0.0).await;
    publisher.stop_publishing().await.unwrap();
    t.wait_state(&id, "ended").await;

    let web = wait_recordings(&t, &id, 1).await;
    let asset = &web[0];
    assert_eq!(asset["type"], "vod");
    assert_eq!(asset["streamname"], name.as_str());
    assert_eq!(asset["streamId"], id.as_str());
    let sessions = t.sessions(&id).await;
    assert_eq!(asset["session"], sessions[0]["id"]);
    assert_eq!(sessions[0]["assets"][0]["url"], asset["url"]);
    let url = asset["url"].as_str().unwrap();
    let org = name.split('-').next().unwrap();
    assert!(
        url.ends_with(&format!("/vod/eu/{org}/{name}-1.mp4")),
        "{url}"
    );

    let file = download(&t, url, t.dir.path()).await;
    let data = std::fs::read(&file).unwrap();
    assert_eq!(asset["size"].as_u64().unwrap(), data.len() as u64);
    let boxes = top_level_boxes(&data);
    assert!(!boxes.iter().any(|b| b == "moof"), "{boxes:?}");
    assert_eq!(boxes.iter().filter(|b| *b == "moov").count(), 1);
    assert_eq!(sample_counts(&file), media_counts(&tags));

    if let Some(probe) = probe(&file) {
        let codecs: Vec<&str> = probe["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["codec_name"].as_str().unwrap())
            .collect();
        assert_eq!(codecs.len(), 2, "{codecs:?}");
        assert!(
            codecs.contains(&"h264") && codecs.contains(&"aac"),
            "{codecs:?}"
        );
        let duration = format_duration(&probe);
        let pushed = f64::from(tags.last().unwrap().timestamp_ms) / 1000.0;
        assert!((duration - pushed).abs() <= 0.1, "{duration} vs {pushed}");
        // In sync: both tracks end within one video frame of each other (the fixture's own
        // audio runs 37 ms longer than its video, from 21 ms earlier).
        let (video, audio) = (stream_end(&probe, "video"), stream_end(&probe, "audio"));
        assert!(
            (video - audio).abs() <= 1.0 / 30.0,
            "video ends {video}, audio {audio}"
        );
        assert!((asset["duration"].as_f64().unwrap() - duration).abs() < 0.01);
    }
    decodes_cleanly(&file);

    // Byte ranges, validators, and nothing outside the data folder.
    let range = t
        .http
        .get(url)
        .header("Range", "bytes=100-1123")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(
        range.headers()["content-range"],
        format!("bytes 100-1123/{}", data.len()).as_str()
    );
    let etag = range.headers()["etag"].to_str().unwrap().to_string();
    assert!(range.headers().contains_key("last-modified"));
    assert_eq!(range.bytes().await.unwrap().as_ref(), &data[100..1124]);
    let tail = t
        .http
        .get(url)
        .header("Range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &data[data.len() - 10..]
    );
    let outside = t
        .http
        .get(url)
        .header("Range", format!("bytes={}-", data.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 416);
    // Validators and conditional requests: tests/files.rs.
    assert!(etag.starts_with('"'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_10_splits_a_30_second_push_into_three_files_losing_nothing() {
    let t = start().await;
    let stream = t
        .create_stream_with(json!([{"id": "rec", "duration": 10}]))
        .await;
    let id = stream["id"].as_str().unwrap().to_string();
    let (tags, pushed_video_secs) = looped_fixture(5);
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&streamname(&stream)).await.unwrap();
    send_tags(&mut publisher, &tags, 0.0).await;
    publisher.stop_publishing().await.unwrap();
    t.wait_state(&id, "ended").await;
    let web = wait_recordings(&t, &id, 3).await;
    assert_eq!(web.len(), 3, "{web:?}");

    let (mut video_samples, mut audio_samples) = (0, 0);
    let mut video_secs = 0.0;
    let mut file_secs = Vec::new();
    for asset in &web {
        let file = download(&t, asset["url"].as_str().unwrap(), t.dir.path()).await;
        let (video, audio) = sample_counts(&file);
        video_samples += video;
        audio_samples += audio;
        // Each file starts with a keyframe.
        let data = std::fs::read(&file).unwrap();
        let size = data.len() as u64;
        let mut reader = mp4::Mp4Reader::read_header(std::io::Cursor::new(data), size).unwrap();
        let video_id = reader
            .tracks()
            .values()
            .find(|t| t.track_type().ok() == Some(mp4::TrackType::Video))
            .unwrap()
            .track_id();
        assert!(reader.read_sample(video_id, 1).unwrap().unwrap().is_sync);
        if let Some(probe) = probe(&file) {
            video_secs += stream_duration(&probe, "video");
            file_secs.push(stream_duration(&probe, "video"));
        }
        decodes_cleanly(&file);
    }
    assert_eq!((video_samples, audio_samples), media_counts(&tags));
    if tool("ffprobe").is_some() {
        // Newest first: the older files end at the first keyframe at or after 10 s (the
        // fixture has one every 2 s).
        for secs in &file_secs[1..] {
            assert!((10.0..12.0).contains(secs), "{file_secs:?}");
        }
        let frame = 1.0 / 30.0;
        assert!(
            (video_secs - pushed_video_secs).abs() <= frame,
            "{video_secs} vs {pushed_video_secs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_reconnecting_within_the_grace_continues_one_file() {
    let t = start().await;
    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    let tags = fixture_tags();
    let half = tags.iter().position(|t| t.timestamp_ms >= 3000).unwrap();

    let mut first = RtmpClient::connect(t.rtmp(), "rec").await.unwrap();
    first.publish(&name).await.unwrap();
    send_tags(&mut first, &tags[..half], 0.0).await;
    drop(first); // vanishes: no unpublish
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut second = RtmpClient::connect(t.rtmp(), "rec").await.unwrap();
    second.publish(&name).await.unwrap();
    send_tags(&mut second, &tags, 0.0).await;
    second.stop_publishing().await.unwrap();
    t.wait_state(&id, "ended").await;

    let sessions = t.sessions(&id).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["end_reason"], "client_closed");
    let web = wait_recordings(&t, &id, 1).await;
    assert_eq!(web.len(), 1);
    let file = download(&t, web[0]["url"].as_str().unwrap(), t.dir.path()).await;
    let (first_video, first_audio) = media_counts(&tags[..half]);
    let (all_video, all_audio) = media_counts(&tags);
    assert_eq!(
        sample_counts(&file),
        (first_video + all_video, first_audio + all_audio)
    );
    if let Some(probe) = probe(&file) {
        let duration = format_duration(&probe);
        let expected = 3.0 + f64::from(tags.last().unwrap().timestamp_ms) / 1000.0;
        assert!(
            (duration - expected).abs() < 0.2,
            "{duration} vs {expected}"
        );
    }
    decodes_cleanly(&file);
}

/// Enhanced RTMP (HEVC with B-frames, AV1) + AAC pushed to `/rec` is recorded with `hvc1` /
/// `av01` sample entries: ffprobe sees the codec at the right size, ffmpeg decodes every
/// frame silently, and every pushed sample is in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enhanced_rtmp_hevc_and_av1_are_recorded() {
    let t = start().await;
    for (fixture, codec) in [("hevc-aac.mp4", "hevc"), ("av1-aac.mp4", "av1")] {
        let stream = t.create_stream().await;
        let id = stream["id"].as_str().unwrap().to_string();
        let tags = enhanced_rtmp_tags(fixture);
        let mut publisher = RtmpClient::connect(t.rtmp(), "rec").await.unwrap();
        publisher.publish(&streamname(&stream)).await.unwrap();
        send_tags(&mut publisher, &tags, 0.0).await;
        publisher.stop_publishing().await.unwrap();
        let web = wait_recordings(&t, &id, 1).await;
        let file = download(&t, web[0]["url"].as_str().unwrap(), t.dir.path()).await;
        assert_eq!(sample_counts(&file), (120, 189), "{fixture}");
        let Some(probe) = probe(&file) else { continue };
        let video = probe["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["codec_type"] == "video")
            .unwrap();
        assert_eq!(video["codec_name"], codec, "{probe}");
        assert_eq!(
            (video["width"].as_u64(), video["height"].as_u64()),
            (Some(426), Some(240))
        );
        let duration = stream_duration(&probe, "video");
        assert!((duration - 4.0).abs() <= 0.05, "{fixture}: {duration}");
        decodes_cleanly(&file);
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(fixture);
        assert_eq!(
            decoded_picture_hashes(&file),
            decoded_picture_hashes(&source),
            "{fixture}: the recording decodes to other pictures than the source"
        );
    }
}

/// MD5 of every decoded video picture, in order (`ffmpeg -f framemd5`).
fn decoded_picture_hashes(path: &Path) -> Vec<String> {
    let Some(ffmpeg) = tool("ffmpeg") else {
        return Vec::new();
    };
    let out = output_ok(
        std::process::Command::new(ffmpeg)
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(path)
            .args(["-map", "0:v", "-f", "framemd5", "-"]),
    );
    let hashes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect();
    assert!(
        !hashes.is_empty(),
        "no pictures decoded from {}",
        path.display()
    );
    hashes
}

/// Whether this machine lets us mount a small tmpfs in a private mount namespace
/// (`unshare --user --map-root-user --mount`): the way to fill a disk without touching the
/// machine's own disks.
fn can_mount_small_disk(dir: &Path) -> bool {
    let Some(unshare) = tool("unshare") else {
        return false;
    };
    std::process::Command::new(unshare)
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg("mount -t tmpfs -o size=1m tmpfs \"$0\"")
        .arg(dir)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// A recording on a disk that fills up: the recorder gets "no space left", gives up the disk
/// reserve, finalises what it wrote into a regular MP4 and lists it; the stream's `rec`
/// status and `/metrics` report the error; the live stream goes on for its viewers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_recording_cleanly_and_live_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    if !can_mount_small_disk(&data) {
        eprintln!("skipping: cannot mount a tmpfs in a user+mount namespace here (unshare)");
        return;
    }
    // A 3 MiB disk: catalog and 1 MiB reserve leave room for about 20 s of the fixture.
    let (http_port, rtmp_port) = (free_port(), free_port());
    let script = "mount -t tmpfs -o size=3m tmpfs \"$0\" && exec \"$1\" serve --data-dir \"$0\" \
                  --http-addr \"127.0.0.1:$2\" --rtmp-addr \"127.0.0.1:$3\"";
    let mut server = KillOnDrop(
        std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c", script])
            .arg(&data)
            .arg(env!("CARGO_BIN_EXE_reelay"))
            .args([http_port.to_string(), rtmp_port.to_string()])
            .env("REELAY_RECORDING_DISK_RESERVE_MB", "1")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    // The admin key file is on the private tmpfs; the first-start banner prints it.
    let stdout = server.0.stdout.take().unwrap();
    let key = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| line.split("): ").nth(1).map(str::to_string))
    })
    .join()
    .unwrap()
    .expect("first-start banner with the admin key");
    let http = reqwest::Client::new();
    wait_healthy(&http, http_port).await;
    let base = format!("http://127.0.0.1:{http_port}");
    let (status, stream) = call(&http, reqwest::Method::POST, format!("{base}/stream"), &key).await;
    assert_eq!(status, 201);
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    let rtmp = format!("127.0.0.1:{rtmp_port}").parse().unwrap();

    let (tags, _) = looped_fixture(8); // 48 s of media, about 3.6 MB
    let mut publisher = RtmpClient::connect(rtmp, "rec").await.unwrap();
    publisher.publish(&name).await.unwrap();
    let mut player = RtmpClient::connect(rtmp, "live").await.unwrap();
    player.play(&name).await.unwrap();
    let last_ts = tags.last().unwrap().timestamp_ms;
    let watcher = tokio::spawn(async move {
        let mut newest = 0;
        while let Ok(Some(media)) =
            tokio::time::timeout(Duration::from_secs(5), player.next_media())
                .await
                .unwrap_or(Ok(None))
        {
            newest = newest.max(media.timestamp_ms);
            if newest >= last_ts {
                break;
            }
        }
        newest
    });
    send_tags(&mut publisher, &tags, 4.0).await;
    let newest_seen = watcher.await.unwrap();
    publisher.stop_publishing().await.unwrap();

    // Live delivery went on past the point where the disk filled.
    assert!(
        newest_seen + 2500 >= last_ts,
        "player saw up to {newest_seen} of {last_ts} ms"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (_, body) = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/stream/{id}"),
            &key,
        )
        .await;
        if body["state"] == "ended" && !body["playout"]["web"].as_array().unwrap().is_empty() {
            break body;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = || std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    let rec = &body["playout"]["rtmp"][0]["status"]["rec"];
    assert_eq!(rec["state"], "error", "{body}\n{}", log());
    let message = rec["last_error"]["message"].as_str().unwrap();
    assert!(message.starts_with("disk full"), "{message}");
    assert_eq!(rec["errors"], 1);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("reelay_recording_write_errors_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("reelay_recording_reserve_released_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("reelay_recording_files_finished_total 1\n"),
        "{metrics}"
    );
    assert!(log().contains("disk full"), "{}", log());

    // What was written before the disk filled is a regular, playable MP4.
    let web = &body["playout"]["web"][0];
    let duration = web["duration"].as_f64().unwrap();
    assert!((5.0..40.0).contains(&duration), "{web}");
    let bytes = http
        .get(web["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(web["size"].as_u64(), Some(bytes.len() as u64));
    let boxes = top_level_boxes(&bytes);
    assert!(!boxes.iter().any(|b| b == "moof"), "{boxes:?}");
    let file = dir.path().join("full-disk.mp4");
    std::fs::write(&file, &bytes).unwrap();
    let (video, audio) = sample_counts(&file);
    assert!(video > 100 && audio > 100, "{video} {audio}");
    eprintln!("disk full after {duration} s of media ({video} video, {audio} audio samples); player saw up to {newest_seen} ms");
    if let Some(probe) = probe(&file) {
        let probed = stream_duration(&probe, "video");
        assert!((probed - duration).abs() < 0.2, "{probed} vs {duration}");
    }
    decodes_cleanly(&file);
    server.kill();
}

/// A session recorded (split by `rec.duration`) but without replay is clipped from its
/// recording files, across the split, to exactly the asked-for length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_is_cut_from_the_recordings_across_a_split() {
    let t = start().await;
    let stream = t
        .create_stream_with(json!([{"id": "rec", "duration": 10}]))
        .await;
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    let (tags, _) = looped_fixture(4); // 24 s: files of 10, 10 and 4 s
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    send_tags(&mut publisher, &tags, 0.0).await;
    publisher.stop_publishing().await.unwrap();
    wait_recordings(&t, &id, 3).await;
    let session = t.sessions(&id).await[0]["id"].as_str().unwrap().to_string();
    let (status, asset) = t
        .clip(&id, json!({"session": session, "start": 7.5, "end": 13.0}))
        .await;
    assert_eq!(status, 201, "{asset}");
    let file = download(&t, asset["url"].as_str().unwrap(), t.dir.path()).await;
    if let Some(probe) = probe(&file) {
        let duration = format_duration(&probe);
        assert!(
            (duration - 5.5).abs() <= 1.0 / 30.0,
            "clip lasts {duration} s"
        );
        assert!((stream_duration(&probe, "video") - 5.5).abs() <= 1.0 / 30.0);
        assert!((stream_duration(&probe, "audio") - 5.5).abs() <= 1.0 / 30.0);
    }
    decodes_cleanly(&file);
    let (status, body) = t
        .clip(&id, json!({"session": session, "start": 20.0, "end": 30.0}))
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("end")),
        "{body}"
    );
}
