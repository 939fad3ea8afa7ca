//! Clip & share: which stored segments a clip of `start..end` seconds of a session needs, and
//! the presentation window that trims them, from the session's replay playlist.
//!
//! A clip is made of whole segments (each starts with a keyframe, so the clip starts at the
//! keyframe at or before `start`), finalised into a regular MP4 whose edit lists show exactly
//! `start..end` (`mux::finalize::finalize_window`); nothing is re-encoded.
//!
//! The playlist is read back from disk, so parsing is defensive: anything unexpected is an
//! error, never a panic (fuzzed).

pub use crate::mux::cut::ClipError;
use crate::mux::cut::{check_range, refuse};
use crate::mux::finalize::Window;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A segment as the replay playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedSegment {
    pub uri: String,
    pub init: String,
    pub duration_secs: f64,
    /// Seconds from session time 0 to its first frame.
    pub offset_secs: f64,
}

/// Reads our replay playlist: segments with their init and offset from `origin` (RFC 3339;
/// the first segment's time when `None`).
pub fn parse_playlist(text: &str, origin: Option<&str>) -> Result<Vec<ListedSegment>, String> {
    let parse_time = |value: &str| {
        OffsetDateTime::parse(value.trim(), &Rfc3339)
            .map_err(|e| format!("bad date {value:?}: {e}"))
    };
    let mut origin = origin.map(parse_time).transpose()?;
    let mut segments = Vec::new();
    let mut init: Option<String> = None;
    let mut duration: Option<f64> = None;
    let mut date: Option<OffsetDateTime> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            let uri = rest.strip_suffix('"').ok_or("unterminated EXT-X-MAP URI")?;
            init = Some(uri.to_string());
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            date = Some(parse_time(rest)?);
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let value = rest.split(',').next().unwrap_or_default();
            let secs: f64 = value.parse().map_err(|_| format!("bad EXTINF {value:?}"))?;
            if !secs.is_finite() || secs < 0.0 {
                return Err(format!("bad EXTINF {value:?}"));
            }
            duration = Some(secs);
        } else if !line.is_empty() && !line.starts_with('#') {
            let duration_secs = duration.take().ok_or("segment without EXTINF")?;
            let at = date
                .take()
                .ok_or("segment without EXT-X-PROGRAM-DATE-TIME")?;
            let zero = *origin.get_or_insert(at);
            segments.push(ListedSegment {
                uri: line.to_string(),
                init: init.clone().ok_or("segment before any EXT-X-MAP")?,
                duration_secs,
                offset_secs: (at - zero).as_seconds_f64(),
            });
        }
    }
    Ok(segments)
}

/// What to put in the clip file, in order, and what of it to show.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipPlan {
    pub init: String,
    pub segments: Vec<String>,
    /// Relative to the first chosen segment's start.
    pub window: Window,
}

/// Chooses the segments covering `start..end` (seconds of session time).
pub fn plan_clip(segments: &[ListedSegment], start: f64, end: f64) -> Result<ClipPlan, ClipError> {
    check_range(start, end)?;
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return Err(refuse("session", "the replay holds no media yet"));
    };
    let (held_from, held_to) = (first.offset_secs, last.offset_secs + last.duration_secs);
    // A millisecond of slack for the playlist's rounding.
    if start + 0.001 < held_from {
        return Err(refuse(
            "start",
            format!("the replay holds {held_from:.3} s to {held_to:.3} s of the session"),
        ));
    }
    if end > held_to + 0.001 {
        return Err(refuse(
            "end",
            format!("the replay holds {held_from:.3} s to {held_to:.3} s of the session"),
        ));
    }
    let first_index = segments
        .iter()
        .rposition(|s| s.offset_secs <= start + 0.001)
        .unwrap_or(0);
    let last_index = segments
        .iter()
        .position(|s| s.offset_secs + s.duration_secs >= end - 0.001)
        .unwrap_or(segments.len() - 1)
        .max(first_index);
    let chosen = &segments[first_index..=last_index];
    let init = chosen[0].init.clone();
    if let Some(change) = chosen.iter().find(|s| s.init != init) {
        return Err(refuse(
            "end",
            format!(
                "the stream's codecs changed at {:.3} s; a clip cannot span that",
                change.offset_secs
            ),
        ));
    }
    let base = chosen[0].offset_secs;
    Ok(ClipPlan {
        init,
        segments: chosen.iter().map(|s| s.uri.clone()).collect(),
        window: Window {
            start_ms: ((start - base).max(0.0) * 1000.0).round() as u64,
            duration_ms: ((end - start) * 1000.0).round() as u64,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playlist() -> String {
        let mut text = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n");
        for i in 0..10 {
            if i == 0 || i == 6 {
                text.push_str(&format!("#EXT-X-MAP:URI=\"init-{}.mp4\"\n", 1 + i / 6));
            }
            text.push_str(&format!(
                "#EXT-X-PROGRAM-DATE-TIME:2026-11-21T10:00:{:02}.500Z\n#EXTINF:2.000,\n{i}.m4s\n",
                10 + 2 * i
            ));
        }
        text
    }

    #[test]
    fn picks_the_keyframe_segment_at_or_before_start_and_trims_with_a_window() {
        let segments = parse_playlist(&playlist(), None).unwrap();
        assert_eq!(segments.len(), 10);
        assert_eq!(segments[3].offset_secs, 6.0);
        let plan = plan_clip(&segments, 5.0, 9.5).unwrap();
        assert_eq!(plan.segments, ["2.m4s", "3.m4s", "4.m4s"]);
        assert_eq!(plan.init, "init-1.mp4");
        assert_eq!(
            plan.window,
            Window {
                start_ms: 1000,
                duration_ms: 4500
            }
        );
        // With an origin one second before the first segment, offsets move by one second.
        let shifted = parse_playlist(&playlist(), Some("2026-11-21T10:00:09.500Z")).unwrap();
        assert_eq!(shifted[0].offset_secs, 1.0);
    }

    #[test]
    fn refusals_name_the_field() {
        let segments = parse_playlist(&playlist(), None).unwrap();
        assert_eq!(plan_clip(&segments, 5.0, 5.0).unwrap_err().field, "end");
        assert_eq!(plan_clip(&segments, -1.0, 5.0).unwrap_err().field, "start");
        assert_eq!(plan_clip(&segments, 5.0, 20.5).unwrap_err().field, "end");
        assert_eq!(
            plan_clip(&segments, f64::NAN, 5.0).unwrap_err().field,
            "start"
        );
        assert_eq!(plan_clip(&segments, 10.0, 14.0).unwrap_err().field, "end"); // codec change
        assert_eq!(plan_clip(&[], 0.0, 1.0).unwrap_err().field, "session");
        let window = parse_playlist(&playlist(), Some("2026-11-21T10:00:00.500Z")).unwrap();
        assert_eq!(plan_clip(&window, 2.0, 12.0).unwrap_err().field, "start");
    }

    #[test]
    fn malformed_playlists_are_errors() {
        for bad in [
            "#EXTINF:x,\n0.m4s\n",
            "0.m4s\n",
            "#EXTINF:2,\n0.m4s\n",
            "#EXT-X-MAP:URI=\"a\n",
            "#EXT-X-PROGRAM-DATE-TIME:yesterday\n",
        ] {
            assert!(parse_playlist(bad, None).is_err(), "{bad}");
        }
    }
}
