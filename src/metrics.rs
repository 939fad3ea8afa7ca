//! Prometheus metrics (`GET /metrics`, OpenMetrics text) on `prometheus-client`, the
//! Prometheus project's own Rust client: typed counters and gauges that are plain atomics on
//! the hot path and are only formatted when scraped.
//!
//! Each part of the server owns a small struct of handles (cloning a handle shares the
//! counter); [`Metrics::new`] registers them all once.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Recording (VOD) counters.
#[derive(Debug, Clone, Default)]
pub struct RecordingMetrics {
    /// Recordings stopped by a write error (disk full, I/O error).
    pub write_errors: Counter,
    /// The recorder fell behind its backlog cap and media was skipped.
    pub gaps: Counter,
    /// Files finalised and listed.
    pub files_finished: Counter,
    /// Media and headers written to recording files.
    pub bytes_written: Counter,
    /// Recording files open now.
    pub active: Gauge,
    /// Times the disk reserve was given up so full-disk recordings could be finalised.
    pub reserve_released: Counter,
}

/// Counters labelled by picture kind (`thumbs`, `motionclip`).
type ByKind = Family<Vec<(&'static str, &'static str)>, Counter>;

/// Thumbnail and motion clip counters, by kind.
#[derive(Debug, Clone, Default)]
pub struct PictureMetrics {
    made: ByKind,
    failed: ByKind,
    skipped: ByKind,
}

impl PictureMetrics {
    fn inc(family: &ByKind, kind: &'static str) {
        family.get_or_create(&vec![("kind", kind)]).inc();
    }

    /// A picture was written.
    pub fn made(&self, kind: &'static str) {
        Self::inc(&self.made, kind);
    }

    /// A picture failed (decode error, unsupported stream, write error).
    pub fn failed(&self, kind: &'static str) {
        Self::inc(&self.failed, kind);
    }

    /// A tick was skipped: the stream's previous job still ran or the decode queue was full.
    pub fn skipped(&self, kind: &'static str) {
        Self::inc(&self.skipped, kind);
    }
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub recording: RecordingMetrics,
    pub pictures: PictureMetrics,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("reelay");
        let recording = RecordingMetrics::default();
        let sub = registry.sub_registry_with_prefix("recording");
        sub.register(
            "write_errors",
            "Recordings stopped by a write error (disk full, I/O error)",
            recording.write_errors.clone(),
        );
        sub.register(
            "gaps",
            "Times a recorder fell behind its backlog cap and media was skipped",
            recording.gaps.clone(),
        );
        sub.register(
            "files_finished",
            "Recording files finalised and listed",
            recording.files_finished.clone(),
        );
        sub.register(
            "written_bytes",
            "Bytes written to recording files",
            recording.bytes_written.clone(),
        );
        sub.register(
            "active",
            "Recording files open now",
            recording.active.clone(),
        );
        sub.register(
            "reserve_released",
            "Times the disk reserve was released to finalise recordings on a full disk",
            recording.reserve_released.clone(),
        );
        let pictures = PictureMetrics::default();
        let sub = registry.sub_registry_with_prefix("picture");
        sub.register(
            "made",
            "Thumbnails and motion clips written",
            pictures.made.clone(),
        );
        sub.register(
            "failed",
            "Thumbnails and motion clips that failed",
            pictures.failed.clone(),
        );
        sub.register(
            "skipped_ticks",
            "Picture ticks skipped because the stream's previous job still ran or the decode queue was full",
            pictures.skipped.clone(),
        );
        Arc::new(Metrics {
            registry,
            recording,
            pictures,
        })
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_prefix() {
        let metrics = Metrics::new();
        metrics.recording.write_errors.inc();
        metrics.recording.bytes_written.inc_by(1500);
        let text = metrics.render();
        assert!(
            text.contains("reelay_recording_write_errors_total 1\n"),
            "{text}"
        );
        assert!(
            text.contains("reelay_recording_written_bytes_total 1500\n"),
            "{text}"
        );
        assert!(text.contains("reelay_recording_active 0\n"), "{text}");
        metrics.pictures.skipped("thumbs");
        let text = metrics.render();
        assert!(
            text.contains("reelay_picture_skipped_ticks_total{kind=\"thumbs\"} 1\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
