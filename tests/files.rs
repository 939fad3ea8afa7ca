//! Serving stored files: the conditional-request matrix of RFC 9110 (§13.1 preconditions in
//! the order of §13.2.2, `If-Range` of §13.1.5, ranges of §14) on a real finished recording,
//! over real HTTP.

mod common;

use common::*;
use reelay::client::RtmpClient;
use std::time::{Duration, Instant, SystemTime};

/// What a response must carry.
#[derive(Debug, Clone, Copy)]
enum Body {
    /// The whole file.
    Full,
    /// Bytes `start..=end` of it, as a 206 with `Content-Range`.
    Range(usize, usize),
    /// No body (304, 412, 416, HEAD).
    Empty,
}

/// One request of the matrix: its name, headers, the status and body it must get.
type Case<'a> = (&'a str, Vec<(&'a str, String)>, u16, Body);

fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_requests_on_a_finished_recording_follow_rfc_9110() {
    let t = start().await;
    let stream = t.create_stream().await;
    let id = stream["id"].as_str().unwrap().to_string();
    let mut publisher = RtmpClient::connect(t.rtmp(), "rec").await.unwrap();
    publisher.publish(&streamname(&stream)).await.unwrap();
    send_tags(&mut publisher, &fixture_tags(), 0.0).await;
    publisher.stop_publishing().await.unwrap();
    t.wait_state(&id, "ended").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = loop {
        let (_, body) = t.get(&format!("/stream/{id}")).await;
        if let Some(url) = body["playout"]["web"][0]["url"].as_str() {
            break url.to_string();
        }
        assert!(Instant::now() < deadline, "no recording: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let first = t.http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let last_modified = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(etag.starts_with('"'), "a strong validator: {etag}");
    assert_eq!(first.headers()["accept-ranges"], "bytes");
    assert_eq!(first.headers()["content-type"], "video/mp4");
    let data = first.bytes().await.unwrap();
    let len = data.len();
    let modified = httpdate::parse_http_date(&last_modified).unwrap();
    let day = Duration::from_secs(86_400);
    let (before, after) = (http_date(modified - day), http_date(modified + day));
    let weak = format!("W/{etag}");

    let cases: Vec<Case> = vec![
        ("plain", vec![], 200, Body::Full),
        // If-None-Match: weak comparison; a match is 304.
        (
            "INM match",
            vec![("if-none-match", etag.clone())],
            304,
            Body::Empty,
        ),
        (
            "INM weak form",
            vec![("if-none-match", weak.clone())],
            304,
            Body::Empty,
        ),
        (
            "INM in a list",
            vec![("if-none-match", format!("\"x\", {etag}"))],
            304,
            Body::Empty,
        ),
        (
            "INM star",
            vec![("if-none-match", "*".into())],
            304,
            Body::Empty,
        ),
        (
            "INM other",
            vec![("if-none-match", "\"other\"".into())],
            200,
            Body::Full,
        ),
        // If-Modified-Since with the date the server sent: 304 (the bug this test pins).
        (
            "IMS = Last-Modified",
            vec![("if-modified-since", last_modified.clone())],
            304,
            Body::Empty,
        ),
        (
            "IMS later",
            vec![("if-modified-since", after.clone())],
            304,
            Body::Empty,
        ),
        (
            "IMS earlier",
            vec![("if-modified-since", before.clone())],
            200,
            Body::Full,
        ),
        // If-None-Match wins over If-Modified-Since.
        (
            "INM other + IMS = Last-Modified",
            vec![
                ("if-none-match", "\"other\"".into()),
                ("if-modified-since", last_modified.clone()),
            ],
            200,
            Body::Full,
        ),
        // If-Match: strong comparison; failing is 412.
        (
            "IM match",
            vec![("if-match", etag.clone())],
            200,
            Body::Full,
        ),
        ("IM star", vec![("if-match", "*".into())], 200, Body::Full),
        (
            "IM weak",
            vec![("if-match", weak.clone())],
            412,
            Body::Empty,
        ),
        (
            "IM other",
            vec![("if-match", "\"other\"".into())],
            412,
            Body::Empty,
        ),
        (
            "IUS = Last-Modified",
            vec![("if-unmodified-since", last_modified.clone())],
            200,
            Body::Full,
        ),
        (
            "IUS earlier",
            vec![("if-unmodified-since", before.clone())],
            412,
            Body::Empty,
        ),
        // If-Match present: If-Unmodified-Since is not evaluated.
        (
            "IM match + IUS earlier",
            vec![
                ("if-match", etag.clone()),
                ("if-unmodified-since", before.clone()),
            ],
            200,
            Body::Full,
        ),
        // Preconditions come before ranges.
        (
            "IM other + Range",
            vec![
                ("if-match", "\"other\"".into()),
                ("range", "bytes=0-9".into()),
            ],
            412,
            Body::Empty,
        ),
        (
            "Range",
            vec![("range", "bytes=100-1123".into())],
            206,
            Body::Range(100, 1123),
        ),
        (
            "Range open end",
            vec![("range", format!("bytes={}-", len - 5))],
            206,
            Body::Range(len - 5, len - 1),
        ),
        (
            "Range suffix",
            vec![("range", "bytes=-10".into())],
            206,
            Body::Range(len - 10, len - 1),
        ),
        (
            "Range past the end",
            vec![("range", format!("bytes={len}-"))],
            416,
            Body::Empty,
        ),
        (
            "two ranges: the whole file",
            vec![("range", "bytes=0-1,5-6".into())],
            200,
            Body::Full,
        ),
        // If-Range: only an exact strong validator keeps the range.
        (
            "IR etag",
            vec![("range", "bytes=0-9".into()), ("if-range", etag.clone())],
            206,
            Body::Range(0, 9),
        ),
        (
            "IR other etag",
            vec![
                ("range", "bytes=0-9".into()),
                ("if-range", "\"other\"".into()),
            ],
            200,
            Body::Full,
        ),
        (
            "IR weak etag",
            vec![("range", "bytes=0-9".into()), ("if-range", weak.clone())],
            200,
            Body::Full,
        ),
        (
            "IR = Last-Modified",
            vec![
                ("range", "bytes=0-9".into()),
                ("if-range", last_modified.clone()),
            ],
            206,
            Body::Range(0, 9),
        ),
        (
            "IR later date",
            vec![("range", "bytes=0-9".into()), ("if-range", after.clone())],
            200,
            Body::Full,
        ),
        (
            "IR earlier date",
            vec![("range", "bytes=0-9".into()), ("if-range", before.clone())],
            200,
            Body::Full,
        ),
    ];
    for (name, headers, status, body) in cases {
        let mut request = t.http.get(&url);
        for (header, value) in &headers {
            request = request.header(*header, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
        let h = response.headers().clone();
        if status == 200 || status == 206 || status == 304 {
            assert_eq!(h["etag"], etag.as_str(), "{name}");
            assert_eq!(h["last-modified"], last_modified.as_str(), "{name}");
            assert!(h.contains_key("cache-control"), "{name}");
        }
        let got = response.bytes().await.unwrap();
        match body {
            Body::Full => assert!(got == data, "{name}: {} bytes", got.len()),
            Body::Range(start, end) => {
                assert_eq!(
                    h["content-range"],
                    format!("bytes {start}-{end}/{len}").as_str(),
                    "{name}"
                );
                assert!(got == data.slice(start..=end), "{name}");
            }
            Body::Empty => {
                assert!(got.is_empty(), "{name}: {} bytes", got.len());
                if status == 416 {
                    assert_eq!(h["content-range"], format!("bytes */{len}").as_str());
                }
            }
        }
    }

    let head = t.http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], len.to_string().as_str());
    assert!(head.bytes().await.unwrap().is_empty());
    let head_cached = t
        .http
        .head(&url)
        .header("if-modified-since", &last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(head_cached.status(), 304);

    for path in [
        "/vod/eu/../catalog.sqlite3",
        "/vod/..%2fcatalog.sqlite3",
        "/vod/eu/.disk-reserve",
        "/vod/admin-api-key",
        "/thumbnails/..%2fcatalog.sqlite3",
        "/clips/x/..%2f..%2fcatalog.sqlite3",
    ] {
        let response = t.http.get(t.url(path)).send().await.unwrap();
        assert!(
            response.status() == 404 || response.status() == 400,
            "{path}: {}",
            response.status()
        );
    }
}
