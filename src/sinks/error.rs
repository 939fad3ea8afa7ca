//! The one error type of the sinks that write files (recorder, HLS): what failed, on which
//! file (its storage key), with the source kept for the log line that ends the sink.

use crate::catalog::CatalogError;
use crate::mux::finalize::FinalizeError;
use crate::storage::reserve::is_disk_full;

/// Why a sink could not write its output.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("i/o on {key}: {source}")]
    Io {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("muxing: {0}")]
    Mux(#[from] mp4_atom::Error),
    #[error("finalising: {0}")]
    Finalize(#[from] FinalizeError),
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl SinkError {
    /// Turns an I/O error on `key` into a `SinkError` (for `map_err`).
    pub fn io(key: &str) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
        move |source| SinkError::Io {
            key: key.to_string(),
            source,
        }
    }

    /// No space left (or quota exceeded): giving up the disk reserve can help.
    pub fn disk_full(&self) -> bool {
        match self {
            SinkError::Io { source, .. } | SinkError::Finalize(FinalizeError::Io(source)) => {
                is_disk_full(source)
            }
            _ => false,
        }
    }
}
