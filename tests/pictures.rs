//! In-process decoding: the fixture's first keyframe (H.264 High with B-frames, as OBS sends)
//! decoded by OpenH264, converted with the stream's colour matrix and encoded as JPEG, read
//! back by an independent JPEG decoder and compared with ffmpeg's decode of the same frame
//! (ffmpeg required when CI=true).

mod common;

use common::*;
use reelay::flv::file::demux_tags;
use reelay::media::Track;
use reelay::picture::convert::{jpeg, to_rgb};
use reelay::picture::StreamDecoder;

/// Peak signal-to-noise ratio of two RGB8 images, in dB.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
}

/// ffmpeg's RGB of the fixture's first video frame.
fn ffmpeg_first_frame() -> Option<Vec<u8>> {
    let ffmpeg = tool("ffmpeg")?;
    let out = output_ok(
        std::process::Command::new(ffmpeg)
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(fixture_path())
            .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]),
    );
    Some(out.stdout)
}

#[test]
fn a_keyframe_decodes_in_process_to_ffmpegs_picture() {
    let packets = demux_tags(&fixture_tags());
    let key = packets
        .iter()
        .find(|p| p.track == Track::Video && p.is_key)
        .unwrap();
    let avc = key.config.avc().unwrap().clone();
    let mut decoder = StreamDecoder::new().unwrap();
    let picture = decoder.decode_keyframe(&avc, &key.payload()).unwrap();
    assert_eq!((picture.width, picture.height), (640, 360));
    let rgb = to_rgb(&picture, avc.color).unwrap();
    let encoded = jpeg(&rgb, picture.width, picture.height, 90).unwrap();
    let mut reader = jpeg_decoder::Decoder::new(encoded.as_slice());
    let pixels = reader.decode().unwrap();
    let info = reader.info().unwrap();
    assert_eq!((info.width, info.height), (640, 360));
    // A warm decoder decodes the next keyframe too (and gives another picture).
    let next_key = packets
        .iter()
        .filter(|p| p.track == Track::Video && p.is_key)
        .nth(1)
        .unwrap();
    let next = decoder.decode_keyframe(&avc, &next_key.payload()).unwrap();
    assert_ne!(next.y, picture.y, "successive keyframes differ");

    let Some(reference) = ffmpeg_first_frame() else {
        return;
    };
    let raw = psnr(&rgb, &reference);
    let compressed = psnr(&pixels, &reference);
    eprintln!("PSNR against ffmpeg: converted {raw:.1} dB, JPEG q90 {compressed:.1} dB");
    assert!(raw > 40.0, "conversion PSNR {raw:.1} dB");
    assert!(compressed > 35.0, "JPEG PSNR {compressed:.1} dB");
}

/// A stream with `thumbs` gets its first thumbnail at the first keyframe: served at the
/// stable URL (short caching) and in the history, listed under `playout.thumbnails`, decoding
/// to the stream's size; the status reports the success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_are_taken_at_the_first_keyframe_and_listed() {
    use reelay::client::RtmpClient;
    use serde_json::json;
    use std::time::{Duration, Instant};
    let t = start().await;
    let stream = t
        .create_stream_with(json!([{"id": "thumbs", "interval": 10}]))
        .await;
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    let tags = fixture_tags();
    let pusher = tokio::spawn(async move {
        send_tags(&mut publisher, &tags, 1.0).await;
        publisher
    });
    let url = t.url(&format!("/thumbnails/{name}.jpg"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let response = loop {
        let response = t.http.get(&url).send().await.unwrap();
        if response.status() == 200 {
            break response;
        }
        assert!(Instant::now() < deadline, "no thumbnail at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(response.headers()["cache-control"], "public, max-age=5");
    let bytes = response.bytes().await.unwrap();
    let mut reader = jpeg_decoder::Decoder::new(bytes.as_ref());
    reader.decode().unwrap();
    let info = reader.info().unwrap();
    assert_eq!((info.width, info.height), (640, 360));

    let (_, body) = t.get(&format!("/stream/{id}")).await;
    let listed = &body["playout"]["thumbnails"][0];
    assert_eq!(listed["url"], url.as_str(), "{body}");
    assert_eq!(listed["type"], "image");
    let history = listed["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{body}");
    let old = t
        .http
        .get(history[0].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 200);
    assert!(old.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let status = &body["playout"]["rtmp"][0]["status"]["thumbs"];
    assert_eq!(status["state"], "active", "{body}");
    assert!(status["last_success"].is_string());
    pusher.await.unwrap().stop_publishing().await.unwrap();
    t.wait_state(&id, "ended").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = t.get(&format!("/stream/{id}")).await;
        if body["playout"]["rtmp"][0]["status"]["thumbs"]["state"] == "idle" {
            break;
        }
        assert!(Instant::now() < deadline, "thumbs still {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A GIF decoded by the `gif` crate's decoder (not our code): each frame composited onto the
/// canvas as a viewer shows it (RGB), with its delay in centiseconds, and the loop count.
fn decode_gif(bytes: &[u8]) -> (u16, u16, Vec<(Vec<u8>, u16)>, gif::Repeat) {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(bytes).unwrap();
    let (width, height) = (decoder.width(), decoder.height());
    let mut canvas = vec![0u8; usize::from(width) * usize::from(height) * 3];
    let mut frames = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        for y in 0..usize::from(frame.height) {
            for x in 0..usize::from(frame.width) {
                let source = (y * usize::from(frame.width) + x) * 4;
                if frame.buffer[source + 3] == 0 {
                    continue;
                }
                let target = ((y + usize::from(frame.top)) * usize::from(width)
                    + x
                    + usize::from(frame.left))
                    * 3;
                canvas[target..target + 3].copy_from_slice(&frame.buffer[source..source + 3]);
            }
        }
        frames.push((canvas.clone(), frame.delay));
    }
    let repeat = decoder.repeat();
    (width, height, frames, repeat)
}

/// ffmpeg's RGB of the fixture's frames 0, 3, 6 … (every third of 30 fps: 10 fps).
fn ffmpeg_every_third_frame(count: usize) -> Option<Vec<Vec<u8>>> {
    let ffmpeg = tool("ffmpeg")?;
    let out = output_ok(
        std::process::Command::new(ffmpeg)
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(fixture_path())
            .args(["-vf", "select=not(mod(n\\,3))", "-fps_mode", "passthrough"])
            .args(["-frames:v", &count.to_string()])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]),
    );
    Some(
        out.stdout
            .chunks_exact(640 * 360 * 3)
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// A 3 s motion clip of the OBS-like fixture (High, B-frames) at 10 fps: 30 frames lasting
/// 3.00 s in all, looping; each frame is the source frame at its time (checked against
/// ffmpeg's decode: much closer to the right frame than to its neighbours).
#[test]
fn a_motion_clip_shows_the_source_frames_at_their_times() {
    use reelay::picture::motion::{make_clip, ClipSettings};
    let packets = demux_tags(&fixture_tags());
    let video: Vec<_> = packets
        .iter()
        .filter(|p| p.track == Track::Video)
        .skip_while(|p| !p.is_key)
        .collect();
    let avc = video[0]
        .config
        .video
        .as_ref()
        .unwrap()
        .avc()
        .unwrap()
        .clone();
    let payloads: Vec<_> = video.iter().map(|p| p.payload()).collect();
    let frames: Vec<(i64, &[u8])> = video
        .iter()
        .zip(&payloads)
        .map(|(p, b)| (p.dts_ms + i64::from(p.cts_ms), &b[..]))
        .collect();
    let mut decoder = StreamDecoder::new().unwrap();
    let settings = ClipSettings {
        width: 640,
        fps: 10,
        duration_ms: 3000,
    };
    let bytes = make_clip(&mut decoder, &avc, &frames, settings).unwrap();
    let (width, height, shown, repeat) = decode_gif(&bytes);
    assert_eq!((width, height), (640, 360));
    assert_eq!(repeat, gif::Repeat::Infinite);
    assert_eq!(shown.len(), 30);
    let total: u32 = shown.iter().map(|(_, d)| u32::from(*d)).sum();
    assert!((290..=310).contains(&total), "total {total} cs");
    assert!(shown.windows(2).all(|w| w[0].0 != w[1].0), "frames differ");
    // The same decoder makes the next clips too (OpenH264 ran out of picture buffers on the
    // third clip in one decoder, so it is renewed after each), and keyframes after them; a
    // downscaled clip is 480 wide.
    let small = ClipSettings {
        width: 480,
        ..settings
    };
    for _ in 0..4 {
        let next = make_clip(&mut decoder, &avc, &frames[60..], small).unwrap();
        let (width, height, shown_next, _) = decode_gif(&next);
        assert_eq!((width, height, shown_next.len()), (480, 270, 30));
        decoder.decode_keyframe(&avc, frames[60].1).unwrap();
    }

    let Some(reference) = ffmpeg_every_third_frame(31) else {
        return;
    };
    for (k, (ours, _)) in shown.iter().enumerate() {
        let right = psnr(ours, &reference[k]);
        let next = psnr(ours, &reference[k + 1]);
        let previous = k.checked_sub(1).map_or(0.0, |p| psnr(ours, &reference[p]));
        eprintln!("frame {k}: {right:.1} dB (neighbours {previous:.1} / {next:.1} dB)");
        // 255 colours cost some fidelity (≈ 34 dB here); a wrong frame costs far more.
        assert!(right > 30.0, "frame {k}: {right:.1} dB");
        assert!(
            right > next.max(previous) + 10.0,
            "frame {k} looks like a neighbour"
        );
    }
}

/// A GIF's frame count, size and duration as ffprobe reads them.
fn probe_gif(bytes: &[u8]) -> Option<(u64, u64, u64, f64)> {
    let ffprobe = tool("ffprobe")?;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clip.gif");
    std::fs::write(&path, bytes).unwrap();
    let out = output_ok(
        std::process::Command::new(ffprobe)
            .args(["-v", "error", "-count_frames", "-of", "json"])
            .args([
                "-show_entries",
                "stream=nb_read_frames,width,height,duration",
            ])
            .arg(&path),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stream = &json["streams"][0];
    let number = |v: &serde_json::Value| v.as_u64().or_else(|| v.as_str()?.parse().ok());
    Some((
        number(&stream["nb_read_frames"]).unwrap(),
        number(&stream["width"]).unwrap(),
        number(&stream["height"]).unwrap(),
        stream["duration"].as_str().unwrap().parse().unwrap(),
    ))
}

/// Polls `url` until it answers 200 with a body that `accept` takes, within `secs`.
async fn fetch_until(
    t: &TestServer,
    url: &str,
    secs: u64,
    accept: impl Fn(&[u8]) -> bool,
) -> (reqwest::header::HeaderMap, bytes::Bytes) {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let response = t.http.get(url).send().await.unwrap();
        if response.status() == 200 {
            let headers = response.headers().clone();
            let bytes = response.bytes().await.unwrap();
            if accept(&bytes) {
                return (headers, bytes);
            }
        }
        assert!(Instant::now() < deadline, "nothing acceptable at {url}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn jpeg_size(bytes: &[u8]) -> (u16, u16) {
    let mut reader = jpeg_decoder::Decoder::new(bytes);
    reader.decode().unwrap();
    let info = reader.info().unwrap();
    (info.width, info.height)
}

/// A stream with `thumbs` and `motionclip` (3 s every 10 s): the first GIF covers the first
/// 3 s (30 frames at 10 fps, 480×270, ffprobe reads it), is served as `image/gif` and listed
/// under `playout.motionclip`. The publisher then switches from 640×360 to 1280×720 (a new
/// sequence header): the next thumbnail has the new size and decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motion_clips_and_a_resolution_change() {
    use reelay::client::RtmpClient;
    use reelay::flv::file::read_tags;
    use serde_json::json;
    let t = start().await;
    let stream = t
        .create_stream_with(json!([
            {"id": "thumbs", "interval": 10},
            {"id": "motionclip", "interval": 10, "duration": 3}
        ]))
        .await;
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    // 6 s at 640×360, then a 1280×720 keyframe every 500 ms until 12 s.
    let mut tags = fixture_tags();
    let hd_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keyframe-720p.flv");
    let hd = read_tags(&bytes::Bytes::from(std::fs::read(hd_path).unwrap())).unwrap();
    let hd_video: Vec<_> = hd.iter().filter(|t| t.tag_type == 9).collect();
    let (header, key) = (hd_video[0].clone(), hd_video[1].clone());
    let after = tags.last().unwrap().timestamp_ms + 33;
    tags.push(reelay::flv::file::FlvTag {
        timestamp_ms: after,
        ..header
    });
    for k in 0..12 {
        tags.push(reelay::flv::file::FlvTag {
            timestamp_ms: after + k * 500,
            ..key.clone()
        });
    }
    let pusher = tokio::spawn(async move {
        send_tags(&mut publisher, &tags, 1.0).await;
        publisher
    });

    let gif_url = t.url(&format!("/thumbnails/{name}.gif"));
    let (headers, gif) = fetch_until(&t, &gif_url, 30, |_| true).await;
    assert_eq!(headers["content-type"], "image/gif");
    if let Some((frames, width, height, duration)) = probe_gif(&gif) {
        assert_eq!((frames, width, height), (30, 480, 270));
        assert!((duration - 3.0).abs() <= 0.1, "duration {duration}");
    }
    let (_, body) = t.get(&format!("/stream/{id}")).await;
    let listed = &body["playout"]["motionclip"][0];
    assert_eq!(listed["url"], gif_url.as_str(), "{body}");
    assert_eq!(listed["type"], "gif");
    assert_eq!(listed["history"].as_array().unwrap().len(), 1, "{body}");
    let status = &body["playout"]["rtmp"][0]["status"]["motionclip"];
    assert_eq!(status["state"], "active", "{body}");

    let jpg_url = t.url(&format!("/thumbnails/{name}.jpg"));
    let (_, first) = fetch_until(&t, &jpg_url, 30, |_| true).await;
    assert_eq!(jpeg_size(&first), (640, 360));
    // The tick at 10 s takes the newest keyframe: 1280×720 by then.
    fetch_until(&t, &jpg_url, 30, |b| jpeg_size(b) == (1280, 720)).await;
    pusher.await.unwrap().stop_publishing().await.unwrap();
    let (_, body) = t.get(&format!("/stream/{id}")).await;
    let history = body["playout"]["thumbnails"][0]["history"]
        .as_array()
        .unwrap();
    assert_eq!(history.len(), 2, "{body}");
    assert_eq!(body["playout"]["rtmp"][0]["status"]["thumbs"]["skipped"], 0);
}

/// A stream OpenH264 cannot take (HEVC via Enhanced RTMP) gets a clear error status on both
/// picture entries, no picture, and the stream itself is relayed and ends normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hevc_stream_gets_a_clear_picture_status() {
    use reelay::client::RtmpClient;
    use serde_json::json;
    use std::time::{Duration, Instant};
    let t = start().await;
    let stream = t
        .create_stream_with(json!([
            {"id": "thumbs", "interval": 10},
            {"id": "motionclip", "interval": 10, "duration": 1}
        ]))
        .await;
    let id = stream["id"].as_str().unwrap().to_string();
    let name = streamname(&stream);
    let mut publisher = RtmpClient::connect(t.rtmp(), "live").await.unwrap();
    publisher.publish(&name).await.unwrap();
    send_tags(&mut publisher, &enhanced_rtmp_tags("hevc-aac.mp4"), 4.0).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        let (_, body) = t.get(&format!("/stream/{id}")).await;
        let status = &body["playout"]["rtmp"][0]["status"];
        if status["thumbs"]["state"] == "error" && status["motionclip"]["state"] == "error" {
            break body;
        }
        assert!(Instant::now() < deadline, "no error status: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status = &body["playout"]["rtmp"][0]["status"];
    assert_eq!(
        status["thumbs"]["last_error"]["message"], "thumbnails need H.264; this stream sends hevc",
        "{body}"
    );
    assert_eq!(
        status["motionclip"]["last_error"]["message"],
        "motion clips need H.264; this stream sends hevc"
    );
    assert_eq!(status["thumbs"]["errors"], 1, "reported once");
    assert_eq!(body["playout"]["thumbnails"], json!([]));
    assert_eq!(body["state"], "live");
    publisher.stop_publishing().await.unwrap();
    t.wait_state(&id, "ended").await;
    assert_eq!(
        t.http.get(t.url("/health")).send().await.unwrap().status(),
        200
    );
}

/// `pictures.thumbnail_max_width` scales a thumbnail down, aspect kept.
#[test]
fn a_thumbnail_can_be_limited_in_width() {
    let packets = demux_tags(&fixture_tags());
    let key = packets
        .iter()
        .find(|p| p.track == Track::Video && p.is_key)
        .unwrap();
    let mut decoder = StreamDecoder::new().unwrap();
    let small = reelay::sinks::thumbs::render(&mut decoder, key, 320).unwrap();
    assert_eq!(jpeg_size(&small), (320, 180));
    let full = reelay::sinks::thumbs::render(&mut decoder, key, 0).unwrap();
    assert_eq!(jpeg_size(&full), (640, 360));
}
