//! Prometheus metrics (`GET /metrics`, OpenMetrics text) on `prometheus-client`, the
//! Prometheus project's own Rust client: typed counters and gauges that are plain atomics on
//! the hot path and are only formatted when scraped.
//!
//! Each part of the server owns a small struct of handles (cloning a handle shares the
//! counter); [`Metrics::new`] registers them all once.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
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

/// Counters labelled by sink kind (`rtmp_play`, `hls`, `rec`).
type BySink = Family<Vec<(&'static str, &'static str)>, Counter>;

/// The media path's traffic: RTMP bytes, players, packets readers skipped.
#[derive(Debug, Clone, Default)]
pub struct MediaMetrics {
    /// Bytes read from RTMP connections (publishers' media, players' commands).
    pub bytes_in: Counter,
    /// Bytes written to RTMP connections (players' media, replies).
    pub bytes_out: Counter,
    /// RTMP players connected now.
    pub players: Gauge,
    dropped: BySink,
    refused: Family<Vec<(&'static str, &'static str)>, Counter>,
}

impl MediaMetrics {
    /// A reader of kind `sink` fell behind and skipped `packets` to the newest keyframe.
    pub fn dropped(&self, sink: &'static str, packets: u64) {
        self.dropped
            .get_or_create(&vec![("sink", sink)])
            .inc_by(packets);
    }

    /// An RTMP publisher or player was refused admission (`session::Refusal::label`).
    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&vec![("reason", reason)]).inc();
    }
}

/// ABR transcoding, by rendition profile (`vtrans2-…`; the set of profiles in use is small).
#[derive(Debug, Clone, Default)]
pub struct TranscodeMetrics {
    frames: Family<Vec<(&'static str, String)>, Counter>,
    dropped: Family<Vec<(&'static str, String)>, Counter>,
    /// Times a group's decoder fell behind its source and resumed at a keyframe.
    pub resyncs: Counter,
    /// Renditions being made now.
    pub renditions: Gauge,
}

impl TranscodeMetrics {
    /// A rendition of `profile` encoded `count` frames.
    pub fn frames(&self, profile: &str, count: u64) {
        if count > 0 {
            self.frames
                .get_or_create(&vec![("profile", profile.to_string())])
                .inc_by(count);
        }
    }

    /// A rendition of `profile` could not keep up and lost a frame.
    pub fn dropped(&self, profile: &str) {
        self.dropped
            .get_or_create(&vec![("profile", profile.to_string())])
            .inc();
    }
}

/// Labels of an HTTP request: the route pattern (not the path, so the set stays small),
/// method and status.
type RequestLabels = Vec<(&'static str, String)>;

/// HTTP requests and their latency.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        fn latency_histogram() -> Histogram {
            // 0.25 ms … ~4 s.
            Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
        }
        HttpMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl HttpMetrics {
    /// Counts a finished request and its time to the response head.
    pub fn observe(&self, route: String, method: String, status: u16, seconds: f64) {
        let mut labels = vec![("route", route), ("method", method)];
        self.latency.get_or_create(&labels).observe(seconds);
        labels.push(("status", status.to_string()));
        self.requests.get_or_create(&labels).inc();
    }
}

/// Gauges read from the catalog and the hubs when scraped.
#[derive(Debug, Clone, Default)]
pub struct ScrapedGauges {
    /// Streams by state, across organisations.
    pub streams: Family<Vec<(&'static str, &'static str)>, Gauge>,
    /// Streams with a publisher (connected or waiting for a reconnect).
    pub publishers: Gauge,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub recording: RecordingMetrics,
    pub pictures: PictureMetrics,
    pub media: MediaMetrics,
    pub transcode: TranscodeMetrics,
    pub http: HttpMetrics,
    pub scraped: ScrapedGauges,
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
        let transcode = TranscodeMetrics::default();
        let sub = registry.sub_registry_with_prefix("transcode");
        sub.register(
            "frames",
            "Frames encoded, by rendition profile",
            transcode.frames.clone(),
        );
        sub.register(
            "dropped_frames",
            "Frames a rendition lost because it could not keep up, by profile",
            transcode.dropped.clone(),
        );
        sub.register(
            "resyncs",
            "Times a group's decoder fell behind its source and resumed at a keyframe",
            transcode.resyncs.clone(),
        );
        sub.register(
            "renditions",
            "Renditions being made now",
            transcode.renditions.clone(),
        );
        let media = MediaMetrics::default();
        let sub = registry.sub_registry_with_prefix("rtmp");
        sub.register(
            "received_bytes",
            "Bytes read from RTMP connections",
            media.bytes_in.clone(),
        );
        sub.register(
            "sent_bytes",
            "Bytes written to RTMP connections",
            media.bytes_out.clone(),
        );
        sub.register(
            "players",
            "RTMP players connected now",
            media.players.clone(),
        );
        sub.register(
            "refused",
            "RTMP publishers and players refused admission, by reason",
            media.refused.clone(),
        );
        registry.register(
            "dropped_packets",
            "Packets readers skipped when they fell behind, by sink (rtmp_play, hls, rec)",
            media.dropped.clone(),
        );
        let http = HttpMetrics::default();
        let sub = registry.sub_registry_with_prefix("http");
        sub.register(
            "requests",
            "HTTP requests by route pattern, method and status",
            http.requests.clone(),
        );
        sub.register(
            "request_duration_seconds",
            "Time to the response head, by route pattern and method",
            http.latency.clone(),
        );
        let scraped = ScrapedGauges::default();
        registry.register(
            "streams",
            "Streams by state, all organisations",
            scraped.streams.clone(),
        );
        registry.register(
            "publishers",
            "Streams with a publisher (connected or waiting for a reconnect)",
            scraped.publishers.clone(),
        );
        Arc::new(Metrics {
            registry,
            recording,
            pictures,
            media,
            transcode,
            http,
            scraped,
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
