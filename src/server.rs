//! Starts and stops the whole server: the catalog and the data folder's store, crash
//! recovery (recordings finalised, replays ended, sessions closed as `recovered`) and the
//! first-start bootstrap, the live-session registry with everything sinks share, the RTMP
//! and HTTP listeners, and graceful shutdown that closes every session before returning.

use crate::catalog::{Catalog, CatalogError, NewPicture};
use crate::config::{Config, PublicUrls};
use crate::http::{self, AppState};
use crate::hub::RingLimits;
use crate::metrics::Metrics;
use crate::picture::pool::DecodePool;
use crate::rtmp::{self, RtmpContext};
use crate::session::{LiveSessions, SessionContext};
use crate::sinks::hls::HlsContext;
use crate::sinks::pictures::{PictureContext, TickPhases};
use crate::sinks::recorder::{self, RecorderContext};
use crate::storage::reserve::DiskReserve;
use crate::storage::{layout, LocalStore};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot use data folder {path}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot start the decode threads")]
    Threads(#[source] std::io::Error),
}

/// The catalog file inside a data folder.
pub fn catalog_path(data_dir: &Path) -> PathBuf {
    data_dir.join(layout::CATALOG_FILE)
}

/// A running server.
pub struct Server {
    pub rtmp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub urls: PublicUrls,
    /// The admin key created on first start (also in `<data>/admin-api-key`), shown once.
    pub first_admin_key: Option<String>,
    pub catalog: Catalog,
    /// The live streams (for tests and embedding).
    pub sessions: LiveSessions,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    http_task: JoinHandle<()>,
}

fn write_admin_key(data_dir: &Path, key: &str) -> std::io::Result<()> {
    let path = data_dir.join(layout::ADMIN_KEY_FILE);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path)?;
    std::io::Write::write_all(&mut file, format!("{key}\n").as_bytes())?;
    file.sync_all()
}

async fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Starts every part of the server; returns once both listeners are bound.
pub async fn start(config: Config) -> Result<Server, StartError> {
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    // Bind first: a port conflict must not cost the one-time print of the first admin key.
    let rtmp_listener = bind(&config.rtmp.addr).await?;
    let http_listener = bind(&config.server.http_addr).await?;
    let catalog = Catalog::open(&catalog_path(&data_dir))?;
    let spool = Arc::new(LocalStore::new(&data_dir));
    let files = recorder::recover(&catalog, &spool).await?;
    if files > 0 {
        tracing::warn!(files, "finalised recordings left open by an unclean stop");
    }
    let replays = crate::sinks::hls::recover(&catalog, &spool).await?;
    if replays > 0 {
        tracing::warn!(replays, "ended replays left open by an unclean stop");
    }
    let recovered = catalog.recover_open_sessions().await?;
    if recovered > 0 {
        tracing::warn!(
            sessions = recovered,
            "closed sessions left open by an unclean stop (end_reason: recovered)"
        );
    }
    if catalog.migrated_from() > 0 && catalog.migrated_from() < 5 {
        import_picture_history(&catalog, &spool).await?;
    }
    let first_admin_key = catalog.ensure_default_org().await?.map(|(org, key)| {
        tracing::info!(org = %org.hash, "created the default organisation and its admin key");
        key
    });
    if let Some(key) = &first_admin_key {
        write_admin_key(&data_dir, key).map_err(|source| StartError::DataDir {
            path: data_dir.join(layout::ADMIN_KEY_FILE),
            source,
        })?;
    }

    let rtmp_addr = rtmp_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: config.rtmp.addr.clone(),
            source,
        })?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: config.server.http_addr.clone(),
            source,
        })?;
    let urls = PublicUrls::resolve(&config, http_addr, rtmp_addr);
    let ring_limits = RingLimits {
        max_backlog_bytes: config.hub.max_backlog_bytes,
        max_backlog_ms: i64::try_from(config.hub.max_backlog_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX),
        lossy_max_lag_ms: i64::try_from(config.hub.player_max_lag_ms).unwrap_or(i64::MAX),
        ..RingLimits::default()
    };
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let metrics = Metrics::new();
    let reserve = Arc::new(DiskReserve::new(
        &data_dir,
        config.recording.disk_reserve_mb.saturating_mul(1 << 20),
    ));
    let startup_reserve = reserve.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = startup_reserve.ensure() {
            tracing::warn!(error = %e, bytes = startup_reserve.bytes(), "cannot make the disk reserve; a recording on a full disk may stay fragmented until the next start");
        }
    });
    // Decoding runs on its own threads (never the runtime's), one per core unless set.
    let decode_threads = match config.pictures.decode_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let sessions = LiveSessions::new(SessionContext {
        catalog: catalog.clone(),
        node_id: config.server.resolved_node_id(),
        ring_limits,
        reconnect_grace: std::time::Duration::from_secs(config.recording.reconnect_grace_secs),
        recorder: RecorderContext {
            catalog: catalog.clone(),
            spool: spool.clone(),
            region: config.server.region.clone(),
            fragment_ms: config.recording.fragment_ms,
            metrics: metrics.recording.clone(),
            media: metrics.media.clone(),
            reserve,
        },
        hls: HlsContext {
            catalog: catalog.clone(),
            spool: spool.clone(),
            idle_stop: std::time::Duration::from_secs(30),
            media: metrics.media.clone(),
        },
        pictures: PictureContext {
            catalog: catalog.clone(),
            spool: spool.clone(),
            // A stream has at most one job per kind waiting, so this bound never refuses the
            // jobs of the streams the server admits; ticks are skipped by the per-stream rule.
            pool: DecodePool::new(
                decode_threads,
                config.rtmp.max_connections.saturating_mul(2),
            )
            .map_err(StartError::Threads)?,
            settings: config.pictures.clone(),
            metrics: metrics.pictures.clone(),
            phases: TickPhases::new(),
        },
        transcode_metrics: metrics.transcode.clone(),
        tasks: tasks.clone(),
        shutdown: shutdown.clone(),
    });
    let ctx = Arc::new(RtmpContext {
        sessions: sessions.clone(),
        settings: config.rtmp.clone(),
        shutdown: shutdown.clone(),
        shutting_down: flag_when_cancelled(&shutdown),
        clock_epoch: tokio::time::Instant::now(),
        tasks: tasks.clone(),
        media: metrics.media.clone(),
    });
    tasks.spawn(rtmp::serve(rtmp_listener, ctx));

    let state = AppState {
        catalog: catalog.clone(),
        sessions: sessions.clone(),
        urls: Arc::new(urls.clone()),
        store: spool,
        metrics,
    };
    let app = http::router(state, config.server.max_body_bytes);
    let http_shutdown = shutdown.clone();
    let http_task = tokio::spawn(async move {
        let served = axum::serve(http_listener, app)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "http server failed");
        }
    });
    tracing::info!(rtmp = %rtmp_addr, http = %http_addr, public = %urls.http, data = %data_dir.display(), "reelay listening");
    Ok(Server {
        rtmp_addr,
        http_addr,
        urls,
        first_admin_key,
        catalog,
        sessions,
        shutdown,
        tasks,
        http_task,
    })
}

impl Server {
    /// Asks every part to stop: listeners stop accepting, sessions end as `shutdown`.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// A token cancelled at shutdown (for signal handlers).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until shutdown was asked for and every connection has finished.
    pub async fn wait(self) {
        self.shutdown.cancelled().await;
        self.tasks.close();
        self.tasks.wait().await;
        let _ = self.http_task.await;
        tracing::info!("reelay stopped");
    }
}

/// Lists picture history written before the catalog listed it (catalogs older than schema
/// 5): every `thumbnails/<streamname>/<stamp>.<ext>` of a known stream, once.
async fn import_picture_history(
    catalog: &Catalog,
    spool: &Arc<LocalStore>,
) -> Result<(), StartError> {
    let root = spool.root().join("thumbnails");
    let names: Vec<String> = std::fs::read_dir(&root)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut pictures = Vec::new();
    for name in names {
        let Some(stream) = catalog.find_stream_by_key(&name).await? else {
            continue;
        };
        let folder = layout::picture_history_folder(&name);
        let keys = spool.list_blocking(&folder).unwrap_or_default();
        for key in keys {
            let file = key.rsplit('/').next().unwrap_or_default();
            let (Some(kind), Some(at)) = (layout::picture_kind(file), layout::parse_stamp(file))
            else {
                continue;
            };
            pictures.push(NewPicture {
                stream_id: stream.id,
                kind,
                key,
                created_at: crate::catalog::format_rfc3339(at),
            });
        }
    }
    let added = catalog.import_pictures(pictures).await?;
    if added > 0 {
        tracing::info!(
            pictures = added,
            "listed existing thumbnail and motion clip history in the catalog"
        );
    }
    Ok(())
}

/// A flag set once `token` is cancelled: a load is cheaper than polling the token for loops
/// that wake on their own schedule.
fn flag_when_cancelled(token: &CancellationToken) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let (set, token) = (flag.clone(), token.clone());
    tokio::spawn(async move {
        token.cancelled().await;
        set.store(true, Ordering::Release);
    });
    flag
}
