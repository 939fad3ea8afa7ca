//! The accept loop: a connection limit (semaphore), backoff on accept errors, one task per
//! connection, and shutdown that stops accepting and lets connections finish their own way.

use super::connection;
use crate::catalog::Catalog;
use crate::config::{RecordingSettings, RtmpSettings};
use crate::hub::Hubs;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every connection task shares.
pub struct RtmpContext {
    pub catalog: Catalog,
    pub hubs: Hubs,
    pub settings: RtmpSettings,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
    /// Set (shortly) after `shutdown` is cancelled, for loops that check once per tick.
    pub shutting_down: Arc<AtomicBool>,
    /// Origin of the shared ingest read grid (see `rtmp.ingest_batch_ms`).
    pub clock_epoch: tokio::time::Instant,
    pub recording: RecordingSettings,
    pub recorder: crate::sinks::recorder::RecorderContext,
    pub hls: crate::sinks::hls::HlsContext,
    pub pictures: crate::sinks::pictures::PictureContext,
    /// Sessions in their reconnect grace.
    pub lingering: super::session::LingeringSessions,
    /// Connection, recorder and grace tasks; shutdown waits for all of them.
    pub tasks: TaskTracker,
    /// Bytes, players and skipped packets, for `/metrics`.
    pub media: crate::metrics::MediaMetrics,
}

/// Accepts connections until shutdown; connection tasks are tracked by `ctx.tasks`.
pub async fn serve(listener: TcpListener, ctx: Arc<RtmpContext>) {
    let tasks = ctx.tasks.clone();
    let permits = Arc::new(Semaphore::new(ctx.settings.max_connections));
    let mut backoff = Duration::from_millis(50);
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => {
                backoff = Duration::from_millis(50);
                pair
            }
            Err(e) => {
                // Usually out of file descriptors: wait instead of spinning.
                tracing::warn!(error = %e, ?backoff, "rtmp accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, limit = ctx.settings.max_connections, "rtmp connection refused: connection limit reached");
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let ctx = ctx.clone();
        tasks.spawn(async move {
            connection::run(ctx, socket, peer).await;
            drop(permit);
        });
    }
}
