//! A minimal W3C WebDriver client over `reqwest` for driving Debian's headless Chromium
//! through `chromedriver`: start, open a URL, run a script, quit.

use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver process and one browser session on it.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    base: String,
    session: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium; `None` without them (outside CI).
    pub async fn start() -> Option<Browser> {
        let chromedriver = super::tool("chromedriver")?;
        let chromium = super::tool("chromium")?;
        let port = super::free_port();
        // Its own process group, so ending the group also ends the browser it starts.
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
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
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"],
            },
        }}});
        let response: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {response}"))
            .to_string();
        Some(Browser {
            driver,
            http,
            base,
            session,
        })
    }

    async fn command(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}/{path}", self.base, self.session);
        let response: Value = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["value"].clone()
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

impl Drop for Browser {
    fn drop(&mut self) {
        // Also after a failed assertion: end chromedriver's whole process group (the browser
        // and its helpers), then reap chromedriver.
        let _ = Command::new("kill")
            .args(["-TERM", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
