//! What every RTMP connection task shares.

use crate::config::RtmpSettings;
use crate::metrics::MediaMetrics;
use crate::session::LiveSessions;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared by the listener and every connection.
pub struct RtmpContext {
    /// Admission of publishers and players, and the live streams' hubs.
    pub sessions: LiveSessions,
    pub settings: RtmpSettings,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Set (shortly) after `shutdown` is cancelled, for loops that check once per tick.
    pub shutting_down: Arc<AtomicBool>,
    /// Origin of the shared ingest read grid (see `rtmp.ingest_batch_ms`).
    pub clock_epoch: tokio::time::Instant,
    /// Connection tasks; shutdown waits for all of them.
    pub tasks: TaskTracker,
    /// Bytes, players, refusals and skipped packets, for `/metrics`.
    pub media: MediaMetrics,
}
