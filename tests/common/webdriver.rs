//! A minimal W3C WebDriver client over `reqwest` for driving Debian's headless Chromium
//! through `chromedriver`: start, open a URL, run a script, quit.

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver process and one browser session on it.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    base: String,
    session: String,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `None` without them (outside CI).
    pub async fn start() -> Option<Browser> {
        let chromedriver = super::tool("chromedriver")?;
        let chromium = super::tool("chromium")?;
        let port = super::free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Our own profile folder: it names this browser's processes for cleaning up.
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
                         format!("--user-data-dir={}", profile.path().display())],
            },
        }}});
        let response = post_json(&http, format!("{base}/session"), &capabilities).await;
        let session = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {response}"))
            .to_string();
        Some(Browser {
            driver,
            http,
            base,
            session,
            profile,
        })
    }

    async fn command(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.base, self.session);
        post_json(&self.http, url, &body).await["value"].clone()
    }

    /// Ends the browser session (closes Chromium).
    pub async fn quit(&self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
    }

    pub async fn goto(&self, url: &str) {
        self.command("url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body; `return` gives the result) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.command("execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// Polls `expression` until it is not null, up to `timeout`.
    pub async fn wait_for(&self, expression: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.eval(&format!("return {expression};")).await;
            if !value.is_null() || Instant::now() > deadline {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One WebDriver call: POST JSON, the JSON answer.
async fn post_json(http: &reqwest::Client, url: String, body: &Value) -> Value {
    http.post(url)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Also after a failed assertion: end the browser's processes (named by our profile
        // folder; chromedriver does not end them when it is killed), then chromedriver.
        let _ = Command::new("pkill")
            .args(["-f", &self.profile.path().display().to_string()])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
