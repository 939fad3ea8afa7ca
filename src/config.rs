//! Settings: embedded defaults < TOML file (`--config`) < environment (`REELAY_<SECTION>_<KEY>`)
//! < command-line flags. Validation names the offending field (`server.region`).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A setting that cannot be used, named by its `section.key`.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration: {0}")]
    Parse(String),
    #[error("invalid setting {field}: {message}")]
    Invalid { field: String, message: String },
}

/// `[server]`: HTTP, storage and the URLs handed out by the API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub http_addr: String,
    pub data_dir: PathBuf,
    /// Base of every HTTP URL the API hands out; default `http://<host>:<http port>`.
    pub public_url: Option<String>,
    /// Base of ingest and RTMP playout URLs; default `rtmp://<host of public_url>:<rtmp port>`.
    pub public_rtmp_url: Option<String>,
    /// `eu`, `us` or `au`; shows in VOD URLs.
    pub region: String,
    /// Largest accepted HTTP request body.
    pub max_body_bytes: usize,
    /// This server's name in the catalog's sessions; empty: the machine's host name.
    pub node_id: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            http_addr: "0.0.0.0:8080".into(),
            data_dir: PathBuf::from("./reelay-data"),
            public_url: None,
            public_rtmp_url: None,
            region: "eu".into(),
            max_body_bytes: 1 << 20,
            node_id: String::new(),
        }
    }
}

/// `[rtmp]`: the ingest and play listener.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RtmpSettings {
    pub addr: String,
    /// Connections beyond this are closed at accept with a log line.
    pub max_connections: usize,
    /// A publisher silent this long is disconnected (`end_reason: timeout`).
    pub read_timeout_secs: u64,
    /// Handshake and connect/publish/play must complete within this.
    pub handshake_timeout_secs: u64,
    /// A player whose socket accepts nothing for this long is disconnected.
    pub write_timeout_secs: u64,
    /// A player that had to skip this many times within a minute is disconnected.
    pub max_player_skips_per_minute: u32,
    /// Publishers are read on a shared grid of this many milliseconds, so one wakeup serves
    /// every stream (SRS calls this "merged read"; its low-latency profile merges 100 ms, its
    /// default 350 ms). Adds at most this much latency (half on average) to RTMP's usual 1–3 s;
    /// 0 reads on every arrival (lowest latency, several times the CPU).
    pub ingest_batch_ms: u64,
}

impl Default for RtmpSettings {
    fn default() -> Self {
        RtmpSettings {
            addr: "0.0.0.0:1935".into(),
            max_connections: 10000,
            read_timeout_secs: 30,
            handshake_timeout_secs: 10,
            write_timeout_secs: 10,
            max_player_skips_per_minute: 5,
            ingest_batch_ms: 100,
        }
    }
}

/// `[hub]`: the per-stream ring.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HubSettings {
    /// Media a lossless reader (recorder) may fall behind before it gets a gap.
    pub max_backlog_bytes: usize,
    pub max_backlog_secs: u64,
    /// A player further behind than this skips to the newest keyframe.
    pub player_max_lag_ms: u64,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            max_backlog_bytes: 64 << 20,
            max_backlog_secs: 30,
            player_max_lag_ms: 3000,
        }
    }
}

/// `[recording]`: VOD files.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingSettings {
    /// A publisher that drops without unpublishing and comes back within this many seconds
    /// continues the same session and file; 0 ends the session at once.
    pub reconnect_grace_secs: u64,
    /// Media per fragment: at most this much is lost when the server is killed.
    pub fragment_ms: u64,
    /// Disk space kept back (MiB) so recordings can be finalised when the disk fills up.
    pub disk_reserve_mb: u64,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        RecordingSettings {
            reconnect_grace_secs: 10,
            fragment_ms: 1000,
            disk_reserve_mb: 64,
        }
    }
}

/// `[pictures]`: thumbnails and motion clips.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PictureSettings {
    /// Threads that decode pictures; 0 means one per core. The operating system shares the
    /// cores fairly with ingest, whose threads mostly sleep, so ingest keeps its pace.
    pub decode_threads: usize,
    /// Thumbnails at most this many pixels wide (aspect kept); 0 keeps the source size.
    pub thumbnail_max_width: u32,
    /// Motion clips at most this many pixels wide (aspect kept, never upscaled).
    pub motionclip_width: u32,
    /// Frames per second sampled into motion clips.
    pub motionclip_fps: u32,
    /// Pictures kept in each stream's history, for thumbnails and motion clips each.
    pub history: usize,
}

impl Default for PictureSettings {
    fn default() -> Self {
        PictureSettings {
            decode_threads: 0,
            thumbnail_max_width: 0,
            motionclip_width: 480,
            motionclip_fps: 10,
            history: 60,
        }
    }
}

/// All settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerSettings,
    pub rtmp: RtmpSettings,
    pub hub: HubSettings,
    pub recording: RecordingSettings,
    pub pictures: PictureSettings,
}

/// Values given as command-line flags (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct FlagOverrides {
    pub rtmp_addr: Option<String>,
    pub http_addr: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub public_url: Option<String>,
    pub public_rtmp_url: Option<String>,
    pub region: Option<String>,
}

const SECTIONS: [&str; 5] = ["server", "rtmp", "hub", "recording", "pictures"];

/// Parses an environment value as a TOML scalar (number, bool) or else a string.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(n) = raw.parse::<i64>() {
        return toml::Value::Integer(n);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_string()),
    }
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

impl Config {
    /// Builds the configuration from all sources; `env` is usually `std::env::vars()`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &FlagOverrides,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let mut set = |section: &str, key: &str, value: toml::Value| {
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(t) = entry {
                t.insert(key.to_string(), value);
            }
        };
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix("REELAY_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            if let Some(section) = SECTIONS.iter().find(|s| rest.starts_with(&format!("{s}_"))) {
                let key = &rest[section.len() + 1..];
                let value = match key {
                    "public_url" | "public_rtmp_url" | "region" | "data_dir" | "http_addr"
                    | "addr" | "node_id" => toml::Value::String(raw),
                    _ => env_value(&raw),
                };
                set(section, key, value);
            }
        }
        let text = |v: &str| toml::Value::String(v.to_string());
        if let Some(v) = &flags.rtmp_addr {
            set("rtmp", "addr", text(v));
        }
        if let Some(v) = &flags.http_addr {
            set("server", "http_addr", text(v));
        }
        if let Some(v) = &flags.data_dir {
            set("server", "data_dir", text(&v.to_string_lossy()));
        }
        if let Some(v) = &flags.public_url {
            set("server", "public_url", text(v));
        }
        if let Some(v) = &flags.public_rtmp_url {
            set("server", "public_rtmp_url", text(v));
        }
        if let Some(v) = &flags.region {
            set("server", "region", text(v));
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let addr = |field: &str, value: &str| {
            value
                .parse::<SocketAddr>()
                .map(|_| ())
                .map_err(|_| invalid(field, format!("{value:?} is not an ip:port address")))
        };
        addr("server.http_addr", &self.server.http_addr)?;
        addr("rtmp.addr", &self.rtmp.addr)?;
        if !["eu", "us", "au"].contains(&self.server.region.as_str()) {
            return Err(invalid("server.region", "must be one of eu, us, au"));
        }
        if let Some(url) = &self.server.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "server.public_url",
                    "must start with http:// or https://",
                ));
            }
        }
        if let Some(url) = &self.server.public_rtmp_url {
            if !(url.starts_with("rtmp://") || url.starts_with("rtmps://")) {
                return Err(invalid(
                    "server.public_rtmp_url",
                    "must start with rtmp:// or rtmps://",
                ));
            }
        }
        let node_id = &self.server.node_id;
        if node_id.len() > 64
            || !node_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(invalid(
                "server.node_id",
                "at most 64 characters of [A-Za-z0-9._-]",
            ));
        }
        if self.rtmp.max_connections == 0 {
            return Err(invalid("rtmp.max_connections", "must be at least 1"));
        }
        if self.rtmp.ingest_batch_ms > 500 {
            return Err(invalid("rtmp.ingest_batch_ms", "must be 0..=500"));
        }
        if self.rtmp.read_timeout_secs == 0 || self.rtmp.handshake_timeout_secs == 0 {
            return Err(invalid(
                "rtmp.read_timeout_secs",
                "timeouts must be at least 1 s",
            ));
        }
        if !(100..=1000).contains(&self.recording.fragment_ms) {
            return Err(invalid("recording.fragment_ms", "must be 100..=1000"));
        }
        if self.recording.disk_reserve_mb > 16_384 {
            return Err(invalid("recording.disk_reserve_mb", "must be 0..=16384"));
        }
        if self.recording.reconnect_grace_secs > 300 {
            return Err(invalid("recording.reconnect_grace_secs", "must be 0..=300"));
        }
        let pictures = &self.pictures;
        if pictures.decode_threads > 256 {
            return Err(invalid("pictures.decode_threads", "must be 0..=256"));
        }
        if pictures.thumbnail_max_width != 0 && !(16..=7680).contains(&pictures.thumbnail_max_width)
        {
            return Err(invalid(
                "pictures.thumbnail_max_width",
                "must be 0 or 16..=7680",
            ));
        }
        if !(16..=1920).contains(&pictures.motionclip_width) {
            return Err(invalid("pictures.motionclip_width", "must be 16..=1920"));
        }
        if !(1..=30).contains(&pictures.motionclip_fps) {
            return Err(invalid("pictures.motionclip_fps", "must be 1..=30"));
        }
        if !(1..=10_000).contains(&pictures.history) {
            return Err(invalid("pictures.history", "must be 1..=10000"));
        }
        Ok(())
    }
}

impl ServerSettings {
    /// `node_id`, or the machine's host name when it is empty (`local` when that is unknown
    /// or not a valid id).
    pub fn resolved_node_id(&self) -> String {
        if !self.node_id.is_empty() {
            return self.node_id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|name| name.trim().to_string())
            .filter(|name| {
                !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            })
            .unwrap_or_else(|| "local".into())
    }
}

/// The public base URLs, resolved against the addresses actually bound (port 0 in tests).
#[derive(Debug, Clone)]
pub struct PublicUrls {
    /// No trailing slash.
    pub http: String,
    /// No trailing slash.
    pub rtmp: String,
}

impl PublicUrls {
    /// Resolves the configured bases, defaulting to the bound addresses.
    pub fn resolve(config: &Config, http: SocketAddr, rtmp: SocketAddr) -> PublicUrls {
        let host_of = |addr: SocketAddr| {
            if addr.ip().is_unspecified() {
                "localhost".to_string()
            } else {
                match addr {
                    SocketAddr::V4(a) => a.ip().to_string(),
                    SocketAddr::V6(a) => format!("[{}]", a.ip()),
                }
            }
        };
        let http_base = config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:{}", host_of(http), http.port()));
        let http_base = http_base.trim_end_matches('/').to_string();
        let rtmp_base = config.server.public_rtmp_url.clone().unwrap_or_else(|| {
            let host = http_base
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split('/').next())
                .map(|authority| match authority.rsplit_once(':') {
                    Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
                    _ => authority,
                })
                .unwrap_or("localhost");
            format!("rtmp://{host}:{}", rtmp.port())
        });
        PublicUrls {
            http: http_base,
            rtmp: rtmp_base.trim_end_matches('/').to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_work_without_configuration() {
        let config = Config::load(None, env(&[]), &FlagOverrides::default()).unwrap();
        assert_eq!(config.rtmp.addr, "0.0.0.0:1935");
        assert_eq!(config.server.http_addr, "0.0.0.0:8080");
        assert_eq!(config.server.data_dir, PathBuf::from("./reelay-data"));
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reelay.toml");
        std::fs::write(
            &path,
            "[server]\nregion = \"us\"\nhttp_addr = \"127.0.0.1:1\"\n[rtmp]\nmax_connections = 7\n",
        )
        .unwrap();
        let flags = FlagOverrides {
            http_addr: Some("127.0.0.1:3".into()),
            ..Default::default()
        };
        let config = Config::load(
            Some(&path),
            env(&[
                ("REELAY_SERVER_HTTP_ADDR", "127.0.0.1:2"),
                ("REELAY_RTMP_MAX_CONNECTIONS", "9"),
                ("REELAY_SERVER_REGION", "au"),
                ("UNRELATED", "x"),
            ]),
            &flags,
        )
        .unwrap();
        assert_eq!(config.server.http_addr, "127.0.0.1:3");
        assert_eq!(config.rtmp.max_connections, 9);
        assert_eq!(config.server.region, "au");
    }

    #[test]
    fn invalid_values_name_the_field() {
        let err = Config::load(
            None,
            env(&[("REELAY_SERVER_REGION", "mars")]),
            &FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("server.region"), "{err}");
        let err = Config::load(
            None,
            env(&[("REELAY_RTMP_NO_SUCH_KEY", "1")]),
            &FlagOverrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no_such_key"), "{err}");
    }

    #[test]
    fn public_urls_default_from_bound_addresses() {
        let config = Config::default();
        let urls = PublicUrls::resolve(
            &config,
            "0.0.0.0:8080".parse().unwrap(),
            "0.0.0.0:1935".parse().unwrap(),
        );
        assert_eq!(urls.http, "http://localhost:8080");
        assert_eq!(urls.rtmp, "rtmp://localhost:1935");
        let mut config = Config::default();
        config.server.public_url = Some("https://media.example.com/".into());
        let urls = PublicUrls::resolve(
            &config,
            "0.0.0.0:8080".parse().unwrap(),
            "0.0.0.0:1935".parse().unwrap(),
        );
        assert_eq!(urls.http, "https://media.example.com");
        assert_eq!(urls.rtmp, "rtmp://media.example.com:1935");
    }
}
