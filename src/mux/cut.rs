//! Cutting `start..end` seconds of a session out of its finalised recording files into a new
//! regular MP4 without re-encoding: from the video keyframe at or before `start`, shown from
//! exactly `start` by edit lists (`finalize_window`). A session split by `rec.duration`
//! counts its time across its files in order.
//!
//! Pure like the rest of `mux`: it takes the files as readers (a local file, or a store's
//! ranged reads) and reads only their `moov`s and the chosen samples' bytes.

use super::finalize::{final_moov, finalize_window, Window};
use super::samples::{codec_config, sample_tables};
use super::{init_segment, tracks_for, Fragmenter};
use crate::media::{CodecConfig, Packet, Track};
use bytes::Bytes;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, OnceLock};

/// A refused clip request (from recordings or from a replay), naming the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ClipError {
    pub field: &'static str,
    pub message: String,
}

/// A [`ClipError`].
pub fn refuse(field: &'static str, message: impl Into<String>) -> ClipError {
    ClipError {
        field,
        message: message.into(),
    }
}

/// The checks every clip request passes first: `0 <= start < end`, both numbers.
pub fn check_range(start: f64, end: f64) -> Result<(), ClipError> {
    if !start.is_finite() || start < 0.0 {
        return Err(refuse("start", "must be a number of seconds, at least 0"));
    }
    if !end.is_finite() || end <= start {
        return Err(refuse("end", "must be after start"));
    }
    Ok(())
}

/// Why a cut could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CutError {
    /// The request does not fit the recordings.
    #[error(transparent)]
    Refused(#[from] ClipError),
    /// Reading or parsing the `file`-th input (counting from 0) failed.
    #[error("reading recording {file} of the session: {message}")]
    Read { file: usize, message: String },
}

fn refused(field: &'static str, message: impl Into<String>) -> CutError {
    CutError::Refused(refuse(field, message))
}

/// A sample of some file at session time `dts_ms`.
struct Chosen {
    file: usize,
    track: Track,
    dts_ms: i64,
    cts_ms: i32,
    sync: bool,
    offset: u64,
    size: u32,
}

/// Cuts `start..end` (seconds of session time, from the first file's first video frame) of
/// `files` (finalised recordings, in order) into the bytes of a regular MP4 and its duration
/// in seconds.
pub fn cut<R: Read + Seek>(
    files: &mut [R],
    start: f64,
    end: f64,
) -> Result<(Vec<u8>, f64), CutError> {
    check_range(start, end)?;
    let read_error = |file: usize, message: String| CutError::Read { file, message };
    let (start_ms, end_ms) = (
        (start * 1000.0).round() as i64,
        (end * 1000.0).round() as i64,
    );
    let mut config: Option<Arc<CodecConfig>> = None;
    let mut chosen = Vec::new();
    let mut file_start_ms = 0i64;
    for (index, file) in files.iter_mut().enumerate() {
        let moov = final_moov(file).map_err(|e| read_error(index, e.to_string()))?;
        let tables = sample_tables(&moov);
        let video_end = tables
            .iter()
            .find(|t| t.track == Track::Video)
            .or(tables.first())
            .map_or(0, |t| t.ms(i64::try_from(t.end).unwrap_or(i64::MAX)));
        let file_end_ms = file_start_ms + video_end;
        if file_end_ms > start_ms && file_start_ms < end_ms {
            let file_config = codec_config(&moov);
            match &config {
                Some(c) if **c != file_config => {
                    return Err(refused(
                        "end",
                        format!(
                            "the stream's codecs changed at {:.3} s; a clip cannot span that",
                            file_start_ms as f64 / 1000.0
                        ),
                    ))
                }
                Some(_) => {}
                None => config = Some(Arc::new(file_config)),
            }
            for table in &tables {
                for sample in &table.samples {
                    let dts_ms =
                        file_start_ms + table.ms(i64::try_from(sample.dts).unwrap_or(i64::MAX));
                    if dts_ms >= end_ms {
                        break;
                    }
                    chosen.push(Chosen {
                        file: index,
                        track: table.track,
                        dts_ms,
                        cts_ms: i32::try_from(table.ms(sample.cts)).unwrap_or(0),
                        sync: sample.sync,
                        offset: sample.offset,
                        size: sample.size,
                    });
                }
            }
        }
        file_start_ms = file_end_ms;
    }
    let held_to = file_start_ms;
    if end_ms > held_to + 1 {
        return Err(refused(
            "end",
            format!(
                "the recordings hold 0 s to {:.3} s of the session",
                held_to as f64 / 1000.0
            ),
        ));
    }
    let config = config.ok_or_else(|| refused("session", "the recordings hold no media"))?;
    let has_video = chosen.iter().any(|c| c.track == Track::Video);
    let key_ms = chosen
        .iter()
        .filter(|c| (c.track == Track::Video || !has_video) && c.sync && c.dts_ms <= start_ms)
        .map(|c| c.dts_ms)
        .max()
        .ok_or_else(|| refused("start", "no keyframe at or before start"))?;
    chosen.retain(|c| c.dts_ms >= key_ms);
    chosen.sort_by_key(|c| c.dts_ms);

    let (tracks, _) = tracks_for(&config);
    let mut out = init_segment(&tracks).map_err(|e| read_error(0, e.to_string()))?;
    let mut fragmenter = Fragmenter::new(tracks);
    for sample in &chosen {
        let Some(file) = files.get_mut(sample.file) else {
            continue;
        };
        let mut data = vec![0u8; usize::try_from(sample.size).unwrap_or(0)];
        file.seek(SeekFrom::Start(sample.offset))
            .and_then(|_| file.read_exact(&mut data))
            .map_err(|e| read_error(sample.file, e.to_string()))?;
        fragmenter.push(&Packet {
            track: sample.track,
            dts_ms: sample.dts_ms,
            cts_ms: sample.cts_ms,
            is_key: sample.sync,
            config: config.clone(),
            flv_body: Bytes::from(data),
            payload_offset: 0,
            rtmp_chunks: OnceLock::new(),
        });
    }
    fragmenter.finish(None);
    if let Some(fragment) = fragmenter
        .take_fragment()
        .map_err(|e| read_error(0, e.to_string()))?
    {
        out.extend_from_slice(&fragment.bytes);
    }
    let mut cursor = std::io::Cursor::new(out);
    let window = Window {
        start_ms: u64::try_from(start_ms - key_ms).unwrap_or(0),
        duration_ms: u64::try_from(end_ms - start_ms).unwrap_or(0),
    };
    let done =
        finalize_window(&mut cursor, Some(window)).map_err(|e| read_error(0, e.to_string()))?;
    Ok((cursor.into_inner(), done.duration_secs))
}
