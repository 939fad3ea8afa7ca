//! A minimal W3C WebDriver client over `reqwest` for driving Debian's headless Chromium
//! through `chromedriver`: start, open a URL, run a script, find, click and type into
//! elements like a user, press keys, take screenshots, read the console log, quit.

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
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--window-size=1280,900", "--no-sandbox", "--disable-gpu",
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

/// The key WebDriver sends for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// The first element matching `css`, `None` when there is none.
    pub async fn find(&self, css: &str) -> Option<String> {
        let found = self
            .command("element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT].as_str().map(str::to_string)
    }

    /// Waits up to `timeout` for an element matching `css`; panics naming it otherwise.
    pub async fn wait_element(&self, css: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(css).await {
                return element;
            }
            if Instant::now() > deadline {
                let page = self
                    .eval("return location.href + '\\n' + document.body?.innerText;")
                    .await;
                let console = self.console().await;
                panic!("no element {css} within {timeout:?}; page: {page}; console: {console:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks the element matching `css` the way a user does (scrolled into view, hit-tested).
    pub async fn click(&self, css: &str) {
        let element = self.wait_element(css, Duration::from_secs(10)).await;
        let answer = self
            .command(&format!("element/{element}/click"), json!({}))
            .await;
        assert!(answer.is_null(), "click on {css}: {answer}");
    }

    /// Types `text` into the element matching `css` (after clearing it when `clear`).
    pub async fn type_into(&self, css: &str, text: &str, clear: bool) {
        let element = self.wait_element(css, Duration::from_secs(10)).await;
        if clear {
            self.command(&format!("element/{element}/clear"), json!({}))
                .await;
        }
        let answer = self
            .command(&format!("element/{element}/value"), json!({ "text": text }))
            .await;
        assert!(answer.is_null(), "typing into {css}: {answer}");
    }

    /// Presses one key (a WebDriver key code such as `\u{E014}`, arrow right) on the focused
    /// element.
    pub async fn press(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]});
        self.command("actions", actions).await;
    }

    /// Runs the following commands inside the iframe matching `css`.
    pub async fn enter_frame(&self, css: &str) {
        let element = self.wait_element(css, Duration::from_secs(10)).await;
        let answer = self
            .command("frame", json!({"id": {ELEMENT: element}}))
            .await;
        assert!(answer.is_null(), "entering frame {css}: {answer}");
    }

    /// Back to the top-level page after `enter_frame`.
    pub async fn leave_frame(&self) {
        self.command("frame", json!({"id": null})).await;
    }

    /// Resizes the window (laptop and phone layouts).
    pub async fn set_size(&self, width: u32, height: u32) {
        self.command("window/rect", json!({"width": width, "height": height}))
            .await;
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let url = format!("{}/session/{}/screenshot", self.base, self.session);
        let answer: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(answer["value"].as_str().unwrap_or_default())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// The console messages since the last call: `(level, message)`.
    pub async fn console(&self) -> Vec<(String, String)> {
        let url = format!("{}/session/{}/se/log", self.base, self.session);
        let answer = post_json(&self.http, url, &json!({"type": "browser"})).await;
        answer["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_string(),
                            e["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
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
        super::end_browser(self.profile.path(), &mut self.driver);
    }
}
