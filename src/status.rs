//! What a stream's processing is doing right now: per sink (`rec`, `replay`, `thumbs`,
//! `motionclip`), its state, last success, last error and counts.
//!
//! Kept in memory (it describes the running process; the catalog keeps what outlives it),
//! one [`StreamStatus`] per stream held by the live-session registry (`session`) across the
//! stream's sessions, and handed to the sinks a session starts. Shown by `GET /stream/{id}`
//! under `playout.rtmp[].status`, next to the `processing` settings rather than inside them,
//! so a client can send the settings it read straight back.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// What a sink is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SinkState {
    /// Not running: the stream is not live, or its session did not ask for this sink.
    #[default]
    Idle,
    /// Running and succeeding.
    Active,
    /// Stopped for this session by an error (see `last_error`).
    Error,
    /// Configured but off: the organisation lacks the package (see `detail`).
    Disabled,
    /// Not available on this server (see `detail`).
    Unavailable,
}

/// The last error a sink hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorNote {
    pub at: String,
    pub message: String,
}

/// One sink's status, in the API's JSON shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SinkStatus {
    pub state: SinkState,
    /// When the sink last made progress (a fragment synced, a picture written).
    pub last_success: Option<String>,
    pub last_error: Option<ErrorNote>,
    /// Errors since the server started.
    pub errors: u64,
    /// Work skipped since the server started (recording: gaps; pictures: skipped ticks;
    /// transcoding: frames dropped because the rendition could not keep up, this session).
    pub skipped: u64,
    /// Transcoding: media seconds encoded per second of wall clock recently (1.0 keeps real
    /// time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// Transcoding: frames encoded this session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<u64>,
    /// Why the sink is disabled or unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One stream's sink statuses; cheap to clone (clones share them).
#[derive(Debug, Clone, Default)]
pub struct StreamStatus {
    sinks: Arc<Mutex<BTreeMap<&'static str, SinkStatus>>>,
}

impl StreamStatus {
    /// Applies `change` to one sink's status (created idle on first use).
    pub fn update(&self, sink: &'static str, change: impl FnOnce(&mut SinkStatus)) {
        let mut sinks = self.sinks.lock().unwrap_or_else(PoisonError::into_inner);
        change(sinks.entry(sink).or_default());
    }

    /// Marks progress now.
    pub fn success(&self, sink: &'static str) {
        let now = crate::catalog::now_rfc3339();
        self.update(sink, |s| {
            s.state = SinkState::Active;
            s.last_success = Some(now);
            s.detail = None;
        });
    }

    /// Records an error that stopped the sink for this session.
    pub fn error(&self, sink: &'static str, message: String) {
        let at = crate::catalog::now_rfc3339();
        self.update(sink, |s| {
            s.state = SinkState::Error;
            s.errors += 1;
            s.last_error = Some(ErrorNote { at, message });
        });
    }

    /// Marks a configured sink as not running for a reason that is not an error.
    pub fn disabled(&self, sink: &'static str, detail: String) {
        self.update(sink, |s| {
            s.state = SinkState::Disabled;
            s.detail = Some(detail);
        });
    }

    /// A running sink that finished with its session goes back to idle (an error that
    /// stopped it stays shown).
    pub fn idle(&self, sink: &'static str) {
        self.update(sink, |s| {
            if s.state == SinkState::Active {
                s.state = SinkState::Idle;
            }
        });
    }

    /// Every sink's status, by sink id.
    pub fn snapshot(&self) -> BTreeMap<&'static str, SinkStatus> {
        self.sinks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_stays_visible_after_the_sink_runs_again() {
        let status = StreamStatus::default();
        assert!(status.snapshot().is_empty());
        status.success("rec");
        status.error("rec", "disk full".into());
        assert_eq!(status.snapshot()["rec"].state, SinkState::Error);
        status.idle("rec");
        assert_eq!(status.snapshot()["rec"].state, SinkState::Error);
        status.success("rec");
        status.update("rec", |s| s.skipped += 1);
        let rec = &status.snapshot()["rec"];
        assert_eq!(rec.state, SinkState::Active);
        assert_eq!((rec.errors, rec.skipped), (1, 1));
        assert_eq!(rec.last_error.as_ref().unwrap().message, "disk full");
        status.idle("rec");
        assert_eq!(status.snapshot()["rec"].state, SinkState::Idle);
    }
}
