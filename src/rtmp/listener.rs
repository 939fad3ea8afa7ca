//! The accept loop: a connection limit (semaphore), backoff on accept errors, one task per
//! connection, and shutdown that stops accepting and lets connections finish their own way.

use super::connection;
use super::context::RtmpContext;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

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
