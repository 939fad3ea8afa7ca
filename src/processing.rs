//! Per-stream settings as types (SPEC "Live processing", "Stream groups"): the `processing`
//! list and a transcode profile, each parsed and validated once where it enters — the API
//! body or the catalog row — and written back in the bintu JSON shape. Everything past that
//! boundary (the catalog, the live session that starts sinks) reads typed fields, never JSON.
//!
//! Refusals name the field as a JSON path (`processing[1].interval`) and the allowed range.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::ops::RangeInclusive;

/// `thumbs` and `motionclip` intervals, seconds.
pub const INTERVAL_SECS: RangeInclusive<u32> = 10..=3600;
/// `motionclip` duration, seconds.
pub const CLIP_SECS: RangeInclusive<u32> = 1..=60;
/// `rec` and `replay` duration, seconds (or null).
pub const DURATION_SECS: RangeInclusive<u32> = 1..=86400;

/// An input error naming its JSON path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn field_error(field: String, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// One processing entry in the bintu shape (`{"id": "thumbs", "interval": 10}`). The ranges
/// hold for every value of this type that [`Processing::parse`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "id", rename_all = "lowercase", deny_unknown_fields)]
pub enum ProcessingEntry {
    /// Record each session to MP4; `duration`: a new file every N seconds (null: one file).
    Rec {
        #[serde(rename = "duration")]
        #[schema(minimum = 1, maximum = 86400, nullable)]
        split_secs: Option<u32>,
    },
    /// HLS replay keeping the last N seconds (null: the whole session).
    Replay {
        #[serde(rename = "duration")]
        #[schema(minimum = 1, maximum = 86400, nullable)]
        keep_secs: Option<u32>,
    },
    /// A JPEG every interval.
    Thumbs {
        #[serde(rename = "interval")]
        #[schema(minimum = 10, maximum = 3600)]
        interval_secs: u32,
    },
    /// A GIF of `duration` seconds every interval.
    Motionclip {
        #[serde(rename = "interval")]
        #[schema(minimum = 10, maximum = 3600)]
        interval_secs: u32,
        #[serde(rename = "duration")]
        #[schema(minimum = 1, maximum = 60)]
        duration_secs: u32,
    },
}

impl ProcessingEntry {
    /// The entry's `id`.
    pub fn id(&self) -> &'static str {
        match self {
            ProcessingEntry::Rec { .. } => "rec",
            ProcessingEntry::Replay { .. } => "replay",
            ProcessingEntry::Thumbs { .. } => "thumbs",
            ProcessingEntry::Motionclip { .. } => "motionclip",
        }
    }
}

/// A stream's processing list: each id at most once, every value in range, in the order the
/// user gave (that is the order it is shown back in).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Processing {
    entries: Vec<ProcessingEntry>,
}

/// What the `rec` entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecSetting {
    /// A new file at the first keyframe after this many seconds (`None`: one per session).
    pub split_secs: Option<u32>,
}

/// What the `replay` entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaySetting {
    /// Seconds the playlist keeps (`None`: the whole session).
    pub keep_secs: Option<u32>,
}

/// What the `motionclip` entry asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MotionClipSetting {
    pub interval_secs: u32,
    pub duration_secs: u32,
}

fn integer_in(
    entry: &Map<String, Value>,
    path: &str,
    key: &str,
    range: RangeInclusive<u32>,
) -> Result<u32, FieldError> {
    match entry.get(key) {
        None => Err(field_error(
            format!("{path}.{key}"),
            format!("required: an integer {}..={}", range.start(), range.end()),
        )),
        Some(value) => match whole_number(value) {
            Some(n) if range.contains(&n) => Ok(n),
            _ => Err(field_error(
                format!("{path}.{key}"),
                format!(
                    "must be an integer {}..={}, got {value}",
                    range.start(),
                    range.end()
                ),
            )),
        },
    }
}

fn nullable_integer_in(
    entry: &Map<String, Value>,
    path: &str,
    key: &str,
    range: RangeInclusive<u32>,
) -> Result<Option<u32>, FieldError> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match whole_number(value) {
            Some(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(field_error(
                format!("{path}.{key}"),
                format!(
                    "must be null or an integer {}..={}, got {value}",
                    range.start(),
                    range.end()
                ),
            )),
        },
    }
}

/// A non-negative whole number that fits a `u32`, also when written as `10.0` (JSON does not
/// tell them apart).
fn whole_number(value: &Value) -> Option<u32> {
    if let Some(n) = value.as_u64() {
        return u32::try_from(n).ok();
    }
    let f = value.as_f64()?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (f >= 0.0 && f.fract() == 0.0 && f <= f64::from(u32::MAX)).then_some(f as u32)
}

impl Processing {
    /// Parses and validates a `processing` list found at `path` (`processing`,
    /// `transcodes[0].processing`).
    pub fn parse(value: &Value, path: &str) -> Result<Self, FieldError> {
        let Value::Array(entries) = value else {
            return Err(field_error(path.to_string(), "must be a list"));
        };
        let mut out: Vec<ProcessingEntry> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let entry_path = format!("{path}[{i}]");
            let Value::Object(map) = entry else {
                return Err(field_error(entry_path, "must be an object"));
            };
            let id = map
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| field_error(format!("{entry_path}.id"), "required"))?;
            let allowed_keys: &[&str] = match id {
                "rec" | "replay" => &["id", "duration"],
                "thumbs" => &["id", "interval"],
                "motionclip" => &["id", "interval", "duration"],
                other => {
                    return Err(field_error(
                        format!("{entry_path}.id"),
                        format!(
                        "unknown processing id {other:?}; allowed: rec, replay, thumbs, motionclip"
                    ),
                    ))
                }
            };
            if let Some(unknown) = map.keys().find(|k| !allowed_keys.contains(&k.as_str())) {
                return Err(field_error(
                    format!("{entry_path}.{unknown}"),
                    format!("unknown field for {id}"),
                ));
            }
            if out.iter().any(|e| e.id() == id) {
                return Err(field_error(
                    format!("{entry_path}.id"),
                    format!("{id} appears twice"),
                ));
            }
            let p = entry_path.as_str();
            out.push(match id {
                "rec" => ProcessingEntry::Rec {
                    split_secs: nullable_integer_in(map, p, "duration", DURATION_SECS)?,
                },
                "replay" => ProcessingEntry::Replay {
                    keep_secs: nullable_integer_in(map, p, "duration", DURATION_SECS)?,
                },
                "thumbs" => ProcessingEntry::Thumbs {
                    interval_secs: integer_in(map, p, "interval", INTERVAL_SECS)?,
                },
                _ => ProcessingEntry::Motionclip {
                    interval_secs: integer_in(map, p, "interval", INTERVAL_SECS)?,
                    duration_secs: integer_in(map, p, "duration", CLIP_SECS)?,
                },
            });
        }
        Ok(Processing { entries: out })
    }

    /// Parses the JSON text the catalog stores (written by [`Processing::to_json_text`]).
    pub fn from_json_text(text: &str) -> Result<Self, FieldError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| field_error("processing".into(), e.to_string()))?;
        Self::parse(&value, "processing")
    }

    /// The bintu JSON list as text, for the catalog.
    pub fn to_json_text(&self) -> String {
        serde_json::to_string(&self.entries).unwrap_or_else(|_| "[]".into())
    }

    /// The entries in the user's order.
    pub fn entries(&self) -> &[ProcessingEntry] {
        &self.entries
    }

    /// Whether nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `rec` entry.
    pub fn rec(&self) -> Option<RecSetting> {
        self.entries.iter().find_map(|e| match *e {
            ProcessingEntry::Rec { split_secs } => Some(RecSetting { split_secs }),
            _ => None,
        })
    }

    /// The `replay` entry.
    pub fn replay(&self) -> Option<ReplaySetting> {
        self.entries.iter().find_map(|e| match *e {
            ProcessingEntry::Replay { keep_secs } => Some(ReplaySetting { keep_secs }),
            _ => None,
        })
    }

    /// The `thumbs` interval.
    pub fn thumbs_interval_secs(&self) -> Option<u32> {
        self.entries.iter().find_map(|e| match *e {
            ProcessingEntry::Thumbs { interval_secs } => Some(interval_secs),
            _ => None,
        })
    }

    /// The `motionclip` entry.
    pub fn motionclip(&self) -> Option<MotionClipSetting> {
        self.entries.iter().find_map(|e| match *e {
            ProcessingEntry::Motionclip {
                interval_secs,
                duration_secs,
            } => Some(MotionClipSetting {
                interval_secs,
                duration_secs,
            }),
            _ => None,
        })
    }
}

/// A transcoded rendition of a stream group: `vtrans2-<width>x<height>x<kbit/s>x<fps>`
/// (SPEC "Stream groups"). Width and height 10..=9999, kbit/s 10..=99999, fps 1..=120,
/// written without leading zeros — the pattern the OpenAPI document states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TranscodeProfile {
    pub width: u32,
    pub height: u32,
    pub kbps: u32,
    pub fps: u32,
}

/// Why a profile string is refused, for the API's message.
pub const PROFILE_RULE: &str = "must be vtrans2-<width 10..=9999>x<height 10..=9999>x<kbit/s 10..=99999>x<fps 1..=120> (no leading zeros), e.g. vtrans2-852x480x800x25";

impl TranscodeProfile {
    /// Parses the profile name; `None` unless it follows the pattern exactly.
    pub fn parse(profile: &str) -> Option<Self> {
        let rest = profile.strip_prefix("vtrans2-")?;
        let parts: Vec<&str> = rest.split('x').collect();
        let digits = [2..=4, 2..=4, 2..=5, 1..=3];
        let well_formed = parts.len() == 4
            && parts.iter().zip(digits).all(|(part, count)| {
                count.contains(&part.len())
                    && part.bytes().all(|b| b.is_ascii_digit())
                    && !part.starts_with('0')
            });
        if !well_formed {
            return None;
        }
        let number = |i: usize| parts[i].parse::<u32>().ok();
        let profile = TranscodeProfile {
            width: number(0)?,
            height: number(1)?,
            kbps: number(2)?,
            fps: number(3)?,
        };
        (profile.fps <= 120).then_some(profile)
    }
}

impl fmt::Display for TranscodeProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vtrans2-{}x{}x{}x{}",
            self.width, self.height, self.kbps, self.fps
        )
    }
}

impl Serialize for TranscodeProfile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_spec_ranges_and_writes_them_back_in_order() {
        let input = json!([
            {"id": "motionclip", "interval": 3600, "duration": 60},
            {"id": "rec"},
            {"id": "replay", "duration": 86400},
            {"id": "thumbs", "interval": 10.0}
        ]);
        let parsed = Processing::parse(&input, "processing").unwrap();
        assert_eq!(parsed.rec(), Some(RecSetting { split_secs: None }));
        assert_eq!(parsed.replay().unwrap().keep_secs, Some(86400));
        assert_eq!(parsed.thumbs_interval_secs(), Some(10));
        assert_eq!(parsed.motionclip().unwrap().duration_secs, 60);
        let back = serde_json::to_value(&parsed).unwrap();
        assert_eq!(
            back,
            json!([
                {"id": "motionclip", "interval": 3600, "duration": 60},
                {"id": "rec", "duration": null},
                {"id": "replay", "duration": 86400},
                {"id": "thumbs", "interval": 10}
            ])
        );
        assert_eq!(
            Processing::from_json_text(&parsed.to_json_text()).unwrap(),
            parsed
        );
        assert!(Processing::parse(&json!([]), "processing")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn refusals_name_the_field_and_range() {
        let cases = [
            (
                json!([{"id": "thumbs", "interval": 9}]),
                "processing[0].interval",
                "10..=3600",
            ),
            (
                json!([{"id": "rec"}, {"id": "motionclip", "interval": 10, "duration": 61}]),
                "processing[1].duration",
                "1..=60",
            ),
            (
                json!([{"id": "rec", "duration": 0}]),
                "processing[0].duration",
                "null or",
            ),
            (json!([{"id": "zoom"}]), "processing[0].id", "allowed"),
            (
                json!([{"id": "thumbs", "interval": 10, "x": 1}]),
                "processing[0].x",
                "unknown",
            ),
            (
                json!([{"id": "thumbs", "interval": "10"}]),
                "processing[0].interval",
                "integer",
            ),
            (
                json!([{"id": "thumbs", "interval": 10}, {"id": "thumbs", "interval": 20}]),
                "processing[1].id",
                "twice",
            ),
            (
                json!([{"id": "rec", "duration": 4294967306u64}]),
                "processing[0].duration",
                "null or",
            ),
            (json!({"id": "rec"}), "processing", "list"),
            (Value::Null, "processing", "list"),
        ];
        for (input, field, needle) in cases {
            let err = Processing::parse(&input, "processing").unwrap_err();
            assert_eq!(err.field, field, "{input}");
            assert!(
                err.message.contains(needle),
                "{} lacks {needle}",
                err.message
            );
        }
    }

    #[test]
    fn transcode_profiles_follow_the_documented_pattern() {
        for good in [
            "vtrans2-852x480x800x25",
            "vtrans2-10x10x10x1",
            "vtrans2-9999x9999x99999x120",
        ] {
            let profile = TranscodeProfile::parse(good).unwrap();
            assert_eq!(profile.to_string(), good);
        }
        assert_eq!(
            TranscodeProfile::parse("vtrans2-852x480x800x25"),
            Some(TranscodeProfile {
                width: 852,
                height: 480,
                kbps: 800,
                fps: 25
            })
        );
        for bad in [
            "vtrans2-852x480x800",
            "vtrans2-852x480x800x121",
            "vtrans2-0852x480x800x25",
            "vtrans2-9x480x800x25",
            "vtrans2-852x480x800x0",
            "vtrans3-852x480x800x25",
            "vtrans2-852x480x+800x25",
            "vtrans2-10000x480x800x25",
            "vtrans2-852x480x800x25x1",
        ] {
            assert!(TranscodeProfile::parse(bad).is_none(), "{bad}");
        }
    }
}
