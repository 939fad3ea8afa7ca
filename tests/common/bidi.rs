//! A minimal WebDriver BiDi client for Debian's `firefox-esr`, which speaks BiDi itself (no
//! geckodriver, which Debian does not package): start headless Firefox with its own profile,
//! open a URL, evaluate a script, collect console errors, quit.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A headless Firefox and one BiDi session with its first tab.
pub struct Firefox {
    process: Child,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    context: String,
    /// Console entries at level `error` or `warn` seen so far.
    pub problems: Vec<String>,
    profile: tempfile::TempDir,
}

impl Firefox {
    /// Starts Firefox; `None` without it (outside CI).
    pub async fn start() -> Option<Firefox> {
        let binary = super::tool("firefox-esr").or_else(|| super::tool("firefox"))?;
        let port = super::free_port();
        let profile = tempfile::tempdir().unwrap();
        let process = Command::new(binary)
            .args(["--headless", "--no-remote", "--remote-debugging-port"])
            .arg(port.to_string())
            .arg("--profile")
            .arg(profile.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let socket = loop {
            match tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/session")).await {
                Ok((socket, _)) => break socket,
                Err(e) => {
                    assert!(Instant::now() < deadline, "Firefox BiDi did not start: {e}");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        };
        let mut firefox = Firefox {
            process,
            socket,
            next_id: 0,
            context: String::new(),
            problems: Vec::new(),
            profile,
        };
        firefox
            .command("session.new", json!({"capabilities": {}}))
            .await;
        firefox
            .command("session.subscribe", json!({"events": ["log.entryAdded"]}))
            .await;
        let tree = firefox.command("browsingContext.getTree", json!({})).await;
        firefox.context = tree["contexts"][0]["context"]
            .as_str()
            .expect("a browsing context")
            .to_string();
        Some(firefox)
    }

    async fn command(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(request)).await.unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(60), self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("BiDi connection open")
                .unwrap();
            let Ok(text) = message.to_text() else {
                continue;
            };
            let value: Value = serde_json::from_str(text).unwrap();
            if value["method"] == "log.entryAdded" {
                let entry = &value["params"];
                if entry["level"] == "error" || entry["level"] == "warn" {
                    self.problems.push(entry["text"].to_string());
                }
            } else if value["id"] == id {
                assert_ne!(value["type"], "error", "{method}: {value}");
                return value["result"].clone();
            }
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&mut self, url: &str) {
        let context = self.context.clone();
        self.command(
            "browsingContext.navigate",
            json!({"context": context, "url": url, "wait": "complete"}),
        )
        .await;
    }

    /// Evaluates `expression` (awaiting a promise) and returns its value in BiDi's
    /// serialisation (`{"type": "number", "value": 1}`).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let context = self.context.clone();
        let result = self
            .command(
                "script.evaluate",
                json!({"expression": expression, "target": {"context": context}, "awaitPromise": true}),
            )
            .await;
        result["result"].clone()
    }

    /// The numeric value of `expression`.
    pub async fn number(&mut self, expression: &str) -> f64 {
        let value = self.eval(expression).await;
        value["value"].as_f64().unwrap_or(f64::NAN)
    }
}

impl Drop for Firefox {
    fn drop(&mut self) {
        super::end_browser(self.profile.path(), &mut self.process);
    }
}
