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
    let avc = key.config.video.as_ref().unwrap().avc().unwrap().clone();
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
