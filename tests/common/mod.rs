//! Shared harness: the real server on port 0 with a temporary data folder, an HTTP client,
//! the fixture, and the external tools (required when CI=true).
#![allow(dead_code)]

use bytes::Bytes;
use reelay::client::RtmpClient;
use reelay::config::Config;
use reelay::flv::file::{read_tags, FlvTag};
use reelay::server::{self, Server};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub mod bidi;
mod enhanced;
pub mod webdriver;
#[allow(unused_imports)]
pub use enhanced::enhanced_rtmp_tags;

pub struct TestServer {
    pub server: Server,
    pub dir: tempfile::TempDir,
    pub admin_key: String,
    pub http: reqwest::Client,
}

pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("reelay=debug")
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.server.http_addr = "127.0.0.1:0".into();
    config.rtmp.addr = "127.0.0.1:0".into();
    config.recording.disk_reserve_mb = 1;
    tweak(&mut config);
    let server = server::start(config).await.unwrap();
    let admin_key = server.first_admin_key.clone().unwrap();
    TestServer {
        server,
        dir,
        admin_key,
        http: reqwest::Client::new(),
    }
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.server.http_addr, path)
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(key) = key {
            req = req.header("X-BINTU-APIKEY", key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, Some(&self.admin_key), None)
            .await
    }

    pub async fn create_stream(&self) -> Value {
        self.create_stream_with(serde_json::json!([])).await
    }

    /// Creates a stream with this `processing` list; the 201 body.
    /// Creates a stream group from a `POST /stream` body with `transcodes` (must succeed).
    pub async fn create_group(&self, body: Value) -> Value {
        let (status, group) = self
            .request(
                reqwest::Method::POST,
                "/stream",
                Some(&self.admin_key),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{group}");
        group
    }

    pub async fn create_stream_with(&self, processing: Value) -> Value {
        let (status, body) = self
            .request(
                reqwest::Method::POST,
                "/stream",
                Some(&self.admin_key),
                Some(serde_json::json!({ "processing": processing })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// `POST /stream/{id}/clips` with this body.
    pub async fn clip(&self, id: &str, body: Value) -> (u16, Value) {
        let path = format!("/stream/{id}/clips");
        self.request(
            reqwest::Method::POST,
            &path,
            Some(&self.admin_key),
            Some(body),
        )
        .await
    }

    pub async fn state_of(&self, id: &str) -> String {
        let (_, body) = self.get(&format!("/stream/{id}")).await;
        body["state"].as_str().unwrap_or_default().to_string()
    }

    /// Polls until the stream is in `state` (or panics after 10 s).
    pub async fn wait_state(&self, id: &str, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.state_of(id).await;
            if now == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "stream {id} stuck in {now}, wanted {state}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn sessions(&self, id: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/stream/{id}/sessions")).await;
        assert_eq!(status, 200);
        body["items"].as_array().cloned().unwrap_or_default()
    }

    pub fn rtmp(&self) -> std::net::SocketAddr {
        self.server.rtmp_addr
    }

    /// The default organisation's hash.
    pub async fn org_hash(&self) -> String {
        let orgs = self.server.catalog.list_orgs().await.unwrap();
        orgs[0].hash.clone()
    }

    /// A new key of the default organisation with `role`; its secret.
    pub async fn key(&self, role: reelay::catalog::Role) -> String {
        let org = self.org_hash().await;
        let (_, secret) = self
            .server
            .catalog
            .create_key(&org, role, None)
            .await
            .unwrap();
        secret
    }

    /// A second connection to the server's catalog file, for what no API offers (setting a
    /// stream's state or creation time directly).
    pub fn sql(&self) -> rusqlite::Connection {
        let conn =
            rusqlite::Connection::open(reelay::server::catalog_path(self.dir.path())).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn
    }
}

pub fn streamname(stream: &Value) -> String {
    stream["ingest"]["rtmp"]["streamname"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/obs-like.flv")
}

pub fn fixture_tags() -> Vec<FlvTag> {
    read_tags(&Bytes::from(std::fs::read(fixture_path()).unwrap())).unwrap()
}

/// Sends tags paced at `speed` × real time (0 = as fast as possible).
pub async fn send_tags(client: &mut RtmpClient, tags: &[FlvTag], speed: f64) {
    let start = Instant::now();
    let first_ts = tags.first().map(|t| t.timestamp_ms).unwrap_or(0);
    for tag in tags {
        if speed > 0.0 {
            let due =
                Duration::from_secs_f64(f64::from(tag.timestamp_ms - first_ts) / 1000.0 / speed);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        client.send_tag(tag).await.unwrap();
    }
}

/// An external tool, or `None` when not installed. With CI=true a missing tool fails the test.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{name} is required when CI=true (apt-get install ffmpeg)");
        }
        eprintln!("skipping: {name} not installed");
    }
    found
}

/// A port free at the time of asking, for a server started as a separate process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The built `reelay` binary.
pub fn reelay_command() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_reelay"))
}

/// Runs a command that must succeed; its stderr is the failure message.
pub fn output_ok(command: &mut std::process::Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ffprobe` streams and format as JSON, or `None` without ffprobe (outside CI).
pub fn probe(path: impl AsRef<std::ffi::OsStr>) -> Option<Value> {
    let ffprobe = tool("ffprobe")?;
    let args = [
        "-v",
        "error",
        "-show_streams",
        "-show_format",
        "-of",
        "json",
    ];
    let out = output_ok(std::process::Command::new(ffprobe).args(args).arg(path));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn stream_field(probe: &Value, codec_type: &str, field: &str) -> f64 {
    let stream = probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == codec_type)
        .unwrap_or_else(|| panic!("no {codec_type} stream: {probe}"));
    stream[field].as_str().unwrap().parse().unwrap()
}

/// One stream's duration (`video` or `audio`) in a probe, in seconds.
pub fn stream_duration(probe: &Value, codec_type: &str) -> f64 {
    stream_field(probe, codec_type, "duration")
}

/// Where a stream's presentation ends (start + duration), in seconds.
pub fn stream_end(probe: &Value, codec_type: &str) -> f64 {
    stream_field(probe, codec_type, "start_time") + stream_duration(probe, codec_type)
}

/// The container's duration in a probe, in seconds.
pub fn format_duration(probe: &Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The codec names in a probe.
pub fn codec_names(probe: &Value) -> Vec<String> {
    probe["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_name"].as_str().unwrap().to_string())
        .collect()
}

/// `ffmpeg -v error -i f -f null -` decodes the whole file and must print nothing.
pub fn decodes_cleanly(path: &std::path::Path) {
    let Some(ffmpeg) = tool("ffmpeg") else { return };
    let out = std::process::Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg reported: {errors}"
    );
}

/// One API call with a key to a server run as a separate process.
pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
) -> (u16, Value) {
    call_with(http, method, url, key, None).await
}

/// [`call`] with a JSON body.
pub async fn call_with(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url).header("X-BINTU-APIKEY", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until a server run as a separate process answers `/health`.
pub async fn wait_healthy(http: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ok = http
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The fixture repeated `times` times on one continuous timeline (sequence headers and
/// metadata only once), and the video duration that timeline holds.
pub fn looped_fixture(times: u32) -> (Vec<FlvTag>, f64) {
    let tags = fixture_tags();
    // Video continues seamlessly (one frame after its last); audio, 37 ms longer than the
    // video in the fixture, overlaps the next round by that much, as a looping source does.
    let last_video = tags
        .iter()
        .filter(|t| t.tag_type == 9)
        .map(|t| t.timestamp_ms)
        .max()
        .unwrap();
    let period = last_video + 33;
    let mut out = Vec::new();
    for round in 0..times {
        for (i, tag) in tags.iter().enumerate() {
            let is_header = tag.tag_type == 18
                || (tag.tag_type == 9 && tag.body.get(1) == Some(&0))
                || (tag.tag_type == 8 && tag.body.get(1) == Some(&0));
            if round > 0 && (is_header || i == 0) {
                continue;
            }
            let mut tag = tag.clone();
            tag.timestamp_ms += round * period;
            out.push(tag);
        }
    }
    let video: Vec<u32> = out
        .iter()
        .filter(|t| t.tag_type == 9 && t.body.get(1) == Some(&1))
        .map(|t| t.timestamp_ms)
        .collect();
    let frame = 1.0 / 30.0;
    let span = f64::from(video.last().unwrap() - video.first().unwrap()) / 1000.0;
    (out, span + frame)
}

/// A child process killed when dropped, so a failed assertion does not leave it running.
pub struct KillOnDrop(pub std::process::Child);

impl KillOnDrop {
    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Ends a browser started by a test, also after a failed assertion: first every process named
/// by its own profile folder (the browser's children; a killed driver leaves them running),
/// then the process the test started.
pub fn end_browser(profile: &std::path::Path, process: &mut std::process::Child) {
    let _ = std::process::Command::new("pkill")
        .args(["-f", &profile.display().to_string()])
        .status();
    let _ = process.kill();
    let _ = process.wait();
}

/// hls.js, the independent HLS player of the browser tests, fetched from the npm registry
/// into `target/npm` on first use (never shipped); `None` without npm (outside CI).
pub fn hls_js() -> Option<PathBuf> {
    const VERSION: &str = "1.7.4";
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/npm/hls.js-{VERSION}"));
    let script = dir.join("package/dist/hls.min.js");
    if script.is_file() {
        return Some(script);
    }
    let npm = tool("npm")?;
    std::fs::create_dir_all(&dir).unwrap();
    output_ok(
        std::process::Command::new(npm)
            .args([
                "pack",
                &format!("hls.js@{VERSION}"),
                "--silent",
                "--pack-destination",
            ])
            .arg(&dir),
    );
    let tarball = dir.join(format!("hls.js-{VERSION}.tgz"));
    output_ok(
        std::process::Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&dir),
    );
    assert!(script.is_file(), "npm pack gave no {}", script.display());
    Some(script)
}

/// Downloads an MP4 the server serves into `dir` (named as in the URL).
pub async fn download(t: &TestServer, url: &str, dir: &std::path::Path) -> PathBuf {
    let response = t.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp4");
    let bytes = response.bytes().await.unwrap();
    let path = dir.join(url.rsplit('/').next().unwrap());
    std::fs::write(&path, &bytes).unwrap();
    path
}
