//! The per-stream `processing` list in the bintu shape (SPEC "Live processing"): validation
//! with errors that name the field (`processing[1].interval`) and the allowed range.

use serde_json::{json, Map, Value};
use std::ops::RangeInclusive;

/// `thumbs` and `motionclip` intervals, seconds.
pub const INTERVAL_SECS: RangeInclusive<u64> = 10..=3600;
/// `motionclip` duration, seconds.
pub const CLIP_SECS: RangeInclusive<u64> = 1..=60;
/// `rec` and `replay` duration, seconds (or null).
pub const DURATION_SECS: RangeInclusive<u64> = 1..=86400;

/// An input error naming its JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
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

fn integer_in(
    entry: &Map<String, Value>,
    path: &str,
    key: &str,
    range: RangeInclusive<u64>,
    nullable: bool,
) -> Result<Value, FieldError> {
    let field = format!("{path}.{key}");
    let allowed = if nullable {
        format!("null or an integer {}..={}", range.start(), range.end())
    } else {
        format!("an integer {}..={}", range.start(), range.end())
    };
    match entry.get(key) {
        None | Some(Value::Null) if nullable => Ok(Value::Null),
        None => Err(field_error(field, format!("required: {allowed}"))),
        Some(value) => match whole_number(value) {
            Some(n) if range.contains(&n) => Ok(json!(n)),
            _ => Err(field_error(
                field,
                format!("must be {allowed}, got {value}"),
            )),
        },
    }
}

/// A non-negative whole number, also when written as `10.0` (JSON does not tell them apart).
fn whole_number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let f = value.as_f64()?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        (f >= 0.0 && f.fract() == 0.0 && f <= u32::MAX as f64).then_some(f as u64)
    })
}

/// Validates a `processing` list and returns it normalised (absent optional fields as null).
pub fn validate(value: &Value, path: &str) -> Result<Value, FieldError> {
    let Value::Array(entries) = value else {
        return Err(field_error(path.to_string(), "must be a list"));
    };
    let mut seen = Vec::new();
    let mut out = Vec::new();
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
        if seen.contains(&id) {
            return Err(field_error(
                format!("{entry_path}.id"),
                format!("{id} appears twice"),
            ));
        }
        seen.push(id);
        let normalised = match id {
            "rec" | "replay" => json!({
                "id": id,
                "duration": integer_in(map, &entry_path, "duration", DURATION_SECS, true)?,
            }),
            "thumbs" => json!({
                "id": id,
                "interval": integer_in(map, &entry_path, "interval", INTERVAL_SECS, false)?,
            }),
            _ => json!({
                "id": id,
                "interval": integer_in(map, &entry_path, "interval", INTERVAL_SECS, false)?,
                "duration": integer_in(map, &entry_path, "duration", CLIP_SECS, false)?,
            }),
        };
        out.push(normalised);
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_spec_ranges() {
        let input = json!([
            {"id": "rec"},
            {"id": "replay", "duration": 86400},
            {"id": "thumbs", "interval": 10},
            {"id": "motionclip", "interval": 3600, "duration": 60}
        ]);
        let out = validate(&input, "processing").unwrap();
        assert_eq!(out[0], json!({"id": "rec", "duration": null}));
        assert_eq!(out[3]["duration"], json!(60));
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
            (json!({"id": "rec"}), "processing", "list"),
        ];
        for (input, field, needle) in cases {
            let err = validate(&input, "processing").unwrap_err();
            assert_eq!(err.field, field, "{input}");
            assert!(
                err.message.contains(needle),
                "{} lacks {needle}",
                err.message
            );
        }
    }
}
