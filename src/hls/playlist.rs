//! HLS media playlists (RFC 8216bis) for CMAF segments: the replay playlist (an event
//! playlist, or a sliding window of `duration` seconds) and the short live window, rendered
//! from one list of segments.
//!
//! Rendering is incremental: each segment's lines are rendered once when it is added and kept;
//! a playlist is the header plus those lines, so an update costs a copy, not a re-render of
//! every segment (a 24-hour replay holds 43,200 two-second segments). `hls_m3u8` re-renders
//! its typed segments on every `to_string`; we use it as the independent parser in tests.

use std::collections::VecDeque;
use std::fmt::Write;

/// One segment as the playlists list it.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentEntry {
    pub sequence: u64,
    /// Its URI, relative to the playlist (the file name `storage::layout` gives it).
    pub uri: String,
    pub duration_secs: f64,
    /// The URI of the init segment it needs.
    pub init: String,
    /// Timestamps or codecs do not continue from the previous segment.
    pub discontinuity: bool,
    /// RFC 3339 wall-clock time of its first frame.
    pub program_date_time: String,
}

/// How many segments a playlist keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retention {
    /// Every segment of the session (an `EVENT` playlist).
    Everything,
    /// About the last `secs` seconds: a segment leaves once the rest still cover `secs`.
    LastSecs(f64),
}

/// A media playlist: segments, sequence numbers, and the rendered lines of each segment.
#[derive(Debug)]
pub struct MediaPlaylist {
    retention: Retention,
    /// Each segment with its rendered lines and the number of discontinuity tags before it
    /// since the session started (what `EXT-X-DISCONTINUITY-SEQUENCE` says when it is first).
    segments: VecDeque<(SegmentEntry, String, u64)>,
    /// Total duration of the listed segments.
    listed_secs: f64,
    /// Discontinuity tags so far, listed or not.
    discontinuities: u64,
    /// Largest segment duration seen, rounded up; never lowered.
    target_duration: u64,
    ended: bool,
}

impl MediaPlaylist {
    pub fn new(retention: Retention) -> Self {
        MediaPlaylist {
            retention,
            segments: VecDeque::new(),
            listed_secs: 0.0,
            discontinuities: 0,
            target_duration: 1,
            ended: false,
        }
    }

    /// Adds a segment; returns the segments that left the playlist (their files can go).
    pub fn push(&mut self, entry: SegmentEntry) -> Vec<SegmentEntry> {
        // The init map is written where it changes; `render` adds it to the first segment.
        let map_changed = self
            .segments
            .back()
            .is_none_or(|(last, _, _)| last.init != entry.init);
        let mut lines = String::new();
        if entry.discontinuity {
            lines.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if map_changed {
            let _ = writeln!(lines, "#EXT-X-MAP:URI=\"{}\"", entry.init);
        }
        let _ = write!(
            lines,
            "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:{:.3},\n{}\n",
            entry.program_date_time, entry.duration_secs, entry.uri
        );
        self.target_duration = self
            .target_duration
            .max(entry.duration_secs.round().max(1.0) as u64);
        self.listed_secs += entry.duration_secs;
        let before = self.discontinuities;
        self.discontinuities += u64::from(entry.discontinuity);
        self.segments.push_back((entry, lines, before));
        let mut removed = Vec::new();
        if let Retention::LastSecs(keep) = self.retention {
            while let Some((front, _, _)) = self.segments.front() {
                if self.segments.len() <= 1 || self.listed_secs - front.duration_secs < keep {
                    break;
                }
                let Some((front, _, _)) = self.segments.pop_front() else {
                    break;
                };
                self.listed_secs -= front.duration_secs;
                removed.push(front);
            }
        }
        removed
    }

    /// Marks the session's end (`#EXT-X-ENDLIST`).
    pub fn end(&mut self) {
        self.ended = true;
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Total duration of the listed segments in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.listed_secs
    }

    pub fn segments(&self) -> impl Iterator<Item = &SegmentEntry> {
        self.segments.iter().map(|(entry, _, _)| entry)
    }

    /// The whole playlist; segment and init URIs are prefixed with `prefix` (e.g. the
    /// session folder for the live playlist, empty for the replay playlist beside them).
    pub fn render(&self, prefix: &str) -> String {
        self.render_last(usize::MAX, prefix)
    }

    /// Only the newest `count` segments (the live window), not an event playlist.
    pub fn render_last(&self, count: usize, prefix: &str) -> String {
        let skip = self.segments.len().saturating_sub(count);
        let window = skip > 0 || count != usize::MAX;
        let listed = self.segments.range(skip..);
        let mut out = String::with_capacity(
            256 + listed
                .clone()
                .map(|(_, l, _)| l.len() + 2 * prefix.len())
                .sum::<usize>(),
        );
        let first = self.segments.get(skip);
        let media_sequence = first.map_or(0, |(e, _, _)| e.sequence);
        // Discontinuity tags before the first listed segment, removed or outside the window.
        let discontinuities = first.map_or(0, |(_, _, before)| *before);
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{media_sequence}\n",
            self.target_duration
        );
        if discontinuities > 0 {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuities}");
        }
        if !window && self.retention == Retention::Everything {
            out.push_str("#EXT-X-PLAYLIST-TYPE:EVENT\n");
        }
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        if let Some((first, lines, _)) = first {
            // The first listed segment needs its map even when it did not change there.
            if !lines.contains("#EXT-X-MAP") {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"{prefix}{}\"", first.init);
            }
        }
        for (_, lines, _) in listed {
            if prefix.is_empty() {
                out.push_str(lines);
            } else {
                for line in lines.lines() {
                    if let Some(uri) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
                        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{prefix}{uri}");
                    } else if line.starts_with('#') {
                        out.push_str(line);
                        out.push('\n');
                    } else {
                        let _ = writeln!(out, "{prefix}{line}");
                    }
                }
            }
        }
        if self.ended && !window {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}
